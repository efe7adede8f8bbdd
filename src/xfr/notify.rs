//! NOTIFY (RFC 1996): on every new serial of a zone with `also_notify`, each secondary listed
//! is told over UDP, signed with the zone's first transfer key when it has one. A secondary
//! that does not answer is asked again after 1, 2, 4, 8 and 16 seconds, then left to its
//! refresh timer; a newer serial replaces the notification in progress.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::dns::name::Name;
use crate::dns::records::RData;
use crate::dns::tsig::{self, TsigKey};
use crate::dns::types::*;
use crate::snapshot::SnapshotHandle;

/// Opcode NOTIFY.
const OPCODE_NOTIFY: u8 = 4;
/// Tries per secondary and serial.
const TRIES: u32 = 6;
/// How long one try waits for the acknowledgement.
const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Sends NOTIFY for every new serial of the zones with `also_notify` (as each published
/// snapshot has them) until `shutdown`.
pub async fn run(handle: SnapshotHandle, shutdown: CancellationToken) {
    let mut published = handle.published();
    // The serial each zone was last notified with, and the notification in progress.
    let mut notified: HashMap<Name, (u32, CancellationToken)> = HashMap::new();
    loop {
        let snap = handle.load();
        for zone in snap.zones.values() {
            let Some(t) = zone.transfer.as_ref().filter(|t| !t.also_notify.is_empty()) else { continue };
            let apex = zone.base.apex.clone();
            let serial = t.soa.serial;
            match notified.get(&apex) {
                Some((last, _)) if *last == serial => continue,
                // The first serial seen at start-up is notified too: a secondary may have
                // missed what changed while gslbd was down.
                Some((_, running)) => running.cancel(),
                None => {}
            }
            let cancel = shutdown.child_token();
            let soa = Arc::new((t.soa.clone(), t.soa_ttl));
            let key = Arc::new(t.notify_key.clone());
            for &to in t.also_notify.iter() {
                let (apex, soa, key, cancel) = (apex.clone(), Arc::clone(&soa), Arc::clone(&key), cancel.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        () = notify_one(&apex, &soa, to, key.as_ref().as_ref()) => {}
                    }
                });
            }
            notified.insert(apex, (serial, cancel));
        }
        drop(snap);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = published.changed() => if r.is_err() { return },
        }
    }
}

/// The NOTIFY message for `apex` with its SOA in the answer section.
fn message(id: u16, apex: &Name, soa: &(crate::dns::records::Soa, u32)) -> Vec<u8> {
    let mut m = Vec::with_capacity(256);
    m.extend_from_slice(&id.to_be_bytes());
    m.push(OPCODE_NOTIFY << 3 | 0x04);
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
    m.extend_from_slice(apex.as_wire());
    m.extend_from_slice(&TYPE_SOA.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    let (soa, ttl) = soa;
    let mut rdata = Vec::new();
    RData::Soa(Box::new(soa.clone())).write_uncompressed(&mut rdata);
    m.extend_from_slice(&[0xc0, 12]);
    m.extend_from_slice(&TYPE_SOA.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    m.extend_from_slice(&ttl.to_be_bytes());
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(&rdata);
    m
}

/// Tells `to` of `apex`'s serial, with retries.
async fn notify_one(apex: &Name, soa: &(crate::dns::records::Soa, u32), to: SocketAddr, key: Option<&TsigKey>) {
    let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("valid");
    let socket = match UdpSocket::bind(bind).await {
        Ok(s) => match s.connect(to).await {
            Ok(()) => s,
            Err(e) => {
                tracing::warn!(zone = %apex, secondary = %to, error = %e, "NOTIFY not sent");
                return;
            }
        },
        Err(e) => {
            tracing::warn!(zone = %apex, secondary = %to, error = %e, "NOTIFY not sent");
            return;
        }
    };
    let serial = soa.0.serial;
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=TRIES {
        let id: u16 = rand::random();
        let mut m = message(id, apex, soa);
        if let Some(k) = key {
            tsig::sign_request(&mut m, k, tsig::now());
        }
        if let Err(e) = socket.send(&m).await {
            tracing::debug!(zone = %apex, secondary = %to, error = %e, attempt, "NOTIFY not sent");
        } else if let Some(rcode) = answer(&socket, id).await {
            match rcode {
                RCODE_NOERROR => tracing::debug!(zone = %apex, secondary = %to, serial, "NOTIFY acknowledged"),
                _ => tracing::warn!(zone = %apex, secondary = %to, serial, rcode, "NOTIFY refused by the secondary"),
            }
            return;
        }
        if attempt < TRIES {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    tracing::warn!(zone = %apex, secondary = %to, serial, tries = TRIES, "secondary did not acknowledge NOTIFY; it will refresh on its SOA timers");
}

/// The RCODE of the reply to the NOTIFY with `id`, if one comes within [`ANSWER_WAIT`].
async fn answer(socket: &UdpSocket, id: u16) -> Option<u8> {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
    loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await.ok()?.ok()?;
        // A reply to this NOTIFY: same ID, QR set, opcode NOTIFY.
        if n >= 12
            && u16::from_be_bytes([buf[0], buf[1]]) == id
            && buf[2] & 0x80 != 0
            && (buf[2] >> 3) & 0xf == OPCODE_NOTIFY
        {
            return Some(buf[3] & 0x0f);
        }
    }
}
