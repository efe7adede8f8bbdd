//! The admin HTTP API over real HTTP(S) on loopback: the Elchi webhook (`/notify`), health,
//! readiness, records, authentication, error bodies and TLS.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::admin_client::*;
use crate::fake_controller::{FakeController, Mode, SECRET};
use crate::harness::*;

fn static_server(extra: &str) -> (Server, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let text = format!("{}[state]\ndir = \"{}\"\n{ZONE}{NESTED_ZONE}", admin_section(extra), state.path().display());
    (Server::start(&config("", &text)), state)
}

/// An accepted push answers in DNS before the 200 is sent; both auth headers work.
#[test]
fn notify_is_visible_in_dns_when_acknowledged() {
    let (s, _state) = static_server("");
    let c = Client::for_server(&s);
    let (code, body) =
        c.notify(json!({"records": [{"name": "new.gslb.example.org", "type": "A", "ttl": 30, "ips": ["192.0.2.60"]}]}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, json!({"status": "ok", "updated": 1, "deleted": 0, "skipped": [], "shadowed": []}));
    assert_eq!(answers(&s.udp(&query("new.gslb.example.org.", RecordType::A))), ["192.0.2.60"]);

    let bearer = format!("Bearer {ADMIN_SECRET}");
    let push = json!({"records": [{"name": "inner2.inner.gslb.example.org", "type": "AAAA", "ttl": 0, "ips": ["2001:db8::60"]}]});
    let (code, _) = c.call("POST", "/notify", Some(("Authorization", &bearer)), Some(push.to_string()));
    assert_eq!(code, 200);
    let m = s.udp(&query("inner2.inner.gslb.example.org.", RecordType::AAAA));
    assert_eq!(answers(&m), ["2001:db8::60"], "routed to the longest matching zone");
    assert_eq!(m.authorities.len(), 0);
}

/// In atomic mode (`?atomic=true`, or `[admin] notify = "atomic"`) one bad item rejects the
/// whole push: 400 with its index, nothing changes.
#[test]
fn a_bad_item_rejects_the_whole_push_in_atomic_mode() {
    let (s, _state) = static_server("");
    let (atomic_cfg, _state2) = static_server("notify = \"atomic\"");
    for (s, path) in [(&s, "/notify?atomic=true"), (&atomic_cfg, "/notify")] {
        rejects_every_bad_push(s, path);
    }
    let c = Client::for_server(&s);
    let (code, body) =
        c.call("POST", "/notify?atomic=maybe", Some(("X-Elchi-Secret", ADMIN_SECRET)), Some("{}".into()));
    assert_eq!(code, 400, "{body}");
}

fn rejects_every_bad_push(s: &Server, path: &str) {
    let c = Client::for_server(s);
    for (bad, item, section) in [
        (
            json!({"records": [{"name": "ok.gslb.example.org", "type": "A", "ips": ["192.0.2.1"]}, {"name": "b.gslb.example.org", "type": "A", "ips": ["300.1.1.1"]}]}),
            1,
            "records",
        ),
        (json!({"records": [{"name": "x.example.com", "type": "A", "ips": ["192.0.2.1"]}]}), 0, "records"),
        (json!({"records": [{"name": "ok.gslb.example.org", "type": "MX", "ips": ["192.0.2.1"]}]}), 0, "records"),
        (
            json!({"records": [{"name": "ok.gslb.example.org", "type": "A", "ips": ["192.0.2.1"]}], "deletes": [{"name": "app.gslb.example.org", "type": "TXT"}]}),
            0,
            "deletes",
        ),
    ] {
        let (code, body) = c.call("POST", path, Some(("X-Elchi-Secret", ADMIN_SECRET)), Some(bad.to_string()));
        assert_eq!(code, 400, "{bad}");
        assert_eq!(body["item"], json!(item), "{body}");
        assert_eq!(body["section"], json!(section), "{body}");
        assert!(body["error"].is_string());
        let m = s.udp(&query("ok.gslb.example.org.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "nothing applied for {bad}");
    }
    let (code, body) = c.call("POST", "/notify", Some(("X-Elchi-Secret", ADMIN_SECRET)), Some("{not json".into()));
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("invalid JSON"));
}

/// A failover record turns a name into a CNAME; addresses for it clear the CNAME; deletes
/// accept A, AAAA and CNAME and count items, as upstream (not whether they removed anything).
#[test]
fn failover_updates_and_deletes() {
    let (s, _state) = static_server("");
    let c = Client::for_server(&s);
    c.notify(json!({"records": [{"name": "svc.gslb.example.org", "type": "A", "ttl": 30, "ips": ["192.0.2.70"]}]}));
    let (code, _) = c.notify(json!({"records": [{"name": "svc.gslb.example.org", "type": "A", "ttl": 30, "ips": [], "failover": "app.gslb.example.org"}]}));
    assert_eq!(code, 200);
    let m = s.udp(&query("svc.gslb.example.org.", RecordType::A));
    assert_eq!(types(&m.answers), [RecordType::CNAME, RecordType::A, RecordType::A]);
    c.notify(json!({"records": [{"name": "svc.gslb.example.org", "type": "A", "ttl": 30, "ips": ["192.0.2.71"]}]}));
    assert_eq!(answers(&s.udp(&query("svc.gslb.example.org.", RecordType::A))), ["192.0.2.71"]);

    let (code, body) = c.notify(json!({"deletes": [{"name": "svc.gslb.example.org", "type": "A"}, {"name": "never.gslb.example.org", "type": "AAAA"}]}));
    assert_eq!(code, 200);
    assert_eq!(body, json!({"status": "ok", "updated": 0, "deleted": 2, "skipped": [], "shadowed": []}));
    let m = s.udp(&query("svc.gslb.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    c.notify(
        json!({"records": [{"name": "fo.gslb.example.org", "type": "AAAA", "ips": [], "failover": "www.example.net"}]}),
    );
    let (_, body) = c.notify(json!({"deletes": [{"name": "fo.gslb.example.org", "type": "cname"}]}));
    assert_eq!(body["deleted"], json!(1));
}

/// Authentication, unknown paths, wrong methods and oversized bodies all answer JSON errors.
#[test]
fn errors_are_json_with_the_right_status() {
    let (s, _state) = static_server("max_body = \"1KiB\"");
    let c = Client::for_server(&s);
    for auth in [None, Some(("X-Elchi-Secret", "wrong-secret")), Some(("Authorization", "Bearer nope"))] {
        let (code, body) = c.call("POST", "/notify", auth, Some("{}".into()));
        assert_eq!((code, body), (401, json!({"error": "unauthorized"})));
        let (code, _) = c.call("GET", "/records", auth, None);
        assert_eq!(code, 401);
    }
    let (code, body) = c.call("GET", "/nope", None, None);
    assert_eq!(code, 404);
    assert!(body["error"].is_string());
    // The secret is checked before the method, as upstream: 401 comes before 405.
    let auth = Some(("X-Elchi-Secret", ADMIN_SECRET));
    for (method, path) in [("DELETE", "/notify"), ("GET", "/notify"), ("POST", "/records")] {
        assert_eq!(c.call(method, path, None, None).0, 401, "{method} {path} without the secret");
        let (code, body) = c.call(method, path, auth, None);
        assert_eq!(code, 405, "{method} {path} with the secret");
        assert!(body["error"].is_string());
    }
    let big = json!({"records": [{"name": "a.gslb.example.org", "type": "A", "ips": vec!["192.0.2.1"; 200]}]});
    let (code, body) = c.notify(big);
    assert_eq!(code, 413, "{body}");
    assert!(body["error"].is_string());
}

/// `/records` lists static and pushed records, sorted, with filters and sources.
#[test]
fn records_lists_sorted_and_filtered() {
    let (s, _state) = static_server("");
    let c = Client::for_server(&s);
    c.notify(json!({"records": [{"name": "pushed.gslb.example.org", "type": "A", "ttl": 30, "ips": ["192.0.2.80"]}]}));
    let auth = Some(("X-Elchi-Secret", ADMIN_SECRET));
    let (code, body) = c.call("GET", "/records?zone=gslb.example.org", auth, None);
    assert_eq!(code, 200);
    // Upstream's shape: the zone as an FQDN with its trailing dot.
    assert_eq!(body["zone"], json!("gslb.example.org."));
    let list = body["records"].as_array().unwrap();
    assert_eq!(body["count"], json!(list.len()));
    let keys: Vec<(String, String)> =
        list.iter().map(|r| (r["name"].as_str().unwrap().into(), r["type"].as_str().unwrap().into())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let pushed = list.iter().find(|r| r["name"] == "pushed.gslb.example.org").unwrap();
    assert_eq!(pushed["source"], json!("webhook"));
    assert_eq!(pushed["ips"], json!(["192.0.2.80"]));
    let www = list.iter().find(|r| r["name"] == "www.gslb.example.org").unwrap();
    assert_eq!(
        (www["type"].clone(), www["target"].clone(), www["source"].clone()),
        (json!("CNAME"), json!("app.gslb.example.org"), json!("static"))
    );

    let (_, body) = c.call("GET", "/records?zone=gslb.example.org&name=APP&type=a", auth, None);
    let names: Vec<&str> = body["records"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["app.gslb.example.org"]);
    let (code, _) = c.call("GET", "/records?zone=nope.example", auth, None);
    assert_eq!(code, 404);
}

/// Pushed changes survive a restart without controller: they are in the journal when
/// acknowledged and folded into the state file when the server stops.
#[test]
fn pushed_records_survive_a_restart() {
    let (mut s, state) = static_server("");
    let c = Client::for_server(&s);
    c.notify(json!({"records": [{"name": "kept.gslb.example.org", "type": "A", "ttl": 30, "ips": ["192.0.2.90"]}]}));
    c.notify(json!({"records": [{"name": "later.gslb.example.org", "type": "A", "ttl": 30, "ips": ["192.0.2.91"]}]}));
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));
    drop(s);
    let file = std::fs::read_to_string(state.path().join("gslb.example.org.json")).unwrap();
    assert!(file.contains("kept.gslb.example.org") && file.contains("later.gslb.example.org"), "{file}");
    let text = format!("{}[state]\ndir = \"{}\"\n{ZONE}", admin_section(""), state.path().display());
    let s = Server::start(&config("", &text));
    assert_eq!(answers(&s.udp(&query("kept.gslb.example.org.", RecordType::A))), ["192.0.2.90"]);
    assert_eq!(answers(&s.udp(&query("later.gslb.example.org.", RecordType::A))), ["192.0.2.91"]);
}

fn poll_until(deadline: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !f() {
        assert!(Instant::now() < end, "condition not met before the deadline");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Health turns degraded (503) when the controller stops answering for 2 × sync_interval and
/// healthy again when it returns; readiness waits for the first snapshot.
#[test]
fn health_and_readiness_follow_the_controller() {
    let fake = FakeController::start(
        "gslb.example.org",
        "v1",
        json!([{"name": "c.gslb.example.org", "type": "A", "ttl": 30, "ips": ["192.0.2.99", "192.0.2.98"]}]),
    );
    fake.set(|st| st.mode = Mode::Status(500));
    let state = tempfile::tempdir().unwrap();
    let zone = format!(
        "{}[state]\ndir = \"{}\"\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\n[zone.controller]\nendpoint = \"{}\"\nsecret = \"{SECRET}\"\nsync_interval = \"1s\"\ntimeout = \"300ms\"\n",
        admin_section(""),
        state.path().display(),
        fake.endpoint()
    );
    let s = Server::start(&config("", &zone));
    let c = Client::for_server(&s);
    let (code, body) = c.call("GET", "/ready", None, None);
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["zones"], json!(["gslb.example.org."]));
    let (_, body) = c.call("GET", "/health", None, None);
    assert_eq!(body["zone"], json!("gslb.example.org."));
    assert_eq!(body["last_success"], Value::Null, "{body}");
    poll_until(DEADLINE, || c.call("GET", "/health", None, None).0 == 503);
    let (_, body) = c.call("GET", "/health", None, None);
    assert_eq!(body["status"], json!("degraded"));
    assert_eq!(body["last_sync_status"], json!("failed"));
    assert!(body["error"].as_str().unwrap().contains("500"));
    // Upstream's `last_sync` is the last attempt, so it is a time even while every sync fails.
    assert!(body["last_sync"].as_str().unwrap().starts_with("20"), "{body}");
    assert_eq!(body["last_success"], Value::Null);

    fake.set(|st| st.mode = Mode::Normal);
    poll_until(DEADLINE, || c.call("GET", "/health", None, None).0 == 200);
    let (_, body) = c.call("GET", "/health", None, None);
    assert_eq!(body["status"], json!("healthy"));
    assert_eq!(body["source"], json!("controller"));
    assert_eq!(body["version_hash"], json!("v1"));
    assert_eq!(body["stale"], json!(false));
    // Upstream counts resource records: one A record with two addresses is 2.
    assert_eq!(body["records_count"], json!(2));
    assert!(body["last_sync"].as_str().unwrap().ends_with('Z'));
    assert!(body["last_success"].as_str().unwrap().ends_with('Z'));
    assert_eq!(c.call("GET", "/ready", None, None).0, 200);
    let text = c.text("/metrics");
    for family in [
        "gslbd_sync_duration_seconds_bucket{",
        "gslbd_sync_errors_total{zone=\"gslb.example.org\",kind=\"snapshot\"}",
        "gslbd_controller_version_info{zone=\"gslb.example.org\",version_hash=\"v1\",origin=\"controller\"} 1",
        "gslbd_zone_records{zone=\"gslb.example.org\",source=\"controller\"} 2",
    ] {
        assert!(text.contains(family), "missing {family} in\n{text}");
    }
    // The controller answered just now: its sync age is a few seconds at most.
    let age: f64 = text
        .lines()
        .find(|l| l.starts_with("gslbd_sync_age_seconds{zone=\"gslb.example.org\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no sync age in\n{text}"));
    assert!(age <= 5.0, "sync age {age}");
}

/// With several zones `/health` reports each, `?zone=` selects one; static zones are healthy.
#[test]
fn health_with_several_zones() {
    let (s, _state) = static_server("");
    let c = Client::for_server(&s);
    let (code, body) = c.call("GET", "/health", None, None);
    assert_eq!(code, 200);
    assert_eq!(body["status"], json!("healthy"));
    assert_eq!(body["zones"].as_array().unwrap().len(), 2);
    let (code, body) = c.call("GET", "/health?zone=inner.gslb.example.org.", None, None);
    assert_eq!(code, 200);
    assert_eq!((body["zone"].clone(), body["source"].clone()), (json!("inner.gslb.example.org."), json!("static")));
    // Before any sync (here: a zone without a controller) `last_sync` is Go's zero time.
    assert_eq!(body["last_sync"], json!("0001-01-01T00:00:00Z"));
    assert_eq!(c.call("GET", "/health?zone=other.test", None, None).0, 404);
    assert_eq!(c.call("GET", "/ready", None, None).0, 200);
}

/// The admin API over HTTPS with a certificate made in the test.
#[test]
fn admin_over_https() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let extra = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display()
    );
    let (s, _state) = static_server(&extra);
    assert!(s.wait_log("admin API listening").unwrap().contains("https"));
    let c = Client::new(format!("https://{}", s.admin_addr()), Some(&cert.cert.pem()));
    let (code, body) = c.call("GET", "/health", None, None);
    assert_eq!(code, 200, "{body}");
    let (code, _) = c.notify(json!({"records": [{"name": "tls.gslb.example.org", "type": "A", "ips": ["192.0.2.5"]}]}));
    assert_eq!(code, 200);
}

/// `/metrics` is Prometheus text with the query counters (summed over workers, one row per
/// zone, type and rcode, adding up to the queries sent), answer sources, sync and webhook
/// families and build info.
#[test]
fn metrics_expose_the_listed_families() {
    let (s, _state) = static_server("");
    let c = Client::for_server(&s);
    let sent = [
        ("app.gslb.example.org.", RecordType::A),
        ("app.gslb.example.org.", RecordType::AAAA),
        ("nope.gslb.example.org.", RecordType::A),
        ("example.com.", RecordType::A),
        ("app.inner.gslb.example.org.", RecordType::A),
    ];
    for (name, t) in sent {
        s.udp(&query(name, t));
    }
    s.tcp_query(&query("info.gslb.example.org.", RecordType::TXT));
    c.call("GET", "/records", None, None);
    let text = c.text("/metrics");
    let value = |line: &str| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
    let queries: Vec<&str> = text.lines().filter(|l| l.starts_with("gslbd_queries_total{")).collect();
    let total: f64 = queries.iter().map(|l| value(l)).sum();
    assert_eq!(total, 6.0, "{text}");
    assert!(
        queries.iter().any(|l| l.contains("zone=\"gslb.example.org\"")
            && l.contains("qtype=\"A\"")
            && l.contains("rcode=\"NOERROR\"")),
        "{text}"
    );
    assert!(queries.iter().any(|l| l.contains("rcode=\"NXDOMAIN\"")));
    assert!(queries.iter().any(|l| l.contains("zone=\"none\"") && l.contains("rcode=\"REFUSED\"")));
    assert!(queries.iter().any(|l| l.contains("zone=\"inner.gslb.example.org\"")));
    for family in [
        "gslbd_answers_total{source=\"static\"}",
        "gslbd_truncated_responses_total",
        "gslbd_tcp_connections_total{result=\"accepted\"} 1",
        "gslbd_build_info{version=",
        "gslbd_zone_records{zone=\"gslb.example.org\",source=\"static\"}",
        "gslbd_zone_serial{zone=\"gslb.example.org\"}",
        "gslbd_webhook_requests_total{endpoint=\"records\",status=\"unauthorized\"} 1",
    ] {
        assert!(text.contains(family), "missing {family} in\n{text}");
    }
}

/// A client that dribbles its headers is cut off after `header_timeout`; at
/// `max_connections` the longest-idle connection (still sending headers) is closed so a new
/// one is answered; DNS keeps answering throughout.
#[test]
fn slow_and_excess_admin_clients_are_bounded() {
    use std::io::{Read, Write};
    let (s, _state) = static_server("header_timeout = \"300ms\"\nmax_connections = 2");
    let addr = s.admin_addr();
    let mut first = std::net::TcpStream::connect(addr).unwrap();
    first.set_read_timeout(Some(DEADLINE)).unwrap();
    first.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(DEADLINE)).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
    // Both places are taken by idle connections: a third is answered, the first closed.
    let mut third = std::net::TcpStream::connect(addr).unwrap();
    third.set_read_timeout(Some(DEADLINE)).unwrap();
    third.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    third.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut buf = [0u8; 512];
    assert!(matches!(first.read(&mut buf), Ok(0) | Err(_)), "the longest idle connection was closed");
    assert_eq!(s.udp(&query("app.gslb.example.org.", RecordType::A)).answers.len(), 2);
    // The slow client is cut off by the header timeout (the read returns before DEADLINE).
    let n = slow.read(&mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    drop((first, slow));
    let c = Client::for_server(&s);
    poll_until(DEADLINE, || c.call("GET", "/ready", None, None).0 == 200);
}

/// `/records` pages by whole names (`limit`, `after` = the `next` of the page before): the
/// pages together list every record once, in order, whatever the page size.
#[test]
fn records_are_paginated() {
    let (s, _state) = static_server("");
    let c = Client::for_server(&s);
    let records: Vec<Value> = (0..25)
        .map(|i| json!({"name": format!("p{i:02}.gslb.example.org"), "type": "A", "ips": [format!("192.0.2.{i}")]}))
        .collect();
    assert_eq!(c.notify(json!({"records": records})).0, 200);
    let auth = Some(("X-Elchi-Secret", ADMIN_SECRET));
    let (_, all) = c.call("GET", "/records?zone=gslb.example.org", auth, None);
    assert!(all.get("next").is_none(), "one page by default: {all}");
    let everything: Vec<Value> = all["records"].as_array().unwrap().clone();
    let mut paged: Vec<Value> = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let path = format!("/records?zone=gslb.example.org&limit=7{after}");
        let (code, body) = c.call("GET", &path, auth, None);
        assert_eq!(code, 200, "{body}");
        let names: std::collections::BTreeSet<&str> =
            body["records"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.len() <= 7, "{names:?}");
        paged.extend(body["records"].as_array().unwrap().iter().cloned());
        pages += 1;
        match body.get("next").and_then(Value::as_str) {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    assert!(pages >= 5, "{pages} pages");
    assert_eq!(paged, everything);
    assert_eq!(c.call("GET", "/records?limit=0", auth, None).0, 400);
}

/// A flood of requests with a wrong secret gives one log line (with its count) per 10 s,
/// while the metrics count every one.
#[test]
fn failed_secrets_are_logged_at_a_limited_rate() {
    let (s, _state) = static_server("");
    let c = Client::for_server(&s);
    for _ in 0..20 {
        let (code, _) = c.call("GET", "/records", Some(("X-Elchi-Secret", "wrong-secret")), None);
        assert_eq!(code, 401);
    }
    let (code, _) = c.call("POST", "/notify", None, Some("{}".into()));
    assert_eq!(code, 401);
    let text = c.text("/metrics");
    assert!(text.contains("gslbd_webhook_requests_total{endpoint=\"records\",status=\"unauthorized\"} 20"), "{text}");
    let lines = s.log_text().lines().filter(|l| l.contains("wrong or missing secret")).count();
    assert_eq!(lines, 1, "{}", s.log_text());
}

/// Connections held open by other clients (half-sent headers, from eight addresses, more
/// than `max_connections`) never keep `/health` and `/ready` away: the longest-idle one is
/// closed to make room.
#[test]
fn held_connections_do_not_lock_out_health() {
    let (s, _state) = static_server("max_connections = 20\nmax_connections_per_client = 4");
    let mut held = Vec::new();
    for i in 0..40u8 {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&std::net::SocketAddr::from(([127, 0, 0, 2 + i % 8], 0)).into()).unwrap();
        sock.connect(&s.admin_addr().into()).unwrap();
        let mut c: std::net::TcpStream = sock.into();
        std::io::Write::write_all(&mut c, b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
        held.push(c);
    }
    let c = Client::for_server(&s);
    for path in ["/health", "/ready"] {
        let (code, _) = c.call("GET", path, None, None);
        assert_eq!(code, 200, "{path}");
    }
    drop(held);
}

/// Authenticated clients sending `/notify` bodies at a byte a second (`Content-Length:
/// 1000000`, from 50 addresses, 4 connections each) never keep `/health` and `/ready` away:
/// a connection still sending its body counts as idle and is closed to make room, and a
/// body not finished within `header_timeout` gets a JSON 408.
#[test]
fn slow_bodies_do_not_lock_out_health() {
    use std::io::{Read, Write};
    let (s, _state) = static_server("max_connections = 64\nmax_connections_per_client = 4\nheader_timeout = \"2s\"");
    let head = format!(
        "POST /notify HTTP/1.1\r\nHost: x\r\nX-Elchi-Secret: {ADMIN_SECRET}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{"
    );
    let mut slow = Vec::new();
    for i in 0..200u32 {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&std::net::SocketAddr::from(([127, 0, 1, 2 + (i % 50) as u8], 0)).into()).unwrap();
        if sock.connect(&s.admin_addr().into()).is_err() {
            continue;
        }
        let mut c: std::net::TcpStream = sock.into();
        let _ = c.write_all(head.as_bytes());
        slow.push(c);
    }
    // A byte a second from each while /health and /ready are asked for.
    let c = Client::for_server(&s);
    let end = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < end {
        for path in ["/health", "/ready"] {
            let (code, body) = c.call("GET", path, None, None);
            assert_eq!(code, 200, "{path}: {body}");
        }
        for conn in &mut slow {
            let _ = conn.write_all(b" ");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // One still open past the deadline was told why, in JSON (or closed to make room).
    let mut timed_out = 0;
    for conn in &mut slow {
        conn.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut text = String::new();
        let _ = conn.read_to_string(&mut text);
        if text.starts_with("HTTP/1.1 408") {
            assert!(text.contains("\"error\":\"request body timed out\""), "{text}");
            timed_out += 1;
        }
    }
    assert!(timed_out > 0, "no body was cut off at its deadline");
}

/// Two requests in one write (pipelined) get two responses, in order; the connection closes
/// after the one that asks for it.
#[test]
fn pipelined_requests_get_every_response() {
    use std::io::{Read, Write};
    let (s, _state) = static_server("");
    let mut conn = std::net::TcpStream::connect(s.admin_addr()).unwrap();
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    conn.write_all(
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "the connection was held for {:?}", started.elapsed());
    let statuses: Vec<&str> = text.match_indices("HTTP/1.1 ").map(|(i, _)| &text[i + 9..i + 12]).collect();
    assert_eq!(statuses, ["200", "200"], "{text}");
    assert!(text.contains("\"status\":\"ready\""), "{text}");
}

/// Requests hyper refuses before any route sees them (a space in the URI, a bare CR in a
/// header, a URI too long, a head too large) get the same JSON error body as every other.
#[test]
fn malformed_requests_get_json_errors() {
    use std::io::{Read, Write};
    let (s, _state) = static_server("");
    let huge_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let huge_head = format!("GET /health HTTP/1.1\r\nHost: x\r\n{}\r\n", "X-Pad: aaaaaaaaaaaaaaaa\r\n".repeat(5000));
    for (request, status) in [
        ("GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n".to_string(), "400"),
        ("GET /health HTTP/1.1\r\nHo\rst: x\r\n\r\n".to_string(), "400"),
        (huge_uri, "414"),
        (huge_head, "431"),
    ] {
        let mut conn = std::net::TcpStream::connect(s.admin_addr()).unwrap();
        conn.set_read_timeout(Some(DEADLINE)).unwrap();
        let _ = conn.write_all(request.as_bytes());
        let mut text = String::new();
        let _ = conn.read_to_string(&mut text);
        assert_eq!(text.get(9..12), Some(status), "{text}");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("content-type: application/json"), "{text}");
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(v["error"].is_string(), "{text}");
    }
}
