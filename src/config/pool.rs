//! `[[zone.pool]]` validation: defaults, ranges, member check overrides, and the conflicts a
//! pool may have with the zone's static data.

use serde_spanned::Spanned;

use super::error::Reporter;
use super::geo::GeoConfig;
use super::geo::map_of;
use super::raw::RawPool;
use super::value::{MAX_TTL, int};
use super::{HashPrefix, Role, Select, WhenAllDown};
use super::{MemberConfig, PoolConfig, PoolMode};
use crate::dns::name::Name;
use crate::dns::records::ZoneData;

/// Validates the pools of one zone; `key` is like `zone[0]`.
pub fn pools(
    key: &str,
    apex: &Name,
    raw: &[Spanned<RawPool>],
    data: &ZoneData,
    geo: &GeoConfig,
    clustered: bool,
    rep: &mut Reporter<'_>,
) -> Vec<PoolConfig> {
    let mut out: Vec<PoolConfig> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let k = format!("{key}.pool[{i}]");
        let before = rep.errors.len();
        let Some(pool) = pool(&k, apex, p, geo, clustered, rep) else { continue };
        let at = p.get_ref().name.span().start;
        if out.iter().any(|o| o.name == pool.name) {
            rep.at(at, format!("{k}.name"), format!("pool {} is defined twice", pool.name));
        }
        let clash = data
            .nodes
            .keys()
            .find(|n| **n == pool.name || (pool.mode == PoolMode::Delegate && n.is_within(&pool.name)));
        if let Some(n) = clash.filter(|n| **n != *apex || pool.name != *apex) {
            rep.at(at, format!("{k}.name"), format!("pool {} collides with static records at {n}", pool.name));
        }
        if pool.name == *apex && pool.mode == PoolMode::Delegate {
            rep.at(at, format!("{k}.mode"), "the zone apex cannot be delegated");
        }
        if rep.errors.len() == before {
            out.push(pool);
        }
    }
    out
}

fn pool(
    k: &str,
    apex: &Name,
    raw: &Spanned<RawPool>,
    geo: &GeoConfig,
    clustered: bool,
    rep: &mut Reporter<'_>,
) -> Option<PoolConfig> {
    let before = rep.errors.len();
    let p = raw.get_ref();
    let name = match Name::parse(p.name.get_ref().trim(), Some(apex)) {
        Ok(n) if n.is_within(apex) => n,
        Ok(n) => {
            rep.at(p.name.span().start, format!("{k}.name"), format!("{n} is outside the zone {apex}"));
            return None;
        }
        Err(e) => {
            rep.at(p.name.span().start, format!("{k}.name"), e.to_string());
            return None;
        }
    };
    let word = |rep: &mut Reporter<'_>, v: &Option<Spanned<String>>, key: &str, allowed: &[&str], default: &str| match v
    {
        None => default.to_string(),
        Some(v) if allowed.contains(&v.get_ref().to_ascii_lowercase().as_str()) => v.get_ref().to_ascii_lowercase(),
        Some(v) => {
            rep.at(
                v.span().start,
                format!("{k}.{key}"),
                format!("{:?} is not one of {}", v.get_ref(), allowed.join(", ")),
            );
            default.to_string()
        }
    };
    let mode = match word(rep, &p.mode, "mode", &["address", "delegate"], "address").as_str() {
        "delegate" => PoolMode::Delegate,
        _ => PoolMode::Address,
    };
    let selects = |word: &str| match word {
        "all" => Select::All,
        "weighted" => Select::Weighted,
        "hash" => Select::Hash,
        _ => Select::Failover,
    };
    let select_word = word(rep, &p.select, "select", &["failover", "all", "weighted", "hash", "geo"], "failover");
    let at = raw.span().start;
    let (select, geo_map) = if select_word == "geo" {
        let within = word(rep, &p.within, "within", &["failover", "all", "weighted", "hash"], "all");
        (selects(&within), map_of(k, p.geo_map.as_ref(), at, geo, rep))
    } else {
        for (key, v) in [("within", &p.within), ("geo_map", &p.geo_map)] {
            if let Some(v) = v {
                rep.at(v.span().start, format!("{k}.{key}"), "only applies with select = \"geo\"");
            }
        }
        (selects(&select_word), None)
    };
    let ttl = int(rep, p.ttl.as_ref(), &format!("{k}.ttl"), 0, MAX_TTL, 30) as u32;
    let max_answers = int(rep, p.max_answers.as_ref(), &format!("{k}.max_answers"), 1, 64, 8) as usize;
    let hash_prefix = HashPrefix {
        v4: int(rep, p.hash_prefix_v4.as_ref(), &format!("{k}.hash_prefix_v4"), 0, 32, 24) as u8,
        v6: int(rep, p.hash_prefix_v6.as_ref(), &format!("{k}.hash_prefix_v6"), 0, 128, 56) as u8,
    };
    if select != Select::Hash {
        for (key, v) in [("hash_prefix_v4", &p.hash_prefix_v4), ("hash_prefix_v6", &p.hash_prefix_v6)] {
            if let Some(v) = v {
                rep.at(
                    v.span().start,
                    format!("{k}.{key}"),
                    "only applies with select = \"hash\" or within = \"hash\"",
                );
            }
        }
    }
    if select == Select::Hash && mode == PoolMode::Delegate {
        rep.at(at, format!("{k}.select"), "hashing picks addresses; a delegate pool refers to all its chosen members");
    }
    let when_all_down = match &p.when_all_down {
        None => WhenAllDown::All,
        Some(v) => match v.get_ref().to_ascii_lowercase().as_str() {
            "all" => WhenAllDown::All,
            "nodata" => WhenAllDown::NoData,
            "servfail" => WhenAllDown::ServFail,
            other => match Name::parse(other, Some(apex)) {
                Ok(n) => WhenAllDown::Cname(n),
                Err(e) => {
                    let m = format!("{:?} is not all, nodata, servfail or a name: {e}", v.get_ref());
                    rep.at(v.span().start, format!("{k}.when_all_down"), m);
                    WhenAllDown::All
                }
            },
        },
    };
    let quorum = super::cluster::quorum(k, p.quorum.as_ref(), clustered, rep);
    let probers = p.probers.as_ref().map(|v| int(rep, Some(v), &format!("{k}.probers"), 1, 1000, 1) as usize);
    if let (Some(v), false) = (&p.probers, clustered) {
        rep.at(v.span().start, format!("{k}.probers"), "needs [cluster] (without it every instance probes)");
    }
    if p.member.is_empty() {
        rep.at(raw.span().start, format!("{k}.member"), format!("pool {name} has no members"));
    }
    let default_check = p.check.as_ref().map(|c| c.get_ref());
    let mut members = Vec::with_capacity(p.member.len());
    for (j, m) in p.member.iter().enumerate() {
        let mk = format!("{k}.member[{j}]");
        let r = m.get_ref();
        let id = r.name.get_ref().trim().to_string();
        // Ids appear in logs, metrics and JSON: control characters would forge or break lines.
        if id.is_empty() || id.chars().any(char::is_control) {
            rep.at(
                r.name.span().start,
                format!("{mk}.name"),
                format!("{id:?} must be non-empty text without control characters"),
            );
            continue;
        }
        let host = match Name::parse(&id, Some(apex)) {
            Ok(h) => h,
            Err(e) if mode == PoolMode::Delegate => {
                rep.at(r.name.span().start, format!("{mk}.name"), e.to_string());
                continue;
            }
            Err(_) => apex.clone(),
        };
        let role = match word(rep, &r.role, "role", &["primary", "secondary"], "primary").as_str() {
            "secondary" => Role::Secondary,
            _ => Role::Primary,
        };
        let mut ipv4 = Vec::new();
        for a in &r.ipv4 {
            match a.get_ref().trim().parse() {
                Ok(ip) => ipv4.push(ip),
                Err(_) => {
                    rep.at(a.span().start, format!("{mk}.ipv4"), format!("{:?} is not an IPv4 address", a.get_ref()))
                }
            }
        }
        let mut ipv6 = Vec::new();
        for a in &r.ipv6 {
            match a.get_ref().trim().parse() {
                Ok(ip) => ipv6.push(ip),
                Err(_) => {
                    rep.at(a.span().start, format!("{mk}.ipv6"), format!("{:?} is not an IPv6 address", a.get_ref()))
                }
            }
        }
        if ipv4.is_empty() && ipv6.is_empty() {
            rep.at(r.name.span().start, format!("{mk}.ipv4"), format!("member {id} has no addresses"));
        }
        let weight = int(rep, r.weight.as_ref(), &format!("{mk}.weight"), 0, 1_000_000, 1) as u32;
        let datacenter = match &r.datacenter {
            Some(dc) => match geo.datacenter(dc.get_ref().trim()) {
                Some(i) => Some(i),
                None => {
                    rep.at(
                        dc.span().start,
                        format!("{mk}.datacenter"),
                        format!("unknown datacenter {:?}", dc.get_ref()),
                    );
                    None
                }
            },
            None if select_word == "geo" => {
                rep.at(
                    r.name.span().start,
                    format!("{mk}.datacenter"),
                    format!("member {id} of a geo pool needs a datacenter"),
                );
                None
            }
            None => None,
        };
        let check = super::check::check(&mk, default_check, r.check.as_ref().map(|c| c.get_ref()), m.span().start, rep);
        members.push(MemberConfig { id, host, role, labels: r.labels.clone(), ipv4, ipv6, weight, datacenter, check });
    }
    let addresses: usize = members.iter().map(|m| m.ipv4.len() + m.ipv6.len()).sum();
    if addresses > crate::dns::records::MAX_RRSET {
        let max = crate::dns::records::MAX_RRSET;
        rep.at(raw.span().start, format!("{k}.member"), format!("{addresses} addresses; a pool answers at most {max}"));
    }
    let https = p.https.as_ref().and_then(|h| super::https::https(k, h, rep));
    if let (Some(h), PoolMode::Delegate) = (&p.https, mode) {
        rep.at(h.span().start, format!("{k}.https"), "a delegate pool refers; its child zone publishes HTTPS records");
    }
    if let Some(h) = p.https.as_ref().filter(|_| name == *apex && https.as_ref().is_some_and(|h| h.apex_alias)) {
        let why = "the pool is at the apex: its own record answers there";
        rep.at(h.span().start, format!("{k}.https.apex_alias"), why);
    }
    (rep.errors.len() == before).then_some(PoolConfig {
        name,
        mode,
        ttl,
        select,
        geo: geo_map,
        max_answers,
        hash_prefix,
        when_all_down,
        quorum,
        probers,
        members,
        https,
    })
}
