//! The shipped fixtures' lines, for unit tests that run real records through a part.

/// Every line of the uncompressed files under each of `dirs` (relative to `fixtures/`), read
/// in a fixed order.
pub fn fixture_lines(dirs: &[&str]) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut dirs: Vec<_> = dirs.iter().map(|d| root.join(d)).collect();
    let mut lines = Vec::new();
    while let Some(dir) = dirs.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                lines.extend(text.lines().map(str::to_owned));
            }
        }
    }
    lines
}
