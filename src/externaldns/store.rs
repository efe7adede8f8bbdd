//! A zone's endpoints as ExternalDNS wrote them, the records they make, the changes of one
//! `POST /records` routed to their zones, and the file that keeps them
//! (`<state>/<zone>.externaldns.json`, written whole and synced before a change is
//! acknowledged: ExternalDNS sends a batch a minute, not a stream).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::convert::{self, Checked};
use super::endpoint::{Changes, Endpoint};
use crate::config::ZoneConfig;
use crate::config::externaldns::ExternalDnsConfig;
use crate::dns::name::Name;
use crate::dns::records::{Draw, MAX_RRSET, RData, RRset, Source, TypeMap};
use crate::dns::types::TYPE_CNAME;

/// Largest endpoints file read at start-up.
pub const FILE_MAX: usize = 256 << 20;
/// What the file says it is.
const FORMAT: &str = "gslbd-externaldns/1";

/// A record set's identity: owner, type, set identifier.
pub type Key = (Name, u16, String);

/// One endpoint and its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// As ExternalDNS wrote it.
    pub endpoint: Endpoint,
    /// As records.
    pub checked: Checked,
}

/// A zone's endpoints, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneEndpoints {
    map: BTreeMap<Key, Arc<Entry>>,
}

/// A change refused, and where in the request it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `create`, `updateOld`, `updateNew` or `delete`.
    pub section: &'static str,
    /// Index within the section.
    pub item: usize,
    /// What is wrong.
    pub error: String,
}

/// One zone's part of a request: keys taken out, then entries put in.
#[derive(Debug, Clone, Default)]
pub struct ZoneChange {
    /// Removed (`delete`, `updateOld`).
    pub remove: Vec<Key>,
    /// Added or replaced (`create`, `updateNew`).
    pub put: Vec<(Key, Entry)>,
}

impl ZoneEndpoints {
    /// Endpoints held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// None held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every endpoint, by owner, type and set identifier.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.map.values().map(|e| &e.endpoint)
    }

    /// Every entry.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.map.values().map(|e| &**e)
    }

    /// Applies a zone's change; returns the owners it touched.
    pub fn apply(&mut self, change: &ZoneChange) -> BTreeSet<Name> {
        let mut touched = BTreeSet::new();
        for key in &change.remove {
            if self.map.remove(key).is_some() {
                touched.insert(key.0.clone());
            }
        }
        for (key, entry) in &change.put {
            touched.insert(key.0.clone());
            self.map.insert(key.clone(), Arc::new(entry.clone()));
        }
        touched
    }

    /// The records at one owner, per type. One set of a type is answered as it is. Several
    /// sets of a type (set identifiers) where one carries a weight, or several CNAMEs (a name
    /// has one), are drawn per query, one set at a time by weight ([`Draw`]): a set without
    /// a weight counts 1, a set of weight 0 is left out while another is above 0, and when
    /// every set is 0 each is drawn alike (Route 53's rules). Several sets without weights
    /// are answered together. The TTL is the lowest set's.
    pub fn types_at(&self, name: &Name, default_ttl: u32) -> Option<TypeMap> {
        let start = (name.clone(), 0u16, String::new());
        let mut by_type: BTreeMap<u16, Vec<&Checked>> = BTreeMap::new();
        for ((owner, rtype, _), entry) in self.map.range(start..) {
            if owner != name {
                break;
            }
            by_type.entry(*rtype).or_default().push(&entry.checked);
        }
        let mut types = TypeMap::new();
        for (rtype, sets) in by_type {
            let drawn = sets.len() > 1 && (rtype == TYPE_CNAME || sets.iter().any(|c| c.weight.is_some()));
            let all_zero = sets.iter().all(|c| c.weight == Some(0));
            let mut rdata = Vec::new();
            let mut groups = Vec::new();
            let mut ttl = None::<u32>;
            for c in sets.iter().filter(|c| all_zero || c.weight != Some(0)) {
                let fresh: Vec<&RData> = c.rdata.iter().filter(|rd| drawn || !rdata.contains(*rd)).collect();
                if rdata.len() + fresh.len() > MAX_RRSET {
                    break;
                }
                groups.push((fresh.len() as u16, if all_zero { 1 } else { c.weight.unwrap_or(1) }));
                rdata.extend(fresh.into_iter().cloned());
                let t = c.ttl.unwrap_or(default_ttl);
                ttl = Some(ttl.map_or(t, |old| old.min(t)));
            }
            let draw = (drawn && groups.len() > 1).then(|| Box::new(Draw { groups }));
            let rotate = rdata.len() > 1;
            let ttl = ttl.unwrap_or(default_ttl);
            types.insert(rtype, RRset { ttl, rdata, source: Source::ExternalDns, rotate, draw });
        }
        (!types.is_empty()).then_some(types)
    }

    /// Owners held, each once, in order.
    pub fn owners(&self) -> impl Iterator<Item = &Name> {
        let mut last: Option<&Name> = None;
        self.map.keys().filter_map(move |(n, _, _)| {
            if last == Some(n) {
                return None;
            }
            last = Some(n);
            Some(n)
        })
    }
}

/// Checks every endpoint of a request and routes it to its zone (the longest apex among the
/// zones ExternalDNS may write). The first bad endpoint refuses the whole request.
pub fn route(
    changes: &Changes,
    cfg: &ExternalDnsConfig,
    zones: &[ZoneConfig],
) -> Result<BTreeMap<Name, ZoneChange>, Refusal> {
    let mut out: BTreeMap<Name, ZoneChange> = BTreeMap::new();
    for (section, list) in changes.sections() {
        let removal = matches!(section, "delete" | "updateOld");
        for (item, e) in list.iter().enumerate() {
            let refuse = |error: String| Refusal { section, item, error };
            // A removal needs only what identifies the set; its targets are what was there.
            let (name, rtype, checked) = if removal {
                (convert::owner(e).map_err(refuse)?, convert::record_type(e).map_err(refuse)?, None)
            } else {
                let c = convert::check(e).map_err(refuse)?;
                (c.name.clone(), c.rtype, Some(c))
            };
            let Some(zone) = cfg.zone_of(&name, zones) else {
                return Err(refuse(format!("{name} is in no zone ExternalDNS may write here")));
            };
            let key = (name, rtype, e.set_identifier.clone());
            let change = out.entry(zone.apex.clone()).or_default();
            match checked {
                None => change.remove.push(key),
                Some(checked) => change.put.push((key, Entry { endpoint: e.clone(), checked })),
            }
        }
    }
    Ok(out)
}

/// The file of a zone's endpoints: `<dir>/<zone>.externaldns.json`.
pub fn path(dir: &Path, apex: &Name) -> PathBuf {
    let stem = if apex.is_root() { "root".to_string() } else { apex.to_dotless() };
    dir.join(format!("{stem}.externaldns.json"))
}

#[derive(Serialize, Deserialize)]
struct File<E> {
    format: String,
    zone: String,
    endpoints: E,
}

/// Writes a zone's endpoints (synced, then renamed into place); an empty set removes the
/// file.
pub fn save(dir: &Path, apex: &Name, endpoints: &ZoneEndpoints) -> std::io::Result<()> {
    let p = path(dir, apex);
    if endpoints.is_empty() {
        return match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let list: Vec<&Endpoint> = endpoints.endpoints().collect();
    let file = File { format: FORMAT.into(), zone: apex.to_dotless(), endpoints: list };
    let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    crate::config::file::write_atomic(&p, &bytes)
}

/// Reads a zone's endpoints (none without a file). An endpoint that no longer checks (the
/// zone's config changed) is left out and reported.
pub fn load(dir: &Path, apex: &Name, cfg: &ExternalDnsConfig, zones: &[ZoneConfig]) -> Result<ZoneEndpoints, String> {
    let p = path(dir, apex);
    let bytes = match crate::config::file::read_regular(&p, FILE_MAX) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ZoneEndpoints::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
    };
    let file: File<Vec<Endpoint>> =
        serde_json::from_slice(&bytes).map_err(|e| format!("{} is corrupt: {e}", p.display()))?;
    if file.format != FORMAT {
        return Err(format!("{} is not a gslbd ExternalDNS file (format {:?})", p.display(), file.format));
    }
    let mut out = ZoneEndpoints::default();
    let changes = Changes { create: file.endpoints, ..Changes::default() };
    for (item, e) in changes.create.iter().enumerate() {
        let one = Changes { create: vec![e.clone()], ..Changes::default() };
        match route(&one, cfg, zones) {
            Ok(routed) => match routed.get(apex) {
                Some(change) => {
                    out.apply(change);
                }
                None => {
                    tracing::warn!(zone = %apex, item, name = %e.dns_name, "ExternalDNS endpoint now belongs to another zone; left out")
                }
            },
            Err(r) => {
                tracing::warn!(zone = %apex, item, error = %r.error, "ExternalDNS endpoint no longer valid; left out")
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::types::{TYPE_A, TYPE_TXT};

    fn entry(name: &str, rtype: &str, set: &str, targets: &[&str], weight: Option<&str>) -> (Key, Entry) {
        let endpoint = Endpoint {
            dns_name: name.into(),
            record_type: rtype.into(),
            set_identifier: set.into(),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            provider_specific: weight
                .map(|w| vec![super::super::endpoint::Property { name: "webhook/weight".into(), value: w.into() }])
                .unwrap_or_default(),
            ..Endpoint::default()
        };
        let checked = convert::check(&endpoint).unwrap();
        ((checked.name.clone(), checked.rtype, set.into()), Entry { endpoint, checked })
    }

    /// Sets with one name and type make one RRset; removals and replacements touch their
    /// owners only.
    #[test]
    fn sets_merge_per_type() {
        let mut z = ZoneEndpoints::default();
        let a = entry("web.k.example", "A", "eu", &["192.0.2.1"], Some("2"));
        let b = entry("web.k.example", "A", "us", &["192.0.2.2"], Some("0"));
        let t = entry("web.k.example", "TXT", "", &["\"heritage=external-dns\""], None);
        let touched = z.apply(&ZoneChange { remove: vec![], put: vec![a.clone(), b, t] });
        assert_eq!(touched.len(), 1);
        let name = Name::parse("web.k.example.", None).unwrap();
        let types = z.types_at(&name, 300).unwrap();
        assert_eq!(types[&TYPE_A].rdata, [RData::A("192.0.2.1".parse().unwrap())], "weight 0 is left out");
        assert_eq!(types[&TYPE_A].source, Source::ExternalDns);
        assert!(types.contains_key(&TYPE_TXT));
        z.apply(&ZoneChange { remove: vec![a.0], put: vec![] });
        let types = z.types_at(&name, 300).unwrap();
        assert_eq!(types[&TYPE_A].rdata, [RData::A("192.0.2.2".parse().unwrap())], "every set 0: all answered");
        assert_eq!(z.owners().count(), 1);
        assert_eq!(z.types_at(&Name::parse("other.k.example.", None).unwrap(), 300), None);
    }

    /// Weighted sets are drawn one at a time, in their weights; CNAMEs are drawn even without
    /// weights (a name has one); a transfer sees one answer.
    #[test]
    fn weighted_sets_are_drawn() {
        let mut z = ZoneEndpoints::default();
        let a = entry("web.k.example", "A", "eu", &["192.0.2.1", "192.0.2.3"], Some("70"));
        let b = entry("web.k.example", "A", "us", &["192.0.2.2"], Some("30"));
        let c = entry("web.k.example", "A", "off", &["192.0.2.9"], Some("0"));
        let x = entry("alias.k.example", "CNAME", "one", &["lb-1.example.net"], None);
        let y = entry("alias.k.example", "CNAME", "two", &["lb-2.example.net"], Some("3"));
        z.apply(&ZoneChange { remove: vec![], put: vec![a, b, c, x, y] });
        let web = z.types_at(&Name::parse("web.k.example.", None).unwrap(), 300).unwrap();
        let set = &web[&TYPE_A];
        let groups: Vec<(usize, u32)> = set.groups().map(|(g, w)| (g.len(), w)).collect();
        assert_eq!(groups, [(2, 70), (1, 30)], "weight 0 left out, the rest in their groups");
        assert_eq!(set.undrawn().rdata.len(), 3);
        assert!(set.undrawn().draw.is_none());
        let alias = z.types_at(&Name::parse("alias.k.example.", None).unwrap(), 300).unwrap();
        let cname = &alias[&crate::dns::types::TYPE_CNAME];
        assert_eq!(cname.groups().map(|(_, w)| w).collect::<Vec<_>>(), [1, 3], "no weight counts 1");
        let one = cname.undrawn();
        assert_eq!(one.rdata, [RData::Cname(Name::parse("lb-2.example.net.", None).unwrap())], "the heaviest");
    }
}
