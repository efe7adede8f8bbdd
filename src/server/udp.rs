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
use crate::server::cookies::CookieUse;
#[cfg(target_os = "linux")]
use crate::server::mmsg;
#[cfg(not(target_os = "linux"))]
use crate::server::query::MAX_MESSAGE;
use crate::server::query::{Responder, Transport};
use crate::server::rrl::{self, RrlTable, Verdict};
use crate::server::stats::{Stats, WorkerStats};
use crate::snapshot::SnapshotHandle;

/// How often an idle worker looks at the stop flag; bounds shutdown time.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Starts one thread per socket. Threads exit soon after `stop` is set. With `tap`, each
/// worker also logs its exchanges to dnstap (as the snapshot's filter says); with the
/// snapshot's `[rrl]` settings, responses are rate limited through `rrl` (shared by all).
pub fn spawn_workers(
    sockets: Vec<UdpSocket>,
    handle: &SnapshotHandle,
    stats: &Stats,
    stop: &Arc<AtomicBool>,
    tap: Option<&Tap>,
    rrl: &Arc<RrlTable>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::with_capacity(sockets.len());
    for (i, socket) in sockets.into_iter().enumerate() {
        socket.set_read_timeout(Some(STOP_POLL))?;
        let handle = handle.clone();
        let stop = Arc::clone(stop);
        let counters = stats.worker();
        let name = format!("gslbd-udp-{i}");
        let recorder = tap.cloned().map(Recorder::new);
        let limiter = Limiter { table: Arc::clone(rrl), limited: 0, logged_at: 0 };
        threads.push(
            std::thread::Builder::new()
                .name(name)
                .spawn(move || serve(socket, handle, counters, stop, recorder, limiter))?,
        );
    }
    Ok(threads)
}

/// A worker's side of rate limiting: the shared table and its own note of what it limited,
/// logged at most every [`RRL_LOG_EVERY`] seconds.
struct Limiter {
    table: Arc<RrlTable>,
    limited: u64,
    logged_at: u32,
}

/// Seconds between a worker's rate-limiting log lines.
const RRL_LOG_EVERY: u32 = 10;

impl Limiter {
    /// Notes a limited response; once in a while says how many there were.
    #[cold]
    fn note(&mut self, now: u32, log_only: bool) {
        self.limited += 1;
        if now >= self.logged_at + RRL_LOG_EVERY || self.logged_at == 0 {
            let what = if log_only { "would have been limited (log_only)" } else { "limited" };
            tracing::info!(responses = self.limited, "response rate limiting: responses {what} since the last line");
            self.limited = 0;
            self.logged_at = now.max(1);
        }
    }
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
    mut limiter: Limiter,
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
        // Rate limiting: the table's clock, read once per batch.
        let rrl_now = snap.settings.rrl.as_ref().map(|_| limiter.table.now());
        for i in 0..n {
            let peer = batch.peer(i);
            let (req, out) = batch.pair(i);
            if let Some(mut outcome) = responder.respond(snap, req, out, Transport::Udp, peer.ip()) {
                // A valid server cookie proves the source address: never limited.
                if let (Some(settings), Some(now), false) =
                    (snap.settings.rrl.as_ref(), rrl_now, outcome.cookie == CookieUse::Valid)
                {
                    let (qname, qtype, question_end) = responder.question();
                    let (class, verdict) =
                        limiter.table.check(settings, peer.ip(), qname, qtype, outcome.rcode, outcome.zone_slot, now);
                    if verdict != Verdict::Send {
                        counters.rrl(class, verdict);
                        limiter.note(now, settings.log_only);
                        match verdict {
                            Verdict::Drop => continue,
                            Verdict::Slip => {
                                outcome.len = rrl::slip(out, question_end);
                                outcome.truncated = true;
                            }
                            Verdict::Send | Verdict::Logged => {}
                        }
                    }
                }
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
    // Rate limiting is Linux-only (with the batched path); elsewhere nothing is limited.
    _limiter: Limiter,
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
