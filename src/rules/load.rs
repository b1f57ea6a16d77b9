//! Loads rule files (the embedded default pack and `--rules DIR` folders), compiles them, and
//! explains every rule it rejects with the file, the rule id and the reason, the way
//! hayabusa's and chainsaw's load summaries do. A bad rule never loads half-way.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use regex_automata::meta::{self, Regex};

use super::schema::{RawCondition, RawRule, RawRuleFile};
use super::{surface_from_str, validate, Check, Checksum, Rule, RuleSet, Severity, TextView, Threat, UrlTest, Validate};
use crate::detect::conditions::{Condition, Test, FIELDS};

/// The default rule pack, compiled into the binary.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("ascii_smuggling.toml", include_str!("../../rules/ascii_smuggling.toml")),
    ("azure_verdicts.toml", include_str!("../../rules/azure_verdicts.toml")),
    ("behavior.toml", include_str!("../../rules/behavior.toml")),
    ("control_plane.toml", include_str!("../../rules/control_plane.toml")),
    ("credentials.toml", include_str!("../../rules/credentials.toml")),
    ("data_poisoning.toml", include_str!("../../rules/data_poisoning.toml")),
    ("indirect_injection.toml", include_str!("../../rules/indirect_injection.toml")),
    ("jailbreak.toml", include_str!("../../rules/jailbreak.toml")),
    ("metadata.toml", include_str!("../../rules/metadata.toml")),
    ("phishing.toml", include_str!("../../rules/phishing.toml")),
    ("recon_leakage.toml", include_str!("../../rules/recon_leakage.toml")),
    ("sensitive_data.toml", include_str!("../../rules/sensitive_data.toml")),
    ("tool_invocation.toml", include_str!("../../rules/tool_invocation.toml")),
];

/// A rule (or file) that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: String,
    pub rule_id: Option<String>,
    pub reason: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule_id {
            Some(id) => write!(f, "{}: rule {id}: {}", self.file, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

/// One rule file's name and text.
pub struct RuleSource {
    pub name: String,
    pub text: String,
}

pub fn embedded_sources() -> Vec<RuleSource> {
    EMBEDDED.iter().map(|(name, text)| RuleSource { name: format!("<embedded>/{name}"), text: (*text).to_owned() }).collect()
}

/// The `*.toml` files of a folder (sorted, recursively), or a single file.
pub fn path_sources(path: &Path) -> Result<Vec<RuleSource>, RuleError> {
    let err = |reason: String| RuleError { file: path.display().to_string(), rule_id: None, reason };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read rules: {e}")))?;
    let files: Vec<std::path::PathBuf> = if meta.is_dir() {
        walkdir::WalkDir::new(path)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "toml"))
            .map(|e| e.into_path())
            .collect()
    } else {
        vec![path.to_owned()]
    };
    files
        .into_iter()
        .map(|f| {
            std::fs::read_to_string(&f)
                .map(|text| RuleSource { name: f.display().to_string(), text })
                .map_err(|e| RuleError { file: f.display().to_string(), rule_id: None, reason: format!("cannot read: {e}") })
        })
        .collect()
}

/// Parses and compiles every source. Good rules are kept even when others fail; every
/// failure is returned.
pub fn compile(sources: &[RuleSource]) -> (RuleSet, Vec<RuleError>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut behaviors = Vec::new();
    let mut errors = Vec::new();
    let mut thresholds: BTreeMap<Threat, f64> = BTreeMap::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let files: Vec<Result<RawRuleFile, toml::de::Error>> = sources.iter().map(|src| toml::from_str(&src.text)).collect();
    let mut parsed = Parsed::expecting(files.iter().flatten().flat_map(|f| &f.rule));
    for (src, file) in sources.iter().zip(files) {
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                errors.push(RuleError { file: src.name.clone(), rule_id: None, reason: one_line(&e.to_string()) });
                continue;
            }
        };
        for d in file.detector {
            match Threat::parse(&d.threat) {
                Some(t) if d.threshold > 0.0 && d.threshold.is_finite() => {
                    thresholds.insert(t, d.threshold);
                }
                _ => errors.push(RuleError {
                    file: src.name.clone(),
                    rule_id: None,
                    reason: format!("detector {:?}: unknown threat or threshold not above 0", d.threat),
                }),
            }
        }
        for raw in file.behavior {
            let id = raw.id.clone();
            match super::behavior::compile(raw, &src.name) {
                Ok(rule) => {
                    if let Some(first) = seen.get(&rule.id) {
                        errors.push(RuleError { file: src.name.clone(), rule_id: Some(id), reason: format!("duplicate id (first defined in {first})") });
                        continue;
                    }
                    seen.insert(rule.id.clone(), src.name.clone());
                    behaviors.push(rule);
                }
                Err(reason) => errors.push(RuleError { file: src.name.clone(), rule_id: Some(id), reason }),
            }
        }
        for raw in file.rule {
            let id = raw.id.clone();
            match compile_rule(raw, &src.name, &mut parsed) {
                Ok(rule) => {
                    if let Some(first) = seen.get(&rule.id) {
                        errors.push(RuleError {
                            file: src.name.clone(),
                            rule_id: Some(id),
                            reason: format!("duplicate id (first defined in {first})"),
                        });
                        continue;
                    }
                    seen.insert(rule.id.clone(), src.name.clone());
                    rules.push(rule);
                }
                Err(reason) => errors.push(RuleError { file: src.name.clone(), rule_id: Some(id), reason }),
            }
        }
    }
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    share_regexes(&mut rules);
    behaviors.sort_by(|a, b| a.id.cmp(&b.id));
    (RuleSet { rules, thresholds: thresholds.into_iter().collect(), behaviors }, errors)
}

/// Makes rules with the same pattern or allow pattern share one compiled regex. The default
/// pack writes many rules twice (one for what the model reads, one for what it writes, at
/// different severities), and allow lists repeat: 72 of its 248 regexes are copies, each of
/// which took as long to compile as the first.
fn share_regexes(rules: &mut [Rule]) {
    let mut first: std::collections::HashMap<(String, bool), super::LazyRegex> = std::collections::HashMap::new();
    for re in rules.iter_mut().flat_map(|r| r.pattern.iter_mut().chain(r.allow.iter_mut())) {
        *re = first.entry((re.source.clone(), re.case_insensitive)).or_insert_with(|| re.clone()).clone();
    }
}

/// Rewrites every word-boundary assertion (`\b`, `\B`, `\b{start}`, ...) as its ASCII form
/// `(?-u:\b)`. A Unicode word boundary makes the regex engine's fast DFA give up at the first
/// non-ASCII byte and rescan with its slowest engine: one emoji or accented letter in a prompt
/// cost 100 times the time. The ASCII form also treats a letter of another script as a
/// boundary, which is what evasion-aware matching wants (`请ignore` still starts a word).
/// Patterns that do not parse are returned unchanged, for the compiler to report.
pub fn ascii_word_boundaries(pattern: &str) -> String {
    use regex_syntax::ast::{self, Ast, AssertionKind};

    struct Boundaries(Vec<std::ops::Range<usize>>);
    impl ast::Visitor for Boundaries {
        type Output = Vec<std::ops::Range<usize>>;
        type Err = ();
        fn finish(self) -> Result<Self::Output, ()> {
            Ok(self.0)
        }
        fn visit_pre(&mut self, node: &Ast) -> Result<(), ()> {
            if let Ast::Assertion(a) = node {
                let word = !matches!(a.kind, AssertionKind::StartLine | AssertionKind::EndLine | AssertionKind::StartText | AssertionKind::EndText);
                if word {
                    self.0.push(a.span.start.offset..a.span.end.offset);
                }
            }
            Ok(())
        }
    }

    let Ok(parsed) = ast::parse::Parser::new().parse(pattern) else { return pattern.to_owned() };
    let Ok(spans) = ast::visit(&parsed, Boundaries(Vec::new())) else { return pattern.to_owned() };
    if spans.is_empty() {
        return pattern.to_owned();
    }
    let mut out = String::with_capacity(pattern.len() + spans.len() * 6);
    let mut at = 0;
    for span in spans {
        out.push_str(&pattern[at..span.start]);
        out.push_str("(?-u:");
        out.push_str(&pattern[span.clone()]);
        out.push(')');
        at = span.end;
    }
    out.push_str(&pattern[at..]);
    out
}

pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err("id must be letters, digits, '-', '_' or '.'".into());
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" | ")
}

/// Patterns parsed while loading that a later rule repeats, by text: the pack repeats 36 of
/// its 170 patterns and 36 of its 78 allow patterns, and parsing is most of what loading
/// costs. Only repeated ones are kept, and only until their last use: keeping every parsed
/// pattern cost more in fresh memory than parsing the repeats again.
#[derive(Default)]
struct Parsed {
    /// Uses still to come, by pattern or allow pattern text.
    uses: std::collections::HashMap<String, usize>,
    patterns: std::collections::HashMap<String, Result<std::rc::Rc<regex_syntax::hir::Hir>, String>>,
}

impl Parsed {
    fn expecting<'a>(rules: impl Iterator<Item = &'a RawRule>) -> Parsed {
        let mut uses: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for rule in rules {
            for text in rule.pattern.iter().chain(&rule.allow) {
                *uses.entry(text.clone()).or_default() += 1;
            }
        }
        Parsed { uses, patterns: Default::default() }
    }

    /// `text` parsed, from the kept copy when an earlier rule had the same.
    fn parse(&mut self, text: &str) -> Result<std::rc::Rc<regex_syntax::hir::Hir>, String> {
        let left = self.uses.get_mut(text).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        let done = match left {
            Some(0) => self.patterns.remove(text),
            _ => self.patterns.get(text).cloned(),
        };
        if let Some(done) = done {
            return done;
        }
        let parsed = regex_syntax::ParserBuilder::new().build().parse(text).map(std::rc::Rc::new).map_err(|e| one_line(&e.to_string()));
        if left.is_some_and(|n| n > 0) {
            self.patterns.insert(text.to_owned(), parsed.clone());
        }
        parsed
    }
}

fn compile_rule(raw: RawRule, file: &str, parsed: &mut Parsed) -> Result<Rule, String> {
    check_id(&raw.id)?;
    if raw.title.trim().is_empty() {
        return Err("title is empty".into());
    }
    let threat = Threat::parse(&raw.threat).ok_or_else(|| format!("unknown threat {:?}", raw.threat))?;
    let severity = Severity::parse(&raw.severity).ok_or_else(|| format!("unknown severity {:?}", raw.severity))?;
    let surfaces = raw
        .surfaces
        .iter()
        .map(|s| surface_from_str(s).ok_or_else(|| format!("unknown surface {s:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let view = match raw.text.as_deref().unwrap_or("normalized") {
        "normalized" => TextView::Normalized,
        "original" => TextView::Original,
        "hidden" => TextView::Hidden,
        "decoded" => TextView::Decoded,
        other => return Err(format!("unknown text view {other:?} (normalized, original, hidden, decoded)")),
    };
    let conditions = raw.condition.into_iter().map(compile_condition).collect::<Result<Vec<_>, _>>()?;
    let check = match raw.check.as_deref() {
        None => None,
        Some("system_prompt_echo") => Some(Check::SystemPromptEcho),
        Some(other) => return Err(format!("unknown check {other:?} (system_prompt_echo)")),
    };
    if check.is_some() && raw.pattern.is_some() {
        return Err("a rule has a pattern or a check, not both".into());
    }
    let reads_text = raw.pattern.is_some() || check.is_some();
    if !reads_text && conditions.is_empty() {
        return Err("a rule needs a pattern, a check, a condition, or a combination".into());
    }
    if reads_text && surfaces.is_empty() {
        return Err("a pattern or check rule must name the surfaces it reads".into());
    }
    if !reads_text && !surfaces.is_empty() {
        return Err("surfaces only apply to pattern and check rules".into());
    }
    // One parse serves every check on the pattern: parsing is most of what loading costs.
    let hir = raw.pattern.as_deref().map(|p| parsed.parse(p).map_err(|e| format!("pattern: {e}"))).transpose()?;
    let hir = hir.as_deref();
    let validate = match raw.validate {
        Some(v) => Some(compile_validate(v, raw.pattern.as_deref(), hir)?),
        None => None,
    };
    let min_matches = raw.min_matches.unwrap_or(1);
    if min_matches == 0 || (min_matches > 1 && raw.pattern.is_none()) {
        return Err("min_matches must be at least 1, and above 1 only with a pattern".into());
    }
    let keywords: Vec<String> = raw.keywords.iter().map(|k| k.trim().to_lowercase()).collect();
    // One letter or digit is no prefilter; one punctuation mark (rare in prose) or a symbol of
    // several bytes is.
    if keywords.iter().any(|k| k.is_empty() || (k.len() < 2 && k.bytes().all(|b| b.is_ascii_alphanumeric()))) {
        return Err("keywords must be at least 2 bytes, or one punctuation character".into());
    }
    if raw.pattern.is_none() && !keywords.is_empty() {
        return Err("keywords only apply to pattern rules".into());
    }
    let pattern = match (&raw.pattern, hir) {
        // The normalized, hidden and decoded views are lower case already, so their patterns
        // are compiled as written: Unicode case folding of every class would make compiling
        // the pack (startup) many times slower and matching no better.
        (Some(p), Some(hir)) => {
            if view != TextView::Original {
                if let Some(upper) = validate::find_upper(hir) {
                    return Err(format!(
                        "pattern: {upper:?} has upper-case letters, but {} text is lower case; write the pattern in lower case",
                        match view {
                            TextView::Hidden => "hidden",
                            TextView::Decoded => "decoded",
                            _ => "normalized",
                        }
                    ));
                }
            }
            // The (costly) compilation happens on first use.
            Some(super::LazyRegex::new(p.clone(), false))
        }
        _ => None,
    };
    if let Some(hir) = hir {
        if !keywords.is_empty() {
            match Ok::<bool, String>(validate::keywords_cover_hir(hir, &keywords)) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(
                        "the pattern can match text that contains none of the keywords, so the prefilter would hide it; \
                         add a keyword every match must contain, or remove keywords"
                            .into(),
                    )
                }
                Err(e) => return Err(format!("pattern: {e}")),
            }
        }
    }
    // Checked for syntax now, compiled on first use: compiling the pack's case-blind allow
    // patterns up front was a third of a one-line scan's startup.
    let allow = raw
        .allow
        .iter()
        .map(|a| match parsed.parse(a) {
            Ok(_) => Ok(super::LazyRegex::new(a.clone(), true)),
            Err(e) => Err(format!("allow pattern: {e}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let weight = raw.weight.unwrap_or(1.0);
    if !(weight > 0.0 && weight <= 10.0) {
        return Err("weight must be above 0 and at most 10".into());
    }
    let examples = raw.examples.unwrap_or_default();
    if examples.should_match.is_empty() || examples.no_match.is_empty() {
        return Err("every rule needs [rule.examples] with at least one `match` and one `no_match`".into());
    }
    let needs_special_char = view == TextView::Original
        && hir.is_some_and(validate::special);
    let implied_keywords = match hir {
        Some(hir) if keywords.is_empty() && !needs_special_char => validate::implied_keywords(hir),
        _ => Vec::new(),
    };
    let alert_type = raw.alert_type.unwrap_or_else(|| format!("AIHunt.{}.Rule", camel(threat.as_str())));
    let mut rule = Rule {
        id: raw.id,
        title: raw.title,
        description: raw.description,
        threat,
        severity,
        surfaces,
        keywords,
        implied_keywords,
        required_texts: Vec::new(),
        pattern_source: raw.pattern,
        pattern,
        view,
        decoded: raw.decoded.unwrap_or(true),
        needs_special_char,
        conditions,
        validate,
        min_matches,
        check,
        allow,
        weight,
        alert_type,
        category: match raw.category {
            Some(c) if TACTICS.contains(&c.as_str()) => Some(c),
            Some(c) => return Err(format!("category {c:?} is not a MITRE ATT&CK tactic ({})", TACTICS.join(", "))),
            None => None,
        },
        mitre: raw.mitre,
        atlas: raw.atlas,
        tags: raw.tags,
        examples_match: examples.should_match,
        examples_no_match: examples.no_match,
        examples_intel: examples_intel(&examples.intel)?,
        file: file.to_owned(),
    };
    // Only a rule the prefilter wakes by its keywords (given or implied) uses them.
    let prefilter_keywords = RuleSet::prefilter_keywords(&rule);
    if let (Some(hir), false) = (hir, prefilter_keywords.is_empty()) {
        rule.required_texts = validate::required_groups(hir, prefilter_keywords);
    }
    Ok(rule)
}

fn examples_intel(map: &BTreeMap<String, Vec<String>>) -> Result<Vec<(String, String)>, String> {
    let pairs: Vec<(String, String)> =
        map.iter().flat_map(|(list, entries)| entries.iter().map(move |e| (list.clone(), e.clone()))).collect();
    crate::intel::Intel::check_entries(&pairs).map_err(|e| format!("examples.intel: {e}"))?;
    Ok(pairs)
}

/// MITRE ATT&CK tactics as Graph spells them in `category`.
const TACTICS: &[&str] = &[
    "Reconnaissance", "ResourceDevelopment", "InitialAccess", "Execution", "Persistence", "PrivilegeEscalation",
    "DefenseEvasion", "CredentialAccess", "Discovery", "LateralMovement", "Collection", "CommandAndControl",
    "Exfiltration", "Impact",
];

/// How much of a regex to build: see [`super::LazyRegex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Forward automaton only: searched by the backtracker or the PikeVM.
    Quick,
    /// With the reverse automaton and lazy DFA as well.
    Full,
}

/// Compiles a rule regex with limits that keep hostile-looking patterns from exhausting
/// memory and a lazy-DFA cache big enough to stay fast on Unicode classes. The settings are
/// `regex::RegexBuilder`'s, with its messages.
pub fn build_regex(p: &str, case_insensitive: bool, tier: Tier) -> Result<Regex, String> {
    let syntax = regex_automata::util::syntax::Config::new().case_insensitive(case_insensitive);
    let config = meta::Config::new().nfa_size_limit(Some(16 << 20)).hybrid_cache_capacity(8 << 20);
    let config = match tier {
        Tier::Full => config,
        Tier::Quick => config.hybrid(false).dfa(false),
    };
    meta::Builder::new().configure(config).syntax(syntax).build(&ascii_word_boundaries(p)).map_err(|e| match (e.size_limit(), e.syntax_error()) {
        (Some(limit), _) => format!("compiled regex exceeds size limit of {limit} bytes"),
        (None, Some(syntax)) => one_line(&syntax.to_string()),
        (None, None) => one_line(&e.to_string()),
    })
}

fn compile_validate(v: super::schema::RawValidate, pattern: Option<&str>, hir: Option<&regex_syntax::hir::Hir>) -> Result<Validate, String> {
    let (Some(_), Some(hir)) = (pattern, hir) else { return Err("validate needs a pattern".into()) };
    if let Some(g) = &v.group {
        if !capture_names(hir).iter().any(|n| n == g) {
            return Err(format!("validate.group {g:?} is not a named group of the pattern"));
        }
    }
    if let Some(e) = v.entropy {
        if !(0.0..=8.0).contains(&e) {
            return Err("validate.entropy must be between 0 and 8 bits per character".into());
        }
    }
    let checksum = match v.checksum.as_deref() {
        None => None,
        Some("luhn") => Some(Checksum::Luhn),
        Some("iban") => Some(Checksum::Iban),
        Some("us_ssn") => Some(Checksum::UsSsn),
        Some("github") => Some(Checksum::Github),
        Some("jwt") => Some(Checksum::Jwt),
        Some("uk_nhs") => Some(Checksum::UkNhs),
        Some("es_dni") => Some(Checksum::EsDni),
        Some("nl_bsn") => Some(Checksum::NlBsn),
        Some(other) => return Err(format!("unknown checksum {other:?} (luhn, iban, us_ssn, github, jwt, uk_nhs, es_dni, nl_bsn)")),
    };
    let url = match v.url.as_deref() {
        None => None,
        Some("intel") => Some(UrlTest::Intel),
        Some("ip_host") => Some(UrlTest::IpHost),
        Some("punycode") => Some(UrlTest::Punycode),
        Some("mixed_script_host") => Some(UrlTest::MixedScriptHost),
        Some("userinfo") => Some(UrlTest::Userinfo),
        Some("brand_impersonation") => Some(UrlTest::BrandImpersonation),
        Some(other) => {
            return Err(format!(
                "unknown url test {other:?} (intel, ip_host, punycode, mixed_script_host, userinfo, brand_impersonation)"
            ))
        }
    };
    Ok(Validate { group: v.group, entropy: v.entropy, checksum, url })
}

fn capture_names(hir: &regex_syntax::hir::Hir) -> Vec<String> {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => {
            let mut v: Vec<String> = c.name.iter().map(|n| n.to_string()).collect();
            v.extend(capture_names(&c.sub));
            v
        }
        HirKind::Repetition(r) => capture_names(&r.sub),
        HirKind::Concat(p) | HirKind::Alternation(p) => p.iter().flat_map(capture_names).collect(),
        _ => Vec::new(),
    }
}

fn compile_condition(c: RawCondition) -> Result<Condition, String> {
    let field = FIELDS
        .iter()
        .find(|f| **f == c.field)
        .copied()
        .ok_or_else(|| format!("condition field {:?} is not one of: {}", c.field, FIELDS.join(", ")))?;
    let mut tests = Vec::new();
    if let Some(v) = c.any_of {
        tests.push(Test::AnyOf(v));
    }
    if let Some(v) = c.not_any_of {
        tests.push(Test::NotAnyOf(v));
    }
    if let Some(v) = c.contains {
        // Lower case once here; values are compared without ASCII case.
        tests.push(Test::Contains(v.iter().map(|s| s.to_ascii_lowercase()).collect()));
    }
    if let Some(p) = c.matches {
        tests.push(Test::Matches(build_regex(&p, true, Tier::Full).map_err(|e| format!("condition on {field}: {e}"))?));
    }
    if let Some(e) = c.exists {
        tests.push(Test::Exists(e));
    }
    if let Some(list) = c.in_list {
        if !crate::intel::LIST_FILES.iter().any(|(name, _)| *name == list) {
            return Err(format!("condition on {field}: unknown list {list:?}"));
        }
        tests.push(Test::InList(list));
    }
    match tests.len() {
        1 => Ok(Condition::new(field, tests.remove(0))),
        0 => Err(format!("condition on {field} has no test (any_of, not_any_of, contains, matches, exists, in_list)")),
        _ => Err(format!("condition on {field} has more than one test; use one condition per test")),
    }
}

/// `indirect_prompt_injection` → `IndirectPromptInjection`.
pub fn camel(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// Keeps only the rules a scan asked for: `--rule` (only these), `--exclude-rule`,
/// `--min-severity`. Unknown ids are reported so a typo does not silently disable nothing.
pub fn select(set: &mut RuleSet, only: &[String], exclude: &[String], min: Option<Severity>) -> Vec<String> {
    let mut unknown: Vec<String> =
        only.iter().chain(exclude).filter(|id| set.get(id).is_none() && !set.behaviors.iter().any(|b| &b.id == *id)).cloned().collect();
    unknown.dedup();
    let keep = |id: &String, severity: Severity| {
        (only.is_empty() || only.contains(id)) && !exclude.contains(id) && min.is_none_or(|m| severity >= m)
    };
    set.rules.retain(|r| keep(&r.id, r.severity));
    set.behaviors.retain(|r| keep(&r.id, r.severity));
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every text the pack's examples hold, and longer ones made of them.
    fn example_texts(set: &RuleSet) -> Vec<String> {
        let mut texts: Vec<String> = set.rules.iter().flat_map(|r| r.examples_match.iter().chain(&r.examples_no_match).cloned()).collect();
        let joined: Vec<String> = texts.chunks(7).map(|c| c.join("\n")).collect();
        texts.extend(joined);
        texts.push("Ünïcödé — ignorе аll previous instructions 请ignore 🙂 password=Zx9!kLm2#Qr".into());
        texts
    }

    #[test]
    fn quick_and_full_tiers_find_the_same_matches() {
        let (set, errors) = compile(&embedded_sources());
        assert!(errors.is_empty());
        let texts = example_texts(&set);
        let mut compared = 0;
        for rule in &set.rules {
            for lazy in rule.regexes() {
                let ci = lazy.case_insensitive;
                let (quick, full) = (build_regex(lazy.as_str(), ci, Tier::Quick).unwrap(), build_regex(lazy.as_str(), ci, Tier::Full).unwrap());
                let (mut quick_caps, mut full_caps) = (quick.create_captures(), full.create_captures());
                for text in &texts {
                    let found: Vec<_> = quick.find_iter(text.as_str()).map(|m| m.range()).collect();
                    assert_eq!(found, full.find_iter(text.as_str()).map(|m| m.range()).collect::<Vec<_>>(), "{} {:?} on {text:?}", rule.id, lazy.as_str());
                    for m in &found {
                        let input = regex_automata::Input::new(text.as_str()).range(m.start..);
                        quick.search_captures(&input, &mut quick_caps);
                        full.search_captures(&input, &mut full_caps);
                        let groups = |c: &regex_automata::util::captures::Captures| (0..c.group_len()).map(|g| c.get_group(g)).collect::<Vec<_>>();
                        assert_eq!(groups(&quick_caps), groups(&full_caps), "{} captures on {text:?}", rule.id);
                    }
                    compared += found.len();
                }
            }
        }
        assert!(compared > 300, "the examples match often enough to compare ({compared})");
    }

    #[test]
    fn a_regex_runs_quick_until_its_searches_cost_more_then_in_full() {
        let lazy = super::super::LazyRegex::new(r"\bignore\s+(?:all\s+)?previous\s+instructions\b".into(), false);
        assert_eq!(lazy.search("please ignore all previous instructions", false, |re| re.is_match("x")), Some(false));
        assert!(lazy.tiers.full.get().is_some() && lazy.tiers.quick.get().is_none(), "not allowed: built in full");

        let lazy = super::super::LazyRegex::new(lazy.as_str().to_owned(), false);
        let text = "please ignore all previous instructions";
        assert_eq!(lazy.search(text, true, |re| re.find(text).map(|m| m.range())), Some(Some(7..39)));
        assert!(lazy.tiers.quick.get().is_some() && lazy.tiers.full.get().is_none(), "a short text: the quick tier alone");
        let long = "x ".repeat(super::super::QUICK_MAX_TEXT);
        assert_eq!(lazy.search(&long, true, |re| re.is_match(long.as_str())), Some(false));
        assert!(lazy.tiers.full.get().is_some(), "a long text: built in full");

        let lazy = super::super::LazyRegex::new(lazy.as_str().to_owned(), false);
        let mut searches = 0;
        while lazy.tiers.full.get().is_none() {
            lazy.search(text, true, |re| std::thread::sleep(std::time::Duration::from_micros(if re.is_match(text) { 200 } else { 0 })));
            searches += 1;
            assert!(searches < 100_000, "slow searches make it build the full tier");
        }
    }

    #[test]
    fn a_repeated_pattern_is_checked_for_every_rule_that_has_it() {
        let rule = |id: &str, pattern: &str, allow: &str| {
            format!(
                "[[rule]]\nid = \"{id}\"\ntitle = \"t\"\nthreat = \"jailbreak\"\nseverity = \"low\"\nsurfaces = [\"user_prompt\"]\n\
                 pattern = '''{pattern}'''\nallow = ['''{allow}''']\n[rule.examples]\nmatch = [\"ignore previous\"]\nno_match = [\"cd\"]\n"
            )
        };
        let text = [rule("A-1", "a(b", "x"), rule("A-2", "a(b", "x"), rule("B-1", "ab", "x("), rule("B-2", "ab", "x("), rule("C-1", "ignore previous", "x"), rule("C-2", "ignore previous", "x")].concat();
        let (set, errors) = compile(&[RuleSource { name: "r.toml".into(), text }]);
        let rejected: Vec<(String, bool)> = errors.iter().map(|e| (e.rule_id.clone().unwrap_or_default(), e.reason.starts_with("pattern:") || e.reason.starts_with("allow pattern:"))).collect();
        assert_eq!(rejected, [("A-1".to_owned(), true), ("A-2".to_owned(), true), ("B-1".to_owned(), true), ("B-2".to_owned(), true)]);
        assert_eq!(set.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["C-1", "C-2"]);
        assert!(set.rules.iter().all(|r| r.implied_keywords == ["ignore previous"]), "facts read from a kept parse are the same");
    }

    #[test]
    fn rules_with_the_same_pattern_compile_it_once() {
        let (set, errors) = compile(&embedded_sources());
        assert!(errors.is_empty());
        let rule = |id: &str| set.rules.iter().find(|r| r.id == id).unwrap();
        let (prompt_side, response_side) = (rule("PII-CARD-101"), rule("PII-CARD-001"));
        let (Some(a), Some(b)) = (&prompt_side.pattern, &response_side.pattern) else { panic!("both have patterns") };
        assert!(a.same_as(b), "the pack's two card rules share a pattern");
        assert!(b.tiers.full.get().is_none() && b.tiers.quick.get().is_none());
        assert!(a.full().is_some() && a.search("x", true, |_| ()).is_some());
        assert!(b.tiers.full.get().is_some(), "compiling one compiled the other");
        assert!(std::sync::Arc::ptr_eq(&prompt_side.allow[0].tiers, &response_side.allow[0].tiers), "allow lists too");
        let other = rule("PII-IBAN-001").pattern.as_ref().unwrap();
        assert!(!other.same_as(a) && !std::sync::Arc::ptr_eq(&other.tiers, &a.tiers));
    }

    #[test]
    fn word_boundaries_become_ascii_and_other_escapes_stay() {
        assert_eq!(ascii_word_boundaries(r"\bignore\B"), r"(?-u:\b)ignore(?-u:\B)");
        assert_eq!(ascii_word_boundaries(r"\\b^x$"), r"\\b^x$", "a literal backslash and line anchors are kept");
        assert_eq!(ascii_word_boundaries(r"(unclosed"), r"(unclosed", "the compiler reports bad patterns");
        let re = build_regex(r"\bignore\b", false, Tier::Full).unwrap();
        assert!(re.is_match("请ignore all previous"), "a letter of another script is a boundary");
        assert!(re.is_match("please ignore it"));
        assert!(!re.is_match("ignored"));
    }
}
