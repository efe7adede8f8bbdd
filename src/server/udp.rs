//! UDP DNS: one SO_REUSEPORT socket per worker, each served by its own OS thread that
//! receives, answers and sends synchronously, in batches of up to 32 datagrams per system
//! call on Linux. No task per packet, no lock, no allocation
//! per query: the buffers are allocated once per thread and the snapshot is read through a
//! per-thread arc-swap cache.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::dnstap::{Exchange, Protocol, Recorder, Stamp, Tap};
#[cfg(target_os = "linux")]
use crate::server::mmsg;
#[cfg(not(target_os = "linux"))]
use crate::server::query::MAX_MESSAGE;
use crate::server::query::{Responder, Transport};
use crate::server::stats::{Stats, WorkerStats};
use crate::snapshot::SnapshotHandle;

/// How often an idle worker looks at the stop flag; bounds shutdown time.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Starts one thread per socket. Threads exit soon after `stop` is set. With `tap`, each
/// worker also logs its exchanges to dnstap (as the snapshot's filter says).
pub fn spawn_workers(
    sockets: Vec<UdpSocket>,
    handle: &SnapshotHandle,
    stats: &Stats,
    stop: &Arc<AtomicBool>,
    tap: Option<&Tap>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::with_capacity(sockets.len());
    for (i, socket) in sockets.into_iter().enumerate() {
        socket.set_read_timeout(Some(STOP_POLL))?;
        let handle = handle.clone();
        let stop = Arc::clone(stop);
        let counters = stats.worker();
        let name = format!("gslbd-udp-{i}");
        let recorder = tap.cloned().map(Recorder::new);
        threads.push(
            std::thread::Builder::new().name(name).spawn(move || serve(socket, handle, counters, stop, recorder))?,
        );
    }
    Ok(threads)
}

/// Logs a receive error unless it is the idle timeout that lets the loop see `stop`.
fn receive_failed(e: &std::io::Error) {
    if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
        tracing::debug!(error = %e, "udp receive failed");
    }
}

/// The receive loop, batched with `recvmmsg`/`sendmmsg`.
#[cfg(target_os = "linux")]
fn serve(
    socket: UdpSocket,
    handle: SnapshotHandle,
    counters: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    mut recorder: Option<Recorder>,
) {
    let local = socket.local_addr().unwrap_or_else(|_| ([0u8; 4], 0).into());
    let mut cache = handle.cache();
    let mut responder = Responder::default();
    let mut batch = mmsg::Batch::new();
    while !stop.load(Ordering::Relaxed) {
        let n = match batch.receive(&socket) {
            Ok(n) => n,
            Err(e) => {
                receive_failed(&e);
                // Idle or failed: let go of a replaced snapshot so the reclaim thread can free it.
                cache.load();
                if let Some(recorder) = recorder.as_mut() {
                    recorder.flush();
                }
                continue;
            }
        };
        let snap = cache.load();
        // dnstap: one clock read for the batch's arrival, one per response.
        let mut tap = recorder.as_mut().zip(snap.settings.dnstap);
        let query_time = if tap.is_some() { Stamp::now() } else { Stamp::default() };
        for i in 0..n {
            let peer = batch.peer(i);
            let (req, out) = batch.pair(i);
            if let Some(outcome) = responder.respond(snap, req, out, Transport::Udp, peer.ip()) {
                counters.record(&outcome);
                if let Some((recorder, filter)) = tap.as_mut() {
                    let exchange = Exchange {
                        client: peer,
                        server: local,
                        protocol: Protocol::Udp,
                        query_time,
                        response_time: Stamp::now(),
                        query: req,
                        response: &out[..outcome.len],
                    };
                    recorder.record(filter, outcome.rcode, &exchange);
                }
                batch.queue(i, outcome.len);
            }
        }
        let sent = batch.send(&socket);
        if sent.failed > 0 {
            counters.send_failed(sent.failed as u64);
        }
        // After the send: logging never delays an answer.
        if let Some(recorder) = recorder.as_mut() {
            recorder.flush_if_due(query_time);
        }
    }
}

/// The receive loop, one datagram per system call.
#[cfg(not(target_os = "linux"))]
fn serve(
    socket: UdpSocket,
    handle: SnapshotHandle,
    counters: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    mut recorder: Option<Recorder>,
) {
    let local = socket.local_addr().unwrap_or_else(|_| ([0u8; 4], 0).into());
    let mut cache = handle.cache();
    let mut responder = Responder::default();
    let mut req = vec![0u8; MAX_MESSAGE];
    let mut out = vec![0u8; MAX_MESSAGE + 1024];
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match socket.recv_from(&mut req) {
            Ok(v) => v,
            Err(e) => {
                receive_failed(&e);
                // Idle or failed: let go of a replaced snapshot so the reclaim thread can free it.
                cache.load();
                continue;
            }
        };
        let snap = cache.load();
        let query_time = Stamp::now();
        if let Some(outcome) = responder.respond(snap, &req[..n], &mut out, Transport::Udp, peer.ip()) {
            counters.record(&outcome);
            if let Err(e) = socket.send_to(&out[..outcome.len], peer) {
                counters.send_failed(1);
                tracing::debug!(error = %e, %peer, "udp send failed");
            }
            if let (Some(recorder), Some(filter)) = (recorder.as_mut(), snap.settings.dnstap) {
                let exchange = Exchange {
                    client: peer,
                    server: local,
                    protocol: Protocol::Udp,
                    query_time,
                    response_time: Stamp::now(),
                    query: &req[..n],
                    response: &out[..outcome.len],
                };
                recorder.record(&filter, outcome.rcode, &exchange);
                recorder.flush();
            }
        }
    }
}
