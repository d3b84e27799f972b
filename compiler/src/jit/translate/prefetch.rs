//! The prefetch function: the parser, then the address of the line that the first inline
//! table lookup of the control block will read for this packet (its port array slot, its
//! hash bucket, its direct slot). The batch loop calls it for every packet of a batch and
//! prefetches each address before running the pipeline on any, so that a large table's
//! misses overlap instead of coming one per packet (as DPDK's bulk lookups do).
//!
//! The answer is an address, with bit 0 set when it is a range group's segments block (of
//! which the caller fetches the first four lines: a few dozen segments' starts and handles).
//!
//! Rules: the function has no side effects (the parser only reads the packet and sets
//! metadata, which lives in registers), so calling it never changes what the pipeline does;
//! its answer is a hint, computed as if the control block reached the table with the
//! parser's values, and may be 0 or any address (a prefetch never faults).

use super::*;
use sluice_runtime::jitview::{JitView, KIND_DIRECT, KIND_HASH, KIND_RANGE};

/// The first table the control block applies whose lookup is inline, with its kind: the one
/// worth prefetching for. `None` for a program that recirculates (its passes start from a
/// window the previous pass's deparser left, which the prefetch cannot know).
pub fn prefetch_table(p: &Program, layout: &Layout) -> Option<(TableId, u64)> {
    use crate::ir::visit::{walk_expr, walk_stmt, Visitor};
    /// Tables in the order the control block applies them (statements and `apply().hit`).
    struct Applied(Vec<TableId>);
    impl Visitor for Applied {
        fn visit_stmt(&mut self, stmt: &Stmt) {
            if let Stmt::Apply(t) | Stmt::Switch(t, ..) = stmt {
                self.0.push(*t);
            }
            walk_stmt(self, stmt)
        }
        fn visit_expr(&mut self, expr: &Expr) {
            walk_expr(self, expr);
            if let ExprKind::Apply(t, _) = expr.kind {
                self.0.push(t);
            }
        }
    }
    if layout.facts.recirculates {
        return None;
    }
    let mut applied = Applied(Vec::new());
    applied.visit_block(&p.control);
    applied.0.into_iter().find_map(|t| {
        let kind = sluice_runtime::jitview::kind_for(&layout.table_keys[t.index()]);
        (kind != sluice_runtime::jitview::KIND_GENERIC).then_some((t, kind))
    })
}

impl Translator<'_, '_> {
    /// Builds the prefetch function for table `t`, whose lookup is of `kind`; with `bucket`,
    /// the one for a range table's first step instead: the address of the exact key's home
    /// bucket in the hash (for a table of many distinct exact values, whose hash itself
    /// misses).
    pub fn translate_prefetch(mut self, t: TableId, kind: u64, bucket: bool) {
        let accept = self.translate_parser();
        self.b.switch_to_block(accept);
        self.known = self.layout.facts.must_extracted.accept;
        let p = self.p;
        let keys: Vec<Value> = p.tables[t]
            .keys
            .iter()
            .map(|k| self.translate_expr(&k.expr))
            .collect();
        let view = self.table_view(t);
        let zero = self.b.ins().iconst(types::I64, 0);
        let known = self.b.create_block();
        let k = self.view_field(view, offset_of!(JitView, kind));
        let same = self.b.ins().icmp_imm_u(IntCC::Equal, k, kind as i64);
        self.b
            .ins()
            .brif(same, known, &[], self.exit, &[BlockArg::Value(zero)]);
        self.b.switch_to_block(known);
        let addr = match kind {
            KIND_DIRECT => {
                let packed = self.packed_key(view, &keys);
                let direct = self.view_field(view, offset_of!(JitView, direct));
                let off = self.b.ins().ishl_imm_u(packed, 2);
                self.b.ins().iadd(direct, off)
            }
            // The key's home bucket: a hash table's, or the range table's hash of exact values.
            KIND_HASH => {
                let packed = self.packed_key(view, &keys);
                self.bucket_address(view, packed)
            }
            KIND_RANGE if bucket => {
                let e = keys[1 - self.range_pos(t)];
                self.bucket_address(view, e)
            }
            KIND_RANGE => {
                let range_pos = self.range_pos(t);
                let (e, r) = (keys[1 - range_pos], keys[range_pos]);
                let found = self.b.create_block();
                self.b.append_block_param(found, types::I64);
                let miss = self.b.create_block();
                self.translate_probe(view, e, found, miss);
                self.b.switch_to_block(miss);
                self.b.ins().jump(self.exit, &[BlockArg::Value(zero)]);
                // An array: the value's slot; segments: the block itself, bit 0 still set so
                // that the caller fetches its first lines (starts and handles).
                self.b.switch_to_block(found);
                let group = self.b.block_params(found)[0];
                let tag = self.b.ins().band_imm_u(group, 1);
                let off = self.b.ins().ishl_imm_u(r, 2);
                let slot = self.b.ins().iadd(group, off);
                self.b.ins().select(tag, group, slot)
            }
            _ => zero,
        };
        self.b.ins().jump(self.exit, &[BlockArg::Value(addr)]);
        self.b.switch_to_block(self.exit);
        let addr = self.b.block_params(self.exit)[0];
        self.b.ins().return_(&[addr]);
        self.b.seal_all_blocks();
        self.b.finalize(self.frontend);
    }

    /// The address of `key`'s home bucket in a view's hash (16-byte buckets).
    fn bucket_address(&mut self, view: Value, key: Value) -> Value {
        let buckets = self.view_field(view, offset_of!(JitView, keys));
        let shift = self.view_field(view, offset_of!(JitView, shift));
        let i = self.hash_home(key, shift);
        let off = self.b.ins().ishl_imm_u(i, 4);
        self.b.ins().iadd(buckets, off)
    }
}
