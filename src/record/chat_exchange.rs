//! `chat_exchange`: what applications log themselves around Azure OpenAI calls: request and
//! response dumps (`{request, response}`), bare requests or responses, blocked-prompt error
//! bodies, streamed chunks, and Batch API input and output lines.

use super::chat::{self, Side};
use super::fields::{self, header, set_caller_ip};
use super::json::{Nested, Obj};
use super::{time, Record, RecordKind, RecordOrigin, SourceFormat};

pub fn adapt(obj: &Obj<'_>, at: &RecordOrigin) -> Record {
    let mut r = Record::new(RecordKind::ChatExchange, SourceFormat::App, at);
    if obj.has("custom_id") {
        batch_line(obj, &mut r);
    } else if obj.has("request") || obj.has("response") || obj.has("result") {
        dump(obj, &mut r);
    } else if obj.has("choices") || obj.has("error") || obj.has("prompt_filter_results") || obj.has("output") {
        chat::apply_response(obj, "response", &mut r);
    } else {
        chat::apply_request(obj, "request", &mut r);
    }
    envelope(obj, &mut r);
    r
}

/// A Batch API line: input (`custom_id`, `method`, `url`, `body`) or output (`custom_id`,
/// `response: {status_code, request_id, body}`, `error`).
fn batch_line(obj: &Obj<'_>, r: &mut Record) {
    r.correlation_id = obj.text(&["custom_id"]);
    r.method = obj.text(&["method"]);
    r.url = obj.text(&["url"]);
    r.operation = Some(if obj.has("body") { "batch_input" } else { "batch_output" }.into());
    if let Some(body) = obj.get("body") {
        chat::apply_body_value(body, Side::Request, "body", r);
    }
    if let Some(resp) = obj.get("response").and_then(Obj::from_raw) {
        r.request_id = resp.text(&["request_id"]);
        if let Some(code) = resp.i64(&["status_code"]).and_then(|c| u16::try_from(c).ok()) {
            r.status.code = Some(code);
            r.status.success = Some(code < 400);
        }
        if let Some(body) = resp.get("body") {
            chat::apply_body_value(body, Side::Response, "response.body", r);
        }
    }
    if let Some(err) = obj.get("error").and_then(Obj::from_raw) {
        r.status.success = Some(false);
        r.status.detail = err.text(&["code", "message"]);
    }
}

/// `{request, response}` as applications dump an exchange; `response` may be a body, an HTTP
/// envelope (`{status, headers, body}`) or a streamed transcript; `result` holds the body in
/// some HTTP clients' dumps.
fn dump(obj: &Obj<'_>, r: &mut Record) {
    if let Some(req) = obj.get("request") {
        match Nested::new(Some(req)).obj() {
            Some(o) if !o.has("messages") && o.has("body") => {
                http_envelope(&o, r);
                if let Some(body) = o.get("body") {
                    chat::apply_body_value(body, Side::Request, "request.body", r);
                }
            }
            _ => chat::apply_body_value(req, Side::Request, "request", r),
        }
    }
    for key in ["response", "result"] {
        let Some(resp) = obj.get(key) else { continue };
        match Nested::new(Some(resp)).obj() {
            Some(o) if !is_body(&o) => {
                http_envelope(&o, r);
                if let Some(body) = o.get_any(&["body", "content", "data"]) {
                    chat::apply_body_value(body, Side::Response, &format!("{key}.body"), r);
                }
            }
            _ => chat::apply_body_value(resp, Side::Response, key, r),
        }
    }
}

fn is_body(o: &Obj<'_>) -> bool {
    o.has("choices") || o.has("error") || o.has("prompt_filter_results") || o.has("output") || o.has("object")
}

/// Status, headers and URL of an HTTP request or response as a client library logs them.
fn http_envelope(o: &Obj<'_>, r: &mut Record) {
    let code = o
        .i64(&["status_code", "statusCode", "status"])
        .or_else(|| {
            // {"status": {"http": {"code": 400}}}
            let s = o.get("status").and_then(Obj::from_raw)?;
            s.get("http").and_then(Obj::from_raw)?.i64(&["code"])
        })
        .and_then(|c| u16::try_from(c).ok());
    if let Some(c) = code {
        r.status.code = Some(c);
        r.status.success = Some(c < 400);
    }
    if r.url.is_none() {
        r.url = o.text(&["url", "uri"]);
    }
    if r.method.is_none() {
        r.method = o.text(&["method"]);
    }
    let headers = Nested::new(o.get("headers"));
    if let Some(d) = header(&headers, "x-ms-deployment-name") {
        r.deployment = Some(d);
    }
    if let Some(id) = header(&headers, "apim-request-id").or_else(|| header(&headers, "x-request-id")) {
        r.correlation_id.get_or_insert(id);
    }
    if let Some(region) = header(&headers, "x-ms-region") {
        r.resource.location.get_or_insert(region);
    }
    if let Some(ua) = header(&headers, "User-Agent") {
        r.caller.user_agent = Some(ua);
    }
}

/// Fields applications commonly put around the exchange.
fn envelope(obj: &Obj<'_>, r: &mut Record) {
    if let Some(t) = obj.text(&["timestamp", "time", "@timestamp", "created_at"]).as_deref().and_then(time::parse) {
        r.time = Some(t);
    }
    if let Some(d) = obj.text(&["deployment", "deployment_name", "deploymentName"]) {
        r.deployment = Some(d);
    }
    if let Some(url) = obj.text(&["url", "endpoint"]) {
        r.url.get_or_insert(url);
    }
    if let Some(url) = r.url.clone() {
        if r.deployment.is_none() {
            r.deployment = fields::deployment_from_url(&url);
        }
        if r.api_version.is_none() {
            r.api_version = fields::api_version_from_url(&url);
        }
    }
    if let Some(id) = obj.text(&["correlation_id", "correlationId", "request_id", "apim-request-id"]) {
        r.correlation_id.get_or_insert(id);
    }
    if let Some(code) = obj.i64(&["status_code", "status"]).and_then(|c| u16::try_from(c).ok()) {
        r.status.code.get_or_insert(code);
        r.status.success.get_or_insert(code < 400);
    }
    if let Some(ms) = obj.f64(&["duration_ms", "latency_ms", "durationMs"]) {
        r.duration_ms = Some(ms);
    }
    if r.caller.ip.is_none() {
        set_caller_ip(&mut r.caller, obj.text(&["client_ip", "clientIp", "source_ip", "ip"]));
    }
    if r.caller.end_user_id.is_none() {
        r.caller.end_user_id = obj.text(&["user_id", "userId", "end_user_id"]);
    }
    if r.caller.user_agent.is_none() {
        r.caller.user_agent = obj.text(&["user_agent", "userAgent"]);
    }
}
