//! What a zone transfer carries: the zone's records as compiled (static, controller, webhook
//! and ExternalDNS records merged by the same rules as the base) and each pool's answer for a
//! client no location rule covers. A secondary cannot steer per client, so it gets the
//! answer that client gets: every member a draw could pick, a geo pool's answer for the map's
//! default order. Made when a transfer asks, from the records the builder holds (shared, not
//! copied), so a zone with transfers costs no memory per record beyond its own.

use std::sync::Arc;

use super::layer::{StaticLayer, merge};
use super::pools::{GeoInputs, Standing, pool_records};
use crate::builder::held::{self, Held, HeldZone, Layered};
use crate::config::{Config, ZoneConfig};
use crate::dns::name::Name;
use crate::dns::records::{Nodes, RData, RRset, Source, TypeMap, ZoneData};
use crate::dns::types::*;
use crate::snapshot::TransferContent;
use crate::snapshot::build::GeoVariant;

/// The pools' and geo names' answers for a client no location rule covers.
pub fn pool_answers(zone: &ZoneConfig, standing: Standing<'_>, geo: &GeoInputs<'_>) -> Nodes {
    let records = pool_records(zone, standing, geo);
    let mut nodes = records.nodes;
    let every = |groups: &[(Vec<RData>, u32)]| -> Vec<RData> {
        let mut all: Vec<RData> = Vec::new();
        for rd in groups.iter().filter(|(_, w)| *w > 0).flat_map(|(g, _)| g) {
            if !all.contains(rd) {
                all.push(rd.clone());
            }
        }
        all
    };
    let set = |ttl: u32, rdata: Vec<RData>| RRset { ttl, rdata, source: Source::Pool, rotate: true, draw: None };
    for spec in &records.weighted {
        if let Some(node) = nodes.get_mut(&spec.name) {
            node.insert(spec.rtype, set(spec.ttl, every(&spec.groups)));
        }
    }
    for name in &records.servfail {
        if let Some(node) = nodes.get_mut(name) {
            node.remove(&TYPE_A);
            node.remove(&TYPE_AAAA);
        }
    }
    let mut names = Vec::new();
    for spec in &records.geo {
        match &spec.kind {
            crate::snapshot::build::GeoSpecKind::Pool { variants, by_order } => {
                let node = nodes.entry(spec.name.clone()).or_default();
                node.remove(&spec.rtype);
                let variant = by_order.first().and_then(|(v, _)| variants.get(*v as usize));
                match variant {
                    Some(GeoVariant::Records(r)) => {
                        node.insert(spec.rtype, r.clone());
                    }
                    Some(GeoVariant::Weighted(w)) => {
                        node.insert(spec.rtype, set(w.ttl, every(&w.groups)));
                    }
                    Some(GeoVariant::Cname(target, ttl)) => {
                        *node = crate::dns::records::TypeMap::new();
                        node.insert(
                            TYPE_CNAME,
                            RRset { rotate: false, ..set(*ttl, vec![RData::Cname(target.clone())]) },
                        );
                    }
                    Some(GeoVariant::Referral(ns)) => {
                        node.insert(TYPE_NS, ns.clone());
                    }
                    Some(GeoVariant::NoData | GeoVariant::ServFail) | None => {}
                }
            }
            crate::snapshot::build::GeoSpecKind::Names(targets) => {
                names.push((spec.name.clone(), spec.rtype, spec.map, targets.clone()));
            }
        }
    }
    // A geo name answers with its first target, in the default order, that has addresses.
    for (name, rtype, map, targets) in names {
        let order = geo.maps.get(map as usize).and_then(|m| m.orders.first());
        let found = order.into_iter().flat_map(|o| o.iter()).find_map(|&dc| {
            let target = targets.get(dc as usize)?.as_ref()?;
            let set =
                nodes.get(target).and_then(|t| t.get(&rtype)).or_else(|| zone.data.nodes.get(target)?.get(&rtype))?;
            (!set.rdata.is_empty()).then(|| set.clone())
        });
        let node = nodes.entry(name).or_default();
        node.remove(&rtype);
        if let Some(set) = found {
            node.insert(rtype, set);
        }
    }
    for types in nodes.values_mut() {
        types.retain(|s| !s.rdata.is_empty());
    }
    nodes.retain(|_, t| !t.is_empty());
    nodes
}

/// A zone's content for a transfer: what it is merged from, shared with the builder.
pub struct ZoneContent {
    /// The config in force (the zone's static records, precedence, pools).
    pub config: Arc<Config>,
    /// The zone.
    pub apex: Name,
    /// Its static layer.
    pub layer: Arc<StaticLayer>,
    /// Its controller, webhook and ExternalDNS records.
    pub held: Option<HeldZone>,
    /// Its pools' answers ([`pool_answers`]).
    pub pools: Arc<Nodes>,
    /// A controller zone whose data never loaded: not transferred.
    pub unloaded: bool,
}

impl ZoneContent {
    /// What a transfer carries at one name (its pools' answers at a pool's name). The same
    /// merge as the whole zone's, over the name's static records, those of its ancestors
    /// (a delegation above hides it) and its dynamic records.
    pub fn at(&self, name: &Name) -> TypeMap {
        let Some(zone) = self.config.zone(&self.apex) else { return TypeMap::new() };
        let pools = self.pools.get(name);
        if *name != zone.apex && self.layer.dynamic_names().contains(name) {
            return pools.cloned().unwrap_or_default();
        }
        let statics = self.layer.records(zone);
        let mut window = ZoneData { nodes: Default::default(), ..statics.clone_head() };
        let mut at = Some(name.clone());
        while let Some(n) = at.filter(|n| n.is_within(&zone.apex)) {
            if let Some(t) = statics.nodes.get(&n) {
                window.nodes.insert(n.clone(), t.clone());
            }
            at = n.parent();
        }
        let mut dynamic = Nodes::new();
        if let Some(t) = self.held.as_ref().and_then(|h| h.get(name, &zone.apex, zone.default_ttl)) {
            dynamic.insert(name.clone(), t);
        }
        let (nodes, _) = merge(&window, Layered::plain(&dynamic), zone.static_records, &|n| zone.answers_by_layer(n));
        let mut out = TypeMap::new();
        if let Some((_, types)) = nodes.iter().find(|(n, _)| *n == name) {
            for (&rtype, set) in types.iter() {
                let skip = (rtype == TYPE_SOA && *name == zone.apex) || pools.is_some_and(|p| p.contains_key(&rtype));
                if !skip && !set.rdata.is_empty() {
                    out.insert(rtype, set.undrawn().into_owned());
                }
            }
        }
        for (&rtype, set) in pools.into_iter().flat_map(|p| p.iter()) {
            out.insert(rtype, set.clone());
        }
        out
    }
}

impl TransferContent for ZoneContent {
    fn rrsets(&self, each: &mut dyn FnMut(&Name, u16, &RRset)) -> Result<(), String> {
        if self.unloaded {
            return Err("the zone's controller data has not loaded yet".into());
        }
        let zone = self.config.zone(&self.apex).ok_or("the zone is no longer served")?;
        let unpacked = match self.held.as_ref().map(|h| &h.held) {
            Some(Held::Packed(p)) => Some(held::unpack(&p.bytes, &zone.apex, zone.default_ttl)),
            _ => None,
        };
        let dynamic = self.held.as_ref().map(|h| Layered {
            base: match &h.held {
                Held::Converted(n) => Some(&**n),
                Held::Packed(_) => unpacked.as_ref(),
            },
            delta: Some(&*h.delta),
            external: Some(&*h.external),
        });
        let (nodes, _) = merge(self.layer.records(zone), dynamic.unwrap_or_default(), zone.static_records, &|n| {
            zone.answers_by_layer(n)
        });
        for (name, types) in &nodes {
            // A pool's names are the pools' (a placeholder in the layer), but for the apex,
            // whose own records stay beside a pool there.
            if **name != zone.apex && self.layer.dynamic_names().contains(*name) {
                continue;
            }
            let pool = self.pools.get(*name);
            for (&rtype, set) in types.iter() {
                let skip = (rtype == TYPE_SOA && **name == zone.apex) || pool.is_some_and(|p| p.contains_key(&rtype));
                if !skip && !set.rdata.is_empty() {
                    // A set drawn per query is transferred as one answer (secondaries cannot draw).
                    each(name, rtype, &set.undrawn());
                }
            }
        }
        for (name, types) in self.pools.iter() {
            for (&rtype, set) in types.iter() {
                each(name, rtype, set);
            }
        }
        drop(nodes);
        crate::snapshot::reclaim::later(unpacked);
        Ok(())
    }
}
