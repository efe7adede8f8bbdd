//! An ExternalDNS endpoint checked and turned into record data, and the provider-specific
//! properties gslbd reads from it.
//!
//! Targets are in the text form ExternalDNS writes: addresses for A and AAAA, host names
//! without the trailing dot for CNAME and NS, `PREFERENCE HOST` for MX, `PRIORITY WEIGHT
//! PORT TARGET` for SRV. A TXT target in double quotes is read as the character strings of a
//! zone file (`"a" "b"`, with `\"` and `\DDD` escapes); any other TXT target is one text,
//! taken byte for byte (cut into strings of 255 bytes).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::endpoint::Endpoint;
use crate::dns::name::Name;
use crate::dns::records::{MAX_RRSET, RData};
use crate::dns::types::*;

/// Properties that set a record set's weight among the sets with the same name and type
/// (each with its own `setIdentifier`).
pub const WEIGHT_PROPERTIES: [&str; 2] = ["webhook/weight", "aws/weight"];

/// The largest weight (the pools' limit).
pub const MAX_WEIGHT: u32 = 1_000_000;

/// An endpoint as records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Owner.
    pub name: Name,
    /// Record type.
    pub rtype: u16,
    /// TTL; none: the zone's default.
    pub ttl: Option<u32>,
    /// One per target.
    pub rdata: Vec<RData>,
    /// Its share among the sets with the same name and type (weight properties).
    pub weight: Option<u32>,
    /// Properties gslbd does not read (ignored, counted).
    pub unknown: Vec<String>,
}

/// The record types ExternalDNS may write here.
pub const TYPES: [(&str, u16); 7] = [
    ("A", TYPE_A),
    ("AAAA", TYPE_AAAA),
    ("CNAME", TYPE_CNAME),
    ("TXT", TYPE_TXT),
    ("SRV", TYPE_SRV),
    ("MX", TYPE_MX),
    ("NS", TYPE_NS),
];

/// The owner name of an endpoint (absolute, with or without its trailing dot).
pub fn owner(e: &Endpoint) -> Result<Name, String> {
    if e.dns_name.is_empty() {
        return Err("dnsName is empty".into());
    }
    absolute(&e.dns_name).map_err(|err| format!("dnsName {:?}: {err}", e.dns_name))
}

/// The record type of an endpoint.
pub fn record_type(e: &Endpoint) -> Result<u16, String> {
    TYPES
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(&e.record_type))
        .map(|&(_, t)| t)
        .ok_or_else(|| format!("recordType {:?} is not one of A, AAAA, CNAME, TXT, SRV, MX, NS", e.record_type))
}

/// Checks an endpoint and turns it into records.
pub fn check(e: &Endpoint) -> Result<Checked, String> {
    let name = owner(e)?;
    let rtype = record_type(e)?;
    let ttl = match e.record_ttl {
        0 => None,
        t if (1..=MAX_TTL).contains(&t) => Some(t as u32),
        t => return Err(format!("recordTTL {t} is not between 0 and {MAX_TTL}")),
    };
    if e.targets.is_empty() {
        return Err("targets is empty".into());
    }
    if e.targets.len() > MAX_RRSET {
        return Err(format!("{} targets; at most {MAX_RRSET}", e.targets.len()));
    }
    if rtype == TYPE_CNAME && e.targets.len() > 1 {
        return Err(format!("a CNAME has one target, not {}", e.targets.len()));
    }
    let mut rdata = Vec::with_capacity(e.targets.len());
    for t in &e.targets {
        let rd = target(rtype, t).map_err(|err| format!("target {t:?}: {err}"))?;
        if !rdata.contains(&rd) {
            rdata.push(rd);
        }
    }
    let mut weight = None;
    let mut unknown = Vec::new();
    for p in &e.provider_specific {
        if WEIGHT_PROPERTIES.contains(&p.name.as_str()) {
            match p.value.trim().parse::<u32>() {
                Ok(w) if w <= MAX_WEIGHT => weight = Some(w),
                _ => return Err(format!("{} {:?} is not a weight from 0 to {MAX_WEIGHT}", p.name, p.value)),
            }
        } else {
            unknown.push(p.name.clone());
        }
    }
    if weight.is_some() && e.set_identifier.is_empty() {
        return Err("a weight needs a setIdentifier (it shares the name among record sets)".into());
    }
    Ok(Checked { name, rtype, ttl, rdata, weight, unknown })
}

/// One target's record data.
fn target(rtype: u16, t: &str) -> Result<RData, String> {
    let ints = |text: &str| text.parse::<u16>().map_err(|_| format!("{text:?} is not a number from 0 to 65535"));
    match rtype {
        TYPE_A => t.parse::<Ipv4Addr>().map(RData::A).map_err(|_| "not an IPv4 address".into()),
        TYPE_AAAA => t.parse::<Ipv6Addr>().map(RData::Aaaa).map_err(|_| "not an IPv6 address".into()),
        TYPE_CNAME => absolute(t).map(RData::Cname),
        TYPE_NS => absolute(t).map(RData::Ns),
        TYPE_MX => match t.split_ascii_whitespace().collect::<Vec<_>>()[..] {
            [pref, host] => Ok(RData::Mx { preference: ints(pref)?, exchange: absolute(host)? }),
            _ => Err("an MX target is \"PREFERENCE HOST\"".into()),
        },
        TYPE_SRV => match t.split_ascii_whitespace().collect::<Vec<_>>()[..] {
            [priority, weight, port, host] => Ok(RData::Srv {
                priority: ints(priority)?,
                weight: ints(weight)?,
                port: ints(port)?,
                target: absolute(host)?,
            }),
            _ => Err("an SRV target is \"PRIORITY WEIGHT PORT TARGET\"".into()),
        },
        TYPE_TXT => txt(t).map(|data| RData::Other { rtype: TYPE_TXT, data: data.into_boxed_slice() }),
        _ => Err("unsupported type".into()),
    }
}

/// A host name, absolute whether or not it ends in a dot.
fn absolute(text: &str) -> Result<Name, String> {
    let text = text.trim();
    let dotted = if text.ends_with('.') { text.to_string() } else { format!("{text}.") };
    Name::parse(&dotted, None).map_err(|e| e.to_string())
}

/// TXT RDATA: quoted character strings as in a zone file, else the text as it is.
fn txt(t: &str) -> Result<Vec<u8>, String> {
    let quoted = t.len() >= 2 && t.starts_with('"') && t.ends_with('"');
    let strings: Vec<Vec<u8>> = if quoted { quoted_strings(t)? } else { vec![t.as_bytes().to_vec()] };
    let mut out = Vec::with_capacity(t.len() + 8);
    for s in strings {
        if s.is_empty() {
            out.push(0);
        }
        for chunk in s.chunks(255) {
            out.push(chunk.len() as u8);
            out.extend_from_slice(chunk);
        }
    }
    if out.len() > 65_535 {
        return Err("longer than a record can hold".into());
    }
    Ok(out)
}

/// `"a b" "c\"d"`: the strings between quotes, `\X` meaning X and `\DDD` a byte.
fn quoted_strings(t: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = t.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err("a quote is not closed".into()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let digits = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(u8::is_ascii_digit));
                            match (digits, bytes.get(i + 1)) {
                                (Some(d), _) => {
                                    let v: u32 = d.iter().fold(0, |a, &c| a * 10 + u32::from(c - b'0'));
                                    s.push(u8::try_from(v).map_err(|_| format!("\\{} is not a byte", v))?);
                                    i += 4;
                                }
                                (None, Some(&c)) => {
                                    s.push(c);
                                    i += 2;
                                }
                                (None, None) => return Err("a quote is not closed".into()),
                            }
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(s);
            }
            _ => return Err("text between quoted strings".into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(rtype: &str, targets: &[&str]) -> Endpoint {
        Endpoint {
            dns_name: "app.k8s.example".into(),
            record_type: rtype.into(),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            ..Endpoint::default()
        }
    }

    fn data(rd: &RData) -> &[u8] {
        match rd {
            RData::Other { data, .. } => data,
            _ => panic!("not opaque"),
        }
    }

    /// Every type's target form reads; bad ones say why.
    #[test]
    fn targets_read_per_type() {
        let c = check(&ep("A", &["192.0.2.1", "192.0.2.2", "192.0.2.1"])).unwrap();
        assert_eq!((c.rtype, c.rdata.len(), c.ttl), (TYPE_A, 2, None));
        let c = check(&ep("MX", &["10 mail.example.com"])).unwrap();
        assert_eq!(c.rdata, [RData::Mx { preference: 10, exchange: Name::parse("mail.example.com.", None).unwrap() }]);
        let c = check(&ep("SRV", &["1 5 5060 sip.example.com."])).unwrap();
        assert!(matches!(c.rdata[0], RData::Srv { priority: 1, weight: 5, port: 5060, .. }));
        assert!(check(&ep("CNAME", &["a.example", "b.example"])).is_err());
        assert!(check(&ep("A", &["2001:db8::1"])).unwrap_err().contains("IPv4"));
        assert!(check(&ep("NAPTR", &["x"])).unwrap_err().contains("recordType"));
        assert!(check(&ep("A", &[])).unwrap_err().contains("empty"));
        let mut e = ep("A", &["192.0.2.1"]);
        e.record_ttl = -1;
        assert!(check(&e).is_err());
    }

    /// ExternalDNS's quoted ownership text is one string without the quotes; unquoted text
    /// is kept byte for byte; long text is cut at 255 bytes.
    #[test]
    fn txt_targets() {
        let owner = "\"heritage=external-dns,external-dns/owner=default,external-dns/resource=service/default/web\"";
        let c = check(&ep("TXT", &[owner])).unwrap();
        let d = data(&c.rdata[0]);
        assert_eq!(usize::from(d[0]), owner.len() - 2);
        assert_eq!(&d[1..], &owner.as_bytes()[1..owner.len() - 1]);
        let c = check(&ep("TXT", &["v=spf1 -all; x"])).unwrap();
        assert_eq!(&data(&c.rdata[0])[1..], b"v=spf1 -all; x");
        let c = check(&ep("TXT", &[r#""a\"b" "c\100""#])).unwrap();
        assert_eq!(data(&c.rdata[0]), b"\x03a\"b\x02cd");
        let long = "x".repeat(300);
        let c = check(&ep("TXT", &[&long])).unwrap();
        assert_eq!((data(&c.rdata[0])[0], data(&c.rdata[0])[256]), (255, 45));
        assert_eq!(&data(&check(&ep("TXT", &["\"open"])).unwrap().rdata[0])[1..], b"\"open");
        assert!(check(&ep("TXT", &["\"a\" x \"b\""])).unwrap_err().contains("between"));
    }

    /// A weight needs a set identifier; other properties are reported as unknown.
    #[test]
    fn properties() {
        let mut e = ep("A", &["192.0.2.1"]);
        e.provider_specific = vec![
            super::super::endpoint::Property { name: "webhook/weight".into(), value: "30".into() },
            super::super::endpoint::Property { name: "alias".into(), value: "true".into() },
        ];
        assert!(check(&e).unwrap_err().contains("setIdentifier"));
        e.set_identifier = "eu".into();
        let c = check(&e).unwrap();
        assert_eq!((c.weight, c.unknown.as_slice()), (Some(30), &["alias".to_string()][..]));
    }
}
