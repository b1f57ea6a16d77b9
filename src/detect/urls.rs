//! Tests on URLs found in text: listed in local threat intelligence, or built to deceive
//! (IP-literal hosts, punycode, look-alike letters, a trusted name before an `@`, a brand's name
//! in someone else's domain).

use std::net::IpAddr;

use crate::intel::{url_host, Intel};
use crate::rules::UrlTest;

/// Brands phishing kits imitate, with the registered domains that really belong to them.
const BRANDS: &[(&str, &[&str])] = &[
    ("microsoft", &["microsoft.com", "microsoftonline.com", "live.com", "office.com", "windows.net", "azure.com", "msft.net", "microsoft.net", "sharepoint.com", "visualstudio.com", "bing.com", "msn.com", "skype.com", "xbox.com", "azureedge.net", "azurewebsites.net", "microsoftstore.com"]),
    ("office365", &["office.com", "office365.com", "microsoft.com"]),
    ("outlook", &["outlook.com", "live.com", "office.com", "microsoft.com"]),
    ("onedrive", &["onedrive.com", "live.com", "microsoft.com"]),
    ("sharepoint", &["sharepoint.com", "microsoft.com"]),
    ("azure", &["azure.com", "microsoft.com", "windows.net", "azure.net", "azureedge.net", "azurewebsites.net", "azure-api.net"]),
    ("paypal", &["paypal.com", "paypal.me", "paypalobjects.com"]),
    ("apple", &["apple.com", "icloud.com", "apple.news"]),
    ("icloud", &["icloud.com", "apple.com"]),
    ("google", &["google.com", "googleapis.com", "gstatic.com", "googleusercontent.com", "google.co.uk", "googlesource.com", "goo.gl"]),
    ("amazon", &["amazon.com", "amazonaws.com", "amazon.co.uk", "amazon.de", "amazon.fr", "aws.amazon.com"]),
    ("netflix", &["netflix.com", "nflxext.com"]),
    ("docusign", &["docusign.com", "docusign.net"]),
    ("dropbox", &["dropbox.com", "dropboxusercontent.com"]),
    ("linkedin", &["linkedin.com", "licdn.com"]),
    ("openai", &["openai.com", "chatgpt.com", "oaiusercontent.com"]),
];

pub fn test(t: UrlTest, url: &str, intel: &Intel) -> bool {
    let Some(host) = url_host(url) else { return false };
    match t {
        UrlTest::Intel => intel.url_listed(url),
        UrlTest::IpHost => host.parse::<IpAddr>().is_ok_and(is_public),
        UrlTest::Punycode => host.split('.').any(|l| l.starts_with("xn--")),
        UrlTest::MixedScriptHost => mixed_script(&host),
        UrlTest::Userinfo => userinfo_deceives(url),
        UrlTest::BrandImpersonation => brand_impersonation(&host),
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80),
    }
}

/// A label mixing Latin letters with look-alikes from scripts that imitate them (Cyrillic `а`
/// in `pаypal`). Accented Latin (`münchen`) is a real name, not a trick.
fn mixed_script(host: &str) -> bool {
    let lookalike = |c: char| matches!(c, '\u{0370}'..='\u{03FF}' | '\u{0400}'..='\u{052F}' | '\u{0530}'..='\u{058F}' | '\u{13A0}'..='\u{13FF}');
    host.split('.').any(|label| label.chars().any(|c| c.is_ascii_alphabetic()) && label.chars().any(lookalike))
}

/// `https://login.microsoftonline.com@evil.example/`: the part before `@` is what the reader
/// sees, the part after is where the browser goes.
fn userinfo_deceives(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((user, _)) => user.contains('.') && !user.contains(':'),
        None => false,
    }
}

/// The registered domain: the last two labels (three for common second-level suffixes).
fn registered_domain(host: &str) -> String {
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    let two_level = n >= 3 && matches!(labels[n - 2], "co" | "com" | "org" | "net" | "gov" | "ac" | "edu");
    let take = if two_level { 3 } else { 2 };
    labels[n.saturating_sub(take)..].join(".")
}

fn brand_impersonation(host: &str) -> bool {
    let registered = registered_domain(host);
    BRANDS.iter().any(|(brand, own)| {
        host.contains(brand) && !own.iter().any(|d| registered == *d || host == *d || host.ends_with(&format!(".{d}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deceptive_urls() {
        let intel = Intel::defaults();
        assert!(test(UrlTest::IpHost, "http://203.0.113.50/login", &intel));
        assert!(!test(UrlTest::IpHost, "http://10.0.0.5/wiki", &intel));
        assert!(test(UrlTest::Punycode, "https://xn--pypal-4ve.com/", &intel));
        assert!(test(UrlTest::MixedScriptHost, "https://pаypal.com/", &intel));
        assert!(!test(UrlTest::MixedScriptHost, "https://münchen.de/", &intel));
        assert!(test(UrlTest::Userinfo, "https://login.microsoftonline.com@evil.example/", &intel));
        assert!(!test(UrlTest::Userinfo, "https://user:pass@db.internal/", &intel));
        assert!(test(UrlTest::BrandImpersonation, "https://microsoft-login-verify.top/auth", &intel));
        assert!(!test(UrlTest::BrandImpersonation, "https://login.microsoftonline.com/common/oauth2", &intel));
        assert!(!test(UrlTest::BrandImpersonation, "https://contoso.sharepoint.com/sites/hr", &intel));
    }
}
