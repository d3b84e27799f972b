//! Checksum declarations: which field, which header it covers, and the IPv4 layout the TCP
//! and UDP pseudo-header needs.

use super::*;

impl Cx {
    pub(super) fn checksum(&mut self, c: &ChecksumDecl) {
        let kind = match c.kind.name.as_str() {
            "ipv4_header" => ChecksumKind::Ipv4Header,
            "tcp_ipv4" => ChecksumKind::Tcp,
            "udp_ipv4" => ChecksumKind::Udp,
            _ => {
                let mut d =
                    Diagnostic::error("E0112", format!("unknown checksum `{}`", c.kind.name))
                        .with_label(c.kind.span, "not a built-in checksum")
                        .with_note("the built-in checksums are ipv4_header, tcp_ipv4 and udp_ipv4");
                if let Some(s) = suggest(&c.kind.name, ["ipv4_header", "tcp_ipv4", "udp_ipv4"]) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.err(d);
                return;
            }
        };
        let (h, f) = match c.field.parts.as_slice() {
            [h, f] => {
                let Some(h) = self.header(h) else { return };
                let Some(fi) = self.field_of(h, f) else {
                    return;
                };
                (h, fi)
            }
            _ => {
                self.err(
                    Diagnostic::error("E0112", "a checksum names its field as `header.field`")
                        .with_label(c.field.span, "expected `header.field`"),
                );
                return;
            }
        };
        let field = &self.out.header_types[self.out.headers[h].ty].fields[f];
        if field.width != 16 || !field.bit_offset.is_multiple_of(16) || field.varbit {
            self.err(
                Diagnostic::error(
                    "E0112",
                    format!(
                        "checksum field `{}` must be a 16-bit, 16-bit-aligned field",
                        c.field
                    ),
                )
                .with_label(
                    c.field.span,
                    format!(
                        "this field is {} bits at bit {}",
                        field.width, field.bit_offset
                    ),
                ),
            );
            return;
        }
        let pseudo = match (kind, &c.pseudo) {
            (ChecksumKind::Ipv4Header, None) => None,
            (ChecksumKind::Ipv4Header, Some(p)) => {
                self.err(
                    Diagnostic::error("E0108", "`ipv4_header` takes one argument")
                        .with_label(p.span, "unexpected argument")
                        .with_help("the IPv4 header checksum covers the header that holds it"),
                );
                return;
            }
            (_, None) => {
                self.err(
                    Diagnostic::error(
                        "E0108",
                        format!(
                            "`{}` needs the IPv4 header of its pseudo-header",
                            c.kind.name
                        ),
                    )
                    .with_label(c.span, "missing second argument")
                    .with_help(format!(
                        "write `checksum {}({}, ipv4);`",
                        c.kind.name, c.field
                    )),
                );
                return;
            }
            (_, Some(p)) => {
                let Some(ph) = self.header(p) else { return };
                if !self.has_ipv4_layout(ph) {
                    self.err(
                        Diagnostic::error("E0112", format!("header `{}` does not have the IPv4 layout", p.name))
                            .with_label(p.span, "the pseudo-header comes from an IPv4 header")
                            .with_note("expected version:4, ihl:4, ..., total_len at bit 16, protocol at bit 72, source at bit 96 and destination at bit 128"),
                    );
                    return;
                }
                Some(ph)
            }
        };
        if kind == ChecksumKind::Ipv4Header && !self.has_ipv4_layout(h) {
            self.err(
                Diagnostic::error(
                    "E0112",
                    format!(
                        "header `{}` does not have the IPv4 layout",
                        self.out.headers[h].name
                    ),
                )
                .with_label(c.field.span, "`ipv4_header` needs an IPv4 header"),
            );
            return;
        }
        if let Some(prev) = self.checksum_fields.insert((h, f), c.span) {
            self.err(
                Diagnostic::error("E0100", "two checksums on one field")
                    .with_label(c.span, "second checksum")
                    .with_label(prev, "first checksum"),
            );
            return;
        }
        self.out.checksums.push(ChecksumInfo {
            kind,
            header: h,
            field: f,
            pseudo,
        });
    }

    /// The fixed IPv4 layout by bit position, whatever the fields are called.
    pub(super) fn has_ipv4_layout(&self, h: HeaderId) -> bool {
        let ty = &self.out.header_types[self.out.headers[h].ty];
        let at = |off: u32, w: u32| {
            ty.fields
                .iter()
                .any(|f| f.bit_offset == off && f.width == w && !f.varbit)
        };
        ty.fixed_bits == 160
            && at(4, 4)
            && at(16, 16)
            && at(72, 8)
            && at(80, 16)
            && at(96, 32)
            && at(128, 32)
    }
}
