//! DNS wire format: names, constants and query parsing. No I/O and no allocation on the
//! parsing path.

pub mod name;
pub mod types;
pub mod wire;
