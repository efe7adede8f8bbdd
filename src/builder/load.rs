//! Start-up: each zone's last-known-good records from its state file, the pushes its
//! journal acknowledged after that file was written, and ExternalDNS's endpoints, read
//! before the first build.

use std::collections::HashMap;
use std::sync::Arc;

use super::held::{self, Held, HeldZone, Packed};
use super::status::DataOrigin;
use super::zone::ZoneState;
use crate::config::{Config, ZoneConfig};
use crate::dns::name::Name;
use crate::elchi::api;
use crate::elchi::journal::{self, Journal};
use crate::elchi::state_file;

/// Largest state file read for a zone without a controller (pushed records only); controller
/// zones use their `max_response_size`.
const DEFAULT_STATE_MAX: usize = 64 << 20;

/// What start-up read.
pub struct Loaded {
    /// Every zone of the config.
    pub zones: HashMap<Name, ZoneState>,
    /// Zones read from a state file, with the file's bytes to hold as their compact form
    /// (none: the file was not sorted by name, so it is written again).
    pub from_file: Vec<(Name, Option<Packed>)>,
    /// Zones whose journal had pushes the state file lacks (their file is written again).
    pub replayed: Vec<Name>,
}

/// Reads every zone's state file and journal; with `writable`, journals are opened for
/// appending.
pub fn load(config: &Config, writable: bool) -> Loaded {
    let mut loaded = Loaded { zones: HashMap::new(), from_file: Vec::new(), replayed: Vec::new() };
    for zone in &config.zones {
        let one = load_zone(config, zone, writable);
        if one.from_file {
            loaded.from_file.push((zone.apex.clone(), one.packed));
        }
        if one.replayed {
            loaded.replayed.push(zone.apex.clone());
        }
        loaded.zones.insert(zone.apex.clone(), one.state);
    }
    loaded
}

/// One zone as its files hold it.
pub struct LoadedZone {
    /// Its state.
    pub state: ZoneState,
    /// It was read from a state file.
    pub from_file: bool,
    /// The file's bytes, to hold as the zone's compact form (none: not sorted by name).
    pub packed: Option<Packed>,
    /// Its journal had pushes the state file lacks.
    pub replayed: bool,
}

/// Reads one zone's state file and the pushes its journal acknowledged after that file was
/// written (at start-up, and for a zone a reload adds).
pub fn load_zone(config: &Config, zone: &ZoneConfig, writable: bool) -> LoadedZone {
    let mut loaded = LoadedZone { state: ZoneState::new(zone), from_file: false, packed: None, replayed: false };
    let state = &mut loaded.state;
    let max = zone.controller.as_ref().map_or(DEFAULT_STATE_MAX, |c| c.max_response_size);
    let mut file_seq = 0;
    match state_file::load(&config.state.dir, &zone.apex, max) {
        Ok(Some(file)) => {
            file_seq = file.journal_seq;
            // Decoded once, for the first build; afterwards the zone holds the file's own
            // record bytes as its compact form when they are sorted.
            let started = std::time::Instant::now();
            let (nodes, packed) = held::unpack_indexed(&file.records_json, &zone.apex, zone.default_ttl, file.sorted);
            let took_ms = started.elapsed().as_millis() as u64;
            tracing::debug!(zone = %zone.apex, took_ms, "state file decoded");
            tracing::info!(
                zone = %zone.apex,
                version_hash = %file.version_hash,
                records = nodes.len(),
                "serving last-known-good controller data from disk until the controller answers"
            );
            if let Some(st) = &mut state.status {
                st.origin = DataOrigin::Disk;
                st.records = api::rr_count(&nodes);
                st.version_hash = Some(file.version_hash.clone());
            }
            state.held = Some(HeldZone::new(file.version_hash, Held::Converted(Arc::new(nodes))));
            loaded.from_file = true;
            loaded.packed = packed;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(zone = %zone.apex, error = %e, "ignoring the state file; waiting for the controller")
        }
    }
    // Pushes acknowledged after the state file was written are in the journal.
    match journal::read(&config.state.dir, &zone.apex) {
        Ok(read) => {
            if let Some(why) = &read.torn {
                tracing::warn!(zone = %zone.apex, "ignoring the end of the push journal: {why}");
            }
            let newer: Vec<&journal::Entry> = read.entries.iter().filter(|e| e.seq > file_seq).collect();
            for e in &newer {
                state.replay(zone, e);
            }
            if !newer.is_empty() {
                tracing::info!(zone = %zone.apex, pushes = newer.len(), "replayed acknowledged pushes from the journal");
                loaded.replayed = true;
            }
            let last = read.entries.last().map_or(file_seq, |e| e.seq.max(file_seq));
            let open = (writable && !read.entries.is_empty())
                .then(|| Journal::open(&config.state.dir, &zone.apex, &read.ends));
            let journal = match open {
                Some(Ok(j)) => Some(j),
                Some(Err(e)) => {
                    tracing::error!(zone = %zone.apex, error = %e, "cannot open the push journal");
                    None
                }
                None => None,
            };
            state.resume_journal(last, journal);
        }
        Err(e) => {
            tracing::error!(zone = %zone.apex, error = %e, "cannot read the push journal; its pushes are lost")
        }
    }
    loaded.state.load_endpoints(config, zone);
    loaded
}
