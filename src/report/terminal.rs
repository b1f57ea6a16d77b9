//! Makes text from logs safe to print: control characters, escape sequences, bidi overrides
//! and invisible characters are shown as visible `\u{..}` escapes instead of being
//! interpreted by the terminal (prompts are written by attackers).

use std::borrow::Cow;

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
    if !s.chars().any(|c| is_unsafe_char(c) || c == '\n' || c == '\t' || c == '\r') {
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
pub fn json_inert(json: Vec<u8>) -> Vec<u8> {
    // Every unsafe character is a control byte, DEL or non-ASCII: printable ASCII, which most
    // alerts are, is done in one tight pass instead of decoding each character.
    if json.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return json;
    }
    let Ok(text) = std::str::from_utf8(&json) else { return json };
    if !text.chars().any(is_unsafe_char) {
        return json;
    }
    let mut out = String::with_capacity(text.len() + 32);
    for c in text.chars() {
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

    #[test]
    fn json_stays_json_but_inert() {
        let raw = serde_json::to_vec(&serde_json::json!({"t": "a\u{9b}b\u{e0041}\u{202e}"})).unwrap();
        let inert = json_inert(raw);
        let text = String::from_utf8(inert.clone()).unwrap();
        assert!(text.is_ascii(), "{text}");
        let back: serde_json::Value = serde_json::from_slice(&inert).unwrap();
        assert_eq!(back["t"], "a\u{9b}b\u{e0041}\u{202e}");
    }
}
