//! Conversations and messages from the team's side.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, body, spawn_app};

fn ids(list: &Value) -> Vec<String> {
    list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_conversation_has_the_contract_shape() {
    let app = spawn_app().await;
    let (contact_id, contact) = app.contact().await;
    let (conv, first) = app.start_conversation(&contact, "Hello there").await;
    let c = app.conversation(&app.admin_token, &conv).await;
    for k in [
        "id",
        "inbox_id",
        "contact",
        "status",
        "assignee_id",
        "labels",
        "last_message",
        "unread_count",
        "created_at",
        "updated_at",
    ] {
        assert!(c.get(k).is_some(), "missing {k}");
    }
    assert_eq!(c["inbox_id"], app.inbox_id.as_str());
    assert_eq!(c["contact"]["id"], contact_id.as_str());
    assert_eq!(c["contact"]["name"], "Casey");
    assert_eq!(c["status"], "open");
    assert_eq!(c["assignee_id"], Value::Null);
    assert_eq!(c["unread_count"], 1);
    assert_eq!(c["last_message"]["body"], "Hello there");
    assert!(c["created_at"].as_str().unwrap().ends_with('Z'));
    for k in [
        "id",
        "conversation_id",
        "seq",
        "author",
        "body",
        "private",
        "attachments",
        "created_at",
    ] {
        assert!(first.get(k).is_some(), "message missing {k}");
    }
    assert_eq!(first["seq"], 1);
    assert_eq!(first["author"]["type"], "contact");
    assert_eq!(first["author"]["id"], contact_id.as_str());
    assert_eq!(first["attachments"], json!([]));
}

#[tokio::test]
async fn the_list_is_newest_activity_first_and_open_by_default() {
    let app = spawn_app().await;
    let (_, a) = app.contact().await;
    let (_, b) = app.contact().await;
    let (ca, _) = app.start_conversation(&a, "first").await;
    let (cb, _) = app.start_conversation(&b, "second").await;
    let list = body(app.get("/api/v1/conversations", &app.admin_token).await).await;
    assert_eq!(ids(&list), vec![cb.clone(), ca.clone()]);
    app.contact_says(&a, &ca, "bump").await;
    let list = body(app.get("/api/v1/conversations", &app.admin_token).await).await;
    assert_eq!(ids(&list), vec![ca.clone(), cb.clone()]);
    // Resolved ones leave the default view.
    app.patch(
        &format!("/api/v1/conversations/{ca}"),
        &app.admin_token,
        json!({"status": "resolved"}),
    )
    .await;
    let list = body(app.get("/api/v1/conversations", &app.admin_token).await).await;
    assert_eq!(ids(&list), vec![cb.clone()]);
    let list = body(
        app.get("/api/v1/conversations?status=resolved", &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(ids(&list), vec![ca.clone()]);
    let list = body(
        app.get("/api/v1/conversations?status=all", &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(ids(&list), vec![ca, cb]);
    assert_error(
        app.get("/api/v1/conversations?status=closed", &app.admin_token)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn list_filters_by_assignee_inbox_and_label_and_pages_without_repeats() {
    let app = spawn_app().await;
    let (me, token) = app.member_agent("f@example.com").await;
    let mut convs = Vec::new();
    for i in 0..5 {
        let (_, c) = app.contact().await;
        convs.push(app.start_conversation(&c, &format!("m{i}")).await.0);
    }
    let r = app
        .patch(
            &format!("/api/v1/conversations/{}", convs[1]),
            &token,
            json!({"assignee_id": me, "labels": ["VIP", "billing"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mine = body(app.get("/api/v1/conversations?assignee=me", &token).await).await;
    assert_eq!(ids(&mine), vec![convs[1].clone()]);
    let un = body(
        app.get("/api/v1/conversations?assignee=unassigned", &token)
            .await,
    )
    .await;
    assert_eq!(un["conversations"].as_array().unwrap().len(), 4);
    let vip = body(app.get("/api/v1/conversations?label=vip", &token).await).await;
    assert_eq!(ids(&vip), vec![convs[1].clone()]);
    let by_inbox = body(
        app.get(
            &format!("/api/v1/conversations?inbox={}", app.inbox_id),
            &token,
        )
        .await,
    )
    .await;
    assert_eq!(by_inbox["conversations"].as_array().unwrap().len(), 5);
    // Pages of two: every conversation once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/conversations?limit=2&cursor={c}"),
            None => "/api/v1/conversations?limit=2".into(),
        };
        let page = body(app.get(&q, &token).await).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected = convs.clone();
    expected.reverse();
    expected.retain(|c| c != &convs[1]);
    expected.insert(0, convs[1].clone()); // the patch was its latest activity
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn an_agent_outside_the_inbox_gets_404_everywhere() {
    let app = spawn_app().await;
    let (_, outsider) = app.create_agent("out@example.com", "agent").await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "private matter").await;
    let base = format!("/api/v1/conversations/{conv}");
    assert_error(
        app.get(&base, &outsider).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get(&format!("{base}/messages"), &outsider).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.post(
            &format!("{base}/messages"),
            &outsider,
            json!({"body": "hi"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.patch(&base, &outsider, json!({"status": "resolved"}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.post(
            &format!("{base}/typing"),
            &outsider,
            json!({"typing": true}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.post(&format!("{base}/read"), &outsider, json!({"seq": 1}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let list = body(app.get("/api/v1/conversations?status=all", &outsider).await).await;
    assert_eq!(list["conversations"], json!([]));
    assert_error(
        app.get(
            &format!("/api/v1/conversations?inbox={}", app.inbox_id),
            &outsider,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Ids that are not ours at all are the same 404.
    assert_error(
        app.get("/api/v1/conversations/999999", &outsider).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/api/v1/conversations/abc", &outsider).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn replies_and_notes_get_gapless_seqs_and_notes_are_marked_private() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let reply = app
        .agent_says(&app.admin_token, &conv, "Hello!", false)
        .await;
    let note = app
        .agent_says(&app.admin_token, &conv, "VIP customer", true)
        .await;
    assert_eq!(reply["seq"], 2);
    assert_eq!(reply["author"]["type"], "agent");
    assert_eq!(note["seq"], 3);
    assert_eq!(note["private"], true);
    let all = app.agent_messages(&app.admin_token, &conv, "").await;
    assert_eq!(
        all.iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[tokio::test]
async fn message_bodies_are_checked_and_stored_as_sent() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let path = format!("/api/v1/conversations/{conv}/messages");
    for bad in [
        json!({"body": ""}),
        json!({"body": "   \n\t"}),
        json!({"body": "x".repeat(10_001)}),
        json!({}),
        json!({"body": null}),
    ] {
        assert_error(
            app.post(&path, &app.admin_token, bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
    }
    let exact = format!("  {}  ", "é".repeat(10_000));
    let m = app.agent_says(&app.admin_token, &conv, &exact, false).await;
    assert_eq!(m["body"], exact.as_str());
    let html = "<script>alert(1)</script> & \u{202e}rtl 🎉";
    let m = app.agent_says(&app.admin_token, &conv, html, false).await;
    assert_eq!(m["body"], html);
    let msgs = app.customer_messages(&contact, &conv).await;
    assert_eq!(msgs.last().unwrap()["body"], html);
}

#[tokio::test]
async fn messages_page_with_after_before_and_limit() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "m1").await;
    for i in 2..=10 {
        app.agent_says(&app.admin_token, &conv, &format!("m{i}"), i % 3 == 0)
            .await;
    }
    let seqs = |v: Vec<Value>| {
        v.iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seqs(
            app.agent_messages(&app.admin_token, &conv, "?limit=3")
                .await
        ),
        vec![8, 9, 10]
    );
    assert_eq!(
        seqs(
            app.agent_messages(&app.admin_token, &conv, "?after=4&limit=3")
                .await
        ),
        vec![5, 6, 7]
    );
    assert_eq!(
        seqs(
            app.agent_messages(&app.admin_token, &conv, "?before=4")
                .await
        ),
        vec![1, 2, 3]
    );
    assert_eq!(
        seqs(
            app.agent_messages(&app.admin_token, &conv, "?after=2&before=6")
                .await
        ),
        vec![3, 4, 5]
    );
    assert_eq!(
        seqs(
            app.agent_messages(&app.admin_token, &conv, "?limit=100000")
                .await
        )
        .len(),
        10
    );
    for bad in ["?limit=0", "?limit=-1", "?after=x", "?before=1.5"] {
        let r = app
            .get(
                &format!("/api/v1/conversations/{conv}/messages{bad}"),
                &app.admin_token,
            )
            .await;
        assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    }
}

#[tokio::test]
async fn patch_changes_status_assignee_labels_and_validates_them() {
    let app = spawn_app().await;
    let (agent_id, agent) = app.member_agent("p@example.com").await;
    let (outsider, _) = app.create_agent("o@example.com", "agent").await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let path = format!("/api/v1/conversations/{conv}");
    let r = app.patch(&path, &agent, json!({"status": "pending", "assignee_id": agent_id, "labels": ["Refund", "refund", "vip"]})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let c = body(r).await;
    assert_eq!(c["status"], "pending");
    assert_eq!(c["assignee_id"], agent_id.as_str());
    assert_eq!(c["labels"], json!(["refund", "vip"]));
    let c = body(app.patch(&path, &agent, json!({"assignee_id": null})).await).await;
    assert_eq!(c["assignee_id"], Value::Null);
    assert_eq!(
        c["labels"],
        json!(["refund", "vip"]),
        "fields not sent stay as they were"
    );
    for (bad, field) in [
        (json!({"status": "closed"}), "status"),
        (json!({"assignee_id": outsider}), "assignee_id"),
        (json!({"assignee_id": "424242"}), "assignee_id"),
        (json!({"labels": ["two words"]}), "labels"),
        (json!({"labels": "vip"}), "body"),
        (json!({"snoozed_until": "tomorrow"}), "snoozed_until"),
        (
            json!({"snoozed_until": "2001-01-01T00:00:00Z"}),
            "snoozed_until",
        ),
        (
            json!({"status": "open", "snoozed_until": "2999-01-01T00:00:00Z"}),
            "snoozed_until",
        ),
    ] {
        let r = app.patch(&path, &agent, bad.clone()).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(body(r).await["error"]["field"], field, "{bad}");
    }
}

#[tokio::test]
async fn snoozing_sets_the_status_and_a_contact_message_reopens_it() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let path = format!("/api/v1/conversations/{conv}");
    let c = body(
        app.patch(
            &path,
            &app.admin_token,
            json!({"snoozed_until": "2999-01-01T00:00:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!(c["status"], "snoozed");
    assert_eq!(c["snoozed_until"], "2999-01-01T00:00:00.000Z");
    app.contact_says(&contact, &conv, "any news?").await;
    let c = app.conversation(&app.admin_token, &conv).await;
    assert_eq!(c["status"], "open");
    assert_eq!(c["snoozed_until"], Value::Null);
}

#[tokio::test]
async fn a_contact_message_reopens_pending_and_resolved_conversations_but_an_agent_message_does_not(
) {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let path = format!("/api/v1/conversations/{conv}");
    for status in ["pending", "resolved"] {
        app.patch(&path, &app.admin_token, json!({"status": status}))
            .await;
        app.agent_says(&app.admin_token, &conv, "anything else?", false)
            .await;
        assert_eq!(
            app.conversation(&app.admin_token, &conv).await["status"],
            status
        );
        app.contact_says(&contact, &conv, "yes").await;
        assert_eq!(
            app.conversation(&app.admin_token, &conv).await["status"],
            "open"
        );
    }
}

#[tokio::test]
async fn reading_drops_the_unread_count() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "one").await;
    app.contact_says(&contact, &conv, "two").await;
    app.contact_says(&contact, &conv, "three").await;
    assert_eq!(
        app.conversation(&app.admin_token, &conv).await["unread_count"],
        3
    );
    let read_path = format!("/api/v1/conversations/{conv}/read");
    let read = |seq: u64| app.post(&read_path, &app.admin_token, json!({"seq": seq}));
    assert_eq!(read(2).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.conversation(&app.admin_token, &conv).await["unread_count"],
        1
    );
    assert_eq!(read(99).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.conversation(&app.admin_token, &conv).await["unread_count"],
        0
    );
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/read"),
            &app.admin_token,
            json!({"seq": -1}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    // The contact's side counts the team's public replies.
    app.agent_says(&app.admin_token, &conv, "reply", false)
        .await;
    app.agent_says(&app.admin_token, &conv, "note", true).await;
    let mine = body(
        app.get(&format!("/api/v1/customer/conversations/{conv}"), &contact)
            .await,
    )
    .await;
    assert_eq!(mine["unread_count"], 1);
    assert_eq!(mine["last_message"]["body"], "reply");
}

/// `waiting_since`: from the customer's first unanswered message until a
/// human's public reply; notes do not end it, a resolve does, and a new
/// message into a resolved conversation starts a new wait. The team's list
/// filters on it; the contact never sees it.
#[tokio::test]
async fn waiting_since_follows_the_customers_unanswered_messages() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    let (_, contact) = app.contact().await;
    let (conv, first) = app.start_conversation(&contact, "first").await;
    let waiting = |c: &Value| c["waiting_since"].clone();
    assert_eq!(
        waiting(&app.conversation(&admin, &conv).await),
        first["created_at"]
    );
    app.contact_says(&contact, &conv, "second").await;
    app.agent_says(&admin, &conv, "a note", true).await;
    assert_eq!(
        waiting(&app.conversation(&admin, &conv).await),
        first["created_at"],
        "a second message and a note keep the wait"
    );
    let (_, other_contact) = app.contact().await;
    let (other, _) = app.start_conversation(&other_contact, "me too").await;
    app.agent_says(&admin, &conv, "an answer", false).await;
    assert_eq!(waiting(&app.conversation(&admin, &conv).await), Value::Null);
    let listed = body(app.get("/api/v1/conversations?waiting=true", &admin).await).await;
    let ids: Vec<&str> = listed["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![other.as_str()]);
    let again = app.contact_says(&contact, &conv, "one more thing").await;
    assert_eq!(
        waiting(&app.conversation(&admin, &conv).await),
        again["created_at"]
    );
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            &admin,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(waiting(&app.conversation(&admin, &conv).await), Value::Null);
    let reopening = app.contact_says(&contact, &conv, "back again").await;
    let c = app.conversation(&admin, &conv).await;
    assert_eq!(c["status"], "open");
    assert_eq!(waiting(&c), reopening["created_at"], "a new wait");
    // The contact's view of it has no such key.
    let mine = body(
        app.get(&format!("/api/v1/customer/conversations/{conv}"), &contact)
            .await,
    )
    .await;
    assert!(mine.get("waiting_since").is_none(), "{mine}");
    let r = app.get("/api/v1/conversations?waiting=maybe", &admin).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
