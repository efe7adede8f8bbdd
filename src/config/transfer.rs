//! `[[tsig_key]]` and `[zone.transfer]`: the shared keys, and per zone who may transfer it
//! (networks, keys) and which secondaries hear of each new serial.

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use serde_spanned::Spanned;

use super::error::Reporter;
use super::raw::{RawTransfer, RawTsigKey};
use super::value::parse_net;
use crate::dns::name::Name;
use crate::dns::tsig::{Algorithm, TsigKey};

/// `[zone.transfer]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// Networks that may transfer without a key: (first address, prefix length).
    pub allow: Vec<(IpAddr, u8)>,
    /// Keys that may transfer from anywhere.
    pub keys: Vec<Name>,
    /// Secondaries sent NOTIFY on each new serial (signed with the first of `keys`).
    pub also_notify: Vec<SocketAddr>,
}

/// Reads `[[tsig_key]]`: names unique, secrets base64 of at least 16 bytes.
pub fn keys(raw: &[Spanned<RawTsigKey>], rep: &mut Reporter<'_>) -> Vec<TsigKey> {
    let mut out: Vec<TsigKey> = Vec::new();
    for (i, k) in raw.iter().enumerate() {
        let key = format!("tsig_key[{i}]");
        let k = k.get_ref();
        let name = match Name::parse(&absolute(k.name.get_ref()), None) {
            Ok(n) => n,
            Err(e) => {
                rep.at(k.name.span().start, format!("{key}.name"), e.to_string());
                continue;
            }
        };
        if out.iter().any(|o| o.name == name) {
            rep.at(k.name.span().start, format!("{key}.name"), format!("key {name} is defined twice"));
            continue;
        }
        let algorithm = match &k.algorithm {
            None => Algorithm::HmacSha256,
            Some(a) => match Algorithm::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(a.get_ref().trim())) {
                Some((alg, _)) => *alg,
                None => {
                    rep.at(
                        a.span().start,
                        format!("{key}.algorithm"),
                        format!("{:?} is not one of hmac-sha256, hmac-sha384, hmac-sha512", a.get_ref()),
                    );
                    continue;
                }
            },
        };
        let secret = match base64::engine::general_purpose::STANDARD.decode(k.secret.get_ref().trim()) {
            Ok(s) if s.len() >= 16 => s,
            Ok(s) => {
                rep.at(
                    k.secret.span().start,
                    format!("{key}.secret"),
                    format!("is {} bytes; a key needs at least 16 (e.g. `openssl rand -base64 32`)", s.len()),
                );
                continue;
            }
            Err(e) => {
                rep.at(k.secret.span().start, format!("{key}.secret"), format!("not base64: {e}"));
                continue;
            }
        };
        out.push(TsigKey { name, algorithm, secret: secret.into() });
    }
    out
}

fn absolute(name: &str) -> String {
    let name = name.trim();
    if name.ends_with('.') { name.to_string() } else { format!("{name}.") }
}

/// Reads a zone's `[zone.transfer]` against the keys defined.
pub fn transfer(
    zkey: &str,
    raw: &Spanned<RawTransfer>,
    keys: &[TsigKey],
    signed: bool,
    rep: &mut Reporter<'_>,
) -> Option<TransferConfig> {
    let errors_before = rep.errors.len();
    let at = |f: &str| format!("{zkey}.transfer.{f}");
    let r = raw.get_ref();
    if signed {
        rep.at(
            raw.span().start,
            format!("{zkey}.transfer"),
            "a signed zone cannot be transferred yet: its signatures are made while answering",
        );
    }
    let mut allow = Vec::new();
    for net in r.allow.iter().flat_map(|l| l.get_ref()) {
        let text = net.get_ref().trim();
        // A bare address is a one-address network.
        let parsed = match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => Ok((IpAddr::V4(a), 32)),
            Ok(IpAddr::V6(a)) => Ok((IpAddr::V6(a), 128)),
            Err(_) => parse_net(text).map(|n| {
                let addr = if n.v4 { IpAddr::V4((n.start as u32).into()) } else { IpAddr::V6(n.start.into()) };
                (addr, n.prefix)
            }),
        };
        match parsed {
            Ok(n) => allow.push(n),
            Err(e) => rep.at(net.span().start, at("allow"), e),
        }
    }
    let mut names = Vec::new();
    for k in r.keys.iter().flat_map(|l| l.get_ref()) {
        match Name::parse(&absolute(k.get_ref()), None) {
            Ok(n) if keys.iter().any(|d| d.name == n) => names.push(n),
            Ok(n) => rep.at(k.span().start, at("keys"), format!("{n} is no [[tsig_key]]")),
            Err(e) => rep.at(k.span().start, at("keys"), e.to_string()),
        }
    }
    let mut also_notify = Vec::new();
    for a in r.also_notify.iter().flat_map(|l| l.get_ref()) {
        let text = a.get_ref().trim();
        let parsed = text.parse::<SocketAddr>().or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)));
        match parsed {
            Ok(addr) => also_notify.push(addr),
            Err(_) => rep.at(a.span().start, at("also_notify"), format!("{text:?} is not an address or address:port")),
        }
    }
    if allow.is_empty() && names.is_empty() {
        rep.at(
            raw.span().start,
            format!("{zkey}.transfer"),
            "lists neither allow nor keys: nobody could transfer the zone",
        );
    }
    (rep.errors.len() == errors_before).then_some(TransferConfig { allow, keys: names, also_notify })
}
