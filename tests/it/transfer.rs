//! Zone transfers out against Debian's Knot DNS as the secondary: it bootstraps by AXFR with a
//! TSIG key, hears of pushes and health flips by NOTIFY, refreshes, and then answers every
//! name as gslbd does. Refusals (no key, a network not allowed, a bad signature) are asked with
//! hickory and with dnspython's TSIG client.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

use crate::admin_client::*;
use crate::harness::*;
use crate::pools::Endpoint;

/// base64 of a 32-byte secret, as `openssl rand -base64 32` gives.
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";

const RECORDS: &str = "ns1 A 127.0.0.1\nwww A 192.0.2.1\nwww A 192.0.2.2\nwww AAAA 2001:db8::1\nmail MX 10 www\n\
                       alias CNAME www\ntxt TXT \"v=spf1 -all\"\n*.wild A 192.0.2.9\n_sip._udp SRV 10 5 5060 www\n\
                       deep.ent.path A 192.0.2.3\nsub NS ns.sub\nns.sub A 192.0.2.53\n";

/// Debian's knotd as a secondary of `primary` for example.test, with the TSIG key; stopped
/// when dropped.
struct Knot {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Knot {
    fn start(port: u16, primary: SocketAddr) -> Knot {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        let conf = dir.path().join("knot.conf");
        std::fs::write(
            &conf,
            format!(
                "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\nlog:\n  - target: stderr\n    any: info\n\
                 key:\n  - id: xfr-key\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
                 remote:\n  - id: primary\n    address: {ip}@{pport}\n    key: xfr-key\n\
                 acl:\n  - id: notify\n    address: 127.0.0.1\n    key: xfr-key\n    action: notify\n\
                 database:\n    storage: {d}/db\n\
                 zone:\n  - domain: example.test\n    storage: {d}\n    file: example.test.zone\n    master: primary\n    acl: notify\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n",
                d = dir.path().display(),
                ip = primary.ip(),
                pport = primary.port(),
            ),
        )
        .unwrap();
        let knotd = if Path::new("/usr/sbin/knotd").exists() { "/usr/sbin/knotd" } else { "knotd" };
        let child = Command::new(knotd)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("knot.log")).unwrap())
            .spawn()
            .expect("knotd is installed (.ci/run installs Debian's knot)");
        Knot { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), _dir: dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("knot.log")).unwrap_or_default()
    }
}

fn ask(addr: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
    let sock = udp_socket(Duration::from_secs(2));
    let q = query(name, rtype);
    sock.send_to(&q.to_vec().unwrap(), addr).ok()?;
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Message::from_vec(&buf[..n]).ok()
}

fn serial(addr: SocketAddr) -> Option<u32> {
    let m = ask(addr, "example.test.", RecordType::SOA)?;
    m.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// What a server says about a question, comparable between servers: the RCODE, the answer
/// records and the authority's types, sorted.
fn said(addr: SocketAddr, name: &str, rtype: RecordType) -> String {
    let Some(m) = ask(addr, name, rtype) else { return "no answer".into() };
    let mut answers: Vec<String> =
        m.answers.iter().map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data)).collect();
    answers.sort();
    let mut authority: Vec<String> = m.authorities.iter().map(|r| format!("{} {}", r.name, r.record_type())).collect();
    authority.sort();
    format!("{:?} {answers:?} {authority:?}", m.metadata.response_code)
}

/// Waits until the secondary serves gslbd's current serial.
fn wait_same_serial(s: &Server, knot: &Knot) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ours = serial(s.addr);
        if let Some(ours) = ours
            && serial(knot.addr) == Some(ours)
        {
            return ours;
        }
        assert!(Instant::now() < deadline, "knot did not reach serial {ours:?}; its log:\n{}", knot.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_same(s: &Server, knot: &Knot, questions: &[(&str, RecordType)]) {
    for &(name, rtype) in questions {
        let (ours, theirs) = (said(s.addr, name, rtype), said(knot.addr, name, rtype));
        assert_eq!(ours, theirs, "{name} {rtype:?}: gslbd vs knot");
    }
}

/// Knot bootstraps by AXFR with the key and answers as gslbd does; a push and a health flip
/// move the serial, NOTIFY tells knot, which refreshes and answers the new data.
#[test]
fn knot_as_a_secondary_follows_pushes_and_health() {
    let (a, port) = Endpoint::start("127.0.0.2", 0);
    let (_b, _) = Endpoint::start("127.0.0.3", port);
    let knot_port = free_port();
    let state = tempfile::tempdir().unwrap();
    let zone = format!(
        "[[tsig_key]]\nname = \"xfr-key\"\nsecret = \"{SECRET}\"\n{admin}[state]\ndir = \"{state}\"\n\
         [[zone]]\nname = \"example.test\"\nns = [\"ns1.example.test\"]\nrecords = \"\"\"\n{RECORDS}\"\"\"\n\
         [zone.soa]\nminimum = 60\n[zone.transfer]\nkeys = [\"xfr-key\"]\nalso_notify = [\"127.0.0.1:{knot_port}\"]\n\
         [[zone.pool]]\nname = \"app\"\nselect = \"all\"\nttl = 30\n[zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\n\
         interval = \"200ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"a\"\nipv4 = [\"127.0.0.2\"]\n[[zone.pool.member]]\nname = \"b\"\nipv4 = [\"127.0.0.3\"]\n",
        admin = admin_section(""),
        state = state.path().display(),
    );
    let s = Server::start(&config("", &zone));
    let knot = Knot::start(knot_port, s.addr);
    let first = wait_same_serial(&s, &knot);
    let questions = [
        ("example.test.", RecordType::SOA),
        ("example.test.", RecordType::NS),
        ("www.example.test.", RecordType::A),
        ("www.example.test.", RecordType::AAAA),
        ("mail.example.test.", RecordType::MX),
        ("alias.example.test.", RecordType::A),
        ("txt.example.test.", RecordType::TXT),
        ("x.wild.example.test.", RecordType::A),
        ("_sip._udp.example.test.", RecordType::SRV),
        ("deep.ent.path.example.test.", RecordType::A),
        ("ent.path.example.test.", RecordType::A),
        ("nope.example.test.", RecordType::A),
        ("www.example.test.", RecordType::TXT),
        ("app.example.test.", RecordType::A),
        ("app.example.test.", RecordType::AAAA),
        ("pushed.example.test.", RecordType::A),
    ];
    assert_same(&s, &knot, &questions);
    assert!(said(knot.addr, "app.example.test.", RecordType::A).contains("127.0.0.2"));

    // A push: answered by gslbd at once, and by knot after NOTIFY and a refresh.
    let c = Client::for_server(&s);
    let (code, _) =
        c.notify(json!({"records": [{"name": "pushed.example.test", "type": "A", "ttl": 30, "ips": ["192.0.2.60"]}]}));
    assert_eq!(code, 200);
    let pushed = wait_same_serial(&s, &knot);
    assert_ne!(pushed, first, "the push moved the serial");
    assert!(said(knot.addr, "pushed.example.test.", RecordType::A).contains("192.0.2.60"));
    assert_same(&s, &knot, &questions);
    let log = knot.log();
    assert!(log.contains("IXFR, incoming") && !log.contains("AXFR-style"), "an incremental transfer:\n{log}");

    // A health flip changes the pool's answer: the serial moves, knot follows.
    a.set(503);
    s.wait_dns("app.example.test.", RecordType::A, |m| answers(m) == ["127.0.0.3"]);
    let flipped = wait_same_serial(&s, &knot);
    assert_ne!(flipped, pushed, "the health flip moved the serial");
    assert_same(&s, &knot, &questions);
    assert!(knot.log().contains("notify, incoming"), "knot heard NOTIFY:\n{}", knot.log());
}

/// dnspython's AXFR client with a key (right or wrong): prints the RCODE and the record count,
/// or the exception it raised.
fn dnspython_axfr(addr: SocketAddr, secret: Option<&str>) -> String {
    let script = r#"
import sys, dns.message, dns.query, dns.tsigkeyring, dns.rcode
addr, port, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
q = dns.message.make_query('example.test.', 'AXFR')
if secret != '-':
    q.use_tsig(dns.tsigkeyring.from_text({'xfr-key.': ('hmac-sha256', secret)}), keyname='xfr-key.')
try:
    r = dns.query.tcp(q, addr, port=port, timeout=5, one_rr_per_rrset=True)
    print(dns.rcode.to_text(r.rcode()), len(r.answer), 'tsig' if r.had_tsig else 'plain')
except Exception as e:
    print(type(e).__name__, e)
"#;
    let out = Command::new("python3")
        .args(["-c", script, &addr.ip().to_string(), &addr.port().to_string(), secret.unwrap_or("-")])
        .output()
        .expect("python3 with dnspython (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// Without the key and from a network not allowed: REFUSED. With a wrong secret: NOTAUTH
/// (BADSIG), which the client reports as a bad signature. With the key: the zone, signed.
/// From an allowed network no key is needed. A name that is no zone apex here is NOTAUTH.
#[test]
fn transfers_need_the_key_or_an_allowed_network() {
    let zone = format!(
        "[[tsig_key]]\nname = \"xfr-key\"\nsecret = \"{SECRET}\"\n\
         [[zone]]\nname = \"example.test\"\nns = [\"ns1.example.test\"]\nrecords = \"\"\"\n{RECORDS}\"\"\"\n\
         [zone.transfer]\nallow = [\"127.0.0.9/32\"]\nkeys = [\"xfr-key\"]\n\
         [[zone]]\nname = \"open.test\"\nns = [\"ns1.open.test\"]\nrecords = \"ns1 A 127.0.0.1\\n\"\n[zone.transfer]\nallow = [\"127.0.0.0/8\"]\n"
    );
    let s = Server::start(&config("", &zone));
    let m = s.tcp_query(&query("example.test.", RecordType::AXFR));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused, "no key, network not allowed");
    let m = s.tcp_query(&query("www.example.test.", RecordType::AXFR));
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth, "not a zone apex");
    let m = s.tcp_query(&query("open.test.", RecordType::AXFR));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "allowed network");
    assert_eq!(m.answers.first().map(|r| r.record_type()), Some(RecordType::SOA));
    assert_eq!(m.answers.last().map(|r| r.record_type()), Some(RecordType::SOA));
    // AXFR over UDP is not a transfer.
    let m = s.udp(&query("open.test.", RecordType::AXFR));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    let good = dnspython_axfr(s.addr, Some(SECRET));
    assert!(good.starts_with("NOERROR") && good.ends_with("tsig"), "{good}");
    let records: usize = good.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(records, RECORDS.lines().count() + 3, "the records, the NS and the SOA twice: {good}");
    let wrong = dnspython_axfr(s.addr, Some("d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw=="));
    assert!(wrong.contains("BadSignature") || wrong.contains("NOTAUTH"), "{wrong}");
    let line = s.wait_log("TSIG did not verify").unwrap();
    assert!(line.contains("key=xfr-key.") && line.contains("error=16"), "{line}");
    let plain = dnspython_axfr(s.addr, None);
    assert!(plain.starts_with("REFUSED"), "{plain}");
}

/// The IXFR request for `zone` from a secondary at `serial`.
fn ixfr(zone: &str, serial: u32) -> Message {
    use hickory_proto::rr::{Name, Record, rdata::SOA};
    let mut m = query(zone, RecordType::IXFR);
    let apex = Name::from_ascii(zone).unwrap();
    let soa = SOA::new(apex.clone(), apex.clone(), serial, 0, 0, 0, 0);
    m.add_authority(Record::from_rdata(apex, 0, RData::SOA(soa)));
    m
}

fn soa_serial(r: &hickory_proto::rr::Record) -> Option<u32> {
    match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

/// IXFR from a serial the history holds: the changes since, in RFC 1995's form (each change
/// between the SOA before and the SOA after); from the current serial the SOA alone; from a
/// serial it never had, the whole zone.
#[test]
fn ixfr_sends_the_changes_since_a_serial() {
    let state = tempfile::tempdir().unwrap();
    let zone = format!(
        "{admin}[state]\ndir = \"{state}\"\n[[zone]]\nname = \"example.test\"\nns = [\"ns1.example.test\"]\n\
         records = \"\"\"\n{RECORDS}\"\"\"\n[zone.transfer]\nallow = [\"127.0.0.0/8\"]\n",
        admin = admin_section(""),
        state = state.path().display(),
    );
    let s = Server::start(&config("", &zone));
    let c = Client::for_server(&s);
    let push = |name: &str, ip: &str| {
        let (code, _) = c.notify(json!({"records": [{"name": name, "type": "A", "ttl": 30, "ips": [ip]}]}));
        assert_eq!(code, 200);
    };
    push("one.example.test", "192.0.2.61");
    let before = serial(s.addr).unwrap();
    push("two.example.test", "192.0.2.62");
    push("one.example.test", "192.0.2.63");
    let now = serial(s.addr).unwrap();
    assert_ne!(before, now);

    let m = s.tcp_query(&ixfr("example.test.", before));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let serials: Vec<Option<u32>> = m.answers.iter().map(soa_serial).collect();
    assert_eq!(serials.first(), Some(&Some(now)));
    assert_eq!(serials.last(), Some(&Some(now)));
    assert_eq!(serials[1], Some(before), "the first change starts from the secondary's serial");
    let changes: Vec<String> = m
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    assert_eq!(
        changes,
        ["two.example.test. 192.0.2.62", "one.example.test. 192.0.2.61", "one.example.test. 192.0.2.63"],
        "two added, then one's address replaced: {:?}",
        m.answers
    );
    assert_eq!(
        m.answers.iter().filter(|r| r.record_type() == RecordType::SOA).count(),
        6,
        "two changes: 2 + 2 × 2 SOAs"
    );

    let m = s.tcp_query(&ixfr("example.test.", now));
    assert_eq!((m.answers.len(), m.answers.first().and_then(soa_serial)), (1, Some(now)), "current: the SOA alone");

    let m = s.tcp_query(&ixfr("example.test.", 7));
    assert!(m.answers.len() > RECORDS.lines().count(), "an unknown serial gets the whole zone");
    assert!(m.answers.iter().any(|r| r.name.to_string() == "two.example.test."));
    assert_eq!(
        m.answers.iter().filter(|r| r.record_type() == RecordType::SOA).count(),
        2,
        "AXFR form: SOA first and last"
    );
}

/// Bad transfer settings are refused with file, line and key.
#[test]
fn bad_transfer_settings_are_config_errors() {
    let zone = |transfer: &str, keys: &str| {
        config(
            "",
            &format!(
                "{keys}[[zone]]\nname = \"example.test\"\nns = [\"ns1.example.test\"]\nrecords = \"ns1 A 127.0.0.1\\n\"\n[zone.transfer]\n{transfer}"
            ),
        )
    };
    let key = format!("[[tsig_key]]\nname = \"k\"\nsecret = \"{SECRET}\"\n");
    for (transfer, keys, said) in [
        ("keys = [\"nope\"]\n", key.as_str(), "zone[0].transfer.keys: nope. is no [[tsig_key]]"),
        ("allow = [\"10.0.0.1/8\"]\n", "", "zone[0].transfer.allow"),
        ("also_notify = [\"x\"]\nallow = [\"10.0.0.0/8\"]\n", "", "zone[0].transfer.also_notify"),
        ("also_notify = [\"127.0.0.1:5300\"]\n", "", "lists neither allow nor keys"),
        ("keys = [\"k\"]\n", "[[tsig_key]]\nname = \"k\"\nsecret = \"c2hvcnQ=\"\n", "tsig_key[0].secret: is 5 bytes"),
        (
            "keys = [\"k\"]\n",
            "[[tsig_key]]\nname = \"k\"\nalgorithm = \"md5\"\nsecret = \"c2hvcnQ=\"\n",
            "tsig_key[0].algorithm",
        ),
    ] {
        let (ok, out) = gslbd_check(&zone(transfer, keys));
        assert!(!ok && out.contains(said) && out.contains("gslbd.toml:"), "want {said:?} in {out}");
    }
    let (ok, out) = gslbd_check(&zone("keys = [\"k\"]\nalso_notify = [\"127.0.0.1\"]\n", &key));
    assert!(ok, "{out}");
}
