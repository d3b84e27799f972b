//! All the tables of a program, with its actions and secrets, bound to the program's schema.
//!
//! Rule: a `TableSet`'s tables are always the ones its schema describes, in its order. No
//! `&mut Table` leaves this crate (a caller could otherwise put another program's table in
//! its place): every change goes through a method here, which names the table by index.

use super::{
    ActionCall, ActionSchema, EntryHandle, Fingerprint, MatchValue, ProgramSchema, SecretSpec,
    Table, TableError,
};
use crate::crypto::{AeadKey, Keyring};
use std::fmt;
use std::sync::Arc;

/// A 128-bit secret's value: 16 key bytes.
pub type SecretValue = [u8; 16];

/// What the control plane set for one secret.
#[derive(Clone)]
enum SecretSlot {
    /// 128 bits, for `siphash`.
    Sip(Option<SecretValue>),
    /// 256 bits, for `seal` and `open`: keys with their counters and windows, shared with
    /// every clone of the set (the two copies of a live switch's tables).
    Keys(Keyring),
}

/// All tables of a program, with the program's actions and secrets.
#[derive(Clone)]
pub struct TableSet {
    schema: Arc<ProgramSchema>,
    fingerprint: Fingerprint,
    tables: Vec<Table>,
    /// Values set by the control plane, parallel to the schema's secrets.
    secret_values: Vec<SecretSlot>,
    /// The revision of the control plane's source these tables hold (the etcd revision a
    /// fleet switch applied; 0 otherwise), so that a batch can say which it ran under.
    revision: u64,
}

impl fmt::Debug for TableSet {
    // Hand-written so that secret values never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set: Vec<String> = self
            .secret_values
            .iter()
            .map(|s| match s {
                SecretSlot::Sip(v) => format!("set: {}", v.is_some()),
                SecretSlot::Keys(k) => format!("keys: {}", k.len()),
            })
            .collect();
        f.debug_struct("TableSet")
            .field("fingerprint", &self.fingerprint)
            .field("actions", &self.schema.actions)
            .field("tables", &self.tables)
            .field("secrets", &self.schema.secrets)
            .field("secret_is_set", &set)
            .finish()
    }
}

impl TableSet {
    /// Empty tables for a program's schema, no secret set.
    pub fn new(schema: ProgramSchema) -> Self {
        let schema = Arc::new(schema);
        let tables = schema
            .tables
            .iter()
            .map(|t| Table::new(Arc::new(t.clone()), &schema.actions))
            .collect();
        TableSet {
            fingerprint: schema.fingerprint(),
            secret_values: schema
                .secrets
                .iter()
                .map(|s| match s.bits {
                    256 => SecretSlot::Keys(Keyring::default()),
                    _ => SecretSlot::Sip(None),
                })
                .collect(),
            schema,
            tables,
            revision: 0,
        }
    }

    /// See [`TableSet::set_revision`].
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Marks the tables as holding the control plane's revision `r`.
    pub fn set_revision(&mut self, r: u64) {
        self.revision = r;
    }

    /// What the set was built for; a datapath compiled for another schema refuses it.
    pub fn schema(&self) -> &Arc<ProgramSchema> {
        &self.schema
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    pub fn table(&self, i: usize) -> Option<&Table> {
        self.tables.get(i)
    }

    /// The program's actions, by id.
    pub fn actions(&self) -> &[ActionSchema] {
        &self.schema.actions
    }

    /// The secrets the program declares, by id.
    pub fn secrets(&self) -> &[SecretSpec] {
        &self.schema.secrets
    }

    /// Their names, by id.
    pub fn secret_names(&self) -> Vec<String> {
        self.schema.secrets.iter().map(|s| s.name.clone()).collect()
    }

    /// A 128-bit secret's value, if the control plane set it.
    pub fn secret(&self, i: usize) -> Option<&SecretValue> {
        match self.secret_values.get(i)? {
            SecretSlot::Sip(v) => v.as_ref(),
            SecretSlot::Keys(_) => None,
        }
    }

    /// A 256-bit secret's keys.
    pub fn keyring(&self, i: usize) -> Option<&Keyring> {
        match self.secret_values.get(i)? {
            SecretSlot::Keys(k) => Some(k),
            SecretSlot::Sip(_) => None,
        }
    }

    /// A copy whose keys keep counters and replay windows of their own (a clone shares
    /// them): for running two datapaths side by side on the same packets.
    pub fn detached(&self) -> TableSet {
        let mut copy = self.clone();
        for s in &mut copy.secret_values {
            if let SecretSlot::Keys(k) = s {
                *k = k.detached();
            }
        }
        copy
    }

    /// Index of the table called `name`.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name() == name)
    }

    /// Index of the action called `name`, as used in [`ActionCall::action`].
    pub fn action_by_name(&self, name: &str) -> Option<u32> {
        let i = self.schema.actions.iter().position(|a| a.name == name)?;
        u32::try_from(i).ok()
    }

    /// Index of the secret called `name`.
    pub fn secret_by_name(&self, name: &str) -> Option<usize> {
        self.schema.secrets.iter().position(|s| s.name == name)
    }

    fn table_mut(&mut self, t: usize) -> Result<&mut Table, TableError> {
        self.tables
            .get_mut(t)
            .ok_or(TableError::NoSuchTable { index: t })
    }

    /// Adds an entry to table `t` (see [`Table::add`]).
    pub fn add(
        &mut self,
        t: usize,
        key: Vec<MatchValue>,
        call: ActionCall,
        priority: Option<u32>,
    ) -> Result<EntryHandle, TableError> {
        let schema = self.schema.clone();
        self.table_mut(t)?.add(key, call, priority, &schema.actions)
    }

    /// Replaces the action of an entry of table `t`; its counters are kept.
    pub fn modify(&mut self, t: usize, h: EntryHandle, call: ActionCall) -> Result<(), TableError> {
        let schema = self.schema.clone();
        self.table_mut(t)?.modify(h, call, &schema.actions)
    }

    /// Deletes an entry of table `t`.
    pub fn delete(&mut self, t: usize, h: EntryHandle) -> Result<(), TableError> {
        self.table_mut(t)?.delete(h)
    }

    /// Sets table `t`'s default action.
    pub fn set_default(&mut self, t: usize, call: ActionCall) -> Result<(), TableError> {
        let schema = self.schema.clone();
        self.table_mut(t)?.set_default(call, &schema.actions)
    }

    /// Restores table `t`'s declared default action.
    pub fn reset_default(&mut self, t: usize) -> Result<(), TableError> {
        self.table_mut(t)?.reset_default();
        Ok(())
    }

    /// Removes every entry of table `t` (refused for const entries); returns how many.
    pub fn clear(&mut self, t: usize) -> Result<usize, TableError> {
        let table = self.table_mut(t)?;
        table.check_mutable()?;
        let n = table.num_entries();
        table.clear();
        Ok(n)
    }

    /// Makes table `t`'s entries final (`const entries`).
    pub fn seal(&mut self, t: usize) -> Result<(), TableError> {
        self.table_mut(t)?.seal();
        Ok(())
    }

    /// Sets 128-bit secret `i`'s value.
    pub fn set_secret(&mut self, i: usize, value: SecretValue) -> Result<(), TableError> {
        match self.slot(i)? {
            SecretSlot::Sip(v) => {
                *v = Some(value);
                Ok(())
            }
            SecretSlot::Keys(_) => Err(self.width_error(i)),
        }
    }

    /// Adds a key to 256-bit secret `i` (replacing the one for the same peer).
    pub fn add_key(&mut self, i: usize, key: Arc<AeadKey>) -> Result<(), TableError> {
        match self.slot(i)? {
            SecretSlot::Keys(k) => {
                k.insert(key);
                Ok(())
            }
            SecretSlot::Sip(_) => Err(self.width_error(i)),
        }
    }

    fn slot(&mut self, i: usize) -> Result<&mut SecretSlot, TableError> {
        self.secret_values
            .get_mut(i)
            .ok_or(TableError::NoSuchSecret { index: i })
    }

    fn width_error(&self, i: usize) -> TableError {
        let s = &self.schema.secrets[i];
        TableError::SecretWidth {
            name: s.name.clone(),
            bits: s.bits,
        }
    }

    /// Gives every table `n` counter lanes, one per datapath thread that will count in them
    /// (`--workers`): each thread writes only its own, and reading an entry sums them.
    pub fn set_lanes(&mut self, n: usize) {
        for t in &mut self.tables {
            t.set_lanes(n);
            t.refresh_view();
        }
    }

    /// How many counter lanes the tables have.
    pub fn lanes(&self) -> usize {
        self.tables.first().map_or(usize::MAX, Table::lanes)
    }

    /// Adds the entry counters of another copy of these tables (same schema) into these:
    /// each copy of a live table counts the packets that read it.
    pub fn add_counters(&self, other: &TableSet) {
        if Arc::ptr_eq(&self.schema, &other.schema) || self.schema == other.schema {
            for (mine, theirs) in self.tables.iter().zip(&other.tables) {
                mine.add_counters(theirs);
            }
        }
    }
}
