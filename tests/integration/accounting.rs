//! Every line is accounted for: parsed, rejected with file, line and reason, or blank.

use crate::util::*;

#[test]
fn every_fixture_accounts_for_every_physical_line() {
    for dir in ["samples", "malformed"] {
        for file in files_below(&fixture(dir)) {
            let path = file.to_str().unwrap();
            let (_, stats) = run_stats(&["scan", "-q", path]);
            assert_invariant(&stats);
            assert_eq!(
                n(&stats, "linesRead"),
                physical_lines(&file),
                "{path}: linesRead differs from the file's line count"
            );
        }
    }
}

#[test]
fn readme_sample_scan_succeeds_and_reads_everything() {
    let (r, stats) = run_stats(&["scan", "fixtures/samples"]);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    assert_invariant(&stats);
    assert_eq!(n(&stats, "linesRejected"), 0, "the samples must be clean: {}", r.stderr);
    assert_eq!(n(&stats, "filesFailed"), 0);
    assert_eq!(n(&stats, "filesRead"), files_below(&fixture("samples")).len() as u64);
    let kinds = stats["recordsByKind"].as_object().unwrap();
    for kind in ["resource_log", "activity_log", "gateway_log", "gateway_llm_log", "chat_exchange", "training_example", "otel_span"] {
        assert!(kinds.get(kind).and_then(|v| v.as_u64()).unwrap_or(0) > 0, "no {kind} records in the samples");
    }
    assert!(r.stderr.contains("lines"), "summary missing from stderr: {}", r.stderr);
}

#[test]
fn malformed_lines_are_reported_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let (r, stats) = run_stats(&["scan", "fixtures/malformed/mixed.jsonl", "--rejects", rejects.to_str().unwrap()]);
    assert_eq!(r.code, 0, "rejected lines are not errors: {}", r.stderr);
    assert_invariant(&stats);
    assert_eq!((n(&stats, "linesParsed"), n(&stats, "linesRejected"), n(&stats, "linesSkipped")), (3, 5, 2));
    assert_eq!(n(&stats, "linesRepairedUtf8"), 1);
    assert_eq!(n(&stats, "linesNulStripped"), 1);
    let by_reason = &stats["rejectedByReason"];
    assert_eq!(by_reason["invalid_json"], 1);
    assert_eq!(by_reason["not_an_object"], 2);
    assert_eq!(by_reason["unknown_shape"], 1);
    assert_eq!(by_reason["truncated_line"], 1);

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(u64, &str)> =
        lines.iter().map(|v| (v["sourceLine"].as_u64().unwrap(), v["reason"].as_str().unwrap())).collect();
    assert_eq!(
        summary,
        vec![
            (3, "invalid_json"),
            (4, "not_an_object"),
            (4, "not_an_object"),
            (4, "not_an_object"),
            (5, "not_an_object"),
            (6, "unknown_shape"),
            (10, "truncated_line"),
        ]
    );
    assert!(lines.iter().all(|v| v["sourceFile"] == "fixtures/malformed/mixed.jsonl"));
    // The unknown shape names the fields it saw, so the user can tell what it was.
    assert!(lines[5]["detail"].as_str().unwrap().contains("hello, answer"));
    // And the same messages reach stderr with file:line.
    assert!(r.stderr.contains("fixtures/malformed/mixed.jsonl:6: rejected (unknown_shape)"), "{}", r.stderr);
}

#[test]
fn truncated_gzip_scans_its_readable_prefix_then_exits_2() {
    let (r, stats) = run_stats(&["scan", "fixtures/malformed/truncated.json.gz"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("cannot read to the end"), "{}", r.stderr);
    assert_eq!(n(&stats, "filesFailed"), 1);
    assert!(n(&stats, "recordsParsed") >= 50, "the readable prefix was not scanned: {stats}");
    assert_invariant(&stats);
}

#[test]
fn trailing_garbage_after_gzip_members_is_an_error_after_the_records() {
    let (r, stats) = run_stats(&["scan", "fixtures/malformed/trailing-garbage.json.gz"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(n(&stats, "recordsParsed"), 4);
}

#[test]
fn a_missing_path_is_an_error_but_the_other_inputs_are_scanned() {
    let (r, stats) = run_stats(&["scan", "no/such/file.json", "fixtures/samples/eventhub"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no/such/file.json"), "{}", r.stderr);
    assert_eq!(n(&stats, "recordsParsed"), 3);
}

#[test]
fn unclosed_json_document_rejects_its_open_element_not_the_file() {
    let (r, stats) = run_stats(&["scan", "fixtures/malformed/unclosed-document.json"]);
    assert_ne!(r.code, 2, "a truncated document is not an input error: {}", r.stderr);
    assert_eq!(n(&stats, "recordsParsed"), 1);
    assert_eq!(stats["recordsRejectedByReason"]["truncated_line"], 1);
    assert_invariant(&stats);
}

#[test]
fn rejected_line_messages_are_capped_per_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.jsonl");
    std::fs::write(&path, "not json\n".repeat(25)).unwrap();
    let r = run(&["scan", path.to_str().unwrap(), "--max-reject-messages", "3"]);
    assert_eq!(r.stderr.matches("rejected (invalid_json)").count(), 3, "{}", r.stderr);
    assert!(r.stderr.contains("22 more rejected records not shown"), "{}", r.stderr);
    let quiet = run(&["scan", "-q", path.to_str().unwrap()]);
    assert_eq!(quiet.stderr, "", "-q prints only errors");
}

#[test]
fn terminal_escapes_in_file_names_and_details_are_neutralised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil\u{1b}[2J.jsonl");
    // The key holds ESC and BEL (as JSON escapes), and the rejection message names the keys.
    std::fs::write(&path, "{\"\\u001b]0;pwned\\u0007\":1}\n").unwrap();
    let r = run(&["scan", path.to_str().unwrap()]);
    assert!(!r.stderr.contains('\u{1b}'), "raw ESC reached stderr: {:?}", r.stderr);
    assert!(!r.stderr.contains('\u{7}'), "raw BEL reached stderr: {:?}", r.stderr);
    assert!(r.stderr.contains("\\u{1b}"), "{:?}", r.stderr);
}
