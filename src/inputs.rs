//! The current inputs of every zone (the validated config and the controller's records), the
//! per-zone sync status, and the rebuild that follows any change.
//!
//! Control-plane tasks (config reload, controller sync, later the webhook) change inputs
//! through [`Inputs`] behind one mutex; each change recompiles only the zone it touched and
//! publishes a new snapshot. The query path never sees this lock: it reads the snapshot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::builder::publisher::{Publisher, Rebuild, Shadowed, ShadowedBy, ZoneReport};
use crate::config::Config;
use crate::dns::name::Name;
use crate::dns::types::TYPE_CNAME;
use crate::elchi::api::{self, Payload};
use crate::elchi::state_file;
use crate::health::table::SharedHealth;
use crate::persist::PersistQueue;
use crate::snapshot::SnapshotHandle;
use crate::snapshot::records::Nodes;

/// Largest state file read for a zone without a controller (pushed records only); controller
/// zones use their `max_response_size`.
const DEFAULT_STATE_MAX: usize = 64 << 20;

/// What `/records` shows of a zone.
#[derive(Debug, Default)]
pub struct ZoneRecords {
    /// Name → RRsets DNS answers (static and dynamic; pools left out).
    pub answered: Vec<(Name, crate::snapshot::records::TypeMap)>,
    /// Dynamic RRsets DNS does not answer, with the reason.
    pub shadowed: Vec<(Name, u16, crate::snapshot::records::RRset, ShadowedBy)>,
}

/// Where a controller zone's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataOrigin {
    /// Nothing yet: the zone serves only its static records.
    None,
    /// The controller, in this process's lifetime.
    Controller,
    /// The last-known-good state file, until the controller answers.
    Disk,
}

impl DataOrigin {
    /// Lower-case label for JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DataOrigin::None => "none",
            DataOrigin::Controller => "controller",
            DataOrigin::Disk => "disk",
        }
    }
}

/// Sync state of one controller zone, for logs, metrics and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// Where the current data came from.
    pub origin: DataOrigin,
    /// Version hash of the current data.
    pub version_hash: Option<String>,
    /// Controller resource records currently held (upstream's `records_count`).
    pub records: usize,
    /// Last successful exchange with the controller (including "unchanged").
    pub last_success: Option<SystemTime>,
    /// Last attempt.
    pub last_attempt: Option<SystemTime>,
    /// Last error, cleared by a success.
    pub last_error: Option<String>,
    /// Failed snapshot requests.
    pub snapshot_errors: u64,
    /// Failed changes requests.
    pub changes_errors: u64,
    /// Records skipped as invalid in accepted responses.
    pub skipped_records: u64,
}

impl Default for SyncStatus {
    fn default() -> Self {
        SyncStatus {
            origin: DataOrigin::None,
            version_hash: None,
            records: 0,
            last_success: None,
            last_attempt: None,
            last_error: None,
            snapshot_errors: 0,
            changes_errors: 0,
            skipped_records: 0,
        }
    }
}

/// Which controller request an outcome belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// `GET /dns/snapshot`.
    Snapshot,
    /// `GET /dns/changes`.
    Changes,
}

impl SyncKind {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Snapshot => "snapshot",
            SyncKind::Changes => "changes",
        }
    }
}

/// A controller zone's records between rebuilds.
enum Held {
    /// Converted, until the state-file writer has stored them and swapped in the compact
    /// form; shared with that writer while it encodes them.
    Converted(Arc<Nodes>),
    /// The record list as JSON (what the state file holds): a few dozen bytes per record
    /// instead of hundreds, converted again only when the zone must be rebuilt for another
    /// reason (a config reload).
    Packed(Box<[u8]>),
}

struct HeldZone {
    version_hash: String,
    held: Held,
}

/// Everything the snapshot is built from.
pub struct Inputs {
    config: Arc<Config>,
    controller: HashMap<Name, HeldZone>,
    status: HashMap<Name, SyncStatus>,
    publisher: Publisher,
    started: SystemTime,
    stats: Arc<crate::server::stats::Stats>,
    health: SharedHealth,
    /// The state-file writer; without one, files are written at once (tools and benches).
    persist: Option<PersistQueue>,
    /// Zones whose last state-file write failed, with the error and the failures so far.
    persist_errors: HashMap<Name, (String, u64)>,
    /// Failed state-file writes of all zones since start.
    persist_failures: HashMap<Name, u64>,
    /// Per zone: the dynamic name+type pairs the last build of the zone does not answer.
    shadowed: HashMap<Name, Vec<Shadowed>>,
    /// Per zone and reason: shadowed pairs summed over builds (a counter, as the log line).
    shadowed_total: HashMap<(Name, ShadowedBy), u64>,
}

/// A zone's records as they are to be written to its state file.
pub struct PersistView {
    dir: std::path::PathBuf,
    apex: Name,
    api_zone: String,
    version_hash: String,
    nodes: Arc<Nodes>,
}

impl PersistView {
    /// The record list as compact JSON (the state file's `records`).
    fn pack(&self) -> Box<[u8]> {
        serde_json::to_vec(&api::to_records(&self.nodes)).expect("records serialize").into_boxed_slice()
    }

    /// Encodes the records and writes the state file atomically; returns the compact form
    /// to hold afterwards and the outcome of the write (for [`Inputs::persisted`]).
    pub fn write(&self) -> (Box<[u8]>, Result<(), String>) {
        let packed = self.pack();
        let written = state_file::save_packed(&self.dir, &self.apex, &self.api_zone, &self.version_hash, &packed)
            .map_err(|e| format!("cannot write the state file in {}: {e}", self.dir.display()));
        (packed, written)
    }
}

/// [`Inputs`] shared between control-plane tasks.
pub type SharedInputs = Arc<Mutex<Inputs>>;

impl Inputs {
    /// Loads the last-known-good controller data from disk and builds the first snapshot.
    pub fn new(config: Config) -> Inputs {
        let mut controller = HashMap::new();
        let mut status = HashMap::new();
        // Static zones may hold records pushed through the webhook.
        for zone in &config.zones {
            let mut st = SyncStatus::default();
            let max = zone.controller.as_ref().map_or(DEFAULT_STATE_MAX, |c| c.max_response_size);
            match state_file::load(&config.state.dir, &zone.apex, max) {
                Ok(Some(payload)) => {
                    let converted = api::convert(&payload.records, &zone.apex, zone.default_ttl);
                    tracing::info!(
                        zone = %zone.apex,
                        version_hash = %payload.version_hash,
                        records = converted.nodes.len(),
                        "serving last-known-good controller data from disk until the controller answers"
                    );
                    st.origin = DataOrigin::Disk;
                    st.records = api::rr_count(&converted.nodes);
                    let held = Held::Packed(pack(&payload));
                    st.version_hash = Some(payload.version_hash.clone());
                    controller.insert(zone.apex.clone(), HeldZone { version_hash: payload.version_hash, held });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(zone = %zone.apex, error = %e, "ignoring the state file; waiting for the controller")
                }
            }
            if zone.controller.is_some() {
                status.insert(zone.apex.clone(), st);
            }
        }
        let converted = unpack_all(&config, &controller);
        let health: SharedHealth = Arc::default();
        health.lock().expect("health lock").retain_targets(&crate::health::targets(&config));
        let unloaded = status.iter().filter(|(_, st)| st.origin == DataOrigin::None).map(|(z, _)| z.clone()).collect();
        let (publisher, reports) = Publisher::new(
            &config,
            &borrow_all(&controller, &converted),
            &unloaded,
            &health.lock().expect("health lock"),
        );
        drop(converted);
        let stats = Arc::new(crate::server::stats::Stats::default());
        stats.set_zone_names(publisher.slot_names());
        let mut inputs = Inputs {
            config: Arc::new(config),
            controller,
            status,
            publisher,
            started: SystemTime::now(),
            stats,
            health,
            persist: None,
            persist_errors: HashMap::new(),
            persist_failures: HashMap::new(),
            shadowed: HashMap::new(),
            shadowed_total: HashMap::new(),
        };
        inputs.note_reports(reports);
        inputs
    }

    /// Routes state-file writes to the writer thread from now on.
    pub fn set_persist_queue(&mut self, queue: PersistQueue) {
        self.persist = Some(queue);
    }

    /// The handle DNS listeners read from.
    pub fn handle(&self) -> SnapshotHandle {
        self.publisher.handle().clone()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    /// The health table the probes write.
    pub fn health(&self) -> SharedHealth {
        Arc::clone(&self.health)
    }

    /// Recompiles every zone after a health transition.
    pub fn health_changed(&mut self) {
        self.rebuild(Rebuild::All);
    }

    /// The query counters the listeners write and `/metrics` reads.
    pub fn stats(&self) -> Arc<crate::server::stats::Stats> {
        Arc::clone(&self.stats)
    }

    /// When these inputs were created (the start of the process).
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// The records a zone answers from static and dynamic data, merged as DNS merges them
    /// (pool records are left out: `/records` lists pool members itself), in name order;
    /// and the dynamic RRsets DNS does not answer, with the reason.
    pub fn zone_records(&self, apex: &Name) -> ZoneRecords {
        let Some(zone) = self.config.zones.iter().find(|z| z.apex == *apex) else { return ZoneRecords::default() };
        let unpacked;
        let dynamic = match self.controller.get(apex).map(|h| &h.held) {
            Some(Held::Converted(nodes)) => Some(&**nodes),
            Some(Held::Packed(bytes)) => {
                unpacked = unpack(bytes, apex, zone.default_ttl);
                Some(&unpacked)
            }
            None => None,
        };
        let layer = self.publisher.static_layer(zone);
        let (merged, shadowed) = crate::builder::publisher::merge(layer, dynamic, zone.static_records, &zone.pools);
        let answered = merged
            .into_iter()
            .map(|(n, t)| {
                let mut t = t.into_owned();
                t.retain(|set| set.source != crate::snapshot::records::Source::Pool);
                (n.clone(), t)
            })
            .filter(|(_, t)| !t.is_empty())
            .collect();
        let shadowed = shadowed
            .into_iter()
            .filter_map(|(n, rtype, by)| {
                let set = dynamic?.get(&n)?.get(&rtype)?.clone();
                Some((n, rtype, set, by))
            })
            .collect();
        ZoneRecords { answered, shadowed }
    }

    /// True when a controller zone has data from its controller or its state file (webhook
    /// pushes alone do not count: they cover only the names they name).
    pub fn has_controller_data(&self, zone: &Name) -> bool {
        self.status.get(zone).is_some_and(|st| st.origin != DataOrigin::None)
    }

    /// Controller zones whose controller data has never loaded: their names that no other
    /// source answers get SERVFAIL, not NXDOMAIN.
    fn unloaded(&self) -> std::collections::HashSet<Name> {
        self.status.iter().filter(|(_, st)| st.origin == DataOrigin::None).map(|(z, _)| z.clone()).collect()
    }

    /// Sync status of a controller zone.
    pub fn status(&self, zone: &Name) -> Option<&SyncStatus> {
        self.status.get(zone)
    }

    /// Swaps in a new config; controller data of zones that remain is kept.
    pub fn replace_config(&mut self, config: Config) {
        self.controller.retain(|apex, _| config.zones.iter().any(|z| z.apex == *apex));
        self.status
            .retain(|apex, _| self.controller.contains_key(apex) || config.zones.iter().any(|z| z.apex == *apex));
        for zone in config.zones.iter().filter(|z| z.controller.is_some()) {
            self.status.entry(zone.apex.clone()).or_default();
        }
        // Members that did not change keep their health; new ones start in their initial state.
        self.health.lock().expect("health lock").retain_targets(&crate::health::targets(&config));
        self.config = Arc::new(config);
        self.rebuild(Rebuild::All);
    }

    fn rebuild(&mut self, which: Rebuild<'_>) {
        let converted = match which {
            Rebuild::All => unpack_all(&self.config, &self.controller),
            Rebuild::Zone(_) => HashMap::new(),
        };
        let dynamic = borrow_all(&self.controller, &converted);
        let health = Arc::clone(&self.health);
        let unloaded = self.unloaded();
        let reports =
            self.publisher.publish(&self.config, &dynamic, &unloaded, &health.lock().expect("health lock"), which);
        self.stats.set_zone_names(self.publisher.slot_names());
        drop(dynamic);
        crate::snapshot::reclaim::later(converted);
        self.note_reports(reports);
    }

    fn note_reports(&mut self, reports: HashMap<Name, ZoneReport>) {
        for (zone, report) in reports {
            for (_, _, by) in &report.shadowed {
                *self.shadowed_total.entry((zone.clone(), *by)).or_default() += 1;
            }
            self.shadowed.insert(zone, report.shadowed);
        }
        self.shadowed.retain(|zone, _| self.config.zones.iter().any(|z| z.apex == *zone));
    }

    /// Per zone and reason: the dynamic name+type pairs not answered now, and summed over
    /// builds.
    pub fn shadowed_counts(&self) -> Vec<(Name, ShadowedBy, usize, u64)> {
        let mut out: std::collections::BTreeMap<(Name, ShadowedBy), (usize, u64)> = Default::default();
        for (zone, list) in &self.shadowed {
            for (_, _, by) in list {
                out.entry((zone.clone(), *by)).or_default().0 += 1;
            }
        }
        for ((zone, by), total) in &self.shadowed_total {
            out.entry((zone.clone(), *by)).or_default().1 = *total;
        }
        out.into_iter().map(|((z, by), (now, total))| (z, by, now, total)).collect()
    }

    /// Marks the start of a controller request.
    pub fn sync_attempt(&mut self, zone: &Name) {
        if let Some(st) = self.status.get_mut(zone) {
            st.last_attempt = Some(SystemTime::now());
        }
    }

    /// Records a failed controller request; the data in force stays.
    pub fn sync_failed(&mut self, zone: &Name, kind: SyncKind, error: String) {
        if let Some(st) = self.status.get_mut(zone) {
            match kind {
                SyncKind::Snapshot => st.snapshot_errors += 1,
                SyncKind::Changes => st.changes_errors += 1,
            }
            st.last_error = Some(error);
        }
    }

    /// Records an "unchanged" answer.
    pub fn sync_unchanged(&mut self, zone: &Name) {
        if let Some(st) = self.status.get_mut(zone) {
            st.last_success = Some(SystemTime::now());
            st.last_error = None;
        }
    }

    /// Accepts a full record set from the controller: converts it and swaps it in. Returns
    /// the state directory to persist it in (outside the lock, after DNS sees the data), or
    /// `None` when the zone is no longer configured.
    pub fn sync_accepted(&mut self, zone: &Name, payload: &Payload) -> Option<std::path::PathBuf> {
        // A reload may have removed the zone or its controller while this request ran.
        let cfg = self.config.zones.iter().find(|z| z.apex == *zone && z.controller.is_some())?;
        let converted = api::convert(&payload.records, zone, cfg.default_ttl);
        if payload.records.is_empty() {
            tracing::warn!(zone = %zone, version_hash = %payload.version_hash, "controller sent an empty record set; the zone now has no controller records");
        }
        if converted.skipped_records > 0 || converted.skipped_ips > 0 {
            tracing::warn!(
                zone = %zone,
                skipped_records = converted.skipped_records,
                skipped_ips = converted.skipped_ips,
                first = %converted.reasons.join("; "),
                "skipped invalid controller records"
            );
        }
        let names = converted.nodes.len();
        let rrs = api::rr_count(&converted.nodes);
        let fresh =
            HeldZone { version_hash: payload.version_hash.clone(), held: Held::Converted(Arc::new(converted.nodes)) };
        if let Some(old) = self.controller.insert(zone.clone(), fresh) {
            crate::snapshot::reclaim::later(old.held);
        }
        // The status first: the build reads whether the zone has controller data.
        if let Some(st) = self.status.get_mut(zone) {
            st.origin = DataOrigin::Controller;
            st.version_hash = Some(payload.version_hash.clone());
            st.records = rrs;
            st.last_success = Some(SystemTime::now());
            st.last_error = None;
            st.skipped_records += converted.skipped_records as u64;
        }
        self.rebuild(Rebuild::Zone(zone));
        tracing::info!(zone = %zone, version_hash = %payload.version_hash, names, "controller data applied");
        Some(self.config.state.dir.clone())
    }

    /// Accepts a controller record set and then writes it as the zone's last-known-good
    /// state; the lock is held only for the swap.
    pub fn accept_and_persist(shared: &SharedInputs, zone: &Name, payload: &Payload) {
        let dir = {
            let mut inputs = shared.lock().expect("inputs lock");
            let Some(dir) = inputs.sync_accepted(zone, payload) else { return };
            if let Some(queue) = &inputs.persist {
                queue.dirty(zone.clone());
                return;
            }
            dir
        };
        // DNS already answers the new data; the compact form and the file come after.
        let packed = pack(payload);
        let written = state_file::save_packed(&dir, zone, &payload.zone, &payload.version_hash, &packed)
            .map_err(|e| format!("cannot write the state file in {}: {e}", dir.display()));
        let mut inputs = shared.lock().expect("inputs lock");
        inputs.persisted(zone, written);
        inputs.store_packed(zone, &payload.version_hash, packed);
    }

    /// Records the outcome of a state-file write. A failed write costs only the restart
    /// guarantee, so it is not fatal, but it shows in `/health` and the metrics, and is
    /// logged when a zone starts or stops failing (not once per write).
    pub fn persisted(&mut self, zone: &Name, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                if let Some((error, failures)) = self.persist_errors.remove(zone) {
                    tracing::info!(zone = %zone, failures, previous_error = %error, "state file written again");
                }
            }
            Err(error) => {
                *self.persist_failures.entry(zone.clone()).or_default() += 1;
                match self.persist_errors.get_mut(zone) {
                    Some((last, failures)) => {
                        *failures += 1;
                        if *last != error {
                            tracing::error!(zone = %zone, error = %error, "state file write still failing, now with another error");
                            *last = error;
                        }
                    }
                    None => {
                        tracing::error!(zone = %zone, error = %error, "cannot write the state file; a restart would serve older data (logged once until it recovers)");
                        self.persist_errors.insert(zone.clone(), (error, 1));
                    }
                }
            }
        }
    }

    /// The error of a zone's last state-file write, when it failed.
    pub fn persist_error(&self, zone: &Name) -> Option<&str> {
        self.persist_errors.get(zone).map(|(e, _)| e.as_str())
    }

    /// Failed state-file writes of a zone since start.
    pub fn persist_failures(&self, zone: &Name) -> u64 {
        self.persist_failures.get(zone).copied().unwrap_or(0)
    }

    /// Replaces freshly converted records by their compact form, unless newer data came in.
    pub fn store_packed(&mut self, zone: &Name, version_hash: &str, packed: Box<[u8]>) {
        if let Some(h) = self.controller.get_mut(zone)
            && h.version_hash == version_hash
            && matches!(h.held, Held::Converted(_))
        {
            let old = std::mem::replace(&mut h.held, Held::Packed(packed));
            crate::snapshot::reclaim::later(old);
        }
    }

    /// What the state-file writer should write for `zone`: `None` when its records are
    /// already on disk in their compact form, or it has none.
    pub fn persist_view(&self, zone: &Name) -> Option<PersistView> {
        let h = self.controller.get(zone)?;
        let Held::Converted(nodes) = &h.held else { return None };
        Some(PersistView {
            dir: self.config.state.dir.clone(),
            apex: zone.clone(),
            api_zone: api::api_zone(zone),
            version_hash: h.version_hash.clone(),
            nodes: Arc::clone(nodes),
        })
    }

    /// After the writer stored `view`: holds the compact form instead, unless the records
    /// changed since the view was taken (then a newer write is already queued).
    pub fn store_packed_if_current(&mut self, zone: &Name, view: &PersistView, packed: Box<[u8]>) {
        if let Some(h) = self.controller.get_mut(zone)
            && let Held::Converted(nodes) = &h.held
            && Arc::ptr_eq(nodes, &view.nodes)
        {
            let old = std::mem::replace(&mut h.held, Held::Packed(packed));
            crate::snapshot::reclaim::later(old);
        }
    }

    /// A zone's controller records, ready to be changed in place: converted back from the
    /// compact form if need be, shared with nobody.
    fn nodes_mut(&mut self, zone: &Name, default_ttl: u32) -> &mut Nodes {
        let h = self
            .controller
            .entry(zone.clone())
            .or_insert_with(|| HeldZone { version_hash: String::new(), held: Held::Converted(Arc::default()) });
        if let Held::Packed(bytes) = &h.held {
            let nodes = unpack(bytes, zone, default_ttl);
            let old = std::mem::replace(&mut h.held, Held::Converted(Arc::new(nodes)));
            crate::snapshot::reclaim::later(old);
        }
        match &mut h.held {
            // A copy only when the state-file writer is encoding these very records.
            Held::Converted(nodes) => Arc::make_mut(nodes),
            Held::Packed(_) => unreachable!("converted above"),
        }
    }
}

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
    /// Applied records DNS does not answer, and why.
    pub shadowed: Vec<PushShadowed>,
}

impl Inputs {
    /// The zone (longest label-aware apex match) that contains `name`.
    fn zone_for(&self, name: &Name) -> Option<Name> {
        self.config
            .zones
            .iter()
            .filter(|z| name.is_within(&z.apex))
            .max_by_key(|z| z.apex.wire_len())
            .map(|z| z.apex.clone())
    }

    /// Applies a `/notify` push: every item is checked first. Invalid and out-of-zone items
    /// are skipped and listed, the valid ones are applied together (one rebuild per touched
    /// zone, so DNS answers all of them when this returns) and their zones' state files are
    /// written. With `atomic`, any bad item rejects the whole push and nothing is applied.
    pub fn push(&mut self, body: &api::NotifyJson, atomic: bool) -> Result<PushOutcome, PushError> {
        let mut outcome = PushOutcome::default();
        let mut updates: HashMap<Name, Vec<(Name, u16, api::RecordJson)>> = HashMap::new();
        let mut deletes: HashMap<Name, Vec<(Name, u16)>> = HashMap::new();
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
                Ok((zone, owner, rtype)) => deletes.entry(zone).or_default().push((owner, rtype)),
                Err(message) => outcome.skipped.push(PushError { message, section: "deletes", item }),
            }
        }
        if atomic && let Some(first) = outcome.skipped.first() {
            return Err(first.clone());
        }
        let zones: std::collections::BTreeSet<Name> = updates.keys().chain(deletes.keys()).cloned().collect();
        for zone in zones {
            let Some(cfg) = self.config.zones.iter().find(|z| z.apex == zone) else { continue };
            let default_ttl = cfg.default_ttl;
            // Only the pushed names are touched: the zone's other records stay as they are.
            let nodes = self.nodes_mut(&zone, default_ttl);
            let zone_updates = updates.get(&zone).map_or(&[][..], |v| v);
            let zone_deletes = deletes.get(&zone).map_or(&[][..], |v| v);
            api::apply_push_nodes(nodes, &zone, default_ttl, zone_updates, zone_deletes);
            let rrs = api::rr_count(nodes);
            outcome.updated += zone_updates.len();
            outcome.deleted += zone_deletes.len();
            self.rebuild(Rebuild::Zone(&zone));
            if let Some(st) = self.status.get_mut(&zone) {
                st.records = rrs;
            }
            match &self.persist {
                Some(queue) => queue.dirty(zone.clone()),
                None => self.write_now(&zone),
            }
            tracing::info!(zone = %zone, updated = zone_updates.len(), deleted = zone_deletes.len(), "webhook push applied");
        }
        // One index per touched zone: a zone may have many shadowed pairs and a push many items.
        let mut index: HashMap<Name, HashMap<(Name, u16), ShadowedBy>> = HashMap::new();
        for (item, zone, name, rtype) in applied_items {
            let shadowed = index.entry(zone.clone()).or_insert_with(|| {
                self.shadowed.get(&zone).into_iter().flatten().map(|(n, t, by)| ((n.clone(), *t), *by)).collect()
            });
            if let Some(&by) = shadowed.get(&(name.clone(), rtype)) {
                outcome.shadowed.push(PushShadowed { item, name, by });
            }
        }
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
}

impl Inputs {
    /// Writes a zone's state file before returning (when there is no writer thread).
    fn write_now(&mut self, zone: &Name) {
        let Some(view) = self.persist_view(zone) else { return };
        let (packed, written) = view.write();
        self.persisted(zone, written);
        self.store_packed_if_current(zone, &view, packed);
    }
}

/// The record list of a payload as compact JSON.
fn pack(payload: &Payload) -> Box<[u8]> {
    serde_json::to_vec(&payload.records).expect("records serialize").into_boxed_slice()
}

/// Converts every packed zone (for a rebuild of all zones).
fn unpack_all(config: &Config, held: &HashMap<Name, HeldZone>) -> HashMap<Name, Nodes> {
    let mut out = HashMap::new();
    for (apex, h) in held {
        if let Held::Packed(bytes) = &h.held {
            let default_ttl = config.zones.iter().find(|z| z.apex == *apex).map_or(300, |z| z.default_ttl);
            out.insert(apex.clone(), unpack(bytes, apex, default_ttl));
        }
    }
    out
}

/// Converts a zone's compact record list back into records (none, logged, if it does not
/// decode: it was encoded by us, so that would be a bug, not bad input).
fn unpack(bytes: &[u8], apex: &Name, default_ttl: u32) -> Nodes {
    match serde_json::from_slice::<Vec<api::RecordJson>>(bytes) {
        Ok(records) => api::convert(&records, apex, default_ttl).nodes,
        Err(e) => {
            tracing::error!(zone = %apex, error = %e, "held controller records do not decode");
            Nodes::new()
        }
    }
}

/// Every zone's controller records, converted or just unpacked.
fn borrow_all<'a>(held: &'a HashMap<Name, HeldZone>, unpacked: &'a HashMap<Name, Nodes>) -> HashMap<Name, &'a Nodes> {
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
