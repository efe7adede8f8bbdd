//! Producers of zone data. Each source turns its input into records; none of them touches
//! the published snapshot: they send events to [`crate::builder`], which does.

pub mod controller;
