//! Control commands in BMv2 `simple_switch_CLI` syntax: parsing one line
//! against a [`TableSet`], applying it, and loading whole entries files
//! all-or-nothing.

use std::fmt::{self, Write as _};

use thiserror::Error;

use crate::table::{
    ActionCall, ActionSchema, EntryHandle, KeyField, MatchKind, MatchValue, Table, TableError,
    TableSet,
};
use crate::value::{format_value, parse_value, ValueError};

/// Who answers a command: the tables alone (this module), or the running switch
/// (`sluice serve`, which keeps counters and knows its packets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Tables,
    Switch,
}

/// One control command: its name, its syntax, whether an entries file may hold it, and who
/// answers it.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub in_entries: bool,
    pub scope: Scope,
    /// Its arguments hold a secret: no message, reply, trace or history repeats any word
    /// of a line that starts with it, in any case (see [`is_secret_line`]).
    pub secret: bool,
}

const fn spec(
    name: &'static str,
    usage: &'static str,
    in_entries: bool,
    scope: Scope,
) -> CommandSpec {
    CommandSpec {
        name,
        usage,
        in_entries,
        scope,
        secret: false,
    }
}

const fn secret_spec(name: &'static str, usage: &'static str) -> CommandSpec {
    CommandSpec {
        secret: true,
        ..spec(name, usage, true, Scope::Tables)
    }
}

/// Every control command, in the order they are listed to users. A new command is a line
/// here, then a `Command` variant with its parsing and `apply` (or, for a switch command,
/// a case in `sluice serve`'s handler).
pub const SPECS: [CommandSpec; 16] = [
    spec(
        "table_add",
        "table_add TABLE ACTION KEY... => ARG... [PRIORITY]",
        true,
        Scope::Tables,
    ),
    spec(
        "table_set_default",
        "table_set_default TABLE ACTION ARG...",
        true,
        Scope::Tables,
    ),
    spec(
        "table_modify",
        "table_modify TABLE ACTION HANDLE ARG...",
        true,
        Scope::Tables,
    ),
    spec(
        "table_delete",
        "table_delete TABLE HANDLE",
        true,
        Scope::Tables,
    ),
    spec(
        "table_reset_default",
        "table_reset_default TABLE",
        true,
        Scope::Tables,
    ),
    spec("table_clear", "table_clear TABLE", true, Scope::Tables),
    spec(
        "table_num_entries",
        "table_num_entries TABLE",
        false,
        Scope::Tables,
    ),
    spec("table_dump", "table_dump TABLE", false, Scope::Tables),
    spec("show_tables", "show_tables", false, Scope::Tables),
    spec("show_actions", "show_actions", false, Scope::Tables),
    secret_spec("secret_set", "secret_set NAME 0x<32 or 64 hex digits>"),
    spec(
        "key_derive",
        "key_derive NAME --private FILE --peer 0x<64 hex digits> [--peer-ip IPV4]",
        true,
        Scope::Tables,
    ),
    spec("stats", "stats", false, Scope::Switch),
    spec(
        "counter_read",
        "counter_read TABLE HANDLE",
        false,
        Scope::Switch,
    ),
    spec("counter_reset", "counter_reset TABLE", false, Scope::Switch),
    spec("show_ports", "show_ports", false, Scope::Switch),
];

/// The names of the commands of `SPECS` that `keep` selects, in order; `N` must be their
/// number (checked when the constant is evaluated).
const fn names<const N: usize>(scope: Option<Scope>, entries_only: bool) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut i, mut j) = (0, 0);
    while i < SPECS.len() {
        let s = &SPECS[i];
        let in_scope = match scope {
            None => true,
            Some(Scope::Tables) => matches!(s.scope, Scope::Tables),
            Some(Scope::Switch) => matches!(s.scope, Scope::Switch),
        };
        if in_scope && (!entries_only || s.in_entries) {
            out[j] = s.name;
            j += 1;
        }
        i += 1;
    }
    assert!(j == N, "wrong command count");
    out
}

/// The commands the tables answer (what [`parse_command`] knows), in order.
pub const COMMANDS: [&str; 12] = names(Some(Scope::Tables), false);

/// The commands only a running switch answers.
pub const SWITCH_COMMANDS: [&str; 4] = names(Some(Scope::Switch), false);

/// The commands an entries file may contain.
pub const ENTRIES_COMMANDS: [&str; 8] = names(None, true);

/// Whether a line's first word names a command whose arguments hold a secret, in any case
/// (`SECRET_SET` too: a line typed in the wrong case holds the key all the same). Nothing
/// may repeat any word of such a line.
pub fn is_secret_line(line: &str) -> bool {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    line.split_whitespace().next().is_some_and(|verb| {
        SPECS
            .iter()
            .any(|s| s.secret && s.name.eq_ignore_ascii_case(verb))
    })
}

/// A command's syntax, for usage errors and `help`.
pub fn usage(name: &str) -> Option<&'static str> {
    SPECS.iter().find(|s| s.name == name).map(|s| s.usage)
}

/// One parsed and validated command; `table` indexes [`TableSet::tables`].
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    TableAdd {
        table: usize,
        key: Vec<MatchValue>,
        call: ActionCall,
        priority: Option<u32>,
    },
    TableSetDefault {
        table: usize,
        call: ActionCall,
    },
    TableModify {
        table: usize,
        handle: EntryHandle,
        call: ActionCall,
    },
    TableDelete {
        table: usize,
        handle: EntryHandle,
    },
    TableResetDefault {
        table: usize,
    },
    TableClear {
        table: usize,
    },
    TableNumEntries {
        table: usize,
    },
    TableDump {
        table: usize,
    },
    ShowTables,
    ShowActions,
    /// Its `Debug` and `Display` never show `value`.
    SecretSet {
        name: String,
        value: SecretArg,
    },
    /// A key derived from this switch's private key and a peer's public key (the key itself
    /// is in `key`, never shown).
    KeyDerive {
        name: String,
        key: SharedKey,
    },
}

/// The value of `secret_set`: 16 bytes for a 128-bit secret, a key for a 256-bit one.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretArg {
    Sip([u8; 16]),
    Key(SharedKey),
}

/// A key made when a command is parsed, so that the two copies of a live switch's tables get
/// the same key, with one counter and one window.
#[derive(Clone)]
pub struct SharedKey(pub std::sync::Arc<crate::crypto::AeadKey>);

impl PartialEq for SharedKey {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedKey {}

impl Command {
    /// The command's name as typed (`table_add`, ...).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::TableAdd { .. } => "table_add",
            Command::TableSetDefault { .. } => "table_set_default",
            Command::TableModify { .. } => "table_modify",
            Command::TableDelete { .. } => "table_delete",
            Command::TableResetDefault { .. } => "table_reset_default",
            Command::TableClear { .. } => "table_clear",
            Command::TableNumEntries { .. } => "table_num_entries",
            Command::TableDump { .. } => "table_dump",
            Command::ShowTables => "show_tables",
            Command::ShowActions => "show_actions",
            Command::SecretSet { .. } => "secret_set",
            Command::KeyDerive { .. } => "key_derive",
        }
    }

    fn table(&self) -> Option<usize> {
        match *self {
            Command::TableAdd { table, .. }
            | Command::TableSetDefault { table, .. }
            | Command::TableModify { table, .. }
            | Command::TableDelete { table, .. }
            | Command::TableResetDefault { table }
            | Command::TableClear { table }
            | Command::TableNumEntries { table }
            | Command::TableDump { table } => Some(table),
            Command::ShowTables
            | Command::ShowActions
            | Command::SecretSet { .. }
            | Command::KeyDerive { .. } => None,
        }
    }
}

// Hand-written so that a secret value can never reach a log.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::TableAdd {
                table,
                key,
                call,
                priority,
            } => f
                .debug_struct("TableAdd")
                .field("table", table)
                .field("key", key)
                .field("call", call)
                .field("priority", priority)
                .finish(),
            Command::TableSetDefault { table, call } => f
                .debug_struct("TableSetDefault")
                .field("table", table)
                .field("call", call)
                .finish(),
            Command::TableModify {
                table,
                handle,
                call,
            } => f
                .debug_struct("TableModify")
                .field("table", table)
                .field("handle", handle)
                .field("call", call)
                .finish(),
            Command::TableDelete { table, handle } => f
                .debug_struct("TableDelete")
                .field("table", table)
                .field("handle", handle)
                .finish(),
            Command::TableResetDefault { table } => f
                .debug_struct("TableResetDefault")
                .field("table", table)
                .finish(),
            Command::TableClear { table } => {
                f.debug_struct("TableClear").field("table", table).finish()
            }
            Command::TableNumEntries { table } => f
                .debug_struct("TableNumEntries")
                .field("table", table)
                .finish(),
            Command::TableDump { table } => {
                f.debug_struct("TableDump").field("table", table).finish()
            }
            Command::ShowTables => f.write_str("ShowTables"),
            Command::ShowActions => f.write_str("ShowActions"),
            Command::SecretSet { name, .. } => f
                .debug_struct("SecretSet")
                .field("name", name)
                .field("value", &format_args!("<redacted>"))
                .finish(),
            Command::KeyDerive { name, key } => f
                .debug_struct("KeyDerive")
                .field("name", name)
                .field("key", &key.0)
                .finish(),
        }
    }
}

/// The verb and its target: `table_add (table #2)`, `secret_set key <redacted>`.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())?;
        if let Some(table) = self.table() {
            write!(f, " (table #{table})")?;
        }
        if let Command::SecretSet { name, .. } | Command::KeyDerive { name, .. } = self {
            write!(f, " {name} <redacted>")?;
        }
        Ok(())
    }
}

/// What a command prints, and the handle of an added entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub text: String,
    pub handle: Option<EntryHandle>,
}

impl CommandOutput {
    fn text(text: String) -> Self {
        CommandOutput { text, handle: None }
    }
}

/// What is wrong with a command line. No message repeats a secret value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("unknown command '{name}'; valid commands: {}", COMMANDS.join(", "))]
    UnknownCommand { name: String },
    #[error("{command}: wrong number of arguments; usage: {usage}")]
    Usage {
        command: &'static str,
        usage: &'static str,
    },
    #[error("unknown table '{name}'{}", did_you_mean(suggestion))]
    UnknownTable {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown action '{name}'{}", did_you_mean(suggestion))]
    UnknownAction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("action {action} is not an action of table {table} (its actions: {allowed})")]
    ActionNotInTable {
        table: String,
        action: String,
        allowed: String,
    },
    #[error("table_add {table}: missing '=>' between the key and the action arguments")]
    MissingArrow { table: String },
    #[error("table {table} takes {} ({fields}), got {got}", plural(*expected, "key"))]
    KeyCount {
        table: String,
        expected: usize,
        fields: String,
        got: usize,
    },
    #[error("table {table}: key {field} ({kind}): {reason}")]
    BadKey {
        table: String,
        field: String,
        kind: MatchKind,
        reason: String,
    },
    #[error("action {action} takes {} ({params}), got {got}", plural(*expected, "argument"))]
    ArgCount {
        action: String,
        expected: usize,
        params: String,
        got: usize,
    },
    #[error("action {action}: argument {param}: {error}")]
    BadArg {
        action: String,
        param: String,
        error: ValueError,
    },
    #[error(
        "table {table} needs a priority after the {} of action {action} \
         (the table has a ternary, range or optional key)",
        plural(*arity, "argument")
    )]
    MissingPriority {
        table: String,
        action: String,
        arity: usize,
    },
    #[error(
        "table {table} takes no priority (it has no ternary, range or optional key), \
         but got {got} values after '=>' for the {} of action {action}",
        plural(*arity, "argument")
    )]
    UnexpectedPriority {
        table: String,
        action: String,
        arity: usize,
        got: usize,
    },
    #[error("table {table}: priority '{token}' is not a decimal number below 2^32")]
    BadPriority { table: String, token: String },
    #[error("table {table}: handle '{token}' is not a decimal number below 2^32")]
    BadHandle { table: String, token: String },
    #[error("table {table}: {error}")]
    Table { table: String, error: TableError },
    /// The name is not repeated: a key typed in its place would be.
    #[error("{command}: no secret of that name ({})", declared_secrets(declared))]
    UnknownSecret {
        command: &'static str,
        declared: Vec<String>,
    },
    #[error("secret_set: the value must be 0x followed by exactly {digits} hex digits")]
    BadSecretValue { digits: usize },
    #[error("key_derive: secret {name} is {bits} bits; keys are derived for 256-bit secrets")]
    NotAKeySecret { name: String, bits: u32 },
    #[error("key_derive: {0}")]
    KeyDerive(String),
    #[error(
        "{command} must be written in lower case (the line is not repeated: it may hold a secret)"
    )]
    SecretCommandCase { command: &'static str },
    #[error("{command} is not allowed in an entries file (allowed: {})", ENTRIES_COMMANDS.join(", "))]
    NotInEntriesFile { command: String },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default()
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn count_entries(n: usize) -> String {
    if n == 1 {
        "1 entry".to_owned()
    } else {
        format!("{n} entries")
    }
}

fn declared_secrets(declared: &[String]) -> String {
    if declared.is_empty() {
        "the program declares no secrets".to_owned()
    } else {
        format!("declared secrets: {}", declared.join(", "))
    }
}

/// A bad line of an entries file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}: {error}")]
pub struct EntriesError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub error: CommandError,
}

pub use sluice_defs::strip_comment;

/// Parses one line; `Ok(None)` for a blank or comment-only line. Files a command names
/// (`key_derive --private FILE`) are relative to the working directory.
pub fn parse_command(line: &str, set: &TableSet) -> Result<Option<Command>, CommandError> {
    parse_command_in(line, set, None)
}

/// [`parse_command`] with files relative to `base` (an entries file's directory).
pub fn parse_command_in(
    line: &str,
    set: &TableSet,
    base: Option<&std::path::Path>,
) -> Result<Option<Command>, CommandError> {
    let mut tokens = strip_comment(line).split_whitespace();
    let Some(verb) = tokens.next() else {
        return Ok(None);
    };
    if is_secret_line(verb) {
        if let Some(s) = SPECS
            .iter()
            .find(|s| s.secret && s.name != verb && s.name.eq_ignore_ascii_case(verb))
        {
            return Err(CommandError::SecretCommandCase { command: s.name });
        }
    }
    let args: Vec<&str> = tokens.collect();
    let cmd = match (verb, args.as_slice()) {
        ("table_add", _) => parse_table_add(&args, set)?,
        ("table_set_default", [table, action, rest @ ..]) => {
            let (table, t) = find_table(set, table)?;
            let call = parse_call(set, t, action, rest)?;
            Command::TableSetDefault { table, call }
        }
        ("table_modify", [table, action, handle, rest @ ..]) => {
            let (table, t) = find_table(set, table)?;
            let handle = parse_handle(t, handle)?;
            let call = parse_call(set, t, action, rest)?;
            Command::TableModify {
                table,
                handle,
                call,
            }
        }
        ("table_delete", [table, handle]) => {
            let (table, t) = find_table(set, table)?;
            let handle = parse_handle(t, handle)?;
            Command::TableDelete { table, handle }
        }
        ("table_reset_default", [table]) => Command::TableResetDefault {
            table: find_table(set, table)?.0,
        },
        ("table_clear", [table]) => Command::TableClear {
            table: find_table(set, table)?.0,
        },
        ("table_num_entries", [table]) => Command::TableNumEntries {
            table: find_table(set, table)?.0,
        },
        ("table_dump", [table]) => Command::TableDump {
            table: find_table(set, table)?.0,
        },
        ("show_tables", []) => Command::ShowTables,
        ("show_actions", []) => Command::ShowActions,
        ("secret_set", [name, value]) => parse_secret(set, name, value)?,
        ("key_derive", [name, rest @ ..]) => parse_key_derive(set, name, rest, base)?,
        // A known command with the wrong arguments. The usage message does
        // not repeat them: one may be a secret.
        _ => return Err(usage_error(verb)),
    };
    Ok(Some(cmd))
}

/// The usage error for a known command, or "unknown command".
fn usage_error(verb: &str) -> CommandError {
    SPECS
        .iter()
        .find(|s| s.name == verb && s.scope == Scope::Tables)
        .map_or_else(
            || CommandError::UnknownCommand { name: echo(verb) },
            |s| CommandError::Usage {
                command: s.name,
                usage: s.usage,
            },
        )
}

fn parse_table_add(args: &[&str], set: &TableSet) -> Result<Command, CommandError> {
    let [table_name, action_name, rest @ ..] = args else {
        return Err(usage_error("table_add"));
    };
    let (table, t) = find_table(set, table_name)?;
    let (action, schema) = find_action(set, t, action_name)?;
    let Some(arrow) = rest.iter().position(|&tok| tok == "=>") else {
        return Err(CommandError::MissingArrow {
            table: t.name().to_owned(),
        });
    };
    let (key_tokens, after) = rest.split_at(arrow);
    let after = after.get(1..).unwrap_or_default();

    let fields = &t.schema().keys;
    if key_tokens.len() != fields.len() {
        return Err(CommandError::KeyCount {
            table: t.name().to_owned(),
            expected: fields.len(),
            fields: describe_keys(fields),
            got: key_tokens.len(),
        });
    }
    let key = key_tokens
        .iter()
        .zip(fields)
        .map(|(tok, field)| {
            parse_match(tok, field).map_err(|reason| CommandError::BadKey {
                table: t.name().to_owned(),
                field: field.name.clone(),
                kind: field.kind,
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let arity = schema.params.len();
    let (arg_tokens, priority) = match (t.needs_priority(), after.split_last()) {
        (true, Some((last, args))) if after.len() == arity + 1 => {
            let priority = parse_decimal(last).ok_or_else(|| CommandError::BadPriority {
                table: t.name().to_owned(),
                token: echo(last),
            })?;
            (args, Some(priority))
        }
        (true, _) if after.len() == arity => {
            return Err(CommandError::MissingPriority {
                table: t.name().to_owned(),
                action: schema.name.clone(),
                arity,
            });
        }
        (false, _) if after.len() == arity + 1 => {
            return Err(CommandError::UnexpectedPriority {
                table: t.name().to_owned(),
                action: schema.name.clone(),
                arity,
                got: after.len(),
            });
        }
        _ => (after, None),
    };
    let args = parse_args(schema, arg_tokens)?;
    Ok(Command::TableAdd {
        table,
        key,
        call: ActionCall { action, args },
        priority,
    })
}

/// Parses one key token in the syntax of its field's match kind; the error
/// is the reason, without the table and field (the caller adds them).
fn parse_match(tok: &str, field: &KeyField) -> Result<MatchValue, String> {
    let width = field.width;
    let value = |text: &str| parse_value(text, width).map_err(|e| e.to_string());
    let malformed = |syntax: &str| format!("expected {syntax}, got '{}'", echo(tok));
    match field.kind {
        MatchKind::Exact => {
            if ["/", "&&&", "->", "*"].iter().any(|s| tok.contains(s)) {
                return Err(malformed("a single VALUE"));
            }
            value(tok).map(MatchValue::Exact)
        }
        MatchKind::Lpm => {
            let (v, len) = tok.split_once('/').ok_or_else(|| malformed("VALUE/LEN"))?;
            let prefix_len = match len.parse::<u32>() {
                Ok(n) if len.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(malformed("VALUE/LEN with a decimal LEN")),
            };
            if prefix_len > width {
                return Err(format!(
                    "prefix length {prefix_len} is longer than the field's {width} bits"
                ));
            }
            Ok(MatchValue::Lpm {
                value: value(v)?,
                prefix_len,
            })
        }
        MatchKind::Ternary => {
            let (v, mask) = tok
                .split_once("&&&")
                .ok_or_else(|| malformed("VALUE&&&MASK"))?;
            Ok(MatchValue::Ternary {
                value: value(v)?,
                mask: value(mask)?,
            })
        }
        MatchKind::Range => {
            let (lo, hi) = tok.split_once("->").ok_or_else(|| malformed("LO->HI"))?;
            let (lo, hi) = (value(lo)?, value(hi)?);
            if lo > hi {
                return Err(format!("range start {lo} is above its end {hi}"));
            }
            Ok(MatchValue::Range { lo, hi })
        }
        MatchKind::Optional if tok == "*" => Ok(MatchValue::Optional(None)),
        MatchKind::Optional => value(tok).map(|v| MatchValue::Optional(Some(v))),
    }
}

/// Parses `ACTION ARG...` for a table, checking the action and arity.
fn parse_call(
    set: &TableSet,
    table: &Table,
    action: &str,
    args: &[&str],
) -> Result<ActionCall, CommandError> {
    let (action, schema) = find_action(set, table, action)?;
    Ok(ActionCall {
        action,
        args: parse_args(schema, args)?,
    })
}

fn parse_args(schema: &ActionSchema, tokens: &[&str]) -> Result<Box<[u128]>, CommandError> {
    if tokens.len() != schema.params.len() {
        return Err(CommandError::ArgCount {
            action: schema.name.clone(),
            expected: schema.params.len(),
            params: describe_params(schema),
            got: tokens.len(),
        });
    }
    tokens
        .iter()
        .zip(&schema.params)
        .map(|(tok, param)| {
            parse_value(tok, param.width).map_err(|error| CommandError::BadArg {
                action: schema.name.clone(),
                param: param.name.clone(),
                error,
            })
        })
        .collect()
}

fn parse_handle(table: &Table, token: &str) -> Result<EntryHandle, CommandError> {
    parse_decimal(token)
        .map(EntryHandle)
        .ok_or_else(|| CommandError::BadHandle {
            table: table.name().to_owned(),
            token: echo(token),
        })
}

/// Handles and priorities are plain decimal, as BMv2 prints them.
fn parse_decimal(token: &str) -> Option<u32> {
    // `str::parse` would also accept a leading '+'.
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

fn parse_secret(set: &TableSet, name: &str, value: &str) -> Result<Command, CommandError> {
    let Some(i) = set.secret_by_name(name) else {
        return Err(CommandError::UnknownSecret {
            command: "secret_set",
            declared: set.secret_names(),
        });
    };
    let spec = &set.secrets()[i];
    let bad = |_| CommandError::BadSecretValue {
        digits: spec.digits(),
    };
    let value = match spec.bits {
        256 => SecretArg::Key(SharedKey(std::sync::Arc::new(
            crate::crypto::AeadKey::from_secret(
                sluice_defs::secret::parse_key(value).map_err(bad)?,
            ),
        ))),
        _ => SecretArg::Sip(sluice_defs::secret::parse_secret(value).map_err(bad)?),
    };
    Ok(Command::SecretSet {
        name: name.to_owned(),
        value,
    })
}

/// The most a private key file may hold: `0x`, 64 hex digits and white space.
const KEY_FILE_MAX: u64 = 1024;

/// Reads an X25519 private key written by `sluice keygen`: `0x` and 64 hex digits. No message
/// repeats its contents.
pub fn read_private_key(path: &std::path::Path) -> Result<crate::crypto::PrivateKey, String> {
    use std::io::Read;
    let name = echo(&path.display().to_string());
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(KEY_FILE_MAX + 1).read_to_end(&mut text))
        .map_err(|e| format!("cannot read the private key {name}: {e}"))?;
    let not_a_key =
        || format!("{name} is not a private key (0x and 64 hex digits, as sluice keygen writes)");
    if text.len() as u64 > KEY_FILE_MAX {
        return Err(not_a_key());
    }
    let text = String::from_utf8(text).map_err(|_| not_a_key())?;
    let bytes: [u8; 32] = sluice_defs::secret::parse_key(&text).map_err(|_| not_a_key())?;
    Ok(crate::crypto::PrivateKey::from_bytes(bytes))
}

/// `key_derive NAME --private FILE --peer 0x<64 hex> [--peer-ip IPV4]`.
fn parse_key_derive(
    set: &TableSet,
    name: &str,
    args: &[&str],
    base: Option<&std::path::Path>,
) -> Result<Command, CommandError> {
    let usage = || usage_error("key_derive");
    let Some(i) = set.secret_by_name(name) else {
        return Err(CommandError::UnknownSecret {
            command: "key_derive",
            declared: set.secret_names(),
        });
    };
    let spec = &set.secrets()[i];
    if spec.bits != 256 {
        return Err(CommandError::NotAKeySecret {
            name: spec.name.clone(),
            bits: spec.bits,
        });
    }
    let (mut private, mut peer, mut peer_ip) = (None, None, None);
    for pair in args.chunks(2) {
        match pair {
            ["--private", file] if private.is_none() => private = Some(*file),
            ["--peer", key] if peer.is_none() => peer = Some(*key),
            ["--peer-ip", ip] if peer_ip.is_none() => peer_ip = Some(*ip),
            _ => return Err(usage()),
        }
    }
    let (Some(file), Some(peer)) = (private, peer) else {
        return Err(usage());
    };
    let peer: [u8; 32] = sluice_defs::secret::parse_key(peer).map_err(|_| {
        CommandError::KeyDerive(
            "the peer's public key must be 0x followed by exactly 64 hex digits".into(),
        )
    })?;
    let peer_ip = match peer_ip {
        None => None,
        Some(ip) => Some(u32::from(ip.parse::<std::net::Ipv4Addr>().map_err(
            |_| CommandError::KeyDerive(format!("--peer-ip '{}' is not an IPv4 address", echo(ip))),
        )?)),
    };
    // A key pasted where its file belongs would otherwise be repeated in "cannot read".
    if sluice_defs::secret::parse_key::<32>(file).is_ok() {
        return Err(CommandError::KeyDerive(
            "--private takes the name of a file holding the private key, not the key".into(),
        ));
    }
    let path = std::path::Path::new(file);
    let path = match base {
        Some(b) if path.is_relative() => b.join(path),
        _ => path.to_path_buf(),
    };
    let private = read_private_key(&path).map_err(CommandError::KeyDerive)?;
    let key = crate::crypto::derive(&private, &peer, peer_ip)
        .map_err(|e| CommandError::KeyDerive(e.to_string()))?;
    Ok(Command::KeyDerive {
        name: name.to_owned(),
        key: SharedKey(std::sync::Arc::new(key)),
    })
}

fn find_table<'a>(set: &'a TableSet, name: &str) -> Result<(usize, &'a Table), CommandError> {
    set.by_name(name)
        .and_then(|i| Some((i, set.table(i)?)))
        .ok_or_else(|| CommandError::UnknownTable {
            name: echo(name),
            suggestion: closest(name, set.tables().iter().map(Table::name)),
        })
}

/// Finds an action by name and checks that `table` may use it.
fn find_action<'a>(
    set: &'a TableSet,
    table: &Table,
    name: &str,
) -> Result<(u32, &'a ActionSchema), CommandError> {
    let allowed = &table.schema().actions;
    let allowed_names = || allowed.iter().filter_map(|&a| action_name(set, a));
    let found = set
        .action_by_name(name)
        .and_then(|i| Some((i, set.actions().get(i as usize)?)));
    let Some((index, schema)) = found else {
        return Err(CommandError::UnknownAction {
            name: echo(name),
            suggestion: closest(name, allowed_names()),
        });
    };
    if !allowed.contains(&index) {
        return Err(CommandError::ActionNotInTable {
            table: table.name().to_owned(),
            action: name.to_owned(),
            allowed: allowed_names().collect::<Vec<_>>().join(", "),
        });
    }
    Ok((index, schema))
}

fn action_name(set: &TableSet, action: u32) -> Option<&str> {
    set.actions().get(action as usize).map(|a| a.name.as_str())
}

use sluice_defs::names::{closest, echo};

fn describe_keys(fields: &[KeyField]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| format!("{}: {}", f.name, f.kind))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

fn describe_params(schema: &ActionSchema) -> String {
    let parts: Vec<String> = schema
        .params
        .iter()
        .map(|p| format!("{}: {} bits", p.name, p.width))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Applies a parsed command to the set.
pub fn apply(set: &mut TableSet, cmd: &Command) -> Result<CommandOutput, CommandError> {
    // The table's name for messages; the command was parsed against this set, so its table
    // exists (a stale index reads as "#N").
    let name = |set: &TableSet, t: usize| {
        set.table(t)
            .map_or_else(|| format!("#{t}"), |t| t.name().to_owned())
    };
    let wrap = |set: &TableSet, t: usize| {
        let table = name(set, t);
        move |error| CommandError::Table { table, error }
    };
    let out = match cmd {
        Command::TableAdd {
            table,
            key,
            call,
            priority,
        } => {
            let handle = set
                .add(*table, key.clone(), call.clone(), *priority)
                .map_err(wrap(set, *table))?;
            CommandOutput {
                text: format!("Entry has been added with handle {handle}"),
                handle: Some(handle),
            }
        }
        Command::TableSetDefault { table, call } => {
            set.set_default(*table, call.clone())
                .map_err(wrap(set, *table))?;
            CommandOutput::text(format!(
                "Default action of table {} set to {}",
                name(set, *table),
                format_call(set.actions(), call)
            ))
        }
        Command::TableModify {
            table,
            handle,
            call,
        } => {
            set.modify(*table, *handle, call.clone())
                .map_err(wrap(set, *table))?;
            CommandOutput::text(format!(
                "Entry {handle} of table {} now runs {}",
                name(set, *table),
                format_call(set.actions(), call)
            ))
        }
        Command::TableDelete { table, handle } => {
            set.delete(*table, *handle).map_err(wrap(set, *table))?;
            CommandOutput::text(format!(
                "Entry {handle} deleted from table {}",
                name(set, *table)
            ))
        }
        Command::TableResetDefault { table } => {
            set.reset_default(*table).map_err(wrap(set, *table))?;
            let t = table_at(set, *table)?;
            CommandOutput::text(format!(
                "Default action of table {} reset to {}",
                t.name(),
                format_call(set.actions(), t.default_action())
            ))
        }
        Command::TableClear { table } => {
            let removed = set.clear(*table).map_err(wrap(set, *table))?;
            CommandOutput::text(format!(
                "Table {} cleared ({} removed)",
                name(set, *table),
                count_entries(removed)
            ))
        }
        Command::TableNumEntries { table } => {
            CommandOutput::text(table_at(set, *table)?.num_entries().to_string())
        }
        Command::TableDump { table } => CommandOutput::text(table_dump_text(set, *table, None)?),
        Command::ShowTables => CommandOutput::text(show_tables(set.tables())),
        Command::ShowActions => CommandOutput::text(show_actions(set.actions())),
        Command::SecretSet { name, value } => {
            let i = secret_index(set, name, "secret_set")?;
            let set_error = |error| CommandError::Table {
                table: name.clone(),
                error,
            };
            match value {
                SecretArg::Sip(v) => set.set_secret(i, *v).map_err(set_error)?,
                SecretArg::Key(k) => set.add_key(i, k.0.clone()).map_err(set_error)?,
            }
            CommandOutput::text(format!("Secret {name} set"))
        }
        Command::KeyDerive { name, key } => {
            let i = secret_index(set, name, "key_derive")?;
            set.add_key(i, key.0.clone())
                .map_err(|error| CommandError::Table {
                    table: name.clone(),
                    error,
                })?;
            let k = &key.0;
            let peer = k.peer.map_or_else(
                || "any peer".to_string(),
                |p| std::net::Ipv4Addr::from(p).to_string(),
            );
            CommandOutput::text(format!(
                "Key {name} derived for {peer}: seals as key id {:#010x}, opens key id {:#010x}",
                k.send_id, k.recv_id
            ))
        }
    };
    Ok(out)
}

fn secret_index(set: &TableSet, name: &str, command: &'static str) -> Result<usize, CommandError> {
    set.secret_by_name(name)
        .ok_or_else(|| CommandError::UnknownSecret {
            command,
            declared: set.secret_names(),
        })
}

fn table_at(set: &TableSet, i: usize) -> Result<&Table, CommandError> {
    set.table(i).ok_or_else(|| CommandError::UnknownTable {
        name: format!("#{i}"),
        suggestion: None,
    })
}

/// `set_nat(ip=0x0a000001, port=0x1f90)`.
fn format_call(actions: &[ActionSchema], call: &ActionCall) -> String {
    let Some(schema) = actions.get(call.action as usize) else {
        return format!("#{}({:x?})", call.action, call.args);
    };
    let args: Vec<String> = schema
        .params
        .iter()
        .zip(call.args.iter())
        .map(|(p, &v)| format!("{}={}", p.name, format_value(v, p.width)))
        .collect();
    format!("{}({})", schema.name, args.join(", "))
}

/// A key value in the syntax `table_add` accepts.
fn format_match(mv: &MatchValue, width: u32) -> String {
    let v = |x| format_value(x, width);
    match *mv {
        MatchValue::Exact(x) | MatchValue::Optional(Some(x)) => v(x),
        MatchValue::Lpm { value, prefix_len } => format!("{}/{prefix_len}", v(value)),
        MatchValue::Ternary { value, mask } => format!("{}&&&{}", v(value), v(mask)),
        MatchValue::Range { lo, hi } => format!("{}->{}", v(lo), v(hi)),
        MatchValue::Optional(None) => "*".to_owned(),
    }
}

/// An entry's match key as `table_add` takes it, values in hex zero-padded to their widths,
/// followed by `@PRIORITY` when the table has priorities: one name per entry however it was
/// written (the fleet store names entries by it, `docs/fleet.md`).
pub fn key_text(set: &TableSet, table: usize, key: &[MatchValue], priority: Option<u32>) -> String {
    let Some(t) = set.table(table) else {
        return String::new();
    };
    let mut words: Vec<String> = key
        .iter()
        .zip(&t.schema().keys)
        .map(|(mv, field)| format_match(mv, field.width))
        .collect();
    if let Some(p) = priority {
        words.push(format!("@{p}"));
    }
    words.join(" ")
}

/// An action call as its name and its arguments in hex, zero-padded to their widths.
pub fn call_words(set: &TableSet, call: &ActionCall) -> (String, Vec<String>) {
    match set.actions().get(call.action as usize) {
        Some(a) => (
            a.name.clone(),
            a.params
                .iter()
                .zip(call.args.iter())
                .map(|(p, &v)| format_value(v, p.width))
                .collect(),
        ),
        None => (format!("#{}", call.action), Vec::new()),
    }
}

/// `table_dump`'s text for table `i` of `set`, with the counters of `also` added (a live
/// switch keeps two copies of its tables, each counting the packets that read it).
pub fn table_dump_text(
    set: &TableSet,
    i: usize,
    also: Option<&TableSet>,
) -> Result<String, CommandError> {
    let other = also.and_then(|o| o.table(i));
    Ok(dump_table(set.actions(), table_at(set, i)?, other))
}

fn dump_table(actions: &[ActionSchema], t: &Table, other: Option<&Table>) -> String {
    let schema = t.schema();
    let mut out = format!(
        "table {} ({}, size {})\n",
        t.name(),
        count_entries(t.num_entries()),
        schema.size
    );
    for e in t.entries() {
        let _ = write!(out, "handle {}:", e.handle);
        for (mv, field) in e.key.iter().zip(&schema.keys) {
            let _ = write!(out, " {}={}", field.name, format_match(mv, field.width));
        }
        if let Some(p) = e.priority {
            let _ = write!(out, " priority {p}");
        }
        let (packets, bytes) = other
            .and_then(|o| o.entry(e.handle))
            .map_or((e.packets, e.bytes), |o| {
                (e.packets + o.packets, e.bytes + o.bytes)
            });
        let _ = writeln!(
            out,
            " => {}  packets {packets} bytes {bytes}",
            format_call(actions, e.call),
        );
    }
    let _ = write!(
        out,
        "default: {}{}",
        format_call(actions, t.default_action()),
        if schema.const_default { " (const)" } else { "" }
    );
    out
}

fn show_tables(tables: &[Table]) -> String {
    let lines: Vec<String> = tables
        .iter()
        .map(|t| {
            let keys: Vec<String> = t
                .schema()
                .keys
                .iter()
                .map(|k| format!("{}({}, {})", k.name, k.kind, k.width))
                .collect();
            format!("{} [{}]", t.name(), keys.join(", "))
        })
        .collect();
    lines.join("\n")
}

fn show_actions(actions: &[ActionSchema]) -> String {
    let lines: Vec<String> = actions
        .iter()
        .map(|a| {
            let params: Vec<String> = a
                .params
                .iter()
                .map(|p| format!("{}({})", p.name, p.width))
                .collect();
            format!("{} [{}]", a.name, params.join(", "))
        })
        .collect();
    lines.join("\n")
}

/// Parses and applies every line of an entries file. On any error nothing
/// is changed and every bad line is reported as `file:line: reason`.
/// Returns the number of commands applied.
pub fn load_entries(
    text: &str,
    file_name: &str,
    set: &mut TableSet,
) -> Result<usize, Vec<EntriesError>> {
    // Work on a copy so that a bad line anywhere leaves `set` untouched;
    // later lines still run against the copy so all errors are reported.
    let mut staged = set.clone();
    let mut errors = Vec::new();
    let mut applied = 0;
    // Files the entries name are relative to the entries file.
    let base = std::path::Path::new(file_name).parent();
    for (i, line) in text.lines().enumerate() {
        let result = match strip_comment(line).split_whitespace().next() {
            None => continue,
            Some(verb) if COMMANDS.contains(&verb) && !ENTRIES_COMMANDS.contains(&verb) => {
                Err(CommandError::NotInEntriesFile {
                    command: verb.to_owned(),
                })
            }
            Some(_) => parse_command_in(line, &staged, base)
                .and_then(|cmd| cmd.map(|cmd| apply(&mut staged, &cmd)).transpose()),
        };
        match result {
            Ok(_) => applied += 1,
            Err(error) => errors.push(EntriesError {
                file: file_name.to_owned(),
                line: i + 1,
                error,
            }),
        }
    }
    if errors.is_empty() {
        *set = staged;
        Ok(applied)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
