//! Command tests: each key syntax, each error message, priorities, secrets
//! and all-or-nothing entries files.

use super::*;
use crate::table::{ParamSchema, ProgramSchema, SecretSpec, TableSchema};

fn field(name: &str, width: u32, kind: MatchKind) -> KeyField {
    KeyField {
        name: name.into(),
        width,
        kind,
    }
}

fn action(name: &str, params: &[(&str, u32)]) -> ActionSchema {
    ActionSchema {
        name: name.into(),
        params: params
            .iter()
            .map(|&(name, width)| ParamSchema {
                name: name.into(),
                width,
                nonzero: false,
            })
            .collect(),
    }
}

fn table(name: &str, keys: Vec<KeyField>, actions: Vec<u32>, size: u32) -> TableSchema {
    TableSchema {
        name: name.into(),
        keys,
        actions,
        default_action: ActionCall {
            action: 2,
            args: Box::new([]),
        },
        const_default: name == "acl",
        size,
    }
}

/// Actions: 0 set_port, 1 set_nat, 2 drop, 3 noop.
fn set() -> TableSet {
    set_with_secrets(vec!["key".into()])
}

fn set_with_secrets(secrets: Vec<String>) -> TableSet {
    use MatchKind::*;
    let actions = vec![
        action("set_port", &[("port", 9)]),
        action("set_nat", &[("ip", 32), ("port", 16)]),
        action("drop", &[]),
        action("noop", &[]),
    ];
    let tables = vec![
        table("fwd", vec![field("ipv4.dst", 32, Lpm)], vec![0, 2], 1024),
        table(
            "dnat",
            vec![
                field("ipv4.dst", 32, Exact),
                field("meta.l4_dst_port", 16, Range),
            ],
            vec![1, 2],
            2,
        ),
        table(
            "acl",
            vec![field("ipv4.src", 32, Ternary), field("proto", 8, Optional)],
            vec![2, 3],
            16,
        ),
        table("mac", vec![field("eth.dst", 48, Exact)], vec![0], 16),
    ];
    TableSet::new(ProgramSchema {
        actions,
        tables,
        secrets: secrets
            .into_iter()
            .map(|name| SecretSpec { name, bits: 128 })
            .collect(),
    })
}

fn run(set: &mut TableSet, line: &str) -> Result<String, CommandError> {
    let cmd = parse_command(line, set)?.expect("a command");
    apply(set, &cmd).map(|out| out.text)
}

fn err(line: &str) -> String {
    let mut set = set();
    match run(&mut set, line) {
        Ok(out) => panic!("{line}: expected an error, got {out}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn blank_and_comment_lines_are_nothing() {
    let set = set();
    for line in ["", "   ", "# a comment", "  \t# indented comment"] {
        assert_eq!(parse_command(line, &set), Ok(None), "{line:?}");
    }
    let cmd = parse_command("table_clear fwd # wipe it", &set).unwrap();
    assert_eq!(cmd, Some(Command::TableClear { table: 0 }));
}

#[test]
fn parses_each_key_syntax() {
    let set = set();
    let key = |line: &str| match parse_command(line, &set) {
        Ok(Some(Command::TableAdd { key, priority, .. })) => (key, priority),
        other => panic!("{line}: {other:?}"),
    };
    assert_eq!(
        key("table_add fwd set_port 10.1.0.0/16 => 3"),
        (
            vec![MatchValue::Lpm {
                value: 0x0a01_0000,
                prefix_len: 16
            }],
            None
        )
    );
    assert_eq!(
        key("table_add dnat set_nat 10.0.0.1 80->0x1bb => 192.168.0.1 8080 7"),
        (
            vec![
                MatchValue::Exact(0x0a00_0001),
                MatchValue::Range { lo: 80, hi: 443 }
            ],
            Some(7)
        )
    );
    assert_eq!(
        key("table_add acl drop 10.0.0.0&&&0xff000000 * => 1"),
        (
            vec![
                MatchValue::Ternary {
                    value: 0x0a00_0000,
                    mask: 0xff00_0000
                },
                MatchValue::Optional(None)
            ],
            Some(1)
        )
    );
    assert_eq!(
        key("table_add acl drop 0&&&0 6 => 2").0[1],
        MatchValue::Optional(Some(6))
    );
    assert_eq!(
        key("table_add mac set_port aa:bb:cc:dd:ee:ff => 1").0,
        vec![MatchValue::Exact(0xaabb_ccdd_eeff)]
    );
}

#[test]
fn table_add_reports_handles_like_bmv2() {
    let mut set = set();
    assert_eq!(
        run(&mut set, "table_add fwd set_port 10.0.0.0/8 => 1"),
        Ok("Entry has been added with handle 0".into())
    );
    let cmd = parse_command("table_add fwd drop 0.0.0.0/0 =>", &set);
    let out = apply(&mut set, &cmd.unwrap().unwrap()).unwrap();
    assert_eq!(out.handle, Some(EntryHandle(1)));
    assert_eq!(run(&mut set, "table_num_entries fwd"), Ok("2".into()));
    let t = &set.tables()[0];
    assert_eq!(
        t.lookup(&[0x0a01_0203]).map(|(_, c)| c.args.to_vec()),
        Some(vec![1])
    );
    assert_eq!(
        t.lookup(&[0x0b00_0000]).map(|(h, _)| h),
        Some(EntryHandle(1))
    );
}

#[test]
fn priority_is_the_extra_last_token() {
    let mut set = set();
    // dnat's action takes 2 args: a third token is the priority.
    run(
        &mut set,
        "table_add dnat set_nat 10.0.0.1 0->65535 => 1.1.1.1 1 9",
    )
    .unwrap();
    run(
        &mut set,
        "table_add dnat set_nat 10.0.0.1 80->80 => 2.2.2.2 2 3",
    )
    .unwrap();
    let dnat = &set.tables()[1];
    assert_eq!(dnat.entry(EntryHandle(0)).unwrap().priority, Some(9));
    let hit = dnat.lookup(&[0x0a00_0001, 80]).map(|(h, _)| h);
    assert_eq!(hit, Some(EntryHandle(1)));
    assert_eq!(
        err("table_add dnat set_nat 10.0.0.1 0->1 => 1.1.1.1 1"),
        "table dnat needs a priority after the 2 arguments of action set_nat \
         (the table has a ternary, range or optional key)"
    );
    assert_eq!(
        err("table_add fwd set_port 10.0.0.0/8 => 1 5"),
        "table fwd takes no priority (it has no ternary, range or optional key), \
         but got 2 values after '=>' for the 1 argument of action set_port"
    );
    assert_eq!(
        err("table_add acl drop 0&&&0 * => high"),
        "table acl: priority 'high' is not a decimal number below 2^32"
    );
}

#[test]
fn lookup_errors_name_what_is_wrong() {
    assert_eq!(
        err("table_ad fwd"),
        "unknown command 'table_ad'; valid commands: table_add, table_set_default, \
         table_modify, table_delete, table_reset_default, table_clear, \
         table_num_entries, table_dump, show_tables, show_actions, secret_set, key_derive"
    );
    assert_eq!(
        err("table_add fwdd set_port 1/8 => 1"),
        "unknown table 'fwdd' (did you mean 'fwd'?)"
    );
    assert_eq!(err("table_dump routes"), "unknown table 'routes'");
    assert_eq!(
        err("table_add fwd set_prt 1/8 => 1"),
        "unknown action 'set_prt' (did you mean 'set_port'?)"
    );
    assert_eq!(
        err("table_add fwd noop 1/8 =>"),
        "action noop is not an action of table fwd (its actions: set_port, drop)"
    );
    assert_eq!(
        err("table_add fwd set_port 1/8 1"),
        "table_add fwd: missing '=>' between the key and the action arguments"
    );
    assert_eq!(
        err("table_delete fwd"),
        "table_delete: wrong number of arguments; usage: table_delete TABLE HANDLE"
    );
    assert_eq!(
        err("show_tables now"),
        "show_tables: wrong number of arguments; usage: show_tables"
    );
    assert_eq!(
        err("table_delete fwd 4294967296"),
        "table fwd: handle '4294967296' is not a decimal number below 2^32"
    );
    assert_eq!(
        err("table_delete fwd one"),
        "table fwd: handle 'one' is not a decimal number below 2^32"
    );
}

#[test]
fn key_errors_name_the_key() {
    assert_eq!(
        err("table_add dnat set_nat 10.0.0.1 => 1.1.1.1 1 1"),
        "table dnat takes 2 keys (ipv4.dst: exact, meta.l4_dst_port: range), got 1"
    );
    assert_eq!(
        err("table_add fwd set_port => 1"),
        "table fwd takes 1 key (ipv4.dst: lpm), got 0"
    );
    assert_eq!(
        err("table_add dnat set_nat 0x1ffffffff 1->2 => 1 1 1"),
        "table dnat: key ipv4.dst (exact): value 0x1ffffffff does not fit in 32 bits"
    );
    assert_eq!(
        err("table_add dnat set_nat 10.0.0.1/8 1->2 => 1 1 1"),
        "table dnat: key ipv4.dst (exact): expected a single VALUE, got '10.0.0.1/8'"
    );
    assert_eq!(
        err("table_add dnat set_nat 1 80 => 1 1 1"),
        "table dnat: key meta.l4_dst_port (range): expected LO->HI, got '80'"
    );
    assert_eq!(
        err("table_add dnat set_nat 1 443->80 => 1 1 1"),
        "table dnat: key meta.l4_dst_port (range): range start 443 is above its end 80"
    );
    assert_eq!(
        err("table_add fwd set_port 10.0.0.0 => 1"),
        "table fwd: key ipv4.dst (lpm): expected VALUE/LEN, got '10.0.0.0'"
    );
    assert_eq!(
        err("table_add fwd set_port 10.0.0.0/x => 1"),
        "table fwd: key ipv4.dst (lpm): expected VALUE/LEN with a decimal LEN, got '10.0.0.0/x'"
    );
    assert_eq!(
        err("table_add fwd set_port 10.0.0.0/33 => 1"),
        "table fwd: key ipv4.dst (lpm): prefix length 33 is longer than the field's 32 bits"
    );
    assert_eq!(
        err("table_add acl drop 10.0.0.0 * => 1"),
        "table acl: key ipv4.src (ternary): expected VALUE&&&MASK, got '10.0.0.0'"
    );
    assert_eq!(
        err("table_add acl drop 1&&&1 256 => 1"),
        "table acl: key proto (optional): value 256 does not fit in 8 bits"
    );
}

#[test]
fn arg_errors_name_the_param() {
    assert_eq!(
        err("table_add dnat set_nat 1 1->2 => 1.1.1.1"),
        "action set_nat takes 2 arguments (ip: 32 bits, port: 16 bits), got 1"
    );
    assert_eq!(
        err("table_add dnat set_nat 1 1->2 =>"),
        "action set_nat takes 2 arguments (ip: 32 bits, port: 16 bits), got 0"
    );
    assert_eq!(
        err("table_set_default dnat set_nat 1"),
        "action set_nat takes 2 arguments (ip: 32 bits, port: 16 bits), got 1"
    );
    assert_eq!(
        err("table_set_default fwd drop 1"),
        "action drop takes 0 arguments (none), got 1"
    );
    assert_eq!(
        err("table_add dnat set_nat 1 1->2 => 1.1.1.1 70000 1"),
        "action set_nat: argument port: value 70000 does not fit in 16 bits"
    );
}

#[test]
fn table_errors_name_the_table() {
    let mut set = set();
    run(&mut set, "table_add dnat drop 1 1->2 => 1").unwrap();
    assert_eq!(
        run(&mut set, "table_add dnat drop 1 1->2 => 1")
            .unwrap_err()
            .to_string(),
        "table dnat: an entry with the same key already exists (handle 0)"
    );
    run(&mut set, "table_add dnat drop 1 1->2 => 2").unwrap();
    assert_eq!(
        run(&mut set, "table_add dnat drop 2 1->2 => 1")
            .unwrap_err()
            .to_string(),
        "table dnat: the table is full (2 entries, its `size`): declare a larger one in the program's table, for example `size 1024;` (1,024 when absent, at most 16,777,216)"
    );
    assert_eq!(
        run(&mut set, "table_delete dnat 7")
            .unwrap_err()
            .to_string(),
        "table dnat: no entry with handle 7"
    );
    assert_eq!(
        run(&mut set, "table_modify dnat drop 7")
            .unwrap_err()
            .to_string(),
        "table dnat: no entry with handle 7"
    );
    assert_eq!(
        run(&mut set, "table_set_default acl drop")
            .unwrap_err()
            .to_string(),
        "table acl: the default action is const and cannot be changed"
    );
}

#[test]
fn management_commands_print_what_they_did() {
    let mut set = set();
    run(
        &mut set,
        "table_add dnat set_nat 10.0.0.1 80->80 => 10.0.0.2 8080 1",
    )
    .unwrap();
    run(&mut set, "table_add dnat drop 10.0.0.1 0->65535 => 5").unwrap();
    set.tables()[1].count(0, EntryHandle(0), 100);
    assert_eq!(
        run(&mut set, "table_modify dnat set_nat 1 10.0.0.3 8081"),
        Ok("Entry 1 of table dnat now runs set_nat(ip=0x0a000003, port=0x1f91)".into())
    );
    assert_eq!(
        run(&mut set, "table_set_default dnat set_nat 1.2.3.4 5"),
        Ok("Default action of table dnat set to set_nat(ip=0x01020304, port=0x0005)".into())
    );
    assert_eq!(
        run(&mut set, "table_dump dnat").unwrap(),
        "table dnat (2 entries, size 2)\n\
         handle 0: ipv4.dst=0x0a000001 meta.l4_dst_port=0x0050->0x0050 priority 1 \
         => set_nat(ip=0x0a000002, port=0x1f90)  packets 1 bytes 100\n\
         handle 1: ipv4.dst=0x0a000001 meta.l4_dst_port=0x0000->0xffff priority 5 \
         => set_nat(ip=0x0a000003, port=0x1f91)  packets 0 bytes 0\n\
         default: set_nat(ip=0x01020304, port=0x0005)"
    );
    assert_eq!(
        run(&mut set, "table_reset_default dnat"),
        Ok("Default action of table dnat reset to drop()".into())
    );
    assert_eq!(
        run(&mut set, "table_delete dnat 0"),
        Ok("Entry 0 deleted from table dnat".into())
    );
    assert_eq!(
        run(&mut set, "table_clear dnat"),
        Ok("Table dnat cleared (1 entry removed)".into())
    );
    assert_eq!(
        run(&mut set, "table_dump acl").unwrap(),
        "table acl (0 entries, size 16)\ndefault: drop() (const)"
    );
    assert_eq!(
        run(&mut set, "show_tables").unwrap(),
        "fwd [ipv4.dst(lpm, 32)]\n\
         dnat [ipv4.dst(exact, 32), meta.l4_dst_port(range, 16)]\n\
         acl [ipv4.src(ternary, 32), proto(optional, 8)]\n\
         mac [eth.dst(exact, 48)]"
    );
    assert_eq!(
        run(&mut set, "show_actions").unwrap(),
        "set_port [port(9)]\nset_nat [ip(32), port(16)]\ndrop []\nnoop []"
    );
}

#[test]
fn dump_keys_replay_as_table_add_keys() {
    let mut set = set();
    run(&mut set, "table_add acl noop 10.0.0.0&&&0xff000000 * => 3").unwrap();
    run(&mut set, "table_add fwd set_port 10.1.2.3/16 => 3").unwrap();
    let dump = run(&mut set, "table_dump acl").unwrap();
    assert!(
        dump.contains("ipv4.src=0x0a000000&&&0xff000000 proto=* priority 3"),
        "{dump}"
    );
    // The lpm value was masked to its prefix, as BMv2 does.
    let dump = run(&mut set, "table_dump fwd").unwrap();
    assert!(dump.contains("ipv4.dst=0x0a010000/16"), "{dump}");
}

const SECRET: &str = "0x00112233445566778899AABBCCDDEEFF";

#[test]
fn secret_set_stores_without_showing_the_value() {
    let mut set = set();
    let cmd = parse_command(&format!("secret_set key {SECRET}"), &set)
        .unwrap()
        .unwrap();
    let expected: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    assert_eq!(
        cmd,
        Command::SecretSet {
            name: "key".into(),
            value: SecretArg::Sip(expected)
        }
    );
    for shown in [format!("{cmd:?}"), cmd.to_string()] {
        assert!(shown.contains("<redacted>"), "{shown}");
        for leak in ["112233", "[0, 17", "0x00"] {
            assert!(!shown.contains(leak), "{shown}");
        }
    }
    assert_eq!(apply(&mut set, &cmd).unwrap().text, "Secret key set");
    assert_eq!(set.secret(0), Some(&expected));
    assert!(!format!("{set:?}").contains("221"));
}

#[test]
fn secret_errors_never_echo_any_word_of_the_line() {
    let short = "0x00112233445566778899aabbccddee";
    let bad_value = "secret_set: the value must be 0x followed by exactly 32 hex digits";
    let usage =
        "secret_set: wrong number of arguments; usage: secret_set NAME 0x<32 or 64 hex digits>";
    let unknown = "secret_set: no secret of that name (declared secrets: key)";
    let case = "secret_set must be written in lower case (the line is not repeated: it may hold \
                a secret)";
    let cases = [
        (format!("secret_set key {short}"), bad_value),
        (format!("secret_set key {}", &SECRET[2..]), bad_value),
        (format!("secret_set key {SECRET} extra"), usage),
        (format!("secret_set {SECRET}"), usage),
        (format!("secret_set nope {SECRET}"), unknown),
        // The arguments swapped: the key stands where the name goes.
        (format!("secret_set {SECRET} key"), unknown),
        (format!("SECRET_SET key {SECRET}"), case),
        (format!("Secret_Set {SECRET} key"), case),
    ];
    for (line, want) in cases {
        let e = err(&line);
        assert_eq!(e, want, "{line}");
        // (The declared secrets are listed: `key` may appear as one of them.)
        for word in line.split_whitespace().skip(1).filter(|w| *w != "key") {
            assert!(!e.contains(word), "{line}: {e}");
        }
        for part in ["00112233", "ccddeeff", "CCDDEEFF", "ffeeddcc", "33221100"] {
            assert!(!e.to_lowercase().contains(part), "{line}: {e}");
            assert!(!format!("{e:?}").to_lowercase().contains(part), "{line}");
        }
    }
    let empty = set_with_secrets(vec![]);
    let e = parse_command(&format!("secret_set key {SECRET}"), &empty).unwrap_err();
    assert_eq!(
        e.to_string(),
        "secret_set: no secret of that name (the program declares no secrets)"
    );
    assert!(is_secret_line("  secret_set k v"));
    assert!(is_secret_line("\u{feff}SECRET_SET k v"));
    assert!(!is_secret_line("table_dump secret_set"));
}

#[test]
fn entries_file_loads_all_or_nothing() {
    let mut set = set();
    let good = "\
# routes
table_add fwd set_port 10.0.0.0/8 => 1
table_add fwd set_port 10.1.0.0/16 => 2   # more specific

table_add dnat set_nat 10.0.0.1 80->80 => 10.0.0.2 8080 1
table_modify fwd set_port 0 3
table_set_default fwd set_port 9
";
    assert_eq!(load_entries(good, "good.txt", &mut set), Ok(4 + 1));
    assert_eq!(set.tables()[0].num_entries(), 2);
    assert_eq!(set.tables()[0].default_action().args.to_vec(), vec![9]);

    let dumps = |set: &mut TableSet| -> Vec<String> {
        let names = ["fwd", "dnat", "acl", "mac"];
        names
            .iter()
            .map(|t| run(set, &format!("table_dump {t}")).unwrap())
            .collect()
    };
    let before = dumps(&mut set);
    let bad = "\
table_add fwd set_port 192.168.0.0/16 => 4
table_add fwdd set_port 1.0.0.0/8 => 4
show_tables
table_add fwd set_port 10.0.0.0/8 => 1
table_delete fwd 0
table_add mac set_port aa:bb:cc:dd:ee:ff => 512
";
    let errors = load_entries(bad, "bad.txt", &mut set).unwrap_err();
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "bad.txt:2: unknown table 'fwdd' (did you mean 'fwd'?)",
            "bad.txt:3: show_tables is not allowed in an entries file (allowed: table_add, \
             table_set_default, table_modify, table_delete, table_reset_default, table_clear, \
             secret_set, key_derive)",
            "bad.txt:4: table fwd: an entry with the same key already exists (handle 0)",
            "bad.txt:6: action set_port: argument port: value 512 does not fit in 9 bits",
        ]
    );
    // Line 1 and line 5 were fine but were not kept.
    assert_eq!(dumps(&mut set), before);
    assert_eq!(set.tables()[0].num_entries(), 2);
    assert_eq!(errors[0].line, 2);
}

#[test]
fn entries_file_rejects_unknown_commands() {
    let mut set = set();
    let errors = load_entries("table_ad fwd x\r\n", "e.txt", &mut set).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]
        .to_string()
        .starts_with("e.txt:1: unknown command 'table_ad'"));
    assert_eq!(load_entries("# nothing\n\n", "e.txt", &mut set), Ok(0));
}

#[test]
fn every_command_is_listed_once_with_its_syntax() {
    let mut names = std::collections::BTreeSet::new();
    for s in SPECS {
        assert!(names.insert(s.name), "{} listed twice", s.name);
        assert!(s.usage.starts_with(s.name), "{}: {}", s.name, s.usage);
        assert_eq!(usage(s.name), Some(s.usage));
    }
    // Every table command parses (with the wrong arguments, a usage error naming it).
    let set = set();
    for c in COMMANDS {
        let r = parse_command(&format!("{c} x y z w v u"), &set);
        assert!(
            !matches!(r, Err(CommandError::UnknownCommand { .. })),
            "{c} is not parsed"
        );
    }
    assert!(ENTRIES_COMMANDS.iter().all(|c| COMMANDS.contains(c)));
    assert!(SWITCH_COMMANDS.iter().all(|c| !COMMANDS.contains(c)));
}
