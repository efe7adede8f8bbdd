//! Bounded stops. Shutdown waits for threads that talk to things gslbd does not control (a
//! dnstap receiver, a disk, a journal that may be a FIFO); each wait has a deadline, so the
//! process exits in the time the README promises whatever those things do.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a bounded join looks whether the thread has finished.
const POLL: Duration = Duration::from_millis(2);

/// Joins `thread` if it finishes by `deadline`; otherwise hands it back unjoined (it is left
/// to the process's exit). A thread that panicked counts as finished (it logged why).
pub fn join_until<T>(thread: JoinHandle<T>, deadline: Instant) -> Result<(), JoinHandle<T>> {
    while !thread.is_finished() {
        if Instant::now() >= deadline {
            return Err(thread);
        }
        std::thread::sleep(POLL);
    }
    let _ = thread.join();
    Ok(())
}
