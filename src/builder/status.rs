//! The sync status of each controller zone: where its data came from, the last success,
//! attempt and error, and the counters the admin API and metrics report.

use std::time::SystemTime;

/// Where a controller zone's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataOrigin {
    /// Nothing yet: the zone serves only its static records.
    None,
    /// The controller, in this process's lifetime.
    Controller,
    /// The last-known-good state file, until the controller answers.
    Disk,
}

impl DataOrigin {
    /// Lower-case label for JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DataOrigin::None => "none",
            DataOrigin::Controller => "controller",
            DataOrigin::Disk => "disk",
        }
    }
}

/// Sync state of one controller zone, for logs, metrics and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// Where the current data came from.
    pub origin: DataOrigin,
    /// Version hash of the current data.
    pub version_hash: Option<String>,
    /// Controller resource records currently held (upstream's `records_count`).
    pub records: usize,
    /// Last successful exchange with the controller (including "unchanged").
    pub last_success: Option<SystemTime>,
    /// Last attempt.
    pub last_attempt: Option<SystemTime>,
    /// Last error, cleared by a success.
    pub last_error: Option<String>,
    /// Failed snapshot requests.
    pub snapshot_errors: u64,
    /// Failed changes requests.
    pub changes_errors: u64,
    /// Records skipped as invalid in accepted responses.
    pub skipped_records: u64,
    /// Why the last response was refused, until one is taken (the zone is degraded).
    pub refused: Option<String>,
}

impl Default for SyncStatus {
    fn default() -> Self {
        SyncStatus {
            origin: DataOrigin::None,
            version_hash: None,
            records: 0,
            last_success: None,
            last_attempt: None,
            last_error: None,
            snapshot_errors: 0,
            changes_errors: 0,
            skipped_records: 0,
            refused: None,
        }
    }
}

/// Which controller request an outcome belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// `GET /dns/snapshot`.
    Snapshot,
    /// `GET /dns/changes`.
    Changes,
}

impl SyncKind {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Snapshot => "snapshot",
            SyncKind::Changes => "changes",
        }
    }
}
