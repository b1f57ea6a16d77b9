//! Alert output formats. Each alert is serialised on a worker thread (`encode`), and the
//! consuming thread only adds the framing (`begin`, separators, `finish`), so output streams in
//! input order and only the JSON envelopes need closing.

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::alert::{Alert, AlertOut};
use crate::report::terminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One alert object per line.
    Ndjson,
    /// The Graph list envelope: `{"value":[...]}`.
    Xdr,
    /// One row per alert, columns named like Defender XDR's AlertInfo/AlertEvidence tables.
    Csv,
    /// A JSON array of flat rows for a Microsoft Sentinel custom table (Logs Ingestion API).
    Sentinel,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "ndjson" => Format::Ndjson,
            "xdr" => Format::Xdr,
            "csv" => Format::Csv,
            "sentinel" => Format::Sentinel,
            _ => return None,
        })
    }
}

/// CSV columns (DESIGN §5).
pub const CSV_COLUMNS: &[&str] = &[
    "Timestamp",
    "AlertId",
    "Title",
    "Severity",
    "Category",
    "AttackTechniques",
    "Threat",
    "AlertType",
    "DetectorId",
    "Surface",
    "PromptEvidence",
    "RemoteIP",
    "AccountObjectId",
    "AccountUpn",
    "UserAgent",
    "Url",
    "ResourceId",
    "Deployment",
    "Model",
    "CorrelationId",
    "SourceFile",
    "SourceLine",
    "IncidentId",
];

/// Serialises one alert in `format`, without framing.
pub fn encode(format: Format, a: &AlertOut) -> Vec<u8> {
    match format {
        Format::Ndjson | Format::Xdr => terminal::json_inert(serde_json::to_string(&a.alert).unwrap_or_default()),
        Format::Sentinel => terminal::json_inert(serde_json::to_string(&sentinel_row(a)).unwrap_or_default()),
        Format::Csv => csv_row(a),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("")
}

/// The first evidence value of a given kind.
fn evidence_field(a: &Alert, odata: &str, path: &[&str]) -> String {
    let Some((first, rest)) = path.split_first() else { return String::new() };
    a.evidence
        .iter()
        .filter(|e| e.odata_type == odata)
        .filter_map(|e| e.fields.get(*first))
        .map(|v| str_at(v, rest).to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

fn flat(a: &AlertOut) -> Vec<(&'static str, String)> {
    let v = &a.alert;
    let ad = |key: &str| v.additional_data.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let remote_ip = {
        let ip = evidence_field(v, "#microsoft.graph.security.ipEvidence", &["ipAddress"]);
        if ip.is_empty() {
            ad("callerIp")
        } else {
            ip
        }
    };
    vec![
        ("Timestamp", v.first_activity_date_time.clone()),
        ("AlertId", a.meta.id.clone()),
        ("Title", a.meta.title.clone()),
        ("Severity", a.meta.severity.as_str().to_owned()),
        ("Category", v.category.clone()),
        ("AttackTechniques", v.mitre_techniques.join(";")),
        ("Threat", a.meta.threat.as_str().to_owned()),
        ("AlertType", ad("alertType")),
        ("DetectorId", v.detector_id.clone()),
        ("Surface", ad("surface")),
        ("PromptEvidence", ad("promptEvidence")),
        ("RemoteIP", remote_ip),
        ("AccountObjectId", evidence_field(v, "#microsoft.graph.security.userEvidence", &["userAccount", "azureAdUserId"])),
        ("AccountUpn", evidence_field(v, "#microsoft.graph.security.userEvidence", &["userAccount", "userPrincipalName"])),
        ("UserAgent", ad("userAgent")),
        ("Url", ad("url")),
        ("ResourceId", evidence_field(v, "#microsoft.graph.security.azureResourceEvidence", &["resourceId"])),
        ("Deployment", ad("deployment")),
        ("Model", ad("model")),
        ("CorrelationId", ad("correlationId")),
        ("SourceFile", ad("sourceFile")),
        ("SourceLine", v.additional_data.get("sourceLine").and_then(Value::as_u64).map(|n| n.to_string()).unwrap_or_default()),
        ("IncidentId", a.meta.incident.id.clone()),
    ]
}

/// OWASP's rule for CSV cells a spreadsheet would run as formulas: prefix with `'`.
pub fn neutralise_formula(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

fn csv_row(a: &AlertOut) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    // Cells are shown escaped (no raw control or invisible characters), then made inert for
    // spreadsheets.
    let cells: Vec<String> = flat(a).into_iter().map(|(_, v)| neutralise_formula(&terminal::escape(&v))).collect();
    let _ = w.write_record(&cells);
    w.into_inner().unwrap_or_default()
}

fn sentinel_row(a: &AlertOut) -> Value {
    let mut row = serde_json::Map::new();
    for (k, v) in flat(a) {
        row.insert(k.to_owned(), json!(v));
    }
    row.insert("TimeGenerated".into(), json!(a.alert.created_date_time));
    row.insert("Description".into(), json!(a.alert.description));
    row.insert("MatchedRules".into(), a.alert.additional_data.get("matchedRules").cloned().unwrap_or(Value::Null));
    row.insert("Alert".into(), serde_json::to_value(&a.alert).unwrap_or(Value::Null));
    Value::Object(row)
}

/// Writes encoded alerts with the format's framing.
pub struct AlertWriter {
    format: Format,
    count: u64,
}

impl AlertWriter {
    pub fn new(format: Format) -> AlertWriter {
        AlertWriter { format, count: 0 }
    }

    pub fn begin(&self, w: &mut impl Write) -> io::Result<()> {
        match self.format {
            Format::Xdr => w.write_all(b"{\"value\":["),
            Format::Sentinel => w.write_all(b"["),
            Format::Csv => {
                let mut c = csv::WriterBuilder::new().from_writer(Vec::new());
                c.write_record(CSV_COLUMNS).map_err(io::Error::other)?;
                w.write_all(&c.into_inner().map_err(|e| io::Error::other(e.to_string()))?)
            }
            Format::Ndjson => Ok(()),
        }
    }

    pub fn write(&mut self, w: &mut impl Write, encoded: &[u8]) -> io::Result<()> {
        match self.format {
            Format::Xdr | Format::Sentinel => {
                w.write_all(if self.count == 0 { b"\n" } else { b",\n" })?;
                w.write_all(encoded)?;
            }
            Format::Ndjson => {
                w.write_all(encoded)?;
                w.write_all(b"\n")?;
            }
            Format::Csv => w.write_all(encoded)?,
        }
        self.count += 1;
        Ok(())
    }

    pub fn finish(&self, w: &mut impl Write) -> io::Result<()> {
        match self.format {
            Format::Xdr => w.write_all(b"\n]}\n"),
            Format::Sentinel => w.write_all(b"\n]\n"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(neutralise_formula("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise_formula("-2+3"), "'-2+3");
        assert_eq!(neutralise_formula("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise_formula("\tcmd"), "'\tcmd");
        assert_eq!(neutralise_formula("plain"), "plain");
    }
}
