//! Health verdicts shared by every instance through a NATS JetStream key-value bucket
//! (`[cluster]`). Each instance writes its own observation of each probe target under a key
//! per (target, instance) and watches the bucket for everybody's; the health table then
//! decides a member by its pool's quorum over the fresh observations ([`HealthTable::verdict`]).
//!
//! Keys are `o.<target>.<instance>`, where `<target>` is a stable hash of what is probed
//! (address, port, kind, path, host, expectations), so every instance names a target alike.
//! The bucket's max age is the observation TTL: a silent instance's observations go away, and
//! each instance writes all of its own again every half TTL (together, one batch). An observation counts
//! for the TTL after it reached us. While NATS is unreachable or the watch is not running,
//! every verdict is local (`connected` false), which `/health` reports as `degraded`.
//!
//! A pool with `probers = N` has each of its targets probed by only N live instances, chosen
//! by rendezvous hashing over the instances whose heartbeat (`i.<instance>`, written with
//! the observations) is fresh; the others leave the target alone and count the probers'
//! observations. A prober that goes silent drops out after the TTL and another takes over.
//!
//! [`HealthTable::verdict`]: crate::health::table::HealthTable::verdict

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::cluster::ClusterConfig;
use crate::health::table::{ClusterView, Observation, SharedHealth, Target};

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
    /// Targets whose verdict is local for lack of fresh observations (at the last refresh).
    pub fallback_targets: AtomicU64,
}

/// A stable name for a target, the same in every instance.
pub fn target_id(t: &Target) -> String {
    let c = &t.check;
    let text = format!(
        "{}|{:?}|{}|{}|{:?}|{:?}|{:?}|{}",
        t.ip, c.kind, c.port, c.path, c.host, c.expect_status, c.expect_body, c.tls_verify
    );
    // FNV-1a: fixed across builds and platforms (the std hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The observation TTL: the config's, else 3 × the longest check interval, at least 3 s.
pub fn ttl(config: &ClusterConfig, targets: &[Target]) -> Duration {
    config.observation_ttl.unwrap_or_else(|| {
        let longest = targets.iter().map(|t| t.check.interval).max().unwrap_or_default();
        (longest * 3).max(Duration::from_secs(3))
    })
}

/// Sets up the table's cluster view and starts the task that writes this instance's
/// observations and watches everybody's until `stop`. `changed` runs (without blocking)
/// when a verdict may have changed.
pub fn start(
    config: ClusterConfig,
    targets: Vec<Target>,
    probers: HashMap<Target, usize>,
    table: SharedHealth,
    stats: Arc<ClusterStats>,
    changed: Arc<dyn Fn() + Send + Sync>,
    stop: CancellationToken,
) {
    let ttl = ttl(&config, &targets);
    {
        let mut t = table.lock().expect("health lock");
        // A reload keeps what peers said of targets that remain.
        let peers = t.cluster().map(|c| c.peers.clone()).unwrap_or_default();
        t.set_cluster(Some(ClusterView {
            instance: config.instance.clone(),
            ttl,
            min_observers: config.min_observers,
            connected: false,
            peers,
            not_probed: HashSet::new(),
        }));
    }
    tokio::spawn(run(config, targets, probers, ttl, table, stats, changed, stop));
}

/// Connects (retrying), then writes and watches until the watch ends, then starts over.
#[allow(clippy::too_many_arguments)]
async fn run(
    config: ClusterConfig,
    targets: Vec<Target>,
    probers: HashMap<Target, usize>,
    ttl: Duration,
    table: SharedHealth,
    stats: Arc<ClusterStats>,
    changed: Arc<dyn Fn() + Send + Sync>,
    stop: CancellationToken,
) {
    let by_id: HashMap<String, Target> = targets.iter().map(|t| (target_id(t), t.clone())).collect();
    let set_connected = |up: bool| {
        if stats.connected.swap(up, Ordering::Relaxed) != up {
            if !up {
                stats.disconnects.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(c) = table.lock().expect("health lock").cluster_mut() {
                c.connected = up;
                // Alone, an instance probes everything again: its own verdicts decide.
                if !up {
                    c.not_probed.clear();
                }
            }
            changed();
        }
    };
    // Instances seen alive (their heartbeat within the TTL), this one always among them.
    let mut live: BTreeMap<String, Instant> = BTreeMap::new();
    let mut backoff = Duration::from_millis(200);
    loop {
        let session = async {
            let store = open(&config, ttl).await?;
            let mut watch = store.watch_with_history(">").await.map_err(|e| format!("watching the bucket: {e}"))?;
            tracing::info!(bucket = %config.bucket, instance = %config.instance, "cluster: sharing health observations");
            set_connected(true);
            backoff = Duration::from_millis(200);
            // Each observation is written again every half TTL: one late write still lands
            // before it stops counting.
            let refresh = ttl / 2;
            let mut next_refresh = tokio::time::Instant::now();
            let mut sent: HashMap<Target, (bool, Option<SystemTime>)> = HashMap::new();
            let mut seen_transitions = u64::MAX;
            let mut tick = tokio::time::interval(Duration::from_millis(250).min(refresh));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    entry = watch.next() => {
                        let entry = match entry {
                            Some(Ok(e)) => e,
                            Some(Err(e)) => return Err(format!("watch: {e}")),
                            None => return Err("the watch ended".to_string()),
                        };
                        if let Some(who) = heartbeat(&entry.key) {
                            let new = live.insert(who.to_string(), Instant::now()).is_none();
                            if new && assign(&config.instance, &live, &probers, &table) {
                                changed();
                                seen_transitions = u64::MAX;
                            }
                        } else if take(&entry, &config.instance, &by_id, &table, &stats) {
                            changed();
                        }
                    }
                    _ = tick.tick() => {
                        // Our own observations: every target at each refresh, a changed one at once.
                        let now = tokio::time::Instant::now();
                        let all = now >= next_refresh;
                        if all {
                            next_refresh = now + refresh;
                            let short = short_of_observers(&table, &targets);
                            let before = stats.fallback_targets.swap(short, Ordering::Relaxed);
                            if short > 0 && before == 0 {
                                tracing::warn!(targets = short, "cluster: too few fresh observations; local verdicts decide for these targets");
                            } else if short == 0 && before > 0 {
                                tracing::info!("cluster: every target has enough fresh observations again");
                            }
                            let beat = serde_json::json!({"instance": config.instance, "region": config.region});
                            store
                                .put(format!("i.{}", config.instance), beat.to_string().into())
                                .await
                                .map_err(|e| format!("writing the heartbeat: {e}"))?;
                        }
                        live.insert(config.instance.clone(), Instant::now());
                        let before = live.len();
                        live.retain(|_, seen| seen.elapsed() < ttl);
                        if (live.len() != before || sent.is_empty()) && assign(&config.instance, &live, &probers, &table) {
                            changed();
                            // Targets newly ours are written at once.
                            seen_transitions = u64::MAX;
                        }
                        let transitions = table.lock().expect("health lock").transitions();
                        if !all && transitions == seen_transitions {
                            // Nothing of ours changed since the last scan.
                            if expire(&table) {
                                changed();
                            }
                            continue;
                        }
                        seen_transitions = transitions;
                        let mine: Vec<(Target, bool, Option<String>, Option<SystemTime>)> = {
                            let t = table.lock().expect("health lock");
                            let skip = t.cluster().map(|c| c.not_probed.clone()).unwrap_or_default();
                            targets
                                .iter()
                                .filter(|x| !skip.contains(*x))
                                .filter_map(|x| t.status(x.ip, &x.check).map(|s| (x.clone(), t.is_up(x.ip, &x.check), s.last_error.clone(), s.last_check)))
                                .collect()
                        };
                        let mut puts = Vec::new();
                        for (target, up, reason, at) in mine {
                            if !all && sent.get(&target).is_some_and(|&(was, _)| was == up) {
                                continue;
                            }
                            let value = Stored {
                                up,
                                reason,
                                instance: config.instance.clone(),
                                region: config.region.clone(),
                                at: at.unwrap_or_else(SystemTime::now).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
                            };
                            let key = format!("o.{}.{}", target_id(&target), config.instance);
                            let body = serde_json::to_vec(&value).unwrap_or_default();
                            puts.push(store.put(key, body.into()));
                            sent.insert(target, (up, at));
                        }
                        // All at once: the client writes them out together and the acks come
                        // back together, instead of one round trip per observation.
                        let written = puts.len() as u64;
                        for r in futures_util::future::join_all(puts).await {
                            r.map_err(|e| format!("writing an observation: {e}"))?;
                        }
                        stats.written.fetch_add(written, Ordering::Relaxed);
                        if expire(&table) {
                            changed();
                        }
                    }
                }
            }
        };
        let result: Result<(), String> = session.await;
        set_connected(false);
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cluster: NATS unavailable; local health verdicts decide until it is back")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Connects and opens (or creates) the bucket, bounded in time.
async fn open(config: &ClusterConfig, ttl: Duration) -> Result<kv::Store, String> {
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("gslbd-{}", config.instance))
        .connection_timeout(Duration::from_secs(2))
        .max_reconnects(Some(0));
    if let Some(path) = &config.credentials {
        options = options.credentials_file(path).await.map_err(|e| format!("credentials {}: {e}", path.display()))?;
    }
    if let Some(ca) = &config.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let client = options.connect(config.nats.clone()).await.map_err(|e| format!("connecting to NATS: {e}"))?;
    let js = async_nats::jetstream::new(client);
    match js.get_key_value(&config.bucket).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: config.bucket.clone(),
                history: 1,
                max_age: ttl,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("creating the bucket {}: {e}", config.bucket)),
    }
}

/// How many targets have fewer fresh observations than `min_observers`.
fn short_of_observers(table: &SharedHealth, targets: &[Target]) -> u64 {
    let t = table.lock().expect("health lock");
    let quorum = crate::config::cluster::Quorum::Majority;
    targets.iter().filter(|x| t.verdict(x.ip, &x.check, quorum).fallback).count() as u64
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
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in id.bytes().chain([b'/']).chain(who.bytes()) {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
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
fn assign(me: &str, live: &BTreeMap<String, Instant>, probers: &HashMap<Target, usize>, table: &SharedHealth) -> bool {
    let skip: HashSet<Target> = probers
        .iter()
        .filter(|&(t, &n)| !probers_of(t, n, live.keys().map(String::as_str)).contains(&me))
        .map(|(t, _)| t.clone())
        .collect();
    let mut t = table.lock().expect("health lock");
    let Some(c) = t.cluster_mut() else { return false };
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

/// Takes one bucket entry into the table; true when a verdict may have changed.
fn take(
    entry: &kv::Entry,
    me: &str,
    by_id: &HashMap<String, Target>,
    table: &SharedHealth,
    stats: &ClusterStats,
) -> bool {
    let mut parts = entry.key.splitn(3, '.');
    let (Some("o"), Some(id), Some(instance)) = (parts.next(), parts.next(), parts.next()) else { return false };
    if instance == me {
        return false;
    }
    let Some(target) = by_id.get(id) else { return false };
    let mut t = table.lock().expect("health lock");
    let Some(c) = t.cluster_mut() else { return false };
    let seen: &mut BTreeMap<String, Observation> = c.peers.entry(target.clone()).or_default();
    match entry.operation {
        kv::Operation::Put => {
            let Ok(stored) = serde_json::from_slice::<Stored>(&entry.value) else { return false };
            stats.received.fetch_add(1, Ordering::Relaxed);
            let before = seen.get(instance).map(|o| o.healthy);
            let fresh_before = seen.get(instance).is_some_and(|o| o.received.elapsed() < c.ttl);
            seen.insert(
                instance.to_string(),
                Observation { healthy: stored.up, reason: stored.reason, received: Instant::now() },
            );
            before != Some(stored.up) || !fresh_before
        }
        kv::Operation::Delete | kv::Operation::Purge => seen.remove(instance).is_some(),
    }
}

/// Drops observations older than the TTL; true when any was dropped.
fn expire(table: &SharedHealth) -> bool {
    let mut t = table.lock().expect("health lock");
    let Some(c) = t.cluster_mut() else { return false };
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
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise: 2,
            fall: 3,
            initial_up: true,
            tls_verify: true,
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
    }
}
