//! A data folder written by an older natter upgrades itself at start
//! (issue 13). `tests/fixtures/schema2/data` is a schema-2 folder that the
//! natter of ce98221 wrote through its own HTTP API
//! (`tests/fixtures/make_schema2.py` remakes it), and `expected.json`
//! beside it is what that server answered about it. Today's server,
//! started on a copy, must tell the same facts: every conversation and
//! message, the contact's numbering without the notes (schema 4), the
//! event log, search, the tab counts (schema 5), and verified user ids
//! keyed by the identity secret that verified them (schema 3). The JSON
//! shapes changed since, so the tests compare facts, not documents.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::customers::identity_hash;
use crate::helpers::{body, page_sign_in, start, test_config, EventStream, TestApp};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schema2");
const STATUSES: [&str; 4] = ["open", "pending", "snoozed", "resolved"];

/// What the old server answered (see the module docs).
fn expected() -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURE}/expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn settings(data: &tempfile::TempDir) -> natter::config::ServeConfig {
    let mut config = test_config(data);
    // A keep-alive comment follows a stream's replay within a second, so
    // a test knows the replay is complete.
    config.sse_keepalive_secs = 1;
    config
}

/// Today's server on a fresh copy of the schema-2 folder, signed in as the
/// fixture's admin (the helpers' admin: the old server created it from the
/// same bootstrap settings).
async fn migrated() -> TestApp {
    let data = tempfile::tempdir().unwrap();
    copy_dir(Path::new(&format!("{FIXTURE}/data")), data.path());
    let config = settings(&data);
    let app = start(data, config).await;
    remove_backup_beside(app.data.path());
    app
}

/// Deletes the backup the migration wrote beside a test's folder (in the
/// system's temporary folder, which the test does not clean).
/// `backups::a_migration_writes_a_backup_of_the_older_folder_beside_it_first`
/// checks it.
pub fn remove_backup_beside(data: &Path) {
    let name = data.file_name().unwrap().to_string_lossy().into_owned();
    let parent = data.parent().unwrap();
    for e in std::fs::read_dir(parent).unwrap().flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with(&format!("{name}.schema-"))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

/// What a message is, whatever the shape around it.
fn message_facts(m: &Value) -> Value {
    let attachments: Vec<Value> = array(&m["attachments"])
        .iter()
        .map(|a| json!({"id": a["id"], "name": a["name"], "size": a["size"]}))
        .collect();
    json!({
        "id": m["id"],
        "conversation_id": m["conversation_id"],
        "seq": m["seq"],
        "author": {"type": m["author"]["type"], "id": m["author"]["id"], "name": m["author"]["name"]},
        "body": m["body"],
        "private": m["private"],
        "attachments": attachments,
        "created_at": m["created_at"],
    })
}

fn messages_facts(ms: &[Value]) -> Vec<Value> {
    ms.iter().map(message_facts).collect()
}

/// What a conversation is, as the team sees it.
fn conversation_facts(c: &Value) -> Value {
    json!({
        "id": c["id"],
        "inbox_id": c["inbox_id"],
        "contact": {"id": c["contact"]["id"], "name": c["contact"]["name"], "email": c["contact"]["email"]},
        "status": c["status"],
        "assignee_id": c["assignee_id"],
        "labels": c["labels"],
        "snoozed_until": c["snoozed_until"],
        "last_seq": c["last_seq"],
        "last_message": c["last_message"]["id"],
        "unread_count": c["unread_count"],
        "agent_last_read_seq": c["agent_last_read_seq"],
        "created_at": c["created_at"],
        "updated_at": c["updated_at"],
    })
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter().map(|c| text(&c["id"]).to_owned()).collect()
}

/// A verified user's contact token, through the widget as the website
/// would get it: (contact id, token).
async fn verified(app: &TestApp, inbox: &Value, external_id: &str) -> (String, String) {
    let r = app
        .client
        .post(app.url(&format!(
            "/api/v1/widget/{}/contacts",
            text(&inbox["widget_key"])
        )))
        .json(&json!({
            "external_id": external_id,
            "identifier_hash": identity_hash(text(&inbox["hmac_secret"]), external_id),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let b = body(r).await;
    (
        text(&b["contact_id"]).to_owned(),
        text(&b["token"]).to_owned(),
    )
}

/// Every event a stream replays after `last`: the frames before its
/// first keep-alive comment (sent only once the replay is done).
pub async fn replay(app: &TestApp, path: &str, token: &str, last: &str) -> Vec<Value> {
    let mut stream: EventStream = app.events(path, token, Some(last)).await;
    let mut out = Vec::new();
    loop {
        let f = stream
            .next_frame(Duration::from_secs(10))
            .await
            .expect("a frame within 10 s");
        if f.comment.as_deref() == Some("keep-alive") {
            return out;
        }
        if let Some(event) = &f.event {
            let id: u64 = f.id.as_deref().expect("an id").parse().expect("a number");
            out.push(json!({"id": id, "event": event, "data": f.json()}));
        }
    }
}

/// An event's id, name and what it is about.
fn event_facts(e: &Value) -> (u64, String, String) {
    let d = &e["data"];
    let about = d["id"]
        .as_str()
        .or(d["contact_id"].as_str())
        .or(d["conversation_id"].as_str())
        .unwrap_or_default();
    (
        e["id"].as_u64().expect("event id"),
        text(&e["event"]).to_owned(),
        about.to_owned(),
    )
}

/// Every hit of a search, all pages, as (conversation, message).
async fn search_all(app: &TestApp, path: &str, token: &str, q: &str) -> BTreeSet<(String, String)> {
    let mut hits = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}?q={q}&limit=5");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&url, token).await;
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let page = body(r).await;
        for h in array(&page["results"]) {
            let hit = (
                text(&h["conversation_id"]).to_owned(),
                text(&h["message_id"]).to_owned(),
            );
            assert!(hits.insert(hit), "{q}: no hit twice");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return hits,
        }
    }
}

fn old_hits(list: &Value) -> BTreeSet<(String, String)> {
    array(list)
        .iter()
        .map(|h| {
            (
                text(&h["conversation_id"]).to_owned(),
                text(&h["message_id"]).to_owned(),
            )
        })
        .collect()
}

/// The status tabs' counts on an `/inbox` page: "Open <span class="count">3</span>".
fn tab_counts(html: &str) -> BTreeMap<String, u64> {
    STATUSES
        .iter()
        .map(|s| {
            let label = format!("{}{}", s[..1].to_uppercase(), &s[1..]);
            let marker = format!("{label} <span class=\"count\">");
            let rest = html
                .split(&marker)
                .nth(1)
                .unwrap_or_else(|| panic!("no {label} tab"));
            let n = rest.split('<').next().unwrap_or_default();
            (
                (*s).to_owned(),
                n.parse().unwrap_or_else(|_| panic!("{label}: {n}")),
            )
        })
        .collect()
}

/// How many of the fixture's conversations have each status among those
/// `keep` selects.
fn count_by_status(exp: &Value, keep: impl Fn(&Value) -> bool) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = STATUSES.iter().map(|s| ((*s).to_owned(), 0)).collect();
    for c in exp["conversations"].as_object().unwrap().values() {
        if keep(c) {
            *counts.get_mut(text(&c["status"])).unwrap() += 1;
        }
    }
    counts
}

/// The contact's own view of a conversation, all of it and paged five at
/// a time by its own numbering.
async fn contact_view(app: &TestApp, token: &str, conv: &str) -> Vec<Value> {
    let all = app.customer_messages(token, conv).await;
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let r = app
            .get(
                &format!("/api/v1/customer/conversations/{conv}/messages?after={after}&limit=5"),
                token,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let page = array(&body(r).await["messages"]).clone();
        let Some(last) = page.last() else { break };
        let next = last["seq"].as_u64().unwrap();
        assert!(
            next > after,
            "{conv}: each page moves on ({next} after {after})"
        );
        after = next;
        paged.extend(page);
    }
    assert_eq!(paged, all, "{conv}: pages by ordinal give the whole view");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_conversation_and_message_of_a_schema_2_folder_is_there_after_migration() {
    let exp = expected();
    let app = migrated().await;
    let admin = app.admin_token.clone();
    for (key, old) in exp["conversations"].as_object().unwrap() {
        let id = text(&old["id"]);
        let now = app.conversation(&admin, id).await;
        assert_eq!(conversation_facts(&now), conversation_facts(old), "{key}");
        let now = app.agent_messages(&admin, id, "?limit=500").await;
        let old = array(&exp["agent_messages"][key]);
        assert_eq!(messages_facts(&now), messages_facts(old), "{key}");
        // Paged ten at a time from the start: the same messages.
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = app
                .agent_messages(&admin, id, &format!("?after={after}&limit=10"))
                .await;
            let Some(last) = page.last() else { break };
            let next = last["seq"].as_u64().unwrap();
            assert!(next > after, "{key}: each page moves on");
            after = next;
            paged.extend(page);
        }
        assert_eq!(messages_facts(&paged), messages_facts(old), "{key} paged");
    }
    for status in STATUSES.iter().chain(&["all"]) {
        let r = app
            .get(&format!("/api/v1/conversations?status={status}"), &admin)
            .await;
        let now = array(&body(r).await["conversations"]).clone();
        assert_eq!(ids(&now), ids(array(&exp["lists"][status])), "{status}");
    }
    // The conversation erased with its contact stays erased.
    let erased = text(&exp["erased_conversation"]);
    let r = app
        .get(&format!("/api/v1/conversations/{erased}"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Attachments are still served.
    let m = &exp["agent_messages"]["resolved"][2];
    let file = &m["attachments"][0];
    let r = app.get(text(&file["url"]), &admin).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.bytes().await.unwrap().len() as u64,
        file["size"].as_u64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_sees_its_migrated_public_messages_numbered_without_gaps() {
    let exp = expected();
    let app = migrated().await;
    let inboxes = &exp["inboxes"];
    for (who, inbox, user) in [
        ("ulla", "website", "user-100"),
        ("uwe", "website", "user-200"),
        ("vera", "shop", "user-400"),
    ] {
        let (contact, token) = verified(&app, &inboxes[inbox], user).await;
        assert_eq!(contact, text(&exp["contacts"][who]["contact_id"]), "{who}");
        let mine: Vec<(&String, &Value)> = exp["conversations"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, c)| text(&c["contact"]["id"]) == contact)
            .collect();
        assert!(!mine.is_empty(), "{who} has conversations");
        for (key, old) in mine {
            let id = text(&old["id"]);
            let now = contact_view(&app, &token, id).await;
            let before = array(&exp["contact_messages"][key.as_str()]);
            assert!(
                before.len() < array(&exp["agent_messages"][key.as_str()]).len(),
                "{key}: the fixture has notes between public messages"
            );
            // The same messages, numbered 1, 2, 3... (schema 2 used the
            // conversation's seq, with gaps where the notes are).
            let numbered: Vec<Value> = before
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let mut f = message_facts(m);
                    f["seq"] = json!(i + 1);
                    f
                })
                .collect();
            assert_eq!(messages_facts(&now), numbered, "{key}");
            let r = app
                .get(&format!("/api/v1/customer/conversations/{id}"), &token)
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            let c = body(r).await;
            assert_eq!(
                c["last_seq"],
                json!(before.len()),
                "{key}: last_seq is the ordinal"
            );
        }
    }
    // The next public message continues the numbering; a note takes none.
    let (_, token) = verified(&app, &inboxes["website"], "user-100").await;
    let long = text(&exp["conversation_keys"]["long"]);
    let public = array(&exp["contact_messages"]["long"]).len() as u64;
    app.agent_says(&app.admin_token, long, "a note after the migration", true)
        .await;
    let m = app
        .contact_says(&token, long, "asked after the migration")
        .await;
    assert_eq!(m["seq"], json!(public + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migrated_event_log_replays_with_the_same_ids_in_order() {
    let exp = expected();
    let app = migrated().await;
    let now = replay(&app, "/api/v1/events", &app.admin_token, "0").await;
    let old = array(&exp["events_admin"]);
    let facts = |l: &[Value]| l.iter().map(event_facts).collect::<Vec<_>>();
    assert_eq!(facts(&now), facts(old));
    // Resuming part-way gives the rest, holes (an erased contact's
    // events) and all.
    let from = old[40]["id"].as_u64().unwrap().to_string();
    let rest = replay(&app, "/api/v1/events", &app.admin_token, &from).await;
    assert_eq!(facts(&rest), facts(&old[41..]));

    // The contact's replay has the same events, its messages numbered
    // as the contact numbers them now.
    let (_, token) = verified(&app, &exp["inboxes"]["website"], "user-100").await;
    let now = replay(&app, "/api/v1/customer/events", &token, "0").await;
    let old = array(&exp["events_contact_ulla"]);
    assert_eq!(facts(&now), facts(old));
    let mut ordinal_of = BTreeMap::new();
    for view in exp["contact_messages"].as_object().unwrap().values() {
        for (i, m) in array(view).iter().enumerate() {
            ordinal_of.insert(text(&m["id"]).to_owned(), i as u64 + 1);
        }
    }
    let mut numbered = 0;
    for e in &now {
        if e["event"] == "message.created" {
            let id = text(&e["data"]["id"]);
            assert_eq!(
                e["data"]["seq"].as_u64(),
                ordinal_of.get(id).copied(),
                "{e}"
            );
            numbered += 1;
        }
    }
    assert!(numbered > 10, "the contact's replay has its messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_the_same_messages_after_migration() {
    let exp = expected();
    let app = migrated().await;
    for (q, old) in exp["search"].as_object().unwrap() {
        let now = search_all(&app, "/api/v1/search", &app.admin_token, q).await;
        assert_eq!(now, old_hits(old), "{q}");
        assert!(!now.is_empty(), "{q} finds something");
    }
    let (_, ulla) = verified(&app, &exp["inboxes"]["website"], "user-100").await;
    for (q, old) in exp["contact_search"].as_object().unwrap() {
        let now = search_all(&app, "/api/v1/customer/search", &ulla, q).await;
        assert_eq!(now, old_hits(old), "ulla: {q}");
    }
    let (_, vera) = verified(&app, &exp["inboxes"]["shop"], "user-400").await;
    let now = search_all(&app, "/api/v1/customer/search", &vera, "walrus42").await;
    assert_eq!(now, old_hits(&exp["contact_search_vera"]["walrus42"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_tabs_count_the_migrated_conversations_per_status() {
    let exp = expected();
    let app = migrated().await;
    let website = text(&exp["inboxes"]["website"]["id"]).to_owned();
    let shop = text(&exp["inboxes"]["shop"]["id"]).to_owned();
    let agent_id = |email: &str| {
        array(&exp["agents"]["agents"])
            .iter()
            .find(|a| a["email"] == email)
            .map(|a| text(&a["id"]).to_owned())
            .unwrap()
    };
    let (admin_id, ann_id) = (
        agent_id(crate::helpers::ADMIN_EMAIL),
        agent_id("ann@example.com"),
    );
    let admin = page_sign_in(
        &app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    let ann = page_sign_in(&app, "ann@example.com", text(&exp["agent_password"])).await;
    let assignee = |c: &Value| c["assignee_id"].as_str().map(str::to_owned);
    let cases: Vec<(&crate::helpers::PageSession, String, BTreeMap<String, u64>)> = vec![
        (&admin, "/inbox".into(), count_by_status(&exp, |_| true)),
        (
            &admin,
            format!("/inbox?inbox={website}"),
            count_by_status(&exp, |c| c["inbox_id"] == website.as_str()),
        ),
        (
            &admin,
            format!("/inbox?inbox={shop}"),
            count_by_status(&exp, |c| c["inbox_id"] == shop.as_str()),
        ),
        (
            &admin,
            "/inbox?view=mine".into(),
            count_by_status(&exp, |c| assignee(c) == Some(admin_id.clone())),
        ),
        (
            &admin,
            "/inbox?view=unassigned".into(),
            count_by_status(&exp, |c| c["assignee_id"].is_null()),
        ),
        // Ann is a member of the website only.
        (
            &ann,
            "/inbox".into(),
            count_by_status(&exp, |c| c["inbox_id"] == website.as_str()),
        ),
        (
            &ann,
            "/inbox?view=mine".into(),
            count_by_status(&exp, |c| assignee(c) == Some(ann_id.clone())),
        ),
    ];
    for (session, path, want) in cases {
        let html = session.page(&app, &path).await;
        assert_eq!(tab_counts(&html), want, "{path}");
    }
    // Each status occurs, so every counter was built.
    assert!(count_by_status(&exp, |_| true).values().all(|n| *n > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_user_ids_of_a_schema_2_folder_still_find_their_contacts() {
    let exp = expected();
    let app = migrated().await;
    let (website, shop) = (&exp["inboxes"]["website"], &exp["inboxes"]["shop"]);
    let contact = |who: &str| text(&exp["contacts"][who]["contact_id"]).to_owned();
    let id = |r: (String, String)| r.0;
    assert_eq!(
        id(verified(&app, website, "user-100").await),
        contact("ulla")
    );
    assert_eq!(
        id(verified(&app, website, "user-200").await),
        contact("uwe")
    );
    assert_eq!(id(verified(&app, shop, "user-400").await), contact("vera"));
    // Schema 2 linked user-100 across inboxes; the link stays.
    assert_eq!(id(verified(&app, shop, "user-100").await), contact("ulla"));
    // A user merged into another contact is that contact.
    assert_eq!(
        id(verified(&app, website, "user-300").await),
        contact("ulla")
    );
    // Another secret, another person (schema 2 shared every user id).
    assert_ne!(id(verified(&app, shop, "user-200").await), contact("uwe"));
    // A site an admin gives the website's secret shares its users: the
    // migrated keys hold the secret that verified them.
    let r = app
        .post(
            "/api/v1/inboxes",
            &app.admin_token,
            json!({"name": "Partner site", "channel": "web"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let partner = text(&body(r).await["id"]).to_owned();
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{partner}"),
            &app.admin_token,
            json!({"hmac_secret": text(&website["hmac_secret"])}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let partner = body(
        app.get(&format!("/api/v1/inboxes/{partner}"), &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(partner["hmac_secret"], website["hmac_secret"]);
    assert_eq!(
        id(verified(&app, &partner, "user-200").await),
        contact("uwe")
    );
    assert_eq!(
        id(verified(&app, &partner, "user-100").await),
        contact("ulla")
    );
    // So does the user merged into ulla under schema 2, as after a merge
    // made today.
    assert_eq!(
        id(verified(&app, &partner, "user-300").await),
        contact("ulla")
    );
    assert_ne!(
        id(verified(&app, &partner, "user-400").await),
        contact("vera")
    );
}

/// Every conversation and message as the team sees them, and the long
/// conversation as its contact sees it.
async fn snapshot(app: &TestApp, exp: &Value, contact_token: &str) -> Vec<Value> {
    let admin = &app.admin_token;
    let mut out = Vec::new();
    for c in array(&exp["lists"]["all"]) {
        let id = text(&c["id"]);
        out.push(conversation_facts(&app.conversation(admin, id).await));
        out.extend(messages_facts(
            &app.agent_messages(admin, id, "?limit=500").await,
        ));
    }
    let long = text(&exp["conversation_keys"]["long"]);
    out.extend(messages_facts(
        &contact_view(app, contact_token, long).await,
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_on_a_migrated_folder_keeps_everything() {
    let exp = expected();
    let app = migrated().await;
    let long = text(&exp["conversation_keys"]["long"]).to_owned();
    let (_, token) = verified(&app, &exp["inboxes"]["website"], "user-100").await;
    // Written by today's server after the migration: a note and a reply.
    app.agent_says(&app.admin_token, &long, "a note after the migration", true)
        .await;
    app.contact_says(&token, &long, "asked after the migration")
        .await;
    let first = snapshot(&app, &exp, &token).await;
    let public = array(&exp["contact_messages"]["long"]).len() as u64;
    assert_eq!(first.last().unwrap()["seq"], json!(public + 1));
    let data = app.stop().await;
    let config = settings(&data);
    let app = start(data, config).await;
    assert_eq!(snapshot(&app, &exp, &token).await, first);
}
