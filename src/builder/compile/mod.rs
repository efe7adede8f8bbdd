//! The compilers: the builder's inputs (static config data, controller and webhook records,
//! health verdicts, location maps) into each zone's compiled parts, which the query path
//! reads.
//!
//! A zone is compiled in up to three parts, each only when what it holds changed:
//!
//! * [`base`]: the static layer ([`layer`]) merged with every controller and webhook record;
//!   a controller sync or a config change recompiles it;
//! * [`overlay`]: the names pushed since the base, compiled apart, so a push costs what it
//!   changes; a full overlay is folded into a new base off the builder ([`fold`]);
//! * [`dynamic`]: the pools' and geo names' answers under the verdicts ([`pools`],
//!   [`policy`]) and the location maps ([`geo`]); a verdict change recompiles only it.
//!
//! The [`Compiler`] remembers each zone's parts, so zones that did not change are shared
//! (`Arc`) with the next snapshot as they are. Nothing is changed before every zone of a
//! compile is done, so a panic inside leaves the compiler as it was.

pub mod base;
pub mod dynamic;
pub mod fold;
pub mod geo;
pub mod layer;
pub mod overlay;
pub mod policy;
pub mod pools;
pub mod signatures;
pub mod transfer;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::builder::held::{HeldZone, Layered};
use crate::config::dnssec::DnssecSettings;
use crate::config::{Config, ZoneConfig};
use crate::dns::name::Name;
use crate::dns::records::TypeMap;
use crate::dnssec::cache::SigCache;
use crate::dnssec::online::OnlineSigner;
use crate::dnssec::sign::RrsetSigner;
use crate::health::verdict::Verdicts;
use crate::snapshot::geo::CompiledMap;
use crate::snapshot::{GeoLabels, Zone, ZoneSnap};
use base::{BaseInput, ZoneReport};
use fold::FoldJob;
use layer::StaticLayer;
use overlay::{Overlay, OverlayInput};
use pools::GeoInputs;
use signatures::ZoneSignatures;

/// How much of a zone to recompile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Its pools' answers (a verdict or the maps changed): only the zone's dynamic layer.
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

    /// How much of `zone` to recompile, if anything.
    pub fn scope(&self, zone: &Name) -> Option<Scope> {
        match self {
            Rebuild::All => Some(Scope::Layer),
            Rebuild::Zones(z) => z.get(zone).copied(),
        }
    }
}

/// What a compile reads.
pub struct Inputs<'a> {
    /// The config in force.
    pub config: &'a Config,
    /// Each zone's controller and webhook records, for the zones whose base is recompiled.
    pub dynamic: &'a HashMap<Name, Layered<'a>>,
    /// Controller zones whose data never loaded (SERVFAIL where they would deny).
    pub unloaded: &'a HashSet<Name>,
    /// The health verdicts.
    pub verdicts: &'a Verdicts,
    /// Operators' drain and disable states.
    pub member_states: &'a crate::health::member_state::MemberStates,
    /// A name's current dynamic records, by (zone, name): for the names an overlay takes.
    pub dynamic_of: &'a dyn Fn(&Name, &Name) -> Option<TypeMap>,
}

impl Inputs<'_> {
    /// What decides which pool members answer.
    fn standing(&self) -> pools::Standing<'_> {
        pools::Standing { verdicts: self.verdicts, states: self.member_states }
    }
}

/// What changed since the last compile.
pub struct Changes<'a> {
    /// Zones to recompile, and how much of each.
    pub which: &'a Rebuild,
    /// Names pushed per zone since the last compile.
    pub patches: &'a HashMap<Name, Patch>,
}

/// Names pushed into one zone since the last compile. The zone's overlay takes them when it
/// can ([`Overlay::can_take`]) and stays within `limit`; else the zone's base is recompiled.
pub struct Patch {
    /// The names.
    pub names: BTreeSet<Name>,
    /// The most names the overlay may hold (it is folded into the base before that).
    pub limit: usize,
}

/// One zone's compiled parts.
#[derive(Clone)]
struct Parts {
    /// Hash of what the base was compiled from.
    content: u64,
    serial: u32,
    /// Everything but the pools' answers.
    base: Arc<ZoneSnap>,
    /// The names pushed since the base was compiled, and their compiled answers.
    overlay: Arc<Overlay>,
    overlay_snap: Option<Arc<ZoneSnap>>,
    /// The pools' names and glue with their answers under the verdicts.
    dynamic: Option<Arc<ZoneSnap>>,
    /// Static records with a placeholder at each pool name: the same until the config
    /// changes, so syncs, pushes and verdict changes reuse it.
    layer: Arc<StaticLayer>,
    /// A signed zone: the signatures over its records, kept between compiles.
    signatures: Option<Arc<ZoneSignatures>>,
    /// A signed zone: the signer of its dynamic layer and of what is answered per query.
    online: Option<Arc<OnlineSigner>>,
    /// The earliest expiration of a signature in the dynamic layer.
    dynamic_expiry: Option<u32>,
    /// A zone with transfers: its pools' answers as transferred (a change moves the serial).
    transfer_pools: Option<Arc<crate::dns::records::Nodes>>,
}

/// Every zone's compiled parts, with what they are numbered by (metrics slots, maps).
#[derive(Default)]
pub struct Compiler {
    zones: HashMap<Name, Parts>,
    /// Metrics slots by zone, handed out once and kept (slot 0 means "no zone").
    slots: Vec<Name>,
    /// The config's location maps, compiled when the config changes.
    maps: Arc<[CompiledMap]>,
    /// Metrics slots of geo pools and names by owner, handed out once and kept.
    geo_slots: Vec<Name>,
    /// The config's maps changed without the rest of it: compile them at the next compile.
    maps_stale: bool,
    /// The signatures made while answering, shared by every signed zone (made with the
    /// first one).
    cache: Option<Arc<SigCache>>,
    /// Signed zones' kept signatures read at start-up, for their first compile.
    preloaded: HashMap<Name, Arc<ZoneSignatures>>,
}

impl Compiler {
    /// The config's location maps changed (and nothing else): the next compile compiles them;
    /// the zones that use them must be marked for their pools' answers.
    pub fn maps_changed(&mut self) {
        self.maps_stale = true;
    }

    /// A zone's static layer, as last compiled.
    pub fn layer(&self, apex: &Name) -> Option<Arc<StaticLayer>> {
        self.zones.get(apex).map(|p| Arc::clone(&p.layer))
    }

    /// The earliest expiration of a signature a signed zone's compiled parts carry.
    pub fn signature_expiry(&self, apex: &Name) -> Option<u32> {
        let p = self.zones.get(apex)?;
        let kept = p.signatures.as_ref().and_then(|s| s.earliest_expiry());
        match (kept, p.dynamic_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Kept signatures read from disk, used by the zone's first compile.
    pub fn preload(&mut self, apex: Name, store: ZoneSignatures) {
        self.preloaded.insert(apex, Arc::new(store));
    }

    /// A signed zone's kept signatures.
    pub fn signatures(&self, apex: &Name) -> Option<Arc<ZoneSignatures>> {
        self.zones.get(apex)?.signatures.clone()
    }

    /// A signed zone's signatures as compiled (`None`: unsigned).
    pub fn signature_view(&self, apex: &Name) -> Option<crate::builder::views::SignatureView> {
        let p = self.zones.get(apex)?;
        let kept = p.signatures.as_ref()?.len();
        Some(crate::builder::views::SignatureView { earliest_expiry: self.signature_expiry(apex), kept })
    }

    /// The zone's next compile renews every kept signature due within a refresh time and a
    /// quarter.
    pub fn renew(&mut self, apex: &Name) {
        if let Some(s) = self.zones.get(apex).and_then(|p| p.signatures.as_ref()) {
            s.renew_next();
        }
    }

    /// A zone with transfers: its SOA serial and its pools' answers as transferred.
    pub fn transfer_parts(&self, apex: &Name) -> Option<(u32, Arc<crate::dns::records::Nodes>)> {
        let p = self.zones.get(apex)?;
        Some((p.serial, Arc::clone(p.transfer_pools.as_ref()?)))
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
            held: held.map(|h| (h.held.clone(), Arc::clone(&h.delta), Arc::clone(&h.external))),
            unloaded,
            slot: p.base.slot,
            last: (p.content, p.serial),
            from: Arc::clone(&p.base),
            signatures: p.signatures.clone(),
        })
    }

    /// Installs a folded base when the zone still has the base the fold started from (a
    /// recompile since makes the fold moot); the overlay starts over empty. The caller then
    /// compiles the names pushed since the fold started.
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

    /// Recompiles what `changes` names from `inputs` and keeps the other zones' parts as they
    /// are; zones no longer in the config are dropped. Returns what each base compile reported.
    pub fn compile(&mut self, inputs: &Inputs<'_>, changes: &Changes<'_>) -> HashMap<Name, ZoneReport> {
        let config = inputs.config;
        // A config change may change the maps (and the orders the pools' answers number).
        let maps = if *changes.which == Rebuild::All || self.maps_stale {
            geo::compile_maps(&config.geo).into()
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
        if config.zones.iter().any(|z| z.dnssec.is_some()) {
            let size = config.dnssec.cache_size;
            match &self.cache {
                Some(c) => c.resize(size),
                None => self.cache = Some(Arc::new(SigCache::new(size))),
            }
        }
        let cache = self.cache.clone();
        let mut slots = self.slots.clone();
        let mut reports = HashMap::new();
        let mut next = HashMap::with_capacity(config.zones.len());
        for zone in &config.zones {
            let last = self.zones.get(&zone.apex);
            let mut scope = changes.which.scope(&zone.apex);
            // Pushed names go into the overlay when it takes them all; else the base is
            // recompiled with them (a config or data change recompiles it anyway).
            let patch = match (changes.patches.get(&zone.apex), last) {
                (Some(p), Some(last)) if scope < Some(Scope::Data) => {
                    let takes = last.overlay.len() + p.names.len() <= p.limit
                        && p.names.iter().all(|n| last.overlay.can_take(&last.base, zone, &last.layer, n));
                    if !takes {
                        scope = Some(Scope::Data);
                    }
                    takes.then_some(&p.names)
                }
                _ => None,
            };
            let parts = match (patch, last, scope) {
                (Some(names), Some(last), _) => {
                    let mut parts = last.clone();
                    patch_overlay(&mut parts, zone, names, inputs);
                    if scope == Some(Scope::Pools) {
                        let online = parts.online.as_deref();
                        let slot = parts.base.slot;
                        (parts.dynamic, parts.dynamic_expiry) = dynamic_with_expiry(online, || {
                            dynamic::compile(zone, slot, parts.serial, inputs.standing(), &geo, &parts.layer, online)
                        });
                    }
                    parts
                }
                (None, Some(last), None) => last.clone(),
                (None, Some(last), Some(Scope::Pools)) => {
                    // A verdict or the maps changed: the base stays, the pools' answers are recompiled.
                    let mut parts = last.clone();
                    let slot = slot(&mut slots, &zone.apex);
                    let online = parts.online.as_deref();
                    (parts.dynamic, parts.dynamic_expiry) = dynamic_with_expiry(online, || {
                        dynamic::compile(zone, slot, parts.serial, inputs.standing(), &geo, &parts.layer, online)
                    });
                    parts
                }
                (_, last, scope) => {
                    let scope = scope.unwrap_or(Scope::Layer);
                    let slot = slot(&mut slots, &zone.apex);
                    let preloaded = self.preloaded.remove(&zone.apex);
                    let signing = Signing::of(zone, last, preloaded, cache.as_ref(), &config.dnssec);
                    let (parts, report) = recompile(zone, slot, last, scope, inputs, &geo, signing);
                    reports.insert(zone.apex.clone(), report);
                    parts
                }
            };
            let parts = with_transfer_pools(parts, last, zone, scope.is_some(), inputs, &geo);
            next.insert(zone.apex.clone(), parts);
        }
        self.zones = next;
        self.slots = slots;
        self.geo_slots = geo_slots;
        self.maps = maps;
        self.maps_stale = false;
        reports
    }

    /// Every zone's parts, as the snapshot holds them, with their transfers.
    pub fn zones(&self, transfers: &HashMap<Name, Arc<crate::snapshot::Transfer>>) -> Vec<Zone> {
        self.zones
            .iter()
            .map(|(apex, p)| Zone {
                base: Arc::clone(&p.base),
                overlay: p.overlay_snap.as_ref().map(Arc::clone),
                dynamic: p.dynamic.as_ref().map(Arc::clone),
                signer: p.online.as_ref().map(Arc::clone),
                transfer: transfers.get(apex).map(Arc::clone),
            })
            .collect()
    }

    /// The compiled location maps.
    pub fn maps(&self) -> Arc<[CompiledMap]> {
        Arc::clone(&self.maps)
    }

    /// The names of the metrics slots: zones by slot, geo owners and datacenters.
    pub fn labels(&self, config: &Config) -> (Arc<[String]>, GeoLabels) {
        let zones = self.slots.iter().map(|n| n.to_dotless()).collect();
        let geo = GeoLabels {
            owners: self.geo_slots.iter().map(|n| n.to_dotless()).collect(),
            datacenters: config.geo.datacenters.iter().map(|d| d.name.clone()).collect(),
        };
        (zones, geo)
    }
}

/// Pushed names only: the base stays, the overlay takes the names and is recompiled with a
/// new serial.
fn patch_overlay(parts: &mut Parts, zone: &ZoneConfig, names: &BTreeSet<Name>, inputs: &Inputs<'_>) {
    let overlay = Arc::make_mut(&mut parts.overlay);
    for name in names {
        let types = (inputs.dynamic_of)(&zone.apex, name).unwrap_or_default();
        overlay.set(&parts.base, &zone.apex, name.clone(), types);
    }
    if overlay.is_empty() {
        // A fold just took every pushed name into the base; the apex stays in an overlay
        // only while the serial is newer than the base's.
        if parts.base.serial == parts.serial {
            parts.overlay_snap = None;
            return;
        }
    } else {
        parts.serial = zone.serial.unwrap_or_else(|| base::next_serial(parts.serial));
    }
    compile_overlay(parts, zone, inputs);
}

/// Compiles the zone's overlay (its pushed names and the apex) with the parts' serial.
fn compile_overlay(parts: &mut Parts, zone: &ZoneConfig, inputs: &Inputs<'_>) {
    let nested = inputs.config.nested_zones(&zone.apex);
    let signer = parts.signatures.as_ref().map(|s| s.signer());
    let compiled = parts.overlay.compile(OverlayInput {
        base: &parts.base,
        zone,
        layer: &parts.layer,
        serial: parts.serial,
        nested: &nested,
        unloaded: inputs.unloaded.contains(&zone.apex),
        dynamic_of: &|n| (inputs.dynamic_of)(&zone.apex, n),
        signer: signer.as_ref().map(|s| s as &dyn RrsetSigner),
    });
    parts.overlay_snap = Some(Arc::new(compiled));
}

/// A zone with transfers: its pools' answers as a secondary gets them, recomputed when the
/// zone was (its verdicts, states or maps may have changed). When they changed and the serial
/// did not move with this compile, it moves now (through the overlay, which carries the apex),
/// so secondaries see the change.
fn with_transfer_pools(
    mut parts: Parts,
    last: Option<&Parts>,
    zone: &ZoneConfig,
    recompiled: bool,
    inputs: &Inputs<'_>,
    geo: &GeoInputs<'_>,
) -> Parts {
    if zone.transfer.is_none() {
        parts.transfer_pools = None;
        return parts;
    }
    if !recompiled && parts.transfer_pools.is_some() {
        return parts;
    }
    let answers = Arc::new(transfer::pool_answers(zone, inputs.standing(), geo));
    let changed = parts.transfer_pools.as_deref() != Some(&*answers);
    let moved = last.is_none_or(|l| l.serial != parts.serial);
    if changed && !moved && zone.serial.is_none() {
        parts.serial = base::next_serial(parts.serial);
        compile_overlay(&mut parts, zone, inputs);
    }
    parts.transfer_pools = Some(answers);
    parts
}

/// A new base (and a new static layer unless only data changed); new controller or webhook
/// data leaves the pools' answers as they are (their negative answers are the base's, which
/// carry the new serial).
fn recompile(
    zone: &ZoneConfig,
    slot: u16,
    last: Option<&Parts>,
    scope: Scope,
    inputs: &Inputs<'_>,
    geo: &GeoInputs<'_>,
    signing: Signing,
) -> (Parts, ZoneReport) {
    let layer = match (scope, last) {
        (Scope::Data, Some(last)) => Arc::clone(&last.layer),
        _ => Arc::new(StaticLayer::new(zone)),
    };
    let nested = inputs.config.nested_zones(&zone.apex);
    let signer = signing.signatures.as_ref().map(|s| s.signer());
    let (base, report) = base::compile(BaseInput {
        zone,
        slot,
        dynamic: inputs.dynamic.get(&zone.apex).copied(),
        unloaded: inputs.unloaded.contains(&zone.apex),
        nested: &nested,
        layer: &layer,
        last: last.map(|l| (l.content, l.serial)),
        keep_serial: false,
        signer: signer.as_ref().map(|s| s as &dyn RrsetSigner),
    });
    if let (Some(store), Some(signer)) = (&signing.signatures, &signer) {
        store.prune(signer.generation());
    }
    let (dynamic, dynamic_expiry) = match last {
        Some(last) if scope == Scope::Data && same_signer(last.online.as_ref(), signing.online.as_ref()) => {
            (last.dynamic.clone(), last.dynamic_expiry)
        }
        _ => {
            let online = signing.online.as_deref();
            dynamic_with_expiry(online, || {
                dynamic::compile(zone, slot, base.serial, inputs.standing(), geo, &layer, online)
            })
        }
    };
    let parts = Parts {
        content: base.content,
        serial: base.serial,
        base: base.snap,
        overlay: Arc::default(),
        overlay_snap: None,
        dynamic,
        layer,
        signatures: signing.signatures,
        online: signing.online,
        dynamic_expiry,
        transfer_pools: last.and_then(|l| l.transfer_pools.clone()),
    };
    (parts, report)
}

/// Compiles a dynamic layer and notes the earliest expiration of the signatures it carries.
fn dynamic_with_expiry(
    online: Option<&OnlineSigner>,
    compile: impl FnOnce() -> Option<Arc<ZoneSnap>>,
) -> (Option<Arc<ZoneSnap>>, Option<u32>) {
    if let Some(o) = online {
        o.take_earliest();
    }
    let dynamic = compile();
    (dynamic, online.and_then(|o| o.take_earliest()))
}

/// A zone's signers for a full compile.
struct Signing {
    signatures: Option<Arc<ZoneSignatures>>,
    online: Option<Arc<OnlineSigner>>,
}

impl Signing {
    /// The last compile's when the zone's keys and settings are the same, else new ones
    /// (none for an unsigned zone).
    fn of(
        zone: &ZoneConfig,
        last: Option<&Parts>,
        preloaded: Option<Arc<ZoneSignatures>>,
        cache: Option<&Arc<SigCache>>,
        settings: &DnssecSettings,
    ) -> Signing {
        let (Some(keys), Some(cache)) = (&zone.dnssec, cache) else {
            return Signing { signatures: None, online: None };
        };
        let signatures = match last.and_then(|l| l.signatures.as_ref()).or(preloaded.as_ref()) {
            Some(s) if **s.keys() == **keys => Arc::clone(s),
            Some(s) if s.keys().validity == keys.validity => {
                Arc::new(ZoneSignatures::carried_over(s, Arc::clone(keys)))
            }
            _ => Arc::new(ZoneSignatures::new(Arc::clone(keys))),
        };
        let online = OnlineSigner::new(
            Arc::clone(keys),
            Arc::clone(cache),
            settings.sign_budget,
            zone.data.soa_ttl.min(zone.data.soa.minimum),
        );
        let online = match last.and_then(|l| l.online.as_ref()) {
            Some(o) if **o == online => Arc::clone(o),
            _ => Arc::new(online),
        };
        Signing { signatures: Some(signatures), online: Some(online) }
    }
}

/// Both unsigned, or the same signer.
fn same_signer(a: Option<&Arc<OnlineSigner>>, b: Option<&Arc<OnlineSigner>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// What a caught panic said (its message when it had one): compiles run inside
/// `catch_unwind`, on the builder and on fold threads.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
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
