//! HTTPS/SVCB records of pools (RFC 9460) over real DNS, parsed by dnspython: their address
//! hints are the A and AAAA answers the same client gets, per datacenter and per hashed
//! network, and change with them after a health flip; AliasMode at the apex points at the
//! pool; a pool without `https` has no such record.

use std::process::Command;

use serde_json::{Value, json};

use crate::admin_client::{ADMIN_SECRET, Client, admin_section};
use crate::harness::*;
use crate::pools::Endpoint;

const GEO: &str = "[[geo.datacenter]]\nname = \"eu\"\n[[geo.datacenter]]\nname = \"us\"\n\
                   [[geo.map]]\nname = \"world\"\ndefault = [\"us\", \"eu\"]\nnets = { \"10.0.0.0/8\" = [\"eu\", \"us\"] }\n";

/// dnspython's view of QNAME for a client in `ecs`: the A and AAAA answers and the
/// HTTPS/SVCB records with their parameters.
fn svcb(s: &Server, qname: &str, ecs: &str, rtype: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/svcb_hints.py");
    let port = s.addr.port().to_string();
    let out = Command::new("python3")
        .args([script, "127.0.0.1", &port, qname, "--ecs", ecs, "--type", rtype])
        .output()
        .expect("python3 runs (dnspython is installed by .ci/run)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Asserts that the one record's hints are exactly the A and AAAA answers.
fn hints_follow_answers(v: &Value) {
    let records = v["records"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(records.len(), 1, "{v}");
    assert_eq!(records[0]["ipv4hint"], v["a"], "{v}");
    assert_eq!(records[0]["ipv6hint"], v["aaaa"], "{v}");
}

#[test]
fn https_hints_follow_health_location_and_hashing() {
    let (eu1, port) = Endpoint::start("127.0.0.2", 0);
    let (_eu2, _) = Endpoint::start("127.0.0.3", port);
    let (_us1, _) = Endpoint::start("127.0.0.4", port);
    let member = |name: &str, dc: &str, v4: &str, v6: Option<&str>, probe: &str| {
        let v6 = v6.map_or(String::new(), |a| format!("ipv6 = [\"{a}\"]\n"));
        format!(
            "[[zone.pool.member]]\nname = \"{name}\"\ndatacenter = \"{dc}\"\nipv4 = [\"{v4}\"]\n{v6}[zone.pool.member.check]\naddress = \"{probe}\"\n"
        )
    };
    let members = [
        member("eu1", "eu", "192.0.2.11", Some("2001:db8::11"), "127.0.0.2"),
        member("eu2", "eu", "192.0.2.12", None, "127.0.0.3"),
        member("us1", "us", "192.0.2.21", Some("2001:db8::21"), "127.0.0.4"),
    ]
    .concat();
    let zone = format!(
        "{}{GEO}[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\nsvc 300 IN HTTPS 1 . alpn=h2 ipv4hint=192.0.2.1\\n\"\n\
         [[zone.pool]]\nname = \"www\"\nselect = \"geo\"\nttl = 20\n\
         [zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n\
         [zone.pool.https]\nalpn = [\"h2\", \"h3\"]\nport = 8443\nech = \"AAT+DQAA\"\napex_alias = true\n{members}\
         [[zone.pool]]\nname = \"sticky\"\nselect = \"hash\"\nmax_answers = 1\n[zone.pool.check]\ntype = \"none\"\n[zone.pool.https]\ntype = \"SVCB\"\nalpn = [\"h2\"]\n\
         [[zone.pool.member]]\nname = \"s1\"\nipv4 = [\"198.51.100.1\"]\nipv6 = [\"2001:db8:1::1\"]\n\
         [[zone.pool.member]]\nname = \"s2\"\nipv4 = [\"198.51.100.2\"]\nipv6 = [\"2001:db8:1::2\"]\n\
         [[zone.pool.member]]\nname = \"s3\"\nipv4 = [\"198.51.100.3\"]\n\
         [[zone.pool]]\nname = \"plain\"\n[zone.pool.check]\ntype = \"none\"\n[[zone.pool.member]]\nname = \"p\"\nipv4 = [\"192.0.2.99\"]\n",
        admin_section("")
    );
    let s = Server::start(&config("", &zone));
    let www = "www.gslb.example.org.";

    // Two clients, two datacenters: the hints are each one's own answers.
    let eu = svcb(&s, www, "10.1.2.0/24", "HTTPS");
    assert_eq!((eu["a"].clone(), eu["aaaa"].clone()), (json!(["192.0.2.11", "192.0.2.12"]), json!(["2001:db8::11"])));
    hints_follow_answers(&eu);
    let r = &eu["records"][0];
    assert_eq!((r["priority"].as_u64(), r["target"].as_str()), (Some(1), Some(".")));
    assert_eq!(
        (r["alpn"].clone(), r["port"].as_u64(), r["ech"].as_str()),
        (json!(["h2", "h3"]), Some(8443), Some("AAT+DQAA"))
    );
    assert_eq!(r["ttl"], 20);
    assert_eq!(eu["scope"], 8, "the location's scope: {eu}");
    let us = svcb(&s, www, "198.51.100.0/24", "HTTPS");
    assert_eq!((us["a"].clone(), us["aaaa"].clone()), (json!(["192.0.2.21"]), json!(["2001:db8::21"])));
    hints_follow_answers(&us);

    // A health flip: the hints change with the answers.
    eu1.set(503);
    let end = std::time::Instant::now() + DEADLINE;
    let eu = loop {
        let v = svcb(&s, www, "10.1.2.0/24", "HTTPS");
        // Each address of eu1 is its own probe target: both flip within an interval.
        if v["a"] == json!(["192.0.2.12"]) && v["aaaa"] == json!(["2001:db8::21"]) {
            break v;
        }
        assert!(std::time::Instant::now() < end, "eu1 is still answered: {v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    hints_follow_answers(&eu);
    assert_eq!(eu["aaaa"], json!(["2001:db8::21"]), "no healthy IPv6 in eu: us answers AAAA");
    eu1.set(200);

    // Hashed: every client network's hint is its own member.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..20 {
        let v = svcb(&s, "sticky.gslb.example.org.", &format!("10.{i}.0.0/24"), "SVCB");
        hints_follow_answers(&v);
        assert_eq!(v["scope"], 24, "{v}");
        seen.insert(v["a"][0].as_str().unwrap().to_string());
    }
    assert!(seen.len() > 1, "20 networks all on one member: {seen:?}");

    // AliasMode at the apex; no HTTPS record for a pool without `https`.
    let apex = svcb(&s, "gslb.example.org.", "10.1.2.0/24", "HTTPS");
    let r = &apex["records"][0];
    assert_eq!((r["priority"].as_u64(), r["target"].as_str()), (Some(0), Some("www.gslb.example.org.")), "{apex}");
    let plain = svcb(&s, "plain.gslb.example.org.", "10.1.2.0/24", "HTTPS");
    assert_eq!((plain["rcode"].as_str(), plain["records"].as_array().map(Vec::len)), (Some("NOERROR"), Some(0)));

    // A static HTTPS record is served as written.
    let fixed = svcb(&s, "svc.gslb.example.org.", "10.1.2.0/24", "HTTPS");
    let r = &fixed["records"][0];
    assert_eq!(
        (r["alpn"].clone(), r["ipv4hint"].clone(), r["ttl"].as_u64()),
        (json!(["h2"]), json!(["192.0.2.1"]), Some(300)),
        "{fixed}"
    );

    // /explain says where the hints come from.
    let (code, v) = Client::for_server(&s).call(
        "GET",
        "/explain?name=www.gslb.example.org&type=HTTPS&client=192.0.2.53&ecs=10.1.2.0/24",
        Some(("X-Elchi-Secret", ADMIN_SECRET)),
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert!(v["hints"]["origin"].as_str().is_some_and(|o| o.contains("A and AAAA answers")), "{v}");
    let mut v4: Vec<String> =
        v["hints"]["ipv4hint"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    v4.sort();
    assert_eq!(json!(v4), svcb(&s, www, "10.1.2.0/24", "HTTPS")["a"], "{v}");
}

/// Config errors: bad SvcParams, an apex alias twice, HTTPS on a delegate pool.
#[test]
fn https_settings_are_checked() {
    let cases = [
        ("alpn = []\n", "https.alpn: is empty"),
        ("ech = \"not base64!\"\n", "https.ech: not base64"),
        ("ech = \"AEX+DQ==\"\n", "https.ech: not an ECHConfigList"),
        ("port = 0\n", "https.port: 0 is out of range"),
        ("no_default_alpn = true\n", "https.no_default_alpn: needs alpn"),
        ("type = \"TXT\"\n", "https.type: \"TXT\" is not one of https, svcb"),
    ];
    for (https, want) in cases {
        let zone = format!(
            "[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\n[[zone.pool]]\nname = \"x\"\n[zone.pool.https]\n{https}[[zone.pool.member]]\nname = \"m\"\nipv4 = [\"192.0.2.1\"]\n"
        );
        let (ok, err) = gslbd_check(&config("", &zone));
        assert!(!ok && err.contains(want), "{https}: {err}");
    }
}
