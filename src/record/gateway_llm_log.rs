//! `gateway_llm_log`: API Management `GatewayLlmLogs` (`ApiManagementGatewayLlmLog` rows):
//! the request and response messages APIM logs for LLM APIs. Messages over 32 KB arrive as
//! string chunks spread over rows with one `CorrelationId` and rising `SequenceNumber`s; a row
//! whose messages are whole becomes a record here, a chunk goes to [`super::llm_join`].

use super::chat::{self, Side};
use super::fields::{la_text, nested};
use super::json::{decode_str, elements, json_type, Doc, JsonType, Obj, Raw};
use super::llm_join::LlmChunk;
use super::{parse_resource_id, time, FrameRecords, Record, RecordKind, RecordOrigin, RowRef, SourceFormat};

pub fn adapt(obj: &Obj<'_>, at: &RecordOrigin, out: &mut FrameRecords) {
    let la = obj.has("TimeGenerated");
    let props_holder = nested(obj, &["properties", "properties_s"]);
    let props_obj = props_holder.obj();
    let props = props_obj.as_ref().unwrap_or(obj);
    let text = |name: &str| props.text(&[name]).or_else(|| la_text(obj, name));

    let mut row = Record::new(
        RecordKind::GatewayLlmLog,
        if la { SourceFormat::LogAnalytics } else { SourceFormat::Storage },
        at,
    );
    row.time = obj.text(&["time", "TimeGenerated"]).as_deref().and_then(time::parse);
    row.category = obj.text(&["category", "Category"]);
    if let Some(id) = obj.text(&["resourceId", "_ResourceId", "ResourceId"]) {
        parse_resource_id(&id, &mut row.resource);
    }
    row.resource.location = text("region").or_else(|| obj.text(&["location"]));
    row.correlation_id = obj.text(&["correlationId", "CorrelationId"]).or_else(|| text("correlationId"));
    row.request_id = text("requestId");
    row.operation = text("operationName").or_else(|| obj.text(&["operationName", "OperationName"]));
    row.deployment = text("deploymentName");
    row.model = text("modelName");
    row.api_version = text("apiVersion");
    row.stream = props.bool(&["isStreamCompletion"]).or_else(|| obj.bool(&["IsStreamCompletion_b"]));
    let count = |name: &str| props.i64(&[name]).or_else(|| la_text(obj, name).and_then(|s| s.parse().ok()));
    row.tokens.prompt = count("promptTokens").and_then(|v| u64::try_from(v).ok());
    row.tokens.completion = count("completionTokens").and_then(|v| u64::try_from(v).ok());
    row.tokens.total = count("totalTokens").and_then(|v| u64::try_from(v).ok());
    let seq = count("sequenceNumber").unwrap_or(0);

    let mut chunks = Vec::new();
    for (side, name) in [(Side::Request, "requestMessages"), (Side::Response, "responseMessages")] {
        let raw = props.get(name).or_else(|| obj.get(&format!("{name}_s")));
        let Some(raw) = raw else { continue };
        match messages_text(raw) {
            Messages::Logged(value) => apply_messages(value, side, name, &mut row),
            Messages::Decoded(doc) => apply_messages(doc.root(), side, name, &mut row),
            Messages::Chunk(text) => chunks.push((side, text)),
            Messages::Empty => {}
        }
    }
    // A row that only carries chunks is represented by the record its group joins into.
    let chunk_only = !chunks.is_empty() && row.surfaces.is_empty();
    for (side, text) in chunks {
        match row.correlation_id.clone() {
            Some(correlation_id) => out.push_chunk(LlmChunk {
                correlation_id,
                side,
                seq,
                text,
                row: RowRef { source_file: at.file.clone(), source_line: at.line, offset: at.offset },
                template: Box::new(metadata_only(&row)),
            }),
            // Without a correlation id a chunk cannot be joined: read what it holds as is.
            None => chat::apply_body_text(&text, side, &format!("{}(chunk)", side_field(side)), &mut row),
        }
    }
    if !chunk_only || row.correlation_id.is_none() {
        out.push(row);
    }
}

enum Messages<'a> {
    /// An array or object logged as one (already validated with its record).
    Logged(Raw<'a>),
    /// An array or object decoded from the string it was logged as.
    Decoded(Doc<'static>),
    Chunk(String),
    Empty,
}

/// A messages column is a JSON array (dynamic column), a string holding one, or a string
/// holding a fragment of one (a chunk).
fn messages_text(raw: Raw<'_>) -> Messages<'_> {
    match json_type(raw) {
        JsonType::Array | JsonType::Object => Messages::Logged(raw),
        JsonType::String => {
            let Some(s) = decode_str(raw) else { return Messages::Empty };
            if s.trim().is_empty() {
                return Messages::Empty;
            }
            match Doc::parse(&s) {
                Ok(doc) if matches!(json_type(doc.root()), JsonType::Array | JsonType::Object) => Messages::Decoded(doc.into_owned()),
                _ => Messages::Chunk(s.into_owned()),
            }
        }
        _ => Messages::Empty,
    }
}

fn side_field(side: Side) -> &'static str {
    match side {
        Side::Request => "requestMessages",
        Side::Response => "responseMessages",
    }
}

/// Puts an array of `{role, content}` messages (or one message, or a full chat body) on the
/// record's surfaces.
pub fn apply_messages(value: Raw<'_>, side: Side, origin: &str, r: &mut Record) {
    if let Some(items) = elements(value) {
        for (i, m) in items.enumerate() {
            let at = chat::item_path(origin, "", i);
            match Obj::from_raw(m) {
                Some(o) => chat::apply_message(&o, &at, side, r),
                None => {
                    if let Some(s) = decode_str(m) {
                        chat::push_with_documents(r, default_surface(side), at, s.into_owned());
                    }
                }
            }
        }
    } else if let Some(o) = Obj::from_raw(value) {
        if o.has("messages") || o.has("choices") {
            chat::apply_body_value(value, side, origin, r);
        } else {
            chat::apply_message(&o, origin, side, r);
        }
    }
}

fn default_surface(side: Side) -> super::Surface {
    match side {
        Side::Request => super::Surface::UserPrompt,
        Side::Response => super::Surface::ModelResponse,
    }
}

/// The row's metadata without text: what a joined record starts from.
fn metadata_only(row: &Record) -> Record {
    let mut t = row.clone();
    t.surfaces.clear();
    t.tool_calls.clear();
    t
}
