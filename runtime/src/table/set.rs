//! All the tables of a program, with its actions and secrets.

use super::{ActionSchema, Table};
use std::fmt;
use std::sync::Arc;

/// All tables of a program, with the program's actions and secrets.
#[derive(Clone)]
pub struct TableSet {
    pub actions: Arc<[ActionSchema]>,
    pub tables: Vec<Table>,
    /// Names of the secrets the program declares.
    pub secrets: Vec<String>,
    /// Values set by the control plane, parallel to `secrets`.
    pub secret_values: Vec<Option<[u8; 16]>>,
}

impl fmt::Debug for TableSet {
    // Hand-written so that secret values never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set: Vec<bool> = self.secret_values.iter().map(Option::is_some).collect();
        f.debug_struct("TableSet")
            .field("actions", &self.actions)
            .field("tables", &self.tables)
            .field("secrets", &self.secrets)
            .field("secret_is_set", &set)
            .finish()
    }
}

impl TableSet {
    /// A set without secrets.
    pub fn new(actions: Arc<[ActionSchema]>, tables: Vec<Table>) -> Self {
        TableSet {
            actions,
            tables,
            secrets: Vec::new(),
            secret_values: Vec::new(),
        }
    }

    /// Index of the table called `name`.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name() == name)
    }

    /// Index of the action called `name`, as used in [`ActionCall::action`].
    pub fn action_by_name(&self, name: &str) -> Option<u32> {
        let i = self.actions.iter().position(|a| a.name == name)?;
        u32::try_from(i).ok()
    }

    /// Index of the secret called `name`.
    pub fn secret_by_name(&self, name: &str) -> Option<usize> {
        self.secrets.iter().position(|s| s == name)
    }
}
