//! TCP (RFC 7766): framing, pipelining, idle timeout, connection cap, and isolation of slow
//! clients from UDP.

use std::io::{Read, Write};

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

/// Beyond `max_tcp_connections` new connections are closed unanswered; UDP is unaffected.
#[test]
fn connection_cap_is_enforced() {
    let s = Server::start(&config("max_tcp_connections = 2", ZONE));
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = s.tcp();
        tcp_send(&mut c, &query("app.gslb.example.org.", RecordType::A).to_vec().unwrap());
        assert!(tcp_read(&mut c).is_some(), "connections under the cap are served");
        held.push(c);
    }
    let mut extra = s.tcp();
    tcp_send(&mut extra, &query("app.gslb.example.org.", RecordType::A).to_vec().unwrap());
    assert!(tcp_read(&mut extra).is_none(), "the connection over the cap is closed");
    let m = s.udp(&query("app.gslb.example.org.", RecordType::A));
    assert_eq!(m.answers.len(), 2);
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
