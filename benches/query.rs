//! Per-query cost of `Responder::respond` (parse + lookup + copy + patch) on a 1,000-name zone
//! shaped like the dnsperf benchmark zone, plus the allocation count (expected: zero).
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
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"\"\"\n{records}\"\"\"\n{other}"
    );
    let config = gslbd::config::parse(Path::new("bench.toml"), &text, &|_| None).expect("valid bench config");
    gslbd::builder::state::State::new(config, Default::default()).handle().load()
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
    let mut out = vec![0u8; MAX_MESSAGE + 1024];
    let mut responder = Responder::default();
    bencher.bench_local(|| {
        let o = responder.respond(
            black_box(&snap),
            black_box(&req),
            &mut out,
            Transport::Udp,
            std::net::IpAddr::from([127, 0, 0, 1]),
        );
        black_box(o)
    });
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
