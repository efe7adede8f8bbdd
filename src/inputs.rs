//! The current inputs of every zone (the validated config and the controller's records), the
//! per-zone sync status, and the rebuild that follows any change.
//!
//! Control-plane tasks (config reload, controller sync, later the webhook) change inputs
//! through [`Inputs`] behind one mutex; each change recompiles only the zone it touched and
//! publishes a new snapshot. The query path never sees this lock: it reads the snapshot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::config::Config;
use crate::dns::name::Name;
use crate::snapshot::SnapshotHandle;
use crate::snapshot::publisher::{Publisher, Rebuild};
use crate::sources::controller::api::{self, Nodes, Payload};
use crate::sources::controller::state_file;

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
    /// Controller records (names) currently held.
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
    /// Dynamic name+type pairs dropped because static data defines them.
    pub conflicts: u64,
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
            conflicts: 0,
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

/// Everything the snapshot is built from.
pub struct Inputs {
    config: Arc<Config>,
    controller: HashMap<Name, Nodes>,
    status: HashMap<Name, SyncStatus>,
    publisher: Publisher,
}

/// [`Inputs`] shared between control-plane tasks.
pub type SharedInputs = Arc<Mutex<Inputs>>;

impl Inputs {
    /// Loads the last-known-good controller data from disk and builds the first snapshot.
    pub fn new(config: Config) -> Inputs {
        let mut controller = HashMap::new();
        let mut status = HashMap::new();
        for zone in config.zones.iter().filter(|z| z.controller.is_some()) {
            let mut st = SyncStatus::default();
            match state_file::load(&config.state.dir, &zone.apex) {
                Ok(Some(payload)) => {
                    let converted = api::convert(&payload.records, &zone.apex, zone.default_ttl);
                    tracing::info!(
                        zone = %zone.apex,
                        version_hash = %payload.version_hash,
                        records = converted.nodes.len(),
                        "serving last-known-good controller data from disk until the controller answers"
                    );
                    st.origin = DataOrigin::Disk;
                    st.version_hash = Some(payload.version_hash);
                    st.records = converted.nodes.len();
                    controller.insert(zone.apex.clone(), converted.nodes);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(zone = %zone.apex, error = %e, "ignoring the state file; waiting for the controller")
                }
            }
            status.insert(zone.apex.clone(), st);
        }
        let publisher = Publisher::new(&config, &controller);
        Inputs { config: Arc::new(config), controller, status, publisher }
    }

    /// The handle DNS listeners read from.
    pub fn handle(&self) -> SnapshotHandle {
        self.publisher.handle().clone()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    /// Sync status of a controller zone.
    pub fn status(&self, zone: &Name) -> Option<&SyncStatus> {
        self.status.get(zone)
    }

    /// Swaps in a new config; controller data of zones that remain is kept.
    pub fn replace_config(&mut self, config: Config) {
        self.controller.retain(|apex, _| config.zones.iter().any(|z| z.apex == *apex && z.controller.is_some()));
        self.status
            .retain(|apex, _| self.controller.contains_key(apex) || config.zones.iter().any(|z| z.apex == *apex));
        for zone in config.zones.iter().filter(|z| z.controller.is_some()) {
            self.status.entry(zone.apex.clone()).or_default();
        }
        self.config = Arc::new(config);
        self.rebuild(Rebuild::All);
    }

    fn rebuild(&mut self, which: Rebuild<'_>) {
        let reports = self.publisher.publish(&self.config, &self.controller, which);
        for (zone, report) in reports {
            if let Some(st) = self.status.get_mut(&zone) {
                st.conflicts += report.conflicts as u64;
            }
        }
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
        let cfg = self.config.zones.iter().find(|z| z.apex == *zone)?;
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
        if let Some(old) = self.controller.insert(zone.clone(), converted.nodes) {
            crate::snapshot::reclaim::later(old);
        }
        self.rebuild(Rebuild::Zone(zone));
        if let Some(st) = self.status.get_mut(zone) {
            st.origin = DataOrigin::Controller;
            st.version_hash = Some(payload.version_hash.clone());
            st.records = names;
            st.last_success = Some(SystemTime::now());
            st.last_error = None;
            st.skipped_records += converted.skipped_records as u64;
        }
        tracing::info!(zone = %zone, version_hash = %payload.version_hash, names, "controller data applied");
        Some(self.config.state.dir.clone())
    }

    /// Accepts a controller record set and then writes it as the zone's last-known-good
    /// state; the lock is held only for the swap.
    pub fn accept_and_persist(shared: &SharedInputs, zone: &Name, payload: &Payload) {
        let dir = shared.lock().expect("inputs lock").sync_accepted(zone, payload);
        // A failed write only costs the restart guarantee, so it is logged, not fatal.
        if let Some(dir) = dir
            && let Err(e) = state_file::save(&dir, zone, payload)
        {
            tracing::error!(zone = %zone, dir = %dir.display(), error = %e, "cannot write the state file");
        }
    }
}
