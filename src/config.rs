//! Turns parsed command-line flags into validated settings the library runs with.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::cli::InputArgs;
use crate::input::{self, InputError, InputSource, SkippedEntry};
use crate::pipeline::PipelineOptions;
use crate::record::{ParseOptions, RecordKind};

/// Settings for reading inputs, shared by `scan` and `inspect`.
pub struct InputConfig {
    pub sources: Vec<InputSource>,
    /// Paths that could not be listed: reported, and they make the run end with exit 2.
    pub source_errors: Vec<InputError>,
    /// Directory entries not read (symlinks without --follow, FIFOs, sockets, devices).
    pub skipped_entries: Vec<SkippedEntry>,
    pub pipeline: PipelineOptions,
    pub stats_path: Option<PathBuf>,
    pub rejects_path: Option<PathBuf>,
    pub output_path: Option<PathBuf>,
    /// Where the output is really written (an incremental scan writes a pending file first).
    pub output_override: Option<PathBuf>,
    pub max_reject_messages: usize,
    pub quiet: bool,
    pub progress: bool,
}

impl InputConfig {
    pub fn from_args(args: &InputArgs) -> Result<InputConfig> {
        let threads = match args.threads {
            Some(0) => bail!("--threads must be at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if args.max_line_bytes < 1024 {
            bail!("--max-line-bytes must be at least 1024");
        }
        let force_kind = args.kind.as_deref().and_then(RecordKind::parse);
        let input::Expansion { sources, errors: source_errors, skipped: skipped_entries } = input::expand(&args.paths, args.follow);
        let stdin_count = sources.iter().filter(|s| matches!(s.location, input::Location::Stdin)).count();
        if stdin_count > 1 {
            bail!("stdin (`-`) can be read only once");
        }
        Ok(InputConfig {
            sources,
            source_errors,
            skipped_entries,
            pipeline: PipelineOptions {
                threads,
                max_line_bytes: args.max_line_bytes,
                parse: ParseOptions { force_kind },
                hold_incomplete_tail: false,
            },
            stats_path: args.stats.clone(),
            rejects_path: args.rejects.clone(),
            output_path: args.output.clone(),
            output_override: None,
            max_reject_messages: args.max_reject_messages,
            quiet: args.quiet,
            progress: !args.quiet && !args.no_progress,
        })
    }
}
