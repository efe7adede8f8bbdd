//! Packs a transfer's records into DNS messages: the reply's header and question first, then
//! as many records as fit in [`MESSAGE_BYTES`], the next message when one does not. An owner
//! repeated in a row, and the apex while the question names it, is a pointer; other names
//! are written out.

use crate::dns::name::Name;
use crate::dns::records::RData;
use crate::dns::types::CLASS_IN;
use crate::dns::wire::HEADER_LEN;

/// Bytes a message is filled to (room is left for a TSIG record within 64 KiB).
pub const MESSAGE_BYTES: usize = 16 * 1024;

/// Messages being filled.
pub struct Packer {
    /// The reply's header and question as the first message starts.
    first: Vec<u8>,
    buf: Vec<u8>,
    count: u16,
    /// The owner of the last record and where it was written.
    last: Option<(Name, u16)>,
    /// The question's name is in this message (at offset 12).
    has_question: bool,
    rdata: Vec<u8>,
}

impl Packer {
    /// Starts with the reply `head` (header and question, as the first message has them).
    pub fn new(head: &[u8]) -> Packer {
        Packer { first: head.to_vec(), buf: head.to_vec(), count: 0, last: None, has_question: true, rdata: Vec::new() }
    }

    /// Adds a record; returns the message it filled, when it did not fit.
    pub fn add(&mut self, owner: &Name, rtype: u16, ttl: u32, rd: &RData) -> Option<Vec<u8>> {
        self.rdata.clear();
        rd.write_uncompressed(&mut self.rdata);
        let need = owner.wire_len() + 10 + self.rdata.len();
        let full = (self.count > 0 && self.buf.len() + need > MESSAGE_BYTES).then(|| self.next());
        let at = self.buf.len();
        let pointer = match &self.last {
            Some((n, off)) if n == owner => Some(*off),
            _ if self.has_question
                && owner.as_wire()
                    == &self.first[HEADER_LEN..HEADER_LEN + owner.wire_len().min(self.first.len() - HEADER_LEN)] =>
            {
                Some(HEADER_LEN as u16)
            }
            _ => None,
        };
        match pointer {
            Some(off) => self.buf.extend_from_slice(&(0xc000 | off).to_be_bytes()),
            None => {
                self.buf.extend_from_slice(owner.as_wire());
                if at < 0x3fff {
                    self.last = Some((owner.clone(), at as u16));
                }
            }
        }
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&(self.rdata.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(&self.rdata);
        self.count += 1;
        full
    }

    /// The message filled so far (with its record count), and a new one started: the same
    /// header without the question.
    fn next(&mut self) -> Vec<u8> {
        let mut next = self.first[..HEADER_LEN].to_vec();
        next[4..6].copy_from_slice(&0u16.to_be_bytes());
        self.buf[6..8].copy_from_slice(&self.count.to_be_bytes());
        let done = std::mem::replace(&mut self.buf, next);
        self.count = 0;
        self.last = None;
        self.has_question = false;
        done
    }

    /// The last message.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf[6..8].copy_from_slice(&self.count.to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Vec<u8> {
        let mut m = vec![0, 1, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x00\x00\xfc\x00\x01");
        m
    }

    /// Records fill messages to the limit; every record is in exactly one message, owners
    /// repeated are pointers.
    #[test]
    fn records_spread_over_messages() {
        let mut p = Packer::new(&head());
        let apex = Name::parse("example.", None).unwrap();
        let www = Name::parse("www.example.", None).unwrap();
        let mut messages = Vec::new();
        for i in 0..3000u32 {
            let owner = if i % 2 == 0 { &apex } else { &www };
            if let Some(m) = p.add(owner, 1, 60, &RData::A(std::net::Ipv4Addr::from(i))) {
                messages.push(m);
            }
        }
        messages.push(p.finish());
        assert!(messages.len() > 1);
        let total: u32 = messages.iter().map(|m| u32::from(u16::from_be_bytes([m[6], m[7]]))).sum();
        assert_eq!(total, 3000);
        assert!(messages.iter().all(|m| m.len() <= MESSAGE_BYTES));
        assert_eq!(u16::from_be_bytes([messages[1][4], messages[1][5]]), 0, "the question is in the first only");
        // The apex in the first message points at the question.
        assert_eq!(&messages[0][head().len()..head().len() + 2], &[0xc0, 12]);
    }
}
