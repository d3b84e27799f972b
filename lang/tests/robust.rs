//! No input makes the front end panic: the shipped programs, mutated at random (characters
//! deleted, duplicated, replaced, lines shuffled), go through parse and check; every outcome
//! must be a program or diagnostics, and the diagnostics must render.

fn mutate(src: &str, seed: &mut u64) -> String {
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    let mut chars: Vec<char> = src.chars().collect();
    let alphabet: Vec<char> = "{}()<>;:,.=&|!~+-*^/0123456789xabcdefghijklmnopqrstuvwxyz_ \n\""
        .chars()
        .collect();
    for _ in 0..(1 + next() % 4) {
        if chars.is_empty() {
            break;
        }
        let i = (next() as usize) % chars.len();
        match next() % 4 {
            0 => {
                chars.remove(i);
            }
            1 => {
                let c = chars[i];
                chars.insert(i, c);
            }
            2 => chars[i] = alphabet[(next() as usize) % alphabet.len()],
            _ => {
                // Swap two lines.
                let s: String = chars.iter().collect();
                let mut lines: Vec<&str> = s.lines().collect();
                if lines.len() > 2 {
                    let a = (next() as usize) % lines.len();
                    let b = (next() as usize) % lines.len();
                    lines.swap(a, b);
                }
                chars = lines.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn mutated_programs_never_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs");
    let mut sources = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "sluice") {
            sources.push(std::fs::read_to_string(p).unwrap());
        }
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut checked = 0;
    for round in 0..3000 {
        let src = mutate(&sources[round % sources.len()], &mut seed);
        let result = std::panic::catch_unwind(|| {
            let diags = match sluice_lang::parse(&src) {
                Err(d) => d,
                Ok(ast) => match sluice_lang::check(&ast) {
                    Err(d) => d,
                    Ok((_, w)) => w,
                },
            };
            sluice_lang::render(&diags, "mutated.sluice", &src, false)
        });
        assert!(result.is_ok(), "the front end panicked on:\n{src}");
        checked += 1;
    }
    assert_eq!(checked, 3000);
}
