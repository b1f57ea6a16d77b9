//! What the behavioural detectors need from one record, built by the workers in parallel. It
//! is mostly fingerprints and small copies: the one thread that keeps the state then does
//! little per record, and a caller's details are copied once per worker, not once per record.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::series::{Point, RecordRef};
use crate::record::{bytes_hash128, hash128_ascii_lower, record_hash128, AuthKind, Record, RecordKind, Surface};

/// Who and what a record is about: the evidence a behavioural alert shows, and where the
/// names of its entities come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
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

/// The record's values a [`Who`] copies, in one order: the fingerprint and the equality test
/// both read them from here, so they cannot disagree.
fn who_fields(r: &Record) -> [Option<&str>; 12] {
    let c = &r.caller;
    [
        c.end_user_ip.as_deref().or(c.ip.as_deref()),
        c.upn.as_deref(),
        c.object_id.as_deref(),
        c.app_id.as_deref(),
        c.apim_subscription_id.as_deref(),
        c.end_user_id.as_deref(),
        c.user_agent.as_deref(),
        c.tenant_id.as_deref(),
        r.resource.id.as_deref(),
        r.resource.account.as_deref(),
        r.resource.provider.as_deref(),
        r.deployment.as_deref(),
    ]
}

fn masked(r: &Record) -> bool {
    r.caller.end_user_ip.is_none() && r.caller.ip_masked
}

impl Who {
    pub(crate) fn of(r: &Record) -> Who {
        PackedWho::of(r).unpack()
    }
}

/// A [`Who`] as the behavioural state keeps one per caller: its texts in one allocation. Most
/// records of a public endpoint come from a caller never seen before, and the ordering thread
/// interned, copied and freed a dozen strings for each of them.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct PackedWho {
    /// The present fields' texts, one after another, in [`who_fields`] order.
    text: Box<str>,
    /// Where each field ends in `text` (an absent field ends where the one before it did).
    ends: [usize; 12],
    /// Bit `i` set: field `i` is present (an empty text is not an absent one).
    present: u16,
    ip_masked: bool,
}

impl PackedWho {
    pub(crate) fn of(r: &Record) -> PackedWho {
        PackedWho::of_fields(who_fields(r), masked(r))
    }

    pub(crate) fn of_fields(fields: [Option<&str>; 12], ip_masked: bool) -> PackedWho {
        let mut text = String::with_capacity(fields.iter().flatten().map(|f| f.len()).sum());
        let mut ends = [0; 12];
        let mut present = 0;
        for (i, f) in fields.iter().enumerate() {
            if let Some(f) = f {
                text.push_str(f);
                present |= 1 << i;
            }
            ends[i] = text.len();
        }
        PackedWho { text: text.into_boxed_str(), ends, present, ip_masked }
    }

    fn field(&self, i: usize) -> Option<&str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        (self.present & (1 << i) != 0).then(|| &self.text[start..self.ends[i]])
    }

    fn fields(&self) -> [Option<&str>; 12] {
        std::array::from_fn(|i| self.field(i))
    }

    pub fn ip(&self) -> Option<&str> {
        self.field(0)
    }
    pub fn upn(&self) -> Option<&str> {
        self.field(1)
    }
    pub fn object_id(&self) -> Option<&str> {
        self.field(2)
    }
    pub fn app_id(&self) -> Option<&str> {
        self.field(3)
    }
    pub fn apim_subscription(&self) -> Option<&str> {
        self.field(4)
    }
    pub fn end_user(&self) -> Option<&str> {
        self.field(5)
    }
    pub fn user_agent(&self) -> Option<&str> {
        self.field(6)
    }
    pub fn resource_id(&self) -> Option<&str> {
        self.field(8)
    }
    pub fn resource_name(&self) -> Option<&str> {
        self.field(9)
    }
    pub fn deployment(&self) -> Option<&str> {
        self.field(11)
    }
    pub fn ip_masked(&self) -> bool {
        self.ip_masked
    }

    /// The [`Who`] an alert shows.
    pub fn unpack(&self) -> Who {
        let [ip, upn, object_id, app_id, apim_subscription, end_user, user_agent, tenant, resource_id, resource_name, resource_type, deployment] =
            self.fields().map(|f| f.map(str::to_owned));
        Who {
            ip,
            ip_masked: self.ip_masked,
            upn,
            object_id,
            app_id,
            apim_subscription,
            end_user,
            user_agent,
            tenant,
            resource_id,
            resource_name,
            resource_type,
            deployment,
        }
    }

    fn is_of(&self, r: &Record) -> bool {
        self.ip_masked == masked(r) && self.fields() == who_fields(r)
    }

    /// Bytes one held copy counts for against the behavioural bound: what it cost as a `Who`
    /// (a string per field, the struct, the `Arc`), not its packed size. The bound's
    /// per-entity constants were calibrated against peak RSS with callers counted so; counted
    /// at the packed size, more entities fit, their uncounted overhead showed, and peak RSS on
    /// a 1 GB scan went from 120 MB to 132 MB (1.26 times the 100 MB scan's, against 1.17).
    pub fn heap_bytes(&self) -> u64 {
        self.text.len() as u64 + 16 * u64::from(self.present.count_ones()) + std::mem::size_of::<Who>() as u64 + 32
    }
}

impl fmt::Debug for PackedWho {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.unpack().fmt(f)
    }
}

/// A fingerprint of the values a `Who` holds. Not keyed: two callers made to collide only
/// make the interner compare them, as equal fingerprints are checked for equality.
fn who_key(r: &Record) -> u64 {
    let mut h: u64 = if masked(r) { 0x9E37_79B9_7F4A_7C15 } else { 0 };
    for f in who_fields(r) {
        // Whole words at a time: byte by byte, this hash was a twentieth of building an observation.
        let field = f.map_or(u64::MAX, |f| record_hash128(f) as u64);
        h = (h.rotate_left(23) ^ field).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    }
    h
}

thread_local! {
    /// Each worker's recent callers: a caller's next record reuses its `PackedWho` instead
    /// of copying its texts again. With the bytes of text they hold.
    static RECENT_WHOS: RefCell<(HashMap<u64, Arc<PackedWho>>, usize)> = RefCell::new((HashMap::new(), 0));
    /// Scratch for folding prompt text before hashing it.
    static FOLD_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

const RECENT_WHOS_CAP: usize = 4096;
/// The callers' texts are written by clients (an end-user id, a user agent) and have no
/// length limit: 4,096 callers of 60 KB each held 245 MB per worker.
const RECENT_WHOS_BYTES: usize = 4 << 20;

fn shared_who(r: &Record, key: u64) -> Arc<PackedWho> {
    RECENT_WHOS.with(|cache| {
        let (cache, bytes) = &mut *cache.borrow_mut();
        if let Some(w) = cache.get(&key).filter(|w| w.is_of(r)) {
            return Arc::clone(w);
        }
        let w = Arc::new(PackedWho::of(r));
        if cache.len() >= RECENT_WHOS_CAP || *bytes + w.text.len() > RECENT_WHOS_BYTES {
            cache.clear();
            *bytes = 0;
        }
        *bytes += w.text.len();
        if let Some(old) = cache.insert(key, Arc::clone(&w)) {
            *bytes = bytes.saturating_sub(old.text.len());
        }
        w
    })
}

/// What kind of entity a key names; its value comes from the [`Who`] of one of its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    EndUser,
    Entra,
    App,
    Apim,
    Ip,
    ApiKey,
    Resource,
}

/// An entity by kind and fingerprint: cheap to build per record and to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityRef {
    pub kind: EntityKind,
    pub hash: u128,
}

impl EntityRef {
    fn of(kind: EntityKind, value: u128) -> EntityRef {
        EntityRef { kind, hash: super::combine(kind as u128 + 1, value) }
    }

    /// The stable key (part of alert ids) and readable name, from a record of the entity.
    pub fn names(&self, w: &PackedWho) -> (String, String) {
        let v = |f: Option<&str>| f.unwrap_or_default().to_owned();
        match self.kind {
            EntityKind::EndUser => (format!("enduser:{}", v(w.end_user())), format!("end user {}", v(w.end_user()))),
            EntityKind::Entra => {
                let id = v(w.object_id().or(w.upn()));
                let name = w.upn().map_or_else(|| id.clone(), str::to_owned);
                (format!("entra:{}", id.to_ascii_lowercase()), format!("Entra identity {name}"))
            }
            EntityKind::App => (format!("app:{}", v(w.app_id()).to_ascii_lowercase()), format!("application {}", v(w.app_id()))),
            EntityKind::Apim => (format!("apim:{}", v(w.apim_subscription())), format!("APIM subscription {}", v(w.apim_subscription()))),
            EntityKind::Ip => {
                let ip = v(w.ip());
                let shown = match (w.ip_masked(), ip_range(&ip)) {
                    (true, Some(range)) => range.to_string(),
                    _ => ip,
                };
                (format!("ip:{shown}"), format!("IP {shown}"))
            }
            EntityKind::ApiKey => (format!("key:{}", v(w.resource_id()).to_ascii_lowercase()), format!("API key of {}", resource_label(w))),
            EntityKind::Resource => (v(w.resource_id()).to_ascii_lowercase(), resource_label(w)),
        }
    }
}

fn resource_label(w: &PackedWho) -> String {
    w.resource_name().or(w.resource_id()).unwrap_or_default().to_owned()
}

/// Where a request went: the deployment, else the resource.
pub fn target_name(w: &PackedWho) -> String {
    w.deployment().map_or_else(|| resource_label(w), str::to_owned)
}

/// An IPv4 /24 or an IPv6 /48.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpRange {
    V4([u8; 3]),
    V6([u16; 3]),
}

impl IpRange {
    pub fn key(self) -> u128 {
        match self {
            IpRange::V4([a, b, c]) => (4 << 64) | u128::from(u32::from_be_bytes([0, a, b, c])),
            IpRange::V6([a, b, c]) => (6 << 64) | (u128::from(a) << 32) | (u128::from(b) << 16) | u128::from(c),
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpRange::V4(octets) => {
                // Digit by digit: `write!` with three arguments took some 1,400 instructions,
                // and a new range is shown (so written) for most callers seen.
                let mut text = [0u8; 16];
                let mut len = 0;
                for &octet in octets {
                    for (place, digit) in [(100, octet / 100), (10, octet / 10 % 10), (1, octet % 10)] {
                        if octet >= place || place == 1 {
                            text[len] = b'0' + digit;
                            len += 1;
                        }
                    }
                    text[len] = b'.';
                    len += 1;
                }
                text[len..len + 4].copy_from_slice(b"0/24");
                f.write_str(std::str::from_utf8(&text[..len + 4]).unwrap_or_default())
            }
            IpRange::V6([a, b, c]) => write!(f, "{a:x}:{b:x}:{c:x}::/48"),
        }
    }
}

/// The /24 of an IPv4 address (masked ones included: `81.2.69.***`), the /48 of an IPv6 one.
pub fn ip_range(ip: &str) -> Option<IpRange> {
    let ip = ip.trim();
    if let Some(prefix) = ip.strip_suffix(".***").or_else(|| ip.strip_suffix(".xxx")) {
        let mut octets = [0u8; 3];
        let mut parts = prefix.split('.');
        for o in &mut octets {
            *o = parts.next()?.parse().ok()?;
        }
        return parts.next().is_none().then_some(IpRange::V4(octets));
    }
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(IpRange::V4([o[0], o[1], o[2]]))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(IpRange::V6([s[0], s[1], s[2]]))
        }
    }
}

/// The product a user agent names, without its version: `python-requests/2.31.0` and
/// `python-requests/2.32.3` are one family, `curl/8.4.0` another.
pub fn user_agent_product(ua: &str) -> Option<&str> {
    let first = ua.split_whitespace().next()?;
    let product = first.split('/').next().unwrap_or(first).trim_matches(|c: char| !c.is_alphanumeric());
    let end = product.char_indices().nth(64).map_or(product.len(), |(i, _)| i);
    (!product.is_empty()).then_some(&product[..end])
}

pub fn auth_name(a: AuthKind) -> &'static str {
    match a {
        AuthKind::ApiKey => "api_key",
        AuthKind::EntraUser => "entra_user",
        AuthKind::EntraApp => "entra_app",
        AuthKind::Entra => "entra",
        AuthKind::ApimSubscription => "apim_subscription",
    }
}

/// What the behavioural detectors need from one record.
#[derive(Debug, Clone)]
pub struct Observation {
    pub point: Point,
    pub who: Arc<PackedWho>,
    /// A fingerprint of `who`, so interning it costs a lookup of 8 bytes.
    pub who_key: u64,
    /// The most specific caller: end user, Entra identity, application, APIM subscription, IP.
    pub caller: Option<EntityRef>,
    /// The identities access anomalies are judged for: the Entra principal, the APIM
    /// subscription, and for API-key calls the resource's key.
    pub identities: [Option<EntityRef>; 3],
    pub resource: Option<EntityRef>,
    /// Fingerprint of where the request went (the deployment, else the resource).
    pub target: Option<u128>,
    pub ip_range: Option<IpRange>,
    /// Fingerprint of the user agent's product name, case ignored.
    pub user_agent_family: Option<u128>,
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

impl Observation {
    /// Bytes it holds besides itself, its caller counted whole.
    pub fn heap_bytes(&self) -> usize {
        self.who.heap_bytes() as usize + self.key_operation.as_ref().map_or(0, String::capacity)
    }
}

/// Builds the observation for a record; `None` for records without a time, which cannot be
/// placed in a window. `attack` says whether the record raised a prompt-attack alert.
pub fn observe(r: &Record, attack: bool) -> Option<Observation> {
    let time = r.time?;
    let point = Point { time, at: RecordRef { file: r.source_file.clone(), line: r.source_line, index: r.index_in_line } };
    let key = who_key(r);
    let data_plane = r.kind != RecordKind::ActivityLog;
    let flagged = r.content_filter.prompt_blocked
        || r.content_filter.verdicts.iter().any(|v| matches!(v.category.as_str(), "jailbreak" | "indirect_attack") && v.is_hit());
    let key_operation = (!data_plane && is_key_operation(r)).then(|| operation_identity(r));
    let resource = r.resource.id.as_deref().map(|id| EntityRef::of(EntityKind::Resource, hash128_ascii_lower(id)));
    let principal = entra(r);
    let target = r.deployment.as_deref().or(r.resource.account.as_deref()).or(r.resource.id.as_deref()).map(record_hash128);
    Some(Observation {
        who: shared_who(r, key),
        who_key: key,
        caller: caller(r, principal),
        identities: if data_plane { identities(r, principal) } else { [None; 3] },
        resource,
        target,
        ip_range: r.caller.end_user_ip.as_deref().or(r.caller.ip.as_deref()).and_then(ip_range),
        user_agent_family: r.caller.user_agent.as_deref().and_then(user_agent_product).map(hash128_ascii_lower),
        auth_method: r.caller.auth_kind.map(auth_name),
        prompt: if data_plane { prompt_fingerprint(r) } else { None },
        tokens: r.tokens.total.unwrap_or_else(|| r.tokens.prompt.unwrap_or(0) + r.tokens.completion.unwrap_or(0)),
        status: r.status.code,
        attack: data_plane && (attack || flagged),
        key_operation,
        key_call: data_plane && r.caller.auth_kind == Some(AuthKind::ApiKey),
        data_plane,
        point,
    })
}

/// What pairs a key operation's Start and Success events: its correlation id, or a
/// fingerprint of one too long to keep (the state keeps 64 per resource, counted as entries,
/// and a crafted id can be megabytes).
fn operation_identity(r: &Record) -> String {
    match r.correlation_id.as_deref() {
        Some(id) if id.len() <= MAX_OPERATION_ID => id.to_owned(),
        Some(id) => crate::record::record_hash(id),
        None => r.record_hash.clone(),
    }
}

/// Azure's correlation ids are GUIDs (36 bytes).
const MAX_OPERATION_ID: usize = 128;

fn is_key_operation(r: &Record) -> bool {
    let failed = r.status.success == Some(false) || r.status.result.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("failure"));
    let op = r.operation.as_deref().unwrap_or("");
    let ends = |suffix: &str| op.len() >= suffix.len() && op.is_char_boundary(op.len() - suffix.len()) && op[op.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
    !failed && (ends("/listkeys/action") || ends("/regeneratekey/action"))
}

fn caller(r: &Record, principal: Option<EntityRef>) -> Option<EntityRef> {
    let c = &r.caller;
    if let Some(u) = &c.end_user_id {
        return Some(EntityRef::of(EntityKind::EndUser, record_hash128(u)));
    }
    if principal.is_some() {
        return principal;
    }
    if let Some(s) = &c.apim_subscription_id {
        return Some(EntityRef::of(EntityKind::Apim, record_hash128(s)));
    }
    let ip = c.ip.as_deref()?;
    let value = match (c.ip_masked, ip_range(ip)) {
        (true, Some(range)) => range.key(),
        _ => record_hash128(ip),
    };
    Some(EntityRef::of(EntityKind::Ip, value))
}

/// The Entra principal (object id, else UPN) or the application.
fn entra(r: &Record) -> Option<EntityRef> {
    let c = &r.caller;
    if let Some(id) = c.object_id.as_deref().or(c.upn.as_deref()) {
        return Some(EntityRef::of(EntityKind::Entra, hash128_ascii_lower(id)));
    }
    c.app_id.as_deref().map(|a| EntityRef::of(EntityKind::App, hash128_ascii_lower(a)))
}

fn identities(r: &Record, principal: Option<EntityRef>) -> [Option<EntityRef>; 3] {
    let apim = r.caller.apim_subscription_id.as_deref().map(|s| EntityRef::of(EntityKind::Apim, record_hash128(s)));
    let key = match (r.caller.auth_kind, r.resource.id.as_deref()) {
        (Some(AuthKind::ApiKey), Some(id)) => Some(EntityRef::of(EntityKind::ApiKey, hash128_ascii_lower(id))),
        _ => None,
    };
    [principal, apim, key]
}

/// How many characters of each prompt the fingerprint reads.
const FOLD_CHARS: usize = 64 * 1024;

/// A hash of the user's prompts with case, runs of spacing and digits folded, so requests
/// that differ only in a counter or a timestamp count as one.
fn prompt_fingerprint(r: &Record) -> Option<u128> {
    FOLD_BUFFER.with(|buf| {
        let mut folded = buf.borrow_mut();
        folded.clear();
        for s in r.surfaces.iter().filter(|s| s.surface == Surface::UserPrompt) {
            // A text of at most FOLD_CHARS bytes has at most that many characters.
            let text = if s.text.len() <= FOLD_CHARS {
                &s.text[..]
            } else {
                &s.text[..s.text.char_indices().nth(FOLD_CHARS).map_or(s.text.len(), |(i, _)| i)]
            };
            fold_prompt(text, &mut folded);
            folded.push(0x1f);
        }
        let meaningful = folded.iter().any(|&b| b != 0x1f && b != b' ');
        meaningful.then(|| bytes_hash128(&folded))
    })
}

/// Appends `text` lower-cased, with digits as `0` and runs of whitespace as one space.
fn fold_prompt(text: &str, out: &mut Vec<u8>) {
    if text.is_ascii() {
        // Most prompts are ASCII; decoding each character cost a tenth of the behavioural
        // detectors' time.
        crate::detect::normalize::fold_ascii_spacing(text.as_bytes(), crate::detect::normalize::Fold::CaseAndDigits, out);
        return;
    }
    fold_chars(text, out);
}

/// [`fold_prompt`] one character at a time, for text that is not all ASCII.
fn fold_chars(text: &str, out: &mut Vec<u8>) {
    let mut space = true;
    let mut push = |c: char| out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    for c in text.chars() {
        if c.is_whitespace() {
            if !space {
                push(' ');
            }
            space = true;
            continue;
        }
        space = false;
        match c {
            '0'..='9' => push('0'),
            c if c.is_ascii() => push(c.to_ascii_lowercase()),
            c => c.to_lowercase().for_each(&mut push),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_operation_is_paired_by_its_correlation_id_or_a_fingerprint_of_a_long_one() {
        let file: Arc<str> = Arc::from("activity.jsonl");
        let listing = |correlation: &str| {
            let line = serde_json::json!({
                "time": "2026-11-24T14:00:00Z",
                "operationName": "MICROSOFT.COGNITIVESERVICES/ACCOUNTS/LISTKEYS/ACTION",
                "category": "Administrative",
                "resultType": "Success",
                "correlationId": correlation,
                "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.COGNITIVESERVICES/ACCOUNTS/A",
            });
            let records = crate::record::parse_frame(&line.to_string(), &file, 1, 0, Default::default()).records;
            records.first().and_then(|r| observe(r, false)).and_then(|o| o.key_operation)
        };
        let guid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(listing(guid).as_deref(), Some(guid));
        let long = "x".repeat(100_000);
        let (a, b) = (listing(&long), listing(&format!("{long}y")));
        assert!(a.as_ref().is_some_and(|k| k.len() == 32), "{:?}", a.map(|k| k.len()));
        assert_eq!(a, listing(&long), "the same id, the same identity");
        assert_ne!(a, b, "different ids, different identities");
    }

    #[test]
    fn regression_a_workers_recent_callers_are_bounded_in_bytes_not_only_in_number() {
        // 4,096 callers of 60 KB each held 245 MB per worker.
        let file: Arc<str> = Arc::from("long-callers.jsonl");
        for i in 0..300 {
            let line = serde_json::json!({
                "timestamp": "2026-11-24T14:00:00Z",
                "deployment": "gpt-4o",
                "request": {"user": format!("u{i}-{}", "x".repeat(60_000)), "messages": [{"role": "user", "content": "hello"}]},
            });
            for record in crate::record::parse_frame(&line.to_string(), &file, i + 1, 0, Default::default()).records {
                assert!(observe(&record, false).is_some());
            }
        }
        RECENT_WHOS.with(|cache| {
            let (cache, bytes) = &*cache.borrow();
            let held: usize = cache.values().map(|w| w.text.len()).sum();
            assert_eq!(held, *bytes, "the count is what the cache holds");
            assert!(held <= RECENT_WHOS_BYTES, "{held} bytes of callers cached");
            assert!(!cache.is_empty());
        });
    }

    proptest::proptest! {
        #[test]
        fn ascii_prompts_fold_as_the_character_by_character_rules_do(text in "[\\x00-\\x7f]{0,80}") {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            fold_prompt(&text, &mut fast);
            fold_chars(&text, &mut slow);
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn a_packed_caller_unpacks_to_the_fields_it_was_made_of() {
        let fields = [Some("203.0.113.9"), None, Some(""), Some("app-1"), None, Some("u-7"), Some("curl/8.4.0"), None, Some("/subscriptions/x"), Some("aoai"), None, Some("gpt-4o")];
        let packed = PackedWho::of_fields(fields, true);
        assert_eq!(packed.fields(), fields, "an empty text stays present, an absent one absent");
        let who = packed.unpack();
        assert_eq!((who.ip.as_deref(), who.upn, who.object_id.as_deref(), who.deployment.as_deref()), (Some("203.0.113.9"), None, Some(""), Some("gpt-4o")));
        assert!(who.ip_masked && packed.ip_masked());
        let mut moved = fields;
        moved.swap(1, 2);
        assert_ne!(PackedWho::of_fields(moved, true), packed, "the same texts in another field are another caller");
        assert_ne!(PackedWho::of_fields(fields, false), packed);
        assert_eq!(PackedWho::of_fields(fields, true), packed);
    }

    #[test]
    fn every_octet_is_written_as_decimal() {
        for v in 0..=255u8 {
            let range = IpRange::V4([v, 255 - v, v / 7]);
            assert_eq!(range.to_string(), format!("{}.{}.{}.0/24", v, 255 - v, v / 7));
        }
    }

    #[test]
    fn ip_ranges_and_user_agent_products() {
        let text = |ip: &str| ip_range(ip).map(|r| r.to_string());
        assert_eq!(text("81.2.69.***").as_deref(), Some("81.2.69.0/24"));
        assert_eq!(text("203.0.113.99").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(text("2001:db8:1:2::5").as_deref(), Some("2001:db8:1::/48"));
        assert_eq!(ip_range("not an ip"), None);
        assert_eq!(ip_range("1.2.3.4.***"), None);
        assert_eq!(ip_range("81.2.69.***"), ip_range("81.2.69.200"), "a masked address is its /24");
        assert_eq!(user_agent_product("python-requests/2.31.0"), Some("python-requests"));
        assert_eq!(user_agent_product("AzureOpenAI/Python 1.54.0"), Some("AzureOpenAI"));
        assert_eq!(user_agent_product("  "), None);
    }
}
