//! Command-line definitions (clap derive only); `config` turns them into validated settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit status:
  0  no alert (at or above --fail-on) and no error
  1  alerts were raised
  2  an error: bad flags or rules, or an input that could not be read or decompressed to its
     end (everything readable was still scanned and written)
Rejected lines are counted and reported, not errors. A closed output pipe is not an error.";

/// Hunt for threats in exported generative-AI logs (Azure OpenAI / AI Foundry, API Management,
/// OpenTelemetry GenAI, Activity Log), offline.
#[derive(Debug, Parser)]
#[command(name = "aihunt", version, about, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan logs and report what was found.
    #[command(after_help = EXIT_CODES)]
    Scan(ScanArgs),
    /// Print the normalized records aihunt reads from the logs, as NDJSON.
    Inspect(InspectArgs),
    /// List, validate and test detection rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Write a benchmark corpus of realistic mixed traffic (`-o FILE`), or 48 hours of Azure
    /// export folders with injected behavioural attacks (`--traffic DIR`). Deterministic for a
    /// seed.
    Gen {
        /// Output file (JSON Lines).
        #[arg(short = 'o', long, value_name = "FILE", required_unless_present = "traffic")]
        output: Option<PathBuf>,
        /// Write behavioural-detection fixtures instead: one PT1H.json per resource and hour
        /// in the storage export layout, and print which attacks were injected where.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["output", "size_mb"])]
        traffic: Option<PathBuf>,
        /// About this many megabytes.
        #[arg(long, value_name = "MB", default_value_t = 100)]
        size_mb: u64,
        /// Default: 1 for the corpus, 7 for --traffic.
        #[arg(long)]
        seed: Option<u64>,
        /// Make every prompt an attack and every answer hold a storage key, so that every
        /// record raises alerts: the worst case for a scan's output side (the default corpus
        /// has 2% attacks and 0.5% keys).
        #[arg(long, conflicts_with = "traffic")]
        hostile: bool,
    },
    /// Measure detection quality on labelled corpora (JSON Lines with id, text, label).
    Eval {
        /// Folder of `*.jsonl` corpora (for example ../shared/eval-dev).
        dir: PathBuf,
        #[command(flatten)]
        rules: RuleArgs,
        /// One JSON object per file and label.
        #[arg(long)]
        json: bool,
        /// List up to N ids of attack texts that raised nothing, per label.
        #[arg(long, value_name = "N", default_value_t = 0)]
        show_missed: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the loaded rules (a table, `--json`, or the prefilter `--keywords`).
    List {
        #[command(flatten)]
        rules: RuleArgs,
        /// One JSON object per rule.
        #[arg(long, conflicts_with = "keywords")]
        json: bool,
        /// The prefilter keywords, one per line (input for `rg -F -f`).
        #[arg(long)]
        keywords: bool,
    },
    /// Check rule files: syntax, fields, regexes, keyword proofs and every rule's examples.
    /// Without DIR, checks the embedded default pack.
    Validate {
        /// Rule files or folders of `*.toml` files.
        dirs: Vec<PathBuf>,
    },
    /// Run every loaded rule's `match` / `no_match` examples.
    Test {
        #[command(flatten)]
        rules: RuleArgs,
    },
}

/// Which rules to load and keep.
#[derive(Debug, Args, Clone, Default)]
pub struct RuleArgs {
    /// Load rules from this file or folder too (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    pub rule_dirs: Vec<PathBuf>,
    /// Do not load the embedded default rule pack.
    #[arg(long)]
    pub no_default_rules: bool,
    /// Keep only this rule (repeatable).
    #[arg(long = "rule", value_name = "ID")]
    pub only: Vec<String>,
    /// Drop this rule (repeatable).
    #[arg(long = "exclude-rule", value_name = "ID")]
    pub exclude: Vec<String>,
    /// Drop rules below this severity.
    #[arg(long, value_name = "SEVERITY", value_parser = ["informational", "low", "medium", "high"])]
    pub min_severity: Option<String>,
    /// Scan with the valid rules when some rule files are invalid (they are still reported).
    #[arg(long)]
    pub skip_invalid_rules: bool,
}

/// Flags shared by every command that reads logs.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Files or directories to read (directories are walked in sorted order; gzip is detected
    /// by content). `-` or nothing reads stdin.
    pub paths: Vec<PathBuf>,

    /// Follow symlinks found below a directory (a path given here is always followed). Without
    /// it they are skipped and counted in the summary.
    #[arg(short = 'L', long)]
    pub follow: bool,

    /// Read every record as this kind instead of classifying it.
    #[arg(long, value_name = "KIND", value_parser = ["resource_log", "activity_log", "gateway_log", "gateway_llm_log", "chat_exchange", "otel_span", "training_example"])]
    pub kind: Option<String>,

    /// Reject lines (and document elements) longer than this many bytes, in bounded memory.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_line_bytes: usize,

    /// Threads to scan with (default: the number of CPUs). 1 reads, matches and writes on one
    /// thread; N > 1 runs N workers beside a reader and the thread that writes output.
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,

    /// Write the run summary as JSON to FILE (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,

    /// Write every rejected line or record as NDJSON to FILE (file, line, reason, detail).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,

    /// How many rejected lines to print per input on stderr before summarising the rest.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_reject_messages: usize,

    /// Write results to FILE instead of stdout (a regular file is replaced atomically).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print only errors on stderr (no summary, no rejected-line messages, no progress).
    #[arg(short, long)]
    pub quiet: bool,

    /// No progress bar (it is only ever drawn when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Output format: ndjson (one alert per line), xdr (Graph list `{"value":[...]}`), csv,
    /// sentinel (rows for a custom table via the Logs Ingestion API).
    #[arg(short = 'f', long, value_name = "FORMAT", default_value = "ndjson", value_parser = ["ndjson", "xdr", "csv", "sentinel"])]
    pub format: String,
    /// Exit 1 only for alerts at or above this severity; `never` always exits 0 unless an
    /// error occurs.
    #[arg(long, value_name = "SEVERITY", default_value = "informational", value_parser = ["informational", "low", "medium", "high", "never"])]
    pub fail_on: String,
    /// Keep secrets and personal data in alert evidence (redacted by default).
    #[arg(long)]
    pub no_redact: bool,
    /// Known false positives to drop (TOML: rule or alert id, optional entity, reason,
    /// expiry).
    #[arg(long, value_name = "FILE")]
    pub suppress: Option<PathBuf>,
    /// Write one Graph-incident-shaped summary per incident to FILE at the end.
    #[arg(long, value_name = "FILE")]
    pub incidents: Option<PathBuf>,
    /// Folder of threat-intelligence lists: tor-exit-nodes.txt, suspicious-ips.txt,
    /// malicious-urls.txt, suspicious-user-agents.txt (one entry per line, `#` comments).
    #[arg(long, value_name = "DIR")]
    pub intel: Option<PathBuf>,
    /// Incremental scan: resume each file where the last run stopped, never write an alert id
    /// twice within the dedupe window, survive being killed (see README "Running from cron").
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// With --state: how long an alert id is remembered (s, m, h, d, w).
    #[arg(long, value_name = "SPAN", default_value = "7d")]
    pub dedupe_window: String,
    /// Only records at or after this time (RFC 3339, or a span back from now like 2h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records at or before this time (RFC 3339, or a span back from now).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// The `serviceSource` value written in alerts.
    #[arg(long, value_name = "NAME", default_value = "unknown")]
    pub service_source: String,
    /// Memory bound of the behavioural detectors, in megabytes (counted, approximately). Past
    /// it the least recently active callers and resources are evicted, the summary says how
    /// many, and behavioural results may then depend on input order.
    #[arg(long, value_name = "MB", default_value_t = crate::detect::behavior::DEFAULT_MAX_MEMORY_MB)]
    pub max_behavior_memory: u64,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub input: InputArgs,
}
