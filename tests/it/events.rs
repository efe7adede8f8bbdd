//! `GET /events`: the event log over the real admin API. A push, a health flip (with the
//! probe's error), a drain and a reload each leave an entry; `since` reads what came after.

use std::time::Instant;

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::admin_client::*;
use crate::harness::*;
use crate::pools::Endpoint;

/// Polls `/events?since=` until an entry satisfies `pred`; returns it.
fn wait_event(c: &Client, since: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (code, body) =
            c.call("GET", &format!("/events?since={since}"), Some(("X-Elchi-Secret", ADMIN_SECRET)), None);
        assert_eq!(code, 200, "{body}");
        if let Some(e) = body["events"].as_array().unwrap().iter().find(|e| pred(e)) {
            return e.clone();
        }
        assert!(Instant::now() < deadline, "no such event; the log: {body}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn events_tell_pushes_health_drains_and_reloads_in_order() {
    let (member, port) = Endpoint::start("127.0.0.2", 0);
    let state = tempfile::tempdir().unwrap();
    let zone = format!(
        "{admin}[state]\ndir = \"{state}\"\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n\
         [[zone.pool]]\nname = \"app\"\n[zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"m1\"\nipv4 = [\"127.0.0.2\"]\n",
        admin = admin_section(""),
        state = state.path().display(),
    );
    let s = Server::start(&config("", &zone));
    let c = Client::for_server(&s);
    let (code, _) = c.call("GET", "/events", None, None);
    assert_eq!(code, 401, "the log needs the secret");
    let (code, body) = c.call("GET", "/events?since=x", Some(("X-Elchi-Secret", ADMIN_SECRET)), None);
    assert_eq!(code, 400, "{body}");

    let (code, _) =
        c.notify(json!({"records": [{"name": "new.gslb.example.org", "type": "A", "ttl": 30, "ips": ["192.0.2.60"]}]}));
    assert_eq!(code, 200);
    let push = wait_event(&c, 0, |e| e["kind"] == "push");
    assert_eq!(
        (push["details"]["updated"].as_u64(), push["details"]["deleted"].as_u64()),
        (Some(1), Some(0)),
        "{push}"
    );
    let after_push = push["seq"].as_u64().unwrap();

    member.set(503);
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.2"] || m.answers.is_empty());
    let down = wait_event(&c, after_push, |e| e["kind"] == "health" && e["details"]["health"] == "down");
    assert_eq!(down["zone"], "gslb.example.org.");
    assert_eq!(
        (down["details"]["member"].as_str(), down["details"]["address"].as_str()),
        (Some("m1"), Some("127.0.0.2"))
    );
    assert!(down["details"]["error"].as_str().unwrap_or("").contains("503"), "the probe's error: {down}");
    assert!(down["seq"].as_u64().unwrap() > after_push);
    assert!(!down["at"].as_str().unwrap().is_empty());

    let (code, _) = c.call(
        "POST",
        "/members/state",
        Some(("X-Elchi-Secret", ADMIN_SECRET)),
        Some(json!({"pool": "app.gslb.example.org", "member": "m1", "state": "drain"}).to_string()),
    );
    assert_eq!(code, 200);
    let drained = wait_event(&c, 0, |e| e["kind"] == "members");
    assert_eq!(drained["details"]["to"], "drained", "{drained}");

    s.signal("HUP");
    let reload = wait_event(&c, 0, |e| e["kind"] == "reload");
    // A cursor at the newest entry reads nothing more; entries come oldest first.
    let (_, body) =
        c.call("GET", &format!("/events?since={}", reload["seq"]), Some(("X-Elchi-Secret", ADMIN_SECRET)), None);
    assert_eq!(body["events"].as_array().unwrap().len(), 0, "{body}");
    assert_eq!(body["next"], reload["seq"]);
    let (_, all) = c.call("GET", "/events?limit=1000", Some(("X-Elchi-Secret", ADMIN_SECRET)), None);
    let seqs: Vec<u64> = all["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]), "{seqs:?}");
    let (_, one) = c.call("GET", "/events?limit=1", Some(("X-Elchi-Secret", ADMIN_SECRET)), None);
    assert_eq!((one["events"].as_array().unwrap().len(), one["next"].as_u64()), (1, seqs.first().copied()));
}
