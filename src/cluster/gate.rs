//! Who may vote. Anyone who can write to the NATS bucket could otherwise publish
//! observations under invented instance names and outvote the real instances. Two guards,
//! each optional and best together:
//!
//! * `members`: only the listed instances' heartbeats and observations count.
//! * `key`: every value is sealed with HMAC-SHA256 under the shared key, over the bucket key
//!   it is stored under (so it cannot be moved to another target or instance), the time it
//!   was sent (so an old one cannot be replayed beyond the observation TTL) and its body.
//!   What is unsigned, signed with another key, or older than the TTL (plus [`SKEW`] for
//!   clocks) is ignored.
//!
//! Without a key, values are stored as their plain JSON body (as before), and a sealed value
//! from a peer that has one is read for its body.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};

use crate::config::cluster::ClusterConfig;

/// How far apart two instances' clocks may be before their sealed values count as stale.
pub const SKEW: Duration = Duration::from_secs(2);

/// Why a bucket value does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// Its instance is not among `members`.
    Stranger,
    /// Not sealed, though a key is configured.
    Unsigned,
    /// Sealed with another key, or changed since.
    Forged,
    /// Sealed longer ago than the TTL allows (a replay), or in the future.
    Stale,
}

impl Refusal {
    /// Every reason, in metric order.
    pub const ALL: [Refusal; 4] = [Refusal::Stranger, Refusal::Unsigned, Refusal::Forged, Refusal::Stale];

    /// The metric label and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Stranger => "unknown_instance",
            Refusal::Unsigned => "unsigned",
            Refusal::Forged => "bad_signature",
            Refusal::Stale => "stale",
        }
    }
}

/// A sealed value as stored.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The plain JSON body.
    body: String,
    /// Unix milliseconds when it was sealed.
    sent: u64,
    /// Hex HMAC-SHA256 over the bucket key, `sent` and `body`.
    mac: String,
}

/// Seals what this instance writes and opens what others wrote.
pub struct Gate {
    members: Option<BTreeSet<String>>,
    key: Option<hmac::Key>,
    /// How old a sealed value may be.
    max_age: Duration,
}

impl Gate {
    /// The gate `config` asks for, for observations that count for `ttl`.
    pub fn new(config: &ClusterConfig, ttl: Duration) -> Gate {
        Gate {
            members: config.members.clone(),
            key: config.key.as_ref().map(|k| hmac::Key::new(hmac::HMAC_SHA256, &k.0)),
            max_age: ttl + SKEW,
        }
    }

    /// The value to store under `kv_key` for `body` (JSON).
    pub fn seal(&self, kv_key: &str, body: String) -> Vec<u8> {
        let Some(key) = &self.key else { return body.into_bytes() };
        let sent = now_ms();
        let tag = hmac::sign(key, &message(kv_key, sent, &body));
        let sealed = Sealed { body, sent, mac: hex(tag.as_ref()) };
        serde_json::to_vec(&sealed).unwrap_or_default()
    }

    /// The JSON body of `value`, stored under `kv_key` by `instance`, when it counts.
    pub fn open(&self, kv_key: &str, instance: &str, value: &[u8]) -> Result<Vec<u8>, Refusal> {
        self.open_within(kv_key, instance, value, Some(self.max_age))
    }

    /// [`Gate::open`] for values that stay in force until replaced (operators' member
    /// states): sealed and from a member, at any age.
    pub fn open_lasting(&self, kv_key: &str, instance: &str, value: &[u8]) -> Result<Vec<u8>, Refusal> {
        self.open_within(kv_key, instance, value, None)
    }

    fn open_within(
        &self,
        kv_key: &str,
        instance: &str,
        value: &[u8],
        max_age: Option<Duration>,
    ) -> Result<Vec<u8>, Refusal> {
        if self.members.as_ref().is_some_and(|m| !m.contains(instance)) {
            return Err(Refusal::Stranger);
        }
        let sealed = serde_json::from_slice::<Sealed>(value).ok();
        let Some(key) = &self.key else {
            return Ok(sealed.map_or_else(|| value.to_vec(), |s| s.body.into_bytes()));
        };
        let Some(sealed) = sealed else { return Err(Refusal::Unsigned) };
        let tag = unhex(&sealed.mac).ok_or(Refusal::Forged)?;
        hmac::verify(key, &message(kv_key, sealed.sent, &sealed.body), &tag).map_err(|_| Refusal::Forged)?;
        let age = now_ms().abs_diff(sealed.sent);
        if max_age.is_some_and(|m| age > m.as_millis() as u64) {
            return Err(Refusal::Stale);
        }
        Ok(sealed.body.into_bytes())
    }

    /// Whether a deletion can be taken on trust: not with a key (a deletion carries nothing
    /// to verify; observations then end by age alone).
    pub fn trusts_deletes(&self) -> bool {
        self.key.is_none()
    }
}

/// What the MAC covers: the bucket key, a NUL, the time, a NUL, the body.
fn message(kv_key: &str, sent: u64, body: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(kv_key.len() + body.len() + 24);
    m.extend_from_slice(kv_key.as_bytes());
    m.push(0);
    m.extend_from_slice(sent.to_string().as_bytes());
    m.push(0);
    m.extend_from_slice(body.as_bytes());
    m
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cluster::SharedKey;

    fn config(members: Option<&[&str]>, key: Option<&str>) -> ClusterConfig {
        ClusterConfig {
            nats: vec!["nats://127.0.0.1:4222".into()],
            credentials: None,
            tls_ca: None,
            bucket: "b".into(),
            instance: "a".into(),
            region: None,
            observation_ttl: None,
            probe_source: None,
            min_observers: 1,
            members: members.map(|m| m.iter().map(|s| s.to_string()).collect()),
            key: key.map(|k| SharedKey(k.as_bytes().to_vec())),
        }
    }

    #[test]
    fn sealed_values_open_only_where_they_were_sealed() {
        let ttl = Duration::from_secs(3);
        let gate = Gate::new(&config(None, Some("sixteen-byte-key!")), ttl);
        let body = r#"{"up":true}"#.to_string();
        let value = gate.seal("o.t1.b", body.clone());
        assert_eq!(gate.open("o.t1.b", "b", &value).unwrap(), body.as_bytes());
        // Moved to another target or instance, sealed with another key, or not sealed.
        assert_eq!(gate.open("o.t2.b", "b", &value), Err(Refusal::Forged));
        assert_eq!(gate.open("o.t1.c", "c", &value), Err(Refusal::Forged));
        let other = Gate::new(&config(None, Some("another-key-of-16b")), ttl);
        assert_eq!(other.open("o.t1.b", "b", &value), Err(Refusal::Forged));
        assert_eq!(gate.open("o.t1.b", "b", body.as_bytes()), Err(Refusal::Unsigned));
        // Changed after sealing.
        let changed = String::from_utf8(value.clone()).unwrap().replace("true", "false");
        assert_eq!(gate.open("o.t1.b", "b", changed.as_bytes()), Err(Refusal::Forged));
        // Replayed after the TTL.
        let mut old: Sealed = serde_json::from_slice(&value).unwrap();
        old.sent -= (ttl + SKEW).as_millis() as u64 + 1000;
        old.mac = hex(hmac::sign(gate.key.as_ref().unwrap(), &message("o.t1.b", old.sent, &old.body)).as_ref());
        assert_eq!(gate.open("o.t1.b", "b", &serde_json::to_vec(&old).unwrap()), Err(Refusal::Stale));
        // Without a key, a sealed value is read for its body, a plain one as it is.
        let plain = Gate::new(&config(None, None), ttl);
        assert_eq!(plain.open("o.t1.b", "b", &value).unwrap(), body.as_bytes());
        assert_eq!(plain.seal("o.t1.a", body.clone()), body.as_bytes());
    }

    #[test]
    fn only_members_count() {
        let gate = Gate::new(&config(Some(&["a", "b"]), None), Duration::from_secs(3));
        assert!(gate.open("o.t.b", "b", b"{}").is_ok());
        assert_eq!(gate.open("o.t.evil", "evil", b"{}"), Err(Refusal::Stranger));
    }
}
