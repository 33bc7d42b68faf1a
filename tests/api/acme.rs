//! `--acme-domain` against a real ACME server on loopback (issue 16,
//! point 6): Debian's `pebble` (Let's Encrypt's test server), installed by
//! the test script. natter answers pebble's TLS-ALPN-01 challenge on its
//! own HTTPS port, serves the certificate pebble issues, keeps it in
//! `<data>/acme` for the next start, and renews one that is 30 days from
//! expiry without a restart.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;

use crate::cli::{serve, Server};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A test CA and a certificate it signs for localhost and 127.0.0.1,
/// valid from `from` days ago for `days` days: (CA PEM, cert PEM, key PEM).
fn signed(ca: &(rcgen::Certificate, rcgen::KeyPair), from: i64, days: i64) -> (String, String) {
    let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(from);
    p.not_after = now + time::Duration::days(days - from);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.0, &ca.1).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn test_ca() -> (rcgen::Certificate, rcgen::KeyPair) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "natter test CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (cert, key)
}

/// A running pebble: its directory URL and management port.
struct Pebble {
    _child: tokio::process::Child,
    directory: String,
    management: u16,
}

async fn pebble(dir: &Path, ca: &(rcgen::Certificate, rcgen::KeyPair), tls_port: u16) -> Pebble {
    let (cert, key) = signed(ca, 1, 30);
    std::fs::write(dir.join("pebble-cert.pem"), cert).unwrap();
    std::fs::write(dir.join("pebble-key.pem"), key).unwrap();
    let (listen, management) = (free_port(), free_port());
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": dir.join("pebble-cert.pem"),
        "privateKey": dir.join("pebble-key.pem"),
        "httpPort": free_port(),
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let child = tokio::process::Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        // No random waits before validating, no rejected nonces: the
        // test is about natter, not about retries.
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("pebble (apt-get install pebble; scripts/test.sh installs it)");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", listen))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pebble did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Pebble {
        _child: child,
        directory: format!("https://127.0.0.1:{listen}/dir"),
        management,
    }
}

/// A client that trusts only `root`.
fn trusting(root: &str) -> reqwest::Client {
    crate::helpers::client_builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn start(data: &Path, port: u16, pebble: &Pebble, ca_file: &str) -> Server {
    let bind = format!("127.0.0.1:{port}");
    serve(
        data,
        &[
            ("NATTER_BIND", &bind),
            ("NATTER_ACME_DOMAIN", "localhost"),
            ("NATTER_ACME_DIRECTORY", &pebble.directory),
            ("NATTER_ACME_CA_FILE", ca_file),
            ("NATTER_ACME_EMAIL", "ops@example.com"),
        ],
    )
    .await
}

#[tokio::test]
async fn acme_obtains_keeps_and_renews_the_certificate_against_pebble() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.0.pem()).unwrap();
    let ca_file = ca_file.to_str().unwrap().to_owned();
    let port = free_port();
    let pebble = pebble(dir.path(), &ca, port).await;
    let data = dir.path().join("data");

    // First start: a certificate from pebble, after the challenge on
    // natter's own port.
    let s = start(&data, port, &pebble, &ca_file).await;
    s.logged_within(
        &["new certificate obtained and deployed"],
        Duration::from_secs(60),
    )
    .await;
    let root = trusting(&ca.0.pem())
        .get(format!("https://127.0.0.1:{}/roots/0", pebble.management))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let issued = trusting(&root);
    let r = issued
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    s.logged(&["certificate stored in <data>/acme"]).await;
    s.stop().await;
    let cached: Vec<_> = std::fs::read_dir(data.join("acme"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("cached_cert_")
        })
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let cached = cached[0].clone();

    // Next start: the stored one, no new order.
    let s = start(&data, port, &pebble, &ca_file).await;
    s.logged(&["certificate deployed from <data>/acme"]).await;
    let r = issued
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!s
        .later
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("new certificate obtained")));
    s.stop().await;

    // A stored certificate with 31 days left is kept.
    let (cert, key) = signed(&ca, 59, 90);
    std::fs::write(&cached, format!("{key}{cert}")).unwrap();
    let s = start(&data, port, &pebble, &ca_file).await;
    s.logged(&["certificate deployed from <data>/acme"]).await;
    let ours = trusting(&ca.0.pem());
    let r = ours
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the stored certificate is served"
    );
    s.stop().await;

    // One with 29 days left is renewed while the server runs.
    let (cert, key) = signed(&ca, 61, 90);
    std::fs::write(&cached, format!("{key}{cert}")).unwrap();
    let s = start(&data, port, &pebble, &ca_file).await;
    s.logged(&["certificate deployed from <data>/acme"]).await;
    s.logged_within(
        &["new certificate obtained and deployed"],
        Duration::from_secs(60),
    )
    .await;
    let r = issued
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "pebble's new certificate is served"
    );
    s.logged(&["certificate stored in <data>/acme"]).await;
    let stored = std::fs::read_to_string(&cached).unwrap();
    assert!(
        !stored.contains(&cert),
        "the renewed certificate replaced it"
    );
    s.stop().await;
}
