//! The human-readable run summary printed on stderr.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::stats::RunStats;

pub fn render(s: &RunStats) -> String {
    let mut out = String::new();
    let files = s.files_read + s.files_failed;
    let _ = writeln!(
        out,
        "aihunt: read {} input{} ({}), {:.1} MB in {:.2} s ({:.1} MB/s, {} thread{})",
        files,
        plural(files),
        if s.files_failed > 0 { format!("{} failed", s.files_failed) } else { "all complete".into() },
        s.bytes_read as f64 / 1e6,
        s.elapsed_seconds,
        s.mb_per_second,
        s.threads,
        plural(s.threads)
    );
    let _ = writeln!(
        out,
        "  lines    {} read = {} parsed + {} rejected + {} blank",
        s.lines_read, s.lines_parsed, s.lines_rejected, s.lines_skipped
    );
    let _ = writeln!(out, "  records  {} parsed{}", s.records_parsed, counts(&s.records_by_kind));
    if s.records_rejected > 0 {
        let _ = writeln!(out, "  rejected {}{}", s.records_rejected, counts(&s.records_rejected_by_reason));
    }
    if s.lines_repaired_utf8 + s.lines_nul_stripped > 0 {
        let _ = writeln!(
            out,
            "  repaired {} line{} with invalid UTF-8, {} with NUL bytes",
            s.lines_repaired_utf8,
            plural(s.lines_repaired_utf8),
            s.lines_nul_stripped
        );
    }
    if s.records_outside_time_range > 0 {
        let _ = writeln!(out, "  skipped  {} record(s) outside --since/--until", s.records_outside_time_range);
    }
    if s.behavior_evicted + s.behavior_values_dropped > 0 {
        let _ = writeln!(
            out,
            "  behavior {} entities kept; {} evicted past --max-behavior-memory and {} values dropped: behavioural alerts may depend on input order",
            s.behavior_entities, s.behavior_evicted, s.behavior_values_dropped
        );
    }
    let _ = writeln!(out, "  alerts   {}{}", s.alerts, counts(&s.alerts_by_severity));
    out
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(" ({})", parts.join(", "))
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
