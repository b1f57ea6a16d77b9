//! Field conventions shared by several adapters: caller IPs, identity claims, localizable
//! values, HTTP status names and Log Analytics column suffixes.

use super::json::{decode_str, Nested, Obj, Raw};
use super::{AuthKind, Caller, Status};

/// Normalizes a logged caller IP: strips ports and brackets, keeps the masked form Azure
/// OpenAI writes (`81.2.69.***`) and says whether it is masked.
pub fn caller_ip(raw: &str) -> Option<(String, bool)> {
    let s = raw.trim();
    // Some categories log a list ("1.2.3.4, 10.0.0.1"): the first hop is the client.
    let s = s.split(',').next().unwrap_or("").trim();
    if s.is_empty() {
        return None;
    }
    let masked = s.contains('*') || s.to_ascii_lowercase().ends_with(".xxx");
    if masked {
        return Some((s.to_owned(), true));
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        // The parser accepts IPv4 only in the form it prints (no leading zeros): its text is
        // kept, as printing the address again cost 1,400 instructions.
        let text = if ip.is_ipv4() { s.to_owned() } else { canonical(ip) };
        return Some((text, false));
    }
    if let Ok(sock) = s.parse::<std::net::SocketAddr>() {
        return Some((canonical(sock.ip()), false));
    }
    // "1.2.3.4:5678" handled above; a bare "[::1]" is not a SocketAddr.
    let unbracketed = s.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = unbracketed.parse::<std::net::IpAddr>() {
        return Some((canonical(ip), false));
    }
    // Unparseable but present: keep it as logged so nothing is lost.
    Some((s.to_owned(), false))
}

fn canonical(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

pub fn set_caller_ip(caller: &mut Caller, raw: Option<String>) {
    if let Some((ip, masked)) = raw.as_deref().and_then(caller_ip) {
        caller.ip = Some(ip);
        caller.ip_masked = masked;
    }
}

const CLAIM_UPN: &[&str] = &["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn"];
const CLAIM_NAME: &[&str] = &["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "unique_name"];
const CLAIM_OID: &[&str] = &["http://schemas.microsoft.com/identity/claims/objectidentifier", "oid"];
const CLAIM_TENANT: &[&str] = &["http://schemas.microsoft.com/identity/claims/tenantid", "tid"];
const CLAIM_AUTHN: &[&str] = &["http://schemas.microsoft.com/claims/authnmethodsreferences", "amr"];

/// Fills caller fields from a JWT claims object (Activity Log `claims`, `identity.claims`).
pub fn apply_claims(claims: &Obj<'_>, caller: &mut Caller) {
    let upn = claims.text(CLAIM_UPN).or_else(|| {
        claims.text(CLAIM_NAME).map(|n| n.trim().to_owned()).filter(|n| n.contains('@'))
    });
    if upn.is_some() {
        caller.upn = upn;
    }
    if let Some(oid) = claims.text(CLAIM_OID) {
        caller.object_id = Some(oid);
    }
    if let Some(app) = claims.text(&["appid", "azp"]) {
        caller.app_id = Some(app);
    }
    if let Some(t) = claims.text(CLAIM_TENANT) {
        caller.tenant_id = Some(t);
    }
    if let Some(m) = claims.text(CLAIM_AUTHN) {
        caller.auth_methods = Some(m);
    }
    if caller.ip.is_none() {
        set_caller_ip(caller, claims.text(&["ipaddr"]));
    }
    let idtyp = claims.text(&["idtyp"]).unwrap_or_default();
    caller.auth_kind = Some(if idtyp.eq_ignore_ascii_case("app") {
        AuthKind::EntraApp
    } else if caller.upn.is_some() || idtyp.eq_ignore_ascii_case("user") {
        AuthKind::EntraUser
    } else if caller.app_id.is_some() && caller.upn.is_none() {
        // Tokens of service principals and managed identities carry an appid and no UPN.
        AuthKind::EntraApp
    } else {
        AuthKind::Entra
    });
}

/// Refines the auth kind from an RBAC evidence `principalType`.
pub fn apply_principal_type(principal_type: Option<&str>, caller: &mut Caller) {
    match principal_type.map(str::to_ascii_lowercase).as_deref() {
        Some("user") => caller.auth_kind = Some(AuthKind::EntraUser),
        Some("serviceprincipal" | "msi" | "managedidentity" | "application") => {
            caller.auth_kind = Some(AuthKind::EntraApp)
        }
        _ => {}
    }
}

/// A value that is either a plain string or a localizable `{value, localizedValue}` object.
pub fn localizable(raw: Option<Raw<'_>>) -> Option<String> {
    let raw = raw?;
    if let Some(s) = decode_str(raw) {
        let t = s.trim();
        return (!t.is_empty()).then(|| t.to_owned());
    }
    Obj::from_raw(raw).and_then(|o| o.text(&["value", "localizedValue"]))
}

/// Looks up a field that Log Analytics may have flattened with a type suffix
/// (`modelDeploymentName_s`, `durationMs_d`, `AssetIdentity_g`).
pub fn la_text(obj: &Obj<'_>, name: &str) -> Option<String> {
    obj.text(&[name]).or_else(|| {
        // Most records have none of these columns: the object's key filter, then one pass
        // over its keys, rule them out without building the five suffixed names. (Asked for
        // every absent field of every gateway record, the pass alone was nearly 2% of a scan.)
        const SUFFIXES: [&str; 5] = ["_s", "_d", "_g", "_b", "_t"];
        let first = name.bytes().next().unwrap_or(b'_');
        if !obj.may_have_key_like(name.len() + 2, first, &SUFFIXES.map(|s| s.as_bytes()[1])) {
            return None;
        }
        let suffixed = |k: &str| k.len() == name.len() + 2 && k.is_char_boundary(name.len()) && k[..name.len()].eq_ignore_ascii_case(name);
        if !obj.keys().any(|k| suffixed(&k)) {
            return None;
        }
        SUFFIXES.iter().find_map(|suffix| obj.text(&[&format!("{name}{suffix}")]))
    })
}

/// An object that may be nested JSON, a JSON string, or a Log Analytics `_d` dynamic column.
pub fn nested<'a>(obj: &Obj<'a>, names: &[&str]) -> Nested<'a> {
    Nested::new(obj.get_any(names))
}

/// HTTP status from a number, a numeric string or an ARM status name (`OK`, `Created`).
pub fn http_status(s: &str) -> Option<u16> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u16>() {
        return (100..600).contains(&n).then_some(n);
    }
    let lower = t.to_ascii_lowercase().replace([' ', '_'], "");
    Some(match lower.as_str() {
        "ok" => 200,
        "created" => 201,
        "accepted" => 202,
        "nocontent" => 204,
        "badrequest" => 400,
        "unauthorized" => 401,
        "forbidden" => 403,
        "notfound" => 404,
        "conflict" => 409,
        "preconditionfailed" => 412,
        "toomanyrequests" => 429,
        "internalservererror" => 500,
        "serviceunavailable" => 503,
        _ => return None,
    })
}

/// Sets `status.result` and `status.success` from a result word (`Success`, `Failed`, ...).
pub fn apply_result(status: &mut Status, result: Option<String>) {
    if let Some(r) = result {
        let lower = r.to_ascii_lowercase();
        status.success = match lower.as_str() {
            "success" | "succeeded" | "true" => Some(true),
            "failure" | "failed" | "false" => Some(false),
            _ => status.success,
        };
        status.result = Some(r);
    }
}

/// Sets the status code from an HTTP code, or keeps a non-numeric signature as detail.
pub fn apply_signature(status: &mut Status, signature: Option<String>) {
    if let Some(sig) = signature {
        match http_status(&sig) {
            Some(code) if status.code.is_none() => status.code = Some(code),
            Some(_) => {}
            None => status.detail = Some(sig),
        }
    }
    if let (Some(code), None) = (status.code, status.success) {
        status.success = Some(code < 400);
    }
}

/// The api-version from a URL query string.
pub fn api_version_from_url(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="))
        .map(|v| v.split('#').next().unwrap_or(v).to_owned())
        .filter(|v| !v.is_empty())
}

/// The deployment name from an Azure OpenAI path (`/openai/deployments/{name}/...`).
pub fn deployment_from_url(url: &str) -> Option<String> {
    // Slash by slash with memchr: splitting on a set of characters and then on '/' took 2,400
    // instructions per gateway record.
    let path = &url[..memchr::memchr2(b'?', b'#', url.as_bytes()).unwrap_or(url.len())];
    let bytes = path.as_bytes();
    let segment_end = |from: usize| memchr::memchr(b'/', &bytes[from..]).map_or(bytes.len(), |n| from + n);
    let mut start = 0;
    loop {
        let end = segment_end(start);
        if bytes[start..end].eq_ignore_ascii_case(b"deployments") {
            if end == bytes.len() {
                return None;
            }
            let name = &path[end + 1..segment_end(end + 1)];
            return (!name.is_empty()).then(|| name.to_owned());
        }
        if end == bytes.len() {
            return None;
        }
        start = end + 1;
    }
}

/// Case-insensitive header lookup in a logged header map (object, JSON string, or list of
/// `{name, value}` pairs).
pub fn header(headers: &Nested<'_>, name: &str) -> Option<String> {
    let value = headers.value()?;
    if let Some(obj) = Obj::from_raw(value) {
        return obj.text(&[name]).or_else(|| {
            // Headers with several values arrive as arrays.
            obj.get(name).and_then(super::json::elements).and_then(|mut a| a.next()).and_then(super::json::scalar_text)
        });
    }
    super::json::elements(value)?.find_map(|item| {
        let o = Obj::from_raw(item)?;
        let n = o.text(&["name", "key"])?;
        n.eq_ignore_ascii_case(name).then(|| o.text(&["value"])).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn the_deployment_is_the_segment_after_the_first_deployments_one(url in "(/|deployments|DEPLOYMENTS|gpt-4o|x|\\?|#){0,8}") {
            let path = url.split(['?', '#']).next().unwrap_or(&url);
            let mut segs = path.split('/');
            let mut expected = None;
            while let Some(seg) = segs.next() {
                if seg.eq_ignore_ascii_case("deployments") {
                    expected = segs.next().filter(|s| !s.is_empty()).map(str::to_owned);
                    break;
                }
            }
            proptest::prop_assert_eq!(deployment_from_url(&url), expected);
        }

        #[test]
        fn an_ipv4_address_is_kept_as_the_text_it_was_parsed_from(text in "[0-9]{1,4}(\\.[0-9]{1,4}){3}") {
            if let Ok(ip) = text.parse::<std::net::IpAddr>() {
                proptest::prop_assert_eq!(caller_ip(&text), Some((canonical(ip), false)));
            }
        }
    }

    #[test]
    fn log_analytics_columns_are_found_with_any_type_suffix_and_case() {
        let doc = crate::record::json::Doc::parse(r#"{"DurationMs_d":12,"Model_s":"gpt-4o","method":"POST","x":1,"ab":2,"a_s":3}"#).unwrap();
        let obj = doc.obj().unwrap();
        assert_eq!(la_text(&obj, "durationMs").as_deref(), Some("12"));
        assert_eq!(la_text(&obj, "model").as_deref(), Some("gpt-4o"));
        assert_eq!(la_text(&obj, "method").as_deref(), Some("POST"), "unsuffixed first");
        assert_eq!(la_text(&obj, "backendUrl"), None);
        assert_eq!(la_text(&obj, "a").as_deref(), Some("3"));
        // Absent names whose suffixed spelling shares a length and first letter with a key.
        assert_eq!(la_text(&obj, "Dx"), None);
        assert_eq!(la_text(&obj, "Modex"), None);
        // A key spelled with an escape is still found (its object's key filter lets all pass).
        let doc = crate::record::json::Doc::parse(r#"{"Model\u005fs":"gpt-4o"}"#).unwrap();
        assert_eq!(la_text(&doc.obj().unwrap(), "model").as_deref(), Some("gpt-4o"));
    }

    #[test]
    fn caller_ip_forms() {
        assert_eq!(caller_ip("81.2.69.***"), Some(("81.2.69.***".into(), true)));
        assert_eq!(caller_ip("203.0.113.7:51234"), Some(("203.0.113.7".into(), false)));
        assert_eq!(caller_ip("[2001:db8::1]:443"), Some(("2001:db8::1".into(), false)));
        assert_eq!(caller_ip("::ffff:198.51.100.2"), Some(("198.51.100.2".into(), false)));
        assert_eq!(caller_ip("198.51.100.2, 10.0.0.4"), Some(("198.51.100.2".into(), false)));
        assert_eq!(caller_ip("  "), None);
    }

    #[test]
    fn url_parts() {
        let u = "https://x.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21";
        assert_eq!(deployment_from_url(u).as_deref(), Some("gpt-4o-prod"));
        assert_eq!(api_version_from_url(u).as_deref(), Some("2024-10-21"));
    }

    #[test]
    fn status_names() {
        assert_eq!(http_status("Created"), Some(201));
        assert_eq!(http_status("429"), Some(429));
        assert_eq!(http_status("Succeeded.Created"), None);
    }
}
