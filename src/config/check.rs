//! `[zone.pool.check]` and `[zone.pool.member.check]`: the health check of a member, each key
//! from the member's override, else the pool's, else the default; keys that only one kind of
//! check reads are refused on the others, so a typo does not silently probe something else.

use std::net::IpAddr;
use std::time::Duration;

use serde_spanned::Spanned;

use super::error::Reporter;
use super::raw::{RawCheck, RawStatus};
use super::value::{duration, int, one_of};
use crate::dns::name::Name;

/// Probe kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// HTTP GET.
    Http,
    /// HTTPS GET.
    Https,
    /// TCP connect (with an optional scripted exchange).
    Tcp,
    /// gRPC health checking protocol (grpc.health.v1 `Health/Check`).
    Grpc,
    /// ICMP echo.
    Icmp,
    /// A DNS query.
    Dns,
    /// No probe: always up.
    None,
}

impl CheckKind {
    /// The word the config uses.
    pub fn word(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Https => "https",
            CheckKind::Tcp => "tcp",
            CheckKind::Grpc => "grpc",
            CheckKind::Icmp => "icmp",
            CheckKind::Dns => "dns",
            CheckKind::None => "none",
        }
    }
}

/// A member's health check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckConfig {
    /// Kind.
    pub kind: CheckKind,
    /// Port (0 for ICMP).
    pub port: u16,
    /// The address probed instead of the member's own (a sidecar, a load balancer's health
    /// port); the verdict still applies to the member's address.
    pub address: Option<IpAddr>,
    /// HTTP path.
    pub path: String,
    /// Host header and SNI.
    pub host: Option<String>,
    /// HTTP request headers (HTTP, HTTPS) or request metadata (gRPC), in name order.
    pub headers: Vec<(String, String)>,
    /// Accepted status ranges (inclusive).
    pub expect_status: Vec<(u16, u16)>,
    /// Body substring.
    pub expect_body: Option<String>,
    /// Probe interval.
    pub interval: Duration,
    /// Probe timeout.
    pub timeout: Duration,
    /// Successes for down → up.
    pub rise: u32,
    /// Failures for up → down.
    pub fall: u32,
    /// Starts up (true) or down.
    pub initial_up: bool,
    /// Verify certificates (HTTPS, gRPC with TLS).
    pub tls_verify: bool,
    /// TCP: bytes sent once connected (a scripted exchange, as HAProxy's tcp-check).
    pub send: Option<String>,
    /// TCP: text the reply must contain (read until it does, the peer closes, or 64 KiB).
    pub expect: Option<String>,
    /// gRPC: the service asked about; empty asks about the server as a whole.
    pub service: String,
    /// gRPC: connect with TLS (else plaintext HTTP/2).
    pub tls: bool,
    /// DNS: what is asked and what answer means up.
    pub dns: Option<DnsCheck>,
}

impl CheckConfig {
    /// The address a probe of the member address `member` goes to.
    pub fn probe_address(&self, member: IpAddr) -> IpAddr {
        self.address.unwrap_or(member)
    }
}

/// What a `type = "dns"` check asks and expects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsCheck {
    /// The name asked (absolute).
    pub name: Name,
    /// The type asked.
    pub qtype: u16,
    /// Over TCP (else UDP).
    pub tcp: bool,
    /// The rcode that means up.
    pub rcode: u16,
    /// Text one answer record's data must contain (its presentation form).
    pub answer: Option<String>,
}

/// The member's check; `k` is the member's key, `at` where to report keys that are absent.
pub fn check(
    k: &str,
    pool: Option<&RawCheck>,
    member: Option<&RawCheck>,
    at: usize,
    rep: &mut Reporter<'_>,
) -> CheckConfig {
    macro_rules! pick {
        ($field:ident) => {
            member.and_then(|m| m.$field.as_ref()).or_else(|| pool.and_then(|p| p.$field.as_ref()))
        };
    }
    let ck = |f: &str| format!("{k}.check.{f}");
    let kinds = ["http", "https", "tcp", "grpc", "icmp", "dns", "none"];
    let kind = match one_of(rep, pick!(kind), &ck("type"), &kinds, "http").as_str() {
        "https" => CheckKind::Https,
        "tcp" => CheckKind::Tcp,
        "grpc" => CheckKind::Grpc,
        "icmp" => CheckKind::Icmp,
        "dns" => CheckKind::Dns,
        "none" => CheckKind::None,
        _ => CheckKind::Http,
    };
    // Keys only some kinds read: refused on the others.
    let only = |rep: &mut Reporter<'_>, key: &str, at: Option<usize>, kinds: &[CheckKind]| {
        if let Some(at) = at.filter(|_| !kinds.contains(&kind) && kind != CheckKind::None) {
            let words: Vec<String> = kinds.iter().map(|k| format!("\"{}\"", k.word())).collect();
            rep.at(at, ck(key), format!("is for type = {} checks, not \"{}\"", words.join(" or "), kind.word()));
        }
    };
    let port = match (kind, pick!(port)) {
        (CheckKind::Icmp, Some(v)) => {
            rep.at(v.span().start, ck("port"), "ICMP checks have no port");
            0
        }
        (CheckKind::Icmp, None) => 0,
        (CheckKind::Grpc, None) => {
            rep.at(at, ck("port"), "a gRPC check needs a port (gRPC has no standard one)");
            0
        }
        (_, v) => {
            let default = match kind {
                CheckKind::Https => 443,
                CheckKind::Dns => 53,
                _ => 80,
            };
            int(rep, v, &ck("port"), 1, 65535, default) as u16
        }
    };
    let address = pick!(address).and_then(|v| match v.get_ref().trim().parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            rep.at(v.span().start, ck("address"), format!("{:?} is not an IP address", v.get_ref()));
            None
        }
    });
    let interval = duration(
        rep,
        pick!(interval),
        &ck("interval"),
        Duration::from_millis(100),
        Duration::from_secs(3600),
        Duration::from_secs(2),
    );
    let timeout = duration(
        rep,
        pick!(timeout),
        &ck("timeout"),
        Duration::from_millis(10),
        Duration::from_secs(3600),
        Duration::from_secs(1),
    );
    if timeout >= interval {
        let at = pick!(timeout).map_or(at, |v| v.span().start);
        rep.at(
            at,
            ck("timeout"),
            format!("must be shorter than the interval ({})", humantime::format_duration(interval)),
        );
    }
    let rise = int(rep, pick!(rise), &ck("rise"), 1, 100, 2) as u32;
    let fall = int(rep, pick!(fall), &ck("fall"), 1, 100, 3) as u32;
    let initial_up = one_of(rep, pick!(initial), &ck("initial"), &["up", "down"], "up") == "up";
    let expect_status = expect_status(rep, pick!(expect_status), &ck("expect_status"));
    for (key, v) in [("send", pick!(send)), ("expect", pick!(expect))] {
        let Some(v) = v else { continue };
        only(rep, key, Some(v.span().start), &[CheckKind::Tcp]);
        if v.get_ref().is_empty() || v.get_ref().len() > 4096 {
            rep.at(v.span().start, ck(key), "must hold 1 to 4096 bytes");
        }
    }
    let headers = headers(rep, pick!(headers), &ck("headers"));
    only(rep, "headers", pick!(headers).map(|v| v.span().start), &[CheckKind::Http, CheckKind::Https, CheckKind::Grpc]);
    only(rep, "service", pick!(service).map(|v| v.span().start), &[CheckKind::Grpc]);
    only(rep, "tls", pick!(tls).map(|v| v.span().start), &[CheckKind::Grpc]);
    let dns = dns(k, kind, pool, member, at, rep);
    if kind != CheckKind::Dns {
        for (key, v) in [
            ("query", pick!(query)),
            ("query_type", pick!(query_type)),
            ("transport", pick!(transport)),
            ("expect_rcode", pick!(expect_rcode)),
            ("expect_answer", pick!(expect_answer)),
        ] {
            only(rep, key, v.map(|v| v.span().start), &[CheckKind::Dns]);
        }
    }
    CheckConfig {
        kind,
        port,
        address,
        path: pick!(path).map_or("/".to_string(), |v| v.get_ref().clone()),
        host: pick!(host).map(|v| v.get_ref().clone()),
        headers,
        expect_status,
        expect_body: pick!(expect_body).map(|v| v.get_ref().clone()),
        interval,
        timeout,
        rise,
        fall,
        initial_up,
        tls_verify: pick!(tls_verify).is_none_or(|v| *v.get_ref()),
        send: pick!(send).map(|v| v.get_ref().clone()),
        expect: pick!(expect).map(|v| v.get_ref().clone()),
        service: pick!(service).map_or(String::new(), |v| v.get_ref().trim().to_string()),
        tls: pick!(tls).is_some_and(|v| *v.get_ref()),
        dns,
    }
}

fn expect_status(rep: &mut Reporter<'_>, v: Option<&Spanned<Vec<RawStatus>>>, key: &str) -> Vec<(u16, u16)> {
    let Some(list) = v else { return vec![(200, 299)] };
    if list.get_ref().is_empty() {
        rep.at(
            list.span().start,
            key,
            "is empty, so the member could never be up; list codes or ranges like \"200-299\", or leave it out",
        );
    }
    let mut out = Vec::new();
    for s in list.get_ref() {
        let range = match s {
            RawStatus::Code(c) => u16::try_from(*c).ok().map(|c| (c, c)),
            RawStatus::Range(r) => match r.split_once('-') {
                Some((a, b)) => a.trim().parse().ok().zip(b.trim().parse().ok()),
                None => r.trim().parse().ok().map(|c| (c, c)),
            },
        };
        match range {
            Some((a, b)) if (100..=599).contains(&a) && (a..=599).contains(&b) => out.push((a, b)),
            _ => rep.at(list.span().start, key, format!("{s:?} is not a status code or a range like \"200-299\"")),
        }
    }
    out
}

/// Header names and values as HTTP allows them; `Host` has its own key (it is also the SNI).
fn headers(
    rep: &mut Reporter<'_>,
    v: Option<&Spanned<std::collections::BTreeMap<String, String>>>,
    key: &str,
) -> Vec<(String, String)> {
    use reqwest::header::{HeaderName, HeaderValue};
    let Some(v) = v else { return Vec::new() };
    let mut out = Vec::new();
    for (name, value) in v.get_ref() {
        let at = v.span().start;
        let Ok(parsed) = HeaderName::from_bytes(name.as_bytes()) else {
            rep.at(at, format!("{key}.{name}"), format!("{name:?} is not an HTTP header name"));
            continue;
        };
        if parsed == reqwest::header::HOST {
            rep.at(at, format!("{key}.{name}"), "set the Host header with check.host (it is the TLS SNI too)");
        } else if HeaderValue::from_str(value).is_err() {
            rep.at(at, format!("{key}.{name}"), format!("{value:?} is not an HTTP header value"));
        } else {
            out.push((parsed.as_str().to_string(), value.clone()));
        }
    }
    out
}

/// The DNS check's question and expectation; `None` for other kinds.
fn dns(
    k: &str,
    kind: CheckKind,
    pool: Option<&RawCheck>,
    member: Option<&RawCheck>,
    at: usize,
    rep: &mut Reporter<'_>,
) -> Option<DnsCheck> {
    macro_rules! pick {
        ($field:ident) => {
            member.and_then(|m| m.$field.as_ref()).or_else(|| pool.and_then(|p| p.$field.as_ref()))
        };
    }
    if kind != CheckKind::Dns {
        return None;
    }
    let ck = |f: &str| format!("{k}.check.{f}");
    let name = match pick!(query) {
        None => {
            rep.at(at, ck("query"), "a DNS check needs the name it asks (query = \"health.example.com.\")");
            return None;
        }
        Some(v) => match Name::parse(v.get_ref().trim(), Some(&Name::root())) {
            Ok(n) => n,
            Err(e) => {
                rep.at(v.span().start, ck("query"), e.to_string());
                return None;
            }
        },
    };
    let qtype = match pick!(query_type) {
        None => crate::dns::types::TYPE_A,
        Some(v) => match crate::dns::types::type_from_name(v.get_ref().trim()) {
            Some(t) => t,
            None => {
                rep.at(v.span().start, ck("query_type"), format!("{:?} is not a record type", v.get_ref()));
                return None;
            }
        },
    };
    let tcp = one_of(rep, pick!(transport), &ck("transport"), &["udp", "tcp"], "udp") == "tcp";
    let rcode = match pick!(expect_rcode) {
        None => 0,
        Some(v) => {
            let word = v.get_ref().trim().to_ascii_uppercase();
            let known = crate::dns::types::RCODE_NAMES.iter().find(|(_, n)| *n == word).map(|(c, _)| *c);
            match known.or_else(|| word.parse::<u16>().ok().filter(|c| *c < 4096)) {
                Some(c) => c,
                None => {
                    let m = format!("{:?} is not an rcode (NOERROR, NXDOMAIN, SERVFAIL, ... or a number)", v.get_ref());
                    rep.at(v.span().start, ck("expect_rcode"), m);
                    return None;
                }
            }
        }
    };
    let answer = pick!(expect_answer).map(|v| v.get_ref().clone());
    Some(DnsCheck { name, qtype, tcp, rcode, answer })
}
