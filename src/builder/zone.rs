//! One zone's state in the builder: its controller and webhook records, sync status, push
//! journal, state-file outcome, what its last build reported, and the names pushed since.
//! Everything that changes one zone is a method here; the builder's [`State`] holds one per
//! zone of the config and drops a zone's whole state when a reload removes the zone.
//!
//! [`State`]: super::state::State

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::compile::base::ZoneReport;
use super::compile::layer::{Shadowed, ShadowedBy, StaticLayer};
use super::compile::overlay::FOLD_NAMES;
use super::event::JournalError;
use super::held::{Held, HeldZone, Undo};
use super::persist::{PersistError, PersistJob, Persisted};
use super::push::ZonePush;
use super::status::{DataOrigin, SyncKind, SyncStatus};
use super::views::ZoneView;
use crate::config::{StateConfig, ZoneConfig};
use crate::dns::name::Name;
use crate::elchi::api::{self, Payload};
use crate::elchi::journal::{self, Journal};
use crate::externaldns::store::{self as endpoints_file, ZoneChange, ZoneEndpoints};

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

/// A push the journal took in this batch: the journal's length and sequence number before
/// it, and what it replaced.
struct Journaled {
    journal_len: u64,
    seq: u64,
    undo: Undo,
}

/// One zone's state.
#[derive(Default)]
pub struct ZoneState {
    /// Controller and webhook records (none before any).
    pub held: Option<HeldZone>,
    /// Sync status (controller zones only).
    pub status: Option<SyncStatus>,
    /// The push journal, once the zone has one.
    journal: Option<Journal>,
    /// The last journal sequence number.
    journal_seq: u64,
    /// Appended to since the last sync.
    journal_unsynced: bool,
    /// The batch's journaled pushes, oldest first: kept until the batch's sync says
    /// whether they stand.
    batch: Vec<Journaled>,
    /// Why the journal last refused a push (cleared by the next push it takes).
    journal_error: Option<String>,
    /// The last state-file write's error and how many writes failed in a row.
    persist_error: Option<(PersistError, u64)>,
    /// Failed state-file writes since start.
    persist_failures: u64,
    /// The dynamic name+type pairs the last build of the zone does not answer.
    shadowed: Arc<[Shadowed]>,
    /// Shadowed pairs summed over builds, by reason.
    shadowed_total: BTreeMap<ShadowedBy, u64>,
    /// Names pushed since the last build that the zone's overlay takes.
    pub patches: BTreeSet<Name>,
    /// Pushes since the state file was last asked for.
    unpersisted_pushes: u64,
    /// While the overlay is folded into a new base: the names pushed since the fold started.
    pub folding: Option<BTreeSet<Name>>,
    /// The last build of the zone that failed.
    pub build_error: Option<String>,
    /// ExternalDNS's endpoints, as it wrote them (their records are in `held`).
    pub endpoints: Arc<ZoneEndpoints>,
    /// Why ExternalDNS's endpoints file could not be written or read, when it failed last.
    pub endpoints_error: Option<String>,
}

impl ZoneState {
    /// A zone of `config` with nothing loaded (a controller zone gets a sync status).
    pub fn new(config: &ZoneConfig) -> ZoneState {
        ZoneState { status: config.controller.as_ref().map(|_| SyncStatus::default()), ..ZoneState::default() }
    }

    /// Records held (a controller zone's count; pushes to a static zone are not counted).
    pub fn records(&self) -> usize {
        self.status.as_ref().map_or(0, |st| st.records)
    }

    /// A controller zone that has no data yet (neither controller nor state file).
    pub fn unloaded(&self) -> bool {
        self.status.as_ref().is_some_and(|st| st.origin == DataOrigin::None)
    }

    /// The zone's config changed: a zone that gained a controller starts its sync status.
    pub fn reconfigure(&mut self, config: &ZoneConfig) {
        if config.controller.is_some() && self.status.is_none() {
            self.status = Some(SyncStatus::default());
        }
    }

    // ─── controller syncs ────────────────────────────────────────────────────────────────

    /// A controller request started.
    pub fn sync_attempt(&mut self) {
        if let Some(st) = &mut self.status {
            st.last_attempt = Some(SystemTime::now());
        }
    }

    /// A controller request failed; the data in force stays.
    pub fn sync_failed(&mut self, kind: SyncKind, error: String) {
        if let Some(st) = &mut self.status {
            match kind {
                SyncKind::Snapshot => st.snapshot_errors += 1,
                SyncKind::Changes => st.changes_errors += 1,
            }
            st.last_error = Some(error);
        }
    }

    /// The controller answered with a response the guard refused; the data in force stays.
    pub fn sync_refused(&mut self, kind: SyncKind, error: String) {
        self.sync_failed(kind, error.clone());
        if let Some(st) = &mut self.status {
            st.refused = Some(error);
        }
    }

    /// The controller says nothing changed (since the data in force).
    pub fn sync_unchanged(&mut self) {
        if let Some(st) = &mut self.status {
            st.last_success = Some(SystemTime::now());
            st.last_error = None;
            st.refused = None;
        }
    }

    /// Takes a full record set from the controller (converted by the sync) in place of what
    /// the zone held; returns the write of its state file (DNS sees the data first).
    pub fn sync_accepted(&mut self, zone: &ZoneConfig, dir: &Path, payload: Payload) -> Option<PersistJob> {
        let apex = &zone.apex;
        let converted = payload.converted;
        if payload.received == 0 {
            tracing::warn!(zone = %apex, version_hash = %payload.version_hash, "controller sent an empty record set; the zone now has no controller records");
        }
        if converted.skipped_records > 0 || converted.skipped_ips > 0 {
            tracing::warn!(
                zone = %apex,
                skipped_records = converted.skipped_records,
                skipped_ips = converted.skipped_ips,
                first = %converted.reasons.join("; "),
                "skipped invalid controller records"
            );
        }
        let names = converted.nodes.len();
        let rrs = api::rr_count(&converted.nodes);
        let mut fresh = HeldZone::new(payload.version_hash.clone(), Held::Converted(Arc::new(converted.nodes)));
        if let Some(old) = self.held.take() {
            // ExternalDNS's records are a source of their own: the controller's data
            // replaces only its own and the webhook's.
            fresh.external = old.external;
            crate::snapshot::reclaim::later(old.held);
        }
        self.held = Some(fresh);
        if let Some(st) = &mut self.status {
            st.origin = DataOrigin::Controller;
            st.version_hash = Some(payload.version_hash.clone());
            st.records = rrs;
            st.last_success = Some(SystemTime::now());
            st.last_error = None;
            st.refused = None;
            st.skipped_records += converted.skipped_records as u64;
        }
        tracing::info!(zone = %apex, version_hash = %payload.version_hash, names, "controller data applied");
        self.persist_job(dir, zone)
    }

    // ─── pushes ──────────────────────────────────────────────────────────────────────────

    /// Applies a zone's checked push items: to the journal first when there is one (a change
    /// is acknowledged only once it is on disk, synced with the rest of the batch before the
    /// reply), then to the held records, reading and changing only the pushed names, which
    /// are marked for the next build. Returns the state-file write the pushes now call for,
    /// if any; a journal that cannot take them leaves everything as it was.
    pub fn apply_push(
        &mut self,
        zone: &ZoneConfig,
        state: &StateConfig,
        push: ZonePush,
    ) -> Result<Option<PersistJob>, JournalError> {
        let apex = &zone.apex;
        if state.journal {
            let dir = state.dir.as_path();
            let seq = self.journal_seq;
            let entry = journal::Entry { seq: seq + 1, records: push.records(), deletes: push.delete_items };
            match self.journal_append(dir, apex, &entry) {
                Ok(journal_len) => {
                    self.batch.push(Journaled { journal_len, seq, undo: Undo::default() });
                    if let Some(error) = self.journal_error.take() {
                        tracing::info!(zone = %apex, previous_error = %error, "the push journal takes pushes again");
                    }
                }
                Err(e) => {
                    let error = e.to_string();
                    self.journal_failed(
                        apex,
                        &error,
                        "cannot append to the push journal; push refused, nothing applied",
                    );
                    return Err(JournalError::Write { zone: apex.clone(), error });
                }
            }
        }
        let held = self.held.get_or_insert_with(HeldZone::empty);
        let (touched, rrs, undo) = held.apply_push(apex, zone.default_ttl, &push.updates, &push.deletes);
        if state.journal
            && let Some(last) = self.batch.last_mut()
        {
            last.undo = undo;
        }
        self.count_records(rrs);
        self.unpersisted_pushes += 1;
        tracing::info!(zone = %apex, updated = push.updates.len(), deleted = push.deletes.len(), "webhook push applied");
        // A fold under way rebuilds the overlay from the names pushed since it started.
        if let Some(since) = &mut self.folding {
            since.extend(touched.iter().cloned());
        }
        self.patches.extend(touched);
        Ok(if self.wants_persist(state.journal) { self.persist_job(&state.dir, zone) } else { None })
    }

    /// Whether the state file should be rewritten now: with the journal, the pushes are
    /// durable already, so only once they add up; without it, soon after every push.
    fn wants_persist(&self, journal: bool) -> bool {
        let delta = self.held.as_ref().map_or(0, |h| h.delta.len());
        let persist_names = (self.records() / PERSIST_FRACTION).clamp(MIN_PERSIST_NAMES, PERSIST_NAMES);
        !journal || delta >= persist_names || self.unpersisted_pushes >= PERSIST_PUSHES
    }

    /// Re-applies a journal entry at start-up (its items were checked when it was written).
    pub fn replay(&mut self, zone: &ZoneConfig, entry: &journal::Entry) {
        let apex = &zone.apex;
        let updates: Vec<(Name, u16, api::RecordJson)> = entry
            .records
            .iter()
            .filter_map(|r| api::check_push(r).ok().map(|(owner, rtype)| (owner, rtype, r.clone())))
            .filter(|(owner, _, _)| owner.is_within(apex))
            .collect();
        let deletes: Vec<(Name, u16)> = entry.deletes.iter().filter_map(|d| api::check_delete(d).ok()).collect();
        let held = self.held.get_or_insert_with(HeldZone::empty);
        let (_, rrs, _) = held.apply_push(apex, zone.default_ttl, &updates, &deletes);
        self.count_records(rrs);
    }

    /// Adds `rrs` (which may be negative) to a controller zone's record count.
    fn count_records(&mut self, rrs: i64) {
        if let Some(st) = &mut self.status {
            st.records = (st.records as i64 + rrs).max(0) as usize;
        }
    }

    /// The batch's journal entries are on disk: its pushes stand.
    pub fn batch_durable(&mut self) {
        self.batch.clear();
    }

    /// The batch's journal entries could not be made durable: its pushes are refused, so
    /// they are taken back (newest first), cut from the journal (a refused push must not
    /// come back at start-up) and their names built again. Returns whether there were any.
    pub fn batch_refused(&mut self, apex: &Name, error: &str) -> bool {
        if self.batch.is_empty() {
            return false;
        }
        while self.take_back_last(apex) {}
        self.journal_failed(apex, error, "cannot sync the push journal; the batch's pushes are refused and taken back");
        true
    }

    /// Takes the zone's part of the last journaled push back (another zone's journal refused
    /// the same push, or the batch's sync failed): its records, its journal entry, and its
    /// names built again. Returns whether there was one.
    pub fn take_back_last(&mut self, apex: &Name) -> bool {
        let Some(Journaled { journal_len, seq, undo }) = self.batch.pop() else { return false };
        self.count_records(undo.records);
        let names = undo.names.iter().map(|(n, _)| n.clone());
        if let Some(since) = &mut self.folding {
            since.extend(names.clone());
        }
        self.patches.extend(names);
        if let Some(held) = &mut self.held {
            held.undo(undo);
        }
        self.journal_seq = seq;
        if let Some(j) = &mut self.journal
            && let Err(e) = j.cut(journal_len)
        {
            tracing::error!(zone = %apex, error = %e, "cannot cut a refused push from the journal");
        }
        true
    }

    /// Records a journal failure: counted with the state-file failures, shown as the zone's
    /// `persist_error`, logged when it starts or changes.
    fn journal_failed(&mut self, apex: &Name, error: &str, what: &str) {
        self.persist_failures += 1;
        if self.journal_error.as_deref() != Some(error) {
            tracing::error!(zone = %apex, error = %error, "{what}");
            self.journal_error = Some(error.to_string());
        }
    }

    // ─── ExternalDNS ─────────────────────────────────────────────────────────────────────

    /// The endpoints with `change` applied, and the owners it touches (nothing is changed).
    pub fn endpoints_after(&self, change: &ZoneChange) -> (ZoneEndpoints, std::collections::BTreeSet<Name>) {
        let mut next = (*self.endpoints).clone();
        let touched = next.apply(change);
        (next, touched)
    }

    /// Takes ExternalDNS's endpoints (already kept on disk) and the records of the owners
    /// they changed, which are marked for the next build.
    pub fn set_endpoints(&mut self, zone: &ZoneConfig, next: ZoneEndpoints, touched: BTreeSet<Name>) {
        let held = self.held.get_or_insert_with(HeldZone::empty);
        held.set_external(touched.iter().cloned(), |n| next.types_at(n, zone.default_ttl));
        if let Some(since) = &mut self.folding {
            since.extend(touched.iter().cloned());
        }
        self.patches.extend(touched);
        self.endpoints = Arc::new(next);
        if let Some(error) = self.endpoints_error.take() {
            tracing::info!(zone = %zone.apex, previous_error = %error, "ExternalDNS endpoints kept on disk again");
        }
    }

    /// Reads ExternalDNS's endpoints at start-up (or when a reload lets ExternalDNS write
    /// the zone).
    pub fn load_endpoints(&mut self, config: &crate::config::Config, zone: &ZoneConfig) {
        let Some(cfg) = config.externaldns.as_ref().filter(|c| c.zones.contains(&zone.apex)) else { return };
        match endpoints_file::load(&config.state.dir, &zone.apex, cfg, &config.zones) {
            Ok(read) => {
                if !read.is_empty() {
                    tracing::info!(zone = %zone.apex, endpoints = read.len(), "read ExternalDNS's endpoints");
                }
                let owners: Vec<Name> = read.owners().cloned().collect();
                self.set_endpoints(zone, read, owners.into_iter().collect());
            }
            Err(e) => {
                tracing::error!(zone = %zone.apex, error = %e, "ExternalDNS's endpoints not read; it will write them again");
                self.endpoints_error = Some(e);
            }
        }
    }

    /// ExternalDNS may no longer write the zone: its records leave DNS (its file stays).
    pub fn drop_endpoints(&mut self, zone: &ZoneConfig) {
        let owners: BTreeSet<Name> = self.endpoints.owners().cloned().collect();
        self.set_endpoints(zone, ZoneEndpoints::default(), owners);
    }

    /// ExternalDNS's endpoints file could not be written: the change was not made.
    pub fn endpoints_failed(&mut self, apex: &Name, error: String) {
        self.persist_failures += 1;
        if self.endpoints_error.as_deref() != Some(error.as_str()) {
            tracing::error!(zone = %apex, error = %error, "cannot keep ExternalDNS's endpoints; the change is refused");
        }
        self.endpoints_error = Some(error);
    }

    // ─── the journal ─────────────────────────────────────────────────────────────────────

    /// Appends an entry (opening the journal on first use); durable once synced. Returns the
    /// journal's length before it.
    fn journal_append(&mut self, dir: &Path, apex: &Name, entry: &journal::Entry) -> std::io::Result<u64> {
        let j = match &mut self.journal {
            Some(j) => j,
            None => self.journal.insert(Journal::open(dir, apex, &[])?),
        };
        let len = j.len();
        j.append(entry)?;
        self.journal_seq = entry.seq;
        self.journal_unsynced = true;
        Ok(len)
    }

    /// The journal, when entries were appended since the last call: to be synced (one sync
    /// per journal for however many pushes the batch held) before pushes are acknowledged.
    pub fn take_unsynced_journal(&mut self) -> Option<Arc<File>> {
        std::mem::take(&mut self.journal_unsynced).then(|| self.journal.as_ref().map(Journal::file)).flatten()
    }

    /// Takes the journal read at start-up: its last sequence number and, when writable, the
    /// open journal to append to.
    pub fn resume_journal(&mut self, last_seq: u64, journal: Option<Journal>) {
        self.journal_seq = last_seq;
        self.journal = journal;
    }

    // ─── state files ─────────────────────────────────────────────────────────────────────

    /// The write of the zone's records into its state file, unless the file holds exactly
    /// them already.
    pub fn persist_job(&mut self, dir: &Path, zone: &ZoneConfig) -> Option<PersistJob> {
        let h = self.held.as_ref()?;
        if matches!(h.held, Held::Packed(_)) && h.delta.is_empty() {
            return None;
        }
        self.unpersisted_pushes = 0;
        Some(PersistJob {
            dir: dir.to_path_buf(),
            apex: zone.apex.clone(),
            api_zone: api::api_zone(&zone.apex),
            version_hash: h.version_hash.clone(),
            journal_seq: self.journal_seq,
            default_ttl: zone.default_ttl,
            base: h.held.clone(),
            delta: Arc::clone(&h.delta),
        })
    }

    /// A state-file write finished: its outcome is recorded, the journal folded, and the zone
    /// holds the compact form unless its records changed meanwhile (then a newer write is
    /// already queued). A failed write costs only the restart guarantee: it shows in
    /// `/health` and the metrics and is logged when a zone starts or stops failing, not once
    /// per write.
    pub fn persisted(&mut self, done: Persisted) {
        let zone = &done.job.apex;
        match done.result {
            Ok(()) => {
                // The state file now holds the journal's entries up to the job's.
                if let Some(j) = &mut self.journal
                    && let Err(e) = j.fold(&done.job.dir, zone, done.job.journal_seq)
                {
                    tracing::warn!(zone = %zone, error = %e, "cannot fold the push journal; it is replayed at start-up");
                }
                if let Some((error, failures)) = self.persist_error.take() {
                    tracing::info!(zone = %zone, failures, previous_error = %error, "state file written again");
                }
            }
            Err(error) => {
                self.persist_failures += 1;
                match &mut self.persist_error {
                    Some((last, failures)) => {
                        *failures += 1;
                        if *last != error {
                            tracing::error!(zone = %zone, error = %error, "state file write still failing, now with another error");
                            *last = error;
                        }
                    }
                    None => {
                        tracing::error!(zone = %zone, error = %error, "cannot write the state file; a restart would serve older data (logged once until it recovers)");
                        self.persist_error = Some((error, 1));
                    }
                }
            }
        }
        // What was written becomes the base, unless the zone's records were replaced
        // meanwhile; pushes since the job stay in the delta.
        if let Some(h) = &mut self.held
            && h.held.same(&done.job.base)
        {
            let old = std::mem::replace(&mut h.held, Held::Packed(done.packed));
            crate::snapshot::reclaim::later(old);
            if Arc::ptr_eq(&h.delta, &done.job.delta) {
                h.delta = Arc::default();
            } else {
                let written = &done.job.delta;
                Arc::make_mut(&mut h.delta).retain(|name, types| written.get(name) != Some(types));
            }
        }
    }

    /// Holds the state file's own record bytes as the zone's compact form (start-up, when the
    /// file was read sorted and indexed).
    pub fn hold_packed(&mut self, packed: super::held::Packed) {
        if let Some(h) = &mut self.held {
            let old = std::mem::replace(&mut h.held, Held::Packed(packed));
            crate::snapshot::reclaim::later(old);
        }
    }

    // ─── builds ──────────────────────────────────────────────────────────────────────────

    /// What a build of the zone reported.
    pub fn built(&mut self, report: ZoneReport) {
        for (_, _, by) in &report.shadowed {
            *self.shadowed_total.entry(*by).or_default() += 1;
        }
        self.shadowed = report.shadowed.into();
    }

    /// Which applied records of a push DNS does not answer, by (name, type).
    pub fn shadowed_by(&self) -> std::collections::HashMap<(Name, u16), ShadowedBy> {
        self.shadowed.iter().map(|(n, t, by)| ((n.clone(), *t), *by)).collect()
    }

    /// The zone as the admin API sees it, with its static layer as last compiled.
    pub fn view(&self, layer: Option<Arc<StaticLayer>>) -> ZoneView {
        ZoneView {
            status: self.status.clone(),
            held: self.held.as_ref().map(|h| h.held.clone()),
            delta: self.held.as_ref().map(|h| Arc::clone(&h.delta)),
            external: self.held.as_ref().map(|h| Arc::clone(&h.external)),
            endpoints: Arc::clone(&self.endpoints),
            layer,
            shadowed: Arc::clone(&self.shadowed),
            shadowed_total: self.shadowed_total.clone(),
            persist_error: match (&self.journal_error, &self.endpoints_error, &self.persist_error) {
                (Some(e), _, _) => Some(format!("push journal: {e}")),
                (None, Some(e), _) => Some(format!("ExternalDNS endpoints: {e}")),
                (None, None, e) => e.as_ref().map(|(e, _)| e.to_string()),
            },
            journal_failing: self.journal_error.is_some(),
            persist_failures: self.persist_failures,
            build_error: self.build_error.clone(),
            signatures: None,
        }
    }
}
