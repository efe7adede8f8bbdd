//! Which pool members an answer may use: healthy primaries before secondaries, every healthy
//! member, or a weighted set drawn (or hashed) per query, and what to do when none qualifies. Runs when
//! the pools' answers are compiled (a verdict change recompiles them); pure and
//! table-tested.

use crate::config::{Role, Select, WhenAllDown};
use crate::dns::name::Name;

/// What the policy needs to know of a member (for one address family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberView {
    /// Role.
    pub role: Role,
    /// Weight for `Weighted`; 0 = standby.
    pub weight: u32,
    /// Healthy now.
    pub up: bool,
    /// Drained by an operator: used only when no other member qualifies.
    pub drained: bool,
}

/// The members an answer may use now, or the fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Indexes of usable members, with their weights for a weighted pick.
    Members {
        /// Member indexes.
        members: Vec<usize>,
        /// Weights, parallel to `members` (empty unless `Weighted`).
        weights: Vec<u32>,
    },
    /// NOERROR, no answer.
    NoData,
    /// SERVFAIL.
    ServFail,
    /// CNAME to the name.
    Cname(Name),
}

/// Decides which members qualify: healthy members that are not drained; when none is,
/// healthy drained ones (the last resort); when none is either, `when_all_down`.
pub fn candidates(members: &[MemberView], select: Select, when_all_down: &WhenAllDown) -> Choice {
    if members.iter().any(|m| m.up && !m.drained) {
        let undrained: Vec<MemberView> = members.iter().map(|m| MemberView { up: m.up && !m.drained, ..*m }).collect();
        return chosen(&undrained, select, when_all_down);
    }
    chosen(members, select, when_all_down)
}

fn chosen(members: &[MemberView], select: Select, when_all_down: &WhenAllDown) -> Choice {
    let up = |pred: &dyn Fn(&MemberView) -> bool| -> Vec<usize> {
        members.iter().enumerate().filter(|(_, m)| m.up && pred(m)).map(|(i, _)| i).collect()
    };
    let (chosen, weights) = match select {
        Select::All => (up(&|_| true), Vec::new()),
        Select::Failover => {
            let primaries = up(&|m| m.role == Role::Primary);
            if primaries.is_empty() {
                (up(&|m| m.role == Role::Secondary), Vec::new())
            } else {
                (primaries, Vec::new())
            }
        }
        // Hashing honours weights as a weighted draw does; the client picks, not chance.
        Select::Weighted | Select::Hash => {
            let weighted = up(&|m| m.weight > 0);
            // Weight 0 members stand by: used, equally, only when no weighted member is up.
            let chosen = if weighted.is_empty() { up(&|m| m.weight == 0) } else { weighted };
            let weights = chosen.iter().map(|&i| members[i].weight.max(1)).collect();
            (chosen, weights)
        }
    };
    if !chosen.is_empty() {
        return Choice::Members { members: chosen, weights };
    }
    match when_all_down {
        WhenAllDown::All => {
            let all: Vec<usize> = (0..members.len()).collect();
            let weights = match select {
                Select::Weighted | Select::Hash => members.iter().map(|m| m.weight.max(1)).collect(),
                _ => Vec::new(),
            };
            Choice::Members { members: all, weights }
        }
        WhenAllDown::NoData => Choice::NoData,
        WhenAllDown::ServFail => Choice::ServFail,
        WhenAllDown::Cname(n) => Choice::Cname(n.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: Role, weight: u32, up: bool) -> MemberView {
        MemberView { role, weight, up, drained: false }
    }

    fn drained(role: Role, up: bool) -> MemberView {
        MemberView { role, weight: 1, up, drained: true }
    }

    fn members_of(c: Choice) -> Vec<usize> {
        match c {
            Choice::Members { members, .. } => members,
            other => panic!("expected members, got {other:?}"),
        }
    }

    #[test]
    fn failover_prefers_healthy_primaries() {
        use Role::*;
        let all_down = WhenAllDown::All;
        let pool = [m(Primary, 1, true), m(Primary, 1, false), m(Secondary, 1, true)];
        assert_eq!(members_of(candidates(&pool, Select::Failover, &all_down)), [0]);
        let pool = [m(Primary, 1, false), m(Secondary, 1, true), m(Secondary, 1, true)];
        assert_eq!(members_of(candidates(&pool, Select::Failover, &all_down)), [1, 2]);
        let pool = [m(Primary, 1, false), m(Secondary, 1, false)];
        assert_eq!(members_of(candidates(&pool, Select::Failover, &all_down)), [0, 1], "fail open");
        assert_eq!(candidates(&pool, Select::Failover, &WhenAllDown::NoData), Choice::NoData);
        assert_eq!(candidates(&pool, Select::All, &WhenAllDown::ServFail), Choice::ServFail);
        let target = Name::parse("backup.example.net.", None).unwrap();
        assert_eq!(candidates(&pool, Select::All, &WhenAllDown::Cname(target.clone())), Choice::Cname(target));
    }

    #[test]
    fn weight_zero_members_stand_by() {
        use Role::*;
        let pool = [m(Primary, 3, true), m(Primary, 0, true)];
        assert_eq!(members_of(candidates(&pool, Select::Weighted, &WhenAllDown::All)), [0]);
        let pool = [m(Primary, 3, false), m(Primary, 0, true)];
        assert_eq!(members_of(candidates(&pool, Select::Weighted, &WhenAllDown::All)), [1]);
    }

    /// A drained member answers only when no other member would: a healthy secondary beats a
    /// drained primary under failover; with nobody else up the drained one answers before
    /// `when_all_down`.
    #[test]
    fn drained_members_are_the_last_resort() {
        use Role::*;
        let pool = [drained(Primary, true), m(Primary, 1, true)];
        assert_eq!(members_of(candidates(&pool, Select::All, &WhenAllDown::NoData)), [1]);
        let pool = [drained(Primary, true), m(Secondary, 1, true)];
        assert_eq!(members_of(candidates(&pool, Select::Failover, &WhenAllDown::NoData)), [1]);
        let pool = [drained(Primary, true), m(Secondary, 1, false)];
        assert_eq!(members_of(candidates(&pool, Select::Failover, &WhenAllDown::NoData)), [0]);
        let pool = [drained(Primary, false), m(Primary, 1, false)];
        assert_eq!(candidates(&pool, Select::Hash, &WhenAllDown::NoData), Choice::NoData);
    }
}
