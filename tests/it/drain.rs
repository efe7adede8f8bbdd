//! Draining and disabling members from the API (`/members/state`): selected by pool, member
//! or labels; a drained member answers only when no other member of its pool is up, a
//! disabled one never; kept across a restart; shown in `/records`, `/explain`, `/metrics` and
//! the log with who asked.

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::admin_client::{ADMIN_SECRET, Client, admin_section};
use crate::harness::*;

const AUTH: Option<(&str, &str)> = Some(("X-Elchi-Secret", ADMIN_SECRET));

fn zone(state: &std::path::Path) -> String {
    let members = "[[zone.pool.member]]\nname = \"p1\"\nipv4 = [\"192.0.2.1\"]\nlabels = { cluster-env = \"prod\" }\n\
                   [[zone.pool.member]]\nname = \"p2\"\nipv4 = [\"192.0.2.2\"]\nlabels = { cluster-env = \"prod\" }\n\
                   [[zone.pool.member]]\nname = \"s1\"\nipv4 = [\"192.0.2.3\"]\nlabels = { cluster-env = \"staging\" }\n";
    format!(
        "{}[state]\ndir = \"{}\"\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n\
         [[zone.pool]]\nname = \"app\"\nselect = \"all\"\nttl = 5\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"none\"\n{members}\
         [[zone.pool]]\nname = \"other\"\nselect = \"all\"\n[zone.pool.check]\ntype = \"none\"\n\
         [[zone.pool.member]]\nname = \"o1\"\nipv4 = [\"192.0.2.9\"]\nlabels = {{ cluster-env = \"prod\" }}\n",
        admin_section(""),
        state.display()
    )
}

fn sorted(s: &Server, name: &str) -> Vec<String> {
    let mut a = answers(&s.udp(&query(name, RecordType::A)));
    a.sort();
    a
}

fn set(c: &Client, body: Value) -> (u16, Value) {
    c.call("POST", "/members/state", AUTH, Some(body.to_string()))
}

fn metric(c: &Client, line: &str) -> Option<f64> {
    c.text("/metrics").lines().find(|l| l.starts_with(line)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Drain by label, then disable the last undrained member: the drained ones answer as the
/// last resort, the disabled one never; a restart keeps all of it; enable by pool undoes it.
#[test]
fn drain_and_disable_by_label_survive_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config("", &zone(state.path())));
    let c = Client::for_server(&s);
    let app = "app.gslb.example.org.";
    assert_eq!(sorted(&s, app), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);

    let (code, v) =
        set(&c, json!({"labels": {"cluster-env": "prod"}, "pool": "app.gslb.example.org", "state": "drain"}));
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["members"],
        json!([
            {"pool": "app.gslb.example.org", "member": "p1", "from": "enabled", "to": "drained"},
            {"pool": "app.gslb.example.org", "member": "p2", "from": "enabled", "to": "drained"},
        ])
    );
    // The reply comes once DNS answers with the change.
    assert_eq!(sorted(&s, app), ["192.0.2.3"]);
    assert_eq!(sorted(&s, "other.gslb.example.org."), ["192.0.2.9"], "the pool narrowed the labels");
    let line = s.wait_log("member state set from the API").unwrap();
    assert!(line.contains(r#"by="127.0.0.1""#) && line.contains(r#"to="drained""#), "{line}");

    // /records, /explain, /metrics say the same.
    let (code, records) = c.call("GET", "/records?name=app.gslb.example.org", AUTH, None);
    assert_eq!(code, 200, "{records}");
    let rows = records["records"].as_array().unwrap();
    let state_of = |member: &str| rows.iter().find(|r| r["member"] == member).map(|r| r["state"].clone());
    assert_eq!((state_of("p1"), state_of("s1")), (Some(json!("drained")), Some(json!("enabled"))), "{records}");
    assert!(rows.iter().any(|r| r["member"] == "p1" && r["state_by"] == "127.0.0.1"), "{records}");
    let (_, explain) = c.call("GET", "/explain?name=app.gslb.example.org&client=192.0.2.53", AUTH, None);
    let states: Vec<&str> =
        explain["pool"]["members"].as_array().unwrap().iter().map(|m| m["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["drained", "drained", "enabled"], "{explain}");
    let drained = r#"gslbd_pool_members{pool="app.gslb.example.org",role="primary",state="drained"}"#;
    assert_eq!(metric(&c, drained), Some(2.0));

    // The last undrained member disabled: the drained ones answer, as the last resort.
    let (code, v) = set(&c, json!({"pool": "app.gslb.example.org.", "member": "s1", "state": "disable"}));
    assert_eq!(code, 200, "{v}");
    assert_eq!(sorted(&s, app), ["192.0.2.1", "192.0.2.2"]);
    let disabled = r#"gslbd_pool_members{pool="app.gslb.example.org",role="primary",state="disabled"}"#;
    assert_eq!(metric(&c, disabled), Some(1.0));
    let (code, listed) = c.call("GET", "/members/state", AUTH, None);
    assert_eq!(code, 200);
    assert_eq!(listed["members"].as_array().map(Vec::len), Some(3), "{listed}");

    // A restart reads the states back.
    drop(s);
    let s = Server::start(&config("", &zone(state.path())));
    let c = Client::for_server(&s);
    assert_eq!(sorted(&s, app), ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(metric(&c, drained), Some(2.0));

    let (code, v) = set(&c, json!({"pool": "app.gslb.example.org", "state": "enable"}));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(sorted(&s, app), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    assert_eq!(metric(&c, drained), Some(0.0));
}

/// Bad requests are refused with a JSON error and change nothing: no secret (401), a wrong
/// method (405), bad JSON, an unknown state or key, no selector (400), a selector matching
/// nothing (404).
#[test]
fn bad_member_state_requests_change_nothing() {
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config("", &zone(state.path())));
    let c = Client::for_server(&s);
    let (code, _) = c.call("POST", "/members/state", None, Some(json!({"member": "p1", "state": "drain"}).to_string()));
    assert_eq!(code, 401);
    let (code, _) = c.call("PUT", "/members/state", AUTH, None);
    assert_eq!(code, 405);
    let cases = [
        ("{", 400, "invalid JSON"),
        (r#"{"member": "p1", "state": "off"}"#, 400, "expected drain, disable or enable"),
        (r#"{"member": "p1", "state": "drain", "zone": "x"}"#, 400, "unknown field"),
        (r#"{"state": "drain"}"#, 400, "give pool, member or labels"),
        (r#"{"member": "nobody", "state": "drain"}"#, 404, "no pool member matches"),
        (r#"{"labels": {"cluster-env": "dev"}, "state": "disable"}"#, 404, "no pool member matches"),
    ];
    for (body, want, text) in cases {
        let (code, v) = c.call("POST", "/members/state", AUTH, Some(body.to_string()));
        assert_eq!(code, want, "{body}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| e.contains(text)), "{body}: {v}");
    }
    assert_eq!(sorted(&s, "app.gslb.example.org."), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    assert!(!state.path().join("members.json").exists(), "nothing was written");
}
