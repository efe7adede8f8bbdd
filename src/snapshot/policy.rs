//! Which pool members an answer may use (issue 5, in progress): primary/secondary failover,
//! all healthy members, or a weighted random pick, and what to do when none qualifies.
//! [`candidates`] runs when the snapshot is built (health changes rebuild it); only
//! [`pick_weighted`] runs per query, without allocating. Pure and table-tested.

use crate::dns::name::Name;

/// How members are chosen (`select`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// Healthy primaries, else healthy secondaries.
    Failover,
    /// Every healthy member.
    All,
    /// A weighted random pick of `max_answers` healthy members per query.
    Weighted,
}

/// What to answer when no member qualifies (`when_all_down`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhenAllDown {
    /// Fail open: answer every member.
    All,
    /// NOERROR with no answer.
    NoData,
    /// SERVFAIL.
    ServFail,
    /// A CNAME to this name.
    Cname(Name),
}

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Preferred.
    Primary,
    /// Used when no primary is up.
    Secondary,
}

/// What the policy needs to know of a member (for one address family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberView {
    /// Role.
    pub role: Role,
    /// Weight for `Weighted`; 0 = standby.
    pub weight: u32,
    /// Healthy now.
    pub up: bool,
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

/// Decides which members qualify.
pub fn candidates(members: &[MemberView], select: Select, when_all_down: &WhenAllDown) -> Choice {
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
        Select::Weighted => {
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
                Select::Weighted => members.iter().map(|m| m.weight.max(1)).collect(),
                _ => Vec::new(),
            };
            Choice::Members { members: all, weights }
        }
        WhenAllDown::NoData => Choice::NoData,
        WhenAllDown::ServFail => Choice::ServFail,
        WhenAllDown::Cname(n) => Choice::Cname(n.clone()),
    }
}

/// A small, fast generator for per-query picks (xorshift64*); each worker keeps its own.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    /// The next value below `bound` (> 0).
    #[inline]
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % bound
    }
}

/// Picks up to `out.len()` distinct positions of `weights`, each draw proportional to the
/// weights not yet picked. Returns how many were written. No allocation.
#[inline]
pub fn pick_weighted(weights: &[u32], rng: &mut Rng, out: &mut [u16]) -> usize {
    let k = out.len().min(weights.len());
    let mut remaining: u64 = weights.iter().map(|&w| w as u64).sum();
    let mut n = 0;
    while n < k && remaining > 0 {
        let mut r = rng.below(remaining);
        for (i, &w) in weights.iter().enumerate() {
            if out[..n].contains(&(i as u16)) {
                continue;
            }
            if r < w as u64 {
                out[n] = i as u16;
                remaining -= w as u64;
                n += 1;
                break;
            }
            r -= w as u64;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: Role, weight: u32, up: bool) -> MemberView {
        MemberView { role, weight, up }
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

    /// 10,000 seeded single picks land within 5% of the weights.
    #[test]
    fn weighted_picks_follow_the_weights() {
        let weights = [1u32, 2, 7];
        let mut rng = Rng::new(42);
        let mut hits = [0u32; 3];
        for _ in 0..10_000 {
            let mut out = [0u16; 1];
            assert_eq!(pick_weighted(&weights, &mut rng, &mut out), 1);
            hits[out[0] as usize] += 1;
        }
        for (i, &w) in weights.iter().enumerate() {
            let want = 10_000.0 * w as f64 / 10.0;
            let got = hits[i] as f64;
            assert!((got - want).abs() <= want * 0.05, "member {i}: {got} picks, want {want} ± 5%");
        }
    }

    #[test]
    fn weighted_picks_are_distinct() {
        let mut rng = Rng::new(7);
        let mut out = [0u16; 3];
        assert_eq!(pick_weighted(&[5, 1, 1, 1], &mut rng, &mut out), 3);
        let mut seen = out.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 3);
        let mut out = [0u16; 8];
        assert_eq!(pick_weighted(&[1, 1], &mut rng, &mut out), 2);
    }
}
