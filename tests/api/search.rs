//! Search (the simple scan of the core; the full-text index replaces it).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_error, body, spawn_app};

fn message_ids(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn agents_find_messages_and_notes_case_insensitively() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, first) = app
        .start_conversation(&contact, "Where is my REFUND for order 1234?")
        .await;
    let note = app
        .agent_says(&app.admin_token, &conv, "refund approved internally", true)
        .await;
    app.agent_says(&app.admin_token, &conv, "unrelated", false)
        .await;
    let r = body(app.get("/api/v1/search?q=refund", &app.admin_token).await).await;
    assert_eq!(
        message_ids(&r),
        vec![first["id"].as_str().unwrap(), note["id"].as_str().unwrap()]
    );
    assert_eq!(r["results"][0]["conversation_id"], conv.as_str());
    assert!(r["results"][0]["snippet"]
        .as_str()
        .unwrap()
        .contains("REFUND"));
    assert_eq!(r["next_cursor"], Value::Null);
}

#[tokio::test]
async fn search_pages_never_skip_or_repeat() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "needle 0").await;
    for i in 1..7 {
        app.agent_says(&app.admin_token, &conv, &format!("needle {i}"), false)
            .await;
    }
    let mut all = Vec::new();
    let mut path = "/api/v1/search?q=needle&limit=3".to_owned();
    loop {
        let r = body(app.get(&path, &app.admin_token).await).await;
        all.extend(message_ids(&r));
        match r["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/search?q=needle&limit=3&cursor={c}"),
            None => break,
        }
    }
    let mut dedup = all.clone();
    dedup.dedup();
    assert_eq!(all.len(), 7);
    assert_eq!(dedup, all);
}

#[tokio::test]
async fn customers_find_only_their_own_messages_and_never_notes() {
    let app = spawn_app().await;
    let (_, a) = app.contact().await;
    let (_, b) = app.contact().await;
    let (conv_a, mine) = app.start_conversation(&a, "my parcel is late").await;
    app.start_conversation(&b, "b's parcel is late too").await;
    app.agent_says(
        &app.admin_token,
        &conv_a,
        "parcel note: customer is VIP",
        true,
    )
    .await;
    let r = body(app.get("/api/v1/customer/search?q=parcel", &a).await).await;
    assert_eq!(message_ids(&r), vec![mine["id"].as_str().unwrap()]);
}

#[tokio::test]
async fn agents_outside_an_inbox_find_nothing_in_it() {
    let app = spawn_app().await;
    let (_, outsider) = app.create_agent("x@example.com", "agent").await;
    let (_, contact) = app.contact().await;
    app.start_conversation(&contact, "secret plans").await;
    let r = body(app.get("/api/v1/search?q=secret", &outsider).await).await;
    assert_eq!(r["results"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn an_empty_query_is_invalid() {
    let app = spawn_app().await;
    assert_error(
        app.get("/api/v1/search?q=", &app.admin_token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_error(
        app.get("/api/v1/search", &app.admin_token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
}
