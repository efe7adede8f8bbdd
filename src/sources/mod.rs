//! Producers of zone data. Each source turns its input into records; none of them touches
//! the published snapshot (that is the builder's job).

pub mod static_zone;
