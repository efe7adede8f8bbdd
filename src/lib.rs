//! gslbd: a Global Server Load Balancing authoritative DNS server.
//!
//! ```text
//!  config (static records) ──┐
//!  controller sync ──────────┼─► inputs ─► snapshot::publisher ─► Snapshot ─(arc-swap)─► server::{udp,tcp}
//!  webhook, pools + health ─┘             merges, builds, encodes                       reads only
//! ```
//!
//! * [`config`] reads and validates the TOML file.
//! * [`sources`] turn inputs into records (static zone data, the Elchi controller);
//!   [`inputs`] holds the current records of every zone and rebuilds on change;
//!   [`snapshot`] compiles records into pre-encoded answers and swaps them in atomically.
//! * [`server`] is the data plane: UDP worker threads and TCP tasks answering from the
//!   current snapshot through [`server::query`], with no lock and no per-query allocation.
//! * [`health`] probes pool members; [`admin`] serves the HTTP API and [`metrics`] its
//!   `/metrics`.
//! * [`dns`] is wire-format code shared by all of them.
//! * [`app`] owns the process lifecycle: start-up order, reload, shutdown.
//! * [`corefile`] reads a CoreDNS Corefile for `gslbd import-corefile`.

#![warn(missing_docs)]

pub mod admin;
pub mod app;
pub mod builder;
pub mod config;
pub mod corefile;
pub mod dns;
pub mod elchi;
pub mod health;
pub mod inputs;
pub mod metrics;
pub mod persist;
pub mod priority;
pub mod probes;
pub mod server;
pub mod snapshot;
pub mod sources;
