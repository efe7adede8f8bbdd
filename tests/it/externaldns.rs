//! The ExternalDNS webhook provider, driven by a client that speaks the protocol as
//! ExternalDNS's Go client does (`provider/webhook/webhook.go`): negotiation with the media
//! type, the domain filter, `/adjustendpoints`, changes answered 204, retries on 5xx, and a
//! TXT registry's ownership records that must come back exactly as written.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::admin_client::{Client, admin_section};
use crate::harness::*;

const MEDIA: &str = "application/external.dns.webhook+json;version=1";
const OWNER_TXT: &str =
    "\"heritage=external-dns,external-dns/owner=cluster-a,external-dns/resource=service/default/web\"";

/// ExternalDNS's webhook client, blocking.
struct Provider {
    base: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

/// What a request came back with.
struct Reply {
    status: u16,
    content_type: Option<String>,
    vary: Option<String>,
    body: String,
}

impl Provider {
    /// Negotiates as `newProvider` does: `GET /` with the media type in `Accept` (retried
    /// on 5xx and connection errors, at most 5 times), the same media type back, and the
    /// domain filter.
    fn negotiate(base: String) -> (Provider, Value) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let http = reqwest::Client::builder().no_proxy().timeout(DEADLINE).build().unwrap();
        let p = Provider { base, rt, http };
        let r = p.with_retries(|| p.request("GET", "/", None));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.content_type.as_deref(), Some(MEDIA), "the negotiated media type");
        assert_eq!(r.vary.as_deref(), Some("Content-Type"));
        let filter: Value = serde_json::from_str(&r.body).unwrap();
        (p, filter)
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.rt.block_on(async {
            let mut req =
                self.http.request(method.parse().unwrap(), format!("{}{path}", self.base)).header("Accept", MEDIA);
            if let Some(b) = body {
                req = req.header("Content-Type", MEDIA).body(b.to_string());
            }
            match req.send().await {
                Ok(resp) => {
                    let h = |n: &str| resp.headers().get(n).map(|v| v.to_str().unwrap().to_string());
                    let (content_type, vary) = (h("content-type"), h("vary"));
                    let status = resp.status().as_u16();
                    Reply { status, content_type, vary, body: resp.text().await.unwrap() }
                }
                Err(e) => Reply { status: 0, content_type: None, vary: None, body: e.to_string() },
            }
        })
    }

    /// The client's retry: 5xx and connection errors again after a back-off, 5 tries.
    fn with_retries(&self, mut call: impl FnMut() -> Reply) -> Reply {
        let mut wait = Duration::from_millis(50);
        for _ in 0..4 {
            let r = call();
            if r.status != 0 && r.status < 500 {
                return r;
            }
            std::thread::sleep(wait);
            wait *= 2;
        }
        call()
    }

    /// `Records`: 200 and a list of endpoints.
    fn records(&self) -> Vec<Value> {
        let r = self.request("GET", "/records", None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.content_type.as_deref(), Some(MEDIA));
        serde_json::from_str::<Option<Vec<Value>>>(&r.body).unwrap().unwrap_or_default()
    }

    /// `ApplyChanges`: the status (204 is success).
    fn apply(&self, changes: &Value) -> Reply {
        self.request("POST", "/records", Some(changes))
    }

    /// `AdjustEndpoints`: 200 and the endpoints kept.
    fn adjust(&self, endpoints: &Value) -> Vec<Value> {
        let r = self.request("POST", "/adjustendpoints", Some(endpoints));
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }
}

fn provider_addr(s: &Server) -> String {
    let line = s.wait_log("ExternalDNS webhook provider listening").expect("provider listening");
    let addr = line.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap();
    format!("http://{addr}")
}

fn zones(state: &std::path::Path, externaldns: &str) -> String {
    format!(
        "{}[state]\ndir = \"{}\"\n{externaldns}\n\
         [[zone]]\nname = \"k8s.example\"\nns = [\"ns1.k8s.example\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\nstatic 60 IN A 192.0.2.99\\n\"\n\
         [[zone.pool]]\nname = \"pooled\"\nselect = \"all\"\n[zone.pool.check]\ntype = \"none\"\n\
         [[zone.pool.member]]\nname = \"m1\"\nipv4 = [\"192.0.2.77\"]\n\
         [[zone]]\nname = \"ctl.k8s.example\"\nns = [\"ns1.k8s.example\"]\n\
         [[zone]]\nname = \"other.example\"\nns = [\"ns1.other.example\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n",
        admin_section(""),
        state.display()
    )
}

const EXTERNALDNS: &str = "[externaldns]\nlisten = \"127.0.0.1:0\"\nzones = [\"k8s.example\"]\n";

/// An endpoint as Go's encoder writes it (`omitempty`: no TTL when 0).
fn endpoint(name: &str, rtype: &str, targets: &[&str], ttl: i64) -> Value {
    let mut e = json!({"dnsName": name, "targets": targets, "recordType": rtype,
                       "labels": {"owner": "cluster-a", "resource": "service/default/web"}});
    if ttl != 0 {
        e["recordTTL"] = json!(ttl);
    }
    e
}

/// The endpoints ExternalDNS creates for one Service: its records and, for each, the TXT
/// registry's ownership record.
fn service() -> Vec<Value> {
    vec![
        endpoint("web.k8s.example", "A", &["192.0.2.10", "192.0.2.11"], 60),
        endpoint("web.k8s.example", "AAAA", &["2001:db8::10"], 60),
        endpoint("a-web.k8s.example", "TXT", &[OWNER_TXT], 0),
        endpoint("www.k8s.example", "CNAME", &["web.k8s.example"], 120),
        endpoint("k8s.example", "MX", &["10 mail.k8s.example"], 300),
        endpoint("_http._tcp.web.k8s.example", "SRV", &["1 5 8080 web.k8s.example"], 0),
        endpoint("team.k8s.example", "NS", &["ns1.team-dns.example"], 3600),
    ]
}

fn sorted_records(p: &Provider) -> Vec<Value> {
    let mut r = p.records();
    r.sort_by_key(|e| (e["dnsName"].to_string(), e["recordType"].to_string()));
    r
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|e| (e["dnsName"].to_string(), e["recordType"].to_string()));
    v
}

/// The character strings of the first answer, a TXT record.
fn txt_strings(m: &hickory_proto::op::Message) -> Vec<Vec<u8>> {
    match &m.answers.first().unwrap_or_else(|| panic!("no answer: {m:?}")).data {
        hickory_proto::rr::RData::TXT(t) => t.txt_data.iter().map(|s| s.to_vec()).collect(),
        other => panic!("not TXT: {other:?}"),
    }
}

fn dns(s: &Server, name: &str, rtype: RecordType) -> Vec<String> {
    let mut a = answers(&s.udp(&query(name, rtype)));
    a.sort();
    a
}

/// Negotiation, the filter, changes answered over DNS at once, the endpoints read back as
/// written (the ownership TXT byte for byte), updates and deletes, and all of it again after
/// a restart.
#[test]
fn changes_apply_answer_at_once_and_survive_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let cfg = config("", &zones(state.path(), EXTERNALDNS));
    let mut s = Server::start(&cfg);
    let (p, filter) = Provider::negotiate(provider_addr(&s));
    assert_eq!(filter, json!({"include": ["k8s.example"], "exclude": ["ctl.k8s.example"]}));
    assert!(p.records().is_empty());

    // AdjustEndpoints keeps what gslbd serves and leaves out what it would refuse.
    let mut desired = service();
    desired.push(endpoint("bad.k8s.example", "A", &["not-an-address"], 0));
    desired.push(endpoint("x.other.example", "A", &["192.0.2.1"], 0));
    desired.push(endpoint("naptr.k8s.example", "NAPTR", &["x"], 0));
    let kept = p.adjust(&Value::Array(desired));
    assert_eq!(sorted(kept), sorted(service()));

    let r = p.apply(&json!({"create": service()}));
    assert_eq!((r.status, r.body.as_str()), (204, ""), "ApplyChanges succeeds with 204");
    // Answered over DNS as soon as the 204 is back.
    assert_eq!(dns(&s, "web.k8s.example.", RecordType::A), ["192.0.2.10", "192.0.2.11"]);
    assert_eq!(dns(&s, "web.k8s.example.", RecordType::AAAA), ["2001:db8::10"]);
    let txt = s.udp(&query("a-web.k8s.example.", RecordType::TXT));
    assert_eq!(txt_strings(&txt), [OWNER_TXT.trim_matches('"').as_bytes().to_vec()]);
    assert_eq!(txt.answers[0].ttl, 300, "TTL 0 is the zone's default");
    let cname = answers(&s.udp(&query("www.k8s.example.", RecordType::A)));
    let mut addresses = cname[1..].to_vec();
    addresses.sort();
    assert_eq!(
        (cname[0].as_str(), addresses),
        ("web.k8s.example.", vec!["192.0.2.10".to_string(), "192.0.2.11".into()])
    );
    assert_eq!(dns(&s, "k8s.example.", RecordType::MX), ["10 mail.k8s.example."]);
    assert_eq!(dns(&s, "_http._tcp.web.k8s.example.", RecordType::SRV), ["1 5 8080 web.k8s.example."]);
    let referral = s.udp(&query("host.team.k8s.example.", RecordType::A));
    assert_eq!(answers(&referral), Vec::<String>::new());
    assert!(!referral.metadata.authoritative && referral.authorities.len() == 1, "{referral:?}");

    // Read back exactly as written: the registry reads its owner from the TXT target.
    assert_eq!(sorted_records(&p), sorted(service()));

    // An update moves the addresses; a delete takes a set away.
    let old = endpoint("web.k8s.example", "A", &["192.0.2.10", "192.0.2.11"], 60);
    let new = endpoint("web.k8s.example", "A", &["192.0.2.12"], 30);
    let gone = endpoint("_http._tcp.web.k8s.example", "SRV", &["1 5 8080 web.k8s.example"], 0);
    let r = p.apply(&json!({"updateOld": [old], "updateNew": [new.clone()], "delete": [gone]}));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(dns(&s, "web.k8s.example.", RecordType::A), ["192.0.2.12"]);
    let gone = s.udp(&query("_http._tcp.web.k8s.example.", RecordType::SRV));
    assert_eq!(gone.metadata.response_code, hickory_proto::op::ResponseCode::NXDomain, "the name is gone");
    let mut expected: Vec<Value> = service().into_iter().filter(|e| e["recordType"] != "SRV").collect();
    expected.retain(|e| !(e["dnsName"] == "web.k8s.example" && e["recordType"] == "A"));
    expected.push(new);
    assert_eq!(sorted_records(&p), sorted(expected.clone()));

    // /records on the admin API labels them; the metrics count the requests.
    let admin = Client::for_server(&s);
    let auth = Some(("X-Elchi-Secret", crate::admin_client::ADMIN_SECRET));
    let (_, rows) = admin.call("GET", "/records?name=web.k8s.example&type=A", auth, None);
    let rows = rows["records"].as_array().unwrap().clone();
    assert!(rows.iter().any(|r| r["name"] == "web.k8s.example" && r["source"] == "externaldns"), "{rows:?}");
    let metrics = admin.text("/metrics");
    assert!(metrics.contains(r#"gslbd_externaldns_requests_total{route="apply",status="204"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"gslbd_zone_records{zone="k8s.example",source="externaldns"} 6"#), "{metrics}");

    // A restart serves the same and reads back the same.
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));
    let s = Server::start(&cfg);
    let (p, _) = Provider::negotiate(provider_addr(&s));
    assert_eq!(sorted_records(&p), sorted(expected));
    assert_eq!(dns(&s, "web.k8s.example.", RecordType::A), ["192.0.2.12"]);
    let txt = s.udp(&query("a-web.k8s.example.", RecordType::TXT));
    assert_eq!(txt_strings(&txt), [OWNER_TXT.trim_matches('"').as_bytes().to_vec()]);
}

/// Changes in the field names ExternalDNS wrote before 2025 (`Create`, ...) and Go's null
/// slices are read like the current ones.
#[test]
fn capitalised_changes_are_read() {
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config("", &zones(state.path(), EXTERNALDNS)));
    let (p, _) = Provider::negotiate(provider_addr(&s));
    let old = json!({"Create": [{"DNSName": "old.k8s.example", "Targets": ["192.0.2.5"], "RecordType": "A",
                     "SetIdentifier": "", "RecordTTL": 0, "Labels": null, "ProviderSpecific": null}],
                     "UpdateOld": null, "UpdateNew": null, "Delete": null});
    let r = p.apply(&old);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(dns(&s, "old.k8s.example.", RecordType::A), ["192.0.2.5"]);
    assert_eq!(p.records(), [json!({"dnsName": "old.k8s.example", "targets": ["192.0.2.5"], "recordType": "A"})]);
}

/// A bad endpoint refuses the whole request with a 4xx (not retried) that says which one;
/// nothing of it is applied. A name a pool owns is kept but not answered, and shown so.
#[test]
fn bad_changes_are_refused_whole() {
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config("", &zones(state.path(), EXTERNALDNS)));
    let (p, _) = Provider::negotiate(provider_addr(&s));
    for (changes, section, item) in [
        (
            json!({"create": [endpoint("ok.k8s.example", "A", &["192.0.2.1"], 0),
                           endpoint("bad.k8s.example", "A", &["2001:db8::1"], 0)]}),
            "create",
            1,
        ),
        (json!({"create": [endpoint("x.other.example", "A", &["192.0.2.1"], 0)]}), "create", 0),
        (json!({"create": [endpoint("in.ctl.k8s.example", "A", &["192.0.2.1"], 0)]}), "create", 0),
        (json!({"updateNew": [endpoint("w.k8s.example", "A", &["192.0.2.1"], -5)]}), "updateNew", 0),
        (json!({"delete": [endpoint("w.k8s.example", "HINFO", &["x"], 0)]}), "delete", 0),
    ] {
        let r = p.apply(&changes);
        assert_eq!(r.status, 400, "{changes}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!((v["section"].as_str(), v["item"].as_u64()), (Some(section), Some(item)), "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let r = p.request("POST", "/records", None);
    assert_eq!(r.status, 400, "an empty body is not changes: {}", r.body);
    let r = p.rt.block_on(async {
        p.http.post(format!("{}/records", p.base)).header("Content-Type", "text/plain").body("{}").send().await.unwrap()
    });
    assert_eq!(r.status().as_u16(), 415);
    assert!(p.records().is_empty(), "nothing was applied");
    assert_eq!(dns(&s, "ok.k8s.example.", RecordType::A), Vec::<String>::new());

    // A pool's name: kept (ExternalDNS reads back what it wrote), the pool answers.
    let r = p.apply(&json!({"create": [endpoint("pooled.k8s.example", "A", &["192.0.2.1"], 0)]}));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(dns(&s, "pooled.k8s.example.", RecordType::A), ["192.0.2.77"]);
    assert_eq!(p.records().len(), 1);
    let admin = Client::for_server(&s);
    let auth = Some(("X-Elchi-Secret", crate::admin_client::ADMIN_SECRET));
    let (_, v) = admin.call("GET", "/records?name=pooled.k8s.example", auth, None);
    let rows = v["records"].as_array().unwrap();
    let row = rows.iter().find(|r| r["source"] == "externaldns").unwrap_or_else(|| panic!("{v}"));
    assert_eq!((&row["answered"], &row["shadowed_by"]), (&json!(false), &json!("pool")), "{v}");
    // Health probes for the sidecar, and the protocol's 404 for the rest.
    assert_eq!(p.request("GET", "/healthz", None).status, 200);
    assert_eq!(p.request("GET", "/nope", None).status, 404);
}

/// A change that cannot be kept on disk is refused with a 503, which ExternalDNS retries:
/// once the disk takes it again, the retry applies it.
#[test]
fn an_unkept_change_is_a_503_and_the_retry_applies_it() {
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config("", &zones(state.path(), EXTERNALDNS)));
    let (p, _) = Provider::negotiate(provider_addr(&s));
    // A directory where the endpoints file goes: the rename into place fails, even as root.
    let blocker = state.path().join("k8s.example.externaldns.json");
    std::fs::create_dir_all(blocker.join("x")).unwrap();
    let changes = json!({"create": [endpoint("late.k8s.example", "A", &["192.0.2.44"], 0)]});
    let r = p.apply(&changes);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("nothing was applied"), "{}", r.body);
    assert!(dns(&s, "late.k8s.example.", RecordType::A).is_empty());
    let admin = Client::for_server(&s);
    let (_, health) = admin.call("GET", "/health", None, None);
    let zone = health["zones"].as_array().unwrap().iter().find(|z| z["zone"] == "k8s.example.").cloned().unwrap();
    assert!(zone["persist_error"].as_str().is_some_and(|e| e.contains("ExternalDNS")), "{health}");

    // The retry loop: the disk is fixed while it backs off.
    let fixed = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(120));
        std::fs::remove_dir_all(&blocker).unwrap();
    });
    let started = Instant::now();
    let r = p.with_retries(|| p.apply(&changes));
    fixed.join().unwrap();
    assert_eq!(r.status, 204, "after {:?}: {}", started.elapsed(), r.body);
    assert_eq!(dns(&s, "late.k8s.example.", RecordType::A), ["192.0.2.44"]);
}

/// An endpoint in a weighted record set: its set identifier and `webhook/weight`.
fn weighted(name: &str, rtype: &str, set: &str, target: &str, weight: Option<u32>) -> Value {
    let mut e = endpoint(name, rtype, &[target], 60);
    e["setIdentifier"] = json!(set);
    if let Some(w) = weight {
        e["providerSpecific"] = json!([{"name": "webhook/weight", "value": w.to_string()}]);
    }
    e
}

/// Record sets with one name and type and a weight each are answered one set per query,
/// drawn in their weights (weight 0 never while another is above 0); several CNAMEs are
/// drawn too, one per answer; `/records` shows the groups with their weights.
#[test]
fn weighted_sets_are_drawn_in_their_weights() {
    let state = tempfile::tempdir().unwrap();
    let s = Server::start(&config("", &zones(state.path(), EXTERNALDNS)));
    let (p, _) = Provider::negotiate(provider_addr(&s));
    let sets = [
        weighted("shop.k8s.example", "A", "eu", "192.0.2.21", Some(3)),
        weighted("shop.k8s.example", "A", "us", "192.0.2.22", Some(1)),
        weighted("shop.k8s.example", "A", "off", "192.0.2.23", Some(0)),
        weighted("lb.k8s.example", "CNAME", "a", "lb-a.example.net", None),
        weighted("lb.k8s.example", "CNAME", "b", "lb-b.example.net", None),
    ];
    let r = p.apply(&json!({"create": sets}));
    assert_eq!(r.status, 204, "{}", r.body);

    const QUERIES: usize = 400;
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    for _ in 0..QUERIES {
        let a = dns(&s, "shop.k8s.example.", RecordType::A);
        assert_eq!(a.len(), 1, "one set per answer: {a:?}");
        *seen.entry(a[0].clone()).or_default() += 1;
    }
    let eu = seen.get("192.0.2.21").copied().unwrap_or(0);
    let us = seen.get("192.0.2.22").copied().unwrap_or(0);
    assert_eq!(eu + us, QUERIES, "weight 0 is never drawn: {seen:?}");
    // 3:1 expects 300 of 400 (standard deviation 8.7): seven deviations either side.
    assert!((240..=360).contains(&eu), "drawn 3:1: {seen:?}");

    let mut targets = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let m = s.udp(&query("lb.k8s.example.", RecordType::A));
        let a = answers(&m);
        assert_eq!(a.len(), 1, "one CNAME per answer: {a:?}");
        targets.insert(a[0].clone());
    }
    assert_eq!(targets.into_iter().collect::<Vec<_>>(), ["lb-a.example.net.", "lb-b.example.net."]);

    let admin = Client::for_server(&s);
    let auth = Some(("X-Elchi-Secret", crate::admin_client::ADMIN_SECRET));
    let (_, rows) = admin.call("GET", "/records?name=shop.k8s.example&type=A", auth, None);
    let row = rows["records"].as_array().unwrap().iter().find(|r| r["name"] == "shop.k8s.example").cloned();
    let draw = row.as_ref().map(|r| r["draw"].clone());
    assert_eq!(
        draw,
        Some(json!([{"weight": 3, "ips": ["192.0.2.21"]}, {"weight": 1, "ips": ["192.0.2.22"]}])),
        "{row:?}"
    );
}

/// In a signed zone, a drawn set (an address set and a CNAME) is signed as it is answered:
/// every draw validates against the zone's DS, in the overlay and, after a restart, in the
/// base.
#[test]
fn drawn_sets_in_a_signed_zone_validate() {
    use crate::dnssec::{ds, keygen, python_validate};
    let keys = tempfile::tempdir().unwrap();
    let ksk = keygen(keys.path(), "k8s.example", &["--ksk"]);
    let zsk = keygen(keys.path(), "k8s.example", &[]);
    let state = tempfile::tempdir().unwrap();
    let zones = format!(
        "{admin}[state]\ndir = \"{state}\"\n{EXTERNALDNS}\n\
         [[zone]]\nname = \"k8s.example\"\nns = [\"ns1.k8s.example\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n\
         [zone.dnssec]\nkeys = [\"{ksk}\", \"{zsk}\"]\n",
        admin = admin_section(""),
        state = state.path().display(),
        ksk = ksk.display(),
        zsk = zsk.display(),
    );
    let cfg = config("", &zones);
    let mut s = Server::start(&cfg);
    let (p, _) = Provider::negotiate(provider_addr(&s));
    let sets = [
        weighted("shop.k8s.example", "A", "eu", "192.0.2.21", Some(1)),
        weighted("shop.k8s.example", "A", "us", "192.0.2.22", Some(1)),
        weighted("lb.k8s.example", "CNAME", "a", "lb-a.example.net", Some(1)),
        weighted("lb.k8s.example", "CNAME", "b", "lb-b.example.net", Some(1)),
    ];
    let r = p.apply(&json!({"create": sets}));
    assert_eq!(r.status, 204, "{}", r.body);
    let ds = ds(&s.config_path(), "k8s.example");
    for round in ["overlay", "base"] {
        let mut drawn = std::collections::BTreeSet::new();
        for _ in 0..40 {
            for (name, rtype) in [("shop.k8s.example.", "A"), ("lb.k8s.example.", "CNAME")] {
                let (ok, v) = python_validate(s.addr, "k8s.example.", &ds, name, rtype, &[]);
                assert!(ok, "{round} {name} {rtype}: {v}");
                let got: Vec<String> = serde_json::from_value(v["answers"].clone()).unwrap();
                assert_eq!(got.len(), 1, "{round}: one set per answer: {v}");
                drawn.extend(got);
            }
            if drawn.len() == 4 {
                break;
            }
        }
        assert_eq!(drawn.len(), 4, "{round}: every set drawn: {drawn:?}");
        if round == "overlay" {
            s.signal("TERM");
            assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));
            s = Server::start(&cfg);
        }
    }
}
