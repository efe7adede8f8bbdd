//! Frame Streams (the transport dnstap runs on), bidirectional mode: the writer sends
//! READY naming the content type, the reader answers ACCEPT, the writer sends START, then
//! data frames; at the end STOP, answered by FINISH. A control frame is an escape (a zero
//! length), its own length, a type, and fields (here only CONTENT_TYPE).

use std::io::{Read, Write};

/// The content type of dnstap.
pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// Control frame types.
pub const ACCEPT: u32 = 1;
/// Starts the data frames.
pub const START: u32 = 2;
/// Ends them.
pub const STOP: u32 = 3;
/// Offers a content type.
pub const READY: u32 = 4;
/// Answers STOP.
pub const FINISH: u32 = 5;
/// The CONTENT_TYPE control field.
const FIELD_CONTENT_TYPE: u32 = 1;
/// Longest control frame we read (the protocol's limit is 512 bytes).
const MAX_CONTROL: usize = 512;

/// A control frame of type `kind`, with our content type unless it is FINISH or STOP.
pub fn control(kind: u32) -> Vec<u8> {
    let mut body = kind.to_be_bytes().to_vec();
    if matches!(kind, READY | ACCEPT | START) {
        body.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        body.extend_from_slice(&(CONTENT_TYPE.len() as u32).to_be_bytes());
        body.extend_from_slice(CONTENT_TYPE);
    }
    let mut out = 0u32.to_be_bytes().to_vec();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads one control frame: its type and the content types it names.
pub fn read_control(r: &mut impl Read) -> std::io::Result<(u32, Vec<Vec<u8>>)> {
    let mut word = [0u8; 4];
    r.read_exact(&mut word)?;
    if u32::from_be_bytes(word) != 0 {
        return Err(invalid("expected a control frame, got a data frame"));
    }
    r.read_exact(&mut word)?;
    let len = u32::from_be_bytes(word) as usize;
    if !(4..=MAX_CONTROL).contains(&len) {
        return Err(invalid("control frame length out of range"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let kind = u32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
    let mut types = Vec::new();
    let mut rest = &body[4..];
    while rest.len() >= 8 {
        let field = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
        let flen = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes")) as usize;
        let value = rest.get(8..8 + flen).ok_or_else(|| invalid("control field overruns its frame"))?;
        if field == FIELD_CONTENT_TYPE {
            types.push(value.to_vec());
        }
        rest = &rest[8 + flen..];
    }
    Ok((kind, types))
}

/// The writer's side of the opening: READY, wait for ACCEPT naming dnstap, START.
pub fn open(stream: &mut (impl Read + Write)) -> std::io::Result<()> {
    stream.write_all(&control(READY))?;
    let (kind, types) = read_control(stream)?;
    if kind != ACCEPT {
        return Err(invalid(&format!("the receiver answered READY with control frame {kind}, not ACCEPT")));
    }
    if !types.is_empty() && !types.iter().any(|t| t == CONTENT_TYPE) {
        return Err(invalid("the receiver does not accept protobuf:dnstap.Dnstap"));
    }
    stream.write_all(&control(START))
}

/// The writer's side of the close: STOP, then wait (up to the stream's read timeout) for
/// FINISH.
pub fn close(stream: &mut (impl Read + Write)) -> std::io::Result<()> {
    stream.write_all(&control(STOP))?;
    match read_control(stream)? {
        (FINISH, _) => Ok(()),
        (kind, _) => Err(invalid(&format!("the receiver answered STOP with control frame {kind}, not FINISH"))),
    }
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_read_back() {
        for kind in [READY, ACCEPT, START, STOP, FINISH] {
            let bytes = control(kind);
            let (got, types) = read_control(&mut &bytes[..]).unwrap();
            assert_eq!(got, kind);
            assert_eq!(types.len(), usize::from(matches!(kind, READY | ACCEPT | START)));
        }
        // READY is escape, length 34, type 4, field 1 of 22 bytes.
        assert_eq!(&control(READY)[..16], [0, 0, 0, 0, 0, 0, 0, 34, 0, 0, 0, 4, 0, 0, 0, 1]);
        assert!(read_control(&mut &[0u8, 0, 0, 9, 1, 2, 3][..]).is_err());
    }
}
