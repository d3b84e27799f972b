//! The parser: states, extracts, transitions and select cases, and the graph's checks
//! (every state reachable, every cycle bounded by a `limit`).

use super::*;

impl Cx {
    pub(super) fn parser(&mut self, p: &ParserDecl) {
        // Declare states; `start` becomes state 0.
        let mut order: Vec<&StateDecl> = Vec::new();
        if let Some(s) = p.states.iter().find(|s| s.name.name == "start") {
            order.push(s);
        } else {
            self.err(
                Diagnostic::error("E0112", "the parser has no `start` state")
                    .with_label(p.span, "parsing begins at the state named `start`")
                    .with_help("rename the first state to `start`"),
            );
            return;
        }
        order.extend(p.states.iter().filter(|s| s.name.name != "start"));
        let mut kept = Vec::new();
        for s in order {
            if s.name.name == "accept" || s.name.name == "reject" {
                self.err(
                    Diagnostic::error("E0100", format!("`{}` is a built-in state", s.name.name))
                        .with_label(s.name.span, "cannot be redefined"),
                );
                continue;
            }
            let id = kept.len();
            if self.define(Which::State, "parser state", &s.name, id) {
                kept.push(s);
            }
        }
        let scope = Scope {
            ctx: Ctx::Parser,
            params: &[],
        };
        for s in &kept {
            let mut stmts = Vec::new();
            for st in &s.stmts {
                match st {
                    ParserStmt::Extract {
                        header,
                        varbit,
                        span,
                    } => {
                        let Some(h) = self.header(header) else {
                            continue;
                        };
                        let ty = &self.out.header_types[self.out.headers[h].ty];
                        let vb = ty.varbit().map(|(_, f)| f.name.clone());
                        let varbit_len = match (vb, varbit) {
                            (None, None) => None,
                            (Some(name), None) => {
                                self.err(
                                    Diagnostic::error("E0108", format!("`{}` has a variable-length field; extract needs its length", header.name))
                                        .with_label(*span, "missing the length of the varbit field")
                                        .with_help(format!("write `extract({}, {name}: LENGTH_IN_BITS);`", header.name)),
                                );
                                None
                            }
                            (None, Some((f, _))) => {
                                self.err(
                                    Diagnostic::error(
                                        "E0108",
                                        format!("`{}` has no variable-length field", header.name),
                                    )
                                    .with_label(f.span, "unexpected length"),
                                );
                                None
                            }
                            (Some(name), Some((f, e))) => {
                                if f.name != name {
                                    self.err(
                                        Diagnostic::error(
                                            "E0101",
                                            format!(
                                                "`{}` is not the varbit field of `{}`",
                                                f.name, header.name
                                            ),
                                        )
                                        .with_label(
                                            f.span,
                                            format!("the varbit field is `{name}`"),
                                        ),
                                    );
                                }
                                self.expr(e, Some(32), &scope)
                            }
                        };
                        stmts.push(TParserStmt::Extract {
                            header: h,
                            varbit_len,
                        });
                    }
                    ParserStmt::Assign(a) => {
                        if let Some((lv, v)) = self.assign(a, &scope) {
                            stmts.push(TParserStmt::Assign(lv, v));
                        }
                    }
                }
            }
            let transition = self.transition(&s.transition, &scope);
            self.out.states.push(StateInfo {
                name: s.name.name.clone(),
                limit: s.limit.map(|(n, _)| n),
                stmts,
                transition,
            });
        }
        if self.diags.iter().any(|d| d.is_error()) || self.out.states.len() != kept.len() {
            return;
        }
        self.parser_graph(&kept);
    }

    pub(super) fn target(&mut self, name: &Ident) -> Option<Target> {
        match name.name.as_str() {
            "accept" => Some(Target::Accept),
            "reject" => Some(Target::Reject),
            n => match self.state_names.get(n) {
                Some(&(id, _)) => Some(Target::State(id)),
                None => {
                    let mut c: Vec<String> = self.state_names.keys().cloned().collect();
                    c.push("accept".into());
                    c.push("reject".into());
                    self.unknown("parser state", name, c);
                    None
                }
            },
        }
    }

    pub(super) fn transition(&mut self, t: &Transition, scope: &Scope) -> TTransition {
        match t {
            Transition::Goto(name) => match self.target(name) {
                Some(Target::Accept) | None => TTransition::Accept,
                Some(Target::Reject) => TTransition::Reject,
                Some(Target::State(s)) => TTransition::Goto(s),
            },
            Transition::Select { exprs, cases, .. } => {
                let texprs: Vec<TExpr> = exprs
                    .iter()
                    .map(|e| {
                        let w = self.natural_width(e, scope).unwrap_or(32);
                        if w == 0 {
                            self.err(
                                Diagnostic::error("E0110", "select matches values, not conditions")
                                    .with_label(e.span, "this is a condition")
                                    .with_help("select on a field, or test the condition in the control block"),
                            );
                            return None;
                        }
                        self.expr(e, Some(w), scope)
                    })
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default();
                let mut out_cases = Vec::new();
                let mut default = None;
                for c in cases {
                    let target = self.target(&c.target).unwrap_or(Target::Reject);
                    match &c.keys {
                        KeysetList::Default(_) => {
                            if default.is_none() {
                                default = Some(target);
                            }
                        }
                        KeysetList::List(keys, sp) => {
                            if keys.len() != exprs.len() {
                                self.err(
                                    Diagnostic::error(
                                        "E0104",
                                        format!(
                                            "select case has {} values, the select has {}",
                                            keys.len(),
                                            exprs.len()
                                        ),
                                    )
                                    .with_label(*sp, format!("expected {} values", exprs.len())),
                                );
                                continue;
                            }
                            let mut ks = Vec::new();
                            for (k, e) in keys.iter().zip(&texprs) {
                                ks.push(self.select_key(k, e.width, false).0);
                            }
                            out_cases.push((ks, target));
                        }
                    }
                }
                TTransition::Select {
                    exprs: texprs,
                    cases: out_cases,
                    default: default.unwrap_or(Target::Reject),
                }
            }
        }
    }

    /// A keyset value checked against the width of what it matches. Returns the key and, for a
    /// prefix, its length.
    pub(super) fn select_key(
        &mut self,
        k: &Keyset,
        width: u32,
        allow_prefix: bool,
    ) -> (SelectKey, Option<u32>) {
        let lit = |this: &mut Cx, l: &Lit| -> u128 {
            if !fits(l.value, width) {
                this.err(
                    Diagnostic::error("E0104", format!("value does not fit in {width} bits"))
                        .with_label(
                            l.span,
                            format!(
                                "this needs {} bits; the field has {width}",
                                bits_needed(l.value)
                            ),
                        )
                        .with_help("a select case's values have the width of the field they match"),
                );
            } else if let Some(nw) = l.natural_width {
                if nw > width {
                    this.err(
                        Diagnostic::error(
                            "E0104",
                            format!("a {nw}-bit value cannot match a {width}-bit field"),
                        )
                        .with_label(l.span, format!("{nw} bits"))
                        .with_help("a select case's values have the width of the field they match"),
                    );
                }
            }
            l.value & mask(width)
        };
        match k {
            Keyset::Default(_) => (SelectKey::Any, None),
            Keyset::Value(l) => (SelectKey::Value(lit(self, l)), None),
            Keyset::Mask(a, b) => {
                let (a, b) = (lit(self, a), lit(self, b));
                (SelectKey::Mask(a & b, b), None)
            }
            Keyset::Range(a, b) => {
                let (lo, hi) = (lit(self, a), lit(self, b));
                if lo > hi {
                    self.err(
                        Diagnostic::error("E0104", "empty range")
                            .with_label(k.span(), format!("{lo} is greater than {hi}")),
                    );
                }
                (SelectKey::Range(lo, hi), None)
            }
            Keyset::Prefix(l, len, sp) => {
                let v = lit(self, l);
                if !allow_prefix {
                    self.err(
                        Diagnostic::error("E0104", "a prefix is only allowed for an lpm key")
                            .with_label(*sp, "use `value &&& mask` here"),
                    );
                }
                if *len > width as u64 {
                    self.err(
                        Diagnostic::error(
                            "E0104",
                            format!("prefix length {len} is longer than the field ({width} bits)"),
                        )
                        .with_label(*sp, "too long"),
                    );
                    return (SelectKey::Any, Some(0));
                }
                let len = *len as u32;
                let m = mask(width) & !mask(width - len);
                (SelectKey::Mask(v & m, m), Some(len))
            }
        }
    }

    /// Reachability and loop bounds over the parser graph.
    pub(super) fn parser_graph(&mut self, decls: &[&StateDecl]) {
        let n = self.out.states.len();
        let succ: Vec<Vec<usize>> = self
            .out
            .states
            .iter()
            .map(|s| match &s.transition {
                TTransition::Goto(t) => vec![*t],
                TTransition::Select { cases, default, .. } => cases
                    .iter()
                    .map(|(_, t)| *t)
                    .chain(std::iter::once(*default))
                    .filter_map(|t| match t {
                        Target::State(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            })
            .collect();
        let mut seen = vec![false; n];
        let mut stack = vec![0];
        while let Some(s) = stack.pop() {
            if std::mem::replace(&mut seen[s], true) {
                continue;
            }
            stack.extend(succ[s].iter().copied());
        }
        for (i, d) in decls.iter().enumerate() {
            if !seen[i] {
                self.diags.push(
                    Diagnostic::warning(
                        "W0106",
                        format!("parser state `{}` is unreachable", d.name.name),
                    )
                    .with_label(d.name.span, "no transition leads here")
                    .with_help("remove it, or add a transition to it"),
                );
            }
        }
        // Every cycle must pass through a state with a limit: remove limited states and look for
        // a cycle among the rest.
        let limited: Vec<bool> = self.out.states.iter().map(|s| s.limit.is_some()).collect();
        let mut color = vec![0u8; n];
        for start in 0..n {
            if limited[start] || color[start] != 0 {
                continue;
            }
            if let Some(cycle) = find_cycle(start, &succ, &limited, &mut color) {
                let s = cycle[0];
                let names: Vec<&str> = cycle.iter().map(|&i| decls[i].name.name.as_str()).collect();
                let mut d = Diagnostic::error("E0107", "unbounded parser loop")
                    .with_label(
                        decls[s].name.span,
                        format!(
                            "the loop {} -> {} has no bound",
                            names.join(" -> "),
                            names[0]
                        ),
                    )
                    .with_help(format!(
                        "bound the number of visits: `state {} limit 4 {{ ... }}`",
                        decls[s].name.name
                    ));
                for &o in &cycle[1..] {
                    d = d.with_label(decls[o].name.span, "part of the loop");
                }
                self.err(d);
                return;
            }
        }
        for d in decls {
            if let Some((n, sp)) = d.limit {
                if !(1..=MAX_STATE_LIMIT).contains(&n) {
                    self.err(
                        Diagnostic::error(
                            "E0107",
                            format!("a state limit is 1 to {MAX_STATE_LIMIT}"),
                        )
                        .with_label(sp, format!("{n} is out of range"))
                        .with_help("a limit bounds how often one packet visits the state"),
                    );
                }
            }
        }
    }

    /// Headers that some reachable parser path extracts.
    pub(super) fn extracted_headers(&self) -> HashSet<HeaderId> {
        self.out
            .states
            .iter()
            .flat_map(|s| s.stmts.iter())
            .filter_map(|st| match st {
                TParserStmt::Extract { header, .. } => Some(*header),
                _ => None,
            })
            .collect()
    }
}

/// Depth-first search for a cycle that avoids limited states; returns the states on it.
fn find_cycle(
    start: usize,
    succ: &[Vec<usize>],
    limited: &[bool],
    color: &mut [u8],
) -> Option<Vec<usize>> {
    // color: 0 new, 1 on the stack, 2 done.
    let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
    color[start] = 1;
    while let Some(&mut (node, ref mut i)) = stack.last_mut() {
        if *i < succ[node].len() {
            let next = succ[node][*i];
            *i += 1;
            if limited[next] {
                continue;
            }
            match color[next] {
                0 => {
                    color[next] = 1;
                    stack.push((next, 0));
                }
                1 => {
                    let pos = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    return Some(stack[pos..].iter().map(|(n, _)| *n).collect());
                }
                _ => {}
            }
        } else {
            color[node] = 2;
            stack.pop();
        }
    }
    None
}
