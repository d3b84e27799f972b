//! The built-in actions every program has, first in its action list: `drop` (id 0) and
//! `NoAction` (id 1). The checker declares them, every table allows them, and the backends
//! dispatch on these ids.

/// `drop()`: drops the packet, counted under the table's "T miss" or "T drop" reason.
pub const DROP: u32 = 0;
/// `NoAction()`: does nothing.
pub const NO_ACTION: u32 = 1;
/// Their names, by id.
pub const NAMES: [&str; 2] = ["drop", "NoAction"];
