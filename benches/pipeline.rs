//! Micro-benchmarks of the stages: framing, parsing and normalizing per record kind, the
//! keyword prefilter and the keyword-less rules' gate, full detection per record, and alert
//! encoding. Run `cargo bench`;
//! `scripts/bench.sh` measures the whole binary against rg and jq.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use aihunt::alert::{self, AlertContext};
use aihunt::detect::gate::{Gate, GateHits};
use aihunt::detect::Engine;
use aihunt::input::frame::{FrameBatch, Framer};
use aihunt::input::lines::LineReader;
use aihunt::intel::Intel;
use aihunt::record::{parse_frame, ParseOptions};
use aihunt::report::formats::{encode, Format};
use aihunt::rules::TextView;

fn corpus(mb: u64) -> Vec<u8> {
    let path = std::env::temp_dir().join(format!("aihunt-bench-{mb}mb.jsonl"));
    if !path.exists() {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_aihunt"))
            .args(["gen", "-o", path.to_str().unwrap(), "--size-mb", &mb.to_string(), "--seed", "7"])
            .status()
            .expect("run aihunt gen");
        assert!(status.success());
    }
    std::fs::read(path).unwrap()
}

/// The engine a large scan builds (keyword DFA, regexes in full from the start): these
/// benches measure throughput, and a small input's choices are for startup instead.
fn engine() -> Engine {
    let (rules, errors) = aihunt::rules::load::compile(&aihunt::rules::load::embedded_sources());
    assert!(errors.is_empty());
    Engine::new(Arc::new(rules), Arc::new(Intel::defaults())).expecting_input(Some(u64::MAX))
}

fn benches(c: &mut Criterion) {
    let data = corpus(20);
    let lines: Vec<&str> = std::str::from_utf8(&data).unwrap().lines().collect();
    let file: Arc<str> = Arc::from("bench");

    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("lines+frames", |b| {
        b.iter(|| {
            let mut reader = LineReader::new(&data[..], 16 << 20);
            let mut framer = Framer::new(16 << 20);
            let mut batch = FrameBatch::default();
            while let Some(l) = reader.next_line() {
                framer.push_line(l, &mut batch);
                if batch.frames.len() > 4096 {
                    batch = FrameBatch::default();
                }
            }
        })
    });
    g.finish();

    // Parse and normalize, per record kind (the kind of the first sample line of each).
    let mut g = c.benchmark_group("parse");
    g.sample_size(20);
    let mut seen = std::collections::BTreeMap::new();
    for l in lines.iter().take(2000) {
        let r = parse_frame(l, &file, 1, 0, ParseOptions::default());
        if let Some(rec) = r.records.first() {
            seen.entry(rec.kind.as_str()).or_insert(*l);
        }
    }
    for (kind, line) in &seen {
        g.throughput(Throughput::Bytes(line.len() as u64));
        g.bench_function(*kind, |b| b.iter(|| parse_frame(line, &file, 1, 0, ParseOptions::default())));
    }
    // The floor under any serde_json-based reader: validating each line and keeping nothing,
    // against parsing, normalizing and fingerprinting it into records.
    let sample = &lines[..lines.len().min(5000)];
    g.throughput(Throughput::Bytes(sample.iter().map(|l| l.len() as u64).sum()));
    g.bench_function("5000 lines: serde_json validation only", |b| {
        b.iter(|| sample.iter().filter(|l| serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok()).count())
    });
    g.bench_function("5000 lines: records", |b| b.iter(|| sample.iter().map(|l| parse_frame(l, &file, 1, 0, ParseOptions::default()).records.len()).sum::<usize>()));
    g.finish();

    let engine = engine();
    let records: Vec<_> = lines.iter().take(5000).flat_map(|l| parse_frame(l, &file, 1, 0, ParseOptions::default()).records).collect();
    let bytes: usize = lines.iter().take(5000).map(|l| l.len()).sum();
    // The two prefilters alone, over every text surface of those records: the keyword
    // automaton, and the RegexSet pass that gates the keyword-less rules.
    let texts: Vec<&str> = records.iter().flat_map(|r| r.surfaces.iter().map(|s| s.text.as_str())).collect();
    let text_bytes: usize = texts.iter().map(|t| t.len()).sum();
    let rules = engine.rules();
    let with_pattern: Vec<usize> = (0..rules.rules.len()).filter(|&i| rules.rules[i].pattern.is_some()).collect();
    let gates = Gate::for_surface(&rules.rules, &with_pattern, &[]);
    let mut g = c.benchmark_group("prefilter");
    g.throughput(Throughput::Bytes(text_bytes as u64));
    g.sample_size(10);
    g.bench_function("keywords (Aho-Corasick)", |b| {
        let mut hit = vec![false; rules.rules.len()];
        b.iter(|| {
            texts
                .iter()
                .map(|t| {
                    engine.prefilter_hits(t, &mut hit);
                    hit.iter().filter(|&&h| h).count()
                })
                .sum::<usize>()
        })
    });
    if let Some(gate) = gates.iter().find(|g| g.view == TextView::Original) {
        g.bench_function("keyword-less rules (RegexSet gate)", |b| {
            b.iter(|| texts.iter().filter_map(|t| gate.matches(&rules.rules, t)).filter(|m| matches!(m, GateHits::Some(_))).count())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    g.bench_function("findings per record (5000 records)", |b| {
        b.iter(|| records.iter().map(|r| engine.findings(r).len()).sum::<usize>())
    });
    g.finish();

    let ctx = AlertContext { created: "2026-11-25T00:00:00Z".into(), no_redact: false, service_source: "unknown".into() };
    let found: Vec<_> = records
        .iter()
        .flat_map(|r| {
            let detections = engine.detections(r);
            let secrets = Arc::new(alert::Secrets::of(&engine, r, &detections));
            engine.findings_of(detections).into_iter().map(move |f| (r, f, Arc::clone(&secrets)))
        })
        .take(200)
        .collect();
    let mut g = c.benchmark_group("report");
    g.sample_size(20);
    for (name, format) in [("ndjson", Format::Ndjson), ("csv", Format::Csv), ("sentinel", Format::Sentinel)] {
        g.bench_function(name, |b| {
            b.iter(|| found.iter().map(|(r, f, secrets)| encode(format, &alert::build(&engine, r, f, secrets, &ctx)).len()).sum::<usize>())
        });
    }
    g.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
