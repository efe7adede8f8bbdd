//! Address networks as the config lists them (an address and a prefix length): membership
//! and masking, shared by rate limiting and transfer access.

use std::net::IpAddr;

/// `ip` with only its first `v4`/`v6` bits kept.
pub fn network(ip: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4((a.to_bits() & u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0)).into()),
        IpAddr::V6(a) => IpAddr::V6((a.to_bits() & u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0)).into()),
    }
}

/// Whether `ip` is in `net`/`len` (same family; an IPv4-mapped IPv6 address counts as IPv4).
pub fn within(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => network(ip, len, len) == net,
        _ => false,
    }
}
