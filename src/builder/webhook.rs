//! `/notify` pushes applied to the held records: per-item checks, partial or atomic
//! application, and which applied records DNS does not answer.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::held::HeldZone;
use super::overlay::FOLD_NAMES;
use super::publisher::{Scope, ShadowedBy};
use super::state::State;
use crate::config::ZoneConfig;
use crate::dns::name::Name;
use crate::dns::types::TYPE_CNAME;
use crate::elchi::api;
use crate::elchi::journal::{self, Journal};

/// An overlay being folded takes up to this many times [`State::fold_at`] before pushes wait for a
/// recompile on the builder (its compile cost grows with it).
const MAX_OVERLAY_FOLDS: usize = 4;

/// Pushes after which a zone's state file is rewritten even when its journal has them all
/// (so that the journal, replayed at start-up, stays short).
const PERSIST_PUSHES: u64 = 16384;
/// Pushed names held apart from the base before the state file is rewritten with them. A
/// rewrite is whole-zone work, like a fold: four folds per rewrite keeps the two from
/// running at once all the time.
const PERSIST_NAMES: usize = 4 * FOLD_NAMES;
/// In a smaller zone a rewrite is cheap: it comes once the pushed names reach this fraction
/// of the zone's records (at least [`MIN_PERSIST_NAMES`]), so that what pushes hold apart
/// stays small beside the zone (at 100,000 records: 1,000 names, a 6 MB rewrite).
const PERSIST_FRACTION: usize = 100;
/// The fewest pushed names that make a rewrite.
const MIN_PERSIST_NAMES: usize = 256;

/// A `/notify` item that is invalid or outside every zone.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The journal could not take (part of) the push: it is not acknowledged.
    pub journal_error: Option<String>,
}

impl State {
    /// The zone (longest label-aware apex match) that contains `name`.
    fn zone_for(&self, name: &Name) -> Option<Name> {
        self.config
            .zones
            .iter()
            .filter(|z| name.is_within(&z.apex))
            .max_by_key(|z| z.apex.wire_len())
            .map(|z| z.apex.clone())
    }

    /// Applies a `/notify` push to the held records: every item is checked first. Invalid
    /// and out-of-zone items are skipped and listed, the valid ones are applied together and
    /// their zones marked for the next build (the reply goes out after it, so DNS answers all
    /// of them by then) and their state files queued. With `atomic`, any bad item rejects the
    /// whole push and nothing is applied.
    pub fn push(&mut self, body: &api::NotifyJson, atomic: bool) -> Result<PushOutcome, PushError> {
        let mut outcome = PushOutcome::default();
        let mut updates: HashMap<Name, Vec<(Name, u16, api::RecordJson)>> = HashMap::new();
        let mut deletes: HashMap<Name, Vec<(Name, u16)>> = HashMap::new();
        let mut delete_items: HashMap<Name, Vec<api::DeleteJson>> = HashMap::new();
        let mut applied_items: Vec<(usize, Name, Name, u16)> = Vec::new();
        for (item, r) in body.records.iter().enumerate() {
            let checked = api::check_push(r).and_then(|(owner, rtype)| {
                let zone = self.zone_for(&owner).ok_or_else(|| format!("{owner} is outside every zone"))?;
                if owner == zone && rtype == TYPE_CNAME {
                    return Err(format!("{owner}: a failover CNAME cannot be at the zone apex"));
                }
                Ok((zone, owner, rtype))
            });
            match checked {
                Ok((zone, owner, rtype)) => {
                    applied_items.push((item, zone.clone(), owner.clone(), rtype));
                    updates.entry(zone).or_default().push((owner, rtype, r.clone()));
                }
                Err(message) => outcome.skipped.push(PushError { message, section: "records", item }),
            }
        }
        for (item, d) in body.deletes.iter().enumerate() {
            let checked = api::check_delete(d).and_then(|(owner, rtype)| {
                let zone = self.zone_for(&owner).ok_or_else(|| format!("{owner} is outside every zone"))?;
                Ok((zone, owner, rtype))
            });
            match checked {
                Ok((zone, owner, rtype)) => {
                    delete_items.entry(zone.clone()).or_default().push(d.clone());
                    deletes.entry(zone).or_default().push((owner, rtype));
                }
                Err(message) => outcome.skipped.push(PushError { message, section: "deletes", item }),
            }
        }
        if atomic && let Some(first) = outcome.skipped.first() {
            return Err(first.clone());
        }
        let zones: std::collections::BTreeSet<Name> = updates.keys().chain(deletes.keys()).cloned().collect();
        for zone in zones {
            let config = Arc::clone(&self.config);
            let Some(cfg) = config.zone(&zone) else { continue };
            let default_ttl = cfg.default_ttl;
            let zone_updates = updates.get(&zone).map_or(&[][..], |v| v);
            let zone_deletes = deletes.get(&zone).map_or(&[][..], |v| v);
            // Journal first: a change is acknowledged only once it is on disk (synced, with the
            // rest of the batch, before the reply).
            if self.config.state.journal {
                let entry = journal::Entry {
                    seq: self.journal_seq.get(&zone).copied().unwrap_or(0) + 1,
                    records: zone_updates.iter().map(|(_, _, r)| r.clone()).collect(),
                    deletes: delete_items.remove(&zone).unwrap_or_default(),
                };
                if let Err(e) = self.journal_append(&zone, &entry) {
                    tracing::error!(zone = %zone, error = %e, "cannot append to the push journal; push not applied");
                    outcome.journal_error = Some(format!("the push journal of {zone} cannot be written: {e}"));
                    continue;
                }
            }
            // Only the pushed names are read and changed: the zone's other records stay as
            // they are, not even copied.
            let (touched, rrs) = self.held.entry(zone.clone()).or_insert_with(HeldZone::empty).apply_push(
                &zone,
                default_ttl,
                zone_updates,
                zone_deletes,
            );
            outcome.updated += zone_updates.len();
            outcome.deleted += zone_deletes.len();
            self.recompile_pushed(cfg, touched);
            if let Some(st) = self.status.get_mut(&zone) {
                st.records = (st.records as i64 + rrs).max(0) as usize;
            }
            // With the journal, the push is durable already: the state file is rewritten (the
            // pushes folded in) only once they add up. Without it, soon after every push.
            let pushes = self.unpersisted_pushes.entry(zone.clone()).or_default();
            *pushes += 1;
            let pushes = *pushes;
            let delta = self.held.get(&zone).map_or(0, |h| h.delta.len());
            let records = self.status.get(&zone).map_or(0, |st| st.records);
            let persist_names = (records / PERSIST_FRACTION).clamp(MIN_PERSIST_NAMES, PERSIST_NAMES);
            if !self.config.state.journal || delta >= persist_names || pushes >= PERSIST_PUSHES {
                self.persist(&zone);
            }
            tracing::info!(zone = %zone, updated = zone_updates.len(), deleted = zone_deletes.len(), "webhook push applied");
        }
        outcome.applied = applied_items;
        if !outcome.skipped.is_empty() {
            let first = &outcome.skipped[0];
            tracing::warn!(
                skipped = outcome.skipped.len(),
                first = %format!("{}[{}]: {}", first.section, first.item, first.message),
                "webhook push: invalid or out-of-zone items skipped; the others were applied"
            );
        }
        Ok(outcome)
    }

    /// Marks pushed names for the next build: into the zone's overlay when it takes them all
    /// (and has room), else the zone is recompiled.
    fn recompile_pushed(&mut self, zone: &ZoneConfig, names: BTreeSet<Name>) {
        let apex = &zone.apex;
        if !self.dirty.needs_data(apex) {
            let held = self.publisher.overlay_len(apex) + self.patches.get(apex).map_or(0, |p| p.len());
            // With fold threads, a full overlay is folded in the background and keeps taking
            // pushes meanwhile (up to a bound); without, it is folded here and now.
            let fold_at = self.fold_at(apex);
            let limit = if self.folds_in_background() { fold_at * MAX_OVERLAY_FOLDS } else { fold_at };
            if held + names.len() <= limit && names.iter().all(|n| self.publisher.overlay_takes(zone, n)) {
                if let Some(since) = self.folding.get_mut(apex) {
                    since.extend(names.iter().cloned());
                }
                self.patches.entry(apex.clone()).or_default().extend(names);
                return;
            }
        }
        self.patches.remove(apex);
        self.dirty.add(apex, Scope::Data);
    }

    /// Appends an entry to the zone's journal (opening it on first use); durable after
    /// [`state::sync_journals`](super::state::sync_journals).
    fn journal_append(&mut self, zone: &Name, entry: &journal::Entry) -> std::io::Result<()> {
        let j = match self.journals.entry(zone.clone()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(Journal::open(&self.config.state.dir, zone, &[])?),
        };
        j.append(entry)?;
        self.journal_seq.insert(zone.clone(), entry.seq);
        self.journal_unsynced.insert(zone.clone());
        Ok(())
    }

    /// After the build: which applied records of the push DNS does not answer.
    pub fn finish_push(&self, mut outcome: PushOutcome) -> PushOutcome {
        // One index per touched zone: a zone may have many shadowed pairs and a push many items.
        let mut index: HashMap<Name, HashMap<(Name, u16), ShadowedBy>> = HashMap::new();
        for (item, zone, name, rtype) in std::mem::take(&mut outcome.applied) {
            let shadowed = index.entry(zone.clone()).or_insert_with(|| {
                self.shadowed
                    .get(&zone)
                    .into_iter()
                    .flat_map(|l| l.iter())
                    .map(|(n, t, by)| ((n.clone(), *t), *by))
                    .collect()
            });
            if let Some(&by) = shadowed.get(&(name.clone(), rtype)) {
                outcome.shadowed.push(PushShadowed { item, name, by });
            }
        }
        outcome
    }
}

/// Re-applies a journal entry at start-up (its items were checked when it was written).
/// Returns the names it touched and the change in the number of records.
pub fn replay(zone: &mut HeldZone, apex: &Name, default_ttl: u32, entry: &journal::Entry) -> (BTreeSet<Name>, i64) {
    let updates: Vec<(Name, u16, api::RecordJson)> = entry
        .records
        .iter()
        .filter_map(|r| api::check_push(r).ok().map(|(owner, rtype)| (owner, rtype, r.clone())))
        .filter(|(owner, _, _)| owner.is_within(apex))
        .collect();
    let deletes: Vec<(Name, u16)> = entry.deletes.iter().filter_map(|d| api::check_delete(d).ok()).collect();
    zone.apply_push(apex, default_ttl, &updates, &deletes)
}
