//! Everything snapshots are built from, owned by the builder thread alone: the config in
//! force, each zone's controller/webhook records and sync status, what the last build
//! reported, and the outcome of state-file writes. Events change it and mark what they
//! touched; [`State::build`] then recompiles just that and publishes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::sync::Arc;
use std::time::SystemTime;

use super::held::{self, Held, HeldZone};
use super::overlay::fold_names;
use super::persist::{Jobs, PersistJob, Persisted};
use super::publisher::{Publisher, Rebuild, Scope, Shadowed, ShadowedBy, ZoneReport};
use super::status::{DataOrigin, SyncKind, SyncStatus};
use super::views::{View, ZoneView};
use crate::config::Config;
use crate::dns::name::Name;
use crate::elchi::api::{self, Payload};
use crate::elchi::journal::{self, Journal};
use crate::elchi::state_file;
use crate::health::Observations;
use crate::health::probed::Target;
use crate::health::verdict::Verdicts;
use crate::snapshot::SnapshotHandle;

/// Largest state file read for a zone without a controller (pushed records only); controller
/// zones use their `max_response_size`.
const DEFAULT_STATE_MAX: usize = 64 << 20;

/// The builder's inputs and what it knows of its last builds.
pub struct State {
    pub(super) config: Arc<Config>,
    pub(super) held: HashMap<Name, HeldZone>,
    pub(super) status: HashMap<Name, SyncStatus>,
    pub(super) publisher: Publisher,
    started: SystemTime,
    /// Where probes and the cluster exchange publish what they observe.
    observations: Observations,
    /// The config's probe targets.
    targets: Vec<Target>,
    /// The verdicts the last build compiled the pools with (and the view shows).
    verdicts: Arc<Verdicts>,
    /// The state-file writer; without one, jobs wait for [`State::write_pending`] (tools and
    /// benches).
    jobs: Option<Jobs>,
    unsent: Vec<PersistJob>,
    /// Each zone's push journal, once it has one.
    pub(super) journals: HashMap<Name, Journal>,
    /// The last journal sequence number of each zone.
    pub(super) journal_seq: HashMap<Name, u64>,
    /// Journals appended to since the last sync.
    pub(super) journal_unsynced: HashSet<Name>,
    persist_errors: HashMap<Name, (String, u64)>,
    persist_failures: HashMap<Name, u64>,
    /// Per zone: the dynamic name+type pairs the last build of the zone does not answer.
    pub(super) shadowed: HashMap<Name, Arc<[Shadowed]>>,
    shadowed_total: HashMap<(Name, ShadowedBy), u64>,
    /// What the next build must recompile.
    pub(super) dirty: Rebuild,
    /// Names pushed per zone since the last build that the zone's overlay takes.
    pub(super) patches: HashMap<Name, BTreeSet<Name>>,
    /// Pushes per zone since its state file was last asked for.
    pub(super) unpersisted_pushes: HashMap<Name, u64>,
    /// Where fold threads report (none: overlays are folded on the builder, tools and tests).
    events: Option<std::sync::mpsc::Sender<super::Event>>,
    /// Zones whose overlay is being folded, with the names pushed since the fold started.
    pub(super) folding: HashMap<Name, BTreeSet<Name>>,
    /// The last build that failed, per zone it was building, and failures since start.
    build_errors: HashMap<Name, String>,
    build_failures: u64,
    /// Makes the next build panic (tests of failure containment).
    #[cfg(test)]
    pub(super) fail_next_build: bool,
}

impl State {
    /// Loads the last-known-good controller data from disk and builds the first snapshot.
    pub fn new(config: Config, observations: Observations) -> State {
        State::load(config, observations, true)
    }

    /// Like [`State::new`], but only reads the state directory: journals are not opened for
    /// appending and nothing is written (for `gslbd explain` beside a running server).
    pub fn read_only(config: Config, observations: Observations) -> State {
        State::load(config, observations, false)
    }

    fn load(config: Config, observations: Observations, writable: bool) -> State {
        let mut held = HashMap::new();
        let mut status = HashMap::new();
        let mut journals = HashMap::new();
        let mut journal_seq = HashMap::new();
        let mut replayed = Vec::new();
        let mut from_file = Vec::new();
        // Static zones may hold records pushed through the webhook.
        for zone in &config.zones {
            let mut st = SyncStatus::default();
            let max = zone.controller.as_ref().map_or(DEFAULT_STATE_MAX, |c| c.max_response_size);
            let mut file_seq = 0;
            match state_file::load(&config.state.dir, &zone.apex, max) {
                Ok(Some(loaded)) => {
                    file_seq = loaded.journal_seq;
                    // Decoded once, for the first build; afterwards the zone holds the file's
                    // own record bytes as its compact form (see below) when they are sorted.
                    let started = std::time::Instant::now();
                    let (nodes, packed) =
                        held::unpack_indexed(&loaded.records_json, &zone.apex, zone.default_ttl, loaded.sorted);
                    let took_ms = started.elapsed().as_millis() as u64;
                    tracing::debug!(zone = %zone.apex, took_ms, "state file decoded");
                    tracing::info!(
                        zone = %zone.apex,
                        version_hash = %loaded.version_hash,
                        records = nodes.len(),
                        "serving last-known-good controller data from disk until the controller answers"
                    );
                    st.origin = DataOrigin::Disk;
                    st.records = api::rr_count(&nodes);
                    st.version_hash = Some(loaded.version_hash.clone());
                    let zone_held = Held::Converted(Arc::new(nodes));
                    held.insert(zone.apex.clone(), HeldZone::new(loaded.version_hash, zone_held));
                    from_file.push((zone.apex.clone(), packed));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(zone = %zone.apex, error = %e, "ignoring the state file; waiting for the controller")
                }
            }
            // Pushes acknowledged after the state file was written are in the journal.
            match journal::read(&config.state.dir, &zone.apex) {
                Ok(read) => {
                    if let Some(why) = &read.torn {
                        tracing::warn!(zone = %zone.apex, "ignoring the end of the push journal: {why}");
                    }
                    let newer: Vec<&journal::Entry> = read.entries.iter().filter(|e| e.seq > file_seq).collect();
                    if !newer.is_empty() {
                        let h = held.entry(zone.apex.clone()).or_insert_with(HeldZone::empty);
                        for e in &newer {
                            let (_, rrs) = super::webhook::replay(h, &zone.apex, zone.default_ttl, e);
                            st.records = (st.records as i64 + rrs).max(0) as usize;
                        }
                        tracing::info!(zone = %zone.apex, pushes = newer.len(), "replayed acknowledged pushes from the journal");
                        replayed.push(zone.apex.clone());
                    }
                    let last = read.entries.last().map_or(file_seq, |e| e.seq.max(file_seq));
                    journal_seq.insert(zone.apex.clone(), last);
                    if writable && !read.entries.is_empty() {
                        match Journal::open(&config.state.dir, &zone.apex, &read.ends) {
                            Ok(j) => {
                                journals.insert(zone.apex.clone(), j);
                            }
                            Err(e) => tracing::error!(zone = %zone.apex, error = %e, "cannot open the push journal"),
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(zone = %zone.apex, error = %e, "cannot read the push journal; its pushes are lost")
                }
            }
            if zone.controller.is_some() {
                status.insert(zone.apex.clone(), st);
            }
        }
        let targets = crate::health::targets(&config);
        let verdicts = Arc::new(Verdicts::compute(&targets, &observations));
        let mut state = State {
            config: Arc::new(config),
            held,
            status,
            publisher: Publisher::new(),
            started: SystemTime::now(),
            observations,
            targets,
            verdicts,
            jobs: None,
            unsent: Vec::new(),
            journals,
            journal_seq,
            journal_unsynced: HashSet::new(),
            persist_errors: HashMap::new(),
            persist_failures: HashMap::new(),
            shadowed: HashMap::new(),
            shadowed_total: HashMap::new(),
            dirty: Rebuild::All,
            patches: HashMap::new(),
            unpersisted_pushes: HashMap::new(),
            events: None,
            folding: HashMap::new(),
            build_errors: HashMap::new(),
            build_failures: 0,
            #[cfg(test)]
            fail_next_build: false,
        };
        if let Err(e) = state.build() {
            // Nothing was published yet: serve an empty snapshot rather than nothing.
            tracing::error!(error = %e, "the first build failed");
        }
        // The zones as the file holds them keep the file's bytes as their compact form (a file
        // not sorted by name is written again, sorted); a new state file folds replayed
        // journal entries in.
        if !writable {
            return state;
        }
        for (zone, packed) in from_file {
            match (packed, state.held.get_mut(&zone)) {
                (Some(packed), Some(h)) => {
                    let old = std::mem::replace(&mut h.held, Held::Packed(packed));
                    crate::snapshot::reclaim::later(old);
                }
                _ => state.persist(&zone),
            }
        }
        for zone in replayed {
            state.persist(&zone);
        }
        state
    }

    /// Routes state-file writes to the writer thread from now on.
    pub fn set_jobs(&mut self, jobs: Jobs) {
        for job in std::mem::take(&mut self.unsent) {
            jobs.send(job);
        }
        self.jobs = Some(jobs);
    }

    /// Whether full overlays are folded on threads of their own.
    pub(super) fn folds_in_background(&self) -> bool {
        self.events.is_some()
    }

    /// Folds overlays on threads of their own from now on, reporting to `events`.
    pub fn set_events(&mut self, events: std::sync::mpsc::Sender<super::Event>) {
        self.events = Some(events);
    }

    /// Starts a fold for every zone whose overlay is full and not being folded yet.
    pub fn start_folds(&mut self) {
        let Some(events) = &self.events else { return };
        let config = Arc::clone(&self.config);
        for zone in &config.zones {
            if self.folding.contains_key(&zone.apex)
                || self.publisher.overlay_len(&zone.apex) < self.fold_at(&zone.apex)
            {
                continue;
            }
            let unloaded = self.status.get(&zone.apex).is_some_and(|st| st.origin == DataOrigin::None);
            let Some(job) = self.publisher.fold_job(&config, &zone.apex, self.held.get(&zone.apex), unloaded) else {
                continue;
            };
            let tx = events.clone();
            let spawned = std::thread::Builder::new().name("gslbd-fold".into()).spawn(move || {
                crate::priority::control_plane_thread();
                let done = job.run();
                // The builder is gone only at shutdown; the fold is moot then.
                let _ = tx.send(super::Event::Folded(Box::new(done)));
            });
            match spawned {
                Ok(_) => {
                    self.folding.insert(zone.apex.clone(), BTreeSet::new());
                }
                Err(e) => {
                    tracing::warn!(zone = %zone.apex, error = %e, "cannot start a fold thread; recompiling the zone here");
                    self.dirty.add(&zone.apex, Scope::Data);
                }
            }
        }
    }

    /// A fold finished: its base replaces the zone's (unless the zone was recompiled since),
    /// and the names pushed meanwhile make up the new overlay.
    pub fn folded(&mut self, done: super::fold::Folded) {
        let since = self.folding.remove(&done.apex).unwrap_or_default();
        match done.result {
            Ok((base, content, _report)) => {
                if self.publisher.install_fold(&done.apex, &done.from, base, content) {
                    tracing::debug!(zone = %done.apex, pushed_meanwhile = since.len(), "overlay folded into the base");
                    self.patches.entry(done.apex.clone()).or_default().extend(since);
                }
            }
            Err(error) => {
                self.build_failures += 1;
                tracing::error!(zone = %done.apex, error = %error, "folding the pushed names into the zone failed; recompiling it");
                self.dirty.add(&done.apex, Scope::Data);
            }
        }
    }

    /// The handle DNS listeners read from.
    pub fn handle(&self) -> SnapshotHandle {
        self.publisher.handle().clone()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    fn mark(&mut self, zone: &Name, scope: Scope) {
        self.dirty.add(zone, scope);
    }

    /// Recompiles what events marked and publishes one snapshot. A panic or error inside is
    /// contained: the previous snapshot keeps serving, the failure is logged, counted and
    /// shown per zone, and the zones stay marked for the next build.
    pub fn build(&mut self) -> Result<(), String> {
        if self.dirty.is_empty() && self.patches.is_empty() {
            return Ok(());
        }
        let which = std::mem::take(&mut self.dirty);
        let patches = std::mem::take(&mut self.patches);
        let mut zones: Vec<Name> = match &which {
            Rebuild::All => self.config.zones.iter().map(|z| z.apex.clone()).collect(),
            Rebuild::Zones(z) => z.keys().cloned().collect(),
        };
        zones.extend(patches.keys().filter(|z| !which.needs_data(z)).cloned());
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.build_inner(&which, &patches)));
        let error = match outcome {
            Ok(reports) => {
                let took_ms = started.elapsed().as_millis() as u64;
                tracing::debug!(zones = zones.len(), patched = patches.len(), took_ms, "built and published");
                self.note_reports(reports);
                for z in &zones {
                    self.build_errors.remove(z);
                }
                return Ok(());
            }
            Err(panic) => format!("build failed: {}", super::panic_message(&*panic)),
        };
        self.build_failures += 1;
        tracing::error!(error = %error, zones = zones.len(), "build failed; the previous snapshot keeps serving");
        for z in zones {
            self.build_errors.insert(z, error.clone());
        }
        // Build them again with the next event (pushed names with their whole zone).
        self.dirty.merge(which);
        for zone in patches.keys() {
            self.dirty.add(zone, Scope::Data);
        }
        Err(error)
    }

    fn build_inner(&mut self, which: &Rebuild, patches: &HashMap<Name, BTreeSet<Name>>) -> HashMap<Name, ZoneReport> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_build) {
            panic!("injected build failure");
        }
        let unpacked = held::unpack_some(&self.config, &self.held, |z| which.needs_data(z));
        let dynamic = held::borrow_all(&self.held, &unpacked);
        let unloaded: HashSet<Name> =
            self.status.iter().filter(|(_, st)| st.origin == DataOrigin::None).map(|(z, _)| z.clone()).collect();
        let (held, config) = (&self.held, &self.config);
        let dynamic_of = |zone: &Name, name: &Name| {
            let ttl = config.zone(zone).map_or(300, |z| z.default_ttl);
            held.get(zone)?.get(name, zone, ttl)
        };
        let reports =
            self.publisher.publish(&self.config, &dynamic, &unloaded, &self.verdicts, which, patches, &dynamic_of);
        drop(dynamic);
        crate::snapshot::reclaim::later(unpacked);
        reports
    }

    fn note_reports(&mut self, reports: HashMap<Name, ZoneReport>) {
        for (zone, report) in reports {
            for (_, _, by) in report.shadowed.iter() {
                *self.shadowed_total.entry((zone.clone(), *by)).or_default() += 1;
            }
            self.shadowed.insert(zone, report.shadowed.into());
        }
        let config = Arc::clone(&self.config);
        self.shadowed.retain(|zone, _| config.zones.iter().any(|z| z.apex == *zone));
    }

    /// The read-only view of everything the admin API and metrics show.
    pub fn view(&self) -> View {
        let zones = self
            .config
            .zones
            .iter()
            .map(|z| {
                let mut totals = BTreeMap::new();
                for ((zone, by), n) in &self.shadowed_total {
                    if *zone == z.apex {
                        totals.insert(*by, *n);
                    }
                }
                let v = ZoneView {
                    status: self.status.get(&z.apex).cloned(),
                    held: self.held.get(&z.apex).map(|h| h.held.clone()),
                    delta: self.held.get(&z.apex).map(|h| Arc::clone(&h.delta)),
                    layer: self.publisher.layer(&z.apex),
                    shadowed: self.shadowed.get(&z.apex).cloned().unwrap_or_else(|| Arc::new([])),
                    shadowed_total: totals,
                    persist_error: self.persist_errors.get(&z.apex).map(|(e, _)| e.clone()),
                    persist_failures: self.persist_failures.get(&z.apex).copied().unwrap_or(0),
                    build_error: self.build_errors.get(&z.apex).cloned(),
                };
                (z.apex.clone(), v)
            })
            .collect();
        View {
            config: Arc::clone(&self.config),
            started: self.started,
            zones,
            health: Arc::clone(&self.verdicts),
            build_failures: self.build_failures,
        }
    }

    /// Swaps in a new config; controller data of zones that remain is kept.
    pub fn replace_config(&mut self, config: Config) {
        self.held.retain(|apex, _| config.zones.iter().any(|z| z.apex == *apex));
        let held = &self.held;
        self.status.retain(|apex, _| held.contains_key(apex) || config.zones.iter().any(|z| z.apex == *apex));
        for zone in config.zones.iter().filter(|z| z.controller.is_some()) {
            self.status.entry(zone.apex.clone()).or_default();
        }
        // Members that did not change keep their health (the probes' slots carry over); new
        // ones start in their initial state.
        self.targets = crate::health::targets(&config);
        self.verdicts = Arc::new(Verdicts::compute(&self.targets, &self.observations));
        let old = &self.config;
        let geo_only = old.geo != config.geo
            && (&old.path, &old.server, &old.zones, &old.state, &old.admin)
                == (&config.path, &config.server, &config.zones, &config.state, &config.admin);
        self.config = Arc::new(config);
        if geo_only {
            // New location data (a map's file changed): only the zones' answers by location
            // are recompiled, against the new maps.
            self.publisher.maps_changed();
            let with_geo: Vec<Name> =
                self.config.zones.iter().filter(|z| z.uses_geo()).map(|z| z.apex.clone()).collect();
            for zone in with_geo {
                self.mark(&zone, Scope::Pools);
            }
        } else {
            self.dirty = Rebuild::All;
        }
    }

    /// An observation changed: the verdicts are computed again, and the zones with a pool
    /// member whose tally changed recompile their pools' answers (their dynamic layer only;
    /// the rest of the zone is reused as it is).
    pub fn health_changed(&mut self) {
        let next = Verdicts::compute(&self.targets, &self.observations);
        // Connected but short of observers (a lost connection is logged by the exchange).
        let short = |v: &Verdicts| v.cluster().filter(|c| c.connected).map(|_| v.fallback_targets());
        match (short(&self.verdicts).unwrap_or(0), short(&next)) {
            (0, Some(n)) if n > 0 => {
                tracing::warn!(
                    targets = n,
                    "cluster: too few fresh observations; local verdicts decide for these targets"
                )
            }
            (b, Some(0)) if b > 0 => tracing::info!("cluster: every target has enough fresh observations again"),
            _ => {}
        }
        let changed: Vec<Name> = self
            .config
            .zones
            .iter()
            .filter(|z| {
                z.pools.iter().flat_map(|p| &p.members).any(|m| {
                    let ips = m.ipv4.iter().map(|&ip| ip.into()).chain(m.ipv6.iter().map(|&ip| ip.into()));
                    ips.into_iter().any(|ip| !next.same_for(&self.verdicts, &Target::new(ip, &m.check)))
                })
            })
            .map(|z| z.apex.clone())
            .collect();
        self.verdicts = Arc::new(next);
        for zone in changed {
            self.mark(&zone, Scope::Pools);
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

    /// Accepts a full record set from the controller (converted by the sync) and marks the
    /// zone. The state file is written once the writer gets to it (DNS sees the data first).
    pub fn sync_accepted(&mut self, zone: &Name, payload: Payload) {
        // A reload may have removed the zone or its controller while this request ran.
        if !self.config.zones.iter().any(|z| z.apex == *zone && z.controller.is_some()) {
            return;
        }
        let converted = payload.converted;
        if payload.received == 0 {
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
        let fresh = HeldZone::new(payload.version_hash.clone(), Held::Converted(Arc::new(converted.nodes)));
        if let Some(old) = self.held.insert(zone.clone(), fresh) {
            crate::snapshot::reclaim::later(old.held);
        }
        if let Some(st) = self.status.get_mut(zone) {
            st.origin = DataOrigin::Controller;
            st.version_hash = Some(payload.version_hash.clone());
            st.records = rrs;
            st.last_success = Some(SystemTime::now());
            st.last_error = None;
            st.skipped_records += converted.skipped_records as u64;
        }
        self.mark(zone, Scope::Data);
        self.persist(zone);
        tracing::info!(zone = %zone, version_hash = %payload.version_hash, names, "controller data applied");
    }

    /// Hands the zone's records to the state-file writer (or writes them now, without one).
    pub(super) fn persist(&mut self, zone: &Name) {
        let Some(h) = self.held.get(zone) else { return };
        if matches!(h.held, Held::Packed(_)) && h.delta.is_empty() {
            // The state file holds exactly this.
            return;
        }
        self.unpersisted_pushes.remove(zone);
        let job = PersistJob {
            dir: self.config.state.dir.clone(),
            apex: zone.clone(),
            api_zone: api::api_zone(zone),
            version_hash: h.version_hash.clone(),
            journal_seq: self.journal_seq.get(zone).copied().unwrap_or(0),
            default_ttl: self.config.zone(zone).map_or(300, |z| z.default_ttl),
            base: h.held.clone(),
            delta: Arc::clone(&h.delta),
        };
        // Sent once the build is published (see `send_jobs`): a write of a big zone would
        // otherwise compete with that build for the CPU.
        self.unsent.push(job);
    }

    /// Hands the queued state-file writes to the writer thread (they wait for
    /// [`State::write_pending`] without one).
    pub fn send_jobs(&mut self) {
        if let Some(jobs) = &self.jobs {
            for job in std::mem::take(&mut self.unsent) {
                jobs.send(job);
            }
        }
    }

    /// The size at which the zone's overlay is folded (it grows with the zone).
    pub(super) fn fold_at(&self, apex: &Name) -> usize {
        fold_names(self.status.get(apex).map_or(0, |st| st.records))
    }

    /// The journals with entries appended since the last call, to be made durable (one sync
    /// per journal for however many pushes the batch held) before pushes are acknowledged.
    pub fn unsynced_journals(&mut self) -> Vec<(Name, Arc<File>)> {
        std::mem::take(&mut self.journal_unsynced)
            .into_iter()
            .filter_map(|zone| self.journals.get(&zone).map(|j| (zone, j.file())))
            .collect()
    }

    /// Without a writer thread: writes the state files that changes asked for.
    pub fn write_pending(&mut self) {
        for job in std::mem::take(&mut self.unsent) {
            let done = job.write();
            self.persisted(done);
        }
    }

    /// A state-file write finished: its outcome is recorded, and the zone holds the compact
    /// form unless its records changed meanwhile (then a newer write is already queued).
    /// A failed write costs only the restart guarantee: it shows in `/health` and the metrics
    /// and is logged when a zone starts or stops failing, not once per write.
    pub fn persisted(&mut self, done: Persisted) {
        let zone = done.job.apex.clone();
        match done.result {
            Ok(()) => {
                // The state file now holds the journal's entries up to the job's.
                if let Some(j) = self.journals.get_mut(&zone)
                    && let Err(e) = j.fold(&done.job.dir, &zone, done.job.journal_seq)
                {
                    tracing::warn!(zone = %zone, error = %e, "cannot fold the push journal; it is replayed at start-up");
                }
                if let Some((error, failures)) = self.persist_errors.remove(&zone) {
                    tracing::info!(zone = %zone, failures, previous_error = %error, "state file written again");
                }
            }
            Err(error) => {
                *self.persist_failures.entry(zone.clone()).or_default() += 1;
                match self.persist_errors.get_mut(&zone) {
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
        // What was written becomes the base, unless the zone's records were replaced
        // meanwhile; pushes since the job stay in the delta.
        if let Some(h) = self.held.get_mut(&zone)
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
}

/// Syncs the journals [`State::unsynced_journals`] gave: what was appended to them is durable
/// when this returns `Ok`.
pub fn sync_journals(journals: &[(Name, Arc<File>)]) -> Result<(), String> {
    let mut failed = None;
    for (zone, file) in journals {
        if let Err(e) = file.sync_data() {
            tracing::error!(zone = %zone, error = %e, "cannot sync the push journal");
            failed = Some(format!("the push journal of {zone} cannot be synced: {e}"));
        }
    }
    failed.map_or(Ok(()), Err)
}
