//! The Elchi GSLB contract: the controller's JSON (snapshot, changes, webhook bodies), its
//! conversion into records, the last-known-good state files that hold it on disk, and the
//! journal that makes acknowledged pushes durable.

pub mod api;
pub mod journal;
pub mod list;
pub mod response;
pub mod state_file;
