//! The customer side: contacts, identity, isolation, resume links.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{assert_error, body, spawn_app, spawn_app_with};

pub fn identity_hash(secret: &str, external_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(external_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn hmac_secret(app: &crate::helpers::TestApp) -> String {
    let inbox = body(
        app.get(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
        )
        .await,
    )
    .await;
    inbox["hmac_secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_unknown_widget_key_is_404() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/v1/widget/nope/contacts"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn contact_fields_are_validated() {
    let app = spawn_app().await;
    let post = |b: Value| {
        app.client
            .post(app.url(&format!("/api/v1/widget/{}/contacts", app.widget_key)))
            .json(&b)
            .send()
    };
    assert_error(
        post(json!({"email": "nope"})).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_error(
        post(json!({"name": "x".repeat(300)})).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(post(json!({})).await.unwrap().status(), StatusCode::CREATED);
}

#[tokio::test]
async fn identity_with_a_wrong_hash_is_401() {
    let app = spawn_app().await;
    let secret = hmac_secret(&app).await;
    let post = |b: Value| {
        app.client
            .post(app.url(&format!("/api/v1/widget/{}/contacts", app.widget_key)))
            .json(&b)
            .send()
    };
    let wrong = identity_hash("not-the-secret", "user-42");
    assert_error(
        post(json!({"external_id": "user-42", "identifier_hash": wrong}))
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_error(
        post(json!({"external_id": "user-42"})).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let upper = identity_hash(&secret, "user-42").to_uppercase();
    assert_error(
        post(json!({"external_id": "user-42", "identifier_hash": upper}))
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn the_same_external_id_is_the_same_contact_on_every_device() {
    let app = spawn_app().await;
    let secret = hmac_secret(&app).await;
    let ident = json!({"external_id": "user-42", "identifier_hash": identity_hash(&secret, "user-42"), "name": "Robin", "email": "robin@example.com"});
    let (laptop_id, laptop) = app.contact_in(&app.widget_key.clone(), ident.clone()).await;
    let (conv, _) = app.start_conversation(&laptop, "from my laptop").await;
    let (phone_id, phone) = app.contact_in(&app.widget_key.clone(), ident).await;
    assert_eq!(laptop_id, phone_id);
    assert_ne!(laptop, phone);
    let list = body(app.get("/api/v1/customer/conversations", &phone).await).await;
    assert_eq!(list["conversations"][0]["id"], conv.as_str());
    let msgs = app.customer_messages(&phone, &conv).await;
    assert_eq!(msgs[0]["body"], "from my laptop");
    let other_secret_ident = identity_hash(&secret, "user-43");
    let (other, _) = app
        .contact_in(
            &app.widget_key.clone(),
            json!({"external_id": "user-43", "identifier_hash": other_secret_ident}),
        )
        .await;
    assert_ne!(other, laptop_id);
}

#[tokio::test]
async fn contact_b_gets_404_for_contact_as_conversation() {
    let app = spawn_app().await;
    let (_, a) = app.contact().await;
    let (_, b) = app.contact().await;
    let (conv, _) = app.start_conversation(&a, "mine").await;
    let base = format!("/api/v1/customer/conversations/{conv}");
    assert_error(app.get(&base, &b).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(
        app.get(&format!("{base}/messages"), &b).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.post(&format!("{base}/messages"), &b, json!({"body": "hijack"}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.post(&format!("{base}/typing"), &b, json!({"typing": true}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.post(&format!("{base}/read"), &b, json!({"seq": 1}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let list = body(app.get("/api/v1/customer/conversations", &b).await).await;
    assert_eq!(list["conversations"], json!([]));
}

#[tokio::test]
async fn private_notes_never_reach_the_customer_api() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    app.agent_says(&app.admin_token, &conv, "internal: refund approved", true)
        .await;
    app.agent_says(&app.admin_token, &conv, "All sorted!", false)
        .await;
    let msgs = app.customer_messages(&contact, &conv).await;
    let bodies: Vec<_> = msgs.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec!["hi", "All sorted!"]);
    assert!(msgs.iter().all(|m| m["private"] == false));
    let list = body(app.get("/api/v1/customer/conversations", &contact).await).await;
    assert_eq!(
        list["conversations"][0]["last_message"]["body"],
        "All sorted!"
    );
    // A note as the newest message still does not leak into the list.
    app.agent_says(&app.admin_token, &conv, "internal again", true)
        .await;
    let list = body(app.get("/api/v1/customer/conversations", &contact).await).await;
    assert_eq!(
        list["conversations"][0]["last_message"]["body"],
        "All sorted!"
    );
    let one = body(
        app.get(&format!("/api/v1/customer/conversations/{conv}"), &contact)
            .await,
    )
    .await;
    assert!(!one.to_string().contains("internal"));
}

#[tokio::test]
async fn a_customer_conversation_starts_with_201_and_both_objects() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let r = app
        .post(
            "/api/v1/customer/conversations",
            &contact,
            json!({"body": "Where is my order?"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b = body(r).await;
    assert_eq!(b["conversation"]["status"], "open");
    assert_eq!(b["message"]["seq"], 1);
    assert_eq!(b["message"]["body"], "Where is my order?");
    assert_error(
        app.post(
            "/api/v1/customer/conversations",
            &contact,
            json!({"body": " "}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn a_resume_link_continues_the_same_contact_once() {
    let app = spawn_app().await;
    let (contact_id, laptop) = app.contact().await;
    let (conv, _) = app
        .start_conversation(&laptop, "started on the laptop")
        .await;
    let r = app
        .client
        .post(app.url("/api/v1/customer/resume-links"))
        .bearer_auth(&laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let link = body(r).await;
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/m/{}?resume=", app.base, app.widget_key)),
        "{url}"
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(link["expires_at"].as_str().unwrap()).unwrap();
    let minutes = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!((14..=15).contains(&minutes), "{minutes}");
    let token = url.split("resume=").nth(1).unwrap();
    let redeem = || {
        app.client
            .post(app.url(&format!("/api/v1/widget/{}/resume", app.widget_key)))
            .json(&json!({"token": token}))
            .send()
    };
    let r = redeem().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let phone = body(r).await;
    assert_eq!(phone["contact_id"], contact_id.as_str());
    let msgs = app
        .customer_messages(phone["token"].as_str().unwrap(), &conv)
        .await;
    assert_eq!(msgs[0]["body"], "started on the laptop");
    assert_error(
        redeem().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn contact_creation_is_rate_limited_per_address() {
    let app = spawn_app_with(|c| c.contacts_per_minute = 3).await;
    let post = || {
        app.client
            .post(app.url(&format!("/api/v1/widget/{}/contacts", app.widget_key)))
            .json(&json!({}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(post().await.unwrap().status(), StatusCode::CREATED);
    }
    let r = post().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
}

#[tokio::test]
async fn contact_messages_are_rate_limited_per_contact() {
    let app = spawn_app_with(|c| c.contact_messages_per_minute = 2).await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "one").await;
    app.contact_says(&contact, &conv, "two").await;
    let r = app
        .post(
            &format!("/api/v1/customer/conversations/{conv}/messages"),
            &contact,
            json!({"body": "three"}),
        )
        .await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another contact is not affected, and agents are never limited.
    let (_, other) = app.contact().await;
    app.start_conversation(&other, "hello").await;
    for _ in 0..5 {
        app.agent_says(&app.admin_token, &conv, "agents are not limited", false)
            .await;
    }
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    let post = |app: &crate::helpers::TestApp, ip: &'static str| {
        app.client
            .post(app.url(&format!("/api/v1/widget/{}/contacts", app.widget_key)))
            .header("x-forwarded-for", ip)
            .json(&json!({}))
            .send()
    };
    // Untrusted peer: the header is ignored, both requests are one address.
    let app = spawn_app_with(|c| c.contacts_per_minute = 1).await;
    assert_eq!(
        post(&app, "203.0.113.1").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post(&app, "203.0.113.2").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Behind a trusted proxy each visitor has its own allowance.
    let app = spawn_app_with(|c| {
        c.contacts_per_minute = 1;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    assert_eq!(
        post(&app, "203.0.113.1").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post(&app, "203.0.113.2").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post(&app, "203.0.113.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A forged hop before the proxy's own entry does not help.
    assert_eq!(
        post(&app, "198.51.100.9, 203.0.113.2")
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn widget_js_is_small_public_javascript() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/widget.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let js = r.bytes().await.unwrap();
    assert!(js.len() < 10 * 1024, "{} bytes", js.len());
    assert!(String::from_utf8_lossy(&js).contains("data-natter-launcher"));
    let info = body(
        app.client
            .get(app.url(&format!("/api/v1/widget/{}", app.widget_key)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(info["name"], "Website");
    assert!(info.get("hmac_secret").is_none());
}

#[tokio::test]
async fn the_messenger_can_be_framed_by_any_site_and_other_pages_by_none() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url(&format!("/m/{}", app.widget_key)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors *") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(r.headers().get("x-frame-options").is_none());
    let r = app.client.get(app.url("/login")).send().await.unwrap();
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let r = app
        .client
        .get(app.url("/m/not-a-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_contact_is_created_on_the_first_message_not_on_page_view() {
    let app = spawn_app().await;
    let before = body(
        app.get("/api/v1/conversations?status=all", &app.admin_token)
            .await,
    )
    .await;
    for _ in 0..3 {
        let r = app
            .client
            .get(app.url(&format!("/m/{}", app.widget_key)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            !r.headers()
                .get_all("set-cookie")
                .iter()
                .any(|c| c.to_str().unwrap().starts_with("natter_contact=")),
            "no identity handed out on view (only the form cookie)"
        );
    }
    let no_redirect = crate::helpers::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .post(app.url(&format!("/m/{}/start", app.widget_key)))
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("body", "first words"),
            ("name", "Nia"),
            ("email", "nia@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    let after = body(
        app.get("/api/v1/conversations?status=all", &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(
        after["conversations"].as_array().unwrap().len(),
        before["conversations"].as_array().unwrap().len() + 1
    );
    assert_eq!(after["conversations"][0]["contact"]["name"], "Nia");
    assert_eq!(
        after["conversations"][0]["contact"]["email"],
        "nia@example.com"
    );
    // An empty first message creates nothing.
    let r = no_redirect
        .post(app.url(&format!("/m/{}/start", app.widget_key)))
        .header("sec-fetch-site", "same-origin")
        .form(&[("body", "  ")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = body(
        app.get("/api/v1/conversations?status=all", &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(
        again["conversations"].as_array().unwrap().len(),
        after["conversations"].as_array().unwrap().len()
    );
}

#[tokio::test]
async fn the_messenger_never_shows_another_contacts_conversation() {
    let app = spawn_app().await;
    let (_, a) = app.contact().await;
    let (_, b) = app.contact().await;
    let (conv_a, _) = app.start_conversation(&a, "a's secret order").await;
    let r = app
        .client
        .get(app.url(&format!("/m/{}/view?c={conv_a}", app.widget_key)))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(!html.contains("a's secret order"));
    let r = app
        .client
        .get(app.url(&format!("/m/{}/c/{conv_a}/older?before=99", app.widget_key)))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .client
        .post(app.url(&format!("/m/{}/c/{conv_a}/messages", app.widget_key)))
        .bearer_auth(&b)
        .form(&[("body", "hijack")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Notes never reach the messenger either.
    app.agent_says(&app.admin_token, &conv_a, "internal note here", true)
        .await;
    let html = app
        .client
        .get(app.url(&format!("/m/{}/view?c={conv_a}", app.widget_key)))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("a&#39;s secret order")
            || html.contains("a's secret order")
            || html.contains("a&#x27;s secret order"),
        "{html}"
    );
    assert!(!html.contains("internal note here"));
}

#[tokio::test]
async fn the_messenger_pages_history_searches_and_captures_an_email() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "message number 1").await;
    for i in 2..=40 {
        app.contact_says(&contact, &conv, &format!("message number {i}"))
            .await;
    }
    let key = app.widget_key.clone();
    let view = app
        .client
        .get(app.url(&format!("/m/{key}/view?c={conv}")))
        .bearer_auth(&contact)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        view.contains("message number 40")
            && view.contains("message number 11")
            && !view.contains("message number 10<")
    );
    assert!(
        view.contains(&format!("/m/{key}/c/{conv}/older?before=11")),
        "a sentinel loads older messages"
    );
    let older = app
        .client
        .get(app.url(&format!("/m/{key}/c/{conv}/older?before=11")))
        .bearer_auth(&contact)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(older.contains("message number 1<") && older.contains("message number 10<"));
    assert!(
        !older.contains("older?before"),
        "nothing older than the first message"
    );
    let found = app
        .client
        .get(app.url(&format!("/m/{key}/view?q=number+17")))
        .bearer_auth(&contact)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(found.contains("data-role=\"search-results\"") && found.contains("message number 17"));
    // "Get notified by email" stores the address on the contact.
    let r = app
        .client
        .post(app.url(&format!("/m/{key}/email")))
        .bearer_auth(&contact)
        .header("hx-request", "true")
        .form(&[("email", "Casey@Example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let me = body(app.get("/api/v1/customer/me", &contact).await).await;
    assert_eq!(me["email"], "casey@example.com");
    let r = app
        .client
        .post(app.url(&format!("/m/{key}/email")))
        .bearer_auth(&contact)
        .form(&[("email", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_messenger_stream_shows_replies_typing_and_seen() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hello?").await;
    let key = app.widget_key.clone();
    let mut r = app
        .client
        .get(app.url(&format!("/m/{key}/events?access_token={contact}&c={conv}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut seen = String::new();
    app.post(
        &format!("/api/v1/conversations/{conv}/typing"),
        &app.admin_token,
        serde_json::json!({"typing": true}),
    )
    .await;
    read_until(
        &mut r,
        &mut seen,
        &format!("innerHTML:#typing-{conv}\">Admin is typing…"),
    )
    .await;
    app.post(
        &format!("/api/v1/conversations/{conv}/read"),
        &app.admin_token,
        serde_json::json!({"seq": 1}),
    )
    .await;
    read_until(&mut r, &mut seen, &format!("innerHTML:#seen-{conv}\">Seen")).await;
    app.agent_says(&app.admin_token, &conv, "Here to help!", false)
        .await;
    read_until(&mut r, &mut seen, "Here to help!").await;
    assert!(seen.contains("data-patch=\"upsert\" data-id=\"msg-"));
    assert!(seen.contains(&format!("data-parent=\"thread-{conv}\" data-place=\"end\"")));
}

/// Reads a stream until `want` has arrived (bounded).
async fn read_until(r: &mut reqwest::Response, seen: &mut String, want: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains(want) {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("within 10 s")
            .unwrap()
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// One search rule for the contact, whichever surface asks: the
/// messenger's search and the customer API's count against the same
/// per-caller limit.
#[tokio::test]
async fn the_messenger_and_the_api_share_a_contacts_search_limit() {
    let app = spawn_app_with(|c| c.searches_per_minute = 2).await;
    let key = app.widget_key.clone();
    let (_, contact) = app.contact().await;
    let messenger_search = || {
        app.client
            .get(app.url(&format!("/m/{key}/view?q=hello")))
            .bearer_auth(&contact)
            .send()
    };
    assert_eq!(
        app.get("/api/v1/customer/search?q=hello", &contact)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(messenger_search().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        messenger_search().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let r = app.get("/api/v1/customer/search?q=hello", &contact).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}
