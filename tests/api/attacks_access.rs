//! Attacks on access: reading another inbox through a contact record,
//! keeping a live stream after access was revoked, reading team metadata
//! as a customer, and replying through an inbox one cannot see. Each test
//! performs the attack and checks it fails, and checks the permitted path
//! still works so it cannot pass by showing nothing.

use std::time::Duration;

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{redirect, Client, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, EventStream, TestApp};

/// How long a revoked stream may stay open.
const ENDS_WITHIN: Duration = Duration::from_secs(5);

/// A signed-in browser: session cookie and the page's CSRF token.
struct Browser {
    client: Client,
    cookie: String,
    csrf: String,
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Browser {
    let client = crate::helpers::client_builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(app.url("/login"))
        .form(&[("email", email), ("password", password), ("next", "/inbox")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = client
        .get(app.url("/inbox"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    Browser {
        client,
        cookie,
        csrf,
    }
}

/// A member of the Website inbox with an open event stream.
async fn member_with_stream(app: &TestApp, email: &str) -> (String, String, EventStream) {
    let (id, token) = app.member_agent(email).await;
    let events = app.events("/api/v1/events", &token, None).await;
    (id, token, events)
}

/// The stream delivers the Website's events (so an ending means revoked).
async fn assert_alive(app: &TestApp, events: &mut EventStream) {
    let (_, t) = app.contact().await;
    let (conv, _) = app.start_conversation(&t, "are you there?").await;
    let f = events.next_named("message.created").await;
    assert_eq!(f.json()["conversation_id"], conv.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_open_event_stream_at_once() {
    let app = spawn_app().await;
    let (_, token, mut events) = member_with_stream(&app, "a@example.com").await;
    assert_alive(&app, &mut events).await;
    let r = app.post("/api/v1/auth/logout", &token, json!({})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(events.ends_within(ENDS_WITHIN).await, "still streaming");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_ends_the_open_event_stream_at_once() {
    let app = spawn_app().await;
    let (id, _, mut events) = member_with_stream(&app, "a@example.com").await;
    assert_alive(&app, &mut events).await;
    let r = app
        .patch(
            &format!("/api/v1/agents/{id}"),
            &app.admin_token,
            json!({"active": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(events.ends_within(ENDS_WITHIN).await, "still streaming");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_the_open_event_stream_at_once() {
    let app = spawn_app().await;
    let (_, token, mut events) = member_with_stream(&app, "a@example.com").await;
    assert_alive(&app, &mut events).await;
    let r = app
        .post(
            "/api/v1/me/password",
            &token,
            json!({"current_password": "agent-password", "new_password": "a-new-long-password"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let fresh = body(r).await["token"].as_str().unwrap().to_owned();
    assert!(events.ends_within(ENDS_WITHIN).await, "still streaming");
    // The new token streams as usual.
    let mut again = app.events("/api/v1/events", &fresh, None).await;
    assert_alive(&app, &mut again).await;
}

/// Events of `shop` then of the Website: the stream must skip the first
/// and deliver the second.
async fn assert_only_the_website_is_delivered(
    app: &TestApp,
    shop: &Value,
    events: &mut EventStream,
) {
    let (_, st) = app
        .contact_in(shop["widget_key"].as_str().unwrap(), json!({}))
        .await;
    let (shop_conv, _) = app.start_conversation(&st, "in the shop").await;
    let (_, wt) = app.contact().await;
    let (site_conv, _) = app.start_conversation(&wt, "on the website").await;
    loop {
        let f = events.next_event().await;
        let v = f.json();
        let conv = match f.event.as_deref() {
            Some("conversation.created" | "conversation.updated") => v["id"].clone(),
            _ => v["conversation_id"].clone(),
        };
        assert_ne!(
            conv,
            shop_conv.as_str(),
            "an event of an inbox no longer visible: {v}"
        );
        if f.event.as_deref() == Some("message.created") && conv == site_conv.as_str() {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_admin_stream_stops_delivering_inboxes_it_is_not_a_member_of() {
    let app = spawn_app().await;
    let shop = app.create_inbox("Shop").await;
    let (id, token) = app.create_agent("boss@example.com", "admin").await;
    app.add_member(&app.inbox_id, &id).await;
    let mut events = app.events("/api/v1/events", &token, None).await;
    // As an admin it sees the shop.
    let (_, st) = app
        .contact_in(shop["widget_key"].as_str().unwrap(), json!({}))
        .await;
    let (shop_conv, _) = app.start_conversation(&st, "before").await;
    let f = events.next_named("message.created").await;
    assert_eq!(f.json()["conversation_id"], shop_conv.as_str());
    let r = app
        .patch(
            &format!("/api/v1/agents/{id}"),
            &app.admin_token,
            json!({"role": "agent"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_only_the_website_is_delivered(&app, &shop, &mut events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_membership_narrows_the_open_event_stream() {
    let app = spawn_app().await;
    let shop = app.create_inbox("Shop").await;
    let shop_id = shop["id"].as_str().unwrap().to_owned();
    let (id, token) = app.member_agent("a@example.com").await;
    app.add_member(&shop_id, &id).await;
    let mut events = app.events("/api/v1/events", &token, None).await;
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/inboxes/{shop_id}/members/{id}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_only_the_website_is_delivered(&app, &shop, &mut events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_workspace_live_stream_at_once() {
    let app = spawn_app().await;
    app.member_agent("a@example.com").await;
    let b = sign_in(&app, "a@example.com", "agent-password").await;
    let r = b
        .client
        .get(app.url("/ui/events"))
        .header(COOKIE, &b.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut events = EventStream::of(r);
    assert!(events.next_frame(Duration::from_secs(10)).await.is_some());
    let r = b
        .client
        .post(app.url("/logout"))
        .header(COOKIE, &b.cookie)
        .form(&[("csrf", b.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(events.ends_within(ENDS_WITHIN).await, "still streaming");
}
