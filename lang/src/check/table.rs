//! Tables: keys and their match kinds, actions, the default action, size, and const entries
//! checked against the keys and the actions' parameters.

use super::*;

impl Cx {
    pub(super) fn table(&mut self, id: TableId, t: &TableDecl, extracted: &HashSet<HeaderId>) {
        let scope = Scope {
            ctx: Ctx::Control,
            params: &[],
        };
        let mut keys = Vec::new();
        for k in &t.keys {
            let kind = match MatchKind::from_name(&k.kind.name) {
                Some(k) => k,
                None => {
                    let c = MatchKind::ALL.map(|k| k.as_str().to_string()).to_vec();
                    self.unknown("match kind", &k.kind, c);
                    continue;
                }
            };
            let Some(expr) = self.path_expr(&k.field, &scope) else {
                continue;
            };
            match &expr.kind {
                TExprKind::Field(h, _) => {
                    if !extracted.contains(h) {
                        let hn = self.out.headers[*h].name.clone();
                        self.err(
                            Diagnostic::error("E0105", format!("table `{}` is keyed on `{}`, which no parser path extracts", t.name.name, k.field))
                                .with_label(k.field.span, format!("`{hn}` is never extracted"))
                                .with_help(format!("extract `{hn}` in a parser state, or key on a field that is parsed")),
                        );
                    }
                }
                TExprKind::Meta(_) | TExprKind::Std(_) => {}
                _ => {
                    self.err(
                        Diagnostic::error("E0110", "a table key is a header or metadata field")
                            .with_label(k.field.span, "not a field"),
                    );
                    continue;
                }
            }
            keys.push(KeyInfo {
                name: k.field.to_string(),
                expr,
                kind,
            });
        }
        if keys.iter().filter(|k| k.kind == MatchKind::Lpm).count() > 1 {
            self.err(
                Diagnostic::error(
                    "E0111",
                    format!("table `{}` has more than one lpm key", t.name.name),
                )
                .with_label(t.key_span.unwrap_or(t.name.span), "at most one lpm key")
                .with_help("use ternary for the others"),
            );
        }
        let mut actions = Vec::new();
        for a in &t.actions {
            match self.action_names.get(&a.name) {
                Some(&(aid, _)) => {
                    if actions.contains(&aid) {
                        self.err(
                            Diagnostic::error(
                                "E0100",
                                format!("action `{}` is listed twice", a.name),
                            )
                            .with_label(a.span, "listed again"),
                        );
                    } else {
                        actions.push(aid);
                    }
                }
                None => {
                    let c = self.action_names.keys().cloned().collect();
                    self.unknown("action", a, c);
                }
            }
        }
        let (default, const_default) = match &t.default {
            None => ((self.action_names["NoAction"].0, vec![]), false),
            Some(d) => {
                let call = self.const_call(&d.call, &actions, &t.name.name, true);
                (call.unwrap_or((1, vec![])), d.is_const)
            }
        };
        let size = match t.size {
            None => DEFAULT_TABLE_SIZE,
            Some((n, sp)) => {
                if n == 0 || n > MAX_TABLE_SIZE {
                    self.err(
                        Diagnostic::error("E0112", format!("table size {n} is out of range"))
                            .with_label(sp, format!("a table holds 1 to {MAX_TABLE_SIZE} entries")),
                    );
                }
                n.clamp(1, MAX_TABLE_SIZE) as u32
            }
        };
        let needs_priority = keys.iter().any(|k| {
            matches!(
                k.kind,
                MatchKind::Ternary | MatchKind::Range | MatchKind::Optional
            )
        });
        let mut entries = Vec::new();
        let mut const_entries = false;
        if let Some(es) = &t.entries {
            const_entries = es.is_const;
            for e in &es.entries {
                let list = match &e.keys {
                    KeysetList::Default(sp) => {
                        self.err(
                            Diagnostic::error("E0108", "an entry cannot be `default`")
                                .with_label(*sp, "use the table's `default` property"),
                        );
                        continue;
                    }
                    KeysetList::List(l, _) => l,
                };
                if list.len() != keys.len() {
                    self.err(
                        Diagnostic::error(
                            "E0108",
                            format!(
                                "entry has {} key values, table `{}` has {} keys",
                                list.len(),
                                t.name.name,
                                keys.len()
                            ),
                        )
                        .with_label(e.keys.span(), format!("expected {}", keys.len())),
                    );
                    continue;
                }
                let mut ks = Vec::new();
                let mut prefix = Vec::new();
                for (k, key) in list.iter().zip(&keys) {
                    let (sk, p) = self.select_key(k, key.expr.width, key.kind == MatchKind::Lpm);
                    let ok = matches!(
                        (key.kind, &sk, &p),
                        (MatchKind::Exact, SelectKey::Value(_), None)
                            | (MatchKind::Lpm, SelectKey::Value(_) | SelectKey::Mask(..), _)
                            | (
                                MatchKind::Ternary,
                                SelectKey::Value(_) | SelectKey::Mask(..) | SelectKey::Any,
                                None
                            )
                            | (
                                MatchKind::Range,
                                SelectKey::Value(_) | SelectKey::Range(..) | SelectKey::Any,
                                None
                            )
                            | (
                                MatchKind::Optional,
                                SelectKey::Value(_) | SelectKey::Any,
                                None
                            )
                    );
                    if !ok {
                        self.err(
                            Diagnostic::error(
                                "E0108",
                                format!(
                                    "this value cannot match a key of kind {}",
                                    key.kind.as_str()
                                ),
                            )
                            .with_label(
                                k.span(),
                                format!("`{}` is matched by {}", key.name, key.kind.as_str()),
                            ),
                        );
                    }
                    let p = match (key.kind, &sk) {
                        (MatchKind::Lpm, SelectKey::Value(_)) => Some(key.expr.width),
                        (MatchKind::Lpm, _) => p,
                        _ => None,
                    };
                    prefix.push(p);
                    ks.push(sk);
                }
                let Some((action, args)) = self.const_call(&e.call, &actions, &t.name.name, false)
                else {
                    continue;
                };
                let priority = match (needs_priority, e.priority) {
                    (true, Some((p, _))) => Some(p.min(u32::MAX as u64) as u32),
                    (true, None) => Some(entries.len() as u32),
                    (false, Some((_, sp))) => {
                        self.err(
                            Diagnostic::error(
                                "E0108",
                                "priority on a table without ternary, range or optional keys",
                            )
                            .with_label(
                                sp,
                                "only tables with ternary, range or optional keys take a priority",
                            ),
                        );
                        None
                    }
                    (false, None) => None,
                };
                entries.push(EntryInfo {
                    keys: ks,
                    prefix,
                    action,
                    args,
                    priority,
                });
            }
        }
        self.out.tables[id] = TableInfo {
            name: t.name.name.clone(),
            keys,
            actions,
            default: default.clone(),
            const_default,
            size,
            entries,
            const_entries,
        };
    }

    /// An action call with constant arguments: a table's default or an entry.
    pub(super) fn const_call(
        &mut self,
        call: &Call,
        allowed: &[ActionId],
        table: &str,
        is_default: bool,
    ) -> Option<(ActionId, Vec<u128>)> {
        let Some(&(aid, _)) = self.action_names.get(&call.name.name) else {
            let c = self.action_names.keys().cloned().collect();
            self.unknown("action", &call.name, c);
            return None;
        };
        // Any listed action, or a built-in (drop, NoAction), as in every table at run time.
        let _ = is_default;
        if !(allowed.contains(&aid) || self.out.actions[aid].builtin.is_some()) {
            self.err(
                Diagnostic::error(
                    "E0101",
                    format!(
                        "action `{}` is not in table `{table}`'s actions",
                        call.name.name
                    ),
                )
                .with_label(call.name.span, "not listed")
                .with_help(format!(
                    "add `{};` to the table's `actions`",
                    call.name.name
                )),
            );
            return None;
        }
        let params = self.out.actions[aid].params.clone();
        if params.len() != call.args.len() {
            let sig: Vec<String> = params
                .iter()
                .map(|(n, w)| format!("{n}: bit<{w}>"))
                .collect();
            self.err(
                Diagnostic::error(
                    "E0108",
                    format!(
                        "action `{}` takes {} argument{}, {} given",
                        call.name.name,
                        params.len(),
                        if params.len() == 1 { "" } else { "s" },
                        call.args.len()
                    ),
                )
                .with_label(call.span, format!("expected {}", params.len()))
                .with_note(format!(
                    "action {}({})",
                    call.name.name,
                    sig.join(", ")
                )),
            );
            return None;
        }
        let mut args = Vec::new();
        for ((pname, w), a) in params.iter().zip(&call.args) {
            match a {
                Arg::Expr(Expr {
                    kind: ExprKind::Lit(l),
                    ..
                }) => {
                    if !fits(l.value, *w) {
                        self.err(
                            Diagnostic::error(
                                "E0103",
                                format!("value does not fit parameter `{pname}` (bit<{w}>)"),
                            )
                            .with_label(l.span, format!("needs {} bits", bits_needed(l.value))),
                        );
                    }
                    let i = args.len();
                    if l.value == 0
                        && self.out.actions[aid]
                            .nonzero
                            .get(i)
                            .copied()
                            .unwrap_or(false)
                    {
                        self.err(
                            Diagnostic::error(
                                "E0103",
                                format!("parameter `{pname}` is declared nonzero"),
                            )
                            .with_label(l.span, "0 is not allowed here"),
                        );
                    }
                    args.push(l.value & mask(*w));
                }
                other => {
                    self.err(
                        Diagnostic::error("E0110", "a table's action arguments are constants")
                            .with_label(other.span(), "expected a number, address or MAC"),
                    );
                    args.push(0);
                }
            }
        }
        Some((aid, args))
    }
}
