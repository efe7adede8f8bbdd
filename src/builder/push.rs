//! `/notify` pushes before they touch a zone: every item is checked and routed to the zone
//! that holds its name (the longest apex); invalid and out-of-zone items are skipped and
//! listed, or, atomic, reject the whole push. What a push did is reported once DNS answers
//! it, with the applied records DNS does not answer.

use std::collections::{BTreeMap, HashMap};

use super::compile::layer::ShadowedBy;
use crate::config::Config;
use crate::dns::name::Name;
use crate::dns::types::TYPE_CNAME;
use crate::elchi::api::{self, DeleteJson, ItemError, NotifyJson, RecordJson};

/// A `/notify` item that is invalid or outside every zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{section}[{item}]: {message}")]
pub struct PushError {
    /// What is wrong.
    pub message: String,
    /// `records` or `deletes`.
    pub section: &'static str,
    /// Index of the offending item in its list.
    pub item: usize,
}

/// A pushed record that was applied but that DNS does not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushShadowed {
    /// Index in `records`.
    pub item: usize,
    /// Owner name.
    pub name: Name,
    /// What answers the name instead.
    pub by: ShadowedBy,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushOutcome {
    /// Record items applied (upstream counts items, not their effects).
    pub updated: usize,
    /// Delete items applied, whether or not the name+type existed.
    pub deleted: usize,
    /// Items left out as invalid or outside every zone (partial mode only).
    pub skipped: Vec<PushError>,
    /// Applied records DNS does not answer, and why (filled in after the build).
    pub shadowed: Vec<PushShadowed>,
    /// (item, zone, owner, type) of every applied record, to find the shadowed ones.
    applied: Vec<(usize, Name, Name, u16)>,
}

/// One zone's part of a push, checked.
#[derive(Debug, Default)]
pub struct ZonePush {
    /// Records to set: owner, type, the item.
    pub updates: Vec<(Name, u16, RecordJson)>,
    /// Name+type pairs to delete.
    pub deletes: Vec<(Name, u16)>,
    /// The delete items as pushed (for the journal).
    pub delete_items: Vec<DeleteJson>,
    /// Indexes of the record items, parallel to `updates`.
    items: Vec<usize>,
}

impl ZonePush {
    /// The record items as pushed (for the journal).
    pub fn records(&self) -> Vec<RecordJson> {
        self.updates.iter().map(|(_, _, r)| r.clone()).collect()
    }
}

/// A push split by zone, with what was skipped.
#[derive(Debug, Default)]
pub struct Routed {
    /// Each zone's part, in zone order.
    pub zones: BTreeMap<Name, ZonePush>,
    /// Items left out.
    pub skipped: Vec<PushError>,
}

/// The zone (longest label-aware apex match) that contains `name`.
fn zone_for(config: &Config, name: &Name) -> Option<Name> {
    config.zones.iter().filter(|z| name.is_within(&z.apex)).max_by_key(|z| z.apex.wire_len()).map(|z| z.apex.clone())
}

/// Checks every item of `body` and routes it to its zone. With `atomic`, the first bad item
/// rejects the whole push.
pub fn route(config: &Config, body: &NotifyJson, atomic: bool) -> Result<Routed, PushError> {
    let mut routed = Routed::default();
    for (item, r) in body.records.iter().enumerate() {
        let checked = api::check_push(r).and_then(|(owner, rtype)| {
            let zone = zone_for(config, &owner).ok_or_else(|| ItemError::Outside(owner.clone()))?;
            if owner == zone && rtype == TYPE_CNAME {
                return Err(ItemError::ApexCname(owner));
            }
            Ok((zone, owner, rtype))
        });
        match checked {
            Ok((zone, owner, rtype)) => {
                let part = routed.zones.entry(zone).or_default();
                part.updates.push((owner, rtype, r.clone()));
                part.items.push(item);
            }
            Err(e) => routed.skipped.push(PushError { message: e.to_string(), section: "records", item }),
        }
    }
    for (item, d) in body.deletes.iter().enumerate() {
        let checked = api::check_delete(d).and_then(|(owner, rtype)| {
            let zone = zone_for(config, &owner).ok_or_else(|| ItemError::Outside(owner.clone()))?;
            Ok((zone, owner, rtype))
        });
        match checked {
            Ok((zone, owner, rtype)) => {
                let part = routed.zones.entry(zone).or_default();
                part.delete_items.push(d.clone());
                part.deletes.push((owner, rtype));
            }
            Err(e) => routed.skipped.push(PushError { message: e.to_string(), section: "deletes", item }),
        }
    }
    if atomic && let Some(first) = routed.skipped.first() {
        return Err(first.clone());
    }
    if let Some(first) = routed.skipped.first() {
        tracing::warn!(
            skipped = routed.skipped.len(),
            first = %first,
            "webhook push: invalid or out-of-zone items skipped; the others were applied"
        );
    }
    Ok(routed)
}

impl PushOutcome {
    /// A push that skipped these items.
    pub fn skipping(skipped: Vec<PushError>) -> PushOutcome {
        PushOutcome { skipped, ..PushOutcome::default() }
    }

    /// Counts a zone's part as applied.
    pub fn applied(&mut self, zone: &Name, part: &ZonePush) {
        self.updated += part.updates.len();
        self.deleted += part.deletes.len();
        for (&item, (owner, rtype, _)) in part.items.iter().zip(&part.updates) {
            self.applied.push((item, zone.clone(), owner.clone(), *rtype));
        }
    }

    /// After the build: which applied records DNS does not answer, from each touched zone's
    /// shadowed pairs (`shadowed_of`, asked once per zone).
    pub fn finish(mut self, shadowed_of: impl Fn(&Name) -> HashMap<(Name, u16), ShadowedBy>) -> PushOutcome {
        let mut index: HashMap<Name, HashMap<(Name, u16), ShadowedBy>> = HashMap::new();
        for (item, zone, name, rtype) in std::mem::take(&mut self.applied) {
            let shadowed = index.entry(zone.clone()).or_insert_with(|| shadowed_of(&zone));
            if let Some(&by) = shadowed.get(&(name.clone(), rtype)) {
                self.shadowed.push(PushShadowed { item, name, by });
            }
        }
        self
    }
}
