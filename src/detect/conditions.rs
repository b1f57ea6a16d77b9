//! Conditions on normalized record fields (not text): what metadata rules test. Fields are
//! named as `aihunt inspect` prints them; comparisons ignore ASCII case.

use std::borrow::Cow;

use regex_automata::meta::Regex;

use crate::intel::{Confidence, Intel};
use crate::record::{FilterTarget, Record, RecordKind};

/// The record fields a condition may name.
pub const FIELDS: &[&str] = &[
    "kind",
    "sourceFormat",
    "category",
    "operation",
    "deployment",
    "model",
    "url",
    "method",
    "status.code",
    "status.result",
    "status.detail",
    "resource.id",
    "resource.provider",
    "caller.ip",
    "caller.ipMasked",
    "caller.endUserIp",
    "caller.userAgent",
    "caller.upn",
    "caller.objectId",
    "caller.appId",
    "caller.authKind",
    "caller.endUserId",
    "caller.applicationName",
    "caller.apimSubscriptionId",
    "controlPlane.action",
    "controlPlane.principalType",
    "contentFilter.promptBlocked",
    "contentFilter.completionFiltered",
    "contentFilter.verdict",
];

#[derive(Debug, Clone)]
pub enum Test {
    AnyOf(Vec<String>),
    NotAnyOf(Vec<String>),
    Contains(Vec<String>),
    Matches(Regex),
    Exists(bool),
    /// The value is in an `--intel` list.
    InList(String),
}

#[derive(Debug, Clone)]
pub struct Condition {
    pub field: &'static str,
    pub test: Test,
    /// For a list test of `kind`, the kinds that are listed, a bit each: most conditions
    /// test the kind, on every record, and a bit test spares comparing names.
    listed_kinds: Option<u8>,
}

impl Condition {
    pub fn new(field: &'static str, test: Test) -> Condition {
        let listed_kinds = match &test {
            Test::AnyOf(list) | Test::NotAnyOf(list) if field == "kind" => Some(
                RecordKind::ALL
                    .into_iter()
                    .filter(|k| list.iter().any(|l| l.eq_ignore_ascii_case(k.as_str())))
                    .fold(0u8, |bits, k| bits | 1 << k as u8),
            ),
            _ => None,
        };
        Condition { field, test, listed_kinds }
    }

    /// The first field value that satisfies the condition (its evidence), or `None`. Borrowed
    /// where it can be: conditions are tested on every record and rarely all hold.
    pub fn eval<'r>(&self, r: &'r Record, intel: &Intel) -> Option<Cow<'r, str>> {
        if let Some(bits) = self.listed_kinds {
            let listed = bits >> r.kind as u8 & 1 == 1;
            let holds = listed == matches!(self.test, Test::AnyOf(_));
            return holds.then_some(Cow::Borrowed(r.kind.as_str()));
        }
        let values = field_values(r, self.field);
        let first_or_empty = |values: Values<'r>| values.into_iter().next().unwrap_or(Cow::Borrowed(""));
        match &self.test {
            Test::Exists(want) => (values.is_empty() != *want).then(|| first_or_empty(values)),
            // Holds when no value of the field is in the list (an absent field included).
            Test::NotAnyOf(list) => {
                let listed = values.iter().any(|v| list.iter().any(|l| l.eq_ignore_ascii_case(v)));
                (!listed).then(|| first_or_empty(values))
            }
            Test::AnyOf(list) => values.into_iter().find(|v| list.iter().any(|l| l.eq_ignore_ascii_case(v))),
            Test::Contains(list) => values.into_iter().find(|v| list.iter().any(|l| contains_ignore_ascii_case(v, l))),
            Test::Matches(re) => values.into_iter().find(|v| re.is_match(v.as_ref() as &str)),
            Test::InList(list) => values.into_iter().find_map(|v| {
                intel.lookup(list, &v).map(|c| match c {
                    Confidence::Exact => v,
                    Confidence::MaskedPrefix => Cow::Owned(format!("{v} (masked; its /24 is listed)")),
                })
            }),
        }
    }
}

/// Whether `haystack` contains `lower_needle` (already lower case), ignoring ASCII case.
fn contains_ignore_ascii_case(haystack: &str, lower_needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), lower_needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// A field's values: none or one except for `contentFilter.verdict`, so the first is kept
/// inline and the common case allocates nothing.
#[derive(Default)]
pub struct Values<'r> {
    first: Option<Cow<'r, str>>,
    more: Vec<Cow<'r, str>>,
}

impl<'r> Values<'r> {
    fn one(v: Cow<'r, str>) -> Values<'r> {
        Values { first: Some(v), more: Vec::new() }
    }

    fn push(&mut self, v: Cow<'r, str>) {
        if self.first.is_none() {
            self.first = Some(v);
        } else {
            self.more.push(v);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Cow<'r, str>> {
        self.first.iter().chain(&self.more)
    }
}

impl<'r> IntoIterator for Values<'r> {
    type Item = Cow<'r, str>;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Cow<'r, str>>, std::vec::IntoIter<Cow<'r, str>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.more)
    }
}

/// The values of a field on a record (several for `contentFilter.verdict`).
pub fn field_values<'r>(r: &'r Record, field: &str) -> Values<'r> {
    let one = |v: Option<&'r String>| Values { first: v.map(|s| Cow::Borrowed(s.as_str())), more: Vec::new() };
    match field {
        "kind" => Values::one(Cow::Borrowed(r.kind.as_str())),
        "sourceFormat" => Values::one(Cow::Owned(format!("{:?}", r.source_format).to_ascii_lowercase())),
        "category" => one(r.category.as_ref()),
        "operation" => one(r.operation.as_ref()),
        "deployment" => one(r.deployment.as_ref()),
        "model" => one(r.model.as_ref()),
        "url" => one(r.url.as_ref()),
        "method" => one(r.method.as_ref()),
        "status.code" => Values { first: r.status.code.map(|c| Cow::Owned(c.to_string())), more: Vec::new() },
        "status.result" => one(r.status.result.as_ref()),
        "status.detail" => one(r.status.detail.as_ref()),
        "resource.id" => one(r.resource.id.as_ref()),
        "resource.provider" => one(r.resource.provider.as_ref()),
        "caller.ip" => one(r.caller.ip.as_ref()),
        "caller.ipMasked" => Values::one(Cow::Borrowed(if r.caller.ip_masked { "true" } else { "false" })),
        "caller.endUserIp" => one(r.caller.end_user_ip.as_ref()),
        "caller.userAgent" => one(r.caller.user_agent.as_ref()),
        "caller.upn" => one(r.caller.upn.as_ref()),
        "caller.objectId" => one(r.caller.object_id.as_ref()),
        "caller.appId" => one(r.caller.app_id.as_ref()),
        "caller.authKind" => Values {
            first: r.caller.auth_kind.map(|k| Cow::Owned(serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())),
            more: Vec::new(),
        },
        "caller.endUserId" => one(r.caller.end_user_id.as_ref()),
        "caller.applicationName" => one(r.caller.application_name.as_ref()),
        "caller.apimSubscriptionId" => one(r.caller.apim_subscription_id.as_ref()),
        "controlPlane.action" => one(r.control_plane.as_ref().and_then(|c| c.action.as_ref())),
        "controlPlane.principalType" => one(r.control_plane.as_ref().and_then(|c| c.principal_type.as_ref())),
        "contentFilter.promptBlocked" => Values::one(Cow::Borrowed(if r.content_filter.prompt_blocked { "true" } else { "false" })),
        "contentFilter.completionFiltered" => {
            Values::one(Cow::Borrowed(if r.content_filter.completion_filtered { "true" } else { "false" }))
        }
        // One token per verdict state: `prompt:jailbreak:filtered`, `prompt:jailbreak:detected`,
        // `completion:violence:medium`, ...
        "contentFilter.verdict" => {
            let mut out = Values::default();
            for v in &r.content_filter.verdicts {
                let target = match v.target {
                    FilterTarget::Prompt => "prompt",
                    FilterTarget::Completion => "completion",
                };
                if v.filtered {
                    out.push(Cow::Owned(format!("{target}:{}:filtered", v.category)));
                }
                if v.detected == Some(true) {
                    out.push(Cow::Owned(format!("{target}:{}:detected", v.category)));
                }
                if let Some(sev) = &v.severity {
                    out.push(Cow::Owned(format!("{target}:{}:{sev}", v.category)));
                }
            }
            out
        }
        _ => Values::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RecordOrigin, SourceFormat};

    #[test]
    fn a_kind_list_holds_for_the_kinds_it_names_in_any_case() {
        let at = RecordOrigin { file: "t".into(), line: 1, index: None, offset: 0 };
        let intel = Intel::defaults();
        let lists = [vec!["training_example".to_owned()], vec!["Activity_Log".into(), "GATEWAY_LOG".into()], vec!["no_such_kind".into()], vec![]];
        for kind in RecordKind::ALL {
            let record = Record::new(kind, SourceFormat::Storage, &at);
            for list in &lists {
                let named = list.iter().any(|l| l.eq_ignore_ascii_case(kind.as_str()));
                let any_of = Condition::new("kind", Test::AnyOf(list.clone())).eval(&record, &intel);
                let not_any_of = Condition::new("kind", Test::NotAnyOf(list.clone())).eval(&record, &intel);
                assert_eq!(any_of.as_deref(), named.then_some(kind.as_str()), "{kind:?} any_of {list:?}");
                assert_eq!(not_any_of.as_deref(), (!named).then_some(kind.as_str()), "{kind:?} not_any_of {list:?}");
            }
        }
    }
}
