//! Rules as data: the schema authors write (`schema`), loading and compiling with an
//! explanation for every rejected rule (`load`), and the proofs and example runs that keep the
//! pack honest (`validate`). The compiled [`RuleSet`] is immutable and shared by all workers.

pub mod behavior;
pub mod load;
pub mod schema;
pub mod validate;

use std::fmt;

use regex_automata::meta::Regex;
use serde::Serialize;

use crate::detect::conditions::Condition;
use crate::record::Surface;

/// The fixed threat vocabulary (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Threat {
    Jailbreak,
    IndirectPromptInjection,
    AsciiSmuggling,
    CredentialExposure,
    SensitiveData,
    PhishingUrl,
    SuspiciousUserAgent,
    AnonymizedIp,
    SuspiciousIp,
    WalletAttack,
    AccessAnomaly,
    ControlPlane,
    AnomalousToolInvocation,
    Reconnaissance,
    InstructionLeakage,
    DataPoisoning,
}

impl Threat {
    pub const ALL: [Threat; 16] = [
        Threat::Jailbreak,
        Threat::IndirectPromptInjection,
        Threat::AsciiSmuggling,
        Threat::CredentialExposure,
        Threat::SensitiveData,
        Threat::PhishingUrl,
        Threat::SuspiciousUserAgent,
        Threat::AnonymizedIp,
        Threat::SuspiciousIp,
        Threat::WalletAttack,
        Threat::AccessAnomaly,
        Threat::ControlPlane,
        Threat::AnomalousToolInvocation,
        Threat::Reconnaissance,
        Threat::InstructionLeakage,
        Threat::DataPoisoning,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Threat::Jailbreak => "jailbreak",
            Threat::IndirectPromptInjection => "indirect_prompt_injection",
            Threat::AsciiSmuggling => "ascii_smuggling",
            Threat::CredentialExposure => "credential_exposure",
            Threat::SensitiveData => "sensitive_data",
            Threat::PhishingUrl => "phishing_url",
            Threat::SuspiciousUserAgent => "suspicious_user_agent",
            Threat::AnonymizedIp => "anonymized_ip",
            Threat::SuspiciousIp => "suspicious_ip",
            Threat::WalletAttack => "wallet_attack",
            Threat::AccessAnomaly => "access_anomaly",
            Threat::ControlPlane => "control_plane",
            Threat::AnomalousToolInvocation => "anomalous_tool_invocation",
            Threat::Reconnaissance => "reconnaissance",
            Threat::InstructionLeakage => "instruction_leakage",
            Threat::DataPoisoning => "data_poisoning",
        }
    }

    pub fn parse(s: &str) -> Option<Threat> {
        Threat::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for Threat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Graph alert severities, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Some(Severity::Informational),
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which view of a text a pattern reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextView {
    /// Case-folded, NFKC, invisible characters removed, homoglyphs and leetspeak folded.
    Normalized,
    /// The text exactly as logged (for rules about the characters themselves).
    Original,
    /// Text hidden in invisible characters (Unicode tags, variation selectors, invisible
    /// operators), decoded.
    Hidden,
    /// Only text revealed by decoding (base64, hex, URL encoding, rot13, hidden text), for
    /// rules about what an encoding hides rather than what it says.
    Decoded,
}

/// Checks a matched value must pass.
#[derive(Debug, Clone, Default)]
pub struct Validate {
    pub group: Option<String>,
    pub entropy: Option<f64>,
    pub checksum: Option<Checksum>,
    pub url: Option<UrlTest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Luhn,
    Iban,
    UsSsn,
    Github,
    Jwt,
    UkNhs,
    EsDni,
    NlBsn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlTest {
    /// Listed in `malicious-urls` (domain, subdomain or URL prefix).
    Intel,
    /// The host is a public IP address.
    IpHost,
    /// A host label is punycode (`xn--`).
    Punycode,
    /// The host mixes Latin with look-alike letters of other scripts.
    MixedScriptHost,
    /// Something that looks like a domain before an `@` in the authority.
    Userinfo,
    /// A well-known brand in a host that is not the brand's own domain.
    BrandImpersonation,
}

/// Built-in comparisons that are not a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The response repeats a long run of the record's own system prompt.
    SystemPromptEcho,
}

/// A rule regex compiled on first use, in two tiers. Compiling the whole pack up front costs
/// more than a one-line scan should take (startup), and most scans only reach the regexes
/// whose keywords occur. The syntax is checked when the rule loads; `rules validate` compiles
/// everything.
///
/// About half of compiling a regex is the reverse automaton and lazy DFA that make long
/// searches fast, and a small scan runs most regexes on a few texts. So in a small scan a
/// regex first runs without them, and is built in full once its searches have taken three
/// times as long as building that first tier did, or for a text over [`QUICK_MAX_TEXT`].
/// Both tiers are the same regex on the same engine family and return the same matches:
/// which one ran never shows in the output, only in the time.
///
/// Clones share one compilation: the pack's rule pairs that differ only in surfaces and
/// severity, and allow lists repeated across rules, compile once (see `load::share_regexes`).
#[derive(Debug, Clone)]
pub struct LazyRegex {
    source: String,
    case_insensitive: bool,
    tiers: std::sync::Arc<Tiers>,
}

/// The longest text the quick tier searches: its engines slow down with the text times the
/// automaton, so one long text could cost more than building the fast one.
pub const QUICK_MAX_TEXT: usize = 16 << 10;

#[derive(Debug, Default)]
struct Tiers {
    /// `None` when the quick build failed (the full one then reports why).
    quick: std::sync::OnceLock<Option<Regex>>,
    full: std::sync::OnceLock<Result<Regex, String>>,
    /// Nanoseconds the quick tier took to build, and its searches have taken so far.
    quick_build_nanos: std::sync::atomic::AtomicU64,
    quick_search_nanos: std::sync::atomic::AtomicU64,
}

impl LazyRegex {
    pub fn new(source: String, case_insensitive: bool) -> LazyRegex {
        LazyRegex { source, case_insensitive, tiers: Default::default() }
    }

    /// `search` run with the compiled regex for `text`, the quick tier allowed or not; `None`
    /// when the regex is over the size limits (reported once by `compile_error`, and by
    /// `rules validate`).
    pub fn search<R>(&self, text: &str, quick_allowed: bool, search: impl FnOnce(&Regex) -> R) -> Option<R> {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(full) = self.tiers.full.get() {
            return full.as_ref().ok().map(search);
        }
        let tiers = &self.tiers;
        // With a smaller allowance a 1 MB scan built most of its regexes twice, and ran slower
        // than with no quick tier at all (measured at a quarter and at one times).
        let quick = quick_allowed && text.len() <= QUICK_MAX_TEXT && tiers.quick_search_nanos.load(Relaxed) <= tiers.quick_build_nanos.load(Relaxed).saturating_mul(3);
        if quick {
            let quick = tiers.quick.get_or_init(|| {
                let started = std::time::Instant::now();
                let built = load::build_regex(&self.source, self.case_insensitive, load::Tier::Quick).ok();
                tiers.quick_build_nanos.store(nanos_since(started), Relaxed);
                built
            });
            if let Some(quick) = quick {
                let started = std::time::Instant::now();
                let found = search(quick);
                tiers.quick_search_nanos.fetch_add(nanos_since(started), Relaxed);
                return Some(found);
            }
        }
        self.full().map(search)
    }

    /// The regex built in full.
    pub fn full(&self) -> Option<&Regex> {
        self.tiers.full.get_or_init(|| load::build_regex(&self.source, self.case_insensitive, load::Tier::Full)).as_ref().ok()
    }

    /// The pattern as the rule wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `other` compiles to the same regex.
    pub fn same_as(&self, other: &LazyRegex) -> bool {
        self.source == other.source && self.case_insensitive == other.case_insensitive
    }

    /// The exact regex text the tiers compile, flags included, for a `RegexSet` that must
    /// agree with them match for match.
    pub fn compiled_source(&self) -> String {
        let source = load::ascii_word_boundaries(&self.source);
        if self.case_insensitive {
            format!("(?i:{source})")
        } else {
            source
        }
    }

    /// Compiles in full now; the error, if compiling fails.
    pub fn compile_error(&self) -> Option<String> {
        self.full();
        self.tiers.full.get().and_then(|r| r.as_ref().err().cloned())
    }
}

fn nanos_since(started: std::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub threat: Threat,
    pub severity: Severity,
    pub surfaces: Vec<Surface>,
    pub keywords: Vec<String>,
    /// For a pattern written without keywords: texts one of which every match contains, which
    /// the prefilter uses in their place (see `validate::implied_keywords`).
    pub implied_keywords: Vec<String>,
    /// Sets of texts every match contains one of each, besides its keywords: the prefilter
    /// wakes the rule only where each set has one (see `validate::required_groups`). Empty for a
    /// rule without keywords, which runs on every text anyway.
    pub required_texts: Vec<Vec<String>>,
    pub pattern: Option<LazyRegex>,
    pub pattern_source: Option<String>,
    pub view: TextView,
    pub decoded: bool,
    /// Every match contains a non-ASCII or control character: the rule cannot match clean
    /// printable ASCII text and is skipped there.
    pub needs_special_char: bool,
    pub conditions: Vec<Condition>,
    pub validate: Option<Validate>,
    pub min_matches: u32,
    pub check: Option<Check>,
    /// Case-blind patterns that clear a match; compiled on first use, like `pattern`.
    pub allow: Vec<LazyRegex>,
    pub weight: f64,
    pub alert_type: String,
    pub category: Option<String>,
    pub mitre: Vec<String>,
    pub atlas: Vec<String>,
    pub tags: Vec<String>,
    pub examples_match: Vec<String>,
    pub examples_no_match: Vec<String>,
    /// `(list, entry)` intelligence the examples assume.
    pub examples_intel: Vec<(String, String)>,
    /// Where the rule was loaded from (`<embedded>/jailbreak.toml` or a path).
    pub file: String,
}

impl Rule {
    /// Every regex of the rule that compiles on first use: its pattern and its allow patterns.
    pub fn regexes(&self) -> impl Iterator<Item = &LazyRegex> {
        self.pattern.iter().chain(&self.allow)
    }
}

/// The loaded, compiled rule pack.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Sorted by id: the order alerts list matched rules in.
    pub rules: Vec<Rule>,
    /// Per-threat alert thresholds (summed weights on one surface); default 1.0.
    pub thresholds: Vec<(Threat, f64)>,
    /// Threshold rules over time, sorted by id.
    pub behaviors: Vec<behavior::BehaviorRule>,
}

impl RuleSet {
    pub fn threshold(&self, threat: Threat) -> f64 {
        self.thresholds.iter().find(|(t, _)| *t == threat).map_or(1.0, |(_, v)| *v)
    }

    /// The texts the prefilter looks for on a rule's behalf: its own keywords, or those its
    /// pattern implies.
    pub fn prefilter_keywords(rule: &Rule) -> &[String] {
        if rule.keywords.is_empty() {
            &rule.implied_keywords
        } else {
            &rule.keywords
        }
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

pub fn surface_from_str(s: &str) -> Option<Surface> {
    Some(match s {
        "system" => Surface::System,
        "user_prompt" => Surface::UserPrompt,
        "document" => Surface::Document,
        "tool_output" => Surface::ToolOutput,
        "tool_arguments" => Surface::ToolArguments,
        "model_response" => Surface::ModelResponse,
        _ => return None,
    })
}
