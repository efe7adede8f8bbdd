//! The rise/fall state machine of one probed address: the state flips only after `rise`
//! consecutive successes (down → up) or `fall` consecutive failures (up → down). Pure and
//! table-tested.

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Answers are given.
    Up,
    /// Left out of answers.
    Down,
}

/// A change of state, to be logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: Health,
    /// State after.
    pub to: Health,
}

/// State of one address plus the run of results that points the other way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthState {
    /// Current state.
    pub health: Health,
    /// Consecutive results contradicting `health` so far.
    streak: u32,
}

impl HealthState {
    /// A fresh state (`initial` from the config).
    pub fn new(initial: Health) -> HealthState {
        HealthState { health: initial, streak: 0 }
    }

    /// Records one probe result; returns the transition when the state flips.
    pub fn observe(&mut self, ok: bool, rise: u32, fall: u32) -> Option<Transition> {
        let (contradicts, needed, next) = match self.health {
            Health::Up => (!ok, fall.max(1), Health::Down),
            Health::Down => (ok, rise.max(1), Health::Up),
        };
        if !contradicts {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak < needed {
            return None;
        }
        let from = self.health;
        self.health = next;
        self.streak = 0;
        Some(Transition { from, to: next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds results and returns the state after each one.
    fn run(initial: Health, rise: u32, fall: u32, results: &str) -> String {
        let mut st = HealthState::new(initial);
        results
            .chars()
            .map(|c| {
                st.observe(c == '+', rise, fall);
                if st.health == Health::Up { 'U' } else { 'D' }
            })
            .collect()
    }

    #[test]
    fn flips_only_after_consecutive_results() {
        // (initial, rise, fall, results, states after each result)
        let table = [
            (Health::Up, 2, 3, "--+---", "UUUUUD"),
            (Health::Up, 2, 3, "---", "UUD"),
            (Health::Down, 2, 3, "+-++", "DDDU"),
            (Health::Down, 1, 1, "+-+", "UDU"),
            (Health::Up, 2, 0, "-", "D"),
        ];
        for (initial, rise, fall, results, want) in table {
            assert_eq!(run(initial, rise, fall, results), want, "{initial:?} rise {rise} fall {fall} {results}");
        }
    }

    #[test]
    fn reports_each_transition_once() {
        let mut st = HealthState::new(Health::Up);
        assert_eq!(st.observe(false, 2, 2), None);
        assert_eq!(st.observe(false, 2, 2), Some(Transition { from: Health::Up, to: Health::Down }));
        assert_eq!(st.observe(false, 2, 2), None);
        assert_eq!(st.observe(true, 2, 2), None);
        assert_eq!(st.observe(true, 2, 2), Some(Transition { from: Health::Down, to: Health::Up }));
    }
}
