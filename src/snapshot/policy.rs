//! Weighted pool answers drawn per query: a small generator each worker keeps and
//! [`pick_weighted`], which draws members without allocating. Which members may be drawn
//! was decided when the snapshot was built (`builder::policy`).

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
