//! Who calls how: the first time each identity was seen with each IP range, user agent or auth
//! method (access anomalies after a learning period), and per resource the key operations and
//! the first time each range used a key (credential misuse). "First" is a minimum, so the
//! result does not depend on the order records arrive in.

use std::sync::Arc;

use serde_json::json;

use super::series::{grow_gently, keep_earliest, Point};
use super::{capitalized, span_text, BehaviorFinding, EntityNames, LazyWho, Observation, PackedWho, CONTRIBUTING_CAP};
use crate::rules::behavior::Attribute;

/// When and by whom a value (an IP range, a user agent family...) was first seen.
#[derive(Debug, Clone)]
pub struct ValueSeen {
    pub first: Point,
    pub who: Arc<PackedWho>,
    pub count: u64,
    pub latest: jiff::Timestamp,
    pub earliest: Vec<Point>,
}

/// Values by fingerprint, capped; each keeps the text it is shown as.
#[derive(Debug, Default, Clone)]
pub struct Values {
    /// The fingerprints in order, each with its value's place in `seen`. A new value moves
    /// only these small pairs: with the values themselves in the sorted list, an identity near
    /// the cap moved some 20 KB for each new one, a tenth of the ordering thread's time.
    index: Vec<(u128, u32)>,
    seen: Vec<(String, ValueSeen)>,
}

impl Values {
    /// Returns the entries added, and whether the value was dropped for the cap.
    fn add(&mut self, p: &Point, value: u128, display: &dyn Fn() -> String, who: &LazyWho, max_values: usize) -> (u64, bool) {
        match self.index.binary_search_by_key(&value, |(k, _)| *k) {
            Ok(i) => {
                let Some((_, seen)) = self.seen.get_mut(self.index[i].1 as usize) else { return (0, false) };
                seen.count += 1;
                seen.latest = seen.latest.max(p.time);
                if *p < seen.first {
                    seen.first = p.clone();
                    seen.who = who.get();
                }
                (u64::from(keep_earliest(&mut seen.earliest, p, CONTRIBUTING_CAP)), false)
            }
            Err(_) if self.seen.len() >= max_values => (0, true),
            Err(i) => {
                grow_gently(&mut self.seen);
                grow_gently(&mut self.index);
                let seen = ValueSeen { first: p.clone(), who: who.get(), count: 1, latest: p.time, earliest: vec![p.clone()] };
                self.index.insert(i, (value, self.seen.len() as u32));
                self.seen.push((display(), seen));
                (2, false)
            }
        }
    }

    /// The values in the order of their text.
    fn iter(&self) -> impl Iterator<Item = (&str, &ValueSeen)> {
        // From fingerprint order, so that values shown alike stay in an order that does not
        // depend on the order records arrived in.
        let mut v: Vec<(&str, &ValueSeen)> = self.index.iter().filter_map(|&(_, at)| self.seen.get(at as usize)).map(|(t, s)| (t.as_str(), s)).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v.into_iter()
    }
}

/// One identity's habits.
#[derive(Debug, Default, Clone)]
pub struct Habits {
    /// Its earliest records, as many as the rule's `min_history`: when it was first seen and
    /// whether its learning period held enough records.
    earliest: Vec<Point>,
    values: Values,
}

impl Habits {
    pub fn add(&mut self, p: &Point, value: Option<u128>, display: &dyn Fn() -> String, who: &LazyWho, min_history: u64, max_values: usize) -> (u64, bool) {
        let mut added = u64::from(keep_earliest(&mut self.earliest, p, min_history.clamp(1, 10_000) as usize));
        let Some(v) = value else { return (added, false) };
        let (n, dropped) = self.values.add(p, v, display, who, max_values);
        added += n;
        (added, dropped)
    }
}

/// Values first seen after the identity's learning period, once it had `min_history` records
/// in that period and at least one value to compare with: one finding per identity, listing
/// them. An identity that used more than `max_known` values while learning roams by nature
/// (a mobile app's key, a shared gateway), and a new value says nothing about it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn new_values(rule: usize, attribute: Attribute, learning: i64, min_history: u64, max_known: u32, names: &EntityNames, h: &Habits) -> Option<BehaviorFinding> {
    let first = h.earliest.first()?;
    let learning_end = first.time.saturating_add(jiff::SignedDuration::from_secs(learning)).unwrap_or(first.time);
    let in_learning = h.earliest.iter().filter(|p| p.time <= learning_end).count() as u64;
    if in_learning < min_history.max(1) {
        return None;
    }
    let known: Vec<&str> = h.values.iter().filter(|(_, s)| s.first.time <= learning_end).map(|(v, _)| v).collect();
    if known.is_empty() || known.len() > max_known as usize {
        return None;
    }
    let mut new: Vec<(&str, &ValueSeen)> = h.values.iter().filter(|(_, s)| s.first.time > learning_end).collect();
    new.sort_by(|a, b| a.1.first.cmp(&b.1.first));
    let (first_value, trigger) = *new.first()?;
    let escape = |v: &str| crate::report::terminal::escape(v).into_owned();
    let shown_known: Vec<String> = known.iter().take(10).map(|v| escape(v)).collect();
    let listed: Vec<String> = new
        .iter()
        .take(10)
        .map(|(v, s)| format!("{} ({} requests, {} to {})", escape(v), s.count, s.first.time, s.latest))
        .collect();
    let mut contributing = Vec::new();
    for (_, s) in &new {
        for p in &s.earliest {
            keep_earliest(&mut contributing, p, CONTRIBUTING_CAP);
        }
    }
    let total: u64 = new.iter().map(|(_, s)| s.count).sum();
    let explanation = format!(
        "{} was first seen at {}; in its learning period of {} it made {}{} requests, with {} {}. After that it appeared with {} new {}{}: {}{}.",
        capitalized(names.label()),
        first.time,
        span_text(learning),
        if in_learning >= min_history { "at least " } else { "" },
        in_learning,
        attribute.as_str(),
        shown_known.join(", "),
        new.len(),
        attribute.as_str(),
        if new.len() == 1 { "" } else { "s" },
        listed.join("; "),
        if new.len() > listed.len() { format!("; and {} more", new.len() - listed.len()) } else { String::new() },
    );
    Some(BehaviorFinding {
        rule,
        entity: names.key().to_owned(),
        anchor: first_value.to_owned(),
        entity_label: names.label().to_owned(),
        trigger: trigger.first.clone(),
        first: trigger.first.time,
        last: new.iter().map(|(_, s)| s.latest).max().unwrap_or(trigger.latest),
        contributing,
        contributing_total: total,
        who: trigger.who.unpack(),
        other: None,
        numbers: json!({
            "detector": "new_attribute",
            "attribute": attribute.as_str(),
            "newValues": new.iter().take(20).map(|(v, s)| json!({"value": escape(v), "firstSeen": s.first.time.to_string(), "requests": s.count})).collect::<Vec<_>>(),
            "newValueCount": new.len(),
            "knownValues": shown_known,
            "firstSeen": first.time.to_string(),
            "learningEnds": learning_end.to_string(),
            "learningRecords": in_learning,
            "requestsWithNewValues": total,
        }),
        explanation,
    })
}

/// One resource's key operations and who used its keys from where.
#[derive(Debug, Default, Clone)]
pub struct KeyUse {
    /// Key listings or regenerations by operation id, with the earliest event of each.
    operations: Vec<(String, Point, Arc<PackedWho>)>,
    /// API-key calls per hour (hour index, count).
    calls_per_hour: Vec<(i64, u64)>,
    ranges: Values,
}

impl KeyUse {
    pub fn add(&mut self, o: &Observation, who: &LazyWho, max_operations: usize, max_values: usize) -> (u64, bool) {
        if let Some(op) = &o.key_operation {
            let full = self.operations.len() >= max_operations;
            return match self.operations.iter_mut().find(|(k, _, _)| k == op) {
                Some(entry) => {
                    if o.point < entry.1 {
                        entry.1 = o.point.clone();
                        entry.2 = who.get();
                    }
                    (0, false)
                }
                None if full => (0, true),
                None => {
                    self.operations.push((op.clone(), o.point.clone(), who.get()));
                    (1, false)
                }
            };
        }
        let Some(range) = &o.ip_range else { return (0, false) };
        let hour = o.point.secs().div_euclid(3600);
        let mut added = 0;
        match self.calls_per_hour.binary_search_by_key(&hour, |(h, _)| *h) {
            Ok(i) => self.calls_per_hour[i].1 += 1,
            Err(i) => {
                self.calls_per_hour.insert(i, (hour, 1));
                added += 1;
            }
        }
        let (n, dropped) = self.ranges.add(&o.point, range.key(), &|| range.to_string(), who, max_values);
        (added + n, dropped)
    }
}

/// For each key operation: API-key calls within `window` after it from ranges never seen on
/// the resource before it, when the resource had `min_history` key calls in the whole hours
/// before the operation (without a history, every range is new and nothing can be told).
pub(crate) fn key_then_new_ranges(rule: usize, window: i64, min_history: u64, names: &EntityNames, k: &KeyUse) -> Vec<BehaviorFinding> {
    let mut ops: Vec<&(String, Point, Arc<PackedWho>)> = k.operations.iter().collect();
    ops.sort_by(|a, b| a.1.cmp(&b.1));
    let mut out = Vec::new();
    for (op_key, op, op_who) in ops {
        let op_hour = op.secs().div_euclid(3600);
        let history: u64 = k.calls_per_hour.iter().filter(|(h, _)| *h < op_hour).map(|(_, n)| n).sum();
        if history < min_history {
            continue;
        }
        let until = op.secs().saturating_add(window);
        let new: Vec<(&str, &ValueSeen)> = k.ranges.iter().filter(|(_, s)| s.first > *op && s.first.secs() <= until).collect();
        let Some((_, trigger)) = new.iter().min_by(|a, b| a.1.first.cmp(&b.1.first)) else { continue };
        let mut contributing = vec![op.clone()];
        let mut calls = Vec::new();
        for (_, s) in &new {
            for p in &s.earliest {
                keep_earliest(&mut calls, p, CONTRIBUTING_CAP - 1);
            }
        }
        contributing.extend(calls);
        let total: u64 = new.iter().map(|(_, s)| s.count).sum();
        let new_ranges: Vec<String> = new.iter().map(|(r, _)| crate::report::terminal::escape(r).into_owned()).collect();
        let actor = op_who.upn().or(op_who.object_id()).or(op_who.ip()).unwrap_or("an unknown principal").to_owned();
        let explanation = format!(
            "The keys of {} were listed or regenerated at {} by {}. Within {} after that, {total} API-key calls came from {} IP range(s) never seen on this resource before: {}; the first at {}. The resource had {history} API-key calls in the hours before.",
            names.label(),
            op.time,
            crate::report::terminal::escape(&actor),
            span_text(window),
            new_ranges.len(),
            new_ranges.join(", "),
            trigger.first.time,
        );
        out.push(BehaviorFinding {
            rule,
            entity: names.key().to_owned(),
            anchor: op_key.clone(),
            entity_label: names.label().to_owned(),
            trigger: trigger.first.clone(),
            first: op.time,
            last: new.iter().map(|(_, s)| s.latest).max().unwrap_or(op.time),
            contributing,
            contributing_total: total + 1,
            who: trigger.who.unpack(),
            other: Some(op_who.unpack()),
            numbers: json!({
                "detector": "key_then_new_ip",
                "keyOperationTime": op.time.to_string(),
                "keyOperationBy": crate::report::terminal::escape(&actor),
                "newRanges": new_ranges,
                "callsFromNewRanges": total,
                "priorKeyCalls": history,
                "windowSeconds": window,
            }),
            explanation,
        });
    }
    out
}
