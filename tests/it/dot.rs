//! DNS over TLS (RFC 7858) with a real TLS client (rustls, trusting a certificate made in
//! the test): the answers TCP gives, pipelined queries answered in order, ALPN "dot", a
//! certificate reloaded on SIGHUP, and configuration errors for missing or broken files.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::harness::*;

/// A certificate for 127.0.0.1 and dns.test, written as cert.pem and key.pem in `dir`;
/// returns its DER.
fn certificate(dir: &std::path::Path) -> CertificateDer<'static> {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "dns.test".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    cert.cert.der().clone()
}

/// gslbd with DNS over TLS on an ephemeral port (files in `dir`); returns it and that port.
fn server(dir: &std::path::Path) -> (Server, SocketAddr) {
    server_with(dir, "")
}

/// [`server`] with more `[server]` keys.
fn server_with(dir: &std::path::Path, more: &str) -> (Server, SocketAddr) {
    let extra = format!(
        "tls_listen = [\"127.0.0.1:0\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n{more}",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    let s = Server::start(&config(&extra, ZONE));
    let addr = s
        .wait_log("listening for DNS over TLS")
        .and_then(|l| l.split("addr=").nth(1)?.split_whitespace().next()?.parse().ok())
        .expect("the DNS-over-TLS address");
    (s, addr)
}

/// A TLS session to `addr` trusting only `root`, offering ALPN "dot".
fn connect(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
) -> std::io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let mut config = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"dot".to_vec()];
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("dns.test").unwrap()).unwrap();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(DEADLINE))?;
    let mut tls = StreamOwned::new(conn, tcp);
    // Drive the handshake now, so a certificate error shows here.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

fn read_message(tls: &mut impl Read) -> Message {
    let mut len = [0u8; 2];
    tls.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    tls.read_exact(&mut buf).unwrap();
    Message::from_vec(&buf).unwrap()
}

fn framed(m: &Message) -> Vec<u8> {
    let bytes = m.to_vec().unwrap();
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&bytes);
    out
}

/// Three queries written at once over one session come back in order, as over TCP, with
/// ALPN "dot" agreed.
#[test]
fn queries_over_tls_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = certificate(dir.path());
    let (s, addr) = server(dir.path());
    let mut tls = connect(addr, &root).expect("TLS session");
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"dot"[..]));
    let questions = [
        ("app.gslb.example.org.", RecordType::A),
        ("app.gslb.example.org.", RecordType::AAAA),
        ("nope.gslb.example.org.", RecordType::A),
    ];
    let mut batch = Vec::new();
    for (i, (name, rtype)) in questions.iter().enumerate() {
        let mut q = query(name, *rtype);
        q.metadata.id = 100 + i as u16;
        batch.extend_from_slice(&framed(&q));
    }
    tls.write_all(&batch).unwrap();
    tls.flush().unwrap();
    let replies: Vec<Message> = (0..3).map(|_| read_message(&mut tls)).collect();
    assert_eq!(replies.iter().map(|m| m.metadata.id).collect::<Vec<_>>(), [100, 101, 102]);
    let over_tcp = s.tcp_query(&query("app.gslb.example.org.", RecordType::A));
    assert_eq!(answers(&replies[0]), answers(&over_tcp));
    assert_eq!(answers(&replies[1]), ["2001:db8::10"]);
    assert_eq!(replies[2].metadata.response_code, ResponseCode::NXDomain);
}

/// SIGHUP loads a replaced certificate: new sessions get it, a client trusting only the
/// old one is refused.
#[test]
fn the_certificate_is_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let old = certificate(dir.path());
    let (s, addr) = server(dir.path());
    connect(addr, &old).expect("the first certificate");
    let new = certificate(dir.path());
    let mark = s.log_len();
    s.signal("HUP");
    s.wait_log_after("DNS over TLS certificate reloaded", mark).expect("reloaded");
    let mut tls = connect(addr, &new).expect("the new certificate");
    tls.write_all(&framed(&query("app.gslb.example.org.", RecordType::A))).unwrap();
    assert_eq!(read_message(&mut tls).answers.len(), 2);
    assert!(connect(addr, &old).is_err(), "the old certificate is gone");
}

/// A client that connects and never starts its handshake is closed after `tcp_idle_timeout`
/// (the handshake's limit too), not after a fixed 10 s.
#[test]
fn a_stalled_handshake_ends_at_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path());
    let (_s, addr) = server_with(dir.path(), "tcp_idle_timeout = \"500ms\"");
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    // EOF (or a reset) once the server gives up on the handshake.
    let _ = tcp.read(&mut buf);
    let waited = started.elapsed();
    assert!(waited < std::time::Duration::from_secs(5), "the stalled handshake was held {waited:?}");
}

/// Zone transfers over TLS (XoT, RFC 9103): the DNS-over-TLS listener takes AXFR too, with
/// the same access rules as over TCP; the zone arrives whole, SOA first and last.
#[test]
fn zone_transfers_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let root = certificate(dir.path());
    let extra = format!(
        "tls_listen = [\"127.0.0.1:0\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display()
    );
    let s = Server::start(&config(&extra, &format!("{ZONE}[zone.transfer]\nallow = [\"127.0.0.1\"]\n")));
    let addr: SocketAddr = s
        .wait_log("listening for DNS over TLS")
        .and_then(|l| l.split("addr=").nth(1)?.split_whitespace().next()?.parse().ok())
        .expect("the DNS-over-TLS address");
    let mut tls = connect(addr, &root).expect("TLS session");
    tls.write_all(&framed(&query("gslb.example.org.", RecordType::AXFR))).unwrap();
    tls.flush().unwrap();
    let m = read_message(&mut tls);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.first().map(|r| r.record_type()), Some(RecordType::SOA));
    assert_eq!(m.answers.last().map(|r| r.record_type()), Some(RecordType::SOA));
    let over_tcp = s.tcp_query(&query("gslb.example.org.", RecordType::AXFR));
    assert_eq!(m.answers.len(), over_tcp.answers.len());
    assert!(
        m.answers.iter().any(|r| r.name.to_string() == "app.gslb.example.org." && r.record_type() == RecordType::AAAA)
    );
}
