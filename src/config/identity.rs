//! A TLS identity from PEM files (`[server] tls_cert`/`tls_key`, `[admin] tls_cert`/
//! `tls_key`): the certificate chain and its private key, read and checked to belong
//! together, with errors that name the file. The runtime builds its TLS configurations from
//! an identity.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;

/// A certificate chain and the key that goes with it.
#[derive(Debug)]
pub struct Identity {
    /// The chain, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

/// Reads `cert` and `key` and checks that the key is the certificate's.
pub fn read(cert: &Path, key: &Path) -> Result<Identity, String> {
    let read = |p: &Path| {
        super::file::read_regular(p, super::file::PEM_MAX).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not PEM: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| format!("{} holds no private key: {e}", key.display()))?;
    // rustls checks that the key signs for the leaf certificate.
    ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs.clone(), key.clone_key())
        .map_err(|e| format!("the certificate and key do not match: {e}"))?;
    Ok(Identity { certs, key })
}
