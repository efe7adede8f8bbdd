//! The signing budget: how many signatures a thread that answers queries may make per
//! second. A flood of new names (each needs a fresh compact-denial signature) spends it; what
//! is cached keeps being answered at full speed, and what would need a signature past the
//! budget is answered without one being made (TC over UDP, SERVFAIL over TCP), never
//! unsigned.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    /// (tokens in thousandths, last refill).
    static BUCKET: Cell<(u64, Option<Instant>)> = const { Cell::new((0, None)) };
}

/// Takes one signature from this thread's budget of `per_second` (a burst of one second's
/// worth). False: over budget.
pub fn take(per_second: u32) -> bool {
    if per_second == 0 {
        return false;
    }
    let cap = per_second as u64 * 1000;
    BUCKET.with(|b| {
        let (tokens, last) = b.get();
        let now = Instant::now();
        let tokens = match last {
            None => cap,
            Some(t) => (tokens + now.duration_since(t).as_micros() as u64 * per_second as u64 / 1000).min(cap),
        };
        if tokens >= 1000 {
            b.set((tokens - 1000, Some(now)));
            true
        } else {
            b.set((tokens, Some(now)));
            false
        }
    })
}

#[cfg(test)]
mod tests {
    /// A fresh thread may make one second's worth, then no more until time passes.
    #[test]
    fn the_budget_is_a_burst_then_a_rate() {
        std::thread::spawn(|| {
            let made = (0..500).filter(|_| super::take(100)).count();
            assert!((100..=102).contains(&made), "{made}");
        })
        .join()
        .unwrap();
    }
}
