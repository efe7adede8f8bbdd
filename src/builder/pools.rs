//! Turns health-checked pools into records for the builder: the A/AAAA sets (address mode)
//! or NS sets with glue (delegate mode) of the members that qualify right now, or the
//! `when_all_down` fallback.

use crate::config::{MemberConfig, PoolMode, ZoneConfig};
use crate::dns::name::Name;
use crate::dns::types::*;
use crate::health::table::HealthTable;
use crate::snapshot::build::WeightedSpec;
use crate::snapshot::policy::{Choice, MemberView, Select, candidates};
use crate::snapshot::records::Nodes;
use crate::snapshot::records::{RData, RRset, Source, TypeMap};

/// Records of a zone's pools, and the pool names that answer SERVFAIL for addresses.
#[derive(Debug, Default)]
pub struct PoolRecords {
    /// Owner → RRsets.
    pub nodes: Nodes,
    /// Address pools with every member down and `when_all_down = "servfail"`.
    pub servfail: Vec<Name>,
    /// Weighted pools: answers drawn per query.
    pub weighted: Vec<WeightedSpec>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

fn addresses(m: &MemberConfig, family: Family, health: &HealthTable, only_up: bool) -> Vec<RData> {
    match family {
        Family::V4 => {
            m.ipv4.iter().filter(|&&ip| !only_up || health.is_up(ip.into(), &m.check)).map(|&ip| RData::A(ip)).collect()
        }
        Family::V6 => m
            .ipv6
            .iter()
            .filter(|&&ip| !only_up || health.is_up(ip.into(), &m.check))
            .map(|&ip| RData::Aaaa(ip))
            .collect(),
    }
}

/// The records of every pool of `zone` under the current health.
pub fn pool_records(zone: &ZoneConfig, health: &HealthTable) -> PoolRecords {
    let mut out = PoolRecords::default();
    for pool in &zone.pools {
        let set = |rdata: Vec<RData>| RRset { ttl: pool.ttl, rdata, source: Source::Pool, rotate: true };
        let mut chosen_any: Vec<usize> = Vec::new();
        let mut fallback: Option<Choice> = None;
        let node = out.nodes.entry(pool.name.clone()).or_default();
        if pool.mode == PoolMode::Delegate {
            // A name server is usable when any of its addresses answers (resolvers try them
            // all), so delegate pools choose members once, whatever the address family.
            let views: Vec<MemberView> = pool
                .members
                .iter()
                .map(|m| {
                    let up = [Family::V4, Family::V6].iter().any(|&f| !addresses(m, f, health, true).is_empty());
                    MemberView { role: m.role, weight: m.weight, up }
                })
                .collect();
            if let Choice::Members { members, .. } = candidates(&views, pool.select, &pool.when_all_down) {
                chosen_any = members.into_iter().take(pool.max_answers).collect();
            }
        }
        for family in [Family::V4, Family::V6] {
            if pool.mode == PoolMode::Delegate {
                break;
            }
            // Members with an address of this family take part; healthy means one such address is up.
            let with_family: Vec<usize> = (0..pool.members.len())
                .filter(|&i| !addresses(&pool.members[i], family, health, false).is_empty())
                .collect();
            if with_family.is_empty() {
                continue;
            }
            let views: Vec<MemberView> = with_family
                .iter()
                .map(|&i| {
                    let m = &pool.members[i];
                    MemberView { role: m.role, weight: m.weight, up: !addresses(m, family, health, true).is_empty() }
                })
                .collect();
            match candidates(&views, pool.select, &pool.when_all_down) {
                Choice::Members { members, weights } => {
                    let all_down = !views.iter().any(|v| v.up);
                    let rtype = if family == Family::V4 { TYPE_A } else { TYPE_AAAA };
                    // `weighted` draws by weight; `failover` and `all` with more qualifying
                    // members than `max_answers` draw with equal weights, so that every member
                    // is answered equally often over many queries (a fixed first few would
                    // leave the rest idle; zoneregistry round-robins all healthy peers).
                    let equal = pool.select != Select::Weighted && members.len() > pool.max_answers;
                    if pool.mode == PoolMode::Address && (pool.select == Select::Weighted || equal) {
                        let weight = |i: usize| if equal { 1 } else { weights[i] };
                        let groups: Vec<(Vec<RData>, u32)> = members
                            .iter()
                            .enumerate()
                            .map(|(i, &j)| {
                                (addresses(&pool.members[with_family[j]], family, health, !all_down), weight(i))
                            })
                            .filter(|(rd, _)| !rd.is_empty())
                            .collect();
                        if !groups.is_empty() {
                            let k = pool.max_answers;
                            out.weighted.push(WeightedSpec {
                                name: pool.name.clone(),
                                rtype,
                                ttl: pool.ttl,
                                groups,
                                k,
                            });
                        }
                    }
                    let picked: Vec<usize> = members.iter().map(|&j| with_family[j]).take(pool.max_answers).collect();
                    let mut rdata = Vec::new();
                    for &i in &picked {
                        rdata.extend(addresses(&pool.members[i], family, health, !all_down));
                        if !chosen_any.contains(&i) {
                            chosen_any.push(i);
                        }
                    }
                    if pool.mode == PoolMode::Address && !rdata.is_empty() {
                        node.insert(rtype, set(rdata));
                    }
                }
                other => fallback = Some(other),
            }
        }
        match (pool.mode, fallback) {
            (PoolMode::Address, Some(Choice::Cname(target))) if node.is_empty() => {
                node.insert(
                    TYPE_CNAME,
                    RRset { ttl: pool.ttl, rdata: vec![RData::Cname(target)], source: Source::Pool, rotate: false },
                );
            }
            (PoolMode::Address, Some(Choice::ServFail)) => out.servfail.push(pool.name.clone()),
            _ => {}
        }
        if pool.mode == PoolMode::Delegate {
            let hosts: Vec<usize> = if chosen_any.is_empty() { (0..pool.members.len()).collect() } else { chosen_any };
            let ns: Vec<RData> = hosts.iter().map(|&i| RData::Ns(pool.members[i].host.clone())).collect();
            let mut glue: Vec<(Name, u16, Vec<RData>)> = Vec::new();
            for &i in &hosts {
                let m = &pool.members[i];
                for (family, rtype) in [(Family::V4, TYPE_A), (Family::V6, TYPE_AAAA)] {
                    let mut up = addresses(m, family, health, true);
                    if up.is_empty() {
                        up = addresses(m, family, health, false);
                    }
                    if !up.is_empty() {
                        glue.push((m.host.clone(), rtype, up));
                    }
                }
            }
            out.nodes.entry(pool.name.clone()).or_insert_with(TypeMap::new).insert(TYPE_NS, set(ns));
            for (host, rtype, rdata) in glue {
                out.nodes.entry(host).or_default().insert(rtype, set(rdata));
            }
        }
    }
    out
}
