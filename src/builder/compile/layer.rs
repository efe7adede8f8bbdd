//! What every compiler of a zone shares: the static layer (the config's records with a
//! placeholder at every name a pool answers) and the merge of static and dynamic (controller,
//! webhook and ExternalDNS) records, which also says which dynamic records DNS does not
//! answer and why.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::builder::held::Layered;
use crate::config::{PoolMode, StaticRecords, ZoneConfig};
use crate::dns::name::Name;
use crate::dns::records::{RData, RRset, Source, TypeMap, ZoneData};
use crate::dns::types::*;
use crate::snapshot::build::MergedNodes;

/// A zone's static records with a placeholder at every name a pool answers (an empty node
/// for an address pool, its NS set for a delegate pool, so that names below it are occluded),
/// and the set of those names. Independent of health.
#[derive(Debug)]
pub struct StaticLayer {
    /// `None` for a zone without pools (its config data is used as is).
    with_pools: Option<ZoneData>,
    dynamic_names: HashSet<Name>,
    /// In-zone names that static records point at (CNAME, NS, MX, SRV targets): their
    /// records are copied into those answers, so a change to them recompiles the zone.
    referenced: HashSet<Name>,
}

impl StaticLayer {
    /// The static records with the pools' placeholders (the config's records for a zone
    /// without pools).
    pub fn records<'a>(&'a self, zone: &'a ZoneConfig) -> &'a ZoneData {
        self.with_pools.as_ref().unwrap_or(&zone.data)
    }

    /// The names the zone's dynamic layer (its pools) answers.
    pub fn dynamic_names(&self) -> &HashSet<Name> {
        &self.dynamic_names
    }

    /// A pool's name, or a name static records point at.
    pub fn is_dynamic_or_referenced(&self, name: &Name) -> bool {
        self.dynamic_names.contains(name) || self.referenced.contains(name)
    }

    /// The layer of `zone` (built when its config changes).
    pub fn new(zone: &ZoneConfig) -> StaticLayer {
        let referenced = zone
            .data
            .nodes
            .values()
            .flat_map(|t| t.values())
            .flat_map(|set| set.rdata.iter())
            .filter_map(|rd| match rd {
                RData::Cname(t) => Some(t),
                other => other.additional_target(),
            })
            .filter(|t| t.is_within(&zone.apex))
            .cloned()
            .collect();
        if zone.pools.is_empty() && zone.geo_names.is_empty() {
            return StaticLayer { with_pools: None, dynamic_names: HashSet::new(), referenced };
        }
        let mut data = zone.data.clone();
        let mut dynamic_names = HashSet::new();
        for g in &zone.geo_names {
            data.nodes.entry(g.name.clone()).or_default();
            dynamic_names.insert(g.name.clone());
        }
        for pool in &zone.pools {
            let node = data.nodes.entry(pool.name.clone()).or_default();
            if pool.mode == PoolMode::Delegate {
                let hosts = pool.members.iter().map(|m| RData::Ns(m.host.clone())).collect();
                node.insert(
                    TYPE_NS,
                    RRset { ttl: pool.ttl, rdata: hosts, source: Source::Pool, rotate: false, draw: None },
                );
                // Glue hosts inside the zone with no static data of their own are the pool's.
                for m in &pool.members {
                    if m.host.is_within(&zone.apex) && !zone.data.nodes.contains_key(&m.host) {
                        data.nodes.entry(m.host.clone()).or_default();
                        dynamic_names.insert(m.host.clone());
                    }
                }
            }
            dynamic_names.insert(pool.name.clone());
        }
        StaticLayer { with_pools: Some(data), dynamic_names, referenced }
    }
}

/// Why a dynamic (controller, webhook or ExternalDNS) name+type is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShadowedBy {
    /// Controller or webhook records at the same name and type win over ExternalDNS's.
    Controller,
    /// Static records at the same name win (`static_records = "override"`, or the apex).
    Static,
    /// A health-checked pool owns the name; pools always win.
    Pool,
    /// The name is at or below a delegation, so the child zone answers it.
    Delegation,
}

impl ShadowedBy {
    /// Label for JSON, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowedBy::Controller => "controller",
            ShadowedBy::Static => "static",
            ShadowedBy::Pool => "pool",
            ShadowedBy::Delegation => "delegation",
        }
    }
}

/// A dynamic name+type that DNS does not answer, and why.
pub type Shadowed = (Name, u16, ShadowedBy);

/// The static layer's delegation points (not the apex), by wire name: a static NS set is a
/// delegation, a delegate pool's NS set is the pool's.
fn cuts(static_data: &ZoneData) -> HashMap<&[u8], ShadowedBy> {
    static_data
        .nodes
        .iter()
        .filter(|(n, _)| **n != static_data.apex)
        .filter_map(|(n, t)| t.get(&TYPE_NS).map(|ns| (n, ns)))
        .map(|(n, ns)| (n.as_wire(), if ns.source == Source::Pool { ShadowedBy::Pool } else { ShadowedBy::Delegation }))
        .collect()
}

/// The cut at or above `name` (up to, not including, the apex), if any.
fn cut_above(cuts: &HashMap<&[u8], ShadowedBy>, name: &Name, apex: &Name) -> Option<ShadowedBy> {
    if cuts.is_empty() {
        return None;
    }
    let wire = name.as_wire();
    crate::dns::name::label_offsets(wire)
        .take_while(|&off| wire.len() - off > apex.wire_len())
        .find_map(|off| cuts.get(&wire[off..]).copied())
}

/// Static data (with the pools' records) and dynamic records merged, borrowed where a name
/// comes from one side only. Where both define a name: a pool or geo name (`owned`) always wins; otherwise with
/// [`StaticRecords::Fallback`] the dynamic side wins type by type (a dynamic CNAME takes the
/// whole name, dynamic addresses push out a static CNAME; the apex keeps its static CNAME-free
/// data), with [`StaticRecords::Override`] the static side does. Every dynamic name+type
/// that is not answered is returned with the reason.
pub fn merge<'a>(
    static_data: &'a ZoneData,
    dynamic: Layered<'a>,
    mode: StaticRecords,
    owned: &dyn Fn(&Name) -> bool,
) -> (MergedNodes<'a>, Vec<Shadowed>) {
    let mut merged = Vec::with_capacity(static_data.nodes.len() + dynamic.len_hint());
    let mut shadowed = Vec::new();
    let apex = &static_data.apex;
    let cuts = if !dynamic.is_empty() { cuts(static_data) } else { HashMap::new() };
    let shadow_all = |n: &Name, t: &TypeMap, by: ShadowedBy, out: &mut Vec<Shadowed>| {
        out.extend(t.iter().map(|(&rtype, _)| (n.clone(), rtype, by)));
    };
    let by_held = std::cell::RefCell::new(Vec::new());
    let mut st = static_data.nodes.iter().peekable();
    let mut dy = dynamic.merged(&by_held).peekable();
    loop {
        let order = match (st.peek(), dy.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        match order {
            std::cmp::Ordering::Less => {
                let (n, t) = st.next().expect("peeked");
                merged.push((n, Cow::Borrowed(t)));
            }
            std::cmp::Ordering::Greater => {
                let (n, t) = dy.next().expect("peeked");
                if let Some(by) = cut_above(&cuts, n, apex) {
                    shadow_all(n, &t, by, &mut shadowed);
                    continue;
                }
                let t = if n == apex && t.contains_key(&TYPE_CNAME) {
                    shadowed.push((n.clone(), TYPE_CNAME, ShadowedBy::Static));
                    let mut t = t.into_owned();
                    t.remove(&TYPE_CNAME);
                    Cow::Owned(t)
                } else {
                    t
                };
                if !t.is_empty() {
                    merged.push((n, t));
                }
            }
            std::cmp::Ordering::Equal => {
                let (n, s) = st.next().expect("peeked");
                let (_, d) = dy.next().expect("peeked");
                // A pool's name may hold no records right now (all down, `nodata`): it is
                // still the pool's.
                let pool = owned(n);
                if let Some(by) = cut_above(&cuts, n, apex).or(pool.then_some(ShadowedBy::Pool)) {
                    shadow_all(n, &d, by, &mut shadowed);
                    merged.push((n, Cow::Borrowed(s)));
                    continue;
                }
                let mut both = s.clone();
                match mode {
                    StaticRecords::Override => {
                        for (&rtype, set) in d.iter() {
                            let clash = both.contains_key(&rtype)
                                || (rtype == TYPE_CNAME && !both.is_empty())
                                || both.contains_key(&TYPE_CNAME);
                            if clash {
                                shadowed.push((n.clone(), rtype, ShadowedBy::Static));
                            } else {
                                both.insert(rtype, set.clone());
                            }
                        }
                    }
                    StaticRecords::Fallback => {
                        for (&rtype, set) in d.iter() {
                            if rtype == TYPE_CNAME && n == apex {
                                // The apex holds SOA and NS: a CNAME there is never answered.
                                shadowed.push((n.clone(), rtype, ShadowedBy::Static));
                                continue;
                            }
                            if rtype == TYPE_CNAME {
                                both = TypeMap::new();
                            } else {
                                both.remove(&TYPE_CNAME);
                            }
                            both.insert(rtype, set.clone());
                        }
                    }
                }
                merged.push((n, Cow::Owned(both)));
            }
        }
    }
    drop(dy);
    shadowed.extend(by_held.into_inner().into_iter().map(|(n, rtype)| (n, rtype, ShadowedBy::Controller)));
    // Names outside the zone never reach the builder.
    merged.retain(|(n, _)| n.is_within(apex));
    (merged, shadowed)
}
