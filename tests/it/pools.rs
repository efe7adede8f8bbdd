//! Health-checked pools against real HTTP and TCP endpoints on 127.0.0.x: failover between
//! roles, rise/fall, refused and hanging endpoints, when_all_down, delegate referrals.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::harness::*;

/// An HTTP health endpoint on a loopback address whose status the test switches.
pub struct Endpoint {
    status: Arc<AtomicU16>,
    _rt: tokio::runtime::Runtime,
}

impl Endpoint {
    /// Serves `/health` with 200 on `ip:port` (0: any free port); returns it and the port.
    pub fn start(ip: &str, port: u16) -> (Endpoint, u16) {
        let status = Arc::new(AtomicU16::new(200));
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind(format!("{ip}:{port}"))).unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route(
                "/health",
                axum::routing::get(|State(s): State<Arc<AtomicU16>>| async move {
                    (StatusCode::from_u16(s.load(Ordering::Relaxed)).unwrap(), "ok")
                }),
            )
            .with_state(Arc::clone(&status));
        rt.spawn(async move { axum::serve(listener, app).await });
        (Endpoint { status, _rt: rt }, port)
    }

    /// The status `/health` answers from now on.
    pub fn set(&self, code: u16) {
        self.status.store(code, Ordering::Relaxed);
    }
}

fn pool_zone(pool: &str) -> String {
    format!(
        "[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n{pool}"
    )
}

/// Primaries answer while up; after `fall` failed probes the secondaries take over, and the
/// primary returns after `rise` good ones. Transitions are logged with the reason.
#[test]
fn failover_between_roles_follows_probes() {
    let (primary, port) = Endpoint::start("127.0.0.2", 0);
    let (_secondary, _) = Endpoint::start("127.0.0.3", port);
    let pool = format!(
        "[[zone.pool]]\nname = \"app\"\nttl = 5\n[zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 2\n\
         [[zone.pool.member]]\nname = \"p1\"\nrole = \"primary\"\nipv4 = [\"127.0.0.2\"]\n\
         [[zone.pool.member]]\nname = \"s1\"\nrole = \"secondary\"\nipv4 = [\"127.0.0.3\"]\n"
    );
    let s = Server::start(&config("", &pool_zone(&pool)));
    let m = s.udp(&query("app.gslb.example.org.", RecordType::A));
    assert_eq!(answers(&m), ["127.0.0.2"], "primary answers from the start");
    assert_eq!(m.answers[0].ttl, 5);
    primary.set(503);
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.3"]);
    let line = s.wait_log("health state changed").unwrap();
    assert!(
        line.contains("127.0.0.2") && line.contains("status 503") && line.contains("app.gslb.example.org/p1"),
        "{line}"
    );
    primary.set(200);
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.2"]);
    // Other types at the pool name: NODATA with the SOA; names below it do not exist.
    let m = s.udp(&query("app.gslb.example.org.", RecordType::TXT));
    assert_eq!((m.metadata.response_code, m.authorities.len()), (ResponseCode::NoError, 1));
    let m = s.udp(&query("x.app.gslb.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

/// A refused TCP port and a hanging endpoint fail their checks; with every member down the
/// `when_all_down` choice answers.
#[test]
fn when_all_down_choices() {
    // Nothing listens on 127.0.0.4:1; the hanging endpoint accepts and never answers.
    let hang = std::net::TcpListener::bind("127.0.0.5:0").unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    let pools = format!(
        "[[zone.pool]]\nname = \"nodata\"\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"tcp\"\nport = 1\ninterval = \"200ms\"\ntimeout = \"100ms\"\nfall = 1\ninitial = \"down\"\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"127.0.0.4\"]\n\
         [[zone.pool]]\nname = \"sf\"\nwhen_all_down = \"servfail\"\n[zone.pool.check]\ntype = \"http\"\nport = {hang_port}\ninterval = \"300ms\"\ntimeout = \"100ms\"\nfall = 1\n[[zone.pool.member]]\nname = \"b\"\nipv4 = [\"127.0.0.5\"]\n\
         [[zone.pool]]\nname = \"cn\"\nwhen_all_down = \"backup.example.net.\"\n[zone.pool.check]\ntype = \"tcp\"\nport = 1\ninterval = \"200ms\"\ntimeout = \"100ms\"\nfall = 1\n[[zone.pool.member]]\nname = \"c\"\nipv4 = [\"127.0.0.4\"]\n\
         [[zone.pool]]\nname = \"open\"\n[zone.pool.check]\ntype = \"tcp\"\nport = 1\ninterval = \"200ms\"\ntimeout = \"100ms\"\nfall = 1\n[[zone.pool.member]]\nname = \"d\"\nipv4 = [\"127.0.0.4\"]\n"
    );
    let s = Server::start(&config("", &pool_zone(&pools)));
    let m = s.udp(&query("nodata.gslb.example.org.", RecordType::A));
    assert_eq!((m.metadata.response_code, m.answers.len()), (ResponseCode::NoError, 0), "initial down: NODATA");
    s.wait_dns("sf.gslb.example.org.", RecordType::A, |m| m.metadata.response_code == ResponseCode::ServFail);
    assert!(s.wait_log("timeout after 100ms").is_some(), "hanging endpoint fails by its timeout");
    let m = s.wait_dns("cn.gslb.example.org.", RecordType::A, |m| {
        !m.answers.is_empty() && types(&m.answers) == [RecordType::CNAME]
    });
    assert_eq!(answers(&m), ["backup.example.net."]);
    let m = s.udp(&query("open.gslb.example.org.", RecordType::A));
    assert_eq!(answers(&m), ["127.0.0.4"], "fail open answers every member");
    assert!(s.wait_log("connection refused").is_some());
    drop(hang);
}

/// `delegate` mode: a referral (AA clear) whose NS owner is the pool name, with glue, for the
/// name and below; DS is answered from our zone.
#[test]
fn delegate_pool_refers_with_glue() {
    let pool = "[[zone.pool]]\nname = \"dc\"\nmode = \"delegate\"\nttl = 60\n[zone.pool.check]\ntype = \"none\"\n\
                [[zone.pool.member]]\nname = \"ns-a\"\nipv4 = [\"192.0.2.1\"]\n\
                [[zone.pool.member]]\nname = \"ns-b.example.net.\"\nipv4 = [\"192.0.2.2\"]\nipv6 = [\"2001:db8::2\"]\n";
    let s = Server::start(&config("", &pool_zone(pool)));
    for name in ["dc.gslb.example.org.", "host.dc.gslb.example.org."] {
        let m = s.udp(&query(name, RecordType::A));
        assert!(!m.metadata.authoritative, "{name}");
        assert!(m.answers.is_empty());
        assert_eq!(types(&m.authorities), [RecordType::NS, RecordType::NS]);
        assert!(m.authorities.iter().all(|r| r.name.to_string() == "dc.gslb.example.org."));
        let mut ns: Vec<String> = m.authorities.iter().map(|r| r.data.to_string()).collect();
        ns.sort();
        assert_eq!(ns, ["ns-a.gslb.example.org.", "ns-b.example.net."]);
        let glue: Vec<String> = m.additionals.iter().map(|r| r.data.to_string()).collect();
        assert!(glue.contains(&"192.0.2.1".to_string()), "{glue:?}");
    }
    let m = s.udp(&query("dc.gslb.example.org.", RecordType::DS));
    assert!(m.metadata.authoritative);
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
}

/// A dual-stack member down on IPv6 only still serves A.
#[test]
fn dual_stack_member_down_on_one_family() {
    let (_v4, port) = Endpoint::start("127.0.0.6", 0);
    let pool = format!(
        "[[zone.pool]]\nname = \"ds\"\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nfall = 1\n\
         [[zone.pool.member]]\nname = \"m\"\nipv4 = [\"127.0.0.6\"]\nipv6 = [\"::1\"]\n"
    );
    let s = Server::start(&config("", &pool_zone(&pool)));
    s.wait_dns("ds.gslb.example.org.", RecordType::AAAA, |m| m.answers.is_empty());
    assert_eq!(answers(&s.udp(&query("ds.gslb.example.org.", RecordType::A))), ["127.0.0.6"]);
}

/// Pools without members, with a probe interval below 100 ms or a timeout not below the
/// interval, and delegate members without addresses are rejected at config time.
#[test]
fn bad_pools_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[[zone.pool]]\nname = \"p\"\n", "has no members"),
        (
            "[[zone.pool]]\nname = \"p\"\n[zone.pool.check]\ninterval = \"0s\"\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n",
            "interval",
        ),
        (
            "[[zone.pool]]\nname = \"p\"\n[zone.pool.check]\ninterval = \"1s\"\ntimeout = \"2s\"\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n",
            "shorter than the interval",
        ),
        ("[[zone.pool]]\nname = \"p\"\nmode = \"delegate\"\n[[zone.pool.member]]\nname = \"a\"\n", "has no addresses"),
        (
            "[[zone.pool]]\nname = \"ns1\"\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n",
            "collides with static records",
        ),
        (
            "[[zone.pool]]\nname = \"p\"\n[zone.pool.check]\nrise = 0\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n",
            "rise",
        ),
    ];
    // `gslbd check` on a config file holding `pool`.
    let check = |file: &str, pool: &str| {
        let path = dir.path().join(file);
        std::fs::write(&path, config("", &pool_zone(pool))).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_gslbd")).args(["check", "--config"]).arg(&path).output().unwrap()
    };
    for (pool, want) in cases {
        let out = check("bad.toml", pool);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{pool}");
        assert!(err.contains("bad.toml:") && err.contains(want), "want {want:?} in {err}");
    }
    // Errors that name the exact line of the offending key: an empty status list (the member
    // could never be up) and member names with control characters (they would forge log lines).
    let line_cases = [
        (
            "[[zone.pool]]\nname = \"p\"\n[zone.pool.check]\nexpect_status = []\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n",
            "expect_status = []",
            "could never be up",
        ),
        (
            "[[zone.pool]]\nname = \"p\"\n[[zone.pool.member]]\nname = \"a\\u0000b\"\nipv4 = [\"192.0.2.1\"]\n",
            "name = \"a\\u0000b\"",
            "control characters",
        ),
        (
            "[[zone.pool]]\nname = \"p\"\n[[zone.pool.member]]\nname = \"a\\nforged log line\"\nipv4 = [\"192.0.2.1\"]\n",
            "name = \"a\\nforged",
            "control characters",
        ),
    ];
    for (pool, key_text, want) in line_cases {
        let out = check("bad.toml", pool);
        let err = String::from_utf8_lossy(&out.stderr);
        let text = std::fs::read_to_string(dir.path().join("bad.toml")).unwrap();
        let line = text.lines().position(|l| l.contains(key_text)).expect("key in file") + 1;
        assert!(!out.status.success(), "{pool}");
        assert!(
            err.contains(&format!("bad.toml:{line}:")) && err.contains(want),
            "want line {line} and {want:?} in {err}"
        );
    }
    // A valid one: the summary counts the pools and their members.
    let good = "[[zone.pool]]\nname = \"p\"\n[zone.pool.check]\ntype = \"none\"\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n[[zone.pool.member]]\nname = \"b\"\nipv4 = [\"192.0.2.2\"]\n";
    let out = check("good.toml", good);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{summary}{}", String::from_utf8_lossy(&out.stderr));
    assert!(summary.contains("pools: 1 with 2 members"), "{summary}");
}

/// An HTTPS endpoint with a self-signed certificate: down when the certificate is verified
/// (it cannot be), up with `tls_verify = false`; `expect_body` must match the body.
#[test]
fn https_checks_and_expect_body() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.7".to_string(), "app.example.org".to_string()]).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.7:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = rt
        .block_on(axum_server::tls_rustls::RustlsConfig::from_pem(
            cert.cert.pem().into_bytes(),
            cert.signing_key.serialize_pem().into_bytes(),
        ))
        .unwrap();
    let app = Router::new().route("/health", axum::routing::get(|| async { "all ok here" }));
    rt.spawn(async move { axum_server::from_tcp_rustls(listener, tls).unwrap().serve(app.into_make_service()).await });
    let (_plain, plain_port) = Endpoint::start("127.0.0.8", 0);
    // Members expected to pass start down and must come up; those expected to fail start up
    // and must go down, so every assertion needs a real probe result.
    let pool = |name: &str, check: &str, ip: &str, initial: &str| {
        format!(
            "[[zone.pool]]\nname = \"{name}\"\nwhen_all_down = \"nodata\"\n[zone.pool.check]\n{check}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\ninitial = \"{initial}\"\n[[zone.pool.member]]\nname = \"m\"\nipv4 = [\"{ip}\"]\n"
        )
    };
    let pools = [
        pool("verified", &format!("type = \"https\"\nport = {port}"), "127.0.0.7", "up"),
        pool(
            "insecure",
            &format!("type = \"https\"\nport = {port}\ntls_verify = false\nexpect_body = \"ok here\""),
            "127.0.0.7",
            "down",
        ),
        pool("body", &format!("type = \"http\"\nport = {plain_port}\nexpect_body = \"nope\""), "127.0.0.8", "up"),
        pool(
            "sni",
            &format!("type = \"https\"\nport = {port}\nhost = \"app.example.org\"\ntls_verify = false"),
            "127.0.0.7",
            "down",
        ),
        pool("bodyok", &format!("type = \"http\"\nport = {plain_port}\nexpect_body = \"ok\""), "127.0.0.8", "down"),
    ]
    .concat();
    let s = Server::start(&config("", &pool_zone(&pools)));
    s.wait_dns("insecure.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.7"]);
    s.wait_dns("bodyok.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.8"]);
    s.wait_dns("sni.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.7"]);
    s.wait_dns("verified.gslb.example.org.", RecordType::A, |m| m.answers.is_empty());
    s.wait_dns("body.gslb.example.org.", RecordType::A, |m| m.answers.is_empty());
    assert!(s.log_text().contains("certificate"), "the verified check fails on the certificate");
    drop(rt);
}

/// Weight 0 members stand by: answered only while no weighted member is up.
#[test]
fn weight_zero_members_stand_by() {
    let (main, port) = Endpoint::start("127.0.0.9", 0);
    let pool = format!(
        "[[zone.pool]]\nname = \"w\"\nselect = \"weighted\"\n[zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"main\"\nweight = 3\nipv4 = [\"127.0.0.9\"]\n\
         [[zone.pool.member]]\nname = \"standby\"\nweight = 0\nipv4 = [\"192.0.2.99\"]\n[zone.pool.member.check]\ntype = \"none\"\n"
    );
    let s = Server::start(&config("", &pool_zone(&pool)));
    assert_eq!(answers(&s.udp(&query("w.gslb.example.org.", RecordType::A))), ["127.0.0.9"]);
    main.set(500);
    s.wait_dns("w.gslb.example.org.", RecordType::A, |m| answers(m) == ["192.0.2.99"]);
}

/// A reload keeps the health of unchanged members; /records shows member health; a push to a
/// pool name is kept but reported as shadowed by the pool (pools always win); /metrics counts
/// healthy members by role.
#[test]
fn reload_records_notify_and_metrics_for_pools() {
    let (ep, port) = Endpoint::start("127.0.0.10", 0);
    ep.set(503);
    let pool = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\nsecret = \"admin-secret-1\"\n\
         [[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\n\
         [[zone.pool]]\nname = \"app\"\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nfall = 1\n\
         [[zone.pool.member]]\nname = \"m1\"\nipv4 = [\"127.0.0.10\"]\n"
    );
    let s = Server::start(&config("", &pool));
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| m.answers.is_empty());
    let mark = s.log_len();
    s.signal("HUP");
    assert!(s.wait_log_after("config reloaded", mark).is_some());
    assert!(s.udp(&query("app.gslb.example.org.", RecordType::A)).answers.is_empty(), "still down after reload");

    let admin = format!("http://{}", s.admin_addr());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (records, notify, metrics) = rt.block_on(async {
        let records = http
            .get(format!("{admin}/records?name=app"))
            .header("X-Elchi-Secret", "admin-secret-1")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let records: serde_json::Value = serde_json::from_str(&records).unwrap();
        let push =
            serde_json::json!({"records": [{"name": "app.gslb.example.org", "type": "A", "ips": ["192.0.2.1"]}]});
        let notify = http
            .post(format!("{admin}/notify"))
            .header("X-Elchi-Secret", "admin-secret-1")
            .body(push.to_string())
            .send()
            .await
            .unwrap();
        let notify = (notify.status().as_u16(), notify.text().await.unwrap());
        let metrics = http.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
        (records, notify, metrics)
    });
    let member = &records["records"][0];
    assert_eq!(
        (member["member"].clone(), member["health"].clone()),
        (serde_json::json!("m1"), serde_json::json!("down"))
    );
    assert!(member["last_error"].as_str().unwrap().contains("status 503"), "{member}");
    assert!(member["last_check"].is_string());
    assert_eq!(notify.0, 200, "{}", notify.1);
    let notify: serde_json::Value = serde_json::from_str(&notify.1).unwrap();
    assert_eq!(notify["shadowed"], serde_json::json!([{"item": 0, "name": "app.gslb.example.org", "by": "pool"}]));
    assert!(s.udp(&query("app.gslb.example.org.", RecordType::A)).answers.is_empty(), "the pool still answers");
    assert!(
        metrics.contains("gslbd_pool_members{pool=\"app.gslb.example.org\",role=\"primary\",state=\"healthy\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("gslbd_health_probes_total{outcome=\"failure\"}"), "{metrics}");
    assert!(metrics.contains("gslbd_health_transitions_total{to=\"down\"}"), "{metrics}");
}

/// `select = "weighted"` draws `max_answers` distinct members per query in proportion to
/// their weights (the exact ±5% check on 10,000 seeded draws is a unit test of the policy;
/// here 4,000 real queries must land within ±25%, about 5 standard deviations).
#[test]
fn weighted_answers_follow_the_weights() {
    let pool = "[[zone.pool]]\nname = \"w\"\nselect = \"weighted\"\nmax_answers = 1\n[zone.pool.check]\ntype = \"none\"\n\
                [[zone.pool.member]]\nname = \"a\"\nweight = 1\nipv4 = [\"192.0.2.1\"]\n\
                [[zone.pool.member]]\nname = \"b\"\nweight = 2\nipv4 = [\"192.0.2.2\"]\n\
                [[zone.pool.member]]\nname = \"c\"\nweight = 7\nipv4 = [\"192.0.2.3\"]\n\
                [[zone.pool]]\nname = \"w2\"\nselect = \"weighted\"\nmax_answers = 2\n[zone.pool.check]\ntype = \"none\"\n\
                [[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n\
                [[zone.pool.member]]\nname = \"b\"\nipv4 = [\"192.0.2.2\"]\n\
                [[zone.pool.member]]\nname = \"c\"\nipv4 = [\"192.0.2.3\"]\n";
    let s = Server::start(&config("", &pool_zone(pool)));
    let sock = udp_socket(DEADLINE);
    let mut counts = std::collections::HashMap::new();
    let q = query("w.gslb.example.org.", RecordType::A);
    let bytes = q.to_vec().unwrap();
    let mut buf = [0u8; 512];
    for _ in 0..4000 {
        sock.send_to(&bytes, s.addr).unwrap();
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        let m = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(m.answers.len(), 1);
        *counts.entry(answers(&m)[0].clone()).or_insert(0u32) += 1;
    }
    for (ip, weight) in [("192.0.2.1", 1.0), ("192.0.2.2", 2.0), ("192.0.2.3", 7.0)] {
        let want = 4000.0 * weight / 10.0;
        let got = *counts.get(ip).unwrap_or(&0) as f64;
        assert!((got - want).abs() <= want * 0.25, "{ip}: {got}, want {want}");
    }
    for _ in 0..20 {
        let m = s.udp(&query("w2.gslb.example.org.", RecordType::A));
        let got = answers(&m);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_ne!(got[0], got[1]);
    }
}

/// `failover` and `all` with more qualifying members than `max_answers` spread the answers
/// over all of them: over 3,000 real queries each member is answered within ±20% of an equal
/// share (about 7 standard deviations), members of the other role never.
#[test]
fn members_beyond_max_answers_are_answered_equally_often() {
    let pool = "[[zone.pool]]\nname = \"fo\"\nselect = \"failover\"\nmax_answers = 1\n[zone.pool.check]\ntype = \"none\"\n\
                [[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n\
                [[zone.pool.member]]\nname = \"b\"\nipv4 = [\"192.0.2.2\"]\n\
                [[zone.pool.member]]\nname = \"c\"\nipv4 = [\"192.0.2.3\"]\n\
                [[zone.pool.member]]\nname = \"s\"\nrole = \"secondary\"\nipv4 = [\"192.0.2.9\"]\n\
                [[zone.pool]]\nname = \"all\"\nselect = \"all\"\nmax_answers = 2\n[zone.pool.check]\ntype = \"none\"\n\
                [[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n\
                [[zone.pool.member]]\nname = \"b\"\nipv4 = [\"192.0.2.2\"]\n\
                [[zone.pool.member]]\nname = \"c\"\nipv4 = [\"192.0.2.3\"]\n\
                [[zone.pool.member]]\nname = \"d\"\nipv4 = [\"192.0.2.4\"]\n";
    let s = Server::start(&config("", &pool_zone(pool)));
    let sock = udp_socket(DEADLINE);
    let mut buf = [0u8; 512];
    let mut tally = |name: &str, per_answer: usize| {
        let bytes = query(name, RecordType::A).to_vec().unwrap();
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..3000 {
            sock.send_to(&bytes, s.addr).unwrap();
            let (n, _) = sock.recv_from(&mut buf).unwrap();
            let m = Message::from_vec(&buf[..n]).unwrap();
            let got = answers(&m);
            assert_eq!(got.len(), per_answer, "{got:?}");
            for ip in got {
                *counts.entry(ip).or_insert(0u32) += 1;
            }
        }
        counts
    };
    let fo = tally("fo.gslb.example.org.", 1);
    assert_eq!(fo.keys().cloned().collect::<Vec<_>>(), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    for (ip, n) in &fo {
        assert!((*n as f64 - 1000.0).abs() <= 200.0, "{ip}: {n} of 3000 ({fo:?})");
    }
    let all = tally("all.gslb.example.org.", 2);
    assert_eq!(all.len(), 4, "{all:?}");
    for (ip, n) in &all {
        assert!((*n as f64 - 1500.0).abs() <= 300.0, "{ip}: {n} of 6000 answers ({all:?})");
    }
}

/// A pool's answers live in the zone's dynamic layer: a static CNAME to the pool follows its
/// health at once; a pool at the apex keeps the apex's SOA and NS; names below an address
/// pool do not exist; the zone's serial does not move with health.
#[test]
fn pools_answer_from_their_own_layer() {
    let (ep, port) = Endpoint::start("127.0.0.11", 0);
    let check = format!(
        "[zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n"
    );
    let zone = format!(
        "[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\n\
         records = \"ns1 60 IN A 127.0.0.1\\nwww 60 IN CNAME app\\n\"\n\
         [[zone.pool]]\nname = \"app\"\nwhen_all_down = \"nodata\"\n{check}\
         [[zone.pool.member]]\nname = \"m\"\nipv4 = [\"127.0.0.11\"]\n\
         [[zone.pool]]\nname = \"@\"\n[zone.pool.check]\ntype = \"none\"\n\
         [[zone.pool.member]]\nname = \"apex\"\nipv4 = [\"192.0.2.200\"]\n"
    );
    let s = Server::start(&config("", &zone));
    let www = s.udp(&query("www.gslb.example.org.", RecordType::A));
    assert_eq!(answers(&www), ["app.gslb.example.org.", "127.0.0.11"]);
    let serial = |s: &Server| s.udp(&query("gslb.example.org.", RecordType::SOA)).answers[0].data.to_string();
    let before = serial(&s);
    assert_eq!(answers(&s.udp(&query("gslb.example.org.", RecordType::A))), ["192.0.2.200"]);
    assert_eq!(answers(&s.udp(&query("gslb.example.org.", RecordType::NS))), ["ns1.gslb.example.org."]);
    let below = s.udp(&query("x.app.gslb.example.org.", RecordType::A));
    assert_eq!(below.metadata.response_code, ResponseCode::NXDomain);

    ep.set(503);
    s.wait_dns("www.gslb.example.org.", RecordType::A, |m| answers(m) == ["app.gslb.example.org."]);
    let m = s.udp(&query("app.gslb.example.org.", RecordType::A));
    assert_eq!((m.metadata.response_code, m.answers.len()), (ResponseCode::NoError, 0), "nodata when all down");
    assert_eq!(serial(&s), before, "health does not move the serial");
    ep.set(200);
    s.wait_dns("www.gslb.example.org.", RecordType::A, |m| m.answers.len() == 2);
}

/// A TCP check with `send` and `expect` (a Redis-style `PING` → `+PONG`): the member is up
/// while its listener answers `+PONG`, down with the reason when it answers `-ERR`, up again
/// when it recovers.
#[test]
fn tcp_checks_script_an_exchange() {
    use std::io::{Read, Write};
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let listener = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let flag = Arc::clone(&healthy);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let flag = Arc::clone(&flag);
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut buf = [0u8; 64];
                let mut got = Vec::new();
                while !got.ends_with(b"\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let reply: &[u8] = if got == b"PING\r\n" && flag.load(Ordering::Relaxed) {
                    b"+PONG\r\n"
                } else {
                    b"-ERR loading the dataset\r\n"
                };
                let _ = conn.write_all(reply);
            });
        }
    });
    let pool = format!(
        "[[zone.pool]]\nname = \"cache\"\nttl = 5\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"tcp\"\nport = {port}\nsend = \"PING\\r\\n\"\nexpect = \"+PONG\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"r1\"\nipv4 = [\"127.0.0.2\"]\n"
    );
    let s = Server::start(&config("", &pool_zone(&pool)));
    s.wait_dns("cache.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.2"]);
    healthy.store(false, Ordering::Relaxed);
    s.wait_dns("cache.gslb.example.org.", RecordType::A, |m| answers(m).is_empty());
    let line = s.wait_log("health state changed").unwrap();
    assert!(line.contains(r#"reason=expect "+PONG" got "-ERR loading the dataset""#), "{line}");
    healthy.store(true, Ordering::Relaxed);
    s.wait_dns("cache.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.2"]);
    // send and expect belong to TCP checks.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gslbd.toml");
    std::fs::write(
        &path,
        config("", &pool_zone("[[zone.pool]]\nname = \"x\"\n[zone.pool.check]\ntype = \"http\"\nexpect = \"ok\"\n[[zone.pool.member]]\nname = \"m\"\nipv4 = [\"127.0.0.2\"]\n")),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("check.expect: is for type = \"tcp\" checks, not \"http\""), "{err}");
}
