//! `[[behavior]]` rules: thresholds over a caller's or resource's behaviour in time (floods,
//! volume against its own baseline, new access patterns, bursts of attempts or failures, key
//! theft followed by use). The numbers are data so a team can tune them without a rebuild; the
//! algorithms they parameterise live in `detect::behavior`.

use super::schema::RawBehavior;
use super::{Severity, Threat};

/// A compiled behaviour rule.
#[derive(Debug, Clone)]
pub struct BehaviorRule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub threat: Threat,
    pub severity: Severity,
    pub kind: BehaviorKind,
    /// The window, in seconds (0 for new_attribute, which has a learning period instead).
    pub window: i64,
    pub alert_type: String,
    pub category: Option<String>,
    pub mitre: Vec<String>,
    pub atlas: Vec<String>,
    pub file: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BehaviorKind {
    /// Identical or near-identical prompts from one caller to one deployment.
    DuplicateRequests { threshold: u64 },
    /// A window's volume far above the entity's own median of earlier windows.
    VolumeAnomaly(VolumeRule),
    /// An identity seen with an attribute value it never had during its learning period.
    NewAttribute { attribute: Attribute, learning: i64, min_history: u64, max_known: u32 },
    /// Prompt attacks (findings or Azure content-filter blocks) from one caller.
    AttemptBurst { threshold: u64 },
    /// Responses with the given HTTP statuses to one caller.
    StatusBurst { threshold: u64, statuses: Vec<u16> },
    /// Keys listed or regenerated, then data-plane calls from a range never seen on the resource.
    KeyThenNewIp { min_history: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeRule {
    pub measure: Measure,
    pub entity: VolumeEntity,
    pub baseline_windows: u32,
    pub min_baseline_windows: u32,
    pub factor: f64,
    pub min_score: f64,
    pub min_value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Requests,
    Tokens,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeEntity {
    Caller,
    Resource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attribute {
    IpRange,
    UserAgent,
    AuthMethod,
}

impl Attribute {
    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::IpRange => "IP range",
            Attribute::UserAgent => "user agent",
            Attribute::AuthMethod => "authentication method",
        }
    }
}

impl BehaviorKind {
    pub fn name(&self) -> &'static str {
        match self {
            BehaviorKind::DuplicateRequests { .. } => "duplicate_requests",
            BehaviorKind::VolumeAnomaly(_) => "volume_anomaly",
            BehaviorKind::NewAttribute { .. } => "new_attribute",
            BehaviorKind::AttemptBurst { .. } => "attempt_burst",
            BehaviorKind::StatusBurst { .. } => "status_burst",
            BehaviorKind::KeyThenNewIp { .. } => "key_then_new_ip",
        }
    }
}

/// Count thresholds above this are refused: the detectors keep the earliest `threshold`
/// records of each window to name the one that crossed it, and that must stay small.
pub const MAX_COUNT_THRESHOLD: u64 = 10_000;

pub fn compile(raw: RawBehavior, file: &str) -> Result<BehaviorRule, String> {
    super::load::check_id(&raw.id)?;
    if raw.title.trim().is_empty() {
        return Err("title is empty".into());
    }
    let threat = Threat::parse(&raw.threat).ok_or_else(|| format!("unknown threat {:?}", raw.threat))?;
    let severity = Severity::parse(&raw.severity).ok_or_else(|| format!("unknown severity {:?}", raw.severity))?;
    let mut used: Vec<&'static str> = Vec::new();
    let window = match (raw.detector.as_str(), raw.window.as_deref()) {
        // Learning periods, not windows, bound what new_attribute compares.
        ("new_attribute", _) => 0,
        (_, Some(w)) => {
            used.push("window");
            duration(w).map_err(|e| format!("window: {e}"))?
        }
        (_, None) => return Err("this detector needs a `window` (a duration like 10m or 1h)".into()),
    };
    let kind = match raw.detector.as_str() {
        "duplicate_requests" => BehaviorKind::DuplicateRequests { threshold: count_threshold(raw.threshold, &mut used)? },
        "attempt_burst" => BehaviorKind::AttemptBurst { threshold: count_threshold(raw.threshold, &mut used)? },
        "status_burst" => {
            used.push("statuses");
            if raw.statuses.is_empty() || raw.statuses.iter().any(|s| !(100..=599).contains(s)) {
                return Err("status_burst needs `statuses`, HTTP codes between 100 and 599".into());
            }
            BehaviorKind::StatusBurst { threshold: count_threshold(raw.threshold, &mut used)?, statuses: raw.statuses.clone() }
        }
        "volume_anomaly" => {
            used.extend(["measure", "entity", "baseline_windows", "min_baseline_windows", "factor", "min_score", "min_value"]);
            let measure = match raw.measure.as_deref().unwrap_or("requests") {
                "requests" => Measure::Requests,
                "tokens" => Measure::Tokens,
                other => return Err(format!("unknown measure {other:?} (requests, tokens)")),
            };
            let entity = match raw.entity.as_deref().unwrap_or("caller") {
                "caller" => VolumeEntity::Caller,
                "resource" => VolumeEntity::Resource,
                other => return Err(format!("unknown entity {other:?} (caller, resource)")),
            };
            let baseline_windows = raw.baseline_windows.unwrap_or(24);
            let min_baseline_windows = raw.min_baseline_windows.unwrap_or(6);
            if !(1..=10_000).contains(&baseline_windows) || min_baseline_windows == 0 || min_baseline_windows > baseline_windows {
                return Err("need 1 <= min_baseline_windows <= baseline_windows <= 10000".into());
            }
            let factor = raw.factor.unwrap_or(5.0);
            let min_score = raw.min_score.unwrap_or(6.0);
            let sensible = factor.is_finite() && factor >= 1.0 && min_score.is_finite() && min_score >= 0.0;
            if !sensible {
                return Err("factor must be at least 1 and min_score at least 0".into());
            }
            BehaviorKind::VolumeAnomaly(VolumeRule {
                measure,
                entity,
                baseline_windows,
                min_baseline_windows,
                factor,
                min_score,
                min_value: raw.min_value.unwrap_or(1),
            })
        }
        "new_attribute" => {
            used.extend(["attribute", "learning", "min_history", "max_known"]);
            let attribute = match raw.attribute.as_deref() {
                Some("ip_range") => Attribute::IpRange,
                Some("user_agent") => Attribute::UserAgent,
                Some("auth_method") => Attribute::AuthMethod,
                other => return Err(format!("new_attribute needs attribute = ip_range, user_agent or auth_method (got {other:?})")),
            };
            let learning = duration(raw.learning.as_deref().ok_or("new_attribute needs `learning`")?).map_err(|e| format!("learning: {e}"))?;
            let max_known = raw.max_known.unwrap_or(32);
            if max_known == 0 {
                return Err("max_known must be at least 1".into());
            }
            BehaviorKind::NewAttribute { attribute, learning, min_history: raw.min_history.unwrap_or(1), max_known }
        }
        "key_then_new_ip" => {
            used.push("min_history");
            BehaviorKind::KeyThenNewIp { min_history: raw.min_history.unwrap_or(1) }
        }
        other => {
            return Err(format!(
                "unknown detector {other:?} (duplicate_requests, volume_anomaly, new_attribute, attempt_burst, status_burst, key_then_new_ip)"
            ))
        }
    };
    // A field the detector does not read is a mistake that would silently change nothing.
    let given: [(&str, bool); 14] = [
        ("max_known", raw.max_known.is_some()),
        ("window", raw.window.is_some()),
        ("threshold", raw.threshold.is_some()),
        ("measure", raw.measure.is_some()),
        ("entity", raw.entity.is_some()),
        ("baseline_windows", raw.baseline_windows.is_some()),
        ("min_baseline_windows", raw.min_baseline_windows.is_some()),
        ("factor", raw.factor.is_some()),
        ("min_score", raw.min_score.is_some()),
        ("min_value", raw.min_value.is_some()),
        ("attribute", raw.attribute.is_some()),
        ("learning", raw.learning.is_some()),
        ("min_history", raw.min_history.is_some()),
        ("statuses", !raw.statuses.is_empty()),
    ];
    if let Some((field, _)) = given.iter().find(|(f, set)| *set && !used.contains(f)) {
        return Err(format!("`{field}` does not apply to detector {}", kind.name()));
    }
    let default_type = format!("AIHunt.{}.Behavior", super::load::camel(threat.as_str()));
    Ok(BehaviorRule {
        id: raw.id,
        title: raw.title,
        description: raw.description,
        threat,
        severity,
        kind,
        window,
        alert_type: raw.alert_type.unwrap_or(default_type),
        category: raw.category,
        mitre: raw.mitre,
        atlas: raw.atlas,
        file: file.to_owned(),
    })
}

fn count_threshold(t: Option<u64>, used: &mut Vec<&'static str>) -> Result<u64, String> {
    used.push("threshold");
    match t {
        Some(n) if (2..=MAX_COUNT_THRESHOLD).contains(&n) => Ok(n),
        Some(n) => Err(format!("threshold {n} is outside 2..={MAX_COUNT_THRESHOLD}")),
        None => Err("this detector needs a `threshold` (events within the window)".into()),
    }
}

/// `90s`, `10m`, `1h`, `2d` in seconds; at least one second.
fn duration(s: &str) -> Result<i64, String> {
    let d = crate::state::parse_duration(s).map_err(|e| e.to_string())?;
    if d.as_secs() < 1 {
        return Err(format!("{s:?} is shorter than a second"));
    }
    Ok(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawBehavior {
        let file: super::super::schema::RawRuleFile = toml::from_str(toml_text).unwrap();
        file.behavior.into_iter().next().unwrap()
    }

    #[test]
    fn a_field_the_detector_does_not_read_is_an_error() {
        let r = raw("[[behavior]]\nid='X'\ntitle='t'\ndetector='attempt_burst'\nthreat='jailbreak'\nseverity='high'\nwindow='30m'\nthreshold=5\nlearning='1d'\n");
        assert_eq!(compile(r, "f").unwrap_err(), "`learning` does not apply to detector attempt_burst");
    }

    #[test]
    fn windows_and_thresholds_are_checked() {
        let r = raw("[[behavior]]\nid='X'\ntitle='t'\ndetector='duplicate_requests'\nthreat='wallet_attack'\nseverity='medium'\nwindow='10x'\nthreshold=5\n");
        assert!(compile(r, "f").unwrap_err().starts_with("window:"));
        let r = raw("[[behavior]]\nid='X'\ntitle='t'\ndetector='duplicate_requests'\nthreat='wallet_attack'\nseverity='medium'\nwindow='10m'\nthreshold=1\n");
        assert!(compile(r, "f").unwrap_err().contains("outside"));
        let r = raw("[[behavior]]\nid='X'\ntitle='t'\ndetector='duplicate_requests'\nthreat='wallet_attack'\nseverity='medium'\nwindow='10m'\nthreshold=20\n");
        let rule = compile(r, "f").unwrap();
        assert_eq!((rule.window, rule.kind), (600, BehaviorKind::DuplicateRequests { threshold: 20 }));
    }
}
