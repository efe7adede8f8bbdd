//! Answers by location on the query path: a location map ready for queries (its interval
//! table, [`crate::geo_table`], and the datacenter orders it numbers) and what a fragment
//! marked geo answers per client.

use std::net::IpAddr;

use crate::geo_table::GeoTable;

/// A map ready for queries: where a client is, and the datacenter orders that index points
/// into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompiledMap {
    /// Client address → order id and ECS scope.
    pub table: GeoTable,
    /// Datacenter indexes, nearest first, by order id; every order lists every datacenter.
    pub orders: Vec<Box<[u16]>>,
}

impl CompiledMap {
    /// The datacenters for `addr`, nearest first, and the ECS scope of that answer.
    #[inline]
    pub fn order(&self, addr: IpAddr) -> (&[u16], u8) {
        let l = self.table.locate(addr);
        (self.orders.get(l.order as usize).map_or(&[][..], |o| &o[..]), l.scope)
    }
}

/// What a fragment marked geo ([`crate::snapshot::fragment::Fragment::geo`]) answers per
/// client. Small and `Copy`: everything it points at lies in its zone part's flat tables, so
/// a query touches few cache lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeoAnswer {
    /// The map that orders the client's datacenters (index into `Snapshot::geo`).
    pub map: u16,
    /// Metrics slot of the pool or name (index into `Snapshot::geo_labels`).
    pub slot: u16,
    /// The answers.
    pub kind: GeoKind,
}

/// The two kinds of answers by location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoKind {
    /// A geo pool, pre-encoded: its distinct answers are the fragments `first`, `first + 1`,
    /// ...; `pattern` starts a run in `ZoneSnap::geo_patterns` that gives, per order id of
    /// the map, which of them and the datacenter it answers from. Pools in the same state
    /// share one pattern.
    Pool {
        /// The fragment of answer 0.
        first: u32,
        /// Start of the pattern.
        pattern: u32,
    },
    /// A geo name: `ZoneSnap::geo_targets[first + d]` is the wire name whose addresses answer
    /// for datacenter `d`. Looked up per query (the targets change with every push), nearest
    /// datacenter first.
    Names {
        /// Start of the targets, one per datacenter.
        first: u32,
    },
}

/// Per order id of a map: (answer index, datacenter) of a geo pool.
pub type PatternEntry = (u16, u16);

/// Geo pools and names counted separately; later ones share the last slot.
pub const GEO_SLOTS: usize = 64;

/// A geo answer that no datacenter gave (a `when_all_down` fallback).
pub const NO_DATACENTER: u16 = u16::MAX;
