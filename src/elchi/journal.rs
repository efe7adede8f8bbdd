//! Each zone's push journal: `/notify` changes appended and synced to disk before they are
//! acknowledged, so an acknowledged push survives a crash, and folded away once a state file
//! holds them.
//!
//! `<dir>/<zone>.journal` is a run of frames, each `[length u32 BE][crc32 u32 BE][JSON]`,
//! the JSON one [`Entry`]. Entries carry increasing sequence numbers; a state file records
//! the last one it includes, and start-up replays only later ones. A frame cut short by a
//! crash, or one whose checksum does not match, ends the journal: it and everything after it
//! are dropped with a warning (they were never acknowledged, or the disk lost them).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::api::{DeleteJson, RecordJson};
use crate::dns::name::Name;

/// Largest entry accepted when reading (a push is at most the admin body limit).
const MAX_ENTRY: usize = 64 << 20;

/// One push's changes to one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number, increasing per zone.
    pub seq: u64,
    /// Records applied (already checked).
    #[serde(default)]
    pub records: Vec<RecordJson>,
    /// Deletes applied.
    #[serde(default)]
    pub deletes: Vec<DeleteJson>,
}

/// The journal file of a zone.
pub fn path(dir: &Path, apex: &Name) -> PathBuf {
    let stem = if apex.is_root() { "root".to_string() } else { apex.to_dotless() };
    dir.join(format!("{stem}.journal"))
}

/// An open journal, appended to by the builder.
pub struct Journal {
    /// Shared with a thread that syncs it while the builder compiles.
    file: Arc<File>,
    /// End offset of each entry still in the file, with its sequence number.
    ends: Vec<(u64, u64)>,
    len: u64,
}

impl Journal {
    /// Opens (creating) a zone's journal for appending, after `read` has checked it.
    /// Only a regular file is a journal: the file is opened without blocking (a FIFO there
    /// would stall the builder) and checked after opening (a symlink to `/dev/zero` takes
    /// writes but cannot be synced), so a push meets the failure before it is applied.
    pub fn open(dir: &Path, apex: &Name, entries: &[(u64, u64)]) -> std::io::Result<Journal> {
        use std::os::unix::fs::OpenOptionsExt;
        let named = |p: &Path, e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", p.display()));
        std::fs::create_dir_all(dir).map_err(|e| named(dir, e))?;
        let p = path(dir, apex);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .map_err(|e| named(&p, e))?;
        let meta = file.metadata().map_err(|e| named(&p, e))?;
        if !meta.is_file() {
            return Err(std::io::Error::other(format!("{}: not a regular file", p.display())));
        }
        Ok(Journal { file: Arc::new(file), ends: entries.to_vec(), len: meta.len() })
    }

    /// The file's length: what [`Journal::cut`] goes back to.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is in the file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Cuts the entries appended after the file was `len` long (a batch whose sync failed:
    /// its pushes are refused, so they must not be replayed), and syncs the cut.
    pub fn cut(&mut self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)?;
        self.len = len;
        self.ends.retain(|(_, end)| *end <= len);
        self.file.sync_data()
    }

    /// Appends an entry (not yet durable: see [`Journal::file`]).
    pub fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let json = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        let mut frame = Vec::with_capacity(json.len() + 8);
        frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
        frame.extend_from_slice(&crc32fast::hash(&json).to_be_bytes());
        frame.extend_from_slice(&json);
        if let Err(e) = (&*self.file).write_all(&frame) {
            // Cut off what may have been half written, so the next frame starts clean.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += frame.len() as u64;
        self.ends.push((entry.seq, self.len));
        Ok(())
    }

    /// The file: [`File::sync_data`] on it makes every entry appended so far durable (one
    /// sync for all of them: group commit), on whichever thread calls it.
    pub fn file(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// Drops the entries up to `seq` (a state file now holds them). Entries after it stay.
    pub fn fold(&mut self, dir: &Path, apex: &Name, seq: u64) -> std::io::Result<()> {
        let keep_from = self.ends.iter().take_while(|(s, _)| *s <= seq).last().map_or(0, |(_, end)| *end);
        if keep_from == 0 {
            return Ok(());
        }
        if keep_from == self.len {
            self.file.set_len(0)?;
            self.len = 0;
            self.ends.clear();
            return Ok(());
        }
        // Newer entries follow: write them to a new file and swap it in.
        let p = path(dir, apex);
        let bytes = crate::config::file::read_regular(&p, MAX_ENTRY * 4)?;
        let tail = bytes.get(keep_from as usize..).ok_or_else(|| std::io::Error::other("the journal shrank"))?;
        let tmp = p.with_extension("journal.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(tail)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &p)?;
        self.file = Arc::new(OpenOptions::new().append(true).open(&p)?);
        self.len = tail.len() as u64;
        self.ends.retain(|(s, _)| *s > seq);
        for (_, end) in &mut self.ends {
            *end -= keep_from;
        }
        Ok(())
    }
}

/// What [`read`] found.
#[derive(Debug, Default)]
pub struct ReadJournal {
    /// The good entries, in order.
    pub entries: Vec<Entry>,
    /// `(seq, end offset)` of each, for [`Journal::open`].
    pub ends: Vec<(u64, u64)>,
    /// Why the file ended early, when it did (the rest was cut off).
    pub torn: Option<String>,
}

/// Reads a zone's journal (none: empty). A torn or corrupt frame ends it: the file is cut
/// there, so appends continue from the last good entry.
pub fn read(dir: &Path, apex: &Name) -> std::io::Result<ReadJournal> {
    let p = path(dir, apex);
    let bytes = match crate::config::file::read_regular(&p, MAX_ENTRY * 4) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ReadJournal::default()),
        Err(e) => return Err(e),
    };
    let mut out = ReadJournal::default();
    let mut at = 0usize;
    while at < bytes.len() {
        let frame = parse_frame(&bytes[at..]);
        match frame {
            Ok((entry, size)) => {
                at += size;
                out.ends.push((entry.seq, at as u64));
                out.entries.push(entry);
            }
            Err(why) => {
                out.torn = Some(format!("{why} at byte {at} of {}; {} bytes dropped", p.display(), bytes.len() - at));
                OpenOptions::new().write(true).open(&p)?.set_len(at as u64)?;
                break;
            }
        }
    }
    Ok(out)
}

fn parse_frame(b: &[u8]) -> Result<(Entry, usize), String> {
    if b.len() < 8 {
        return Err("a frame header cut short".into());
    }
    let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let crc = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    if len > MAX_ENTRY || b.len() < 8 + len {
        return Err("a frame cut short".into());
    }
    let json = &b[8..8 + len];
    if crc32fast::hash(json) != crc {
        return Err("a frame whose checksum does not match".into());
    }
    let entry: Entry = serde_json::from_slice(json).map_err(|e| format!("a frame that does not decode ({e})"))?;
    Ok((entry, 8 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            records: vec![RecordJson {
                name: format!("n{seq}.gslb.example.org"),
                rtype: "A".into(),
                ttl: 30,
                ips: vec!["192.0.2.1".into()],
                failover: None,
                pushed: false,
            }],
            deletes: Vec::new(),
        }
    }

    #[test]
    fn append_read_fold_and_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let apex = Name::parse("gslb.example.org.", None).unwrap();
        let mut j = Journal::open(dir.path(), &apex, &[]).unwrap();
        for seq in 1..=3 {
            j.append(&entry(seq)).unwrap();
        }
        j.file().sync_data().unwrap();
        let r = read(dir.path(), &apex).unwrap();
        assert_eq!(r.entries, [entry(1), entry(2), entry(3)]);
        assert!(r.torn.is_none());

        // Folding the first two keeps the third.
        j.fold(dir.path(), &apex, 2).unwrap();
        assert_eq!(read(dir.path(), &apex).unwrap().entries, [entry(3)]);
        j.append(&entry(4)).unwrap();
        assert_eq!(read(dir.path(), &apex).unwrap().entries, [entry(3), entry(4)]);
        j.fold(dir.path(), &apex, 4).unwrap();
        assert!(read(dir.path(), &apex).unwrap().entries.is_empty());

        // A frame cut short, and a flipped bit, end the journal at the last good entry.
        let mut j = Journal::open(dir.path(), &apex, &[]).unwrap();
        j.append(&entry(5)).unwrap();
        j.append(&entry(6)).unwrap();
        let p = path(dir.path(), &apex);
        let mut bytes = std::fs::read(&p).unwrap();
        let whole = bytes.len();
        bytes.truncate(whole - 3);
        std::fs::write(&p, &bytes).unwrap();
        let r = read(dir.path(), &apex).unwrap();
        assert_eq!(r.entries, [entry(5)]);
        assert!(r.torn.unwrap().contains("cut short"));
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        std::fs::write(&p, &bytes).unwrap();
        let r = read(dir.path(), &apex).unwrap();
        assert!(r.entries.is_empty());
        assert!(r.torn.unwrap().contains("checksum"));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0, "cut at the last good entry");
    }
}
