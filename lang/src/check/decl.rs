//! Declarations: header types and their layout in bits, header instances, metadata, and
//! finding a header or a field by name.

use super::*;

impl Cx {
    pub(super) fn data_width(&mut self, t: &Type) -> u32 {
        match t.kind {
            TypeKind::Port => 16,
            TypeKind::Bit(w) => {
                if !(1..=128).contains(&w) {
                    self.err(
                        Diagnostic::error("E0109", format!("invalid width {w}"))
                            .with_label(t.span, "a field is 1 to 128 bits wide"),
                    );
                    return 1;
                }
                w
            }
            TypeKind::Varbit(_) => {
                self.err(
                    Diagnostic::error("E0109", "`varbit` is only allowed as a header's last field")
                        .with_label(t.span, "not allowed here"),
                );
                1
            }
        }
    }

    pub(super) fn header_type(&mut self, h: &ast::HeaderType) {
        let id = self.out.header_types.len();
        if !self.define(Which::HeaderType, "header type", &h.name, id) {
            return;
        }
        let mut fields: Vec<FieldInfo> = Vec::new();
        let mut names: HashMap<&str, Span> = HashMap::new();
        let mut offset = 0u32;
        let n = h.fields.len();
        for (i, f) in h.fields.iter().enumerate() {
            if let Some(prev) = names.insert(&f.name.name, f.name.span) {
                self.err(
                    Diagnostic::error(
                        "E0100",
                        format!("field `{}` is declared twice", f.name.name),
                    )
                    .with_label(f.name.span, "redeclared here")
                    .with_label(prev, "first declared here"),
                );
                continue;
            }
            if f.name.name == "valid" {
                self.err(
                    Diagnostic::error("E0100", "a field cannot be named `valid`")
                        .with_label(f.name.span, "`valid` is the header's validity"),
                );
                continue;
            }
            let (width, varbit) = match f.ty.kind {
                TypeKind::Varbit(w) => {
                    if i + 1 != n {
                        self.err(
                            Diagnostic::error("E0109", "a `varbit` field must be the header's last field")
                                .with_label(f.ty.span, "not the last field")
                                .with_help("the variable part of a header comes after its fixed fields, as IPv4 options do"),
                        );
                    }
                    if w == 0 || w % 8 != 0 || w > 4000 {
                        self.err(
                            Diagnostic::error("E0109", format!("invalid varbit width {w}"))
                                .with_label(
                                    f.ty.span,
                                    "a varbit maximum is a multiple of 8, at most 4000",
                                ),
                        );
                    }
                    (w, true)
                }
                _ => (self.data_width(&f.ty), false),
            };
            fields.push(FieldInfo {
                name: f.name.name.clone(),
                width,
                bit_offset: offset,
                varbit,
            });
            if !varbit {
                offset += width;
            }
        }
        if !offset.is_multiple_of(8) {
            self.err(
                Diagnostic::error(
                    "E0109",
                    format!(
                        "header `{}` is {offset} bits long, not a whole number of bytes",
                        h.name.name
                    ),
                )
                .with_label(h.name.span, "fields must add up to a multiple of 8 bits")
                .with_help(match 8 - offset % 8 {
                    1 => "add 1 bit of padding".to_string(),
                    n => format!("add {n} bits of padding"),
                }),
            );
        }
        if offset > HEADER_MAX_BITS {
            self.err(
                Diagnostic::error("E0109", format!("header `{}` is too long", h.name.name))
                    .with_label(h.name.span, "a header's fixed part is at most 512 bytes"),
            );
        }
        self.out.header_types.push(HeaderTypeInfo {
            name: h.name.name.clone(),
            fields,
            fixed_bits: offset,
        });
        // `header x { }` also declares the instance `x`.
        self.add_instance(&h.name, id);
    }

    /// Declares header instance `name` of type `ty`, within [`MAX_HEADERS`].
    pub(super) fn add_instance(&mut self, name: &Ident, ty: usize) {
        let hid = self.out.headers.len();
        if hid >= MAX_HEADERS {
            self.err(
                Diagnostic::error(
                    "E0112",
                    format!("too many header instances (at most {MAX_HEADERS})"),
                )
                .with_label(name.span, "one too many"),
            );
            return;
        }
        if self.define(Which::Header, "header", name, hid) {
            self.out.headers.push(HeaderInfo {
                name: name.name.clone(),
                ty,
            });
        }
    }

    pub(super) fn header_inst(&mut self, h: &HeaderInst) {
        let Some(&(ty, _)) = self.header_type_names.get(&h.ty.name) else {
            let c = self.header_type_names.keys().cloned().collect();
            self.unknown("header type", &h.ty, c);
            return;
        };
        self.add_instance(&h.name, ty);
    }

    pub(super) fn metadata(&mut self, m: &Metadata) {
        for f in &m.fields {
            if self.meta_names.contains_key(&f.name.name) {
                self.err(
                    Diagnostic::error(
                        "E0100",
                        format!("metadata field `{}` is declared twice", f.name.name),
                    )
                    .with_label(f.name.span, "redeclared here"),
                );
                continue;
            }
            let width = self.data_width(&f.ty);
            self.meta_names
                .insert(f.name.name.clone(), self.out.metadata.len());
            self.out.metadata.push(MetaInfo {
                name: f.name.name.clone(),
                width,
            });
        }
    }

    pub(super) fn header(&mut self, name: &Ident) -> Option<HeaderId> {
        match self.header_names.get(&name.name) {
            Some(&(id, _)) => Some(id),
            None => {
                let c = self.header_names.keys().cloned().collect();
                self.unknown("header", name, c);
                None
            }
        }
    }

    pub(super) fn field_of(&mut self, h: HeaderId, name: &Ident) -> Option<usize> {
        let ty = &self.out.header_types[self.out.headers[h].ty];
        match ty.fields.iter().position(|f| f.name == name.name) {
            Some(i) => Some(i),
            None => {
                let hn = &self.out.headers[h].name;
                let mut d = Diagnostic::error(
                    "E0101",
                    format!("header `{hn}` has no field `{}`", name.name),
                )
                .with_label(name.span, "unknown field");
                if let Some(s) = suggest(&name.name, ty.fields.iter().map(|f| f.name.as_str())) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.err(d);
                None
            }
        }
    }
}
