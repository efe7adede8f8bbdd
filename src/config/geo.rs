//! `[geo]` validation: datacenters and the location maps that order them per client network.
//!
//! A map's networks come from the config (`nets`, a table from CIDR to datacenters) and from
//! a file (`nets_file`: one `CIDR dc1,dc2,...` per line, `#` comments, the format of the
//! benchmark harness's `geo-nets.txt`). Every error names the file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;

use super::error::Reporter;
use super::raw::{RawGeo, RawGeoMap};
use super::value::{Net, parse_net};

/// A datacenter members and targets can be placed in.
#[derive(Debug, Clone, PartialEq)]
pub struct Datacenter {
    /// Its name, as pools and maps refer to it.
    pub name: String,
    /// Latitude and longitude in degrees, for nearest-first ordering.
    pub coordinates: Option<(f64, f64)>,
}

/// A location map: datacenter orders (indexes into [`GeoConfig::datacenters`]) by network.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoMap {
    /// Its name (`default` when the config gives none).
    pub name: String,
    /// The order of clients no network covers.
    pub default: Vec<u16>,
    /// Networks and their orders; a later entry for the same network wins.
    pub nets: Vec<(Net, Vec<u16>)>,
    /// The `nets_file` read, if any (reloads watch it).
    pub nets_file: Option<PathBuf>,
    /// The MaxMind DB read, if any, under the map's `rules` (its networks lie under `nets`).
    pub db: Option<std::sync::Arc<super::mmdb::MmdbTable>>,
}

impl GeoMap {
    /// The files this map was read from (a change reloads the config).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.nets_file.as_deref().into_iter().chain(self.db.as_ref().map(|d| d.path.as_path()))
    }
}

/// `[geo]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeoConfig {
    /// Datacenters in config order.
    pub datacenters: Vec<Datacenter>,
    /// Maps in config order.
    pub maps: Vec<GeoMap>,
}

impl GeoConfig {
    /// A datacenter's index by name.
    pub fn datacenter(&self, name: &str) -> Option<u16> {
        self.datacenters.iter().position(|d| d.name == name).map(|i| i as u16)
    }

    /// A map's index by name; with `None`, the only map there is.
    pub fn map(&self, name: Option<&str>) -> Option<usize> {
        match name {
            Some(n) => self.maps.iter().position(|m| m.name == n),
            None => (self.maps.len() == 1).then_some(0),
        }
    }
}

/// Validates `[geo]`; `None` fields are absent ones.
pub fn geo(raw: Option<&RawGeo>, rep: &mut Reporter<'_>) -> GeoConfig {
    let Some(raw) = raw else { return GeoConfig::default() };
    let mut out = GeoConfig::default();
    for (i, d) in raw.datacenter.iter().enumerate() {
        let k = format!("geo.datacenter[{i}]");
        let d = d.get_ref();
        let name = d.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains([',', ' ', '/']) {
            rep.at(d.name.span().start, format!("{k}.name"), "must be a non-empty word (no spaces, commas or slashes)");
            continue;
        }
        if out.datacenter(&name).is_some() {
            rep.at(d.name.span().start, format!("{k}.name"), format!("datacenter {name} is defined twice"));
            continue;
        }
        let coordinates = match &d.coordinates {
            None => None,
            Some(c) => match c.get_ref().as_slice() {
                [lat, lon] if (-90.0..=90.0).contains(lat) && (-180.0..=180.0).contains(lon) => Some((*lat, *lon)),
                _ => {
                    rep.at(
                        c.span().start,
                        format!("{k}.coordinates"),
                        "must be [latitude, longitude] in degrees (-90..90, -180..180)",
                    );
                    None
                }
            },
        };
        out.datacenters.push(Datacenter { name, coordinates });
    }
    if out.datacenters.is_empty() && (!raw.map.is_empty() || !raw.datacenter.is_empty()) {
        let at = raw.map.first().map(|m| m.span().start).or(raw.datacenter.first().map(|d| d.span().start));
        rep.at_line(at.map(|a| rep.line_of(a)), "geo.datacenter", "[geo] needs at least one [[geo.datacenter]]");
    }
    for (i, m) in raw.map.iter().enumerate() {
        let k = format!("geo.map[{i}]");
        // A map with errors is kept too (the config is rejected anyway), so what names it
        // finds it and only the map's own errors are reported.
        let map = map(&k, m, &out, rep);
        if out.maps.iter().any(|o| o.name == map.name) {
            rep.at(m.span().start, format!("{k}.name"), format!("map {} is defined twice", map.name));
        } else {
            out.maps.push(map);
        }
    }
    out
}

/// A datacenter list as indexes: every name known, none twice; else the position of the
/// first name that is not, and why.
fn resolve<'n>(names: impl IntoIterator<Item = &'n str>, geo: &GeoConfig) -> Result<Vec<u16>, (usize, String)> {
    let mut out = Vec::new();
    for (at, name) in names.into_iter().enumerate() {
        match geo.datacenter(name.trim()) {
            Some(i) if out.contains(&i) => return Err((at, format!("datacenter {name} is listed twice"))),
            Some(i) => out.push(i),
            None => return Err((at, format!("unknown datacenter {name:?}"))),
        }
    }
    Ok(out)
}

/// [`resolve`] for a config list, reporting at the offending name.
fn order(names: &[Spanned<String>], geo: &GeoConfig, key: &str, rep: &mut Reporter<'_>) -> Option<Vec<u16>> {
    resolve(names.iter().map(|n| n.get_ref().as_str()), geo)
        .map_err(|(at, message)| rep.at(names[at].span().start, key, message))
        .ok()
}

fn map(k: &str, raw: &Spanned<RawGeoMap>, geo: &GeoConfig, rep: &mut Reporter<'_>) -> GeoMap {
    let m = raw.get_ref();
    let name = m.name.as_ref().map_or_else(|| "default".to_string(), |n| n.get_ref().trim().to_string());
    let all: Vec<u16> = (0..geo.datacenters.len() as u16).collect();
    let default = match &m.default {
        Some(d) => order(d.get_ref(), geo, &format!("{k}.default"), rep).unwrap_or_default(),
        None => all,
    };
    // The file's entries come after the inline table's and win for the same network.
    let mut nets: BTreeMap<Net, Vec<u16>> = BTreeMap::new();
    if let Some(table) = &m.nets {
        for (cidr, dcs) in table.get_ref() {
            let key = format!("{k}.nets.{:?}", cidr.get_ref());
            match parse_net(cidr.get_ref()) {
                Ok(net) => {
                    if let Some(o) = order(dcs.get_ref(), geo, &key, rep) {
                        nets.insert(net, o);
                    }
                }
                Err(e) => rep.at(cidr.span().start, key, e),
            }
        }
    }
    let mut nets_file = None;
    if let Some(path) = &m.nets_file {
        let base = rep.file().parent().unwrap_or(Path::new("."));
        let file = base.join(path.get_ref());
        let key = format!("{k}.nets_file");
        match super::file::read_text(&file, super::file::NETS_FILE_MAX) {
            Err(e) => rep.at(path.span().start, key, e),
            // An empty file is refused rather than moving every client to the default order:
            // it is far more often a file caught while being rewritten than a wish.
            Ok(text) if !text.lines().any(|l| !l.split('#').next().unwrap_or("").trim().is_empty()) => rep.at(
                path.span().start,
                key,
                format!("{} holds no networks (remove nets_file to use none)", file.display()),
            ),
            Ok(text) => {
                for (line, entry) in read_nets_file(&text, geo) {
                    match entry {
                        Ok((net, o)) => {
                            nets.insert(net, o);
                        }
                        Err(message) => rep.errors.push(super::ConfigError {
                            file: file.clone(),
                            line: Some(line),
                            key: key.clone(),
                            message,
                        }),
                    }
                }
            }
        }
        nets_file = Some(file);
    }
    let mut rules: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    if let Some(table) = &m.rules {
        if m.mmdb.is_none() {
            rep.at(table.span().start, format!("{k}.rules"), "rules apply to a MaxMind DB: set mmdb = \"FILE\"");
        }
        for (key, dcs) in table.get_ref() {
            let rk = format!("{k}.rules.{:?}", key.get_ref());
            let text = key.get_ref().trim();
            let normal = match text.split_once(':') {
                Some((kind @ ("continent" | "country"), code)) if code.len() == 2 => {
                    Some(format!("{kind}:{}", code.to_ascii_uppercase()))
                }
                Some(("subdivision", code))
                    if code.split_once('-').is_some_and(|(c, s)| c.len() == 2 && !s.is_empty()) =>
                {
                    Some(format!("subdivision:{}", code.to_ascii_uppercase()))
                }
                _ => None,
            };
            match normal {
                Some(normal) => {
                    if let Some(o) = order(dcs.get_ref(), geo, &rk, rep) {
                        rules.insert(normal, o);
                    }
                }
                None => rep.at(
                    key.span().start,
                    rk,
                    format!("{text:?} is not continent:CODE, country:CODE or subdivision:COUNTRY-CODE"),
                ),
            }
        }
    }
    let mut db = None;
    if let Some(path) = &m.mmdb {
        let file = rep.file().parent().unwrap_or(Path::new(".")).join(path.get_ref());
        let nearest = match &m.nearest {
            Some(n) => *n.get_ref(),
            None => geo.datacenters.iter().any(|d| d.coordinates.is_some()),
        };
        let datacenters: Vec<(&str, Option<(f64, f64)>)> =
            geo.datacenters.iter().map(|d| (d.name.as_str(), d.coordinates)).collect();
        let read =
            super::mmdb::read(&file, &super::mmdb::MmdbRules { rules: &rules, nearest, datacenters: &datacenters });
        match read {
            Ok(table) => db = Some(std::sync::Arc::new(table)),
            Err(e) => rep.at(path.span().start, format!("{k}.mmdb"), e),
        }
    } else if let Some(n) = &m.nearest {
        rep.at(n.span().start, format!("{k}.nearest"), "nearest applies to a MaxMind DB: set mmdb = \"FILE\"");
    }
    GeoMap { name, default, nets: nets.into_iter().collect(), nets_file, db }
}

/// Validates a zone's `[[zone.geo_name]]`s; `key` is like `zone[0]`. A name may not hold
/// static records or a pool; targets are full names (a trailing dot is optional).
pub fn geo_names(
    key: &str,
    apex: &crate::dns::name::Name,
    raw: &[Spanned<super::raw::RawGeoName>],
    taken: &dyn Fn(&crate::dns::name::Name) -> bool,
    geo: &GeoConfig,
    rep: &mut Reporter<'_>,
) -> Vec<super::GeoNameConfig> {
    use crate::dns::name::Name;
    let mut out: Vec<super::GeoNameConfig> = Vec::new();
    for (i, g) in raw.iter().enumerate() {
        let k = format!("{key}.geo_name[{i}]");
        let before = rep.errors.len();
        let r = g.get_ref();
        let at = r.name.span().start;
        let name = match Name::parse(r.name.get_ref().trim(), Some(apex)) {
            Ok(n) if n.is_within(apex) && n != *apex => n,
            Ok(n) => {
                rep.at(at, format!("{k}.name"), format!("{n} is not a name below the zone {apex}"));
                continue;
            }
            Err(e) => {
                rep.at(at, format!("{k}.name"), e.to_string());
                continue;
            }
        };
        if taken(&name) || out.iter().any(|o| o.name == name) {
            rep.at(at, format!("{k}.name"), format!("{name} already has records, a pool or another geo_name"));
        }
        let map = map_of(&k, r.geo_map.as_ref(), at, geo, rep);
        let mut targets = vec![None; geo.datacenters.len()];
        for (dc, target) in r.targets.get_ref() {
            let tk = format!("{k}.targets.{dc}");
            let Some(d) = geo.datacenter(dc.trim()) else {
                rep.at(target.span().start, tk, format!("unknown datacenter {dc:?}"));
                continue;
            };
            let text = target.get_ref().trim();
            let absolute = if text.ends_with('.') { text.to_string() } else { format!("{text}.") };
            match Name::parse(&absolute, None) {
                Ok(t) if t == name => rep.at(target.span().start, tk, "a geo name cannot target itself"),
                Ok(t) => targets[d as usize] = Some(t),
                Err(e) => rep.at(target.span().start, tk, e.to_string()),
            }
        }
        if r.targets.get_ref().is_empty() {
            rep.at(r.targets.span().start, format!("{k}.targets"), "needs at least one datacenter = \"name\"");
        }
        if let (Some(map), true) = (map, rep.errors.len() == before) {
            out.push(super::GeoNameConfig { name, map, targets });
        }
    }
    out
}

/// One line of a `nets_file`: its 1-based number and the network and order it gives.
type NetsLine = (usize, Result<(Net, Vec<u16>), String>);

/// The entries of a `nets_file`.
fn read_nets_file(text: &str, geo: &GeoConfig) -> Vec<NetsLine> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let entry = (|| {
            let mut parts = line.split_whitespace();
            let net = parse_net(parts.next().unwrap_or(""))?;
            let list = parts.next().ok_or("expected `CIDR dc1,dc2,...`")?;
            if parts.next().is_some() {
                return Err("expected `CIDR dc1,dc2,...` (nothing after the list)".to_string());
            }
            let order = resolve(list.split(','), geo).map_err(|(_, message)| message)?;
            Ok((net, order))
        })();
        out.push((i + 1, entry));
    }
    out
}

/// The map a geo pool or name uses: the one `name` gives, else the only one there is.
pub fn map_of(
    k: &str,
    name: Option<&Spanned<String>>,
    at: usize,
    geo: &GeoConfig,
    rep: &mut Reporter<'_>,
) -> Option<usize> {
    let found = geo.map(name.map(|n| n.get_ref().trim()));
    if found.is_none() {
        let message = match (name, geo.maps.len()) {
            (Some(n), _) => format!("unknown [[geo.map]] {:?}", n.get_ref()),
            (None, 0) => "geo steering needs a [[geo.map]] in [geo]".to_string(),
            (None, _) => "there are several [[geo.map]]s: name one with geo_map".to_string(),
        };
        rep.at(name.map_or(at, |n| n.span().start), format!("{k}.geo_map"), message);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_with_clear_errors() {
        assert_eq!(parse_net("10.0.0.0/8"), Ok(Net { start: 0x0a00_0000, prefix: 8, v4: true }));
        assert_eq!(parse_net("::/0").map(|n| (n.prefix, n.v4)), Ok((0, false)));
        assert!(parse_net("10.0.0.1/8").unwrap_err().contains("bits set beyond"));
        assert!(parse_net("10.0.0.0/33").unwrap_err().contains("longer than 32"));
        assert!(parse_net("10.0.0.0").unwrap_err().contains("not a network"));
        assert!(parse_net("eu/8").unwrap_err().contains("not an IP address"));
    }

    #[test]
    fn a_nets_file_gives_lines_for_its_errors() {
        let geo = GeoConfig {
            datacenters: ["dc1", "dc2"].map(|n| Datacenter { name: n.into(), coordinates: None }).to_vec(),
            maps: vec![],
        };
        let entries = read_nets_file("# comment\n10.1.0.0/16 dc2,dc1\n\n10.2.0.0/16 dc3\n10.3.0.1/16 dc1\n", &geo);
        assert_eq!(entries[0], (2, Ok((parse_net("10.1.0.0/16").unwrap(), vec![1, 0]))));
        assert_eq!(entries[1].0, 4);
        assert!(entries[1].1.as_ref().unwrap_err().contains("unknown datacenter"));
        assert_eq!(entries[2].0, 5);
        assert!(entries[2].1.as_ref().unwrap_err().contains("bits set beyond"));
    }
}
