//! The shared-secret check: `X-Elchi-Secret: <secret>` or `Authorization: Bearer <secret>`,
//! compared in constant time so the answer time does not reveal how much matched.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

/// At most one failed-secret log line per this interval: a flood of bad requests must not
/// flood the log (the metrics count every one).
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// True when either header carries the secret.
pub fn authorized(headers: &HeaderMap, secret: &[u8]) -> bool {
    let elchi = headers.get("x-elchi-secret").map(|v| v.as_bytes());
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|v| v.trim().as_bytes());
    [elchi, bearer].into_iter().flatten().any(|given| bool::from(given.ct_eq(secret)))
}

/// Failed requests not yet logged, and when the next line may be written (ms after the
/// first failure).
static UNLOGGED: AtomicU64 = AtomicU64::new(0);
static NEXT_LOG_MS: AtomicU64 = AtomicU64::new(0);

/// Notes a request with a wrong or missing secret; logs one line with the count at most
/// every [`FAILURE_LOG_EVERY`].
pub fn failed(endpoint: &str) {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    UNLOGGED.fetch_add(1, Ordering::Relaxed);
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64;
    let next = NEXT_LOG_MS.load(Ordering::Relaxed);
    let every = FAILURE_LOG_EVERY.as_millis() as u64;
    if now >= next && NEXT_LOG_MS.compare_exchange(next, now + every, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        let count = UNLOGGED.swap(0, Ordering::Relaxed);
        tracing::warn!(
            endpoint,
            count,
            "admin requests with a wrong or missing secret (one line per 10 s at most; the latest endpoint shown)"
        );
    }
}
