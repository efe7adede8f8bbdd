//! `[externaldns]` validation: where the ExternalDNS webhook provider listens and which of
//! our zones ExternalDNS may write to.

use std::net::SocketAddr;

use serde_spanned::Spanned;

use super::ZoneConfig;
use super::error::Reporter;
use super::raw::RawExternalDns;
use super::value::parse_size;
use crate::dns::name::Name;

/// ExternalDNS's own cap on a webhook body (`--webhook-provider-max-body-size`, 32 MiB).
const DEFAULT_MAX_BODY: usize = 32 << 20;

/// `[externaldns]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalDnsConfig {
    /// Listen address of the provider (and its `/healthz`).
    pub listen: SocketAddr,
    /// The zones ExternalDNS may write to, in config order.
    pub zones: Vec<Name>,
    /// Largest request body in bytes.
    pub max_body: usize,
}

impl ExternalDnsConfig {
    /// The zone a name belongs to among those ExternalDNS may write (the longest apex), or
    /// none when the name lies in no such zone or in a zone served here that ExternalDNS
    /// may not write (a nested zone of another source).
    pub fn zone_of<'a>(&self, name: &Name, all: &'a [ZoneConfig]) -> Option<&'a ZoneConfig> {
        let zone = all.iter().filter(|z| name.is_within(&z.apex)).max_by_key(|z| z.apex.wire_len())?;
        self.zones.contains(&zone.apex).then_some(zone)
    }
}

/// Validates `[externaldns]` against the zones read.
pub fn externaldns(
    raw: Option<&Spanned<RawExternalDns>>,
    zones: &[ZoneConfig],
    rep: &mut Reporter<'_>,
) -> Option<ExternalDnsConfig> {
    let raw = raw?.get_ref();
    let errors_before = rep.errors.len();
    let listen = match &raw.listen {
        None => "127.0.0.1:8888".parse().expect("valid default"),
        Some(v) => v.get_ref().parse::<SocketAddr>().unwrap_or_else(|_| {
            rep.at(v.span().start, "externaldns.listen", format!("{:?} is not an IP:port address", v.get_ref()));
            "127.0.0.1:8888".parse().expect("valid default")
        }),
    };
    let names = match &raw.zones {
        None => zones.iter().map(|z| z.apex.clone()).collect(),
        Some(list) => {
            if list.get_ref().is_empty() {
                rep.at(
                    list.span().start,
                    "externaldns.zones",
                    "is empty: leave it out to let ExternalDNS write every zone",
                );
            }
            let mut out: Vec<Name> = Vec::new();
            for (i, v) in list.get_ref().iter().enumerate() {
                let key = format!("externaldns.zones[{i}]");
                match Name::parse(v.get_ref(), Some(&Name::root())) {
                    Ok(n) if zones.iter().any(|z| z.apex == n) => {
                        if !out.contains(&n) {
                            out.push(n);
                        }
                    }
                    Ok(n) => rep.at(v.span().start, key, format!("{n} is not a zone served here")),
                    Err(e) => rep.at(v.span().start, key, format!("{:?} is not a domain name: {e}", v.get_ref())),
                }
            }
            out
        }
    };
    let max_body = match &raw.max_body {
        None => DEFAULT_MAX_BODY,
        Some(v) => parse_size(v.get_ref()).filter(|&n| n >= 1024).unwrap_or_else(|| {
            rep.at(
                v.span().start,
                "externaldns.max_body",
                format!("{:?} is not a size of at least 1KiB like \"32MiB\"", v.get_ref()),
            );
            DEFAULT_MAX_BODY
        }),
    };
    (rep.errors.len() == errors_before).then_some(ExternalDnsConfig { listen, zones: names, max_body })
}
