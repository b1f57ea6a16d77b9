//! `training_example`: fine-tuning data (`{"messages":[...]}` lines with optional `weight` and
//! `tools`, and preference pairs). Every turn is text a poisoner may have planted; tool
//! descriptions are instructions the tuned model will learn to follow.

use super::chat::{self, Side};
use super::json::{items, Obj};
use super::{Record, RecordKind, RecordOrigin, SourceFormat, Surface};

pub fn adapt(obj: &Obj<'_>, at: &RecordOrigin) -> Record {
    let mut r = Record::new(RecordKind::TrainingExample, SourceFormat::App, at);
    messages(obj, "messages", &mut r);
    if let Some(input) = obj.get("input").and_then(Obj::from_raw) {
        messages(&input, "input.messages", &mut r);
        tools(&input, "input.", &mut r);
    }
    for key in ["preferred_output", "non_preferred_output"] {
        for (i, m) in items(obj.get(key)).enumerate() {
            if let Some(m) = Obj::from_raw(m) {
                chat::apply_message(&m, &chat::item_path(key, "", i), Side::Response, &mut r);
            }
        }
    }
    tools(obj, "", &mut r);
    r
}

fn messages(obj: &Obj<'_>, at: &str, r: &mut Record) {
    for (i, m) in items(obj.get("messages")).enumerate() {
        if let Some(m) = Obj::from_raw(m) {
            chat::apply_message(&m, &chat::item_path(at, "", i), Side::Request, r);
        }
    }
}

/// Tool (and legacy function) descriptions, as system-level instructions.
fn tools(obj: &Obj<'_>, prefix: &str, r: &mut Record) {
    for key in ["tools", "functions"] {
        for (i, t) in items(obj.get(key)).enumerate() {
            let Some(t) = Obj::from_raw(t) else { continue };
            let f = t.get("function").and_then(Obj::from_raw).unwrap_or(t);
            if let Some(desc) = f.text(&["description"]) {
                r.push_text(Surface::System, format!("{prefix}{key}[{i}].description"), desc, false);
            }
        }
    }
}
