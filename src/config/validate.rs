//! Raw configuration → [`Config`]: defaults, ranges, names and the static zone data, with
//! every problem reported against its file, line and key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_spanned::Spanned;

use super::error::Reporter;
use super::raw::{RawAdmin, RawConfig, RawController, RawServer, RawSoa, RawZone};
use super::value::{MAX_TTL, duration, int, name_value, one_of, parse_size};
use super::{AdminConfig, Config, ControllerConfig, ServerConfig, StateConfig, ZoneConfig};
use crate::config::master_file::{self, StaticRecord};
use crate::dns::name::Name;
use crate::dns::records::{RData, RRset, Soa, Source, TypeMap, ZoneData};
use crate::dns::types::*;

/// Listen address used when `[server] listen` is absent.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:53";

/// Validates a raw config; `None` when `rep` collected any error.
pub fn validate(raw: RawConfig, rep: &mut Reporter<'_>) -> Option<Config> {
    let server = server(raw.server.as_ref(), rep);
    let geo = super::geo::geo(raw.geo.as_ref(), rep);
    let cluster = super::cluster::cluster(raw.cluster.as_ref(), rep);
    let log = super::log::log(raw.log.as_ref(), rep);
    let rrl = super::rrl::rrl(raw.rrl.as_ref(), rep);
    let dnssec = super::dnssec::settings(raw.dnssec.as_ref(), rep);
    let tsig_keys = super::transfer::keys(&raw.tsig_key, rep);
    if raw.zones.is_empty() {
        // Said at the end of the file, where one would be added.
        rep.at_line(Some(rep.last_line()), "zone", "no [[zone]] is defined");
    }
    let mut zones: Vec<ZoneConfig> = Vec::new();
    let mut first_seen: BTreeMap<Name, usize> = BTreeMap::new();
    for (i, z) in raw.zones.iter().enumerate() {
        let key = format!("zone[{i}]");
        let Some(zone) = zone(&key, z.get_ref(), &geo, cluster.is_some(), &tsig_keys, rep) else {
            continue;
        };
        let line = rep.line_of(z.get_ref().name.span().start);
        if let Some(first) = first_seen.get(&zone.apex) {
            rep.at_line(
                Some(line),
                format!("{key}.name"),
                format!("zone {} is listed twice (first on line {first})", zone.apex),
            );
            continue;
        }
        first_seen.insert(zone.apex.clone(), line);
        zones.push(zone);
    }
    let state = StateConfig {
        dir: raw.state.as_ref().and_then(|s| s.dir.as_ref()).map_or_else(|| "./state".into(), |d| d.get_ref().into()),
        journal: raw.state.as_ref().and_then(|s| s.journal.as_ref()).is_none_or(|j| *j.get_ref()),
    };
    let admin = raw.admin.as_ref().and_then(|a| admin(a, rep));
    let externaldns = super::externaldns::externaldns(raw.externaldns.as_ref(), &zones, rep);
    // A geo name's targets must be names some zone here can answer.
    for (i, z) in zones.iter().enumerate() {
        for (j, g) in z.geo_names.iter().enumerate() {
            for t in g.targets.iter().flatten() {
                if !zones.iter().any(|o| t.is_within(&o.apex)) {
                    let span = raw.zones[i].get_ref().geo_name[j].get_ref().targets.span().start;
                    rep.at(span, format!("zone[{i}].geo_name[{j}].targets"), format!("{t} is in no zone served here"));
                }
            }
        }
    }
    if !rep.errors.is_empty() {
        return None;
    }
    Some(Config {
        path: rep.file().to_path_buf(),
        server: server?,
        zones,
        state,
        admin,
        geo,
        cluster,
        log,
        rrl,
        dnssec,
        externaldns,
        tsig_keys: tsig_keys.into(),
    })
}

fn server(raw: Option<&RawServer>, rep: &mut Reporter<'_>) -> Option<ServerConfig> {
    let errors_before = rep.errors.len();
    let mut listen = Vec::new();
    match raw.and_then(|s| s.listen.as_ref()) {
        None => listen.push(DEFAULT_LISTEN.parse().expect("valid default")),
        Some(list) => {
            if list.get_ref().is_empty() {
                rep.at(list.span().start, "server.listen", "must list at least one address");
            }
            for (i, a) in list.get_ref().iter().enumerate() {
                match a.get_ref().parse::<SocketAddr>() {
                    Ok(addr) if listen.contains(&addr) => {
                        rep.at(a.span().start, format!("server.listen[{i}]"), format!("{addr} is listed twice"))
                    }
                    Ok(addr) => listen.push(addr),
                    Err(_) => rep.at(
                        a.span().start,
                        format!("server.listen[{i}]"),
                        format!("{:?} is not an IP:port address (write IPv6 as \"[::1]:53\")", a.get_ref()),
                    ),
                }
            }
        }
    }
    let udp_workers = int(rep, raw.and_then(|s| s.udp_workers.as_ref()), "server.udp_workers", 0, 256, 0) as usize;
    let udp_workers =
        if udp_workers == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { udp_workers };
    let max_udp_payload =
        int(rep, raw.and_then(|s| s.max_udp_payload.as_ref()), "server.max_udp_payload", 512, 4096, 1232) as u16;
    let max_tcp_connections =
        int(rep, raw.and_then(|s| s.max_tcp_connections.as_ref()), "server.max_tcp_connections", 1, 1_000_000, 1024)
            as usize;
    let max_tcp_per_client =
        int(rep, raw.and_then(|s| s.max_tcp_per_client.as_ref()), "server.max_tcp_per_client", 1, 1_000_000, 16)
            as usize;
    let tcp_idle_timeout = duration(
        rep,
        raw.and_then(|s| s.tcp_idle_timeout.as_ref()),
        "server.tcp_idle_timeout",
        Duration::from_millis(100),
        Duration::from_secs(3600),
        Duration::from_secs(10),
    );
    // NSID is capped so that the longest question plus OPT still fits in 512 bytes;
    // the CHAOS strings are one TXT character-string.
    let short_string = |rep: &mut Reporter<'_>, v: Option<&Spanned<String>>, key: &str, max: usize| {
        let v = v?;
        if v.get_ref().is_empty() || v.get_ref().len() > max {
            rep.at(v.span().start, key, format!("must be 1 to {max} bytes long"));
            return None;
        }
        Some(v.get_ref().clone())
    };
    let nsid = short_string(rep, raw.and_then(|s| s.nsid.as_ref()), "server.nsid", 128);
    let version = short_string(rep, raw.and_then(|s| s.version.as_ref()), "server.version", 255);
    let identity = short_string(rep, raw.and_then(|s| s.identity.as_ref()), "server.identity", 255);
    let cookies = cookies(raw, rep);
    let (tls_listen, tls) = dot(raw, &listen, rep);
    (rep.errors.len() == errors_before).then_some(ServerConfig {
        listen,
        udp_workers,
        max_udp_payload,
        tcp_idle_timeout,
        max_tcp_connections,
        max_tcp_per_client,
        nsid,
        version,
        identity,
        ecs: raw.and_then(|s| s.ecs).unwrap_or(true),
        cookies,
        tls_listen,
        tls,
    })
}

/// `[server] tls_listen`, `tls_cert`, `tls_key`: DNS over TLS needs all three; the files
/// must read and hold a matching certificate and key.
fn dot(
    raw: Option<&RawServer>,
    udp_tcp: &[SocketAddr],
    rep: &mut Reporter<'_>,
) -> (Vec<SocketAddr>, Option<(PathBuf, PathBuf)>) {
    let Some(raw) = raw else { return (Vec::new(), None) };
    let mut listen = Vec::new();
    for (i, a) in raw.tls_listen.iter().flat_map(|l| l.get_ref()).enumerate() {
        match a.get_ref().parse::<SocketAddr>() {
            // Port 0 (any free port) may repeat.
            Ok(addr) if addr.port() != 0 && (listen.contains(&addr) || udp_tcp.contains(&addr)) => rep.at(
                a.span().start,
                format!("server.tls_listen[{i}]"),
                format!("{addr} is listed twice (here or in server.listen)"),
            ),
            Ok(addr) => listen.push(addr),
            Err(_) => rep.at(
                a.span().start,
                format!("server.tls_listen[{i}]"),
                format!("{:?} is not an IP:port address (write IPv6 as \"[::1]:853\")", a.get_ref()),
            ),
        }
    }
    let base = rep.file().parent().unwrap_or(Path::new(".")).to_path_buf();
    let files = match (&raw.tls_cert, &raw.tls_key) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            let (cert, key) = (base.join(c.get_ref()), base.join(k.get_ref()));
            if let Err(e) = super::identity::read(&cert, &key) {
                rep.at(c.span().start, "server.tls_cert", e);
            }
            Some((cert, key))
        }
        (Some(v), None) | (None, Some(v)) => {
            rep.at(v.span().start, "server.tls_cert", "tls_cert and tls_key go together: give both or neither");
            None
        }
    };
    match (&raw.tls_listen, &files) {
        (Some(l), None) if !l.get_ref().is_empty() => {
            rep.at(l.span().start, "server.tls_listen", "DNS over TLS needs server.tls_cert and server.tls_key");
        }
        (None, Some(_)) => {
            let at = raw.tls_cert.as_ref().map_or(0, |c| c.span().start);
            rep.at(at, "server.tls_cert", "a certificate without server.tls_listen serves nothing");
        }
        _ => {}
    }
    (listen, files)
}

/// `[server] cookies*`. Without `cookie_secret` the secret is random, made once per process
/// so reloads keep it (instances answering for each other should share one).
fn cookies(raw: Option<&RawServer>, rep: &mut Reporter<'_>) -> Option<super::CookieConfig> {
    static RANDOM: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    if !raw.and_then(|s| s.cookies).unwrap_or(true) {
        return None;
    }
    let secret_of = |v: Option<&Spanned<String>>, key: &str, rep: &mut Reporter<'_>| -> Option<[u8; 16]> {
        let v = v?;
        let text = v.get_ref().trim();
        let bytes: Option<Vec<u8>> = (text.len() == 32)
            .then(|| (0..32).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect())
            .flatten();
        match bytes {
            Some(b) => Some(b.try_into().expect("16 bytes")),
            None => {
                rep.at(v.span().start, key, "must be 32 hex digits (a 128-bit secret)");
                None
            }
        }
    };
    let secret = secret_of(raw.and_then(|s| s.cookie_secret.as_ref()), "server.cookie_secret", rep)
        .unwrap_or_else(|| *RANDOM.get_or_init(rand::random));
    let previous = secret_of(raw.and_then(|s| s.cookie_secret_previous.as_ref()), "server.cookie_secret_previous", rep);
    Some(super::CookieConfig { secret, previous, required: raw.and_then(|s| s.cookies_required).unwrap_or(false) })
}

/// `records`/`zone_file` may sit in the zone table or, by TOML's scoping, in `[zone.soa]`.
fn zone_text_key<'r>(
    rep: &mut Reporter<'_>,
    key: &str,
    field: &str,
    in_zone: Option<&'r Spanned<String>>,
    in_soa: Option<&'r Spanned<String>>,
) -> Option<&'r Spanned<String>> {
    match (in_zone, in_soa) {
        (Some(_), Some(dup)) => {
            rep.at(dup.span().start, format!("{key}.soa.{field}"), format!("{field} is given twice in this zone"));
            None
        }
        (a, b) => a.or(b),
    }
}

fn zone(
    key: &str,
    raw: &RawZone,
    geo: &super::geo::GeoConfig,
    clustered: bool,
    tsig_keys: &[crate::dns::tsig::TsigKey],
    rep: &mut Reporter<'_>,
) -> Option<ZoneConfig> {
    let errors_before = rep.errors.len();
    let apex = name_value(rep, &raw.name, &format!("{key}.name"))?;
    let default_ttl = int(rep, raw.default_ttl.as_ref(), &format!("{key}.default_ttl"), 1, MAX_TTL, 300) as u32;
    let ns_ttl = int(rep, raw.ns_ttl.as_ref(), &format!("{key}.ns_ttl"), 0, MAX_TTL, 3600) as u32;
    let records = static_records(key, raw, &apex, default_ttl, rep);
    let (mut nodes, file_soa) = rrsets(&records, &apex, raw.soa.is_some(), rep);
    let first_ns = apex_ns(key, raw, &apex, ns_ttl, &mut nodes, rep);
    let dnssec = raw.dnssec.as_ref().and_then(|d| super::dnssec::zone(key, d, &apex, &mut nodes, rep));
    let (soa, soa_ttl, serial) = match file_soa {
        Some((soa, ttl)) => {
            let serial = Some(soa.serial);
            (soa, ttl, serial)
        }
        None => soa_from_config(key, raw.soa.as_ref(), &apex, first_ns, rep),
    };
    let static_records = match one_of(
        rep,
        raw.static_records.as_ref(),
        &format!("{key}.static_records"),
        &["fallback", "override"],
        "fallback",
    )
    .as_str()
    {
        "override" => super::StaticRecords::Override,
        _ => super::StaticRecords::Fallback,
    };
    let controller = raw.controller.as_ref().and_then(|c| controller(key, c.get_ref(), rep));
    let mut data = ZoneData { apex: apex.clone(), soa_ttl, soa, nodes };
    let pools = super::pool::pools(key, &apex, &raw.pool, &data, geo, clustered, rep);
    apex_aliases(key, raw, &pools, &mut data, rep);
    let taken = |n: &Name| data.nodes.contains_key(n) || pools.iter().any(|p| p.name == *n);
    let geo_names = super::geo::geo_names(key, &apex, &raw.geo_name, &taken, geo, rep);
    let transfer =
        raw.transfer.as_ref().and_then(|t| super::transfer::transfer(key, t, tsig_keys, dnssec.is_some(), rep));
    (rep.errors.len() == errors_before).then(|| ZoneConfig {
        apex: apex.clone(),
        default_ttl,
        serial,
        data,
        static_records,
        controller,
        pools,
        geo_names,
        dnssec,
        transfer,
    })
}

/// `apex_alias`: the apex answers `HTTPS 0 <pool>` (AliasMode) for the one pool that asks, a
/// static record like the others (signed with them).
fn apex_aliases(key: &str, raw: &RawZone, pools: &[super::PoolConfig], data: &mut ZoneData, rep: &mut Reporter<'_>) {
    let mut aliased: Option<&Name> = None;
    for (i, pool) in pools.iter().enumerate() {
        let Some(h) = pool.https.as_ref().filter(|h| h.apex_alias) else { continue };
        let at = raw.pool.get(i).map_or(0, |p| p.span().start);
        let k = format!("{key}.pool[{i}].https.apex_alias");
        if let Some(first) = aliased {
            rep.at(at, k, format!("the apex already aliases {first}: one pool may"));
            continue;
        }
        let apex = data.apex.clone();
        let node = data.nodes.entry(apex).or_default();
        if node.get(&h.rtype).is_some() {
            rep.at(at, k, "the apex has static records of that type");
            continue;
        }
        let rdata = vec![RData::Other { rtype: h.rtype, data: super::https::alias_rdata(&pool.name).into() }];
        node.insert(h.rtype, RRset { ttl: pool.ttl, rdata, source: Source::Static, rotate: false, draw: None });
        aliased = Some(&pool.name);
    }
}

/// A static record with the key and the file it came from (for errors).
type Sourced = (StaticRecord, String, std::path::PathBuf);

/// The zone's static records: `records` (inline master-file text) and `zone_file`, each
/// record with where it came from.
fn static_records(key: &str, raw: &RawZone, apex: &Name, default_ttl: u32, rep: &mut Reporter<'_>) -> Vec<Sourced> {
    let soa_ref = raw.soa.as_ref().map(|s| s.get_ref());
    let records_text =
        zone_text_key(rep, key, "records", raw.records.as_ref(), soa_ref.and_then(|s| s.records.as_ref()));
    let zone_file =
        zone_text_key(rep, key, "zone_file", raw.zone_file.as_ref(), soa_ref.and_then(|s| s.zone_file.as_ref()));
    let mut records: Vec<Sourced> = Vec::new();
    if let Some(text) = records_text {
        let first_line = content_first_line(rep, text);
        let rkey = format!("{key}.records");
        match master_file::parse(text.get_ref(), apex, default_ttl) {
            Ok(recs) => {
                for mut r in recs {
                    r.line += first_line - 1;
                    records.push((r, rkey.clone(), rep.file().to_path_buf()));
                }
            }
            Err(e) => rep.at_line(Some(first_line + e.line - 1), rkey, e.message),
        }
    }
    if let Some(path) = zone_file {
        let zkey = format!("{key}.zone_file");
        let base = rep.file().parent().unwrap_or(Path::new("."));
        let file = base.join(path.get_ref());
        match super::file::read_text(&file, super::file::ZONE_FILE_MAX) {
            Err(e) => rep.at(path.span().start, zkey, e),
            Ok(text) => match master_file::parse(&text, apex, default_ttl) {
                Ok(recs) => records.extend(recs.into_iter().map(|r| (r, zkey.clone(), file.clone()))),
                Err(e) => {
                    rep.errors.push(super::ConfigError { file, line: Some(e.line), key: zkey, message: e.message })
                }
            },
        }
    }
    records
}

/// The records as RRsets by owner (one TTL per set, the lowest; duplicates once), checked:
/// inside the zone, TTLs in range, an SOA only at the apex and only when `[zone.soa]` is not
/// given (returned apart), CNAMEs alone at their name and not at the apex.
fn rrsets(
    records: &[Sourced],
    apex: &Name,
    soa_table: bool,
    rep: &mut Reporter<'_>,
) -> (BTreeMap<Name, TypeMap>, Option<(Soa, u32)>) {
    let mut nodes: BTreeMap<Name, TypeMap> = BTreeMap::new();
    let mut cname_lines: BTreeMap<Name, (usize, String, std::path::PathBuf)> = BTreeMap::new();
    let mut file_soa: Option<(Soa, u32)> = None;
    let mut too_big: std::collections::BTreeSet<(Name, u16)> = std::collections::BTreeSet::new();
    for (r, rkey, file) in records {
        let mut fail = |message: String| {
            rep.errors.push(super::ConfigError { file: file.clone(), line: Some(r.line), key: rkey.clone(), message })
        };
        if !r.owner.is_within(apex) {
            fail(format!("{} is outside the zone {apex}", r.owner));
            continue;
        }
        if r.ttl as i64 > MAX_TTL {
            fail(format!("TTL {} of {} is above 2^31-1", r.ttl, r.owner));
            continue;
        }
        if let RData::Soa(soa) = &r.rdata {
            if r.owner != *apex {
                fail(format!("SOA record at {} is not at the zone apex", r.owner));
            } else if soa_table {
                fail("SOA is given both here and in [zone.soa]; keep one".to_string());
            } else {
                file_soa = Some(((**soa).clone(), r.ttl));
            }
            continue;
        }
        if r.rdata.rtype() == TYPE_CNAME {
            if r.owner == *apex {
                fail("a CNAME cannot be at the zone apex (it holds SOA and NS)".to_string());
                continue;
            }
            cname_lines.entry(r.owner.clone()).or_insert((r.line, rkey.clone(), file.clone()));
        }
        let set = nodes.entry(r.owner.clone()).or_default().get_or_insert_with(r.rdata.rtype(), || RRset {
            ttl: r.ttl,
            rdata: Vec::new(),
            source: Source::Static,
            rotate: true,
            draw: None,
        });
        // RFC 2181 §5.2: one TTL per RRset; the lowest wins.
        set.ttl = set.ttl.min(r.ttl);
        if !set.rdata.contains(&r.rdata) {
            if set.rdata.len() == crate::dns::records::MAX_RRSET {
                // Said once per set, at its first record too many.
                if too_big.insert((r.owner.clone(), r.rdata.rtype())) {
                    let max = crate::dns::records::MAX_RRSET;
                    let what = format!("{} {}", r.owner, type_name(r.rdata.rtype()));
                    fail(format!("{what} holds more than {max} records (one answer must carry them all)"));
                }
                continue;
            }
            set.rdata.push(r.rdata.clone());
        }
    }
    for (owner, (line, rkey, file)) in &cname_lines {
        let types = &nodes[owner];
        let message = if types.len() > 1 {
            Some(format!("CNAME at {owner} beside other data (RFC 1034 §3.6.2)"))
        } else if types[&TYPE_CNAME].rdata.len() > 1 {
            Some(format!("more than one CNAME at {owner}"))
        } else {
            None
        };
        if let Some(message) = message {
            rep.errors.push(super::ConfigError { file: file.clone(), line: Some(*line), key: rkey.clone(), message });
        }
    }
    (nodes, file_soa)
}

/// The apex NS set: the `ns` list plus any NS records at the apex (an error when there are
/// none). Returns the first name server, for a default SOA's MNAME.
fn apex_ns(
    key: &str,
    raw: &RawZone,
    apex: &Name,
    ns_ttl: u32,
    nodes: &mut BTreeMap<Name, TypeMap>,
    rep: &mut Reporter<'_>,
) -> Name {
    let mut ns_names: Vec<Name> = Vec::new();
    if let Some(list) = &raw.ns {
        for (i, n) in list.get_ref().iter().enumerate() {
            if let Some(name) = name_value(rep, n, &format!("{key}.ns[{i}]"))
                && !ns_names.contains(&name)
            {
                ns_names.push(name);
            }
        }
    }
    let apex_types = nodes.entry(apex.clone()).or_default();
    let ns_set = apex_types.get_or_insert_with(TYPE_NS, || RRset {
        ttl: ns_ttl,
        rdata: Vec::new(),
        source: Source::Static,
        rotate: false,
        draw: None,
    });
    for name in ns_names {
        let rd = RData::Ns(name);
        if !ns_set.rdata.contains(&rd) {
            ns_set.rdata.push(rd);
        }
    }
    if ns_set.rdata.is_empty() {
        let line = Some(rep.line_of(raw.name.span().start));
        rep.at_line(
            line,
            format!("{key}.ns"),
            format!("zone {apex} has no name servers: set ns = [\"ns1.{}\"]", apex.to_dotless()),
        );
    }
    match ns_set.rdata.first() {
        Some(RData::Ns(n)) => n.clone(),
        _ => apex.prepend(b"ns1").unwrap_or_else(|| apex.clone()),
    }
}

fn soa_from_config(
    key: &str,
    raw: Option<&Spanned<RawSoa>>,
    apex: &Name,
    first_ns: Name,
    rep: &mut Reporter<'_>,
) -> (Soa, u32, Option<u32>) {
    let raw = raw.map(|s| s.get_ref());
    let k = |f: &str| format!("{key}.soa.{f}");
    let mname = raw.and_then(|s| s.mname.as_ref()).and_then(|v| name_value(rep, v, &k("mname"))).unwrap_or(first_ns);
    let rname = raw
        .and_then(|s| s.rname.as_ref())
        .and_then(|v| name_value(rep, v, &k("rname")))
        .unwrap_or_else(|| apex.prepend(b"hostmaster").unwrap_or_else(|| apex.clone()));
    let serial =
        raw.and_then(|s| s.serial.as_ref()).map(|v| int(rep, Some(v), &k("serial"), 0, u32::MAX as i64, 0) as u32);
    let mut field = |f: &str, v: Option<&Spanned<i64>>, default: i64| int(rep, v, &k(f), 0, MAX_TTL, default) as u32;
    let soa = Soa {
        mname,
        rname,
        serial: serial.unwrap_or(0),
        refresh: field("refresh", raw.and_then(|s| s.refresh.as_ref()), 3600),
        retry: field("retry", raw.and_then(|s| s.retry.as_ref()), 600),
        expire: field("expire", raw.and_then(|s| s.expire.as_ref()), 86400),
        minimum: field("minimum", raw.and_then(|s| s.minimum.as_ref()), 60),
    };
    let ttl = field("ttl", raw.and_then(|s| s.ttl.as_ref()), 3600);
    (soa, ttl, serial)
}

/// The file line of the first content line of a (possibly multi-line) string value.
fn content_first_line(rep: &Reporter<'_>, v: &Spanned<String>) -> usize {
    let line = rep.line_of(v.span().start);
    let raw_text = rep.source_at(v.span().start);
    let multi = raw_text.starts_with("\"\"\"") || raw_text.starts_with("'''");
    let newline_follows = raw_text.get(3..).is_some_and(|t| t.starts_with('\n') || t.starts_with("\r\n"));
    if multi && newline_follows { line + 1 } else { line }
}

fn controller(key: &str, raw: &RawController, rep: &mut Reporter<'_>) -> Option<ControllerConfig> {
    let errors_before = rep.errors.len();
    let k = |f: &str| format!("{key}.controller.{f}");
    let endpoint = raw.endpoint.get_ref().trim().trim_end_matches('/').to_string();
    match reqwest::Url::parse(&endpoint) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
        Ok(_) => {
            rep.at(raw.endpoint.span().start, k("endpoint"), format!("{endpoint:?} is not an http:// or https:// URL"))
        }
        Err(e) => rep.at(raw.endpoint.span().start, k("endpoint"), format!("{endpoint:?} is not a URL: {e}")),
    }
    let secret = raw.secret.get_ref().clone();
    if secret.len() < 8 {
        rep.at(raw.secret.span().start, k("secret"), "must be at least 8 bytes long");
    }
    let node_ip = raw.node_ip.as_ref().map(|v| v.get_ref().trim().to_string()).filter(|v| !v.is_empty());
    if let (Some(ip), Some(v)) = (&node_ip, &raw.node_ip)
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        rep.at(v.span().start, k("node_ip"), format!("{ip:?} is not an IP address"));
    }
    let mut regions = Vec::new();
    if let Some(list) = &raw.regions {
        for r in list.get_ref() {
            let name = r.get_ref().trim();
            if name.is_empty() || name.contains(',') {
                rep.at(r.span().start, k("regions"), format!("{name:?} is not a region name"));
            } else {
                regions.push(name.to_string());
            }
        }
        let has_all = regions.iter().any(|r| r.eq_ignore_ascii_case("all"));
        if has_all && regions.len() > 1 {
            rep.at(list.span().start, k("regions"), "\"all\" means no filter and cannot be combined with regions");
        }
        if has_all {
            regions.clear();
        }
    }
    let timeout = duration(
        rep,
        raw.timeout.as_ref(),
        &k("timeout"),
        Duration::from_millis(100),
        Duration::from_secs(600),
        Duration::from_secs(4),
    );
    let sync_interval = duration(
        rep,
        raw.sync_interval.as_ref(),
        &k("sync_interval"),
        Duration::from_secs(1),
        Duration::from_secs(86_400),
        Duration::from_secs(300),
    );
    if sync_interval <= timeout {
        let at = raw.sync_interval.as_ref().map_or(raw.endpoint.span().start, |v| v.span().start);
        let message = format!("must be longer than the timeout ({})", humantime::format_duration(timeout));
        rep.at(at, k("sync_interval"), message);
    }
    let ca_file = raw.ca_file.as_ref().map(|v| {
        let path = rep.file().parent().unwrap_or(Path::new(".")).join(v.get_ref());
        if let Err(e) = super::file::read_regular(&path, super::file::PEM_MAX) {
            rep.at(v.span().start, k("ca_file"), format!("cannot read {}: {e}", path.display()));
        }
        path
    });
    let max_response_size = match &raw.max_response_size {
        None => 64 << 20,
        Some(v) => match parse_size(v.get_ref()) {
            Some(n) if n >= 1024 => n,
            _ => {
                let message = format!("{:?} is not a size of at least 1KiB like \"64MiB\"", v.get_ref());
                rep.at(v.span().start, k("max_response_size"), message);
                64 << 20
            }
        },
    };
    let max_shrink = match &raw.max_shrink {
        None => DEFAULT_MAX_SHRINK,
        Some(v) => match v.get_ref().trim().strip_suffix('%').and_then(|n| n.trim().parse::<u8>().ok()) {
            Some(n) if (1..=100).contains(&n) => n,
            _ => {
                let message = format!("{:?} is not a percentage from 1% to 100% like \"50%\"", v.get_ref());
                rep.at(v.span().start, k("max_shrink"), message);
                DEFAULT_MAX_SHRINK
            }
        },
    };
    (rep.errors.len() == errors_before).then_some(ControllerConfig {
        endpoint,
        secret,
        node_ip,
        regions,
        sync_interval,
        timeout,
        tls_skip_verify: raw.tls_skip_verify.as_ref().is_some_and(|v| *v.get_ref()),
        ca_file,
        max_response_size,
        max_shrink,
    })
}

/// `max_shrink` unless set: a response may remove at most half of the zone's records.
const DEFAULT_MAX_SHRINK: u8 = 50;

fn admin(raw: &Spanned<RawAdmin>, rep: &mut Reporter<'_>) -> Option<AdminConfig> {
    let errors_before = rep.errors.len();
    let at = raw.span().start;
    let raw = raw.get_ref();
    let listen = match &raw.listen {
        None => "127.0.0.1:8053".parse().expect("valid default"),
        Some(v) => match v.get_ref().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                rep.at(v.span().start, "admin.listen", format!("{:?} is not an IP:port address", v.get_ref()));
                return None;
            }
        },
    };
    let secret = match &raw.secret {
        None => {
            rep.at(at, "admin.secret", "is required when [admin] is present");
            String::new()
        }
        Some(v) if v.get_ref().len() < 8 => {
            rep.at(v.span().start, "admin.secret", "must be at least 8 bytes long");
            String::new()
        }
        Some(v) => v.get_ref().clone(),
    };
    let viewer_secret = match &raw.viewer_secret {
        None => None,
        Some(v) if v.get_ref().len() < 8 => {
            rep.at(v.span().start, "admin.viewer_secret", "must be at least 8 bytes long");
            None
        }
        Some(v) if *v.get_ref() == secret => {
            rep.at(v.span().start, "admin.viewer_secret", "is the same as secret: a viewer could change data");
            None
        }
        Some(v) => Some(v.get_ref().clone()),
    };
    let base = rep.file().parent().unwrap_or(Path::new(".")).to_path_buf();
    let tls = match (&raw.tls_cert, &raw.tls_key) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            for (key, v) in [("admin.tls_cert", c), ("admin.tls_key", k)] {
                if let Err(e) = std::fs::metadata(base.join(v.get_ref())) {
                    rep.at(v.span().start, key, format!("cannot read {}: {e}", base.join(v.get_ref()).display()));
                }
            }
            Some((base.join(c.get_ref()), base.join(k.get_ref())))
        }
        (Some(v), None) | (None, Some(v)) => {
            rep.at(v.span().start, "admin.tls_cert", "tls_cert and tls_key go together: give both or neither");
            None
        }
    };
    let max_body = match &raw.max_body {
        None => 8 << 20,
        Some(v) => match parse_size(v.get_ref()) {
            Some(n) if n >= 1024 => n,
            _ => {
                rep.at(
                    v.span().start,
                    "admin.max_body",
                    format!("{:?} is not a size of at least 1KiB like \"8MiB\"", v.get_ref()),
                );
                8 << 20
            }
        },
    };
    let max_connections = int(rep, raw.max_connections.as_ref(), "admin.max_connections", 1, 100_000, 256) as usize;
    let max_connections_per_client =
        int(rep, raw.max_connections_per_client.as_ref(), "admin.max_connections_per_client", 1, 100_000, 16) as usize;
    let header_timeout = duration(
        rep,
        raw.header_timeout.as_ref(),
        "admin.header_timeout",
        Duration::from_millis(100),
        Duration::from_secs(300),
        Duration::from_secs(10),
    );
    let notify_atomic = one_of(rep, raw.notify.as_ref(), "admin.notify", &["partial", "atomic"], "partial") == "atomic";
    (rep.errors.len() == errors_before).then_some(AdminConfig {
        listen,
        secret,
        viewer_secret,
        tls,
        max_body,
        max_connections,
        max_connections_per_client,
        header_timeout,
        notify_atomic,
    })
}
