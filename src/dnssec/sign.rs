//! Signing an RRset (RFC 4034 §3.1.8.1, §6): the canonical form of its records, the RRSIG
//! RDATA, and what a signature is kept as between uses ([`Signature`]).
//!
//! Everything here works on wire forms: names are the lower-cased, uncompressed names gslbd
//! stores, so the canonical owner and the canonical RDATA of our records are what we hold.

use crate::dns::name::Name;
use crate::dns::records::RData;
use crate::dns::types::*;
use crate::dnssec::key::{SIGNATURE_LEN, SigningKey};

/// Record type RRSIG.
pub const TYPE_RRSIG: u16 = 46;

/// Signs RRsets while a signed zone's fragments for DO queries are encoded.
pub trait RrsetSigner: Sync {
    /// Appends the RRSIG RDATAs of `set` (one per key that signs its type) to `out`, each
    /// after its length as a big-endian u16.
    fn rrsigs(&self, set: &CanonicalSet, out: &mut Vec<u8>);
}

/// A signature as kept (in the builder's store, the cache, the file beside the state file):
/// what the RRSIG RDATA needs beyond the RRset and the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// The signing key's tag.
    pub key_tag: u16,
    /// Its algorithm number.
    pub algorithm: u8,
    /// Valid from (unix seconds, RFC 1982 arithmetic on the wire).
    pub inception: u32,
    /// Valid until.
    pub expiration: u32,
    /// The signature.
    pub bytes: [u8; SIGNATURE_LEN],
}

impl Signature {
    /// Still valid for at least `margin` seconds after `now`.
    pub fn fresh(&self, now: u32, margin: u32) -> bool {
        self.inception <= now && self.expiration.saturating_sub(now) > margin
    }
}

/// When a signature made now is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Start (now minus a margin for clients whose clocks are behind).
    pub inception: u32,
    /// End.
    pub expiration: u32,
}

/// The number of labels of an owner for the RRSIG Labels field: the root and a leading `*`
/// do not count (RFC 4034 §3.1.3).
pub fn labels(owner: &[u8]) -> u8 {
    let mut n = 0u8;
    let mut i = 0;
    while let Some(&len) = owner.get(i) {
        if len == 0 {
            break;
        }
        n += 1;
        i += 1 + len as usize;
    }
    if owner.starts_with(b"\x01*") { n - 1 } else { n }
}

/// Appends the canonical RDATA of `rd` (RFC 4034 §6.2: uncompressed, names in lower case,
/// which is how gslbd holds them).
pub fn canonical_rdata(rd: &RData, out: &mut Vec<u8>) {
    rd.write_uncompressed(out);
}

/// An RRset in canonical form, ready to be signed or looked up: the owner, type and TTL,
/// and the RDATAs sorted as octet strings, duplicates removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CanonicalSet {
    /// Lower-case wire owner.
    pub owner: Vec<u8>,
    /// Type.
    pub rtype: u16,
    /// Original TTL.
    pub ttl: u32,
    /// Each RDATA's (start, end) in `data`, in canonical order.
    spans: Vec<(u32, u32)>,
    data: Vec<u8>,
}

impl CanonicalSet {
    /// Reuses the buffers for another set.
    pub fn clear(&mut self) {
        self.owner.clear();
        self.spans.clear();
        self.data.clear();
    }

    /// The set of records `rdata` at `owner`.
    pub fn of(owner: &[u8], rtype: u16, ttl: u32, rdata: &[RData]) -> CanonicalSet {
        let mut set = CanonicalSet::default();
        set.fill(owner, rtype, ttl, rdata.iter());
        set
    }

    /// Fills the set from records (clears it first).
    pub fn fill<'r>(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: impl Iterator<Item = &'r RData>) {
        self.start(owner, rtype, ttl);
        for rd in rdata {
            let start = self.data.len() as u32;
            canonical_rdata(rd, &mut self.data);
            self.spans.push((start, self.data.len() as u32));
        }
        self.sort();
    }

    /// Adds one RDATA already in canonical form (call [`CanonicalSet::sort`] after the last).
    pub fn push_rdata(&mut self, rdata: &[u8]) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(rdata);
        self.spans.push((start, self.data.len() as u32));
    }

    /// Starts a set whose RDATAs are added with [`CanonicalSet::push_rdata`].
    pub fn start(&mut self, owner: &[u8], rtype: u16, ttl: u32) {
        self.clear();
        self.owner.extend_from_slice(owner);
        self.owner.make_ascii_lowercase();
        self.rtype = rtype;
        self.ttl = ttl;
    }

    /// Puts the RDATAs in canonical order and drops duplicates.
    pub fn sort(&mut self) {
        let data = &self.data;
        let get = |&(s, e): &(u32, u32)| &data[s as usize..e as usize];
        self.spans.sort_by(|a, b| get(a).cmp(get(b)));
        self.spans.dedup_by(|a, b| get(a) == get(b));
    }

    /// The RDATAs in canonical order.
    pub fn rdatas(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().map(|&(s, e)| &self.data[s as usize..e as usize])
    }

    /// Number of distinct records.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True without records.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Feeds what identifies the set (owner, type, TTL, records) to a hasher.
    pub fn hash_into(&self, h: &mut impl std::hash::Hasher) {
        h.write(&self.owner);
        h.write_u16(self.rtype);
        h.write_u32(self.ttl);
        for r in self.rdatas() {
            h.write_u16(r.len() as u16);
            h.write(r);
        }
    }

    /// Appends the records in canonical wire form (RFC 4034 §3.1.8.1), what follows the RRSIG
    /// RDATA in the signed data.
    fn write_records(&self, out: &mut Vec<u8>) {
        for r in self.rdatas() {
            out.extend_from_slice(&self.owner);
            out.extend_from_slice(&self.rtype.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&self.ttl.to_be_bytes());
            out.extend_from_slice(&(r.len() as u16).to_be_bytes());
            out.extend_from_slice(r);
        }
    }
}

/// Appends the RRSIG RDATA for `set` signed by the zone `signer` with `sig`, the signature
/// included (the signer's name uncompressed, RFC 4034 §3.1.7).
pub fn write_rrsig_rdata(set: &CanonicalSet, signer: &Name, sig: &Signature, out: &mut Vec<u8>) {
    write_rrsig_head(set.rtype, sig.algorithm, labels(&set.owner), set.ttl, sig, signer, out);
    out.extend_from_slice(&sig.bytes);
}

/// The RRSIG RDATA up to the signature.
fn write_rrsig_head(
    rtype: u16,
    algorithm: u8,
    labels: u8,
    ttl: u32,
    sig: &Signature,
    signer: &Name,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&rtype.to_be_bytes());
    out.push(algorithm);
    out.push(labels);
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&sig.expiration.to_be_bytes());
    out.extend_from_slice(&sig.inception.to_be_bytes());
    out.extend_from_slice(&sig.key_tag.to_be_bytes());
    out.extend_from_slice(signer.as_wire());
}

/// Appends the RRSIG RDATA of `set` signed with `sig` to a list of RDATAs, after its length
/// as a big-endian u16 (the form [`RrsetSigner::rrsigs`] fills and [`rrsig_rdatas`] reads).
pub fn push_rrsig(set: &CanonicalSet, signer: &Name, sig: &Signature, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    write_rrsig_rdata(set, signer, sig, out);
    let len = (out.len() - at - 2) as u16;
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
}

/// The RDATAs of a list [`push_rrsig`] filled.
pub fn rrsig_rdatas(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = u16::from_be_bytes([*list.get(at)?, *list.get(at + 1)?]) as usize;
        let rdata = list.get(at + 2..at + 2 + len)?;
        at += 2 + len;
        Some(rdata)
    })
}

/// Length of the RRSIG RDATA of a set signed by `signer`.
pub fn rrsig_rdata_len(signer: &Name) -> usize {
    18 + signer.wire_len() + SIGNATURE_LEN
}

/// Signs `set` with `key` for the zone `signer`, valid as `validity` says. `scratch` holds
/// the signed data.
pub fn sign(
    set: &CanonicalSet,
    signer: &Name,
    key: &SigningKey,
    validity: Validity,
    scratch: &mut Vec<u8>,
) -> Signature {
    let mut sig = Signature {
        key_tag: key.tag,
        algorithm: key.dnskey.algorithm.number(),
        inception: validity.inception,
        expiration: validity.expiration,
        bytes: [0; SIGNATURE_LEN],
    };
    scratch.clear();
    write_rrsig_head(set.rtype, sig.algorithm, labels(&set.owner), set.ttl, &sig, signer, scratch);
    set.write_records(scratch);
    sig.bytes = key.sign(scratch);
    sig
}

/// Verifies `sig` over `set` with the public key of `key` (used by tests and `gslbd check`).
pub fn verify(set: &CanonicalSet, signer: &Name, key: &crate::dnssec::key::DnsKey, sig: &Signature) -> bool {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, UnparsedPublicKey};
    let mut data = Vec::new();
    write_rrsig_head(set.rtype, sig.algorithm, labels(&set.owner), set.ttl, sig, signer, &mut data);
    set.write_records(&mut data);
    match key.algorithm {
        crate::dnssec::key::Algorithm::EcdsaP256Sha256 => {
            let mut point = vec![4u8];
            point.extend_from_slice(&key.public);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(&data, &sig.bytes).is_ok()
        }
        crate::dnssec::key::Algorithm::Ed25519 => {
            UnparsedPublicKey::new(&ED25519, &key.public[..]).verify(&data, &sig.bytes).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::key::{Algorithm, FLAG_SEP, FLAG_ZONE, parse_key_file, parse_private_file};

    #[test]
    fn labels_skip_the_root_and_a_leading_wildcard() {
        let n = |s: &str| Name::parse(s, None).unwrap();
        assert_eq!(labels(n("a.b.example.").as_wire()), 3);
        assert_eq!(labels(n("*.b.example.").as_wire()), 2);
        assert_eq!(labels(Name::root().as_wire()), 0);
    }

    /// RFC 8080 §6.1's example: the MX RRset signed with its key gives the RFC's signature
    /// byte for byte (Ed25519 is deterministic).
    #[test]
    fn rfc8080_example_signature() {
        let private = "Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\nPrivateKey: ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=\n";
        let (zone, dnskey) =
            parse_key_file("example.com. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=")
                .unwrap();
        let key = SigningKey::from_parts(&dnskey, &parse_private_file(private).unwrap().private).unwrap();
        let mx = RData::Mx { preference: 10, exchange: Name::parse("mail.example.com.", None).unwrap() };
        let set = CanonicalSet::of(zone.as_wire(), TYPE_MX, 3600, &[mx]);
        let validity = Validity { inception: 1_438_207_200, expiration: 1_440_021_600 };
        let sig = sign(&set, &zone, &key, validity, &mut Vec::new());
        let want = "oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg==";
        use base64::Engine as _;
        assert_eq!(base64::engine::general_purpose::STANDARD.encode(sig.bytes), want);
        assert!(verify(&set, &zone, &dnskey, &sig));
    }

    /// A P-256 signature verifies with the key's public half, and not over other data.
    #[test]
    fn p256_signatures_verify() {
        let zone = Name::parse("gslb.example.", None).unwrap();
        let key = SigningKey::generate(Algorithm::EcdsaP256Sha256, FLAG_ZONE | FLAG_SEP).unwrap();
        let a = |o| RData::A(std::net::Ipv4Addr::new(192, 0, 2, o));
        let set = CanonicalSet::of(zone.as_wire(), TYPE_A, 60, &[a(2), a(1), a(2)]);
        assert_eq!(set.len(), 2, "duplicates dropped");
        assert_eq!(set.rdatas().next(), Some(&[192, 0, 2, 1][..]), "sorted");
        let sig = sign(&set, &zone, &key, Validity { inception: 1, expiration: 2 }, &mut Vec::new());
        assert!(verify(&set, &zone, &key.dnskey, &sig));
        let other = CanonicalSet::of(zone.as_wire(), TYPE_A, 60, &[a(3)]);
        assert!(!verify(&other, &zone, &key.dnskey, &sig));
    }
}
