//! A signed zone's signatures over its records (base and overlay), kept by the builder
//! between compiles: a compile looks each RRset up by a keyed digest of its canonical form and
//! signs only what it does not find (or finds within the refresh time of its expiry), so a
//! push or a sync signs only the RRsets it changed. After a full compile the entries it did
//! not use are dropped, so the store holds about one signature per RRset of the zone.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::dnssec::ZoneKeys;
use crate::dnssec::key::SigningKey;
use crate::dnssec::online::{Kind, count};
use crate::dnssec::sign::{CanonicalSet, RrsetSigner, Signature, sign, write_rrsig_rdata};

/// One kept signature and the last compile that used it.
#[derive(Debug, Clone, Copy)]
struct Kept {
    sig: Signature,
    used: u32,
}

/// A zone's kept signatures.
#[derive(Debug)]
pub struct ZoneSignatures {
    keys: Arc<ZoneKeys>,
    /// The digest key (random per store; a persisted store keeps its own).
    digest_key: (u64, u64),
    entries: Mutex<HashMap<u128, Kept>>,
    /// Numbers compiles, so entries know which compile last used them.
    generation: AtomicU32,
    /// The earliest expiration of a kept signature (`u32::MAX`: none).
    earliest: AtomicU32,
    /// The next compile renews what is due within a refresh time and a quarter.
    renewing: std::sync::atomic::AtomicBool,
}

impl ZoneSignatures {
    /// An empty store for `keys`.
    pub fn new(keys: Arc<ZoneKeys>) -> ZoneSignatures {
        let mut seed = [0u8; 16];
        aws_lc_rs::rand::fill(&mut seed).expect("system randomness");
        let half = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        ZoneSignatures {
            keys,
            digest_key: (half(&seed[..8]), half(&seed[8..])),
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU32::new(0),
            earliest: AtomicU32::new(u32::MAX),
            renewing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A store for new `keys` (a reload) that keeps what `old` holds: its signatures by keys
    /// that still sign stay usable (the digest covers the key), so publishing or withdrawing
    /// a key re-signs nothing.
    pub fn carried_over(old: &ZoneSignatures, keys: Arc<ZoneKeys>) -> ZoneSignatures {
        let entries = old.entries.lock().unwrap_or_else(|p| p.into_inner()).clone();
        ZoneSignatures {
            keys,
            digest_key: old.digest_key,
            entries: Mutex::new(entries),
            generation: AtomicU32::new(old.generation.load(Ordering::Relaxed)),
            earliest: AtomicU32::new(old.earliest.load(Ordering::Relaxed)),
            renewing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The keys the store signs with.
    pub fn keys(&self) -> &Arc<ZoneKeys> {
        &self.keys
    }

    /// A signer for one compile (its entries are marked with the compile's generation).
    pub fn signer(&self) -> StoreSigner<'_> {
        let refresh = self.keys.refresh;
        let margin = if self.renewing.swap(false, Ordering::Relaxed) { refresh + refresh / 4 } else { refresh };
        StoreSigner {
            store: self,
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            now: crate::dnssec::now(),
            margin,
        }
    }

    /// The next compile renews every signature due within a refresh time and a quarter, so
    /// that signatures made together (their expirations spread over a quarter of the refresh
    /// time) are renewed together.
    pub fn renew_next(&self) {
        self.renewing.store(true, Ordering::Relaxed);
    }

    /// Drops every entry no compile from `generation` on used (call after a full compile
    /// with that compile's generation).
    pub fn prune(&self, generation: u32) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, k| k.used >= generation);
        let keep = entries.len() * 5 / 4;
        entries.shrink_to(keep);
        let earliest = entries.values().map(|k| k.sig.expiration).min().unwrap_or(u32::MAX);
        self.earliest.store(earliest, Ordering::Relaxed);
    }

    /// Number of signatures kept.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The earliest expiration of a kept signature (unix seconds).
    pub fn earliest_expiry(&self) -> Option<u32> {
        let e = self.earliest.load(Ordering::Relaxed);
        (e != u32::MAX).then_some(e)
    }

    fn digest(&self, key: &SigningKey, set: &CanonicalSet) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.digest_key.0, self.digest_key.1);
        h.write_u16(key.tag);
        h.write_u8(key.dnskey.algorithm.number());
        set.hash_into(&mut h);
        h.finish128().as_u128()
    }
}

/// [`ZoneSignatures`] during one compile.
pub struct StoreSigner<'a> {
    store: &'a ZoneSignatures,
    generation: u32,
    now: u32,
    /// A kept signature with less than this left is made again.
    margin: u32,
}

impl StoreSigner<'_> {
    /// This compile's generation (for [`ZoneSignatures::prune`]).
    pub fn generation(&self) -> u32 {
        self.generation
    }
}

impl RrsetSigner for StoreSigner<'_> {
    fn rrsigs(&self, set: &CanonicalSet, out: &mut Vec<u8>) {
        let keys = &self.store.keys;
        for key in keys.signers(set.rtype) {
            let id = self.store.digest(key, set);
            let kept = {
                let mut entries = self.store.entries.lock().unwrap_or_else(|p| p.into_inner());
                match entries.get_mut(&id) {
                    Some(k) if k.sig.fresh(self.now, self.margin) => {
                        k.used = self.generation;
                        Some(k.sig)
                    }
                    _ => None,
                }
            };
            let sig = kept.unwrap_or_else(|| {
                let sig = sign(set, &keys.apex, key, keys.validity_at(self.now, id as u64), &mut Vec::new());
                count(Kind::Records);
                let mut entries = self.store.entries.lock().unwrap_or_else(|p| p.into_inner());
                entries.insert(id, Kept { sig, used: self.generation });
                self.store.earliest.fetch_min(sig.expiration, Ordering::Relaxed);
                sig
            });
            let at = out.len();
            out.extend_from_slice(&[0, 0]);
            write_rrsig_rdata(set, &keys.apex, &sig, out);
            let len = (out.len() - at - 2) as u16;
            out[at..at + 2].copy_from_slice(&len.to_be_bytes());
        }
    }
}
