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

#[cfg(target_os = "linux")]
use crate::server::mmsg;
#[cfg(not(target_os = "linux"))]
use crate::server::query::MAX_MESSAGE;
use crate::server::query::{Responder, Transport};
use crate::server::stats::{Stats, WorkerStats};
use crate::snapshot::SnapshotHandle;

/// How often an idle worker looks at the stop flag; bounds shutdown time.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Starts one thread per socket. Threads exit soon after `stop` is set.
pub fn spawn_workers(
    sockets: Vec<UdpSocket>,
    handle: &SnapshotHandle,
    stats: &Stats,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::with_capacity(sockets.len());
    for (i, socket) in sockets.into_iter().enumerate() {
        socket.set_read_timeout(Some(STOP_POLL))?;
        let handle = handle.clone();
        let stop = Arc::clone(stop);
        let counters = stats.worker();
        let name = format!("gslbd-udp-{i}");
        threads.push(std::thread::Builder::new().name(name).spawn(move || serve(socket, handle, counters, stop))?);
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
fn serve(socket: UdpSocket, handle: SnapshotHandle, counters: Arc<WorkerStats>, stop: Arc<AtomicBool>) {
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
                continue;
            }
        };
        let snap = cache.load();
        for i in 0..n {
            let peer = batch.peer(i);
            let (req, out) = batch.pair(i);
            if let Some(outcome) = responder.respond(snap, req, out, Transport::Udp, peer) {
                counters.record(&outcome);
                batch.queue(i, outcome.len);
            }
        }
        let sent = batch.send(&socket);
        if sent.failed > 0 {
            counters.send_failed(sent.failed as u64);
        }
    }
}

/// The receive loop, one datagram per system call.
#[cfg(not(target_os = "linux"))]
fn serve(socket: UdpSocket, handle: SnapshotHandle, counters: Arc<WorkerStats>, stop: Arc<AtomicBool>) {
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
        if let Some(outcome) = responder.respond(snap, &req[..n], &mut out, Transport::Udp, peer.ip()) {
            counters.record(&outcome);
            if let Err(e) = socket.send_to(&out[..outcome.len], peer) {
                counters.send_failed(1);
                tracing::debug!(error = %e, %peer, "udp send failed");
            }
        }
    }
}
