//! Control-plane work runs at a lower CPU priority than the query path, so that on a busy
//! core a rebuild delays answers as little as possible: the UDP workers keep the default
//! priority; the builder (which answers pushes, syncs and health changes) and the fold threads
//! (whose progress pushes wait for once an overlay is full) lower theirs once, to nice 10;
//! whole-zone work that nothing waits for (state-file writes, freeing replaced snapshots)
//! lowers its own to nice 19, so that on a 2-core machine a push is not held up behind a big
//! zone's rewrite.

use std::cell::Cell;

/// The nice value of the builder and fold threads.
pub const CONTROL_PLANE_NICE: i32 = 10;

/// The nice value of whole-zone work nothing waits for.
pub const BACKGROUND_NICE: i32 = 19;

thread_local! {
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Lowers the calling thread's priority to [`CONTROL_PLANE_NICE`] (once per thread; later
/// calls cost a thread-local read). Failure only costs the preference, so it is ignored.
pub fn control_plane_thread() {
    lower(CONTROL_PLANE_NICE);
}

/// Lowers the calling thread's priority to [`BACKGROUND_NICE`] (once per thread).
pub fn background_thread() {
    lower(BACKGROUND_NICE);
}

fn lower(nice: i32) {
    LOWERED.with(|done| {
        if done.replace(true) {
            return;
        }
        #[cfg(target_os = "linux")]
        // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS as _, tid as _, nice);
        }
    });
}
