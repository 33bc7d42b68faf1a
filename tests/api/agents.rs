//! Agents, inboxes and membership.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, body, spawn_app};

#[tokio::test]
async fn admins_create_agents_with_201() {
    let app = spawn_app().await;
    let r = app
        .post("/api/v1/agents", &app.admin_token, json!({"email": "Bo@Example.com", "name": "Bo", "role": "agent", "password": "bo-password"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = body(r).await;
    assert_eq!(a["email"], "bo@example.com");
    assert_eq!(a["role"], "agent");
    assert!(a.get("password_hash").is_none() && a.get("password").is_none());
}

#[tokio::test]
async fn agent_creation_validates_every_field() {
    let app = spawn_app().await;
    let ok =
        json!({"email": "x@example.com", "name": "X", "role": "agent", "password": "long-enough"});
    for (field, value) in [
        ("email", json!("not-an-email")),
        ("name", json!("  ")),
        ("role", json!("owner")),
        ("password", json!("short")),
    ] {
        let mut b = ok.clone();
        b[field] = value;
        let r = app.post("/api/v1/agents", &app.admin_token, b).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        let e = body(r).await;
        assert_eq!(e["error"]["code"], "invalid_field");
        assert_eq!(e["error"]["field"], field);
    }
    let r = app
        .post(
            "/api/v1/agents",
            &app.admin_token,
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
}

#[tokio::test]
async fn a_taken_email_is_a_conflict() {
    let app = spawn_app().await;
    app.create_agent("dup@example.com", "agent").await;
    let r = app
        .post(
            "/api/v1/agents",
            &app.admin_token,
            json!({"email": "DUP@example.com", "name": "D", "password": "long-enough"}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "conflict").await;
}

#[tokio::test]
async fn only_admins_manage_agents_and_inboxes() {
    let app = spawn_app().await;
    let (id, agent) = app.create_agent("plain@example.com", "agent").await;
    let r = app
        .post(
            "/api/v1/agents",
            &agent,
            json!({"email": "y@example.com", "name": "Y", "password": "long-enough"}),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .post(
            "/api/v1/inboxes",
            &agent,
            json!({"name": "Sales", "channel": "web"}),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .post(
            &format!("/api/v1/inboxes/{}/members", app.inbox_id),
            &agent,
            json!({"agent_id": id}),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .patch(
            &format!("/api/v1/agents/{id}"),
            &agent,
            json!({"role": "admin"}),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_new_agent_sees_no_inbox_until_added_and_admins_see_all() {
    let app = spawn_app().await;
    let sales = app.create_inbox("Sales").await;
    let (id, agent) = app.create_agent("new@example.com", "agent").await;
    let list = body(app.get("/api/v1/inboxes", &agent).await).await;
    assert_eq!(list["inboxes"], json!([]));
    let sales_id = sales["id"].as_str().unwrap();
    assert_error(
        app.get(&format!("/api/v1/inboxes/{sales_id}"), &agent)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    app.add_member(sales_id, &id).await;
    let list = body(app.get("/api/v1/inboxes", &agent).await).await;
    assert_eq!(list["inboxes"].as_array().unwrap().len(), 1);
    assert_eq!(list["inboxes"][0]["id"], sales["id"]);
    // Agents never see the identity secret; admins do.
    assert!(list["inboxes"][0].get("hmac_secret").is_none());
    let all = body(app.get("/api/v1/inboxes", &app.admin_token).await).await;
    assert_eq!(all["inboxes"].as_array().unwrap().len(), 2);
    assert!(all["inboxes"][0]["hmac_secret"]
        .as_str()
        .is_some_and(|s| s.len() >= 32));
}

#[tokio::test]
async fn inboxes_have_the_contract_shape() {
    let app = spawn_app().await;
    let i = app.create_inbox("Support").await;
    for k in ["id", "name", "channel", "widget_key", "hmac_secret"] {
        assert!(i.get(k).is_some(), "{k}");
    }
    assert_eq!(i["channel"], "web");
    let r = app
        .post(
            "/api/v1/inboxes",
            &app.admin_token,
            json!({"name": "X", "channel": "carrier-pigeon"}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = app
        .post("/api/v1/inboxes", &app.admin_token, json!({"name": ""}))
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
}

#[tokio::test]
async fn membership_can_be_listed_and_removed() {
    let app = spawn_app().await;
    let (id, agent) = app.member_agent("m@example.com").await;
    let members = body(
        app.get(&format!("/api/v1/inboxes/{}/members", app.inbox_id), &agent)
            .await,
    )
    .await;
    assert_eq!(members["members"][0]["id"], id.as_str());
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/inboxes/{}/members/{id}", app.inbox_id)))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/inboxes/{}", app.inbox_id), &agent)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = app
        .post(
            &format!("/api/v1/inboxes/{}/members", app.inbox_id),
            &app.admin_token,
            json!({"agent_id": "999999"}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
}
