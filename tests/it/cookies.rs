//! DNS Cookies over real UDP and TCP: a client cookie gets a server cookie back, which then
//! verifies (here and at another instance sharing the secret, also after a rotation);
//! malformed options are FORMERR; `cookies_required` answers BADCOOKIE; a valid cookie
//! exempts the client from rate limiting; `cookies = false` ignores the option.

use std::net::UdpSocket;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::admin_client::{Client, admin_section};
use crate::harness::*;

const CLIENT: [u8; 8] = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];

fn server(extra: &str, rest: &str) -> Server {
    Server::start(&config(extra, &format!("{}{rest}{ZONE}", admin_section(""))))
}

/// A query for `name` with an OPT holding a COOKIE option of `cookie`.
fn with_cookie(name: &str, cookie: &[u8]) -> Vec<u8> {
    let mut bytes = query_edns(name, RecordType::A, 1232).to_vec().unwrap();
    // The OPT is the last record and has no options: append one, then fix RDLENGTH.
    bytes.extend_from_slice(&10u16.to_be_bytes());
    bytes.extend_from_slice(&(cookie.len() as u16).to_be_bytes());
    bytes.extend_from_slice(cookie);
    let at = bytes.len() - cookie.len() - 4 - 2;
    bytes[at..at + 2].copy_from_slice(&(4 + cookie.len() as u16).to_be_bytes());
    bytes
}

/// The COOKIE option's data in a reply, if any.
fn cookie_of(reply: &[u8]) -> Option<Vec<u8>> {
    let at = reply.windows(4).rposition(|w| w == [0, 10, 0, 24])?;
    Some(reply[at + 4..at + 28].to_vec())
}

fn ask(s: &Server, bytes: &[u8]) -> (Message, Vec<u8>) {
    let raw = s.udp_raw(bytes, DEADLINE).expect("a reply");
    (Message::from_vec(&raw).unwrap(), raw)
}

fn metric(s: &Server, line: &str) -> f64 {
    let text = Client::for_server(s).text("/metrics");
    text.lines().find_map(|l| l.strip_prefix(line)?.trim().parse().ok()).unwrap_or(0.0)
}

/// A client cookie alone gets the client cookie and a 16-byte RFC 9018 server cookie back
/// with the answer; sent back, it verifies; a server cookie that is not ours is answered
/// all the same (cookies are not required) and counted invalid; a malformed option is
/// FORMERR with an OPT.
#[test]
fn cookies_are_given_and_verified() {
    let s = server("", "");
    let (m, raw) = ask(&s, &with_cookie("app.gslb.example.org.", &CLIENT));
    assert_eq!(m.answers.len(), 2);
    let cookie = cookie_of(&raw).expect("a COOKIE option in the reply");
    assert_eq!(cookie[..8], CLIENT, "the client cookie echoed");
    assert_eq!(cookie[8..12], [1, 0, 0, 0], "version 1, reserved zero");
    let stamp = u32::from_be_bytes(cookie[12..16].try_into().unwrap()) as u64;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(stamp.abs_diff(now) <= 5, "timestamped now: {stamp} vs {now}");

    let (m, raw) = ask(&s, &with_cookie("app.gslb.example.org.", &cookie));
    assert_eq!(m.answers.len(), 2);
    assert_eq!(cookie_of(&raw).unwrap()[..8], CLIENT);
    let mut forged = cookie.clone();
    forged[20] ^= 0xff;
    let (m, _) = ask(&s, &with_cookie("app.gslb.example.org.", &forged));
    assert_eq!(m.answers.len(), 2, "an invalid server cookie is answered when cookies are optional");
    for bad in [&CLIENT[..7], &[7u8; 9][..], &[7u8; 41][..]] {
        let (m, _) = ask(&s, &with_cookie("app.gslb.example.org.", bad));
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "a cookie of {} bytes", bad.len());
        assert!(m.edns.is_some(), "FORMERR carries an OPT");
    }
    assert_eq!(metric(&s, "gslbd_cookies_total{outcome=\"client_only\"}"), 1.0);
    assert_eq!(metric(&s, "gslbd_cookies_total{outcome=\"valid\"}"), 1.0);
    assert_eq!(metric(&s, "gslbd_cookies_total{outcome=\"invalid\"}"), 1.0);
    assert_eq!(metric(&s, "gslbd_cookies_total{outcome=\"malformed\"}"), 3.0);
}

/// With `cookies_required`, a UDP query with a client cookie but no valid server cookie
/// gets BADCOOKIE carrying a server cookie; with that cookie it is answered. TCP and
/// queries without any cookie are answered as before.
#[test]
fn required_cookies_answer_badcookie_first() {
    let s = server("cookies_required = true", "");
    let (m, raw) = ask(&s, &with_cookie("app.gslb.example.org.", &CLIENT));
    assert_eq!(m.metadata.response_code, ResponseCode::BADCOOKIE);
    assert!(m.answers.is_empty());
    let cookie = cookie_of(&raw).expect("BADCOOKIE carries a server cookie");
    let (m, _) = ask(&s, &with_cookie("app.gslb.example.org.", &cookie));
    assert_eq!((m.metadata.response_code, m.answers.len()), (ResponseCode::NoError, 2));
    let mut tcp = s.tcp();
    tcp_send(&mut tcp, &with_cookie("app.gslb.example.org.", &CLIENT));
    let m = Message::from_vec(&tcp_read(&mut tcp).unwrap()).unwrap();
    assert_eq!(m.answers.len(), 2, "TCP needs no cookie");
    assert_eq!(s.udp(&query("app.gslb.example.org.", RecordType::A)).answers.len(), 2);
}

/// Instances sharing `cookie_secret` verify each other's cookies, also when one has rotated
/// to a new secret and keeps the old as `cookie_secret_previous`.
#[test]
fn a_shared_secret_verifies_across_instances_and_rotations() {
    let old = "e5e973e5a6b2a43f48e7dc849e37bfcf";
    let a = server(&format!("cookie_secret = \"{old}\""), "");
    let b = server(
        &format!("cookie_secret = \"445536bcd2513298075a5d379663c962\"\ncookie_secret_previous = \"{old}\""),
        "",
    );
    let c = server("cookie_secret = \"445536bcd2513298075a5d379663c962\"", "");
    let (_, raw) = ask(&a, &with_cookie("app.gslb.example.org.", &CLIENT));
    let cookie = cookie_of(&raw).unwrap();
    ask(&b, &with_cookie("app.gslb.example.org.", &cookie));
    assert_eq!(metric(&b, "gslbd_cookies_total{outcome=\"valid\"}"), 1.0, "the previous secret verifies");
    ask(&c, &with_cookie("app.gslb.example.org.", &cookie));
    assert_eq!(metric(&c, "gslbd_cookies_total{outcome=\"invalid\"}"), 1.0, "another secret does not");
}

/// A client presenting a valid server cookie is never rate limited; without it the same
/// burst is; `cookies = false` ignores the option (no COOKIE in the reply).
#[test]
fn valid_cookies_bypass_rate_limiting_and_cookies_can_be_off() {
    let s = server("", "[rrl]\nresponses_per_second = 5\nwindow = 1\nslip = 0\n");
    let (_, raw) = ask(&s, &with_cookie("app.gslb.example.org.", &CLIENT));
    let cookie = cookie_of(&raw).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let count = |bytes: &[u8]| {
        for _ in 0..30 {
            sock.send_to(bytes, s.addr).unwrap();
        }
        let mut buf = [0u8; 4096];
        let mut got = 0;
        while sock.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        got
    };
    assert_eq!(count(&with_cookie("app.gslb.example.org.", &cookie)), 30, "a valid cookie is exempt");
    assert!(count(&query("app.gslb.example.org.", RecordType::A).to_vec().unwrap()) <= 15, "without it: limited");

    let off = server("cookies = false", "");
    let (m, raw) = ask(&off, &with_cookie("app.gslb.example.org.", &CLIENT));
    assert_eq!(m.answers.len(), 2);
    assert!(cookie_of(&raw).is_none(), "no COOKIE when cookies are off");
    let (m, _) = ask(&off, &with_cookie("app.gslb.example.org.", &[7u8; 9]));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "the option is ignored, malformed or not");
}
