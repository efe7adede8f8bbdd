//! `/health` and `/ready`: per-zone sync health in the upstream JSON shape, and readiness.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::builder::status::{DataOrigin, SyncStatus};
use crate::builder::views::View;
use crate::config::ZoneConfig;

/// `last_sync` before any attempt: Go's zero time in RFC 3339, as upstream writes it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A zone as upstream's `/health` and `/records` name it: the FQDN with its trailing dot.
pub fn fqdn(apex: &crate::dns::name::Name) -> String {
    apex.to_string()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// One zone's health: its JSON object and whether it is degraded.
pub fn zone_health(view: &View, zone: &ZoneConfig, now: SystemTime) -> (Value, bool) {
    let name = fqdn(&zone.apex);
    let (Some(cfg), Some(st)) = (&zone.controller, view.status(&zone.apex)) else {
        let v = json!({
            "status": "healthy",
            "zone": name,
            "records_count": zone.data.record_count(),
            "version_hash": "",
            "last_sync": ZERO_TIME,
            "last_success": null,
            "last_sync_status": "static",
            "source": "static",
            "stale": false,
        });
        return with_zone_state(v, view, zone, false);
    };
    let limit = cfg.sync_interval * 2;
    let age = |t: SystemTime| now.duration_since(t).unwrap_or(Duration::ZERO);
    // A refused response is a controller fault, not a hiccup: degraded at once.
    let degraded = st.refused.is_some()
        || match st.last_success {
            Some(t) => age(t) > limit,
            None => age(view.started) > limit,
        };
    let mut v = json!({
        "status": if degraded { "degraded" } else { "healthy" },
        "zone": name,
        "records_count": st.records,
        "version_hash": st.version_hash.clone().unwrap_or_default(),
        // Upstream's `last_sync` is the last attempt, whatever its outcome.
        "last_sync": st.last_attempt.map_or_else(|| ZERO_TIME.to_string(), rfc3339),
        "last_success": st.last_success.map(rfc3339),
        "last_sync_status": last_status(st),
        "source": st.origin.as_str(),
        "stale": st.origin == DataOrigin::Disk,
    });
    if let Some(e) = &st.last_error {
        v["error"] = json!(e);
    }
    with_zone_state(v, view, zone, degraded)
}

/// Adds `persist_error` (null when the journal takes pushes and the last state-file write
/// worked) and, when the last build of the zone failed, `build_error` (then the zone is
/// degraded: DNS serves the data of the build before). A journal that refuses pushes makes
/// the zone degraded too (it cannot be changed); a zone whose state-file writes fail still
/// answers and takes pushes, so that alone does not; operators alert on
/// `gslbd_persist_failing`.
fn with_zone_state(mut v: Value, view: &View, zone: &ZoneConfig, degraded: bool) -> (Value, bool) {
    let zv = view.zone(&zone.apex);
    v["persist_error"] = json!(zv.and_then(|z| z.persist_error.as_deref()));
    // A journal that refuses pushes refuses changes: the zone serves, but cannot be updated.
    let degraded = degraded || zv.is_some_and(|z| z.journal_failing);
    if degraded {
        v["status"] = json!("degraded");
    }
    match zv.and_then(|z| z.build_error.as_deref()) {
        Some(e) => {
            v["build_error"] = json!(e);
            v["status"] = json!("degraded");
            (v, true)
        }
        None => (v, degraded),
    }
}

fn last_status(st: &SyncStatus) -> &'static str {
    match (&st.last_error, st.last_success, st.last_attempt) {
        (Some(_), _, _) => "failed",
        (None, Some(_), _) => "success",
        _ => "initial",
    }
}

/// Zones that have nothing to serve yet: controller zones with neither controller nor disk data.
pub fn not_ready(view: &View) -> Vec<String> {
    view.not_ready().into_iter().map(fqdn).collect()
}
