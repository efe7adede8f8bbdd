//! Pre-encoded answer fragments and the copy that turns one into a response.
//!
//! A [`Fragment`] locates the answer, authority and additional sections of one response in
//! its zone's [`Arena`], encoded once by the builder for a known question name. Compression
//! pointers point into the question (always at offset 12) or into the fragment itself. When
//! the fragment is reused for a longer question name (NXDOMAIN below the apex, referrals
//! below a cut, wildcard answers), every pointer listed in its relocations moves by the
//! length difference; nothing else changes. Keeping every fragment of a zone in one arena
//! costs no allocation per fragment and keeps a 100,000-name zone compact.
//!
//! This module is on the query path: it copies bytes and patches a few words.

use crate::dns::records::Source;

/// A run of same-length records whose order rotates per query (`count` 0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rotation {
    /// Offset of the first record in the fragment.
    pub start: u16,
    /// Number of records.
    pub count: u16,
    /// Length of each record.
    pub rec_len: u16,
}

/// The bytes and words every fragment of one zone points into.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Arena {
    /// Encoded records of all fragments, back to back.
    pub bytes: Vec<u8>,
    /// Relocation offsets and additional-record ends of all fragments.
    pub words: Vec<u16>,
}

/// Where one response's sections sit in an [`Arena`], and how to place them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Start of the bytes in `Arena::bytes`.
    pub start: u32,
    /// Length of the bytes.
    pub len: u16,
    /// End of the authority section: the bytes a response cannot do without.
    pub required_len: u16,
    /// Start in `Arena::words` of the relocation offsets, then the additional-record ends.
    pub words: u32,
    /// Number of relocation offsets (compression pointers that move with the name length).
    pub relocs: u16,
    /// Number of additional records (their end offsets follow the relocations).
    pub ar: u16,
    /// Wire length of the name the fragment was encoded for (at most 255).
    pub build_qname_len: u8,
    /// Answer record count.
    pub an: u16,
    /// Authority record count.
    pub ns: u16,
    /// The answer records that rotate per query.
    pub rotate: Rotation,
    /// Response code (NOERROR or NXDOMAIN).
    pub rcode: u8,
    /// Authoritative answer (false only for referrals).
    pub aa: bool,
    /// The source of the answer's data, for metrics.
    pub source: Source,
    /// Index of a per-query weighted pick (`ZoneSnap::weighted`), or `u32::MAX`.
    pub weighted: u32,
    /// Index of the answer chosen by the client's location (`ZoneSnap::geo`), or `u32::MAX`:
    /// this fragment then stands for the answer to clients of the map's default order.
    pub geo: u32,
    /// A CNAME chain that leaves the zone: offset of its final target name, written without
    /// compression, so the query path can continue in another zone we serve. 0: none (no
    /// fragment starts with a CNAME target).
    pub chase: u16,
    /// In a signed zone: the same answer with its RRSIGs (and the proofs a referral needs),
    /// for DO queries: an index into `ZoneSnap::signed`, or `u32::MAX` when the answer is
    /// signed while answering (drawn or chosen per query, synthesised from a wildcard) or
    /// needs no signature (SERVFAIL).
    pub signed: u32,
    /// A negative answer whose proof is made per question (compact denial).
    pub denial: Denial,
    /// An HTTPS or SVCB record of a pool: its `ipv4hint`/`ipv6hint` are filled per query
    /// with the addresses the name's A and AAAA answers give the same client
    /// (`server::hints`). The fragment holds the record without them.
    pub hints: bool,
}

/// What a negative answer denies, for compact denial (RFC 9824).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Denial {
    /// Not a negative answer that needs a proof per question.
    #[default]
    None,
    /// The name exists without the type asked: NSEC with the name's types.
    NoData,
    /// The name does not exist: NSEC with NXNAME.
    NxDomain,
}

impl Fragment {
    /// Copies this fragment to the start of `out` for a response in which the name it was
    /// built for sits, uncompressed, at message offset `name_at` with wire length `name_len`
    /// (at or below the build name), and the fragment itself lands at message offset `at`.
    /// Every compression pointer is moved accordingly. Writes the required part and as many
    /// additional records as fit in `out`; `None` (nothing counted) when the required part
    /// does not fit or a moved pointer would not be addressable. `weighted` is the
    /// fragment's per-query pick, if it has one (drawn with `rng`, or hashed for `client`).
    #[allow(clippy::too_many_arguments)]
    pub fn write_at(
        &self,
        arena: &Arena,
        weighted: Option<&WeightedAnswer>,
        out: &mut [u8],
        at: usize,
        name_at: usize,
        name_len: usize,
        turn: u32,
        rng: &mut crate::snapshot::policy::Rng,
        client: std::net::IpAddr,
    ) -> Option<Chased> {
        let build_len = self.build_qname_len as usize;
        if name_len < build_len {
            return None;
        }
        let body = crate::dns::wire::HEADER_LEN + build_len + 4;
        let map = |ptr: usize| -> Option<u16> {
            let moved = if ptr >= body {
                at + (ptr - body)
            } else if ptr >= crate::dns::wire::HEADER_LEN && ptr < crate::dns::wire::HEADER_LEN + build_len {
                name_at + (name_len - build_len) + (ptr - crate::dns::wire::HEADER_LEN)
            } else {
                return None;
            };
            (moved < 0x3fff).then_some(moved as u16)
        };
        let start = self.start as usize;
        let src = &arena.bytes[start..start + self.len as usize];
        let words = &arena.words[self.words as usize..self.words as usize + (self.relocs + self.ar) as usize];
        let (relocs, ar_ends) = words.split_at(self.relocs as usize);
        let patch = |out: &mut [u8], at_out: usize, at_src: usize| -> Option<()> {
            let ptr = u16::from_be_bytes([src[at_src], src[at_src + 1]]) as usize & 0x3fff;
            out[at_out..at_out + 2].copy_from_slice(&(0xc000 | map(ptr)?).to_be_bytes());
            Some(())
        };
        if let Some(w) = weighted {
            // One group per picked member, back to back; each group's pointers move with it.
            let mut picks = [0u16; 64];
            let n = w.pick(rng, client, &mut picks);
            let (mut len, mut an) = (0usize, 0u16);
            for &g in &picks[..n] {
                let (off, glen, count) = w.groups[g as usize];
                let (off, glen) = (off as usize, glen as usize);
                if len + glen > out.len() {
                    break;
                }
                out[len..len + glen].copy_from_slice(&src[off..off + glen]);
                for r in relocs.iter().map(|r| *r as usize).filter(|r| (off..off + glen).contains(r)) {
                    patch(out, len + (r - off), r)?;
                }
                len += glen;
                an += count;
            }
            return (an > 0).then_some(Chased { len, an, ns: 0, ar: 0 });
        }
        let required = self.required_len as usize;
        if required > out.len() {
            return None;
        }
        let (len, ar) = if src.len() <= out.len() {
            (src.len(), self.ar)
        } else {
            let fit = ar_ends.iter().take_while(|&&end| end as usize <= out.len()).count();
            (if fit == 0 { required } else { ar_ends[fit - 1] as usize }, fit as u16)
        };
        out[..len].copy_from_slice(&src[..len]);
        if self.rotate.count > 1 {
            rotate_into(&mut out[..len], src, self.rotate, turn);
        }
        for r in relocs.iter().map(|r| *r as usize).filter(|&r| r + 2 <= len) {
            patch(out, r, r)?;
        }
        Some(Chased { len, an: self.an, ns: self.ns, ar })
    }
}

/// What [`Fragment::write_at`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chased {
    /// Bytes.
    pub len: usize,
    /// Answer records.
    pub an: u16,
    /// Authority records.
    pub ns: u16,
    /// Additional records.
    pub ar: u16,
}

/// An answer whose records are picked per query: each group is one member's records (its
/// bytes lie back to back in the fragment), and `k` groups are drawn by weight, or ranked
/// by hashing the client's network (`hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedAnswer {
    /// (offset in the fragment, length, record count) of each group.
    pub groups: Box<[(u16, u16, u16)]>,
    /// Weight of each group.
    pub weights: Box<[u32]>,
    /// Groups per answer.
    pub k: u16,
    /// Picked by the client's network (`select = "hash"`) rather than drawn.
    pub hash: Option<Box<crate::snapshot::policy::Hashing>>,
}

impl WeightedAnswer {
    /// The groups of this query's answer, into `picks`; returns how many.
    #[inline]
    pub fn pick(
        &self,
        rng: &mut crate::snapshot::policy::Rng,
        client: std::net::IpAddr,
        picks: &mut [u16; 64],
    ) -> usize {
        let k = (self.k as usize).min(picks.len());
        match &self.hash {
            None => crate::snapshot::policy::pick_weighted(&self.weights, rng, &mut picks[..k]),
            Some(h) => crate::snapshot::policy::pick_hashed(&self.weights, &h.seeds, h.key(client), &mut picks[..k]),
        }
    }

    /// The ECS scope the answer has for `client`: the hashed prefix, or 0 when it was drawn
    /// (the same for everyone, by chance).
    #[inline]
    pub fn scope(&self, client: std::net::IpAddr) -> u8 {
        self.hash.as_ref().map_or(0, |h| h.scope(client))
    }

    /// Writes `k` groups drawn by weight (or hashed for `client`) into `out`; returns
    /// (bytes, records), or `None` when not even one group fits in `room`.
    #[inline]
    pub fn write(
        &self,
        frag: &Fragment,
        arena: &Arena,
        out: &mut [u8],
        room: usize,
        rng: &mut crate::snapshot::policy::Rng,
        client: std::net::IpAddr,
    ) -> Option<(usize, u16)> {
        let mut picks = [0u16; 64];
        let n = self.pick(rng, client, &mut picks);
        let base = frag.start as usize;
        let (mut len, mut an) = (0usize, 0u16);
        for &g in &picks[..n] {
            let (off, glen, count) = self.groups[g as usize];
            let glen = glen as usize;
            if len + glen > room.min(out.len()) {
                break;
            }
            let src = &arena.bytes[base + off as usize..base + off as usize + glen];
            out[len..len + glen].copy_from_slice(src);
            len += glen;
            an += count;
        }
        (an > 0).then_some((len, an))
    }
}

/// How much of a fragment was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes written.
    pub len: usize,
    /// Additional records written.
    pub ar: u16,
    /// The required part did not fit: nothing was written and the response must be truncated.
    pub truncated: bool,
}

impl Fragment {
    /// Copies the fragment into `out` at offset 0, keeping at most `room` bytes:
    /// everything if it fits, else the required part and as many additional records as fit,
    /// else nothing (`truncated`). `qname_len` is the wire length of the question name in
    /// the response; `turn` picks the rotation.
    #[inline]
    pub fn write(&self, arena: &Arena, out: &mut [u8], room: usize, qname_len: usize, turn: u32) -> Written {
        let required = self.required_len as usize;
        let room = room.min(out.len());
        if required > room {
            return Written { len: 0, ar: 0, truncated: true };
        }
        let start = self.start as usize;
        let src = &arena.bytes[start..start + self.len as usize];
        let words = &arena.words[self.words as usize..self.words as usize + (self.relocs + self.ar) as usize];
        let (relocs, ar_ends) = words.split_at(self.relocs as usize);
        let (len, ar) = if src.len() <= room {
            (src.len(), self.ar)
        } else {
            let fit = ar_ends.iter().take_while(|&&end| end as usize <= room).count();
            let len = if fit == 0 { required } else { ar_ends[fit - 1] as usize };
            (len, fit as u16)
        };
        let out = &mut out[..len];
        out.copy_from_slice(&src[..len]);
        if self.rotate.count > 1 {
            rotate_into(out, src, self.rotate, turn);
        }
        let delta = qname_len as isize - self.build_qname_len as isize;
        if delta != 0 {
            for &at in relocs {
                let at = at as usize;
                if at + 2 > len {
                    continue;
                }
                let ptr = u16::from_be_bytes([out[at], out[at + 1]]) & 0x3fff;
                let moved = (ptr as isize + delta) as u16 | 0xc000;
                out[at..at + 2].copy_from_slice(&moved.to_be_bytes());
            }
        }
        Written { len, ar, truncated: false }
    }
}

/// Writes the rotated record run: records `k..count` first, then `0..k`.
#[inline]
fn rotate_into(out: &mut [u8], src: &[u8], rot: Rotation, turn: u32) {
    let count = rot.count as usize;
    let k = turn as usize % count;
    if k == 0 {
        return;
    }
    let start = rot.start as usize;
    let rec = rot.rec_len as usize;
    let split = start + k * rec;
    let end = start + count * rec;
    let head = end - split;
    out[start..start + head].copy_from_slice(&src[split..end]);
    out[start + head..end].copy_from_slice(&src[start..split]);
}

#[cfg(test)]
mod layout {
    /// Every record of every zone has fragments: they stay at 48 bytes (the hints flag took
    /// padding that was already there).
    #[test]
    fn a_fragment_stays_48_bytes() {
        assert_eq!(std::mem::size_of::<super::Fragment>(), 48);
    }
}
