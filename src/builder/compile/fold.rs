//! Folding a zone's overlay into a new base, off the builder thread.
//!
//! Once a zone's overlay holds [`super::overlay::fold_names`] names, the builder hands a
//! [`FoldJob`] (the zone's records and static layer as they are: reference counts, no copies)
//! to a short-lived thread, which compiles the whole zone and sends the base back
//! ([`Folded`]). Pushes go on into the overlay meanwhile. The builder installs the base only if
//! the zone still has the base the fold started from, and rebuilds the overlay from the names
//! pushed since; a failed fold is logged and the zone recompiled on the builder instead.

use std::sync::Arc;

use super::base::{BaseInput, ZoneReport, compile};
use super::layer::StaticLayer;
use crate::builder::held::{self, Held, Layered};
use crate::config::Config;
use crate::dns::name::Name;
use crate::dns::records::Nodes;
use crate::snapshot::ZoneSnap;

/// A zone to fold, with everything the compile reads.
pub struct FoldJob {
    /// The zone.
    pub apex: Name,
    pub(super) config: Arc<Config>,
    pub(super) layer: Arc<StaticLayer>,
    /// The held base and delta, and ExternalDNS's records.
    pub(super) held: Option<(Held, Arc<Nodes>, Arc<Nodes>)>,
    pub(super) unloaded: bool,
    pub(super) slot: u16,
    /// Content hash and serial as published.
    pub(super) last: (u64, u32),
    /// The base the overlay lies over.
    pub from: Arc<ZoneSnap>,
    /// A signed zone's kept signatures.
    pub(super) signatures: Option<Arc<super::signatures::ZoneSignatures>>,
}

/// A fold's outcome.
pub struct Folded {
    /// The zone.
    pub apex: Name,
    /// The base the fold started from.
    pub from: Arc<ZoneSnap>,
    /// The new base, its content hash and what it reported; or why it failed.
    pub result: Result<(Arc<ZoneSnap>, u64, ZoneReport), String>,
}

impl FoldJob {
    /// Compiles the zone (a panic is caught and reported).
    pub fn run(self) -> Folded {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.compile()));
        let result = outcome.map_err(|panic| format!("fold failed: {}", super::panic_message(&*panic)));
        Folded { apex: self.apex, from: self.from, result: result.and_then(|r| r) }
    }

    fn compile(&self) -> Result<(Arc<ZoneSnap>, u64, ZoneReport), String> {
        let zone = self.config.zone(&self.apex).ok_or("the zone is gone")?;
        let nested = self.config.nested_zones(&zone.apex);
        let unpacked = match &self.held {
            Some((Held::Packed(p), _, _)) => Some(held::unpack(&p.bytes, &zone.apex, zone.default_ttl)),
            _ => None,
        };
        let dynamic = self.held.as_ref().map(|(base, delta, external)| Layered {
            base: match base {
                Held::Converted(n) => Some(&**n),
                Held::Packed(_) => unpacked.as_ref(),
            },
            delta: Some(&**delta),
            external: Some(&**external),
        });
        let signer = self.signatures.as_ref().map(|s| s.signer());
        let (base, report) = compile(BaseInput {
            zone,
            slot: self.slot,
            dynamic,
            unloaded: self.unloaded,
            nested: &nested,
            layer: &self.layer,
            last: Some(self.last),
            keep_serial: true,
            signer: signer.as_ref().map(|s| s as &dyn crate::dnssec::sign::RrsetSigner),
        });
        if let (Some(store), Some(signer)) = (&self.signatures, &signer) {
            store.prune(signer.generation());
        }
        // Freed where freeing ends with handing the memory back to the system.
        crate::snapshot::reclaim::later(unpacked);
        Ok((base.snap, base.content, report))
    }
}
