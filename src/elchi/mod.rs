//! The Elchi GSLB contract: the controller's JSON (snapshot, changes, webhook bodies), its
//! conversion into records, and the last-known-good state files that hold it on disk.

pub mod api;
pub mod state_file;
