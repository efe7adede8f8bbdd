//! Topology steering through real DNS queries: location maps from networks to datacenter
//! orders, geo pools that answer the nearest healthy datacenter (failing over as probes
//! change), geo names that flatten the nearest target with addresses, and the ECS scope of
//! every kind of answer.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::admin_client::{Client, admin_section};
use crate::ecs::{subnet_of, with_subnet};
use crate::harness::*;
use crate::pools::Endpoint;

/// Three datacenters and one map: 10/8 → eu, 10.1/16 → asia then eu, 127/8 (the test's own
/// source address) → asia, 2001:db8:e000::/36 → eu; everything else → us.
const GEO: &str = r#"
[[geo.datacenter]]
name = "eu"
coordinates = [50.1, 8.7]
[[geo.datacenter]]
name = "us"
[[geo.datacenter]]
name = "asia"
[[geo.map]]
name = "world"
default = ["us"]
nets = { "10.0.0.0/8" = ["eu"], "10.1.0.0/16" = ["asia", "eu"], "127.0.0.0/8" = ["asia"], "2001:db8:e000::/36" = ["eu"] }
"#;

/// A zone with a geo pool `geo` (members in every datacenter, no probes) and `extra`.
fn geo_zone(extra: &str) -> String {
    format!(
        "{GEO}\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"\"\"\nns1 60 IN A 127.0.0.1\nplain 60 IN A 192.0.2.200\nalias 60 IN CNAME geo\n\"\"\"\n\
         [[zone.pool]]\nname = \"geo\"\nselect = \"geo\"\nttl = 20\n[zone.pool.check]\ntype = \"none\"\n\
         [[zone.pool.member]]\nname = \"eu1\"\ndatacenter = \"eu\"\nipv4 = [\"192.0.2.1\"]\n\
         [[zone.pool.member]]\nname = \"eu2\"\ndatacenter = \"eu\"\nipv4 = [\"192.0.2.2\"]\n\
         [[zone.pool.member]]\nname = \"us1\"\ndatacenter = \"us\"\nipv4 = [\"192.0.2.3\"]\nipv6 = [\"2001:db8::3\"]\n\
         [[zone.pool.member]]\nname = \"asia1\"\ndatacenter = \"asia\"\nipv4 = [\"192.0.2.4\"]\n\
         {extra}"
    )
}

/// Sorted answers and the ECS scope of the reply to `name` for a client in `subnet`.
fn ask(s: &Server, name: &str, rtype: RecordType, addr: &str, source: u8) -> (Vec<String>, u8) {
    let m = s.udp(&with_subnet(name, rtype, addr, source));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name} for {addr}/{source}: {m:?}");
    let mut got = answers(&m);
    got.sort();
    let scope = subnet_of(&m).expect("ECS echoed").scope_prefix();
    (got, scope)
}

/// The most specific network wins, clients no network covers get the default, and the scope
/// is the widest prefix around the client with the same datacenter order: 10.2.3.0/24 lies
/// in 10.2.0.0–10.255.255.255 (eu) so /15, 10.1.3.0/24 in 10.1/16 (asia), 192.0.2.0/24 in
/// the default's 128/1.
#[test]
fn nets_rules_choose_the_datacenter_and_the_scope() {
    let s = Server::start(&config("", &geo_zone("")));
    let eu = vec!["192.0.2.1".to_string(), "192.0.2.2".to_string()];
    let a = RecordType::A;
    assert_eq!(ask(&s, "geo.gslb.example.org.", a, "10.2.3.0", 24), (eu.clone(), 15));
    assert_eq!(ask(&s, "geo.gslb.example.org.", a, "10.1.3.0", 24), (vec!["192.0.2.4".to_string()], 16));
    assert_eq!(ask(&s, "geo.gslb.example.org.", a, "192.0.2.0", 24), (vec!["192.0.2.3".to_string()], 1));
    assert_eq!(ask(&s, "geo.gslb.example.org.", a, "2001:db8:e001::", 48), (eu.clone(), 36));
    // A more specific source than the rule: the scope is still the rule's network.
    assert_eq!(ask(&s, "geo.gslb.example.org.", a, "10.200.1.7", 32), (eu.clone(), 9));
    // AAAA: only us has IPv6 members, so every client gets it.
    assert_eq!(ask(&s, "geo.gslb.example.org.", RecordType::AAAA, "10.2.3.0", 24).0, ["2001:db8::3"]);
    // Over TCP the same.
    let m = s.tcp_query(&with_subnet("geo.gslb.example.org.", a, "10.1.3.0", 24));
    assert_eq!((answers(&m), subnet_of(&m).unwrap().scope_prefix()), (vec!["192.0.2.4".to_string()], 16));
    // No ECS: the packet's source (127.0.0.1 → asia) decides, and no option comes back.
    let m = s.udp(&query_edns("geo.gslb.example.org.", a, 1232));
    assert_eq!(answers(&m), ["192.0.2.4"]);
    assert!(subnet_of(&m).is_none());
    assert_eq!(answers(&s.udp(&query("geo.gslb.example.org.", a))), ["192.0.2.4"]);
    // Source prefix 0: the resolver withheld the address; the source decides, scope 0.
    assert_eq!(ask(&s, "geo.gslb.example.org.", a, "0.0.0.0", 0), (vec!["192.0.2.4".to_string()], 0));
    // A CNAME to the pool: the chain continues into it for the same client, with its scope.
    let (got, scope) = ask(&s, "alias.gslb.example.org.", a, "10.1.3.0", 24);
    assert_eq!((got, scope), (vec!["192.0.2.4".to_string(), "geo.gslb.example.org.".to_string()], 16));
    // Answers that do not depend on location: scope 0 (static, NODATA at the pool, NXDOMAIN).
    assert_eq!(ask(&s, "plain.gslb.example.org.", a, "10.2.3.0", 24).1, 0);
    assert_eq!(ask(&s, "geo.gslb.example.org.", RecordType::TXT, "10.2.3.0", 24), (vec![], 0));
    let nx = s.udp(&with_subnet("nope.gslb.example.org.", a, "10.2.3.0", 24));
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(subnet_of(&nx).unwrap().scope_prefix(), 0);
}

/// When every member of the nearest datacenter fails its probes, its clients get the next
/// datacenter in their order; when one comes back, they return.
#[test]
fn a_geo_pool_fails_over_to_the_next_datacenter_and_back() {
    let (eu, port) = Endpoint::start("127.0.0.2", 0);
    let (_us, _) = Endpoint::start("127.0.0.3", port);
    let pool = format!(
        "{GEO}\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n\
         [[zone.pool]]\nname = \"app\"\nselect = \"geo\"\nwithin = \"failover\"\nwhen_all_down = \"nodata\"\n\
         [zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"eu1\"\ndatacenter = \"eu\"\nipv4 = [\"127.0.0.2\"]\n\
         [[zone.pool.member]]\nname = \"us1\"\ndatacenter = \"us\"\nipv4 = [\"127.0.0.3\"]\n"
    );
    let s = Server::start(&config("", &pool));
    let eu_client = |s: &Server| ask(s, "app.gslb.example.org.", RecordType::A, "10.9.0.0", 16);
    assert_eq!(eu_client(&s), (vec!["127.0.0.2".to_string()], 13));
    eu.set(503);
    let end = std::time::Instant::now() + DEADLINE;
    while eu_client(&s).0 != ["127.0.0.3"] {
        assert!(std::time::Instant::now() < end, "eu clients never failed over to us");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // us clients were answered by us all along; the scope stays the map's.
    assert_eq!(ask(&s, "app.gslb.example.org.", RecordType::A, "192.0.2.0", 24), (vec!["127.0.0.3".to_string()], 1));
    eu.set(200);
    let end = std::time::Instant::now() + DEADLINE;
    while eu_client(&s).0 != ["127.0.0.2"] {
        assert!(std::time::Instant::now() < end, "eu clients never came back to eu");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `within = "all"` answers every healthy member of the chosen datacenter up to
/// `max_answers`; `weighted` draws among them and never answers another datacenter's.
#[test]
fn within_applies_inside_the_chosen_datacenter() {
    let members = "[[zone.pool.member]]\nname = \"e1\"\ndatacenter = \"eu\"\nipv4 = [\"192.0.2.11\"]\nweight = 3\n\
         [[zone.pool.member]]\nname = \"e2\"\ndatacenter = \"eu\"\nipv4 = [\"192.0.2.12\"]\nweight = 1\n\
         [[zone.pool.member]]\nname = \"e3\"\ndatacenter = \"eu\"\nipv4 = [\"192.0.2.13\"]\nweight = 1\n\
         [[zone.pool.member]]\nname = \"u1\"\ndatacenter = \"us\"\nipv4 = [\"192.0.2.21\"]\n";
    let pools = format!(
        "[[zone.pool]]\nname = \"all2\"\nselect = \"geo\"\nwithin = \"all\"\nmax_answers = 2\n[zone.pool.check]\ntype = \"none\"\n{members}\
         [[zone.pool]]\nname = \"w\"\nselect = \"geo\"\nwithin = \"weighted\"\nmax_answers = 1\n[zone.pool.check]\ntype = \"none\"\n{members}"
    );
    let zone = format!(
        "{GEO}\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n{pools}"
    );
    let s = Server::start(&config("", &zone));
    let eu = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..200 {
        let (got, scope) = ask(&s, "all2.gslb.example.org.", RecordType::A, "10.9.0.0", 16);
        assert_eq!((got.len(), scope), (2, 13));
        assert!(got.iter().all(|a| eu.contains(&a.as_str())), "{got:?}");
        let (got, _) = ask(&s, "w.gslb.example.org.", RecordType::A, "10.9.0.0", 16);
        assert_eq!(got.len(), 1);
        *seen.entry(got[0].clone()).or_insert(0u32) += 1;
    }
    assert!(seen.keys().all(|a| eu.contains(&a.as_str())), "{seen:?}");
    assert!(seen["192.0.2.11"] > seen.get("192.0.2.12").copied().unwrap_or(0), "weight 3 beats weight 1: {seen:?}");
    assert_eq!(ask(&s, "w.gslb.example.org.", RecordType::A, "192.0.2.0", 24).0, ["192.0.2.21"]);
}

/// A geo name answers with the addresses of its nearest datacenter's target, as its own
/// records (no CNAME); an empty, deleted or CNAME'd target passes to the next datacenter,
/// and every push is seen at once.
#[test]
fn a_geo_name_flattens_the_nearest_target_with_addresses() {
    let state = tempfile::tempdir().unwrap();
    let geo_name = "[[zone.geo_name]]\nname = \"service\"\n\
         targets = { eu = \"service.avrupa.gslb.example.org\", asia = \"service.asya.gslb.example.org\", us = \"geo.gslb.example.org\" }\n";
    let text = format!("{}[state]\ndir = \"{}\"\n{}", admin_section(""), state.path().display(), geo_zone(geo_name));
    let s = Server::start(&config("", &text));
    let c = Client::for_server(&s);
    let push = |name: &str, ips: &[&str]| {
        let (code, body) = c.notify(json!({"records": [{"name": name, "type": "A", "ttl": 40, "ips": ips}]}));
        assert_eq!(code, 200, "{body}");
    };
    push("service.avrupa.gslb.example.org", &["198.51.100.1"]);
    push("service.asya.gslb.example.org", &["198.51.100.2", "198.51.100.3"]);
    let service = "service.gslb.example.org.";
    let m = s.udp(&with_subnet(service, RecordType::A, "10.9.0.0", 16));
    assert_eq!(answers(&m), ["198.51.100.1"]);
    assert_eq!(types(&m.answers), [RecordType::A], "flattened: no CNAME");
    assert_eq!(m.answers[0].name.to_string(), service, "owned by the geo name");
    assert_eq!((m.answers[0].ttl, subnet_of(&m).unwrap().scope_prefix()), (40, 13));
    assert_eq!(
        ask(&s, service, RecordType::A, "10.1.0.0", 24),
        (vec!["198.51.100.2".into(), "198.51.100.3".into()], 16)
    );
    // A target that is a geo pool answers for the same client: us clients get its us member.
    assert_eq!(ask(&s, service, RecordType::A, "192.0.2.0", 24).0, ["192.0.2.3"]);
    // eu's target turns into a failover CNAME: eu clients go to their next datacenter (us,
    // in config order after eu), whose target is the pool, which answers them from eu.
    let (code, _) = c.notify(json!({"records": [{"name": "service.avrupa.gslb.example.org", "type": "A", "ips": [], "failover": "plain.gslb.example.org"}]}));
    assert_eq!(code, 200);
    assert_eq!(ask(&s, service, RecordType::A, "10.9.0.0", 16).0, ["192.0.2.1", "192.0.2.2"]);
    push("service.avrupa.gslb.example.org", &["198.51.100.9"]);
    assert_eq!(ask(&s, service, RecordType::A, "10.9.0.0", 16).0, ["198.51.100.9"]);
    // asia's target deleted: asia clients (order asia, eu) get eu's.
    let (code, _) = c.notify(json!({"deletes": [{"name": "service.asya.gslb.example.org", "type": "A"}]}));
    assert_eq!(code, 200);
    assert_eq!(ask(&s, service, RecordType::A, "10.1.0.0", 24).0, ["198.51.100.9"]);
    // No target has AAAA except the pool's us member; a type no target has is NODATA.
    assert_eq!(ask(&s, service, RecordType::AAAA, "10.9.0.0", 16).0, ["2001:db8::3"]);
    let m = s.udp(&with_subnet(service, RecordType::TXT, "10.9.0.0", 16));
    assert_eq!((m.metadata.response_code, m.answers.len(), m.authorities.len()), (ResponseCode::NoError, 0, 1));
    // The counters: geo answers by name and datacenter, ECS queries by outcome.
    s.udp(&with_subnet(service, RecordType::A, "0.0.0.0", 0));
    let text = c.text("/metrics");
    let value = |prefix: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("gslbd_geo_answers_total{name=\"service.gslb.example.org\",datacenter=\"eu\"}") >= 4.0);
    assert!(value("gslbd_geo_answers_total{name=\"service.gslb.example.org\",datacenter=\"asia\"}") >= 1.0);
    assert!(value("gslbd_ecs_queries_total{outcome=\"scoped\"}") >= 7.0);
    assert_eq!(value("gslbd_ecs_queries_total{outcome=\"global\"}"), 1.0, "the TXT query");
    assert_eq!(value("gslbd_ecs_queries_total{outcome=\"source_prefix_0\"}"), 1.0);
}

/// `GET /explain` and `gslbd explain` say what a client gets and why: the zone and layer,
/// the map lookup (network, order, scope), each member's health or each target's answer,
/// and the answer itself as DNS gives it; bad questions are 400 with a JSON error.
#[test]
fn explain_says_what_a_client_gets_and_why() {
    let state = tempfile::tempdir().unwrap();
    let geo_name = "[[zone.geo_name]]\nname = \"service\"\ntargets = { eu = \"plain.gslb.example.org\", us = \"geo.gslb.example.org\" }\n";
    let text = format!("{}[state]\ndir = \"{}\"\n{}", admin_section(""), state.path().display(), geo_zone(geo_name));
    let s = Server::start(&config("", &text));
    let c = Client::for_server(&s);
    let explain = |query: &str| {
        c.call("GET", &format!("/explain?{query}"), Some(("X-Elchi-Secret", crate::admin_client::ADMIN_SECRET)), None)
    };

    let (code, v) = explain("name=geo.gslb.example.org&type=A&client=192.0.2.53&ecs=10.9.0.0/16");
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["zone"].as_str(), v["kind"].as_str(), v["layer"].as_str()),
        (Some("gslb.example.org."), Some("geo pool"), Some("dynamic"))
    );
    assert_eq!(v["client"], json!({"address": "10.9.0.0", "from": "ecs"}));
    assert_eq!(v["location"]["network"], "10.0.0.0/8");
    assert_eq!(v["location"]["order"], json!(["eu", "us", "asia"]));
    assert_eq!((v["location"]["scope"].as_u64(), v["answer"]["ecs_scope"].as_u64()), (Some(13), Some(13)));
    assert_eq!(v["datacenter"], "eu");
    assert_eq!((v["answer"]["rcode"].as_str(), v["answer"]["ttl"].as_u64()), (Some("NOERROR"), Some(20)));
    let members = v["pool"]["members"].as_array().unwrap();
    let answered: Vec<&str> = members
        .iter()
        .filter(|m| m["addresses"][0]["answered"] == json!(true))
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(answered, ["eu1", "eu2"]);
    assert!(members.iter().all(|m| m["addresses"][0]["health"] == "up"));
    // What DNS says for the same question agrees.
    let (dns, scope) = ask(&s, "geo.gslb.example.org.", RecordType::A, "10.9.0.0", 16);
    let mut said: Vec<String> =
        v["answer"]["records"].as_array().unwrap().iter().map(|r| r["data"].as_str().unwrap().to_string()).collect();
    said.sort();
    assert_eq!((said, 13), (dns, scope));

    // Without ECS the source decides; a client no network covers gets the default.
    let (_, v) = explain("name=geo.gslb.example.org&client=203.0.113.9");
    assert_eq!((v["client"]["from"].as_str(), v["location"]["network"].clone()), (Some("source"), json!(null)));
    assert_eq!((v["datacenter"].as_str(), v["location"]["listed"].clone()), (Some("us"), json!(["us"])));

    // A geo name: the targets in the client's order, each with its current answer.
    let (_, v) = explain("name=service.gslb.example.org&client=10.1.2.3");
    assert_eq!(v["kind"], "geo name");
    let targets: Vec<&str> =
        v["geo_name"]["targets"].as_array().unwrap().iter().map(|t| t["datacenter"].as_str().unwrap()).collect();
    assert_eq!(targets, ["eu", "us"], "asia has no target; the order is asia, eu, us");
    assert_eq!(v["answer"]["records"][0]["data"], "192.0.2.200");
    assert_eq!(v["answer"]["records"][0]["name"], "service.gslb.example.org.");

    // Static and negative answers do not depend on location.
    let (_, v) = explain("name=plain.gslb.example.org&client=10.1.2.3&ecs=10.1.0.0/16");
    assert_eq!(
        (v["kind"].as_str(), v["answer"]["ecs_scope"].as_u64(), v["location"].clone()),
        (Some("records"), Some(0), json!(null))
    );
    let (_, v) = explain("name=nope.gslb.example.org&type=aaaa&client=10.1.2.3");
    assert_eq!(v["answer"]["rcode"], "NXDOMAIN");
    let (_, v) = explain("name=www.example.com&client=10.1.2.3");
    assert_eq!((v["answer"]["rcode"].as_str(), v["zone"].clone()), (Some("REFUSED"), json!(null)));

    // Bad questions.
    for (query, phrase) in [
        ("client=10.1.2.3", "name is required"),
        ("name=geo.gslb.example.org", "client is required"),
        ("name=geo.gslb.example.org&client=nowhere", "not an IP address"),
        ("name=geo.gslb.example.org&client=10.1.2.3&type=BOGUS", "not a DNS type"),
        ("name=geo.gslb.example.org&client=10.1.2.3&ecs=10.9.0.1/16", "bits set beyond"),
    ] {
        let (code, v) = explain(query);
        assert_eq!(code, 400, "{query}: {v}");
        assert!(v["error"].as_str().unwrap().contains(phrase), "{query}: {v}");
    }
    let (code, _) = c.call("GET", "/explain?name=geo.gslb.example.org&client=10.1.2.3", None, None);
    assert_eq!(code, 401);

    // The command line answers offline from the same config.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["explain", "--config"])
        .arg(s.config_path())
        .args(["geo.gslb.example.org", "A", "--client", "192.0.2.53", "--ecs", "10.1.0.0/16"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["datacenter"].as_str(), v["answer"]["ecs_scope"].as_u64()), (Some("asia"), Some(16)));
    assert!(v["offline"].as_str().unwrap().contains("initial state"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["explain", "--config"])
        .arg(s.config_path())
        .args(["geo.gslb.example.org", "--client", "10.1.2.3", "--ecs", "10.1.0.0/33"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("longer than 32"));
}

/// A City-style database record: what gslbd reads of GeoIP2/GeoLite2 data.
#[derive(serde::Serialize, Default)]
struct CityRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    continent: Option<std::collections::BTreeMap<&'static str, &'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<std::collections::BTreeMap<&'static str, &'static str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subdivisions: Vec<std::collections::BTreeMap<&'static str, &'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<std::collections::BTreeMap<&'static str, f64>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    datacenters: Vec<&'static str>,
}

fn city(
    continent: &'static str,
    country: &'static str,
    sub: Option<&'static str>,
    at: Option<(f64, f64)>,
) -> CityRecord {
    CityRecord {
        continent: Some([("code", continent)].into()),
        country: Some([("iso_code", country)].into()),
        subdivisions: sub.map(|s| vec![[("iso_code", s)].into()]).unwrap_or_default(),
        location: at.map(|(lat, lon)| [("latitude", lat), ("longitude", lon)].into()),
        datacenters: Vec::new(),
    }
}

/// Writes a small GeoIP2-City-like database; `frankfurt_in` says which continent the
/// 81.0.0.0/16 network is in (a reload test changes it).
fn write_mmdb(path: &std::path::Path, frankfurt_in: &'static str) {
    let mut w = mmdb_writer::Writer::new("GeoIP2-City");
    let mut put = |net: &str, r: CityRecord| w.insert(net.parse::<ipnet::IpNet>().unwrap(), &r).unwrap();
    put("81.0.0.0/16", city(frankfurt_in, "DE", None, Some((50.1, 8.7))));
    put("1.2.0.0/16", city("AS", "SG", None, Some((1.35, 103.8))));
    put("1.3.0.0/16", city("AS", "JP", None, Some((35.7, 139.7))));
    put("8.8.0.0/16", city("NA", "US", Some("CA"), Some((37.8, -122.4))));
    put("9.9.0.0/16", city("NA", "US", Some("NY"), Some((40.7, -74.0))));
    put("2001:db8:100::/40", city("EU", "FR", None, None));
    put("100.64.0.0/10", CityRecord { datacenters: vec!["us", "eu"], ..Default::default() });
    std::fs::write(path, w.to_bytes().unwrap()).unwrap();
}

/// A map from a MaxMind database: rules by continent, country and subdivision, nearest by
/// coordinates where none applies, a custom record's own datacenters, the default where the
/// database has no network; the database is reloaded when its file changes, and a broken
/// file keeps the data read before.
#[test]
fn a_maxmind_database_orders_datacenters_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.mmdb");
    write_mmdb(&db, "EU");
    let zone = format!(
        "[[geo.datacenter]]\nname = \"eu\"\ncoordinates = [50.1, 8.7]\n[[geo.datacenter]]\nname = \"us\"\ncoordinates = [38.9, -77.4]\n\
         [[geo.datacenter]]\nname = \"asia\"\ncoordinates = [1.35, 103.8]\n\
         [[geo.map]]\nname = \"db\"\nmmdb = \"{}\"\ndefault = [\"us\"]\n\
         rules = {{ \"continent:EU\" = [\"eu\"], \"country:SG\" = [\"asia\"], \"subdivision:US-CA\" = [\"asia\", \"us\"] }}\n\
         [[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n\
         [[zone.pool]]\nname = \"app\"\nselect = \"geo\"\n[zone.pool.check]\ntype = \"none\"\n\
         [[zone.pool.member]]\nname = \"e\"\ndatacenter = \"eu\"\nipv4 = [\"192.0.2.1\"]\n\
         [[zone.pool.member]]\nname = \"u\"\ndatacenter = \"us\"\nipv4 = [\"192.0.2.2\"]\n\
         [[zone.pool.member]]\nname = \"a\"\ndatacenter = \"asia\"\nipv4 = [\"192.0.2.3\"]\n",
        db.display()
    );
    let s = Server::start(&config("", &zone));
    let app = |addr: &str, source: u8| {
        let (got, scope) = ask(&s, "app.gslb.example.org.", RecordType::A, addr, source);
        (got.join(","), scope)
    };
    assert_eq!(app("81.0.5.0", 24), ("192.0.2.1".into(), 16), "continent:EU");
    // Singapore by its country rule, Tokyo by distance: both get asia first, then eu, then
    // us, so the two /16s merge into one /15.
    assert_eq!(app("1.2.3.0", 24), ("192.0.2.3".into(), 15));
    assert_eq!(app("1.3.3.0", 24), ("192.0.2.3".into(), 15));
    // California by its subdivision rule (not by distance, which would say us).
    assert_eq!(app("8.8.8.0", 24), ("192.0.2.3".into(), 16), "subdivision:US-CA");
    // New York by distance: us, eu, asia is also the default's order, so the network merges
    // with the addresses around it that get the same answer (8.9.0.0 up to 81.0.0.0: 9/8).
    assert_eq!(app("9.9.9.0", 24), ("192.0.2.2".into(), 8), "New York: nearest is us");
    assert_eq!(app("2001:db8:142::", 48).0, "192.0.2.1", "IPv6, continent:EU");
    assert_eq!(app("100.64.1.0", 24).0, "192.0.2.2", "a custom record's own datacenters");
    assert_eq!(app("203.0.113.0", 24).0, "192.0.2.2", "not in the database: the default");

    // The file changes: 81.0.0.0/16 moves to Oceania near Singapore (no rule: by distance,
    // asia first).
    let mut w = mmdb_writer::Writer::new("GeoIP2-City");
    w.insert("81.0.0.0/16".parse::<ipnet::IpNet>().unwrap(), &city("OC", "AU", None, Some((1.3, 103.9)))).unwrap();
    let tmp = dir.path().join("city.mmdb.new");
    std::fs::write(&tmp, w.to_bytes().unwrap()).unwrap();
    std::fs::rename(&tmp, &db).unwrap();
    let end = std::time::Instant::now() + DEADLINE;
    while app("81.0.5.0", 24).0 != "192.0.2.3" {
        assert!(std::time::Instant::now() < end, "the changed database was never read; log:\n{}", s.log_text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(s.log_text().contains("location data changed"));
    // A broken file: the reload is rejected with the file named, the last data serves.
    let skip = s.log_len();
    std::fs::write(&db, b"not a maxmind database").unwrap();
    let line = s.wait_log_after("config reload rejected", skip).expect("a broken database is an error");
    assert!(line.contains("city.mmdb") && line.contains("geo.map[0].mmdb"), "{line}");
    assert_eq!(app("81.0.5.0", 24).0, "192.0.2.3");
    // A missing file at start is a config error naming it.
    std::fs::remove_file(&db).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["check", "--config"])
        .arg(s.config_path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("geo.map[0].mmdb: cannot read") && err.contains("city.mmdb"), "{err}");
}

/// Over IPv6 with no ECS, the packet's IPv6 source decides; an IPv4 subnet in the query
/// decides over it.
#[test]
fn an_ipv6_source_address_decides_without_ecs() {
    let extra = "[[geo.map]]\nname = \"v6\"\ndefault = [\"us\"]\nnets = { \"::1/128\" = [\"asia\"], \"10.0.0.0/8\" = [\"eu\"] }\n";
    let zone = geo_zone("")
        .replace(GEO, &GEO.replace("[[geo.map]]\nname = \"world\"", &format!("{extra}[[geo.map]]\nname = \"world\"")));
    let zone = zone.replace("select = \"geo\"\n", "select = \"geo\"\ngeo_map = \"v6\"\n");
    let s = Server::start(&format!("[server]\nlisten = [\"[::1]:0\"]\nudp_workers = 1\n{zone}"));
    assert!(s.addr.is_ipv6(), "{}", s.addr);
    let sock = std::net::UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let ask6 = |m: &hickory_proto::op::Message| {
        sock.send_to(&m.to_vec().unwrap(), s.addr).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        hickory_proto::op::Message::from_vec(&buf[..n]).unwrap()
    };
    let m = ask6(&query("geo.gslb.example.org.", RecordType::A));
    assert_eq!(answers(&m), ["192.0.2.4"], "::1 is in asia");
    let m = ask6(&with_subnet("geo.gslb.example.org.", RecordType::A, "10.9.0.0", 16));
    let mut got = answers(&m);
    got.sort();
    assert_eq!(
        (got, subnet_of(&m).unwrap().scope_prefix()),
        (vec!["192.0.2.1".to_string(), "192.0.2.2".to_string()], 8)
    );
    let m = ask6(&with_subnet("geo.gslb.example.org.", RecordType::A, "2001:db8::", 32));
    assert_eq!((answers(&m), subnet_of(&m).unwrap().scope_prefix()), (vec!["192.0.2.3".to_string()], 3));
}

/// Geo over controller data: the controller publishes regions as names; a geo name answers
/// from them, and follows every sync (a region emptied or turned into a failover CNAME passes
/// its clients to the next datacenter).
#[test]
fn a_geo_name_follows_controller_syncs() {
    use crate::fake_controller::{FakeController, SECRET};
    let rec = |name: &str, ips: &[&str]| json!({"name": format!("{name}.gslb.example.org"), "type": "A", "ttl": 25, "ips": ips});
    let fake = FakeController::start(
        "gslb.example.org",
        "v1",
        json!([rec("service.asya", &["203.0.113.1"]), rec("service.avrupa", &["203.0.113.2"])]),
    );
    let state = tempfile::tempdir().unwrap();
    let zone = format!(
        "{GEO}\n[state]\ndir = \"{}\"\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n\
         [zone.controller]\nendpoint = \"{}\"\nsecret = \"{SECRET}\"\nsync_interval = \"1s\"\ntimeout = \"500ms\"\n\
         [[zone.geo_name]]\nname = \"service\"\ntargets = {{ eu = \"service.avrupa.gslb.example.org\", asia = \"service.asya.gslb.example.org\" }}\n",
        state.path().display(),
        fake.endpoint()
    );
    let s = Server::start(&config("", &zone));
    let service = "service.gslb.example.org.";
    assert_eq!(ask(&s, service, RecordType::A, "10.1.0.0", 24), (vec!["203.0.113.1".to_string()], 16), "asia");
    assert_eq!(ask(&s, service, RecordType::A, "10.9.0.0", 16).0, ["203.0.113.2"], "eu");
    // The controller turns asya into a failover CNAME to avrupa.
    fake.set(|st| {
        st.hash = "v2".into();
        st.records = json!([
            {"name": "service.asya.gslb.example.org", "type": "A", "ttl": 25, "ips": [], "failover": "service.avrupa.gslb.example.org"},
            rec("service.avrupa", &["203.0.113.2", "203.0.113.3"]),
        ]);
    });
    let end = std::time::Instant::now() + DEADLINE;
    while ask(&s, service, RecordType::A, "10.1.0.0", 24).0 != ["203.0.113.2", "203.0.113.3"] {
        assert!(std::time::Instant::now() < end, "the sync never reached the geo name; log:\n{}", s.log_text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Every target gone: NODATA (the name still exists).
    fake.set(|st| {
        st.hash = "v3".into();
        st.records = json!([rec("other", &["203.0.113.9"])]);
    });
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let m = s.udp(&with_subnet(service, RecordType::A, "10.9.0.0", 16));
        if m.answers.is_empty() {
            assert_eq!((m.metadata.response_code, m.authorities.len()), (ResponseCode::NoError, 1));
            break;
        }
        assert!(std::time::Instant::now() < end, "the targets never went away");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A delegating geo pool refers each client to the name servers of its nearest datacenter
/// (with glue), below the pool name too, and to the next datacenter's when those fail.
#[test]
fn a_delegating_geo_pool_refers_to_the_nearest_datacenter() {
    let (eu, port) = Endpoint::start("127.0.0.2", 0);
    let (_us, _) = Endpoint::start("127.0.0.3", port);
    let zone = format!(
        "{GEO}\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n\
         [[zone.pool]]\nname = \"k8s\"\nmode = \"delegate\"\nselect = \"geo\"\nttl = 60\n\
         [zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"ns-eu\"\ndatacenter = \"eu\"\nipv4 = [\"127.0.0.2\"]\n\
         [[zone.pool.member]]\nname = \"ns-us\"\ndatacenter = \"us\"\nipv4 = [\"127.0.0.3\"]\n"
    );
    let s = Server::start(&config("", &zone));
    let refer = |name: &str, addr: &str, source: u8| {
        let m = s.udp(&with_subnet(name, RecordType::A, addr, source));
        assert!(!m.metadata.authoritative && m.answers.is_empty(), "a referral: {m:?}");
        let ns: Vec<String> = m.authorities.iter().map(|r| r.data.to_string()).collect();
        let glue: Vec<String> =
            m.additionals.iter().filter(|r| r.record_type() == RecordType::A).map(|r| r.data.to_string()).collect();
        (ns, glue, subnet_of(&m).unwrap().scope_prefix())
    };
    let eu_ns = (vec!["ns-eu.gslb.example.org.".to_string()], vec!["127.0.0.2".to_string()], 13);
    assert_eq!(refer("k8s.gslb.example.org.", "10.9.0.0", 16), eu_ns);
    assert_eq!(refer("app.k8s.gslb.example.org.", "10.9.0.0", 16), eu_ns, "below the cut too");
    assert_eq!(refer("app.k8s.gslb.example.org.", "192.0.2.0", 24).0, ["ns-us.gslb.example.org."]);
    eu.set(503);
    let end = std::time::Instant::now() + DEADLINE;
    while refer("app.k8s.gslb.example.org.", "10.9.0.0", 16).0 != ["ns-us.gslb.example.org."] {
        assert!(std::time::Instant::now() < end, "eu clients were never referred to us");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
