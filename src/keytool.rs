//! `gslbd dnssec keygen` and `gslbd dnssec ds`: making a zone's keys as BIND's files, and
//! printing the DS records its parent needs (used by `main` only).

use std::path::Path;

use crate::config;
use crate::dns::name::Name;
use crate::dnssec::key::{Algorithm, FLAG_SEP, FLAG_ZONE, SigningKey, format_time};

/// Writes a new key for `zone` into `dir` (`K<zone>+<alg>+<tag>.key` and `.private`, the
/// private file readable by its owner only) and returns the file stem.
pub fn keygen(zone: &str, algorithm: &str, ksk: bool, dir: &Path) -> Result<String, String> {
    let zone =
        Name::parse(&format!("{}.", zone.trim_end_matches('.')), None).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let alg = Algorithm::parse(algorithm)
        .ok_or_else(|| format!("algorithm {algorithm:?}: ECDSAP256SHA256 (13) or ED25519 (15)"))?;
    let flags = if ksk { FLAG_ZONE | FLAG_SEP } else { FLAG_ZONE };
    let key = SigningKey::generate(alg, flags).map_err(|e| e.to_string())?;
    let created = format_time(crate::dnssec::now() as u64);
    let stem = dir.join(key.file_stem(&zone));
    let write = |ext: &str, text: String, mode: u32| -> Result<(), String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut path = stem.clone().into_os_string();
        path.push(ext);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(|e| format!("{}: {e}", Path::new(&path).display()))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("{}: {e}", Path::new(&path).display()))
    };
    write(".private", key.private_file(&created), 0o600)?;
    write(".key", key.key_file(&zone, &created), 0o644)?;
    Ok(stem.display().to_string())
}

/// The DS records (SHA-256; with `sha384` SHA-384 too) of the zone's key-signing keys, as
/// the config lists them, in master-file form for the parent.
pub fn ds(config_path: &Path, zone: &str, sha384: bool) -> Result<String, String> {
    let config = config::load(config_path).map_err(|e| e.to_string())?;
    let apex =
        Name::parse(&format!("{}.", zone.trim_end_matches('.')), None).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let z = config.zone(&apex).ok_or_else(|| format!("{apex} is not a zone in {}", config_path.display()))?;
    let keys = z.dnssec.as_ref().ok_or_else(|| format!("zone {apex} has no [zone.dnssec]"))?;
    let mut out = String::new();
    let ksks: Vec<_> = keys.dnskeys().filter(|d| d.is_ksk()).collect();
    // A zone signed by zone-signing keys alone has no secure entry point: its DS is theirs.
    let listed: Vec<_> = if ksks.is_empty() { keys.dnskeys().collect() } else { ksks };
    for d in listed {
        for digest in if sha384 { &[2u8, 4][..] } else { &[2u8][..] } {
            let rdata = d.ds(&apex, *digest);
            let hex: String = rdata[4..].iter().map(|b| format!("{b:02X}")).collect();
            out.push_str(&format!("{apex} IN DS {} {} {} {hex}\n", d.tag(), d.algorithm.number(), digest));
        }
    }
    Ok(out)
}
