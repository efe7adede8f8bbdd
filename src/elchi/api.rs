//! The Elchi controller's JSON (the compatibility contract) and its conversion into records.
//!
//! Responses are decoded strictly at the top level (a wrong JSON type anywhere rejects the
//! whole response, as upstream) but leniently per record: a bad record is skipped and
//! counted, never fatal.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::dns::name::Name;
use crate::dns::records::{MAX_RRSET, Nodes, RData, RRset, SortedNodes, Source, TypeMap};
use crate::dns::types::MAX_TTL;
use crate::dns::types::*;

/// One record as the controller sends it. Unknown fields (`enabled`, `region`, ...) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordJson {
    /// Owner name (FQDN, trailing dot optional).
    pub name: String,
    /// `A` or `AAAA`, any case; ignored for failover records.
    #[serde(rename = "type", default)]
    pub rtype: String,
    /// TTL; 0 means the zone's `default_ttl`.
    #[serde(default)]
    pub ttl: u32,
    /// Addresses (Go controllers write an empty list as `null`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub ips: Vec<String>,
    /// CNAME target used when `ips` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<String>,
    /// Ours, in state files only: the record came from a `/notify` push, so it is labelled
    /// `webhook` until a controller snapshot replaces it. Cleared in controller responses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pushed: bool,
}

/// A record as [`RecordJson`], its strings borrowed from the bytes it was decoded from where
/// they need no unescaping: decoding a big record list allocates little.
#[derive(Debug, Deserialize)]
pub struct RecordRef<'a> {
    /// Owner name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// `A` or `AAAA`.
    #[serde(rename = "type", default, borrow)]
    pub rtype: Cow<'a, str>,
    /// TTL; 0 means the zone's `default_ttl`.
    #[serde(default)]
    pub ttl: u32,
    /// Addresses.
    #[serde(default, borrow, deserialize_with = "null_as_empty")]
    pub ips: Vec<Text<'a>>,
    /// CNAME target used when `ips` is empty.
    #[serde(default, borrow)]
    pub failover: Option<Text<'a>>,
    /// Pushed through the webhook (state files only).
    #[serde(default)]
    pub pushed: bool,
}

/// A string borrowed from the decoded bytes unless it had escapes (serde's own `Cow` impl
/// always copies; only a field marked `borrow` does not).
#[derive(Debug, Deserialize)]
pub struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

/// What [`convert`] reads of a record, owned or borrowed.
pub trait Record {
    /// Owner name.
    fn name(&self) -> &str;
    /// Type field.
    fn rtype(&self) -> &str;
    /// TTL (0: default).
    fn ttl(&self) -> u32;
    /// Number of addresses.
    fn ip_count(&self) -> usize;
    /// The i-th address.
    fn ip(&self, i: usize) -> &str;
    /// Failover target.
    fn failover(&self) -> Option<&str>;
    /// Pushed through the webhook.
    fn pushed(&self) -> bool;
}

impl Record for RecordJson {
    fn name(&self) -> &str {
        &self.name
    }
    fn rtype(&self) -> &str {
        &self.rtype
    }
    fn ttl(&self) -> u32 {
        self.ttl
    }
    fn ip_count(&self) -> usize {
        self.ips.len()
    }
    fn ip(&self, i: usize) -> &str {
        &self.ips[i]
    }
    fn failover(&self) -> Option<&str> {
        self.failover.as_deref()
    }
    fn pushed(&self) -> bool {
        self.pushed
    }
}

impl Record for RecordRef<'_> {
    fn name(&self) -> &str {
        &self.name
    }
    fn rtype(&self) -> &str {
        &self.rtype
    }
    fn ttl(&self) -> u32 {
        self.ttl
    }
    fn ip_count(&self) -> usize {
        self.ips.len()
    }
    fn ip(&self, i: usize) -> &str {
        &self.ips[i].0
    }
    fn failover(&self) -> Option<&str> {
        self.failover.as_ref().map(|t| &*t.0)
    }
    fn pushed(&self) -> bool {
        self.pushed
    }
}

/// Go's `encoding/json` writes a nil slice as `null` and reads `null` back as an empty slice;
/// the controller and webhook senders are Go programs, so `null` means "none" for every list.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// An accepted record set from the controller, converted.
#[derive(Debug)]
pub struct Payload {
    /// Zone as the controller named it.
    pub zone: String,
    /// Version hash.
    pub version_hash: String,
    /// Records as received (before conversion).
    pub received: usize,
    /// The records, converted (controller records, whatever `pushed` said).
    pub converted: Converted,
}

/// Resource records in `nodes` (an A record with two addresses counts two), which is what
/// upstream reports as `records_count`.
pub fn rr_count<'a>(nodes: impl IntoIterator<Item = (&'a Name, &'a TypeMap)>) -> usize {
    nodes.into_iter().flat_map(|(_, types)| types.values()).map(|set| set.rdata.len()).sum()
}

/// The outcome of converting a record list.
#[derive(Debug, Default)]
pub struct Converted {
    /// The usable records.
    pub nodes: SortedNodes,
    /// Records skipped whole.
    pub skipped_records: usize,
    /// Addresses skipped inside otherwise usable records.
    pub skipped_ips: usize,
    /// Why the first few skips happened, for the log.
    pub reasons: Vec<String>,
}

impl Converted {
    fn skip(&mut self, reason: String) {
        self.skipped_records += 1;
        if self.reasons.len() < 5 {
            self.reasons.push(reason);
        }
    }
}

/// Parses a controller name as an absolute name (a trailing dot is optional).
pub fn parse_absolute(name: &str) -> Option<Name> {
    let n = name.trim();
    if n.is_empty() || n == "." {
        return None;
    }
    // Without an origin every name is absolute, with or without the trailing dot.
    Name::parse(n, None).ok()
}

/// The zone name as the controller API writes it: no trailing dot.
pub fn api_zone(apex: &Name) -> String {
    if apex.is_root() { String::new() } else { apex.to_dotless() }
}

/// True when the controller's `zone` field names `apex` (case and trailing dot ignored).
pub fn same_zone(field: &str, apex: &Name) -> bool {
    parse_absolute(field).is_some_and(|n| n == *apex)
        || (apex.is_root() && field.trim().trim_end_matches('.').is_empty())
}

/// Removes repeated entries, keeping the first of each (sets are small).
fn dedup_in_order(rdata: &mut Vec<RData>) {
    let mut i = 1;
    while i < rdata.len() {
        if rdata[..i].contains(&rdata[i]) {
            rdata.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Owner → records, sorted by owner, each owner once: a converted part of a record list.
type Run = Vec<(Name, TypeMap)>;

/// Converts controller records for the zone at `apex` one at a time, as they are decoded (so
/// no list of decoded records is kept), then sorts and merges them by owner.
pub struct Converter<'z> {
    apex: &'z Name,
    default_ttl: u32,
    /// One entry per usable record, in list order.
    items: Run,
    /// The skip counts and reasons (its `nodes` stay empty).
    out: Converted,
}

impl<'z> Converter<'z> {
    /// An empty conversion for the zone at `apex`.
    pub fn new(apex: &'z Name, default_ttl: u32) -> Converter<'z> {
        Converter { apex, default_ttl, items: Vec::new(), out: Converted::default() }
    }

    /// Converts one record, or counts why it is skipped.
    pub fn push<R: Record>(&mut self, r: &R) {
        let (apex, out) = (self.apex, &mut self.out);
        let Some(owner) = parse_absolute(r.name()) else {
            out.skip(format!("{:?}: not a valid name", r.name()));
            return;
        };
        if !owner.is_within(apex) {
            out.skip(format!("{owner}: outside the zone {apex}"));
            return;
        }
        let ttl = if r.ttl() == 0 { self.default_ttl } else { r.ttl().min(MAX_TTL as u32) };
        let (rtype, rdata) = if r.ip_count() == 0 {
            match r.failover().map(str::trim).filter(|f| !f.is_empty()) {
                None => {
                    out.skip(format!("{owner}: neither ips nor failover"));
                    return;
                }
                Some(target) => match parse_absolute(target) {
                    Some(t) if owner != *apex => (TYPE_CNAME, vec![RData::Cname(t)]),
                    Some(_) => {
                        out.skip(format!("{owner}: a failover CNAME cannot be at the zone apex"));
                        return;
                    }
                    None => {
                        out.skip(format!("{owner}: failover {target:?} is not a valid name"));
                        return;
                    }
                },
            }
        } else {
            let t = r.rtype().trim();
            let (rtype, parse): (u16, fn(&str) -> Option<RData>) = if t.eq_ignore_ascii_case("A") {
                (TYPE_A, |s| s.parse::<Ipv4Addr>().ok().map(RData::A))
            } else if t.eq_ignore_ascii_case("AAAA") {
                (TYPE_AAAA, |s| s.parse::<Ipv6Addr>().ok().map(RData::Aaaa))
            } else {
                out.skip(format!("{owner}: unsupported type {:?}", t.to_ascii_uppercase()));
                return;
            };
            let mut rdata = Vec::with_capacity(r.ip_count());
            for i in 0..r.ip_count() {
                match parse(r.ip(i)) {
                    Some(rd) => rdata.push(rd),
                    None => out.skipped_ips += 1,
                }
            }
            if rdata.is_empty() {
                let ips: Vec<&str> = (0..r.ip_count()).map(|i| r.ip(i)).collect();
                out.skip(format!("{owner}: no valid {} address in {ips:?}", t.to_ascii_uppercase()));
                return;
            }
            dedup_in_order(&mut rdata);
            if rdata.len() > MAX_RRSET {
                out.skip(format!("{owner}: {} addresses; a record set holds at most {MAX_RRSET}", rdata.len()));
                return;
            }
            (rtype, rdata)
        };
        let source = if r.pushed() { Source::Webhook } else { Source::Controller };
        self.items.push((owner, TypeMap::one(rtype, RRset { ttl, rdata, source, rotate: true, draw: None })));
    }

    /// The records converted so far, sorted by owner, each owner's records merged in place (in
    /// list order: the sort is stable).
    pub fn sorted(mut self) -> SortedPart {
        self.items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut dropped = Vec::new();
        self.items.dedup_by(|later, earlier| {
            if later.0 != earlier.0 {
                return false;
            }
            if merge_types(&mut earlier.1, std::mem::take(&mut later.1)) {
                dropped.push(earlier.0.clone());
            }
            true
        });
        for owner in dropped {
            self.out.skip(format!("{owner}: failover CNAME beside addresses"));
        }
        SortedPart { run: self.items, counts: self.out }
    }

    /// The conversion of one list.
    pub fn finish(self) -> Converted {
        SortedPart::join(vec![self.sorted()])
    }
}

/// A converted part of a record list, sorted by owner.
pub struct SortedPart {
    run: Run,
    /// The skip counts and reasons (its `nodes` stay empty).
    counts: Converted,
}

impl SortedPart {
    /// The conversions of consecutive parts of one list (earlier parts first), merged: what
    /// one conversion of the whole list gives.
    pub fn join(parts: Vec<SortedPart>) -> Converted {
        let mut out = Converted::default();
        let mut merged: Option<Run> = None;
        for SortedPart { run, counts } in parts {
            out.skipped_ips += counts.skipped_ips;
            out.skipped_records += counts.skipped_records;
            for r in counts.reasons {
                if out.reasons.len() < 5 {
                    out.reasons.push(r);
                }
            }
            merged = Some(match merged {
                None => run,
                Some(earlier) => merge_runs(earlier, run, &mut out),
            });
        }
        out.nodes = SortedNodes::from_sorted(merged.unwrap_or_default());
        out
    }
}

/// Two runs merged by owner, the earlier's records first where both hold an owner.
fn merge_runs(earlier: Run, later: Run, out: &mut Converted) -> Run {
    use std::cmp::Ordering;
    let mut merged = Vec::with_capacity(earlier.len() + later.len());
    let mut a = earlier.into_iter().peekable();
    let mut b = later.into_iter().peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((x, _)), Some((y, _))) => x.cmp(y),
        };
        match order {
            Ordering::Less => merged.extend(a.next()),
            Ordering::Greater => merged.extend(b.next()),
            Ordering::Equal => {
                let (owner, mut types) = a.next().expect("peeked");
                let (_, more) = b.next().expect("peeked");
                if merge_types(&mut types, more) {
                    out.skip(format!("{owner}: failover CNAME beside addresses"));
                }
                merged.push((owner, types));
            }
        }
    }
    merged
}

/// Adds later records of one owner to earlier ones (one TTL per RRset, the lowest; addresses
/// win over a CNAME, the first CNAME target over later ones). True when a CNAME was dropped.
fn merge_types(types: &mut TypeMap, later: TypeMap) -> bool {
    for (rtype, set) in later {
        match types.get_mut(&rtype) {
            Some(have) => {
                have.ttl = have.ttl.min(set.ttl);
                for rd in set.rdata {
                    if !have.rdata.contains(&rd) {
                        have.rdata.push(rd);
                    }
                }
            }
            None => {
                types.insert(rtype, set);
            }
        }
    }
    let dropped = types.len() > 1 && types.remove(&TYPE_CNAME).is_some();
    if let Some(cname) = types.get_mut(&TYPE_CNAME) {
        cname.rdata.truncate(1);
    }
    dropped
}

/// Converts controller records for the zone at `apex`: records that cannot be served are
/// skipped and counted; records of one owner and type are merged into one RRset.
pub fn convert<R: Record>(records: &[R], apex: &Name, default_ttl: u32) -> Converted {
    let mut converter = Converter::new(apex, default_ttl);
    for r in records {
        converter.push(r);
    }
    converter.finish()
}

/// A `{"name","type"}` item of a `/notify` delete list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteJson {
    /// Owner name.
    pub name: String,
    /// `A`, `AAAA` or `CNAME`, any case.
    #[serde(rename = "type", default)]
    pub rtype: String,
}

/// The `/notify` body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NotifyJson {
    /// Records that replace a name+type's data.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub records: Vec<RecordJson>,
    /// Name+type pairs to remove.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub deletes: Vec<DeleteJson>,
}

/// Why a pushed item is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// The owner name does not parse.
    #[error("{0:?} is not a valid name")]
    Name(String),
    /// A record with no addresses and no failover target.
    #[error("{0}: neither ips nor failover")]
    Empty(Name),
    /// The failover target does not parse.
    #[error("{owner}: failover {target:?} is not a valid name")]
    Failover {
        /// The owner.
        owner: Name,
        /// The target as pushed.
        target: String,
    },
    /// A type a push cannot set.
    #[error("{owner}: unsupported type {rtype:?}")]
    Type {
        /// The owner.
        owner: Name,
        /// The type as pushed.
        rtype: String,
    },
    /// An address that is not of the record's family.
    #[error("{owner}: {ip:?} is not an {family} address")]
    Address {
        /// The owner.
        owner: Name,
        /// The address as pushed.
        ip: String,
        /// `A` or `AAAA`.
        family: &'static str,
    },
    /// A type a delete cannot remove.
    #[error("{owner}: cannot delete type {rtype:?} (A, AAAA or CNAME)")]
    DeleteType {
        /// The owner.
        owner: Name,
        /// The type as pushed.
        rtype: String,
    },
    /// No zone served here holds the name.
    #[error("{0} is outside every zone")]
    Outside(Name),
    /// A failover CNAME at a zone apex (which holds SOA and NS).
    #[error("{0}: a failover CNAME cannot be at the zone apex")]
    ApexCname(Name),
    /// More addresses than one answer may carry.
    #[error("{owner}: {count} addresses; a record set holds at most {max}", max = crate::dns::records::MAX_RRSET)]
    TooMany {
        /// The owner.
        owner: Name,
        /// How many were pushed.
        count: usize,
    },
}

/// Checks one pushed record strictly (a push is all or nothing) and returns its owner and
/// the type it defines: A/AAAA for addresses, CNAME for a failover record.
pub fn check_push(r: &RecordJson) -> Result<(Name, u16), ItemError> {
    let owner = parse_absolute(&r.name).ok_or_else(|| ItemError::Name(r.name.clone()))?;
    if r.ips.is_empty() {
        let target = r.failover.as_deref().map(str::trim).filter(|f| !f.is_empty());
        return match target {
            None => Err(ItemError::Empty(owner)),
            Some(t) if parse_absolute(t).is_none() => Err(ItemError::Failover { owner, target: t.to_string() }),
            Some(_) => Ok((owner, TYPE_CNAME)),
        };
    }
    let rtype = match r.rtype.trim().to_ascii_uppercase().as_str() {
        "A" => TYPE_A,
        "AAAA" => TYPE_AAAA,
        other => return Err(ItemError::Type { owner, rtype: other.to_string() }),
    };
    if r.ips.len() > MAX_RRSET {
        return Err(ItemError::TooMany { owner, count: r.ips.len() });
    }
    for ip in &r.ips {
        let ok = match rtype {
            TYPE_A => ip.parse::<Ipv4Addr>().is_ok(),
            _ => ip.parse::<Ipv6Addr>().is_ok(),
        };
        if !ok {
            let family = if rtype == TYPE_A { "A" } else { "AAAA" };
            return Err(ItemError::Address { owner, ip: ip.clone(), family });
        }
    }
    Ok((owner, rtype))
}

/// Checks one delete item: its owner and type (A, AAAA or CNAME).
pub fn check_delete(d: &DeleteJson) -> Result<(Name, u16), ItemError> {
    let owner = parse_absolute(&d.name).ok_or_else(|| ItemError::Name(d.name.clone()))?;
    let rtype = match d.rtype.trim().to_ascii_uppercase().as_str() {
        "A" => TYPE_A,
        "AAAA" => TYPE_AAAA,
        "CNAME" => TYPE_CNAME,
        other => return Err(ItemError::DeleteType { owner, rtype: other.to_string() }),
    };
    Ok((owner, rtype))
}

/// Applies checked pushes to a zone's records in place: an update replaces its name+type (a
/// failover record replaces everything at its name; addresses clear a failover CNAME), a
/// delete removes a name+type. Only the pushed names are touched. Returns (updated, deleted),
/// counting deletes that removed something.
pub fn apply_push_nodes(
    nodes: &mut Nodes,
    apex: &Name,
    default_ttl: u32,
    updates: &[(Name, u16, RecordJson)],
    deletes: &[(Name, u16)],
) -> (usize, usize) {
    for (owner, rtype, record) in updates {
        let record = RecordJson { pushed: true, ..record.clone() };
        let fresh = convert(std::slice::from_ref(&record), apex, default_ttl).nodes;
        let types = nodes.entry(owner.clone()).or_default();
        if *rtype == TYPE_CNAME {
            *types = TypeMap::new();
        } else {
            types.remove(rtype);
            types.remove(&TYPE_CNAME);
        }
        for (new_owner, new_types) in fresh {
            debug_assert_eq!(new_owner, *owner);
            for (&t, set) in &new_types {
                types.insert(t, set.clone());
            }
        }
        if types.is_empty() {
            nodes.remove(owner);
        }
    }
    let mut deleted = 0;
    for (owner, rtype) in deletes {
        if let Some(types) = nodes.get_mut(owner)
            && types.remove(rtype).is_some()
        {
            deleted += 1;
            if types.is_empty() {
                nodes.remove(owner);
            }
        }
    }
    (updates.len(), deleted)
}

/// The records of converted nodes in the controller's JSON form (A, AAAA, failover CNAME).
pub fn to_records(nodes: &Nodes) -> Vec<RecordJson> {
    let mut out = Vec::new();
    for (owner, types) in nodes {
        node_records(owner, types, &mut out);
    }
    out
}

/// The records of one name in the controller's JSON form, appended to `out`.
pub fn node_records(owner: &Name, types: &TypeMap, out: &mut Vec<RecordJson>) {
    for (&rtype, set) in types {
        let name = owner.to_dotless();
        let record = match rtype {
            TYPE_A | TYPE_AAAA => RecordJson {
                name,
                rtype: type_name(rtype).into_owned(),
                ttl: set.ttl,
                ips: set
                    .rdata
                    .iter()
                    .map(|rd| match rd {
                        RData::A(ip) => ip.to_string(),
                        RData::Aaaa(ip) => ip.to_string(),
                        _ => String::new(),
                    })
                    .collect(),
                failover: None,
                pushed: set.source == Source::Webhook,
            },
            TYPE_CNAME => match set.rdata.first() {
                Some(RData::Cname(t)) => RecordJson {
                    name,
                    rtype: "A".into(),
                    ttl: set.ttl,
                    ips: Vec::new(),
                    failover: Some(t.to_dotless()),
                    pushed: set.source == Source::Webhook,
                },
                _ => continue,
            },
            _ => continue,
        };
        out.push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, rtype: &str, ips: &[&str], failover: Option<&str>) -> RecordJson {
        RecordJson {
            name: name.into(),
            rtype: rtype.into(),
            ttl: 0,
            ips: ips.iter().map(|s| s.to_string()).collect(),
            failover: failover.map(String::from),
            pushed: false,
        }
    }

    /// Decoded records borrow their strings from the bytes (no copy) unless escaped, and
    /// convert as the owned form does.
    #[test]
    fn borrowed_records_borrow_and_convert_alike() {
        let body = br#"[{"name":"a.z.example","type":"A","ips":["192.0.2.1"],"ttl":5},{"name":"b\u002ez.example","ips":null,"failover":"a.z.example"}]"#;
        let borrowed: Vec<RecordRef<'_>> = serde_json::from_slice(body).unwrap();
        assert!(matches!(borrowed[0].name, Cow::Borrowed(_)) && matches!(borrowed[0].ips[0].0, Cow::Borrowed(_)));
        assert!(matches!(borrowed[1].name, Cow::Owned(_)), "an escaped string is unescaped into a copy");
        assert!(matches!(borrowed[1].failover.as_ref().unwrap().0, Cow::Borrowed(_)));
        let owned: Vec<RecordJson> = serde_json::from_slice(body).unwrap();
        let apex = Name::parse("z.example.", None).unwrap();
        assert_eq!(convert(&borrowed, &apex, 300).nodes, convert(&owned, &apex, 300).nodes);
        assert_eq!(convert(&borrowed, &apex, 300).nodes.len(), 2);
    }

    fn convert_parts(parts: &[&[RecordJson]], apex: &Name, default_ttl: u32) -> Converted {
        let sorted = parts.iter().map(|part| {
            let mut converter = Converter::new(apex, default_ttl);
            part.iter().for_each(|r| converter.push(r));
            converter.sorted()
        });
        SortedPart::join(sorted.collect())
    }

    /// Converting in parts and merging equals converting in one go, whatever the split:
    /// names split across parts, duplicate records, a CNAME beside addresses in another part.
    #[test]
    fn converting_in_parts_equals_converting_at_once() {
        let apex = Name::parse("z.example.", None).unwrap();
        let mut records = Vec::new();
        for i in 0..60 {
            let name = format!("n{}.z.example", i % 17);
            records.push(match i % 5 {
                0 => rec(&name, "A", &[&format!("192.0.2.{}", i % 7)], None),
                1 => rec(&name, "AAAA", &["2001:db8::1"], None),
                2 => rec(&name, "A", &[], Some("t.z.example")),
                3 => RecordJson { ttl: 10 + i as u32, ..rec(&name, "A", &["192.0.2.1"], None) },
                _ => rec("elsewhere.example", "A", &["192.0.2.9"], None),
            });
        }
        let whole = convert(&records, &apex, 300);
        for split in [1, 13, 30, 59] {
            let parts = convert_parts(&[&records[..split], &records[split..]], &apex, 300);
            assert_eq!(parts.nodes, whole.nodes, "split at {split}");
            assert_eq!(parts.skipped_records, whole.skipped_records, "split at {split}");
            assert_eq!(parts.skipped_ips, whole.skipped_ips);
        }
        let three = convert_parts(&[&records[..10], &records[10..40], &records[40..]], &apex, 300);
        assert_eq!(three.nodes, whole.nodes);
    }

    #[test]
    fn a_record_set_above_the_bound_is_skipped_whole() {
        let apex = Name::parse("gslb.example.org.", None).unwrap();
        let ips: Vec<String> = (0..=MAX_RRSET).map(|i| format!("10.0.{}.{}", i >> 8, i & 255)).collect();
        let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
        let c = convert(&[rec("many.gslb.example.org", "A", &ips, None)], &apex, 300);
        assert_eq!((c.nodes.len(), c.skipped_records), (0, 1));
        assert!(c.reasons[0].contains("1001 addresses"), "{:?}", c.reasons);
        let pushed = rec("many.gslb.example.org", "A", &ips, None);
        assert!(matches!(check_push(&pushed), Err(ItemError::TooMany { count: 1001, .. })));
        let c = convert(&[rec("max.gslb.example.org", "A", &ips[..MAX_RRSET], None)], &apex, 300);
        assert_eq!((c.nodes.len(), c.skipped_records), (1, 0));
    }

    #[test]
    fn bad_records_are_skipped_and_good_ips_kept() {
        let apex = Name::parse("gslb.example.org.", None).unwrap();
        let records = vec![
            rec("ok.gslb.example.org", "a", &["192.0.2.1", "nope", "2001:db8::1"], None),
            rec("ok.gslb.example.org.", "A", &["192.0.2.2"], None),
            rec("evilgslb.example.org", "A", &["192.0.2.3"], None),
            rec("v6.gslb.example.org", "AAAA", &["192.0.2.4"], None),
            rec("mx.gslb.example.org", "MX", &["192.0.2.5"], None),
            rec("empty.gslb.example.org", "A", &[], None),
            rec("fo.gslb.example.org", "A", &[], Some("ok.gslb.example.org")),
        ];
        let c = convert(&records, &apex, 300);
        let ok = Name::parse("ok.gslb.example.org.", None).unwrap();
        assert_eq!(c.nodes[&ok][&TYPE_A].rdata.len(), 2);
        assert_eq!(c.nodes[&ok][&TYPE_A].ttl, 300);
        assert_eq!(c.skipped_records, 4);
        assert_eq!(c.skipped_ips, 3);
        let fo = Name::parse("fo.gslb.example.org.", None).unwrap();
        assert!(matches!(&c.nodes[&fo][&TYPE_CNAME].rdata[0], RData::Cname(t) if *t == ok));
    }

    /// A push touches only its own name: an update replaces its type (and a failover
    /// CNAME), a failover replaces the whole name, a delete removes one type, and every other
    /// name keeps its records untouched.
    #[test]
    fn pushes_change_only_their_names() {
        let apex = Name::parse("gslb.example.org.", None).unwrap();
        let name = |s: &str| Name::parse(s, None).unwrap();
        let push = |r: RecordJson| {
            let (owner, rtype) = check_push(&r).unwrap();
            (owner, rtype, r)
        };
        let mut nodes = convert(
            &[
                rec("a.gslb.example.org", "A", &["192.0.2.1"], None),
                rec("a.gslb.example.org", "AAAA", &["2001:db8::1"], None),
                rec("b.gslb.example.org", "A", &["192.0.2.2"], None),
                rec("c.gslb.example.org", "A", &[], Some("a.gslb.example.org")),
            ],
            &apex,
            30,
        )
        .nodes
        .into_iter()
        .collect::<Nodes>();
        let untouched = nodes[&name("b.gslb.example.org.")].clone();
        let updates = [
            push(rec("a.gslb.example.org", "A", &["192.0.2.9"], None)),
            push(rec("c.gslb.example.org", "A", &["192.0.2.3"], None)),
            push(rec("d.gslb.example.org", "A", &[], Some("b.gslb.example.org"))),
        ];
        let deletes = [(name("a.gslb.example.org."), TYPE_AAAA), (name("zz.gslb.example.org."), TYPE_A)];
        assert_eq!(apply_push_nodes(&mut nodes, &apex, 30, &updates, &deletes), (3, 1));
        let a = &nodes[&name("a.gslb.example.org.")];
        assert_eq!(a[&TYPE_A].rdata, [RData::A("192.0.2.9".parse().unwrap())]);
        assert!(!a.contains_key(&TYPE_AAAA));
        let c = &nodes[&name("c.gslb.example.org.")];
        assert!(!c.contains_key(&TYPE_CNAME), "addresses clear a failover CNAME");
        assert_eq!(c[&TYPE_A].ttl, 30, "TTL 0 takes the default");
        assert!(matches!(&nodes[&name("d.gslb.example.org.")][&TYPE_CNAME].rdata[0], RData::Cname(_)));
        assert_eq!(nodes[&name("b.gslb.example.org.")], untouched);

        // A failover replaces everything at its name.
        let fo = [push(rec("a.gslb.example.org", "A", &[], Some("b.gslb.example.org")))];
        apply_push_nodes(&mut nodes, &apex, 30, &fo, &[]);
        let a = &nodes[&name("a.gslb.example.org.")];
        assert_eq!(a.len(), 1);
        assert!(a.contains_key(&TYPE_CNAME));
    }
}
