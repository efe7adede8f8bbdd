//! The event log: the last [`CAPACITY`] changes the builder made or saw, each with its time
//! and reason (health transitions with the probe's error, cluster fallbacks, controller
//! syncs, pushes with their counts, ExternalDNS batches, drains, reloads, build failures),
//! numbered so a reader can ask for what came after the last one it saw (`GET /events?since=`).
//! The builder is the only writer; the admin view shares the entries (`Arc`), so publishing
//! copies pointers, not entries.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

/// Entries kept.
pub const CAPACITY: usize = 1000;

/// One change.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Its number: one more than the entry before (the `since` cursor).
    pub seq: u64,
    /// When it happened (RFC 3339, seconds).
    pub at: String,
    /// `health`, `cluster`, `sync`, `push`, `externaldns`, `members`, `reload`, `build`.
    pub kind: &'static str,
    /// The zone, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// What happened, in a sentence.
    pub message: String,
    /// The facts behind it (pool, member, address, error, counts...).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// The log.
#[derive(Debug, Default, Clone)]
pub struct EventLog {
    entries: Arc<VecDeque<Arc<Entry>>>,
    next: u64,
}

impl EventLog {
    /// Adds an entry now; the oldest goes beyond [`CAPACITY`].
    pub fn add(
        &mut self,
        kind: &'static str,
        zone: Option<&crate::dns::name::Name>,
        message: impl Into<String>,
        details: serde_json::Value,
    ) {
        self.next += 1;
        let details = match details {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let entry = Entry {
            seq: self.next,
            at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            kind,
            zone: zone.map(|z| z.to_string()),
            message: message.into(),
            details,
        };
        let entries = Arc::make_mut(&mut self.entries);
        if entries.len() == CAPACITY {
            entries.pop_front();
        }
        entries.push_back(Arc::new(entry));
    }

    /// The entries, shared (for the admin view).
    pub fn shared(&self) -> Arc<VecDeque<Arc<Entry>>> {
        Arc::clone(&self.entries)
    }
}

/// The entries after `since` (all when it is older than the oldest kept), at most `limit`,
/// oldest first; and whether older ones after `since` were dropped from the log meanwhile.
pub fn after(entries: &VecDeque<Arc<Entry>>, since: u64, limit: usize) -> (Vec<Arc<Entry>>, bool) {
    let start = entries.partition_point(|e| e.seq <= since);
    let gap = entries.front().is_some_and(|e| e.seq > since + 1) && since > 0;
    (entries.iter().skip(start).take(limit).cloned().collect(), gap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_what_came_after_it() {
        let mut log = EventLog::default();
        for i in 0..(CAPACITY + 5) {
            log.add("push", None, format!("push {i}"), serde_json::json!({"i": i}));
        }
        let entries = log.shared();
        assert_eq!(entries.len(), CAPACITY);
        assert_eq!(entries.front().unwrap().seq, 6);
        let (got, gap) = after(&entries, 1000, 3);
        assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), [1001, 1002, 1003]);
        assert!(!gap);
        let (got, gap) = after(&entries, 2, 2);
        assert_eq!((got[0].seq, gap), (6, true), "entries 3 to 5 were dropped");
        assert!(after(&entries, 1005, 10).0.is_empty());
    }
}
