//! `gateway_log`: API Management `GatewayLogs` in the storage/Event Hubs shape (camelCase
//! `properties`) and as `ApiManagementGatewayLogs` / legacy `AzureDiagnostics` rows. With body
//! logging on, the request and response bodies hold the prompt and completion text.

use super::chat::{self, Side};
use super::fields::{self, header, la_text, nested, set_caller_ip};
use super::json::{Nested, Obj};
use super::{parse_resource_id, time, AuthKind, Record, RecordKind, RecordOrigin, SourceFormat};

pub fn adapt(obj: &Obj<'_>, at: &RecordOrigin) -> Record {
    let la = obj.has("TimeGenerated");
    let format = if la { SourceFormat::LogAnalytics } else { SourceFormat::Storage };
    let mut r = Record::new(RecordKind::GatewayLog, format, at);

    r.time = obj.text(&["time", "TimeGenerated"]).as_deref().and_then(time::parse);
    r.category = obj.text(&["category", "Category"]);
    if let Some(id) = obj.text(&["resourceId", "_ResourceId", "ResourceId"]) {
        parse_resource_id(&id, &mut r.resource);
    }
    r.resource.location = obj.text(&["location", "Region", "Location"]);
    r.correlation_id = obj.text(&["correlationId", "CorrelationId"]);
    r.duration_ms = obj.f64(&["durationMs", "TotalTime", "DurationMs"]);
    set_caller_ip(&mut r.caller, obj.text(&["callerIpAddress", "CallerIpAddress", "CallerIPAddress"]));
    r.status.success = obj.bool(&["isRequestSuccess", "IsRequestSuccess"]);
    fields::apply_result(&mut r.status, obj.text(&["resultType", "ResultType"]));

    // Storage rows keep the gateway fields under `properties`; Log Analytics rows flatten them
    // into PascalCase columns (and, in AzureDiagnostics mode, add `_s` suffixes).
    let props_holder = nested(obj, &["properties", "properties_s"]);
    let props_obj = props_holder.obj();
    let props = props_obj.as_ref().unwrap_or(obj);
    let text = |name: &str| props.text(&[name]).or_else(|| la_text(obj, name));

    r.operation = text("operationId").or_else(|| obj.text(&["operationName", "OperationName"]));
    r.method = text("method");
    r.url = text("url");
    let backend_url = text("backendUrl");
    let code = props.i64(&["responseCode"]).or_else(|| props.i64(&["backendResponseCode"]));
    r.status.code = code.and_then(|c| u16::try_from(c).ok()).filter(|c| (100..600).contains(c));
    if let (Some(c), None) = (r.status.code, r.status.success) {
        r.status.success = Some(c < 400);
    }
    r.sizes.request_bytes = props.i64(&["requestSize"]).and_then(|v| u64::try_from(v).ok());
    r.sizes.response_bytes = props.i64(&["responseSize"]).and_then(|v| u64::try_from(v).ok());

    if let Some(sub) = text("apimSubscriptionId") {
        r.caller.apim_subscription_id = Some(sub);
        r.caller.auth_kind = Some(AuthKind::ApimSubscription);
    }
    if let Some(user) = text("userId").filter(|u| !u.eq_ignore_ascii_case("anonymous")) {
        r.caller.upn = user.contains('@').then_some(user);
    }

    let headers = Nested::new(props.get_any(&["requestHeaders", "RequestHeaders"]));
    r.caller.user_agent = header(&headers, "User-Agent");
    if let Some(auth) = header(&headers, "Authorization") {
        if auth.trim_start().to_ascii_lowercase().starts_with("bearer") && r.caller.auth_kind.is_none() {
            r.caller.auth_kind = Some(AuthKind::Entra);
        }
    }
    if r.caller.auth_kind.is_none() && header(&headers, "api-key").is_some() {
        r.caller.auth_kind = Some(AuthKind::ApiKey);
    }

    for url in [r.url.as_deref(), backend_url.as_deref()].into_iter().flatten() {
        if r.deployment.is_none() {
            r.deployment = fields::deployment_from_url(url);
        }
        if r.api_version.is_none() {
            r.api_version = fields::api_version_from_url(url);
        }
    }
    if r.url.is_none() {
        r.url = backend_url;
    }

    // The client's own body is what the attacker wrote; the backend body is what policies
    // forwarded. Read the backend one only when the client one was not logged.
    read_body(props, obj, &["requestBody", "backendRequestBody"], Side::Request, &mut r);
    read_body(props, obj, &["responseBody", "backendResponseBody"], Side::Response, &mut r);
    r
}

fn read_body(props: &Obj<'_>, row: &Obj<'_>, names: &[&str], side: Side, r: &mut Record) {
    for name in names {
        let raw = props.get(name).or_else(|| {
            let pascal = format!("{}{}", name[..1].to_ascii_uppercase(), &name[1..]);
            row.get(&pascal).or_else(|| row.get(&format!("{pascal}_s")))
        });
        let Some(raw) = raw else { continue };
        let origin = (*name).to_owned();
        match super::json::decode_str(raw) {
            Some(text) => chat::apply_body_text(&text, side, &origin, r),
            None => chat::apply_body_value(raw, side, &origin, r),
        }
        return;
    }
}
