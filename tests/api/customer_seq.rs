//! The customer's numbering: a contact sees its conversation's public
//! messages numbered 1, 2, 3 ... with no gaps where notes are (the notes'
//! seqs would show that notes exist, and when), in every JSON shape, page,
//! stream and messenger attribute; every number it sends back (paging,
//! read positions) is translated to the real seq, which agents keep.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, TestApp};

fn seqs(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap_or(u64::MAX))
        .collect()
}

fn bodies(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["body"].as_str().unwrap_or("?"))
        .collect()
}

/// The values of every `data-seq` attribute of a page, in order.
fn data_seqs(html: &str) -> Vec<u64> {
    html.split("data-seq=\"")
        .skip(1)
        .map(|rest| {
            rest.split('"')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(u64::MAX)
        })
        .collect()
}

/// A messenger page as the contact's browser gets it.
async fn messenger(app: &TestApp, contact: &str, path: &str) -> String {
    let r = app
        .client
        .get(app.url(path))
        .header("cookie", format!("natter_contact={contact}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

async fn customer_page(app: &TestApp, contact: &str, conv: &str, query: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v1/customer/conversations/{conv}/messages{query}"),
            contact,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    body(r).await["messages"].as_array().unwrap().clone()
}

async fn customer_conversation(app: &TestApp, contact: &str, conv: &str) -> Value {
    body(
        app.get(&format!("/api/v1/customer/conversations/{conv}"), contact)
            .await,
    )
    .await
}

/// Reads a stream's bytes until `want` has arrived (bounded).
async fn read_until(r: &mut reqwest::Response, seen: &mut String, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(want) {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .unwrap_or_else(|_| panic!("{want:?} within 10 s; got {seen}"))
            .unwrap()
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_numbers_its_messages_without_gaps_where_notes_are() {
    let app = spawn_app().await;
    let (_, ct) = app.contact().await;
    let r = app
        .post(
            "/api/v1/customer/conversations",
            &ct,
            json!({"body": "where is my order?"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created = body(r).await;
    let conv = created["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["message"]["seq"], 1);
    assert_eq!(created["conversation"]["last_seq"], 1);
    let key = app.widget_key.clone();
    let mut events = app.events("/api/v1/customer/events", &ct, None).await;
    let mut frames = app
        .client
        .get(app.url(&format!("/m/{key}/events?access_token={ct}&c={conv}")))
        .send()
        .await
        .unwrap();
    assert_eq!(frames.status(), StatusCode::OK);

    let admin = app.admin_token.clone();
    app.agent_says(&admin, &conv, "check the warehouse", true)
        .await;
    let reply = app.agent_says(&admin, &conv, "It ships today", false).await;
    app.agent_says(&admin, &conv, "they were slow", true).await;
    let mine = app.contact_says(&ct, &conv, "thanks!").await;
    app.agent_says(&admin, &conv, "close it tomorrow", true)
        .await;
    // The team numbers every message (so the checks below are not vacuous).
    assert_eq!(reply["seq"], 3);
    assert_eq!(
        mine["seq"], 3,
        "the contact's own answer is numbered its way"
    );
    let team = app.agent_messages(&admin, &conv, "?limit=500").await;
    assert_eq!(seqs(&team), [1, 2, 3, 4, 5, 6]);
    assert_eq!(app.conversation(&admin, &conv).await["last_seq"], 6);

    let list = app.customer_messages(&ct, &conv).await;
    assert_eq!(seqs(&list), [1, 2, 3]);
    assert_eq!(
        bodies(&list),
        ["where is my order?", "It ships today", "thanks!"]
    );
    let c = customer_conversation(&app, &ct, &conv).await;
    assert_eq!(c["last_seq"], 3, "{c}");
    assert_eq!(c["last_message"]["seq"], 3, "{c}");
    assert_eq!(c["contact_last_read_seq"], 3, "{c}");
    assert_eq!(
        body(app.get("/api/v1/customer/conversations", &ct).await).await["conversations"][0]
            ["last_seq"],
        3
    );

    // Search answers in the same numbers, the team's in real seqs.
    let found = body(app.get("/api/v1/customer/search?q=thanks", &ct).await).await;
    assert_eq!(found["results"][0]["seq"], 3, "{found}");
    let found = body(app.get("/api/v1/search?q=thanks", &admin).await).await;
    assert_eq!(found["results"][0]["seq"], 5, "{found}");

    // The stream: the reply is 2, the contact's own message 3, and after
    // the last note the next reply is 4 (its real seq is 7).
    let created = events.next_named("message.created").await.json();
    assert_eq!(
        (created["body"].as_str(), created["seq"].as_u64()),
        (Some("It ships today"), Some(2))
    );
    let created = events.next_named("message.created").await.json();
    assert_eq!(
        (created["body"].as_str(), created["seq"].as_u64()),
        (Some("thanks!"), Some(3))
    );
    let next = app.agent_says(&admin, &conv, "Tracking: 123", false).await;
    assert_eq!(next["seq"], 7);
    let created = events.next_named("message.created").await.json();
    assert_eq!(
        (created["body"].as_str(), created["seq"].as_u64()),
        (Some("Tracking: 123"), Some(4))
    );
    // The messenger's live frame numbers it the same way.
    let mut seen = String::new();
    read_until(&mut frames, &mut seen, "Tracking: 123").await;
    assert_eq!(data_seqs(&seen), [2, 3, 4], "{seen}");

    // The messenger page numbers its messages the same way, so what it
    // posts back as read is the contact's number.
    let html = messenger(&app, &ct, &format!("/m/{key}?c={conv}")).await;
    assert_eq!(data_seqs(&html), [1, 2, 3, 4], "{html}");
    // A whole page shown (outside the widget's frame) reads it, in the
    // contact's numbering.
    let c = customer_conversation(&app, &ct, &conv).await;
    assert_eq!(
        (
            c["last_seq"].as_u64(),
            c["unread_count"].as_u64(),
            c["contact_last_read_seq"].as_u64()
        ),
        (Some(4), Some(0), Some(4)),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_and_reading_use_the_customers_numbers() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    let (_, ct) = app.contact().await;
    let key = app.widget_key.clone();
    // Real seqs 1..7; the contact's numbers 1..4.
    let (conv, _) = app.start_conversation(&ct, "q1").await;
    for (text, private) in [
        ("n1", true),
        ("a1", false),
        ("n2", true),
        ("a2", false),
        ("n3", true),
        ("a3", false),
    ] {
        app.agent_says(&admin, &conv, text, private).await;
    }
    let page = |q: &'static str| customer_page(&app, &ct, &conv, q);
    assert_eq!(bodies(&page("?after=2").await), ["a2", "a3"]);
    assert_eq!(seqs(&page("?after=2").await), [3, 4]);
    assert_eq!(bodies(&page("?after=1&limit=1").await), ["a1"]);
    assert_eq!(bodies(&page("?before=3").await), ["q1", "a1"]);
    assert_eq!(bodies(&page("?before=4&limit=1").await), ["a2"]);
    assert_eq!(bodies(&page("?after=1&before=4").await), ["a1", "a2"]);
    assert_eq!(bodies(&page("?before=99").await), ["q1", "a1", "a2", "a3"]);
    assert_eq!(bodies(&page("?after=0").await), ["q1", "a1", "a2", "a3"]);
    assert!(page("?after=4").await.is_empty());
    assert!(page("?after=99").await.is_empty());
    assert!(page("?before=1").await.is_empty());
    // The messenger's history loader pages the same way.
    let older = messenger(&app, &ct, &format!("/m/{key}/c/{conv}/older?before=3")).await;
    assert_eq!(data_seqs(&older), [1, 2], "{older}");
    assert!(
        older.contains("q1") && older.contains("a1") && !older.contains("a2"),
        "{older}"
    );
    assert!(!older.contains("n1"), "{older}");

    let mut team_events = app.events("/api/v1/events", &admin, None).await;
    let mut contact_events = app.events("/api/v1/customer/events", &ct, None).await;
    let c = customer_conversation(&app, &ct, &conv).await;
    assert_eq!(c["unread_count"], 3, "{c}");
    assert_eq!(c["agent_last_read_seq"], 4, "{c}");
    // The contact reads up to its 3 (a2): natter records a2's real seq.
    let r = app
        .post(
            &format!("/api/v1/customer/conversations/{conv}/read"),
            &ct,
            json!({"seq": 3}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let team = app.conversation(&admin, &conv).await;
    assert_eq!(team["contact_last_read_seq"], 5, "{team}");
    let read = team_events.next_named("conversation.read").await.json();
    assert_eq!(read["seq"], 5, "{read}");
    let read = contact_events.next_named("conversation.read").await.json();
    assert_eq!(read["seq"], 3, "{read}");
    let c = customer_conversation(&app, &ct, &conv).await;
    assert_eq!(c["contact_last_read_seq"], 3, "{c}");
    assert_eq!(c["unread_count"], 1, "a3 is left: {c}");

    // The contact answers; the team reads it by its real seq, which the
    // contact sees as its own number.
    app.contact_says(&ct, &conv, "q2").await;
    let team = app.conversation(&admin, &conv).await;
    assert_eq!(
        (team["last_seq"].as_u64(), team["unread_count"].as_u64()),
        (Some(8), Some(1))
    );
    assert_eq!(
        customer_conversation(&app, &ct, &conv).await["agent_last_read_seq"],
        4
    );
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/read"),
            &admin,
            json!({"seq": 8}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.conversation(&admin, &conv).await["unread_count"], 0);
    let read = loop {
        let r = contact_events.next_named("conversation.read").await.json();
        if r["reader"]["type"] == "agent" {
            break r;
        }
    };
    assert_eq!(read["seq"], 5, "{read}");
    let c = customer_conversation(&app, &ct, &conv).await;
    assert_eq!(c["agent_last_read_seq"], 5, "{c}");
    assert_eq!(
        (c["last_seq"].as_u64(), c["unread_count"].as_u64()),
        (Some(5), Some(0)),
        "{c}"
    );

    // A number past the newest reads up to the newest; 0 changes nothing.
    app.agent_says(&admin, &conv, "a4", false).await;
    for seq in [0, 99] {
        let r = app
            .post(
                &format!("/api/v1/customer/conversations/{conv}/read"),
                &ct,
                json!({"seq": seq}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(
        app.conversation(&admin, &conv).await["contact_last_read_seq"],
        9
    );
    let c = customer_conversation(&app, &ct, &conv).await;
    assert_eq!(
        (
            c["contact_last_read_seq"].as_u64(),
            c["unread_count"].as_u64()
        ),
        (Some(6), Some(0)),
        "{c}"
    );
}
