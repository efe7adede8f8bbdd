//! `[rrl]` validation: response rate limiting's rates, window, slip, client network sizes
//! and exempt networks.

use std::net::IpAddr;

use serde_spanned::Spanned;

use super::error::Reporter;
use super::raw::RawRrl;
use super::value::{int, parse_net};

/// `[rrl]`: response rate limiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// NOERROR responses per second per client network, name and type.
    pub responses_per_second: u32,
    /// NXDOMAIN responses per second per client network and zone.
    pub nxdomains_per_second: u32,
    /// Other responses per second per client network.
    pub errors_per_second: u32,
    /// Seconds of responses an account may hold (its bucket is rate × window).
    pub window: u32,
    /// Every slip-th limited response is sent truncated; 0: none.
    pub slip: u32,
    /// Client network prefix lengths.
    pub ipv4_prefix: u8,
    /// As above, for IPv6.
    pub ipv6_prefix: u8,
    /// Networks never limited: address (host bits zero) and prefix length.
    pub exempt: Box<[(std::net::IpAddr, u8)]>,
    /// Count, but send everything.
    pub log_only: bool,
    /// Accounts kept (rounded up to a power of two; read when the table is first used).
    pub table_size: usize,
}

/// Validates `[rrl]`; `None` without it.
pub fn rrl(raw: Option<&Spanned<RawRrl>>, rep: &mut Reporter<'_>) -> Option<RrlConfig> {
    let raw = raw?.get_ref();
    let n = |v: &Option<Spanned<i64>>, key: &str, min: i64, max: i64, default: i64, rep: &mut Reporter<'_>| {
        int(rep, v.as_ref(), &format!("rrl.{key}"), min, max, default) as u32
    };
    let responses_per_second = n(&raw.responses_per_second, "responses_per_second", 1, 1_000_000, 20, rep);
    let nxdomains_per_second =
        n(&raw.nxdomains_per_second, "nxdomains_per_second", 1, 1_000_000, responses_per_second as i64, rep);
    let errors_per_second =
        n(&raw.errors_per_second, "errors_per_second", 1, 1_000_000, responses_per_second as i64, rep);
    let window = n(&raw.window, "window", 1, 3600, 5, rep);
    let slip = n(&raw.slip, "slip", 0, 10, 2, rep);
    let ipv4_prefix = n(&raw.ipv4_prefix, "ipv4_prefix", 8, 32, 24, rep) as u8;
    let ipv6_prefix = n(&raw.ipv6_prefix, "ipv6_prefix", 16, 128, 56, rep) as u8;
    let table_size = n(&raw.table_size, "table_size", 1024, 1 << 24, 1 << 16, rep) as usize;
    let mut exempt = Vec::new();
    for net in raw.exempt.iter().flatten() {
        match parse_net(net.get_ref()) {
            Ok(parsed) => {
                let addr =
                    if parsed.v4 { IpAddr::V4((parsed.start as u32).into()) } else { IpAddr::V6(parsed.start.into()) };
                exempt.push((addr, parsed.prefix));
            }
            Err(e) => rep.at(net.span().start, "rrl.exempt", e),
        }
    }
    Some(RrlConfig {
        responses_per_second,
        nxdomains_per_second,
        errors_per_second,
        window,
        slip,
        ipv4_prefix,
        ipv6_prefix,
        exempt: exempt.into(),
        log_only: raw.log_only.as_ref().is_some_and(|v| *v.get_ref()),
        table_size,
    })
}
