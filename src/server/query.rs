//! The answer to one query: parse, look up, copy the pre-encoded bytes, patch the header,
//! append OPT. Shared by UDP and TCP; no lock, no allocation, no I/O.

use std::net::IpAddr;

use crate::dns::records::Source;
use crate::dns::types::*;
use crate::dns::wire::{ClientSubnet, Cookie, Ecs, HEADER_LEN, ParseError, Query, parse_query};
use crate::dnssec::online::{OVER_BUDGET_ANSWERS, OnlineSigner, Origin};
use crate::geo_table::Located as GeoLocated;
use crate::server::cookies::{self, CookieUse};
use crate::server::hints;
use crate::server::signed::{SignScratch, Unsigned, append_denial, sign_answer};
use crate::snapshot::fragment::WeightedAnswer;
use crate::snapshot::fragment::{Arena, Denial, Fragment};
use crate::snapshot::geo::{GeoAnswer, GeoKind, NO_DATACENTER};
use crate::snapshot::policy::Rng;
use crate::snapshot::{CookieSettings, Snapshot, Zone, ZoneSnap};

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
    /// Buffers for signing while answering (DO queries to a signed zone).
    sign: SignScratch,
}

impl Default for Responder {
    fn default() -> Self {
        // Distinct seeds per responder, so workers do not draw weighted picks in step.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Responder {
            query: Query::default(),
            turn: 0,
            rng: Rng::new(t ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            sign: SignScratch::default(),
        }
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
    /// What the client's location decided, when the answer depends on it.
    pub geo: Option<GeoDecision>,
    /// What became of the query's Client Subnet option.
    pub ecs: EcsUse,
    /// What the query's COOKIE option turned out to be.
    pub cookie: CookieUse,
    /// A DO query to a signed zone: where the answer's signatures came from (the freshest
    /// when there were several).
    pub signed: Option<Origin>,
    /// The prefix of the client's network a hashed pool answer was keyed on (0: none); the
    /// answer's ECS scope is at least this.
    pub hash_scope: u8,
}

/// An answer chosen by the client's location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeoDecision {
    /// The widest prefix around the client that gets the same answer (ECS scope).
    pub scope: u8,
    /// Metrics slot of the geo pool or name.
    pub slot: u16,
    /// The datacenter answered from ([`NO_DATACENTER`]: a fallback).
    pub datacenter: u16,
}

/// What became of a query's EDNS Client Subnet option (RFC 7871), for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EcsUse {
    /// The query carried none.
    #[default]
    Absent,
    /// The answer depended on the subnet's location (scope > 0 or a geo answer).
    Scoped,
    /// The answer is the same everywhere (scope 0).
    Global,
    /// Source prefix 0: the resolver withheld the client's address.
    Withheld,
    /// Malformed: FORMERR.
    Malformed,
    /// ECS is turned off (`[server] ecs = false`): ignored, not echoed.
    Disabled,
}

impl EcsUse {
    /// Every outcome, in counter order.
    pub const ALL: [EcsUse; 6] =
        [EcsUse::Absent, EcsUse::Scoped, EcsUse::Global, EcsUse::Withheld, EcsUse::Malformed, EcsUse::Disabled];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            EcsUse::Absent => "absent",
            EcsUse::Scoped => "scoped",
            EcsUse::Global => "global",
            EcsUse::Withheld => "source_prefix_0",
            EcsUse::Malformed => "malformed",
            EcsUse::Disabled => "disabled",
        }
    }
}

impl Outcome {
    /// A reply without zone data (an error, a zone transfer), for the counters.
    pub fn bare(qtype: u16, rcode: u8) -> Outcome {
        Outcome {
            len: 0,
            rcode: u16::from(rcode),
            truncated: false,
            qtype,
            zone_slot: 0,
            source: None,
            geo: None,
            ecs: EcsUse::Absent,
            cookie: CookieUse::Absent,
            signed: None,
            hash_scope: 0,
        }
    }
}

impl Responder {
    /// The last query's name (lower-cased wire form), type, and where its question ends.
    pub fn question(&self) -> (&[u8], u16, usize) {
        (self.query.qname(), self.query.qtype, self.query.question_end)
    }

    /// Answers `req` from `peer` into `out` (which must hold [`MAX_MESSAGE`] bytes). `None`:
    /// send nothing. A query signed with TSIG gets a signed reply, or NOTAUTH.
    #[inline]
    pub fn respond(
        &mut self,
        snap: &Snapshot,
        req: &[u8],
        out: &mut [u8],
        transport: Transport,
        peer: IpAddr,
    ) -> Option<Outcome> {
        let outcome = self.respond_unsigned(snap, req, out, transport, peer)?;
        match self.query.tsig {
            None => Some(outcome),
            Some(at) => Some(tsig_reply(snap, req, at, &self.query, out, outcome, transport)),
        }
    }

    fn respond_unsigned(
        &mut self,
        snap: &Snapshot,
        req: &[u8],
        out: &mut [u8],
        transport: Transport,
        peer: IpAddr,
    ) -> Option<Outcome> {
        let q = &mut self.query;
        match parse_query(req, q) {
            Ok(()) => {}
            Err(ParseError::Drop) => return None,
            Err(ParseError::FormErr { question }) => {
                return Some(error_reply(req, q, question, RCODE_FORMERR, out, snap.settings.max_udp_payload));
            }
            Err(ParseError::NotImp { question }) => {
                return Some(error_reply(req, q, question, RCODE_NOTIMP, out, snap.settings.max_udp_payload));
            }
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
        let ecs_use = match q.edns.map(|e| e.ecs) {
            None | Some(Ecs::Absent) => EcsUse::Absent,
            Some(_) if !settings.ecs => EcsUse::Disabled,
            Some(Ecs::Malformed) => EcsUse::Malformed,
            Some(Ecs::Subnet(s)) if s.source_prefix == 0 => EcsUse::Withheld,
            Some(Ecs::Subnet(_)) => EcsUse::Global,
        };
        // The client is where the subnet says, when the resolver tells (RFC 7871 §7.1.2).
        let client = ecs.and_then(|e| e.subnet.address()).unwrap_or(peer);
        // DNS Cookies (RFC 7873, RFC 9018): checked against the packet's source; every
        // response to a client cookie carries it back with a fresh server cookie.
        let (cookie_use, cookie) = match (settings.cookies.as_ref(), q.edns.map(|e| e.cookie)) {
            (Some(cs), Some(c)) if c != Cookie::Absent => cookie_check(cs, c, peer),
            _ => (CookieUse::Absent, None),
        };
        let edns = q.edns.map(|e| OptOut {
            nsid: if e.nsid { settings.nsid.as_deref() } else { None },
            ext_rcode: 0,
            dnssec_ok: e.dnssec_ok,
            compact_ok: false,
            ecs,
            cookie,
        });
        // An unknown version's options are not read (RFC 6891 §6.1.3); a malformed ECS or
        // COOKIE is FORMERR (RFC 7871 §7.1.1, RFC 7873 §5.2.2). These replies carry an OPT
        // without options. A server that requires cookies answers a UDP query whose client
        // cookie came without a valid server cookie BADCOOKIE, with one (RFC 7873 §5.2.3).
        let bad_cookie = settings.cookies.as_ref().is_some_and(|c| c.required)
            && transport == Transport::Udp
            && matches!(cookie_use, CookieUse::ClientOnly | CookieUse::Invalid);
        let refused = if q.edns.is_some_and(|e| e.version > 0) {
            Some(RCODE_BADVERS)
        } else if settings.ecs && q.edns.is_some_and(|e| e.ecs == Ecs::Malformed) || cookie_use == CookieUse::Malformed
        {
            Some(RCODE_FORMERR as u16)
        } else if bad_cookie {
            Some(RCODE_BADCOOKIE)
        } else {
            None
        };
        if let Some(rcode) = refused {
            let cookie = if rcode == RCODE_BADCOOKIE { cookie } else { None };
            let dnssec_ok = q.edns.is_some_and(|e| e.dnssec_ok);
            let opt =
                OptOut { nsid: None, ext_rcode: (rcode >> 4) as u8, dnssec_ok, compact_ok: false, ecs: None, cookie };
            let mut outcome = finish(
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
                client,
                None,
            );
            outcome.ecs = ecs_use;
            outcome.cookie = cookie_use;
            return Some(outcome);
        }
        let mut zone_slot = 0;
        let mut decided = None;
        let mut signing: Option<Signing<'_>> = None;
        let dnssec_ok = q.edns.is_some_and(|e| e.dnssec_ok);
        let (frag, rcode): (Option<Located<'_>>, u8) = match q.qtype {
            TYPE_OPT => (None, RCODE_FORMERR),
            TYPE_MAILA | TYPE_MAILB => (None, RCODE_NOTIMP),
            _ => match q.qclass {
                CLASS_IN => match snap.find_zone(q.qname()) {
                    Some(zone) => {
                        zone_slot = zone.slot();
                        if dnssec_ok && let Some(signer) = zone.signer.as_deref() {
                            let compact_ok = q.edns.is_some_and(|e| e.compact_ok);
                            signing = Some(Signing { signer, zone, compact_ok, transport });
                        }
                        // Zone transfers are not offered.
                        if matches!(q.qtype, TYPE_AXFR | TYPE_IXFR) {
                            (None, RCODE_REFUSED)
                        } else {
                            let (f, part) = zone.lookup(q.qname(), q.qtype);
                            let located = if f.hints {
                                // Completed per query from the A and AAAA answers.
                                Located { hinted: Some(zone), ..Located::of(f, part) }
                            } else if f.geo == u32::MAX {
                                Located::of(f, part)
                            } else {
                                let (located, decision) = by_location(snap, zone, part, f, q.qtype, client);
                                decided = decision;
                                located
                            };
                            (Some(located), located.frag.rcode)
                        }
                    }
                    None => (None, RCODE_REFUSED),
                },
                CLASS_CH if matches!(q.qtype, TYPE_TXT | TYPE_ANY) => {
                    match snap.chaos.iter().find(|(n, _)| **n == *q.qname()) {
                        Some((_, f)) => (Some(Located::plain(f, &snap.chaos_arena)), RCODE_NOERROR),
                        None => (None, RCODE_REFUSED),
                    }
                }
                _ => (None, RCODE_REFUSED),
            },
        };
        self.turn = self.turn.wrapping_add(1);
        let aa = frag.is_some_and(|l| l.frag.aa);
        let mut edns = edns;
        if let (Some(o), Some(s)) = (edns.as_mut(), &signing) {
            o.compact_ok = s.compact_ok;
        }
        if let (Some(o), Some(d)) = (edns.as_mut(), decided)
            && let Some(e) = o.ecs.as_mut()
        {
            e.scope = d.scope;
        }
        let mut outcome = finish(
            req,
            q,
            out,
            frag,
            rcode,
            aa,
            edns,
            settings.max_udp_payload,
            limit,
            self.turn,
            &mut self.rng,
            snap,
            client,
            signing.map(|s| (s, &mut self.sign)),
        );
        outcome.zone_slot = zone_slot;
        outcome.geo = outcome.geo.or(decided);
        outcome.ecs = match ecs_use {
            EcsUse::Global if outcome.geo.is_some() || outcome.hash_scope > 0 => EcsUse::Scoped,
            other => other,
        };
        outcome.cookie = cookie_use;
        Some(outcome)
    }
}

/// A DO query to a signed zone.
#[derive(Clone, Copy)]
struct Signing<'a> {
    signer: &'a OnlineSigner,
    /// The zone the question is in.
    zone: &'a Zone,
    /// The query's CO bit: NXDOMAIN stays NXDOMAIN.
    compact_ok: bool,
    transport: Transport,
}

/// A fragment, the arena it points into, and its weighted pick when it has one.
#[derive(Clone, Copy)]
struct Located<'a> {
    frag: &'a Fragment,
    arena: &'a Arena,
    /// The signed twins of the part the fragment is in.
    twins: &'a [Fragment],
    weighted: Option<&'a WeightedAnswer>,
    /// Another name's address answer given as this name's (a geo name's target): written
    /// for the build name's length, so the owners stay pointers to the question.
    flat: bool,
    /// A pool's HTTPS/SVCB record whose hints are the addresses this zone's A and AAAA
    /// answers give the client.
    hinted: Option<&'a Zone>,
}

impl<'a> Located<'a> {
    #[inline]
    fn of(frag: &'a Fragment, part: &'a ZoneSnap) -> Located<'a> {
        Located {
            frag,
            arena: &part.arena,
            twins: &part.signed,
            weighted: part.weighted.get(frag.weighted as usize),
            flat: false,
            hinted: None,
        }
    }

    fn plain(frag: &'a Fragment, arena: &'a Arena) -> Located<'a> {
        Located { frag, arena, twins: &[], weighted: None, flat: false, hinted: None }
    }
}

/// A geo pool's answer for `client`: the fragment pre-encoded for the client's datacenter
/// order, and the decision. `None` when `f` is not a geo pool's.
#[inline]
fn pool_pick<'a>(
    snap: &Snapshot,
    part: &'a ZoneSnap,
    f: &'a Fragment,
    client: IpAddr,
) -> Option<(&'a Fragment, GeoDecision)> {
    let g = *part.geo.get(f.geo as usize)?;
    let GeoKind::Pool { .. } = g.kind else { return None };
    pool_answer(part, g, snap.geo.get(g.map as usize)?.table.locate(client))
}

/// The answer a geo pool `g` of `part` pre-encoded for a client `located` in its map.
#[inline]
fn pool_answer(part: &ZoneSnap, g: GeoAnswer, located: GeoLocated) -> Option<(&Fragment, GeoDecision)> {
    let GeoKind::Pool { first, pattern } = g.kind else { return None };
    let &(answer, datacenter) = part.geo_patterns.get(pattern as usize + located.order as usize)?;
    let f = part.frags.get(first as usize + answer as usize)?;
    Some((f, GeoDecision { scope: located.scope, slot: g.slot, datacenter }))
}

/// Whether `f`, an answer for its own name, gives addresses of type `rtype` at that name:
/// NOERROR, records, no CNAME (the first record's owner is the question, its type `rtype`).
fn gives_addresses(f: &Fragment, arena: &Arena, rtype: u16) -> bool {
    let at = f.start as usize;
    f.rcode == RCODE_NOERROR
        && f.an > 0
        && f.chase == 0
        && arena.bytes.get(at..at + 4).is_some_and(|b| b[0] & 0xc0 == 0xc0 && u16::from_be_bytes([b[2], b[3]]) == rtype)
}

/// The answer of a fragment marked geo for `client`: a geo pool's pre-encoded answer for
/// the client's datacenter order, or a geo name's target addresses (nearest datacenter
/// whose target has some; a target that is a geo pool answers for the same client).
fn by_location<'a>(
    snap: &'a Snapshot,
    zone: &'a Zone,
    part: &'a ZoneSnap,
    f: &'a Fragment,
    qtype: u16,
    client: IpAddr,
) -> (Located<'a>, Option<GeoDecision>) {
    let found = part.geo.get(f.geo as usize).and_then(|&g| Some((g, snap.geo.get(g.map as usize)?)));
    let Some((g, map)) = found else { return (Located::of(f, part), None) };
    let located = map.table.locate(client);
    let first = match g.kind {
        GeoKind::Names { first } => first as usize,
        GeoKind::Pool { .. } => {
            return match pool_answer(part, g, located) {
                Some((f, decision)) => (Located::of(f, part), Some(decision)),
                None => (Located::of(f, part), None),
            };
        }
    };
    let slot = g.slot;
    let rtype = if qtype == TYPE_ANY { TYPE_A } else { qtype };
    let order = map.orders.get(located.order as usize).map_or(&[][..], |o| &o[..]);
    for &dc in order {
        let Some(Some(target)) = part.geo_targets.get(first + dc as usize) else { continue };
        let Some((tf, tpart)) = snap.find_zone(target).and_then(|z| z.chase_lookup(target, rtype)) else {
            continue;
        };
        let (tf, scope) = match pool_pick(snap, tpart, tf, client) {
            Some((tf, inner)) => (tf, located.scope.max(inner.scope)),
            None => (tf, located.scope),
        };
        if gives_addresses(tf, &tpart.arena, rtype) {
            let flat = Located { flat: true, ..Located::of(tf, tpart) };
            return (flat, Some(GeoDecision { scope, slot, datacenter: dc }));
        }
    }
    let newest = zone.newest();
    let nodata = GeoDecision { scope: located.scope, slot, datacenter: NO_DATACENTER };
    (Located::of(&newest.frags[newest.nodata as usize], newest), Some(nodata))
}

/// The OPT record we append.
#[derive(Clone, Copy)]
struct OptOut<'a> {
    nsid: Option<&'a [u8]>,
    ext_rcode: u8,
    /// The query's DO bit, copied into the reply (RFC 3225 §3).
    dnssec_ok: bool,
    /// The CO bit, copied into a signed zone's reply (RFC 9824 §4).
    compact_ok: bool,
    ecs: Option<EcsOut>,
    /// The client cookie and our server cookie.
    cookie: Option<[u8; 24]>,
}

/// What a query's cookie is, and the COOKIE option to answer with (the client cookie and
/// a fresh server cookie).
fn cookie_check(settings: &CookieSettings, cookie: Cookie, peer: IpAddr) -> (CookieUse, Option<[u8; 24]>) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32);
    let (client, used) = match cookie {
        Cookie::Absent => return (CookieUse::Absent, None),
        Cookie::Malformed => return (CookieUse::Malformed, None),
        Cookie::Client(client) => (client, CookieUse::ClientOnly),
        Cookie::Both { client, server, len } => {
            let valid = cookies::verify(settings, &client, &server[..len as usize], peer, now);
            (client, if valid { CookieUse::Valid } else { CookieUse::Invalid })
        }
    };
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&client);
    out[8..].copy_from_slice(&cookies::server_cookie(&settings.secret, &client, peer, now));
    (used, Some(out))
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
        // A resolver that withheld the address gets an answer for everyone (RFC 7871 §7.2.1).
        out[7] = if self.subnet.source_prefix == 0 { 0 } else { self.scope };
        out[8..8 + addr.len()].copy_from_slice(addr);
    }
}

impl OptOut<'_> {
    fn rdlen(&self) -> usize {
        self.nsid.map_or(0, |n| 4 + n.len()) + self.ecs.map_or(0, |e| e.len()) + self.cookie.map_or(0, |c| 4 + c.len())
    }

    fn len(&self) -> usize {
        11 + self.rdlen()
    }

    fn write(&self, out: &mut [u8], payload: u16) {
        out[0] = 0;
        out[1..3].copy_from_slice(&TYPE_OPT.to_be_bytes());
        out[3..5].copy_from_slice(&payload.to_be_bytes());
        let flags = if self.dnssec_ok { 0x80 } else { 0 } | if self.compact_ok { 0x40 } else { 0 };
        out[5..9].copy_from_slice(&[self.ext_rcode, 0, flags, 0]);
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
            at += e.len();
        }
        if let Some(c) = self.cookie {
            out[at..at + 2].copy_from_slice(&OPT_COOKIE.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&(c.len() as u16).to_be_bytes());
            out[at + 4..at + 4 + c.len()].copy_from_slice(&c);
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
    client: IpAddr,
    signing: Option<(Signing<'_>, &mut SignScratch)>,
) -> Outcome {
    let mut rcode = rcode;
    let mut signed = None;
    let mut opt = opt;
    let mut chained: Option<GeoDecision> = None;
    // A hashed pick anywhere in the answer: the prefix its client key was cut to.
    let mut hash_scope = 0u8;
    let qend = q.question_end;
    out[..qend].copy_from_slice(&req[..qend]);
    let opt_len = opt.map_or(0, |o| o.len());
    let room = limit.saturating_sub(qend + opt_len);
    let (mut len, mut an, mut ns, mut ar, mut tc) = (qend, 0u16, 0u16, 0u16, false);
    match frag {
        Some(located) if let Some((sg, scratch)) = signing => {
            let w = write_signed(out, q, qend, room, located, sg, scratch, turn, rng, snap, client);
            (len, an, ns, ar, tc, rcode) = (w.len, w.an, w.ns, w.ar, w.tc, w.rcode.unwrap_or(rcode));
            chained = w.geo;
            signed = w.origin;
            hash_scope = w.hash_scope;
        }
        Some(Located { frag: f, arena, hinted: Some(zone), .. }) => {
            let hinted = write_hinted(&mut out[qend..qend + room], f, arena, zone, snap, q.qname(), client, rng);
            chained = hinted.geo;
            hash_scope = hinted.hash_scope;
            match hinted.len {
                Some(n) => {
                    len += n;
                    an = 1;
                }
                None => tc = true,
            }
        }
        Some(Located { frag: f, arena, weighted: Some(weighted), .. }) => {
            hash_scope = weighted.scope(client);
            match weighted.write(f, arena, &mut out[qend..], room, rng, client) {
                Some((n, count)) => {
                    len += n;
                    an = count;
                }
                None => tc = true,
            }
        }
        Some(Located { frag: f, arena, weighted: None, flat, .. }) => {
            let name_len = if flat { f.build_qname_len as usize } else { q.qname().len() };
            let w = f.write(arena, &mut out[qend..], room, name_len, turn);
            if w.truncated {
                tc = true;
            } else {
                len += w.len;
                an = f.an;
                ns = f.ns;
                ar = w.ar;
                if f.chase != 0
                    && let Some(c) =
                        follow_chain(snap, q.qtype, f, out, qend, len, qend + room, turn, rng, client, false)
                {
                    len = c.len;
                    an += c.an;
                    ns = c.ns;
                    ar = c.ar;
                    rcode = c.rcode;
                    chained = c.geo;
                    hash_scope = c.hash_scope;
                }
            }
        }
        None => {}
    }
    if let Some(e) = opt.as_mut().and_then(|o| o.ecs.as_mut()) {
        e.scope = e.scope.max(chained.map_or(0, |d| d.scope)).max(hash_scope);
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
        source: frag.map(|l| l.frag.source),
        geo: chained,
        ecs: EcsUse::Absent,
        cookie: CookieUse::Absent,
        signed,
        hash_scope,
    }
}

/// What [`write_signed`] wrote.
struct SignedWrite {
    len: usize,
    an: u16,
    ns: u16,
    ar: u16,
    tc: bool,
    /// The RCODE when it is not the fragment's (SERVFAIL, or NOERROR for a compact denial).
    rcode: Option<u8>,
    geo: Option<GeoDecision>,
    origin: Option<Origin>,
    /// A hashed pick's client prefix (0: none).
    hash_scope: u8,
}

/// The answer to a DO query in a signed zone: the fragment's signed twin (with the compact
/// denial a negative answer needs), or the answer signed now when it was drawn or chosen for
/// this query. Never an unsigned answer: past the signing budget, TC over UDP (a resolver
/// retries over TCP), SERVFAIL over TCP.
#[allow(clippy::too_many_arguments)]
fn write_signed(
    out: &mut [u8],
    q: &Query,
    qend: usize,
    room: usize,
    l: Located<'_>,
    sg: Signing<'_>,
    scratch: &mut SignScratch,
    turn: u32,
    rng: &mut Rng,
    snap: &Snapshot,
    client: IpAddr,
) -> SignedWrite {
    let max_end = qend + room;
    let f = l.frag;
    let mut w =
        SignedWrite { len: qend, an: 0, ns: 0, ar: 0, tc: false, rcode: None, geo: None, origin: None, hash_scope: 0 };
    let failed = |w: &mut SignedWrite, why: Unsigned| {
        (w.len, w.an, w.ns, w.ar) = (qend, 0, 0, 0);
        match (why, sg.transport) {
            (Unsigned::OverBudget | Unsigned::NoRoom, Transport::Udp) | (Unsigned::NoRoom, Transport::Tcp) => {
                if why == Unsigned::OverBudget {
                    OVER_BUDGET_ANSWERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                w.tc = true
            }
            _ => w.rcode = Some(RCODE_SERVFAIL),
        }
    };
    // A SERVFAIL carries nothing to sign.
    if f.rcode == RCODE_SERVFAIL {
        let written = f.write(l.arena, &mut out[qend..], room, q.qname().len(), turn);
        w.tc = written.truncated;
        return w;
    }
    // Drawn or chosen for this query, or a wildcard's expansion: the records as written,
    // then their signatures, made for them.
    let answer = if let Some(zone) = l.hinted {
        let hinted = write_hinted(&mut out[qend..max_end], f, l.arena, zone, snap, q.qname(), client, rng);
        (w.geo, w.hash_scope) = (hinted.geo, hinted.hash_scope);
        hinted.len.map(|n| (qend + n, 1))
    } else if let Some(weighted) = l.weighted {
        w.hash_scope = weighted.scope(client);
        weighted.write(f, l.arena, &mut out[qend..], room, rng, client).map(|(n, count)| (qend + n, count))
    } else if l.flat || (f.signed == u32::MAX && f.an > 0 && f.ns == 0) {
        let name_len = if l.flat { f.build_qname_len as usize } else { q.qname().len() };
        let written = f.write(l.arena, &mut out[qend..], room.min(f.required_len as usize), name_len, turn);
        (!written.truncated).then_some((qend + written.len, f.an))
    } else if let Some(twin) = l.twins.get(f.signed as usize) {
        let written = twin.write(l.arena, &mut out[qend..], room, q.qname().len(), turn);
        if written.truncated {
            w.tc = true;
            return w;
        }
        (w.len, w.an, w.ns, w.ar) = (qend + written.len, twin.an, twin.ns, written.ar);
        w.origin = Some(Origin::Presigned);
        if f.denial != Denial::None {
            // The twin holds the SOA and its RRSIG; the NSEC is this name's.
            if w.ar > 0 {
                (w.len, w.ar) = (qend + twin.required_len as usize, 0);
            }
            let nxdomain = f.denial == Denial::NxDomain;
            match append_denial(out, w.len, max_end, sg.zone, q.qname(), q.qtype, nxdomain, sg.signer, scratch) {
                Ok((len, added, origin)) => {
                    (w.len, w.ns) = (len, w.ns + added);
                    w.origin = Some(origin);
                    // Compact denial answers NOERROR unless the client asked for the RCODE.
                    w.rcode = Some(if nxdomain && sg.compact_ok { RCODE_NXDOMAIN } else { RCODE_NOERROR });
                }
                Err(why) => failed(&mut w, why),
            }
        } else if twin.chase != 0
            && let Some(c) = follow_chain(snap, q.qtype, twin, out, qend, w.len, max_end, turn, rng, client, true)
        {
            (w.len, w.an, w.ns, w.ar, w.rcode, w.geo) = (c.len, w.an + c.an, c.ns, c.ar, Some(c.rcode), c.geo);
            w.hash_scope = c.hash_scope;
        }
        return w;
    } else {
        failed(&mut w, Unsigned::Malformed);
        return w;
    };
    match answer {
        None => w.tc = true,
        Some((end, count)) => match sign_answer(out, qend, end, count, max_end, sg.signer, scratch) {
            Ok((len, added, origin)) => {
                (w.len, w.an) = (len, count + added);
                w.origin = Some(origin);
            }
            Err(why) => failed(&mut w, why),
        },
    }
    w
}

/// What [`write_hinted`] wrote, and what the hints depended on.
struct Hinted {
    /// The record's length; `None` when it did not fit.
    len: Option<usize>,
    /// The location decision of a geo pool's addresses.
    geo: Option<GeoDecision>,
    /// The client prefix a hashed pick keyed on.
    hash_scope: u8,
}

/// A pool's HTTPS/SVCB record `f` (pre-encoded without hints) completed for `client`: its
/// `ipv4hint`/`ipv6hint` are the addresses the A and AAAA answers at `qname` give the same
/// client now (health, selection, location, hashing), written into `out`.
#[allow(clippy::too_many_arguments)]
fn write_hinted(
    out: &mut [u8],
    f: &Fragment,
    arena: &Arena,
    zone: &Zone,
    snap: &Snapshot,
    qname: &[u8],
    client: IpAddr,
    rng: &mut Rng,
) -> Hinted {
    let mut v4 = hints::Addresses::default();
    let mut v6 = hints::Addresses::default();
    let (geo4, scope4) = hint_addresses(snap, zone, qname, TYPE_A, client, rng, &mut v4);
    let (geo6, scope6) = hint_addresses(snap, zone, qname, TYPE_AAAA, client, rng, &mut v6);
    let geo = match (geo4, geo6) {
        (Some(a), Some(b)) => Some(GeoDecision { scope: a.scope.max(b.scope), ..a }),
        (a, b) => a.or(b),
    };
    let start = f.start as usize;
    let template = &arena.bytes[start..start + f.required_len as usize];
    Hinted { len: hints::write(out, template, &v4, &v6), geo, hash_scope: scope4.max(scope6) }
}

/// Collects into `sink` the addresses the `rtype` answer at `qname` gives `client`: a geo
/// pool's for the client's datacenter, a weighted or hashed pool's pick, else the answer's
/// records. Returns the location decision and the hashed prefix it depended on.
#[allow(clippy::too_many_arguments)]
fn hint_addresses(
    snap: &Snapshot,
    zone: &Zone,
    qname: &[u8],
    rtype: u16,
    client: IpAddr,
    rng: &mut Rng,
    sink: &mut hints::Addresses,
) -> (Option<GeoDecision>, u8) {
    let (f, part) = zone.lookup(qname, rtype);
    let (f, decision) = if f.geo == u32::MAX {
        (f, None)
    } else {
        match pool_pick(snap, part, f, client) {
            Some((f, d)) => (f, Some(d)),
            None => return (None, 0),
        }
    };
    // NODATA, SERVFAIL or a fallback CNAME: no addresses of this family.
    if f.rcode != RCODE_NOERROR || f.an == 0 || f.chase != 0 {
        return (decision, 0);
    }
    let start = f.start as usize;
    let bytes = &part.arena.bytes[start..start + f.len as usize];
    match part.weighted.get(f.weighted as usize) {
        Some(w) => {
            let mut picks = [0u16; 64];
            let n = w.pick(rng, client, &mut picks);
            for &g in &picks[..n] {
                let (off, glen, count) = w.groups[g as usize];
                let (off, glen) = (off as usize, glen as usize);
                if let Some(group) = bytes.get(off..off + glen) {
                    sink.collect(group, count, rtype);
                }
            }
            (decision, w.scope(client))
        }
        None => {
            sink.collect(bytes, f.an, rtype);
            (decision, 0)
        }
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
    /// A geo pool on the chain answered for the client.
    geo: Option<GeoDecision>,
    /// A hashed pool on the chain: the client prefix it keyed on.
    hash_scope: u8,
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
    client: IpAddr,
    signed: bool,
) -> Option<Followed> {
    let (mut frag, mut frag_at, mut end) = (first, at, end);
    let mut result: Option<Followed> = None;
    let mut an = 0;
    let mut geo: Option<GeoDecision> = None;
    let mut hash_scope = 0u8;
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
        let next = if next.geo == u32::MAX {
            next
        } else {
            // A geo pool answers for the client; a geo name's flattening cannot be chained
            // (the resolver asks it).
            let Some((picked, decision)) = pool_pick(snap, part, next, client) else { break };
            geo = Some(geo.map_or(decision, |g| GeoDecision { scope: g.scope.max(decision.scope), ..decision }));
            picked
        };
        // Completed per query (hints): the chain ends at the CNAME, the resolver asks it.
        if next.hints {
            break;
        }
        // Signed: each link's twin; where there is none (drawn per query, a denial) the chain
        // ends at the CNAME and the resolver asks the rest.
        let next = match (signed, part.signed.get(next.signed as usize)) {
            (false, _) => next,
            (true, Some(twin)) if next.denial == Denial::None => twin,
            (true, _) => break,
        };
        let weighted = part.weighted.get(next.weighted as usize);
        let room = &mut free[..max_end - end];
        let Some(w) = next.write_at(&part.arena, weighted, room, end, name_at, name_len, turn, rng, client) else {
            break;
        };
        hash_scope = hash_scope.max(weighted.map_or(0, |wa| wa.scope(client)));
        an += w.an;
        result = Some(Followed { len: end + w.len, an, ns: w.ns, ar: w.ar, rcode: next.rcode, geo, hash_scope });
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

/// FORMERR or NOTIMP: the header, the question when it parsed, and an OPT (no options)
/// when the query's OPT parsed (RFC 6891 §7).
/// The reply to a TSIG-signed query (RFC 8945): signed with the query's key, or, when the
/// signature does not verify, NOTAUTH with the TSIG error. Off the common path: it
/// allocates.
#[cold]
fn tsig_reply(
    snap: &Snapshot,
    req: &[u8],
    at: usize,
    q: &Query,
    out: &mut [u8],
    mut outcome: Outcome,
    transport: Transport,
) -> Outcome {
    use crate::dns::tsig;
    let Some(record) = tsig::read(req, at) else { return outcome };
    let now = tsig::now();
    let mut msg = out[..outcome.len].to_vec();
    let limit = match transport {
        Transport::Tcp => MAX_MESSAGE,
        Transport::Udp => q.edns.map_or(UDP_PAYLOAD_NO_EDNS, |e| usize::from(e.udp_size).max(UDP_PAYLOAD_NO_EDNS)),
    };
    // Header and question only (ANCOUNT, NSCOUNT, ARCOUNT zero).
    let bare = |msg: &mut Vec<u8>| {
        msg.truncate(q.question_end.min(msg.len()));
        msg[6..12].fill(0);
    };
    match tsig::verify(req, record, &snap.settings.tsig_keys, now) {
        tsig::Verified::Good { key, mac } => {
            if msg.len() + 128 + key.name.wire_len() > limit {
                bare(&mut msg);
                msg[2] |= 0x02;
                outcome.truncated = true;
            }
            tsig::Signer::new(key, mac).sign(&mut msg, now);
        }
        tsig::Verified::Failed { error, key, record } => {
            bare(&mut msg);
            tsig::failure_reply(&mut msg, error, key, &record, now);
            outcome.rcode = u16::from(tsig::RCODE_NOTAUTH);
        }
    }
    let len = msg.len().min(out.len());
    out[..len].copy_from_slice(&msg[..len]);
    outcome.len = len;
    outcome
}

fn error_reply(req: &[u8], q: &Query, question: bool, rcode: u8, out: &mut [u8], payload: u16) -> Outcome {
    let mut len = if question { q.question_end } else { HEADER_LEN };
    out[..len].copy_from_slice(&req[..len]);
    let flags = FLAG_QR | (q.flags & (FLAG_RD | FLAG_CD | 0x7800)) | rcode as u16;
    let opt = q.edns.map(|e| OptOut {
        nsid: None,
        ext_rcode: 0,
        dnssec_ok: e.dnssec_ok,
        compact_ok: false,
        ecs: None,
        cookie: None,
    });
    if let Some(o) = opt {
        o.write(&mut out[len..], payload);
        len += o.len();
    }
    write_header(out, flags, question as u16, 0, 0, opt.is_some() as u16);
    let qtype = if question { q.qtype } else { 0 };
    Outcome { len, ..Outcome::bare(qtype, rcode) }
}
