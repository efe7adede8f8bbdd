//! Open connections of one protocol (DNS over TCP, the admin API), server-wide: a cap on all
//! of them and a cap per client address. When a cap is reached the connection that has been
//! idle longest (waiting for its client; under that client's cap, one of its own) is closed
//! to make room, so holding connections open cannot lock other clients out (RFC 7766
//! §6.2.3); only when none is idle is the new one refused.
//!
//! Used once per accepted connection and per message, never per UDP query; the lock is held
//! for a map update (and, at a cap, one scan of the open connections), never across an await.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// One protocol's open connections.
#[derive(Debug, Default)]
pub struct ConnTable {
    inner: Mutex<Inner>,
    /// Connections admitted.
    pub admitted: AtomicU64,
    /// Connections closed to make room for new ones.
    pub evicted: AtomicU64,
    /// Connections refused: every open one was busy.
    pub refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    open: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Entry {
    client: IpAddr,
    /// Since when the connection waits for its client; `None` while a request is handled.
    idle_since: Option<Instant>,
    close: CancellationToken,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server-wide cap, every connection busy.
    Total,
    /// The client's cap, every one of its connections busy.
    Client,
}

/// An admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted {
    table: Arc<ConnTable>,
    id: u64,
    /// Cancelled when the connection is closed to make room for another.
    pub close: CancellationToken,
}

impl ConnTable {
    /// Admits a connection from `client` under `cap` in all and `per_client` for one address,
    /// closing the longest-idle connection to make room when needed.
    pub fn admit(self: &Arc<Self>, client: IpAddr, cap: usize, per_client: usize) -> Result<Admitted, Refused> {
        let mut inner = self.inner.lock().expect("connection table lock");
        if inner.per_client.get(&client).copied().unwrap_or(0) >= per_client {
            if !inner.evict_oldest_idle(Some(client)) {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refused::Client);
            }
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        if inner.open.len() >= cap {
            if !inner.evict_oldest_idle(None) {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refused::Total);
            }
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let close = CancellationToken::new();
        inner.open.insert(id, Entry { client, idle_since: Some(Instant::now()), close: close.clone() });
        *inner.per_client.entry(client).or_default() += 1;
        self.admitted.fetch_add(1, Ordering::Relaxed);
        Ok(Admitted { table: Arc::clone(self), id, close })
    }

    /// Counter rows for the metrics: admitted, refused and evicted connections.
    pub fn counts(&self) -> [(&'static str, u64); 3] {
        [
            ("accepted", self.admitted.load(Ordering::Relaxed)),
            ("refused", self.refused.load(Ordering::Relaxed)),
            ("evicted", self.evicted.load(Ordering::Relaxed)),
        ]
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.lock().expect("connection table lock").open.len()
    }
}

impl Inner {
    /// Closes the connection idle longest (of `client`, when given); false when none is idle.
    fn evict_oldest_idle(&mut self, client: Option<IpAddr>) -> bool {
        let oldest = self
            .open
            .iter()
            .filter(|(_, e)| client.is_none_or(|c| e.client == c))
            .filter_map(|(id, e)| e.idle_since.map(|t| (t, *id)))
            .min();
        let Some((_, id)) = oldest else { return false };
        self.remove(id);
        true
    }

    fn remove(&mut self, id: u64) {
        if let Some(e) = self.open.remove(&id) {
            e.close.cancel();
            if let Some(n) = self.per_client.get_mut(&e.client) {
                *n -= 1;
                if *n == 0 {
                    self.per_client.remove(&e.client);
                }
            }
        }
    }
}

impl Admitted {
    /// The connection waits for its client from now on (it may be closed to make room).
    pub fn idle(&self) {
        self.set_idle(Some(Instant::now()));
    }

    /// A request is being handled (it is not closed to make room).
    pub fn busy(&self) {
        self.set_idle(None);
    }

    fn set_idle(&self, since: Option<Instant>) {
        if let Some(e) = self.table.inner.lock().expect("connection table lock").open.get_mut(&self.id) {
            e.idle_since = since;
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.table.inner.lock().expect("connection table lock").remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    /// At the client cap the client's oldest idle connection makes room; busy ones never do.
    #[test]
    fn caps_evict_the_longest_idle_first() {
        let t = Arc::new(ConnTable::default());
        let a1 = t.admit(ip(1), 10, 2).unwrap();
        let a2 = t.admit(ip(1), 10, 2).unwrap();
        a1.busy();
        // Client cap: a2 (idle) goes, a1 (busy) stays.
        let a3 = t.admit(ip(1), 10, 2).unwrap();
        assert!(a2.close.is_cancelled() && !a1.close.is_cancelled());
        a3.busy();
        assert_eq!(t.admit(ip(1), 10, 2).unwrap_err(), Refused::Client);
        // Total cap: another client's idle connection goes first.
        let b = t.admit(ip(2), 3, 2).unwrap();
        let c = t.admit(ip(3), 3, 2).unwrap();
        assert!(b.close.is_cancelled() && !c.close.is_cancelled());
        drop(a2);
        assert_eq!(t.open(), 3);
        assert_eq!((t.evicted.load(Ordering::Relaxed), t.refused.load(Ordering::Relaxed)), (2, 1));
    }
}
