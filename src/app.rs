//! Process lifecycle, in one place and in the order the code runs it.
//!
//! Start: load and validate the config → build the runtime → install the signal handlers (a
//! SIGTERM from here on stops cleanly) → bind the DNS sockets (UDP, TCP, DNS over TLS with
//! its certificate) and the admin listener, so a bad address fails at once → load the state
//! files and journals on a blocking thread → start the builder (first snapshot) and its
//! state-file writer → start dnstap → serve the admin API → start the controller syncs, the
//! probes and the cluster exchange → hold DNS until every controller zone has data or its
//! `timeout` passed → start the UDP workers and TCP/DoT acceptors and log `listening` (the
//! moment `dig` gets answers) → tell systemd READY → watch the location-map files.
//!
//! Run: SIGHUP (or a changed map file) re-reads the config and swaps a valid one in
//! (restarting the syncs, probes and exchange), keeping the old one on any error. Stop
//! (SIGTERM/SIGINT): stop accepting and syncing, let TCP answers in flight finish (bounded by
//! [`DRAIN_DEADLINE`]), join the UDP workers, close the dnstap stream, stop the builder and
//! let the writer flush, exit 0.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::AdminListener;
use crate::builder::state::State;
use crate::builder::{Builder, BuilderHandle, Event};
use crate::config::{self, Config};
use crate::health::Observations;
use crate::metrics::Metrics;
use crate::server::{self, tcp, udp};
use crate::sources::controller;
use crate::sources::controller::client::error_chain;

/// Longest wait for TCP answers in flight at shutdown; the whole stop stays under 2 s.
pub const DRAIN_DEADLINE: Duration = Duration::from_millis(1500);

/// The whole stop, from SIGTERM to exit: the README promises 2 s.
pub const STOP_DEADLINE: Duration = Duration::from_millis(1900);

/// Of [`STOP_DEADLINE`], what is kept for the builder after the dnstap stream's close.
const BUILDER_STOP: Duration = Duration::from_millis(150);

/// Why the server could not start, or a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The config file is invalid (each error names file, line and key).
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    /// A step of the start-up failed.
    #[error("{what}: {source}")]
    Io {
        /// The step.
        what: &'static str,
        /// Its error.
        #[source]
        source: std::io::Error,
    },
    /// DNS over TLS cannot start with its certificate.
    #[error("DNS over TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The admin API cannot start.
    #[error(transparent)]
    Admin(#[from] crate::admin::BindError),
    /// `gslbd probe`: the admin API did not say yes.
    #[error("{0}")]
    Probe(String),
}

/// Names the start-up step an I/O error comes from.
trait Step<T> {
    fn step(self, what: &'static str) -> Result<T, AppError>;
}

impl<T> Step<T> for std::io::Result<T> {
    fn step(self, what: &'static str) -> Result<T, AppError> {
        self.map_err(|source| AppError::Io { what, source })
    }
}

/// Runs the server until SIGTERM or SIGINT.
pub fn run(config_path: &Path) -> Result<(), AppError> {
    let config = config::load(config_path)?;
    // Stamped as read, before anything serves: a file replaced while the server starts is
    // a change the watcher sees, not its starting point.
    let geo_stamps = geo_stamps(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("gslbd-rt")
        .enable_all()
        .build()
        .step("starting the async runtime")?;
    let _enter = runtime.enter();
    // Handlers first: a SIGTERM while state files load, or a SIGHUP once we say
    // "listening", must not kill us.
    let mut hup = signal(SignalKind::hangup()).step("installing the signal handlers")?;
    let mut term = signal(SignalKind::terminate()).step("installing the signal handlers")?;
    let mut int = signal(SignalKind::interrupt()).step("installing the signal handlers")?;
    // Bound now so a bad address fails at once; answered only once the data is loaded.
    let bound = server::bind(&config.server.listen, config.server.udp_workers).step("binding the DNS listeners")?;
    let bound_tls = server::bind_tls(&config.server.tls_listen).step("binding the DNS-over-TLS listeners")?;
    let dot_config: Option<tcp::TlsConfig> = match &config.server.tls {
        Some((cert, key)) => Some(Arc::new(arc_swap::ArcSwap::new(crate::tls::server_config(cert, key, &[b"dot"])?))),
        None => None,
    };
    let admin = config.admin.as_ref().map(AdminListener::bind).transpose()?;
    let externaldns = config
        .externaldns
        .as_ref()
        .map(crate::admin::externaldns::ExternalDnsListener::bind)
        .transpose()
        .step("binding the ExternalDNS provider")?;

    // Reading big state files takes a while; a stop request meanwhile ends the process cleanly.
    let health = Observations::default();
    let observations = health.clone();
    let loading = tokio::task::spawn_blocking(move || State::new(config, observations));
    let loaded = runtime.block_on(async {
        tokio::select! {
            r = loading => Some(r),
            _ = term.recv() => None,
            _ = int.recv() => None,
        }
    });
    let Some(loaded) = loaded else {
        tracing::info!("stop requested while loading the state files; stopped");
        runtime.shutdown_background();
        return Ok(());
    };
    let state = loaded.map_err(std::io::Error::other).step("loading the state files")?;
    let config = state.config();
    let builder = Builder::spawn(state).step("starting the builder")?;
    let handle = builder.handle();
    let stats = Arc::new(crate::server::stats::Stats::default());
    let metrics = Arc::new(Metrics::new(Arc::clone(&stats), handle.clone()));

    let (tap, tap_writer) = match &config.log.dnstap {
        Some(d) => {
            let options = crate::dnstap::Options {
                sink: match &d.sink {
                    config::log::Sink::Unix(path) => crate::dnstap::Sink::Unix(path.clone()),
                    config::log::Sink::Tcp(addr) => crate::dnstap::Sink::Tcp(addr.clone()),
                },
                identity: d.identity.clone(),
                version: d.version.clone(),
                queue: d.queue,
            };
            let (tap, writer) = crate::dnstap::start(options, Arc::clone(&metrics.dnstap)).step("starting dnstap")?;
            (Some(tap), Some(writer))
        }
        None => (None, None),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    // Drains and disables made here go to the other instances (with `[cluster]`).
    let (share, outbox) = crate::cluster::members::channel();
    if let Some(admin) = admin {
        let addr = admin.local_addr().step("reading the admin address")?;
        let scheme = if admin.is_tls() { "https" } else { "http" };
        let share = config.cluster.is_some().then_some(share);
        runtime.spawn(admin.serve(handle.clone(), Arc::clone(&metrics), share, shutdown.clone()));
        tracing::info!(addr = %addr, scheme, "admin API listening");
    }
    if let Some(provider) = externaldns {
        let addr = provider.local_addr().step("reading the ExternalDNS provider's address")?;
        runtime.spawn(provider.serve(handle.clone(), Arc::clone(&metrics), shutdown.clone()));
        tracing::info!(addr = %addr, "ExternalDNS webhook provider listening");
    }
    let mut syncs = start_syncs(&config, &handle, &metrics, &shutdown);
    let mut probes = start_probes(&config, &handle, &health, &metrics, &outbox, &shutdown);

    let held = runtime.block_on(async {
        tokio::select! {
            () = hold_until_loaded(&config, &handle) => true,
            _ = term.recv() => false,
            _ = int.recv() => false,
        }
    });
    if !held {
        tracing::info!("stop requested while waiting for the controllers; stopped");
        shutdown.cancel();
        runtime.shutdown_timeout(Duration::from_millis(100));
        builder.stop(std::time::Instant::now() + STOP_DEADLINE);
        return Ok(());
    }

    // Rate-limiting accounts outlive every snapshot and reload.
    let rrl = Arc::new(crate::server::rrl::RrlTable::default());
    let mut threads = Vec::new();
    for b in bound {
        let workers = b.udp.len();
        threads.extend(
            udp::spawn_workers(b.udp, handle.snapshot(), &stats, &stop, tap.as_ref(), &rrl)
                .step("starting the UDP workers")?,
        );
        let listener = tokio::net::TcpListener::from_std(b.tcp).step("listening for DNS over TCP")?;
        runtime.spawn(tcp::serve(
            listener,
            handle.snapshot().clone(),
            Arc::clone(&stats),
            shutdown.clone(),
            tracker.clone(),
            tap.clone(),
            None,
        ));
        tracing::info!(addr = %b.addr, udp_workers = workers, "listening");
    }
    if let Some(dot) = &dot_config {
        for (addr, l) in bound_tls {
            let listener = tokio::net::TcpListener::from_std(l).step("listening for DNS over TLS")?;
            runtime.spawn(tcp::serve(
                listener,
                handle.snapshot().clone(),
                Arc::clone(&stats),
                shutdown.clone(),
                tracker.clone(),
                tap.clone(),
                Some(Arc::clone(dot)),
            ));
            tracing::info!(addr = %addr, "listening for DNS over TLS");
        }
    }
    // NOTIFY to the secondaries of zones with `also_notify`, on every new serial.
    runtime.spawn(crate::xfr::notify::run(handle.snapshot().clone(), shutdown.clone()));
    for zone in &config.zones {
        tracing::info!(zone = %zone.apex, records = zone.data.record_count(), "serving zone");
    }
    // Every listener answers now: a Type=notify unit becomes active.
    crate::notify::notify(&format!(
        "READY=1\nSTATUS=serving {} zones\nMAINPID={}",
        config.zones.len(),
        std::process::id()
    ));

    let mut geo_files = runtime.block_on(async { watch_geo_files(handle.clone(), geo_stamps, shutdown.clone()) });
    runtime.block_on(async {
        loop {
            tokio::select! {
                Some(file) = geo_files.recv() => {
                    tracing::info!(file = %file.display(), "location data changed; reloading the config");
                    if let Some(config) = reload(config_path, &handle).await {
                        syncs.cancel();
                        probes.cancel();
                        syncs = start_syncs(&config, &handle, &metrics, &shutdown);
                        probes = start_probes(&config, &handle, &health, &metrics, &outbox, &shutdown);
                    }
                }
                _ = hup.recv() => {
                    if let Some(config) = reload(config_path, &handle).await {
                        reload_dot(&config, dot_config.as_ref());
                        syncs.cancel();
                        probes.cancel();
                        syncs = start_syncs(&config, &handle, &metrics, &shutdown);
                        probes = start_probes(&config, &handle, &health, &metrics, &outbox, &shutdown);
                    }
                }
                _ = term.recv() => { tracing::info!("SIGTERM received, stopping"); break }
                _ = int.recv() => { tracing::info!("SIGINT received, stopping"); break }
            }
        }
    });

    crate::notify::notify("STOPPING=1");
    // Every wait below ends by this deadline, whatever a client, receiver or disk does.
    let stop_by = std::time::Instant::now() + STOP_DEADLINE;
    stop.store(true, Ordering::Relaxed);
    shutdown.cancel();
    tracker.close();
    if runtime.block_on(tokio::time::timeout(DRAIN_DEADLINE, tracker.wait())).is_err() {
        tracing::warn!("TCP connections still busy at the drain deadline; closing them");
    }
    for t in threads {
        let _ = t.join();
    }
    runtime.shutdown_timeout(Duration::from_millis(100));
    // The answers given are all logged: the dnstap stream is closed (STOP, FINISH) last.
    drop(tap);
    if let Some(writer) = tap_writer {
        writer.stop(stop_by - BUILDER_STOP);
    }
    // Pushes acknowledged in the last second may still be waiting for their state-file
    // write; one not written by the deadline is in the journal and replayed at start.
    builder.stop(stop_by);
    tracing::info!("stopped");
    Ok(())
}

/// How often the start-up hold looks at the controller zones again.
const HOLD_POLL: Duration = Duration::from_millis(10);

/// Waits until every controller zone has data (from its state file or its first sync) or its
/// controller `timeout` has passed since start-up. Answering earlier would tell resolvers
/// that names we simply have not loaded yet do not exist, and they would cache that.
async fn hold_until_loaded(config: &Config, builder: &BuilderHandle) {
    let started = tokio::time::Instant::now();
    let waiting = || -> Vec<(crate::dns::name::Name, Duration)> {
        let view = builder.view();
        config
            .zones
            .iter()
            .filter_map(|z| z.controller.as_ref().map(|c| (z, c.timeout)))
            .filter(|(z, _)| !view.has_controller_data(&z.apex))
            .map(|(z, t)| (z.apex.clone(), t))
            .collect()
    };
    let first = waiting();
    if first.is_empty() {
        return;
    }
    let names: Vec<String> = first.iter().map(|(z, _)| z.to_string()).collect();
    tracing::info!(zones = %names.join(", "), "holding DNS until these zones have controller data or their timeout passes");
    loop {
        let pending = waiting();
        let elapsed = started.elapsed();
        if pending.iter().all(|(_, timeout)| elapsed >= *timeout) {
            for (zone, timeout) in &pending {
                tracing::warn!(
                    zone = %zone,
                    timeout = %humantime::format_duration(*timeout),
                    "no controller data yet; answering SERVFAIL for names only the controller can answer until the first sync"
                );
            }
            return;
        }
        tokio::time::sleep(HOLD_POLL).await;
    }
}

/// Starts one controller sync task per zone that has a controller; they stop when the
/// returned token (a child of `shutdown`) is cancelled.
fn start_syncs(
    config: &Config,
    builder: &BuilderHandle,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> CancellationToken {
    let token = shutdown.child_token();
    for zone in &config.zones {
        if let Some(cfg) = &zone.controller {
            let task = controller::run(
                zone.apex.clone(),
                zone.default_ttl,
                cfg.clone(),
                builder.clone(),
                Arc::clone(metrics),
                token.clone(),
            );
            tokio::spawn(task);
        }
    }
    token
}

/// Starts the health probes of every pool member; they stop with the returned token.
fn start_probes(
    config: &Config,
    builder: &BuilderHandle,
    health: &Observations,
    metrics: &Arc<Metrics>,
    outbox: &crate::cluster::members::Outbox,
    shutdown: &CancellationToken,
) -> CancellationToken {
    let token = shutdown.child_token();
    let changed: Arc<dyn Fn() + Send + Sync> = {
        let builder = builder.clone();
        Arc::new(move || builder.send(Event::HealthChanged))
    };
    let source = config.cluster.as_ref().and_then(|c| c.probe_source);
    crate::probes::start(
        crate::health::members_by_target(config),
        source,
        health,
        Arc::clone(metrics),
        Arc::clone(&changed),
        token.clone(),
    );
    if let Some(cluster) = &config.cluster {
        let builder = builder.clone();
        let apply: crate::cluster::members::Apply = Arc::new(move |selector, wanted, by| {
            // Nobody waits for the reply: the change is the other instance's.
            let (reply, _) = tokio::sync::oneshot::channel();
            builder.send(Event::MemberStates { selector, wanted, by, reply });
        });
        crate::cluster::members::start(cluster.clone(), Arc::clone(outbox), apply, token.clone());
    }
    match &config.cluster {
        Some(cluster) => crate::cluster::start(
            cluster.clone(),
            crate::health::targets(config),
            crate::health::probers(config),
            crate::cluster::Wiring {
                observations: health.clone(),
                stats: Arc::clone(&metrics.cluster),
                changed,
                stop: token.clone(),
            },
        ),
        None => {
            health.cluster.store(None);
            changed();
        }
    }
    token
}

/// How often the files location maps were read from (`nets_file`, `mmdb`) are looked at.
const GEO_WATCH: Duration = Duration::from_secs(1);

/// Watches the files the current config's location maps were read from; sends a file's
/// path when its size or modification time changes (or it appears or goes away), so the
/// config is reloaded: a good file then serves, a bad one is an error in the log and the
/// data read before keeps serving.
fn watch_geo_files(
    builder: BuilderHandle,
    mut seen: GeoStamps,
    shutdown: CancellationToken,
) -> tokio::sync::mpsc::Receiver<PathBuf> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let config = Arc::clone(&builder.view().config);
            let files: Vec<PathBuf> = geo_files(&config);
            seen.retain(|p, _| files.contains(p));
            for file in files {
                let now = tokio::task::spawn_blocking({
                    let file = file.clone();
                    move || stamp(&file)
                })
                .await
                .unwrap_or(None);
                let changed = seen.insert(file.clone(), now).is_some_and(|before| before != now);
                if changed && tx.send(file).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(GEO_WATCH) => {}
            }
        }
    });
    rx
}

/// A file's size and modification time (`None`: it cannot be read).
type Stamp = Option<(u64, Option<std::time::SystemTime>)>;

/// The stamps of the files location maps were read from.
type GeoStamps = std::collections::HashMap<PathBuf, Stamp>;

fn stamp(p: &Path) -> Stamp {
    std::fs::metadata(p).ok().map(|m| (m.len(), m.modified().ok()))
}

fn geo_files(config: &Config) -> Vec<PathBuf> {
    config.geo.maps.iter().flat_map(|m| m.files()).map(Path::to_path_buf).collect()
}

fn geo_stamps(config: &Config) -> GeoStamps {
    geo_files(config).into_iter().map(|f| (f.clone(), stamp(&f))).collect()
}

/// Loads the DNS-over-TLS certificate again (SIGHUP): new connections use it; on any error
/// the one in force stays.
fn reload_dot(config: &Config, dot: Option<&tcp::TlsConfig>) {
    let (Some(dot), Some((cert, key))) = (dot, &config.server.tls) else { return };
    match crate::tls::server_config(cert, key, &[b"dot"]) {
        Ok(next) => {
            dot.store(next);
            tracing::info!(cert = %cert.display(), "DNS over TLS certificate reloaded");
        }
        Err(e) => tracing::error!(error = %e, "DNS over TLS certificate not reloaded; the old one stays"),
    }
}

/// Re-reads the config; a valid one is swapped in (returned once it serves), an invalid one
/// is logged and ignored.
async fn reload(path: &Path, builder: &BuilderHandle) -> Option<Arc<Config>> {
    crate::notify::notify("RELOADING=1");
    let reloaded = reload_config(path, builder).await;
    crate::notify::notify("READY=1");
    reloaded
}

async fn reload_config(path: &Path, builder: &BuilderHandle) -> Option<Arc<Config>> {
    match config::load(path) {
        Ok(next) => {
            let current = builder.view().config.clone();
            if next.server.listen != current.server.listen
                || next.server.udp_workers != current.server.udp_workers
                || next.server.tls_listen != current.server.tls_listen
                || next.server.tls.is_some() != current.server.tls.is_some()
            {
                tracing::warn!(
                    "server.listen, udp_workers and tls_listen changes take effect on restart; listeners kept"
                );
            }
            // The filters are read per query; the connection's settings are the writer's.
            let connection = |c: &Config| {
                c.log.dnstap.as_ref().map(|d| (d.sink.clone(), d.identity.clone(), d.version.clone(), d.queue))
            };
            let (before, after) = (connection(&current), connection(&next));
            if before.is_some() && after.is_some() && before != after || before.is_none() && after.is_some() {
                tracing::warn!(
                    "log.dnstap sink, identity, version and queue changes take effect on restart; the filters apply now"
                );
            }
            let zones = next.zones.len();
            builder.reload(next).await;
            tracing::info!(zones, "config reloaded");
            Some(builder.view().config.clone())
        }
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!(error = %e, "config reload rejected; the old config keeps serving");
            }
            None
        }
    }
}

/// `gslbd explain`: answers `question` offline from the config and the state directory (read
/// only), with every member in its check's initial state, and says why.
pub fn explain(config_path: &Path, question: &crate::explain::Question) -> Result<serde_json::Value, AppError> {
    let config = config::load(config_path)?;
    let state = State::read_only(config, Observations::default());
    let snapshot = state.handle().load();
    let config = state.config();
    let view = state.view();
    let mut v = crate::explain::explain(&snapshot, &config, &view.health, &view.member_states, question);
    v["offline"] = serde_json::json!(
        "answered from the config and the state directory; members are in their checks' initial state (GET /explain on a running server has live health and data)"
    );
    Ok(v)
}

/// `gslbd probe`: one GET of `url` within 3 s; `Ok` on HTTP 200, else why not.
pub fn probe_url(url: &str, insecure: bool) -> Result<(), AppError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().step("starting the runtime")?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(insecure)
            .timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| AppError::Probe(format!("cannot build the HTTP client: {e}")))?;
        let resp =
            client.get(url).send().await.map_err(|e| AppError::Probe(format!("GET {url}: {}", error_chain(&e))))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if status != reqwest::StatusCode::OK {
            return Err(AppError::Probe(format!("{url}: HTTP {status}: {}", body.trim())));
        }
        Ok(())
    })
}

/// Loads a config and describes it for `gslbd check`.
pub fn check(config_path: &Path) -> Result<String, config::ConfigErrors> {
    let config = config::load(config_path)?;
    Ok(summary(&config))
}

fn summary(config: &Config) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", PathBuf::from(&config.path).display());
    let listen: Vec<String> = config.server.listen.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(
        out,
        "listen: {} (UDP and TCP; {} UDP workers per address)",
        listen.join(", "),
        config.server.udp_workers
    );
    for zone in &config.zones {
        let names = zone.data.nodes.len();
        let _ = writeln!(
            out,
            "zone {}: {} records at {} names, default TTL {}s",
            zone.apex.to_dotless(),
            zone.data.record_count(),
            names,
            zone.default_ttl
        );
        if !zone.pools.is_empty() {
            let members: usize = zone.pools.iter().map(|p| p.members.len()).sum();
            let _ = writeln!(out, "  pools: {} with {members} members", zone.pools.len());
        }
        if let Some(c) = &zone.controller {
            let _ =
                writeln!(out, "  controller: {}, every {}", c.endpoint, humantime::format_duration(c.sync_interval));
        }
    }
    out
}
