//! Query parsing over a received datagram or TCP message, in place.
//!
//! [`parse_query`] reads the header, the single question (lower-casing the name into a fixed
//! buffer) and the EDNS OPT record. It never allocates and never panics on any input; it is
//! the only code that touches untrusted bytes on the query path and is covered by property
//! tests and a fuzz target.

use super::name::{MAX_LABEL_LEN, MAX_NAME_LEN};
use super::types::*;

/// Size of the DNS header.
pub const HEADER_LEN: usize = 12;

/// EDNS information taken from a query's OPT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Edns {
    /// Requestor's UDP payload size, as sent.
    pub udp_size: u16,
    /// EDNS version.
    pub version: u8,
    /// The DO bit.
    pub dnssec_ok: bool,
    /// The CO bit: the client takes compact denials with NXDOMAIN in the RCODE (RFC 9824 §4).
    pub compact_ok: bool,
    /// The query carried an NSID option (RFC 5001).
    pub nsid: bool,
    /// The query's Client Subnet option (RFC 7871).
    pub ecs: Ecs,
    /// The query's COOKIE option (RFC 7873).
    pub cookie: Cookie,
}

/// What a query's OPT carried as its COOKIE option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cookie {
    /// No COOKIE option.
    #[default]
    Absent,
    /// A client cookie only (8 bytes).
    Client([u8; 8]),
    /// A client cookie and a server cookie of `len` bytes (8 to 32).
    Both {
        /// The client cookie.
        client: [u8; 8],
        /// The server cookie, in its first `len` bytes.
        server: [u8; 32],
        /// The server cookie's length.
        len: u8,
    },
    /// A length other than 8 or 16..=40, or a second COOKIE option: FORMERR (RFC 7873 §5.2.2).
    Malformed,
}

/// What a query's OPT said about the client's subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ecs {
    /// No Client Subnet option.
    #[default]
    Absent,
    /// A well-formed option.
    Subnet(ClientSubnet),
    /// An option RFC 7871 §7.1.1 says to answer with FORMERR (unknown family, a prefix longer
    /// than the address, an address longer than the prefix needs or with bits set beyond it,
    /// or a second option). Only a server that takes ECS rejects it; one that does not,
    /// ignores the option like any unknown one.
    Malformed,
}

/// A Client Subnet option as the query sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientSubnet {
    /// Address family: [`ECS_IPV4`] or [`ECS_IPV6`].
    pub family: u16,
    /// SOURCE PREFIX-LENGTH: how many leading bits of the address the resolver disclosed.
    pub source_prefix: u8,
    /// The address, bits beyond the source prefix zero (IPv4 in the first four bytes).
    pub addr: [u8; 16],
}

/// ECS address family numbers (IANA address family registry).
pub const ECS_IPV4: u16 = 1;
/// See [`ECS_IPV4`].
pub const ECS_IPV6: u16 = 2;

impl ClientSubnet {
    /// Bytes of the address the option carries: just enough for the source prefix.
    pub fn addr_len(&self) -> usize {
        self.source_prefix.div_ceil(8) as usize
    }

    /// The client address this option gives, when it gives one (a source prefix of 0 says
    /// the resolver keeps it to itself).
    pub fn address(&self) -> Option<std::net::IpAddr> {
        if self.source_prefix == 0 {
            return None;
        }
        Some(match self.family {
            ECS_IPV4 => std::net::IpAddr::from([self.addr[0], self.addr[1], self.addr[2], self.addr[3]]),
            _ => std::net::IpAddr::from(self.addr),
        })
    }

    /// Reads an option's data (after code and length).
    fn parse(data: &[u8]) -> Option<ClientSubnet> {
        let family = be16(data, 0)?;
        let source_prefix = *data.get(2)?;
        // The SCOPE PREFIX-LENGTH of a query is ignored (RFC 7871 §7.1.1 sets it to 0).
        let addr = data.get(4..)?;
        let max = match family {
            ECS_IPV4 => 32,
            ECS_IPV6 => 128,
            _ => return None,
        };
        let mut subnet = ClientSubnet { family, source_prefix, addr: [0; 16] };
        if source_prefix > max || addr.len() != subnet.addr_len() {
            return None;
        }
        // Bits beyond the prefix in the last byte must be zero.
        if let Some(&last) = addr.last()
            && source_prefix % 8 != 0
            && last & (0xff >> (source_prefix % 8)) != 0
        {
            return None;
        }
        subnet.addr[..addr.len()].copy_from_slice(addr);
        Some(subnet)
    }
}

/// A parsed query. Reused across queries by each worker, so it holds its name inline.
#[derive(Clone)]
pub struct Query {
    /// Message ID.
    pub id: u16,
    /// Header flags word as received.
    pub flags: u16,
    /// Question name, lower-cased wire form (valid up to `qname_len`).
    qname: [u8; MAX_NAME_LEN],
    qname_len: usize,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    /// Offset just past the question section (header and question are echoed verbatim).
    pub question_end: usize,
    /// OPT data, when the query had one.
    pub edns: Option<Edns>,
    /// Where its TSIG record starts, when it is signed (the last record, RFC 8945).
    pub tsig: Option<usize>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            id: 0,
            flags: 0,
            qname: [0; MAX_NAME_LEN],
            qname_len: 0,
            qtype: 0,
            qclass: 0,
            question_end: 0,
            edns: None,
            tsig: None,
        }
    }
}

impl Query {
    /// Lower-cased question name in wire form.
    pub fn qname(&self) -> &[u8] {
        &self.qname[..self.qname_len]
    }

    /// Opcode from the header.
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }
}

/// Why a message could not be answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not worth a reply: shorter than a header, or a response (QR set).
    Drop,
    /// Reply FORMERR. `question` tells whether the question section parsed and can be echoed;
    /// `Query::edns` holds the OPT when one parsed, so the error reply can include one.
    FormErr {
        /// The question parsed and `Query::question_end` is valid.
        question: bool,
    },
    /// Reply NOTIMP (an opcode other than QUERY).
    NotImp {
        /// The question parsed and can be echoed.
        question: bool,
    },
}

/// The big-endian 16-bit value at `at`, when the buffer holds it.
#[inline]
pub fn be16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

/// Parses a query message into `q`.
pub fn parse_query(buf: &[u8], q: &mut Query) -> Result<(), ParseError> {
    if buf.len() < HEADER_LEN {
        return Err(ParseError::Drop);
    }
    q.id = u16::from_be_bytes([buf[0], buf[1]]);
    q.flags = u16::from_be_bytes([buf[2], buf[3]]);
    q.edns = None;
    q.tsig = None;
    q.question_end = HEADER_LEN;
    q.qname_len = 0;
    if q.flags & FLAG_QR != 0 {
        return Err(ParseError::Drop);
    }
    let qdcount = u16::from_be_bytes([buf[4], buf[5]]);
    let ancount = u16::from_be_bytes([buf[6], buf[7]]);
    let nscount = u16::from_be_bytes([buf[8], buf[9]]);
    let arcount = u16::from_be_bytes([buf[10], buf[11]]);
    let question = qdcount == 1 && parse_question(buf, q).is_some();
    // The sections are read even for an error reply: a valid OPT is echoed in FORMERR and
    // NOTIMP replies too (RFC 6891 §7). Without a readable question they cannot be found.
    let sections = match (question, qdcount) {
        (true, _) => parse_sections(buf, q.question_end, ancount, nscount, arcount, q),
        (false, 0) => parse_sections(buf, HEADER_LEN, ancount, nscount, arcount, q),
        (false, _) => Some(()),
    };
    if q.opcode() != 0 {
        return Err(ParseError::NotImp { question });
    }
    if !question {
        return Err(ParseError::FormErr { question: false });
    }
    sections.ok_or(ParseError::FormErr { question: true })
}

/// Reads the answer, authority and additional sections from `pos`, keeping a valid OPT in
/// `q.edns`. `None`: malformed; an OPT outside the additional section, a second OPT or one
/// not owned by the root; bytes after the last record.
fn parse_sections(buf: &[u8], mut pos: usize, ancount: u16, nscount: u16, arcount: u16, q: &mut Query) -> Option<()> {
    for _ in 0..(ancount as u32 + nscount as u32) {
        let owner_end = skip_name(buf, pos)?;
        if be16(buf, owner_end)? == TYPE_OPT {
            return None;
        }
        pos = skip_rr(buf, pos)?;
    }
    for i in 0..arcount {
        let owner_end = skip_name(buf, pos)?;
        if be16(buf, owner_end)? == crate::dns::types::TYPE_TSIG {
            // Only as the last record (RFC 8945 §5.1).
            if i + 1 != arcount {
                return None;
            }
            q.tsig = Some(pos);
        }
        if be16(buf, owner_end)? == TYPE_OPT {
            // RFC 6891 §6.1.1: one OPT only, owned by the root.
            if q.edns.is_some() || owner_end != pos + 1 {
                q.edns = None;
                return None;
            }
            q.edns = Some(parse_opt(buf, owner_end)?);
        }
        pos = skip_rr(buf, pos)?;
    }
    (pos == buf.len()).then_some(())
}

/// Reads the question at offset 12, lower-casing the name into `q`.
fn parse_question(buf: &[u8], q: &mut Query) -> Option<()> {
    let mut pos = HEADER_LEN;
    let mut len = 0usize;
    loop {
        let l = *buf.get(pos)? as usize;
        // Compression or extended label types are not valid in a question we echo verbatim.
        if l > MAX_LABEL_LEN {
            return None;
        }
        if len + 1 + l > MAX_NAME_LEN {
            return None;
        }
        let label = buf.get(pos..pos + 1 + l)?;
        q.qname[len] = l as u8;
        for (dst, src) in q.qname[len + 1..len + 1 + l].iter_mut().zip(&label[1..]) {
            *dst = src.to_ascii_lowercase();
        }
        len += 1 + l;
        pos += 1 + l;
        if l == 0 {
            break;
        }
    }
    q.qname_len = len;
    q.qtype = be16(buf, pos)?;
    q.qclass = be16(buf, pos + 2)?;
    q.question_end = pos + 4;
    Some(())
}

/// Skips a possibly compressed name; returns the offset after it.
pub fn skip_name(buf: &[u8], mut pos: usize) -> Option<usize> {
    let mut total = 0usize;
    loop {
        let l = *buf.get(pos)?;
        match l {
            0 => return Some(pos + 1),
            1..=63 => {
                total += 1 + l as usize;
                if total > MAX_NAME_LEN {
                    return None;
                }
                pos += 1 + l as usize;
            }
            0xc0..=0xff => {
                buf.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// Skips one resource record; returns the offset after it.
fn skip_rr(buf: &[u8], pos: usize) -> Option<usize> {
    let p = skip_name(buf, pos)?;
    let rdlen = be16(buf, p + 8)? as usize;
    let end = p + 10 + rdlen;
    (end <= buf.len()).then_some(end)
}

/// Parses the OPT record whose TYPE field starts at `at`.
fn parse_opt(buf: &[u8], at: usize) -> Option<Edns> {
    let udp_size = be16(buf, at + 2)?;
    let ttl_hi = be16(buf, at + 4)?;
    let ttl_lo = be16(buf, at + 6)?;
    let rdlen = be16(buf, at + 8)? as usize;
    let mut pos = at + 10;
    let end = pos + rdlen;
    if end > buf.len() {
        return None;
    }
    let mut edns = Edns {
        udp_size,
        version: (ttl_hi & 0xff) as u8,
        dnssec_ok: ttl_lo & 0x8000 != 0,
        compact_ok: ttl_lo & 0x4000 != 0,
        nsid: false,
        ecs: Ecs::Absent,
        cookie: Cookie::Absent,
    };
    while pos < end {
        let code = be16(buf, pos)?;
        let len = be16(buf, pos + 2)? as usize;
        let data = pos + 4;
        pos = data + len;
        if pos > end {
            return None;
        }
        match code {
            OPT_NSID => edns.nsid = true,
            OPT_COOKIE => {
                let data = &buf[data..pos];
                edns.cookie = match (edns.cookie, data.len()) {
                    (Cookie::Absent, 8) => Cookie::Client(data.try_into().expect("8 bytes")),
                    (Cookie::Absent, 16..=40) => {
                        let mut server = [0u8; 32];
                        server[..data.len() - 8].copy_from_slice(&data[8..]);
                        Cookie::Both {
                            client: data[..8].try_into().expect("8 bytes"),
                            server,
                            len: (data.len() - 8) as u8,
                        }
                    }
                    _ => Cookie::Malformed,
                };
            }
            OPT_ECS => {
                edns.ecs = match (edns.ecs, ClientSubnet::parse(&buf[data..pos])) {
                    (Ecs::Absent, Some(subnet)) => Ecs::Subnet(subnet),
                    _ => Ecs::Malformed,
                }
            }
            _ => {}
        }
    }
    Some(edns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(extra);
        m
    }

    #[test]
    fn parses_question_and_lowercases() {
        let m = query(b"\x03WwW\x07ExAmPlE\x00", 1, &[], 0);
        let mut q = Query::default();
        parse_query(&m, &mut q).unwrap();
        assert_eq!(q.qname(), b"\x03www\x07example\x00");
        assert_eq!(q.qtype, 1);
        assert_eq!(q.question_end, m.len());
        assert_eq!(q.id, 0x1234);
        assert!(q.edns.is_none());
    }

    #[test]
    fn parses_opt_with_nsid() {
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 4, 0, 3, 0, 0];
        let m = query(b"\x01a\x00", 28, &opt, 1);
        let mut q = Query::default();
        parse_query(&m, &mut q).unwrap();
        let e = q.edns.unwrap();
        assert_eq!((e.udp_size, e.version, e.dnssec_ok, e.nsid), (1232, 0, true, true));
    }

    fn with_ecs(option: &[u8]) -> Ecs {
        let mut opt = vec![0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0];
        opt.extend_from_slice(&(option.len() as u16 + 4).to_be_bytes());
        opt.extend_from_slice(&OPT_ECS.to_be_bytes());
        opt.extend_from_slice(&(option.len() as u16).to_be_bytes());
        opt.extend_from_slice(option);
        let m = query(b"\x01a\x00", 1, &opt, 1);
        let mut q = Query::default();
        parse_query(&m, &mut q).unwrap();
        q.edns.unwrap().ecs
    }

    #[test]
    fn parses_client_subnet() {
        let Ecs::Subnet(s) = with_ecs(&[0, 1, 20, 0, 10, 189, 0]) else { panic!() };
        assert_eq!((s.family, s.source_prefix, s.addr_len()), (ECS_IPV4, 20, 3));
        assert_eq!(s.address(), Some("10.189.0.0".parse().unwrap()));
        let Ecs::Subnet(s) = with_ecs(&[0, 2, 56, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0x01]) else { panic!() };
        assert_eq!(s.address(), Some("2001:db8:0:100::".parse().unwrap()));
        // Source prefix 0: no address is disclosed.
        let Ecs::Subnet(s) = with_ecs(&[0, 1, 0, 0]) else { panic!() };
        assert_eq!(s.address(), None);
    }

    #[test]
    fn malformed_client_subnets() {
        for bad in [
            &[0, 3, 8, 0, 10][..],         // unknown family
            &[0, 1, 33, 0, 1, 2, 3, 4, 5], // prefix longer than IPv4
            &[0, 1, 24, 0, 10, 0],         // address shorter than the prefix needs
            &[0, 1, 16, 0, 10, 0, 0],      // longer
            &[0, 1, 20, 0, 10, 189, 8],    // a bit set beyond /20
            &[0, 1, 24],                   // truncated
        ] {
            assert_eq!(with_ecs(bad), Ecs::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn rejects_two_opts_and_compressed_qname() {
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];
        let mut two = opt.to_vec();
        two.extend_from_slice(&opt);
        let mut q = Query::default();
        let m = query(b"\x01a\x00", 1, &two, 2);
        assert_eq!(parse_query(&m, &mut q), Err(ParseError::FormErr { question: true }));
        let m = query(b"\xc0\x0c", 1, &[], 0);
        assert_eq!(parse_query(&m, &mut q), Err(ParseError::FormErr { question: false }));
        assert_eq!(parse_query(&m[..5], &mut q), Err(ParseError::Drop));
    }
}
