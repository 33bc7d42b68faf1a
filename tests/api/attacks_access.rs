//! Attacks on access: reading another inbox through a contact record,
//! keeping a live stream after access was revoked, reading team metadata
//! as a customer, and replying through an inbox one cannot see. Each test
//! performs the attack and checks it fails, and checks the permitted path
//! still works so it cannot pass by showing nothing.

use std::time::Duration;

use reqwest::header::COOKIE;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::channels::{channel_inbox, twilio_params, twilio_post};
use crate::customers::identity_hash;
use crate::fakes::Fake;
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
    let crate::helpers::PageSession {
        client,
        cookie,
        csrf,
    } = crate::helpers::page_sign_in(app, email, password).await;
    Browser {
        client,
        cookie,
        csrf,
    }
}

impl Browser {
    async fn page(&self, app: &TestApp, path: &str) -> String {
        let r = self
            .client
            .get(app.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.text().await.unwrap()
    }
}

async fn hmac_secret(app: &TestApp, inbox: &str) -> String {
    body(
        app.get(&format!("/api/v1/inboxes/{inbox}"), &app.admin_token)
            .await,
    )
    .await["hmac_secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// One verified person known on two websites, with a conversation on each
/// (a private note in the first): (contact, first conversation, second
/// conversation).
async fn person_on_two_sites(app: &TestApp, shop: &Value, note: &str) -> (String, String, String) {
    // The admin says the two websites share one sign-in (one identity
    // secret): only then is a verified user id one person on both.
    let website = body(
        app.get(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
        )
        .await,
    )
    .await;
    crate::identity::share_identity_secret(app, &website, shop).await;
    let shop_id = shop["id"].as_str().unwrap();
    let h1 = identity_hash(&hmac_secret(app, &app.inbox_id).await, "user-1");
    let h2 = identity_hash(&hmac_secret(app, shop_id).await, "user-1");
    let (c1, t1) = app
        .contact_in(
            &app.widget_key,
            json!({"external_id": "user-1", "identifier_hash": h1, "name": "Sam"}),
        )
        .await;
    let (site_conv, _) = app.start_conversation(&t1, "on the website").await;
    app.agent_says(&app.admin_token, &site_conv, note, true)
        .await;
    let (c2, t2) = app
        .contact_in(
            shop["widget_key"].as_str().unwrap(),
            json!({"external_id": "user-1", "identifier_hash": h2}),
        )
        .await;
    assert_eq!(c1, c2, "one person on both websites");
    let (shop_conv, _) = app.start_conversation(&t2, "in the shop").await;
    (c1, site_conv, shop_conv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_outside_an_inbox_reads_nothing_of_it_through_a_contact_record() {
    let app = spawn_app().await;
    let shop = app.create_inbox("Shop").await;
    let note = "NOTE: card flagged by the bank";
    let (contact, site_conv, shop_conv) = person_on_two_sites(&app, &shop, note).await;
    let (shop_agent, shop_token) = app.create_agent("shop@example.com", "agent").await;
    app.add_member(shop["id"].as_str().unwrap(), &shop_agent)
        .await;

    // The API's contact record.
    let r = app
        .get(&format!("/api/v1/contacts/{contact}"), &shop_token)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(!text.contains("card flagged"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let convs = v["conversations"].as_array().unwrap();
    assert_eq!(convs.len(), 1, "{v}");
    assert_eq!(convs[0]["id"], shop_conv.as_str());
    // An admin sees both (the filter is the viewer's, not the record's).
    let all = body(
        app.get(&format!("/api/v1/contacts/{contact}"), &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(all["conversations"].as_array().unwrap().len(), 2, "{all}");

    // The workspace's contact panel ("Other conversations").
    let b = sign_in(&app, "shop@example.com", "agent-password").await;
    let html = b.page(&app, &format!("/conversations/{shop_conv}")).await;
    assert!(!html.contains("card flagged"), "note leaked into the panel");
    assert!(!html.contains(&format!("/conversations/{site_conv}\"")));
    let admin = sign_in(
        &app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    let html = admin
        .page(&app, &format!("/conversations/{shop_conv}"))
        .await;
    assert!(html.contains(&format!("/conversations/{site_conv}\"")));

    // A contact with nothing in the agent's inboxes stays a 404.
    let (other, other_token) = app.contact().await;
    app.start_conversation(&other_token, "only on the website")
        .await;
    let r = app
        .get(&format!("/api/v1/contacts/{other}"), &shop_token)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn possibly_the_same_person_names_only_contacts_the_agent_may_see() {
    let app = spawn_app().await;
    let shop = app.create_inbox("Shop").await;
    let shop_id = shop["id"].as_str().unwrap().to_owned();
    let (site_contact, t1) = app
        .contact_in(
            &app.widget_key,
            json!({"name": "Penelope Website", "email": "pen@example.com"}),
        )
        .await;
    app.start_conversation(&t1, "on the website").await;
    let (_, t2) = app
        .contact_in(
            shop["widget_key"].as_str().unwrap(),
            json!({"name": "Pen", "email": "pen@example.com"}),
        )
        .await;
    let (shop_conv, _) = app.start_conversation(&t2, "in the shop").await;
    let (shop_agent, _) = app.create_agent("shop@example.com", "agent").await;
    app.add_member(&shop_id, &shop_agent).await;
    let (both_agent, _) = app.create_agent("both@example.com", "agent").await;
    app.add_member(&shop_id, &both_agent).await;
    app.add_member(&app.inbox_id, &both_agent).await;

    let b = sign_in(&app, "shop@example.com", "agent-password").await;
    let html = b.page(&app, &format!("/conversations/{shop_conv}")).await;
    assert!(
        !html.contains("Penelope"),
        "a contact of another inbox is named"
    );
    assert!(!html.contains(&format!("value=\"{site_contact}\"")));
    // Merging into it is refused like anything that does not exist.
    let shop_contact = app.conversation(&app.admin_token, &shop_conv).await["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = b
        .client
        .post(app.url(&format!("/ui/contacts/{shop_contact}/merge")))
        .header(COOKIE, &b.cookie)
        .header("X-CSRF-Token", &b.csrf)
        .form(&[("into", site_contact.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // An agent of both inboxes is offered the suggestion.
    let both = sign_in(&app, "both@example.com", "agent-password").await;
    let html = both
        .page(&app, &format!("/conversations/{shop_conv}"))
        .await;
    assert!(html.contains("data-role=\"duplicates\""));
    assert!(html.contains("Penelope Website"));
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
async fn erasing_a_contact_ends_its_open_event_stream_at_once() {
    let app = spawn_app().await;
    let (contact, ct) = app.contact().await;
    let (conv, _) = app.start_conversation(&ct, "hello").await;
    let mut events = app.events("/api/v1/customer/events", &ct, None).await;
    app.agent_says(&app.admin_token, &conv, "hi there", false)
        .await;
    assert_eq!(
        events.next_named("message.created").await.json()["body"],
        "hi there"
    );
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/contacts/{contact}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert!(events.ends_within(ENDS_WITHIN).await, "still streaming");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_sees_no_labels_assignee_or_note_counters() {
    let app = spawn_app().await;
    let me = body(app.get("/api/v1/me", &app.admin_token).await).await;
    let (_, ct) = app.contact().await;
    let (conv, first) = app.start_conversation(&ct, "my order?").await;
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            &app.admin_token,
            json!({"labels": ["fraud-suspect"], "assignee_id": me["id"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let note = app
        .agent_says(&app.admin_token, &conv, "looks like fraud", true)
        .await;
    // The contact "reads" up to the note's seq: in its numbering a number
    // past its newest message, so its read position stays there.
    let r = app
        .post(
            &format!("/api/v1/customer/conversations/{conv}/read"),
            &ct,
            json!({"seq": note["seq"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The team sees its metadata (so the checks below are not vacuous).
    let team = app.conversation(&app.admin_token, &conv).await;
    assert_eq!(team["labels"][0], "fraud-suspect");
    assert_eq!(team["last_seq"], 2);

    let public_seq = first["seq"].as_u64().unwrap();
    let safe = |c: &Value| {
        let text = c.to_string();
        assert!(!text.contains("fraud-suspect"), "{text}");
        assert_eq!(c["labels"], json!([]), "{c}");
        assert!(c["assignee_id"].is_null(), "{c}");
        assert_eq!(c["last_seq"], public_seq, "{c}");
        assert!(
            c["agent_last_read_seq"].as_u64().unwrap() <= public_seq,
            "{c}"
        );
        assert!(
            c["contact_last_read_seq"].as_u64().unwrap() <= public_seq,
            "{c}"
        );
        assert_eq!(c["unread_count"], 0, "{c}");
    };
    safe(
        &body(
            app.get(&format!("/api/v1/customer/conversations/{conv}"), &ct)
                .await,
        )
        .await,
    );
    safe(&body(app.get("/api/v1/customer/conversations", &ct).await).await["conversations"][0]);

    // The stream, replayed from the start up to a later conversation: the
    // label and assignee change is not told at all, and a read, if told,
    // is a public position.
    let (marker, _) = app.start_conversation(&ct, "another question").await;
    let mut events = app.events("/api/v1/customer/events", &ct, Some("0")).await;
    loop {
        let f = events.next_event().await;
        assert_ne!(f.event.as_deref(), Some("conversation.updated"), "{f:?}");
        if f.event.as_deref() == Some("conversation.read") {
            assert!(f.json()["seq"].as_u64().unwrap() <= public_seq, "{f:?}");
        }
        if f.event.as_deref() == Some("conversation.created") && f.json()["id"] == marker {
            break;
        }
    }
    // A change the contact sees is told, without the team's metadata.
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            &app.admin_token,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let updated = events.next_named("conversation.updated").await.json();
    assert_eq!(updated["status"], "resolved");
    safe(&updated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_does_not_move_the_conversation_for_the_customer() {
    let app = spawn_app().await;
    let (_, ct) = app.contact().await;
    let (older, first) = app.start_conversation(&ct, "first question").await;
    let (newer, _) = app.start_conversation(&ct, "second question").await;
    app.agent_says(&app.admin_token, &older, "internal only", true)
        .await;
    // The team's list moved it (so the check below is not vacuous).
    let team = app.conversation(&app.admin_token, &older).await;
    assert_ne!(team["updated_at"], first["created_at"]);

    let list = body(app.get("/api/v1/customer/conversations", &ct).await).await;
    let ids: Vec<&str> = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [newer.as_str(), older.as_str()]);
    assert_eq!(list["conversations"][1]["updated_at"], first["created_at"]);
    // The messenger's list is in the same order.
    let html = app
        .client
        .get(app.url(&format!("/m/{}?list=1", app.widget_key)))
        .header("cookie", format!("natter_contact={ct}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = |id: &str| {
        html.find(&format!("data-conversation-id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} listed: {html}"))
    };
    assert!(at(&newer) < at(&older), "the note moved it up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_reply_through_an_inbox_it_is_not_a_member_of() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json("/Messages.json", 201, json!({"sid": "SMvia"}));
    let sms = channel_inbox(&app, "sms", json!({"account_sid": "AC1", "auth_token": "tok", "from": "+15550000", "api_base": fake.url})).await;
    let sms_id = sms["id"].as_str().unwrap().to_owned();
    let params = twilio_params(&[
        ("MessageSid", "SM1"),
        ("From", "+15557654321"),
        ("Body", "texting you"),
    ]);
    let r = twilio_post(&app, &format!("/hooks/twilio/{sms_id}"), "tok", &params).await;
    assert_eq!(r.status(), StatusCode::OK);
    let listed = body(
        app.get(
            &format!("/api/v1/conversations?inbox={sms_id}&status=all"),
            &app.admin_token,
        )
        .await,
    )
    .await;
    let sms_contact = listed["conversations"][0]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (web_contact, web_token) = app.contact().await;
    let (conv, _) = app.start_conversation(&web_token, "on the site").await;
    let r = app
        .post(
            &format!("/api/v1/contacts/{sms_contact}/merge"),
            &app.admin_token,
            json!({"into": web_contact}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, agent) = app.member_agent("web@example.com").await;

    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &agent,
            json!({"body": "sent by text", "via": sms_id}),
        )
        .await;
    crate::helpers::assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let msgs = app.agent_messages(&app.admin_token, &conv, "").await;
    assert_eq!(msgs.len(), 1, "nothing stored: {msgs:?}");
    // The composer does not offer it either.
    let b = sign_in(&app, "web@example.com", "agent-password").await;
    let html = b.page(&app, &format!("/conversations/{conv}")).await;
    assert!(!html.contains(&format!("value=\"{sms_id}\"")));
    // An admin may (so the refusal above is about membership).
    let admin = sign_in(
        &app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    let html = admin.page(&app, &format!("/conversations/{conv}")).await;
    assert!(html.contains(&format!("value=\"{sms_id}\"")));
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.admin_token,
            json!({"body": "sent by text", "via": sms_id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
