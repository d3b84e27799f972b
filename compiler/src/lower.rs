//! Lowering: a checked program to the pipeline IR. After `check`, nothing here can fail on
//! user input.

use crate::ir::*;
use sluice_lang::ast;
use sluice_lang::check::{self as hir, Checked, SelectKey, TExpr, TExprKind, TStmt};

pub fn lower(c: &Checked) -> Program {
    let headers: Vec<Header> = c
        .headers
        .iter()
        .map(|h| {
            let ty = &c.header_types[h.ty];
            Header {
                name: h.name.clone(),
                type_name: ty.name.clone(),
                fields: ty
                    .fields
                    .iter()
                    .map(|f| Field {
                        name: f.name.clone(),
                        bit_offset: f.bit_offset,
                        width: f.width,
                    })
                    .collect(),
                fixed_bytes: (ty.fixed_bits / 8) as usize,
                varbit: ty
                    .varbit()
                    .map(|(i, f)| (FieldId(i), (f.width / 8) as usize)),
            }
        })
        .collect();
    let mut drop_reasons: Vec<String> = reason::BUILTIN.iter().map(|s| s.to_string()).collect();
    let user_reason_base = drop_reasons.len();
    drop_reasons.extend(c.drop_reasons.iter().cloned());
    let mut intern = |s: String| match drop_reasons.iter().position(|r| *r == s) {
        Some(i) => ReasonId(i),
        None => {
            drop_reasons.push(s);
            ReasonId(drop_reasons.len() - 1)
        }
    };
    let tables: Vec<Table> = c
        .tables
        .iter()
        .map(|t| Table {
            name: t.name.clone(),
            keys: t
                .keys
                .iter()
                .map(|k| Key {
                    name: k.name.clone(),
                    expr: expr(&k.expr),
                    kind: k.kind,
                })
                .collect(),
            actions: t.actions.iter().map(|&a| ActionId(a)).collect(),
            default: (ActionId(t.default.0), t.default.1.clone()),
            const_default: t.const_default,
            size: t.size,
            entries: t
                .entries
                .iter()
                .map(|e| ConstEntry {
                    keys: e
                        .keys
                        .iter()
                        .zip(&t.keys)
                        .zip(&e.prefix)
                        .map(|((k, ki), p)| entry_key(k, ki.kind, *p, ki.expr.width))
                        .collect(),
                    action: ActionId(e.action),
                    args: e.args.clone(),
                    priority: e.priority,
                })
                .collect(),
            const_entries: t.const_entries,
            drop_on_miss: intern(format!("{} miss", t.name)),
            drop_on_hit: intern(format!("{} drop", t.name)),
        })
        .collect();
    let rb = user_reason_base;
    let states = c
        .states
        .iter()
        .map(|s| State {
            name: s.name.clone(),
            limit: s.limit.map(|l| l.min(u32::MAX as u64) as u32),
            ops: s
                .stmts
                .iter()
                .map(|op| match op {
                    hir::TParserStmt::Extract { header, varbit_len } => ParserOp::Extract {
                        header: HeaderId(*header),
                        varbit_bits: varbit_len.as_ref().map(expr),
                    },
                    hir::TParserStmt::Assign(hir::LValue::Meta(m), v) => {
                        ParserOp::SetMeta(MetaId(*m), expr(v))
                    }
                    // The checker only lets the parser assign metadata.
                    hir::TParserStmt::Assign(hir::LValue::Field(..), v) => {
                        ParserOp::SetMeta(MetaId(0), expr(v))
                    }
                })
                .collect(),
            transition: transition(&s.transition),
        })
        .collect();
    let actions = c
        .actions
        .iter()
        .map(|a| Action {
            name: a.name.clone(),
            params: a.params.clone(),
            nonzero: a.nonzero.clone(),
            body: stmts(&a.body, rb),
        })
        .collect();
    let mut program = Program {
        metadata: c
            .metadata
            .iter()
            .map(|m| Meta {
                name: m.name.clone(),
                width: m.width,
            })
            .collect(),
        secrets: c.secrets.clone(),
        states,
        actions,
        tables,
        control: stmts(&c.control, rb),
        deparser: c.deparser.iter().map(|&h| HeaderId(h)).collect(),
        checksums: c
            .checksums
            .iter()
            .map(|k| Checksum {
                kind: match k.kind {
                    hir::ChecksumKind::Ipv4Header => ChecksumKind::Ipv4Header,
                    hir::ChecksumKind::Tcp => ChecksumKind::Tcp,
                    hir::ChecksumKind::Udp => ChecksumKind::Udp,
                },
                header: HeaderId(k.header),
                field: FieldId(k.field),
                pseudo: k.pseudo.map(HeaderId),
            })
            .collect(),
        drop_reasons,
        headroom: 0,
        headers,
    };
    program.headroom = headroom(&program);
    program
}

/// Bytes in front of each packet for pushed headers: enough for every emitted header to be
/// pushed in front of the packet once per pass, and a program that recirculates may push in
/// every pass.
fn headroom(p: &Program) -> usize {
    let per_pass: usize = p.deparser.iter().map(|&h| p.headers[h].max_bytes()).sum();
    let passes = if crate::analysis::recirculates(p) {
        usize::from(MAX_RECIRCULATIONS) + 1
    } else {
        1
    };
    (per_pass * passes).next_multiple_of(64).max(64)
}

fn entry_key(k: &SelectKey, kind: MatchKind, prefix: Option<u32>, width: u32) -> EntryKey {
    let full = sluice_runtime::bits::low_mask(width);
    match (kind, k) {
        (MatchKind::Exact, SelectKey::Value(v)) => EntryKey::Exact(*v),
        (MatchKind::Lpm, SelectKey::Value(v)) => EntryKey::Lpm(*v, width),
        (MatchKind::Lpm, SelectKey::Mask(v, m)) => {
            EntryKey::Lpm(*v, prefix.unwrap_or_else(|| m.count_ones()))
        }
        (MatchKind::Ternary, SelectKey::Value(v)) => EntryKey::Ternary(*v, full),
        (MatchKind::Ternary, SelectKey::Mask(v, m)) => EntryKey::Ternary(*v, *m),
        (MatchKind::Ternary, _) => EntryKey::Ternary(0, 0),
        (MatchKind::Range, SelectKey::Value(v)) => EntryKey::Range(*v, *v),
        (MatchKind::Range, SelectKey::Range(lo, hi)) => EntryKey::Range(*lo, *hi),
        (MatchKind::Range, _) => EntryKey::Range(0, full),
        (MatchKind::Optional, SelectKey::Value(v)) => EntryKey::Optional(Some(*v)),
        (MatchKind::Optional, _) => EntryKey::Optional(None),
        // The checker rejects the other combinations.
        (MatchKind::Exact, _) => EntryKey::Exact(0),
        (MatchKind::Lpm, _) => EntryKey::Lpm(0, 0),
    }
}

fn target(t: hir::Target) -> Target {
    match t {
        hir::Target::Accept => Target::Accept,
        hir::Target::Reject => Target::Reject,
        hir::Target::State(s) => Target::State(StateId(s)),
    }
}

fn transition(t: &hir::TTransition) -> Transition {
    match t {
        hir::TTransition::Accept => Transition::Accept,
        hir::TTransition::Reject => Transition::Reject,
        hir::TTransition::Goto(s) => Transition::Goto(StateId(*s)),
        hir::TTransition::Select {
            exprs,
            cases,
            default,
        } => Transition::Select {
            keys: exprs.iter().map(expr).collect(),
            cases: cases
                .iter()
                .map(|(ks, t)| SelectCase {
                    matches: ks
                        .iter()
                        .map(|k| match k {
                            SelectKey::Value(v) => SelectMatch::Masked {
                                value: *v,
                                mask: u128::MAX,
                            },
                            SelectKey::Mask(v, m) => SelectMatch::Masked {
                                value: *v & *m,
                                mask: *m,
                            },
                            SelectKey::Range(lo, hi) => SelectMatch::Range { lo: *lo, hi: *hi },
                            SelectKey::Any => SelectMatch::Masked { value: 0, mask: 0 },
                        })
                        .collect(),
                    target: target(*t),
                })
                .collect(),
            default: target(*default),
        },
    }
}

fn stmts(s: &[TStmt], rb: usize) -> Vec<Stmt> {
    s.iter().map(|s| stmt(s, rb)).collect()
}

fn stmt(s: &TStmt, rb: usize) -> Stmt {
    match s {
        TStmt::Assign(hir::LValue::Field(h, f), v) => {
            Stmt::SetField(HeaderId(*h), FieldId(*f), expr(v))
        }
        TStmt::Assign(hir::LValue::Meta(m), v) => Stmt::SetMeta(MetaId(*m), expr(v)),
        TStmt::Apply(t) => Stmt::Apply(TableId(*t)),
        TStmt::If(c, a, b) => Stmt::If(expr(c), stmts(a, rb), stmts(b, rb)),
        TStmt::Switch(t, arms, d) => Stmt::Switch(
            TableId(*t),
            arms.iter()
                .map(|(a, b)| (ActionId(*a), stmts(b, rb)))
                .collect(),
            stmts(d, rb),
        ),
        TStmt::SetValid(h) => Stmt::SetValid(HeaderId(*h)),
        TStmt::SetInvalid(h) => Stmt::SetInvalid(HeaderId(*h)),
        TStmt::Forward(e) => Stmt::Forward(expr(e)),
        TStmt::Drop(r) => Stmt::Drop(ReasonId(rb + r)),
        TStmt::Call(a, args) => Stmt::Call(ActionId(*a), args.iter().map(expr).collect()),
        TStmt::Recirculate => Stmt::Recirculate,
        TStmt::Seal {
            secret,
            header,
            peer,
            no_key,
        } => Stmt::Seal {
            secret: SecretId(*secret),
            header: HeaderId(*header),
            peer: expr(peer),
            no_key: ReasonId(rb + no_key),
        },
        TStmt::Open {
            secret,
            header,
            bad_tag,
            replay,
        } => Stmt::Open {
            secret: SecretId(*secret),
            header: HeaderId(*header),
            bad_tag: ReasonId(rb + bad_tag),
            replay: ReasonId(rb + replay),
        },
    }
}

fn expr(e: &TExpr) -> Expr {
    let kind = match &e.kind {
        TExprKind::Const(v) => ExprKind::Const(*v),
        TExprKind::Field(h, f) => ExprKind::Field(HeaderId(*h), FieldId(*f)),
        TExprKind::Meta(m) => ExprKind::Meta(MetaId(*m)),
        TExprKind::Std(s) => ExprKind::Std(std_field(*s)),
        TExprKind::Param(p) => ExprKind::Param(*p),
        TExprKind::Valid(h) => ExprKind::Valid(HeaderId(*h)),
        TExprKind::Binary(op, a, b) => {
            ExprKind::Binary(bin_op(*op), Box::new(expr(a)), Box::new(expr(b)))
        }
        TExprKind::Not(a) => ExprKind::Not(Box::new(expr(a))),
        TExprKind::BitNot(a) => ExprKind::BitNot(Box::new(expr(a))),
        TExprKind::Resize(a) => ExprKind::Resize(Box::new(expr(a))),
        TExprKind::Apply(t, hit) => ExprKind::Apply(TableId(*t), *hit),
        TExprKind::Hash { algo, fields, max } => ExprKind::Hash {
            algo: *algo,
            fields: fields.iter().map(expr).collect(),
            max: Box::new(expr(max)),
        },
        TExprKind::SipHash { secret, fields } => ExprKind::SipHash {
            secret: SecretId(*secret),
            fields: fields.iter().map(expr).collect(),
        },
    };
    Expr {
        kind,
        width: e.width,
    }
}

fn bin_op(op: ast::BinOp) -> BinOp {
    match op {
        ast::BinOp::Or => BinOp::Or,
        ast::BinOp::And => BinOp::And,
        ast::BinOp::Eq => BinOp::Eq,
        ast::BinOp::Ne => BinOp::Ne,
        ast::BinOp::Lt => BinOp::Lt,
        ast::BinOp::Le => BinOp::Le,
        ast::BinOp::Gt => BinOp::Gt,
        ast::BinOp::Ge => BinOp::Ge,
        ast::BinOp::BitOr => BinOp::BitOr,
        ast::BinOp::BitXor => BinOp::BitXor,
        ast::BinOp::BitAnd => BinOp::BitAnd,
        ast::BinOp::Shl => BinOp::Shl,
        ast::BinOp::Shr => BinOp::Shr,
        ast::BinOp::Add => BinOp::Add,
        ast::BinOp::Sub => BinOp::Sub,
        ast::BinOp::Mul => BinOp::Mul,
    }
}

fn std_field(f: hir::StdField) -> StdField {
    match f {
        hir::StdField::IngressPort => StdField::IngressPort,
        hir::StdField::EgressPort => StdField::EgressPort,
        hir::StdField::PacketLength => StdField::PacketLength,
        hir::StdField::Dropped => StdField::Dropped,
        hir::StdField::IngressTsSec => StdField::IngressTsSec,
        hir::StdField::IngressTsNsec => StdField::IngressTsNsec,
        hir::StdField::Pass => StdField::Pass,
    }
}
