//! HTTP in general: health, metrics, errors, limits and headers.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, body, spawn_app};

#[tokio::test]
async fn healthz_answers_ok_from_the_store() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await, json!({"status": "ok"}));
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_promised_families() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    app.start_conversation(&contact, "hello").await;
    let r = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(crate::helpers::METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for family in [
        "natter_http_requests_total{method=\"POST\",route=\"/api/v1/customer/conversations\",status=\"201\"}",
        "natter_messages_created_total{author=\"contact\"}",
        "natter_sse_connections",
        "natter_flush_seconds_bucket",
        "natter_flush_seconds_count",
    ] {
        assert!(text.contains(family), "missing {family} in\n{text}");
    }
}

#[tokio::test]
async fn metrics_open_only_with_the_metrics_token() {
    let app = spawn_app().await;
    let metrics = app.url("/metrics");
    let r = app.client.get(&metrics).send().await.unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = app
        .client
        .get(&metrics)
        .bearer_auth("test-metrics-token-012345678X")
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // An admin's own token is not the metrics token.
    let r = app
        .client
        .get(&metrics)
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(app.metrics().await.contains("natter_sse_connections"));
}

#[tokio::test]
async fn metrics_are_off_the_main_address_by_default() {
    let app = crate::helpers::spawn_app_with(|c| c.metrics_token = None).await;
    let r = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("anything-at-all-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("NATTER_METRICS_TOKEN") && message.contains("NATTER_METRICS_BIND"),
        "{message}"
    );
}

#[tokio::test]
async fn the_metrics_address_serves_metrics_alone() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.metrics_token = None;
        c.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let port = app.metrics_port.expect("metrics port bound");
    assert_ne!(port, 0);
    let (_, contact) = app.contact().await;
    app.start_conversation(&contact, "hello").await;
    let r = app
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("natter_messages_created_total{author=\"contact\"}"),
        "{text}"
    );
    // Nothing else lives there: not the API, not the pages.
    for path in ["/api/v1/me", "/inbox", "/healthz"] {
        let r = app
            .client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // And the main address still keeps them to itself.
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_routes_are_json_404_and_wrong_methods_405() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .client
        .delete(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn json_bodies_over_64_kib_get_413() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let big = json!({"body": "x".repeat(70 * 1024)});
    let r = app
        .post("/api/v1/customer/conversations", &contact, big)
        .await;
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn json_nested_deeper_than_64_levels_gets_400() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let deep = format!(
        "{{\"body\":\"hi\",\"x\":{}1{}}}",
        "[".repeat(65),
        "]".repeat(65)
    );
    let r = app
        .client
        .post(app.url("/api/v1/customer/conversations"))
        .bearer_auth(&contact)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::BAD_REQUEST, "malformed_request").await;
}

#[tokio::test]
async fn malformed_json_is_400_and_a_wrong_media_type_415() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let send = |ct: &'static str, b: &'static str| {
        app.client
            .post(app.url("/api/v1/customer/conversations"))
            .bearer_auth(&contact)
            .header("content-type", ct)
            .body(b)
            .send()
    };
    assert_error(
        send("application/json", "{\"body\":").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_request",
    )
    .await;
    assert_error(
        send("text/plain", "{\"body\":\"hi\"}").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_error(
        send("application/json", "{\"body\":42}").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    // Invalid UTF-8 is a malformed body, not a crash.
    let r = app
        .client
        .post(app.url("/api/v1/customer/conversations"))
        .bearer_auth(&contact)
        .header("content-type", "application/json")
        .body(vec![
            b'{', b'"', b'b', b'"', b':', b'"', 0xff, 0xfe, b'"', b'}',
        ])
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::BAD_REQUEST, "malformed_request").await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/healthz", "/setup", "/api/v1/me"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.contains_key("referrer-policy"));
    }
}

#[tokio::test]
async fn request_headers_over_32_kib_are_refused() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-filler", "a".repeat(40 * 1024))
        .send()
        .await;
    match r {
        Ok(r) => assert!(
            r.status() == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
                || r.status() == StatusCode::BAD_REQUEST,
            "{}",
            r.status()
        ),
        // Closing the connection on an oversized head is also a refusal.
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    // And the server is still fine.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_user_may_hold_only_so_many_event_streams() {
    // Keep-alives every second, so the server notices closed streams soon.
    let app = crate::helpers::spawn_app_with(|c| {
        c.streams_per_user = 2;
        c.sse_keepalive_secs = 1;
    })
    .await;
    let a = app.events("/api/v1/events", &app.admin_token, None).await;
    let b = app.events("/api/v1/events", &app.admin_token, None).await;
    let r = app.get("/api/v1/events", &app.admin_token).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another user is not affected, and a closed stream frees its slot.
    let (_, contact) = app.contact().await;
    let _c = app.events("/api/v1/customer/events", &contact, None).await;
    drop(a);
    drop(b);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = app.get("/api/v1/events", &app.admin_token).await;
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn searches_are_rate_limited_per_user() {
    let app = crate::helpers::spawn_app_with(|c| c.searches_per_minute = 2).await;
    for _ in 0..2 {
        assert_eq!(
            app.get("/api/v1/search?q=x", &app.admin_token)
                .await
                .status(),
            StatusCode::OK
        );
    }
    let r = app.get("/api/v1/search?q=x", &app.admin_token).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    // The server gives up on the request head and closes the connection.
    let n = tokio::time::timeout(std::time::Duration::from_secs(15), sock.read(&mut buf))
        .await
        .expect("closed within 15 s");
    // A reset by the server is as good as a close.
    if let Ok(n) = n {
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || head.starts_with("HTTP/1.1 408"), "{head:?}");
    }
    // And the server still answers others (on a new connection).
    let fresh = crate::helpers::new_client();
    assert_eq!(
        fresh
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::spawn_app_with(|c| c.connections_per_address = 3).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Open connections one by one, each with a request, and keep them.
    // (The test client's own pooled connection may already hold one.)
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("answered")
            .unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        statuses.push(head.get(9..12).unwrap_or("").to_owned());
        held.push(s);
    }
    let first_refused = statuses
        .iter()
        .position(|s| s == "429")
        .expect("a connection over the limit is refused");
    assert!((2..=3).contains(&first_refused), "{statuses:?}");
    assert!(
        statuses[..first_refused].iter().all(|s| s == "200"),
        "{statuses:?}"
    );
    assert!(
        statuses[first_refused..].iter().all(|s| s == "429"),
        "{statuses:?}"
    );
    let extra = held.pop();
    // Closing connections frees the allowance.
    drop(held);
    drop(extra);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let fresh = crate::helpers::new_client();
        if fresh
            .get(app.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "allowance never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn hsts_is_sent_when_the_base_url_is_https() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.base_url = "https://chat.example.com".into();
        c.base_url_explicit = true;
    })
    .await;
    let r = app.client.get(app.url("/login")).send().await.unwrap();
    assert!(r.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    let plain = spawn_app().await;
    let r = plain.client.get(plain.url("/login")).send().await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
}
