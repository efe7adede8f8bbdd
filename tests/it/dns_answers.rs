//! Positive answers: flags, addresses, rotation, CNAME chasing, apex data, additional-section
//! processing, ANY, 0x20 case, nested zones, delegations and wildcards.

use std::collections::HashSet;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::harness::*;

fn server() -> Server {
    Server::start(&config("", &format!("{ZONE}{NESTED_ZONE}")))
}

/// RFC 1035 §4.1.1: QR and AA set on in-zone answers, RD copied, RA never set.
#[test]
fn a_answer_is_authoritative_rd_copied_ra_clear() {
    let s = server();
    let m = s.udp(&query("app.gslb.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(m.metadata.recursion_desired);
    assert!(!m.metadata.recursion_available);
    let mut got = answers(&m);
    got.sort();
    assert_eq!(got, ["192.0.2.10", "192.0.2.11"]);
    assert!(m.answers.iter().all(|r| r.ttl == 60));

    let mut no_rd = query("app.gslb.example.org.", RecordType::A);
    no_rd.metadata.recursion_desired = false;
    let m = s.udp(&no_rd);
    assert!(!m.metadata.recursion_desired);
    assert!(m.metadata.authoritative);
}

#[test]
fn aaaa_answer() {
    let s = server();
    let m = s.udp(&query("app.gslb.example.org.", RecordType::AAAA));
    assert_eq!(answers(&m), ["2001:db8::10"]);
}

/// Several addresses come back in a rotating order.
#[test]
fn addresses_rotate_per_query() {
    let s = server();
    let mut firsts = HashSet::new();
    for _ in 0..20 {
        let m = s.udp(&query("app.gslb.example.org.", RecordType::A));
        assert_eq!(m.answers.len(), 2);
        firsts.insert(answers(&m)[0].clone());
        if firsts.len() == 2 {
            break;
        }
    }
    assert_eq!(firsts.len(), 2, "both addresses should lead some answer");
}

/// RFC 1034 §4.3.2: the CNAME and, for an in-zone target, the target's RRset.
#[test]
fn cname_is_chased_inside_the_zone() {
    let s = server();
    let m = s.udp(&query("www.gslb.example.org.", RecordType::A));
    assert_eq!(types(&m.answers), [RecordType::CNAME, RecordType::A, RecordType::A]);
    assert_eq!(m.answers[0].data.to_string(), "app.gslb.example.org.");
    assert_eq!(m.answers[1].name.to_string(), "app.gslb.example.org.");
    let m = s.udp(&query("www.gslb.example.org.", RecordType::AAAA));
    assert_eq!(types(&m.answers), [RecordType::CNAME, RecordType::AAAA]);
    // A type the target lacks: the CNAME plus NODATA's SOA.
    let m = s.udp(&query("www.gslb.example.org.", RecordType::MX));
    assert_eq!(types(&m.answers), [RecordType::CNAME]);
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn cname_query_returns_only_the_cname() {
    let s = server();
    let m = s.udp(&query("www.gslb.example.org.", RecordType::CNAME));
    assert_eq!(types(&m.answers), [RecordType::CNAME]);
    assert!(m.authorities.is_empty());
}

/// A CNAME loop ends after each link appears once.
#[test]
fn cname_loop_is_bounded() {
    let s = server();
    let m = s.udp(&query("loop1.gslb.example.org.", RecordType::A));
    assert_eq!(types(&m.answers), [RecordType::CNAME, RecordType::CNAME]);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

/// RFC 6604: a chain ending at a missing in-zone name is NXDOMAIN with the chain.
#[test]
fn cname_to_missing_target_is_nxdomain() {
    let s = server();
    let m = s.udp(&query("dangling.gslb.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(types(&m.answers), [RecordType::CNAME]);
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
}

#[test]
fn cname_out_of_zone_is_not_chased() {
    let s = server();
    let m = s.udp(&query("ext.gslb.example.org.", RecordType::A));
    assert_eq!(types(&m.answers), [RecordType::CNAME]);
    assert_eq!(m.answers[0].data.to_string(), "www.example.net.");
    assert!(m.authorities.is_empty());
}

/// Apex SOA and NS come from the config; in-zone NS targets get their addresses as glue.
#[test]
fn apex_soa_and_ns_with_additional_addresses() {
    let s = server();
    let m = s.udp(&query("gslb.example.org.", RecordType::SOA));
    assert_eq!(types(&m.answers), [RecordType::SOA]);
    let soa = m.answers[0].data.to_string();
    assert!(soa.starts_with("ns1.gslb.example.org. hostmaster.gslb.example.org. "), "{soa}");
    assert!(soa.ends_with(" 3600 600 86400 30"), "{soa}");
    assert_eq!(m.answers[0].ttl, 3600);

    let m = s.udp(&query("gslb.example.org.", RecordType::NS));
    assert_eq!(answers(&m), ["ns1.gslb.example.org."]);
    let mut glue = answers_of(&m.additionals);
    glue.sort();
    assert_eq!(glue, ["127.0.0.1", "::1"]);
}

fn answers_of(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    records.iter().map(|r| r.data.to_string()).collect()
}

/// MX and SRV targets inside the zone get A/AAAA in the additional section.
#[test]
fn mx_and_srv_targets_get_additional_addresses() {
    let s = server();
    let m = s.udp(&query("mail.gslb.example.org.", RecordType::MX));
    assert_eq!(m.answers.len(), 2);
    assert_eq!(answers_of(&m.additionals), ["192.0.2.25"]);
    assert_eq!(m.additionals[0].name.to_string(), "mx1.gslb.example.org.");

    let m = s.udp(&query("_sip._udp.gslb.example.org.", RecordType::SRV));
    assert_eq!(answers(&m), ["10 5 5060 sip.gslb.example.org."]);
    assert_eq!(answers_of(&m.additionals), ["192.0.2.50"]);
}

#[test]
fn txt_answer() {
    let s = server();
    let m = s.udp(&query("info.gslb.example.org.", RecordType::TXT));
    assert_eq!(answers(&m), ["hello"]);
}

/// RFC 8482: ANY gets one RRset, not a dump.
#[test]
fn any_query_gets_one_rrset() {
    let s = server();
    let m = s.udp(&query("app.gslb.example.org.", RecordType::ANY));
    let t: HashSet<_> = types(&m.answers).into_iter().collect();
    assert_eq!(t.len(), 1, "one RRset: {:?}", m.answers);
    assert!(m.metadata.authoritative);
    let m = s.udp(&query("gslb.example.org.", RecordType::ANY));
    let t: HashSet<_> = types(&m.answers).into_iter().collect();
    assert_eq!(t.len(), 1, "one RRset at the apex: {:?}", m.answers);
}

/// The question is echoed byte for byte (0x20 mixed case); lookup is case-insensitive.
#[test]
fn question_case_is_echoed() {
    let s = server();
    let q = query("ApP.GsLb.ExAmPlE.oRg.", RecordType::A);
    let bytes = q.to_vec().unwrap();
    let reply = s.udp_raw(&bytes, DEADLINE).expect("reply");
    let qend = 12 + "ApP.GsLb.ExAmPlE.oRg.".len() + 1 + 4;
    assert_eq!(&reply[12..qend], &bytes[12..qend]);
    let m = hickory_proto::op::Message::from_vec(&reply).unwrap();
    assert_eq!(m.answers.len(), 2);
}

/// With nested zones the longest apex wins.
#[test]
fn nested_zone_longest_match_wins() {
    let s = server();
    let m = s.udp(&query("app.inner.gslb.example.org.", RecordType::A));
    assert_eq!(answers(&m), ["198.51.100.1"]);
    let m = s.udp(&query("nope.inner.gslb.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities[0].name.to_string(), "inner.gslb.example.org.");
}

/// NS below the apex is a delegation: a referral with AA clear and glue; DS is ours.
#[test]
fn delegation_gets_a_referral() {
    let s = server();
    for name in ["sub.gslb.example.org.", "deep.host.sub.gslb.example.org."] {
        let m = s.udp(&query(name, RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(!m.metadata.authoritative, "{name}");
        assert!(m.answers.is_empty());
        assert_eq!(types(&m.authorities), [RecordType::NS]);
        assert_eq!(m.authorities[0].name.to_string(), "sub.gslb.example.org.");
        assert_eq!(answers_of(&m.additionals), ["192.0.2.53"]);
    }
    let m = s.udp(&query("sub.gslb.example.org.", RecordType::DS));
    assert!(m.metadata.authoritative);
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
}

/// RFC 4592: a wildcard answers names below it that do not exist, with the query name.
#[test]
fn wildcard_synthesises_answers() {
    let s = server();
    for name in ["a.wild.gslb.example.org.", "x.y.wild.gslb.example.org."] {
        let m = s.udp(&query(name, RecordType::A));
        assert_eq!(answers(&m), ["192.0.2.77"], "{name}");
        assert_eq!(m.answers[0].name.to_string(), name);
        assert_eq!(m.answers[0].ttl, 120);
    }
    let m = s.udp(&query("a.wild.gslb.example.org.", RecordType::AAAA));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
}
