//! The health of pool members as data: the rise/fall state machine ([`state`]), the table of
//! every probed target's status ([`table`]) and the targets a config asks for. The probes
//! that fill the table are in [`crate::probes`]. Health never touches the query path: a
//! state change makes the builder recompile, and DNS reads the new snapshot.

pub mod state;
pub mod table;

use crate::config::{CheckKind, Config};
use table::Target;

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
