//! The one builder: a thread that alone owns the inputs ([`state::State`]) and turns them into
//! published snapshots and admin views.
//!
//! ```text
//!  controller sync ─┐                         ┌─► SnapshotHandle (arc-swap) ─► DNS listeners
//!  /notify ─────────┤  Event   ┌──────────┐   │
//!  probes ──────────┼────────► │ builder  │ ──┼─► Views (arc-swap) ─► admin API, /metrics
//!  SIGHUP reload ───┤ (mpsc)   │  thread  │   │
//!  state writer ────┘          └──────────┘   └─► PersistJob ─► state-file writer thread
//! ```
//!
//! Producers only send [`Event`]s; nobody else changes the inputs, so there is no lock to
//! take or poison. The builder drains what is queued, applies it all, builds once (only the
//! zones the events touched, and for a health change only the pools' zones), publishes one
//! snapshot and one view, then answers the requests that wait for DNS to show their change.
//! A build that panics is contained: the previous snapshot keeps serving, the failure shows in
//! `/health`, and the next event builds again.

pub mod fold;
pub mod geo;
pub mod held;
pub mod overlay;
pub mod persist;
pub mod policy;
pub mod pools;
pub mod publisher;
pub mod state;
pub mod status;
pub mod views;
pub mod webhook;

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use tokio::sync::oneshot;

use crate::config::Config;
use crate::dns::name::Name;
use crate::elchi::api::{NotifyJson, Payload};
use crate::snapshot::SnapshotHandle;
use persist::{Persisted, Writer};
use state::State;
use status::SyncKind;
use views::{View, Views};
use webhook::{PushError, PushOutcome};

/// The answer to a push: its outcome, or the build error that kept it from DNS for now.
pub type PushReply = Result<Result<PushOutcome, PushError>, String>;

/// What producers tell the builder.
pub enum Event {
    /// A controller request started.
    SyncAttempt(Name),
    /// A controller request failed; the data in force stays.
    SyncFailed {
        /// The zone.
        zone: Name,
        /// Which request.
        kind: SyncKind,
        /// Why.
        error: String,
    },
    /// The controller reports no change.
    SyncUnchanged(Name),
    /// The controller sent a full record set.
    SyncAccepted {
        /// The zone.
        zone: Name,
        /// The records.
        payload: Box<Payload>,
    },
    /// A `/notify` push; the reply goes out once DNS answers it.
    Push {
        /// The body.
        body: Box<NotifyJson>,
        /// All or nothing.
        atomic: bool,
        /// Where the outcome goes.
        reply: oneshot::Sender<PushReply>,
    },
    /// A probed target changed state.
    HealthChanged,
    /// A new config (already validated); the reply goes out once it serves.
    Reload {
        /// The config.
        config: Box<Config>,
        /// Signalled when the new config serves.
        reply: oneshot::Sender<()>,
    },
    /// The state-file writer finished a write.
    Persisted(Box<Persisted>),
    /// A fold of a zone's overlay into a new base finished.
    Folded(Box<fold::Folded>),
    /// Stop after this batch.
    Stop,
}

/// How producers reach the builder and readers its views; cheap to clone.
#[derive(Clone)]
pub struct BuilderHandle {
    tx: Sender<Event>,
    views: Views,
    snapshot: SnapshotHandle,
}

impl BuilderHandle {
    /// Sends an event; never blocks (the builder is gone only at shutdown).
    pub fn send(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// Applies a push and waits (without blocking a thread) until DNS answers it.
    pub async fn push(&self, body: NotifyJson, atomic: bool) -> PushReply {
        let (reply, answer) = oneshot::channel();
        self.send(Event::Push { body: Box::new(body), atomic, reply });
        answer.await.unwrap_or_else(|_| Err("the builder stopped".into()))
    }

    /// Swaps in a validated config and waits until it serves.
    pub async fn reload(&self, config: Config) {
        let (reply, done) = oneshot::channel();
        self.send(Event::Reload { config: Box::new(config), reply });
        let _ = done.await;
    }

    /// The current read-only view.
    pub fn view(&self) -> Arc<View> {
        self.views.load_full()
    }

    /// The handle DNS listeners read from.
    pub fn snapshot(&self) -> &SnapshotHandle {
        &self.snapshot
    }
}

/// The running builder and state-file writer.
pub struct Builder {
    handle: BuilderHandle,
    thread: Option<JoinHandle<()>>,
    writer: Option<Writer>,
}

impl Builder {
    /// Starts the builder thread (and the state-file writer) on `state`.
    pub fn spawn(mut state: State) -> std::io::Result<Builder> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (writer, jobs) = Writer::start(tx.clone())?;
        state.set_jobs(jobs);
        state.set_events(tx.clone());
        let views: Views = Arc::new(ArcSwap::from_pointee(state.view()));
        let handle = BuilderHandle { tx, views: Arc::clone(&views), snapshot: state.handle() };
        let thread = std::thread::Builder::new().name("gslbd-builder".into()).spawn(move || {
            crate::priority::control_plane_thread();
            run(state, &rx, &views)
        })?;
        Ok(Builder { handle, thread: Some(thread), writer: Some(writer) })
    }

    /// The handle producers and readers use.
    pub fn handle(&self) -> BuilderHandle {
        self.handle.clone()
    }

    /// Stops the builder, then lets the writer flush what is pending.
    pub fn stop(mut self) {
        self.handle.send(Event::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(w) = self.writer.take() {
            w.stop();
        }
    }
}

fn run(mut state: State, rx: &Receiver<Event>, views: &Views) {
    while let Ok(first) = rx.recv() {
        // Everything queued meanwhile is one batch: one build, one publish.
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        if state.apply(batch, Some(views)) {
            return;
        }
    }
}

impl State {
    /// Applies a batch of events in order, builds once, publishes the view (into `views`),
    /// and then answers the requests that waited for the build, so that what they read next
    /// already shows their change. Returns whether a stop was asked for.
    pub fn apply(&mut self, events: Vec<Event>, views: Option<&Views>) -> bool {
        let mut stop = false;
        let mut pushes: Vec<(oneshot::Sender<PushReply>, Result<PushOutcome, PushError>)> = Vec::new();
        let mut reloads = Vec::new();
        for event in events {
            match event {
                Event::SyncAttempt(zone) => self.sync_attempt(&zone),
                Event::SyncFailed { zone, kind, error } => self.sync_failed(&zone, kind, error),
                Event::SyncUnchanged(zone) => self.sync_unchanged(&zone),
                Event::SyncAccepted { zone, payload } => self.sync_accepted(&zone, *payload),
                Event::Push { body, atomic, reply } => {
                    let outcome = self.push(&body, atomic);
                    pushes.push((reply, outcome));
                }
                Event::HealthChanged => self.health_changed(),
                Event::Reload { config, reply } => {
                    self.replace_config(*config);
                    reloads.push(reply);
                }
                Event::Persisted(done) => self.persisted(*done),
                Event::Folded(done) => self.folded(*done),
                Event::Stop => stop = true,
            }
        }
        // One sync per touched journal for the whole batch, before any push is acknowledged;
        // on a second thread while the batch builds and publishes, so a push waits for the
        // longer of the two, not for both.
        let journals = self.unsynced_journals();
        let (built, durable) = std::thread::scope(|scope| {
            let syncing = (!journals.is_empty()).then(|| scope.spawn(|| state::sync_journals(&journals)));
            let built = self.build();
            if let Some(views) = views {
                views.store(Arc::new(self.view()));
            }
            let durable = syncing.map_or(Ok(()), |s| {
                s.join().unwrap_or_else(|panic| Err(format!("journal sync failed: {}", panic_message(&*panic))))
            });
            (built, durable)
        });
        self.send_jobs();
        self.start_folds();
        for (reply, outcome) in pushes {
            let answer = match (&built, outcome) {
                (_, Ok(PushOutcome { journal_error: Some(e), .. })) => Err(e),
                (Ok(()), Ok(_)) if durable.is_err() => Err(durable.clone().unwrap_err()),
                (Ok(()), Ok(o)) => Ok(Ok(self.finish_push(o))),
                // A rejected push changed nothing: its answer does not wait for a build.
                (_, Err(e)) => Ok(Err(e)),
                (Err(e), Ok(_)) => {
                    Err(format!("{e}; the change is kept and DNS will show it after the next good build"))
                }
            };
            let _ = reply.send(answer);
        }
        for reply in reloads {
            let _ = reply.send(());
        }
        if stop {
            // Fold the pushes into the state files on the way out (the journals have them
            // already; this keeps the next start-up's replay short).
            let pushed: Vec<Name> =
                self.held.iter().filter(|(_, h)| !h.delta.is_empty()).map(|(z, _)| z.clone()).collect();
            for zone in pushed {
                self.persist(&zone);
            }
            self.send_jobs();
        }
        stop
    }
}

#[cfg(test)]
mod overlay_tests;
/// What a caught panic said (its message when it had one).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

#[cfg(test)]
mod tests;
