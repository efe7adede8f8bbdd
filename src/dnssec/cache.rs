//! The bounded cache of signatures made while answering (compact denials, answers drawn or
//! chosen per query): keyed by a keyed 128-bit digest of what was signed, it evicts single
//! entries (CLOCK-Pro, `quick_cache`) and is never emptied at once, so a full cache costs
//! one signature per new entry, not a burst of re-signing.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::dnssec::sign::Signature;

/// Counts evictions.
#[derive(Clone, Default)]
struct Evictions(Arc<AtomicU64>);

impl quick_cache::Lifecycle<u128, Signature> for Evictions {
    type RequestState = ();

    fn on_evict(&self, _: &mut (), _: u128, _: Signature) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The key is already a keyed digest: its low 64 bits are the hash.
#[derive(Clone, Default)]
struct Identity;

impl BuildHasher for Identity {
    type Hasher = IdentityHasher;

    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

/// See [`Identity`].
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// The signature cache (one per process, shared by every zone and worker).
pub struct SigCache {
    cache: quick_cache::sync::Cache<u128, Signature, quick_cache::UnitWeighter, Identity, Evictions>,
    evictions: Evictions,
    hits: AtomicU64,
    misses: AtomicU64,
    /// The digest key: random per process, so nobody can aim names at a collision.
    key: (u64, u64),
}

impl std::fmt::Debug for SigCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigCache({} of {})", self.cache.len(), self.cache.capacity())
    }
}

/// What `/metrics` reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries held.
    pub entries: u64,
    /// Most entries.
    pub capacity: u64,
    /// Lookups that found a usable signature.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
}

impl SigCache {
    /// A cache of at most `entries` signatures.
    pub fn new(entries: usize) -> SigCache {
        let evictions = Evictions::default();
        let entries = entries.max(16);
        let cache = quick_cache::sync::Cache::with(
            entries,
            entries as u64,
            quick_cache::UnitWeighter,
            Identity,
            evictions.clone(),
        );
        let mut seed = [0u8; 16];
        aws_lc_rs::rand::fill(&mut seed).expect("system randomness");
        let key = (
            u64::from_le_bytes(seed[..8].try_into().expect("8")),
            u64::from_le_bytes(seed[8..].try_into().expect("8")),
        );
        SigCache { cache, evictions, hits: AtomicU64::new(0), misses: AtomicU64::new(0), key }
    }

    /// Changes the most entries held (a reload); entries are evicted singly to fit.
    pub fn resize(&self, entries: usize) {
        let entries = entries.max(16) as u64;
        if entries != self.cache.capacity() {
            self.cache.set_capacity(entries);
        }
    }

    /// A digest hasher for this cache's keys.
    pub fn hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.key.0, self.key.1)
    }

    /// The key of what `hasher` was fed.
    pub fn key_of(hasher: &SipHasher13) -> u128 {
        hasher.finish128().as_u128()
    }

    /// A signature still fresh at `now` for `margin` seconds, counted as a lookup.
    #[cfg(test)]
    fn get(&self, key: u128, now: u32, margin: u32) -> Option<Signature> {
        match self.cache.get(&key).filter(|s| s.fresh(now, margin)) {
            Some(s) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(s)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The signature under `key`, however close to its expiry, without counting a lookup.
    pub fn peek(&self, key: u128) -> Option<Signature> {
        self.cache.get(&key)
    }

    /// Counts a lookup ([`SigCache::peek`] callers decide what a hit is).
    pub fn count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps a new signature.
    pub fn insert(&self, key: u128, sig: Signature) {
        self.cache.insert(key, sig);
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.cache.len() as u64,
            capacity: self.cache.capacity(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.0.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(n: u32) -> Signature {
        Signature { key_tag: 1, algorithm: 13, inception: 0, expiration: n, bytes: [0; 64] }
    }

    /// Past its size the cache evicts entries one at a time: it stays near full, never empty.
    #[test]
    fn a_full_cache_evicts_single_entries() {
        let cache = SigCache::new(1000);
        for i in 0..5000u32 {
            let mut h = cache.hasher();
            h.write_u32(i);
            cache.insert(SigCache::key_of(&h), sig(10_000));
            assert!(cache.stats().entries >= (i as u64 + 1).min(500), "entry {i}: {:?}", cache.stats());
        }
        let s = cache.stats();
        assert!(s.entries <= 1000 && s.entries >= 900, "{s:?}");
        assert!(s.evictions >= 4000, "{s:?}");
    }

    /// A signature too close to its expiry is a miss.
    #[test]
    fn stale_signatures_are_misses() {
        let cache = SigCache::new(100);
        cache.insert(7, sig(1000));
        assert!(cache.get(7, 100, 60).is_some());
        assert!(cache.get(7, 990, 60).is_none());
        assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
    }
}
