//! Attacks on uploads and on the messenger's forms, each performed as the
//! attacker would: refused uploads that used to stay on disk, quotas, the
//! free-space reserve, orphaned files, cross-site posts that switched the
//! visitor's identity, resume tokens burnt at the wrong widget, names that
//! hide their real extension, and contact tokens in URLs.

use std::path::Path;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, spawn_app_with, TestApp};

/// Every file under the data folder's `files/`, temporary ones included.
fn stored_files(app: &TestApp) -> Vec<String> {
    files_in(&app.data.path().join("files"))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// A multipart body of `n` files of `size` bytes each, then `fields` (after
/// the files, so the server has read every file before it sees them).
fn files_then(n: usize, size: usize, fields: &[(&str, String)]) -> Form {
    let mut f = Form::new();
    for i in 0..n {
        f = f.part(
            "file",
            Part::bytes(vec![b'x'; size]).file_name(format!("f{i}.bin")),
        );
    }
    for (k, v) in fields {
        f = f.text(k.to_string(), v.clone());
    }
    f
}

/// A contact posts files (and fields) into its conversation over the
/// customer API.
async fn post_files(app: &TestApp, contact: &str, conv: &str, form: Form) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/customer/conversations/{conv}/messages")))
        .bearer_auth(contact)
        .multipart(form)
        .send()
        .await
        .expect("request")
}

async fn message_count(app: &TestApp) -> usize {
    let r = app
        .get("/api/v1/conversations?status=all", &app.admin_token)
        .await;
    let convs = body(r).await;
    let mut n = 0;
    for c in convs["conversations"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        n += app.agent_messages(&app.admin_token, id, "").await.len();
    }
    n
}

#[tokio::test]
async fn three_refused_uploads_of_five_files_leave_nothing_on_disk() {
    let app = spawn_app_with(|c| c.contact_messages_per_minute = 1).await;
    let key = app.widget_key.clone();
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "my one message").await;
    let before = message_count(&app).await;
    let two_mb = 2 << 20;
    // 1: a first message whose email, sent after the files, is invalid.
    let r = app
        .client
        .post(app.url(&format!("/m/{key}/start")))
        .header("sec-fetch-site", "same-origin")
        .multipart(files_then(5, two_mb, &[("email", "not-an-email".into())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // 2: a text over 10,000 characters after the files.
    let r = app
        .client
        .post(app.url(&format!("/m/{key}/start")))
        .header("sec-fetch-site", "same-origin")
        .multipart(files_then(5, two_mb, &[("body", "x".repeat(10_001))]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // 3: a contact past its message rate limit (refused before the body is
    // read).
    let r = app
        .client
        .post(app.url(&format!("/m/{key}/c/{conv}/messages")))
        .bearer_auth(&contact)
        .multipart(files_then(5, two_mb, &[("body", "more".into())]))
        .send()
        .await;
    assert_eq!(r.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        stored_files(&app),
        Vec::<String>::new(),
        "refused uploads left files"
    );
    assert_eq!(message_count(&app).await, before);
}

#[tokio::test]
async fn a_sixth_file_refuses_the_message_and_the_first_five_are_removed() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hello").await;
    let r = post_files(
        &app,
        &contact,
        &conv,
        files_then(6, 1000, &[("body", "six".into())]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(stored_files(&app), Vec::<String>::new());
}

#[tokio::test]
async fn a_contact_past_its_hourly_upload_quota_gets_429_and_nothing_is_stored() {
    let app = spawn_app_with(|c| {
        c.upload_bytes_per_hour_contact = 1 << 20;
        c.upload_bytes_per_hour_address = 0;
    })
    .await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hello").await;
    let post = || {
        post_files(
            &app,
            &contact,
            &conv,
            files_then(1, 600 << 10, &[("body", "a file".into())]),
        )
    };
    assert_eq!(post().await.status(), StatusCode::CREATED);
    let kept = stored_files(&app);
    assert_eq!(kept.len(), 1);
    let r = post().await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 3601, "{wait}");
    assert_eq!(stored_files(&app), kept, "the refused file was removed");
    assert_eq!(app.customer_messages(&contact, &conv).await.len(), 2);
    // Text alone still goes through: the quota is for files.
    let r = app
        .post(
            &format!("/api/v1/customer/conversations/{conv}/messages"),
            &contact,
            json!({"body": "no file this time"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_address_past_its_hourly_upload_quota_gets_429_even_as_new_contacts() {
    let app = spawn_app_with(|c| {
        c.upload_bytes_per_hour_contact = 0;
        c.upload_bytes_per_hour_address = 1 << 20;
    })
    .await;
    let key = app.widget_key.clone();
    let start = || {
        app.client
            .post(app.url(&format!("/m/{key}/start")))
            .header("hx-request", "true")
            .multipart(files_then(1, 600 << 10, &[("body", "a file".into())]))
            .send()
    };
    assert_eq!(start().await.unwrap().status(), StatusCode::OK);
    let kept = stored_files(&app);
    let convs = message_count(&app).await;
    let r = start().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.headers().get("set-cookie").is_none(), "no contact made");
    assert_eq!(stored_files(&app), kept);
    assert_eq!(message_count(&app).await, convs);
}

#[tokio::test]
async fn the_orphan_sweep_removes_unreferenced_files_and_keeps_referenced_ones() {
    let clock = natter::service::notify::Clock::manual();
    let c2 = clock.clone();
    let app = spawn_app_with(move |c| c.clock = c2).await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hello").await;
    let r = post_files(
        &app,
        &contact,
        &conv,
        files_then(1, 1000, &[("body", "kept".into())]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let m = body(r).await;
    let kept = m["attachments"][0]["id"].as_str().unwrap().to_owned();
    let dir = app.data.path().join("files");
    // What a crash between writing a file and storing its message leaves,
    // and an upload nobody finished.
    let orphan = "AAAAAAAAAAAAAAAAAAAAAA";
    let part = ".BBBBBBBBBBBBBBBBBBBBBB.part";
    std::fs::write(dir.join(orphan), b"nobody's").unwrap();
    std::fs::write(dir.join(part), b"half").unwrap();
    // Young files are left alone: the sweep at start has run by now.
    let r = app
        .client
        .get(app.url(m["attachments"][0]["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(dir.join(orphan).exists() && dir.join(part).exists());
    // Two hours later by the server's clock, the next sweep takes them.
    clock.advance(Duration::from_secs(2 * 60 * 60)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dir.join(orphan).exists() || dir.join(part).exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "orphans not swept: {:?}",
            files_in(&dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files_in(&dir), vec![kept]);
    let r = app
        .client
        .get(app.url(m["attachments"][0]["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), 1000);
}

#[tokio::test]
async fn an_upload_that_would_cross_the_free_space_reserve_gets_507_and_stores_nothing() {
    let Some(disk) = crate::helpers::SmallDisk::mount(48) else {
        return;
    };
    let mount = disk.path.clone();
    let data = mount.join("data");
    let app = spawn_app_with(|c| {
        c.data = data.clone();
        c.min_free_bytes = 16 << 20;
    })
    .await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hello").await;
    // 4 x 9 MiB on a 48 MiB disk that must keep 16 MiB free.
    let r = post_files(
        &app,
        &contact,
        &conv,
        files_then(4, 9 << 20, &[("body", "big".into())]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(files_in(&data.join("files")), Vec::<String>::new());
    assert_eq!(app.customer_messages(&contact, &conv).await.len(), 1);
    // A small file still fits.
    let r = post_files(
        &app,
        &contact,
        &conv,
        files_then(1, 100 << 10, &[("body", "small".into())]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(files_in(&data.join("files")).len(), 1);
    app.stopper.stop();
    let _ = app.server.await;
}

/// A resume link of a fresh contact: (contact token, resume token).
async fn resume_token(app: &TestApp, text: &str) -> (String, String) {
    let (_, contact) = app.contact().await;
    app.start_conversation(&contact, text).await;
    let r = app
        .post("/api/v1/customer/resume-links", &contact, json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let url = body(r).await["url"].as_str().unwrap().to_owned();
    let token = url.split("resume=").nth(1).unwrap().to_owned();
    (contact, token)
}

#[tokio::test]
async fn a_cross_site_post_cannot_switch_the_messenger_identity() {
    let app = spawn_app().await;
    let key = app.widget_key.clone();
    let (_, attacker) = resume_token(&app, "the attacker's own conversation").await;
    let no_redirect = crate::helpers::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resume = || {
        no_redirect
            .post(app.url(&format!("/m/{key}/resume")))
            .form(&[("token", attacker.as_str())])
    };
    for (what, req) in [
        (
            "another site's Origin",
            resume().header("origin", "http://evil.example"),
        ),
        (
            "Sec-Fetch-Site: cross-site",
            resume().header("sec-fetch-site", "cross-site"),
        ),
        ("no form token", resume()),
        (
            "a wrong form token",
            resume().form(&[("token", attacker.as_str()), ("csrf", "guess")]),
        ),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(
            r.headers().get("set-cookie").is_none(),
            "{what}: an identity was handed out"
        );
    }
    // A first message posted cross-site makes no contact either.
    let before = message_count(&app).await;
    let r = no_redirect
        .post(app.url(&format!("/m/{key}/start")))
        .header("origin", "http://evil.example")
        .form(&[("body", "posted by another site")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(message_count(&app).await, before);
    // The messenger's own no-JavaScript page still works: its form carries
    // the token of its form cookie, and the refused posts above did not use
    // up the link.
    let page = no_redirect
        .get(app.url(&format!("/m/{key}?resume={attacker}")))
        .send()
        .await
        .unwrap();
    let cookie = crate::helpers::set_cookie(&page, "natter_m_csrf").expect("a form cookie");
    let html = page.text().await.unwrap();
    let csrf = crate::helpers::form_csrf(&html);
    assert!(!csrf.is_empty());
    let r = no_redirect
        .post(app.url(&format!("/m/{key}/resume")))
        .header("cookie", &cookie)
        .form(&[("token", attacker.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("the attacker"));
}

#[tokio::test]
async fn a_resume_token_at_the_wrong_widget_key_is_refused_and_stays_usable() {
    let app = spawn_app().await;
    let other = app.create_inbox("Other shop").await;
    let other_key = other["widget_key"].as_str().unwrap().to_owned();
    let (_, token) = resume_token(&app, "my conversation").await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/widget/{other_key}/resume")))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .client
        .post(app.url(&format!("/m/{other_key}/resume")))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    let r = app
        .client
        .post(app.url(&format!("/api/v1/widget/{}/resume", app.widget_key)))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let again = app
        .client
        .post(app.url(&format!("/api/v1/widget/{}/resume", app.widget_key)))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "still single use");
}

#[tokio::test]
async fn file_names_lose_bidi_and_other_control_characters() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hello").await;
    // Raw UTF-8 names, as a browser sends them.
    let names = [
        ("invoice\u{202e}fdp.exe", "invoicefdp.exe"),
        (
            "a\u{2066}b\u{2069}\u{200e}c\u{200f}\u{061c}d\u{202a}\u{202b}\u{202c}\u{202d}\u{2067}\u{2068}.png",
            "abcd.png",
        ),
        ("tab\there.txt", "tabhere.txt"),
    ];
    let mut raw = Vec::new();
    for (name, _) in names {
        raw.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\nbytes\r\n").as_bytes(),
        );
    }
    raw.extend_from_slice(b"--XyZ--\r\n");
    let r = app
        .client
        .post(app.url(&format!("/api/v1/customer/conversations/{conv}/messages")))
        .bearer_auth(&contact)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let m: Value = body(r).await;
    let got: Vec<&str> = m["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = names.iter().map(|(_, w)| *w).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_contact_token_in_the_url_works_only_on_the_event_stream() {
    let app = spawn_app().await;
    let key = app.widget_key.clone();
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "private words").await;
    // The page, its partials and its forms ignore ?access_token=.
    let html = app
        .client
        .get(app.url(&format!("/m/{key}/view?c={conv}&access_token={contact}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("private words"));
    let r = app
        .client
        .get(app.url(&format!(
            "/m/{key}/c/{conv}/older?before=2&access_token={contact}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .client
        .post(app.url(&format!(
            "/m/{key}/c/{conv}/messages?access_token={contact}"
        )))
        .header("hx-request", "true")
        .form(&[("body", "sent with a token in the URL")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .client
        .get(app.url(&format!(
            "/api/v1/customer/conversations?access_token={contact}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // EventSource cannot send headers: the stream still takes it.
    let r = app
        .client
        .get(app.url(&format!("/m/{key}/events?access_token={contact}&c={conv}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
