//! TCP (RFC 7766): framing, pipelining, idle timeout, connection cap, and isolation of slow
//! clients from UDP.

use std::io::{Read, Write};
use std::net::TcpStream;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::harness::*;

/// Several queries written back to back on one connection are all answered, in order.
#[test]
fn pipelined_queries_are_answered_in_order() {
    let s = Server::start(&config("", ZONE));
    let mut conn = s.tcp();
    let names = ["app.gslb.example.org.", "www.gslb.example.org.", "nope.gslb.example.org."];
    let queries: Vec<Message> = names.iter().map(|n| query(n, RecordType::A)).collect();
    let mut batch = Vec::new();
    for q in &queries {
        let bytes = q.to_vec().unwrap();
        batch.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        batch.extend_from_slice(&bytes);
    }
    conn.write_all(&batch).unwrap();
    for q in &queries {
        let m = Message::from_vec(&tcp_read(&mut conn).expect("answer")).unwrap();
        assert_eq!(m.metadata.id, q.metadata.id);
        assert_eq!(m.queries[0].name(), q.queries[0].name());
    }
}

/// An idle connection is closed by the server after `tcp_idle_timeout`.
#[test]
fn idle_connection_is_closed() {
    let s = Server::start(&config("tcp_idle_timeout = \"200ms\"", ZONE));
    let mut conn = s.tcp();
    tcp_send(&mut conn, &query("app.gslb.example.org.", RecordType::A).to_vec().unwrap());
    assert!(tcp_read(&mut conn).is_some());
    // The read returns when the server closes (the harness read timeout is the deadline).
    let mut buf = [0u8; 16];
    let n = conn.read(&mut buf).expect("server closes the idle connection before the deadline");
    assert_eq!(n, 0);
}

/// At `max_tcp_connections` the connection idle longest is closed to make room for a new
/// one (RFC 7766 §6.2.3); the others keep working and UDP is unaffected.
#[test]
fn at_the_cap_the_longest_idle_connection_makes_room() {
    let zone = format!("{}{ZONE}", crate::admin_client::admin_section(""));
    let s = Server::start(&config("max_tcp_connections = 2\nmax_tcp_per_client = 10", &zone));
    let ask = |c: &mut TcpStream| {
        tcp_send(c, &query("app.gslb.example.org.", RecordType::A).to_vec().unwrap());
        tcp_read(c)
    };
    let mut first = s.tcp();
    assert!(ask(&mut first).is_some());
    let mut second = s.tcp();
    assert!(ask(&mut second).is_some());
    let mut third = s.tcp();
    assert!(ask(&mut third).is_some(), "the new connection is served");
    assert!(ask(&mut first).is_none(), "the longest idle one was closed");
    assert!(ask(&mut second).is_some() && ask(&mut third).is_some());
    let m = s.udp(&query("app.gslb.example.org.", RecordType::A));
    assert_eq!(m.answers.len(), 2);
    let metrics = crate::admin_client::Client::for_server(&s).text("/metrics");
    assert!(metrics.contains("gslbd_tcp_connections_total{result=\"evicted\"} 1"), "{metrics}");
}

/// Slowloris from one address (50 connections sending half a message each) holds at most
/// `max_tcp_per_client` of them and never a place another client needs; the caps are
/// server-wide, across listen addresses.
#[test]
fn one_client_cannot_hold_the_connections_of_others() {
    let zone = format!("{}{ZONE}", crate::admin_client::admin_section(""));
    let s = Server::start(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\", \"127.0.0.4:0\"]\nudp_workers = 1\nmax_tcp_connections = 20\nmax_tcp_per_client = 8\n{zone}"
    ));
    let second: std::net::SocketAddr = s
        .wait_log("listening addr=127.0.0.4:")
        .and_then(|l| l.split("addr=").nth(1)?.split_whitespace().next()?.parse().ok())
        .expect("the second listen address");
    let from = |source: &str, to: std::net::SocketAddr| {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&std::net::SocketAddr::new(source.parse().unwrap(), 0).into()).unwrap();
        sock.connect(&to.into()).unwrap();
        let c: TcpStream = sock.into();
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        c
    };
    let mut held = Vec::new();
    for i in 0..50 {
        let mut c = from("127.0.0.2", if i % 2 == 0 { s.addr } else { second });
        c.write_all(&[0, 40, 0x12]).unwrap();
        held.push(c);
    }
    // Another client on either address is answered at once.
    for to in [s.addr, second] {
        let mut c = from("127.0.0.3", to);
        tcp_send(&mut c, &query("app.gslb.example.org.", RecordType::A).to_vec().unwrap());
        let reply = Message::from_vec(&tcp_read(&mut c).expect("answered")).unwrap();
        assert_eq!(reply.answers.len(), 2);
    }
    let client = crate::admin_client::Client::for_server(&s);
    let open: f64 = client
        .text("/metrics")
        .lines()
        .find_map(|l| l.strip_prefix("gslbd_tcp_open ")?.parse().ok())
        .expect("gslbd_tcp_open");
    assert!(open <= 8.0 + 2.0, "the slow client holds at most its 8: {open} open");
    drop(held);
}

/// A client that stalls mid-message holds neither UDP nor other TCP clients.
#[test]
fn stalled_client_does_not_block_others() {
    let s = Server::start(&config("", ZONE));
    let mut stalled = s.tcp();
    stalled.write_all(&[0, 40, 0x12]).unwrap();
    for _ in 0..5 {
        let m = s.udp(&query("app.gslb.example.org.", RecordType::A));
        assert_eq!(m.answers.len(), 2);
    }
    let m = s.tcp_query(&query("app.gslb.example.org.", RecordType::AAAA));
    assert_eq!(answers(&m), ["2001:db8::10"]);
}
