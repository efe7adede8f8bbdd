//! The writer thread: connects to the receiver, opens the Frame Streams (READY, ACCEPT,
//! START), writes the queued batches in order, and on any failure drops the batch in hand,
//! waits (100 ms, doubling up to 5 s) and connects again. Blocking I/O on its own thread:
//! nothing here runs on the workers or the async runtime.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use super::{Batch, Sink, TapStats, fstrm};

/// First wait after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Connect, handshake and write timeouts: a receiver that stops reading is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the writer takes what the workers queued. The workers never wake it (a wake
/// per batch costs the worker a context switch on a busy core); it comes round on its own.
const TICK: Duration = Duration::from_millis(10);
/// Most bytes gathered into one write.
const WRITE_CHUNK: usize = 1 << 20;
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

/// Every [`TICK`], writes what was queued, gathered into writes of up to [`WRITE_CHUNK`];
/// returns `Ok` once stopped and drained (for at most [`DRAIN`]) or every sender is gone,
/// and the error of a failed write.
fn serve(stream: &mut dyn Stream, rx: &Receiver<Batch>, stats: &TapStats, stop: &AtomicBool) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(WRITE_CHUNK);
    let mut drain_until: Option<Instant> = None;
    loop {
        if drain_until.is_none() && stop.load(Ordering::Relaxed) {
            drain_until = Some(Instant::now() + DRAIN);
        }
        out.clear();
        let (mut messages, mut senders_gone) = (0, false);
        while out.len() < WRITE_CHUNK {
            match rx.try_recv() {
                Ok(batch) => {
                    out.extend_from_slice(&batch.frames);
                    messages += batch.messages;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    senders_gone = true;
                    break;
                }
            }
        }
        if messages > 0 {
            stats.queued.fetch_sub(messages, Ordering::Relaxed);
            if let Err(e) = write_unless_late(stream, &out, stop, &mut drain_until) {
                stats.dropped.fetch_add(messages as u64, Ordering::Relaxed);
                return Err(e);
            }
            stats.written.fetch_add(messages as u64, Ordering::Relaxed);
        }
        let full = out.len() >= WRITE_CHUNK;
        match drain_until {
            _ if senders_gone => return Ok(()),
            Some(end) if !full || Instant::now() >= end => return Ok(()),
            _ if !full => std::thread::sleep(TICK),
            _ => {}
        }
    }
}

/// `write_all`, except that once stopping it gives up at the drain deadline: a receiver
/// that reads slowly still takes every write (each call makes progress, so no timeout
/// fires), and without a deadline a big backlog would hold shutdown for minutes.
fn write_unless_late(
    stream: &mut dyn Stream,
    mut buf: &[u8],
    stop: &AtomicBool,
    drain_until: &mut Option<Instant>,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        if stop.load(Ordering::Relaxed) && Instant::now() >= *drain_until.get_or_insert_with(|| Instant::now() + DRAIN)
        {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "stopping: the receiver reads too slowly"));
        }
        match stream.write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        std::thread::sleep(TICK.min(end.saturating_duration_since(Instant::now())));
    }
}
