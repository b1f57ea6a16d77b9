//! Rules as data: loading, validation, the keyword proof, examples, selection flags.

use crate::util::*;

#[test]
fn the_embedded_pack_is_valid_and_every_example_passes() {
    // This is what `cargo test` guarantees about the shipped rules: each one loads, its
    // keywords provably cover its pattern, and its own match / no_match examples behave.
    let sources = aihunt::rules::load::embedded_sources();
    let (set, errors) = aihunt::rules::load::compile(&sources);
    assert!(errors.is_empty(), "rule errors: {errors:?}");
    assert!(set.rules.len() >= 40, "only {} rules", set.rules.len());
    let (ran, failures) = aihunt::rules::validate::run_examples(&set);
    assert!(ran >= 2 * set.rules.len(), "{ran} examples for {} rules", set.rules.len());
    assert!(failures.is_empty(), "failing examples: {failures:#?}");
}

#[test]
fn rules_validate_reports_ok_for_the_default_pack() {
    let r = run(&["rules", "validate"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout_str(), r.stderr);
    assert!(r.stdout_str().contains("0 rejected"), "{}", r.stdout_str());
    assert!(r.stdout_str().contains(" 0 failed"), "{}", r.stdout_str());
}

#[test]
fn every_bad_rule_is_reported_with_file_id_and_reason() {
    let cases = [
        ("unknown-field.toml", None, "unknown field `sevrity`"),
        ("bad-regex.toml", Some("BAD-REGEX-001"), "pattern:"),
        // Allow patterns compile on first use; their syntax is still checked when rules load.
        ("bad-allow.toml", Some("BAD-ALLOW-001"), "allow pattern:"),
        ("keyword-hides-match.toml", Some("BAD-KEYWORD-001"), "prefilter would hide it"),
        ("no-examples.toml", Some("BAD-EXAMPLES-001"), "needs [rule.examples]"),
        ("unknown-threat.toml", Some("BAD-THREAT-001"), "unknown threat \"prompt_hacking\""),
        ("failing-example.toml", Some("BAD-EXAMPLE-RUN-001"), "should match but did not"),
        ("not-toml.toml", None, "not-toml.toml"),
        ("behavior-stray-field.toml", Some("BAD-BEHAVIOR-001"), "`learning` does not apply to detector attempt_burst"),
        ("behavior-unknown-detector.toml", Some("BAD-BEHAVIOR-002"), "unknown detector \"sudden_silence\""),
    ];
    for (file, id, reason) in cases {
        let path = format!("fixtures/rules/invalid/{file}");
        let r = run(&["rules", "validate", &path]);
        let out = r.stdout_str();
        assert_eq!(r.code, 2, "{file} should fail validation: {out}");
        assert!(out.contains(&path), "{file}: the message must name the file: {out}");
        if let Some(id) = id {
            assert!(out.contains(id), "{file}: the message must name rule {id}: {out}");
        }
        assert!(out.contains(reason), "{file}: expected {reason:?} in: {out}");
    }
}

#[test]
fn duplicate_ids_across_files_are_rejected() {
    let r = run(&["rules", "test", "--rules", "fixtures/rules/invalid/duplicate-id.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout_str().contains("rule JB-OVERRIDE-001: duplicate id (first defined in <embedded>/jailbreak.toml)"), "{}", r.stdout_str());
}

#[test]
fn scan_refuses_invalid_rules_unless_told_to_skip_them() {
    let r = run(&["scan", "--rules", "fixtures/rules/invalid/bad-regex.toml", "fixtures/samples/app"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad-regex.toml: rule BAD-REGEX-001"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing is scanned with a broken rule pack");
    let skip = run(&["scan", "-q", "--skip-invalid-rules", "--rules", "fixtures/rules/invalid/bad-regex.toml", "fixtures/samples/app"]);
    assert_eq!(skip.code, 1, "{}", skip.stderr);
    assert!(!skip.ndjson().is_empty());
}

#[test]
fn scan_with_zero_rules_is_an_error() {
    let r = run(&["scan", "--no-default-rules", "fixtures/samples/app"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no rules to run"), "{}", r.stderr);
}

#[test]
fn custom_rules_folder_adds_detections() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("app.jsonl");
    std::fs::write(&input, "{\"messages\":[{\"role\":\"user\",\"content\":\"Draft the press release for Project Bluefin.\"}]}\n").unwrap();
    let r = run(&["scan", "-q", "--rules", "fixtures/rules/valid", input.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let alerts = r.ndjson();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["detectorId"], "CONTOSO-CODENAME-001");
    assert_eq!(alerts[0]["additionalData"]["threat"], "sensitive_data");
    // Only the custom rule, nothing from the default pack.
    let only = run(&["scan", "-q", "--no-default-rules", "--rules", "fixtures/rules/valid", "fixtures/samples/app"]);
    assert_eq!(only.code, 0, "{}", only.stderr);
}

#[test]
fn rule_selection_flags() {
    let all = run(&["scan", "-q", "fixtures/samples"]).ndjson();
    assert!(all.iter().any(|a| a["detectorId"] == "JB-OVERRIDE-001"));
    let without = run(&["scan", "-q", "--exclude-rule", "JB-OVERRIDE-001", "fixtures/samples"]).ndjson();
    assert!(without.iter().all(|a| !a["additionalData"]["matchedRules"].as_array().unwrap().contains(&"JB-OVERRIDE-001".into())));
    let only = run(&["scan", "-q", "--rule", "AZ-JAILBREAK-BLOCKED", "fixtures/samples"]).ndjson();
    assert!(!only.is_empty());
    assert!(only.iter().all(|a| a["detectorId"] == "AZ-JAILBREAK-BLOCKED"));
    let high = run(&["scan", "-q", "--min-severity", "high", "fixtures/samples"]).ndjson();
    assert!(high.iter().all(|a| a["severity"] == "high"), "{high:?}");
    let typo = run(&["scan", "--rule", "NO-SUCH-RULE", "fixtures/samples"]);
    assert_eq!(typo.code, 2, "a selection that leaves no rules is an error");
    assert!(typo.stderr.contains("no rule has the id NO-SUCH-RULE"), "{}", typo.stderr);
}

#[test]
fn rules_list_formats() {
    let table = run(&["rules", "list"]).stdout_str();
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("JB-DAN-001"));
    let json = run(&["rules", "list", "--json"]).ndjson();
    assert!(json.iter().any(|r| r["id"] == "SMUG-HIDDEN-001" && r["alertType"] == "AI.Azure_ASCIISmuggling"));
    // Behaviour rules are listed with their detector and window.
    assert!(table.contains("WAL-DUP-001") && table.contains("duplicate_requests"), "{table}");
    assert!(json.iter().any(|r| r["id"] == "WAL-DUP-001" && r["detector"] == "duplicate_requests" && r["windowSeconds"] == 600));
    let keywords = run(&["rules", "list", "--keywords"]).stdout_str();
    let lines: Vec<&str> = keywords.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(lines, sorted, "keywords are sorted and unique");
    assert!(lines.contains(&"ignore") && lines.contains(&"disregard"));
}

#[test]
fn a_rule_without_keywords_gets_the_ones_its_pattern_implies_and_still_matches() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("wire.toml");
    std::fs::write(
        &rules,
        r#"[[rule]]
id = "CONTOSO-WIRE-001"
title = "Wire transfer to an e-mail address"
description = "Asks for a wire transfer to an address."
threat = "sensitive_data"
severity = "low"
surfaces = ["user_prompt"]
pattern = '''\b(?:wire|bank)\s+transfer\s+to\s+[\w.-]+@[\w-]+(?:\.[\w-]+)+'''
[rule.examples]
match = ["please wire transfer to payroll@contoso.example today"]
no_match = ["a wire transfer to the usual account"]
"#,
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    let listed = run(&["rules", "list", "--json", "--no-default-rules", "--rules", r]).ndjson();
    // Every match holds "transfer", "wire" or "bank", and "@": the most selective set is kept.
    assert_eq!(listed[0]["impliedKeywords"], serde_json::json!(["transfer"]), "{listed:?}");
    assert!(run(&["rules", "list", "--keywords", "--no-default-rules", "--rules", r]).stdout_str().lines().any(|k| k == "transfer"));
    let input = dir.path().join("chat.jsonl");
    std::fs::write(&input, "{\"messages\":[{\"role\":\"user\",\"content\":\"Bank  TRANSFER to ceo@contoso.example now\"}]}\n{\"messages\":[{\"role\":\"user\",\"content\":\"wire it to ceo@contoso.example\"}]}\n").unwrap();
    let alerts = run(&["scan", "-q", "--no-default-rules", "--rules", r, input.to_str().unwrap()]).ndjson();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["additionalData"]["sourceLine"], 1);
}
