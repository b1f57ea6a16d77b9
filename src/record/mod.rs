//! The normalized Record every detector reads, and the adapters that build it from each log kind.
//!
//! A record is what one log row says, in one vocabulary: who called (caller), what was called
//! (resource, deployment, model, operation), how it went (status, tokens, sizes, Azure's own
//! content-filter verdicts) and what was said (text surfaces). Adapters are one file per record
//! kind; [`classify`] picks the adapter, [`parse_frame`] turns one framed JSON text into records.

mod activity_log;
mod chat_exchange;
pub mod chat;
mod classify;
mod fields;
mod gateway_log;
mod gateway_llm_log;
pub mod json;
pub mod llm_join;
mod otel_span;
mod resource_log;
pub mod time;
mod training_example;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use classify::{classify, ClassifyError};
use json::{json_type, Doc, JsonType, Obj, Raw};

/// What a record is, independent of how it was exported (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    ResourceLog,
    ActivityLog,
    GatewayLog,
    GatewayLlmLog,
    ChatExchange,
    OtelSpan,
    TrainingExample,
}

impl RecordKind {
    pub const ALL: [RecordKind; 7] = [
        RecordKind::ResourceLog,
        RecordKind::ActivityLog,
        RecordKind::GatewayLog,
        RecordKind::GatewayLlmLog,
        RecordKind::ChatExchange,
        RecordKind::OtelSpan,
        RecordKind::TrainingExample,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::ResourceLog => "resource_log",
            RecordKind::ActivityLog => "activity_log",
            RecordKind::GatewayLog => "gateway_log",
            RecordKind::GatewayLlmLog => "gateway_llm_log",
            RecordKind::ChatExchange => "chat_exchange",
            RecordKind::OtelSpan => "otel_span",
            RecordKind::TrainingExample => "training_example",
        }
    }

    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a record was exported (DESIGN §2), separate from what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// One record per line, as diagnostic settings write to a storage account.
    Storage,
    /// Inside a `{"records":[...]}` wrapper, as Event Hubs delivers them.
    EventHub,
    /// A Log Analytics export row (PascalCase columns, `_s`/`_d` suffixes).
    LogAnalytics,
    /// The Activity Log REST / portal shape with `{value, localizedValue}` objects.
    Rest,
    /// Written by an application (chat request/response dumps, batch files, training data).
    App,
    /// OpenTelemetry spans, events or log records.
    Otel,
}

/// A part of a record that carries text a detector reads (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    System,
    UserPrompt,
    Document,
    ToolOutput,
    ToolArguments,
    ModelResponse,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::System => "system",
            Surface::UserPrompt => "user_prompt",
            Surface::Document => "document",
            Surface::ToolOutput => "tool_output",
            Surface::ToolArguments => "tool_arguments",
            Surface::ModelResponse => "model_response",
        }
    }
}

/// One piece of text on one surface, with where in the record it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TextSpan {
    pub surface: Surface,
    /// A JSON-path-like pointer into the record, e.g. `requestBody.messages[1].content`.
    pub origin: String,
    pub text: String,
    /// The body was cut short (APIM body-size cap): the text is what could be recovered.
    #[serde(skip_serializing_if = "is_false")]
    pub truncated: bool,
}

/// How the caller authenticated, as far as the log tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// An API key (`api-key` header): Azure OpenAI logs an empty objectId.
    ApiKey,
    /// An Entra ID token whose principal is a user.
    EntraUser,
    /// An Entra ID token of an application, service principal or managed identity.
    EntraApp,
    /// An Entra ID token whose principal type the log does not say.
    Entra,
    /// An API Management subscription key.
    ApimSubscription,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// As logged; Azure OpenAI masks the last octet (`81.2.69.***`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub ip_masked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apim_subscription_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_kind: Option<AuthKind>,
    /// Authentication methods from the token (`pwd`, `mfa`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_methods: Option<String>,
    /// The end user an application names in `user_security_context` (or the `user` field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_user_tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_user_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// The ARM id as logged (resource logs write it in upper case).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// `MICROSOFT.COGNITIVESERVICES/ACCOUNTS`, `MICROSOFT.APIMANAGEMENT/SERVICE`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The account (or APIM service) name: the first resource name after the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// HTTP status code where the log has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// `Success`, `Failure`, `Start`, `Succeeded`, ... as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Sub-status (`resultSignature` / `subStatus`) when it is not a plain HTTP code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sizes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
}

/// One of Azure's own content-filter verdicts, normalized across the key spellings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterVerdict {
    /// `prompt` (prompt_filter_results, blocked-prompt errors) or `completion` (choices).
    pub target: FilterTarget,
    /// `jailbreak`, `indirect_attack`, `hate`, `sexual`, `violence`, `self_harm`, `profanity`,
    /// `protected_material_text`, `protected_material_code`, `custom_blocklist`, ...
    pub category: String,
    pub filtered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The custom blocklist id, for `custom_blocklist` verdicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl FilterVerdict {
    /// True when Azure flagged the content, whether or not it blocked it.
    pub fn is_hit(&self) -> bool {
        self.filtered
            || self.detected == Some(true)
            || matches!(self.severity.as_deref(), Some("low" | "medium" | "high"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterTarget {
    Prompt,
    Completion,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentFilter {
    /// Verdicts that flagged something; `safe`/not-detected entries are left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<FilterVerdict>,
    /// The request was refused with `error.code == "content_filter"`.
    #[serde(skip_serializing_if = "is_false")]
    pub prompt_blocked: bool,
    /// A choice ended with `finish_reason == "content_filter"`.
    #[serde(skip_serializing_if = "is_false")]
    pub completion_filtered: bool,
    /// `innererror.code`, e.g. `ResponsibleAIPolicyViolation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl ContentFilter {
    pub fn is_empty(&self) -> bool {
        self.verdicts.is_empty() && !self.prompt_blocked && !self.completion_filtered
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCall {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// The arguments as the model wrote them (usually a JSON string).
    pub arguments: String,
    pub origin: String,
}

/// Control-plane details of an Activity Log or Audit event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlane {
    /// RBAC action checked (`Microsoft.CognitiveServices/accounts/listKeys/action`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// `Administrative`, `Write`, `Action`, `Delete`, `Policy`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_data_id: Option<String>,
}

/// The normalized view of one log record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub kind: RecordKind,
    pub source_format: SourceFormat,
    /// The path as given on the command line joined with what the walk found (`-` = stdin).
    pub source_file: Arc<str>,
    /// 1-based line in the decompressed stream where the record starts.
    pub source_line: u64,
    /// Further rows a record was assembled from (chunked LLM logs), in sequence order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_rows: Vec<RowRef>,
    /// Position inside a `records`/`value` wrapper or array on the same line (0-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_in_line: Option<u32>,
    /// 128-bit hash of the record's own JSON text: its identity for alert fingerprints.
    pub record_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub resource: Resource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub caller: Caller,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// When the service received the request (decoded from .NET ticks where logged so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_time: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub tokens: Tokens,
    #[serde(skip_serializing_if = "is_default")]
    pub sizes: Sizes,
    #[serde(skip_serializing_if = "ContentFilter::is_empty")]
    pub content_filter: ContentFilter,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<ControlPlane>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub surfaces: Vec<TextSpan>,
}

impl Record {
    /// An empty record of `kind`; adapters fill in what their log has.
    pub fn new(kind: RecordKind, format: SourceFormat, at: &RecordOrigin) -> Record {
        Record {
            kind,
            source_format: format,
            source_file: at.file.clone(),
            source_line: at.line,
            other_rows: Vec::new(),
            index_in_line: at.index,
            record_hash: String::new(),
            time: None,
            category: None,
            operation: None,
            resource: Resource::default(),
            deployment: None,
            model: None,
            model_version: None,
            api_version: None,
            url: None,
            method: None,
            caller: Caller::default(),
            correlation_id: None,
            request_id: None,
            status: Status::default(),
            duration_ms: None,
            request_time: None,
            stream: None,
            tokens: Tokens::default(),
            sizes: Sizes::default(),
            content_filter: ContentFilter::default(),
            tool_calls: Vec::new(),
            control_plane: None,
            surfaces: Vec::new(),
        }
    }

    /// The spans of one surface, in record order.
    pub fn surface(&self, s: Surface) -> impl Iterator<Item = &TextSpan> {
        self.surfaces.iter().filter(move |t| t.surface == s)
    }

    pub(crate) fn push_text(&mut self, surface: Surface, origin: String, text: String, truncated: bool) {
        if !text.trim().is_empty() {
            self.surfaces.push(TextSpan { surface, origin, text, truncated });
        }
    }
}

/// One input row, by file and line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowRef {
    pub source_file: Arc<str>,
    pub source_line: u64,
    /// Stream offset where the row starts (for incremental scans; not written out).
    #[serde(skip)]
    pub offset: u64,
}

/// Where a record sits in the input.
#[derive(Debug, Clone)]
pub struct RecordOrigin {
    pub file: Arc<str>,
    pub line: u64,
    pub index: Option<u32>,
    /// Stream offset where the record's first line starts.
    pub offset: u64,
}

/// Why a frame or record was not turned into a Record. Each reason is a stable snake_case
/// key in `rejectedByReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// Not valid JSON (includes lines cut short at the end of a file).
    InvalidJson,
    /// The last line of a file ended without a newline and did not parse: still being written.
    TruncatedLine,
    /// A line (or document element) longer than `--max-line-bytes`.
    LineTooLong,
    /// Valid JSON, but not an object (a number, a string, ...).
    NotAnObject,
    /// An object no adapter recognises.
    UnknownShape,
    /// Chunks of a long LLM-log message that never joined into a whole message.
    IncompleteChunks,
    /// aihunt itself failed on this input (a bug); the scan went on without it.
    InternalError,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::TruncatedLine => "truncated_line",
            RejectReason::LineTooLong => "line_too_long",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::UnknownShape => "unknown_shape",
            RejectReason::IncompleteChunks => "incomplete_chunks",
            RejectReason::InternalError => "internal_error",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record that could not be used, with enough detail for the user to find it.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub reason: RejectReason,
    pub index: Option<u32>,
    pub detail: String,
    /// How many records this stands for: 1, or, for the summary of a line's rejections past
    /// [`MAX_LISTED_REJECTIONS`], how many of that reason it did not list.
    pub count: u64,
}

/// Rejections one framed text lists one by one. A line can hold millions of elements that
/// are not records (`{"records":[1,1,1,...]}`); listed each with its own notice, 14 MB of
/// them took 1.1 GB. Past this many, a line's rejections are counted per reason.
pub const MAX_LISTED_REJECTIONS: usize = 1000;

/// What one framed JSON text became.
#[derive(Default)]
pub struct FrameRecords<'s> {
    /// The records, unless a sink took each as it was made.
    pub records: Vec<Record>,
    /// How many records the text made, kept or handed to the sink.
    pub made: u64,
    pub rejections: Vec<Rejection>,
    /// Pieces of chunked LLM-log messages, joined later in input order (unless a sink took
    /// each as it was read).
    pub chunks: Vec<llm_join::LlmChunk>,
    /// Rejections past the listed ones, by reason: how many, and the first one's index.
    unlisted: BTreeMap<RejectReason, (u64, Option<u32>)>,
    /// What every record of the object being adapted gets (see [`FrameRecords::push`]).
    wrapper_format: Option<SourceFormat>,
    object_hash: String,
    /// Takes each record and chunk as it is made. One line can make millions (an OTLP batch
    /// of empty spans, a `records` wrapper of tiny objects): 2 million spans in a 6 MB line,
    /// kept until the line was read, took 3 GB.
    sink: Option<&'s mut dyn FnMut(Made)>,
}

/// What reading a framed text hands its sink, in the order the text holds them: a joined
/// message's alerts go where its last chunk was read, between the records around it.
// Each is moved once, into the sink; boxing records would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
pub enum Made {
    Record(Record),
    Chunk(llm_join::LlmChunk),
}

impl FrameRecords<'_> {
    /// Adds a record of the object being adapted: marked with its wrapper's export format,
    /// and identified by the object's text unless the adapter hashed the record's own text
    /// (OTLP batches hold several records, each its own).
    pub fn push(&mut self, mut record: Record) {
        if let (Some(f), SourceFormat::Storage) = (self.wrapper_format, record.source_format) {
            record.source_format = f;
        }
        if record.record_hash.is_empty() {
            record.record_hash = self.object_hash.clone();
        }
        self.made += 1;
        match self.sink.as_mut() {
            Some(sink) => sink(Made::Record(record)),
            None => self.records.push(record),
        }
    }

    /// Adds a piece of a chunked LLM-log message.
    pub fn push_chunk(&mut self, chunk: llm_join::LlmChunk) {
        match self.sink.as_mut() {
            Some(sink) => sink(Made::Chunk(chunk)),
            None => self.chunks.push(chunk),
        }
    }

    /// Rejects a record (`index` within a wrapper): listed with `detail` while the line has
    /// listed fewer than [`MAX_LISTED_REJECTIONS`], counted after.
    pub fn reject(&mut self, reason: RejectReason, index: Option<u32>, detail: impl FnOnce() -> String) {
        if self.rejections.len() < MAX_LISTED_REJECTIONS {
            self.rejections.push(Rejection { reason, index, detail: detail(), count: 1 });
        } else {
            self.unlisted.entry(reason).or_insert((0, index)).0 += 1;
        }
    }

    /// Lists the counted rejections, one summary per reason.
    fn finish(mut self) -> Self {
        for (reason, (count, index)) in std::mem::take(&mut self.unlisted) {
            let detail = format!("{count} more records of this line rejected for the same reason, from this one on (only {MAX_LISTED_REJECTIONS} are listed one by one)");
            self.rejections.push(Rejection { reason, index, detail, count });
        }
        self
    }
}

/// Options that change how records are read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Skip classification and read every record as this kind (`--kind`).
    pub force_kind: Option<RecordKind>,
}

/// Parses one framed JSON text (a line, or one element of a JSON document) into records.
/// Wrappers (`{"records":[...]}`, `{"value":[...]}`, arrays) expand to their elements.
pub fn parse_frame(text: &str, file: &Arc<str>, line: u64, offset: u64, opts: ParseOptions) -> FrameRecords<'static> {
    let mut out = FrameRecords::default();
    read_frame(text, file, line, offset, opts, &mut out);
    out.finish()
}

/// [`parse_frame`], handing each record and chunk to `sink` as soon as it is made instead of
/// keeping them: memory stays flat however many records one line holds.
pub fn parse_frame_into<'s>(text: &str, file: &Arc<str>, line: u64, offset: u64, opts: ParseOptions, sink: &'s mut dyn FnMut(Made)) -> FrameRecords<'s> {
    let mut out = FrameRecords { sink: Some(sink), ..FrameRecords::default() };
    read_frame(text, file, line, offset, opts, &mut out);
    out.finish()
}

fn read_frame(text: &str, file: &Arc<str>, line: u64, offset: u64, opts: ParseOptions, out: &mut FrameRecords) {
    let doc = match Doc::parse(text) {
        Ok(doc) => doc,
        Err(e) => return out.reject(RejectReason::InvalidJson, None, || json_error(&e, line)),
    };
    let raw = doc.root();
    if let Some(obj) = Obj::from_raw(raw) {
        match wrapper_items(&obj) {
            Some((items, format)) => expand(items, format, file, line, offset, opts, out),
            None => adapt_one(raw.get(), &obj, None, None, file, line, offset, opts, out),
        }
        return;
    }
    match json_type(raw) {
        JsonType::Array => expand(raw, None, file, line, offset, opts, out),
        other => out.reject(RejectReason::NotAnObject, None, || format!("a JSON {} is not a log record", type_name(other))),
    }
}

fn type_name(t: JsonType) -> &'static str {
    match t {
        JsonType::Object => "object",
        JsonType::Array => "array",
        JsonType::String => "string",
        JsonType::Number => "number",
        JsonType::Bool => "boolean",
        JsonType::Null => "null",
    }
}

/// A parse error with its position in file terms: serde counts lines from the frame's start.
fn json_error(e: &serde_json::Error, frame_line: u64) -> String {
    let msg = e.to_string();
    let base = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
    if e.line() <= 1 {
        format!("{base} (column {})", e.column())
    } else {
        format!("{base} (line {}, column {})", frame_line + e.line() as u64 - 1, e.column())
    }
}

/// The element list of a `{"records":[...]}` (Event Hubs) or `{"value":[...]}` (ARM list)
/// wrapper, with the export format the wrapper implies.
fn wrapper_items<'a>(obj: &Obj<'a>) -> Option<(Raw<'a>, Option<SourceFormat>)> {
    // A wrapper holds nothing but its list (and, for ARM lists, a `nextLink`).
    let only = |allowed: &[&str]| obj.keys().all(|k| allowed.iter().any(|a| a.eq_ignore_ascii_case(&k)));
    if let Some(items) = obj.get("records").filter(|r| json_type(*r) == JsonType::Array) {
        if only(&["records"]) {
            return Some((items, Some(SourceFormat::EventHub)));
        }
    }
    if let Some(items) = obj.get("value").filter(|r| json_type(*r) == JsonType::Array) {
        if only(&["value", "nextLink", "@odata.nextLink", "@odata.context", "count"]) {
            return Some((items, None));
        }
    }
    None
}

/// Reads each element of the array `items` as a record, one at a time.
fn expand(
    items: Raw<'_>,
    format: Option<SourceFormat>,
    file: &Arc<str>,
    line: u64,
    offset: u64,
    opts: ParseOptions,
    out: &mut FrameRecords,
) {
    for (i, item) in json::items(items).enumerate() {
        let index = Some(i as u32);
        match Obj::from_raw(item) {
            Some(obj) => adapt_one(item.get(), &obj, format, index, file, line, offset, opts, out),
            None => out.reject(RejectReason::NotAnObject, index, || "wrapper element is not a JSON object".into()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn adapt_one(
    raw_text: &str,
    obj: &Obj<'_>,
    wrapper_format: Option<SourceFormat>,
    index: Option<u32>,
    file: &Arc<str>,
    line: u64,
    offset: u64,
    opts: ParseOptions,
    out: &mut FrameRecords,
) {
    let kind = match opts.force_kind {
        Some(k) => Ok(k),
        None => classify(obj),
    };
    let origin = RecordOrigin { file: file.clone(), line, index, offset };
    let kind = match kind {
        Ok(k) => k,
        Err(e) => {
            out.reject(RejectReason::UnknownShape, index, || e.to_string());
            return;
        }
    };
    out.wrapper_format = wrapper_format;
    out.object_hash = record_hash(raw_text);
    match kind {
        RecordKind::ResourceLog => out.push(resource_log::adapt(obj, &origin)),
        RecordKind::ActivityLog => out.push(activity_log::adapt(obj, &origin)),
        RecordKind::GatewayLog => out.push(gateway_log::adapt(obj, &origin)),
        RecordKind::GatewayLlmLog => gateway_llm_log::adapt(obj, &origin, out),
        RecordKind::ChatExchange => out.push(chat_exchange::adapt(obj, &origin)),
        RecordKind::TrainingExample => out.push(training_example::adapt(obj, &origin)),
        RecordKind::OtelSpan => otel_span::adapt(obj, &origin, out),
    }
}

/// A 128-bit hash of the record's JSON text, as 32 hex digits: its identity in alert
/// fingerprints. Stable across runs, platforms and thread counts (a fixed algorithm defined
/// here, not std's hasher, whose output may change between Rust releases); not a security
/// hash. Two multiply-rotate lanes over 8-byte words keep it off the profile.
pub fn record_hash(text: &str) -> String {
    hex32(record_hash128(text))
}

/// `format!("{:032x}", v)`, digit by digit: through the formatting machinery it took some 770
/// instructions, and every record is hashed.
fn hex32(v: u128) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 32];
    for (i, digit) in text.iter_mut().enumerate() {
        *digit = DIGITS[((v >> (124 - 4 * i)) & 0xf) as usize];
    }
    String::from_utf8(text.to_vec()).unwrap_or_default()
}

/// [`record_hash`] as a number, for keys that never need the hex.
pub fn record_hash128(text: &str) -> u128 {
    bytes_hash128(text.as_bytes())
}

/// [`record_hash128`] of bytes that need not be text.
pub fn bytes_hash128(bytes: &[u8]) -> u128 {
    hash128_words(bytes, |w| w)
}

/// [`record_hash128`] of the text with ASCII letters lower-cased, without copying it: keys
/// that logs spell in either case (ARM resource ids, object ids).
pub fn hash128_ascii_lower(text: &str) -> u128 {
    hash128_words(text.as_bytes(), ascii_lower_word)
}

/// Lower-cases the ASCII letters among eight bytes at once (other bytes, non-ASCII ones
/// included, are left alone): byte by byte, hashing resource ids took twice as long.
fn ascii_lower_word(w: u64) -> u64 {
    const LOW_SEVEN: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = w & LOW_SEVEN;
    // A byte's high bit says: its low seven bits are at least b'A' (0x41 + 0x3F = 0x80), and
    // above b'Z' (0x5B + 0x25 = 0x80). No sum carries into the next byte.
    let at_least_a = low + 0x3F3F_3F3F_3F3F_3F3F;
    let above_z = low + 0x2525_2525_2525_2525;
    let upper = at_least_a & !above_z & !w & HIGH;
    w | (upper >> 2)
}

/// Hashes `bytes` read as little-endian words, each passed through `map` (which must map a
/// zero byte to zero: the last word is padded with them).
fn hash128_words(bytes: &[u8], map: impl Fn(u64) -> u64) -> u128 {
    const P1: u64 = 0x9E37_79B9_7F4A_7C15;
    const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P3: u64 = 0x1656_67B1_9E37_79F9;
    let (mut h1, mut h2) = (0x243F_6A88_85A3_08D3u64 ^ bytes.len() as u64, 0x1319_8A2E_0370_7344u64);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = map(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        h1 = (h1 ^ w).wrapping_mul(P1).rotate_left(31);
        h2 = (h2 ^ w.rotate_left(23)).wrapping_mul(P2).rotate_left(29).wrapping_add(h1);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    let w = map(u64::from_le_bytes(tail)) ^ ((chunks.remainder().len() as u64) << 56);
    h1 = (h1 ^ w).wrapping_mul(P1).rotate_left(31);
    h2 = (h2 ^ w.rotate_left(23)).wrapping_mul(P2).rotate_left(29).wrapping_add(h1);
    let fmix = |mut k: u64| {
        k ^= k >> 33;
        k = k.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        k ^= k >> 33;
        k = k.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        k ^ (k >> 33)
    };
    let a = fmix(h1 ^ h2.wrapping_mul(P3));
    let b = fmix(h2 ^ a);
    (u128::from(a) << 64) | u128::from(b)
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

/// Splits an ARM resource id into subscription, group, provider and first resource name.
pub(crate) fn parse_resource_id(id: &str, res: &mut Resource) {
    // Resource ids have up to a dozen or so segments: one allocation, no regrowth. Found with
    // memchr: `split('/')` took 1,300 instructions per id.
    let mut parts: Vec<&str> = Vec::with_capacity(16);
    let mut start = 0;
    for slash in memchr::memchr_iter(b'/', id.as_bytes()).chain(std::iter::once(id.len())) {
        if slash > start {
            parts.push(&id[start..slash]);
        }
        start = slash + 1;
    }
    let mut i = 0;
    while i + 1 < parts.len() {
        let key = parts[i];
        if key.eq_ignore_ascii_case("subscriptions") {
            res.subscription_id.get_or_insert_with(|| parts[i + 1].to_owned());
        } else if key.eq_ignore_ascii_case("resourcegroups") {
            res.resource_group.get_or_insert_with(|| parts[i + 1].to_owned());
        } else if key.eq_ignore_ascii_case("providers") && i + 3 < parts.len() && res.provider.is_none() {
            let mut provider = String::with_capacity(parts[i + 1].len() + 1 + parts[i + 2].len());
            provider.push_str(parts[i + 1]);
            provider.push('/');
            provider.push_str(parts[i + 2]);
            res.provider = Some(provider);
            res.account = Some(parts[i + 3].to_owned());
            i += 4;
            continue;
        }
        i += 2;
    }
    res.id.get_or_insert_with(|| id.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn a_case_blind_hash_is_the_hash_of_the_lower_cased_text(text in "(?s).{0,40}", word: u64) {
            proptest::prop_assert_eq!(hash128_ascii_lower(&text), bytes_hash128(text.to_ascii_lowercase().as_bytes()));
            let bytewise = u64::from_le_bytes(word.to_le_bytes().map(|b| b.to_ascii_lowercase()));
            proptest::prop_assert_eq!(ascii_lower_word(word), bytewise);
        }
    }

    proptest::proptest! {
        #[test]
        fn resource_id_segments_are_what_splitting_on_slashes_finds(id in "(/|subscriptions|RESOURCEGROUPS|providers|S1|rg|MICROSOFT.X|accounts|a){0,12}") {
            let mut fast = Resource::default();
            parse_resource_id(&id, &mut fast);
            let parts: Vec<&str> = id.split('/').filter(|p| !p.is_empty()).collect();
            let mut slow = Resource { id: Some(id.clone()), ..Resource::default() };
            let mut i = 0;
            while i + 1 < parts.len() {
                if parts[i].eq_ignore_ascii_case("subscriptions") {
                    slow.subscription_id.get_or_insert_with(|| parts[i + 1].to_owned());
                } else if parts[i].eq_ignore_ascii_case("resourcegroups") {
                    slow.resource_group.get_or_insert_with(|| parts[i + 1].to_owned());
                } else if parts[i].eq_ignore_ascii_case("providers") && i + 3 < parts.len() && slow.provider.is_none() {
                    slow.provider = Some(format!("{}/{}", parts[i + 1], parts[i + 2]));
                    slow.account = Some(parts[i + 3].to_owned());
                    i += 4;
                    continue;
                }
                i += 2;
            }
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn every_byte_lower_cases_in_a_word_as_it_does_alone() {
        for b in 0..=255u8 {
            let word = u64::from_le_bytes([b, b'Q', 0xC3, b, 0x80, b'@', b'[', b]);
            let bytewise = u64::from_le_bytes(word.to_le_bytes().map(|c| c.to_ascii_lowercase()));
            assert_eq!(ascii_lower_word(word), bytewise, "byte {b:#04x}");
        }
    }

    #[test]
    fn a_line_parsed_once_still_hashes_and_words_errors_as_the_validator_does() {
        let file: Arc<str> = Arc::from("t");
        let line = r#"{"time":"2026-11-24T06:00:01Z","category":"Audit","operationName":"ListKey","properties":{}}"#;
        let padded = format!("  {line}\t ");
        let a = parse_frame(line, &file, 1, 0, ParseOptions::default());
        let b = parse_frame(&padded, &file, 1, 0, ParseOptions::default());
        assert_eq!(a.records.len(), 1);
        assert_eq!(a.records[0].record_hash, record_hash(line), "the hash is of the object's own text");
        assert_eq!(b.records[0].record_hash, a.records[0].record_hash, "surrounding whitespace is not part of it");
        let cut = parse_frame(r#"{"category":"Audit","a":1,"#, &file, 7, 0, ParseOptions::default());
        assert_eq!(cut.rejections[0].detail, "EOF while parsing an object (column 26)");
    }

    #[test]
    fn resource_id_parts() {
        let mut r = Resource::default();
        parse_resource_id(
            "/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COGNITIVESERVICES/ACCOUNTS/AOAI/PROVIDERS/MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/D",
            &mut r,
        );
        assert_eq!(r.subscription_id.as_deref(), Some("S1"));
        assert_eq!(r.resource_group.as_deref(), Some("RG"));
        assert_eq!(r.provider.as_deref(), Some("MICROSOFT.COGNITIVESERVICES/ACCOUNTS"));
        assert_eq!(r.account.as_deref(), Some("AOAI"));
    }

    #[test]
    fn record_hash_is_stable() {
        assert_eq!(record_hash("{}"), record_hash("{}"));
        assert_ne!(record_hash("{\"a\":1}"), record_hash("{\"a\":2}"));
        assert_eq!(record_hash("").len(), 32);
        for v in [0, 1, 0xf, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210, 1 << 127, record_hash128("x")] {
            assert_eq!(hex32(v), format!("{v:032x}"));
        }
    }
}
