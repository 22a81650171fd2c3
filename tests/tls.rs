//! HTTPS and WSS served directly when `QUOTA_TLS_CERT`/`QUOTA_TLS_KEY` are
//! set, with Secure session cookies and HSTS; bad certificate files stop the
//! binary at start with the file named.

mod common;

use common::{create_workspace, serve_with_tls, test_config, ADMIN};
use futures_util::StreamExt;
use quota_alert::engine::SystemClock;
use quota_alert::service::QuotaService;
use rustls::pki_types::pem::PemObject;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A fresh directory with a self-signed certificate for `localhost`.
struct CertDir {
    dir: PathBuf,
    cert_pem: String,
}

impl CertDir {
    fn new(name: &str) -> Self {
        let dir = common::process::temp_dir(&format!("tls-{name}"));
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("self-signed certificate");
        let cert_pem = certified.cert.pem();
        std::fs::write(dir.join("cert.pem"), &cert_pem).expect("write cert");
        std::fs::write(dir.join("key.pem"), certified.key_pair.serialize_pem()).expect("write key");
        Self { dir, cert_pem }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

#[tokio::test]
async fn https_and_wss_are_served_with_secure_cookies_and_hsts() {
    let certs = CertDir::new("serve");
    let (cert, key) = (certs.cert(), certs.key());
    let config = test_config(&[
        ("QUOTA_TLS_CERT", path_str(&cert)),
        ("QUOTA_TLS_KEY", path_str(&key)),
    ]);
    let tls = quota_alert::server::tls::load(config.tls.as_ref().expect("tls configured"))
        .expect("certificate loads");
    let service = QuotaService::new(config, Arc::new(SystemClock));
    let (base, addr) = serve_with_tls(service, Some(tls)).await;
    assert!(base.starts_with("https://localhost:"), "{base}");

    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certs.cert_pem.as_bytes()).expect("pem"),
        )
        .resolve("localhost", addr)
        .build()
        .expect("client");

    let health = https
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("https request");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000",
        "HSTS under TLS"
    );

    let key = create_workspace(&https, &base, "secure", None).await;

    let signed_in = https
        .post(format!("{base}/api/session"))
        .json(&json!({"api_key": key}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"].to_str().expect("cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }

    // Plain HTTP on the TLS port gets no page.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served on the TLS port"
    );

    // WSS: the snapshot arrives over TLS.
    let mut roots = rustls::RootCertStore::empty();
    let der =
        rustls::pki_types::CertificateDer::from_pem_slice(certs.cert_pem.as_bytes()).expect("der");
    roots.add(der).expect("root");
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let tls_stream = tokio_rustls::TlsConnector::from(Arc::new(client_config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").expect("name"),
            tcp,
        )
        .await
        .expect("tls handshake");
    let url = format!("wss://localhost:{}/api/quota/ws?token={key}", addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls_stream)
        .await
        .expect("wss upgrade");
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a message in time")
        .expect("open")
        .expect("frame");
    let first: Value = serde_json::from_str(first.to_text().expect("text")).expect("json");
    assert_eq!(first["type"], "quota_initial", "{first}");
    assert_eq!(first["data"]["workspace_id"], "secure", "{first}");
}

#[tokio::test]
async fn behind_a_tls_proxy_cookies_can_be_marked_secure() {
    let server = common::start_with(&[("QUOTA_COOKIE_SECURE", "true")]).await;
    let key = server.workspace("proxied").await;
    let response = server
        .http
        .post(server.url("/api/session"))
        .json(&json!({"api_key": key}))
        .send()
        .await
        .expect("sign in");
    let cookie = response.headers()["set-cookie"].to_str().expect("cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none(),
        "HSTS only when this server itself speaks TLS"
    );
}

/// Runs the binary with `env` and returns its exit code and stderr; it must
/// stop on its own (a bad setting stops it before it listens).
fn run_binary(dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quota-alert"));
    command
        .current_dir(dir)
        .env("QUOTA_ADMIN_RESET_KEY", ADMIN)
        .env(
            "QUOTA_DATABASE_URL",
            format!("sqlite://{}", dir.join("quota.db").display()),
        )
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_certificate_settings_stop_the_server_with_the_file_named() {
    let certs = CertDir::new("bad");
    let missing = certs.dir.join("missing.pem");
    let garbage = certs.dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let other = CertDir::new("other");
    let (cert, key, other_key) = (certs.cert(), certs.key(), other.key());

    // What is wrong, the environment, what stderr must name.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<String>);
    let cases: Vec<Case> = vec![
        (
            "a missing certificate file",
            vec![
                ("QUOTA_TLS_CERT", path_str(&missing)),
                ("QUOTA_TLS_KEY", path_str(&key)),
            ],
            vec!["QUOTA_TLS_CERT".into(), missing.display().to_string()],
        ),
        (
            "a certificate file holding no certificate",
            vec![
                ("QUOTA_TLS_CERT", path_str(&garbage)),
                ("QUOTA_TLS_KEY", path_str(&key)),
            ],
            vec!["QUOTA_TLS_CERT".into(), garbage.display().to_string()],
        ),
        (
            "a key file holding no key",
            vec![
                ("QUOTA_TLS_CERT", path_str(&cert)),
                ("QUOTA_TLS_KEY", path_str(&garbage)),
            ],
            vec!["QUOTA_TLS_KEY".into(), garbage.display().to_string()],
        ),
        (
            "a key that does not match the certificate",
            vec![
                ("QUOTA_TLS_CERT", path_str(&cert)),
                ("QUOTA_TLS_KEY", path_str(&other_key)),
            ],
            vec!["do not make a pair".into()],
        ),
        (
            "a certificate without a key",
            vec![("QUOTA_TLS_CERT", path_str(&cert))],
            vec!["QUOTA_TLS_KEY".into()],
        ),
    ];
    for (what, env, expected) in cases {
        let (code, stderr) = run_binary(&certs.dir, &env);
        assert_eq!(code, Some(2), "{what}: exit code; stderr: {stderr}");
        for part in expected {
            assert!(stderr.contains(&part), "{what}: {part:?} in {stderr:?}");
        }
    }
}
