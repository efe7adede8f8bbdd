//! DNSSEC online signing, the parts that do not depend on how answers are compiled: keys
//! ([`key`]: algorithms 13 and 15, DNSKEY, DS, BIND's key files), the canonical form of an
//! RRset and its RRSIG ([`sign`]), compact denial ([`denial`]), the bounded cache of
//! signatures made while answering ([`cache`]) and the per-thread signing budget
//! ([`budget`]). The zone's keys as configured are a [`ZoneKeys`].

pub mod budget;
pub mod cache;
pub mod denial;
pub mod key;
pub mod online;
pub mod sign;

use crate::dns::name::Name;
use denial::{TYPE_CDNSKEY, TYPE_CDS, TYPE_DNSKEY};
use key::{DnsKey, SigningKey};
use sign::Validity;

/// A signed zone's keys and signature timing (`[zone.dnssec]`).
#[derive(Debug)]
pub struct ZoneKeys {
    /// The zone.
    pub apex: Name,
    /// Keys that sign (`keys`): the key-signing keys sign DNSKEY, CDS and CDNSKEY, the
    /// zone-signing keys everything else; a key with the SEP flag and no zone-signing key
    /// beside it signs everything (a combined key).
    pub signing: Vec<SigningKey>,
    /// Keys only published in the DNSKEY set (`published`: a key being introduced or withdrawn).
    pub published: Vec<DnsKey>,
    /// How long a signature is valid (seconds).
    pub validity: u32,
    /// A signature with less than this left is made again (seconds).
    pub refresh: u32,
    /// Inception is this long before the signature is made (seconds), for clocks behind ours.
    pub inception_offset: u32,
    /// TTL of DNSKEY, CDS and CDNSKEY.
    pub dnskey_ttl: u32,
    /// Publish CDS and CDNSKEY for the key-signing keys (RFC 7344).
    pub cds: bool,
}

impl PartialEq for ZoneKeys {
    /// Same keys (a public key stands for its private half) and the same timing.
    fn eq(&self, other: &ZoneKeys) -> bool {
        let signing = |z: &ZoneKeys| z.signing.iter().map(|k| k.dnskey.clone()).collect::<Vec<_>>();
        (&self.apex, &self.published, self.validity, self.refresh, self.inception_offset, self.dnskey_ttl, self.cds)
            == (
                &other.apex,
                &other.published,
                other.validity,
                other.refresh,
                other.inception_offset,
                other.dnskey_ttl,
                other.cds,
            )
            && signing(self) == signing(other)
    }
}

impl ZoneKeys {
    /// The keys that sign RRsets of `rtype`.
    pub fn signers(&self, rtype: u16) -> impl Iterator<Item = &SigningKey> {
        let key_set = matches!(rtype, TYPE_DNSKEY | TYPE_CDS | TYPE_CDNSKEY);
        let has_zsk = self.signing.iter().any(|k| !k.dnskey.is_ksk());
        let has_ksk = self.signing.iter().any(|k| k.dnskey.is_ksk());
        self.signing.iter().filter(
            move |k| {
                if key_set { k.dnskey.is_ksk() || !has_ksk } else { !k.dnskey.is_ksk() || !has_zsk }
            },
        )
    }

    /// Every DNSKEY the zone publishes: the signing keys, then the published ones.
    pub fn dnskeys(&self) -> impl Iterator<Item = &DnsKey> {
        self.signing.iter().map(|k| &k.dnskey).chain(self.published.iter())
    }

    /// The validity of a signature made at `now` (unix seconds). `spread` (any number, e.g.
    /// from the RRset's digest) moves the expiration back by up to a quarter of the refresh
    /// time, so signatures made together are not all due together.
    pub fn validity_at(&self, now: u32, spread: u64) -> Validity {
        let jitter = if self.refresh >= 4 { (spread % (self.refresh as u64 / 4)) as u32 } else { 0 };
        Validity {
            inception: now.saturating_sub(self.inception_offset),
            expiration: now.saturating_add(self.validity).saturating_sub(jitter),
        }
    }
}

/// The current time in unix seconds (what signatures are timed by).
pub fn now() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}
