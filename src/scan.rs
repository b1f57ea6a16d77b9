//! `aihunt scan`: reads the logs, runs the engine on every record in parallel, and writes the
//! alerts in the chosen format, in input order; incidents and suppressions are applied here.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::alert::{self, AlertContext};
use crate::app::{run_reading, Outcome, Sink};
use crate::cli::ScanArgs;
use crate::config::InputConfig;
use crate::detect::behavior::{self, Behavior, Observation};
use crate::detect::{Engine, TextMemo};
use crate::record::Record;
use crate::report::formats::{encode, AlertWriter, Format};
use crate::report::output::Output;
use crate::report::terminal;
use crate::rules::{Severity, Threat};
use crate::stats::RunStats;
use crate::suppress::Suppressions;

/// What a worker hands the writer for one record.
pub enum Emitted {
    Alert(Box<AlertItem>),
    Suppressed,
    /// A record outside --since / --until.
    OutsideTime,
    /// What the behavioural detectors need from the record.
    Observation(Box<Observation>),
}

pub struct AlertItem {
    pub encoded: Vec<u8>,
    pub meta: alert::AlertMeta,
}

impl crate::pipeline::Weigh for Emitted {
    fn weight(&self) -> usize {
        // The box, its text and the meta's strings; an observation's caller is counted whole
        // although records of one caller may share it.
        match self {
            Emitted::Alert(a) => std::mem::size_of::<AlertItem>() + a.encoded.capacity() + a.meta.heap_bytes(),
            Emitted::Observation(o) => std::mem::size_of::<Observation>() + o.heap_bytes(),
            Emitted::Suppressed | Emitted::OutsideTime => std::mem::size_of::<Emitted>(),
        }
    }
}

impl AlertItem {
    /// Encodes `built` and keeps its meta; its JSON tree is freed here, on the thread that
    /// built it (see [`alert::AlertMeta`]).
    fn new(format: Format, built: alert::AlertOut) -> AlertItem {
        AlertItem { encoded: encode(format, &built), meta: built.meta }
    }
}

pub fn run(args: &ScanArgs) -> Result<Outcome> {
    let mut config = InputConfig::from_args(&args.input)?;
    let now = scan_time()?;
    let since = args.since.as_deref().map(|s| crate::state::parse_time_bound(s, now)).transpose().context("--since")?;
    let until = args.until.as_deref().map(|s| crate::state::parse_time_bound(s, now)).transpose().context("--until")?;
    let window = crate::state::parse_duration(&args.dedupe_window).context("--dedupe-window")?;
    let mut state = match &args.state {
        Some(p) => Some(crate::state::StateFile::open(p)?),
        None => None,
    };
    let mut pending: Option<crate::state::PendingOutput> = None;
    if let Some(st) = state.as_mut() {
        config.pipeline.hold_incomplete_tail = true;
        let plan = st.plan(&mut config.sources);
        if !config.quiet {
            crate::diag!(
                "aihunt: state: {} file(s) resumed, {} new, {} read again from the start",
                plan.resumed,
                plan.new_files,
                plan.reread.len()
            );
            for f in &plan.reread {
                crate::diag!("aihunt: state: {} was replaced or shrank since the last run; reading it again", terminal::escape(f));
            }
        }
        if let Some(dest) = config.output_path.clone().filter(|p| p.as_os_str() != "-" && std::fs::metadata(p).map_or(true, |m| m.is_file())) {
            // A name of its own per run: the pending file of a run killed before it saved the
            // state must never be mistaken for the one the state names.
            let run_id = format!("{}-{:x}", std::process::id(), jiff::Timestamp::now().as_nanosecond());
            let mut name = dest.as_os_str().to_owned();
            name.push(format!(".aihunt-pending-{run_id}"));
            let pending_path = std::path::PathBuf::from(name);
            remove_stale_pending(&dest);
            config.output_override = Some(pending_path.clone());
            pending = Some(crate::state::PendingOutput { pending: pending_path, dest });
        }
    }
    let rules = crate::rules_cmd::load_rules(&args.rules, config.quiet)?;
    let rules_loaded = (rules.rules.len() + rules.behaviors.len()) as u64;
    let behavior = Behavior::new(rules.behaviors.clone(), args.max_behavior_memory);
    let observe = !behavior.is_empty();
    let intel = match &args.intel {
        Some(dir) => crate::intel::Intel::load(dir)?,
        None => crate::intel::Intel::defaults(),
    };
    let engine = Arc::new(Engine::new(Arc::new(rules), Arc::new(intel)).expecting_input(crate::input::expected_bytes(&config.sources)));
    let ctx = AlertContext { created: now.to_string(), no_redact: args.no_redact, service_source: args.service_source.clone() };
    let suppressions = match &args.suppress {
        Some(p) => {
            let (s, warnings) = Suppressions::load(p, now)?;
            for w in warnings {
                crate::diag!("aihunt: warning: {}", terminal::escape(&w));
            }
            s
        }
        None => Suppressions::default(),
    };
    let format = Format::parse(&args.format).unwrap_or(Format::Ndjson);
    let fail_on = Severity::parse(&args.fail_on);

    let work = {
        let engine = Arc::clone(&engine);
        let ctx = ctx.clone();
        let suppressions = suppressions.clone();
        move |record: &Record, memo: &mut TextMemo, out: &mut Vec<Emitted>| {
            if let Some(t) = record.time {
                if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                    out.push(Emitted::OutsideTime);
                    return;
                }
            }
            let mut attack = false;
            let detections = engine.detections_memo(record, memo);
            let secrets = alert::Secrets::of(&engine, record, &detections);
            for finding in engine.findings_of(detections) {
                let built = alert::build(&engine, record, &finding, &secrets, &ctx);
                let rule_ids: Vec<&str> = finding.detections.iter().map(|d| engine.rule(d.rule).id.as_str()).collect();
                if !suppressions.is_empty() && suppressions.matching(&built.meta.id, &rule_ids, record).is_some() {
                    out.push(Emitted::Suppressed);
                    continue;
                }
                attack |= matches!(finding.threat, Threat::Jailbreak | Threat::IndirectPromptInjection | Threat::AsciiSmuggling);
                out.push(Emitted::Alert(Box::new(AlertItem::new(format, built))));
            }
            if observe {
                if let Some(o) = behavior::observe(record, attack) {
                    out.push(Emitted::Observation(Box::new(o)));
                }
            }
        }
    };
    let mut sink = AlertSink {
        writer: AlertWriter::new(format),
        format,
        ctx,
        suppressions,
        behavior,
        fail_on,
        failing: 0,
        suppressed: 0,
        duplicates: 0,
        seen: std::collections::HashSet::new(),
        incidents: BTreeMap::new(),
        track_incidents: args.incidents.is_some(),
        state,
        new_ids: Vec::new(),
        already_emitted: 0,
        held_tails: 0,
        pending_chunk_rows: 0,
    };
    let done = run_reading(&config, work, &mut sink, rules_loaded)?;
    // The compiled rules are hundreds of small allocations, freed one by one just before the
    // process ends (about 1% of a one-line scan's instructions, 7 M on a large scan): let the
    // OS reclaim them at exit.
    std::mem::forget(engine);
    if let Some(mut st) = sink.state.take() {
        // Output first (it is complete in its pending file), then the state that names it,
        // then the rename: see src/state.rs for why this order loses and repeats nothing.
        st.save(&sink.new_ids, now, window, pending.clone())?;
        if let Some(p) = &pending {
            std::fs::rename(&p.pending, &p.dest).with_context(|| format!("cannot move output into {}", p.dest.display()))?;
        }
        if !config.quiet {
            if sink.already_emitted > 0 {
                crate::diag!("aihunt: state: {} alert(s) were already written by an earlier run and were not written again", sink.already_emitted);
            }
            if sink.pending_chunk_rows > 0 {
                crate::diag!("aihunt: state: {} row(s) of LLM-log messages still missing chunks will be read again next run", sink.pending_chunk_rows);
            }
            if sink.held_tails > 0 {
                crate::diag!("aihunt: state: {} file(s) end in an incomplete line, left for the next run", sink.held_tails);
            }
        }
    }
    if sink.duplicates > 0 && !config.quiet {
        crate::diag!("aihunt: {} duplicate alert(s) not written again (same id: the same record read twice, or another event of the same operation)", sink.duplicates);
    }
    if sink.suppressed > 0 && !config.quiet {
        crate::diag!("aihunt: {} alert(s) suppressed by {}", sink.suppressed, args.suppress.as_deref().map(|p| p.display().to_string()).unwrap_or_default());
    }
    if let Some(path) = &args.incidents {
        write_incidents(path, &sink.incidents, &now.to_string()).context("cannot write the incidents file")?;
    }
    Ok(if done.failed {
        Outcome::Error
    } else if sink.failing > 0 {
        Outcome::Alerts
    } else {
        Outcome::Clean
    })
}

/// Removes pending outputs that killed runs left next to `dest` (the state no longer names
/// them: the one it named was finished when the state was opened).
fn remove_stale_pending(dest: &std::path::Path) {
    let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else { return };
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let prefix = format!("{name}.aihunt-pending-");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The scan time for `createdDateTime`: `SOURCE_DATE_EPOCH` when set (reproducible output).
fn scan_time() -> Result<jiff::Timestamp> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => {
            let secs: i64 = v.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?;
            jiff::Timestamp::from_second(secs).context("SOURCE_DATE_EPOCH is out of range")
        }
        Err(_) => Ok(jiff::Timestamp::now()),
    }
}

struct AlertSink {
    writer: AlertWriter,
    format: Format,
    ctx: AlertContext,
    suppressions: Suppressions,
    behavior: Behavior,
    fail_on: Option<Severity>,
    failing: u64,
    suppressed: u64,
    duplicates: u64,
    /// Alert ids already written this run (the 128-bit fingerprint), capped.
    seen: std::collections::HashSet<u128>,
    state: Option<crate::state::StateFile>,
    /// Ids written this run, for the state.
    new_ids: Vec<String>,
    already_emitted: u64,
    held_tails: u64,
    pending_chunk_rows: u64,
    incidents: BTreeMap<String, Incident>,
    track_incidents: bool,
}

/// What `--incidents` keeps per incident: ids only, capped, so memory stays small.
struct Incident {
    title: String,
    severity: Severity,
    entity_kind: &'static str,
    entity: String,
    alert_ids: Vec<String>,
    alert_count: u64,
    first: String,
    last: String,
}

const MAX_INCIDENT_ALERT_IDS: usize = 1000;
/// Ids remembered for de-duplication (16 bytes each, about 64 MiB with overhead at the cap).
const MAX_SEEN_IDS: usize = 2_000_000;

impl Sink<Emitted> for AlertSink {
    fn begin(&mut self, out: &mut Output) -> std::io::Result<()> {
        self.writer.begin(out)
    }

    fn item(&mut self, item: &Emitted, out: &mut Output, stats: &mut RunStats) -> std::io::Result<()> {
        let a = match item {
            Emitted::Suppressed => {
                self.suppressed += 1;
                return Ok(());
            }
            Emitted::OutsideTime => {
                stats.records_outside_time_range += 1;
                return Ok(());
            }
            Emitted::Observation(o) => {
                self.behavior.feed(o);
                return Ok(());
            }
            Emitted::Alert(a) => a,
        };
        self.write_alert(a, out, stats)
    }

    fn pending_chunks(&mut self, rows: &[crate::record::RowRef]) {
        if let Some(st) = self.state.as_mut() {
            st.rewind(rows);
            self.pending_chunk_rows += rows.len() as u64;
        }
    }

    fn input_done(&mut self, source: &crate::input::InputSource, end: crate::pipeline::InputEnd, failed: bool) {
        if let Some(st) = self.state.as_mut() {
            st.input_done(source, end, failed);
            if end.held_tail {
                self.held_tails += 1;
            }
        }
    }

    fn finish(&mut self, out: &mut Output, stats: &mut RunStats) -> std::io::Result<()> {
        // Behavioural alerts need the whole scan; they follow the per-record ones, in the
        // stable order `Behavior::finish` gives.
        for f in self.behavior.finish() {
            let rule = &self.behavior.rules()[f.rule];
            let built = alert::build_behavior(rule, &f, &self.ctx);
            if !self.suppressions.is_empty() {
                let w = &f.who;
                let entities: Vec<&str> = [&w.ip, &w.upn, &w.object_id, &w.app_id, &w.end_user, &w.apim_subscription, &w.deployment]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .chain(f.entity.split_once(':').map(|(_, v)| v))
                    .collect();
                if self.suppressions.matching_entities(&built.meta.id, &[rule.id.as_str()], &entities).is_some() {
                    self.suppressed += 1;
                    continue;
                }
            }
            let item = AlertItem::new(self.format, built);
            self.write_alert(&item, out, stats)?;
        }
        stats.behavior_entities = self.behavior.entities();
        stats.behavior_evicted = self.behavior.evicted;
        stats.behavior_values_dropped = self.behavior.values_dropped;
        // Freeing millions of small allocations one by one takes a visible share of a scan's
        // time, and the process ends right after: let the OS reclaim them at exit.
        std::mem::forget(std::mem::replace(&mut self.behavior, Behavior::new(Vec::new(), 1)));
        self.writer.finish(out)?;
        out.flush()
    }
}

impl AlertSink {
    /// Writes one alert unless this run or the state already wrote its id, and counts it.
    fn write_alert(&mut self, a: &AlertItem, out: &mut Output, stats: &mut RunStats) -> std::io::Result<()> {
        if let Some(st) = &self.state {
            if st.already_emitted(&a.meta.id) {
                self.already_emitted += 1;
                return Ok(());
            }
        }
        if let Some(key) = a.meta.id.strip_prefix("aih-").and_then(|h| u128::from_str_radix(h, 16).ok()) {
            if self.seen.contains(&key) {
                self.duplicates += 1;
                return Ok(());
            }
            if self.seen.len() < MAX_SEEN_IDS {
                self.seen.insert(key);
            }
        }
        self.writer.write(out, &a.encoded)?;
        let m = &a.meta;
        if self.state.is_some() {
            self.new_ids.push(m.id.clone());
        }
        stats.alerts += 1;
        *stats.alerts_by_threat.entry(m.threat.as_str().to_owned()).or_default() += 1;
        *stats.alerts_by_severity.entry(m.severity.as_str().to_owned()).or_default() += 1;
        if self.fail_on.is_some_and(|f| m.severity >= f) {
            self.failing += 1;
        }
        if self.track_incidents {
            let inc = self.incidents.entry(m.incident.id.clone()).or_insert_with(|| Incident {
                title: format!("{} and related activity", m.title),
                severity: m.severity,
                entity_kind: m.incident.entity_kind,
                entity: m.incident.entity.clone(),
                alert_ids: Vec::new(),
                alert_count: 0,
                first: m.first_activity.clone(),
                last: m.first_activity.clone(),
            });
            inc.severity = inc.severity.max(m.severity);
            inc.alert_count += 1;
            if inc.alert_ids.len() < MAX_INCIDENT_ALERT_IDS {
                inc.alert_ids.push(m.id.clone());
            }
            if m.first_activity < inc.first {
                inc.first = m.first_activity.clone();
            }
            if m.first_activity > inc.last {
                inc.last = m.first_activity.clone();
            }
        }
        Ok(())
    }
}

/// Writes the incidents file as it goes: one incident at a time, never the whole document in
/// memory (as a tree of JSON values and then as text, 320,000 incidents took 400 MB more than
/// the incidents themselves).
fn write_incidents(path: &std::path::Path, incidents: &BTreeMap<String, Incident>, created: &str) -> Result<()> {
    let mut out = Output::create(Some(path))?;
    serde_json::to_writer_pretty(&mut out, &IncidentsFile { value: IncidentList { incidents, created } })?;
    out.write_all(b"\n")?;
    out.commit()
}

/// The incidents file: `{"value": [...]}`, as Graph lists incidents.
#[derive(serde::Serialize)]
struct IncidentsFile<'a> {
    value: IncidentList<'a>,
}

struct IncidentList<'a> {
    incidents: &'a BTreeMap<String, Incident>,
    created: &'a str,
}

impl serde::Serialize for IncidentList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.incidents.iter().map(|(id, i)| IncidentOut {
            odata_type: "#microsoft.graph.security.incident",
            additional_data: IncidentData {
                alert_count: i.alert_count,
                alert_ids_truncated: i.alert_count as usize > i.alert_ids.len(),
                entity: IncidentEntity { kind: i.entity_kind, value: &i.entity },
            },
            alert_ids: &i.alert_ids,
            classification: "unknown",
            created_date_time: self.created,
            determination: "unknown",
            display_name: &i.title,
            first_activity_date_time: &i.first,
            id,
            last_activity_date_time: &i.last,
            last_update_date_time: self.created,
            severity: i.severity.as_str(),
            status: "active",
        }))
    }
}

/// One incident in the Graph shape. Fields in the order of their names, as the file has
/// always listed them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct IncidentOut<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    additional_data: IncidentData<'a>,
    alert_ids: &'a [String],
    classification: &'static str,
    created_date_time: &'a str,
    determination: &'static str,
    display_name: &'a str,
    first_activity_date_time: &'a str,
    id: &'a str,
    last_activity_date_time: &'a str,
    last_update_date_time: &'a str,
    severity: &'static str,
    status: &'static str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct IncidentData<'a> {
    alert_count: u64,
    alert_ids_truncated: bool,
    entity: IncidentEntity<'a>,
}

#[derive(serde::Serialize)]
struct IncidentEntity<'a> {
    kind: &'static str,
    value: &'a str,
}
