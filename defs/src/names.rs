//! "Did you mean ...?" for a name that is not defined.

/// The candidate closest to `name` by edit distance, if within 2 edits (the first such
/// candidate on a tie).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(name, c);
        if d <= 2 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_owned())
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = i;
        let mut left = i + 1;
        for (cb, above) in b.iter().zip(row.iter_mut().skip(1)) {
            let cost = diagonal + usize::from(ca != *cb);
            let next = cost.min(*above + 1).min(left + 1);
            diagonal = *above;
            *above = next;
            left = next;
        }
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
    }
    row.last().copied().unwrap_or(0)
}

/// The longest piece of a user's text that a message repeats, in characters.
pub const ECHO_CHARS: usize = 64;

/// A user's text as a message repeats it: control characters (an entries file could otherwise
/// send escape sequences to the terminal) and bidirectional overrides (which can make a
/// message read differently from what it says) escaped as `\u{1b}`, and anything past
/// [`ECHO_CHARS`] characters cut, with `...` (a 1 MB token is not worth printing back).
pub fn echo(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == ECHO_CHARS {
            out.push_str("...");
            break;
        }
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("dnat", "dnat"), 0);
        assert_eq!(edit_distance("dant", "dnat"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
    }

    #[test]
    fn the_closest_within_two_edits_first_on_a_tie() {
        assert_eq!(closest("dnt", ["snat", "dnat"]), Some("dnat".into()));
        assert_eq!(closest("xnat", ["snat", "dnat"]), Some("snat".into()));
        assert_eq!(closest("ipv4_lpm", ["dnat"]), None);
    }

    #[test]
    fn control_characters_are_escaped_and_long_text_cut() {
        assert_eq!(echo("dnat"), "dnat");
        assert_eq!(echo("é\u{1b}[2Jx"), "é\\u{1b}[2Jx");
        assert_eq!(echo("a\u{202e}b"), "a\\u{202e}b");
        let long = "x".repeat(1 << 20);
        assert_eq!(echo(&long), format!("{}...", "x".repeat(64)));
        assert_eq!(echo(&"y".repeat(64)), "y".repeat(64));
    }
}
