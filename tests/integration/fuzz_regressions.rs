//! Replays what fuzzing found (`fuzz/regressions/TARGET/*`, one file per input that once
//! crashed or hung a target) and the fixtures the fuzz corpora are seeded from, through the
//! same entry points the fuzz targets call (`aihunt::fuzzing`), without the scan's per-record
//! panic guard: any panic fails the test.

use std::path::{Path, PathBuf};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walk(dir);
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p)
            } else {
                vec![p]
            }
        })
        .collect()
}

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn replay(target: &str, run: fn(&[u8]), seeds: &[&str]) -> usize {
    let mut inputs = files_in(&root(&format!("fuzz/regressions/{target}")));
    for s in seeds {
        inputs.extend(files_in(&root(s)).into_iter().filter(|p| p.extension().is_none_or(|e| e != "gz")));
    }
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{target} panicked on {}", path.display());
    }
    inputs.len()
}

#[test]
fn log_file_inputs_that_once_failed_and_every_fixture_are_read_without_panic() {
    let n = replay("log_file", aihunt::fuzzing::log_file, &["fixtures/samples", "fixtures/malformed", "fixtures/detections"]);
    assert!(n > 20, "only {n} inputs replayed");
}

#[test]
fn prompt_text_inputs_that_once_failed_are_matched_without_panic() {
    let n = replay("prompt_text", aihunt::fuzzing::prompt_text, &["fixtures/detections/content"]);
    assert!(n > 0);
}

#[test]
fn rule_file_inputs_that_once_failed_and_every_rule_file_load_without_panic() {
    let n = replay("rule_file", aihunt::fuzzing::rule_file, &["rules", "fixtures/rules"]);
    assert!(n > 10, "only {n} inputs replayed");
}
