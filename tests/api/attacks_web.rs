//! The web-facing attacks of the security review, each performed as the
//! attacker did it: address-guard bypasses (webhooks and mail servers),
//! banners echoed by "Test connection", forged `X-Forwarded-For` hops,
//! lockout of someone else's account, login CSRF and open redirects, SSE
//! frame injection and silent streams, the setup race, slow bodies.

use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    body, login_form, no_redirects, spawn_app, spawn_app_with, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD,
};

/// The session cookie of a browser signed in through the form.
async fn page_session(app: &TestApp) -> (Client, String) {
    let s = crate::helpers::page_sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    (s.client, s.cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_guard_refuses_ipv4_embedded_in_ipv6_and_special_purpose_ranges() {
    let app = spawn_app_with(|c| c.webhooks_allow_private = false).await;
    for url in [
        "http://[::7f00:1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[::ffff:0:7f00:1]/hook",
        "http://[fec0::1]/hook",
        "http://192.0.0.8/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[2001::1]/teredo",
    ] {
        let r = app
            .post(
                "/api/v1/webhooks",
                &app.admin_token,
                json!({"url": url, "events": ["message.created"]}),
            )
            .await;
        let status = r.status();
        let b = body(r).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("NATTER_WEBHOOKS_ALLOW_PRIVATE"),
            "{url}: {b}"
        );
    }
    let listed = body(app.get("/api/v1/webhooks", &app.admin_token).await).await;
    assert_eq!(listed["webhooks"], json!([]), "nothing was stored");
}

fn email_settings(imap_host: &str, smtp_host: &str) -> Value {
    json!({
        "imap_host": imap_host, "imap_port": 993, "imap_tls": true,
        "smtp_host": smtp_host, "smtp_port": 587, "smtp_tls": true,
        "username": "u", "password": "p", "from_address": "support@shop.test",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_server_settings_cannot_point_at_internal_addresses() {
    let app = spawn_app_with(|c| c.webhooks_allow_private = false).await;
    for (imap, smtp) in [
        ("127.0.0.1", "mail.example.com"),
        ("169.254.169.254", "mail.example.com"),
        ("mail.example.com", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "mail.example.com"),
        ("localhost", "mail.example.com"),
        ("mail.example.com", "10.1.2.3"),
        ("[::7f00:1]", "mail.example.com"),
    ] {
        let r = app
            .post(
                "/api/v1/inboxes",
                &app.admin_token,
                json!({"name": "Mail", "channel": "email", "settings": email_settings(imap, smtp)}),
            )
            .await;
        let status = r.status();
        let b = body(r).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{imap} {smtp}: {b}"
        );
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("NATTER_WEBHOOKS_ALLOW_PRIVATE"),
            "{b}"
        );
    }
    // An inbox saved with public names cannot be moved to an internal one.
    let r = app
        .post(
            "/api/v1/inboxes",
            &app.admin_token,
            json!({"name": "Mail", "channel": "email",
                   "settings": email_settings("mail.example.com", "mail.example.com")}),
        )
        .await;
    let status = r.status();
    let inbox = body(r).await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let id = inbox["id"].as_str().unwrap();
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{id}"),
            &app.admin_token,
            json!({"settings": {"imap_host": "127.0.0.1"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// A TCP service on loopback holding a secret. `imap_like`, it
/// greets like an IMAP server and refuses every command with the secret in
/// its answer; without, it answers like an internal HTTP service and
/// closes.
async fn service_with_secret(imap_like: bool) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                if !imap_like {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nX-Internal-Secret: internal-secret-4711\r\n\r\ninternal-secret-4711")
                        .await;
                    return;
                }
                let _ = s.write_all(b"* OK internal-secret-4711 ready\r\n").await;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let tag = line.split_whitespace().next().unwrap_or("*").to_owned();
                    let reply = format!("{tag} NO [ALERT] internal-secret-4711 refused\r\n");
                    if s.write_all(reply.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_never_echoes_what_a_server_answered() {
    // Internal addresses allowed (as in a private deployment): even then
    // the admin's browser is not shown what the service said.
    let app = spawn_app().await;
    for imap_like in [false, true] {
        let port = service_with_secret(imap_like).await;
        let r = app
            .post(
                "/api/v1/inboxes",
                &app.admin_token,
                json!({"name": "Mail", "channel": "email", "settings": {
                    "imap_host": "127.0.0.1", "imap_port": port, "imap_tls": false,
                    "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": false,
                    "username": "u", "password": "p", "from_address": "support@shop.test",
                }}),
            )
            .await;
        let status = r.status();
        let inbox = body(r).await;
        assert_eq!(status, StatusCode::CREATED, "{inbox}");
        let id = inbox["id"].as_str().unwrap();
        let r = app
            .post(
                &format!("/api/v1/inboxes/{id}/test"),
                &app.admin_token,
                json!({}),
            )
            .await;
        let text = r.text().await.unwrap();
        assert!(text.contains("\"ok\":false"), "the test fails: {text}");
        assert!(
            !text.contains("internal-secret-4711") && !text.contains("X-Internal"),
            "the service's answer is not echoed: {text}"
        );
    }
}

/// A contact created through a trusted proxy that says the client is
/// `forwarded`.
async fn contact_via_proxy(app: &TestApp, forwarded: &str) -> StatusCode {
    app.client
        .post(app.url(&format!("/api/v1/widget/{}/contacts", app.widget_key)))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"name": "Visitor"}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_hop_left_of_a_port_or_unknown_hop_is_never_the_client() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.contacts_per_minute = 2;
    })
    .await;
    // The proxy appends the real client with a port; the attacker rotates
    // a forged hop to its left to dodge the per-address limit.
    for (real, forms) in [
        (
            "7.7.7.7",
            ["1.1.1.{i}, 7.7.7.7:5555", "1.1.1.{i}, 7.7.7.7:5556"],
        ),
        (
            "2001:db8::7",
            [
                "1.1.2.{i}, [2001:db8::7]:443",
                "1.1.2.{i}, [2001:db8::7]:444",
            ],
        ),
        (
            "unknown",
            ["1.1.3.{i}, unknown", "1.1.3.{i}, 9.9.9.9, unknown"],
        ),
    ] {
        let mut statuses = Vec::new();
        for i in 0..4 {
            let form = forms[i % 2].replace("{i}", &i.to_string());
            statuses.push(contact_via_proxy(&app, &form).await);
        }
        assert_eq!(
            statuses,
            [
                StatusCode::CREATED,
                StatusCode::CREATED,
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::TOO_MANY_REQUESTS
            ],
            "every request counts against {real}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_lock_the_attackers_address_not_the_account() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let from = |ip: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", ip)
                .json(&json!({"email": ADMIN_EMAIL, "password": password}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..5 {
        assert_eq!(from("6.6.6.6", "guess").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        from("6.6.6.6", "guess").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Locked out means locked out for the attacker, even with the password.
    assert_eq!(
        from("6.6.6.6", ADMIN_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner, from their own address, signs in as ever: by the API and
    // through the sign-in page.
    assert_eq!(from("8.8.8.8", ADMIN_PASSWORD).await, StatusCode::OK);
    let client = no_redirects();
    let (cookie, csrf) = login_form(&client, &app).await;
    let r = client
        .post(app.url("/login"))
        .header(COOKIE, cookie)
        .header("x-forwarded-for", "8.8.4.4")
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_sign_in_post_is_refused() {
    let app = spawn_app().await;
    let client = no_redirects();
    let fields = [("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)];
    // No form token at all: what a hostile page's form sends.
    let r = client
        .post(app.url("/login"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap_or("").starts_with("natter_session=")));
    // Even with a valid token and cookie, a post that the browser marks as
    // cross-site, or from another origin, is refused.
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let (cookie, csrf) = login_form(&client, &app).await;
        let r = client
            .post(app.url("/login"))
            .header(COOKIE, cookie)
            .header(name, value)
            .form(&[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("did not come from this site"));
    }
    // Our own page's post, with the browser's same-origin headers, works.
    let (cookie, csrf) = login_form(&client, &app).await;
    let r = client
        .post(app.url("/login"))
        .header(COOKIE, cookie)
        .header("origin", &app.base)
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_after_sign_in_never_leaves_the_site() {
    let app = spawn_app().await;
    let (client, cookie) = page_session(&app).await;
    for next in [
        "/%09/other-site.example",
        "/%0A/other-site.example",
        "/%0D%0ASet-Cookie:%20x=1",
        "%09//other-site.example",
        "/%5Cother-site.example",
        "//other-site.example",
        "https://other-site.example/",
    ] {
        let r = client
            .get(app.url(&format!("/login?next={next}")))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(r.headers()[LOCATION], "/inbox", "{next}");
    }
    let r = client
        .get(app.url("/login?next=/search%3Fq%3Dhello"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/search?q=hello");
}

/// Raw bytes of a page stream until `want` appears (bounded).
async fn read_stream_until(r: reqwest::Response, want: &str) -> String {
    use futures_util::StreamExt;
    let mut s = r.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(want) {
        match tokio::time::timeout_at(deadline, s.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => panic!("{want:?} never arrived; got {seen:?}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carriage_return_in_a_message_cannot_inject_sse_fields() {
    let app = spawn_app().await;
    let (client, cookie) = page_session(&app).await;
    let r = client
        .get(app.url("/ui/events"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, contact) = app.contact().await;
    app.start_conversation(
        &contact,
        "hello\rid: 999999\revent: injected\rdata: <b>x</b>\r\nend-of-body",
    )
    .await;
    let raw = read_stream_until(r, "end-of-body").await;
    // Read the stream the way the SSE specification does.
    let normalised = raw.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalised.lines() {
        assert!(
            line.is_empty()
                || line.starts_with("data: ")
                || line.starts_with(':')
                || line.starts_with("retry: ")
                || line == "event: ui"
                || line
                    .strip_prefix("id: ")
                    .is_some_and(|id| id.parse::<u64>().is_ok_and(|n| n < 999_999)),
            "an injected field: {line:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_event_id_above_the_newest_is_not_a_silent_stream() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "first").await;
    let mut s = app
        .events("/api/v1/events", &app.admin_token, Some("999999999"))
        .await;
    app.contact_says(&contact, &conv, "after the forged id")
        .await;
    let f = s.next_named("message.created").await;
    assert_eq!(f.json()["body"], "after the forged id", "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_racing_setup_posts_create_exactly_one_admin() {
    let data = tempfile::tempdir().unwrap();
    let s = crate::cli::serve(data.path(), &[]).await;
    let url = s
        .log
        .iter()
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.contains("/setup?token="))
                .map(str::to_owned)
        })
        .expect("setup link");
    let token = url.split("token=").nth(1).unwrap().to_owned();
    let client = crate::helpers::new_client();
    let posts = (0..4).map(|i| {
        let client = client.clone();
        let base = s.base.clone();
        let token = token.clone();
        async move {
            client
                .post(format!("{base}/setup"))
                .form(&[
                    ("token", token.as_str()),
                    ("name", "Admin"),
                    ("email", &format!("admin{i}@example.com")),
                    ("password", "racing-password"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures_util::future::join_all(posts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    let mut admins = 0;
    for i in 0..4 {
        let r = client
            .post(format!("{}/api/v1/auth/login", s.base))
            .json(&json!({"email": format!("admin{i}@example.com"), "password": "racing-password"}))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            admins += 1;
        }
    }
    assert_eq!(admins, 1, "exactly one admin exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_a_byte_at_a_time_is_timed_out() {
    let app = spawn_app_with(|c| c.body_timeout_secs = 1).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // One byte every 200 ms, as the attacker did (a byte a second, faster
    // here so the test is short): the server must answer 408 and close
    // long before the body could complete (1000 bytes = 200 s).
    let started = tokio::time::Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if s.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the trickle was never timed out"
        );
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    // A body that arrives at a normal pace is unaffected.
    let r = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
}
