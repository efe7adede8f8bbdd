//! A zone's base: its static layer and all its controller and webhook records compiled into
//! one part. The base also decides the SOA serial: a zone whose content changed gets a new
//! serial (the unix time, kept strictly increasing), an unchanged zone keeps its serial, and a
//! serial fixed in the config is used as is.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::layer::{Shadowed, StaticLayer, merge};
use crate::builder::held::Layered;
use crate::config::ZoneConfig;
use crate::dns::name::Name;
use crate::dns::types::type_name;
use crate::dnssec::sign::RrsetSigner;
use crate::snapshot::ZoneSnap;
use crate::snapshot::build::{ZoneInput, build_zone};

/// What a base is compiled from.
pub struct BaseInput<'a> {
    /// The zone.
    pub zone: &'a ZoneConfig,
    /// Its metrics slot.
    pub slot: u16,
    /// Its controller and webhook records.
    pub dynamic: Option<Layered<'a>>,
    /// A controller zone whose data never loaded: SERVFAIL where it would deny.
    pub unloaded: bool,
    /// Zones served here below this one.
    pub nested: &'a [Name],
    /// Its static layer.
    pub layer: &'a StaticLayer,
    /// Content hash and serial as published.
    pub last: Option<(u64, u32)>,
    /// Keep the published serial (a fold: what it compiles is published through the overlay).
    pub keep_serial: bool,
    /// A signed zone: signs every RRset (from the zone's kept signatures where it can).
    pub signer: Option<&'a dyn RrsetSigner>,
}

/// A compiled base.
pub struct Base {
    /// Hash of what it was compiled from (decides whether the serial moves).
    pub content: u64,
    /// Its SOA serial.
    pub serial: u32,
    /// The compiled part.
    pub snap: Arc<ZoneSnap>,
}

/// What a compile found worth reporting, per zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneReport {
    /// Dynamic name+type pairs that DNS does not answer, and why.
    pub shadowed: Vec<Shadowed>,
}

/// Compiles a zone's base from its static layer and dynamic records.
pub fn compile(input: BaseInput<'_>) -> (Base, ZoneReport) {
    let BaseInput { zone, slot, dynamic, unloaded, nested, layer, last, keep_serial, signer } = input;
    let static_layer = layer.records(zone);
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
        (None, Some((_, last_serial))) => next_serial(last_serial),
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
        hinted: &[],
        geo: &[],
        nested,
        dynamic_names: layer.dynamic_names(),
        partial: false,
        unloaded,
        overlay: false,
        marks: &[],
        signer,
    };
    let started = std::time::Instant::now();
    let mut snap = build_zone(&input);
    let took_ms = started.elapsed().as_millis() as u64;
    tracing::debug!(zone = %zone.apex, names = nodes.len(), took_ms, "zone compiled");
    snap.slot = slot;
    drop(nodes);
    (Base { content, serial, snap: Arc::new(snap) }, ZoneReport { shadowed })
}

/// A new serial after `last`: the unix time, kept strictly increasing.
pub fn next_serial(last: u32) -> u32 {
    now_unix().max(last.wrapping_add(1))
}

fn now_unix() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}
