//! The progress bar: drawn on stderr only when stderr is a terminal (indicatif hides it
//! otherwise, so cron and pipes see nothing), never on stdout.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::input::{InputSource, Location};

pub struct Progress {
    bar: Option<ProgressBar>,
    files_done: u64,
    files: u64,
}

impl Progress {
    /// A bar sized by the inputs' sizes on disk, or nothing when `enabled` is false.
    pub fn new(enabled: bool, sources: &[InputSource]) -> Progress {
        let files = sources.len() as u64;
        if !enabled {
            return Progress { bar: None, files_done: 0, files };
        }
        let total: u64 = sources
            .iter()
            .filter_map(|s| match &s.location {
                Location::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
                Location::Stdin => None,
            })
            .sum();
        let bar = ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_bar} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar: Some(bar), files_done: 0, files }
    }

    pub fn batch(&self, bytes: u64, records: u64, alerts: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
            b.set_message(format!("{}/{} files, {records} records, {alerts} alerts", self.files_done, self.files));
        }
    }

    pub fn file_done(&mut self) {
        self.files_done += 1;
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
