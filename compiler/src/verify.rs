//! Structural checks of the IR: every index in range, every width consistent. A failure here
//! is a bug in lowering, never a user error. Each node is checked where the walk meets it,
//! against its own operands, so that the rules live next to the node kind they are about.

use crate::ir::visit::{walk_expr, walk_program, walk_stmt, Body, Visitor};
use crate::ir::*;
use thiserror::Error;

/// What is wrong with an IR program (a compiler bug).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid IR: {0}")]
pub struct VerifyError(pub String);

pub fn verify(p: &Program) -> Result<(), VerifyError> {
    let mut v = V {
        p,
        params: None,
        error: None,
    };
    v.program();
    match v.error {
        Some(e) => Err(VerifyError(e)),
        None => Ok(()),
    }
}

struct V<'a> {
    p: &'a Program,
    /// The parameter count of the action being walked; `None` outside actions' bodies and
    /// the control block (the parser and table keys, which take no parameters either but
    /// were never checked for them).
    params: Option<usize>,
    /// The first problem found.
    error: Option<String>,
}

impl V<'_> {
    fn fail(&mut self, msg: String) {
        self.error.get_or_insert(msg);
    }

    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) -> bool {
        if !ok {
            self.fail(msg());
        }
        ok
    }

    fn header(&mut self, h: HeaderId) -> bool {
        let n = self.p.headers.len();
        self.check(h.index() < n, || format!("header {h} out of range"))
    }

    fn meta(&mut self, m: MetaId) -> bool {
        let n = self.p.metadata.len();
        self.check(m.index() < n, || format!("metadata {m} out of range"))
    }

    fn table(&mut self, t: TableId) -> bool {
        let n = self.p.tables.len();
        self.check(t.index() < n, || format!("table {t} out of range"))
    }

    fn action(&mut self, a: ActionId) -> bool {
        let n = self.p.actions.len();
        self.check(a.index() < n, || format!("action {a} out of range"))
    }

    /// `seal` and `open`: a 256-bit secret, and a header the deparser emits whose first
    /// fields are the 32-bit key id and the 64-bit counter, without a variable part.
    fn tunnel(&mut self, secret: SecretId, h: HeaderId) {
        let p = self.p;
        let ok = p.secrets.get(secret.index()).is_some_and(|s| s.bits == 256);
        self.check(ok, || {
            "seal or open with a secret that is not 256 bits".into()
        });
        if self.header(h) {
            let hd = &p.headers[h];
            let layout = hd.varbit.is_none()
                && hd.fields.len() >= 2
                && (hd.fields[0].bit_offset, hd.fields[0].width) == (0, 32)
                && (hd.fields[1].bit_offset, hd.fields[1].width) == (32, 64);
            self.check(layout, || format!("{}: not a tunnel header", hd.name));
            let emitted = p.deparser.contains(&h);
            self.check(emitted, || {
                format!("{}: sealed or opened but not emitted", hd.name)
            });
        }
    }

    fn reason(&mut self, r: ReasonId) -> bool {
        let n = self.p.drop_reasons.len();
        self.check(r.index() < n, || format!("drop reason {r} out of range"))
    }

    fn state_target(&mut self, t: Target) {
        if let Target::State(s) = t {
            let n = self.p.states.len();
            self.check(s.index() < n, || format!("state {s} out of range"));
        }
    }

    fn width(&mut self, e: &Expr, want: u32) {
        self.check(e.width == want, || {
            format!("expected width {want}, found {} in {e:?}", e.width)
        });
    }

    fn program(&mut self) {
        let p = self.p;
        for (i, s) in p.states.iter().enumerate() {
            for op in &s.ops {
                match op {
                    ParserOp::Extract { header, .. } => {
                        self.header(*header);
                    }
                    ParserOp::SetMeta(m, e) => {
                        if self.meta(*m) {
                            self.width(e, p.metadata[*m].width);
                        }
                    }
                }
            }
            match &s.transition {
                Transition::Goto(t) => self.state_target(Target::State(*t)),
                Transition::Select {
                    keys,
                    cases,
                    default,
                } => {
                    for c in cases {
                        self.check(c.matches.len() == keys.len(), || {
                            format!("state {i}: case arity")
                        });
                        self.state_target(c.target);
                    }
                    self.state_target(*default);
                }
                Transition::Accept | Transition::Reject => {}
            }
        }
        for t in &p.tables {
            for a in t.actions.iter().chain(std::iter::once(&t.default.0)) {
                self.check(a.index() < p.actions.len(), || {
                    format!("table {}: action {a} out of range", t.name)
                });
            }
            self.check(
                t.drop_on_hit.index() < p.drop_reasons.len()
                    && t.drop_on_miss.index() < p.drop_reasons.len(),
                || format!("table {}: drop reason out of range", t.name),
            );
        }
        walk_program(self, p);
        for h in &p.deparser {
            self.header(*h);
        }
        for c in &p.checksums {
            if self.header(c.header) {
                self.check(c.field.index() < p.headers[c.header].fields.len(), || {
                    "checksum field out of range".into()
                });
            }
        }
        self.check(p.drop_reasons.len() <= u16::MAX as usize, || {
            "too many drop reasons".into()
        });
    }
}

impl Visitor for V<'_> {
    fn visit_body(&mut self, body: Body, stmts: &[Stmt]) {
        self.params = Some(match body {
            Body::Control => 0,
            Body::Action(a) => self.p.actions[a].params.len(),
        });
        self.visit_block(stmts);
        self.params = None;
    }

    fn visit_stmt(&mut self, st: &Stmt) {
        let p = self.p;
        match st {
            Stmt::SetField(h, f, e) => {
                if self.header(*h) {
                    match p.headers[*h].fields.get(f.index()) {
                        Some(fd) => self.width(e, fd.width),
                        None => self.fail("field out of range".into()),
                    }
                }
            }
            Stmt::SetMeta(m, e) => {
                if self.meta(*m) {
                    self.width(e, p.metadata[*m].width);
                }
            }
            Stmt::Apply(t) | Stmt::Switch(t, ..) => {
                self.table(*t);
            }
            Stmt::If(c, ..) => self.width(c, 0),
            Stmt::SetValid(h) | Stmt::SetInvalid(h) => {
                self.header(*h);
            }
            Stmt::Forward(e) => self.width(e, 16),
            Stmt::Drop(r) => {
                self.reason(*r);
            }
            Stmt::Call(a, args) => {
                if self.action(*a) {
                    let act = &p.actions[*a];
                    if self.check(act.params.len() == args.len(), || {
                        format!("call of {}: arity", act.name)
                    }) {
                        for (e, (_, w)) in args.iter().zip(&act.params) {
                            self.width(e, *w);
                        }
                    }
                }
            }
            Stmt::Recirculate => {}
            Stmt::Seal {
                secret,
                header,
                peer,
                no_key,
            } => {
                self.tunnel(*secret, *header);
                self.width(peer, 32);
                self.reason(*no_key);
            }
            Stmt::Open {
                secret,
                header,
                bad_tag,
                replay,
            } => {
                self.tunnel(*secret, *header);
                self.reason(*bad_tag);
                self.reason(*replay);
            }
        }
        walk_stmt(self, st);
    }

    fn visit_expr(&mut self, e: &Expr) {
        let p = self.p;
        self.check(e.width <= 128, || "width over 128".into());
        match &e.kind {
            ExprKind::Field(h, f) => {
                if self.header(*h) {
                    match p.headers[*h].fields.get(f.index()) {
                        Some(fd) => {
                            self.check(fd.width == e.width, || {
                                format!("field {} read at width {}", fd.name, e.width)
                            });
                        }
                        None => self.fail("field out of range".into()),
                    }
                }
            }
            ExprKind::Meta(m) => {
                self.meta(*m);
            }
            ExprKind::Param(i) => {
                if let Some(n) = self.params {
                    self.check(*i < n, || format!("parameter {i} out of range"));
                }
            }
            ExprKind::Valid(h) => {
                self.header(*h);
            }
            ExprKind::Binary(op, a, b) => {
                if op.is_logical() {
                    self.width(a, 0);
                    self.width(b, 0);
                } else if op.is_comparison() {
                    self.width(b, a.width);
                } else if matches!(op, BinOp::Shl | BinOp::Shr) {
                    self.width(a, e.width);
                } else {
                    self.width(a, e.width);
                    self.width(b, e.width);
                }
            }
            ExprKind::Not(a) => self.width(a, 0),
            ExprKind::BitNot(a) => self.width(a, e.width),
            ExprKind::Apply(t, _) => {
                self.table(*t);
            }
            ExprKind::Hash { max, .. } => self.width(max, e.width),
            ExprKind::SipHash { secret, .. } => {
                let ok = p.secrets.get(secret.index()).is_some_and(|s| s.bits == 128);
                self.check(ok, || "siphash of a secret that is not 128 bits".into());
            }
            ExprKind::Const(_) | ExprKind::Std(_) | ExprKind::Resize(_) => {}
        }
        walk_expr(self, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(control: Vec<Stmt>) -> Program {
        Program {
            headers: vec![],
            metadata: vec![],
            secrets: vec![],
            states: vec![State {
                name: "start".into(),
                limit: None,
                ops: vec![],
                transition: Transition::Accept,
            }],
            actions: vec![],
            tables: vec![],
            control,
            deparser: vec![],
            checksums: vec![],
            drop_reasons: reason::BUILTIN.iter().map(|s| s.to_string()).collect(),
            headroom: 64,
        }
    }

    fn port(v: u128, w: u32) -> Expr {
        Expr {
            kind: ExprKind::Const(v),
            width: w,
        }
    }

    #[test]
    fn a_consistent_program_passes() {
        assert_eq!(verify(&program(vec![Stmt::Forward(port(1, 16))])), Ok(()));
    }

    #[test]
    fn nested_problems_are_found() {
        // A forward of the wrong width, inside an if.
        let bad = Stmt::If(
            Expr {
                kind: ExprKind::Const(1),
                width: 0,
            },
            vec![Stmt::Forward(port(1, 8))],
            vec![],
        );
        assert!(verify(&program(vec![bad]))
            .unwrap_err()
            .0
            .contains("expected width 16"));
        // A drop reason past the table, a table that does not exist.
        let e = verify(&program(vec![Stmt::Drop(ReasonId(99))])).unwrap_err();
        assert!(e.0.contains("drop reason r99 out of range"), "{e}");
        let e = verify(&program(vec![Stmt::Apply(TableId(0))])).unwrap_err();
        assert!(e.0.contains("table t0 out of range"), "{e}");
        // A parameter in the control block, which has none.
        let e = verify(&program(vec![Stmt::Forward(Expr {
            kind: ExprKind::Param(0),
            width: 16,
        })]))
        .unwrap_err();
        assert!(e.0.contains("parameter 0 out of range"), "{e}");
    }
}
