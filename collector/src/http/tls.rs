//! HTTPS for the collector: its certificate and key from PEM files, re-read on SIGHUP (a broken
//! file is refused and the old certificate kept), and optionally mutual TLS — only clients with
//! a certificate from `client_ca_file` get through the handshake.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use std::path::Path;
use std::sync::{Arc, RwLock};
use vakt_config::collector::TlsConfig;

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it (expected PEM)", path.display()));
    }
    Ok(certs)
}

/// Builds the server's TLS configuration from the files, checking that key and certificate
/// belong together.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(tls.cert_file.get_ref())?;
    let key = PrivateKeyDer::from_pem_file(tls.key_file.get_ref())
        .map_err(|e| format!("{}: no private key in it ({e})", tls.key_file.get_ref().display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &tls.client_ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca.get_ref())? {
                roots.add(c).map_err(|e| format!("{}: {e}", ca.get_ref().display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("{}: {e}", ca.get_ref().display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("{} and {}: {e}", tls.cert_file.get_ref().display(), tls.key_file.get_ref().display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The TLS configuration in use; `replace` swaps it for new connections.
pub struct Certificates {
    current: RwLock<Arc<ServerConfig>>,
}

impl Certificates {
    pub fn load(files: TlsConfig) -> Result<Self, String> {
        Ok(Certificates { current: RwLock::new(server_config(&files)?) })
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Serves new connections with `fresh` (read and checked by a reload).
    pub fn adopt(&self, fresh: Certificates) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh.current();
    }
}
