//! Structural checks of the IR: every index in range, every width consistent. A failure here
//! is a bug in lowering, never a user error.

use crate::ir::*;

pub fn verify(p: &Program) -> Result<(), String> {
    let v = V { p };
    for (i, s) in p.states.iter().enumerate() {
        for op in &s.ops {
            match op {
                ParserOp::Extract {
                    header,
                    varbit_bits,
                } => {
                    v.header(*header)?;
                    if let Some(e) = varbit_bits {
                        v.expr(e, None)?;
                    }
                }
                ParserOp::SetMeta(m, e) => {
                    v.meta(*m)?;
                    v.expr(e, Some(p.metadata[*m].width))?;
                }
            }
        }
        match &s.transition {
            Transition::Goto(t) if *t >= p.states.len() => {
                return Err(format!("state {i}: goto {t} out of range"))
            }
            Transition::Select {
                keys,
                cases,
                default,
            } => {
                for k in keys {
                    v.expr(k, None)?;
                }
                for c in cases {
                    if c.matches.len() != keys.len() {
                        return Err(format!("state {i}: case arity"));
                    }
                    v.target(c.target)?;
                }
                v.target(*default)?;
            }
            _ => {}
        }
    }
    for a in &p.actions {
        v.stmts(&a.body, a.params.len())?;
    }
    for t in &p.tables {
        for k in &t.keys {
            v.expr(&k.expr, None)?;
        }
        for a in t.actions.iter().chain(std::iter::once(&t.default.0)) {
            if *a >= p.actions.len() {
                return Err(format!("table {}: action {a} out of range", t.name));
            }
        }
        if t.drop_on_hit >= p.drop_reasons.len() || t.drop_on_miss >= p.drop_reasons.len() {
            return Err(format!("table {}: drop reason out of range", t.name));
        }
    }
    v.stmts(&p.control, 0)?;
    for h in &p.deparser {
        v.header(*h)?;
    }
    for c in &p.checksums {
        v.header(c.header)?;
        if c.field >= p.headers[c.header].fields.len() {
            return Err("checksum field out of range".into());
        }
    }
    if p.drop_reasons.len() > u16::MAX as usize {
        return Err("too many drop reasons".into());
    }
    Ok(())
}

struct V<'a> {
    p: &'a Program,
}

impl V<'_> {
    fn header(&self, h: HeaderId) -> Result<(), String> {
        if h < self.p.headers.len() {
            Ok(())
        } else {
            Err(format!("header {h} out of range"))
        }
    }
    fn meta(&self, m: MetaId) -> Result<(), String> {
        if m < self.p.metadata.len() {
            Ok(())
        } else {
            Err(format!("metadata {m} out of range"))
        }
    }
    fn target(&self, t: Target) -> Result<(), String> {
        match t {
            Target::State(s) if s >= self.p.states.len() => Err(format!("state {s} out of range")),
            _ => Ok(()),
        }
    }
    fn stmts(&self, s: &[Stmt], params: usize) -> Result<(), String> {
        for st in s {
            match st {
                Stmt::SetField(h, f, e) => {
                    self.header(*h)?;
                    let fd = self.p.headers[*h]
                        .fields
                        .get(*f)
                        .ok_or("field out of range")?;
                    self.expr_p(e, Some(fd.width), params)?;
                }
                Stmt::SetMeta(m, e) => {
                    self.meta(*m)?;
                    self.expr_p(e, Some(self.p.metadata[*m].width), params)?;
                }
                Stmt::Apply(t) => self.table(*t)?,
                Stmt::If(c, a, b) => {
                    self.expr_p(c, Some(0), params)?;
                    self.stmts(a, params)?;
                    self.stmts(b, params)?;
                }
                Stmt::Switch(t, arms, d) => {
                    self.table(*t)?;
                    for (_, b) in arms {
                        self.stmts(b, params)?;
                    }
                    self.stmts(d, params)?;
                }
                Stmt::SetValid(h) | Stmt::SetInvalid(h) => self.header(*h)?,
                Stmt::Forward(e) => self.expr_p(e, Some(16), params)?,
                Stmt::Drop(r) if *r >= self.p.drop_reasons.len() => {
                    return Err(format!("drop reason {r} out of range"))
                }
                Stmt::Call(a, args) => {
                    let act = self.p.actions.get(*a).ok_or("action out of range")?;
                    if act.params.len() != args.len() {
                        return Err(format!("call of {}: arity", act.name));
                    }
                    for (e, (_, w)) in args.iter().zip(&act.params) {
                        self.expr_p(e, Some(*w), params)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
    fn table(&self, t: TableId) -> Result<(), String> {
        if t < self.p.tables.len() {
            Ok(())
        } else {
            Err(format!("table {t} out of range"))
        }
    }
    fn expr(&self, e: &Expr, want: Option<u32>) -> Result<(), String> {
        self.expr_p(e, want, usize::MAX)
    }
    fn expr_p(&self, e: &Expr, want: Option<u32>, params: usize) -> Result<(), String> {
        if let Some(w) = want {
            if e.width != w {
                return Err(format!("expected width {w}, found {} in {e:?}", e.width));
            }
        }
        if e.width > 128 {
            return Err("width over 128".into());
        }
        match &e.kind {
            ExprKind::Field(h, f) => {
                self.header(*h)?;
                let fd = self.p.headers[*h]
                    .fields
                    .get(*f)
                    .ok_or("field out of range")?;
                if fd.width != e.width {
                    return Err(format!("field {} read at width {}", fd.name, e.width));
                }
            }
            ExprKind::Meta(m) => self.meta(*m)?,
            ExprKind::Param(i) if params != usize::MAX && *i >= params => {
                return Err(format!("parameter {i} out of range"))
            }
            ExprKind::Valid(h) => self.header(*h)?,
            ExprKind::Binary(op, a, b) => {
                if op.is_logical() {
                    self.expr_p(a, Some(0), params)?;
                    self.expr_p(b, Some(0), params)?;
                } else if op.is_comparison() {
                    self.expr_p(a, Some(a.width), params)?;
                    self.expr_p(b, Some(a.width), params)?;
                } else if matches!(op, BinOp::Shl | BinOp::Shr) {
                    self.expr_p(a, Some(e.width), params)?;
                    self.expr_p(b, None, params)?;
                } else {
                    self.expr_p(a, Some(e.width), params)?;
                    self.expr_p(b, Some(e.width), params)?;
                }
            }
            ExprKind::Not(a) => self.expr_p(a, Some(0), params)?,
            ExprKind::BitNot(a) => self.expr_p(a, Some(e.width), params)?,
            ExprKind::Resize(a) => self.expr_p(a, None, params)?,
            ExprKind::Apply(t, _) => self.table(*t)?,
            ExprKind::Hash { fields, max, .. } => {
                for f in fields {
                    self.expr_p(f, None, params)?;
                }
                self.expr_p(max, Some(e.width), params)?;
            }
            ExprKind::SipHash { secret, fields } => {
                if *secret >= self.p.secrets.len() {
                    return Err("secret out of range".into());
                }
                for f in fields {
                    self.expr_p(f, None, params)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
