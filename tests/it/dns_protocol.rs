//! Protocol edges: opcodes, malformed packets, classes, EDNS0 (RFC 6891), NSID (RFC 5001),
//! truncation and zone-transfer requests.

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption, NSIDPayload};
use hickory_proto::rr::{DNSClass, RecordType};

use crate::harness::*;

fn big_zone() -> String {
    let mut recs = String::new();
    for i in 0..40 {
        recs.push_str(&format!("many 60 IN A 10.0.0.{i}\n"));
    }
    for i in 0..20 {
        recs.push_str(&format!("mxmany 60 IN MX 10 m{i}\nm{i} 60 IN AAAA 2001:db8::{i:x}\n"));
    }
    format!("[[zone]]\nname = \"big.test\"\nns = [\"ns.example.net\"]\nrecords = \"\"\"\n{recs}\"\"\"\n")
}

fn server() -> Server {
    Server::start(&config("nsid = \"edge-1\"\nversion = \"gslbd-test\"", &format!("{ZONE}{}", big_zone())))
}

fn rcode(reply: &[u8]) -> u8 {
    reply[3] & 0x0f
}

/// RFC 1035 §4.1.1: opcodes other than QUERY get NOTIMP.
#[test]
fn other_opcodes_get_notimp() {
    let s = server();
    let mut bytes = query("app.gslb.example.org.", RecordType::A).to_vec().unwrap();
    bytes[2] = (bytes[2] & 0x87) | (4 << 3); // NOTIFY
    let reply = s.udp_raw(&bytes, DEADLINE).expect("reply");
    assert_eq!(&reply[..2], &bytes[..2], "id echoed");
    assert_eq!(rcode(&reply), 4);
    assert_eq!(reply[2] & 0x80, 0x80, "QR");
}

/// QDCOUNT other than 1 is FORMERR.
#[test]
fn qdcount_other_than_one_is_formerr() {
    let s = server();
    let header_only = [0xab, 0xcd, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
    let reply = s.udp_raw(&header_only, DEADLINE).expect("reply");
    assert_eq!(rcode(&reply), 1);
    assert_eq!(&reply[..2], &[0xab, 0xcd]);

    let mut two = query("app.gslb.example.org.", RecordType::A);
    two.add_query(hickory_proto::op::Query::query("www.gslb.example.org.".parse().unwrap(), RecordType::A));
    let m = s.udp(&two);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
}

/// A question cut short or with a compression pointer is FORMERR.
#[test]
fn malformed_question_is_formerr() {
    let s = server();
    let truncated = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'a', b'p'];
    let reply = s.udp_raw(&truncated, DEADLINE).expect("reply");
    assert_eq!(rcode(&reply), 1);
    assert_eq!(u16::from_be_bytes([reply[4], reply[5]]), 0, "no question echoed");
    let mut bad_opt = query_edns("app.gslb.example.org.", RecordType::A, 1232).to_vec().unwrap();
    bad_opt.truncate(bad_opt.len() - 3);
    let reply = s.udp_raw(&bad_opt, DEADLINE).expect("reply");
    assert_eq!(rcode(&reply), 1);
}

/// Packets without a readable header, and responses, are dropped: the next reply on the
/// socket is the one to the valid query sent after them.
#[test]
fn unreadable_packets_and_responses_are_dropped() {
    let s = server();
    let sock = udp_socket(DEADLINE);
    sock.send_to(&[1, 2, 3, 4, 5], s.addr).unwrap();
    let mut response = query("app.gslb.example.org.", RecordType::A).to_vec().unwrap();
    response[2] |= 0x80;
    response[0] = 0x77;
    sock.send_to(&response, s.addr).unwrap();
    let valid = query("app.gslb.example.org.", RecordType::A);
    sock.send_to(&valid.to_vec().unwrap(), s.addr).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("a reply");
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, valid.metadata.id);
}

/// CHAOS `version.bind` is answered only when configured; other classes are REFUSED.
#[test]
fn chaos_class_refused_unless_configured() {
    let s = server();
    let m = s.udp(&query_class("version.bind.", RecordType::TXT, DNSClass::CH));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&m), ["gslbd-test"]);
    assert_eq!(m.answers[0].dns_class, DNSClass::CH);
    let m = s.udp(&query_class("id.server.", RecordType::TXT, DNSClass::CH));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let m = s.udp(&query_class("app.gslb.example.org.", RecordType::A, DNSClass::HS));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    let plain = Server::start(&config("", ZONE));
    let m = plain.udp(&query_class("version.bind.", RecordType::TXT, DNSClass::CH));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

/// RFC 6891 §6.1.1: an OPT in the query gets an OPT in the reply, with our payload size.
#[test]
fn edns_opt_is_echoed_with_our_payload_size() {
    let s = server();
    let m = s.udp(&query_edns("app.gslb.example.org.", RecordType::A, 4096));
    let edns = m.edns.expect("OPT in reply");
    assert_eq!(edns.max_payload(), 1232);
    assert_eq!(edns.version(), 0);
    let m = s.udp(&query("app.gslb.example.org.", RecordType::A));
    assert!(m.edns.is_none(), "no OPT without one in the query");
}

/// RFC 3225 §3: the DO bit of the query is copied into the reply's OPT, in answers and in
/// errors alike; a query without it gets a reply without it.
#[test]
fn the_do_bit_is_echoed() {
    let s = server();
    for (name, rtype) in [
        ("app.gslb.example.org.", RecordType::A),
        ("nothere.gslb.example.org.", RecordType::A),
        ("x.example.com.", RecordType::A),
    ] {
        for dnssec_ok in [true, false] {
            let mut q = query_edns(name, rtype, 1232);
            q.edns.as_mut().unwrap().set_dnssec_ok(dnssec_ok);
            let m = s.udp(&q);
            assert_eq!(m.edns.expect("OPT in reply").flags().dnssec_ok, dnssec_ok, "{name} DO={dnssec_ok}");
        }
    }
    let mut q = query("app.gslb.example.org.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_version(1).set_dnssec_ok(true);
    q.set_edns(edns);
    assert!(s.udp(&q).edns.expect("OPT in BADVERS").flags().dnssec_ok, "BADVERS keeps DO");
}

/// RFC 6891 §6.1.3: EDNS version above 0 gets BADVERS.
#[test]
fn edns_version_above_zero_is_badvers() {
    let s = server();
    let mut q = query("app.gslb.example.org.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_version(1);
    q.set_edns(edns);
    let reply = s.udp_raw(&q.to_vec().unwrap(), DEADLINE).expect("reply");
    let m = Message::from_vec(&reply).unwrap();
    let edns = m.edns.as_ref().expect("OPT in reply");
    let full = ((edns.rcode_high() as u16) << 4) | (reply[3] & 0x0f) as u16;
    assert_eq!(full, 16, "BADVERS");
    assert_eq!(edns.version(), 0);
    assert!(m.answers.is_empty());
}

/// RFC 5001: NSID only when configured and asked for.
#[test]
fn nsid_is_sent_when_asked() {
    let s = server();
    let mut q = query_edns("app.gslb.example.org.", RecordType::A, 1232);
    q.edns.as_mut().unwrap().options_mut().insert(EdnsOption::NSID(NSIDPayload::new(Vec::new()).unwrap()));
    let m = s.udp(&q);
    let nsid = m.edns.as_ref().unwrap().option(EdnsCode::NSID).expect("NSID in reply");
    match nsid {
        EdnsOption::NSID(p) => assert_eq!(p.as_ref(), b"edge-1"),
        other => panic!("unexpected option {other:?}"),
    }
    let m = s.udp(&query_edns("app.gslb.example.org.", RecordType::A, 1232));
    assert!(m.edns.as_ref().unwrap().option(EdnsCode::NSID).is_none());
}

/// A response too big for 512 bytes sets TC; EDNS or TCP gets all of it.
#[test]
fn oversized_answer_truncates_over_udp_and_is_whole_over_tcp() {
    let s = server();
    let m = s.udp(&query("many.big.test.", RecordType::A));
    assert!(m.metadata.truncation, "TC");
    assert!(m.answers.is_empty());
    assert_eq!(m.queries.len(), 1, "question kept");
    let m = s.udp(&query_edns("many.big.test.", RecordType::A, 1232));
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 40);
    let m = s.tcp_query(&query("many.big.test.", RecordType::A));
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 40);
}

/// RFC 2181 §9: additional records that do not fit are left out without setting TC.
#[test]
fn additional_records_are_dropped_before_truncating() {
    let s = server();
    let m = s.udp(&query("mxmany.big.test.", RecordType::MX));
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 20);
    assert!(m.additionals.len() < 20, "some additional records left out");
    let m = s.tcp_query(&query("mxmany.big.test.", RecordType::MX));
    assert_eq!(m.additionals.len(), 20);
}

/// We serve no zone transfers.
#[test]
fn zone_transfer_is_refused() {
    let s = server();
    let m = s.tcp_query(&query("gslb.example.org.", RecordType::AXFR));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let m = s.udp(&query("gslb.example.org.", RecordType::IXFR));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

/// FORMERR and NOTIMP replies to a query with a valid OPT carry an OPT (RFC 6891 §7); an OPT
/// in the answer or authority section, and bytes after the last record, are FORMERR.
#[test]
fn error_replies_carry_opt_and_stray_bytes_are_formerr() {
    let s = server();
    let with_opt = query_edns("app.gslb.example.org.", RecordType::A, 1232).to_vec().unwrap();
    // NOTIFY with an OPT: NOTIMP, with an OPT.
    let mut notify = with_opt.clone();
    notify[2] = (notify[2] & 0x87) | (4 << 3);
    let reply = Message::from_vec(&s.udp_raw(&notify, DEADLINE).expect("reply")).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);
    assert!(reply.edns.is_some(), "NOTIMP carries OPT: {reply:?}");
    // Trailing bytes after the OPT: FORMERR, with an OPT.
    let mut trailing = with_opt.clone();
    trailing.extend_from_slice(&[0, 0, 0]);
    let reply = Message::from_vec(&s.udp_raw(&trailing, DEADLINE).expect("reply")).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert!(reply.edns.is_some(), "FORMERR carries OPT: {reply:?}");
    assert_eq!(reply.queries.len(), 1, "the question is echoed");
    // Trailing bytes without OPT: FORMERR without one.
    let mut plain = query("app.gslb.example.org.", RecordType::A).to_vec().unwrap();
    plain.push(0);
    let reply = Message::from_vec(&s.udp_raw(&plain, DEADLINE).expect("reply")).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert!(reply.edns.is_none());
    // The OPT moved to the answer section (ANCOUNT 1, ARCOUNT 0): FORMERR.
    let mut in_answer = with_opt;
    in_answer[6..8].copy_from_slice(&1u16.to_be_bytes());
    in_answer[10..12].copy_from_slice(&0u16.to_be_bytes());
    let reply = s.udp_raw(&in_answer, DEADLINE).expect("reply");
    assert_eq!(rcode(&reply), 1);
    // A valid query still answers.
    assert_eq!(answers(&s.udp(&query("app.gslb.example.org.", RecordType::A))).len(), 2);
}
