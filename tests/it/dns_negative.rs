//! Negative answers (RFC 2308) and names we are not authoritative for.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::harness::*;

fn server() -> Server {
    Server::start(&config("", ZONE))
}

/// NXDOMAIN carries the SOA with TTL = min(SOA TTL, minimum).
#[test]
fn nxdomain_carries_soa_with_negative_ttl() {
    let s = server();
    let m = s.udp(&query("nope.gslb.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
    assert_eq!(m.authorities[0].name.to_string(), "gslb.example.org.");
    assert_eq!(m.authorities[0].ttl, 30);
    let deep = s.udp(&query("a.b.c.nope.gslb.example.org.", RecordType::AAAA));
    assert_eq!(deep.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(deep.authorities[0].name.to_string(), "gslb.example.org.");
}

/// A name with other types only: NOERROR, empty answer, SOA.
#[test]
fn nodata_for_a_missing_type() {
    let s = server();
    let m = s.udp(&query("info.gslb.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
    assert_eq!(m.authorities[0].ttl, 30);
}

/// `_udp` exists only because `_sip._udp` does: an empty non-terminal is NODATA.
#[test]
fn empty_non_terminal_is_nodata() {
    let s = server();
    let m = s.udp(&query("_udp.gslb.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
}

/// We are not a resolver: names outside our zones are REFUSED, compared label by label.
#[test]
fn out_of_zone_is_refused() {
    let s = server();
    for name in ["example.com.", "example.org.", "evilgslb.example.org.", "."] {
        let m = s.udp(&query(name, RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(!m.metadata.authoritative, "{name}");
        assert!(m.answers.is_empty() && m.authorities.is_empty());
    }
}
