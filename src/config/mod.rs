//! The configuration file: TOML in, a validated [`Config`] out.
//!
//! Loading runs in three steps: parse the TOML keeping spans, expand `${VAR}`/`{$VAR}` in
//! string values, deserialize into the raw types ([`raw`]), then validate into [`Config`]
//! ([`validate`]). Every problem found is reported with the file, line and key; a file with
//! any problem produces no `Config` at all, so a bad reload never replaces a good config.

pub mod check;
pub mod cluster;
pub mod dnssec;
pub mod env;
pub mod error;
pub mod externaldns;
pub mod file;
pub mod geo;
pub mod https;
pub mod identity;
pub mod log;
pub mod master_file;
pub mod mmdb;
pub mod pool;
pub mod raw;
pub mod rrl;
pub mod transfer;
pub mod validate;
pub mod value;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::dns::name::Name;
use crate::dns::records::ZoneData;
pub use check::{CheckConfig, CheckKind, DnsCheck};
pub use error::{ConfigError, ConfigErrors};

/// This host's name (the kernel's), for defaults such as `[cluster] instance` and the
/// dnstap identity; `None` when it cannot be read.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty())
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[[zone]]`, in file order.
    pub zones: Vec<ZoneConfig>,
    /// `[state]`.
    pub state: StateConfig,
    /// `[admin]`, when present.
    pub admin: Option<AdminConfig>,
    /// `[geo]`: datacenters and location maps (empty without it).
    pub geo: geo::GeoConfig,
    /// `[cluster]`: health shared with other instances, when set.
    pub cluster: Option<cluster::ClusterConfig>,
    /// `[log]`: dnstap query logging.
    pub log: log::LogConfig,
    /// `[rrl]`: response rate limiting, when set.
    pub rrl: Option<rrl::RrlConfig>,
    /// `[dnssec]`: the signature cache and signing budget.
    pub dnssec: dnssec::DnssecSettings,
    /// `[externaldns]`: the ExternalDNS webhook provider, when set.
    pub externaldns: Option<externaldns::ExternalDnsConfig>,
    /// `[[tsig_key]]`: the shared keys.
    pub tsig_keys: std::sync::Arc<[crate::dns::tsig::TsigKey]>,
}

impl Config {
    /// The zone with exactly this apex.
    pub fn zone(&self, apex: &Name) -> Option<&ZoneConfig> {
        self.zones.iter().find(|z| z.apex == *apex)
    }

    /// Zones we serve that lie inside `apex` (a CNAME target there is theirs to answer).
    pub fn nested_zones(&self, apex: &Name) -> Vec<Name> {
        self.zones.iter().filter(|z| z.apex != *apex && z.apex.is_within(apex)).map(|z| z.apex.clone()).collect()
    }
}

/// The admin HTTP API (`[admin]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Shared secret (at least 8 bytes).
    pub secret: String,
    /// A read-only secret: reads (the status page, `/records`, `/explain`, `/events`,
    /// `GET /members/state`), never changes.
    pub viewer_secret: Option<String>,
    /// Certificate chain and key files (PEM) for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Largest request body in bytes.
    pub max_body: usize,
    /// Most open connections.
    pub max_connections: usize,
    /// Most connections open at once from one client address.
    pub max_connections_per_client: usize,
    /// Longest wait for a request's headers (slow clients are cut off).
    pub header_timeout: Duration,
    /// `/notify` applies every item or none (`atomic`), instead of skipping bad ones.
    pub notify_atomic: bool,
}

/// Where last-known-good data lives (`[state]`).
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// Directory of the per-zone state files (default `./state`).
    pub dir: PathBuf,
    /// Write each accepted push to the zone's journal, synced to disk, before acknowledging it
    /// (default true): an acknowledged push then survives a crash.
    pub journal: bool,
}

/// The Elchi controller of one zone (`[zone.controller]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerConfig {
    /// Base URL without a trailing slash; a path prefix is kept.
    pub endpoint: String,
    /// Shared secret (at least 8 bytes).
    pub secret: String,
    /// This node's IP, sent as `node_ip` when set.
    pub node_ip: Option<String>,
    /// Regions to ask for; empty = no filter.
    pub regions: Vec<String>,
    /// Poll interval.
    pub sync_interval: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Accept any TLS certificate.
    pub tls_skip_verify: bool,
    /// Private CA (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Largest response body accepted.
    pub max_response_size: usize,
    /// Largest share of the zone's controller records one response may remove, in percent
    /// (100: no limit). An empty record set is not held to it.
    pub max_shrink: u8,
}

/// Listener and response settings (`[server]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Addresses to serve UDP and TCP DNS on.
    pub listen: Vec<SocketAddr>,
    /// UDP worker threads per address (resolved: never 0).
    pub udp_workers: usize,
    /// Our EDNS UDP payload size.
    pub max_udp_payload: u16,
    /// How long an idle TCP connection is kept.
    pub tcp_idle_timeout: Duration,
    /// Most TCP connections open at once, over every listen address.
    pub max_tcp_connections: usize,
    /// Most TCP connections open at once from one client address.
    pub max_tcp_per_client: usize,
    /// EDNS NSID payload.
    pub nsid: Option<String>,
    /// Answer for CHAOS `version.bind`/`version.server`.
    pub version: Option<String>,
    /// Answer for CHAOS `id.server`/`hostname.bind`.
    pub identity: Option<String>,
    /// EDNS Client Subnet is read and answered (RFC 7871); default on.
    pub ecs: bool,
    /// DNS Cookies (default on); `None`: off.
    pub cookies: Option<CookieConfig>,
    /// DNS over TLS (RFC 7858) listen addresses.
    pub tls_listen: Vec<SocketAddr>,
    /// Certificate chain and key (PEM) for DNS over TLS, set with `tls_listen`.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// `[server] cookies*`: DNS Cookies (RFC 7873, RFC 9018).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// The server secret cookies are made with.
    pub secret: [u8; 16],
    /// The secret before the last rotation: its cookies still verify.
    pub previous: Option<[u8; 16]>,
    /// UDP queries with a client cookie but no valid server cookie get BADCOOKIE.
    pub required: bool,
}

/// One authoritative zone (`[[zone]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    /// The apex.
    pub apex: Name,
    /// TTL for sources that give TTL 0.
    pub default_ttl: u32,
    /// A fixed SOA serial; `None` means the time of the last change.
    pub serial: Option<u32>,
    /// The static records (SOA, NS and the `records`/`zone_file` data).
    pub data: ZoneData,
    /// Whether static records or controller/webhook data answer a name both define.
    pub static_records: StaticRecords,
    /// The controller feeding this zone, if any.
    pub controller: Option<ControllerConfig>,
    /// Health-checked pools.
    pub pools: Vec<PoolConfig>,
    /// Names answered with another name's addresses, chosen by the client's location.
    pub geo_names: Vec<GeoNameConfig>,
    /// `[zone.dnssec]`: the zone is signed with these keys.
    pub dnssec: Option<std::sync::Arc<crate::dnssec::ZoneKeys>>,
    /// `[zone.transfer]`: zone transfers out, when set.
    pub transfer: Option<transfer::TransferConfig>,
}

/// A name answered, per client, with the addresses of the target of the nearest datacenter
/// that has any (`[[zone.geo_name]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct GeoNameConfig {
    /// Owner name (absolute).
    pub name: Name,
    /// Index of the map in [`geo::GeoConfig::maps`].
    pub map: usize,
    /// Target per datacenter index (`None`: the datacenter has none).
    pub targets: Vec<Option<Name>>,
}

impl ZoneConfig {
    /// A pool or a geo name owns `name`: its answers come from the zone's dynamic layer,
    /// whatever the other sources hold there.
    pub fn answers_by_layer(&self, name: &Name) -> bool {
        self.pools.iter().any(|p| p.name == *name) || self.geo_names.iter().any(|g| g.name == *name)
    }

    /// Some of its answers depend on the client's location (geo pools, geo names).
    pub fn uses_geo(&self) -> bool {
        !self.geo_names.is_empty() || self.pools.iter().any(|p| p.geo.is_some())
    }
}

/// Which side answers a name (and type) that static records and controller or webhook data
/// both define. Pools always win over both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum StaticRecords {
    /// Controller and webhook data win; static records fill the names they lack (upstream's
    /// `elchi { fallthrough }` before `file`).
    #[default]
    Fallback,
    /// Static records win.
    Override,
}

impl StaticRecords {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StaticRecords::Fallback => "fallback",
            StaticRecords::Override => "override",
        }
    }
}

/// How members are chosen (`select`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// Healthy primaries, else healthy secondaries.
    Failover,
    /// Every healthy member.
    All,
    /// A weighted random pick of `max_answers` healthy members per query.
    Weighted,
    /// `max_answers` healthy members picked by rendezvous hashing of the client's network:
    /// the same client gets the same members while they are up.
    Hash,
}

impl Select {
    /// The word the config uses.
    pub fn word(self) -> &'static str {
        match self {
            Select::Failover => "failover",
            Select::All => "all",
            Select::Weighted => "weighted",
            Select::Hash => "hash",
        }
    }
}

/// How `select = "hash"` turns a client into a key: its network's prefix lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashPrefix {
    /// IPv4 prefix length (default 24).
    pub v4: u8,
    /// IPv6 prefix length (default 56).
    pub v6: u8,
}

/// What to answer when no member qualifies (`when_all_down`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhenAllDown {
    /// Fail open: answer every member.
    All,
    /// NOERROR with no answer.
    NoData,
    /// SERVFAIL.
    ServFail,
    /// A CNAME to this name.
    Cname(Name),
}

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Preferred.
    Primary,
    /// Used when no primary is up.
    Secondary,
}

/// How a pool is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// A/AAAA of the chosen members.
    Address,
    /// A referral to the chosen members as name servers.
    Delegate,
}

/// A health-checked pool (`[[zone.pool]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Owner name (absolute).
    pub name: Name,
    /// Answer mode.
    pub mode: PoolMode,
    /// Answer TTL.
    pub ttl: u32,
    /// Member selection (inside the chosen datacenter, for a geo pool).
    pub select: Select,
    /// `select = "geo"`: the index of the map in [`geo::GeoConfig::maps`] that orders the
    /// datacenters per client.
    pub geo: Option<usize>,
    /// Most members per answer.
    pub max_answers: usize,
    /// `select = "hash"`: the client network's prefix lengths.
    pub hash_prefix: HashPrefix,
    /// Answer when no member qualifies.
    pub when_all_down: WhenAllDown,
    /// Whose observations make a member healthy (with `[cluster]`).
    pub quorum: cluster::Quorum,
    /// How many live instances probe each member (with `[cluster]`); `None`: all.
    pub probers: Option<usize>,
    /// Members, in config order.
    pub members: Vec<MemberConfig>,
    /// An HTTPS or SVCB record at the pool's name, hints filled per query.
    pub https: Option<https::HttpsConfig>,
}

/// A pool member.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberConfig {
    /// Member id as written.
    pub id: String,
    /// NS host name in `delegate` mode (absolute).
    pub host: Name,
    /// Role.
    pub role: Role,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// IPv4 addresses.
    pub ipv4: Vec<std::net::Ipv4Addr>,
    /// IPv6 addresses.
    pub ipv6: Vec<std::net::Ipv6Addr>,
    /// Weight (0 = standby).
    pub weight: u32,
    /// Index of its datacenter in [`geo::GeoConfig::datacenters`].
    pub datacenter: Option<u16>,
    /// The member's check (pool default with the member's overrides).
    pub check: CheckConfig,
}

/// Reads, expands and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let unreadable =
        |line, message| ConfigErrors(vec![ConfigError { file: path.to_path_buf(), line, key: String::new(), message }]);
    let bytes =
        file::read_regular(path, file::CONFIG_MAX).map_err(|e| unreadable(None, format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        unreadable(Some(line), "not UTF-8 text".to_string())
    })?;
    parse(path, &text, &|name| std::env::var(name).ok())
}

/// Validates configuration text as if read from `path`, reading variables through `lookup`.
pub fn parse(path: &Path, text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let mut rep = error::Reporter::new(path, text);
    let mut table = match toml::de::DeTable::parse(text) {
        Ok(t) => t,
        Err(e) => {
            let line = e.span().map(|s| rep.line_of(s.start));
            rep.at_line(line, "", e.message().trim().to_string());
            return Err(ConfigErrors(rep.into_errors()));
        }
    };
    env::expand_table(table.get_mut(), "", &mut rep, lookup);
    if !rep.errors.is_empty() {
        return Err(ConfigErrors(rep.into_errors()));
    }
    let raw = match raw::RawConfig::deserialize(toml::de::Deserializer::from(table)) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map(|s| rep.line_of(s.start));
            rep.at_line(line, "", e.message().trim().to_string());
            return Err(ConfigErrors(rep.into_errors()));
        }
    };
    match validate::validate(raw, &mut rep) {
        Some(config) => Ok(config),
        None => Err(ConfigErrors(rep.into_errors())),
    }
}
