//! Business hours and expectations through the API: the inbox's hours and
//! holidays, the widget's `open_now`, `next_open_at` and `reply_time`,
//! and the out-of-office message (outside hours, at most once a day per
//! conversation, never right after an agent's reply) with a clock the
//! test moves. The hour arithmetic itself (DST, midnight, holidays) is
//! unit-tested in `domain::hours`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, spawn_app_with, TestApp};

const AWAY: &str = "Thanks! We're closed now and answer first thing tomorrow.";

fn every_day(open: &str, close: &str) -> Value {
    let mut week = serde_json::Map::new();
    for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
        week.insert(d.into(), json!([[open, close]]));
    }
    Value::Object(week)
}

async fn patch_inbox(app: &TestApp, change: Value) -> reqwest::Response {
    app.patch(
        &format!("/api/v1/inboxes/{}", app.inbox_id),
        &app.admin_token,
        change,
    )
    .await
}

async fn widget(app: &TestApp) -> Value {
    let r = app
        .client
        .get(app.url(&format!("/api/v1/widget/{}", app.widget_key)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    body(r).await
}

/// Hours are stored and shown as given; bad ones are refused with the
/// reason; the widget says whether the inbox is open and when it opens;
/// a holiday closes a day that the week opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hours_and_holidays_decide_what_the_widget_says() {
    let app = spawn_app().await;
    assert_eq!(
        widget(&app).await["open_now"],
        true,
        "no hours: always open"
    );
    let r = patch_inbox(
        &app,
        json!({"business_hours": {"timezone": "Mars/Olympus", "week": {}}}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(r).await.to_string().contains("time zone"));
    let r = patch_inbox(
        &app,
        json!({"business_hours": {"timezone": "UTC", "week": {"mon": [["9am", "5pm"]]}}}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Open around the clock, but today (UTC) is a holiday: closed until
    // tomorrow's midnight.
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let hours = json!({
        "timezone": "UTC",
        "week": every_day("00:00", "24:00"),
        "holidays": [today.format("%Y-%m-%d").to_string()],
    });
    let r = patch_inbox(&app, json!({"business_hours": hours, "csat": true})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let inbox = body(r).await;
    assert_eq!(
        inbox["business_hours"]["week"]["mon"],
        json!([["00:00", "24:00"]])
    );
    assert_eq!(inbox["business_hours"]["timezone"], "UTC");
    assert_eq!(inbox["csat"], true);
    let w = widget(&app).await;
    assert_eq!(w["open_now"], false, "{w}");
    assert_eq!(
        w["next_open_at"],
        json!(format!("{}T00:00:00.000Z", tomorrow.format("%Y-%m-%d")))
    );
    // Without the holiday: open now, nothing to wait for.
    let r = patch_inbox(
        &app,
        json!({"business_hours": {"timezone": "UTC", "week": every_day("00:00", "24:00")}}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let w = widget(&app).await;
    assert_eq!(w["open_now"], true);
    assert_eq!(w["next_open_at"], Value::Null);
    // `null` removes the hours.
    let r = patch_inbox(&app, json!({"business_hours": null})).await;
    assert_eq!(body(r).await["business_hours"], Value::Null);
}

/// The widget's reply time is the median wait for a first reply over
/// real conversations (here answered within seconds), not a guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expected_reply_time_comes_from_real_first_replies() {
    let app = spawn_app().await;
    let w = widget(&app).await;
    assert_eq!(w["reply_time_seconds"], Value::Null, "no replies yet: {w}");
    for _ in 0..3 {
        let (_, contact) = app.contact().await;
        let (id, _) = app.start_conversation(&contact, "Hi").await;
        app.agent_says(&app.admin_token, &id, "Hello!", false).await;
        // A second reply is no first reply.
        app.agent_says(&app.admin_token, &id, "Anything else?", false)
            .await;
    }
    let w = widget(&app).await;
    assert!(w["reply_time_seconds"].as_u64().unwrap() < 60, "{w}");
    assert_eq!(
        w["reply_time"],
        "The team usually replies in a few minutes."
    );
}

/// Outside hours a contact is told once a day per conversation; never
/// when an agent replied in the last five minutes; a new day sends it
/// again (the test moves the server's clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_office_goes_once_a_day_and_never_right_after_a_reply() {
    let clock = natter::service::notify::Clock::manual();
    let c = clock.clone();
    let app = spawn_app_with(move |cfg| cfg.clock = c).await;
    let r = patch_inbox(
        &app,
        json!({"business_hours": {"timezone": "Europe/Berlin", "week": every_day("00:00", "24:00")}, "out_of_office": AWAY}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["out_of_office"], AWAY);
    let away = |msgs: &[Value]| {
        msgs.iter()
            .filter(|m| m["author"]["type"] == "system" && m["body"] == AWAY)
            .count()
    };

    // Open: nothing. An agent answers, then the inbox closes.
    let (_, b_contact) = app.contact().await;
    let (b, _) = app.start_conversation(&b_contact, "Are you there?").await;
    app.agent_says(&app.admin_token, &b, "Yes, here.", false)
        .await;
    let closed = json!({"business_hours": {"timezone": "Europe/Berlin", "week": {}}});
    assert_eq!(patch_inbox(&app, closed).await.status(), StatusCode::OK);
    app.contact_says(&b_contact, &b, "Great, one more thing")
        .await;
    assert_eq!(
        away(&app.customer_messages(&b_contact, &b).await),
        0,
        "an agent replied a moment ago"
    );

    // Closed, nobody replied: told once, not twice.
    let (_, a_contact) = app.contact().await;
    let (a, _) = app.start_conversation(&a_contact, "Hello?").await;
    let msgs = app.customer_messages(&a_contact, &a).await;
    assert_eq!(away(&msgs), 1, "{msgs:?}");
    app.contact_says(&a_contact, &a, "Anyone?").await;
    assert_eq!(away(&app.customer_messages(&a_contact, &a).await), 1);
    // The team sees it in the thread too.
    let team = app.agent_messages(&app.admin_token, &a, "").await;
    assert_eq!(away(&team), 1);

    // A day later: told again.
    clock.advance(Duration::from_secs(24 * 3600 + 60)).await;
    app.contact_says(&a_contact, &a, "Still there?").await;
    assert_eq!(away(&app.customer_messages(&a_contact, &a).await), 2);
    // And the widget says it is closed, with no opening ahead.
    let w = widget(&app).await;
    assert_eq!(w["open_now"], false);
    assert_eq!(w["next_open_at"], Value::Null);
}
