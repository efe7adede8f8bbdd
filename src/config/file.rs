//! Reading the files gslbd is pointed at: the config itself, zone files, nets files, MaxMind
//! databases, PEM certificates and keys, CA bundles, NATS credentials and its own state
//! files. Every one is read the same way: only a regular file, at most a fixed size. A path
//! that leads (through a symlink, say) to `/dev/zero`, a FIFO or a directory is refused with
//! a clear error instead of being read until memory runs out or blocking the reload forever;
//! the caller keeps serving what it had. gslbd's own small state files are written whole or
//! not at all ([`write_atomic`]).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The configuration file.
pub const CONFIG_MAX: usize = 16 << 20;
/// A `zone_file` (a million records in master-file text are about 40 MiB).
pub const ZONE_FILE_MAX: usize = 1 << 30;
/// A location map's `nets_file`.
pub const NETS_FILE_MAX: usize = 256 << 20;
/// A MaxMind database (GeoIP2 City is about 130 MiB).
pub const MMDB_MAX: usize = 1 << 30;
/// A PEM file: a certificate chain, a private key or a CA bundle.
pub const PEM_MAX: usize = 4 << 20;
/// A NATS credentials file (a JWT and a seed).
pub const CREDENTIALS_MAX: usize = 64 << 10;
/// The members' drain/disable states (`members.json` in the state directory).
pub const MEMBER_STATES_MAX: usize = 16 << 20;

/// Writes `bytes` to `path` through a temporary file beside it, synced and renamed, then syncs
/// the directory: after a crash the file holds the old bytes or the new, never a mix. The
/// directory is made when missing; a failed write leaves no temporary file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // A partial temp file would keep a full disk full.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable only once the directory entry is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads at most `max` bytes of a regular file. The file is opened without blocking (a FIFO
/// would otherwise hang the reader) and checked after opening (a symlink to `/dev/zero` or a
/// device is refused, not read), so what is read is what was checked.
pub fn read_regular(p: &Path, max: usize) -> std::io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(p)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file" };
        return Err(std::io::Error::other(what));
    }
    if meta.len() > max as u64 {
        return Err(std::io::Error::other(too_large(max)));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while it is read; the cap holds anyway.
    file.take(max as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > max {
        return Err(std::io::Error::other(too_large(max)));
    }
    Ok(bytes)
}

/// [`read_regular`] for text: errors say `cannot read <path>: <why>` (not UTF-8 included).
pub fn read_text(p: &Path, max: usize) -> Result<String, String> {
    let bytes = read_regular(p, max).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    String::from_utf8(bytes)
        .map_err(|e| format!("cannot read {}: not UTF-8 text (byte {})", p.display(), e.utf8_error().valid_up_to()))
}

fn too_large(max: usize) -> String {
    let size = match max {
        m if m >= 1 << 20 && m % (1 << 20) == 0 => format!("{} MiB", m >> 20),
        m if m >= 1 << 10 && m % (1 << 10) == 0 => format!("{} KiB", m >> 10),
        m => format!("{m} bytes"),
    };
    format!("larger than {size} (the most a file of this kind may hold)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, b"hello").unwrap();
        assert_eq!(read_regular(&good, 5).unwrap(), b"hello");
        let e = read_regular(&good, 4).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");

        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert_eq!(read_regular(&zero, 1 << 20).unwrap_err().to_string(), "not a regular file");

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path for the call's duration.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read_regular(&fifo, 1 << 20).unwrap_err().to_string(), "not a regular file");
        assert_eq!(read_regular(dir.path(), 1 << 20).unwrap_err().to_string(), "a directory");

        let latin1 = dir.path().join("latin1");
        std::fs::write(&latin1, b"ab\xe9").unwrap();
        let e = read_text(&latin1, 10).unwrap_err();
        assert!(e.contains("not UTF-8 text (byte 2)"), "{e}");
    }
}
