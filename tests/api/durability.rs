//! Nothing acknowledged is ever lost, and seq stays gapless.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cli::serve;
use crate::helpers::{body, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_posts_get_seq_one_to_two_hundred() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "m0").await;
    let mut tasks = Vec::new();
    for i in 0..199 {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/conversations/{conv}/messages"));
        let token = app.admin_token.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"body": format!("m{}", i + 1)}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.unwrap()["seq"].as_u64().unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.push(1);
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    let stored = app
        .agent_messages(&app.admin_token, &conv, "?limit=500")
        .await;
    assert_eq!(
        stored
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>()
    );
}

/// Posts from several clients until `stop_after` acknowledgements, then
/// SIGKILLs the server while the posts are still going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_a_burst_loses_no_acknowledged_message() {
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("NATTER_ADMIN_EMAIL", "a@example.com"),
        ("NATTER_ADMIN_PASSWORD", "a-password"),
        ("NATTER_CONTACTS_PER_MINUTE", "0"),
        ("NATTER_CONTACT_MESSAGES_PER_MINUTE", "0"),
    ];
    let mut server = serve(data.path(), &env).await;
    let client = crate::helpers::new_client();
    let base = server.base.clone();
    let token = admin_token(&client, &base).await;
    let key = widget_key(&client, &base, &token).await;
    let contact: Value = client
        .post(format!("{base}/api/v1/widget/{key}/contacts"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ctoken = contact["token"].as_str().unwrap().to_owned();
    let started: Value = client
        .post(format!("{base}/api/v1/customer/conversations"))
        .bearer_auth(&ctoken)
        .json(&json!({"body": "start"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conv = started["conversation"]["id"].as_str().unwrap().to_owned();

    // body -> seq of every acknowledged message.
    let acked: Arc<Mutex<BTreeMap<String, u64>>> = Arc::new(Mutex::new(BTreeMap::new()));
    acked.lock().unwrap().insert("start".into(), 1);
    let (enough_tx, mut enough_rx) = tokio::sync::watch::channel(false);
    let mut writers = Vec::new();
    for w in 0..8 {
        let (client, base, conv, acked, enough_tx) = (
            client.clone(),
            base.clone(),
            conv.clone(),
            acked.clone(),
            enough_tx.clone(),
        );
        let (path, tok) = if w % 2 == 0 {
            (
                format!("{base}/api/v1/conversations/{conv}/messages"),
                token.clone(),
            )
        } else {
            (
                format!("{base}/api/v1/customer/conversations/{conv}/messages"),
                ctoken.clone(),
            )
        };
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let text = format!("w{w}-{i}");
                match client
                    .post(&path)
                    .bearer_auth(&tok)
                    .json(&json!({"body": text}))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let Ok(v) = r.json::<Value>().await else {
                            break;
                        };
                        let mut a = acked.lock().unwrap();
                        a.insert(text, v["seq"].as_u64().unwrap());
                        if a.len() >= 400 {
                            let _ = enough_tx.send(true);
                        }
                    }
                    _ => break, // the server is gone
                }
            }
        }));
    }
    enough_rx.wait_for(|v| *v).await.unwrap();
    server.child.start_kill().unwrap(); // SIGKILL
    server.child.wait().await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 400);

    let restarted = serve(data.path(), &[]).await;
    let msgs: Value = client
        .get(format!(
            "{}/api/v1/conversations/{conv}/messages?limit=100000",
            restarted.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let msgs = msgs["messages"].as_array().unwrap();
    let stored: BTreeMap<String, u64> = msgs
        .iter()
        .map(|m| {
            (
                m["body"].as_str().unwrap().to_owned(),
                m["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    for (text, seq) in &acked {
        assert_eq!(
            stored.get(text),
            Some(seq),
            "acknowledged message {text} lost or moved"
        );
    }
    let seqs: Vec<u64> = msgs.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seq is gapless after restart"
    );
    // The conversation record agrees with its messages.
    let c: Value = client
        .get(format!("{}/api/v1/conversations/{conv}", restarted.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["last_seq"].as_u64(), seqs.last().copied());
    // The acknowledged messages are searchable after the restart, even
    // those the index had not committed when the process died.
    let mut newest: Vec<(&String, &u64)> = acked.iter().collect();
    newest.sort_by_key(|(_, seq)| std::cmp::Reverse(**seq));
    for (text, _) in newest.iter().take(5) {
        let r: Value = client
            .get(format!("{}/api/v1/search", restarted.base))
            .bearer_auth(&token)
            .query(&[("q", format!("\"{text}\""))])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found: Vec<&str> = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["snippet"].as_str())
            .collect();
        assert!(
            found.iter().any(|s| s.contains(text.as_str())),
            "{text} not searchable after restart: {r}"
        );
    }
    // New messages continue the sequence.
    let r = client
        .post(format!(
            "{}/api/v1/conversations/{conv}/messages",
            restarted.base
        ))
        .bearer_auth(&token)
        .json(&json!({"body": "after"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(body(r).await["seq"].as_u64(), Some(seqs.len() as u64 + 1));
}

/// One round: start on `data`, write from several clients, SIGKILL while
/// they write, restart and check every acknowledged message and the seqs.
async fn crash_round(data: &std::path::Path, round: usize) {
    let env = [
        ("NATTER_ADMIN_EMAIL", "a@example.com"),
        ("NATTER_ADMIN_PASSWORD", "a-password"),
        ("NATTER_CONTACTS_PER_MINUTE", "0"),
        ("NATTER_CONTACT_MESSAGES_PER_MINUTE", "0"),
        ("NATTER_SEARCHES_PER_MINUTE", "0"),
    ];
    let mut server = serve(data, &env).await;
    let client = crate::helpers::new_client();
    let base = server.base.clone();
    let token = admin_token(&client, &base).await;
    let key = widget_key(&client, &base, &token).await;
    let acked: Arc<Mutex<Vec<(String, String, u64)>>> = Arc::default();
    let (enough_tx, mut enough_rx) = tokio::sync::watch::channel(false);
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, base, key, acked, enough_tx) = (
            client.clone(),
            base.clone(),
            key.clone(),
            acked.clone(),
            enough_tx.clone(),
        );
        writers.push(tokio::spawn(async move {
            let Ok(r) = client
                .post(format!("{base}/api/v1/widget/{key}/contacts"))
                .json(&json!({}))
                .send()
                .await
            else {
                return;
            };
            let Ok(c) = r.json::<Value>().await else {
                return;
            };
            let ctoken = c["token"].as_str().unwrap_or_default().to_owned();
            let mut conv: Option<String> = None;
            for i in 0.. {
                let text = format!("r{round}w{w}m{i}");
                let req = match &conv {
                    None => client.post(format!("{base}/api/v1/customer/conversations")),
                    Some(id) => client.post(format!(
                        "{base}/api/v1/customer/conversations/{id}/messages"
                    )),
                };
                match req
                    .bearer_auth(&ctoken)
                    .json(&json!({"body": text}))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let Ok(v) = r.json::<Value>().await else {
                            break;
                        };
                        let (id, seq) = match &conv {
                            None => {
                                let id = v["conversation"]["id"].as_str().unwrap().to_owned();
                                conv = Some(id.clone());
                                (id, 1)
                            }
                            Some(id) => (id.clone(), v["seq"].as_u64().unwrap()),
                        };
                        let mut a = acked.lock().unwrap();
                        a.push((id, text, seq));
                        if a.len() >= 60 {
                            let _ = enough_tx.send(true);
                        }
                    }
                    _ => break,
                }
            }
        }));
    }
    enough_rx.wait_for(|v| *v).await.unwrap();
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let restarted = serve(data, &[]).await;
    let mut by_conv: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for (conv, _, _) in &acked {
        if !by_conv.contains_key(conv) {
            let v: Value = client
                .get(format!(
                    "{}/api/v1/conversations/{conv}/messages?limit=100000",
                    restarted.base
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            by_conv.insert(conv.clone(), v["messages"].as_array().unwrap().clone());
        }
    }
    for (conv, text, seq) in &acked {
        let msgs = &by_conv[conv];
        assert!(
            msgs.iter()
                .any(|m| m["body"] == text.as_str() && m["seq"] == *seq),
            "round {round}: acknowledged {text} lost"
        );
    }
    for (conv, msgs) in &by_conv {
        let seqs: Vec<u64> = msgs.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "round {round}: gap in {conv}"
        );
        // Nothing half there: every stored message is whole.
        assert!(msgs
            .iter()
            .all(|m| m["body"].as_str().is_some_and(|b| b.starts_with('r'))));
    }
    // The index agrees: the newest acknowledged message is searchable.
    if let Some((_, text, _)) = acked.last() {
        let r: Value = client
            .get(format!("{}/api/v1/search", restarted.base))
            .bearer_auth(&token)
            .query(&[("q", text.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            r["results"].as_array().is_some_and(|h| !h.is_empty()),
            "round {round}: {text} not searchable"
        );
    }
    let mut restarted = restarted;
    restarted.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_crashes_during_concurrent_writes_lose_nothing_acknowledged() {
    let data = tempfile::tempdir().unwrap();
    for round in 0..20 {
        crash_round(data.path(), round).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_streams_do_not_stop_the_api() {
    use tokio::io::AsyncWriteExt;
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("NATTER_ADMIN_EMAIL", "a@example.com"),
        ("NATTER_ADMIN_PASSWORD", "a-password"),
        ("NATTER_STREAMS_PER_USER", "20000"),
        ("NATTER_CONNECTIONS_PER_ADDRESS", "0"),
    ];
    let server = serve(data.path(), &env).await;
    let client = crate::helpers::new_client();
    let base = server.base.clone();
    let token = admin_token(&client, &base).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let request = format!("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n");
    let mut streams = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        s.write_all(request.as_bytes()).await.unwrap();
        streams.push(s);
    }
    // Wait (bounded) until the server holds them all open.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let m = client
            .get(format!("{base}/metrics"))
            .bearer_auth(crate::helpers::METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let open: u64 = m
            .lines()
            .find_map(|l| l.strip_prefix("natter_sse_connections "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if open >= 10_000 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {open} streams open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The API still answers, reads and writes.
    let me = client
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let key: Value = client
        .get(format!("{base}/api/v1/inboxes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["inboxes"][0]["widget_key"].as_str().unwrap().to_owned();
    let c: Value = client
        .post(format!("{base}/api/v1/widget/{key}/contacts"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = client
        .post(format!("{base}/api/v1/customer/conversations"))
        .bearer_auth(c["token"].as_str().unwrap())
        .json(&json!({"body": "still fast"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    drop(streams);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_507_and_recovers_when_space_returns() {
    let Some(disk) = crate::helpers::SmallDisk::mount(8) else {
        return;
    };
    let mount = disk.path.clone();
    let filler = mount.join("filler");
    std::fs::write(&filler, vec![0u8; 3 << 20]).unwrap();
    let data = mount.join("data");
    let env = [
        ("NATTER_ADMIN_EMAIL", "a@example.com"),
        ("NATTER_ADMIN_PASSWORD", "a-password"),
        ("NATTER_CONTACT_MESSAGES_PER_MINUTE", "0"),
        ("NATTER_MIN_FREE_MB", "2"),
    ];
    let mut server = serve(&data, &env).await;
    let client = crate::helpers::new_client();
    let base = server.base.clone();
    let token = admin_token(&client, &base).await;
    let key = widget_key(&client, &base, &token).await;
    let c: Value = client
        .post(format!("{base}/api/v1/widget/{key}/contacts"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ctoken = c["token"].as_str().unwrap().to_owned();
    let started: Value = client
        .post(format!("{base}/api/v1/customer/conversations"))
        .bearer_auth(&ctoken)
        .json(&json!({"body": "start"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conv = started["conversation"]["id"].as_str().unwrap().to_owned();
    let post = |text: String| {
        let (client, base, conv, ctoken) =
            (client.clone(), base.clone(), conv.clone(), ctoken.clone());
        async move {
            let r = client
                .post(format!(
                    "{base}/api/v1/customer/conversations/{conv}/messages"
                ))
                .bearer_auth(&ctoken)
                .json(&json!({"body": text}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.ok())
        }
    };
    // Fill the disk until writes are refused.
    let mut acked = vec!["start".to_owned()];
    let mut refused = None;
    for n in 0..2000 {
        let text = format!("{}{n}", "x".repeat(9000));
        let (status, body) = post(text.clone()).await;
        if status == StatusCode::CREATED {
            acked.push(text);
        } else {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("the disk filled up");
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body:?}");
    assert_eq!(body.unwrap()["error"]["code"], "insufficient_storage");
    // Reads go on.
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let msgs: Value = client
        .get(format!(
            "{base}/api/v1/conversations/{conv}/messages?limit=5000"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(msgs["messages"].as_array().unwrap().len(), acked.len());
    // Space returns: writes work again, within a bound.
    std::fs::remove_file(&filler).unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, _) = post("after space returned".into()).await;
        if status == StatusCode::CREATED {
            break;
        }
        assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes never resumed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    acked.push("after space returned".into());
    // Nothing is corrupt: after a restart every acknowledged message is
    // there, in order, with no gaps.
    server.child.kill().await.unwrap();
    let restarted = serve(&data, &[("NATTER_MIN_FREE_MB", "2")]).await;
    let msgs: Value = client
        .get(format!(
            "{}/api/v1/conversations/{conv}/messages?limit=5000",
            restarted.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bodies: Vec<&str> = msgs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, acked.iter().map(String::as_str).collect::<Vec<_>>());
    let mut restarted = restarted;
    restarted.child.kill().await.unwrap();
}

/// Signs in as the bootstrap admin of a spawned server.
async fn admin_token(client: &reqwest::Client, base: &str) -> String {
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "a@example.com", "password": "a-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["token"].as_str().unwrap().to_owned()
}

/// The widget key of the first-run "Website" inbox.
async fn widget_key(client: &reqwest::Client, base: &str, token: &str) -> String {
    let inboxes: Value = client
        .get(format!("{base}/api/v1/inboxes"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    inboxes["inboxes"][0]["widget_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The newest sled snapshot's log position in a data folder (sled names
/// each `db/snap.<LSN in hex>`), 0 when there is none.
fn newest_snapshot(data: &std::path::Path) -> u64 {
    std::fs::read_dir(data.join("db"))
        .expect("db folder")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()
        })
        .max()
        .unwrap_or(0)
}

/// A stop checkpoints the database (sled writes its snapshot only while
/// it opens, so the stop opens it once more): the next start reads a
/// snapshot that covers everything written, instead of replaying the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_leaves_a_snapshot_that_covers_what_was_written() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "first").await;
    for i in 0..50 {
        app.contact_says(&contact, &conv, &format!("message {i}"))
            .await;
    }
    let while_running = newest_snapshot(app.data.path());
    let data = app.stop().await;
    let after_stop = newest_snapshot(data.path());
    assert!(
        after_stop > while_running,
        "the stop wrote no newer snapshot ({while_running:X} -> {after_stop:X})"
    );
    let config = crate::helpers::test_config(&data);
    let again = crate::helpers::start(data, config).await;
    let messages = again
        .agent_messages(&again.admin_token, &conv, "?limit=100")
        .await;
    assert_eq!(messages.len(), 51);
    assert_eq!(newest_snapshot(again.data.path()), after_stop);
}
