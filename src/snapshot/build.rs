//! Compiles a zone's records ([`ZoneData`]) into its immutable, pre-encoded form ([`ZoneSnap`]).
//!
//! Every response the zone can give is decided here, once: exact answers per name and type,
//! CNAME chains chased inside the zone, NODATA and NXDOMAIN with the SOA, referrals at zone
//! cuts, wildcard answers, and the additional-section addresses for NS/MX/SRV targets.

use std::collections::{BTreeSet, HashSet};

use crate::dns::name::Name;
use crate::dns::types::*;
use crate::snapshot::encode::{Encoder, Section};
use crate::snapshot::fragment::Fragment;
use crate::snapshot::records::{RData, RRset, Source, ZoneData};
use crate::snapshot::{Answers, Node, ZoneSnap};

/// Longest CNAME chain followed inside a zone.
const MAX_CHAIN: usize = 8;

type Types = crate::snapshot::records::TypeMap;

/// How a CNAME chain ends.
enum Terminal<'a> {
    /// At a name with data.
    Data(&'a Types),
    /// At an existing name without data (an empty non-terminal).
    Empty,
    /// At a name that does not exist in the zone.
    Missing,
    /// Outside the zone, at a delegation, or in a loop: the resolver takes over.
    Elsewhere,
}

struct ZoneBuilder<'a> {
    data: &'a ZoneData,
    apex_types: Types,
    cuts: BTreeSet<&'a Name>,
    /// Every name that exists (has data or is an empty non-terminal), occluded names excluded.
    existing: BTreeSet<Name>,
    negative_soa: RRset,
}

/// Builds the pre-encoded form of one zone.
pub fn build_zone(data: &ZoneData) -> ZoneSnap {
    let mut apex_types = data.nodes.get(&data.apex).cloned().unwrap_or_default();
    apex_types.insert(
        TYPE_SOA,
        RRset {
            ttl: data.soa_ttl,
            rdata: vec![RData::Soa(Box::new(data.soa.clone()))],
            source: Source::Static,
            rotate: false,
        },
    );
    let cuts: BTreeSet<&Name> = data
        .nodes
        .iter()
        .filter(|(name, types)| **name != data.apex && types.contains_key(&TYPE_NS))
        .map(|(name, _)| name)
        .collect();
    let negative_soa = RRset {
        ttl: data.soa_ttl.min(data.soa.minimum),
        rdata: vec![RData::Soa(Box::new(data.soa.clone()))],
        source: Source::Static,
        rotate: false,
    };
    let mut b = ZoneBuilder { data, apex_types, cuts, existing: BTreeSet::new(), negative_soa };
    b.existing.insert(data.apex.clone());
    for name in data.nodes.keys() {
        if !name.is_within(&data.apex) || b.occluded(name) {
            continue;
        }
        let mut cur = Some(name.clone());
        while let Some(n) = cur {
            if n == data.apex || !b.existing.insert(n.clone()) {
                break;
            }
            cur = n.parent();
        }
    }

    let mut nodes = std::collections::HashMap::with_hasher(foldhash::fast::RandomState::default());
    for name in &b.existing {
        let node = if b.cuts.contains(name) {
            Node::Cut { referral: b.referral(name) }
        } else {
            let wildcard = name.prepend(b"*").filter(|w| b.existing.contains(w)).map(|w| Box::new(b.answers(&w, true)));
            Node::Auth { answers: b.answers(name, false), wildcard }
        };
        nodes.insert(name.as_wire().into(), node);
    }
    let negative = |rcode| {
        let mut enc = Encoder::new(&data.apex, false);
        enc.section(Section::Authority);
        enc.rrset(&data.apex, &b.negative_soa);
        enc.finish(rcode, true, Source::Static)
    };
    let (nxdomain, nodata) = (negative(RCODE_NXDOMAIN), negative(RCODE_NOERROR));
    ZoneSnap {
        apex: data.apex.clone(),
        apex_len: data.apex.wire_len(),
        serial: data.soa.serial,
        record_count: data.record_count(),
        nodes,
        nxdomain,
        nodata,
    }
}

impl<'a> ZoneBuilder<'a> {
    /// True when a zone cut lies strictly above `name` (the name is glue or below a delegation).
    fn occluded(&self, name: &Name) -> bool {
        let mut cur = name.parent();
        while let Some(n) = cur {
            if n == self.data.apex || !n.is_within(&self.data.apex) {
                return false;
            }
            if self.cuts.contains(&n) {
                return true;
            }
            cur = n.parent();
        }
        false
    }

    /// The authoritative data at a visible name.
    fn types(&self, name: &Name) -> Option<&Types> {
        if *name == self.data.apex {
            return Some(&self.apex_types);
        }
        if self.cuts.contains(name) || self.occluded(name) {
            return None;
        }
        self.data.nodes.get(name)
    }

    fn answers(&self, name: &Name, pin: bool) -> Answers {
        let empty = Types::new();
        let types = self.types(name).unwrap_or(&empty);
        if let Some(cname) = types.get(&TYPE_CNAME) {
            return self.cname_answers(name, cname, pin);
        }
        let mut by_type = Vec::with_capacity(types.len());
        for (&rtype, set) in types {
            let mut enc = Encoder::new(name, pin);
            enc.rrset(name, set);
            self.additional(&mut enc, set, false);
            by_type.push((rtype, enc.finish(RCODE_NOERROR, true, set.source)));
        }
        // RFC 8482: answer ANY with one RRset, preferring the addresses.
        let any = [TYPE_A, TYPE_AAAA]
            .iter()
            .find_map(|t| by_type.iter().position(|(rt, _)| rt == t))
            .or(if by_type.is_empty() { None } else { Some(0) });
        Answers { by_type: by_type.into_boxed_slice(), default: None, any: any.map(|i| i as u16) }
    }

    fn cname_answers(&self, name: &Name, cname: &RRset, pin: bool) -> Answers {
        let (chain, terminal) = self.chase(name, cname);
        let encode_chain = |enc: &mut Encoder| {
            for (owner, set) in &chain {
                enc.rrset(owner, set);
            }
        };
        let mut by_type = Vec::new();
        let mut only = Encoder::new(name, pin);
        only.rrset(name, cname);
        by_type.push((TYPE_CNAME, only.finish(RCODE_NOERROR, true, cname.source)));
        if let (Terminal::Data(types), Some(&(last_owner, last_set))) = (&terminal, chain.last()) {
            let target = match last_set.rdata.first() {
                Some(RData::Cname(t)) => t,
                _ => last_owner,
            };
            for (&rtype, set) in types.iter().filter(|(t, _)| **t != TYPE_CNAME) {
                let mut enc = Encoder::new(name, pin);
                encode_chain(&mut enc);
                enc.rrset(target, set);
                self.additional(&mut enc, set, false);
                by_type.push((rtype, enc.finish(RCODE_NOERROR, true, set.source)));
            }
        }
        let mut enc = Encoder::new(name, pin);
        encode_chain(&mut enc);
        let rcode = match terminal {
            Terminal::Data(_) | Terminal::Empty => {
                enc.section(Section::Authority);
                enc.rrset(&self.data.apex, &self.negative_soa);
                RCODE_NOERROR
            }
            Terminal::Missing => {
                enc.section(Section::Authority);
                enc.rrset(&self.data.apex, &self.negative_soa);
                RCODE_NXDOMAIN
            }
            Terminal::Elsewhere => RCODE_NOERROR,
        };
        let default = Some(enc.finish(rcode, true, cname.source));
        Answers { by_type: by_type.into_boxed_slice(), default, any: Some(0) }
    }

    /// Follows a CNAME chain inside the zone, loop-safe and bounded.
    fn chase<'s>(&'s self, start: &'s Name, first: &'s RRset) -> (Vec<(&'s Name, &'s RRset)>, Terminal<'s>) {
        let mut chain: Vec<(&Name, &RRset)> = vec![(start, first)];
        let mut seen: HashSet<&Name> = HashSet::from([start]);
        loop {
            let (_, set) = chain[chain.len() - 1];
            let target = match set.rdata.first() {
                Some(RData::Cname(t)) => t,
                _ => return (chain, Terminal::Elsewhere),
            };
            if !target.is_within(&self.data.apex) || self.cuts.contains(target) || self.occluded(target) {
                return (chain, Terminal::Elsewhere);
            }
            let types = match self.data.nodes.get(target) {
                Some(t) if *target != self.data.apex => t,
                _ if *target == self.data.apex => return (chain, Terminal::Data(&self.apex_types)),
                _ if self.existing.contains(target) => return (chain, Terminal::Empty),
                _ => return (chain, Terminal::Missing),
            };
            match types.get(&TYPE_CNAME) {
                Some(next) if !seen.contains(target) && chain.len() < MAX_CHAIN => {
                    // Borrow the key stored in the map so the chain lives as long as the data.
                    let (key, _) = self.data.nodes.get_key_value(target).expect("looked up above");
                    seen.insert(key);
                    chain.push((key, next));
                }
                Some(_) => return (chain, Terminal::Elsewhere),
                None => return (chain, Terminal::Data(types)),
            }
        }
    }

    /// Addresses of in-zone NS/MX/SRV targets. Referrals (`glue`) may use occluded names.
    fn additional(&self, enc: &mut Encoder, set: &RRset, glue: bool) {
        let mut done: Vec<&Name> = Vec::new();
        for target in set.rdata.iter().filter_map(RData::additional_target) {
            if done.contains(&target) || !target.is_within(&self.data.apex) {
                continue;
            }
            done.push(target);
            let types = if glue { self.data.nodes.get(target) } else { self.types(target) };
            let Some(types) = types else { continue };
            for rtype in [TYPE_A, TYPE_AAAA] {
                if let Some(addrs) = types.get(&rtype) {
                    enc.section(Section::Additional);
                    enc.rrset(target, addrs);
                }
            }
        }
    }

    fn referral(&self, cut: &Name) -> Fragment {
        let ns = &self.data.nodes[cut][&TYPE_NS];
        let mut enc = Encoder::new(cut, false);
        enc.section(Section::Authority);
        enc.rrset(cut, ns);
        self.additional(&mut enc, ns, true);
        enc.finish(RCODE_NOERROR, false, ns.source)
    }
}
