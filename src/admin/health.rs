//! `/health` and `/ready`: per-zone sync health in the upstream JSON shape, and readiness.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::config::ZoneConfig;
use crate::inputs::{DataOrigin, Inputs, SyncStatus};
use crate::sources::controller::api::api_zone;

/// One zone's health: its JSON object and whether it is degraded.
pub fn zone_health(inputs: &Inputs, zone: &ZoneConfig, now: SystemTime) -> (Value, bool) {
    let name = api_zone(&zone.apex);
    let (Some(cfg), Some(st)) = (&zone.controller, inputs.status(&zone.apex)) else {
        let v = json!({
            "status": "healthy",
            "zone": name,
            "records_count": zone.data.record_count(),
            "version_hash": "",
            "last_sync": null,
            "last_sync_status": "static",
            "source": "static",
            "stale": false,
        });
        return (v, false);
    };
    let limit = cfg.sync_interval * 2;
    let age = |t: SystemTime| now.duration_since(t).unwrap_or(Duration::ZERO);
    let degraded = match st.last_success {
        Some(t) => age(t) > limit,
        None => age(inputs.started()) > limit,
    };
    let mut v = json!({
        "status": if degraded { "degraded" } else { "healthy" },
        "zone": name,
        "records_count": st.records,
        "version_hash": st.version_hash.clone().unwrap_or_default(),
        "last_sync": st.last_success.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
        "last_sync_status": last_status(st),
        "source": st.origin.as_str(),
        "stale": st.origin == DataOrigin::Disk,
    });
    if let Some(e) = &st.last_error {
        v["error"] = json!(e);
    }
    (v, degraded)
}

fn last_status(st: &SyncStatus) -> &'static str {
    match (&st.last_error, st.last_success, st.last_attempt) {
        (Some(_), _, _) => "failed",
        (None, Some(_), _) => "success",
        _ => "initial",
    }
}

/// Zones that have nothing to serve yet: controller zones with neither controller nor disk data.
pub fn not_ready(inputs: &Inputs) -> Vec<String> {
    let config = inputs.config();
    config
        .zones
        .iter()
        .filter(|z| z.controller.is_some() && inputs.status(&z.apex).is_none_or(|st| st.origin == DataOrigin::None))
        .map(|z| api_zone(&z.apex))
        .collect()
}
