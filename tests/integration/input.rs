//! Input handling: containers detected by content, gzip, stdin, long lines, ordering,
//! determinism across thread counts, output files and pipes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use crate::util::*;

/// One RequestResponse line from the samples, to build synthetic inputs from.
fn sample_line(i: usize) -> String {
    let text = std::fs::read_to_string(files_below(&fixture("samples/insights-logs-requestresponse"))[0].clone()).unwrap();
    let line = text.lines().nth(1).unwrap();
    // Vary the correlation id so each record is distinct.
    line.replace("4c8b2d0f-1e3a-4b62-8f7c-8d9e0f1a2b3c", &format!("00000000-0000-4000-8000-{i:012}"))
}

fn write_temp(name: &str, contents: &[u8]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    let p = path.to_str().unwrap().to_owned();
    (dir, p)
}

#[test]
fn multi_member_gzip_is_read_to_the_end() {
    let recs = inspect("fixtures/samples/archive/requestresponse-2026-11-24T11.json.gz");
    assert_eq!(recs.len(), 4, "GzDecoder would stop after the first member's 2 records");
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let gz = std::fs::read(fixture("samples/archive/requestresponse-2026-11-24T11.json.gz")).unwrap();
    let (_d, p) = write_temp("PT1H.json", &gz);
    assert_eq!(inspect(&p).len(), 4);
}

#[test]
fn stdin_with_dash_or_no_path() {
    let input = format!("{}\n{}\n", sample_line(1), sample_line(2));
    for args in [vec!["inspect", "-q", "-"], vec!["inspect", "-q"]] {
        let r = run_with_stdin(&args, Some(input.as_bytes()));
        let recs = r.ndjson();
        assert_eq!(recs.len(), 2, "{}", r.stderr);
        assert_eq!(recs[0]["sourceFile"], "-");
        assert_eq!(recs[1]["sourceLine"], 2);
    }
}

#[test]
fn stdin_can_be_gzip() {
    let gz = std::fs::read(fixture("samples/archive/requestresponse-2026-11-24T11.json.gz")).unwrap();
    let r = run_with_stdin(&["inspect", "-q", "-"], Some(&gz));
    assert_eq!(r.ndjson().len(), 4);
}

#[test]
fn containers_records_value_array_and_pretty_documents() {
    let a = sample_line(1);
    let b = sample_line(2);
    let cases: Vec<(&str, String, Vec<(u64, Option<u64>)>)> = vec![
        ("records per line", format!("{{\"records\":[{a},{b}]}}\n{{\"records\":[{a}]}}\n"), vec![(1, Some(0)), (1, Some(1)), (2, Some(0))]),
        ("value wrapper", format!("{{\"value\":[{a},{b}],\"nextLink\":null}}\n"), vec![(1, Some(0)), (1, Some(1))]),
        ("array on one line", format!("[{a},{b}]\n"), vec![(1, Some(0)), (1, Some(1))]),
        ("array, one item per line", format!("[{a},\n{b}\n]\n"), vec![(1, None), (2, None)]),
        ("pretty records file", format!("{{\n  \"records\": [\n    {a},\n    {b}\n  ]\n}}\n"), vec![(3, None), (4, None)]),
        ("pretty value file", format!("{{\n\"value\": [\n{a}\n,\n{b}\n]}}"), vec![(3, None), (5, None)]),
    ];
    for (name, text, expected) in cases {
        let (_d, p) = write_temp("input.json", text.as_bytes());
        let (r, stats) = run_stats(&["inspect", "-q", &p]);
        let got: Vec<(u64, Option<u64>)> =
            r.ndjson().iter().map(|v| (v["sourceLine"].as_u64().unwrap(), v["indexInLine"].as_u64())).collect();
        assert_eq!(got, expected, "{name}: {}", r.stderr);
        assert_invariant(&stats);
        assert_eq!(n(&stats, "linesRejected"), 0, "{name}");
        assert_eq!(n(&stats, "linesRead"), text.lines().count() as u64, "{name}");
    }
}

#[test]
fn bom_crlf_and_blank_lines() {
    let text = format!("\u{feff}{}\r\n\r\n\n{}\r\n", sample_line(1), sample_line(2));
    let (_d, p) = write_temp("crlf.json", text.as_bytes());
    let (r, stats) = run_stats(&["inspect", "-q", &p]);
    assert_eq!(r.ndjson().len(), 2);
    assert_eq!((n(&stats, "linesParsed"), n(&stats, "linesSkipped")), (2, 2));
}

#[test]
fn over_long_line_is_rejected_and_the_next_line_still_read() {
    let huge = format!("{{\"category\":\"RequestResponse\",\"x\":\"{}\"}}", "A".repeat(3 << 20));
    let text = format!("{}\n{huge}\n{}\n", sample_line(1), sample_line(2));
    let (_d, p) = write_temp("long.json", text.as_bytes());
    let (r, stats) = run_stats(&["inspect", "-q", &p, "--max-line-bytes", "1048576"]);
    assert_eq!(r.ndjson().len(), 2);
    assert_eq!(stats["rejectedByReason"]["line_too_long"], 1);
    assert_invariant(&stats);
}

#[test]
fn output_order_and_bytes_do_not_depend_on_threads() {
    // Enough lines for several batches, spread over several files.
    let dir = tempfile::tempdir().unwrap();
    for f in 0..3 {
        let mut text = String::new();
        for i in 0..6000 {
            text.push_str(&sample_line(f * 10_000 + i));
            text.push('\n');
            if i % 997 == 0 {
                text.push_str("garbage line\n");
            }
        }
        std::fs::write(dir.path().join(format!("part-{f}.json")), text).unwrap();
    }
    let p = dir.path().to_str().unwrap();
    let one = run(&["inspect", "-q", "--threads", "1", p]);
    let four = run(&["inspect", "-q", "--threads", "4", p]);
    assert_eq!(one.code, 0);
    assert_eq!(one.stdout.len(), four.stdout.len());
    assert!(one.stdout == four.stdout, "inspect output differs between 1 and 4 threads");
    let recs = one.ndjson();
    assert_eq!(recs.len(), 18_000);
    // Input order: files in name order, lines ascending within each.
    let order: Vec<(String, u64)> = recs
        .iter()
        .map(|r| (r["sourceFile"].as_str().unwrap().to_owned(), r["sourceLine"].as_u64().unwrap()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}

#[test]
fn directories_are_walked_in_sorted_order_with_joined_paths() {
    let recs = inspect("fixtures/samples");
    let files: Vec<&str> = recs.iter().map(|r| r["sourceFile"].as_str().unwrap()).collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
    assert!(files[0].starts_with("fixtures/samples/app/"), "{}", files[0]);
    assert!(files.iter().any(|f| f.ends_with("/y=2026/m=11/d=24/h=10/m=00/PT1H.json")));
}

#[test]
fn symlinks_below_a_directory_are_reported_and_read_with_follow() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("linked.jsonl");
    std::fs::write(&target, sample_line(1) + "\n").unwrap();
    let (dir, _) = write_temp("plain.jsonl", (sample_line(2) + "\n").as_bytes());
    std::os::unix::fs::symlink(&target, dir.path().join("z-linked.jsonl")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("gone.jsonl"), dir.path().join("z-dangling.jsonl")).unwrap();
    let root = dir.path().to_str().unwrap();

    let (r, stats) = run_stats(&["inspect", root]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(n(&stats, "filesRead"), 1);
    assert_eq!(n(&stats, "entriesSkipped"), 2, "a skipped symlink is counted, never lost silently");
    assert!(r.stderr.contains("skipped 2 directory entries: 2 symlinks (pass --follow to read them)"), "{}", r.stderr);

    let (r, stats) = run_stats(&["inspect", "--follow", root]);
    assert_eq!(n(&stats, "filesRead"), 2, "the linked log is read with --follow");
    assert_eq!(n(&stats, "entriesSkipped"), 0);
    assert_eq!(r.code, 2, "a dangling link is an error once links are followed: {}", r.stderr);
    assert!(r.stderr.contains("z-dangling.jsonl"), "{}", r.stderr);
}

#[test]
fn a_fifo_in_a_directory_is_skipped_not_waited_on() {
    let (dir, _) = write_temp("plain.jsonl", (sample_line(3) + "\n").as_bytes());
    let fifo = dir.path().join("pipe.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let (r, stats) = run_stats(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(n(&stats, "filesRead"), 1);
    assert_eq!(n(&stats, "entriesSkipped"), 1);
    assert!(r.stderr.contains("1 FIFO, socket or device"), "{}", r.stderr);
}

#[test]
fn a_closed_stderr_does_not_turn_into_a_panic() {
    // `aihunt scan ... 2>&1 | head -1` closes stderr early; the exit code must stay the
    // documented one (1: alerts) rather than Rust's panic code 101.
    let mut child = aihunt()
        .args(["scan", "fixtures/samples", "-o", "/dev/null"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn output_file_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("records.ndjson");
    std::fs::write(&out, "old contents\n").unwrap();
    let r = run(&["inspect", "-q", "fixtures/samples/eventhub", "-o", out.to_str().unwrap()]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.is_empty());
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(!text.contains("old contents"));
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn closed_pipe_ends_quietly_with_success() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..50_000 {
        text.push_str(&sample_line(i));
        text.push('\n');
    }
    let path = dir.path().join("big.json");
    std::fs::write(&path, text).unwrap();
    let mut child = aihunt()
        .args(["inspect", "-q", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with('{'));
    // The reader is dropped here: the pipe closes like `| head -1`.
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_flags_exit_2() {
    assert_eq!(run(&["scan", "--threads", "0", "fixtures/samples"]).code, 2);
    assert_eq!(run(&["scan", "--no-such-flag"]).code, 2);
    assert_eq!(run(&["scan", "--kind", "nonsense", "x"]).code, 2);
}

#[test]
fn a_full_disk_is_an_error_not_a_quiet_success() {
    // /dev/full fails every write with ENOSPC, like a log volume that filled up mid-scan.
    for args in [
        &["scan", "fixtures/samples", "-q", "-o", "/dev/full"][..],
        &["scan", "fixtures/samples", "-q", "-o", "/dev/null", "--stats", "/dev/full"][..],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("No space left on device"), "{args:?}: {}", r.stderr);
    }
    let mut child = aihunt().args(["scan", "fixtures/samples", "-q"]).stdout(std::fs::File::create("/dev/full").unwrap()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(2), "stdout on a full disk: {err}");
}
