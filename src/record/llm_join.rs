//! Joins chunked LLM-log messages back together. APIM splits messages over 32 KB into string
//! chunks across rows that share a `CorrelationId` and carry rising `SequenceNumber`s; chunks
//! may end inside an escape sequence, arrive out of order, or sit in different files, so they
//! are concatenated in sequence order and parsed only once the whole text is valid JSON.
//!
//! Memory is bounded: a group larger than `max_group_bytes` is given up, and when all pending
//! chunks (their text, and what each chunk and group costs besides) exceed `max_pending_bytes`
//! the oldest group is evicted. Both are reported, as are groups still incomplete when the
//! input ends; nothing is dropped silently.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::chat::Side;
use super::json::Doc;
use super::{record_hash, Record, RejectReason, RowRef};

/// One chunk of a request's or response's messages.
#[derive(Debug, Clone)]
pub struct LlmChunk {
    pub correlation_id: String,
    pub side: Side,
    pub seq: i64,
    pub text: String,
    pub row: RowRef,
    /// The row's metadata (time, deployment, tokens, ...), without text.
    pub template: Box<Record>,
}

/// What a chunk costs besides its text: its row, its place in a group, and the group's key.
const CHUNK_BYTES: usize = 128;
/// What a row's metadata costs: the record and its strings (ids, names, the record hash).
const TEMPLATE_BYTES: usize = std::mem::size_of::<Record>() + 512;

impl LlmChunk {
    /// What it costs in memory while it waits to be joined.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<Self>() + self.text.capacity() + self.correlation_id.capacity() + TEMPLATE_BYTES
    }
}

/// A chunk group given up on, with the row it started at.
#[derive(Debug, Clone)]
pub struct UnjoinedGroup {
    pub row: RowRef,
    /// Every row of the group seen so far.
    pub rows: Vec<RowRef>,
    pub reason: RejectReason,
    pub detail: String,
}

#[derive(Debug, Clone, Copy)]
pub struct JoinLimits {
    pub max_group_bytes: usize,
    pub max_pending_bytes: usize,
}

impl Default for JoinLimits {
    fn default() -> JoinLimits {
        // APIM caps a logged message at 2 MB; allow for escaping overhead.
        JoinLimits { max_group_bytes: 8 << 20, max_pending_bytes: 256 << 20 }
    }
}

struct Group {
    /// Text and row of each chunk, by sequence number (a group holds few).
    chunks: Vec<(i64, String, RowRef)>,
    /// The metadata of the row with the lowest sequence number so far, which the joined record
    /// takes: one per group, not one per chunk (a `BTreeMap` of whole records took 11 KB for a
    /// group of one chunk, and a 16 MiB line of distinct chunks 680 MB).
    template: Option<(i64, Box<Record>)>,
    /// What the group costs, counted against the limits.
    bytes: usize,
    /// Arrival order of the group's first chunk, for oldest-first eviction.
    arrival: u64,
}

/// Pending chunk groups keyed by correlation id and side.
#[derive(Default)]
pub struct ChunkJoiner {
    groups: BTreeMap<(String, bool), Group>,
    /// The groups by arrival: the oldest is the first. Scanning every group for it made each
    /// chunk past the limit cost a pass over all that were pending.
    by_arrival: BTreeMap<u64, (String, bool)>,
    pending_bytes: usize,
    arrivals: u64,
    limits: JoinLimits,
}

/// What adding one chunk did.
pub enum Joined {
    Pending,
    Complete(Box<Record>),
    GivenUp(Vec<UnjoinedGroup>),
}

impl ChunkJoiner {
    pub fn new(limits: JoinLimits) -> ChunkJoiner {
        ChunkJoiner { limits, ..ChunkJoiner::default() }
    }

    pub fn pending_groups(&self) -> usize {
        self.groups.len()
    }

    pub fn add(&mut self, chunk: LlmChunk) -> Joined {
        let key = (chunk.correlation_id, chunk.side == Side::Response);
        let group = match self.groups.get_mut(&key) {
            Some(group) => group,
            None => {
                self.arrivals += 1;
                self.by_arrival.insert(self.arrivals, key.clone());
                let bytes = TEMPLATE_BYTES + 2 * key.0.len();
                self.pending_bytes += bytes;
                let group = Group { chunks: Vec::with_capacity(1), template: None, bytes, arrival: self.arrivals };
                self.groups.entry(key.clone()).or_insert(group)
            }
        };
        // The same row read twice (overlapping exports) adds nothing.
        let at = match group.chunks.binary_search_by_key(&chunk.seq, |c| c.0) {
            Ok(_) => return Joined::Pending,
            Err(at) => at,
        };
        if group.template.as_ref().is_none_or(|(seq, _)| chunk.seq < *seq) {
            group.template = Some((chunk.seq, chunk.template));
        }
        let cost = chunk.text.len() + CHUNK_BYTES;
        group.bytes += cost;
        self.pending_bytes += cost;
        group.chunks.insert(at, (chunk.seq, chunk.text, chunk.row));

        if group.bytes > self.limits.max_group_bytes {
            let given_up = self.remove(&key).map(|g| {
                unjoined(&key, g, format!("the messages exceed {} bytes", self.limits.max_group_bytes))
            });
            return Joined::GivenUp(given_up.into_iter().collect());
        }
        if let Some(record) = self.try_complete(&key) {
            return Joined::Complete(Box::new(record));
        }
        let mut evicted = Vec::new();
        while self.pending_bytes > self.limits.max_pending_bytes {
            let Some(oldest) = self.by_arrival.first_key_value().map(|(_, k)| k.clone()) else { break };
            if let Some(g) = self.remove(&oldest) {
                let why = format!("evicted: more than {} bytes of chunks were pending", self.limits.max_pending_bytes);
                evicted.push(unjoined(&oldest, g, why));
            }
        }
        if evicted.is_empty() {
            Joined::Pending
        } else {
            Joined::GivenUp(evicted)
        }
    }

    /// Every group still incomplete, oldest first: reported when the input ends.
    pub fn drain(&mut self) -> Vec<UnjoinedGroup> {
        let mut groups: Vec<((String, bool), Group)> = std::mem::take(&mut self.groups).into_iter().collect();
        groups.sort_by_key(|(_, g)| g.arrival);
        self.by_arrival.clear();
        self.pending_bytes = 0;
        groups.into_iter().map(|(k, g)| unjoined(&k, g, "the input ended before every chunk arrived".into())).collect()
    }

    fn remove(&mut self, key: &(String, bool)) -> Option<Group> {
        let g = self.groups.remove(key)?;
        self.by_arrival.remove(&g.arrival);
        self.pending_bytes -= g.bytes;
        Some(g)
    }

    /// Joins the group if its chunks, in sequence order, now form valid JSON.
    fn try_complete(&mut self, key: &(String, bool)) -> Option<Record> {
        let group = self.groups.get(key)?;
        let joined: String = group.chunks.iter().map(|(_, t, _)| t.as_str()).collect();
        let t = joined.trim();
        let closes = (t.starts_with('[') && t.ends_with(']')) || (t.starts_with('{') && t.ends_with('}'));
        if !closes {
            return None;
        }
        let doc = Doc::parse(t).ok()?;
        let value = doc.root();
        let group = self.remove(key)?;
        let side = if key.1 { Side::Response } else { Side::Request };
        let mut rows = group.chunks.into_iter();
        let (_, _, first_row) = rows.next()?;
        let mut record = *group.template?.1;
        record.source_file = first_row.source_file.clone();
        record.source_line = first_row.source_line;
        record.index_in_line = None;
        record.other_rows = rows.map(|(_, _, row)| row).collect();
        let origin = match side {
            Side::Request => "requestMessages(joined)",
            Side::Response => "responseMessages(joined)",
        };
        super::gateway_llm_log::apply_messages(value, side, origin, &mut record);
        record.record_hash = record_hash(&format!("{}\u{0}{}\u{0}{}", key.0, origin, value.get()));
        Some(record)
    }
}

fn unjoined(key: &(String, bool), g: Group, why: String) -> UnjoinedGroup {
    let seqs: Vec<String> = g.chunks.iter().map(|(s, _, _)| s.to_string()).collect();
    let rows: Vec<RowRef> = g.chunks.into_iter().map(|(_, _, r)| r).collect();
    let row = rows.first().cloned().unwrap_or(RowRef { source_file: Arc::from("-"), source_line: 0, offset: 0 });
    let side = if key.1 { "response" } else { "request" };
    UnjoinedGroup {
        row,
        rows,
        reason: RejectReason::IncompleteChunks,
        detail: format!(
            "{side} messages of correlation id {} not joined ({why}); chunks seen: sequence {}",
            key.0,
            seqs.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RecordKind, RecordOrigin, SourceFormat};

    fn chunk(corr: &str, seq: i64, text: &str) -> LlmChunk {
        let at = RecordOrigin { file: Arc::from("f"), line: seq as u64 + 10, index: None, offset: 0 };
        LlmChunk {
            correlation_id: corr.into(),
            side: Side::Request,
            seq,
            text: text.into(),
            row: RowRef { source_file: at.file.clone(), source_line: at.line, offset: 0 },
            template: Box::new(Record::new(RecordKind::GatewayLlmLog, SourceFormat::Storage, &at)),
        }
    }

    #[test]
    fn joins_in_sequence_order_whatever_the_arrival_order() {
        let mut j = ChunkJoiner::new(JoinLimits::default());
        assert!(matches!(j.add(chunk("c", 3, "\"}]")), Joined::Pending));
        assert!(matches!(j.add(chunk("c", 1, "[{\"role\":\"user\",\"content\":\"caf\\u00")), Joined::Pending));
        match j.add(chunk("c", 2, "e9 ok")) {
            Joined::Complete(r) => {
                assert_eq!(r.surfaces[0].text, "café ok");
                assert_eq!(r.source_line, 11);
                assert_eq!(r.other_rows.iter().map(|r| r.source_line).collect::<Vec<_>>(), vec![12, 13]);
            }
            _ => panic!("not joined"),
        }
        assert_eq!(j.pending_groups(), 0);
    }

    #[test]
    fn oversized_groups_and_memory_pressure_are_reported() {
        // A group costs its row's metadata, its key (twice) and each chunk's text and row.
        let group_of = |key: &str, text: &str| TEMPLATE_BYTES + 2 * key.len() + CHUNK_BYTES + text.len();
        let max_group_bytes = group_of("big", "0123456789");
        let max_pending_bytes = group_of("a", "[\"aaaaaaa") * 3 / 2;
        let mut j = ChunkJoiner::new(JoinLimits { max_group_bytes, max_pending_bytes });
        match j.add(chunk("big", 1, "[\"0123456789abc")) {
            Joined::GivenUp(g) => assert!(g[0].detail.contains(&format!("exceed {max_group_bytes} bytes"))),
            _ => panic!("oversized group kept"),
        }
        assert!(matches!(j.add(chunk("a", 1, "[\"aaaaaaa")), Joined::Pending));
        match j.add(chunk("b", 1, "[\"bbbbbbb")) {
            Joined::GivenUp(g) => {
                assert_eq!(g.len(), 1);
                assert!(g[0].detail.contains("correlation id a "), "{}", g[0].detail);
                assert!(g[0].detail.contains("evicted"));
            }
            _ => panic!("no eviction"),
        }
        let left = j.drain();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].reason, RejectReason::IncompleteChunks);
    }

    #[test]
    fn regression_groups_of_tiny_chunks_count_what_they_hold_not_only_their_text() {
        // Only text counted: a 16 MiB line of 60,000 distinct chunks of a few bytes each held
        // 680 MB (a whole record per chunk, in a B-tree node of eleven), and nothing was ever
        // evicted.
        let limits = JoinLimits { max_group_bytes: 8 << 20, max_pending_bytes: 1 << 20 };
        let mut j = ChunkJoiner::new(limits);
        let mut evicted = 0;
        for i in 0..10_000 {
            if let Joined::GivenUp(g) = j.add(chunk(&format!("c-{i}"), 0, "[{\"x")) {
                evicted += g.len();
            }
        }
        assert!(j.pending_groups() * TEMPLATE_BYTES <= limits.max_pending_bytes, "{} groups pending", j.pending_groups());
        let pending = j.pending_groups();
        assert_eq!(evicted + pending, 10_000, "every group is evicted or still pending");
        assert_eq!(j.drain().len(), pending);
    }

    #[test]
    fn duplicate_rows_are_ignored() {
        let mut j = ChunkJoiner::new(JoinLimits::default());
        assert!(matches!(j.add(chunk("c", 1, "[\"a")), Joined::Pending));
        assert!(matches!(j.add(chunk("c", 1, "[\"a")), Joined::Pending));
        assert!(matches!(j.add(chunk("c", 2, "\"]")), Joined::Complete(_)));
    }
}
