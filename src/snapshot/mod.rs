//! The immutable, pre-encoded data the DNS listeners answer from, and the atomic handle
//! through which it is replaced.
//!
//! Data flows one way: sources produce [`records::ZoneData`], [`build::build_zone`] compiles
//! each zone into a [`ZoneSnap`], the zones and the response settings form a [`Snapshot`],
//! and [`SnapshotHandle::publish`] swaps it in. Readers never lock: they load an `Arc`
//! through arc-swap and keep using it until they load again.

pub mod build;
pub mod encode;
pub mod fragment;
pub mod publisher;
pub mod records;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::dns::name::{Name, label_offsets};
use crate::dns::types::*;
use fragment::Fragment;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The responses for every query type at one name.
#[derive(Debug)]
pub struct Answers {
    /// Answers for the types present (or reached through a CNAME chain).
    pub by_type: Box<[(u16, Fragment)]>,
    /// Answer for every other type: the CNAME chain without a final RRset, or `None` for
    /// the zone's shared NODATA.
    pub default: Option<Fragment>,
    /// Index into `by_type` of the RRset an ANY query gets (RFC 8482), if any.
    pub any: Option<u16>,
}

impl Answers {
    /// The response for `qtype`; `nodata` is the zone's shared NODATA answer.
    #[inline]
    pub fn get<'a>(&'a self, qtype: u16, nodata: &'a Fragment) -> &'a Fragment {
        let default = self.default.as_ref().unwrap_or(nodata);
        if qtype == TYPE_ANY {
            return match self.any {
                Some(i) => &self.by_type[i as usize].1,
                None => default,
            };
        }
        self.by_type.iter().find(|(t, _)| *t == qtype).map_or(default, |(_, f)| f)
    }
}

/// One name in a zone's table.
#[derive(Debug)]
pub enum Node {
    /// A name we answer for (possibly an empty non-terminal).
    Auth {
        /// Answers at the name itself.
        answers: Answers,
        /// Answers synthesised from `*.<name>` for names below it that do not exist.
        wildcard: Option<Box<Answers>>,
    },
    /// A delegation point: the name and everything below it is referred, except DS at the
    /// cut, which the parent side answers (NODATA here).
    Cut {
        /// The referral (NS in authority, glue in additional, AA clear).
        referral: Fragment,
    },
}

/// One zone, compiled.
#[derive(Debug)]
pub struct ZoneSnap {
    /// The apex.
    pub apex: Name,
    /// Wire length of the apex.
    pub apex_len: usize,
    /// SOA serial in this build.
    pub serial: u32,
    /// Resource records in the zone, SOA included.
    pub record_count: usize,
    /// Every existing name, lower-cased wire form.
    pub nodes: FastMap<Box<[u8]>, Node>,
    /// NXDOMAIN, encoded for the apex and relocated for longer names.
    pub nxdomain: Fragment,
    /// NODATA (NOERROR, SOA in authority), shared by every name the same way.
    pub nodata: Fragment,
}

impl ZoneSnap {
    /// The response for a name inside this zone.
    #[inline]
    pub fn lookup(&self, qname: &[u8], qtype: u16) -> &Fragment {
        if let Some(node) = self.nodes.get(qname) {
            return match node {
                Node::Auth { answers, .. } => answers.get(qtype, &self.nodata),
                Node::Cut { .. } if qtype == TYPE_DS => &self.nodata,
                Node::Cut { referral } => referral,
            };
        }
        // The first existing ancestor is the closest encloser: a cut refers, a wildcard
        // synthesises, anything else means the name does not exist.
        for off in label_offsets(qname).skip(1) {
            if qname.len() - off < self.apex_len {
                break;
            }
            if let Some(node) = self.nodes.get(&qname[off..]) {
                return match node {
                    Node::Cut { referral, .. } => referral,
                    Node::Auth { wildcard: Some(w), .. } => w.get(qtype, &self.nodata),
                    Node::Auth { .. } => &self.nxdomain,
                };
            }
        }
        &self.nxdomain
    }
}

/// Listener settings that travel with the data, so a reload swaps them atomically too.
#[derive(Debug, Clone, Default)]
pub struct ServerSettings {
    /// Our EDNS UDP payload size.
    pub max_udp_payload: u16,
    /// NSID option payload (RFC 5001), if configured.
    pub nsid: Option<Box<[u8]>>,
    /// How long an idle TCP connection is kept.
    pub tcp_idle_timeout: std::time::Duration,
    /// Most TCP connections open at once.
    pub max_tcp_connections: usize,
}

/// Everything a DNS query needs, immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every published snapshot.
    pub generation: u64,
    /// Zones by lower-cased wire apex (shared with earlier snapshots when unchanged).
    pub zones: FastMap<Box<[u8]>, Arc<ZoneSnap>>,
    /// Listener and response settings.
    pub settings: ServerSettings,
    /// CHAOS-class TXT answers (`version.bind`, `id.server`, ...), by wire name.
    pub chaos: Box<[(Box<[u8]>, Fragment)]>,
}

impl Snapshot {
    /// Assembles a snapshot from compiled zones.
    pub fn new(
        generation: u64,
        zones: Vec<Arc<ZoneSnap>>,
        settings: ServerSettings,
        chaos: Vec<(Name, Fragment)>,
    ) -> Snapshot {
        Snapshot {
            generation,
            zones: zones.into_iter().map(|z| (z.apex.as_wire().into(), z)).collect(),
            settings,
            chaos: chaos.into_iter().map(|(n, f)| (n.as_wire().into(), f)).collect(),
        }
    }

    /// The zone with the longest apex that contains `qname`.
    #[inline]
    pub fn find_zone(&self, qname: &[u8]) -> Option<&ZoneSnap> {
        label_offsets(qname)
            .chain(std::iter::once(qname.len().saturating_sub(1)))
            .find_map(|off| self.zones.get(&qname[off..]).map(|z| &**z))
    }

    /// The zone with exactly this apex.
    pub fn zone(&self, apex: &Name) -> Option<&ZoneSnap> {
        self.zones.get(apex.as_wire()).map(|z| &**z)
    }
}

/// The single place the current snapshot lives. Cloning shares it.
#[derive(Clone)]
pub struct SnapshotHandle(Arc<ArcSwap<Snapshot>>);

impl SnapshotHandle {
    /// Wraps the first snapshot.
    pub fn new(first: Snapshot) -> SnapshotHandle {
        SnapshotHandle(Arc::new(ArcSwap::from_pointee(first)))
    }

    /// The current snapshot (cheap; do not hold across long waits).
    pub fn load(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }

    /// A per-thread cache whose `load` costs one pointer comparison when nothing changed.
    pub fn cache(&self) -> arc_swap::Cache<Arc<ArcSwap<Snapshot>>, Arc<Snapshot>> {
        arc_swap::Cache::new(Arc::clone(&self.0))
    }

    /// Replaces the snapshot; readers see the new one on their next load.
    pub fn publish(&self, next: Snapshot) {
        self.0.store(Arc::new(next));
    }
}
