//! One probe of one address: HTTP(S) GET with status and body expectations, or a TCP
//! connect, bounded by the check's timeout. The reason of a failure is kept for logs and
//! `/records` ("status 503", "timeout after 1s", "connection refused").

use std::net::{IpAddr, SocketAddr};

use crate::config::{CheckConfig, CheckKind};

/// Most body bytes read when looking for `expect_body`.
const BODY_WINDOW: usize = 64 * 1024;

/// HTTP clients shared by every probe (connection pools are per client).
#[derive(Clone)]
pub struct Clients {
    verify: reqwest::Client,
    insecure: reqwest::Client,
    /// The address TCP checks connect from.
    source: Option<IpAddr>,
}

fn builder(verify: bool, source: Option<IpAddr>) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .local_address(source)
        .no_proxy()
        .user_agent(concat!("gslbd-health/", env!("CARGO_PKG_VERSION")))
        .tls_danger_accept_invalid_certs(!verify)
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .tcp_nodelay(true)
        .pool_idle_timeout(std::time::Duration::from_secs(90))
}

/// A client for an HTTPS check with a `host`: it connects to the member's address but sends
/// `host` as TLS SNI (and verifies the certificate against it), so it is per target.
pub fn sni_client(ip: IpAddr, check: &CheckConfig, source: Option<IpAddr>) -> Option<reqwest::Client> {
    let host = check.host.as_deref().filter(|_| check.kind == CheckKind::Https)?;
    builder(check.tls_verify, source).resolve(host, SocketAddr::new(ip, check.port)).build().ok()
}

impl Clients {
    /// Builds the two clients (verifying and not verifying certificates); probes leave from
    /// `source` when given (`[cluster] probe_source`).
    pub fn new(source: Option<IpAddr>) -> Clients {
        let build = |verify: bool| builder(verify, source).build().expect("HTTP client for health checks");
        Clients { verify: build(true), insecure: build(false), source }
    }
}

impl Default for Clients {
    fn default() -> Self {
        Clients::new(None)
    }
}

/// Probes `ip` once; `Err` carries the reason. `sni` is the target's own client from
/// [`sni_client`], when it needs one.
pub async fn probe(
    clients: &Clients,
    sni: Option<&reqwest::Client>,
    ip: IpAddr,
    check: &CheckConfig,
) -> Result<(), ProbeError> {
    let addr = SocketAddr::new(ip, check.port);
    let limit = check.timeout;
    let timeout_msg = || ProbeError::Timeout(limit);
    match check.kind {
        CheckKind::None => Ok(()),
        CheckKind::Tcp => match tokio::time::timeout(limit, tcp_exchange(addr, clients.source, check)).await {
            Err(_) => Err(timeout_msg()),
            Ok(r) => r,
        },
        CheckKind::Http | CheckKind::Https => {
            let scheme = if check.kind == CheckKind::Https { "https" } else { "http" };
            let client = if check.tls_verify { &clients.verify } else { &clients.insecure };
            let literal = match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            // The whole exchange is bounded below, so the reason always reads "timeout after".
            let mut req = match (sni, &check.host) {
                // The SNI client resolves `host` to this member's address.
                (Some(c), Some(h)) => c.get(format!("{scheme}://{h}:{}{}", check.port, check.path)),
                _ => client.get(format!("{scheme}://{literal}:{}{}", check.port, check.path)),
            };
            if let (None, Some(h)) = (sni, &check.host) {
                req = req.header(reqwest::header::HOST, h);
            }
            let run = async {
                let mut resp = req.send().await.map_err(|e| ProbeError::Connection(describe_reqwest(&e)))?;
                let status = resp.status().as_u16();
                if !check.expect_status.iter().any(|&(a, b)| (a..=b).contains(&status)) {
                    return Err(ProbeError::Status(status));
                }
                if let Some(want) = &check.expect_body {
                    let mut body = Vec::new();
                    while body.len() < BODY_WINDOW {
                        match resp.chunk().await.map_err(|e| ProbeError::Connection(describe_reqwest(&e)))? {
                            Some(c) => body.extend_from_slice(&c),
                            None => break,
                        }
                    }
                    body.truncate(BODY_WINDOW);
                    if !String::from_utf8_lossy(&body).contains(want.as_str()) {
                        return Err(ProbeError::Body(want.clone()));
                    }
                }
                Ok(())
            };
            match tokio::time::timeout(limit, run).await {
                Err(_) => Err(timeout_msg()),
                Ok(r) => r,
            }
        }
    }
}

/// Why a probe failed; its text is the reason logs, `/records` and the cluster show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// No answer within the check's timeout.
    #[error("timeout after {}", humantime::format_duration(*.0))]
    Timeout(std::time::Duration),
    /// The connection or the exchange failed ("connection refused", a TLS error).
    #[error("{0}")]
    Connection(String),
    /// An HTTP status outside `expect_status`.
    #[error("status {0}")]
    Status(u16),
    /// The body lacks `expect_body`.
    #[error("body does not contain {0:?}")]
    Body(String),
    /// A TCP check's reply lacks `expect` (what came instead, its first bytes, printable).
    #[error("expect {want:?} got {got:?}")]
    Expect {
        /// The expected text.
        want: String,
        /// What the peer sent.
        got: String,
    },
}

/// A TCP check: connect, then with `send` write it, and with `expect` read until the reply
/// contains it (or the peer closes, or 64 KiB came). The caller bounds it by the timeout.
async fn tcp_exchange(addr: SocketAddr, source: Option<IpAddr>, check: &CheckConfig) -> Result<(), ProbeError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect(addr, source).await.map_err(|e| ProbeError::Connection(describe_io(&e)))?;
    if let Some(send) = &check.send {
        stream.write_all(send.as_bytes()).await.map_err(|e| ProbeError::Connection(describe_io(&e)))?;
    }
    let Some(want) = &check.expect else { return Ok(()) };
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while reply.len() < BODY_WINDOW {
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
async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<tokio::net::TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if let Some(src) = source.filter(|s| s.is_ipv4() == addr.is_ipv4()) {
        socket.bind(SocketAddr::new(src, 0))?;
    }
    socket.connect(addr).await
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timeout".into();
    }
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return describe_io(io);
        }
        cur = c.source();
    }
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
