//! The controller's `/dns/snapshot` and `/dns/changes` bodies, decoded and their records
//! converted in one go, strings borrowed from the body.

use crate::dns::name::Name;
use crate::elchi::api::{self, Converted, RecordRef};
use crate::elchi::list;

/// A controller response, its records converted.
#[derive(Debug)]
pub struct Response {
    /// `/dns/changes` only: nothing changed.
    pub unchanged: bool,
    /// Zone name.
    pub zone: Option<String>,
    /// Opaque version for `since=`.
    pub version_hash: Option<String>,
    /// Records in the list as received.
    pub received: usize,
    /// The records, converted (the controller's, whatever `pushed` said).
    pub converted: Converted,
}

/// A response with its record list left undecoded.
#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(default)]
    unchanged: bool,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    version_hash: Option<String>,
    #[serde(default, borrow)]
    records: Option<&'a serde_json::value::RawValue>,
}

/// Decodes a response and converts its records: the list on two threads when big (see
/// [`list`]), strings borrowed from the body, not copied.
pub fn decode(body: &[u8], apex: &Name, default_ttl: u32) -> Result<Response, serde_json::Error> {
    if let Some(fast) = decode_in_place(body, apex, default_ttl) {
        return Ok(fast);
    }
    let head: Head<'_> = serde_json::from_slice(body)?;
    let list = head.records.map_or("[]", |r| r.get());
    let (converted, received) = match list::decode(list.as_bytes(), apex, default_ttl, false, false) {
        Some(d) => (d.converted, d.records),
        // `null`, or a list the splitting walker does not read: decode it whole.
        None => {
            let mut records: Vec<RecordRef<'_>> = if list == "null" { Vec::new() } else { serde_json::from_str(list)? };
            // `pushed` is our state-file marker; a controller's record is the controller's.
            for r in &mut records {
                r.pushed = false;
            }
            (api::convert(&records, apex, default_ttl), records.len())
        }
    };
    Ok(Response { unchanged: head.unchanged, zone: head.zone, version_hash: head.version_hash, received, converted })
}

/// The common case read in one pass: the record list is found by its key and decoded where
/// it lies, and the other fields are read from the body with the list replaced by `null`
/// (serde would otherwise scan the whole list once more just to skip it). `None` when the
/// body is not laid out so (the caller then decodes it the general way).
fn decode_in_place(body: &[u8], apex: &Name, default_ttl: u32) -> Option<Response> {
    // A key's quotes cannot occur unescaped inside a string, so this is a key; the first one
    // in the body belongs to the top-level object unless a field before it holds objects
    // with such a key, which the head decode below then rejects.
    let key = b"\"records\":";
    let at = body.windows(key.len()).position(|w| w == key)?;
    let list_at = at + key.len();
    let list = list::decode(&body[list_at..], apex, default_ttl, false, false)?;
    let mut head = Vec::with_capacity(list_at + 4 + body.len() - (list_at + list.end));
    head.extend_from_slice(&body[..list_at]);
    head.extend_from_slice(b"null");
    head.extend_from_slice(&body[list_at + list.end..]);
    let head: Head<'_> = serde_json::from_slice(&head).ok()?;
    head.records.is_none_or(|r| r.get() == "null").then_some(())?;
    Some(Response {
        unchanged: head.unchanged,
        zone: head.zone,
        version_hash: head.version_hash,
        received: list.records,
        converted: list.converted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies read in one pass decode as the general way decodes them, wherever the list is,
    /// and bodies laid out otherwise fall back to the general way.
    #[test]
    fn in_place_decoding_agrees_with_the_general_way() {
        let apex = Name::parse("z.example.", None).unwrap();
        let list = r#"[{"name":"a.z.example","type":"A","ips":["192.0.2.1"]},{"name":"b.z.example","ips":null,"failover":"a.z.example"}]"#;
        for body in [
            format!(r#"{{"zone":"z.example","version_hash":"v1","records":{list}}}"#),
            format!(r#"{{"records": {list} , "zone":"z.example","version_hash":"v1"}}"#),
            format!(r#"{{"zone":"z.example","extra":{{"records":[{{"x":1}}]}},"version_hash":"v1","records":{list}}}"#),
            r#"{"zone":"z.example","version_hash":"v1","records":null}"#.to_string(),
            r#"{"unchanged":true}"#.to_string(),
        ] {
            let fast = decode_in_place(body.as_bytes(), &apex, 300);
            let general = decode(body.as_bytes(), &apex, 300).unwrap();
            if let Some(fast) = &fast {
                assert_eq!(fast.converted.nodes, general.converted.nodes, "{body}");
                assert_eq!(
                    (&fast.zone, &fast.version_hash, fast.received),
                    (&general.zone, &general.version_hash, general.received)
                );
            }
            let want = if body.contains("a.z.example") { 2 } else { 0 };
            assert_eq!(general.converted.nodes.len(), want, "{body}");
            assert_eq!(general.zone.as_deref(), (!body.contains("unchanged")).then_some("z.example"));
        }
        assert!(decode(b"{\"records\":[{\"name\":", &apex, 300).is_err());
    }
}
