//! Backups and restores (issue 16, points 1 to 3): `natter backup` of a
//! running server under concurrent writes and of a stopped folder,
//! `natter restore` checking every checksum first, the admin API and the
//! schedule with its retention.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cli::{run, serve};
use crate::helpers::{
    assert_error, body, spawn_app, spawn_app_with, start, test_config, TestApp, PNG,
};
use crate::migration::replay;

/// What one writer got 201 for: (message id, body), and whether the 201
/// came before the backup began.
type Acked = Vec<(String, String, bool)>;

/// Posts messages into `conv` until `stop`, as the contact (`agent` false)
/// or as the admin, and records every 201.
async fn writer(
    client: reqwest::Client,
    url: String,
    token: String,
    tag: String,
    started: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Acked {
    let mut acked = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        let text = format!("{tag} {n}");
        let r = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({"body": text}))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::CREATED);
        // Read once the 201 is here: the write was durable by then, so if
        // the backup had not been started yet it must be in it (one sent
        // earlier but answered later may or may not be).
        let before = !started.load(Ordering::Acquire);
        let m: Value = r.json().await.expect("json");
        acked.push((m["id"].as_str().expect("id").to_owned(), text, before));
    }
    acked
}

/// Every message of a conversation as the admin sees it: id to body.
async fn thread(app: &TestApp, token: &str, conv: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut after = 0;
    loop {
        let r = app
            .get(
                &format!("/api/v1/conversations/{conv}/messages?after={after}&limit=500"),
                token,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let msgs = body(r).await["messages"]
            .as_array()
            .expect("messages")
            .clone();
        let Some(last) = msgs.last() else {
            return out;
        };
        after = last["seq"].as_u64().expect("seq");
        for m in &msgs {
            out.insert(
                m["id"].as_str().unwrap().to_owned(),
                m["body"].as_str().unwrap_or_default().to_owned(),
            );
        }
    }
}

/// Waits (bounded) until `conv` holds at least `n` messages.
async fn until_messages(app: &TestApp, conv: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while thread(app, &app.admin_token, conv).await.len() < n {
        assert!(tokio::time::Instant::now() < deadline, "writers stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The names of an archive's entries.
fn entries(archive: &Path) -> Vec<String> {
    let f = std::fs::File::open(archive).unwrap();
    let mut t = tar::Archive::new(flate2::read::GzDecoder::new(f));
    t.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Rewrites an archive with `change` applied to each entry's bytes.
fn rewrite(from: &Path, to: &Path, change: impl Fn(&str, &mut Vec<u8>)) {
    let f = std::fs::File::open(from).unwrap();
    let mut t = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let out = std::fs::File::create(to).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        out,
        flate2::Compression::fast(),
    ));
    for e in t.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        change(&path, &mut bytes);
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o600);
        b.append_data(&mut h, &path, bytes.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[tokio::test]
async fn a_backup_of_a_running_server_under_writes_restores_every_acknowledged_message() {
    let app = spawn_app_with(|c| c.sse_keepalive_secs = 1).await;
    let admin = app.admin_token.clone();
    // Two conversations, an attachment, a contact whose token must still
    // work after the restore.
    let (_, c1) = app.contact().await;
    let (conv1, _) = app.start_conversation(&c1, "first").await;
    let (_, c2) = app.contact().await;
    let (conv2, _) = app.start_conversation(&c2, "second").await;
    let photo =
        app.contact_sends_png(&c1, &conv1, "a photo", "p.png").await["attachments"][0].clone();

    let started = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (i, (conv, token, agent)) in [
        (&conv1, &c1, false),
        (&conv1, &admin, true),
        (&conv2, &c2, false),
        (&conv2, &admin, true),
    ]
    .into_iter()
    .enumerate()
    {
        let url = if agent {
            app.url(&format!("/api/v1/conversations/{conv}/messages"))
        } else {
            app.url(&format!("/api/v1/customer/conversations/{conv}/messages"))
        };
        writers.push(tokio::spawn(writer(
            app.client.clone(),
            url,
            token.clone(),
            format!("writer {i}"),
            started.clone(),
            stop.clone(),
        )));
    }
    // Let the writers get going, so the backup overlaps them.
    until_messages(&app, &conv2, 40).await;
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("live.tar.gz");
    started.store(true, Ordering::Release);
    let data = app.data.path().to_str().unwrap().to_owned();
    let (code, err) = run(
        &[
            "backup",
            "--out",
            archive.to_str().unwrap(),
            "--data",
            &data,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    // Writes go on after the backup too; then everything stops.
    let more = thread(&app, &admin, &conv1).await.len() + 20;
    until_messages(&app, &conv1, more).await;
    stop.store(true, Ordering::Release);
    let mut acked: Acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let before = acked.iter().filter(|a| a.2).count();
    assert!(
        before > 0 && before < acked.len(),
        "the backup overlapped the writes"
    );
    let names = entries(&archive);
    assert_eq!(names.first().map(String::as_str), Some("format"));
    assert_eq!(names.last().map(String::as_str), Some("manifest.json"));
    assert!(
        names
            .iter()
            .any(|n| n == &format!("files/{}", photo["id"].as_str().unwrap())),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("index")),
        "the index is rebuilt, not copied"
    );
    app.stop().await;

    let target = tempfile::tempdir().unwrap();
    let (code, err) = run(
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data",
            target.path().to_str().unwrap(),
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let config = test_config(&target);
    let mut config = config;
    config.sse_keepalive_secs = 1;
    let restored = start(target, config).await;
    // The tokens of before still open the same doors.
    let mut got = BTreeMap::new();
    for conv in [&conv1, &conv2] {
        got.extend(thread(&restored, &admin, conv).await);
        let r = restored
            .get(
                &format!("/api/v1/customer/conversations/{conv}/messages"),
                if conv == &conv1 { &c1 } else { &c2 },
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "a contact token of before works"
        );
    }
    let acked_by_id: BTreeMap<&str, (&str, bool)> = acked
        .iter()
        .map(|(id, text, b)| (id.as_str(), (text.as_str(), *b)))
        .collect();
    // Every message acknowledged before the backup began is in it, and
    // every message in it was acknowledged, with the body it was sent with.
    for (id, (text, before)) in &acked_by_id {
        match got.get(*id) {
            Some(b) => assert_eq!(b, text),
            None => assert!(
                !before,
                "message {id} ({text}) got 201 before the backup began but is not in it"
            ),
        }
    }
    let written: BTreeSet<&str> = acked_by_id.keys().copied().collect();
    let extra: Vec<&String> = got
        .keys()
        .filter(|id| !written.contains(id.as_str()))
        .collect();
    // The three written before the writers started.
    assert_eq!(extra.len(), 3, "{extra:?}");
    // Writes are whole: the event log is gapless, and its message events
    // are exactly the messages restored.
    let events = replay(&restored, "/api/v1/events", &admin, "0").await;
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "gapless");
    let created: BTreeSet<String> = events
        .iter()
        .filter(|e| e["event"] == "message.created")
        .map(|e| e["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(created, got.keys().cloned().collect::<BTreeSet<_>>());
    // The attachment came back with its bytes.
    let r = restored
        .client
        .get(restored.url(photo["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
    // The search index was rebuilt from the log.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = restored.get("/api/v1/search?q=photo", &admin).await;
        assert_eq!(r.status(), StatusCode::OK);
        if body(r).await["results"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restored index never found the photo message"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    restored.stop().await;
}

#[tokio::test]
async fn restore_checks_every_checksum_and_refuses_newer_formats_and_occupied_folders() {
    // A stopped folder, backed up directly.
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "keep me").await;
    let admin = app.admin_token.clone();
    let data = app.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.tar.gz");
    let d = data.path().to_str().unwrap();
    let (code, err) = run(
        &["backup", "--out", good.to_str().unwrap(), "--data", d],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");

    // One byte changed in the conversations: refused, nothing written.
    let tampered = dir.path().join("tampered.tar.gz");
    rewrite(&good, &tampered, |path, bytes| {
        if path == "store/conversationseq_message.kv" {
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
        }
    });
    let target = dir.path().join("restored");
    let t = target.to_str().unwrap();
    let (code, err) = run(
        &["restore", tampered.to_str().unwrap(), "--data", t],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("store/conversationseq_message.kv does not match its checksum"),
        "{err}"
    );
    assert!(
        !target.exists(),
        "nothing is touched before every checksum holds"
    );
    // Cut short: the manifest is missing.
    let cut = dir.path().join("cut.tar.gz");
    {
        let f = std::fs::File::open(&good).unwrap();
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let out = std::fs::File::create(&cut).unwrap();
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            out,
            flate2::Compression::fast(),
        ));
        for e in t.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            if path == "manifest.json" {
                continue;
            }
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            b.append_data(&mut h, &path, bytes.as_slice()).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }
    let (code, err) = run(&["restore", cut.to_str().unwrap(), "--data", t], &[], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no manifest"), "{err}");
    // Not an archive at all.
    let junk = dir.path().join("junk.tar.gz");
    std::fs::write(&junk, b"hello").unwrap();
    let (code, err) = run(&["restore", junk.to_str().unwrap(), "--data", t], &[], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot be restored"), "{err}");
    // A newer format: one clear line, exit 2.
    let newer = dir.path().join("newer.tar.gz");
    rewrite(&good, &newer, |path, bytes| {
        if path == "format" {
            *bytes = b"natter-backup 99\n".to_vec();
        }
    });
    let (code, err) = run(
        &["restore", newer.to_str().unwrap(), "--data", t],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("backup format 99"), "{err}");
    assert!(!target.exists());

    // A backup of a newer schema: nothing is touched.
    let newer_schema = dir.path().join("newer-schema.tar.gz");
    rewrite(&good, &newer_schema, |path, bytes| {
        if path == "manifest.json" {
            let mut m: Value = serde_json::from_slice(bytes).unwrap();
            m["schema_version"] = json!(99);
            *bytes = serde_json::to_vec(&m).unwrap();
        }
    });
    let (code, err) = run(
        &["restore", newer_schema.to_str().unwrap(), "--data", t],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("schema version 99"), "{err}");
    assert!(!target.exists());
    // --force replaces a natter folder, never some other folder.
    let other = dir.path().join("photos");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("cat.jpg"), b"meow").unwrap();
    let o = other.to_str().unwrap();
    let (code, err) = run(
        &["restore", good.to_str().unwrap(), "--data", o, "--force"],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("does not look like a natter data folder"),
        "{err}"
    );
    assert_eq!(std::fs::read(other.join("cat.jpg")).unwrap(), b"meow");

    // The good one restores; a second time into the same folder is refused
    // without --force and replaces it with it.
    let (code, err) = run(&["restore", good.to_str().unwrap(), "--data", t], &[], None).await;
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(&["restore", good.to_str().unwrap(), "--data", t], &[], None).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    let (code, err) = run(
        &["restore", good.to_str().unwrap(), "--data", t, "--force"],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let left: Vec<String> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!left.iter().any(|n| n.starts_with(".natter-")), "{left:?}");
    // A folder a server runs on is never replaced.
    let s = serve(&target, &[]).await;
    let (code, err) = run(
        &["restore", good.to_str().unwrap(), "--data", t, "--force"],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("in use"), "{err}");
    // ... and the restored server answers with the old token.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/conversations/{conv}/messages", s.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let msgs: Value = r.json().await.unwrap();
    assert_eq!(msgs["messages"][0]["body"], "keep me");
    s.stop().await;
}

#[tokio::test]
async fn admins_list_create_download_and_delete_backups() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    let (_, member) = app.member_agent("m@example.com").await;
    let r = app.get("/api/v1/admin/backups", &admin).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await, json!({"backups": []}));
    let r = app.post("/api/v1/admin/backups", &admin, json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b = body(r).await;
    let name = b["name"].as_str().unwrap().to_owned();
    assert!(
        name.starts_with("natter-") && name.ends_with(".tar.gz"),
        "{b}"
    );
    assert_eq!(b["scheduled"], false);
    assert_eq!(b["download_url"], format!("/api/v1/admin/backups/{name}"));
    assert!(b["bytes"].as_u64().unwrap() > 0);
    assert!(app.data.path().join("backups").join(&name).is_file());
    let r = app.get("/api/v1/admin/backups", &admin).await;
    assert_eq!(body(r).await["backups"][0]["name"], name.as_str());

    // The download is the archive, and it restores.
    let r = app
        .get(&format!("/api/v1/admin/backups/{name}"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/gzip");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&name));
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, b["bytes"].as_u64().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.tar.gz");
    std::fs::write(&copy, &bytes).unwrap();
    let target = dir.path().join("restored");
    let (code, err) = run(
        &[
            "restore",
            copy.to_str().unwrap(),
            "--data",
            target.to_str().unwrap(),
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");

    // Agents who are not admins see none of it; names outside the folder
    // are 404.
    for r in [
        app.get("/api/v1/admin/backups", &member).await,
        app.post("/api/v1/admin/backups", &member, json!({})).await,
        app.get(&format!("/api/v1/admin/backups/{name}"), &member)
            .await,
    ] {
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    for bad in ["..%2Fnatter.lock", "nope.tar.gz", "natter.lock"] {
        let r = app
            .get(&format!("/api/v1/admin/backups/{bad}"), &admin)
            .await;
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/admin/backups/{name}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.get("/api/v1/admin/backups", &admin).await;
    assert_eq!(body(r).await, json!({"backups": []}));
}

#[tokio::test]
async fn scheduled_backups_are_written_on_time_and_only_the_newest_are_kept() {
    let clock = natter::service::notify::Clock::manual();
    let c = clock.clone();
    let app = spawn_app_with(move |cfg| {
        cfg.clock = c;
        cfg.backup_every = Some(Duration::from_secs(3600));
        cfg.backup_keep = 2;
    })
    .await;
    let admin = app.admin_token.clone();
    // A backup made by hand is never pruned.
    let r = app.post("/api/v1/admin/backups", &admin, json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let manual = body(r).await["name"].as_str().unwrap().to_owned();
    let scheduled = |v: &Value| -> Vec<String> {
        v["backups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["scheduled"] == true)
            .map(|b| b["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // Nothing before the first period has passed.
    clock.advance(Duration::from_secs(3000)).await;
    let r = app.get("/api/v1/admin/backups", &admin).await;
    assert!(scheduled(&body(r).await).is_empty());
    let mut seen: Vec<Vec<String>> = Vec::new();
    for round in 1..=3usize {
        clock.advance(Duration::from_secs(3600)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = app.get("/api/v1/admin/backups", &admin).await;
            let list = scheduled(&body(r).await);
            let distinct_new = list
                .iter()
                .filter(|n| !seen.iter().flatten().any(|s| s == *n))
                .count();
            if distinct_new == 1 {
                assert_eq!(list.len(), round.min(2), "keep 2: {list:?}");
                seen.push(list);
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no scheduled backup in round {round}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The oldest scheduled one is gone; the manual one stays.
    let first = &seen[0][0];
    let r = app.get("/api/v1/admin/backups", &admin).await;
    let all = body(r).await;
    let names: Vec<&str> = all["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&first.as_str()), "{names:?}");
    assert!(names.contains(&manual.as_str()), "{names:?}");
    assert!(names
        .iter()
        .all(|n| n.ends_with("-scheduled.tar.gz") || *n == manual));
}

#[tokio::test]
async fn a_migration_writes_a_backup_of_the_older_folder_beside_it_first() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    crate::migration::copy_dir(
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/schema2/data"
        )),
        &data,
    );
    let s = serve(&data, &[]).await;
    // Each step says what it does and how long it took, after the backup.
    let log = s.log.join("\n");
    let backed_up = log
        .find("backing up the data folder before migrating it")
        .expect(&log);
    let step = log.find("migrating the data folder").expect(&log);
    assert!(backed_up < step, "{log}");
    // Steps 2 -> 3, 3 -> 4 and 4 -> 5 (the fixture is schema 2).
    assert_eq!(log.matches("migration step done").count(), 3, "{log}");
    s.stop().await;
    let beside: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("data.schema-2-before-"))
        .collect();
    assert_eq!(beside.len(), 1, "{beside:?}");
    let archive = parent.path().join(&beside[0]);
    // It holds the folder as it was: schema 2, and restored it migrates
    // again (the migration tests check what it then answers).
    let f = std::fs::File::open(&archive).unwrap();
    let mut t = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let manifest: Value = t
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy() == "manifest.json")
        .map(|mut e| {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            serde_json::from_str(&s).unwrap()
        })
        .unwrap();
    assert_eq!(manifest["schema_version"], 2);
    assert!(manifest["counts"]["messages"].as_u64().unwrap() > 0);
    let again = parent.path().join("again");
    let (code, err) = run(
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data",
            again.to_str().unwrap(),
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    serve(&again, &[]).await.stop().await;
    // A folder already at today's schema is not backed up again.
    serve(&data, &[]).await.stop().await;
    let count = std::fs::read_dir(parent.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("data.schema-")
        })
        .count();
    assert_eq!(count, 1);
}
