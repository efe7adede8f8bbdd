//! Consistent hashing (`select = "hash"`, `within = "hash"`) over real DNS: a client network
//! keeps its members across queries and across instances, a member that fails moves only its
//! own clients (and they come back), and the ECS scope is the hashed prefix.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::admin_client::{Client, admin_section};
use crate::ecs::{subnet_of, with_subnet};
use crate::harness::*;
use crate::pools::Endpoint;

/// The answer and ECS scope for a client in `addr/source`.
fn ask(s: &Server, name: &str, addr: &str, source: u8) -> (Vec<String>, u8) {
    let rtype = if addr.contains(':') { RecordType::AAAA } else { RecordType::A };
    let m = s.udp(&with_subnet(name, rtype, addr, source));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name} for {addr}/{source}: {m:?}");
    let mut got = answers(&m);
    got.sort();
    (got, subnet_of(&m).expect("ECS echoed").scope_prefix())
}

/// The 1,000 client networks of the test: 10.a.b.0/24.
fn subnet(i: usize) -> String {
    format!("10.{}.{}.0", i / 256, i % 256)
}

/// 1,000 client subnets over four health-checked members, `max_answers = 1`, on two
/// instances with the same config: each subnet gets the same member on every query and from
/// both instances; a member going down moves only its own subnets (a quarter, within five
/// points), the others stay put; when it recovers every subnet is back where it was.
#[test]
fn hashing_keeps_client_networks_on_their_members() {
    let (first, port) = Endpoint::start("127.0.0.2", 0);
    let others: Vec<Endpoint> =
        ["127.0.0.3", "127.0.0.4", "127.0.0.5"].iter().map(|ip| Endpoint::start(ip, port).0).collect();
    let mut members = String::new();
    for (i, ip) in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"].iter().enumerate() {
        members.push_str(&format!(
            "[[zone.pool.member]]\nname = \"m{i}\"\nipv4 = [\"{ip}\"]\nipv6 = [\"2001:db8::{}\"]\n",
            i + 2
        ));
    }
    let zone = format!(
        "[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n\
         [[zone.pool]]\nname = \"sticky\"\nselect = \"hash\"\nmax_answers = 1\nttl = 5\n[zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 2\n{members}"
    );
    let a = Server::start(&config("", &zone));
    let b = Server::start(&config("", &zone));
    let name = "sticky.gslb.example.org.";
    let before: Vec<String> = (0..1000)
        .map(|i| {
            let (got, scope) = ask(&a, name, &subnet(i), 24);
            assert_eq!((got.len(), scope), (1, 24), "one member, scope of the hashed /24");
            got[0].clone()
        })
        .collect();
    for (i, want) in before.iter().enumerate() {
        assert_eq!(&ask(&a, name, &subnet(i), 24).0[0], want, "stable across queries");
        assert_eq!(&ask(&b, name, &subnet(i), 24).0[0], want, "the same on the other instance");
    }
    // Another address of the same /24 (a resolver sending /32) is the same network.
    let host = subnet(7).strip_suffix(".0").map(|n| format!("{n}.77")).unwrap();
    assert_eq!(ask(&a, name, &host, 32).0[0], before[7], "{host}");
    // Every member has a share; each about a quarter.
    for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        let share = before.iter().filter(|a| *a == ip).count();
        assert!((150..350).contains(&share), "{ip} got {share} of 1,000 subnets");
    }
    // IPv6 clients: the /56 is the key.
    let (v6, scope) = ask(&a, name, "2001:db8:aa:bb00::1", 64);
    assert_eq!(scope, 56);
    assert_eq!(ask(&a, name, "2001:db8:aa:bbff::9", 64).0, v6, "same /56");

    first.set(503);
    let on_first = before.iter().position(|a| a == "127.0.0.2").unwrap();
    for s in [&a, &b] {
        let end = std::time::Instant::now() + DEADLINE;
        while ask(s, name, &subnet(on_first), 24).0[0] == "127.0.0.2" {
            assert!(std::time::Instant::now() < end, "the failed member is still answered");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let mut moved = 0;
    for (i, was) in before.iter().enumerate() {
        let now = &ask(&a, name, &subnet(i), 24).0[0];
        assert_eq!(now, &ask(&b, name, &subnet(i), 24).0[0], "instances agree after the failure");
        if now != was {
            assert_eq!(was, "127.0.0.2", "subnet {i} moved from {was} to {now} though its member is up");
            moved += 1;
        } else {
            assert_ne!(now, "127.0.0.2");
        }
    }
    let share = moved as f64 / 1000.0;
    assert!(share <= 0.25 + 0.05, "moved {moved} of 1,000 subnets");
    assert!(moved > 0);
    first.set(200);
    for s in [&a, &b] {
        let end = std::time::Instant::now() + DEADLINE;
        while ask(s, name, &subnet(on_first), 24).0[0] != "127.0.0.2" {
            assert!(std::time::Instant::now() < end, "the recovered member never came back");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    for (i, was) in before.iter().enumerate() {
        assert_eq!(&ask(&a, name, &subnet(i), 24).0[0], was, "subnet {i} back on its member");
    }
    drop(others);
}

/// `within = "hash"` in a geo pool: the client's datacenter first, then its members by hash;
/// the scope is the narrower of the geo scope and the hashed prefix. `hash_prefix_v4`
/// widens the key: with 16, a /16 shares its members and the scope is 16 (narrower than
/// the location's 13). A pool answering all its members needs no hashing: scope from the
/// location alone.
#[test]
fn within_hash_picks_inside_the_datacenter() {
    let geo = "[[geo.datacenter]]\nname = \"eu\"\n[[geo.datacenter]]\nname = \"us\"\n\
               [[geo.map]]\nname = \"world\"\ndefault = [\"us\"]\nnets = { \"10.0.0.0/8\" = [\"eu\"], \"10.1.0.0/16\" = [\"us\"] }\n";
    let members = "[[zone.pool.member]]\nname = \"e1\"\ndatacenter = \"eu\"\nipv4 = [\"192.0.2.11\"]\n\
         [[zone.pool.member]]\nname = \"e2\"\ndatacenter = \"eu\"\nipv4 = [\"192.0.2.12\"]\n\
         [[zone.pool.member]]\nname = \"e3\"\ndatacenter = \"eu\"\nipv4 = [\"192.0.2.13\"]\n\
         [[zone.pool.member]]\nname = \"u1\"\ndatacenter = \"us\"\nipv4 = [\"192.0.2.21\"]\n";
    let zone = format!(
        "{geo}[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n\
         [[zone.pool]]\nname = \"h\"\nselect = \"geo\"\nwithin = \"hash\"\nmax_answers = 1\n[zone.pool.check]\ntype = \"none\"\n{members}\
         [[zone.pool]]\nname = \"h16\"\nselect = \"geo\"\nwithin = \"hash\"\nhash_prefix_v4 = 16\nmax_answers = 1\n[zone.pool.check]\ntype = \"none\"\n{members}"
    );
    let s = Server::start(&config("", &format!("{}{zone}", admin_section(""))));
    let eu = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];
    // /explain names the hashed network and the answer it gets.
    let c = Client::for_server(&s);
    let (code, v) = c.call(
        "GET",
        "/explain?name=h.gslb.example.org&type=A&client=192.0.2.53&ecs=10.2.7.0/24",
        Some(("X-Elchi-Secret", crate::admin_client::ADMIN_SECRET)),
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["hash"], serde_json::json!({"network": "10.2.7.0/24", "prefix": 24}), "{v}");
    assert_eq!(v["pool"]["within"], "hash");
    assert_eq!(v["pool"]["hash_prefix"], serde_json::json!({"v4": 24, "v6": 56}));
    assert_eq!(v["answer"]["ecs_scope"], 24, "{v}");
    let explained = v["answer"]["records"][0]["data"].as_str().map(str::to_string);
    assert_eq!(explained.as_deref(), Some(ask(&s, "h.gslb.example.org.", "10.2.7.0", 24).0[0].as_str()), "{v}");
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..200 {
        let addr = format!("10.{}.{}.0", 2 + i / 100, i % 100);
        let (got, scope) = ask(&s, "h.gslb.example.org.", &addr, 24);
        assert_eq!(scope, 24, "{addr}");
        assert!(eu.contains(&got[0].as_str()), "{addr}: {got:?}");
        assert_eq!(ask(&s, "h.gslb.example.org.", &addr, 24).0, got);
        seen.insert(got[0].clone());
        let (wide, scope) = ask(&s, "h16.gslb.example.org.", &addr, 24);
        assert_eq!(scope, 16);
        let other = format!("10.{}.{}.0", 2 + i / 100, (i + 37) % 100);
        assert_eq!(ask(&s, "h16.gslb.example.org.", &other, 24).0, wide, "same /16");
    }
    assert_eq!(seen.len(), 3, "every eu member has clients: {seen:?}");
    // One member in us: no choice to hash, the location decides.
    assert_eq!(ask(&s, "h.gslb.example.org.", "10.1.2.0", 24), (vec!["192.0.2.21".to_string()], 16));
}

/// `hash_prefix_*` need hashing, and delegate pools do not hash: `gslbd check` says so.
#[test]
fn hash_settings_are_checked() {
    let cases = [
        ("select = \"all\"\nhash_prefix_v4 = 16\n", "hash_prefix_v4: only applies with select = \"hash\""),
        ("select = \"hash\"\nhash_prefix_v6 = 129\n", "hash_prefix_v6: 129 is out of range 0..=128"),
        ("select = \"hash\"\nmode = \"delegate\"\n", "select: hashing picks addresses"),
    ];
    for (pool, want) in cases {
        let zone = format!(
            "[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\n[[zone.pool]]\nname = \"x\"\n{pool}[[zone.pool.member]]\nname = \"ns1.example.net\"\nipv4 = [\"192.0.2.1\"]\n"
        );
        let (ok, err) = gslbd_check(&config("", &zone));
        assert!(!ok && err.contains(want), "{pool}: {err}");
    }
}
