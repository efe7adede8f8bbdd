//! Control-plane work (rebuilds after pushes, syncs and health changes; state-file writes)
//! runs at a lower CPU priority than the query path, so that on a busy core a rebuild delays
//! answers as little as possible: the UDP workers keep the default priority; threads doing
//! control-plane work, and the one freeing replaced snapshots, lower theirs once, to nice 10.

use std::cell::Cell;

/// The nice value control-plane threads run at.
pub const CONTROL_PLANE_NICE: i32 = 10;

thread_local! {
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Lowers the calling thread's priority to [`CONTROL_PLANE_NICE`] (once per thread; later
/// calls cost a thread-local read). Failure only costs the preference, so it is ignored.
pub fn control_plane_thread() {
    LOWERED.with(|done| {
        if done.replace(true) {
            return;
        }
        #[cfg(target_os = "linux")]
        // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS as _, tid as _, CONTROL_PLANE_NICE);
        }
    });
}
