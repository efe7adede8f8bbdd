//! The one builder: a thread that alone owns the inputs and turns them into published
//! snapshots and admin views. The change path reads in order, one stage a file:
//!
//! ```text
//!  producer ──► event ──► state ──► zone ──► compile ──► publish ──► replies
//!  (admin,      (Event)   (one      (one     (base,      (Snapshot,
//!   sources,              batch:    zone's   overlay,     View)
//!   probes,               route,    records, dynamic
//!   cluster,              mark)     journal, layer)
//!   app)                            status)
//! ```
//!
//! * [`event`]: the one event type producers send, and the typed answers they wait for.
//! * [`state`]: the builder's [`State`] and the step a batch of events goes
//!   through: each event applied to the zones it touches ([`push`] checks and routes a
//!   `/notify` first), one compile of what they marked, one publish, then the replies.
//! * [`zone`]: one zone's state (controller and webhook records in [`held`], [`status`],
//!   push journal, state-file outcome, names pushed since the last build) and every method
//!   that changes it; [`load`] reads it from disk at start-up.
//! * [`compile`]: the compilers (base, overlay, dynamic layer), folds, location maps.
//! * [`publish`]: the snapshot; [`views`]: what the admin API and metrics read.
//! * [`persist`]: the state-file writer thread.
//!
//! Producers only send [`Event`]s; nobody else changes the inputs, so there is no lock to
//! take or poison. A build that panics is contained: the previous snapshot keeps serving,
//! the failure shows in `/health`, and the next event builds again.

pub mod compile;
pub mod event;
pub mod event_log;
pub mod held;
pub mod load;
pub mod persist;
pub mod publish;
pub mod push;
pub mod state;
pub mod status;
pub mod transfers;
pub mod views;
pub mod zone;

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use tokio::sync::oneshot;

use crate::config::Config;
use crate::elchi::api::NotifyJson;
use crate::health::member_state::{Selector, Wanted};
use crate::snapshot::SnapshotHandle;
pub use event::{
    Event, ExternalDnsFailure, ExternalDnsReply, MemberStatesFailure, MemberStatesReply, PushFailure, PushReply,
};
use persist::Writer;
use state::State;
use views::{View, Views};

/// How producers reach the builder and readers its views; cheap to clone.
#[derive(Clone)]
pub struct BuilderHandle {
    tx: std::sync::mpsc::Sender<Event>,
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
        answer.await.unwrap_or(Err(PushFailure::Stopped))
    }

    /// Drains, disables or enables the members `selector` picks, by `by`; waits until DNS
    /// answers with the change.
    pub async fn member_states(&self, selector: Selector, wanted: Wanted, by: String) -> MemberStatesReply {
        let (reply, answer) = oneshot::channel();
        self.send(Event::MemberStates { selector, wanted, by, reply });
        answer.await.unwrap_or(Err(MemberStatesFailure::Stopped))
    }

    /// Applies ExternalDNS's changes, all or none; waits until DNS answers them.
    pub async fn externaldns(&self, changes: crate::externaldns::endpoint::Changes) -> ExternalDnsReply {
        let (reply, answer) = oneshot::channel();
        self.send(Event::ExternalDns { changes: Box::new(changes), reply });
        answer.await.unwrap_or(Err(ExternalDnsFailure::Stopped))
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
        let persisted = tx.clone();
        let (writer, jobs) = Writer::start(move |done| {
            let _ = persisted.send(Event::Persisted(Box::new(done)));
        })?;
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
    pub fn stop(mut self, deadline: std::time::Instant) {
        self.handle.send(Event::Stop);
        if let Some(t) = self.thread.take()
            && crate::stopping::join_until(t, deadline).is_err()
        {
            tracing::warn!("the builder did not stop in time; leaving it to the exit");
        }
        if let Some(w) = self.writer.take() {
            w.stop(deadline);
        }
    }
}

fn run(mut state: State, rx: &Receiver<Event>, views: &Views) {
    loop {
        let first = match rx.recv_timeout(state.renewal_wait()) {
            Ok(event) => event,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Event::Renew,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        // Everything queued meanwhile is one batch: one build, one publish.
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        if state.apply(batch, Some(views)) {
            return;
        }
    }
}

#[cfg(test)]
mod overlay_tests;
#[cfg(test)]
mod tests;
