//! Framing: turns the lines of one input into JSON texts ("frames"), whatever the container.
//!
//! The container is decided per input from its first non-blank line, never from the file
//! name: a line that is complete JSON means JSON Lines (each line may itself be a
//! `{"records":[...]}` or `{"value":[...]}` wrapper or an array, expanded later); a line that
//! opens a JSON value without closing it means a pretty-printed document, whose elements are
//! streamed one by one by [`DocScanner`] so a huge document never sits in memory whole.
//!
//! Every physical line is counted exactly once: blank (skipped), owned by a frame (parsed or
//! rejected with the frame), or structural (envelope punctuation of a document, parsed).

use std::ops::Range;

use crate::record::RejectReason;

use super::lines::Line;

/// One JSON text to parse, or a line that was rejected before parsing.
#[derive(Debug, Clone)]
pub struct Frame {
    /// 1-based line where the frame starts.
    pub line: u64,
    /// Physical lines this frame accounts for (0 when it shares its line with another frame).
    pub owned_lines: u32,
    pub body: FrameBody,
    /// The last line of the input, with no newline after it: a parse failure here means the
    /// writer was still appending (`truncated_line`), not corruption.
    pub unterminated: bool,
}

#[derive(Debug, Clone)]
pub enum FrameBody {
    /// A byte range in the batch arena holding valid UTF-8 JSON text.
    Json(Range<usize>),
    Rejected { reason: RejectReason, detail: String },
}

/// Line-level counts a batch carries besides its frames.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineCounts {
    pub skipped: u64,
    pub structural: u64,
    /// Lines whose invalid UTF-8 was replaced with U+FFFD before parsing.
    pub repaired_utf8: u64,
    /// Lines from which NUL bytes were removed.
    pub nul_stripped: u64,
}

/// Frames of one input in arrival order, with the text they point into.
#[derive(Debug, Default)]
pub struct FrameBatch {
    /// The frames' text, back to back: only UTF-8 is stored (lines are repaired on the way
    /// in), so reading a frame needs no second validation.
    pub arena: String,
    pub frames: Vec<Frame>,
    pub counts: LineCounts,
    /// (line, stream offset where it starts) for the batch's lines, in order: where an
    /// incremental scan must resume to read a row again.
    pub line_offsets: Vec<(u64, u64)>,
}

impl FrameBatch {
    /// The stream offset where `line` starts, when the batch saw it.
    pub fn offset_of(&self, line: u64) -> Option<u64> {
        let i = self.line_offsets.partition_point(|(l, _)| *l < line);
        self.line_offsets.get(i).filter(|(l, _)| *l == line).map(|(_, o)| *o)
    }

    pub fn text(&self, range: &Range<usize>) -> &str {
        self.arena.get(range.clone()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.counts == LineCounts::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Waiting for the first non-blank line (of the input, or after a document ended).
    Sniff,
    JsonLines,
    Document,
}

/// Frames one input, line by line.
pub struct Framer {
    mode: Mode,
    doc: DocScanner,
    max_record: usize,
    scratch: Vec<u8>,
}

impl Framer {
    pub fn new(max_record_bytes: usize) -> Framer {
        Framer { mode: Mode::Sniff, doc: DocScanner::new(max_record_bytes), max_record: max_record_bytes, scratch: Vec::new() }
    }

    /// Adds one line to `batch`.
    pub fn push_line(&mut self, line: Line<'_>, batch: &mut FrameBatch) {
        let (no, raw, terminated) = match line {
            Line::Text { no, bytes, terminated } => (no, bytes, terminated),
            Line::TooLong { no, len, terminated } => {
                if self.mode == Mode::Document {
                    self.mode = Mode::JsonLines;
                    if let Some(e) = self.doc.elem.as_mut() {
                        // The element loses this line with itself.
                        e.owned += 1;
                        let detail = format!("line {no} is {len} bytes, over --max-line-bytes {}", self.max_record);
                        self.doc.abort(batch, RejectReason::LineTooLong, detail);
                        return;
                    }
                    self.doc.reset();
                }
                batch.frames.push(Frame {
                    line: no,
                    owned_lines: 1,
                    body: FrameBody::Rejected {
                        reason: RejectReason::LineTooLong,
                        detail: format!("{len} bytes, over --max-line-bytes {}", self.max_record),
                    },
                    unterminated: !terminated,
                });
                return;
            }
        };
        let text = clean_line(raw, &mut self.scratch, &mut batch.counts);
        if text.trim().is_empty() {
            batch.counts.skipped += 1;
            return;
        }
        if self.mode == Mode::Sniff {
            self.mode = if opens_document(text) { Mode::Document } else { Mode::JsonLines };
        }
        match self.mode {
            Mode::Document if self.doc.is_cut_off_by(text) => {
                // A torn record opened the "document"; the complete record after it shows the
                // input is JSON Lines. Only the torn lines are lost, not the records after them.
                let detail = format!("the JSON value is cut off by a complete record at line {no}");
                self.doc.abort(batch, RejectReason::InvalidJson, detail);
                self.mode = Mode::JsonLines;
                push_json_line(no, text, !terminated, batch);
            }
            Mode::Document => {
                match self.doc.push_line(no, text, !terminated, batch) {
                    DocState::InProgress => {}
                    DocState::Finished => self.mode = Mode::Sniff,
                    DocState::Broken => self.mode = Mode::JsonLines,
                }
            }
            _ => push_json_line(no, text, !terminated, batch),
        }
    }

    /// True while a pretty-printed JSON document is open (its end not yet read).
    pub fn in_document(&self) -> bool {
        self.mode == Mode::Document
    }

    /// Ends the input: a document still open is reported as truncated.
    pub fn finish(&mut self, last_line: u64, batch: &mut FrameBatch) {
        if self.mode == Mode::Document {
            let detail = format!("the JSON document is still open at its last line {last_line}");
            self.doc.abort(batch, RejectReason::TruncatedLine, detail);
        }
        self.mode = Mode::Sniff;
    }
}

fn push_json_line(no: u64, text: &str, unterminated: bool, batch: &mut FrameBatch) {
    let start = batch.arena.len();
    batch.arena.push_str(text);
    batch.frames.push(Frame { line: no, owned_lines: 1, body: FrameBody::Json(start..batch.arena.len()), unterminated });
}

/// Frames a whole input held in memory into one batch: for tests and fuzzing. The scan frames
/// as it reads, in bounded batches (`pipeline`).
pub fn frame_all(data: &[u8], max_line: usize) -> FrameBatch {
    let mut reader = super::lines::LineReader::new(data, max_line);
    let mut framer = Framer::new(max_line);
    let mut batch = FrameBatch::default();
    let mut last = 0;
    while let Some(line) = reader.next_line() {
        let (Line::Text { no, .. } | Line::TooLong { no, .. }) = line;
        last = no;
        framer.push_line(line, &mut batch);
    }
    framer.finish(last, &mut batch);
    batch
}

/// The line as text, with NUL bytes removed and invalid UTF-8 repaired (in `scratch` when it
/// had to change anything).
fn clean_line<'a>(raw: &'a [u8], scratch: &'a mut Vec<u8>, counts: &mut LineCounts) -> &'a str {
    let has_nul = memchr::memchr(0, raw).is_some();
    if !has_nul {
        if let Ok(text) = std::str::from_utf8(raw) {
            return text;
        }
    }
    scratch.clear();
    if has_nul {
        // NULs cannot appear raw in JSON; they come from preallocated or torn blob writes.
        counts.nul_stripped += 1;
        scratch.extend(raw.iter().copied().filter(|&b| b != 0));
    } else {
        scratch.extend_from_slice(raw);
    }
    if std::str::from_utf8(scratch).is_err() {
        // Body-size caps cut multi-byte characters in half; repair rather than drop the record.
        counts.repaired_utf8 += 1;
        let repaired = String::from_utf8_lossy(scratch).into_owned();
        *scratch = repaired.into_bytes();
    }
    std::str::from_utf8(scratch).unwrap_or_default()
}

/// True when `line` opens a JSON value it does not close (a pretty-printed document), rather
/// than being a complete value or a corrupt line.
fn opens_document(line: &str) -> bool {
    let t = line.trim();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return false;
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok() {
        return false;
    }
    let mut probe = DocScanner::new(0);
    probe.probe_prefix(t)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Object,
    Array,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    ValueOrEnd,
    Key,
    KeyOrEnd,
    Colon,
    CommaOrEnd,
}

#[derive(Debug, PartialEq, Eq)]
enum DocState {
    InProgress,
    Finished,
    Broken,
}

/// Keys a list envelope may carry besides its list.
const ENVELOPE_KEYS: &[&str] = &["nextlink", "@odata.nextlink", "@odata.context", "count"];
const MAX_DEPTH: usize = 4096;

/// An element being collected.
struct Element {
    line: u64,
    owned: u32,
    bytes: Vec<u8>,
    oversize: bool,
    /// Depth at which the element started (its end brings the depth back here).
    depth: usize,
}

/// A byte-level JSON structure scanner that streams the elements of a document: the items of
/// a top-level array, the items of a top-level `records`/`value` list, or a whole top-level
/// object. It checks the grammar as it goes, so a JSON Lines file that merely starts with a
/// broken line falls back to line mode instead of being swallowed.
struct DocScanner {
    max_record: usize,
    stack: Vec<Container>,
    expect: Expect,
    in_string: bool,
    in_key: bool,
    escape: bool,
    in_scalar: bool,
    /// The depth whose values are elements, when a list is being streamed.
    elem_depth: Option<usize>,
    elem: Option<Element>,
    /// The last key read at depth 1 of a top-level object, to spot a `records`/`value` list.
    key: Vec<u8>,
    /// Every depth-1 key so far was an envelope key: the object may still be a list wrapper.
    envelope_only: bool,
    /// The top-level value is an object being collected as one element.
    top_object: bool,
}

impl DocScanner {
    fn new(max_record: usize) -> DocScanner {
        DocScanner {
            max_record,
            stack: Vec::new(),
            expect: Expect::Value,
            in_string: false,
            in_key: false,
            escape: false,
            in_scalar: false,
            elem_depth: None,
            elem: None,
            key: Vec::new(),
            envelope_only: true,
            top_object: false,
        }
    }

    fn reset(&mut self) {
        *self = DocScanner::new(self.max_record);
    }

    /// Whether `line`, one whole JSON object or array, cannot belong to this document where it
    /// stands. Pretty-printers put a whole value on its own line only as a list item; after a
    /// key or where a key is due, it is a JSON Lines record following a torn one.
    fn is_cut_off_by(&self, line: &str) -> bool {
        let t = line.trim();
        let whole_shape = (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']'));
        let awaits_item = self.top() == Some(Container::Array) && matches!(self.expect, Expect::Value | Expect::ValueOrEnd);
        whole_shape
            && !self.in_string
            && !self.stack.is_empty()
            && !awaits_item
            && serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok()
    }

    /// Whether `line` is a grammatical prefix of a JSON value that stays open at its end.
    fn probe_prefix(&mut self, line: &str) -> bool {
        for &b in line.as_bytes() {
            if self.step(b).is_err() {
                return false;
            }
        }
        !self.in_string && !self.stack.is_empty()
    }

    fn push_line(&mut self, no: u64, line: &str, last: bool, batch: &mut FrameBatch) -> DocState {
        let bytes = line.as_bytes();
        let mut claimed = false;
        if let Some(e) = self.elem.as_mut() {
            e.owned += 1;
            claimed = true;
        }
        let mut seg_start = 0usize;
        for (i, &b) in bytes.iter().enumerate() {
            // A scalar ends at the delimiter after it, which is not part of it.
            if self.in_scalar && !is_scalar_byte(b) {
                self.in_scalar = false;
                self.value_done();
                self.complete_if_done(&bytes[seg_start..i], batch, last);
            }
            if self.is_envelope_list_start(b) {
                // The top-level object is a wrapper: stop collecting it, stream its list. The
                // lines it had claimed are envelope lines.
                self.top_object = false;
                self.elem_depth = Some(2);
                batch.counts.structural += self.elem.take().map_or(0, |e| u64::from(e.owned));
            }
            if self.elem.is_none() && !self.in_string && !self.in_scalar {
                match self.element_start(b) {
                    ElementStart::No => {}
                    ElementStart::Yes => {
                        self.elem = Some(Element {
                            line: no,
                            owned: u32::from(!claimed),
                            bytes: Vec::new(),
                            oversize: false,
                            depth: self.stack.len(),
                        });
                        claimed = true;
                        seg_start = i;
                    }
                }
            }
            if let Err(msg) = self.step(b) {
                if !claimed {
                    batch.frames.push(Frame {
                        line: no,
                        owned_lines: 1,
                        body: FrameBody::Rejected { reason: RejectReason::InvalidJson, detail: format!("{msg} at line {no}") },
                        unterminated: last,
                    });
                }
                self.abort(batch, RejectReason::InvalidJson, format!("{msg} at line {no}"));
                return DocState::Broken;
            }
            if !self.in_scalar {
                self.complete_if_done(&bytes[seg_start..=i], batch, last);
            }
            if self.stack.is_empty() && self.expect == Expect::CommaOrEnd && !self.in_scalar {
                // The top-level value closed; what follows is sniffed afresh.
                let rest = line[i + 1..].trim();
                self.reset();
                if !rest.is_empty() {
                    let detail = format!("more data after the end of the JSON document at line {no}");
                    batch.frames.push(Frame {
                        line: no,
                        owned_lines: u32::from(!claimed),
                        body: FrameBody::Rejected { reason: RejectReason::InvalidJson, detail },
                        unterminated: last,
                    });
                    return DocState::Finished;
                }
                if !claimed {
                    batch.counts.structural += 1;
                }
                return DocState::Finished;
            }
        }
        if self.in_scalar {
            // A line break ends a number or literal too.
            self.in_scalar = false;
            self.value_done();
            self.complete_if_done(&bytes[seg_start..], batch, last);
        }
        if self.elem.is_some() {
            self.append(&bytes[seg_start..]);
            self.append(b"\n");
        }
        if !claimed {
            batch.counts.structural += 1;
        }
        DocState::InProgress
    }

    /// Emits the element in progress if the value that just ended was the element itself.
    fn complete_if_done(&mut self, tail: &[u8], batch: &mut FrameBatch, last: bool) {
        let done = matches!(&self.elem, Some(e) if !self.in_string && self.stack.len() == e.depth && self.expect == Expect::CommaOrEnd);
        if done {
            self.append(tail);
            self.emit(batch, last);
        }
    }

    /// A `[` opening the `records`/`value` member of a top-level object that has had only
    /// envelope members so far.
    fn is_envelope_list_start(&self, b: u8) -> bool {
        b == b'['
            && self.top_object
            && self.envelope_only
            && !self.in_string
            && !self.in_scalar
            && self.stack.len() == 1
            && self.expect == Expect::Value
            && (self.key.eq_ignore_ascii_case(b"records") || self.key.eq_ignore_ascii_case(b"value"))
    }

    fn element_start(&mut self, b: u8) -> ElementStart {
        if !matches!(self.expect, Expect::Value | Expect::ValueOrEnd) || !starts_value(b) {
            return ElementStart::No;
        }
        let depth = self.stack.len();
        if depth == 0 {
            // A top-level array streams its items; a top-level object is one element unless
            // it turns out to be a list envelope.
            if b == b'{' {
                self.top_object = true;
                return ElementStart::Yes;
            }
            if b == b'[' {
                self.elem_depth = Some(1);
            }
            return ElementStart::No;
        }
        if self.elem_depth == Some(depth) {
            ElementStart::Yes
        } else {
            ElementStart::No
        }
    }

    fn append(&mut self, seg: &[u8]) {
        let max = self.max_record;
        if let Some(e) = self.elem.as_mut() {
            if e.oversize {
                return;
            }
            if e.bytes.len() + seg.len() > max {
                e.oversize = true;
                e.bytes = Vec::new();
                return;
            }
            e.bytes.extend_from_slice(seg);
        }
    }

    fn emit(&mut self, batch: &mut FrameBatch, last: bool) {
        let Some(e) = self.elem.take() else { return };
        let body = if e.oversize {
            FrameBody::Rejected {
                reason: RejectReason::LineTooLong,
                detail: format!("document element over --max-line-bytes {}", self.max_record),
            }
        } else {
            let start = batch.arena.len();
            // Elements are cut from repaired lines at JSON punctuation: valid UTF-8 already.
            batch.arena.push_str(&String::from_utf8_lossy(&e.bytes));
            FrameBody::Json(start..batch.arena.len())
        };
        batch.frames.push(Frame { line: e.line, owned_lines: e.owned, body, unterminated: last });
    }

    /// Gives up on the current document: the element in progress (if any) is rejected.
    fn abort(&mut self, batch: &mut FrameBatch, reason: RejectReason, detail: String) {
        if let Some(e) = self.elem.take() {
            batch.frames.push(Frame {
                line: e.line,
                owned_lines: e.owned,
                body: FrameBody::Rejected { reason, detail },
                unterminated: false,
            });
        }
        self.reset();
    }

    /// Advances the grammar by one byte.
    fn step(&mut self, b: u8) -> Result<(), String> {
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.in_key {
                    self.in_key = false;
                    self.expect = Expect::Colon;
                } else {
                    self.value_done();
                }
            } else if self.in_key && self.stack.len() == 1 && self.key.len() < 32 {
                self.key.push(b);
            }
            return Ok(());
        }
        if self.in_scalar {
            if is_scalar_byte(b) {
                return Ok(());
            }
            self.in_scalar = false;
            self.value_done();
        }
        if b.is_ascii_whitespace() {
            return Ok(());
        }
        match (self.expect, b) {
            (Expect::Value | Expect::ValueOrEnd, b'{') => self.open(Container::Object)?,
            (Expect::Value | Expect::ValueOrEnd, b'[') => self.open(Container::Array)?,
            (Expect::Value | Expect::ValueOrEnd, b'"') => self.in_string = true,
            (Expect::ValueOrEnd | Expect::CommaOrEnd, b']') if self.top() == Some(Container::Array) => self.close(),
            (Expect::KeyOrEnd | Expect::CommaOrEnd, b'}') if self.top() == Some(Container::Object) => self.close(),
            (Expect::Key | Expect::KeyOrEnd, b'"') => {
                self.in_string = true;
                self.in_key = true;
                if self.stack.len() == 1 {
                    self.key.clear();
                }
            }
            (Expect::Colon, b':') => self.expect = Expect::Value,
            (Expect::CommaOrEnd, b',') if !self.stack.is_empty() => {
                self.expect = if self.top() == Some(Container::Object) { Expect::Key } else { Expect::Value };
            }
            (Expect::Value | Expect::ValueOrEnd, c) if starts_value(c) => self.in_scalar = true,
            (_, c) => return Err(format!("unexpected {:?} in JSON document", c as char)),
        }
        Ok(())
    }

    fn top(&self) -> Option<Container> {
        self.stack.last().copied()
    }

    fn open(&mut self, c: Container) -> Result<(), String> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!("JSON nested deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(c);
        self.expect = if c == Container::Object { Expect::KeyOrEnd } else { Expect::ValueOrEnd };
        Ok(())
    }

    fn close(&mut self) {
        self.stack.pop();
        if self.elem_depth.is_some_and(|d| self.stack.len() < d) {
            self.elem_depth = None;
        }
        self.value_done();
    }

    fn value_done(&mut self) {
        if self.stack.len() == 1 && self.top() == Some(Container::Object) {
            // A depth-1 member other than the envelope's own means this is a record.
            let key = String::from_utf8_lossy(&self.key).to_ascii_lowercase();
            if !ENVELOPE_KEYS.contains(&key.as_str()) {
                self.envelope_only = false;
            }
        }
        self.expect = Expect::CommaOrEnd;
    }
}

enum ElementStart {
    No,
    Yes,
}

fn starts_value(b: u8) -> bool {
    matches!(b, b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
}

fn is_scalar_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `input` and renders each frame as `line/owned:text` or `line/owned!reason`.
    fn frames(input: &str) -> (Vec<String>, LineCounts) {
        let batch = frame_all(input.as_bytes(), 1 << 20);
        let out = batch
            .frames
            .iter()
            .map(|f| match &f.body {
                FrameBody::Json(r) => format!("{}/{}:{}", f.line, f.owned_lines, batch.text(r).replace('\n', "⏎")),
                FrameBody::Rejected { reason, .. } => format!("{}/{}!{}", f.line, f.owned_lines, reason),
            })
            .collect();
        (out, batch.counts)
    }

    /// Physical lines the frames and counts account for.
    fn accounted(input: &str) -> u64 {
        let batch = frame_all(input.as_bytes(), 1 << 20);
        batch.frames.iter().map(|f| u64::from(f.owned_lines)).sum::<u64>() + batch.counts.skipped + batch.counts.structural
    }

    #[test]
    fn json_lines_one_frame_per_line() {
        let (f, c) = frames("{\"a\":1}\n\n{\"records\":[{\"b\":2}]}\n");
        assert_eq!(f, vec!["1/1:{\"a\":1}", "3/1:{\"records\":[{\"b\":2}]}"]);
        assert_eq!(c.skipped, 1);
    }

    #[test]
    fn pretty_printed_array_streams_items() {
        let doc = "[\n  {\n    \"a\": 1\n  },\n  {\"b\": [1, 2]}, {\"c\": \"x]\"}\n]\n";
        let (f, c) = frames(doc);
        assert_eq!(f, vec!["2/3:{⏎    \"a\": 1⏎  }", "5/1:{\"b\": [1, 2]}", "5/0:{\"c\": \"x]\"}"]);
        assert_eq!(c.structural, 2);
        assert_eq!(accounted(doc), 6);
    }

    #[test]
    fn records_envelope_streams_its_list() {
        let doc = "{\n  \"records\": [\n    {\"a\": 1},\n    {\"b\": 2}\n  ]\n}\n";
        let (f, c) = frames(doc);
        assert_eq!(f, vec!["3/1:{\"a\": 1}", "4/1:{\"b\": 2}"]);
        assert_eq!(c.structural, 4);
    }

    #[test]
    fn pretty_printed_single_object_is_one_frame() {
        let doc = "{\n  \"value\": {\"x\": 1},\n  \"records\": [1]\n}\n{\"next\": true}\n";
        let (f, _) = frames(doc);
        assert_eq!(f, vec!["1/4:{⏎  \"value\": {\"x\": 1},⏎  \"records\": [1]⏎}", "5/1:{\"next\": true}"]);
    }

    #[test]
    fn array_of_scalars_and_one_item_per_line() {
        let (f, _) = frames("[{\"a\":1},\n{\"b\":2},\n3\n]");
        assert_eq!(f, vec!["1/1:{\"a\":1}", "2/1:{\"b\":2}", "3/1:3"]);
    }

    #[test]
    fn truncated_document_rejects_the_open_element() {
        let (f, _) = frames("[\n{\"a\":1},\n{\"b\":\n");
        assert_eq!(f, vec!["2/1:{\"a\":1}", "3/1!truncated_line"]);
    }

    #[test]
    fn jsonl_with_torn_first_lines_loses_only_those_lines() {
        // A torn first record opens an object; the complete record on the next line shows the
        // input is JSON Lines, so only the torn line is lost.
        let (f, _) = frames("{\"time\":\"2024\",\n{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(f, vec!["1/1!invalid_json", "2/1:{\"a\":1}", "3/1:{\"b\":2}"]);
        // Torn just after a colon, where the next record would be a grammatical value.
        let (f, _) = frames("{\"broken\": \n{\"a\":1}\n");
        assert_eq!(f, vec!["1/1!invalid_json", "2/1:{\"a\":1}"]);
        // Two torn lines in a row, the first inside an array.
        let (f, _) = frames("[1,{\"a\":\n{\"broken\": \n{\"b\":2}\n");
        assert_eq!(f, vec!["1/1:1", "1/1!invalid_json", "3/1:{\"b\":2}"]);
        assert_eq!(accounted("[1,{\"a\":\n{\"broken\": \n{\"b\":2}\n"), 3);
    }

    #[test]
    fn a_whole_value_on_its_own_line_is_a_list_item_in_a_document() {
        let (f, _) = frames("{\"records\": [\n{\"a\": 1}\n]}\n");
        assert_eq!(f, vec!["2/1:{\"a\": 1}"]);
        let (f, _) = frames("[{\"a\":1},\n[2]\n]\n");
        assert_eq!(f, vec!["1/1:{\"a\":1}", "2/1:[2]"]);
    }

    #[test]
    fn corrupt_lines_stay_lines() {
        let (f, _) = frames("{\"a\":1}\nnot json\n{\"b\":\n");
        assert_eq!(f, vec!["1/1:{\"a\":1}", "2/1:not json", "3/1:{\"b\":"]);
    }

    #[test]
    fn nul_bytes_and_invalid_utf8_are_cleaned_and_counted() {
        let mut scratch = Vec::new();
        let mut counts = LineCounts::default();
        assert_eq!(clean_line(b"{\"a\":\"x\0y\"}", &mut scratch, &mut counts), "{\"a\":\"xy\"}");
        assert_eq!(clean_line(b"{\"a\":\"\xff\"}", &mut scratch, &mut counts), "{\"a\":\"\u{fffd}\"}");
        let clean = b"{}";
        assert!(std::ptr::eq(clean_line(clean, &mut scratch, &mut counts).as_ptr(), clean.as_ptr()), "a clean line is not copied");
        assert_eq!((counts.nul_stripped, counts.repaired_utf8), (1, 1));
    }
}
