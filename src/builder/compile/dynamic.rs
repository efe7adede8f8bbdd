//! A zone's dynamic layer: its pools' and geo names' answers under the current verdicts and
//! location maps (and operators' drain/disable states), compiled apart from the rest of the zone, so a verdict change or new
//! location data recompiles only this small part.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use super::layer::StaticLayer;
use super::pools::{GeoInputs, Standing, pool_records};
use crate::config::ZoneConfig;
use crate::dns::name::Name;
use crate::dns::records::TypeMap;
use crate::dnssec::online::OnlineSigner;
use crate::snapshot::ZoneSnap;
use crate::snapshot::build::{ZoneInput, build_zone};

/// The zone's dynamic layer: its pools' names and glue with their answers as `standing` has it,
/// compiled as a partial zone (CNAME targets elsewhere are followed at query time). `None`
/// for a zone without pools.
pub fn compile(
    zone: &ZoneConfig,
    slot: u16,
    serial: u32,
    standing: Standing<'_>,
    geo: &GeoInputs<'_>,
    layer: &StaticLayer,
    signer: Option<&OnlineSigner>,
) -> Option<Arc<ZoneSnap>> {
    if zone.pools.is_empty() && zone.geo_names.is_empty() {
        return None;
    }
    let pools = pool_records(zone, standing, geo);
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
        hinted: &pools.hinted,
        nested: &[],
        dynamic_names: &none,
        partial: true,
        unloaded: false,
        overlay: false,
        marks: &[],
        signer: signer.map(|s| s as &dyn crate::dnssec::sign::RrsetSigner),
    };
    let mut snap = build_zone(&input);
    snap.slot = slot;
    // The names the base hands to this layer are answered here directly.
    for name in layer.dynamic_names() {
        if let Some(i) = snap.node_index(name.as_wire()) {
            snap.nodes[i].owned = true;
        }
    }
    Some(Arc::new(snap))
}
