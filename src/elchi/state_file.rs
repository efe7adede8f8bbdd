//! The last-known-good controller data of each zone on disk: written atomically (temp file,
//! fsync, rename, fsync of the directory) after every accepted snapshot and read at start-up
//! so a restart while the controller is down keeps answering. The records carry a CRC-32, so
//! a flipped bit is detected (the file is then ignored), not served; the file also names the
//! last push-journal entry it includes.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::api::{RecordJson, same_zone};
use crate::dns::name::Name;

/// Marks our files, so a foreign JSON file in the directory is not mistaken for one.
const FORMAT: &str = "gslbd-controller-state/1";

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: String,
    zone: String,
    version_hash: String,
    saved_at: u64,
    /// The last journal entry the records include (0: none).
    #[serde(default)]
    journal_seq: u64,
    /// CRC-32 of the `records` JSON as written (absent in files from older versions).
    #[serde(default)]
    records_crc32: Option<u32>,
    records: Vec<RecordJson>,
}

/// A state file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The zone as the file names it.
    pub zone: String,
    /// Controller version of the records.
    pub version_hash: String,
    /// The last journal entry they include.
    pub journal_seq: u64,
    /// The records are sorted by owner name, each name's records together (as we write them
    /// since the builder holds them indexed by name).
    pub sorted: bool,
    /// The record list as JSON, as in the file (the compact form the builder holds).
    pub records_json: std::sync::Arc<[u8]>,
}

/// The head of a state file, read without decoding its records.
#[derive(Deserialize)]
struct Head {
    format: String,
    zone: String,
    version_hash: String,
    #[serde(default)]
    journal_seq: u64,
    #[serde(default)]
    records_crc32: Option<u32>,
    #[serde(default)]
    records_sorted: bool,
    /// Absent when only the fields before the records were read.
    #[allow(dead_code)]
    #[serde(default)]
    records: Option<serde::de::IgnoredAny>,
}

/// How far into a file the records key is looked for: we write the head (a few hundred bytes)
/// before the records.
const HEAD_MAX: usize = 64 << 10;

/// The state file of a zone: `<dir>/<zone>.json`.
pub fn path(dir: &Path, apex: &Name) -> PathBuf {
    let stem = if apex.is_root() { "root".to_string() } else { apex.to_dotless() };
    dir.join(format!("{stem}.json"))
}

/// Writes the zone's last-known-good data from its record list already serialized as JSON;
/// `journal_seq` is the last push-journal entry the records include, `sorted` says the
/// records are sorted by name (see [`Loaded::sorted`]).
pub fn save_packed(
    dir: &Path,
    apex: &Name,
    zone: &str,
    version_hash: &str,
    journal_seq: u64,
    sorted: bool,
    records_json: &[u8],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let saved_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let head = serde_json::json!({
        "format": FORMAT,
        "zone": zone,
        "version_hash": version_hash,
        "saved_at": saved_at,
        "journal_seq": journal_seq,
        "records_crc32": crc32fast::hash(records_json),
        "records_sorted": sorted,
    });
    let head = serde_json::to_vec(&head).map_err(std::io::Error::other)?;
    // `{...head fields..., "records": <records_json>}` without re-encoding the records.
    let mut bytes = Vec::with_capacity(head.len() + records_json.len() + 16);
    bytes.extend_from_slice(&head[..head.len() - 1]);
    bytes.extend_from_slice(b",\"records\":");
    bytes.extend_from_slice(records_json);
    bytes.push(b'}');
    crate::config::file::write_atomic(&path(dir, apex), &bytes)
}

/// Reads the zone's state file, refusing anything but a regular file of at most `max` bytes.
/// `Ok(None)` when there is none; `Err` with the reason when it is unreadable, too large,
/// corrupt or belongs to another zone.
pub fn load(dir: &Path, apex: &Name, max: usize) -> Result<Option<Loaded>, String> {
    let p = path(dir, apex);
    let bytes = match crate::config::file::read_regular(&p, max) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
    };
    // We write `"records":` last, after the head; a string in the head cannot hold that
    // sequence (its quotes would be escaped), so the first one is the key.
    let key = b",\"records\":";
    let records_at = bytes.windows(key.len()).position(|w| w == key);
    // The head alone when the key is where we write it (a big zone's records are not scanned
    // twice), else the whole file.
    let head: Head = match records_at.filter(|&i| i < HEAD_MAX) {
        Some(i) => {
            let mut prefix = bytes[..i].to_vec();
            prefix.push(b'}');
            serde_json::from_slice(&prefix)
        }
        None => serde_json::from_slice(&bytes),
    }
    .map_err(|e| format!("{} is corrupt: {e}", p.display()))?;
    if head.format != FORMAT {
        return Err(format!("{} is not a gslbd state file (format {:?})", p.display(), head.format));
    }
    if !same_zone(&head.zone, apex) {
        return Err(format!("{} holds zone {:?}, not {apex}", p.display(), head.zone));
    }
    let records = records_at.map(|i| &bytes[i + key.len()..bytes.len().saturating_sub(1)]);
    let records_json: std::sync::Arc<[u8]> = match (head.records_crc32, records) {
        (Some(want), Some(r)) if crc32fast::hash(r) == want => r.into(),
        (Some(_), _) => {
            return Err(format!("{} fails its checksum (a damaged disk or a hand edit); not served", p.display()));
        }
        // A file from an older version: no checksum, records decoded and re-encoded here.
        (None, _) => {
            let file: StateFile =
                serde_json::from_slice(&bytes).map_err(|e| format!("{} is corrupt: {e}", p.display()))?;
            serde_json::to_vec(&file.records).map_err(|e| e.to_string())?.into()
        }
    };
    let sorted = head.records_sorted && head.records_crc32.is_some();
    Ok(Some(Loaded {
        zone: head.zone,
        version_hash: head.version_hash,
        journal_seq: head.journal_seq,
        sorted,
        records_json,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    const MAX: usize = 1 << 20;

    /// What a test saves: zone, version and records.
    struct Payload {
        zone: String,
        version_hash: String,
        records: Vec<RecordJson>,
    }

    fn save(dir: &Path, apex: &Name, payload: &Payload) -> std::io::Result<()> {
        let records = serde_json::to_vec(&payload.records).map_err(std::io::Error::other)?;
        save_packed(dir, apex, &payload.zone, &payload.version_hash, 0, false, &records)
    }

    #[test]
    fn round_trip_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let apex = Name::parse("gslb.example.org.", None).unwrap();
        assert_eq!(load(dir.path(), &apex, MAX), Ok(None));
        let payload = Payload {
            zone: "gslb.example.org".into(),
            version_hash: "v1".into(),
            records: vec![RecordJson {
                name: "a.gslb.example.org".into(),
                rtype: "A".into(),
                ttl: 5,
                ips: vec!["192.0.2.1".into()],
                failover: None,
                pushed: true,
            }],
        };
        save(dir.path(), &apex, &payload).unwrap();
        let loaded = load(dir.path(), &apex, MAX).unwrap().unwrap();
        assert_eq!(
            (loaded.zone.as_str(), loaded.version_hash.as_str(), loaded.journal_seq),
            ("gslb.example.org", "v1", 0)
        );
        let records: Vec<RecordJson> = serde_json::from_slice(&loaded.records_json).unwrap();
        assert_eq!(records, payload.records);
        // A flipped bit in the records is detected.
        let text = std::fs::read_to_string(path(dir.path(), &apex)).unwrap();
        std::fs::write(path(dir.path(), &apex), text.replace("192.0.2.1", "192.0.2.3")).unwrap();
        assert!(load(dir.path(), &apex, MAX).unwrap_err().contains("checksum"));
        save(dir.path(), &apex, &payload).unwrap();
        assert!(load(dir.path(), &apex, 10).unwrap_err().contains("larger than 10 bytes"));
        let other = Name::parse("other.example.org.", None).unwrap();
        std::fs::copy(path(dir.path(), &apex), path(dir.path(), &other)).unwrap();
        assert!(load(dir.path(), &other, MAX).unwrap_err().contains("not other.example.org."));
        std::fs::write(path(dir.path(), &apex), b"{not json").unwrap();
        assert!(load(dir.path(), &apex, MAX).unwrap_err().contains("corrupt"));
    }

    /// A file from before checksums (no `records_crc32`, no `journal_seq`) still loads.
    #[test]
    fn files_without_a_checksum_load() {
        let dir = tempfile::tempdir().unwrap();
        let apex = Name::parse("gslb.example.org.", None).unwrap();
        let old = r#"{"format":"gslbd-controller-state/1","zone":"gslb.example.org","version_hash":"v0","saved_at":1,"records":[{"name":"a.gslb.example.org","type":"A","ttl":5,"ips":["192.0.2.1"]}]}"#;
        std::fs::write(path(dir.path(), &apex), old).unwrap();
        let loaded = load(dir.path(), &apex, MAX).unwrap().unwrap();
        assert_eq!((loaded.version_hash.as_str(), loaded.journal_seq), ("v0", 0));
        let records: Vec<RecordJson> = serde_json::from_slice(&loaded.records_json).unwrap();
        assert_eq!(records[0].ips, ["192.0.2.1"]);
    }

    /// Devices, FIFOs and directories are refused at once, never read or waited on.
    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let apex = Name::parse("gslb.example.org.", None).unwrap();
        std::os::unix::fs::symlink("/dev/zero", path(dir.path(), &apex)).unwrap();
        assert!(load(dir.path(), &apex, MAX).unwrap_err().contains("not a regular file"));
        std::fs::remove_file(path(dir.path(), &apex)).unwrap();
        let made = std::process::Command::new("mkfifo").arg(path(dir.path(), &apex)).status().unwrap();
        assert!(made.success());
        assert!(load(dir.path(), &apex, MAX).unwrap_err().contains("not a regular file"));
        std::fs::remove_file(path(dir.path(), &apex)).unwrap();
        std::fs::create_dir(path(dir.path(), &apex)).unwrap();
        assert!(load(dir.path(), &apex, MAX).is_err());
    }

    /// A write that fails (here: the target is a directory) leaves no temp file behind.
    #[test]
    fn failed_writes_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let apex = Name::parse("gslb.example.org.", None).unwrap();
        std::fs::create_dir(path(dir.path(), &apex)).unwrap();
        assert!(save_packed(dir.path(), &apex, "gslb.example.org", "v1", 0, true, b"[]").is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from("gslb.example.org.json")]);
    }
}
