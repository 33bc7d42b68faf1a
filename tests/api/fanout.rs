//! An event wakes only the streams that may see it, and membership changes
//! while a stream is open move its wake-ups with them.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::cli::serve;
use crate::helpers::{body, spawn_app, EventStream};

/// A natter process of its own (its `/metrics` counts only this test's
/// streams), driven through the API.
struct Remote {
    base: String,
    client: Client,
    admin: String,
}

impl Remote {
    async fn post(&self, path: &str, token: &str, payload: Value) -> Value {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        body(r).await
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        body(r).await
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let b = self
            .post(
                "/api/v1/auth/login",
                "",
                json!({"email": email, "password": password}),
            )
            .await;
        b["token"].as_str().unwrap().to_owned()
    }

    /// An agent with this role, signed in: (id, token).
    async fn agent(&self, email: &str, role: &str) -> (String, String) {
        let b = self
            .post(
                "/api/v1/agents",
                &self.admin,
                json!({"email": email, "name": "Agent", "role": role, "password": "agent-password"}),
            )
            .await;
        let id = b["id"].as_str().unwrap().to_owned();
        (id, self.login(email, "agent-password").await)
    }

    async fn add_member(&self, inbox: &str, agent: &str) {
        self.post(
            &format!("/api/v1/inboxes/{inbox}/members"),
            &self.admin,
            json!({"agent_id": agent}),
        )
        .await;
    }

    /// A contact of the widget with a conversation: (token, conversation).
    async fn contact_with_conversation(&self, widget_key: &str) -> (String, String) {
        let c = self
            .post(
                &format!("/api/v1/widget/{widget_key}/contacts"),
                "",
                json!({}),
            )
            .await;
        let token = c["token"].as_str().unwrap().to_owned();
        let started = self
            .post(
                "/api/v1/customer/conversations",
                &token,
                json!({"body": "hello"}),
            )
            .await;
        let conv = started["conversation"]["id"].as_str().unwrap().to_owned();
        (token, conv)
    }

    async fn stream(&self, path: &str, token: &str) -> EventStream {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let mut s = EventStream::of(r);
        // Registered in the fan-out once its first comment arrives.
        let first = s.next_frame(Duration::from_secs(10)).await.unwrap();
        assert!(first.comment.is_some(), "{first:?}");
        s
    }

    /// `natter_<name>_total` as `/metrics` shows it now.
    async fn counter(&self, name: &str) -> u64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .bearer_auth(crate::helpers::METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("natter_{name}_total ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
    }
}

/// The next message.created on `s`, as its body text.
async fn next_message(s: &mut EventStream) -> String {
    s.next_named("message.created").await.json()["body"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_wakes_only_the_streams_that_may_see_it() {
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("NATTER_ADMIN_EMAIL", "a@example.com"),
        ("NATTER_ADMIN_PASSWORD", "a-password"),
        ("NATTER_CONTACTS_PER_MINUTE", "0"),
        ("NATTER_CONTACT_MESSAGES_PER_MINUTE", "0"),
    ];
    let server = serve(data.path(), &env).await;
    let mut app = Remote {
        base: server.base.clone(),
        client: crate::helpers::new_client(),
        admin: String::new(),
    };
    app.admin = app.login("a@example.com", "a-password").await;
    let inboxes = app.get("/api/v1/inboxes", &app.admin).await;
    let website = inboxes["inboxes"][0]["id"].as_str().unwrap().to_owned();
    let key = inboxes["inboxes"][0]["widget_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app
        .post(
            "/api/v1/inboxes",
            &app.admin,
            json!({"name": "Other", "channel": "web"}),
        )
        .await;
    let other_key = other["widget_key"].as_str().unwrap().to_owned();
    let other = other["id"].as_str().unwrap().to_owned();
    let (member, member_token) = app.agent("member@example.com", "agent").await;
    app.add_member(&website, &member).await;
    let (outsider, outsider_token) = app.agent("outsider@example.com", "agent").await;
    app.add_member(&other, &outsider).await;

    // Five contacts with a conversation each; the first one has two
    // streams open (two tabs), the others one.
    const CONTACTS: usize = 5;
    let mut contacts = Vec::new();
    for _ in 0..CONTACTS {
        contacts.push(app.contact_with_conversation(&key).await);
    }
    let mut target_streams = Vec::new();
    for _ in 0..2 {
        target_streams.push(app.stream("/api/v1/customer/events", &contacts[0].0).await);
    }
    let mut bystanders = Vec::new();
    for (token, _) in &contacts[1..] {
        bystanders.push(app.stream("/api/v1/customer/events", token).await);
    }
    let mut member_stream = app.stream("/api/v1/events", &member_token).await;
    let mut outsider_stream = app.stream("/api/v1/events", &outsider_token).await;
    let mut admin_stream = app.stream("/api/v1/events", &app.admin).await;

    // Everything written so far has been routed once a later message
    // reached the admin (the dispatcher routes in log order).
    let (token, conv) = &contacts[1];
    app.post(
        &format!("/api/v1/customer/conversations/{conv}/messages"),
        token,
        json!({"body": "warm-up"}),
    )
    .await;
    assert_eq!(next_message(&mut admin_stream).await, "warm-up");
    assert_eq!(next_message(&mut bystanders[0]).await, "warm-up");
    assert_eq!(next_message(&mut member_stream).await, "warm-up");
    let wakeups = app.counter("stream_wakeups").await;
    let delivered = app.counter("events_delivered").await;

    let (token, conv) = &contacts[0];
    app.post(
        &format!("/api/v1/customer/conversations/{conv}/messages"),
        token,
        json!({"body": "only for some"}),
    )
    .await;
    for s in target_streams.iter_mut() {
        assert_eq!(next_message(s).await, "only for some");
    }
    assert_eq!(next_message(&mut member_stream).await, "only for some");
    assert_eq!(next_message(&mut admin_stream).await, "only for some");

    // The contact's two streams, the member and the admin: not the other
    // contacts' streams, not the agent of another inbox.
    let interested = 4;
    assert_eq!(app.counter("stream_wakeups").await - wakeups, interested);
    assert_eq!(
        app.counter("events_delivered").await - delivered,
        interested
    );

    // The outsider's stream was not woken, and still works: the next
    // event it gets is one of its own inbox.
    let (token, conv) = app.contact_with_conversation(&other_key).await;
    app.post(
        &format!("/api/v1/customer/conversations/{conv}/messages"),
        &token,
        json!({"body": "for the outsider"}),
    )
    .await;
    assert_eq!(next_message(&mut outsider_stream).await, "hello");
    assert_eq!(next_message(&mut outsider_stream).await, "for the outsider");
    drop(bystanders);
}

#[tokio::test]
async fn an_agent_added_to_an_inbox_gets_its_next_event_and_a_removed_one_does_not() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("late@example.com", "agent").await;
    let other = app.create_inbox("Other").await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let other_key = other["widget_key"].as_str().unwrap().to_owned();
    app.add_member(&other_id, &agent).await;
    let mut stream = app.events("/api/v1/events", &token, None).await;

    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "before").await;
    app.add_member(&app.inbox_id, &agent).await;
    app.contact_says(&contact, &conv, "after joining").await;
    // "before" was written while the agent was not a member: whether it
    // shows depends on when the stream checked; "after joining" must.
    loop {
        let body = next_message(&mut stream).await;
        if body == "after joining" {
            break;
        }
        assert_eq!(body, "before");
    }

    let r = app
        .client
        .delete(app.url(&format!("/api/v1/inboxes/{}/members/{agent}", app.inbox_id)))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    app.contact_says(&contact, &conv, "after leaving").await;
    let (_, elsewhere) = app.contact_in(&other_key, json!({})).await;
    app.start_conversation(&elsewhere, "in the other inbox")
        .await;
    // Events arrive in log order: had "after leaving" reached the stream,
    // it would come first.
    assert_eq!(next_message(&mut stream).await, "in the other inbox");
}

#[tokio::test]
async fn an_agent_promoted_to_admin_gets_every_inbox_from_the_next_event() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("rising@example.com", "agent").await;
    let mut stream = app.events("/api/v1/events", &token, None).await;
    let r = app
        .patch(
            &format!("/api/v1/agents/{agent}"),
            &app.admin_token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, contact) = app.contact().await;
    app.start_conversation(&contact, "now an admin").await;
    assert_eq!(next_message(&mut stream).await, "now an admin");
}
