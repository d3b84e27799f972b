//! The Sluice compiler: lowers a checked program to the pipeline IR and runs it, with the
//! reference interpreter (`interp`) or native code from Cranelift (`jit`).
//!
//! Stages: `sluice_lang::parse` → `sluice_lang::check` → [`lower::lower`] → [`verify::verify`]
//! → [`interp`] or the JIT.

pub mod analysis;
pub mod interp;
pub mod ir;
pub mod jit;
pub mod lower;
pub mod print;
pub mod verify;

use sluice_lang::Diagnostic;
use sluice_runtime::stats::Stats;
use sluice_runtime::table::{
    ActionCall, ActionSchema, KeyField, MatchValue, ParamSchema, ProgramSchema, TableError,
    TableSchema, TableSet,
};

/// A program that passed every stage before execution.
pub struct Compiled {
    pub ir: ir::Program,
    pub warnings: Vec<Diagnostic>,
}

/// Why a program did not compile: the user's errors, with the warnings found alongside.
#[derive(Debug)]
pub struct CompileError {
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses, checks, lowers and verifies a program.
pub fn compile(source: &str) -> Result<Compiled, CompileError> {
    let ast = sluice_lang::parse(source).map_err(|d| CompileError { diagnostics: d })?;
    let (checked, warnings) =
        sluice_lang::check(&ast).map_err(|d| CompileError { diagnostics: d })?;
    let ir = lower::lower(&checked);
    if let Err(e) = verify::verify(&ir) {
        // A verifier failure is a compiler bug, reported as an error rather than a panic.
        return Err(CompileError {
            diagnostics: vec![
                Diagnostic::error("E0000", format!("internal compiler error: {e}"))
                    .with_note("please report this with the program that caused it"),
            ],
        });
    }
    Ok(Compiled { ir, warnings })
}

/// A table's key as the runtime describes it.
pub fn key_fields(t: &ir::Table) -> Vec<KeyField> {
    t.keys
        .iter()
        .map(|k| KeyField {
            name: k.name.clone(),
            width: k.expr.width,
            kind: k.kind,
        })
        .collect()
}

/// Why a program's tables could not be built: one of its const entries is refused (the
/// checker lets none through that would be, so this is a compiler bug).
#[derive(Debug, thiserror::Error)]
#[error("table {table}: const entry: {error}")]
pub struct TableSetError {
    pub table: String,
    pub error: TableError,
}

/// What a program declares about its tables, as the runtime describes it: the schema its
/// table sets are built for, and that its datapaths require.
pub fn schema(p: &ir::Program) -> ProgramSchema {
    let actions = p
        .actions
        .iter()
        .map(|a| ActionSchema {
            name: a.name.clone(),
            params: a
                .params
                .iter()
                .enumerate()
                .map(|(i, (n, w))| ParamSchema {
                    name: n.clone(),
                    width: *w,
                    nonzero: a.nonzero.get(i).copied().unwrap_or(false),
                })
                .collect(),
        })
        .collect();
    let tables = p
        .tables
        .iter()
        .map(|t| TableSchema {
            name: t.name.clone(),
            keys: key_fields(t),
            // The built-in actions (`drop`, `NoAction`) are allowed in every table, for entries
            // and as the default, as the JIT's dispatch and the checker expect.
            actions: {
                let mut a: Vec<u32> = t.actions.iter().map(|a| a.index() as u32).collect();
                for b in [sluice_defs::builtin::DROP, sluice_defs::builtin::NO_ACTION] {
                    if !a.contains(&b) {
                        a.push(b);
                    }
                }
                a
            },
            default_action: ActionCall {
                action: t.default.0.index() as u32,
                args: t.default.1.clone().into(),
            },
            const_default: t.const_default,
            size: t.size,
        })
        .collect();
    ProgramSchema {
        actions,
        tables,
        secrets: p.secrets.clone(),
    }
}

/// Counters for a program: one per drop reason, table and action.
pub fn stats_for(p: &ir::Program) -> Stats {
    Stats::new(p.drop_reasons.len(), p.tables.len(), p.actions.len())
}

/// The runtime's tables for a program, with the program's `entries` installed.
pub fn table_set(p: &ir::Program) -> Result<TableSet, TableSetError> {
    let mut set = TableSet::new(schema(p));
    for (i, t) in p.tables.iter().enumerate() {
        for e in &t.entries {
            let key = e
                .keys
                .iter()
                .map(|k| match *k {
                    ir::EntryKey::Exact(v) => MatchValue::Exact(v),
                    ir::EntryKey::Lpm(v, l) => MatchValue::Lpm {
                        value: v,
                        prefix_len: l,
                    },
                    ir::EntryKey::Ternary(v, m) => MatchValue::Ternary { value: v, mask: m },
                    ir::EntryKey::Range(lo, hi) => MatchValue::Range { lo, hi },
                    ir::EntryKey::Optional(o) => MatchValue::Optional(o),
                })
                .collect();
            let call = ActionCall {
                action: e.action.index() as u32,
                args: e.args.clone().into(),
            };
            set.add(i, key, call, e.priority)
                .map_err(|error| TableSetError {
                    table: t.name.clone(),
                    error,
                })?;
        }
        if t.const_entries {
            set.seal(i).map_err(|error| TableSetError {
                table: t.name.clone(),
                error,
            })?;
        }
    }
    Ok(set)
}
