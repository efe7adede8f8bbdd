//! The value parsers every section shares: words, integers, durations, sizes, names and
//! networks, each reporting a bad value at its key.

use std::time::Duration;

use serde_spanned::Spanned;

use super::error::Reporter;
use crate::dns::name::Name;
pub use crate::dns::types::MAX_TTL;

/// A key that takes one of a few words (any case); the default when absent or wrong.
pub fn one_of(
    rep: &mut Reporter<'_>,
    v: Option<&Spanned<String>>,
    key: &str,
    allowed: &[&str],
    default: &'static str,
) -> String {
    match v {
        None => default.to_string(),
        Some(v) if allowed.contains(&v.get_ref().trim().to_ascii_lowercase().as_str()) => {
            v.get_ref().trim().to_ascii_lowercase()
        }
        Some(v) => {
            rep.at(v.span().start, key, format!("{:?} is not one of {}", v.get_ref(), allowed.join(", ")));
            default.to_string()
        }
    }
}

/// An integer key with a range and a default.
pub fn int(rep: &mut Reporter<'_>, v: Option<&Spanned<i64>>, key: &str, min: i64, max: i64, default: i64) -> i64 {
    match v {
        None => default,
        Some(v) if (min..=max).contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            rep.at(v.span().start, key, format!("{} is out of range {min}..={max}", v.get_ref()));
            default
        }
    }
}

/// Parses a duration such as `"10s"` or `"250ms"` and checks its range.
pub fn duration(
    rep: &mut Reporter<'_>,
    v: Option<&Spanned<String>>,
    key: &str,
    min: Duration,
    max: Duration,
    default: Duration,
) -> Duration {
    let Some(v) = v else { return default };
    match humantime::parse_duration(v.get_ref()) {
        Ok(d) if d >= min && d <= max => d,
        Ok(_) => {
            rep.at(
                v.span().start,
                key,
                format!(
                    "{:?} is out of range {}..={}",
                    v.get_ref(),
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            );
            default
        }
        Err(e) => {
            rep.at(v.span().start, key, format!("{:?} is not a duration like \"10s\" or \"250ms\": {e}", v.get_ref()));
            default
        }
    }
}

/// A domain name.
pub fn name_value(rep: &mut Reporter<'_>, v: &Spanned<String>, key: &str) -> Option<Name> {
    match Name::parse(v.get_ref().trim(), None) {
        Ok(n) => Some(n),
        Err(e) => {
            rep.at(v.span().start, key, e.to_string());
            None
        }
    }
}

/// Parses a byte size such as `"64MiB"`, `"512KiB"`, `"10MB"` or `"1048576"`.
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A network of a map (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Net {
    /// First address; IPv4 in the low 32 bits.
    pub start: u128,
    /// Prefix length.
    pub prefix: u8,
    /// IPv4 or IPv6.
    pub v4: bool,
}

/// Parses `10.0.0.0/8` or `2001:db8::/32`, host bits zero.
pub fn parse_net(text: &str) -> Result<Net, String> {
    let (addr, prefix) = text.trim().split_once('/').ok_or_else(|| format!("{text:?} is not a network (CIDR)"))?;
    let addr: std::net::IpAddr = addr.parse().map_err(|_| format!("{text:?}: {addr:?} is not an IP address"))?;
    let prefix: u8 = prefix.parse().map_err(|_| format!("{text:?}: {prefix:?} is not a prefix length"))?;
    let (start, bits, v4) = match addr {
        std::net::IpAddr::V4(a) => (u32::from(a) as u128, 32u32, true),
        std::net::IpAddr::V6(a) => (u128::from(a), 128, false),
    };
    if prefix as u32 > bits {
        return Err(format!("{text:?}: the prefix is longer than {bits} bits"));
    }
    let host = bits - prefix as u32;
    if host > 0 && start & (u128::MAX >> (128 - host)) != 0 {
        return Err(format!("{text:?} has bits set beyond the prefix"));
    }
    Ok(Net { start, prefix, v4 })
}
