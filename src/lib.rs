//! gslbd: a Global Server Load Balancing authoritative DNS server.
//!
//! ```text
//!  producers                         builder (one thread)             data plane
//!  controller sync (sources) ──┐
//!  /notify (admin) ────────────┤ Event  apply, coalesce, build    ┌─► Snapshot ─(arc-swap)─► server::{udp,tcp}
//!  probes (health) ────────────┼──────► only what changed, ───────┤
//!  SIGHUP (app, config) ───────┘        publish                   └─► View ─(arc-swap)─► admin, metrics
//! ```
//!
//! Modules from the bottom up (each imports only those before it):
//! * [`dns`]: wire format, names, types. [`snapshot`]: the immutable, pre-encoded answers and
//!   their atomic handle. [`dnstap`]: the query log the workers feed without waiting.
//!   [`server`]: UDP workers and TCP tasks answering from the snapshot (imports only
//!   `snapshot`, `dnstap` and `dns`; no lock, no per-query allocation).
//! * [`config`]: the TOML file, validated (static records included). [`elchi`]: the Elchi
//!   controller's JSON contract and the state files. [`health`]: member health as data.
//! * [`builder`]: the one owner of the inputs; turns events into snapshots and admin views.
//! * [`metrics`] reads the views and the query counters at scrape time; [`explain`] answers
//!   a question through the query path and says why (CLI and admin API).
//! * Producers: [`sources`] (controller sync), [`probes`] (health checks), [`admin`] (the
//!   HTTP API, the webhook among it). [`app`] starts and stops it all; [`corefile`] reads a
//!   CoreDNS Corefile for `gslbd import-corefile`.
//!   [`tls`] reads the certificates of the admin API and DNS over TLS.

#![warn(missing_docs)]

pub mod admin;
pub mod allocator;
pub mod app;
pub mod builder;
pub mod cluster;
pub mod config;
pub mod corefile;
pub mod dns;
pub mod dnstap;
pub mod elchi;
pub mod explain;
pub mod geo_table;
pub mod health;
pub mod metrics;
pub mod notify;
pub mod priority;
pub mod probes;
pub mod server;
pub mod snapshot;
pub mod sources;
pub mod tls;
