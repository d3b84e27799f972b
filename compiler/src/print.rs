//! A readable dump of the pipeline IR (`sluice compile --emit ir`): layouts in bits and bytes,
//! the parser graph, tables, actions, control and deparser, with names resolved.

use crate::ir::visit::{fold_expr, Visitor};
use crate::ir::*;
use std::fmt::Write as _;

pub fn print(p: &Program) -> String {
    let mut o = String::new();
    let w = &mut o;
    let _ = writeln!(w, "; headroom {} bytes", p.headroom);
    for (i, h) in p.headers.iter().enumerate() {
        let _ = writeln!(
            w,
            "header h{i} {} : {} ({} bytes{})",
            h.name,
            h.type_name,
            h.fixed_bytes,
            match h.varbit {
                Some((f, max)) => format!(" + {} up to {max}", h.fields[f].name),
                None => String::new(),
            }
        );
        for f in &h.fields {
            let _ = writeln!(
                w,
                "    {:<16} bits {:>4}..{:<4} byte {:>3} bit {}",
                f.name,
                f.bit_offset,
                f.bit_offset + f.width,
                f.bit_offset / 8,
                f.bit_offset % 8
            );
        }
    }
    for (i, m) in p.metadata.iter().enumerate() {
        let _ = writeln!(w, "meta m{i} {}: bit<{}>", m.name, m.width);
    }
    for (i, s) in p.secrets.iter().enumerate() {
        if s.bits == 128 {
            let _ = writeln!(w, "secret s{i} {}", s.name);
        } else {
            let _ = writeln!(w, "secret s{i} {}: bit<{}>", s.name, s.bits);
        }
    }
    for c in &p.checksums {
        let h = &p.headers[c.header];
        let _ = writeln!(
            w,
            "checksum {:?} {}.{}{}",
            c.kind,
            h.name,
            h.fields[c.field].name,
            c.pseudo
                .map(|ph| format!(" pseudo {}", p.headers[ph].name))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(w, "parser");
    for (i, s) in p.states.iter().enumerate() {
        let lim = s.limit.map(|l| format!(" limit {l}")).unwrap_or_default();
        let _ = writeln!(w, "  state s{i} {}{lim}", s.name);
        for op in &s.ops {
            match op {
                ParserOp::Extract {
                    header,
                    varbit_bits,
                } => {
                    let h = &p.headers[*header];
                    let _ = write!(w, "    extract {} check {} bytes", h.name, h.fixed_bytes);
                    if let Some(e) = varbit_bits {
                        let _ = write!(w, ", varbit bits {}", expr(p, e));
                    }
                    let _ = writeln!(w);
                }
                ParserOp::SetMeta(m, e) => {
                    let _ = writeln!(w, "    meta.{} = {}", p.metadata[*m].name, expr(p, e));
                }
            }
        }
        match &s.transition {
            Transition::Accept => {
                let _ = writeln!(w, "    -> accept");
            }
            Transition::Reject => {
                let _ = writeln!(w, "    -> reject");
            }
            Transition::Goto(t) => {
                let _ = writeln!(w, "    -> {}", p.states[*t].name);
            }
            Transition::Select {
                keys,
                cases,
                default,
            } => {
                let ks: Vec<String> = keys.iter().map(|k| expr(p, k)).collect();
                let _ = writeln!(w, "    select ({})", ks.join(", "));
                for c in cases {
                    let ms: Vec<String> = c
                        .matches
                        .iter()
                        .map(|m| match m {
                            SelectMatch::Masked { mask: 0, .. } => "_".to_string(),
                            SelectMatch::Masked { value, mask } if *mask == u128::MAX => {
                                format!("{value:#x}")
                            }
                            SelectMatch::Masked { value, mask } => {
                                format!("{value:#x} &&& {mask:#x}")
                            }
                            SelectMatch::Range { lo, hi } => format!("{lo:#x}..{hi:#x}"),
                        })
                        .collect();
                    let _ = writeln!(w, "      ({}) -> {}", ms.join(", "), target(p, c.target));
                }
                let _ = writeln!(w, "      default -> {}", target(p, *default));
            }
        }
    }
    for (i, a) in p.actions.iter().enumerate() {
        let ps: Vec<String> = a
            .params
            .iter()
            .enumerate()
            .map(|(i, (n, w))| {
                let nz = if a.nonzero.get(i).copied().unwrap_or(false) {
                    "nonzero "
                } else {
                    ""
                };
                format!("{n}: {nz}bit<{w}>")
            })
            .collect();
        let _ = writeln!(w, "action {} {}({})", ActionId(i), a.name, ps.join(", "));
        stmts(p, w, &a.body, 2, &a.params);
    }
    for (i, t) in p.tables.iter().enumerate() {
        let _ = writeln!(w, "table {} {} size {}", TableId(i), t.name, t.size);
        for k in &t.keys {
            let _ = writeln!(w, "    key {} {:?} = {}", k.name, k.kind, expr(p, &k.expr));
        }
        let acts: Vec<&str> = t
            .actions
            .iter()
            .map(|a| p.actions[*a].name.as_str())
            .collect();
        let _ = writeln!(w, "    actions {}", acts.join(", "));
        let _ = writeln!(
            w,
            "    default {}{:?}{}",
            p.actions[t.default.0].name,
            t.default.1,
            if t.const_default { " const" } else { "" }
        );
        for e in &t.entries {
            let _ = writeln!(
                w,
                "    entry {:?} -> {}{:?} priority {:?}",
                e.keys, p.actions[e.action].name, e.args, e.priority
            );
        }
    }
    let _ = writeln!(w, "control");
    stmts(p, w, &p.control, 2, &[]);
    let ds: Vec<&str> = p
        .deparser
        .iter()
        .map(|h| p.headers[*h].name.as_str())
        .collect();
    let _ = writeln!(w, "deparser emit {}", ds.join(", "));
    let _ = writeln!(w, "drop reasons");
    for (i, r) in p.drop_reasons.iter().enumerate() {
        let _ = writeln!(w, "  {} {r:?}", ReasonId(i));
    }
    o
}

fn target(p: &Program, t: Target) -> String {
    match t {
        Target::Accept => "accept".into(),
        Target::Reject => "reject".into(),
        Target::State(s) => p.states[s].name.clone(),
    }
}

/// Prints statements, one per line, nested blocks indented: a visitor that writes each
/// statement and walks into its blocks itself, to put `else` and `case` lines between them.
struct Stmts<'a> {
    p: &'a Program,
    out: &'a mut String,
    indent: usize,
    params: &'a [(String, u32)],
}

impl Stmts<'_> {
    fn line(&mut self, text: std::fmt::Arguments) {
        let _ = writeln!(self.out, "{:indent$}{text}", "", indent = self.indent);
    }

    fn nested(&mut self, by: usize, stmts: &[Stmt]) {
        self.indent += by;
        self.visit_block(stmts);
        self.indent -= by;
    }

    fn expr(&self, e: &Expr) -> String {
        expr_p(self.p, e, self.params)
    }
}

impl Visitor for Stmts<'_> {
    fn visit_stmt(&mut self, st: &Stmt) {
        let p = self.p;
        match st {
            Stmt::SetField(h, f, e) => {
                let hd = &p.headers[*h];
                let v = self.expr(e);
                self.line(format_args!("{}.{} = {v}", hd.name, hd.fields[*f].name));
            }
            Stmt::SetMeta(m, e) => {
                let v = self.expr(e);
                self.line(format_args!("meta.{} = {v}", p.metadata[*m].name));
            }
            Stmt::Apply(t) => self.line(format_args!("apply {}", p.tables[*t].name)),
            Stmt::If(c, a, b) => {
                let c = self.expr(c);
                self.line(format_args!("if {c}"));
                self.nested(2, a);
                if !b.is_empty() {
                    self.line(format_args!("else"));
                    self.nested(2, b);
                }
            }
            Stmt::Switch(t, arms, d) => {
                self.line(format_args!("switch apply {}", p.tables[*t].name));
                for (a, b) in arms {
                    self.line(format_args!("  case {}", p.actions[*a].name));
                    self.nested(4, b);
                }
                self.line(format_args!("  default"));
                self.nested(4, d);
            }
            Stmt::SetValid(h) => self.line(format_args!("set_valid {}", p.headers[*h].name)),
            Stmt::SetInvalid(h) => self.line(format_args!("set_invalid {}", p.headers[*h].name)),
            Stmt::Forward(e) => {
                let v = self.expr(e);
                self.line(format_args!("forward {v}"));
            }
            Stmt::Drop(r) => self.line(format_args!("drop {r} {:?}", p.drop_reasons[*r])),
            Stmt::Call(a, args) => {
                let xs: Vec<String> = args.iter().map(|e| self.expr(e)).collect();
                self.line(format_args!(
                    "call {}({})",
                    p.actions[*a].name,
                    xs.join(", ")
                ));
            }
            Stmt::Recirculate => self.line(format_args!("recirculate")),
            Stmt::Seal {
                secret,
                header,
                peer,
                no_key,
            } => {
                let v = self.expr(peer);
                self.line(format_args!(
                    "seal {} after {} for {v} (else drop {no_key} {:?})",
                    p.secrets[*secret].name, p.headers[*header].name, p.drop_reasons[*no_key]
                ));
            }
            Stmt::Open {
                secret,
                header,
                bad_tag,
                replay,
            } => self.line(format_args!(
                "open {} after {} (else drop {bad_tag} {:?} or {replay} {:?})",
                p.secrets[*secret].name,
                p.headers[*header].name,
                p.drop_reasons[*bad_tag],
                p.drop_reasons[*replay]
            )),
        }
    }
}

fn stmts(p: &Program, w: &mut String, s: &[Stmt], ind: usize, params: &[(String, u32)]) {
    Stmts {
        p,
        out: w,
        indent: ind,
        params,
    }
    .visit_block(s);
}

fn expr(p: &Program, e: &Expr) -> String {
    expr_p(p, e, &[])
}

/// An expression, printed bottom-up from its operands.
fn expr_p(p: &Program, e: &Expr, params: &[(String, u32)]) -> String {
    fold_expr(e, &mut |e, kids: Vec<String>| {
        let ty = if e.width == 0 {
            String::new()
        } else {
            format!(":{}", e.width)
        };
        match &e.kind {
            ExprKind::Const(v) => format!("{v:#x}{ty}"),
            ExprKind::Field(h, f) => {
                let hd = &p.headers[*h];
                format!("{}.{}{ty}", hd.name, hd.fields[*f].name)
            }
            ExprKind::Meta(m) => format!("meta.{}{ty}", p.metadata[*m].name),
            ExprKind::Std(s) => format!("std.{}{ty}", s.name()),
            ExprKind::Param(i) => match params.get(*i) {
                Some((n, _)) => format!("{n}{ty}"),
                None => format!("param{i}{ty}"),
            },
            ExprKind::Valid(h) => format!("{}.valid", p.headers[*h].name),
            ExprKind::Binary(op, ..) => format!(
                "({} {} {}){}",
                kids[0],
                op.symbol(),
                kids[1],
                if op.is_comparison() || op.is_logical() {
                    ""
                } else {
                    &ty
                }
            ),
            ExprKind::Not(_) => format!("!{}", kids[0]),
            ExprKind::BitNot(_) => format!("~{}", kids[0]),
            ExprKind::Resize(_) => format!("resize{ty}({})", kids[0]),
            ExprKind::Apply(t, hit) => format!(
                "apply({}).{}",
                p.tables[*t].name,
                if *hit { "hit" } else { "miss" }
            ),
            ExprKind::Hash { algo, .. } => {
                // The operands are the fields, then the maximum.
                let (max, fields) = kids
                    .split_last()
                    .map_or((String::new(), &[][..]), |(m, f)| (m.clone(), f));
                format!("hash_{algo:?}({{{}}}, {max}){ty}", fields.join(", "))
            }
            ExprKind::SipHash { secret, .. } => {
                format!(
                    "siphash({}, {{{}}}){ty}",
                    p.secrets[*secret].name,
                    kids.join(", ")
                )
            }
        }
    })
}
