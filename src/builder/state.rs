//! Everything snapshots are built from, owned by the builder thread alone, and the one step
//! a batch of events goes through: apply each event to the state of the zones it touches,
//! compile what they marked, publish the snapshot and the admin view, then reply.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::SystemTime;

use tokio::sync::oneshot;

use super::compile::overlay::fold_names;
use super::compile::signatures::{self, ZoneSignatures};
use super::compile::{Changes, Compiler, Inputs, Patch, Rebuild, Scope};
use super::event::{
    BuildError, Event, ExternalDnsApplied, ExternalDnsFailure, ExternalDnsReply, JournalError, MemberStatesFailure,
    MemberStatesReply, PushFailure, PushReply,
};
use super::held;
use super::load;
use super::persist::{Jobs, PersistJob, Persisted};
use super::publish::Publisher;
use super::push::{self, PushOutcome};
use super::views::{View, Views};
use super::zone::ZoneState;
use crate::config::Config;
use crate::dns::name::Name;
use crate::elchi::api::{NotifyJson, Payload};
use crate::health::Observations;
use crate::health::member_state::{AdminState, MemberStates, Selector, Wanted};
use crate::health::probed::Target;
use crate::health::verdict::Verdicts;
use crate::snapshot::SnapshotHandle;

/// An overlay being folded takes up to this many times its fold size before pushes wait for
/// a recompile on the builder (its compile cost grows with it).
const MAX_OVERLAY_FOLDS: usize = 4;

/// The builder's inputs and what it knows of its last builds.
pub struct State {
    config: Arc<Config>,
    /// One per zone of the config.
    pub(super) zones: HashMap<Name, ZoneState>,
    compiler: Compiler,
    publisher: Publisher,
    /// Each zone's transfer and its history (IXFR).
    transfers: super::transfers::Transfers,
    /// A zone with transfers changed the form of its held records (publish them anew).
    republish_transfers: bool,
    started: SystemTime,
    /// Where probes and the cluster exchange publish what they observe.
    observations: Observations,
    /// The config's probe targets.
    targets: Vec<Target>,
    /// The verdicts the last build compiled the pools with (and the view shows).
    verdicts: Arc<Verdicts>,
    /// Operators' drain and disable states (`POST /members/state`), kept in the state
    /// directory.
    member_states: Arc<MemberStates>,
    /// What the next build must recompile.
    pub(super) dirty: Rebuild,
    /// The state-file writer; without one, jobs wait for [`State::write_pending`] (tools and
    /// benches).
    jobs: Option<Jobs>,
    unsent: Vec<PersistJob>,
    /// Where fold threads report (none: overlays are folded on the builder, tools and tests).
    events: Option<Sender<Event>>,
    /// Builds that failed since start.
    build_failures: u64,
    /// The last changes, for `GET /events`.
    log: super::event_log::EventLog,
    /// Each controller zone's last sync failure logged as an event (one entry per new error).
    sync_errors: HashMap<Name, String>,
    /// Journals may be opened for appending and state files written (not so for `explain`).
    writable: bool,
    /// Signed zones' signature files: when each was last written, and a write under way.
    sig_saves: HashMap<Name, (std::time::Instant, Option<std::thread::JoinHandle<()>>)>,
    /// Makes the next build panic (tests of failure containment).
    #[cfg(test)]
    pub(super) fail_next_build: bool,
}

/// Pushes applied in a batch, waiting for its build.
type Waiting = Vec<(oneshot::Sender<PushReply>, Result<PushOutcome, PushFailure>)>;

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
        let loaded = load::load(&config, writable);
        let targets = crate::health::targets(&config);
        let verdicts = Arc::new(Verdicts::compute(&targets, &observations));
        let member_states = MemberStates::load(&config.state.dir).unwrap_or_else(|e| {
            // Unreadable states are not guessed at: every member is enabled until an operator
            // sets them again (the file is written anew at the next change).
            tracing::error!(error = %e, "member drain/disable states not read; every member is enabled");
            MemberStates::default()
        });
        if member_states.iter().next().is_some() {
            tracing::info!(members = member_states.iter().count(), "read the members' drain/disable states");
        }
        let mut state = State {
            config: Arc::new(config),
            zones: loaded.zones,
            compiler: Compiler::default(),
            publisher: Publisher::default(),
            transfers: Default::default(),
            republish_transfers: false,
            started: SystemTime::now(),
            observations,
            targets,
            verdicts,
            member_states: Arc::new(member_states),
            dirty: Rebuild::All,
            jobs: None,
            unsent: Vec::new(),
            events: None,
            build_failures: 0,
            log: Default::default(),
            sync_errors: HashMap::new(),
            writable,
            sig_saves: HashMap::new(),
            #[cfg(test)]
            fail_next_build: false,
        };
        state.load_signatures();
        if let Err(e) = state.build() {
            // Nothing was published yet: serve an empty snapshot rather than nothing.
            tracing::error!(error = %e, "the first build failed");
        }
        if !writable {
            return state;
        }
        // The zones as the file holds them keep the file's bytes as their compact form (a
        // file not sorted by name is written again, sorted); a new state file folds replayed
        // journal entries in.
        for (zone, packed) in loaded.from_file {
            match (packed, state.zones.get_mut(&zone)) {
                (Some(packed), Some(z)) => z.hold_packed(packed),
                _ => state.persist(&zone),
            }
        }
        for zone in loaded.replayed {
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

    /// Folds overlays on threads of their own from now on, reporting to `events`.
    pub fn set_events(&mut self, events: Sender<Event>) {
        self.events = Some(events);
    }

    /// The handle DNS listeners read from.
    pub fn handle(&self) -> SnapshotHandle {
        self.publisher.handle().clone()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    /// One batch through the change path: applies the events in order, builds once,
    /// publishes the snapshot and the view (into `views`), and then answers the requests that
    /// waited for the build, so that what they read next already shows their change. Returns
    /// whether a stop was asked for.
    pub fn apply(&mut self, events: Vec<Event>, views: Option<&Views>) -> bool {
        let mut stop = false;
        let mut pushes: Waiting = Vec::new();
        let mut reloads = Vec::new();
        let mut member_changes = Vec::new();
        let mut external_changes = Vec::new();
        for event in events {
            match event {
                Event::SyncAttempt(zone) => {
                    if let Some(z) = self.zones.get_mut(&zone) {
                        z.sync_attempt();
                    }
                }
                Event::SyncFailed { zone, kind, error } => {
                    self.log_sync_error(&zone, "controller sync failed", &error.to_string());
                    if let Some(z) = self.zones.get_mut(&zone) {
                        z.sync_failed(kind, error);
                    }
                }
                Event::SyncRefused { zone, kind, error } => {
                    self.log_sync_error(
                        &zone,
                        "controller response refused; the data in force stays",
                        &error.to_string(),
                    );
                    if let Some(z) = self.zones.get_mut(&zone) {
                        z.sync_refused(kind, error);
                    }
                }
                Event::SyncUnchanged(zone) => {
                    self.log_sync_recovered(&zone);
                    if let Some(z) = self.zones.get_mut(&zone) {
                        z.sync_unchanged();
                    }
                }
                Event::SyncAccepted { zone, payload } => {
                    self.log_sync_recovered(&zone);
                    self.sync_accepted(&zone, *payload);
                    let records = self.zones.get(&zone).map_or(0, |z| z.records());
                    self.log.add(
                        "sync",
                        Some(&zone),
                        format!("controller data accepted: {records} records"),
                        serde_json::json!({"records": records}),
                    );
                }
                Event::Push { body, atomic, reply } => {
                    let outcome = self.push(&body, atomic);
                    self.log_push(&outcome);
                    pushes.push((reply, outcome));
                }
                Event::HealthChanged => self.health_changed(),
                Event::Reload { config, reply } => {
                    self.replace_config(*config);
                    self.log.add(
                        "reload",
                        None,
                        "configuration reloaded",
                        serde_json::json!({"zones": self.config.zones.len()}),
                    );
                    reloads.push(reply);
                }
                Event::Persisted(done) => self.persisted(*done),
                Event::Folded(done) => self.folded(*done),
                Event::Stop => stop = true,
                Event::Renew => self.renew(),
                Event::MemberStates { selector, wanted, by, reply } => {
                    let outcome = self.member_states(&selector, wanted, &by);
                    if let Ok(changed) = &outcome {
                        let word =
                            |s: Option<crate::health::member_state::AdminState>| s.map_or("enabled", |s| s.as_str());
                        for c in changed {
                            let (pool, from, to) = (c.key.pool.to_dotless(), word(c.before), word(c.now));
                            self.log.add(
                                "members",
                                None,
                                format!("{pool}/{}: {from} → {to} (by {by})", c.key.member),
                                serde_json::json!({"pool": pool, "member": c.key.member, "from": from, "to": to, "by": by}),
                            );
                        }
                    }
                    member_changes.push((reply, outcome));
                }
                Event::ExternalDns { changes, reply } => {
                    let outcome = self.externaldns(&changes);
                    match &outcome {
                        Ok(applied) => {
                            for (zone, owners) in &applied.zones {
                                self.log.add(
                                    "externaldns",
                                    Some(zone),
                                    format!("ExternalDNS changes applied at {owners} names"),
                                    serde_json::json!({"names": owners}),
                                );
                            }
                        }
                        Err(e) => self.log.add(
                            "externaldns",
                            None,
                            format!("ExternalDNS changes refused: {e}"),
                            serde_json::json!({}),
                        ),
                    }
                    external_changes.push((reply, outcome));
                }
            }
        }
        // One sync per touched journal for the whole batch, before any push is acknowledged;
        // on a second thread while the batch builds and publishes, so a push waits for the
        // longer of the two, not for both.
        let journals = self.unsynced_journals();
        let (built, durable) = std::thread::scope(|scope| {
            let syncing = (!journals.is_empty()).then(|| scope.spawn(|| sync_journals(&journals)));
            let built = self.build();
            if let Some(views) = views {
                views.store(Arc::new(self.view()));
            }
            let durable = syncing.map_or(Ok(()), |s| {
                s.join().unwrap_or_else(|panic| {
                    let zone = journals.first().map(|(z, _)| z.clone()).unwrap_or_else(Name::root);
                    Err(JournalError::Sync { zone, error: super::compile::panic_message(&*panic) })
                })
            });
            (built, durable)
        });
        self.settle_batch(&durable, views);
        self.save_signatures(stop);
        self.send_jobs();
        self.start_folds();
        self.reply(pushes, &built, &durable);
        for reply in reloads {
            let _ = reply.send(());
        }
        for (reply, outcome) in member_changes {
            let _ = reply.send(outcome);
        }
        for (reply, outcome) in external_changes {
            let answer = match (&built, outcome) {
                (_, Err(e)) => Err(e),
                (Ok(()), Ok(applied)) => Ok(applied),
                (Err(e), Ok(_)) => Err(ExternalDnsFailure::NotBuilt(e.clone())),
            };
            let _ = reply.send(answer);
        }
        if stop {
            // Fold the pushes into the state files on the way out (the journals have them
            // already; this keeps the next start-up's replay short).
            let pushed: Vec<Name> = self
                .zones
                .iter()
                .filter(|(_, z)| z.held.as_ref().is_some_and(|h| !h.delta.is_empty()))
                .map(|(n, _)| n.clone())
                .collect();
            for zone in pushed {
                self.persist(&zone);
            }
            self.send_jobs();
        }
        stop
    }

    /// Reads the signed zones' signature files, for their first compile.
    fn load_signatures(&mut self) {
        for zone in &self.config.zones {
            let Some(keys) = &zone.dnssec else { continue };
            let path = signatures::path(&self.config.state.dir, &zone.apex);
            let started = std::time::Instant::now();
            match ZoneSignatures::load(&path, Arc::clone(keys)) {
                Ok(Some(store)) => {
                    let took_ms = started.elapsed().as_millis() as u64;
                    tracing::info!(zone = %zone.apex, signatures = store.len(), took_ms, "read the zone's signatures");
                    self.compiler.preload(zone.apex.clone(), store);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(zone = %zone.apex, error = %e, "ignoring the signatures file; the zone is signed anew")
                }
            }
        }
    }

    /// Writes the signatures of signed zones that made new ones, each at most every
    /// [`signatures::SAVE_GAP`] on a thread of its own; at `stop`, whatever is unsaved, here.
    fn save_signatures(&mut self, stop: bool) {
        if !self.writable {
            return;
        }
        for zone in &self.config.zones {
            let Some(store) = zone.dnssec.as_ref().and(self.compiler.signatures(&zone.apex)) else { continue };
            let entry = self.sig_saves.entry(zone.apex.clone()).or_insert((std::time::Instant::now(), None));
            if entry.1.as_ref().is_some_and(|t| !t.is_finished()) {
                if !stop {
                    continue;
                }
                if let Some(t) = entry.1.take() {
                    let _ = t.join();
                }
            }
            if !store.unsaved() || (!stop && entry.0.elapsed() < signatures::SAVE_GAP && entry.1.is_some()) {
                continue;
            }
            let path = signatures::path(&self.config.state.dir, &zone.apex);
            let apex = zone.apex.clone();
            let write = move || {
                if let Err(e) = store.save(&path) {
                    tracing::warn!(zone = %apex, error = %e, "cannot write the zone's signatures (a restart signs it anew)");
                }
            };
            entry.0 = std::time::Instant::now();
            if stop {
                write();
            } else {
                let low = move || {
                    // Whole-zone work no query waits for: behind the listeners for the CPU.
                    crate::priority::background_thread();
                    write()
                };
                entry.1 = std::thread::Builder::new().name("gslbd-sigs".into()).spawn(low).ok();
            }
        }
    }

    /// How long until a signed zone's earliest signature comes within its refresh time (at
    /// least 5 seconds, at most an hour: the builder wakes up then); sooner when signatures
    /// wait to be written.
    pub fn renewal_wait(&self) -> std::time::Duration {
        let unsaved = self
            .config
            .zones
            .iter()
            .any(|z| z.dnssec.is_some() && self.compiler.signatures(&z.apex).is_some_and(|s| s.unsaved()));

        let now = crate::dnssec::now();
        let due = self
            .config
            .zones
            .iter()
            .filter_map(|z| Some((z.dnssec.as_ref()?.refresh, self.compiler.signature_expiry(&z.apex)?)))
            .map(|(refresh, expiry)| expiry.saturating_sub(refresh).saturating_sub(now))
            .min()
            .unwrap_or(3600);
        let due = std::time::Duration::from_secs(u64::from(due.clamp(5, 3600)));
        if unsaved && self.writable { due.min(signatures::SAVE_GAP) } else { due }
    }

    /// Recompiles the signed zones whose earliest signature is within its refresh time: the
    /// compile makes those signatures again (and every other one of the zone due soon, so
    /// renewals come in batches), off the query path.
    fn renew(&mut self) {
        let now = crate::dnssec::now();
        for zone in &self.config.zones {
            let (Some(keys), Some(expiry)) = (&zone.dnssec, self.compiler.signature_expiry(&zone.apex)) else {
                continue;
            };
            if expiry.saturating_sub(now) <= keys.refresh + 5 {
                tracing::info!(zone = %zone.apex, expires_in_s = expiry.saturating_sub(now), "renewing signatures");
                self.compiler.renew(&zone.apex);
                self.dirty.add(&zone.apex, Scope::Layer);
            }
        }
    }

    /// Settles the batch's pushes with its journal sync: they stand when it worked; when it
    /// failed they are all refused (a push may span zones, and each answer is all or
    /// nothing), taken back, and the zones built again, so that what DNS serves is what
    /// was acknowledged. Their state-file writes queued meanwhile are dropped with them.
    fn settle_batch(&mut self, durable: &Result<(), JournalError>, views: Option<&Views>) {
        let error = match durable {
            Ok(()) => {
                for z in self.zones.values_mut() {
                    z.batch_durable();
                }
                return;
            }
            Err(e) => e.to_string(),
        };
        let refused: Vec<Name> =
            self.zones.iter_mut().filter_map(|(apex, z)| z.batch_refused(apex, &error).then(|| apex.clone())).collect();
        if refused.is_empty() {
            return;
        }
        self.unsent.retain(|job| !refused.contains(&job.apex));
        // A failure here is recorded with the zones and retried with the next event.
        let _ = self.build();
        if let Some(views) = views {
            views.store(Arc::new(self.view()));
        }
    }

    /// Answers the batch's pushes: acknowledged once built and durable.
    fn reply(&self, pushes: Waiting, built: &Result<(), BuildError>, durable: &Result<(), JournalError>) {
        for (reply, outcome) in pushes {
            let answer = match (built, outcome) {
                // A rejected push changed nothing: its answer does not wait for a build.
                (_, Err(e)) => Err(e),
                (Ok(()), Ok(_)) if durable.is_err() => Err(PushFailure::Journal(durable.clone().unwrap_err())),
                (Ok(()), Ok(o)) => {
                    Ok(o.finish(|zone| self.zones.get(zone).map(ZoneState::shadowed_by).unwrap_or_default()))
                }
                (Err(e), Ok(_)) => Err(PushFailure::NotBuilt(e.clone())),
            };
            let _ = reply.send(answer);
        }
    }

    // ─── events ──────────────────────────────────────────────────────────────────────────

    /// Accepts a full record set from the controller (converted by the sync) and marks the
    /// zone. The state file is written once the writer gets to it (DNS sees the data first).
    pub fn sync_accepted(&mut self, apex: &Name, payload: Payload) {
        // A reload may have removed the zone or its controller while this request ran.
        let Some(cfg) = self.config.zone(apex).filter(|z| z.controller.is_some()) else { return };
        let Some(zone) = self.zones.get_mut(apex) else { return };
        let job = zone.sync_accepted(cfg, &self.config.state.dir, payload);
        self.unsent.extend(job);
        self.dirty.add(apex, Scope::Data);
    }

    /// Applies a `/notify` push to the held records: every item is checked first. Invalid and
    /// out-of-zone items are skipped and listed, the valid ones are applied together and
    /// their zones marked for the next build (the reply goes out after it, so DNS answers all
    /// of them by then). With `atomic`, any bad item rejects the whole push and nothing is
    /// applied. A push that a zone's journal cannot take is refused whole: the zones that
    /// took their part give it back.
    pub fn push(&mut self, body: &NotifyJson, atomic: bool) -> Result<PushOutcome, PushFailure> {
        let routed = push::route(&self.config, body, atomic)?;
        let mut outcome = PushOutcome::skipping(routed.skipped);
        let mut applied: Vec<Name> = Vec::new();
        let mut jobs = Vec::new();
        for (apex, part) in routed.zones {
            let (Some(cfg), Some(zone)) = (self.config.zone(&apex), self.zones.get_mut(&apex)) else { continue };
            outcome.applied(&apex, &part);
            match zone.apply_push(cfg, &self.config.state, part) {
                Ok(job) => {
                    jobs.extend(job);
                    applied.push(apex);
                }
                Err(e) => {
                    // All or nothing: the zones that took their part give it back.
                    for apex in &applied {
                        if let Some(z) = self.zones.get_mut(apex) {
                            z.take_back_last(apex);
                        }
                    }
                    return Err(PushFailure::Journal(e));
                }
            }
        }
        self.unsent.extend(jobs);
        Ok(outcome)
    }

    /// Applies ExternalDNS's changes: every endpoint is checked and routed first (one bad
    /// endpoint refuses them all), each zone's endpoints file is written and synced (a zone
    /// that cannot keep its part refuses the whole request, and the files already written
    /// are written back), then the records of the owners they touch change and are marked
    /// for the next build.
    fn externaldns(&mut self, changes: &crate::externaldns::endpoint::Changes) -> ExternalDnsReply {
        let cfg = self.config.externaldns.as_ref().ok_or(ExternalDnsFailure::Disabled)?;
        let routed =
            crate::externaldns::store::route(changes, cfg, &self.config.zones).map_err(ExternalDnsFailure::Invalid)?;
        let mut unknown_properties = Vec::new();
        let mut next = Vec::with_capacity(routed.len());
        for (apex, change) in &routed {
            let Some(zone) = self.zones.get(apex) else { continue };
            unknown_properties.extend(change.put.iter().flat_map(|(_, e)| e.checked.unknown.iter().cloned()));
            let (endpoints, touched) = zone.endpoints_after(change);
            next.push((apex, endpoints, touched));
        }
        if self.writable {
            let dir = &self.config.state.dir;
            for (i, (apex, endpoints, _)) in next.iter().enumerate() {
                if let Err(e) = crate::externaldns::store::save(dir, apex, endpoints) {
                    for (written, _, _) in &next[..i] {
                        if let Some(z) = self.zones.get(*written) {
                            let _ = crate::externaldns::store::save(dir, written, &z.endpoints);
                        }
                    }
                    let error = e.to_string();
                    if let Some(z) = self.zones.get_mut(*apex) {
                        z.endpoints_failed(apex, error.clone());
                    }
                    return Err(ExternalDnsFailure::Persist { zone: (*apex).clone(), error });
                }
            }
        }
        let mut applied = ExternalDnsApplied { zones: Vec::new(), unknown_properties };
        for (apex, endpoints, touched) in next {
            let (Some(cfg), Some(zone)) = (self.config.zone(apex), self.zones.get_mut(apex)) else { continue };
            tracing::info!(zone = %apex, endpoints = endpoints.len(), owners = touched.len(), "ExternalDNS changes applied");
            applied.zones.push((apex.clone(), touched.len()));
            zone.set_endpoints(cfg, endpoints, touched);
        }
        Ok(applied)
    }

    /// Sets `wanted` on the members `selector` picks: kept in the state directory first (a
    /// change that cannot be kept is not made), then the zones of their pools recompile
    /// their answers. Each member's change is logged with who made it.
    fn member_states(&mut self, selector: &Selector, wanted: Wanted, by: &str) -> MemberStatesReply {
        let keys = selector.resolve(&self.config);
        if keys.is_empty() {
            return Err(MemberStatesFailure::NoMatch);
        }
        let mut next = (*self.member_states).clone();
        let changed = next.set(&keys, wanted, by);
        if changed.iter().all(|c| c.before == c.now) {
            // Already so (asked twice, or every state again from the cluster at connection).
            return Ok(changed);
        }
        if self.writable
            && let Err(e) = next.save(&self.config.state.dir)
        {
            tracing::error!(error = %e, by, "member states not changed: they cannot be written");
            return Err(MemberStatesFailure::Persist(e.to_string()));
        }
        for c in &changed {
            let word = |s: Option<AdminState>| s.map_or("enabled", AdminState::as_str);
            tracing::warn!(
                pool = %c.key.pool,
                member = %c.key.member,
                from = word(c.before),
                to = word(c.now),
                by,
                "member state set from the API"
            );
        }
        self.member_states = Arc::new(next);
        let pools: HashSet<&Name> = keys.iter().map(|k| &k.pool).collect();
        for zone in self.config.zones.iter().filter(|z| z.pools.iter().any(|p| pools.contains(&p.name))) {
            self.dirty.add(&zone.apex, Scope::Pools);
        }
        Ok(changed)
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
                );
                self.log.add(
                    "cluster",
                    None,
                    format!("too few fresh observations: local verdicts decide for {n} targets"),
                    serde_json::json!({"targets": n}),
                );
            }
            (b, Some(0)) if b > 0 => {
                tracing::info!("cluster: every target has enough fresh observations again");
                self.log.add(
                    "cluster",
                    None,
                    "every target has enough fresh observations again",
                    serde_json::json!({}),
                );
            }
            _ => {}
        }
        let (was, now) = (self.verdicts.cluster().map(|c| c.connected), next.cluster().map(|c| c.connected));
        if was.is_some() && was != now {
            let message =
                if now == Some(true) { "connected to NATS" } else { "NATS connection lost: local verdicts decide" };
            self.log.add("cluster", None, message, serde_json::json!({"connected": now}));
        }
        self.log_transitions(&next);
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
            self.dirty.add(&zone, Scope::Pools);
        }
    }

    /// Logs each pool member address whose verdict changed, with the probe's last error.
    fn log_transitions(&mut self, next: &Verdicts) {
        let mut entries = Vec::new();
        for zone in &self.config.zones {
            for pool in &zone.pools {
                for m in &pool.members {
                    let ips = m.ipv4.iter().map(|&ip| ip.into()).chain(m.ipv6.iter().map(|&ip| ip.into()));
                    for ip in ips {
                        let (was, now) =
                            (self.verdicts.is_up(ip, &m.check, pool.quorum), next.is_up(ip, &m.check, pool.quorum));
                        if was == now {
                            continue;
                        }
                        let error = next.status(ip, &m.check).and_then(|s| s.last_error.clone());
                        let to = if now { "up" } else { "down" };
                        let why = error.as_deref().map_or(String::new(), |e| format!(": {e}"));
                        entries.push((
                            zone.apex.clone(),
                            format!("{}/{} {ip} {to}{why}", pool.name.to_dotless(), m.id),
                            serde_json::json!({"pool": pool.name.to_string(), "member": m.id, "address": ip.to_string(), "health": to, "error": error}),
                        ));
                    }
                }
            }
        }
        for (zone, message, details) in entries {
            self.log.add("health", Some(&zone), message, details);
        }
    }

    /// Logs a controller sync failure once per new error (a controller that stays down is one
    /// entry, not one per interval).
    fn log_sync_error(&mut self, zone: &Name, what: &str, error: &str) {
        if self.sync_errors.get(zone).is_some_and(|e| e == error) {
            return;
        }
        self.sync_errors.insert(zone.clone(), error.to_string());
        self.log.add("sync", Some(zone), format!("{what}: {error}"), serde_json::json!({"error": error}));
    }

    /// Logs that a zone's controller answers again after failures.
    fn log_sync_recovered(&mut self, zone: &Name) {
        if self.sync_errors.remove(zone).is_some() {
            self.log.add("sync", Some(zone), "controller answers again", serde_json::json!({}));
        }
    }

    /// Logs a push with its counts (or why it was refused).
    fn log_push(&mut self, outcome: &Result<PushOutcome, PushFailure>) {
        match outcome {
            Ok(o) => self.log.add(
                "push",
                None,
                format!("push: {} updated, {} deleted, {} skipped", o.updated, o.deleted, o.skipped.len()),
                serde_json::json!({"updated": o.updated, "deleted": o.deleted, "skipped": o.skipped.len()}),
            ),
            Err(e) => self.log.add("push", None, format!("push refused: {e}"), serde_json::json!({})),
        }
    }

    /// Swaps in a new config: zones that remain keep their state (records, journal, status),
    /// removed ones are dropped whole, and a zone the config adds is read from its state file
    /// and journal, as at start-up.
    pub fn replace_config(&mut self, config: Config) {
        self.zones.retain(|apex, _| config.zone(apex).is_some());
        let mut write = Vec::new();
        let writes = |c: &Config, apex: &Name| c.externaldns.as_ref().is_some_and(|e| e.zones.contains(apex));
        for zone in &config.zones {
            match self.zones.get_mut(&zone.apex) {
                Some(state) => {
                    state.reconfigure(zone);
                    // ExternalDNS's records come and go with its leave to write the zone
                    // (its file stays).
                    match (writes(&self.config, &zone.apex), writes(&config, &zone.apex)) {
                        (false, true) => state.load_endpoints(&config, zone),
                        (true, false) => state.drop_endpoints(zone),
                        _ => {}
                    }
                }
                None => {
                    let loaded = load::load_zone(&config, zone, self.writable);
                    // Held decoded until the writer has written it again (then compact).
                    if loaded.from_file || loaded.replayed {
                        write.push(zone.apex.clone());
                    }
                    self.zones.insert(zone.apex.clone(), loaded.state);
                }
            }
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
            self.compiler.maps_changed();
            for zone in self.config.zones.iter().filter(|z| z.uses_geo()) {
                self.dirty.add(&zone.apex, Scope::Pools);
            }
        } else {
            self.dirty = Rebuild::All;
        }
        for zone in write {
            self.persist(&zone);
        }
    }

    /// A state-file write finished.
    pub fn persisted(&mut self, done: Persisted) {
        let apex = done.job.apex.clone();
        if let Some(zone) = self.zones.get_mut(&apex) {
            zone.persisted(done);
        }
        // A published transfer holds the zone's records in the form they had: republished,
        // it lets go of the converted form the writer just packed.
        if self.config.zone(&apex).is_some_and(|z| z.transfer.is_some()) {
            self.republish_transfers = true;
        }
    }

    // ─── folds ───────────────────────────────────────────────────────────────────────────

    /// Starts a fold for every zone whose overlay is full and not being folded yet.
    pub fn start_folds(&mut self) {
        let Some(events) = &self.events else { return };
        for (apex, zone) in self.zones.iter_mut() {
            if zone.folding.is_some() || self.compiler.overlay_len(apex) < fold_names(zone.records()) {
                continue;
            }
            let Some(job) = self.compiler.fold_job(&self.config, apex, zone.held.as_ref(), zone.unloaded()) else {
                continue;
            };
            let tx = events.clone();
            let spawned = std::thread::Builder::new().name("gslbd-fold".into()).spawn(move || {
                crate::priority::control_plane_thread();
                let done = job.run();
                // The builder is gone only at shutdown; the fold is moot then.
                let _ = tx.send(Event::Folded(Box::new(done)));
            });
            match spawned {
                Ok(_) => zone.folding = Some(BTreeSet::new()),
                Err(e) => {
                    tracing::warn!(zone = %apex, error = %e, "cannot start a fold thread; recompiling the zone here");
                    self.dirty.add(apex, Scope::Data);
                }
            }
        }
    }

    /// A fold finished: its base replaces the zone's (unless the zone was recompiled since),
    /// and the names pushed meanwhile make up the new overlay.
    pub fn folded(&mut self, done: super::compile::fold::Folded) {
        let Some(zone) = self.zones.get_mut(&done.apex) else { return };
        let since = zone.folding.take().unwrap_or_default();
        match done.result {
            Ok((base, content, _report)) => {
                if self.compiler.install_fold(&done.apex, &done.from, base, content) {
                    tracing::debug!(zone = %done.apex, pushed_meanwhile = since.len(), "overlay folded into the base");
                    zone.patches.extend(since);
                }
            }
            Err(error) => {
                self.build_failures += 1;
                tracing::error!(zone = %done.apex, error = %error, "folding the pushed names into the zone failed; recompiling it");
                self.dirty.add(&done.apex, Scope::Data);
            }
        }
    }

    // ─── build and publish ───────────────────────────────────────────────────────────────

    /// Recompiles what events marked and publishes one snapshot. A panic inside is contained:
    /// the previous snapshot keeps serving, the failure is logged, counted and shown per
    /// zone, and the zones stay marked for the next build.
    pub fn build(&mut self) -> Result<(), BuildError> {
        // With fold threads, a full overlay is folded in the background and keeps taking
        // pushes meanwhile (up to a bound); without, the zone is recompiled here and now.
        let folds = if self.events.is_some() { MAX_OVERLAY_FOLDS } else { 1 };
        let patches: HashMap<Name, Patch> = self
            .zones
            .iter_mut()
            .filter(|(_, z)| !z.patches.is_empty())
            .map(|(apex, z)| {
                let limit = fold_names(z.records()) * folds;
                (apex.clone(), Patch { names: std::mem::take(&mut z.patches), limit })
            })
            .collect();
        if self.dirty.is_empty() && patches.is_empty() {
            if std::mem::take(&mut self.republish_transfers) {
                let config = Arc::clone(&self.config);
                let built = super::transfers::Built { which: &Rebuild::default(), patches: &patches };
                let transfers = self.transfers.publish(&config, &self.compiler, &self.zones, built);
                self.publisher.publish(&config, &self.compiler, &transfers);
            }
            return Ok(());
        }
        self.republish_transfers = false;
        let which = std::mem::take(&mut self.dirty);
        let mut zones: Vec<Name> = match &which {
            Rebuild::All => self.config.zones.iter().map(|z| z.apex.clone()).collect(),
            Rebuild::Zones(z) => z.keys().cloned().collect(),
        };
        zones.extend(patches.keys().filter(|z| !which.needs_data(z)).cloned());
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.compile(&which, &patches)));
        let error = match outcome {
            Ok(reports) => {
                let took_ms = started.elapsed().as_millis() as u64;
                tracing::debug!(zones = zones.len(), patched = patches.len(), took_ms, "built and published");
                for (apex, report) in reports {
                    if let Some(z) = self.zones.get_mut(&apex) {
                        z.built(report);
                    }
                }
                for z in &zones {
                    if let Some(z) = self.zones.get_mut(z) {
                        z.build_error = None;
                    }
                }
                return Ok(());
            }
            Err(panic) => BuildError(super::compile::panic_message(&*panic)),
        };
        self.build_failures += 1;
        tracing::error!(error = %error, zones = zones.len(), "build failed; the previous snapshot keeps serving");
        self.log.add(
            "build",
            None,
            format!("build failed; the previous snapshot keeps serving: {error}"),
            serde_json::json!({"zones": zones.iter().map(|z| z.to_string()).collect::<Vec<_>>()}),
        );
        for z in &zones {
            if let Some(z) = self.zones.get_mut(z) {
                z.build_error = Some(error.to_string());
            }
        }
        // Build them again with the next event (pushed names with their whole zone).
        self.dirty.merge(which);
        for zone in patches.keys() {
            self.dirty.add(zone, Scope::Data);
        }
        Err(error)
    }

    /// Compiles `which` and `patches` and publishes the snapshot.
    fn compile(
        &mut self,
        which: &Rebuild,
        patches: &HashMap<Name, Patch>,
    ) -> HashMap<Name, super::compile::base::ZoneReport> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_build) {
            panic!("injected build failure");
        }
        let config = Arc::clone(&self.config);
        // Only the zones whose base is recompiled need their records converted.
        let held: HashMap<Name, &super::held::HeldZone> =
            self.zones.iter().filter_map(|(apex, z)| Some((apex.clone(), z.held.as_ref()?))).collect();
        let unpacked = held::unpack_some(&config, &held, |z| which.needs_data(z));
        let dynamic = held::borrow_all(&held, &unpacked);
        let unloaded: HashSet<Name> =
            self.zones.iter().filter(|(_, z)| z.unloaded()).map(|(apex, _)| apex.clone()).collect();
        let dynamic_of = |zone: &Name, name: &Name| {
            let ttl = config.zone(zone).map_or(300, |z| z.default_ttl);
            held.get(zone)?.get(name, zone, ttl)
        };
        let inputs = Inputs {
            config: &config,
            dynamic: &dynamic,
            unloaded: &unloaded,
            verdicts: &self.verdicts,
            member_states: &self.member_states,
            dynamic_of: &dynamic_of,
        };
        let reports = self.compiler.compile(&inputs, &Changes { which, patches });
        let built = super::transfers::Built { which, patches };
        let transfers = self.transfers.publish(&config, &self.compiler, &self.zones, built);
        self.publisher.publish(&config, &self.compiler, &transfers);
        drop(dynamic);
        crate::snapshot::reclaim::later(unpacked);
        reports
    }

    /// The read-only view of everything the admin API and metrics show.
    pub fn view(&self) -> View {
        let zones = self
            .config
            .zones
            .iter()
            .filter_map(|z| {
                let mut view = self.zones.get(&z.apex)?.view(self.compiler.layer(&z.apex));
                view.signatures = self.compiler.signature_view(&z.apex);
                Some((z.apex.clone(), view))
            })
            .collect();
        View {
            config: Arc::clone(&self.config),
            started: self.started,
            zones,
            health: Arc::clone(&self.verdicts),
            member_states: Arc::clone(&self.member_states),
            build_failures: self.build_failures,
            events: self.log.shared(),
        }
    }

    // ─── state files and journals ────────────────────────────────────────────────────────

    /// Queues the write of the zone's state file (sent once the build is published: a write
    /// of a big zone would otherwise compete with that build for the CPU).
    pub(super) fn persist(&mut self, apex: &Name) {
        let (Some(cfg), Some(zone)) = (self.config.zone(apex), self.zones.get_mut(apex)) else { return };
        if let Some(job) = zone.persist_job(&self.config.state.dir, cfg) {
            self.unsent.push(job);
        }
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

    /// Without a writer thread: writes the state files that changes asked for.
    pub fn write_pending(&mut self) {
        for job in std::mem::take(&mut self.unsent) {
            let done = job.write();
            self.persisted(done);
        }
    }

    /// The journals with entries appended since the last call, to be made durable.
    fn unsynced_journals(&mut self) -> Vec<(Name, Arc<File>)> {
        self.zones.iter_mut().filter_map(|(apex, z)| Some((apex.clone(), z.take_unsynced_journal()?))).collect()
    }
}

/// Syncs the journals [`State::unsynced_journals`] gave: what was appended to them is durable
/// when this returns `Ok`.
fn sync_journals(journals: &[(Name, Arc<File>)]) -> Result<(), JournalError> {
    let mut failed = None;
    for (zone, file) in journals {
        if let Err(e) = file.sync_data() {
            tracing::error!(zone = %zone, error = %e, "cannot sync the push journal");
            failed = Some(JournalError::Sync { zone: zone.clone(), error: e.to_string() });
        }
    }
    failed.map_or(Ok(()), Err)
}
