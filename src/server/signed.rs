//! The DO side of the query path for a signed zone: what cannot be signed before the question
//! is known. A compact denial (RFC 9824: one NSEC at the question's name, signed for it) is
//! appended to the zone's signed negative answer; an answer drawn or chosen per query (a
//! weighted pool's draw, a geo name's addresses, a wildcard's expansion) gets its RRSIGs
//! appended after its records. Signatures come from the cache, or are made within this
//! thread's budget; past it nothing unsigned is sent (the caller answers TC or SERVFAIL).
//!
//! The buffers are the worker's and are reused: after warming up this allocates only when a
//! signature is actually made.

use crate::dns::types::*;
use crate::dnssec::denial::{NXNAME_TYPES, TYPE_NSEC, nodata_types, write_nsec_rdata};
use crate::dnssec::online::{Kind, OnlineSigner, Origin};
use crate::dnssec::sign::{CanonicalSet, TYPE_RRSIG, rrsig_rdatas};
use crate::snapshot::Zone;

/// A worker's reusable buffers for signing while answering.
#[derive(Debug, Default)]
pub struct SignScratch {
    set: CanonicalSet,
    sigs: Vec<u8>,
    types: Vec<u16>,
    /// The types a name holds, before the bitmap is made of them.
    present: Vec<u16>,
    rdata: Vec<u8>,
    name: Vec<u8>,
    other: Vec<u8>,
}

/// Why a signed answer could not be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsigned {
    /// A signature was needed and this thread's signing budget is spent.
    OverBudget,
    /// The signed answer does not fit in the room the client gave.
    NoRoom,
    /// The records could not be read back (never expected for our own bytes).
    Malformed,
}

/// Appends the compact denial of `qname` (lower-case wire) to the message `out[..len]`: an
/// NSEC at the question's name (a pointer to it) and its RRSIGs, in the authority section.
/// `nxdomain`: the name does not exist (NXNAME), else the name's types less `qtype`.
/// Returns the new length, the records added and where the signature came from.
#[allow(clippy::too_many_arguments)]
pub fn append_denial(
    out: &mut [u8],
    len: usize,
    max_end: usize,
    zone: &Zone,
    qname: &[u8],
    qtype: u16,
    nxdomain: bool,
    signer: &OnlineSigner,
    s: &mut SignScratch,
) -> Result<(usize, u16, Origin), Unsigned> {
    if nxdomain || !zone.types_at(qname, &mut s.present) {
        s.types.clear();
        s.types.extend_from_slice(&NXNAME_TYPES);
    } else {
        nodata_types(s.present.iter().copied().filter(|&t| t != qtype), &mut s.types);
    }
    s.rdata.clear();
    write_nsec_rdata(qname, &s.types, &mut s.rdata);
    s.set.start(qname, TYPE_NSEC, signer.negative_ttl);
    s.set.push_rdata(&s.rdata);
    s.sigs.clear();
    let origin = signer.answer_rrsigs(&s.set, Kind::Denial, &mut s.sigs).ok_or(Unsigned::OverBudget)?;
    let ttl = signer.negative_ttl;
    let at = write_record(out, len, max_end, QNAME_POINTER, TYPE_NSEC, ttl, &s.rdata)?;
    let (at, sigs) = write_rrsigs(out, at, max_end, QNAME_POINTER, ttl, &s.sigs)?;
    Ok((at, 1 + sigs, origin))
}

/// Writes an RRSIG record per RDATA of `sigs` (as [`crate::dnssec::sign::push_rrsig`] fills
/// it), owned by the pointer `owner`; returns the new end and how many were written.
fn write_rrsigs(
    out: &mut [u8],
    at: usize,
    max_end: usize,
    owner: u16,
    ttl: u32,
    sigs: &[u8],
) -> Result<(usize, u16), Unsigned> {
    let (mut end, mut written) = (at, 0);
    for rdata in rrsig_rdatas(sigs) {
        end = write_record(out, end, max_end, owner, TYPE_RRSIG, ttl, rdata)?;
        written += 1;
    }
    Ok((end, written))
}

/// The question's name, always at offset 12.
const QNAME_POINTER: u16 = 0xc000 | 12;

/// Writes one record whose owner is the compression pointer `owner`.
fn write_record(
    out: &mut [u8],
    at: usize,
    max_end: usize,
    owner: u16,
    rtype: u16,
    ttl: u32,
    rdata: &[u8],
) -> Result<usize, Unsigned> {
    let end = at + 12 + rdata.len();
    if end > max_end || end > out.len() {
        return Err(Unsigned::NoRoom);
    }
    out[at..at + 2].copy_from_slice(&owner.to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&rtype.to_be_bytes());
    out[at + 4..at + 6].copy_from_slice(&CLASS_IN.to_be_bytes());
    out[at + 6..at + 10].copy_from_slice(&ttl.to_be_bytes());
    out[at + 10..at + 12].copy_from_slice(&(rdata.len() as u16).to_be_bytes());
    out[at + 12..end].copy_from_slice(rdata);
    Ok(end)
}

/// Signs the answer section just written, `an` records from `start` to `len` (nothing after
/// them), each run of records of one owner and type an RRset; appends the RRSIGs. Returns
/// the new length, the records added and the freshest signature's origin.
#[allow(clippy::too_many_arguments)]
pub fn sign_answer(
    out: &mut [u8],
    start: usize,
    len: usize,
    an: u16,
    max_end: usize,
    signer: &OnlineSigner,
    s: &mut SignScratch,
) -> Result<(usize, u16, Origin), Unsigned> {
    let mut at = start;
    let mut end = len;
    let mut added = 0u16;
    let mut origin = Origin::Cache;
    let mut remaining = an;
    // One RRset per pass: its records are consecutive.
    while remaining > 0 {
        let owner_at = at;
        s.name.clear();
        let after_owner = read_name(out, at, &mut s.name).ok_or(Unsigned::Malformed)?;
        let field = |b: &[u8], i: usize| -> Option<u16> { Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])) };
        let rtype = field(out, after_owner).ok_or(Unsigned::Malformed)?;
        let ttl = u32::from_be_bytes(
            out.get(after_owner + 4..after_owner + 8)
                .ok_or(Unsigned::Malformed)?
                .try_into()
                .map_err(|_| Unsigned::Malformed)?,
        );
        s.set.start(&s.name, rtype, ttl);
        // Every record of the run: same owner and type.
        loop {
            let rr_owner_end = skip_name(out, at).ok_or(Unsigned::Malformed)?;
            let t = field(out, rr_owner_end).ok_or(Unsigned::Malformed)?;
            if t != rtype || !same_owner(out, owner_at, at, &s.name, &mut s.other) {
                break;
            }
            let rdlen = field(out, rr_owner_end + 8).ok_or(Unsigned::Malformed)? as usize;
            let rd_at = rr_owner_end + 10;
            if rd_at + rdlen > len {
                return Err(Unsigned::Malformed);
            }
            s.rdata.clear();
            canonical_rdata(out, rtype, rd_at, rdlen, &mut s.rdata).ok_or(Unsigned::Malformed)?;
            s.set.push_rdata(&s.rdata);
            at = rd_at + rdlen;
            remaining -= 1;
            if remaining == 0 {
                break;
            }
        }
        s.set.sort();
        s.sigs.clear();
        if signer.answer_rrsigs(&s.set, Kind::Answer, &mut s.sigs).ok_or(Unsigned::OverBudget)? == Origin::Fresh {
            origin = Origin::Fresh;
        }
        let pointer = owner_pointer(out, owner_at).ok_or(Unsigned::Malformed)?;
        let (at_end, written) = write_rrsigs(out, end, max_end, pointer, ttl, &s.sigs)?;
        (end, added) = (at_end, added + written);
    }
    Ok((end, added, origin))
}

/// A pointer to the owner name written at `at` (itself when it is one).
fn owner_pointer(out: &[u8], at: usize) -> Option<u16> {
    let first = *out.get(at)?;
    if first & 0xc0 == 0xc0 {
        Some(u16::from_be_bytes([first, *out.get(at + 1)?]))
    } else {
        (at < 0x3fff).then_some(0xc000 | at as u16)
    }
}

/// The record at `at` has the owner `name` (the first of the run is at `first`).
fn same_owner(out: &[u8], first: usize, at: usize, name: &[u8], other: &mut Vec<u8>) -> bool {
    if at == first {
        return true;
    }
    other.clear();
    read_name(out, at, other).is_some() && other == name
}

/// Reads the (possibly compressed) name at `at` into `into`, lower-cased; returns where the
/// name's bytes end at `at`.
fn read_name(msg: &[u8], at: usize, into: &mut Vec<u8>) -> Option<usize> {
    let mut pos = at;
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(pos)? as usize;
        if len & 0xc0 == 0xc0 {
            let target = (len & 0x3f) << 8 | *msg.get(pos + 1)? as usize;
            end.get_or_insert(pos + 2);
            if target >= pos {
                return None;
            }
            pos = target;
            continue;
        }
        into.push(len as u8);
        if len == 0 {
            return Some(end.unwrap_or(pos + 1));
        }
        into.extend(msg.get(pos + 1..pos + 1 + len)?.iter().map(u8::to_ascii_lowercase));
        if into.len() > 255 {
            return None;
        }
        pos += 1 + len;
    }
    None
}

/// Where the name at `at` ends.
fn skip_name(msg: &[u8], at: usize) -> Option<usize> {
    let mut pos = at;
    loop {
        let len = *msg.get(pos)? as usize;
        if len & 0xc0 == 0xc0 {
            return Some(pos + 2);
        }
        pos += 1 + len;
        if len == 0 {
            return Some(pos);
        }
    }
}

/// The canonical RDATA of a record we wrote: names decompressed and lower-cased for the types
/// whose RDATA holds names (RFC 4034 §6.2), the rest as written.
fn canonical_rdata(msg: &[u8], rtype: u16, at: usize, len: usize, out: &mut Vec<u8>) -> Option<()> {
    let end = at + len;
    match rtype {
        TYPE_CNAME | TYPE_NS | TYPE_PTR => {
            read_name(msg, at, out)?;
        }
        TYPE_MX => {
            out.extend_from_slice(msg.get(at..at + 2)?);
            read_name(msg, at + 2, out)?;
        }
        TYPE_SRV => {
            out.extend_from_slice(msg.get(at..at + 6)?);
            read_name(msg, at + 6, out)?;
        }
        TYPE_SOA => {
            let after = read_name(msg, at, out)?;
            let after = read_name(msg, after, out)?;
            out.extend_from_slice(msg.get(after..after + 20)?);
        }
        _ => out.extend_from_slice(msg.get(at..end)?),
    }
    Some(())
}
