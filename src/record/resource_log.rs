//! `resource_log`: Azure OpenAI / AI services diagnostic logs (RequestResponse, Audit,
//! AzureOpenAIRequestUsage, Trace), in the storage/Event Hubs shape and as `AzureDiagnostics`
//! rows exported from Log Analytics. They carry metadata only, never prompt text.

use super::fields::{self, la_text, nested, set_caller_ip};
use super::json::Obj;
use super::{parse_resource_id, time, AuthKind, Record, RecordKind, RecordOrigin, SourceFormat};

pub fn adapt(obj: &Obj<'_>, at: &RecordOrigin) -> Record {
    let la = obj.has("TimeGenerated") || obj.has("properties_s");
    let format = if la { SourceFormat::LogAnalytics } else { SourceFormat::Storage };
    let mut r = Record::new(RecordKind::ResourceLog, format, at);

    r.time = obj.text(&["time", "TimeGenerated", "timestamp"]).as_deref().and_then(time::parse);
    r.category = obj.text(&["category", "Category"]);
    r.operation = obj.text(&["operationName", "OperationName"]);
    if let Some(id) = obj.text(&["resourceId", "_ResourceId", "ResourceId"]) {
        parse_resource_id(&id, &mut r.resource);
    }
    if r.resource.subscription_id.is_none() {
        r.resource.subscription_id = obj.text(&["SubscriptionId", "_SubscriptionId"]);
    }
    r.resource.resource_group = r.resource.resource_group.take().or_else(|| obj.text(&["ResourceGroup"]));
    r.resource.account = r.resource.account.take().or_else(|| obj.text(&["Resource"]));
    r.resource.location = obj.text(&["location", "Location"]).or_else(|| la_text(obj, "Tenant"));
    r.correlation_id = obj.text(&["correlationId", "CorrelationId"]);
    r.duration_ms = obj.f64(&["durationMs", "DurationMs"]);
    set_caller_ip(&mut r.caller, obj.text(&["callerIpAddress", "CallerIPAddress", "CallerIpAddress"]));
    fields::apply_result(&mut r.status, obj.text(&["resultType", "ResultType"]));
    fields::apply_signature(&mut r.status, obj.text(&["resultSignature", "ResultSignature"]));

    let props_holder = nested(obj, &["properties", "properties_s", "Properties"]);
    let props = props_holder.obj().unwrap_or_default();
    // Log Analytics may also flatten properties into suffixed columns; read both.
    let prop = |name: &str| props.text(&[name]).or_else(|| la.then(|| la_text(obj, name)).flatten());

    r.deployment = prop("modelDeploymentName");
    r.model = prop("modelName");
    r.model_version = prop("modelVersion");
    r.api_version = prop("apiName").map(|api| api_version_of(&api));
    r.stream = prop("streamType").map(|s| s.eq_ignore_ascii_case("Streaming"));
    r.request_time = props.i64(&["requestTime"]).and_then(time::from_ticks);
    r.sizes.request_bytes = props.i64(&["requestLength"]).and_then(non_negative);
    r.sizes.response_bytes = props.i64(&["responseLength"]).and_then(non_negative);
    r.tokens.prompt = props.i64(&["promptTokens"]).and_then(non_negative);
    r.tokens.completion = props.i64(&["completionTokens", "generatedTokens"]).and_then(non_negative);
    r.tokens.cached = props.i64(&["cachedTokens"]).and_then(non_negative);
    r.tokens.total = props.i64(&["totalTokens"]).and_then(non_negative);

    // An empty objectId on a data-plane call means key authentication; a GUID is the Entra
    // principal. Audit (ListKey) records name the principal the same way.
    match prop("objectId").or_else(|| prop("callerObjectId")) {
        Some(oid) => {
            r.caller.object_id = Some(oid);
            r.caller.auth_kind = Some(AuthKind::Entra);
        }
        None if props.get("objectId").is_some() => r.caller.auth_kind = Some(AuthKind::ApiKey),
        None => {}
    }
    if let Some(identity) = obj.get("identity").and_then(Obj::from_raw) {
        if let Some(claims) = identity.get_any(&["claims", "claim"]).and_then(Obj::from_raw) {
            fields::apply_claims(&claims, &mut r.caller);
        }
    }
    r
}

/// "Azure OpenAI API version 2024-02-15-preview" → "2024-02-15-preview".
fn api_version_of(api_name: &str) -> String {
    match api_name.rsplit_once("version ") {
        Some((_, v)) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => api_name.to_owned(),
    }
}

fn non_negative(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}
