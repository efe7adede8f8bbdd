//! Turns the inputs (static config data, controller and webhook records, pool health) into
//! published snapshots: the pools' current records ([`pools`]) and the per-zone merge,
//! compilation and publication ([`publisher`]).

pub mod pools;
pub mod publisher;
