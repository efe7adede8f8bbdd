//! EDNS Client Subnet (RFC 7871): the option is read, echoed with its scope, and a malformed
//! one is FORMERR; `[server] ecs = false` ignores it.

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};

use crate::harness::*;

/// A query carrying a Client Subnet option for `addr/source`.
pub fn with_subnet(name: &str, rtype: RecordType, addr: &str, source: u8) -> Message {
    let mut m = query_edns(name, rtype, 1232);
    let subnet = ClientSubnet::new(addr.parse::<IpAddr>().unwrap(), source, 0);
    m.edns.as_mut().unwrap().options_mut().insert(EdnsOption::Subnet(subnet));
    m
}

/// The reply's Client Subnet option, if it has one.
pub fn subnet_of(m: &Message) -> Option<ClientSubnet> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some(*s),
        other => panic!("not a subnet option: {other:?}"),
    }
}

/// The raw bytes of a query whose OPT holds one option with `code` and `data`.
fn raw_with_option(code: u16, data: &[u8]) -> Vec<u8> {
    let mut bytes = query("app.gslb.example.org.", RecordType::A).to_vec().unwrap();
    bytes[11] = 1; // ARCOUNT
    bytes.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&(data.len() as u16 + 4).to_be_bytes());
    bytes.extend_from_slice(&code.to_be_bytes());
    bytes.extend_from_slice(&(data.len() as u16).to_be_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// A static answer does not depend on where the client is: the option comes back with the
/// query's family, source prefix and address, and scope 0, over UDP and TCP, IPv4 and IPv6.
#[test]
fn static_answers_echo_the_subnet_with_scope_zero() {
    let s = Server::start(&config("", ZONE));
    for (addr, source) in [("198.51.100.0", 24), ("10.189.0.0", 20), ("2001:db8:40::", 48)] {
        let q = with_subnet("app.gslb.example.org.", RecordType::A, addr, source);
        for m in [s.udp(&q), s.tcp_query(&q)] {
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert!(!answers(&m).is_empty());
            let got = subnet_of(&m).expect("ECS in reply");
            assert_eq!(got.addr(), addr.parse::<IpAddr>().unwrap());
            assert_eq!((got.source_prefix(), got.scope_prefix()), (source, 0));
        }
    }
}

/// NXDOMAIN and NODATA are the same for every client: scope 0.
#[test]
fn negative_answers_have_scope_zero() {
    let s = Server::start(&config("", ZONE));
    let nx = s.udp(&with_subnet("nope.gslb.example.org.", RecordType::A, "192.0.2.0", 24));
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(subnet_of(&nx).expect("ECS").scope_prefix(), 0);
    let nodata = s.udp(&with_subnet("app.gslb.example.org.", RecordType::MX, "192.0.2.0", 24));
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(subnet_of(&nodata).expect("ECS").scope_prefix(), 0);
}

/// Source prefix 0 discloses nothing; the reply says scope 0.
#[test]
fn source_prefix_zero_is_echoed_with_scope_zero() {
    let s = Server::start(&config("", ZONE));
    let m = s.udp(&with_subnet("app.gslb.example.org.", RecordType::A, "0.0.0.0", 0));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let got = subnet_of(&m).expect("ECS");
    assert_eq!((got.source_prefix(), got.scope_prefix()), (0, 0));
}

/// RFC 7871 §7.1.1: an unknown family, a prefix longer than the address, the wrong address
/// length or bits set beyond the prefix are FORMERR; the reply still carries an OPT.
#[test]
fn malformed_subnets_are_formerr() {
    let s = Server::start(&config("", ZONE));
    for bad in [
        &[0, 3, 8, 0, 10][..],
        &[0, 1, 33, 0, 1, 2, 3, 4, 5],
        &[0, 1, 24, 0, 10, 0],
        &[0, 1, 20, 0, 10, 189, 8],
        &[0, 2, 129, 0],
    ] {
        let reply = s.udp_raw(&raw_with_option(8, bad), DEADLINE).expect("reply");
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{bad:?}");
        let opt = m.edns.as_ref().expect("OPT in the FORMERR reply");
        assert!(opt.option(EdnsCode::Subnet).is_none());
        assert_eq!(m.queries.len(), 1, "question echoed");
    }
    // The same bytes with a well-formed option are answered.
    let reply = s.udp_raw(&raw_with_option(8, &[0, 1, 20, 0, 10, 189, 0]), DEADLINE).expect("reply");
    assert_eq!(Message::from_vec(&reply).unwrap().metadata.response_code, ResponseCode::NoError);
}

/// With `ecs = false` the option is ignored like any unknown one: no echo, no FORMERR.
#[test]
fn ecs_off_ignores_the_option() {
    let s = Server::start(&config("ecs = false", ZONE));
    let m = s.udp(&with_subnet("app.gslb.example.org.", RecordType::A, "198.51.100.0", 24));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.edns.is_some());
    assert!(subnet_of(&m).is_none());
    let reply = s.udp_raw(&raw_with_option(8, &[0, 1, 20, 0, 10, 189, 8]), DEADLINE).expect("reply");
    assert_eq!(Message::from_vec(&reply).unwrap().metadata.response_code, ResponseCode::NoError);
}
