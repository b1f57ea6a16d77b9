//! Lazy, borrowed access to JSON objects whose field names vary in case across exports.
//!
//! Azure writes the same field as `resourceId`, `ResourceId` or `resourceid` depending on the
//! export path, and nests objects either as JSON or as JSON-encoded strings. Building a
//! `serde_json::Value` for every record would cost 3x the parse time, so a document is read
//! once into a [`Doc`]: its text, validated, and the place of every value in it with its key.
//! A [`Raw`] is one value of a document, borrowed; an [`Obj`] steps from value to value to
//! find a key, and neither scans text again. Strings are decoded only when an adapter asks for
//! one.

use std::borrow::Cow;
use std::fmt;

use crate::swar;

/// One value's place in its document: the byte range of its text, how many values its subtree
/// holds (itself included), which is how far away the next value at its level is, and whether
/// a string holds an escape. A value in an object also carries its key: where the key's text
/// starts (after its quote) and how long it is as written, with [`ESCAPED_KEY`] set when it
/// holds an escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Node {
    start: u32,
    end: u32,
    size: u32,
    key_start: u32,
    key_len: u32,
    /// For an object, a bit for each of its keys ([`key_bit`]; every bit when a key holds an
    /// escape). Adapters ask each object for dozens of names it does not have, in several
    /// spellings; most are refused here without a look at its keys. For a string, not 0 when
    /// it holds an escape ([`Node::escaped`]). One field for both keeps a node at 24 bytes
    /// with 32 bits for keys: with 16, a gateway record's 30-odd keys set nearly all of them,
    /// and most lookups of absent names stepped through every key.
    flags: u32,
}

impl Node {
    /// Whether a string holds an escape.
    fn escaped(&self) -> bool {
        self.flags != 0
    }
}

/// Set in [`Node::key_len`] for a key that holds an escape: its written length is not its
/// length.
const ESCAPED_KEY: u32 = 1 << 31;

// Nodes can number a third of a document's bytes (`[[],[],...]`): each byte of a node is up
// to eight bytes of memory per byte of input.
const _: () = assert!(std::mem::size_of::<Node>() == 24);

/// The nodes of an array's scalar elements, which the reader does not list: whether a string
/// holds an escape is all a scalar's node tells.
static PLAIN_SCALAR: [Node; 1] = [Node { start: 0, end: 0, size: 1, key_start: 0, key_len: 0, flags: 0 }];
static ESCAPED_SCALAR: [Node; 1] = [Node { start: 0, end: 0, size: 1, key_start: 0, key_len: 0, flags: 1 }];

/// Where a string of validated JSON whose text starts at `i` ends (after its closing quote),
/// and whether it holds an escape.
fn validated_string_end(b: &[u8], mut i: usize) -> (usize, bool) {
    let mut escaped = false;
    while let Some(stop) = quote_or_backslash(b, i) {
        if b[stop] == b'"' {
            return (stop + 1, escaped);
        }
        escaped = true;
        i = stop + 2;
    }
    (b.len(), escaped)
}

/// The node of `{}`, for an empty [`Obj`] that no document holds.
static EMPTY_OBJECT: [Node; 1] = [Node { start: 0, end: 2, size: 1, key_start: 0, key_len: 0, flags: 0 }];

/// A key's bit in its object's [`Node::flags`]: from its length and its first and last
/// bytes, without regard to ASCII case, as lookups compare keys.
fn key_bit(key: &[u8]) -> u32 {
    key_shape_bit(key.len(), key.first().copied().unwrap_or(0), key.last().copied().unwrap_or(0))
}

/// [`key_bit`] of any key of `len` bytes that starts with `first` and ends with `last`.
fn key_shape_bit(len: usize, first: u8, last: u8) -> u32 {
    let (first, last) = (first | 0x20, last | 0x20);
    let mixed = (len as u32).wrapping_mul(0x9E37_79B1) ^ u32::from(first).wrapping_mul(0x85EB_CA77) ^ u32::from(last).wrapping_mul(0xC2B2_AE3D);
    1 << (mixed >> 27)
}

/// A JSON document, validated in one pass that also recorded where each of its values is.
/// Owns the text when it was decoded out of another document (a body logged as a string).
pub struct Doc<'a> {
    text: Cow<'a, str>,
    nodes: Vec<Node>,
}

impl<'a> Doc<'a> {
    /// Reads `text`, which must be one JSON value (whitespace around it is allowed).
    pub fn parse(text: &'a str) -> Result<Doc<'a>, serde_json::Error> {
        Doc::read(Cow::Borrowed(text))
    }

    /// [`Doc::parse`] of a text the document keeps.
    pub fn parse_owned(text: String) -> Result<Doc<'static>, serde_json::Error> {
        Doc::read(Cow::Owned(text))
    }

    /// The same document, keeping its own copy of the text.
    pub fn into_owned(self) -> Doc<'static> {
        Doc { text: Cow::Owned(self.text.into_owned()), nodes: self.nodes }
    }

    fn read(text: Cow<'a, str>) -> Result<Doc<'a>, serde_json::Error> {
        match tape::read(&text) {
            Ok(nodes) => Ok(Doc { text, nodes }),
            Err(at) => Err(syntax_error(&text, at)),
        }
    }

    /// The document's value.
    pub fn root(&self) -> Raw<'_> {
        let text = self.nodes.first().and_then(|n| self.text.get(n.start as usize..n.end as usize));
        match text {
            Some(text) => Raw { text, nodes: &self.nodes },
            None => Raw::EMPTY_OBJECT,
        }
    }

    /// The document's value when it is an object.
    pub fn obj(&self) -> Option<Obj<'_>> {
        Obj::from_raw(self.root())
    }
}

#[cfg(test)]
impl Doc<'_> {
    /// The document's object; tests only.
    pub fn object(&self) -> Obj<'_> {
        self.obj().expect("the document is an object")
    }
}

/// The error for a text the reader refused at byte `at`. serde_json words it (bad lines are
/// rare, and its messages are the ones users see elsewhere); the reader accepts everything
/// serde_json does, and lone surrogate escapes besides, so it only words what it refused.
fn syntax_error(text: &str, at: usize) -> serde_json::Error {
    match serde_json::from_str::<&serde_json::value::RawValue>(text) {
        Err(e) => e,
        Ok(_) => serde::de::Error::custom(format!("unreadable JSON at byte {at}")),
    }
}

/// The text of one JSON value of a [`Doc`], with the places of the values inside it.
#[derive(Clone, Copy)]
pub struct Raw<'a> {
    text: &'a str,
    /// This value's node, then its subtree's, in document order.
    nodes: &'a [Node],
}

impl<'a> Raw<'a> {
    const EMPTY_OBJECT: Raw<'static> = Raw { text: "{}", nodes: &EMPTY_OBJECT };

    /// The value's JSON text.
    pub fn get(self) -> &'a str {
        self.text
    }

    fn node(self) -> Node {
        self.nodes.first().copied().unwrap_or(EMPTY_OBJECT[0])
    }

    /// The value whose node is `at` places into this one's subtree.
    fn child(self, at: usize) -> Option<Raw<'a>> {
        let node = self.nodes.get(at)?;
        let nodes = self.nodes.get(at..at + node.size as usize)?;
        let base = self.node().start;
        // Offsets are the document's; the reader made them so they cannot fall before `base`,
        // and a checked subtraction keeps a mistake a `None` rather than a panic.
        let text = self.text.get(node.start.checked_sub(base)? as usize..node.end.checked_sub(base)? as usize)?;
        Some(Raw { text, nodes })
    }

    /// An object's values' nodes, and where each is in this value's subtree. (The scalars
    /// of an array have no nodes: see [`Raw::elements`].)
    fn child_nodes(self) -> impl Iterator<Item = (usize, &'a Node)> {
        let mut at = 1;
        std::iter::from_fn(move || {
            let node = self.nodes.get(at)?;
            let here = at;
            at += node.size.max(1) as usize;
            Some((here, node))
        })
    }

    /// An array's elements: read off its text, which the reader validated, taking each
    /// array or object from the nodes (and stepping over its text) and each scalar from the
    /// text alone.
    fn elements(self) -> impl Iterator<Item = Raw<'a>> {
        let b = self.text.as_bytes();
        let base = self.node().start;
        let (mut i, mut next_node) = (1, 1);
        std::iter::from_fn(move || {
            loop {
                match *b.get(i)? {
                    b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
                    b']' => return None,
                    b'{' | b'[' => {
                        let node = *self.nodes.get(next_node)?;
                        let element = self.child(next_node)?;
                        next_node += node.size.max(1) as usize;
                        i = node.end.checked_sub(base)? as usize;
                        return Some(element);
                    }
                    b'"' => {
                        let (end, escaped) = validated_string_end(b, i + 1);
                        let text = self.text.get(i..end)?;
                        i = end;
                        return Some(Raw { text, nodes: if escaped { &ESCAPED_SCALAR } else { &PLAIN_SCALAR } });
                    }
                    _ => {
                        let end = b[i..].iter().position(|c| matches!(c, b',' | b']' | b' ' | b'\t' | b'\n' | b'\r')).map_or(b.len(), |n| i + n);
                        let text = self.text.get(i..end)?;
                        i = end;
                        return Some(Raw { text, nodes: &PLAIN_SCALAR });
                    }
                }
            }
        })
    }

    /// The key of the value whose node is `node`, in this object, as written (escapes and
    /// all).
    fn written_key(self, node: &Node) -> &'a str {
        let start = node.key_start.saturating_sub(self.node().start) as usize;
        self.text.get(start..start + (node.key_len & !ESCAPED_KEY) as usize).unwrap_or("")
    }

    /// The key of the value whose node is `node`, in this object, decoded.
    fn key_text(self, node: &Node) -> Cow<'a, str> {
        let written = self.written_key(node);
        if node.key_len & ESCAPED_KEY == 0 {
            return Cow::Borrowed(written);
        }
        let mut out = String::with_capacity(written.len());
        read_string_into(written, 0, &mut out);
        Cow::Owned(out)
    }
}

impl PartialEq for Raw<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Raw<'_> {}

impl fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Raw({})", self.text)
    }
}

/// What a raw JSON value is, judged from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

pub fn json_type(raw: Raw<'_>) -> JsonType {
    match raw.get().as_bytes().first() {
        Some(b'{') => JsonType::Object,
        Some(b'[') => JsonType::Array,
        Some(b'"') => JsonType::String,
        Some(b't') | Some(b'f') => JsonType::Bool,
        Some(b'n') => JsonType::Null,
        _ => JsonType::Number,
    }
}

/// A JSON object of a [`Doc`]: its keys and values, borrowed.
#[derive(Clone, Copy)]
pub struct Obj<'a> {
    raw: Raw<'a>,
}

impl Default for Obj<'_> {
    fn default() -> Self {
        Obj { raw: Raw::EMPTY_OBJECT }
    }
}

impl fmt::Debug for Obj<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Obj({})", self.raw.text)
    }
}

impl<'a> Obj<'a> {
    /// The object a raw value is; `None` for any other type.
    pub fn from_raw(raw: Raw<'a>) -> Option<Obj<'a>> {
        (json_type(raw) == JsonType::Object).then_some(Obj { raw })
    }

    pub fn is_empty(&self) -> bool {
        self.raw.nodes.len() <= 1
    }

    pub fn keys(&self) -> impl Iterator<Item = Cow<'a, str>> {
        let raw = self.raw;
        raw.child_nodes().map(move |(_, node)| raw.key_text(node))
    }

    pub fn entries(&self) -> impl Iterator<Item = (Cow<'a, str>, Raw<'a>)> {
        let raw = self.raw;
        raw.child_nodes().filter_map(move |(at, node)| Some((raw.key_text(node), raw.child(at)?)))
    }

    /// The value of `key`, compared without regard to ASCII case.
    pub fn get(&self, key: &str) -> Option<Raw<'a>> {
        // An exact match wins over an earlier one that differs in case, which keeps `a`
        // distinct from `A` when a record really has both. One pass: adapters ask for many
        // names a record does not have, and most keys differ from the name in length.
        let raw = self.raw;
        if raw.node().flags & key_bit(key.as_bytes()) == 0 {
            return None;
        }
        let mut folded = None;
        for (value_at, v) in raw.child_nodes() {
            if v.key_len as usize != key.len() {
                if v.key_len & ESCAPED_KEY == 0 {
                    continue;
                }
                let spelled = raw.key_text(v);
                if spelled == key {
                    folded = Some(value_at);
                    break;
                }
                if folded.is_none() && spelled.eq_ignore_ascii_case(key) {
                    folded = Some(value_at);
                }
                continue;
            }
            // As bytes: the lengths are equal and the key has no escape, so this is the whole
            // comparison, without the character-boundary checks of cutting a `str`.
            let start = v.key_start.saturating_sub(raw.node().start) as usize;
            let spelled = raw.text.as_bytes().get(start..start + key.len()).unwrap_or_default();
            if spelled == key.as_bytes() {
                folded = Some(value_at);
                break;
            }
            if folded.is_none() && spelled.eq_ignore_ascii_case(key.as_bytes()) {
                folded = Some(value_at);
            }
        }
        let value = raw.child(folded?)?;
        (json_type(value) != JsonType::Null).then_some(value)
    }

    /// The first of `keys` that is present and not null.
    pub fn get_any(&self, keys: &[&str]) -> Option<Raw<'a>> {
        keys.iter().find_map(|k| self.get(k))
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Whether the object may have a key of `len` bytes that starts with `first` and ends with
    /// one of `lasts` (without regard to ASCII case); `false` means it surely has none, known
    /// without a look at its keys.
    pub fn may_have_key_like(&self, len: usize, first: u8, lasts: &[u8]) -> bool {
        let bits = self.raw.node().flags;
        lasts.iter().any(|&last| bits & key_shape_bit(len, first, last) != 0)
    }

    /// A scalar field as text: strings are decoded, numbers and booleans keep their JSON
    /// spelling. Empty strings count as absent.
    pub fn text(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.get(k).and_then(scalar_text))
    }

    pub fn i64(&self, keys: &[&str]) -> Option<i64> {
        keys.iter().find_map(|k| self.get(k).and_then(scalar_i64))
    }

    pub fn f64(&self, keys: &[&str]) -> Option<f64> {
        keys.iter().find_map(|k| self.get(k).and_then(scalar_f64))
    }

    pub fn bool(&self, keys: &[&str]) -> Option<bool> {
        keys.iter().find_map(|k| self.get(k).and_then(scalar_bool))
    }
}

/// The text between a string's quotes, as written.
fn string_body(raw: Raw<'_>) -> &str {
    raw.text.get(1..raw.text.len().saturating_sub(1)).unwrap_or("")
}

/// Decodes a JSON string literal; `None` if `raw` is not a string.
pub fn decode_str(raw: Raw<'_>) -> Option<Cow<'_, str>> {
    if json_type(raw) != JsonType::String {
        return None;
    }
    let inner = string_body(raw);
    if !raw.node().escaped() {
        return Some(Cow::Borrowed(inner));
    }
    // The document was validated when it was read, so this only unescapes; it agrees with
    // serde_json on every string serde_json accepts, and also reads lone surrogates
    // (`\ud800`), which truncating writers produce and an attacker can add on purpose, as
    // U+FFFD instead of losing the whole text.
    Some(Cow::Owned(unescape_validated(inner)))
}

/// The text of a string body the reader validated (every backslash starts a JSON escape, and
/// there is no unescaped quote). Bodies logged as JSON inside a JSON string have an escape
/// every few words: eight bytes are copied at a time, each word written whole and the output
/// moved on only to the first backslash in it, where a stop per escape (find it, then copy
/// the run before it) cost twice as much.
fn unescape_validated(inner: &str) -> String {
    let b = inner.as_bytes();
    // No escape decodes to more bytes than it is written with, so the output is never longer
    // than the input, and is never ahead of it.
    let mut out = vec![0u8; b.len()];
    let (mut i, mut o) = (0, 0);
    while i < b.len() {
        if let Some(w) = swar::word(b, i) {
            out[o..o + 8].copy_from_slice(&w.to_le_bytes());
            let backslashes = swar::zero_bytes(w ^ swar::splat(b'\\'));
            if backslashes == 0 {
                i += 8;
                o += 8;
                continue;
            }
            let run = swar::first(backslashes);
            i += run;
            o += run;
        } else if b[i] != b'\\' {
            out[o] = b[i];
            i += 1;
            o += 1;
            continue;
        }
        // At a backslash, with the escaped character after it.
        let Some(&escaped) = b.get(i + 1) else { break };
        let single = match escaped {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'u' => {
                let (c, used) = unicode_escape(b, i + 2);
                if o + c.len_utf8() > i + 2 + used {
                    // Only a broken escape (fewer than four hex digits) could, which the
                    // reader refuses; were one here, the output would overtake the input.
                    return read_string(inner, 0).0;
                }
                o += c.encode_utf8(&mut out[o..]).len();
                i += 2 + used;
                continue;
            }
            other => other,
        };
        out[o] = single;
        o += 1;
        i += 2;
    }
    out.truncate(o);
    // Only ASCII escapes were replaced, by whole characters: the output is UTF-8. Were it
    // not, the byte-by-byte reader gives the same answer without assuming so.
    String::from_utf8(out).unwrap_or_else(|_| read_string(inner, 0).0)
}


/// Reads a JSON string body starting after its opening quote; returns the decoded text and
/// the index after the closing quote (or the end of input when the string was cut off).
pub fn read_string(text: &str, start: usize) -> (String, usize) {
    let mut out = String::new();
    let end = read_string_into(text, start, &mut out);
    (out, end)
}

/// [`read_string`] into `out`. Salvage reads many short strings out of a long body, so only
/// callers that know the decoded length reserve room for it.
fn read_string_into(text: &str, start: usize, out: &mut String) -> usize {
    let bytes = text.as_bytes();
    let mut i = start;
    let mut run_start = i;
    // Each stop is an ASCII quote or backslash, so every cut below falls between characters,
    // whatever the text: salvage reads strings out of broken JSON.
    while let Some(stop) = quote_or_backslash(bytes, i) {
        out.push_str(text.get(run_start..stop).unwrap_or_default());
        if bytes[stop] == b'"' {
            return stop + 1;
        }
        let Some(&esc) = bytes.get(stop + 1) else { return bytes.len() };
        i = stop + 2;
        match esc {
            b'n' => out.push('\n'),
            b't' => out.push('\t'),
            b'r' => out.push('\r'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'u' => {
                let (c, used) = unicode_escape(bytes, i);
                out.push(c);
                i += used;
            }
            c if c.is_ascii() => out.push(c as char),
            // Not JSON: a backslash before a character that is not ASCII. Keep the character
            // (stepping one byte into it once cut a string inside it, and panicked).
            _ => {
                let c = text.get(stop + 1..).and_then(|t| t.chars().next()).unwrap_or('\u{fffd}');
                out.push(c);
                i = stop + 1 + c.len_utf8();
            }
        }
        run_start = i;
    }
    out.push_str(text.get(run_start.min(bytes.len())..).unwrap_or_default());
    bytes.len()
}

/// The index of the next `"` or `\\` at or after `i`. Eight bytes at a time for the first few
/// words (most runs between escapes are short, and memchr's call costs more than such a run),
/// then memchr for a long run of plain text.
fn quote_or_backslash(b: &[u8], mut i: usize) -> Option<usize> {
    for _ in 0..4 {
        let Some(word) = swar::word(b, i) else { break };
        let stops = swar::zero_bytes(word ^ swar::splat(b'"')) | swar::zero_bytes(word ^ swar::splat(b'\\'));
        if stops != 0 {
            return Some(i + swar::first(stops));
        }
        i += 8;
    }
    memchr::memchr2(b'"', b'\\', b.get(i..)?).map(|n| i + n)
}

/// Decodes the hex digits of a `\u` escape at `i` (and a following low surrogate); returns
/// the character and the bytes consumed. Broken or lone surrogates become U+FFFD.
fn unicode_escape(bytes: &[u8], i: usize) -> (char, usize) {
    let hex = |at: usize| -> Option<u32> {
        let s = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
        u32::from_str_radix(s, 16).ok()
    };
    // A broken escape (in salvaged text) gives up its hex digits only.
    let Some(hi) = hex(i) else { return ('\u{fffd}', bytes[i.min(bytes.len())..].iter().take(4).take_while(|b| b.is_ascii_hexdigit()).count()) };
    if (0xD800..0xDC00).contains(&hi) && bytes.get(i + 4) == Some(&b'\\') && bytes.get(i + 5) == Some(&b'u') {
        if let Some(lo) = hex(i + 6).filter(|lo| (0xDC00..0xE000).contains(lo)) {
            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            return (char::from_u32(c).unwrap_or('\u{fffd}'), 10);
        }
    }
    (char::from_u32(hi).unwrap_or('\u{fffd}'), 4)
}


pub fn scalar_text(raw: Raw<'_>) -> Option<String> {
    let s = match json_type(raw) {
        JsonType::String => decode_str(raw)?.into_owned(),
        JsonType::Number | JsonType::Bool => raw.get().to_owned(),
        _ => return None,
    };
    let trimmed = s.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == s.len() {
        Some(s)
    } else {
        Some(trimmed.to_owned())
    }
}

pub fn scalar_f64(raw: Raw<'_>) -> Option<f64> {
    match json_type(raw) {
        JsonType::Number => raw.get().parse().ok(),
        // Azure writes some numbers as strings ("durationMs": "78") and usage counters as
        // one-element arrays ("promptTokens": [12]).
        JsonType::String => decode_str(raw)?.trim().parse().ok(),
        JsonType::Array => {
            let mut items = elements(raw)?;
            match (items.next(), items.next()) {
                (Some(one), None) => scalar_f64(one),
                _ => None,
            }
        }
        _ => None,
    }
    .filter(|v: &f64| v.is_finite())
}

pub fn scalar_i64(raw: Raw<'_>) -> Option<i64> {
    match json_type(raw) {
        JsonType::Number => {
            let s = raw.get();
            s.parse::<i64>().ok().or_else(|| {
                let f: f64 = s.parse().ok()?;
                (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64)
            })
        }
        _ => {
            let f = scalar_f64(raw)?;
            (f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64)
        }
    }
}

pub fn scalar_bool(raw: Raw<'_>) -> Option<bool> {
    match json_type(raw) {
        JsonType::Bool => Some(raw.get() == "true"),
        JsonType::String => match decode_str(raw)?.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        JsonType::Number => match raw.get() {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// The elements of a raw JSON array one at a time, without listing them (an array may be
/// long: a wrapper's records, a request's messages); `None` if `raw` is not an array.
pub fn elements(raw: Raw<'_>) -> Option<impl Iterator<Item = Raw<'_>>> {
    (json_type(raw) == JsonType::Array).then(|| raw.elements())
}

/// [`elements`] of a value that should be an array, none when it is absent or anything
/// else: what adapters walk a field with.
pub fn items<'a>(raw: impl Into<Option<Raw<'a>>>) -> impl Iterator<Item = Raw<'a>> {
    raw.into().and_then(elements).into_iter().flatten()
}

/// The one pass over a document: checks it against the JSON grammar as serde_json does
/// (lone surrogate escapes aside, which it accepts) and lists every value's place and key.
mod tape {
    use super::{key_bit, swar, Node, ESCAPED_KEY};

    /// Documents larger than this reserve room for as many nodes as they could hold.
    const LARGE_DOCUMENT: usize = 1 << 20;

    /// The key of the value about to be read, when it is in an object.
    #[derive(Default)]
    struct Key {
        start: u32,
        len: u32,
    }

    /// The nodes of `text`, or the byte offset where it stopped being JSON.
    pub(super) fn read(text: &str) -> Result<Vec<Node>, usize> {
        let b = text.as_bytes();
        if u32::try_from(b.len()).is_err() {
            return Err(0);
        }
        // Every node but the root's takes three bytes at least (`[],`), so a third of the
        // text's length is room enough. A large document reserves that at once: the untouched
        // part costs address space only, where growing by doubling held two copies at the
        // peak.
        let room = if b.len() > LARGE_DOCUMENT { b.len() / 3 + 1 } else { b.len() / 32 + 4 };
        let mut nodes: Vec<Node> = Vec::with_capacity(room);
        // The arrays and objects open around `i`: their nodes.
        let mut open: Vec<usize> = Vec::with_capacity(8);
        let mut key = Key::default();
        let mut i = skip_whitespace(b, 0);
        'value: loop {
            // A value starts at `i`.
            let start = i as u32;
            let Key { start: key_start, len: key_len } = std::mem::take(&mut key);
            let node = Node { start, key_start, key_len, ..Node::default() };
            match *b.get(i).ok_or(i)? {
                c @ (b'{' | b'[') => {
                    open.push(nodes.len());
                    nodes.push(node);
                    i = skip_whitespace(b, i + 1);
                    let object = c == b'{';
                    if b.get(i) != Some(if object { &b'}' } else { &b']' }) {
                        if object {
                            let last = nodes.len() - 1;
                            (key, i) = read_key(b, i, &mut nodes[last])?;
                        }
                        continue 'value;
                    }
                    // An empty container is complete here; the loop below closes it.
                }
                c => {
                    let escaped;
                    (i, escaped) = match c {
                        b'"' => string_end(b, i + 1)?,
                        b't' => (literal(b, i, b"true")?, false),
                        b'f' => (literal(b, i, b"false")?, false),
                        b'n' => (literal(b, i, b"null")?, false),
                        b'-' | b'0'..=b'9' => (number(b, i)?, false),
                        _ => return Err(i),
                    };
                    // A scalar in an array gets no node: arrays are walked over their text
                    // (see `Raw::elements`), and a long array of numbers would otherwise
                    // cost a node per two bytes of input.
                    let in_array = open.last().is_some_and(|&top| b[nodes[top].start as usize] == b'[');
                    if !in_array {
                        nodes.push(Node { end: i as u32, size: 1, flags: u32::from(escaped), ..node });
                    }
                }
            }
            // A value ended before `i`, or an empty container opened: close what ends here,
            // and find where the next value starts.
            loop {
                let Some(&top) = open.last() else {
                    // The document's value is complete: only whitespace may follow.
                    i = skip_whitespace(b, i);
                    return if i == b.len() { Ok(nodes) } else { Err(i) };
                };
                let object = b[nodes[top].start as usize] == b'{';
                i = skip_whitespace(b, i);
                match (b.get(i), object) {
                    (Some(b','), _) => {
                        i = skip_whitespace(b, i + 1);
                        if object {
                            (key, i) = read_key(b, i, &mut nodes[top])?;
                        }
                        continue 'value;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {}
                    _ => return Err(i),
                }
                i += 1;
                let size = (nodes.len() - top) as u32;
                nodes[top].end = i as u32;
                nodes[top].size = size;
                open.pop();
            }
        }
    }

    /// Reads the key at `i` and the colon after it, for a value of the object whose node is
    /// `object`; returns the key and where its value starts.
    fn read_key(b: &[u8], i: usize, object: &mut Node) -> Result<(Key, usize), usize> {
        if b.get(i) != Some(&b'"') {
            return Err(i);
        }
        let (end, escaped) = string_end(b, i + 1)?;
        let len = (end - i - 2) as u32;
        object.flags |= if escaped { u32::MAX } else { key_bit(&b[i + 1..end - 1]) };
        let key = Key { start: (i + 1) as u32, len: if escaped { len | ESCAPED_KEY } else { len } };
        let colon = skip_whitespace(b, end);
        if b.get(colon) != Some(&b':') {
            return Err(colon);
        }
        Ok((key, skip_whitespace(b, colon + 1)))
    }

    fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
        while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    }

    fn literal(b: &[u8], i: usize, word: &[u8]) -> Result<usize, usize> {
        if b.get(i..i + word.len()) == Some(word) {
            Ok(i + word.len())
        } else {
            Err(i)
        }
    }

    /// The end of the number at `i`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(b: &[u8], mut i: usize) -> Result<usize, usize> {
        let digits = |mut i: usize| -> (usize, usize) {
            let from = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            (i, i - from)
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(i).0,
            _ => return Err(i),
        }
        if b.get(i) == Some(&b'.') {
            let (end, n) = digits(i + 1);
            if n == 0 {
                return Err(end);
            }
            i = end;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let (end, n) = digits(i);
            if n == 0 {
                return Err(end);
            }
            i = end;
        }
        Ok(i)
    }

    /// Where the string whose text starts at `i` ends (after its closing quote), and whether
    /// it holds an escape. Eight bytes at a time up to the next quote, backslash or control
    /// character: most strings, keys above all, are short, and a call per stop (memchr's)
    /// cost more than the stop itself.
    fn string_end(b: &[u8], mut i: usize) -> Result<(usize, bool), usize> {
        let mut escaped = false;
        loop {
            while let Some(w) = swar::word(b, i) {
                let stops = swar::zero_bytes(w ^ swar::splat(b'"')) | swar::zero_bytes(w ^ swar::splat(b'\\')) | swar::below_space(w);
                if stops != 0 {
                    i += swar::first(stops);
                    break;
                }
                i += 8;
            }
            match *b.get(i).ok_or(i)? {
                b'"' => return Ok((i + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    match *b.get(i + 1).ok_or(i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => {
                            let hex = b.get(i + 2..i + 6).ok_or(b.len())?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(i + 2);
                            }
                            i += 6;
                        }
                        _ => return Err(i + 1),
                    }
                }
                c if c < 0x20 => return Err(i),
                _ => i += 1,
            }
        }
    }
}

/// A value that may be nested JSON or a string holding JSON (`properties`, `properties_s`,
/// `requestBody`, `Claims`...). Owns the decoded document when it had to decode one.
pub struct Nested<'a> {
    raw: Option<Raw<'a>>,
    decoded: Option<Doc<'static>>,
}

impl<'a> Nested<'a> {
    pub fn new(raw: Option<Raw<'a>>) -> Nested<'a> {
        let decoded = raw.and_then(|r| {
            let s = decode_str(r)?;
            let t = s.trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                Doc::parse_owned(s.into_owned()).ok()
            } else {
                None
            }
        });
        Nested { raw, decoded }
    }

    pub fn value(&self) -> Option<Raw<'_>> {
        match &self.decoded {
            Some(d) => Some(d.root()),
            None => self.raw,
        }
    }

    pub fn obj(&self) -> Option<Obj<'_>> {
        self.value().and_then(Obj::from_raw)
    }

    pub fn undecodable_text(&self) -> Option<Cow<'a, str>> {
        if self.decoded.is_some() {
            return None;
        }
        self.raw.and_then(decode_str).filter(|s| !s.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Doc<'_> {
        Doc::parse(text).unwrap()
    }

    #[test]
    fn an_exact_key_wins_over_an_earlier_one_in_another_case() {
        let d = doc(r#"{"Name":"first","name":"exact","NAME":"last"}"#);
        let o = d.object();
        assert_eq!(o.text(&["name"]).as_deref(), Some("exact"));
        assert_eq!(o.text(&["nAmE"]).as_deref(), Some("first"));
    }

    #[test]
    fn lookup_ignores_ascii_case_and_nulls() {
        let d = doc(r#"{"ResourceId":"/X","callerIpAddress":null,"n":"12"}"#);
        let o = d.object();
        assert_eq!(o.text(&["resourceId"]).as_deref(), Some("/X"));
        assert_eq!(o.text(&["callerIpAddress"]), None);
        assert_eq!(o.i64(&["n"]), Some(12));
    }

    #[test]
    fn keys_written_with_escapes_are_found_by_what_they_spell() {
        let d = doc(r#"{"a":{"x":1},"\u0074ime":"t","na\"me":"q","\u00e9t\u00e9":"summer","k":2}"#);
        let o = d.object();
        assert_eq!(o.text(&["time"]).as_deref(), Some("t"));
        assert_eq!(o.text(&["TIME"]).as_deref(), Some("t"));
        assert_eq!(o.text(&["na\"me"]).as_deref(), Some("q"));
        assert_eq!(o.text(&["\u{e9}t\u{e9}"]).as_deref(), Some("summer"));
        assert_eq!(o.i64(&["k"]), Some(2), "a value after an object and escaped keys");
        assert_eq!(o.keys().collect::<Vec<_>>(), ["a", "time", "na\"me", "\u{e9}t\u{e9}", "k"]);
    }

    #[test]
    fn nested_decodes_json_strings_and_keeps_broken_ones_as_text() {
        let d = doc(r#"{"p":"{\"a\":1}","q":{"a":2},"t":"{\"a\":"}"#);
        let o = d.object();
        assert_eq!(Nested::new(o.get("p")).obj().unwrap().i64(&["a"]), Some(1));
        assert_eq!(Nested::new(o.get("q")).obj().unwrap().i64(&["a"]), Some(2));
        let t = Nested::new(o.get("t"));
        assert!(t.obj().is_none());
        assert_eq!(t.undecodable_text().as_deref(), Some("{\"a\":"));
    }

    #[test]
    fn deep_nesting_is_read_without_recursion() {
        // serde_json steps over nested values without a depth limit, and so does the reader:
        // its open arrays and objects are a list, not a call stack.
        let deep = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n));
        let text = deep(200_000);
        let d = doc(&text);
        assert_eq!(elements(d.object().get("a").unwrap()).map(Iterator::count), Some(1));
        assert!(Doc::parse(&text[1..]).is_err());
    }

    #[test]
    fn errors_are_worded_by_serde_json() {
        let e = Doc::parse(r#"{"a":1,"b":"#).err().unwrap();
        assert_eq!((e.to_string().starts_with("EOF while parsing"), e.line(), e.column()), (true, 1, 11));
        let e = Doc::parse("{\"a\":1}\n x").err().unwrap();
        assert!(e.to_string().starts_with("trailing characters"), "{e}");
    }

    /// A JSON string literal for `s` that spells characters in every way JSON allows, chosen
    /// by `forms`: as themselves, as `\uXXXX` (surrogate pairs above the BMP), or `\/`.
    fn spell(s: &str, forms: &[u8]) -> String {
        let mut out = String::from("\"");
        for (i, c) in s.chars().enumerate() {
            let form = forms.get(i % forms.len().max(1)).copied().unwrap_or(0) % 3;
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' if form == 2 => out.push_str("\\/"),
                c if (c as u32) < 0x20 || form == 1 => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    proptest::proptest! {
        #[test]
        fn decoding_agrees_with_serde_json_on_every_valid_string(s in "\\PC{0,40}|[\"\\\\/\\x00-\\x1f a-z\u{e9}\u{1f600}]{0,80}", forms in proptest::collection::vec(0u8..3, 1..8)) {
            let literal = spell(&s, &forms);
            let d = doc(&literal);
            let by_serde: String = serde_json::from_str(&literal).unwrap();
            let ours = decode_str(d.root()).unwrap().into_owned();
            proptest::prop_assert_eq!(&ours, &by_serde);
            proptest::prop_assert_eq!(by_serde.as_str(), s.as_str());
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e9f64..1e9).prop_map(serde_json::Value::from),
            "[\"\\\\/\\x00-\\x1f a-z{}\\[\\],:\u{e9}\u{1f600}]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::vec(("[a-zA-Z\"\\\\{}:,\u{e9}]{0,6}", inner), 0..6).prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// Checks every value under `raw` against serde_json's reading of its text: each object's
    /// keys in order, each key found by `get` in any ASCII case, each element.
    fn agrees_with_serde(raw: Raw<'_>) -> Result<(), proptest::test_runner::TestCaseError> {
        let value: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        match json_type(raw) {
            JsonType::Object => {
                let obj = Obj::from_raw(raw).unwrap();
                let keys: Vec<String> = obj.keys().map(Cow::into_owned).collect();
                let expected: Vec<&String> = value.as_object().unwrap().keys().collect();
                proptest::prop_assert_eq!(keys.iter().collect::<Vec<_>>(), expected);
                for (k, child) in obj.entries() {
                    let v = &value[k.as_ref()];
                    proptest::prop_assert_eq!(&serde_json::from_str::<serde_json::Value>(child.get()).unwrap(), v);
                    let found = obj.get(&k).map(|r| serde_json::from_str::<serde_json::Value>(r.get()).unwrap());
                    proptest::prop_assert_eq!(found.as_ref(), (!v.is_null()).then_some(v));
                    let upper = k.to_ascii_uppercase();
                    proptest::prop_assert!(obj.get(&upper).is_some() || v.is_null() || keys.iter().any(|o| o != k.as_ref() && o.eq_ignore_ascii_case(&upper)), "{upper} not found");
                    agrees_with_serde(child)?;
                }
                proptest::prop_assert_eq!(obj.get("no such key"), None);
            }
            JsonType::Array => {
                let items: Vec<Raw<'_>> = elements(raw).unwrap().collect();
                let expected = value.as_array().unwrap();
                proptest::prop_assert_eq!(items.len(), expected.len());
                for (item, e) in items.iter().zip(expected) {
                    proptest::prop_assert_eq!(&serde_json::from_str::<serde_json::Value>(item.get()).unwrap(), e);
                    agrees_with_serde(*item)?;
                }
            }
            JsonType::String => {
                let decoded = decode_str(raw).unwrap();
                proptest::prop_assert_eq!(decoded.as_ref(), value.as_str().unwrap());
            }
            _ => proptest::prop_assert_eq!(&serde_json::from_str::<serde_json::Value>(raw.get()).unwrap(), &value),
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn reading_a_document_agrees_with_serde_json(v in json_value(), pretty in proptest::bool::ANY) {
            let document = serde_json::json!({"outer": v, "list": [v.clone(), 1, "x"]});
            let text = if pretty { serde_json::to_string_pretty(&document).unwrap() } else { document.to_string() };
            agrees_with_serde(doc(&text).root())?;
        }

        /// Valid documents cut, or with a byte changed, and text from JSON's own alphabet: the
        /// reader must accept exactly what serde_json accepts.
        #[test]
        fn the_reader_accepts_what_serde_json_accepts(v in json_value(), cut in 0usize..200, byte in 0usize..200, with in proptest::sample::select(b"{}[]\",:\\ 0-1.eE+truefalsn\x01u".to_vec()), noise in "[\\[\\]{}\",:\\\\ 0-9.eE+tfnrulas\u{e9}-]{0,24}") {
            let text = v.to_string();
            let mut mutated = text.clone().into_bytes();
            if !mutated.is_empty() {
                let at = byte % mutated.len();
                mutated[at] = with;
            }
            let mutated = String::from_utf8(mutated).unwrap_or_default();
            let cut_at = (0..=cut.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            for candidate in [&text[..cut_at], mutated.as_str(), noise.as_str()] {
                let by_serde = serde_json::from_str::<&serde_json::value::RawValue>(candidate).is_ok();
                proptest::prop_assert_eq!(Doc::parse(candidate).is_ok(), by_serde, "{:?}", candidate);
            }
        }
    }

    #[test]
    fn a_short_string_read_from_a_long_body_does_not_hold_the_body_size() {
        let body = format!(r#""role" {}"#, "x".repeat(1 << 20));
        let (s, end) = read_string(&body, 1);
        assert_eq!((s.as_str(), end), ("role", 6));
        assert!(s.capacity() < 1024, "salvage keeps many such strings: {} bytes reserved", s.capacity());
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        assert_eq!(read_string(r#"a\ud800b\udc00c"rest"#, 0), ("a\u{fffd}b\u{fffd}c".to_owned(), 16));
        let d = doc(r#"{"t":"a\ud800b"}"#);
        assert_eq!(d.object().text(&["t"]).as_deref(), Some("a\u{fffd}b"));
        // In keys too, at the top and below.
        let d = doc(r#"{"k\ud800":{"x\udc00y":1,"n":2},"b":3}"#);
        let o = d.object();
        assert_eq!(o.i64(&["b"]), Some(3));
        let inner = o.entries().next().and_then(|(_, raw)| Obj::from_raw(raw)).unwrap();
        assert_eq!((inner.keys().next().as_deref(), inner.i64(&["n"])), (Some("x\u{fffd}y"), Some(2)));
        assert_eq!(inner.i64(&["x\u{fffd}y"]), Some(1));
        assert!(Doc::parse(r#"{"k\ud800":1,"#).is_err(), "a broken document is still refused");
    }

    #[test]
    fn regression_salvage_of_a_backslash_before_a_non_ascii_character_does_not_panic() {
        // Broken JSON is salvaged string by string; an escape that is not JSON must not cut a
        // string inside a character.
        assert_eq!(read_string("a\\\u{e9}b\"", 0), ("a\u{e9}b".to_owned(), 6));
        assert_eq!(read_string("\\u1\u{e9}\u{1f600}x\"", 0), ("\u{fffd}\u{e9}\u{1f600}x".to_owned(), 11));
        assert_eq!(read_string("tail\\", 0), ("tail".to_owned(), 5));
    }

    proptest::proptest! {
        #[test]
        fn reading_any_string_body_never_panics(text in "[\"\\\\u0-9a-fA-F\u{e9}\u{1f600}x ]{0,40}", start in 0usize..8) {
            let start = (0..=start.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            let (_, end) = read_string(&text, start);
            proptest::prop_assert!(end <= text.len());
        }
    }

    #[test]
    fn usage_counters_as_single_element_arrays() {
        let d = doc(r#"{"promptTokens":[12],"x":[1,2]}"#);
        let o = d.object();
        assert_eq!(o.i64(&["promptTokens"]), Some(12));
        assert_eq!(o.i64(&["x"]), None);
    }
}
