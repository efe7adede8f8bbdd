//! Turns health-checked pools into records for the builder: the A/AAAA sets (address mode)
//! or NS sets with glue (delegate mode) of the members that qualify right now, or the
//! `when_all_down` fallback.

use std::borrow::Cow;

use super::policy::{Choice, MemberView, candidates};
use crate::config::PoolConfig;
use crate::config::{MemberConfig, PoolMode, ZoneConfig};
use crate::config::{Select, WhenAllDown};
use crate::dns::name::Name;
use crate::dns::records::Nodes;
use crate::dns::records::{RData, RRset, Source};
use crate::dns::types::*;
use crate::health::member_state::{AdminState, MemberStates};
use crate::health::verdict::{PoolHealth, Verdicts};
use crate::snapshot::build::{GeoSpec, GeoSpecKind, GeoVariant, HashSpec, WeightedSpec};
use crate::snapshot::geo::{CompiledMap, NO_DATACENTER};

/// Records of a zone's pools, and the pool names that answer SERVFAIL for addresses.
#[derive(Debug, Default)]
pub struct PoolRecords {
    /// Owner → RRsets.
    pub nodes: Nodes,
    /// Address pools with every member down and `when_all_down = "servfail"`.
    pub servfail: Vec<Name>,
    /// Weighted pools: answers drawn per query.
    pub weighted: Vec<WeightedSpec>,
    /// Geo pools and names: answers chosen by the client's location.
    pub geo: Vec<GeoSpec>,
    /// Pools' HTTPS/SVCB records, (name, type): hints filled per query.
    pub hinted: Vec<(Name, u16)>,
}

/// What geo pools and names need beyond the zone: the compiled maps (their orders) and the
/// metrics slot of each owner.
pub struct GeoInputs<'a> {
    /// Maps by config index.
    pub maps: &'a [CompiledMap],
    /// The metrics slot of a geo pool's or name's owner.
    pub slot: &'a dyn Fn(&Name) -> u16,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

fn addresses(m: &MemberConfig, family: Family, health: &PoolHealth<'_>, only_up: bool) -> Vec<RData> {
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

/// What decides which members answer: the health verdicts and the operators' states.
#[derive(Clone, Copy)]
pub struct Standing<'a> {
    /// Health verdicts.
    pub verdicts: &'a Verdicts,
    /// Drained and disabled members.
    pub states: &'a MemberStates,
}

/// The records of every pool of `zone` under the current verdicts and operator states.
pub fn pool_records(zone: &ZoneConfig, standing: Standing<'_>, geo: &GeoInputs<'_>) -> PoolRecords {
    let (verdicts, states) = (standing.verdicts, standing.states);
    let mut out = PoolRecords::default();
    for g in &zone.geo_names {
        let node = out.nodes.entry(g.name.clone()).or_default();
        for rtype in [TYPE_A, TYPE_AAAA] {
            node.insert(rtype, RRset { ttl: 0, rdata: Vec::new(), source: Source::Pool, rotate: false, draw: None });
            out.geo.push(GeoSpec {
                name: g.name.clone(),
                rtype,
                map: g.map as u16,
                slot: (geo.slot)(&g.name),
                kind: GeoSpecKind::Names(g.targets.clone()),
            });
        }
    }
    for pool in &zone.pools {
        let health = &verdicts.for_pool(pool.quorum);
        // Disabled members are never answered, not even failing open: the pool is compiled
        // as if they were not in it. Drained ones are the last resort (`policy`).
        let pool = &enabled(pool, states);
        let drained = |i: usize| states.of(&pool.name, &pool.members[i].id) == Some(AdminState::Drained);
        if let Some(map) = pool.geo {
            let Some(map) = geo.maps.get(map) else { continue };
            geo_pool(pool, map, (geo.slot)(&pool.name), health, &drained, &mut out);
            https_record(pool, &mut out);
            continue;
        }
        let set = |rdata: Vec<RData>| RRset { ttl: pool.ttl, rdata, source: Source::Pool, rotate: true, draw: None };
        let mut chosen_any: Vec<usize> = Vec::new();
        let mut fallback: Option<Choice> = None;
        let node = out.nodes.entry(pool.name.clone()).or_default();
        if pool.mode == PoolMode::Delegate {
            // A name server is usable when any of its addresses answers (resolvers try them
            // all), so delegate pools choose members once, whatever the address family.
            let views: Vec<MemberView> = pool
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let up = [Family::V4, Family::V6].iter().any(|&f| !addresses(m, f, health, true).is_empty());
                    MemberView { role: m.role, weight: m.weight, up, drained: drained(i) }
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
            let views = views(pool, &with_family, family, health, &drained, false);
            match candidates(&views, pool.select, &pool.when_all_down) {
                Choice::Members { members, weights } => {
                    let all_down = !views.iter().any(|v| v.up);
                    let rtype = if family == Family::V4 { TYPE_A } else { TYPE_AAAA };
                    let picked: Vec<usize> = members.iter().map(|&j| with_family[j]).collect();
                    match answer(pool, family, &picked, &weights, all_down, health) {
                        Some(GeoVariant::Weighted(spec)) => {
                            // The node needs the type; the builder encodes the spec there.
                            node.insert(rtype, set(Vec::new()));
                            out.weighted.push(spec);
                        }
                        Some(GeoVariant::Records(records)) => {
                            node.insert(rtype, records);
                        }
                        _ => {}
                    }
                }
                other => fallback = Some(other),
            }
        }
        match (pool.mode, fallback) {
            (PoolMode::Address, Some(Choice::Cname(target))) if node.is_empty() => {
                node.insert(
                    TYPE_CNAME,
                    RRset {
                        ttl: pool.ttl,
                        rdata: vec![RData::Cname(target)],
                        source: Source::Pool,
                        rotate: false,
                        draw: None,
                    },
                );
            }
            (PoolMode::Address, Some(Choice::ServFail)) => out.servfail.push(pool.name.clone()),
            _ => {}
        }
        if pool.mode == PoolMode::Delegate {
            let hosts: Vec<usize> = if chosen_any.is_empty() { (0..pool.members.len()).collect() } else { chosen_any };
            delegation(pool, &hosts, health, &mut out.nodes);
        }
        https_record(pool, &mut out);
    }
    out
}

/// The pool's HTTPS/SVCB record as configured, without hints (the query path adds them from
/// the A and AAAA answers it gives the same client). Not beside a `when_all_down` CNAME: the
/// name is an alias then, for every type.
fn https_record(pool: &PoolConfig, out: &mut PoolRecords) {
    let Some(h) = &pool.https else { return };
    let node = out.nodes.entry(pool.name.clone()).or_default();
    if node.get(&TYPE_CNAME).is_some() {
        return;
    }
    let rdata = vec![RData::Other { rtype: h.rtype, data: h.rdata.clone().into() }];
    node.insert(h.rtype, RRset { ttl: pool.ttl, rdata, source: Source::Pool, rotate: false, draw: None });
    out.hinted.push((pool.name.clone(), h.rtype));
}

/// The pool without its disabled members (borrowed when it has none).
fn enabled<'a>(pool: &'a PoolConfig, states: &MemberStates) -> Cow<'a, PoolConfig> {
    let disabled = |m: &MemberConfig| states.of(&pool.name, &m.id) == Some(AdminState::Disabled);
    if !pool.members.iter().any(disabled) {
        return Cow::Borrowed(pool);
    }
    let mut kept = pool.clone();
    kept.members.retain(|m| !disabled(m));
    Cow::Owned(kept)
}

/// What the policy sees of `members` for one family: healthy means one address of it is up.
/// `drained_down`: drained members count as down (another group has an undrained one up).
fn views(
    pool: &PoolConfig,
    members: &[usize],
    family: Family,
    health: &PoolHealth<'_>,
    drained: &dyn Fn(usize) -> bool,
    drained_down: bool,
) -> Vec<MemberView> {
    members
        .iter()
        .map(|&i| {
            let m = &pool.members[i];
            let up = !(addresses(m, family, health, true).is_empty() || drained_down && drained(i));
            MemberView { role: m.role, weight: m.weight, up, drained: drained(i) }
        })
        .collect()
}

/// The NS set of the members `hosts` at the pool's name, and their glue: each host's healthy
/// addresses of a family, else all of them (a resolver tries them all).
fn delegation(pool: &PoolConfig, hosts: &[usize], health: &PoolHealth<'_>, nodes: &mut Nodes) {
    let set = |rdata: Vec<RData>| RRset { ttl: pool.ttl, rdata, source: Source::Pool, rotate: true, draw: None };
    nodes.entry(pool.name.clone()).or_default().insert(TYPE_NS, ns_set(pool, hosts));
    for &i in hosts {
        let m = &pool.members[i];
        for (family, rtype) in [(Family::V4, TYPE_A), (Family::V6, TYPE_AAAA)] {
            let mut up = addresses(m, family, health, true);
            if up.is_empty() {
                up = addresses(m, family, health, false);
            }
            if !up.is_empty() {
                nodes.entry(m.host.clone()).or_default().insert(rtype, set(up));
            }
        }
    }
}

/// The NS set naming the members `hosts`.
fn ns_set(pool: &PoolConfig, hosts: &[usize]) -> RRset {
    let rdata = hosts.iter().map(|&i| RData::Ns(pool.members[i].host.clone())).collect();
    RRset { ttl: pool.ttl, rdata, source: Source::Pool, rotate: true, draw: None }
}

/// The answer of `members` (indexes into the pool's members, `weights` parallel for a
/// weighted or hashed pool) for one family: drawn per query when the pool is weighted or more
/// members qualify than `max_answers` (hashed by the client's network instead with
/// `select = "hash"`), else the first `max_answers`. (`failover` and `all` with more
/// members than `max_answers` draw with equal weights, so that every member is answered
/// equally often over many queries: a fixed first few would leave the rest idle;
/// zoneregistry round-robins all healthy peers.) `all_down`: every member is
/// answered although down (fail open). `None` when no member has an address to give.
fn answer(
    pool: &PoolConfig,
    family: Family,
    members: &[usize],
    weights: &[u32],
    all_down: bool,
    health: &PoolHealth<'_>,
) -> Option<GeoVariant> {
    let rtype = if family == Family::V4 { TYPE_A } else { TYPE_AAAA };
    let more = members.len() > pool.max_answers;
    // Hashing picks per client only when there is a choice: with every member in the answer
    // it is the same for everyone (ECS scope 0).
    let hashed = pool.select == Select::Hash && more;
    let equal = !matches!(pool.select, Select::Weighted | Select::Hash) && more;
    if pool.select == Select::Weighted || equal || hashed {
        let groups: Vec<(Vec<RData>, u32, u64)> = members
            .iter()
            .enumerate()
            .map(|(i, &m)| {
                let weight = if equal { 1 } else { weights.get(i).copied().unwrap_or(1) };
                // The member's identity, not its position: the ranking survives other
                // members coming and going, and is the same on every replica.
                let seed = crate::snapshot::policy::seed(&format!("{}/{}", pool.name, pool.members[m].id));
                (addresses(&pool.members[m], family, health, !all_down), weight, seed)
            })
            .filter(|(rd, _, _)| !rd.is_empty())
            .collect();
        let hash = hashed.then(|| HashSpec {
            prefix_v4: pool.hash_prefix.v4,
            prefix_v6: pool.hash_prefix.v6,
            seeds: groups.iter().map(|g| g.2).collect(),
        });
        let groups = groups.into_iter().map(|(rd, w, _)| (rd, w)).collect();
        let spec = WeightedSpec { name: pool.name.clone(), rtype, ttl: pool.ttl, groups, k: pool.max_answers, hash };
        return (!spec.groups.is_empty()).then_some(GeoVariant::Weighted(spec));
    }
    let rdata: Vec<RData> = members
        .iter()
        .take(pool.max_answers)
        .flat_map(|&m| addresses(&pool.members[m], family, health, !all_down))
        .collect();
    let set = RRset { ttl: pool.ttl, rdata, source: Source::Pool, rotate: true, draw: None };
    (!set.rdata.is_empty()).then_some(GeoVariant::Records(set))
}

/// A geo pool's answers per family: the members the pool's `select` (its `within`) chooses
/// in each datacenter, encoded once per datacenter; each of the map's orders gets the first
/// datacenter with a healthy member, else the `when_all_down` fallback (`all`: every member
/// of the nearest datacenter that has members of the family).
fn geo_pool(
    pool: &PoolConfig,
    map: &CompiledMap,
    slot: u16,
    health: &PoolHealth<'_>,
    drained: &dyn Fn(usize) -> bool,
    out: &mut PoolRecords,
) {
    if pool.mode == PoolMode::Delegate {
        return geo_delegation(pool, map, slot, health, drained, out);
    }
    let node = out.nodes.entry(pool.name.clone()).or_default();
    let datacenters = map.orders.first().map_or(0, |o| o.len());
    for family in [Family::V4, Family::V6] {
        let rtype = if family == Family::V4 { TYPE_A } else { TYPE_AAAA };
        let in_dc = |dc: usize| -> Vec<usize> {
            (0..pool.members.len())
                .filter(|&i| pool.members[i].datacenter == Some(dc as u16))
                .filter(|&i| !addresses(&pool.members[i], family, health, false).is_empty())
                .collect()
        };
        let by_dc: Vec<Vec<usize>> = (0..datacenters).map(in_dc).collect();
        if by_dc.iter().all(Vec::is_empty) {
            continue;
        }
        let mut variants: Vec<GeoVariant> = Vec::new();
        let mut chosen: Vec<Option<u32>> = vec![None; datacenters];
        let mut fail_open: Vec<Option<u32>> = vec![None; datacenters];
        // A drained member is the pool's last resort, not its datacenter's: while any
        // datacenter has an undrained member up, drained ones count as down everywhere.
        let undrained_up = by_dc
            .iter()
            .flatten()
            .any(|&i| !drained(i) && !addresses(&pool.members[i], family, health, true).is_empty());
        for (dc, members) in by_dc.iter().enumerate().filter(|(_, m)| !m.is_empty()) {
            let views = views(pool, members, family, health, drained, undrained_up);
            if let Choice::Members { members: picked, weights } = candidates(&views, pool.select, &WhenAllDown::NoData)
            {
                let picked: Vec<usize> = picked.iter().map(|&j| members[j]).collect();
                if let Some(v) = answer(pool, family, &picked, &weights, false, health) {
                    chosen[dc] = Some(variants.len() as u32);
                    variants.push(v);
                }
            }
            if pool.when_all_down == WhenAllDown::All {
                let weights: Vec<u32> = members.iter().map(|&i| pool.members[i].weight.max(1)).collect();
                if let Some(v) = answer(pool, family, members, &weights, true, health) {
                    fail_open[dc] = Some(variants.len() as u32);
                    variants.push(v);
                }
            }
        }
        let fallback = match &pool.when_all_down {
            WhenAllDown::ServFail => GeoVariant::ServFail,
            WhenAllDown::Cname(t) => GeoVariant::Cname(t.clone(), pool.ttl),
            _ => GeoVariant::NoData,
        };
        let by_order = by_order(map, &chosen, &fail_open, &mut variants, fallback);
        node.insert(rtype, RRset { ttl: pool.ttl, rdata: Vec::new(), source: Source::Pool, rotate: false, draw: None });
        out.geo.push(GeoSpec {
            name: pool.name.clone(),
            rtype,
            map: pool.geo.unwrap_or(0) as u16,
            slot,
            kind: GeoSpecKind::Pool { variants, by_order },
        });
    }
}

/// Per order of `map`: the answer of the first datacenter in the order with a `chosen` one,
/// else of the first with a `fail_open` one, else `fallback` (added to `variants` once, when
/// needed); with the datacenter it comes from.
fn by_order(
    map: &CompiledMap,
    chosen: &[Option<u32>],
    fail_open: &[Option<u32>],
    variants: &mut Vec<GeoVariant>,
    fallback: GeoVariant,
) -> Vec<(u32, u16)> {
    let mut fallback = Some(fallback);
    let mut fallback_at: Option<u32> = None;
    let first = |table: &[Option<u32>], order: &[u16]| {
        order.iter().find_map(|&d| table.get(d as usize).copied().flatten().map(|v| (v, d)))
    };
    map.orders
        .iter()
        .map(|order| {
            first(chosen, order).or_else(|| first(fail_open, order)).unwrap_or_else(|| {
                let at = *fallback_at.get_or_insert_with(|| {
                    variants.push(fallback.take().unwrap_or(GeoVariant::NoData));
                    (variants.len() - 1) as u32
                });
                (at, NO_DATACENTER)
            })
        })
        .collect()
}

/// A delegating geo pool: per datacenter a referral to the members the pool's `within`
/// chooses among those that answer (any address healthy), else to all of them (a resolver
/// tries them all, as a delegate pool does when every member is down); each of the map's
/// orders gets the first datacenter with a usable member, else the nearest with members.
fn geo_delegation(
    pool: &PoolConfig,
    map: &CompiledMap,
    slot: u16,
    health: &PoolHealth<'_>,
    drained: &dyn Fn(usize) -> bool,
    out: &mut PoolRecords,
) {
    let datacenters = map.orders.first().map_or(0, |o| o.len());
    let usable =
        |i: usize| [Family::V4, Family::V6].iter().any(|&f| !addresses(&pool.members[i], f, health, true).is_empty());
    let mut variants: Vec<GeoVariant> = Vec::new();
    let mut chosen: Vec<Option<u32>> = vec![None; datacenters];
    let mut fail_open: Vec<Option<u32>> = vec![None; datacenters];
    for dc in 0..datacenters {
        let members: Vec<usize> =
            (0..pool.members.len()).filter(|&i| pool.members[i].datacenter == Some(dc as u16)).collect();
        if members.is_empty() {
            continue;
        }
        let views: Vec<MemberView> = members
            .iter()
            .map(|&i| {
                let m = &pool.members[i];
                MemberView { role: m.role, weight: m.weight, up: usable(i), drained: drained(i) }
            })
            .collect();
        if let Choice::Members { members: picked, .. } = candidates(&views, pool.select, &WhenAllDown::NoData) {
            let hosts: Vec<usize> = picked.iter().map(|&j| members[j]).take(pool.max_answers).collect();
            chosen[dc] = Some(variants.len() as u32);
            variants.push(GeoVariant::Referral(ns_set(pool, &hosts)));
        }
        fail_open[dc] = Some(variants.len() as u32);
        variants.push(GeoVariant::Referral(ns_set(pool, &members)));
    }
    let by_order = by_order(map, &chosen, &fail_open, &mut variants, GeoVariant::NoData);
    // The name is a cut holding every member, and every member's glue is at hand for the
    // referrals.
    let all: Vec<usize> = (0..pool.members.len()).collect();
    delegation(pool, &all, health, &mut out.nodes);
    out.geo.push(GeoSpec {
        name: pool.name.clone(),
        rtype: TYPE_NS,
        map: pool.geo.unwrap_or(0) as u16,
        slot,
        kind: GeoSpecKind::Pool { variants, by_order },
    });
}
