//! Replicas that agree: three gslbd instances share their health observations through a real
//! nats-server (JetStream key-value) on 127.0.0.1; each probes from its own loopback address,
//! and a health endpoint that fails for some of them shows the quorum at work.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use hickory_proto::rr::RecordType;

use crate::admin_client::{Client, admin_section};
use crate::harness::*;

/// A nats-server with JetStream on 127.0.0.1, a random port and a temporary store.
pub struct Nats {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    _store: tempfile::TempDir,
}

impl Nats {
    /// Starts it on a random port and waits until it listens.
    pub fn start() -> Nats {
        Nats::start_on("-1")
    }

    /// Starts it on `port` (`-1`: any).
    pub fn start_on(port: &str) -> Nats {
        Nats::start_with(&["-js", "-a", "127.0.0.1", "-p", port])
    }

    /// Starts it with these arguments (and a temporary store).
    pub fn start_with(args: &[&str]) -> Nats {
        let store = tempfile::tempdir().unwrap();
        // Debian puts it in /usr/sbin, which a non-root PATH may lack.
        let bin = if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let mut child = Command::new(bin)
            .args(args)
            .arg("-sd")
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server is installed (.ci/run installs Debian's nats-server)");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut said = Vec::new();
        let url = loop {
            let line =
                lines.next().unwrap_or_else(|| panic!("nats-server did not start:\n{}", said.join("\n"))).unwrap();
            said.push(line.clone());
            if let Some(addr) = line.split("Listening for client connections on ").nth(1) {
                break format!("nats://{}", addr.trim());
            }
            assert!(!line.contains("[FTL]"), "nats-server did not start: {line}");
        };
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Nats { child, url, _store: store }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `/health` endpoint on `ip` that answers 503 to probes from the addresses in `failing`.
struct Picky {
    failing: Arc<Mutex<HashSet<String>>>,
    /// The source address of every request, with its time.
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    _rt: tokio::runtime::Runtime,
}

type PickyState = (Arc<Mutex<HashSet<String>>>, Arc<Mutex<Vec<(Instant, String)>>>);

impl Picky {
    fn start(ip: &str) -> (Picky, u16) {
        let failing: Arc<Mutex<HashSet<String>>> = Arc::default();
        let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind(format!("{ip}:0"))).unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route(
                "/health",
                axum::routing::get(
                    |State((f, seen)): State<PickyState>, ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                        seen.lock().unwrap().push((Instant::now(), peer.ip().to_string()));
                        if f.lock().unwrap().contains(&peer.ip().to_string()) {
                            (StatusCode::SERVICE_UNAVAILABLE, "no")
                        } else {
                            (StatusCode::OK, "ok")
                        }
                    },
                ),
            )
            .with_state((Arc::clone(&failing), Arc::clone(&seen)));
        rt.spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await });
        (Picky { failing, seen, _rt: rt }, port)
    }

    /// The addresses that probed during the last `window`.
    fn probed_from(&self, window: Duration) -> HashSet<String> {
        let since = Instant::now() - window;
        self.seen.lock().unwrap().iter().filter(|(t, _)| *t >= since).map(|(_, ip)| ip.clone()).collect()
    }

    fn fail_for(&self, sources: &[&str]) {
        *self.failing.lock().unwrap() = sources.iter().map(|s| s.to_string()).collect();
    }
}

/// An instance named `name` probing from `source`, with two pools on the same member:
/// `maj` (quorum majority, the default) and `all` (quorum all).
fn instance(nats: &Nats, name: &str, source: &str, port: u16) -> Server {
    let pools = format!(
        "[[zone.pool]]\nname = \"maj\"\nwhen_all_down = \"nodata\"\n\
         [zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"m\"\nipv4 = [\"127.0.0.2\"]\n\
         [[zone.pool]]\nname = \"all\"\nquorum = \"all\"\nwhen_all_down = \"nodata\"\n\
         [zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"m\"\nipv4 = [\"127.0.0.2\"]\n"
    );
    instance_with(nats, name, source, &pools)
}

/// An instance named `name` probing from `source` with these pools.
fn instance_with(nats: &Nats, name: &str, source: &str, pools: &str) -> Server {
    instance_full(nats, name, source, "", pools)
}

/// [`instance_with`] with more `[cluster]` keys.
fn instance_full(nats: &Nats, name: &str, source: &str, cluster: &str, pools: &str) -> Server {
    let zone = format!(
        "{}[cluster]\nnats = [\"{}\"]\ninstance = \"{name}\"\nprobe_source = \"{source}\"\nobservation_ttl = \"3s\"\n{cluster}\n\
         [[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\nrecords = \"ns1 60 IN A 127.0.0.1\\n\"\n{pools}",
        admin_section(""),
        nats.url
    );
    // A shared key for the configs that ask for one (`key = "${GSLBD_TEST_CLUSTER_KEY}"`).
    Server::start_with_env(&config("", &zone), &[("GSLBD_TEST_CLUSTER_KEY", "cluster-key-from-the-environment")])
}

/// Polls until every server's answer for `name` is `want` (empty: NODATA).
fn all_answer(servers: &[&Server], name: &str, want: &[&str]) {
    let end = Instant::now() + DEADLINE;
    loop {
        let got: Vec<Vec<String>> = servers.iter().map(|s| answers(&s.udp(&query(name, RecordType::A)))).collect();
        if got.iter().all(|g| g == want) {
            return;
        }
        assert!(Instant::now() < end, "{name}: want {want:?} everywhere, got {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A target failing for one instance of three: the majority says healthy, so all three
/// answer it; quorum "all" answers it nowhere. Failing for two of three: nobody answers it.
/// /health says the cluster is ok; NATS stopped: each instance decides alone and says
/// `cluster: "degraded"`, DNS still answering.
#[test]
fn three_instances_agree_by_quorum() {
    let nats = Nats::start();
    let (picky, port) = Picky::start("127.0.0.2");
    let a = instance(&nats, "a", "127.0.0.11", port);
    let b = instance(&nats, "b", "127.0.0.12", port);
    let c = instance(&nats, "c", "127.0.0.13", port);
    let all = [&a, &b, &c];
    all_answer(&all, "maj.gslb.example.org.", &["127.0.0.2"]);
    all_answer(&all, "all.gslb.example.org.", &["127.0.0.2"]);
    for s in all {
        let end = Instant::now() + DEADLINE;
        loop {
            let health = Client::for_server(s).call("GET", "/health", None, None).1;
            if health["cluster"] == "ok" {
                break;
            }
            assert!(Instant::now() < end, "never connected: {health}\n{}", s.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let health = Client::for_server(&a).call("GET", "/health", None, None).1;
    assert_eq!(health["cluster_instance"], "a");

    picky.fail_for(&["127.0.0.11"]);
    // a sees it down itself; "all" pools drop it everywhere, "majority" pools keep it.
    a.wait_log("health state changed").expect("a's own probe fails");
    all_answer(&all, "all.gslb.example.org.", &[]);
    all_answer(&all, "maj.gslb.example.org.", &["127.0.0.2"]);
    // /records on a: the verdict, the quorum and every instance's observation.
    let auth = Some(("X-Elchi-Secret", crate::admin_client::ADMIN_SECRET));
    let (_, recs) = Client::for_server(&a).call("GET", "/records?name=maj", auth, None);
    let m = recs["records"].as_array().unwrap().iter().find(|r| r["member"] == "m").expect("the member").clone();
    assert_eq!((m["health"].as_str(), m["quorum"].as_str()), (Some("up"), Some("majority")), "{m}");
    let said: Vec<(String, String, bool)> = m["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["instance"].as_str().unwrap().to_string(),
                o["health"].as_str().unwrap().to_string(),
                o["counted"] == true,
            )
        })
        .collect();
    assert_eq!(
        said,
        [("a".into(), "down".into(), true), ("b".into(), "up".into(), true), ("c".into(), "up".into(), true)],
        "{m}"
    );

    picky.fail_for(&["127.0.0.11", "127.0.0.12"]);
    let started = Instant::now();
    all_answer(&all, "maj.gslb.example.org.", &[]);
    // Within 2 × interval × fall + 1 s (200 ms interval, fall 1 here).
    assert!(started.elapsed() < Duration::from_millis(2 * 200 + 1000), "took {:?}", started.elapsed());

    picky.fail_for(&[]);
    all_answer(&all, "maj.gslb.example.org.", &["127.0.0.2"]);
    all_answer(&all, "all.gslb.example.org.", &["127.0.0.2"]);

    // NATS gone: local verdicts, reported; c's own probes fail, only c stops answering.
    drop(nats);
    let end = Instant::now() + DEADLINE;
    while Client::for_server(&a).call("GET", "/health", None, None).1["cluster"] != "degraded" {
        assert!(Instant::now() < end, "the lost NATS connection is never reported");
        std::thread::sleep(Duration::from_millis(50));
    }
    picky.fail_for(&["127.0.0.13"]);
    all_answer(&[&a, &b], "maj.gslb.example.org.", &["127.0.0.2"]);
    all_answer(&[&c], "maj.gslb.example.org.", &[]);
    let metrics = Client::for_server(&a).text("/metrics");
    assert!(metrics.contains("gslbd_cluster_connected 0"), "{metrics}");
    assert!(metrics.contains("gslbd_cluster_fallback_targets 1"), "{metrics}");
    assert!(metrics.contains("gslbd_cluster_fresh_observations{target=\"127.0.0.2:"), "{metrics}");
    assert!(
        metrics.lines().any(|l| l.starts_with("gslbd_cluster_observations_total{direction=\"received\"}")),
        "{metrics}"
    );
}

/// Waits until `s` says its cluster connection is up.
fn connected(s: &Server) {
    let end = Instant::now() + DEADLINE;
    while Client::for_server(s).call("GET", "/health", None, None).1["cluster"] != "ok" {
        assert!(Instant::now() < end, "never connected:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `probers = 1`: of three instances exactly one probes the target, and when it stops, a
/// different one takes over within the observation TTL (3 s here); every instance keeps
/// answering the member from the prober's observations.
#[test]
fn probers_limit_who_probes_and_hand_over() {
    let nats = Nats::start();
    let (picky, port) = Picky::start("127.0.0.2");
    let pool = format!(
        "[[zone.pool]]\nname = \"one\"\nprobers = 1\nwhen_all_down = \"nodata\"\n\
         [zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"m\"\nipv4 = [\"127.0.0.2\"]\n"
    );
    let sources = ["127.0.0.21", "127.0.0.22", "127.0.0.23"];
    let mut servers: Vec<Option<Server>> =
        sources.iter().zip(["a", "b", "c"]).map(|(src, name)| Some(instance_with(&nats, name, src, &pool))).collect();
    for s in servers.iter().flatten() {
        connected(s);
    }
    // Once every instance has seen the others' heartbeats, one address alone probes.
    let end = Instant::now() + DEADLINE;
    let prober = loop {
        std::thread::sleep(Duration::from_millis(1200));
        let from = picky.probed_from(Duration::from_millis(1000));
        if from.len() == 1 {
            break from.into_iter().next().unwrap();
        }
        assert!(Instant::now() < end, "never a single prober: {from:?}");
    };
    let live: Vec<&Server> = servers.iter().flatten().collect();
    all_answer(&live, "one.gslb.example.org.", &["127.0.0.2"]);
    // The prober's failure is everybody's verdict.
    picky.fail_for(&[prober.as_str()]);
    all_answer(&live, "one.gslb.example.org.", &[]);
    picky.fail_for(&[]);
    all_answer(&live, "one.gslb.example.org.", &["127.0.0.2"]);
    // Stop it: another instance takes over within the TTL.
    let gone = sources.iter().position(|s| *s == prober).unwrap();
    drop(servers[gone].take());
    let stopped = Instant::now();
    let end = stopped + DEADLINE;
    let next = loop {
        std::thread::sleep(Duration::from_millis(200));
        let from = picky.probed_from(Duration::from_millis(400));
        if let Some(ip) = from.iter().find(|ip| **ip != prober) {
            break ip.clone();
        }
        assert!(Instant::now() < end, "nobody took over");
    };
    assert!(stopped.elapsed() < Duration::from_millis(3000 + 1000), "took over after {:?}", stopped.elapsed());
    assert_ne!(next, prober);
    let live: Vec<&Server> = servers.iter().flatten().collect();
    all_answer(&live, "one.gslb.example.org.", &["127.0.0.2"]);
}

/// An instance that stops: its observations expire after the TTL and the quorum is counted
/// over the two left (one of which fails, so a majority of two is gone). NATS restarted on
/// the same address: the instances reconnect and share again.
#[test]
fn a_stopped_instance_expires_and_nats_comes_back() {
    let nats = Nats::start();
    let port_of_nats = nats.url.rsplit(':').next().unwrap().to_string();
    let (picky, port) = Picky::start("127.0.0.2");
    let a = instance(&nats, "a", "127.0.0.31", port);
    let b = instance(&nats, "b", "127.0.0.32", port);
    let c = instance(&nats, "c", "127.0.0.33", port);
    for s in [&a, &b, &c] {
        connected(s);
    }
    all_answer(&[&a, &b, &c], "maj.gslb.example.org.", &["127.0.0.2"]);
    // b fails; a, c say up: 2 of 3. Stop c: its "up" counts until the TTL, then a and b
    // are left, 1 of 2, not a majority.
    picky.fail_for(&["127.0.0.32"]);
    all_answer(&[&a, &b], "all.gslb.example.org.", &[]);
    all_answer(&[&a, &b], "maj.gslb.example.org.", &["127.0.0.2"]);
    drop(c);
    let stopped = Instant::now();
    all_answer(&[&a, &b], "maj.gslb.example.org.", &[]);
    assert!(stopped.elapsed() < Duration::from_millis(3000 + 1500), "expired after {:?}", stopped.elapsed());

    // NATS down: local verdicts (a up, b down); back on the same address: shared again.
    drop(nats);
    all_answer(&[&a], "maj.gslb.example.org.", &["127.0.0.2"]);
    all_answer(&[&b], "maj.gslb.example.org.", &[]);
    let nats = Nats::start_on(&port_of_nats);
    for s in [&a, &b] {
        connected(s);
    }
    // Together again: 1 of 2 is not a majority, everywhere.
    all_answer(&[&a, &b], "maj.gslb.example.org.", &[]);
    picky.fail_for(&[]);
    all_answer(&[&a, &b], "maj.gslb.example.org.", &["127.0.0.2"]);
    drop(nats);
}

/// Fewer fresh observations than `min_observers`: the local verdict decides, the log says
/// so once and /health says `cluster: "degraded"`; a second instance makes it "ok" again
/// (with `members` and a `key` from the environment, so sealed observations count).
#[test]
fn too_few_observers_fall_back_and_say_so() {
    let nats = Nats::start();
    let (_picky, port) = Picky::start("127.0.0.2");
    let pool = format!(
        "[[zone.pool]]\nname = \"p\"\n[zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\n\
         [[zone.pool.member]]\nname = \"m\"\nipv4 = [\"127.0.0.2\"]\n"
    );
    // Both guards on: the real instances' sealed observations count (b's make two).
    let guarded = "min_observers = 2\nmembers = [\"a\", \"b\"]\nkey = \"${GSLBD_TEST_CLUSTER_KEY}\"";
    let a = instance_full(&nats, "a", "127.0.0.51", guarded, &pool);
    a.wait_log("too few fresh observations").expect("the fallback is logged");
    let state = || Client::for_server(&a).call("GET", "/health", None, None).1["cluster"].clone();
    assert_eq!(state(), "degraded");
    assert_eq!(answers(&a.udp(&query("p.gslb.example.org.", RecordType::A))), ["127.0.0.2"], "DNS keeps answering");
    let _b = instance_full(&nats, "b", "127.0.0.52", guarded, &pool);
    let end = Instant::now() + DEADLINE;
    while state() != "ok" {
        assert!(Instant::now() < end, "never ok with two observers:\n{}", a.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(a.wait_log("enough fresh observations again").is_some());
}

/// `gslbd_pool_members{pool,role="primary",state="healthy"}` as `s` reports it.
fn healthy_members(s: &Server, pool: &str) -> String {
    let metrics = Client::for_server(s).text("/metrics");
    let key = format!("gslbd_pool_members{{pool=\"{pool}\",role=\"primary\",state=\"healthy\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(key.as_str())).unwrap_or_else(|| panic!("no {key}in\n{metrics}")).into()
}

/// One instance's own probe says down while the quorum says up: on that instance DNS, the
/// member's verdict in `/records` and `/explain`, and `gslbd_pool_members{state="healthy"}`
/// all say up for the majority pool and down for the pool that needs every instance.
#[test]
fn one_verdict_for_dns_records_explain_and_metrics() {
    let nats = Nats::start();
    let (picky, port) = Picky::start("127.0.0.2");
    let a = instance(&nats, "a", "127.0.0.61", port);
    let b = instance(&nats, "b", "127.0.0.62", port);
    let c = instance(&nats, "c", "127.0.0.63", port);
    for s in [&a, &b, &c] {
        connected(s);
    }
    picky.fail_for(&["127.0.0.61"]);
    a.wait_log("health state changed").expect("a's own probe fails");
    all_answer(&[&a], "all.gslb.example.org.", &[]);
    all_answer(&[&a], "maj.gslb.example.org.", &["127.0.0.2"]);
    let auth = Some(("X-Elchi-Secret", crate::admin_client::ADMIN_SECRET));
    for (pool, want, count) in [("maj", "up", "1"), ("all", "down", "0")] {
        let (_, recs) = Client::for_server(&a).call("GET", &format!("/records?name={pool}"), auth, None);
        let member = recs["records"].as_array().unwrap().iter().find(|r| r["member"] == "m").unwrap().clone();
        assert_eq!(member["health"], want, "/records for {pool}: {member}");
        assert_eq!(member["observations"][0]["health"], "down", "a's own observation: {member}");
        let path = format!("/explain?name={pool}.gslb.example.org&client=192.0.2.1");
        let (_, explained) = Client::for_server(&a).call("GET", &path, auth, None);
        let address = &explained["pool"]["members"][0]["addresses"][0];
        assert_eq!(address["health"], want, "/explain for {pool}: {explained}");
        assert_eq!(address["answered"], want == "up", "/explain for {pool}: {explained}");
        assert_eq!(healthy_members(&a, &format!("{pool}.gslb.example.org")), count, "metrics for {pool}");
    }
}

/// NATS stops: the instances notice from the client's connection events and fall back to
/// their own observations within 2 s, in `/health` and in the answers.
#[test]
fn stopping_nats_falls_back_within_two_seconds() {
    let nats = Nats::start();
    let (picky, port) = Picky::start("127.0.0.2");
    let a = instance(&nats, "a", "127.0.0.71", port);
    let b = instance(&nats, "b", "127.0.0.72", port);
    for s in [&a, &b] {
        connected(s);
    }
    // a's probe fails: the pool that needs every instance answers nowhere while shared.
    picky.fail_for(&["127.0.0.71"]);
    all_answer(&[&a, &b], "all.gslb.example.org.", &[]);
    drop(nats);
    let stopped = Instant::now();
    // Alone, b's own observation (up) decides.
    all_answer(&[&b], "all.gslb.example.org.", &["127.0.0.2"]);
    while Client::for_server(&b).call("GET", "/health", None, None).1["cluster"] != "degraded" {
        assert!(stopped.elapsed() < DEADLINE, "the lost connection is never reported");
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = stopped.elapsed();
    eprintln!("fell back {took:?} after NATS stopped");
    assert!(took < Duration::from_secs(2), "fell back after {took:?}");
    assert_eq!(b.log_text().matches("NATS unavailable").count(), 1, "logged once:\n{}", b.log_text());
}

/// Writes votes into the bucket every 300 ms until dropped: for each of `names`, a heartbeat
/// and an "up" observation of the target the real instance `real` observes, plain, or sealed
/// with `wrong_key` (a key the instances do not have).
struct Forger {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forger {
    fn start(url: &str, real: &str, names: &[&str], wrong_key: Option<&str>) -> Forger {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (url, real, names) = (url.to_string(), real.to_string(), names.iter().map(|n| n.to_string()).collect());
        let (wrong_key, done) = (wrong_key.map(str::to_string), Arc::clone(&stop));
        let thread = std::thread::spawn(move || forge(&url, &real, names, wrong_key, &done));
        Forger { stop, thread: Some(thread) }
    }
}

impl Drop for Forger {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn forge(url: &str, real: &str, names: Vec<String>, wrong_key: Option<String>, stop: &std::sync::atomic::AtomicBool) {
    use futures_util::StreamExt;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.expect("the forger connects");
        let js = async_nats::jetstream::new(client);
        let end = Instant::now() + DEADLINE;
        // The target id, from the real instance's own observation.
        let (kv, id) = loop {
            assert!(Instant::now() < end, "the real instance never wrote an observation");
            if let Ok(kv) = js.get_key_value("gslbd-health").await {
                let mut keys = kv.keys().await.unwrap();
                let mut found = None;
                while let Some(Ok(k)) = keys.next().await {
                    if let Some(rest) = k.strip_prefix("o.")
                        && let Some(id) = rest.strip_suffix(&format!(".{real}"))
                    {
                        found = Some(id.to_string());
                    }
                }
                if let Some(id) = found {
                    break (kv, id);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
            for name in &names {
                let vote = serde_json::json!({"up": true, "instance": name, "at": now}).to_string();
                let beat = serde_json::json!({"instance": name}).to_string();
                for (key, body) in [(format!("o.{id}.{name}"), vote), (format!("i.{name}"), beat)] {
                    let value = match &wrong_key {
                        // Sealed as gslbd seals, with the wrong key: a MAC of the right length.
                        Some(k) => serde_json::json!({"body": body, "sent": now, "mac": format!("{:064x}", k.len())})
                            .to_string(),
                        None => body,
                    };
                    kv.put(key, value.into()).await.unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
}

/// `gslbd_cluster_refused_total{reason}` as `s` reports it.
fn refused(s: &Server, reason: &str) -> u64 {
    let metrics = Client::for_server(s).text("/metrics");
    let key = format!("gslbd_cluster_refused_total{{reason=\"{reason}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(key.as_str())).map_or(0, |v| v.trim().parse().unwrap())
}

/// Five invented instances voting "up" in the bucket put a member that is down for the only
/// real instance back into its answers when nothing guards the quorum (the threat, and proof
/// that the forger writes what gslbd reads). With `members`, invented names do not vote;
/// with `key`, neither unsigned votes nor votes sealed with another key do, even under a
/// member's name; both are counted in `gslbd_cluster_refused_total`.
#[test]
fn forged_votes_do_not_count() {
    let forged = ["x1", "x2", "x3", "x4", "x5"];
    let guards: [(&str, &str, &[&str], Option<&str>); 4] = [
        ("", "", &forged, None),
        ("members = [\"a\", \"b\"]", "unknown_instance", &forged, None),
        ("key = \"a-shared-key-of-the-cluster\"", "unsigned", &["b", "x1", "x2", "x3", "x4"], None),
        ("key = \"a-shared-key-of-the-cluster\"", "bad_signature", &["b", "x1", "x2", "x3", "x4"], Some("guess")),
    ];
    for (guard, reason, names, wrong_key) in guards {
        let nats = Nats::start();
        let (picky, port) = Picky::start("127.0.0.2");
        picky.fail_for(&["127.0.0.81"]);
        let pools = format!(
            "[[zone.pool]]\nname = \"maj\"\nwhen_all_down = \"nodata\"\n\
             [zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n\
             [[zone.pool.member]]\nname = \"m\"\nipv4 = [\"127.0.0.2\"]\n"
        );
        let a = instance_full(&nats, "a", "127.0.0.81", guard, &pools);
        connected(&a);
        all_answer(&[&a], "maj.gslb.example.org.", &[]);
        let _forger = Forger::start(&nats.url, "a", names, wrong_key);
        if guard.is_empty() {
            // Unguarded, the forgery wins: 5 "up" against 1 "down".
            all_answer(&[&a], "maj.gslb.example.org.", &["127.0.0.2"]);
            continue;
        }
        // Guarded: every forged name is seen and refused, and the member stays out.
        let end = Instant::now() + DEADLINE;
        while refused(&a, reason) < 2 * names.len() as u64 {
            assert!(Instant::now() < end, "{guard}: the forged votes were never refused as {reason}\n{}", a.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        for _ in 0..10 {
            let m = a.udp(&query("maj.gslb.example.org.", RecordType::A));
            assert!(answers(&m).is_empty(), "{guard}: a forged vote counted: {m:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(a.log_text().contains("may not vote"), "{guard}: the refusal is logged");
    }
}

/// A JWT as NATS signs them: `ed25519-nkey`, base64url without padding.
fn nats_jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let iat = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = b64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = serde_json::json!({"jti": format!("{name}{iat}"), "iat": iat, "iss": issuer.public_key(), "name": name, "sub": subject, "nats": nats});
    let body = format!("{header}.{}", b64.encode(claims.to_string()));
    let signature = b64.encode(issuer.sign(body.as_bytes()).unwrap());
    format!("{body}.{signature}")
}

/// A nats-server that takes only TLS connections (a certificate made here) from users with
/// JWT credentials of its one account (operator mode, as `nsc` sets it up), with JetStream.
struct SecureNats {
    nats: Nats,
    dir: tempfile::TempDir,
}

impl SecureNats {
    fn start() -> SecureNats {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        std::fs::write(d.join("ca.pem"), cert.cert.pem()).unwrap();
        std::fs::write(d.join("server-key.pem"), cert.signing_key.serialize_pem()).unwrap();
        let (operator, account, user) =
            (nkeys::KeyPair::new_operator(), nkeys::KeyPair::new_account(), nkeys::KeyPair::new_user());
        let op_jwt =
            nats_jwt(&operator, &operator.public_key(), "op", serde_json::json!({"type": "operator", "version": 2}));
        let unlimited = serde_json::json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1});
        let acc_jwt = nats_jwt(
            &operator,
            &account.public_key(),
            "gslbd",
            serde_json::json!({"type": "account", "version": 2, "limits": unlimited}),
        );
        // JetStream needs a system account in operator mode.
        let system = nkeys::KeyPair::new_account();
        let sys_jwt =
            nats_jwt(&operator, &system.public_key(), "SYS", serde_json::json!({"type": "account", "version": 2}));
        let user_jwt = nats_jwt(
            &account,
            &user.public_key(),
            "edge",
            serde_json::json!({"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1}),
        );
        std::fs::write(
            d.join("gslbd.creds"),
            format!(
                "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
                 -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
                user.seed().unwrap()
            ),
        )
        .unwrap();
        let sys = system.public_key();
        let conf = format!(
            "listen: \"127.0.0.1:-1\"\noperator: \"{op_jwt}\"\nsystem_account: {sys}\nresolver: MEMORY\n\
             resolver_preload: {{ {}: \"{acc_jwt}\", {sys}: \"{sys_jwt}\" }}\n\
             jetstream: {{}}\ntls: {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
            account.public_key(),
            d.join("ca.pem").display(),
            d.join("server-key.pem").display()
        );
        std::fs::write(d.join("nats.conf"), conf).unwrap();
        let nats = Nats::start_with(&["-c", d.join("nats.conf").to_str().unwrap()]);
        SecureNats { nats, dir }
    }

    /// The `[cluster]` keys for it: credentials and CA, or (`creds` false) the CA alone.
    fn keys(&self, creds: bool) -> String {
        let d = self.dir.path();
        let mut keys = format!("tls_ca = \"{}\"\n", d.join("ca.pem").display());
        if creds {
            keys += &format!("credentials = \"{}\"\n", d.join("gslbd.creds").display());
        }
        keys
    }
}

/// Against a nats-server with JWT authorization and TLS only: instances with the credentials
/// file and the CA share verdicts (two of them agree by majority); one without credentials
/// is refused by the server, says so and decides alone.
#[test]
fn credentials_and_tls_against_an_authorizing_server() {
    let secure = SecureNats::start();
    let (picky, port) = Picky::start("127.0.0.2");
    let pools = format!(
        "[[zone.pool]]\nname = \"all\"\nquorum = \"all\"\nwhen_all_down = \"nodata\"\n\
         [zone.pool.check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n\
         [[zone.pool.member]]\nname = \"m\"\nipv4 = [\"127.0.0.2\"]\n"
    );
    let a = instance_full(&secure.nats, "a", "127.0.0.91", &secure.keys(true), &pools);
    let b = instance_full(&secure.nats, "b", "127.0.0.92", &secure.keys(true), &pools);
    let outsider = instance_full(&secure.nats, "c", "127.0.0.93", &secure.keys(false), &pools);
    connected(&a);
    connected(&b);
    all_answer(&[&a, &b], "all.gslb.example.org.", &["127.0.0.2"]);
    // b's probe fails: a hears it through the authorized, encrypted bucket.
    picky.fail_for(&["127.0.0.92"]);
    all_answer(&[&a, &b], "all.gslb.example.org.", &[]);
    let line = outsider.wait_log("NATS unavailable").expect("the outsider reports the refusal");
    assert!(line.to_lowercase().contains("author"), "{line}");
    assert_eq!(Client::for_server(&outsider).call("GET", "/health", None, None).1["cluster"], "degraded");
    all_answer(&[&outsider], "all.gslb.example.org.", &["127.0.0.2"]);
}

/// A drain made on one instance applies on every instance through NATS, with who made it; an
/// instance started later takes it at connection; enable undoes it everywhere. With a shared
/// key, values are sealed.
#[test]
fn a_drain_on_one_instance_applies_on_every_instance() {
    let nats = Nats::start();
    let pools = "[[zone.pool]]\nname = \"app\"\nselect = \"all\"\n[zone.pool.check]\ntype = \"none\"\n\
                 [[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\nlabels = { site = \"fra\" }\n\
                 [[zone.pool.member]]\nname = \"b\"\nipv4 = [\"192.0.2.2\"]\nlabels = { site = \"ams\" }\n";
    let keyed = "key = \"${GSLBD_TEST_CLUSTER_KEY}\"\n";
    let one = instance_full(&nats, "one", "127.0.0.1", keyed, pools);
    let two = instance_full(&nats, "two", "127.0.0.1", keyed, pools);
    connected(&one);
    connected(&two);
    let name = "app.gslb.example.org.";
    let sorted = |s: &Server| {
        let mut a = answers(&s.udp(&query(name, RecordType::A)));
        a.sort();
        a
    };
    let c = Client::for_server(&one);
    let auth = Some(("X-Elchi-Secret", crate::admin_client::ADMIN_SECRET));
    let body = serde_json::json!({"labels": {"site": "fra"}, "state": "drain"}).to_string();
    let (code, v) = c.call("POST", "/members/state", auth, Some(body));
    assert_eq!(code, 200, "{v}");
    assert_eq!(sorted(&one), ["192.0.2.2"]);
    all_answer(&[&one, &two], name, &["192.0.2.2"]);
    let line = two.wait_log("member state set").unwrap();
    assert!(line.contains("127.0.0.1 via one"), "{line}");
    // Started after the drain: it takes it at connection.
    let three = instance_full(&nats, "three", "127.0.0.1", keyed, pools);
    all_answer(&[&three], name, &["192.0.2.2"]);
    let body = serde_json::json!({"member": "a", "state": "enable"}).to_string();
    let (code, v) = Client::for_server(&two).call("POST", "/members/state", auth, Some(body));
    assert_eq!(code, 200, "{v}");
    let end = Instant::now() + DEADLINE;
    for s in [&one, &two, &three] {
        while sorted(s) != ["192.0.2.1", "192.0.2.2"] {
            assert!(Instant::now() < end, "enable did not reach every instance: {:?}", sorted(s));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
