//! TLS server configurations for the admin API (HTTPS) and DNS over TLS, built from the
//! identity the config reads ([`crate::config::identity`]).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;

use crate::config::identity;

/// A certificate and key that cannot serve TLS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// A server configuration for `cert` and `key`, offering the ALPN protocols `alpn`.
pub fn server_config(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
    let identity = identity::read(cert, key).map_err(TlsError)?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(identity.certs, identity.key)
        .map_err(|e| TlsError(format!("the certificate and key do not match: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
