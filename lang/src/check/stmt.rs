//! Statements of actions and the control block: assignments, table application, if and
//! switch, the built-in calls (forward, drop, set_valid, ...) and action calls.

use super::*;

impl Cx {
    pub(super) fn block(&mut self, b: &Block, scope: &Scope) -> Vec<TStmt> {
        let mut out = Vec::new();
        for s in &b.stmts {
            self.stmt(s, scope, &mut out);
        }
        out
    }

    pub(super) fn stmt(&mut self, s: &Stmt, scope: &Scope, out: &mut Vec<TStmt>) {
        match s {
            Stmt::Assign(a) => {
                if let Some((lv, v)) = self.assign(a, scope) {
                    out.push(TStmt::Assign(lv, v));
                }
            }
            Stmt::Block(b) => out.extend(self.block(b, scope)),
            Stmt::Apply(t, sp) => {
                if scope.ctx != Ctx::Control {
                    self.err(
                        Diagnostic::error("E0110", "tables are applied in the control block")
                            .with_label(*sp, "not allowed in an action"),
                    );
                    return;
                }
                if let Some(id) = self.table_id(t) {
                    out.push(TStmt::Apply(id));
                }
            }
            Stmt::If {
                cond, then, els, ..
            } => {
                let c = self.bool_expr(cond, scope);
                let t = self.block(then, scope);
                let e = els
                    .as_ref()
                    .map(|b| self.block(b, scope))
                    .unwrap_or_default();
                if let Some(c) = c {
                    out.push(TStmt::If(c, t, e));
                }
            }
            Stmt::Switch { table, cases, span } => {
                if scope.ctx != Ctx::Control {
                    self.err(
                        Diagnostic::error("E0110", "tables are applied in the control block")
                            .with_label(*span, "not allowed in an action"),
                    );
                    return;
                }
                let Some(tid) = self.table_id(table) else {
                    return;
                };
                let mut arms = Vec::new();
                let mut default = Vec::new();
                let mut seen = HashSet::new();
                for c in cases {
                    let body = self.block(&c.body, scope);
                    match &c.action {
                        None => default = body,
                        Some(a) => match self.action_names.get(&a.name) {
                            Some(&(aid, _)) => {
                                let t = &self.out.tables[tid];
                                let listed = t.actions.contains(&aid) || t.default.0 == aid;
                                if !listed {
                                    self.err(
                                        Diagnostic::error(
                                            "E0101",
                                            format!(
                                                "table `{}` cannot run action `{}`",
                                                table.name, a.name
                                            ),
                                        )
                                        .with_label(a.span, "not one of the table's actions"),
                                    );
                                } else if !seen.insert(aid) {
                                    self.err(
                                        Diagnostic::error(
                                            "E0100",
                                            format!("action `{}` has two cases", a.name),
                                        )
                                        .with_label(a.span, "second case"),
                                    );
                                } else {
                                    arms.push((aid, body));
                                }
                            }
                            None => {
                                let c = self.action_names.keys().cloned().collect();
                                self.unknown("action", a, c);
                            }
                        },
                    }
                }
                out.push(TStmt::Switch(tid, arms, default));
            }
            Stmt::Call(c) => self.call_stmt(c, scope, out),
        }
    }

    /// The id of a drop reason, interned (the same text is one reason).
    pub(super) fn reason(&mut self, text: &str, span: Span) -> usize {
        if let Some(&i) = self.reason_ids.get(text) {
            return i;
        }
        // Reason 0 is the plain `drop()`.
        if self.out.drop_reasons.len() > super::MAX_DROP_REASONS {
            // Said once, at the first reason past the limit.
            if !std::mem::replace(&mut self.too_many_reasons, true) {
                self.err(
                    Diagnostic::error("E0110", "too many drop reasons").with_label(
                        span,
                        format!(
                            "reason number {} of at most {}",
                            super::MAX_DROP_REASONS + 1,
                            super::MAX_DROP_REASONS
                        ),
                    ),
                );
            }
            return 0;
        }
        self.out.drop_reasons.push(text.to_string());
        self.reason_ids
            .insert(text.to_string(), self.out.drop_reasons.len() - 1);
        self.out.drop_reasons.len() - 1
    }

    /// The tunnel header of `seal` or `open`: a header whose first fields are the 32-bit key
    /// id and the 64-bit counter (the nonce), with no variable part; fields after them are
    /// authenticated, not encrypted.
    fn tunnel_header(&mut self, what: &str, arg: &Arg) -> Option<HeaderId> {
        let h = match arg {
            Arg::Expr(Expr {
                kind: ExprKind::Path(p),
                ..
            }) if p.parts.len() == 1 => self.header(&p.parts[0])?,
            other => {
                self.err(
                    Diagnostic::error("E0110", format!("`{what}` takes a header second"))
                        .with_label(other.span(), "expected a header name"),
                );
                return None;
            }
        };
        self.tunnel_headers
            .push((h, arg.span(), if what == "seal" { "seal" } else { "open" }));
        let ty = &self.out.header_types[self.out.headers[h].ty];
        let widths: Vec<u32> = ty.fields.iter().take(2).map(|f| f.width).collect();
        let too_long = ty.fixed_bits as usize > 8 * sluice_defs::secret::MAX_TUNNEL_HEADER_BYTES;
        if widths != [32, 64] || ty.varbit().is_some() || too_long {
            let ty_name = ty.name.clone();
            self.err(
                Diagnostic::error(
                    "E0110",
                    format!("`{what}` needs a tunnel header that starts with a key id and a counter"),
                )
                .with_label(arg.span(), format!("header type `{ty_name}` does not"))
                .with_help("declare it as `header sec { key_id: bit<32>; counter: bit<64>; }` (fields after these two are authenticated, not encrypted; no varbit; at most 64 bytes)"),
            );
            return None;
        }
        Some(h)
    }

    pub(super) fn table_id(&mut self, t: &Ident) -> Option<TableId> {
        match self.table_names.get(&t.name) {
            Some(&(id, _)) => Some(id),
            None => {
                let c = self.table_names.keys().cloned().collect();
                self.unknown("table", t, c);
                None
            }
        }
    }

    pub(super) fn call_stmt(&mut self, c: &Call, scope: &Scope, out: &mut Vec<TStmt>) {
        let name = c.name.name.as_str();
        let arity = |this: &mut Cx, n: usize| -> bool {
            if c.args.len() != n {
                this.err(
                    Diagnostic::error(
                        "E0108",
                        format!(
                            "`{name}` takes {n} argument{}, {} given",
                            if n == 1 { "" } else { "s" },
                            c.args.len()
                        ),
                    )
                    .with_label(c.span, format!("expected {n}")),
                );
                false
            } else {
                true
            }
        };
        if scope.ctx == Ctx::Parser {
            self.err(
                Diagnostic::error("E0110", format!("`{name}` cannot be called in the parser"))
                    .with_label(c.span, "the parser extracts headers and assigns metadata")
                    .with_help("use `transition reject;` to drop a packet while parsing"),
            );
            return;
        }
        match name {
            "forward" => {
                if !arity(self, 1) {
                    return;
                }
                if let Some(e) = self.arg_expr(&c.args[0], Some(16), scope) {
                    out.push(TStmt::Forward(e));
                }
            }
            "drop" => {
                let reason = match c.args.as_slice() {
                    [] => 0,
                    [Arg::Str(s, sp)] => {
                        if s.is_empty() || s.len() > 64 {
                            self.err(
                                Diagnostic::error("E0110", "a drop reason is 1 to 64 characters")
                                    .with_label(*sp, "empty or too long"),
                            );
                        }
                        self.reason(s, *sp)
                    }
                    _ => {
                        self.err(
                            Diagnostic::error("E0108", "`drop` takes an optional reason string")
                                .with_label(c.span, "expected `drop()` or `drop(\"reason\")`"),
                        );
                        return;
                    }
                };
                out.push(TStmt::Drop(reason));
            }
            "set_valid" | "set_invalid" => {
                if !arity(self, 1) {
                    return;
                }
                let h = match &c.args[0] {
                    Arg::Expr(Expr {
                        kind: ExprKind::Path(p),
                        ..
                    }) if p.parts.len() == 1 => self.header(&p.parts[0]),
                    other => {
                        self.err(
                            Diagnostic::error("E0110", format!("`{name}` takes a header"))
                                .with_label(other.span(), "expected a header name"),
                        );
                        None
                    }
                };
                if let Some(h) = h {
                    out.push(if name == "set_valid" {
                        TStmt::SetValid(h)
                    } else {
                        TStmt::SetInvalid(h)
                    });
                }
            }
            "recirculate" => {
                if arity(self, 0) {
                    out.push(TStmt::Recirculate);
                }
            }
            "seal" | "open" => {
                if !arity(self, if name == "seal" { 3 } else { 2 }) {
                    return;
                }
                let secret = match &c.args[0] {
                    Arg::Expr(Expr {
                        kind: ExprKind::Path(p),
                        ..
                    }) if p.parts.len() == 1 => self.secret(&p.parts[0], 256, name),
                    other => {
                        self.err(
                            Diagnostic::error("E0110", format!("`{name}` takes a secret first"))
                                .with_label(other.span(), "expected the name of a secret"),
                        );
                        None
                    }
                };
                let header = self.tunnel_header(name, &c.args[1]);
                if name == "seal" {
                    let peer = self.arg_expr(&c.args[2], Some(32), scope);
                    if let (Some(secret), Some(header), Some(peer)) = (secret, header, peer) {
                        let no_key = self.reason("no key", c.span);
                        out.push(TStmt::Seal {
                            secret,
                            header,
                            peer,
                            no_key,
                        });
                    }
                } else if let (Some(secret), Some(header)) = (secret, header) {
                    let bad_tag = self.reason("bad tag", c.span);
                    let replay = self.reason("replay", c.span);
                    out.push(TStmt::Open {
                        secret,
                        header,
                        bad_tag,
                        replay,
                    });
                }
            }
            _ => {
                let Some(&(aid, _)) = self.action_names.get(name) else {
                    let mut cands: Vec<String> = self.action_names.keys().cloned().collect();
                    cands.extend(
                        [
                            "forward",
                            "drop",
                            "set_valid",
                            "set_invalid",
                            "recirculate",
                            "seal",
                            "open",
                        ]
                        .map(String::from),
                    );
                    self.unknown("action or function", &c.name, cands);
                    return;
                };
                if scope.ctx != Ctx::Control {
                    self.err(
                        Diagnostic::error("E0110", "an action cannot call another action")
                            .with_label(
                                c.span,
                                "actions are called from the control block or run by tables",
                            ),
                    );
                    return;
                }
                let params = self.out.actions[aid].params.clone();
                if params.len() != c.args.len() {
                    self.err(
                        Diagnostic::error(
                            "E0108",
                            format!(
                                "action `{name}` takes {} argument{}, {} given",
                                params.len(),
                                if params.len() == 1 { "" } else { "s" },
                                c.args.len()
                            ),
                        )
                        .with_label(c.span, format!("expected {}", params.len())),
                    );
                    return;
                }
                let mut args = Vec::new();
                for ((_, w), a) in params.iter().zip(&c.args) {
                    if let Some(e) = self.arg_expr(a, Some(*w), scope) {
                        args.push(e);
                    }
                }
                if args.len() == params.len() {
                    out.push(TStmt::Call(aid, args));
                }
            }
        }
    }

    pub(super) fn arg_expr(&mut self, a: &Arg, want: Option<u32>, scope: &Scope) -> Option<TExpr> {
        match a {
            Arg::Expr(e) => self.expr(e, want, scope),
            Arg::Str(_, sp) => {
                self.err(
                    Diagnostic::error("E0110", "a string is only allowed as a drop reason")
                        .with_label(*sp, "expected a number or a field"),
                );
                None
            }
        }
    }

    pub(super) fn assign(&mut self, a: &Assign, scope: &Scope) -> Option<(LValue, TExpr)> {
        let target = self.path_expr(&a.target, scope)?;
        let lv = match target.kind {
            TExprKind::Field(h, f) => {
                if scope.ctx == Ctx::Parser {
                    self.err(
                        Diagnostic::error(
                            "E0110",
                            "the parser assigns metadata, not header fields",
                        )
                        .with_label(a.target.span, "a header field")
                        .with_help("change headers in an action or the control block"),
                    );
                    return None;
                }
                if let Some(prev) = self.checksum_fields.get(&(h, f)) {
                    let prev = *prev;
                    self.err(
                        Diagnostic::error("E0110", format!("`{}` is kept by a checksum", a.target))
                            .with_label(a.target.span, "assigned here")
                            .with_label(prev, "the switch computes this field")
                            .with_help(
                                "the checksum is updated on every emitted packet; do not assign it",
                            ),
                    );
                    return None;
                }
                LValue::Field(h, f)
            }
            TExprKind::Meta(m) => LValue::Meta(m),
            TExprKind::Std(f) => {
                let help = match f {
                    StdField::EgressPort => "use `forward(PORT);`",
                    StdField::Dropped => "use `drop();`",
                    _ => "the switch sets it",
                };
                self.err(
                    Diagnostic::error("E0110", format!("`std.{}` is read-only", f.name()))
                        .with_label(a.target.span, "cannot be assigned")
                        .with_help(help),
                );
                return None;
            }
            TExprKind::Param(_) => {
                self.err(
                    Diagnostic::error("E0110", "an action parameter is read-only")
                        .with_label(a.target.span, "cannot be assigned"),
                );
                return None;
            }
            _ => {
                self.err(
                    Diagnostic::error("E0110", "only header and metadata fields can be assigned")
                        .with_label(a.target.span, "not a field"),
                );
                return None;
            }
        };
        let v = self.expr(&a.value, Some(target.width), scope)?;
        Some((lv, v))
    }
}
