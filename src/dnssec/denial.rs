//! Compact denial of existence (RFC 9824): a name that does not exist, or has no data of the
//! asked type, is answered NOERROR with one NSEC from the name itself to `\000.<name>`; its
//! type bitmap holds the name's types (NODATA) or NXNAME (no such name). One signature per
//! name, made when asked, instead of a pre-computed chain that lets anyone walk the zone.

/// Record type NSEC.
pub const TYPE_NSEC: u16 = 47;
/// Record type DNSKEY.
pub const TYPE_DNSKEY: u16 = 48;
/// Record type CDS (RFC 7344).
pub const TYPE_CDS: u16 = 59;
/// Record type CDNSKEY (RFC 7344).
pub const TYPE_CDNSKEY: u16 = 60;
/// Pseudo-type NXNAME in an NSEC bitmap: the name does not exist (RFC 9824 §3.4).
pub const TYPE_NXNAME: u16 = 128;
/// EDNS header flag CO, "compact answers OK": the client wants NXDOMAIN back in the RCODE
/// (RFC 9824 §4), the bit after DO.
pub const EDNS_FLAG_CO: u16 = 0x4000;

/// Appends the NSEC type bitmap of `types` (sorted, distinct) (RFC 4034 §4.1.2).
pub fn write_bitmap(types: &[u16], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < types.len() {
        let window = (types[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut used = 0;
        while i < types.len() && (types[i] >> 8) as u8 == window {
            let low = (types[i] & 0xff) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            used = used.max(low / 8 + 1);
            i += 1;
        }
        out.push(window);
        out.push(used as u8);
        out.extend_from_slice(&bits[..used]);
    }
}

/// The NSEC RDATA of a compact answer for `owner` (lower-case wire): next name
/// `\000.<owner>`, then the bitmap of `types` (sorted, distinct).
pub fn write_nsec_rdata(owner: &[u8], types: &[u16], out: &mut Vec<u8>) {
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(owner);
    write_bitmap(types, out);
}

/// The bitmap types of a name with `present` types (any order, may repeat): those, RRSIG and
/// NSEC, sorted and distinct, into `out`.
pub fn nodata_types(present: impl Iterator<Item = u16>, out: &mut Vec<u16>) {
    out.clear();
    out.extend(present);
    out.extend([crate::dnssec::sign::TYPE_RRSIG, TYPE_NSEC]);
    out.sort_unstable();
    out.dedup();
}

/// The bitmap types of a name that does not exist: RRSIG, NSEC, NXNAME.
pub const NXNAME_TYPES: [u16; 3] = [crate::dnssec::sign::TYPE_RRSIG, TYPE_NSEC, TYPE_NXNAME];

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4034 §4.3's example bitmap: A MX RRSIG NSEC TYPE1234.
    #[test]
    fn rfc4034_example_bitmap() {
        let mut out = Vec::new();
        write_bitmap(&[1, 15, 46, 47, 1234], &mut out);
        // Window 0: six bytes (A, MX, RRSIG, NSEC); window 4: 27 bytes, the last 0x20.
        let mut want = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        want.extend([0u8; 26]);
        want.push(0x20);
        assert_eq!(out, want);
    }

    #[test]
    fn nxname_bitmap_and_next_name() {
        let mut out = Vec::new();
        write_nsec_rdata(b"\x01a\x07example\x00", &NXNAME_TYPES, &mut out);
        assert_eq!(&out[..2], &[1, 0]);
        assert_eq!(&out[2..13], b"\x01a\x07example\x00");
        // Window 0: RRSIG (46) and NSEC (47) in byte 5; NXNAME (128) in byte 16.
        let mut want = vec![0u8, 17, 0, 0, 0, 0, 0, 0x03];
        want.extend([0u8; 10]);
        want.push(0x80);
        assert_eq!(&out[13..], &want[..]);
    }
}
