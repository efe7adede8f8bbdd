//! Per-query cost of `Responder::respond` (parse + lookup + copy + patch) on a 1,000-name zone
//! shaped like the dnsperf benchmark zone, plus the allocation count (expected: zero); and
//! answers by client location against a static answer, asked with the same Client Subnet.
//!
//! Run: `cargo bench --bench query`.

use std::path::Path;
use std::sync::Arc;

use divan::{AllocProfiler, Bencher, black_box};
use gslbd::server::query::{MAX_MESSAGE, Responder, Transport};
use gslbd::snapshot::Snapshot;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

fn snapshot() -> Arc<Snapshot> {
    let mut records = String::from("ns1 3600 IN A 127.0.0.1\n");
    for i in 0..1000u32 {
        records.push_str(&format!(
            "app{i} 30 IN A 198.18.{}.{}\napp{i} 30 IN A 198.19.{}.{}\napp{i} 30 IN AAAA 2001:db8::{i:x}:1\napp{i} 30 IN AAAA 2001:db8::{i:x}:2\n",
            i >> 8, i & 255, i >> 8, i & 255
        ));
    }
    records.push_str("cname0 30 IN CNAME app0\n");
    records.push_str("cross0 30 IN CNAME app0.other.example.\n");
    // A second zone, for a CNAME chain chased across zones at query time.
    let other = "[[zone]]\nname = \"other.example\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"app0 30 IN A 198.51.100.1\\napp0 30 IN A 198.51.100.2\\n\"\n";
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n{GEO}\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"\"\"\n{records}\"\"\"\n{}\n{other}",
        geo_pool_and_name()
    );
    let config = gslbd::config::parse(Path::new("bench.toml"), &text, &|_| None).expect("valid bench config");
    gslbd::builder::state::State::new(config, Default::default()).handle().load()
}

/// Four datacenters and a map of 2,000 networks (/20s across 10.0.0.0/8, a datacenter order
/// each), the size of the harness's gdnsd-geo map.
const GEO: &str = "[[geo.datacenter]]\nname = \"dc1\"\n[[geo.datacenter]]\nname = \"dc2\"\n[[geo.datacenter]]\nname = \"dc3\"\n[[geo.datacenter]]\nname = \"dc4\"\n";

/// The map's networks, a geo pool with two members per datacenter, and a geo name whose
/// targets are static names.
fn geo_pool_and_name() -> String {
    let mut nets = String::new();
    let orders = ["\"dc1\", \"dc2\"", "\"dc2\", \"dc3\"", "\"dc3\", \"dc4\"", "\"dc4\", \"dc1\""];
    for i in 0..2000u32 {
        let start = (10u32 << 24) | (i << 12);
        let a = std::net::Ipv4Addr::from(start);
        nets.push_str(&format!("\"{a}/20\" = [{}], ", orders[(i as usize * 7 + i as usize / 3) % 4]));
    }
    let mut out = format!("[[geo.map]]\nname = \"bench\"\nnets = {{ {} }}\n", nets.trim_end_matches(", "));
    out.push_str("[[zone.pool]]\nname = \"geo\"\nselect = \"geo\"\nttl = 30\n[zone.pool.check]\ntype = \"none\"\n");
    for dc in 1..=4 {
        for m in 1..=2 {
            out.push_str(&format!(
                "[[zone.pool.member]]\nname = \"m{dc}{m}\"\ndatacenter = \"dc{dc}\"\nipv4 = [\"198.51.{dc}.{m}\"]\n"
            ));
        }
    }
    out.push_str("[[zone.geo_name]]\nname = \"svc\"\ntargets = { dc1 = \"app1.gslb.example.org\", dc2 = \"app2.gslb.example.org\", dc3 = \"app3.gslb.example.org\", dc4 = \"app4.gslb.example.org\" }\n");
    out
}

/// A query with EDNS and a Client Subnet option for `10.189.3.0/24` (a client inside the
/// map).
fn query_ecs(name: &str, qtype: u16) -> Vec<u8> {
    let mut m = query(name, qtype, false);
    m[11] = 1;
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 10, 189, 3]);
    m
}

fn query(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns as u8];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    m
}

const CASES: &[(&str, &str, u16, bool)] = &[
    ("a_hit", "App517.gslb.example.org", 1, false),
    ("aaaa_hit_edns", "app517.gslb.example.org", 28, true),
    ("nxdomain", "nx42.gslb.example.org", 1, false),
    ("cname_chase", "cname0.gslb.example.org", 1, false),
    ("cname_cross_zone", "cross0.gslb.example.org", 1, false),
    ("refused", "example.com", 1, false),
];

#[divan::bench(args = CASES.iter().map(|c| c.0), sample_count = 300, sample_size = 2000)]
fn respond(bencher: Bencher, case: &str) {
    let snap = snapshot();
    let (_, name, qtype, edns) = CASES.iter().find(|c| c.0 == case).copied().unwrap();
    let req = query(name, qtype, edns);
    bench_answer(bencher, &snap, &req);
}

/// Times answering `req` from `snap` over and over.
fn bench_answer(bencher: Bencher, snap: &Snapshot, req: &[u8]) {
    let mut out = vec![0u8; MAX_MESSAGE + 1024];
    let mut responder = Responder::default();
    bencher.bench_local(|| {
        let o = responder.respond(
            black_box(snap),
            black_box(req),
            &mut out,
            Transport::Udp,
            std::net::IpAddr::from([127, 0, 0, 1]),
        );
        black_box(o)
    });
}

/// Answers by location against static answers, both asked with the same Client Subnet:
/// `geo_pool` (one binary search in the map, one index), `geo_name` (the nearest target
/// looked up and flattened), `static` (a plain A answer).
const ECS_CASES: &[(&str, &str)] = &[
    ("static", "app517.gslb.example.org"),
    ("geo_pool", "geo.gslb.example.org"),
    ("geo_name", "svc.gslb.example.org"),
];

#[divan::bench(args = ECS_CASES.iter().map(|c| c.0), sample_count = 300, sample_size = 2000)]
fn respond_ecs(bencher: Bencher, case: &str) {
    let snap = snapshot();
    let (_, name) = ECS_CASES.iter().find(|c| c.0 == case).copied().unwrap();
    let req = query_ecs(name, 1);
    let mut out = vec![0u8; MAX_MESSAGE + 1024];
    let o = Responder::default().respond(&snap, &req, &mut out, Transport::Udp, std::net::IpAddr::from([127, 0, 0, 1]));
    assert!(o.is_some_and(|o| o.rcode == 0 && u16::from_be_bytes([out[6], out[7]]) > 0), "{case} answers");
    bench_answer(bencher, &snap, &req);
}

/// The same A query with the per-worker counters updated, as the listeners do: compare with
/// `respond/a_hit` to see what metrics cost on the query path.
#[divan::bench(args = ["a_hit", "nxdomain"], sample_count = 300, sample_size = 2000)]
fn respond_and_count(bencher: Bencher, case: &str) {
    let snap = snapshot();
    let (_, name, qtype, edns) = CASES.iter().find(|c| c.0 == case).copied().unwrap();
    let req = query(name, qtype, edns);
    let mut out = vec![0u8; MAX_MESSAGE + 1024];
    let mut responder = Responder::default();
    let stats = gslbd::server::stats::Stats::default();
    let counters = stats.worker();
    bencher.bench_local(|| {
        let o = responder.respond(
            black_box(&snap),
            black_box(&req),
            &mut out,
            Transport::Udp,
            std::net::IpAddr::from([127, 0, 0, 1]),
        );
        if let Some(o) = &o {
            counters.record(o);
        }
        black_box(o)
    });
}

/// Response rate limiting's accounting of one response (`[rrl]` on, never limiting), over
/// `names` distinct names cycled as dnsperf's query file does: compare with `respond/a_hit`
/// for its share of a query's cost.
#[divan::bench(args = [1, 5_000, 100_000], sample_count = 300, sample_size = 2000)]
fn rrl_check(bencher: Bencher, names: usize) {
    use gslbd::server::rrl::RrlTable;
    let settings = gslbd::snapshot::RrlSettings {
        responses_per_second: 1_000_000,
        nxdomains_per_second: 1_000_000,
        errors_per_second: 1_000_000,
        window: 1,
        slip: 2,
        ipv4_prefix: 24,
        ipv6_prefix: 56,
        exempt: Box::new([]),
        log_only: false,
        table_size: 1 << 16,
    };
    let table = RrlTable::default();
    let wire: Vec<Vec<u8>> = (0..names)
        .map(|i| {
            let label = format!("app{i}");
            let mut w = vec![label.len() as u8];
            w.extend_from_slice(label.as_bytes());
            w.extend_from_slice(b"\x04gslb\x07example\x03org\x00");
            w
        })
        .collect();
    let client = std::net::IpAddr::from([127, 0, 0, 1]);
    let mut i = 0;
    bencher.bench_local(|| {
        i = (i + 1) % wire.len();
        black_box(table.check(&settings, client, black_box(&wire[i]), 1, 0, 0, 0))
    });
}
