//! The health of pool members as data, with one owner per thing:
//!
//! * [`probed`]: this instance's probe results, one slot per target, each written by its
//!   probe task ([`crate::probes`]) alone;
//! * [`peers`]: the other instances' observations (`[cluster]`), written by the cluster
//!   exchange ([`crate::cluster`]) alone;
//! * [`verdict`]: the one place that turns both into up or down per pool quorum, computed by
//!   the builder when either changes; DNS answers, `/records`, `/explain` and `/metrics` all
//!   read that value.
//!
//! * [`member_state`]: what operators set from the API (drained, disabled), owned by the
//!   builder, which applies, persists and compiles it with the verdicts.
//!
//! Producers tell the builder that something changed (`Event::HealthChanged`); health never
//! touches the query path. [`state`] is the rise/fall state machine.

pub mod member_state;
pub mod peers;
pub mod probed;
pub mod state;
pub mod verdict;

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::config::{CheckKind, Config};
use peers::ClusterView;
use probed::{ProbeTable, Target};

/// Where the producers publish observations and the builder reads them: each part has one
/// writer (the probes' table is replaced by whoever starts the probes, its slots written by
/// their probe tasks; the cluster view by the cluster exchange). Cheap to clone.
#[derive(Clone, Default)]
pub struct Observations {
    /// This instance's probe results.
    pub probed: Arc<ArcSwap<ProbeTable>>,
    /// What the other instances said, with `[cluster]`.
    pub cluster: Arc<ArcSwapOption<ClusterView>>,
}

/// The targets whose pools limit how many instances probe them (`probers`), with that
/// number: when several pools share a target, the largest, and none if any pool sets none.
pub fn probers(config: &Config) -> std::collections::HashMap<Target, usize> {
    let mut limits: std::collections::HashMap<Target, Option<usize>> = std::collections::HashMap::new();
    for pool in config.zones.iter().flat_map(|z| &z.pools) {
        for m in pool.members.iter().filter(|m| m.check.kind != CheckKind::None) {
            let ips = m.ipv4.iter().map(|&ip| ip.into()).chain(m.ipv6.iter().map(|&ip| ip.into()));
            for ip in ips {
                let limit = limits.entry(Target { ip, check: m.check.clone() }).or_insert(pool.probers);
                *limit = match (*limit, pool.probers) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
        }
    }
    limits.into_iter().filter_map(|(t, n)| Some((t, n?))).collect()
}

/// Every distinct probe target of a config.
pub fn targets(config: &Config) -> Vec<Target> {
    members_by_target(config).into_iter().map(|(t, _)| t).collect()
}

/// Every distinct probe target with the members (`pool/member`) that use it, for logs.
pub fn members_by_target(config: &Config) -> Vec<(Target, String)> {
    let mut out: Vec<(Target, String)> = Vec::new();
    let mut seen: std::collections::HashMap<Target, usize> = std::collections::HashMap::new();
    for zone in &config.zones {
        for pool in &zone.pools {
            for m in &pool.members {
                if m.check.kind == CheckKind::None {
                    continue;
                }
                let ips = m.ipv4.iter().map(|&ip| ip.into()).chain(m.ipv6.iter().map(|&ip| ip.into()));
                for ip in ips {
                    let t = Target { ip, check: m.check.clone() };
                    let who = format!("{}/{}", pool.name.to_dotless(), m.id);
                    match seen.get(&t) {
                        Some(&i) => {
                            out[i].1.push_str(", ");
                            out[i].1.push_str(&who);
                        }
                        None => {
                            seen.insert(t.clone(), out.len());
                            out.push((t, who));
                        }
                    }
                }
            }
        }
    }
    out
}
