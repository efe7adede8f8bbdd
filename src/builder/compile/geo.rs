//! Compiles the config's location maps for the query path (`snapshot::geo`).
//!
//! A map's orders are interned: networks that list the same datacenters share one order id,
//! so neighbours merge in the interval table and the answers a pool pre-encodes number the
//! distinct orders, not the networks. Each order is completed with the datacenters it does
//! not list, in config order, so a client always fails over somewhere before the pool's
//! `when_all_down` applies.

use std::collections::HashMap;

use crate::config::geo::{GeoConfig, GeoMap};
use crate::geo_table::{GeoTable, OrderId, Rule};
use crate::snapshot::geo::CompiledMap;

/// Every map of `geo`, in config order.
pub fn compile_maps(geo: &GeoConfig) -> Vec<CompiledMap> {
    geo.maps.iter().map(|m| compile_map(m, geo.datacenters.len())).collect()
}

/// One map over `datacenters` datacenters.
pub fn compile_map(map: &GeoMap, datacenters: usize) -> CompiledMap {
    let mut ids: HashMap<Vec<u16>, OrderId> = HashMap::new();
    let mut orders: Vec<Box<[u16]>> = Vec::new();
    let mut intern = |listed: &[u16]| -> OrderId {
        let mut full = listed.to_vec();
        full.extend((0..datacenters as u16).filter(|d| !listed.contains(d)));
        if let Some(&id) = ids.get(&full) {
            return id;
        }
        let id = orders.len() as OrderId;
        orders.push(full.clone().into_boxed_slice());
        ids.insert(full, id);
        id
    };
    let default = intern(&map.default);
    // A database's orders are interned first, so a map's ids do not depend on its networks.
    let db_ids: Vec<OrderId> = map.db.iter().flat_map(|db| db.orders.iter()).map(|o| intern(o)).collect();
    let rules: Vec<Rule> =
        map.nets.iter().map(|(n, o)| Rule { start: n.start, prefix: n.prefix, v4: n.v4, order: intern(o) }).collect();
    let table = match &map.db {
        Some(db) => GeoTable::layered(&rules, &db.table.remap(|o| db_ids[o as usize]), default),
        None => GeoTable::build(&rules, default),
    };
    CompiledMap { table, orders }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::value::parse_net;

    fn map(nets: &[(&str, &[u16])], default: &[u16]) -> GeoMap {
        GeoMap {
            name: "m".into(),
            default: default.to_vec(),
            nets: nets.iter().map(|(n, o)| (parse_net(n).unwrap(), o.to_vec())).collect(),
            nets_file: None,
            db: None,
        }
    }

    #[test]
    fn orders_are_completed_and_shared() {
        let m = compile_map(&map(&[("10.2.0.0/16", &[2]), ("10.3.0.0/16", &[2, 0, 1]), ("10.4.0.0/16", &[1])], &[]), 3);
        assert_eq!(m.order("10.2.9.9".parse().unwrap()).0, [2, 0, 1]);
        assert_eq!(m.order("10.4.0.1".parse().unwrap()).0, [1, 0, 2]);
        assert_eq!(m.order("192.0.2.1".parse().unwrap()).0, [0, 1, 2], "default: config order");
        // 10.2/16 and 10.3/16 get the same order: one id, one merged interval, scope /15.
        assert_eq!(m.orders.len(), 3);
        assert_eq!(m.order("10.3.0.1".parse().unwrap()), (&[2u16, 0, 1][..], 15));
    }

    #[test]
    fn a_map_without_networks_answers_its_default_everywhere() {
        let m = compile_map(&map(&[], &[1]), 2);
        assert_eq!(m.order("2001:db8::1".parse().unwrap()), (&[1u16, 0][..], 0));
        assert_eq!(m.order("203.0.113.9".parse().unwrap()), (&[1u16, 0][..], 0));
    }
}
