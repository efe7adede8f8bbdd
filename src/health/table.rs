//! The health of every probed address, shared between the probe tasks (writers) and the
//! snapshot builder (reader). Identical checks of one address share one entry, so several
//! pools naming the same endpoint probe it once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::config::cluster::Quorum;

use super::state::{Health, HealthState};
use crate::config::{CheckConfig, CheckKind};

/// One probed address and how it is probed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Address.
    pub ip: IpAddr,
    /// Check.
    pub check: CheckConfig,
}

/// What is known of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    /// Rise/fall state.
    pub state: HealthState,
    /// Last probe.
    pub last_check: Option<SystemTime>,
    /// Last failure reason, cleared by a success.
    pub last_error: Option<String>,
}

/// All targets' status.
#[derive(Debug, Default, Clone)]
pub struct HealthTable {
    targets: HashMap<Target, TargetStatus>,
    /// Other instances' observations, with `[cluster]`.
    cluster: Option<ClusterView>,
    /// Local state transitions so far (a writer of observations skips its scan without one).
    transitions: u64,
}

/// What another instance last said of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Its verdict (after its own rise/fall).
    pub healthy: bool,
    /// Why it says down.
    pub reason: Option<String>,
    /// When it reached us: an observation counts for the TTL after that.
    pub received: Instant,
}

/// The cluster as the health table knows it.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// This instance's name.
    pub instance: String,
    /// How long an observation counts.
    pub ttl: Duration,
    /// Fewer fresh observations than this: the local verdict decides.
    pub min_observers: usize,
    /// Connected to NATS and watching the bucket; else every verdict is local.
    pub connected: bool,
    /// Other instances' observations by target, by instance.
    pub peers: HashMap<Target, BTreeMap<String, Observation>>,
    /// Targets this instance does not probe (another instance was chosen to).
    pub not_probed: HashSet<Target>,
}

/// A member address's verdict and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Answers may use the address.
    pub up: bool,
    /// Instances whose fresh observations counted (this one first when it probes), with what
    /// they said.
    pub votes: Vec<(String, bool)>,
    /// The cluster was asked but the local verdict decided (NATS unreachable, too few
    /// observers).
    pub fallback: bool,
}

/// The table shared by probes and builder.
pub type SharedHealth = Arc<Mutex<HealthTable>>;

impl HealthTable {
    /// Keeps the status of targets still wanted, adds new ones in their initial state, drops
    /// the rest (a reload keeps the health of members that did not change).
    pub fn retain_targets(&mut self, wanted: &[Target]) {
        let keep: std::collections::HashSet<&Target> = wanted.iter().collect();
        self.targets.retain(|t, _| keep.contains(t));
        for t in wanted {
            self.targets.entry(t.clone()).or_insert_with(|| TargetStatus {
                state: HealthState::new(if t.check.initial_up { Health::Up } else { Health::Down }),
                last_check: None,
                last_error: None,
            });
        }
    }

    /// Whether answers may use the address.
    pub fn is_up(&self, ip: IpAddr, check: &CheckConfig) -> bool {
        if check.kind == CheckKind::None {
            return true;
        }
        let t = Target { ip, check: check.clone() };
        self.targets.get(&t).is_none_or(|s| s.state.health == Health::Up)
    }

    /// The verdict on an address under a pool's `quorum`: with `[cluster]` connected, the
    /// fresh observations of every instance (this one's own probes included) decide; else,
    /// or with fewer observers than `min_observers`, the local probes do.
    pub fn verdict(&self, ip: IpAddr, check: &CheckConfig, quorum: Quorum) -> Verdict {
        let local = self.is_up(ip, check);
        let alone = Verdict { up: local, votes: Vec::new(), fallback: false };
        let Some(c) = self.cluster.as_ref().filter(|_| quorum != Quorum::Local && check.kind != CheckKind::None) else {
            return alone;
        };
        if !c.connected {
            return Verdict { fallback: true, ..alone };
        }
        let t = Target { ip, check: check.clone() };
        let mut votes = Vec::new();
        if !c.not_probed.contains(&t) {
            votes.push((c.instance.clone(), local));
        }
        let now = Instant::now();
        if let Some(peers) = c.peers.get(&t) {
            for (who, o) in peers {
                if *who != c.instance && now.duration_since(o.received) < c.ttl {
                    votes.push((who.clone(), o.healthy));
                }
            }
        }
        if votes.len() < c.min_observers.max(1) {
            return Verdict { fallback: true, votes, ..alone };
        }
        let (yes, n) = (votes.iter().filter(|(_, up)| *up).count(), votes.len());
        let up = match quorum {
            Quorum::Local => local,
            Quorum::Any => yes >= 1,
            Quorum::Majority => yes * 2 > n,
            Quorum::All => yes == n,
            Quorum::AtLeast(k) => yes >= k,
        };
        Verdict { up, votes, fallback: false }
    }

    /// What other instances said of a target (fresh or not), with how long ago it reached
    /// us, by instance.
    pub fn observations(&self, ip: IpAddr, check: &CheckConfig) -> Vec<(String, &Observation, Duration)> {
        let Some(c) = &self.cluster else { return Vec::new() };
        let t = Target { ip, check: check.clone() };
        c.peers.get(&t).into_iter().flatten().map(|(who, o)| (who.clone(), o, o.received.elapsed())).collect()
    }

    /// The table as one pool sees it.
    pub fn for_pool(&self, quorum: Quorum) -> PoolHealth<'_> {
        PoolHealth { table: self, quorum }
    }

    /// The cluster view, when `[cluster]` is set.
    pub fn cluster(&self) -> Option<&ClusterView> {
        self.cluster.as_ref()
    }

    /// The cluster view to update (set up by [`HealthTable::set_cluster`]).
    pub fn cluster_mut(&mut self) -> Option<&mut ClusterView> {
        self.cluster.as_mut()
    }

    /// Starts or stops sharing: `None` turns the cluster off.
    pub fn set_cluster(&mut self, view: Option<ClusterView>) {
        self.cluster = view;
    }

    /// Every target with its status.
    pub fn iter(&self) -> impl Iterator<Item = (&Target, &TargetStatus)> {
        self.targets.iter()
    }

    /// Status of one target.
    pub fn status(&self, ip: IpAddr, check: &CheckConfig) -> Option<&TargetStatus> {
        self.targets.get(&Target { ip, check: check.clone() })
    }

    /// Records a probe result; returns the transition, if any.
    pub fn record(&mut self, target: &Target, result: &Result<(), String>) -> Option<super::state::Transition> {
        let st = self.targets.get_mut(target)?;
        st.last_check = Some(SystemTime::now());
        st.last_error = result.as_ref().err().cloned();
        let t = st.state.observe(result.is_ok(), target.check.rise, target.check.fall);
        self.transitions += t.is_some() as u64;
        t
    }

    /// Local state transitions so far.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }
}

/// The health table under one pool's quorum.
pub struct PoolHealth<'a> {
    table: &'a HealthTable,
    quorum: Quorum,
}

impl PoolHealth<'_> {
    /// Whether the pool's answers may use the address.
    pub fn is_up(&self, ip: IpAddr, check: &CheckConfig) -> bool {
        self.table.verdict(ip, check, self.quorum).up
    }
}
