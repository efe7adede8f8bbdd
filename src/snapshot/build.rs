//! Compiles a zone's records into its immutable, pre-encoded form ([`ZoneSnap`]).
//!
//! Every response the zone can give is decided here, once: exact answers per name and type,
//! CNAME chains chased inside the zone, NODATA and NXDOMAIN with the SOA, referrals at zone
//! cuts, wildcard answers, and the additional-section addresses for NS/MX/SRV targets.
//! The builder borrows its input (names are slices of the input's names) and encodes into
//! reusable scratch buffers and one arena, so a 100,000-name zone costs few allocations.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::dns::name::{Name, is_within, label_offsets};
use std::hash::BuildHasher;

use crate::dns::records::{RData, RRset, Soa, Source, TypeMap};
use crate::dns::types::*;
use crate::dnssec::denial::{TYPE_NSEC, nodata_types, write_nsec_rdata};
use crate::dnssec::sign::RrsetSigner;
use crate::snapshot::encode::{Encoder, Scratch, Section};
use crate::snapshot::fragment::{Arena, Denial, Fragment, WeightedAnswer};
use crate::snapshot::geo::{GeoAnswer, GeoKind, PatternEntry};
use crate::snapshot::policy::Hashing;
use crate::snapshot::{AnswerSet, NONE, NodeRec, ZoneSnap};

type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// Longest CNAME chain followed inside a zone.
const MAX_CHAIN: usize = 8;

/// Owner → RRsets, borrowed where a name comes from one source, merged where from several.
pub type MergedNodes<'a> = Vec<(&'a Name, Cow<'a, TypeMap>)>;

/// One zone's merged records, borrowed: what [`build_zone`] compiles.
pub struct ZoneInput<'a> {
    /// The apex.
    pub apex: &'a Name,
    /// The SOA, serial included.
    pub soa: Soa,
    /// TTL of SOA answers.
    pub soa_ttl: u32,
    /// Owner → RRsets, sorted by wire name, each name once.
    pub nodes: &'a [(&'a Name, Cow<'a, TypeMap>)],
    /// Names whose A and AAAA answers are SERVFAIL (pools with every member down).
    pub servfail: &'a [Name],
    /// Answers drawn per query by weight.
    pub weighted: &'a [WeightedSpec],
    /// HTTPS/SVCB records whose address hints are filled per query, (name, type).
    pub hinted: &'a [(Name, u16)],
    /// Answers chosen by the client's location.
    pub geo: &'a [GeoSpec],
    /// Zones we also serve that lie inside this one: CNAME targets there are theirs.
    pub nested: &'a [Name],
    /// Names whose answers the zone's dynamic layer gives (pools, their glue hosts): marked
    /// in the table, not compiled here; chains to them continue there at query time.
    pub dynamic_names: &'a HashSet<Name>,
    /// These records are a layer over others (the dynamic layer over the zone's base): a
    /// CNAME target not among them is looked up in the full zone at query time.
    pub partial: bool,
    /// The zone's controller data has never loaded: "no such name" and "no such type" are
    /// not known yet, so they are answered SERVFAIL (resolvers do not cache it as a fact).
    pub unloaded: bool,
    /// These records are an overlay over the zone's base (names pushed since it was
    /// compiled): empty non-terminals are not derived from them but given in `marks`.
    pub overlay: bool,
    /// Overlay only: names without records whose existence differs from what the base knows
    /// (`true`: an empty non-terminal now, `false`: gone).
    pub marks: &'a [(Name, bool)],
    /// A signed zone: every fragment gets a twin with RRSIGs for DO queries.
    pub signer: Option<&'a dyn RrsetSigner>,
}

/// A weighted answer to compile: one group of records per member, drawn `k` at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WeightedSpec {
    /// Owner name.
    pub name: Name,
    /// A or AAAA.
    pub rtype: u16,
    /// TTL.
    pub ttl: u32,
    /// (member records, weight).
    pub groups: Vec<(Vec<RData>, u32)>,
    /// Groups per answer.
    pub k: usize,
    /// Ranked by the client's network instead of drawn (`select = "hash"`).
    pub hash: Option<HashSpec>,
}

/// How a hashed answer ranks its groups: the client prefixes, and a seed per group (parallel
/// to [`WeightedSpec::groups`]) from its member's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HashSpec {
    /// IPv4 prefix length hashed.
    pub prefix_v4: u8,
    /// IPv6 prefix length hashed.
    pub prefix_v6: u8,
    /// Seed per group.
    pub seeds: Vec<u64>,
}

/// What a per-query pick writes besides its groups: the owner, TTL and source of every group,
/// how many groups an answer holds, and whether they are ranked by the client's network.
struct Picks<'a> {
    name: &'a Name,
    ttl: u32,
    source: Source,
    k: usize,
    hash: Option<&'a HashSpec>,
}

/// An answer chosen by the client's location, to compile: the owner's A or AAAA answer, or
/// (NS) the referral of a delegating pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoSpec {
    /// Owner name (its node holds a placeholder RRset of `rtype`).
    pub name: Name,
    /// A or AAAA; NS for a referral.
    pub rtype: u16,
    /// Index of the map.
    pub map: u16,
    /// Metrics slot.
    pub slot: u16,
    /// What to encode.
    pub kind: GeoSpecKind,
}

/// The answers of a [`GeoSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeoSpecKind {
    /// A pool: each distinct answer once, and per order id of the map the answer it gets
    /// (an index into `variants`) and the datacenter that answer comes from.
    Pool {
        /// Distinct answers.
        variants: Vec<GeoVariant>,
        /// (variant, datacenter) by order id; the first is the map's default order.
        by_order: Vec<(u32, u16)>,
    },
    /// A name: the target per datacenter index.
    Names(Vec<Option<Name>>),
}

/// One pre-encoded answer of a geo pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeoVariant {
    /// These records.
    Records(RRset),
    /// Drawn per query by weight.
    Weighted(WeightedSpec),
    /// NOERROR, no answer.
    NoData,
    /// SERVFAIL.
    ServFail,
    /// A CNAME to this name.
    Cname(Name, u32),
    /// A referral to this NS set (glue from the layer's records).
    Referral(RRset),
}

/// How a CNAME chain ends.
enum Terminal<'a> {
    /// At a name with data.
    Data(&'a TypeMap),
    /// At an existing name without data (an empty non-terminal).
    Empty,
    /// At a name that does not exist in the zone.
    Missing,
    /// Outside the zone (or in a zone nested in it): the query path continues there when we
    /// serve that zone too, else the resolver takes over.
    Outside,
    /// At a delegation, or in a loop: the resolver takes over.
    Elsewhere,
}

/// Where encoded answers go.
#[derive(Default)]
struct Out {
    scratch: Scratch,
    arena: Arena,
    frags: Vec<Fragment>,
    /// The signed twins (`Fragment::signed`).
    signed: Vec<Fragment>,
    types: Vec<(u16, u32)>,
    weighted: Vec<WeightedAnswer>,
    geo: Vec<GeoAnswer>,
    geo_patterns: Vec<PatternEntry>,
    geo_targets: Vec<Option<Box<[u8]>>>,
    /// Patterns already in `geo_patterns`, by content.
    pattern_ids: std::collections::HashMap<Vec<PatternEntry>, u32>,
}

impl Out {
    fn push(&mut self, f: Fragment) -> u32 {
        self.frags.push(f);
        (self.frags.len() - 1) as u32
    }
}

struct ZoneBuilder<'a> {
    input: &'a ZoneInput<'a>,
    /// Input position of every name with data.
    by_name: ByName<'a>,
    apex_types: TypeMap,
    /// Wire names of delegation points.
    cuts: FastSet<&'a [u8]>,
    /// Empty non-terminals: names that exist only because names below them do.
    ents: FastSet<&'a [u8]>,
    negative_soa: RRset,
}

/// Builds the pre-encoded form of one zone (a big one on two threads).
pub fn build_zone(input: &ZoneInput<'_>) -> ZoneSnap {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    build_zone_on(input, if cores > 1 { PARALLEL_FROM } else { usize::MAX })
}

/// [`build_zone`], on two threads from `parallel_from` names on.
fn build_zone_on(input: &ZoneInput<'_>, parallel_from: usize) -> ZoneSnap {
    let apex = input.apex;
    let soa_set = |ttl| RRset {
        ttl,
        rdata: vec![RData::Soa(Box::new(input.soa.clone()))],
        source: Source::Static,
        rotate: false,
        draw: None,
    };
    let by_name = ByName::new(input.nodes);
    let mut apex_types = by_name.position(apex.as_wire()).map(|i| (*input.nodes[i].1).clone()).unwrap_or_default();
    apex_types.insert(TYPE_SOA, soa_set(input.soa_ttl));
    let cuts: FastSet<&[u8]> = input
        .nodes
        .iter()
        .filter(|(name, types)| *name != apex && types.contains_key(&TYPE_NS) && name.is_within(apex))
        .map(|(name, _)| name.as_wire())
        .collect();
    let mut b = ZoneBuilder {
        input,
        by_name,
        apex_types,
        cuts,
        ents: FastSet::default(),
        negative_soa: soa_set(input.soa_ttl.min(input.soa.minimum)),
    };
    // Ancestors of visible names that hold no data themselves are empty non-terminals (an
    // overlay is told which names exist).
    let mut ents = FastSet::default();
    for (name, _) in input.marks.iter().filter(|(_, exists)| *exists) {
        if !b.by_name.contains(name.as_wire()) {
            ents.insert(name.as_wire());
        }
    }
    if !input.overlay {
        for (name, _) in input.nodes.iter().filter(|(n, _)| b.visible(n)) {
            let wire = name.as_wire();
            for off in label_offsets(wire).skip(1) {
                let ancestor = &wire[off..];
                if ancestor.len() <= apex.wire_len() || b.by_name.contains(ancestor) || !ents.insert(ancestor) {
                    break;
                }
            }
        }
    }
    b.ents = ents;
    let visible = |name: &Name| b.visible(name);
    // Wildcard owners are rare; look for `*.<name>` only when the zone has one.
    let has_wildcards = input.nodes.iter().any(|(n, _)| n.is_wildcard());

    let apex_in_input = b.by_name.contains(apex.as_wire());
    let data: Vec<&(&Name, Cow<'_, TypeMap>)> = input.nodes.iter().filter(|(n, _)| visible(n)).collect();
    let all_visible = data.len() == input.nodes.len();
    // Big zones are encoded in two halves on two threads, then put together.
    let halves = if data.len() >= parallel_from { 2 } else { 1 };
    let split = if halves == 1 { 0 } else { data.len() / 2 };
    let (first, second) = data.split_at(split);
    let rest = |chunk: &[&(&Name, Cow<'_, TypeMap>)], last: bool| {
        let with_data = chunk.iter().map(|(n, t)| (n.as_wire(), Some(*n), Some(&**t)));
        let apex_only = (last && !apex_in_input).then_some((apex.as_wire(), Some(apex), None));
        let empties = b.ents.iter().filter(move |_| last).map(|&w| (w, None, None));
        b.encode_nodes(with_data.chain(apex_only).chain(empties), has_wildcards)
    };
    let encoded = if halves == 1 {
        rest(second, true)
    } else {
        let (mut head, tail) = std::thread::scope(|scope| {
            let tail = scope.spawn(|| rest(second, true));
            (rest(first, false), tail.join().expect("encoding does not panic"))
        });
        head.append(tail);
        head
    };
    let Encoded { mut names, mut nodes, wildcards, mut out } = encoded;
    for (name, _) in input.marks.iter().filter(|(_, exists)| !*exists) {
        let name_start = names.len() as u32;
        names.extend_from_slice(name.as_wire());
        nodes.push(NodeRec {
            name_start,
            name_len: name.wire_len() as u16,
            dynamic: false,
            gone: true,
            owned: false,
            children: 0,
            answers: AnswerSet::EMPTY,
            wildcard: NONE,
            referral: NONE,
        });
    }
    let negative = |rcode, out: &mut Out| {
        if input.unloaded {
            let enc = Encoder::new(&mut out.scratch, apex, false);
            let f = enc.finish(&mut out.arena, RCODE_SERVFAIL, false, Source::Controller);
            return out.push(f);
        }
        let mut f = b.frag(out, apex, false, rcode, true, Source::Static, |b, enc| {
            enc.section(Section::Authority);
            enc.rrset(apex, &b.negative_soa);
            0
        });
        f.denial = if rcode == RCODE_NXDOMAIN { Denial::NxDomain } else { Denial::NoData };
        out.push(f)
    };
    let nxdomain = negative(RCODE_NXDOMAIN, &mut out);
    let nodata = negative(RCODE_NOERROR, &mut out);

    let ZoneBuilder { by_name, .. } = b;
    // With every input name visible, node i is input name i: the input's table is the index
    // once the nodes after them (the apex without data, empty non-terminals, marks) are added.
    let (mut index, hasher, indexed) = if all_visible {
        (by_name.table, by_name.hasher, input.nodes.len())
    } else {
        (hashbrown::HashTable::with_capacity(nodes.len()), by_name.hasher, 0)
    };
    index.reserve(nodes.len() - indexed, |&j: &u32| hasher.hash_one(nodes[j as usize].wire(&names)));
    for i in indexed..nodes.len() {
        index.insert_unique(hasher.hash_one(nodes[i].wire(&names)), i as u32, |&j: &u32| {
            hasher.hash_one(nodes[j as usize].wire(&names))
        });
    }
    if !input.overlay {
        count_children(&mut nodes, &names, &index, &hasher, apex.wire_len());
    }
    let record_count = 1 + input.nodes.iter().flat_map(|(_, t)| t.values()).map(|s| s.rdata.len()).sum::<usize>();
    let Out { mut arena, mut frags, mut signed, mut types, weighted, geo, geo_patterns, geo_targets, .. } = out;
    signed.shrink_to_fit();
    arena.bytes.shrink_to_fit();
    arena.words.shrink_to_fit();
    frags.shrink_to_fit();
    types.shrink_to_fit();
    names.shrink_to_fit();
    ZoneSnap {
        apex: apex.clone(),
        apex_len: apex.wire_len(),
        serial: input.soa.serial,
        slot: 0,
        record_count,
        arena,
        frags,
        signed,
        types,
        names,
        nodes,
        wildcards,
        weighted,
        geo,
        geo_patterns,
        geo_targets,
        index,
        hasher,
        nxdomain,
        nodata,
    }
}

/// The input's names by wire form: their positions in a table of 4-byte entries (the names
/// stay in the input), hashed as the snapshot's index is, so that it can become that index.
struct ByName<'a> {
    nodes: &'a [(&'a Name, Cow<'a, TypeMap>)],
    table: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl<'a> ByName<'a> {
    /// Indexes input names (each once, as the input promises).
    fn new(nodes: &'a [(&'a Name, Cow<'a, TypeMap>)]) -> ByName<'a> {
        let hasher = foldhash::fast::RandomState::default();
        let mut table = hashbrown::HashTable::with_capacity(nodes.len());
        for (i, (name, _)) in nodes.iter().enumerate() {
            table.insert_unique(hasher.hash_one(name.as_wire()), i as u32, |&j: &u32| {
                hasher.hash_one(nodes[j as usize].0.as_wire())
            });
        }
        ByName { nodes, table, hasher }
    }

    /// The input position of a name.
    fn position(&self, wire: &[u8]) -> Option<usize> {
        let found = self.table.find(self.hasher.hash_one(wire), |&i| self.nodes[i as usize].0.as_wire() == wire);
        found.map(|&i| i as usize)
    }

    /// True when the input has the name.
    fn contains(&self, wire: &[u8]) -> bool {
        self.position(wire).is_some()
    }
}

/// Zones with at least this many names are encoded on two threads.
const PARALLEL_FROM: usize = 50_000;

/// Nodes encoded in one go: their names, records, wildcard answer sets and fragments.
#[derive(Default)]
struct Encoded {
    names: Vec<u8>,
    nodes: Vec<NodeRec>,
    wildcards: Vec<AnswerSet>,
    out: Out,
}

impl Encoded {
    /// Appends nodes encoded apart, moving every index and offset of theirs past ours.
    fn append(&mut self, other: Encoded) {
        let names_at = self.names.len() as u32;
        let frags_at = self.out.frags.len() as u32;
        let signed_at = self.out.signed.len() as u32;
        let types_at = self.out.types.len() as u32;
        let wild_at = self.wildcards.len() as u32;
        let weighted_at = self.out.weighted.len() as u32;
        let geo_at = self.out.geo.len() as u32;
        let bytes_at = self.out.arena.bytes.len() as u32;
        let words_at = self.out.arena.words.len() as u32;
        let frag = |id: u32| if id == NONE { NONE } else { id + frags_at };
        let set = |s: AnswerSet| AnswerSet {
            types_start: s.types_start + types_at,
            types_len: s.types_len,
            default: frag(s.default),
            any: frag(s.any),
        };
        self.names.extend_from_slice(&other.names);
        self.nodes.extend(other.nodes.into_iter().map(|n| NodeRec {
            name_start: n.name_start + names_at,
            answers: set(n.answers),
            wildcard: match n.wildcard {
                NONE | crate::snapshot::DYNAMIC_WILDCARD => n.wildcard,
                w => w + wild_at,
            },
            referral: frag(n.referral),
            ..n
        }));
        self.wildcards.extend(other.wildcards.into_iter().map(set));
        let patterns_at = self.out.geo_patterns.len() as u32;
        let targets_at = self.out.geo_targets.len() as u32;
        let Out { arena, frags, signed, types, weighted, geo, geo_patterns, geo_targets, .. } = other.out;
        self.out.arena.bytes.extend_from_slice(&arena.bytes);
        self.out.arena.words.extend_from_slice(&arena.words);
        let moved = |i: u32, by: u32| if i == u32::MAX { u32::MAX } else { i + by };
        let place = |f: Fragment| Fragment {
            start: f.start + bytes_at,
            words: f.words + words_at,
            weighted: moved(f.weighted, weighted_at),
            geo: moved(f.geo, geo_at),
            signed: moved(f.signed, signed_at),
            ..f
        };
        self.out.frags.extend(frags.into_iter().map(place));
        self.out.signed.extend(signed.into_iter().map(place));
        self.out.types.extend(types.into_iter().map(|(t, id)| (t, id + frags_at)));
        self.out.weighted.extend(weighted);
        self.out.geo.extend(geo.into_iter().map(|mut g| {
            g.kind = match g.kind {
                GeoKind::Pool { first, pattern } => {
                    GeoKind::Pool { first: first + frags_at, pattern: pattern + patterns_at }
                }
                GeoKind::Names { first } => GeoKind::Names { first: first + targets_at },
            };
            g
        }));
        self.out.geo_patterns.extend(geo_patterns);
        self.out.geo_targets.extend(geo_targets);
    }
}

/// Sets every node's count of existing names one label below it (what an overlay needs to
/// tell whether deleting a name's records removes the name or leaves an empty non-terminal).
fn count_children(
    nodes: &mut [NodeRec],
    names: &[u8],
    index: &hashbrown::HashTable<u32>,
    hasher: &foldhash::fast::RandomState,
    apex_len: usize,
) {
    for i in 0..nodes.len() {
        let wire = nodes[i].wire(names);
        if wire.len() <= apex_len {
            continue;
        }
        let parent = &wire[wire[0] as usize + 1..];
        let found = index.find(hasher.hash_one(parent), |&j| nodes[j as usize].wire(names) == parent);
        if let Some(&j) = found {
            nodes[j as usize].children += 1;
        }
    }
}

impl<'a> ZoneBuilder<'a> {
    /// Encodes the answers of these names (`(wire, name with data, its data)`), in order.
    fn encode_nodes<'n>(
        &self,
        items: impl Iterator<Item = (&'n [u8], Option<&'n Name>, Option<&'n TypeMap>)>,
        has_wildcards: bool,
    ) -> Encoded {
        let input = self.input;
        let apex = input.apex;
        let b = self;
        let mut e = Encoded::default();
        let Encoded { names, nodes, wildcards, out } = &mut e;
        let out = &mut *out;
        let mut wild_buf = Vec::with_capacity(256);
        for (wire, owner, data) in items {
            let name_start = names.len() as u32;
            names.extend_from_slice(wire);
            let mut node = NodeRec {
                name_start,
                name_len: wire.len() as u16,
                dynamic: false,
                gone: false,
                owned: false,
                children: 0,
                answers: AnswerSet::EMPTY,
                wildcard: NONE,
                referral: NONE,
            };
            if owner.is_some_and(|o| input.dynamic_names.contains(o)) {
                node.dynamic = true;
            } else if b.cuts.contains(wire) {
                let cut = owner.expect("cuts have data");
                node.referral = b.referral(cut, out);
                // DS at a cut is the parent's data (a secure delegation): answered here.
                if let Some(ds) = data.and_then(|t| t.get(&TYPE_DS)) {
                    let types_start = out.types.len() as u32;
                    let f = b.frag(out, cut, false, RCODE_NOERROR, true, ds.source, |_, enc| {
                        enc.rrset(cut, ds);
                        0
                    });
                    let id = out.push(f);
                    out.types.push((TYPE_DS, id));
                    node.answers = AnswerSet { types_start, types_len: 1, default: NONE, any: NONE };
                }
            } else {
                match (owner, data) {
                    // A visible name other than the apex answers with its own data.
                    (Some(owner), Some(types)) if owner != apex => {
                        node.answers = b.answers_with(owner, types, false, out)
                    }
                    (Some(owner), _) => node.answers = b.answers(owner, false, out),
                    (None, _) => {}
                }
                if has_wildcards {
                    wild_buf.clear();
                    wild_buf.extend_from_slice(&[1, b'*']);
                    wild_buf.extend_from_slice(wire);
                    if let Some(wname) = b.data_name(&wild_buf).filter(|w| b.visible(w)) {
                        if input.dynamic_names.contains(wname) {
                            node.wildcard = crate::snapshot::DYNAMIC_WILDCARD;
                            nodes.push(node);
                            continue;
                        }
                        let set = if b.cuts.contains(wname.as_wire()) {
                            // A delegation at `*.name`: every name below that does not exist
                            // is referred, as its own child zone (the NS owner is the query
                            // name).
                            let referral = b.referral_for(wname, true, out);
                            AnswerSet { types_start: 0, types_len: 0, default: referral, any: referral }
                        } else {
                            b.answers(wname, true, out)
                        };
                        wildcards.push(set);
                        node.wildcard = (wildcards.len() - 1) as u32;
                    }
                }
            }
            nodes.push(node);
        }
        e
    }

    /// Inside the zone and not below a delegation.
    fn visible(&self, name: &Name) -> bool {
        name.is_within(self.input.apex) && !self.occluded(name.as_wire())
    }

    /// The input's data at a wire name, occluded or not.
    fn lookup(&self, wire: &[u8]) -> Option<&'a TypeMap> {
        self.by_name.position(wire).map(|i| &*self.input.nodes[i].1)
    }

    /// True when a zone cut lies strictly above `wire` (the name is glue or below a delegation).
    fn occluded(&self, wire: &[u8]) -> bool {
        if self.cuts.is_empty() {
            return false;
        }
        let apex_len = self.input.apex.wire_len();
        label_offsets(wire)
            .skip(1)
            .take_while(|&off| wire.len() - off > apex_len)
            .any(|off| self.cuts.contains(&wire[off..]))
    }

    /// The input's own `Name` for a wire name that has data.
    fn data_name(&self, wire: &[u8]) -> Option<&'a Name> {
        self.by_name.position(wire).map(|i| self.input.nodes[i].0)
    }

    /// The authoritative data at a visible name.
    fn types(&self, name: &Name) -> Option<&TypeMap> {
        if name == self.input.apex {
            return Some(&self.apex_types);
        }
        let wire = name.as_wire();
        if self.cuts.contains(wire) || self.occluded(wire) {
            return None;
        }
        self.lookup(wire)
    }

    fn answers(&self, name: &Name, pin: bool, out: &mut Out) -> AnswerSet {
        match self.types(name) {
            Some(types) => self.answers_with(name, types, pin, out),
            None => AnswerSet::EMPTY,
        }
    }

    /// The answers at `name`, whose authoritative data is `types`.
    fn answers_with(&self, name: &Name, types: &TypeMap, pin: bool, out: &mut Out) -> AnswerSet {
        if let Some(cname) = types.get(&TYPE_CNAME) {
            if cname.draw.is_some() {
                // One target drawn per query, whatever the type asked; the resolver follows it.
                let types_start = out.types.len() as u32;
                let id = self.drawn(name, cname, pin, out);
                out.types.push((TYPE_CNAME, id));
                return AnswerSet { types_start, types_len: 1, default: id, any: id };
            }
            return self.cname_answers(name, cname, pin, out);
        }
        let types_start = out.types.len() as u32;
        if self.input.servfail.contains(name) {
            for rtype in [TYPE_A, TYPE_AAAA] {
                let enc = Encoder::new(&mut out.scratch, name, pin);
                let f = enc.finish(&mut out.arena, RCODE_SERVFAIL, false, Source::Pool);
                let id = out.push(f);
                out.types.push((rtype, id));
            }
        }
        for (&rtype, set) in types {
            if let Some(spec) = self.input.geo.iter().find(|g| g.name == *name && g.rtype == rtype) {
                let id = self.geo(spec, pin, out);
                out.types.push((rtype, id));
                continue;
            }
            if let Some(spec) = self.input.weighted.iter().find(|w| w.name == *name && w.rtype == rtype) {
                let id = self.weighted(spec, pin, out);
                out.types.push((rtype, id));
                continue;
            }
            if set.draw.is_some() {
                let id = self.drawn(name, set, pin, out);
                out.types.push((rtype, id));
                continue;
            }
            if self.input.hinted.iter().any(|(n, t)| n == name && *t == rtype) {
                // Completed and (in a signed zone) signed per query: no twin.
                let mut enc = Encoder::new(&mut out.scratch, name, pin);
                enc.rrset(name, set);
                let mut f = enc.finish(&mut out.arena, RCODE_NOERROR, true, set.source);
                f.hints = true;
                let id = out.push(f);
                out.types.push((rtype, id));
                continue;
            }
            let f = self.frag(out, name, pin, RCODE_NOERROR, true, set.source, |b, enc| {
                enc.rrset(name, set);
                b.additional(enc, set, false);
                0
            });
            let id = out.push(f);
            out.types.push((rtype, id));
        }
        let run = &out.types[types_start as usize..];
        // RFC 8482: answer ANY with one RRset, preferring the addresses.
        let any = [TYPE_A, TYPE_AAAA]
            .iter()
            .find_map(|t| run.iter().find(|(rt, _)| rt == t))
            .or(run.first())
            .map_or(NONE, |&(_, id)| id);
        AnswerSet { types_start, types_len: run.len() as u16, default: NONE, any }
    }

    /// A drawn RRset ([`crate::dns::records::Draw`]): its groups as a weighted answer that
    /// picks one per query.
    fn drawn(&self, name: &Name, set: &RRset, pin: bool, out: &mut Out) -> u32 {
        let picks = Picks { name, ttl: set.ttl, source: set.source, k: 1, hash: None };
        self.picked(picks, set.groups(), pin, out)
    }

    /// A weighted or hashed pool's answer.
    fn weighted(&self, spec: &WeightedSpec, pin: bool, out: &mut Out) -> u32 {
        let picks =
            Picks { name: &spec.name, ttl: spec.ttl, source: Source::Pool, k: spec.k, hash: spec.hash.as_ref() };
        self.picked(picks, spec.groups.iter().map(|(rdata, weight)| (rdata.as_slice(), *weight)), pin, out)
    }

    /// Encodes every group's records back to back and notes the groups for per-query picks.
    /// A group's names are compressed only against the question: it may be written alone.
    fn picked<'g>(
        &self,
        picks: Picks<'_>,
        each: impl Iterator<Item = (&'g [RData], u32)>,
        pin: bool,
        out: &mut Out,
    ) -> u32 {
        let mut enc = Encoder::new(&mut out.scratch, picks.name, pin);
        let mut groups = Vec::new();
        let mut weights = Vec::new();
        for (rdata, weight) in each {
            enc.forget_names();
            let start = enc.len();
            let set = RRset { ttl: picks.ttl, rdata: rdata.to_vec(), source: picks.source, rotate: false, draw: None };
            enc.rrset(picks.name, &set);
            groups.push((start as u16, (enc.len() - start) as u16, rdata.len() as u16));
            weights.push(weight);
        }
        let mut f = enc.finish(&mut out.arena, RCODE_NOERROR, true, picks.source);
        let hash = picks.hash.map(|h| {
            Box::new(Hashing { prefix_v4: h.prefix_v4, prefix_v6: h.prefix_v6, seeds: h.seeds.clone().into() })
        });
        out.weighted.push(WeightedAnswer { groups: groups.into(), weights: weights.into(), k: picks.k as u16, hash });
        f.weighted = (out.weighted.len() - 1) as u32;
        out.push(f)
    }

    /// Encodes each answer of a geo spec once, then the fragment the node points at: a copy
    /// of the default order's answer (a geo name's: NODATA) marked with the geo index.
    fn geo(&self, spec: &GeoSpec, pin: bool, out: &mut Out) -> u32 {
        let name = &spec.name;
        let nodata = |b: &Self, out: &mut Out| {
            let mut f = b.frag(out, name, pin, RCODE_NOERROR, true, Source::Pool, |b, enc| {
                enc.section(Section::Authority);
                enc.rrset(b.input.apex, &b.negative_soa);
                0
            });
            f.denial = Denial::NoData;
            out.push(f)
        };
        let (kind, main) = match &spec.kind {
            GeoSpecKind::Pool { variants, by_order } => {
                let ids: Vec<u32> = variants
                    .iter()
                    .map(|v| match v {
                        GeoVariant::Records(set) => {
                            let f = self.frag(out, name, pin, RCODE_NOERROR, true, Source::Pool, |_, enc| {
                                enc.rrset(name, set);
                                0
                            });
                            out.push(f)
                        }
                        GeoVariant::Weighted(w) => self.weighted(w, pin, out),
                        GeoVariant::NoData => nodata(self, out),
                        GeoVariant::ServFail => {
                            let enc = Encoder::new(&mut out.scratch, name, pin);
                            let f = enc.finish(&mut out.arena, RCODE_SERVFAIL, false, Source::Pool);
                            out.push(f)
                        }
                        GeoVariant::Referral(ns) => {
                            let f = self.frag(out, name, pin, RCODE_NOERROR, false, Source::Pool, |b, enc| {
                                b.delegation(enc, name, ns);
                                0
                            });
                            out.push(f)
                        }
                        GeoVariant::Cname(target, ttl) => {
                            let set = RRset {
                                ttl: *ttl,
                                rdata: vec![RData::Cname(target.clone())],
                                source: Source::Pool,
                                rotate: false,
                                draw: None,
                            };
                            let f = self.frag(out, name, pin, RCODE_NOERROR, true, Source::Pool, |_, enc| {
                                enc.rrset(name, &set);
                                0
                            });
                            out.push(f)
                        }
                    })
                    .collect();
                // Each variant pushed exactly one fragment, so they are consecutive.
                debug_assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
                let first = ids.first().copied().unwrap_or(0);
                let pattern: Vec<PatternEntry> = by_order.iter().map(|&(v, dc)| (v as u16, dc)).collect();
                let main = by_order.first().map_or_else(|| nodata(self, out), |&(v, _)| ids[v as usize]);
                let at = match out.pattern_ids.get(&pattern) {
                    Some(&at) => at,
                    None => {
                        let at = out.geo_patterns.len() as u32;
                        out.geo_patterns.extend_from_slice(&pattern);
                        out.pattern_ids.insert(pattern, at);
                        at
                    }
                };
                (GeoKind::Pool { first, pattern: at }, main)
            }
            GeoSpecKind::Names(targets) => {
                let first = out.geo_targets.len() as u32;
                out.geo_targets.extend(targets.iter().map(|t| t.as_ref().map(|t| t.as_wire().into())));
                (GeoKind::Names { first }, nodata(self, out))
            }
        };
        out.geo.push(GeoAnswer { map: spec.map, slot: spec.slot, kind });
        let mut f = out.frags[main as usize];
        f.geo = (out.geo.len() - 1) as u32;
        out.push(f)
    }

    fn cname_answers(&self, name: &Name, cname: &RRset, pin: bool, out: &mut Out) -> AnswerSet {
        let (chain, terminal) = self.chase(name, cname);
        let encode_chain = |enc: &mut Encoder<'_>| {
            for (owner, set) in &chain {
                enc.rrset(owner, set);
            }
        };
        let types_start = out.types.len() as u32;
        let f = self.frag(out, name, pin, RCODE_NOERROR, true, cname.source, |_, enc| {
            enc.rrset(name, cname);
            0
        });
        let cname_id = out.push(f);
        out.types.push((TYPE_CNAME, cname_id));
        if let (Terminal::Data(types), Some(&(last_owner, last_set))) = (&terminal, chain.last()) {
            let target = match last_set.rdata.first() {
                Some(RData::Cname(t)) => t,
                _ => last_owner,
            };
            for (&rtype, set) in types.iter().filter(|(t, _)| **t != TYPE_CNAME) {
                let f = self.frag(out, name, pin, RCODE_NOERROR, true, set.source, |b, enc| {
                    encode_chain(enc);
                    enc.rrset(target, set);
                    b.additional(enc, set, false);
                    0
                });
                let id = out.push(f);
                out.types.push((rtype, id));
            }
        }
        let rcode = match terminal {
            // The chain ends at a name the controller may hold once it is loaded.
            Terminal::Missing | Terminal::Empty if self.input.unloaded => RCODE_SERVFAIL,
            Terminal::Data(_) | Terminal::Empty => RCODE_NOERROR,
            Terminal::Missing => RCODE_NXDOMAIN,
            Terminal::Outside | Terminal::Elsewhere => RCODE_NOERROR,
        };
        let last = chain[chain.len() - 1];
        let last_target = match last.1.rdata.first() {
            Some(RData::Cname(t)) => t,
            _ => last.0,
        };
        let f = self.frag(out, name, pin, rcode, true, cname.source, |b, enc| {
            if matches!(terminal, Terminal::Outside) {
                // The last link's target is written plainly so the query path can find it
                // and continue in the zone that holds it.
                for (owner, set) in &chain[..chain.len() - 1] {
                    enc.rrset(owner, set);
                }
                return enc.cname_for_chase(last.0, last.1).unwrap_or(0);
            }
            encode_chain(enc);
            if rcode != RCODE_SERVFAIL && matches!(terminal, Terminal::Data(_) | Terminal::Empty | Terminal::Missing) {
                enc.section(Section::Authority);
                enc.rrset(b.input.apex, &b.negative_soa);
                if enc.is_signing() {
                    // The chain's end has no data of the type asked, or does not exist: its
                    // compact denial (RFC 9824).
                    let mut present: Vec<u16> = match &terminal {
                        Terminal::Data(types) => types.iter().map(|(t, _)| *t).collect(),
                        _ => Vec::new(),
                    };
                    if matches!(terminal, Terminal::Missing) {
                        present.push(crate::dnssec::denial::TYPE_NXNAME);
                    }
                    enc.rrset(last_target, &b.nsec(last_target, present));
                }
            }
            0
        });
        let default = out.push(f);
        let types_len = (out.types.len() - types_start as usize) as u16;
        AnswerSet { types_start, types_len, default, any: cname_id }
    }

    /// Follows a CNAME chain inside the zone, loop-safe and bounded.
    fn chase<'s>(&'s self, start: &'s Name, first: &'s RRset) -> (Vec<(&'s Name, &'s RRset)>, Terminal<'s>) {
        let apex = self.input.apex;
        let mut chain: Vec<(&Name, &RRset)> = vec![(start, first)];
        let mut seen: Vec<&[u8]> = vec![start.as_wire()];
        loop {
            let (_, set) = chain[chain.len() - 1];
            let target = match set.rdata.first() {
                Some(RData::Cname(t)) => t,
                _ => return (chain, Terminal::Elsewhere),
            };
            let wire = target.as_wire();
            // A link that is not static (controller, webhook, pool) is followed at query time:
            // its target may change with a push, which recompiles that name alone, so no
            // other name's answer may hold a copy of it.
            if !target.is_within(apex)
                || self.input.nested.iter().any(|z| target.is_within(z))
                || self.input.dynamic_names.contains(target)
                || set.source != Source::Static
            {
                return (chain, Terminal::Outside);
            }
            if self.cuts.contains(wire) || self.occluded(wire) {
                return (chain, Terminal::Elsewhere);
            }
            let Some(types) = self.types(target) else {
                let t = if self.input.partial {
                    Terminal::Outside
                } else if self.ents.contains(wire) {
                    Terminal::Empty
                } else {
                    Terminal::Missing
                };
                return (chain, t);
            };
            match types.get(&TYPE_CNAME) {
                Some(next) if !seen.contains(&wire) && chain.len() < MAX_CHAIN => {
                    seen.push(wire);
                    chain.push((target, next));
                }
                Some(_) => return (chain, Terminal::Elsewhere),
                None => return (chain, Terminal::Data(types)),
            }
        }
    }

    /// Addresses of in-zone NS/MX/SRV targets. Referrals (`glue`) may use occluded names.
    fn additional(&self, enc: &mut Encoder<'_>, set: &RRset, glue: bool) {
        let apex = self.input.apex;
        let mut done: Vec<&Name> = Vec::new();
        for target in set.rdata.iter().filter_map(RData::additional_target) {
            // A dynamic name's addresses move with health: the resolver asks for them.
            if done.contains(&target)
                || !is_within(target.as_wire(), apex.as_wire())
                || self.input.dynamic_names.contains(target)
            {
                continue;
            }
            done.push(target);
            let types = if glue { self.lookup(target.as_wire()) } else { self.types(target) };
            let Some(types) = types else { continue };
            for rtype in [TYPE_A, TYPE_AAAA] {
                if let Some(addrs) = types.get(&rtype) {
                    enc.section(Section::Additional);
                    if glue {
                        enc.rrset_unsigned(target, addrs);
                    } else {
                        enc.rrset(target, addrs);
                    }
                }
            }
        }
    }

    fn referral(&self, cut: &Name, out: &mut Out) -> u32 {
        self.referral_for(cut, false, out)
    }

    /// The referral at `cut`; with `pin`, the NS owner is whatever name was asked (for a
    /// wildcard cut).
    fn referral_for(&self, cut: &Name, pin: bool, out: &mut Out) -> u32 {
        if let Some(spec) = self.input.geo.iter().find(|g| g.name == *cut && g.rtype == TYPE_NS) {
            return self.geo(spec, pin, out);
        }
        let ns = &self.lookup(cut.as_wire()).expect("cut has data")[&TYPE_NS];
        let f = self.frag(out, cut, pin, RCODE_NOERROR, false, ns.source, |b, enc| {
            b.delegation(enc, cut, ns);
            0
        });
        out.push(f)
    }

    /// A referral to `ns` at `cut`: the NS set (the child's, never signed), and when signing
    /// the DS set from the zone's data with its RRSIG (a secure delegation) or an NSEC at the
    /// cut proving there is none (insecure); then the glue.
    fn delegation(&self, enc: &mut Encoder<'_>, cut: &Name, ns: &RRset) {
        enc.section(Section::Authority);
        enc.rrset_unsigned(cut, ns);
        if enc.is_signing() {
            match self.lookup(cut.as_wire()).and_then(|t| t.get(&TYPE_DS)) {
                Some(ds) => enc.rrset(cut, ds),
                None => enc.rrset(cut, &self.nsec(cut, vec![TYPE_NS])),
            }
        }
        self.additional(enc, ns, true);
    }

    /// A compact-denial NSEC set at `owner` for a name with `present` types (NXNAME for one
    /// that does not exist), with the negative TTL.
    fn nsec(&self, owner: &Name, present: Vec<u16>) -> RRset {
        let mut types = Vec::new();
        nodata_types(present.into_iter(), &mut types);
        let mut data = Vec::new();
        write_nsec_rdata(owner.as_wire(), &types, &mut data);
        RRset {
            ttl: self.negative_soa.ttl,
            rdata: vec![RData::Other { rtype: TYPE_NSEC, data: data.into() }],
            source: Source::Static,
            rotate: false,
            draw: None,
        }
    }

    /// Encodes one fragment with `body` (which returns the fragment's chase offset, 0 for
    /// none); in a signed zone also its signed twin, unless the answer is pinned to whatever
    /// name was asked (a wildcard's: signed per name while answering) or a SERVFAIL.
    #[allow(clippy::too_many_arguments)]
    fn frag(
        &self,
        out: &mut Out,
        name: &Name,
        pin: bool,
        rcode: u8,
        aa: bool,
        source: Source,
        body: impl Fn(&Self, &mut Encoder<'_>) -> u16,
    ) -> Fragment {
        let mut enc = Encoder::new(&mut out.scratch, name, pin);
        let chase = body(self, &mut enc);
        let mut f = enc.finish(&mut out.arena, rcode, aa, source);
        f.chase = chase;
        if let Some(signer) = self.input.signer.filter(|_| !pin && rcode != RCODE_SERVFAIL) {
            let mut enc = Encoder::new(&mut out.scratch, name, pin).signing(signer);
            let chase = body(self, &mut enc);
            let mut twin = enc.finish(&mut out.arena, rcode, aa, source);
            twin.chase = chase;
            out.signed.push(twin);
            f.signed = (out.signed.len() - 1) as u32;
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::records::ZoneData;

    /// A whole zone's input: these records, nothing dynamic, weighted or nested.
    fn plain_input<'a>(
        apex: &'a Name,
        soa: Soa,
        nodes: &'a [(&'a Name, Cow<'a, TypeMap>)],
        none: &'a HashSet<Name>,
    ) -> ZoneInput<'a> {
        ZoneInput {
            apex,
            soa,
            soa_ttl: 300,
            nodes,
            servfail: &[],
            weighted: &[],
            hinted: &[],
            geo: &[],
            nested: &[],
            dynamic_names: none,
            partial: false,
            unloaded: false,
            overlay: false,
            marks: &[],
            signer: None,
        }
    }

    /// A zone encoded in two halves answers byte for byte as one encoded in one go: plain
    /// names, CNAME chains, a cut with glue, a wildcard, empty non-terminals, MX additionals.
    #[test]
    fn two_halves_answer_as_one() {
        let apex = Name::parse("z.example.", None).unwrap();
        let mut text = String::from("ns1 A 192.0.2.53\nsub NS ns.sub\nns.sub A 192.0.2.54\n*.w A 192.0.2.99\n");
        for i in 0..600 {
            text.push_str(&format!("h{i}.d{} A 192.0.2.{}\n", i % 7, i % 250));
            if i % 5 == 0 {
                text.push_str(&format!("c{i} CNAME h{}.d{}\n", i + 1, (i + 1) % 7));
            }
            if i % 9 == 0 {
                text.push_str(&format!("m{i} MX 10 h{i}.d{}\n", i % 7));
            }
        }
        let toml = format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\nname = \"z.example\"\nns = [\"ns1.z.example\"]\nrecords = \"\"\"\n{text}\"\"\"\n"
        );
        let config = crate::config::parse(std::path::Path::new("t.toml"), &toml, &|_| None).unwrap();
        let data: &ZoneData = &config.zones[0].data;
        let nodes: Vec<(&Name, Cow<'_, TypeMap>)> = data.nodes.iter().map(|(n, t)| (n, Cow::Borrowed(t))).collect();
        let none = HashSet::new();
        let input = plain_input(&apex, data.soa.clone(), &nodes, &none);
        let (one, two) = (build_zone_on(&input, usize::MAX), build_zone_on(&input, 1));
        assert_eq!(one.nodes.len(), two.nodes.len());
        let bytes =
            |z: &ZoneSnap, f: &Fragment| z.arena.bytes[f.start as usize..f.start as usize + f.len as usize].to_vec();
        let mut asked = 0;
        for (name, _) in &nodes {
            for sub in [name.to_dotless(), format!("x.{}", name.to_dotless())] {
                let q = Name::parse(&sub, None).unwrap();
                for t in [TYPE_A, TYPE_AAAA, TYPE_CNAME, TYPE_MX, TYPE_NS, TYPE_DS] {
                    let (crate::snapshot::Hit::Frag(f1, z1), crate::snapshot::Hit::Frag(f2, z2)) =
                        (one.find(q.as_wire(), t), two.find(q.as_wire(), t))
                    else {
                        panic!("no dynamic names here");
                    };
                    assert_eq!(bytes(z1, f1), bytes(z2, f2), "{sub} {t}");
                    assert_eq!((f1.an, f1.ns, f1.ar, f1.rcode, f1.relocs), (f2.an, f2.ns, f2.ar, f2.rcode, f2.relocs));
                    let words = |z: &ZoneSnap, f: &Fragment| {
                        z.arena.words[f.words as usize..][..(f.relocs + f.ar) as usize].to_vec()
                    };
                    assert_eq!(words(z1, f1), words(z2, f2), "{sub} {t}");
                    asked += 1;
                }
            }
        }
        assert!(asked > 5000);
    }

    /// With every input name visible the input's name table becomes the snapshot's index:
    /// every name with data, every empty non-terminal and the apex are found, and a name
    /// that does not exist is not.
    #[test]
    fn the_input_table_indexes_every_node() {
        let apex = Name::parse("z.example.", None).unwrap();
        let rrset = |i: u8| RRset {
            ttl: 60,
            rdata: vec![RData::A(std::net::Ipv4Addr::new(192, 0, 2, i))],
            source: Source::Controller,
            rotate: false,
            draw: None,
        };
        let owned: Vec<Name> =
            (0..300u32).map(|i| Name::parse(&format!("h{i}.d{}.z.example.", i % 4), None).unwrap()).collect();
        let mut sorted: Vec<&Name> = owned.iter().collect();
        sorted.sort();
        let nodes: Vec<(&Name, Cow<'_, TypeMap>)> =
            sorted.iter().map(|n| (*n, Cow::Owned(TypeMap::one(TYPE_A, rrset(n.wire_len() as u8))))).collect();
        let none = HashSet::new();
        let soa =
            Soa { mname: apex.clone(), rname: apex.clone(), serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 60 };
        let input = plain_input(&apex, soa, &nodes, &none);
        for snap in [build_zone_on(&input, usize::MAX), build_zone_on(&input, 1)] {
            let rcode_an = |name: &str| match snap.find(Name::parse(name, None).unwrap().as_wire(), TYPE_A) {
                crate::snapshot::Hit::Frag(f, _) => (f.rcode, f.an),
                crate::snapshot::Hit::Dynamic => panic!("no dynamic names here"),
            };
            for name in &owned {
                assert_eq!(rcode_an(&name.to_string()), (RCODE_NOERROR, 1), "{name}");
            }
            for ent in ["d0.z.example.", "d3.z.example.", "z.example."] {
                assert_eq!(rcode_an(ent), (RCODE_NOERROR, 0), "{ent}");
            }
            assert_eq!(rcode_an("h1.d0.z.example.").0, RCODE_NXDOMAIN);
            assert_eq!(rcode_an("d4.z.example.").0, RCODE_NXDOMAIN);
        }
    }
}
