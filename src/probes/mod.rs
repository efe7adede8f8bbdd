//! The probes: one task per distinct target, on a fixed schedule, each writing its result
//! into its own slot of this instance's probe table ([`crate::health::probed`]) and telling
//! the builder when its observation flips, so the builder recomputes the verdicts.

pub mod dns;
pub mod error;
pub mod grpc;
pub mod http;
pub mod icmp;
pub mod probe;
pub mod tcp;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::health::Observations;
use crate::health::probed::{ProbeTable, Target};
use crate::health::state;
use crate::metrics::Metrics;

/// Publishes a probe table for `targets` (targets probed before keep their state) and starts
/// one probe loop per target; `changed` runs after any state transition and must not block.
/// The loops stop when `stop` is cancelled.
pub fn start(
    targets: Vec<(Target, String)>,
    source: Option<std::net::IpAddr>,
    observations: &Observations,
    metrics: Arc<Metrics>,
    changed: Arc<dyn Fn() + Send + Sync>,
    stop: CancellationToken,
) {
    let clients = probe::Clients::new(source);
    let wanted: Vec<Target> = targets.iter().map(|(t, _)| t.clone()).collect();
    let table = Arc::new(ProbeTable::for_targets(&wanted, &observations.probed.load()));
    observations.probed.store(Arc::clone(&table));
    for (target, members) in targets {
        let Some(slot) = table.slot(&target) else { continue };
        let (table, changed, stop, clients) = (Arc::clone(&table), Arc::clone(&changed), stop.clone(), clients.clone());
        let cluster = Arc::clone(&observations.cluster);
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut prober = probe::Prober::new(&clients, target.ip, &target.check).await;
            // Spread first probes over one interval so members are not probed in lockstep,
            // then keep a fixed schedule (probe time does not push later probes back).
            let interval = target.check.interval.max(Duration::from_millis(100));
            let mut next = tokio::time::Instant::now() + interval.mul_f64(rand::rng().random_range(0.0..1.0));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep_until(on_grid(next)) => {}
                }
                next += interval;
                // Another instance was chosen to probe this target (`probers`): its
                // observations decide here.
                if cluster.load().as_ref().is_some_and(|c| !c.probes(&target)) {
                    continue;
                }
                let started = std::time::Instant::now();
                let result = prober.probe().await;
                let took = started.elapsed().as_secs_f64();
                let transition = table.record(&target, &slot, &result);
                let became = transition.map(|t| if t.to == state::Health::Up { "up" } else { "down" });
                metrics.observe_probe(result.is_ok(), took, became);
                if let Some(t) = transition {
                    tracing::warn!(
                        members = %members,
                        address = %target.ip,
                        port = target.check.port,
                        from = ?t.from,
                        to = ?t.to,
                        reason = %result.as_ref().err().map_or_else(|| "probe succeeded".to_string(), ToString::to_string),
                        "health state changed"
                    );
                    // Tells the builder (a channel send): never waits for the rebuild.
                    changed();
                }
            }
        });
    }
}

/// Probe start times are rounded up to a 20 ms grid, so thousands of members wake the
/// runtime a few dozen times a second in batches instead of once per probe.
const GRID: Duration = Duration::from_millis(20);

fn on_grid(t: tokio::time::Instant) -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let since = t.saturating_duration_since(epoch).as_nanos();
    let grid = GRID.as_nanos();
    let rounded = since.div_ceil(grid) * grid;
    epoch + Duration::from_nanos(rounded as u64)
}
