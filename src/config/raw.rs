//! The configuration file as written: serde types with spans, before validation.
//! Key names here are a public contract; add keys, never rename them.

use serde::Deserialize;
use serde_spanned::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`.
    #[serde(default)]
    pub server: Option<RawServer>,
    /// `[[zone]]`.
    #[serde(default, rename = "zone")]
    pub zones: Vec<Spanned<RawZone>>,
    /// `[state]`.
    #[serde(default)]
    pub state: Option<RawState>,
    /// `[admin]`.
    #[serde(default)]
    pub admin: Option<Spanned<RawAdmin>>,
    /// `[geo]`.
    #[serde(default)]
    pub geo: Option<RawGeo>,
    /// `[cluster]`.
    #[serde(default)]
    pub cluster: Option<Spanned<RawCluster>>,
    /// `[log]`.
    #[serde(default)]
    pub log: Option<Spanned<RawLog>>,
    /// `[rrl]`.
    #[serde(default)]
    pub rrl: Option<Spanned<RawRrl>>,
    /// `[dnssec]`: what every signed zone shares.
    #[serde(default)]
    pub dnssec: Option<Spanned<RawDnssec>>,
    /// `[externaldns]`: the ExternalDNS webhook provider.
    #[serde(default)]
    pub externaldns: Option<Spanned<RawExternalDns>>,
    /// `[[tsig_key]]`: shared keys for zone transfers (and signed queries).
    #[serde(default)]
    pub tsig_key: Vec<Spanned<RawTsigKey>>,
}

/// `[[tsig_key]]`: a TSIG key (RFC 8945).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTsigKey {
    /// The key's name, as the secondary knows it.
    pub name: Spanned<String>,
    /// `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
    pub algorithm: Option<Spanned<String>>,
    /// The secret, base64.
    pub secret: Spanned<String>,
}

/// `[zone.transfer]`: who may transfer the zone and whom to notify of changes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransfer {
    /// Networks that may transfer without a key.
    pub allow: Option<Spanned<Vec<Spanned<String>>>>,
    /// Names of `[[tsig_key]]`s that may transfer from anywhere.
    pub keys: Option<Spanned<Vec<Spanned<String>>>>,
    /// Secondaries sent NOTIFY on every serial change (`address` or `address:port`).
    pub also_notify: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[externaldns]`: ExternalDNS's webhook provider protocol on a listener of its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExternalDns {
    /// Listen address (ExternalDNS expects a sidecar on `127.0.0.1:8888`).
    pub listen: Option<Spanned<String>>,
    /// The zones ExternalDNS may write to (default: every zone).
    pub zones: Option<Spanned<Vec<Spanned<String>>>>,
    /// Largest request body, e.g. `"32MiB"`.
    pub max_body: Option<Spanned<String>>,
}

/// `[dnssec]`: the signature cache and signing budget every signed zone shares.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDnssec {
    /// Most signatures the cache of signatures made while answering holds.
    pub cache_size: Option<Spanned<i64>>,
    /// Fresh signatures each answering thread may make per second.
    pub sign_budget: Option<Spanned<i64>>,
}

/// `[zone.dnssec]`: the zone is signed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZoneDnssec {
    /// Keys that sign: BIND key file names (`K<zone>+<alg>+<tag>`, `.key`/`.private` added).
    pub keys: Spanned<Vec<Spanned<String>>>,
    /// Keys only published in the DNSKEY set (`.key` only).
    pub published: Option<Spanned<Vec<Spanned<String>>>>,
    /// How long a signature is valid.
    pub validity: Option<Spanned<String>>,
    /// A signature with less than this left is made again.
    pub refresh: Option<Spanned<String>>,
    /// Inception this long before signing.
    pub inception_offset: Option<Spanned<String>>,
    /// TTL of DNSKEY, CDS and CDNSKEY.
    pub dnskey_ttl: Option<Spanned<i64>>,
    /// Publish CDS and CDNSKEY for the key-signing keys.
    pub cds: Option<Spanned<bool>>,
}

/// `[rrl]`: response rate limiting over UDP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRrl {
    /// NOERROR responses per second per client network, name and type.
    pub responses_per_second: Option<Spanned<i64>>,
    /// NXDOMAIN responses per second per client network and zone.
    pub nxdomains_per_second: Option<Spanned<i64>>,
    /// Error responses per second per client network.
    pub errors_per_second: Option<Spanned<i64>>,
    /// Seconds over which the rate is averaged (the bucket holds rate × window).
    pub window: Option<Spanned<i64>>,
    /// Every slip-th limited response is sent truncated; 0 never.
    pub slip: Option<Spanned<i64>>,
    /// IPv4 client network prefix length.
    pub ipv4_prefix: Option<Spanned<i64>>,
    /// IPv6 client network prefix length.
    pub ipv6_prefix: Option<Spanned<i64>>,
    /// Networks never limited.
    pub exempt: Option<Vec<Spanned<String>>>,
    /// Count what would be limited, limit nothing.
    pub log_only: Option<Spanned<bool>>,
    /// Accounts kept.
    pub table_size: Option<Spanned<i64>>,
}

/// `[log]`: query logging.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// dnstap sink: `unix:PATH` or `tcp:HOST:PORT`.
    pub dnstap: Option<Spanned<String>>,
    /// Log responses only (no AUTH_QUERY messages).
    pub dnstap_responses_only: Option<Spanned<bool>>,
    /// Log only exchanges whose response has one of these RCODEs.
    pub dnstap_rcodes: Option<Spanned<Vec<Spanned<String>>>>,
    /// The `identity` field (default: the host name).
    pub dnstap_identity: Option<Spanned<String>>,
    /// The `version` field (default: `gslbd VERSION`).
    pub dnstap_version: Option<Spanned<String>>,
    /// Most messages waiting for the sink; more are dropped (and counted).
    pub dnstap_queue: Option<Spanned<i64>>,
}

/// `[cluster]`: health verdicts shared between instances through NATS JetStream KV.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// NATS server URLs.
    pub nats: Option<Spanned<Vec<Spanned<String>>>>,
    /// A NATS credentials file (JWT and seed).
    pub credentials: Option<Spanned<String>>,
    /// A CA certificate (PEM) to verify the NATS servers' TLS with.
    pub tls_ca: Option<Spanned<String>>,
    /// The key-value bucket.
    pub bucket: Option<Spanned<String>>,
    /// This instance's name (default: the host name).
    pub instance: Option<Spanned<String>>,
    /// This instance's region (shown in observations).
    pub region: Option<Spanned<String>>,
    /// How long an observation counts.
    pub observation_ttl: Option<Spanned<String>>,
    /// The address probes leave from.
    pub probe_source: Option<Spanned<String>>,
    /// Fewer fresh observations of a target than this: the local verdict decides.
    pub min_observers: Option<Spanned<i64>>,
    /// The instances whose observations count (default: any that writes to the bucket).
    pub members: Option<Spanned<Vec<Spanned<String>>>>,
    /// A shared key: observations are signed with it and unsigned ones are ignored.
    pub key: Option<Spanned<String>>,
}

/// `[geo]`: datacenters and location maps, shared by every zone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeo {
    /// `[[geo.datacenter]]`.
    #[serde(default)]
    pub datacenter: Vec<Spanned<RawDatacenter>>,
    /// `[[geo.map]]`.
    #[serde(default)]
    pub map: Vec<Spanned<RawGeoMap>>,
}

/// `[[geo.datacenter]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatacenter {
    /// Name pools and maps refer to.
    pub name: Spanned<String>,
    /// `[latitude, longitude]` in degrees.
    pub coordinates: Option<Spanned<Vec<f64>>>,
}

/// A map's inline networks: CIDR → datacenters, nearest first.
pub type RawNets = std::collections::BTreeMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>;

/// `[[geo.map]]`: client networks to datacenter orders.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeoMap {
    /// Name pools refer to (default `default`).
    pub name: Option<Spanned<String>>,
    /// Order for clients no network covers (default: every datacenter in config order).
    pub default: Option<Spanned<Vec<Spanned<String>>>>,
    /// CIDR → datacenters, nearest first.
    pub nets: Option<Spanned<RawNets>>,
    /// A file of `CIDR dc1,dc2,...` lines, relative to the config file.
    pub nets_file: Option<Spanned<String>>,
    /// A MaxMind DB (`.mmdb`), relative to the config file.
    pub mmdb: Option<Spanned<String>>,
    /// `continent:EU` / `country:TR` / `subdivision:US-CA` → datacenters, nearest first.
    pub rules: Option<Spanned<RawNets>>,
    /// Order by distance from the database's coordinates where no rule applies (default:
    /// when any datacenter has coordinates).
    pub nearest: Option<Spanned<bool>>,
}

/// `[admin]`: the HTTP API (webhook, health, records, metrics).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Listen address.
    pub listen: Option<Spanned<String>>,
    /// A read-only secret (the status page, `/records`, `/explain`, `/events`).
    pub viewer_secret: Option<Spanned<String>>,
    /// Shared secret for the authenticated endpoints.
    pub secret: Option<Spanned<String>>,
    /// PEM certificate chain for HTTPS.
    pub tls_cert: Option<Spanned<String>>,
    /// PEM private key for HTTPS.
    pub tls_key: Option<Spanned<String>>,
    /// Largest request body, e.g. `"8MiB"`.
    pub max_body: Option<Spanned<String>>,
    /// Most open connections.
    pub max_connections: Option<Spanned<i64>>,
    /// Most connections from one client address.
    pub max_connections_per_client: Option<Spanned<i64>>,
    /// Longest wait for a request's headers, e.g. `"10s"`.
    pub header_timeout: Option<Spanned<String>>,
    /// `partial` (skip bad `/notify` items, apply the rest) or `atomic` (all or nothing).
    pub notify: Option<Spanned<String>>,
}

/// `[state]`: where last-known-good data is kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// Directory for the per-zone state files.
    pub dir: Option<Spanned<String>>,
    /// Sync each accepted push to a journal before acknowledging it.
    pub journal: Option<Spanned<bool>>,
}

/// `[zone.controller]`: the Elchi controller feeding this zone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawController {
    /// Base URL; a path prefix is kept.
    pub endpoint: Spanned<String>,
    /// Shared secret sent as `X-Elchi-Secret`.
    pub secret: Spanned<String>,
    /// This node's IP, sent as `node_ip` when set.
    pub node_ip: Option<Spanned<String>>,
    /// Region filter; absent or `["all"]` = none.
    pub regions: Option<Spanned<Vec<Spanned<String>>>>,
    /// Poll interval, e.g. `"30s"`.
    pub sync_interval: Option<Spanned<String>>,
    /// Request timeout.
    pub timeout: Option<Spanned<String>>,
    /// Accept any TLS certificate.
    pub tls_skip_verify: Option<Spanned<bool>>,
    /// PEM file with a private CA to trust.
    pub ca_file: Option<Spanned<String>>,
    /// Largest response body accepted, e.g. `"64MiB"`.
    pub max_response_size: Option<Spanned<String>>,
    /// Largest share of the zone's records one response may remove, e.g. `"50%"`.
    pub max_shrink: Option<Spanned<String>>,
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Listen addresses.
    pub listen: Option<Spanned<Vec<Spanned<String>>>>,
    /// UDP worker threads per address; 0 = one per CPU.
    pub udp_workers: Option<Spanned<i64>>,
    /// EDNS payload size we advertise and accept.
    pub max_udp_payload: Option<Spanned<i64>>,
    /// Idle TCP connection timeout, e.g. `"10s"`.
    pub tcp_idle_timeout: Option<Spanned<String>>,
    /// TCP connection cap.
    pub max_tcp_connections: Option<Spanned<i64>>,
    /// Most TCP connections from one client address.
    pub max_tcp_per_client: Option<Spanned<i64>>,
    /// EDNS NSID.
    pub nsid: Option<Spanned<String>>,
    /// CHAOS version answer.
    pub version: Option<Spanned<String>>,
    /// CHAOS identity answer.
    pub identity: Option<Spanned<String>>,
    /// EDNS Client Subnet on or off.
    pub ecs: Option<bool>,
    /// DNS Cookies on or off.
    pub cookies: Option<bool>,
    /// The server secret (32 hex digits), shared by instances that answer for each other.
    pub cookie_secret: Option<Spanned<String>>,
    /// The secret before a rotation.
    pub cookie_secret_previous: Option<Spanned<String>>,
    /// BADCOOKIE for UDP queries with a client cookie but no valid server cookie.
    pub cookies_required: Option<bool>,
    /// DNS over TLS listen addresses.
    pub tls_listen: Option<Spanned<Vec<Spanned<String>>>>,
    /// Certificate chain (PEM) for DNS over TLS.
    pub tls_cert: Option<Spanned<String>>,
    /// Its private key (PEM).
    pub tls_key: Option<Spanned<String>>,
}

/// `[[zone]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    /// Apex name.
    pub name: Spanned<String>,
    /// TTL for sources that give TTL 0.
    pub default_ttl: Option<Spanned<i64>>,
    /// Apex name servers.
    pub ns: Option<Spanned<Vec<Spanned<String>>>>,
    /// TTL of the apex NS set.
    pub ns_ttl: Option<Spanned<i64>>,
    /// `[zone.soa]`.
    pub soa: Option<Spanned<RawSoa>>,
    /// Master-file text.
    pub records: Option<Spanned<String>>,
    /// Master file path, relative to the config file.
    pub zone_file: Option<Spanned<String>>,
    /// `fallback` (controller and webhook data win on the same name) or `override`.
    pub static_records: Option<Spanned<String>>,
    /// `[zone.controller]`.
    pub controller: Option<Spanned<RawController>>,
    /// `[[zone.pool]]`.
    #[serde(default)]
    pub pool: Vec<Spanned<RawPool>>,
    /// `[[zone.geo_name]]`.
    #[serde(default)]
    pub geo_name: Vec<Spanned<RawGeoName>>,
    /// `[zone.dnssec]`.
    pub dnssec: Option<Spanned<RawZoneDnssec>>,
    /// `[zone.transfer]`.
    pub transfer: Option<Spanned<RawTransfer>>,
}

/// `[[zone.geo_name]]`: a name answered with the addresses of another name, chosen per
/// client datacenter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeoName {
    /// Owner name relative to the zone.
    pub name: Spanned<String>,
    /// The map that orders the datacenters (default: the only one).
    pub geo_map: Option<Spanned<String>>,
    /// Datacenter → full name whose addresses answer for it.
    pub targets: Spanned<std::collections::BTreeMap<String, Spanned<String>>>,
}

/// `[[zone.pool]]`: a health-checked set of members answered under one name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    /// Owner name relative to the zone (`@` = apex).
    pub name: Spanned<String>,
    /// `address` or `delegate`.
    pub mode: Option<Spanned<String>>,
    /// TTL of the answers.
    pub ttl: Option<Spanned<i64>>,
    /// `failover`, `all`, `weighted`, `hash` or `geo`.
    pub select: Option<Spanned<String>>,
    /// With `select = "geo"`: how members are chosen inside the chosen datacenter
    /// (`all`, `failover`, `weighted` or `hash`).
    pub within: Option<Spanned<String>>,
    /// With `select = "geo"`: the `[[geo.map]]` that orders the datacenters (default: the
    /// only one).
    pub geo_map: Option<Spanned<String>>,
    /// With `select = "hash"` (or `within = "hash"`): the IPv4 prefix of the client network
    /// that is hashed.
    pub hash_prefix_v4: Option<Spanned<i64>>,
    /// The same for IPv6.
    pub hash_prefix_v6: Option<Spanned<i64>>,
    /// Most members per answer.
    pub max_answers: Option<Spanned<i64>>,
    /// `all`, `nodata`, `servfail` or a name to answer as CNAME.
    pub when_all_down: Option<Spanned<String>>,
    /// Default check of the members.
    pub check: Option<Spanned<RawCheck>>,
    /// An HTTPS (or SVCB) record at the pool's name whose address hints follow its answers.
    pub https: Option<Spanned<RawHttps>>,
    /// With `[cluster]`: `local`, `any`, `majority`, `all` or a number of instances.
    pub quorum: Option<Spanned<RawQuorum>>,
    /// With `[cluster]`: how many live instances probe each member.
    pub probers: Option<Spanned<i64>>,
    /// Members.
    #[serde(default)]
    pub member: Vec<Spanned<RawMember>>,
}

/// `[zone.pool.https]`: the pool's HTTPS or SVCB record (RFC 9460), ServiceMode.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttps {
    /// `HTTPS` (default) or `SVCB`.
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    /// Application protocols (`alpn`), e.g. `["h2", "h3"]`.
    pub alpn: Option<Spanned<Vec<String>>>,
    /// `no-default-alpn`: clients may not assume the default protocol.
    pub no_default_alpn: Option<Spanned<bool>>,
    /// `port`: another port than the scheme's.
    pub port: Option<Spanned<i64>>,
    /// `ech`: the ECHConfigList, base64.
    pub ech: Option<Spanned<String>>,
    /// The zone apex answers `HTTPS 0 <pool name>` (AliasMode) too.
    pub apex_alias: Option<Spanned<bool>>,
}

/// A member of a pool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    /// Member id; in `delegate` mode the NS host name.
    pub name: Spanned<String>,
    /// `primary` or `secondary`.
    pub role: Option<Spanned<String>>,
    /// Free-form labels.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// IPv4 addresses.
    #[serde(default)]
    pub ipv4: Vec<Spanned<String>>,
    /// IPv6 addresses.
    #[serde(default)]
    pub ipv6: Vec<Spanned<String>>,
    /// Weight for `weighted`; 0 = standby.
    pub weight: Option<Spanned<i64>>,
    /// The `[[geo.datacenter]]` it runs in (required with `select = "geo"`).
    pub datacenter: Option<Spanned<String>>,
    /// Overrides of the pool's check.
    pub check: Option<Spanned<RawCheck>>,
}

/// A pool's quorum: a word or a number of instances.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawQuorum {
    /// At least this many instances say up.
    Count(i64),
    /// `local`, `any`, `majority`, `all`.
    Word(String),
}

/// A status code or a range like `"200-299"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawStatus {
    /// One code.
    Code(i64),
    /// A range `"LOW-HIGH"` (or one code as text).
    Range(String),
}

/// `[zone.pool.check]` / `[zone.pool.member.check]`: every key optional so members can
/// override single keys.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// `http`, `https`, `tcp`, `grpc`, `icmp`, `dns` or `none`.
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    /// Port.
    pub port: Option<Spanned<i64>>,
    /// HTTP path.
    pub path: Option<Spanned<String>>,
    /// Host header and TLS SNI.
    pub host: Option<Spanned<String>>,
    /// Accepted status codes.
    pub expect_status: Option<Spanned<Vec<RawStatus>>>,
    /// Substring expected in the first 64 KiB of the body.
    pub expect_body: Option<Spanned<String>>,
    /// Probe interval.
    pub interval: Option<Spanned<String>>,
    /// Probe timeout.
    pub timeout: Option<Spanned<String>>,
    /// Consecutive successes for down → up.
    pub rise: Option<Spanned<i64>>,
    /// Consecutive failures for up → down.
    pub fall: Option<Spanned<i64>>,
    /// State before the first result.
    pub initial: Option<Spanned<String>>,
    /// Verify HTTPS certificates.
    pub tls_verify: Option<Spanned<bool>>,
    /// TCP: bytes to send once connected.
    pub send: Option<Spanned<String>>,
    /// TCP: text the reply must contain.
    pub expect: Option<Spanned<String>>,
    /// Probe this address instead of the member's (a sidecar, a load balancer's health port).
    pub address: Option<Spanned<String>>,
    /// HTTP request headers (HTTP, HTTPS) or request metadata (gRPC).
    pub headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// gRPC: the service asked about (grpc.health.v1); empty asks about the server.
    pub service: Option<Spanned<String>>,
    /// gRPC: connect with TLS.
    pub tls: Option<Spanned<bool>>,
    /// DNS: the name asked.
    pub query: Option<Spanned<String>>,
    /// DNS: the type asked (default A).
    pub query_type: Option<Spanned<String>>,
    /// DNS: `udp` or `tcp`.
    pub transport: Option<Spanned<String>>,
    /// DNS: the rcode that means up (default NOERROR).
    pub expect_rcode: Option<Spanned<String>>,
    /// DNS: text one answer record's data must contain.
    pub expect_answer: Option<Spanned<String>>,
}

/// `[zone.soa]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSoa {
    /// Primary server name.
    pub mname: Option<Spanned<String>>,
    /// Responsible mailbox.
    pub rname: Option<Spanned<String>>,
    /// Fixed serial.
    pub serial: Option<Spanned<i64>>,
    /// Refresh.
    pub refresh: Option<Spanned<i64>>,
    /// Retry.
    pub retry: Option<Spanned<i64>>,
    /// Expire.
    pub expire: Option<Spanned<i64>>,
    /// Negative-answer TTL.
    pub minimum: Option<Spanned<i64>>,
    /// TTL of the SOA record itself.
    pub ttl: Option<Spanned<i64>>,
    /// `records` written after the `[zone.soa]` header lands here in TOML; accepted as the
    /// zone's records so the documented example works as written.
    pub records: Option<Spanned<String>>,
    /// Likewise for `zone_file`.
    pub zone_file: Option<Spanned<String>>,
}
