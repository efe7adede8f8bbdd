//! Turns the current inputs (the validated config today; controller, webhook and pool data
//! later) into a [`Snapshot`] and publishes it. The only caller of `SnapshotHandle::publish`.
//!
//! It also owns the SOA serials: a zone whose content changed gets a new serial (the unix
//! time, kept strictly increasing), an unchanged zone keeps its serial across rebuilds and
//! reloads, and a serial fixed in the config is used as is.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::dns::name::Name;
use crate::dns::types::*;
use crate::snapshot::build::build_zone;
use crate::snapshot::encode::Encoder;
use crate::snapshot::fragment::Fragment;
use crate::snapshot::records::{RData, Source, ZoneData};
use crate::snapshot::{ServerSettings, Snapshot, SnapshotHandle};

/// Builds and publishes snapshots; remembers what it published last.
pub struct Publisher {
    handle: SnapshotHandle,
    generation: u64,
    /// Per zone: the content last published (serial zeroed) and its serial.
    serials: HashMap<Name, (ZoneData, u32)>,
}

impl Publisher {
    /// Builds the first snapshot from `config` and returns the publisher holding it.
    pub fn new(config: &Config) -> Publisher {
        let mut serials = HashMap::new();
        let snapshot = compile(config, 1, &mut serials);
        Publisher {
            handle: SnapshotHandle::new(snapshot),
            generation: 1,
            serials,
        }
    }

    /// The handle readers load from.
    pub fn handle(&self) -> &SnapshotHandle {
        &self.handle
    }

    /// Rebuilds everything from `config` and swaps it in.
    pub fn publish(&mut self, config: &Config) {
        self.generation += 1;
        let snapshot = compile(config, self.generation, &mut self.serials);
        self.handle.publish(snapshot);
    }
}

fn now_unix() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

fn compile(config: &Config, generation: u64, serials: &mut HashMap<Name, (ZoneData, u32)>) -> Snapshot {
    let mut zones = Vec::with_capacity(config.zones.len());
    let mut next_serials = HashMap::with_capacity(config.zones.len());
    for zone in &config.zones {
        let mut data = zone.data.clone();
        data.soa.serial = 0;
        let serial = match (zone.serial, serials.get(&zone.apex)) {
            (Some(fixed), _) => fixed,
            (None, Some((last, serial))) if *last == data => *serial,
            (None, Some((_, serial))) => now_unix().max(serial.wrapping_add(1)),
            (None, None) => now_unix(),
        };
        next_serials.insert(zone.apex.clone(), (data.clone(), serial));
        data.soa.serial = serial;
        zones.push(build_zone(&data));
    }
    *serials = next_serials;
    let server = &config.server;
    let settings = ServerSettings {
        max_udp_payload: server.max_udp_payload,
        nsid: server.nsid.as_ref().map(|s| s.as_bytes().into()),
        tcp_idle_timeout: server.tcp_idle_timeout,
        max_tcp_connections: server.max_tcp_connections,
    };
    let mut chaos = Vec::new();
    for (names, value) in [
        (["version.bind.", "version.server."], &server.version),
        (["id.server.", "hostname.bind."], &server.identity),
    ] {
        if let Some(value) = value {
            for name in names {
                let name = Name::parse(name, None).expect("static name");
                chaos.push((name.clone(), chaos_txt(&name, value)));
            }
        }
    }
    Snapshot::new(generation, zones, settings, chaos)
}

/// A CHAOS-class TXT answer holding `text` (at most 255 bytes, checked by the config).
fn chaos_txt(name: &Name, text: &str) -> Fragment {
    let mut data = Vec::with_capacity(text.len() + 1);
    data.push(text.len() as u8);
    data.extend_from_slice(text.as_bytes());
    let mut enc = Encoder::new(name, false);
    enc.record(
        name,
        CLASS_CH,
        0,
        &RData::Other {
            rtype: TYPE_TXT,
            data: data.into_boxed_slice(),
        },
    );
    enc.finish(RCODE_NOERROR, true, Source::Static)
}
