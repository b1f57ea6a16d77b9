//! Makes text from logs safe to print: control characters, escape sequences, bidi overrides
//! and invisible characters are shown as visible `\u{..}` escapes instead of being
//! interpreted by the terminal (prompts are written by attackers).

use std::borrow::Cow;

use crate::swar;

/// Prints a diagnostic line on stderr. Unlike `eprintln!`, a closed stderr (`2>&1 | head`)
/// is ignored instead of panicking, which would turn the documented exit code into 101.
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// True for characters that must never reach a terminal or a report raw.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Zero-width, joiners, word joiner, invisible operators, BOM.
        | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
        // Bidi embeddings, overrides and isolates (Trojan Source).
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        // Tag characters (ASCII smuggling) and variation selectors supplement.
        | '\u{e0000}'..='\u{e007f}'
        | '\u{fff9}'..='\u{fffb}')
}

/// Escapes unsafe characters; newlines and tabs become `\n` and `\t` so one message stays on
/// one line.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !holds_unsafe_char(s) && memchr::memchr2(b'\n', b'\t', s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Rewrites unsafe characters inside serialised JSON as `\uXXXX` escapes. The JSON means the
/// same to every parser, but a terminal showing it sees only inert ASCII (serde_json already
/// escapes C0 controls; C1 controls, bidi overrides, tag and zero-width characters it leaves
/// raw).
pub fn json_inert(json: String) -> Vec<u8> {
    // Taken as a `String`, as serde_json writes it: checking that its bytes are UTF-8 again
    // cost twice as long as the scan below on an alert quoting Chinese text.
    if !holds_unsafe_char(&json) {
        return json.into_bytes();
    }
    let mut out = String::with_capacity(json.len() + 32);
    for c in json.chars() {
        if is_unsafe_char(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{:04x}", u));
            }
        } else {
            out.push(c);
        }
    }
    out.into_bytes()
}

/// [`is_unsafe_char`] of any character of `text`, reading bytes. Every unsafe character is
/// a control byte, DEL, or starts with one of four UTF-8 lead bytes (C2: U+0080 to U+00BF;
/// E2: U+2000 to U+2FFF; EF: U+F000 to U+FFFF; F3: planes 12 to 15), and only characters that
/// start with those are decoded: alerts quote evidence between « and », so nearly every one
/// holds non-ASCII text, and decoding all of it was a fifth of encoding an alert. Those bytes
/// are looked for eight at a time: byte by byte, this scan of every alert's JSON was 6% of a
/// scan in which every record raised an alert.
fn holds_unsafe_char(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let word = padded_word(bytes, at);
        // Printable ASCII, most of an alert, is the quicker test.
        if swar::all_printable_ascii(word) {
            at += 8;
            continue;
        }
        let stops = stop_bytes(word);
        if stops == 0 {
            at += 8;
            continue;
        }
        // The first stop in the word: a control byte, DEL or a lead byte, so the start of a
        // character.
        at += swar::first(stops);
        let Some(c) = text.get(at..).and_then(|t| t.chars().next()) else { return false };
        if is_unsafe_char(c) {
            return true;
        }
        at += c.len_utf8();
    }
    false
}

/// The eight bytes at `i`, the last word padded with spaces (which are never stops).
fn padded_word(bytes: &[u8], i: usize) -> u64 {
    swar::word(bytes, i).unwrap_or_else(|| {
        let mut word = [b' '; 8];
        let rest = bytes.get(i..).unwrap_or_default();
        word[..rest.len()].copy_from_slice(rest);
        u64::from_le_bytes(word)
    })
}

/// The bytes of `w` that [`holds_unsafe_char`] stops at, marked as [`swar::zero_bytes`] marks
/// them: the lowest marked byte is the first stop.
fn stop_bytes(w: u64) -> u64 {
    let byte = |b: u8| swar::zero_bytes(w ^ swar::splat(b));
    swar::below_space(w) | byte(0x7f) | byte(0xc2) | byte(0xe2) | byte(0xef) | byte(0xf3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_sequences_and_invisibles() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\u{1b}[31mred\u{7}"), "a\\u{1b}[31mred\\u{7}");
        assert_eq!(escape("x\u{202e}y\u{e0041}\n"), "x\\u{202e}y\\u{e0041}\\n");
        assert_eq!(escape("\u{9b}2J"), "\\u{9b}2J");
    }

    proptest::proptest! {
        #[test]
        fn the_byte_scan_finds_what_the_character_scan_finds(text in "[a-z \\x00-\\x1f\u{7f}-\u{a0}\u{ab}\u{bb}\u{2000}-\u{2070}\u{fef0}-\u{ffff}\u{e0000}-\u{e0080}\u{10000}\u{1f600}]{0,24}") {
            proptest::prop_assert_eq!(holds_unsafe_char(&text), text.chars().any(is_unsafe_char));
        }

        #[test]
        fn one_character_anywhere_in_printable_ascii_is_found(
            before in "[ -~]{0,40}",
            c in "[\\x00-\\x1f\u{7f}-\u{a0}\u{ab}\u{e9}\u{2000}-\u{2070}\u{fef0}-\u{ffff}\u{e0000}-\u{e0080}\u{1f600}]",
            after in "[ -~]{0,40}",
        ) {
            // The scan passes eight plain bytes at a time: whatever word the character falls
            // in, and whatever its neighbours are, it must still be seen.
            let text = format!("{before}{c}{after}");
            proptest::prop_assert_eq!(holds_unsafe_char(&text), text.chars().any(is_unsafe_char));
            let plain = before.clone() + &after;
            proptest::prop_assert!(!holds_unsafe_char(&plain));
        }
    }

    #[test]
    fn every_unsafe_character_starts_with_a_byte_the_scan_stops_at() {
        for c in (0..=0x10ffff).filter_map(char::from_u32).filter(|&c| is_unsafe_char(c)) {
            assert!(holds_unsafe_char(&format!("ab\u{ab}{c}")), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn json_stays_json_but_inert() {
        let raw = serde_json::to_string(&serde_json::json!({"t": "a\u{9b}b\u{e0041}\u{202e}"})).unwrap();
        let inert = json_inert(raw);
        let text = String::from_utf8(inert.clone()).unwrap();
        assert!(text.is_ascii(), "{text}");
        let back: serde_json::Value = serde_json::from_slice(&inert).unwrap();
        assert_eq!(back["t"], "a\u{9b}b\u{e0041}\u{202e}");
    }
}
