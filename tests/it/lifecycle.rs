//! Process lifecycle: signals (HUP reload, TERM/INT stop), the `check` command, `--help` and
//! `--version`, environment expansion.

use std::process::Command;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::harness::*;

fn zone_with(records: &str) -> String {
    format!(
        "[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"\"\"\n{records}\"\"\"\n"
    )
}

fn serial(s: &Server) -> u32 {
    let m = s.udp(&query("gslb.example.org.", RecordType::SOA));
    match m.answers[0].data {
        hickory_proto::rr::RData::SOA(ref soa) => soa.serial,
        ref other => panic!("not an SOA: {other:?}"),
    }
}

/// SIGHUP swaps in a valid new config without losing a query.
#[test]
fn sighup_reloads_a_valid_config() {
    let s = Server::start(&config("", &zone_with("app 60 IN A 192.0.2.1\n")));
    let before = serial(&s);
    std::fs::write(s.config_path(), config("", &zone_with("app 60 IN A 192.0.2.2\nnew 60 IN A 192.0.2.3\n"))).unwrap();
    let mark = s.log_len();
    s.signal("HUP");
    // Every query during the swap is answered with either the old or the new data.
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let m = s.udp(&query("app.gslb.example.org.", RecordType::A));
        let got = answers(&m);
        assert!(got == ["192.0.2.1"] || got == ["192.0.2.2"], "{got:?}");
        if got == ["192.0.2.2"] {
            break;
        }
        assert!(std::time::Instant::now() < end, "reload not visible before the deadline");
    }
    assert!(s.wait_log_after("config reloaded", mark).is_some());
    assert_eq!(answers(&s.udp(&query("new.gslb.example.org.", RecordType::A))), ["192.0.2.3"]);
    assert!(serial(&s) > before, "a changed zone gets a new serial");
}

/// An invalid config on SIGHUP is rejected with file, line and key; the old one keeps serving.
#[test]
fn sighup_with_invalid_config_keeps_the_old_one() {
    let s = Server::start(&config("", &zone_with("app 60 IN A 192.0.2.1\n")));
    let before = serial(&s);
    std::fs::write(s.config_path(), config("", &zone_with("app 60 IN A 2001:db8::1\n"))).unwrap();
    let mark = s.log_len();
    s.signal("HUP");
    let line = s.wait_log_after("config reload rejected", mark).expect("rejection logged");
    assert!(line.contains("gslbd.toml:9"), "{line}");
    assert!(line.contains("zone[0].records"), "{line}");
    assert_eq!(answers(&s.udp(&query("app.gslb.example.org.", RecordType::A))), ["192.0.2.1"]);
    assert_eq!(serial(&s), before);
}

/// Reloading an unchanged config keeps the serial.
#[test]
fn unchanged_reload_keeps_the_serial() {
    let s = Server::start(&config("", &zone_with("app 60 IN A 192.0.2.1\n")));
    let before = serial(&s);
    let mark = s.log_len();
    s.signal("HUP");
    assert!(s.wait_log_after("config reloaded", mark).is_some());
    assert_eq!(serial(&s), before);
}

/// SIGTERM and SIGINT stop the server with exit code 0 within 2 s.
#[test]
fn sigterm_and_sigint_exit_zero() {
    for sig in ["TERM", "INT"] {
        let mut s = Server::start(&config("", ZONE));
        s.signal(sig);
        assert_eq!(s.wait_exit(Duration::from_secs(2)), Some(0), "SIGTERM exit; log:\n{}", s.log_text());
    }
}

/// A TCP query in flight when SIGTERM arrives is still answered.
#[test]
fn sigterm_finishes_tcp_answers_in_flight() {
    let mut s = Server::start(&config("", ZONE));
    let mut conn = s.tcp();
    let bytes = query("app.gslb.example.org.", RecordType::A).to_vec().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    use std::io::Write;
    conn.write_all(&framed[..6]).unwrap();
    // Wait until the server has the first bytes: a second connection's answer proves the
    // server is past accepting ours.
    let _ = s.tcp_query(&query("app.gslb.example.org.", RecordType::A));
    s.signal("TERM");
    assert!(s.wait_log("SIGTERM received").is_some());
    conn.write_all(&framed[6..]).unwrap();
    let reply = tcp_read(&mut conn).expect("in-flight answer");
    assert_eq!(Message::from_vec(&reply).unwrap().answers.len(), 2);
    assert_eq!(s.wait_exit(Duration::from_secs(2)), Some(0));
}

/// `${VAR}` and `{$VAR}` expand from the environment.
#[test]
fn environment_variables_expand() {
    let records = "app 60 IN A ${APP_IP}\napp 60 IN A {$APP_IP2}\n";
    let s = Server::start_with_env(
        &config("", &zone_with(records)),
        &[("APP_IP", "192.0.2.91"), ("APP_IP2", "192.0.2.92")],
    );
    let mut got = answers(&s.udp(&query("app.gslb.example.org.", RecordType::A)));
    got.sort();
    assert_eq!(got, ["192.0.2.91", "192.0.2.92"]);
}

/// `gslbd check` prints a summary and exits 0 for the bundled example.
#[test]
fn check_accepts_the_bundled_example() {
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["check", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gslbd.toml")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("zone gslb.example.org: 10 records"), "{text}");
    assert!(text.contains("127.0.0.1:5353"), "{text}");
}

/// The bundled example serves `app.gslb.example.org` (on an ephemeral port here).
#[test]
fn bundled_example_answers() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gslbd.toml")).unwrap();
    let text = text.replace("listen = [\"127.0.0.1:5353\", \"[::1]:5353\"]", "listen = [\"127.0.0.1:0\"]");
    let s = Server::start(&text);
    let m = s.udp(&query("app.gslb.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 2);
}

#[test]
fn help_and_version() {
    let bin = env!("CARGO_BIN_EXE_gslbd");
    let out = Command::new(bin).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), format!("gslbd {}", env!("CARGO_PKG_VERSION")));
    let out = Command::new(bin).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("run") && help.contains("check"), "{help}");
}

/// A listen address that does not exist on this host is skipped with a warning while the
/// others serve; with no address left the server refuses to start.
#[test]
fn unavailable_listen_address_is_skipped() {
    let text = config("", ZONE).replace("listen = [\"127.0.0.1:0\"]", "listen = [\"192.0.2.1:0\", \"127.0.0.1:0\"]");
    let s = Server::start(&text);
    assert!(s.wait_log("listen address not available").is_some());
    assert_eq!(s.udp(&query("app.gslb.example.org.", RecordType::A)).answers.len(), 2);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gslbd.toml");
    std::fs::write(&path, config("", ZONE).replace("127.0.0.1:0", "192.0.2.1:0")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd")).args(["run", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("192.0.2.1"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The server runs with glibc's per-thread allocator caches off (it starts itself again with
/// the tunable, keeping its process id and arguments), and it answers.
#[test]
fn the_server_runs_with_the_allocator_tunable() {
    let s = Server::start(&config("", &zone_with("app 60 IN A 192.0.2.1\n")));
    let env = s.environment();
    assert!(env.iter().any(|v| v == "GLIBC_TUNABLES=glibc.malloc.tcache_count=0"), "{env:?}");
    assert_eq!(answers(&s.udp(&query("app.gslb.example.org.", RecordType::A))), ["192.0.2.1"]);
    assert!(!s.log_text().contains("per-thread allocator caches"), "{}", s.log_text());
}

/// An operator's own tcache tunable is kept; other tunables get ours added.
#[test]
fn an_operator_tunable_is_kept() {
    let own = "glibc.malloc.tcache_count=2";
    let s = Server::start_with_env(&config("", &zone_with("app 60 IN A 192.0.2.1\n")), &[("GLIBC_TUNABLES", own)]);
    let env = s.environment();
    assert!(env.iter().any(|v| *v == format!("GLIBC_TUNABLES={own}")), "{env:?}");
    assert_eq!(answers(&s.udp(&query("app.gslb.example.org.", RecordType::A))), ["192.0.2.1"]);

    let other = "glibc.malloc.check=0";
    let s = Server::start_with_env(&config("", &zone_with("app 60 IN A 192.0.2.1\n")), &[("GLIBC_TUNABLES", other)]);
    // glibc cuts the variable at each `:` in place as it reads it, so /proc shows the parts
    // as separate entries.
    let env = s.environment().join("\n");
    assert!(env.contains(&format!("GLIBC_TUNABLES={other}\nglibc.malloc.tcache_count=0")), "{env}");
}

/// With `NOTIFY_SOCKET` (systemd's `Type=notify`): `READY=1` once every listener answers,
/// `RELOADING=1` then `READY=1` around a SIGHUP reload, `STOPPING=1` at SIGTERM; a test socket
/// stands in for systemd's.
#[test]
fn the_service_manager_is_told_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let next = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut s = Server::start_with_env(&config("", ZONE), &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let ready = next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(ready.contains("MAINPID="), "{ready}");
    // Ready means answering.
    assert!(!answers(&s.udp(&query("app.gslb.example.org.", RecordType::A))).is_empty());
    s.signal("HUP");
    assert_eq!(next(), "RELOADING=1");
    assert_eq!(next(), "READY=1");
    s.signal("TERM");
    assert_eq!(next(), "STOPPING=1");
    assert_eq!(s.wait_exit(DEADLINE), Some(0));
}

/// `gslbd probe` (the container health check): exit 0 when /ready is 200, 1 with the reason
/// when it is not or nothing answers.
#[test]
fn probe_reports_readiness_by_exit_code() {
    let s = Server::start(&config("", &format!("{}{ZONE}", crate::admin_client::admin_section(""))));
    let url = format!("http://{}/ready", s.admin_addr());
    let run = |url: &str| Command::new(env!("CARGO_BIN_EXE_gslbd")).args(["probe", url]).output().unwrap();
    let out = run(&url);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&format!("http://{}/nope", s.admin_addr()));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 404"));
    let out = run("http://127.0.0.1:9/ready");
    assert_eq!(out.status.code(), Some(1));
}

/// A zone a reload removes and a later reload adds back is read from its state file and
/// journal, as at start-up: the names pushed to it before answer again, and a push after it
/// continues the journal, so both survive a crash (SIGKILL: only the journal has the last).
#[test]
fn a_zone_a_reload_adds_back_is_read_from_disk() {
    use crate::admin_client::{ADMIN_SECRET, Client, admin_section};
    let state = tempfile::tempdir().unwrap();
    let head = format!("{}[state]\ndir = \"{}\"\n", admin_section(""), state.path().display());
    let other = "[[zone]]\nname = \"other.example\"\nns = [\"ns1.other.example\"]\n";
    let both = config("", &format!("{head}{}{other}", zone_with("app 60 IN A 192.0.2.1\n")));
    let one = config("", &format!("{head}{}", zone_with("app 60 IN A 192.0.2.1\n")));
    let push = |s: &Server, name: &str, ip: &str| {
        let body = format!("{{\"records\": [{{\"name\": \"{name}\", \"type\": \"A\", \"ips\": [\"{ip}\"]}}]}}");
        let auth = Some(("X-Elchi-Secret", ADMIN_SECRET));
        let (code, reply) = Client::for_server(s).call("POST", "/notify", auth, Some(body));
        assert_eq!(code, 200, "{reply}");
    };
    let reload = |s: &Server, text: &str| {
        std::fs::write(s.config_path(), text).unwrap();
        let mark = s.log_len();
        s.signal("HUP");
        assert!(s.wait_log_after("config reloaded", mark).is_some(), "{}", s.log_text());
    };
    let mut s = Server::start(&both);
    push(&s, "pushed.other.example", "192.0.2.7");
    reload(&s, &one);
    assert_eq!(s.udp(&query("pushed.other.example.", RecordType::A)).response_code, ResponseCode::Refused);
    reload(&s, &both);
    assert_eq!(answers(&s.udp(&query("pushed.other.example.", RecordType::A))), ["192.0.2.7"], "read back from disk");
    push(&s, "later.other.example", "192.0.2.8");
    s.signal("KILL");
    s.wait_exit(DEADLINE);
    drop(s);
    let s = Server::start(&both);
    for (name, ip) in [("pushed.other.example.", "192.0.2.7"), ("later.other.example.", "192.0.2.8")] {
        assert_eq!(answers(&s.udp(&query(name, RecordType::A))), [ip], "{name} after the crash");
    }
}
