//! One regex pass that tells which of a surface's keyword-less rules can match a text at all,
//! so that only those run their own search.
//!
//! Rules without keywords (card numbers, IBANs, phone numbers, URLs) reach every text and
//! almost never match: on the benchmark corpus nine such rules each searched every prompt and
//! response, about a tenth of the scan. A `RegexSet` of the same patterns reads the text once
//! for all of them, three times faster than nine searches. The set is built from the rules' own
//! compiled sources with the same flags, so "the set says no" means exactly "`find_iter` would
//! find nothing": skipping changes no result.

use std::sync::{Arc, OnceLock};

use regex::{RegexSet, RegexSetBuilder, SetMatches};

use crate::rules::{Rule, RuleSet, TextView};

/// What a gate found in one text.
pub enum GateHits {
    /// No member matches anywhere: the common case, known from one early-exit search.
    None,
    Some(SetMatches),
}

impl GateHits {
    pub fn matched(&self, pos: usize) -> bool {
        match self {
            GateHits::None => false,
            GateHits::Some(m) => m.matched(pos),
        }
    }
}

/// The gated rules of one surface that read one kind of view.
pub struct Gate {
    pub view: TextView,
    /// Rule indexes, ascending; a rule's position here is its pattern's index in the set.
    members: Vec<usize>,
    /// Built on first use from the members' sources, like the rules' own regexes (a scan
    /// pays only for the gates of surfaces its records have); `None` when the set is over the
    /// size limits, and then every member simply runs its own search. Shared by the gates of
    /// other surfaces whose members have the same patterns: in the default pack seven gates
    /// need only three sets, and each set took milliseconds to build.
    set: Arc<OnceLock<Option<RegexSet>>>,
}

impl Gate {
    /// The gates of one surface: one per view kind that has at least two keyword-less rules (a
    /// set of one pattern would only repeat the rule's own search). A gate shares its set with
    /// an `earlier` one (of other surfaces) that holds the same patterns in the same order.
    pub fn for_surface(rules: &[Rule], wanted: &[usize], earlier: &[&Gate]) -> Vec<Gate> {
        let mut gates = Vec::new();
        for view in [TextView::Original, TextView::Normalized, TextView::Hidden, TextView::Decoded] {
            let members: Vec<usize> =
                wanted.iter().copied().filter(|&i| rules[i].view == view && rules[i].pattern.is_some() && unfiltered(&rules[i])).collect();
            if members.len() >= 2 {
                let same = earlier.iter().find(|g| g.view == view && same_patterns(rules, &g.members, &members));
                let set = same.map_or_else(Arc::default, |g| Arc::clone(&g.set));
                gates.push(Gate { view, members, set });
            }
        }
        gates
    }

    /// This rule's index in the set, if the gate holds it.
    pub fn position(&self, rule: usize) -> Option<usize> {
        self.members.binary_search(&rule).ok()
    }

    /// Which members' patterns match somewhere in `text`; `None` when the set could not be
    /// built. `rules` is the rule list the gate was made from.
    ///
    /// Almost no text matches any member, and asking "does any match" stops at the first match
    /// where "which match" must read overlapping matches to the end: on the benchmark corpus
    /// the two-step answer halves the gate's cost.
    pub fn matches(&self, rules: &[Rule], text: &str) -> Option<GateHits> {
        let set = self.set.get_or_init(|| {
            let sources: Vec<String> = self.members.iter().filter_map(|&i| rules.get(i)?.pattern.as_ref().map(|p| p.compiled_source())).collect();
            if sources.len() != self.members.len() {
                return None;
            }
            RegexSetBuilder::new(&sources).size_limit((16 << 20) * sources.len()).dfa_size_limit(16 << 20).build().ok()
        });
        set.as_ref().map(|s| if s.is_match(text) { GateHits::Some(s.matches(text)) } else { GateHits::None })
    }
}

fn same_patterns(rules: &[Rule], a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(&x, &y)| match (&rules[x].pattern, &rules[y].pattern) {
            (Some(p), Some(q)) => p.same_as(q),
            _ => false,
        })
}

fn unfiltered(rule: &Rule) -> bool {
    // Rules that need a special character never run on plain text, and their Unicode classes
    // would make the set's DFA large for every text. Rules with keywords stay out too: most
    // texts never reach them, and many carry literals the regex engine already skips to with
    // memchr, which a set of patterns without such literals would lose.
    !rule.needs_special_char && RuleSet::prefilter_keywords(rule).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Surface;
    use crate::rules::load;

    fn pack() -> RuleSet {
        let (rules, errors) = load::compile(&load::embedded_sources());
        assert!(errors.is_empty());
        rules
    }

    #[test]
    fn the_set_agrees_with_each_members_own_search() {
        let rules = pack();
        let wanted: Vec<usize> = (0..rules.rules.len()).filter(|&i| rules.rules[i].pattern.is_some()).collect();
        let gates = Gate::for_surface(&rules.rules, &wanted, &[]);
        assert!(gates.iter().any(|g| g.view == TextView::Original && g.members.len() >= 5), "the pack's keyword-less PII and URL rules form a gate");
        let texts = [
            "Card 4111 1111 1111 1111 expires soon, call +1 (425) 555-0100.",
            "Wire it to DE89 3704 0044 0532 0130 00 today; SSN 078-05-1120.",
            "see https://contoso.example/login?next=1 or mail a.b@example.org",
            "Nothing to see here: just a plain sentence about the weather.",
            "(a) one\n(b) two\n(c) three\n(d) four\n(e) five\n(f) six\n(g) seven\n(h) eight\n(i) nine\n(j) ten\n(k) eleven\n",
            "",
        ];
        for gate in &gates {
            for text in texts {
                let Some(found) = gate.matches(&rules.rules, text) else { panic!("the pack's gate builds") };
                for (pos, &i) in gate.members.iter().enumerate() {
                    let own = rules.rules[i].pattern.as_ref().and_then(|p| p.full()).is_some_and(|re| re.is_match(text));
                    assert_eq!(found.matched(pos), own, "rule {} on {text:?}", rules.rules[i].id);
                }
            }
        }
    }

    #[test]
    fn surfaces_with_the_same_patterns_share_a_set_that_answers_for_each() {
        let rules = pack();
        let on = |s: Surface| -> Vec<usize> { (0..rules.rules.len()).filter(|&i| rules.rules[i].pattern.is_some() && rules.rules[i].surfaces.contains(&s)).collect() };
        let first = Gate::for_surface(&rules.rules, &on(Surface::ToolOutput), &[]);
        let earlier: Vec<&Gate> = first.iter().collect();
        let second = Gate::for_surface(&rules.rules, &on(Surface::ModelResponse), &earlier);
        let original = |gates: &[Gate]| gates.iter().position(|g| g.view == TextView::Original).unwrap();
        let (a, b) = (&first[original(&first)], &second[original(&second)]);
        assert_ne!(a.members, b.members, "different rules: tool output and responses each have their own URL rule");
        assert!(Arc::ptr_eq(&a.set, &b.set), "with the same patterns: one set");
        let prompt = Gate::for_surface(&rules.rules, &on(Surface::UserPrompt), &earlier);
        assert!(!Arc::ptr_eq(&prompt[original(&prompt)].set, &a.set), "the prompt side has a phone rule fewer");
        // The shared set was built from the first gate's members; it must answer for the second.
        let text = "Call +1 (425) 555-0100 or +1 (425) 555-0101 or +44 20 7946 0958, card 4012 8888 8888 1881 or 5425 2334 3010 9903, https://192.0.2.7/login";
        let found = b.matches(&rules.rules, text).unwrap();
        assert!((0..b.members.len()).any(|pos| found.matched(pos)));
        for (pos, &i) in b.members.iter().enumerate() {
            let own = rules.rules[i].pattern.as_ref().and_then(|p| p.full()).is_some_and(|re| re.is_match(text));
            assert_eq!(found.matched(pos), own, "rule {}", rules.rules[i].id);
        }
    }

    #[test]
    fn only_keyword_less_rules_for_plain_text_are_gated() {
        let rules = pack();
        let wanted: Vec<usize> = (0..rules.rules.len()).filter(|&i| rules.rules[i].pattern.is_some()).collect();
        let gated: Vec<&str> = Gate::for_surface(&rules.rules, &wanted, &[]).iter().flat_map(|g| g.members.iter().map(|&i| rules.rules[i].id.as_str())).collect();
        assert!(gated.contains(&"PII-CARD-001") && gated.contains(&"PHISH-INTEL-002"));
        assert!(!gated.contains(&"CRED-GENERIC-001"), "its keywords (token, secret, ...) already narrow it");
        assert!(!gated.contains(&"SMUG-ZALGO-001"), "it runs only on text with special characters");
    }
}
