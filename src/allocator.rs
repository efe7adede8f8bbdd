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

/// Arenas for all threads together.
const ARENAS: i32 = 8;
/// Allocations from this size on are mapped apart and returned to the system when freed.
const MMAP_FROM: i32 = 128 << 10;
/// Free memory at the top of an arena beyond this is returned to the system.
const TRIM_FROM: i32 = 32 << 10;

/// Applies the policy. Call first thing in `main`, before any thread is started.
pub fn tune() {
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
