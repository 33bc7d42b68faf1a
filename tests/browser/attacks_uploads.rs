//! The messenger attacked from another site in a real browser: a hostile
//! page that auto-posts the attacker's resume token. Natter is addressed as
//! `http://127.0.0.1:PORT`, the hostile pages as `http://localhost:PORT`:
//! another site.

use std::time::Duration;

use fantoccini::key::Key;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::driver::Browser;
use crate::helpers::{body, spawn_app};

/// Serves `page(port)` at `http://localhost:PORT/` (no CSP: the hostile
/// page runs its own inline script).
async fn serve_page(page: impl Fn(u16) -> String + Send + 'static) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = page(port);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                break;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://localhost:{port}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_site_cannot_switch_the_visitors_messenger_identity() {
    let app = spawn_app().await;
    let key = app.widget_key.clone();
    // The attacker's own contact and a resume link for it.
    let (_, attacker) = app.contact().await;
    app.start_conversation(&attacker, "the attacker reads along")
        .await;
    let r = app
        .post("/api/v1/customer/resume-links", &attacker, json!({}))
        .await;
    let url = body(r).await["url"].as_str().unwrap().to_owned();
    let token = url.split("resume=").nth(1).unwrap().to_owned();
    let action = format!("{}/m/{key}/resume", app.base);
    let hostile = serve_page(move |_| {
        format!(
            "<!doctype html><html><body><h1>Win a prize</h1><form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"token\" value=\"{token}\"></form><script>document.forms[0].submit();</script></body></html>"
        )
    })
    .await;

    // The visitor writes in the messenger.
    let b = Browser::start().await;
    b.goto(&format!("{}/m/{key}", app.base)).await;
    let text = b.find("[data-role=composer] textarea[name=body]").await;
    text.send_keys("the visitor's own question").await.unwrap();
    text.send_keys(&Key::Enter.to_string()).await.unwrap();
    b.find_text(
        "[data-role=thread] [data-author-type=contact]",
        "the visitor's own question",
    )
    .await;

    // Then visits the hostile page, which posts the attacker's token.
    b.goto(&hostile).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let at = b.client.current_url().await.unwrap();
        let done = b
            .client
            .execute("return document.readyState === 'complete';", vec![])
            .await
            .unwrap();
        if at.as_str().starts_with(&app.base) && done == json!(true) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hostile form was not submitted (still at {at})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Back in the messenger, the visitor is still the visitor.
    b.goto(&format!("{}/m/{key}", app.base)).await;
    b.find_text(".m-list", "the visitor's own question").await;
    let list = b.find(".m-list").await.text().await.unwrap();
    assert!(!list.contains("attacker"), "{list}");
    // And the attacker's link was not used up by the refused post.
    let r = app
        .client
        .post(app.url(&format!("/api/v1/widget/{key}/resume")))
        .json(&json!({"token": url.split("resume=").nth(1).unwrap()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    b.close().await;
}
