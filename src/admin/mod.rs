//! The admin HTTP API: the Elchi-compatible webhook (`/notify`), `/health`, `/ready` and
//! `/records`. It runs on the async runtime beside, never on, the DNS data plane.
//!
//! Connections are accepted by our own loop so each is bounded: caps on open connections in
//! all and per client address, where the connection idle longest (between requests, or
//! still sending its headers) is closed to make room, so `/health` and `/ready` stay
//! reachable while others hold connections open; a read deadline (`header_timeout`) for the
//! head and, read whole before the request counts as busy, for the body (slowloris, slow
//! bodies) and the TLS handshake, a head size limit and a body size limit.

pub mod auth;
pub mod error;
pub mod externaldns;
pub mod health;
pub mod members;
pub mod routes;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::builder::BuilderHandle;
use crate::config::AdminConfig;
use crate::metrics::Metrics;
use crate::server::conns::ConnTable;

/// Largest request head (request line and headers) buffered.
pub const MAX_HEAD: usize = 64 * 1024;

/// The admin listener, bound at start-up so a bad address or certificate fails early.
pub struct AdminListener {
    listener: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    config: AdminConfig,
}

impl AdminListener {
    /// Binds the listen address and loads the certificate, if any.
    pub fn bind(config: &AdminConfig) -> Result<AdminListener, BindError> {
        let bind_error = |e: std::io::Error| BindError::Bind { addr: config.listen, error: e.to_string() };
        let listener = std::net::TcpListener::bind(config.listen).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let tls = match &config.tls {
            None => None,
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        };
        Ok(AdminListener { listener, tls, config: config.clone() })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether the listener speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown`.
    pub async fn serve(
        self,
        builder: BuilderHandle,
        metrics: Arc<Metrics>,
        share: Option<tokio::sync::mpsc::UnboundedSender<crate::cluster::members::Share>>,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let state = routes::AppState::new(builder, metrics, &self.config, share);
        let limits = Limits {
            max_body: self.config.max_body,
            header_timeout: self.config.header_timeout,
            max_connections: self.config.max_connections,
            max_connections_per_client: self.config.max_connections_per_client,
        };
        serve_router(self.listener, self.tls, routes::router(state), limits, "admin", shutdown).await
    }
}

/// What one HTTP listener allows each connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body.
    pub max_body: usize,
    /// Longest wait for a request's head, its body, or a TLS handshake.
    pub header_timeout: Duration,
    /// Most open connections.
    pub max_connections: usize,
    /// Most open connections from one client address.
    pub max_connections_per_client: usize,
}

/// Serves `app` on `listener` until `shutdown`, each connection bounded by `limits` (the
/// admin API's listener and the ExternalDNS provider's).
pub async fn serve_router(
    listener: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    limits: Limits,
    what: &'static str,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let table = Arc::new(ConnTable::default());
    let header_timeout = limits.header_timeout;
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(listener = what, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let admitted = match table.admit(peer.ip(), limits.max_connections, limits.max_connections_per_client) {
            Ok(a) => Arc::new(a),
            Err(why) => {
                tracing::debug!(listener = what, %peer, ?why, "connection cap reached with every connection busy; closing");
                continue;
            }
        };
        // A connection is busy from a request's whole arrival (head and body) to its
        // response, else idle: one still sending its body may be closed to make room.
        let service = {
            let tower = TowerToHyperService::new(app.clone());
            let admitted = Arc::clone(&admitted);
            let max_body = limits.max_body;
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (tower, admitted) = (tower.clone(), Arc::clone(&admitted));
                async move {
                    let req = match whole(req, max_body, header_timeout).await {
                        Ok(req) => req,
                        Err(e) => return Ok(axum::response::IntoResponse::into_response(e)),
                    };
                    let mut req = req;
                    // Handlers that log who asked (`/members/state`) read it here.
                    req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                    admitted.busy();
                    let r = hyper::service::Service::call(&tower, req).await;
                    admitted.idle();
                    r
                }
            })
        };
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let closed = admitted.close.clone();
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(MAX_HEAD);
            let result = match tls {
                None => {
                    let conn = http.serve_connection(TokioIo::new(wire::JsonErrors::new(stream)), service);
                    tokio::select! { r = conn => r, _ = shutdown.cancelled() => Ok(()), _ = closed.cancelled() => Ok(()) }
                }
                Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        let conn = http.serve_connection(TokioIo::new(wire::JsonErrors::new(tls_stream)), service);
                        tokio::select! { r = conn => r, _ = shutdown.cancelled() => Ok(()), _ = closed.cancelled() => Ok(()) }
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(listener = what, %peer, error = %e, "TLS handshake failed");
                        Ok(())
                    }
                    Err(_) => Ok(()),
                },
            };
            if let Err(e) = result {
                tracing::debug!(listener = what, %peer, error = %e, "connection ended");
            }
        });
    }
}

/// The request with its body read whole: at most `max` bytes (413 beyond, at once when the
/// declared length says so) within `deadline` (408 after it, like a slow head).
async fn whole(
    req: hyper::Request<hyper::body::Incoming>,
    max: usize,
    deadline: Duration,
) -> Result<hyper::Request<axum::body::Body>, error::ApiError> {
    use axum::http::StatusCode;
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || error::ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body larger than {max} bytes"));
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    match tokio::time::timeout(deadline, axum::body::to_bytes(axum::body::Body::new(body), max)).await {
        Err(_) => Err(error::ApiError::new(StatusCode::REQUEST_TIMEOUT, "request body timed out")),
        Ok(Err(_)) if declared.is_none() => Err(too_large()),
        Ok(Err(e)) => Err(error::ApiError::new(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}"))),
        Ok(Ok(bytes)) => Ok(hyper::Request::from_parts(parts, axum::body::Body::from(bytes))),
    }
}

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, BindError> {
    Ok(TlsAcceptor::from(crate::tls::server_config(cert, key, &[])?))
}

/// Why the admin API cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// The listen address cannot be bound.
    #[error("cannot bind the admin API on {addr}: {error}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        error: String,
    },
    /// The certificate and key cannot serve TLS.
    #[error("admin TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}
