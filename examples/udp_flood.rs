//! An open-loop UDP query flood from one source address, for `bench/rrl-flood.py`: sends one
//! query at a fixed rate for a fixed time whatever comes back (a spoofed flood does not
//! wait for answers), and counts the replies answered in full and truncated (slipped).
//!
//!   udp_flood SERVER:PORT QPS SECONDS NAME
//!
//! Prints one JSON line: {"sent": N, "full": N, "truncated": N}. Loopback only; bounded by
//! SECONDS.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn query(name: &str) -> Vec<u8> {
    let mut q = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: udp_flood SERVER:PORT QPS SECONDS NAME");
        std::process::exit(2);
    }
    let server: SocketAddr = args[1].parse().expect("SERVER:PORT");
    assert!(server.ip().is_loopback(), "loopback only");
    let qps: u64 = args[2].parse().expect("QPS");
    let seconds: u64 = args[3].parse().expect("SECONDS");
    let mut packet = query(&args[4]);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(server).expect("connect");
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
    let (full, truncated, done) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let receiver = {
        let (sock, full, truncated, done) =
            (sock.try_clone().unwrap(), Arc::clone(&full), Arc::clone(&truncated), Arc::clone(&done));
        sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) if n >= 12 && buf[2] & 0x02 != 0 => truncated.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => full.fetch_add(1, Ordering::Relaxed),
                    Err(_) if done.load(Ordering::Relaxed) => break,
                    Err(_) => continue,
                };
            }
        })
    };
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut sent: u64 = 0;
    while Instant::now() < end {
        // Paced per millisecond: the number due by now, at most.
        let due = (start.elapsed().as_micros() as u64 * qps / 1_000_000).max(sent);
        while sent < due {
            packet[..2].copy_from_slice(&(sent as u16).to_be_bytes());
            let _ = sock.send(&packet);
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    done.store(true, Ordering::Relaxed);
    receiver.join().unwrap();
    println!(
        "{{\"sent\": {sent}, \"full\": {}, \"truncated\": {}}}",
        full.load(Ordering::Relaxed),
        truncated.load(Ordering::Relaxed)
    );
}
