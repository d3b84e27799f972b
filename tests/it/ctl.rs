//! `sluice ctl` against a fake switch: a thread that speaks the control protocol on a Unix
//! socket and answers from a script, so no real switch is needed.

use crate::support::*;
use sluice_runtime::control::{self, Reply, Request};
use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

const SECRET: &str = "0x5ec2e75ec2e75ec2e75ec2e75ec2e700";

/// A fake switch listening on DIR/switch.sock; `commands` records what it was sent.
struct FakeSwitch {
    socket: PathBuf,
    commands: Arc<Mutex<Vec<String>>>,
}

impl FakeSwitch {
    fn start(dir: &Path) -> FakeSwitch {
        let socket = dir.join("switch.sock");
        let listener = UnixListener::bind(&socket).expect("bind the fake switch's socket");
        let commands = Arc::new(Mutex::new(Vec::new()));
        let log = commands.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let log = log.clone();
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        FakeSwitch { socket, commands }
    }

    fn sock(&self) -> &str {
        self.socket.to_str().unwrap()
    }

    fn received(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }
}

fn serve(stream: UnixStream, log: &Mutex<Vec<String>>) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let Ok(Some(hello)) = control::read_line_limited(&mut r, control::MAX_LINE) else {
        return;
    };
    if let Err(e) = control::check_client_hello(&hello) {
        let _ = writeln!(
            w,
            "{}",
            serde_json::json!({"ok": false, "error": e.to_string()})
        );
        return;
    }
    let tables = ["dnat".to_string(), "acl".to_string()];
    let actions = ["to_vm".to_string(), "drop".to_string()];
    let hello = control::server_hello(
        "fake.sluice",
        &tables,
        &actions,
        &sluice_runtime::command::COMMANDS,
    );
    if w.write_all(hello.as_bytes()).is_err() {
        return;
    }
    while let Ok(Some(line)) = control::read_line_limited(&mut r, control::MAX_LINE) {
        let reply = match control::parse_request(&line) {
            Request::Command { id, command } if command == "hangup" => {
                // Answers, then closes the connection, as a switch does to an idle client.
                let _ = w.write_all(
                    Reply {
                        id,
                        ok: true,
                        text: "bye".into(),
                    }
                    .to_line()
                    .as_bytes(),
                );
                return;
            }
            Request::Command { id, command } => {
                log.lock().unwrap().push(command.clone());
                let (ok, text) = answer(&command);
                Reply { id, ok, text }
            }
            Request::Malformed { id, error } => Reply {
                id,
                ok: false,
                text: error,
            },
        };
        if w.write_all(reply.to_line().as_bytes()).is_err() {
            return;
        }
    }
}

/// The fake switch's answer to a command: (ok, output or error).
fn answer(command: &str) -> (bool, String) {
    let words: Vec<&str> = command.split_whitespace().collect();
    match words.as_slice() {
        ["show_tables"] => (true, "dnat [dst(exact, 32)]\nacl [src(ternary, 32)]".into()),
        ["table_add", "dnat", ..] => (true, "Entry has been added with handle 0".into()),
        ["table_num_entries", "dnat"] => (true, "1".into()),
        ["table_delete", t, _] if *t != "dnat" => (false, format!("unknown table '{t}'")),
        ["secret_set", "key", _] => (true, "secret key set".into()),
        // A careless switch that repeats the value: the client must not print it.
        ["secret_set", name, value] => (false, format!("secret {name}: bad value {value}")),
        [verb, ..] => (false, format!("unknown command '{verb}'")),
        [] => (false, "empty command".into()),
    }
}

fn ctl(switch: &FakeSwitch, args: &[&str]) -> Output {
    let mut all = vec!["ctl", "--control", switch.sock()];
    all.extend_from_slice(args);
    run(&all)
}

/// Runs `sluice ctl ARGS` with `input` on a piped (not a terminal) standard input.
fn ctl_with_stdin(args: &[&str], input: &str, history: Option<&Path>) -> Output {
    let mut cmd = sluice();
    cmd.arg("ctl").args(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(h) = history {
        cmd.env("SLUICE_HISTORY", h);
    }
    let mut child = cmd.spawn().expect("sluice runs");
    // The client may exit before reading its input (no switch to talk to): a broken pipe
    // here is not the test's concern.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn ctl_one_command_prints_the_switch_output() {
    let switch = FakeSwitch::start(&temp_dir("ctl-one"));
    let out = ctl(&switch, &["show_tables"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "dnat [dst(exact, 32)]\nacl [src(ternary, 32)]\n"
    );
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    let out = ctl(
        &switch,
        &["table_add", "dnat", "to_vm", "10.0.0.1", "=>", "1"],
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "Entry has been added with handle 0\n");
    assert_eq!(
        switch.received(),
        ["show_tables", "table_add dnat to_vm 10.0.0.1 => 1"]
    );
}

#[test]
fn ctl_error_reply_exits_1() {
    let switch = FakeSwitch::start(&temp_dir("ctl-err"));
    let out = ctl(&switch, &["table_delete", "nope", "3"]);
    assert_eq!(out.status, 1);
    assert_eq!(out.stderr, "error: unknown table 'nope'\n");
    assert!(out.stdout.is_empty());
}

#[test]
fn ctl_file_stops_at_the_first_bad_line() {
    let dir = temp_dir("ctl-file");
    let switch = FakeSwitch::start(&dir);
    let file = dir.join("cmds.txt");
    std::fs::write(
        &file,
        "table_add dnat to_vm 10.0.0.1 => 1   # the web server\n\
         \n\
         table_delete nope 1\n\
         # never reached:\n\
         show_tables\n",
    )
    .unwrap();
    let out = ctl(&switch, &["-f", file.to_str().unwrap()]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert_eq!(out.stdout, "Entry has been added with handle 0\n");
    assert_eq!(
        out.stderr,
        format!("{}:3: error: unknown table 'nope'\n", file.display())
    );
    // The comment is not sent, and nothing after the bad line is.
    assert_eq!(
        switch.received(),
        ["table_add dnat to_vm 10.0.0.1 => 1", "table_delete nope 1"]
    );
}

#[test]
fn ctl_scripts_must_be_text_and_are_read_as_they_run() {
    let dir = temp_dir("ctl-text");
    let switch = FakeSwitch::start(&dir);
    // Refused at its first byte: it used to be read whole, growing without end.
    let out = ctl(&switch, &["-f", "/dev/zero"]);
    assert_eq!(out.status, 2);
    assert_eq!(
        out.stderr,
        "error: /dev/zero:1:1: not a text file: a NUL byte\n"
    );
    assert!(switch.received().is_empty());
    // A byte-order mark and CRLF line ends, as Windows editors write them, are text; a byte
    // that is not UTF-8 is named by line and column, and ends the script there.
    let file = dir.join("win.txt");
    std::fs::write(
        &file,
        b"\xef\xbb\xbfshow_tables\r\ntable_num_entries dnat\r\nshow_tables \xe9\r\nshow_tables\r\n",
    )
    .unwrap();
    let out = ctl(&switch, &["-f", file.to_str().unwrap()]);
    assert_eq!(out.status, 2);
    assert_eq!(
        out.stderr,
        format!(
            "error: {}:3:13: not a text file: byte 0xe9, which is not UTF-8\n",
            file.display()
        )
    );
    assert_eq!(switch.received(), ["show_tables", "table_num_entries dnat"]);
}

#[test]
fn ctl_file_dash_and_piped_stdin_read_standard_input() {
    let switch = FakeSwitch::start(&temp_dir("ctl-stdin"));
    let input =
        "show_tables\n# comment\ntable_add dnat to_vm 10.0.0.2 => 2\ntable_num_entries dnat\n";
    let want =
        "dnat [dst(exact, 32)]\nacl [src(ternary, 32)]\nEntry has been added with handle 0\n1\n";
    let piped = ctl_with_stdin(&["--control", switch.sock()], input, None);
    assert_eq!(piped.status, 0, "{}", piped.stderr);
    assert_eq!(piped.stdout, want);
    let dash = ctl_with_stdin(&["--control", switch.sock(), "-f", "-"], input, None);
    assert_eq!(dash.status, 0, "{}", dash.stderr);
    assert_eq!(dash.stdout, want);
    assert_eq!(switch.received().len(), 6);

    let bad = ctl_with_stdin(
        &["--control", switch.sock()],
        "show_tables\nfrobnicate\nshow_tables\n",
        None,
    );
    assert_eq!(bad.status, 1);
    assert_eq!(
        bad.stderr,
        "<stdin>:2: error: unknown command 'frobnicate'\n"
    );
}

#[test]
fn ctl_connects_again_after_the_switch_closed_the_connection() {
    let switch = FakeSwitch::start(&temp_dir("ctl-again"));
    let mut child = sluice()
        .args(["ctl", "--control", switch.sock()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hangup\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stdin.write_all(b"table_num_entries dnat\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "bye\n1\n");
    assert!(stderr.contains("connecting again"), "{stderr}");
}

#[test]
fn ctl_missing_socket_exits_2_and_names_it() {
    let dir = temp_dir("ctl-missing");
    let sock = dir.join("no-switch-here.sock");
    let out = run(&["ctl", "--control", sock.to_str().unwrap(), "show_tables"]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains(sock.to_str().unwrap()),
        "{}",
        out.stderr
    );
    let out = ctl_with_stdin(
        &["--control", sock.to_str().unwrap()],
        "show_tables\n",
        None,
    );
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("no-switch-here.sock"), "{}", out.stderr);
}

#[test]
fn ctl_never_shows_or_keeps_a_secret() {
    let dir = temp_dir("ctl-secret");
    let switch = FakeSwitch::start(&dir);
    let history = dir.join("history");
    let bare = SECRET.trim_start_matches("0x");
    let check = |out: &Output| {
        for text in [&out.stdout, &out.stderr] {
            assert!(!text.contains(bare), "secret shown: {text}");
        }
    };

    let mut one = sluice();
    one.env("SLUICE_HISTORY", &history).args([
        "ctl",
        "--control",
        switch.sock(),
        "secret_set",
        "key",
        SECRET,
    ]);
    let out = one.output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "secret key set\n");
    for text in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(text).contains(bare));
    }

    // A switch that repeats the value in its error: the client redacts it.
    let out = ctl(&switch, &["secret_set", "other", SECRET]);
    assert_eq!(out.status, 1);
    assert_eq!(out.stderr, "error: secret other: bad value <redacted>\n");
    check(&out);

    let file = dir.join("secrets.txt");
    std::fs::write(
        &file,
        format!("secret_set key {SECRET}\nsecret_set other {SECRET}\n"),
    )
    .unwrap();
    let out = ctl(&switch, &["-f", file.to_str().unwrap()]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains("secrets.txt:2: error: "),
        "{}",
        out.stderr
    );
    check(&out);

    let out = ctl_with_stdin(
        &["--control", switch.sock()],
        &format!("show_tables\nsecret_set key {SECRET}\nsecret_set other {SECRET}\n"),
        Some(&history),
    );
    assert_eq!(out.status, 1);
    check(&out);

    // The switch was sent the value as typed.
    assert!(switch
        .received()
        .contains(&format!("secret_set key {SECRET}")));
    if let Ok(h) = std::fs::read_to_string(&history) {
        assert!(!h.contains(bare), "secret in the history: {h}");
        assert!(!h.contains("secret_set"), "{h}");
    }
}

/// The interactive shell, on a terminal made by `script(1)` (skipped where it is missing):
/// the secret is masked on screen and kept out of the history, other lines are kept.
#[test]
fn ctl_shell_masks_secrets_and_keeps_them_out_of_the_history() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no script(1)");
        return;
    }
    let dir = temp_dir("ctl-shell");
    let switch = FakeSwitch::start(&dir);
    let history = dir.join("history");
    let bin = env!("CARGO_BIN_EXE_sluice");
    let cmd = format!("{bin} ctl --control {}", switch.sock());
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("SLUICE_HISTORY", &history)
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let screen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = screen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    // Waits for `marker` then a prompt, past byte `from` of the screen: the shell is then
    // reading keys again (a terminal echoes what is typed while a command runs).
    let wait_for = |from: usize, marker: &str| -> usize {
        let start = Instant::now();
        loop {
            let text = screen.lock().unwrap().clone();
            if let Some(m) = text.get(from..).and_then(|t| t.find(marker)) {
                if text[from + m..].contains("sluice> ") {
                    std::thread::sleep(Duration::from_millis(50));
                    return text.len();
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "waited for {marker}: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    let mut at = wait_for(0, "Connected to fake.sluice");
    let secret_line = format!("secret_set key {SECRET}\r");
    for (keys, marker) in [
        ("show_tables\r", "acl [src(ternary, 32)]"),
        (secret_line.as_str(), "secret key set"),
        ("table_num_entries dnat\r", "\n1"),
    ] {
        stdin.write_all(keys.as_bytes()).unwrap();
        stdin.flush().unwrap();
        at = wait_for(at, marker);
    }
    stdin.write_all(b"quit\r").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let screen = screen.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "{screen}");
    // The name too: a key may be typed where it goes.
    assert!(screen.contains("secret_set *** ****"), "{screen}");
    assert!(!screen.contains(&SECRET[4..]), "secret echoed: {screen}");
    assert_eq!(
        switch.received(),
        [
            "show_tables".to_string(),
            format!("secret_set key {SECRET}"),
            "table_num_entries dnat".to_string()
        ]
    );
    let h = std::fs::read_to_string(&history).expect("history saved");
    assert!(
        h.contains("show_tables") && h.contains("table_num_entries dnat"),
        "{h}"
    );
    assert!(
        !h.contains("secret_set") && !h.contains(&SECRET[4..]),
        "{h}"
    );
}
