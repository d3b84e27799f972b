//! `compile --emit ast`: the syntax tree as text, one line per declaration and statement,
//! each expression on one line as a fully parenthesised prefix form, so that the grouping the
//! parser chose is visible.
//!
//! The output is linear in the size of the program: an expression is written once, without
//! indentation for its depth (Rust's `{:#?}` indents every level, which makes a 1,000-deep
//! expression quadratic), and statement indentation is bounded by the bracket limit the parser
//! enforces.

use super::*;
use std::fmt::Write;

/// The program as text (see the module comment).
pub fn print(program: &Program) -> String {
    let mut p = Printer::default();
    for item in &program.items {
        p.item(item);
    }
    p.out
}

#[derive(Default)]
struct Printer {
    out: String,
    indent: usize,
}

impl Printer {
    /// Starts a line at the current indentation.
    fn line(&mut self) -> &mut String {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        &mut self.out
    }

    fn span(&mut self, s: Span) {
        let _ = writeln!(self.out, " @{}..{}", s.start, s.end);
    }

    fn nested(&mut self, f: impl FnOnce(&mut Self)) {
        self.indent += 1;
        f(self);
        self.indent -= 1;
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::HeaderType(h) => {
                let _ = write!(self.line(), "header {}", h.name);
                self.span(h.span);
                self.nested(|p| p.fields(&h.fields));
            }
            Item::HeaderInst(h) => {
                let _ = write!(self.line(), "header {}: {}", h.name, h.ty);
                self.span(h.span);
            }
            Item::Metadata(m) => {
                self.line().push_str("metadata");
                self.span(m.span);
                self.nested(|p| p.fields(&m.fields));
            }
            Item::Secret(sd) => {
                let _ = write!(self.line(), "secret {}", sd.name);
                if let Some(t) = &sd.ty {
                    let _ = write!(self.out, ": {}", ty(t));
                }
                self.span(sd.span);
            }
            Item::Checksum(c) => {
                let _ = write!(self.line(), "checksum {}({}", c.kind, c.field);
                if let Some(pseudo) = &c.pseudo {
                    let _ = write!(self.out, ", {pseudo}");
                }
                self.out.push(')');
                self.span(c.span);
            }
            Item::Parser(parser) => {
                self.line().push_str("parser");
                self.span(parser.span);
                self.nested(|p| {
                    for s in &parser.states {
                        p.state(s);
                    }
                });
            }
            Item::Action(a) => {
                let _ = write!(self.line(), "action {}", a.name);
                self.span(a.span);
                self.nested(|p| {
                    for param in &a.params {
                        let _ = write!(p.line(), "param {}: {}", param.name, ty(&param.ty));
                        if param.nonzero {
                            p.out.push_str(" nonzero");
                        }
                        p.out.push('\n');
                    }
                    p.block(&a.body);
                });
            }
            Item::Table(t) => self.table(t),
            Item::Control(c) => {
                let _ = write!(self.line(), "control {}", c.name);
                self.span(c.span);
                self.nested(|p| p.block(&c.body));
            }
            Item::Deparser(d) => {
                self.line().push_str("deparser");
                self.span(d.span);
                self.nested(|p| {
                    for h in &d.emits {
                        let _ = writeln!(p.line(), "emit {h}");
                    }
                });
            }
        }
    }

    fn fields(&mut self, fields: &[FieldDecl]) {
        for f in fields {
            let _ = writeln!(self.line(), "field {}: {}", f.name, ty(&f.ty));
        }
    }

    fn state(&mut self, s: &StateDecl) {
        let _ = write!(self.line(), "state {}", s.name);
        if let Some((limit, _)) = s.limit {
            let _ = write!(self.out, " limit {limit}");
        }
        self.span(s.span);
        self.nested(|p| {
            for stmt in &s.stmts {
                match stmt {
                    ParserStmt::Extract {
                        header,
                        varbit,
                        span,
                    } => {
                        let _ = write!(p.line(), "extract {header}");
                        if let Some((field, bits)) = varbit {
                            let _ = write!(p.out, " varbit {field} ");
                            p.expr(bits);
                        }
                        p.span(*span);
                    }
                    ParserStmt::Assign(a) => p.assign(a),
                }
            }
            match &s.transition {
                Transition::Goto(target) => {
                    let _ = write!(p.line(), "transition {target}");
                    p.span(target.span);
                }
                Transition::Select { exprs, cases, span } => {
                    p.line().push_str("transition select");
                    p.exprs(exprs);
                    p.span(*span);
                    p.nested(|p| {
                        for c in cases {
                            p.line().push_str("case ");
                            p.keys(&c.keys);
                            let _ = write!(p.out, " => {}", c.target);
                            p.span(c.span);
                        }
                    });
                }
            }
        });
    }

    fn table(&mut self, t: &TableDecl) {
        let _ = write!(self.line(), "table {}", t.name);
        self.span(t.span);
        self.nested(|p| {
            for k in &t.keys {
                let _ = writeln!(p.line(), "key {}: {}", k.field, k.kind);
            }
            for a in &t.actions {
                let _ = writeln!(p.line(), "action {a}");
            }
            if let Some(d) = &t.default {
                p.line().push_str(if d.is_const {
                    "const default "
                } else {
                    "default "
                });
                p.call(&d.call);
                p.span(d.span);
            }
            if let Some((size, _)) = t.size {
                let _ = writeln!(p.line(), "size {size}");
            }
            if let Some(entries) = &t.entries {
                p.line().push_str(if entries.is_const {
                    "const entries"
                } else {
                    "entries"
                });
                p.span(entries.span);
                p.nested(|p| {
                    for e in &entries.entries {
                        p.line().push_str("entry ");
                        p.keys(&e.keys);
                        p.out.push_str(" => ");
                        p.call(&e.call);
                        if let Some((prio, _)) = e.priority {
                            let _ = write!(p.out, " priority {prio}");
                        }
                        p.span(e.span);
                    }
                });
            }
        });
    }

    fn keys(&mut self, keys: &KeysetList) {
        match keys {
            KeysetList::Default(_) => self.out.push_str("default"),
            KeysetList::List(list, _) => {
                self.out.push('(');
                for (i, k) in list.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    let _ = match k {
                        Keyset::Default(_) => write!(self.out, "_"),
                        Keyset::Value(v) => write!(self.out, "{}", lit(v)),
                        Keyset::Mask(v, m) => write!(self.out, "{} &&& {}", lit(v), lit(m)),
                        Keyset::Range(lo, hi) => write!(self.out, "{}..{}", lit(lo), lit(hi)),
                        Keyset::Prefix(v, len, _) => write!(self.out, "{}/{len}", lit(v)),
                    };
                }
                self.out.push(')');
            }
        }
    }

    fn block(&mut self, b: &Block) {
        self.line().push_str("block");
        self.span(b.span);
        self.nested(|p| {
            for s in &b.stmts {
                p.stmt(s);
            }
        });
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Assign(a) => self.assign(a),
            Stmt::Apply(t, span) => {
                let _ = write!(self.line(), "apply {t}");
                self.span(*span);
            }
            Stmt::Call(c) => {
                self.line().push_str("call ");
                self.call(c);
                self.span(c.span);
            }
            Stmt::If {
                cond,
                then,
                els,
                span,
            } => {
                self.line().push_str("if ");
                self.expr(cond);
                self.span(*span);
                self.nested(|p| {
                    p.block(then);
                    if let Some(els) = els {
                        p.line().push_str("else\n");
                        p.block(els);
                    }
                });
            }
            Stmt::Switch { table, cases, span } => {
                let _ = write!(self.line(), "switch {table}");
                self.span(*span);
                self.nested(|p| {
                    for c in cases {
                        match &c.action {
                            Some(a) => {
                                let _ = write!(p.line(), "case {a}");
                            }
                            None => p.line().push_str("default"),
                        }
                        p.span(c.span);
                        p.nested(|p| p.block(&c.body));
                    }
                });
            }
            Stmt::Block(b) => self.block(b),
        }
    }

    fn assign(&mut self, a: &Assign) {
        let _ = write!(self.line(), "assign {} ", a.target);
        self.expr(&a.value);
        self.span(a.span);
    }

    fn call(&mut self, c: &Call) {
        let _ = write!(self.out, "{}(", c.name);
        for (i, a) in c.args.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            match a {
                Arg::Expr(e) => self.expr(e),
                Arg::Str(s, _) => {
                    let _ = write!(self.out, "{s:?}");
                }
            }
        }
        self.out.push(')');
    }

    fn exprs(&mut self, exprs: &[Expr]) {
        self.out.push('(');
        for (i, e) in exprs.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.expr(e);
        }
        self.out.push(')');
    }

    /// Prefix form: `(== ethernet.ether_type 2048:16)`. Recursion is bounded by the parser's
    /// depth limit (`MAX_EXPR_DEPTH`).
    fn expr(&mut self, e: &Expr) {
        let _ = match &e.kind {
            ExprKind::Lit(l) => write!(self.out, "{}", lit(l)),
            ExprKind::Bool(b) => write!(self.out, "{b}"),
            ExprKind::Path(path) => write!(self.out, "{path}"),
            ExprKind::Binary(op, a, b) => {
                let _ = write!(self.out, "({} ", op.symbol());
                self.expr(a);
                self.out.push(' ');
                self.expr(b);
                write!(self.out, ")")
            }
            ExprKind::Not(a) => {
                self.out.push_str("(! ");
                self.expr(a);
                write!(self.out, ")")
            }
            ExprKind::BitNot(a) => {
                self.out.push_str("(~ ");
                self.expr(a);
                write!(self.out, ")")
            }
            ExprKind::Cast(t, a) => {
                let _ = write!(self.out, "(cast {} ", ty(t));
                self.expr(a);
                write!(self.out, ")")
            }
            ExprKind::Apply(t, r) => write!(
                self.out,
                "{t}.apply().{}",
                match r {
                    TableResult::Hit => "hit",
                    TableResult::Miss => "miss",
                }
            ),
            ExprKind::Hash { algo, fields, max } => {
                let _ = write!(self.out, "(hash {algo} ");
                self.exprs(fields);
                self.out.push(' ');
                self.expr(max);
                write!(self.out, ")")
            }
            ExprKind::SipHash { secret, fields } => {
                let _ = write!(self.out, "(siphash {secret} ");
                self.exprs(fields);
                write!(self.out, ")")
            }
        };
    }
}

fn ty(t: &Type) -> String {
    match t.kind {
        TypeKind::Bit(w) => format!("bit<{w}>"),
        TypeKind::Varbit(w) => format!("varbit<{w}>"),
        TypeKind::Port => "port".to_string(),
    }
}

/// A literal's value, and the width its spelling implies after a colon (`10.0.0.1` is
/// `167772161:32`).
fn lit(l: &Lit) -> String {
    match l.natural_width {
        Some(w) => format!("{}:{w}", l.value),
        None => l.value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(src: &str) -> String {
        print(&crate::parse(src).unwrap())
    }

    #[test]
    fn grouping_is_explicit() {
        let out = printed(
            "control ingress { if (!(std.ingress_port == 1) && (bit<8>)std.ingress_port + 2 * 3 > 4) { drop(); } }",
        );
        assert!(
            out.contains(
                "if (&& (! (== std.ingress_port 1)) (> (+ (cast bit<8> std.ingress_port) (* 2 3)) 4))"
            ),
            "{out}"
        );
    }

    /// The probe's case: `{:#?}` took 48 s on a 1,000-deep expression because it indents every
    /// level. Doubling the depth must double the output, not quadruple it.
    #[test]
    fn output_is_linear_in_depth() {
        let len = |n: usize| {
            printed(&format!(
                "control ingress {{ if ({}(std.ingress_port == 1)) {{ drop(); }} }}",
                "!".repeat(n)
            ))
            .len()
        };
        let (short, long) = (len(120), len(240));
        assert!(
            long < 2 * short + 64,
            "{short} bytes at depth 120, {long} at 240"
        );
    }
}
