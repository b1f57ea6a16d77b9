//! A memo of text-surface matches, handed from batch to batch: system prompts and
//! conversation history come back request after request, and a text already matched need not
//! be again.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use super::{Detection, SpanScratch};
use crate::record::Surface;

/// Texts shorter than this are matched every time: looking them up costs about as much.
const MIN_TEXT: usize = 64;
/// Bytes one memo keeps (texts, and a guess at each entry's overhead): past it, it starts
/// over, so memory stays bounded however long the scan. A memo fills over the first few hundred
/// megabytes of a scan, so its size is most of what peak memory gains from a longer input; at
/// 8 MiB the two workers' memos took 16 of the 18 MB that a 1 GB corpus added over a 100 MB one,
/// and 4 MiB answered as many texts (200 MB corpus: 0.05% more instructions).
const MAX_BYTES: usize = 4 << 20;
/// What a kept text costs besides its bytes: its entry, its table slot, its allocation.
const ENTRY_BYTES: usize = 96;
/// Fingerprints of texts seen once remembered (8 bytes each, and slack): past it, they are
/// forgotten and counted afresh.
const MAX_SEEN: usize = 1 << 16;

/// What the engine reuses from record to record: the texts it matched, and its per-rule flags.
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

/// Most texts that may share one hash: past it, a text is matched every time instead of kept.
/// A prompt is written by an attacker, who could aim many texts at one hash; the cap keeps
/// each lookup to a few comparisons whatever the hash.
const MAX_BUCKET: usize = 4;

/// Texts by a keyed hash of surface, conditions and text. The text itself is compared on a
/// hit, so a collision costs time, never a wrong answer, and [`MAX_BUCKET`] bounds that time.
pub(super) struct Texts {
    /// Mixed into every hash, drawn per memo, so which table slots texts land in cannot be
    /// worked out ahead; texts whose text hashes collide outright still share a bucket, which
    /// [`MAX_BUCKET`] bounds.
    key: u64,
    by_hash: HashMap<u64, Vec<Entry>, BuildHasherDefault<Prehashed>>,
    /// Texts seen once, by fingerprint only: most prompts are never sent again, and copying
    /// each into the memo cost more than matching the few repeats again (a cold table of
    /// copies misses the cache). A text is kept the second time it is seen.
    seen: std::collections::HashSet<u64, BuildHasherDefault<Prehashed>>,
    bytes: usize,
    max_bytes: usize,
    off: bool,
}

impl Default for Texts {
    fn default() -> Texts {
        let key = std::collections::hash_map::RandomState::new().hash_one(0u8);
        Texts { key, by_hash: HashMap::default(), seen: Default::default(), bytes: 0, max_bytes: MAX_BYTES, off: false }
    }
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
    /// condition group), from the memo or, for a text seen before, from `compute` (and then
    /// kept); `None` when the caller matches the text itself.
    pub(super) fn lookup(&mut self, surface: Surface, conds: u64, text: &str, compute: impl FnOnce() -> Vec<Detection>) -> Option<&[Detection]> {
        if self.off || text.len() < MIN_TEXT {
            return None;
        }
        // SipHash over every long text was 2.7% of a scan's instructions; the record hash
        // reads eight bytes a step, and the key and the cap answer what SipHash answered.
        let text_hash = crate::record::bytes_hash128(text.as_bytes());
        let hash = (text_hash as u64 ^ (text_hash >> 64) as u64 ^ self.key).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ conds.rotate_left(8) ^ surface as u64;
        self.lookup_hashed(hash, surface, conds, text, compute)
    }

    fn lookup_hashed(&mut self, hash: u64, surface: Surface, conds: u64, text: &str, compute: impl FnOnce() -> Vec<Detection>) -> Option<&[Detection]> {
        let same = |e: &Entry| e.surface == surface && e.conds == conds && *e.text == *text;
        let known = self.by_hash.get(&hash).and_then(|bucket| bucket.iter().position(same));
        let bucket = match known {
            Some(_) => self.by_hash.get_mut(&hash)?,
            None => {
                if text.len() + ENTRY_BYTES > self.max_bytes || self.by_hash.get(&hash).is_some_and(|b| b.len() >= MAX_BUCKET) {
                    return None;
                }
                if self.seen.len() >= MAX_SEEN {
                    self.seen.clear();
                }
                if self.seen.insert(hash) {
                    return None;
                }
                let found = compute();
                // The matches count too: a crafted text can match most rules, each keeping
                // evidence (a single entry stays under a text's 4 MiB cap and the pack's size).
                let evidence: usize = found.iter().map(|d| std::mem::size_of::<Detection>() + d.matched.len() + d.decoded.as_ref().map_or(0, String::len)).sum();
                let cost = text.len() + ENTRY_BYTES + evidence;
                if self.bytes + cost > self.max_bytes {
                    self.by_hash.clear();
                    self.bytes = 0;
                }
                self.bytes += cost;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_memo_starts_over_and_keeps_answering_right() {
        let mut texts = Texts { max_bytes: 3 * (100 + ENTRY_BYTES), ..Texts::default() };
        let text = |i: usize| format!("{i:0100}");
        let answer = |i: usize| Detection { rule: i, surface: None, span: None, range: 0..0, matched: text(i), revealed_by: None, decoded: None, field: None };
        let mut computed = 0;
        for i in 0..5 {
            assert!(texts.lookup(Surface::UserPrompt, 0, &text(i), || unreachable!()).is_none(), "a text seen once is matched by the caller");
        }
        for round in 0..2 {
            for i in 0..5 {
                let found = texts.lookup(Surface::UserPrompt, 0, &text(i), || {
                    computed += 1;
                    vec![answer(i)]
                });
                assert_eq!(found.map(|f| f[0].rule), Some(i), "round {round}, text {i}");
            }
        }
        assert_eq!(computed, 10, "three texts fit, so each round pushes out what the next needs");
        assert!(texts.len() <= 3 && texts.bytes <= texts.max_bytes);
        assert!(texts.lookup(Surface::UserPrompt, 0, &text(4), || unreachable!()).is_some(), "the last text is kept");
        for _ in 0..2 {
            assert!(texts.lookup(Surface::System, 0, &text(4), Vec::new).is_none_or(|f| f.is_empty()), "another surface is another text");
            assert!(texts.lookup(Surface::UserPrompt, 1, &text(4), Vec::new).is_none_or(|f| f.is_empty()), "other conditions are another text");
        }
        assert!(texts.lookup(Surface::UserPrompt, 0, "short", || unreachable!()).is_none(), "short texts are not kept");
        let mut texts = Texts { max_bytes: 4 * (100 + ENTRY_BYTES), ..Texts::default() };
        let heavy = |i: usize| vec![Detection { decoded: Some("x".repeat(1000)), ..answer(i) }];
        for i in 0..3 {
            for _ in 0..2 {
                let _ = texts.lookup(Surface::UserPrompt, 0, &text(i), || heavy(i));
            }
            // Without its evidence each entry would cost a quarter of the bound, and all three would stay.
            assert_eq!(texts.len(), 1, "each entry's evidence fills the memo, so it starts over");
        }
    }

    #[test]
    fn texts_aimed_at_one_hash_are_matched_by_the_caller_past_a_few() {
        let mut texts = Texts::default();
        let text = |i: usize| format!("{i:0100}");
        let answer = |i: usize| vec![Detection { rule: i, surface: None, span: None, range: 0..0, matched: String::new(), revealed_by: None, decoded: None, field: None }];
        for round in 0..3 {
            for i in 0..MAX_BUCKET * 4 {
                let found = texts.lookup_hashed(7, Surface::UserPrompt, 0, &text(i), || answer(i)).map(|f| f[0].rule);
                // The first text marks the hash seen, so the next few are kept at once and
                // fill its bucket; the rest are the caller's to match, round after round.
                let kept = (1..=MAX_BUCKET).contains(&i);
                assert_eq!(found.is_some(), kept, "round {round}, text {i}");
                if let Some(rule) = found {
                    assert_eq!(rule, i, "a colliding text never answers for another");
                }
            }
        }
        assert_eq!(texts.len(), MAX_BUCKET);
    }
}
