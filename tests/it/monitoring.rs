//! The shipped alert rules and Grafana dashboard (deploy/monitoring) against a real
//! `/metrics`: a server with a syncing and a failing controller zone, probed pools, a geo
//! pool, a signed zone, a NATS cluster and dnstap exports every family they name, with every label they match on
//! or group by and every label value they compare with. (Their syntax and alert logic are
//! checked by promtool in deploy/monitoring/check.sh.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::admin_client::{Client, admin_section};
use crate::cluster::Nats;
use crate::fake_controller::{FakeController, Mode};
use crate::harness::*;
use crate::pools::Endpoint;

/// Labels Prometheus adds to every scraped series, and the histogram bucket bound.
const ADDED_BY_PROMETHEUS: [&str; 3] = ["job", "instance", "le"];

/// Sample name → every label set it was exported with.
type Scrape = BTreeMap<String, Vec<BTreeMap<String, String>>>;

/// What an expression asks of one metric.
#[derive(Debug, Default)]
struct Wants {
    /// Label keys it matches on or groups by.
    keys: BTreeSet<String>,
    /// `key="value"` equality matchers.
    values: BTreeSet<(String, String)>,
}

/// Parses the text exposition (our own output: simple quoting).
fn parse_exposition(text: &str) -> Scrape {
    let mut out = Scrape::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, rest) = line.split_at(line.find(['{', ' ']).expect("a sample line"));
        let mut labels = BTreeMap::new();
        if let Some(body) = rest.strip_prefix('{').filter(|b| !b.starts_with('}')) {
            let mut chars = body.chars().peekable();
            loop {
                let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
                assert_eq!(chars.next(), Some('"'), "{line}");
                let mut value = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.push(chars.next().unwrap()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.insert(key.trim_start_matches(',').to_string(), value);
                if chars.peek() == Some(&'}') {
                    break;
                }
            }
        }
        out.entry(name.to_string()).or_default().push(labels);
    }
    out
}

/// Every `gslbd_*` metric an expression (or any text of PromQL) names, with the label keys and
/// values it matches on, and the labels of the `by (...)` groupings around it.
fn wanted(expr: &str, into: &mut BTreeMap<String, Wants>) {
    let bytes = expr.as_bytes();
    let is_name = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut i = 0;
    while let Some(at) = expr[i..].find("gslbd_").map(|p| p + i) {
        let end = at + bytes[at..].iter().take_while(|&&b| is_name(b)).count();
        i = end;
        if at > 0 && (is_name(bytes[at - 1]) || bytes[at - 1] == b'-') {
            continue;
        }
        let w = into.entry(expr[at..end].to_string()).or_default();
        if bytes.get(end) == Some(&b'{') {
            let close = end + expr[end..].find('}').unwrap();
            for matcher in expr[end + 1..close].split(',').filter(|m| !m.trim().is_empty()) {
                let op_at = matcher.find(['=', '!']).unwrap();
                let key = matcher[..op_at].trim().to_string();
                let rest = &matcher[op_at..];
                if let Some(v) = rest.strip_prefix('=').filter(|v| !v.starts_with('~')) {
                    w.values.insert((key.clone(), v.trim().trim_matches('"').to_string()));
                }
                w.keys.insert(key);
            }
        }
    }
    // `by (a, b) (inner)`: every metric of `inner` must have a and b.
    let mut i = 0;
    while let Some(at) = expr[i..].find("by (").map(|p| p + i) {
        let close = at + expr[at..].find(')').unwrap();
        let keys: Vec<String> = expr[at + 4..close].split(',').map(|k| k.trim().to_string()).collect();
        let open = close + 1 + expr[close + 1..].find('(').unwrap();
        let mut depth = 0;
        let inner_end = open
            + expr[open..]
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .unwrap()
                .0;
        let mut inner = BTreeMap::new();
        wanted(&expr[open..inner_end], &mut inner);
        for name in inner.keys() {
            into.get_mut(name).unwrap().keys.extend(keys.iter().cloned());
        }
        i = close;
    }
}

/// What the rule file and the dashboard ask of the metrics.
fn monitoring_wants() -> BTreeMap<String, Wants> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/monitoring");
    let mut wants = BTreeMap::new();
    let rules = std::fs::read_to_string(dir.join("gslbd-rules.yaml")).unwrap();
    // The `expr:` values (block scalars included); annotations only mention metrics.
    let mut block: Option<String> = None;
    for line in rules.lines() {
        if let Some(b) = block.as_mut() {
            if line.starts_with("          ") {
                b.push_str(line);
                b.push('\n');
                continue;
            }
            wanted(b, &mut wants);
            block = None;
        }
        match line.trim_start().strip_prefix("expr: ") {
            Some("|") => block = Some(String::new()),
            Some(expr) => wanted(expr, &mut wants),
            None => {}
        }
    }
    let board: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("gslbd-dashboard.json")).unwrap()).unwrap();
    let mut strings = Vec::new();
    collect_strings(&board, &mut strings);
    for s in strings.iter().filter(|s| s.contains("gslbd_")) {
        wanted(s, &mut wants);
    }
    wants
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// What in `wants` the scrape lacks, one line each.
fn missing(wants: &BTreeMap<String, Wants>, scrape: &Scrape) -> Vec<String> {
    let mut out = Vec::new();
    for (name, w) in wants {
        let Some(series) = scrape.get(name) else {
            out.push(format!("{name}: not exported"));
            continue;
        };
        for key in w.keys.iter().filter(|k| !ADDED_BY_PROMETHEUS.contains(&k.as_str())) {
            if !series.iter().any(|l| l.contains_key(key)) {
                out.push(format!("{name}: no label {key}"));
            }
        }
        for (key, value) in w.values.iter().filter(|(k, _)| !ADDED_BY_PROMETHEUS.contains(&k.as_str())) {
            if !series.iter().any(|l| l.get(key) == Some(value)) {
                out.push(format!("{name}: no series with {key}=\"{value}\""));
            }
        }
    }
    out
}

/// The rules and the dashboard name only metrics, labels and label values that a real
/// server exports once it has synced, probed, answered by location and joined a cluster.
#[test]
fn alert_rules_and_dashboard_name_exported_metrics() {
    let wants = monitoring_wants();
    // The files are read for real: the families the alerts are about are among them.
    for name in ["gslbd_sync_age_seconds", "gslbd_pool_members", "gslbd_zone_data_loaded", "gslbd_queries_total"] {
        assert!(wants.contains_key(name), "{name} not found in deploy/monitoring: {:?}", wants.keys());
    }
    assert!(wants["gslbd_queries_total"].values.contains(&("rcode".to_string(), "SERVFAIL".to_string())));

    let nats = Nats::start();
    let good = FakeController::start(
        "gslb.example.org",
        "v1",
        json!([{"name": "app.gslb.example.org", "type": "A", "ttl": 30, "ips": ["192.0.2.10"]}]),
    );
    let failing = FakeController::start("down.example.org", "v1", json!([]));
    failing.set(|st| st.mode = Mode::Status(500));
    let (_up, up_port) = Endpoint::start("127.0.0.2", 0);
    let (down, _) = Endpoint::start("127.0.0.3", up_port);
    down.set(503);
    let state = tempfile::tempdir().unwrap();
    let key = crate::dnssec::keygen(state.path(), "gslb.example.org", &["--ksk"]);
    let controller = |endpoint: String| {
        format!(
            "[zone.controller]\nendpoint = \"{endpoint}\"\nsecret = \"test-secret-key\"\nsync_interval = \"1s\"\ntimeout = \"300ms\"\n"
        )
    };
    let zones = format!(
        "{}[state]\ndir = \"{}\"\n[log]\ndnstap = \"unix:{}/nobody.sock\"\n[cluster]\nnats = [\"{}\"]\ninstance = \"a\"\nobservation_ttl = \"3s\"\n\
         [[geo.datacenter]]\nname = \"eu\"\n[[geo.datacenter]]\nname = \"us\"\n\
         [[geo.map]]\nname = \"world\"\ndefault = [\"us\"]\nnets = {{ \"127.0.0.0/8\" = [\"eu\"] }}\n\
         [[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n{}\
         [zone.dnssec]\nkeys = [\"{}\"]\n\
         [[zone.pool]]\nname = \"web\"\n\
         [zone.pool.check]\ntype = \"http\"\nport = {up_port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"up\"\nipv4 = [\"127.0.0.2\"]\n\
         [[zone.pool.member]]\nname = \"down\"\nrole = \"secondary\"\nipv4 = [\"127.0.0.3\"]\n\
         [[zone.pool]]\nname = \"near\"\nselect = \"geo\"\n[zone.pool.check]\ntype = \"none\"\n\
         [[zone.pool.member]]\nname = \"eu1\"\ndatacenter = \"eu\"\nipv4 = [\"192.0.2.1\"]\n\
         [[zone.pool.member]]\nname = \"us1\"\ndatacenter = \"us\"\nipv4 = [\"192.0.2.2\"]\n\
         [[zone]]\nname = \"down.example.org\"\nns = [\"ns1.down.example.org\"]\n{}",
        admin_section(""),
        state.path().display(),
        state.path().display(),
        nats.url,
        controller(good.endpoint()),
        key.display(),
        controller(failing.endpoint()),
    );
    let s = Server::start(&config("", &zones));
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m) == ["192.0.2.10"]);
    // A zone that never loaded answers SERVFAIL; a geo pool answers by location; one TCP query.
    let servfail = s.udp(&query("www.down.example.org.", RecordType::A));
    assert_eq!(servfail.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(answers(&s.udp(&query("near.gslb.example.org.", RecordType::A))), ["192.0.2.1"]);
    assert_eq!(answers(&s.tcp_query(&query("app.gslb.example.org.", RecordType::A))), ["192.0.2.10"]);

    let client = Client::for_server(&s);
    let end = Instant::now() + DEADLINE;
    loop {
        // The secondary's probes fail (a transition to down), the cluster connects.
        let lacking = missing(&wants, &parse_exposition(&client.text("/metrics")));
        if lacking.is_empty() {
            break;
        }
        assert!(Instant::now() < end, "/metrics lacks what deploy/monitoring names:\n{}", lacking.join("\n"));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The checker itself: a name, a label and a label value gslbd does not export are each
/// reported, and `by (...)` labels count for the metrics inside.
#[test]
fn the_metric_name_check_reports_what_is_missing() {
    let scrape = parse_exposition(
        "# TYPE gslbd_queries counter\ngslbd_queries_total{zone=\"a.\",rcode=\"NOERROR\"} 3\ngslbd_up 1\n",
    );
    let mut wants = BTreeMap::new();
    wanted(
        "sum by (zone, pool) (rate(gslbd_queries_total{rcode=\"SERVFAIL\", job=~\"$job\"}[5m])) + gslbd_nope + gslbd_up",
        &mut wants,
    );
    assert_eq!(
        missing(&wants, &scrape),
        [
            "gslbd_nope: not exported",
            "gslbd_queries_total: no label pool",
            "gslbd_queries_total: no series with rcode=\"SERVFAIL\"",
        ]
    );
}
