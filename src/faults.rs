//! A test seam for I/O faults that cannot be provoked on a machine where tests run as root:
//! reading a file that is not readable, and a full disk, plus the timing that a file changed
//! mid-scan needs. The integration tests set `AIHUNT_INJECT_FAULTS`:
//! - `deny-read=PATTERN` makes opening any input whose path contains PATTERN fail with
//!   "permission denied";
//! - `disk-full-after=N` makes output writes fail once N bytes were written;
//! - `pause-read=PATTERN` stops the reader after its first read of such an input, creates
//!   `PATH.paused`, and goes on once the test removed it (after truncating, deleting or
//!   appending to the file for real), so "changed while being read" is not a race.
//!
//! `;` separates them. Read once; without the variable nothing changes.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

#[derive(Debug, Default)]
struct Faults {
    deny_read: Vec<String>,
    disk_full_after: Option<u64>,
    pause_read: Vec<String>,
}

fn faults() -> &'static Faults {
    static FAULTS: OnceLock<Faults> = OnceLock::new();
    FAULTS.get_or_init(|| std::env::var("AIHUNT_INJECT_FAULTS").map(|v| parse(&v)).unwrap_or_default())
}

fn parse(spec: &str) -> Faults {
    let mut f = Faults::default();
    for part in spec.split(';').map(str::trim) {
        if let Some(p) = part.strip_prefix("deny-read=") {
            f.deny_read.push(p.to_owned());
        } else if let Some(p) = part.strip_prefix("pause-read=") {
            f.pause_read.push(p.to_owned());
        } else if let Some(n) = part.strip_prefix("disk-full-after=") {
            f.disk_full_after = n.parse().ok();
        }
    }
    f
}

/// Fails like an unreadable file when the seam says so.
pub fn check_open(path: &std::path::Path) -> io::Result<()> {
    let f = faults();
    if matches(&f.deny_read, path) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "Permission denied (os error 13, injected)"));
    }
    Ok(())
}

fn matches(patterns: &[String], path: &std::path::Path) -> bool {
    !patterns.is_empty() && patterns.iter().any(|p| path.to_string_lossy().contains(p.as_str()))
}

/// True when the seam wants the reader of `path` to stop after its first read.
pub fn pauses(path: &std::path::Path) -> bool {
    matches(&faults().pause_read, path)
}

/// Waits, up to a minute, for the test to remove `PATH.paused`.
pub fn pause(path: &std::path::Path) {
    let mut marker = path.as_os_str().to_owned();
    marker.push(".paused");
    let marker = std::path::PathBuf::from(marker);
    if std::fs::write(&marker, b"").is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while marker.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Counts output bytes; fails like a full disk once the seam's budget is spent.
pub fn check_write(len: usize) -> io::Result<()> {
    let Some(limit) = faults().disk_full_after else { return Ok(()) };
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    let before = WRITTEN.fetch_add(len as u64, Ordering::Relaxed);
    if before + len as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::StorageFull, "No space left on device (os error 28, injected)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_names_each_fault() {
        let f = parse("deny-read=secret; disk-full-after=100;pause-read=big");
        assert_eq!(f.deny_read, vec!["secret".to_owned()]);
        assert_eq!(f.pause_read, vec!["big".to_owned()]);
        assert_eq!(f.disk_full_after, Some(100));
        assert!(parse("").deny_read.is_empty());
    }
}
