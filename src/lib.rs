//! gslbd: a Global Server Load Balancing authoritative DNS server.
//!
//! ```text
//!  producers                         builder (one thread)             data plane
//!  controller sync (sources) ──┐
//!  /notify (admin) ────────────┤ Event  apply to each zone's        ┌─► Snapshot ─(arc-swap)─► server::{udp,tcp}
//!  probes, cluster (health) ───┼──────► state, compile only what ───┤
//!  SIGHUP (app, config) ───────┘        changed, publish            └─► View ─(arc-swap)─► admin, metrics
//! ```
//!
//! Modules from the bottom up (each imports only those before it; `docs/ARCHITECTURE.md`
//! draws both paths file by file):
//! * Leaves: [`dns`] (wire format, names, types, source-neutral records), [`geo_table`] (a
//!   location map's interval tables), [`allocator`], [`priority`], [`stopping`], [`notify`],
//!   [`corefile`].
//! * [`config`]: the TOML file, validated (imports only `dns` and `geo_table`). [`elchi`]: the
//!   Elchi controller's JSON contract and the state files.
//! * [`snapshot`]: the immutable, pre-encoded answers and their atomic handle. [`dnstap`]: the
//!   query log the workers feed without waiting. [`server`]: UDP workers and TCP tasks
//!   answering from the snapshot (no shared lock, no per-query allocation). [`tls`]: TLS
//!   configurations from a config identity.
//! * [`xfr`]: zone transfers out and NOTIFY, from the snapshot's published transfers.
//! * [`health`]: observations (one writer each) and the one place verdicts are decided.
//! * [`builder`]: the one owner of the inputs; turns events into snapshots and admin views.
//!   [`cluster`]: the health exchange between instances.
//! * [`metrics`] reads the views and the query counters at scrape time; [`explain`] answers
//!   a question through the query path and says why (CLI and admin API).
//! * Producers: [`probes`] (health checks), [`sources`] (controller sync), [`admin`] (the
//!   HTTP API, the webhook among it). [`app`] starts and stops it all.

#![warn(missing_docs)]

pub mod admin;
pub mod allocator;
pub mod app;
pub mod builder;
pub mod cluster;
pub mod config;
pub mod corefile;
pub mod dns;
pub mod dnssec;
pub mod dnstap;
pub mod elchi;
pub mod explain;
pub mod externaldns;
pub mod geo_table;
pub mod health;
pub mod keytool;
pub mod metrics;
pub mod notify;
pub mod priority;
pub mod probes;
pub mod server;
pub mod snapshot;
pub mod sources;
pub mod stable_hash;
pub mod stopping;
pub mod tls;
pub mod xfr;
