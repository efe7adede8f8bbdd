//! HTTP and HTTPS checks: a GET of the check's path, with its headers, that must answer a
//! status in `expect_status` and, when set, a body holding `expect_body` in its first 64 KiB.

use std::net::{IpAddr, SocketAddr};

use super::error::{ProbeError, describe_io};
use crate::config::{CheckConfig, CheckKind};

/// Most body bytes read when looking for `expect_body`.
const BODY_WINDOW: usize = 64 * 1024;

/// HTTP clients shared by every HTTP probe (connection pools are per client).
#[derive(Clone)]
pub struct Clients {
    verify: reqwest::Client,
    insecure: reqwest::Client,
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

impl Clients {
    /// Builds the two clients (verifying and not verifying certificates); probes leave from
    /// `source` when given (`[cluster] probe_source`).
    pub fn new(source: Option<IpAddr>) -> Clients {
        let build = |verify: bool| builder(verify, source).build().expect("HTTP client for health checks");
        Clients { verify: build(true), insecure: build(false) }
    }
}

/// A client for an HTTPS check with a `host`: it connects to the probed address but sends
/// `host` as TLS SNI (and verifies the certificate against it), so it is per target.
pub fn sni_client(ip: IpAddr, check: &CheckConfig, source: Option<IpAddr>) -> Option<reqwest::Client> {
    let host = check.host.as_deref().filter(|_| check.kind == CheckKind::Https)?;
    builder(check.tls_verify, source).resolve(host, SocketAddr::new(ip, check.port)).build().ok()
}

/// One GET of `ip`; `sni` is the target's own client from [`sni_client`], when it needs one.
/// The caller bounds it by the timeout.
pub async fn get(
    clients: &Clients,
    sni: Option<&reqwest::Client>,
    ip: IpAddr,
    check: &CheckConfig,
) -> Result<(), ProbeError> {
    let scheme = if check.kind == CheckKind::Https { "https" } else { "http" };
    let client = if check.tls_verify { &clients.verify } else { &clients.insecure };
    let literal = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut req = match (sni, &check.host) {
        // The SNI client resolves `host` to this address.
        (Some(c), Some(h)) => c.get(format!("{scheme}://{h}:{}{}", check.port, check.path)),
        _ => client.get(format!("{scheme}://{literal}:{}{}", check.port, check.path)),
    };
    if let (None, Some(h)) = (sni, &check.host) {
        req = req.header(reqwest::header::HOST, h);
    }
    for (name, value) in &check.headers {
        req = req.header(name, value);
    }
    let mut resp = req.send().await.map_err(|e| ProbeError::Connection(describe(&e)))?;
    let status = resp.status().as_u16();
    if !check.expect_status.iter().any(|&(a, b)| (a..=b).contains(&status)) {
        return Err(ProbeError::Status(status));
    }
    if let Some(want) = &check.expect_body {
        let mut body = Vec::new();
        while body.len() < BODY_WINDOW {
            match resp.chunk().await.map_err(|e| ProbeError::Connection(describe(&e)))? {
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
}

fn describe(e: &reqwest::Error) -> String {
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
