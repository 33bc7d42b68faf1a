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
    let mut ids = message_ids(&r);
    ids.sort();
    let mut expected = vec![
        first["id"].as_str().unwrap().to_owned(),
        note["id"].as_str().unwrap().to_owned(),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(r["results"][0]["conversation_id"], conv.as_str());
    let snippets: Vec<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["snippet"].as_str().unwrap())
        .collect();
    assert!(
        snippets.iter().any(|s| s.contains("REFUND")),
        "{snippets:?}"
    );
    assert_eq!(r["next_cursor"], Value::Null);
}

/// The index commits on a schedule (every 200 ms while events are
/// pending), not after a lull: with messages arriving faster than that, a
/// message posted before them is still found, instead of the search
/// waiting out its catch-up limit on an index that never commits.
#[tokio::test]
async fn a_message_is_found_while_others_keep_arriving() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hello").await;
    let needle = app
        .agent_says(&app.admin_token, &conv, "the zeppelin order", false)
        .await;
    let (posted_tx, mut posted_rx) = tokio::sync::watch::channel(0u32);
    let searched = std::sync::atomic::AtomicBool::new(false);
    let fillers = async {
        let mut n = 0u32;
        while !searched.load(std::sync::atomic::Ordering::Acquire) {
            app.agent_says(&app.admin_token, &conv, &format!("filler {n}"), false)
                .await;
            n += 1;
            posted_tx.send_replace(n);
        }
        n
    };
    let search = async {
        posted_rx.wait_for(|n| *n >= 20).await.unwrap();
        let r = body(app.get("/api/v1/search?q=zeppelin", &app.admin_token).await).await;
        searched.store(true, std::sync::atomic::Ordering::Release);
        r
    };
    let (posted, r) = tokio::join!(fillers, search);
    assert!(posted > 20, "the fillers kept coming during the search");
    assert_eq!(
        message_ids(&r),
        vec![needle["id"].as_str().unwrap().to_owned()]
    );
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

fn bodies(v: &Value, app_msgs: &[(String, String)]) -> Vec<String> {
    message_ids(v)
        .iter()
        .map(|id| {
            app_msgs
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, b)| b.clone())
                .unwrap_or_else(|| format!("?{id}"))
        })
        .collect()
}

/// Posts `texts` as contact messages in one conversation; returns (id, body).
async fn corpus(app: &crate::helpers::TestApp, texts: &[&str]) -> (String, Vec<(String, String)>) {
    let (_, contact) = app.contact().await;
    let (conv, first) = app.start_conversation(&contact, texts[0]).await;
    let mut out = vec![(
        first["id"].as_str().unwrap().to_owned(),
        texts[0].to_owned(),
    )];
    for t in &texts[1..] {
        let m = app.contact_says(&contact, &conv, t).await;
        out.push((m["id"].as_str().unwrap().to_owned(), (*t).to_owned()));
    }
    (conv, out)
}

async fn search(app: &crate::helpers::TestApp, q: &str) -> Value {
    let r = app
        .client
        .get(app.url("/api/v1/search"))
        .bearer_auth(&app.admin_token)
        .query(&[("q", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{q}");
    body(r).await
}

#[tokio::test]
async fn results_are_ranked_by_relevance() {
    let app = spawn_app().await;
    let (_, msgs) = corpus(
        &app,
        &[
            "I would like a refund for my order",
            "unrelated question about shipping",
            "refund refund refund, I need my refund",
        ],
    )
    .await;
    let r = search(&app, "refund").await;
    assert_eq!(
        bodies(&r, &msgs),
        vec![
            "refund refund refund, I need my refund",
            "I would like a refund for my order"
        ]
    );
    let h = &r["results"][0];
    let snippet = h["snippet"].as_str().unwrap();
    let (a, b) = (
        h["highlights"][0][0].as_u64().unwrap() as usize,
        h["highlights"][0][1].as_u64().unwrap() as usize,
    );
    assert_eq!(
        snippet
            .chars()
            .skip(a)
            .take(b - a)
            .collect::<String>()
            .to_lowercase(),
        "refund"
    );
}

#[tokio::test]
async fn phrases_prefixes_accents_emails_order_numbers_and_cjk_are_found() {
    let app = spawn_app().await;
    let (_, msgs) = corpus(
        &app,
        &[
            "my order 1234 is late",
            "1234 order numbers are confusing",
            "The Café served crème brûlée",
            "write to ann.lee@example.com please",
            "配送が遅れています",
            "送配は別の言葉",
            "Invoice #INV-2024-0042 attached",
        ],
    )
    .await;
    let find = |q: &'static str| {
        let app = &app;
        let msgs = &msgs;
        async move { bodies(&search(app, q).await, msgs) }
    };
    assert_eq!(find("\"order 1234\"").await, vec!["my order 1234 is late"]);
    assert_eq!(find("refu").await, Vec::<String>::new());
    assert_eq!(
        find("confus").await,
        vec!["1234 order numbers are confusing"],
        "the last word is a prefix"
    );
    assert_eq!(
        find("cafe creme").await,
        vec!["The Café served crème brûlée"]
    );
    assert_eq!(find("CAFÉ").await, vec!["The Café served crème brûlée"]);
    assert_eq!(
        find("ann.lee@example.com").await,
        vec!["write to ann.lee@example.com please"]
    );
    assert_eq!(find("配送").await, vec!["配送が遅れています"]);
    assert_eq!(
        find("INV-2024-0042").await,
        vec!["Invoice #INV-2024-0042 attached"]
    );
    assert_eq!(find("0042").await, vec!["Invoice #INV-2024-0042 attached"]);
    let both = find("1234").await;
    assert_eq!(both.len(), 2);
}

#[tokio::test]
async fn agents_filter_by_inbox_status_assignee_label_contact_author_and_date() {
    let app = spawn_app().await;
    let sales = app.create_inbox("Sales").await;
    let (me, _) = app.member_agent("f@example.com").await;
    let (contact_a, a) = app.contact().await;
    let (conv_a, _) = app.start_conversation(&a, "parcel question from a").await;
    app.agent_says(
        &app.admin_token,
        &conv_a,
        "parcel answer from the team",
        false,
    )
    .await;
    let (_, b) = app
        .contact_in(
            sales["widget_key"].as_str().unwrap(),
            serde_json::json!({"name": "Bo"}),
        )
        .await;
    let (conv_b, _) = app.start_conversation(&b, "parcel question from b").await;
    app.patch(
        &format!("/api/v1/conversations/{conv_b}"),
        &app.admin_token,
        serde_json::json!({"status": "pending", "labels": ["vip"]}),
    )
    .await;
    app.patch(
        &format!("/api/v1/conversations/{conv_a}"),
        &app.admin_token,
        serde_json::json!({"assignee_id": me}),
    )
    .await;
    let q = |extra: &str| {
        let path = format!("/api/v1/search?q=parcel{extra}");
        let app = &app;
        async move {
            let r = app.get(&path, &app.admin_token).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let v = body(r).await;
            v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["conversation_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(q("").await.len(), 3);
    assert_eq!(
        q(&format!("&inbox={}", sales["id"].as_str().unwrap())).await,
        vec![conv_b.clone()]
    );
    assert_eq!(q("&status=pending").await, vec![conv_b.clone()]);
    assert_eq!(q("&label=VIP").await, vec![conv_b.clone()]);
    assert_eq!(q(&format!("&assignee={me}")).await.len(), 2);
    assert_eq!(q("&assignee=unassigned").await, vec![conv_b.clone()]);
    assert_eq!(q(&format!("&contact={contact_a}")).await.len(), 2);
    assert_eq!(q("&author=agent").await, vec![conv_a.clone()]);
    assert_eq!(q("&from=2000-01-01&to=2999-01-01").await.len(), 3);
    assert_eq!(q("&to=2000-01-01").await.len(), 0);
    for bad in [
        "&status=closed",
        "&author=robot",
        "&from=yesterday",
        "&inbox=x",
        "&cursor=abc",
    ] {
        let r = app
            .get(&format!("/api/v1/search?q=parcel{bad}"), &app.admin_token)
            .await;
        assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    }
}

#[tokio::test]
async fn agents_find_contacts_by_name_and_email() {
    let app = spawn_app().await;
    let (_, c) = app
        .contact_in(
            &app.widget_key.clone(),
            serde_json::json!({"name": "Zebulon Quist", "email": "zq@example.org"}),
        )
        .await;
    let (conv, _) = app.start_conversation(&c, "hello there").await;
    for q in ["zebulon", "zq@example.org", "Quist"] {
        let r = search(&app, q).await;
        assert_eq!(r["results"][0]["conversation_id"], conv.as_str(), "{q}");
    }
    // Customers never search other people's names.
    let (_, other) = app.contact().await;
    app.start_conversation(&other, "my own words").await;
    let r = body(app.get("/api/v1/customer/search?q=zebulon", &other).await).await;
    assert_eq!(r["results"], serde_json::json!([]));
}

#[tokio::test]
async fn deleting_a_contact_removes_its_messages_everywhere_including_search() {
    let app = spawn_app().await;
    let (contact_id, c) = app.contact().await;
    let (conv, _) = app
        .start_conversation(&c, "please forget my secretword")
        .await;
    assert_eq!(
        search(&app, "secretword").await["results"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (_, other) = app.contact().await;
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/contacts/{contact_id}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (_, agent) = app.create_agent("plain@example.com", "agent").await;
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/contacts/{contact_id}")))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/contacts/{contact_id}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        search(&app, "secretword").await["results"],
        serde_json::json!([])
    );
    assert_eq!(
        app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/customer/conversations", &c).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Replaying the event log from the start no longer shows the messages.
    let mut s = app
        .events("/api/v1/events", &app.admin_token, Some("0"))
        .await;
    let f = s.next_event().await;
    assert_eq!(f.event.as_deref(), Some("contact.deleted"), "{f:?}");
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/contacts/{contact_id}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_rebuilt_index_answers_like_the_live_one() {
    let app = spawn_app().await;
    let (_, msgs) = corpus(
        &app,
        &[
            "alpha beta",
            "beta gamma",
            "gamma delta alpha",
            "配送 alpha",
            "Café alpha",
        ],
    )
    .await;
    let queries = [
        "alpha",
        "beta",
        "gamma",
        "\"gamma delta\"",
        "配送",
        "cafe",
        "alp",
    ];
    let mut live = Vec::new();
    for q in queries {
        live.push(bodies(&search(&app, q).await, &msgs));
    }
    let data = app.stop().await;
    let out = tokio::process::Command::new(crate::cli::BIN)
        .args(["reindex", "--data", data.path().to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("reindexed"), "{stdout}");
    // Not a terminal: progress as log lines (the last one at the end),
    // no bar drawn into the pipe.
    assert!(
        stdout.contains("done: ") && stdout.contains(" messages"),
        "{stdout}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\r'));
    let config = crate::helpers::test_config(&data);
    let app = crate::helpers::start(data, config).await;
    for (q, expected) in queries.iter().zip(live) {
        assert_eq!(bodies(&search(&app, q).await, &msgs), expected, "{q}");
    }
}
