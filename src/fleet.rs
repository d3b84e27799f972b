//! A fleet of switches kept consistent through etcd (docs/fleet.md): switches follow the store
//! (`serve --etcd`), and the control side writes it in transactions (`ctl --etcd`).
//!
//! Layout under a prefix P (for example /sluice/prod):
//!
//! ```text
//! P/epoch                                   bumped by every transaction `ctl --etcd` makes
//! P/group/NAME/schema                       the group's program's table-schema fingerprint
//! P/group/NAME/entry/TABLE/KEY              an entry all the group's switches hold
//! P/group/NAME/default/TABLE                a default action for the group
//! P/switch/ID/group                         the group switch ID belongs to (written by it)
//! P/switch/ID/entry/TABLE/KEY               an entry of this switch alone (it wins over
//! P/switch/ID/default/TABLE                 the group's for the same KEY or TABLE)
//! ```
//!
//! KEY is the entry's match key as `table_add` takes it, in hex, with `@PRIORITY` last for
//! tables with priorities (`command::key_text`): entries are named by their match fields, not
//! by handles, which stay per switch. A value is `{"action":NAME,"args":[HEX,...]}`.

use anyhow::{anyhow, bail, Context};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, Txn, TxnOp,
    WatchOptions,
};
use serde::{Deserialize, Serialize};
use sluice_runtime::command::{self, Command};
use sluice_runtime::live::LiveTables;
use sluice_runtime::table::{EntryHandle, TableSet};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::out::errln;

/// Where a fleet's keys live.
#[derive(Clone, Debug)]
pub struct Layout {
    prefix: String,
}

/// A part of the store: a group's, or one switch's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Group(String),
    Switch(String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Group(g) => write!(f, "group {g}"),
            Scope::Switch(s) => write!(f, "switch {s}"),
        }
    }
}

/// What a key names under its scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Entry { table: String, key: String },
    Default { table: String },
    Schema,
    Member,
}

/// A name for a group or a switch: letters, digits, `-`, `_`, `.` (it becomes a path
/// component of keys).
pub fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!(
            "{what} '{}': use letters, digits, '-', '_' and '.' (at most 128)",
            sluice_defs::names::echo(name)
        );
    }
    Ok(())
}

impl Layout {
    pub fn new(prefix: &str) -> anyhow::Result<Layout> {
        let p = prefix.trim_end_matches('/');
        if !p.starts_with('/') || p.len() < 2 || p.contains("//") {
            bail!(
                "--prefix {}: expected a path such as /sluice/prod",
                sluice_defs::names::echo(prefix)
            );
        }
        Ok(Layout {
            prefix: p.to_string(),
        })
    }

    /// Every key of the fleet starts with this.
    pub fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    pub fn scope(&self, s: &Scope) -> String {
        match s {
            Scope::Group(g) => format!("{}/group/{g}/", self.prefix),
            Scope::Switch(id) => format!("{}/switch/{id}/", self.prefix),
        }
    }

    pub fn schema(&self, group: &str) -> String {
        self.scope(&Scope::Group(group.to_string())) + "schema"
    }

    pub fn member(&self, id: &str) -> String {
        self.scope(&Scope::Switch(id.to_string())) + "group"
    }

    pub fn entry(&self, s: &Scope, table: &str, key: &str) -> String {
        format!("{}entry/{table}/{key}", self.scope(s))
    }

    pub fn default(&self, s: &Scope, table: &str) -> String {
        format!("{}default/{table}", self.scope(s))
    }

    pub fn epoch(&self) -> String {
        format!("{}/epoch", self.prefix)
    }

    /// The scope and item a key names, if it is one of the fleet's.
    pub fn parse(&self, key: &str) -> Option<(Scope, Item)> {
        let rest = key.strip_prefix(&self.root())?;
        let (kind, rest) = rest.split_once('/')?;
        let (name, rest) = rest.split_once('/')?;
        let scope = match kind {
            "group" => Scope::Group(name.to_string()),
            "switch" => Scope::Switch(name.to_string()),
            _ => return None,
        };
        let item = match rest.split_once('/') {
            None if rest == "schema" && kind == "group" => Item::Schema,
            None if rest == "group" && kind == "switch" => Item::Member,
            Some(("entry", tk)) => {
                let (table, key) = tk.split_once('/')?;
                Item::Entry {
                    table: table.to_string(),
                    key: key.to_string(),
                }
            }
            Some(("default", table)) if !table.contains('/') => Item::Default {
                table: table.to_string(),
            },
            _ => return None,
        };
        Some((scope, item))
    }
}

/// An entry's action, or a default action, as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Value {
    pub action: String,
    pub args: Vec<String>,
}

impl Value {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(text: &str) -> Result<Value, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not a value: {e}"))?;
        let word_ok = |w: &str| !w.is_empty() && !w.chars().any(|c| c.is_whitespace() || c == '#');
        if !word_ok(&v.action) || !v.args.iter().all(|a| word_ok(a)) {
            return Err("an action or argument is empty or holds a space or '#'".into());
        }
        Ok(v)
    }
}

/// The command that installs an entry named `key` of `table` with `value`.
fn add_line(table: &str, key: &str, value: &Value) -> String {
    let (words, priority) = split_priority(key);
    format!(
        "table_add {table} {} {words} => {}{}",
        value.action,
        value.args.join(" "),
        priority.map(|p| format!(" {p}")).unwrap_or_default()
    )
}

/// A key's match words and its priority (`@P` last).
fn split_priority(key: &str) -> (&str, Option<&str>) {
    match key.rsplit_once(" @") {
        Some((words, p)) => (words, Some(p)),
        None => match key.strip_prefix('@') {
            Some(p) => ("", Some(p)),
            None => (key, None),
        },
    }
}

/// A key or default from the store, checked against the program as a switch will apply it:
/// its canonical name must be the key it is stored under.
fn check_entry(set: &TableSet, table: &str, key: &str, value: &Value) -> Result<(), String> {
    if key.contains('\n') {
        return Err("a key with a line break".into());
    }
    match command::parse_command(&add_line(table, key, value), set) {
        Ok(Some(Command::TableAdd {
            table: t,
            key: k,
            priority,
            ..
        })) => {
            let canonical = command::key_text(set, t, &k, priority);
            if canonical != key {
                return Err(format!("the entry's key is written '{canonical}'"));
            }
            Ok(())
        }
        Ok(_) => Err("not an entry".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A default action from the store, checked against the program.
fn check_default(set: &TableSet, table: &str, value: &Value) -> Result<(), String> {
    let line = format!(
        "table_set_default {table} {} {}",
        value.action,
        value.args.join(" ")
    );
    match command::parse_command(&line, set) {
        Ok(Some(Command::TableSetDefault { .. })) => Ok(()),
        Ok(_) => Err("not a default action".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// What a switch holds from the store, and what it installed.
#[derive(Default)]
struct State {
    /// Entries and defaults of the group (index 0) and of the switch (index 1).
    entries: [BTreeMap<(String, String), Value>; 2],
    defaults: [BTreeMap<String, Value>; 2],
    installed: BTreeMap<(String, String), (EntryHandle, Value)>,
    installed_defaults: BTreeMap<String, Value>,
}

impl State {
    fn effective(&self, k: &(String, String)) -> Option<&Value> {
        self.entries[1].get(k).or_else(|| self.entries[0].get(k))
    }

    fn effective_default(&self, t: &str) -> Option<&Value> {
        self.defaults[1].get(t).or_else(|| self.defaults[0].get(t))
    }
}

/// What `stats` shows of the fleet.
#[derive(Default)]
pub struct FleetStatus {
    /// The revision of the newest change the datapath has applied.
    pub revision: AtomicU64,
    /// Values the switch could not apply (logged, skipped).
    pub skipped: AtomicU64,
    pub connected: AtomicBool,
    /// Full reloads after a lost connection or a compacted history.
    pub reloads: AtomicU64,
}

/// How a switch follows the store.
pub struct Follow {
    pub endpoints: Vec<String>,
    pub layout: Layout,
    pub group: String,
    pub switch_id: String,
    pub live: LiveTables,
    pub status: Arc<FleetStatus>,
    /// Gets a line `applied R UNIX_NS` each time the tables take a new revision (the
    /// `--revision-log` file, for audits and the propagation benchmark).
    pub applied_log: Option<std::path::PathBuf>,
}

/// A one-thread tokio runtime for the client.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the etcd client's runtime")
}

/// A client of the first member of `endpoints` that answers (members are tried in turn, so a
/// dead one is passed over; etcd-client's balanced channel would send requests to it).
async fn connect(endpoints: &[String]) -> Result<Client, etcd_client::Error> {
    let mut last = None;
    for ep in endpoints {
        let opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
        match Client::connect([ep], Some(opts)).await {
            Ok(mut c) => match c.status().await {
                Ok(_) => return Ok(c),
                Err(e) => last = Some(e),
            },
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(etcd_client::Error::InvalidArgs("no endpoint".into())))
}

/// Joins the fleet and loads the store into the live tables (before any packet flows), then
/// follows it on a thread of its own. A store whose group runs another program is an error
/// here; so is a store that cannot be reached within `wait`.
pub fn start(f: Follow, fingerprint: String, wait: Duration) -> anyhow::Result<()> {
    let rt = runtime()?;
    let mut state = State::default();
    let deadline = std::time::Instant::now() + wait;
    let mut client = loop {
        match rt.block_on(connect(&f.endpoints)) {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() > deadline => {
                bail!("etcd {}: cannot connect: {e}", f.endpoints.join(","))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    // Join: the group's schema (made by the first switch, or `ctl`, to come), and this
    // switch's membership.
    let schema_key = f.layout.schema(&f.group);
    let joined = rt.block_on(
        client.txn(
            Txn::new()
                .when([Compare::create_revision(
                    schema_key.clone(),
                    CompareOp::Equal,
                    0,
                )])
                .and_then([TxnOp::put(schema_key.clone(), fingerprint.clone(), None)])
                .or_else([TxnOp::get(schema_key.clone(), None)]),
        ),
    );
    let joined = joined.with_context(|| format!("etcd: cannot read {schema_key}"))?;
    if !joined.succeeded() {
        let found = joined
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                etcd_client::TxnOpResponse::Get(g) => g
                    .kvs()
                    .first()
                    .and_then(|kv| kv.value_str().ok().map(str::to_string)),
                _ => None,
            })
            .unwrap_or_default();
        if found != fingerprint {
            bail!(
                "group {} runs another program (table schema {found} in {schema_key}; this \
                 program's is {fingerprint}): refusing to follow it",
                f.group
            );
        }
    }
    rt.block_on(client.put(f.layout.member(&f.switch_id), f.group.clone(), None))
        .context("etcd: cannot join the fleet")?;
    let (rev, shown) = rt
        .block_on(reload(&mut client, &f, &mut state))
        .context("etcd: cannot load the tables")?;
    f.status.connected.store(true, Ordering::Relaxed);
    errln!(
        "sluice: following etcd {} ({}, group {}, switch {}) at revision {shown}",
        f.endpoints.join(","),
        f.layout.prefix,
        f.group,
        f.switch_id
    );
    std::thread::Builder::new()
        .name("etcd".into())
        .spawn(move || rt.block_on(follow_forever(client, f, state, rev)))
        .context("cannot start the etcd thread")?;
    Ok(())
}

/// Reads the switch's two scopes at one revision and makes the tables match
/// them; returns the revision applied.
/// Returns the revision the read was made at (to watch from) and that of the newest change
/// under the prefix (the revision shown).
async fn reload(client: &mut Client, f: &Follow, state: &mut State) -> anyhow::Result<(u64, u64)> {
    let scopes = [
        Scope::Group(f.group.clone()),
        Scope::Switch(f.switch_id.clone()),
    ];
    let txn = Txn::new().and_then([
        TxnOp::get(
            f.layout.scope(&scopes[0]),
            Some(GetOptions::new().with_prefix()),
        ),
        TxnOp::get(
            f.layout.scope(&scopes[1]),
            Some(GetOptions::new().with_prefix()),
        ),
        // Every key of the fleet, for the newest change to it: the revision a switch that
        // followed the store all along would be at.
        TxnOp::get(
            f.layout.root(),
            Some(GetOptions::new().with_prefix().with_keys_only()),
        ),
    ]);
    let resp = client.txn(txn).await?;
    let read_at = resp.header().map_or(0, |h| h.revision()).max(0) as u64;
    let mut gets: Vec<Vec<KeyValue>> = Vec::new();
    for r in resp.op_responses() {
        if let etcd_client::TxnOpResponse::Get(mut g) = r {
            gets.push(g.take_kvs());
        }
    }
    let [group, own, all] = <[Vec<KeyValue>; 3]>::try_from(gets)
        .map_err(|_| anyhow!("etcd: an incomplete answer to a read"))?;
    let fresh = State::default();
    let mut old = std::mem::replace(state, fresh);
    state.installed = std::mem::take(&mut old.installed);
    state.installed_defaults = std::mem::take(&mut old.installed_defaults);
    for kv in group.iter().chain(&own) {
        if let (Ok(key), Ok(value)) = (kv.key_str(), kv.value_str()) {
            // A value that cannot be applied keeps what the switch had for its slot, as it
            // does while watching.
            take(f, state, key, Some(value), Some(&old));
        }
    }
    let newest = all.iter().map(KeyValue::mod_revision).max().unwrap_or(0);
    let tables: BTreeSet<(String, String)> = state.entries[0]
        .keys()
        .chain(state.entries[1].keys())
        .chain(state.installed.keys())
        .cloned()
        .collect();
    let defaults: BTreeSet<String> = state.defaults[0]
        .keys()
        .chain(state.defaults[1].keys())
        .chain(state.installed_defaults.keys())
        .cloned()
        .collect();
    let shown = (newest.max(0) as u64).max(f.status.revision.load(Ordering::Relaxed));
    apply(f, state, tables, defaults, shown);
    Ok((read_at.max(shown), shown))
}

/// Records a key's new value (or its deletion) in the state; false when the key is not one
/// of this switch's.
fn take(
    f: &Follow,
    state: &mut State,
    key: &str,
    value: Option<&str>,
    fallback: Option<&State>,
) -> bool {
    let Some((scope, item)) = f.layout.parse(key) else {
        return false;
    };
    let side = match &scope {
        Scope::Group(g) if *g == f.group => 0,
        Scope::Switch(s) if *s == f.switch_id => 1,
        _ => return false,
    };
    match item {
        Item::Entry { table, key: k } => {
            // A value the program cannot take, or an entry stored under another name than
            // its canonical one (written around Sluice), is skipped.
            let old = fallback.map(|o| &o.entries[side]);
            let check = |set: &TableSet, v: &Value| check_entry(set, &table, &k, v);
            let slot = (table.clone(), k.clone());
            record(f, &mut state.entries[side], old, slot, key, value, check)
        }
        Item::Default { table } => {
            let old = fallback.map(|o| &o.defaults[side]);
            let check = |set: &TableSet, v: &Value| check_default(set, &table, v);
            record(
                f,
                &mut state.defaults[side],
                old,
                table.clone(),
                key,
                value,
                check,
            )
        }
        Item::Schema | Item::Member => false,
    }
}

/// Records a slot's new value (checked against the program by `check`) or its removal. A
/// value that cannot be applied is skipped, and the slot keeps what it had (`old`, the state
/// before a reload, or the map itself while watching); false then.
fn record<K: Ord>(
    f: &Follow,
    map: &mut BTreeMap<K, Value>,
    old: Option<&BTreeMap<K, Value>>,
    slot: K,
    key: &str,
    value: Option<&str>,
    check: impl Fn(&TableSet, &Value) -> Result<(), String>,
) -> bool {
    let Some(text) = value else {
        map.remove(&slot);
        return true;
    };
    match Value::decode(text).and_then(|v| f.live.read(|set| check(set, &v)).map(|()| v)) {
        Ok(v) => {
            map.insert(slot, v);
            true
        }
        Err(e) => {
            skip(f, key, &e);
            if let Some(v) = old.and_then(|o| o.get(&slot)) {
                map.insert(slot, v.clone());
            }
            false
        }
    }
}

fn skip(f: &Follow, key: &str, why: &str) {
    f.status.skipped.fetch_add(1, Ordering::Relaxed);
    errln!(
        "sluice: etcd: {}: {}; skipped",
        sluice_defs::names::echo(key),
        sluice_defs::names::echo(why)
    );
}

/// One change to the tables, computed from the state.
enum Op {
    Delete {
        slot: (String, String),
        handle: EntryHandle,
    },
    Modify {
        slot: (String, String),
        handle: EntryHandle,
        value: Value,
    },
    Add {
        slot: (String, String),
        value: Value,
    },
    SetDefault {
        table: String,
        value: Value,
    },
    ResetDefault {
        table: String,
    },
}

impl Op {
    fn line(&self) -> String {
        match self {
            Op::Delete { slot, handle } => format!("table_delete {} {}", slot.0, handle.0),
            Op::Modify {
                slot,
                handle,
                value,
            } => format!(
                "table_modify {} {} {} {}",
                slot.0,
                value.action,
                handle.0,
                value.args.join(" ")
            ),
            Op::Add { slot, value } => add_line(&slot.0, &slot.1, value),
            Op::SetDefault { table, value } => format!(
                "table_set_default {table} {} {}",
                value.action,
                value.args.join(" ")
            ),
            Op::ResetDefault { table } => format!("table_reset_default {table}"),
        }
    }

    fn key(&self, f: &Follow) -> String {
        match self {
            Op::Delete { slot, .. } | Op::Modify { slot, .. } | Op::Add { slot, .. } => {
                format!("{}entry/{}/{}", f.layout.root(), slot.0, slot.1)
            }
            Op::SetDefault { table, .. } | Op::ResetDefault { table } => {
                format!("{}default/{table}", f.layout.root())
            }
        }
    }
}

/// Makes the tables hold what the state says for the entries and defaults named, in one
/// commit of the live tables: a packet sees all of it or none. A change the tables refuse is
/// logged, counted and skipped; the others go in.
fn apply(
    f: &Follow,
    state: &mut State,
    slots: BTreeSet<(String, String)>,
    defaults: BTreeSet<String>,
    revision: u64,
) {
    let mut ops = Vec::new();
    // Deletes first, so that a full table has room for what replaces them.
    for slot in &slots {
        let want = state.effective(slot).cloned();
        match (state.installed.get(slot), want) {
            (Some((h, _)), None) => ops.push(Op::Delete {
                slot: slot.clone(),
                handle: *h,
            }),
            (Some((h, old)), Some(v)) if *old != v => {
                // Another action, or other arguments: a modify; the key is the same.
                ops.push(Op::Modify {
                    slot: slot.clone(),
                    handle: *h,
                    value: v,
                })
            }
            (None, Some(v)) => ops.push(Op::Add {
                slot: slot.clone(),
                value: v,
            }),
            _ => {}
        }
    }
    ops.sort_by_key(|o| match o {
        Op::Delete { .. } => 0,
        Op::Modify { .. } => 1,
        _ => 2,
    });
    for t in &defaults {
        match (state.installed_defaults.get(t), state.effective_default(t)) {
            (Some(_), None) => ops.push(Op::ResetDefault { table: t.clone() }),
            (old, Some(v)) if old != Some(v) => ops.push(Op::SetDefault {
                table: t.clone(),
                value: v.clone(),
            }),
            _ => {}
        }
    }
    let lines: Vec<String> = ops.iter().map(Op::line).collect();
    let outcomes = f
        .live
        .write(|set| {
            let mut out: Vec<Result<Option<EntryHandle>, String>> = Vec::new();
            for line in &lines {
                let r = command::parse_command(line, set)
                    .map_err(|e| e.to_string())
                    .and_then(|c| match c {
                        Some(c) => command::apply(set, &c)
                            .map(|o| o.handle)
                            .map_err(|e| e.to_string()),
                        None => Ok(None),
                    });
                out.push(r);
            }
            set.set_revision(revision);
            Ok::<_, std::convert::Infallible>(out)
        })
        .unwrap_or_default();
    for (op, outcome) in ops.into_iter().zip(outcomes) {
        match (op, outcome) {
            (Op::Delete { slot, .. }, Ok(_)) => {
                state.installed.remove(&slot);
            }
            (
                Op::Modify {
                    slot,
                    handle,
                    value,
                },
                Ok(_),
            ) => {
                state.installed.insert(slot, (handle, value));
            }
            (Op::Add { slot, value }, Ok(Some(h))) => {
                state.installed.insert(slot, (h, value));
            }
            (Op::SetDefault { table, value }, Ok(_)) => {
                state.installed_defaults.insert(table, value);
            }
            (Op::ResetDefault { table }, Ok(_)) => {
                state.installed_defaults.remove(&table);
            }
            (op, Err(e)) => skip(f, &op.key(f), &e),
            (op, Ok(None)) => skip(f, &op.key(f), "no handle"),
        }
    }
    f.status.revision.fetch_max(revision, Ordering::Relaxed);
    if let Some(path) = &f.applied_log {
        use std::io::Write;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // One write per line, in append mode: the serve loop appends to the same file.
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            let _ = file.write_all(format!("applied {revision} {now}\n").as_bytes());
        }
    }
}

/// Watches the fleet from `rev`, applying each revision's changes as one commit; after a
/// lost connection or a compacted history, reloads and resumes. Meanwhile the datapath keeps
/// the tables of the last revision applied.
async fn follow_forever(mut client: Client, f: Follow, mut state: State, mut rev: u64) {
    let mut said = false;
    loop {
        let err = watch(&mut client, &f, &mut state, &mut rev).await;
        f.status.connected.store(false, Ordering::Relaxed);
        if !said {
            errln!(
                "sluice: etcd: {err}; forwarding with the tables of revision {} until the \
                 store is back",
                f.status.revision.load(Ordering::Relaxed)
            );
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(c) = connect(&f.endpoints).await {
            client = c;
        }
        match reload(&mut client, &f, &mut state).await {
            Ok((r, shown)) => {
                rev = r;
                said = false;
                f.status.reloads.fetch_add(1, Ordering::Relaxed);
                f.status.connected.store(true, Ordering::Relaxed);
                errln!("sluice: etcd: back; reloaded at revision {shown}");
            }
            Err(_) => continue,
        }
    }
}

/// Why watching stopped.
async fn watch(client: &mut Client, f: &Follow, state: &mut State, rev: &mut u64) -> String {
    let opts = WatchOptions::new()
        .with_prefix()
        .with_start_revision(*rev as i64 + 1)
        .with_progress_notify();
    let mut stream = match client.watch(f.layout.root(), Some(opts)).await {
        Ok(s) => s,
        Err(e) => return format!("cannot watch: {e}"),
    };
    loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return "the watch ended".into(),
            Err(e) => return format!("connection lost ({e})"),
        };
        if msg.compact_revision() > 0 {
            return format!(
                "history compacted past revision {} (at {})",
                *rev,
                msg.compact_revision()
            );
        }
        if msg.canceled() {
            return format!("the watch was canceled ({})", msg.cancel_reason());
        }
        // Events of one revision come in one response, never split: each revision is one
        // commit of the tables.
        let events = msg.events();
        let mut i = 0;
        while i < events.len() {
            let r = events[i].kv().map_or(0, KeyValue::mod_revision);
            let mut slots = BTreeSet::new();
            let mut defaults = BTreeSet::new();
            let mut j = i;
            while j < events.len() && events[j].kv().map_or(0, KeyValue::mod_revision) == r {
                if let Some(kv) = events[j].kv() {
                    if let Ok(key) = kv.key_str() {
                        let value = match events[j].event_type() {
                            EventType::Put => kv.value_str().ok(),
                            EventType::Delete => None,
                        };
                        if take(f, state, key, value, None) {
                            match f.layout.parse(key).map(|(_, item)| item) {
                                Some(Item::Entry { table, key }) => {
                                    slots.insert((table, key));
                                }
                                Some(Item::Default { table }) => {
                                    defaults.insert(table);
                                }
                                _ => {}
                            }
                        }
                    }
                }
                j += 1;
            }
            let r = r.max(0) as u64;
            if r > *rev {
                apply(f, state, slots, defaults, r);
                *rev = r;
            }
            i = j;
        }
    }
}

/// `sluice ctl --etcd`: how to reach and check the store.
pub struct Writer {
    pub endpoints: Vec<String>,
    pub layout: Layout,
    /// The program the entries are for: its tables check every command.
    pub tables: TableSet,
    pub fingerprint: String,
}

/// What the store holds, read at one revision.
#[derive(Default)]
struct View {
    /// Per scope: its entries (table, key) -> value, and its defaults.
    entries: BTreeMap<Scope, BTreeMap<(String, String), Value>>,
    defaults: BTreeMap<Scope, BTreeMap<String, Value>>,
    schemas: BTreeMap<String, String>,
    members: BTreeMap<String, String>,
    /// The revision the store was read at.
    read_at: i64,
    /// The epoch key's revision, its count and the transaction that wrote it.
    epoch: Option<(i64, u64, String)>,
}

/// A scope's tables as a transaction goes: the program's tables with the scope's entries
/// (a switch's with its group's), the scope's own entries, and those it holds from its
/// group.
struct Staged {
    set: TableSet,
    own: BTreeMap<(String, String), Value>,
    inherited: BTreeSet<(String, String)>,
}

/// The entry `table_delete TABLE KEY... [PRIORITY]` names in a fleet (by match key, handles
/// being per switch): its table and canonical key. The key is parsed as `table_add` parses
/// it, with the table's first action and zero arguments standing in for the rest.
fn key_to_delete(set: &TableSet, rest: &[&str]) -> Result<(usize, String), String> {
    let name = rest.first().ok_or("table_delete: no table")?;
    let t = set
        .by_name(name)
        .ok_or_else(|| format!("unknown table '{}'", sluice_defs::names::echo(name)))?;
    let schema = set.tables()[t].schema().clone();
    let action = schema
        .actions
        .first()
        .and_then(|a| set.actions().get(*a as usize))
        .ok_or("the table has no action")?;
    let zeros: Vec<&str> = action.params.iter().map(|_| "0").collect();
    let n = schema.keys.len();
    let keys = rest.get(1..1 + n).ok_or_else(|| {
        format!(
            "table_delete: usage in a fleet: table_delete TABLE KEY... [PRIORITY] ({n} key fields)"
        )
    })?;
    let priority = rest.get(1 + n..).unwrap_or_default();
    let add = format!(
        "table_add {name} {} {} => {} {}",
        action.name,
        keys.join(" "),
        zeros.join(" "),
        priority.join(" ")
    );
    match command::parse_command(&add, set).map_err(|e| e.to_string())? {
        Some(Command::TableAdd {
            table,
            key,
            priority,
            ..
        }) => Ok((table, command::key_text(set, table, &key, priority))),
        _ => Err("not an entry".into()),
    }
}

/// Removes the entry named `key` from table `t` of a staged set.
fn unstage(set: &mut TableSet, t: usize, key: &str) {
    let handle = set.table(t).and_then(|table| {
        table
            .entries()
            .find(|e| command::key_text(set, t, e.key, e.priority) == key)
            .map(|e| e.handle)
    });
    if let Some(h) = handle {
        let _ = command::apply(
            set,
            &Command::TableDelete {
                table: t,
                handle: h,
            },
        );
    }
}

/// The first change to `key` after revision `after`: its revision and value (`None` if the
/// history cannot be read; a key unchanged since gives no event within a second, and
/// `Some((0, ""))`).
async fn first_change(client: &mut Client, key: String, after: i64) -> Option<(i64, String)> {
    let opts = WatchOptions::new().with_start_revision(after + 1);
    let mut stream = client.watch(key, Some(opts)).await.ok()?;
    let first = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match stream.message().await {
                Ok(Some(m)) if m.compact_revision() > 0 || m.canceled() => return None,
                Ok(Some(m)) => {
                    if let Some(kv) = m.events().first().and_then(|e| e.kv()) {
                        return Some((kv.mod_revision(), kv.value_str().unwrap_or("").to_string()));
                    }
                }
                _ => return None,
            }
        }
    })
    .await;
    match first {
        Ok(found) => found,
        Err(_) => Some((0, String::new())),
    }
}

/// One command of a transaction, checked, as keys to put or delete.
enum Change {
    Put(String, String),
    Delete(String),
}

impl Writer {
    /// Runs the commands of `lines` (numbered from 1, with `[group NAME]` and `[switch ID]`
    /// lines choosing the part of the store the next ones write) as one transaction, checked
    /// against the program and the store as read, and conditioned on the store not having
    /// changed since. Retries a few times when another writer got in between.
    pub fn run(
        &self,
        lines: &[(usize, String)],
        scope: Option<Scope>,
        source: &str,
    ) -> anyhow::Result<Result<String, String>> {
        let rt = runtime()?;
        let mut client = rt
            .block_on(connect(&self.endpoints))
            .map_err(|e| anyhow!("etcd {}: cannot connect: {e}", self.endpoints.join(",")))?;
        // Names this transaction in the epoch's value, so that after an error that leaves its
        // fate unknown (a leader change), a read tells whether it was committed.
        let nonce = format!(
            "{:x}{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        // The revision of the read a transaction whose answer was lost was checked against.
        let mut unknown_since: Option<i64> = None;
        let mut last_error = None;
        for attempt in 0..20 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250));
                if last_error.is_some() {
                    if let Ok(c) = rt.block_on(connect(&self.endpoints)) {
                        client = c;
                    }
                }
            }
            let view = match rt.block_on(self.read(&mut client)) {
                Ok(v) => v,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            if let Some(read_at) = unknown_since.take() {
                // Only one transaction can follow the read it was conditioned on: the first
                // change of the epoch after that read says whether it was ours.
                match rt.block_on(first_change(&mut client, self.layout.epoch(), read_at)) {
                    Some((rev, value)) if value.split_whitespace().nth(1) == Some(&nonce) => {
                        return Ok(Ok(format!("committed at revision {rev}")));
                    }
                    Some(_) => {}
                    None => {
                        // Not readable (compacted, or the store away): unknown still.
                        unknown_since = Some(read_at);
                        last_error = Some(anyhow!("cannot read the epoch's history"));
                        continue;
                    }
                }
            }
            let (changes, compares, count) = match self.check(&view, lines, scope.clone(), source) {
                Ok(c) => c,
                Err(e) => return Ok(Err(format!("{e:#}"))),
            };
            if count == 0 {
                return Ok(Ok("nothing to write".into()));
            }
            // One operation per key, the last change winning (etcd refuses a transaction that
            // names a key twice: a clear then an add, an add then a modify).
            let mut last: BTreeMap<String, Change> = BTreeMap::new();
            for c in changes {
                let k = match &c {
                    Change::Put(k, _) | Change::Delete(k) => k.clone(),
                };
                last.insert(k, c);
            }
            let mut ops: Vec<TxnOp> = last
                .into_values()
                .map(|c| match c {
                    Change::Put(k, v) => TxnOp::put(k, v, None),
                    Change::Delete(k) => TxnOp::delete(k, None),
                })
                .collect();
            let next = view.epoch.as_ref().map_or(1, |(_, n, _)| n + 1);
            ops.push(TxnOp::put(
                self.layout.epoch(),
                format!("{next} {nonce}"),
                None,
            ));
            let mut when = compares;
            when.push(match &view.epoch {
                Some((rev, _, _)) => {
                    Compare::mod_revision(self.layout.epoch(), CompareOp::Equal, *rev)
                }
                None => Compare::create_revision(self.layout.epoch(), CompareOp::Equal, 0),
            });
            match rt.block_on(client.txn(Txn::new().when(when).and_then(ops))) {
                Ok(resp) if resp.succeeded() => {
                    let rev = resp.header().map_or(0, |h| h.revision());
                    return Ok(Ok(format!(
                        "committed {count} change{} at revision {rev}",
                        if count == 1 { "" } else { "s" }
                    )));
                }
                // Another writer committed since the read: read and check again.
                Ok(_) => last_error = None,
                // Refused as it stands (too many operations for the store's --max-txn-ops, a
                // request too large): nothing was written.
                Err(e) if e.to_string().contains("InvalidArgument") => {
                    return Ok(Err(format!(
                        "the store refused the transaction ({e}); nothing was written"
                    )));
                }
                Err(e) => {
                    unknown_since = Some(view.read_at);
                    last_error = Some(anyhow!(e));
                }
            }
        }
        if let Some(e) = last_error {
            return Err(e.context(if unknown_since.is_some() {
                "etcd: the store did not say whether the transaction was committed (read the \
                 fleet's epoch key to know)"
            } else {
                "etcd: the transaction failed; nothing was written"
            }));
        }
        bail!("the store kept changing while the transaction was checked; nothing was written")
    }

    async fn read(&self, client: &mut Client) -> anyhow::Result<View> {
        let resp = client
            .get(self.layout.root(), Some(GetOptions::new().with_prefix()))
            .await
            .context("etcd: cannot read the fleet")?;
        let mut v = View {
            read_at: resp.header().map_or(0, |h| h.revision()),
            ..View::default()
        };
        for kv in resp.kvs() {
            let (Ok(key), Ok(value)) = (kv.key_str(), kv.value_str()) else {
                continue;
            };
            if key == self.layout.epoch() {
                let mut words = value.split_whitespace();
                let n = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                v.epoch = Some((kv.mod_revision(), n, words.next().unwrap_or("").to_string()));
                continue;
            }
            let Some((scope, item)) = self.layout.parse(key) else {
                continue;
            };
            match (item, &scope) {
                (Item::Schema, Scope::Group(g)) => {
                    v.schemas.insert(g.clone(), value.to_string());
                }
                (Item::Member, Scope::Switch(s)) => {
                    v.members.insert(s.clone(), value.to_string());
                }
                (Item::Entry { table, key }, _) => {
                    // A value written around Sluice that switches skip is not an entry here
                    // either.
                    if let Ok(val) = Value::decode(value) {
                        v.entries
                            .entry(scope)
                            .or_default()
                            .insert((table, key), val);
                    }
                }
                (Item::Default { table }, _) => {
                    if let Ok(val) = Value::decode(value) {
                        v.defaults.entry(scope).or_default().insert(table, val);
                    }
                }
                _ => {}
            }
        }
        Ok(v)
    }

    /// The table set a scope's entries are checked in: the program's tables holding the
    /// scope's entries as read (and, for a switch, its group's, which it holds too).
    fn staged(&self, view: &View, scope: &Scope) -> (TableSet, BTreeSet<(String, String)>) {
        let mut set = self.tables.clone();
        let mut sources = vec![scope.clone()];
        if let Scope::Switch(id) = scope {
            if let Some(g) = view.members.get(id) {
                sources.insert(0, Scope::Group(g.clone()));
            }
        }
        let mut seen = BTreeSet::new();
        let mut inherited = BTreeSet::new();
        for s in sources.iter().rev() {
            for ((t, k), v) in view.entries.get(s).into_iter().flatten() {
                let slot = (t.clone(), k.clone());
                if s != scope {
                    inherited.insert(slot.clone());
                }
                if seen.insert(slot) {
                    if let Ok(Some(c)) = command::parse_command(&add_line(t, k, v), &set) {
                        let _ = command::apply(&mut set, &c);
                    }
                }
            }
        }
        (set, inherited)
    }

    #[allow(clippy::type_complexity)]
    fn check(
        &self,
        view: &View,
        lines: &[(usize, String)],
        mut scope: Option<Scope>,
        source: &str,
    ) -> anyhow::Result<(Vec<Change>, Vec<Compare>, usize)> {
        let mut staged: BTreeMap<Scope, Staged> = BTreeMap::new();
        let mut changes = Vec::new();
        let mut compares = Vec::new();
        let mut new_groups = BTreeSet::new();
        let mut count = 0;
        let at = |n: usize| format!("{source}:{n}");
        for (n, raw) in lines {
            let line = command::strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let mut words = head.split_whitespace();
                scope = Some(match (words.next(), words.next(), words.next()) {
                    (Some("group"), Some(g), None) => {
                        check_name("group", g).with_context(|| at(*n))?;
                        Scope::Group(g.to_string())
                    }
                    (Some("switch"), Some(s), None) => {
                        check_name("switch", s).with_context(|| at(*n))?;
                        Scope::Switch(s.to_string())
                    }
                    _ => bail!("{}: expected [group NAME] or [switch ID]", at(*n)),
                });
                continue;
            }
            let Some(sc) = scope.clone() else {
                bail!(
                    "{}: which part of the store? give --group NAME or --switch ID, or a \
                     [group NAME] line before the commands",
                    at(*n)
                );
            };
            if !staged.contains_key(&sc) {
                // The scope's program: its group's schema must be this program's.
                let group = match &sc {
                    Scope::Group(g) => g.clone(),
                    Scope::Switch(id) => view.members.get(id).cloned().ok_or_else(|| {
                        anyhow!(
                            "{}: switch {id} has not joined the fleet (start it with sluice \
                             serve --etcd ... --switch-id {id} --group NAME); nothing was \
                             written",
                            at(*n)
                        )
                    })?,
                };
                match view.schemas.get(&group) {
                    Some(fp) if *fp == self.fingerprint => {
                        compares.push(Compare::value(
                            self.layout.schema(&group),
                            CompareOp::Equal,
                            fp.clone(),
                        ));
                    }
                    Some(fp) => bail!(
                        "{}: group {group} runs another program (table schema {fp}; --program's \
                         is {}); nothing was written",
                        at(*n),
                        self.fingerprint
                    ),
                    None if new_groups.insert(group.clone()) => {
                        compares.push(Compare::create_revision(
                            self.layout.schema(&group),
                            CompareOp::Equal,
                            0,
                        ));
                        changes.push(Change::Put(
                            self.layout.schema(&group),
                            self.fingerprint.clone(),
                        ));
                    }
                    None => {}
                }
                if let Scope::Switch(id) = &sc {
                    compares.push(Compare::value(
                        self.layout.member(id),
                        CompareOp::Equal,
                        group.clone(),
                    ));
                }
                let own = view.entries.get(&sc).cloned().unwrap_or_default();
                let (set, inherited) = self.staged(view, &sc);
                staged.insert(
                    sc.clone(),
                    Staged {
                        set,
                        own,
                        inherited,
                    },
                );
            }
            let Some(st) = staged.get_mut(&sc) else {
                continue;
            };
            let change = self
                .command(st, &sc, line)
                .map_err(|e| anyhow!("{}: {e}; nothing was written", at(*n)))?;
            count += 1;
            changes.extend(change);
            // A group's change reaches each of its switches: it must fit each one's tables
            // beside the switch's own entries.
            if let Scope::Group(g) = &sc {
                let members: Vec<String> = view
                    .members
                    .iter()
                    .filter(|(_, mg)| *mg == g)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in members {
                    let ms = Scope::Switch(id.clone());
                    if !staged.contains_key(&ms) {
                        let own = view.entries.get(&ms).cloned().unwrap_or_default();
                        let (set, inherited) = self.staged(view, &ms);
                        staged.insert(
                            ms.clone(),
                            Staged {
                                set,
                                own,
                                inherited,
                            },
                        );
                    }
                    if let Some(st) = staged.get_mut(&ms) {
                        self.reach_member(st, line).map_err(|e| {
                            anyhow!("{}: on switch {id}: {e}; nothing was written", at(*n))
                        })?;
                    }
                }
            }
        }
        Ok((changes, compares, count))
    }

    /// Stages a group's command in one of its switches' tables: an entry the switch does
    /// not override is added there (and must fit) or removed.
    fn reach_member(&self, st: &mut Staged, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((verb, rest)) = words.split_first() else {
            return Ok(());
        };
        if *verb == "table_clear" {
            // The group's entries of the table leave every switch (its own stay).
            let Some(t) = rest.first().and_then(|n| st.set.by_name(n)) else {
                return Ok(());
            };
            let name = rest[0].to_string();
            let gone: Vec<(String, String)> = st
                .inherited
                .iter()
                .filter(|(n, _)| *n == name)
                .cloned()
                .collect();
            for slot in gone {
                st.inherited.remove(&slot);
                if !st.own.contains_key(&slot) {
                    unstage(&mut st.set, t, &slot.1);
                }
            }
            return Ok(());
        }
        if *verb != "table_add" && *verb != "table_delete" {
            return Ok(());
        }
        let set = &mut st.set;
        // The commands were checked in the group's tables already: what does not parse here
        // cannot happen, and is passed over.
        let (table, k, add) = if *verb == "table_delete" {
            let Ok((t, k)) = key_to_delete(set, rest) else {
                return Ok(());
            };
            (t, k, None)
        } else {
            let Ok(Some(cmd)) = command::parse_command(line, set) else {
                return Ok(());
            };
            let Command::TableAdd {
                table,
                key,
                priority,
                ..
            } = &cmd
            else {
                return Ok(());
            };
            let k = command::key_text(set, *table, key, *priority);
            (*table, k, Some(cmd))
        };
        let slot = (set.tables()[table].name().to_string(), k);
        // The switch holds the group's entry wherever it has none of its own: keep the
        // record of what it inherits right, and stage only what reaches its tables.
        let overridden = st.own.contains_key(&slot);
        let Some(cmd) = add else {
            st.inherited.remove(&slot);
            if !overridden {
                unstage(set, table, &slot.1);
            }
            return Ok(());
        };
        st.inherited.insert(slot);
        if overridden {
            return Ok(());
        }
        command::apply(set, &cmd)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// One command against a scope's staged tables and entries: what it puts and deletes.
    fn command(&self, st: &mut Staged, sc: &Scope, line: &str) -> Result<Vec<Change>, String> {
        let Staged {
            set,
            own,
            inherited,
        } = st;
        let words: Vec<&str> = line.split_whitespace().collect();
        let (verb, rest) = words.split_first().ok_or("empty")?;
        let table_name = |i: usize| -> Result<(usize, String), String> {
            let name = rest.get(i).ok_or_else(|| format!("{verb}: no table"))?;
            let t = set
                .by_name(name)
                .ok_or_else(|| format!("unknown table '{}'", sluice_defs::names::echo(name)))?;
            Ok((t, name.to_string()))
        };
        match *verb {
            "table_add" | "table_modify" => {
                let add = format!("table_add {}", rest.join(" "));
                let cmd = command::parse_command(&add, set)
                    .map_err(|e| e.to_string())?
                    .ok_or("empty")?;
                let Command::TableAdd {
                    table,
                    key,
                    call,
                    priority,
                } = &cmd
                else {
                    return Err("not an entry".into());
                };
                let name = set.tables()[*table].name().to_string();
                let k = command::key_text(set, *table, key, *priority);
                let (action, args) = command::call_words(set, call);
                let value = Value { action, args };
                let slot = (name.clone(), k.clone());
                let exists = own.contains_key(&slot);
                if *verb == "table_add" && exists {
                    return Err(format!(
                        "table {name} already has an entry {k} in {sc}; use table_modify"
                    ));
                }
                if *verb == "table_modify" && !exists {
                    return Err(format!("table {name} has no entry {k} in {sc}"));
                }
                if !exists && !inherited.contains(&slot) {
                    // Staged, so that a full table or a duplicate within the transaction is
                    // found now (an entry of the group that a switch's overrides is already
                    // counted).
                    command::apply(set, &cmd).map_err(|e| e.to_string())?;
                }
                own.insert(slot, value.clone());
                Ok(vec![Change::Put(
                    self.layout.entry(sc, &name, &k),
                    value.encode(),
                )])
            }
            "table_delete" => {
                // table_delete TABLE KEY... [PRIORITY]: by match key (handles are per switch).
                let (_, name) = table_name(0)?;
                let (table, k) = key_to_delete(set, rest)?;
                if own.remove(&(name.clone(), k.clone())).is_none() {
                    return Err(format!("table {name} has no entry {k} in {sc}"));
                }
                if !inherited.contains(&(name.clone(), k.clone())) {
                    unstage(set, table, &k);
                }
                Ok(vec![Change::Delete(self.layout.entry(sc, &name, &k))])
            }
            "table_set_default" => {
                let cmd = command::parse_command(line, set)
                    .map_err(|e| e.to_string())?
                    .ok_or("empty")?;
                let Command::TableSetDefault { table, call } = &cmd else {
                    return Err("not a default".into());
                };
                command::apply(set, &cmd).map_err(|e| e.to_string())?;
                let name = set.tables()[*table].name().to_string();
                let (action, args) = command::call_words(set, call);
                Ok(vec![Change::Put(
                    self.layout.default(sc, &name),
                    Value { action, args }.encode(),
                )])
            }
            "table_reset_default" => {
                let (_, name) = table_name(0)?;
                Ok(vec![Change::Delete(self.layout.default(sc, &name))])
            }
            "table_clear" => {
                let (t, name) = table_name(0)?;
                let gone: Vec<(String, String)> =
                    own.keys().filter(|(n, _)| *n == name).cloned().collect();
                Ok(gone
                    .into_iter()
                    .map(|slot| {
                        own.remove(&slot);
                        if !inherited.contains(&slot) {
                            unstage(set, t, &slot.1);
                        }
                        Change::Delete(self.layout.entry(sc, &slot.0, &slot.1))
                    })
                    .collect())
            }
            "secret_set" | "key_derive" => Err(format!(
                "{verb}: secrets never go into the store; set them on each switch with sluice \
                 ctl --control"
            )),
            other => Err(format!(
                "{}: not a change to the store (a fleet transaction takes table_add, \
                 table_modify, table_delete, table_set_default, table_reset_default and \
                 table_clear)",
                sluice_defs::names::echo(other)
            )),
        }
    }
}
