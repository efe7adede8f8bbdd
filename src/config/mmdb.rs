//! A MaxMind DB (`.mmdb`: GeoIP2/GeoLite2 City or Country, or a custom database) read once
//! into a location table: every network of the database gets the datacenter order its
//! record calls for, and neighbours with the same order merge. The query path never sees
//! the database, only the interval table it is read into ([`crate::geo_table`]).
//!
//! A record's order, first that applies: a custom database's own `datacenters` (a list of
//! names) or `datacenter` (one name); the map's `rules` by location, most specific first
//! (`subdivision:US-CA`, then `country:TR`, then `continent:EU`); with `nearest`, the
//! datacenters that have coordinates by distance from the record's `location` (City data);
//! otherwise the map's default. Records are decoded once per distinct record (the database
//! shares them between networks).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::geo_table::{GeoTable, NO_ORDER, OrderId};

/// A database read into a location table.
#[derive(Debug, Clone, PartialEq)]
pub struct MmdbTable {
    /// The file read.
    pub path: PathBuf,
    /// `database_type` from its metadata (e.g. `GeoLite2-City`).
    pub database_type: String,
    /// Networks in the database that have data.
    pub networks: usize,
    /// Intervals with database-local order ids ([`NO_ORDER`]: the map's default applies).
    pub table: GeoTable,
    /// Datacenter indexes by database-local order id.
    pub orders: Vec<Vec<u16>>,
}

/// What a map says about reading its database.
pub struct MmdbRules<'a> {
    /// `kind:CODE` → datacenter indexes, nearest first.
    pub rules: &'a BTreeMap<String, Vec<u16>>,
    /// Order by distance where no rule applies and the record has coordinates.
    pub nearest: bool,
    /// Datacenters in config order: names and coordinates (latitude, longitude).
    pub datacenters: &'a [(&'a str, Option<(f64, f64)>)],
}

#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    continent: Option<Code<'a>>,
    #[serde(borrow, default)]
    country: Option<Code<'a>>,
    #[serde(borrow, default)]
    subdivisions: Option<Vec<Code<'a>>>,
    #[serde(default)]
    location: Option<Location>,
    #[serde(borrow, default)]
    datacenters: Option<Vec<&'a str>>,
    #[serde(borrow, default)]
    datacenter: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Code<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// Reads `path` into a location table under `rules`. Errors name the problem (a missing
/// file, a file that is not a MaxMind DB, a custom record naming an unknown datacenter).
pub fn read(path: &Path, rules: &MmdbRules<'_>) -> Result<MmdbTable, String> {
    let bytes = super::file::read_regular(path, super::file::MMDB_MAX)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let reader = maxminddb::Reader::from_source(bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut orders: Vec<Vec<u16>> = Vec::new();
    let mut ids: HashMap<Vec<u16>, OrderId> = HashMap::new();
    let mut by_record: HashMap<usize, OrderId> = HashMap::new();
    let mut v4: Vec<(u32, u32, OrderId)> = Vec::new();
    let mut v6: Vec<(u128, u128, OrderId)> = Vec::new();
    let mut networks = 0;
    let within = reader.networks(Default::default()).map_err(|e| format!("{}: {e}", path.display()))?;
    for item in within {
        let item = item.map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(offset) = item.offset() else { continue };
        let net = item.network().map_err(|e| format!("{}: {e}", path.display()))?;
        networks += 1;
        let order = match by_record.get(&offset) {
            Some(&o) => o,
            None => {
                let record: Record<'_> =
                    item.decode().map_err(|e| format!("{}: {net}: {e}", path.display()))?.unwrap_or_default();
                let listed = order_of(&record, rules).map_err(|e| format!("{}: {net}: {e}", path.display()))?;
                let id = match listed {
                    None => NO_ORDER,
                    Some(listed) => match ids.get(&listed) {
                        Some(&id) => id,
                        None => {
                            let id =
                                OrderId::try_from(orders.len()).ok().filter(|&id| id < NO_ORDER).ok_or_else(|| {
                                    format!("{}: more than 65,534 distinct datacenter orders", path.display())
                                })?;
                            ids.insert(listed.clone(), id);
                            orders.push(listed);
                            id
                        }
                    },
                };
                by_record.insert(offset, id);
                id
            }
        };
        match net {
            ipnetwork::IpNetwork::V4(n) => {
                v4.push((u32::from(n.network()), u32::from(n.broadcast()), order));
            }
            ipnetwork::IpNetwork::V6(n) => {
                let start = u128::from(n.network());
                let host = 128 - n.prefix() as u32;
                let end = if host == 0 { start } else { start | (u128::MAX >> (128 - host)) };
                v6.push((start, end, order));
            }
        }
    }
    Ok(MmdbTable {
        path: path.to_path_buf(),
        database_type: reader.metadata().database_type.clone(),
        networks,
        table: GeoTable::from_ranges(&mut v4, &mut v6),
        orders,
    })
}

/// The datacenter order of one record, or `None` for the map's default.
fn order_of(r: &Record<'_>, rules: &MmdbRules<'_>) -> Result<Option<Vec<u16>>, String> {
    let own: Option<Vec<&str>> = r.datacenters.clone().or_else(|| r.datacenter.map(|d| vec![d]));
    if let Some(names) = own {
        let mut out = Vec::new();
        for name in names {
            let i = rules
                .datacenters
                .iter()
                .position(|(n, _)| *n == name.trim())
                .ok_or_else(|| format!("unknown datacenter {name:?}"))? as u16;
            if !out.contains(&i) {
                out.push(i);
            }
        }
        return Ok(Some(out));
    }
    let country = r.country.as_ref().and_then(|c| c.iso_code);
    let keys = [
        country
            .zip(r.subdivisions.as_ref().and_then(|s| s.first()).and_then(|s| s.iso_code))
            .map(|(c, s)| format!("subdivision:{}-{}", c.to_ascii_uppercase(), s.to_ascii_uppercase())),
        country.map(|c| format!("country:{}", c.to_ascii_uppercase())),
        r.continent.as_ref().and_then(|c| c.code).map(|c| format!("continent:{}", c.to_ascii_uppercase())),
    ];
    if let Some(order) = keys.iter().flatten().find_map(|k| rules.rules.get(k)) {
        return Ok(Some(order.clone()));
    }
    let at = r.location.as_ref().and_then(|l| l.latitude.zip(l.longitude));
    match at {
        Some(at) if rules.nearest => {
            Ok(Some(nearest(rules.datacenters, at))).map(|o| o.filter(|o: &Vec<u16>| !o.is_empty()))
        }
        _ => Ok(None),
    }
}

/// The datacenters that have coordinates, nearest first (great-circle distance).
pub fn nearest(datacenters: &[(&str, Option<(f64, f64)>)], (lat, lon): (f64, f64)) -> Vec<u16> {
    let mut with: Vec<(f64, u16)> = datacenters
        .iter()
        .enumerate()
        .filter_map(|(i, (_, at))| at.map(|c| (distance((lat, lon), c), i as u16)))
        .collect();
    with.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    with.into_iter().map(|(_, i)| i).collect()
}

/// Central angle between two points (haversine), in radians: enough to order by distance.
fn distance((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_orders_by_great_circle_distance() {
        let geo =
            [("fra", Some((50.1, 8.7))), ("iad", Some((38.9, -77.4))), ("sin", Some((1.35, 103.8))), ("none", None)];
        assert_eq!(nearest(&geo, (25.2, 55.3)), [0, 2, 1], "Dubai");
        assert_eq!(nearest(&geo, (37.8, -122.4)), [1, 0, 2], "San Francisco: Virginia, then Frankfurt over the pole");
        assert_eq!(nearest(&geo, (35.7, 139.7)), [2, 0, 1], "Tokyo");
    }
}
