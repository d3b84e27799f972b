//! Sluice runtime: match-action tables, control-plane commands and capture I/O.

pub mod command;
pub mod table;
pub mod value;
