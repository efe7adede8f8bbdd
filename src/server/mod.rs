//! The data plane: listeners that read the current snapshot and answer. This module imports
//! only `snapshot`, `dnstap` (the query log it feeds), `geo_table` and `dns`; it takes no
//! shared lock, awaits nothing and allocates nothing per UDP query.

pub mod conns;
pub mod cookies;
pub mod hints;
#[cfg(target_os = "linux")]
pub mod mmsg;
pub mod query;
pub mod rrl;
pub mod signed;
pub mod stats;
pub mod tcp;
pub mod udp;

use std::net::{SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Sockets bound for one listen address.
pub struct BoundAddr {
    /// The address actually bound (the port is resolved when 0 was asked for).
    pub addr: SocketAddr,
    /// One UDP socket per worker, all on `addr` through SO_REUSEPORT.
    pub udp: Vec<UdpSocket>,
    /// The TCP listener on `addr`.
    pub tcp: TcpListener,
}

/// Binds UDP (one socket per worker) and TCP on every address. A port of 0 picks a free port
/// that is then used for the other sockets of the same address too.
///
/// An address that does not exist on this host (e.g. `[::1]` where IPv6 is disabled) is
/// skipped with a warning as long as another address could be bound; every other failure
/// (port in use, no permission) is an error.
pub fn bind(listen: &[SocketAddr], udp_workers: usize) -> std::io::Result<Vec<BoundAddr>> {
    let mut out = Vec::with_capacity(listen.len());
    let mut missing = Vec::new();
    for &asked in listen {
        match bind_one(asked, udp_workers) {
            Ok(b) => out.push(b),
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => missing.push((asked, e)),
            Err(e) => return Err(e),
        }
    }
    if out.is_empty() && !missing.is_empty() {
        return Err(missing.swap_remove(0).1);
    }
    for (addr, e) in missing {
        tracing::warn!(%addr, error = %e, "listen address not available on this host; skipped");
    }
    Ok(out)
}

fn bind_one(asked: SocketAddr, udp_workers: usize) -> std::io::Result<BoundAddr> {
    // With port 0 the free UDP port may be taken for TCP; try a few ports.
    let mut attempt = 0;
    let mut bound = loop {
        attempt += 1;
        let first = udp_socket(asked)?;
        let addr = first.local_addr()?;
        match tcp_listener(addr) {
            Ok(tcp) => {
                break BoundAddr { addr, udp: vec![first], tcp };
            }
            Err(e) if asked.port() == 0 && attempt < 20 => {
                tracing::debug!(%addr, error = %e, "tcp port taken, picking another");
            }
            Err(e) => return Err(with_addr(e, addr, "tcp")),
        }
    };
    for _ in 1..udp_workers.max(1) {
        bound.udp.push(udp_socket(bound.addr)?);
    }
    Ok(bound)
}

/// Binds the DNS-over-TLS listeners (TCP sockets; TLS runs on the accepted connections).
pub fn bind_tls(listen: &[SocketAddr]) -> std::io::Result<Vec<(SocketAddr, TcpListener)>> {
    listen
        .iter()
        .map(|&addr| {
            let l = tcp_listener(addr).map_err(|e| with_addr(e, addr, "tls"))?;
            Ok((l.local_addr()?, l))
        })
        .collect()
}

fn with_addr(e: std::io::Error, addr: SocketAddr, what: &str) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot bind {what} {addr}: {e}"))
}

fn udp_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    // A bigger receive buffer absorbs bursts while a worker is busy.
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&addr.into()).map_err(|e| with_addr(e, addr, "udp"))?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}
