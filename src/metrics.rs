//! `/metrics` in the Prometheus text format. Control-plane metrics (sync durations, webhook
//! requests) are ordinary prometheus-client metrics; the query counters are read from the
//! per-worker counters of [`crate::server::stats`] and the zone status from the builder's
//! published view only when scraped, so the query path never touches a shared metric and a
//! scrape never waits for a build.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::builder::BuilderHandle;
use crate::builder::views::View;
use crate::elchi::api::api_zone;
use crate::health::member_state::AdminState;
use crate::server::stats::Stats;

type Labels = Vec<(String, String)>;

fn sync_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

/// The registry and the metrics updated outside the query path.
pub struct Metrics {
    registry: Registry,
    /// Controller request durations, by zone and kind (`snapshot`/`changes`).
    pub sync_duration: Family<Labels, Histogram, fn() -> Histogram>,
    /// Webhook requests, by endpoint and status (`success`/`error`/`unauthorized`).
    pub webhook_requests: Family<Labels, Counter>,
    /// Health probes, by outcome (`success`/`failure`).
    pub probes: Family<Labels, Counter>,
    probe_ok: Counter,
    probe_failed: Counter,
    /// Health probe duration.
    pub probe_duration: Histogram,
    /// Health state transitions, by new state (`up`/`down`).
    pub transitions: Family<Labels, Counter>,
    /// The cluster's counters (`[cluster]`), read at scrape time.
    pub cluster: Arc<crate::cluster::ClusterStats>,
    /// dnstap's counters (`[log] dnstap`), read at scrape time.
    pub dnstap: Arc<crate::dnstap::TapStats>,
    /// ExternalDNS provider requests, by route and HTTP status.
    pub externaldns_requests: Family<Labels, Counter>,
    /// Provider-specific properties ExternalDNS sent that gslbd ignores, by name.
    pub externaldns_ignored: Family<Labels, Counter>,
    /// Distinct ignored property names given a label of their own.
    externaldns_ignored_names: std::sync::atomic::AtomicUsize,
}

impl Metrics {
    /// Registers everything; `stats` and the builder's view are read at scrape time.
    pub fn new(stats: Arc<Stats>, builder: BuilderHandle) -> Metrics {
        let mut registry = Registry::with_prefix("gslbd");
        let sync_duration = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(sync_histogram);
        registry.register("sync_duration_seconds", "Controller request duration", sync_duration.clone());
        let webhook_requests = Family::<Labels, Counter>::default();
        registry.register("webhook_requests", "Admin API requests by endpoint and outcome", webhook_requests.clone());
        let probes = Family::<Labels, Counter>::default();
        registry.register("health_probes", "Health probes by outcome", probes.clone());
        let probe_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register("health_probe_duration_seconds", "Health probe duration", probe_duration.clone());
        let transitions = Family::<Labels, Counter>::default();
        registry.register("health_transitions", "Health state changes, by new state", transitions.clone());
        let externaldns_requests = Family::<Labels, Counter>::default();
        registry.register(
            "externaldns_requests",
            "ExternalDNS webhook provider requests by route and HTTP status",
            externaldns_requests.clone(),
        );
        let externaldns_ignored = Family::<Labels, Counter>::default();
        registry.register(
            "externaldns_ignored_properties",
            "Provider-specific properties of ExternalDNS endpoints that gslbd ignores, by name",
            externaldns_ignored.clone(),
        );
        let cluster = Arc::new(crate::cluster::ClusterStats::default());
        let dnstap = Arc::new(crate::dnstap::TapStats::default());
        registry.register_collector(Box::new(Scraped {
            stats,
            builder,
            cluster: Arc::clone(&cluster),
            dnstap: Arc::clone(&dnstap),
        }));
        let probe_ok = probes.get_or_create(&vec![("outcome".into(), "success".into())]).clone();
        let probe_failed = probes.get_or_create(&vec![("outcome".into(), "failure".into())]).clone();
        Metrics {
            registry,
            sync_duration,
            webhook_requests,
            probes,
            probe_ok,
            probe_failed,
            probe_duration,
            transitions,
            cluster,
            dnstap,
            externaldns_requests,
            externaldns_ignored,
            externaldns_ignored_names: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Counts one ExternalDNS provider request.
    pub fn count_externaldns(&self, route: &str, status: u16) {
        self.externaldns_requests
            .get_or_create(&vec![("route".into(), route.into()), ("status".into(), status.to_string())])
            .inc();
    }

    /// Counts ignored provider-specific properties; names beyond the first 64 seen count as
    /// `other` (they come from users' annotations: the label set stays bounded).
    pub fn count_ignored_properties(&self, names: &[String]) {
        for name in names {
            let known = self.externaldns_ignored.get(&vec![("property".into(), name.clone())]).is_some();
            let seen = self.externaldns_ignored_names.load(std::sync::atomic::Ordering::Relaxed);
            let label = if known || seen < 64 { name.as_str() } else { "other" };
            if !known && label != "other" {
                self.externaldns_ignored_names.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            self.externaldns_ignored.get_or_create(&vec![("property".into(), label.into())]).inc();
        }
    }

    /// Records one controller request.
    pub fn observe_sync(&self, zone: &str, kind: &str, seconds: f64) {
        self.sync_duration
            .get_or_create(&vec![("zone".into(), zone.into()), ("kind".into(), kind.into())])
            .observe(seconds);
    }

    /// Counts one admin request.
    pub fn count_request(&self, endpoint: &str, status: &str) {
        self.webhook_requests
            .get_or_create(&vec![("endpoint".into(), endpoint.into()), ("status".into(), status.into())])
            .inc();
    }

    /// Records one health probe.
    pub fn observe_probe(&self, ok: bool, seconds: f64, became: Option<&str>) {
        // Cached handles: no label set is built per probe.
        let counter = if ok { &self.probe_ok } else { &self.probe_failed };
        counter.inc();
        self.probe_duration.observe(seconds);
        if let Some(state) = became {
            self.transitions.get_or_create(&vec![("to".into(), state.into())]).inc();
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Values computed at scrape time.
struct Scraped {
    stats: Arc<Stats>,
    builder: BuilderHandle,
    cluster: Arc<crate::cluster::ClusterStats>,
    dnstap: Arc<crate::dnstap::TapStats>,
}

impl std::fmt::Debug for Scraped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scraped")
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn counter_family(e: &mut DescriptorEncoder, name: &str, help: &str, rows: &[(Labels, u64)]) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    // One unlabelled value: `name 1`, not `name{} 1`.
    if let [(l, v)] = rows
        && l.is_empty()
    {
        return ConstCounter::new(*v).encode(m);
    }
    for (l, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(l)?)?;
    }
    Ok(())
}

fn gauge_family<N: EncodeGaugeValue + Copy + std::fmt::Debug>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, N)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    if let [(l, v)] = rows
        && l.is_empty()
    {
        return ConstGauge::new(*v).encode(m);
    }
    for (l, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(l)?)?;
    }
    Ok(())
}

impl Collector for Scraped {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        // What a scrape reads is published (the snapshot, the view) or atomic: no lock is
        // held while the text is formatted.
        let snapshot = self.builder.snapshot().load();
        let view = self.builder.view();
        self.encode_queries(&mut e, &snapshot)?;
        self.encode_dnstap(&mut e, &view)?;
        self.encode_cluster(&mut e, &view)?;
        encode_zones(&mut e, &view, &snapshot)?;
        encode_pools(&mut e, &view)?;
        encode_dnssec(&mut e, &view, &snapshot)?;
        encode_builds(&mut e, &view)
    }
}

/// Signing: signatures made by who asked, the cache of signatures made while answering, the
/// budget, and per signed zone the earliest expiry its answers carry.
fn encode_dnssec(e: &mut DescriptorEncoder, view: &View, snapshot: &crate::snapshot::Snapshot) -> std::fmt::Result {
    use crate::dnssec::online::{Kind, MADE, OVER_BUDGET, OVER_BUDGET_ANSWERS};
    use std::sync::atomic::Ordering;
    let (mut expiry, mut kept, mut refresh) = (Vec::new(), Vec::new(), Vec::new());
    for zone in &view.config.zones {
        let Some(s) = view.zone(&zone.apex).and_then(|z| z.signatures) else { continue };
        let z = api_zone(&zone.apex);
        if let Some(keys) = &zone.dnssec {
            refresh.push((labels(&[("zone", &z)]), keys.refresh as i64));
        }
        if let Some(t) = s.earliest_expiry {
            expiry.push((labels(&[("zone", &z)]), t as i64));
        }
        kept.push((labels(&[("zone", &z)]), s.kept as i64));
    }
    if kept.is_empty() {
        return Ok(());
    }
    let made: Vec<(Labels, u64)> = Kind::ALL
        .iter()
        .map(|k| (labels(&[("kind", k.as_str())]), MADE[*k as usize].load(Ordering::Relaxed)))
        .collect();
    counter_family(
        e,
        "dnssec_signatures",
        "Signatures made, by what for: records and dynamic (the builder), denial and answer (while answering)",
        &made,
    )?;
    gauge_family(
        e,
        "dnssec_signature_expiry_timestamp_seconds",
        "The earliest expiration of a signature a signed zone's answers carry (unix time)",
        &expiry,
    )?;
    gauge_family(
        e,
        "dnssec_refresh_seconds",
        "A signed zone's refresh time: signatures are renewed when less than this is left",
        &refresh,
    )?;
    gauge_family(e, "dnssec_kept_signatures", "Signatures the builder keeps over a signed zone's records", &kept)?;
    let cache = snapshot.zones.values().find_map(|z| z.signer.as_ref()).map(|s| s.cache.stats()).unwrap_or_default();
    gauge_family(
        e,
        "dnssec_cache_entries",
        "Signatures in the cache of signatures made while answering",
        &[(Vec::new(), cache.entries as i64)],
    )?;
    gauge_family(
        e,
        "dnssec_cache_capacity",
        "Most entries the signature cache holds ([dnssec] cache_size)",
        &[(Vec::new(), cache.capacity as i64)],
    )?;
    let lookups = [("hit", cache.hits), ("miss", cache.misses)].map(|(o, v)| (labels(&[("outcome", o)]), v));
    counter_family(e, "dnssec_cache_lookups", "Signature cache lookups, by outcome", &lookups)?;
    counter_family(
        e,
        "dnssec_cache_evictions",
        "Signatures evicted one at a time to make room",
        &[(Vec::new(), cache.evictions)],
    )?;
    counter_family(
        e,
        "dnssec_budget_exceeded",
        "Signatures the query path needed past its thread's signing budget (not made)",
        &[(Vec::new(), OVER_BUDGET.load(Ordering::Relaxed))],
    )?;
    counter_family(
        e,
        "dnssec_truncated",
        "DO queries answered TC over UDP because their signature was past the budget",
        &[(Vec::new(), OVER_BUDGET_ANSWERS.load(Ordering::Relaxed))],
    )
}

impl Scraped {
    /// The data plane's counters, summed over the workers.
    fn encode_queries(&self, e: &mut DescriptorEncoder, snapshot: &crate::snapshot::Snapshot) -> std::fmt::Result {
        let queries: Vec<(Labels, u64)> = self
            .stats
            .query_rows(&snapshot.slot_names)
            .into_iter()
            .map(|r| (labels(&[("zone", &r.zone), ("qtype", &r.qtype), ("rcode", &r.rcode)]), r.count))
            .collect();
        counter_family(e, "queries", "DNS queries answered, by zone, query type and response code", &queries)?;
        let answers: Vec<(Labels, u64)> =
            self.stats.answers_by_source().into_iter().map(|(s, v)| (labels(&[("source", s)]), v)).collect();
        counter_family(e, "answers", "Answers from zone data, by the source of that data", &answers)?;
        let geo: Vec<(Labels, u64)> = self
            .stats
            .geo_rows(&snapshot.geo_labels)
            .into_iter()
            .map(|(owner, dc, v)| (labels(&[("name", &owner), ("datacenter", &dc)]), v))
            .collect();
        counter_family(
            e,
            "geo_answers",
            "Answers chosen by the client's location, by geo pool or name and the datacenter answered (none: fallback)",
            &geo,
        )?;
        let ecs: Vec<(Labels, u64)> =
            self.stats.ecs_rows().into_iter().map(|(o, v)| (labels(&[("outcome", o)]), v)).collect();
        counter_family(
            e,
            "ecs_queries",
            "Queries with an EDNS Client Subnet option, by outcome (scoped, global, source_prefix_0, malformed, disabled)",
            &ecs,
        )?;
        let cookies: Vec<(Labels, u64)> =
            self.stats.cookie_rows().into_iter().map(|(o, v)| (labels(&[("outcome", o)]), v)).collect();
        counter_family(
            e,
            "cookies",
            "Queries with a DNS COOKIE option, by what it was (client_only, valid, invalid, malformed)",
            &cookies,
        )?;
        let rrl: Vec<(Labels, u64)> = self
            .stats
            .rrl_rows()
            .into_iter()
            .map(|(class, action, v)| (labels(&[("class", class), ("action", action)]), v))
            .collect();
        counter_family(
            e,
            "rrl_limited",
            "UDP responses over the [rrl] rate, by class (answer, nxdomain, error) and action (dropped, slipped: sent truncated, logged: log_only)",
            &rrl,
        )?;
        counter_family(
            e,
            "truncated_responses",
            "Responses sent with TC set",
            &[(Vec::new(), self.stats.truncated())],
        )?;
        counter_family(
            e,
            "udp_send_errors",
            "UDP responses the kernel refused to send (skipped)",
            &[(Vec::new(), self.stats.send_failed())],
        )?;
        for (table, family, help) in [
            (
                &self.stats.tcp_table,
                "tcp",
                "TCP connections: accepted; refused at a cap with every connection busy; evicted (idle, closed to make room)",
            ),
            (&self.stats.tls_table, "tls", "DNS-over-TLS connections, as gslbd_tcp_connections"),
        ] {
            let rows: Vec<(Labels, u64)> =
                table.counts().into_iter().map(|(result, n)| (labels(&[("result", result)]), n)).collect();
            counter_family(e, &format!("{family}_connections"), help, &rows)?;
            let open_help = format!("DNS-over-{} connections open now", family.to_uppercase());
            gauge_family(e, &format!("{family}_open"), &open_help, &[(Vec::new(), table.open() as i64)])?;
        }
        gauge_family(e, "build_info", "Build information", &[(labels(&[("version", env!("CARGO_PKG_VERSION"))]), 1)])?;

        Ok(())
    }

    /// dnstap's counters (with `[log] dnstap`).
    fn encode_dnstap(&self, e: &mut DescriptorEncoder, view: &View) -> std::fmt::Result {
        if view.config.log.dnstap.is_none() {
            return Ok(());
        }
        use std::sync::atomic::Ordering::Relaxed;
        let d = &self.dnstap;
        let messages = [
            (labels(&[("outcome", "written")]), d.written.load(Relaxed)),
            (labels(&[("outcome", "dropped")]), d.dropped.load(Relaxed)),
        ];
        counter_family(
            e,
            "dnstap_messages",
            "dnstap messages written to the receiver, or dropped (queue full, connection lost)",
            &messages,
        )?;
        gauge_family(
            e,
            "dnstap_connected",
            "1 while connected to the dnstap receiver",
            &[(Vec::new(), d.connected.load(Relaxed) as i64)],
        )?;
        gauge_family(
            e,
            "dnstap_queued",
            "dnstap messages waiting for the receiver",
            &[(Vec::new(), d.queued.load(Relaxed) as i64)],
        )?;
        counter_family(
            e,
            "dnstap_connects",
            "Connections to the dnstap receiver that completed the handshake",
            &[(Vec::new(), d.connects.load(Relaxed))],
        )?;
        Ok(())
    }

    /// The cluster exchange's counters and the observations the verdicts counted.
    fn encode_cluster(&self, e: &mut DescriptorEncoder, view: &View) -> std::fmt::Result {
        if view.config.cluster.is_none() {
            return Ok(());
        }
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.cluster;
        gauge_family(
            e,
            "cluster_connected",
            "1 while connected to NATS and watching the bucket",
            &[(Vec::new(), c.connected.load(Relaxed) as i64)],
        )?;
        let obs = [
            (labels(&[("direction", "written")]), c.written.load(Relaxed)),
            (labels(&[("direction", "received")]), c.received.load(Relaxed)),
        ];
        counter_family(e, "cluster_observations", "Health observations written to and received from the bucket", &obs)?;
        counter_family(
            e,
            "cluster_disconnects",
            "Times the NATS connection or the bucket watch was lost",
            &[(Vec::new(), c.disconnects.load(Relaxed))],
        )?;
        let refused: Vec<_> = crate::cluster::gate::Refusal::ALL
            .iter()
            .zip(&c.refused)
            .map(|(why, n)| (labels(&[("reason", why.as_str())]), n.load(Relaxed)))
            .collect();
        counter_family(
            e,
            "cluster_refused",
            "Bucket values ignored: from an instance not in members, unsigned, badly signed or stale",
            &refused,
        )?;
        // Fresh observations per target by what they say, and the targets whose verdict
        // falls back to this instance's own probes, as the last build counted them.
        let mut fresh = Vec::new();
        let fallback = view.health.fallback_targets() as i64;
        for (target, v) in view.health.iter() {
            let up = v.votes.iter().filter(|(_, up)| *up).count() as i64;
            let addr = format!("{}:{}", target.ip, target.check.port);
            fresh.push((labels(&[("target", &addr), ("verdict", "up")]), up));
            fresh.push((labels(&[("target", &addr), ("verdict", "down")]), v.votes.len() as i64 - up));
        }
        gauge_family(
            e,
            "cluster_fresh_observations",
            "Fresh observations of each probe target (this instance's included), by what they say",
            &fresh,
        )?;
        gauge_family(
            e,
            "cluster_fallback_targets",
            "Targets decided by this instance's own probes: NATS unreachable or too few instances observe them",
            &[(Vec::new(), fallback)],
        )?;
        Ok(())
    }
}

/// Per zone: records, serial, controller sync, state files, shadowed records.
fn encode_zones(e: &mut DescriptorEncoder, view: &View, snapshot: &crate::snapshot::Snapshot) -> std::fmt::Result {
    let config = Arc::clone(&view.config);
    let (mut records, mut version, mut errors, mut skipped, mut serials) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let shadowed_now: Vec<(Labels, i64)> = view
        .shadowed_counts()
        .into_iter()
        .map(|(zone, by, now, _)| (labels(&[("zone", &api_zone(&zone)), ("by", by.as_str())]), now as i64))
        .collect();
    let (mut persist_failing, mut persist_errors, mut loaded) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sync_age, mut sync_interval) = (Vec::new(), Vec::new());
    for zone in &config.zones {
        let z = api_zone(&zone.apex);
        records.push((labels(&[("zone", &z), ("source", "static")]), zone.data.record_count() as i64));
        if let Some(st) = view.status(&zone.apex) {
            records.push((labels(&[("zone", &z), ("source", "controller")]), st.records as i64));
            let hash = st.version_hash.clone().unwrap_or_default();
            version.push((labels(&[("zone", &z), ("version_hash", &hash), ("origin", st.origin.as_str())]), 1));
            errors.push((labels(&[("zone", &z), ("kind", "snapshot")]), st.snapshot_errors));
            errors.push((labels(&[("zone", &z), ("kind", "changes")]), st.changes_errors));
            skipped.push((labels(&[("zone", &z)]), st.skipped_records));
            loaded.push((labels(&[("zone", &z)]), view.has_controller_data(&zone.apex) as i64));
            // Seconds since the controller last answered (since start-up before it ever
            // did): an alert compares it with the sync interval.
            let since = st.last_success.unwrap_or(view.started);
            let age = std::time::SystemTime::now().duration_since(since).map_or(0, |d| d.as_secs() as i64);
            sync_age.push((labels(&[("zone", &z)]), age));
        }
        if let Some(zv) = view.zone(&zone.apex).filter(|v| !v.endpoints.is_empty()) {
            records.push((labels(&[("zone", &z), ("source", "externaldns")]), zv.endpoints.len() as i64));
        }
        if let Some(controller) = &zone.controller {
            sync_interval.push((labels(&[("zone", &z)]), controller.sync_interval.as_secs_f64()));
        }
        let zv = view.zone(&zone.apex);
        persist_failing.push((labels(&[("zone", &z)]), zv.is_some_and(|v| v.persist_error.is_some()) as i64));
        persist_errors.push((labels(&[("zone", &z)]), zv.map_or(0, |v| v.persist_failures)));
        if let Some(snap) = snapshot.zone(&zone.apex) {
            serials.push((labels(&[("zone", &z)]), snap.serial() as i64));
        }
    }
    gauge_family(
        e,
        "zone_records",
        "Records per zone and source (controller: names; externaldns: endpoints)",
        &records,
    )?;
    gauge_family(e, "zone_serial", "SOA serial in force", &serials)?;
    gauge_family(e, "controller_version_info", "Controller version hash in force", &version)?;
    counter_family(e, "sync_errors", "Failed controller requests, by zone and kind", &errors)?;
    counter_family(e, "skipped_records", "Invalid controller records skipped", &skipped)?;
    gauge_family(
        e,
        "zone_data_loaded",
        "1 once a controller zone has data (state file or sync); 0: its unknown names get SERVFAIL",
        &loaded,
    )?;
    gauge_family(
        e,
        "sync_age_seconds",
        "Seconds since the zone's controller last answered (since start-up before it ever did)",
        &sync_age,
    )?;
    gauge_family(
        e,
        "sync_interval_seconds",
        "The zone's configured controller poll interval (an alert compares the sync age with it)",
        &sync_interval,
    )?;
    gauge_family(
        e,
        "persist_failing",
        "1 while the zone's state-file writes fail or its push journal refuses pushes",
        &persist_failing,
    )?;
    counter_family(e, "persist_errors", "Failed state-file writes and refused journal writes", &persist_errors)?;
    gauge_family(
        e,
        "shadowed_records",
        "Controller/webhook name+type pairs DNS does not answer now, by zone and what wins (static, pool, delegation)",
        &shadowed_now,
    )?;
    Ok(())
}

/// Pool members by role: healthy (the verdict DNS answers with) and all.
fn encode_pools(e: &mut DescriptorEncoder, view: &View) -> std::fmt::Result {
    let mut members = Vec::new();
    let health = &view.health;
    for zone in &view.config.zones {
        for pool in &zone.pools {
            let name = pool.name.to_dotless();
            for (role, label) in
                [(crate::config::Role::Primary, "primary"), (crate::config::Role::Secondary, "secondary")]
            {
                let of_role: Vec<_> = pool.members.iter().filter(|m| m.role == role).collect();
                if of_role.is_empty() {
                    continue;
                }
                let healthy = of_role
                    .iter()
                    .filter(|m| {
                        let ips = m.ipv4.iter().map(|&ip| ip.into()).chain(m.ipv6.iter().map(|&ip| ip.into()));
                        ips.into_iter().any(|ip: std::net::IpAddr| health.is_up(ip, &m.check, pool.quorum))
                    })
                    .count();
                members.push((labels(&[("pool", &name), ("role", label), ("state", "healthy")]), healthy as i64));
                members.push((labels(&[("pool", &name), ("role", label), ("state", "total")]), of_role.len() as i64));
                // Operators' drains and disables (a drained member may still count as healthy).
                for admin in [AdminState::Drained, AdminState::Disabled] {
                    let set =
                        of_role.iter().filter(|m| view.member_states.of(&pool.name, &m.id) == Some(admin)).count();
                    members.push((labels(&[("pool", &name), ("role", label), ("state", admin.as_str())]), set as i64));
                }
            }
        }
    }
    gauge_family(e, "pool_members", "Pool members by role: healthy, drained and disabled ones, and all", &members)
}

/// Build failures and shadowed records summed over builds.
fn encode_builds(e: &mut DescriptorEncoder, view: &View) -> std::fmt::Result {
    let mut shadowed_total = Vec::new();
    for (zone, by, _, total) in view.shadowed_counts() {
        shadowed_total.push((labels(&[("zone", &api_zone(&zone)), ("by", by.as_str())]), total));
    }
    counter_family(
        e,
        "build_failures",
        "Builds that failed (the previous snapshot kept serving)",
        &[(Vec::new(), view.build_failures)],
    )?;
    counter_family(
        e,
        "shadowed",
        "Controller/webhook name+type pairs not answered, summed over builds (one log line per build)",
        &shadowed_total,
    )?;
    Ok(())
}
