//! `natter export` and `natter import` (issue 16, point 5): every record as
//! JSON lines plus the attachments; an import into a new folder answers
//! the API exactly as the source does.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cli::run;
use crate::helpers::{body, spawn_app, start, test_config, TestApp, PNG};
use crate::migration::replay;

/// What the API answers about everything, with the server's own address
/// taken out (the two servers listen on different ports).
async fn everything(app: &TestApp, contacts: &[String]) -> Value {
    let admin = app.admin_token.clone();
    let get = |path: String| {
        let admin = admin.clone();
        async move {
            let r = app.get(&path, &admin).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            body(r).await
        }
    };
    let mut out = serde_json::Map::new();
    let all = get("/api/v1/conversations?status=all&limit=100".into()).await;
    for c in all["conversations"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        out.insert(
            format!("conversation {id}"),
            get(format!("/api/v1/conversations/{id}")).await,
        );
        out.insert(
            format!("messages {id}"),
            get(format!(
                "/api/v1/conversations/{id}/messages?after=0&limit=500"
            ))
            .await,
        );
    }
    out.insert("conversations".into(), all);
    for s in ["open", "pending", "snoozed", "resolved"] {
        out.insert(
            s.into(),
            get(format!("/api/v1/conversations?status={s}")).await,
        );
    }
    for c in contacts {
        out.insert(
            format!("contact {c}"),
            get(format!("/api/v1/contacts/{c}")).await,
        );
    }
    for p in [
        "/api/v1/agents",
        "/api/v1/inboxes",
        "/api/v1/teams",
        "/api/v1/webhooks",
    ] {
        out.insert(p.into(), get(p.into()).await);
    }
    out.insert(
        "events".into(),
        Value::Array(replay(app, "/api/v1/events", &admin, "0").await),
    );
    let text = serde_json::to_string(&Value::Object(out)).unwrap();
    serde_json::from_str(&text.replace(&app.base, "BASE")).unwrap()
}

#[tokio::test]
async fn an_import_of_an_export_answers_the_api_as_its_source_does() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    let key = app.widget_key.clone();
    let (a, ca) = app
        .contact_in(&key, json!({"name": "Ana", "email": "ana@example.com"}))
        .await;
    let (b, _) = app
        .contact_in(&key, json!({"name": "Ben", "email": "ben@example.com"}))
        .await;
    let (conv, _) = app.start_conversation(&ca, "where is my parcel?").await;
    app.agent_says(&admin, &conv, "note: courier", true).await;
    app.agent_says(&admin, &conv, "on its way", false).await;
    let photo =
        app.contact_sends_png(&ca, &conv, "receipt", "r.png").await["attachments"][0].clone();
    let (c, cc) = app.contact().await;
    let (conv2, _) = app.start_conversation(&cc, "hello").await;
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv2}"),
            &admin,
            json!({"status": "snoozed", "snoozed_until": "2099-01-01T09:00:00Z", "labels": ["vip"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post("/api/v1/teams", &admin, json!({"name": "Billing"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post(
            "/api/v1/webhooks",
            &admin,
            json!({"url": "https://example.com/hook", "events": ["contact.deleted"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post(
            &format!("/api/v1/contacts/{b}/merge"),
            &admin,
            json!({"into": a}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let contacts = vec![a.clone(), c.clone()];
    let data = app.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("export.tar.gz");
    let d = data.path().to_str().unwrap();
    let (code, err) = run(
        &["export", "--out", archive.to_str().unwrap(), "--data", d],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    // One record per line, each with its kind; no derived tree.
    let lines = {
        use std::io::Read;
        let f = std::fs::File::open(&archive).unwrap();
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut names = Vec::new();
        let mut lines = String::new();
        for e in t.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            if p == "records.jsonl" {
                e.read_to_string(&mut lines).unwrap();
            }
            names.push(p);
        }
        assert_eq!(names.first().map(String::as_str), Some("format"));
        assert!(
            names.contains(&format!("files/{}", photo["id"].as_str().unwrap())),
            "{names:?}"
        );
        lines
    };
    let kinds: std::collections::BTreeSet<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for k in [
        "agent",
        "inbox",
        "contact",
        "conversation",
        "message",
        "event",
        "team",
        "webhook",
        "setting",
    ] {
        assert!(kinds.contains(k), "{k} in {kinds:?}");
    }
    assert!(
        !kinds.contains("inboxstatusactivity_conversationid"),
        "{kinds:?}"
    );
    let message_line = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["kind"] == "message" && v["record"]["body"] == "on its way")
        .expect("the reply as a record");
    assert_eq!(message_line["record"]["private"], false);

    // Into a new folder; an occupied one is refused.
    let target = dir.path().join("imported");
    let t = target.to_str().unwrap();
    let (code, err) = run(
        &["import", archive.to_str().unwrap(), "--data", t],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(
        &["import", archive.to_str().unwrap(), "--data", t],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not empty"), "{err}");
    let (code, err) = run(&["doctor", "--data", t], &[("RUST_LOG", "warn")], None).await;
    // The search index is built at the first start; everything else is whole.
    assert_eq!(code, 1, "{err}");

    // Both answer the same, down to the event ids.
    let mut config = test_config(&data);
    config.sse_keepalive_secs = 1;
    let source = start(data, config).await;
    let want = everything(&source, &contacts).await;
    source.stop().await;
    let imported_dir = tempfile::tempdir().unwrap();
    std::fs::remove_dir(imported_dir.path()).unwrap();
    std::fs::rename(&target, imported_dir.path()).unwrap();
    let mut config = test_config(&imported_dir);
    config.sse_keepalive_secs = 1;
    let imported = start(imported_dir, config).await;
    let got = everything(&imported, &contacts).await;
    assert_eq!(got, want);
    // Old tokens work; the attachment has its bytes; search finds it once
    // the index is built.
    let r = imported
        .get(
            &format!("/api/v1/customer/conversations/{conv}/messages"),
            &ca,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = imported
        .client
        .get(imported.url(photo["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = imported.get("/api/v1/search?q=parcel", &admin).await;
        if body(r).await["results"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never indexed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let data = imported.stop().await;
    let (code, out) = run(
        &["doctor", "--data", data.path().to_str().unwrap()],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}");
}
