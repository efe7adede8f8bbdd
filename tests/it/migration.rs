//! Drop-in compatibility for users of the upstream `elchi` and `zoneregistry` plugins, and the
//! safety fixes found by a fault battery: Go-style `null` lists, no NXDOMAIN before the first
//! sync, webhook sources, redirects, odd state files and failing state writes.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::admin_client::*;
use crate::fake_controller::{FakeController, Mode, SECRET};
use crate::harness::*;

const ZONE_NAME: &str = "gslb.example.org";

fn controller_zone(endpoint: &str, state: &std::path::Path, timing: &str, records: &str) -> String {
    let zone = format!(
        "{}[state]\ndir = \"{}\"\n\n[[zone]]\nname = \"{ZONE_NAME}\"\nns = [\"ns1.{ZONE_NAME}\"]\nrecords = \"\"\"\n{records}\"\"\"\n[zone.controller]\nendpoint = \"{endpoint}\"\nsecret = \"{SECRET}\"\n{timing}\n",
        admin_section(""),
        state.display()
    );
    config("", &zone)
}

/// A fake controller serving `a.gslb.example.org` A `ip` under version `hash`.
fn one_record_controller(hash: &str, ip: &str) -> FakeController {
    FakeController::start(ZONE_NAME, hash, json!([{"name": "a.gslb.example.org", "type": "A", "ips": [ip]}]))
}

/// gslbd on `fake` with a 1 s sync interval and its own state directory.
fn fast_sync_server(fake: &FakeController) -> (Server, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let timing = "sync_interval = \"1s\"\ntimeout = \"500ms\"";
    (Server::start(&controller_zone(&fake.endpoint(), state.path(), timing, "")), state)
}

fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < end, "{what}: not before the deadline");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rcode(s: &Server, name: &str, rtype: RecordType) -> ResponseCode {
    s.udp(&query(name, rtype)).metadata.response_code
}

/// Go's `encoding/json` writes nil slices as `null`: a controller response with
/// `"ips": null` and `"records": null`, and webhook bodies with `null` lists, mean "empty".
#[test]
fn go_style_nulls_mean_empty() {
    let body = json!({
        "zone": ZONE_NAME, "version_hash": "v1",
        "records": [
            {"name": "a.gslb.example.org", "type": "A", "ttl": 30, "ips": ["192.0.2.1"]},
            {"name": "fo.gslb.example.org", "type": "A", "ttl": 30, "ips": null, "failover": "a.gslb.example.org"},
        ]
    });
    let fake = FakeController::start(ZONE_NAME, "v1", json!([]));
    fake.set(|st| st.mode = Mode::Raw(body.to_string()));
    let (s, _state) = fast_sync_server(&fake);
    let m = s.wait_dns("fo.gslb.example.org.", RecordType::A, |m| !m.answers.is_empty());
    assert_eq!(answers(&m), ["a.gslb.example.org.", "192.0.2.1"]);
    let c = Client::for_server(&s);
    assert_eq!(c.call("GET", "/health", None, None).0, 200);

    let (code, body) = c.notify(json!({"records": null, "deletes": [{"name": "a.gslb.example.org", "type": "A"}]}));
    assert_eq!((code, body["deleted"].clone()), (200, json!(1)), "{body}");
    let (code, body) = c.notify(json!({"records": [
        {"name": "b.gslb.example.org", "type": "A", "ips": null, "failover": "fo.gslb.example.org"}
    ], "deletes": null}));
    assert_eq!((code, body["updated"].clone()), (200, json!(1)), "{body}");
    assert_eq!(answers(&s.udp(&query("b.gslb.example.org.", RecordType::CNAME))), ["fo.gslb.example.org."]);

    // A changed set of `null` records is an empty set: the controller names go away.
    fake.set(|st| st.mode = Mode::Raw(json!({"zone": ZONE_NAME, "version_hash": "v2", "records": null}).to_string()));
    poll_until("v2 applied", || c.call("GET", "/health", None, None).1["version_hash"] == json!("v2"));
    assert_eq!(c.call("GET", "/health", None, None).0, 200);
    for name in ["fo.gslb.example.org.", "b.gslb.example.org."] {
        assert_eq!(rcode(&s, name, RecordType::A), ResponseCode::NXDomain, "{name}");
    }
}

/// DNS is held until the first snapshot arrives (within the controller timeout), so the
/// first answer a resolver gets already has the controller's data.
#[test]
fn dns_waits_for_the_first_snapshot() {
    let fake = one_record_controller("v1", "192.0.2.1");
    fake.set(|st| st.mode = Mode::Delay(Duration::from_millis(1500)));
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&controller_zone(
        &fake.endpoint(),
        state.path(),
        "sync_interval = \"30s\"\ntimeout = \"5s\"",
        "",
    ));
    let log = s.log_text();
    let lines: Vec<&str> = log.lines().collect();
    let applied = lines.iter().position(|l| l.contains("controller data applied")).expect("data applied before DNS");
    let listening = lines.iter().position(|l| l.contains("listening addr=") && !l.contains("admin")).unwrap();
    assert!(lines.iter().any(|l| l.contains("holding DNS")), "{log}");
    assert!(applied < listening, "DNS answered before the controller data was in:\n{log}");
    assert_eq!(answers(&s.udp(&query("a.gslb.example.org.", RecordType::A))), ["192.0.2.1"]);
}

/// When the controller does not answer within its timeout, DNS starts, and names only the
/// controller could answer get SERVFAIL (never a cacheable NXDOMAIN/NODATA); static names
/// answer; `/ready` says 503. Once the data arrives, the usual answers follow.
#[test]
fn servfail_not_nxdomain_until_the_first_sync() {
    let fake = one_record_controller("v1", "192.0.2.1");
    fake.set(|st| st.mode = Mode::Status(503));
    let state = tempfile::tempdir().unwrap();
    let timing = "sync_interval = \"2s\"\ntimeout = \"300ms\"";
    let s = Server::start(&controller_zone(&fake.endpoint(), state.path(), timing, "static 60 IN A 192.0.2.200\n"));
    assert!(s.log_text().contains("no controller data yet"), "{}", s.log_text());
    assert_eq!(rcode(&s, "a.gslb.example.org.", RecordType::A), ResponseCode::ServFail);
    assert_eq!(rcode(&s, "nothere.gslb.example.org.", RecordType::A), ResponseCode::ServFail);
    assert_eq!(rcode(&s, "static.gslb.example.org.", RecordType::AAAA), ResponseCode::ServFail);
    assert_eq!(answers(&s.udp(&query("static.gslb.example.org.", RecordType::A))), ["192.0.2.200"]);
    assert_eq!(s.udp(&query("gslb.example.org.", RecordType::SOA)).answers.len(), 1);
    let c = Client::for_server(&s);
    assert_eq!(c.call("GET", "/ready", None, None).0, 503);
    assert!(c.text("/metrics").contains("gslbd_zone_data_loaded{zone=\"gslb.example.org\"} 0"));

    fake.set(|st| st.mode = Mode::Normal);
    s.wait_dns("a.gslb.example.org.", RecordType::A, |m| !m.answers.is_empty());
    assert_eq!(rcode(&s, "nothere.gslb.example.org.", RecordType::A), ResponseCode::NXDomain);
    assert_eq!(rcode(&s, "static.gslb.example.org.", RecordType::AAAA), ResponseCode::NoError);
    assert_eq!(c.call("GET", "/ready", None, None).0, 200);
    assert!(c.text("/metrics").contains("gslbd_zone_data_loaded{zone=\"gslb.example.org\"} 1"));
}

/// SIGTERM while DNS is held for the controller ends the process cleanly.
#[test]
fn sigterm_during_the_start_up_hold_exits_cleanly() {
    let fake = FakeController::start(ZONE_NAME, "v1", json!([]));
    fake.set(|st| st.mode = Mode::Delay(Duration::from_secs(30)));
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gslbd.toml");
    let timing = "sync_interval = \"60s\"\ntimeout = \"30s\"";
    std::fs::write(&path, controller_zone(&fake.endpoint(), state.path(), timing, "")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["run", "--config"])
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let end = Instant::now() + DEADLINE;
    loop {
        let line = rx.recv_timeout(end.saturating_duration_since(Instant::now())).expect("hold log line");
        if line.contains("holding DNS") {
            break;
        }
    }
    let started = Instant::now();
    let ok = std::process::Command::new("kill").args(["-s", "TERM", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

/// Pushed records are labelled `webhook` in `/records` and in the answer metrics until a
/// controller snapshot replaces them.
#[test]
fn webhook_data_is_labelled_webhook_until_a_snapshot_replaces_it() {
    let fake = one_record_controller("v1", "192.0.2.1");
    let (s, _state) = fast_sync_server(&fake);
    s.wait_dns("a.gslb.example.org.", RecordType::A, |m| !m.answers.is_empty());
    let c = Client::for_server(&s);
    let (code, _) = c.notify(json!({"records": [{"name": "p.gslb.example.org", "type": "A", "ips": ["192.0.2.9"]}]}));
    assert_eq!(code, 200);
    let source_of = |name: &str| -> Value {
        let (_, body) = c.call("GET", &format!("/records?name={name}"), Some(("X-Elchi-Secret", ADMIN_SECRET)), None);
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map_or(Value::Null, |r| r["source"].clone())
    };
    assert_eq!(source_of("p.gslb.example.org"), json!("webhook"));
    assert_eq!(source_of("a.gslb.example.org"), json!("controller"));
    assert_eq!(answers(&s.udp(&query("p.gslb.example.org.", RecordType::A))), ["192.0.2.9"]);
    assert!(c.text("/metrics").contains("gslbd_answers_total{source=\"webhook\"} 1"), "{}", c.text("/metrics"));

    // The controller now has the name: its snapshot replaces the pushed data and its label.
    fake.set(|st| {
        st.hash = "v2".into();
        st.records = json!([{"name": "p.gslb.example.org", "type": "A", "ips": ["192.0.2.10"]}]);
    });
    s.wait_dns("p.gslb.example.org.", RecordType::A, |m| answers(m) == ["192.0.2.10"]);
    assert_eq!(source_of("p.gslb.example.org"), json!("controller"));
}

/// A controller that answers with a redirect is refused: the redirect is not followed, so
/// the secret never reaches the other server, and the data in force stays.
#[test]
fn redirects_are_refused_and_never_followed() {
    let other = one_record_controller("evil", "203.0.113.66");
    let fake = one_record_controller("v1", "192.0.2.1");
    let (s, _state) = fast_sync_server(&fake);
    s.wait_dns("a.gslb.example.org.", RecordType::A, |m| !m.answers.is_empty());
    let to = format!("{}dns/snapshot?zone=gslb.example.org", other.endpoint());
    fake.set(|st| {
        st.hash = "v2".into();
        st.mode = Mode::Redirect(to.clone());
    });
    let line = s.wait_log("redirect 302").expect("the refused redirect is logged");
    assert!(line.contains(&to), "{line}");
    assert_eq!(other.count(), 0, "the redirect target saw a request");
    assert_eq!(answers(&s.udp(&query("a.gslb.example.org.", RecordType::A))), ["192.0.2.1"]);
}

/// A state file that is not a regular file (a symlink to `/dev/zero`, a FIFO) is refused at
/// once with a warning; start-up neither hangs nor reads without end.
#[test]
fn odd_state_files_are_refused_at_once() {
    let fake = one_record_controller("v1", "192.0.2.1");
    for kind in ["symlink", "fifo"] {
        let state = tempfile::tempdir().unwrap();
        let file = state.path().join("gslb.example.org.json");
        match kind {
            "symlink" => std::os::unix::fs::symlink("/dev/zero", &file).unwrap(),
            _ => assert!(std::process::Command::new("mkfifo").arg(&file).status().unwrap().success()),
        }
        let s = Server::start(&controller_zone(
            &fake.endpoint(),
            state.path(),
            "sync_interval = \"1s\"\ntimeout = \"500ms\"",
            "",
        ));
        assert!(s.log_text().contains("not a regular file"), "{kind}: {}", s.log_text());
        s.wait_dns("a.gslb.example.org.", RecordType::A, |m| !m.answers.is_empty());
    }
}

/// A state write that fails leaves no temp file, shows in `/health` and the metrics, is
/// logged once while it keeps failing, and clears when writes work again. (Without the push
/// journal every push is written soon after; with it, pushes are written in bulk.)
#[test]
fn failing_state_writes_show_in_health() {
    let state = tempfile::tempdir().unwrap();
    let text = format!("{}[state]\ndir = \"{}\"\njournal = false\n{ZONE}", admin_section(""), state.path().display());
    let s = Server::start(&config("", &text));
    let c = Client::for_server(&s);
    // The zone's state file path is a directory: every write fails at the rename.
    let target = state.path().join("gslb.example.org.json");
    std::fs::create_dir(&target).unwrap();
    let push = |ip: &str| {
        let (code, _) = c.notify(json!({"records": [{"name": "p.gslb.example.org", "type": "A", "ips": [ip]}]}));
        assert_eq!(code, 200);
    };
    push("192.0.2.1");
    poll_until("persist_error in /health", || {
        c.call("GET", "/health?zone=gslb.example.org", None, None).1["persist_error"].is_string()
    });
    push("192.0.2.2");
    poll_until("second failure counted", || {
        c.text("/metrics").contains("gslbd_persist_errors_total{zone=\"gslb.example.org\"} 2")
    });
    assert!(c.text("/metrics").contains("gslbd_persist_failing{zone=\"gslb.example.org\"} 1"));
    let logged = s.log_text().lines().filter(|l| l.contains("cannot write the state file")).count();
    assert_eq!(logged, 1, "{}", s.log_text());
    let mut leftovers: Vec<_> = std::fs::read_dir(state.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    leftovers.sort();
    let want = ["gslb.example.org.json"].map(std::ffi::OsString::from);
    assert_eq!(leftovers, want, "temp files left behind");

    std::fs::remove_dir(&target).unwrap();
    push("192.0.2.3");
    poll_until("persist_error cleared", || {
        c.call("GET", "/health?zone=gslb.example.org", None, None).1["persist_error"].is_null()
    });
    assert!(s.log_text().contains("state file written again"));
    assert!(std::fs::read_to_string(&target).unwrap().contains("192.0.2.3"));
}

/// The harness zone with an admin API, its static records in `mode`.
fn static_zone_server(mode: &str, admin_extra: &str) -> (Server, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let zone = ZONE.replace("default_ttl = 300", &format!("default_ttl = 300\nstatic_records = \"{mode}\""));
    let text = format!("{}[state]\ndir = \"{}\"\n{zone}", admin_section(admin_extra), state.path().display());
    (Server::start(&config("", &text)), state)
}

/// By default `/notify` applies the valid items of a batch together and lists the others
/// (invalid, outside our zones) as skipped, with a 200, as upstream; items count, not effects.
/// A body that is not JSON, or a wrong secret, still changes nothing.
#[test]
fn partial_push_applies_the_valid_items() {
    let (s, _state) = static_zone_server("fallback", "");
    let c = Client::for_server(&s);
    let push = json!({
        "records": [
            {"name": "ok1.gslb.example.org", "type": "A", "ips": ["192.0.2.1"]},
            {"name": "bad.gslb.example.org", "type": "A", "ips": ["300.1.1.1"]},
            {"name": "elsewhere.example.com", "type": "A", "ips": ["192.0.2.2"]},
            {"name": "ok2.gslb.example.org", "type": "A", "ips": [], "failover": "ok1.gslb.example.org"},
        ],
        "deletes": [
            {"name": "never.gslb.example.org", "type": "A"},
            {"name": "app.gslb.example.org", "type": "TXT"},
        ],
    });
    let (code, body) = c.notify(push);
    assert_eq!(code, 200, "{body}");
    assert_eq!((body["updated"].clone(), body["deleted"].clone()), (json!(2), json!(1)), "{body}");
    let skipped: Vec<(u64, &str)> = body["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["item"].as_u64().unwrap(), s["section"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped, [(1, "records"), (2, "records"), (1, "deletes")], "{body}");
    assert!(body["skipped"][0]["error"].as_str().unwrap().contains("300.1.1.1"), "{body}");
    assert!(body["skipped"][1]["error"].as_str().unwrap().contains("outside every zone"), "{body}");
    assert_eq!(answers(&s.udp(&query("ok1.gslb.example.org.", RecordType::A))), ["192.0.2.1"]);
    assert_eq!(answers(&s.udp(&query("ok2.gslb.example.org.", RecordType::A))), ["ok1.gslb.example.org.", "192.0.2.1"]);
    assert_eq!(rcode(&s, "bad.gslb.example.org.", RecordType::A), ResponseCode::NXDomain);

    let one = json!({"records": [{"name": "ok3.gslb.example.org", "type": "A", "ips": ["192.0.2.3"]}]}).to_string();
    let (code, _) = c.call("POST", "/notify", Some(("X-Elchi-Secret", "wrong-secret")), Some(one));
    assert_eq!(code, 401);
    let (code, _) = c.call("POST", "/notify", Some(("X-Elchi-Secret", ADMIN_SECRET)), Some("[{not json".into()));
    assert_eq!(code, 400);
    assert_eq!(rcode(&s, "ok3.gslb.example.org.", RecordType::A), ResponseCode::NXDomain);
}

/// Precedence in both modes, and every way a pushed item that DNS will not answer is
/// reported: the `/notify` response, `/records`, the metrics and the log.
#[test]
fn shadowed_pushes_are_reported_in_both_modes() {
    let push = json!({"records": [
        {"name": "app.gslb.example.org", "type": "A", "ips": ["192.0.2.99"]},
        {"name": "x.sub.gslb.example.org", "type": "A", "ips": ["192.0.2.98"]},
    ]});
    let records_of = |c: &Client, name: &str| -> Vec<Value> {
        let (_, body) =
            c.call("GET", &format!("/records?name={name}&type=A"), Some(("X-Elchi-Secret", ADMIN_SECRET)), None);
        body["records"].as_array().unwrap().iter().filter(|r| r["name"] == name).cloned().collect()
    };

    // Fallback (the default): the pushed A answers; only the name below the delegation is shadowed.
    let (s, _state) = static_zone_server("fallback", "");
    let c = Client::for_server(&s);
    let (code, body) = c.notify(push.clone());
    assert_eq!(code, 200);
    assert_eq!(body["shadowed"], json!([{"item": 1, "name": "x.sub.gslb.example.org", "by": "delegation"}]));
    assert_eq!(answers(&s.udp(&query("app.gslb.example.org.", RecordType::A))), ["192.0.2.99"]);
    let app = records_of(&c, "app.gslb.example.org");
    assert_eq!(app.len(), 1, "{app:?}");
    assert_eq!((app[0]["source"].clone(), app[0]["ips"].clone()), (json!("webhook"), json!(["192.0.2.99"])));
    // Static data of another type at the same name still answers.
    assert_eq!(s.udp(&query("app.gslb.example.org.", RecordType::AAAA)).answers.len(), 1);

    // Override: the static A wins; the pushed one is kept, reported and not answered.
    let (s, _state) = static_zone_server("override", "");
    let c = Client::for_server(&s);
    let (code, body) = c.notify(push);
    assert_eq!(code, 200);
    assert_eq!(body["updated"], json!(2));
    assert_eq!(
        body["shadowed"],
        json!([
            {"item": 0, "name": "app.gslb.example.org", "by": "static"},
            {"item": 1, "name": "x.sub.gslb.example.org", "by": "delegation"},
        ])
    );
    let mut got = answers(&s.udp(&query("app.gslb.example.org.", RecordType::A)));
    got.sort();
    assert_eq!(got, ["192.0.2.10", "192.0.2.11"]);
    let app = records_of(&c, "app.gslb.example.org");
    let pushed = app.iter().find(|r| r["source"] == "webhook").expect("the pushed set is listed");
    assert_eq!((pushed["answered"].clone(), pushed["shadowed_by"].clone()), (json!(false), json!("static")));
    assert!(app.iter().any(|r| r["source"] == "static" && r.get("shadowed_by").is_none()), "{app:?}");
    let metrics = c.text("/metrics");
    assert!(metrics.contains("gslbd_shadowed_records{zone=\"gslb.example.org\",by=\"static\"} 1"), "{metrics}");
    assert!(metrics.contains("gslbd_shadowed_records{zone=\"gslb.example.org\",by=\"delegation\"} 1"), "{metrics}");
    assert!(metrics.contains("gslbd_shadowed_total{zone=\"gslb.example.org\",by=\"static\"}"), "{metrics}");
    let line = s.wait_log("not answered").unwrap();
    assert!(line.contains("shadowed=2"), "{line}");
}

/// A CNAME (static or a failover record) into another zone served by this server is chased:
/// the other zone's answer follows the CNAME, with its rcode and authority (NXDOMAIN/NODATA
/// with its SOA), through nested zones and chains of zones, bounded; wildcard answers and
/// referrals end the chain at the CNAME (the resolver continues).
#[test]
fn cname_chains_are_chased_across_our_zones() {
    let state = tempfile::tempdir().unwrap();
    let zones = format!(
        r#"{admin}[state]
dir = "{state}"
[[zone]]
name = "gslb.example.org"
ns = ["ns1.gslb.example.org"]
records = """
ns1    3600 IN A 127.0.0.1
cross    60 IN CNAME app.other.example.
missing  60 IN CNAME nothere.other.example.
nodata   60 IN CNAME app.other.example.
hop      60 IN CNAME back.other.example.
wild     60 IN CNAME x.wild.other.example.
deleg    60 IN CNAME host.sub.other.example.
nested   60 IN CNAME app.inner.gslb.example.org.
loop     60 IN CNAME loop.other.example.
local    60 IN A 192.0.2.77
"""
[[zone]]
name = "inner.gslb.example.org"
ns = ["ns1.gslb.example.org"]
records = """
app 30 IN A 198.51.100.1
"""
[[zone]]
name = "other.example"
ns = ["ns1.gslb.example.org"]
[zone.soa]
minimum = 45
records = """
app      30 IN A 203.0.113.1
app      30 IN A 203.0.113.2
back     30 IN CNAME local.gslb.example.org.
*.wild   30 IN A 203.0.113.9
sub      30 IN NS ns.elsewhere.example.
loop     30 IN CNAME loop.gslb.example.org.
"""
"#,
        admin = admin_section(""),
        state = state.path().display()
    );
    let s = Server::start(&config("", &zones));
    let a = |name: &str| s.udp(&query(name, RecordType::A));

    let m = a("cross.gslb.example.org.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    let mut got = answers(&m);
    got[1..].sort();
    assert_eq!(got, ["app.other.example.", "203.0.113.1", "203.0.113.2"]);
    assert_eq!(m.answers[1].name.to_string(), "app.other.example.");
    // Over TCP too, and with EDNS.
    assert_eq!(s.tcp_query(&query("cross.gslb.example.org.", RecordType::A)).answers.len(), 3);
    assert_eq!(s.udp(&query_edns("cross.gslb.example.org.", RecordType::A, 1232)).answers.len(), 3);

    let m = a("missing.gslb.example.org.");
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "RFC 6604: the rcode of the last name");
    assert_eq!(answers(&m), ["nothere.other.example."]);
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].name.to_string(), "other.example.");
    assert_eq!(m.authorities[0].ttl, 45);

    let m = s.udp(&query("nodata.gslb.example.org.", RecordType::AAAA));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&m), ["app.other.example."]);
    assert_eq!(types(&m.authorities), [RecordType::SOA]);

    let m = a("hop.gslb.example.org.");
    assert_eq!(answers(&m), ["back.other.example.", "local.gslb.example.org.", "192.0.2.77"]);
    let m = a("nested.gslb.example.org.");
    assert_eq!(answers(&m), ["app.inner.gslb.example.org.", "198.51.100.1"]);

    // Ends at the CNAME: a wildcard answer, a referral, and a loop between zones (bounded).
    assert_eq!(answers(&a("wild.gslb.example.org.")), ["x.wild.other.example."]);
    assert_eq!(answers(&a("deleg.gslb.example.org.")), ["host.sub.other.example."]);
    let m = a("loop.gslb.example.org.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.len() <= 10, "{m:?}");

    // A failover record pushed into another zone's pool of names is chased too, and a change
    // in the target zone shows at once (no rebuild of the first zone is needed).
    let c = Client::for_server(&s);
    let (code, _) = c.notify(json!({"records": [
        {"name": "svc.gslb.example.org", "type": "A", "ips": [], "failover": "app.other.example"},
    ]}));
    assert_eq!(code, 200);
    assert_eq!(a("svc.gslb.example.org.").answers.len(), 3);
    let (code, _) = c.notify(json!({"records": [{"name": "app.other.example", "type": "A", "ips": ["203.0.113.50"]}]}));
    assert_eq!(code, 200);
    assert_eq!(answers(&a("svc.gslb.example.org.")), ["app.other.example.", "203.0.113.50"]);
}

/// An acknowledged push survives `kill -9` right after its 200 (it is in the journal, synced,
/// before the reply), and a torn journal tail is dropped with a warning.
#[test]
fn acknowledged_pushes_survive_kill_9() {
    let state = tempfile::tempdir().unwrap();
    let text = format!("{}[state]\ndir = \"{}\"\n{ZONE}", admin_section(""), state.path().display());
    for round in 0..4 {
        let mut s = Server::start(&config("", &text));
        for earlier in 0..round {
            let name = format!("k{earlier}.gslb.example.org.");
            assert_eq!(answers(&s.udp(&query(&name, RecordType::A))), [format!("192.0.2.{}", 10 + earlier)], "{name}");
        }
        let c = Client::for_server(&s);
        let ip = format!("192.0.2.{}", 10 + round);
        let (code, _) =
            c.notify(json!({"records": [{"name": format!("k{round}.gslb.example.org"), "type": "A", "ips": [ip]}]}));
        assert_eq!(code, 200);
        s.signal("KILL");
        s.wait_exit(DEADLINE);
    }
    // A frame cut short at the end of the journal is dropped; everything before it serves.
    let journal = state.path().join("gslb.example.org.journal");
    let mut bytes = std::fs::read(&journal).unwrap_or_default();
    bytes.extend_from_slice(&[0, 0, 1, 0, 1, 2]);
    std::fs::write(&journal, &bytes).unwrap();
    let s = Server::start(&config("", &text));
    assert!(s.log_text().contains("ignoring the end of the push journal"), "{}", s.log_text());
    for earlier in 0..4 {
        let name = format!("k{earlier}.gslb.example.org.");
        assert_eq!(answers(&s.udp(&query(&name, RecordType::A))), [format!("192.0.2.{}", 10 + earlier)], "{name}");
    }
}
