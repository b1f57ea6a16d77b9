//! Local threat intelligence: Tor exit nodes, suspicious IPs and CIDRs, malicious domains and
//! URLs, and suspicious user-agent patterns, read from plain files (one entry per line, `#`
//! comments) in the folder given with `--intel DIR`. A small default set of user-agent
//! patterns for attack and red-team tooling is embedded. Masked caller IPs (`81.2.69.***`)
//! match any entry inside their /24, reported with lower confidence.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use regex::Regex;

const DEFAULT_USER_AGENTS: &str = include_str!("../intel/suspicious-user-agents.txt");

/// The list files `--intel` reads.
pub const LIST_FILES: &[(&str, &str)] = &[
    ("tor-exit-nodes", "tor-exit-nodes.txt"),
    ("suspicious-ips", "suspicious-ips.txt"),
    ("malicious-urls", "malicious-urls.txt"),
    ("suspicious-user-agents", "suspicious-user-agents.txt"),
];

#[derive(Debug, Default, Clone)]
pub struct Intel {
    tor: IpSet,
    suspicious_ips: IpSet,
    /// Lower-case domains (matching their subdomains) and full URLs.
    domains: Vec<String>,
    urls: Vec<String>,
    ua_substrings: Vec<String>,
    ua_patterns: Vec<Regex>,
}

/// How sure a list match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confidence {
    Exact,
    /// A masked IP whose /24 holds a listed address.
    MaskedPrefix,
}

#[derive(Debug, Default, Clone)]
struct IpSet {
    /// Inclusive ranges on a 128-bit line (IPv4 mapped into ::ffff:0:0/96), sorted.
    ranges: Vec<(u128, u128)>,
}

impl IpSet {
    fn insert(&mut self, entry: &str) -> Result<(), String> {
        let (addr, len) = match entry.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u32>().map_err(|_| format!("bad prefix length in {entry:?}"))?)),
            None => (entry, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| format!("not an IP address or CIDR: {entry:?}"))?;
        let (v, bits) = to_u128(ip);
        let len = len.unwrap_or(bits);
        if len > bits {
            return Err(format!("prefix longer than the address in {entry:?}"));
        }
        let host_bits = 128 - (128 - bits + len);
        let mask: u128 = if host_bits == 0 { 0 } else { (1u128 << host_bits) - 1 };
        self.ranges.push((v & !mask, v | mask));
        Ok(())
    }

    /// Sorts and merges the ranges so lookups are a binary search.
    fn finish(&mut self) {
        self.ranges.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(self.ranges.len());
        for &(lo, hi) in &self.ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        self.ranges = merged;
    }

    fn overlaps(&self, lo: u128, hi: u128) -> bool {
        // The last range starting at or before `hi` is the only one that can reach `lo`.
        let i = self.ranges.partition_point(|r| r.0 <= hi);
        i > 0 && self.ranges[i - 1].1 >= lo
    }

    fn contains(&self, v: u128) -> bool {
        self.overlaps(v, v)
    }

    /// Looks up a caller IP as logged, masked or not.
    fn lookup(&self, ip: &str) -> Option<Confidence> {
        if self.ranges.is_empty() {
            return None;
        }
        if let Some(prefix) = masked_prefix(ip) {
            let (v, _) = to_u128(IpAddr::V4(prefix));
            return self.overlaps(v, v | 0xff).then_some(Confidence::MaskedPrefix);
        }
        let parsed: IpAddr = ip.parse().ok()?;
        self.contains(to_u128(parsed).0).then_some(Confidence::Exact)
    }
}

fn to_u128(ip: IpAddr) -> (u128, u32) {
    match ip {
        IpAddr::V4(v4) => ((0xffff_u128 << 32) | u32::from(v4) as u128, 32),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ((0xffff_u128 << 32) | u32::from(v4) as u128, 32),
            None => (u128::from(v6), 128),
        },
    }
}

/// `81.2.69.***` (or `.xxx`, `.0`-style masks) → 81.2.69.0.
fn masked_prefix(ip: &str) -> Option<std::net::Ipv4Addr> {
    let (head, last) = ip.rsplit_once('.')?;
    if !(last.contains('*') || last.eq_ignore_ascii_case("xxx")) {
        return None;
    }
    format!("{head}.0").parse().ok()
}

impl Intel {
    /// The embedded defaults only.
    pub fn defaults() -> Intel {
        let mut intel = Intel::default();
        for line in entries(DEFAULT_USER_AGENTS) {
            let _ = intel.add_user_agent(line);
        }
        intel
    }

    /// The defaults plus every list file present in `dir`. A bad line is an error naming the
    /// file and line, like a bad rule.
    pub fn load(dir: &Path) -> Result<Intel> {
        let mut intel = Intel::defaults();
        let meta = std::fs::metadata(dir).with_context(|| format!("cannot read intel folder {}", dir.display()))?;
        anyhow::ensure!(meta.is_dir(), "--intel {} is not a folder", dir.display());
        for (name, file) in LIST_FILES {
            let path = dir.join(file);
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            for (no, line) in text.lines().enumerate() {
                let entry = line.split('#').next().unwrap_or("").trim();
                if entry.is_empty() {
                    continue;
                }
                let res = match *name {
                    "tor-exit-nodes" => intel.tor.insert(entry),
                    "suspicious-ips" => intel.suspicious_ips.insert(entry),
                    "malicious-urls" => {
                        intel.add_url(entry);
                        Ok(())
                    }
                    _ => intel.add_user_agent(entry),
                };
                res.map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), no + 1))?;
            }
        }
        intel.tor.finish();
        intel.suspicious_ips.finish();
        Ok(intel)
    }

    /// The defaults plus the given `(list, entry)` pairs: what a rule's examples need.
    pub fn with_entries(entries: &[(String, String)]) -> Result<Intel, String> {
        Intel::defaults().add_entries(entries)
    }

    /// Checks `(list, entry)` pairs the way [`Intel::with_entries`] reads them, without
    /// compiling the default lists (rule loading checks every rule's examples).
    pub fn check_entries(entries: &[(String, String)]) -> Result<(), String> {
        if entries.is_empty() {
            return Ok(());
        }
        Intel::default().add_entries(entries).map(drop)
    }

    fn add_entries(mut self, entries: &[(String, String)]) -> Result<Intel, String> {
        for (list, entry) in entries {
            match list.as_str() {
                "tor-exit-nodes" => self.tor.insert(entry)?,
                "suspicious-ips" => self.suspicious_ips.insert(entry)?,
                "malicious-urls" => self.add_url(entry),
                "suspicious-user-agents" => self.add_user_agent(entry)?,
                other => return Err(format!("unknown list {other:?}")),
            }
        }
        self.tor.finish();
        self.suspicious_ips.finish();
        Ok(self)
    }

    fn add_user_agent(&mut self, entry: &str) -> Result<(), String> {
        match entry.strip_prefix("re:") {
            Some(p) => self.ua_patterns.push(
                regex::RegexBuilder::new(p.trim()).case_insensitive(true).size_limit(1 << 20).build().map_err(|e| e.to_string())?,
            ),
            None => self.ua_substrings.push(entry.to_ascii_lowercase()),
        }
        Ok(())
    }

    fn add_url(&mut self, entry: &str) {
        let e = entry.to_ascii_lowercase();
        if e.contains("://") {
            self.urls.push(e.trim_end_matches('/').to_owned());
        } else {
            self.domains.push(e.trim_start_matches("*.").trim_end_matches('.').to_owned());
        }
    }

    /// Looks a field value up in a named list (`tor-exit-nodes`, `suspicious-ips`,
    /// `malicious-urls`, `suspicious-user-agents`).
    pub fn lookup(&self, list: &str, value: &str) -> Option<Confidence> {
        match list {
            "tor-exit-nodes" => self.tor.lookup(value),
            "suspicious-ips" => self.suspicious_ips.lookup(value),
            "malicious-urls" => self.url_listed(value).then_some(Confidence::Exact),
            "suspicious-user-agents" => self.user_agent_listed(value).then_some(Confidence::Exact),
            _ => None,
        }
    }

    pub fn user_agent_listed(&self, ua: &str) -> bool {
        let lower = ua.to_ascii_lowercase();
        self.ua_substrings.iter().any(|s| lower.contains(s.as_str())) || self.ua_patterns.iter().any(|p| p.is_match(ua))
    }

    /// Whether any URL or domain is listed.
    pub fn lists_urls(&self) -> bool {
        !self.urls.is_empty() || !self.domains.is_empty()
    }

    /// A URL whose host is a listed domain (or a subdomain of one), or that starts with a
    /// listed URL.
    pub fn url_listed(&self, url: &str) -> bool {
        let lower = url.to_ascii_lowercase();
        if self.urls.iter().any(|u| lower.starts_with(u.as_str())) {
            return true;
        }
        let Some(host) = url_host(&lower) else { return false };
        self.domains.iter().any(|d| host == *d || host.ends_with(&format!(".{d}")))
    }
}

/// The host of a URL (no scheme, userinfo, port or path), lower case.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split(']').next()?.trim_start_matches('[')
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_lists_with_cidrs_and_masked_callers() {
        let mut set = IpSet::default();
        set.insert("203.0.113.7").unwrap();
        set.insert("198.51.100.0/24").unwrap();
        set.insert("2001:db8::/32").unwrap();
        set.insert("198.51.100.5").unwrap();
        set.finish();
        assert_eq!(set.lookup("203.0.113.7"), Some(Confidence::Exact));
        assert_eq!(set.lookup("198.51.100.200"), Some(Confidence::Exact));
        assert_eq!(set.lookup("2001:db8:1::5"), Some(Confidence::Exact));
        assert_eq!(set.lookup("203.0.113.***"), Some(Confidence::MaskedPrefix));
        assert_eq!(set.lookup("192.0.2.1"), None);
        assert!(set.insert("not-an-ip").is_err());
    }

    #[test]
    fn urls_and_user_agents() {
        let mut intel = Intel::defaults();
        intel.add_url("evil.example");
        intel.add_url("https://files.contoso.example/phish");
        assert!(intel.url_listed("https://login.evil.example/x"));
        assert!(!intel.url_listed("https://notevil.example/"));
        assert!(intel.url_listed("https://files.contoso.example/phish/page"));
        assert!(intel.user_agent_listed("sqlmap/1.7.2#stable (https://sqlmap.org)"));
        assert!(intel.user_agent_listed("garak/0.17.1"));
        assert!(!intel.user_agent_listed("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"));
        assert_eq!(url_host("https://user:pw@Example.COM:8443/a?b").as_deref(), Some("example.com"));
    }
}
