//! `activity_log`: the Azure Activity Log (control plane) in its three shapes: storage/Event
//! Hubs (`identity.claims`), REST/portal (`{value, localizedValue}`, top-level `claims`) and
//! Log Analytics `AzureActivity` rows (`OperationNameValue`, `Claims_d`).

use super::fields::{self, localizable, nested, set_caller_ip};
use super::json::Obj;
use super::{parse_resource_id, time, ControlPlane, Record, RecordKind, RecordOrigin, SourceFormat};

pub fn adapt(obj: &Obj<'_>, at: &RecordOrigin) -> Record {
    if obj.has("TimeGenerated") || obj.has("OperationNameValue") {
        log_analytics(obj, at)
    } else if obj.has("eventTimestamp") {
        rest(obj, at)
    } else {
        storage(obj, at)
    }
}

fn storage(obj: &Obj<'_>, at: &RecordOrigin) -> Record {
    let mut r = Record::new(RecordKind::ActivityLog, SourceFormat::Storage, at);
    r.time = obj.text(&["time"]).as_deref().and_then(time::parse);
    r.operation = obj.text(&["operationName"]);
    r.category = obj.text(&["category"]);
    common(obj, &mut r);
    fields::apply_result(&mut r.status, obj.text(&["resultType"]));
    fields::apply_signature(&mut r.status, obj.text(&["resultSignature"]));
    set_caller_ip(&mut r.caller, obj.text(&["callerIpAddress"]));

    let mut cp = ControlPlane { level: obj.text(&["level"]), ..ControlPlane::default() };
    if let Some(identity) = obj.get("identity").and_then(Obj::from_raw) {
        if let Some(claims) = identity.get_any(&["claims", "claim"]).and_then(Obj::from_raw) {
            fields::apply_claims(&claims, &mut r.caller);
        }
        if let Some(auth) = identity.get("authorization").and_then(Obj::from_raw) {
            authorization(&auth, &mut cp, &mut r);
        }
    }
    properties(obj, &mut cp, &mut r);
    r.control_plane = Some(cp);
    r
}

fn rest(obj: &Obj<'_>, at: &RecordOrigin) -> Record {
    let mut r = Record::new(RecordKind::ActivityLog, SourceFormat::Rest, at);
    r.time = obj.text(&["eventTimestamp", "submissionTimestamp"]).as_deref().and_then(time::parse);
    r.operation = localizable(obj.get("operationName"));
    r.category = localizable(obj.get("category"));
    common(obj, &mut r);
    fields::apply_result(&mut r.status, localizable(obj.get("status")));
    fields::apply_signature(&mut r.status, localizable(obj.get("subStatus")));
    if r.resource.subscription_id.is_none() {
        r.resource.subscription_id = obj.text(&["subscriptionId"]);
    }
    if r.resource.resource_group.is_none() {
        r.resource.resource_group = obj.text(&["resourceGroupName"]);
    }
    r.caller.tenant_id = obj.text(&["tenantId"]);

    let mut cp = ControlPlane {
        level: obj.text(&["level"]),
        operation_id: obj.text(&["operationId"]),
        event_data_id: obj.text(&["eventDataId"]),
        ..ControlPlane::default()
    };
    if let Some(http) = nested(obj, &["httpRequest"]).obj() {
        set_caller_ip(&mut r.caller, http.text(&["clientIpAddress"]));
        r.method = http.text(&["method"]);
    }
    if let Some(claims) = nested(obj, &["claims"]).obj() {
        fields::apply_claims(&claims, &mut r.caller);
    }
    caller_field(obj.text(&["caller"]), &mut r);
    if let Some(auth) = nested(obj, &["authorization"]).obj() {
        authorization(&auth, &mut cp, &mut r);
    }
    properties(obj, &mut cp, &mut r);
    r.control_plane = Some(cp);
    r
}

fn log_analytics(obj: &Obj<'_>, at: &RecordOrigin) -> Record {
    let mut r = Record::new(RecordKind::ActivityLog, SourceFormat::LogAnalytics, at);
    r.time = obj.text(&["TimeGenerated", "EventSubmissionTimestamp"]).as_deref().and_then(time::parse);
    r.operation = obj.text(&["OperationNameValue"]).or_else(|| localizable(obj.get("OperationName")));
    r.category = obj.text(&["CategoryValue"]).or_else(|| localizable(obj.get("Category")));
    if let Some(id) = obj.text(&["_ResourceId", "ResourceId"]) {
        parse_resource_id(&id, &mut r.resource);
    }
    r.resource.subscription_id = r.resource.subscription_id.take().or_else(|| obj.text(&["SubscriptionId"]));
    r.resource.resource_group = r.resource.resource_group.take().or_else(|| obj.text(&["ResourceGroup"]));
    r.correlation_id = obj.text(&["CorrelationId"]);
    fields::apply_result(&mut r.status, obj.text(&["ActivityStatusValue", "ActivityStatus"]));
    fields::apply_signature(&mut r.status, obj.text(&["ActivitySubstatusValue", "ActivitySubstatus"]));
    set_caller_ip(&mut r.caller, obj.text(&["CallerIpAddress"]));

    let mut cp = ControlPlane {
        level: obj.text(&["Level"]),
        operation_id: obj.text(&["OperationId"]),
        event_data_id: obj.text(&["EventDataId"]),
        ..ControlPlane::default()
    };
    // `Claims_d` is the dynamic column; `Claims` the same object serialised as a string.
    if let Some(claims) = nested(obj, &["Claims_d", "Claims"]).obj() {
        fields::apply_claims(&claims, &mut r.caller);
    }
    caller_field(obj.text(&["Caller"]), &mut r);
    if let Some(auth) = nested(obj, &["Authorization_d", "Authorization"]).obj() {
        authorization(&auth, &mut cp, &mut r);
    }
    if let Some(http) = nested(obj, &["HTTPRequest"]).obj() {
        if r.caller.ip.is_none() {
            set_caller_ip(&mut r.caller, http.text(&["clientIpAddress"]));
        }
        r.method = http.text(&["method"]);
    }
    if let Some(props) = nested(obj, &["Properties_d", "Properties"]).obj() {
        status_code(&props, &mut r);
        cp.event_category = props.text(&["eventCategory"]);
    }
    r.control_plane = Some(cp);
    r
}

/// Fields with the same name in the storage and REST shapes.
fn common(obj: &Obj<'_>, r: &mut Record) {
    if let Some(id) = obj.text(&["resourceId"]) {
        parse_resource_id(&id, &mut r.resource);
    }
    r.resource.location = obj.text(&["location"]);
    r.correlation_id = obj.text(&["correlationId"]);
    r.duration_ms = obj.f64(&["durationMs"]);
}

/// `caller` is a UPN for users and an object id for service principals.
fn caller_field(caller: Option<String>, r: &mut Record) {
    if let Some(c) = caller {
        if c.contains('@') {
            r.caller.upn.get_or_insert(c);
        } else {
            r.caller.object_id.get_or_insert(c);
        }
    }
}

fn authorization(auth: &Obj<'_>, cp: &mut ControlPlane, r: &mut Record) {
    cp.action = auth.text(&["action"]);
    cp.scope = auth.text(&["scope"]).map(|s| s.split_whitespace().collect::<Vec<_>>().join(""));
    cp.role = auth.text(&["role"]);
    if let Some(ev) = auth.get("evidence").and_then(Obj::from_raw) {
        cp.role = cp.role.take().or_else(|| ev.text(&["role"]));
        cp.principal_type = ev.text(&["principalType"]);
        cp.principal_id = ev.text(&["principalId"]);
        fields::apply_principal_type(cp.principal_type.as_deref(), &mut r.caller);
    }
    if r.operation.is_none() {
        r.operation = cp.action.clone();
    }
}

fn properties(obj: &Obj<'_>, cp: &mut ControlPlane, r: &mut Record) {
    if let Some(props) = nested(obj, &["properties"]).obj() {
        status_code(&props, r);
        cp.event_category = props.text(&["eventCategory"]);
    }
}

fn status_code(props: &Obj<'_>, r: &mut Record) {
    if let Some(code) = props.text(&["statusCode"]).as_deref().and_then(fields::http_status) {
        r.status.code = Some(code);
        if r.status.success.is_none() {
            r.status.success = Some(code < 400);
        }
    }
}
