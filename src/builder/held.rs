//! The controller and webhook records of each zone between builds, kept compact.
//!
//! Freshly converted records are held as such until the state-file writer has stored them;
//! then the zone keeps only the record list as JSON (what the state file holds: a few dozen
//! bytes per record instead of hundreds), converted again when the zone must be rebuilt for
//! another reason. Both forms are shared (`Arc`) with the published admin views.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::dns::name::Name;
use crate::elchi::api::{self, RecordJson};
use crate::snapshot::records::Nodes;

/// A zone's dynamic records in one of their two forms.
#[derive(Debug, Clone)]
pub enum Held {
    /// Converted, until the state-file writer has stored them.
    Converted(Arc<Nodes>),
    /// The record list as compact JSON.
    Packed(Arc<[u8]>),
}

/// A zone's held records and the controller version they belong to.
#[derive(Debug, Clone)]
pub struct HeldZone {
    /// Version hash of the controller data (empty before any).
    pub version_hash: String,
    /// The records.
    pub held: Held,
}

impl HeldZone {
    /// The records, ready to be changed in place: converted back from the compact form if
    /// need be, and shared with nobody (copied only when a writer or view still holds them).
    pub fn nodes_mut(&mut self, apex: &Name, default_ttl: u32) -> &mut Nodes {
        if let Held::Packed(bytes) = &self.held {
            let nodes = unpack(bytes, apex, default_ttl);
            let old = std::mem::replace(&mut self.held, Held::Converted(Arc::new(nodes)));
            crate::snapshot::reclaim::later(old);
        }
        match &mut self.held {
            Held::Converted(nodes) => Arc::make_mut(nodes),
            Held::Packed(_) => unreachable!("converted above"),
        }
    }
}

/// Calls `f` with each record of a compact record list in turn, without holding the whole
/// list decoded (for reads of big zones with bounded memory).
pub fn for_each_record(bytes: &[u8], f: impl FnMut(RecordJson)) {
    struct Each<F>(F);
    impl<'de, F: FnMut(RecordJson)> serde::de::Visitor<'de> for Each<F> {
        type Value = ();
        fn expecting(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            out.write_str("a list of records")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            while let Some(r) = seq.next_element::<RecordJson>()? {
                (self.0)(r);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    if let Err(e) = serde::Deserializer::deserialize_seq(&mut de, Each(f)) {
        tracing::error!(error = %e, "held controller records do not decode");
    }
}

/// Converts a zone's compact record list back into records (none, logged, if it does not
/// decode: it was encoded by us, so that would be a bug, not bad input).
pub fn unpack(bytes: &[u8], apex: &Name, default_ttl: u32) -> Nodes {
    match serde_json::from_slice::<Vec<api::RecordJson>>(bytes) {
        Ok(records) => api::convert(&records, apex, default_ttl).nodes,
        Err(e) => {
            tracing::error!(zone = %apex, error = %e, "held controller records do not decode");
            Nodes::new()
        }
    }
}

/// The converted records of the zones in `which` that are held packed (for a rebuild).
pub fn unpack_some(
    config: &Config,
    held: &HashMap<Name, HeldZone>,
    which: impl Fn(&Name) -> bool,
) -> HashMap<Name, Nodes> {
    let mut out = HashMap::new();
    for (apex, h) in held {
        if let Held::Packed(bytes) = &h.held
            && which(apex)
        {
            let default_ttl = config.zones.iter().find(|z| z.apex == *apex).map_or(300, |z| z.default_ttl);
            out.insert(apex.clone(), unpack(bytes, apex, default_ttl));
        }
    }
    out
}

/// Every zone's records that are converted, or were just unpacked.
pub fn borrow_all<'a>(
    held: &'a HashMap<Name, HeldZone>,
    unpacked: &'a HashMap<Name, Nodes>,
) -> HashMap<Name, &'a Nodes> {
    let mut out = HashMap::with_capacity(held.len());
    for (apex, h) in held {
        let nodes = match &h.held {
            Held::Converted(n) => Some(&**n),
            Held::Packed(_) => unpacked.get(apex),
        };
        if let Some(n) = nodes {
            out.insert(apex.clone(), n);
        }
    }
    out
}
