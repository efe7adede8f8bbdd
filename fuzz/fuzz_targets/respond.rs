//! Feeds arbitrary bytes to the responder over both transports: it must never panic, and any
//! reply it makes must at least carry a header.
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

fuzz_target!(|data: &[u8]| {
    let snap = snapshot();
    let mut out = vec![0u8; MAX_MESSAGE + 1024];
    for transport in [Transport::Udp, Transport::Tcp] {
        if let Some(o) = Responder::default().respond(&snap, data, &mut out, transport, std::net::IpAddr::from([127, 0, 0, 1])) {
            assert!(o.len >= 12);
        }
    }
});
