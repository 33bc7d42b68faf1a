//! Auto-assignment through the API: capacity under concurrency, the queue
//! draining oldest first, round robin and balanced order with their ties,
//! offline and busy agents, teams, reopened conversations, and the live
//! `conversation.updated` of an assignment.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, EventStream, TestApp};

/// An agent of the Website inbox with a stream open (so online), and the
/// given capacity: (id, token, stream).
async fn online_agent(app: &TestApp, email: &str, capacity: u32) -> (String, String, EventStream) {
    let (id, token) = app.member_agent(email).await;
    set_capacity(app, &id, capacity).await;
    let stream = app.events("/api/v1/events", &token, None).await;
    (id, token, stream)
}

async fn set_capacity(app: &TestApp, agent: &str, capacity: u32) {
    let r = app
        .patch(
            &format!("/api/v1/agents/{agent}"),
            &app.admin_token,
            json!({ "capacity": capacity }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn set_assignment(app: &TestApp, assignment: Value) -> Value {
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
            json!({ "assignment": assignment }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    body(r).await
}

/// A new contact starts a conversation: its id.
async fn arrives(app: &TestApp) -> String {
    let (_, token) = app.contact().await;
    app.start_conversation(&token, "Hello, anyone there?")
        .await
        .0
}

async fn assignee(app: &TestApp, conversation: &str) -> Value {
    app.conversation(&app.admin_token, conversation).await["assignee_id"].clone()
}

async fn set_status(app: &TestApp, conversation: &str, status: &str) {
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conversation}"),
            &app.admin_token,
            json!({ "status": status }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Every open conversation of the Website inbox: id -> assignee.
async fn open_conversations(app: &TestApp) -> HashMap<u64, Option<String>> {
    let r = app
        .get(
            "/api/v1/conversations?status=open&limit=500",
            &app.admin_token,
        )
        .await;
    body(r).await["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().parse::<u64>().unwrap(),
                c["assignee_id"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// 50 conversations arriving at the same instant across 3 agents with
/// capacity 5: nobody above 5, the other 35 queued, and each resolve
/// hands the oldest queued conversation to the agent who has room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_at_once_never_exceed_a_capacity_and_the_queue_drains_oldest_first() {
    let app = spawn_app().await;
    let mut agents = Vec::new();
    for name in ["ana", "ben", "cy"] {
        agents.push(online_agent(&app, &format!("{name}@example.com"), 5).await);
    }
    let inbox = set_assignment(&app, json!({"mode": "balanced"})).await;
    assert_eq!(
        inbox["assignment"],
        json!({"mode": "balanced", "team_id": null})
    );
    let mut tokens = Vec::new();
    for _ in 0..50 {
        tokens.push(app.contact().await.1);
    }
    let started = futures_util::future::join_all(
        tokens
            .iter()
            .map(|t| app.start_conversation(t, "Hello, anyone there?")),
    )
    .await;
    assert_eq!(started.len(), 50);

    let all = open_conversations(&app).await;
    assert_eq!(all.len(), 50);
    let mut per_agent: HashMap<String, usize> = HashMap::new();
    for a in all.values().flatten() {
        *per_agent.entry(a.clone()).or_default() += 1;
    }
    for (id, _, _) in &agents {
        assert_eq!(per_agent.get(id), Some(&5), "{per_agent:?}");
    }
    let mut queued: Vec<u64> = all
        .iter()
        .filter(|(_, a)| a.is_none())
        .map(|(id, _)| *id)
        .collect();
    queued.sort_unstable();
    assert_eq!(queued.len(), 35);

    // Resolving one of an agent's conversations gives that agent the
    // oldest conversation still waiting, at once.
    for round in 0..6 {
        let (agent, _, _) = &agents[round % 3];
        let mine = open_conversations(&app)
            .await
            .into_iter()
            .filter(|(_, a)| a.as_deref() == Some(agent.as_str()))
            .map(|(id, _)| id)
            .min()
            .unwrap();
        set_status(&app, &mine.to_string(), "resolved").await;
        let oldest = queued.remove(0);
        assert_eq!(
            assignee(&app, &oldest.to_string()).await,
            json!(agent),
            "round {round}: the oldest waiting conversation goes to whoever has room"
        );
        let next = queued[0];
        assert_eq!(assignee(&app, &next.to_string()).await, Value::Null);
    }
    // A snooze frees room too; nobody is ever above capacity.
    let (agent, _, _) = &agents[0];
    let mine = open_conversations(&app)
        .await
        .into_iter()
        .find(|(_, a)| a.as_deref() == Some(agent.as_str()))
        .unwrap()
        .0;
    set_status(&app, &mine.to_string(), "pending").await;
    assert_eq!(
        open_conversations(&app)
            .await
            .values()
            .filter(|a| a.as_deref() == Some(agent.as_str()))
            .count(),
        4,
        "a pending conversation still counts toward capacity: nothing new"
    );
    let r = app
        .patch(
            &format!("/api/v1/conversations/{mine}"),
            &app.admin_token,
            json!({"status": "snoozed", "snoozed_until": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        assignee(&app, &queued.remove(0).to_string()).await,
        json!(agent)
    );
}

/// Round robin gives each online agent a conversation in turn; balanced
/// gives the one with the fewest open conversations, and among equals
/// the one whose last assignment is oldest. A manual assignment may go
/// above capacity and counts toward it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_goes_in_turn_and_balanced_to_the_least_busy() {
    let app = spawn_app().await;
    let (a, _, _sa) = online_agent(&app, "ana@example.com", 25).await;
    let (b, _, _sb) = online_agent(&app, "ben@example.com", 25).await;
    let (c, _, _sc) = online_agent(&app, "cy@example.com", 25).await;
    set_assignment(&app, json!({"mode": "round_robin"})).await;
    let mut got = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..6 {
        let id = arrives(&app).await;
        got.push(assignee(&app, &id).await);
        ids.push(id);
    }
    assert_eq!(got, [&a, &b, &c, &a, &b, &c].map(|x| json!(x)));

    // Balanced: ana resolves both of hers (0 open; ben and cy have 2).
    set_assignment(&app, json!({"mode": "balanced"})).await;
    set_status(&app, &ids[0], "resolved").await;
    set_status(&app, &ids[3], "resolved").await;
    assert_eq!(assignee(&app, &arrives(&app).await).await, json!(a));
    assert_eq!(assignee(&app, &arrives(&app).await).await, json!(a));
    // All at 2: ben's last assignment is older than cy's, ana's newest.
    assert_eq!(assignee(&app, &arrives(&app).await).await, json!(b));
    // ana 2, ben 3, cy 2: cy waited longer than ana.
    assert_eq!(assignee(&app, &arrives(&app).await).await, json!(c));

    // Capacity 1 for cy (she has 3): nothing more for her, but an admin
    // may still hand her one, which counts.
    set_capacity(&app, &c, 1).await;
    let id = arrives(&app).await;
    assert_eq!(assignee(&app, &id).await, json!(a), "ana 2, ben 3");
    let r = app
        .patch(
            &format!("/api/v1/conversations/{id}"),
            &app.admin_token,
            json!({"assignee_id": c}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "a human may exceed a capacity");
    assert_eq!(assignee(&app, &id).await, json!(c));
    // Capacity 0: never auto-assigned.
    set_capacity(&app, &a, 0).await;
    set_capacity(&app, &b, 0).await;
    let id = arrives(&app).await;
    assert_eq!(assignee(&app, &id).await, Value::Null);
    // More capacity: the waiting one goes out at once.
    set_capacity(&app, &b, 10).await;
    assert_eq!(assignee(&app, &id).await, json!(b));
}

/// Busy and offline agents get nothing; setting online, or opening a
/// stream after being away, drains the queue, and the assignment
/// reaches the agent's stream live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_and_busy_agents_get_nothing_until_they_come_online() {
    let app = spawn_app().await;
    let (a, a_token, _sa) = online_agent(&app, "ana@example.com", 25).await;
    // Ben has no stream open: offline.
    let (b, b_token) = app.member_agent("ben@example.com").await;
    set_assignment(&app, json!({"mode": "round_robin"})).await;
    for _ in 0..2 {
        let id = arrives(&app).await;
        assert_eq!(assignee(&app, &id).await, json!(a));
    }
    let r = app
        .client
        .put(app.url("/api/v1/me/availability"))
        .bearer_auth(&a_token)
        .json(&json!({"availability": "busy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let first = arrives(&app).await;
    let second = arrives(&app).await;
    assert_eq!(assignee(&app, &first).await, Value::Null);
    assert_eq!(assignee(&app, &second).await, Value::Null);

    // Ben opens the workspace: he comes online and the oldest is his,
    // live on his stream.
    let mut ben_stream = app.events("/api/v1/events", &b_token, None).await;
    loop {
        let f = ben_stream.next_named("conversation.updated").await;
        let c = f.json();
        if c["id"] == json!(first) {
            assert_eq!(c["assignee_id"], json!(b));
            break;
        }
    }
    // Both went to him in that one write.
    assert_eq!(assignee(&app, &second).await, json!(b));
    // Ana online again: round robin's turn after ben is hers.
    let r = app
        .client
        .put(app.url("/api/v1/me/availability"))
        .bearer_auth(&a_token)
        .json(&json!({"availability": "online"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(assignee(&app, &arrives(&app).await).await, json!(a));
}

/// An inbox limited to a team gives its conversations only to that
/// team's agents and names the team on them; a team an inbox routes to
/// cannot be deleted; a resolved conversation reopened unassigned by
/// its contact is queued and assigned again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_limits_who_gets_an_inbox_and_reopened_conversations_are_routed() {
    let app = spawn_app().await;
    let (_a, _, _sa) = online_agent(&app, "ana@example.com", 25).await;
    let (b, _, _sb) = online_agent(&app, "ben@example.com", 25).await;
    let r = app
        .post(
            "/api/v1/teams",
            &app.admin_token,
            json!({"name": "Billing", "agent_ids": [b]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let team = body(r).await["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
            json!({"assignment": {"mode": "balanced", "team_id": "999999"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
            json!({"assignment": {"mode": "sideways"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let inbox = set_assignment(&app, json!({"mode": "balanced", "team_id": team})).await;
    assert_eq!(inbox["assignment"]["team_id"], json!(team));
    for _ in 0..3 {
        let id = arrives(&app).await;
        let c = app.conversation(&app.admin_token, &id).await;
        assert_eq!(c["assignee_id"], json!(b));
        assert_eq!(c["team_id"], json!(team));
    }
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/teams/{team}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Unassigned and resolved, then the customer writes again: queued
    // and handed out in the same request's wake.
    let (_, contact) = app.contact().await;
    let (id, _) = app.start_conversation(&contact, "First question").await;
    let r = app
        .patch(
            &format!("/api/v1/conversations/{id}"),
            &app.admin_token,
            json!({"assignee_id": null, "status": "resolved"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(assignee(&app, &id).await, Value::Null);
    app.contact_says(&contact, &id, "One more thing").await;
    let c = app.conversation(&app.admin_token, &id).await;
    assert_eq!(c["status"], "open");
    assert_eq!(c["assignee_id"], json!(b));

    // Off: new conversations stay unassigned.
    set_assignment(&app, json!({"mode": "off"})).await;
    assert_eq!(assignee(&app, &arrives(&app).await).await, Value::Null);
}

/// Switching auto-assignment off empties its queue: switched on again, it
/// hands out the conversations that open from then on, not the stale
/// ones (which stay for a human to pick).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_assignment_off_empties_the_queue() {
    let app = spawn_app().await;
    // Ben has no stream open: offline, so the two wait.
    let (b, b_token) = app.member_agent("ben@example.com").await;
    set_assignment(&app, json!({"mode": "balanced"})).await;
    let first = arrives(&app).await;
    let second = arrives(&app).await;
    assert_eq!(assignee(&app, &first).await, Value::Null);
    set_assignment(&app, json!({"mode": "off"})).await;
    let _ben_stream = app.events("/api/v1/events", &b_token, None).await;
    // Switching on routes in the same request: an entry left in the queue
    // would be Ben's by the time it answers.
    set_assignment(&app, json!({"mode": "balanced"})).await;
    assert_eq!(assignee(&app, &first).await, Value::Null);
    assert_eq!(assignee(&app, &second).await, Value::Null);
    let third = arrives(&app).await;
    assert_eq!(assignee(&app, &third).await, json!(b));
}
