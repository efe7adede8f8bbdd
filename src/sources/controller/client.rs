//! HTTP access to the Elchi controller: `GET /dns/snapshot` and `GET /dns/changes`, with the
//! secret header, a whole-request timeout and a cap on the body size.

use reqwest::StatusCode;

use crate::config::ControllerConfig;
use crate::dns::name::Name;
use crate::elchi::api::{Payload, api_zone, same_zone};
use crate::elchi::response::{self, Response};

/// Bytes of a rejected body quoted in errors.
const BODY_QUOTE: usize = 200;

/// Why the client could not be built (the sync is then disabled until a reload).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// `ca_file` cannot be read.
    #[error("cannot read ca_file {path}: {error}")]
    ReadCa {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        error: String,
    },
    /// `ca_file` holds no PEM certificates.
    #[error("ca_file {path} is not PEM: {error}")]
    NotPem {
        /// The file.
        path: std::path::PathBuf,
        /// The parser's message.
        error: String,
    },
    /// The TLS stack refused the settings.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// Why a sync attempt failed. Every variant means "keep serving what we have".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// Connect, TLS, timeout or read failure.
    #[error("request failed: {0}")]
    Transport(String),
    /// A status other than 2xx (or 304 for changes).
    #[error("unexpected status {status}: {body:?}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The first bytes of the body.
        body: String,
    },
    /// A redirect: never followed, so the secret only ever goes to the configured endpoint.
    #[error("redirect {status} to {location:?} refused (redirects are not followed; fix the endpoint)")]
    Redirect {
        /// HTTP status code.
        status: u16,
        /// The `Location` header, as sent.
        location: String,
    },
    /// The body exceeded `max_response_size`.
    #[error("response larger than {limit} bytes")]
    TooLarge {
        /// The configured cap.
        limit: usize,
    },
    /// The body is not the expected JSON.
    #[error("invalid JSON: {error}; body starts {body:?}")]
    Decode {
        /// The decoder's message.
        error: String,
        /// The first bytes of the body.
        body: String,
    },
    /// A required field is missing.
    #[error("invalid response: missing {0}")]
    Missing(&'static str),
    /// The response is for another zone.
    #[error("response is for zone {0:?}, not ours")]
    WrongZone(String),
}

/// A configured client for one zone's controller.
pub struct ControllerClient {
    http: reqwest::Client,
    base: String,
    zone: Name,
    secret: String,
    params: Vec<(&'static str, String)>,
    max_body: usize,
    /// TTL for records without one (the zone's `default_ttl`).
    default_ttl: u32,
}

impl ControllerClient {
    /// Builds the client; fails only on an unusable CA file or TLS setup.
    pub fn new(cfg: &ControllerConfig, zone: &Name, default_ttl: u32) -> Result<ControllerClient, ClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .user_agent(concat!("gslbd/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            // A redirect would carry X-Elchi-Secret to wherever it points (another host, or
            // https → http), and its data would be served as the zone's.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .tls_danger_accept_invalid_certs(cfg.tls_skip_verify);
        if let Some(ca) = &cfg.ca_file {
            let pem = crate::config::file::read_regular(ca, crate::config::file::PEM_MAX)
                .map_err(|e| ClientError::ReadCa { path: ca.clone(), error: e.to_string() })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::NotPem { path: ca.clone(), error: e.to_string() })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ClientError::Build(e.to_string()))?;
        let mut params = vec![("zone", api_zone(zone))];
        if let Some(ip) = &cfg.node_ip {
            params.push(("node_ip", ip.clone()));
        }
        if !cfg.regions.is_empty() {
            params.push(("regions", cfg.regions.join(",")));
        }
        Ok(ControllerClient {
            http,
            base: cfg.endpoint.clone(),
            zone: zone.clone(),
            secret: cfg.secret.clone(),
            params,
            max_body: cfg.max_response_size,
            default_ttl,
        })
    }

    /// `GET /dns/snapshot`: the full record set.
    pub async fn snapshot(&self) -> Result<Payload, SyncError> {
        let (status, body) = self.get("/dns/snapshot", None).await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        self.payload(self.decode_off_worker(body).await?)
    }

    /// `GET /dns/changes?since=`: `None` when nothing changed, else the full new record set.
    pub async fn changes(&self, since: &str) -> Result<Option<Payload>, SyncError> {
        let (status, body) = self.get("/dns/changes", Some(since)).await?;
        if status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        let json = self.decode_off_worker(body).await?;
        if json.unchanged {
            return Ok(None);
        }
        self.payload(json).map(Some)
    }

    /// Decodes and converts on a blocking thread: a big zone's body takes long enough to
    /// stall the async workers (TCP DNS, the admin API) if done on one.
    async fn decode_off_worker(&self, body: Vec<u8>) -> Result<Response, SyncError> {
        let (apex, default_ttl) = (self.zone.clone(), self.default_ttl);
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let decoded = response::decode(&body, &apex, default_ttl)
                .map_err(|e| SyncError::Decode { error: e.to_string(), body: quote(&body) });
            let took_ms = started.elapsed().as_millis() as u64;
            tracing::debug!(zone = %apex, took_ms, "controller response decoded");
            decoded
        })
        .await
        .unwrap_or_else(|e| Err(SyncError::Decode { error: e.to_string(), body: String::new() }))
    }

    fn payload(&self, json: Response) -> Result<Payload, SyncError> {
        let zone =
            json.zone.filter(|z| !z.trim().is_empty() || self.zone.is_root()).ok_or(SyncError::Missing("zone"))?;
        let version_hash = json.version_hash.filter(|h| !h.is_empty()).ok_or(SyncError::Missing("version_hash"))?;
        if !same_zone(&zone, &self.zone) {
            return Err(SyncError::WrongZone(zone));
        }
        Ok(Payload { zone, version_hash, received: json.received, converted: json.converted })
    }

    async fn get(&self, path: &str, since: Option<&str>) -> Result<(StatusCode, Vec<u8>), SyncError> {
        let mut query: Vec<(&str, &str)> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Some(since) = since {
            query.insert(1, ("since", since));
        }
        let started = std::time::Instant::now();
        let mut resp = self
            .http
            .get(format!("{}{path}", self.base))
            .query(&query)
            .header("X-Elchi-Secret", &self.secret)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| SyncError::Transport(error_chain(&e)))?;
        let status = resp.status();
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            return Err(SyncError::Redirect { status: status.as_u16(), location });
        }
        if resp.content_length().is_some_and(|n| n > self.max_body as u64) {
            return Err(SyncError::TooLarge { limit: self.max_body });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| SyncError::Transport(error_chain(&e)))? {
            if body.len() + chunk.len() > self.max_body {
                return Err(SyncError::TooLarge { limit: self.max_body });
            }
            body.extend_from_slice(&chunk);
        }
        let took_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(zone = %self.zone, path, bytes = body.len(), took_ms, "controller response read");
        Ok((status, body))
    }
}

fn quote(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(BODY_QUOTE)]).into_owned()
}

fn status_error(status: StatusCode, body: &[u8]) -> SyncError {
    SyncError::Status { status: status.as_u16(), body: quote(body) }
}

/// reqwest's Display hides the cause ("error sending request"); show the whole chain.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}
