//! The shared-secret check: `X-Elchi-Secret: <secret>` or `Authorization: Bearer <secret>`,
//! compared in constant time so the answer time does not reveal how much matched.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

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
