//! The writer thread: connects to the receiver, opens the Frame Streams (READY, ACCEPT,
//! START), writes the queued batches in order, and on any failure drops the batch in hand,
//! waits (100 ms, doubling up to 5 s) and connects again. Blocking I/O on its own thread:
//! nothing here runs on the workers or the async runtime.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{Batch, Sink, TapStats, fstrm};

/// First wait after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Connect, handshake and write timeouts: a receiver that stops reading is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How often an idle writer looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// At shutdown, how long queued batches are still written before STOP.
const DRAIN: Duration = Duration::from_millis(500);

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn connect(sink: &Sink) -> std::io::Result<Box<dyn Stream>> {
    match sink {
        Sink::Unix(path) => {
            let s = UnixStream::connect(path)?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            Ok(Box::new(s))
        }
        Sink::Tcp(addr) => {
            let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr} has no address"));
            for a in addr.to_socket_addrs()? {
                match TcpStream::connect_timeout(&a, IO_TIMEOUT) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        s.set_read_timeout(Some(IO_TIMEOUT))?;
                        s.set_write_timeout(Some(IO_TIMEOUT))?;
                        return Ok(Box::new(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

/// Runs until `stop` is set (then drains, closes and returns) or every [`super::Tap`] is gone.
pub(super) fn run(sink: Sink, rx: Receiver<Batch>, stats: Arc<TapStats>, stop: Arc<AtomicBool>) {
    let mut backoff = FIRST_BACKOFF;
    let mut failing = false;
    while !stop.load(Ordering::Relaxed) {
        let mut stream = match connect(&sink).and_then(|mut s| fstrm::open(&mut s).map(|()| s)) {
            Ok(s) => s,
            Err(e) => {
                if !failing {
                    tracing::warn!(sink = %sink, error = %e, "dnstap receiver unavailable; retrying with back-off, messages meanwhile queue up to the limit and then are dropped");
                    failing = true;
                }
                sleep_unless_stopped(backoff, &stop);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tracing::info!(sink = %sink, "dnstap connected");
        failing = false;
        backoff = FIRST_BACKOFF;
        stats.connected.store(true, Ordering::Relaxed);
        stats.connects.fetch_add(1, Ordering::Relaxed);
        let ended = serve(&mut stream, &rx, &stats, &stop);
        stats.connected.store(false, Ordering::Relaxed);
        match ended {
            Ok(()) => {
                if let Err(e) = fstrm::close(&mut stream) {
                    tracing::debug!(error = %e, "dnstap close not acknowledged");
                }
                return;
            }
            Err(e) => tracing::warn!(sink = %sink, error = %e, "dnstap connection lost; reconnecting"),
        }
    }
}

/// Writes batches until stopped (`Ok`, after draining for up to [`DRAIN`]) or a write fails.
fn serve(stream: &mut dyn Stream, rx: &Receiver<Batch>, stats: &TapStats, stop: &AtomicBool) -> std::io::Result<()> {
    let mut draining: Option<Instant> = None;
    loop {
        if draining.is_none() && stop.load(Ordering::Relaxed) {
            draining = Some(Instant::now() + DRAIN);
        }
        if draining.is_some_and(|end| Instant::now() >= end) {
            return Ok(());
        }
        let batch = match rx.recv_timeout(POLL) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) if draining.is_some() => return Ok(()),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        stats.queued.fetch_sub(batch.messages, Ordering::Relaxed);
        if let Err(e) = stream.write_all(&batch.frames) {
            stats.dropped.fetch_add(batch.messages as u64, Ordering::Relaxed);
            return Err(e);
        }
        stats.written.fetch_add(batch.messages as u64, Ordering::Relaxed);
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        std::thread::sleep(POLL.min(end.saturating_duration_since(Instant::now())));
    }
}
