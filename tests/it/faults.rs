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

/// Puts a fault in place, given the state directory and the journal's path.
type MakeFault = fn(&Path, &Path);

/// The journal (or the state directory) in a state where it cannot take a push: a FIFO, a
/// directory, a symlink to `/dev/zero`, a state directory that is a regular file. Each push
/// is refused at once (503) and not applied; `/health` says the zone is degraded with
/// `persist_error`, `gslbd_persist_failing` is 1; with the fault gone the next push is applied
/// and acknowledged and all of it clears; SIGTERM is honoured with the FIFO in place.
#[test]
fn a_journal_that_cannot_take_pushes_refuses_them_visibly() {
    use crate::admin_client::{Client, admin_section};
    use serde_json::json;
    let faults: [(&str, MakeFault); 4] = [
        ("a FIFO", |_, journal| mkfifo(journal)),
        ("a directory", |_, journal| std::fs::create_dir(journal).unwrap()),
        ("a symlink to /dev/zero", |_, journal| std::os::unix::fs::symlink("/dev/zero", journal).unwrap()),
        ("a state directory that is a file", |dir, _| std::fs::write(dir, "not a directory").unwrap()),
    ];
    for (what, make) in faults {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        let journal = dir.join("gslb.example.org.journal");
        let text = format!("{}[state]\ndir = \"{}\"\n{ZONE}", admin_section(""), dir.display());
        let mut s = Server::start(&config("", &text));
        let c = Client::for_server(&s);
        if what.starts_with("a state directory") {
            std::fs::remove_dir(&dir).unwrap();
        }
        make(&dir, &journal);
        let push =
            |ip: &str| c.notify(json!({"records": [{"name": "pushed.gslb.example.org", "type": "A", "ips": [ip]}]}));
        let (code, body) = push("192.0.2.1");
        assert_eq!(code, 503, "{what}: {body}");
        assert!(body["error"].as_str().unwrap().contains("nothing was applied"), "{what}: {body}");
        let m = s.udp(&query("pushed.gslb.example.org.", RecordType::A));
        assert!(answers(&m).is_empty(), "{what}: a refused push is served: {m:?}");
        let (_, health) = c.call("GET", "/health?zone=gslb.example.org", None, None);
        assert_eq!(health["status"], "degraded", "{what}: {health}");
        assert!(health["persist_error"].as_str().is_some_and(|e| e.contains("push journal")), "{what}: {health}");
        assert!(c.text("/metrics").contains("gslbd_persist_failing{zone=\"gslb.example.org\"} 1"), "{what}");

        if what == "a FIFO" {
            // SIGTERM with the FIFO still there.
            s.signal("TERM");
            assert_eq!(s.wait_exit(Duration::from_millis(2500)), Some(0), "{what}: {}", s.log_text());
            continue;
        }
        // The fault is repaired: the next push is applied and acknowledged, and it all clears.
        if what.starts_with("a state directory") {
            std::fs::remove_file(&dir).unwrap();
            std::fs::create_dir(&dir).unwrap();
        } else if journal.is_dir() {
            std::fs::remove_dir(&journal).unwrap();
        } else {
            std::fs::remove_file(&journal).unwrap();
        }
        let (code, body) = push("192.0.2.2");
        assert_eq!(code, 200, "{what}: {body}");
        assert_eq!(answers(&s.udp(&query("pushed.gslb.example.org.", RecordType::A))), ["192.0.2.2"], "{what}");
        let (_, health) = c.call("GET", "/health?zone=gslb.example.org", None, None);
        assert_eq!(health["status"], "healthy", "{what}: {health}");
        assert!(health["persist_error"].is_null(), "{what}: {health}");
        assert!(c.text("/metrics").contains("gslbd_persist_failing{zone=\"gslb.example.org\"} 0"), "{what}");
    }
}

/// A push that spans two zones, one of whose journals cannot take it, is refused whole: the
/// other zone's part is taken back (not served) and cut from its journal (not replayed after
/// a restart).
#[test]
fn a_push_refused_by_one_zone_is_taken_back_from_all() {
    use crate::admin_client::{Client, admin_section};
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let zones = format!("{ZONE}{NESTED_ZONE}");
    let text = format!("{}[state]\ndir = \"{}\"\n{zones}", admin_section(""), dir.path().display());
    let s = Server::start(&config("", &text));
    let c = Client::for_server(&s);
    // The outer zone's journal works (one push makes it exist); the inner one's is a FIFO.
    let (code, _) =
        c.notify(json!({"records": [{"name": "first.gslb.example.org", "type": "A", "ips": ["192.0.2.7"]}]}));
    assert_eq!(code, 200);
    mkfifo(&dir.path().join("inner.gslb.example.org.journal"));
    let (code, body) = c.notify(json!({"records": [
        {"name": "both.gslb.example.org", "type": "A", "ips": ["192.0.2.8"]},
        {"name": "both.inner.gslb.example.org", "type": "A", "ips": ["192.0.2.9"]},
    ]}));
    assert_eq!(code, 503, "{body}");
    for name in ["both.gslb.example.org.", "both.inner.gslb.example.org."] {
        let m = s.udp(&query(name, RecordType::A));
        assert!(answers(&m).is_empty(), "{name} of a refused push is served: {m:?}");
    }
    drop(s);
    std::fs::remove_file(dir.path().join("inner.gslb.example.org.journal")).unwrap();
    let s = Server::start(&config("", &text));
    assert_eq!(answers(&s.udp(&query("first.gslb.example.org.", RecordType::A))), ["192.0.2.7"]);
    let m = s.udp(&query("both.gslb.example.org.", RecordType::A));
    assert!(answers(&m).is_empty(), "the refused push came back from the journal: {m:?}");
}

/// A record set is never answered in part. A pushed set of 5,000 addresses is refused with
/// the reason (and one of 1,000, the most allowed, is answered whole over TCP, with TC over
/// UDP); a controller record of 5,000 is skipped and counted; in the config a set above the
/// bound is an error at its line; and a set that is within the bound but still does not fit
/// in 65,535 bytes (300 TXT records of 255 bytes) is answered with TC and nothing else.
#[test]
fn record_sets_are_bounded_and_never_answered_in_part() {
    use crate::admin_client::{Client, admin_section};
    use serde_json::json;
    let addresses = |n: usize, v6: bool| -> Vec<String> {
        (0..n)
            .map(|i| {
                if v6 {
                    format!("2001:db8::{:x}", i + 1)
                } else {
                    format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)
                }
            })
            .collect()
    };
    let txt = format!("\"{}\"", "t".repeat(255));
    let big_txt: String = (0..300).map(|i| format!("big 60 IN TXT {txt} \"{i}\"\n")).collect();
    let zone = format!(
        "[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"\"\"\nns1 60 IN A 127.0.0.1\n{}\"\"\"\n",
        big_txt.replace('"', "\\\"")
    );
    let s = Server::start(&config("", &format!("{}{zone}", admin_section(""))));
    let c = Client::for_server(&s);
    for (rtype, v6) in [("A", false), ("AAAA", true)] {
        let (code, body) = c
            .notify(json!({"records": [{"name": "many.gslb.example.org", "type": rtype, "ips": addresses(5000, v6)}]}));
        assert_eq!(code, 200, "{body}");
        let why = body["skipped"][0]["error"].as_str().unwrap_or_default();
        assert!(why.contains("5000 addresses") && why.contains("at most 1000"), "{body}");
        let (code, body) = c.notify(json!({"records": [{"name": format!("max{rtype}.gslb.example.org"), "type": rtype, "ips": addresses(1000, v6)}]}));
        assert_eq!((code, body["updated"].as_u64()), (200, Some(1)), "{body}");
        let qtype = if v6 { RecordType::AAAA } else { RecordType::A };
        let name = format!("max{rtype}.gslb.example.org.");
        let m = s.tcp_query(&query(&name, qtype));
        assert_eq!(m.answers.len(), 1000, "{rtype} over TCP: the whole set");
        assert!(!m.metadata.truncation, "{rtype} over TCP");
        let m = s.udp(&query_edns(&name, qtype, 1232));
        assert!(m.metadata.truncation && m.answers.is_empty(), "{rtype} over UDP: TC, nothing in part");
    }
    // The TXT set that cannot fit: TC over TCP too, with no record of it.
    let m = s.tcp_query(&query("big.gslb.example.org.", RecordType::TXT));
    assert!(m.metadata.truncation, "TC for a set larger than a message");
    assert!(m.answers.is_empty(), "no part of the set: {} records", m.answers.len());

    // The config bound, at the line of the first record too many.
    let over: String = addresses(1001, false).iter().map(|ip| format!("many 60 IN A {ip}\n")).collect();
    let text =
        config("", &format!("[[zone]]\nname = \"z.test\"\nns = [\"ns.z.test\"]\nrecords = \"\"\"\n{over}\"\"\"\n"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.toml"), text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["check", "--config"])
        .arg(dir.path().join("big.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(err.contains("big.toml:1009: zone[0].records: many.z.test. A holds more than 1000 records"), "{err}");
    assert_eq!(err.lines().count(), 1, "once per set: {err}");
}
