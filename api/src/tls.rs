//! The TCP listener's TLS: the server configuration from a PEM certificate
//! chain and key (the daemon makes them, or the user gives them), and the
//! client configuration trusting one CA (for the CLI).
//!
//! Must not touch: certificate generation or files (the daemon's
//! business); it only reads the PEM it is given.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The PEM text holds no certificate, or a broken one.
    #[error("no usable PEM certificate: {0}")]
    Certificate(String),
    /// The PEM text holds no private key, or a broken one.
    #[error("no usable PEM private key: {0}")]
    Key(String),
    /// rustls refused the pair (the key does not match, say).
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(|e| TlsError::Certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate("none found".into()));
    }
    Ok(chain)
}

/// TLS 1.2 and 1.3 with ring's safe defaults, HTTP/1.1 only (upgrades for
/// exec and port-forward need it; kubectl asks for it on those too).
pub fn server_config(chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates(chain_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?.with_no_client_auth().with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client trusting the certificates of `ca_pem` only.
pub fn client_config(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(ca_pem)? {
        roots.add(certificate)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
