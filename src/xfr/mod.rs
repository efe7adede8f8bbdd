//! Zone transfers out (RFC 5936 AXFR, RFC 1995 IXFR) over a DNS TCP connection, and NOTIFY
//! to secondaries (RFC 1996, [`notify`]).
//!
//! A transfer is asked on a connection [`crate::server::tcp`] serves; it is handed here when
//! the question is AXFR or IXFR. Who may transfer a zone is its `[zone.transfer]`: a request
//! signed with one of its TSIG keys, or from one of its networks (the key is accepted in
//! place of the address check, as PowerDNS does). A bad signature is NOTAUTH with the TSIG
//! error; anyone else is REFUSED. The records come from the zone's published
//! [`Transfer`], packed into messages on a blocking thread while
//! this task writes them, every message signed when the request was.
//!
//! IXFR: a secondary at our serial gets the one-SOA reply (it is current); one at a serial the
//! zone's history still holds gets the changes since (kept by `builder::transfers`); any
//! other gets the whole zone in AXFR form, which RFC 1995 §4 allows in place of the changes.

pub mod messages;
pub mod notify;

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::dns::name::Name;
use crate::dns::net::within;
use crate::dns::records::RData;
use crate::dns::tsig::{self, Signer, Verified};
use crate::dns::types::*;
use crate::dns::wire::{HEADER_LEN, Query, be16, parse_query, skip_name};
use crate::snapshot::{Snapshot, Transfer, TransferDelta};
use messages::Packer;

/// What a transfer request came to, for the log and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// The reply's RCODE.
    pub rcode: u8,
    /// Records sent.
    pub records: u64,
    /// Messages sent.
    pub messages: u32,
}

/// The question's type when `req` is a zone transfer request (a query with one question of
/// type AXFR or IXFR).
pub fn transfer_type(req: &[u8]) -> Option<u16> {
    if req.len() < HEADER_LEN || req[2] & 0xf8 != 0 || u16::from_be_bytes([req[4], req[5]]) != 1 {
        return None;
    }
    let mut pos = HEADER_LEN;
    loop {
        let l = *req.get(pos)? as usize;
        if l == 0 || l > 63 {
            break;
        }
        pos += 1 + l;
    }
    if req.get(pos) != Some(&0) {
        return None;
    }
    let qtype = u16::from_be_bytes([*req.get(pos + 1)?, *req.get(pos + 2)?]);
    matches!(qtype, TYPE_AXFR | TYPE_IXFR).then_some(qtype)
}

/// The reply's header and question for `req` (as parsed into `q`), with `rcode`.
fn head(req: &[u8], q: &Query, rcode: u8) -> Vec<u8> {
    let mut m = Vec::with_capacity(512);
    m.extend_from_slice(&req[..2]);
    // QR and AA; RD as asked; the opcode is QUERY (anything else did not get here).
    m.push(0x84 | (req[2] & 0x01));
    m.push(rcode);
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&req[HEADER_LEN..q.question_end]);
    m
}

/// The serial in an IXFR request's authority SOA (the secondary's version).
fn ixfr_serial(req: &[u8], question_end: usize) -> Option<u32> {
    if u16::from_be_bytes([req[8], req[9]]) == 0 {
        return None;
    }
    let p = skip_name(req, question_end)?;
    if be16(req, p)? != TYPE_SOA {
        return None;
    }
    let rd = p + 10;
    let after_names = skip_name(req, skip_name(req, rd)?)?;
    Some(u32::from_be_bytes(req.get(after_names..after_names + 4)?.try_into().ok()?))
}

/// The changes from serial `from` to `to`, when the history holds every one of them.
fn since(history: &[std::sync::Arc<TransferDelta>], from: u32, to: u32) -> Option<&[std::sync::Arc<TransferDelta>]> {
    let start = history.iter().position(|d| d.from == from)?;
    let chain = &history[start..];
    let linked = chain.windows(2).all(|w| w[0].to == w[1].from);
    (linked && chain.last()?.to == to).then_some(chain)
}

/// An incremental transfer (RFC 1995 §4): our SOA, then per change the SOA before, the RRs
/// taken away, the SOA after and the RRs put in; our SOA again. Returns the messages and the
/// records they hold.
fn incremental(
    head: &[u8],
    apex: &Name,
    t: &Transfer,
    deltas: &[std::sync::Arc<TransferDelta>],
) -> (Vec<Vec<u8>>, u64) {
    let soa_at = |serial: u32| {
        let mut soa = t.soa.clone();
        soa.serial = serial;
        RData::Soa(Box::new(soa))
    };
    let mut packer = Packer::new(head);
    let mut messages = Vec::new();
    let mut records = 0u64;
    let mut add = |packer: &mut Packer, name: &Name, rtype: u16, ttl: u32, rd: &RData| {
        records += 1;
        if let Some(m) = packer.add(name, rtype, ttl, rd) {
            messages.push(m);
        }
    };
    let current = soa_at(t.soa.serial);
    add(&mut packer, apex, TYPE_SOA, t.soa_ttl, &current);
    for d in deltas {
        add(&mut packer, apex, TYPE_SOA, t.soa_ttl, &soa_at(d.from));
        for (name, rtype, set) in &d.removed {
            for rd in &set.rdata {
                add(&mut packer, name, *rtype, set.ttl, rd);
            }
        }
        add(&mut packer, apex, TYPE_SOA, t.soa_ttl, &soa_at(d.to));
        for (name, rtype, set) in &d.added {
            for rd in &set.rdata {
                add(&mut packer, name, *rtype, set.ttl, rd);
            }
        }
    }
    add(&mut packer, apex, TYPE_SOA, t.soa_ttl, &current);
    messages.push(packer.finish());
    (messages, records)
}

/// Serial `a` is at or after `b` (RFC 1982 arithmetic).
fn not_older(a: u32, b: u32) -> bool {
    a == b || (a.wrapping_sub(b) as i32) > 0
}

/// Writes one length-prefixed message within `limit`.
async fn write<S: AsyncWrite + Unpin>(stream: &mut S, msg: &[u8], limit: Duration) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    framed.extend_from_slice(msg);
    tokio::time::timeout(limit, async {
        stream.write_all(&framed).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the secondary is not reading"))?
}

/// Answers the transfer request `req` from `peer` on `stream`, from `snap`. Each message
/// must be taken by the peer within `limit`.
pub async fn serve<S: AsyncWrite + Unpin>(
    stream: &mut S,
    snap: &Snapshot,
    req: &[u8],
    peer: IpAddr,
    limit: Duration,
) -> std::io::Result<Served> {
    let mut q = Query::default();
    let refuse = |rcode: u8| Served { rcode, records: 0, messages: 1 };
    if parse_query(req, &mut q).is_err() {
        let mut m = req[..HEADER_LEN.min(req.len())].to_vec();
        m.resize(HEADER_LEN, 0);
        m[2] = 0x80 | (m[2] & 0x79);
        m[3] = RCODE_FORMERR;
        m[4..12].fill(0);
        write(stream, &m, limit).await?;
        return Ok(refuse(RCODE_FORMERR));
    }
    let now = tsig::now();
    let mut signer = match q.tsig.map(|at| tsig::read(req, at)) {
        None => None,
        Some(None) => {
            write(stream, &head(req, &q, RCODE_FORMERR), limit).await?;
            return Ok(refuse(RCODE_FORMERR));
        }
        Some(Some(record)) => match tsig::verify(req, record, &snap.settings.tsig_keys, now) {
            Verified::Good { key, mac } => Some(Signer::new(key, mac)),
            Verified::Failed { error, key, record } => {
                tracing::warn!(%peer, key = %record.key, error, "zone transfer refused: TSIG did not verify");
                let mut m = head(req, &q, 0);
                tsig::failure_reply(&mut m, error, key, &record, now);
                write(stream, &m, limit).await?;
                return Ok(refuse(tsig::RCODE_NOTAUTH));
            }
        },
    };
    let key_name: Option<Name> = signer.as_ref().map(|s| s.key_name().clone());
    let zone = snap.find_zone(q.qname()).filter(|z| z.newest().apex_len == q.qname().len());
    let transfer = zone.and_then(|z| z.transfer.as_ref());
    let allowed = transfer.is_some_and(|t| {
        key_name.as_ref().is_some_and(|k| t.keys.contains(k))
            || t.allow.iter().any(|&(net, len)| within(peer, net, len))
    });
    let reply_alone = |rcode: u8| head(req, &q, rcode);
    let (Some(transfer), true, CLASS_IN) = (transfer, allowed, q.qclass) else {
        let rcode = if zone.is_none() { tsig::RCODE_NOTAUTH } else { RCODE_REFUSED };
        let name = Name::from_wire_unchecked(q.qname());
        tracing::warn!(%peer, zone = %name, key = ?key_name.map(|k| k.to_string()), "zone transfer refused");
        let mut m = reply_alone(rcode);
        if let Some(s) = signer.as_mut() {
            s.sign(&mut m, now);
        }
        write(stream, &m, limit).await?;
        return Ok(refuse(rcode));
    };
    let apex = Name::from_wire_unchecked(q.qname());
    let serial = transfer.soa.serial;
    let soa = RData::Soa(Box::new(transfer.soa.clone()));
    let theirs = (q.qtype == TYPE_IXFR).then(|| ixfr_serial(req, q.question_end)).flatten();
    if let Some(theirs) = theirs {
        // Current: our SOA alone (RFC 1995 §4). Within the history: the changes since.
        let messages = if not_older(theirs, serial) {
            let mut packer = Packer::new(&reply_alone(RCODE_NOERROR));
            packer.add(&apex, TYPE_SOA, transfer.soa_ttl, &soa);
            Some((vec![packer.finish()], 1))
        } else {
            since(&transfer.history, theirs, serial)
                .map(|deltas| incremental(&reply_alone(RCODE_NOERROR), &apex, transfer, deltas))
        };
        if let Some((messages, records)) = messages {
            let count = messages.len() as u32;
            for mut m in messages {
                if let Some(s) = signer.as_mut() {
                    s.sign(&mut m, tsig::now());
                }
                write(stream, &m, limit).await?;
            }
            tracing::info!(%peer, zone = %apex, from = theirs, serial, records, messages = count, kind = "IXFR", "zone transferred");
            return Ok(Served { rcode: RCODE_NOERROR, records, messages: count });
        }
    }
    // The records are packed on a blocking thread (a large zone takes a while); a few
    // messages wait at most. Making the content reads the zone's records whole (as a fold
    // does), so at most two are made at once; other transfers wait their turn.
    static MAKING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _turn = MAKING.acquire().await.map_err(std::io::Error::other)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, String>>(4);
    let content = std::sync::Arc::clone(&transfer.content);
    let first = reply_alone(RCODE_NOERROR);
    let soa_ttl = transfer.soa_ttl;
    let apex_for_packer = apex.clone();
    let packing = tokio::task::spawn_blocking(move || {
        let mut packer = Packer::new(&first);
        let mut closed = false;
        let send = |msg: Vec<u8>, closed: &mut bool| {
            if !*closed && tx.blocking_send(Ok(msg)).is_err() {
                *closed = true;
            }
        };
        if let Some(m) = packer.add(&apex_for_packer, TYPE_SOA, soa_ttl, &soa) {
            send(m, &mut closed);
        }
        let mut records = 1u64;
        let outcome = content.rrsets(&mut |name, rtype, set| {
            if closed {
                return;
            }
            for rd in &set.rdata {
                records += 1;
                if let Some(m) = packer.add(name, rtype, set.ttl, rd) {
                    send(m, &mut closed);
                }
            }
        });
        match outcome {
            Ok(()) => {
                if let Some(m) = packer.add(&apex_for_packer, TYPE_SOA, soa_ttl, &soa) {
                    send(m, &mut closed);
                }
                send(packer.finish(), &mut closed);
                records + 1
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                0
            }
        }
    });
    let mut messages = 0u32;
    while let Some(next) = rx.recv().await {
        let mut m = match next {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%peer, zone = %apex, error = %e, "zone transfer failed");
                if messages > 0 {
                    // The secondary throws away a transfer that stops short.
                    return Err(std::io::Error::other(e));
                }
                let mut m = reply_alone(RCODE_SERVFAIL);
                if let Some(s) = signer.as_mut() {
                    s.sign(&mut m, now);
                }
                write(stream, &m, limit).await?;
                return Ok(refuse(RCODE_SERVFAIL));
            }
        };
        if let Some(s) = signer.as_mut() {
            s.sign(&mut m, tsig::now());
        }
        write(stream, &m, limit).await?;
        messages += 1;
    }
    let records = packing.await.map_err(std::io::Error::other)?;
    tracing::info!(%peer, zone = %apex, serial, records, messages, kind = if q.qtype == TYPE_AXFR { "AXFR" } else { "IXFR" }, "zone transferred");
    Ok(Served { rcode: RCODE_NOERROR, records, messages })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_in_sequence_space() {
        assert!(not_older(5, 5) && not_older(6, 5) && !not_older(4, 5));
        assert!(not_older(1, u32::MAX) && !not_older(u32::MAX, 1));
    }

    #[test]
    fn transfer_questions_are_recognised() {
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x00\x00\xfc\x00\x01");
        assert_eq!(transfer_type(&m), Some(TYPE_AXFR));
        let n = m.len();
        m[n - 3] = 251;
        assert_eq!(transfer_type(&m), Some(TYPE_IXFR));
        m[n - 3] = 1;
        assert_eq!(transfer_type(&m), None);
    }
}
