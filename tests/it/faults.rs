//! Regressions of the fault battery: files that lead to devices, FIFOs or directories, slow
//! or stuck receivers, a journal that cannot be written, forged cluster votes, oversized
//! record sets, a controller response that drops the zone, and slow or malformed admin
//! requests. Every fault is made by the test itself (symlinks and FIFOs in a temporary
//! directory, receivers and clients written here).

use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::*;

/// Makes a FIFO at `p`.
pub fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the call's duration.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
}

/// Replaces `p` by a symlink to `/dev/zero` (`fifo` false) or by a FIFO.
fn break_file(p: &Path, fifo: bool) {
    let _ = std::fs::remove_file(p);
    if fifo {
        mkfifo(p);
    } else {
        std::os::unix::fs::symlink("/dev/zero", p).unwrap();
    }
}

/// Every file a reload reads (the config itself, a zone file, a nets file, the DoT
/// certificate) is refused when it leads to `/dev/zero` or is a FIFO: the reload is rejected
/// at once with the reason, the old data keeps serving, a good file afterwards is served,
/// and SIGTERM is honoured with a FIFO in place.
#[test]
fn files_read_on_reload_must_be_regular_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cert = rcgen::generate_simple_self_signed(vec!["dns.test".to_string()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    std::fs::write(d.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(d.join("key.pem"), &key_pem).unwrap();
    std::fs::write(d.join("nets.txt"), "10.1.0.0/16 eu\n").unwrap();
    std::fs::write(d.join("zone.txt"), "app 60 IN A 192.0.2.1\n").unwrap();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nudp_workers = 1\ntls_listen = [\"127.0.0.1:0\"]\n\
         tls_cert = \"{0}/cert.pem\"\ntls_key = \"{0}/key.pem\"\n\
         [[geo.datacenter]]\nname = \"eu\"\n[[geo.map]]\nnets_file = \"{0}/nets.txt\"\n\
         [[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nzone_file = \"{0}/zone.txt\"\n",
        d.display()
    );
    let mut s = Server::start(&text);
    let path = s.config_path();
    let reload = |s: &Server| {
        let mark = s.log_len();
        s.signal("HUP");
        s.wait_log_matching(|l| l.contains("config reloaded") || l.contains("config reload rejected"), mark)
            .unwrap_or_else(|| panic!("the reload neither applied nor was rejected; log:\n{}", s.log_text()))
    };
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m) == ["192.0.2.1"]);

    let goods: [(&Path, &str); 4] = [
        (&path, &text),
        (&d.join("zone.txt"), "app 60 IN A 192.0.2.1\n"),
        (&d.join("nets.txt"), "10.1.0.0/16 eu\n"),
        (&d.join("cert.pem"), &cert_pem),
    ];
    for (file, good) in goods {
        for fifo in [false, true] {
            break_file(file, fifo);
            let started = Instant::now();
            let line = reload(&s);
            assert!(line.contains("config reload rejected"), "{}: {line}", file.display());
            assert!(line.contains("not a regular file"), "{}: {line}", file.display());
            assert!(started.elapsed() < Duration::from_secs(5), "{} took {:?}", file.display(), started.elapsed());
            assert_eq!(answers(&s.udp(&query("app.gslb.example.org.", RecordType::A))), ["192.0.2.1"]);
            std::fs::remove_file(file).unwrap();
            std::fs::write(file, good).unwrap();
        }
    }
    // A good file afterwards serves.
    std::fs::write(d.join("zone.txt"), "app 60 IN A 192.0.2.2\n").unwrap();
    assert!(reload(&s).contains("config reloaded"));
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m) == ["192.0.2.2"]);
    // With a FIFO in place of the certificate, a reload is rejected and SIGTERM still stops.
    break_file(&d.join("cert.pem"), true);
    assert!(reload(&s).contains("config reload rejected"));
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(3)), Some(0), "{}", s.log_text());
}
