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
/// Quiet time after frees before the freed memory is handed back to the system.
const TRIM_AFTER: Duration = Duration::from_millis(200);

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
                crate::priority::background_thread();
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
    let mut freed = false;
    loop {
        let wait = match (pending.is_empty(), freed) {
            (false, _) => POLL,
            (true, true) => TRIM_AFTER,
            (true, false) => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(Garbage::Other(value)) => {
                drop(value);
                freed = true;
            }
            Ok(Garbage::Snapshot(s)) => pending.push(s),
            Err(RecvTimeoutError::Timeout) if freed && pending.is_empty() => {
                trim();
                freed = false;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Whoever else still holds a snapshot drops it on their side; ours goes only when last.
        let before = pending.len();
        pending.retain(|s| Arc::strong_count(s) > 1);
        freed |= pending.len() < before;
    }
}

/// Hands freed heap memory back to the system once things are quiet. glibc's allocator keeps
/// what a replaced zone freed (hundreds of MB for a big zone) in its arenas otherwise, and
/// RSS would stay at the high-water mark of every rebuild (measured: ~1,260 bytes per record
/// at 100k records without this, see bench/scale.py).
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the system; it has no preconditions and
    // does not touch memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
