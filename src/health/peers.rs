//! What the other instances said (`[cluster]`): written by the cluster exchange alone and
//! published whole, so the builder reads a consistent copy when it computes verdicts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::probed::Target;

/// What another instance last said of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Its observation (after its own rise/fall).
    pub healthy: bool,
    /// Why it says down.
    pub reason: Option<String>,
    /// When it reached us: an observation counts for the TTL after that.
    pub received: Instant,
}

/// The cluster as the exchange last published it.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// This instance's name.
    pub instance: String,
    /// How long an observation counts.
    pub ttl: Duration,
    /// Fewer fresh observations than this: the local observation decides.
    pub min_observers: usize,
    /// Connected to NATS and watching the bucket; else every verdict is local.
    pub connected: bool,
    /// Other instances' observations by target, by instance.
    pub peers: HashMap<Target, BTreeMap<String, Observation>>,
    /// Targets this instance does not probe (another instance was chosen to).
    pub not_probed: HashSet<Target>,
}

impl ClusterView {
    /// What other instances said of a target (fresh or not), with how long ago it reached
    /// us, by instance.
    pub fn observations(&self, target: &Target) -> Vec<(String, &Observation, Duration)> {
        self.peers.get(target).into_iter().flatten().map(|(who, o)| (who.clone(), o, o.received.elapsed())).collect()
    }

    /// Whether this instance probes the target itself.
    pub fn probes(&self, target: &Target) -> bool {
        !self.not_probed.contains(target)
    }
}
