//! Encoding records into [`Fragment`]s, with name compression, at snapshot build time.

use crate::dns::name::{Name, label_offsets};
use crate::dns::types::*;
use crate::dns::wire::HEADER_LEN;
use crate::snapshot::fragment::{Fragment, Rotation};
use crate::snapshot::records::{RData, RRset, Source};

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

/// Builds one [`Fragment`] for a given question name.
pub struct Encoder {
    buf: Vec<u8>,
    base: usize,
    qname_len: usize,
    /// Compression table: a name suffix, where it sits in the message, whether it moves.
    names: Vec<(Box<[u8]>, u16, bool)>,
    relocs: Vec<u16>,
    section: Section,
    an: u16,
    ns: u16,
    ar_ends: Vec<u16>,
    rotate: Option<Rotation>,
    /// Where the additional section starts, once it has been entered.
    required_mark: Option<usize>,
    full: bool,
}

impl Encoder {
    /// Starts a fragment for responses whose question name is `qname`. With `pin_qname`
    /// the full question name is the answer owner for any longer question too (wildcards):
    /// pointers to it never move, pointers to its ancestors do.
    pub fn new(qname: &Name, pin_qname: bool) -> Encoder {
        let wire = qname.as_wire();
        let mut names = Vec::new();
        for off in label_offsets(wire) {
            let pinned = pin_qname && off == 0;
            names.push((wire[off..].into(), (HEADER_LEN + off) as u16, !pinned));
        }
        Encoder {
            buf: Vec::with_capacity(128),
            base: HEADER_LEN + wire.len() + 4,
            qname_len: wire.len(),
            names,
            relocs: Vec::new(),
            section: Section::Answer,
            an: 0,
            ns: 0,
            ar_ends: Vec::new(),
            rotate: None,
            required_mark: None,
            full: false,
        }
    }

    /// Moves on to a later section. Sections only go forward.
    pub fn section(&mut self, section: Section) {
        debug_assert!(section >= self.section);
        if section == Section::Additional && self.required_mark.is_none() {
            self.required_mark = Some(self.buf.len());
        }
        self.section = section;
    }

    /// True once the size cap stopped the encoder from adding records.
    pub fn is_full(&self) -> bool {
        self.full
    }

    fn name(&mut self, name: &Name, compress: bool) {
        let wire = name.as_wire();
        for off in label_offsets(wire) {
            if compress && let Some(&(_, at, moves)) = self.names.iter().find(|(n, _, _)| **n == wire[off..]) {
                if moves {
                    self.relocs.push(self.buf.len() as u16);
                }
                self.buf.extend_from_slice(&(0xc000 | at).to_be_bytes());
                return;
            }
            let here = self.base + self.buf.len();
            if compress && here <= MAX_POINTER_TARGET {
                self.names.push((wire[off..].into(), here as u16, true));
            }
            let len = wire[off] as usize;
            self.buf.extend_from_slice(&wire[off..off + 1 + len]);
        }
        self.buf.push(0);
    }

    /// Appends one record. Returns false (and adds nothing) once the size cap is reached.
    pub fn record(&mut self, owner: &Name, class: u16, ttl: u32, rdata: &RData) -> bool {
        if self.buf.len() > MAX_FRAGMENT_LEN {
            self.full = true;
            return false;
        }
        self.name(owner, true);
        self.buf.extend_from_slice(&rdata.rtype().to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match rdata {
            RData::A(ip) => self.buf.extend_from_slice(&ip.octets()),
            RData::Aaaa(ip) => self.buf.extend_from_slice(&ip.octets()),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => self.name(n, true),
            RData::Mx { preference, exchange } => {
                self.buf.extend_from_slice(&preference.to_be_bytes());
                self.name(exchange, true);
            }
            RData::Srv { priority, weight, port, target } => {
                for v in [priority, weight, port] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
                // RFC 2782: the target is never compressed.
                self.name(target, false);
            }
            RData::Soa(soa) => {
                self.name(&soa.mname, true);
                self.name(&soa.rname, true);
                for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
            RData::Other { data, .. } => self.buf.extend_from_slice(data),
        }
        let rdlen = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        match self.section {
            Section::Answer => self.an += 1,
            Section::Authority => self.ns += 1,
            Section::Additional => self.ar_ends.push(self.buf.len() as u16),
        }
        true
    }

    /// Appends an RRset with class IN. A/AAAA sets of more than one record in the answer
    /// section rotate per query when the set asks for it.
    pub fn rrset(&mut self, owner: &Name, set: &RRset) {
        let start = self.buf.len();
        let mut ends = Vec::with_capacity(set.rdata.len());
        for rd in &set.rdata {
            if !self.record(owner, CLASS_IN, set.ttl, rd) {
                return;
            }
            ends.push(self.buf.len());
        }
        let rotatable = self.section == Section::Answer
            && set.rotate
            && ends.len() > 1
            && self.rotate.is_none()
            && matches!(set.rdata[0], RData::A(_) | RData::Aaaa(_));
        if rotatable {
            let rec_len = ends[0] - start;
            let same = ends.windows(2).all(|w| w[1] - w[0] == rec_len);
            if same {
                self.rotate = Some(Rotation { start: start as u16, count: ends.len() as u16, rec_len: rec_len as u16 });
            }
        }
    }

    /// Finishes the fragment.
    pub fn finish(self, rcode: u8, aa: bool, source: Source) -> Fragment {
        let required_len = match self.ar_ends.is_empty() {
            true => self.buf.len(),
            false => self.required_mark.unwrap_or(self.buf.len()),
        } as u16;
        Fragment {
            bytes: self.buf.into_boxed_slice(),
            relocs: self.relocs.into_boxed_slice(),
            build_qname_len: self.qname_len as u16,
            an: self.an,
            ns: self.ns,
            required_len,
            ar_ends: self.ar_ends.into_boxed_slice(),
            rotate: self.rotate,
            rcode,
            aa,
            source,
        }
    }
}
