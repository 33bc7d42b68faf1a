//! Live events over SSE: replay, access, typing, keep-alive.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn agents_receive_new_conversations_and_messages_live() {
    let app = spawn_app().await;
    let mut agent = app.events("/api/v1/events", &app.admin_token, None).await;
    let (_, contact) = app.contact().await;
    let (conv, first) = app.start_conversation(&contact, "hello").await;
    let created = agent.next_event().await;
    assert_eq!(created.event.as_deref(), Some("conversation.created"));
    assert_eq!(created.json()["id"], conv.as_str());
    assert!(created.id.is_some());
    let msg = agent.next_event().await;
    assert_eq!(msg.event.as_deref(), Some("message.created"));
    assert_eq!(msg.json(), first);
    let ids: Vec<u64> = [&created, &msg]
        .iter()
        .map(|f| f.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids[0] < ids[1]);
}

#[tokio::test]
async fn last_event_id_replays_exactly_what_was_missed_then_goes_live() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "m1").await;
    let mut first = app.events("/api/v1/events", &app.admin_token, None).await;
    let seen = app.contact_says(&contact, &conv, "m2").await;
    let f = first.next_named("message.created").await;
    assert_eq!(f.json()["id"], seen["id"]);
    let last_id = f.id.clone().unwrap();
    drop(first);

    // While disconnected: three messages, a note and a status change.
    let mut missed = Vec::new();
    missed.push(app.contact_says(&contact, &conv, "m3").await["id"].clone());
    missed.push(app.agent_says(&app.admin_token, &conv, "m4", false).await["id"].clone());
    missed.push(app.agent_says(&app.admin_token, &conv, "note", true).await["id"].clone());
    app.patch(
        &format!("/api/v1/conversations/{conv}"),
        &app.admin_token,
        json!({"status": "pending"}),
    )
    .await;

    let mut again = app
        .events("/api/v1/events", &app.admin_token, Some(&last_id))
        .await;
    let mut got = Vec::new();
    let mut prev: u64 = last_id.parse().unwrap();
    for _ in 0..4 {
        let f = again.next_event().await;
        let id: u64 = f.id.as_deref().unwrap().parse().unwrap();
        assert_eq!(id, prev + 1, "event ids are gapless and in order");
        prev = id;
        got.push((f.event.clone().unwrap(), f.json()));
    }
    assert_eq!(
        got[..3]
            .iter()
            .map(|(_, d)| d["id"].clone())
            .collect::<Vec<_>>(),
        missed
    );
    assert_eq!(got[3].0, "conversation.updated");
    assert_eq!(got[3].1["status"], "pending");
    // Then live, with nothing repeated.
    let live = app.contact_says(&contact, &conv, "m5").await;
    let f = again.next_event().await;
    assert_eq!(f.event.as_deref(), Some("message.created"), "{f:?}");
    assert_eq!(f.json()["id"], live["id"]);
    // A second reconnect from the same point gets the same replay.
    let mut third = app
        .events("/api/v1/events", &app.admin_token, Some(&last_id))
        .await;
    assert_eq!(third.next_event().await.json()["id"], missed[0]);
}

#[tokio::test]
async fn replay_is_exact_under_concurrent_writes() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "start").await;
    let mut live = app.events("/api/v1/events", &app.admin_token, None).await;
    // Writers run while a second client connects with Last-Event-ID 0 in the
    // middle of them: it must see every message exactly once, in order.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let app_url = app.base.clone();
            let client = app.client.clone();
            let token = app.admin_token.clone();
            let conv = conv.clone();
            tokio::spawn(async move {
                for i in 0..15 {
                    let r = client
                        .post(format!("{app_url}/api/v1/conversations/{conv}/messages"))
                        .bearer_auth(&token)
                        .json(&json!({"body": format!("w{w} m{i}")}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::CREATED);
                }
            })
        })
        .collect();
    let mut late = app
        .events("/api/v1/events", &app.admin_token, Some("0"))
        .await;
    for w in writers {
        w.await.unwrap();
    }
    // The live stream joined after the first message: seq 2..=61. The late
    // one replays from the start: seq 1..=61.
    for (stream, first_seq) in [(&mut live, 2u64), (&mut late, 1u64)] {
        let mut seqs = Vec::new();
        let mut last = 0u64;
        while seqs.len() < (62 - first_seq) as usize {
            let f = stream.next_event().await;
            let id: u64 = f.id.as_deref().unwrap().parse().unwrap();
            assert!(id > last, "ids increase: {id} after {last}");
            last = id;
            if f.event.as_deref() == Some("message.created") {
                seqs.push(f.json()["seq"].as_u64().unwrap());
            }
        }
        assert_eq!(seqs, (first_seq..=61).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn private_notes_never_reach_the_customer_stream() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let mut stream = app.events("/api/v1/customer/events", &contact, None).await;
    app.agent_says(&app.admin_token, &conv, "internal only", true)
        .await;
    let reply = app
        .agent_says(&app.admin_token, &conv, "public reply", false)
        .await;
    // Events are in order, so had the note been sent it would come first.
    let f = stream.next_named("message.created").await;
    assert_eq!(f.json()["id"], reply["id"]);
    // Nor on replay from the start.
    let mut replay = app
        .events("/api/v1/customer/events", &contact, Some("0"))
        .await;
    let mut bodies = Vec::new();
    while bodies.len() < 2 {
        let f = replay.next_named("message.created").await;
        bodies.push(f.json()["body"].as_str().unwrap().to_owned());
    }
    assert_eq!(bodies, vec!["hi", "public reply"]);
}

#[tokio::test]
async fn a_contact_never_receives_another_contacts_events() {
    let app = spawn_app().await;
    let (_, a) = app.contact().await;
    let (_, b) = app.contact().await;
    let (conv_b, _) = app.start_conversation(&b, "b's first").await;
    let mut stream_a = app.events("/api/v1/customer/events", &a, Some("0")).await;
    app.agent_says(&app.admin_token, &conv_b, "for b only", false)
        .await;
    app.post(
        &format!("/api/v1/conversations/{conv_b}/typing"),
        &app.admin_token,
        json!({"typing": true}),
    )
    .await;
    let (conv_a, mine) = app.start_conversation(&a, "a's first").await;
    let f = stream_a.next_event().await;
    assert_eq!(f.event.as_deref(), Some("conversation.created"));
    assert_eq!(f.json()["id"], conv_a.as_str());
    let f = stream_a.next_event().await;
    assert_eq!(f.json()["id"], mine["id"]);
}

#[tokio::test]
async fn an_agent_outside_the_inbox_gets_no_events_from_it() {
    let app = spawn_app().await;
    let sales = app.create_inbox("Sales").await;
    let (agent_id, agent) = app.create_agent("s@example.com", "agent").await;
    app.add_member(sales["id"].as_str().unwrap(), &agent_id)
        .await;
    let mut stream = app.events("/api/v1/events", &agent, None).await;
    let (_, website_contact) = app.contact().await;
    app.start_conversation(&website_contact, "website, not sales")
        .await;
    let (_, sales_contact) = app
        .contact_in(sales["widget_key"].as_str().unwrap(), json!({}))
        .await;
    let (sales_conv, _) = app
        .start_conversation(&sales_contact, "sales question")
        .await;
    let f = stream.next_event().await;
    assert_eq!(f.event.as_deref(), Some("conversation.created"));
    assert_eq!(f.json()["id"], sales_conv.as_str());
}

#[tokio::test]
async fn typing_goes_both_ways_and_is_never_replayed() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let mut agent = app.events("/api/v1/events", &app.admin_token, None).await;
    let mut customer = app.events("/api/v1/customer/events", &contact, None).await;
    let r = app
        .post(
            &format!("/api/v1/customer/conversations/{conv}/typing"),
            &contact,
            json!({"typing": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let f = agent.next_named("typing").await;
    assert!(f.id.is_none(), "typing events carry no id");
    assert_eq!(f.json()["conversation_id"], conv.as_str());
    assert_eq!(f.json()["author"]["type"], "contact");
    assert_eq!(f.json()["typing"], true);
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/typing"),
            &app.admin_token,
            json!({"typing": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let f = customer.next_named("typing").await;
    assert_eq!(f.json()["author"]["type"], "agent");
    // Typing a note is not shown to the contact: the next thing it sees is
    // the reply that follows.
    app.post(
        &format!("/api/v1/conversations/{conv}/typing"),
        &app.admin_token,
        json!({"typing": true, "private": true}),
    )
    .await;
    let reply = app.agent_says(&app.admin_token, &conv, "done", false).await;
    let f = customer.next_event().await;
    assert_eq!(f.event.as_deref(), Some("message.created"));
    assert_eq!(f.json()["id"], reply["id"]);
    // Replay has messages only.
    let mut replay = app
        .events("/api/v1/events", &app.admin_token, Some("0"))
        .await;
    for _ in 0..3 {
        assert_ne!(replay.next_event().await.event.as_deref(), Some("typing"));
    }
}

#[tokio::test]
async fn read_receipts_reach_the_other_side() {
    let app = spawn_app().await;
    let (contact_id, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let reply = app
        .agent_says(&app.admin_token, &conv, "hello", false)
        .await;
    let mut agent = app.events("/api/v1/events", &app.admin_token, None).await;
    let r = app
        .post(
            &format!("/api/v1/customer/conversations/{conv}/read"),
            &contact,
            json!({"seq": reply["seq"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let f = agent.next_named("conversation.read").await;
    assert_eq!(
        f.json(),
        json!({"conversation_id": conv, "reader": {"type": "contact", "id": contact_id}, "seq": 2})
    );
}

#[tokio::test]
async fn a_keep_alive_comment_arrives_between_events() {
    let app = spawn_app_with(|c| c.sse_keepalive_secs = 1).await;
    let mut s = app.events("/api/v1/events", &app.admin_token, None).await;
    let f = s.next_frame(Duration::from_secs(5)).await.expect("a frame");
    assert_eq!(f.comment.as_deref(), Some("keep-alive"));
    assert!(f.event.is_none());
}

#[tokio::test]
async fn event_streams_need_credentials_of_their_audience() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let r = app
        .client
        .get(app.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/v1/events", &contact).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/customer/events", &app.admin_token)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn catchups(app: &crate::helpers::TestApp) -> u64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix("natter_sse_catchups_total "))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_falls_behind_catches_up_from_the_log_without_skipping() {
    // A live buffer of one event: any burst overflows it.
    let app = spawn_app_with(|c| c.event_buffer = 1).await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "start").await;
    let mut stream = app.events("/api/v1/events", &app.admin_token, None).await;
    let before = catchups(&app).await;
    let posts: Vec<_> = (0..40)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url(&format!("/api/v1/conversations/{conv}/messages"));
            let token = app.admin_token.clone();
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"body": format!("burst {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
            })
        })
        .collect();
    for p in posts {
        p.await.unwrap();
    }
    let mut seqs = Vec::new();
    let mut last_id: Option<u64> = None;
    while seqs.len() < 40 {
        let f = stream.next_named("message.created").await;
        let id: u64 = f.id.as_deref().unwrap().parse().unwrap();
        if let Some(l) = last_id {
            assert_eq!(id, l + 1, "no event skipped");
        }
        last_id = Some(id);
        seqs.push(f.json()["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, (2..=41).collect::<Vec<_>>());
    assert!(
        catchups(&app).await > before,
        "the burst overflowed the live buffer and was caught up from the log"
    );
}

#[tokio::test]
async fn a_snoozed_conversation_reopens_by_itself_when_its_time_comes() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let mut stream = app.events("/api/v1/events", &app.admin_token, None).await;
    let until = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            &app.admin_token,
            json!({"snoozed_until": until}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let snoozed = stream.next_named("conversation.updated").await;
    assert_eq!(snoozed.json()["status"], "snoozed");
    let woken = stream.next_named("conversation.updated").await;
    assert_eq!(woken.json()["status"], "open");
    assert_eq!(woken.json()["snoozed_until"], serde_json::Value::Null);
    let woken_at =
        chrono::DateTime::parse_from_rfc3339(woken.json()["updated_at"].as_str().unwrap()).unwrap();
    assert!(woken_at >= chrono::DateTime::parse_from_rfc3339(&until).unwrap());
}
