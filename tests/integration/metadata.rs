//! Metadata and control-plane rules: intel lists (exact and masked callers), user agents,
//! control-plane operations, and one alert per operation or caller rather than per event.

use serde_json::Value;

use crate::util::*;

fn scan_intel(path: &str) -> Vec<Value> {
    let r = run(&["scan", "-q", "--intel", "fixtures/intel", path]);
    assert_ne!(r.code, 2, "{}", r.stderr);
    r.ndjson()
}

fn by_rule<'a>(alerts: &'a [Value], id: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["detectorId"] == id).collect()
}

#[test]
fn intel_lists_match_exact_and_masked_callers() {
    let gw = scan_intel("fixtures/samples/insights-logs-gatewaylogs");
    let ip = by_rule(&gw, "META-IP-001");
    assert_eq!(ip.len(), 1, "one alert per caller and day, not one per request");
    assert_eq!(ip[0]["additionalData"]["alertType"], "AI.Azure_AccessFromSuspiciousIP");
    assert_eq!(ip[0]["severity"], "high");
    assert_eq!(ip[0]["additionalData"]["matchedField"]["value"], "203.0.113.66");

    let rr = scan_intel("fixtures/samples/insights-logs-requestresponse");
    let masked = by_rule(&rr, "META-IP-002");
    assert!(!masked.is_empty());
    assert_eq!(masked[0]["severity"], "low", "a masked /24 match is weaker");
    assert!(masked[0]["additionalData"]["matchedField"]["value"].as_str().unwrap().contains("masked"));
    assert!(by_rule(&rr, "META-TOR-002").iter().all(|a| a["additionalData"]["alertType"] == "AI.Azure_AccessFromAnonymizedIP"));
}

#[test]
fn without_intel_only_the_embedded_user_agent_list_applies() {
    let r = run(&["scan", "-q", "fixtures/samples/insights-logs-gatewaylogs"]);
    let alerts = r.ndjson();
    assert!(by_rule(&alerts, "META-IP-001").is_empty());
    assert!(alerts.iter().all(|a| !a["detectorId"].as_str().unwrap().starts_with("META-TOR")));
}

#[test]
fn user_agent_patterns_from_the_intel_folder() {
    // fixtures/intel adds a regex for old python-requests versions.
    let alerts = scan_intel("fixtures/samples/insights-logs-gatewaylogs");
    let ua = by_rule(&alerts, "META-UA-001");
    assert_eq!(ua.len(), 1);
    assert_eq!(ua[0]["additionalData"]["userAgent"], "python-requests/2.32.3");
}

#[test]
fn a_bad_intel_line_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suspicious-ips.txt"), "192.0.2.1\nnot-an-address\n").unwrap();
    let r = run(&["scan", "--intel", dir.path().to_str().unwrap(), "fixtures/samples/app"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("suspicious-ips.txt:2"), "{}", r.stderr);
}

#[test]
fn control_plane_start_and_success_make_one_alert() {
    let r = run(&["scan", "fixtures/samples/insights-activity-logs"]);
    let alerts = r.ndjson();
    let list_keys = by_rule(&alerts, "CP-LISTKEYS-001");
    assert_eq!(list_keys.len(), 1, "Start and Success of one listKeys are one alert");
    assert!(r.stderr.contains("1 duplicate alert(s) not written again"), "{}", r.stderr);
    assert_eq!(list_keys[0]["category"], "CredentialAccess");
    assert!(list_keys[0]["title"].as_str().unwrap().starts_with("Account keys listed on resource CONTOSO-AOAI by mallory@contoso.example"));
    let rai = by_rule(&alerts, "CP-RAI-DELETE-001");
    assert_eq!(rai.len(), 1);
    assert_eq!(rai[0]["severity"], "high");
    assert_eq!(rai[0]["category"], "DefenseEvasion");
    assert_eq!(by_rule(&alerts, "CP-DIAG-DELETE-001").len(), 1);
    let user = rai[0]["evidence"].as_array().unwrap().iter().find(|e| e["@odata.type"] == "#microsoft.graph.security.userEvidence").unwrap();
    assert_eq!(user["userAccount"]["userPrincipalName"], "mallory@contoso.example");
}

#[test]
fn every_control_plane_shape_is_covered() {
    for (path, rule) in [
        ("fixtures/samples/rest/activity-log-list.json", "CP-RAI-WRITE-001"),
        ("fixtures/samples/log-analytics/AzureActivity.jsonl", "CP-LISTKEYS-001"),
        ("fixtures/samples/eventhub/activity-records.json", "CP-REGENKEY-001"),
        ("fixtures/samples/insights-logs-audit", "CP-AUDIT-LISTKEY-001"),
    ] {
        let alerts = run(&["scan", "-q", path]).ndjson();
        assert_eq!(by_rule(&alerts, rule).len(), 1, "{path}: {rule}");
    }
}
