//! The answer to one query: parse, look up, copy the pre-encoded bytes, patch the header,
//! append OPT. Shared by UDP and TCP; no lock, no allocation, no I/O.

use crate::dns::types::*;
use crate::dns::wire::{ClientSubnet, Ecs, HEADER_LEN, ParseError, Query, parse_query};
use crate::snapshot::Snapshot;
use crate::snapshot::fragment::WeightedAnswer;
use crate::snapshot::fragment::{Arena, Fragment};
use crate::snapshot::policy::Rng;
use crate::snapshot::records::Source;

/// Largest DNS message (TCP).
pub const MAX_MESSAGE: usize = 65_535;

/// How the query arrived; it decides the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 bytes, or the negotiated EDNS size.
    Udp,
    /// TCP: a full 64 KiB message.
    Tcp,
}

/// Per-worker state that survives between queries.
pub struct Responder {
    query: Query,
    turn: u32,
    rng: Rng,
}

impl Default for Responder {
    fn default() -> Self {
        // Distinct seeds per responder, so workers do not draw weighted picks in step.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Responder { query: Query::default(), turn: 0, rng: Rng::new(t ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) }
    }
}

/// What the response said, for counters and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Response length in bytes.
    pub len: usize,
    /// RCODE (low 4 bits; BADVERS shows as 16).
    pub rcode: u16,
    /// TC was set.
    pub truncated: bool,
    /// Question type (0 when the question did not parse).
    pub qtype: u16,
    /// Metrics slot of the zone that answered (0: none).
    pub zone_slot: u16,
    /// Source of the answer's data, when zone data answered.
    pub source: Option<Source>,
}

impl Responder {
    /// Answers `req` into `out` (which must hold [`MAX_MESSAGE`] bytes). `None`: send nothing.
    pub fn respond(&mut self, snap: &Snapshot, req: &[u8], out: &mut [u8], transport: Transport) -> Option<Outcome> {
        let q = &mut self.query;
        match parse_query(req, q) {
            Ok(()) => {}
            Err(ParseError::Drop) => return None,
            Err(ParseError::FormErr { question }) => return Some(error_reply(req, q, question, RCODE_FORMERR, out)),
            Err(ParseError::NotImp { question }) => return Some(error_reply(req, q, question, RCODE_NOTIMP, out)),
        }
        let settings = &snap.settings;
        let limit = match (transport, q.edns) {
            (Transport::Tcp, _) => MAX_MESSAGE,
            (Transport::Udp, None) => UDP_PAYLOAD_NO_EDNS,
            (Transport::Udp, Some(e)) => (e.udp_size.min(settings.max_udp_payload) as usize).max(UDP_PAYLOAD_NO_EDNS),
        };
        let ecs = match q.edns.map(|e| e.ecs) {
            Some(Ecs::Subnet(subnet)) if settings.ecs => Some(EcsOut { subnet, scope: 0 }),
            _ => None,
        };
        let edns =
            q.edns.map(|e| OptOut { nsid: if e.nsid { settings.nsid.as_deref() } else { None }, ext_rcode: 0, ecs });
        // An unknown version's options are not read (RFC 6891 §6.1.3); a malformed ECS is
        // FORMERR (RFC 7871 §7.1.1). Both replies carry an OPT, without options.
        let refused = if q.edns.is_some_and(|e| e.version > 0) {
            Some(RCODE_BADVERS)
        } else if settings.ecs && q.edns.is_some_and(|e| e.ecs == Ecs::Malformed) {
            Some(RCODE_FORMERR as u16)
        } else {
            None
        };
        if let Some(rcode) = refused {
            let opt = OptOut { nsid: None, ext_rcode: (rcode >> 4) as u8, ecs: None };
            return Some(finish(
                req,
                q,
                out,
                None,
                (rcode & 0xf) as u8,
                false,
                Some(opt),
                settings.max_udp_payload,
                limit,
                0,
                &mut self.rng,
                snap,
            ));
        }
        let mut zone_slot = 0;
        let (frag, rcode): (Option<Located<'_>>, u8) = match q.qtype {
            TYPE_OPT => (None, RCODE_FORMERR),
            TYPE_MAILA | TYPE_MAILB => (None, RCODE_NOTIMP),
            _ => match q.qclass {
                CLASS_IN => match snap.find_zone(q.qname()) {
                    Some(zone) => {
                        zone_slot = zone.slot();
                        // Zone transfers are not offered.
                        if matches!(q.qtype, TYPE_AXFR | TYPE_IXFR) {
                            (None, RCODE_REFUSED)
                        } else {
                            let (f, part) = zone.lookup(q.qname(), q.qtype);
                            let w = part.weighted.get(f.weighted as usize);
                            (Some((f, &part.arena, w)), f.rcode)
                        }
                    }
                    None => (None, RCODE_REFUSED),
                },
                CLASS_CH if matches!(q.qtype, TYPE_TXT | TYPE_ANY) => {
                    match snap.chaos.iter().find(|(n, _)| **n == *q.qname()) {
                        Some((_, f)) => (Some((f, &snap.chaos_arena, None)), RCODE_NOERROR),
                        None => (None, RCODE_REFUSED),
                    }
                }
                _ => (None, RCODE_REFUSED),
            },
        };
        self.turn = self.turn.wrapping_add(1);
        let aa = frag.is_some_and(|(f, _, _)| f.aa);
        let mut outcome =
            finish(req, q, out, frag, rcode, aa, edns, settings.max_udp_payload, limit, self.turn, &mut self.rng, snap);
        outcome.zone_slot = zone_slot;
        Some(outcome)
    }
}

/// A fragment, the arena it points into, and its weighted pick when it has one.
type Located<'a> = (&'a Fragment, &'a Arena, Option<&'a WeightedAnswer>);

/// The OPT record we append.
#[derive(Clone, Copy)]
struct OptOut<'a> {
    nsid: Option<&'a [u8]>,
    ext_rcode: u8,
    ecs: Option<EcsOut>,
}

/// The Client Subnet option of a response: the query's family, source prefix and address,
/// and the scope the answer holds for (RFC 7871 §7.2.1).
#[derive(Clone, Copy)]
struct EcsOut {
    subnet: ClientSubnet,
    /// SCOPE PREFIX-LENGTH: 0 when the answer does not depend on where the client is.
    scope: u8,
}

impl EcsOut {
    /// Option code, length, family, the two prefixes and the address.
    fn len(&self) -> usize {
        8 + self.subnet.addr_len()
    }

    fn write(&self, out: &mut [u8]) {
        let addr = &self.subnet.addr[..self.subnet.addr_len()];
        out[0..2].copy_from_slice(&OPT_ECS.to_be_bytes());
        out[2..4].copy_from_slice(&(4 + addr.len() as u16).to_be_bytes());
        out[4..6].copy_from_slice(&self.subnet.family.to_be_bytes());
        out[6] = self.subnet.source_prefix;
        out[7] = self.scope;
        out[8..8 + addr.len()].copy_from_slice(addr);
    }
}

impl OptOut<'_> {
    fn rdlen(&self) -> usize {
        self.nsid.map_or(0, |n| 4 + n.len()) + self.ecs.map_or(0, |e| e.len())
    }

    fn len(&self) -> usize {
        11 + self.rdlen()
    }

    fn write(&self, out: &mut [u8], payload: u16) {
        out[0] = 0;
        out[1..3].copy_from_slice(&TYPE_OPT.to_be_bytes());
        out[3..5].copy_from_slice(&payload.to_be_bytes());
        out[5..9].copy_from_slice(&[self.ext_rcode, 0, 0, 0]);
        out[9..11].copy_from_slice(&(self.rdlen() as u16).to_be_bytes());
        let mut at = 11;
        if let Some(n) = self.nsid {
            out[at..at + 2].copy_from_slice(&OPT_NSID.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&(n.len() as u16).to_be_bytes());
            out[at + 4..at + 4 + n.len()].copy_from_slice(n);
            at += 4 + n.len();
        }
        if let Some(e) = self.ecs {
            e.write(&mut out[at..]);
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn finish(
    req: &[u8],
    q: &Query,
    out: &mut [u8],
    frag: Option<Located<'_>>,
    rcode: u8,
    aa: bool,
    opt: Option<OptOut<'_>>,
    payload: u16,
    limit: usize,
    turn: u32,
    rng: &mut Rng,
    snap: &Snapshot,
) -> Outcome {
    let mut rcode = rcode;
    let qend = q.question_end;
    out[..qend].copy_from_slice(&req[..qend]);
    let opt_len = opt.map_or(0, |o| o.len());
    let room = limit.saturating_sub(qend + opt_len);
    let (mut len, mut an, mut ns, mut ar, mut tc) = (qend, 0u16, 0u16, 0u16, false);
    match frag {
        Some((f, arena, Some(weighted))) => match weighted.write(f, arena, &mut out[qend..], room, rng) {
            Some((n, count)) => {
                len += n;
                an = count;
            }
            None => tc = true,
        },
        Some((f, arena, None)) => {
            let w = f.write(arena, &mut out[qend..], room, q.qname().len(), turn);
            if w.truncated {
                tc = true;
            } else {
                len += w.len;
                an = f.an;
                ns = f.ns;
                ar = w.ar;
                if f.chase != 0
                    && let Some(c) = follow_chain(snap, q.qtype, f, out, qend, len, qend + room, turn, rng)
                {
                    len = c.len;
                    an += c.an;
                    ns = c.ns;
                    ar = c.ar;
                    rcode = c.rcode;
                }
            }
        }
        None => {}
    }
    if let Some(o) = opt {
        o.write(&mut out[len..], payload);
        len += opt_len;
        ar += 1;
    }
    let mut flags = FLAG_QR | (q.flags & (FLAG_RD | FLAG_CD | 0x7800)) | rcode as u16;
    if aa {
        flags |= FLAG_AA;
    }
    if tc {
        flags |= FLAG_TC;
    }
    write_header(out, flags, 1, an, ns, ar);
    let full_rcode = if opt.is_some_and(|o| o.ext_rcode != 0) { RCODE_BADVERS } else { rcode as u16 };
    Outcome {
        len,
        rcode: full_rcode,
        truncated: tc,
        qtype: q.qtype,
        zone_slot: 0,
        source: frag.map(|(f, _, _)| f.source),
    }
}

/// CNAME chains followed across our zones, at most this many zones beyond the first.
const MAX_CHASE_HOPS: usize = 4;

/// The response after following a chain into other zones.
struct Followed {
    len: usize,
    an: u16,
    ns: u16,
    ar: u16,
    rcode: u8,
}

/// Continues a CNAME chain that left its zone into the zone we serve that holds the target,
/// appending that zone's pre-encoded answer (its pointers moved to where it lands), as far as
/// [`MAX_CHASE_HOPS`] zones. `first` was written at `at`, the message currently ends at
/// `end`, and may not pass `max_end`. `None` when nothing was appended: the chain then ends
/// at the CNAME, which is a complete answer too (the resolver continues from there).
#[allow(clippy::too_many_arguments)]
fn follow_chain(
    snap: &Snapshot,
    qtype: u16,
    first: &Fragment,
    out: &mut [u8],
    at: usize,
    end: usize,
    max_end: usize,
    turn: u32,
    rng: &mut Rng,
) -> Option<Followed> {
    let (mut frag, mut frag_at, mut end) = (first, at, end);
    let mut result: Option<Followed> = None;
    let mut an = 0;
    for _ in 0..MAX_CHASE_HOPS {
        if frag.chase == 0 {
            break;
        }
        let name_at = frag_at + frag.chase as usize;
        let Some(name_len) = plain_name_len(&out[name_at..end]) else { break };
        // The target (written by us: uncompressed, lower case) stays where it is; the next
        // answer is written after it.
        let (written, free) = out.split_at_mut(end);
        let target = &written[name_at..name_at + name_len];
        let Some(zone) = snap.find_zone(target) else { break };
        let Some((next, part)) = zone.chase_lookup(target, qtype) else { break };
        let weighted = part.weighted.get(next.weighted as usize);
        let room = &mut free[..max_end - end];
        let Some(w) = next.write_at(&part.arena, weighted, room, end, name_at, name_len, turn, rng) else {
            break;
        };
        an += w.an;
        result = Some(Followed { len: end + w.len, an, ns: w.ns, ar: w.ar, rcode: next.rcode });
        (frag, frag_at, end) = (next, end, end + w.len);
    }
    result
}

/// The length of the uncompressed wire name at the start of `src`.
fn plain_name_len(src: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let len = *src.get(i)? as usize;
        if len & 0xc0 != 0 || i + 1 + len > 255 {
            return None;
        }
        i += 1 + len;
        if len == 0 {
            return (i <= src.len()).then_some(i);
        }
    }
}

fn write_header(out: &mut [u8], flags: u16, qd: u16, an: u16, ns: u16, ar: u16) {
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    for (i, v) in [qd, an, ns, ar].into_iter().enumerate() {
        out[4 + 2 * i..6 + 2 * i].copy_from_slice(&v.to_be_bytes());
    }
}

/// FORMERR/NOTIMP: the header, and the question when it parsed.
fn error_reply(req: &[u8], q: &Query, question: bool, rcode: u8, out: &mut [u8]) -> Outcome {
    let len = if question { q.question_end } else { HEADER_LEN };
    out[..len].copy_from_slice(&req[..len]);
    let flags = FLAG_QR | (q.flags & (FLAG_RD | FLAG_CD | 0x7800)) | rcode as u16;
    write_header(out, flags, question as u16, 0, 0, 0);
    let qtype = if question { q.qtype } else { 0 };
    Outcome { len, rcode: rcode as u16, truncated: false, qtype, zone_slot: 0, source: None }
}
