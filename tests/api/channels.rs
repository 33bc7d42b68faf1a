//! Channels against local fakes that follow the providers' wire formats:
//! signed inbound text and media, refused signatures storing nothing,
//! duplicates stored once, replies delivered once with status updates,
//! outages, the 24-hour window, and the API channel.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::fakes::{Fake, PNG};
use crate::helpers::{body, spawn_app, TestApp};

const WAIT: Duration = Duration::from_secs(15);

pub async fn channel_inbox(app: &TestApp, channel: &str, settings: Value) -> Value {
    let r = app
        .post(
            "/api/v1/inboxes",
            &app.admin_token,
            json!({"name": format!("{channel} inbox"), "channel": channel, "settings": settings}),
        )
        .await;
    let status = r.status();
    let b = body(r).await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    b
}

pub fn twilio_params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// POSTs a Twilio webhook signed the way Twilio signs it.
pub async fn twilio_post(
    app: &TestApp,
    path: &str,
    token: &str,
    params: &[(String, String)],
) -> reqwest::Response {
    let sig = natter::channels::twilio::signature(token, &app.url(path), params);
    app.client
        .post(app.url(path))
        .header("x-twilio-signature", sig)
        .form(params)
        .send()
        .await
        .unwrap()
}

pub fn hub_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn meta_post(app: &TestApp, path: &str, secret: &str, payload: &Value) -> reqwest::Response {
    let raw = payload.to_string();
    app.client
        .post(app.url(path))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", hub_signature(secret, raw.as_bytes()))
        .body(raw)
        .send()
        .await
        .unwrap()
}

async fn conversations_of(app: &TestApp, inbox: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v1/conversations?inbox={inbox}&status=all"),
            &app.admin_token,
        )
        .await;
    body(r).await["conversations"].as_array().unwrap().clone()
}

/// Waits (bounded, on the event stream) until message `seq` of `conv`
/// satisfies `ok`.
async fn wait_message(app: &TestApp, conv: &str, seq: u64, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut events = app
        .events("/api/v1/events", &app.admin_token, Some("0"))
        .await;
    loop {
        let msgs = app.agent_messages(&app.admin_token, conv, "").await;
        if let Some(m) = msgs.iter().find(|m| m["seq"] == seq) {
            if ok(m) {
                return m.clone();
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "message {seq} of {conv} never got there: {msgs:?}"
        );
        let _ = events.next_frame(left.min(Duration::from_secs(2))).await;
    }
}

fn status_of(m: &Value) -> &str {
    m["delivery"]["status"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_sms_in_and_out_with_signatures_media_duplicates_and_statuses() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.raw("/media/", 200, PNG.to_vec(), "image/png", vec![]);
    fake.json(
        "/Messages.json",
        201,
        json!({"sid": "SM0001", "status": "queued"}),
    );
    let inbox = channel_inbox(
        &app,
        "sms",
        json!({"account_sid": "AC1", "auth_token": "tok", "from": "+15550000", "api_base": fake.url}),
    )
    .await;
    let id = inbox["id"].as_str().unwrap();
    // Secrets are write-only; the webhook URL is shown.
    assert!(inbox["settings"].get("auth_token").is_none(), "{inbox}");
    assert_eq!(inbox["settings"]["account_sid"], "AC1");
    assert_eq!(
        inbox["webhook_url"],
        app.url(&format!("/hooks/twilio/{id}"))
    );
    let path = format!("/hooks/twilio/{id}");

    // A bad signature: 401, nothing stored.
    let params = twilio_params(&[
        ("MessageSid", "SMin1"),
        ("From", "+15551234"),
        ("To", "+15550000"),
        ("Body", "Hello by SMS"),
        ("NumMedia", "0"),
    ]);
    let r = twilio_post(&app, &path, "wrong-token", &params).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(conversations_of(&app, id).await.is_empty());

    // The real thing: 200 with empty TwiML, one conversation.
    let r = twilio_post(&app, &path, "tok", &params).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("<Response></Response>"));
    let convs = conversations_of(&app, id).await;
    assert_eq!(convs.len(), 1);
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(convs[0]["last_message"]["body"], "Hello by SMS");

    // Twilio retries: 200, nothing new.
    let r = twilio_post(&app, &path, "tok", &params).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.agent_messages(&app.admin_token, &conv, "").await.len(),
        1
    );

    // An image from the same number continues the same conversation; the
    // media is fetched with the account's credentials after the 200.
    let media_url = format!("{}/media/img1", fake.url);
    let params2 = twilio_params(&[
        ("MessageSid", "SMin2"),
        ("From", "+15551234"),
        ("Body", ""),
        ("NumMedia", "1"),
        ("MediaUrl0", &media_url),
        ("MediaContentType0", "image/png"),
    ]);
    assert_eq!(
        twilio_post(&app, &path, "tok", &params2).await.status(),
        StatusCode::OK
    );
    let m = wait_message(&app, &conv, 2, |m| {
        m["attachments"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(m["attachments"][0]["content_type"], "image/png");
    let media_req = &fake.requests("/media/img1")[0];
    assert!(media_req
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
    let file = app
        .client
        .get(app.url(m["attachments"][0]["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(file.bytes().await.unwrap().as_ref(), PNG);

    // The agent replies: one REST call, then sent with Twilio's sid.
    let reply = app
        .agent_says(&app.admin_token, &conv, "Thanks, on it", false)
        .await;
    assert_eq!(status_of(&reply), "queued");
    let sent = fake.wait_for("/Messages.json", 1, WAIT).await;
    let call = &sent[0];
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("POST", "/2010-04-01/Accounts/AC1/Messages.json")
    );
    assert_eq!(call.form_field("To").as_deref(), Some("+15551234"));
    assert_eq!(call.form_field("From").as_deref(), Some("+15550000"));
    assert_eq!(call.form_field("Body").as_deref(), Some("Thanks, on it"));
    assert_eq!(
        call.form_field("StatusCallback"),
        Some(app.url(&format!("/hooks/twilio/{id}/status")))
    );
    let seq = reply["seq"].as_u64().unwrap();
    wait_message(&app, &conv, seq, |m| status_of(m) == "sent").await;

    // Status callbacks are signed too; delivered moves it on, a late
    // "sent" does not move it back.
    let status_path = format!("/hooks/twilio/{id}/status");
    let bad = twilio_params(&[("MessageSid", "SM0001"), ("MessageStatus", "failed")]);
    assert_eq!(
        twilio_post(&app, &status_path, "nope", &bad).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let delivered = twilio_params(&[("MessageSid", "SM0001"), ("MessageStatus", "delivered")]);
    assert_eq!(
        twilio_post(&app, &status_path, "tok", &delivered)
            .await
            .status(),
        StatusCode::OK
    );
    let late = twilio_params(&[("MessageSid", "SM0001"), ("MessageStatus", "sent")]);
    assert_eq!(
        twilio_post(&app, &status_path, "tok", &late).await.status(),
        StatusCode::OK
    );
    let m = wait_message(&app, &conv, seq, |m| status_of(m) == "delivered").await;
    assert_eq!(m["delivery"]["error"], Value::Null);
    // Exactly one send for one reply.
    assert_eq!(fake.requests("/Messages.json").len(), 1);
    // Notes never leave.
    app.agent_says(&app.admin_token, &conv, "internal only", true)
        .await;
    let later = app
        .agent_says(&app.admin_token, &conv, "second reply", false)
        .await;
    wait_message(&app, &conv, later["seq"].as_u64().unwrap(), |m| {
        status_of(m) == "sent"
    })
    .await;
    let bodies: Vec<String> = fake
        .requests("/Messages.json")
        .iter()
        .filter_map(|r| r.form_field("Body"))
        .collect();
    assert_eq!(bodies, vec!["Thanks, on it", "second reply"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_ends_in_exactly_one_delivery_and_a_permanent_error_fails_with_retry() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json("/Messages.json", 201, json!({"sid": "SM0009"}));
    let inbox = channel_inbox(&app, "sms", json!({"account_sid": "AC1", "auth_token": "tok", "from": "+15550000", "api_base": fake.url})).await;
    let id = inbox["id"].as_str().unwrap();
    let path = format!("/hooks/twilio/{id}");
    let p = twilio_params(&[("MessageSid", "SMa"), ("From", "+15557777"), ("Body", "hi")]);
    assert_eq!(
        twilio_post(&app, &path, "tok", &p).await.status(),
        StatusCode::OK
    );
    let conv = conversations_of(&app, id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Two 500s, then the provider recovers.
    fake.fail_next("/Messages.json", &[500, 503]);
    let reply = app
        .agent_says(&app.admin_token, &conv, "after the outage", false)
        .await;
    let seq = reply["seq"].as_u64().unwrap();
    let m = wait_message(&app, &conv, seq, |m| status_of(m) == "sent").await;
    assert_eq!(m["delivery"]["status"], "sent");
    let calls = fake.requests("/Messages.json");
    assert_eq!(calls.len(), 3, "two failures then one success");
    assert_eq!(calls.iter().filter(|c| c.status == 201).count(), 1);
    // The same idempotency key on every try.
    let keys: Vec<_> = calls
        .iter()
        .map(|c| c.header("i-twilio-idempotency-token").unwrap().to_owned())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");

    // A 400 (bad number) fails at once with the provider's message; Retry
    // puts it back in the outbox and it goes out once.
    fake.fail_next("/Messages.json", &[400]);
    let reply = app
        .agent_says(&app.admin_token, &conv, "to a bad number", false)
        .await;
    let seq = reply["seq"].as_u64().unwrap();
    let m = wait_message(&app, &conv, seq, |m| status_of(m) == "failed").await;
    assert!(
        m["delivery"]["error"]
            .as_str()
            .unwrap()
            .contains("scripted failure"),
        "{m}"
    );
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages/{seq}/retry"),
            &app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    wait_message(&app, &conv, seq, |m| status_of(m) == "sent").await;
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages/{seq}/retry"),
            &app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "only failed messages can be retried"
    );
}

fn wa_message(from: &str, id: &str, body: Value, ts: i64) -> Value {
    let mut m = json!({"from": from, "id": id, "timestamp": ts.to_string()});
    for (k, v) in body.as_object().unwrap() {
        m[k] = v.clone();
    }
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000", "phone_number_id": "PN1"},
        "contacts": [{"profile": {"name": "Wanda"}, "wa_id": from}],
        "messages": [m],
    }}]}]})
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_handshake_signed_webhooks_media_statuses_and_the_24_hour_window() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json(
        "/v21.0/PN1/messages",
        200,
        json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUT1"}]}),
    );
    fake.json(
        "/v21.0/MEDIA1",
        200,
        json!({"url": format!("{}/cdn/MEDIA1", fake.url), "mime_type": "image/png"}),
    );
    fake.raw("/cdn/MEDIA1", 200, PNG.to_vec(), "image/png", vec![]);
    let inbox = channel_inbox(
        &app,
        "whatsapp",
        json!({
            "phone_number_id": "PN1", "access_token": "EAAtoken", "app_secret": "appsecret",
            "verify_token": "verify-me", "api_base": fake.url,
        }),
    )
    .await;
    let id = inbox["id"].as_str().unwrap();
    assert_eq!(inbox["settings"]["verify_token"], "verify-me");
    assert!(
        inbox["settings"].get("access_token").is_none()
            && inbox["settings"].get("app_secret").is_none()
    );
    let path = format!("/hooks/whatsapp/{id}");

    // Meta's handshake.
    let r = app
        .client
        .get(app.url(&format!(
            "{path}?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    let r = app
        .client
        .get(app.url(&format!(
            "{path}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Bad signature: 401, nothing stored.
    let text = wa_message(
        "4915112345",
        "wamid.IN1",
        json!({"type": "text", "text": {"body": "Hallo"}}),
        now_secs(),
    );
    assert_eq!(
        meta_post(&app, &path, "not-the-secret", &text)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(conversations_of(&app, id).await.is_empty());
    assert_eq!(
        meta_post(&app, &path, "appsecret", &text).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        meta_post(&app, &path, "appsecret", &text).await.status(),
        StatusCode::OK
    );
    let convs = conversations_of(&app, id).await;
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["contact"]["name"], "Wanda");
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.agent_messages(&app.admin_token, &conv, "").await.len(),
        1
    );

    // An image: resolved through the Graph API, downloaded with the token.
    let img = wa_message(
        "4915112345",
        "wamid.IN2",
        json!({"type": "image", "image": {"id": "MEDIA1", "mime_type": "image/png", "caption": "my receipt"}}),
        now_secs(),
    );
    assert_eq!(
        meta_post(&app, &path, "appsecret", &img).await.status(),
        StatusCode::OK
    );
    let m = wait_message(&app, &conv, 2, |m| {
        m["attachments"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(m["body"], "my receipt");
    assert_eq!(
        fake.requests("/cdn/MEDIA1")[0].header("authorization"),
        Some("Bearer EAAtoken")
    );
    // The token travels in a header, never in a URL that proxies log.
    let lookup = &fake.requests("/v21.0/MEDIA1")[0];
    assert_eq!((lookup.method.as_str(), lookup.query.as_str()), ("GET", ""));

    // A reply inside the window goes out once and follows the statuses.
    let reply = app
        .agent_says(&app.admin_token, &conv, "Danke!", false)
        .await;
    let seq = reply["seq"].as_u64().unwrap();
    let sent = fake.wait_for("/v21.0/PN1/messages", 1, WAIT).await;
    let call = sent[0].json();
    assert_eq!(call["to"], "4915112345");
    assert_eq!(call["text"]["body"], "Danke!");
    assert_eq!(sent[0].header("authorization"), Some("Bearer EAAtoken"));
    wait_message(&app, &conv, seq, |m| status_of(m) == "sent").await;
    let statuses = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "PN1"},
        "statuses": [{"id": "wamid.OUT1", "status": "delivered", "recipient_id": "4915112345"}, {"id": "wamid.OUT1", "status": "read", "recipient_id": "4915112345"}],
    }}]}]});
    assert_eq!(
        meta_post(&app, &path, "appsecret", &statuses)
            .await
            .status(),
        StatusCode::OK
    );
    wait_message(&app, &conv, seq, |m| status_of(m) == "read").await;

    // Someone who last wrote 25 hours ago: refused before calling the
    // provider, with a clear error.
    let old = wa_message(
        "4917700000",
        "wamid.OLD",
        json!({"type": "text", "text": {"body": "old"}}),
        now_secs() - 25 * 3600,
    );
    assert_eq!(
        meta_post(&app, &path, "appsecret", &old).await.status(),
        StatusCode::OK
    );
    let old_conv = conversations_of(&app, id)
        .await
        .iter()
        .find(|c| c["contact"]["name"] == "Wanda" && c["id"] != conv.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = fake.requests("/v21.0/PN1/messages").len();
    let reply = app
        .agent_says(&app.admin_token, &old_conv, "too late?", false)
        .await;
    let m = wait_message(&app, &old_conv, reply["seq"].as_u64().unwrap(), |m| {
        status_of(m) == "failed"
    })
    .await;
    assert!(
        m["delivery"]["error"].as_str().unwrap().contains("24-hour"),
        "{m}"
    );
    assert_eq!(fake.requests("/v21.0/PN1/messages").len(), before);

    // With a template configured, the reply goes out as that template.
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{id}"),
            &app.admin_token,
            json!({"settings": {"template_name": "follow_up"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let reply = app
        .agent_says(&app.admin_token, &old_conv, "templated", false)
        .await;
    wait_message(&app, &old_conv, reply["seq"].as_u64().unwrap(), |m| {
        status_of(m) == "sent"
    })
    .await;
    let last = fake.requests("/v21.0/PN1/messages").last().unwrap().json();
    assert_eq!(last["type"], "template");
    assert_eq!(last["template"]["name"], "follow_up");
    assert_eq!(
        last["template"]["components"][0]["parameters"][0]["text"],
        "templated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messenger_ignores_echoes_follows_receipts_and_instagram_shares_the_route() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json(
        "/v21.0/PAGE1/messages",
        200,
        json!({"recipient_id": "PSID1", "message_id": "m_out1"}),
    );
    fake.raw("/cdn/pic", 200, PNG.to_vec(), "image/png", vec![]);
    let inbox = channel_inbox(&app, "messenger", json!({"page_id": "PAGE1", "access_token": "pagetoken", "app_secret": "fbsecret", "verify_token": "vt", "api_base": fake.url})).await;
    let id = inbox["id"].as_str().unwrap();
    let path = format!("/hooks/meta/{id}");
    let ts = now_secs() * 1000;
    let ev = |mid: &str, msg: Value, sender: &str| {
        let mut m = msg;
        m["mid"] = json!(mid);
        json!({"object": "page", "entry": [{"id": "PAGE1", "time": ts, "messaging": [{"sender": {"id": sender}, "recipient": {"id": "PAGE1"}, "timestamp": ts, "message": m}]}]})
    };
    assert_eq!(
        meta_post(
            &app,
            &path,
            "wrong",
            &ev("m1", json!({"text": "hi"}), "PSID1")
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        meta_post(
            &app,
            &path,
            "fbsecret",
            &ev("m1", json!({"text": "hi"}), "PSID1")
        )
        .await
        .status(),
        StatusCode::OK
    );
    // Our own message echoed back creates nothing.
    assert_eq!(
        meta_post(
            &app,
            &path,
            "fbsecret",
            &ev(
                "m_echo",
                json!({"text": "from the page", "is_echo": true}),
                "PAGE1"
            )
        )
        .await
        .status(),
        StatusCode::OK
    );
    let pic = format!("{}/cdn/pic", fake.url);
    assert_eq!(
        meta_post(
            &app,
            &path,
            "fbsecret",
            &ev(
                "m2",
                json!({"attachments": [{"type": "image", "payload": {"url": pic}}]}),
                "PSID1"
            )
        )
        .await
        .status(),
        StatusCode::OK
    );
    let convs = conversations_of(&app, id).await;
    assert_eq!(convs.len(), 1);
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    wait_message(&app, &conv, 2, |m| {
        m["attachments"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(
        app.agent_messages(&app.admin_token, &conv, "").await.len(),
        2
    );

    let reply = app
        .agent_says(&app.admin_token, &conv, "Hello from the page", false)
        .await;
    let seq = reply["seq"].as_u64().unwrap();
    let sent = fake.wait_for("/v21.0/PAGE1/messages", 1, WAIT).await;
    assert_eq!(sent[0].json()["recipient"]["id"], "PSID1");
    assert_eq!(sent[0].json()["message"]["text"], "Hello from the page");
    wait_message(&app, &conv, seq, |m| status_of(m) == "sent").await;
    let receipt = json!({"object": "page", "entry": [{"id": "PAGE1", "time": ts, "messaging": [{"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": ts, "delivery": {"mids": ["m_out1"], "watermark": ts}}]}]});
    assert_eq!(
        meta_post(&app, &path, "fbsecret", &receipt).await.status(),
        StatusCode::OK
    );
    wait_message(&app, &conv, seq, |m| status_of(m) == "delivered").await;

    // Instagram uses the same route and shape with its own secret.
    let ig = channel_inbox(&app, "instagram", json!({"ig_id": "IG1", "access_token": "igtoken", "app_secret": "igsecret", "verify_token": "vt2", "api_base": fake.url})).await;
    let ig_path = format!("/hooks/meta/{}", ig["id"].as_str().unwrap());
    let igev = json!({"object": "instagram", "entry": [{"id": "IG1", "time": ts, "messaging": [{"sender": {"id": "IGSID"}, "recipient": {"id": "IG1"}, "timestamp": ts, "message": {"mid": "ig1", "text": "from instagram"}}]}]});
    assert_eq!(
        meta_post(&app, &ig_path, "fbsecret", &igev).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        meta_post(&app, &ig_path, "igsecret", &igev).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        conversations_of(&app, ig["id"].as_str().unwrap()).await[0]["last_message"]["body"],
        "from instagram"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_registers_its_webhook_checks_the_secret_and_replies() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json(
        "/botBOT:TOKEN/getMe",
        200,
        json!({"ok": true, "result": {"id": 1, "is_bot": true, "username": "natter_bot"}}),
    );
    fake.json(
        "/botBOT:TOKEN/setWebhook",
        200,
        json!({"ok": true, "result": true}),
    );
    fake.json(
        "/botBOT:TOKEN/sendMessage",
        200,
        json!({"ok": true, "result": {"message_id": 77}}),
    );
    fake.json(
        "/botBOT:TOKEN/getFile",
        200,
        json!({"ok": true, "result": {"file_id": "F1", "file_path": "photos/file_1.png"}}),
    );
    fake.raw(
        "/file/botBOT:TOKEN/photos/file_1.png",
        200,
        PNG.to_vec(),
        "image/png",
        vec![],
    );
    let inbox = channel_inbox(
        &app,
        "telegram",
        json!({"bot_token": "BOT:TOKEN", "api_base": fake.url}),
    )
    .await;
    assert_eq!(inbox["connection"]["ok"], true, "{inbox}");
    let id = inbox["id"].as_str().unwrap();
    let secret = inbox["webhook_secret"].as_str().unwrap().to_owned();
    let set = fake.requests("/setWebhook")[0].json();
    assert_eq!(set["url"], app.url(&format!("/hooks/telegram/{id}")));
    assert_eq!(set["secret_token"], secret.as_str());
    assert!(inbox["settings"].get("bot_token").is_none());

    let path = format!("/hooks/telegram/{id}");
    let update = |uid: i64, mid: i64, msg: Value| {
        let mut m = json!({"message_id": mid, "from": {"id": 42, "is_bot": false, "first_name": "Tom", "last_name": "Gram"}, "chat": {"id": 42, "type": "private"}, "date": now_secs()});
        for (k, v) in msg.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"update_id": uid, "message": m})
    };
    let send = |secret: &str, v: &Value| {
        app.client
            .post(app.url(&path))
            .header("x-telegram-bot-api-secret-token", secret.to_owned())
            .json(v)
            .send()
    };
    let hello = update(1, 10, json!({"text": "privet"}));
    assert_eq!(
        send("wrong", &hello).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client
            .post(app.url(&path))
            .json(&hello)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(conversations_of(&app, id).await.is_empty());
    assert_eq!(
        send(&secret, &hello).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&secret, &hello).await.unwrap().status(),
        StatusCode::OK
    );
    let photo = update(
        2,
        11,
        json!({"photo": [{"file_id": "small", "width": 90}, {"file_id": "F1", "width": 800}], "caption": "look"}),
    );
    assert_eq!(
        send(&secret, &photo).await.unwrap().status(),
        StatusCode::OK
    );
    let convs = conversations_of(&app, id).await;
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["contact"]["name"], "Tom Gram");
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    let m = wait_message(&app, &conv, 2, |m| {
        m["attachments"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(m["body"], "look");
    assert_eq!(fake.requests("/getFile")[0].json()["file_id"], "F1");

    let reply = app
        .agent_says(&app.admin_token, &conv, "Zdravstvuyte", false)
        .await;
    let sent = fake.wait_for("/sendMessage", 1, WAIT).await;
    assert_eq!(sent[0].json()["chat_id"], "42");
    assert_eq!(sent[0].json()["text"], "Zdravstvuyte");
    let m = wait_message(&app, &conv, reply["seq"].as_u64().unwrap(), |m| {
        status_of(m) == "sent"
    })
    .await;
    assert_eq!(m["delivery"]["status"], "sent");
}

pub use crate::fakes::verify_standard_webhook;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_channel_takes_messages_with_its_token_and_posts_signed_replies() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json("/callback", 200, json!({}));
    let inbox = channel_inbox(
        &app,
        "api",
        json!({"callback_url": format!("{}/callback", fake.url)}),
    )
    .await;
    let id = inbox["id"].as_str().unwrap();
    let token = inbox["api_token"].as_str().unwrap().to_owned();
    let secret = inbox["webhook_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let path = format!("/api/v1/channels/api/{id}/messages");
    let msg = json!({"source_id": "user-7", "name": "Ann App", "email": "ann@example.com", "body": "From the app", "message_id": "app-1"});

    // Another inbox's token, an agent token, no token: 401, nothing stored.
    assert_eq!(
        app.post(&path, "nai_wrong", msg.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post(&path, &app.admin_token, msg.clone())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(conversations_of(&app, id).await.is_empty());

    let r = app.post(&path, &token, msg.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first = body(r).await;
    let r = app.post(&path, &token, msg.clone()).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a retried message_id answers 200"
    );
    assert_eq!(body(r).await["id"], first["id"]);
    let r = app
        .post(&path, &token, json!({"source_id": "user-7", "body": "   "}))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let convs = conversations_of(&app, id).await;
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["contact"]["email"], "ann@example.com");
    let conv = convs[0]["id"].as_str().unwrap().to_owned();

    let reply = app
        .agent_says(&app.admin_token, &conv, "Hi Ann", false)
        .await;
    let got = fake.wait_for("/callback", 1, WAIT).await;
    assert!(
        verify_standard_webhook(&secret, &got[0]),
        "signature verifies"
    );
    let b = got[0].json();
    assert_eq!(b["data"]["source_id"], "user-7");
    assert_eq!(b["data"]["message"]["body"], "Hi Ann");
    wait_message(&app, &conv, reply["seq"].as_u64().unwrap(), |m| {
        status_of(m) == "sent"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_channel_settings_are_refused_with_clear_errors() {
    let app = spawn_app().await;
    for (channel, settings, needle) in [
        (
            "sms",
            json!({"account_sid": "AC1", "auth_token": "t"}),
            "from",
        ),
        ("sms", json!({"account_sid": "AC1"}), "auth_token"),
        (
            "whatsapp",
            json!({"phone_number_id": "1", "access_token": "a", "app_secret": "s", "verify_token": "v", "colour": "red"}),
            "unknown setting",
        ),
        (
            "telegram",
            json!({"bot_token": "x", "api_base": "ftp://example.com"}),
            "api_base",
        ),
        ("fax", json!({}), "not available"),
        ("web", json!({"x": 1}), "no settings"),
    ] {
        let r = app
            .post(
                "/api/v1/inboxes",
                &app.admin_token,
                json!({"name": "X", "channel": channel, "settings": settings}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{channel}");
        let b = body(r).await;
        assert!(
            b["error"]["message"].as_str().unwrap().contains(needle),
            "{channel}: {b}"
        );
    }
    // Internal addresses are refused unless the admin allowed them.
    let strict = crate::helpers::spawn_app_with(|c| c.webhooks_allow_private = false).await;
    let r = strict.post("/api/v1/inboxes", &strict.admin_token, json!({"name": "X", "channel": "telegram", "settings": {"bot_token": "x", "api_base": "http://127.0.0.1:9"}})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(r).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("NATTER_WEBHOOKS_ALLOW_PRIVATE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_two_contacts_moves_conversations_identities_and_sessions() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    let inbox = channel_inbox(&app, "sms", json!({"account_sid": "AC1", "auth_token": "tok", "from": "+15550000", "api_base": fake.url})).await;
    let id = inbox["id"].as_str().unwrap();
    let p = twilio_params(&[
        ("MessageSid", "SMm1"),
        ("From", "+15552222"),
        ("Body", "by sms"),
    ]);
    assert_eq!(
        twilio_post(&app, &format!("/hooks/twilio/{id}"), "tok", &p)
            .await
            .status(),
        StatusCode::OK
    );
    let sms_conv = conversations_of(&app, id).await[0].clone();
    let sms_contact = sms_conv["contact"]["id"].as_str().unwrap().to_owned();
    let (web_contact, web_token) = app.contact().await;
    let (web_conv, _) = app.start_conversation(&web_token, "by web").await;

    let r = app
        .post(
            &format!("/api/v1/contacts/{sms_contact}/merge"),
            &app.admin_token,
            json!({"into": web_contact}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let merged = body(r).await;
    assert_eq!(merged["id"], web_contact.as_str());
    assert_eq!(merged["identities"][0]["value"], "+15552222");
    assert_eq!(merged["identities"][0]["channel"], "sms");
    let got = body(
        app.get(&format!("/api/v1/contacts/{web_contact}"), &app.admin_token)
            .await,
    )
    .await;
    let ids: Vec<&str> = got["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&web_conv.as_str()) && ids.contains(&sms_conv["id"].as_str().unwrap()),
        "{got}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{sms_contact}"), &app.admin_token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // The same number writing again lands on the merged contact's SMS
    // conversation.
    let p = twilio_params(&[
        ("MessageSid", "SMm2"),
        ("From", "+15552222"),
        ("Body", "again"),
    ]);
    assert_eq!(
        twilio_post(&app, &format!("/hooks/twilio/{id}"), "tok", &p)
            .await
            .status(),
        StatusCode::OK
    );
    let c = app
        .conversation(&app.admin_token, sms_conv["id"].as_str().unwrap())
        .await;
    assert_eq!(c["contact"]["id"], web_contact.as_str());
    assert_eq!(c["last_message"]["body"], "again");
    // The customer sees both conversations from the web.
    let list = body(app.get("/api/v1/customer/conversations", &web_token).await).await;
    assert_eq!(list["conversations"].as_array().unwrap().len(), 2, "{list}");
    // Merging into itself or an unknown contact is a clear 422.
    let r = app
        .post(
            &format!("/api/v1/contacts/{web_contact}/merge"),
            &app.admin_token,
            json!({"into": web_contact}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
