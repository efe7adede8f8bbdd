//! The names pushed since a zone's base was compiled, compiled apart (the zone's overlay),
//! so a push costs what it changes, not what the zone holds.
//!
//! A push may be taken by the overlay when what it changes cannot show up in any other name's
//! compiled answer: the name is not the apex, not a wildcard, has no static records, is no
//! static record's target (CNAME, NS, MX, SRV), is no pool's, and lies below no delegation.
//! Chains through controller and webhook CNAMEs are followed at query time (see
//! `snapshot::build`), so no base answer holds a copy of a pushed name's records. What is
//! left is existence: a new name may turn missing ancestors into empty non-terminals, a
//! deleted one may take empty ancestors with it. The overlay keeps those changes against the
//! base's per-name child counts and hands them to the compiler as marks.
//!
//! Everything else recompiles the zone. An overlay grown to [`fold_names`] is folded into a
//! new base on a thread of its own ([`super::fold`]), since its compile grows with it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::layer::{StaticLayer, merge};
use crate::config::ZoneConfig;
use crate::dns::name::Name;
use crate::dns::records::{Nodes, TypeMap, ZoneData};
use crate::snapshot::build::{ZoneInput, build_zone};
use crate::snapshot::{DYNAMIC_WILDCARD, NONE, ZoneSnap};

/// The most names an overlay holds before it is folded into a new base (a push recompiles the
/// overlay, so its cost grows with it).
pub const FOLD_NAMES: usize = 1024;
/// The fewest names that make a fold.
pub const MIN_FOLD_NAMES: usize = 256;

/// An overlay over a zone of `records` records is folded at this many names: a fold recompiles
/// the whole zone and a push the overlay, so the overlay may grow with the zone (1/256 of it,
/// between [`MIN_FOLD_NAMES`] and [`FOLD_NAMES`]); what pushes hold apart then stays small
/// beside the zone (at 100,000 records 390 names, at a million 1,024).
pub fn fold_names(records: usize) -> usize {
    (records / 256).clamp(MIN_FOLD_NAMES, FOLD_NAMES)
}

/// What an overlay is compiled against.
pub struct OverlayInput<'a> {
    /// The base it lies over.
    pub base: &'a ZoneSnap,
    /// The zone.
    pub zone: &'a ZoneConfig,
    /// Its static layer.
    pub layer: &'a StaticLayer,
    /// The new SOA serial.
    pub serial: u32,
    /// Zones served here below this one.
    pub nested: &'a [Name],
    /// A controller zone whose data never loaded.
    pub unloaded: bool,
    /// A name's current dynamic records.
    pub dynamic_of: &'a dyn Fn(&Name) -> Option<TypeMap>,
    /// A signed zone: signs the names' RRsets.
    pub signer: Option<&'a dyn crate::dnssec::sign::RrsetSigner>,
}

/// The changed names of one zone and what they change about which names exist.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// The current dynamic records of every pushed name (empty: none).
    names: BTreeMap<Name, TypeMap>,
    /// Names whose existence differs from the base's: `true` exists now, `false` gone.
    exists: HashMap<Name, bool>,
    /// Change in the number of existing names one label below, by name.
    children: HashMap<Name, i64>,
}

impl Overlay {
    /// Pushed names held.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Nothing pushed since the base.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn exists(&self, base: &ZoneSnap, name: &Name) -> bool {
        self.exists.get(name).copied().unwrap_or_else(|| base.node(name.as_wire()).is_some())
    }

    /// Records at the name now. (A name without pushes keeps the base's records: only a name
    /// without records vanishes, so a base name with records is never gone unless pushed.)
    fn has_data(&self, base: &ZoneSnap, name: &Name) -> bool {
        match self.names.get(name) {
            Some(t) => !t.is_empty(),
            None => {
                base.node(name.as_wire()).is_some_and(|n| n.answers.types_len > 0 || n.referral != NONE || n.dynamic)
            }
        }
    }

    /// Existing names one label below, now.
    fn children(&self, base: &ZoneSnap, name: &Name) -> i64 {
        let known = base.node(name.as_wire()).map_or(0, |n| n.children);
        i64::from(known) + self.children.get(name).copied().unwrap_or(0)
    }

    /// Whether a change of `name`'s dynamic records can be compiled into the overlay (see the
    /// module docs); if not, the zone is recompiled.
    pub fn can_take(&self, base: &ZoneSnap, zone: &ZoneConfig, layer: &StaticLayer, name: &Name) -> bool {
        if *name == zone.apex || name.is_wildcard() || !name.is_within(&zone.apex) {
            return false;
        }
        if layer.records(zone).nodes.contains_key(name) || layer.is_dynamic_or_referenced(name) {
            return false;
        }
        // Nothing at or above it (below the apex) may refer or be answered elsewhere, and
        // the name itself must not own a wildcard (its node would have to carry it).
        let wire = name.as_wire();
        for off in crate::dns::name::label_offsets(wire) {
            if wire.len() - off <= zone.apex.wire_len() {
                break;
            }
            if let Some(n) = base.node(&wire[off..])
                && (n.referral != NONE || n.dynamic || (off == 0 && n.wildcard != NONE))
            {
                return false;
            }
        }
        true
    }

    /// Sets the current dynamic records of a pushed name (empty: none) and what that changes
    /// about which names exist.
    pub fn set(&mut self, base: &ZoneSnap, apex: &Name, name: Name, types: TypeMap) {
        let has = !types.is_empty();
        self.names.insert(name.clone(), types);
        if has {
            self.appear(base, apex, name);
        } else if self.children(base, &name) <= 0 {
            self.vanish(base, apex, name);
        }
    }

    fn appear(&mut self, base: &ZoneSnap, apex: &Name, name: Name) {
        if self.exists(base, &name) {
            return;
        }
        let parent = name.parent();
        self.exists.insert(name, true);
        if let Some(parent) = parent {
            *self.children.entry(parent.clone()).or_default() += 1;
            if parent != *apex {
                self.appear(base, apex, parent);
            }
        }
    }

    fn vanish(&mut self, base: &ZoneSnap, apex: &Name, name: Name) {
        if !self.exists(base, &name) {
            return;
        }
        let parent = name.parent();
        self.exists.insert(name, false);
        if let Some(parent) = parent {
            *self.children.entry(parent.clone()).or_default() -= 1;
            if parent != *apex && !self.has_data(base, &parent) && self.children(base, &parent) <= 0 {
                self.vanish(base, apex, parent);
            }
        }
    }

    /// Compiles the overlay: the pushed names with records, the apex (whose SOA carries the
    /// new serial) and the wildcards below them that the base holds, with the existence marks.
    pub fn compile(&self, input: OverlayInput<'_>) -> ZoneSnap {
        let OverlayInput { base, zone, layer, serial, nested, unloaded, dynamic_of, signer } = input;
        let statics = layer.records(zone);
        let mut dynamic = Nodes::new();
        let mut window = ZoneData { nodes: Default::default(), ..statics.clone_head() };
        let mut take = |name: &Name, dynamic: &mut Nodes| {
            if let Some(t) = statics.nodes.get(name) {
                window.nodes.insert(name.clone(), t.clone());
            }
            if let Some(t) = dynamic_of(name) {
                dynamic.insert(name.clone(), t);
            }
        };
        take(&zone.apex, &mut dynamic);
        for (name, types) in &self.names {
            if !types.is_empty() {
                dynamic.insert(name.clone(), types.clone());
            }
        }
        // A compiled node carries the answers of `*.<name>`: bring along what the base has.
        let with_wildcards: Vec<Name> = std::iter::once(&zone.apex)
            .chain(self.names.keys())
            .filter(|n| base.node(n.as_wire()).is_some_and(|r| r.wildcard != NONE && r.wildcard != DYNAMIC_WILDCARD))
            .cloned()
            .collect();
        for n in with_wildcards {
            if let Some(w) = n.prepend(b"*") {
                take(&w, &mut dynamic);
            }
        }
        let (nodes, _) = merge(&window, crate::builder::held::Layered::plain(&dynamic), zone.static_records, &|n| {
            zone.answers_by_layer(n)
        });
        let marks: Vec<(Name, bool)> = self
            .names
            .iter()
            .filter(|(_, t)| t.is_empty())
            .map(|(n, _)| n)
            .chain(self.exists.keys().filter(|n| self.names.get(*n).is_none_or(|t| t.is_empty())))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|n| (n.clone(), self.exists(base, n)))
            .collect();
        let mut soa = zone.data.soa.clone();
        soa.serial = serial;
        let nodes: Vec<(&Name, Cow<'_, TypeMap>)> = nodes;
        let input = ZoneInput {
            apex: &zone.apex,
            soa,
            soa_ttl: zone.data.soa_ttl,
            nodes: &nodes,
            servfail: &[],
            weighted: &[],
            hinted: &[],
            geo: &[],
            nested,
            dynamic_names: layer.dynamic_names(),
            partial: true,
            unloaded,
            overlay: true,
            marks: &marks,
            signer,
        };
        let mut snap = build_zone(&input);
        snap.slot = base.slot;
        snap
    }
}
