//! Values: constants, masks and conversions between the representations (`i8` conditions,
//! `i64` values of up to 64 bits, `i128` wider ones).

use super::*;

impl Translator<'_, '_> {
    pub(super) fn iconst(&mut self, v: u128, width: u32) -> Value {
        match ty(width) {
            types::I128 => {
                let lo = self.b.ins().iconst(types::I64, v as u64 as i64);
                let hi = self.b.ins().iconst(types::I64, (v >> 64) as u64 as i64);
                self.b.ins().iconcat(lo, hi)
            }
            t => self.b.ins().iconst(t, v as u64 as i64),
        }
    }

    pub(super) fn mask(&mut self, v: Value, width: u32) -> Value {
        match ty(width) {
            types::I128 if width < 128 => {
                let m = self.iconst(sluice_defs::bits::low_mask(width), width);
                self.b.ins().band(v, m)
            }
            // A 32-bit mask as an immediate would be a constant in memory on x86-64; a
            // 32-bit move clears the upper half instead.
            types::I64 if width == 32 => {
                let l = self.b.ins().ireduce(types::I32, v);
                self.b.ins().uextend(types::I64, l)
            }
            types::I64 if width < 64 => self
                .b
                .ins()
                .band_imm_u(v, sluice_defs::bits::low_mask(width) as i64),
            _ => v,
        }
    }

    pub(super) fn to128(&mut self, v: Value) -> Value {
        if self.b.func.dfg.value_type(v) == types::I128 {
            v
        } else {
            let v = if self.b.func.dfg.value_type(v) == types::I64 {
                v
            } else {
                self.b.ins().uextend(types::I64, v)
            };
            self.b.ins().uextend(types::I128, v)
        }
    }

    /// Converts a value to the representation of `width`, truncating to it.
    pub(super) fn resize(&mut self, v: Value, width: u32) -> Value {
        let from = self.b.func.dfg.value_type(v);
        let to = ty(width);
        let v = match (from, to) {
            (a, b) if a == b => v,
            (types::I8, types::I64) => self.b.ins().uextend(types::I64, v),
            (types::I8, types::I128) => self.to128(v),
            (types::I64, types::I128) => self.b.ins().uextend(types::I128, v),
            (types::I128, types::I64) => self.b.ins().ireduce(types::I64, v),
            _ => v,
        };
        self.mask(v, width)
    }

    pub(super) fn bool_of(&mut self, v: Value) -> Value {
        // Conditions are i8 0/1 already; values compare with 0.
        match self.b.func.dfg.value_type(v) {
            types::I8 => v,
            types::I128 => {
                let z = self.iconst(0, 128);
                self.b.ins().icmp(IntCC::NotEqual, v, z)
            }
            _ => self.b.ins().icmp_imm_u(IntCC::NotEqual, v, 0),
        }
    }
}
