//! Keeps the rule pack honest: proves that a rule's keywords cannot hide a match of its
//! pattern, and runs every rule's own `match` / `no_match` examples through the real engine.

use std::sync::Arc;

use regex_syntax::hir::{Class, Hir, HirKind};

use super::{Rule, RuleSet, TextView};
use crate::detect::Engine;
use crate::record::{Record, RecordKind, RecordOrigin, SourceFormat, Surface, TextSpan};

/// True when every string matching `pattern` contains one of `keywords` (compared without
/// case). The proof is conservative: a pattern it cannot analyse fails.
pub fn keywords_cover(pattern: &str, keywords: &[String]) -> Result<bool, String> {
    let hir = regex_syntax::ParserBuilder::new().build().parse(pattern).map_err(|e| e.to_string())?;
    Ok(keywords_cover_hir(&hir, keywords))
}

/// [`keywords_cover`] on an already parsed pattern.
pub fn keywords_cover_hir(hir: &Hir, keywords: &[String]) -> bool {
    let lower: Vec<String> = keywords.iter().map(|k| k.to_lowercase()).collect();
    proves(hir, &lower)
}

fn contains_keyword(s: &str, keywords: &[String]) -> bool {
    keywords.iter().any(|k| s.contains(k.as_str()))
}

/// Does every match of `hir` contain a keyword?
fn proves(hir: &Hir, keywords: &[String]) -> bool {
    match hir.kind() {
        HirKind::Literal(lit) => String::from_utf8(lit.0.to_vec()).is_ok_and(|s| contains_keyword(&s.to_lowercase(), keywords)),
        HirKind::Class(class) => {
            single_char(hir).is_some_and(|c| contains_keyword(&c.to_string(), keywords)) || small_class_all_keywords(class, keywords)
        }
        HirKind::Capture(cap) => proves(&cap.sub, keywords),
        HirKind::Repetition(rep) => rep.min >= 1 && proves(&rep.sub, keywords),
        HirKind::Alternation(alts) => alts.iter().all(|a| proves(a, keywords)),
        HirKind::Concat(parts) => {
            if parts.iter().any(|p| proves(p, keywords)) {
                return true;
            }
            // A keyword may span several children: follow every text that runs of fixed text,
            // small classes and alternations of fixed texts can spell (`\([a-z]\)` with
            // keywords `(a)` to `(z)`, `\[(?:data|info)\]` with `[data]` and `[info]`), as far
            // as it takes each one to contain a keyword.
            //
            // A text that holds no keyword yet can only complete one with its last characters,
            // so each keeps just those: a long pattern costs time in proportion to its length.
            let longest_keyword = keywords.iter().map(String::len).max().unwrap_or(0);
            let mut runs = vec![String::new()];
            for p in parts {
                match spellings(p).filter(|options| runs.len() * options.len() <= MAX_SPELLINGS) {
                    Some(options) => {
                        let mut next: Vec<String> = Vec::with_capacity(runs.len() * options.len());
                        for run in &runs {
                            for o in &options {
                                let text = format!("{run}{o}");
                                if contains_keyword(&text, keywords) {
                                    continue;
                                }
                                next.push(last_chars(&text, longest_keyword.saturating_sub(1)).to_owned());
                            }
                        }
                        if next.is_empty() {
                            return true;
                        }
                        next.sort_unstable();
                        next.dedup();
                        runs = next;
                    }
                    None => {
                        // `on(?:error|load)` with keyword `onerror`: every branch, read after
                        // the text before it, must give a keyword.
                        if runs.iter().all(|run| !run.is_empty() && alternation_completes(p, run, keywords)) {
                            return true;
                        }
                        runs = vec![String::new()];
                    }
                }
            }
            false
        }
        HirKind::Empty | HirKind::Look(_) => false,
    }
}

/// The end of `text`, at most `bytes` long, starting on a character boundary.
fn last_chars(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// How many texts a keyword proof follows through one concatenation before it gives up.
const MAX_SPELLINGS: usize = 256;

/// The texts a node can match when they are few and fixed: a fixed text, a class of at most 32
/// characters, or an alternation of fixed texts (lower case).
fn spellings(hir: &Hir) -> Option<Vec<String>> {
    if let Some(t) = fixed_text(hir) {
        return Some(vec![t]);
    }
    match hir.kind() {
        HirKind::Capture(cap) => spellings(&cap.sub),
        HirKind::Class(class) => {
            let chars: Vec<char> = match class {
                Class::Unicode(u) => u.iter().flat_map(|r| r.start()..=r.end()).take(33).collect(),
                Class::Bytes(b) => b.iter().flat_map(|r| r.start()..=r.end()).map(char::from).take(33).collect(),
            };
            // The prefilter folds ASCII case only: a non-ASCII letter with another case would
            // be compared one way here and another way there.
            let foldable = |c: &char| c.is_ascii() || c.to_lowercase().eq(std::iter::once(*c));
            (chars.len() <= 32 && chars.iter().all(foldable)).then(|| chars.iter().map(|c| c.to_ascii_lowercase().to_string()).collect())
        }
        HirKind::Alternation(alts) => alts.iter().map(fixed_text).collect(),
        _ => None,
    }
}

/// Keywords implied by a pattern written without any: literal texts one of which every match
/// must contain, so a rule that would otherwise run on every text runs only where the
/// prefilter saw one (`@` or `://` for an e-mail-or-URL pattern). Only ASCII texts, compared
/// without ASCII case exactly as the prefilter compares them, and only texts rare enough to be
/// worth a prefilter hit: three bytes or more, or one with punctuation that prose seldom has.
/// The proof of [`keywords_cover_hir`] must agree, or nothing is implied.
pub fn implied_keywords(hir: &Hir) -> Vec<String> {
    let Some(mut found) = required_texts(hir) else { return Vec::new() };
    found.sort();
    found.dedup();
    if found.is_empty() || !found.iter().all(|t| selective(t)) || !keywords_cover_hir(hir, &found) {
        return Vec::new();
    }
    found
}

/// A text worth a prefilter hit: long enough, or with punctuation that prose seldom has.
fn selective(text: &str) -> bool {
    text.len() >= 3 || text.bytes().any(|b| b"@:/\\|<>{}[]$#%^~=;&*_`".contains(&b))
}

/// Sets of texts (lower-case ASCII) every match of a pattern contains one of each: the
/// parts of its top-level sequence that show one ([`required_texts`]), and runs of fixed text
/// between them. A rule's keywords say where it may match; these let the prefilter wake it only
/// where all its parts may be (`content policies ... have been lifted` needs a word from
/// each list, not just "policy"). At most [`MAX_REQUIRED`] sets, the most selective first, each
/// of texts of four bytes or more: a common short word would cost the prefilter a hit on
/// nearly every text and filter out nothing. A set that each of the rule's `keywords` contains
/// a text of is found wherever a keyword is, and is left out.
pub fn required_groups(hir: &Hir, keywords: &[String]) -> Vec<Vec<String>> {
    let lower: Vec<String> = keywords.iter().map(|k| k.to_ascii_lowercase()).collect();
    let adds = |set: &Vec<String>| lower.is_empty() || !lower.iter().all(|k| set.iter().any(|t| k.contains(t.as_str())));
    let mut groups = selective_groups(hir);
    groups.retain(adds);
    groups.truncate(MAX_REQUIRED);
    groups
}

/// Every set of texts [`collect_required`] finds whose texts are all four bytes or more, the
/// most selective first (longest shortest text, then fewest texts).
fn selective_groups(hir: &Hir) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    collect_required(hir, &mut groups);
    for g in &mut groups {
        g.sort();
        g.dedup();
    }
    groups.retain(|g| !g.is_empty() && g.len() <= MAX_IMPLIED && g.iter().all(|t| t.len() >= 4));
    let selectivity = |g: &Vec<String>| (std::cmp::Reverse(g.iter().map(String::len).min().unwrap_or(0)), g.len());
    // Then by the texts, so that a set found twice is next to itself and kept once.
    groups.sort_by(|a, b| selectivity(a).cmp(&selectivity(b)).then_with(|| a.cmp(b)));
    groups.dedup();
    groups
}

/// Most sets [`required_groups`] gives a rule.
const MAX_REQUIRED: usize = 3;

fn collect_required(hir: &Hir, groups: &mut Vec<Vec<String>>) {
    match hir.kind() {
        HirKind::Capture(cap) => collect_required(&cap.sub, groups),
        HirKind::Repetition(rep) if rep.min >= 1 => collect_required(&rep.sub, groups),
        HirKind::Concat(parts) => {
            for p in parts.iter().filter(|p| ascii_fixed_text(p).is_none()) {
                collect_required(p, groups);
            }
            groups.extend(fixed_runs(parts).into_iter().map(|run| vec![run]));
        }
        // A match is one branch's: the n-th set of every branch together is a set it
        // contains a text of, for each n that every branch has.
        HirKind::Alternation(alts) => {
            // Most are lists of words: one set, without working out each branch's.
            if let Some(texts) = alts.iter().map(ascii_fixed_text).collect::<Option<Vec<String>>>() {
                groups.push(texts);
                return;
            }
            let per_branch: Vec<Vec<Vec<String>>> = alts.iter().map(selective_groups).collect();
            let shared = per_branch.iter().map(Vec::len).min().unwrap_or(0);
            for n in 0..shared {
                groups.push(per_branch.iter().flat_map(|branch| branch[n].iter().cloned()).collect());
            }
        }
        _ => groups.extend(required_texts(hir)),
    }
}

/// Most alternatives a set of implied keywords may have before the set stops being selective.
const MAX_IMPLIED: usize = 32;

/// Texts (lower-case ASCII) one of which every match of `hir` contains, if the pattern shows
/// such a set: a literal, a case-insensitive letter, a run of them inside a concatenation,
/// or one text from each branch of an alternation.
fn required_texts(hir: &Hir) -> Option<Vec<String>> {
    match hir.kind() {
        HirKind::Literal(_) | HirKind::Class(_) => ascii_fixed_text(hir).filter(|t| !t.is_empty()).map(|t| vec![t]),
        HirKind::Capture(cap) => required_texts(&cap.sub),
        HirKind::Repetition(rep) if rep.min >= 1 => required_texts(&rep.sub),
        HirKind::Alternation(alts) => {
            let mut all = Vec::new();
            for a in alts {
                all.extend(required_texts(a)?);
                if all.len() > MAX_IMPLIED {
                    return None;
                }
            }
            Some(all)
        }
        HirKind::Concat(parts) => {
            let mut candidates: Vec<Vec<String>> = parts.iter().filter_map(required_texts).collect();
            candidates.extend(fixed_runs(parts).into_iter().map(|run| vec![run]));
            // The most selective set: all of its texts worth a hit, then its shortest text
            // longest, then the fewest texts.
            candidates.into_iter().max_by_key(|set| {
                (set.iter().all(|t| selective(t)), set.iter().map(String::len).min().unwrap_or(0), std::cmp::Reverse(set.len()))
            })
        }
        _ => None,
    }
}

/// The texts that runs of adjacent fixed parts of a concatenation spell, each read as one
/// longer text (`(?i)h` `t` `tp` → `http`).
fn fixed_runs(parts: &[Hir]) -> Vec<String> {
    let mut runs = Vec::new();
    let mut run = String::new();
    for p in parts {
        match ascii_fixed_text(p) {
            Some(t) => run.push_str(&t),
            None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// The one lower-case ASCII text a node always matches, compared without ASCII case: a literal,
/// a class of one ASCII character in either case, or a concatenation of them.
fn ascii_fixed_text(hir: &Hir) -> Option<String> {
    match hir.kind() {
        HirKind::Literal(lit) => lit.0.is_ascii().then(|| String::from_utf8_lossy(&lit.0).to_ascii_lowercase()),
        HirKind::Class(class) => {
            let chars: Vec<char> = match class {
                Class::Unicode(u) => u.iter().flat_map(|r| r.start()..=r.end()).take(3).collect(),
                Class::Bytes(b) => b.iter().flat_map(|r| r.start()..=r.end()).map(char::from).take(3).collect(),
            };
            // `(?i)k` also admits the Kelvin sign, which the ASCII prefilter would not see.
            match chars.as_slice() {
                [c] if c.is_ascii() => Some(c.to_ascii_lowercase().to_string()),
                [a, b] if a.is_ascii_alphabetic() && a.eq_ignore_ascii_case(b) => Some(a.to_ascii_lowercase().to_string()),
                _ => None,
            }
        }
        HirKind::Capture(cap) => ascii_fixed_text(&cap.sub),
        HirKind::Concat(parts) => parts.iter().map(ascii_fixed_text).collect(),
        HirKind::Repetition(rep) if rep.min == 1 && rep.max == Some(1) => ascii_fixed_text(&rep.sub),
        _ => None,
    }
}

fn alternation_completes(hir: &Hir, before: &str, keywords: &[String]) -> bool {
    let hir = match hir.kind() {
        HirKind::Capture(cap) => &cap.sub,
        _ => hir,
    };
    let HirKind::Alternation(alts) = hir.kind() else { return false };
    alts.iter().all(|a| proves(a, keywords) || contains_keyword(&format!("{before}{}", fixed_prefix(a)), keywords))
}

/// The fixed text every match of a node starts with (possibly empty).
fn fixed_prefix(hir: &Hir) -> String {
    if let Some(t) = fixed_text(hir) {
        return t;
    }
    match hir.kind() {
        HirKind::Capture(cap) => fixed_prefix(&cap.sub),
        HirKind::Concat(parts) => {
            let mut out = String::new();
            for p in parts {
                match fixed_text(p) {
                    Some(t) => out.push_str(&t),
                    None => {
                        out.push_str(&fixed_prefix(p));
                        break;
                    }
                }
            }
            out
        }
        HirKind::Repetition(rep) if rep.min >= 1 => fixed_prefix(&rep.sub),
        _ => String::new(),
    }
}

/// A class of a few characters, each of which is a keyword itself (`[!\[]` with keywords
/// `!` and `[`).
fn small_class_all_keywords(class: &Class, keywords: &[String]) -> bool {
    let chars: Vec<char> = match class {
        Class::Unicode(u) => u.iter().flat_map(|r| r.start()..=r.end()).take(17).collect(),
        Class::Bytes(b) => b.iter().flat_map(|r| r.start()..=r.end()).map(char::from).take(17).collect(),
    };
    chars.len() <= 16 && chars.iter().all(|c| contains_keyword(&c.to_lowercase().to_string(), keywords))
}

/// The one (lower-case) text a node always matches, if it has one.
fn fixed_text(hir: &Hir) -> Option<String> {
    match hir.kind() {
        HirKind::Literal(lit) => String::from_utf8(lit.0.to_vec()).ok().map(|s| s.to_lowercase()),
        HirKind::Class(_) => single_char(hir).map(|c| c.to_string()),
        HirKind::Capture(cap) => fixed_text(&cap.sub),
        HirKind::Concat(parts) => parts.iter().map(fixed_text).collect(),
        HirKind::Repetition(rep) if rep.min == 1 && rep.max == Some(1) => fixed_text(&rep.sub),
        _ => None,
    }
}

/// A class that only matches case variants of one character (what `(?i)x` becomes).
fn single_char(hir: &Hir) -> Option<char> {
    let HirKind::Class(class) = hir.kind() else { return None };
    let mut chars = Vec::new();
    match class {
        Class::Unicode(u) => {
            for r in u.iter() {
                if (r.end() as u32) - (r.start() as u32) > 4 {
                    return None;
                }
                for c in r.start()..=r.end() {
                    chars.push(c);
                }
            }
        }
        Class::Bytes(b) => {
            for r in b.iter() {
                for c in r.start()..=r.end() {
                    chars.push(c as char);
                }
            }
        }
    }
    let first = chars.first()?.to_lowercase().next()?;
    // The Kelvin sign and long s fold to k and s; they are still one letter.
    chars
        .iter()
        .all(|c| c.to_lowercase().next() == Some(first) || matches!((first, c), ('k', '\u{212a}') | ('s', '\u{17f}')))
        .then_some(first)
}

/// The first literal with an upper-case ASCII letter in `pattern` (outside `(?i)` groups, which
/// the parser turns into classes), if any.
pub fn uppercase_literal(pattern: &str) -> Result<Option<String>, String> {
    let hir = regex_syntax::ParserBuilder::new().build().parse(pattern).map_err(|e| e.to_string())?;
    Ok(find_upper(&hir))
}

pub(crate) fn find_upper(hir: &Hir) -> Option<String> {
    match hir.kind() {
        HirKind::Literal(lit) => {
            let s = String::from_utf8_lossy(&lit.0).into_owned();
            s.chars().any(|c| c.is_ascii_uppercase()).then_some(s)
        }
        HirKind::Capture(cap) => find_upper(&cap.sub),
        HirKind::Repetition(rep) => find_upper(&rep.sub),
        HirKind::Alternation(parts) | HirKind::Concat(parts) => parts.iter().find_map(find_upper),
        _ => None,
    }
}

/// True when every string `pattern` matches (as written, case-sensitively) contains a character
/// outside printable ASCII (non-ASCII, or a control character other than tab and line breaks).
pub fn needs_special_char(pattern: &str) -> Result<bool, String> {
    let hir = regex_syntax::ParserBuilder::new().build().parse(pattern).map_err(|e| e.to_string())?;
    Ok(special(&hir))
}

fn is_special(c: char) -> bool {
    !c.is_ascii() || (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r'))
}

pub(crate) fn special(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Literal(lit) => String::from_utf8_lossy(&lit.0).chars().any(is_special),
        HirKind::Class(Class::Unicode(u)) => u.iter().all(|r| (r.start()..=r.end()).all(is_special)),
        HirKind::Class(Class::Bytes(b)) => b.iter().all(|r| (r.start()..=r.end()).all(|x| x >= 0x80 || is_special(x as char))),
        HirKind::Capture(cap) => special(&cap.sub),
        HirKind::Repetition(rep) => rep.min >= 1 && special(&rep.sub),
        HirKind::Alternation(alts) => alts.iter().all(special),
        HirKind::Concat(parts) => parts.iter().any(special),
        HirKind::Empty | HirKind::Look(_) => false,
    }
}

/// One example that did not behave as its rule says.
#[derive(Debug, Clone)]
pub struct ExampleFailure {
    pub rule_id: String,
    pub file: String,
    pub example: String,
    pub expected_match: bool,
}

/// Runs each rule's examples through an engine made of that rule alone, so one rule's
/// examples test that rule and nothing else.
pub fn run_examples(rules: &RuleSet) -> (usize, Vec<ExampleFailure>) {
    let mut ran = 0;
    let mut failures = Vec::new();
    for rule in &rules.rules {
        // Patterns compile lazily in scans; validation compiles every one.
        if let Some(err) = rule.regexes().find_map(|p| p.compile_error()) {
            failures.push(ExampleFailure {
                rule_id: rule.id.clone(),
                file: rule.file.clone(),
                example: format!("(the pattern does not compile: {err})"),
                expected_match: true,
            });
            continue;
        }
        let single = RuleSet { rules: vec![rule.clone()], thresholds: rules.thresholds.clone(), behaviors: Vec::new() };
        let intel = crate::intel::Intel::with_entries(&rule.examples_intel).unwrap_or_default();
        let engine = Engine::new(Arc::new(single), Arc::new(intel));
        for (texts, expected) in [(&rule.examples_match, true), (&rule.examples_no_match, false)] {
            for text in texts {
                ran += 1;
                let matched = example_matches(&engine, rule, text);
                if matched != expected {
                    failures.push(ExampleFailure {
                        rule_id: rule.id.clone(),
                        file: rule.file.clone(),
                        example: text.clone(),
                        expected_match: expected,
                    });
                }
            }
        }
    }
    (ran, failures)
}

/// Text examples go on the rule's first surface of a chat record; examples of condition-only
/// rules are records (JSON) read the way a scan reads them.
fn example_matches(engine: &Engine, rule: &Rule, text: &str) -> bool {
    let file: Arc<str> = Arc::from("<example>");
    let records: Vec<Record> = if rule.pattern.is_none() {
        crate::record::parse_frame(text, &file, 1, 0, Default::default()).records
    } else {
        let surface = rule.surfaces.first().copied().unwrap_or(Surface::UserPrompt);
        let at = RecordOrigin { file: file.clone(), line: 1, index: None, offset: 0 };
        let mut r = Record::new(RecordKind::ChatExchange, SourceFormat::App, &at);
        r.surfaces.push(TextSpan { surface, origin: "example".into(), text: text.to_owned(), truncated: false });
        if rule.view != TextView::Original && !rule.conditions.is_empty() {
            // Pattern rules with conditions are tested on records that meet them.
            if let Ok(kind) = rule_kind_condition(rule) {
                r.kind = kind;
            }
        }
        vec![r]
    };
    records.iter().any(|r| !engine.detections(r).is_empty())
}

/// A `kind` condition of the rule, so its text examples sit in the right kind of record.
fn rule_kind_condition(rule: &Rule) -> Result<RecordKind, ()> {
    use crate::detect::conditions::Test;
    rule.conditions
        .iter()
        .find(|c| c.field == "kind")
        .and_then(|c| match &c.test {
            Test::AnyOf(v) => v.first().and_then(|k| RecordKind::parse(k)),
            _ => None,
        })
        .ok_or(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn implied(pattern: &str) -> Vec<String> {
        implied_keywords(&regex_syntax::ParserBuilder::new().build().parse(pattern).unwrap())
    }

    #[test]
    fn patterns_without_keywords_imply_the_texts_every_match_contains() {
        assert_eq!(implied(r"[\w.+-]+@[\w-]+\.[a-z]{2,}"), kw(&["@"]), "'.' is everywhere, '@' is not");
        assert_eq!(implied(r"(?i:https?|ftp)://\S+"), kw(&["://"]));
        assert_eq!(implied(r"\byour\s+(?:account|mailbox)"), kw(&["account", "mailbox"]));
        assert_eq!(implied(r"(?i)Begin\s+Key"), kw(&["begin"]), "case-insensitive letters read as one text");
    }

    #[test]
    fn nothing_is_implied_where_the_prefilter_could_miss_a_match() {
        assert!(implied(r"(?i)k\w+").is_empty(), "(?i)k also matches the Kelvin sign");
        assert!(implied(r"\d{3}-\d{4}").is_empty(), "'-' alone is in most texts");
        assert!(implied(r"ab|cd").is_empty(), "two letters are not selective");
        assert!(implied(r"(?:secret)?token").len() == 1);
        assert!(implied(r"(?:secret)?\w+").is_empty(), "an optional part proves nothing");
        assert!(implied(r"café").is_empty(), "non-ASCII text is not compared the prefilter's way");
    }

    fn required(pattern: &str) -> Vec<Vec<String>> {
        required_groups(&regex_syntax::ParserBuilder::new().build().parse(pattern).unwrap(), &[])
    }

    #[test]
    fn required_texts_are_the_parts_of_a_sequence_most_selective_first() {
        let p = r"(?i)\b(?:openai|your)\s+(?:polic(?:y|ies)|rules)\s+(?:are|were)\s+(?:lifted|suspended)\b";
        // `are|were` is too common to be worth a prefilter hit, `\s+` no text at all; `(?i)s`
        // also matches the long s (ſ), which the prefilter would not see as an `s`.
        assert_eq!(required(p), vec![kw(&["lifted", "pended"]), kw(&["openai", "your"]), kw(&["polic", "rule"])]);
        assert_eq!(required(r"hooks\.slack\.com/(?:services|workflows)/\w+"), vec![kw(&["hooks.slack.com/"]), kw(&["services", "workflows"])]);
        assert_eq!(required(r"(?:secret\s+)?token\s*=\s*\w{4,}"), vec![kw(&["token"])], "an optional part is not required");
        assert!(required(r"(?:[a-z]+\s+){3}now").is_empty(), "three letters are not selective");
        // A set the keywords already imply adds nothing to them.
        let hir = regex_syntax::ParserBuilder::new().build().parse(p).unwrap();
        assert_eq!(required_groups(&hir, &kw(&["Lifted", "SUSPENDED"])), vec![kw(&["openai", "your"]), kw(&["polic", "rule"])]);
    }

    #[test]
    fn required_texts_of_an_alternation_take_a_set_from_every_branch() {
        let p = r"broken\s+free\s+of\s+(?:limits|rules)|(?:without|beyond)\s+(?:any\s+)?(?:limits|rules)";
        let groups = required(p);
        assert!(groups.contains(&kw(&["limits", "rules"])), "{groups:?}");
        assert!(groups.contains(&kw(&["beyond", "broken", "without"])), "{groups:?}");
        assert!(required(r"foobar|[a-z]+baz").is_empty(), "a branch without a selective text leaves no set");
    }

    #[test]
    fn required_texts_never_hide_a_match_the_prefilter_would_see_differently() {
        let groups = required(r"(?i)kelvin\s+scale");
        assert!(groups.iter().flatten().all(|t| !t.contains('k')), "(?i)k also matches the Kelvin sign: {groups:?}");
        assert_eq!(groups, vec![kw(&["elvin"]), kw(&["cale"])], "nor ſ for (?i)s");
        assert!(required(r"café\s+menu").iter().flatten().all(|t| t.is_ascii()));
    }

    proptest::proptest! {
        /// Whatever text a pattern matches holds a text of each of its required sets, as the
        /// case-blind prefilter compares them.
        #[test]
        fn a_match_always_holds_a_text_of_every_required_set(
            words in proptest::collection::vec(proptest::sample::select(vec![
                "Your", "OPENAI", "policy", "Policies", "rules", "are", "were", "Lifted", "suspended", "kelvin",
                "\u{212a}elvin", "scale", "broken", "free", "of", "limits", "without", "beyond", "any", "x",
            ]), 1..10),
            seps in proptest::collection::vec(proptest::sample::select(vec![" ", "  ", "\t", "\n", "", "."]), 10),
        ) {
            let text: String = words.iter().zip(&seps).flat_map(|(w, s)| [*w, *s]).collect();
            let lower = text.to_ascii_lowercase();
            for p in [
                r"(?i)\b(?:openai|your)\s+(?:polic(?:y|ies)|rules)\s+(?:are|were)\s+(?:lifted|suspended)\b",
                r"broken\s+free\s+of\s+(?:limits|rules)|(?:without|beyond)\s+(?:any\s+)?(?:limits|rules)",
                r"(?i)kelvin\s+scale",
                r"(?i)(?:rules|policies)+\s*(?:are)?\s*(?:lifted|free)",
            ] {
                if regex::Regex::new(p).unwrap().is_match(&text) {
                    for group in required(p) {
                        proptest::prop_assert!(group.iter().any(|t| lower.contains(t.as_str())), "{p} matched {text:?} without any of {group:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn keyword_proofs() {
        let p = r"(?i)\b(?:ignore|disregard)\s+(?:all\s+)?previous\s+instructions";
        assert!(keywords_cover(p, &kw(&["ignore", "disregard"])).unwrap());
        assert!(keywords_cover(p, &kw(&["previous"])).unwrap());
        assert!(!keywords_cover(p, &kw(&["ignore"])).unwrap(), "disregard... would be hidden");
        assert!(!keywords_cover(r"(?:all\s+)?rules", &kw(&["all"])).unwrap());
        assert!(keywords_cover(r"dan\s+mode|developer mode", &kw(&["mode"])).unwrap());
        assert!(keywords_cover(r"(?i)do\s+anything\s+now", &kw(&["anything"])).unwrap());
        assert!(!keywords_cover(r"[a-z]+ mode", &kw(&["dan"])).unwrap());
        assert!(keywords_cover(r"\bon(?:error|load|mouse\w+)\s*=", &kw(&["onerror", "onload", "onmouse"])).unwrap());
        assert!(!keywords_cover(r"\bon(?:error|load|blur)\s*=", &kw(&["onerror", "onload"])).unwrap());
    }

    #[test]
    fn keyword_proofs_read_through_small_classes_and_alternations() {
        let letters: Vec<String> = ('a'..='z').map(|c| format!("({c})")).collect();
        assert!(keywords_cover(r"[^\n]{0,40}\([a-z]\)[^\n]{0,40}\n", &letters).unwrap());
        assert!(!keywords_cover(r"\([a-z ]\)", &letters).unwrap(), "`( )` would be hidden");
        assert!(keywords_cover(r"\breplace\s+\[(?:data|info)\]", &kw(&["[data]", "[info]"])).unwrap());
        assert!(!keywords_cover(r"\[(?:data|info|num)\]", &kw(&["[data]", "[info]"])).unwrap(), "`[num]` would be hidden");
        assert!(!keywords_cover(r"\[(?:data|\w+)\]", &kw(&["[data]"])).unwrap(), "a branch that is not fixed text proves nothing");
        assert!(keywords_cover(r"(?:ab|cd)(?:ef|gh)", &kw(&["bef", "bgh", "def", "dgh"])).unwrap());
        assert!(!keywords_cover(r"(?:ab|cd)(?:ef|gh)", &kw(&["bef", "bgh", "def"])).unwrap(), "`cdgh` would be hidden");
        // Only the end of a text is kept between parts; a keyword across many parts is found.
        let long = format!("[ab]{}(k)(e)(y)", "(x)".repeat(5000));
        assert!(keywords_cover(&long, &kw(&["xxkey"])).unwrap());
        assert!(!keywords_cover(&long, &kw(&["xxkez"])).unwrap());
        assert!(keywords_cover(r"(é)(é)(ë)", &kw(&["éë"])).unwrap(), "cut on character boundaries");
        assert!(!keywords_cover(r"[İx]y", &kw(&["i̇y", "xy"])).unwrap(), "the prefilter does not fold İ");
    }

    #[test]
    fn special_character_analysis() {
        assert!(needs_special_char(r"[\x{200B}-\x{200D}]{8,}").unwrap());
        assert!(needs_special_char(r"[A-Za-z][\x{200B}\x08]+[A-Za-z]").unwrap());
        assert!(!needs_special_char(r"ignore|[\x{200B}]").unwrap());
        assert!(!needs_special_char(r"[\x{200B}]*abc").unwrap());
    }
}
