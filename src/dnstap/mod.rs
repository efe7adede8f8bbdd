//! dnstap query logging: AUTH_QUERY and AUTH_RESPONSE messages over Frame Streams to a Unix
//! socket or a TCP receiver (a dnstap collector, `fstrm_capture`, CoreDNS's or Vector's
//! dnstap source).
//!
//! The workers never wait for it. Each UDP worker (and each TCP connection) encodes the
//! messages of one batch into its own buffer ([`Recorder`]) and hands the whole buffer to
//! the writer thread through a bounded queue ([`Tap`]); when the queue already holds its
//! limit of messages the buffer is dropped and counted instead. The writer thread
//! (`writer`) owns the connection: handshake, writes, reconnects with back-off, and the
//! STOP/FINISH close at shutdown.

pub mod encode;
pub mod fstrm;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::time::Instant;

pub use encode::{Exchange, Protocol, Stamp};

use crate::snapshot::TapFilter;

/// Where the stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// A Unix stream socket.
    Unix(PathBuf),
    /// `HOST:PORT` over TCP.
    Tcp(String),
}

impl std::fmt::Display for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Unix(p) => write!(f, "unix:{}", p.display()),
            Sink::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Counters shared by the workers, the writer and the metrics.
#[derive(Debug, Default)]
pub struct TapStats {
    /// Messages written to the receiver.
    pub written: AtomicU64,
    /// Messages dropped: the queue was full, or the connection broke while writing them.
    pub dropped: AtomicU64,
    /// Messages waiting in the queue.
    pub queued: AtomicUsize,
    /// Whether the writer is connected (handshake done).
    pub connected: AtomicBool,
    /// Connections that completed the handshake.
    pub connects: AtomicU64,
}

/// A batch of encoded frames and how many messages it holds.
struct Batch {
    frames: Vec<u8>,
    messages: usize,
}

/// The workers' handle on the queue to the writer thread.
#[derive(Clone)]
pub struct Tap {
    queue: Sender<Batch>,
    stats: Arc<TapStats>,
    /// Most messages the queue may hold.
    limit: usize,
    /// `identity` and `version`, encoded once.
    header: Arc<[u8]>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap").field("limit", &self.limit).finish_non_exhaustive()
    }
}

/// What [`start`] needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The receiver.
    pub sink: Sink,
    /// `identity` field.
    pub identity: String,
    /// `version` field.
    pub version: String,
    /// Most messages waiting for the receiver.
    pub queue: usize,
}

/// The writer thread; [`Writer::stop`] closes the stream (STOP/FINISH) and joins it.
pub struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Writes what is queued (for up to half a second), closes the stream (STOP, FINISH) and
    /// joins, or gives up at `deadline` whatever the receiver does: a receiver that reads
    /// slowly or never answers STOP does not hold the process.
    pub fn stop(mut self, deadline: Instant) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && crate::stopping::join_until(t, deadline).is_err()
        {
            tracing::warn!("the dnstap receiver did not take the last messages in time; stopping without them");
        }
    }
}

/// Starts the writer thread; the returned [`Tap`] is cloned into every worker.
pub fn start(options: Options, stats: Arc<TapStats>) -> std::io::Result<(Tap, Writer)> {
    // Unbounded as a channel: the message count in `TapStats::queued` is the bound.
    let (queue, rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let tap = Tap {
        queue,
        stats: Arc::clone(&stats),
        limit: options.queue,
        header: encode::header(&options.identity, &options.version).into(),
    };
    let thread = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("gslbd-dnstap".into())
            .spawn(move || writer::run(options.sink, rx, stats, stop))?
    };
    Ok((tap, Writer { stop, thread: Some(thread) }))
}

impl Tap {
    /// Queues a batch unless the queue is at its limit (then it is dropped and counted).
    fn send(&self, frames: Vec<u8>, messages: usize) {
        let stats = &self.stats;
        if stats.queued.load(Ordering::Relaxed) + messages > self.limit {
            stats.dropped.fetch_add(messages as u64, Ordering::Relaxed);
            return;
        }
        stats.queued.fetch_add(messages, Ordering::Relaxed);
        if let Err(e) = self.queue.send(Batch { frames, messages }) {
            // The writer is gone (shutting down).
            stats.queued.fetch_sub(e.0.messages, Ordering::Relaxed);
            stats.dropped.fetch_add(e.0.messages as u64, Ordering::Relaxed);
        }
    }
}

/// A buffer is handed over once it holds this many bytes ...
const FLUSH_BYTES: usize = 32 * 1024;
/// ... or its first message is this old (checked after each batch; an idle worker flushes
/// when its receive times out).
const FLUSH_AGE_NS: u64 = 5_000_000;

/// A worker's (or TCP connection's) buffer of encoded messages.
#[derive(Debug)]
pub struct Recorder {
    tap: Tap,
    frames: Vec<u8>,
    scratch: Vec<u8>,
    messages: usize,
    /// When the oldest message in `frames` was recorded (ns since the epoch).
    oldest: u64,
}

impl Recorder {
    /// A buffer feeding `tap`.
    pub fn new(tap: Tap) -> Recorder {
        Recorder { tap, frames: Vec::new(), scratch: Vec::with_capacity(1024), messages: 0, oldest: 0 }
    }

    /// Encodes the messages `filter` asks for about one exchange whose response has `rcode`.
    pub fn record(&mut self, filter: &TapFilter, rcode: u16, ex: &Exchange<'_>) {
        if !filter.wants(rcode) {
            return;
        }
        if self.messages == 0 {
            self.oldest = ex.query_time.nanos();
        }
        if filter.queries {
            encode::frame(&mut self.frames, &mut self.scratch, &self.tap.header, encode::Kind::AuthQuery, ex);
            self.messages += 1;
        }
        encode::frame(&mut self.frames, &mut self.scratch, &self.tap.header, encode::Kind::AuthResponse, ex);
        self.messages += 1;
    }

    /// Flushes if the buffer is big enough or its oldest message older than 5 ms at `now`:
    /// a busy worker hands over one buffer per few milliseconds, not one per batch.
    pub fn flush_if_due(&mut self, now: Stamp) {
        if self.frames.len() >= FLUSH_BYTES || now.nanos().saturating_sub(self.oldest) >= FLUSH_AGE_NS {
            self.flush();
        }
    }

    /// Hands what was recorded since the last flush to the writer.
    pub fn flush(&mut self) {
        if self.messages == 0 {
            return;
        }
        // The next batch is likely the same size: start it with that capacity.
        let next = Vec::with_capacity(self.frames.len());
        let frames = std::mem::replace(&mut self.frames, next);
        self.tap.send(frames, std::mem::take(&mut self.messages));
    }
}
