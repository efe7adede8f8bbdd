//! Encoding records into [`Fragment`]s, with name compression, at snapshot build time.
//!
//! An [`Encoder`] works in reusable [`Scratch`] buffers and appends the finished fragment to
//! the zone's [`Arena`], so building a large zone allocates almost nothing per answer.

use crate::dns::name::{Name, label_offsets};
use crate::dns::records::{RData, RRset, Source};
use crate::dns::types::*;
use crate::dns::wire::HEADER_LEN;
use crate::dnssec::sign::{CanonicalSet, RrsetSigner, TYPE_RRSIG, rrsig_rdatas};
use crate::snapshot::fragment::{Arena, Denial, Fragment, Rotation};

/// Compression targets must stay addressable after relocation by up to a full-length name.
const MAX_POINTER_TARGET: usize = 0x3fff - 255;
/// Fragments stop growing here, far below the 65,535-byte TCP message limit.
pub const MAX_FRAGMENT_LEN: usize = 60_000;

/// Which section records are being added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// Answer.
    Answer,
    /// Authority.
    Authority,
    /// Additional.
    Additional,
}

/// Buffers an [`Encoder`] works in; keep one and reuse it for every fragment of a build.
#[derive(Debug, Default)]
pub struct Scratch {
    buf: Vec<u8>,
    /// Name suffixes seen so far, back to back; `names` points into it.
    pool: Vec<u8>,
    /// Compression table: (pool offset, length, message offset, moves with the name length).
    names: Vec<(u32, u16, u16, bool)>,
    relocs: Vec<u16>,
    ar_ends: Vec<u16>,
    /// The RRset being signed, in canonical form.
    canon: CanonicalSet,
    /// Its RRSIG RDATAs.
    sigs: Vec<u8>,
}

/// Builds one [`Fragment`] for a given question name.
pub struct Encoder<'s> {
    s: &'s mut Scratch,
    base: usize,
    qname_len: usize,
    section: Section,
    an: u16,
    ns: u16,
    rotate: Rotation,
    required_mark: Option<usize>,
    /// A record the answer or authority section needs did not fit: the fragment is then
    /// answered with TC and nothing else, never with part of an RRset.
    overflow: bool,
    /// Signs each RRset after its records (a fragment for DO queries to a signed zone).
    signer: Option<&'s dyn RrsetSigner>,
}

impl<'s> Encoder<'s> {
    /// Starts a fragment for responses whose question name is `qname`. With `pin_qname`
    /// the full question name is the answer owner for any longer question too (wildcards):
    /// pointers to it never move, pointers to its ancestors do.
    pub fn new(s: &'s mut Scratch, qname: &Name, pin_qname: bool) -> Encoder<'s> {
        s.buf.clear();
        s.pool.clear();
        s.names.clear();
        s.relocs.clear();
        s.ar_ends.clear();
        let wire = qname.as_wire();
        for off in label_offsets(wire) {
            let pinned = pin_qname && off == 0;
            let at = s.pool.len() as u32;
            s.pool.extend_from_slice(&wire[off..]);
            s.names.push((at, (wire.len() - off) as u16, (HEADER_LEN + off) as u16, !pinned));
        }
        Encoder {
            s,
            base: HEADER_LEN + wire.len() + 4,
            qname_len: wire.len(),
            section: Section::Answer,
            an: 0,
            ns: 0,
            rotate: Rotation::default(),
            required_mark: None,
            overflow: false,
            signer: None,
        }
    }

    /// Signs every RRset added with [`Encoder::rrset`] (an RRSIG after each).
    pub fn signing(mut self, signer: &'s dyn RrsetSigner) -> Encoder<'s> {
        self.signer = Some(signer);
        self
    }

    /// True when RRsets are signed as they are added.
    pub fn is_signing(&self) -> bool {
        self.signer.is_some()
    }

    /// Current length of the encoded bytes (to delimit groups of records).
    pub fn len(&self) -> usize {
        self.s.buf.len()
    }

    /// True before any record was added.
    pub fn is_empty(&self) -> bool {
        self.s.buf.is_empty()
    }

    /// Names from here on are compressed only against the question: what follows is a group
    /// that may be written without the records before it (a weighted draw).
    pub fn forget_names(&mut self) {
        let base = self.base;
        self.s.names.retain(|&(_, _, at, _)| (at as usize) < base);
    }

    /// Moves on to a later section. Sections only go forward.
    pub fn section(&mut self, section: Section) {
        debug_assert!(section >= self.section);
        if section == Section::Additional && self.required_mark.is_none() {
            self.required_mark = Some(self.s.buf.len());
        }
        self.section = section;
    }

    fn find(&self, suffix: &[u8]) -> Option<(u16, bool)> {
        self.s
            .names
            .iter()
            .find(|(off, len, _, _)| &self.s.pool[*off as usize..*off as usize + *len as usize] == suffix)
            .map(|&(_, _, at, moves)| (at, moves))
    }

    fn name(&mut self, name: &Name, compress: bool) {
        let wire = name.as_wire();
        for off in label_offsets(wire) {
            if compress && let Some((at, moves)) = self.find(&wire[off..]) {
                if moves {
                    self.s.relocs.push(self.s.buf.len() as u16);
                }
                self.s.buf.extend_from_slice(&(0xc000 | at).to_be_bytes());
                return;
            }
            let here = self.base + self.s.buf.len();
            if compress && here <= MAX_POINTER_TARGET {
                let at = self.s.pool.len() as u32;
                self.s.pool.extend_from_slice(&wire[off..]);
                self.s.names.push((at, (wire.len() - off) as u16, here as u16, true));
            }
            let len = wire[off] as usize;
            self.s.buf.extend_from_slice(&wire[off..off + 1 + len]);
        }
        self.s.buf.push(0);
    }

    /// Appends one record. Returns false (and adds nothing) once the size cap is reached; an
    /// additional record may be left out, an answer or authority record may not (see
    /// [`Encoder::finish`]).
    pub fn record(&mut self, owner: &Name, class: u16, ttl: u32, rdata: &RData) -> bool {
        if self.s.buf.len() > MAX_FRAGMENT_LEN {
            if self.section != Section::Additional && !self.overflow {
                self.overflow = true;
                tracing::warn!(name = %owner, "an answer does not fit in one DNS message; it is answered with TC");
            }
            return false;
        }
        self.name(owner, true);
        let buf = &mut self.s.buf;
        buf.extend_from_slice(&rdata.rtype().to_be_bytes());
        buf.extend_from_slice(&class.to_be_bytes());
        buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = buf.len();
        buf.extend_from_slice(&[0, 0]);
        match rdata {
            RData::A(ip) => self.s.buf.extend_from_slice(&ip.octets()),
            RData::Aaaa(ip) => self.s.buf.extend_from_slice(&ip.octets()),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => self.name(n, true),
            RData::Mx { preference, exchange } => {
                self.s.buf.extend_from_slice(&preference.to_be_bytes());
                self.name(exchange, true);
            }
            RData::Srv { priority, weight, port, target } => {
                for v in [priority, weight, port] {
                    self.s.buf.extend_from_slice(&v.to_be_bytes());
                }
                // RFC 2782: the target is never compressed.
                self.name(target, false);
            }
            RData::Soa(soa) => {
                self.name(&soa.mname, true);
                self.name(&soa.rname, true);
                for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                    self.s.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
            RData::Other { data, .. } => self.s.buf.extend_from_slice(data),
        }
        let rdlen = (self.s.buf.len() - len_at - 2) as u16;
        self.s.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        match self.section {
            Section::Answer => self.an += 1,
            Section::Authority => self.ns += 1,
            Section::Additional => self.s.ar_ends.push(self.s.buf.len() as u16),
        }
        true
    }

    /// Appends one record whose RDATA is given as bytes, written as is (RRSIG, NSEC).
    fn record_raw(&mut self, owner: &Name, rtype: u16, ttl: u32, rdata: &[u8]) -> bool {
        if self.s.buf.len() > MAX_FRAGMENT_LEN {
            if self.section != Section::Additional {
                self.overflow = true;
            }
            return false;
        }
        self.name(owner, true);
        let buf = &mut self.s.buf;
        buf.extend_from_slice(&rtype.to_be_bytes());
        buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        buf.extend_from_slice(&ttl.to_be_bytes());
        buf.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        buf.extend_from_slice(rdata);
        match self.section {
            Section::Answer => self.an += 1,
            Section::Authority => self.ns += 1,
            Section::Additional => self.s.ar_ends.push(self.s.buf.len() as u16),
        }
        true
    }

    /// With a signer: the RRSIGs of the RRset `rdata` of type `rtype` at `owner`.
    fn sign<'r>(&mut self, owner: &Name, rtype: u16, ttl: u32, rdata: impl Iterator<Item = &'r RData>) {
        let Some(signer) = self.signer else { return };
        self.s.canon.fill(owner.as_wire(), rtype, ttl, rdata);
        let mut sigs = std::mem::take(&mut self.s.sigs);
        sigs.clear();
        signer.rrsigs(&self.s.canon, &mut sigs);
        for rdata in rrsig_rdatas(&sigs) {
            self.record_raw(owner, TYPE_RRSIG, ttl, rdata);
        }
        self.s.sigs = sigs;
    }

    /// Appends a one-record CNAME RRset whose target is written without compression and
    /// returns the target's offset in the fragment (for [`Fragment::chase`]).
    pub fn cname_for_chase(&mut self, owner: &Name, set: &RRset) -> Option<u16> {
        let Some(RData::Cname(target)) = set.rdata.first() else { return None };
        if self.s.buf.len() > MAX_FRAGMENT_LEN {
            self.overflow = true;
            return None;
        }
        self.name(owner, true);
        let buf = &mut self.s.buf;
        buf.extend_from_slice(&TYPE_CNAME.to_be_bytes());
        buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        buf.extend_from_slice(&set.ttl.to_be_bytes());
        buf.extend_from_slice(&(target.wire_len() as u16).to_be_bytes());
        let at = buf.len() as u16;
        self.name(target, false);
        self.an += 1;
        self.sign(owner, TYPE_CNAME, set.ttl, set.rdata.iter());
        Some(at)
    }

    /// Appends an RRset with class IN, and its RRSIGs when signing. A/AAAA sets of more than
    /// one record in the answer section rotate per query when the set asks for it.
    pub fn rrset(&mut self, owner: &Name, set: &RRset) {
        self.rrset_unsigned(owner, set);
        if let Some(first) = set.rdata.first() {
            self.sign(owner, first.rtype(), set.ttl, set.rdata.iter());
        }
    }

    /// Appends an RRset that is never signed, even when signing: a delegation's NS set and
    /// its glue belong to the child zone (RFC 4035 §2.2).
    pub fn rrset_unsigned(&mut self, owner: &Name, set: &RRset) {
        let start = self.s.buf.len();
        let mut first_len = 0;
        let mut same = true;
        for (i, rd) in set.rdata.iter().enumerate() {
            let before = self.s.buf.len();
            if !self.record(owner, CLASS_IN, set.ttl, rd) {
                return;
            }
            let len = self.s.buf.len() - before;
            if i == 0 {
                first_len = len;
            } else {
                same &= len == first_len;
            }
        }
        let rotatable = self.section == Section::Answer
            && set.rotate
            && set.rdata.len() > 1
            && self.rotate.count == 0
            && same
            && matches!(set.rdata[0], RData::A(_) | RData::Aaaa(_));
        if rotatable {
            self.rotate = Rotation { start: start as u16, count: set.rdata.len() as u16, rec_len: first_len as u16 };
        }
    }

    /// Appends the fragment to `arena` and describes it.
    pub fn finish(self, arena: &mut Arena, rcode: u8, aa: bool, source: Source) -> Fragment {
        let s = self.s;
        if self.overflow {
            // Nothing to copy, and more required than any message holds: always TC.
            s.buf.clear();
            s.relocs.clear();
            s.ar_ends.clear();
        }
        let required_len = match (self.overflow, s.ar_ends.is_empty()) {
            (true, _) => usize::from(u16::MAX),
            (false, true) => s.buf.len(),
            (false, false) => self.required_mark.unwrap_or(s.buf.len()),
        } as u16;
        let start = arena.bytes.len() as u32;
        arena.bytes.extend_from_slice(&s.buf);
        let words = arena.words.len() as u32;
        arena.words.extend_from_slice(&s.relocs);
        arena.words.extend_from_slice(&s.ar_ends);
        Fragment {
            start,
            len: s.buf.len() as u16,
            required_len,
            words,
            relocs: s.relocs.len() as u16,
            ar: s.ar_ends.len() as u16,
            build_qname_len: self.qname_len as u8,
            an: if self.overflow { 0 } else { self.an },
            ns: if self.overflow { 0 } else { self.ns },
            rotate: if self.overflow { Rotation::default() } else { self.rotate },
            rcode,
            aa,
            source,
            weighted: u32::MAX,
            geo: u32::MAX,
            chase: 0,
            signed: u32::MAX,
            denial: Denial::None,
            hints: false,
        }
    }
}
