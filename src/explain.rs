//! What a client at a given address gets for a name, and why (`gslbd explain`, admin
//! `GET /explain`): the zone and the layer that answers, the location lookup (map, matched
//! network, datacenter order, ECS scope), each pool member's health or each geo target's
//! addresses, and the answer itself.
//!
//! The answer is not re-derived: the question is encoded as a real query and answered by the
//! query path ([`Responder`]) from the snapshot given, so explain and DNS cannot disagree. The
//! rest is read from the config, the snapshot's compiled maps and the health verdicts
//! the same build compiled the answers with.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::config::cluster::Quorum;
use crate::config::geo::{GeoConfig, GeoMap};
use crate::config::value::Net;
use crate::config::{Config, PoolConfig, ZoneConfig};
use crate::config::{Role, Select, WhenAllDown};
use crate::dns::name::Name;
use crate::dns::types::*;
use crate::health::member_state::MemberStates;
use crate::health::probed::Target;
use crate::health::verdict::Verdicts;
use crate::server::query::{MAX_MESSAGE, Responder, Transport};
use crate::snapshot::Snapshot;

/// A question to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name asked.
    pub name: Name,
    /// The type asked.
    pub qtype: u16,
    /// The address the query comes from (a resolver, or the client itself).
    pub client: IpAddr,
    /// The EDNS Client Subnet the query carries: address (host bits zero) and source prefix.
    pub ecs: Option<(IpAddr, u8)>,
}

/// A question that does not parse; the text names the part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuestionError {
    /// The name.
    #[error("name: {0}")]
    Name(String),
    /// The type.
    #[error("type: {0:?} is not a DNS type")]
    Type(String),
    /// The client address.
    #[error("client: {0:?} is not an IP address")]
    Client(String),
    /// The client subnet.
    #[error("ecs: {0}")]
    Ecs(String),
}

impl Question {
    /// Reads the text forms: a name, a type (`A`, `aaaa`, `TYPE65`; default A), an address,
    /// and an optional `ADDRESS/PREFIX` subnet with no bits set beyond the prefix.
    pub fn parse(name: &str, qtype: Option<&str>, client: &str, ecs: Option<&str>) -> Result<Question, QuestionError> {
        let text = name.trim();
        let absolute = if text.ends_with('.') { text.to_string() } else { format!("{text}.") };
        let name = Name::parse(&absolute, None).map_err(|e| QuestionError::Name(e.to_string()))?;
        let qtype = match qtype.map(str::trim).filter(|t| !t.is_empty()) {
            None => TYPE_A,
            Some(t) => type_from_name(t).ok_or_else(|| QuestionError::Type(t.to_string()))?,
        };
        let client: IpAddr = client.trim().parse().map_err(|_| QuestionError::Client(client.to_string()))?;
        let ecs = match ecs.map(str::trim).filter(|e| !e.is_empty()) {
            None => None,
            Some(e) => {
                let net = crate::config::value::parse_net(e).map_err(QuestionError::Ecs)?;
                Some((net_address(&net), net.prefix))
            }
        };
        Ok(Question { name, qtype, client, ecs })
    }
}

fn net_address(net: &Net) -> IpAddr {
    if net.v4 { IpAddr::from((net.start as u32).to_be_bytes()) } else { IpAddr::from(net.start.to_be_bytes()) }
}

/// Explains `q` against `snap` (answers), `config` (zones, pools, maps) and `health`.
pub fn explain(snap: &Snapshot, config: &Config, health: &Verdicts, states: &MemberStates, q: &Question) -> Value {
    // A signed zone is asked with DO, so the answer shows its signatures and their origin.
    let zone_of = config.zones.iter().filter(|z| q.name.is_within(&z.apex)).max_by_key(|z| z.apex.wire_len());
    let signed = zone_of.and_then(|z| z.dnssec.as_ref());
    let query = encode_query(q, signed.is_some());
    let mut out = vec![0u8; MAX_MESSAGE];
    let outcome = Responder::default().respond(snap, &query, &mut out, Transport::Tcp, q.client);
    let reply = outcome.map(|o| &out[..o.len]);
    let client = match q.ecs {
        Some((addr, prefix)) if prefix > 0 => json!({"address": addr.to_string(), "from": "ecs"}),
        _ => json!({"address": q.client.to_string(), "from": "source"}),
    };
    let located = match q.ecs {
        Some((addr, prefix)) if prefix > 0 => addr,
        _ => q.client,
    };
    let mut v = json!({
        "question": {
            "name": q.name.to_string(),
            "type": type_name(q.qtype),
            "client": q.client.to_string(),
            "ecs": q.ecs.map(|(a, p)| format!("{a}/{p}")),
        },
        "client": client,
        "answer": reply.map_or(Value::Null, decode_reply),
    });
    if let Some(keys) = signed {
        let tags: Vec<u16> = keys.signing.iter().map(|k| k.tag).collect();
        v["dnssec"] = json!({
            "signed": true,
            "signature": outcome.and_then(|o| o.signed).map(|o| o.as_str()),
            "signing_keys": tags,
        });
    } else if zone_of.is_some() {
        v["dnssec"] = json!({"signed": false});
    }
    if let Some(o) = outcome {
        v["answer"]["source"] = json!(o.source.map(|s| s.as_str()));
        if let Some(g) = o.geo {
            let dc = config.geo.datacenters.get(g.datacenter as usize).map(|d| d.name.clone());
            v["datacenter"] = json!(dc);
            v["answer"]["location_scope"] = json!(g.scope);
        }
        if o.hash_scope > 0 {
            // The network the members were ranked for: every client in it gets this answer.
            let network =
                ipnetwork::IpNetwork::new(located, o.hash_scope).map(|n| format!("{}/{}", n.network(), o.hash_scope));
            v["hash"] = json!({"network": network.ok(), "prefix": o.hash_scope});
        }
    }
    let Some(zone) = config.zones.iter().filter(|z| q.name.is_within(&z.apex)).max_by_key(|z| z.apex.wire_len()) else {
        v["zone"] = Value::Null;
        v["why"] = json!("no zone served here holds the name: REFUSED");
        return v;
    };
    v["zone"] = json!(zone.apex.to_string());
    v["layer"] = json!(layer(snap, zone, &q.name));
    if let Some(pool) = zone.pools.iter().find(|p| p.name == q.name) {
        v["kind"] = json!(if pool.geo.is_some() { "geo pool" } else { "pool" });
        if let Some(map) = pool.geo.and_then(|m| config.geo.maps.get(m)) {
            v["location"] = location(snap, &config.geo, pool.geo.unwrap_or(0), map, located);
        }
        v["pool"] = pool_json(pool, &config.geo, health, states, &v["answer"]);
        if let Some(h) = pool.https.as_ref().filter(|h| h.rtype == q.qtype) {
            // The hints are the pool's own A and AAAA answers for this client: shown as such.
            let answer_of = |rtype: u16| {
                let asked = Question { qtype: rtype, ..q.clone() };
                let mut out = vec![0u8; MAX_MESSAGE];
                Responder::default()
                    .respond(snap, &encode_query(&asked, false), &mut out, Transport::Tcp, q.client)
                    .map_or(Value::Null, |o| decode_reply(&out[..o.len]))
            };
            let addresses = |a: &Value| -> Vec<Value> {
                a["records"].as_array().into_iter().flatten().map(|r| r["data"].clone()).collect()
            };
            v["hints"] = json!({
                "origin": "the A and AAAA answers this client gets at the pool's name now",
                "ipv4hint": addresses(&answer_of(TYPE_A)),
                "ipv6hint": addresses(&answer_of(TYPE_AAAA)),
                "apex_alias": h.apex_alias,
            });
        }
    } else if let Some(g) = zone.geo_names.iter().find(|g| g.name == q.name) {
        v["kind"] = json!("geo name");
        if let Some(map) = config.geo.maps.get(g.map) {
            v["location"] = location(snap, &config.geo, g.map, map, located);
        }
        let rtype = if q.qtype == TYPE_ANY { TYPE_A } else { q.qtype };
        let order: Vec<usize> = v["location"]["order"]
            .as_array()
            .map(|o| o.iter().filter_map(|d| config.geo.datacenter(d.as_str()?)).map(usize::from).collect())
            .unwrap_or_default();
        let targets: Vec<Value> = order
            .iter()
            .filter_map(|&dc| Some((dc, g.targets.get(dc)?.as_ref()?)))
            .map(|(dc, target)| {
                let asked = Question { name: target.clone(), qtype: rtype, ..q.clone() };
                let mut out = vec![0u8; MAX_MESSAGE];
                let answer = Responder::default()
                    .respond(snap, &encode_query(&asked, false), &mut out, Transport::Tcp, q.client)
                    .map_or(Value::Null, |o| decode_reply(&out[..o.len]));
                json!({"datacenter": config.geo.datacenters[dc].name, "target": target.to_string(), "answer": answer})
            })
            .collect();
        v["geo_name"] = json!({ "targets": targets,
            "rule": "the nearest datacenter whose target has addresses of the type asked (not empty, deleted or a CNAME) answers, flattened" });
    } else {
        v["kind"] = json!("records");
    }
    v
}

/// Which compiled part answers `name`: the overlay (pushed since the base was compiled), the
/// base, or the dynamic layer (pools and geo names).
fn layer(snap: &Snapshot, zone: &ZoneConfig, name: &Name) -> &'static str {
    let Some(z) = snap.zone(&zone.apex) else { return "none" };
    if let Some(o) = &z.overlay
        && o.node(name.as_wire()).is_some()
    {
        return "overlay";
    }
    match z.base.node(name.as_wire()) {
        Some(n) if n.dynamic => "dynamic",
        Some(_) => "base",
        None => "none (closest encloser answers)",
    }
}

/// The map lookup for `addr`: the most specific network of the map that holds it (none: the
/// default), the datacenter order and the scope the compiled table gives.
fn location(snap: &Snapshot, geo: &GeoConfig, index: usize, map: &GeoMap, addr: IpAddr) -> Value {
    let (a, v4) = match addr {
        IpAddr::V4(a) => (u32::from(a) as u128, true),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(m) => (u32::from(m) as u128, true),
            None => (u128::from(a), false),
        },
    };
    let bits = if v4 { 32 } else { 128 };
    let holds = |n: &Net| {
        n.v4 == v4 && (n.prefix == 0 || (a >> (bits - n.prefix as u32)) == (n.start >> (bits - n.prefix as u32)))
    };
    let matched = map.nets.iter().filter(|(n, _)| holds(n)).max_by_key(|(n, _)| n.prefix);
    let names = |order: &[u16]| -> Vec<String> {
        order.iter().filter_map(|&d| geo.datacenters.get(d as usize)).map(|d| d.name.clone()).collect()
    };
    let (order, scope) = snap.geo.get(index).map_or((Vec::new(), 0), |m| {
        let (order, scope) = m.order(addr);
        (names(order), scope)
    });
    json!({
        "map": map.name,
        "address": addr.to_string(),
        "network": matched.map(|(n, _)| format!("{}/{}", net_address(n), n.prefix)),
        "listed": names(matched.map_or(&map.default[..], |(_, o)| &o[..])),
        "order": order,
        "scope": scope,
    })
}

/// A pool's policy and members: datacenter, role, weight, each address's health, and
/// whether the answer holds it.
fn pool_json(pool: &PoolConfig, geo: &GeoConfig, health: &Verdicts, states: &MemberStates, answer: &Value) -> Value {
    let answered: Vec<&str> =
        answer["records"].as_array().into_iter().flatten().filter_map(|r| r["data"].as_str()).collect();
    let members: Vec<Value> = pool
        .members
        .iter()
        .map(|m| {
            let ips = m.ipv4.iter().map(|&ip| IpAddr::from(ip)).chain(m.ipv6.iter().map(|&ip| IpAddr::from(ip)));
            let addresses: Vec<Value> = ips
                .map(|ip| {
                    let mut v = address_health(health, ip, &m.check, pool.quorum);
                    v["answered"] = json!(answered.contains(&ip.to_string().as_str()));
                    v
                })
                .collect();
            json!({
                "name": m.id,
                "datacenter": m.datacenter.and_then(|d| geo.datacenters.get(d as usize)).map(|d| d.name.clone()),
                "role": if m.role == Role::Primary { "primary" } else { "secondary" },
                "weight": m.weight,
                "state": states.of(&pool.name, &m.id).map_or("enabled", |s| s.as_str()),
                "addresses": addresses,
            })
        })
        .collect();
    let select = |s: Select| s.word();
    json!({
        "name": pool.name.to_string(),
        "select": if pool.geo.is_some() { "geo" } else { select(pool.select) },
        "within": pool.geo.map(|_| select(pool.select)),
        "max_answers": pool.max_answers,
        "hash_prefix": (pool.select == Select::Hash).then(|| json!({"v4": pool.hash_prefix.v4, "v6": pool.hash_prefix.v6})),
        "ttl": pool.ttl,
        "when_all_down": match &pool.when_all_down {
            WhenAllDown::All => "all".to_string(),
            WhenAllDown::NoData => "nodata".to_string(),
            WhenAllDown::ServFail => "servfail".to_string(),
            WhenAllDown::Cname(n) => n.to_string(),
        },
        "members": members,
    })
}

/// An address's health as a pool with `quorum` sees it: the verdict, this instance's own
/// probes, and with `[cluster]` every instance's observation (fresh ones counted) and
/// whether the local verdict decided for lack of them.
pub fn address_health(health: &Verdicts, ip: IpAddr, check: &crate::config::CheckConfig, quorum: Quorum) -> Value {
    let tally = health.tally(ip, check);
    let status = health.status(ip, check);
    let mut v = json!({
        "ip": ip.to_string(),
        "health": if health.is_up(ip, check, quorum) { "up" } else { "down" },
        "last_check": status.as_ref().and_then(|s| s.last_check).map(|t| humantime::format_rfc3339_seconds(t).to_string()),
        "last_error": status.as_ref().and_then(|s| s.last_error.clone()),
    });
    if let Some(c) = health.cluster() {
        let target = Target::new(ip, check);
        // A pool with `quorum = "local"` counts nobody's observations.
        let counted: Vec<&str> = tally
            .filter(|_| quorum != Quorum::Local)
            .map(|t| t.votes.iter().map(|(who, _)| who.as_str()).collect())
            .unwrap_or_default();
        let mut observations: Vec<Value> = c
            .observations(&target)
            .into_iter()
            .map(|(who, o, age)| {
                json!({
                    "instance": who,
                    "health": if o.healthy { "up" } else { "down" },
                    "reason": o.reason,
                    "age_ms": age.as_millis() as u64,
                    "counted": counted.contains(&who.as_str()),
                })
            })
            .collect();
        let local = tally.map_or(check.initial_up, |t| t.local);
        observations.insert(
            0,
            json!({
                "instance": c.instance,
                "health": if local { "up" } else { "down" },
                "reason": status.as_ref().and_then(|s| s.last_error.clone()),
                "age_ms": status.as_ref().and_then(|s| s.last_check).and_then(|t| t.elapsed().ok()).map(|d| d.as_millis() as u64),
                "counted": counted.contains(&c.instance.as_str()),
                "probes": c.probes(&target),
            }),
        );
        v["quorum"] = json!(quorum.describe());
        v["observations"] = json!(observations);
        v["fallback"] = json!(tally.is_some_and(|t| t.falls_back(quorum)).then_some(if c.connected {
            "fewer fresh observations than min_observers: the local verdict decides"
        } else {
            "NATS unreachable: the local verdict decides"
        }));
    }
    v
}

/// The wire query: RD clear, with an OPT (4096 bytes) carrying the subnet when there is one.
fn encode_query(q: &Question, dnssec_ok: bool) -> Vec<u8> {
    let mut m = vec![0x4a, 0x51, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(q.name.as_wire());
    m.extend_from_slice(&q.qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    let mut option = Vec::new();
    if let Some((addr, prefix)) = q.ecs {
        let (family, bytes): (u16, Vec<u8>) = match addr {
            IpAddr::V4(a) => (1, a.octets().to_vec()),
            IpAddr::V6(a) => (2, a.octets().to_vec()),
        };
        let len = (prefix as usize).div_ceil(8);
        option.extend_from_slice(&8u16.to_be_bytes());
        option.extend_from_slice(&(4 + len as u16).to_be_bytes());
        option.extend_from_slice(&family.to_be_bytes());
        option.extend_from_slice(&[prefix, 0]);
        option.extend_from_slice(&bytes[..len]);
    }
    m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
    m.extend_from_slice(&(option.len() as u16).to_be_bytes());
    m.extend_from_slice(&option);
    m
}

/// The reply as JSON: rcode, answer and authority records, the lowest answer TTL and the
/// ECS scope.
fn decode_reply(msg: &[u8]) -> Value {
    let be16 = |at: usize| msg.get(at..at + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let counts = [be16(4), be16(6), be16(8), be16(10)];
    let mut at = 12;
    for _ in 0..counts[0] {
        let Some((_, end)) = read_name(msg, at) else { return json!({"error": "undecodable reply"}) };
        at = end + 4;
    }
    let mut sections: [Vec<Value>; 3] = Default::default();
    let mut ecs_scope = Value::Null;
    let mut ext_rcode = 0u16;
    for (s, &count) in counts[1..].iter().enumerate() {
        for _ in 0..count {
            let Some((owner, end)) = read_name(msg, at) else { return json!({"error": "undecodable reply"}) };
            let (rtype, ttl, rdlen) = (be16(end), msg.get(end + 4..end + 8), be16(end + 8) as usize);
            let data = msg.get(end + 10..end + 10 + rdlen).unwrap_or(&[]);
            let ttl = ttl.map_or(0, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]));
            if rtype == TYPE_OPT {
                ext_rcode = (ttl >> 24) as u16;
                if let Some(scope) = ecs_option_scope(data) {
                    ecs_scope = json!(scope);
                }
            } else if s < 2 {
                let text = match (rtype, data.len()) {
                    (TYPE_A, 4) => IpAddr::from([data[0], data[1], data[2], data[3]]).to_string(),
                    (TYPE_AAAA, 16) => IpAddr::from(<[u8; 16]>::try_from(data).expect("16 bytes")).to_string(),
                    (TYPE_CNAME | TYPE_NS, _) => read_name(msg, end + 10).map_or_else(String::new, |(n, _)| n),
                    _ => format!("{} bytes", data.len()),
                };
                sections[s].push(json!({"name": owner, "type": type_name(rtype), "ttl": ttl, "data": text}));
            }
            at = end + 10 + rdlen;
        }
    }
    let rcode = (ext_rcode << 4) | (be16(2) & 0xf);
    let ttl = sections[0].iter().filter_map(|r| r["ttl"].as_u64()).min();
    let [answer, authority, _] = sections;
    json!({
        "rcode": rcode_text(rcode),
        "authoritative": be16(2) & FLAG_AA != 0,
        "records": answer,
        "authority": authority,
        "ttl": ttl,
        "ecs_scope": ecs_scope,
    })
}

fn rcode_text(rcode: u16) -> String {
    crate::dns::types::rcode_name(rcode).map_or_else(|| format!("RCODE{rcode}"), str::to_string)
}

/// The scope of a Client Subnet option among an OPT's options.
fn ecs_option_scope(mut data: &[u8]) -> Option<u8> {
    while data.len() >= 4 {
        let (code, len) = (u16::from_be_bytes([data[0], data[1]]), u16::from_be_bytes([data[2], data[3]]) as usize);
        let body = data.get(4..4 + len)?;
        if code == 8 {
            return body.get(3).copied();
        }
        data = &data[4 + len..];
    }
    None
}

/// A possibly compressed name at `at`: its text and the offset after it (after the first
/// pointer, when compressed).
fn read_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(at)? as usize;
        if len & 0xc0 == 0xc0 {
            end.get_or_insert(at + 2);
            at = ((len & 0x3f) << 8) | *msg.get(at + 1)? as usize;
            continue;
        }
        if len == 0 {
            if text.is_empty() {
                text.push('.');
            }
            return Some((text, end.unwrap_or(at + 1)));
        }
        let label = msg.get(at + 1..at + 1 + len)?;
        text.push_str(&String::from_utf8_lossy(label));
        text.push('.');
        at += 1 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_parse_with_clear_errors() {
        let q = Question::parse("app.example.org", Some("aaaa"), "192.0.2.1", Some("10.9.0.0/16")).unwrap();
        assert_eq!((q.qtype, q.ecs), (TYPE_AAAA, Some((IpAddr::from([10, 9, 0, 0]), 16))));
        assert_eq!(q.name.to_string(), "app.example.org.");
        assert!(
            Question::parse("a.example", Some("BOGUS"), "192.0.2.1", None)
                .unwrap_err()
                .to_string()
                .starts_with("type:")
        );
        assert!(Question::parse("a.example", None, "nowhere", None).unwrap_err().to_string().starts_with("client:"));
        let err = Question::parse("a.example", None, "192.0.2.1", Some("10.9.0.1/16")).unwrap_err().to_string();
        assert!(err.contains("bits set beyond"), "{err}");
    }

    #[test]
    fn compressed_names_decode() {
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(b"\x03app\x07example\x00");
        msg.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 12]);
        assert_eq!(read_name(&msg, 12), Some(("app.example.".to_string(), 25)));
        assert_eq!(read_name(&msg, 25), Some(("www.app.example.".to_string(), 31)));
        msg.extend_from_slice(&[0xc0, 31]);
        assert_eq!(read_name(&msg, 31), None, "a pointer loop ends");
    }
}
