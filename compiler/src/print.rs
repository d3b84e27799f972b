//! A readable dump of the pipeline IR (`sluice compile --emit ir`): layouts in bits and bytes,
//! the parser graph, tables, actions, control and deparser, with names resolved.

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
        let _ = writeln!(w, "secret s{i} {s}");
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
        let _ = writeln!(w, "action a{i} {}({})", a.name, ps.join(", "));
        stmts(p, w, &a.body, 2, &a.params);
    }
    for (i, t) in p.tables.iter().enumerate() {
        let _ = writeln!(w, "table t{i} {} size {}", t.name, t.size);
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
        let _ = writeln!(w, "  r{i} {r:?}");
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

fn stmts(p: &Program, w: &mut String, s: &[Stmt], ind: usize, params: &[(String, u32)]) {
    let pad = " ".repeat(ind);
    for st in s {
        match st {
            Stmt::SetField(h, f, e) => {
                let hd = &p.headers[*h];
                let _ = writeln!(
                    w,
                    "{pad}{}.{} = {}",
                    hd.name,
                    hd.fields[*f].name,
                    expr_p(p, e, params)
                );
            }
            Stmt::SetMeta(m, e) => {
                let _ = writeln!(
                    w,
                    "{pad}meta.{} = {}",
                    p.metadata[*m].name,
                    expr_p(p, e, params)
                );
            }
            Stmt::Apply(t) => {
                let _ = writeln!(w, "{pad}apply {}", p.tables[*t].name);
            }
            Stmt::If(c, a, b) => {
                let _ = writeln!(w, "{pad}if {}", expr_p(p, c, params));
                stmts(p, w, a, ind + 2, params);
                if !b.is_empty() {
                    let _ = writeln!(w, "{pad}else");
                    stmts(p, w, b, ind + 2, params);
                }
            }
            Stmt::Switch(t, arms, d) => {
                let _ = writeln!(w, "{pad}switch apply {}", p.tables[*t].name);
                for (a, b) in arms {
                    let _ = writeln!(w, "{pad}  case {}", p.actions[*a].name);
                    stmts(p, w, b, ind + 4, params);
                }
                let _ = writeln!(w, "{pad}  default");
                stmts(p, w, d, ind + 4, params);
            }
            Stmt::SetValid(h) => {
                let _ = writeln!(w, "{pad}set_valid {}", p.headers[*h].name);
            }
            Stmt::SetInvalid(h) => {
                let _ = writeln!(w, "{pad}set_invalid {}", p.headers[*h].name);
            }
            Stmt::Forward(e) => {
                let _ = writeln!(w, "{pad}forward {}", expr_p(p, e, params));
            }
            Stmt::Drop(r) => {
                let _ = writeln!(w, "{pad}drop r{r} {:?}", p.drop_reasons[*r]);
            }
            Stmt::Call(a, args) => {
                let xs: Vec<String> = args.iter().map(|e| expr_p(p, e, params)).collect();
                let _ = writeln!(w, "{pad}call {}({})", p.actions[*a].name, xs.join(", "));
            }
            Stmt::Recirculate => {
                let _ = writeln!(w, "{pad}recirculate");
            }
        }
    }
}

fn expr(p: &Program, e: &Expr) -> String {
    expr_p(p, e, &[])
}

fn expr_p(p: &Program, e: &Expr, params: &[(String, u32)]) -> String {
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
        ExprKind::Binary(op, a, b) => format!(
            "({} {} {}){}",
            expr_p(p, a, params),
            op.symbol(),
            expr_p(p, b, params),
            if op.is_comparison() || op.is_logical() {
                ""
            } else {
                &ty
            }
        ),
        ExprKind::Not(a) => format!("!{}", expr_p(p, a, params)),
        ExprKind::BitNot(a) => format!("~{}", expr_p(p, a, params)),
        ExprKind::Resize(a) => format!("resize{ty}({})", expr_p(p, a, params)),
        ExprKind::Apply(t, hit) => format!(
            "apply({}).{}",
            p.tables[*t].name,
            if *hit { "hit" } else { "miss" }
        ),
        ExprKind::Hash { algo, fields, max } => {
            let fs: Vec<String> = fields.iter().map(|f| expr_p(p, f, params)).collect();
            format!(
                "hash_{algo:?}({{{}}}, {}){ty}",
                fs.join(", "),
                expr_p(p, max, params)
            )
        }
        ExprKind::SipHash { secret, fields } => {
            let fs: Vec<String> = fields.iter().map(|f| expr_p(p, f, params)).collect();
            format!("siphash({}, {{{}}}){ty}", p.secrets[*secret], fs.join(", "))
        }
    }
}
