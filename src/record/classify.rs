//! Decides which record kind an object is, from the fields it has (DESIGN §2, log-schemas §8).
//!
//! Classification looks only at names and a few values, never guesses: an object that matches
//! no known shape is rejected as `unknown_shape` so the user can see it was not understood.

use std::borrow::Cow;

use super::json::{decode_str, elements, items, Obj};
use super::RecordKind;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    #[error("no known log shape has these fields: {0}")]
    Unknown(String),
}

/// Diagnostic-setting categories of Azure OpenAI / AI services accounts.
const RESOURCE_LOG_CATEGORIES: &[&str] = &["RequestResponse", "Audit", "Trace", "AzureOpenAIRequestUsage"];

/// Activity Log categories as the storage/Event Hubs shape writes them.
const ACTIVITY_CATEGORIES: &[&str] = &[
    "Administrative",
    "Write",
    "Delete",
    "Action",
    "Policy",
    "Security",
    "ServiceHealth",
    "ResourceHealth",
    "Alert",
    "Autoscale",
    "Recommendation",
];

pub fn classify(obj: &Obj<'_>) -> Result<RecordKind, ClassifyError> {
    if let Some(kind) = log_analytics_table(obj) {
        return Ok(kind);
    }
    let category = obj.text(&["category"]);
    let category = category.as_deref().unwrap_or("");
    let is = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(category));

    if is(RESOURCE_LOG_CATEGORIES) {
        return Ok(RecordKind::ResourceLog);
    }
    if is(&["GatewayLogs"]) {
        return Ok(RecordKind::GatewayLog);
    }
    if is(&["GatewayLlmLogs"]) {
        return Ok(RecordKind::GatewayLlmLog);
    }
    // The REST shape: localizable {value, localizedValue} objects and eventTimestamp.
    if obj.has("eventTimestamp") && (obj.has("operationName") || obj.has("authorization")) {
        return Ok(RecordKind::ActivityLog);
    }
    let resource_id = obj.text(&["resourceId"]).unwrap_or_default().to_ascii_uppercase();
    let has_identity = obj
        .get("identity")
        .and_then(Obj::from_raw)
        .is_some_and(|i| i.has("authorization") || i.has("claims"));
    if (is(ACTIVITY_CATEGORIES) || has_identity) && obj.has("operationName") {
        return Ok(RecordKind::ActivityLog);
    }
    if resource_id.contains("/PROVIDERS/MICROSOFT.APIMANAGEMENT/") && obj.has("properties") {
        let props = super::json::Nested::new(obj.get("properties"));
        if props.obj().is_some_and(|p| p.has("requestBody") || p.has("backendUrl") || p.has("apiId")) {
            return Ok(RecordKind::GatewayLog);
        }
    }
    if is_otel(obj) {
        return Ok(RecordKind::OtelSpan);
    }
    if let Some(kind) = app_shape(obj) {
        return Ok(kind);
    }
    Err(ClassifyError::Unknown(key_summary(obj)))
}

/// OpenTelemetry: OTLP/JSON batches, and spans or log records as console exporters print them.
fn is_otel(obj: &Obj<'_>) -> bool {
    obj.has("resourceSpans")
        || obj.has("resourceLogs")
        || obj.get("context").and_then(Obj::from_raw).is_some_and(|c| c.has("trace_id") || c.has("span_id"))
        || ((obj.has("traceId") || obj.has("trace_id")) && (obj.has("attributes") || obj.has("body")))
}

/// Keys a fine-tuning line may have besides its messages.
const TRAINING_KEYS: &[&str] = &["messages", "tools", "functions", "parallel_tool_calls"];

/// What applications write themselves: chat-completions requests and responses, dumps of
/// both, Batch API lines, fine-tuning examples.
fn app_shape(obj: &Obj<'_>) -> Option<RecordKind> {
    if obj.has("custom_id") && (obj.has("body") || obj.has("response") || obj.has("error")) {
        return Some(RecordKind::ChatExchange);
    }
    // Dumps hold the request and response as objects or as JSON strings; a streamed
    // response is kept as its server-sent-event text.
    let holders: Vec<(&str, super::json::Nested<'_>)> =
        ["request", "response", "result"].into_iter().map(|k| (k, super::json::Nested::new(obj.get(k)))).collect();
    let sub = |k: &str| holders.iter().find(|(name, _)| *name == k).and_then(|(_, h)| h.obj());
    let sse = obj.get("response").and_then(super::json::decode_str).is_some_and(|s| s.trim_start().starts_with("data:"));
    // An HTTP envelope logged around the body: {method, url, headers, body}.
    let body_of = |o: &Obj<'_>, check: fn(&Obj<'_>) -> bool| {
        super::json::Nested::new(o.get_any(&["body", "content", "data"])).obj().is_some_and(|b| check(&b))
    };
    if sub("request").is_some_and(|r| is_chat_request(&r) || body_of(&r, is_chat_request))
        || sub("response").is_some_and(|r| is_chat_response(&r) || body_of(&r, is_chat_response))
        || sub("result").is_some_and(|r| is_chat_response(&r))
        || (sse && obj.has("request"))
    {
        return Some(RecordKind::ChatExchange);
    }
    if obj.has("input") && (obj.has("preferred_output") || obj.has("non_preferred_output")) {
        return Some(RecordKind::TrainingExample);
    }
    if obj.has("messages") && obj.keys().all(|k| TRAINING_KEYS.contains(&k.as_ref())) && is_training_dialogue(obj) {
        return Some(RecordKind::TrainingExample);
    }
    if is_chat_request(obj) || is_chat_response(obj) {
        return Some(RecordKind::ChatExchange);
    }
    None
}

/// A fine-tuning dialogue ends with the assistant turn the model should learn, or weights turns.
/// One pass, keeping only the last role: a dialogue can be millions of messages long.
fn is_training_dialogue(obj: &Obj<'_>) -> bool {
    let (mut last_role, mut weighted) = (None, false);
    for m in items(obj.get("messages")).filter_map(Obj::from_raw) {
        weighted |= m.has("weight");
        last_role = Some(m.text(&["role"]).unwrap_or_default());
    }
    weighted || last_role.is_some_and(|r| r == "assistant")
}

fn is_chat_request(obj: &Obj<'_>) -> bool {
    obj.get("messages").and_then(elements).is_some()
        || ((obj.has("prompt") || obj.has("input")) && (obj.has("model") || obj.has("max_tokens") || obj.has("temperature")))
}

fn is_chat_response(obj: &Obj<'_>) -> bool {
    if obj.get("choices").and_then(elements).is_some() || obj.has("prompt_filter_results") {
        return true;
    }
    let object = obj.text(&["object"]).unwrap_or_default();
    if matches!(object.as_str(), "chat.completion" | "chat.completion.chunk" | "text_completion" | "response") {
        return true;
    }
    obj.get("error").and_then(Obj::from_raw).is_some_and(|e| {
        e.text(&["code"]).is_some_and(|c| c == "content_filter") || e.has("innererror") || e.has("inner_error")
    })
}

/// Log Analytics export rows, identified by their `Type` column or by table-specific columns.
fn log_analytics_table(obj: &Obj<'_>) -> Option<RecordKind> {
    let table = obj.get("Type").and_then(decode_str);
    match table.as_deref() {
        Some("AzureDiagnostics") => {
            // Legacy "Azure diagnostics" mode also carries APIM gateway logs.
            let cat = obj.text(&["Category"]).unwrap_or_default();
            return Some(match cat.as_str() {
                c if c.eq_ignore_ascii_case("GatewayLogs") => RecordKind::GatewayLog,
                c if c.eq_ignore_ascii_case("GatewayLlmLogs") => RecordKind::GatewayLlmLog,
                _ => RecordKind::ResourceLog,
            });
        }
        Some("AzureActivity") => return Some(RecordKind::ActivityLog),
        Some("ApiManagementGatewayLogs") => return Some(RecordKind::GatewayLog),
        Some("ApiManagementGatewayLlmLog") => return Some(RecordKind::GatewayLlmLog),
        _ => {}
    }
    if !obj.has("TimeGenerated") {
        return None;
    }
    if obj.has("OperationNameValue") || obj.has("ActivityStatusValue") || obj.has("CategoryValue") {
        return Some(RecordKind::ActivityLog);
    }
    if obj.has("SequenceNumber") && (obj.has("RequestMessages") || obj.has("ResponseMessages")) {
        return Some(RecordKind::GatewayLlmLog);
    }
    if obj.has("ApimSubscriptionId") || obj.has("BackendResponseCode") || obj.has("ApiId") {
        return Some(RecordKind::GatewayLog);
    }
    if obj.has("properties_s") || obj.has("ResourceProvider") || obj.has("Category") {
        return Some(RecordKind::ResourceLog);
    }
    None
}

/// The first field names of an object, for a rejection message a user can act on.
fn key_summary(obj: &Obj<'_>) -> String {
    let keys: Vec<Cow<str>> = obj.keys().take(12).collect();
    let mut keys: Vec<&str> = keys.iter().map(|k| k.as_ref()).collect();
    if keys.is_empty() {
        return "(empty object)".into();
    }
    let more = obj.keys().count().saturating_sub(keys.len());
    keys.iter_mut().for_each(|k| {
        if k.len() > 40 {
            *k = &k[..k.char_indices().nth(40).map_or(k.len(), |(i, _)| i)];
        }
    });
    let mut s = keys.join(", ");
    if more > 0 {
        s.push_str(&format!(", +{more} more"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Result<RecordKind, ClassifyError> {
        classify(&super::super::json::Doc::parse(s).unwrap().object())
    }

    #[test]
    fn classifies_by_category_and_shape() {
        assert_eq!(kind(r#"{"category":"RequestResponse","operationName":"x"}"#), Ok(RecordKind::ResourceLog));
        assert_eq!(kind(r#"{"category":"GatewayLogs"}"#), Ok(RecordKind::GatewayLog));
        assert_eq!(
            kind(r#"{"category":"Action","operationName":"MICROSOFT.X/Y/ACTION"}"#),
            Ok(RecordKind::ActivityLog)
        );
        assert_eq!(
            kind(r#"{"eventTimestamp":"2024-01-01T00:00:00Z","operationName":{"value":"a/b"}}"#),
            Ok(RecordKind::ActivityLog)
        );
        assert_eq!(kind(r#"{"TimeGenerated":"x","Type":"AzureActivity"}"#), Ok(RecordKind::ActivityLog));
        assert_eq!(kind(r#"{"TimeGenerated":"x","properties_s":"{}"}"#), Ok(RecordKind::ResourceLog));
        assert!(matches!(kind(r#"{"hello":"world"}"#), Err(ClassifyError::Unknown(_))));
    }

    #[test]
    fn classifies_application_and_telemetry_shapes() {
        let chat = Ok(RecordKind::ChatExchange);
        assert_eq!(kind(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#), chat);
        assert_eq!(kind(r#"{"messages":[{"role":"user","content":"hi"}]}"#), chat);
        assert_eq!(kind(r#"{"object":"chat.completion","choices":[]}"#), chat);
        assert_eq!(kind(r#"{"error":{"code":"content_filter","innererror":{}}}"#), chat);
        assert_eq!(kind(r#"{"request":{"messages":[]},"response":{"choices":[]}}"#), chat);
        assert_eq!(kind(r#"{"custom_id":"r1","method":"POST","url":"/chat/completions","body":{}}"#), chat);
        assert_eq!(kind(r#"{"custom_id":"r1","response":{"status_code":200,"body":{}}}"#), chat);
        let training = Ok(RecordKind::TrainingExample);
        assert_eq!(
            kind(r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}"#),
            training
        );
        assert_eq!(
            kind(r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","weight":0}],"tools":[]}"#),
            training
        );
        let otel = Ok(RecordKind::OtelSpan);
        assert_eq!(kind(r#"{"resourceSpans":[]}"#), otel);
        assert_eq!(kind(r#"{"name":"chat gpt-4o","context":{"trace_id":"0x1","span_id":"0x2"},"attributes":{}}"#), otel);
        assert_eq!(kind(r#"{"body":{"content":"hi"},"trace_id":"0x1","attributes":{"event.name":"gen_ai.user.message"}}"#), otel);
    }
}
