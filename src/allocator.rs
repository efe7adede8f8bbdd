//! The process's memory-allocator policy, set once before any thread starts.
//!
//! gslbd holds a few large, long-lived arrays (each zone's compiled tables and arena, the
//! packed records) and, while it rebuilds a zone, many short-lived small ones (the decoded
//! records). With glibc's defaults, freeing a large array raises the mmap threshold, so the
//! next large arrays come from the heap among the short-lived ones, and up to eight arenas
//! per core are made: both leave freed memory that cannot be returned, and resident memory
//! climbed with every rebuild (measured with `bench/scale.py --rss-pushes`: +50% over 6,000
//! pushes at 100,000 records, +7% with this policy, and a third less memory after loading).
//! The query path allocates nothing.
//!
//! Eight arenas in all are still enough for every thread that allocates much (tokio's, the
//! builder, the writer, the reclaimer, the two that decode a big record list or compile a big
//! zone) to have one of its own: with two, the two decoding threads shared one in about half
//! the starts, took turns on its lock for every allocation, and a million-record start took
//! 3.4-4.3 s instead of 1.9-2.3 s (bench/scale.py; resident memory after loading is the same,
//! 218 bytes per record, with two or eight).
//!
//! Fast bins are off: glibc keeps small freed chunks in them unmerged, and `malloc_trim`
//! merges them into the top of a thread's arena but returns the top of the main arena only;
//! the millions of small records a fold or a state-file rewrite of a big zone frees on its
//! thread then stayed resident (1M records, 5,000 pushes: RSS +2-23%, +1-4% without fast
//! bins, the same memory in use). Thread caches still serve the small sizes first.
//!
//! `malloc_trim` does not shrink the top of a thread's arena either; only a free next to it
//! does, down to the trim threshold plus the top pad. Both are kept small (32 KB, none), so
//! each of the eight arenas holds little beyond what is in use: RSS over 10,000 pushes at
//! 100,000 records +4.9-5.3% (three runs) instead of +5.9-6.3%.
//!
//! The per-thread caches (tcache) are off. Each thread keeps up to seven freed chunks of every
//! small size for itself; to the arena they are in use, so `malloc_trim` cannot return the
//! pages they sit on, and they sit among what a fold or a state-file rewrite freed. That was
//! most of what was left: over 4,000 pushes at 100,000 records RSS grew +5.4% with them and
//! +1.3% without (bench/scale.py --rss-pushes), with the same start and apply times
//! (1M-record start 1.35-1.69 s vs 1.56-1.63 s; `cargo bench --bench apply` median 127 ms vs
//! 140 ms). glibc takes that setting only from the `GLIBC_TUNABLES` environment variable when
//! the process starts (`mallopt` has no such parameter), so [`tune`] executes the program
//! again with it, once. An operator's own `glibc.malloc.tcache*` setting is kept as it is.

/// Arenas for all threads together.
const ARENAS: i32 = 8;
/// Allocations from this size on are mapped apart and returned to the system when freed.
const MMAP_FROM: i32 = 128 << 10;
/// Free memory at the top of an arena beyond this is returned to the system.
const TRIM_FROM: i32 = 32 << 10;

/// The glibc tunable that turns the per-thread caches off.
const NO_TCACHE: &str = "glibc.malloc.tcache_count=0";
/// Set for the re-executed program so it does not execute itself again. glibc drops
/// `GLIBC_TUNABLES` from a privileged process's environment (file capabilities, setuid), so
/// the tunable itself cannot be the mark.
const RE_EXECUTED: &str = "GSLBD_ALLOCATOR_TUNED";

/// Why the program could not be executed again with the tunable, for `main` to log once
/// logging is up (it runs untuned then).
static NOT_TUNED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Applies the policy. Call first thing in `main`, before any thread is started: it may
/// replace the process with a fresh start of the same program (same arguments, same
/// environment plus the tunable).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    execute_with_tunable();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other
    // thread exists, so no allocation runs concurrently with the change.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_FROM);
        libc::mallopt(libc::M_MXFAST, 0);
        libc::mallopt(libc::M_TOP_PAD, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_FROM);
    }
}

/// What kept the allocator's tunable from being applied, if anything did.
pub fn not_tuned() -> Option<&'static str> {
    NOT_TUNED.get().map(String::as_str)
}

/// The `GLIBC_TUNABLES` value to start again with, or `None` when this start needs no new
/// one: it is the re-executed one, or the operator chose a tcache setting (or wrote a value
/// that is not Unicode, which is theirs to keep).
fn tunables_to_set(current: Option<std::ffi::OsString>, re_executed: bool) -> Option<String> {
    if re_executed {
        return None;
    }
    match current {
        None => Some(NO_TCACHE.to_string()),
        Some(value) => {
            let value = value.into_string().ok()?;
            if value.split(':').any(|t| t.starts_with("glibc.malloc.tcache")) {
                None
            } else if value.is_empty() {
                Some(NO_TCACHE.to_string())
            } else {
                Some(format!("{value}:{NO_TCACHE}"))
            }
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn execute_with_tunable() {
    use std::os::unix::process::CommandExt;
    let re_executed = std::env::var_os(RE_EXECUTED).is_some();
    let Some(tunables) = tunables_to_set(std::env::var_os("GLIBC_TUNABLES"), re_executed) else {
        return;
    };
    let mut args = std::env::args_os();
    let Some(arg0) = args.next() else { return };
    // /proc/self/exe is this very binary even when its path was replaced meanwhile.
    let error = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .env(RE_EXECUTED, "1")
        .exec();
    let _ = NOT_TUNED.set(format!("cannot execute the program again with {NO_TCACHE}: {error}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tunable_is_added_to_what_the_operator_set() {
        assert_eq!(tunables_to_set(None, false).as_deref(), Some(NO_TCACHE));
        assert_eq!(tunables_to_set(Some("".into()), false).as_deref(), Some(NO_TCACHE));
        assert_eq!(
            tunables_to_set(Some("glibc.malloc.check=3".into()), false).as_deref(),
            Some("glibc.malloc.check=3:glibc.malloc.tcache_count=0")
        );
    }

    #[test]
    fn an_operator_tcache_setting_or_a_second_start_is_left_alone() {
        assert_eq!(tunables_to_set(Some("glibc.malloc.tcache_count=3".into()), false), None);
        assert_eq!(tunables_to_set(Some("glibc.mem.tagging=1:glibc.malloc.tcache_max=64".into()), false), None);
        assert_eq!(tunables_to_set(None, true), None);
    }
}
