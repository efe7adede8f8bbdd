//! The health of every probed address, shared between the probe tasks (writers) and the
//! snapshot builder (reader). Identical checks of one address share one entry, so several
//! pools naming the same endpoint probe it once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

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

    /// Status of one target.
    pub fn status(&self, ip: IpAddr, check: &CheckConfig) -> Option<&TargetStatus> {
        self.targets.get(&Target { ip, check: check.clone() })
    }

    /// Records a probe result; returns the transition, if any.
    pub fn record(&mut self, target: &Target, result: &Result<(), String>) -> Option<super::state::Transition> {
        let st = self.targets.get_mut(target)?;
        st.last_check = Some(SystemTime::now());
        st.last_error = result.as_ref().err().cloned();
        st.state.observe(result.is_ok(), target.check.rise, target.check.fall)
    }
}
