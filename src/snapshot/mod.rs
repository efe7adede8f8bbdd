//! The immutable, pre-encoded data the DNS listeners answer from, and the atomic handle
//! through which it is replaced.
//!
//! Data flows one way: sources produce [`crate::dns::records::ZoneData`], [`build::build_zone`] compiles
//! each zone into a [`ZoneSnap`], the zones and the response settings form a [`Snapshot`],
//! and [`SnapshotHandle::publish`] swaps it in. Readers never lock: they load an `Arc`
//! through arc-swap and keep using it until they load again.

pub mod build;
pub mod encode;
pub mod fragment;
pub mod geo;
pub mod policy;
pub mod reclaim;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::dns::name::{Name, label_offsets};
use std::hash::BuildHasher;

use crate::dns::types::*;
use fragment::{Arena, Fragment};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Zones counted separately; slot 0 is "no zone" (refused, malformed). Later zones share
/// the last slot, so label values stay bounded.
pub const ZONE_SLOTS: usize = 64;

/// Marks an absent fragment or wildcard index.
pub const NONE: u32 = u32::MAX;
/// A wildcard index meaning "the wildcard is answered by the zone's dynamic layer" (a
/// delegate pool at `*`).
pub const DYNAMIC_WILDCARD: u32 = u32::MAX - 1;

/// The responses for every query type at one name: a run of `(qtype, fragment)` pairs in
/// the zone's type table, plus the answers for other types and for ANY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerSet {
    /// First entry in `ZoneSnap::types`.
    pub types_start: u32,
    /// Number of entries.
    pub types_len: u16,
    /// Fragment for any other type: the CNAME chain without a final RRset, or [`NONE`] for
    /// the zone's shared NODATA.
    pub default: u32,
    /// Fragment for ANY (RFC 8482: one RRset), or [`NONE`] for NODATA.
    pub any: u32,
}

impl AnswerSet {
    /// An empty non-terminal: NODATA for everything.
    pub const EMPTY: AnswerSet = AnswerSet { types_start: 0, types_len: 0, default: NONE, any: NONE };
}

/// One name in a zone's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRec {
    /// Start of the name in `ZoneSnap::names`.
    pub name_start: u32,
    /// Length of the wire name.
    pub name_len: u16,
    /// Its answers live in the zone's dynamic layer (a pool's name, its glue hosts): a query
    /// at or below it is answered there.
    pub dynamic: bool,
    /// In an overlay: the name no longer exists (its records were deleted), whatever the
    /// base says.
    pub gone: bool,
    /// In a dynamic layer: one of the layer's own names (a pool, a glue host, a geo name),
    /// which the base marks [`NodeRec::dynamic`]: a query for exactly this name is answered
    /// from the layer without asking the base first.
    pub owned: bool,
    /// Existing names one label below (in a base; overlays track changes to it apart).
    pub children: u32,
    /// Answers at the name itself.
    pub answers: AnswerSet,
    /// Index into `ZoneSnap::wildcards` of the answers synthesised from `*.<name>`, or [`NONE`].
    pub wildcard: u32,
    /// For a delegation point: the referral fragment (the name and everything below it is
    /// referred, except DS at the cut, answered NODATA here). [`NONE`] otherwise.
    pub referral: u32,
}

impl NodeRec {
    /// The node's wire name, in its zone's `names`.
    #[inline]
    pub fn wire<'n>(&self, names: &'n [u8]) -> &'n [u8] {
        &names[self.name_start as usize..self.name_start as usize + self.name_len as usize]
    }
}

/// One zone, compiled: every name in a hash table, every response pre-encoded in one arena.
#[derive(Debug)]
pub struct ZoneSnap {
    /// The apex.
    pub apex: Name,
    /// Wire length of the apex.
    pub apex_len: usize,
    /// SOA serial in this build.
    pub serial: u32,
    /// Metrics slot of the zone (stable across rebuilds; see `server::stats`).
    pub slot: u16,
    /// Resource records in the zone, SOA included.
    pub record_count: usize,
    /// Encoded fragments.
    pub arena: Arena,
    /// Every fragment of the zone.
    pub frags: Vec<Fragment>,
    /// The signed twins of fragments, for DO queries to a signed zone (`Fragment::signed`).
    pub signed: Vec<Fragment>,
    /// `(qtype, fragment)` runs referenced by [`AnswerSet`]s.
    pub types: Vec<(u16, u32)>,
    /// Wire names of all nodes, back to back.
    pub names: Vec<u8>,
    /// Every existing name (with data, an empty non-terminal or a cut).
    pub nodes: Vec<NodeRec>,
    /// Wildcard answer sets.
    pub wildcards: Vec<AnswerSet>,
    /// Answers drawn per query (weighted pools), referenced by `Fragment::weighted`.
    pub weighted: Vec<fragment::WeightedAnswer>,
    /// Answers chosen by the client's location (geo pools and names), referenced by
    /// `Fragment::geo`.
    pub geo: Vec<geo::GeoAnswer>,
    /// The geo pools' patterns, back to back (see [`geo::GeoKind::Pool`]).
    pub geo_patterns: Vec<geo::PatternEntry>,
    /// The geo names' targets by datacenter, back to back (see [`geo::GeoKind::Names`]).
    pub geo_targets: Vec<Option<Box<[u8]>>>,
    /// Node indexes by name hash.
    pub index: hashbrown::HashTable<u32>,
    /// Hasher for `index`.
    pub hasher: foldhash::fast::RandomState,
    /// NXDOMAIN, encoded for the apex and relocated for longer names.
    pub nxdomain: u32,
    /// NODATA (NOERROR, SOA in authority), shared by every name.
    pub nodata: u32,
}

impl ZoneSnap {
    /// Heap bytes held by this zone (tables and arenas), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.arena.bytes.capacity()
            + self.arena.words.capacity() * 2
            + (self.frags.capacity() + self.signed.capacity()) * size_of::<Fragment>()
            + self.types.capacity() * size_of::<(u16, u32)>()
            + self.names.capacity()
            + self.nodes.capacity() * size_of::<NodeRec>()
            + self.wildcards.capacity() * size_of::<AnswerSet>()
            + self.geo.capacity() * size_of::<geo::GeoAnswer>()
            + self.geo_patterns.capacity() * size_of::<geo::PatternEntry>()
            + self.index.capacity() * (size_of::<u32>() + 1)
    }

    /// The position in `nodes` of an exact name.
    pub fn node_index(&self, name: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(name);
        self.index.find(hash, |&i| same_name(self.nodes[i as usize].wire(&self.names), name)).map(|&i| i as usize)
    }

    /// The types a node holds: NS (and DS) at a cut, CNAME at an alias, else the types it
    /// answers.
    pub fn node_types(&self, n: &NodeRec, out: &mut Vec<u16>) {
        if n.referral != NONE {
            out.push(TYPE_NS);
        }
        self.set_types(&n.answers, out);
    }

    /// The types of an answer set (just CNAME for an alias: the others are its chain's).
    fn set_types(&self, set: &AnswerSet, out: &mut Vec<u16>) {
        let start = set.types_start as usize;
        let run = &self.types[start..start + set.types_len as usize];
        if run.iter().any(|(t, _)| *t == TYPE_CNAME) {
            out.push(TYPE_CNAME);
        } else {
            out.extend(run.iter().map(|(t, _)| *t));
        }
    }

    /// The node of an exact name.
    #[inline]
    pub fn node(&self, name: &[u8]) -> Option<&NodeRec> {
        let hash = self.hasher.hash_one(name);
        self.index
            .find(hash, |&i| same_name(self.nodes[i as usize].wire(&self.names), name))
            .map(|&i| &self.nodes[i as usize])
    }

    #[inline]
    fn answer(&self, set: &AnswerSet, qtype: u16) -> &Fragment {
        let default = if set.default == NONE { self.nodata } else { set.default };
        let id = if qtype == TYPE_ANY {
            if set.any == NONE { default } else { set.any }
        } else {
            let start = set.types_start as usize;
            self.types[start..start + set.types_len as usize]
                .iter()
                .find(|(t, _)| *t == qtype)
                .map_or(default, |&(_, f)| f)
        };
        &self.frags[id as usize]
    }

    /// The response for a name inside this zone, or [`Hit::Dynamic`] when the zone's
    /// dynamic layer answers it.
    #[inline]
    pub fn find(&self, qname: &[u8], qtype: u16) -> Hit<'_> {
        find_in(|n| self.node(n).map(|r| (r, self)), self, qname, qtype)
    }

    /// Like [`ZoneSnap::find`] for a CNAME target that a chain from elsewhere reached, but
    /// `None` where the answer depends on the question name in a way a chained answer cannot
    /// express (wildcard synthesis) or is not ours to give (a referral); the chain then ends
    /// at the CNAME and the resolver continues.
    #[inline]
    pub fn chase_find(&self, qname: &[u8], qtype: u16) -> Option<Hit<'_>> {
        chase_in(|n| self.node(n).map(|r| (r, self)), self, qname, qtype)
    }
}

/// The lookup shared by a single compiled part and a base with its overlay: `node` finds an
/// existing name (and the part that holds it), `newest` gives the negative answers (the
/// newest part carries the current SOA serial).
#[inline(always)]
fn find_in<'a>(
    node: impl Fn(&[u8]) -> Option<(&'a NodeRec, &'a ZoneSnap)>,
    newest: &'a ZoneSnap,
    qname: &[u8],
    qtype: u16,
) -> Hit<'a> {
    if let Some((n, part)) = node(qname) {
        if n.dynamic {
            return Hit::Dynamic;
        }
        let (f, part) = exact(n, part, newest, qtype);
        return Hit::Frag(f, part);
    }
    // The first existing ancestor is the closest encloser: a cut refers, a wildcard
    // synthesises, anything else means the name does not exist.
    for off in label_offsets(qname).skip(1) {
        if qname.len() - off < newest.apex_len {
            break;
        }
        if let Some((n, part)) = node(&qname[off..]) {
            if n.dynamic || n.wildcard == DYNAMIC_WILDCARD {
                return Hit::Dynamic;
            }
            return if n.referral != NONE {
                Hit::Frag(&part.frags[n.referral as usize], part)
            } else if n.wildcard != NONE {
                Hit::Frag(part.answer(&part.wildcards[n.wildcard as usize], qtype), part)
            } else {
                Hit::Frag(&newest.frags[newest.nxdomain as usize], newest)
            };
        }
    }
    Hit::Frag(&newest.frags[newest.nxdomain as usize], newest)
}

/// The response at an existing name held by `part`: its answer for `qtype`, or at a cut
/// the referral (DS at the cut is NODATA from `newest`, the parent side's answer).
#[inline(always)]
fn exact<'a>(n: &NodeRec, part: &'a ZoneSnap, newest: &'a ZoneSnap, qtype: u16) -> (&'a Fragment, &'a ZoneSnap) {
    match n.referral {
        NONE => (part.answer(&n.answers, qtype), part),
        _ if qtype == TYPE_DS && n.answers.types_len > 0 => (part.answer(&n.answers, qtype), part),
        _ if qtype == TYPE_DS => (&newest.frags[newest.nodata as usize], newest),
        referral => (&part.frags[referral as usize], part),
    }
}

/// [`find_in`] for a CNAME target reached from elsewhere (see [`ZoneSnap::chase_find`]).
#[inline(always)]
fn chase_in<'a>(
    node: impl Fn(&[u8]) -> Option<(&'a NodeRec, &'a ZoneSnap)>,
    newest: &'a ZoneSnap,
    qname: &[u8],
    qtype: u16,
) -> Option<Hit<'a>> {
    if let Some((n, part)) = node(qname) {
        if n.dynamic {
            return Some(Hit::Dynamic);
        }
        return (n.referral == NONE).then(|| Hit::Frag(part.answer(&n.answers, qtype), part));
    }
    for off in label_offsets(qname).skip(1) {
        if qname.len() - off < newest.apex_len {
            break;
        }
        if let Some((n, _)) = node(&qname[off..]) {
            if n.dynamic {
                return Some(Hit::Dynamic);
            }
            let plain = n.referral == NONE && n.wildcard == NONE;
            return plain.then(|| Hit::Frag(&newest.frags[newest.nxdomain as usize], newest));
        }
    }
    Some(Hit::Frag(&newest.frags[newest.nxdomain as usize], newest))
}

/// What a zone's compiled records say about a query.
#[derive(Debug, Clone, Copy)]
pub enum Hit<'a> {
    /// This response, and the compiled part whose arena and weighted picks it points into.
    Frag(&'a Fragment, &'a ZoneSnap),
    /// Ask the zone's dynamic layer.
    Dynamic,
}

/// A zone as the query path sees it: its compiled records, the names changed since they were
/// compiled, and the answers that depend on health (its pools), each compiled apart so that a
/// push recompiles only the names it changed and a health change only the pools.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Everything but the pools' answers; pool names are marked [`NodeRec::dynamic`].
    pub base: Arc<ZoneSnap>,
    /// The names pushed since the base was compiled (with the apex, for the current SOA
    /// serial), compiled alone and asked first; a name marked [`NodeRec::gone`] there no
    /// longer exists. Folded into a new base from time to time.
    pub overlay: Option<Arc<ZoneSnap>>,
    /// The pools' names and glue with their current answers, when the zone has pools.
    pub dynamic: Option<Arc<ZoneSnap>>,
    /// A signed zone: signs what is answered per query (compact denials, per-query draws).
    pub signer: Option<Arc<crate::dnssec::online::OnlineSigner>>,
    /// A zone with `[zone.transfer]`: who may transfer it and what a transfer carries.
    pub transfer: Option<Arc<Transfer>>,
}

/// A zone's records as a secondary is to serve them, made when a transfer asks for them (not
/// kept per record: the builder's records are shared with it).
pub trait TransferContent: Send + Sync {
    /// Gives every RRset of the zone but the apex SOA, each (owner, type) once, in no
    /// particular order. `Err`: why the zone cannot be transferred now.
    fn rrsets(
        &self,
        each: &mut dyn FnMut(&crate::dns::name::Name, u16, &crate::dns::records::RRset),
    ) -> Result<(), String>;
}

/// What a zone transfer of one zone needs, published with the zone.
pub struct Transfer {
    /// Networks that may transfer without a key.
    pub allow: Box<[(std::net::IpAddr, u8)]>,
    /// Keys that may transfer from anywhere.
    pub keys: Box<[crate::dns::name::Name]>,
    /// Secondaries told of each new serial.
    pub also_notify: Box<[std::net::SocketAddr]>,
    /// The key NOTIFY is signed with (the first of `keys`).
    pub notify_key: Option<crate::dns::tsig::TsigKey>,
    /// The apex SOA, with the serial of this snapshot.
    pub soa: crate::dns::records::Soa,
    /// Its TTL.
    pub soa_ttl: u32,
    /// The records.
    pub content: Arc<dyn TransferContent>,
    /// The changes that led to this serial, oldest first, each from the serial the one
    /// before it led to (IXFR); empty when the history starts here.
    pub history: Arc<[Arc<TransferDelta>]>,
}

/// What changed from one serial to the next: whole RRsets taken away and put in (a changed
/// RRset is both).
#[derive(Debug, Default)]
pub struct TransferDelta {
    /// The serial before.
    pub from: u32,
    /// The serial after.
    pub to: u32,
    /// RRsets gone or replaced.
    pub removed: Vec<(crate::dns::name::Name, u16, crate::dns::records::RRset)>,
    /// RRsets new or replacing.
    pub added: Vec<(crate::dns::name::Name, u16, crate::dns::records::RRset)>,
}

impl TransferDelta {
    /// Records it carries.
    pub fn records(&self) -> usize {
        self.removed.iter().chain(&self.added).map(|(_, _, s)| s.rdata.len()).sum()
    }
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer").field("serial", &self.soa.serial).field("allow", &self.allow).finish()
    }
}

impl Zone {
    /// An existing name, from the overlay when it has the name, else from the base.
    #[inline(always)]
    fn node(&self, name: &[u8]) -> Option<(&NodeRec, &ZoneSnap)> {
        if let Some(o) = &self.overlay
            && let Some(n) = o.node(name)
        {
            return (!n.gone).then_some((n, &**o));
        }
        self.base.node(name).map(|n| (n, &*self.base))
    }

    /// The part with the current SOA serial: the overlay when there is one.
    #[inline(always)]
    pub fn newest(&self) -> &ZoneSnap {
        self.overlay.as_deref().unwrap_or(&self.base)
    }

    /// The response for a name inside this zone, and the compiled part it belongs to
    /// (whose arena and weighted picks it points into).
    #[inline]
    pub fn lookup(&self, qname: &[u8], qtype: u16) -> (&Fragment, &ZoneSnap) {
        // A pool's or geo name's own name: the small dynamic layer answers it (one lookup in
        // a table that stays in cache, instead of the base's and then the layer's).
        if let Some(d) = &self.dynamic
            && let Some(n) = d.node(qname)
            && n.owned
        {
            let (f, _) = exact(n, d, d, qtype);
            return self.negative_from_newest(f, d);
        }
        match (find_in(|n| self.node(n), self.newest(), qname, qtype), &self.dynamic) {
            (Hit::Frag(f, part), _) => (f, part),
            (Hit::Dynamic, Some(d)) => match d.find(qname, qtype) {
                Hit::Frag(f, _) => self.negative_from_newest(f, d),
                Hit::Dynamic => (&d.frags[d.nxdomain as usize], d),
            },
            // Marked dynamic without a layer cannot be built; answer as not existing.
            (Hit::Dynamic, None) => {
                let newest = self.newest();
                (&newest.frags[newest.nxdomain as usize], newest)
            }
        }
    }

    /// [`Zone::lookup`] for a CNAME target reached from elsewhere (see
    /// [`ZoneSnap::chase_find`]).
    #[inline]
    pub fn chase_lookup(&self, qname: &[u8], qtype: u16) -> Option<(&Fragment, &ZoneSnap)> {
        match (chase_in(|n| self.node(n), self.newest(), qname, qtype)?, &self.dynamic) {
            (Hit::Frag(f, part), _) => Some((f, part)),
            (Hit::Dynamic, Some(d)) => match d.chase_find(qname, qtype)? {
                Hit::Frag(f, _) => Some(self.negative_from_newest(f, d)),
                Hit::Dynamic => None,
            },
            (Hit::Dynamic, None) => None,
        }
    }

    /// The dynamic layer's NODATA and NXDOMAIN are the zone's (same shape, built for the
    /// apex): those carry the SOA of the zone's current serial, so the layer need not be
    /// recompiled when only the serial moved.
    #[inline]
    fn negative_from_newest<'a>(&'a self, f: &'a Fragment, d: &'a ZoneSnap) -> (&'a Fragment, &'a ZoneSnap) {
        let newest = self.newest();
        if std::ptr::eq(f, &d.frags[d.nodata as usize]) {
            (&newest.frags[newest.nodata as usize], newest)
        } else if std::ptr::eq(f, &d.frags[d.nxdomain as usize]) {
            (&newest.frags[newest.nxdomain as usize], newest)
        } else {
            (f, d)
        }
    }

    /// The types `qname` holds, for a compact denial's NSEC bitmap (into `out`); false when
    /// the name does not exist. A name a wildcard answers holds the wildcard's types; a cut
    /// holds NS (and DS when the zone has one there).
    pub fn types_at(&self, qname: &[u8], out: &mut Vec<u16>) -> bool {
        out.clear();
        if let Some(d) = &self.dynamic
            && let Some(n) = d.node(qname)
            && n.owned
        {
            d.node_types(n, out);
            return true;
        }
        if let Some((n, part)) = self.node(qname) {
            match (&self.dynamic, n.dynamic) {
                (Some(d), true) => {
                    if let Some(dn) = d.node(qname) {
                        d.node_types(dn, out);
                    }
                }
                _ => part.node_types(n, out),
            }
            return true;
        }
        let newest = self.newest();
        for off in label_offsets(qname).skip(1) {
            if qname.len() - off < newest.apex_len {
                break;
            }
            if let Some((n, part)) = self.node(&qname[off..]) {
                if n.referral == NONE && n.wildcard != NONE && n.wildcard != DYNAMIC_WILDCARD {
                    part.set_types(&part.wildcards[n.wildcard as usize], out);
                    return true;
                }
                return false;
            }
        }
        false
    }

    /// The zone's metrics slot.
    pub fn slot(&self) -> u16 {
        self.base.slot
    }

    /// The zone's SOA serial.
    pub fn serial(&self) -> u32 {
        self.newest().serial
    }

    /// Heap bytes held by all parts.
    pub fn heap_bytes(&self) -> usize {
        self.base.heap_bytes()
            + self.overlay.as_ref().map_or(0, |o| o.heap_bytes())
            + self.dynamic.as_ref().map_or(0, |d| d.heap_bytes())
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
    /// Most TCP connections open at once, over every listen address.
    pub max_tcp_connections: usize,
    /// Most TCP connections open at once from one client address.
    pub max_tcp_per_client: usize,
    /// EDNS Client Subnet is read and answered (RFC 7871).
    pub ecs: bool,
    /// Which exchanges dnstap logs; `None`: none.
    pub dnstap: Option<TapFilter>,
    /// Response rate limiting over UDP (`[rrl]`); `None`: off.
    pub rrl: Option<RrlSettings>,
    /// DNS Cookies; `None`: off (the option is ignored).
    pub cookies: Option<CookieSettings>,
    /// TSIG keys (`[[tsig_key]]`): signed queries are checked and answered signed.
    pub tsig_keys: Arc<[crate::dns::tsig::TsigKey]>,
}

/// DNS Cookies (RFC 7873, RFC 9018).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// The server secret cookies are made with.
    pub secret: [u8; 16],
    /// The secret before the last rotation: its cookies still verify.
    pub previous: Option<[u8; 16]>,
    /// UDP queries with a client cookie but no valid server cookie get BADCOOKIE.
    pub required: bool,
}

/// `[rrl]`: response rate limiting settings, read per query (the accounts themselves live
/// in `server::rrl`, outside the snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlSettings {
    /// NOERROR responses per second per client network, name and type.
    pub responses_per_second: u32,
    /// NXDOMAIN responses per second per client network and zone.
    pub nxdomains_per_second: u32,
    /// Other responses per second per client network.
    pub errors_per_second: u32,
    /// Seconds of responses an account may hold (its bucket is rate × window).
    pub window: u32,
    /// Every slip-th limited response is sent truncated; 0: none.
    pub slip: u32,
    /// Client network prefix lengths.
    pub ipv4_prefix: u8,
    /// As above, for IPv6.
    pub ipv6_prefix: u8,
    /// Networks never limited: address (host bits zero) and prefix length.
    pub exempt: Box<[(std::net::IpAddr, u8)]>,
    /// Count, but send everything.
    pub log_only: bool,
    /// Accounts kept (rounded up to a power of two; read when the table is first used).
    pub table_size: usize,
}

/// Which exchanges dnstap logs (`[log]`). Read per query from the snapshot, so a reload
/// changes it at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapFilter {
    /// AUTH_QUERY messages too, not only AUTH_RESPONSE.
    pub queries: bool,
    /// Bit `r` set: responses with RCODE `r` (below 32) are logged; 0: every RCODE.
    pub rcodes: u32,
}

impl TapFilter {
    /// Whether an exchange whose response has `rcode` is logged.
    #[inline]
    pub fn wants(&self, rcode: u16) -> bool {
        self.rcodes == 0 || (rcode < 32 && self.rcodes & (1 << rcode) != 0)
    }
}

/// Everything a DNS query needs, immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every published snapshot.
    pub generation: u64,
    /// Zones by lower-cased wire apex (their parts shared with earlier snapshots when
    /// unchanged).
    pub zones: FastMap<Box<[u8]>, Zone>,
    /// Listener and response settings.
    pub settings: ServerSettings,
    /// CHAOS-class TXT answers (`version.bind`, `id.server`, ...), by wire name.
    pub chaos: Box<[(Box<[u8]>, Fragment)]>,
    /// The bytes of the CHAOS answers.
    pub chaos_arena: Arena,
    /// Zone names by metrics slot (slot i+1 is element i), for the query counters.
    pub slot_names: Arc<[String]>,
    /// Location maps, compiled, by index in the config (`GeoAnswer::map`).
    pub geo: Arc<[geo::CompiledMap]>,
    /// Geo pool and name owners by metrics slot (`GeoAnswer::slot`), and the datacenter
    /// names, for the answer counters.
    pub geo_labels: Arc<GeoLabels>,
}

/// Labels of the geo answer counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GeoLabels {
    /// Pool or name owner by slot.
    pub owners: Vec<String>,
    /// Datacenter names by index.
    pub datacenters: Vec<String>,
}

impl Snapshot {
    /// Assembles a snapshot from compiled zones.
    pub fn new(
        generation: u64,
        zones: Vec<Zone>,
        settings: ServerSettings,
        chaos: Vec<(Name, Fragment)>,
        chaos_arena: Arena,
        slot_names: Arc<[String]>,
    ) -> Snapshot {
        Snapshot {
            generation,
            zones: zones.into_iter().map(|z| (z.base.apex.as_wire().into(), z)).collect(),
            settings,
            chaos: chaos.into_iter().map(|(n, f)| (n.as_wire().into(), f)).collect(),
            chaos_arena,
            slot_names,
            geo: Arc::new([]),
            geo_labels: Arc::default(),
        }
    }

    /// With these location maps and geo counter labels.
    pub fn with_geo(mut self, maps: Arc<[geo::CompiledMap]>, labels: Arc<GeoLabels>) -> Snapshot {
        self.geo = maps;
        self.geo_labels = labels;
        self
    }

    /// The zone with the longest apex that contains `qname`.
    #[inline]
    pub fn find_zone(&self, qname: &[u8]) -> Option<&Zone> {
        label_offsets(qname)
            .chain(std::iter::once(qname.len().saturating_sub(1)))
            .find_map(|off| self.zones.get(&qname[off..]))
    }

    /// The zone with exactly this apex.
    pub fn zone(&self, apex: &Name) -> Option<&Zone> {
        self.zones.get(apex.as_wire())
    }
}

/// The single place the current snapshot lives. Cloning shares it.
#[derive(Clone)]
pub struct SnapshotHandle(Arc<ArcSwap<Snapshot>>, Arc<tokio::sync::watch::Sender<u64>>);

impl SnapshotHandle {
    /// Wraps the first snapshot.
    pub fn new(first: Snapshot) -> SnapshotHandle {
        let generation = first.generation;
        SnapshotHandle(Arc::new(ArcSwap::from_pointee(first)), Arc::new(tokio::sync::watch::Sender::new(generation)))
    }

    /// Tells of each publish (the generation published), for tasks that act on new data
    /// (NOTIFY to secondaries); the query path never waits on it.
    pub fn published(&self) -> tokio::sync::watch::Receiver<u64> {
        self.1.subscribe()
    }

    /// The current snapshot (cheap; do not hold across long waits).
    pub fn load(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }

    /// A per-thread cache whose `load` costs one pointer comparison when nothing changed.
    pub fn cache(&self) -> arc_swap::Cache<Arc<ArcSwap<Snapshot>>, Arc<Snapshot>> {
        arc_swap::Cache::new(Arc::clone(&self.0))
    }

    /// Replaces the snapshot; readers see the new one on their next load. The old one is
    /// freed on the reclaim thread.
    pub fn publish(&self, next: Snapshot) {
        let generation = next.generation;
        reclaim::snapshot(self.0.swap(Arc::new(next)));
        self.1.send_replace(generation);
    }
}

/// Byte equality of two wire names, inline: names are short (most 10-40 bytes) and a call to
/// `memcmp` per lookup was 1.5% of the UDP path's CPU (perf, bench/run.sh load). Eight bytes
/// at a time, the last eight overlapping what came before.
#[inline]
fn same_name(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let len = a.len();
    if len < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("eight bytes"));
    let mut at = 0;
    while at + 8 < len {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, len - 8) == word(b, len - 8)
}

#[cfg(test)]
mod tests {
    use super::same_name;

    /// Agrees with slice equality for every length up to 40 and a difference at any byte.
    #[test]
    fn same_name_is_byte_equality() {
        for len in 0..40usize {
            let a: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
            assert!(same_name(&a, &a.clone()));
            assert!(!same_name(&a, &a[..len.saturating_sub(1)]) || len == 0);
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_name(&a, &b), "len {len}, byte {at}");
            }
        }
    }
}
