//! The rule file format as written by rule authors (TOML, unknown fields rejected). These
//! raw structs are turned into compiled [`super::Rule`]s by `load`; `rules/README.md`
//! documents every field.

use serde::Deserialize;

/// One rules file: any number of `[[rule]]` tables, optional `[[detector]]` thresholds and
/// `[[behavior]]` threshold rules over time.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRuleFile {
    #[serde(default)]
    pub rule: Vec<RawRule>,
    #[serde(default)]
    pub detector: Vec<RawDetector>,
    #[serde(default)]
    pub behavior: Vec<RawBehavior>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub threat: String,
    pub severity: String,
    /// Text surfaces the pattern reads; empty for condition-only rules.
    #[serde(default)]
    pub surfaces: Vec<String>,
    /// Prefilter literals; the regex only runs on a text where one of them occurs.
    #[serde(default)]
    pub keywords: Vec<String>,
    pub pattern: Option<String>,
    /// Which view of the text the pattern reads: `normalized` (default), `original`, `hidden`.
    pub text: Option<String>,
    /// Also match inside spans decoded from base64, hex, URL encoding and rot13 (default true).
    pub decoded: Option<bool>,
    /// Record-field conditions; all must hold.
    #[serde(default)]
    pub condition: Vec<RawCondition>,
    /// Checks the matched value must pass (entropy, checksums, URL tests).
    pub validate: Option<RawValidate>,
    /// Distinct matches needed on one surface before the rule fires (default 1).
    pub min_matches: Option<u32>,
    /// A built-in comparison instead of a pattern (`system_prompt_echo`).
    pub check: Option<String>,
    /// Matches whose text matches one of these regexes are dropped.
    #[serde(default)]
    pub allow: Vec<String>,
    pub weight: Option<f64>,
    /// Defender alert type reported for this rule (otherwise `AIHunt.<Threat>.Rule`).
    pub alert_type: Option<String>,
    /// MITRE ATT&CK tactic for the alert's `category`, when the threat's default does not fit.
    pub category: Option<String>,
    #[serde(default)]
    pub mitre: Vec<String>,
    #[serde(default)]
    pub atlas: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub examples: Option<RawExamples>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawExamples {
    /// Texts (or, for condition rules, record JSON) the rule must match.
    #[serde(rename = "match", default)]
    pub should_match: Vec<String>,
    /// Texts the rule must not match.
    #[serde(default)]
    pub no_match: Vec<String>,
    /// Threat-intelligence entries the examples assume, by list name.
    #[serde(default)]
    pub intel: std::collections::BTreeMap<String, Vec<String>>,
}

/// `field` plus exactly one test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    pub field: String,
    pub any_of: Option<Vec<String>>,
    pub not_any_of: Option<Vec<String>>,
    pub contains: Option<Vec<String>>,
    pub matches: Option<String>,
    pub exists: Option<bool>,
    /// A list of the `--intel` folder: `tor-exit-nodes`, `suspicious-ips`, `malicious-urls`,
    /// `suspicious-user-agents`.
    pub in_list: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidate {
    /// Named capture group holding the value to check (and to redact); default: the match.
    pub group: Option<String>,
    /// Minimum Shannon entropy in bits per character.
    pub entropy: Option<f64>,
    /// `luhn`, `iban`, `us_ssn`, `github`, `jwt`, `uk_nhs`, `es_dni`, `nl_bsn`.
    pub checksum: Option<String>,
    /// `intel`, `ip_host`, `punycode`, `mixed_script_host`, `userinfo`, `brand_impersonation`.
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetector {
    pub threat: String,
    /// Summed rule weights on one surface that raise an alert (default 1.0).
    pub threshold: f64,
}

/// A threshold rule over a caller's or resource's behaviour in time; which fields apply
/// depends on `detector` (rules/README.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBehavior {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// `duplicate_requests`, `volume_anomaly`, `new_attribute`, `attempt_burst`,
    /// `status_burst`, `key_then_new_ip`.
    pub detector: String,
    pub threat: String,
    pub severity: String,
    /// A duration (`90s`, `10m`, `1h`, `1d`); every detector but new_attribute has one.
    pub window: Option<String>,
    /// Events within `window` that raise the alert (the count detectors).
    pub threshold: Option<u64>,
    /// volume_anomaly: `requests` or `tokens`.
    pub measure: Option<String>,
    /// volume_anomaly: `caller` or `resource`.
    pub entity: Option<String>,
    /// volume_anomaly: earlier windows the baseline is taken from.
    pub baseline_windows: Option<u32>,
    /// volume_anomaly: windows of history needed before a window is judged.
    pub min_baseline_windows: Option<u32>,
    /// volume_anomaly: the observed value must be at least this multiple of the median.
    pub factor: Option<f64>,
    /// volume_anomaly: and at least this many scaled MADs above the median.
    pub min_score: Option<f64>,
    /// volume_anomaly: and at least this value.
    pub min_value: Option<u64>,
    /// new_attribute: `ip_range`, `user_agent` or `auth_method`.
    pub attribute: Option<String>,
    /// new_attribute: how long after an identity's first record its habits are learned.
    pub learning: Option<String>,
    /// new_attribute: an identity with more values than this while learning roams, and is not
    /// judged (default 32).
    pub max_known: Option<u32>,
    /// new_attribute: records needed during learning before anything is called new;
    /// key_then_new_ip: data-plane calls on the resource needed before the key operation.
    pub min_history: Option<u64>,
    /// status_burst: the HTTP statuses counted.
    #[serde(default)]
    pub statuses: Vec<u16>,
    pub alert_type: Option<String>,
    pub category: Option<String>,
    #[serde(default)]
    pub mitre: Vec<String>,
    #[serde(default)]
    pub atlas: Vec<String>,
}
