//! Signatures for what is decided after the zone was compiled: the dynamic layer's answers
//! (pools, geo pools: signed by the builder when they change) and what the query path
//! composes per question (compact denials, weighted draws, geo names' answers, wildcard
//! expansions). All of them go through the bounded [`SigCache`], so an answer seen before,
//! whatever health or location brought it back, costs no signature.

use std::hash::Hasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dnssec::ZoneKeys;
use crate::dnssec::cache::SigCache;
use crate::dnssec::key::SigningKey;
use crate::dnssec::sign::{CanonicalSet, RrsetSigner, Signature, push_rrsig, sign};

/// Who asked for a signature, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The builder, for a zone's records (base and overlay).
    Records,
    /// The builder, for the dynamic layer's answers.
    Dynamic,
    /// The query path, for a compact denial.
    Denial,
    /// The query path, for an answer drawn or chosen per query.
    Answer,
}

impl Kind {
    /// Every kind, in counter order.
    pub const ALL: [Kind; 4] = [Kind::Records, Kind::Dynamic, Kind::Denial, Kind::Answer];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Records => "records",
            Kind::Dynamic => "dynamic",
            Kind::Denial => "denial",
            Kind::Answer => "answer",
        }
    }
}

/// Signatures made, by [`Kind`] (process-wide; `/metrics` reads them).
pub static MADE: [AtomicU64; 4] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
/// Signatures the query path needed but its budget did not allow.
pub static OVER_BUDGET: AtomicU64 = AtomicU64::new(0);
/// DO queries answered TC because the budget did not allow their signature.
pub static OVER_BUDGET_ANSWERS: AtomicU64 = AtomicU64::new(0);

/// When the budget was last said to be spent (unix seconds).
static OVER_BUDGET_LOGGED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Counts a signature refused by the budget, and says so at most once every 10 seconds.
fn over_budget(budget: u32) {
    let total = OVER_BUDGET.fetch_add(1, Ordering::Relaxed) + 1;
    let now = crate::dnssec::now();
    let last = OVER_BUDGET_LOGGED.load(Ordering::Relaxed);
    if now >= last + 10 && OVER_BUDGET_LOGGED.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        tracing::warn!(
            per_thread_per_second = budget,
            refused_total = total,
            "signing budget spent: DO queries that need a new signature (mostly names that do not exist) are answered TC over UDP and SERVFAIL over TCP until it refills; cached answers are unaffected"
        );
    }
}

/// Counts a signature made.
pub fn count(kind: Kind) {
    MADE[kind as usize].fetch_add(1, Ordering::Relaxed);
}

/// Where a signature in an answer came from (`/explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Made when the zone was compiled, part of the pre-encoded answer.
    Presigned,
    /// Found in the cache.
    Cache,
    /// Made for this answer.
    Fresh,
}

impl Origin {
    /// The label in `/explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Presigned => "pre-signed",
            Origin::Cache => "cache",
            Origin::Fresh => "fresh",
        }
    }
}

/// A signed zone's signer for what is decided after compile time.
#[derive(Debug)]
pub struct OnlineSigner {
    /// The earliest expiration of a signature the builder took for the dynamic layer since
    /// [`OnlineSigner::take_earliest`] was last called (`u32::MAX`: none).
    pub earliest: std::sync::atomic::AtomicU32,
    /// The zone's keys.
    pub keys: Arc<ZoneKeys>,
    /// The process's signature cache.
    pub cache: Arc<SigCache>,
    /// Fresh signatures per second per answering thread (`[dnssec] sign_budget`).
    pub budget: u32,
    /// TTL of compact-denial NSEC records: min(SOA TTL, SOA minimum) (RFC 9077).
    pub negative_ttl: u32,
}

impl PartialEq for OnlineSigner {
    fn eq(&self, other: &OnlineSigner) -> bool {
        self.keys == other.keys
            && Arc::ptr_eq(&self.cache, &other.cache)
            && (self.budget, self.negative_ttl) == (other.budget, other.negative_ttl)
    }
}

impl OnlineSigner {
    /// A signer for `keys` through `cache`.
    pub fn new(keys: Arc<ZoneKeys>, cache: Arc<SigCache>, budget: u32, negative_ttl: u32) -> OnlineSigner {
        OnlineSigner { earliest: std::sync::atomic::AtomicU32::new(u32::MAX), keys, cache, budget, negative_ttl }
    }

    /// The earliest expiration noted since the last call, and starts over.
    pub fn take_earliest(&self) -> Option<u32> {
        let e = self.earliest.swap(u32::MAX, Ordering::Relaxed);
        (e != u32::MAX).then_some(e)
    }

    /// The cache key of `set` signed by `key`.
    fn key_of(&self, key: &SigningKey, set: &CanonicalSet) -> u128 {
        let mut h = self.cache.hasher();
        h.write(self.keys.apex.as_wire());
        h.write_u16(key.tag);
        set.hash_into(&mut h);
        SigCache::key_of(&h)
    }

    /// The signature of `set` by `key`: from the cache while it has more than the refresh
    /// time left, else made now. A caller on the query path passes `budgeted`: past this
    /// thread's budget nothing is made, and a cached signature due for renewal but valid for
    /// another hour (or half the refresh time, if shorter) still serves; else `None`.
    pub fn signature(
        &self,
        key: &SigningKey,
        set: &CanonicalSet,
        kind: Kind,
        budgeted: bool,
    ) -> Option<(Signature, Origin)> {
        let now = crate::dnssec::now();
        let id = self.key_of(key, set);
        let cached = self.cache.peek(id).filter(|s| s.fresh(now, 0));
        if let Some(sig) = cached.filter(|s| s.fresh(now, self.keys.refresh)) {
            self.cache.count(true);
            return Some((sig, Origin::Cache));
        }
        if budgeted && !crate::dnssec::budget::take(self.budget) {
            if let Some(sig) = cached.filter(|s| s.fresh(now, (self.keys.refresh / 2).min(3600))) {
                self.cache.count(true);
                return Some((sig, Origin::Cache));
            }
            self.cache.count(false);
            over_budget(self.budget);
            return None;
        }
        self.cache.count(false);
        let mut scratch = Vec::new();
        let sig = sign(set, &self.keys.apex, key, self.keys.validity_at(now, id as u64), &mut scratch);
        self.cache.insert(id, sig);
        count(kind);
        Some((sig, Origin::Fresh))
    }

    /// Appends the RRSIG RDATAs of `set` for the query path (each after its u16 length);
    /// `None` when the budget ran out (nothing usable was appended). The origin is the
    /// freshest any of them had.
    pub fn answer_rrsigs(&self, set: &CanonicalSet, kind: Kind, out: &mut Vec<u8>) -> Option<Origin> {
        let mut origin = Origin::Cache;
        for key in self.keys.signers(set.rtype) {
            let (sig, o) = self.signature(key, set, kind, true)?;
            if o == Origin::Fresh {
                origin = Origin::Fresh;
            }
            push_rrsig(set, &self.keys.apex, &sig, out);
        }
        Some(origin)
    }
}

/// The builder's use, for the dynamic layer: never budgeted.
impl RrsetSigner for OnlineSigner {
    fn rrsigs(&self, set: &CanonicalSet, out: &mut Vec<u8>) {
        for key in self.keys.signers(set.rtype) {
            let (sig, _) = self.signature(key, set, Kind::Dynamic, false).expect("unbudgeted signing always signs");
            self.earliest.fetch_min(sig.expiration, Ordering::Relaxed);
            push_rrsig(set, &self.keys.apex, &sig, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::name::Name;
    use crate::dnssec::key::{Algorithm, FLAG_SEP, FLAG_ZONE};

    fn signer(budget: u32) -> OnlineSigner {
        let apex = Name::parse("example.test.", None).unwrap();
        let keys = ZoneKeys {
            apex,
            signing: vec![SigningKey::generate(Algorithm::Ed25519, FLAG_ZONE | FLAG_SEP).unwrap()],
            published: Vec::new(),
            validity: 14 * 86_400,
            refresh: 7 * 86_400,
            inception_offset: 3600,
            dnskey_ttl: 3600,
            cds: true,
        };
        OnlineSigner::new(Arc::new(keys), Arc::new(SigCache::new(100)), budget, 60)
    }

    /// Past the budget: a cached signature due for renewal but valid for hours still serves; one
    /// about to expire does not; nothing is made.
    #[test]
    fn past_the_budget_a_signature_due_for_renewal_still_serves() {
        std::thread::spawn(|| {
            let s = signer(0);
            let key = &s.keys.signing[0];
            let set = CanonicalSet::of(b"\x01a\x07example\x04test\x00", 1, 60, &[]);
            assert!(s.signature(key, &set, Kind::Answer, true).is_none(), "nothing cached, nothing made");
            let now = crate::dnssec::now();
            let id = s.key_of(key, &set);
            let due = |expires_in: u32| Signature {
                key_tag: key.tag,
                algorithm: 15,
                inception: now - 3600,
                expiration: now + expires_in,
                bytes: [0; 64],
            };
            s.cache.insert(id, due(86_400));
            assert_eq!(s.signature(key, &set, Kind::Answer, true).map(|(_, o)| o), Some(Origin::Cache));
            s.cache.insert(id, due(600));
            assert!(s.signature(key, &set, Kind::Answer, true).is_none());
            // Unbudgeted (the builder): made anew.
            let (fresh, origin) = s.signature(key, &set, Kind::Dynamic, false).unwrap();
            assert_eq!(origin, Origin::Fresh);
            assert!(fresh.expiration > now + 7 * 86_400);
        })
        .join()
        .unwrap();
    }
}
