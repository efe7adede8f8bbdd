//! A fake Elchi controller: a real HTTP server on 127.0.0.1 (axum) whose answers the test
//! steers, and which records every request (path, query, headers) for assertions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::harness::DEADLINE;

/// The secret the fake expects.
pub const SECRET: &str = "test-secret-key";

/// How the fake answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Normally: snapshot, 304/unchanged or the changed set.
    Normal,
    /// This status with a short body, for every request.
    Status(u16),
    /// This body with status 200, for every request.
    Raw(String),
    /// Answer normally after this delay.
    Delay(Duration),
    /// `302 Found` to this URL, for every request.
    Redirect(String),
}

/// What `/dns/changes` says when nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unchanged {
    /// `304 Not Modified`.
    NotModified,
    /// `200 {"unchanged": true}`.
    Json,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path without the query.
    pub path: String,
    /// Query parameters.
    pub query: HashMap<String, String>,
    /// Headers, lower-case names.
    pub headers: HashMap<String, String>,
}

/// The steerable state.
pub struct FakeState {
    /// Zone name in responses.
    pub zone: String,
    /// Current version hash.
    pub hash: String,
    /// Current records (a JSON array).
    pub records: Value,
    /// Answer mode.
    pub mode: Mode,
    /// Form of the "unchanged" answer.
    pub unchanged: Unchanged,
    /// Requests so far.
    pub seen: Vec<Seen>,
}

type Shared = Arc<(Mutex<FakeState>, Condvar)>;

/// A running fake controller.
pub struct FakeController {
    /// Its address.
    pub addr: SocketAddr,
    shared: Shared,
    scheme: &'static str,
    _runtime: tokio::runtime::Runtime,
}

impl FakeController {
    /// Starts a fake serving `records` for `zone` under version `hash`.
    pub fn start(zone: &str, hash: &str, records: Value) -> FakeController {
        let shared = new_shared(zone, hash, records);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        runtime.spawn(async move { axum::serve(listener, app).await });
        FakeController { addr, shared, scheme: "http", _runtime: runtime }
    }

    /// Like [`FakeController::start`], over HTTPS with a fresh self-signed certificate for
    /// 127.0.0.1; returns the certificate (PEM) too.
    pub fn start_tls(zone: &str, hash: &str, records: Value) -> (FakeController, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let cert_pem = cert.cert.pem();
        let key_pem = cert.signing_key.serialize_pem();
        let shared = new_shared(zone, hash, records);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let tls = runtime
            .block_on(axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem.clone().into(), key_pem.into()))
            .unwrap();
        runtime.spawn(async move {
            let server = axum_server::from_tcp_rustls(listener, tls).unwrap();
            server.serve(app.into_make_service()).await
        });
        (FakeController { addr, shared, scheme: "https", _runtime: runtime }, cert_pem)
    }

    /// Base URL with a path prefix (the prefix must be kept by gslbd).
    pub fn endpoint(&self) -> String {
        format!("{}://{}/api/", self.scheme, self.addr)
    }

    /// Changes the state.
    pub fn set(&self, f: impl FnOnce(&mut FakeState)) {
        f(&mut self.shared.0.lock().unwrap());
    }

    /// Requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.0.lock().unwrap().seen.clone()
    }

    /// Waits for a request after the first `skip` that matches `pred`.
    pub fn wait_request(&self, skip: usize, pred: impl Fn(&Seen) -> bool) -> Seen {
        let end = Instant::now() + DEADLINE;
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap();
        loop {
            if let Some(s) = st.seen.iter().skip(skip).find(|s| pred(s)) {
                return s.clone();
            }
            let now = Instant::now();
            assert!(now < end, "no matching controller request before the deadline; saw {:?}", st.seen);
            st = cv.wait_timeout(st, end - now).unwrap().0;
        }
    }

    /// Number of requests so far.
    pub fn count(&self) -> usize {
        self.shared.0.lock().unwrap().seen.len()
    }
}

fn new_shared(zone: &str, hash: &str, records: Value) -> Shared {
    Arc::new((
        Mutex::new(FakeState {
            zone: zone.into(),
            hash: hash.into(),
            records,
            mode: Mode::Normal,
            unchanged: Unchanged::NotModified,
            seen: Vec::new(),
        }),
        Condvar::new(),
    ))
}

async fn handle(
    State(shared): State<Shared>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    let seen = Seen {
        path: path.clone(),
        query: query.clone(),
        headers: headers.iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect(),
    };
    let (mode, reply) = {
        let (lock, cv) = &*shared;
        let mut st = lock.lock().unwrap();
        st.seen.push(seen);
        cv.notify_all();
        (st.mode.clone(), normal_reply(&st, &path, &query, &headers))
    };
    match mode {
        Mode::Normal => reply,
        Mode::Delay(d) => {
            tokio::time::sleep(d).await;
            reply
        }
        Mode::Status(code) => Response::builder().status(code).body(Body::from("controller says no")).unwrap(),
        Mode::Raw(body) => Response::builder().status(200).body(Body::from(body)).unwrap(),
        Mode::Redirect(to) => Response::builder().status(302).header("location", to).body(Body::empty()).unwrap(),
    }
}

fn normal_reply(st: &FakeState, path: &str, query: &HashMap<String, String>, headers: &HeaderMap) -> Response {
    if headers.get("x-elchi-secret").and_then(|v| v.to_str().ok()) != Some(SECRET) {
        return Response::builder().status(StatusCode::UNAUTHORIZED).body(Body::from("Unauthorized")).unwrap();
    }
    let full = json!({"zone": st.zone, "version_hash": st.hash, "records": st.records});
    let body = match path {
        "/api/dns/snapshot" => full,
        "/api/dns/changes" => {
            if query.get("since") == Some(&st.hash) {
                if st.unchanged == Unchanged::NotModified {
                    return Response::builder().status(304).body(Body::empty()).unwrap();
                }
                json!({"unchanged": true})
            } else {
                let mut v = full;
                v["unchanged"] = json!(false);
                v
            }
        }
        _ => return Response::builder().status(404).body(Body::from("Unknown path")).unwrap(),
    };
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}
