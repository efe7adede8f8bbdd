//! Writes controller zones' state files off the request path, one writer for all of them.
//!
//! A controller snapshot or a `/notify` push marks its zone dirty; this thread writes the zone's
//! current records soon after (at once when the zone was not written in the last
//! [`MIN_GAP`], else when that gap is over), so a stream of pushes costs one file write per
//! zone per gap instead of one per push, and no request waits for a `fsync`. Being the only
//! writer also means two writes of one zone can never interleave. Pending writes are flushed
//! when the server stops.

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::dns::name::Name;
use crate::inputs::SharedInputs;

/// Shortest time between two writes of the same zone.
pub const MIN_GAP: Duration = Duration::from_secs(1);

enum Msg {
    Dirty(Name),
    Stop,
}

/// Where zones are reported dirty; cheap to clone, never blocks.
#[derive(Clone)]
pub struct PersistQueue(Sender<Msg>);

impl PersistQueue {
    /// Asks for `zone`'s state file to be written with its current records.
    pub fn dirty(&self, zone: Name) {
        // The writer is gone only at shutdown, after its final flush.
        let _ = self.0.send(Msg::Dirty(zone));
    }
}

/// The writer thread.
pub struct Persister {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    /// Starts the writer and hands its queue to `inputs`.
    pub fn start(inputs: &SharedInputs) -> std::io::Result<Persister> {
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = std::sync::Arc::clone(inputs);
        let thread = std::thread::Builder::new().name("gslbd-persist".into()).spawn(move || {
            crate::priority::control_plane_thread();
            run(&shared, &rx)
        })?;
        inputs.lock().expect("inputs lock").set_persist_queue(PersistQueue(tx.clone()));
        Ok(Persister { tx, thread: Some(thread) })
    }

    /// Writes what is pending and stops the thread.
    pub fn stop(mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(inputs: &SharedInputs, rx: &Receiver<Msg>) {
    let mut pending: BTreeSet<Name> = BTreeSet::new();
    let mut last_write: HashMap<Name, Instant> = HashMap::new();
    loop {
        let now = Instant::now();
        let due = |zone: &Name| last_write.get(zone).is_none_or(|t| now.duration_since(*t) >= MIN_GAP);
        let ready: Vec<Name> = pending.iter().filter(|z| due(z)).cloned().collect();
        for zone in ready {
            pending.remove(&zone);
            write_zone(inputs, &zone);
            last_write.insert(zone, Instant::now());
        }
        let next = pending.iter().filter_map(|z| last_write.get(z).map(|t| *t + MIN_GAP)).min();
        let msg = match next {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        match msg {
            Ok(Msg::Dirty(zone)) => {
                pending.insert(zone);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                for zone in std::mem::take(&mut pending) {
                    write_zone(inputs, &zone);
                }
                return;
            }
        }
    }
}

/// Writes one zone: its records are taken under the lock (a reference count, not a copy),
/// encoded and written without it, and then held in their compact form unless they changed
/// in the meantime.
fn write_zone(inputs: &SharedInputs, zone: &Name) {
    let Some(view) = inputs.lock().expect("inputs lock").persist_view(zone) else { return };
    let (packed, written) = view.write();
    let mut inputs = inputs.lock().expect("inputs lock");
    inputs.persisted(zone, written);
    inputs.store_packed_if_current(zone, &view, packed);
}
