//! Error codes: every code the compiler can emit has a page in docs/errors/ (listed in its
//! README, printed by `sluice explain`), and a program in tests/ui/ that shows it, except
//! E0000, which no program should be able to produce.

use crate::support::*;
use std::collections::BTreeSet;

/// Every `"E0nnn"` in the front end's and the compiler's sources.
fn codes_in_sources() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    let mut stack = vec![root().join("lang/src"), root().join("compiler/src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, _) in text.match_indices("\"E0") {
                    let code = &text[i + 1..i + 6];
                    if code[1..].bytes().all(|b| b.is_ascii_digit()) {
                        codes.insert(code.to_string());
                    }
                }
            }
        }
    }
    codes
}

#[test]
fn every_code_has_a_page_and_an_example() {
    let codes = codes_in_sources();
    assert!(codes.len() >= 17, "{codes:?}");
    let readme = std::fs::read_to_string(root().join("docs/errors/README.md")).unwrap();
    let mut snapshots = String::new();
    for e in std::fs::read_dir(root().join("lang/tests/snapshots")).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains("ui__ui@") {
            snapshots.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    for code in &codes {
        let page = root().join(format!("docs/errors/{code}.md"));
        let text = std::fs::read_to_string(&page)
            .unwrap_or_else(|_| panic!("{code} has no page at {}", page.display()));
        assert!(
            text.starts_with(&format!("# {code}: ")),
            "{code}'s page title"
        );
        assert!(
            readme.contains(&format!("[{code}]({code}.md)")),
            "{code} is missing from docs/errors/README.md"
        );
        let out = run(&["explain", code]);
        assert_eq!(out.status, 0, "{}", out.stderr);
        assert_eq!(out.stdout, text, "sluice explain {code}");
        if code != "E0000" {
            assert!(
                snapshots.contains(&format!("error[{code}]"))
                    || snapshots.contains(&format!("warning[{code}]")),
                "no program in tests/ui/ shows {code}"
            );
        }
    }
}

#[test]
fn explain_takes_short_forms_and_refuses_unknown_codes() {
    let a = run(&["explain", "e102"]);
    let b = run(&["explain", "102"]);
    assert_eq!(a.status, 0);
    assert_eq!(a.stdout, b.stdout);
    assert!(a.stdout.starts_with("# E0102: width mismatch"));
    let out = run(&["explain", "E9999"]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains("no error code 'E9999'"),
        "{}",
        out.stderr
    );
}
