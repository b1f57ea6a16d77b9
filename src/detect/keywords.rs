//! The keyword prefilter's automaton: which of the rule pack's keywords occur in a text, ASCII
//! case ignored, each occurrence counted even inside a longer keyword.
//!
//! An automaton's search is one table lookup per byte, each waiting on the one before. With
//! aho-corasick's own overlapping search over the 2.1 MB table of the embedded pack's keywords,
//! that wait, not the work, made the prefilter a tenth of a scan's cycles (perf: the load of
//! the next state took 70% of its samples). Two things cut it: alone, on the JSON strings of
//! the 20 MB benchmark corpus, 34 ms -> 21 ms; in a scan of the 200 MB corpus, the prefilter
//! and the matching around it went from 18.8% to 15.0% of the cycles (perf).
//! - A text long enough is read as two halves side by side, two independent chains of lookups
//!   the processor overlaps. The second half starts early by the longest head less one byte,
//!   so every occurrence ends in a half that read all of it: an automaton's state after that
//!   many bytes is the same whatever came before.
//! - The automaton holds each keyword's first [`HEAD_LEN`] bytes only, and a keyword found by
//!   its head is checked whole at that place. The overlap, which both halves read, is 7 bytes
//!   instead of the longest keyword's 44, so texts of 80 bytes, not 150, are long enough to
//!   split.
//!
//! Not kept: the automaton reading codes instead of bytes, one per byte the heads hold, which
//! can halve the table's width. The embedded pack's keywords and required texts hold 65
//! distinct bytes, one more than fits; with the ten digits sharing a code (and a keyword
//! holding a digit checked where its head ends) the table fell from 1.66 MB to 0.83 MB, with
//! no difference in time this VM could measure and 0.8% more instructions.

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::{dfa, nfa, Anchored, MatchKind};

/// How many leading bytes of a keyword the automaton holds (the embedded pack's table: 2.1 MB
/// over whole keywords, 1.66 MB over heads). 6 and 12 were no faster.
const HEAD_LEN: usize = 8;

/// A text is read as two halves when each is at least this much longer than the overlap: a
/// split costs a second start and the overlap read twice.
const MIN_HALF_BEYOND_OVERLAP: usize = 32;

pub struct KeywordSearcher {
    machine: Machine,
    /// Per automaton pattern (a distinct head), the keywords that start with it.
    heads: Vec<Head>,
    /// The keywords, lower-cased, by the id the caller gave them (their order).
    keywords: Vec<Box<[u8]>>,
}

/// The automaton over the keywords' heads, of the kind the input size calls for.
enum Machine {
    Dfa(dfa::DFA),
    Contiguous(nfa::contiguous::NFA),
    /// The fallback when the pack is too large for the others.
    Noncontiguous(nfa::noncontiguous::NFA),
}

#[derive(Default)]
struct Head {
    /// Keywords that are the whole head: found where the head is.
    whole: Vec<usize>,
    /// Keywords longer than the head: found where the head is and the rest follows.
    longer: Vec<usize>,
}

/// Which automaton to build: see [`KeywordSearcher::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineKind {
    Dfa,
    Contiguous,
    Noncontiguous,
}

impl KeywordSearcher {
    /// The searcher for `keywords` (ids are their positions). A DFA is quickest to search and
    /// four times slower to build than the contiguous NFA, which `quick_build` asks for. A pack
    /// too large for either gets the slower NFA; `None` when it is too large even for that.
    pub fn new(keywords: &[String], quick_build: bool) -> Option<KeywordSearcher> {
        use MachineKind::*;
        Self::built_as(keywords, if quick_build { &[Contiguous, Dfa, Noncontiguous] } else { &[Dfa, Contiguous, Noncontiguous] })
    }

    /// The searcher with the first of `kinds` that builds.
    fn built_as(keywords: &[String], kinds: &[MachineKind]) -> Option<KeywordSearcher> {
        let keywords: Vec<Box<[u8]>> = keywords.iter().map(|k| k.to_ascii_lowercase().into_bytes().into_boxed_slice()).collect();
        let mut head_ids: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
        let mut head_texts: Vec<&[u8]> = Vec::new();
        let mut heads: Vec<Head> = Vec::new();
        for (id, keyword) in keywords.iter().enumerate() {
            let head = &keyword[..keyword.len().min(HEAD_LEN)];
            let at = *head_ids.entry(head).or_insert_with(|| {
                head_texts.push(head);
                heads.push(Head::default());
                heads.len() - 1
            });
            if head.len() == keyword.len() {
                heads[at].whole.push(id);
            } else {
                heads[at].longer.push(id);
            }
        }
        let machine = kinds.iter().find_map(|&kind| Self::build(&head_texts, kind))?;
        Some(KeywordSearcher { machine, heads, keywords })
    }

    fn build(heads: &[&[u8]], kind: MachineKind) -> Option<Machine> {
        Some(match kind {
            MachineKind::Dfa => Machine::Dfa(dfa::Builder::new().ascii_case_insensitive(true).match_kind(MatchKind::Standard).prefilter(false).build(heads).ok()?),
            MachineKind::Contiguous => Machine::Contiguous(nfa::contiguous::Builder::new().ascii_case_insensitive(true).match_kind(MatchKind::Standard).prefilter(false).build(heads).ok()?),
            MachineKind::Noncontiguous => Machine::Noncontiguous(nfa::noncontiguous::Builder::new().ascii_case_insensitive(true).match_kind(MatchKind::Standard).prefilter(false).build(heads).ok()?),
        })
    }

    #[cfg(test)]
    pub fn kind(&self) -> MachineKind {
        match self.machine {
            Machine::Dfa(_) => MachineKind::Dfa,
            Machine::Contiguous(_) => MachineKind::Contiguous,
            Machine::Noncontiguous(_) => MachineKind::Noncontiguous,
        }
    }

    /// Calls `found` with the id of each keyword that occurs in `text`, at least once for each
    /// (sometimes more often) and in no particular order.
    pub fn for_each_in(&self, text: &[u8], found: impl FnMut(usize)) {
        match &self.machine {
            Machine::Dfa(a) => self.search(a, text, found),
            Machine::Contiguous(a) => self.search(a, text, found),
            Machine::Noncontiguous(a) => self.search(a, text, found),
        }
    }

    // Out of line: inlined into the engine's matching loop, the two states were kept on the
    // stack, a store and a load more on each chain of lookups.
    #[inline(never)]
    fn search<A: Automaton>(&self, automaton: &A, text: &[u8], mut found: impl FnMut(usize)) {
        let Ok(start) = automaton.start_state(Anchored::No) else { return };
        // An empty keyword occurs before any byte is read.
        if automaton.is_match(start) {
            self.report(automaton, start, text, 0, &mut found);
        }
        let overlap = automaton.max_pattern_len().saturating_sub(1);
        let half = text.len() / 2;
        let mut state = start;
        let mut from = 0;
        if half >= overlap + MIN_HALF_BEYOND_OVERLAP {
            // The first half is [0, half); the second starts `overlap` bytes before `half`, and
            // reads that much further than the first before the lockstep loop ends.
            let second = half - overlap;
            let mut other = start;
            for (i, (&a, &b)) in text[..half].iter().zip(&text[second..second + half]).enumerate() {
                state = automaton.next_state(Anchored::No, state, a);
                other = automaton.next_state(Anchored::No, other, b);
                if automaton.is_special(state) | automaton.is_special(other) {
                    self.report(automaton, state, text, i + 1, &mut found);
                    self.report(automaton, other, text, second + i + 1, &mut found);
                }
            }
            state = other;
            from = second + half;
        }
        for (i, &byte) in text.iter().enumerate().skip(from) {
            state = automaton.next_state(Anchored::No, state, byte);
            if automaton.is_special(state) {
                self.report(automaton, state, text, i + 1, &mut found);
            }
        }
    }

    /// The keywords found at `end` if `state` is a match state.
    #[inline(never)]
    fn report<A: Automaton>(&self, automaton: &A, state: StateID, text: &[u8], end: usize, found: &mut impl FnMut(usize)) {
        if !automaton.is_match(state) {
            return;
        }
        for k in 0..automaton.match_len(state) {
            self.report_head(automaton.match_pattern(state, k).as_usize(), text, end, found);
        }
    }

    /// The keywords of head `head`, found ending at `end`.
    fn report_head(&self, head: usize, text: &[u8], end: usize, found: &mut impl FnMut(usize)) {
        let head = &self.heads[head];
        head.whole.iter().for_each(|&id| found(id));
        for &id in &head.longer {
            let keyword = &self.keywords[id];
            let start = end - HEAD_LEN;
            if text.get(start..start + keyword.len()).is_some_and(|t| t.eq_ignore_ascii_case(keyword)) {
                found(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(searcher: &KeywordSearcher, text: &str) -> Vec<usize> {
        let mut ids = Vec::new();
        searcher.for_each_in(text.as_bytes(), |id| ids.push(id));
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// What the searcher must find: each keyword that occurs, ASCII case ignored.
    fn expected(keywords: &[String], text: &str) -> Vec<usize> {
        let text = text.to_ascii_lowercase();
        (0..keywords.len()).filter(|&i| text.contains(&keywords[i].to_ascii_lowercase())).collect()
    }

    fn searchers(keywords: &[String]) -> Vec<KeywordSearcher> {
        [MachineKind::Dfa, MachineKind::Contiguous, MachineKind::Noncontiguous].iter().map(|&kind| KeywordSearcher::built_as(keywords, &[kind]).expect("builds")).collect()
    }

    #[test]
    fn each_automaton_kind_is_built_as_asked() {
        let keywords = vec!["ignore".to_string(), "previous instructions".to_string()];
        assert_eq!(KeywordSearcher::new(&keywords, false).map(|s| s.kind()), Some(MachineKind::Dfa));
        assert_eq!(KeywordSearcher::new(&keywords, true).map(|s| s.kind()), Some(MachineKind::Contiguous));
    }

    #[test]
    fn a_long_keyword_is_found_whole_not_by_its_head_alone() {
        let keywords: Vec<String> = ["instructions", "instruct", "ignore all previous"].map(String::from).to_vec();
        for s in searchers(&keywords) {
            assert_eq!(found(&s, "Follow the INSTRUCTIONS."), vec![0, 1]);
            assert_eq!(found(&s, "instructor"), vec![1], "the head, not the longer keyword");
            assert_eq!(found(&s, "please ignore all previous"), vec![2], "the keyword at the end of the text");
            assert_eq!(found(&s, "please ignore all"), Vec::<usize>::new(), "cut short by the text's end");
        }
    }

    #[test]
    fn a_keyword_is_found_wherever_it_starts_in_a_text_read_as_two_halves() {
        let keywords: Vec<String> = ["password", "disregard the system prompt", "xy"].map(String::from).to_vec();
        for s in searchers(&keywords) {
            for len in [40usize, 78, 79, 80, 81, 100, 127] {
                for keyword in &keywords {
                    for at in 0..len.saturating_sub(keyword.len()) {
                        let mut text = "a".repeat(len);
                        text.replace_range(at..at + keyword.len(), keyword);
                        assert_eq!(found(&s, &text), expected(&keywords, &text), "{:?} at {at} of {len}", s.kind());
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn finds_exactly_the_keywords_that_occur(
            keywords in proptest::collection::vec("[abAB]{1,12}|[a-d ]{1,12}|é[a-b]{0,9}", 1..8),
            text in "([abAB]{0,20}|[a-dA-D ]{0,20}|é){0,30}",
        ) {
            for s in searchers(&keywords) {
                proptest::prop_assert_eq!(found(&s, &text), expected(&keywords, &text), "{:?}", s.kind());
            }
        }
    }
}
