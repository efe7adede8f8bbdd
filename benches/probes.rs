//! Health-probe load and reaction time, against the real binary:
//! 1. 10,000 pool members probed every 5 s, by kind of check, each its own probe target:
//!    `http` (one loopback endpoint, a path per member), `grpc` (one tonic-health server, a
//!    service per member: targets at one endpoint share an HTTP/2 connection), `grpc-spread`
//!    (1,000 servers on 127.2.x.y with 10 services each: 1,000 connections), `icmp` (10,000 loopback
//!    addresses 127.1.x.y, one shared ICMP socket): gslbd's CPU share of one core and resident
//!    memory over a 20 s window after warm-up.
//! 2. Time from an endpoint turning unhealthy to DNS answers excluding it (interval 1 s,
//!    fall 3), over several flips: min / median / max.
//!
//! Run: `cargo bench --bench probes [-- KIND...]` (KIND: http grpc grpc-spread icmp, default all;
//! about a minute each; loopback only; ICMP needs ping sockets allowed or CAP_NET_RAW).

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;

const MEMBERS: usize = 10_000;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 =
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024.0
}

/// The A answers of a name, as raw counts (no DNS library needed: count the answer RRs).
fn answer_count(sock: &UdpSocket, server: &str, name: &str) -> u16 {
    let mut q = vec![0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.').filter(|l| !l.is_empty()) {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    sock.send_to(&q, server).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert!(n >= 12);
    u16::from_be_bytes([buf[6], buf[7]])
}

fn main() {
    let kinds: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let kinds =
        if kinds.is_empty() { ["http", "grpc", "grpc-spread", "icmp"].map(String::from).to_vec() } else { kinds };
    for kind in kinds {
        run(&kind);
    }
}

/// The 10,000 bulk members' pool for `kind`, probing the servers started in `rt`.
fn bulk_pool(kind: &str, rt: &tokio::runtime::Runtime) -> String {
    let mut cfg = String::new();
    // Ten pools of 1,000 (a pool answers at most 1,000 addresses); every thousandth member
    // starts one.
    let pool = |i: usize, check: &str| {
        if !i.is_multiple_of(1000) {
            return String::new();
        }
        let n = i / 1000;
        format!(
            "[[zone.pool]]\nname = \"bulk{n}\"\nselect = \"all\"\n[zone.pool.check]\n{check}interval = \"5s\"\ntimeout = \"2s\"\n"
        )
    };
    match kind {
        "http" => {
            let bulk = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
            let port = bulk.local_addr().unwrap().port();
            let always = Router::new().fallback(|| async { "ok" });
            rt.spawn(async move { axum::serve(bulk, always).await });
            for i in 0..MEMBERS {
                cfg.push_str(&pool(i, &format!("type = \"http\"\nport = {port}\n")));
                cfg.push_str(&format!("[[zone.pool.member]]\nname = \"m{i}\"\nipv4 = [\"127.0.0.1\"]\n[zone.pool.member.check]\npath = \"/m{i}\"\n"));
            }
        }
        "grpc" => {
            let port = grpc_servers(rt, &["127.0.0.1".to_string()])[0];
            for i in 0..MEMBERS {
                cfg.push_str(&pool(i, &format!("type = \"grpc\"\nport = {port}\n")));
                cfg.push_str(&format!("[[zone.pool.member]]\nname = \"m{i}\"\nipv4 = [\"127.0.0.1\"]\n[zone.pool.member.check]\nservice = \"s{i}\"\n"));
            }
        }
        "grpc-spread" => {
            // 1,000 servers (127.2.x.y), 10 services each: 1,000 HTTP/2 connections.
            let ips: Vec<String> = (0..MEMBERS / 10).map(|s| format!("127.2.{}.{}", s / 256, s % 256)).collect();
            let ports = grpc_servers(rt, &ips);
            for i in 0..MEMBERS {
                let (srv, port) = (i / 10, ports[i / 10]);
                cfg.push_str(&pool(i, "type = \"grpc\"\n"));
                cfg.push_str(&format!(
                    "[[zone.pool.member]]\nname = \"m{i}\"\nipv4 = [\"127.2.{}.{}\"]\n[zone.pool.member.check]\nport = {port}\nservice = \"s{i}\"\n",
                    srv / 256,
                    srv % 256
                ));
            }
        }
        "icmp" => {
            for i in 0..MEMBERS {
                cfg.push_str(&pool(i, "type = \"icmp\"\n"));
                cfg.push_str(&format!(
                    "[[zone.pool.member]]\nname = \"m{i}\"\nipv4 = [\"127.1.{}.{}\"]\n",
                    i / 256,
                    i % 256
                ));
            }
        }
        other => panic!("unknown kind {other:?}: http, grpc, grpc-spread or icmp"),
    }
    cfg
}

/// grpc.health.v1 servers (tonic-health's), one on each of `ips`, sharing one health
/// service where s0..s9999 are SERVING; each connection served by hyper's HTTP/2. Their ports.
fn grpc_servers(rt: &tokio::runtime::Runtime, ips: &[String]) -> Vec<u16> {
    let (reporter, service) = rt.block_on(async { tonic_health::server::health_reporter() });
    rt.block_on(async {
        for i in 0..MEMBERS {
            reporter.set_service_status(format!("s{i}"), tonic_health::ServingStatus::Serving).await;
        }
    });
    // The statuses stay set for the life of the bench.
    std::mem::forget(reporter);
    ips.iter()
        .map(|ip| {
            let listener = rt.block_on(tokio::net::TcpListener::bind(format!("{ip}:0"))).unwrap();
            let port = listener.local_addr().unwrap().port();
            let service = service.clone();
            rt.spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else { continue };
                    let service = hyper_util::service::TowerToHyperService::new(service.clone());
                    tokio::spawn(async move {
                        let http2 = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
                        let _ = http2.serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await;
                    });
                }
            });
            port
        })
        .collect()
}

fn run(kind: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let status = Arc::new(AtomicU16::new(200));
    let app = Router::new()
        .fallback(|State(s): State<Arc<AtomicU16>>| async move {
            (StatusCode::from_u16(s.load(Ordering::Relaxed)).unwrap(), "ok")
        })
        .with_state(Arc::clone(&status));
    // The watched endpoint is switched.
    let watched = rt.block_on(tokio::net::TcpListener::bind("127.0.0.2:0")).unwrap();
    let watched_port = watched.local_addr().unwrap().port();
    rt.spawn(async move { axum::serve(watched, app).await });

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = String::from(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nudp_workers = 1\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\n",
    );
    cfg.push_str(&bulk_pool(kind, &rt));
    cfg.push_str(&format!(
        "[[zone.pool]]\nname = \"watched\"\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"http\"\nport = {watched_port}\ninterval = \"1s\"\ntimeout = \"500ms\"\nrise = 1\nfall = 3\n[[zone.pool.member]]\nname = \"w\"\nipv4 = [\"127.0.0.2\"]\n"
    ));
    std::fs::write(dir.path().join("probes.toml"), cfg).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["--log-level", "warn,gslbd::app=info", "run", "--config"])
        .arg(dir.path().join("probes.toml"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else { panic!("gslbd exited (its error is above)") };
        if let Some(rest) =
            line.split("addr=").nth(1).filter(|_| line.contains("listening") && !line.contains("admin API"))
        {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();

    // 1. Steady probing load.
    std::thread::sleep(Duration::from_secs(10));
    let hz = 100.0; // USER_HZ on Linux
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(Duration::from_secs(20));
    let cpu = (cpu_ticks(pid) - c0) as f64 / hz / t0.elapsed().as_secs_f64() * 100.0;
    println!(
        "{kind}: members={MEMBERS} interval=5s probes/s={} cpu_share={cpu:.1}% of one core rss={:.1} MB bulk_answers={}",
        MEMBERS / 5,
        rss_mb(pid),
        answer_count(&sock, &addr, "bulk0.gslb.example.org")
    );

    // 2. Reaction time (HTTP only: the watched member's check is HTTP whatever the bulk's).
    if kind != "http" {
        let _ = child.kill();
        let _ = child.wait();
        return;
    }
    let mut times = Vec::new();
    for _ in 0..8 {
        while answer_count(&sock, &addr, "watched.gslb.example.org") == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        status.store(503, Ordering::Relaxed);
        let start = Instant::now();
        while answer_count(&sock, &addr, "watched.gslb.example.org") != 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        times.push(start.elapsed().as_secs_f64());
        status.store(200, Ordering::Relaxed);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "unhealthy→excluded (interval 1s, fall 3), {} flips: min {:.2}s median {:.2}s max {:.2}s",
        times.len(),
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    let _ = child.kill();
    let _ = child.wait();
}
