//! gRPC checks: the gRPC health checking protocol (grpc.health.v1 `Health/Check`, through
//! tonic-health's client) over plaintext HTTP/2 or TLS with ALPN h2. SERVING is up; any
//! other answer or gRPC error is down with its name ("grpc NOT_SERVING", "grpc
//! UNIMPLEMENTED"). Targets at one endpoint share an HTTP/2 connection (made on first use
//! and again after it breaks), so many services of one server cost one connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio_rustls::rustls;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::error::{ProbeError, describe_io};
use crate::config::CheckConfig;

/// The TLS client settings of gRPC checks: verifying certificates against the system's
/// roots, or not at all (`tls_verify = false`); both offer only h2.
#[derive(Clone)]
pub struct Tls {
    verify: Option<Arc<rustls::ClientConfig>>,
    insecure: Arc<rustls::ClientConfig>,
}

impl Default for Tls {
    fn default() -> Self {
        use rustls_platform_verifier::ConfigVerifierExt;
        let h2 = |mut c: rustls::ClientConfig| {
            c.alpn_protocols = vec![b"h2".to_vec()];
            Arc::new(c)
        };
        let verify = rustls::ClientConfig::with_platform_verifier()
            .map_err(|e| tracing::warn!(error = %e, "no system certificate roots for gRPC checks over TLS"))
            .ok()
            .map(h2);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let insecure = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Tls { verify, insecure: h2(insecure) }
    }
}

/// One target's health client.
pub struct Grpc {
    client: HealthClient<Channel>,
    service: String,
    metadata: Vec<(MetadataKey<tonic::metadata::Ascii>, MetadataValue<tonic::metadata::Ascii>)>,
}

/// What makes two targets' connections the same: targets that differ only in the service
/// asked (or headers, interval...) share one HTTP/2 connection, as gRPC clients do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelKey {
    addr: SocketAddr,
    tls: bool,
    verify: bool,
    host: Option<String>,
    timeout: std::time::Duration,
}

impl ChannelKey {
    /// The key of `check` probing `addr`.
    pub fn of(addr: SocketAddr, check: &CheckConfig) -> ChannelKey {
        ChannelKey { addr, tls: check.tls, verify: check.tls_verify, host: check.host.clone(), timeout: check.timeout }
    }
}

impl Grpc {
    /// A client asking `check`'s service over `channel` (from [`channel`]).
    pub fn new(channel: Channel, check: &CheckConfig) -> Result<Grpc, String> {
        let mut metadata = Vec::new();
        for (name, value) in &check.headers {
            let key = MetadataKey::from_bytes(name.as_bytes()).map_err(|e| format!("metadata {name}: {e}"))?;
            let value = MetadataValue::try_from(value.as_str()).map_err(|e| format!("metadata {name}: {e}"))?;
            metadata.push((key, value));
        }
        Ok(Grpc { client: HealthClient::new(channel), service: check.service.clone(), metadata })
    }
}

/// A channel to `addr` (connected lazily, from `source` when given), over TLS when the check
/// asks for it.
pub fn channel(addr: SocketAddr, check: &CheckConfig, source: Option<IpAddr>, tls: &Tls) -> Result<Channel, String> {
    let tls = match (check.tls, check.tls_verify) {
        (false, _) => None,
        (true, false) => Some(Arc::clone(&tls.insecure)),
        (true, true) => Some(tls.verify.clone().ok_or("no system certificate roots to verify gRPC TLS")?),
    };
    // The name TLS verifies and SNI sends: `host`, else the address itself.
    let server_name = match &check.host {
        Some(h) => rustls::pki_types::ServerName::try_from(h.clone()).map_err(|e| e.to_string())?,
        None => rustls::pki_types::ServerName::IpAddress(addr.ip().into()),
    };
    let authority = check.host.clone().unwrap_or_else(|| addr.to_string());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{authority}"))
        .map_err(|e| e.to_string())?
        .user_agent(concat!("gslbd-health/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| e.to_string())?
        .connect_timeout(check.timeout);
    let connector = tower::service_fn(move |_: Uri| {
        let (tls, server_name) = (tls.clone(), server_name.clone());
        async move {
            let tcp = super::tcp::connect(addr, source).await?;
            Ok::<_, std::io::Error>(TokioIo::new(match tls {
                None => tokio_util::either::Either::Left(tcp),
                Some(config) => {
                    let tls = tokio_rustls::TlsConnector::from(config).connect(server_name, tcp).await?;
                    tokio_util::either::Either::Right(tls)
                }
            }))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}

impl Grpc {
    /// One `Health/Check`. The caller bounds it by the timeout.
    pub async fn check(&mut self) -> Result<(), ProbeError> {
        let mut request = tonic::Request::new(HealthCheckRequest { service: self.service.clone() });
        for (k, v) in &self.metadata {
            request.metadata_mut().insert(k.clone(), v.clone());
        }
        match self.client.check(request).await {
            Ok(answer) => match answer.into_inner().status() {
                ServingStatus::Serving => Ok(()),
                other => Err(ProbeError::Grpc(other.as_str_name().to_string())),
            },
            Err(status) => Err(describe(&status)),
        }
    }
}

/// A gRPC error as its code's name, with the connection's own reason when it never got as
/// far as an answer ("connection refused").
fn describe(status: &tonic::Status) -> ProbeError {
    let mut cur: Option<&dyn std::error::Error> = Some(status);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return ProbeError::Connection(describe_io(io));
        }
        cur = c.source();
    }
    let code = format!("{:?}", status.code());
    // `NotServing`-style names to the protocol's `NOT_SERVING` spelling.
    let mut name = String::with_capacity(code.len() + 4);
    for (i, ch) in code.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(ch.to_ascii_uppercase());
    }
    let message = status.message();
    ProbeError::Grpc(if message.is_empty() { name } else { format!("{name}: {message}") })
}

/// Accepts any certificate (`tls_verify = false`); signatures are still checked, so the
/// handshake proves the peer holds the key of the certificate it showed.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
