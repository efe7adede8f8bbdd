//! Elchi controller sync against a fake controller on 127.0.0.1: protocol, parameters and
//! headers, change detection, bad data and faults (nothing served is lost), last-known-good
//! state on disk, back-off, precedence of static records.

use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::fake_controller::{FakeController, Mode, SECRET, Unchanged};
use crate::harness::*;

const ZONE_NAME: &str = "gslb.example.org";

fn rec(name: &str, rtype: &str, ttl: u32, ips: &[&str]) -> Value {
    json!({"name": format!("{name}.{ZONE_NAME}"), "type": rtype, "ttl": ttl, "ips": ips})
}

fn base_records() -> Value {
    json!([
        rec("listener1", "A", 300, &["192.168.1.10", "192.168.1.11"]),
        rec("listener3", "AAAA", 600, &["2001:db8::1"]),
        {"name": "asia.gslb.example.org", "type": "A", "ttl": 20, "ips": [], "failover": "europe.gslb.example.org", "enabled": false},
        rec("europe", "a", 20, &["10.20.1.30"]),
        {"name": "away.gslb.example.org.", "type": "A", "ttl": 20, "ips": [], "failover": "www.example.net"},
        rec("zero", "A", 0, &["192.0.2.99"]),
    ])
}

/// A config for `fake`, with `extra` lines in `[zone.controller]` and static `records`.
fn config_for(endpoint: &str, state: &Path, extra: &str, records: &str) -> String {
    let zone = format!(
        "[state]\ndir = \"{}\"\n\n[[zone]]\nname = \"{ZONE_NAME}\"\ndefault_ttl = 77\nns = [\"ns1.{ZONE_NAME}\"]\nrecords = \"\"\"\n{records}\"\"\"\n[zone.controller]\nendpoint = \"{endpoint}\"\nsecret = \"{SECRET}\"\nsync_interval = \"1s\"\ntimeout = \"500ms\"\n{extra}\n",
        state.display()
    );
    config("", &zone)
}

fn has_answers(m: &Message) -> bool {
    !m.answers.is_empty()
}

/// Start-up loads `/dns/snapshot` with zone, node_ip and regions; the path prefix is kept;
/// headers carry the secret, JSON and our User-Agent.
#[test]
fn snapshot_is_loaded_with_parameters_and_headers() {
    let fake = FakeController::start(ZONE_NAME, "v1", base_records());
    let state = tempfile::tempdir().unwrap();
    let extra = "node_ip = \"10.0.0.1\"\nregions = [\"asya\", \"avrupa\"]";
    let s = Server::start(&config_for(&fake.endpoint(), state.path(), extra, ""));
    let m = s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
    let mut got = answers(&m);
    got.sort();
    assert_eq!(got, ["192.168.1.10", "192.168.1.11"]);
    assert_eq!(m.answers[0].ttl, 300);
    assert!(m.metadata.authoritative);

    let first = &fake.seen()[0];
    assert_eq!(first.path, "/api/dns/snapshot");
    assert_eq!(first.query.get("zone").map(String::as_str), Some(ZONE_NAME));
    assert_eq!(first.query.get("node_ip").map(String::as_str), Some("10.0.0.1"));
    assert_eq!(first.query.get("regions").map(String::as_str), Some("asya,avrupa"));
    assert!(!first.query.contains_key("since"));
    assert_eq!(first.headers.get("x-elchi-secret").map(String::as_str), Some(SECRET));
    assert_eq!(first.headers.get("accept").map(String::as_str), Some("application/json"));
    assert!(first.headers.get("user-agent").is_some_and(|u| u.starts_with("gslbd/")), "{:?}", first.headers);

    let aaaa = s.udp(&query("listener3.gslb.example.org.", RecordType::AAAA));
    assert_eq!(answers(&aaaa), ["2001:db8::1"]);
}

/// `regions = ["all"]` and no node_ip send neither parameter.
#[test]
fn all_regions_and_no_node_ip_send_no_parameters() {
    let fake = FakeController::start(ZONE_NAME, "v1", base_records());
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config_for(&fake.endpoint(), state.path(), "regions = [\"ALL\"]", ""));
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
    let first = &fake.seen()[0];
    assert!(!first.query.contains_key("regions") && !first.query.contains_key("node_ip"), "{:?}", first.query);
}

/// After the snapshot, `/dns/changes?since=HASH` is polled; 304 and `{"unchanged":true}` keep
/// the data; a changed set replaces the controller's part of the zone atomically.
#[test]
fn changes_are_polled_and_replace_the_zone() {
    let fake = FakeController::start(ZONE_NAME, "v1", base_records());
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config_for(&fake.endpoint(), state.path(), "", ""));
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
    let seen = fake.wait_request(1, |r| r.path == "/api/dns/changes");
    assert_eq!(seen.query.get("since").map(String::as_str), Some("v1"));
    fake.set(|st| st.unchanged = Unchanged::Json);
    let mark = fake.count();
    fake.wait_request(mark, |r| r.path == "/api/dns/changes");
    fake.wait_request(mark + 1, |r| r.path == "/api/dns/changes");
    assert_eq!(s.udp(&query("listener1.gslb.example.org.", RecordType::A)).answers.len(), 2);

    fake.set(|st| {
        st.hash = "v2".into();
        st.records = json!([rec("listener1", "A", 30, &["192.168.9.9"]), rec("fresh", "A", 30, &["192.168.9.10"])]);
    });
    let m = s.wait_dns("listener1.gslb.example.org.", RecordType::A, |m| answers(m) == ["192.168.9.9"]);
    assert_eq!(m.answers[0].ttl, 30);
    assert_eq!(answers(&s.udp(&query("fresh.gslb.example.org.", RecordType::A))), ["192.168.9.10"]);
    let gone = s.udp(&query("listener3.gslb.example.org.", RecordType::AAAA));
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    let next = fake.wait_request(fake.count(), |r| r.path == "/api/dns/changes");
    assert_eq!(next.query.get("since").map(String::as_str), Some("v2"));
}

/// A record without IPs and with a failover name is a CNAME, chased in-zone; TTL 0 means
/// the zone's default_ttl.
#[test]
fn failover_cname_is_chased_and_ttl_zero_uses_the_default() {
    let fake = FakeController::start(ZONE_NAME, "v1", base_records());
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config_for(&fake.endpoint(), state.path(), "", ""));
    let m = s.wait_dns("asia.gslb.example.org.", RecordType::A, has_answers);
    assert_eq!(types(&m.answers), [RecordType::CNAME, RecordType::A]);
    assert_eq!(m.answers[0].data.to_string(), "europe.gslb.example.org.");
    assert_eq!(m.answers[1].data.to_string(), "10.20.1.30");
    let m = s.udp(&query("asia.gslb.example.org.", RecordType::AAAA));
    assert_eq!(types(&m.answers), [RecordType::CNAME]);
    let m = s.udp(&query("away.gslb.example.org.", RecordType::A));
    assert_eq!(answers(&m), ["www.example.net."]);
    let m = s.udp(&query("zero.gslb.example.org.", RecordType::A));
    assert_eq!(m.answers[0].ttl, 77);
}

/// Bad records are skipped and counted; good ones (and good IPs of partly bad records) stay.
#[test]
fn bad_records_are_skipped_not_fatal() {
    let records = json!([
        rec("good", "A", 60, &["192.0.2.1", "not-an-ip", "2001:db8::5"]),
        rec("good", "A", 60, &["192.0.2.2"]),
        {"name": "evilgslb.example.org", "type": "A", "ttl": 60, "ips": ["192.0.2.3"]},
        {"name": "other.example.com", "type": "A", "ttl": 60, "ips": ["192.0.2.4"]},
        rec("v4in6", "AAAA", 60, &["192.0.2.5"]),
        rec("mx", "MX", 60, &["192.0.2.6"]),
        rec("nothing", "A", 60, &[]),
    ]);
    let fake = FakeController::start(ZONE_NAME, "v1", records);
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config_for(&fake.endpoint(), state.path(), "", ""));
    let m = s.wait_dns("good.gslb.example.org.", RecordType::A, has_answers);
    let mut got = answers(&m);
    got.sort();
    assert_eq!(got, ["192.0.2.1", "192.0.2.2"], "duplicates merged, bad IPs dropped");
    for bad in ["v4in6", "mx", "nothing"] {
        let m = s.udp(&query(&format!("{bad}.gslb.example.org."), RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{bad}");
    }
    let line = s.wait_log("skipped invalid controller records").unwrap();
    assert!(line.contains("skipped_records=5"), "{line}");
    assert!(line.contains("skipped_ips=3"), "{line}");
}

/// Rejected responses (status, bad JSON, missing fields, wrong zone, too large, timeout,
/// wrong secret) keep the data in force and are logged with the status or body.
#[test]
fn rejected_responses_keep_the_data_in_force() {
    let fake = FakeController::start(ZONE_NAME, "v1", base_records());
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config_for(&fake.endpoint(), state.path(), "max_response_size = \"4KiB\"", ""));
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
    let cases: Vec<(Mode, &str)> = vec![
        (Mode::Status(500), "unexpected status 500: \"controller says no\""),
        (Mode::Raw("{not json".into()), "invalid JSON"),
        (Mode::Raw(r#"{"unchanged":false,"zone":"gslb.example.org","records":[]}"#.into()), "missing version_hash"),
        (Mode::Raw(r#"{"unchanged":false,"version_hash":"x","records":[]}"#.into()), "missing zone"),
        (
            Mode::Raw(r#"{"unchanged":false,"zone":"other.example.org","version_hash":"x","records":[]}"#.into()),
            "not ours",
        ),
        (
            Mode::Raw(format!(r#"{{"zone":"gslb.example.org","version_hash":"x","pad":"{}"}}"#, "x".repeat(5000))),
            "larger than 4096 bytes",
        ),
        (
            Mode::Raw(
                r#"{"unchanged":false,"zone":"gslb.example.org","version_hash":"x","records":[{"name":"a","ttl":-1}]}"#
                    .into(),
            ),
            "invalid JSON",
        ),
        (Mode::Delay(Duration::from_secs(2)), "timed out"),
    ];
    for (mode, expect) in cases {
        let mark = s.log_len();
        fake.set(|st| st.mode = mode.clone());
        let line = s.wait_log_after("controller sync failed", mark).expect("failure logged");
        assert!(line.contains(expect), "{mode:?}: want {expect:?} in {line}");
        let m = s.udp(&query("listener1.gslb.example.org.", RecordType::A));
        assert_eq!(m.answers.len(), 2, "{mode:?}: data lost");
        fake.set(|st| st.mode = Mode::Normal);
    }
}

/// A wrong secret gets 401, which is logged; the zone serves its static records, and names
/// only the controller could answer get SERVFAIL (its data never loaded), not NXDOMAIN.
#[test]
fn wrong_secret_is_rejected() {
    let fake = FakeController::start(ZONE_NAME, "v1", base_records());
    let state = tempfile::tempdir().unwrap();
    let text = config_for(&fake.endpoint(), state.path(), "", "static 60 IN A 192.0.2.200\n")
        .replace(&format!("secret = \"{SECRET}\""), "secret = \"wrong-secret\"");
    let s = Server::start(&text);
    let line = s.wait_log("controller sync failed").unwrap();
    assert!(line.contains("401"), "{line}");
    assert_eq!(answers(&s.udp(&query("static.gslb.example.org.", RecordType::A))), ["192.0.2.200"]);
    let m = s.udp(&query("listener1.gslb.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}

/// Every accepted snapshot goes to the state file; a restart with the controller down
/// answers from it at once.
#[test]
fn restart_with_the_controller_down_serves_the_state_file() {
    let state = tempfile::tempdir().unwrap();
    let endpoint = {
        let fake = FakeController::start(ZONE_NAME, "v1", base_records());
        let s = Server::start(&config_for(&fake.endpoint(), state.path(), "", ""));
        s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
        // The file is written (atomically) right after DNS answers the data.
        let file = state.path().join("gslb.example.org.json");
        let end = Instant::now() + DEADLINE;
        while !file.exists() {
            assert!(Instant::now() < end, "state file never written");
            std::thread::sleep(Duration::from_millis(10));
        }
        fake.endpoint()
    };
    // The fake is gone: its port refuses connections.
    let s = Server::start(&config_for(&endpoint, state.path(), "", ""));
    let m = s.udp(&query("listener1.gslb.example.org.", RecordType::A));
    assert_eq!(m.answers.len(), 2, "served from disk right after start-up");
    let m = s.udp(&query("asia.gslb.example.org.", RecordType::A));
    assert_eq!(types(&m.answers), [RecordType::CNAME, RecordType::A]);
    assert!(s.wait_log("from disk").is_some());
    assert!(s.wait_log("controller sync failed").is_some());
}

/// A corrupt or foreign state file is ignored with a warning; the zone waits for the
/// controller, and is picked up when it answers.
#[test]
fn corrupt_state_file_is_ignored() {
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("gslb.example.org.json"), b"{\"format\": 12").unwrap();
    let fake = FakeController::start(ZONE_NAME, "v1", base_records());
    let s = Server::start(&config_for(&fake.endpoint(), state.path(), "", ""));
    assert!(s.wait_log("ignoring the state file").unwrap().contains("corrupt"));
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);

    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(
        foreign.path().join("gslb.example.org.json"),
        br#"{"format":"gslbd-controller-state/1","zone":"other.example.org","version_hash":"x","saved_at":0,"records":[]}"#,
    )
    .unwrap();
    let s = Server::start(&config_for(&fake.endpoint(), foreign.path(), "", ""));
    assert!(s.wait_log("ignoring the state file").unwrap().contains("other.example.org"));
}

/// A controller that fails at start-up and comes back is picked up within the back-off,
/// long before `sync_interval` would have elapsed.
#[test]
fn controller_back_after_a_failed_start_is_picked_up() {
    let fake = FakeController::start(ZONE_NAME, "v1", base_records());
    fake.set(|st| st.mode = Mode::Status(503));
    let state = tempfile::tempdir().unwrap();
    let text =
        config_for(&fake.endpoint(), state.path(), "", "").replace("sync_interval = \"1s\"", "sync_interval = \"1h\"");
    let s = Server::start(&text);
    assert!(s.wait_log("controller sync failed").unwrap().contains("503"));
    fake.set(|st| st.mode = Mode::Normal);
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
}

/// Precedence: by default (`static_records = "fallback"`, upstream's `elchi { fallthrough }`
/// before `file`) controller data wins on a name it defines and static records fill the rest;
/// with `"override"` static records win and the shadowed controller record is logged.
#[test]
fn controller_or_static_records_win_by_mode() {
    let records = json!([rec("app", "A", 60, &["10.9.9.9"]), rec("app", "AAAA", 60, &["2001:db8::99"])]);
    let fake = FakeController::start(ZONE_NAME, "v1", records);
    let statics = "app 60 IN A 192.0.2.10
app 60 IN TXT \"static\"
";
    for (mode, want) in [
        ("", "10.9.9.9"),
        ("static_records = \"fallback\"", "10.9.9.9"),
        ("static_records = \"override\"", "192.0.2.10"),
    ] {
        let state = tempfile::tempdir().unwrap();
        let text = config_for(&fake.endpoint(), state.path(), "", statics)
            .replace("default_ttl = 77", &format!("default_ttl = 77\n{mode}"));
        let s = Server::start(&text);
        s.wait_dns("app.gslb.example.org.", RecordType::AAAA, has_answers);
        assert_eq!(answers(&s.udp(&query("app.gslb.example.org.", RecordType::A))), [want], "{mode}");
        // A type only the static records have is answered in both modes.
        assert_eq!(s.udp(&query("app.gslb.example.org.", RecordType::TXT)).answers.len(), 1, "{mode}");
        if mode.contains("override") {
            let line = s.wait_log("not answered").unwrap();
            assert!(line.contains("shadowed=1") && line.contains("by static"), "{line}");
        }
    }
}

/// An empty record set is accepted (the controller may empty a zone) with a warning.
#[test]
fn empty_record_set_is_accepted_with_a_warning() {
    let fake = FakeController::start(ZONE_NAME, "v1", base_records());
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config_for(&fake.endpoint(), state.path(), "", ""));
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
    fake.set(|st| {
        st.hash = "v2".into();
        st.records = json!([]);
    });
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, |m| m.metadata.response_code == ResponseCode::NXDomain);
    assert!(s.wait_log("empty record set").is_some());
}

/// Several zones each sync from their own controller; a reload keeps their data serving.
#[test]
fn zones_sync_from_their_own_controllers_and_survive_reload() {
    let a = FakeController::start(ZONE_NAME, "a1", base_records());
    let b = FakeController::start(
        "other.example.org",
        "b1",
        json!([{"name": "svc.other.example.org", "type": "A", "ttl": 60, "ips": ["198.51.100.7"]}]),
    );
    let state = tempfile::tempdir().unwrap();
    let second = format!(
        "[[zone]]\nname = \"other.example.org\"\nns = [\"ns1.other.example.org\"]\n[zone.controller]\nendpoint = \"{}\"\nsecret = \"{SECRET}\"\nsync_interval = \"1h\"\n",
        b.endpoint()
    );
    let text = format!("{}{second}", config_for(&a.endpoint(), state.path(), "", ""));
    let s = Server::start(&text);
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
    s.wait_dns("svc.other.example.org.", RecordType::A, has_answers);
    assert_eq!(b.seen()[0].query.get("zone").map(String::as_str), Some("other.example.org"));

    let mark = s.log_len();
    s.signal("HUP");
    assert!(s.wait_log_after("config reloaded", mark).is_some());
    assert_eq!(s.udp(&query("svc.other.example.org.", RecordType::A)).answers.len(), 1);
    assert_eq!(s.udp(&query("listener1.gslb.example.org.", RecordType::A)).answers.len(), 2);
}

/// HTTPS controllers: a private CA via `ca_file`, or `tls_skip_verify`; an unknown
/// certificate without either is a logged TLS failure.
#[test]
fn https_controller_with_ca_file_or_skip_verify() {
    let (fake, cert_pem) = FakeController::start_tls(ZONE_NAME, "v1", base_records());
    let state = tempfile::tempdir().unwrap();
    let ca = state.path().join("ca.pem");
    std::fs::write(&ca, &cert_pem).unwrap();

    let s = Server::start(&config_for(&fake.endpoint(), state.path(), &format!("ca_file = \"{}\"", ca.display()), ""));
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
    drop(s);

    let state2 = tempfile::tempdir().unwrap();
    let s = Server::start(&config_for(&fake.endpoint(), state2.path(), "tls_skip_verify = true", ""));
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
    drop(s);

    let state3 = tempfile::tempdir().unwrap();
    let s = Server::start(&config_for(&fake.endpoint(), state3.path(), "", ""));
    let line = s.wait_log("controller sync failed").unwrap();
    assert!(line.to_lowercase().contains("certificate"), "{line}");
}

/// A 200 whose every record is unusable (names in another zone, `"ips": null`) is refused,
/// not taken as an empty set; so is one that would remove more than `max_shrink` (50% by
/// default) of the zone's records. The data in force keeps serving, `/health` says the zone
/// is degraded with the reason, and the next request asks for the same change again; a good
/// response is then taken and the zone is healthy.
#[test]
fn a_response_that_would_empty_the_zone_is_refused() {
    use crate::admin_client::{Client, admin_section};
    // 20 more names, so that a shrink removes more than the 10 records it always allows.
    let mut records = base_records();
    for i in 0..20 {
        records.as_array_mut().unwrap().push(rec(&format!("bulk{i}"), "A", 60, &["192.0.2.200"]));
    }
    let fake = FakeController::start(ZONE_NAME, "v1", records);
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&format!("{}{}", admin_section(""), config_for(&fake.endpoint(), state.path(), "", "")));
    let c = Client::for_server(&s);
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, has_answers);
    let health = || c.call("GET", "/health?zone=gslb.example.org", None, None).1;
    assert_eq!(health()["status"], "healthy");
    let broken = json!([
        {"name": "listener1.other.example", "type": "A", "ips": ["192.0.2.1"]},
        {"name": "listener2.gslb.example.org", "type": "A", "ips": null},
        {"name": "listener3.gslb.example.org", "type": "AAAA", "ips": null},
    ]);
    let shrunk = json!([rec("listener1", "A", 300, &["192.168.1.10"])]);
    for (hash, records, reason) in
        [("v2", broken, "every one of the 3 records"), ("v3", shrunk, "more than max_shrink 50%")]
    {
        let mark = fake.count();
        fake.set(|st| {
            st.hash = hash.into();
            st.records = records;
        });
        let end = Instant::now() + DEADLINE;
        loop {
            let h = health();
            if h["error"].as_str().is_some_and(|e| e.contains(reason)) {
                assert_eq!(h["status"], "degraded", "{h}");
                break;
            }
            assert!(Instant::now() < end, "{hash} never refused: {h}\n{}", s.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        let m = s.udp(&query("listener1.gslb.example.org.", RecordType::A));
        assert_eq!(m.answers.len(), 2, "{hash}: the data in force is kept");
        let again = fake.wait_request(mark + 1, |r| r.path == "/api/dns/changes");
        assert_eq!(again.query.get("since").map(String::as_str), Some("v1"), "{hash}: asked again");
    }
    fake.set(|st| {
        st.hash = "v4".into();
        let mut good = vec![rec("listener1", "A", 300, &["192.168.1.12"])];
        good.extend((0..20).map(|i| rec(&format!("bulk{i}"), "A", 60, &["192.0.2.201"])));
        st.records = json!(good);
    });
    s.wait_dns("listener1.gslb.example.org.", RecordType::A, |m| answers(m) == ["192.168.1.12"]);
    let h = health();
    assert_eq!((h["status"].as_str(), h["version_hash"].as_str()), (Some("healthy"), Some("v4")), "{h}");
}
