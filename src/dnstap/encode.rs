//! dnstap messages in protobuf (dnstap.proto: `Dnstap` holding one `Message`), each as a
//! Frame Streams data frame (a 4-byte big-endian length, then the bytes). Written by hand
//! into the caller's buffer: the workers encode on the query path, where building an owned
//! message struct per query would allocate.

use std::net::{IpAddr, SocketAddr};

/// `Message.Type` values we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `AUTH_QUERY` (1).
    AuthQuery = 1,
    /// `AUTH_RESPONSE` (2).
    AuthResponse = 2,
}

/// `SocketProtocol` values we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `UDP` (1).
    Udp = 1,
    /// `TCP` (2).
    Tcp = 2,
    /// `DOT` (3): DNS over TLS.
    Dot = 3,
}

/// A time as dnstap carries it: seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// Seconds.
    pub sec: u64,
    /// Nanoseconds within the second.
    pub nsec: u32,
}

impl Stamp {
    /// The wall-clock time now.
    pub fn now() -> Stamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Stamp { sec: d.as_secs(), nsec: d.subsec_nanos() }
    }

    /// Nanoseconds since the epoch.
    pub fn nanos(self) -> u64 {
        self.sec * 1_000_000_000 + u64::from(self.nsec)
    }
}

/// One query and its response.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The client.
    pub client: SocketAddr,
    /// Our address it was sent to.
    pub server: SocketAddr,
    /// UDP or TCP.
    pub protocol: Protocol,
    /// When the query arrived.
    pub query_time: Stamp,
    /// When the response was ready.
    pub response_time: Stamp,
    /// The query as received.
    pub query: &'a [u8],
    /// The response as sent (without TCP's length prefix).
    pub response: &'a [u8],
}

/// The `identity` and `version` fields that start every `Dnstap` we write.
pub fn header(identity: &str, version: &str) -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(&mut out, 1, identity.as_bytes());
    bytes_field(&mut out, 2, version.as_bytes());
    out
}

/// Appends one data frame holding a `Dnstap` of kind `kind` for `ex` to `out`; `scratch`
/// is reused for the inner message.
pub fn frame(out: &mut Vec<u8>, scratch: &mut Vec<u8>, header: &[u8], kind: Kind, ex: &Exchange<'_>) {
    scratch.clear();
    varint_field(scratch, 1, kind as u64);
    let family = if ex.client.is_ipv4() { 1 } else { 2 };
    varint_field(scratch, 2, family);
    varint_field(scratch, 3, ex.protocol as u64);
    address_field(scratch, 4, ex.client.ip());
    address_field(scratch, 5, ex.server.ip());
    varint_field(scratch, 6, u64::from(ex.client.port()));
    varint_field(scratch, 7, u64::from(ex.server.port()));
    varint_field(scratch, 8, ex.query_time.sec);
    fixed32_field(scratch, 9, ex.query_time.nsec);
    match kind {
        Kind::AuthQuery => bytes_field(scratch, 10, ex.query),
        Kind::AuthResponse => {
            varint_field(scratch, 12, ex.response_time.sec);
            fixed32_field(scratch, 13, ex.response_time.nsec);
            bytes_field(scratch, 14, ex.response);
        }
    }
    // Dnstap: the header fields, message (14), type (15) = MESSAGE (1).
    let len = header.len() + 1 + varint_len(scratch.len() as u64) + scratch.len() + 2;
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(header);
    bytes_field(out, 14, scratch);
    varint_field(out, 15, 1);
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(out, u64::from(field << 3 | wire_type));
}

fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

fn fixed32_field(out: &mut Vec<u8>, field: u32, v: u32) {
    key(out, field, 5);
    out.extend_from_slice(&v.to_le_bytes());
}

fn bytes_field(out: &mut Vec<u8>, field: u32, v: &[u8]) {
    key(out, field, 2);
    varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

fn address_field(out: &mut Vec<u8>, field: u32, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => bytes_field(out, field, &a.octets()),
        IpAddr::V6(a) => bytes_field(out, field, &a.octets()),
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_their_lengths_agree() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }

    /// The frame's length prefix is the length of what follows it, for short and long
    /// messages (a one- and a two-byte message length).
    #[test]
    fn frame_length_matches_the_bytes() {
        let header = header("ns1", "gslbd test");
        for size in [12usize, 100, 2000] {
            let query = vec![7u8; size];
            let ex = Exchange {
                client: "192.0.2.1:5353".parse().unwrap(),
                server: "[2001:db8::1]:53".parse().unwrap(),
                protocol: Protocol::Tcp,
                query_time: Stamp { sec: 1, nsec: 2 },
                response_time: Stamp { sec: 3, nsec: 4 },
                query: &query,
                response: &query,
            };
            for kind in [Kind::AuthQuery, Kind::AuthResponse] {
                let (mut out, mut scratch) = (Vec::new(), Vec::new());
                frame(&mut out, &mut scratch, &header, kind, &ex);
                let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
                assert_eq!(len, out.len() - 4);
                assert_eq!(&out[out.len() - 2..], [0x78, 0x01]);
            }
        }
    }
}
