//! Run accounting: what was read, parsed, rejected and raised, with the line invariant
//! `linesRead = linesParsed + linesRejected + linesSkipped` (DESIGN §5).

use std::collections::BTreeMap;

use serde::Serialize;

/// The run summary, written as JSON by `--stats FILE` and printed on stderr.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunStats {
    pub files_read: u64,
    /// Inputs that could not be opened, read or decompressed to their end.
    pub files_failed: u64,
    /// Directory entries not read: symlinks without --follow, and FIFOs, sockets or devices.
    pub entries_skipped: u64,
    /// Decompressed bytes read.
    pub bytes_read: u64,
    pub lines_read: u64,
    /// Lines that held (part of) a parsed record, including a JSON document's envelope lines.
    pub lines_parsed: u64,
    pub lines_rejected: u64,
    /// Blank lines.
    pub lines_skipped: u64,
    /// Rejected lines by reason; the counts add up to `linesRejected`.
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub records_parsed: u64,
    /// Records that could not be used, including those inside a wrapper whose line parsed.
    pub records_rejected: u64,
    pub records_rejected_by_reason: BTreeMap<String, u64>,
    pub records_by_kind: BTreeMap<String, u64>,
    /// Lines whose invalid UTF-8 was replaced with U+FFFD so they could still be read.
    pub lines_repaired_utf8: u64,
    /// Lines from which NUL bytes were removed.
    pub lines_nul_stripped: u64,
    /// Records left out by --since / --until.
    pub records_outside_time_range: u64,
    pub alerts: u64,
    pub alerts_by_threat: BTreeMap<String, u64>,
    pub alerts_by_severity: BTreeMap<String, u64>,
    pub rules_loaded: u64,
    /// Entities (callers, identities, resources) the behavioural detectors held at the end.
    pub behavior_entities: u64,
    /// Entities whose behavioural state was evicted to stay within --max-behavior-memory;
    /// when not 0, behavioural results may depend on input order.
    pub behavior_evicted: u64,
    /// IP ranges, user agents or key operations not remembered because an entity had too many.
    pub behavior_values_dropped: u64,
    pub threads: u64,
    pub elapsed_seconds: f64,
    /// Decompressed megabytes (10^6 bytes) per second of wall time.
    pub mb_per_second: f64,
}

impl RunStats {
    /// The accounting identity every run must satisfy.
    pub fn invariant_holds(&self) -> bool {
        self.lines_read == self.lines_parsed + self.lines_rejected + self.lines_skipped
            && self.rejected_by_reason.values().sum::<u64>() == self.lines_rejected
            && self.records_by_kind.values().sum::<u64>() == self.records_parsed
            && self.records_rejected_by_reason.values().sum::<u64>() == self.records_rejected
    }

    pub fn finish(&mut self, elapsed: std::time::Duration) {
        self.elapsed_seconds = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
        let secs = elapsed.as_secs_f64().max(1e-6);
        self.mb_per_second = ((self.bytes_read as f64 / 1e6 / secs) * 10.0).round() / 10.0;
    }
}
