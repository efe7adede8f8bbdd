//! The endpoints. Handlers are thin: they check the secret, read and parse the request, and
//! either send the builder an event (`/notify`) or read its published view. No handler takes
//! a lock on an async worker; work that grows with a zone runs on a blocking thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::Method;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

use super::error::ApiError;
use super::{auth, health, members};
use crate::builder::views::Page;
use crate::builder::{BuilderHandle, PushFailure};
use crate::cluster::members::Share;
use crate::config::AdminConfig;
use crate::dns::name::Name;
use crate::dns::records::RData;
use crate::dns::types::*;
use crate::elchi::api::{NotifyJson, parse_absolute};
use crate::metrics::Metrics;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    builder: BuilderHandle,
    metrics: Arc<Metrics>,
    secret: Arc<[u8]>,
    /// The read-only secret, when configured.
    viewer: Option<Arc<[u8]>>,
    max_body: usize,
    notify_atomic: bool,
    /// With `[cluster]`: where drains and disables made here go, for the other instances.
    share: Option<tokio::sync::mpsc::UnboundedSender<Share>>,
}

impl AppState {
    /// State for the router.
    pub fn new(
        builder: BuilderHandle,
        metrics: Arc<Metrics>,
        config: &AdminConfig,
        share: Option<tokio::sync::mpsc::UnboundedSender<Share>>,
    ) -> AppState {
        AppState {
            builder,
            metrics,
            secret: config.secret.as_bytes().into(),
            viewer: config.viewer_secret.as_ref().map(|v| v.as_bytes().into()),
            max_body: config.max_body,
            notify_atomic: config.notify_atomic,
            share,
        }
    }

    /// Counts a request to an endpoint by its outcome.
    fn count<T>(&self, endpoint: &str, result: &Result<T, ApiError>) {
        let status = match result {
            Ok(_) => "success",
            Err(e) if e.status == StatusCode::UNAUTHORIZED => "unauthorized",
            Err(_) => "error",
        };
        self.metrics.count_request(endpoint, status);
    }
}

/// The admin routes; unknown paths get 404 and wrong methods 405, both as JSON.
pub fn router(state: AppState) -> Router {
    Router::new()
        // The secret is checked before the method on the endpoints that need it, as upstream:
        // a caller without it learns nothing, not even which methods exist.
        .route("/notify", any(notify))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/records", any(records))
        .route("/metrics", get(metrics))
        .route("/explain", any(explain))
        .route("/members/state", any(member_states))
        .route("/events", any(events))
        .route("/ui", get(ui))
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed") })
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not found") })
        .with_state(state)
}

/// The request's body. The connection read it whole already (`admin/mod.rs`), within
/// `max_body` and its deadline, with the 413 and 408 answers; this only takes the bytes.
async fn read_body(body: Body, max: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, max)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")))
}

async fn metrics(State(st): State<AppState>) -> Response {
    let text = tokio::task::spawn_blocking(move || st.metrics.render()).await.unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Checks the secret, then the method: 401 comes before 405. A 401 is counted for
/// `endpoint` (a 405 is not, as upstream).
fn guard(st: &AppState, endpoint: &str, headers: &HeaderMap, method: &Method, allowed: Method) -> Result<(), ApiError> {
    // The viewer secret reads; only the secret changes anything.
    let reads = allowed == Method::GET && *method == Method::GET;
    let viewer = reads && st.viewer.as_ref().is_some_and(|v| auth::authorized(headers, v));
    if !viewer && !auth::authorized(headers, &st.secret) {
        st.metrics.count_request(endpoint, "unauthorized");
        auth::failed(endpoint);
        return Err(ApiError::unauthorized());
    }
    if *method != allowed {
        return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"));
    }
    Ok(())
}

async fn notify(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    guard(&st, "notify", &parts.headers, &parts.method, Method::POST)?;
    let result = notify_inner(&st, &parts, body).await;
    st.count("notify", &result);
    result
}

async fn notify_inner(st: &AppState, parts: &axum::http::request::Parts, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(body, st.max_body).await?;
    let atomic = match query_flag(parts.uri.query(), "atomic")? {
        Some(v) => v,
        None => st.notify_atomic,
    };
    let push: NotifyJson = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))?;
    // The builder applies it with whatever else is queued; the reply comes once DNS answers.
    match st.builder.push(push, atomic).await {
        Ok(o) => {
            let skipped: Vec<Value> =
                o.skipped.iter().map(|e| json!({"item": e.item, "section": e.section, "error": e.message})).collect();
            let shadowed: Vec<Value> = o
                .shadowed
                .iter()
                .map(|s| json!({"item": s.item, "name": s.name.to_dotless(), "by": s.by.as_str()}))
                .collect();
            let body = json!({
                "status": "ok",
                "updated": o.updated,
                "deleted": o.deleted,
                "skipped": skipped,
                "shadowed": shadowed,
            });
            Ok(Json(body).into_response())
        }
        Err(PushFailure::Invalid(e)) => Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": e.message, "item": e.item, "section": e.section}),
        }),
        // Refused whole and not applied: the journal cannot keep it (retry once it can).
        Err(e @ PushFailure::Journal(_)) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        // Not acknowledged: the build failed (the change is kept), or shutdown.
        Err(e) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// `POST /members/state`: drain, disable or enable the members a selector picks; answers
/// once DNS answers with the change. `GET` lists the members operators have set.
async fn member_states(
    State(st): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    if parts.method == Method::GET {
        guard(&st, "members", &parts.headers, &parts.method, Method::GET)?;
        let result = Ok(Json(members::list(&st.builder.view().member_states)).into_response());
        st.count("members", &result);
        return result;
    }
    guard(&st, "members", &parts.headers, &parts.method, Method::POST)?;
    let result = async {
        let bytes = read_body(body, st.max_body).await?;
        let (selector, wanted) = members::parse(&bytes)?;
        let by = peer.ip().to_string();
        match st.builder.member_states(selector, wanted, by.clone()).await {
            Ok(changed) => {
                if let Some(share) = &st.share {
                    for c in &changed {
                        let pool = c.key.pool.clone();
                        let _ = share.send(Share { pool, member: c.key.member.clone(), state: c.now, by: by.clone() });
                    }
                }
                Ok(Json(members::changed(&changed)).into_response())
            }
            Err(e) => Err(members::failure(e)),
        }
    }
    .await;
    st.count("members", &result);
    result
}

/// A boolean query parameter (`true`/`false`/`1`/`0`); a bad value is a 400, not ignored.
fn query_flag(query: Option<&str>, key: &str) -> Result<Option<bool>, ApiError> {
    let Some(query) = query else { return Ok(None) };
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
        if k == key {
            return match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(ApiError::new(StatusCode::BAD_REQUEST, format!("{key}={v:?}: expected true or false"))),
            };
        }
    }
    Ok(None)
}

async fn health(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let result = health_inner(&st, &q);
    st.count("health", &result);
    result
}

fn health_inner(st: &AppState, q: &HashMap<String, String>) -> Result<Response, ApiError> {
    let view = st.builder.view();
    let config = Arc::clone(&view.config);
    let now = SystemTime::now();
    // With [cluster]: whether verdicts are shared right now ("degraded": NATS unreachable,
    // every instance decides alone). DNS keeps answering either way, so the status code
    // stays the zones'.
    let cluster = config.cluster.as_ref().map(|c| {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = &st.metrics.cluster;
        // Degraded: NATS unreachable, or targets decided locally for lack of observers.
        let up = stats.connected.load(Relaxed) && view.health.fallback_targets() == 0;
        (if up { "ok" } else { "degraded" }, c.instance.clone())
    });
    let reply = |(mut v, degraded): (Value, bool)| {
        if let Some((state, instance)) = &cluster {
            v["cluster"] = json!(state);
            v["cluster_instance"] = json!(instance);
        }
        let code = if degraded { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
        (code, Json(v)).into_response()
    };
    if let Some(z) = q.get("zone") {
        let apex = parse_absolute(z).ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid zone"))?;
        let zone = config
            .zones
            .iter()
            .find(|c| c.apex == apex)
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("unknown zone {z}")))?;
        return Ok(reply(health::zone_health(&view, zone, now)));
    }
    if config.zones.len() == 1 {
        return Ok(reply(health::zone_health(&view, &config.zones[0], now)));
    }
    let all: Vec<(Value, bool)> = config.zones.iter().map(|z| health::zone_health(&view, z, now)).collect();
    let degraded = all.iter().any(|(_, d)| *d);
    let zones: Vec<Value> = all.into_iter().map(|(v, _)| v).collect();
    Ok(reply((json!({"status": if degraded { "degraded" } else { "healthy" }, "zones": zones}), degraded)))
}

async fn ready(State(st): State<AppState>) -> Response {
    let waiting = health::not_ready(&st.builder.view());
    if waiting.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready", "zones": waiting}))).into_response()
    }
}

async fn records(
    State(st): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    guard(&st, "records", &headers, &method, Method::GET)?;
    // Merging a zone's records costs a pass over it: not on an async worker.
    let view = st.builder.view();
    let result = tokio::task::spawn_blocking(move || records_inner(&view, &q))
        .await
        .unwrap_or_else(|e| Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("records failed: {e}"))));
    st.count("records", &result);
    result
}

/// `GET /ui`: the status page (one file, no external assets; it asks for the secret and reads
/// the API with it). Served without the secret: it holds no data.
async fn ui() -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
            (axum::http::header::CONTENT_SECURITY_POLICY, "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"),
        ],
        include_str!("ui.html"),
    )
        .into_response()
}

/// Entries per `/events` reply when the request does not say (and at most).
const MAX_EVENTS: usize = 1000;

/// `GET /events?since=&limit=`: the event log's entries after the cursor `since` (a `seq`;
/// default 0: from the oldest kept), oldest first, and `next`, the cursor for the following
/// call. `gap` says entries after `since` were dropped from the log (it keeps the last 1,000).
async fn events(
    State(st): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    guard(&st, "events", &headers, &method, Method::GET)?;
    let number = |key: &str, default: u64| -> Result<u64, ApiError> {
        q.get(key).map_or(Ok(default), |v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("{key} must be a whole number, not {v:?}")))
        })
    };
    let result = (|| {
        let since = number("since", 0)?;
        let limit = number("limit", MAX_EVENTS as u64)?.clamp(1, MAX_EVENTS as u64) as usize;
        let view = st.builder.view();
        let (entries, gap) = crate::builder::event_log::after(&view.events, since, limit);
        let next = entries.last().map_or(since, |e| e.seq);
        let entries: Vec<&crate::builder::event_log::Entry> = entries.iter().map(|e| &**e).collect();
        Ok(Json(json!({"events": entries, "next": next, "gap": gap})).into_response())
    })();
    st.count("events", &result);
    result
}

/// `GET /explain?name=&type=&client=&ecs=`: what a client there gets for the name and why,
/// answered by the query path from the live snapshot, with the live health.
async fn explain(
    State(st): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    guard(&st, "explain", &headers, &method, Method::GET)?;
    let result = explain_inner(&st, &q).await;
    st.count("explain", &result);
    result
}

async fn explain_inner(st: &AppState, q: &HashMap<String, String>) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let name = q.get("name").ok_or_else(|| bad("name is required".into()))?;
    let client = q.get("client").ok_or_else(|| bad("client is required (the address the query comes from)".into()))?;
    let question = crate::explain::Question::parse(
        name,
        q.get("type").map(String::as_str),
        client,
        q.get("ecs").map(String::as_str),
    )
    .map_err(|e| bad(e.to_string()))?;
    let view = st.builder.view();
    let snapshot = st.builder.snapshot().load();
    // Two queries through the query path and a walk over the pool: off the async workers.
    let body = tokio::task::spawn_blocking(move || {
        crate::explain::explain(&snapshot, &view.config, &view.health, &view.member_states, &question)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("explain failed: {e}")))?;
    Ok(Json(body).into_response())
}

/// Names per `/records` page when the request does not say.
const DEFAULT_PAGE: usize = 1000;
/// Most names per `/records` page.
const MAX_PAGE: usize = 10_000;

fn records_inner(view: &crate::builder::views::View, q: &HashMap<String, String>) -> Result<Response, ApiError> {
    let config = Arc::clone(&view.config);
    let zone_filter = match q.get("zone") {
        None => None,
        Some(z) => Some(parse_absolute(z).ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid zone"))?),
    };
    let zones: Vec<&crate::config::ZoneConfig> =
        config.zones.iter().filter(|z| zone_filter.as_ref().is_none_or(|f| *f == z.apex)).collect();
    if zones.is_empty() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown zone"));
    }
    let name_filter = q.get("name").map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase());
    let type_filter = q.get("type").map(|t| t.trim().to_ascii_uppercase());
    // A page holds whole names, at most `limit` of them, after the `after` cursor: memory per
    // request is bounded whatever the zone's size.
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, format!("limit must be 1..={MAX_PAGE}")))?,
    };
    let after = q.get("after").map(|a| a.trim().trim_end_matches('.').to_ascii_lowercase());
    // `source=pool`: only the pools' names (the status page), without a pass over the zone.
    let pools_only = match q.get("source").map(String::as_str) {
        None => false,
        Some("pool") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("source {other:?}: only \"pool\" can be asked for"),
            ));
        }
    };
    let mut page = Page::new(limit);
    for zone in &zones {
        if pools_only {
            for pool in &zone.pools {
                let key = pool.name.to_dotless();
                let wanted = after.as_deref().is_none_or(|a| key.as_str() > a)
                    && name_filter.as_deref().is_none_or(|f| key.contains(f));
                if wanted {
                    page.offer(key, &pool.name);
                }
            }
        } else {
            view.page_names(&zone.apex, after.as_deref(), name_filter.as_deref(), &mut page);
        }
    }
    let mut out: Vec<(String, String, Value)> = Vec::new();
    for zone in &zones {
        if pools_only {
            break;
        }
        let records = view.page_records(&zone.apex, &page);
        let answered =
            records.answered.iter().flat_map(|(n, t)| t.iter().map(move |(&rtype, set)| (n, rtype, set, None)));
        let shadowed = records.shadowed.iter().map(|(n, rtype, set, by)| (n, *rtype, set, Some(*by)));
        for (owner, rtype, set, by) in answered.chain(shadowed) {
            let name = owner.to_dotless();
            if name_filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
                continue;
            }
            let tname = type_name(rtype).into_owned();
            if type_filter.as_ref().is_some_and(|f| *f != tname) {
                continue;
            }
            // `source` says where the set came from; a set DNS does not answer also says why.
            let mut v = json!({"name": name, "type": tname, "ttl": set.ttl, "source": set.source.as_str()});
            describe(&mut v, rtype, &set.rdata);
            if set.draw.is_some() {
                // Answered one group per query, drawn by weight: the groups and their weights.
                let groups: Vec<Value> = set
                    .groups()
                    .map(|(group, weight)| {
                        let mut g = json!({"weight": weight});
                        describe(&mut g, rtype, group);
                        g
                    })
                    .collect();
                v["draw"] = json!(groups);
            }
            if let Some(by) = by {
                v["answered"] = json!(false);
                v["shadowed_by"] = json!(by.as_str());
            }
            if zones.len() > 1 {
                v["zone"] = json!(health::fqdn(&zone.apex));
            }
            out.push((name, tname, v));
        }
    }
    let health = &view.health;
    for zone in &zones {
        for pool in &zone.pools {
            let name = pool.name.to_dotless();
            if !page.names.contains_key(&name) {
                continue;
            }
            for m in &pool.members {
                let addrs =
                    m.ipv4.iter().map(|&ip| (ip.into(), "A")).chain(m.ipv6.iter().map(|&ip| (ip.into(), "AAAA")));
                for (ip, tname) in addrs {
                    if type_filter.as_ref().is_some_and(|f| f != tname) {
                        continue;
                    }
                    let ip: std::net::IpAddr = ip;
                    let mut v = json!({
                        "name": name,
                        "type": tname,
                        "ttl": pool.ttl,
                        "ips": [ip.to_string()],
                        "source": "pool",
                        "member": m.id,
                        "labels": m.labels,
                        "role": if m.role == crate::config::Role::Primary { "primary" } else { "secondary" },
                    });
                    // health, last_check, last_error; with [cluster] also every instance's
                    // observation and the quorum.
                    let h = crate::explain::address_health(health, ip, &m.check, pool.quorum);
                    for (k, val) in h.as_object().into_iter().flatten().filter(|(k, _)| *k != "ip") {
                        v[k] = val.clone();
                    }
                    // An operator's drain or disable, with who set it and when.
                    let set = view.member_states.entry(&pool.name, &m.id);
                    v["state"] = json!(set.map_or("enabled", |e| e.state.as_str()));
                    if let Some(e) = set {
                        v["state_by"] = json!(e.by);
                        v["state_at"] = json!(e.at);
                    }
                    if zones.len() > 1 {
                        v["zone"] = json!(health::fqdn(&zone.apex));
                    }
                    out.push((name.clone(), tname.to_string(), v));
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let (zone, version) = match zones.as_slice() {
        [z] => (
            json!(health::fqdn(&z.apex)),
            json!(view.status(&z.apex).and_then(|s| s.version_hash.clone()).unwrap_or_default()),
        ),
        _ => (Value::Null, Value::Null),
    };
    let list: Vec<Value> = out.into_iter().map(|(_, _, v)| v).collect();
    let mut body = json!({"zone": zone, "version_hash": version, "count": list.len(), "records": list});
    if let Some(next) = page.next() {
        body["next"] = json!(next);
    }
    Ok(Json(body).into_response())
}

/// Adds `ips`, `target` or `data` to a record object.
fn describe(v: &mut Value, rtype: u16, rdata: &[RData]) {
    let text = |n: &Name| n.to_string();
    match rtype {
        TYPE_A | TYPE_AAAA => {
            let ips: Vec<String> = rdata
                .iter()
                .filter_map(|r| match r {
                    RData::A(ip) => Some(ip.to_string()),
                    RData::Aaaa(ip) => Some(ip.to_string()),
                    _ => None,
                })
                .collect();
            v["ips"] = json!(ips);
        }
        TYPE_CNAME => {
            if let Some(RData::Cname(t)) = rdata.first() {
                v["target"] = json!(t.to_dotless());
            }
        }
        _ => {
            let data: Vec<String> = rdata
                .iter()
                .map(|r| match r {
                    RData::Ns(n) | RData::Ptr(n) | RData::Cname(n) => text(n),
                    RData::Mx { preference, exchange } => format!("{preference} {}", text(exchange)),
                    RData::Srv { priority, weight, port, target } => {
                        format!("{priority} {weight} {port} {}", text(target))
                    }
                    RData::Soa(s) => format!(
                        "{} {} {} {} {} {} {}",
                        text(&s.mname),
                        text(&s.rname),
                        s.serial,
                        s.refresh,
                        s.retry,
                        s.expire,
                        s.minimum
                    ),
                    RData::Other { data, .. } => {
                        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                        format!("\\# {} {hex}", data.len())
                    }
                    RData::A(ip) => ip.to_string(),
                    RData::Aaaa(ip) => ip.to_string(),
                })
                .collect();
            v["data"] = json!(data);
        }
    }
}
