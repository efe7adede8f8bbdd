//! DNSSEC costs on this machine: one ECDSAP256SHA256 and one ED25519 signature over a
//! two-record A set (what a cache miss on the query path costs), and DO queries answered from
//! a signed 1,000-name zone (pre-signed answer; compact denial from the cache) beside the same
//! query to the same zone unsigned.
//!
//! Run: `cargo bench --bench dnssec`.

use std::path::Path;
use std::sync::Arc;

use divan::{Bencher, black_box};
use gslbd::dns::name::Name;
use gslbd::dns::records::RData;
use gslbd::dnssec::key::{Algorithm, FLAG_SEP, FLAG_ZONE, SigningKey};
use gslbd::dnssec::sign::{CanonicalSet, Validity, sign};
use gslbd::server::query::{MAX_MESSAGE, Responder, Transport};
use gslbd::snapshot::Snapshot;

fn main() {
    divan::main();
}

fn a_set() -> (Name, CanonicalSet) {
    let zone = Name::parse("gslb.example.org.", None).unwrap();
    let owner = Name::parse("app0.gslb.example.org.", None).unwrap();
    let rdata = [RData::A([198, 18, 0, 0].into()), RData::A([198, 19, 0, 0].into())];
    (zone, CanonicalSet::of(owner.as_wire(), 1, 30, &rdata))
}

#[divan::bench(args = [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519])]
fn one_signature(bencher: Bencher, algorithm: Algorithm) {
    let key = SigningKey::generate(algorithm, FLAG_ZONE | FLAG_SEP).unwrap();
    let (zone, set) = a_set();
    let mut scratch = Vec::new();
    let validity = Validity { inception: 1_796_000_000, expiration: 1_797_000_000 };
    bencher.bench_local(|| sign(black_box(&set), &zone, &key, validity, &mut scratch));
}

/// The bench zone, signed when `keys` is given (a folder to write the key files in).
fn snapshot(keys: Option<&Path>) -> Arc<Snapshot> {
    let mut records = String::from("ns1 3600 IN A 127.0.0.1\n");
    for i in 0..1000u32 {
        records.push_str(&format!(
            "app{i} 30 IN A 198.18.{}.{}\napp{i} 30 IN A 198.19.{}.{}\n",
            i >> 8,
            i & 255,
            i >> 8,
            i & 255
        ));
    }
    let dnssec = keys.map_or_else(String::new, |dir| {
        let zone = Name::parse("gslb.example.org.", None).unwrap();
        let key = SigningKey::generate(Algorithm::EcdsaP256Sha256, FLAG_ZONE | FLAG_SEP).unwrap();
        let stem = dir.join(key.file_stem(&zone));
        std::fs::write(format!("{}.key", stem.display()), key.key_file(&zone, "20261204000000")).unwrap();
        std::fs::write(format!("{}.private", stem.display()), key.private_file("20261204000000")).unwrap();
        format!("[zone.dnssec]\nkeys = [\"{}\"]\n", stem.display())
    });
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"\"\"\n{records}\"\"\"\n{dnssec}"
    );
    let config = gslbd::config::parse(Path::new("bench.toml"), &text, &|_| None).expect("valid bench config");
    gslbd::builder::state::State::new(config, Default::default()).handle().load()
}

/// A query with an OPT record, DO set.
fn do_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    q.extend_from_slice(Name::parse(name, None).unwrap().as_wire());
    q.extend_from_slice(&[0, 1, 0, 1]);
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    q
}

#[divan::bench(args = ["unsigned", "signed"], consts = [0, 1])]
fn do_query_answer<const NXDOMAIN: usize>(bencher: Bencher, zone: &str) {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot((zone == "signed").then_some(dir.path()));
    let name = if NXDOMAIN == 1 { "nx1.gslb.example.org." } else { "app7.gslb.example.org." };
    let req = do_query(name);
    let mut responder = Responder::default();
    let mut out = vec![0u8; MAX_MESSAGE];
    let peer = std::net::IpAddr::from([127, 0, 0, 1]);
    // Warm: a denial's signature is made once, then comes from the cache.
    assert!(responder.respond(&snap, &req, &mut out, Transport::Udp, peer).is_some());
    bencher.bench_local(|| responder.respond(black_box(&snap), black_box(&req), &mut out, Transport::Udp, peer));
}
