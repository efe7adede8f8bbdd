//! Health-check kinds against real servers on loopback: gRPC (tonic-health's server, over
//! plaintext HTTP/2 and TLS), DNS (a small responder), HTTP with headers at another address
//! than the one answered, ICMP (inside a network namespace the test makes), and the config
//! errors of keys given to the wrong kind of check.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use tonic_health::ServingStatus;

use crate::harness::*;

fn pool_zone(pool: &str) -> String {
    format!(
        "[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n{pool}"
    )
}

/// A grpc.health.v1 server (tonic-health's own) on `ip`, over TLS when `tls`; the test sets
/// the status of service "db".
struct GrpcHealth {
    reporter: tonic_health::server::HealthReporter,
    port: u16,
    rt: tokio::runtime::Runtime,
}

impl GrpcHealth {
    fn start(ip: &str, tls: bool) -> GrpcHealth {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (reporter, service) = tonic_health::server::health_reporter();
        let listener = rt.block_on(tokio::net::TcpListener::bind(format!("{ip}:0"))).unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tls.then(|| {
            let cert = rcgen::generate_simple_self_signed(vec!["grpc.test".to_string()]).unwrap();
            let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
            let mut config = tokio_rustls::rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![cert.cert.der().clone()], key)
                .unwrap();
            config.alpn_protocols = vec![b"h2".to_vec()];
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let (service, acceptor) = (service.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let service = hyper_util::service::TowerToHyperService::new(service);
                    let http2 = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
                    match acceptor {
                        None => {
                            let _ = http2.serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => {
                            let Ok(tls) = acceptor.accept(tcp).await else { return };
                            let _ = http2.serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
                        }
                    }
                });
            }
        });
        let g = GrpcHealth { reporter, port, rt };
        g.set(ServingStatus::Serving);
        g
    }

    fn set(&self, status: ServingStatus) {
        self.rt.block_on(self.reporter.set_service_status("db", status));
    }
}

fn grpc_pool(port: u16, extra: &str) -> String {
    format!(
        "[[zone.pool]]\nname = \"db\"\nttl = 5\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"grpc\"\nport = {port}\nservice = \"db\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n{extra}\
         [[zone.pool.member]]\nname = \"d1\"\nipv4 = [\"127.0.0.2\"]\n"
    )
}

/// A gRPC health server switching to NOT_SERVING takes its member out, with the status as
/// the reason; SERVING brings it back. Plaintext HTTP/2.
#[test]
fn grpc_checks_follow_the_health_service() {
    let server = GrpcHealth::start("127.0.0.2", false);
    let s = Server::start(&config("", &pool_zone(&grpc_pool(server.port, ""))));
    s.wait_dns("db.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.2"]);
    server.set(ServingStatus::NotServing);
    s.wait_dns("db.gslb.example.org.", RecordType::A, |m| answers(m).is_empty());
    let line = s.wait_log("health state changed").unwrap();
    assert!(line.contains("reason=grpc NOT_SERVING"), "{line}");
    server.set(ServingStatus::Serving);
    s.wait_dns("db.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.2"]);
}

/// gRPC over TLS: with `tls_verify = false` a self-signed server is probed; with
/// verification the same server is down because its certificate is not trusted.
#[test]
fn grpc_checks_over_tls() {
    let server = GrpcHealth::start("127.0.0.2", true);
    let extra = "tls = true\ntls_verify = false\nhost = \"grpc.test\"\n";
    let s = Server::start(&config("", &pool_zone(&grpc_pool(server.port, extra))));
    s.wait_dns("db.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.2"]);
    server.set(ServingStatus::NotServing);
    s.wait_dns("db.gslb.example.org.", RecordType::A, |m| answers(m).is_empty());
    server.set(ServingStatus::Serving);
    s.wait_dns("db.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.2"]);
    drop(s);
    let verified = grpc_pool(server.port, "tls = true\nhost = \"grpc.test\"\ninitial = \"up\"\n");
    let s = Server::start(&config("", &pool_zone(&verified)));
    s.wait_dns("db.gslb.example.org.", RecordType::A, |m| answers(m).is_empty());
    let line = s.wait_log("health state changed").unwrap();
    assert!(line.to_ascii_lowercase().contains("certificate"), "{line}");
}

/// A DNS responder on `ip` (UDP and TCP) answering `health.check.` A with 192.0.2.7 while
/// healthy and SERVFAIL while not.
fn dns_responder(ip: &str, healthy: Arc<AtomicBool>) -> u16 {
    fn answer(query: &[u8], healthy: bool) -> Option<Vec<u8>> {
        let q = Message::from_vec(query).ok()?;
        let mut r = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
        r.metadata.authoritative = true;
        r.queries = q.queries.clone();
        if healthy {
            let name = q.queries.first()?.name().clone();
            r.answers.push(Record::from_rdata(name, 30, RData::A("192.0.2.7".parse().ok()?)));
        } else {
            r.metadata.response_code = ResponseCode::ServFail;
        }
        r.to_vec().ok()
    }
    let udp = UdpSocket::bind(format!("{ip}:0")).unwrap();
    let port = udp.local_addr().unwrap().port();
    let tcp = std::net::TcpListener::bind(format!("{ip}:{port}")).unwrap();
    let flag = Arc::clone(&healthy);
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            if let Some(r) = answer(&buf[..n], flag.load(Ordering::Relaxed)) {
                let _ = udp.send_to(&r, from);
            }
        }
    });
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in tcp.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut len = [0u8; 2];
            if conn.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0; u16::from_be_bytes(len) as usize];
            if conn.read_exact(&mut q).is_err() {
                continue;
            }
            if let Some(r) = answer(&q, healthy.load(Ordering::Relaxed)) {
                let mut framed = (r.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&r);
                let _ = conn.write_all(&framed);
            }
        }
    });
    port
}

/// A DNS check asks its name and expects NOERROR with the value; a SERVFAIL takes the member
/// out with the rcode as the reason, over UDP and over TCP; an answer without the expected
/// value is down too.
#[test]
fn dns_checks_ask_and_expect() {
    let healthy = Arc::new(AtomicBool::new(true));
    let port = dns_responder("127.0.0.2", Arc::clone(&healthy));
    let pool = |name: &str, transport: &str, want: &str| {
        format!(
            "[[zone.pool]]\nname = \"{name}\"\nttl = 5\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"dns\"\nport = {port}\nquery = \"health.check.\"\ntransport = \"{transport}\"\nexpect_answer = \"{want}\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n\
             [[zone.pool.member]]\nname = \"r1\"\nipv4 = [\"127.0.0.2\"]\n"
        )
    };
    let pools = [pool("udp", "udp", "192.0.2.7"), pool("tcp", "tcp", "192.0.2.7"), pool("other", "udp", "192.0.2.8")];
    let s = Server::start(&config("", &pool_zone(&pools.concat())));
    for name in ["udp", "tcp"] {
        s.wait_dns(&format!("{name}.gslb.example.org."), RecordType::A, |m| answers(m) == ["127.0.0.2"]);
    }
    s.wait_dns("other.gslb.example.org.", RecordType::A, |m| answers(m).is_empty());
    let line = s.wait_log("health state changed").unwrap();
    assert!(line.contains(r#"reason=dns answer does not contain "192.0.2.8""#), "{line}");
    let skip = s.log_len();
    healthy.store(false, Ordering::Relaxed);
    for name in ["udp", "tcp"] {
        s.wait_dns(&format!("{name}.gslb.example.org."), RecordType::A, |m| answers(m).is_empty());
    }
    let line = s.wait_log_after("reason=dns rcode SERVFAIL", skip).unwrap();
    assert!(line.contains("health state changed"), "{line}");
    healthy.store(true, Ordering::Relaxed);
    for name in ["udp", "tcp"] {
        s.wait_dns(&format!("{name}.gslb.example.org."), RecordType::A, |m| answers(m) == ["127.0.0.2"]);
    }
}

/// `address` and `port` probe somewhere other than the answered address (a sidecar), and
/// `headers` go with the request: the member 127.0.0.2 follows the endpoint on 127.0.0.3,
/// which answers 200 only when the header is present.
#[test]
fn checks_probe_another_address_with_headers() {
    use axum::http::{HeaderMap, StatusCode};
    let up = Arc::new(AtomicBool::new(true));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.3:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let flag = Arc::clone(&up);
    let app = axum::Router::new().route(
        "/ready",
        axum::routing::get(move |headers: HeaderMap| {
            let flag = Arc::clone(&flag);
            async move {
                let token = headers.get("x-health-token").and_then(|v| v.to_str().ok());
                match (token, flag.load(Ordering::Relaxed)) {
                    (Some("s3cret"), true) => StatusCode::OK,
                    (Some("s3cret"), false) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::FORBIDDEN,
                }
            }
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await });
    let pool = |name: &str, token: &str| {
        format!(
            "[[zone.pool]]\nname = \"{name}\"\nttl = 5\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"http\"\naddress = \"127.0.0.3\"\nport = {port}\npath = \"/ready\"\nheaders = {{ X-Health-Token = \"{token}\" }}\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n\
             [[zone.pool.member]]\nname = \"a1\"\nipv4 = [\"127.0.0.2\"]\n"
        )
    };
    let s = Server::start(&config("", &pool_zone(&[pool("app", "s3cret"), pool("wrong", "nope")].concat())));
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.2"]);
    s.wait_dns("wrong.gslb.example.org.", RecordType::A, |m| answers(m).is_empty());
    let line = s.wait_log("health state changed").unwrap();
    assert!(line.contains("status 403"), "{line}");
    up.store(false, Ordering::Relaxed);
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m).is_empty());
    up.store(true, Ordering::Relaxed);
    s.wait_dns("app.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.2"]);
}

/// Keys of one kind of check given to another, a gRPC check without a port, a DNS check
/// without a query, bad values: `gslbd check` names file, line and key.
#[test]
fn check_keys_are_validated_per_kind() {
    let cases = [
        ("type = \"http\"\nservice = \"db\"\n", "check.service: is for type = \"grpc\" checks, not \"http\""),
        ("type = \"grpc\"\n", "check.port: a gRPC check needs a port"),
        ("type = \"icmp\"\nport = 80\n", "check.port: ICMP checks have no port"),
        ("type = \"dns\"\n", "check.query: a DNS check needs the name it asks"),
        ("type = \"dns\"\nquery = \"x.\"\nexpect_rcode = \"NOPE\"\n", "check.expect_rcode: \"NOPE\" is not an rcode"),
        (
            "type = \"dns\"\nquery = \"x.\"\nquery_type = \"BOGUS\"\n",
            "check.query_type: \"BOGUS\" is not a record type",
        ),
        ("type = \"tcp\"\nquery = \"x.\"\n", "check.query: is for type = \"dns\" checks, not \"tcp\""),
        ("address = \"10.0.0.999\"\n", "check.address: \"10.0.0.999\" is not an IP address"),
        ("headers = { \"bad header\" = \"x\" }\n", "is not an HTTP header name"),
        ("headers = { Host = \"x\" }\n", "set the Host header with check.host"),
        (
            "type = \"icmp\"\nheaders = { X = \"y\" }\n",
            "check.headers: is for type = \"http\" or \"https\" or \"grpc\" checks",
        ),
        ("type = \"ping\"\n", "check.type: \"ping\" is not one of http, https, tcp, grpc, icmp, dns, none"),
    ];
    for (check, want) in cases {
        let pool = format!(
            "[[zone.pool]]\nname = \"x\"\n[zone.pool.check]\n{check}[[zone.pool.member]]\nname = \"m\"\nipv4 = [\"127.0.0.2\"]\n"
        );
        let (ok, err) = gslbd_check(&config("", &pool_zone(&pool)));
        assert!(!ok && err.contains(want) && err.contains("gslbd.toml:"), "{check}: {err}");
    }
}

/// A network namespace of the test's own (removed on drop) with loopback up and a veth pair
/// inside it: v0 on 198.18.0.1/24, its peer v1 with no address, so other addresses of that
/// network take packets and never answer.
struct Namespace(String);

impl Namespace {
    fn create() -> Option<Namespace> {
        let name = format!("gslbd-icmp-{}", std::process::id());
        let ip = |args: &[&str]| {
            std::process::Command::new("ip").args(args).output().map(|o| o.status.success()).unwrap_or(false)
        };
        if !ip(&["netns", "add", &name]) {
            return None;
        }
        let ns = Namespace(name);
        let n = ns.0.as_str();
        let steps: [&[&str]; 5] = [
            &["-n", n, "link", "set", "lo", "up"],
            &["-n", n, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
            &["-n", n, "addr", "add", "198.18.0.1/24", "dev", "v0"],
            &["-n", n, "link", "set", "v0", "up"],
            &["-n", n, "link", "set", "v1", "up"],
        ];
        steps.iter().all(|s| ip(s)).then_some(ns)
    }

    /// Sets `net.ipv4.ping_group_range` inside the namespace (who may open ICMP datagram
    /// sockets there).
    fn ping_group_range(&self, range: &str) {
        let ok = std::process::Command::new("ip")
            .args(["netns", "exec", &self.0, "sysctl", "-qw", &format!("net.ipv4.ping_group_range={range}")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "sysctl in the namespace");
    }

    /// Moves the calling thread into the namespace: sockets it opens and processes it
    /// starts from then on are inside it.
    fn enter(&self) {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(format!("/var/run/netns/{}", self.0)).unwrap();
        // SAFETY: setns with a valid namespace file descriptor changes only this thread's
        // network namespace; the descriptor outlives the call.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// ICMP echo: 127.0.0.1 and ::1 answer, an address behind the namespace's veth never does
/// ("icmp timeout"). Both socket kinds: raw (ping sockets not allowed, root has
/// CAP_NET_RAW) and unprivileged ICMP datagram sockets (allowed by ping_group_range).
/// Inside a namespace the test makes, so no echo leaves it; skipped with a message where
/// namespaces cannot be made.
#[test]
fn icmp_checks_echo() {
    let Some(ns) = Namespace::create() else {
        eprintln!("skipped: cannot create a network namespace here (needs root and iproute2)");
        return;
    };
    for (range, kind) in [("1 0", "RAW"), ("0 2147483647", "DGRAM")] {
        ns.ping_group_range(range);
        let ns = &ns;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    ns.enter();
                    let pool = "[[zone.pool]]\nname = \"edge\"\nttl = 5\nselect = \"all\"\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"icmp\"\ninterval = \"300ms\"\ntimeout = \"200ms\"\nrise = 1\nfall = 1\ninitial = \"down\"\n\
                         [[zone.pool.member]]\nname = \"lo\"\nipv4 = [\"127.0.0.1\"]\nipv6 = [\"::1\"]\n\
                         [[zone.pool.member]]\nname = \"gone\"\nipv4 = [\"198.18.0.2\"]\ninitial = \"up\"\n";
                    let pool = pool.replace("initial = \"up\"\n", "[zone.pool.member.check]\ninitial = \"up\"\n");
                    let s = Server::start(&config("", &pool_zone(&pool)));
                    s.wait_dns("edge.gslb.example.org.", RecordType::A, |m| answers(m) == ["127.0.0.1"]);
                    s.wait_dns("edge.gslb.example.org.", RecordType::AAAA, |m| answers(m) == ["::1"]);
                    let line = s.wait_log("198.18.0.2").unwrap();
                    assert!(line.contains("reason=icmp timeout"), "{line}");
                    let opened = s.wait_log("ICMP checks socket opened").unwrap();
                    assert!(opened.contains(kind), "{kind}: {opened}");
                })
                .join()
                .unwrap();
        });
    }
}
