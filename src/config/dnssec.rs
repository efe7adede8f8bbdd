//! `[dnssec]` and `[zone.dnssec]` validation: the key files (BIND's `.key` and `.private`,
//! checked to belong to the zone and to each other, their timing checked against now),
//! signature timing, and the DNSKEY, CDS and CDNSKEY records the zone's apex then holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_spanned::Spanned;

use super::error::Reporter;
use super::raw::{RawDnssec, RawZoneDnssec};
use super::value::{MAX_TTL, duration, int};
use crate::dns::name::Name;
use crate::dns::records::{RData, RRset, Source, TypeMap};
use crate::dnssec::ZoneKeys;
use crate::dnssec::denial::{TYPE_CDNSKEY, TYPE_CDS, TYPE_DNSKEY, TYPE_NSEC};
use crate::dnssec::key::{self, DnsKey, SigningKey};
use crate::dnssec::sign::TYPE_RRSIG;

/// `[dnssec]`: shared by every signed zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnssecSettings {
    /// Most entries in the cache of signatures made while answering.
    pub cache_size: usize,
    /// Fresh signatures each answering thread may make per second.
    pub sign_budget: u32,
}

impl Default for DnssecSettings {
    fn default() -> DnssecSettings {
        DnssecSettings { cache_size: 250_000, sign_budget: 4_000 }
    }
}

/// Validates `[dnssec]`.
pub fn settings(raw: Option<&Spanned<RawDnssec>>, rep: &mut Reporter<'_>) -> DnssecSettings {
    let d = DnssecSettings::default();
    let Some(raw) = raw.map(|r| r.get_ref()) else { return d };
    DnssecSettings {
        cache_size: int(rep, raw.cache_size.as_ref(), "dnssec.cache_size", 1_000, 100_000_000, d.cache_size as i64)
            as usize,
        sign_budget: int(rep, raw.sign_budget.as_ref(), "dnssec.sign_budget", 0, 1_000_000, d.sign_budget as i64)
            as u32,
    }
}

/// Types the signer makes; static data may not hold them in a signed zone.
const MANAGED: [u16; 7] = [TYPE_RRSIG, TYPE_NSEC, 50, 51, TYPE_DNSKEY, TYPE_CDS, TYPE_CDNSKEY];

/// Validates `[zone.dnssec]` of the zone `apex`: its keys, read from their files, and the
/// records they put at the apex (added to `apex_types`). `None` after an error.
pub fn zone(
    key: &str,
    raw: &Spanned<RawZoneDnssec>,
    apex: &Name,
    nodes: &mut std::collections::BTreeMap<Name, TypeMap>,
    rep: &mut Reporter<'_>,
) -> Option<Arc<ZoneKeys>> {
    let errors_before = rep.errors.len();
    let at = raw.span().start;
    let raw = raw.get_ref();
    let k = |name: &str| format!("{key}.dnssec.{name}");
    let day = Duration::from_secs(86_400);
    let validity = duration(rep, raw.validity.as_ref(), &k("validity"), Duration::from_secs(30), 365 * day, 14 * day);
    let refresh = duration(rep, raw.refresh.as_ref(), &k("refresh"), Duration::from_secs(10), 364 * day, validity / 2);
    if refresh >= validity {
        let at = raw.refresh.as_ref().map_or(at, |r| r.span().start);
        rep.at(at, k("refresh"), format!("must be shorter than validity ({})", humantime::format_duration(validity)));
    }
    let inception_offset = duration(
        rep,
        raw.inception_offset.as_ref(),
        &k("inception_offset"),
        Duration::ZERO,
        day,
        Duration::from_secs(3600),
    );
    let dnskey_ttl = int(rep, raw.dnskey_ttl.as_ref(), &k("dnskey_ttl"), 0, MAX_TTL, 3600) as u32;
    let cds = raw.cds.as_ref().is_none_or(|c| *c.get_ref());
    let base = rep.file().parent().unwrap_or(Path::new(".")).to_path_buf();
    let now = crate::dnssec::now() as u64;
    let mut signing: Vec<SigningKey> = Vec::new();
    for stem in raw.keys.get_ref() {
        let at = stem.span().start;
        let path = stem_path(&base, stem.get_ref());
        match read_signing(&path, apex, now) {
            Ok(key) if signing.iter().any(|s| s.dnskey == key.dnskey) => {
                rep.at(at, k("keys"), format!("key {} is listed twice", key.tag))
            }
            Ok(key) => signing.push(key),
            Err(e) => rep.at(at, k("keys"), e),
        }
    }
    if raw.keys.get_ref().is_empty() {
        rep.at(raw.keys.span().start, k("keys"), "no key signs the zone: list at least one");
    }
    let mut published: Vec<DnsKey> = Vec::new();
    for stem in raw.published.iter().flat_map(|p| p.get_ref()) {
        let at = stem.span().start;
        let path = stem_path(&base, stem.get_ref());
        match read_public(&path, apex) {
            Ok(d) if signing.iter().any(|s| s.dnskey == d) || published.contains(&d) => {
                rep.at(at, k("published"), format!("key {} is listed twice", d.tag()))
            }
            Ok(d) => published.push(d),
            Err(e) => rep.at(at, k("published"), e),
        }
    }
    // Every RRset carries a signature of each algorithm the DNSKEY set has (RFC 4035 §2.2,
    // RFC 6840 §5.11): one algorithm per zone.
    let algorithms: std::collections::BTreeSet<&str> =
        signing.iter().map(|k| &k.dnskey).chain(&published).map(|d| d.algorithm.mnemonic()).collect();
    if algorithms.len() > 1 {
        let list: Vec<&str> = algorithms.into_iter().collect();
        rep.at(
            raw.keys.span().start,
            k("keys"),
            format!("the keys use {}: a zone is signed with one algorithm", list.join(" and ")),
        );
    }
    let apex_types = nodes.entry(apex.clone()).or_default();
    for t in MANAGED {
        if apex_types.contains_key(&t) {
            rep.at(
                at,
                format!("{key}.records"),
                format!(
                    "a signed zone's {} records are made by [zone.dnssec], not given",
                    crate::dns::types::type_name(t)
                ),
            );
        }
    }
    if rep.errors.len() != errors_before {
        return None;
    }
    let keys = ZoneKeys {
        apex: apex.clone(),
        signing,
        published,
        validity: validity.as_secs() as u32,
        refresh: refresh.as_secs() as u32,
        inception_offset: inception_offset.as_secs() as u32,
        dnskey_ttl,
        cds,
    };
    add_key_records(&keys, apex_types);
    Some(Arc::new(keys))
}

/// DNSKEY (every key), and for each signing key-signing key CDS (SHA-256) and CDNSKEY.
fn add_key_records(keys: &ZoneKeys, apex_types: &mut TypeMap) {
    let set =
        |rdata: Vec<RData>| RRset { ttl: keys.dnskey_ttl, rdata, source: Source::Static, rotate: false, draw: None };
    let other = |rtype: u16, data: Vec<u8>| RData::Other { rtype, data: data.into() };
    let dnskeys = keys.dnskeys().map(|d| other(TYPE_DNSKEY, d.rdata())).collect();
    apex_types.insert(TYPE_DNSKEY, set(dnskeys));
    let ksks: Vec<&DnsKey> = keys.signing.iter().map(|k| &k.dnskey).filter(|d| d.is_ksk()).collect();
    if keys.cds && !ksks.is_empty() {
        apex_types.insert(TYPE_CDS, set(ksks.iter().map(|d| other(TYPE_CDS, d.ds(&keys.apex, 2))).collect()));
        apex_types.insert(TYPE_CDNSKEY, set(ksks.iter().map(|d| other(TYPE_CDNSKEY, d.rdata())).collect()));
    }
}

/// A key named in the config: relative to the config's folder, `.key`/`.private` dropped.
fn stem_path(base: &Path, written: &str) -> PathBuf {
    let stem = written.strip_suffix(".key").or_else(|| written.strip_suffix(".private")).unwrap_or(written);
    base.join(stem)
}

fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// The DNSKEY of `<stem>.key`, checked to be the zone's.
fn read_public(stem: &Path, apex: &Name) -> Result<DnsKey, String> {
    let path = with_ext(stem, ".key");
    let text = super::file::read_text(&path, super::file::PEM_MAX).map_err(|e| format!("{}: {e}", path.display()))?;
    let (owner, dnskey) = key::parse_key_file(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if owner != *apex {
        return Err(format!("{}: the key is for {owner}, not for zone {apex}", path.display()));
    }
    Ok(dnskey)
}

/// The key pair of `<stem>.key` and `<stem>.private`, checked to belong together, to the zone,
/// and to be active now by the file's timing.
fn read_signing(stem: &Path, apex: &Name, now: u64) -> Result<SigningKey, String> {
    let dnskey = read_public(stem, apex)?;
    let path = with_ext(stem, ".private");
    let text = super::file::read_text(&path, super::file::PEM_MAX)
        .map_err(|e| format!("{}: {e} (a key in `keys` signs, so it needs its private key)", path.display()))?;
    let private = key::parse_private_file(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if private.algorithm != dnskey.algorithm {
        return Err(format!(
            "{}: algorithm {} does not match the .key file's {}",
            path.display(),
            private.algorithm.mnemonic(),
            dnskey.algorithm.mnemonic()
        ));
    }
    let t = private.timing;
    let past = |what: &str, when: Option<u64>| match when {
        Some(w) if w <= now => Err(format!(
            "{}: {what} {} is past: the key no longer signs (move it to `published` while it is withdrawn, then remove it)",
            path.display(),
            key::format_time(w)
        )),
        _ => Ok(()),
    };
    past("Inactive", t.inactive)?;
    past("Delete", t.delete)?;
    if let Some(a) = t.activate.filter(|&a| a > now) {
        return Err(format!(
            "{}: Activate {} is in the future: publish it first (`published`), list it in `keys` once active",
            path.display(),
            key::format_time(a)
        ));
    }
    SigningKey::from_parts(&dnskey, &private.private).map_err(|e| format!("{}: {e}", path.display()))
}
