//! Attachments: typed by content, size-limited, never served as a page.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;

use crate::helpers::{assert_error, body, spawn_app, spawn_app_with};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

fn form(body: &str, name: &str, bytes: &[u8], claimed: &str) -> Form {
    Form::new().text("body", body.to_owned()).part(
        "file",
        Part::bytes(bytes.to_vec())
            .file_name(name.to_owned())
            .mime_str(claimed)
            .unwrap(),
    )
}

#[tokio::test]
async fn an_image_is_stored_typed_by_its_bytes_and_served_inline() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/customer/conversations/{conv}/messages")))
        .bearer_auth(&contact)
        .multipart(form("", "photo.txt", PNG, "text/plain"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let m = body(r).await;
    let a = &m["attachments"][0];
    assert_eq!(a["content_type"], "image/png", "{m}");
    assert_eq!(a["name"], "photo.txt");
    assert_eq!(a["size"], PNG.len());
    for k in ["id", "name", "content_type", "size", "url"] {
        assert!(a.get(k).is_some(), "{k}");
    }
    let r = app
        .client
        .get(app.url(a["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
    // The agent sees it in the thread too.
    let msgs = app.agent_messages(&app.admin_token, &conv, "").await;
    assert_eq!(msgs.last().unwrap()["attachments"][0]["id"], a["id"]);
}

#[tokio::test]
async fn svg_and_html_are_never_served_inline_whatever_they_claim() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    for (name, bytes, claimed) in [
        (
            "evil.svg",
            &b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"[..],
            "image/svg+xml",
        ),
        (
            "evil.html",
            &b"<html><script>alert(1)</script></html>"[..],
            "text/html",
        ),
        ("fake.png", &b"not really a png"[..], "image/png"),
    ] {
        let r = app
            .client
            .post(app.url(&format!("/api/v1/customer/conversations/{conv}/messages")))
            .bearer_auth(&contact)
            .multipart(form("see file", name, bytes, claimed))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let m = body(r).await;
        assert_eq!(
            m["attachments"][0]["content_type"], "application/octet-stream",
            "{name}"
        );
        let r = app
            .client
            .get(app.url(m["attachments"][0]["url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
            "{name}"
        );
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox"));
    }
}

#[tokio::test]
async fn files_over_the_limit_get_413_and_nothing_is_stored() {
    let app = spawn_app_with(|c| c.max_upload_bytes = 1024).await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/customer/conversations/{conv}/messages")))
        .bearer_auth(&contact)
        .multipart(form(
            "big",
            "big.bin",
            &vec![7u8; 2048],
            "application/octet-stream",
        ))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.customer_messages(&contact, &conv).await.len(), 1);
}

#[tokio::test]
async fn a_message_needs_text_or_a_file_and_at_most_five_files() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let url = app.url(&format!("/api/v1/conversations/{conv}/messages"));
    let r = app
        .client
        .post(&url)
        .bearer_auth(&app.admin_token)
        .multipart(Form::new().text("body", " "))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let mut f = Form::new().text("body", "six files");
    for i in 0..6 {
        f = f.part(
            "file",
            Part::bytes(PNG.to_vec()).file_name(format!("{i}.png")),
        );
    }
    let r = app
        .client
        .post(&url)
        .bearer_auth(&app.admin_token)
        .multipart(f)
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    // An agent's private note with a file keeps the file private to the team.
    let f =
        form("", "../../etc/x.pdf", b"%PDF-1.4 tiny", "application/pdf").text("private", "true");
    let r = app
        .client
        .post(&url)
        .bearer_auth(&app.admin_token)
        .multipart(f)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let m = body(r).await;
    assert_eq!(m["private"], true);
    assert_eq!(m["attachments"][0]["name"], "x.pdf");
    assert_eq!(m["attachments"][0]["content_type"], "application/pdf");
    assert!(app
        .customer_messages(&contact, &conv)
        .await
        .iter()
        .all(|m| m["attachments"].as_array().unwrap().is_empty()));
}

#[tokio::test]
async fn unknown_file_ids_are_404() {
    let app = spawn_app().await;
    for p in [
        "/files/AAAAAAAAAAAAAAAAAAAAAA/x.png",
        "/files/..%2F..%2Fetc/passwd",
        "/files/short/x",
    ] {
        let r = app.client.get(app.url(p)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{p}");
    }
}
