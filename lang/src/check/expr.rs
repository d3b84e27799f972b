//! Expressions: names resolved, widths inferred and checked (a literal takes the width its
//! context asks for), conditions kept apart from values.

use super::*;

impl Cx {
    /// Resolves a path to a field, metadata, parameter or validity, with its natural width.
    pub(super) fn path_expr(&mut self, p: &Path, scope: &Scope) -> Option<TExpr> {
        let parts = &p.parts;
        match parts.as_slice() {
            [one] => {
                if let Some(i) = scope.params.iter().position(|(n, _)| *n == one.name) {
                    return Some(TExpr {
                        kind: TExprKind::Param(i),
                        width: scope.params[i].1,
                    });
                }
                let mut d = Diagnostic::error("E0101", format!("unknown name `{}`", one.name))
                    .with_label(one.span, "not a parameter or field");
                if self.header_names.contains_key(&one.name) {
                    d = d.with_help(format!(
                        "`{}` is a header: name one of its fields, or `{}.valid`",
                        one.name, one.name
                    ));
                } else if let Some(s) =
                    suggest(&one.name, scope.params.iter().map(|(n, _)| n.as_str()))
                {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else if self.meta_names.contains_key(&one.name) {
                    d = d.with_help(format!("metadata is written `meta.{}`", one.name));
                }
                self.err(d);
                None
            }
            [a, b] if a.name == "meta" => match self.meta_names.get(&b.name) {
                Some(&i) => Some(TExpr {
                    kind: TExprKind::Meta(i),
                    width: self.out.metadata[i].width,
                }),
                None => {
                    let c = self.meta_names.keys().cloned().collect();
                    self.unknown("metadata field", b, c);
                    None
                }
            },
            [a, b] if a.name == "std" => match StdField::ALL.iter().find(|f| f.name() == b.name) {
                Some(&f) => Some(TExpr {
                    kind: TExprKind::Std(f),
                    width: f.width(),
                }),
                None => {
                    let c = StdField::ALL.iter().map(|f| f.name().to_string()).collect();
                    self.unknown("standard metadata field", b, c);
                    None
                }
            },
            [h, f] => {
                let h = self.header(h)?;
                if f.name == "valid" {
                    return Some(TExpr {
                        kind: TExprKind::Valid(h),
                        width: 0,
                    });
                }
                let fi = self.field_of(h, f)?;
                let info = &self.out.header_types[self.out.headers[h].ty].fields[fi];
                if info.varbit {
                    self.err(
                        Diagnostic::error(
                            "E0110",
                            format!("the variable-length field `{p}` cannot be read or written"),
                        )
                        .with_label(p.span, "varbit")
                        .with_note("a varbit field is extracted and emitted as it is"),
                    );
                    return None;
                }
                Some(TExpr {
                    kind: TExprKind::Field(h, fi),
                    width: info.width,
                })
            }
            _ => {
                self.err(
                    Diagnostic::error("E0101", format!("`{p}` is not a field")).with_label(
                        p.span,
                        "expected `header.field`, `meta.field` or `std.field`",
                    ),
                );
                None
            }
        }
    }

    /// The width an expression has without context; None for a literal that adapts.
    pub(super) fn natural_width(&mut self, e: &Expr, scope: &Scope) -> Option<u32> {
        match &e.kind {
            ExprKind::Lit(l) => l.natural_width.filter(|w| *w == 32 || *w == 48),
            ExprKind::Bool(_) | ExprKind::Not(_) | ExprKind::Apply(..) => Some(0),
            ExprKind::Path(p) => {
                // Resolve quietly: errors are reported when the expression is checked.
                let n = self.diags.len();
                let r = self.path_expr(p, scope).map(|t| t.width);
                self.diags.truncate(n);
                r
            }
            ExprKind::Binary(op, a, b) => {
                if op.is_comparison() || op.is_logical() {
                    Some(0)
                } else if matches!(op, BinOp::Shl | BinOp::Shr) {
                    self.natural_width(a, scope)
                } else {
                    match (self.natural_width(a, scope), self.natural_width(b, scope)) {
                        (Some(x), Some(y)) => Some(x.max(y)),
                        (x, y) => x.or(y),
                    }
                }
            }
            ExprKind::BitNot(a) => self.natural_width(a, scope),
            ExprKind::Cast(t, _) => Some(match t.kind {
                TypeKind::Bit(w) => w.clamp(1, 128),
                _ => 16,
            }),
            ExprKind::Hash { max, .. } => self.natural_width(max, scope).or(Some(32)),
            ExprKind::SipHash { .. } => Some(64),
        }
    }

    pub(super) fn bool_expr(&mut self, e: &Expr, scope: &Scope) -> Option<TExpr> {
        let t = self.expr(e, None, scope)?;
        if t.width != 0 {
            self.err(
                Diagnostic::error("E0110", "expected a condition")
                    .with_label(e.span, format!("this is a bit<{}> value", t.width))
                    .with_help("compare it: `x != 0`"),
            );
            return None;
        }
        Some(t)
    }

    pub(super) fn num_operand(&mut self, e: &Expr, want: u32, scope: &Scope) -> Option<TExpr> {
        let t = self.expr(e, Some(want), scope)?;
        if t.width == 0 {
            self.err(
                Diagnostic::error("E0110", "expected a number, found a condition")
                    .with_label(e.span, "this is a condition"),
            );
            return None;
        }
        Some(t)
    }

    /// Checks an expression. With `want`, a numeric result has exactly that width: narrower
    /// values are zero-extended, wider ones are an error (narrowing needs a cast).
    pub(super) fn expr(&mut self, e: &Expr, want: Option<u32>, scope: &Scope) -> Option<TExpr> {
        let want = want.filter(|w| *w > 0);
        let t = match &e.kind {
            ExprKind::Lit(l) => {
                let w = match want {
                    Some(w) => w,
                    None => l.natural_width.unwrap_or_else(|| bits_needed(l.value)),
                };
                if !fits(l.value, w) {
                    self.err(
                        Diagnostic::error("E0103", format!("value does not fit in {w} bits"))
                            .with_label(
                                e.span,
                                format!("this needs {} bits", bits_needed(l.value)),
                            ),
                    );
                    return None;
                }
                return Some(TExpr {
                    kind: TExprKind::Const(l.value),
                    width: w,
                });
            }
            ExprKind::Bool(b) => TExpr {
                kind: TExprKind::Const(u128::from(*b)),
                width: 0,
            },
            ExprKind::Path(p) => self.path_expr(p, scope)?,
            ExprKind::Apply(t, res) => {
                if scope.ctx != Ctx::Control {
                    self.err(
                        Diagnostic::error("E0110", "tables are applied in the control block")
                            .with_label(e.span, "not allowed here"),
                    );
                    return None;
                }
                let id = self.table_id(t)?;
                TExpr {
                    kind: TExprKind::Apply(id, *res == TableResult::Hit),
                    width: 0,
                }
            }
            ExprKind::Not(a) => {
                let a = self.bool_expr(a, scope)?;
                TExpr {
                    kind: TExprKind::Not(Box::new(a)),
                    width: 0,
                }
            }
            ExprKind::BitNot(a) => {
                let w = want.or_else(|| self.natural_width(a, scope)).unwrap_or(32);
                let a = self.num_operand(a, w, scope)?;
                TExpr {
                    width: a.width,
                    kind: TExprKind::BitNot(Box::new(a)),
                }
            }
            ExprKind::Cast(ty, a) => {
                let w = match ty.kind {
                    TypeKind::Bit(w) if (1..=128).contains(&w) => w,
                    TypeKind::Port => 16,
                    _ => {
                        self.err(
                            Diagnostic::error("E0109", "invalid cast")
                                .with_label(ty.span, "cast to `bit<N>` with N from 1 to 128"),
                        );
                        return None;
                    }
                };
                let inner_w = self.natural_width(a, scope).filter(|w| *w > 0).unwrap_or(w);
                let a = self.num_operand(a, inner_w, scope)?;
                TExpr {
                    kind: TExprKind::Resize(Box::new(a)),
                    width: w,
                }
            }
            ExprKind::Binary(op, a, b) if op.is_logical() => {
                let a = self.bool_expr(a, scope);
                let b = self.bool_expr(b, scope);
                TExpr {
                    kind: TExprKind::Binary(*op, Box::new(a?), Box::new(b?)),
                    width: 0,
                }
            }
            ExprKind::Binary(op, a, b) if op.is_comparison() => {
                let (na, nb) = (self.natural_width(a, scope), self.natural_width(b, scope));
                if na == Some(0) || nb == Some(0) {
                    if !matches!(op, BinOp::Eq | BinOp::Ne) || na != nb {
                        self.err(
                            Diagnostic::error(
                                "E0110",
                                format!("cannot compare a condition with `{}`", op.symbol()),
                            )
                            .with_label(e.span, "conditions combine with `&&`, `||` and `!`"),
                        );
                        return None;
                    }
                    let a = self.bool_expr(a, scope);
                    let b = self.bool_expr(b, scope);
                    return Some(TExpr {
                        kind: TExprKind::Binary(*op, Box::new(a?), Box::new(b?)),
                        width: 0,
                    });
                }
                let w = match (na, nb) {
                    (Some(x), Some(y)) => x.max(y),
                    (Some(x), None) | (None, Some(x)) => x,
                    (None, None) => {
                        let l = |e: &Expr| match &e.kind {
                            ExprKind::Lit(l) => bits_needed(l.value),
                            _ => 32,
                        };
                        l(a).max(l(b))
                    }
                };
                let a = self.num_operand(a, w, scope);
                let b = self.num_operand(b, w, scope);
                TExpr {
                    kind: TExprKind::Binary(*op, Box::new(a?), Box::new(b?)),
                    width: 0,
                }
            }
            ExprKind::Binary(op @ (BinOp::Shl | BinOp::Shr), a, b) => {
                let w = want.or_else(|| self.natural_width(a, scope)).unwrap_or(32);
                let a = self.num_operand(a, w, scope);
                let nb = self.natural_width(b, scope).filter(|w| *w > 0).unwrap_or(8);
                let b = self.num_operand(b, nb, scope);
                TExpr {
                    kind: TExprKind::Binary(*op, Box::new(a?), Box::new(b?)),
                    width: w,
                }
            }
            ExprKind::Binary(op, a, b) => {
                let w = match want {
                    Some(w) => w,
                    None => match (self.natural_width(a, scope), self.natural_width(b, scope)) {
                        (Some(x), Some(y)) => x.max(y),
                        (Some(x), None) | (None, Some(x)) => x,
                        (None, None) => 32,
                    },
                };
                let a = self.num_operand(a, w, scope);
                let b = self.num_operand(b, w, scope);
                TExpr {
                    kind: TExprKind::Binary(*op, Box::new(a?), Box::new(b?)),
                    width: w,
                }
            }
            ExprKind::Hash { algo, fields, max } => {
                let Some(algo_k) = HashAlgo::from_name(&algo.name) else {
                    let c = HashAlgo::ALL.map(|a| a.name().to_string()).to_vec();
                    self.unknown("hash algorithm", algo, c);
                    return None;
                };
                let fs = self.field_list(fields, scope)?;
                let mw = self
                    .natural_width(max, scope)
                    .filter(|w| *w > 0)
                    .or(want)
                    .unwrap_or(32);
                let m = self.num_operand(max, mw, scope)?;
                TExpr {
                    width: m.width,
                    kind: TExprKind::Hash {
                        algo: algo_k,
                        fields: fs,
                        max: Box::new(m),
                    },
                }
            }
            ExprKind::SipHash { secret, fields } => {
                let s = self.secret(secret, 128, "siphash")?;
                let fs = self.field_list(fields, scope)?;
                TExpr {
                    kind: TExprKind::SipHash {
                        secret: s,
                        fields: fs,
                    },
                    width: 64,
                }
            }
        };
        // Apply the expected width to a value whose width is fixed.
        match want {
            Some(w) if t.width == 0 => {
                self.err(
                    Diagnostic::error(
                        "E0110",
                        format!("expected a bit<{w}> value, found a condition"),
                    )
                    .with_label(e.span, "this is a condition")
                    .with_help("a condition is not a number; use `if` to choose a value"),
                );
                None
            }
            Some(w) if t.width != 0 && t.width != w => {
                if t.width > w {
                    self.err(
                        Diagnostic::error(
                            "E0102",
                            format!("width mismatch: expected bit<{w}>, found bit<{}>", t.width),
                        )
                        .with_label(e.span, format!("this is bit<{}>", t.width))
                        .with_help(format!(
                            "narrowing drops bits; say so with a cast: `(bit<{w}>) ...`"
                        )),
                    );
                    None
                } else {
                    Some(TExpr {
                        kind: TExprKind::Resize(Box::new(t)),
                        width: w,
                    })
                }
            }
            _ => Some(t),
        }
    }

    pub(super) fn field_list(&mut self, fields: &[Expr], scope: &Scope) -> Option<Vec<TExpr>> {
        let mut out = Vec::new();
        for f in fields {
            let w = self.natural_width(f, scope).filter(|w| *w > 0);
            let Some(w) = w else {
                self.err(
                    Diagnostic::error("E0110", "a hashed value needs a width")
                        .with_label(f.span, "write a field, or cast: `(bit<16>) 5`"),
                );
                return None;
            };
            out.push(self.num_operand(f, w, scope)?);
        }
        Some(out)
    }
}
