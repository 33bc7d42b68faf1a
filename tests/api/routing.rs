//! Teams, availability and priorities through the API: an agent in
//! several teams, unique names, availability from open streams, priority.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_are_made_changed_and_removed_by_admins_and_read_by_agents() {
    let app = spawn_app().await;
    let (ana, ana_token) = app.create_agent("ana@example.com", "agent").await;
    let (ben, _) = app.create_agent("ben@example.com", "agent").await;
    let r = app
        .post(
            "/api/v1/teams",
            &app.admin_token,
            json!({"name": "Billing", "agent_ids": [ana, ben, ana]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let billing = body(r).await;
    assert_eq!(billing["name"], "Billing");
    assert_eq!(
        billing["agent_ids"],
        json!([ana, ben]),
        "repeats count once"
    );
    let id = billing["id"].as_str().unwrap().to_owned();
    // Ana is in a second team too.
    let r = app
        .post(
            "/api/v1/teams",
            &app.admin_token,
            json!({"name": "Onboarding", "agent_ids": [ana]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Names are unique, ignoring case; agent ids must name agents.
    let r = app
        .post(
            "/api/v1/teams",
            &app.admin_token,
            json!({"name": "billing"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .post(
            "/api/v1/teams",
            &app.admin_token,
            json!({"name": "Ghosts", "agent_ids": ["999999"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(r).await.to_string().contains("999999"));
    let r = app
        .post("/api/v1/teams", &app.admin_token, json!({"name": "  "}))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Agents read; only admins change.
    let list = body(app.get("/api/v1/teams", &ana_token).await).await;
    let names: Vec<_> = list["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Billing", "Onboarding"]);
    let r = app
        .patch(
            &format!("/api/v1/teams/{id}"),
            &ana_token,
            json!({"name": "Mine"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A rename frees the old name; a PATCH without agent_ids keeps them.
    let r = app
        .patch(
            &format!("/api/v1/teams/{id}"),
            &app.admin_token,
            json!({"name": "Payments"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["agent_ids"], json!([ana, ben]));
    let r = app
        .post(
            "/api/v1/teams",
            &app.admin_token,
            json!({"name": "Billing"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "the old name is free");
    let r = app
        .patch(
            &format!("/api/v1/teams/{id}"),
            &app.admin_token,
            json!({"agent_ids": [ben]}),
        )
        .await;
    assert_eq!(body(r).await["agent_ids"], json!([ben]));
    let got = body(app.get(&format!("/api/v1/teams/{id}"), &ana_token).await).await;
    assert_eq!(got["name"], "Payments");
    // Deleted: gone, and its name free again.
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/teams/{id}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/teams/{id}"), &app.admin_token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = app
        .post(
            "/api/v1/teams",
            &app.admin_token,
            json!({"name": "Payments"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// Two admins naming a team alike at the same instant: one wins, the
/// other is told 409 (the name is checked inside the write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_teams_created_at_once_cannot_share_a_name() {
    let app = spawn_app().await;
    let tries = (0..8).map(|_| {
        app.post(
            "/api/v1/teams",
            &app.admin_token,
            json!({"name": "Support"}),
        )
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT));
    let list = body(app.get("/api/v1/teams", &app.admin_token).await).await;
    assert_eq!(list["teams"].as_array().unwrap().len(), 1);
}

async fn me(app: &crate::helpers::TestApp, token: &str) -> serde_json::Value {
    body(app.get("/api/v1/me", token).await).await
}

async fn put_availability(app: &crate::helpers::TestApp, token: &str, v: &str) -> StatusCode {
    app.client
        .put(app.url("/api/v1/me/availability"))
        .bearer_auth(token)
        .json(&json!({ "availability": v }))
        .send()
        .await
        .unwrap()
        .status()
}

/// Availability is what the agent set while a stream of theirs is open
/// (or closed less than `NATTER_AWAY_AFTER_MINUTES` ago, here 0) and
/// offline otherwise; the choice is kept. Capacity defaults to 25 and
/// only admins change it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_follows_the_agents_choice_and_open_streams() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.away_after_secs = 0;
        // A closed stream is noticed at the next keep-alive write.
        c.sse_keepalive_secs = 1;
    })
    .await;
    let (ana, ana_token) = app.create_agent("ana@example.com", "agent").await;
    let v = me(&app, &ana_token).await;
    assert_eq!(v["availability"], "offline", "no stream open: {v}");
    assert_eq!(v["capacity"], 25);
    let stream = app.events("/api/v1/events", &ana_token, None).await;
    assert_eq!(me(&app, &ana_token).await["availability"], "online");
    assert_eq!(
        put_availability(&app, &ana_token, "busy").await,
        StatusCode::OK
    );
    assert_eq!(me(&app, &ana_token).await["availability"], "busy");
    assert_eq!(
        put_availability(&app, &ana_token, "sleeping").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The admin's list shows it next to her.
    let agents = body(app.get("/api/v1/agents", &app.admin_token).await).await;
    let row = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == ana)
        .unwrap()
        .clone();
    assert_eq!(row["availability"], "busy");
    // Her stream closes: offline (the server notices at its next write).
    drop(stream);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while me(&app, &ana_token).await["availability"] != "offline" {
        assert!(tokio::time::Instant::now() < deadline, "never offline");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Back: her choice was kept.
    let _again = app.events("/api/v1/events", &ana_token, None).await;
    assert_eq!(me(&app, &ana_token).await["availability"], "busy");
    // Capacity: admins only, 0 to 1000.
    let r = app
        .patch(
            &format!("/api/v1/agents/{ana}"),
            &ana_token,
            json!({"capacity": 5}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .patch(
            &format!("/api/v1/agents/{ana}"),
            &app.admin_token,
            json!({"capacity": 5}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["capacity"], 5);
    let r = app
        .patch(
            &format!("/api/v1/agents/{ana}"),
            &app.admin_token,
            json!({"capacity": 1001}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// A conversation's priority: set through the API (422 for an unknown
/// one), in the team's JSON and not the contact's, announced as
/// `conversation.updated`, shown on the row, and the inbox's "Priority"
/// order puts the most urgent first (then the longest waiting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_is_set_shown_and_sorts_the_inbox() {
    let app = spawn_app().await;
    let mut convs = Vec::new();
    let mut contacts = Vec::new();
    for text in ["first", "second", "third"] {
        let (_, token) = app.contact().await;
        convs.push(app.start_conversation(&token, text).await.0);
        contacts.push(token);
    }
    let mut events = app.events("/api/v1/events", &app.admin_token, None).await;
    let set = |id: String, p: &'static str| {
        let app = &app;
        async move {
            app.patch(
                &format!("/api/v1/conversations/{id}"),
                &app.admin_token,
                json!({ "priority": p }),
            )
            .await
        }
    };
    let r = set(convs[1].clone(), "urgent").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["priority"], "urgent");
    assert_eq!(set(convs[2].clone(), "low").await.status(), StatusCode::OK);
    assert_eq!(
        set(convs[0].clone(), "critical").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let frame = events.next_named("conversation.updated").await;
    let data: serde_json::Value = serde_json::from_str(frame.data.as_deref().unwrap()).unwrap();
    assert_eq!(data["id"], convs[1].as_str(), "{data}");
    assert_eq!(data["priority"], "urgent", "{data}");
    // The contact does not see it.
    let own = body(
        app.get(
            &format!("/api/v1/customer/conversations/{}", convs[1]),
            &contacts[1],
        )
        .await,
    )
    .await;
    assert!(own.get("priority").is_none(), "{own}");
    // The inbox ordered by priority: urgent, low, then the one without.
    let s = crate::helpers::page_sign_in(
        &app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    let html = s.page(&app, "/inbox?sort=priority").await;
    let at = |id: &str| {
        html.find(&format!("id=\"row-{id}\""))
            .unwrap_or_else(|| panic!("row {id}"))
    };
    assert!(at(&convs[1]) < at(&convs[2]) && at(&convs[2]) < at(&convs[0]));
    assert!(html.contains("data-priority=\"urgent\""));
    assert!(html.contains("data-priority=\"low\""));
    // Newest first still leads with the newest.
    let html = s.page(&app, "/inbox").await;
    assert!(
        html.find(&format!("id=\"row-{}\"", convs[2]))
            < html.find(&format!("id=\"row-{}\"", convs[0]))
    );
    // The API lists in the same orders.
    let ids = |v: Value| -> Vec<String> {
        v["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let listed = body(
        app.get("/api/v1/conversations?sort=priority", &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(listed["next_cursor"], Value::Null);
    assert_eq!(
        ids(listed),
        vec![convs[1].clone(), convs[2].clone(), convs[0].clone()]
    );
    // The longest waiting first: creation order here.
    let listed = body(
        app.get("/api/v1/conversations?sort=waiting", &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(ids(listed), convs);
    let listed = body(
        app.get(
            "/api/v1/conversations?sort=recent&limit=1",
            &app.admin_token,
        )
        .await,
    )
    .await;
    let cursor = listed["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(ids(listed), vec![convs[2].clone()]);
    for bad in [
        "/api/v1/conversations?sort=loudest".to_owned(),
        format!("/api/v1/conversations?sort=priority&cursor={cursor}"),
    ] {
        let r = app.get(&bad, &app.admin_token).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}
