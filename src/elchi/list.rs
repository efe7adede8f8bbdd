//! Record lists (`[{"name": ...}, ...]`, the controller's and the state files') decoded on
//! up to two threads: the list is cut at a record boundary near its middle, each half is
//! decoded (strings borrowed) and converted on its own thread, and the halves are merged. A
//! cut that lands inside a record (an unknown field holding objects) shows as a half that
//! does not decode to its end; the caller then decodes the plain way.

use std::borrow::Cow;

use crate::dns::name::Name;
use crate::elchi::api::{self, Converted, RecordRef, SortedPart};

/// Lists shorter than this are decoded on one thread.
const SPLIT_FROM: usize = 1 << 20;

/// A decoded list.
pub struct Decoded {
    /// The records, converted.
    pub converted: Converted,
    /// Records in the list.
    pub records: usize,
    /// Offsets where each name's records start (sorted lists only).
    pub index: Option<Vec<u32>>,
    /// Just past the list's closing bracket.
    pub end: usize,
}

/// The record that starts at `pos` (after whitespace), and where the next one starts (after
/// the comma and the whitespace that follows it), or `None` at the end of the list.
pub fn record_at<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8], pos: usize) -> Option<(T, usize)> {
    let skip = |p| after_whitespace(bytes, p);
    let start = skip(pos);
    if start >= bytes.len() || bytes[start] == b']' {
        return None;
    }
    let mut stream = serde_json::Deserializer::from_slice(&bytes[start..]).into_iter::<T>();
    let record = stream.next()?.ok()?;
    let mut next = skip(start + stream.byte_offset());
    if bytes.get(next) == Some(&b',') {
        next = skip(next + 1);
    }
    Some((record, next))
}

/// Decodes the record list that `bytes` holds (a JSON array, whitespace around it allowed).
/// `sorted`: the list is sorted by name, and the offsets where names start are returned.
/// `pushed`: honour the records' `pushed` marker (state files), else they are the
/// controller's. `None` when the list is not one this walker reads to its end.
pub fn decode(bytes: &[u8], apex: &Name, default_ttl: u32, sorted: bool, pushed: bool) -> Option<Decoded> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    if bytes[start] != b'[' {
        return None;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(2);
    let mut bounds = vec![start + 1];
    if threads > 1
        && bytes.len() > SPLIT_FROM
        && let Some(mid) = boundary_after(bytes, bytes.len() / 2)
    {
        bounds.push(mid);
    }
    bounds.push(bytes.len());
    let parts: Vec<Part> = std::thread::scope(|scope| {
        let decode = |i: usize| decode_part(bytes, bounds[i], bounds[i + 1], sorted, pushed, apex, default_ttl);
        let handles: Vec<_> = (1..bounds.len() - 1).map(|i| scope.spawn(move || decode(i))).collect();
        std::iter::once(decode(0))
            .chain(handles.into_iter().map(|h| h.join().expect("decode does not panic")))
            .collect()
    });
    let end = parts.last().map_or(start + 1, |p| p.end);
    let rest = bytes[end..].iter().position(|b| !b.is_ascii_whitespace());
    if parts.iter().any(|p| !p.complete) || rest.is_none_or(|r| bytes[end + r] != b']') {
        return None;
    }
    let mut index: Vec<u32> = Vec::new();
    let mut last_name: Option<String> = None;
    let mut converted = Vec::with_capacity(parts.len());
    let mut records = 0;
    for part in parts {
        // A name's records may straddle the cut: it starts where it first appears.
        let skip = usize::from(last_name.is_some() && part.first_name == last_name);
        index.extend_from_slice(&part.index[skip.min(part.index.len())..]);
        if part.last_name.is_some() {
            last_name = part.last_name;
        }
        records += part.records;
        converted.push(part.converted);
    }
    let end = end + rest.unwrap_or(0) + 1;
    let converted = api::SortedPart::join(converted);
    Some(Decoded { converted, records, index: sorted.then_some(index), end })
}

/// One slice of a record list, decoded and converted.
struct Part {
    converted: SortedPart,
    records: usize,
    /// Offsets where a new name starts (sorted lists only).
    index: Vec<u32>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// Where decoding stopped.
    end: usize,
    /// Every record up to the slice's end decoded.
    complete: bool,
}

fn decode_part(
    bytes: &[u8],
    from: usize,
    to: usize,
    sorted: bool,
    pushed: bool,
    apex: &Name,
    default_ttl: u32,
) -> Part {
    let mut converter = api::Converter::new(apex, default_ttl);
    let mut records = 0;
    let mut index = Vec::new();
    let (mut first_name, mut last_name): (Option<String>, Option<Cow<'_, str>>) = (None, None);
    let mut pos = from;
    while pos < to {
        let at = after_whitespace(bytes, pos);
        let Some((mut r, next)) = record_at::<RecordRef<'_>>(bytes, pos) else { break };
        if last_name.as_deref() != Some(&*r.name) {
            if sorted {
                index.push(at as u32);
            }
            if first_name.is_none() {
                first_name = Some(r.name.to_string());
            }
            last_name = Some(r.name.clone());
        }
        // `pushed` is our state-file marker; a controller's record is the controller's.
        r.pushed &= pushed;
        converter.push(&r);
        records += 1;
        pos = next;
    }
    let end = after_whitespace(bytes, pos);
    // The last part ends at the closing bracket; the others exactly at the next part.
    let complete = end == to || bytes.get(end) == Some(&b']');
    let converted = converter.sorted();
    Part { converted, records, index, first_name, last_name: last_name.map(String::from), end, complete }
}

/// The first position from `pos` on that is not JSON whitespace (or the end).
fn after_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(|b| b.is_ascii_whitespace()) {
        pos += 1;
    }
    pos
}

/// The start of the first record after `from`: a `{` that follows `},` and precedes a key,
/// whitespace allowed between them (a controller may indent its JSON). The sequence cannot
/// occur inside a JSON string, whose quotes are escaped; inside a record, in an unknown field
/// holding objects, it can, which the caller notices.
fn boundary_after(bytes: &[u8], from: usize) -> Option<usize> {
    let after_ws = |p| after_whitespace(bytes, p);
    let mut at = from;
    while let Some(i) = bytes[at..].iter().position(|&b| b == b'}') {
        let close = at + i;
        let comma = after_ws(close + 1);
        if bytes.get(comma) == Some(&b',') {
            let open = after_ws(comma + 1);
            if bytes.get(open) == Some(&b'{') && bytes.get(after_ws(open + 1)) == Some(&b'"') {
                return Some(open);
            }
        }
        at = close + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elchi::api::RecordJson;

    fn apex() -> Name {
        Name::parse("z.example.", None).unwrap()
    }

    /// A big list in no particular order, names repeated far apart (so across the cut), with
    /// `pushed` markers: two halves give what one pass gives.
    #[test]
    fn a_list_decoded_in_halves_equals_one_pass() {
        let records: Vec<RecordJson> = (0..40_000)
            .map(|i| RecordJson {
                name: format!("h{}.z.example", (i * 7919) % 25_000),
                rtype: if i % 3 == 0 { "AAAA".into() } else { "A".into() },
                ttl: 30 + (i % 5) as u32,
                ips: vec![if i % 3 == 0 { "2001:db8::1".into() } else { format!("192.0.2.{}", i % 200) }],
                failover: None,
                pushed: i % 2 == 0,
            })
            .collect();
        let bytes = serde_json::to_vec(&records).unwrap();
        assert!(bytes.len() > SPLIT_FROM);
        let whole = api::convert(&records, &apex(), 300);
        // Indented or spaced lists are cut as compact ones are.
        let pretty = serde_json::to_vec_pretty(&records).unwrap();
        let mid = boundary_after(&pretty, pretty.len() / 2).expect("a boundary in an indented list");
        assert_eq!(pretty[mid], b'{');
        assert_eq!(decode(&pretty, &apex(), 300, false, true).expect("decodes").converted.nodes, whole.nodes);
        let halves = decode(&bytes, &apex(), 300, false, true).expect("decodes");
        assert_eq!(halves.records, records.len());
        assert_eq!(halves.converted.nodes, whole.nodes);
        // As the controller's: no record is marked pushed.
        let controller = decode(&bytes, &apex(), 300, false, false).unwrap();
        let sources: Vec<_> = controller.converted.nodes.values().flat_map(|t| t.values()).map(|s| s.source).collect();
        assert!(sources.iter().all(|s| *s == crate::dns::records::Source::Controller));
    }

    /// Records with an unknown field holding objects: a cut may land inside one; the decoder
    /// then says so (the caller decodes the plain way) or decodes it right.
    #[test]
    fn a_cut_inside_a_record_is_noticed() {
        let mut text = String::from("[");
        for i in 0..20_000 {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!(
                r#"{{"name":"h{i}.z.example","type":"A","ips":["192.0.2.1"],"extra":[{{"a":1}},{{"b":2}},{{"c":3}}]}}"#
            ));
        }
        text.push(']');
        let records: Vec<RecordJson> = serde_json::from_str(&text).unwrap();
        let whole = api::convert(&records, &apex(), 300);
        if let Some(d) = decode(text.as_bytes(), &apex(), 300, false, false) {
            assert_eq!(d.converted.nodes, whole.nodes);
        }
        assert!(decode(b" [ ] ", &apex(), 300, false, false).is_some_and(|d| d.records == 0));
        assert!(decode(b"[{\"name\":", &apex(), 300, false, false).is_none());
    }
}
