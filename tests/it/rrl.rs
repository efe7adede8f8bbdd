//! Response rate limiting over real UDP: a burst from one client network is held to the
//! rate, its limited responses slipped (TC) or dropped in the configured pattern, while
//! another network, exempt networks and TCP are answered in full; log_only limits nothing;
//! the accounts survive a reload.

use std::net::UdpSocket;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::admin_client::{Client, admin_section};
use crate::harness::*;

fn server(rrl: &str) -> Server {
    Server::start(&config("", &format!("{}[rrl]\n{rrl}\n{ZONE}", admin_section(""))))
}

/// What came back for a burst: answered in full, truncated (slipped), nothing.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    full: usize,
    slipped: usize,
    silent: usize,
}

/// Sends `n` queries for `name` from `source` back to back, then reads every reply until
/// none comes for 300 ms.
fn burst(s: &Server, source: &str, name: &str, n: usize) -> Tally {
    let sock = UdpSocket::bind((source, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    for i in 0..n {
        let mut q = query(name, RecordType::A);
        q.metadata.id = i as u16;
        sock.send_to(&q.to_vec().unwrap(), s.addr).unwrap();
    }
    let mut t = Tally::default();
    let mut buf = [0u8; 4096];
    while let Ok((len, _)) = sock.recv_from(&mut buf) {
        let m = Message::from_vec(&buf[..len]).unwrap();
        if m.metadata.truncation {
            assert!(m.answers.is_empty(), "a slip carries no records");
            t.slipped += 1;
        } else {
            t.full += 1;
        }
    }
    t.silent = n - t.full - t.slipped;
    t
}

fn metric(s: &Server, line: &str) -> f64 {
    let text = Client::for_server(s).text("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in\n{text}"))
}

/// 5 per second, window 1, slip 2: a burst of 40 from one network gets 5 in full (5 more
/// per second boundary it spans), then every second limited response truncated and the
/// rest dropped;
/// another network and TCP are answered in full meanwhile.
#[test]
fn a_burst_is_held_to_the_rate_with_slips() {
    let s = server("responses_per_second = 5\nwindow = 1\nslip = 2");
    let t = burst(&s, "127.0.0.1", "app.gslb.example.org.", 40);
    assert!((5..=15).contains(&t.full), "{t:?}");
    let limited = 40 - t.full;
    assert!(t.slipped.abs_diff(limited / 2) <= 1, "every second limited response slips: {t:?}");
    assert_eq!(t.full + t.slipped + t.silent, 40);
    // Another /24 has its own account; TCP is never limited.
    assert_eq!(burst(&s, "127.0.1.1", "app.gslb.example.org.", 5), Tally { full: 5, slipped: 0, silent: 0 });
    for _ in 0..10 {
        assert_eq!(s.tcp_query(&query("app.gslb.example.org.", RecordType::A)).answers.len(), 2);
    }
    assert!(metric(&s, "gslbd_rrl_limited_total{class=\"answer\",action=\"dropped\"}") >= 10.0);
    assert!(metric(&s, "gslbd_rrl_limited_total{class=\"answer\",action=\"slipped\"}") >= 10.0);
    assert!(s.wait_log("response rate limiting").is_some());
}

/// slip = 1: every limited response is truncated, none dropped; NXDOMAIN for different
/// names in one zone share one account.
#[test]
fn slip_one_truncates_every_limited_response_and_nxdomains_share_the_zone() {
    let s = server("responses_per_second = 5\nwindow = 1\nslip = 1");
    let t = burst(&s, "127.0.0.1", "app.gslb.example.org.", 20);
    assert_eq!(t.silent, 0, "{t:?}");
    assert!(t.slipped >= 10, "{t:?}");
    let sock = UdpSocket::bind(("127.0.3.1", 0)).unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut truncated = 0;
    for i in 0..20 {
        let q = query(&format!("nope{i}.gslb.example.org."), RecordType::A);
        sock.send_to(&q.to_vec().unwrap(), s.addr).unwrap();
        let mut buf = [0u8; 4096];
        let (len, _) = sock.recv_from(&mut buf).unwrap();
        let m = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        truncated += usize::from(m.metadata.truncation);
    }
    assert!(truncated >= 10, "NXDOMAINs of one zone share an account: {truncated} truncated");
}

/// Exempt networks are never limited; log_only counts but answers everything.
#[test]
fn exempt_networks_and_log_only() {
    let s = server("responses_per_second = 5\nwindow = 1\nexempt = [\"127.0.2.0/24\"]");
    assert_eq!(burst(&s, "127.0.2.9", "app.gslb.example.org.", 30), Tally { full: 30, slipped: 0, silent: 0 });
    let s = server("responses_per_second = 5\nwindow = 1\nlog_only = true");
    assert_eq!(burst(&s, "127.0.0.1", "app.gslb.example.org.", 30), Tally { full: 30, slipped: 0, silent: 0 });
    assert!(metric(&s, "gslbd_rrl_limited_total{class=\"answer\",action=\"logged\"}") >= 20.0);
    assert!(s.wait_log("would have been limited").is_some());
}

/// A reload (a new snapshot) keeps the accounts: a network over its rate stays limited.
#[test]
fn accounts_survive_a_reload() {
    let s = server("responses_per_second = 2\nwindow = 30\nslip = 0");
    let first = burst(&s, "127.0.0.1", "app.gslb.example.org.", 80);
    assert!(first.full <= 66 && first.silent >= 14, "{first:?}");
    let mark = s.log_len();
    s.signal("HUP");
    s.wait_log_after("config reloaded", mark).expect("reloaded");
    let after = burst(&s, "127.0.0.1", "app.gslb.example.org.", 10);
    assert!(after.silent >= 6, "still limited after the reload: {after:?}");
}
