//! DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018): a server cookie is
//! version 1, three reserved bytes, a timestamp, and SipHash-2-4 keyed by the server secret
//! over the client cookie, those eight bytes and the client address. Any instance with the
//! same secret verifies any other's cookies; a cookie is valid from one hour before to five
//! minutes after the server's clock. A secret can rotate: the previous one still verifies.

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

use crate::snapshot::CookieSettings;

/// Server cookies older than this are not valid (RFC 9018 §4.3).
const MAX_AGE: u32 = 3600;
/// Nor ones this far in the future.
const MAX_AHEAD: u32 = 300;

/// What a query's cookie turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieUse {
    /// No COOKIE option (or cookies are off).
    Absent,
    /// A client cookie alone.
    ClientOnly,
    /// A server cookie we made, in date: the client is who it says (exempt from RRL).
    Valid,
    /// A server cookie that is not ours, out of date, or for another address.
    Invalid,
    /// FORMERR.
    Malformed,
}

impl CookieUse {
    /// Every value, in metric order.
    pub const ALL: [CookieUse; 5] =
        [CookieUse::Absent, CookieUse::ClientOnly, CookieUse::Valid, CookieUse::Invalid, CookieUse::Malformed];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CookieUse::Absent => "absent",
            CookieUse::ClientOnly => "client_only",
            CookieUse::Valid => "valid",
            CookieUse::Invalid => "invalid",
            CookieUse::Malformed => "malformed",
        }
    }
}

/// The 16-byte server cookie for `client` at `ip` and time `now` (seconds since the epoch).
pub fn server_cookie(secret: &[u8; 16], client: &[u8; 8], ip: IpAddr, now: u32) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[0] = 1;
    out[4..8].copy_from_slice(&now.to_be_bytes());
    let mac = hash(secret, client, &out[..8], ip);
    out[8..].copy_from_slice(&mac);
    out
}

fn hash(secret: &[u8; 16], client: &[u8; 8], head: &[u8], ip: IpAddr) -> [u8; 8] {
    let mut h = SipHasher24::new_with_key(secret);
    h.write(client);
    h.write(head);
    match ip {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    h.finish().to_le_bytes()
}

/// Checks a server cookie the client returned against the current and previous secrets.
pub fn verify(settings: &CookieSettings, client: &[u8; 8], server: &[u8], ip: IpAddr, now: u32) -> bool {
    // Version 1; the reserved bytes are hashed as sent (RFC 9018 §4.2).
    if server.len() != 16 || server[0] != 1 {
        return false;
    }
    let stamp = u32::from_be_bytes(server[4..8].try_into().expect("4 bytes"));
    // Serial-number arithmetic: the clock wraps in 2106.
    let age = now.wrapping_sub(stamp);
    if age > MAX_AGE && stamp.wrapping_sub(now) > MAX_AHEAD {
        return false;
    }
    [Some(&settings.secret), settings.previous.as_ref()]
        .into_iter()
        .flatten()
        .any(|secret| hash(secret, client, &server[..8], ip) == server[8..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 9018 appendix A: the server cookies BIND, Knot and PowerDNS make for the same
    /// inputs, so instances of any of them verify each other's.
    #[test]
    fn rfc9018_test_vectors() {
        let secret: [u8; 16] = hex("e5e973e5a6b2a43f48e7dc849e37bfcf").try_into().unwrap();
        let made = [
            ("2464c4abcf10c957", "198.51.100.100", 1559731985, "010000005cf79f111f8130c3eee29480"),
            ("2464c4abcf10c957", "198.51.100.100", 1559734385, "010000005cf7a871d4a564a1442aca77"),
            ("fc93fc62807ddb86", "203.0.113.203", 1559734700, "010000005cf7a9acf73a7810aca2381e"),
        ];
        let settings = CookieSettings { secret, previous: None, required: false };
        for (client, ip, now, want) in made {
            let client: [u8; 8] = hex(client).try_into().unwrap();
            let ip: IpAddr = ip.parse().unwrap();
            let got = server_cookie(&secret, &client, ip, now);
            assert_eq!(got.to_vec(), hex(want), "{ip} at {now}");
            assert!(verify(&settings, &client, &got, ip, now + 10));
            assert!(!verify(&settings, &client, &got, ip, now + MAX_AGE + 1), "too old");
            assert!(!verify(&settings, &client, &got, "192.0.2.1".parse().unwrap(), now), "another address");
        }
        // A.3's query: reserved bytes the client set are hashed as sent.
        let client: [u8; 8] = hex("fc93fc62807ddb86").try_into().unwrap();
        let sent = hex("01abcdef5cf78f71a314227b6679ebf5");
        assert!(verify(&settings, &client, &sent, "203.0.113.203".parse().unwrap(), 1559727985 + 10));
        // A.4: an IPv6 client's cookie made with the old secret verifies after a rollover.
        let old: [u8; 16] = hex("dd3bdf9344b678b185a6f5cb60fca715").try_into().unwrap();
        let new: [u8; 16] = hex("445536bcd2513298075a5d379663c962").try_into().unwrap();
        let client: [u8; 8] = hex("22681ab97d52c298").try_into().unwrap();
        let sent = hex("010000005cf7c57926556bd0934c72f8");
        let ip: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        let rolled = CookieSettings { secret: new, previous: Some(old), required: false };
        assert!(verify(&rolled, &client, &sent, ip, 1559741817 + 10));
        assert!(!verify(&CookieSettings { previous: None, ..rolled }, &client, &sent, ip, 1559741817 + 10));
    }
}
