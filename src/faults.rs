//! A test seam for I/O faults that cannot be provoked on a machine where tests run as root:
//! reading a file that is not readable, and a full disk. The integration tests set
//! `AIHUNT_INJECT_FAULTS` (`deny-read=PATTERN` makes opening any input whose path contains
//! PATTERN fail with "permission denied"; `disk-full-after=N` makes output writes fail once N
//! bytes were written; `;` separates them). Read once; without the variable nothing changes.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

#[derive(Debug, Default)]
struct Faults {
    deny_read: Vec<String>,
    disk_full_after: Option<u64>,
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
        } else if let Some(n) = part.strip_prefix("disk-full-after=") {
            f.disk_full_after = n.parse().ok();
        }
    }
    f
}

/// Fails like an unreadable file when the seam says so.
pub fn check_open(path: &std::path::Path) -> io::Result<()> {
    let f = faults();
    if !f.deny_read.is_empty() && f.deny_read.iter().any(|p| path.to_string_lossy().contains(p.as_str())) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "Permission denied (os error 13, injected)"));
    }
    Ok(())
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
        let f = parse("deny-read=secret; disk-full-after=100");
        assert_eq!(f.deny_read, vec!["secret".to_owned()]);
        assert_eq!(f.disk_full_after, Some(100));
        assert!(parse("").deny_read.is_empty());
    }
}
