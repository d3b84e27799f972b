//! The Sluice language: grammar, syntax tree, checker and diagnostics.
//!
//! `parse` turns text into an [`ast::Program`]; `check` resolves names and types and is the last
//! place where user errors are found. It knows nothing of the runtime or of code generation.

pub mod ast;
pub mod check;
pub mod diag;
pub mod parse;

pub use check::{check, Checked};
pub use diag::{render, Diagnostic, Severity};
pub use parse::parse;
