//! SLA policies through the API, with a clock the test moves: a
//! conversation's countdown in its JSON, the warning a fifth of the
//! target before the deadline and the breach at it, each once, live on
//! the team's stream and recorded on the conversation; a reply stops the
//! clock.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_countdown_warns_then_records_a_breach_once() {
    let clock = natter::service::notify::Clock::manual();
    let c = clock.clone();
    let app = spawn_app_with(move |cfg| cfg.clock = c).await;
    let inbox = format!("/api/v1/inboxes/{}", app.inbox_id);
    let r = app
        .patch(
            &inbox,
            &app.admin_token,
            json!({"sla": {"first_response_minutes": 0}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .patch(
            &inbox,
            &app.admin_token,
            json!({"sla": {"first_response_minutes": 10, "resolution_minutes": 600}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["sla"]["first_response_minutes"], 10);
    let mut stream = app.events("/api/v1/events", &app.admin_token, None).await;

    let (_, contact) = app.contact().await;
    let (id, _) = app.start_conversation(&contact, "Hello?").await;
    let conv = app.conversation(&app.admin_token, &id).await;
    assert_eq!(conv["sla"]["target"], "first_response", "{conv}");
    assert_eq!(conv["sla"]["breached"], false);
    let created =
        natter::domain::time::parse_rfc3339(conv["created_at"].as_str().unwrap()).unwrap();
    let due = natter::domain::time::parse_rfc3339(conv["sla"]["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(due - created, 10 * 60 * 1_000_000);
    // The customer never sees it.
    let mine = body(
        app.get(&format!("/api/v1/customer/conversations/{id}"), &contact)
            .await,
    )
    .await;
    assert!(mine.get("sla").is_none(), "{mine}");

    // Seven minutes: nothing yet. Eight and a half: the warning (two
    // minutes before the deadline), once.
    clock.advance(Duration::from_secs(7 * 60)).await;
    assert_eq!(
        app.conversation(&app.admin_token, &id).await["sla_breaches"],
        json!([])
    );
    clock.advance(Duration::from_secs(90)).await;
    let warned = stream.next_named("conversation.sla_warning").await.json();
    assert_eq!(warned["id"], json!(id));
    clock.advance(Duration::from_secs(10)).await;
    // Past the deadline: the breach, recorded once however often the
    // clock is looked at.
    clock.advance(Duration::from_secs(2 * 60)).await;
    let breached = stream.next_named("conversation.sla_breached").await.json();
    assert_eq!(breached["sla"]["breached"], true, "{breached}");
    clock.advance(Duration::from_secs(60)).await;
    clock.advance(Duration::from_secs(60)).await;
    let conv = app.conversation(&app.admin_token, &id).await;
    let breaches = conv["sla_breaches"].as_array().unwrap();
    assert_eq!(breaches.len(), 1, "{conv}");
    assert_eq!(breaches[0]["target"], "first_response");
    assert_eq!(breaches[0]["due_at"], conv["sla"]["due_at"]);

    // A reply: the first-response clock stops; the resolution clock runs.
    app.agent_says(&app.admin_token, &id, "Here!", false).await;
    let conv = app.conversation(&app.admin_token, &id).await;
    assert_eq!(conv["sla"]["target"], "resolution", "{conv}");
    assert_eq!(conv["sla"]["breached"], false);
    // Resolved: no clock. Policy removed: none anywhere.
    let r = app
        .patch(
            &format!("/api/v1/conversations/{id}"),
            &app.admin_token,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(body(r).await["sla"], Value::Null);
    let r = app
        .patch(&inbox, &app.admin_token, json!({"sla": null}))
        .await;
    assert_eq!(body(r).await["sla"], Value::Null);
}
