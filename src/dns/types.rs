//! DNS constants: record types, classes, response codes, opcodes and header bits.

/// Record type A (RFC 1035).
pub const TYPE_A: u16 = 1;
/// Record type NS.
pub const TYPE_NS: u16 = 2;
/// Record type CNAME.
pub const TYPE_CNAME: u16 = 5;
/// Record type SOA.
pub const TYPE_SOA: u16 = 6;
/// Record type PTR.
pub const TYPE_PTR: u16 = 12;
/// Record type HINFO (used for RFC 8482 minimal ANY answers).
pub const TYPE_HINFO: u16 = 13;
/// Record type MX.
pub const TYPE_MX: u16 = 15;
/// Record type TXT.
pub const TYPE_TXT: u16 = 16;
/// Record type AAAA (RFC 3596).
pub const TYPE_AAAA: u16 = 28;
/// Record type SRV (RFC 2782).
pub const TYPE_SRV: u16 = 33;
/// Pseudo record type OPT (RFC 6891).
pub const TYPE_OPT: u16 = 41;
/// Record type DS (RFC 4034).
pub const TYPE_DS: u16 = 43;
/// TSIG (RFC 8945): a transaction signature, last in the additional section.
pub const TYPE_TSIG: u16 = 250;
/// Query type IXFR.
pub const TYPE_IXFR: u16 = 251;
/// Query type AXFR.
pub const TYPE_AXFR: u16 = 252;
/// Query type MAILB (obsolete).
pub const TYPE_MAILB: u16 = 253;
/// Query type MAILA (obsolete).
pub const TYPE_MAILA: u16 = 254;
/// Query type ANY (`*`).
pub const TYPE_ANY: u16 = 255;

/// SVCB (RFC 9460).
pub const TYPE_SVCB: u16 = 64;
/// HTTPS (RFC 9460).
pub const TYPE_HTTPS: u16 = 65;
/// SvcParamKey alpn (RFC 9460 §14.3.2).
pub const SVC_ALPN: u16 = 1;
/// SvcParamKey no-default-alpn.
pub const SVC_NO_DEFAULT_ALPN: u16 = 2;
/// SvcParamKey port.
pub const SVC_PORT: u16 = 3;
/// SvcParamKey ipv4hint.
pub const SVC_IPV4HINT: u16 = 4;
/// SvcParamKey ech.
pub const SVC_ECH: u16 = 5;
/// SvcParamKey ipv6hint.
pub const SVC_IPV6HINT: u16 = 6;

/// Class IN.
pub const CLASS_IN: u16 = 1;
/// Class CHAOS.
pub const CLASS_CH: u16 = 3;

/// Response code NOERROR.
pub const RCODE_NOERROR: u8 = 0;
/// Response code FORMERR.
pub const RCODE_FORMERR: u8 = 1;
/// Response code SERVFAIL.
pub const RCODE_SERVFAIL: u8 = 2;
/// Response code NXDOMAIN.
pub const RCODE_NXDOMAIN: u8 = 3;
/// Response code NOTIMP.
pub const RCODE_NOTIMP: u8 = 4;
/// Response code REFUSED.
pub const RCODE_REFUSED: u8 = 5;
/// Extended response code BADVERS (RFC 6891): 16, carried as 1 in the OPT TTL's high byte.
pub const RCODE_BADVERS: u16 = 16;

/// The RCODEs we send, with their mnemonics (RFC 1035, RFC 6891, RFC 8945's NOTAUTH).
pub const RCODE_NAMES: [(u16, &str); 8] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (9, "NOTAUTH"),
    (16, "BADVERS"),
];

/// The mnemonic of an RCODE we send; `None` for others.
pub fn rcode_name(rcode: u16) -> Option<&'static str> {
    RCODE_NAMES.iter().find(|(c, _)| *c == rcode).map(|(_, n)| *n)
}

/// Header flag: this is a response.
pub const FLAG_QR: u16 = 0x8000;
/// Header flag: authoritative answer.
pub const FLAG_AA: u16 = 0x0400;
/// Header flag: truncated.
pub const FLAG_TC: u16 = 0x0200;
/// Header flag: recursion desired.
pub const FLAG_RD: u16 = 0x0100;
/// Header flag: checking disabled (RFC 4035), copied from the query.
pub const FLAG_CD: u16 = 0x0010;

/// EDNS option code NSID (RFC 5001).
pub const OPT_NSID: u16 = 3;
/// EDNS option code: Client Subnet (RFC 7871).
pub const OPT_ECS: u16 = 8;
/// EDNS option code: COOKIE (RFC 7873).
pub const OPT_COOKIE: u16 = 10;
/// Extended response code BADCOOKIE (RFC 7873): 23, carried as 1 in the OPT TTL's high byte.
pub const RCODE_BADCOOKIE: u16 = 23;

/// Payload limit for a UDP response when the query had no EDNS.
pub const UDP_PAYLOAD_NO_EDNS: usize = 512;

/// Short upper-case mnemonic of a record type, for logs and summaries.
pub fn type_name(rtype: u16) -> std::borrow::Cow<'static, str> {
    let s = match rtype {
        TYPE_A => "A",
        TYPE_NS => "NS",
        TYPE_CNAME => "CNAME",
        TYPE_SOA => "SOA",
        TYPE_PTR => "PTR",
        TYPE_HINFO => "HINFO",
        TYPE_MX => "MX",
        TYPE_TXT => "TXT",
        TYPE_AAAA => "AAAA",
        TYPE_SRV => "SRV",
        TYPE_OPT => "OPT",
        TYPE_DS => "DS",
        35 => "NAPTR",
        39 => "DNAME",
        44 => "SSHFP",
        52 => "TLSA",
        64 => "SVCB",
        65 => "HTTPS",
        257 => "CAA",
        TYPE_ANY => "ANY",
        other => return format!("TYPE{other}").into(),
    };
    s.into()
}

/// The type a mnemonic names (any case; `TYPE65` form too): the inverse of [`type_name`].
pub fn type_from_name(text: &str) -> Option<u16> {
    let upper = text.trim().to_ascii_uppercase();
    if let Some(n) = upper.strip_prefix("TYPE") {
        return n.parse().ok();
    }
    (0..=u16::MAX).take(300).find(|&t| type_name(t) == upper.as_str()).or(match upper.as_str() {
        "ANY" => Some(TYPE_ANY),
        _ => None,
    })
}

/// Largest TTL a record may carry (RFC 2181 §8).
pub const MAX_TTL: i64 = (1 << 31) - 1;
