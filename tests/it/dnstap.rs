//! dnstap: a Frame Streams receiver written here (bidirectional handshake, protobuf decoded
//! with prost from message types declared after dnstap.proto) gets AUTH_QUERY and
//! AUTH_RESPONSE messages for real UDP and TCP queries, over a Unix socket and over TCP;
//! filters apply and reload; a receiver that is missing, late or restarted costs no answer.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::admin_client::{Client, admin_section};
use crate::harness::*;

/// `dnstap.Dnstap` (dnstap.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct Dnstap {
    #[prost(bytes = "vec", optional, tag = "1")]
    identity: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    version: Option<Vec<u8>>,
    #[prost(message, optional, tag = "14")]
    message: Option<TapMessage>,
    /// `Dnstap.Type`: MESSAGE = 1.
    #[prost(int32, required, tag = "15")]
    kind: i32,
}

/// `dnstap.Message` (dnstap.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct TapMessage {
    /// AUTH_QUERY = 1, AUTH_RESPONSE = 2.
    #[prost(int32, required, tag = "1")]
    kind: i32,
    /// INET = 1, INET6 = 2.
    #[prost(int32, optional, tag = "2")]
    socket_family: Option<i32>,
    /// UDP = 1, TCP = 2.
    #[prost(int32, optional, tag = "3")]
    socket_protocol: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    query_address: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    response_address: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "6")]
    query_port: Option<u32>,
    #[prost(uint32, optional, tag = "7")]
    response_port: Option<u32>,
    #[prost(uint64, optional, tag = "8")]
    query_time_sec: Option<u64>,
    #[prost(fixed32, optional, tag = "9")]
    query_time_nsec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "10")]
    query_message: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "12")]
    response_time_sec: Option<u64>,
    #[prost(fixed32, optional, tag = "13")]
    response_time_nsec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "14")]
    response_message: Option<Vec<u8>>,
}

const AUTH_QUERY: i32 = 1;
const AUTH_RESPONSE: i32 = 2;
const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    messages: Mutex<Vec<Dnstap>>,
    /// Writers that completed the handshake.
    opened: AtomicUsize,
    /// Writers that sent STOP (each got FINISH).
    stopped: AtomicUsize,
}

/// A Frame Streams receiver on a Unix socket or a TCP port: one thread accepting writers,
/// one per writer reading its stream.
struct Receiver {
    seen: Arc<Seen>,
    done: Arc<AtomicBool>,
    /// The accepting thread; joined on drop so the listener is closed by then.
    acceptor: Option<std::thread::JoinHandle<()>>,
    /// Open connections, shut down on drop so the writer sees the receiver go.
    conns: Arc<Mutex<Vec<Shutdown>>>,
    _dir: Option<tempfile::TempDir>,
}

/// Shuts one accepted connection down.
type Shutdown = Box<dyn Fn() + Send>;

trait Conn: Read + Write + Send + 'static {}
impl<T: Read + Write + Send + 'static> Conn for T {}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

/// A control frame: escape, length, type, the CONTENT_TYPE field.
fn control(kind: u32) -> Vec<u8> {
    let mut body = kind.to_be_bytes().to_vec();
    if kind == 1 {
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&(CONTENT_TYPE.len() as u32).to_be_bytes());
        body.extend_from_slice(CONTENT_TYPE);
    }
    let mut out = vec![0, 0, 0, 0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads a control frame; returns its type and whether it names dnstap's content type.
fn read_control(r: &mut impl Read) -> std::io::Result<(u32, bool)> {
    let len = read_u32(r)? as usize;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let kind = u32::from_be_bytes(body[..4].try_into().unwrap());
    let names_dnstap = body.windows(CONTENT_TYPE.len()).any(|w| w == CONTENT_TYPE);
    Ok((kind, names_dnstap))
}

/// One writer's stream: READY → ACCEPT, START, data frames, STOP → FINISH.
fn read_stream(mut c: impl Conn, seen: &Seen) -> std::io::Result<()> {
    assert_eq!(read_u32(&mut c)?, 0, "a stream starts with a control frame");
    assert_eq!(read_control(&mut c)?, (4, true), "READY naming protobuf:dnstap.Dnstap");
    c.write_all(&control(1))?;
    assert_eq!(read_u32(&mut c)?, 0);
    assert_eq!(read_control(&mut c)?, (2, true), "START naming protobuf:dnstap.Dnstap");
    seen.opened.fetch_add(1, Ordering::SeqCst);
    loop {
        let len = read_u32(&mut c)? as usize;
        if len == 0 {
            let (kind, _) = read_control(&mut c)?;
            assert_eq!(kind, 3, "only STOP ends a stream");
            c.write_all(&control(5))?;
            seen.stopped.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        let mut frame = vec![0u8; len];
        c.read_exact(&mut frame)?;
        let m = <Dnstap as prost::Message>::decode(&frame[..]).expect("a dnstap.Dnstap");
        seen.messages.lock().unwrap().push(m);
    }
}

impl Receiver {
    fn start(accept: impl Fn() -> Option<(Box<dyn Conn>, Shutdown)> + Send + 'static) -> Receiver {
        let seen = Arc::new(Seen::default());
        let done = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<Shutdown>>> = Arc::default();
        let (s, d, cs) = (Arc::clone(&seen), Arc::clone(&done), Arc::clone(&conns));
        let acceptor = std::thread::spawn(move || {
            while !d.load(Ordering::SeqCst) {
                match accept() {
                    Some((conn, shut)) => {
                        cs.lock().unwrap().push(shut);
                        let s = Arc::clone(&s);
                        std::thread::spawn(move || {
                            let _ = read_stream(conn, &s);
                        });
                    }
                    None => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver { seen, done, acceptor: Some(acceptor), conns, _dir: None }
    }

    /// On a Unix socket in a fresh folder; returns it and its `unix:` sink.
    fn unix() -> (Receiver, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tap.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut r = Receiver::start(move || {
            let (c, _) = listener.accept().ok()?;
            c.set_nonblocking(false).unwrap();
            let shut = c.try_clone().unwrap();
            Some((Box::new(c) as Box<dyn Conn>, Box::new(move || drop(shut.shutdown(std::net::Shutdown::Both)))))
        });
        r._dir = Some(dir);
        (r, format!("unix:{}", path.display()))
    }

    /// On 127.0.0.1:`port` (0: any); returns it and the port.
    fn tcp(port: u16) -> (Receiver, u16) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let r = Receiver::start(move || {
            let (c, _) = listener.accept().ok()?;
            c.set_nonblocking(false).unwrap();
            let shut = c.try_clone().unwrap();
            Some((Box::new(c) as Box<dyn Conn>, Box::new(move || drop(shut.shutdown(std::net::Shutdown::Both)))))
        });
        (r, port)
    }

    fn messages(&self) -> Vec<Dnstap> {
        self.seen.messages.lock().unwrap().clone()
    }

    /// Polls until `pred` holds for the messages so far.
    fn wait(&self, what: &str, pred: impl Fn(&[Dnstap]) -> bool) -> Vec<Dnstap> {
        let end = Instant::now() + DEADLINE;
        loop {
            let got = self.messages();
            if pred(&got) {
                return got;
            }
            assert!(Instant::now() < end, "dnstap: {what}; got {} messages", got.len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        for shut in self.conns.lock().unwrap().iter() {
            shut();
        }
    }
}

fn zone_with_log(log: &str) -> String {
    format!(
        "{}[log]\n{log}\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"\"\"\nns1 60 IN A 192.0.2.53\nwww 60 IN A 192.0.2.80\n\"\"\"\n",
        admin_section("")
    )
}

fn msg(d: &Dnstap) -> &TapMessage {
    d.message.as_ref().expect("a message")
}

/// A query, the bytes sent, and the client's source port, over UDP.
fn udp_exchange(s: &Server, name: &str) -> (Vec<u8>, Message, u16) {
    let sock = udp_socket(Duration::from_secs(5));
    let bytes = query(name, RecordType::A).to_vec().unwrap();
    sock.send_to(&bytes, s.addr).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    (bytes, Message::from_vec(&buf[..n]).unwrap(), sock.local_addr().unwrap().port())
}

/// The message with this kind and query id.
fn find(all: &[Dnstap], kind: i32, id: u16) -> Option<TapMessage> {
    all.iter().map(msg).find(|m| m.kind == kind && wire_id(m) == Some(id)).cloned()
}

fn wire_id(m: &TapMessage) -> Option<u16> {
    let wire = m.query_message.as_ref().or(m.response_message.as_ref())?;
    Some(u16::from_be_bytes([wire[0], wire[1]]))
}

fn seconds_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn metric(s: &Server, line_start: &str) -> f64 {
    let text = Client::for_server(s).text("/metrics");
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
}

/// A UDP and a TCP query each give an AUTH_QUERY and an AUTH_RESPONSE with the addresses,
/// ports, times and wire messages of the real exchange; SIGTERM closes the stream with
/// STOP, answered by FINISH.
#[test]
fn exchanges_reach_a_unix_socket_receiver() {
    let (rx, sink) = Receiver::unix();
    let mut s = Server::start(&config(
        "",
        &zone_with_log(&format!("dnstap = \"{sink}\"\ndnstap_identity = \"ns-test\"\ndnstap_version = \"v-test\"")),
    ));
    let before = seconds_now();
    let (sent, reply, client_port) = udp_exchange(&s, "www.gslb.example.org.");
    assert_eq!(answers(&reply), ["192.0.2.80"]);
    let id = reply.metadata.id;
    let all = rx
        .wait("UDP query and response", |m| find(m, AUTH_QUERY, id).is_some() && find(m, AUTH_RESPONSE, id).is_some());
    let q = find(&all, AUTH_QUERY, id).unwrap();
    let r = find(&all, AUTH_RESPONSE, id).unwrap();
    for m in [&q, &r] {
        assert_eq!((m.socket_family, m.socket_protocol), (Some(1), Some(1)), "INET, UDP");
        assert_eq!(m.query_address.as_deref(), Some(&[127, 0, 0, 1][..]));
        assert_eq!(m.response_address.as_deref(), Some(&[127, 0, 0, 1][..]));
        assert_eq!(m.query_port, Some(u32::from(client_port)));
        assert_eq!(m.response_port, Some(u32::from(s.addr.port())));
        let t = m.query_time_sec.unwrap();
        assert!(t >= before && t <= seconds_now(), "query time {t}");
        assert!(m.query_time_nsec.unwrap() < 1_000_000_000);
    }
    assert_eq!(q.query_message.as_deref(), Some(&sent[..]), "the query as sent");
    assert!(q.response_message.is_none());
    let logged = Message::from_vec(r.response_message.as_ref().unwrap()).unwrap();
    assert_eq!(logged, reply, "the response as received");
    assert!(
        (r.response_time_sec.unwrap(), r.response_time_nsec.unwrap())
            >= (r.query_time_sec.unwrap(), r.query_time_nsec.unwrap())
    );
    let first = all.iter().find(|d| msg(d).kind == AUTH_QUERY).unwrap();
    assert_eq!(
        (first.kind, first.identity.as_deref(), first.version.as_deref()),
        (1, Some(&b"ns-test"[..]), Some(&b"v-test"[..]))
    );

    // TCP: protocol 2, the client's port, the message without its length prefix.
    let mut tcp = s.tcp();
    let tcp_port = tcp.local_addr().unwrap().port();
    let tq = query("nope.gslb.example.org.", RecordType::A);
    tcp_send(&mut tcp, &tq.to_vec().unwrap());
    let treply = Message::from_vec(&tcp_read(&mut tcp).unwrap()).unwrap();
    assert_eq!(treply.metadata.response_code, ResponseCode::NXDomain);
    let all = rx.wait("TCP response", |m| find(m, AUTH_RESPONSE, treply.metadata.id).is_some());
    let tr = find(&all, AUTH_RESPONSE, treply.metadata.id).unwrap();
    assert_eq!((tr.socket_protocol, tr.query_port), (Some(2), Some(u32::from(tcp_port))));
    assert_eq!(Message::from_vec(tr.response_message.as_ref().unwrap()).unwrap(), treply);
    assert!(find(&all, AUTH_QUERY, treply.metadata.id).is_some());

    assert!(metric(&s, "gslbd_dnstap_messages_total{outcome=\"written\"}") >= 4.0);
    assert_eq!(metric(&s, "gslbd_dnstap_connected "), 1.0);
    assert_eq!(metric(&s, "gslbd_dnstap_messages_total{outcome=\"dropped\"}"), 0.0);
    s.signal("TERM");
    assert_eq!(s.wait_exit(DEADLINE), Some(0));
    assert_eq!(rx.seen.stopped.load(Ordering::SeqCst), 1, "STOP sent and FINISH read at shutdown");
}

/// `dnstap_responses_only` and `dnstap_rcodes` keep only the NXDOMAIN responses; a reload
/// without them logs queries and every RCODE at once, over the same TCP connection to the
/// receiver.
#[test]
fn filters_choose_messages_and_reload() {
    let (rx, port) = Receiver::tcp(0);
    let filtered = zone_with_log(&format!(
        "dnstap = \"tcp:127.0.0.1:{port}\"\ndnstap_responses_only = true\ndnstap_rcodes = [\"NXDOMAIN\"]"
    ));
    let s = Server::start(&config("", &filtered));
    // One TCP connection: its exchanges reach the writer in order.
    let mut tcp = s.tcp();
    let mut ask = |name: &str| {
        tcp_send(&mut tcp, &query(name, RecordType::A).to_vec().unwrap());
        Message::from_vec(&tcp_read(&mut tcp).unwrap()).unwrap()
    };
    let hit = ask("www.gslb.example.org.");
    let miss = ask("nope.gslb.example.org.");
    let all = rx.wait("the NXDOMAIN response", |m| find(m, AUTH_RESPONSE, miss.metadata.id).is_some());
    assert_eq!(all.len(), 1, "only the NXDOMAIN response: {all:?}");
    assert!(find(&all, AUTH_RESPONSE, hit.metadata.id).is_none());

    std::fs::write(s.config_path(), config("", &zone_with_log(&format!("dnstap = \"tcp:127.0.0.1:{port}\"")))).unwrap();
    let mark = s.log_len();
    s.signal("HUP");
    s.wait_log_after("config reloaded", mark).expect("reloaded");
    let again = ask("www.gslb.example.org.");
    let all = rx.wait("query and response after the reload", |m| {
        find(m, AUTH_QUERY, again.metadata.id).is_some() && find(m, AUTH_RESPONSE, again.metadata.id).is_some()
    });
    assert_eq!(all.len(), 3);
    assert_eq!(rx.seen.opened.load(Ordering::SeqCst), 1, "the reload kept the connection");
}

/// No receiver at first: DNS answers and the messages wait in the queue; the receiver
/// appears and gets them; it goes away and a new one on the same port is reconnected to.
#[test]
fn a_late_or_restarted_receiver_is_reconnected() {
    let port = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let s = Server::start(&config("", &zone_with_log(&format!("dnstap = \"tcp:127.0.0.1:{port}\""))));
    let (_, early, _) = udp_exchange(&s, "www.gslb.example.org.");
    assert_eq!(answers(&early), ["192.0.2.80"]);
    assert_eq!(metric(&s, "gslbd_dnstap_connected "), 0.0);

    let (rx, _) = Receiver::tcp(port);
    rx.wait("the early exchange, queued while no receiver listened", |m| {
        find(m, AUTH_RESPONSE, early.metadata.id).is_some()
    });
    drop(rx);
    let (rx2, _) = Receiver::tcp(port);
    // The writer notices the lost receiver on a write: keep asking until the new one hears
    // (any exchange: a worker hands its messages over a few milliseconds after the answer).
    let end = Instant::now() + DEADLINE;
    loop {
        let (_, reply, _) = udp_exchange(&s, "www.gslb.example.org.");
        assert_eq!(answers(&reply), ["192.0.2.80"], "DNS answers throughout");
        if rx2.messages().iter().any(|d| msg(d).kind == AUTH_RESPONSE) {
            break;
        }
        assert!(Instant::now() < end, "never reconnected:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(metric(&s, "gslbd_dnstap_connects_total") >= 2.0);
    assert!(s.log_text().contains("dnstap connection lost"), "{}", s.log_text());
}

/// With the receiver absent and a queue of 64 messages, 100 exchanges are all answered; the
/// messages beyond the queue are dropped and counted.
#[test]
fn a_full_queue_drops_messages_not_answers() {
    let dir = tempfile::tempdir().unwrap();
    let sink = format!("unix:{}", dir.path().join("nobody.sock").display());
    let s = Server::start(&config("", &zone_with_log(&format!("dnstap = \"{sink}\"\ndnstap_queue = 64"))));
    for _ in 0..100 {
        let (_, reply, _) = udp_exchange(&s, "www.gslb.example.org.");
        assert_eq!(answers(&reply), ["192.0.2.80"]);
    }
    // The last batch is handed over just after its answer: poll for the count.
    let end = Instant::now() + DEADLINE;
    loop {
        let dropped = metric(&s, "gslbd_dnstap_messages_total{outcome=\"dropped\"}");
        let queued = metric(&s, "gslbd_dnstap_queued ");
        assert!(queued <= 64.0, "queued {queued}");
        if dropped + queued == 200.0 {
            assert!(dropped >= 136.0, "dropped {dropped}");
            break;
        }
        assert!(Instant::now() < end, "every message is queued or counted as dropped: {queued} + {dropped}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(s.log_text().contains("dnstap receiver unavailable"), "{}", s.log_text());
}

/// The reference tools read our stream: Debian's fstrm_capture (the Frame Streams library's
/// receiver) captures it from a Unix socket, and dnstap-ldns decodes the file.
#[test]
fn the_reference_tools_read_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, file) = (dir.path().join("tap.sock"), dir.path().join("capture.fstrm"));
    let mut capture = std::process::Command::new("fstrm_capture")
        .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
        .arg(&sock)
        .arg("-w")
        .arg(&file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("fstrm_capture is installed (.ci/run installs Debian's fstrm-bin)");
    let end = Instant::now() + DEADLINE;
    while !sock.exists() {
        assert!(Instant::now() < end, "fstrm_capture never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut s = Server::start(&config(
        "",
        &zone_with_log(&format!("dnstap = \"unix:{}\"\ndnstap_identity = \"ns-ref\"", sock.display())),
    ));
    let (_, reply, client_port) = udp_exchange(&s, "www.gslb.example.org.");
    assert_eq!(answers(&reply), ["192.0.2.80"]);
    // Stopping gslbd sends STOP; fstrm_capture then closes the file when told to stop.
    s.signal("TERM");
    assert_eq!(s.wait_exit(DEADLINE), Some(0));
    let _ = std::process::Command::new("kill").args(["-TERM", &capture.id().to_string()]).status();
    capture.wait().unwrap();
    let out = std::process::Command::new("dnstap-ldns")
        .arg("-y")
        .arg("-r")
        .arg(&file)
        .output()
        .expect("dnstap-ldns is installed (.ci/run installs Debian's dnstap-ldns)");
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "identity: \"ns-ref\"".to_string(),
        "type: AUTH_QUERY".to_string(),
        "type: AUTH_RESPONSE".to_string(),
        "socket_protocol: UDP".to_string(),
        format!("query_port: {client_port}"),
        format!("response_port: {}", s.addr.port()),
        format!("id: {}", reply.metadata.id),
        "www.gslb.example.org.\t60\tIN\tA\t192.0.2.80".to_string(),
    ] {
        assert!(text.contains(&want), "dnstap-ldns output lacks {want:?}:\n{text}");
    }
}

/// A receiver that completes the handshake and then reads one frame every `pace`, and with
/// `finish` false never answers STOP. Returns its sink; the thread ends with the connection.
fn stubborn_receiver(dir: &std::path::Path, pace: Duration, finish: bool) -> String {
    let path = dir.join("slow.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let Ok((mut c, _)) = listener.accept() else { return };
        let _ = (|| -> std::io::Result<()> {
            read_u32(&mut c)?;
            read_control(&mut c)?;
            c.write_all(&control(1))?;
            read_u32(&mut c)?;
            read_control(&mut c)?;
            loop {
                let len = read_u32(&mut c)? as usize;
                if len == 0 {
                    read_control(&mut c)?;
                    if finish {
                        c.write_all(&control(5))?;
                    }
                    // Holds the connection open without a word.
                    std::thread::sleep(Duration::from_secs(60));
                    return Ok(());
                }
                let mut frame = vec![0u8; len];
                c.read_exact(&mut frame)?;
                std::thread::sleep(pace);
            }
        })();
    });
    format!("unix:{}", path.display())
}

/// Shutdown is bounded whatever the receiver does: one that reads a frame every 10 ms
/// behind a backlog of queries, and one that never answers STOP, both let SIGTERM end the
/// process with 0 within the 2 s the README promises (with a little room for a debug build).
#[test]
fn a_slow_or_silent_receiver_does_not_hold_shutdown() {
    for (pace, finish) in [(Duration::from_millis(10), true), (Duration::ZERO, false)] {
        let dir = tempfile::tempdir().unwrap();
        let sink = stubborn_receiver(dir.path(), pace, finish);
        let mut s = Server::start(&config("", &zone_with_log(&format!("dnstap = \"{sink}\""))));
        s.wait_log("dnstap connected").expect("the receiver is connected");
        // A backlog: 4,000 queries sent without waiting, then one answered to be sure the
        // server is serving.
        let sock = udp_socket(Duration::from_millis(200));
        let q = query("www.gslb.example.org.", RecordType::A).to_vec().unwrap();
        for _ in 0..4_000 {
            sock.send_to(&q, s.addr).unwrap();
        }
        let (_, reply, _) = udp_exchange(&s, "www.gslb.example.org.");
        assert_eq!(answers(&reply), ["192.0.2.80"]);
        let asked = Instant::now();
        s.signal("TERM");
        let code = s.wait_exit(Duration::from_millis(2500));
        assert_eq!(
            code,
            Some(0),
            "pace {pace:?}, FINISH {finish}: not stopped after {:?}\n{}",
            asked.elapsed(),
            s.log_text()
        );
    }
}
