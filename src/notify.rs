//! The service manager's readiness protocol (`sd_notify`): with `Type=notify`, systemd
//! starts gslbd with `NOTIFY_SOCKET` set and waits for `READY=1`, which we send once every
//! listener answers; `RELOADING=1`/`READY=1` bracket a config reload, `STOPPING=1` starts a
//! stop. Without `NOTIFY_SOCKET` nothing is sent. A datagram to a Unix socket, written by
//! hand: the protocol is one `sendto`, not worth a dependency.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (newline-separated `KEY=value` lines) to `$NOTIFY_SOCKET`, if set. A
/// failure is logged, never fatal: the manager may not care.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            // An abstract socket (Linux): the name after the '@'.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &addr)
            }
            None => socket.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, socket = ?path, "cannot notify the service manager");
    }
}
