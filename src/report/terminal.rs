//! Makes text from logs safe to print: control characters, escape sequences, bidi overrides
//! and invisible characters are shown as visible `\u{..}` escapes instead of being
//! interpreted by the terminal (prompts are written by attackers).

use std::borrow::Cow;

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
}
