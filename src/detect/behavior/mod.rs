//! Behavioural detectors over the whole scan: duplicate-request floods, volume against a
//! caller's or resource's own baseline, identities seen with new IP ranges, user agents or
//! auth methods, bursts of prompt attacks or failed requests, and keys listed then used from
//! a new range (DESIGN §3, after the stream).
//!
//! Workers turn each record into a small [`Observation`]; the writer thread feeds them to
//! [`Behavior`] in input order; `finish` evaluates every rule once all input is read. State is
//! kept as commutative summaries (counts per time bucket, the earliest records of each, the
//! first time each value was seen), so results do not depend on the thread count or on the
//! order of the input files. Memory is bounded by `max_entries`: past it, the entities touched
//! least recently are evicted and counted, and from then on results may depend on input order.

mod access;
pub mod series;

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::record::{AuthKind, Record, RecordKind, Surface};
use crate::rules::behavior::{Attribute, BehaviorKind, BehaviorRule, Measure, VolumeEntity};
pub use series::{Point, RecordRef};
use series::{Series, VolumeTest};

/// Contributing records listed in an alert.
pub const CONTRIBUTING_CAP: usize = 20;
/// Attribute values (IP ranges, user agents, ...) remembered per identity or resource.
const MAX_VALUES: usize = 256;
/// Key operations remembered per resource.
const MAX_KEY_OPERATIONS: usize = 64;
/// Default for `--max-behavior-entries`.
pub const DEFAULT_MAX_ENTRIES: u64 = 2_000_000;

/// Who and what a record is about: the evidence a behavioural alert shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Who {
    pub ip: Option<String>,
    pub ip_masked: bool,
    pub upn: Option<String>,
    pub object_id: Option<String>,
    pub app_id: Option<String>,
    pub apim_subscription: Option<String>,
    pub end_user: Option<String>,
    pub user_agent: Option<String>,
    pub tenant: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub resource_type: Option<String>,
    pub deployment: Option<String>,
}

impl Who {
    fn of(r: &Record) -> Who {
        Who {
            ip: r.caller.end_user_ip.clone().or_else(|| r.caller.ip.clone()),
            ip_masked: r.caller.end_user_ip.is_none() && r.caller.ip_masked,
            upn: r.caller.upn.clone(),
            object_id: r.caller.object_id.clone(),
            app_id: r.caller.app_id.clone(),
            apim_subscription: r.caller.apim_subscription_id.clone(),
            end_user: r.caller.end_user_id.clone(),
            user_agent: r.caller.user_agent.clone(),
            tenant: r.caller.tenant_id.clone(),
            resource_id: r.resource.id.clone(),
            resource_name: r.resource.account.clone(),
            resource_type: r.resource.provider.clone(),
            deployment: r.deployment.clone(),
        }
    }
}

/// A stable key and a readable name for an entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub key: String,
    pub label: String,
}

/// What the behavioural detectors need from one record.
#[derive(Debug, Clone)]
pub struct Observation {
    pub point: Point,
    pub who: Who,
    /// The most specific caller: end user, Entra identity, application, APIM subscription, IP.
    pub caller: Option<Entity>,
    /// Every identity the record names, for access anomalies.
    pub identities: Vec<Entity>,
    /// The resource, by lower-cased ARM id.
    pub resource: Option<Entity>,
    /// Where the request went: the deployment, else the resource.
    pub target: Option<String>,
    pub ip_range: Option<String>,
    pub user_agent_family: Option<String>,
    pub auth_method: Option<&'static str>,
    /// Fingerprint of the user's prompt, blind to case, spacing and digits.
    pub prompt: Option<u128>,
    pub tokens: u64,
    pub status: Option<u16>,
    /// A prompt attack: an alert on this record, or Azure's filter blocking or flagging one.
    pub attack: bool,
    /// A key listing or regeneration: the operation's identity (one per Start/Success pair).
    pub key_operation: Option<String>,
    /// A data-plane call made with an API key.
    pub key_call: bool,
    /// A call to a model or gateway, not a control-plane operation.
    pub data_plane: bool,
}

/// Builds the observation for a record; `None` for records without a time, which cannot be
/// placed in a window. `attack` says whether the record raised a prompt-attack alert.
pub fn observe(r: &Record, attack: bool) -> Option<Observation> {
    let time = r.time?;
    let hash = u128::from_str_radix(&r.record_hash, 16).unwrap_or(0);
    let point = Point { time, at: RecordRef { file: r.source_file.clone(), line: r.source_line, index: r.index_in_line, hash } };
    let resource = r.resource.id.as_ref().map(|id| Entity {
        key: id.to_ascii_lowercase(),
        label: r.resource.account.clone().unwrap_or_else(|| id.clone()),
    });
    let ip_range = r.caller.end_user_ip.as_deref().or(r.caller.ip.as_deref()).and_then(ip_range);
    let flagged = r.content_filter.prompt_blocked
        || r.content_filter.verdicts.iter().any(|v| matches!(v.category.as_str(), "jailbreak" | "indirect_attack") && v.is_hit());
    let data_plane = r.kind != RecordKind::ActivityLog;
    let op = r.operation.as_deref().unwrap_or("").to_ascii_lowercase();
    let failed = r.status.success == Some(false) || r.status.result.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("failure"));
    let key_operation = (!data_plane && !failed && (op.ends_with("/listkeys/action") || op.ends_with("/regeneratekey/action")))
        .then(|| r.correlation_id.clone().unwrap_or_else(|| r.record_hash.clone()));
    Some(Observation {
        point,
        who: Who::of(r),
        caller: caller(r),
        identities: identities(r),
        target: r.deployment.clone().or_else(|| resource.as_ref().map(|e| e.label.clone())),
        resource,
        ip_range,
        user_agent_family: r.caller.user_agent.as_deref().and_then(user_agent_family),
        auth_method: r.caller.auth_kind.map(auth_name),
        prompt: data_plane.then(|| prompt_fingerprint(r)).flatten(),
        tokens: r.tokens.total.unwrap_or_else(|| r.tokens.prompt.unwrap_or(0) + r.tokens.completion.unwrap_or(0)),
        status: r.status.code,
        attack: data_plane && (attack || flagged),
        key_operation,
        key_call: data_plane && r.caller.auth_kind == Some(AuthKind::ApiKey),
        data_plane,
    })
}

fn caller(r: &Record) -> Option<Entity> {
    let c = &r.caller;
    if let Some(u) = &c.end_user_id {
        return Some(Entity { key: format!("enduser:{u}"), label: format!("end user {u}") });
    }
    if let Some(e) = entra(r) {
        return Some(e);
    }
    if let Some(s) = &c.apim_subscription_id {
        return Some(Entity { key: format!("apim:{s}"), label: format!("APIM subscription {s}") });
    }
    let ip = c.ip.as_deref()?;
    let shown = if c.ip_masked { ip_range(ip).unwrap_or_else(|| ip.to_owned()) } else { ip.to_owned() };
    Some(Entity { key: format!("ip:{shown}"), label: format!("IP {shown}") })
}

fn entra(r: &Record) -> Option<Entity> {
    let c = &r.caller;
    if let Some(oid) = &c.object_id {
        let name = c.upn.clone().unwrap_or_else(|| oid.clone());
        return Some(Entity { key: format!("entra:{}", oid.to_ascii_lowercase()), label: format!("Entra identity {name}") });
    }
    if let Some(upn) = &c.upn {
        return Some(Entity { key: format!("entra:{}", upn.to_ascii_lowercase()), label: format!("Entra identity {upn}") });
    }
    c.app_id.as_ref().map(|a| Entity { key: format!("app:{}", a.to_ascii_lowercase()), label: format!("application {a}") })
}

/// The identities an access anomaly is judged for: the Entra principal, the APIM
/// subscription, and for key-authenticated calls the resource's key.
fn identities(r: &Record) -> Vec<Entity> {
    let mut out = Vec::new();
    if r.kind == RecordKind::ActivityLog {
        // Control-plane calls come from admins' own machines; data-plane habits are what
        // a stolen credential changes.
        return out;
    }
    out.extend(entra(r));
    if let Some(s) = &r.caller.apim_subscription_id {
        out.push(Entity { key: format!("apim:{s}"), label: format!("APIM subscription {s}") });
    }
    if r.caller.auth_kind == Some(AuthKind::ApiKey) {
        if let Some(id) = &r.resource.id {
            let name = r.resource.account.clone().unwrap_or_else(|| id.clone());
            out.push(Entity { key: format!("key:{}", id.to_ascii_lowercase()), label: format!("API key of {name}") });
        }
    }
    out
}

fn auth_name(a: AuthKind) -> &'static str {
    match a {
        AuthKind::ApiKey => "api_key",
        AuthKind::EntraUser => "entra_user",
        AuthKind::EntraApp => "entra_app",
        AuthKind::Entra => "entra",
        AuthKind::ApimSubscription => "apim_subscription",
    }
}

/// The /24 of an IPv4 address (masked ones included: `81.2.69.***`), the /48 of an IPv6 one.
pub fn ip_range(ip: &str) -> Option<String> {
    let ip = ip.trim();
    if let Some(prefix) = ip.strip_suffix(".***").or_else(|| ip.strip_suffix(".xxx")) {
        let parts: Vec<&str> = prefix.split('.').collect();
        if parts.len() == 3 && parts.iter().all(|p| p.parse::<u8>().is_ok()) {
            return Some(format!("{prefix}.0/24"));
        }
        return None;
    }
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

/// The product a user agent names, without its version: `python-requests/2.31.0` and
/// `python-requests/2.32.3` are one family, `curl/8.4.0` another.
pub fn user_agent_family(ua: &str) -> Option<String> {
    let first = ua.split_whitespace().next()?;
    let product = first.split('/').next().unwrap_or(first).trim_matches(|c: char| !c.is_alphanumeric());
    (!product.is_empty()).then(|| product.to_ascii_lowercase().chars().take(64).collect())
}

/// A hash of the user's prompts with case, runs of spacing and digits folded, so requests
/// that differ only in a counter or a timestamp count as one.
fn prompt_fingerprint(r: &Record) -> Option<u128> {
    let mut folded = String::new();
    for s in r.surfaces.iter().filter(|s| s.surface == Surface::UserPrompt) {
        let mut space = true;
        for c in s.text.chars().take(64 * 1024) {
            if c.is_whitespace() {
                if !space {
                    folded.push(' ');
                }
                space = true;
                continue;
            }
            space = false;
            folded.extend(if c.is_ascii_digit() { '0' } else { c }.to_lowercase());
        }
        folded.push('\u{1f}');
    }
    if folded.trim_matches(|c: char| c == '\u{1f}' || c == ' ').is_empty() {
        return None;
    }
    u128::from_str_radix(&crate::record::record_hash(&folded), 16).ok()
}

/// One alert-worthy behaviour, ready to be turned into an alert.
#[derive(Debug, Clone)]
pub struct BehaviorFinding {
    /// Index into [`Behavior::rules`].
    pub rule: usize,
    /// Stable key of the entity, and what makes this finding distinct (a window, a value).
    pub entity: String,
    pub anchor: String,
    pub entity_label: String,
    /// The record that crossed the threshold.
    pub trigger: Point,
    pub first: jiff::Timestamp,
    pub last: jiff::Timestamp,
    /// The records that make up the finding, earliest first, capped.
    pub contributing: Vec<Point>,
    pub contributing_total: u64,
    /// Evidence: the caller of the triggering record, and for key misuse whoever got the key.
    pub who: Who,
    pub other: Option<Who>,
    /// The numbers behind the finding (`additionalData.behavior`).
    pub numbers: Value,
    /// One or two sentences saying what was seen and what it was compared with.
    pub explanation: String,
}

struct Slot<T> {
    label: String,
    /// The entity's earliest record and who made it: evidence that does not depend on order.
    first: Option<(Point, Who)>,
    last_seq: u64,
    entries: u64,
    state: T,
}

enum State {
    Series(HashMap<String, Slot<Series>>),
    Habits(HashMap<String, Slot<access::Habits>>),
    Keys(HashMap<String, Slot<access::KeyUse>>),
}

/// The stateful detectors of one scan.
pub struct Behavior {
    rules: Vec<BehaviorRule>,
    states: Vec<State>,
    max_entries: u64,
    entries: u64,
    seq: u64,
    /// Entities whose state was dropped to stay within `max_entries`.
    pub evicted: u64,
    /// Attribute values not remembered because an entity had too many.
    pub values_dropped: u64,
}

impl Behavior {
    pub fn new(rules: Vec<BehaviorRule>, max_entries: u64) -> Behavior {
        let states = rules
            .iter()
            .map(|r| match r.kind {
                BehaviorKind::NewAttribute { .. } => State::Habits(HashMap::new()),
                BehaviorKind::KeyThenNewIp { .. } => State::Keys(HashMap::new()),
                _ => State::Series(HashMap::new()),
            })
            .collect();
        Behavior { rules, states, max_entries: max_entries.max(1), entries: 0, seq: 0, evicted: 0, values_dropped: 0 }
    }

    pub fn rules(&self) -> &[BehaviorRule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Entities currently tracked, over all rules.
    pub fn entities(&self) -> u64 {
        self.states
            .iter()
            .map(|s| match s {
                State::Series(m) => m.len(),
                State::Habits(m) => m.len(),
                State::Keys(m) => m.len(),
            } as u64)
            .sum()
    }

    pub fn feed(&mut self, o: &Observation) {
        self.seq += 1;
        let seq = self.seq;
        for (rule, state) in self.rules.iter().zip(self.states.iter_mut()) {
            let added = match (&rule.kind, state) {
                (BehaviorKind::DuplicateRequests { threshold }, State::Series(map)) => {
                    let (Some(c), Some(fp)) = (&o.caller, o.prompt) else { continue };
                    let target = o.target.as_deref().unwrap_or("-");
                    let key = format!("{}\u{1f}{target}\u{1f}{fp:032x}", c.key);
                    let label = format!("{} to {target}", c.label);
                    let width = (rule.window / series::STEPS).max(1);
                    let keep = (*threshold as usize).max(CONTRIBUTING_CAP);
                    upsert(map, key, label, o, seq, |s: &mut Series| s.add(o.point.clone(), width, 0, keep))
                }
                (BehaviorKind::AttemptBurst { threshold }, State::Series(map)) if o.attack => {
                    count_caller(map, o, seq, rule.window, *threshold)
                }
                (BehaviorKind::StatusBurst { threshold, statuses }, State::Series(map))
                    if o.status.is_some_and(|s| statuses.contains(&s)) =>
                {
                    count_caller(map, o, seq, rule.window, *threshold)
                }
                (BehaviorKind::VolumeAnomaly(v), State::Series(map)) => {
                    if !o.data_plane {
                        continue;
                    }
                    let entity = match v.entity {
                        VolumeEntity::Caller => o.caller.clone(),
                        VolumeEntity::Resource => o.resource.clone(),
                    };
                    let Some(e) = entity else { continue };
                    let amount = if v.measure == Measure::Tokens { o.tokens } else { 0 };
                    upsert(map, e.key, e.label, o, seq, |s: &mut Series| s.add(o.point.clone(), rule.window, amount, CONTRIBUTING_CAP))
                }
                (BehaviorKind::NewAttribute { attribute, min_history, .. }, State::Habits(map)) => {
                    let value = match attribute {
                        Attribute::IpRange => o.ip_range.clone(),
                        Attribute::UserAgent => o.user_agent_family.clone(),
                        Attribute::AuthMethod => o.auth_method.map(str::to_owned),
                    };
                    let mut added = 0;
                    for id in &o.identities {
                        let mut dropped = false;
                        added += upsert(map, id.key.clone(), id.label.clone(), o, seq, |h: &mut access::Habits| {
                            let (n, d) = h.add(&o.point, value.as_deref(), &o.who, *min_history, MAX_VALUES);
                            dropped = d;
                            n
                        });
                        self.values_dropped += u64::from(dropped);
                    }
                    added
                }
                (BehaviorKind::KeyThenNewIp { .. }, State::Keys(map)) => {
                    let Some(res) = &o.resource else { continue };
                    if o.key_operation.is_none() && !(o.key_call && o.ip_range.is_some()) {
                        continue;
                    }
                    let mut dropped = false;
                    let n = upsert(map, res.key.clone(), res.label.clone(), o, seq, |k: &mut access::KeyUse| {
                        let (n, d) = k.add(o, MAX_KEY_OPERATIONS, MAX_VALUES);
                        dropped = d;
                        n
                    });
                    self.values_dropped += u64::from(dropped);
                    n
                }
                _ => continue,
            };
            self.entries += added;
        }
        if self.entries > self.max_entries {
            self.evict();
        }
    }

    /// Drops the entities touched least recently until a tenth of the budget is free.
    fn evict(&mut self) {
        let mut all: Vec<(u64, usize, String, u64)> = Vec::new();
        for (i, s) in self.states.iter().enumerate() {
            match s {
                State::Series(m) => all.extend(m.iter().map(|(k, v)| (v.last_seq, i, k.clone(), v.entries))),
                State::Habits(m) => all.extend(m.iter().map(|(k, v)| (v.last_seq, i, k.clone(), v.entries))),
                State::Keys(m) => all.extend(m.iter().map(|(k, v)| (v.last_seq, i, k.clone(), v.entries))),
            }
        }
        all.sort_unstable();
        let target = self.max_entries - self.max_entries / 10;
        for (_, i, key, entries) in all {
            if self.entries <= target {
                break;
            }
            match &mut self.states[i] {
                State::Series(m) => m.remove(&key).map(|_| ()),
                State::Habits(m) => m.remove(&key).map(|_| ()),
                State::Keys(m) => m.remove(&key).map(|_| ()),
            };
            self.entries = self.entries.saturating_sub(entries);
            self.evicted += 1;
        }
    }

    /// Evaluates every rule over everything fed, in a stable order: by time of the record that
    /// crossed the threshold, then rule, then entity.
    pub fn finish(&self) -> Vec<BehaviorFinding> {
        let mut out = Vec::new();
        for (i, (rule, state)) in self.rules.iter().zip(&self.states).enumerate() {
            match (&rule.kind, state) {
                (BehaviorKind::DuplicateRequests { threshold }, State::Series(m))
                | (BehaviorKind::AttemptBurst { threshold }, State::Series(m))
                | (BehaviorKind::StatusBurst { threshold, .. }, State::Series(m)) => {
                    for (key, slot) in sorted(m) {
                        out.extend(burst_findings(i, rule, *threshold, key, slot));
                    }
                }
                (BehaviorKind::VolumeAnomaly(v), State::Series(m)) => {
                    let test = VolumeTest {
                        baseline_windows: v.baseline_windows,
                        min_baseline_windows: v.min_baseline_windows,
                        factor: v.factor,
                        min_score: v.min_score,
                        min_value: v.min_value,
                        tokens: v.measure == Measure::Tokens,
                    };
                    for (key, slot) in sorted(m) {
                        out.extend(volume_findings(i, rule, &test, key, slot));
                    }
                }
                (BehaviorKind::NewAttribute { attribute, learning, min_history }, State::Habits(m)) => {
                    for (key, slot) in sorted(m) {
                        out.extend(access::new_values(i, *attribute, *learning, *min_history, key, &slot.label, &slot.state));
                    }
                }
                (BehaviorKind::KeyThenNewIp { min_history }, State::Keys(m)) => {
                    for (key, slot) in sorted(m) {
                        out.extend(access::key_then_new_ranges(i, rule.window, *min_history, key, &slot.label, &slot.state));
                    }
                }
                _ => {}
            }
        }
        out.sort_by(|a, b| a.trigger.cmp(&b.trigger).then(a.rule.cmp(&b.rule)).then_with(|| a.entity.cmp(&b.entity)).then_with(|| a.anchor.cmp(&b.anchor)));
        out
    }
}

fn sorted<T>(m: &HashMap<String, Slot<T>>) -> Vec<(&String, &Slot<T>)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// Adds to an entity's state, creating it on first sight; returns the entries added.
fn upsert<T: Default>(map: &mut HashMap<String, Slot<T>>, key: String, label: String, o: &Observation, seq: u64, add: impl FnOnce(&mut T) -> u64) -> u64 {
    let mut created = 0;
    let slot = map.entry(key).or_insert_with(|| {
        created = 1;
        Slot { label, first: None, last_seq: seq, entries: 0, state: T::default() }
    });
    slot.last_seq = seq;
    if slot.first.as_ref().is_none_or(|(p, _)| o.point < *p) {
        slot.first = Some((o.point.clone(), o.who.clone()));
    }
    let added = add(&mut slot.state) + created;
    slot.entries += added;
    added
}

fn count_caller(map: &mut HashMap<String, Slot<Series>>, o: &Observation, seq: u64, window: i64, threshold: u64) -> u64 {
    let Some(c) = &o.caller else { return 0 };
    let width = (window / series::STEPS).max(1);
    let keep = (threshold as usize).max(CONTRIBUTING_CAP);
    upsert(map, c.key.clone(), c.label.clone(), o, seq, |s: &mut Series| s.add(o.point.clone(), width, 0, keep))
}

fn ts(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// `end user x` → `End user x`, to start a sentence.
pub fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// A human duration: `10 minutes`, `1 hour`, `90 seconds`.
pub fn span_text(secs: i64) -> String {
    let (n, unit) = if secs % 86_400 == 0 {
        (secs / 86_400, "day")
    } else if secs % 3600 == 0 {
        (secs / 3600, "hour")
    } else if secs % 60 == 0 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn burst_findings(rule_index: usize, rule: &BehaviorRule, threshold: u64, key: &str, slot: &Slot<Series>) -> Vec<BehaviorFinding> {
    let width = (rule.window / series::STEPS).max(1);
    let what = match &rule.kind {
        BehaviorKind::DuplicateRequests { .. } => "identical requests".to_owned(),
        BehaviorKind::AttemptBurst { .. } => "prompt attacks (alerts or Azure content-filter blocks)".to_owned(),
        BehaviorKind::StatusBurst { statuses, .. } => {
            format!("responses with HTTP {}", statuses.iter().map(u16::to_string).collect::<Vec<_>>().join("/"))
        }
        _ => "events".to_owned(),
    };
    series::bursts(&slot.state, threshold)
        .into_iter()
        .map(|b| {
            let start = ts(b.from * width);
            let end = ts((b.to + 1) * width);
            let contributing = slot.state.earliest_in(b.from, b.to, CONTRIBUTING_CAP);
            let last = slot.state.latest_in(b.from, b.to).unwrap_or(end);
            let first = contributing.first().map_or(start, |p| p.time);
            let explanation = format!(
                "{} sent {} {what} between {first} and {last}; the rule's threshold is {threshold} within {}, reached at {} ({} in the first window that reached it, from {start} to {}).",
                capitalized(&slot.label),
                b.total,
                span_text(rule.window),
                b.trigger.time,
                b.first_window_count,
                ts((b.from + series::STEPS) * width),
            );
            BehaviorFinding {
                rule: rule_index,
                entity: key.to_owned(),
                anchor: start.to_string(),
                entity_label: slot.label.clone(),
                first,
                last,
                trigger: b.trigger.clone(),
                contributing,
                contributing_total: b.total,
                who: slot.first.as_ref().map(|(_, w)| w.clone()).unwrap_or_default(),
                other: None,
                numbers: json!({
                    "detector": rule.kind.name(),
                    "windowSeconds": rule.window,
                    "threshold": threshold,
                    "observed": b.total,
                    "firstWindowCount": b.first_window_count,
                    "windowStart": start.to_string(),
                    "windowEnd": end.to_string(),
                }),
                explanation,
            }
        })
        .collect()
}

fn volume_findings(rule_index: usize, rule: &BehaviorRule, test: &VolumeTest, key: &str, slot: &Slot<Series>) -> Vec<BehaviorFinding> {
    let unit = if test.tokens { "tokens" } else { "requests" };
    series::anomalies(&slot.state, test)
        .into_iter()
        .filter_map(|a| {
            let contributing = slot.state.earliest_in(a.from, a.to, CONTRIBUTING_CAP);
            let trigger = contributing.first()?.clone();
            let start = ts(a.from * rule.window);
            let end = ts((a.to + 1) * rule.window);
            let total: u64 = slot.state.buckets.iter().filter(|(i, _)| (a.from..=a.to).contains(i)).map(|(_, b)| if test.tokens { b.amount } else { b.count }).sum();
            let requests = slot.state.count_in(a.from, a.to);
            let explanation = format!(
                "{} made {} {unit} in {} from {start} (at most {} per {}), against a baseline median of {:.1} (MAD {:.1}) over its {} active windows before; the limit was {:.1}: {}x the median or the median plus {} scaled MADs, whichever is higher (and at least {}).",
                capitalized(&slot.label),
                total,
                span_text((a.to - a.from + 1) * rule.window),
                a.observed,
                span_text(rule.window),
                a.median,
                a.mad,
                a.history,
                a.limit,
                test.factor,
                test.min_score,
                test.min_value
            );
            Some(BehaviorFinding {
                rule: rule_index,
                entity: key.to_owned(),
                anchor: start.to_string(),
                entity_label: slot.label.clone(),
                first: trigger.time,
                last: slot.state.latest_in(a.from, a.to).unwrap_or(end),
                trigger,
                contributing,
                contributing_total: requests,
                who: slot.first.as_ref().map(|(_, w)| w.clone()).unwrap_or_default(),
                other: None,
                numbers: json!({
                    "detector": rule.kind.name(),
                    "measure": unit,
                    "windowSeconds": rule.window,
                    "observed": a.observed,
                    "observedTotal": total,
                    "baselineMedian": a.median,
                    "baselineMad": a.mad,
                    "baselineWindows": a.history,
                    "limit": (a.limit * 10.0).round() / 10.0,
                    "windowStart": start.to_string(),
                    "windowEnd": end.to_string(),
                }),
                explanation,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges_and_user_agent_families() {
        assert_eq!(ip_range("81.2.69.***").as_deref(), Some("81.2.69.0/24"));
        assert_eq!(ip_range("203.0.113.99").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(ip_range("2001:db8:1:2::5").as_deref(), Some("2001:db8:1::/48"));
        assert_eq!(ip_range("not an ip"), None);
        assert_eq!(user_agent_family("python-requests/2.31.0").as_deref(), Some("python-requests"));
        assert_eq!(user_agent_family("AzureOpenAI/Python 1.54.0").as_deref(), Some("azureopenai"));
        assert_eq!(user_agent_family("  "), None);
    }
}
