//! `[log]` validation: where dnstap messages go (a Unix socket or a TCP address speaking
//! Frame Streams) and which exchanges are logged.

use std::path::PathBuf;

use serde_spanned::Spanned;

use super::error::Reporter;
use super::raw::RawLog;
use super::value::int;
use crate::dns::types::RCODE_NAMES;

/// Where the dnstap stream goes (`[log] dnstap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// `unix:PATH`: a Unix stream socket.
    Unix(PathBuf),
    /// `tcp:HOST:PORT`.
    Tcp(String),
}

/// `[log] dnstap*`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnstapConfig {
    /// The Frame Streams receiver.
    pub sink: Sink,
    /// Only AUTH_RESPONSE messages.
    pub responses_only: bool,
    /// Only exchanges whose response RCODE is listed; empty: all.
    pub rcodes: Vec<u16>,
    /// The `identity` field.
    pub identity: String,
    /// The `version` field.
    pub version: String,
    /// Most messages waiting for the sink.
    pub queue: usize,
}

/// `[log]`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// dnstap query logging, when set.
    pub dnstap: Option<DnstapConfig>,
}

/// Validates `[log]`.
pub fn log(raw: Option<&Spanned<RawLog>>, rep: &mut Reporter<'_>) -> LogConfig {
    let Some(raw) = raw.map(Spanned::get_ref) else { return LogConfig::default() };
    let Some(target) = &raw.dnstap else {
        let extra = [
            raw.dnstap_responses_only.as_ref().map(|v| v.span().start),
            raw.dnstap_rcodes.as_ref().map(|v| v.span().start),
            raw.dnstap_identity.as_ref().map(|v| v.span().start),
            raw.dnstap_version.as_ref().map(|v| v.span().start),
            raw.dnstap_queue.as_ref().map(|v| v.span().start),
        ];
        if let Some(at) = extra.into_iter().flatten().next() {
            rep.at(at, "log.dnstap", "dnstap options are set but dnstap (the sink) is not");
        }
        return LogConfig::default();
    };
    let text = target.get_ref().trim();
    let sink = if let Some(path) = text.strip_prefix("unix:").filter(|p| !p.is_empty()) {
        let base = rep.file().parent().map(PathBuf::from).unwrap_or_default();
        Some(Sink::Unix(base.join(path)))
    } else if let Some(addr) = text.strip_prefix("tcp:").filter(|a| host_port(a)) {
        Some(Sink::Tcp(addr.to_string()))
    } else {
        rep.at(
            target.span().start,
            "log.dnstap",
            format!("{text:?} is not a dnstap sink: use \"unix:/path/to/socket\" or \"tcp:HOST:PORT\""),
        );
        None
    };
    let mut rcodes = Vec::new();
    for name in raw.dnstap_rcodes.iter().flat_map(|l| l.get_ref()) {
        let want = name.get_ref().trim().to_ascii_uppercase();
        match RCODE_NAMES.iter().find(|(_, n)| *n == want) {
            Some((code, _)) => rcodes.push(*code),
            None => {
                let known: Vec<&str> = RCODE_NAMES.iter().map(|(_, n)| *n).collect();
                rep.at(
                    name.span().start,
                    "log.dnstap_rcodes",
                    format!("{:?} is not an RCODE gslbd sends ({})", name.get_ref(), known.join(", ")),
                );
            }
        }
    }
    let text_field = |v: &Option<Spanned<String>>, key: &str, default: String, rep: &mut Reporter<'_>| match v {
        Some(v) if v.get_ref().len() > 255 => {
            rep.at(v.span().start, format!("log.{key}"), "must be at most 255 bytes");
            default
        }
        Some(v) => v.get_ref().clone(),
        None => default,
    };
    let host = super::host_name().unwrap_or_else(|| "gslbd".into());
    let identity = text_field(&raw.dnstap_identity, "dnstap_identity", host, rep);
    let version =
        text_field(&raw.dnstap_version, "dnstap_version", format!("gslbd {}", env!("CARGO_PKG_VERSION")), rep);
    let queue = int(rep, raw.dnstap_queue.as_ref(), "log.dnstap_queue", 64, 10_000_000, 100_000) as usize;
    LogConfig {
        dnstap: sink.map(|sink| DnstapConfig {
            sink,
            responses_only: raw.dnstap_responses_only.as_ref().is_some_and(|v| *v.get_ref()),
            rcodes,
            identity,
            version,
            queue,
        }),
    }
}

/// `HOST:PORT` with a port number and a non-empty host (`[v6]:PORT` included).
fn host_port(text: &str) -> bool {
    text.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}
