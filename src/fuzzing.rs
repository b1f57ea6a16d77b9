//! Entry points shared by the fuzz targets (`fuzz/`) and their regression tests: each takes
//! arbitrary bytes and must return without panicking, hanging or growing without bound. They
//! call the stages directly, without the pipeline's per-record `catch_unwind`, so a panic that
//! the scan would turn into a rejected record is a finding here.

use std::sync::{Arc, OnceLock};

use crate::alert::{self, AlertContext};
use crate::detect::behavior::{self, Behavior};
use crate::detect::{decode, normalize, Engine, TextMemo};
use crate::input::frame::{frame_all, FrameBody};
use crate::intel::Intel;
use crate::record::llm_join::{ChunkJoiner, JoinLimits, Joined};
use crate::record::{parse_frame, ParseOptions, Record};
use crate::rules::load::{self, RuleSource};
use crate::rules::Rule;

/// Small limits so one input cannot make a fuzz run slow for reasons the real limits cover.
const MAX_LINE: usize = 1 << 16;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let (rules, _) = load::compile(&load::embedded_sources());
        // Patterns compile lazily on first use. Under AddressSanitizer compiling the whole pack
        // takes seconds, and the first input to reach every rule was reported as a timeout
        // that no later input reproduces: pay it here, outside any input's time.
        for p in rules.rules.iter().flat_map(Rule::regexes) {
            let _ = p.compile_error();
        }
        Engine::new(Arc::new(rules), Arc::new(Intel::defaults()))
    })
}

fn context() -> AlertContext {
    AlertContext { created: "2026-11-26T00:00:00Z".into(), no_redact: false, service_source: "fuzz".into() }
}

/// Bytes as a log file: lines, frames (JSON Lines or documents), records of every kind, LLM
/// chunks joined, detections, alerts, and the behavioural detectors over all of it.
pub fn log_file(data: &[u8]) {
    let batch = frame_all(data, MAX_LINE);
    let file: Arc<str> = Arc::from("fuzz.jsonl");
    let engine = engine();
    let ctx = context();
    let mut joiner = ChunkJoiner::new(JoinLimits { max_group_bytes: 1 << 16, max_pending_bytes: 1 << 20 });
    let rules = engine.rules().behaviors.clone();
    let mut behavior = Behavior::new(rules, 1);
    let mut memo = TextMemo::default();
    let detect = |record: &Record, behavior: &mut Behavior, memo: &mut TextMemo| {
        let mut attack = false;
        let detections = engine.detections_memo(record, memo);
        let secrets = alert::Secrets::of(engine, record, &detections);
        let findings = engine.findings_of(detections);
        // The oracle for the memo of matched texts: it may save work, never change a finding.
        let unmemoized = engine.findings(record);
        assert_eq!(format!("{findings:?}"), format!("{unmemoized:?}"), "the text memo changed what was found");
        for finding in findings {
            let built = alert::build(engine, record, &finding, &secrets, &ctx);
            let _ = crate::report::formats::encode(crate::report::formats::Format::Csv, &built);
            attack = true;
        }
        if let Some(o) = behavior::observe(record, attack) {
            behavior.feed(&o);
        }
    };
    for frame in &batch.frames {
        let FrameBody::Json(range) = &frame.body else { continue };
        let parsed = parse_frame(batch.text(range), &file, frame.line, 0, ParseOptions::default());
        for record in &parsed.records {
            detect(record, &mut behavior, &mut memo);
        }
        for chunk in parsed.chunks {
            if let Joined::Complete(record) = joiner.add(chunk) {
                detect(&record, &mut behavior, &mut memo);
            }
        }
    }
    let _ = joiner.drain();
    for f in behavior.finish() {
        let rule = &behavior.rules()[f.rule];
        let _ = alert::build_behavior(rule, &f, &ctx);
    }
}

/// Bytes as prompt text: every view the matcher reads (normalized, leetspeak, rot13, decoded
/// spans, hidden text) and the whole pack over a chat record carrying it on every surface.
pub fn prompt_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let view = normalize::normalize(&text);
    let _ = normalize::leet_view(&view);
    let _ = normalize::rot13_view(&view);
    let _ = decode::decoded_views(&text);
    let _ = decode::hidden_views(&text);
    let record = serde_json::json!({
        "timestamp": "2026-11-24T10:00:00Z",
        "request": {"messages": [
            {"role": "system", "content": text},
            {"role": "user", "content": text},
            {"role": "tool", "content": text},
        ]},
        "response": {"choices": [{"message": {"role": "assistant", "content": text}}]},
    })
    .to_string();
    log_file(record.as_bytes());
}

/// Bytes as a rule file: loading, validation and the examples it carries.
pub fn rule_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (set, _errors) = load::compile(&[RuleSource { name: "fuzz.toml".into(), text: text.to_owned() }]);
    for rule in &set.rules {
        // Compiling is what the scan does lazily; the examples run the matcher.
        for p in rule.regexes() {
            let _ = p.compile_error();
        }
    }
    let _ = crate::rules::validate::run_examples(&set);
}
