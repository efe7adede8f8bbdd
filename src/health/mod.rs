//! Health checking of pool members (issue 5, in progress): the rise/fall state machine is
//! here; the probe scheduler, the probes and the pool configuration come next. Health never
//! touches the query path: results feed the snapshot builder, which recompiles the pools.

pub mod state;
