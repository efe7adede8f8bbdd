//! Turns the builder's inputs (static config data, controller and webhook records, pool
//! health) into a [`Snapshot`] and publishes it. The only caller of `SnapshotHandle::publish`.
//!
//! Zones are compiled independently and shared between snapshots (`Arc`), so a change in
//! one zone rebuilds only that zone; a zone's pools are compiled apart from the rest of it
//! (its dynamic layer), so a health change rebuilds only them. The publisher also owns the SOA serials: a zone whose
//! content changed gets a new serial (the unix time, kept strictly increasing), an unchanged
//! zone keeps its serial, and a serial fixed in the config is used as is.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Config, PoolMode, StaticRecords, ZoneConfig};
use crate::dns::name::Name;
use crate::dns::types::*;
use std::borrow::Cow;

use crate::builder::fold::FoldJob;
use crate::builder::geo::compile_maps;
use crate::builder::held::{HeldZone, Layered};
use crate::builder::overlay::Overlay;
use crate::builder::pools::{GeoInputs, pool_records};
use crate::dns::records::{RData, RRset, Source, TypeMap, ZoneData};
use crate::health::verdict::Verdicts;
use crate::snapshot::GeoLabels;
use crate::snapshot::build::{MergedNodes, ZoneInput, build_zone};
use crate::snapshot::encode::{Encoder, Scratch};
use crate::snapshot::fragment::{Arena, Fragment};
use crate::snapshot::geo::CompiledMap;
use crate::snapshot::{ServerSettings, Snapshot, SnapshotHandle, Zone, ZoneSnap};

/// How much of a zone to recompile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Its pools' answers (health changed): only the zone's small dynamic layer is rebuilt.
    Pools,
    /// Its controller/webhook data changed: the base is rebuilt, the static layer reused.
    Data,
    /// Its config changed: everything.
    Layer,
}

/// Which zones to recompile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuild {
    /// Every zone, everything (start-up, config reload).
    All,
    /// These zones; the others are reused as they are.
    Zones(HashMap<Name, Scope>),
}

impl Default for Rebuild {
    fn default() -> Rebuild {
        Rebuild::Zones(HashMap::new())
    }
}

impl Rebuild {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        matches!(self, Rebuild::Zones(z) if z.is_empty())
    }

    /// Adds a zone (the wider scope wins).
    pub fn add(&mut self, zone: &Name, scope: Scope) {
        if let Rebuild::Zones(z) = self {
            let s = z.entry(zone.clone()).or_insert(scope);
            *s = (*s).max(scope);
        }
    }

    /// Adds everything `other` asks for.
    pub fn merge(&mut self, other: Rebuild) {
        match other {
            Rebuild::All => *self = Rebuild::All,
            Rebuild::Zones(z) => {
                for (zone, scope) in z {
                    self.add(&zone, scope);
                }
            }
        }
    }

    /// Whether `zone` is to be recompiled with its controller/webhook data (not just its
    /// pools' answers).
    pub fn needs_data(&self, zone: &Name) -> bool {
        self.scope(zone).is_some_and(|s| s >= Scope::Data)
    }

    fn scope(&self, zone: &Name) -> Option<Scope> {
        match self {
            Rebuild::All => Some(Scope::Layer),
            Rebuild::Zones(z) => z.get(zone).copied(),
        }
    }
}

/// Builds and publishes snapshots; remembers what it published last.
pub struct Publisher {
    handle: SnapshotHandle,
    generation: u64,
    zones: HashMap<Name, Published>,
    /// Metrics slots by zone, handed out once and kept (slot 0 means "no zone").
    slots: Vec<Name>,
    /// The config's location maps, compiled when the config changes.
    maps: Arc<[CompiledMap]>,
    /// Metrics slots of geo pools and names by owner, handed out once and kept.
    geo_slots: Vec<Name>,
    /// The config's maps changed without the rest of it: compile them at the next publish.
    maps_stale: bool,
}

#[derive(Clone)]
pub(super) struct Published {
    pub(super) content: u64,
    serial: u32,
    /// Everything but the pools' answers.
    pub(super) base: Arc<ZoneSnap>,
    /// The names pushed since the base was compiled, and their compiled answers.
    overlay: Arc<Overlay>,
    overlay_snap: Option<Arc<ZoneSnap>>,
    /// The pools' names and glue with their answers under the current health.
    pools: Option<Arc<ZoneSnap>>,
    /// Static records with a placeholder at each pool name: the same until the config
    /// changes, so controller syncs, pushes and health changes reuse it.
    layer: Arc<StaticLayer>,
}

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

    fn new(zone: &ZoneConfig) -> StaticLayer {
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
                node.insert(TYPE_NS, RRset { ttl: pool.ttl, rdata: hosts, source: Source::Pool, rotate: false });
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

/// What a rebuild found worth reporting, per zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneReport {
    /// Dynamic name+type pairs that DNS does not answer, and why.
    pub shadowed: Vec<Shadowed>,
}

impl Publisher {
    /// A publisher with an empty snapshot; the first [`Publisher::publish`] fills it.
    pub fn new() -> Publisher {
        Publisher {
            handle: SnapshotHandle::new(Snapshot::new(
                0,
                Vec::new(),
                ServerSettings::default(),
                Vec::new(),
                Arena::default(),
                Arc::new([]),
            )),
            generation: 0,
            zones: HashMap::new(),
            slots: Vec::new(),
            maps: Arc::new([]),
            geo_slots: Vec::new(),
            maps_stale: false,
        }
    }

    /// The handle readers load from.
    pub fn handle(&self) -> &SnapshotHandle {
        &self.handle
    }

    /// The config's location maps changed (and nothing else): the next publish compiles
    /// them; the zones that use them must be marked for their pools' answers.
    pub fn maps_changed(&mut self) {
        self.maps_stale = true;
    }

    /// A zone's static records with its pools' records, as last compiled.
    pub fn layer(&self, apex: &Name) -> Option<Arc<StaticLayer>> {
        self.zones.get(apex).map(|p| Arc::clone(&p.layer))
    }

    /// Names in the zone's overlay.
    pub fn overlay_len(&self, apex: &Name) -> usize {
        self.zones.get(apex).map_or(0, |p| p.overlay.len())
    }

    /// What folding the zone's overlay into a new base needs, owned, for another thread.
    pub fn fold_job(
        &self,
        config: &Arc<Config>,
        apex: &Name,
        held: Option<&HeldZone>,
        unloaded: bool,
    ) -> Option<FoldJob> {
        let p = self.zones.get(apex)?;
        Some(FoldJob {
            apex: apex.clone(),
            config: Arc::clone(config),
            layer: Arc::clone(&p.layer),
            held: held.map(|h| (h.held.clone(), Arc::clone(&h.delta))),
            unloaded,
            slot: p.base.slot,
            last: (p.content, p.serial),
            from: Arc::clone(&p.base),
        })
    }

    /// Installs a folded base when the zone still has the base the fold started from (a
    /// recompile since makes the fold moot); the overlay starts over empty. The caller then
    /// publishes with the names pushed since the fold started.
    pub fn install_fold(&mut self, apex: &Name, from: &Arc<ZoneSnap>, base: Arc<ZoneSnap>, content: u64) -> bool {
        match self.zones.get_mut(apex) {
            Some(p) if Arc::ptr_eq(&p.base, from) => {
                p.base = base;
                p.content = content;
                p.overlay = Arc::default();
                p.overlay_snap = None;
                true
            }
            _ => false,
        }
    }

    /// Whether a push that changes `name` in `zone` can be compiled into the zone's overlay
    /// (see [`Overlay::can_take`]); if not, the zone must be recompiled.
    pub fn overlay_takes(&self, zone: &ZoneConfig, name: &Name) -> bool {
        self.zones.get(&zone.apex).is_some_and(|p| p.overlay.can_take(&p.base, zone, &p.layer, name))
    }

    /// Recompiles the zones `which` names from `config` and `dynamic`, reuses the others, and
    /// swaps the result in. Zones no longer in `config` are dropped. Zones in `unloaded` (a
    /// controller zone whose data has never loaded) answer SERVFAIL where they would say a
    /// name or type does not exist. `verdicts` decide the pools' answers.
    /// Nothing is changed before the new snapshot is complete, so a panic inside leaves the
    /// publisher as it was.
    ///
    /// `patches` are names pushed per zone that the overlay takes ([`Publisher::overlay_room`]
    /// said so); `dynamic_of(zone, name)` gives a name's current dynamic records.
    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &mut self,
        config: &Config,
        dynamic: &HashMap<Name, Layered<'_>>,
        unloaded: &HashSet<Name>,
        verdicts: &Verdicts,
        which: &Rebuild,
        patches: &HashMap<Name, BTreeSet<Name>>,
        dynamic_of: &dyn Fn(&Name, &Name) -> Option<TypeMap>,
    ) -> HashMap<Name, ZoneReport> {
        let mut reports = HashMap::new();
        let mut next = HashMap::with_capacity(config.zones.len());
        let mut slots = self.slots.clone();
        // A config change may change the maps (and the orders the pools' answers number).
        let maps = if *which == Rebuild::All || self.maps_stale {
            compile_maps(&config.geo).into()
        } else {
            Arc::clone(&self.maps)
        };
        let mut geo_slots = self.geo_slots.clone();
        for zone in &config.zones {
            let owners = zone.pools.iter().filter(|p| p.geo.is_some()).map(|p| &p.name);
            for owner in owners.chain(zone.geo_names.iter().map(|g| &g.name)) {
                if !geo_slots.contains(owner) {
                    geo_slots.push(owner.clone());
                }
            }
        }
        let geo_slot = |owner: &Name| {
            let i = geo_slots.iter().position(|n| n == owner).unwrap_or(0);
            i.min(crate::snapshot::geo::GEO_SLOTS - 1) as u16
        };
        let geo = GeoInputs { maps: &maps, slot: &geo_slot };
        // The zone's dynamic layer for `published`.
        let pools_of = |published: &Published, slot: u16| {
            let zone = config.zone(&published.base.apex).expect("a zone being published is in the config");
            compile_pools(zone, slot, published.serial, verdicts, &geo, &published.layer)
        };
        for zone in &config.zones {
            let last = self.zones.get(&zone.apex);
            let patch = patches.get(&zone.apex).filter(|_| !which.needs_data(&zone.apex));
            if let (Some(names), Some(last)) = (patch, last) {
                // Pushed names only: the base stays, the overlay is recompiled.
                let mut published = last.clone();
                let overlay = Arc::make_mut(&mut published.overlay);
                for name in names {
                    overlay.set(
                        &published.base,
                        &zone.apex,
                        name.clone(),
                        dynamic_of(&zone.apex, name).unwrap_or_default(),
                    );
                }
                if overlay.is_empty() {
                    // A fold just took every pushed name into the base.
                    published.overlay_snap = None;
                    next.insert(zone.apex.clone(), published);
                    continue;
                }
                published.serial = zone.serial.unwrap_or_else(|| now_unix().max(last.serial.wrapping_add(1)));
                let compiled = overlay.compile(
                    &published.base,
                    zone,
                    &published.layer,
                    published.serial,
                    &config.nested_zones(&zone.apex),
                    unloaded.contains(&zone.apex),
                    &|n| dynamic_of(&zone.apex, n),
                );
                published.overlay_snap = Some(Arc::new(compiled));
                if which.scope(&zone.apex) == Some(Scope::Pools) {
                    let slot = slot(&mut slots, &zone.apex);
                    published.pools = pools_of(&published, slot);
                }
                next.insert(zone.apex.clone(), published);
                continue;
            }
            let scope = match (which.scope(&zone.apex), last) {
                (None, Some(last)) => {
                    next.insert(zone.apex.clone(), last.clone());
                    continue;
                }
                (None, None) => Scope::Layer,
                (Some(scope), _) => scope,
            };
            let slot = slot(&mut slots, &zone.apex);
            if let (Scope::Pools, Some(last)) = (scope, last) {
                // Health only: the base stays, the pools' answers are recompiled.
                let mut published = last.clone();
                published.pools = pools_of(&published, slot);
                next.insert(zone.apex.clone(), published);
                continue;
            }
            let layer = match (scope, last) {
                (Scope::Data, Some(last)) => Arc::clone(&last.layer),
                _ => Arc::new(StaticLayer::new(zone)),
            };
            let unloaded = unloaded.contains(&zone.apex);
            let nested = config.nested_zones(&zone.apex);
            let dynamic = dynamic.get(&zone.apex).copied();
            let last_seen = last.map(|l| (l.content, l.serial));
            let (mut published, report) = compile(zone, slot, dynamic, unloaded, &nested, layer, last_seen, false);
            // New controller/webhook data leaves the pools' answers as they are (their negative
            // answers are the base's, which carry the new serial).
            published.pools = match last {
                Some(last) if scope == Scope::Data => last.pools.clone(),
                _ => pools_of(&published, slot),
            };
            reports.insert(zone.apex.clone(), report);
            next.insert(zone.apex.clone(), published);
        }
        self.generation += 1;
        self.zones = next;
        self.slots = slots;
        let geo_labels = GeoLabels {
            owners: geo_slots.iter().map(|n| n.to_dotless()).collect(),
            datacenters: config.geo.datacenters.iter().map(|d| d.name.clone()).collect(),
        };
        self.geo_slots = geo_slots;
        self.maps = Arc::clone(&maps);
        self.maps_stale = false;
        let zones = self
            .zones
            .values()
            .map(|p| Zone {
                base: Arc::clone(&p.base),
                overlay: p.overlay_snap.as_ref().map(Arc::clone),
                dynamic: p.pools.as_ref().map(Arc::clone),
            })
            .collect();
        let (chaos, chaos_arena) = chaos(config);
        let names: Arc<[String]> = self.slots.iter().map(|n| n.to_dotless()).collect();
        let snapshot = Snapshot::new(self.generation, zones, settings(config), chaos, chaos_arena, names);
        self.handle.publish(snapshot.with_geo(maps, Arc::new(geo_labels)));
        reports
    }
}

impl Default for Publisher {
    fn default() -> Publisher {
        Publisher::new()
    }
}

/// The metrics slot of a zone: handed out once and kept (slot 0 means "no zone").
fn slot(slots: &mut Vec<Name>, apex: &Name) -> u16 {
    let i = match slots.iter().position(|n| n == apex) {
        Some(i) => i,
        None => {
            slots.push(apex.clone());
            slots.len() - 1
        }
    };
    (i + 1).min(crate::snapshot::ZONE_SLOTS - 1) as u16
}

fn now_unix() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}

/// Why a dynamic (controller or webhook) name+type is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShadowedBy {
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
    let mut st = static_data.nodes.iter().peekable();
    let mut dy = dynamic.iter().peekable();
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
                    shadow_all(n, t, by, &mut shadowed);
                    continue;
                }
                let t = if n == apex && t.contains_key(&TYPE_CNAME) {
                    shadowed.push((n.clone(), TYPE_CNAME, ShadowedBy::Static));
                    let mut t = t.clone();
                    t.remove(&TYPE_CNAME);
                    Cow::Owned(t)
                } else {
                    Cow::Borrowed(t)
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
                    shadow_all(n, d, by, &mut shadowed);
                    merged.push((n, Cow::Borrowed(s)));
                    continue;
                }
                let mut both = s.clone();
                match mode {
                    StaticRecords::Override => {
                        for (&rtype, set) in d {
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
                        for (&rtype, set) in d {
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
    // Names outside the zone never reach the builder.
    merged.retain(|(n, _)| n.is_within(apex));
    (merged, shadowed)
}

/// Compiles a zone's base from its static layer and dynamic records. `last` is the content
/// hash and serial of the zone as published; with `keep_serial` the serial stays (a fold:
/// what it compiles is already published through the overlay).
#[allow(clippy::too_many_arguments)]
pub(super) fn compile(
    zone: &ZoneConfig,
    slot: u16,
    dynamic: Option<Layered<'_>>,
    unloaded: bool,
    nested: &[Name],
    layer: Arc<StaticLayer>,
    last: Option<(u64, u32)>,
    keep_serial: bool,
) -> (Published, ZoneReport) {
    let static_layer = layer.with_pools.as_ref().unwrap_or(&zone.data);
    let (nodes, shadowed) =
        merge(static_layer, dynamic.unwrap_or_default(), zone.static_records, &|n| zone.answers_by_layer(n));
    if !shadowed.is_empty() {
        let first: Vec<String> =
            shadowed.iter().take(5).map(|(n, t, by)| format!("{n} {} (by {})", type_name(*t), by.as_str())).collect();
        tracing::warn!(
            zone = %zone.apex,
            shadowed = shadowed.len(),
            static_records = zone.static_records.as_str(),
            first = %first.join(", "),
            "controller/webhook records not answered: a pool, a delegation or (static_records = \"override\") a static record has the name"
        );
    }
    let mut soa = zone.data.soa.clone();
    soa.serial = 0;
    // A fixed-seed fast hash: it only decides whether the serial moves.
    let mut hasher = std::hash::BuildHasher::build_hasher(&foldhash::quality::FixedState::default());
    (&soa, zone.data.soa_ttl, &nodes, unloaded, nested).hash(&mut hasher);
    let content = hasher.finish();
    soa.serial = match (zone.serial, last) {
        (Some(fixed), _) => fixed,
        (None, Some((last_content, last_serial))) if keep_serial || last_content == content => last_serial,
        (None, Some((_, last_serial))) => now_unix().max(last_serial.wrapping_add(1)),
        (None, None) => now_unix(),
    };
    let serial = soa.serial;
    let input = ZoneInput {
        apex: &zone.apex,
        soa,
        soa_ttl: zone.data.soa_ttl,
        nodes: &nodes,
        servfail: &[],
        weighted: &[],
        geo: &[],
        nested,
        dynamic_names: &layer.dynamic_names,
        partial: false,
        unloaded,
        overlay: false,
        marks: &[],
    };
    let started = std::time::Instant::now();
    let mut snap = build_zone(&input);
    let took_ms = started.elapsed().as_millis() as u64;
    tracing::debug!(zone = %zone.apex, names = nodes.len(), took_ms, "zone compiled");
    snap.slot = slot;
    let base = Arc::new(snap);
    drop(nodes);
    let published =
        Published { content, serial, base, overlay: Arc::default(), overlay_snap: None, pools: None, layer };
    (published, ZoneReport { shadowed })
}

/// The zone's dynamic layer: its pools' names and glue with their answers under `verdicts`,
/// compiled as a partial zone (CNAME targets elsewhere are followed at query time). `None`
/// for a zone without pools.
fn compile_pools(
    zone: &ZoneConfig,
    slot: u16,
    serial: u32,
    verdicts: &Verdicts,
    geo: &GeoInputs<'_>,
    layer: &StaticLayer,
) -> Option<Arc<ZoneSnap>> {
    if zone.pools.is_empty() && zone.geo_names.is_empty() {
        return None;
    }
    let pools = pool_records(zone, verdicts, geo);
    let mut nodes = pools.nodes;
    // A pool at the apex shares its node with the apex's own records (NS, ...).
    if let Some(apex) = nodes.get_mut(&zone.apex)
        && let Some(statics) = zone.data.nodes.get(&zone.apex)
    {
        for (&rtype, set) in statics {
            if !apex.contains_key(&rtype) {
                apex.insert(rtype, set.clone());
            }
        }
    }
    let merged: Vec<(&Name, Cow<'_, TypeMap>)> = nodes.iter().map(|(n, t)| (n, Cow::Borrowed(t))).collect();
    let mut soa = zone.data.soa.clone();
    soa.serial = serial;
    let none = HashSet::new();
    let input = ZoneInput {
        apex: &zone.apex,
        soa,
        soa_ttl: zone.data.soa_ttl,
        nodes: &merged,
        servfail: &pools.servfail,
        weighted: &pools.weighted,
        geo: &pools.geo,
        nested: &[],
        dynamic_names: &none,
        partial: true,
        unloaded: false,
        overlay: false,
        marks: &[],
    };
    let mut snap = build_zone(&input);
    snap.slot = slot;
    // The names the base hands to this layer are answered here directly.
    for name in &layer.dynamic_names {
        if let Some(i) = snap.node_index(name.as_wire()) {
            snap.nodes[i].owned = true;
        }
    }
    Some(Arc::new(snap))
}

fn settings(config: &Config) -> ServerSettings {
    let server = &config.server;
    ServerSettings {
        max_udp_payload: server.max_udp_payload,
        nsid: server.nsid.as_ref().map(|s| s.as_bytes().into()),
        tcp_idle_timeout: server.tcp_idle_timeout,
        max_tcp_connections: server.max_tcp_connections,
        max_tcp_per_client: server.max_tcp_per_client,
        ecs: server.ecs,
        dnstap: config.log.dnstap.as_ref().map(|d| crate::snapshot::TapFilter {
            queries: !d.responses_only,
            rcodes: d.rcodes.iter().filter(|&&r| r < 32).fold(0, |mask, &r| mask | 1 << r),
        }),
        rrl: config.rrl.as_ref().map(rrl_settings),
        cookies: server.cookies.as_ref().map(|c| crate::snapshot::CookieSettings {
            secret: c.secret,
            previous: c.previous,
            required: c.required,
        }),
    }
}

/// The query path's copy of `[rrl]`.
fn rrl_settings(c: &crate::config::rrl::RrlConfig) -> crate::snapshot::RrlSettings {
    crate::snapshot::RrlSettings {
        responses_per_second: c.responses_per_second,
        nxdomains_per_second: c.nxdomains_per_second,
        errors_per_second: c.errors_per_second,
        window: c.window,
        slip: c.slip,
        ipv4_prefix: c.ipv4_prefix,
        ipv6_prefix: c.ipv6_prefix,
        exempt: c.exempt.clone(),
        log_only: c.log_only,
        table_size: c.table_size,
    }
}

fn chaos(config: &Config) -> (Vec<(Name, Fragment)>, Arena) {
    let server = &config.server;
    let mut chaos = Vec::new();
    let mut arena = Arena::default();
    let mut scratch = Scratch::default();
    for (names, value) in
        [(["version.bind.", "version.server."], &server.version), (["id.server.", "hostname.bind."], &server.identity)]
    {
        if let Some(text) = value {
            // One TXT character-string (at most 255 bytes, checked by the config).
            let mut data = Vec::with_capacity(text.len() + 1);
            data.push(text.len() as u8);
            data.extend_from_slice(text.as_bytes());
            let rdata = RData::Other { rtype: TYPE_TXT, data: data.into_boxed_slice() };
            for name in names {
                let name = Name::parse(name, None).expect("static name");
                let mut enc = Encoder::new(&mut scratch, &name, false);
                enc.record(&name, CLASS_CH, 0, &rdata);
                let f = enc.finish(&mut arena, RCODE_NOERROR, true, Source::Static);
                chaos.push((name, f));
            }
        }
    }
    (chaos, arena)
}
