//! Configuration errors: each names the file, the line, the key and the problem, and
//! `gslbd check` exits non-zero.

use std::process::Command;

/// Runs `gslbd check` on `text`; returns (exit success, stdout, stderr).
fn check(text: &str) -> (bool, String, String) {
    check_env(text, &[])
}

fn check_env(text: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    // A zone file with an error on line 2, for the zone_file tests.
    std::fs::write(dir.path().join("zone.db"), "app 60 IN A 192.0.2.1\nbroken 60 IN A not-an-ip\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gslbd"));
    cmd.args(["check", "--config"]).arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn zone(records: &str) -> String {
    format!("[[zone]]\nname = \"z.test\"\nns = [\"ns.z.test\"]\nrecords = \"\"\"\n{records}\"\"\"\n")
}

/// Asserts failure and that stderr names `file:line`, the key and a phrase.
fn assert_error(text: &str, line: usize, key: &str, phrase: &str) {
    let (ok, _, err) = check(text);
    assert!(!ok, "expected failure for:\n{text}");
    assert!(err.contains(&format!("bad.toml:{line}: {key}: ")), "want bad.toml:{line}: {key}: in {err}");
    assert!(err.contains(phrase), "want {phrase:?} in {err}");
}

#[test]
fn zone_listed_twice() {
    let text = format!("{}{}", zone("a 60 IN A 192.0.2.1\n"), zone(""));
    assert_error(&text, 8, "zone[1].name", "listed twice");
}

#[test]
fn record_outside_its_zone() {
    assert_error(
        &zone("a 60 IN A 192.0.2.1\nx.other.test. 60 IN A 192.0.2.1\n"),
        6,
        "zone[0].records",
        "outside the zone",
    );
}

#[test]
fn ipv6_address_in_an_a_record() {
    assert_error(&zone("a 60 IN A 2001:db8::1\n"), 5, "zone[0].records", "IPv4");
}

#[test]
fn ttl_above_2_pow_31() {
    assert_error(&zone("a 2147483648 IN A 192.0.2.1\n"), 5, "zone[0].records", "above 2^31-1");
    assert_error(
        "[[zone]]\nname = \"z.test\"\nns = [\"ns.z.test\"]\ndefault_ttl = 2147483648\n",
        4,
        "zone[0].default_ttl",
        "out of range",
    );
}

#[test]
fn cname_beside_other_data() {
    assert_error(
        &zone("a 60 IN A 192.0.2.1\na 60 IN CNAME b\n"),
        6,
        "zone[0].records",
        "CNAME at a.z.test. beside other data",
    );
}

#[test]
fn unknown_key_is_named() {
    let text = format!("[server]\nlisten = [\"127.0.0.1:0\"]\nlisen = 1\n{}", zone(""));
    let (ok, _, err) = check(&text);
    assert!(!ok);
    assert!(err.contains("bad.toml:3") && err.contains("unknown field `lisen`"), "{err}");
}

#[test]
fn bad_listen_address() {
    let text = format!("[server]\nlisten = [\"127.0.0.1:0\", \"localhost\"]\n{}", zone(""));
    assert_error(&text, 2, "server.listen[1]", "not an IP:port");
}

#[test]
fn bad_duration() {
    let text = format!("[server]\ntcp_idle_timeout = \"soon\"\n{}", zone(""));
    assert_error(&text, 2, "server.tcp_idle_timeout", "not a duration");
}

#[test]
fn unset_environment_variable_is_named() {
    let text = format!("[server]\nnsid = \"${{GSLBD_TEST_UNSET_VAR}}\"\n{}", zone(""));
    assert_error(&text, 2, "server.nsid", "GSLBD_TEST_UNSET_VAR is not set");
    let (ok, _, err) = check_env(&text, &[("GSLBD_TEST_UNSET_VAR", "edge")]);
    assert!(ok, "{err}");
}

#[test]
fn zone_without_name_servers() {
    assert_error("[[zone]]\nname = \"z.test\"\n", 2, "zone[0].ns", "no name servers");
}

#[test]
fn no_zone_at_all() {
    // Said at the last line, where one would be added.
    assert_error("[server]\nlisten = [\"127.0.0.1:0\"]\n\n", 2, "zone", "no [[zone]] is defined");
}

/// A file that is not UTF-8 names the line of the first bad byte.
#[test]
fn invalid_utf8_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, b"[server]\nnsid = \"caf\xe9\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd")).args(["check", "--config"]).arg(&path).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(err.contains("bad.toml:2: not UTF-8 text"), "{err}");
}

/// An expanded value is never printed in an error: the error shows what the file says.
#[test]
fn errors_name_the_variable_never_its_value() {
    for written in ["${GSLBD_TEST_SECRET}", "{$GSLBD_TEST_SECRET}"] {
        let text = format!(
            "{}[[zone.pool]]\nname = \"p\"\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"{written}\"]\n",
            zone("")
        );
        let (ok, _, err) = check_env(&text, &[("GSLBD_TEST_SECRET", "hunter2-very-secret")]);
        assert!(!ok);
        assert!(err.contains("bad.toml:9: zone[0].pool[0].member[0].ipv4"), "{err}");
        assert!(err.contains(written), "{err}");
        assert!(!err.contains("hunter2"), "the value leaked: {err}");
    }
    // A deserialization error (a string where a number belongs) too.
    let text = format!("[server]\nudp_workers = \"${{GSLBD_TEST_SECRET}}\"\n{}", zone(""));
    let (ok, _, err) = check_env(&text, &[("GSLBD_TEST_SECRET", "hunter2-very-secret")]);
    assert!(!ok);
    assert!(!err.contains("hunter2"), "the value leaked: {err}");
}

#[test]
fn toml_syntax_error_has_a_line() {
    let (ok, _, err) = check("[server]\nlisten = [\"127.0.0.1:0\"\n");
    assert!(!ok);
    assert!(err.contains("bad.toml:"), "{err}");
}

/// Errors in a zone file name that file and its line.
#[test]
fn zone_file_errors_name_the_zone_file() {
    let text = "[[zone]]\nname = \"z.test\"\nns = [\"ns.z.test\"]\nzone_file = \"zone.db\"\n";
    let (ok, _, err) = check(text);
    assert!(!ok);
    assert!(err.contains("zone.db:2: zone[0].zone_file: "), "{err}");
    let text = "[[zone]]\nname = \"z.test\"\nns = [\"ns.z.test\"]\nzone_file = \"missing.db\"\n";
    let (ok, _, err) = check(text);
    assert!(!ok && err.contains("bad.toml:4: zone[0].zone_file: cannot read"), "{err}");
}

/// Every problem in a file is reported, not just the first.
#[test]
fn all_errors_are_reported() {
    let text = format!("[server]\nmax_udp_payload = 100\nmax_tcp_connections = 0\n{}", zone("a 60 IN A 192.0.2.1\n"));
    let (ok, _, err) = check(&text);
    assert!(!ok);
    assert!(err.contains("bad.toml:2: server.max_udp_payload"), "{err}");
    assert!(err.contains("bad.toml:3: server.max_tcp_connections"), "{err}");
}

fn controller_zone(controller: &str) -> String {
    format!("{}[zone.controller]\n{controller}", zone(""))
}

#[test]
fn controller_secret_must_be_long_enough() {
    let text = controller_zone("endpoint = \"http://127.0.0.1:1052\"\nsecret = \"short\"\n");
    assert_error(&text, 8, "zone[0].controller.secret", "at least 8 bytes");
}

#[test]
fn controller_sync_interval_must_exceed_timeout() {
    let text = controller_zone(
        "endpoint = \"http://127.0.0.1:1052\"\nsecret = \"12345678\"\nsync_interval = \"2s\"\ntimeout = \"3s\"\n",
    );
    assert_error(&text, 9, "zone[0].controller.sync_interval", "longer than the timeout");
    let text = controller_zone("endpoint = \"http://127.0.0.1:1052\"\nsecret = \"12345678\"\ntimeout = \"10ms\"\n");
    assert_error(&text, 9, "zone[0].controller.timeout", "out of range");
}

#[test]
fn controller_endpoint_and_node_ip_are_checked() {
    let text = controller_zone("endpoint = \"ftp://x\"\nsecret = \"12345678\"\n");
    assert_error(&text, 7, "zone[0].controller.endpoint", "not an http:// or https:// URL");
    let text = controller_zone("endpoint = \"http://x\"\nsecret = \"12345678\"\nnode_ip = \"node-1\"\n");
    assert_error(&text, 9, "zone[0].controller.node_ip", "not an IP address");
    let text = controller_zone("endpoint = \"http://x\"\nsecret = \"12345678\"\nregions = [\"all\", \"asya\"]\n");
    assert_error(&text, 9, "zone[0].controller.regions", "cannot be combined");
}

#[test]
fn controller_secret_from_the_environment() {
    let text = controller_zone("endpoint = \"http://127.0.0.1:1052\"\nsecret = \"${GSLBD_TEST_SECRET}\"\n");
    let (ok, _, err) = check_env(&text, &[("GSLBD_TEST_SECRET", "long-enough-secret")]);
    assert!(ok, "{err}");
    assert_error(&text, 8, "zone[0].controller.secret", "GSLBD_TEST_SECRET is not set");
}

#[test]
fn admin_section_is_checked() {
    let text = format!("[admin]\nlisten = \"127.0.0.1:0\"\n{}", zone(""));
    assert_error(&text, 1, "admin.secret", "is required");
    let text = format!("[admin]\nsecret = \"12345678\"\ntls_cert = \"cert.pem\"\n{}", zone(""));
    assert_error(&text, 3, "admin.tls_cert", "give both or neither");
    let text = format!("[admin]\nsecret = \"12345678\"\nmax_body = \"lots\"\n{}", zone(""));
    assert_error(&text, 3, "admin.max_body", "not a size");
    let text = format!("[admin]\nsecret = \"short\"\n{}", zone(""));
    assert_error(&text, 2, "admin.secret", "at least 8 bytes");
}

fn geo(body: &str) -> String {
    format!(
        "{}[geo]\n[[geo.datacenter]]\nname = \"eu\"\ncoordinates = [50.1, 8.7]\n[[geo.datacenter]]\nname = \"us\"\n{body}",
        zone("a 60 IN A 192.0.2.1\n")
    )
}

/// `[geo]`: unknown datacenters, bad networks and bad coordinates name their line and key.
#[test]
fn geo_errors_name_line_and_key() {
    // zone(...) is 6 lines, then [geo] on 7, the datacenters on 8-12, the map from 13.
    assert_error(
        &geo("[[geo.map]]\ndefault = [\"eu\", \"asia\"]\n"),
        14,
        "geo.map[0].default",
        "unknown datacenter \"asia\"",
    );
    assert_error(
        &geo("[[geo.map]]\nnets = { \"10.0.0.1/8\" = [\"eu\"] }\n"),
        14,
        "geo.map[0].nets.\"10.0.0.1/8\"",
        "bits set beyond the prefix",
    );
    assert_error(
        &geo("[[geo.map]]\nnets = { \"10.0.0.0/8\" = [\"eu\", \"eu\"] }\n"),
        14,
        "geo.map[0].nets.\"10.0.0.0/8\"",
        "listed twice",
    );
    assert_error(&geo("[[geo.datacenter]]\nname = \"eu\"\n"), 14, "geo.datacenter[2].name", "defined twice");
    assert_error(
        &geo("[[geo.datacenter]]\nname = \"ap\"\ncoordinates = [95.0, 0.0]\n"),
        15,
        "geo.datacenter[2].coordinates",
        "latitude",
    );
    assert_error(&geo("[[geo.map]]\n[[geo.map]]\n"), 14, "geo.map[1].name", "defined twice");
    let (ok, _, err) =
        check(&geo("[[geo.map]]\nnets = { \"10.0.0.0/8\" = [\"eu\", \"us\"], \"2001:db8::/32\" = [\"us\"] }\n"));
    assert!(ok, "{err}");
}

/// A `nets_file` error names that file and its line; a missing file is an error at the key.
#[test]
fn geo_nets_file_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("geo.toml");
    std::fs::write(dir.path().join("nets.txt"), "# clients\n10.1.0.0/16 eu,us\n10.2.0.0/16 eu,mars\n").unwrap();
    std::fs::write(&path, geo("[[geo.map]]\nnets_file = \"nets.txt\"\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd")).args(["check", "--config"]).arg(&path).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(err.contains("nets.txt:3: geo.map[0].nets_file: unknown datacenter \"mars\""), "{err}");

    // A map whose file has errors still exists for the pools that name it: its own errors
    // are the only ones.
    let pool = "[[zone.pool]]\nname = \"p\"\nselect = \"geo\"\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.9\"]\ndatacenter = \"eu\"\n";
    let with_pool = geo("[[geo.map]]\nnets_file = \"nets.txt\"\n").replacen("[geo]", &format!("{pool}[geo]"), 1);
    std::fs::write(&path, with_pool).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd")).args(["check", "--config"]).arg(&path).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown datacenter \"mars\""), "{err}");

    // An empty file (or one of comments only) is refused: every client would move to the
    // default order, and it is most often a file caught while being rewritten.
    std::fs::write(dir.path().join("nets.txt"), "# nothing yet\n\n").unwrap();
    std::fs::write(&path, geo("[[geo.map]]\nnets_file = \"nets.txt\"\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd")).args(["check", "--config"]).arg(&path).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("geo.toml:14: geo.map[0].nets_file: ") && err.contains("holds no networks"), "{err}");

    std::fs::write(&path, geo("[[geo.map]]\nnets_file = \"missing.txt\"\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd")).args(["check", "--config"]).arg(&path).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("geo.toml:14: geo.map[0].nets_file: cannot read"), "{err}");
}

/// Geo pools and names: a missing map, a member without a datacenter or in an unknown one,
/// `within` without `select = "geo"`, and geo name targets outside every zone or in unknown
/// datacenters all name their line and key.
#[test]
fn geo_pool_and_name_errors_name_line_and_key() {
    let map = "[[geo.map]]\nname = \"world\"\n";
    let pool = |select: &str, member: &str| {
        format!(
            "[[zone.pool]]\nname = \"p\"\n{select}\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n{member}"
        )
    };
    // [geo] ends on line 12; the body starts on 13.
    assert_error(
        &geo(&pool("select = \"geo\"", "datacenter = \"eu\"")),
        13,
        "zone[0].pool[0].geo_map",
        "needs a [[geo.map]]",
    );
    let body = format!("{map}{}", pool("select = \"geo\"\ngeo_map = \"mars\"", "datacenter = \"eu\""));
    assert_error(&geo(&body), 18, "zone[0].pool[0].geo_map", "unknown [[geo.map]] \"mars\"");
    let body = format!("{map}{}", pool("select = \"geo\"", ""));
    assert_error(&geo(&body), 19, "zone[0].pool[0].member[0].datacenter", "needs a datacenter");
    let body = format!("{map}{}", pool("select = \"geo\"", "datacenter = \"mars\""));
    assert_error(&geo(&body), 21, "zone[0].pool[0].member[0].datacenter", "unknown datacenter \"mars\"");
    let body = format!("{map}{}", pool("within = \"all\"", "datacenter = \"eu\""));
    assert_error(&geo(&body), 17, "zone[0].pool[0].within", "only applies with select = \"geo\"");
    let geo_name = |targets: &str| format!("{map}[[zone.geo_name]]\nname = \"svc\"\ntargets = {{ {targets} }}\n");
    assert_error(&geo(&geo_name("mars = \"a.z.test\"")), 17, "zone[0].geo_name[0].targets.mars", "unknown datacenter");
    assert_error(
        &geo(&geo_name("eu = \"a.example.net\"")),
        17,
        "zone[0].geo_name[0].targets",
        "in no zone served here",
    );
    let taken = format!("{map}[[zone.geo_name]]\nname = \"a\"\ntargets = {{ eu = \"b.z.test\" }}\n");
    assert_error(&geo(&taken), 16, "zone[0].geo_name[0].name", "already has records");
    let (ok, _, err) = check(&geo(&format!(
        "{}{}",
        geo_name("eu = \"a.z.test\", us = \"p.z.test.\""),
        pool("select = \"geo\"\nwithin = \"weighted\"", "datacenter = \"us\"")
    )));
    assert!(ok, "{err}");
}

/// A map's database keys: `rules` need a database and a known kind of location, `nearest`
/// needs a database, and a file that is not a MaxMind DB is an error at `mmdb`.
#[test]
fn geo_database_errors_name_line_and_key() {
    assert_error(&geo("[[geo.map]]\nrules = { \"country:TR\" = [\"eu\"] }\n"), 14, "geo.map[0].rules", "set mmdb");
    assert_error(&geo("[[geo.map]]\nnearest = true\n"), 14, "geo.map[0].nearest", "set mmdb");
    let (ok, _, err) = check(&geo("[[geo.map]]\nmmdb = \"zone.db\"\nrules = { \"planet:MARS\" = [\"eu\"] }\n"));
    assert!(!ok);
    assert!(
        err.contains("bad.toml:15: geo.map[0].rules.\"planet:MARS\": ") && err.contains("not continent:CODE"),
        "{err}"
    );
    assert!(err.contains("bad.toml:14: geo.map[0].mmdb: cannot read") && err.contains("zone.db"), "{err}");
}

/// `[cluster]` and the pool keys that need it name their line and key.
#[test]
fn cluster_errors_name_line_and_key() {
    let pool = |keys: &str| {
        format!(
            "{}[[zone.pool]]\nname = \"p\"\n{keys}\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n",
            zone("")
        )
    };
    // zone(...) is 5 lines; the pool's keys start on 8.
    assert_error(&pool("quorum = \"majority\""), 8, "zone[0].pool[0].quorum", "needs [cluster]");
    assert_error(&pool("probers = 1"), 8, "zone[0].pool[0].probers", "needs [cluster]");
    let cluster = |body: &str| format!("[cluster]\n{body}\n{}", pool("quorum = \"most\""));
    let (ok, _, err) =
        check(&cluster("nats = [\"http://x\"]\ninstance = \"a b\"\nobservation_ttl = \"0s\"\nprobe_source = \"here\""));
    assert!(!ok);
    for want in [
        "bad.toml:2: cluster.nats: \"http://x\" is not a NATS URL",
        "bad.toml:3: cluster.instance: must be 1-64 letters",
        "bad.toml:4: cluster.observation_ttl: ",
        "bad.toml:5: cluster.probe_source: \"here\" is not an IP address",
        "zone[0].pool[0].quorum: \"most\" is not local, any, majority, all or a number",
    ] {
        assert!(err.contains(want), "want {want:?} in {err}");
    }
    assert_error(&format!("[cluster]\n{}", zone("")), 1, "cluster.nats", "list the NATS servers");
    let (ok, _, err) =
        check(&format!("[cluster]\nnats = [\"nats://127.0.0.1:4222\"]\n{}", pool("quorum = 2\nprobers = 1")));
    assert!(ok, "{err}");
}

/// `[log]`: a sink that is neither `unix:` nor `tcp:HOST:PORT`, an RCODE gslbd does not
/// send, and dnstap options without a sink.
#[test]
fn dnstap_settings() {
    let z = zone("");
    assert_error(&format!("[log]\ndnstap = \"udp:127.0.0.1:6000\"\n{z}"), 2, "log.dnstap", "unix:/path/to/socket");
    assert_error(&format!("[log]\ndnstap = \"tcp:127.0.0.1\"\n{z}"), 2, "log.dnstap", "is not a dnstap sink");
    assert_error(
        &format!("[log]\ndnstap = \"unix:/run/tap.sock\"\ndnstap_rcodes = [\"NXDOMAIN\", \"NOPE\"]\n{z}"),
        3,
        "log.dnstap_rcodes",
        "\"NOPE\" is not an RCODE gslbd sends",
    );
    assert_error(&format!("[log]\ndnstap_responses_only = true\n{z}"), 2, "log.dnstap", "sink) is not");
    assert_error(
        &format!("[log]\ndnstap = \"tcp:[::1]:6000\"\ndnstap_queue = 3\n{z}"),
        3,
        "log.dnstap_queue",
        "out of range",
    );
    let (ok, _, err) = check(&format!("[log]\ndnstap = \"tcp:[::1]:6000\"\ndnstap_typo = 1\n{z}"));
    assert!(!ok && err.contains("bad.toml:3: unknown field `dnstap_typo`"), "{err}");
    let (ok, _, err) = check(&format!("[log]\ndnstap = \"tcp:[::1]:6000\"\ndnstap_rcodes = [\"servfail\"]\n{z}"));
    assert!(ok, "{err}");
}

/// `[rrl]`: rates out of range, a bad exempt network, an unknown key.
#[test]
fn rrl_settings() {
    let z = zone("");
    assert_error(&format!("[rrl]\nresponses_per_second = 0\n{z}"), 2, "rrl.responses_per_second", "out of range");
    assert_error(&format!("[rrl]\nslip = 11\n{z}"), 2, "rrl.slip", "out of range");
    assert_error(&format!("[rrl]\nipv6_prefix = 129\n{z}"), 2, "rrl.ipv6_prefix", "out of range");
    assert_error(&format!("[rrl]\nexempt = [\"10.0.0.1/8\"]\n{z}"), 2, "rrl.exempt", "bits set beyond the prefix");
    let (ok, _, err) = check(&format!("[rrl]\nrate = 5\n{z}"));
    assert!(!ok && err.contains("unknown field `rate`"), "{err}");
    let (ok, _, err) = check(&format!("[rrl]\n{z}"));
    assert!(ok, "[rrl] alone takes the defaults: {err}");
}

/// DNS over TLS: an address without a certificate, a certificate without an address, a
/// missing file, and a key that does not belong to the certificate.
#[test]
fn dot_settings() {
    let z = zone("");
    let server = |extra: &str| format!("[server]\nlisten = [\"127.0.0.1:5353\"]\n{extra}\n{z}");
    assert_error(&server("tls_listen = [\"127.0.0.1:853\"]"), 3, "server.tls_listen", "needs server.tls_cert");
    assert_error(&server("tls_listen = [\"127.0.0.1:5353\"]"), 3, "server.tls_listen[0]", "listed twice");
    let (ok, _, err) =
        check(&server("tls_listen = [\"127.0.0.1:853\"]\ntls_cert = \"missing.pem\"\ntls_key = \"missing-key.pem\""));
    assert!(!ok && err.contains("bad.toml:4: server.tls_cert: cannot read") && err.contains("missing.pem"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let a = rcgen::generate_simple_self_signed(vec!["a.test".to_string()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["b.test".to_string()]).unwrap();
    std::fs::write(dir.path().join("a.pem"), a.cert.pem()).unwrap();
    std::fs::write(dir.path().join("b-key.pem"), b.signing_key.serialize_pem()).unwrap();
    let mismatched = server(&format!(
        "tls_listen = [\"127.0.0.1:853\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"",
        dir.path().join("a.pem").display(),
        dir.path().join("b-key.pem").display()
    ));
    let (ok, _, err) = check(&mismatched);
    assert!(!ok && err.contains("server.tls_cert: the certificate and key do not match"), "{err}");
}

/// Fuzzing found master-file text that made the zone-file scanner panic: `gslbd check`
/// reports it as an error with its line instead of crashing.
#[test]
fn scanner_crash_input_is_an_error() {
    let (ok, _, err) = check(&zone("a 60 IN A 192.0.2.1\n\\\\#(\"TXT\"T\"1\">\n"));
    assert!(!ok, "{err}");
    assert!(err.contains("bad.toml:6: zone[0].records") && err.contains("malformed record"), "{err}");
}

#[test]
fn controller_max_shrink_is_a_percentage() {
    for bad in ["\"0%\"", "\"101%\"", "\"half\"", "\"50\""] {
        let text = controller_zone(&format!("endpoint = \"http://x\"\nsecret = \"12345678\"\nmax_shrink = {bad}\n"));
        assert_error(&text, 9, "zone[0].controller.max_shrink", "percentage from 1% to 100%");
    }
    let (ok, _, err) =
        check(&controller_zone("endpoint = \"http://x\"\nsecret = \"12345678\"\nmax_shrink = \"100%\"\n"));
    assert!(ok, "{err}");
}
