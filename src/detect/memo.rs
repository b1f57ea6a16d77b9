//! A memo of text-surface matches for one batch of records: system prompts and conversation
//! history come back request after request, and a text already matched need not be again.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use super::{Detection, SpanScratch};
use crate::record::Surface;

/// Texts shorter than this are matched every time: looking them up costs about as much.
const MIN_TEXT: usize = 64;
/// Text bytes one memo keeps, so memory stays bounded whatever a batch holds.
const MAX_BYTES: usize = 4 << 20;

/// What the engine reuses across the records of a batch: the texts it matched, and its
/// per-rule flags.
#[derive(Default)]
pub struct TextMemo {
    pub(super) texts: Texts,
    /// Flags for the record being matched.
    pub(super) record: SpanScratch,
    /// Flags for a text matched on its own, for the memo.
    pub(super) text: SpanScratch,
}

impl TextMemo {
    /// A memo that keeps no texts: every text is matched.
    pub fn off() -> TextMemo {
        TextMemo { texts: Texts { off: true, ..Texts::default() }, ..TextMemo::default() }
    }
}

/// Texts by a keyed hash of surface, conditions and text. The text itself is compared on a
/// hit: a prompt is written by an attacker, who could aim a collision at a benign text, and
/// the random key keeps them from filling one bucket.
#[derive(Default)]
pub(super) struct Texts {
    hasher: std::collections::hash_map::RandomState,
    by_hash: HashMap<u64, Vec<Entry>, BuildHasherDefault<Prehashed>>,
    bytes: usize,
    off: bool,
}

struct Entry {
    surface: Surface,
    conds: u64,
    text: Box<str>,
    found: Vec<Detection>,
}

impl Texts {
    /// Texts kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_hash.values().map(Vec::len).sum()
    }

    /// The matches of `text` on `surface` for records whose conditions are `conds` (a bit per
    /// condition group), from the memo or from `compute` (and then kept); `None` when the text
    /// is not memoized and the caller matches it itself.
    pub(super) fn lookup(&mut self, surface: Surface, conds: u64, text: &str, compute: impl FnOnce() -> Vec<Detection>) -> Option<&[Detection]> {
        if self.off || text.len() < MIN_TEXT {
            return None;
        }
        let hash = self.hasher.hash_one((surface as u8, conds, text));
        let same = |e: &Entry| e.surface == surface && e.conds == conds && *e.text == *text;
        let known = self.by_hash.get(&hash).and_then(|bucket| bucket.iter().position(same));
        let bucket = match known {
            Some(_) => self.by_hash.get_mut(&hash)?,
            None => {
                if self.bytes + text.len() > MAX_BYTES {
                    return None;
                }
                self.bytes += text.len();
                let found = compute();
                let bucket = self.by_hash.entry(hash).or_default();
                bucket.push(Entry { surface, conds, text: text.into(), found });
                bucket
            }
        };
        let at = known.unwrap_or(bucket.len() - 1);
        Some(&bucket[at].found)
    }
}

/// The key is a keyed hash already: hashing it again would only cost time.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys reach here (`write_u64`); any other input still hashes, poorly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
