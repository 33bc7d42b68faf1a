//! Outbound webhooks (Standard Webhooks v1) against a local receiver, and
//! the outbox's promise across a kill -9.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cli::serve;
use crate::fakes::Fake;
use crate::helpers::{body, spawn_app, spawn_app_with};

async fn deliveries(app: &crate::helpers::TestApp, id: &str) -> Vec<Value> {
    body(
        app.get(
            &format!("/api/v1/webhooks/{id}/deliveries"),
            &app.admin_token,
        )
        .await,
    )
    .await["deliveries"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_are_refused_unless_allowed() {
    let app = spawn_app_with(|c| c.webhooks_allow_private = false).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.0.0.8/",
        "http://[::1]/x",
        "http://169.254.169.254/latest",
        "file:///etc/passwd",
    ] {
        let r = app
            .post(
                "/api/v1/webhooks",
                &app.admin_token,
                json!({"url": url, "events": ["message.created"]}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
    }
    let r = app
        .post(
            "/api/v1/webhooks",
            &app.admin_token,
            json!({"url": "https://example.com/hook", "events": ["no.such.event"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_retried_with_the_same_id_logged_and_410_disables() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json("/hook", 200, json!({}));
    fake.raw(
        "/moved",
        302,
        Vec::new(),
        "text/plain",
        vec![("location", "/elsewhere")],
    );
    fake.json("/elsewhere", 200, json!({}));
    fake.json("/gone", 410, json!({}));
    let r = app.post("/api/v1/webhooks", &app.admin_token, json!({"url": format!("{}/hook", fake.url), "events": ["message.created", "conversation.created"]})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hook = body(r).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let listed = body(app.get("/api/v1/webhooks", &app.admin_token).await).await;
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "the secret is shown once"
    );
    let moved = body(
        app.post(
            "/api/v1/webhooks",
            &app.admin_token,
            json!({"url": format!("{}/moved", fake.url), "events": ["conversation.created"]}),
        )
        .await,
    )
    .await;
    let gone = body(
        app.post(
            "/api/v1/webhooks",
            &app.admin_token,
            json!({"url": format!("{}/gone", fake.url), "events": ["conversation.created"]}),
        )
        .await,
    )
    .await;

    // A contact writes: conversation.created and message.created arrive,
    // signed, in the contract's envelope.
    let (_, token) = app.contact().await;
    let (conv, first) = app.start_conversation(&token, "Webhook me").await;
    let got = fake.wait_for("/hook", 2, Duration::from_secs(15)).await;
    for r in &got {
        assert!(
            crate::channels::verify_standard_webhook(&secret, r),
            "signature verifies: {r:?}"
        );
        let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!((ts - chrono_now()).abs() < 60);
    }
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        types.contains(&"conversation.created".to_owned())
            && types.contains(&"message.created".to_owned()),
        "{types:?}"
    );
    let msg = got
        .iter()
        .find(|r| r.json()["type"] == "message.created")
        .unwrap()
        .json();
    assert_eq!(msg["data"]["id"], first["id"]);
    assert_eq!(msg["data"]["body"], "Webhook me");
    assert!(msg["timestamp"].as_str().unwrap().ends_with('Z'));

    // A redirect is not followed; a 410 disables the subscription.
    let moved_log = loop {
        let d = deliveries(&app, moved["id"].as_str().unwrap()).await;
        if !d.is_empty() {
            break d;
        }
        fake.wait_for("/moved", 1, Duration::from_secs(15)).await;
    };
    assert_eq!(moved_log[0]["status_code"], 302);
    assert!(moved_log[0]["error"].as_str().unwrap().contains("redirect"));
    assert!(fake.requests("/elsewhere").is_empty());
    fake.wait_for("/gone", 1, Duration::from_secs(15)).await;
    let gone_id = gone["id"].as_str().unwrap().to_owned();
    let disabled = loop {
        let l = body(app.get("/api/v1/webhooks", &app.admin_token).await).await;
        let w = l["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == gone_id.as_str())
            .unwrap()
            .clone();
        if w["disabled"] == true {
            break w;
        }
        fake.wait_for("/gone", 1, Duration::from_secs(1)).await;
    };
    assert_eq!(disabled["disabled"], true);

    // A failure is retried after about 5 s with the same webhook-id.
    fake.fail_next("/hook", &[500]);
    let before = fake.requests("/hook").len();
    app.contact_says(&token, &conv, "second").await;
    let got = fake
        .wait_for("/hook", before + 2, Duration::from_secs(20))
        .await;
    let (a, b) = (&got[before], &got[before + 1]);
    assert_eq!(a.status, 500);
    assert_eq!(b.status, 200);
    assert_eq!(a.header("webhook-id"), b.header("webhook-id"));
    assert!(crate::channels::verify_standard_webhook(&secret, b));
    let log = loop {
        let d = deliveries(&app, &hook_id).await;
        if d.len() >= 4 {
            break d;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(log[0]["attempt"], 2, "newest first: {log:?}");
    assert_eq!(log[0]["status_code"], 200);
    assert_eq!(log[1]["attempt"], 1);
    assert_eq!(log[1]["status_code"], 500);
    // The disabled webhook got nothing for the new message.
    assert_eq!(fake.requests("/gone").len(), 1);

    assert_eq!(
        app.client
            .delete(app.url(&format!("/api/v1/webhooks/{hook_id}")))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/webhooks/{hook_id}/deliveries"),
            &app.admin_token
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A reply accepted (201), then the process is SIGKILLed before the
/// provider accepted it: after the restart it is delivered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_accepting_a_reply_and_sending_it_still_delivers_once() {
    let data = tempfile::tempdir().unwrap();
    let fake = Fake::start().await;
    fake.json("/Messages.json", 201, json!({"sid": "SMkill"}));
    let env = [
        ("NATTER_ADMIN_EMAIL", "a@example.com"),
        ("NATTER_ADMIN_PASSWORD", "a-password"),
        ("NATTER_WEBHOOKS_ALLOW_PRIVATE", "1"),
    ];
    let mut server = serve(data.path(), &env).await;
    let client = crate::helpers::new_client();
    let login = |base: String| {
        let client = client.clone();
        async move {
            let r: Value = client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": "a@example.com", "password": "a-password"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["token"].as_str().unwrap().to_owned()
        }
    };
    let base = server.base.clone();
    let token = login(base.clone()).await;
    let inbox: Value = client.post(format!("{base}/api/v1/inboxes")).bearer_auth(&token)
        .json(&json!({"name": "SMS", "channel": "sms", "settings": {"account_sid": "AC9", "auth_token": "tok", "from": "+1555", "api_base": fake.url}}))
        .send().await.unwrap().json().await.unwrap();
    let id = inbox["id"].as_str().unwrap();
    let path = format!("/hooks/twilio/{id}");
    let params: Vec<(String, String)> = [
        ("MessageSid", "SMk1"),
        ("From", "+15559999"),
        ("Body", "hello"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sig = natter::channels::twilio::signature("tok", &format!("{base}{path}"), &params);
    let r = client
        .post(format!("{base}{path}"))
        .header("x-twilio-signature", sig)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let convs: Value = client
        .get(format!("{base}/api/v1/conversations?inbox={id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conv = convs["conversations"][0]["id"].as_str().unwrap().to_owned();

    // The provider is down for the first try; the process dies right after.
    fake.fail_next("/Messages.json", &[503]);
    let r = client
        .post(format!("{base}/api/v1/conversations/{conv}/messages"))
        .bearer_auth(&token)
        .json(&json!({"body": "survives a crash"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let seq = r.json::<Value>().await.unwrap()["seq"].as_u64().unwrap();
    fake.wait_for("/Messages.json", 1, Duration::from_secs(15))
        .await;
    server.child.start_kill().unwrap(); // SIGKILL
    server.child.wait().await.unwrap();
    assert!(
        fake.requests("/Messages.json")
            .iter()
            .all(|r| r.status != 201),
        "nothing was delivered before the crash"
    );

    let restarted = serve(data.path(), &env).await;
    let base = restarted.base.clone();
    let token = login(base.clone()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let msgs: Value = client
            .get(format!("{base}/api/v1/conversations/{conv}/messages"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let m = msgs["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["seq"] == seq)
            .unwrap()
            .clone();
        if m["delivery"]["status"] == "sent" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not sent after restart: {m}"
        );
        fake.wait_for("/Messages.json", 2, Duration::from_secs(20))
            .await;
        tokio::task::yield_now().await;
    }
    // A later reply goes out too: the outbox has moved past the first.
    let r = client
        .post(format!("{base}/api/v1/conversations/{conv}/messages"))
        .bearer_auth(&token)
        .json(&json!({"body": "and after"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let all = fake
        .wait_for("/Messages.json", 3, Duration::from_secs(15))
        .await;
    let delivered: Vec<String> = all
        .iter()
        .filter(|r| r.status == 201)
        .filter_map(|r| r.form_field("Body"))
        .collect();
    assert_eq!(
        delivered,
        vec!["survives a crash", "and after"],
        "each reply delivered exactly once"
    );
}

/// Polls the delivery log until it has `n` rows (a delivery is logged
/// after its answer arrives, so the receiver seeing it is not enough).
async fn wait_deliveries(
    app: &crate::helpers::TestApp,
    id: &str,
    n: usize,
    within: Duration,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let rows = deliveries(app, id).await;
        if rows.len() >= n {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} deliveries within {within:?}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// "Retry" delivers a failed event again at once, as the same delivery
/// (same `webhook-id`, the attempt count going on), never as a second
/// one; an event the webhook never tried is 404 and a disabled webhook 409.
/// The receiver fails twice: without a working retry the third attempt
/// would wait for the schedule (5 s, then 30 s), far past the 15 s given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_retried_at_once_and_only_once() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json("/flaky", 200, json!({}));
    fake.fail_next("/flaky", &[500, 500]);
    fake.json("/gone", 410, json!({}));
    let hook = body(
        app.post(
            "/api/v1/webhooks",
            &app.admin_token,
            json!({"url": format!("{}/flaky", fake.url), "events": ["conversation.created"]}),
        )
        .await,
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let gone = body(
        app.post(
            "/api/v1/webhooks",
            &app.admin_token,
            json!({"url": format!("{}/gone", fake.url), "events": ["conversation.created"]}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, token) = app.contact().await;
    app.start_conversation(&token, "Retry me").await;
    let rows = wait_deliveries(&app, &id, 1, Duration::from_secs(15)).await;
    assert_eq!(rows[0]["status_code"], 500);
    let event = rows[0]["event_id"].as_str().unwrap().to_owned();
    let retry = |hook: String, event: String| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/webhooks/{hook}/deliveries/{event}/retry"),
                &app.admin_token,
                json!({}),
            )
            .await
            .status()
        }
    };
    assert_eq!(
        retry(id.clone(), "999999".into()).await,
        StatusCode::NOT_FOUND
    );
    // Attempt 2 (still failing) may be the retry or the schedule's 5 s.
    assert_eq!(retry(id.clone(), event.clone()).await, StatusCode::ACCEPTED);
    let rows = wait_deliveries(&app, &id, 2, Duration::from_secs(15)).await;
    assert_eq!(
        (rows[0]["attempt"].clone(), rows[0]["status_code"].clone()),
        (json!(2), json!(500))
    );
    // Attempt 3 comes only from the retry (the schedule says 30 s now).
    assert_eq!(retry(id.clone(), event.clone()).await, StatusCode::ACCEPTED);
    let rows = wait_deliveries(&app, &id, 3, Duration::from_secs(15)).await;
    assert_eq!(
        (rows[0]["attempt"].clone(), rows[0]["status_code"].clone()),
        (json!(3), json!(200))
    );
    let got = fake.requests("/flaky");
    assert_eq!(got.len(), 3, "one delivery, tried three times");
    let ids: std::collections::BTreeSet<_> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "the same webhook-id on every try: {ids:?}");
    // A delivered event retried again is delivered again, once.
    assert_eq!(retry(id.clone(), event.clone()).await, StatusCode::ACCEPTED);
    fake.wait_for("/flaky", 4, Duration::from_secs(15)).await;
    wait_deliveries(&app, &id, 4, Duration::from_secs(15)).await;
    // The 410 disabled the other webhook: retrying it is refused.
    wait_deliveries(&app, &gone, 1, Duration::from_secs(15)).await;
    assert_eq!(
        retry(gone.clone(), event.clone()).await,
        StatusCode::CONFLICT
    );
}
