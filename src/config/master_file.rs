//! Static zone data from master-file text (RFC 1035 §5): the `records` string or the
//! `zone_file` of a zone. Parsing uses NLnet Labs' `domain` zone-file scanner; this module
//! turns its records into [`RData`] and reports problems with their line numbers.

use bytes::Bytes;
use domain::base::iana::Class;
use domain::base::name::ToName;
use domain::base::rdata::{ComposeRecordData, RecordData};
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};

use crate::dns::name::Name;
use crate::dns::records::{RData, Soa};

/// One record read from master-file text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRecord {
    /// Owner name.
    pub owner: Name,
    /// TTL in seconds.
    pub ttl: u32,
    /// Record data.
    pub rdata: RData,
    /// 1-based line within the text where the record starts.
    pub line: usize,
}

/// A problem in master-file text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterError {
    /// 1-based line within the text.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses master-file text with names relative to `origin`; records without a TTL get
/// `default_ttl`. Stops at the first syntax error (the scanner cannot resume after one).
pub fn parse(text: &str, origin: &Name, default_ttl: u32) -> Result<Vec<StaticRecord>, MasterError> {
    let prelude = format!("$ORIGIN {origin}\n$TTL {default_ttl}\n");
    let mut zone = Zonefile::with_capacity(prelude.len() + text.len() + 1);
    zone.extend_from_slice(prelude.as_bytes());
    zone.extend_from_slice(text.as_bytes());
    if !text.ends_with('\n') {
        zone.extend_from_slice(b"\n");
    }
    zone.set_default_class(Class::IN);
    let mut out = Vec::new();
    loop {
        let start = entry_start(text, zone.current_offset().saturating_sub(prelude.len()));
        // The scanner (domain 0.12) panics on some malformed input, e.g. `\#("TXT"T"1">`
        // (found by fuzzing): a bad config must be an error, never a crash of `check` or of a
        // running server's reload.
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| zone.next_entry()));
        let entry = match next {
            Ok(Ok(Some(entry))) => entry,
            Ok(Ok(None)) => return Ok(out),
            Ok(Err(e)) => {
                return Err(scanner_error(&e.to_string(), crate::config::error::line_of(text, start)));
            }
            Err(_) => {
                return Err(MasterError {
                    line: crate::config::error::line_of(text, start),
                    message: "malformed record (the zone-file scanner could not read it)".into(),
                });
            }
        };
        let line = crate::config::error::line_of(text, start);
        let record = match entry {
            Entry::Record(record) => record,
            Entry::Include { .. } => {
                return Err(MasterError { line, message: "$INCLUDE is not supported".into() });
            }
        };
        if record.class() != Class::IN {
            return Err(MasterError { line, message: format!("class {} is not supported, only IN", record.class()) });
        }
        let owner = Name::from_wire_unchecked(record.owner().to_bytes().as_slice());
        let rdata = convert(record.data()).map_err(|message| MasterError { line, message })?;
        out.push(StaticRecord { owner, ttl: record.ttl().as_secs(), rdata, line });
    }
}

/// Start of the next entry at or after `offset`: skips blank space and comment lines.
fn entry_start(text: &str, mut offset: usize) -> usize {
    let b = text.as_bytes();
    while offset < b.len() {
        match b[offset] {
            b' ' | b'\t' | b'\r' | b'\n' => offset += 1,
            b';' => {
                while offset < b.len() && b[offset] != b'\n' {
                    offset += 1;
                }
            }
            _ => break,
        }
    }
    offset
}

/// The scanner prints `LINE:COL: message` with LINE where it stopped (often the line after
/// the record); the line the entry started on is the one to show.
fn scanner_error(shown: &str, entry_line: usize) -> MasterError {
    let message = shown.splitn(3, ':').nth(2).map_or(shown, str::trim);
    MasterError { line: entry_line, message: message.to_string() }
}

fn name<N: ToName>(n: &N) -> Name {
    Name::from_wire_unchecked(n.to_bytes().as_slice())
}

fn convert<N: ToName>(data: &ZoneRecordData<Bytes, N>) -> Result<RData, String> {
    Ok(match data {
        ZoneRecordData::A(a) => RData::A(a.addr()),
        ZoneRecordData::Aaaa(a) => RData::Aaaa(a.addr()),
        ZoneRecordData::Cname(c) => RData::Cname(name(c.cname())),
        ZoneRecordData::Ns(n) => RData::Ns(name(n.nsdname())),
        ZoneRecordData::Ptr(p) => RData::Ptr(name(p.ptrdname())),
        ZoneRecordData::Mx(m) => RData::Mx { preference: m.preference(), exchange: name(m.exchange()) },
        ZoneRecordData::Srv(s) => {
            RData::Srv { priority: s.priority(), weight: s.weight(), port: s.port(), target: name(s.target()) }
        }
        ZoneRecordData::Soa(s) => RData::Soa(Box::new(Soa {
            mname: name(s.mname()),
            rname: name(s.rname()),
            serial: s.serial().into_int(),
            refresh: s.refresh().as_secs(),
            retry: s.retry().as_secs(),
            expire: s.expire().as_secs(),
            minimum: s.minimum().as_secs(),
        })),
        other => {
            let mut bytes = Vec::new();
            other.compose_rdata(&mut bytes).map_err(|_| "record data too long".to_string())?;
            RData::Other { rtype: other.rtype().to_int(), data: bytes.into_boxed_slice() }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing found input that makes the scanner panic: it is an error with its line.
    #[test]
    fn scanner_panics_are_errors() {
        let origin = Name::parse("gslb.example.org.", None).unwrap();
        let e = parse("app 60 IN A 192.0.2.1\n\\#(\"TXT\"T\"1\">", &origin, 300).unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(e.message.contains("malformed record"), "{e:?}");
    }

    #[test]
    fn parses_relative_records_with_lines() {
        let origin = Name::parse("gslb.example.org.", None).unwrap();
        let text = "; comment\napp 60 IN A 192.0.2.10\n\nwww CNAME app\ninfo 300 TXT \"hello\"\n";
        let recs = parse(text, &origin, 300).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].owner.to_string(), "app.gslb.example.org.");
        assert_eq!((recs[0].ttl, recs[0].line), (60, 2));
        assert_eq!(recs[1].ttl, 300);
        assert_eq!(recs[1].line, 4);
        assert!(matches!(&recs[1].rdata, RData::Cname(n) if n.to_string() == "app.gslb.example.org."));
        assert!(matches!(&recs[2].rdata, RData::Other { rtype: 16, data } if &data[..] == b"\x05hello"));
    }

    #[test]
    fn ipv6_in_a_record_is_an_error_on_its_line() {
        let origin = Name::parse("z.", None).unwrap();
        let err = parse("ok A 192.0.2.1\nbad A 2001:db8::1\n", &origin, 60).unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
    }
}
