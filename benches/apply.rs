//! Applying a 100,000-record controller snapshot: time from the response body in memory to
//! the new snapshot answering, and steady-state resident memory per record.
//!
//! Run: `cargo bench --bench apply` (prints one line per measurement; no statistics
//! framework, because the run allocates hundreds of MB and is measured once per round).
//! `APPLY_RECORDS=1000000` sets the zone's size.

use std::path::Path;
use std::time::Instant;

use gslbd::builder::state::State;
use gslbd::elchi::api::Payload;
use gslbd::elchi::response;
use gslbd::server::query::{MAX_MESSAGE, Responder, Transport};

/// Records in the zone unless `APPLY_RECORDS` says otherwise.
const DEFAULT_RECORDS: usize = 100_000;
const ROUNDS: usize = 5;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Returns freed heap to the OS so RSS reflects what is still held.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn body(version: &str, count: usize) -> Vec<u8> {
    let mut records = Vec::with_capacity(count);
    for i in 0..count {
        let rec = if i % 2 == 0 {
            serde_json::json!({"name": format!("svc{i}.gslb.example.org"), "type": "A", "ttl": 30,
                "ips": [format!("10.{}.{}.1", (i >> 8) & 255, i & 255), format!("10.{}.{}.2", (i >> 8) & 255, i & 255)]})
        } else {
            serde_json::json!({"name": format!("svc{i}.gslb.example.org"), "type": "AAAA", "ttl": 30,
                "ips": [format!("2001:db8::{:x}:{:x}:1", i >> 16, i & 0xffff)]})
        };
        records.push(rec);
    }
    serde_json::to_vec(&serde_json::json!({"zone": "gslb.example.org", "version_hash": version, "records": records}))
        .unwrap()
}

fn main() {
    let records = std::env::var("APPLY_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_RECORDS);
    let state = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[state]\ndir = \"{}\"\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\n[zone.controller]\nendpoint = \"http://127.0.0.1:9\"\nsecret = \"bench-secret\"\n",
        state.path().display()
    );
    let config = gslbd::config::parse(Path::new("apply.toml"), &text, &|_| None).expect("valid config");
    let apex = config.zones[0].apex.clone();
    let mut inputs = State::new(config, Default::default());
    let handle = inputs.handle();
    let query = {
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in ["svc99998", "gslb", "example", "org"] {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    };
    let mut out = vec![0u8; MAX_MESSAGE + 1024];
    trim();
    let base = rss_bytes();
    println!("records={records} body_bytes={}", body("v0", records).len());
    for round in 0..ROUNDS {
        let bytes = body(&format!("v{round}"), records);
        let start = Instant::now();
        let json = response::decode(&bytes, &apex, 300).unwrap();
        let payload = Payload {
            zone: json.zone.unwrap(),
            version_hash: json.version_hash.unwrap(),
            received: json.received,
            converted: json.converted,
        };
        let decoded = start.elapsed();
        inputs.sync_accepted(&apex, payload);
        inputs.build().expect("build");
        let applied = start.elapsed();
        let snap = handle.load();
        let zone_bytes = snap.zone(&apex).map_or(0, |z| z.heap_bytes());
        println!(
            "  zone snapshot heap: {:.1} MB = {} bytes/record; Fragment={}B NodeRec={}B",
            zone_bytes as f64 / 1e6,
            zone_bytes / records,
            std::mem::size_of::<gslbd::snapshot::fragment::Fragment>(),
            std::mem::size_of::<gslbd::snapshot::NodeRec>()
        );
        let answer = Responder::default()
            .respond(&snap, &query, &mut out, Transport::Udp, std::net::IpAddr::from([127, 0, 0, 1]))
            .unwrap();
        assert_eq!(answer.rcode, 0);
        assert_eq!(u16::from_be_bytes([out[6], out[7]]), 2, "the new data answers");
        drop(snap);
        // What the state-file writer does after the swap: encode, write, hold the compact form.
        let persist_start = Instant::now();
        inputs.write_pending();
        let persisted = persist_start.elapsed();
        drop(bytes);
        // Let the reclaim thread free the replaced data before measuring what is held.
        std::thread::sleep(std::time::Duration::from_millis(300));
        trim();
        let held = rss_bytes().saturating_sub(base);
        println!(
            "round={round} decode_convert_ms={:.1} applied_ms={:.1} (decode+convert+merge+build+publish) persist_ms={:.1} rss_delta_mb={:.1} bytes_per_record={}",
            decoded.as_secs_f64() * 1e3,
            applied.as_secs_f64() * 1e3,
            persisted.as_secs_f64() * 1e3,
            held as f64 / 1e6,
            held / records
        );
    }
}
