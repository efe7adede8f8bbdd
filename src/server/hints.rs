//! A pool's HTTPS/SVCB record completed per query: its `ipv4hint` and `ipv6hint` (RFC 9460
//! §7.3) are the addresses the name's A and AAAA answers give the same client right now, so
//! a browser that connects to the hints goes where an A/AAAA lookup would have sent it. The
//! pre-encoded record (without hints) is the template; this module reads addresses out of
//! pre-encoded answers and writes the completed record. No allocation.

use crate::dns::types::{SVC_IPV4HINT, SVC_IPV6HINT, TYPE_A, TYPE_AAAA};

/// Most addresses of one family a record's hint carries (an answer has at most
/// `max_answers` members, 64, of one or a few addresses each).
pub const MAX_HINTS: usize = 64;

/// The addresses of one family, as their RDATA (4 or 16 bytes each).
pub struct Addresses {
    bytes: [u8; MAX_HINTS * 16],
    len: usize,
}

impl Default for Addresses {
    fn default() -> Self {
        Addresses { bytes: [0; MAX_HINTS * 16], len: 0 }
    }
}

impl Addresses {
    /// The addresses, back to back (the hint's value).
    pub fn value(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Appends the RDATA of the records of type `rtype` (A or AAAA) among the `count`
    /// records encoded at the start of `records` (owners compressed or not); stops at
    /// [`MAX_HINTS`] addresses or at bytes that do not parse.
    pub fn collect(&mut self, records: &[u8], count: u16, rtype: u16) {
        let width = if rtype == TYPE_AAAA { 16 } else { 4 };
        let mut at = 0;
        for _ in 0..count {
            let Some(end) = skip_name(records, at) else { return };
            let Some(head) = records.get(end..end + 10) else { return };
            let (t, rdlen) = (u16::from_be_bytes([head[0], head[1]]), u16::from_be_bytes([head[8], head[9]]) as usize);
            let Some(rdata) = records.get(end + 10..end + 10 + rdlen) else { return };
            if t == rtype && rdlen == width && (rtype == TYPE_A || rtype == TYPE_AAAA) {
                if self.len + width > self.bytes.len() {
                    return;
                }
                self.bytes[self.len..self.len + width].copy_from_slice(rdata);
                self.len += width;
            }
            at = end + 10 + rdlen;
        }
    }
}

/// The end of the (possibly compressed) name at `at`.
fn skip_name(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *bytes.get(at)? as usize;
        if len & 0xc0 == 0xc0 {
            return Some(at + 2);
        }
        at += 1 + len;
        if len == 0 {
            return Some(at);
        }
    }
}

/// Writes the template record (one HTTPS/SVCB RR as pre-encoded: owner, type, class, TTL,
/// RDATA with priority, target `.` and SvcParams in key order) into `out` with its owner
/// pointing at the question, and `v4`/`v6` inserted as `ipv4hint`/`ipv6hint` when not empty.
/// Returns the length, or `None` when it does not fit or the template does not parse.
pub fn write(out: &mut [u8], template: &[u8], v4: &Addresses, v6: &Addresses) -> Option<usize> {
    let owner_end = skip_name(template, 0)?;
    let fixed = template.get(owner_end..owner_end + 10)?;
    let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let rdata = template.get(owner_end + 10..owner_end + 10 + rdlen)?;
    let target_end = skip_name(rdata, 2)?;
    let mut w = Writer { out, at: 0 };
    // The question's name is at offset 12 of every response.
    w.put(&[0xc0, 0x0c])?;
    w.put(&fixed[..8])?;
    let rdlen_at = w.at;
    w.put(&[0, 0])?;
    let rdata_start = w.at;
    w.put(&rdata[..target_end])?;
    let hints = [(SVC_IPV4HINT, v4.value()), (SVC_IPV6HINT, v6.value())];
    let mut pending = hints.iter().filter(|(_, v)| !v.is_empty()).peekable();
    let mut at = target_end;
    while at + 4 <= rdata.len() {
        let k = u16::from_be_bytes([rdata[at], rdata[at + 1]]);
        let len = u16::from_be_bytes([rdata[at + 2], rdata[at + 3]]) as usize;
        // A hint goes before the first configured key above it (keys stay in order).
        while let Some((hk, v)) = pending.next_if(|(hk, _)| *hk < k) {
            w.param(*hk, v)?;
        }
        w.put(rdata.get(at..at + 4 + len)?)?;
        at += 4 + len;
    }
    for (hk, v) in pending {
        w.param(*hk, v)?;
    }
    let rdlen = u16::try_from(w.at - rdata_start).ok()?;
    w.out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    Some(w.at)
}

struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.at.checked_add(bytes.len())?;
        self.out.get_mut(self.at..end)?.copy_from_slice(bytes);
        self.at = end;
        Some(())
    }

    fn param(&mut self, k: u16, value: &[u8]) -> Option<()> {
        self.put(&k.to_be_bytes())?;
        self.put(&u16::try_from(value.len()).ok()?.to_be_bytes())?;
        self.put(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// owner (pointer), HTTPS IN TTL 30, RDATA: priority 1, target ".", alpn h2, ech 0xaa.
    fn template() -> Vec<u8> {
        let rdata = [0, 1, 0, 0, 1, 0, 3, 2, b'h', b'2', 0, 5, 0, 1, 0xaa];
        let mut t = vec![0xc0, 0x0c, 0, 65, 0, 1, 0, 0, 0, 30, 0, rdata.len() as u8];
        t.extend_from_slice(&rdata);
        t
    }

    #[test]
    fn hints_go_in_key_order() {
        let mut v4 = Addresses::default();
        // Two A records with pointer owners, as pool answers are encoded.
        let mut a = Vec::new();
        for last in [1u8, 2] {
            a.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, last]);
        }
        v4.collect(&a, 2, TYPE_A);
        let mut v6 = Addresses::default();
        let mut out = [0u8; 512];
        let n = write(&mut out, &template(), &v4, &v6).unwrap();
        let rdata = &out[12..n];
        // alpn (1), ipv4hint (4) with both addresses, ech (5).
        assert_eq!(&rdata[..3], &[0, 1, 0]);
        assert_eq!(&rdata[3..10], &[0, 1, 0, 3, 2, b'h', b'2']);
        assert_eq!(&rdata[10..22], &[0, 4, 0, 8, 192, 0, 2, 1, 192, 0, 2, 2]);
        assert_eq!(&rdata[22..], &[0, 5, 0, 1, 0xaa]);
        assert_eq!(u16::from_be_bytes([out[10], out[11]]) as usize, n - 12);
        // An IPv6 hint lands after ech; none at all leaves the template as it was.
        v6.collect(
            &[0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0, 30, 0, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            1,
            TYPE_AAAA,
        );
        let n = write(&mut out, &template(), &Addresses::default(), &v6).unwrap();
        assert_eq!(&out[n - 20..n - 16], &[0, 6, 0, 16]);
        let n = write(&mut out, &template(), &Addresses::default(), &Addresses::default()).unwrap();
        assert_eq!(&out[..n], &template()[..]);
        assert!(write(&mut out[..20], &template(), &v4, &v6).is_none(), "does not fit");
    }
}
