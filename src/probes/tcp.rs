//! TCP checks: connect, then optionally a scripted exchange (write `send`, read until the
//! reply contains `expect`, as HAProxy's tcp-check). Also the connect every other
//! connection-based check (DNS over TCP, gRPC) starts with, from the probe source address.

use std::net::{IpAddr, SocketAddr};

use super::error::{ProbeError, describe_io};
use crate::config::CheckConfig;

/// Most reply bytes read when looking for `expect`.
const REPLY_WINDOW: usize = 64 * 1024;

/// A TCP check of `addr`. The caller bounds it by the timeout.
pub async fn exchange(addr: SocketAddr, source: Option<IpAddr>, check: &CheckConfig) -> Result<(), ProbeError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect(addr, source).await.map_err(|e| ProbeError::Connection(describe_io(&e)))?;
    if let Some(send) = &check.send {
        stream.write_all(send.as_bytes()).await.map_err(|e| ProbeError::Connection(describe_io(&e)))?;
    }
    let Some(want) = &check.expect else { return Ok(()) };
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while reply.len() < REPLY_WINDOW {
        if String::from_utf8_lossy(&reply).contains(want.as_str()) {
            return Ok(());
        }
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) => return Err(ProbeError::Connection(describe_io(&e))),
        }
    }
    if String::from_utf8_lossy(&reply).contains(want.as_str()) {
        return Ok(());
    }
    let got: String = String::from_utf8_lossy(&reply[..reply.len().min(64)]).trim_end().to_string();
    Err(ProbeError::Expect { want: want.clone(), got })
}

/// A TCP connection to `addr`, from `source` when it is of the same family.
pub async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<tokio::net::TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if let Some(src) = source.filter(|s| s.is_ipv4() == addr.is_ipv4()) {
        socket.bind(SocketAddr::new(src, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
