//! Output destinations: stdout, or `-o FILE` replaced atomically (a temporary file in the same
//! folder, synced, then renamed) so a reader never sees half a report; `/dev/null`, pipes and
//! other non-regular files are written directly.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

pub enum Output {
    Stdout(BufWriter<io::Stdout>),
    Direct(BufWriter<File>),
    Atomic { tmp: BufWriter<NamedTempFile>, dest: PathBuf },
}

impl Output {
    /// Opens `path` for writing, or stdout when `path` is `None` or `-`.
    pub fn create(path: Option<&Path>) -> Result<Output> {
        let Some(path) = path.filter(|p| p.as_os_str() != "-") else {
            return Ok(Output::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())));
        };
        let is_special = std::fs::metadata(path).map(|m| !m.is_file()).unwrap_or(false);
        if is_special {
            let f = OpenOptions::new().write(true).open(path).with_context(|| format!("cannot open {}", path.display()))?;
            return Ok(Output::Direct(BufWriter::with_capacity(1 << 16, f)));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot create a temporary file next to {}", path.display()))?;
        Ok(Output::Atomic { tmp: BufWriter::with_capacity(1 << 16, tmp), dest: path.to_owned() })
    }

    /// Flushes and, for a file, moves it into place. Without `commit` (an error or a panic
    /// before it) the temporary file is removed and the destination is left untouched.
    pub fn commit(self) -> Result<()> {
        match self {
            Output::Stdout(mut w) => w.flush().context("cannot write to stdout"),
            Output::Direct(mut w) => w.flush().context("cannot write output"),
            Output::Atomic { tmp, dest } => {
                let tmp = tmp.into_inner().map_err(|e| e.into_error()).context("cannot write output")?;
                tmp.as_file().sync_all().context("cannot sync output")?;
                // NamedTempFile creates files 0600; a report is as readable as any new file.
                set_default_permissions(tmp.path());
                tmp.persist(&dest).with_context(|| format!("cannot move output into {}", dest.display()))?;
                Ok(())
            }
        }
    }
}

impl Output {
    /// Stdout is the caller's to fill; files and devices can run out of space (test seam).
    fn check(&self, len: usize) -> io::Result<()> {
        match self {
            Output::Stdout(_) => Ok(()),
            _ => crate::faults::check_write(len),
        }
    }
}

#[cfg(unix)]
fn set_default_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // 0644 as for a file created with the usual umask of 022.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644));
}

#[cfg(not(unix))]
fn set_default_permissions(_: &Path) {}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check(buf.len())?;
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::Direct(w) => w.write(buf),
            Output::Atomic { tmp, .. } => tmp.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.check(buf.len())?;
        match self {
            Output::Stdout(w) => w.write_all(buf),
            Output::Direct(w) => w.write_all(buf),
            Output::Atomic { tmp, .. } => tmp.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::Direct(w) => w.flush(),
            Output::Atomic { tmp, .. } => tmp.flush(),
        }
    }
}

/// Writes `bytes` to `path` atomically (used for `--stats` and `--rejects`).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut out = Output::create(Some(path))?;
    out.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    out.commit()
}
