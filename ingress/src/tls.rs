//! TLS termination: the rustls server configuration and the certificate
//! resolver that picks, for each handshake, the certificate of the table
//! being served now by the client's SNI name (exact, then wildcard, then
//! the default certificate; none fails the handshake).
//!
//! The crypto provider is *ring*, passed explicitly rather than installed
//! as the process default: ring builds with nothing but a C compiler and
//! is already in the workspace (hickory, webpki), where aws-lc-rs needs
//! cmake and a long C build on a 2-core machine. Passing the provider
//! also keeps rustls from having to guess one, which it cannot do (and
//! panics) when feature unification enables both, as other crates of the
//! workspace enable aws-lc-rs. What ring lacks is the post-quantum hybrid
//! key exchange (X25519MLKEM768) and FIPS mode; clients fall back to
//! X25519.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::debug;

use crate::{IngressError, IngressTable};

/// Picks the certificate for a handshake from the current table.
#[derive(Debug)]
struct SniResolver {
    table: Arc<ArcSwap<IngressTable>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = client_hello.server_name();
        let found = self.table.load().certificate(name);
        if found.is_none() {
            debug!(sni = name.unwrap_or(""), "no certificate for this name and no default: failing the handshake");
        }
        found
    }
}

/// The TLS server configuration: TLS 1.2 and 1.3 with ring's safe
/// defaults, no client certificates, ALPN `h2` then `http/1.1`.
pub(crate) fn server_config(table: Arc<ArcSwap<IngressTable>>) -> Result<ServerConfig, IngressError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(IngressError::Tls)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { table }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
