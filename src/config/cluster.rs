//! `[cluster]` validation: the NATS servers and bucket through which instances share their
//! health observations, this instance's name, and how long an observation counts.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_spanned::Spanned;

use super::error::Reporter;
use super::raw::{RawCluster, RawQuorum};
use super::value::{duration, int};

/// `[cluster]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// NATS server URLs (`nats://`, `tls://`).
    pub nats: Vec<String>,
    /// A NATS credentials file.
    pub credentials: Option<PathBuf>,
    /// A CA certificate (PEM) for the NATS servers' TLS.
    pub tls_ca: Option<PathBuf>,
    /// The key-value bucket (`gslbd-health`).
    pub bucket: String,
    /// This instance's name: the host name unless set; letters, digits, `-` and `_`.
    pub instance: String,
    /// This instance's region.
    pub region: Option<String>,
    /// How long an observation counts; `None`: 3 × the longest check interval, at least 3 s.
    pub observation_ttl: Option<Duration>,
    /// The address health probes leave from.
    pub probe_source: Option<IpAddr>,
    /// Fewer fresh observations of a target than this: the local verdict decides.
    pub min_observers: usize,
    /// The instances whose heartbeats and observations count (this one among them); `None`:
    /// any instance that writes to the bucket.
    pub members: Option<BTreeSet<String>>,
    /// The shared key observations and heartbeats are signed with (HMAC-SHA256); with it,
    /// what is unsigned, signed with another key or too old is ignored.
    pub key: Option<SharedKey>,
}

/// A shared secret; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedKey(pub Vec<u8>);

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedKey({} bytes)", self.0.len())
    }
}

/// The shortest shared key accepted.
pub const MIN_KEY_LEN: usize = 16;

/// How many instances' observations make a member healthy (`quorum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quorum {
    /// This instance's own probes only.
    Local,
    /// Any instance says up.
    Any,
    /// More than half of the instances observing say up.
    Majority,
    /// Every instance observing says up.
    All,
    /// At least this many say up.
    AtLeast(usize),
}

impl Quorum {
    /// The config spelling.
    pub fn describe(self) -> String {
        match self {
            Quorum::Local => "local".into(),
            Quorum::Any => "any".into(),
            Quorum::Majority => "majority".into(),
            Quorum::All => "all".into(),
            Quorum::AtLeast(n) => n.to_string(),
        }
    }
}

/// A name fit for a key-value key and a metric label.
fn clean(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Validates `[cluster]`.
pub fn cluster(raw: Option<&Spanned<RawCluster>>, rep: &mut Reporter<'_>) -> Option<ClusterConfig> {
    let span = raw?.span().start;
    let raw = raw?.get_ref();
    let nats: Vec<String> = raw.nats.iter().flat_map(|l| l.get_ref()).map(|u| u.get_ref().trim().to_string()).collect();
    if nats.is_empty() {
        rep.at(span, "cluster.nats", "list the NATS servers, e.g. nats = [\"nats://127.0.0.1:4222\"]");
    }
    for url in raw.nats.iter().flat_map(|l| l.get_ref()) {
        let u = url.get_ref().trim();
        let ok = ["nats://", "tls://", "ws://", "wss://"].iter().any(|p| u.starts_with(p)) || !u.contains("://");
        if !ok || u.is_empty() {
            rep.at(url.span().start, "cluster.nats", format!("{u:?} is not a NATS URL (nats://HOST:PORT)"));
        }
    }
    let word = |v: &Option<Spanned<String>>, key: &str, default: String, rep: &mut Reporter<'_>| match v {
        None => default,
        Some(v) if clean(v.get_ref().trim()) => v.get_ref().trim().to_string(),
        Some(v) => {
            rep.at(v.span().start, format!("cluster.{key}"), "must be 1-64 letters, digits, '-' or '_'");
            default
        }
    };
    let host = super::host_name()
        .map(|h| h.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect())
        .filter(|h: &String| clean(h))
        .unwrap_or_else(|| "gslbd".to_string());
    let instance = word(&raw.instance, "instance", host, rep);
    let bucket = word(&raw.bucket, "bucket", "gslbd-health".into(), rep);
    let region = raw.region.as_ref().map(|r| r.get_ref().trim().to_string());
    let observation_ttl = raw.observation_ttl.as_ref().map(|v| {
        duration(
            rep,
            Some(v),
            "cluster.observation_ttl",
            Duration::from_secs(1),
            Duration::from_secs(3600),
            Duration::from_secs(3),
        )
    });
    let probe_source = raw.probe_source.as_ref().and_then(|v| match v.get_ref().trim().parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            rep.at(v.span().start, "cluster.probe_source", format!("{:?} is not an IP address", v.get_ref()));
            None
        }
    });
    let min_observers = int(rep, raw.min_observers.as_ref(), "cluster.min_observers", 1, 1000, 1) as usize;
    let members = raw.members.as_ref().map(|list| {
        let mut names = BTreeSet::new();
        for m in list.get_ref() {
            let name = m.get_ref().trim();
            if !clean(name) {
                rep.at(
                    m.span().start,
                    "cluster.members",
                    format!("{name:?}: must be 1-64 letters, digits, '-' or '_'"),
                );
            } else if !names.insert(name.to_string()) {
                rep.at(m.span().start, "cluster.members", format!("{name} is listed twice"));
            }
        }
        if !names.contains(&instance) {
            let message = format!("must list this instance ({instance}), or its observations would not count");
            rep.at(list.span().start, "cluster.members", message);
        }
        names
    });
    let key = raw.key.as_ref().and_then(|k| {
        let bytes = k.get_ref().as_bytes();
        if bytes.len() < MIN_KEY_LEN {
            rep.at(k.span().start, "cluster.key", format!("must be at least {MIN_KEY_LEN} bytes"));
            return None;
        }
        Some(SharedKey(bytes.to_vec()))
    });
    let base = rep.file().parent().map(PathBuf::from).unwrap_or_default();
    Some(ClusterConfig {
        nats,
        credentials: raw.credentials.as_ref().map(|c| base.join(c.get_ref())),
        tls_ca: raw.tls_ca.as_ref().map(|c| base.join(c.get_ref())),
        bucket,
        instance,
        region,
        observation_ttl,
        probe_source,
        min_observers,
        members,
        key,
    })
}

/// A pool's `quorum`; `clustered`: whether `[cluster]` is set (the default is then
/// `majority`, else `local`).
pub fn quorum(k: &str, raw: Option<&Spanned<RawQuorum>>, clustered: bool, rep: &mut Reporter<'_>) -> Quorum {
    let default = if clustered { Quorum::Majority } else { Quorum::Local };
    let Some(raw) = raw else { return default };
    let key = format!("{k}.quorum");
    let q = match raw.get_ref() {
        RawQuorum::Count(n) if (1..=1000).contains(n) => Quorum::AtLeast(*n as usize),
        RawQuorum::Count(n) => {
            rep.at(raw.span().start, key, format!("{n} is out of range 1..=1000"));
            return default;
        }
        RawQuorum::Word(w) => match w.trim().to_ascii_lowercase().as_str() {
            "local" => Quorum::Local,
            "any" => Quorum::Any,
            "majority" => Quorum::Majority,
            "all" => Quorum::All,
            other => {
                rep.at(raw.span().start, key, format!("{other:?} is not local, any, majority, all or a number"));
                return default;
            }
        },
    };
    if !clustered && q != Quorum::Local {
        rep.at(raw.span().start, format!("{k}.quorum"), "needs [cluster] (without it every instance decides alone)");
    }
    q
}
