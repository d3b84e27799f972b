//! Bits of a value known to be zero whatever the packet.

use crate::ir::visit::fold_expr;
use crate::ir::{BinOp, Expr, ExprKind};

/// How many low bits of an expression's value are 0 whatever the packet (up to its width):
/// products and left shifts add them up, sums and differences keep the fewer. A varbit
/// length such as `(ihl - 5) * 32` is then known to be whole bytes, and needs no check.
pub fn known_zero_low_bits(e: &Expr) -> u32 {
    fold_expr(e, &mut |e, kids: Vec<u32>| {
        let z = match (&e.kind, kids.as_slice()) {
            (ExprKind::Const(0), _) => e.width,
            (ExprKind::Const(c), _) => c.trailing_zeros(),
            (ExprKind::Binary(BinOp::Mul, ..), [a, b]) => a.saturating_add(*b),
            (ExprKind::Binary(BinOp::Shl, _, rhs), [a, _]) => match rhs.kind {
                ExprKind::Const(k) => a.saturating_add(k.min(128) as u32),
                _ => *a,
            },
            (ExprKind::Binary(BinOp::BitAnd, ..), [a, b]) => *a.max(b),
            (
                ExprKind::Binary(BinOp::Add | BinOp::Sub | BinOp::BitOr | BinOp::BitXor, ..),
                [a, b],
            ) => *a.min(b),
            (ExprKind::Resize(_), [a]) => *a,
            _ => 0,
        };
        z.min(e.width)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{FieldId, HeaderId};

    fn c(v: u128, w: u32) -> Expr {
        Expr {
            kind: ExprKind::Const(v),
            width: w,
        }
    }

    fn field(w: u32) -> Expr {
        Expr {
            kind: ExprKind::Field(HeaderId(0), FieldId(0)),
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
    fn products_shifts_and_sums() {
        // (ihl - 5) * 32: five zero bits, whatever ihl is.
        let len = bin(
            BinOp::Mul,
            bin(BinOp::Sub, field(32), c(5, 32), 32),
            c(32, 32),
            32,
        );
        assert_eq!(known_zero_low_bits(&len), 5);
        // x << 3 has three; x << 3 | 4 has two; x & 0xf0 has four.
        let shl = bin(BinOp::Shl, field(32), c(3, 8), 32);
        assert_eq!(known_zero_low_bits(&shl), 3);
        assert_eq!(
            known_zero_low_bits(&bin(BinOp::BitOr, shl, c(4, 32), 32)),
            2
        );
        assert_eq!(
            known_zero_low_bits(&bin(BinOp::BitAnd, field(32), c(0xf0, 32), 32)),
            4
        );
        // A plain field, nothing; zero, all of its width.
        assert_eq!(known_zero_low_bits(&field(32)), 0);
        assert_eq!(known_zero_low_bits(&c(0, 16)), 16);
        // Never more than the width.
        assert_eq!(
            known_zero_low_bits(&bin(BinOp::Shl, field(8), c(200, 8), 8)),
            8
        );
    }
}
