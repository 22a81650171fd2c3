//! HTTPS/WSS served directly: the certificate chain and key from PEM files.
//!
//! The rustls configuration is built here rather than with axum-server's
//! `from_pem_file` so that errors name the file and what is wrong with it, and
//! so the crypto provider is explicit (ring, which reqwest already uses) instead
//! of whichever one happens to be the process default.

use crate::config::TlsFiles;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Loads `files` into a server configuration offering HTTP/2 and HTTP/1.1.
pub fn load(files: &TlsFiles) -> Result<RustlsConfig, String> {
    let cert_path = files.cert.display();
    let key_path = files.key.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("QUOTA_TLS_CERT {cert_path}: cannot read: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("QUOTA_TLS_CERT {cert_path}: not a PEM certificate chain: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "QUOTA_TLS_CERT {cert_path}: holds no certificate (expected -----BEGIN CERTIFICATE-----)"
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!("QUOTA_TLS_KEY {key_path}: no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}")
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "QUOTA_TLS_CERT {cert_path} and QUOTA_TLS_KEY {key_path} do not make a pair: {e}"
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}
