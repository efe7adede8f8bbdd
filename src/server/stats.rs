//! Query counters kept per worker (one writer each, no shared cache line, no lock) and summed
//! when `/metrics` is scraped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::dns::records::Source;
use crate::dns::types::*;
use crate::server::cookies::CookieUse;
use crate::server::query::Outcome;
use crate::server::rrl::{Class, Verdict};

/// Query types counted by name; everything else is `other`.
pub const QTYPES: [u16; 15] = [
    TYPE_A, TYPE_AAAA, TYPE_CNAME, TYPE_NS, TYPE_SOA, TYPE_MX, TYPE_TXT, TYPE_SRV, TYPE_PTR, TYPE_ANY, TYPE_DS, 65,
    257, TYPE_AXFR, TYPE_IXFR,
];
const QTYPE_SLOTS: usize = QTYPES.len() + 1;
/// Response codes counted by name (BADVERS as 16); everything else is `other`.
pub const RCODES: [u16; 8] = [0, 1, 2, 3, 4, 5, 9, 16];
const RCODE_SLOTS: usize = RCODES.len() + 1;
pub use crate::snapshot::ZONE_SLOTS;
const SOURCES: usize = 5;
use crate::server::query::EcsUse;
use crate::snapshot::geo::{GEO_SLOTS, NO_DATACENTER};
/// Datacenters counted by name per geo pool; later ones share the last slot, and the slot
/// after it counts fallbacks (no datacenter).
pub const DATACENTER_SLOTS: usize = 32;
const GEO_COLUMNS: usize = DATACENTER_SLOTS + 1;

fn qtype_slot(qtype: u16) -> usize {
    QTYPES.iter().position(|&t| t == qtype).unwrap_or(QTYPES.len())
}

fn rcode_slot(rcode: u16) -> usize {
    RCODES.iter().position(|&r| r == rcode).unwrap_or(RCODES.len())
}

/// The counters one worker writes. Aligned so two workers never share a cache line.
#[repr(align(128))]
pub struct WorkerStats {
    queries: Box<[AtomicU64]>,
    answers: [AtomicU64; SOURCES],
    /// Geo answers by (pool or name slot, datacenter slot).
    geo: Box<[AtomicU64]>,
    /// Queries by what became of their Client Subnet option.
    ecs: [AtomicU64; EcsUse::ALL.len()],
    truncated: AtomicU64,
    send_failed: AtomicU64,
    /// Rate-limited responses by class and what was done (dropped, slipped, logged).
    rrl: [[AtomicU64; 3]; 3],
    /// Queries by what their COOKIE option turned out to be.
    cookies: [AtomicU64; CookieUse::ALL.len()],
}

impl WorkerStats {
    fn new() -> WorkerStats {
        WorkerStats {
            queries: (0..ZONE_SLOTS * QTYPE_SLOTS * RCODE_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            answers: Default::default(),
            geo: (0..GEO_SLOTS * GEO_COLUMNS).map(|_| AtomicU64::new(0)).collect(),
            ecs: Default::default(),
            truncated: AtomicU64::new(0),
            send_failed: AtomicU64::new(0),
            rrl: Default::default(),
            cookies: Default::default(),
        }
    }

    /// Counts one rate-limited response.
    pub fn rrl(&self, class: Class, verdict: Verdict) {
        let action = match verdict {
            Verdict::Drop => 0,
            Verdict::Slip => 1,
            Verdict::Logged => 2,
            Verdict::Send => return,
        };
        bump(&self.rrl[class as usize][action]);
    }

    /// Counts responses the kernel refused to send.
    pub fn send_failed(&self, n: u64) {
        self.send_failed.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one response (a relaxed add on a line no other worker writes; TCP tasks share
    /// one set, which the atomic add keeps exact).
    #[inline]
    pub fn record(&self, o: &Outcome) {
        let zone = (o.zone_slot as usize).min(ZONE_SLOTS - 1);
        let i = (zone * QTYPE_SLOTS + qtype_slot(o.qtype)) * RCODE_SLOTS + rcode_slot(o.rcode);
        bump(&self.queries[i]);
        if let Some(source) = o.source {
            bump(&self.answers[source as usize]);
        }
        if o.truncated {
            bump(&self.truncated);
        }
        if let Some(g) = o.geo {
            let dc = if g.datacenter == NO_DATACENTER {
                DATACENTER_SLOTS
            } else {
                (g.datacenter as usize).min(DATACENTER_SLOTS - 1)
            };
            bump(&self.geo[(g.slot as usize).min(GEO_SLOTS - 1) * GEO_COLUMNS + dc]);
        }
        if o.ecs != EcsUse::Absent {
            bump(&self.ecs[o.ecs as usize]);
        }
        if o.cookie != CookieUse::Absent {
            bump(&self.cookies[o.cookie as usize]);
        }
    }
}

#[inline]
fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// All workers' counters, the zone names behind the slots, and process-wide counters.
#[derive(Default)]
pub struct Stats {
    workers: Mutex<Vec<Arc<WorkerStats>>>,
    /// Open DNS-over-TCP connections of every listen address (the caps are server-wide);
    /// it counts the connections refused and those closed to make room.
    pub tcp_table: Arc<crate::server::conns::ConnTable>,
    /// Open DNS-over-TLS connections (their own caps, as TCP's).
    pub tls_table: Arc<crate::server::conns::ConnTable>,
}

/// One row of summed query counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRow {
    /// Zone label (`none` for slot 0).
    pub zone: String,
    /// Query type label.
    pub qtype: String,
    /// Response code label.
    pub rcode: String,
    /// Count.
    pub count: u64,
}

impl Stats {
    /// Counters for a new worker.
    pub fn worker(&self) -> Arc<WorkerStats> {
        let w = Arc::new(WorkerStats::new());
        self.workers.lock().expect("stats lock").push(Arc::clone(&w));
        w
    }

    /// Summed query counts, non-zero rows only; `names` labels the zone slots (slot i+1 is
    /// `names[i]`, as the snapshot lists them).
    pub fn query_rows(&self, names: &[String]) -> Vec<QueryRow> {
        let workers = self.workers.lock().expect("stats lock").clone();
        let mut rows = Vec::new();
        for zone in 0..ZONE_SLOTS {
            for q in 0..QTYPE_SLOTS {
                for r in 0..RCODE_SLOTS {
                    let i = (zone * QTYPE_SLOTS + q) * RCODE_SLOTS + r;
                    let count: u64 = workers.iter().map(|w| w.queries[i].load(Ordering::Relaxed)).sum();
                    if count == 0 {
                        continue;
                    }
                    let zone_label = match zone {
                        0 => "none".to_string(),
                        z => names.get(z - 1).cloned().unwrap_or_else(|| "other".into()),
                    };
                    let qtype = QTYPES.get(q).map_or("other".into(), |t| type_name(*t).into_owned());
                    let rcode = RCODES.get(r).map_or("other", |&c| rcode_name(c)).to_string();
                    rows.push(QueryRow { zone: zone_label, qtype, rcode, count });
                }
            }
        }
        rows
    }

    /// Answers by data source: (source, count).
    pub fn answers_by_source(&self) -> Vec<(&'static str, u64)> {
        let workers = self.workers.lock().expect("stats lock").clone();
        [Source::Static, Source::Controller, Source::Webhook, Source::ExternalDns, Source::Pool]
            .into_iter()
            .map(|s| (s.as_str(), workers.iter().map(|w| w.answers[s as usize].load(Ordering::Relaxed)).sum()))
            .collect()
    }

    /// Geo answers, non-zero rows only: (pool or name, datacenter, count), labelled by
    /// `labels` (`none` for a fallback).
    pub fn geo_rows(&self, labels: &crate::snapshot::GeoLabels) -> Vec<(String, String, u64)> {
        let workers = self.workers.lock().expect("stats lock").clone();
        let mut rows = Vec::new();
        for slot in 0..GEO_SLOTS {
            for dc in 0..GEO_COLUMNS {
                let i = slot * GEO_COLUMNS + dc;
                let count: u64 = workers.iter().map(|w| w.geo[i].load(Ordering::Relaxed)).sum();
                if count == 0 {
                    continue;
                }
                let owner = labels.owners.get(slot).cloned().unwrap_or_else(|| "other".into());
                let datacenter = match dc {
                    DATACENTER_SLOTS => "none".to_string(),
                    d => labels.datacenters.get(d).cloned().unwrap_or_else(|| "other".into()),
                };
                rows.push((owner, datacenter, count));
            }
        }
        rows
    }

    /// Queries that carried a Client Subnet option, by outcome.
    pub fn ecs_rows(&self) -> Vec<(&'static str, u64)> {
        let workers = self.workers.lock().expect("stats lock").clone();
        EcsUse::ALL[1..]
            .iter()
            .map(|&u| (u.as_str(), workers.iter().map(|w| w.ecs[u as usize].load(Ordering::Relaxed)).sum()))
            .collect()
    }

    /// Truncated responses.
    pub fn truncated(&self) -> u64 {
        self.workers.lock().expect("stats lock").iter().map(|w| w.truncated.load(Ordering::Relaxed)).sum()
    }

    /// Queries with a COOKIE option summed over workers, by what it was.
    pub fn cookie_rows(&self) -> Vec<(&'static str, u64)> {
        let workers = self.workers.lock().expect("stats lock");
        CookieUse::ALL[1..]
            .iter()
            .map(|&c| (c.as_str(), workers.iter().map(|w| w.cookies[c as usize].load(Ordering::Relaxed)).sum()))
            .collect()
    }

    /// Rate-limited responses summed over workers: (class, action, count).
    pub fn rrl_rows(&self) -> Vec<(&'static str, &'static str, u64)> {
        let workers = self.workers.lock().expect("stats lock");
        let mut rows = Vec::new();
        for class in Class::ALL {
            for (a, action) in ["dropped", "slipped", "logged"].into_iter().enumerate() {
                let n = workers.iter().map(|w| w.rrl[class as usize][a].load(Ordering::Relaxed)).sum();
                rows.push((class.as_str(), action, n));
            }
        }
        rows
    }

    /// UDP responses the kernel refused to send, summed over workers.
    pub fn send_failed(&self) -> u64 {
        self.workers.lock().expect("stats lock").iter().map(|w| w.send_failed.load(Ordering::Relaxed)).sum()
    }
}

fn rcode_name(rcode: u16) -> &'static str {
    crate::dns::types::rcode_name(rcode).unwrap_or("other")
}
