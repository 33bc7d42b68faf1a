//! The messenger attacked from another site in a real browser: a hostile
//! page that auto-posts the attacker's resume token, and pages that frame
//! the messenger to hear its unread counts. Natter is addressed as
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
    b.goto(&format!("{}/m/{key}?list=1", app.base)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messenger_talks_only_to_the_origin_that_loaded_the_widget() {
    let app = spawn_app().await;
    let key = app.widget_key.clone();
    let base = app.base.clone();
    // One page frames the messenger three times: naming its own origin (as
    // widget.js does), naming another origin, and naming none.
    let page = serve_page(move |port| {
        let me = format!("http://localhost:{port}");
        let frame = |id: &str, host: &str| {
            format!("<iframe id=\"{id}\" src=\"{base}/m/{key}?embed=1{host}\" onload=\"window.__loaded = (window.__loaded || 0) + 1\"></iframe>")
        };
        format!(
            "<!doctype html><html><body><script>window.__got = []; window.addEventListener('message', function (e) {{ var id = ['own', 'other', 'none'].filter(function (f) {{ return document.getElementById(f).contentWindow === e.source; }})[0]; window.__got.push(id + ':' + (e.data && e.data.type)); }});</script>{}{}{}</body></html>",
            frame("own", &format!("&host={}", urlencode(&me))),
            frame("other", "&host=http%3A%2F%2Fshop.example"),
            frame("none", ""),
        )
    })
    .await;
    let b = Browser::start().await;
    b.goto(&page).await;
    // All three frames load; the one that names this page says it is
    // ready.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let state = b
            .client
            .execute("return [window.__loaded || 0, window.__got];", vec![])
            .await
            .unwrap();
        let ready = state[1]
            .as_array()
            .is_some_and(|g| g.iter().any(|x| x == "own:natter:ready"));
        if state[0] == json!(3) && ready {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "frames not loaded or no natter:ready: {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The other two post their ready message at the same moment of their
    // load; give a stray one a moment to arrive, then none may have.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = b
        .client
        .execute("return window.__got;", vec![])
        .await
        .unwrap();
    let got = got.as_array().unwrap();
    assert!(
        got.iter()
            .all(|x| x.as_str().is_some_and(|s| s.starts_with("own:"))),
        "another page heard the messenger: {got:?}"
    );
    b.close().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
