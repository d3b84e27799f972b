//! Diagnostics snapshots: every program in tests/ui/ is checked, and what `sluice check` would
//! print (without color) is compared with its snapshot.

fn render(path: &std::path::Path) -> String {
    let source = std::fs::read_to_string(path).expect("fixture is readable");
    let name = format!("tests/ui/{}", path.file_name().unwrap().to_string_lossy());
    let diags = match sluice_lang::parse(&source) {
        Err(d) => d,
        Ok(ast) => match sluice_lang::check(&ast) {
            Err(d) => d,
            Ok((_, warnings)) => warnings,
        },
    };
    assert!(
        !diags.is_empty(),
        "{name}: expected at least one diagnostic"
    );
    sluice_lang::render(&diags, &name, &source, false)
}

#[test]
fn ui() {
    insta::glob!("../../tests/ui", "*.sluice", |path| {
        insta::assert_snapshot!(render(path));
    });
}

#[test]
fn shipped_programs_check_cleanly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sluice") {
            let source = std::fs::read_to_string(&path).unwrap();
            let ast = sluice_lang::parse(&source).unwrap_or_else(|d| {
                panic!(
                    "{}: {}",
                    path.display(),
                    sluice_lang::render(&d, "p", &source, false)
                )
            });
            let (_, warnings) = sluice_lang::check(&ast).unwrap_or_else(|d| {
                panic!(
                    "{}: {}",
                    path.display(),
                    sluice_lang::render(&d, "p", &source, false)
                )
            });
            assert!(warnings.is_empty(), "{}: {warnings:?}", path.display());
        }
    }
}
