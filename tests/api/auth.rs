//! Sign-in, tokens, lockouts.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    assert_error, body, spawn_app, spawn_app_with, start, test_config, ADMIN_EMAIL, ADMIN_PASSWORD,
};

#[tokio::test]
async fn login_returns_a_token_and_the_agent() {
    let app = spawn_app().await;
    let r = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let b = body(r).await;
    assert!(b["token"].as_str().is_some_and(|t| t.len() > 30));
    assert_eq!(b["agent"]["email"], ADMIN_EMAIL);
    assert_eq!(b["agent"]["role"], "admin");
    for k in ["id", "name", "email", "role"] {
        assert!(b["agent"].get(k).is_some(), "{k}");
    }
    let me = body(app.get("/api/v1/me", b["token"].as_str().unwrap()).await).await;
    assert_eq!(me["id"], b["agent"]["id"]);
}

#[tokio::test]
async fn wrong_credentials_get_401() {
    let app = spawn_app().await;
    assert_error(
        app.login(ADMIN_EMAIL, "not-the-password").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_error(
        app.login("nobody@example.com", ADMIN_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn email_case_does_not_matter_at_sign_in() {
    let app = spawn_app().await;
    let r = app.login(&ADMIN_EMAIL.to_uppercase(), ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn repeated_failures_for_one_account_lock_it_out_with_retry_after() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(
            app.login(ADMIN_EMAIL, "wrong-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = app.login(ADMIN_EMAIL, "wrong-password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Locked out means locked out, even with the right password.
    assert_eq!(
        app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn repeated_failures_from_one_address_lock_it_out() {
    let app = spawn_app_with(|c| c.login_max_failures = 2).await;
    // Per address the allowance is four times the per-account one.
    let mut statuses = Vec::new();
    for i in 0..9 {
        statuses.push(
            app.login(&format!("nobody{i}@example.com"), "wrong-password")
                .await
                .status(),
        );
    }
    assert_eq!(statuses[..8], [StatusCode::UNAUTHORIZED; 8]);
    assert_eq!(statuses[8], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn agent_routes_need_a_bearer_token() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_error(
        app.get("/api/v1/me", "nat_bogus").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn a_session_cookie_alone_is_refused() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/v1/conversations"))
        .header("cookie", format!("natter_session={}", app.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_contact_token_on_an_agent_route_gets_401() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    assert_error(
        app.get("/api/v1/me", &contact).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_error(
        app.get("/api/v1/conversations", &contact).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    // And the other way round.
    assert_error(
        app.get("/api/v1/customer/conversations", &app.admin_token)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn logout_ends_the_token() {
    let app = spawn_app().await;
    let token = app.login_ok(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Other tokens of the same agent still work.
    assert_eq!(
        app.get("/api/v1/me", &app.admin_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_password_change_ends_every_other_token() {
    let app = spawn_app().await;
    let (_, old) = app.create_agent("pat@example.com", "agent").await;
    let other = app.login_ok("pat@example.com", "agent-password").await;
    let r = app
        .post(
            "/api/v1/me/password",
            &old,
            json!({"current_password": "wrong", "new_password": "new-password-1"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .post(
            "/api/v1/me/password",
            &old,
            json!({"current_password": "agent-password", "new_password": "short"}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = app
        .post(
            "/api/v1/me/password",
            &old,
            json!({"current_password": "agent-password", "new_password": "new-password-1"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let fresh = body(r).await["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/me", &old).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/me", &other).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get("/api/v1/me", &fresh).await.status(), StatusCode::OK);
    assert_eq!(
        app.login("pat@example.com", "agent-password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("pat@example.com", "new-password-1")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn deactivation_ends_the_agents_tokens_and_sign_in() {
    let app = spawn_app().await;
    let (id, token) = app.create_agent("dee@example.com", "agent").await;
    let r = app
        .patch(
            &format!("/api/v1/agents/{id}"),
            &app.admin_token,
            json!({"active": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["active"], false);
    assert_eq!(
        app.get("/api/v1/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("dee@example.com", "agent-password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tokens_stay_valid_across_a_restart() {
    let app = spawn_app().await;
    let token = app.admin_token.clone();
    let (_, contact) = app.contact().await;
    let data = app.stop().await;
    let config = test_config(&data);
    let app = start(data, config).await;
    assert_eq!(app.get("/api/v1/me", &token).await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/customer/conversations", &contact)
            .await
            .status(),
        StatusCode::OK
    );
}
