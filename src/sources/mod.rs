//! Producers of zone data. Each source turns its input into records; none of them touches
//! the published snapshot (that is the publisher's job, through [`crate::inputs`]).

pub mod controller;
