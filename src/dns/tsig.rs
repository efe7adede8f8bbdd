//! TSIG (RFC 8945): shared-secret signatures over DNS messages, HMAC-SHA256/384/512. A
//! request's TSIG record is read and checked here, and replies (one message, or each message
//! of a zone transfer, every one signed) get theirs. Pure wire work: no I/O.

use aws_lc_rs::hmac;

use super::name::Name;
use super::types::TYPE_TSIG;
use super::wire::be16;

/// Class ANY, which TSIG records carry.
const CLASS_ANY: u16 = 255;
/// Response code NOTAUTH (RFC 8945 §5.2: every TSIG failure of a request).
pub const RCODE_NOTAUTH: u8 = 9;
/// TSIG error BADSIG: the MAC did not verify.
pub const BADSIG: u16 = 16;
/// TSIG error BADKEY: the key is not known here (or not with that algorithm).
pub const BADKEY: u16 = 17;
/// TSIG error BADTIME: the time signed is outside the fudge.
pub const BADTIME: u16 = 18;
/// TSIG error BADTRUNC: a truncated MAC shorter than we accept.
pub const BADTRUNC: u16 = 22;
/// The fudge our signatures carry (RFC 8945 §10 recommends 300 s).
const FUDGE: u16 = 300;

/// A TSIG algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// hmac-sha256 (the one every implementation has).
    HmacSha256,
    /// hmac-sha384.
    HmacSha384,
    /// hmac-sha512.
    HmacSha512,
}

impl Algorithm {
    /// Every algorithm, by its name in the config and on the wire.
    pub const ALL: [(Algorithm, &'static str); 3] = [
        (Algorithm::HmacSha256, "hmac-sha256"),
        (Algorithm::HmacSha384, "hmac-sha384"),
        (Algorithm::HmacSha512, "hmac-sha512"),
    ];

    /// The algorithm's name (as the config and the wire spell it).
    pub fn as_str(self) -> &'static str {
        Algorithm::ALL.iter().find(|(a, _)| *a == self).map_or("", |(_, n)| n)
    }

    fn wire_name(self) -> Name {
        Name::parse(&format!("{}.", self.as_str()), None).expect("algorithm names are valid names")
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Algorithm::HmacSha256 => hmac::HMAC_SHA256,
            Algorithm::HmacSha384 => hmac::HMAC_SHA384,
            Algorithm::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    fn mac_len(self) -> usize {
        match self {
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }
}

/// A shared key.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// Its name (the TSIG record's owner).
    pub name: Name,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// The secret.
    pub secret: Box<[u8]>,
}

impl std::fmt::Debug for TsigKey {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey").field("name", &self.name).field("algorithm", &self.algorithm).finish()
    }
}

/// A request's TSIG record as read.
#[derive(Debug, Clone)]
pub struct TsigRecord {
    /// Where the record starts in the message.
    pub start: usize,
    /// Key name.
    pub key: Name,
    /// Algorithm name.
    pub algorithm: Name,
    /// Seconds since the epoch when it was signed.
    pub time_signed: u64,
    /// Seconds of leeway.
    pub fudge: u16,
    /// The MAC.
    pub mac: Vec<u8>,
    /// The message ID it was signed with.
    pub original_id: u16,
    /// The error field.
    pub error: u16,
    /// Other data.
    pub other: Vec<u8>,
}

/// What checking a request's TSIG found.
#[derive(Debug)]
pub enum Verified<'k> {
    /// Signed with this key: the reply is signed with it, over `mac`.
    Good {
        /// The key.
        key: &'k TsigKey,
        /// The request's MAC (the reply's MAC covers it).
        mac: Vec<u8>,
    },
    /// Not acceptable: the reply is NOTAUTH with this TSIG error (BADTIME signed, the rest
    /// unsigned).
    Failed {
        /// BADKEY, BADSIG, BADTIME or BADTRUNC.
        error: u16,
        /// The key, when it is known (BADTIME replies are signed with it).
        key: Option<&'k TsigKey>,
        /// The request's record.
        record: TsigRecord,
    },
}

/// Reads a possibly compressed name at `pos`; returns it and the offset after it (after the
/// first pointer, when it has one).
fn read_name(buf: &[u8], mut pos: usize) -> Option<(Name, usize)> {
    let mut wire = Vec::with_capacity(32);
    let mut end = None;
    let mut jumps = 0;
    loop {
        let l = *buf.get(pos)? as usize;
        match l {
            0 => {
                wire.push(0);
                break;
            }
            1..=63 => {
                wire.extend_from_slice(buf.get(pos..pos + 1 + l)?);
                if wire.len() > 255 {
                    return None;
                }
                pos += 1 + l;
            }
            0xc0..=0xff => {
                let to = ((l & 0x3f) << 8) | *buf.get(pos + 1)? as usize;
                end.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > 64 || to >= pos {
                    return None;
                }
                pos = to;
            }
            _ => return None,
        }
    }
    Some((Name::from_wire_unchecked(&wire), end.unwrap_or(pos + 1)))
}

/// Reads the TSIG record starting at `start` (the last record of the message).
pub fn read(msg: &[u8], start: usize) -> Option<TsigRecord> {
    let (key, p) = read_name(msg, start)?;
    if be16(msg, p)? != TYPE_TSIG {
        return None;
    }
    let rdlen = be16(msg, p + 8)? as usize;
    let rd = p + 10;
    let end = rd + rdlen;
    if end != msg.len() {
        return None;
    }
    let (algorithm, mut q) = read_name(msg, rd)?;
    let time = msg.get(q..q + 6)?;
    let time_signed = time.iter().fold(0u64, |t, &b| t << 8 | u64::from(b));
    q += 6;
    let fudge = be16(msg, q)?;
    let mac_len = be16(msg, q + 2)? as usize;
    let mac = msg.get(q + 4..q + 4 + mac_len)?.to_vec();
    q += 4 + mac_len;
    let original_id = be16(msg, q)?;
    let error = be16(msg, q + 2)?;
    let other_len = be16(msg, q + 4)? as usize;
    let other = msg.get(q + 6..q + 6 + other_len)?.to_vec();
    (q + 6 + other_len == end).then_some(TsigRecord {
        start,
        key,
        algorithm,
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// The TSIG variables a MAC covers after the message (RFC 8945 §4.3.3).
fn variables(key: &Name, algorithm: &Name, time: u64, fudge: u16, error: u16, other: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(key.as_wire());
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(algorithm.as_wire());
    out.extend_from_slice(&time.to_be_bytes()[2..]);
    out.extend_from_slice(&fudge.to_be_bytes());
    out.extend_from_slice(&error.to_be_bytes());
    out.extend_from_slice(&(other.len() as u16).to_be_bytes());
    out.extend_from_slice(other);
}

/// The message as it was before its TSIG record was added: ID restored, ARCOUNT one less.
fn unsigned_message(msg: &[u8], record: &TsigRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&record.original_id.to_be_bytes());
    out.extend_from_slice(&msg[2..10]);
    let arcount = u16::from_be_bytes([msg[10], msg[11]]).saturating_sub(1);
    out.extend_from_slice(&arcount.to_be_bytes());
    out.extend_from_slice(&msg[12..record.start]);
}

/// Checks a request's TSIG record against `keys` at `now` (seconds since the epoch).
pub fn verify<'k>(msg: &[u8], record: TsigRecord, keys: &'k [TsigKey], now: u64) -> Verified<'k> {
    let Some(key) = keys.iter().find(|k| k.name == record.key && k.algorithm.wire_name() == record.algorithm) else {
        return Verified::Failed { error: BADKEY, key: None, record };
    };
    let full = key.algorithm.mac_len();
    // RFC 8945 §5.2.2.1: a truncated MAC must keep at least half the bits (and 10 bytes).
    if record.mac.len() > full || record.mac.len() < (full / 2).max(10) {
        let error = if record.mac.len() > full { BADSIG } else { BADTRUNC };
        return Verified::Failed { error, key: Some(key), record };
    }
    let mut data = Vec::with_capacity(msg.len() + 128);
    unsigned_message(msg, &record, &mut data);
    variables(&record.key, &record.algorithm, record.time_signed, record.fudge, record.error, &record.other, &mut data);
    let tag = hmac::sign(&hmac::Key::new(key.algorithm.hmac(), &key.secret), &data);
    // Constant time, over the length the client sent.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&tag.as_ref()[..record.mac.len()], &record.mac[..])) {
        return Verified::Failed { error: BADSIG, key: Some(key), record };
    }
    if now.abs_diff(record.time_signed) > u64::from(record.fudge) {
        return Verified::Failed { error: BADTIME, key: Some(key), record };
    }
    Verified::Good { key, mac: record.mac }
}

/// Signs the replies of one exchange: the first covers the request's MAC, each later one
/// the MAC before it (RFC 8945 §5.3.1; every message is signed).
pub struct Signer<'k> {
    key: &'k TsigKey,
    prior: Vec<u8>,
    first: bool,
    algorithm: Name,
}

impl<'k> Signer<'k> {
    /// A signer of replies to a request signed with `key` whose MAC was `request_mac`.
    pub fn new(key: &'k TsigKey, request_mac: Vec<u8>) -> Signer<'k> {
        Signer { key, prior: request_mac, first: true, algorithm: key.algorithm.wire_name() }
    }

    /// The key's name.
    pub fn key_name(&self) -> &Name {
        &self.key.name
    }

    /// Appends a TSIG record to the reply `msg` (its ARCOUNT counts it), signed at `now`.
    pub fn sign(&mut self, msg: &mut Vec<u8>, now: u64) {
        let mut data = Vec::with_capacity(msg.len() + 128);
        data.extend_from_slice(&(self.prior.len() as u16).to_be_bytes());
        data.extend_from_slice(&self.prior);
        data.extend_from_slice(msg);
        if self.first {
            variables(&self.key.name, &self.algorithm, now, FUDGE, 0, &[], &mut data);
        } else {
            data.extend_from_slice(&now.to_be_bytes()[2..]);
            data.extend_from_slice(&FUDGE.to_be_bytes());
        }
        let tag = hmac::sign(&hmac::Key::new(self.key.algorithm.hmac(), &self.key.secret), &data);
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        append(msg, &self.key.name, &self.algorithm, now, tag.as_ref(), id, 0, &[]);
        self.prior = tag.as_ref().to_vec();
        self.first = false;
    }
}

/// Turns `msg` (a reply's header and question) into the NOTAUTH reply for a failed request
/// TSIG: unsigned with the error, except BADTIME, signed and carrying our time (RFC 8945
/// §5.2).
pub fn failure_reply(msg: &mut Vec<u8>, error: u16, key: Option<&TsigKey>, record: &TsigRecord, now: u64) {
    msg[3] = (msg[3] & 0xf0) | RCODE_NOTAUTH;
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    match (error, key) {
        (BADTIME, Some(key)) => {
            let other = now.to_be_bytes()[2..].to_vec();
            let algorithm = key.algorithm.wire_name();
            let mut data = Vec::with_capacity(msg.len() + 128);
            data.extend_from_slice(&(record.mac.len() as u16).to_be_bytes());
            data.extend_from_slice(&record.mac);
            data.extend_from_slice(msg);
            variables(&key.name, &algorithm, record.time_signed, FUDGE, error, &other, &mut data);
            let tag = hmac::sign(&hmac::Key::new(key.algorithm.hmac(), &key.secret), &data);
            append(msg, &key.name, &algorithm, record.time_signed, tag.as_ref(), id, error, &other);
        }
        _ => append(msg, &record.key, &record.algorithm, record.time_signed, &[], id, error, &[]),
    }
}

#[allow(clippy::too_many_arguments)]
fn append(msg: &mut Vec<u8>, key: &Name, algorithm: &Name, time: u64, mac: &[u8], id: u16, error: u16, other: &[u8]) {
    msg.extend_from_slice(key.as_wire());
    msg.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    let rdlen = algorithm.wire_len() + 6 + 2 + 2 + mac.len() + 2 + 2 + 2 + other.len();
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    msg.extend_from_slice(algorithm.as_wire());
    msg.extend_from_slice(&time.to_be_bytes()[2..]);
    msg.extend_from_slice(&FUDGE.to_be_bytes());
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(mac);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&error.to_be_bytes());
    msg.extend_from_slice(&(other.len() as u16).to_be_bytes());
    msg.extend_from_slice(other);
    let arcount = u16::from_be_bytes([msg[10], msg[11]]) + 1;
    msg[10..12].copy_from_slice(&arcount.to_be_bytes());
}

/// Signs a request (NOTIFY, tests) with `key` at `now`: appends the TSIG record; returns the
/// MAC, which the reply's signature covers.
pub fn sign_request(msg: &mut Vec<u8>, key: &TsigKey, now: u64) -> Vec<u8> {
    let algorithm = key.algorithm.wire_name();
    let mut data = msg.clone();
    variables(&key.name, &algorithm, now, FUDGE, 0, &[], &mut data);
    let tag = hmac::sign(&hmac::Key::new(key.algorithm.hmac(), &key.secret), &data);
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    append(msg, &key.name, &algorithm, now, tag.as_ref(), id, 0, &[]);
    tag.as_ref().to_vec()
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TsigKey {
        TsigKey {
            name: Name::parse("xfr-key.", None).unwrap(),
            algorithm: Algorithm::HmacSha256,
            secret: b"0123456789abcdef0123456789abcdef".to_vec().into(),
        }
    }

    fn query() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x04test\x00\x00\xfc\x00\x01");
        m
    }

    /// A request we sign verifies; a changed byte, another secret or an old time do not.
    #[test]
    fn sign_and_verify() {
        let keys = [key()];
        let mut m = query();
        let start = m.len();
        let mac = sign_request(&mut m, &keys[0], 1_000_000);
        let rec = read(&m, start).unwrap();
        assert_eq!((rec.original_id, rec.mac.clone()), (0x1234, mac.clone()));
        assert!(matches!(verify(&m, rec.clone(), &keys, 1_000_100), Verified::Good { mac: m2, .. } if m2 == mac));
        assert!(matches!(verify(&m, rec.clone(), &keys, 1_000_400), Verified::Failed { error: BADTIME, .. }));
        let mut other = key();
        other.secret = b"another secret, another signature".to_vec().into();
        assert!(matches!(verify(&m, rec.clone(), &[other], 1_000_000), Verified::Failed { error: BADSIG, .. }));
        let mut renamed = key();
        renamed.name = Name::parse("other.", None).unwrap();
        assert!(matches!(verify(&m, rec, &[renamed], 1_000_000), Verified::Failed { error: BADKEY, .. }));
        let mut changed = m.clone();
        changed[14] ^= 1;
        let rec = read(&changed, start).unwrap();
        assert!(matches!(verify(&changed, rec, &keys, 1_000_000), Verified::Failed { error: BADSIG, .. }));
    }

    /// A reply's MAC covers the request's, then each message the one before.
    #[test]
    fn replies_chain() {
        let k = key();
        let mut a = query();
        a[2] |= 0x80;
        let mut b = a.clone();
        let mut s1 = Signer::new(&k, vec![1, 2, 3]);
        s1.sign(&mut a, 5);
        s1.sign(&mut b, 5);
        let mut s2 = Signer::new(&k, vec![1, 2, 4]);
        let mut c = query();
        c[2] |= 0x80;
        s2.sign(&mut c, 5);
        assert_ne!(a, c, "the request MAC is covered");
        assert_ne!(a[a.len() - 40..], b[b.len() - 40..], "the second message covers the first MAC");
        assert_eq!(u16::from_be_bytes([a[10], a[11]]), 1);
    }
}
