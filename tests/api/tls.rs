//! HTTPS by itself (issue 16, point 6, the certificate-file half):
//! `--tls-cert`/`--tls-key` serve HTTPS with HTTP/2 offered over ALPN,
//! `--redirect-bind` answers plain HTTP with a redirect, and bad files or
//! settings end with one clear line.

use std::time::Duration;

use reqwest::StatusCode;

use crate::cli::{run, serve};

/// A self-signed certificate for 127.0.0.1 and localhost, written to
/// `dir`: (cert path, key path, cert PEM).
fn certificate(dir: &std::path::Path) -> (String, String, String) {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = c.cert.pem();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, c.key_pair.serialize_pem()).unwrap();
    (
        cert_path.to_str().unwrap().to_owned(),
        key_path.to_str().unwrap().to_owned(),
        cert,
    )
}

fn client(cert: &str, http2_only: bool) -> reqwest::Client {
    let mut b = crate::helpers::client_builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20));
    if http2_only {
        b = b.http2_prior_knowledge();
    } else {
        b = b.http1_only();
    }
    b.build().unwrap()
}

/// A free port on loopback (bound and let go; nothing else binds here).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn https_with_http2_and_a_redirect_from_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = certificate(dir.path());
    let data = dir.path().join("data");
    let redirect = free_port();
    let redirect_bind = format!("127.0.0.1:{redirect}");
    let s = serve(
        &data,
        &[
            ("NATTER_TLS_CERT", &cert),
            ("NATTER_TLS_KEY", &key),
            ("NATTER_REDIRECT_BIND", &redirect_bind),
            ("NATTER_ADMIN_EMAIL", "a@example.com"),
            ("NATTER_ADMIN_PASSWORD", "a-password"),
        ],
    )
    .await;
    assert!(s.base.starts_with("https://127.0.0.1:"), "{}", s.base);
    // HTTP/2 over ALPN for a client that offers it, HTTP/1.1 for one that
    // does not.
    let r = client(&pem, true)
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let h1 = client(&pem, false);
    let r = h1.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    // The API works over it, and an event stream flows over HTTP/2.
    let r = client(&pem, true)
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&serde_json::json!({"email": "a@example.com", "password": "a-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut events = client(&pem, true)
        .get(format!("{}/api/v1/events", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(events.version(), reqwest::Version::HTTP_2);
    let first = tokio::time::timeout(Duration::from_secs(20), events.chunk())
        .await
        .expect("a frame within 20 s")
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&first).into_owned();
    assert!(
        first.starts_with(':') || first.starts_with("retry:") || first.starts_with("event:"),
        "SSE over HTTP/2: {first:?}"
    );
    // Plain HTTP on the main port gets no page.
    let plain = reqwest::Client::new()
        .get(s.base.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.map_or(true, |r| r.status() != StatusCode::OK));
    // Docker's HEALTHCHECK: natter healthcheck with the server's settings
    // asks over TLS (a self-signed certificate on loopback is fine).
    let bind = s.base.trim_start_matches("https://").to_owned();
    let (code, out) = run(
        &["healthcheck"],
        &[
            ("NATTER_BIND", bind.as_str()),
            ("NATTER_TLS_CERT", cert.as_str()),
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["healthcheck"], &[("NATTER_BIND", bind.as_str())], None).await;
    assert_eq!(code, 1, "plain HTTP to the TLS port is not healthy: {out}");
    // Plain HTTP on the redirect port: 308 to the same path on HTTPS.
    let r = crate::helpers::no_redirects()
        .post(format!("http://{redirect_bind}/inbox?q=a%20b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers()["location"],
        format!("{}/inbox?q=a%20b", s.base).as_str()
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_certificate_settings_end_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path());
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let j = junk.to_str().unwrap();
    for (env, want) in [
        (
            vec![("NATTER_TLS_CERT", cert.as_str())],
            "set both --tls-cert and --tls-key",
        ),
        (
            vec![("NATTER_REDIRECT_BIND", "127.0.0.1:0")],
            "--redirect-bind sends plain HTTP to HTTPS",
        ),
        (
            vec![("NATTER_TLS_CERT", j), ("NATTER_TLS_KEY", key.as_str())],
            "holds no PEM certificate",
        ),
        (
            vec![("NATTER_TLS_CERT", cert.as_str()), ("NATTER_TLS_KEY", j)],
            "cannot read --tls-key",
        ),
        (
            vec![
                ("NATTER_TLS_CERT", cert.as_str()),
                ("NATTER_TLS_KEY", "/nonexistent/key.pem"),
            ],
            "cannot read --tls-key /nonexistent/key.pem",
        ),
    ] {
        let mut env = env;
        env.push(("NATTER_DATA", d));
        env.push(("NATTER_BIND", "127.0.0.1:0"));
        let (code, err) = run(&["serve"], &env, None).await;
        assert_eq!(code, 2, "{env:?}: {err}");
        assert!(err.contains(want), "{want:?} not in {err}");
        assert_eq!(
            err.trim()
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1,
            "{err}"
        );
    }
}
