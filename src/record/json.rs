//! Lazy, borrowed access to JSON objects whose field names vary in case across exports.
//!
//! Azure writes the same field as `resourceId`, `ResourceId` or `resourceid` depending on the
//! export path, and nests objects either as JSON or as JSON-encoded strings. Building a
//! `serde_json::Value` for every record would cost 3x the parse time, so an [`Obj`] keeps each
//! top-level value as a borrowed [`Raw`] and decodes only the fields an adapter asks for.
//! serde_json validates each document once; objects and arrays inside it are then only split.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object as a list of (key, raw value) pairs, borrowed from the source text.
#[derive(Debug, Clone, Default)]
pub struct Obj<'a> {
    entries: Vec<(Cow<'a, str>, Raw<'a>)>,
}

/// The text of one JSON value, borrowed from a document serde_json has validated. Only this
/// module makes one, from serde's `RawValue` or as a part of another, so the values inside it
/// can be found without checking, and scanning, every byte again: a request body's messages
/// used to be validated once per level they are nested in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    /// The value's JSON text.
    pub fn get(self) -> &'a str {
        self.0
    }

    /// Validates `text` as one JSON value.
    pub fn parse(text: &'a str) -> Result<Raw<'a>, serde_json::Error> {
        serde_json::from_str::<&RawValue>(text).map(Raw::from)
    }
}

impl<'a> From<&'a RawValue> for Raw<'a> {
    fn from(raw: &'a RawValue) -> Raw<'a> {
        Raw(raw.get())
    }
}

impl fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Raw({})", self.0)
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

/// A key. `BYTES` reads it as a byte string, for which serde_json accepts a lone surrogate
/// escape (`\ud800`, which the writer of any key can put there) as replacement characters; as
/// a string, such a key fails the whole document.
struct KeyStr<'a, const BYTES: bool>(Cow<'a, str>);

impl<'de, const BYTES: bool> Deserialize<'de> for KeyStr<'de, BYTES> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const BYTES: bool>;
        impl<'de, const BYTES: bool> Visitor<'de> for V<BYTES> {
            type Value = KeyStr<'de, BYTES>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(KeyStr(Cow::Owned(v)))
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(KeyStr(match std::str::from_utf8(v) {
                    Ok(s) => Cow::Borrowed(s),
                    Err(_) => Cow::Owned(String::from_utf8_lossy(v).into_owned()),
                }))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(KeyStr(Cow::Owned(String::from_utf8_lossy(v).into_owned())))
            }
        }
        if BYTES {
            d.deserialize_bytes(V::<BYTES>)
        } else {
            d.deserialize_str(V::<BYTES>)
        }
    }
}

/// An object's entries, with keys read as [`KeyStr`] reads them.
struct Entries<'a, const BYTES: bool>(Vec<(Cow<'a, str>, Raw<'a>)>);

impl<'de, const BYTES: bool> Deserialize<'de> for Entries<'de, BYTES> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const BYTES: bool>;
        impl<'de, const BYTES: bool> Visitor<'de> for V<BYTES> {
            type Value = Entries<'de, BYTES>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((k, v)) = map.next_entry::<KeyStr<'de, BYTES>, &'de RawValue>()? {
                    entries.push((k.0, Raw::from(v)));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(V::<BYTES>)
    }
}

impl<'a> Obj<'a> {
    /// Parses `text`, which must be one JSON object.
    pub fn parse(text: &'a str) -> Result<Obj<'a>, serde_json::Error> {
        // Keys are read as strings, which borrows them without checking their UTF-8 again; only
        // a document that fails is read once more with keys as bytes, so that a lone surrogate
        // in a key (a message's, a request body's: whoever wrote the JSON chose it) cannot
        // make a record, or the prompt in it, disappear. Its error is the first one.
        let entries = match serde_json::from_str::<Entries<false>>(text) {
            Ok(Entries(entries)) => entries,
            Err(strict) => serde_json::from_str::<Entries<true>>(text).map_err(|_| strict)?.0,
        };
        Ok(Obj { entries })
    }

    /// The entries of a raw value that is an object; `None` for any other type.
    pub fn from_raw(raw: Raw<'a>) -> Option<Obj<'a>> {
        if json_type(raw) == JsonType::Object {
            split::object(raw.0).map(|entries| Obj { entries })
        } else {
            None
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_ref())
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, Raw<'a>)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// The value of `key`, compared without regard to ASCII case.
    pub fn get(&self, key: &str) -> Option<Raw<'a>> {
        // An exact match wins over an earlier one that differs in case, which keeps `a`
        // distinct from `A` when a record really has both. One pass: adapters ask for many
        // names a record does not have.
        let mut folded = None;
        for (k, v) in &self.entries {
            if k.len() != key.len() {
                continue;
            }
            if k == key {
                folded = Some(*v);
                break;
            }
            if folded.is_none() && k.eq_ignore_ascii_case(key) {
                folded = Some(*v);
            }
        }
        folded.filter(|v| json_type(*v) != JsonType::Null)
    }

    /// The first of `keys` that is present and not null.
    pub fn get_any(&self, keys: &[&str]) -> Option<Raw<'a>> {
        keys.iter().find_map(|k| self.get(k))
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
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

/// Decodes a JSON string literal; `None` if `raw` is not a string.
pub fn decode_str(raw: Raw<'_>) -> Option<Cow<'_, str>> {
    if json_type(raw) != JsonType::String {
        return None;
    }
    let inner = &raw.get()[1..raw.get().len() - 1];
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    // The raw value was validated when its document was parsed, so this only unescapes; it
    // agrees with serde_json on every string serde_json accepts, and also reads lone
    // surrogates (`\ud800`), which truncating writers produce and an attacker can add on
    // purpose, as U+FFFD instead of losing the whole text. Bodies logged as JSON inside a
    // JSON string escape every quote: serde's decoder stopped at each one, at 4% of a scan.
    let mut out = String::with_capacity(inner.len());
    read_string_into(inner, 0, &mut out);
    Some(Cow::Owned(out))
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
    while i < bytes.len() {
        // Jump over plain text to the next quote or escape.
        match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
            Some(n) => i += n,
            None => break,
        }
        match bytes[i] {
            b'"' => {
                out.push_str(&text[run_start..i]);
                return i + 1;
            }
            b'\\' => {
                out.push_str(&text[run_start..i]);
                if i + 1 >= bytes.len() {
                    return bytes.len();
                }
                let esc = bytes[i + 1];
                i += 2;
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
                    other => out.push(other as char),
                }
                run_start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[run_start.min(bytes.len())..]);
    bytes.len()
}

/// Decodes the hex digits of a `\u` escape at `i` (and a following low surrogate); returns
/// the character and the bytes consumed. Broken or lone surrogates become U+FFFD.
fn unicode_escape(bytes: &[u8], i: usize) -> (char, usize) {
    let hex = |at: usize| -> Option<u32> {
        let s = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
        u32::from_str_radix(s, 16).ok()
    };
    let Some(hi) = hex(i) else { return ('\u{fffd}', bytes.len().saturating_sub(i).min(4)) };
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
            match array(raw)?.as_slice() {
                [one] => scalar_f64(*one),
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

/// The elements of a raw JSON array; `None` if `raw` is not an array.
pub fn array(raw: Raw<'_>) -> Option<Vec<Raw<'_>>> {
    if json_type(raw) != JsonType::Array {
        return None;
    }
    split::array(raw.0)
}

/// The characters JSON allows around values and between tokens.
pub const WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// Finding the values inside JSON that serde_json has validated: only where each ends is left
/// to find, and a string is skipped with memchr to its closing quote. Text that is not valid
/// JSON gives `None` or some split of it, never a panic.
mod split {
    use std::borrow::Cow;

    use super::{decode_str, Raw, WHITESPACE};

    fn is_whitespace(c: &u8) -> bool {
        WHITESPACE.contains(&char::from(*c))
    }

    fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
        while b.get(i).is_some_and(is_whitespace) {
            i += 1;
        }
        i
    }

    /// The index after the string whose opening quote is at `i`.
    fn string_end(b: &[u8], i: usize) -> Option<usize> {
        let mut j = i + 1;
        loop {
            j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
            if b[j] == b'"' {
                return Some(j + 1);
            }
            j += 2;
        }
    }

    /// The index after the value that starts at `i`.
    fn value_end(b: &[u8], i: usize) -> Option<usize> {
        match *b.get(i)? {
            b'"' => string_end(b, i),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut j = i;
                loop {
                    match *b.get(j)? {
                        b'"' => {
                            j = string_end(b, j)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => {
                let len = b[i..].iter().position(|c| matches!(c, b',' | b'}' | b']') || is_whitespace(c)).unwrap_or(b.len() - i);
                Some(i + len)
            }
        }
    }

    /// The value at `i` and the index after the separator that follows it (`close` ends the
    /// list: then the index is past the text).
    fn item<'a>(text: &'a str, i: usize, close: u8) -> Option<(Raw<'a>, Option<usize>)> {
        let b = text.as_bytes();
        let end = value_end(b, i)?;
        let raw = Raw(text.get(i..end)?);
        let next = skip_whitespace(b, end);
        match *b.get(next)? {
            b',' => Some((raw, Some(skip_whitespace(b, next + 1)))),
            c if c == close => Some((raw, None)),
            _ => None,
        }
    }

    pub(super) fn object(text: &str) -> Option<Vec<(Cow<'_, str>, Raw<'_>)>> {
        let b = text.as_bytes();
        let mut i = skip_whitespace(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i = skip_whitespace(b, i + 1);
        let mut entries = Vec::with_capacity(16);
        if b.get(i) == Some(&b'}') {
            return Some(entries);
        }
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(b, i)?;
            let key = decode_str(Raw(text.get(i..key_end)?))?;
            i = skip_whitespace(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let (value, next) = item(text, skip_whitespace(b, i + 1), b'}')?;
            entries.push((key, value));
            match next {
                Some(n) => i = n,
                None => return Some(entries),
            }
        }
    }

    pub(super) fn array(text: &str) -> Option<Vec<Raw<'_>>> {
        let b = text.as_bytes();
        let mut i = skip_whitespace(b, 0);
        if b.get(i) != Some(&b'[') {
            return None;
        }
        i = skip_whitespace(b, i + 1);
        let mut items = Vec::new();
        if b.get(i) == Some(&b']') {
            return Some(items);
        }
        loop {
            let (value, next) = item(text, i, b']')?;
            items.push(value);
            match next {
                Some(n) => i = n,
                None => return Some(items),
            }
        }
    }
}

/// A value that may be nested JSON or a string holding JSON (`properties`, `properties_s`,
/// `requestBody`, `Claims`...). Owns the decoded text when it had to decode one.
pub struct Nested<'a> {
    raw: Option<Raw<'a>>,
    decoded: Option<Box<RawValue>>,
}

impl<'a> Nested<'a> {
    /// Wraps `raw`; when it is a string that holds a JSON object or array, decodes it.
    pub fn new(raw: Option<Raw<'a>>) -> Nested<'a> {
        let decoded = raw.and_then(|r| {
            let s = decode_str(r)?;
            let t = s.trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                // `from_string` validates the text as JSON.
                RawValue::from_string(s.into_owned()).ok()
            } else {
                None
            }
        });
        Nested { raw, decoded }
    }

    /// The JSON value, decoded from its string form when it was one.
    pub fn value(&self) -> Option<Raw<'_>> {
        match &self.decoded {
            Some(d) => Some(Raw::from(&**d)),
            None => self.raw,
        }
    }

    pub fn obj(&self) -> Option<Obj<'_>> {
        self.value().and_then(Obj::from_raw)
    }

    /// True when the field was a string that did not decode to JSON (truncated bodies).
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

    #[test]
    fn an_exact_key_wins_over_an_earlier_one_in_another_case() {
        let o = Obj::parse(r#"{"Name":"first","name":"exact","NAME":"last"}"#).unwrap();
        assert_eq!(o.text(&["name"]).as_deref(), Some("exact"));
        assert_eq!(o.text(&["nAmE"]).as_deref(), Some("first"));
    }

    #[test]
    fn lookup_ignores_ascii_case_and_nulls() {
        let o = Obj::parse(r#"{"ResourceId":"/X","callerIpAddress":null,"n":"12"}"#).unwrap();
        assert_eq!(o.text(&["resourceId"]).as_deref(), Some("/X"));
        assert_eq!(o.text(&["callerIpAddress"]), None);
        assert_eq!(o.i64(&["n"]), Some(12));
    }

    #[test]
    fn nested_decodes_json_strings_and_keeps_broken_ones_as_text() {
        let o = Obj::parse(r#"{"p":"{\"a\":1}","q":{"a":2},"t":"{\"a\":"}"#).unwrap();
        assert_eq!(Nested::new(o.get("p")).obj().unwrap().i64(&["a"]), Some(1));
        assert_eq!(Nested::new(o.get("q")).obj().unwrap().i64(&["a"]), Some(2));
        let t = Nested::new(o.get("t"));
        assert!(t.obj().is_none());
        assert_eq!(t.undecodable_text().as_deref(), Some("{\"a\":"));
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
        fn decoding_agrees_with_serde_json_on_every_valid_string(s in "\\PC{0,40}|[\"\\\\/\\x00-\\x1f a-z\u{e9}\u{1f600}]{0,40}", forms in proptest::collection::vec(0u8..3, 1..8)) {
            let literal = spell(&s, &forms);
            let raw = Raw::parse(&literal).unwrap();
            let by_serde: String = serde_json::from_str(&literal).unwrap();
            let ours = decode_str(raw).unwrap().into_owned();
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
                proptest::collection::vec(("[a-z\"\\\\{}:,]{0,6}", inner), 0..6).prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn splitting_a_validated_object_agrees_with_serde_json(v in json_value(), pretty in proptest::bool::ANY) {
            let doc = serde_json::json!({"outer": v, "list": [v.clone(), 1, "x"]});
            let text = if pretty { serde_json::to_string_pretty(&doc).unwrap() } else { doc.to_string() };
            let by_serde = Obj::parse(&text).unwrap();
            let split = Obj::from_raw(Raw::parse(&text).unwrap()).unwrap();
            proptest::prop_assert_eq!(format!("{:?}", split.entries), format!("{:?}", by_serde.entries));
            // Every nested object and array splits as serde_json reads it.
            let mut stack: Vec<Raw> = split.entries().map(|(_, raw)| raw).collect();
            while let Some(raw) = stack.pop() {
                let value: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
                match json_type(raw) {
                    JsonType::Object => {
                        let obj = Obj::from_raw(raw).unwrap();
                        let keys: Vec<&str> = obj.keys().collect();
                        let expected: Vec<&String> = value.as_object().unwrap().keys().collect();
                        proptest::prop_assert_eq!(keys.len(), expected.len());
                        for (k, raw) in obj.entries() {
                            proptest::prop_assert_eq!(&serde_json::from_str::<serde_json::Value>(raw.get()).unwrap(), &value[k]);
                            stack.push(raw);
                        }
                    }
                    JsonType::Array => {
                        let items = array(raw).unwrap();
                        let expected = value.as_array().unwrap();
                        proptest::prop_assert_eq!(items.len(), expected.len());
                        for (raw, e) in items.iter().zip(expected) {
                            proptest::prop_assert_eq!(&serde_json::from_str::<serde_json::Value>(raw.get()).unwrap(), e);
                            stack.push(*raw);
                        }
                    }
                    _ => {}
                }
            }
        }

        #[test]
        fn splitting_any_text_never_panics(text in "[\\PC\"\\\\{}\\[\\],: ]{0,40}") {
            let _ = split::object(&text);
            let _ = split::array(&text);
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
        if let Ok(o) = Obj::parse(r#"{"t":"a\ud800b"}"#) {
            assert_eq!(o.text(&["t"]).as_deref(), Some("a\u{fffd}b"));
        }
        // In keys too, at the top (serde reads the keys) and below (the splitter does).
        let o = Obj::parse(r#"{"k\ud800":{"x\udc00y":1,"n":2},"b":3}"#).unwrap();
        assert_eq!(o.i64(&["b"]), Some(3));
        let inner = o.entries().next().and_then(|(_, raw)| Obj::from_raw(raw)).unwrap();
        assert_eq!((inner.keys().next(), inner.i64(&["n"])), (Some("x\u{fffd}y"), Some(2)));
        assert!(Obj::parse(r#"{"k\ud800":1,"#).is_err(), "a broken document is still refused");
    }

    #[test]
    fn usage_counters_as_single_element_arrays() {
        let o = Obj::parse(r#"{"promptTokens":[12],"x":[1,2]}"#).unwrap();
        assert_eq!(o.i64(&["promptTokens"]), Some(12));
        assert_eq!(o.i64(&["x"]), None);
    }
}
