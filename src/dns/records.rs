//! Source-neutral record data: what every source (static config, controller, webhook,
//! ExternalDNS, health-checked pools) hands to the snapshot builder.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::dns::name::Name;
use crate::dns::types::*;

/// Where an RRset came from; reported by the admin API and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The config file (`records`, `zone_file`, `[zone.soa]`, `ns`).
    Static,
    /// The Elchi controller's snapshot or changes feed.
    Controller,
    /// A push to the `/notify` webhook.
    Webhook,
    /// A health-checked pool.
    Pool,
    /// ExternalDNS, through its webhook provider protocol (`[externaldns]`).
    ExternalDns,
}

impl Source {
    /// Lower-case label used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Static => "static",
            Source::Controller => "controller",
            Source::Webhook => "webhook",
            Source::Pool => "pool",
            Source::ExternalDns => "externaldns",
        }
    }
}

/// SOA fields (RFC 1035 §3.3.13).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Soa {
    /// Primary name server.
    pub mname: Name,
    /// Responsible mailbox, in name form.
    pub rname: Name,
    /// Zone serial.
    pub serial: u32,
    /// Refresh interval, seconds.
    pub refresh: u32,
    /// Retry interval, seconds.
    pub retry: u32,
    /// Expiry, seconds.
    pub expire: u32,
    /// Negative-caching TTL (RFC 2308).
    pub minimum: u32,
}

/// One record's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RData {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Alias target.
    Cname(Name),
    /// Name server.
    Ns(Name),
    /// Pointer.
    Ptr(Name),
    /// Mail exchanger.
    Mx {
        /// Preference, lower first.
        preference: u16,
        /// Exchange host.
        exchange: Name,
    },
    /// Service location (RFC 2782).
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host.
        target: Name,
    },
    /// Start of authority (boxed: it is rare and large, and keeps `RData` small).
    Soa(Box<Soa>),
    /// Any other type, as uncompressed wire RDATA.
    Other {
        /// Record type.
        rtype: u16,
        /// RDATA bytes.
        data: Box<[u8]>,
    },
}

impl RData {
    /// The record type.
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => TYPE_A,
            RData::Aaaa(_) => TYPE_AAAA,
            RData::Cname(_) => TYPE_CNAME,
            RData::Ns(_) => TYPE_NS,
            RData::Ptr(_) => TYPE_PTR,
            RData::Mx { .. } => TYPE_MX,
            RData::Srv { .. } => TYPE_SRV,
            RData::Soa(_) => TYPE_SOA,
            RData::Other { rtype, .. } => *rtype,
        }
    }

    /// Appends the RDATA in wire form, names uncompressed (as they are held: lower case).
    pub fn write_uncompressed(&self, out: &mut Vec<u8>) {
        match self {
            RData::A(ip) => out.extend_from_slice(&ip.octets()),
            RData::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => out.extend_from_slice(n.as_wire()),
            RData::Mx { preference, exchange } => {
                out.extend_from_slice(&preference.to_be_bytes());
                out.extend_from_slice(exchange.as_wire());
            }
            RData::Srv { priority, weight, port, target } => {
                for v in [priority, weight, port] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                out.extend_from_slice(target.as_wire());
            }
            RData::Soa(soa) => {
                out.extend_from_slice(soa.mname.as_wire());
                out.extend_from_slice(soa.rname.as_wire());
                for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            RData::Other { data, .. } => out.extend_from_slice(data),
        }
    }

    /// The host name whose addresses belong in the additional section (NS, MX, SRV).
    pub fn additional_target(&self) -> Option<&Name> {
        match self {
            RData::Ns(n) => Some(n),
            RData::Mx { exchange, .. } => Some(exchange),
            RData::Srv { target, .. } => Some(target),
            _ => None,
        }
    }
}

/// Most records one RRset may hold, from any source. An answer must carry its whole RRset,
/// and 1,000 addresses (16 KB of A, 28 KB of AAAA) leave room in a 65,535-byte message for
/// the rest of the answer; a set the builder still cannot fit is answered with TC, never in
/// part.
pub const MAX_RRSET: usize = 1000;

/// All records of one name and type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RRset {
    /// TTL shared by the set.
    pub ttl: u32,
    /// The records, in the order the source gave them.
    pub rdata: Vec<RData>,
    /// Which source produced the set.
    pub source: Source,
    /// Rotate the order of A/AAAA answers per query.
    pub rotate: bool,
    /// Answered one group at a time, drawn by weight per query (ExternalDNS's weighted
    /// record sets); `None` for every other set. Boxed: one word in every RRset.
    pub draw: Option<Box<Draw>>,
}

/// How a drawn RRset's records fall into groups: `rdata` in runs of these sizes, each run
/// with its weight (above 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Draw {
    /// (records in the group, its weight), in `rdata` order.
    pub groups: Vec<(u16, u32)>,
}

impl RRset {
    /// A drawn set's groups: each one's records and weight (nothing for a set not drawn).
    pub fn groups(&self) -> impl Iterator<Item = (&[RData], u32)> {
        let mut rest = self.rdata.as_slice();
        self.draw.iter().flat_map(|d| d.groups.iter()).map(move |&(len, weight)| {
            let (group, tail) = rest.split_at((len as usize).min(rest.len()));
            rest = tail;
            (group, weight)
        })
    }

    /// The set as one answer for whoever cannot draw (a zone transfer): a CNAME's heaviest
    /// group (a name has one CNAME), else every group's records once.
    pub fn undrawn(&self) -> std::borrow::Cow<'_, RRset> {
        use std::borrow::Cow;
        if self.draw.is_none() {
            return Cow::Borrowed(self);
        }
        let mut rdata: Vec<RData> = Vec::with_capacity(self.rdata.len());
        if self.rdata.first().is_some_and(|r| matches!(r, RData::Cname(_))) {
            let mut best: (&[RData], u32) = (&[], 0);
            for (group, weight) in self.groups() {
                if weight > best.1 {
                    best = (group, weight);
                }
            }
            rdata.extend_from_slice(best.0);
        } else {
            for rd in &self.rdata {
                if !rdata.contains(rd) {
                    rdata.push(rd.clone());
                }
            }
        }
        Cow::Owned(RRset { ttl: self.ttl, rdata, source: self.source, rotate: self.rotate, draw: None })
    }
}

/// Owner → type → RRset, as produced by a dynamic source (the controller, the webhook).
pub type Nodes = BTreeMap<Name, TypeMap>;

/// Owner → type → RRset in one vector sorted by owner, each owner once: a source's records in
/// bulk, built once and then only read (a map would cost a second copy and a tree build per
/// load: 0.15 s at a million names; lookups are binary searches).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortedNodes(Vec<(Name, TypeMap)>);

impl SortedNodes {
    /// Takes entries that are sorted by owner, each owner once.
    pub fn from_sorted(entries: Vec<(Name, TypeMap)>) -> SortedNodes {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "owners sorted and distinct");
        SortedNodes(entries)
    }

    /// The sets of one owner.
    pub fn get(&self, name: &Name) -> Option<&TypeMap> {
        self.0.binary_search_by(|(n, _)| n.cmp(name)).ok().map(|i| &self.0[i].1)
    }

    /// True when the owner has sets.
    pub fn contains_key(&self, name: &Name) -> bool {
        self.get(name).is_some()
    }

    /// Number of owners.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no owners.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (owner, sets) in owner order.
    pub fn iter(&self) -> impl Iterator<Item = (&Name, &TypeMap)> {
        self.into_iter()
    }

    /// The owners in order.
    pub fn keys(&self) -> impl Iterator<Item = &Name> {
        self.0.iter().map(|(n, _)| n)
    }

    /// The sets of each owner, in owner order.
    pub fn values(&self) -> impl Iterator<Item = &TypeMap> {
        self.0.iter().map(|(_, t)| t)
    }
}

impl<'a> IntoIterator for &'a SortedNodes {
    type Item = (&'a Name, &'a TypeMap);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (Name, TypeMap)>, fn(&'a (Name, TypeMap)) -> (&'a Name, &'a TypeMap)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(n, t)| (n, t))
    }
}

impl IntoIterator for SortedNodes {
    type Item = (Name, TypeMap);
    type IntoIter = std::vec::IntoIter<(Name, TypeMap)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl std::ops::Index<&Name> for SortedNodes {
    type Output = TypeMap;

    fn index(&self, name: &Name) -> &TypeMap {
        self.get(name).expect("no such owner")
    }
}

/// Records of one zone, keyed by owner name and type: the builder's input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ZoneData {
    /// The zone apex.
    pub apex: Name,
    /// TTL used for SOA answers; negative answers use min(this, SOA minimum).
    pub soa_ttl: u32,
    /// The SOA (its serial is set by the builder's caller).
    pub soa: Soa,
    /// Owner name → type → RRset; the apex NS set lives here too.
    pub nodes: BTreeMap<Name, TypeMap>,
}

impl ZoneData {
    /// The zone's apex and SOA without its records.
    pub fn clone_head(&self) -> ZoneData {
        ZoneData { apex: self.apex.clone(), soa_ttl: self.soa_ttl, soa: self.soa.clone(), nodes: BTreeMap::new() }
    }

    /// Number of resource records, SOA included.
    pub fn record_count(&self) -> usize {
        1 + self.nodes.values().flat_map(|types| types.values()).map(|set| set.rdata.len()).sum::<usize>()
    }
}

/// The RRsets of one name, by type, kept as a short vector sorted by type: names rarely
/// hold more than two or three types, and a map node per name would cost hundreds of bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TypeMap(Vec<(u16, RRset)>);

impl TypeMap {
    /// An empty map.
    pub fn new() -> TypeMap {
        TypeMap(Vec::new())
    }

    /// A map of one set.
    pub fn one(rtype: u16, set: RRset) -> TypeMap {
        TypeMap(vec![(rtype, set)])
    }

    fn position(&self, rtype: u16) -> Result<usize, usize> {
        self.0.binary_search_by_key(&rtype, |(t, _)| *t)
    }

    /// The RRset of a type.
    pub fn get(&self, rtype: &u16) -> Option<&RRset> {
        self.position(*rtype).ok().map(|i| &self.0[i].1)
    }

    /// The RRset of a type, mutably.
    pub fn get_mut(&mut self, rtype: &u16) -> Option<&mut RRset> {
        self.position(*rtype).ok().map(|i| &mut self.0[i].1)
    }

    /// True when a set of this type exists.
    pub fn contains_key(&self, rtype: &u16) -> bool {
        self.position(*rtype).is_ok()
    }

    /// Inserts or replaces a set; returns the replaced one.
    pub fn insert(&mut self, rtype: u16, set: RRset) -> Option<RRset> {
        match self.position(rtype) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, set)),
            Err(i) => {
                self.0.insert(i, (rtype, set));
                None
            }
        }
    }

    /// Removes a set.
    pub fn remove(&mut self, rtype: &u16) -> Option<RRset> {
        self.position(*rtype).ok().map(|i| self.0.remove(i).1)
    }

    /// The set of a type, created by `make` when missing.
    pub fn get_or_insert_with(&mut self, rtype: u16, make: impl FnOnce() -> RRset) -> &mut RRset {
        let i = match self.position(rtype) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (rtype, make()));
                i
            }
        };
        &mut self.0[i].1
    }

    /// Number of types.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no type is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the sets for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&RRset) -> bool) {
        self.0.retain(|(_, set)| keep(set));
    }

    /// (type, set) pairs in type order.
    pub fn iter(&self) -> impl Iterator<Item = (&u16, &RRset)> {
        self.0.iter().map(|(t, s)| (t, s))
    }

    /// The sets in type order.
    pub fn values(&self) -> impl Iterator<Item = &RRset> {
        self.0.iter().map(|(_, s)| s)
    }
}

impl<'a> IntoIterator for &'a TypeMap {
    type Item = (&'a u16, &'a RRset);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (u16, RRset)>, fn(&'a (u16, RRset)) -> (&'a u16, &'a RRset)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(t, s)| (t, s))
    }
}

impl IntoIterator for TypeMap {
    type Item = (u16, RRset);
    type IntoIter = std::vec::IntoIter<(u16, RRset)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl std::ops::Index<&u16> for TypeMap {
    type Output = RRset;

    fn index(&self, rtype: &u16) -> &RRset {
        self.get(rtype).expect("no RRset of this type")
    }
}
