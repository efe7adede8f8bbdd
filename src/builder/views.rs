//! The read-only views the admin API and the metrics read: published by the builder after
//! every change, swapped atomically like the snapshot, never locked by a reader.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::compile::layer::{Shadowed, ShadowedBy, StaticLayer, merge};
use super::held::{self, Held};
use super::status::{DataOrigin, SyncStatus};
use crate::config::Config;
use crate::dns::name::Name;
use crate::dns::records::{Nodes, RRset, Source, TypeMap, ZoneData};
use crate::dns::types::TYPE_NS;
use crate::health::verdict::Verdicts;

/// One zone as the admin API sees it.
#[derive(Debug, Clone)]
pub struct ZoneView {
    /// Sync status (controller zones only).
    pub status: Option<SyncStatus>,
    /// Controller and webhook records.
    pub held: Option<Held>,
    /// Names pushed over them since (their whole records; empty: none).
    pub delta: Option<Arc<Nodes>>,
    /// ExternalDNS's records, by owner.
    pub external: Option<Arc<Nodes>>,
    /// ExternalDNS's endpoints as it wrote them.
    pub endpoints: Arc<crate::externaldns::store::ZoneEndpoints>,
    /// Static records with the pools' records of the last build.
    pub layer: Option<Arc<StaticLayer>>,
    /// Dynamic name+type pairs the last build does not answer.
    pub shadowed: Arc<[Shadowed]>,
    /// Shadowed pairs summed over builds, by reason.
    pub shadowed_total: BTreeMap<ShadowedBy, u64>,
    /// Why the push journal refuses pushes, else the error of the last state-file write,
    /// when it failed.
    pub persist_error: Option<String>,
    /// Whether the push journal refuses pushes (the last one it was given failed).
    pub journal_failing: bool,
    /// Failed state-file and journal writes since start.
    pub persist_failures: u64,
    /// Error of the last build of this zone, when it failed (the previous data serves).
    pub build_error: Option<String>,
    /// A signed zone: its signatures as compiled.
    pub signatures: Option<SignatureView>,
}

/// A signed zone's signatures, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignatureView {
    /// The earliest expiration of a signature its compiled answers carry (unix seconds).
    pub earliest_expiry: Option<u32>,
    /// Signatures kept over its records.
    pub kept: usize,
}

/// Everything the admin API and the metrics show, as of the last change.
#[derive(Debug)]
pub struct View {
    /// The config in force.
    pub config: Arc<Config>,
    /// When the process started.
    pub started: SystemTime,
    /// Per zone.
    pub zones: std::collections::HashMap<Name, ZoneView>,
    /// The health verdicts the pools' answers were compiled with.
    pub health: Arc<Verdicts>,
    /// The operators' drain and disable states they were compiled with.
    pub member_states: Arc<crate::health::member_state::MemberStates>,
    /// Builds that failed since start.
    pub build_failures: u64,
    /// The event log's entries (`GET /events`).
    pub events: Arc<std::collections::VecDeque<Arc<super::event_log::Entry>>>,
}

/// Where the current view lives; cloning shares it.
pub type Views = Arc<ArcSwap<View>>;

/// The names of one `/records` page: the smallest (by their text) after the cursor.
#[derive(Debug)]
pub struct Page {
    limit: usize,
    /// Name text → name, at most `limit` of them.
    pub names: BTreeMap<String, Name>,
    /// Names were left out: there is a next page.
    pub more: bool,
}

impl Page {
    /// An empty page of at most `limit` names.
    pub fn new(limit: usize) -> Page {
        Page { limit: limit.max(1), names: BTreeMap::new(), more: false }
    }

    /// Offers a name to the page (kept when it is among the `limit` smallest).
    pub fn offer(&mut self, key: String, name: &Name) {
        if self.names.len() == self.limit {
            match self.names.last_key_value() {
                Some((last, _)) if key >= *last => {
                    if !self.names.contains_key(&key) {
                        self.more = true;
                    }
                    return;
                }
                _ => {}
            }
        }
        if self.names.insert(key, name.clone()).is_none() && self.names.len() > self.limit {
            self.names.pop_last();
            self.more = true;
        }
    }

    /// The cursor for the next page, when there is one.
    pub fn next(&self) -> Option<&str> {
        if self.more { self.names.last_key_value().map(|(k, _)| k.as_str()) } else { None }
    }
}

/// What `/records` shows of a zone.
#[derive(Debug, Default)]
pub struct ZoneRecords {
    /// Name → RRsets DNS answers (static and dynamic; pools left out).
    pub answered: Vec<(Name, TypeMap)>,
    /// Dynamic RRsets DNS does not answer, with the reason.
    pub shadowed: Vec<(Name, u16, RRset, ShadowedBy)>,
}

impl View {
    /// The view of one zone.
    pub fn zone(&self, apex: &Name) -> Option<&ZoneView> {
        self.zones.get(apex)
    }

    /// Sync status of a controller zone.
    pub fn status(&self, apex: &Name) -> Option<&SyncStatus> {
        self.zones.get(apex).and_then(|z| z.status.as_ref())
    }

    /// True when a controller zone has data from its controller or its state file (webhook
    /// pushes alone do not count: they cover only the names they name).
    pub fn has_controller_data(&self, apex: &Name) -> bool {
        self.status(apex).is_some_and(|st| st.origin != DataOrigin::None)
    }

    /// Controller zones with nothing to serve yet (neither controller nor disk data).
    pub fn not_ready(&self) -> Vec<&Name> {
        self.config
            .zones
            .iter()
            .filter(|z| z.controller.is_some() && !self.has_controller_data(&z.apex))
            .map(|z| &z.apex)
            .collect()
    }

    /// Adds the names of a zone (static, pools, controller/webhook) that sort after `after`
    /// and contain `filter` to `page`, which keeps only its `limit` smallest (by their text)
    /// and notes whether it dropped any. Memory stays bounded by `limit` whatever the zone's
    /// size; the cost is one pass over the zone: call it off the async workers.
    pub fn page_names(&self, apex: &Name, after: Option<&str>, filter: Option<&str>, page: &mut Page) {
        let (Some(zone), Some(view)) = (self.config.zone(apex), self.zones.get(apex)) else {
            return;
        };
        let layer = view.layer.as_ref().map_or(&zone.data, |l| l.records(zone));
        let mut offer = |name: &Name| {
            let key = name.to_dotless();
            if after.is_some_and(|a| key.as_str() <= a) || filter.is_some_and(|f| !key.contains(f)) {
                return;
            }
            page.offer(key, name);
        };
        layer.nodes.keys().for_each(&mut offer);
        if let Some(external) = &view.external {
            external.keys().for_each(&mut offer);
        }
        let empty = Nodes::new();
        let delta = view.delta.as_deref().unwrap_or(&empty);
        // A pushed name is listed from the delta (and not at all once its records are gone).
        delta.iter().filter(|(_, t)| !t.is_empty()).for_each(|(n, _)| offer(n));
        match &view.held {
            Some(Held::Converted(nodes)) => nodes.keys().filter(|n| !delta.contains_key(*n)).for_each(&mut offer),
            Some(Held::Packed(packed)) => held::for_each_record(&packed.bytes, |r| {
                if let Some(n) = crate::elchi::api::parse_absolute(&r.name).filter(|n| n.is_within(apex))
                    && !delta.contains_key(&n)
                {
                    offer(&n);
                }
            }),
            None => {}
        }
    }

    /// The records of the names in `page` in one zone, merged as DNS merges them (pool
    /// records are left out: `/records` lists pool members itself), and the dynamic RRsets
    /// DNS does not answer, with the reason. Memory is bounded by the page.
    pub fn page_records(&self, apex: &Name, page: &Page) -> ZoneRecords {
        let (Some(zone), Some(view)) = (self.config.zone(apex), self.zones.get(apex)) else {
            return ZoneRecords::default();
        };
        let layer = view.layer.as_ref().map_or(&zone.data, |l| l.records(zone));
        let wanted: HashSet<&Name> = page.names.values().collect();
        // The page's static names, and every delegation: what is below one is not answered.
        let mut window = ZoneData { nodes: Default::default(), ..layer.clone_head() };
        for (n, t) in &layer.nodes {
            if wanted.contains(n) || (t.contains_key(&TYPE_NS) && *n != layer.apex) {
                window.nodes.insert(n.clone(), t.clone());
            }
        }
        let mut dynamic = Nodes::new();
        let mut external = Nodes::new();
        if let Some(ext) = &view.external {
            for n in &wanted {
                if let Some(t) = ext.get(*n) {
                    external.insert((*n).clone(), t.clone());
                }
            }
        }
        if let Some(held) = &view.held {
            let delta = view.delta.as_deref();
            for n in &wanted {
                let types = match delta.and_then(|d| d.get(*n)) {
                    Some(t) => (!t.is_empty()).then(|| t.clone()),
                    None => held.get(n, apex, zone.default_ttl),
                };
                if let Some(t) = types {
                    dynamic.insert((*n).clone(), t);
                }
            }
        }
        let layered = held::Layered { base: None, delta: Some(&dynamic), external: Some(&external) };
        let (merged, shadowed) = merge(&window, layered, zone.static_records, &|n| zone.answers_by_layer(n));
        let answered = merged
            .into_iter()
            .filter(|(n, _)| wanted.contains(n))
            .map(|(n, t)| {
                let mut t = t.into_owned();
                t.retain(|set| set.source != Source::Pool);
                (n.clone(), t)
            })
            .filter(|(_, t)| !t.is_empty())
            .collect();
        let shadowed = shadowed
            .into_iter()
            .filter_map(|(n, rtype, by)| {
                // A set the held records shadow is ExternalDNS's; any other is the held
                // set's when there is one.
                let held = (by != ShadowedBy::Controller).then(|| dynamic.get(&n)?.get(&rtype)).flatten();
                let set = held.or_else(|| external.get(&n)?.get(&rtype))?.clone();
                Some((n, rtype, set, by))
            })
            .collect();
        ZoneRecords { answered, shadowed }
    }

    /// Per zone and reason: the dynamic name+type pairs not answered now, and summed over
    /// builds.
    pub fn shadowed_counts(&self) -> Vec<(Name, ShadowedBy, usize, u64)> {
        let mut out: BTreeMap<(Name, ShadowedBy), (usize, u64)> = BTreeMap::new();
        for (zone, v) in &self.zones {
            for (_, _, by) in v.shadowed.iter() {
                out.entry((zone.clone(), *by)).or_default().0 += 1;
            }
            for (by, total) in &v.shadowed_total {
                out.entry((zone.clone(), *by)).or_default().1 = *total;
            }
        }
        out.into_iter().map(|((z, by), (now, total))| (z, by, now, total)).collect()
    }
}
