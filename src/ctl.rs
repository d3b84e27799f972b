//! `sluice ctl`: the control-plane client of a running switch.
//!
//! Three modes, as in BMv2's `simple_switch_CLI`: one command from the command line, the
//! commands of a file (`-f FILE`, `-f -` for standard input), or an interactive shell with
//! history and completion. When standard input is not a terminal the shell reads it like
//! `-f -`, so that scripts can pipe commands in. docs/control-protocol.md describes what goes
//! over the socket.
//!
//! A `secret_set` line is sent to the switch as typed, but its value is never printed: the
//! shell masks it while it is typed, keeps the line out of its history, and any reply that
//! would repeat it is redacted.

use crate::out::{errln, out, outln, OutputError};
use anyhow::Context;
use std::borrow::Cow;
use std::io::{BufRead, IsTerminal};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rustyline::completion::Completer;
use rustyline::config::{ColorMode, CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{Editor, Helper};
use sluice_runtime::command::COMMANDS;
use sluice_runtime::control::{self, Client};

#[derive(clap::Args)]
#[command(after_help = "\
With no COMMAND and no -f, starts an interactive shell (prompt `sluice> `, history in \
$SLUICE_HISTORY or ~/.sluice_history, Tab completes commands, tables and actions); when \
standard input is not a terminal, reads commands from it as `-f -` does.

Exit status: 0 when every command succeeded; 1 when the switch refused a command (a file \
stops at that line; the commands before it stay applied); 2 when the switch cannot be \
reached or the connection is lost.")]
pub struct CtlArgs {
    /// The switch's control socket.
    #[arg(long, default_value = "sluice.sock")]
    control: PathBuf,
    /// Run the commands of a file, one per line (`-` for standard input); stop at the first
    /// that fails.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Write a fleet's etcd store instead of one switch: its endpoints, comma-separated
    /// (docs/fleet.md). The commands (one, or a file's, as one transaction) are checked
    /// against --program and the store before anything is written.
    #[arg(long, value_name = "ENDPOINTS", requires_all = ["prefix", "program"])]
    etcd: Option<String>,
    /// The fleet's prefix in the store, for example /sluice/prod.
    #[arg(long, value_name = "PATH", requires = "etcd")]
    prefix: Option<String>,
    /// The program the fleet's entries are for (checked against the group's fingerprint).
    #[arg(long, value_name = "PATH", requires = "etcd")]
    program: Option<PathBuf>,
    /// Write the entries of this group (until a `[group NAME]` or `[switch ID]` line).
    #[arg(
        long,
        value_name = "NAME",
        requires = "etcd",
        conflicts_with = "switch"
    )]
    group: Option<String>,
    /// Write the entries of this switch alone.
    #[arg(long, value_name = "ID", requires = "etcd")]
    switch: Option<String>,
    /// A command and its arguments, in simple_switch_CLI syntax.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `ctl --etcd`: one transaction on the fleet's store.
fn fleet_write(args: &CtlArgs, color: bool) -> anyhow::Result<ExitCode> {
    use crate::fleet::{check_name, Layout, Scope, Writer};
    let (Some(endpoints), Some(prefix), Some(program)) = (&args.etcd, &args.prefix, &args.program)
    else {
        anyhow::bail!("--etcd needs --prefix and --program");
    };
    let scope = match (&args.group, &args.switch) {
        (Some(g), _) => {
            check_name("--group", g)?;
            Some(Scope::Group(g.clone()))
        }
        (None, Some(s)) => {
            check_name("--switch", s)?;
            Some(Scope::Switch(s.clone()))
        }
        (None, None) => None,
    };
    let (lines, source): (Vec<(usize, String)>, String) = match &args.file {
        Some(f) => {
            let text = if f.as_os_str() == "-" {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                    .context("cannot read standard input")?;
                t
            } else {
                crate::input::read_text(f, "script")?
            };
            (
                text.lines()
                    .enumerate()
                    .map(|(i, l)| (i + 1, l.to_string()))
                    .collect(),
                f.display().to_string(),
            )
        }
        None if !args.command.is_empty() => {
            (vec![(1, args.command.join(" "))], "command".to_string())
        }
        None => anyhow::bail!("--etcd takes a command or -f FILE"),
    };
    let Some(compiled) = crate::load_program(program, color)? else {
        return Ok(ExitCode::FAILURE);
    };
    let tables = sluice_compiler::table_set(&compiled.ir)?;
    let writer = Writer {
        endpoints: endpoints.split(',').map(str::to_string).collect(),
        layout: Layout::new(prefix)?,
        fingerprint: tables.fingerprint().to_string(),
        tables,
    };
    match writer.run(&lines, scope, &source)? {
        Ok(text) => {
            let _ = outln!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(refused) => {
            errln!("error: {refused}");
            Ok(ExitCode::FAILURE)
        }
    }
}

const PROMPT: &str = "sluice> ";

/// Commands the client answers itself (the others' syntax is `sluice_runtime::command`'s).
const LOCAL_COMMANDS: [&str; 3] = ["help", "quit", "exit"];

/// Commands whose third word is an action name.
const ACTION_COMMANDS: [&str; 3] = ["table_add", "table_set_default", "table_modify"];

pub fn ctl(args: &CtlArgs, color: bool) -> anyhow::Result<ExitCode> {
    if args.file.is_some() && !args.command.is_empty() {
        anyhow::bail!("give either -f FILE or a command, not both");
    }
    if args.etcd.is_some() {
        return fleet_write(args, color);
    }
    let mut session = Session::new(&args.control);
    if let Some(file) = &args.file {
        if file.as_os_str() == "-" {
            return Ok(with_connection(&mut session, |s| {
                script(s, std::io::stdin().lock(), "<stdin>")
            }));
        }
        // Opened before connecting, so that a missing script is its own error.
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        let name = file.display().to_string();
        return Ok(with_connection(&mut session, |s| {
            script(s, std::io::BufReader::new(f), &name)
        }));
    }
    if !args.command.is_empty() {
        if std::io::stdin().is_terminal() {
            session.prompt = KeyPrompt::Ask;
        }
        return Ok(one_shot(&mut session, &args.command.join(" ")));
    }
    if std::io::stdin().is_terminal() {
        session.prompt = KeyPrompt::Ask;
        Ok(with_connection(&mut session, shell))
    } else {
        Ok(with_connection(&mut session, |s| {
            script(s, std::io::stdin().lock(), "<stdin>")
        }))
    }
}

/// Connects (exit 2 if that fails), then runs `f`.
fn with_connection(session: &mut Session, f: impl FnOnce(&mut Session) -> ExitCode) -> ExitCode {
    match session.connect() {
        Ok(()) => f(session),
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// What became of one command.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The switch (or the client, for `help`) ran it; its output.
    Done(String),
    /// The switch refused it; the message.
    Refused(String),
}

/// The connection to the switch, opened when first needed and again after it was lost.
struct Session {
    path: PathBuf,
    client: Option<Client<UnixStream>>,
    /// Another handle on the client's socket, to notice that the switch closed it (it does
    /// so to a connection left idle for long) before a command is sent on it.
    probe: Option<UnixStream>,
    /// How many times it connected.
    connections: u64,
    /// Whether a secret left off a `secret_set` line may be asked for.
    prompt: KeyPrompt,
}

impl Session {
    fn new(path: &Path) -> Self {
        Session {
            path: path.to_path_buf(),
            client: None,
            probe: None,
            connections: 0,
            prompt: KeyPrompt::Never,
        }
    }

    fn connect(&mut self) -> Result<(), String> {
        if self.client.is_some() {
            return Ok(());
        }
        let cannot = |e: std::io::Error| {
            format!(
                "cannot connect to {}: {e} (is `sluice serve` running?)",
                self.path.display()
            )
        };
        let stream = UnixStream::connect(&self.path).map_err(cannot)?;
        let writer = stream.try_clone().map_err(cannot)?;
        self.probe = stream.try_clone().ok();
        self.client = Some(Client::handshake(stream, writer).map_err(|e| e.to_string())?);
        self.connections += 1;
        Ok(())
    }

    fn disconnect(&mut self) {
        self.client = None;
        self.probe = None;
    }

    /// Whether the connection is no longer usable: the switch closed it (end of input waits
    /// on the socket) or sent something unasked, between two commands.
    fn closed_by_switch(&self) -> bool {
        let Some(mut probe) = self.probe.as_ref() else {
            return false;
        };
        if probe.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let alive = matches!(
            std::io::Read::read(&mut probe, &mut byte),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        let _ = probe.set_nonblocking(false);
        !alive
    }

    /// Names from the server's hello, or `fallback` when not connected or the hello has none.
    fn names(&self, key: &str, fallback: &[&str]) -> Vec<String> {
        let names = self
            .client
            .as_ref()
            .map(|c| c.names(key))
            .unwrap_or_default();
        if names.is_empty() {
            fallback.iter().map(|s| s.to_string()).collect()
        } else {
            names
        }
    }

    /// Runs one command (comment already stripped, not blank). Err when the switch cannot be
    /// reached; the connection is then dropped, to be opened again by the next command.
    fn run(&mut self, command: &str) -> Result<Outcome, String> {
        let mut words = command.split_whitespace();
        if words.next() == Some("help") {
            return Ok(self.help(words.next()));
        }
        let command = match complete_secret(command, self.prompt) {
            Ok(c) => c,
            Err(e) => return Ok(Outcome::Refused(e)),
        };
        let command = command.as_str();
        // The server closes the connection on an over-long request: refuse it here instead.
        let len = control::request_line(u64::MAX, command).len() - 1;
        if len > control::MAX_LINE {
            return Ok(Outcome::Refused(format!(
                "command too long ({len} bytes as a request; the limit is {})",
                control::MAX_LINE
            )));
        }
        if self.client.is_some() && self.closed_by_switch() {
            self.disconnect();
            errln!("note: the switch had closed the connection; connecting again");
        }
        self.connect()?;
        let client = self.client.as_mut().expect("connected");
        match client.call(command) {
            Ok(reply) => {
                let text = redact(&reply.text, command);
                Ok(if reply.ok {
                    Outcome::Done(text)
                } else {
                    Outcome::Refused(text)
                })
            }
            Err(e) => {
                self.disconnect();
                Err(e.to_string())
            }
        }
    }

    fn help(&self, command: Option<&str>) -> Outcome {
        let mut commands = self.names("commands", &COMMANDS);
        // Before the switch has said hello, list what `sluice serve` answers as well.
        for c in sluice_runtime::command::SWITCH_COMMANDS {
            if !commands.iter().any(|x| x == c) {
                commands.push(c.to_string());
            }
        }
        if let Some(name) = command {
            return match usage(name) {
                Some(u) => Outcome::Done(u.to_string()),
                None if LOCAL_COMMANDS.contains(&name) => Outcome::Done(local_usage(name)),
                None if commands.iter().any(|c| c == name) => Outcome::Done(name.to_string()),
                None => Outcome::Refused(format!(
                    "unknown command '{}'; valid commands: {}",
                    sluice_defs::names::echo(name),
                    commands.join(", ")
                )),
            };
        }
        let mut out = String::from("Commands:\n");
        for c in &commands {
            out.push_str(&format!("  {}\n", usage(c).unwrap_or(c)));
        }
        out.push_str("Shell:\n");
        for c in ["help", "quit"] {
            out.push_str(&format!("  {}\n", local_usage(c)));
        }
        out.push_str("Values, keys and match kinds: see docs/cli.md.");
        Outcome::Done(out)
    }
}

use sluice_runtime::command::usage;

fn local_usage(command: &str) -> String {
    match command {
        "help" => "help [COMMAND]      list the commands, or show one's usage".into(),
        _ => "quit, exit, Ctrl-D  leave the shell".into(),
    }
}

use sluice_runtime::command::strip_comment;

/// Whether a line sets a secret, in any case: such a line is never kept in the history,
/// shown while typed, or repeated.
use sluice_runtime::command::is_secret_line;

/// The reply text with any key material from a secret line replaced, should the switch ever
/// repeat it (it does not: this is a second guard): every word after the command that is a
/// hex number of 8 digits or more, with or without `0x`, and each of its 8-digit runs (a
/// half, a word, in either case). The secret's name is left, so that "Secret NAME set"
/// reads as it should.
fn redact(text: &str, command: &str) -> String {
    if !is_secret_line(command) {
        return text.to_string();
    }
    let mut out = text.to_string();
    for word in command.split_whitespace().skip(1) {
        let bare = word
            .strip_prefix("0x")
            .or_else(|| word.strip_prefix("0X"))
            .unwrap_or(word);
        if bare.len() < 8 || !bare.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let mut pieces = vec![word.to_string(), bare.to_string()];
        pieces.extend(
            bare.as_bytes()
                .windows(8)
                .map(|w| String::from_utf8_lossy(w).into_owned()),
        );
        for p in pieces {
            for form in [p.clone(), p.to_ascii_lowercase(), p.to_ascii_uppercase()] {
                out = out.replace(&form, "<redacted>");
            }
        }
    }
    out
}

/// Prints a command's output; what to exit with if standard output is gone.
fn print_output(text: &str) -> Result<(), ExitCode> {
    if text.is_empty() {
        return Ok(());
    }
    let r = if text.ends_with('\n') {
        out!("{text}")
    } else {
        outln!("{text}")
    };
    r.map_err(|e| match e {
        // The reader went away (`| head`): stop quietly.
        OutputError::Closed => ExitCode::SUCCESS,
        e => {
            errln!("error: {e}");
            ExitCode::from(2)
        }
    })
}

fn one_shot(session: &mut Session, command: &str) -> ExitCode {
    match session.run(command) {
        Ok(Outcome::Done(out)) => match print_output(&out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Ok(Outcome::Refused(e)) => {
            errln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the lines of a file or of standard input, stopping at the first failure.
fn script(session: &mut Session, input: impl BufRead, name: &str) -> ExitCode {
    // A line may hold a request of at most MAX_LINE bytes and a comment; a longer one is not
    // read into memory.
    let mut lines = crate::input::Lines::new(input, name, 2 * control::MAX_LINE);
    loop {
        let line = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                errln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let n = lines.number;
        let command = strip_comment(&line).trim();
        if command.is_empty() {
            continue;
        }
        if command == "quit" || command == "exit" {
            break;
        }
        match session.run(command) {
            Ok(Outcome::Done(out)) => {
                if let Err(code) = print_output(&out) {
                    return code;
                }
            }
            Ok(Outcome::Refused(e)) => {
                errln!("{name}:{n}: error: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                errln!("{name}:{n}: error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}

/// `$SLUICE_HISTORY`, else `~/.sluice_history`.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_HISTORY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".sluice_history"))
}

/// The interactive shell.
fn shell(session: &mut Session) -> ExitCode {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        // Masking a secret while it is typed is done by the highlighter, which rustyline
        // only calls when colors are on.
        .color_mode(ColorMode::Forced)
        .build();
    let mut rl: Editor<ShellHelper, FileHistory> = match Editor::with_config(config) {
        Ok(rl) => rl,
        Err(e) => {
            errln!("error: cannot start the shell: {e}");
            return ExitCode::from(2);
        }
    };
    rl.set_helper(Some(ShellHelper::new(session)));
    let history = history_path();
    if let Some(p) = &history {
        let _ = rl.load_history(p);
    }
    let program = session
        .client
        .as_ref()
        .and_then(|c| c.hello.get("program").and_then(|p| p.as_str()))
        .unwrap_or("a switch")
        .to_string();
    if let Err(code) = print_output(&format!(
        "Connected to {program} on {}; 'help' lists the commands.",
        session.path.display()
    )) {
        return code;
    }
    loop {
        let line = match rl.readline(PROMPT) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                errln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let command = strip_comment(&line).trim();
        if command.is_empty() {
            continue;
        }
        if !is_secret_line(&line) {
            let _ = rl.add_history_entry(line.as_str());
            if let Some(p) = &history {
                let _ = rl.append_history(p);
            }
        }
        if command == "quit" || command == "exit" {
            break;
        }
        let connections = session.connections;
        match session.run(command) {
            Ok(Outcome::Done(out)) => {
                if let Err(code) = print_output(&out) {
                    return code;
                }
            }
            Ok(Outcome::Refused(e)) => errln!("error: {e}"),
            Err(e) => errln!("error: {e}"),
        }
        if session.connections != connections {
            // Reconnected: the switch may run another program now.
            rl.set_helper(Some(ShellHelper::new(session)));
        }
    }
    ExitCode::SUCCESS
}

/// Completion of command, table and action names, and masking of secret values.
struct ShellHelper {
    commands: Vec<String>,
    tables: Vec<String>,
    actions: Vec<String>,
}

impl ShellHelper {
    fn new(session: &Session) -> Self {
        let mut commands = session.names("commands", &COMMANDS);
        commands.extend(LOCAL_COMMANDS.iter().map(|s| s.to_string()));
        ShellHelper {
            commands,
            tables: session.names("tables", &[]),
            actions: session.names("actions", &[]),
        }
    }

    /// The start of the word under the cursor and the names it may complete to.
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        let previous: Vec<&str> = before[..start].split_whitespace().collect();
        let pool: &[String] = match previous.as_slice() {
            [] => &self.commands,
            ["help"] => &self.commands,
            [command] if takes_table(command) => &self.tables,
            [command, _] if ACTION_COMMANDS.contains(command) => &self.actions,
            _ => return (pos, Vec::new()),
        };
        let mut found: Vec<String> = pool
            .iter()
            .filter(|n| n.starts_with(word))
            .cloned()
            .collect();
        found.sort();
        found.dedup();
        if let [only] = found.as_mut_slice() {
            only.push(' ');
        }
        (start, found)
    }
}

/// Whether a command's second word is a table name.
fn takes_table(command: &str) -> bool {
    command.starts_with("table_") || command.starts_with("counter_")
}

/// The line as shown while it is typed: past the command of a secret line (in any case),
/// every character is a `*`, whichever word the key is typed as.
fn mask_secret(line: &str) -> Option<String> {
    if !is_secret_line(line) {
        return None;
    }
    let mut out = String::with_capacity(line.len());
    let mut word = 0;
    let mut in_word = false;
    for c in line.chars() {
        if c.is_whitespace() {
            in_word = false;
            out.push(c);
            continue;
        }
        if !in_word {
            in_word = true;
            word += 1;
        }
        out.push(if word > 1 { '*' } else { c });
    }
    Some(out)
}

/// Where a `secret_set` line's key comes from when it is not on the line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyPrompt {
    /// The user is at a terminal: ask for the key without echo.
    Ask,
    /// Standard input is a script: the key must come from `--secret-file`.
    Never,
}

/// A `secret_set NAME` line completed with its key: read from `--secret-file PATH` (`-` for
/// standard input) when the line says so, or asked for without echo when the line leaves it
/// out and a user is at the terminal. Other lines come back as they are. Errors never
/// repeat a word of the line.
fn complete_secret(line: &str, prompt: KeyPrompt) -> Result<String, String> {
    if !is_secret_line(line) {
        return Ok(line.to_string());
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    // In another case the switch refuses the line: nothing to complete.
    let exact = sluice_runtime::command::SPECS
        .iter()
        .any(|s| s.secret && Some(&s.name) == words.first());
    if !exact {
        return Ok(line.to_string());
    }
    let key = match words.as_slice() {
        [_, _, "--secret-file", path] => crate::input::read_secret_file(Path::new(path))?,
        [_, _] if prompt == KeyPrompt::Ask => {
            read_hidden("key (not echoed): ").map_err(|e| format!("cannot read the key: {e}"))?
        }
        [_, _] => {
            return Err(
                "secret_set: no key given; add --secret-file PATH (- for standard input), or \
                 type `secret_set NAME` in the shell to be asked for it"
                    .into(),
            )
        }
        _ => return Ok(line.to_string()),
    };
    Ok(format!("{} {} {}", words[0], words[1], key.trim()))
}

/// Reads a line from the terminal without echo. Echo is turned off before the prompt is
/// shown, so that a key typed (or pasted) as soon as the prompt appears is never echoed.
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    use std::io::{BufRead, Write};
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a descriptor we hold open.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: sets the attributes of the same descriptor from a valid termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let result = (|| {
        let mut w = &tty;
        w.write_all(prompt.as_bytes())?;
        w.flush()?;
        let mut line = String::new();
        std::io::BufReader::new(&tty).read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    })();
    // SAFETY: restores the attributes read above, on the same descriptor.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    result
}

impl Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Highlighter for ShellHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        match mask_secret(line) {
            Some(masked) => Cow::Owned(masked),
            None => Cow::Borrowed(line),
        }
    }

    fn highlight_char(&self, line: &str, _pos: usize, _kind: CmdKind) -> bool {
        // A full redraw through `highlight` for every key of a secret line, never the
        // shortcut that writes the typed character itself.
        is_secret_line(line)
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> ShellHelper {
        let mut commands: Vec<String> = COMMANDS.iter().map(|s| s.to_string()).collect();
        commands.extend(LOCAL_COMMANDS.iter().map(|s| s.to_string()));
        ShellHelper {
            commands,
            tables: vec!["dnat".into(), "snat".into(), "acl".into()],
            actions: vec!["to_vm".into(), "from_vm".into(), "drop".into()],
        }
    }

    fn complete(line: &str) -> (usize, Vec<String>) {
        helper().candidates(line, line.len())
    }

    #[test]
    fn completes_commands_then_tables_then_actions() {
        assert_eq!(
            complete("table_d"),
            (0, vec!["table_delete".into(), "table_dump".into()])
        );
        assert_eq!(complete("show_t"), (0, vec!["show_tables ".into()]));
        assert_eq!(complete("table_add d"), (10, vec!["dnat ".into()]));
        assert_eq!(
            complete("table_dump "),
            (11, {
                let mut t = vec!["acl".to_string(), "dnat".into(), "snat".into()];
                t.sort();
                t
            })
        );
        assert_eq!(complete("table_add dnat to"), (15, vec!["to_vm ".into()]));
        assert_eq!(
            complete("table_modify snat "),
            (18, vec!["drop".into(), "from_vm".into(), "to_vm".into()])
        );
        assert_eq!(complete("table_delete dnat d").1, Vec::<String>::new());
        assert_eq!(complete("show_tables x").1, Vec::<String>::new());
        assert_eq!(complete("help secret").1, vec!["secret_set ".to_string()]);
        assert_eq!(complete("qu").1, vec!["quit ".to_string()]);
        assert_eq!(complete("counter_read a").1, vec!["acl ".to_string()]);
    }

    #[test]
    fn secrets_are_masked_and_redacted() {
        let line = "secret_set key 0x000102030405060708090a0b0c0d0e0f";
        let masked = mask_secret(line).unwrap();
        // Everything past the command: the name too, since a key may be typed in its place.
        assert_eq!(masked, format!("secret_set *** {}", "*".repeat(34)));
        assert_eq!(
            mask_secret("SECRET_SET 0x0001 key").unwrap(),
            "SECRET_SET ****** ***"
        );
        assert_eq!(mask_secret("table_dump dnat"), None);
        assert_eq!(
            redact("bad value 0x000102030405060708090a0b0c0d0e0f", line),
            "bad value <redacted>"
        );
        assert_eq!(
            redact("bad value 000102030405060708090a0b0c0d0e0f", line),
            "bad value <redacted>"
        );
        assert_eq!(
            redact(
                "unknown secret '0x000102030405060708090a0b0c0d0e0f', or 0C0D0E0F",
                "secret_set 0x000102030405060708090a0b0c0d0e0f key"
            ),
            "unknown secret '<redacted>', or <redacted>"
        );
        assert_eq!(redact("Secret key set", line), "Secret key set");
        assert_eq!(redact("0x1 set", "table_dump 0x1"), "0x1 set");
    }
}
