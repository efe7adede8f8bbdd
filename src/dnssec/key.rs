//! DNSSEC keys: the two algorithms gslbd signs with (ECDSAP256SHA256, 13; ED25519, 15), the
//! DNSKEY record and its key tag, DS digests for the parent, and BIND's key files
//! (`K<zone>+<alg>+<tag>.key` and `.private`), which `dnssec-keygen`, `ldns-keygen` and Knot's
//! `keymgr` write and `gslbd dnssec keygen` writes too.

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::dns::name::Name;

/// DNSKEY flag: a zone key (RFC 4034 §2.1.1); every key we use has it.
pub const FLAG_ZONE: u16 = 0x0100;
/// DNSKEY flag: secure entry point, a key-signing key (RFC 3757).
pub const FLAG_SEP: u16 = 0x0001;
/// DNSKEY protocol field, always 3.
pub const PROTOCOL: u8 = 3;
/// Length of a signature in both algorithms (P-256's r and s, 32 bytes each; Ed25519's 64).
pub const SIGNATURE_LEN: usize = 64;

/// A signing algorithm gslbd supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256 (RFC 6605), algorithm 13.
    EcdsaP256Sha256,
    /// Ed25519 (RFC 8080), algorithm 15.
    Ed25519,
}

impl Algorithm {
    /// The IANA number.
    pub fn number(self) -> u8 {
        match self {
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::Ed25519 => 15,
        }
    }

    /// The algorithm with this IANA number, when supported.
    pub fn from_number(n: u8) -> Option<Algorithm> {
        match n {
            13 => Some(Algorithm::EcdsaP256Sha256),
            15 => Some(Algorithm::Ed25519),
            _ => None,
        }
    }

    /// The mnemonic (as in BIND's files and the config).
    pub fn mnemonic(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Algorithm::Ed25519 => "ED25519",
        }
    }

    /// Reads a number or a mnemonic (case-insensitive).
    pub fn parse(text: &str) -> Option<Algorithm> {
        let t = text.trim();
        if let Ok(n) = t.parse::<u8>() {
            return Algorithm::from_number(n);
        }
        [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519].into_iter().find(|a| a.mnemonic().eq_ignore_ascii_case(t))
    }

    /// Length of the public key in a DNSKEY.
    fn public_len(self) -> usize {
        match self {
            Algorithm::EcdsaP256Sha256 => 64,
            Algorithm::Ed25519 => 32,
        }
    }
}

/// A DNSKEY record's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsKey {
    /// Flags: [`FLAG_ZONE`], plus [`FLAG_SEP`] for a key-signing key.
    pub flags: u16,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The public key as DNSKEY carries it (P-256: x and y; Ed25519: the 32 bytes).
    pub public: Box<[u8]>,
}

impl DnsKey {
    /// The RDATA: flags, protocol, algorithm, public key.
    pub fn rdata(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.public.len());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.push(PROTOCOL);
        out.push(self.algorithm.number());
        out.extend_from_slice(&self.public);
        out
    }

    /// The key tag (RFC 4034 Appendix B).
    pub fn tag(&self) -> u16 {
        key_tag(&self.rdata())
    }

    /// A key-signing key (the SEP flag): it signs the DNSKEY set and is what the parent's DS
    /// points at.
    pub fn is_ksk(&self) -> bool {
        self.flags & FLAG_SEP != 0
    }

    /// DS RDATA for this key at `owner` with digest type 2 (SHA-256) or 4 (SHA-384).
    pub fn ds(&self, owner: &Name, digest_type: u8) -> Vec<u8> {
        let algorithm = match digest_type {
            4 => &aws_lc_rs::digest::SHA384,
            _ => &aws_lc_rs::digest::SHA256,
        };
        let mut ctx = aws_lc_rs::digest::Context::new(algorithm);
        ctx.update(owner.as_wire());
        ctx.update(&self.rdata());
        let digest = ctx.finish();
        let mut out = Vec::with_capacity(4 + digest.as_ref().len());
        out.extend_from_slice(&self.tag().to_be_bytes());
        out.push(self.algorithm.number());
        out.push(if digest_type == 4 { 4 } else { 2 });
        out.extend_from_slice(digest.as_ref());
        out
    }

    /// The DNSKEY in presentation form: `257 3 13 <base64>`.
    pub fn presentation(&self) -> String {
        format!("{} {} {} {}", self.flags, PROTOCOL, self.algorithm.number(), BASE64.encode(&self.public))
    }
}

/// The key tag of a DNSKEY RDATA (RFC 4034 Appendix B).
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut ac: u32 = 0;
    for (i, &b) in rdata.iter().enumerate() {
        ac += if i & 1 == 1 { b as u32 } else { (b as u32) << 8 };
    }
    ac += (ac >> 16) & 0xffff;
    (ac & 0xffff) as u16
}

/// The private half.
enum Private {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A key that signs: its DNSKEY, its tag and the private key.
pub struct SigningKey {
    /// The public record.
    pub dnskey: DnsKey,
    /// Its key tag.
    pub tag: u16,
    private: Private,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        write!(f, "SigningKey({} {} {})", self.tag, self.dnskey.algorithm.mnemonic(), self.dnskey.flags)
    }
}

/// Why a key could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The files say different things, or hold something malformed.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> KeyError {
    KeyError::Invalid(message.into())
}

impl SigningKey {
    /// A new key pair (`flags`: [`FLAG_ZONE`], with [`FLAG_SEP`] for a KSK or CSK).
    pub fn generate(algorithm: Algorithm, flags: u16) -> Result<SigningKey, KeyError> {
        let private = match algorithm {
            Algorithm::EcdsaP256Sha256 => Private::Ecdsa(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| invalid("key generation failed"))?,
            ),
            Algorithm::Ed25519 => {
                Private::Ed25519(Ed25519KeyPair::generate().map_err(|_| invalid("key generation failed"))?)
            }
        };
        Ok(SigningKey::with(flags, algorithm, private))
    }

    fn with(flags: u16, algorithm: Algorithm, private: Private) -> SigningKey {
        let public: Box<[u8]> = match &private {
            // Uncompressed point: 0x04, x, y; DNSKEY carries x and y (RFC 6605 §4).
            Private::Ecdsa(p) => p.public_key().as_ref()[1..].into(),
            Private::Ed25519(p) => p.public_key().as_ref().into(),
        };
        let dnskey = DnsKey { flags, algorithm, public };
        SigningKey { tag: dnskey.tag(), dnskey, private }
    }

    /// The key of a DNSKEY and its private key bytes (P-256: the scalar, big-endian;
    /// Ed25519: the seed), checked to belong together.
    pub fn from_parts(dnskey: &DnsKey, private: &[u8]) -> Result<SigningKey, KeyError> {
        if dnskey.public.len() != dnskey.algorithm.public_len() {
            return Err(invalid(format!(
                "{} public key is {} bytes, expected {}",
                dnskey.algorithm.mnemonic(),
                dnskey.public.len(),
                dnskey.algorithm.public_len()
            )));
        }
        let mismatch = || invalid("the private key does not belong to the public key (DNSKEY)");
        let private = match dnskey.algorithm {
            Algorithm::EcdsaP256Sha256 => {
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&dnskey.public);
                Private::Ecdsa(
                    EcdsaKeyPair::from_private_key_and_public_key(&ECDSA_P256_SHA256_FIXED_SIGNING, private, &point)
                        .map_err(|_| mismatch())?,
                )
            }
            Algorithm::Ed25519 => Private::Ed25519(
                Ed25519KeyPair::from_seed_and_public_key(private, &dnskey.public).map_err(|_| mismatch())?,
            ),
        };
        let key = SigningKey::with(dnskey.flags, dnskey.algorithm, private);
        if key.dnskey.public != dnskey.public {
            return Err(mismatch());
        }
        Ok(key)
    }

    /// Signs `message` (the RRSIG RDATA without its signature, then the canonical RRset).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        match &self.private {
            Private::Ecdsa(p) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let sig = p.sign(&rng, message).expect("P-256 signing does not fail");
                out.copy_from_slice(sig.as_ref());
            }
            Private::Ed25519(p) => out.copy_from_slice(p.sign(message).as_ref()),
        }
        out
    }

    /// The private key bytes as BIND's `.private` holds them.
    fn private_bytes(&self) -> Vec<u8> {
        match &self.private {
            Private::Ecdsa(p) => p.private_key().as_be_bytes().map(|b| b.as_ref().to_vec()).unwrap_or_default(),
            Private::Ed25519(p) => {
                p.seed().and_then(|s| s.as_be_bytes()).map(|b| b.as_ref().to_vec()).unwrap_or_default()
            }
        }
    }

    /// BIND's file name stem: `K<zone>.+<alg>+<tag>`.
    pub fn file_stem(&self, zone: &Name) -> String {
        format!("K{}+{:03}+{:05}", zone, self.dnskey.algorithm.number(), self.tag)
    }

    /// The `.key` file: a comment and the DNSKEY record.
    pub fn key_file(&self, zone: &Name, created: &str) -> String {
        let role = if self.dnskey.is_ksk() { "key-signing" } else { "zone-signing" };
        format!(
            "; This is a {role} key, keyid {}, for {zone}\n; Created: {created}\n{zone} IN DNSKEY {}\n",
            self.tag,
            self.dnskey.presentation()
        )
    }

    /// The `.private` file (format v1.3).
    pub fn private_file(&self, created: &str) -> String {
        let alg = self.dnskey.algorithm;
        format!(
            "Private-key-format: v1.3\nAlgorithm: {} ({})\nPrivateKey: {}\nCreated: {created}\nPublish: {created}\nActivate: {created}\n",
            alg.number(),
            alg.mnemonic(),
            BASE64.encode(self.private_bytes())
        )
    }
}

/// A `.key` file read: the owner and the DNSKEY.
pub fn parse_key_file(text: &str) -> Result<(Name, DnsKey), KeyError> {
    let line = text
        .lines()
        .map(|l| l.split(';').next().unwrap_or("").trim())
        .find(|l| !l.is_empty())
        .ok_or_else(|| invalid("no DNSKEY record"))?;
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let at = tokens
        .iter()
        .position(|t| t.eq_ignore_ascii_case("DNSKEY"))
        .ok_or_else(|| invalid(format!("not a DNSKEY record: {line:?}")))?;
    // Between the owner and the type: an optional TTL and an optional class.
    for t in &tokens[1..at] {
        if !(t.eq_ignore_ascii_case("IN") || t.parse::<u32>().is_ok()) {
            return Err(invalid(format!("unexpected {t:?} before DNSKEY")));
        }
    }
    let owner = Name::parse(tokens[0], None).map_err(|e| invalid(format!("owner: {e}")))?;
    let [flags, protocol, alg] = [1, 2, 3].map(|i| tokens.get(at + i).copied().unwrap_or(""));
    let flags: u16 = flags.parse().map_err(|_| invalid(format!("flags {flags:?}")))?;
    if protocol != "3" {
        return Err(invalid(format!("protocol {protocol:?}, expected 3")));
    }
    let algorithm =
        Algorithm::parse(alg).ok_or_else(|| invalid(format!("algorithm {alg:?} (13 or 15 are supported)")))?;
    if flags & FLAG_ZONE == 0 {
        return Err(invalid("not a zone key (flags without 256)"));
    }
    let b64: String = tokens[(at + 4).min(tokens.len())..].concat();
    let public = BASE64.decode(b64.as_bytes()).map_err(|e| invalid(format!("public key: {e}")))?;
    if public.len() != algorithm.public_len() {
        return Err(invalid(format!(
            "{} public key is {} bytes, expected {}",
            algorithm.mnemonic(),
            public.len(),
            algorithm.public_len()
        )));
    }
    Ok((owner, DnsKey { flags, algorithm, public: public.into() }))
}

/// The timing lines of a `.private` file (unix seconds), where present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// `Publish:`.
    pub publish: Option<u64>,
    /// `Activate:`.
    pub activate: Option<u64>,
    /// `Inactive:`.
    pub inactive: Option<u64>,
    /// `Delete:`.
    pub delete: Option<u64>,
}

/// A `.private` file read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateFile {
    /// `Algorithm:`.
    pub algorithm: Algorithm,
    /// `PrivateKey:`, decoded.
    pub private: Vec<u8>,
    /// Timing metadata.
    pub timing: Timing,
}

/// Reads a `.private` file.
pub fn parse_private_file(text: &str) -> Result<PrivateFile, KeyError> {
    let mut algorithm = None;
    let mut private = None;
    let mut timing = Timing::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key.trim() {
            "Algorithm" => {
                let n = value.split_whitespace().next().unwrap_or("");
                algorithm = Some(
                    Algorithm::parse(n).ok_or_else(|| invalid(format!("algorithm {n:?} (13 or 15 are supported)")))?,
                );
            }
            "PrivateKey" => {
                let b64: String = value.split_whitespace().collect();
                private = Some(BASE64.decode(b64.as_bytes()).map_err(|e| invalid(format!("PrivateKey: {e}")))?);
            }
            "Publish" => timing.publish = parse_time(value),
            "Activate" => timing.activate = parse_time(value),
            "Inactive" => timing.inactive = parse_time(value),
            "Delete" => timing.delete = parse_time(value),
            _ => {}
        }
    }
    Ok(PrivateFile {
        algorithm: algorithm.ok_or_else(|| invalid("no Algorithm line"))?,
        private: private.ok_or_else(|| invalid("no PrivateKey line"))?,
        timing,
    })
}

/// `YYYYMMDDHHMMSS` (UTC) as unix seconds.
pub fn parse_time(text: &str) -> Option<u64> {
    let t = text.split_whitespace().next()?;
    if t.len() != 14 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().ok();
    let (y, mo, d, h, mi, s) = (n(0..4)?, n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s).ok()
}

/// Unix seconds as `YYYYMMDDHHMMSS` (UTC).
pub fn format_time(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6605 §6.1's example key: its key tag and DS (SHA-256) as the RFC gives them.
    #[test]
    fn rfc6605_example_key_tag_and_ds() {
        let text = "example.net. 3600 IN DNSKEY 257 3 13 ( GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edb krSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA== )";
        let text = text.replace(['(', ')'], "");
        let (owner, key) = parse_key_file(&text).unwrap();
        assert_eq!(owner.to_string(), "example.net.");
        assert_eq!(key.tag(), 55648);
        let ds = key.ds(&owner, 2);
        let hex: String = ds[4..].iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(&ds[..4], &[0xd9, 0x60, 13, 2]);
        assert_eq!(hex, "B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17");
    }

    /// RFC 8080 §6's Ed25519 example: the seed gives the public key the RFC prints, and the
    /// key tag matches.
    #[test]
    fn rfc8080_example_private_key_matches_its_public_key() {
        let private = "Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\nPrivateKey: ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=\n";
        let key = "example.com. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=";
        let (_, dnskey) = parse_key_file(key).unwrap();
        let p = parse_private_file(private).unwrap();
        let signing = SigningKey::from_parts(&dnskey, &p.private).unwrap();
        assert_eq!(signing.tag, 3613);
        let other = SigningKey::generate(Algorithm::Ed25519, FLAG_ZONE | FLAG_SEP).unwrap();
        assert!(SigningKey::from_parts(&other.dnskey, &p.private).is_err());
    }

    /// A generated key written as BIND's files reads back as the same key, for both algorithms.
    #[test]
    fn generated_keys_round_trip_through_bind_files() {
        let zone = Name::parse("gslb.example.", None).unwrap();
        for alg in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let key = SigningKey::generate(alg, FLAG_ZONE).unwrap();
            let (owner, dnskey) = parse_key_file(&key.key_file(&zone, "20261204000000")).unwrap();
            assert_eq!(owner, zone);
            let private = parse_private_file(&key.private_file("20261204000000")).unwrap();
            assert_eq!(private.timing.activate, parse_time("20261204000000"));
            let again = SigningKey::from_parts(&dnskey, &private.private).unwrap();
            assert_eq!((again.tag, &again.dnskey), (key.tag, &key.dnskey));
            assert!(key.file_stem(&zone).starts_with("Kgslb.example.+0"));
        }
    }

    #[test]
    fn times_convert_both_ways() {
        for t in [0u64, 951_782_400, 1_796_342_400, 4_102_444_799] {
            assert_eq!(parse_time(&format_time(t)), Some(t));
        }
        assert_eq!(format_time(1_796_342_400), "20261204000000");
        assert_eq!(parse_time("2026120400000"), None);
    }
}
