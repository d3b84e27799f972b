//! Changing a table: adding, modifying and deleting entries, the default action, const
//! entries; every change validated against the schema first, so that a refused one changes
//! nothing.

use super::*;

impl Table {
    /// Creates an empty table and picks its lookup layout.
    ///
    /// Field widths above 128 bits are treated as 128 (values are `u128`).
    pub(crate) fn new(schema: Arc<TableSchema>, actions: &[ActionSchema]) -> Self {
        let index = Index::for_schema(&schema);
        let rows = RowLayout::new(&schema, actions);
        let mut t = Table {
            default: schema.default_action.clone(),
            schema,
            slots: Vec::new(),
            free: BTreeSet::new(),
            len: 0,
            next_seq: 0,
            keys: FxHashMap::default(),
            index,
            rows,
            hot: Vec::new(),
            hot_at: 0,
            hot_default: Vec::new(),
            counters: Vec::new(),
            lanes: Vec::new(),
            sealed: false,
            view: JitView::default(),
            jit_hash: JitHash::default(),
        };
        t.view.kind = crate::jitview::kind_for(&t.schema.keys);
        t.set_hot_default();
        t.refresh_view();
        t
    }

    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    pub fn name(&self) -> &str {
        &self.schema.name
    }

    /// Whether entries need a priority (a ternary, range or optional key).
    pub fn needs_priority(&self) -> bool {
        self.schema.keys.iter().any(|k| k.kind.needs_priority())
    }

    pub fn layout(&self) -> Layout {
        self.index.layout()
    }

    /// The table's layout, what its lookup structure holds, and roughly the bytes the table
    /// takes: the structure, the entries as the control plane sees them, the rows and the
    /// counters (for `sluice bench` and the docs' scaling figures).
    pub fn footprint(&self) -> Footprint {
        let (detail, index_bytes) = self.index.describe();
        let entries = self.slots.capacity() * std::mem::size_of::<Option<Entry>>()
            + self.len * self.schema.keys.len() * std::mem::size_of::<MatchValue>() * 2
            + self.keys.capacity()
                * (std::mem::size_of::<(Box<[MatchValue]>, Option<u32>, u32)>() + 1);
        let rows = self.hot.capacity() * 8;
        let counters = self.lanes() * self.counters.capacity() * std::mem::size_of::<Counter>();
        Footprint {
            layout: self.layout(),
            detail,
            index_bytes,
            bytes: index_bytes + entries + rows + counters + self.jit_hash.bytes(),
        }
    }

    /// Adds an entry and returns its handle.
    ///
    /// The key is normalized the way BMv2 does it: bits of an lpm value
    /// below the prefix length and bits of a ternary value outside the mask
    /// are cleared rather than rejected. `actions` is the program's action
    /// list, used to check the action's arguments.
    pub(crate) fn add(
        &mut self,
        key: Vec<MatchValue>,
        call: ActionCall,
        priority: Option<u32>,
        actions: &[ActionSchema],
    ) -> Result<EntryHandle, TableError> {
        self.check_mutable()?;
        let key = self.normalize_key(key)?;
        match (self.needs_priority(), priority) {
            (true, None) => return Err(TableError::PriorityRequired),
            (false, Some(_)) => return Err(TableError::PriorityForbidden),
            _ => {}
        }
        self.check_call(&call, actions)?;
        let dup_key = (key, priority);
        if let Some(&existing) = self.keys.get(&dup_key) {
            return Err(TableError::DuplicateKey {
                existing: EntryHandle(existing),
            });
        }
        if self.len >= self.schema.size as usize {
            return Err(TableError::Full {
                size: self.schema.size,
            });
        }
        let handle = match self.free.pop_first() {
            Some(h) => h,
            // len < size <= u32::MAX, and without free handles slots.len() == len.
            None => u32::try_from(self.slots.len()).map_err(|_| TableError::Full {
                size: self.schema.size,
            })?,
        };
        let entry = Entry {
            key: dup_key.0.clone(),
            priority,
            call,
            seq: self.next_seq,
        };
        self.set_hot(handle, &entry.call);
        self.zero_counters(handle);
        self.next_seq += 1;
        self.keys.insert(dup_key, handle);
        let slot = handle as usize;
        if slot == self.slots.len() {
            self.slots.push(Some(entry));
        } else if let Some(s) = self.slots.get_mut(slot) {
            *s = Some(entry);
        }
        self.len += 1;
        self.index.insert(handle, &self.slots, &self.schema.keys);
        if let Some(key) = self.get(handle).map(|e| e.key.clone()) {
            self.update_jit_hash(&key, Some(handle));
        }
        self.refresh_view();
        Ok(EntryHandle(handle))
    }

    /// Replaces the action of an existing entry; its counters are kept.
    pub(crate) fn modify(
        &mut self,
        h: EntryHandle,
        call: ActionCall,
        actions: &[ActionSchema],
    ) -> Result<(), TableError> {
        self.check_mutable()?;
        self.check_call(&call, actions)?;
        let entry = self.entry_mut(h)?;
        // The layouts store handles, not actions, so no index update is needed.
        entry.call = call.clone();
        self.set_hot(h.0, &call);
        self.refresh_view();
        Ok(())
    }

    /// Refuses changes to the entries of a table whose entries are const.
    pub fn check_mutable(&self) -> Result<(), TableError> {
        if self.sealed {
            Err(TableError::ConstEntries)
        } else {
            Ok(())
        }
    }

    /// Makes the current entries final (for `const entries`).
    pub(crate) fn seal(&mut self) {
        self.sealed = true;
    }

    /// Deletes an entry; its handle becomes free for reuse.
    pub(crate) fn delete(&mut self, h: EntryHandle) -> Result<(), TableError> {
        self.check_mutable()?;
        self.entry_mut(h)?;
        self.index.remove(h.0, &self.slots);
        if let Some(entry) = self.slots.get_mut(h.0 as usize).and_then(Option::take) {
            self.update_jit_hash(&entry.key, None);
            self.keys.remove(&(entry.key, entry.priority));
        }
        self.refresh_view();
        self.free.insert(h.0);
        self.len -= 1;
        Ok(())
    }

    /// Sets the action used when no entry matches.
    pub(crate) fn set_default(
        &mut self,
        call: ActionCall,
        actions: &[ActionSchema],
    ) -> Result<(), TableError> {
        if self.schema.const_default {
            return Err(TableError::ConstDefault);
        }
        self.check_call(&call, actions)?;
        self.default = call;
        self.set_hot_default();
        self.refresh_view();
        Ok(())
    }

    /// Restores the schema's default action.
    pub(crate) fn reset_default(&mut self) {
        self.default = self.schema.default_action.clone();
        self.set_hot_default();
        self.refresh_view();
    }

    /// Removes every entry (the default action is kept).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.keys.clear();
        self.len = 0;
        self.index = Index::for_schema(&self.schema);
        self.clear_rows();
        self.counters.clear();
        for l in &mut self.lanes {
            l.clear();
        }
        self.jit_hash = JitHash::default();
        self.refresh_view();
    }

    pub fn num_entries(&self) -> usize {
        self.len
    }

    /// All entries in handle order.
    pub fn entries(&self) -> impl Iterator<Item = EntryRef<'_>> {
        self.slots.iter().enumerate().filter_map(|(h, slot)| {
            let handle = EntryHandle(u32::try_from(h).ok()?);
            slot.as_ref().map(|e| self.entry_ref(handle, e))
        })
    }

    /// One entry, if the handle is in use.
    pub fn entry(&self, h: EntryHandle) -> Option<EntryRef<'_>> {
        self.get(h.0).map(|e| self.entry_ref(h, e))
    }

    pub fn default_action(&self) -> &ActionCall {
        &self.default
    }

    pub(crate) fn entry_ref<'a>(&'a self, handle: EntryHandle, e: &'a Entry) -> EntryRef<'a> {
        let (packets, bytes) = self.counted(handle.0);
        EntryRef {
            handle,
            key: &e.key,
            priority: e.priority,
            call: &e.call,
            packets,
            bytes,
        }
    }

    pub(crate) fn get(&self, h: u32) -> Option<&Entry> {
        self.slots.get(h as usize).and_then(Option::as_ref)
    }

    pub(crate) fn entry_mut(&mut self, h: EntryHandle) -> Result<&mut Entry, TableError> {
        self.slots
            .get_mut(h.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(TableError::UnknownHandle { handle: h })
    }

    pub(crate) fn normalize_key(
        &self,
        key: Vec<MatchValue>,
    ) -> Result<Box<[MatchValue]>, TableError> {
        if key.len() != self.schema.keys.len() {
            return Err(TableError::KeyCount {
                expected: self.schema.keys.len(),
                got: key.len(),
            });
        }
        key.into_iter()
            .zip(&self.schema.keys)
            .map(|(value, field)| normalize(value, field))
            .collect()
    }

    pub(crate) fn check_call(
        &self,
        call: &ActionCall,
        actions: &[ActionSchema],
    ) -> Result<(), TableError> {
        let schema = actions
            .get(call.action as usize)
            .ok_or(TableError::UnknownAction {
                action: call.action,
            })?;
        if !self.schema.actions.contains(&call.action) {
            return Err(TableError::ActionNotAllowed {
                action: schema.name.clone(),
            });
        }
        if call.args.len() != schema.params.len() {
            return Err(TableError::ArgCount {
                action: schema.name.clone(),
                expected: schema.params.len(),
                got: call.args.len(),
            });
        }
        for (&value, param) in call.args.iter().zip(&schema.params) {
            if param.nonzero && value == 0 {
                return Err(TableError::ZeroArg {
                    action: schema.name.clone(),
                    param: param.name.clone(),
                });
            }
            if !fits(value, param.width) {
                return Err(TableError::ArgTooWide {
                    action: schema.name.clone(),
                    param: param.name.clone(),
                    value,
                    width: param.width,
                });
            }
        }
        Ok(())
    }
}

pub(crate) fn normalize(value: MatchValue, field: &KeyField) -> Result<MatchValue, TableError> {
    if value.kind() != field.kind {
        return Err(TableError::KindMismatch {
            field: field.name.clone(),
            expected: field.kind,
            got: value.kind(),
        });
    }
    let width = width_of(field);
    let check = |v: u128| {
        if fits(v, width) {
            Ok(v)
        } else {
            Err(TableError::KeyTooWide {
                field: field.name.clone(),
                value: v,
                width,
            })
        }
    };
    Ok(match value {
        MatchValue::Exact(v) => MatchValue::Exact(check(v)?),
        MatchValue::Lpm { value, prefix_len } => {
            check(value)?;
            if prefix_len > width {
                return Err(TableError::PrefixTooLong {
                    field: field.name.clone(),
                    prefix_len,
                    width,
                });
            }
            MatchValue::Lpm {
                value: value & prefix_mask(prefix_len, width),
                prefix_len,
            }
        }
        MatchValue::Ternary { value, mask } => MatchValue::Ternary {
            value: check(value)? & check(mask)?,
            mask,
        },
        MatchValue::Range { lo, hi } => {
            if check(lo)? > check(hi)? {
                return Err(TableError::RangeInverted {
                    field: field.name.clone(),
                    lo,
                    hi,
                });
            }
            MatchValue::Range { lo, hi }
        }
        MatchValue::Optional(v) => MatchValue::Optional(v.map(check).transpose()?),
    })
}
