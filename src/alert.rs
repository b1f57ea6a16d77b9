//! The alert model: one Microsoft Graph security `alert` (alerts_v2) per finding, with the
//! evidence types Defender XDR uses and everything Graph has no field for in
//! `additionalData` (DESIGN §5). Ids are fingerprints of what was found, so the same input
//! gives the same ids in every run and with every thread count.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::detect::behavior::{BehaviorFinding, Point, Who};
use crate::detect::{Detection, Engine, Finding};
use crate::rules::behavior::BehaviorRule;
use crate::record::{record_hash, Record, Surface};
use crate::report::terminal;
use crate::rules::{Severity, Threat};

/// Characters of context shown on each side of a match in `promptEvidence`.
const EVIDENCE_CONTEXT: usize = 60;

/// Run-wide settings for building alerts.
#[derive(Debug, Clone)]
pub struct AlertContext {
    /// RFC 3339 scan time (pinned by `SOURCE_DATE_EPOCH`).
    pub created: String,
    /// Keep secrets and personal data in evidence (`--no-redact`).
    pub no_redact: bool,
    pub service_source: String,
}

/// An alert ready to write, with what the sinks and the run summary need to know about it.
#[derive(Debug, Clone)]
pub struct AlertOut {
    pub alert: Alert,
    pub meta: AlertMeta,
}

/// One Graph security `alert` (alerts_v2) as aihunt writes it. The fields are in the order of
/// their names, as serde_json writes an object's keys, so the output is what it was when
/// alerts were built as JSON trees (a test holds the two together); a tree cost a third of
/// the work per record on a log where every record alerts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    /// Everything Graph has no field for, by name (sorted, as written); no value is null.
    pub additional_data: Map<String, Value>,
    pub category: String,
    classification: &'static str,
    pub created_date_time: String,
    pub description: String,
    detection_source: &'static str,
    pub detector_id: String,
    determination: &'static str,
    pub evidence: Vec<Evidence>,
    pub first_activity_date_time: String,
    id: String,
    incident_id: String,
    last_activity_date_time: String,
    pub mitre_techniques: Vec<String>,
    product_name: &'static str,
    provider_alert_id: String,
    recommended_actions: &'static str,
    service_source: String,
    severity: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    title: String,
}

/// What the writer thread needs of an alert besides its encoded bytes: what it is counted,
/// de-duplicated and grouped into incidents by. Workers send it without the alert's JSON
/// tree, which they free themselves: freed on the writer thread, its few dozen small
/// allocations per alert went back to the allocator across threads, a twentieth of that
/// thread's instructions.
#[derive(Debug, Clone)]
pub struct AlertMeta {
    pub id: String,
    pub threat: Threat,
    pub severity: Severity,
    pub incident: IncidentKey,
    pub title: String,
    pub first_activity: String,
}

impl AlertMeta {
    /// Bytes its strings hold.
    pub fn heap_bytes(&self) -> usize {
        [&self.id, &self.title, &self.first_activity, &self.incident.id, &self.incident.entity].iter().map(|s| s.capacity()).sum()
    }
}

/// Which incident an alert belongs to: its primary entity and the UTC day (DESIGN §5.1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IncidentKey {
    pub id: String,
    pub entity_kind: &'static str,
    pub entity: String,
}

impl IncidentKey {
    /// The incident of an alert about `(kind, entity)` whose activity started at `time` (RFC 3339).
    fn of((entity_kind, entity): (&'static str, String), time: &str) -> IncidentKey {
        let day = time.get(..10).unwrap_or("");
        IncidentKey { id: format!("aihi-{}", &record_hash(&format!("{entity_kind}\u{0}{entity}\u{0}{day}"))[..20]), entity_kind, entity }
    }
}

/// One evidence entity of an alert: what it is (`odataType`), its roles and verdict, and the
/// fields of its kind (no value null).
#[derive(Debug, Clone)]
pub struct Evidence {
    pub odata_type: &'static str,
    created_date_time: String,
    roles: Vec<&'static str>,
    verdict: &'static str,
    pub fields: Map<String, Value>,
}

/// An evidence entity is one JSON object: its own fields and its kind's, every key in order.
impl Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Field<'a> {
            Text(&'a str),
            Roles(&'a [&'static str]),
            Any(&'a Value),
        }
        let mut all = vec![
            ("@odata.type", Field::Text(self.odata_type)),
            ("createdDateTime", Field::Text(&self.created_date_time)),
            ("roles", Field::Roles(&self.roles)),
            ("verdict", Field::Text(self.verdict)),
        ];
        all.extend(self.fields.iter().map(|(k, v)| (k.as_str(), Field::Any(v))));
        all.sort_by(|a, b| a.0.cmp(b.0));
        let mut map = serializer.serialize_map(Some(all.len()))?;
        for (key, value) in &all {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Where a record's texts hold secrets and personal data, for redaction: every value of each
/// credential or sensitive-data rule that matched a text, reported or not (a finding under its
/// threshold still found a secret), and not only the first, which is all a detection keeps;
/// and every encoded or hidden span whose decoding holds one. Worked out for a text when an
/// alert about it is built: most records raise none.
pub struct Secrets<'a> {
    engine: &'a Engine,
    record: &'a Record,
    /// Each sensitive detection's span, rule and first value.
    first: Vec<(usize, usize, std::ops::Range<usize>)>,
}

/// What of one text evidence hides.
#[derive(Default)]
struct SpanSecrets {
    /// Byte ranges of the text, sorted.
    ranges: Vec<std::ops::Range<usize>>,
    /// The encoded and hidden spans holding a secret, with where it lies in their decoding.
    encoded: Vec<(std::ops::Range<usize>, Vec<std::ops::Range<usize>>)>,
}

impl<'a> Secrets<'a> {
    /// The secrets of `record`, whose detections (all of them, before thresholds) are these.
    pub fn of(engine: &'a Engine, record: &'a Record, detections: &[Detection]) -> Secrets<'a> {
        let first = detections
            .iter()
            .filter(|d| is_sensitive(engine.rule(d.rule).threat))
            .filter_map(|d| Some((d.span?, d.rule, d.range.clone())))
            .collect();
        Secrets { engine, record, first }
    }

    /// What evidence hides of span `span` where it shows the bytes `shown`: the rules' values
    /// anywhere in it, and the encoded spans around `shown` whose decoding holds a secret.
    /// Only the text around the excerpt is decoded again (detection did it once, and keeps
    /// no decodings), widened to whole words: no encoding the decoders read holds whitespace
    /// except hex with spaced pairs, and a cut run of those still decodes pair by pair.
    fn near(&self, span: usize, shown: std::ops::Range<usize>) -> SpanSecrets {
        let Some(text) = self.record.surfaces.get(span).map(|s| s.text.as_str()) else { return SpanSecrets::default() };
        let mut ranges: Vec<std::ops::Range<usize>> = self
            .first
            .iter()
            .filter(|(s, ..)| *s == span)
            .flat_map(|(_, rule, first)| self.engine.values_after(*rule, text, first.clone()))
            .collect();
        let word_start = text[..shown.start].rfind(|c: char| c.is_ascii_whitespace()).map_or(0, |i| i + 1).max(shown.start.saturating_sub(MAX_WIDENING));
        let word_end = text[shown.end..].find(|c: char| c.is_ascii_whitespace()).map_or(text.len(), |i| shown.end + i).min(shown.end + MAX_WIDENING);
        let (from, to) = (crate::detect::floor_boundary(text, word_start), crate::detect::ceil_boundary(text, word_end));
        // The secrets already found are hidden whole, and read as base64 they are noise that
        // only costs a decoding (a 40-character key is a base64 run): blanked first.
        let mut around = text[from..to].to_owned();
        for r in &ranges {
            let (a, b) = (r.start.clamp(from, to) - from, r.end.clamp(from, to) - from);
            if a < b {
                around.replace_range(a..b, &" ".repeat(b - a));
            }
        }
        let encoded: Vec<_> = self.engine.revealed_secrets(&around).into_iter().map(|(at, inside)| (at.start + from..at.end + from, inside)).collect();
        ranges.extend(encoded.iter().map(|(at, _)| at.clone()));
        ranges.sort_unstable_by_key(|r| (r.start, r.end));
        ranges.dedup();
        SpanSecrets { ranges, encoded }
    }
}

/// How far past the excerpt, on each side, the text decoded for redaction reaches to find
/// where an encoded run starts or ends.
const MAX_WIDENING: usize = 64 << 10;

/// Builds the alert for one finding on one record; `secrets` are the record's (see
/// [`Secrets::of`]).
pub fn build(engine: &Engine, record: &Record, finding: &Finding, secrets: &Secrets, ctx: &AlertContext) -> AlertOut {
    let primary = primary_detection(engine, finding);
    let rule = engine.rule(primary.rule);
    let mut rule_ids: Vec<&str> = finding.detections.iter().map(|d| engine.rule(d.rule).id.as_str()).collect();
    rule_ids.dedup();
    let surface_name = finding.surface.map(Surface::as_str).unwrap_or("record");
    // A control-plane operation logs a Start and a Success event with one correlation id: both
    // describe one operation, so they share one id (and the second is not written again).
    let day = record.time.map(|t| t.to_string()).unwrap_or_default().chars().take(10).collect::<String>();
    let identity = match (finding.threat, &record.correlation_id) {
        (Threat::ControlPlane, Some(corr)) => format!("op:{corr}:{}", record.operation.as_deref().unwrap_or("").to_ascii_lowercase()),
        // Who-called signals hold for every request of that caller: one alert per caller, rule
        // and day, not one per request.
        (Threat::SuspiciousUserAgent | Threat::AnonymizedIp | Threat::SuspiciousIp, _) => format!("caller:{day}"),
        _ => record.record_hash.clone(),
    };
    let id = format!(
        "aih-{}",
        record_hash(&format!("{}\u{0}{}\u{0}{}\u{0}{}", rule_ids.join(","), identity, surface_name, primary.matched))
    );
    let time = record.time.map(|t| t.to_string()).unwrap_or_else(|| ctx.created.clone());
    let incident = IncidentKey::of(primary_entity(record), &time);
    let title = title(finding.threat, record, &rule.title);
    let mut mitre: Vec<String> = Vec::new();
    let mut atlas: Vec<String> = Vec::new();
    for d in &finding.detections {
        let r = engine.rule(d.rule);
        mitre.extend(r.mitre.iter().cloned());
        atlas.extend(r.atlas.iter().cloned());
    }
    mitre.sort();
    mitre.dedup();
    atlas.sort();
    atlas.dedup();

    let mut additional = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            additional.insert(k.to_owned(), v);
        }
    };
    put("threat", json!(finding.threat.as_str()));
    put("alertType", json!(alert_type(engine, finding)));
    put("sourceFile", json!(&*record.source_file));
    put("sourceLine", json!(record.source_line));
    if !record.other_rows.is_empty() {
        put("otherRows", serde_json::to_value(&record.other_rows).unwrap_or(Value::Null));
    }
    if let Some(i) = record.index_in_line {
        put("indexInLine", json!(i));
    }
    put("recordKind", json!(record.kind.as_str()));
    put("correlationId", json!(record.correlation_id));
    put("deployment", json!(record.deployment));
    put("model", json!(record.model));
    put("surface", json!(surface_name));
    // A credential or personal-data finding's match is the secret. The text's other secrets
    // are redacted wherever the excerpt reaches them, whatever the finding: a jailbreak's
    // context, or a match that runs over a key, must not show the key the credential alert
    // hides.
    let secret_match = !ctx.no_redact && is_sensitive(finding.threat);
    let excerpt = primary.span.and_then(|span| Some((span, Excerpt::of(&record.surfaces.get(span)?.text, primary))));
    let span_secrets = match &excerpt {
        Some((span, excerpt)) if !ctx.no_redact => secrets.near(*span, excerpt.before_start..excerpt.after_end),
        _ => SpanSecrets::default(),
    };
    if let Some((span, excerpt)) = &excerpt {
        put("promptEvidence", json!(excerpt.show(&record.surfaces[*span].text, secret_match, &span_secrets.ranges)));
    }
    if let Some(by) = primary.revealed_by {
        put("revealedBy", json!(by));
    }
    if let Some(decoded) = &primary.decoded {
        // What a decoder revealed is redacted as the text around it is: a key inside a base64
        // payload (and the payload in the excerpt) is hidden like a key in plain sight.
        let shown = if ctx.no_redact {
            terminal::escape(decoded).into_owned()
        } else if secret_match {
            redact(decoded)
        } else {
            match span_secrets.encoded.iter().find(|(span, _)| *span == primary.range) {
                Some((_, inside)) => escape_redacting(decoded, 0, decoded.len(), inside),
                // A decoding without secrets is not listed, nor would one the words around the
                // excerpt cut: what is shown of it is searched.
                None => escape_redacting(decoded, 0, decoded.len(), &engine.secrets_in(decoded)),
            }
        };
        put("decodedText", json!(shown));
    }
    if let Some((field, value)) = &primary.field {
        put("matchedField", json!({ "field": field, "value": value }));
    }
    if !record.content_filter.is_empty() {
        put("contentFilter", serde_json::to_value(&record.content_filter).unwrap_or(Value::Null));
    }
    put("matchedRules", json!(rule_ids));
    put("atlasTechniques", json!(atlas));
    put("weight", json!((finding.weight * 100.0).round() / 100.0));
    if let Some(ip) = &record.caller.ip {
        put("callerIp", json!(ip));
    }
    if let Some(ua) = &record.caller.user_agent {
        put("userAgent", json!(terminal::escape(ua)));
    }
    put("url", json!(record.url));

    let description = description(engine, finding, record, surface_name);
    assemble(
        AlertParts {
            id,
            incident,
            detector: &rule.id,
            title,
            description,
            threat: finding.threat,
            severity: finding.severity,
            category: rule.category.as_deref().unwrap_or(category(finding.threat)),
            mitre,
            tenant: record.caller.tenant_id.as_deref(),
            first: time.clone(),
            last: time,
            evidence: evidence(record, finding.threat, &ctx.created),
            additional,
        },
        ctx,
    )
}

/// What sets one alert apart; everything else in the Graph alert is fixed (DESIGN §5).
struct AlertParts<'a> {
    id: String,
    incident: IncidentKey,
    detector: &'a str,
    title: String,
    /// Already escaped for terminals.
    description: String,
    threat: Threat,
    severity: Severity,
    category: &'a str,
    mitre: Vec<String>,
    tenant: Option<&'a str>,
    first: String,
    last: String,
    evidence: Vec<Evidence>,
    additional: Map<String, Value>,
}

fn assemble(p: AlertParts, ctx: &AlertContext) -> AlertOut {
    let mut additional_data = p.additional;
    additional_data.values_mut().for_each(strip_nulls_in);
    let alert = Alert {
        odata_type: "#microsoft.graph.security.alert",
        additional_data,
        category: p.category.to_owned(),
        classification: "unknown",
        created_date_time: ctx.created.clone(),
        description: p.description,
        detection_source: "customDetection",
        detector_id: p.detector.to_owned(),
        determination: "unknown",
        evidence: p.evidence,
        first_activity_date_time: p.first.clone(),
        id: p.id.clone(),
        incident_id: p.incident.id.clone(),
        last_activity_date_time: p.last,
        mitre_techniques: p.mitre,
        product_name: "aihunt",
        provider_alert_id: p.id.clone(),
        recommended_actions: recommended_actions(p.threat),
        service_source: ctx.service_source.clone(),
        severity: p.severity.as_str(),
        status: "new",
        tenant_id: p.tenant.map(str::to_owned),
        title: p.title.clone(),
    };
    AlertOut { alert, meta: AlertMeta { id: p.id, threat: p.threat, severity: p.severity, incident: p.incident, title: p.title, first_activity: p.first } }
}

/// Builds the alert for a behavioural finding: it points at the record that crossed the
/// threshold and lists the records that make it up (DESIGN §5).
pub fn build_behavior(rule: &BehaviorRule, f: &BehaviorFinding, ctx: &AlertContext) -> AlertOut {
    let id = format!("aih-{}", record_hash(&format!("{}\u{0}{}\u{0}{}", rule.id, f.entity, f.anchor)));
    let first = f.first.to_string();
    let last = f.last.max(f.first).to_string();
    let incident = IncidentKey::of(who_entity(&f.who), &first);
    let title = terminal::escape(&format!("{} by {}", rule.title, f.entity_label)).into_owned();
    let place = |p: &Point| {
        strip_nulls(json!({
            "sourceFile": &*p.at.file,
            "sourceLine": p.at.line,
            "indexInLine": p.at.index,
            "time": p.time.to_string(),
        }))
    };
    let mut additional = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            additional.insert(k.to_owned(), v);
        }
    };
    put("threat", json!(rule.threat.as_str()));
    put("alertType", json!(rule.alert_type));
    put("sourceFile", json!(&*f.trigger.at.file));
    put("sourceLine", json!(f.trigger.at.line));
    put("indexInLine", json!(f.trigger.at.index));
    put("entity", json!(terminal::escape(&f.entity_label)));
    put("deployment", json!(f.who.deployment));
    put("behavior", f.numbers.clone());
    put("contributingRecords", Value::Array(f.contributing.iter().map(place).collect()));
    put("contributingRecordsTotal", json!(f.contributing_total));
    put("contributingRecordsTruncated", json!(f.contributing_total > f.contributing.len() as u64));
    put("matchedRules", json!([rule.id]));
    put("atlasTechniques", json!(rule.atlas));
    put("callerIp", json!(f.who.ip));
    if let Some(ua) = &f.who.user_agent {
        put("userAgent", json!(terminal::escape(ua)));
    }
    let mut description = f.explanation.clone();
    if !rule.description.is_empty() {
        description.push(' ');
        description.push_str(&rule.description);
    }
    description.push_str(&format!(" Rule {} ({}).", rule.id, rule.title));
    let mut evidence = Vec::new();
    who_evidence(&f.who, "attacker", true, &ctx.created, &mut evidence);
    if let Some(other) = &f.other {
        who_evidence(other, "suspicious", other.resource_id != f.who.resource_id, &ctx.created, &mut evidence);
    }
    let mut mitre = rule.mitre.clone();
    mitre.sort();
    mitre.dedup();
    assemble(
        AlertParts {
            id,
            incident,
            detector: &rule.id,
            title,
            description: terminal::escape(&description).into_owned(),
            threat: rule.threat,
            severity: rule.severity,
            category: rule.category.as_deref().unwrap_or(category(rule.threat)),
            mitre,
            tenant: f.who.tenant.as_deref(),
            first,
            last,
            evidence,
            additional,
        },
        ctx,
    )
}

/// The entity an incident groups by: the caller's IP (its /24 when masked), else identity,
/// else the resource. Per-record and behavioural alerts share it, so they share incidents.
fn who_entity(w: &Who) -> (&'static str, String) {
    if let Some(ip) = &w.ip {
        // A masked address (`81.2.69.***`) is its /24, read by the same parser the access
        // detectors use; a value it cannot read is kept as written.
        let range = w.ip_masked.then(|| crate::detect::behavior::ip_range(ip)).flatten();
        return ("ip", range.map_or_else(|| ip.clone(), |r| r.to_string()));
    }
    for (kind, v) in [("user", &w.upn), ("user", &w.object_id), ("user", &w.end_user), ("app", &w.app_id), ("apimSubscription", &w.apim_subscription)] {
        if let Some(v) = v {
            return (kind, v.clone());
        }
    }
    ("resource", w.resource_id.clone().or_else(|| w.deployment.clone()).unwrap_or_else(|| "unknown".into()))
}

fn who_evidence(w: &Who, role: &'static str, with_resource: bool, created: &str, out: &mut Vec<Evidence>) {
    let mut ev = |odata_type: &'static str, roles: Vec<&'static str>, verdict: &'static str, fields: Value| {
        let Value::Object(fields) = strip_nulls(fields) else { return };
        out.push(Evidence { odata_type, created_date_time: created.to_owned(), roles, verdict, fields });
    };
    if let Some(ip) = w.ip.as_ref().filter(|ip| !w.ip_masked && ip.parse::<std::net::IpAddr>().is_ok()) {
        ev("#microsoft.graph.security.ipEvidence", vec![role], "suspicious", json!({ "ipAddress": ip }));
    }
    if w.upn.is_some() || w.object_id.is_some() {
        ev(
            "#microsoft.graph.security.userEvidence",
            vec![role],
            "suspicious",
            json!({ "userAccount": {
                "userPrincipalName": w.upn,
                "azureAdUserId": w.object_id,
                "accountName": w.upn.as_ref().and_then(|u| u.split('@').next()),
                "domainName": w.upn.as_ref().and_then(|u| u.split_once('@').map(|(_, d)| d)),
            }}),
        );
    }
    if let Some(end_user) = &w.end_user {
        ev(
            "#microsoft.graph.security.userEvidence",
            vec![role],
            "suspicious",
            json!({ "userAccount": { "accountName": end_user, "azureAdUserId": is_guid(end_user).then_some(end_user) }}),
        );
    }
    if let Some(id) = w.resource_id.as_ref().filter(|_| with_resource) {
        ev(
            "#microsoft.graph.security.azureResourceEvidence",
            vec!["attacked"],
            "unknown",
            json!({ "resourceId": id, "resourceName": w.resource_name, "resourceType": w.resource_type }),
        );
    }
}

/// The detection an alert is about: one in the text when there is one (it has evidence to
/// show), then the most severe, the heaviest, the first by rule id.
fn primary_detection<'f>(engine: &Engine, finding: &'f Finding) -> &'f Detection {
    finding
        .detections
        .iter()
        .max_by(|a, b| {
            a.span.is_some().cmp(&b.span.is_some()).then_with(|| {
            let (ra, rb) = (engine.rule(a.rule), engine.rule(b.rule));
            ra.severity
                .cmp(&rb.severity)
                .then(ra.weight.total_cmp(&rb.weight))
                .then(rb.id.cmp(&ra.id))
            })
        })
        .unwrap_or(&finding.detections[0])
}

/// Defender's alert type when a matched rule carries one (Azure's own verdicts, ASCII
/// smuggling), else the primary rule's.
fn alert_type(engine: &Engine, finding: &Finding) -> String {
    let defender = finding
        .detections
        .iter()
        .map(|d| engine.rule(d.rule))
        .filter(|r| r.alert_type.starts_with("AI.") && r.threat == finding.threat)
        .max_by(|a, b| a.severity.cmp(&b.severity).then(b.id.cmp(&a.id)));
    if let Some(r) = defender {
        return r.alert_type.clone();
    }
    let primary = engine.rule(primary_detection(engine, finding).rule);
    // A rule written for jailbreaks that fired in a document reports the indirect threat.
    if primary.threat != finding.threat {
        return format!("AIHunt.{}.Rule", crate::rules::load::camel(finding.threat.as_str()));
    }
    primary.alert_type.clone()
}

fn is_sensitive(threat: Threat) -> bool {
    matches!(threat, Threat::CredentialExposure | Threat::SensitiveData)
}

/// A short excerpt of the original text around a match: the match's bytes and the context
/// shown on each side.
struct Excerpt {
    before_start: usize,
    start: usize,
    end: usize,
    after_end: usize,
}

impl Excerpt {
    fn of(text: &str, d: &Detection) -> Excerpt {
        let start = crate::detect::floor_boundary(text, d.range.start);
        let end = crate::detect::ceil_boundary(text, d.range.end.min(text.len()).max(start));
        Excerpt { before_start: back_chars(text, start, EVIDENCE_CONTEXT), start, end, after_end: forward_chars(text, end, EVIDENCE_CONTEXT) }
    }

    /// The excerpt with the match marked «like this», invisible and control characters shown
    /// as escapes, secrets redacted (the whole match when it is the secret, and any of
    /// `secrets` the excerpt reaches).
    fn show(&self, text: &str, secret_match: bool, secrets: &[std::ops::Range<usize>]) -> String {
        let Excerpt { before_start, start, end, after_end } = *self;
        let shown = if secret_match { redact(&text[start..end]) } else { escape_redacting(text, start, end, secrets) };
        format!(
            "{}{}«{}»{}{}",
            if before_start > 0 { "…" } else { "" },
            escape_redacting(text, before_start, start, secrets),
            shown,
            escape_redacting(text, end, after_end, secrets),
            if after_end < text.len() { "…" } else { "" }
        )
    }
}

/// `text[from..to]` escaped, with the parts of `secrets` inside it redacted.
fn escape_redacting(text: &str, from: usize, to: usize, secrets: &[std::ops::Range<usize>]) -> String {
    let mut cuts: Vec<(usize, usize)> = secrets
        .iter()
        .map(|r| (crate::detect::ceil_boundary(text, r.start.max(from).min(to)), crate::detect::floor_boundary(text, r.end.min(to).max(from))))
        .filter(|(a, b)| a < b)
        .collect();
    cuts.sort_unstable();
    let mut out = String::new();
    let mut at = from;
    for (a, b) in cuts {
        let a = a.max(at);
        if a >= b {
            continue;
        }
        out.push_str(&terminal::escape(&text[at..a]));
        out.push_str(&redact(&text[a..b]));
        at = b;
    }
    out.push_str(&terminal::escape(&text[at..to]));
    out
}

/// Keeps the first four characters of a secret so analysts can tell which key it was.
pub fn redact(secret: &str) -> String {
    let keep: String = secret.chars().take(4).collect();
    format!("{}…[REDACTED {} chars]", terminal::escape(&keep), secret.chars().count())
}

fn back_chars(s: &str, from: usize, n: usize) -> usize {
    s[..from].char_indices().rev().nth(n.saturating_sub(1)).map_or(0, |(i, _)| i)
}

fn forward_chars(s: &str, from: usize, n: usize) -> usize {
    s[from..].char_indices().nth(n).map_or(s.len(), |(i, _)| from + i)
}

/// The entity an incident groups by (see [`who_entity`]).
fn primary_entity(r: &Record) -> (&'static str, String) {
    who_entity(&Who::of(r))
}

fn who(r: &Record) -> Option<String> {
    r.caller
        .upn
        .clone()
        .or_else(|| r.caller.end_user_id.clone().map(|u| format!("end user {u}")))
        .or_else(|| r.caller.end_user_ip.clone())
        .or_else(|| r.caller.ip.clone())
        .or_else(|| r.caller.object_id.clone())
        .or_else(|| r.caller.apim_subscription_id.clone().map(|s| format!("APIM subscription {s}")))
}

fn target(r: &Record) -> Option<String> {
    r.deployment
        .clone()
        .map(|d| format!("deployment {d}"))
        .or_else(|| r.resource.account.clone().map(|a| format!("resource {a}")))
        .or_else(|| r.model.clone().map(|m| format!("model {m}")))
}

fn title(threat: Threat, r: &Record, rule_title: &str) -> String {
    let what = match threat {
        // Control-plane rules each name one operation; the rule's title says which.
        Threat::ControlPlane => rule_title,
        Threat::Jailbreak => "Jailbreak attempt",
        Threat::IndirectPromptInjection => "Indirect prompt injection",
        Threat::AsciiSmuggling => "ASCII smuggling (hidden or invisible text)",
        Threat::CredentialExposure => "Credential exposed",
        Threat::SensitiveData => "Sensitive data exposed",
        Threat::PhishingUrl => "Malicious URL",
        Threat::SuspiciousUserAgent => "Access with a suspicious user agent",
        Threat::AnonymizedIp => "Access from an anonymizing network",
        Threat::SuspiciousIp => "Access from a suspicious IP",
        Threat::WalletAttack => "Suspected wallet attack",
        Threat::AccessAnomaly => "Access anomaly",
        Threat::AnomalousToolInvocation => "Dangerous tool invocation",
        Threat::Reconnaissance => "LLM reconnaissance attempt",
        Threat::InstructionLeakage => "System instructions leaked",
        Threat::DataPoisoning => "Suspected data poisoning",
    };
    let mut t = what.to_owned();
    if let Some(on) = target(r) {
        t.push_str(&format!(" on {on}"));
    }
    if let Some(by) = who(r) {
        t.push_str(&format!(" by {}", terminal::escape(&by)));
    }
    t
}

fn description(engine: &Engine, f: &Finding, r: &Record, surface: &str) -> String {
    let rules: Vec<String> = f
        .detections
        .iter()
        .map(|d| {
            let rule = engine.rule(d.rule);
            match d.revealed_by {
                Some(by) => format!("{} ({}, revealed by {by} decoding)", rule.title, rule.id),
                None => format!("{} ({})", rule.title, rule.id),
            }
        })
        .collect();
    let place = match f.surface {
        Some(_) => format!("the {} of a {} record", surface.replace('_', " "), r.kind),
        None => format!("a {} record", r.kind),
    };
    let mut s = format!("aihunt matched {} in {place} at {}:{}.", rules.join("; "), r.source_file, r.source_line);
    if let Some(on) = target(r) {
        s.push_str(&format!(" Target: {on}."));
    }
    if let Some(by) = who(r) {
        s.push_str(&format!(" Caller: {by}."));
    }
    if r.content_filter.prompt_blocked {
        s.push_str(" Azure's content filter blocked the request.");
    } else if !r.content_filter.verdicts.is_empty() {
        s.push_str(" Azure's content filter flagged it but did not block it.");
    }
    terminal::escape(&s).into_owned()
}

fn recommended_actions(threat: Threat) -> &'static str {
    match threat {
        Threat::Jailbreak => "Review the prompt and the model's answer for policy bypass. Identify the caller (IP, identity, end user) and check their other requests. Make sure Prompt Shields is set to block on this deployment, and block or rate-limit the caller if the attempt was deliberate.",
        Threat::IndirectPromptInjection => "Find where the document or tool output came from and remove or quarantine the planted instructions. Check what the model did after reading it (tool calls, links, sent data). Enable Prompt Shields for documents and keep retrieved content inside <documents> delimiters.",
        Threat::AsciiSmuggling => "Read the decoded hidden text in the alert. Find where the invisible characters entered (user input, document, tool result) and strip tag characters and variation-selector runs at the application boundary. Review the model's response for actions taken on the hidden instructions.",
        Threat::CredentialExposure => "Rotate the exposed credential now, then find how it reached the prompt or the model's context and remove it from there.",
        Threat::SensitiveData => "Confirm whether the data is real, limit who can see the logs that hold it, and fix the source that let it into the model's context.",
        Threat::PhishingUrl => "Block the URL, find which user or data source introduced it, and check whether other users received it.",
        Threat::SuspiciousUserAgent | Threat::AnonymizedIp | Threat::SuspiciousIp => "Check whether the caller is expected. If not, revoke its key or token, block the address, and review its other requests.",
        Threat::WalletAttack => "Identify the caller, apply quotas or rate limits, and check for leaked keys.",
        Threat::AccessAnomaly => "Confirm with the identity's owner that the new access pattern is expected; if not, revoke its credentials.",
        Threat::ControlPlane => "Confirm the operation with whoever performed it. If unexpected, regenerate keys, restore content filters and diagnostic settings, and review the principal's role assignments.",
        Threat::AnomalousToolInvocation => "Review the tool call's arguments and what the tool did. Tighten the tool's input validation and permissions.",
        Threat::Reconnaissance => "Watch the caller's next requests for injection or jailbreak attempts.",
        Threat::InstructionLeakage => "Treat the system prompt as disclosed: remove secrets from it and harden the prompt against extraction.",
        Threat::DataPoisoning => "Remove the example from the training set and review the data pipeline that produced it before fine-tuning.",
    }
}

/// MITRE ATT&CK tactic in Graph's spelling, after Defender's own alert for the threat.
pub fn category(threat: Threat) -> &'static str {
    match threat {
        Threat::Jailbreak => "DefenseEvasion",
        Threat::IndirectPromptInjection => "Execution",
        Threat::AsciiSmuggling => "Impact",
        Threat::CredentialExposure => "CredentialAccess",
        Threat::SensitiveData => "Collection",
        Threat::PhishingUrl => "Collection",
        Threat::SuspiciousUserAgent | Threat::AnonymizedIp | Threat::SuspiciousIp => "Execution",
        Threat::WalletAttack => "Impact",
        Threat::AccessAnomaly => "InitialAccess",
        Threat::ControlPlane => "InitialAccess",
        Threat::AnomalousToolInvocation => "Execution",
        Threat::Reconnaissance => "Reconnaissance",
        Threat::InstructionLeakage => "Collection",
        Threat::DataPoisoning => "Impact",
    }
}

fn is_prompt_threat(t: Threat) -> bool {
    matches!(
        t,
        Threat::Jailbreak | Threat::AsciiSmuggling | Threat::Reconnaissance | Threat::PhishingUrl | Threat::AnomalousToolInvocation
    )
}

fn evidence(r: &Record, threat: Threat, created: &str) -> Vec<Evidence> {
    let mut out = Vec::new();
    let attacker_role = if is_prompt_threat(threat) { "attacker" } else { "suspicious" };
    let mut ev = |odata_type: &'static str, roles: Vec<&'static str>, verdict: &'static str, fields: Value| {
        let Value::Object(fields) = strip_nulls(fields) else { return };
        out.push(Evidence { odata_type, created_date_time: created.to_owned(), roles, verdict, fields });
    };
    let end_ip = r.caller.end_user_ip.as_ref().filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    if let Some(ip) = end_ip {
        ev("#microsoft.graph.security.ipEvidence", vec![attacker_role], "suspicious", json!({ "ipAddress": ip }));
    }
    if let Some(ip) = r.caller.ip.as_ref().filter(|ip| !r.caller.ip_masked && ip.parse::<std::net::IpAddr>().is_ok()) {
        let (roles, verdict) = if end_ip.is_some() { (vec!["contextual"], "unknown") } else { (vec![attacker_role], "suspicious") };
        ev("#microsoft.graph.security.ipEvidence", roles, verdict, json!({ "ipAddress": ip }));
    }
    if r.caller.upn.is_some() || r.caller.object_id.is_some() {
        ev(
            "#microsoft.graph.security.userEvidence",
            vec!["suspicious"],
            "unknown",
            json!({ "userAccount": {
                "userPrincipalName": r.caller.upn,
                "azureAdUserId": r.caller.object_id,
                "accountName": r.caller.upn.as_ref().and_then(|u| u.split('@').next()),
                "domainName": r.caller.upn.as_ref().and_then(|u| u.split_once('@').map(|(_, d)| d)),
            }}),
        );
    }
    if let Some(end_user) = &r.caller.end_user_id {
        ev(
            "#microsoft.graph.security.userEvidence",
            vec![attacker_role],
            "suspicious",
            json!({ "userAccount": { "accountName": end_user, "azureAdUserId": is_guid(end_user).then_some(end_user) }}),
        );
    }
    if let Some(id) = &r.resource.id {
        ev(
            "#microsoft.graph.security.azureResourceEvidence",
            vec!["attacked"],
            "unknown",
            json!({ "resourceId": id, "resourceName": r.resource.account, "resourceType": r.resource.provider }),
        );
    }
    if let Some(app) = &r.caller.application_name {
        ev("#microsoft.graph.security.cloudApplicationEvidence", vec!["contextual"], "unknown", json!({ "displayName": app }));
    }
    out
}

fn is_guid(s: &str) -> bool {
    s.len() == 36 && s.chars().enumerate().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// `v` without the null members of its objects, at any depth (array elements stay). In place:
/// rebuilding every object of every alert was two fifths of the time spent assembling it.
fn strip_nulls(mut v: Value) -> Value {
    strip_nulls_in(&mut v);
    v
}

fn strip_nulls_in(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls_in);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls_in),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::intel::Intel;
    use crate::record::{parse_frame, ParseOptions};


    #[test]
    fn an_alert_writes_its_keys_in_the_order_a_json_tree_would() {
        // Consumers diff and hash alert files: the bytes must not change with how alerts are
        // built. A JSON tree (serde_json's map) writes every object's keys sorted.
        let (rules, errors) = crate::rules::load::compile(&crate::rules::load::embedded_sources());
        assert!(errors.is_empty(), "{errors:?}");
        let engine = Engine::new(Arc::new(rules), Arc::new(Intel::defaults()));
        let ctx = AlertContext { created: "2026-11-28T00:00:00Z".into(), no_redact: false, service_source: "test".into() };
        let file: Arc<str> = Arc::from("fixtures");
        let (mut alerts, mut with_tenant, mut with_evidence) = (0, 0, 0);
        for (n, line) in crate::test_fixtures::fixture_lines(&["samples", "detections"]).iter().enumerate() {
            for record in parse_frame(line, &file, n as u64 + 1, 0, ParseOptions::default()).records {
                let detections = engine.detections(&record);
                let secrets = Secrets::of(&engine, &record, &detections);
                for finding in engine.findings_of(detections) {
                    let alert = build(&engine, &record, &finding, &secrets, &ctx).alert;
                    let written = serde_json::to_string(&alert).unwrap();
                    let as_tree = serde_json::to_string(&serde_json::to_value(&alert).unwrap()).unwrap();
                    assert_eq!(written, as_tree);
                    alerts += 1;
                    with_tenant += usize::from(alert.tenant_id.is_some());
                    with_evidence += usize::from(alert.evidence.iter().any(|e| !e.fields.is_empty()));
                }
            }
        }
        assert!(alerts >= 25 && with_tenant > 0 && with_evidence > 0, "{alerts} alerts, {with_tenant} with a tenant, {with_evidence} with evidence");
    }
}
