//! The connection to NATS every cluster task makes: bounded in time, credentials and CA read
//! as every file gslbd reads, and the client's connection events handed to the caller (a
//! lost connection is noticed at once, not at the next write).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::cluster::ClusterConfig;
use crate::config::file;

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The credentials or CA file cannot be used.
    #[error("{}: {error}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// NATS did not accept the connection.
    #[error("connecting to NATS: {0}")]
    Connect(String),
}

/// Connects as `gslbd-<instance><suffix>` (no reconnects: the caller starts a new session).
pub async fn connect(
    config: &ClusterConfig,
    suffix: &str,
) -> Result<(async_nats::Client, mpsc::UnboundedReceiver<async_nats::Event>), ConnectError> {
    let (events, received) = mpsc::unbounded_channel();
    let mut options = async_nats::ConnectOptions::new()
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                // The session is gone when nobody receives: nothing to tell.
                let _ = events.send(event);
            }
        })
        .name(format!("gslbd-{}{suffix}", config.instance))
        .connection_timeout(Duration::from_secs(2))
        .max_reconnects(Some(0));
    // Both files are read here, bounded like every file gslbd reads, rather than by the
    // client (which reads whatever the path leads to).
    if let Some(path) = &config.credentials {
        let unusable = |error: String| ConnectError::Credentials { path: path.clone(), error };
        let creds = file::read_text(path, file::CREDENTIALS_MAX).map_err(unusable)?;
        options = options.credentials(&creds).map_err(|e| unusable(e.to_string()))?;
    }
    if let Some(ca) = &config.tls_ca {
        let tls = trusting(ca).map_err(|error| ConnectError::Credentials { path: ca.clone(), error })?;
        options = options.tls_client_config(tls).require_tls(true);
    }
    let client = options.connect(config.nats.clone()).await.map_err(|e| ConnectError::Connect(e.to_string()))?;
    Ok((client, received))
}

/// A TLS client configuration that trusts the certificates of the PEM file `ca`.
fn trusting(ca: &std::path::Path) -> Result<tokio_rustls::rustls::ClientConfig, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let pem = file::read_regular(ca, file::PEM_MAX).map_err(|e| format!("cannot read: {e}"))?;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.map_err(|e| format!("not PEM: {e}"))?).map_err(|e| format!("not a CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("holds no certificate".into());
    }
    Ok(tokio_rustls::rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}
