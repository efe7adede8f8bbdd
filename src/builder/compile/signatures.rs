//! A signed zone's signatures over its records (base and overlay), kept by the builder
//! between compiles: a compile looks each RRset up by a keyed digest of its canonical form and
//! signs only what it does not find (or finds within the refresh time of its expiry), so a
//! push or a sync signs only the RRsets it changed. After a full compile the entries it did
//! not use are dropped, so the store holds about one signature per RRset of the zone.
//!
//! The store is written beside the zone's state file (`<zone>.sigs`, after changes, at most
//! every [`SAVE_GAP`], and at stop) and read at start-up, so a restart does not sign a large
//! zone again: signatures still valid are used as they are.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::dnssec::ZoneKeys;
use crate::dnssec::key::SIGNATURE_LEN;
use crate::dnssec::key::SigningKey;
use crate::dnssec::online::{Kind, count};
use crate::dnssec::sign::{CanonicalSet, RrsetSigner, Signature, push_rrsig, sign};

/// Shortest time between two writes of a zone's signatures.
pub const SAVE_GAP: std::time::Duration = std::time::Duration::from_secs(30);

/// The file's first bytes.
const MAGIC: &[u8; 8] = b"GSLBSIG1";
/// Bytes per entry: digest, key tag, algorithm, inception, expiration, signature.
const ENTRY_LEN: usize = 16 + 2 + 1 + 4 + 4 + SIGNATURE_LEN;

/// The signatures file of a zone: `<dir>/<zone>.sigs`.
pub fn path(dir: &std::path::Path, apex: &crate::dns::name::Name) -> std::path::PathBuf {
    crate::elchi::state_file::path(dir, apex).with_extension("sigs")
}

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
    /// Signatures made (a write is due when this moved since the last).
    made: AtomicU64,
    /// `made` when the store was last written (or read).
    saved: AtomicU64,
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
            made: AtomicU64::new(0),
            saved: AtomicU64::new(0),
        }
    }

    /// Signatures were made since the store was last written.
    pub fn unsaved(&self) -> bool {
        self.made.load(Ordering::Relaxed) != self.saved.load(Ordering::Relaxed)
    }

    /// The store as its file holds it (a consistent copy: taken under the lock).
    fn encode(&self) -> (Vec<u8>, u64) {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let made = self.made.load(Ordering::Relaxed);
        let mut out = Vec::with_capacity(40 + entries.len() * ENTRY_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.digest_key.0.to_le_bytes());
        out.extend_from_slice(&self.digest_key.1.to_le_bytes());
        out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (id, k) in entries.iter() {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&k.sig.key_tag.to_le_bytes());
            out.push(k.sig.algorithm);
            out.extend_from_slice(&k.sig.inception.to_le_bytes());
            out.extend_from_slice(&k.sig.expiration.to_le_bytes());
            out.extend_from_slice(&k.sig.bytes);
        }
        drop(entries);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        (out, made)
    }

    /// Writes the store to `path` (a temporary file, synced, then renamed).
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let (bytes, made) = self.encode();
        crate::config::file::write_atomic(path, &bytes)?;
        self.saved.store(made, Ordering::Relaxed);
        Ok(())
    }

    /// Reads a store written by [`ZoneSignatures::save`] for `keys`; `None` without a file.
    /// Entries already expired are left out; entries of keys that no longer sign are never
    /// looked up and go at the first full compile.
    pub fn load(path: &std::path::Path, keys: Arc<ZoneKeys>) -> Result<Option<ZoneSignatures>, String> {
        let bytes = match crate::config::file::read_regular(path, crate::config::file::ZONE_FILE_MAX) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let bad = |why: &str| format!("{}: {why}", path.display());
        if bytes.len() < 36 || &bytes[..8] != MAGIC {
            return Err(bad("not a gslbd signatures file"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(bad("checksum mismatch (torn or damaged)"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let count = u64_at(24) as usize;
        if body.len() != 32 + count * ENTRY_LEN {
            return Err(bad("length does not match its entry count"));
        }
        let store = ZoneSignatures::new(keys);
        let store = ZoneSignatures { digest_key: (u64_at(8), u64_at(16)), ..store };
        let now = crate::dnssec::now();
        let mut entries = HashMap::with_capacity(count);
        let mut earliest = u32::MAX;
        for e in body[32..].chunks_exact(ENTRY_LEN) {
            let u32_at = |at: usize| u32::from_le_bytes(e[at..at + 4].try_into().expect("4 bytes"));
            let sig = Signature {
                key_tag: u16::from_le_bytes([e[16], e[17]]),
                algorithm: e[18],
                inception: u32_at(19),
                expiration: u32_at(23),
                bytes: e[27..27 + SIGNATURE_LEN].try_into().expect("a signature"),
            };
            if sig.expiration <= now {
                continue;
            }
            earliest = earliest.min(sig.expiration);
            entries.insert(u128::from_le_bytes(e[..16].try_into().expect("16 bytes")), Kept { sig, used: 0 });
        }
        *store.entries.lock().unwrap_or_else(|p| p.into_inner()) = entries;
        store.earliest.store(earliest, Ordering::Relaxed);
        Ok(Some(store))
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
            made: AtomicU64::new(old.made.load(Ordering::Relaxed) + 1),
            saved: AtomicU64::new(0),
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
                self.store.made.fetch_add(1, Ordering::Relaxed);
                let mut entries = self.store.entries.lock().unwrap_or_else(|p| p.into_inner());
                entries.insert(id, Kept { sig, used: self.generation });
                self.store.earliest.fetch_min(sig.expiration, Ordering::Relaxed);
                sig
            });
            push_rrsig(set, &keys.apex, &sig, out);
        }
    }
}
