//! CSAT through the API: a resolution rated once (a second rating 409),
//! again after a reopen and a new resolve; never when no agent replied;
//! bad scores refused; and on an SMS conversation, the signed rating
//! link sent by SMS through the outbox and used on its page.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::channels::{channel_inbox, twilio_params, twilio_post};
use crate::fakes::Fake;
use crate::helpers::{body, spawn_app, TestApp};

async fn csat_on(app: &TestApp, inbox: &str) {
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{inbox}"),
            &app.admin_token,
            json!({"csat": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn resolve(app: &TestApp, id: &str) {
    let r = app
        .patch(
            &format!("/api/v1/conversations/{id}"),
            &app.admin_token,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn rate(app: &TestApp, token: &str, id: &str, rating: Value) -> reqwest::Response {
    app.post(
        &format!("/api/v1/customer/conversations/{id}/rating"),
        token,
        rating,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_resolution_is_rated_once_and_only_after_a_reply() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (id, _) = app.start_conversation(&contact, "My parcel is late").await;
    app.agent_says(&app.admin_token, &id, "Sorry! It ships today.", false)
        .await;
    resolve(&app, &id).await;
    // The inbox does not ask yet.
    let r = rate(&app, &contact, &id, json!({"score": 5})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    csat_on(&app, &app.inbox_id).await;
    for bad in [
        json!({"score": 0}),
        json!({"score": 6}),
        json!({"score": 3, "comment": "x".repeat(1001)}),
    ] {
        let r = rate(&app, &contact, &id, bad.clone()).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let r = rate(
        &app,
        &contact,
        &id,
        json!({"score": 5, "comment": "Quick and kind"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b = body(r).await;
    assert_eq!(b["rating"]["score"], 5);
    assert_eq!(b["rating"]["comment"], "Quick and kind");
    let r = rate(&app, &contact, &id, json!({"score": 1})).await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "a second rating of one resolution"
    );
    let team = app.conversation(&app.admin_token, &id).await;
    assert_eq!(team["rating"]["score"], 5, "{team}");

    // Reopened by the customer and resolved again: a new resolution.
    app.contact_says(&contact, &id, "It did not arrive after all")
        .await;
    let r = rate(&app, &contact, &id, json!({"score": 2})).await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "open: the last resolution is rated"
    );
    app.agent_says(&app.admin_token, &id, "Resent it.", false)
        .await;
    resolve(&app, &id).await;
    let r = rate(&app, &contact, &id, json!({"score": 3})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        app.conversation(&app.admin_token, &id).await["rating"]["score"],
        3
    );

    // No agent ever replied: nothing to rate.
    let (_, other) = app.contact().await;
    let (silent, _) = app.start_conversation(&other, "Never mind").await;
    resolve(&app, &silent).await;
    let r = rate(&app, &other, &silent, json!({"score": 4})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Another contact cannot rate it.
    let r = rate(&app, &other, &id, json!({"score": 1})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_conversation_is_rated_through_a_signed_link() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json(
        "/Messages.json",
        201,
        json!({"sid": "SM1", "status": "queued"}),
    );
    let inbox = channel_inbox(
        &app,
        "sms",
        json!({"account_sid": "AC1", "auth_token": "tok", "from": "+15550000", "api_base": fake.url}),
    )
    .await;
    let inbox_id = inbox["id"].as_str().unwrap().to_owned();
    csat_on(&app, &inbox_id).await;
    let params = twilio_params(&[
        ("MessageSid", "SMin1"),
        ("From", "+15551234"),
        ("Body", "Is it open today?"),
    ]);
    let r = twilio_post(&app, &format!("/hooks/twilio/{inbox_id}"), "tok", &params).await;
    assert_eq!(r.status(), StatusCode::OK);
    let list = body(
        app.get(
            &format!("/api/v1/conversations?inbox={inbox_id}"),
            &app.admin_token,
        )
        .await,
    )
    .await;
    let id = list["conversations"][0]["id"].as_str().unwrap().to_owned();
    app.agent_says(&app.admin_token, &id, "Yes, until six.", false)
        .await;
    resolve(&app, &id).await;
    // The reply and then the rating link went out by SMS.
    let sent = fake
        .wait_for("/Messages.json", 2, Duration::from_secs(15))
        .await;
    let text = sent[1].form_field("Body").unwrap();
    assert!(text.starts_with("How did we do?"), "{text}");
    let link = text.split_whitespace().last().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}/rate/", app.base)), "{link}");

    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("data-score=").count(), 5, "five choices");
    // A tampered link rates nothing.
    let forged = format!(
        "{}0",
        link.trim_end_matches(|c: char| c.is_ascii_hexdigit())
    );
    let r = app
        .client
        .post(&forged)
        .form(&[("score", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .client
        .post(&link)
        .form(&[("score", "4"), ("comment", "Thanks!")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.text().await.unwrap().contains("data-role=\"rated\""));
    let r = app
        .client
        .post(&link)
        .form(&[("score", "5")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let c = app.conversation(&app.admin_token, &id).await;
    assert_eq!(c["rating"]["score"], 4);
    assert_eq!(c["rating"]["comment"], "Thanks!");
}
