//! `natter doctor` (issue 16, point 4): a healthy folder is healthy, every
//! kind of damage to derived data is found and `--repair` rebuilds it from
//! the records without touching them, and a missing attachment is reported
//! (no repair can make its bytes).

use std::path::Path;

use reqwest::StatusCode;
use serde_json::json;

use crate::cli::run;
use crate::helpers::{spawn_app, PNG};

/// `natter doctor`: (exit code, stdout and stderr together).
async fn doctor(data: &Path, repair: bool) -> (i32, String) {
    let d = data.to_str().unwrap();
    let mut args = vec!["doctor", "--data", d];
    if repair {
        args.push("--repair");
    }
    let out = tokio::process::Command::new(crate::cli::BIN)
        .args(&args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Every key and value of a tree of a stopped folder.
fn tree(data: &Path, name: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = sled::Config::new().path(data.join("db")).open().unwrap();
    let t = db.open_tree(name).unwrap();
    t.iter()
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

#[tokio::test]
async fn doctor_finds_damaged_derived_data_repairs_it_and_reports_missing_files() {
    // A folder that has seen a bit of everything derived data follows.
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    let (a, ca) = app
        .contact_in(
            &app.widget_key.clone(),
            json!({"name": "Ana", "email": "Ana@Example.com"}),
        )
        .await;
    let (b, _) = app
        .contact_in(
            &app.widget_key.clone(),
            json!({"name": "Ben", "email": "ben@example.com"}),
        )
        .await;
    let (conv, _) = app.start_conversation(&ca, "where is my parcel?").await;
    app.agent_says(&admin, &conv, "internal: check the courier", true)
        .await;
    app.agent_says(&admin, &conv, "on its way", false).await;
    let file_id = app.contact_sends_png(&ca, &conv, "receipt", "r.png").await["attachments"][0]
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, cb) = app.contact().await;
    let (conv2, _) = app.start_conversation(&cb, "hello").await;
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv2}"),
            &admin,
            json!({"status": "snoozed", "snoozed_until": "2099-01-01T09:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            &admin,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post("/api/v1/teams", &admin, json!({"name": "Billing"}))
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
    let data = app.stop().await;
    let d = data.path();

    let (code, out) = doctor(d, false).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("healthy") && out.contains("1 attachments"),
        "{out}"
    );

    // Damage: an inbox list entry gone, a counter wrong, an index entry
    // for nothing, an attachment gone, the search index gone.
    let records_before = tree(d, "conversationid_conversation");
    let messages_before = tree(d, "conversationseq_message");
    {
        let db = sled::Config::new().path(d.join("db")).open().unwrap();
        let listed = db.open_tree("inboxstatusactivity_conversationid").unwrap();
        let first = listed.first().unwrap().unwrap().0;
        listed.remove(first).unwrap();
        let counts = db.open_tree("inboxstatusassignee_count").unwrap();
        let (k, _) = counts.first().unwrap().unwrap();
        counts.insert(k, &7u64.to_be_bytes()).unwrap();
        db.open_tree("widgetkey_inboxid").unwrap().clear().unwrap();
        // A token no longer found by its owner: "sign out everywhere"
        // would miss it.
        let by_owner = db.open_tree("agentid_tokenhash").unwrap();
        let k = by_owner.first().unwrap().unwrap().0;
        by_owner.remove(k).unwrap();
        db.open_tree("contactid_conversationid")
            .unwrap()
            .insert([0xee; 16], &[])
            .unwrap();
        db.flush().unwrap();
    }
    std::fs::remove_file(d.join("files").join(&file_id)).unwrap();
    std::fs::remove_dir_all(d.join("index")).unwrap();

    let (code, out) = doctor(d, false).await;
    assert_eq!(code, 1, "{out}");
    for want in [
        "problem: inboxstatusactivity_conversationid disagrees with the conversations: 1 entries 1 missing (--repair rebuilds it)",
        "problem: inboxstatusassignee_count disagrees with the conversations: 1 entries 1 wrong",
        "problem: contactid_conversationid disagrees with the conversations: 1 entries 1 not in the records",
        &format!("problem: attachment {file_id} (\"r.png\""),
        "is missing from",
        "(not repairable: restore it from a backup)",
        "problem: the search index covers the event log up to event 0 of",
        "problem: widgetkey_inboxid disagrees with the inboxes: 1 entries 1 missing",
        "problem: agentid_tokenhash disagrees with the agents' tokens: 1 entries 1 missing",
        "error: 7 problems found",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }

    let (code, out) = doctor(d, true).await;
    assert_eq!(code, 1, "{out}");
    for want in [
        "repaired: rebuilt inboxstatusactivity_conversationid from the records",
        "repaired: rebuilt inboxstatusassignee_count from the records",
        "repaired: rebuilt contactid_conversationid from the records",
        "repaired: rebuilt widgetkey_inboxid from the records",
        "repaired: rebuilt agentid_tokenhash from the records",
        "repaired: rebuilt the search index from the messages",
        &format!("still a problem: attachment {file_id}"),
        "error: 1 problem left after the repair",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    assert!(
        !out.contains("rebuilt conversationordinal_seq"),
        "only what was damaged: {out}"
    );
    // Records are never touched.
    assert_eq!(tree(d, "conversationid_conversation"), records_before);
    assert_eq!(tree(d, "conversationseq_message"), messages_before);

    // The file comes back (from a backup, say): healthy again.
    std::fs::write(d.join("files").join(&file_id), PNG).unwrap();
    let (code, out) = doctor(d, false).await;
    assert_eq!(code, 0, "{out}");
    // A file of the wrong size is found too.
    std::fs::write(d.join("files").join(&file_id), b"short").unwrap();
    let (code, out) = doctor(d, false).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("is 5 bytes on disk, {} recorded", PNG.len())),
        "{out}"
    );
    // A folder a server runs on is refused.
    std::fs::write(d.join("files").join(&file_id), PNG).unwrap();
    let s = crate::cli::serve(d, &[]).await;
    let (code, err) = run(&["doctor", "--data", d.to_str().unwrap()], &[], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("in use by a running natter server"), "{err}");
    s.stop().await;
}

/// The schema-2 fixture, migrated at start, is healthy by doctor's
/// reckoning: the migrations derive exactly what the writes of today do.
#[tokio::test]
async fn a_migrated_folder_is_healthy() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    crate::migration::copy_dir(
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/schema2/data"
        )),
        &data,
    );
    // Doctor looks and does not upgrade: an older folder is refused.
    let (code, out) = doctor(&data, false).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("holds schema 2, older than"), "{out}");
    crate::cli::serve(&data, &[]).await.stop().await;
    let (code, out) = doctor(&data, false).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("healthy"), "{out}");
}
