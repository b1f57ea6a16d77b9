//! Suppressions: known false positives an analyst has reviewed. Each entry names a rule or an
//! alert id, optionally the entity it is limited to (caller IP, UPN, object id, end user,
//! APIM subscription, deployment), why, and until when. Expired entries stop applying and are
//! reported, so nothing stays muted by accident.

use std::path::Path;

use anyhow::{bail, Context, Result};
use jiff::Timestamp;
use serde::Deserialize;

use crate::record::Record;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    suppress: Vec<RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    rule: Option<String>,
    alert: Option<String>,
    entity: Option<String>,
    reason: String,
    expires: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Suppression {
    pub rule: Option<String>,
    pub alert: Option<String>,
    pub entity: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    entries: Vec<Suppression>,
}

impl Suppressions {
    /// Loads a suppressions file. Entries that expired before `now` are dropped and returned
    /// as warnings.
    pub fn load(path: &Path, now: Timestamp) -> Result<(Suppressions, Vec<String>)> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let raw: RawFile = toml::from_str(&text).with_context(|| format!("invalid suppressions file {}", path.display()))?;
        let mut entries = Vec::new();
        let mut warnings = Vec::new();
        for (i, e) in raw.suppress.into_iter().enumerate() {
            let at = format!("{} entry {}", path.display(), i + 1);
            if e.rule.is_none() && e.alert.is_none() {
                bail!("{at}: needs `rule` or `alert`");
            }
            if e.reason.trim().is_empty() {
                bail!("{at}: `reason` is empty; say why this is a false positive");
            }
            if let Some(exp) = &e.expires {
                let until = parse_expiry(exp).with_context(|| format!("{at}: expires {exp:?} is not a date (YYYY-MM-DD) or RFC 3339 time"))?;
                if until <= now {
                    warnings.push(format!("{at} expired on {exp} and no longer applies ({})", e.reason));
                    continue;
                }
            }
            entries.push(Suppression { rule: e.rule, alert: e.alert, entity: e.entity, reason: e.reason });
        }
        Ok((Suppressions { entries }, warnings))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The suppression that covers an alert, if any.
    pub fn matching(&self, alert_id: &str, rule_ids: &[&str], record: &Record) -> Option<&Suppression> {
        self.find(alert_id, rule_ids, |e| record_has_entity(record, e))
    }

    /// The suppression that covers a behavioural alert, whose entities are given as values.
    pub fn matching_entities(&self, alert_id: &str, rule_ids: &[&str], entities: &[&str]) -> Option<&Suppression> {
        self.find(alert_id, rule_ids, |e| entities.iter().any(|v| v.eq_ignore_ascii_case(e)))
    }

    fn find(&self, alert_id: &str, rule_ids: &[&str], has_entity: impl Fn(&str) -> bool) -> Option<&Suppression> {
        self.entries.iter().find(|s| {
            let target = s.alert.as_deref() == Some(alert_id) || s.rule.as_deref().is_some_and(|r| rule_ids.contains(&r));
            target && s.entity.as_deref().is_none_or(&has_entity)
        })
    }
}

fn parse_expiry(s: &str) -> Option<Timestamp> {
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        // A date means the end of that day, UTC.
        return jiff::tz::TimeZone::UTC.to_timestamp(d.at(23, 59, 59, 0)).ok();
    }
    crate::record::time::parse(s)
}

fn record_has_entity(r: &Record, entity: &str) -> bool {
    let c = &r.caller;
    [
        &c.ip,
        &c.end_user_ip,
        &c.upn,
        &c.object_id,
        &c.app_id,
        &c.end_user_id,
        &c.apim_subscription_id,
        &c.application_name,
        &r.deployment,
    ]
    .into_iter()
    .flatten()
    .any(|v| v.eq_ignore_ascii_case(entity))
}
