//! TLS server configurations for the admin API (HTTPS) and DNS over TLS, built from the
//! identity the config reads ([`crate::config::identity`]).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;

use crate::config::identity;

/// A server configuration for `cert` and `key`, offering the ALPN protocols `alpn`.
pub fn server_config(cert: &Path, key: &Path, alpn: &[&[u8]]) -> anyhow::Result<Arc<ServerConfig>> {
    let identity = identity::read(cert, key).map_err(anyhow::Error::msg)?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(identity.certs, identity.key)
        .map_err(|e| anyhow::anyhow!("the certificate and key do not match: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
