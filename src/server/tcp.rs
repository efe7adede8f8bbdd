//! TCP DNS (RFC 7766) and DNS over TLS (RFC 7858, the same over a TLS session):
//! length-prefixed messages, several per connection answered in order, an idle timeout, and
//! server-wide caps on open connections per protocol, in all and per client address, where
//! the longest-idle connection makes room for a new one ([`super::conns`]). Each connection
//! is its own tokio task, so a slow or stuck client (or TLS handshake) holds only its own
//! buffers and never a UDP worker.

use std::sync::Arc;

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dnstap::{Exchange, Protocol, Recorder, Stamp, Tap};
use crate::server::conns::Admitted;
use crate::server::query::{MAX_MESSAGE, Responder, Transport};
use crate::server::stats::{Stats, WorkerStats};
use crate::snapshot::SnapshotHandle;

/// The TLS configuration of a DNS-over-TLS listener, swapped when the certificate is
/// reloaded (new connections take the new one).
pub type TlsConfig = Arc<arc_swap::ArcSwap<tokio_rustls::rustls::ServerConfig>>;

/// Accepts connections until `shutdown`; connection tasks are tracked so shutdown can wait
/// for answers in flight. With `tls`, connections speak DNS over TLS. With `tap`, exchanges
/// are logged to dnstap.
pub async fn serve(
    listener: TcpListener,
    handle: SnapshotHandle,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    tap: Option<Tap>,
    tls: Option<TlsConfig>,
) {
    // One counter set for all connections of this listener (atomic adds keep it exact).
    let counters = stats.worker();
    let (table, what) = match tls {
        Some(_) => (&stats.tls_table, "tls"),
        None => (&stats.tcp_table, "tcp"),
    };
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, what, "accept failed");
                    // Out of descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // A TLS handshake may take as long as an idle connection may wait (meanwhile the
        // connection counts as idle: it may make room).
        let (cap, per_client, handshake_limit) = {
            let snap = handle.load();
            (snap.settings.max_tcp_connections, snap.settings.max_tcp_per_client, snap.settings.tcp_idle_timeout)
        };
        let admitted = match table.admit(peer.ip(), cap, per_client) {
            Ok(a) => a,
            Err(why) => {
                tracing::debug!(%peer, ?why, what, "connection cap reached with every connection busy; closing the new one");
                drop(stream);
                continue;
            }
        };
        let Ok(local) = stream.local_addr() else { continue };
        let handle = handle.clone();
        let shutdown = shutdown.clone();
        let counters = Arc::clone(&counters);
        let recorder = tap.clone().map(Recorder::new);
        let tls = tls.as_ref().map(|t| TlsAcceptor::from(t.load_full()));
        tracker.spawn(async move {
            let _ = stream.set_nodelay(true);
            let link = Link { peer, local, handle, counters, shutdown, recorder, admitted };
            let ended = match tls {
                None => connection(stream, Protocol::Tcp, link).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        biased;
                        _ = link.admitted.close.cancelled() => return,
                        _ = link.shutdown.cancelled() => return,
                        r = timeout(handshake_limit, acceptor.accept(stream)) => r,
                    };
                    match handshake {
                        Ok(Ok(session)) => connection(session, Protocol::Dot, link).await,
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")),
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, what, "connection ended");
            }
        });
    }
}

/// What a connection task holds besides its stream.
struct Link {
    peer: SocketAddr,
    local: SocketAddr,
    handle: SnapshotHandle,
    counters: Arc<WorkerStats>,
    shutdown: CancellationToken,
    recorder: Option<Recorder>,
    admitted: Admitted,
}

/// Answers the messages of one connection (TCP or a TLS session) in order until the client
/// closes it, it idles out, it is closed to make room, or the server stops.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    protocol: Protocol,
    link: Link,
) -> std::io::Result<()> {
    let Link { peer, local, handle, counters, shutdown, mut recorder, admitted } = link;
    let mut responder = Responder::default();
    let mut req = vec![0u8; MAX_MESSAGE];
    let mut out = vec![0u8; MAX_MESSAGE + 1024 + 2];
    loop {
        let idle = handle.load().settings.tcp_idle_timeout;
        // Waiting for the client, even within a message, the connection is idle (since it was
        // admitted or answered last): shutdown, the idle timeout or a new client needing its
        // place end it.
        // Biased: a closed connection answers nothing more, even with a query waiting.
        let len = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            _ = admitted.close.cancelled() => return Ok(()),
            r = timeout(idle, stream.read_u16()) => match r {
                Err(_) => return Ok(()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(r) => r? as usize,
            },
        };
        // A started message is finished even during shutdown (in-flight answers complete).
        tokio::select! {
            biased;
            _ = admitted.close.cancelled() => return Ok(()),
            r = timeout(idle, stream.read_exact(&mut req[..len])) => {
                r.map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "message body timed out"))??;
            }
        }
        admitted.busy();
        let query_time = Stamp::now();
        let snap = handle.load();
        // A zone transfer is many messages: its own exchange, on the same connection.
        if let Some(qtype) = crate::xfr::transfer_type(&req[..len]) {
            let served = crate::xfr::serve(&mut stream, &snap, &req[..len], peer.ip(), idle).await;
            admitted.idle();
            let served = served?;
            counters.record(&crate::server::query::Outcome::bare(qtype, served.rcode));
            continue;
        }
        let Some(outcome) = responder.respond(&snap, &req[..len], &mut out[2..], Transport::Tcp, peer.ip()) else {
            admitted.idle();
            continue;
        };
        counters.record(&outcome);
        out[..2].copy_from_slice(&(outcome.len as u16).to_be_bytes());
        // Answered: from here the connection waits for its client. Marked before the write,
        // so a client that reads the answer and opens another connection always finds this
        // one idle longer (marked after, a worker descheduled in between would make the
        // newer connection look idle longer and be closed instead).
        admitted.idle();
        // Flushed: a TLS session holds written bytes until told to send them. A connection
        // closed to make room stops writing at once.
        tokio::select! {
            biased;
            _ = admitted.close.cancelled() => return Ok(()),
            r = timeout(idle, async {
                stream.write_all(&out[..2 + outcome.len]).await?;
                stream.flush().await
            }) => {
                r.map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client is not reading"))??;
            }
        }
        if let (Some(recorder), Some(filter)) = (recorder.as_mut(), snap.settings.dnstap) {
            let exchange = Exchange {
                client: peer,
                server: local,
                protocol,
                query_time,
                response_time: Stamp::now(),
                query: &req[..len],
                response: &out[2..2 + outcome.len],
            };
            recorder.record(&filter, outcome.rcode, &exchange);
            recorder.flush();
        }
    }
}
