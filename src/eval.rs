//! `aihunt eval DIR`: measures detection quality on labelled corpora (JSON Lines with `id`,
//! `text`, `label`). Each text is embedded in a realistic API Management gateway record (as the
//! user's prompt, or as the model's response for secret and personal-data corpora), read back
//! through the real adapters, and scanned with the loaded rules. The report gives, per file and
//! label, how many texts raised an alert: recall for attack labels, the false-positive rate for
//! `benign`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::json;

use crate::app::Outcome;
use crate::cli::RuleArgs;
use crate::detect::Engine;
use crate::record::{parse_frame, ParseOptions};

#[derive(Deserialize)]
struct Sample {
    id: String,
    text: String,
    label: String,
}

#[derive(Default)]
struct Tally {
    total: u64,
    alerted: u64,
    by_threat: BTreeMap<String, u64>,
    missed: Vec<String>,
}

pub fn run(dir: &Path, rules: &RuleArgs, as_json: bool, show_missed: usize) -> Result<Outcome> {
    let set = crate::rules_cmd::load_rules(rules, true)?;
    let engine = Engine::new(Arc::new(set), Arc::new(crate::intel::Intel::defaults()));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut report: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let file_name: Arc<str> = Arc::from("<eval>");
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let in_response = name.starts_with("secrets") || name.starts_with("pii");
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let Ok(sample) = serde_json::from_str::<Sample>(line) else { continue };
            let record_line = embed(&sample, in_response);
            let parsed = parse_frame(&record_line, &file_name, i as u64 + 1, 0, ParseOptions::default());
            let mut threats: Vec<String> = Vec::new();
            for r in &parsed.records {
                for f in engine.findings(r) {
                    threats.push(f.threat.as_str().to_owned());
                }
            }
            threats.sort();
            threats.dedup();
            // Secret corpora carry one label per gitleaks rule; report them as one.
            let label = if sample.label.starts_with("secret:") { "secret".to_owned() } else { sample.label.clone() };
            let t = report.entry((name.clone(), label)).or_default();
            t.total += 1;
            if threats.is_empty() {
                t.missed.push(sample.id);
            } else {
                t.alerted += 1;
                for th in threats {
                    *t.by_threat.entry(th).or_default() += 1;
                }
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if as_json {
        for ((file, label), t) in &report {
            let v = json!({"file": file, "label": label, "texts": t.total, "alerted": t.alerted,
                "rate": rate(t), "byThreat": t.by_threat, "missed": t.missed.iter().take(show_missed).collect::<Vec<_>>()});
            writeln!(out, "{v}")?;
        }
    } else {
        writeln!(out, "{:<16} {:<44} {:>6} {:>8} {:>7}  by threat", "file", "label", "texts", "alerted", "rate")?;
        for ((file, label), t) in &report {
            let threats: Vec<String> = t.by_threat.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(out, "{:<16} {:<44} {:>6} {:>8} {:>6.1}%  {}", file, label, t.total, t.alerted, rate(t) * 100.0, threats.join(", "))?;
            if show_missed > 0 && label != "benign" {
                for id in t.missed.iter().take(show_missed) {
                    writeln!(out, "    missed {id}")?;
                }
            }
        }
    }
    Ok(Outcome::Clean)
}

fn rate(t: &Tally) -> f64 {
    if t.total == 0 {
        0.0
    } else {
        t.alerted as f64 / t.total as f64
    }
}

/// A gateway log line whose request (or response) body carries the text.
fn embed(s: &Sample, in_response: bool) -> String {
    let request = if in_response {
        json!({"messages": [{"role": "user", "content": "Please answer the question in the attached ticket."}]})
    } else {
        json!({"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": s.text}]})
    };
    let response = if in_response {
        json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": s.text}}], "model": "gpt-4o-2024-08-06"})
    } else {
        json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "I can help with that."}}], "model": "gpt-4o-2024-08-06"})
    };
    json!({
        "time": "2026-11-24T10:00:00.0000000Z",
        "resourceId": "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-EVAL/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/EVAL-GW",
        "category": "GatewayLogs",
        "operationName": "Microsoft.ApiManagement/GatewayLogs",
        "callerIpAddress": "192.0.2.10",
        "correlationId": s.id,
        "properties": {
            "method": "POST",
            "url": "https://eval-gw.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
            "responseCode": 200,
            "requestBody": request.to_string(),
            "responseBody": response.to_string(),
        }
    })
    .to_string()
}
