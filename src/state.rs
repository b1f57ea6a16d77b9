//! Incremental scans for cron (`--state FILE`): per input file, its identity (a hash of its
//! first bytes, so an append keeps it and a replacement does not), its size and the offset after
//! the last complete line read; the ids of alerts already written (kept for the dedupe window);
//! and the run's output while it is being put in place.
//!
//! Crash safety: a run writes its alerts to `<output>.aihunt-pending`, then the new state (which
//! names that pending file), then renames the pending file into place. Killed before the state
//! is written, the next run starts from the old offsets and writes the same alerts again into
//! its own output; killed after, the next run finishes the rename first. Either way no alert is
//! lost and none is written twice. A second run on the same state file while one is running
//! refuses to start (an OS file lock, released even by `kill -9`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::input::{InputSource, Location};
use crate::pipeline::InputEnd;
use crate::record::record_hash;
use crate::report::output::write_file_atomic;

const VERSION: u32 = 1;
/// Bytes of a file's start whose hash identifies it.
const IDENTITY_BYTES: u64 = 1024;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanState {
    pub version: u32,
    #[serde(default)]
    pub files: BTreeMap<String, FileState>,
    /// Alert id → when it was written (RFC 3339).
    #[serde(default)]
    pub emitted: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_output: Option<PendingOutput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileState {
    /// Hash of the first `identityBytes` bytes.
    pub identity: String,
    pub identity_bytes: u64,
    pub size: u64,
    /// Offset (in the decompressed stream) after the last complete line read.
    pub offset: u64,
    /// Lines before `offset`.
    pub line: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PendingOutput {
    pub pending: PathBuf,
    pub dest: PathBuf,
}

/// What planning a run from the state found.
#[derive(Debug, Default)]
pub struct Plan {
    pub resumed: usize,
    pub new_files: usize,
    /// Files read again from the start: shorter than before, or replaced.
    pub reread: Vec<String>,
}

pub struct StateFile {
    path: PathBuf,
    _lock: File,
    pub state: ScanState,
    /// Identity of each file as planned (display path → identity, identity bytes, size).
    planned: BTreeMap<String, (String, u64, u64)>,
}

impl StateFile {
    /// Locks and loads the state (an absent file is an empty state), and finishes the previous
    /// run's output if it was killed between writing the state and renaming the output.
    pub fn open(path: &Path) -> Result<StateFile> {
        let lock_path = lock_path(path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot create the lock file {}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            bail!("another aihunt run is using the state file {} (lock {} is held)", path.display(), lock_path.display());
        }
        let state = match std::fs::read(path) {
            Ok(bytes) => {
                let s: ScanState = serde_json::from_slice(&bytes).with_context(|| {
                    format!("the state file {} is unreadable; move it away to start over from scratch", path.display())
                })?;
                if s.version != VERSION {
                    bail!("the state file {} has version {}, this aihunt writes {VERSION}", path.display(), s.version);
                }
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ScanState { version: VERSION, ..ScanState::default() },
            Err(e) => return Err(e).with_context(|| format!("cannot read the state file {}", path.display())),
        };
        let mut me = StateFile { path: path.to_owned(), _lock: lock, state, planned: BTreeMap::new() };
        me.recover_output()?;
        Ok(me)
    }

    fn recover_output(&mut self) -> Result<()> {
        if let Some(p) = self.state.pending_output.take() {
            if p.pending.exists() {
                std::fs::rename(&p.pending, &p.dest)
                    .with_context(|| format!("cannot finish the previous run's output {}", p.dest.display()))?;
            }
        }
        Ok(())
    }

    /// Sets where each input resumes. Stdin cannot resume and is read whole.
    pub fn plan(&mut self, sources: &mut [InputSource]) -> Plan {
        let mut plan = Plan::default();
        for src in sources.iter_mut() {
            let Location::File(path) = &src.location else { continue };
            let Some((identity, identity_bytes, size)) = identify(path, IDENTITY_BYTES) else { continue };
            let key = src.display.to_string();
            match self.state.files.get(&key) {
                Some(old) => {
                    let same_start = identify(path, old.identity_bytes).is_some_and(|(id, _, _)| id == old.identity);
                    if same_start && size >= old.size {
                        src.resume = Some((old.offset, old.line));
                        plan.resumed += 1;
                    } else {
                        plan.reread.push(key.clone());
                    }
                }
                None => plan.new_files += 1,
            }
            self.planned.insert(key, (identity, identity_bytes, size));
        }
        plan
    }

    pub fn already_emitted(&self, id: &str) -> bool {
        self.state.emitted.contains_key(id)
    }

    /// Records where an input ended.
    pub fn input_done(&mut self, source: &InputSource, end: InputEnd, failed: bool) {
        let key = source.display.to_string();
        let Some((identity, identity_bytes, size)) = self.planned.get(&key).cloned() else { return };
        if failed {
            // Keep the old position: the unreadable part is read again next time.
            return;
        }
        // An unclosed JSON document cannot be resumed from its middle: read it whole next time.
        let (offset, line) = if end.document_open { (0, 0) } else { (end.offset, end.line) };
        self.state.files.insert(key, FileState { identity, identity_bytes, size, offset, line });
    }

    /// Moves files back to the earliest row of a chunk group that is still incomplete, so the
    /// next run reads those rows again and can join them with the chunks still to come.
    pub fn rewind(&mut self, rows: &[crate::record::RowRef]) {
        for row in rows {
            if let Some(f) = self.state.files.get_mut(&*row.source_file) {
                if row.offset < f.offset {
                    f.offset = row.offset;
                    f.line = row.source_line.saturating_sub(1);
                }
            }
        }
    }

    /// Writes the new state atomically: emitted ids added, those older than `window` dropped.
    pub fn save(&mut self, new_ids: &[String], now: Timestamp, window: jiff::SignedDuration, pending: Option<PendingOutput>) -> Result<()> {
        let stamp = now.to_string();
        for id in new_ids {
            self.state.emitted.insert(id.clone(), stamp.clone());
        }
        let cutoff = now.checked_sub(window).unwrap_or(now);
        self.state.emitted.retain(|_, t| t.parse::<Timestamp>().is_ok_and(|t| t >= cutoff));
        self.state.pending_output = pending;
        self.state.version = VERSION;
        let mut bytes = serde_json::to_vec_pretty(&self.state)?;
        bytes.push(b'\n');
        write_file_atomic(&self.path, &bytes).with_context(|| format!("cannot write the state file {}", self.path.display()))
    }
}

fn lock_path(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Hash of a file's first `bytes` bytes (fewer if it is shorter), how many were hashed, and
/// the file's size.
fn identify(path: &Path, bytes: u64) -> Option<(String, u64, u64)> {
    let mut f = File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    let mut head = Vec::with_capacity(bytes.min(size) as usize);
    (&mut f).take(bytes.min(size)).read_to_end(&mut head).ok()?;
    // Lossless for hashing: the bytes are not text, so hash their hex form.
    let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
    Some((record_hash(&hex), head.len() as u64, size))
}

/// Parses `--since` / `--until`: an RFC 3339 time, or a span back from now (`90s`, `30m`, `2h`,
/// `7d`, `2w`).
pub fn parse_time_bound(s: &str, now: Timestamp) -> Result<Timestamp> {
    if let Some(t) = crate::record::time::parse(s) {
        return Ok(t);
    }
    let span = parse_duration(s)?;
    now.checked_sub(span).map_err(|e| anyhow::anyhow!("{s:?}: {e}"))
}

pub fn parse_duration(s: &str) -> Result<jiff::SignedDuration> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num.parse().with_context(|| format!("{s:?} is not a time or a span like 2h or 7d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => bail!("{s:?}: use s, m, h, d or w (for example 2h or 7d), or an RFC 3339 time"),
    };
    Ok(jiff::SignedDuration::from_secs(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_bounds() {
        let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        assert_eq!(parse_time_bound("2h", now).unwrap().to_string(), "2026-11-25T10:00:00Z");
        assert_eq!(parse_time_bound("7d", now).unwrap().to_string(), "2026-11-18T12:00:00Z");
        assert_eq!(parse_time_bound("2026-11-24T00:00:00Z", now).unwrap().to_string(), "2026-11-24T00:00:00Z");
        assert!(parse_time_bound("soon", now).is_err());
        assert!(parse_duration("5y").is_err());
    }
}
