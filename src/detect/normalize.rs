//! The evasion-aware view of a text that rules match against: lower case, compatibility forms
//! folded (NFKD, accents and other combining marks dropped, so fullwidth, mathematical and
//! zalgo letters read plainly), invisible and control characters removed (zero-width, tags,
//! variation selectors, bidi controls, backspaces), common Cyrillic and Greek homoglyphs mapped
//! to Latin. Every byte of the view maps back to the original text, so evidence can point at
//! what was really written.

use std::ops::Range;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// A text a rule can match, with the way back to the original.
#[derive(Debug, Clone)]
pub struct View {
    pub text: String,
    /// Original byte offset of each view byte; `None` when offsets are the same.
    map: Option<Vec<u32>>,
    /// The original length, for mapping the end of a match at the end of the view.
    original_len: usize,
    pub origin: ViewOrigin,
    /// For a decoded or hidden text read normalized: that text as it decoded, which evidence
    /// shows (the normalized one is lower case and folded).
    pub revealed: Option<String>,
}

/// How a view was derived from the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewOrigin {
    Normalized,
    /// Leetspeak folded (`1gn0r3` → `ignore`).
    Leet,
    /// Letters rotated by 13.
    Rot13,
    /// The decoding of an encoded span of the original (`base64`, `hex`, `url`).
    Decoded { decoder: &'static str, span: Range<usize> },
    /// Text hidden in invisible characters (`unicode_tags`, `variation_selectors`,
    /// `invisible_binary`), decoded.
    Hidden { channel: &'static str, span: Range<usize> },
    /// The original text as logged.
    Original,
}

impl ViewOrigin {
    /// The name evidence gives for how a match was revealed, if not plainly visible.
    pub fn revealed_by(&self) -> Option<&'static str> {
        match self {
            ViewOrigin::Normalized | ViewOrigin::Original => None,
            ViewOrigin::Leet => Some("leetspeak"),
            ViewOrigin::Rot13 => Some("rot13"),
            ViewOrigin::Decoded { decoder, .. } => Some(decoder),
            ViewOrigin::Hidden { channel, .. } => Some(channel),
        }
    }
}

impl View {
    pub fn original(text: &str) -> View {
        View { text: text.to_owned(), map: None, original_len: text.len(), origin: ViewOrigin::Original, revealed: None }
    }

    /// A view whose every match points at `span` of the original (decoded and hidden text).
    pub fn spanning(text: String, origin: ViewOrigin) -> View {
        let span = match &origin {
            ViewOrigin::Decoded { span, .. } | ViewOrigin::Hidden { span, .. } => span.clone(),
            _ => 0..0,
        };
        let map = vec![span.start as u32; text.len()];
        View { text, map: Some(map), original_len: span.end, origin, revealed: None }
    }

    /// The original byte range a view range came from.
    pub fn original_range(&self, r: Range<usize>) -> Range<usize> {
        if let ViewOrigin::Decoded { span, .. } | ViewOrigin::Hidden { span, .. } = &self.origin {
            return span.clone();
        }
        match &self.map {
            None => r.start.min(self.original_len)..r.end.min(self.original_len),
            Some(map) => {
                let start = map.get(r.start).map_or(self.original_len, |&o| o as usize);
                let end = if r.end == 0 {
                    start
                } else {
                    // The end is just past the original character of the last view byte.
                    map.get(r.end - 1).map_or(self.original_len, |&o| o as usize + 1)
                };
                start..end.max(start).min(self.original_len)
            }
        }
    }

    /// Derives a same-length view (leet, rot13) sharing this view's offsets.
    fn derive(&self, text: String, origin: ViewOrigin) -> View {
        View { text, map: self.map.clone(), original_len: self.original_len, origin, revealed: None }
    }
}

/// True for characters removed from the normalized view: they carry no visible text but
/// break up words (or smuggle data).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}'
        | '\u{fff0}'..='\u{fffb}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e007f}'
        | '\u{e0100}'..='\u{e01ef}')
}

/// Latin look-alikes from Cyrillic and Greek that NFKD leaves alone.
fn homoglyph(c: char) -> Option<char> {
    Some(match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' | 'ε' => 'e',
        'һ' => 'h',
        'і' | 'ї' | 'ι' | 'ı' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'н' | 'η' => 'n',
        'о' | 'ο' | 'σ' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' | 'ս' => 'u',
        'ν' | 'ѵ' => 'v',
        'ԝ' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        'ᴢ' => 'z',
        // Dashes and quotes that obfuscate punctuation.
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' => '-',
        '‘' | '’' | '‛' | '′' => '\'',
        '“' | '”' | '‟' | '″' => '"',
        _ => return None,
    })
}

/// `char::is_whitespace` for one ASCII byte, which `u8::is_ascii_whitespace` is not (it leaves
/// out the vertical tab): for byte loops that must agree with the character rules.
pub const fn is_ascii_char_whitespace(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// How [`fold_ascii_spacing`] writes the bytes it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Every byte as it is (whitespace as a space).
    Spacing,
    /// Letters in lower case: the normalized view of plain text, collapsed.
    Case,
    /// Letters in lower case and every digit as `0`: prompts that differ in a counter fold
    /// alike.
    CaseAndDigits,
}

impl Fold {
    fn table(self) -> &'static [u8; 256] {
        match self {
            Fold::Spacing => &SPACED,
            Fold::Case => &SPACED_LOWER,
            Fold::CaseAndDigits => &SPACED_FOLDED,
        }
    }
}

/// ASCII bytes as [`Fold::Spacing`] writes them: whitespace is a space, everything else itself.
const SPACED: [u8; 256] = spacing_table(false, false);
/// ASCII bytes as [`Fold::Case`] writes them.
const SPACED_LOWER: [u8; 256] = spacing_table(true, false);
/// ASCII bytes as [`Fold::CaseAndDigits`] writes them.
const SPACED_FOLDED: [u8; 256] = spacing_table(true, true);

const fn spacing_table(lower: bool, digits: bool) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if is_ascii_char_whitespace(b) {
            b' '
        } else if digits && b.is_ascii_digit() {
            b'0'
        } else if lower {
            b.to_ascii_lowercase()
        } else {
            b
        };
        i += 1;
    }
    table
}

/// Appends ASCII `text` folded as `fold` says, runs of whitespace written as one space and
/// none at the start.
///
/// Eight bytes at a time where they hold no whitespace but single spaces (most of any prose),
/// byte by byte through the table elsewhere. Every response is collapsed to look for a
/// repeated system prompt and every user prompt to fingerprint it: byte by byte throughout,
/// this was 4% of the instructions of a scan of gateway logs.
pub fn fold_ascii_spacing(text: &[u8], fold: Fold, out: &mut Vec<u8>) {
    // The word tests are exact only on ASCII; every caller asks `is_ascii` first.
    debug_assert!(text.is_ascii());
    let table = fold.table();
    let start = out.len();
    out.resize(start + text.len(), 0);
    let written_to = &mut out[start..];
    let mut written = 0;
    let mut after_space = true;
    let mut words = text.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let spaces = ascii_swar::equal(w, b' ');
        let doubled = spaces & (spaces >> 8);
        let leading = if after_space { spaces & 0x80 } else { 0 };
        if ascii_swar::in_range(w, 0x09, 0x0d) | doubled | leading == 0 {
            let mapped = match fold {
                Fold::Spacing => w,
                Fold::Case => ascii_swar::fold_case(w),
                Fold::CaseAndDigits => ascii_swar::fold_case_and_digits(w),
            };
            written_to[written..written + 8].copy_from_slice(&mapped.to_le_bytes());
            written += 8;
            after_space = spaces >> 63 != 0;
            continue;
        }
        for &b in chunk {
            (written, after_space) = fold_byte(b, table, written_to, written, after_space);
        }
    }
    for &b in words.remainder() {
        (written, after_space) = fold_byte(b, table, written_to, written, after_space);
    }
    out.truncate(start + written);
}

/// One byte of [`fold_ascii_spacing`]: every byte is written and the write position moves on
/// only past a byte worth keeping, so there is no branch per byte.
#[inline(always)]
fn fold_byte(b: u8, table: &[u8; 256], written_to: &mut [u8], written: usize, after_space: bool) -> (usize, bool) {
    let mapped = table[usize::from(b)];
    let is_space = mapped == b' ';
    written_to[written] = mapped;
    (written + usize::from(!(is_space & after_space)), is_space)
}

/// Byte tests on eight ASCII bytes in a `u64`, each answer the high bit of its byte. Exact for
/// every byte (no borrow crosses bytes), since no byte is above 0x7f.
mod ascii_swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;

    /// Bytes equal to `byte`.
    pub fn equal(w: u64, byte: u8) -> u64 {
        let x = w ^ (ONES * u64::from(byte));
        !((x & LOWS).wrapping_add(LOWS) | x) & HIGHS
    }

    /// Bytes from `lo` to `hi` (both at most 0x7f).
    pub fn in_range(w: u64, lo: u8, hi: u8) -> u64 {
        let at_least_lo = w.wrapping_add(ONES * u64::from(0x80 - lo));
        let above_hi = w.wrapping_add(ONES * u64::from(0x7f - hi));
        at_least_lo & !above_hi & HIGHS
    }

    /// Letters in lower case, digits as `0`.
    pub fn fold_case_and_digits(w: u64) -> u64 {
        let digits = (in_range(w, b'0', b'9') >> 7) * 0xff;
        (fold_case(w) & !digits) | (digits & (ONES * u64::from(b'0')))
    }

    /// Letters in lower case.
    pub fn fold_case(w: u64) -> u64 {
        w | (in_range(w, b'A', b'Z') >> 2)
    }
}

/// Clean printable ASCII: it cannot hold what the special-character rules look for, and its
/// normalized view is its lower-case copy.
pub fn is_plain(text: &str) -> bool {
    let plain = |b: u8| (b.wrapping_sub(0x20) < 0x5f) | (b == b'\t') | (b == b'\n') | (b == b'\r');
    // Whole blocks without an early exit, which the compiler turns into vector instructions:
    // four times faster than asking byte by byte, and every text is asked.
    let mut blocks = text.as_bytes().chunks_exact(32);
    for block in &mut blocks {
        if !block.iter().fold(true, |all, &b| all & plain(b)) {
            return false;
        }
    }
    blocks.remainder().iter().all(|&b| plain(b))
}

/// Builds the normalized view of `text`.
pub fn normalize(text: &str) -> View {
    normalize_known(text, is_plain(text))
}

/// [`normalize`] for a caller that already knows whether `text` [`is_plain`].
pub fn normalize_known(text: &str, plain: bool) -> View {
    if plain {
        return View { text: text.to_ascii_lowercase(), map: None, original_len: text.len(), origin: ViewOrigin::Normalized, revealed: None };
    }
    let mut out = String::with_capacity(text.len());
    let mut map: Vec<u32> = Vec::with_capacity(text.len());
    let push = |out: &mut String, map: &mut Vec<u32>, c: char, at: usize| {
        let before = out.len();
        out.push(c);
        map.extend(std::iter::repeat_n(at as u32, out.len() - before));
    };
    for (at, c) in text.char_indices() {
        if c.is_ascii() {
            if !is_invisible(c) {
                push(&mut out, &mut map, c.to_ascii_lowercase(), at);
            }
            continue;
        }
        if is_invisible(c) || is_combining_mark(c) {
            continue;
        }
        if let Some(h) = homoglyph(c).or_else(|| c.to_lowercase().next().and_then(homoglyph)) {
            push(&mut out, &mut map, h, at);
            continue;
        }
        let mut any = false;
        decompose_compatible(c, |d| {
            if is_combining_mark(d) || is_invisible(d) {
                return;
            }
            any = true;
            for l in d.to_lowercase() {
                let l = homoglyph(l).unwrap_or(l);
                push(&mut out, &mut map, l, at);
            }
        });
        if !any && !is_combining_mark(c) {
            for l in c.to_lowercase() {
                push(&mut out, &mut map, l, at);
            }
        }
    }
    View { text: out, map: Some(map), original_len: text.len(), origin: ViewOrigin::Normalized, revealed: None }
}

const fn leet_letter(b: u8) -> Option<u8> {
    Some(match b {
        b'0' => b'o',
        b'1' | b'!' | b'|' => b'i',
        b'3' => b'e',
        b'4' | b'@' => b'a',
        b'5' | b'$' => b's',
        b'7' | b'+' => b't',
        b'8' => b'b',
        b'9' => b'g',
        _ => return None,
    })
}

/// Which bytes `leet_letter` reads as a letter.
const IS_LEET: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = leet_letter(b as u8).is_some();
        b += 1;
    }
    table
};

/// Whether a leet character stands between two letters somewhere in `bytes`. Leet characters
/// are rare in prose: whole 32-byte blocks are first asked whether they hold a digit or one
/// of the symbols at all, without an early exit (vector instructions), and only blocks that do
/// are read byte by byte; every text with prompt-attack rules is asked.
fn writes_leet(bytes: &[u8]) -> bool {
    let may_be_leet = |b: u8| (b.wrapping_sub(b'0') < 10) | (b == b'!') | (b == b'$') | (b == b'+') | (b == b'@') | (b == b'|');
    let last = bytes.len().saturating_sub(1);
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + 32).min(bytes.len());
        if bytes[start..end].iter().fold(false, |any, &b| any | may_be_leet(b))
            && (start.max(1)..end.min(last)).any(|i| IS_LEET[bytes[i] as usize] && bytes[i - 1].is_ascii_alphabetic() && bytes[i + 1].is_ascii_alphabetic())
        {
            return true;
        }
        start = end;
    }
    false
}

/// The leetspeak reading of a normalized view, when it has words that mix letters with leet
/// digits or symbols (`1gn0r3`, `pr3v10u5`); `None` when nothing would change.
pub fn leet_view(v: &View) -> Option<View> {
    let bytes = v.text.as_bytes();
    // Only texts that really write leet (a leet character between two letters, as in `1gn0r3`)
    // get a leet reading; model names and ids such as `gpt-4o` or `mp3` do not.
    if !writes_leet(bytes) {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < bytes.len() {
        let is_word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'$' | b'!' | b'|' | b'+');
        if !is_word(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_word(bytes[i]) {
            i += 1;
        }
        let word = &bytes[start..i];
        let letters = word.iter().filter(|b| b.is_ascii_alphabetic()).count();
        let leets = word.iter().filter(|&&b| leet_letter(b).is_some()).count();
        // A word of letters with some leet characters; numbers, dates and ids are left alone.
        if letters >= 1 && leets >= 1 && letters + leets == word.len() && word.len() >= 3 {
            let buf = out.get_or_insert_with(|| bytes.to_vec());
            for (k, &b) in word.iter().enumerate() {
                if let Some(l) = leet_letter(b) {
                    buf[start + k] = l;
                }
            }
        }
    }
    let text = String::from_utf8(out?).ok()?;
    Some(v.derive(text, ViewOrigin::Leet))
}

/// The rot13 reading of a normalized view (letters rotated, everything else kept).
pub fn rot13_view(v: &View) -> View {
    let text: String = v
        .text
        .chars()
        .map(|c| match c {
            'a'..='m' => ((c as u8) + 13) as char,
            'n'..='z' => ((c as u8) - 13) as char,
            _ => c,
        })
        .collect();
    v.derive(text, ViewOrigin::Rot13)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_evasions_and_maps_back() {
        let original = "Ｉｇｎｏｒｅ prev\u{200b}ious іnstructions";
        let v = normalize(original);
        assert_eq!(v.text, "ignore previous instructions");
        let at = v.text.find("previous").unwrap();
        let r = v.original_range(at..at + "previous".len());
        assert_eq!(&original[r], "prev\u{200b}ious");
        let i = v.text.find("instructions").unwrap();
        assert_eq!(&original[v.original_range(i..i + 12)], "іnstructions");
    }

    #[test]
    fn zalgo_accents_bidi_and_backspaces() {
        assert_eq!(normalize("i\u{0337}\u{0353}g\u{0361}nore").text, "ignore");
        assert_eq!(normalize("DÍSREGARD").text, "disregard");
        assert_eq!(normalize("na\u{8}palm \u{202e}x").text, "napalm x");
        assert_eq!(normalize("𝐢𝐠𝐧𝐨𝐫𝐞").text, "ignore");
    }

    #[test]
    fn leet_only_when_words_mix_letters_and_leet() {
        let v = normalize("1gn0r3 4ll pr3v10u5 1n57ruc710n5 at 10:30 on 2024-05-01");
        assert_eq!(leet_view(&v).unwrap().text, "ignore all previous instructions at 10:30 on 2024-05-01");
        assert!(leet_view(&normalize("meet at 10:30")).is_none());
    }

    proptest::proptest! {
        #[test]
        fn is_plain_asks_every_byte(prefix in "[ -~\t\n\r]{0,80}", odd in proptest::option::of(proptest::char::any()), suffix in "[ -~]{0,40}") {
            let text = format!("{prefix}{}{suffix}", odd.map(String::from).unwrap_or_default());
            let byte_by_byte = text.bytes().all(|b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'));
            proptest::prop_assert_eq!(is_plain(&text), byte_by_byte);
        }
    }

    proptest::proptest! {
        #[test]
        fn spacing_is_folded_word_by_word_as_char_by_char(text in "([A-Za-z0-9]{1,12}|[ ]{1,3}|[\t\n\x0b\x0c\r]|[!-/:-@]){0,40}", keep in "[a-z ]{0,9}") {
            // Any earlier output is kept and does not change how the text starts.
            for fold in [Fold::Spacing, Fold::Case, Fold::CaseAndDigits] {
                let mut out = keep.clone().into_bytes();
                fold_ascii_spacing(text.as_bytes(), fold, &mut out);
                let folded = |c: char| match fold {
                    Fold::Spacing => c,
                    Fold::Case => c.to_ascii_lowercase(),
                    Fold::CaseAndDigits if c.is_ascii_digit() => '0',
                    Fold::CaseAndDigits => c.to_ascii_lowercase(),
                };
                let words: Vec<String> = text.split(|c: char| c.is_whitespace()).filter(|w| !w.is_empty()).map(|w| w.chars().map(folded).collect()).collect();
                let mut expected = keep.clone() + &words.join(" ");
                if text.ends_with(|c: char| c.is_whitespace()) && !words.is_empty() {
                    expected.push(' ');
                }
                proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), expected, "{:?} {:?}", fold, text);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn leet_is_found_block_by_block_as_byte_by_byte(text in "([a-z]{1,40}|[0-9!|@$+ ]{1,3}|[.,-]){0,30}") {
            let b = text.as_bytes();
            let byte_by_byte = (1..b.len().saturating_sub(1)).any(|i| IS_LEET[b[i] as usize] && b[i - 1].is_ascii_alphabetic() && b[i + 1].is_ascii_alphabetic());
            proptest::prop_assert_eq!(writes_leet(b), byte_by_byte, "{:?}", text);
        }
    }

    #[test]
    fn leet_is_found_at_every_place_of_a_block() {
        for at in 1..99 {
            let mut text = vec![b'a'; 100];
            text[at] = b'3';
            assert!(writes_leet(&text), "leet at {at}");
            text[at - 1] = b' ';
            assert!(!writes_leet(&text), "no letter before {at}");
        }
        assert!(!writes_leet(b"3ab") && !writes_leet(b"ab3"), "at either end there is no letter on one side");
    }

    #[test]
    fn a_control_character_in_a_long_text_is_not_plain() {
        let mut text = "a".repeat(100);
        assert!(is_plain(&text));
        for at in [0, 31, 32, 63, 64, 99] {
            text.replace_range(at..at + 1, "\u{7f}");
            assert!(!is_plain(&text), "DEL at {at}");
            text.replace_range(at..at + 1, "a");
        }
    }

    #[test]
    fn rot13() {
        assert_eq!(rot13_view(&normalize("Vtaber nyy cerivbhf")).text, "ignore all previous");
    }
}
