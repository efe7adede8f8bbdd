//! ICMP echo checks. One ICMP socket per address family, shared by every ICMP target and
//! opened on first use: an unprivileged ICMP datagram socket where the system allows it
//! (`net.ipv4.ping_group_range` holds the process's group), else a raw socket (which needs
//! CAP_NET_RAW). When neither can be opened every ICMP check fails with that reason.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, Pinger, SurgeError};

use super::error::ProbeError;

/// The echo payload: fixed, so replies are easy to recognise in a capture.
const PAYLOAD: &[u8; 16] = b"gslbd-health-chk";

/// The shared sockets, one per family, opened on first use.
#[derive(Clone, Default)]
pub struct Sockets {
    source: Option<IpAddr>,
    v4: Arc<OnceLock<Result<Client, String>>>,
    v6: Arc<OnceLock<Result<Client, String>>>,
}

impl Sockets {
    /// Sockets whose probes leave from `source` when it is of the family.
    pub fn new(source: Option<IpAddr>) -> Sockets {
        Sockets { source, ..Sockets::default() }
    }

    fn client(&self, v6: bool) -> Result<Client, String> {
        let cell = if v6 { &self.v6 } else { &self.v4 };
        cell.get_or_init(|| {
            let mut config = Config::builder()
                .kind(if v6 { ICMP::V6 } else { ICMP::V4 })
                .sock_type_hint(socket2::Type::DGRAM);
            if let Some(src) = self.source.filter(|s| s.is_ipv6() == v6) {
                config = config.bind(SocketAddr::new(src, 0));
            }
            let opened = Client::new(&config.build()).map_err(|e| {
                format!("cannot open an ICMP socket ({e}): allow ping sockets (net.ipv4.ping_group_range) or grant CAP_NET_RAW")
            });
            match &opened {
                Ok(c) => tracing::info!(family = if v6 { "ipv6" } else { "ipv4" }, kind = ?c.get_socket().get_type(), "ICMP checks socket opened"),
                Err(e) => tracing::error!(family = if v6 { "ipv6" } else { "ipv4" }, error = %e, "ICMP checks cannot run"),
            }
            opened
        })
        .clone()
    }
}

/// One target's pinger: its address and the next sequence number.
pub struct Echo {
    pinger: Result<Pinger, String>,
    seq: u16,
}

impl Echo {
    /// A pinger of `ip` on the shared socket of its family.
    pub async fn new(sockets: &Sockets, ip: IpAddr) -> Echo {
        let pinger = match sockets.client(ip.is_ipv6()) {
            Ok(client) => Ok(client.pinger(ip, PingIdentifier(rand::random())).await),
            Err(e) => Err(e),
        };
        Echo { pinger, seq: rand::random() }
    }

    /// One echo request and its reply within `timeout`.
    pub async fn ping(&mut self, timeout: std::time::Duration) -> Result<(), ProbeError> {
        let pinger = self.pinger.as_mut().map_err(|e| ProbeError::Icmp(e.clone()))?;
        pinger.timeout(timeout);
        // Replies on a datagram socket are matched by address and sequence: two targets of
        // one address may draw the same number, so a clash moves on to the next.
        for _ in 0..4 {
            self.seq = self.seq.wrapping_add(1);
            return match pinger.ping(PingSequence(self.seq), PAYLOAD).await {
                Ok(_) => Ok(()),
                Err(SurgeError::IdenticalRequests { .. }) => continue,
                Err(SurgeError::Timeout { .. }) => Err(ProbeError::Icmp("timeout".into())),
                Err(SurgeError::IOError(e)) => Err(ProbeError::Icmp(e.to_string())),
                Err(e) => Err(ProbeError::Icmp(e.to_string())),
            };
        }
        Err(ProbeError::Icmp("no free sequence number".into()))
    }
}
