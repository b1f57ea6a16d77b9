//! Input: which files a scan reads (a sorted, deterministic walk), how each is opened
//! (gzip detected by its magic bytes, multi-member), and how its lines become frames.

pub mod frame;
pub mod lines;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::bufread::MultiGzDecoder;

/// One input to read.
#[derive(Debug, Clone)]
pub struct InputSource {
    /// The path as the user gave it, joined with what the walk found below it; `-` for stdin.
    pub display: Arc<str>,
    pub location: Location,
    /// Where an incremental scan resumes: (stream offset, lines before it).
    pub resume: Option<(u64, u64)>,
}

#[derive(Debug, Clone)]
pub enum Location {
    Stdin,
    File(PathBuf),
}

/// An input named on the command line that could not be listed or opened.
#[derive(Debug)]
pub struct InputError {
    pub path: String,
    pub error: io::Error,
}

/// A directory entry a walk did not read, so the run can say so instead of losing it silently.
#[derive(Debug, Clone)]
pub struct SkippedEntry {
    pub path: String,
    pub why: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A symlink below a walked directory, without `--follow`.
    Symlink,
    /// A FIFO, socket or device: reading one could block forever or never end.
    NotRegular,
}

/// What the command-line paths expand to.
#[derive(Debug, Default)]
pub struct Expansion {
    pub sources: Vec<InputSource>,
    /// Paths that could not be listed or do not exist.
    pub errors: Vec<InputError>,
    pub skipped: Vec<SkippedEntry>,
}

/// Expands the command-line paths into inputs: files as given, directories walked in sorted
/// order, `-` (or no path at all) as stdin. Symlinks below a directory are followed only with
/// `follow` (a path named on the command line is always followed, as in ripgrep).
pub fn expand(paths: &[PathBuf], follow: bool) -> Expansion {
    let mut found = Expansion::default();
    if paths.is_empty() {
        found.sources.push(InputSource { display: Arc::from("-"), location: Location::Stdin, resume: None });
    }
    for path in paths {
        if path.as_os_str() == "-" {
            found.sources.push(InputSource { display: Arc::from("-"), location: Location::Stdin, resume: None });
            continue;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => walk(path, follow, &mut found),
            Ok(_) => found.sources.push(InputSource { display: display(path), location: Location::File(path.clone()), resume: None }),
            Err(error) => found.errors.push(InputError { path: path.display().to_string(), error }),
        }
    }
    found
}

fn walk(root: &Path, follow: bool, found: &mut Expansion) {
    for entry in walkdir::WalkDir::new(root).follow_links(follow).sort_by_file_name() {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                found.sources.push(InputSource { display: display(e.path()), location: Location::File(e.into_path()), resume: None })
            }
            Ok(e) if e.file_type().is_dir() => {}
            Ok(e) => {
                let why = if e.path_is_symlink() { SkipReason::Symlink } else { SkipReason::NotRegular };
                found.skipped.push(SkippedEntry { path: e.path().display().to_string(), why });
            }
            Err(err) => {
                let path = err.path().map_or_else(|| root.display().to_string(), |p| p.display().to_string());
                // A loop or a dangling link under --follow keeps walkdir's message, which names it.
                let error = io::Error::from(err);
                found.errors.push(InputError { path, error });
            }
        }
    }
}

fn display(path: &Path) -> Arc<str> {
    Arc::from(path.to_string_lossy().as_ref())
}

/// About how many bytes reading `sources` will give, for choices that pay off only on small
/// inputs; `None` when one is standard input. A `.gz` file counts ten times its size, about
/// what JSON logs compress by; resumed files count what is left.
pub fn expected_bytes(sources: &[InputSource]) -> Option<u64> {
    let mut total = 0u64;
    for source in sources {
        let Location::File(path) = &source.location else { return None };
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        // The resume offset counts bytes of the decompressed stream.
        let readable = if gz { size.saturating_mul(10) } else { size };
        total = total.saturating_add(readable.saturating_sub(source.resume.map_or(0, |(offset, _)| offset)));
    }
    Some(total)
}

/// Opens an input for reading, decompressing it when it starts with the gzip magic bytes.
pub fn open(source: &InputSource) -> io::Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = match &source.location {
        Location::Stdin => Box::new(io::stdin()),
        Location::File(p) => {
            crate::faults::check_open(p)?;
            Box::new(WatchedFile::open(p)?)
        }
    };
    // Peek at the first two bytes and put them back in front: the line reader reads big
    // blocks straight from the file, where a buffered reader in between copied every byte once
    // more.
    let mut raw = raw;
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let whole = io::Cursor::new(head[..got].to_vec()).chain(raw);
    if head[..got] == [0x1f, 0x8b] {
        // MultiGzDecoder: `cat a.gz b.gz` is valid gzip, and GzDecoder silently stops after
        // the first member.
        Ok(Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 20, whole))))
    } else {
        Ok(Box::new(whole))
    }
}

/// A file that notices when it shrinks while being read: a log rotated in place
/// (copytruncate) or overwritten mid-scan would otherwise end early and look like a complete
/// scan. Growth is not an error (lines appended before the end are read), and a file deleted
/// mid-scan is still read whole through its open descriptor.
struct WatchedFile {
    file: File,
    size_at_open: u64,
    read: u64,
    shrink_reported: bool,
    pause_at_first_read: Option<PathBuf>,
}

impl WatchedFile {
    fn open(path: &Path) -> io::Result<WatchedFile> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        // Pipes and devices have no meaningful size to compare with.
        let size_at_open = if meta.is_file() { meta.len() } else { 0 };
        let pause_at_first_read = crate::faults::pauses(path).then(|| path.to_owned());
        Ok(WatchedFile { file, size_at_open, read: 0, shrink_reported: false, pause_at_first_read })
    }
}

impl Read for WatchedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read += n as u64;
        if n > 0 {
            if let Some(path) = self.pause_at_first_read.take() {
                crate::faults::pause(&path);
            }
        } else if !buf.is_empty() && self.read < self.size_at_open && !self.shrink_reported {
            self.shrink_reported = true;
            let now = self.file.metadata().map_or_else(|_| "an unknown size".to_owned(), |m| format!("{} bytes", m.len()));
            return Err(io::Error::other(format!(
                "the file shrank while it was read ({} bytes when opened, {now} now: truncated or rotated in place); \
                 nothing after byte {} was read",
                self.size_at_open, self.read
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_bytes_counts_what_is_left_to_read() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, gz) = (dir.path().join("a.jsonl"), dir.path().join("b.json.GZ"));
        std::fs::write(&plain, vec![b'x'; 1000]).unwrap();
        std::fs::write(&gz, vec![b'x'; 100]).unwrap();
        let source = |path: &Path, resume| InputSource { display: display(path), location: Location::File(path.to_owned()), resume };
        assert_eq!(expected_bytes(&[source(&plain, None), source(&gz, None)]), Some(2000), "gzip counts ten times its size");
        assert_eq!(expected_bytes(&[source(&plain, Some((600, 3)))]), Some(400), "a resumed file counts what is left");
        assert_eq!(expected_bytes(&[source(&plain, Some((5000, 3)))]), Some(0));
        let stdin = InputSource { display: Arc::from("-"), location: Location::Stdin, resume: None };
        assert_eq!(expected_bytes(&[source(&plain, None), stdin]), None, "standard input: unknown");
    }
}
