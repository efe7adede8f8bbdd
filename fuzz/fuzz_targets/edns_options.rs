//! Queries whose OPT record carries arbitrary option bytes (ECS, COOKIE, NSID and unknown
//! codes in any order and length), answered over UDP and TCP with cookies and ECS on: the
//! option parsers and the replies that echo them must never panic, and every reply must
//! carry a header.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use gslbd::server::query::{MAX_MESSAGE, Responder, Transport};
use gslbd::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

fn snapshot() -> Arc<Snapshot> {
    static SNAP: OnceLock<Arc<Snapshot>> = OnceLock::new();
    SNAP.get_or_init(|| {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/gslbd.toml")).unwrap();
        let config = gslbd::config::parse(Path::new("fuzz.toml"), &text, &|_| None).unwrap();
        gslbd::builder::state::State::new(config, Default::default()).handle().load()
    })
    .clone()
}

fuzz_target!(|options: &[u8]| {
    let options = &options[..options.len().min(1200)];
    // app.gslb.example.org A, with an OPT whose RDATA is the fuzzer's bytes.
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    q.extend_from_slice(b"\x03app\x04gslb\x07example\x03org\x00\x00\x01\x00\x01");
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    q.extend_from_slice(&(options.len() as u16).to_be_bytes());
    q.extend_from_slice(options);
    let snap = snapshot();
    let mut out = vec![0u8; MAX_MESSAGE + 1024];
    for transport in [Transport::Udp, Transport::Tcp] {
        for peer in [std::net::IpAddr::from([192, 0, 2, 1]), "2001:db8::1".parse().unwrap()] {
            if let Some(o) = Responder::default().respond(&snap, &q, &mut out, transport, peer) {
                assert!(o.len >= 12);
            }
        }
    }
});
