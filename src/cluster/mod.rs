//! Health observations shared by every instance through a NATS JetStream key-value bucket
//! (`[cluster]`). Each instance writes its own observation of each probe target under a key
//! per (target, instance) and watches the bucket for everybody's. This task owns what it
//! learns (a [`ClusterView`]) and publishes it whole; the builder computes the verdicts from
//! it ([`crate::health::verdict`]).
//!
//! Keys are `o.<target>.<instance>`, where `<target>` is a stable hash of what is probed
//! (address, port, kind, path, host, expectations), so every instance names a target alike.
//! The bucket's max age is the observation TTL: a silent instance's observations go away, and
//! each instance writes all of its own again every half TTL (together, one batch). An
//! observation counts for the TTL after it reached us. While NATS is unreachable or the watch
//! is not running, every verdict is local (`connected` false), which `/health` reports as
//! `degraded`. The loss is noticed from the client's own connection events, at once, and
//! logged once when it starts and once when it ends.
//!
//! A pool with `probers = N` has each of its targets probed by only N live instances, chosen
//! by rendezvous hashing over the instances whose heartbeat (`i.<instance>`, written with
//! the observations) is fresh; the others leave the target alone and count the probers'
//! observations. A prober that goes silent drops out after the TTL and another takes over.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub mod gate;
pub mod members;
pub mod nats;

use crate::config::cluster::ClusterConfig;
use crate::health::Observations;
use crate::health::peers::{ClusterView, Observation};
use crate::health::probed::Target;
use gate::{Gate, Refusal};

/// Why a session with NATS ended (the exchange then retries with back-off).
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("connecting to NATS: {0}")]
    Connect(String),
    #[error("{}: {error}", path.display())]
    Credentials { path: std::path::PathBuf, error: String },
    #[error("creating the bucket {bucket}: {error}")]
    Bucket { bucket: String, error: String },
    #[error("watching the bucket: {0}")]
    Watch(String),
    #[error("the watch ended")]
    WatchEnded,
    #[error("the connection to NATS was lost")]
    Lost,
    #[error("writing {what}: {error}")]
    Write { what: &'static str, error: String },
}

/// What one instance says of one target, as stored in the bucket.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    up: bool,
    #[serde(default)]
    reason: Option<String>,
    instance: String,
    #[serde(default)]
    region: Option<String>,
    /// Unix milliseconds of the writer's last probe.
    at: u64,
}

/// The cluster's counters, for `/metrics` and `/health`.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Connected and watching.
    pub connected: AtomicBool,
    /// Observations written.
    pub written: AtomicU64,
    /// Observations received from other instances.
    pub received: AtomicU64,
    /// Times the connection or the watch was lost.
    pub disconnects: AtomicU64,
    /// Bucket values ignored, by [`Refusal`] in [`Refusal::ALL`] order.
    pub refused: [AtomicU64; 4],
}

/// A stable name for a target, the same in every instance.
pub fn target_id(t: &Target) -> String {
    let c = &t.check;
    let mut text = format!(
        "{}|{:?}|{}|{}|{:?}|{:?}|{:?}|{}",
        t.ip, c.kind, c.port, c.path, c.host, c.expect_status, c.expect_body, c.tls_verify
    );
    // Keys added later only count when set, so the ids of checks without them stay what
    // older instances compute (a rolling upgrade keeps sharing observations).
    let later = (&c.address, &c.headers, &c.send, &c.expect, &c.service, c.tls, &c.dns);
    if later != (&None, &Vec::new(), &None, &None, &String::new(), false, &None) {
        text.push_str(&format!("|{later:?}"));
    }
    // Fixed across builds and platforms: every instance names a target alike.
    format!("{:016x}", crate::stable_hash::fnv1a(text.into_bytes()))
}

/// The observation TTL: the config's, else 3 × the longest check interval, at least 3 s.
pub fn ttl(config: &ClusterConfig, targets: &[Target]) -> Duration {
    config.observation_ttl.unwrap_or_else(|| {
        let longest = targets.iter().map(|t| t.check.interval).max().unwrap_or_default();
        (longest * 3).max(Duration::from_secs(3))
    })
}

/// What the exchange needs besides its config.
pub struct Wiring {
    /// Where the cluster view is published and this instance's probe results are read.
    pub observations: Observations,
    /// Counters for `/metrics`.
    pub stats: Arc<ClusterStats>,
    /// Runs (without blocking) when a verdict may have changed.
    pub changed: Arc<dyn Fn() + Send + Sync>,
    /// Ends the exchange.
    pub stop: CancellationToken,
}

/// The view this task owns and where it publishes it.
struct Owned {
    view: ClusterView,
    wiring: Wiring,
}

impl Owned {
    /// Publishes the view and tells the builder (not after `stop`: a reload's new exchange
    /// owns the view then).
    fn publish(&self) {
        if self.wiring.stop.is_cancelled() {
            return;
        }
        self.wiring.observations.cluster.store(Some(Arc::new(self.view.clone())));
        (self.wiring.changed)();
    }

    fn set_connected(&mut self, up: bool) {
        if self.wiring.stats.connected.swap(up, Ordering::Relaxed) == up {
            return;
        }
        if !up {
            self.wiring.stats.disconnects.fetch_add(1, Ordering::Relaxed);
            // Alone, an instance probes everything again: its own observations decide.
            self.view.not_probed.clear();
        }
        self.view.connected = up;
        self.publish();
    }
}

/// Publishes the cluster view and starts the task that writes this instance's observations
/// and watches everybody's until `wiring.stop`.
pub fn start(config: ClusterConfig, targets: Vec<Target>, probers: HashMap<Target, usize>, wiring: Wiring) {
    let ttl = ttl(&config, &targets);
    // A reload keeps what peers said of targets that remain.
    let peers = wiring.observations.cluster.load().as_ref().map(|c| c.peers.clone()).unwrap_or_default();
    wiring.stats.connected.store(false, Ordering::Relaxed);
    let view = ClusterView {
        instance: config.instance.clone(),
        ttl,
        min_observers: config.min_observers,
        connected: false,
        peers,
        not_probed: HashSet::new(),
    };
    let owned = Owned { view, wiring };
    owned.publish();
    tokio::spawn(run(config, targets, probers, owned));
}

/// Connects (retrying), then writes and watches until the connection or the watch is lost,
/// then starts over. An outage is logged when it starts and when it ends.
async fn run(config: ClusterConfig, targets: Vec<Target>, probers: HashMap<Target, usize>, owned: Owned) {
    let by_id = targets.iter().map(|t| (target_id(t), t.clone())).collect();
    let gate = Gate::new(&config, owned.view.ttl);
    let refusals = Refusals { stats: Arc::clone(&owned.wiring.stats), logged: BTreeSet::new() };
    let mut x = Exchange { config, targets, probers, by_id, live: BTreeMap::new(), owned, gate, refusals };
    let mut backoff = Duration::from_millis(200);
    // Since when NATS has been unavailable, and how many attempts failed since.
    let mut outage: Option<(Instant, u32)> = None;
    let stop = x.owned.wiring.stop.clone();
    loop {
        let result = x.session(&mut outage, &mut backoff).await;
        x.owned.set_connected(false);
        let error = match result {
            Ok(()) => return,
            Err(e) => e,
        };
        match &mut outage {
            None => {
                tracing::warn!(error = %error, "cluster: NATS unavailable; local health verdicts decide until it is back");
                outage = Some((Instant::now(), 1));
            }
            Some((_, attempts)) => {
                *attempts += 1;
                tracing::debug!(error = %error, attempts = *attempts, "cluster: NATS still unavailable");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One exchange: its config, the targets it knows, the instances it has seen alive (their
/// heartbeat within the TTL, this one always among them) and its view.
struct Exchange {
    config: ClusterConfig,
    targets: Vec<Target>,
    probers: HashMap<Target, usize>,
    by_id: HashMap<String, Target>,
    live: BTreeMap<String, Instant>,
    owned: Owned,
    gate: Gate,
    refusals: Refusals,
}

/// Values the gate refused: counted, and logged once per instance and reason.
struct Refusals {
    stats: Arc<ClusterStats>,
    logged: BTreeSet<(String, Refusal)>,
}

/// Most distinct (instance, reason) pairs logged: a writer inventing names cannot fill memory.
const REFUSALS_LOGGED: usize = 256;

impl Refusals {
    fn note(&mut self, key: &str, instance: &str, why: Refusal) {
        let at = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.stats.refused[at].fetch_add(1, Ordering::Relaxed);
        if self.logged.len() < REFUSALS_LOGGED && self.logged.insert((instance.to_string(), why)) {
            tracing::warn!(
                key,
                instance,
                reason = why.as_str(),
                "cluster: ignoring a bucket value that may not vote (logged once per instance and reason)"
            );
        }
    }
}

impl Exchange {
    /// One connection: writes this instance's observations and takes everybody's until the
    /// connection, the watch or a write fails (`Err`) or `stop` (`Ok`). A connection resets
    /// `backoff`.
    async fn session(
        &mut self,
        outage: &mut Option<(Instant, u32)>,
        backoff: &mut Duration,
    ) -> Result<(), ExchangeError> {
        let Exchange { config, targets, probers, by_id, live, owned, gate, refusals } = self;
        let ttl = owned.view.ttl;
        let stop = owned.wiring.stop.clone();
        let (store, mut events) = open(config, ttl).await?;
        let mut watch = store.watch_with_history(">").await.map_err(|e| ExchangeError::Watch(e.to_string()))?;
        match outage.take() {
            Some((since, attempts)) => tracing::info!(
                bucket = %config.bucket,
                instance = %config.instance,
                down_ms = since.elapsed().as_millis() as u64,
                failed_attempts = attempts,
                "cluster: NATS reachable again; sharing health observations"
            ),
            None => {
                tracing::info!(bucket = %config.bucket, instance = %config.instance, "cluster: sharing health observations")
            }
        }
        owned.set_connected(true);
        *backoff = Duration::from_millis(200);
        // Each observation is written again every half TTL: one late write still lands before it
        // stops counting.
        let refresh = ttl / 2;
        let mut next_refresh = tokio::time::Instant::now();
        let mut sent: HashMap<Target, bool> = HashMap::new();
        let mut seen_transitions = u64::MAX;
        let mut tick = tokio::time::interval(Duration::from_millis(250).min(refresh));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                event = events.recv() => match event {
                    // The client noticed the connection go: fall back now, not at the next write.
                    Some(async_nats::Event::Disconnected) | None => return Err(ExchangeError::Lost),
                    Some(other) => tracing::debug!(event = %other, "cluster: NATS client event"),
                },
                entry = watch.next() => {
                    let entry = match entry {
                        Some(Ok(e)) => e,
                        Some(Err(e)) => return Err(ExchangeError::Watch(e.to_string())),
                        None => return Err(ExchangeError::WatchEnded),
                    };
                    if let Some(who) = heartbeat(&entry.key) {
                        // Only a heartbeat that may vote takes a share of the probing.
                        if entry.operation != kv::Operation::Put || who == config.instance {
                            continue;
                        }
                        if let Err(why) = gate.open(&entry.key, who, &entry.value) {
                            refusals.note(&entry.key, who, why);
                            continue;
                        }
                        let new = live.insert(who.to_string(), Instant::now()).is_none();
                        if new && assign(&config.instance, live, probers, &mut owned.view) {
                            owned.publish();
                            seen_transitions = u64::MAX;
                        }
                    } else if take(&entry, &config.instance, by_id, &mut owned.view, &owned.wiring.stats, gate, refusals) {
                        owned.publish();
                    }
                }
                _ = tick.tick() => {
                    // Our own observations: every target at each refresh, a changed one at once.
                    let now = tokio::time::Instant::now();
                    let all = now >= next_refresh;
                    if all {
                        next_refresh = now + refresh;
                        let beat = serde_json::json!({"instance": config.instance, "region": config.region});
                        let key = format!("i.{}", config.instance);
                        let value = gate.seal(&key, beat.to_string());
                        store
                            .put(key, value.into())
                            .await
                            .map_err(|e| ExchangeError::Write { what: "the heartbeat", error: e.to_string() })?;
                    }
                    live.insert(config.instance.clone(), Instant::now());
                    let before = live.len();
                    live.retain(|_, seen| seen.elapsed() < ttl);
                    let mut changed = expire(&mut owned.view);
                    if (live.len() != before || sent.is_empty()) && assign(&config.instance, live, probers, &mut owned.view) {
                        changed = true;
                        // Targets newly ours are written at once.
                        seen_transitions = u64::MAX;
                    }
                    if changed {
                        owned.publish();
                    }
                    let probed = owned.wiring.observations.probed.load_full();
                    let transitions = probed.transitions();
                    if !all && transitions == seen_transitions {
                        // Nothing of ours changed since the last scan.
                        continue;
                    }
                    seen_transitions = transitions;
                    let mut puts = Vec::new();
                    for target in targets.iter().filter(|t| owned.view.probes(t)) {
                        let Some(status) = probed.status(target) else { continue };
                        let up = status.observed_up();
                        if !all && sent.get(target) == Some(&up) {
                            continue;
                        }
                        let value = Stored {
                            up,
                            reason: status.last_error.clone(),
                            instance: config.instance.clone(),
                            region: config.region.clone(),
                            at: status.last_check.unwrap_or_else(SystemTime::now).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
                        };
                        let key = format!("o.{}.{}", target_id(target), config.instance);
                        let body = gate.seal(&key, serde_json::to_string(&value).unwrap_or_default());
                        puts.push(store.put(key, body.into()));
                        sent.insert(target.clone(), up);
                    }
                    // All at once: the client writes them out together and the acks come back
                    // together, instead of one round trip per observation.
                    let written = puts.len() as u64;
                    for r in futures_util::future::join_all(puts).await {
                        r.map_err(|e| ExchangeError::Write { what: "an observation", error: e.to_string() })?;
                    }
                    owned.wiring.stats.written.fetch_add(written, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Connects and opens (or creates) the bucket, bounded in time; the client's connection
/// events arrive on the receiver.
async fn open(
    config: &ClusterConfig,
    ttl: Duration,
) -> Result<(kv::Store, mpsc::UnboundedReceiver<async_nats::Event>), ExchangeError> {
    let (client, received) = nats::connect(config, "").await.map_err(|e| match e {
        nats::ConnectError::Credentials { path, error } => ExchangeError::Credentials { path, error },
        nats::ConnectError::Connect(e) => ExchangeError::Connect(e),
    })?;
    let js = async_nats::jetstream::new(client);
    let store = match js.get_key_value(&config.bucket).await {
        Ok(store) => store,
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: config.bucket.clone(),
                history: 1,
                max_age: ttl,
                ..Default::default()
            })
            .await
            .map_err(|e| ExchangeError::Bucket { bucket: config.bucket.clone(), error: e.to_string() })?,
    };
    Ok((store, received))
}

/// The instance a heartbeat key (`i.<instance>`) names.
fn heartbeat(key: &str) -> Option<&str> {
    key.strip_prefix("i.")
}

/// The instances that probe a target with `n` probers: the `n` live ones that rank it
/// highest (rendezvous hashing), so adding or losing an instance moves only its share.
pub fn probers_of<'a>(target: &Target, n: usize, live: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let id = target_id(target);
    let mut ranked: Vec<(u64, &str)> = live
        .map(|who| {
            let mut h = crate::stable_hash::fnv1a(id.bytes().chain([b'/']).chain(who.bytes()));
            // FNV's low bits mix poorly; a final avalanche spreads the ranking.
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            (h, who)
        })
        .collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.into_iter().take(n).map(|(_, who)| who).collect()
}

/// Recomputes which targets this instance leaves to others; true when that changed.
fn assign(me: &str, live: &BTreeMap<String, Instant>, probers: &HashMap<Target, usize>, c: &mut ClusterView) -> bool {
    let skip: HashSet<Target> = probers
        .iter()
        .filter(|&(t, &n)| !probers_of(t, n, live.keys().map(String::as_str)).contains(&me))
        .map(|(t, _)| t.clone())
        .collect();
    if c.not_probed == skip {
        return false;
    }
    let (now, before) = (skip.len(), c.not_probed.len());
    c.not_probed = skip;
    tracing::info!(
        instance = me,
        instances = live.len(),
        leaves_to_others = now,
        before,
        "cluster: probe assignment changed"
    );
    true
}

/// Takes one bucket entry into the view, if the gate lets it vote; true when a verdict may
/// have changed.
fn take(
    entry: &kv::Entry,
    me: &str,
    by_id: &HashMap<String, Target>,
    c: &mut ClusterView,
    stats: &ClusterStats,
    gate: &Gate,
    refusals: &mut Refusals,
) -> bool {
    let mut parts = entry.key.splitn(3, '.');
    let (Some("o"), Some(id), Some(instance)) = (parts.next(), parts.next(), parts.next()) else { return false };
    if instance == me {
        return false;
    }
    let Some(target) = by_id.get(id) else { return false };
    let seen: &mut BTreeMap<String, Observation> = c.peers.entry(target.clone()).or_default();
    match entry.operation {
        kv::Operation::Put => {
            let body = match gate.open(&entry.key, instance, &entry.value) {
                Ok(body) => body,
                Err(why) => {
                    refusals.note(&entry.key, instance, why);
                    return false;
                }
            };
            let Ok(stored) = serde_json::from_slice::<Stored>(&body) else { return false };
            stats.received.fetch_add(1, Ordering::Relaxed);
            let before = seen.get(instance).map(|o| o.healthy);
            let fresh_before = seen.get(instance).is_some_and(|o| o.received.elapsed() < c.ttl);
            seen.insert(
                instance.to_string(),
                Observation { healthy: stored.up, reason: stored.reason, received: Instant::now() },
            );
            before != Some(stored.up) || !fresh_before
        }
        kv::Operation::Delete | kv::Operation::Purge => gate.trusts_deletes() && seen.remove(instance).is_some(),
    }
}

/// Drops observations older than the TTL; true when any was dropped.
fn expire(c: &mut ClusterView) -> bool {
    let ttl = c.ttl;
    let mut dropped = false;
    for seen in c.peers.values_mut() {
        let before = seen.len();
        seen.retain(|_, o| o.received.elapsed() < ttl);
        dropped |= seen.len() != before;
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CheckConfig, CheckKind};

    #[test]
    fn target_ids_are_stable_and_distinct() {
        let check = CheckConfig {
            kind: CheckKind::Http,
            port: 8080,
            path: "/health".into(),
            host: None,
            expect_status: vec![(200, 299)],
            expect_body: None,
            send: None,
            expect: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise: 2,
            fall: 3,
            initial_up: true,
            tls_verify: true,
            address: None,
            headers: Vec::new(),
            service: String::new(),
            tls: false,
            dns: None,
        };
        let a = Target { ip: "192.0.2.1".parse().unwrap(), check: check.clone() };
        // The interval and rise/fall are each instance's own business: the same target.
        let b = Target {
            ip: "192.0.2.1".parse().unwrap(),
            check: CheckConfig { interval: Duration::from_secs(5), ..check.clone() },
        };
        let c = Target { ip: "192.0.2.2".parse().unwrap(), check };
        assert_eq!(target_id(&a), target_id(&b));
        assert_ne!(target_id(&a), target_id(&c));
        assert_eq!(target_id(&a).len(), 16);
        // Keys added later tell targets apart when set.
        let scripted = Target { check: CheckConfig { send: Some("PING\r\n".into()), ..a.check.clone() }, ..a.clone() };
        let sidecar = Target {
            check: CheckConfig { address: Some("192.0.2.9".parse().unwrap()), ..a.check.clone() },
            ..a.clone()
        };
        assert_ne!(target_id(&a), target_id(&scripted));
        assert_ne!(target_id(&a), target_id(&sidecar));
    }
}
