//! Property tests: random and mutated packets never panic the responder, every reply it
//! produces decodes with hickory-proto, and our parser agrees with hickory on valid queries.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use gslbd::dns::wire::{Query as WireQuery, parse_query};
use gslbd::server::query::{MAX_MESSAGE, Responder, Transport};
use gslbd::snapshot::Snapshot;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use proptest::prelude::*;

fn snapshot() -> Arc<Snapshot> {
    static SNAP: OnceLock<Arc<Snapshot>> = OnceLock::new();
    SNAP.get_or_init(build_snapshot).clone()
}

fn build_snapshot() -> Arc<Snapshot> {
    let text = crate::harness::config("nsid = \"p\"", crate::harness::ZONE);
    let config = gslbd::config::parse(Path::new("props.toml"), &text, &|_| None).expect("valid config");
    gslbd::builder::state::State::new(config, Default::default()).handle().load()
}

fn respond(snap: &Snapshot, bytes: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let mut out = vec![0u8; MAX_MESSAGE + 1024];
    Responder::default()
        .respond(snap, bytes, &mut out, transport, std::net::IpAddr::from([127, 0, 0, 1]))
        .map(|o| out[..o.len].to_vec())
}

fn valid_query(labels: &[String], qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let name = format!("{}.gslb.example.org.", labels.join("."));
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(&name).unwrap(), RecordType::from(qtype)));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9_-]{0,19}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let snap = snapshot();
        for transport in [Transport::Udp, Transport::Tcp] {
            if let Some(reply) = respond(&snap, &bytes, transport) {
                prop_assert!(reply.len() >= 12);
                prop_assert_eq!(&reply[..2], &bytes[..2]);
            }
        }
    }

    #[test]
    fn mutated_queries_never_panic_and_replies_decode(
        labels in proptest::collection::vec(label(), 1..4),
        qtype in prop_oneof![Just(1u16), Just(28), Just(5), Just(15), Just(255), any::<u16>()],
        edns in proptest::option::of(0u16..5000),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let snap = snapshot();
        let mut bytes = valid_query(&labels, qtype, edns);
        for (at, v) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *v;
        }
        if flips.len() == 3 {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if let Some(reply) = respond(&snap, &bytes, Transport::Udp) {
            prop_assert!(Message::from_vec(&reply).is_ok(), "reply does not decode: {:?}", reply);
            let limit = match edns { Some(s) if flips.is_empty() => (s.min(1232) as usize).max(512), _ => 512 };
            if flips.is_empty() {
                prop_assert!(reply.len() <= limit, "reply {} over limit {}", reply.len(), limit);
            }
        }
    }

    #[test]
    fn parser_agrees_with_hickory(
        labels in proptest::collection::vec(label(), 1..5),
        qtype in any::<u16>(),
        edns in proptest::option::of(512u16..5000),
    ) {
        let bytes = valid_query(&labels, qtype, edns);
        let theirs = Message::from_vec(&bytes).unwrap();
        let mut ours = WireQuery::default();
        parse_query(&bytes, &mut ours).unwrap();
        prop_assert_eq!(ours.id, theirs.metadata.id);
        prop_assert_eq!(ours.qtype, u16::from(theirs.queries[0].query_type()));
        let lower = theirs.queries[0].name().to_lowercase().to_ascii();
        let ours_name = String::from_utf8_lossy(&decode_name(ours.qname())).to_string();
        prop_assert_eq!(ours_name, lower);
        prop_assert_eq!(ours.edns.map(|e| e.udp_size), theirs.edns.as_ref().map(|e| e.max_payload()));
    }
}

/// Wire name → dotted text with a trailing dot.
fn decode_name(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    while wire[pos] != 0 {
        let len = wire[pos] as usize;
        out.extend_from_slice(&wire[pos + 1..pos + 1 + len]);
        out.push(b'.');
        pos += 1 + len;
    }
    out
}

/// The reply to every query of a zone's names decodes and matches the question.
#[test]
fn every_answer_decodes() {
    let snap = snapshot();
    for name in ["app", "www", "mail", "_sip._udp", "loop1", "dangling", "ext", "sub", "a.wild", "nope", "_udp"] {
        for qtype in [1u16, 28, 5, 15, 33, 16, 255, 6, 2, 43] {
            let labels: Vec<String> = name.split('.').map(String::from).collect();
            let bytes = valid_query(&labels, qtype, Some(1232));
            let reply = respond(&snap, &bytes, Transport::Udp).expect("reply");
            let m = Message::from_vec(&reply).unwrap_or_else(|e| panic!("{name} {qtype}: {e}"));
            assert_eq!(m.queries.len(), 1);
        }
    }
}
