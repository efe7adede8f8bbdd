//! The one place where "up" is decided. From this instance's probe results
//! ([`super::probed`]) and, with `[cluster]`, the other instances' observations
//! ([`super::peers`]), the builder computes a [`Verdicts`] whenever either changes; DNS
//! answers are compiled from it and the admin view publishes the same value, so `/records`,
//! `/explain`, `/metrics` (`gslbd_pool_members`) and the alerts built on them say what DNS
//! answers.
//!
//! Per target a [`Tally`] holds what counted: this instance's observation, the fresh votes
//! and whether the cluster could decide. A pool's quorum then turns a tally into up or down
//! ([`Tally::up`]): with `[cluster]` connected the fresh observations of every instance (this
//! one's included when it probes the target) decide; else, or with fewer than
//! `min_observers`, the local observation does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::Observations;
use super::peers::ClusterView;
use super::probed::{ProbeTable, Target, TargetStatus};
use crate::config::cluster::Quorum;
use crate::config::{CheckConfig, CheckKind};

/// What counted for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// This instance's own observation (its rise/fall state, or the check's initial state).
    pub local: bool,
    /// Instances whose fresh observations counted (this one first when it probes), with what
    /// they said.
    pub votes: Vec<(String, bool)>,
    /// The cluster was asked but the local observation decides (NATS unreachable, too few
    /// observers).
    pub fallback: bool,
    /// `[cluster]` is set (else only `local` counts).
    pub clustered: bool,
}

impl Tally {
    /// Up or down under a pool's `quorum`.
    pub fn up(&self, quorum: Quorum) -> bool {
        if !self.clustered || self.fallback || quorum == Quorum::Local {
            return self.local;
        }
        let (yes, n) = (self.votes.iter().filter(|(_, up)| *up).count(), self.votes.len());
        match quorum {
            Quorum::Local => self.local,
            Quorum::Any => yes >= 1,
            Quorum::Majority => yes * 2 > n,
            Quorum::All => yes == n,
            Quorum::AtLeast(k) => yes >= k,
        }
    }

    /// Whether the local observation decides for a pool with `quorum` because the cluster
    /// could not (a pool with `quorum = "local"` never asks it).
    pub fn falls_back(&self, quorum: Quorum) -> bool {
        self.clustered && self.fallback && quorum != Quorum::Local
    }
}

/// Every target's tally as of one moment, with the inputs it was computed from.
#[derive(Debug, Default)]
pub struct Verdicts {
    tallies: HashMap<Target, Tally>,
    probed: Arc<ProbeTable>,
    cluster: Option<Arc<ClusterView>>,
}

impl Verdicts {
    /// Tallies `targets` from the current observations.
    pub fn compute(targets: &[Target], observations: &Observations) -> Verdicts {
        let probed = observations.probed.load_full();
        let cluster = observations.cluster.load_full();
        let now = Instant::now();
        let tallies = targets
            .iter()
            .filter(|t| t.check.kind != CheckKind::None)
            .map(|t| {
                // Not probed yet: the check's initial state.
                let local = probed.status(t).map_or(t.check.initial_up, |s| s.observed_up());
                (t.clone(), tally(t, local, cluster.as_deref(), now))
            })
            .collect();
        Verdicts { tallies, probed, cluster }
    }

    /// Whether answers of a pool with `quorum` may use the address.
    pub fn is_up(&self, ip: IpAddr, check: &CheckConfig, quorum: Quorum) -> bool {
        if check.kind == CheckKind::None {
            return true;
        }
        match self.tallies.get(&Target::new(ip, check)) {
            Some(t) => t.up(quorum),
            None => check.initial_up,
        }
    }

    /// The verdicts as one pool sees them.
    pub fn for_pool(&self, quorum: Quorum) -> PoolHealth<'_> {
        PoolHealth { verdicts: self, quorum }
    }

    /// The tally of a target (none for a member without a check).
    pub fn tally(&self, ip: IpAddr, check: &CheckConfig) -> Option<&Tally> {
        self.tallies.get(&Target::new(ip, check))
    }

    /// Every target with its tally.
    pub fn iter(&self) -> impl Iterator<Item = (&Target, &Tally)> {
        self.tallies.iter()
    }

    /// What this instance's probes found of a target: the last check and error (live: the
    /// probe task keeps writing it).
    pub fn status(&self, ip: IpAddr, check: &CheckConfig) -> Option<Arc<TargetStatus>> {
        self.probed.status(&Target::new(ip, check))
    }

    /// The cluster view the verdicts were computed with, when `[cluster]` is set.
    pub fn cluster(&self) -> Option<&ClusterView> {
        self.cluster.as_deref()
    }

    /// Targets whose verdict is local although `[cluster]` is set (NATS unreachable, too few
    /// fresh observations).
    pub fn fallback_targets(&self) -> usize {
        self.tallies.values().filter(|t| t.clustered && t.fallback).count()
    }

    /// Whether `other` tallies `target` alike (a change elsewhere leaves its pools alone).
    pub fn same_for(&self, other: &Verdicts, target: &Target) -> bool {
        self.tallies.get(target) == other.tallies.get(target)
    }
}

fn tally(target: &Target, local: bool, cluster: Option<&ClusterView>, now: Instant) -> Tally {
    let Some(c) = cluster else {
        return Tally { local, votes: Vec::new(), fallback: false, clustered: false };
    };
    if !c.connected {
        return Tally { local, votes: Vec::new(), fallback: true, clustered: true };
    }
    let mut votes = Vec::new();
    if c.probes(target) {
        votes.push((c.instance.clone(), local));
    }
    for (who, o) in c.peers.get(target).into_iter().flatten() {
        if *who != c.instance && now.duration_since(o.received) < c.ttl {
            votes.push((who.clone(), o.healthy));
        }
    }
    let fallback = votes.len() < c.min_observers.max(1);
    Tally { local, votes, fallback, clustered: true }
}

/// The verdicts under one pool's quorum.
pub struct PoolHealth<'a> {
    verdicts: &'a Verdicts,
    quorum: Quorum,
}

impl PoolHealth<'_> {
    /// Whether the pool's answers may use the address.
    pub fn is_up(&self, ip: IpAddr, check: &CheckConfig) -> bool {
        self.verdicts.is_up(ip, check, self.quorum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(local: bool, votes: &[bool], fallback: bool) -> Tally {
        let votes = votes.iter().enumerate().map(|(i, &v)| (format!("i{i}"), v)).collect();
        Tally { local, votes, fallback, clustered: true }
    }

    /// (local, votes, fallback, quorum, verdict)
    #[test]
    fn quorums_decide_over_fresh_votes_and_fall_back_to_the_local_observation() {
        let table = [
            (false, &[false, true, true][..], false, Quorum::Majority, true),
            (true, &[true, false, false][..], false, Quorum::Majority, false),
            (true, &[true, true, false][..], false, Quorum::All, false),
            (false, &[false, false, true][..], false, Quorum::Any, true),
            (false, &[true, true, false][..], false, Quorum::AtLeast(2), true),
            (false, &[true, true, true][..], false, Quorum::Local, false),
            (false, &[true, true, true][..], true, Quorum::Majority, false),
            (true, &[][..], true, Quorum::All, true),
        ];
        for (local, votes, fallback, quorum, want) in table {
            let t = tally(local, votes, fallback);
            assert_eq!(t.up(quorum), want, "{local} {votes:?} {fallback} {quorum:?}");
        }
        let alone = Tally { local: false, votes: Vec::new(), fallback: false, clustered: false };
        assert!(!alone.up(Quorum::Any) && !alone.falls_back(Quorum::Any));
    }
}
