//! Helpers: run the binary, find fixtures, read its NDJSON and stats back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_str(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    /// stdout as NDJSON values.
    pub fn ndjson(&self) -> Vec<Value> {
        self.stdout_str()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad NDJSON line {l}: {e}")))
            .collect()
    }
}

pub fn aihunt() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aihunt"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

pub fn run(args: &[&str]) -> Run {
    run_with_stdin(args, None)
}

pub fn run_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = aihunt();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().expect("spawn aihunt");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let data = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let Output { status, stdout, stderr } = child.wait_with_output().expect("wait for aihunt");
    Run { code: status.code().unwrap_or(-1), stdout, stderr: String::from_utf8_lossy(&stderr).into_owned() }
}

/// Runs `aihunt <cmd> <args> --stats FILE` and returns the run and the parsed stats.
pub fn run_stats(args: &[&str]) -> (Run, Value) {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let mut all: Vec<&str> = args.to_vec();
    let stats_s = stats.to_str().unwrap().to_owned();
    all.extend(["--stats", &stats_s]);
    let r = run(&all);
    let text = std::fs::read_to_string(&stats).unwrap_or_else(|e| panic!("no stats file ({e}); stderr: {}", r.stderr));
    (r, serde_json::from_str(&text).unwrap())
}

pub fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// The line identity every run must satisfy (DESIGN §5).
pub fn assert_invariant(stats: &Value) {
    let read = n(stats, "linesRead");
    let sum = n(stats, "linesParsed") + n(stats, "linesRejected") + n(stats, "linesSkipped");
    assert_eq!(read, sum, "linesRead != parsed + rejected + skipped in {stats:#}");
    let by_reason: u64 = stats["rejectedByReason"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(by_reason, n(stats, "linesRejected"), "rejectedByReason does not add up in {stats:#}");
    let by_kind: u64 = stats["recordsByKind"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(by_kind, n(stats, "recordsParsed"), "recordsByKind does not add up in {stats:#}");
}

/// Physical lines in a (possibly gzip-compressed) file: what `linesRead` must equal.
pub fn physical_lines(path: &Path) -> u64 {
    let raw = std::fs::read(path).unwrap();
    let data = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut out);
        out
    } else {
        raw
    };
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(!data.is_empty() && *data.last().unwrap() != b'\n')
}

/// Every regular file below `dir`, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The inspected records of `path`, keyed for lookup by source line.
pub fn inspect(path: &str) -> Vec<Value> {
    let r = run(&["inspect", "-q", path]);
    assert_eq!(r.code, 0, "inspect {path} failed: {}", r.stderr);
    r.ndjson()
}

pub fn at_line(records: &[Value], line: u64) -> &Value {
    records
        .iter()
        .find(|r| r["sourceLine"] == line)
        .unwrap_or_else(|| panic!("no record at line {line}"))
}

/// The texts of one surface of an inspected record, in order.
pub fn texts(record: &Value, surface: &str) -> Vec<String> {
    record["surfaces"]
        .as_array()
        .map(|a| a.iter().filter(|s| s["surface"] == surface).map(|s| s["text"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}
