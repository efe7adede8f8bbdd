//! The ExternalDNS webhook provider, on a listener of its own (`[externaldns] listen`; a
//! sidecar on loopback, as ExternalDNS expects): the protocol as ExternalDNS's Go client
//! speaks it (`provider/webhook/webhook.go`). `GET /` negotiates and returns the domain
//! filter built from the zones ExternalDNS may write; `GET /records` lists the endpoints it
//! wrote, exactly as written; `POST /adjustendpoints` leaves out what gslbd would refuse;
//! `POST /records` applies a plan's changes through the builder, all or none, and answers
//! 204 once DNS answers them; `GET /healthz` is the probe. Answers carry the protocol's media
//! type and `Vary: Content-Type`; 5xx (which ExternalDNS retries) only when a retry can
//! succeed. Requests are counted in the admin API's `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use crate::builder::{BuilderHandle, ExternalDnsFailure};
use crate::config::externaldns::ExternalDnsConfig;
use crate::externaldns::MEDIA_TYPE;
use crate::externaldns::endpoint::{Changes, DomainFilter, Endpoint};
use crate::metrics::Metrics;

/// The provider's listener, bound at start-up so a bad address fails early.
pub struct ExternalDnsListener {
    listener: std::net::TcpListener,
    max_body: usize,
}

impl ExternalDnsListener {
    /// Binds the listen address.
    pub fn bind(config: &ExternalDnsConfig) -> std::io::Result<ExternalDnsListener> {
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot bind {}: {e}", config.listen)))?;
        listener.set_nonblocking(true)?;
        Ok(ExternalDnsListener { listener, max_body: config.max_body })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`.
    pub async fn serve(
        self,
        builder: BuilderHandle,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let limits = super::Limits {
            max_body: self.max_body,
            header_timeout: std::time::Duration::from_secs(30),
            max_connections: 64,
            max_connections_per_client: 16,
        };
        let app = router(Provider { builder, metrics });
        super::serve_router(self.listener, None, app, limits, "externaldns", shutdown).await
    }
}

/// What the handlers share.
#[derive(Clone)]
struct Provider {
    builder: BuilderHandle,
    metrics: Arc<Metrics>,
}

fn router(state: Provider) -> Router {
    Router::new()
        .route("/", get(negotiate))
        .route("/records", get(records).post(apply))
        .route("/adjustendpoints", axum::routing::post(adjust))
        .route("/healthz", get(healthz))
        .method_not_allowed_fallback(|| async { failure(StatusCode::METHOD_NOT_ALLOWED, "method not allowed") })
        .fallback(|| async { failure(StatusCode::NOT_FOUND, "not found") })
        .with_state(state)
}

/// A protocol answer: the media type, `Vary: Content-Type`.
fn answer(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    h.insert(header::VARY, HeaderValue::from_static("Content-Type"));
    r
}

/// An error: a small JSON body (ExternalDNS drains it to reuse the connection).
fn failure(status: StatusCode, message: impl Into<String>) -> Response {
    let mut r = ApiError::new(status, message).into_response();
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("Content-Type"));
    r
}

/// The config's `[externaldns]`, as the view in force has it.
fn config(p: &Provider) -> Option<(Arc<crate::builder::views::View>, ExternalDnsConfig)> {
    let view = p.builder.view();
    let cfg = view.config.externaldns.clone()?;
    Some((view, cfg))
}

/// `GET /`: the domain filter, in `endpoint.DomainFilter`'s list form: our zones ExternalDNS
/// may write, less the zones served here inside them that it may not.
async fn negotiate(State(p): State<Provider>) -> Response {
    let Some((view, cfg)) = config(&p) else {
        p.metrics.count_externaldns("negotiate", 503);
        return failure(StatusCode::SERVICE_UNAVAILABLE, "[externaldns] is not configured");
    };
    let mut filter = DomainFilter::default();
    filter.include = cfg.zones.iter().map(|z| z.to_dotless()).collect();
    filter.exclude = view
        .config
        .zones
        .iter()
        .filter(|z| !cfg.zones.contains(&z.apex) && cfg.zones.iter().any(|w| z.apex.is_within(w)))
        .map(|z| z.apex.to_dotless())
        .collect();
    filter.include.sort();
    filter.exclude.sort();
    p.metrics.count_externaldns("negotiate", 200);
    answer(StatusCode::OK, serde_json::to_vec(&filter).expect("a filter serializes"))
}

/// `GET /records`: every endpoint ExternalDNS wrote, as it wrote it.
async fn records(State(p): State<Provider>) -> Response {
    let Some((view, cfg)) = config(&p) else {
        p.metrics.count_externaldns("records", 503);
        return failure(StatusCode::SERVICE_UNAVAILABLE, "[externaldns] is not configured");
    };
    // Grows with the endpoints: encoded off the async workers.
    let encoded = tokio::task::spawn_blocking(move || {
        let all: Vec<&Endpoint> =
            cfg.zones.iter().filter_map(|z| view.zone(z)).flat_map(|z| z.endpoints.endpoints()).collect();
        serde_json::to_vec(&all)
    })
    .await;
    match encoded {
        Ok(Ok(body)) => {
            p.metrics.count_externaldns("records", 200);
            answer(StatusCode::OK, body)
        }
        _ => {
            p.metrics.count_externaldns("records", 500);
            failure(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the records")
        }
    }
}

/// The refusal of a body that is not in the protocol's media type (plain JSON and an
/// unlabelled body are taken too).
fn not_json(headers: &HeaderMap) -> Option<Response> {
    let ct = headers.get(header::CONTENT_TYPE)?;
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase().replace(' ', "");
    let json = ct.starts_with("application/external.dns.webhook+json") || ct.starts_with("application/json");
    (!json).then(|| failure(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("content type {ct:?} is not {MEDIA_TYPE}")))
}

/// `POST /records`: a plan's changes, applied all or none; 204 once DNS answers them.
async fn apply(State(p): State<Provider>, headers: HeaderMap, body: Bytes) -> Response {
    let count = |status: StatusCode| p.metrics.count_externaldns("apply", status.as_u16());
    if let Some(r) = not_json(&headers) {
        count(r.status());
        return r;
    }
    let changes: Changes = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            count(StatusCode::BAD_REQUEST);
            return failure(StatusCode::BAD_REQUEST, format!("the changes do not decode: {e}"));
        }
    };
    if changes.is_empty() {
        count(StatusCode::NO_CONTENT);
        return no_content();
    }
    let endpoints = changes.len();
    match p.builder.externaldns(changes).await {
        Ok(applied) => {
            p.metrics.count_ignored_properties(&applied.unknown_properties);
            if !applied.unknown_properties.is_empty() {
                tracing::debug!(ignored = ?applied.unknown_properties, "ExternalDNS properties ignored");
            }
            tracing::debug!(endpoints, zones = applied.zones.len(), "ExternalDNS changes answered");
            count(StatusCode::NO_CONTENT);
            no_content()
        }
        Err(ExternalDnsFailure::Invalid(r)) => {
            tracing::warn!(section = r.section, item = r.item, error = %r.error, "ExternalDNS changes refused");
            count(StatusCode::BAD_REQUEST);
            let body = json!({"error": r.error, "section": r.section, "item": r.item});
            (StatusCode::BAD_REQUEST, [(header::VARY, "Content-Type")], axum::Json(body)).into_response()
        }
        Err(e @ ExternalDnsFailure::Disabled) => {
            count(StatusCode::SERVICE_UNAVAILABLE);
            failure(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        // Nothing was applied (or it is kept and will be answered): a retry can succeed.
        Err(e @ (ExternalDnsFailure::Persist { .. } | ExternalDnsFailure::Stopped)) => {
            count(StatusCode::SERVICE_UNAVAILABLE);
            failure(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e @ ExternalDnsFailure::NotBuilt(_)) => {
            count(StatusCode::INTERNAL_SERVER_ERROR);
            failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

fn no_content() -> Response {
    let mut r = answer(StatusCode::NO_CONTENT, Vec::new());
    r.headers_mut().remove(header::CONTENT_TYPE);
    r
}

/// `POST /adjustendpoints`: the desired endpoints less those `POST /records` would refuse
/// (a type gslbd does not serve, a bad target, a name in no zone ExternalDNS may write), so
/// that one bad Kubernetes object does not stop every other change. Each one left out is
/// logged.
async fn adjust(State(p): State<Provider>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = not_json(&headers) {
        p.metrics.count_externaldns("adjustendpoints", r.status().as_u16());
        return r;
    }
    let Some((view, cfg)) = config(&p) else {
        p.metrics.count_externaldns("adjustendpoints", 503);
        return failure(StatusCode::SERVICE_UNAVAILABLE, "[externaldns] is not configured");
    };
    let desired: Vec<Endpoint> = match serde_json::from_slice::<Option<Vec<Endpoint>>>(&body) {
        Ok(list) => list.unwrap_or_default(),
        Err(e) => {
            p.metrics.count_externaldns("adjustendpoints", 400);
            return failure(StatusCode::BAD_REQUEST, format!("the endpoints do not decode: {e}"));
        }
    };
    let kept: Vec<&Endpoint> = desired
        .iter()
        .filter(|e| {
            let why = match crate::externaldns::convert::check(e) {
                Err(why) => why,
                Ok(c) if cfg.zone_of(&c.name, &view.config.zones).is_none() => {
                    format!("{} is in no zone ExternalDNS may write here", c.name)
                }
                Ok(_) => return true,
            };
            tracing::warn!(name = %e.dns_name, record_type = %e.record_type, error = %why, "ExternalDNS endpoint left out");
            false
        })
        .collect();
    p.metrics.count_externaldns("adjustendpoints", 200);
    answer(StatusCode::OK, serde_json::to_vec(&kept).expect("endpoints serialize"))
}

/// `GET /healthz`: the provider answers.
async fn healthz(State(p): State<Provider>) -> Response {
    p.metrics.count_externaldns("healthz", 200);
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "ok\n").into_response()
}
