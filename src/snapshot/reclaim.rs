//! Frees replaced data on a background thread, so neither the query path nor the publishing
//! path pays for dropping a large zone (hundreds of thousands of small frees).
//!
//! A replaced snapshot is kept until every other holder (a UDP worker's arc-swap cache, a
//! TCP answer in progress) has let go, then dropped here; the UDP workers refresh their
//! cache at least every 100 ms even when idle, so that wait is short.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::Snapshot;

/// How often pending snapshots are checked.
const POLL: Duration = Duration::from_millis(50);

enum Garbage {
    Snapshot(Arc<Snapshot>),
    Other(Box<dyn Send>),
}

fn sender() -> &'static Mutex<Sender<Garbage>> {
    static TX: OnceLock<Mutex<Sender<Garbage>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("gslbd-reclaim".into())
            .spawn(move || {
                crate::priority::control_plane_thread();
                run(rx)
            })
            .expect("spawn the reclaim thread");
        Mutex::new(tx)
    })
}

/// Drops `value` on the reclaim thread.
pub fn later<T: Send + 'static>(value: T) {
    let _ = sender().lock().expect("reclaim sender").send(Garbage::Other(Box::new(value)));
}

/// Drops a replaced snapshot on the reclaim thread once nobody else holds it.
pub fn snapshot(old: Arc<Snapshot>) {
    let _ = sender().lock().expect("reclaim sender").send(Garbage::Snapshot(old));
}

fn run(rx: Receiver<Garbage>) {
    let mut pending: Vec<Arc<Snapshot>> = Vec::new();
    loop {
        let wait = if pending.is_empty() { Duration::from_secs(3600) } else { POLL };
        match rx.recv_timeout(wait) {
            Ok(Garbage::Other(value)) => drop(value),
            Ok(Garbage::Snapshot(s)) => pending.push(s),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Whoever else still holds a snapshot drops it on their side; ours goes only when last.
        pending.retain(|s| Arc::strong_count(s) > 1);
    }
}
