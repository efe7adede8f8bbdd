//! `[zone.pool.https]`: a pool's HTTPS or SVCB record (RFC 9460) in ServiceMode (priority 1,
//! target `.`, the pool's own name). Its SvcParams are encoded here once, in key order and
//! without `ipv4hint`/`ipv6hint`: those are filled per query with the addresses the pool's A
//! and AAAA answers give the same client. With `apex_alias`, the zone apex answers
//! `HTTPS 0 <pool name>` (AliasMode), so a bare domain follows the pool too.

use base64::Engine;
use serde_spanned::Spanned;

use super::error::Reporter;
use super::raw::RawHttps;
use super::value::one_of;
use crate::dns::name::Name;
use crate::dns::types::{SVC_ALPN, SVC_ECH, SVC_NO_DEFAULT_ALPN, SVC_PORT, TYPE_HTTPS, TYPE_SVCB};

/// A pool's HTTPS or SVCB record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsConfig {
    /// HTTPS or SVCB.
    pub rtype: u16,
    /// The RDATA without hints: priority 1, target `.`, the SvcParams in key order.
    pub rdata: Vec<u8>,
    /// The apex answers AliasMode to the pool.
    pub apex_alias: bool,
}

/// Reads `[zone.pool.https]` of the pool `k` (a key like `zone[0].pool[1]`).
pub fn https(k: &str, raw: &Spanned<RawHttps>, rep: &mut Reporter<'_>) -> Option<HttpsConfig> {
    let before = rep.errors.len();
    let r = raw.get_ref();
    let hk = |f: &str| format!("{k}.https.{f}");
    let rtype = match one_of(rep, r.kind.as_ref(), &hk("type"), &["https", "svcb"], "https").as_str() {
        "svcb" => TYPE_SVCB,
        _ => TYPE_HTTPS,
    };
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    if let Some(alpn) = &r.alpn {
        let mut value = Vec::new();
        for id in alpn.get_ref() {
            if id.is_empty() || id.len() > 255 {
                rep.at(alpn.span().start, hk("alpn"), format!("{id:?}: a protocol id holds 1 to 255 bytes"));
                continue;
            }
            value.push(id.len() as u8);
            value.extend_from_slice(id.as_bytes());
        }
        if alpn.get_ref().is_empty() {
            rep.at(alpn.span().start, hk("alpn"), "is empty: list protocols like [\"h2\", \"h3\"] or leave it out");
        }
        params.push((SVC_ALPN, value));
    }
    if let Some(v) = r.no_default_alpn.as_ref().filter(|v| *v.get_ref()) {
        if r.alpn.is_none() {
            rep.at(v.span().start, hk("no_default_alpn"), "needs alpn (RFC 9460 §7.1.1)");
        }
        params.push((SVC_NO_DEFAULT_ALPN, Vec::new()));
    }
    if let Some(port) = &r.port {
        match u16::try_from(*port.get_ref()) {
            Ok(p) if p > 0 => params.push((SVC_PORT, p.to_be_bytes().to_vec())),
            _ => rep.at(port.span().start, hk("port"), format!("{} is out of range 1..=65535", port.get_ref())),
        }
    }
    if let Some(ech) = &r.ech {
        match base64::engine::general_purpose::STANDARD.decode(ech.get_ref().trim()) {
            // An ECHConfigList: a 2-byte length of what follows, then at least one config
            // (RFC 9849 §4): clients discard the record otherwise.
            Ok(bytes)
                if (6..=4096).contains(&bytes.len())
                    && u16::from_be_bytes([bytes[0], bytes[1]]) as usize == bytes.len() - 2 =>
            {
                params.push((SVC_ECH, bytes))
            }
            Ok(_) => rep.at(
                ech.span().start,
                hk("ech"),
                "not an ECHConfigList (a 2-byte length of the rest, at least 6 bytes in all, at most 4096)",
            ),
            Err(e) => rep.at(ech.span().start, hk("ech"), format!("not base64: {e}")),
        }
    }
    let mut rdata = vec![0, 1, 0];
    for (k, v) in &params {
        rdata.extend_from_slice(&k.to_be_bytes());
        rdata.extend_from_slice(&(v.len() as u16).to_be_bytes());
        rdata.extend_from_slice(v);
    }
    let apex_alias = r.apex_alias.as_ref().is_some_and(|v| *v.get_ref());
    (rep.errors.len() == before).then_some(HttpsConfig { rtype, rdata, apex_alias })
}

/// The AliasMode RDATA pointing at `target` (priority 0, no SvcParams).
pub fn alias_rdata(target: &Name) -> Vec<u8> {
    let mut rdata = vec![0, 0];
    rdata.extend_from_slice(target.as_wire());
    rdata
}
