//! Sync with the Elchi controller: a full snapshot at start-up (and whenever we hold no
//! version), then `changes?since=` every `sync_interval` with ±10% jitter. Failures back off
//! exponentially from 1 s up to `sync_interval`, with jitter; the data in force keeps serving.

pub mod client;
pub mod guard;

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::builder::status::SyncKind;
use crate::builder::{BuilderHandle, Event};
use crate::config::ControllerConfig;
use crate::dns::name::Name;
use crate::elchi::api;
use crate::metrics::Metrics;
use client::ControllerClient;

/// First retry delay after a failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Runs the sync loop of one zone until `shutdown`.
pub async fn run(
    zone: Name,
    default_ttl: u32,
    cfg: ControllerConfig,
    builder: BuilderHandle,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let zone_label = api::api_zone(&zone);
    let client = match ControllerClient::new(&cfg, &zone, default_ttl) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(zone = %zone, error = %e, "controller sync disabled");
            builder.send(Event::SyncFailed { zone: zone.clone(), kind: SyncKind::Snapshot, error: e.to_string() });
            return;
        }
    };
    let mut version: Option<String> = None;
    let mut failures: u32 = 0;
    loop {
        let kind = if version.is_some() { SyncKind::Changes } else { SyncKind::Snapshot };
        builder.send(Event::SyncAttempt(zone.clone()));
        let started = std::time::Instant::now();
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = async {
                match &version {
                    None => client.snapshot().await.map(Some),
                    Some(v) => client.changes(v).await,
                }
            } => r,
        };
        let took = started.elapsed();
        metrics.observe_sync(&zone_label, kind.as_str(), took.as_secs_f64());
        match result {
            Ok(Some(payload)) => {
                failures = 0;
                // Measured against the records the zone holds now (the builder's last view).
                let current = builder.view().zone(&zone).and_then(|z| z.status.as_ref()).map_or(0, |s| s.records);
                if let Err(why) = guard::check(&payload, current, cfg.max_shrink) {
                    // The version stays: the next sync asks for the same change again.
                    tracing::error!(zone = %zone, version_hash = %payload.version_hash, error = %why, "controller response refused; keeping the data in force");
                    builder.send(Event::SyncRefused { zone: zone.clone(), kind, error: why });
                } else {
                    version = Some(payload.version_hash.clone());
                    // Compilation and the state file are the builder's work.
                    builder.send(Event::SyncAccepted { zone: zone.clone(), payload: Box::new(payload) });
                    tracing::debug!(zone = %zone, kind = kind.as_str(), took_ms = took.as_millis() as u64, "controller sync applied");
                }
            }
            Ok(None) => {
                failures = 0;
                builder.send(Event::SyncUnchanged(zone.clone()));
                tracing::debug!(zone = %zone, "controller reports no change");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(zone = %zone, kind = kind.as_str(), attempt = failures, error = %e, "controller sync failed; keeping the data in force");
                builder.send(Event::SyncFailed { zone: zone.clone(), kind, error: e.to_string() });
            }
        }
        let delay = if failures == 0 { jitter(cfg.sync_interval) } else { backoff(failures, cfg.sync_interval) };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// `interval` ±10%.
fn jitter(interval: Duration) -> Duration {
    interval.mul_f64(rand::rng().random_range(0.9..1.1))
}

/// 1 s, 2 s, 4 s ... capped at `cap`, each scaled by a random factor in [0.5, 1.0] so that
/// many nodes do not retry in step.
fn backoff(failures: u32, cap: Duration) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    exp.min(cap).mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let cap = Duration::from_secs(30);
        assert!(backoff(1, cap) <= Duration::from_secs(1));
        assert!(backoff(1, cap) >= Duration::from_millis(500));
        assert!(backoff(4, cap) <= Duration::from_secs(8));
        assert!(backoff(40, cap) <= cap);
        let j = jitter(Duration::from_secs(10));
        assert!(j >= Duration::from_secs(9) && j <= Duration::from_secs(11));
    }
}
