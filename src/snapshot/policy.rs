//! Pool answers picked per query: [`pick_weighted`] draws members by weight with a small
//! generator each worker keeps; [`pick_hashed`] ranks them by rendezvous hashing of the
//! client's network, so a client keeps its members on every query and every replica. Neither
//! allocates. Which members may be picked was decided when the snapshot was built
//! (`builder::policy`).

use std::net::IpAddr;

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

/// How a hashed answer keys its clients, and each group's place in the ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashing {
    /// IPv4 prefix length hashed (the answer's ECS scope for IPv4 clients).
    pub prefix_v4: u8,
    /// IPv6 prefix length hashed.
    pub prefix_v6: u8,
    /// Per group: a stable value from its member's identity (the same on every replica and
    /// across health changes), mixed with the client's key.
    pub seeds: Box<[u64]>,
}

impl Hashing {
    /// The prefix length hashed for `client`'s family: the ECS scope of the answer.
    #[inline]
    pub fn scope(&self, client: IpAddr) -> u8 {
        if client.is_ipv4() { self.prefix_v4 } else { self.prefix_v6 }
    }

    /// The client's network (its address cut to the family's prefix) as a 64-bit key.
    #[inline]
    pub fn key(&self, client: IpAddr) -> u64 {
        match client {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let masked = if self.prefix_v4 == 0 { 0 } else { bits & (u32::MAX << (32 - self.prefix_v4 as u32)) };
                mix(0x4_0000_0000 | masked as u64)
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let masked = if self.prefix_v6 == 0 { 0 } else { bits & (u128::MAX << (128 - self.prefix_v6 as u32)) };
                mix(mix((masked >> 64) as u64 ^ 0x6) ^ masked as u64)
            }
        }
    }
}

/// A 64-bit finaliser (splitmix64's): every input bit moves every output bit.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A stable seed for a member's identity (FNV-1a, then [`mix`]): the same in every build and
/// on every platform, so replicas rank members alike.
pub fn seed(identity: &str) -> u64 {
    mix(crate::stable_hash::fnv1a(identity.bytes()))
}

/// Writes the `out.len()` groups that rank highest for the client `key` (weighted rendezvous
/// hashing: group `i` scores `weights[i] / -ln(u)`, `u` uniform from its seed and the key),
/// best first; returns how many. A group that leaves moves only the clients that ranked it
/// among their best, and they come back when it returns. No allocation.
#[inline]
pub fn pick_hashed(weights: &[u32], seeds: &[u64], key: u64, out: &mut [u16]) -> usize {
    let k = out.len().min(weights.len()).min(seeds.len());
    let equal = weights.windows(2).all(|w| w[0] == w[1]);
    let mut scores = [0f64; 64];
    let k = k.min(scores.len());
    let mut n = 0;
    for (i, (&w, &seed)) in weights.iter().zip(seeds).enumerate() {
        let h = mix(seed ^ key);
        // Equal weights rank by the hash itself (no logarithm); otherwise u in (0, 1).
        let score = if equal {
            h as f64
        } else {
            let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            w as f64 / -u.ln()
        };
        // Insertion into the best k so far, best first.
        let mut at = n;
        while at > 0 && scores[at - 1] < score {
            at -= 1;
        }
        if at >= k {
            continue;
        }
        let last = n.min(k - 1);
        for j in (at..last).rev() {
            scores[j + 1] = scores[j];
            out[j + 1] = out[j];
        }
        scores[at] = score;
        out[at] = i as u16;
        n = (n + 1).min(k);
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

    fn hashing(n: usize) -> Hashing {
        Hashing { prefix_v4: 24, prefix_v6: 56, seeds: (0..n).map(|i| seed(&format!("m{i}"))).collect() }
    }

    /// The same network gets the same members; addresses in one /24 share them.
    #[test]
    fn hashed_picks_are_stable_per_network() {
        let h = hashing(5);
        let weights = [1u32; 5];
        let pick = |ip: &str| {
            let mut out = [0u16; 2];
            let n = pick_hashed(&weights, &h.seeds, h.key(ip.parse().unwrap()), &mut out);
            assert_eq!(n, 2);
            assert_ne!(out[0], out[1]);
            out
        };
        assert_eq!(pick("198.51.100.7"), pick("198.51.100.200"));
        assert_eq!(pick("2001:db8:1:ff::1"), pick("2001:db8:1:aa::2"), "same /56");
    }

    /// Removing one of N members moves only its clients (about 1/N of them); the others
    /// keep their member. Weights are honoured: a member of weight 3 gets about 3 shares.
    #[test]
    fn hashed_picks_move_only_the_clients_of_a_lost_member() {
        let n = 5;
        let h = hashing(n);
        let key = |i: u32| h.key(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8))));
        let first = |weights: &[u32], seeds: &[u64], k: u64| {
            let mut out = [0u16; 1];
            pick_hashed(weights, seeds, k, &mut out);
            out[0]
        };
        let (all_w, all_s) = (vec![1u32; n], h.seeds.to_vec());
        // Member 2 gone: the groups are the others, in order.
        let kept: Vec<usize> = (0..n).filter(|&i| i != 2).collect();
        let (less_w, less_s): (Vec<u32>, Vec<u64>) = kept.iter().map(|&i| (1, h.seeds[i])).unzip();
        let (mut moved, mut had_2) = (0, 0);
        for c in 0..10_000 {
            let before = first(&all_w, &all_s, key(c)) as usize;
            let after = kept[first(&less_w, &less_s, key(c)) as usize];
            if before == 2 {
                had_2 += 1;
            } else if before != after {
                moved += 1;
            }
        }
        assert_eq!(moved, 0, "clients of other members kept theirs");
        assert!((1500..2500).contains(&had_2), "about 1/5 of 10,000 ranked member 2 first: {had_2}");
        let weights = [3u32, 1, 1, 1, 1];
        let heavy = (0..10_000).filter(|&c| first(&weights, &all_s, key(c)) == 0).count();
        assert!((3_000..4_500).contains(&heavy), "weight 3 of 7: about 4,286 of 10,000, got {heavy}");
    }
}
