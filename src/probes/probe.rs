//! One target's prober: what its kind of check needs, made once per target, and the probe
//! itself, bounded by the check's timeout. Each kind lives in its own module (HTTP(S), TCP,
//! gRPC, ICMP, DNS); the address probed is the check's `address` when set, else the member's.

use std::net::{IpAddr, SocketAddr};

pub use super::error::ProbeError;
use super::{dns, grpc, http, icmp, tcp};
use crate::config::{CheckConfig, CheckKind};

/// What every probe shares: HTTP connection pools, the ICMP sockets, gRPC's TLS settings and
/// the address probes leave from (`[cluster] probe_source`).
#[derive(Clone)]
pub struct Clients {
    http: http::Clients,
    icmp: icmp::Sockets,
    grpc_tls: std::sync::Arc<std::sync::OnceLock<grpc::Tls>>,
    /// gRPC connections by endpoint, shared by the targets there (taken when a prober is
    /// made, never per probe).
    grpc_channels:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<grpc::ChannelKey, tonic::transport::Channel>>>,
    source: Option<IpAddr>,
}

impl Clients {
    /// The shared clients, probing from `source` when given.
    pub fn new(source: Option<IpAddr>) -> Clients {
        Clients {
            http: http::Clients::new(source),
            icmp: icmp::Sockets::new(source),
            grpc_tls: Default::default(),
            grpc_channels: Default::default(),
            source,
        }
    }
}

impl Default for Clients {
    fn default() -> Self {
        Clients::new(None)
    }
}

/// One target's way of being probed.
enum Way {
    None,
    Http(Option<reqwest::Client>),
    Tcp,
    Grpc(Result<grpc::Grpc, String>),
    Icmp(icmp::Echo),
    Dns,
}

/// Probes one target (a member address under one check).
pub struct Prober {
    clients: Clients,
    addr: SocketAddr,
    check: CheckConfig,
    way: Way,
}

impl Prober {
    /// The prober of the member address `member` under `check`.
    pub async fn new(clients: &Clients, member: IpAddr, check: &CheckConfig) -> Prober {
        let ip = check.probe_address(member);
        let addr = SocketAddr::new(ip, check.port);
        let way = match check.kind {
            CheckKind::None => Way::None,
            CheckKind::Http | CheckKind::Https => Way::Http(http::sni_client(ip, check, clients.source)),
            CheckKind::Tcp => Way::Tcp,
            CheckKind::Grpc => {
                let tls = clients.grpc_tls.get_or_init(grpc::Tls::default);
                let key = grpc::ChannelKey::of(addr, check);
                let channel = {
                    let mut channels = clients.grpc_channels.lock().unwrap_or_else(|p| p.into_inner());
                    match channels.get(&key) {
                        Some(c) => Ok(c.clone()),
                        None => grpc::channel(addr, check, clients.source, tls).inspect(|c| {
                            channels.insert(key, c.clone());
                        }),
                    }
                };
                Way::Grpc(channel.and_then(|c| grpc::Grpc::new(c, check)))
            }
            CheckKind::Icmp => Way::Icmp(icmp::Echo::new(&clients.icmp, ip).await),
            CheckKind::Dns => Way::Dns,
        };
        Prober { clients: clients.clone(), addr, check: check.clone(), way }
    }

    /// Probes once; `Err` carries the reason.
    pub async fn probe(&mut self) -> Result<(), ProbeError> {
        let (check, addr, source) = (&self.check, self.addr, self.clients.source);
        let limit = check.timeout;
        // Each kind's exchange is boxed for the length of a probe: a probe task (one per
        // target, alive for good) then holds a pointer, not room for the largest kind's
        // state (a gRPC call's is kilobytes), whatever kind it runs.
        type Exchange<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ProbeError>> + Send + 'a>>;
        let run: Exchange<'_> = match &mut self.way {
            Way::None => Box::pin(async { Ok(()) }),
            Way::Http(sni) => Box::pin(http::get(&self.clients.http, sni.as_ref(), addr.ip(), check)),
            Way::Tcp => Box::pin(tcp::exchange(addr, source, check)),
            Way::Grpc(Ok(grpc)) => Box::pin(grpc.check()),
            Way::Grpc(Err(e)) => {
                let e = ProbeError::Grpc(e.clone());
                Box::pin(async { Err(e) })
            }
            // ICMP keeps its own timer so its reason reads "icmp timeout".
            Way::Icmp(echo) => Box::pin(echo.ping(limit)),
            Way::Dns => match &check.dns {
                Some(q) => Box::pin(dns::ask(addr, source, q)),
                None => Box::pin(async { Ok(()) }),
            },
        };
        // The whole exchange is bounded, so a slow peer reads "timeout after".
        match tokio::time::timeout(limit + std::time::Duration::from_millis(50), run).await {
            Err(_) => Err(ProbeError::Timeout(limit)),
            Ok(r) => r,
        }
    }
}
