//! Table tests: every layout against a brute-force reference, and each error.

use super::*;
use std::cmp::Reverse;

/// xorshift64*: small, deterministic, good enough to shuffle test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn wide(&mut self) -> u128 {
        u128::from(self.next()) << 64 | u128::from(self.next())
    }
}

fn actions() -> Arc<[ActionSchema]> {
    let param = |name: &str, width| ParamSchema {
        name: name.into(),
        width,
        nonzero: false,
    };
    vec![
        ActionSchema {
            name: "set_port".into(),
            params: vec![param("port", 9)],
        },
        ActionSchema {
            name: "set_nat".into(),
            params: vec![param("ip", 32), param("port", 16)],
        },
        ActionSchema {
            name: "drop".into(),
            params: vec![],
        },
        ActionSchema {
            name: "not_here".into(),
            params: vec![],
        },
    ]
    .into()
}

fn new_table(schema: Arc<TableSchema>) -> Table {
    Table::new(schema, &actions())
}

fn schema(keys: &[(&str, u32, MatchKind)], size: u32) -> Arc<TableSchema> {
    Arc::new(TableSchema {
        name: "t".into(),
        keys: keys
            .iter()
            .map(|&(name, width, kind)| KeyField {
                name: name.into(),
                width,
                kind,
            })
            .collect(),
        actions: vec![0, 1, 2],
        default_action: drop_call(),
        const_default: false,
        size,
    })
}

fn drop_call() -> ActionCall {
    ActionCall {
        action: 2,
        args: Box::new([]),
    }
}

fn port(p: u128) -> ActionCall {
    ActionCall {
        action: 0,
        args: Box::new([p]),
    }
}

#[derive(Debug, Clone)]
struct ModelEntry {
    handle: u32,
    key: Vec<MatchValue>,
    priority: Option<u32>,
    call: ActionCall,
    seq: u64,
}

/// Match semantics written independently of the table's normalization.
fn model_matches(mv: &MatchValue, k: u128, w: u32) -> bool {
    match *mv {
        MatchValue::Exact(v) | MatchValue::Optional(Some(v)) => v == k,
        MatchValue::Lpm { value, prefix_len } => {
            prefix_len == 0 || (value ^ k) >> (w - prefix_len) == 0
        }
        MatchValue::Ternary { value, mask } => value & mask == k & mask,
        MatchValue::Range { lo, hi } => lo <= k && k <= hi,
        MatchValue::Optional(None) => true,
    }
}

fn prefix_sum(key: &[MatchValue]) -> u32 {
    key.iter()
        .map(|mv| match mv {
            MatchValue::Lpm { prefix_len, .. } => *prefix_len,
            _ => 0,
        })
        .sum()
}

/// Brute force: scan everything, pick by priority, else longest prefix.
fn model_lookup(model: &[ModelEntry], fields: &[KeyField], key: &[u128]) -> Option<u32> {
    let hits = model.iter().filter(|e| {
        e.key
            .iter()
            .zip(fields)
            .zip(key)
            .all(|((mv, f), &k)| model_matches(mv, k, f.width))
    });
    let best = if fields.iter().any(|f| f.kind.needs_priority()) {
        hits.min_by_key(|e| (e.priority, e.seq))
    } else {
        hits.min_by_key(|e| (Reverse(prefix_sum(&e.key)), e.seq))
    };
    best.map(|e| e.handle)
}

/// Values of a `w`-bit field: uniform when narrow, clustered around a few
/// bases when wide so that entries overlap.
fn gen_value(rng: &mut Rng, w: u32) -> u128 {
    const BASES: [u128; 3] = [
        0x0a00_0000_1234_5678_9abc_def0_0a00_0000,
        0xc0a8_0000_ffff_0000_0000_1111_c0a8_0100,
        0x2001_0db8_0000_0000_0000_0000_ac10_0000,
    ];
    if w <= 10 {
        rng.wide() & ones(w)
    } else {
        let base = BASES[rng.below(3) as usize] & ones(w);
        base ^ (rng.wide() & 0x3ff)
    }
}

fn gen_match(rng: &mut Rng, f: &KeyField, model: &[ModelEntry], pos: usize) -> MatchValue {
    // Half the time, start from an existing entry's field so entries overlap.
    let near = (!model.is_empty() && rng.chance(50))
        .then(|| model[rng.below(model.len() as u64) as usize].key[pos]);
    let w = f.width;
    match f.kind {
        MatchKind::Exact => MatchValue::Exact(match near {
            Some(MatchValue::Exact(v)) => v,
            _ => gen_value(rng, w),
        }),
        MatchKind::Lpm => {
            let value = match near {
                Some(MatchValue::Lpm { value, .. }) => value ^ (rng.wide() & ones(w / 2)),
                _ => gen_value(rng, w),
            };
            // Mostly long prefixes; short ones would match nearly everything.
            let prefix_len = if rng.chance(5) {
                rng.below(u64::from(w) + 1)
            } else {
                u64::from(w / 2) + rng.below(u64::from(w - w / 2) + 1)
            };
            MatchValue::Lpm {
                value,
                prefix_len: prefix_len as u32,
            }
        }
        MatchKind::Ternary => MatchValue::Ternary {
            value: gen_value(rng, w),
            // Mostly the high half set, random below; rarely all wildcard.
            mask: if rng.chance(3) {
                0
            } else {
                ones(w) & !(rng.wide() & ones(w / 2))
            },
        },
        MatchKind::Range => {
            let lo = match near {
                Some(MatchValue::Range { lo, .. }) => lo,
                _ => gen_value(rng, w),
            };
            let span = rng.wide() & ones(w.min(12)) >> rng.below(12);
            MatchValue::Range {
                lo,
                hi: (lo.saturating_add(span)).min(ones(w)),
            }
        }
        MatchKind::Optional => MatchValue::Optional((!rng.chance(10)).then(|| match near {
            Some(MatchValue::Optional(Some(v))) => v,
            _ => gen_value(rng, w),
        })),
    }
}

/// A packet key: random, or made to hit an existing entry's field.
fn gen_key(rng: &mut Rng, fields: &[KeyField], model: &[ModelEntry]) -> Vec<u128> {
    let target = (!model.is_empty() && rng.chance(70))
        .then(|| &model[rng.below(model.len() as u64) as usize]);
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let w = f.width;
            let noise = rng.wide() & ones(w);
            match target.map(|e| e.key[i]) {
                Some(MatchValue::Exact(v)) | Some(MatchValue::Optional(Some(v))) => v,
                Some(MatchValue::Lpm { value, prefix_len }) => {
                    let low = ones(w - prefix_len);
                    (value & !low) | (noise & low)
                }
                Some(MatchValue::Ternary { value, mask }) => (value & mask) | (noise & !mask),
                Some(MatchValue::Range { lo, hi }) => lo + noise % (hi - lo + 1),
                _ if rng.chance(50) => noise,
                _ => gen_value(rng, w),
            }
        })
        .collect()
}

/// Checks one lookup; returns how many entries matched the key.
fn check_lookup(table: &Table, model: &[ModelEntry], key: &[u128]) -> usize {
    let fields = &table.schema().keys;
    let matching = model
        .iter()
        .filter(|e| {
            e.key
                .iter()
                .zip(fields)
                .zip(key)
                .all(|((mv, f), &k)| model_matches(mv, k, f.width))
        })
        .count();
    let got = table.lookup(key);
    let want = model_lookup(model, &table.schema().keys, key);
    assert_eq!(got.map(|(h, _)| h.0), want, "key {key:x?}");
    if let (Some((_, call)), Some(h)) = (got, want) {
        let entry = model.iter().find(|e| e.handle == h).map(|e| &e.call);
        assert_eq!(Some(call), entry);
    }
    // The datapath's packed row says the same: the entry's action and arguments, or the
    // default's.
    let (hit, row) = table.lookup_row(0, key, 0);
    assert_eq!(hit, want.is_some(), "key {key:x?}");
    let expected = match want {
        Some(h) => model.iter().find(|e| e.handle == h).map(|e| e.call.clone()),
        None => Some(table.default_action().clone()),
    };
    assert_eq!(Some(table.decode_row(row)), expected, "key {key:x?}");
    matching
}

/// An entry's action: `set_port` or `set_nat`, whose rows are laid out differently.
fn call_for(rng: &mut Rng) -> ActionCall {
    if rng.chance(50) {
        port(u128::from(rng.below(512) as u16))
    } else {
        ActionCall {
            action: 1,
            args: Box::new([u128::from(rng.next() as u32), u128::from(rng.next() as u16)]),
        }
    }
}

/// Random adds, deletes and modifies interleaved with lookups, each lookup
/// checked against the brute-force reference.
fn fuzz(keys: &[(&str, u32, MatchKind)], layout: Layout, seed: u64, ops: usize) {
    let acts = actions();
    let mut table = new_table(schema(keys, 100_000));
    assert_eq!(table.layout(), layout, "{keys:?}");
    let fields = table.schema().keys.clone();
    let priority = table.needs_priority();
    let mut rng = Rng(seed);
    let mut model: Vec<ModelEntry> = Vec::new();
    let mut seq = 0;
    for _ in 0..ops {
        let roll = rng.below(100);
        if roll < 65 || model.is_empty() {
            let key: Vec<MatchValue> = (0..fields.len())
                .map(|i| gen_match(&mut rng, &fields[i], &model, i))
                .collect();
            let prio = priority.then(|| rng.below(8) as u32);
            let call = call_for(&mut rng);
            match table.add(key.clone(), call.clone(), prio, &acts) {
                Ok(h) => {
                    assert!(model.iter().all(|e| e.handle != h.0));
                    model.push(ModelEntry {
                        handle: h.0,
                        key,
                        priority: prio,
                        call,
                        seq,
                    });
                    seq += 1;
                }
                Err(TableError::DuplicateKey { existing }) => {
                    let twin = model.iter().find(|e| e.handle == existing.0);
                    let twin = twin.expect("duplicate of a live entry");
                    assert_eq!(twin.priority, prio);
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        } else if roll < 82 {
            let i = rng.below(model.len() as u64) as usize;
            let e = model.swap_remove(i);
            table.delete(EntryHandle(e.handle)).unwrap();
        } else {
            let i = rng.below(model.len() as u64) as usize;
            let call = call_for(&mut rng);
            table
                .modify(EntryHandle(model[i].handle), call.clone(), &acts)
                .unwrap();
            model[i].call = call;
        }
        assert_eq!(table.num_entries(), model.len());
        for _ in 0..3 {
            let key = gen_key(&mut rng, &fields, &model);
            check_lookup(&table, &model, &key);
        }
    }
    // Make sure the final lookups saw misses, hits and contested hits.
    let mut seen = [0usize; 3];
    for _ in 0..2000 {
        let key = gen_key(&mut rng, &fields, &model);
        seen[check_lookup(&table, &model, &key).min(2)] += 1;
    }
    assert!(model.len() > 50, "too few live entries: {}", model.len());
    let exact_only = fields.iter().all(|f| f.kind == MatchKind::Exact);
    assert!(
        seen[0] > 20 && seen[1] > 20 && (exact_only || seen[2] > 20),
        "{keys:?}: {seen:?}"
    );
}

use MatchKind::{Exact, Lpm, Optional, Range, Ternary};

#[test]
fn exact_direct_matches_reference() {
    fuzz(&[("a", 6, Exact), ("b", 4, Exact)], Layout::Direct, 1, 3000);
}

#[test]
fn exact_packed_matches_reference() {
    fuzz(
        &[("ip", 32, Exact), ("port", 16, Exact)],
        Layout::ExactHash,
        2,
        3000,
    );
}

#[test]
fn exact_wide_matches_reference() {
    fuzz(
        &[("ip6", 128, Exact), ("vrf", 8, Exact)],
        Layout::ExactHash,
        3,
        3000,
    );
}

#[test]
fn lpm_packed_matches_reference() {
    fuzz(&[("vrf", 2, Exact), ("dst", 32, Lpm)], Layout::Lpm, 4, 4000);
    fuzz(&[("dst", 32, Lpm)], Layout::Lpm, 5, 2000);
}

#[test]
fn lpm_hashed_matches_reference() {
    fuzz(
        &[("dst", 128, Lpm), ("vrf", 3, Exact)],
        Layout::Lpm,
        6,
        4000,
    );
}

#[test]
fn ternary_matches_reference() {
    fuzz(
        &[("a", 16, Ternary), ("b", 8, Exact)],
        Layout::Classifier,
        7,
        3000,
    );
}

#[test]
fn range_array_matches_reference() {
    fuzz(
        &[("dst", 32, Exact), ("port", 16, Range)],
        Layout::Range,
        8,
        3000,
    );
    fuzz(
        &[("port", 8, Range), ("proto", 8, Exact)],
        Layout::Range,
        9,
        3000,
    );
}

#[test]
fn range_scan_matches_reference() {
    fuzz(
        &[("a", 24, Range), ("b", 8, Exact)],
        Layout::Classifier,
        10,
        3000,
    );
    fuzz(
        &[("a", 16, Range), ("b", 16, Range)],
        Layout::Classifier,
        11,
        1500,
    );
}

#[test]
fn optional_matches_reference() {
    fuzz(
        &[("a", 12, Optional), ("b", 8, Exact)],
        Layout::Classifier,
        12,
        3000,
    );
}

#[test]
fn mixed_kinds_match_reference() {
    fuzz(
        &[("dst", 32, Lpm), ("proto", 8, Ternary), ("port", 16, Range)],
        Layout::Classifier,
        13,
        3000,
    );
    // Two lpm fields and no priority: the longer total prefix wins.
    fuzz(
        &[("src", 16, Lpm), ("dst", 16, Lpm)],
        Layout::Classifier,
        14,
        2000,
    );
}

#[test]
fn keyless_table_has_one_entry_at_most() {
    let acts = actions();
    let mut t = new_table(schema(&[], 10));
    assert_eq!(t.layout(), Layout::Direct);
    assert_eq!(t.lookup(&[]), None);
    let h = t.add(vec![], port(1), None, &acts).unwrap();
    assert_eq!(t.lookup(&[]).map(|(h, _)| h), Some(h));
    assert!(matches!(
        t.add(vec![], port(2), None, &acts),
        Err(TableError::DuplicateKey { .. })
    ));
}

#[test]
fn normalizes_lpm_and_ternary_values() {
    let acts = actions();
    let mut t = new_table(schema(&[("dst", 32, Lpm)], 10));
    let h = t
        .add(
            vec![MatchValue::Lpm {
                value: 0x0a01_0203,
                prefix_len: 8,
            }],
            port(1),
            None,
            &acts,
        )
        .unwrap();
    let key = t.entry(h).unwrap().key.to_vec();
    assert_eq!(
        key,
        vec![MatchValue::Lpm {
            value: 0x0a00_0000,
            prefix_len: 8
        }]
    );
    // The same prefix written differently is a duplicate.
    let again = MatchValue::Lpm {
        value: 0x0aff_ffff,
        prefix_len: 8,
    };
    assert_eq!(
        t.add(vec![again], port(2), None, &acts),
        Err(TableError::DuplicateKey { existing: h })
    );

    let mut t = new_table(schema(&[("a", 8, Ternary)], 10));
    let h = t
        .add(
            vec![MatchValue::Ternary {
                value: 0xff,
                mask: 0x0f,
            }],
            port(1),
            Some(1),
            &acts,
        )
        .unwrap();
    assert_eq!(
        t.entry(h).unwrap().key,
        &[MatchValue::Ternary {
            value: 0x0f,
            mask: 0x0f
        }]
    );
}

#[test]
fn priority_smaller_wins_and_ties_go_to_older() {
    let acts = actions();
    let mut t = new_table(schema(&[("a", 8, Ternary)], 10));
    let any = || vec![MatchValue::Ternary { value: 0, mask: 0 }];
    let exact5 = || {
        vec![MatchValue::Ternary {
            value: 5,
            mask: 0xff,
        }]
    };
    let low = t.add(any(), port(1), Some(10), &acts).unwrap();
    let high = t.add(exact5(), port(2), Some(3), &acts).unwrap();
    let tie = t.add(exact5(), port(3), Some(10), &acts).unwrap();
    assert_eq!(t.lookup(&[5]).map(|(h, _)| h), Some(high));
    assert_eq!(t.lookup(&[6]).map(|(h, _)| h), Some(low));
    t.delete(high).unwrap();
    // `low` and `tie` both have priority 10; `low` is older.
    assert_eq!(t.lookup(&[5]).map(|(h, _)| h), Some(low));
    t.delete(low).unwrap();
    assert_eq!(t.lookup(&[5]).map(|(h, _)| h), Some(tie));
    assert_eq!(t.lookup(&[6]), None);
}

#[test]
fn handles_are_reused_only_after_delete() {
    let acts = actions();
    let mut t = new_table(schema(&[("a", 8, Exact)], 10));
    let h: Vec<_> = (0..4)
        .map(|i| {
            t.add(vec![MatchValue::Exact(i)], port(1), None, &acts)
                .unwrap()
        })
        .collect();
    assert_eq!(h, [0, 1, 2, 3].map(EntryHandle));
    t.delete(h[1]).unwrap();
    t.delete(h[2]).unwrap();
    let a = t.add(vec![MatchValue::Exact(9)], port(1), None, &acts);
    let b = t.add(vec![MatchValue::Exact(10)], port(1), None, &acts);
    let c = t.add(vec![MatchValue::Exact(11)], port(1), None, &acts);
    assert_eq!((a, b, c), (Ok(h[1]), Ok(h[2]), Ok(EntryHandle(4))));
    let handles: Vec<_> = t.entries().map(|e| e.handle.0).collect();
    assert_eq!(handles, [0, 1, 2, 3, 4]);
    t.clear();
    assert_eq!(t.num_entries(), 0);
    assert_eq!(t.lookup(&[9]), None);
    assert_eq!(
        t.add(vec![MatchValue::Exact(9)], port(1), None, &acts),
        Ok(EntryHandle(0))
    );
}

#[test]
fn counters_count_and_reset() {
    let acts = actions();
    let mut t = new_table(schema(&[("a", 8, Exact)], 10));
    let h = t
        .add(vec![MatchValue::Exact(1)], port(1), None, &acts)
        .unwrap();
    t.count(0, h, 60);
    t.count(0, h, 1500);
    t.count(0, EntryHandle(7), 1); // unknown handles are ignored
    t.count(1, h, 1); // and lanes the table does not have
    let e = t.entry(h).unwrap();
    assert_eq!((e.packets, e.bytes), (2, 1560));
    // Modify keeps counters; a clone copies them.
    t.modify(h, port(2), &acts).unwrap();
    let copy = t.clone();
    assert_eq!(copy.entry(h).map(|e| e.packets), Some(2));
    t.reset_counters();
    let e = t.entry(h).unwrap();
    assert_eq!((e.packets, e.bytes, e.call), (0, 0, &port(2)));
    assert_eq!(copy.entry(h).map(|e| e.bytes), Some(1560));
}

#[test]
fn each_lane_counts_apart_and_an_entry_reads_their_sum() {
    let acts = actions();
    let mut t = new_table(schema(&[("a", 8, Exact)], 10));
    let h = t
        .add(vec![MatchValue::Exact(1)], port(1), None, &acts)
        .unwrap();
    t.count(0, h, 60);
    t.count(0, h, 1500);
    // With three lanes, each thread counts in its own; an entry reads their sum.
    t.set_lanes(3);
    assert_eq!(t.lanes(), 3);
    t.count(1, h, 40);
    t.count(2, h, 400);
    let e = t.entry(h).unwrap();
    assert_eq!((e.packets, e.bytes), (4, 2000));
    assert_ne!(t.counter_base(2), 0);
    assert_eq!(t.counter_base(3), 0);
    // A later entry gets counters in every lane.
    let h2 = t
        .add(vec![MatchValue::Exact(2)], port(1), None, &acts)
        .unwrap();
    t.count(2, h2, 9);
    assert_eq!(t.entry(h2).unwrap().packets, 1);
    t.reset_counters();
    assert_eq!(t.entry(h).unwrap().packets, 0);
}

#[test]
fn default_action_set_reset_and_const() {
    let acts = actions();
    let mut t = new_table(schema(&[("a", 8, Exact)], 10));
    assert_eq!(t.default_action(), &drop_call());
    t.set_default(port(3), &acts).unwrap();
    assert_eq!(t.default_action(), &port(3));
    t.reset_default();
    assert_eq!(t.default_action(), &drop_call());

    let mut s = (*schema(&[("a", 8, Exact)], 10)).clone();
    s.const_default = true;
    let mut t = new_table(Arc::new(s));
    assert_eq!(t.set_default(port(3), &acts), Err(TableError::ConstDefault));
}

#[test]
fn too_wide_lookup_values_never_match() {
    let acts = actions();
    for keys in [
        &[("a", 8, Exact)][..],
        &[("a", 8, Lpm)],
        &[("a", 8, Ternary)],
        &[("a", 8, Range)],
    ] {
        let mut t = new_table(schema(keys, 10));
        let mv = match keys[0].2 {
            Exact => MatchValue::Exact(5),
            Lpm => MatchValue::Lpm {
                value: 0,
                prefix_len: 0,
            },
            Ternary => MatchValue::Ternary {
                value: 5,
                mask: 0xff,
            },
            _ => MatchValue::Range { lo: 0, hi: 0xff },
        };
        let prio = t.needs_priority().then_some(1);
        t.add(vec![mv], port(1), prio, &acts).unwrap();
        assert_eq!(t.lookup(&[0x105]), None, "{keys:?}");
        assert_eq!(t.lookup(&[]), None, "{keys:?}");
        assert_eq!(t.lookup(&[5, 5]), None, "{keys:?}");
    }
}

#[test]
fn errors_name_the_problem() {
    let acts = actions();
    let mut t = new_table(schema(&[("dst", 32, Lpm), ("port", 16, Range)], 2));
    let lpm = |value, prefix_len| MatchValue::Lpm { value, prefix_len };
    let range = |lo, hi| MatchValue::Range { lo, hi };
    let mut err = |key: Vec<MatchValue>, call: ActionCall, prio| {
        t.add(key, call, prio, &acts).unwrap_err().to_string()
    };
    assert_eq!(
        err(vec![lpm(0, 0)], port(1), Some(1)),
        "expected 2 key values, got 1"
    );
    assert_eq!(
        err(vec![MatchValue::Exact(0), range(0, 1)], port(1), Some(1)),
        "key dst (lpm) was given a value of kind exact"
    );
    assert_eq!(
        err(vec![lpm(1 << 32, 8), range(0, 1)], port(1), Some(1)),
        "key dst: value 0x100000000 does not fit in 32 bits"
    );
    assert_eq!(
        err(vec![lpm(0, 33), range(0, 1)], port(1), Some(1)),
        "key dst: prefix length 33 is longer than the field's 32 bits"
    );
    assert_eq!(
        err(vec![lpm(0, 0), range(9, 8)], port(1), Some(1)),
        "key port: range start 0x9 is above its end 0x8"
    );
    assert_eq!(
        err(vec![lpm(0, 0), range(0, 1)], port(1), None),
        "entries need a priority (the table has a ternary, range or optional key)"
    );
    let call = |action, args: &[u128]| ActionCall {
        action,
        args: args.into(),
    };
    assert_eq!(
        err(vec![lpm(0, 0), range(0, 1)], call(9, &[]), Some(1)),
        "action #9 does not exist"
    );
    assert_eq!(
        err(vec![lpm(0, 0), range(0, 1)], call(3, &[]), Some(1)),
        "action not_here is not one of the table's actions"
    );
    assert_eq!(
        err(vec![lpm(0, 0), range(0, 1)], call(1, &[1]), Some(1)),
        "action set_nat takes 2 arguments, got 1"
    );
    assert_eq!(
        err(
            vec![lpm(0, 0), range(0, 1)],
            call(1, &[1, 1 << 16]),
            Some(1)
        ),
        "action set_nat: argument port = 0x10000 does not fit in 16 bits"
    );
    t.add(vec![lpm(0, 0), range(0, 1)], port(1), Some(1), &acts)
        .unwrap();
    assert_eq!(
        t.add(vec![lpm(0, 0), range(0, 1)], port(2), Some(1), &acts),
        Err(TableError::DuplicateKey {
            existing: EntryHandle(0)
        })
    );
    // Same key with another priority is a different entry.
    t.add(vec![lpm(0, 0), range(0, 1)], port(1), Some(2), &acts)
        .unwrap();
    assert_eq!(
        t.add(vec![lpm(0, 0), range(0, 1)], port(1), Some(3), &acts)
            .unwrap_err()
            .to_string(),
        "the table is full (2 entries, its `size`): declare a larger one in the program's table, for example `size 1024;` (1,024 when absent, at most 16,777,216)"
    );
    // At the most a table holds, there is nothing to raise.
    assert_eq!(
        TableError::Full { size: 1 << 24 }.to_string(),
        "the table is full (16777216 entries, the most a table holds)"
    );
    assert!(TableError::Full { size: 600_000 }
        .to_string()
        .contains("for example `size 1200000;`"));
    assert_eq!(
        t.delete(EntryHandle(5)).unwrap_err().to_string(),
        "no entry with handle 5"
    );
    assert_eq!(
        t.modify(EntryHandle(5), port(1), &acts),
        Err(TableError::UnknownHandle {
            handle: EntryHandle(5)
        })
    );

    let mut exact = new_table(schema(&[("a", 8, Exact)], 2));
    assert_eq!(
        exact
            .add(vec![MatchValue::Exact(1)], port(1), Some(1), &acts)
            .unwrap_err()
            .to_string(),
        "entries take no priority (the table has no ternary, range or optional key)"
    );
}

#[test]
fn table_set_finds_names_and_hides_secrets() {
    let mut set = TableSet::new(ProgramSchema {
        actions: actions().to_vec(),
        tables: vec![(*schema(&[], 1)).clone()],
        secrets: vec![crate::table::SecretSpec {
            name: "key".into(),
            bits: 128,
        }],
    });
    set.set_secret(0, [0xab; 16]).unwrap();
    assert_eq!(set.by_name("t"), Some(0));
    assert_eq!(set.by_name("u"), None);
    assert_eq!(set.action_by_name("drop"), Some(2));
    assert_eq!(set.secret_by_name("key"), Some(0));
    let debug = format!("{set:?}");
    assert!(!debug.contains("171"), "{debug}");
}

/// The trie of single lpm keys of 32 bits or fewer, at several widths, against a brute-force
/// longest match, through adds and deletes.
#[test]
fn lpm_trie_matches_brute_force_at_every_width() {
    let acts = actions();
    for (w, seed) in [(32u32, 11u64), (24, 12), (17, 13), (8, 14), (3, 15)] {
        let mut table = new_table(schema(&[("dst", w, Lpm)], 100_000));
        let mut rng = Rng(seed);
        let mut live: Vec<(u128, u32, u32)> = Vec::new(); // (value, len, handle)
        let full = if w == 128 {
            u128::MAX
        } else {
            (1u128 << w) - 1
        };
        for step in 0..3000 {
            if live.len() < 40 || rng.below(100) < 70 {
                let len = rng.below(u64::from(w) + 1) as u32;
                let mask = if len == 0 {
                    0
                } else {
                    full & !((1u128 << (w - len)) - 1)
                };
                let value = u128::from(rng.below(1 << w.min(32))) & mask;
                if let Ok(h) = table.add(
                    vec![MatchValue::Lpm {
                        value,
                        prefix_len: len,
                    }],
                    port(1),
                    None,
                    &acts,
                ) {
                    live.push((value, len, h.0));
                }
            } else {
                let i = rng.below(live.len() as u64) as usize;
                let (_, _, h) = live.swap_remove(i);
                table.delete(EntryHandle(h)).unwrap();
            }
            for _ in 0..4 {
                // Keys near live prefixes, and random ones.
                let key = if !live.is_empty() && step % 2 == 0 {
                    let (v, len, _) = live[rng.below(live.len() as u64) as usize];
                    let low = if len >= w {
                        0
                    } else {
                        (1u128 << (w - len)) - 1
                    };
                    v | (u128::from(rng.below(u64::MAX)) & low)
                } else {
                    u128::from(rng.below(1 << w.min(32)))
                };
                let want = live
                    .iter()
                    .filter(|(v, len, _)| {
                        let m = if *len == 0 {
                            0
                        } else {
                            full & !((1u128 << (w - len)) - 1)
                        };
                        key & m == *v
                    })
                    .max_by_key(|(_, len, _)| *len)
                    .map(|(_, _, h)| *h);
                let got = table.lookup(&[key]).map(|(h, _)| h.0);
                assert_eq!(got, want, "width {w}, key {key:#x}");
            }
        }
    }
}

#[test]
fn range_groups_take_arrays_by_their_contents_and_within_a_budget() {
    let acts = actions();
    let mut t = new_table(schema(&[("dst", 32, Exact), ("port", 16, Range)], 1 << 20));
    assert_eq!(t.layout(), Layout::Range);
    let key =
        |dst: u128, lo: u128, hi: u128| vec![MatchValue::Exact(dst), MatchValue::Range { lo, hi }];
    let groups = |t: &Table| t.footprint().detail;
    // 10,000 addresses of 32 ranges each: segments, a few hundred bytes an address, not an
    // array of 256 KiB (2.5 GB in all).
    for dst in 0..10_000u128 {
        for r in 0..32u128 {
            t.add(
                key(dst, 1024 + 64 * r, 1087 + 64 * r),
                port(r),
                Some(1),
                &acts,
            )
            .unwrap();
        }
    }
    assert_eq!(groups(&t), "10000 groups, 0 as arrays");
    let index_bytes = t.footprint().index_bytes;
    assert!(index_bytes < 10_000 * 1024, "{index_bytes} bytes");
    // An address with more ranges than SEGMENTS_MAX segments hold takes an array...
    let many = (SEGMENTS_MAX / 2 + 1) as u128;
    let mut handles = Vec::new();
    for r in 0..many {
        let p = 2 * r;
        handles.push(t.add(key(77_777, p, p), port(1), Some(1), &acts).unwrap());
    }
    assert_eq!(groups(&t), "10001 groups, 1 as arrays");
    assert_eq!(
        t.lookup(&[77_777, 2 * (many - 1)]).map(|(h, _)| h),
        handles.last().copied()
    );
    assert!(t.lookup(&[77_777, 1]).is_none());
    // ...and gives it back once it has at most a quarter of that many ranges.
    for h in handles.drain(SEGMENTS_MAX / 4..) {
        t.delete(h).unwrap();
    }
    assert_eq!(groups(&t), "10001 groups, 0 as arrays");
    assert!(t.lookup(&[77_777, 0]).is_some());
    assert!(t
        .lookup(&[77_777, 2 * (SEGMENTS_MAX as u128 / 4)])
        .is_none());
    // The arrays' budget is RANGE_ARRAY_BYTES (4,096 arrays of 256 KiB); past it, dense
    // groups keep segments, and every entry is still taken and found. (Lowered to two arrays
    // here, rather than allocating a gigabyte.)
    let Index::RangeArray(ra) = &t.index else {
        panic!("not a range index")
    };
    assert_eq!(ra.array_budget, RANGE_ARRAY_BYTES / (4 << 16));
    let mut small = new_table(schema(&[("dst", 8, Exact), ("port", 16, Range)], 1 << 20));
    if let Index::RangeArray(ra) = &mut small.index {
        ra.array_budget = 2;
    }
    for dst in 0..3u128 {
        for r in 0..many {
            small
                .add(key(dst, 3 * r, 3 * r + 1), port(r), Some(1), &acts)
                .unwrap();
        }
    }
    assert_eq!(groups(&small), "3 groups, 2 as arrays");
    for dst in 0..3u128 {
        for r in [0, many / 2, many - 1] {
            let got = small.lookup(&[dst, 3 * r + 1]).map(|(_, c)| c.clone());
            assert_eq!(got, Some(port(r)), "address {dst}, range {r}");
        }
    }
}

#[test]
fn fingerprints_follow_every_part_of_the_schema() {
    let base = ProgramSchema {
        actions: actions().to_vec(),
        tables: vec![(*schema(&[("k", 16, Exact), ("r", 16, Range)], 64)).clone()],
        secrets: vec![crate::table::SecretSpec {
            name: "key".into(),
            bits: 128,
        }],
    };
    assert_eq!(base.fingerprint(), base.clone().fingerprint());
    assert_eq!(
        TableSet::new(base.clone()).fingerprint(),
        base.fingerprint()
    );
    let mut changes: Vec<ProgramSchema> = Vec::new();
    let mut c = base.clone();
    c.tables[0].keys[0].width = 32;
    changes.push(c);
    let mut c = base.clone();
    c.tables[0].keys[1].kind = Ternary;
    changes.push(c);
    let mut c = base.clone();
    c.tables[0].keys[0].name = "j".into();
    changes.push(c);
    let mut c = base.clone();
    c.tables[0].name = "u".into();
    changes.push(c);
    let mut c = base.clone();
    c.tables[0].size = 65;
    changes.push(c);
    let mut c = base.clone();
    c.tables[0].actions.pop();
    changes.push(c);
    let mut c = base.clone();
    c.tables[0].const_default = true;
    changes.push(c);
    let mut c = base.clone();
    c.actions[1].params[0].width = 31;
    changes.push(c);
    let mut c = base.clone();
    c.actions[0].params[0].nonzero = true;
    changes.push(c);
    let mut c = base.clone();
    c.secrets.clear();
    changes.push(c);
    // Names are length-prefixed: moving a character from one name to the next changes it.
    let mut c = base.clone();
    c.actions[0].name = "set_por".into();
    c.actions[0].params[0].name = "tport".into();
    changes.push(c);
    for (i, c) in changes.iter().enumerate() {
        assert_ne!(c.fingerprint(), base.fingerprint(), "change {i}");
        assert_ne!(c.encode(), base.encode(), "change {i}");
    }
    assert_eq!(base.fingerprint().to_string().len(), 16);
}

#[test]
fn classifier_matches_reference_on_acl_shaped_keys() {
    // Source and destination prefixes, two port ranges and a protocol, as an ACL has them:
    // entries share masks, overlap, and fill buckets past their limit.
    fuzz(
        &[
            ("src", 32, Ternary),
            ("dst", 32, Lpm),
            ("sport", 12, Range),
            ("dport", 16, Range),
            ("proto", 2, Ternary),
        ],
        Layout::Classifier,
        15,
        6000,
    );
    // Wider than 128 bits in all: buckets are keyed by a hash of the masked fields.
    fuzz(
        &[("src6", 128, Ternary), ("port", 16, Range)],
        Layout::Classifier,
        16,
        3000,
    );
}

#[test]
fn classifier_keeps_entries_that_differ_only_in_their_ranges() {
    // Forty entries of one prefix and protocol, each a different port range: more than a
    // bucket's limit share one masked value, and every one must still be found.
    let acts = actions();
    let mut t = new_table(schema(&[("dst", 32, Lpm), ("port", 16, Range)], 1000));
    assert_eq!(t.layout(), Layout::Classifier);
    let mut handles = Vec::new();
    for i in 0..40u128 {
        let key = vec![
            MatchValue::Lpm {
                value: 0x0a00_0000,
                prefix_len: 8,
            },
            MatchValue::Range {
                lo: 1000 + 10 * i,
                hi: 1009 + 10 * i,
            },
        ];
        handles.push(t.add(key, port(i), Some(40 - i as u32), &acts).unwrap());
    }
    const { assert!(40 > super::index::BUCKET_LIMIT) };
    for (i, h) in handles.iter().enumerate() {
        let got = t.lookup(&[0x0a01_0203, 1005 + 10 * i as u128]);
        assert_eq!(got.map(|(g, _)| g), Some(*h), "range {i}");
    }
    assert!(t.lookup(&[0x0b01_0203, 1005]).is_none());
    assert!(t.lookup(&[0x0a01_0203, 999]).is_none());
    // Deleting the middle ones leaves the others found and theirs missed.
    for h in &handles[10..30] {
        t.delete(*h).unwrap();
    }
    for (i, h) in handles.iter().enumerate() {
        let got = t
            .lookup(&[0x0a01_0203, 1005 + 10 * i as u128])
            .map(|(g, _)| g);
        let want = (!(10..30).contains(&i)).then_some(*h);
        assert_eq!(got, want, "range {i}");
    }
}
