//! Web Push to agents: subscriptions, who is notified, and the message as
//! a push service receives it — encrypted per RFC 8291 (decrypted here
//! with the browser's keys) and signed with VAPID.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand::RngCore;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::fakes::Fake;
use crate::helpers::{body, spawn_app, spawn_app_with, TestApp};

/// A browser's push keys.
struct Browser {
    private: Vec<u8>,
    auth: [u8; 16],
    p256dh: String,
}

fn browser() -> Browser {
    let sk = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let mut auth = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut auth);
    Browser {
        p256dh: URL_SAFE_NO_PAD.encode(sk.public_key().to_encoded_point(false).as_bytes()),
        private: sk.to_bytes().to_vec(),
        auth,
    }
}

async fn subscribe(app: &TestApp, token: &str, endpoint: &str, b: &Browser) {
    let r = app
        .post("/api/v1/push/subscriptions", token, json!({"endpoint": endpoint, "keys": {"p256dh": b.p256dh, "auth": URL_SAFE_NO_PAD.encode(b.auth)}}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

fn open(b: &Browser, r: &crate::fakes::Recorded) -> Value {
    assert_eq!(r.header("content-encoding"), Some("aes128gcm"));
    assert!(r.header("ttl").is_some());
    let plain = crate::push_receiver::decrypt(&b.private, &b.auth, &r.body)
        .expect("decrypts with the browser's keys");
    serde_json::from_slice(&plain).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_get_encrypted_vapid_signed_pushes_for_new_conversations_and_their_replies() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json("/push/", 201, json!({}));
    let key = body(app.get("/api/v1/push/key", &app.admin_token).await).await["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_browser = browser();
    subscribe(
        &app,
        &app.admin_token,
        &format!("{}/push/admin", fake.url),
        &admin_browser,
    )
    .await;
    // An agent outside the inbox is never told about it.
    let (_, outsider_token) = app.create_agent("away@example.com", "agent").await;
    subscribe(
        &app,
        &outsider_token,
        &format!("{}/push/outsider", fake.url),
        &browser(),
    )
    .await;
    // Bad keys are refused.
    let r = app.post("/api/v1/push/subscriptions", &app.admin_token, json!({"endpoint": format!("{}/push/x", fake.url), "keys": {"p256dh": "AAAA", "auth": "AAAA"}})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let (_, ctoken) = app.contact().await;
    let (conv, _) = app.start_conversation(&ctoken, "Is anyone there?").await;
    let got = fake
        .wait_for("/push/admin", 1, Duration::from_secs(15))
        .await;
    let auth = got[0].header("authorization").unwrap();
    assert!(
        auth.starts_with("vapid t=") && auth.contains(&format!("k={key}")),
        "{auth}"
    );
    crate::push_receiver::verify_vapid(auth, &fake.url)
        .expect("VAPID verifies for the push service's origin");
    let msg = open(&admin_browser, &got[0]);
    assert_eq!(msg["title"], "New conversation");
    assert_eq!(msg["body"], "Is anyone there?");
    assert_eq!(msg["url"], format!("/conversations/{conv}"));

    // A reply in a conversation assigned to the admin.
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            &app.admin_token,
            json!({"assignee_id": body(app.get("/api/v1/me", &app.admin_token).await).await["id"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.contact_says(&ctoken, &conv, "Hello?").await;
    let got = fake
        .wait_for("/push/admin", 2, Duration::from_secs(15))
        .await;
    let msg = open(&admin_browser, &got[1]);
    assert!(msg["title"].as_str().unwrap().ends_with("replied"), "{msg}");
    assert_eq!(msg["body"], "Hello?");
    assert!(
        fake.requests("/push/outsider").is_empty(),
        "not a member of the inbox"
    );

    // The push service says the subscription is gone: it is removed.
    fake.json("/push/admin", 410, json!({}));
    let (_, c2) = app.contact().await;
    app.start_conversation(&c2, "another").await;
    fake.wait_for("/push/admin", 3, Duration::from_secs(15))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let subs = body(
            app.get("/api/v1/push/subscriptions", &app.admin_token)
                .await,
        )
        .await;
        if subs["subscriptions"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{subs}");
        tokio::task::yield_now().await;
    }
}

/// An SLA deadline near and then missed reaches the inbox's agents by
/// Web Push (with the test clock moving the server past each instant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_pushed_an_sla_warning_and_then_the_breach() {
    let clock = natter::service::notify::Clock::manual();
    let c = clock.clone();
    let app = spawn_app_with(move |cfg| cfg.clock = c).await;
    let fake = Fake::start().await;
    fake.json("/push/", 201, json!({}));
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
            json!({"sla": {"first_response_minutes": 10}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let admin_browser = browser();
    subscribe(
        &app,
        &app.admin_token,
        &format!("{}/push/admin", fake.url),
        &admin_browser,
    )
    .await;
    let (_, outsider_token) = app.create_agent("away@example.com", "agent").await;
    subscribe(
        &app,
        &outsider_token,
        &format!("{}/push/outsider", fake.url),
        &browser(),
    )
    .await;
    let (_, ctoken) = app.contact().await;
    let (conv, _) = app.start_conversation(&ctoken, "Where is my parcel?").await;
    let got = fake
        .wait_for("/push/admin", 1, Duration::from_secs(15))
        .await;
    assert_eq!(open(&admin_browser, &got[0])["title"], "New conversation");
    // Two minutes before the ten-minute deadline: the warning.
    clock.advance(Duration::from_secs(8 * 60 + 30)).await;
    let got = fake
        .wait_for("/push/admin", 2, Duration::from_secs(15))
        .await;
    let msg = open(&admin_browser, &got[1]);
    assert_eq!(msg["title"], "SLA deadline near", "{msg}");
    assert_eq!(msg["body"], "Where is my parcel?");
    assert_eq!(msg["url"], format!("/conversations/{conv}"));
    clock.advance(Duration::from_secs(2 * 60)).await;
    let got = fake
        .wait_for("/push/admin", 3, Duration::from_secs(15))
        .await;
    assert_eq!(open(&admin_browser, &got[2])["title"], "SLA missed");
    assert!(
        fake.requests("/push/outsider").is_empty(),
        "not a member of the inbox"
    );
}

#[tokio::test]
async fn the_workspace_is_an_installable_app() {
    let app = spawn_app().await;
    let m: Value = app
        .client
        .get(app.url("/manifest.webmanifest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["start_url"], "/inbox");
    assert_eq!(m["display"], "standalone");
    let r = app.client.get(app.url("/sw.js")).send().await.unwrap();
    assert_eq!(r.headers()["service-worker-allowed"], "/");
    let sw = r.text().await.unwrap();
    assert!(sw.contains("addEventListener(\"push\"") && sw.contains("showNotification"));
    assert!(sw.contains("You are offline"), "offline shell");
    // Every file the worker caches exists.
    for f in [
        "/static/app.css",
        "/static/app.js",
        "/static/icon.svg",
        "/static/vendor/htmx-2.0.11.min.js",
        "/static/vendor/htmx-ext-sse-2.2.4.min.js",
    ] {
        assert!(sw.contains(f));
        assert_eq!(
            app.client.get(app.url(f)).send().await.unwrap().status(),
            StatusCode::OK,
            "{f}"
        );
    }
}
