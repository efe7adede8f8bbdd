//! DNS data: names, constants, query parsing (no I/O and no allocation on the parsing path)
//! and the source-neutral records every source produces and the compiler reads.

pub mod name;
pub mod net;
pub mod records;
pub mod tsig;
pub mod types;
pub mod wire;
