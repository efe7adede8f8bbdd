//! Publishing: the compiled zones with the server settings and the CHAOS answers into one
//! [`Snapshot`], swapped in atomically. The only caller of `SnapshotHandle::publish`.

use std::sync::Arc;

use super::compile::Compiler;
use crate::config::Config;
use crate::dns::name::Name;
use crate::dns::records::{RData, Source};
use crate::dns::types::*;
use crate::snapshot::encode::{Encoder, Scratch};
use crate::snapshot::fragment::{Arena, Fragment};
use crate::snapshot::{ServerSettings, Snapshot, SnapshotHandle};

/// Where snapshots are published, and how many were.
pub struct Publisher {
    handle: SnapshotHandle,
    generation: u64,
}

impl Default for Publisher {
    fn default() -> Publisher {
        let empty = Snapshot::new(0, Vec::new(), ServerSettings::default(), Vec::new(), Arena::default(), Arc::new([]));
        Publisher { handle: SnapshotHandle::new(empty), generation: 0 }
    }
}

impl Publisher {
    /// The handle readers load from.
    pub fn handle(&self) -> &SnapshotHandle {
        &self.handle
    }

    /// Publishes the compiler's zones under `config`'s settings, with the zones' transfers.
    pub fn publish(
        &mut self,
        config: &Config,
        compiler: &Compiler,
        transfers: &std::collections::HashMap<Name, Arc<crate::snapshot::Transfer>>,
    ) {
        self.generation += 1;
        let (chaos, chaos_arena) = chaos(config);
        let (slot_names, geo_labels) = compiler.labels(config);
        let snapshot =
            Snapshot::new(self.generation, compiler.zones(transfers), settings(config), chaos, chaos_arena, slot_names);
        self.handle.publish(snapshot.with_geo(compiler.maps(), Arc::new(geo_labels)));
    }
}

fn settings(config: &Config) -> ServerSettings {
    let server = &config.server;
    ServerSettings {
        max_udp_payload: server.max_udp_payload,
        nsid: server.nsid.as_ref().map(|s| s.as_bytes().into()),
        tcp_idle_timeout: server.tcp_idle_timeout,
        max_tcp_connections: server.max_tcp_connections,
        max_tcp_per_client: server.max_tcp_per_client,
        ecs: server.ecs,
        dnstap: config.log.dnstap.as_ref().map(|d| crate::snapshot::TapFilter {
            queries: !d.responses_only,
            rcodes: d.rcodes.iter().filter(|&&r| r < 32).fold(0, |mask, &r| mask | 1 << r),
        }),
        rrl: config.rrl.as_ref().map(rrl_settings),
        cookies: server.cookies.as_ref().map(|c| crate::snapshot::CookieSettings {
            secret: c.secret,
            previous: c.previous,
            required: c.required,
        }),
        tsig_keys: std::sync::Arc::clone(&config.tsig_keys),
    }
}

/// The query path's copy of `[rrl]`.
fn rrl_settings(c: &crate::config::rrl::RrlConfig) -> crate::snapshot::RrlSettings {
    crate::snapshot::RrlSettings {
        responses_per_second: c.responses_per_second,
        nxdomains_per_second: c.nxdomains_per_second,
        errors_per_second: c.errors_per_second,
        window: c.window,
        slip: c.slip,
        ipv4_prefix: c.ipv4_prefix,
        ipv6_prefix: c.ipv6_prefix,
        exempt: c.exempt.clone(),
        log_only: c.log_only,
        table_size: c.table_size,
    }
}

fn chaos(config: &Config) -> (Vec<(Name, Fragment)>, Arena) {
    let server = &config.server;
    let mut chaos = Vec::new();
    let mut arena = Arena::default();
    let mut scratch = Scratch::default();
    for (names, value) in
        [(["version.bind.", "version.server."], &server.version), (["id.server.", "hostname.bind."], &server.identity)]
    {
        if let Some(text) = value {
            // One TXT character-string (at most 255 bytes, checked by the config).
            let mut data = Vec::with_capacity(text.len() + 1);
            data.push(text.len() as u8);
            data.extend_from_slice(text.as_bytes());
            let rdata = RData::Other { rtype: TYPE_TXT, data: data.into_boxed_slice() };
            for name in names {
                let name = Name::parse(name, None).expect("static name");
                let mut enc = Encoder::new(&mut scratch, &name, false);
                enc.record(&name, CLASS_CH, 0, &rdata);
                let f = enc.finish(&mut arena, RCODE_NOERROR, true, Source::Static);
                chaos.push((name, f));
            }
        }
    }
    (chaos, arena)
}
