//! The invariants of docs/ARCHITECTURE.md that a crate's manifest shows: which crate may
//! depend on which.

use crate::support::root;

/// The names under `[dependencies]` of a crate's manifest.
fn dependencies(krate: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
    let mut deps = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once(['=', '.']) {
                deps.push(name.trim().to_string());
            }
        }
    }
    deps
}

#[test]
fn crates_depend_only_on_what_the_architecture_allows() {
    assert_eq!(
        dependencies("defs"),
        Vec::<String>::new(),
        "defs depends on nothing"
    );
    for d in dependencies("lang") {
        assert!(
            ["sluice-defs", "pest", "pest_derive", "codespan-reporting"].contains(&d.as_str()),
            "lang knows nothing of the runtime or Cranelift: {d}"
        );
    }
    for d in dependencies("runtime") {
        assert!(
            !d.starts_with("pest")
                && !d.starts_with("cranelift")
                && d != "sluice-lang"
                && d != "sluice-compiler",
            "the runtime knows nothing of pest, the language or Cranelift: {d}"
        );
    }
    let compiler = dependencies("compiler");
    assert!(compiler.contains(&"sluice-runtime".to_string()));
    assert!(
        !compiler.iter().any(|d| d.starts_with("pest")),
        "{compiler:?}"
    );
    for krate in ["defs", "lang", "compiler", "runtime"] {
        assert!(
            !dependencies(krate).contains(&"anyhow".to_string()),
            "{krate}: library crates use thiserror, not anyhow"
        );
    }
}

/// docs/language.md §15 promises the grammar verbatim.
#[test]
fn the_documented_grammar_is_the_grammar() {
    let doc = std::fs::read_to_string(root().join("docs/language.md")).unwrap();
    let grammar = std::fs::read_to_string(root().join("lang/src/grammar.pest")).unwrap();
    let section = &doc[doc.find("## 15. Grammar").unwrap()..];
    let start = section.find("```pest\n").unwrap() + "```pest\n".len();
    let end = start + section[start..].find("```\n").unwrap();
    assert!(
        section[start..end] == grammar,
        "copy lang/src/grammar.pest into docs/language.md §15"
    );
}
