//! Writes zones' state files off the build path, one writer thread for all of them.
//!
//! The builder hands over a zone's records ([`PersistJob`], a reference count, not a copy)
//! whenever they change; this thread writes the newest job of each zone soon after (at once
//! when the zone was not written in the last [`MIN_GAP`], else when that gap is over), so a
//! stream of pushes costs one file write per zone per gap, and no request waits for a `fsync`.
//! Being the only writer also means two writes of one zone never interleave. The outcome goes
//! back to the builder as an event (which then holds the compact form). Pending writes are
//! flushed when the writer stops.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::held::{self, Held, Layered, Packed};
use crate::dns::name::Name;
use crate::dns::records::{Nodes, SortedNodes};
use crate::elchi::state_file;

/// Shortest time between two writes of the same zone.
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// A zone's records as they are to be written to its state file.
#[derive(Clone)]
pub struct PersistJob {
    /// State directory.
    pub dir: PathBuf,
    /// The zone.
    pub apex: Name,
    /// The zone as the controller API names it.
    pub api_zone: String,
    /// Controller version of the records.
    pub version_hash: String,
    /// The last push-journal entry the records include.
    pub journal_seq: u64,
    /// TTL for records without one (to decode a packed base).
    pub default_ttl: u32,
    /// The base records (shared with the builder).
    pub base: Held,
    /// Pushes over them (shared with the builder).
    pub delta: Arc<Nodes>,
}

/// A state file that could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write the state file in {}: {error}", dir.display())]
pub struct PersistError {
    /// The state directory.
    pub dir: PathBuf,
    /// The I/O error.
    pub error: String,
}

/// What a write did, reported back to the builder.
pub struct Persisted {
    /// The job that was written.
    pub job: PersistJob,
    /// The record list as written (the base with the delta folded in), to hold instead.
    pub packed: Packed,
    /// The outcome of the write.
    pub result: Result<(), PersistError>,
}

impl PersistJob {
    /// Folds the delta into the base, encodes the records and writes the state file
    /// atomically.
    pub fn write(self) -> Persisted {
        let base: Cow<'_, SortedNodes> = match &self.base {
            Held::Converted(nodes) => Cow::Borrowed(&**nodes),
            Held::Packed(p) => Cow::Owned(held::unpack(&p.bytes, &self.apex, self.default_ttl)),
        };
        let packed =
            held::pack(Layered { base: Some(&base), delta: Some(&self.delta), external: None }.iter(), base.len());
        // Freed where freeing ends with handing the memory back to the system.
        if let Cow::Owned(nodes) = base {
            crate::snapshot::reclaim::later(nodes);
        }
        let result = state_file::save_packed(
            &self.dir,
            &self.apex,
            &self.api_zone,
            &self.version_hash,
            self.journal_seq,
            true,
            &packed.bytes,
        )
        .map_err(|e| PersistError { dir: self.dir.clone(), error: e.to_string() });
        Persisted { job: self, packed, result }
    }
}

enum Msg {
    Job(PersistJob),
    Stop,
}

/// The writer thread.
pub struct Writer {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

/// Where the builder sends jobs; never blocks.
#[derive(Clone)]
pub struct Jobs(Sender<Msg>);

impl Jobs {
    /// Asks for the zone's state file to be written with these records.
    pub fn send(&self, job: PersistJob) {
        // The writer is gone only at shutdown, after its final flush.
        let _ = self.0.send(Msg::Job(job));
    }
}

impl Writer {
    /// Starts the writer; each write's outcome goes to `report` (which must not block).
    pub fn start(report: impl Fn(Persisted) + Send + 'static) -> std::io::Result<(Writer, Jobs)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("gslbd-persist".into()).spawn(move || {
            crate::priority::background_thread();
            run(&rx, &report)
        })?;
        Ok((Writer { tx: tx.clone(), thread: Some(thread) }, Jobs(tx)))
    }

    /// Writes what is pending and stops the thread, or leaves it to the exit at `deadline`
    /// (what it had not written is in the journals, replayed at start).
    pub fn stop(mut self, deadline: Instant) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take()
            && crate::stopping::join_until(t, deadline).is_err()
        {
            tracing::warn!("state files still being written at the stop deadline; the journals hold their pushes");
        }
    }
}

fn run(rx: &Receiver<Msg>, report: &dyn Fn(Persisted)) {
    let mut pending: BTreeMap<Name, PersistJob> = BTreeMap::new();
    let mut last_write: HashMap<Name, Instant> = HashMap::new();
    let write = |job: PersistJob| {
        // The builder may be gone at shutdown; the file is written all the same.
        report(job.write());
    };
    loop {
        let now = Instant::now();
        let due = |zone: &Name| last_write.get(zone).is_none_or(|t| now.duration_since(*t) >= MIN_GAP);
        let ready: Vec<Name> = pending.keys().filter(|z| due(z)).cloned().collect();
        for zone in ready {
            if let Some(job) = pending.remove(&zone) {
                write(job);
                last_write.insert(zone, Instant::now());
            }
        }
        let next = pending.keys().filter_map(|z| last_write.get(z).map(|t| *t + MIN_GAP)).min();
        let msg = match next {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        match msg {
            Ok(Msg::Job(job)) => {
                pending.insert(job.apex.clone(), job);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                for (_, job) in std::mem::take(&mut pending) {
                    write(job);
                }
                return;
            }
        }
    }
}
