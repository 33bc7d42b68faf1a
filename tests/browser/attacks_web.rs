//! Attacks on the agent workspace performed in a real Chromium: a hostile
//! site signing the visitor in to the attacker's account (login CSRF), an
//! open redirect after sign-in, and a message that tries to inject fields
//! into the page's event stream.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::driver::Browser;
use crate::helpers::{spawn_app, ADMIN_EMAIL, ADMIN_PASSWORD};

/// Serves `html` to every request on a free loopback port: the attacker's
/// site. Addressed as `localhost` while natter is `127.0.0.1`, it is
/// another site to the browser.
async fn hostile_site(html: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let res = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = s.write_all(res.as_bytes()).await;
            });
        }
    });
    port
}

/// Polls a script's answer (bounded) until `done` holds.
async fn until(b: &Browser, script: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = b.client.execute(script, vec![]).await.expect("script");
        if done(&v) {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            b.dump().await;
            panic!("{script} never satisfied the check: {v}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_site_cannot_sign_the_visitor_in_to_the_attackers_account() {
    let app = spawn_app().await;
    app.create_agent("attacker@example.com", "agent").await;
    let b = Browser::start().await;
    // The visitor has loaded natter's sign-in page before (so holds its
    // form cookie), then visits the attacker's page, which posts the
    // attacker's credentials to natter on its own.
    b.goto(&format!("{}/login", app.base)).await;
    b.find("input[name=email]").await;
    let page = format!(
        r#"<!doctype html><form id=f method=post action="{}/login">
        <input name=email value="attacker@example.com">
        <input name=password value="agent-password">
        <input name=next value="/inbox"></form>
        <script>document.getElementById('f').submit()</script>"#,
        app.base
    );
    let port = hostile_site(page).await;
    b.goto(&format!("http://localhost:{port}/")).await;
    b.find_text("main", "did not come from this site").await;
    // The visitor is not signed in as anybody.
    b.goto(&format!("{}/inbox", app.base)).await;
    b.find("input[name=password]").await;
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/login", "{url}");
    // Natter's own form still signs in.
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crafted_next_link_never_takes_a_signed_in_agent_off_the_site() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for next in ["/%09/other-site.example", "/%5C/other-site.example"] {
        b.goto(&format!("{}/login?next={next}", app.base)).await;
        b.find("[data-role=conversation-list]").await;
        let url = b.client.current_url().await.unwrap();
        assert_eq!(url.host_str(), Some("127.0.0.1"), "{next} led to {url}");
        assert_eq!(url.path(), "/inbox");
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carriage_return_in_a_message_injects_nothing_into_the_page_stream() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // Listen to the page's stream the way htmx does, recording every
    // event id and any event type the page never sends.
    b.client
        .execute(
            "window.__ids = []; window.__bodies = []; window.__odd = [];
             var es = new EventSource('/ui/events');
             es.addEventListener('ui', function (e) { window.__ids.push(e.lastEventId); window.__bodies.push(e.data); });
             es.addEventListener('injected', function () { window.__odd.push('injected'); });
             es.onmessage = function () { window.__odd.push('message'); };
             es.onopen = function () { window.__open = true; };",
            vec![],
        )
        .await
        .unwrap();
    until(&b, "return window.__open === true;", |v| {
        v == &Value::Bool(true)
    })
    .await;
    let (_, contact) = app.contact().await;
    app.start_conversation(
        &contact,
        "hello\rid: 999999\revent: injected\rdata: x\r\rend-of-body",
    )
    .await;
    until(
        &b,
        "return window.__bodies.some(function (d) { return d.indexOf('end-of-body') >= 0; });",
        |v| v == &Value::Bool(true),
    )
    .await;
    let ids = b
        .client
        .execute("return window.__ids;", vec![])
        .await
        .unwrap();
    let odd = b
        .client
        .execute("return window.__odd;", vec![])
        .await
        .unwrap();
    assert_eq!(
        odd,
        Value::Array(vec![]),
        "no injected event was dispatched"
    );
    for id in ids.as_array().unwrap() {
        let n: u64 = id.as_str().unwrap_or("").parse().unwrap_or(u64::MAX);
        assert!(n < 999_999, "the browser took an injected id: {ids}");
    }
    // The page itself shows the message as text.
    b.find_text("[data-role=conversation-list]", "hello").await;
    b.close().await;
}
