//! TCP DNS (RFC 7766): length-prefixed messages, several per connection answered in order,
//! an idle timeout, and server-wide caps on open connections, in all and per client address,
//! where the longest-idle connection makes room for a new one ([`super::conns`]). Each
//! connection is its own tokio task, so a slow or stuck client holds only its own buffers
//! and never a UDP worker.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dnstap::{Exchange, Protocol, Recorder, Stamp, Tap};
use crate::server::conns::Admitted;
use crate::server::query::{MAX_MESSAGE, Responder, Transport};
use crate::server::stats::{Stats, WorkerStats};
use crate::snapshot::SnapshotHandle;

/// Accepts connections until `shutdown`; connection tasks are tracked so shutdown can wait
/// for answers in flight. With `tap`, exchanges are logged to dnstap.
pub async fn serve(
    listener: TcpListener,
    handle: SnapshotHandle,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    tap: Option<Tap>,
) {
    // One counter set for all connections of this listener (atomic adds keep it exact).
    let counters = stats.worker();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed");
                    // Out of descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (cap, per_client) = {
            let snap = handle.load();
            (snap.settings.max_tcp_connections, snap.settings.max_tcp_per_client)
        };
        let admitted = match stats.tcp_table.admit(peer.ip(), cap, per_client) {
            Ok(a) => a,
            Err(why) => {
                tracing::debug!(%peer, ?why, "tcp connection cap reached with every connection busy; closing the new one");
                drop(stream);
                continue;
            }
        };
        stats.tcp_connections.fetch_add(1, Ordering::Relaxed);
        let handle = handle.clone();
        let shutdown = shutdown.clone();
        let counters = Arc::clone(&counters);
        let recorder = tap.clone().map(Recorder::new);
        tracker.spawn(async move {
            if let Err(e) = connection(stream, handle, counters, shutdown, recorder, admitted).await {
                tracing::debug!(%peer, error = %e, "tcp connection ended");
            }
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    handle: SnapshotHandle,
    counters: Arc<WorkerStats>,
    shutdown: CancellationToken,
    mut recorder: Option<Recorder>,
    admitted: Admitted,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let local = stream.local_addr()?;
    let mut responder = Responder::default();
    let mut req = vec![0u8; MAX_MESSAGE];
    let mut out = vec![0u8; MAX_MESSAGE + 1024 + 2];
    loop {
        let idle = handle.load().settings.tcp_idle_timeout;
        // Waiting for the client, even within a message, the connection is idle: shutdown,
        // the idle timeout or a new client needing its place end it.
        admitted.idle();
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
        let Some(outcome) = responder.respond(&snap, &req[..len], &mut out[2..], Transport::Tcp, peer.ip()) else {
            continue;
        };
        counters.record(&outcome);
        out[..2].copy_from_slice(&(outcome.len as u16).to_be_bytes());
        timeout(idle, stream.write_all(&out[..2 + outcome.len]))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client is not reading"))??;
        if let (Some(recorder), Some(filter)) = (recorder.as_mut(), snap.settings.dnstap) {
            let exchange = Exchange {
                client: peer,
                server: local,
                protocol: Protocol::Tcp,
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
