//! Runs the commands: wires configuration, the pipeline, accounting and output together and
//! says how the run went. Library code below this never exits the process or prints results.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{Cli, Command, InputArgs};
use crate::config::InputConfig;
use crate::input::{SkipReason, SkippedEntry};
use crate::pipeline::{self, BatchResult, Event, RejectNotice};
use crate::report::output::{write_file_atomic, Output};
use crate::report::{summary, terminal};
use crate::stats::RunStats;

/// How a run ended; `main` maps it to the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to report.
    Clean,
    /// Alerts were raised (at or above `--fail-on`).
    Alerts,
    /// Something could not be read; whatever could be was processed and written.
    Error,
}

pub fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Scan(args) => crate::scan::run(&args),
        Command::Inspect(args) => inspect(&args.input),
        Command::Rules(cmd) => crate::rules_cmd::run(cmd),
        Command::Eval { dir, rules, json, show_missed } => crate::eval::run(&dir, &rules, json, show_missed),
        Command::Gen { output, traffic, size_mb, seed, hostile } => match (traffic, output) {
            (Some(dir), _) => crate::traffic::run(&dir, seed.unwrap_or(crate::traffic::DEFAULT_SEED)),
            (None, Some(file)) => crate::gen::run(&file, size_mb, seed.unwrap_or(1), hostile),
            (None, None) => anyhow::bail!("gen needs -o FILE or --traffic DIR"),
        },
    }
}

/// `aihunt inspect`: the normalized records as NDJSON.
fn inspect(args: &InputArgs) -> Result<Outcome> {
    let config = InputConfig::from_args(args)?;
    let work = |record: &crate::record::Record, _: &mut (), out: &mut Vec<Vec<u8>>| {
        // Serialising a Record cannot fail: every field is a plain string, number or list.
        if let Ok(line) = serde_json::to_string(record) {
            let mut line = crate::report::terminal::json_inert(line);
            line.push(b'\n');
            out.push(line);
        }
    };
    let mut sink = LineSink;
    let done = run_reading(&config, work, &mut sink, 0)?;
    Ok(if done.failed { Outcome::Error } else { Outcome::Clean })
}

/// Writes each output as it comes; what `inspect` needs.
struct LineSink;

impl Sink<Vec<u8>> for LineSink {
    fn item(&mut self, line: &Vec<u8>, out: &mut Output, _: &mut RunStats) -> std::io::Result<()> {
        out.write_all(line)
    }
}

/// Where a command's outputs go, in input order, on the consuming thread.
pub trait Sink<T> {
    fn begin(&mut self, _out: &mut Output) -> std::io::Result<()> {
        Ok(())
    }
    fn item(&mut self, item: &T, out: &mut Output, stats: &mut RunStats) -> std::io::Result<()>;
    /// An input was read to where it ends (or failed): incremental scans record the position.
    fn input_done(&mut self, _source: &crate::input::InputSource, _end: crate::pipeline::InputEnd, _failed: bool) {}
    /// Rows of chunk groups still incomplete when an incremental scan ends.
    fn pending_chunks(&mut self, _rows: &[crate::record::RowRef]) {}
    /// All input is read: write what only the whole scan can tell, then any trailer.
    fn finish(&mut self, _out: &mut Output, _stats: &mut RunStats) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a read went.
pub struct ReadResult {
    pub stats: RunStats,
    /// An input (or listing a path) failed.
    pub failed: bool,
}

/// Reads every input through the pipeline, accounts for every line, hands each output to
/// `sink` in input order, and writes the summary, stats and rejects files.
pub fn run_reading<T, M, W, S>(config: &InputConfig, work: W, sink: &mut S, rules_loaded: u64) -> Result<ReadResult>
where
    T: crate::pipeline::Weigh + Send + 'static,
    M: Default + Send + 'static,
    W: Fn(&crate::record::Record, &mut M, &mut Vec<T>) + Send + Sync + 'static,
    S: Sink<T>,
{
    let started = Instant::now();
    let mut ledger = Ledger::new(config)?;
    ledger.stats.rules_loaded = rules_loaded;
    for e in &config.source_errors {
        ledger.error(&format!("{}: {}", e.path, e.error));
    }
    ledger.skipped(&config.skipped_entries);
    let mut out = match &config.output_override {
        Some(p) => Output::create(Some(p))?,
        None => Output::create(config.output_path.as_deref())?,
    };
    let broken = |e: std::io::Error| anyhow::Error::new(e).context("cannot write output");
    let mut progress = crate::report::progress::Progress::new(config.progress, &config.sources);
    sink.begin(&mut out).map_err(broken)?;
    let outcome = pipeline::run(config.sources.clone(), config.pipeline, work, |event| {
        match &event {
            Event::Batch(b) => {
                for o in &b.outputs {
                    sink.item(o, &mut out, &mut ledger.stats)?;
                }
                progress.batch(b.text_bytes, ledger.stats.records_parsed, ledger.stats.alerts);
            }
            Event::InputDone { source, end, error, .. } => {
                progress.file_done();
                sink.input_done(source, *end, error.is_some())
            }
            Event::Unjoined(_) => {}
            Event::PendingChunks(rows) => sink.pending_chunks(rows),
        }
        ledger.record(event)
    });
    progress.finish();
    outcome.map_err(broken)?;
    sink.finish(&mut out, &mut ledger.stats).map_err(broken)?;
    out.commit()?;
    ledger.stats.threads = config.pipeline.threads as u64;
    ledger.stats.finish(started.elapsed());
    ledger.finish(config)
}

/// Keeps the run's accounting and tells the user about rejected lines and failed inputs.
struct Ledger {
    stats: RunStats,
    failed: bool,
    quiet: bool,
    max_messages: usize,
    shown_in_input: usize,
    hidden_in_input: u64,
    rejects: Option<Output>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RejectLine<'a> {
    source_file: &'a str,
    source_line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    reason: &'static str,
    detail: &'a str,
    /// Only on the summary of a line's rejections past the first 1,000: how many it counts.
    #[serde(skip_serializing_if = "is_one")]
    count: u64,
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

impl Ledger {
    fn new(config: &InputConfig) -> Result<Ledger> {
        let rejects = match &config.rejects_path {
            Some(p) => Some(Output::create(Some(p))?),
            None => None,
        };
        Ok(Ledger {
            stats: RunStats::default(),
            failed: false,
            quiet: config.quiet,
            max_messages: config.max_reject_messages,
            shown_in_input: 0,
            hidden_in_input: 0,
            rejects,
        })
    }

    fn error(&mut self, message: &str) {
        self.failed = true;
        crate::diag!("aihunt: error: {}", terminal::escape(message));
    }

    /// Says once what a walk left out, so a skipped symlinked log is never lost silently.
    fn skipped(&mut self, entries: &[SkippedEntry]) {
        self.stats.entries_skipped = entries.len() as u64;
        let Some(first) = entries.first() else { return };
        if self.quiet {
            return;
        }
        let links = entries.iter().filter(|e| e.why == SkipReason::Symlink).count();
        let others = entries.len() - links;
        let mut kinds = Vec::new();
        if links > 0 {
            kinds.push(format!("{links} symlink{} (pass --follow to read them)", if links == 1 { "" } else { "s" }));
        }
        if others > 0 {
            kinds.push(format!("{others} FIFO, socket or device"));
        }
        crate::diag!(
            "aihunt: skipped {} directory entr{}: {}; first: {}",
            entries.len(),
            if entries.len() == 1 { "y" } else { "ies" },
            kinds.join(", "),
            terminal::escape(&first.path)
        );
    }

    fn record<T>(&mut self, event: Event<'_, T>) -> std::io::Result<()> {
        match event {
            Event::Batch(b) => self.batch(b)?,
            // Rows an incremental scan reads again next run: nothing is lost, nothing to report.
            Event::PendingChunks(_) => {}
            Event::Unjoined(notices) => {
                self.rejections(notices)?;
                if self.hidden_in_input > 0 && !self.quiet {
                    crate::diag!("aihunt: {} more unjoined chunk groups not shown (--rejects FILE lists them all)", self.hidden_in_input);
                }
            }
            Event::InputDone { source, bytes_read, error, .. } => {
                self.stats.bytes_read += bytes_read;
                match error {
                    None => self.stats.files_read += 1,
                    Some(e) => {
                        self.stats.files_failed += 1;
                        let what = if bytes_read == 0 {
                            format!("{}: cannot read: {e}", source.display)
                        } else {
                            format!(
                                "{}: cannot read to the end ({e}); the {bytes_read} bytes before it were scanned",
                                source.display
                            )
                        };
                        self.error(&what);
                    }
                }
                if self.hidden_in_input > 0 && !self.quiet {
                    crate::diag!(
                        "aihunt: {}: {} more rejected records not shown (--rejects FILE lists them, past 1,000 on one line as a count)",
                        terminal::escape(&source.display),
                        self.hidden_in_input
                    );
                }
                self.shown_in_input = 0;
                self.hidden_in_input = 0;
            }
        }
        Ok(())
    }

    fn batch<T>(&mut self, b: &BatchResult<T>) -> std::io::Result<()> {
        let s = &mut self.stats;
        s.lines_skipped += b.counts.skipped;
        s.lines_parsed += b.lines_parsed;
        s.lines_repaired_utf8 += b.counts.repaired_utf8;
        s.lines_nul_stripped += b.counts.nul_stripped;
        for (reason, n) in &b.lines_rejected {
            s.lines_rejected += n;
            *s.rejected_by_reason.entry(reason.as_str().to_owned()).or_default() += n;
        }
        s.lines_read = s.lines_parsed + s.lines_rejected + s.lines_skipped;
        for (kind, n) in &b.records_by_kind {
            s.records_parsed += n;
            *s.records_by_kind.entry(kind.as_str().to_owned()).or_default() += n;
        }
        self.rejections(&b.rejections)
    }

    fn rejections(&mut self, notices: &[RejectNotice]) -> std::io::Result<()> {
        for r in notices {
            self.stats.records_rejected += r.count;
            *self.stats.records_rejected_by_reason.entry(r.reason.as_str().to_owned()).or_default() += r.count;
            self.report_rejection(r)?;
        }
        Ok(())
    }

    fn report_rejection(&mut self, r: &RejectNotice) -> std::io::Result<()> {
        let file: &str = &r.file;
        if let Some(out) = self.rejects.as_mut() {
            let line = RejectLine {
                source_file: file,
                source_line: r.line,
                index: r.index,
                reason: r.reason.as_str(),
                detail: &r.detail,
                count: r.count,
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        if self.quiet {
            return Ok(());
        }
        if self.shown_in_input < self.max_messages {
            self.shown_in_input += 1;
            let at = match r.index {
                Some(i) => format!("{}:{} (record {})", file, r.line, i + 1),
                None => format!("{}:{}", file, r.line),
            };
            crate::diag!("aihunt: {}: rejected ({}): {}", terminal::escape(&at), r.reason, terminal::escape(&r.detail));
        } else {
            self.hidden_in_input += r.count;
        }
        Ok(())
    }

    fn finish(mut self, config: &InputConfig) -> Result<ReadResult> {
        debug_assert!(self.stats.invariant_holds(), "line accounting broke: {:?}", self.stats);
        if let Some(out) = self.rejects.take() {
            out.commit().context("cannot write the rejects file")?;
        }
        if let Some(path) = &config.stats_path {
            let mut json = serde_json::to_vec_pretty(&self.stats)?;
            json.push(b'\n');
            write_file_atomic(path, &json).context("cannot write the stats file")?;
        }
        if !self.quiet {
            let _ = std::io::stderr().lock().write_all(summary::render(&self.stats).as_bytes());
        }
        let failed = self.failed || self.stats.files_failed > 0;
        Ok(ReadResult { stats: self.stats, failed })
    }
}
