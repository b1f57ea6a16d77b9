//! Behavioural detectors over the whole scan: duplicate-request floods, volume against a
//! caller's or resource's own baseline, identities seen with new IP ranges, user agents or
//! auth methods, bursts of prompt attacks or failed requests, and keys listed then used from
//! a new range (DESIGN §3, after the stream).
//!
//! Workers turn each record into a small [`Observation`]; the writer thread feeds them to
//! [`Behavior`] in input order; `finish` evaluates every rule once all input is read. State is
//! kept as commutative summaries (counts per time bucket, the earliest records of each, the
//! first time each value was seen), so results do not depend on the thread count or on the
//! order of the input files. Memory is bounded by `--max-behavior-memory`: past it, the entities
//! touched least recently are evicted and counted, and from then on results may depend on
//! input order.

mod access;
mod observe;
pub mod series;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::rules::behavior::{Attribute, BehaviorKind, BehaviorRule, Measure, VolumeEntity};
pub use observe::{ip_range, observe, EntityRef, IpRange, Observation, PackedWho, Who};
pub use series::{Point, RecordRef};
use series::{Series, VolumeTest};

/// Contributing records listed in an alert.
pub const CONTRIBUTING_CAP: usize = 20;
/// Attribute values (IP ranges, user agents, ...) remembered per identity or resource.
const MAX_VALUES: usize = 256;
/// Key operations remembered per resource.
const MAX_KEY_OPERATIONS: usize = 64;

/// Combines fingerprints into one (for keys made of several parts).
pub(crate) fn combine(a: u128, b: u128) -> u128 {
    let mixed = (a ^ b.rotate_left(47)).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    mixed ^ (mixed >> 64)
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
    /// Evidence: the caller of the entity's earliest record (for new values, of the first
    /// record with one), and for key misuse also whoever listed the keys.
    pub who: Who,
    pub other: Option<Who>,
    /// The numbers behind the finding (`additionalData.behavior`).
    pub numbers: Value,
    /// One or two sentences saying what was seen and what it was compared with.
    pub explanation: String,
}

struct Slot<T> {
    /// Whose state this is. Its names are derived from `first` when alerts are written, not
    /// kept per slot: most slots never alert.
    entity: EntityRef,
    /// For duplicates: the slot is per target and prompt, and this is the prompt.
    prompt: Option<u128>,
    /// The entity's earliest record and who made it: evidence that does not depend on order.
    first: (Point, Arc<PackedWho>),
    last_seq: u64,
    /// Approximate bytes this entity holds, for the memory bound.
    bytes: u64,
    state: T,
}

/// Approximate heap cost of one retained bucket, record or value, with its container's slack
/// and the allocator's overhead (calibrated against peak RSS on the benchmark corpus).
const ENTRY_BYTES: u64 = 240;
/// Approximate cost of one entity's slot in its map (hash-table slack included), and of the
/// caller details it keeps, besides its key and label. Calibrated against peak RSS: at 600 the
/// state of a 1 GB scan held about 26 MB more than the same scan's first 100 MB did (peak 127
/// against 102 MB at the default bound); at 800, 12 MB (114 against 102 MB).
const SLOT_BYTES: u64 = 800;
/// Approximate cost of a prompt seen once: its key and entry in a hash table (128 bytes) at
/// the table's usual occupancy of about two thirds (it was 120, which a 1 GB scan's peak RSS
/// showed to be short: 127 MB with 120, 120 MB with 200, at the default bound).
const ONCE_BYTES: u64 = 200;
/// Default for `--max-behavior-memory`, in megabytes.
pub const DEFAULT_MAX_MEMORY_MB: u64 = 64;

/// Callers' details shared by every entity that saw them: most records of a caller carry the
/// same, and one copy per distinct prompt would dwarf everything else.
#[derive(Default)]
pub(crate) struct Interner {
    by_key: HashMap<u64, Arc<PackedWho>, Fingerprints>,
    bytes: u64,
}

impl Interner {
    fn get(&mut self, who: &Arc<PackedWho>, key: u64) -> Arc<PackedWho> {
        match self.by_key.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) if **e.get() == **who => Arc::clone(e.get()),
            // Two callers with one fingerprint: the second is kept unshared, which costs
            // memory, never correctness.
            std::collections::hash_map::Entry::Occupied(_) => Arc::clone(who),
            std::collections::hash_map::Entry::Vacant(e) => {
                self.bytes += who.heap_bytes();
                // A copy of its own: the observation's handle is shared with records still in
                // flight on other threads, and `purge` counts handles to tell which callers an
                // entity still holds. Counting theirs made eviction depend on thread timing.
                Arc::clone(e.insert(Arc::new(PackedWho::clone(who))))
            }
        }
    }

    /// Forgets callers no entity refers to any more.
    fn purge(&mut self) {
        let mut freed = 0;
        self.by_key.retain(|_, w| {
            let keep = Arc::strong_count(w) > 1;
            if !keep {
                freed += w.heap_bytes();
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
    }
}

type Map<T> = HashMap<u128, Slot<T>, Fingerprints>;

/// Hashes the behavioural tables' keys, which are fingerprints already (well mixed, 8 or 16
/// bytes): one multiply with a key drawn per table, where SipHash took a sixth of the ordering
/// thread's work. The key is secret, so the writer of a prompt, who can work out its
/// fingerprint, still cannot aim many of them at one bucket.
#[derive(Clone)]
struct Fingerprints {
    key: [u64; 2],
}

impl Default for Fingerprints {
    fn default() -> Fingerprints {
        let random = std::collections::hash_map::RandomState::new();
        let draw = |n: u8| std::hash::BuildHasher::hash_one(&random, n);
        Fingerprints { key: [draw(1), draw(2)] }
    }
}

impl std::hash::BuildHasher for Fingerprints {
    type Hasher = FingerprintHasher;
    fn build_hasher(&self) -> FingerprintHasher {
        FingerprintHasher { key: self.key, hash: 0 }
    }
}

struct FingerprintHasher {
    key: [u64; 2],
    hash: u64,
}

impl FingerprintHasher {
    fn mix(&mut self, low: u64, high: u64) {
        let product = u128::from(low ^ self.key[0]) * u128::from(high ^ self.key[1]);
        self.hash = self.hash.rotate_left(26) ^ (product as u64) ^ ((product >> 64) as u64);
    }
}

impl std::hash::Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only integer keys reach the tables; anything else still hashes, a word at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word), chunk.len() as u64);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n, 0x9E37_79B9_7F4A_7C15);
    }

    fn write_u128(&mut self, n: u128) {
        self.mix(n as u64, (n >> 64) as u64);
    }
}

/// Duplicate-request state. Most prompts are sent once, and a duplicate needs at least two:
/// a prompt seen once keeps only its first record, and becomes a full series when it comes
/// again. The series it becomes is the one it would have been from the start.
#[derive(Default)]
struct Duplicates {
    repeated: Map<Series>,
    once: HashMap<u128, Once, Fingerprints>,
}

struct Once {
    entity: EntityRef,
    prompt: u128,
    point: Point,
    who: Arc<PackedWho>,
    seq: u64,
}

enum State {
    Duplicates(Duplicates),
    Series(Map<Series>),
    Habits(Map<access::Habits>),
    Keys(Map<access::KeyUse>),
}

/// The stateful detectors of one scan.
pub struct Behavior {
    rules: Vec<BehaviorRule>,
    states: Vec<State>,
    /// For each state, the rule whose parameters feed it.
    fed_by: Vec<usize>,
    /// For each rule, the state it reads.
    state_of: Vec<usize>,
    whos: Interner,
    max_bytes: u64,
    bytes: u64,
    seq: u64,
    /// The latest record time fed so far, in seconds: prompts seen once before it by more than
    /// their window are what eviction drops first.
    newest: i64,
    /// Entities whose state was dropped to stay within the memory bound.
    pub evicted: u64,
    /// Attribute values not remembered because an entity had too many.
    pub values_dropped: u64,
}

impl Behavior {
    /// `max_memory_mb` bounds the state (approximately; it is counted, not measured).
    pub fn new(rules: Vec<BehaviorRule>, max_memory_mb: u64) -> Behavior {
        // Volume rules over the same entity and window (requests and tokens of a caller) read
        // one series: each bucket counts requests and sums tokens anyway.
        let mut states = Vec::new();
        let mut fed_by = Vec::new();
        let mut state_of = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let shared = match &r.kind {
                BehaviorKind::VolumeAnomaly(v) => rules[..i].iter().position(|o| {
                    matches!(&o.kind, BehaviorKind::VolumeAnomaly(w) if w.entity == v.entity) && o.window == r.window
                }),
                _ => None,
            };
            match shared {
                Some(j) => state_of.push(state_of[j]),
                None => {
                    state_of.push(states.len());
                    fed_by.push(i);
                    states.push(match r.kind {
                        BehaviorKind::NewAttribute { .. } => State::Habits(HashMap::default()),
                        BehaviorKind::KeyThenNewIp { .. } => State::Keys(HashMap::default()),
                        BehaviorKind::DuplicateRequests { .. } => State::Duplicates(Duplicates::default()),
                        _ => State::Series(HashMap::default()),
                    });
                }
            }
        }
        Behavior {
            rules,
            states,
            fed_by,
            state_of,
            whos: Interner::default(),
            max_bytes: max_memory_mb.max(1).saturating_mul(1 << 20),
            bytes: 0,
            seq: 0,
            newest: i64::MIN,
            evicted: 0,
            values_dropped: 0,
        }
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
                State::Duplicates(d) => d.repeated.len() + d.once.len(),
                State::Series(m) => m.len(),
                State::Habits(m) => m.len(),
                State::Keys(m) => m.len(),
            } as u64)
            .sum()
    }

    pub fn feed(&mut self, o: &Observation) {
        self.seq += 1;
        let seq = self.seq;
        self.newest = self.newest.max(o.point.secs());
        // Interned only when an entity keeps it: most records add to entities that already
        // hold their caller, and the interner would otherwise keep every caller ever seen.
        let shared = LazyWho { raw: &o.who, key: o.who_key, interner: std::cell::RefCell::new(&mut self.whos), got: std::cell::OnceCell::new() };
        let who = &o.who;
        let shared_who = || shared.get();
        let at = Place { point: &o.point, who: &shared_who, seq };
        let ua_text = || who.user_agent().and_then(observe::user_agent_product).unwrap_or("").to_ascii_lowercase();
        for (&r, state) in self.fed_by.iter().zip(self.states.iter_mut()) {
            let rule = &self.rules[r];
            let added = match (&rule.kind, state) {
                (BehaviorKind::DuplicateRequests { threshold }, State::Duplicates(dups)) => {
                    let (Some(c), Some(fp)) = (o.caller, o.prompt) else { continue };
                    let to = combine(c.hash, o.target.unwrap_or(0));
                    let key = combine(to, fp);
                    let width = (rule.window / series::STEPS).max(1);
                    let keep = (*threshold as usize).max(CONTRIBUTING_CAP);
                    let add = |series: &mut Series, p: &Point| series.add(p, width, 0, keep);
                    if dups.repeated.contains_key(&key) {
                        upsert(&mut dups.repeated, key, c, Some(fp), &at, |s| add(s, &o.point))
                    } else {
                        match dups.once.entry(key) {
                            std::collections::hash_map::Entry::Occupied(seen) => {
                                let first = seen.remove();
                                let first_who = || Arc::clone(&first.who);
                                let earlier = Place { point: &first.point, who: &first_who, seq: first.seq };
                                let promoted = upsert(&mut dups.repeated, key, first.entity, Some(first.prompt), &earlier, |s| add(s, &first.point));
                                self.bytes = self.bytes.saturating_sub(ONCE_BYTES);
                                promoted + upsert(&mut dups.repeated, key, c, Some(fp), &at, |s| add(s, &o.point))
                            }
                            std::collections::hash_map::Entry::Vacant(new) => {
                                new.insert(Once { entity: c, prompt: fp, point: o.point.clone(), who: shared.get(), seq });
                                ONCE_BYTES
                            }
                        }
                    }
                }
                (BehaviorKind::AttemptBurst { threshold }, State::Series(map)) if o.attack => {
                    count_caller(map, o, &at, rule.window, *threshold)
                }
                (BehaviorKind::StatusBurst { threshold, statuses }, State::Series(map))
                    if o.status.is_some_and(|s| statuses.contains(&s)) =>
                {
                    count_caller(map, o, &at, rule.window, *threshold)
                }
                (BehaviorKind::VolumeAnomaly(v), State::Series(map)) => {
                    let entity = match v.entity {
                        VolumeEntity::Caller => o.caller,
                        VolumeEntity::Resource => o.resource,
                    };
                    let (true, Some(e)) = (o.data_plane, entity) else { continue };
                    upsert(map, e.hash, e, None, &at, |s: &mut Series| s.add(&o.point, rule.window, o.tokens, CONTRIBUTING_CAP))
                }
                (BehaviorKind::NewAttribute { attribute, min_history, .. }, State::Habits(map)) => {
                    let value = match attribute {
                        Attribute::IpRange => o.ip_range.map(IpRange::key),
                        Attribute::UserAgent => o.user_agent_family,
                        Attribute::AuthMethod => o.auth_method.map(crate::record::record_hash128),
                    };
                    let display = || match attribute {
                        Attribute::IpRange => o.ip_range.map(|r| r.to_string()).unwrap_or_default(),
                        Attribute::UserAgent => ua_text(),
                        Attribute::AuthMethod => o.auth_method.unwrap_or_default().to_owned(),
                    };
                    let mut added = 0;
                    for id in o.identities.iter().flatten() {
                        let mut dropped = false;
                        added += upsert(map, id.hash, *id, None, &at, |h: &mut access::Habits| {
                            let (n, d) = h.add(&o.point, value, &display, &shared, *min_history, MAX_VALUES);
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
                    let n = upsert(map, res.hash, *res, None, &at, |k: &mut access::KeyUse| {
                        let (n, d) = k.add(o, &shared, MAX_KEY_OPERATIONS, MAX_VALUES);
                        dropped = d;
                        n
                    });
                    self.values_dropped += u64::from(dropped);
                    n
                }
                _ => continue,
            };
            self.bytes += added;
        }
        drop(shared);
        if self.bytes + self.whos.bytes > self.max_bytes {
            self.evict();
        }
    }

    /// Drops state until a tenth of the budget is free: first prompts seen once and longer ago
    /// than their window before the latest record (with input in time order, no later record
    /// can repeat them within the window, so dropping them changes nothing), then the entities
    /// touched least recently. Without the first tier, long floods of distinct prompts push out
    /// the few callers whose rare attacks make a burst.
    fn evict(&mut self) {
        // Shared caller details are freed only by the purge after a round; aim the entities
        // below the target by what they take now (at most half of it).
        let target = self.max_bytes - self.max_bytes / 10;
        let mut entities_target = target - self.whos.bytes.min(target / 2);
        loop {
            let before = (self.bytes, self.whos.bytes);
            self.evict_round(entities_target);
            // Callers' texts have no length limit (an end-user id, a user agent): when theirs
            // are most of the state, the entities alone were already under their share, none
            // was dropped, and 5,000 callers of 60 KB each stayed, 300 MB under a 64 MB bound.
            // Then drop half the entities still there, least recent first, until enough
            // callers are let go.
            if self.bytes + self.whos.bytes <= target || self.bytes == 0 {
                break;
            }
            // A round aimed below what the entities take that freed nothing has nothing left
            // to free (the count and the tables disagree; stop rather than spin).
            if entities_target < before.0 && (self.bytes, self.whos.bytes) == before {
                break;
            }
            entities_target = self.bytes / 2;
        }
    }

    /// Drops the prompts seen once that have expired, then the entities touched least
    /// recently, until the entities take at most `entities_target`; then frees the callers'
    /// details no entity refers to any more.
    fn evict_round(&mut self, entities_target: u64) {
        let mut all: Vec<(bool, u64, usize, u128, u64)> = Vec::new();
        for (i, s) in self.states.iter().enumerate() {
            match s {
                State::Duplicates(d) => {
                    let expired_before = self.newest.saturating_sub(self.rules[self.fed_by[i]].window);
                    all.extend(d.repeated.iter().map(|(k, v)| (true, v.last_seq, i, *k, v.bytes)));
                    all.extend(d.once.iter().map(|(k, v)| (v.point.secs() >= expired_before, v.seq, i, *k, ONCE_BYTES)));
                }
                State::Series(m) => all.extend(m.iter().map(|(k, v)| (true, v.last_seq, i, *k, v.bytes))),
                State::Habits(m) => all.extend(m.iter().map(|(k, v)| (true, v.last_seq, i, *k, v.bytes))),
                State::Keys(m) => all.extend(m.iter().map(|(k, v)| (true, v.last_seq, i, *k, v.bytes))),
            }
        }
        // A round drops a tenth of the budget, a small share of the entries: put in order just
        // the fewest that must free enough (each frees at least the smallest entry's bytes),
        // not all of them. The state left is the same as after a full sort.
        let smallest = all.iter().map(|e| e.4).min().unwrap_or(1).max(1);
        let enough = usize::try_from(self.bytes.saturating_sub(entities_target) / smallest + 1).unwrap_or(usize::MAX);
        if enough < all.len() {
            all.select_nth_unstable(enough);
        }
        let split = enough.min(all.len());
        let (front, rest) = all.split_at_mut(split);
        for part in [front, rest] {
            if self.bytes <= entities_target {
                break;
            }
            part.sort_unstable();
            for &(_, _, i, key, bytes) in part.iter() {
                if self.bytes <= entities_target {
                    break;
                }
                self.drop_entry(i, key, bytes);
            }
        }
        self.whos.purge();
    }

    fn drop_entry(&mut self, i: usize, key: u128, bytes: u64) {
        match &mut self.states[i] {
            State::Duplicates(d) => d.repeated.remove(&key).map(|_| ()).or_else(|| d.once.remove(&key).map(|_| ())),
            State::Series(m) => m.remove(&key).map(|_| ()),
            State::Habits(m) => m.remove(&key).map(|_| ()),
            State::Keys(m) => m.remove(&key).map(|_| ()),
        };
        self.bytes = self.bytes.saturating_sub(bytes);
        self.evicted += 1;
    }

    /// Evaluates every rule over everything fed, in a stable order: by time of the record that
    /// crossed the threshold, then rule, then entity.
    pub fn finish(&self) -> Vec<BehaviorFinding> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let state = &self.states[self.state_of[i]];
            match (&rule.kind, state) {
                // A prompt seen once cannot reach a threshold of two or more.
                (BehaviorKind::DuplicateRequests { threshold }, State::Duplicates(Duplicates { repeated: m, .. }))
                | (BehaviorKind::AttemptBurst { threshold }, State::Series(m))
                | (BehaviorKind::StatusBurst { threshold, .. }, State::Series(m)) => {
                    for slot in sorted(m) {
                        out.extend(burst_findings(i, rule, *threshold, &slot));
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
                    for slot in sorted(m) {
                        out.extend(volume_findings(i, rule, &test, &slot));
                    }
                }
                (BehaviorKind::NewAttribute { attribute, learning, min_history, max_known }, State::Habits(m)) => {
                    for slot in sorted(m) {
                        out.extend(access::new_values(i, *attribute, *learning, *min_history, *max_known, &slot.names, &slot.state));
                    }
                }
                (BehaviorKind::KeyThenNewIp { min_history }, State::Keys(m)) => {
                    for slot in sorted(m) {
                        out.extend(access::key_then_new_ranges(i, rule.window, *min_history, &slot.names, &slot.state));
                    }
                }
                _ => {}
            }
        }
        out.sort_by(|a, b| a.trigger.cmp(&b.trigger).then(a.rule.cmp(&b.rule)).then_with(|| a.entity.cmp(&b.entity)).then_with(|| a.anchor.cmp(&b.anchor)));
        out
    }
}

/// A slot with its names, for evaluation.
struct Named<'s, T> {
    names: EntityNames<'s>,
    slot: &'s Slot<T>,
}

impl<T> std::ops::Deref for Named<'_, T> {
    type Target = Slot<T>;
    fn deref(&self) -> &Slot<T> {
        self.slot
    }
}

/// An entity's stable key (part of alert ids; with the target and prompt for duplicates) and
/// readable name, made when a finding first needs them. Most entities never alert: naming
/// every one of them to sort them took a quarter of the ordering thread's work on 100 MB, all
/// of it after the last record.
pub(crate) struct EntityNames<'s> {
    entity: EntityRef,
    prompt: Option<u128>,
    who: &'s PackedWho,
    made: std::cell::OnceCell<(String, String)>,
}

impl<'s> EntityNames<'s> {
    fn of<T>(slot: &'s Slot<T>) -> EntityNames<'s> {
        EntityNames { entity: slot.entity, prompt: slot.prompt, who: &slot.first.1, made: std::cell::OnceCell::new() }
    }

    fn made(&self) -> &(String, String) {
        self.made.get_or_init(|| {
            let (key, label) = self.entity.names(self.who);
            match self.prompt {
                Some(prompt) => {
                    let target = observe::target_name(self.who);
                    (format!("{key}\u{1f}{target}\u{1f}{prompt:032x}"), format!("{label} to {target}"))
                }
                None => (key, label),
            }
        })
    }

    pub(crate) fn key(&self) -> &str {
        &self.made().0
    }

    pub(crate) fn label(&self) -> &str {
        &self.made().1
    }
}

/// Slots in the order of their fingerprints, so evaluation does not depend on hash order.
fn sorted<T>(m: &Map<T>) -> Vec<Named<'_, T>> {
    let mut v: Vec<(&u128, &Slot<T>)> = m.iter().collect();
    v.sort_unstable_by_key(|(id, _)| **id);
    v.into_iter().map(|(_, slot)| Named { names: EntityNames::of(slot), slot }).collect()
}

/// The record being fed: when, by whom, and its sequence number.
struct Place<'a> {
    point: &'a Point,
    /// The caller, shared through the interner (looked up only if an entity keeps it).
    who: &'a dyn Fn() -> Arc<PackedWho>,
    seq: u64,
}

/// The record's caller, interned the first time an entity keeps it.
pub(crate) struct LazyWho<'a, 'i> {
    raw: &'a Arc<PackedWho>,
    key: u64,
    interner: std::cell::RefCell<&'i mut Interner>,
    got: std::cell::OnceCell<Arc<PackedWho>>,
}

impl LazyWho<'_, '_> {
    pub(crate) fn get(&self) -> Arc<PackedWho> {
        Arc::clone(self.got.get_or_init(|| self.interner.borrow_mut().get(self.raw, self.key)))
    }
}

/// Adds to an entity's state, creating it on first sight; returns the bytes added. `add`
/// returns the entries (buckets, records, values) it added.
fn upsert<T: Default>(map: &mut Map<T>, key: u128, entity: EntityRef, prompt: Option<u128>, at: &Place, add: impl FnOnce(&mut T) -> u64) -> u64 {
    let mut created = 0;
    let slot = map.entry(key).or_insert_with(|| {
        created = SLOT_BYTES;
        Slot { entity, prompt, first: (at.point.clone(), (at.who)()), last_seq: at.seq, bytes: 0, state: T::default() }
    });
    slot.last_seq = slot.last_seq.max(at.seq);
    if at.point < &slot.first.0 {
        slot.first = (at.point.clone(), (at.who)());
    }
    let added = add(&mut slot.state) * ENTRY_BYTES + created;
    slot.bytes += added;
    added
}

fn count_caller(map: &mut Map<Series>, o: &Observation, at: &Place, window: i64, threshold: u64) -> u64 {
    let Some(c) = o.caller else { return 0 };
    let width = (window / series::STEPS).max(1);
    let keep = (threshold as usize).max(CONTRIBUTING_CAP);
    upsert(map, c.hash, c, None, at, |s: &mut Series| s.add(&o.point, width, 0, keep))
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

fn burst_findings(rule_index: usize, rule: &BehaviorRule, threshold: u64, slot: &Named<Series>) -> Vec<BehaviorFinding> {
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
                capitalized(slot.names.label()),
                b.total,
                span_text(rule.window),
                b.trigger.time,
                b.first_window_count,
                ts((b.from + series::STEPS) * width),
            );
            BehaviorFinding {
                rule: rule_index,
                entity: slot.names.key().to_owned(),
                anchor: start.to_string(),
                entity_label: slot.names.label().to_owned(),
                first,
                last,
                trigger: b.trigger.clone(),
                contributing,
                contributing_total: b.total,
                who: slot.first.1.unpack(),
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

fn volume_findings(rule_index: usize, rule: &BehaviorRule, test: &VolumeTest, slot: &Named<Series>) -> Vec<BehaviorFinding> {
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
                capitalized(slot.names.label()),
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
                entity: slot.names.key().to_owned(),
                anchor: start.to_string(),
                entity_label: slot.names.label().to_owned(),
                first: trigger.time,
                last: slot.state.latest_in(a.from, a.to).unwrap_or(end),
                trigger,
                contributing,
                contributing_total: requests,
                who: slot.first.1.unpack(),
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
    fn fingerprints_spread_keys_that_differ_in_either_half_and_differ_per_table() {
        use std::hash::BuildHasher;
        let table = Fingerprints::default();
        let hashes: std::collections::HashSet<u64> = (0..64u32)
            .flat_map(|i| [u128::from(i), u128::from(i) << 64, u128::MAX - u128::from(i)])
            .map(|k| table.hash_one(k))
            .collect();
        assert_eq!(hashes.len(), 3 * 64 - 1, "only 0 and 0 << 64 are the same key");
        let other = Fingerprints::default();
        assert_ne!(table.hash_one(42u128), other.hash_one(42u128), "each table draws its own key");
    }

    #[test]
    fn regression_callers_with_long_texts_are_let_go_to_stay_within_the_bound() {
        // An end-user id has no length limit. With the callers' texts most of the state, the
        // entities were already under their share of the budget, so none was dropped, no
        // caller was let go, and 5,000 callers of 60 KB each stayed: 300 MB under 64 MB.
        let (rules, errors) = crate::rules::load::compile(&crate::rules::load::embedded_sources());
        assert!(errors.is_empty());
        let mut behavior = Behavior::new(rules.behaviors.clone(), 1);
        let file: Arc<str> = Arc::from("long-callers.jsonl");
        for i in 0..200 {
            let line = serde_json::json!({
                "timestamp": format!("2026-11-24T14:{:02}:{:02}Z", i / 60, i % 60),
                "deployment": "gpt-4o",
                "request": {"user": format!("u{i}-{}", "x".repeat(60_000)), "messages": [{"role": "user", "content": "What is the weather in Lisbon?"}]},
            });
            for record in crate::record::parse_frame(&line.to_string(), &file, i + 1, 0, Default::default()).records {
                if let Some(o) = observe(&record, false) {
                    behavior.feed(&o);
                }
            }
        }
        assert!(behavior.evicted > 0, "12 MB of callers under a 1 MB bound");
        let held = behavior.bytes + behavior.whos.bytes;
        assert!(held <= behavior.max_bytes, "{held} bytes held under a bound of {}", behavior.max_bytes);
    }

    #[test]
    fn a_caller_no_entity_holds_is_purged_while_its_record_is_still_in_flight() {
        let in_flight = Arc::new(PackedWho::of_fields([Some("203.0.113.9"), None, None, None, None, None, None, None, None, None, None, None], false));
        let mut whos = Interner::default();
        let held = whos.get(&in_flight, 7);
        whos.purge();
        assert!(whos.bytes > 0, "an entity still holds the caller");
        drop(held);
        whos.purge();
        // The record's own handle may live on in another thread's batch for as long as timing
        // decides; counting it made eviction differ from run to run.
        assert_eq!((whos.bytes, whos.by_key.len()), (0, 0));
    }
}
