//! The controller and webhook records of each zone between builds, kept compact.
//!
//! A zone holds a base record set and the names pushed since (its delta). The base is
//! freshly converted records until the state-file writer has stored them; then the zone
//! keeps only the record list as JSON (what the state file holds: a few dozen bytes per
//! record instead of hundreds), sorted by name with an index of where each name starts, so
//! one name's records are found by binary search. A push changes only the delta, so it never
//! copies or decodes the whole zone; the writer folds the delta into a new base. All forms
//! are shared (`Arc`) with the published admin views.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::config::Config;
use crate::dns::name::Name;
use crate::dns::records::{Nodes, SortedNodes, TypeMap};
#[cfg(test)]
use crate::dns::types::{TYPE_A, TYPE_AAAA};
use crate::elchi::api::{self, RecordJson, RecordRef};
use crate::elchi::list::{self, record_at};

/// A zone's base records in one of their two forms.
#[derive(Debug, Clone)]
pub enum Held {
    /// Converted, until the state-file writer has stored them.
    Converted(Arc<SortedNodes>),
    /// The record list as compact JSON, sorted by name.
    Packed(Packed),
}

/// A record list as compact JSON, sorted by owner name, with the offset of each name's first
/// record.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The JSON array.
    pub bytes: Arc<[u8]>,
    /// Offsets of the first record of each name, in name order.
    index: Arc<[u32]>,
}

impl Held {
    /// Whether both are the same data (not a copy of it).
    pub fn same(&self, other: &Held) -> bool {
        match (self, other) {
            (Held::Converted(a), Held::Converted(b)) => Arc::ptr_eq(a, b),
            (Held::Packed(a), Held::Packed(b)) => Arc::ptr_eq(&a.bytes, &b.bytes),
            _ => false,
        }
    }

    /// The records of one name.
    pub fn get(&self, name: &Name, apex: &Name, default_ttl: u32) -> Option<TypeMap> {
        match self {
            Held::Converted(nodes) => nodes.get(name).cloned(),
            Held::Packed(p) => p.get(name, apex, default_ttl),
        }
    }
}

/// What a push replaced, to take it back: each touched name's delta entry before it (none:
/// the name was not pushed before) and the change in the record count that undoes it.
#[derive(Debug, Default)]
pub struct Undo {
    /// Each touched name and its delta entry before the push.
    pub names: Vec<(Name, Option<TypeMap>)>,
    /// Records to add back (negative: to take away).
    pub records: i64,
}

/// A zone's held records and the controller version they belong to.
#[derive(Debug, Clone)]
pub struct HeldZone {
    /// Version hash of the controller data (empty before any).
    pub version_hash: String,
    /// The base records.
    pub held: Held,
    /// Names changed by pushes since the base: their whole current records (empty: none).
    pub delta: Arc<Nodes>,
    /// The records ExternalDNS's endpoints make, by owner (a source of their own: a
    /// controller sync does not replace them; controller and webhook records at the same
    /// name and type win).
    pub external: Arc<Nodes>,
}

impl HeldZone {
    /// A zone held as these records, with no pushes over them.
    pub fn new(version_hash: String, held: Held) -> HeldZone {
        HeldZone { version_hash, held, delta: Arc::default(), external: Arc::default() }
    }

    /// A zone with no records yet.
    pub fn empty() -> HeldZone {
        HeldZone::new(String::new(), Held::Converted(Arc::default()))
    }

    /// The current controller and webhook records of one name (the delta's if the name
    /// was pushed).
    pub fn get_held(&self, name: &Name, apex: &Name, default_ttl: u32) -> Option<TypeMap> {
        match self.delta.get(name) {
            Some(t) => (!t.is_empty()).then(|| t.clone()),
            None => self.held.get(name, apex, default_ttl),
        }
    }

    /// The current dynamic records of one name: controller and webhook records with
    /// ExternalDNS's beside them.
    pub fn get(&self, name: &Name, apex: &Name, default_ttl: u32) -> Option<TypeMap> {
        let held = self.get_held(name, apex, default_ttl);
        match self.external.get(name) {
            None => held,
            Some(ext) => Some(combine(held.as_ref(), Some(ext), |_| {}).into_owned()),
        }
    }

    /// Sets the ExternalDNS records of `names` to what `records` gives for each (none: gone).
    pub fn set_external(&mut self, names: impl IntoIterator<Item = Name>, records: impl Fn(&Name) -> Option<TypeMap>) {
        let external = Arc::make_mut(&mut self.external);
        for n in names {
            match records(&n) {
                Some(t) => external.insert(n, t),
                None => external.remove(&n),
            };
        }
    }

    /// Applies checked push items to the delta, reading only the names they touch. Returns
    /// those names, the change in the number of records, and what [`HeldZone::undo`] needs
    /// to take the push back.
    pub fn apply_push(
        &mut self,
        apex: &Name,
        default_ttl: u32,
        updates: &[(Name, u16, RecordJson)],
        deletes: &[(Name, u16)],
    ) -> (BTreeSet<Name>, i64, Undo) {
        let touched: BTreeSet<Name> =
            updates.iter().map(|(n, _, _)| n).chain(deletes.iter().map(|(n, _)| n)).cloned().collect();
        let mut part: Nodes =
            touched.iter().filter_map(|n| self.get_held(n, apex, default_ttl).map(|t| (n.clone(), t))).collect();
        let before = api::rr_count(&part) as i64;
        api::apply_push_nodes(&mut part, apex, default_ttl, updates, deletes);
        let after = api::rr_count(&part) as i64;
        let delta = Arc::make_mut(&mut self.delta);
        let mut undo = Undo { names: Vec::with_capacity(touched.len()), records: before - after };
        for n in &touched {
            let was = delta.insert(n.clone(), part.remove(n).unwrap_or_default());
            undo.names.push((n.clone(), was));
        }
        (touched, after - before, undo)
    }

    /// Takes a push back (the last one applied first).
    pub fn undo(&mut self, undo: Undo) {
        let delta = Arc::make_mut(&mut self.delta);
        for (name, was) in undo.names {
            match was {
                Some(types) => delta.insert(name, types),
                None => delta.remove(&name),
            };
        }
    }
}

impl Packed {
    /// The records of one name: a binary search over the names, then the name's records.
    pub fn get(&self, name: &Name, apex: &Name, default_ttl: u32) -> Option<TypeMap> {
        let (mut lo, mut hi) = (0, self.index.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (record, _) = record_at::<RecordRef<'_>>(&self.bytes, self.index[mid] as usize)?;
            let at = api::parse_absolute(&record.name)?;
            match at.cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let end = self.index.get(mid + 1).map_or(self.bytes.len(), |&e| e as usize);
                    let mut records: Vec<RecordRef<'_>> = Vec::new();
                    let mut pos = self.index[mid] as usize;
                    while pos < end {
                        let Some((r, next)) = record_at(&self.bytes, pos) else { break };
                        records.push(r);
                        pos = next;
                    }
                    return api::convert(&records, apex, default_ttl)
                        .nodes
                        .into_iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, t)| t);
                }
            }
        }
        None
    }
}

/// Encodes records, sorted by name, as a packed list with its index (`names`: about how many).
pub fn pack<'a>(nodes: impl IntoIterator<Item = (&'a Name, &'a TypeMap)>, names: usize) -> Packed {
    let mut bytes = Vec::with_capacity(names * 64);
    let mut index = Vec::with_capacity(names);
    let mut records = Vec::new();
    bytes.push(b'[');
    for (owner, types) in nodes {
        records.clear();
        api::node_records(owner, types, &mut records);
        if records.is_empty() {
            continue;
        }
        index.push(bytes.len() as u32 + u32::from(bytes.len() > 1));
        for r in &records {
            if bytes.len() > 1 {
                bytes.push(b',');
            }
            serde_json::to_writer(&mut bytes, r).expect("records serialize");
        }
    }
    bytes.push(b']');
    Packed { bytes: bytes.into(), index: index.into() }
}

/// Decodes a record list (a state file's) on up to two threads, and indexes it by name when
/// it is `sorted` (as we write them) so that it can be held as it is; `None` for the index
/// when it is not.
pub fn unpack_indexed(bytes: &Arc<[u8]>, apex: &Name, default_ttl: u32, sorted: bool) -> (SortedNodes, Option<Packed>) {
    match list::decode(bytes, apex, default_ttl, sorted, true) {
        Some(decoded) => {
            let packed = decoded.index.map(|index| Packed { bytes: Arc::clone(bytes), index: index.into() });
            (decoded.converted.nodes, packed)
        }
        // Not what we write: decode it the plain way (which reports the error).
        None => (unpack(bytes, apex, default_ttl), None),
    }
}

/// Calls `f` with each record of a compact record list in turn, without holding the whole
/// list decoded (for reads of big zones with bounded memory).
pub fn for_each_record(bytes: &[u8], f: impl FnMut(RecordJson)) {
    struct Each<F>(F);
    impl<'de, F: FnMut(RecordJson)> serde::de::Visitor<'de> for Each<F> {
        type Value = ();
        fn expecting(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            out.write_str("a list of records")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            while let Some(r) = seq.next_element::<RecordJson>()? {
                (self.0)(r);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    if let Err(e) = serde::Deserializer::deserialize_seq(&mut de, Each(f)) {
        tracing::error!(error = %e, "held controller records do not decode");
    }
}

/// Converts a zone's compact record list back into records, on two threads when big and with
/// strings borrowed from the list (a fold or a rewrite of a big zone then allocates little
/// besides the records themselves); none, logged, if it does not decode: it was encoded by us,
/// so that would be a bug, not bad input.
pub fn unpack(bytes: &[u8], apex: &Name, default_ttl: u32) -> SortedNodes {
    if let Some(decoded) = list::decode(bytes, apex, default_ttl, false, true) {
        return decoded.converted.nodes;
    }
    match serde_json::from_slice::<Vec<api::RecordJson>>(bytes) {
        Ok(records) => api::convert(&records, apex, default_ttl).nodes,
        Err(e) => {
            tracing::error!(zone = %apex, error = %e, "held controller records do not decode");
            SortedNodes::default()
        }
    }
}

/// The base records, converted, of the zones in `which` that are held packed (for a rebuild).
pub fn unpack_some(
    config: &Config,
    held: &HashMap<Name, &HeldZone>,
    which: impl Fn(&Name) -> bool,
) -> HashMap<Name, SortedNodes> {
    let mut out = HashMap::new();
    for (apex, h) in held {
        if let Held::Packed(p) = &h.held
            && which(apex)
        {
            let default_ttl = config.zone(apex).map_or(300, |z| z.default_ttl);
            out.insert(apex.clone(), unpack(&p.bytes, apex, default_ttl));
        }
    }
    out
}

/// A zone's dynamic records for a build: the base with the delta over it, and ExternalDNS's
/// records beside them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layered<'a> {
    /// The base records (converted).
    pub base: Option<&'a SortedNodes>,
    /// Names pushed since, with their whole records (empty: none).
    pub delta: Option<&'a Nodes>,
    /// ExternalDNS's records.
    pub external: Option<&'a Nodes>,
}

/// Controller and webhook records (`held`) and ExternalDNS's (`external`) at one name: the
/// held ones win type by type (and a held CNAME, or a held anything against an ExternalDNS
/// CNAME, takes the whole name); each ExternalDNS type left out is given to `shadowed`.
pub fn combine<'a>(
    held: Option<&'a TypeMap>,
    external: Option<&'a TypeMap>,
    mut shadowed: impl FnMut(u16),
) -> std::borrow::Cow<'a, TypeMap> {
    use std::borrow::Cow;
    match (held, external) {
        (Some(h), None) => Cow::Borrowed(h),
        (None, Some(e)) => Cow::Borrowed(e),
        (None, None) => Cow::Owned(TypeMap::new()),
        (Some(h), Some(e)) => {
            let mut both = h.clone();
            for (&rtype, set) in e {
                let clash = both.contains_key(&rtype)
                    || both.contains_key(&crate::dns::types::TYPE_CNAME)
                    || (rtype == crate::dns::types::TYPE_CNAME && !h.is_empty());
                if clash {
                    shadowed(rtype);
                } else {
                    both.insert(rtype, set.clone());
                }
            }
            Cow::Owned(both)
        }
    }
}

impl<'a> Layered<'a> {
    /// Only these records.
    pub fn plain(nodes: &'a Nodes) -> Layered<'a> {
        Layered { base: None, delta: Some(nodes), external: None }
    }

    /// Nothing at all.
    pub fn is_empty(&self) -> bool {
        self.base.is_none_or(|b| b.is_empty())
            && self.delta.is_none_or(|d| d.is_empty())
            && self.external.is_none_or(|e| e.is_empty())
    }

    /// Roughly how many names.
    pub fn len_hint(&self) -> usize {
        self.base.map_or(0, |b| b.len()) + self.delta.map_or(0, |d| d.len()) + self.external.map_or(0, |e| e.len())
    }

    /// Every name with records, in name order, ExternalDNS's merged in by [`combine`]; the
    /// ExternalDNS types the held records shadow go to `shadowed`.
    pub fn merged<'s>(
        &'s self,
        shadowed: &'s std::cell::RefCell<Vec<(Name, u16)>>,
    ) -> impl Iterator<Item = (&'a Name, std::borrow::Cow<'a, TypeMap>)> + 's {
        let mut held = self.iter().peekable();
        let mut external = self.external.into_iter().flatten().filter(|(_, t)| !t.is_empty()).peekable();
        std::iter::from_fn(move || {
            let order = match (held.peek(), external.peek()) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((h, _)), Some((e, _))) => h.cmp(e),
            };
            Some(match order {
                std::cmp::Ordering::Less => {
                    let (n, t) = held.next().expect("peeked");
                    (n, std::borrow::Cow::Borrowed(t))
                }
                std::cmp::Ordering::Greater => {
                    let (n, t) = external.next().expect("peeked");
                    (n, std::borrow::Cow::Borrowed(t))
                }
                std::cmp::Ordering::Equal => {
                    let (n, h) = held.next().expect("peeked");
                    let (_, e) = external.next().expect("peeked");
                    (n, combine(Some(h), Some(e), |rtype| shadowed.borrow_mut().push((n.clone(), rtype))))
                }
            })
        })
    }

    /// Every name with records, in name order; a delta entry replaces the base's.
    pub fn iter(&self) -> impl Iterator<Item = (&'a Name, &'a TypeMap)> + 'a {
        let mut base = self.base.into_iter().flatten().peekable();
        let mut delta = self.delta.into_iter().flatten().peekable();
        std::iter::from_fn(move || {
            loop {
                let next = match (base.peek(), delta.peek()) {
                    (None, None) => return None,
                    (Some(_), None) => base.next(),
                    (None, Some(_)) => delta.next(),
                    (Some((b, _)), Some((d, _))) => match b.cmp(d) {
                        std::cmp::Ordering::Less => base.next(),
                        std::cmp::Ordering::Greater => delta.next(),
                        std::cmp::Ordering::Equal => {
                            base.next();
                            delta.next()
                        }
                    },
                };
                match next {
                    Some((_, t)) if t.is_empty() => continue,
                    other => return other,
                }
            }
        })
    }
}

/// Every zone's records for a build: converted bases (or the ones just unpacked) with their
/// deltas.
pub fn borrow_all<'a>(
    held: &'a HashMap<Name, &'a HeldZone>,
    unpacked: &'a HashMap<Name, SortedNodes>,
) -> HashMap<Name, Layered<'a>> {
    let mut out = HashMap::with_capacity(held.len());
    for (apex, h) in held {
        let base = match &h.held {
            Held::Converted(n) => Some(&**n),
            Held::Packed(_) => unpacked.get(apex),
        };
        out.insert(apex.clone(), Layered { base, delta: Some(&*h.delta), external: Some(&*h.external) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(n: usize) -> (Name, SortedNodes) {
        let apex = Name::parse("z.example.", None).unwrap();
        let records: Vec<RecordJson> = (0..n)
            .flat_map(|i| {
                let name = format!("h{i}.d{}.z.example", i % 3);
                let a = RecordJson {
                    name: name.clone(),
                    rtype: "A".into(),
                    ttl: 60,
                    ips: vec![format!("192.0.2.{}", i % 250)],
                    failover: None,
                    pushed: i % 2 == 0,
                };
                let aaaa = RecordJson { rtype: "AAAA".into(), ips: vec!["2001:db8::5".into()], ..a.clone() };
                [a, aaaa]
            })
            .collect();
        let nodes = api::convert(&records, &apex, 300).nodes;
        (apex, nodes)
    }

    /// A packed list decodes (on two threads when big) to what was packed, and every name is
    /// found by its index, the absent ones not.
    #[test]
    fn packed_lists_decode_and_index_by_name() {
        for n in [0, 1, 5, 40_000] {
            let (apex, nodes) = zone(n);
            let packed = pack(&nodes, nodes.len());
            let (decoded, indexed) = unpack_indexed(&packed.bytes, &apex, 300, true);
            assert_eq!(decoded, nodes, "{n} names");
            let indexed = indexed.expect("sorted lists are indexed");
            assert_eq!(&*indexed.index, &*packed.index, "{n} names");
            for (name, types) in nodes.iter().step_by(97) {
                assert_eq!(indexed.get(name, &apex, 300).as_ref(), Some(types));
            }
            assert_eq!(indexed.get(&Name::parse("h0.nope.z.example.", None).unwrap(), &apex, 300), None);
            let (plain, none) = unpack_indexed(&packed.bytes, &apex, 300, false);
            assert!(none.is_none() && plain == nodes);
        }
    }

    /// Pushes change only the delta; the base is neither copied nor changed.
    #[test]
    fn pushes_change_the_delta_only() {
        let (apex, nodes) = zone(100);
        let base = Held::Packed(pack(&nodes, nodes.len()));
        let mut h = HeldZone::new("v1".into(), base.clone());
        let name = Name::parse("h1.d1.z.example.", None).unwrap();
        let record = RecordJson {
            name: name.to_dotless(),
            rtype: "A".into(),
            ttl: 5,
            ips: vec!["198.51.100.1".into()],
            failover: None,
            pushed: false,
        };
        let before = h.get(&name, &apex, 300);
        let (touched, rrs, first) = h.apply_push(&apex, 300, &[(name.clone(), TYPE_A, record)], &[]);
        assert_eq!((touched.len(), rrs), (1, 0));
        assert!(h.held.same(&base));
        let now = h.get(&name, &apex, 300).unwrap();
        assert_eq!(now.get(&TYPE_A).unwrap().ttl, 5);
        assert!(now.contains_key(&TYPE_AAAA), "the other type stays");
        let (_, rrs, second) = h.apply_push(&apex, 300, &[], &[(name.clone(), TYPE_A), (name.clone(), TYPE_AAAA)]);
        assert_eq!(rrs, -2);
        assert_eq!(h.get(&name, &apex, 300), None);
        assert_eq!(h.delta.len(), 1);
        // Taken back newest first, the name is as before each push, and the count undone.
        assert_eq!(second.records, 2);
        h.undo(second);
        assert_eq!(h.get(&name, &apex, 300), Some(now));
        h.undo(first);
        assert_eq!(h.get(&name, &apex, 300), before);
        assert!(h.delta.is_empty(), "a name not pushed before leaves the delta");
    }
}
