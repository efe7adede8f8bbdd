//! This instance's own probe results: one slot per probed target, written by that target's
//! probe task alone and read without a lock (the builder when it computes verdicts, the
//! cluster exchange when it writes this instance's observations, `/records` and `/explain`
//! for the last check and error). A result here is an observation, not a verdict: what DNS
//! answers with is decided in [`super::verdict`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::state::{Health, HealthState, Transition};
use crate::config::CheckConfig;

/// One probed address and how it is probed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Address.
    pub ip: IpAddr,
    /// Check.
    pub check: CheckConfig,
}

impl Target {
    /// The target of `ip` under `check`.
    pub fn new(ip: IpAddr, check: &CheckConfig) -> Target {
        Target { ip, check: check.clone() }
    }

    /// The state a target starts in, before its first probe.
    pub fn initial(&self) -> Health {
        if self.check.initial_up { Health::Up } else { Health::Down }
    }
}

/// What this instance's probes found of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    /// Rise/fall state: this instance's observation.
    pub state: HealthState,
    /// Last probe.
    pub last_check: Option<SystemTime>,
    /// Last failure reason, cleared by a success.
    pub last_error: Option<String>,
}

impl TargetStatus {
    /// A target not probed yet.
    pub fn initial(target: &Target) -> TargetStatus {
        TargetStatus { state: HealthState::new(target.initial()), last_check: None, last_error: None }
    }

    /// Whether this instance's own probes say the address answers (an observation).
    pub fn observed_up(&self) -> bool {
        self.state.health == Health::Up
    }
}

/// A target's slot: written by its probe task only.
pub type Slot = ArcSwap<TargetStatus>;

/// Every target's slot, for one config's set of targets.
#[derive(Debug, Default)]
pub struct ProbeTable {
    slots: HashMap<Target, Arc<Slot>>,
    /// Local state transitions so far (the cluster exchange skips its scan without one).
    transitions: Arc<AtomicU64>,
}

impl ProbeTable {
    /// A table for `wanted`: targets of `previous` that remain keep their slot (and so their
    /// state: a reload keeps the health of members that did not change), new ones start in
    /// their initial state.
    pub fn for_targets(wanted: &[Target], previous: &ProbeTable) -> ProbeTable {
        let slots = wanted
            .iter()
            .map(|t| {
                let slot = previous
                    .slots
                    .get(t)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(ArcSwap::from_pointee(TargetStatus::initial(t))));
                (t.clone(), slot)
            })
            .collect();
        ProbeTable { slots, transitions: Arc::clone(&previous.transitions) }
    }

    /// The slot of a target, for its probe task.
    pub fn slot(&self, target: &Target) -> Option<Arc<Slot>> {
        self.slots.get(target).cloned()
    }

    /// What this instance's probes found of a target (none: not probed here).
    pub fn status(&self, target: &Target) -> Option<Arc<TargetStatus>> {
        self.slots.get(target).map(|s| s.load_full())
    }

    /// Records one probe result in `slot` (its probe task's); returns the transition, if any.
    pub fn record<E: std::fmt::Display>(
        &self,
        target: &Target,
        slot: &Slot,
        result: &Result<(), E>,
    ) -> Option<Transition> {
        let mut st = TargetStatus::clone(&slot.load());
        st.last_check = Some(SystemTime::now());
        st.last_error = result.as_ref().err().map(E::to_string);
        let t = st.state.observe(result.is_ok(), target.check.rise, target.check.fall);
        slot.store(Arc::new(st));
        if t.is_some() {
            self.transitions.fetch_add(1, Ordering::Relaxed);
        }
        t
    }

    /// Local state transitions so far.
    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }
}
