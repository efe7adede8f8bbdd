//! Starts the real `gslbd` binary on 127.0.0.1 with an ephemeral port and talks to it over
//! real UDP and TCP sockets, encoding and decoding with hickory-proto (an independent codec).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The zone most tests use: the README example plus records for specific behaviours.
pub const ZONE: &str = r#"
[[zone]]
name = "gslb.example.org"
default_ttl = 300
ns = ["ns1.gslb.example.org"]
[zone.soa]
mname = "ns1.gslb.example.org"
rname = "hostmaster.gslb.example.org"
minimum = 30
ttl = 3600
records = """
ns1   3600 IN A     127.0.0.1
ns1   3600 IN AAAA  ::1
www    300 IN CNAME app
app     60 IN A     192.0.2.10
app     60 IN A     192.0.2.11
app     60 IN AAAA  2001:db8::10
info   300 IN TXT   "hello"
mail   300 IN MX    10 mx.example.net.
mail   300 IN MX    20 mx1
mx1    300 IN A     192.0.2.25
_sip._udp 300 IN SRV 10 5 5060 sip
sip    300 IN A     192.0.2.50
loop1  300 IN CNAME loop2
loop2  300 IN CNAME loop1
dangling 300 IN CNAME nothere
ext    300 IN CNAME www.example.net.
sub    300 IN NS    ns.sub
ns.sub 300 IN A     192.0.2.53
*.wild 120 IN A     192.0.2.77
"""
"#;

/// A second zone nested inside the first, to check longest-match selection.
pub const NESTED_ZONE: &str = r#"
[[zone]]
name = "inner.gslb.example.org"
ns = ["ns1.gslb.example.org"]
records = """
app 30 IN A 198.51.100.1
"""
"#;

/// A config with `[server]` on an ephemeral loopback port plus `extra` server keys and zones.
pub fn config(server_extra: &str, zones: &str) -> String {
    format!("[server]\nlisten = [\"127.0.0.1:0\"]\nudp_workers = 2\n{server_extra}\n{zones}")
}

/// A running gslbd process.
pub struct Server {
    child: Child,
    /// The address it serves UDP and TCP on.
    pub addr: SocketAddr,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
    /// The directory holding its config file.
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Writes `config` to a fresh directory and starts gslbd on it; returns once it listens.
    pub fn start(config: &str) -> Server {
        Self::start_with_env(config, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("gslbd.toml"), config).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gslbd"));
        // Run in the temp dir: the default `./state` must not be shared between tests or runs.
        cmd.args(["run", "--config"])
            .arg(dir.path().join("gslbd.toml"))
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn gslbd");
        let stderr = child.stderr.take().expect("stderr");
        let log: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let (lines, cv) = &*sink;
                lines.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
        let mut server = Server { child, addr: "0.0.0.0:0".parse().unwrap(), log, dir };
        // The admin API may say "listening" first (it serves during the start-up hold).
        let line = server
            .wait_log_matching(
                |l| l.contains("listening addr=") && !l.contains("admin API") && !l.contains("ExternalDNS"),
                0,
            )
            .unwrap_or_else(|| panic!("gslbd did not start; log:\n{}", server.log_text()));
        let addr = line.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap();
        server.addr = addr.parse().expect("listen address in log");
        server
    }

    /// The admin API's address, once it logs that it listens.
    pub fn admin_addr(&self) -> SocketAddr {
        let line = self.wait_log("admin API listening").expect("admin API listening");
        line.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap()
    }

    /// The environment the running process has (after any start of its own).
    pub fn environment(&self) -> Vec<String> {
        let raw = std::fs::read(format!("/proc/{}/environ", self.child.id())).expect("read environ");
        raw.split(|&b| b == 0).filter(|v| !v.is_empty()).map(|v| String::from_utf8_lossy(v).into_owned()).collect()
    }

    /// Path of the config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gslbd.toml")
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        self.log.0.lock().unwrap().join("\n")
    }

    /// Waits (up to [`DEADLINE`]) for a log line containing `needle`; returns it.
    pub fn wait_log(&self, needle: &str) -> Option<String> {
        self.wait_log_after(needle, 0)
    }

    /// Number of log lines so far (to wait only for lines logged after a point).
    pub fn log_len(&self) -> usize {
        self.log.0.lock().unwrap().len()
    }

    /// Waits for a line containing `needle` among the lines after the first `skip`.
    pub fn wait_log_after(&self, needle: &str, skip: usize) -> Option<String> {
        self.wait_log_matching(|l| l.contains(needle), skip)
    }

    /// Waits for a line for which `pred` holds among the lines after the first `skip`.
    pub fn wait_log_matching(&self, pred: impl Fn(&str) -> bool, skip: usize) -> Option<String> {
        let end = Instant::now() + DEADLINE;
        let (lines, cv) = &*self.log;
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(l) = guard.iter().skip(skip).find(|l| pred(l)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            guard = cv.wait_timeout(guard, end - now).unwrap().0;
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args(["-s", sig, &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success(), "kill -s {sig} failed");
    }

    /// Waits for the process to exit (up to `limit`); returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends one raw datagram and returns the first reply, or `None` after `wait`.
    pub fn udp_raw(&self, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
        let sock = udp_socket(wait);
        sock.send_to(bytes, self.addr).unwrap();
        let mut buf = vec![0u8; 65535];
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    /// Sends a query over UDP and decodes the reply.
    pub fn udp(&self, msg: &Message) -> Message {
        let reply = self.udp_raw(&msg.to_vec().unwrap(), DEADLINE).expect("no UDP reply");
        let m = Message::from_vec(&reply).expect("reply decodes");
        assert_eq!(m.metadata.id, msg.metadata.id, "reply id");
        m
    }

    /// Polls DNS (UDP) until `pred` holds for the answer; fails at [`DEADLINE`].
    pub fn wait_dns(&self, name: &str, rtype: RecordType, pred: impl Fn(&Message) -> bool) -> Message {
        let end = Instant::now() + DEADLINE;
        loop {
            let m = self.udp(&query(name, rtype));
            if pred(&m) {
                return m;
            }
            assert!(
                Instant::now() < end,
                "DNS never satisfied the condition; last answer {m:?}\nlog:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Opens a TCP connection.
    pub fn tcp(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("tcp connect");
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s
    }

    /// Sends a query over a new TCP connection and decodes the reply.
    pub fn tcp_query(&self, msg: &Message) -> Message {
        let mut s = self.tcp();
        tcp_send(&mut s, &msg.to_vec().unwrap());
        Message::from_vec(&tcp_read(&mut s).expect("tcp reply")).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback UDP socket with a receive timeout.
pub fn udp_socket(wait: Duration) -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(wait)).unwrap();
    sock
}

/// Writes one length-prefixed message.
pub fn tcp_send(s: &mut TcpStream, bytes: &[u8]) {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).unwrap();
}

/// Reads one length-prefixed message; `None` when the server closed the connection.
pub fn tcp_read(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// A query with RD set and no EDNS.
pub fn query(name: &str, rtype: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m
}

/// A query in another class.
pub fn query_class(name: &str, rtype: RecordType, class: DNSClass) -> Message {
    let mut q = Query::query(Name::from_ascii(name).unwrap(), rtype);
    q.set_query_class(class);
    let mut m = Message::query();
    m.add_query(q);
    m
}

/// A query with an EDNS OPT advertising `payload`.
pub fn query_edns(name: &str, rtype: RecordType, payload: u16) -> Message {
    let mut m = query(name, rtype);
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    m.set_edns(edns);
    m
}

/// The answer records' data as text, in order.
pub fn answers(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

/// The types of a section's records, in order.
pub fn types(records: &[hickory_proto::rr::Record]) -> Vec<RecordType> {
    records.iter().map(|r| r.record_type()).collect()
}

/// Runs `gslbd check` on the config `text` (written as `gslbd.toml` in a temporary
/// directory); returns whether it passed and what it wrote to stderr.
pub fn gslbd_check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gslbd.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd")).args(["check", "--config"]).arg(&path).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}
