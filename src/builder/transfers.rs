//! Each build's zone transfers: what every zone with `[zone.transfer]` carries now (its
//! records as the builder holds them, shared) and the changes that led to its serial, kept
//! for IXFR.
//!
//! A change is recorded from what the build knows it touched: the names pushed (webhook,
//! ExternalDNS) and the pools' answers, each compared before and after, so it costs what it
//! changed. A controller sync or a reload may change any name: the history starts over there
//! (an IXFR from before it gets the whole zone). The history holds at most [`MAX_DELTAS`]
//! changes and [`MAX_RECORDS`] records; older ones are dropped.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use super::compile::transfer::ZoneContent;
use super::compile::{Compiler, Patch, Rebuild};
use super::zone::ZoneState;
use crate::config::Config;
use crate::dns::name::Name;
use crate::dns::records::TypeMap;
use crate::snapshot::{Transfer, TransferDelta};

/// Most changes kept per zone.
pub const MAX_DELTAS: usize = 128;
/// Most records the kept changes of a zone carry together.
pub const MAX_RECORDS: usize = 100_000;

/// A zone's last transfer content and its history.
struct Kept {
    content: Arc<ZoneContent>,
    serial: u32,
    history: VecDeque<Arc<TransferDelta>>,
    records: usize,
}

/// Every zone's transfers between builds.
#[derive(Default)]
pub struct Transfers {
    zones: HashMap<Name, Kept>,
}

/// What one build changed: the zones it recompiled and the names pushed.
pub struct Built<'a> {
    /// Zones recompiled, and how much of each.
    pub which: &'a Rebuild,
    /// Names pushed per zone.
    pub patches: &'a HashMap<Name, Patch>,
}

impl Transfers {
    /// The transfers of this build, for the snapshot; the history grows by what it changed.
    pub fn publish(
        &mut self,
        config: &Arc<Config>,
        compiler: &Compiler,
        zones: &HashMap<Name, ZoneState>,
        built: Built<'_>,
    ) -> HashMap<Name, Arc<Transfer>> {
        let mut kept = HashMap::new();
        let mut out = HashMap::new();
        for z in &config.zones {
            let (Some(t), Some(state)) = (&z.transfer, zones.get(&z.apex)) else { continue };
            let (Some((serial, pools)), Some(layer)) = (compiler.transfer_parts(&z.apex), compiler.layer(&z.apex))
            else {
                continue;
            };
            let content = Arc::new(ZoneContent {
                config: Arc::clone(config),
                apex: z.apex.clone(),
                layer,
                held: state.held.clone(),
                pools,
                unloaded: state.unloaded(),
            });
            let last = self.zones.remove(&z.apex);
            let zone = match last {
                Some(last) if last.serial == serial => Kept { content, ..last },
                Some(mut last) if !built.which.needs_data(&z.apex) && !state.unloaded() => {
                    let names = built.patches.get(&z.apex).map(|p| &p.names);
                    let delta = Arc::new(delta(&last.content, &content, names, last.serial, serial));
                    last.records += delta.records();
                    last.history.push_back(delta);
                    while last.history.len() > MAX_DELTAS || last.records > MAX_RECORDS {
                        let Some(old) = last.history.pop_front() else { break };
                        last.records -= old.records();
                    }
                    Kept { content, serial, ..last }
                }
                _ => Kept { content, serial, history: VecDeque::new(), records: 0 },
            };
            let mut soa = z.data.soa.clone();
            soa.serial = serial;
            let transfer = Transfer {
                allow: t.allow.clone().into(),
                keys: t.keys.clone().into(),
                also_notify: t.also_notify.clone().into(),
                notify_key: t.keys.first().and_then(|k| config.tsig_keys.iter().find(|d| d.name == *k)).cloned(),
                soa,
                soa_ttl: z.data.soa_ttl,
                content: Arc::clone(&zone.content) as Arc<dyn crate::snapshot::TransferContent>,
                history: zone.history.iter().cloned().collect(),
            };
            out.insert(z.apex.clone(), Arc::new(transfer));
            kept.insert(z.apex.clone(), zone);
        }
        self.zones = kept;
        out
    }
}

/// The change from `old` to `new` at the names pushed and the pools' names.
fn delta(old: &ZoneContent, new: &ZoneContent, pushed: Option<&BTreeSet<Name>>, from: u32, to: u32) -> TransferDelta {
    let mut names: BTreeSet<&Name> = pushed.into_iter().flatten().collect();
    names.extend(old.pools.keys().chain(new.pools.keys()));
    let mut d = TransferDelta { from, to, ..TransferDelta::default() };
    for name in names {
        let (before, after) = (old.at(name), new.at(name));
        diff(name, &before, &after, &mut d);
    }
    d
}

/// RRsets that differ (TTL or data) between `before` and `after` at `name`.
fn diff(name: &Name, before: &TypeMap, after: &TypeMap, d: &mut TransferDelta) {
    let same = |a: &crate::dns::records::RRset, b: &crate::dns::records::RRset| a.ttl == b.ttl && a.rdata == b.rdata;
    for (&rtype, set) in before.iter() {
        if after.get(&rtype).is_none_or(|n| !same(set, n)) {
            d.removed.push((name.clone(), rtype, set.clone()));
        }
    }
    for (&rtype, set) in after.iter() {
        if before.get(&rtype).is_none_or(|o| !same(o, set)) {
            d.added.push((name.clone(), rtype, set.clone()));
        }
    }
}
