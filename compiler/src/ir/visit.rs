//! The one walk over the IR: which expressions and statements a node contains, in the order
//! they are evaluated. Passes that look at every node (verify, print, the analyses) override
//! the `visit_*` methods they care about and call the matching `walk_*` to go on into the
//! children; a bottom-up computation over an expression uses [`fold_expr`].
//!
//! Rule: a new IR node is added here once (`Expr::operands`, `walk_stmt`, `walk_program`);
//! every pass that walks then sees it.

use super::*;

impl Expr {
    /// The operands of this expression, in evaluation order (the interpreter's and the JIT's:
    /// left before right, a hash's fields before its maximum).
    pub fn operands(&self) -> impl Iterator<Item = &Expr> {
        let (one, two, list): (Option<&Expr>, Option<&Expr>, &[Expr]) = match &self.kind {
            ExprKind::Binary(_, a, b) => (Some(a), Some(b), &[]),
            ExprKind::Not(a) | ExprKind::BitNot(a) | ExprKind::Resize(a) => (Some(a), None, &[]),
            ExprKind::Hash { fields, max, .. } => (None, Some(max), fields),
            ExprKind::SipHash { fields, .. } => (None, None, fields),
            ExprKind::Const(_)
            | ExprKind::Field(..)
            | ExprKind::Meta(_)
            | ExprKind::Std(_)
            | ExprKind::Param(_)
            | ExprKind::Valid(_)
            | ExprKind::Apply(..) => (None, None, &[]),
        };
        one.into_iter().chain(list).chain(two)
    }
}

/// Where a statement list runs: the control block, or the body of an action (whose `Param`
/// expressions refer to its parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    Control,
    Action(ActionId),
}

/// A pass over the IR. Every method has a default that walks on; override what the pass
/// needs and call the `walk_*` function to continue below it.
pub trait Visitor {
    /// A statement list: an action's body, the control block, a branch.
    fn visit_block(&mut self, stmts: &[Stmt]) {
        walk_block(self, stmts)
    }
    fn visit_stmt(&mut self, stmt: &Stmt) {
        walk_stmt(self, stmt)
    }
    fn visit_expr(&mut self, expr: &Expr) {
        walk_expr(self, expr)
    }
    /// The body of an action or the control block, entered from `walk_program`.
    fn visit_body(&mut self, body: Body, stmts: &[Stmt]) {
        let _ = body;
        self.visit_block(stmts)
    }
    /// An expression of the parser (a varbit length, a metadata value, a select key).
    fn visit_parser_expr(&mut self, state: StateId, expr: &Expr) {
        let _ = state;
        self.visit_expr(expr)
    }
    /// A table's key expression.
    fn visit_key(&mut self, table: TableId, key: &Key) {
        let _ = table;
        self.visit_expr(&key.expr)
    }
}

pub fn walk_block<V: Visitor + ?Sized>(v: &mut V, stmts: &[Stmt]) {
    for s in stmts {
        v.visit_stmt(s);
    }
}

/// The expressions of a statement, then its nested blocks, in the order they run.
pub fn walk_stmt<V: Visitor + ?Sized>(v: &mut V, stmt: &Stmt) {
    match stmt {
        Stmt::SetField(_, _, e)
        | Stmt::SetMeta(_, e)
        | Stmt::Forward(e)
        | Stmt::Seal { peer: e, .. } => v.visit_expr(e),
        Stmt::If(c, a, b) => {
            v.visit_expr(c);
            v.visit_block(a);
            v.visit_block(b);
        }
        Stmt::Switch(_, arms, default) => {
            for (_, b) in arms {
                v.visit_block(b);
            }
            v.visit_block(default);
        }
        Stmt::Call(_, args) => {
            for e in args {
                v.visit_expr(e);
            }
        }
        Stmt::Apply(_)
        | Stmt::SetValid(_)
        | Stmt::SetInvalid(_)
        | Stmt::Drop(_)
        | Stmt::Open { .. }
        | Stmt::Recirculate => {}
    }
}

pub fn walk_expr<V: Visitor + ?Sized>(v: &mut V, expr: &Expr) {
    for o in expr.operands() {
        v.visit_expr(o);
    }
}

/// Every expression and statement of a program: the parser's, the tables' keys, each
/// action's body, then the control block.
pub fn walk_program<V: Visitor + ?Sized>(v: &mut V, p: &Program) {
    for (i, s) in p.states.iter().enumerate() {
        let id = StateId(i);
        for op in &s.ops {
            match op {
                ParserOp::Extract {
                    varbit_bits: Some(e),
                    ..
                } => v.visit_parser_expr(id, e),
                ParserOp::Extract {
                    varbit_bits: None, ..
                } => {}
                ParserOp::SetMeta(_, e) => v.visit_parser_expr(id, e),
            }
        }
        if let Transition::Select { keys, .. } = &s.transition {
            for k in keys {
                v.visit_parser_expr(id, k);
            }
        }
    }
    for (i, t) in p.tables.iter().enumerate() {
        for k in &t.keys {
            v.visit_key(TableId(i), k);
        }
    }
    for (i, a) in p.actions.iter().enumerate() {
        v.visit_body(Body::Action(ActionId(i)), &a.body);
    }
    v.visit_body(Body::Control, &p.control);
}

/// Computes a value bottom-up: `f` gets each node with the values of its operands (in
/// [`Expr::operands`] order).
pub fn fold_expr<T>(e: &Expr, f: &mut impl FnMut(&Expr, Vec<T>) -> T) -> T {
    let kids = e.operands().map(|o| fold_expr(o, f)).collect();
    f(e, kids)
}

/// Calls `f` on every statement of the program's actions and control block, nested ones
/// included.
pub fn for_each_stmt(p: &Program, f: impl FnMut(&Stmt)) {
    struct Each<F>(F);
    impl<F: FnMut(&Stmt)> Visitor for Each<F> {
        fn visit_stmt(&mut self, stmt: &Stmt) {
            (self.0)(stmt);
            walk_stmt(self, stmt);
        }
    }
    walk_program(&mut Each(f), p);
}

/// Whether any expression under `e` (itself included) satisfies `pred`.
pub fn any_expr(e: &Expr, pred: &impl Fn(&Expr) -> bool) -> bool {
    pred(e) || e.operands().any(|o| any_expr(o, pred))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: u128, w: u32) -> Expr {
        Expr {
            kind: ExprKind::Const(v),
            width: w,
        }
    }

    fn bin(op: BinOp, a: Expr, b: Expr, w: u32) -> Expr {
        Expr {
            kind: ExprKind::Binary(op, Box::new(a), Box::new(b)),
            width: w,
        }
    }

    #[test]
    fn operands_come_in_evaluation_order() {
        let e = bin(BinOp::Add, c(1, 8), c(2, 8), 8);
        let vals: Vec<_> = e
            .operands()
            .map(|o| match o.kind {
                ExprKind::Const(v) => v,
                _ => 0,
            })
            .collect();
        assert_eq!(vals, [1, 2]);
        let h = Expr {
            kind: ExprKind::Hash {
                algo: HashAlgo::Crc32,
                fields: vec![c(1, 8), c(2, 8)],
                max: Box::new(c(3, 16)),
            },
            width: 16,
        };
        let vals: Vec<_> = h
            .operands()
            .map(|o| match o.kind {
                ExprKind::Const(v) => v,
                _ => 0,
            })
            .collect();
        assert_eq!(vals, [1, 2, 3]);
    }

    #[test]
    fn fold_sees_children_first() {
        // ((1 + 2) * 3): a fold that prints.
        let e = bin(BinOp::Mul, bin(BinOp::Add, c(1, 8), c(2, 8), 8), c(3, 8), 8);
        let s = fold_expr(&e, &mut |e, kids: Vec<String>| match &e.kind {
            ExprKind::Const(v) => v.to_string(),
            ExprKind::Binary(op, ..) => format!("({} {} {})", kids[0], op.symbol(), kids[1]),
            _ => String::new(),
        });
        assert_eq!(s, "((1 + 2) * 3)");
    }

    #[test]
    fn the_walk_reaches_nested_statements_and_expressions() {
        let cond = Expr {
            kind: ExprKind::Apply(TableId(0), true),
            width: 0,
        };
        let stmts = vec![Stmt::If(
            cond,
            vec![Stmt::Switch(
                TableId(1),
                vec![(ActionId(2), vec![Stmt::Recirculate])],
                vec![Stmt::Forward(c(1, 16))],
            )],
            vec![Stmt::Drop(ReasonId(0))],
        )];
        #[derive(Default)]
        struct Count {
            stmts: usize,
            exprs: usize,
        }
        impl Visitor for Count {
            fn visit_stmt(&mut self, s: &Stmt) {
                self.stmts += 1;
                walk_stmt(self, s)
            }
            fn visit_expr(&mut self, e: &Expr) {
                self.exprs += 1;
                walk_expr(self, e)
            }
        }
        let mut n = Count::default();
        n.visit_block(&stmts);
        // if, switch, recirculate, forward, drop; the condition and the port.
        assert_eq!((n.stmts, n.exprs), (5, 2));
    }
}
