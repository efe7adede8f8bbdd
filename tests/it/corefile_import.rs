//! `gslbd import-corefile` on the two upstream READMEs' example Corefiles (kept verbatim in
//! `tests/fixtures/corefiles/`): the output passes `gslbd check` and serves. Only what ties a
//! Corefile to its original host is adapted first (file paths, ports, the controller's URL
//! and secret, probe addresses), as a migrating user's own Corefile would carry their own.

use std::path::Path;
use std::process::Command;

use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::admin_client::Client;
use crate::fake_controller::{FakeController, SECRET};
use crate::harness::*;
use crate::pools::Endpoint;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corefiles").join(name)).unwrap()
}

/// Runs `gslbd import-corefile` on `corefile`; returns stdout and stderr.
fn import(dir: &Path, corefile: &str) -> (String, String) {
    let path = dir.join("Corefile");
    std::fs::write(&path, corefile).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd")).arg("import-corefile").arg(&path).output().unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(out.status.success(), "{stderr}");
    (stdout, stderr)
}

/// `gslbd check` on `toml` with `env`; panics with its output when it fails.
fn check(dir: &Path, toml: &str, env: &[(&str, &str)]) {
    let path = dir.join("imported.toml");
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["check", "--config"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "check failed:\n{}\n{toml}", String::from_utf8_lossy(&out.stderr));
}

/// The elchi README's full example: controller, webhook, zone file with fallthrough, ready,
/// prometheus, log and errors, `bind {$NODE_IP}`, and a forwarding block that is skipped.
#[test]
fn elchi_readme_example_imports_and_serves() {
    let fake = FakeController::start(
        "gslb.example.org",
        "v1",
        json!([{"name": "api.gslb.example.org", "type": "A", "ips": ["192.0.2.30"]}]),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gslb.example.org.db"),
        "$ORIGIN gslb.example.org.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 30\n@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.1\nstatic 60 IN A 192.0.2.5\napi 60 IN A 192.0.2.99\n",
    )
    .unwrap();
    let corefile = fixture("elchi-full.Corefile")
        .replace("/etc/coredns/", &format!("{}/", dir.path().display()))
        .replace("gslb.example.org:53", "gslb.example.org:0")
        .replace("http://elchi-backend:8080", fake.endpoint().trim_end_matches('/'))
        .replace("my-shared-secret", SECRET)
        .replace("webhook :8053", "webhook 127.0.0.1:0")
        .replace("prometheus :9253", "prometheus 127.0.0.1:0");
    let (toml, stderr) = import(dir.path(), &corefile);
    assert!(stderr.is_empty(), "{stderr}");
    for want in [
        "listen = [\"{$NODE_IP}:0\"]",
        "default_ttl = 300",
        "static_records = \"fallback\"",
        "node_ip = \"{$NODE_IP}\"",
        "regions = [\"asya\", \"avrupa\"]",
        "sync_interval = \"1m\"",
        "GET /ready",
        "GET /metrics",
        "# log (line 17): gslbd logs every query and response with a top-level [log] table, dnstap",
        "server block .:53 (line 21) skipped",
    ] {
        assert!(toml.contains(want), "missing {want:?} in\n{toml}");
    }
    let env = [("NODE_IP", "127.0.0.1")];
    check(dir.path(), &toml, &env);

    let s = Server::start_with_env(&toml, &env);
    // Controller data wins on a name both define (fallthrough); the file fills the rest.
    assert_eq!(answers(&s.udp(&query("api.gslb.example.org.", RecordType::A))), ["192.0.2.30"]);
    assert_eq!(answers(&s.udp(&query("static.gslb.example.org.", RecordType::A))), ["192.0.2.5"]);
    assert_eq!(s.udp(&query("gslb.example.org.", RecordType::SOA)).answers.len(), 1);
    let c = Client::new(format!("http://{}", s.admin_addr()), None);
    assert_eq!(c.call("GET", "/ready", None, None).0, 200);
    assert!(c.text("/metrics").contains("gslbd_queries_total"));
    let (code, _) = c.call(
        "POST",
        "/notify",
        Some(("X-Elchi-Secret", SECRET)),
        Some(json!({"records": [{"name": "pushed.gslb.example.org", "type": "A", "ips": ["192.0.2.40"]}]}).to_string()),
    );
    assert_eq!(code, 200);
    assert_eq!(answers(&s.udp(&query("pushed.gslb.example.org.", RecordType::A))), ["192.0.2.40"]);
}

/// The zoneregistry README example: peers with roles, labels, `IPv4`/`IPv6` spelled as its
/// README does, and the invalid address `172.100.0.1043`, which is reported with its line and
/// left out. The import serves: names below the zone are referred to the healthy primaries,
/// and to the secondary once they fail.
#[test]
fn zoneregistry_readme_example_imports_and_serves() {
    let (prod1, port) = Endpoint::start("127.0.0.21", 0);
    let (prod2, _) = Endpoint::start("127.0.0.22", port);
    let (_dev1, _) = Endpoint::start("127.0.0.23", port);
    let dir = tempfile::tempdir().unwrap();
    let (toml, stderr) = import(dir.path(), &fixture("zoneregistry.Corefile"));
    assert!(stderr.contains("Corefile line 30") && stderr.contains("172.100.0.1043"), "{stderr}");
    assert!(toml.contains("# invalid: ipv4 \"172.100.0.1043\""), "{toml}");
    assert!(toml.contains("labels = { \"cluster-env\" = \"prod\" }"), "{toml}");
    check(dir.path(), &toml, &[]);

    // The same Corefile with loopback peers (IPv4 only, so the test needs no IPv6) and a short
    // interval, served on an ephemeral port.
    let mut corefile = fixture("zoneregistry.Corefile")
        .replace(". {", ".:0 {\n  bind 127.0.0.1")
        .replace("172.100.0.101", "127.0.0.21")
        .replace("172.100.0.102", "127.0.0.22")
        .replace("172.100.0.1043", "127.0.0.23")
        .replace("port 8080", &format!("port {port}"))
        .replace("interval 60", "interval 1");
    for n in 1..=3 {
        corefile = corefile.replace(&format!("        IPv6 2001:db8:172:100::10{n}\n"), "");
    }
    assert!(!corefile.contains("IPv6"), "{corefile}");
    let (toml, _) = import(dir.path(), &corefile);
    check(dir.path(), &toml, &[]);
    let s = Server::start(&toml);
    let ns_hosts = |name: &str| -> Vec<String> {
        let m = s.udp(&query(name, RecordType::A));
        assert!(!m.metadata.authoritative, "a referral");
        assert!(m.authorities.iter().all(|r| r.name.to_string() == name), "{m:?}");
        let mut hosts: Vec<String> = m.authorities.iter().map(|r| r.data.to_string()).collect();
        hosts.sort();
        hosts
    };
    assert_eq!(
        ns_hosts("app.service.pinax.network."),
        ["riv-prod1.service.pinax.network.", "riv-prod2.service.pinax.network."]
    );
    let m = s.udp(&query("app.service.pinax.network.", RecordType::A));
    let mut glue: Vec<String> = m.additionals.iter().map(|r| r.data.to_string()).collect();
    glue.sort();
    assert_eq!(glue, ["127.0.0.21", "127.0.0.22"]);
    prod1.set(503);
    prod2.set(503);
    s.wait_dns("other.service.pinax.network.", RecordType::A, |m| {
        m.authorities.iter().map(|r| r.data.to_string()).collect::<Vec<_>>() == ["mar-dev1.service.pinax.network."]
    });
}
