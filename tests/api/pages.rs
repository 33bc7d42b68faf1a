//! The agent workspace's pages and partials over plain HTTP: redirects,
//! sessions, CSRF, escaping, settings.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{body, no_redirects, spawn_app, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

/// A browser-like session: cookie and CSRF token, no automatic redirects.
struct Session {
    client: Client,
    cookie: String,
    csrf: String,
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Session {
    let crate::helpers::PageSession {
        client,
        cookie,
        csrf,
    } = crate::helpers::page_sign_in(app, email, password).await;
    Session {
        client,
        cookie,
        csrf,
    }
}

impl Session {
    async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        self.client
            .get(app.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn post(
        &self,
        app: &TestApp,
        path: &str,
        form: &[(&str, &str)],
        csrf: bool,
    ) -> reqwest::Response {
        let mut r = self
            .client
            .post(app.url(path))
            .header(COOKIE, &self.cookie)
            .form(form);
        if csrf {
            r = r.header("X-CSRF-Token", &self.csrf);
        }
        r.send().await.unwrap()
    }
}

#[tokio::test]
async fn signed_out_pages_redirect_to_login_with_the_way_back() {
    let app = spawn_app().await;
    let r = no_redirects()
        .get(app.url("/conversations/42?view=mine"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        "/login?next=/conversations/42%3Fview%3Dmine"
    );
    let page = crate::helpers::new_client()
        .get(app.url("/login?next=/inbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"email\"") && html.contains("name=\"password\""));
}

#[tokio::test]
async fn wrong_credentials_show_a_clear_message_and_an_open_redirect_is_refused() {
    let app = spawn_app().await;
    let client = no_redirects();
    let r = crate::helpers::post_login(
        &client,
        &app,
        &[("email", ADMIN_EMAIL), ("password", "nope-nope")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("Wrong email or password."));
    let r = crate::helpers::post_login(
        &client,
        &app,
        &[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("next", "https://evil.example/"),
        ],
    )
    .await;
    assert_eq!(r.headers()[LOCATION], "/inbox");
    for _ in 0..6 {
        crate::helpers::post_login(
            &client,
            &app,
            &[("email", "x@example.com"), ("password", "nope-nope")],
        )
        .await;
    }
    let r = crate::helpers::post_login(
        &client,
        &app,
        &[("email", "x@example.com"), ("password", "nope-nope")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("Too many failed attempts"));
}

#[tokio::test]
async fn the_inbox_lists_conversations_with_their_hooks_and_escapes_user_text() {
    let app = spawn_app().await;
    let (_, contact) = app
        .contact_in(
            &app.widget_key.clone(),
            json!({"name": "<img src=x onerror=alert(1)>"}),
        )
        .await;
    let (conv, _) = app
        .start_conversation(&contact, "<script>alert(1)</script>")
        .await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r = s.get(&app, "/inbox").await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"));
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("data-conversation-id=\"{conv}\"")));
    assert!(!html.contains("<script>alert(1)</script>") && !html.contains("<img src=x"));
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || html.contains("&lt;script&gt;")
    );
    assert!(
        !html.contains(" onclick=") && !html.contains("<script>"),
        "no inline script"
    );
    let html = s
        .get(&app, &format!("/conversations/{conv}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("data-role=\"thread\"")
            && html.contains("data-role=\"composer\"")
            && html.contains("name=\"body\"")
    );
    assert!(html.contains("data-author-type=\"contact\""));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert(1)"));
}

#[tokio::test]
async fn links_in_messages_are_clickable_but_safe() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app
        .start_conversation(
            &contact,
            "see https://example.com/x?a=1&b=\"2\" and javascript:alert(1)",
        )
        .await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let html = s
        .get(&app, &format!("/conversations/{conv}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(
            "<a href=\"https://example.com/x?a=1&amp;b=\" rel=\"noopener noreferrer nofollow\""
        ),
        "{html}"
    );
    assert!(!html.contains("href=\"javascript"));
}

#[tokio::test]
async fn state_changes_without_the_csrf_token_are_refused() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let path = format!("/ui/conversations/{conv}/messages");
    let r = s.post(&app, &path, &[("body", "forged")], false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .client
        .post(app.url(&path))
        .header(COOKIE, &s.cookie)
        .header("X-CSRF-Token", "0".repeat(64))
        .form(&[("body", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .post(
            &app,
            &format!("/ui/conversations/{conv}/update"),
            &[("status", "resolved")],
            false,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s.post(&app, "/logout", &[], false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let msgs = app.agent_messages(&app.admin_token, &conv, "").await;
    assert_eq!(msgs.len(), 1, "nothing forged was stored");
    assert_eq!(
        app.conversation(&app.admin_token, &conv).await["status"],
        "open"
    );
    // With the token it works, and the answer is the message partial.
    let r = s
        .post(
            &app,
            &path,
            &[("body", "real reply"), ("private", "true")],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("data-author-type=\"agent\"")
            && html.contains("real reply")
            && html.contains("Private note")
    );
    let r = s
        .post(
            &app,
            &format!("/ui/conversations/{conv}/update"),
            &[("status", "resolved")],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.conversation(&app.admin_token, &conv).await["status"],
        "resolved"
    );
    let r = s.post(&app, &path, &[("body", "  ")], true).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_api_takes_the_session_cookie_only_with_the_csrf_header() {
    let app = spawn_app().await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r = s
        .client
        .get(app.url("/api/v1/me"))
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .client
        .get(app.url("/api/v1/me"))
        .header(COOKIE, &s.cookie)
        .header("X-CSRF-Token", &s.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_deactivated_agents_session_is_refused_at_once() {
    let app = spawn_app().await;
    let (id, _) = app.create_agent("gone@example.com", "agent").await;
    let s = sign_in(&app, "gone@example.com", "agent-password").await;
    assert_eq!(s.get(&app, "/inbox").await.status(), StatusCode::OK);
    app.patch(
        &format!("/api/v1/agents/{id}"),
        &app.admin_token,
        json!({"active": false}),
    )
    .await;
    let r = s.get(&app, "/inbox").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[LOCATION]
        .to_str()
        .unwrap()
        .starts_with("/login"));
}

#[tokio::test]
async fn logout_ends_the_session_and_login_rotates_it() {
    let app = spawn_app().await;
    let a = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let b = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_ne!(a.cookie, b.cookie, "every sign-in gets a fresh session");
    let r = a
        .post(&app, "/logout", &[("csrf", a.csrf.as_str())], false)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(a.get(&app, "/inbox").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(b.get(&app, "/inbox").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn agents_only_see_their_inboxes_conversations_on_pages() {
    let app = spawn_app().await;
    app.create_agent("out@example.com", "agent").await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hidden").await;
    let s = sign_in(&app, "out@example.com", "agent-password").await;
    let html = s.get(&app, "/inbox").await.text().await.unwrap();
    assert!(!html.contains(&format!("data-conversation-id=\"{conv}\"")));
    assert_eq!(
        s.get(&app, &format!("/conversations/{conv}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = s
        .post(
            &app,
            &format!("/ui/conversations/{conv}/messages"),
            &[("body", "x")],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&app, "/settings/agents").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn views_and_status_tabs_filter_the_list() {
    let app = spawn_app().await;
    let (me, _) = app.member_agent("v@example.com").await;
    let (_, c1) = app.contact().await;
    let (_, c2) = app.contact().await;
    let (mine, _) = app.start_conversation(&c1, "mine").await;
    let (other, _) = app.start_conversation(&c2, "other").await;
    app.patch(
        &format!("/api/v1/conversations/{mine}"),
        &app.admin_token,
        json!({"assignee_id": me}),
    )
    .await;
    app.patch(
        &format!("/api/v1/conversations/{other}"),
        &app.admin_token,
        json!({"status": "pending"}),
    )
    .await;
    let s = sign_in(&app, "v@example.com", "agent-password").await;
    let has = |html: &str, id: &str| html.contains(&format!("data-conversation-id=\"{id}\""));
    let html = s.get(&app, "/inbox?view=mine").await.text().await.unwrap();
    assert!(has(&html, &mine) && !has(&html, &other));
    let html = s
        .get(&app, "/inbox?status=pending")
        .await
        .text()
        .await
        .unwrap();
    assert!(!has(&html, &mine) && has(&html, &other));
    assert!(
        html.contains("Pending <span class=\"count\">1</span>"),
        "tab counts"
    );
}

#[tokio::test]
async fn the_live_stream_pushes_rendered_rows_and_messages() {
    let app = spawn_app().await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "first").await;
    let mut r = s
        .client
        .get(app.url(&format!("/ui/events?conversation={conv}")))
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.contact_says(&contact, &conv, "<b>live</b> message")
        .await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(seen.contains(&format!("data-parent=\"thread-{conv}\" data-place=\"end\""))
        && seen.contains("data-parent=\"conversation-list\" data-place=\"start\"")
        && seen.contains("hx-swap-oob=\"outerHTML:#status-tabs\""))
    {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("within 10 s")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: ui"));
    assert!(seen.contains(&format!("data-conversation-id=\"{conv}\"")));
    assert!(
        seen.contains("&#60;b&#62;live&#60;/b&#62; message")
            || seen.contains("&lt;b&gt;live&lt;/b&gt; message"),
        "{seen}"
    );
    assert!(!seen.contains("<b>live</b>"));
}

#[tokio::test]
async fn the_search_page_highlights_matches_and_links_into_the_thread() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, msg) = app
        .start_conversation(&contact, "Where is my Refund <now>?")
        .await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let html = s.get(&app, "/search?q=refund").await.text().await.unwrap();
    assert!(html.contains("<mark>Refund</mark>"), "{html}");
    assert!(
        html.contains("&#60;now") || html.contains("&lt;now"),
        "escaped: {html}"
    );
    assert!(!html.contains("<now"));
    assert!(html.contains(&format!(
        "/conversations/{conv}#msg-{}",
        msg["id"].as_str().unwrap()
    )));
}

#[tokio::test]
async fn admins_manage_agents_inboxes_and_canned_responses_in_settings() {
    let app = spawn_app().await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for page in [
        "/settings/profile",
        "/settings/agents",
        "/settings/inboxes",
        "/settings/canned",
    ] {
        assert_eq!(s.get(&app, page).await.status(), StatusCode::OK, "{page}");
    }
    let r = s
        .post(
            &app,
            "/settings/agents",
            &[
                ("name", "Nova"),
                ("email", "nova@example.com"),
                ("role", "agent"),
                ("password", "nova-password"),
            ],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.login("nova@example.com", "nova-password")
            .await
            .status(),
        StatusCode::OK
    );
    let r = s
        .post(
            &app,
            "/settings/agents",
            &[
                ("name", "Bad"),
                ("email", "bad"),
                ("role", "agent"),
                ("password", "x"),
            ],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("valid email"));
    let r = s
        .post(
            &app,
            "/settings/canned",
            &[("shortcut", "/thanks"), ("text", "Thank you for writing!")],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = s.get(&app, "/settings/canned").await.text().await.unwrap();
    assert!(html.contains("value=\"thanks\"") && html.contains("Thank you for writing!"));
    let r = s
        .post(
            &app,
            "/settings/canned",
            &[("shortcut", "thanks"), ("text", "again")],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let inbox_html = s
        .get(&app, &format!("/settings/inboxes/{}", app.inbox_id))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        inbox_html.contains(&format!("data-key=&#34;{}&#34;", app.widget_key))
            || inbox_html.contains(&format!("data-key=&quot;{}&quot;", app.widget_key)),
        "snippet"
    );
    let before = crate::helpers::body(
        app.get(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
        )
        .await,
    )
    .await["hmac_secret"]
        .clone();
    let r = s
        .post(
            &app,
            &format!("/settings/inboxes/{}/rotate-secret", app.inbox_id),
            &[],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = crate::helpers::body(
        app.get(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
        )
        .await,
    )
    .await["hmac_secret"]
        .clone();
    assert_ne!(before, after);
    // Deactivating through settings ends that agent's sessions.
    let nova = sign_in(&app, "nova@example.com", "nova-password").await;
    let id = crate::helpers::body(app.get("/api/v1/agents", &app.admin_token).await).await
        ["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "nova@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // First a confirmation that changes nothing ...
    let r = s
        .post(
            &app,
            &format!("/settings/agents/{id}"),
            &[("active", "false")],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let asked = r.text().await.unwrap();
    assert!(
        asked.contains("data-role=\"confirm-deactivate\"") && asked.contains("Deactivate Nova?"),
        "{asked}"
    );
    assert_eq!(nova.get(&app, "/inbox").await.status(), StatusCode::OK);
    // ... then the confirmed form deactivates.
    let r = s
        .post(
            &app,
            &format!("/settings/agents/{id}"),
            &[("active", "false"), ("confirm", "yes")],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        nova.get(&app, "/inbox").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_password_change_in_settings_ends_other_sessions_but_keeps_this_one() {
    let app = spawn_app().await;
    app.create_agent("pw@example.com", "agent").await;
    let here = sign_in(&app, "pw@example.com", "agent-password").await;
    let elsewhere = sign_in(&app, "pw@example.com", "agent-password").await;
    let r = here
        .post(
            &app,
            "/settings/password",
            &[
                ("current_password", "agent-password"),
                ("new_password", "brand-new-pass"),
            ],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let new_cookie = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        elsewhere.get(&app, "/inbox").await.status(),
        StatusCode::SEE_OTHER
    );
    let r = here
        .client
        .get(app.url("/inbox"))
        .header(COOKIE, new_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Reads a page's live stream until `want` appears (bounded).
async fn stream_until(r: &mut reqwest::Response, want: &[&str]) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !want.iter().all(|w| seen.contains(w)) {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("within 10 s")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[tokio::test]
async fn the_open_conversation_shows_the_contact_typing_and_seen() {
    let app = spawn_app().await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let reply = app
        .agent_says(&app.admin_token, &conv, "hello!", false)
        .await;
    let mut r = s
        .client
        .get(app.url(&format!("/ui/events?conversation={conv}")))
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap();
    app.post(
        &format!("/api/v1/customer/conversations/{conv}/typing"),
        &contact,
        json!({"typing": true}),
    )
    .await;
    let got = stream_until(
        &mut r,
        &[&format!("innerHTML:#typing-{conv}\">Casey is typing…")],
    )
    .await;
    assert!(got.contains("event: ui"));
    app.post(
        &format!("/api/v1/customer/conversations/{conv}/read"),
        &contact,
        json!({"seq": reply["seq"]}),
    )
    .await;
    stream_until(&mut r, &[&format!("innerHTML:#seen-{conv}\">Seen")]).await;
    // And the page itself shows "Seen" once read.
    let html = s
        .get(&app, &format!("/conversations/{conv}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("id=\"seen-{conv}\">Seen")));
}

#[tokio::test]
async fn the_search_page_offers_and_applies_filters() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app
        .start_conversation(&contact, "blue parcel from the customer")
        .await;
    app.agent_says(
        &app.admin_token,
        &conv,
        "blue parcel answer from the team",
        false,
    )
    .await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let all = s.get(&app, "/search?q=parcel").await.text().await.unwrap();
    assert_eq!(all.matches("<mark>").count(), 2, "{all}");
    assert!(
        all.contains("name=\"status\"")
            && all.contains("name=\"author\"")
            && all.contains("name=\"inbox\"")
    );
    let agents_only = s
        .get(&app, "/search?q=parcel&author=agent")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(agents_only.matches("<mark>").count(), 1);
    assert!(agents_only.contains("answer from the team"));
    assert!(agents_only.contains("<option value=\"agent\" selected>"));
    let r = s.get(&app, "/search?q=parcel&status=closed").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// One rule for the search text (`service::search`): the API and the
/// search page refuse an over-long query for the same reason, and the
/// page treats an empty box as nothing typed yet, not as an error.
#[tokio::test]
async fn the_api_and_the_search_page_refuse_an_over_long_query_for_the_same_reason() {
    let app = spawn_app().await;
    let long = "refund".repeat(40);
    let r = app
        .get(&format!("/api/v1/search?q={long}"), &app.admin_token)
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let api = body(r).await;
    assert_eq!(api["error"]["field"], "q", "{api}");
    let reason = api["error"]["message"].as_str().unwrap().to_owned();

    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = s.get(&app, &format!("/search?q={long}")).await;
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = page.text().await.unwrap();
    assert!(html.contains(&reason), "{reason} in {html}");

    let empty = s.get(&app, "/search?q=+").await;
    assert_eq!(empty.status(), StatusCode::OK);
    assert!(empty
        .text()
        .await
        .unwrap()
        .contains("Type in the search box"));
}

#[tokio::test]
async fn hostile_text_in_every_field_is_stored_as_sent_and_rendered_inert() {
    let app = spawn_app().await;
    let evil = "<img src=x onerror=alert(1)>\u{202e}gnp.exe";
    // A contact name, a body of 10,000 emoji, HTML and right-to-left marks.
    let (_, contact) = app
        .contact_in(&app.widget_key.clone(), json!({"name": evil}))
        .await;
    let emoji = "🎉".repeat(10_000);
    let (conv, m) = app.start_conversation(&contact, &emoji).await;
    assert_eq!(m["body"], emoji.as_str());
    app.contact_says(&contact, &conv, evil).await;
    // An agent and an inbox named with HTML.
    let r = app
        .post(
            "/api/v1/agents",
            &app.admin_token,
            json!({"email": "h@example.com", "name": evil, "password": "long-enough"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post("/api/v1/inboxes", &app.admin_token, json!({"name": evil}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // NUL bytes and control characters are refused with a clear error.
    for (path, body) in [
        (
            format!("/api/v1/customer/conversations/{conv}/messages"),
            json!({"body": "a\u{0}b"}),
        ),
        (
            "/api/v1/agents".to_owned(),
            json!({"email": "n@example.com", "name": "a\u{0}b", "password": "long-enough"}),
        ),
    ] {
        let token = if path.contains("customer") {
            &contact
        } else {
            &app.admin_token
        };
        let r = app.post(&path, token, body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    }
    // Invalid UTF-8 in a form is a clear 400, not a crash.
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r = s
        .client
        .post(app.url(&format!("/ui/conversations/{conv}/messages")))
        .header(COOKIE, &s.cookie)
        .header("X-CSRF-Token", &s.csrf)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'b', b'o', b'd', b'y', b'=', 0xff, 0xfe])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Every page shows it as text.
    for page in [
        "/inbox".to_owned(),
        format!("/conversations/{conv}"),
        "/settings/agents".to_owned(),
        "/settings/inboxes".to_owned(),
        format!("/settings/inboxes/{}", app.inbox_id),
        "/search?q=onerror".to_owned(),
    ] {
        let html = s.get(&app, &page).await.text().await.unwrap();
        assert!(
            !html.contains("<img src=x"),
            "{page} rendered HTML from a user"
        );
    }
    let html = app
        .client
        .get(app.url(&format!("/m/{}/view?c={conv}", app.widget_key)))
        .bearer_auth(&contact)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<img src=x"));
    assert!(html.contains(&"🎉".repeat(100)));
    // And the API returns it exactly as sent.
    let msgs = app.agent_messages(&app.admin_token, &conv, "").await;
    assert_eq!(msgs.last().unwrap()["body"], evil);
}

/// Polls (paced by the event stream, bounded) until `ok` holds for the
/// conversation's messages.
async fn wait_messages(app: &TestApp, conv: &str, ok: impl Fn(&[Value]) -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut events = app
        .events("/api/v1/events", &app.admin_token, Some("0"))
        .await;
    loop {
        let msgs = app.agent_messages(&app.admin_token, conv, "").await;
        if ok(&msgs) {
            return;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "never: {msgs:?}");
        let _ = events
            .next_frame(left.min(std::time::Duration::from_secs(2)))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_added_in_settings_and_shown_in_the_workspace() {
    let app = spawn_app().await;
    let fake = crate::fakes::Fake::start().await;
    fake.json("/2010-04-01/Accounts/AC5.json", 200, json!({"sid": "AC5"}));
    fake.json("/Messages.json", 201, json!({"sid": "SMp1"}));
    let s = sign_in(
        &app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    let page = s.get(&app, "/settings/inboxes").await.text().await.unwrap();
    for ch in [
        "sms",
        "whatsapp",
        "messenger",
        "instagram",
        "telegram",
        "email",
        "api",
    ] {
        assert!(
            page.contains(&format!("class=\"channel-form\" data-channel=\"{ch}\"")),
            "{ch}"
        );
    }
    assert!(
        page.contains("<select name=\"s.imap_tls\">"),
        "yes/no settings are a choice"
    );
    // A refused setting shows why; a good form creates the inbox.
    let r = s
        .post(
            &app,
            "/settings/inboxes",
            &[
                ("channel", "sms"),
                ("name", "Texts"),
                ("s.account_sid", "AC5"),
            ],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("auth_token is required"));
    let r = s
        .post(
            &app,
            "/settings/inboxes",
            &[
                ("channel", "sms"),
                ("name", "Texts"),
                ("s.account_sid", "AC5"),
                ("s.auth_token", "supersecret"),
                ("s.from", "+15550100"),
                ("s.api_base", &fake.url),
            ],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let inboxes = body(app.get("/api/v1/inboxes", &app.admin_token).await).await;
    let inbox = inboxes["inboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "Texts")
        .unwrap()
        .clone();
    let id = inbox["id"].as_str().unwrap().to_owned();
    // The new inbox's own page is where the admin lands.
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/settings/inboxes/{id}?created=1")
    );
    let page = s
        .get(&app, &format!("/settings/inboxes/{id}?created=1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Inbox created."), "{page}");
    assert!(
        page.contains(&app.url(&format!("/hooks/twilio/{id}"))),
        "the webhook URL to paste"
    );
    assert!(page.contains("Paste this webhook URL into the provider"));
    // The base URL is a loopback address: the page says so, and how to fix it.
    assert!(page.contains("data-role=\"local-base-url\"") && page.contains("NATTER_BASE_URL"));
    // The provider's base URL is a developer's setting, folded away; an SMS
    // inbox has no greeting, colour, snippet or identity secret.
    let advanced = page.split("<details class=\"advanced\"").nth(1).unwrap();
    assert!(advanced.contains("name=\"s.api_base\""));
    assert!(!page
        .split("<details class=\"advanced\"")
        .next()
        .unwrap()
        .contains("name=\"s.api_base\""));
    for web_only in [
        "name=\"greeting\"",
        "name=\"accent_color\"",
        "Identity verification",
        "data-role=\"snippet\"",
    ] {
        assert!(!page.contains(web_only), "{web_only} on an SMS inbox");
    }
    assert!(!page.contains("supersecret"), "secrets are write-only");
    // Saving without retyping the secret keeps it; the test button asks
    // the provider.
    let r = s
        .post(
            &app,
            &format!("/settings/inboxes/{id}/channel"),
            &[("s.from", "+15550199"), ("s.auth_token", "")],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = s
        .post(&app, &format!("/settings/inboxes/{id}/test"), &[], true)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Twilio accepted"));
    let probe = fake.requests("/Accounts/AC5.json");
    assert!(probe[0]
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));

    // An SMS conversation: channel icons on the row and messages, the
    // number in the contact panel, ticks, and Retry after a failure.
    let params = crate::channels::twilio_params(&[
        ("MessageSid", "SMp0"),
        ("From", "+15551010"),
        ("Body", "hi by text"),
    ]);
    let r =
        crate::channels::twilio_post(&app, &format!("/hooks/twilio/{id}"), "supersecret", &params)
            .await;
    assert_eq!(r.status(), StatusCode::OK);
    let list = s.get(&app, "/inbox").await.text().await.unwrap();
    assert!(list.contains("data-channel=\"sms\""), "row icon");
    let conv = body(
        app.get(
            &format!("/api/v1/conversations?inbox={id}"),
            &app.admin_token,
        )
        .await,
    )
    .await["conversations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.fail_next("/Messages.json", &[400]);
    app.agent_says(&app.admin_token, &conv, "hello there", false)
        .await;
    wait_messages(&app, &conv, |m| {
        m.iter().any(|m| m["delivery"]["status"] == "failed")
    })
    .await;
    let html = s
        .get(&app, &format!("/conversations/{conv}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-delivery=\"failed\""), "failed tick");
    assert!(
        html.contains("data-role=\"retry-delivery\""),
        "retry button"
    );
    assert!(
        html.contains("+15551010"),
        "the number in the contact panel"
    );
    assert!(html.contains("data-role=\"contact-channels\""));
    let r = s
        .post(
            &app,
            &format!("/ui/conversations/{conv}/messages/2/retry"),
            &[],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    wait_messages(&app, &conv, |m| {
        m.iter().any(|m| m["delivery"]["status"] == "sent")
    })
    .await;
    let html = s
        .get(&app, &format!("/conversations/{conv}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("data-delivery=\"sent\"") && !html.contains("data-role=\"retry-delivery\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn possible_duplicates_are_suggested_and_merged_from_the_contact_panel() {
    let app = spawn_app().await;
    let s = sign_in(
        &app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    let (web_contact, web_token) = app
        .contact_in(
            &app.widget_key.clone(),
            json!({"name": "Sam Web", "email": "Sam@Example.com"}),
        )
        .await;
    let (web_conv, _) = app.start_conversation(&web_token, "from the site").await;
    let api = crate::channels::channel_inbox(&app, "api", json!({})).await;
    let r = app
        .post(&format!("/api/v1/channels/api/{}/messages", api["id"].as_str().unwrap()), api["api_token"].as_str().unwrap(), json!({"source_id": "u1", "name": "Sam App", "email": "sam@example.com", "body": "from the app"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let conv = body(r).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let html = s
        .get(&app, &format!("/conversations/{conv}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("data-role=\"duplicates\""),
        "suggested, not merged"
    );
    assert!(html.contains("Sam Web"));
    let api_contact = app.conversation(&app.admin_token, &conv).await["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .client
        .post(app.url(&format!("/ui/contacts/{web_contact}/merge")))
        .header(COOKIE, &s.cookie)
        .header("X-CSRF-Token", &s.csrf)
        .header("HX-Request", "true")
        .form(&[("into", api_contact.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["hx-refresh"], "true");
    let html = s
        .get(&app, &format!("/conversations/{conv}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("data-role=\"duplicates\""));
    assert!(
        html.contains("from the site"),
        "the web conversation is listed with the person"
    );
    // The web conversation can now be answered through the app's channel.
    let web = s
        .get(&app, &format!("/conversations/{web_conv}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        web.contains("data-role=\"reply-via\""),
        "reply channel choice"
    );
    assert!(web.contains(&format!("value=\"{}\"", api["id"].as_str().unwrap())));
}

#[tokio::test]
async fn the_settings_page_and_the_api_refuse_the_same_changes_for_the_same_reason() {
    let app = spawn_app().await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let me = body(app.get("/api/v1/me", &app.admin_token).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let long = "x".repeat(501);
    // One rule for greetings: the inbox form and PATCH /inboxes/{id}.
    let page = s
        .post(
            &app,
            &format!("/settings/inboxes/{}", app.inbox_id),
            &[("name", "Website"), ("greeting", long.as_str())],
            true,
        )
        .await;
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let api = app
        .patch(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
            json!({ "greeting": long }),
        )
        .await;
    assert_eq!(api.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let reason = "greeting must be at most 500 characters";
    assert!(page.text().await.unwrap().contains(reason));
    assert_eq!(body(api).await["error"]["message"], reason);
    // One rule for demoting yourself: the agent form and PATCH /agents/{id}.
    let page = s
        .post(
            &app,
            &format!("/settings/agents/{me}"),
            &[("role", "agent")],
            true,
        )
        .await;
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let api = app
        .patch(
            &format!("/api/v1/agents/{me}"),
            &app.admin_token,
            json!({ "role": "agent" }),
        )
        .await;
    assert_eq!(api.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let reason = "you cannot deactivate or demote yourself";
    assert!(page.text().await.unwrap().contains(reason));
    assert_eq!(body(api).await["error"]["message"], reason);
}

#[tokio::test]
async fn the_workspace_and_the_api_refuse_the_same_changes() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    // An agent outside the Website inbox cannot be assigned its conversation.
    let (outsider, _) = app.create_agent("outsider@example.com", "agent").await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let api_path = format!("/api/v1/conversations/{conv}");
    let page_path = format!("/ui/conversations/{conv}/update");
    let message = "the assignee must be a member of the conversation&#x27;s inbox";
    let r = app
        .patch(
            &api_path,
            &app.admin_token,
            json!({"assignee_id": outsider}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let b = body(r).await;
    assert_eq!(b["error"]["field"], "assignee_id", "{b}");
    let r = s
        .post(
            &app,
            &page_path,
            &[("assignee_id", outsider.as_str())],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(message) || html.contains(&message.replace("&#x27;", "&#39;")),
        "{html}"
    );
    // A snooze that ends in the past is refused by both.
    let r = app
        .patch(
            &api_path,
            &app.admin_token,
            json!({"snoozed_until": "2000-01-01T09:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = s
        .post(&app, &page_path, &[("snooze_at", "2000-01-01T09:00")], true)
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("snoozed_until must be in the future"));
    let c = app.conversation(&app.admin_token, &conv).await;
    assert_eq!(
        (c["status"].as_str(), &c["assignee_id"]),
        (Some("open"), &Value::Null)
    );
}

/// Every page names the favicon, and it is served: the sign-in page (the
/// plain layout), the workspace and the messenger.
#[tokio::test]
async fn every_kind_of_page_has_the_favicon() {
    let app = spawn_app().await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let plain = app
        .client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let workspace = s.get(&app, "/inbox").await.text().await.unwrap();
    let messenger = app
        .client
        .get(app.url(&format!("/m/{}", app.widget_key)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, html) in [
        ("sign-in", &plain),
        ("workspace", &workspace),
        ("messenger", &messenger),
    ] {
        assert_eq!(
            html.matches(r#"<link rel="icon" href="/static/icon.svg""#)
                .count(),
            1,
            "{name}: {html}"
        );
    }
    let icon = app
        .client
        .get(app.url("/static/icon.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.status(), StatusCode::OK);
    assert!(icon
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("image/svg+xml")));
}

/// "Notify me by email" is offered only when natter can send mail, and an
/// admin is told in the settings when it cannot.
#[tokio::test]
async fn email_is_offered_only_when_natter_can_send_mail() {
    async fn check(app: &TestApp, can_mail: bool) {
        let (_, contact) = app.contact().await;
        let (conv, _) = app.start_conversation(&contact, "hello").await;
        let view = app
            .client
            .get(app.url(&format!("/m/{}/view?c={conv}", app.widget_key)))
            .bearer_auth(&contact)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(view.contains("data-role=\"composer\""), "{view}");
        assert_eq!(view.contains("class=\"m-email\""), can_mail, "{view}");
        let admin = crate::helpers::page_sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let settings = admin.page(app, "/settings/agents").await;
        assert_eq!(
            settings.contains("data-role=\"mail-warning\""),
            !can_mail,
            "{settings}"
        );
    }
    let app = spawn_app().await;
    check(&app, false).await;
    let sink = crate::mail_servers::SmtpSink::start(false).await;
    let smtp = sink.outgoing(crate::email::SUPPORT);
    let app = crate::helpers::spawn_app_with(move |c| c.smtp = Some(smtp)).await;
    check(&app, true).await;
}

/// The "Needs reply" view lists only customers who wait, and the
/// "Waiting longest" order puts the longest wait first.
#[tokio::test]
async fn needs_reply_and_waiting_longest() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    let mut ids = Vec::new();
    for text in ["oldest question", "answered question", "newest question"] {
        let (_, contact) = app.contact().await;
        let (id, _) = app.start_conversation(&contact, text).await;
        ids.push((id, contact));
    }
    app.agent_says(&admin, &ids[1].0, "answered", false).await;
    // The oldest customer writes again: the wait still began first.
    app.contact_says(&ids[0].1, &ids[0].0, "hello? still there?")
        .await;
    let order = |html: &str| -> Vec<String> {
        html.split("<li id=\"row-")
            .skip(1)
            .filter_map(|s| s.split('"').next().map(str::to_owned))
            .collect()
    };
    let s = crate::helpers::page_sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let all = s.page(&app, "/inbox").await;
    assert_eq!(
        order(&all),
        vec![ids[0].0.clone(), ids[1].0.clone(), ids[2].0.clone()]
    );
    let needs = s.page(&app, "/inbox?view=needs-reply").await;
    assert!(needs.contains(">Needs reply<"), "the view is offered");
    assert_eq!(order(&needs), vec![ids[0].0.clone(), ids[2].0.clone()]);
    let longest = s.page(&app, "/inbox?sort=waiting").await;
    assert_eq!(order(&longest), vec![ids[0].0.clone(), ids[2].0.clone()]);
    let newest_waiting_last = s.page(&app, "/inbox?view=needs-reply&sort=waiting").await;
    assert_eq!(
        order(&newest_waiting_last),
        vec![ids[0].0.clone(), ids[2].0.clone()]
    );
    assert!(longest.contains("data-role=\"waiting\""));
}

/// A new agent in no inbox is told so, and who can add them, instead of an
/// empty list that looks broken.
#[tokio::test]
async fn an_agent_in_no_inbox_is_told_who_can_add_them() {
    let app = spawn_app().await;
    let (id, _) = app.create_agent("newbie@example.com", "agent").await;
    let s = crate::helpers::page_sign_in(&app, "newbie@example.com", "agent-password").await;
    let page = s.page(&app, "/inbox").await;
    assert!(page.contains("data-role=\"no-inbox\""), "{page}");
    assert!(page.contains("You are not in any inbox yet"), "{page}");
    assert!(page.contains("Ask Admin to add you"), "{page}");
    app.add_member(&app.inbox_id, &id).await;
    let page = s.page(&app, "/inbox").await;
    assert!(!page.contains("data-role=\"no-inbox\""), "{page}");
}

/// Telegram learns its webhook from Natter when the inbox is created: a
/// refusal is said on the new inbox's page (not "Saved."), and the page
/// never asks to paste the URL anywhere. Once Telegram accepts, "Test
/// connection" registers it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_inbox_whose_webhook_was_refused_says_so() {
    let app = spawn_app().await;
    let fake = crate::fakes::Fake::start().await;
    fake.json(
        "/getMe",
        200,
        json!({"ok": true, "result": {"id": 7, "username": "shop_bot"}}),
    );
    fake.json(
        "/setWebhook",
        400,
        json!({"ok": false, "description": "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"}),
    );
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r = s
        .post(
            &app,
            "/settings/inboxes",
            &[
                ("channel", "telegram"),
                ("name", "Bot"),
                ("s.bot_token", "123:abc"),
                ("s.api_base", &fake.url),
            ],
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("Saved.") && !page.contains("Inbox created."),
        "{page}"
    );
    assert!(
        page.contains("did not accept Natter&#39;s webhook")
            || page.contains("did not accept Natter's webhook"),
        "{page}"
    );
    assert!(page.contains("An HTTPS URL must be provided"), "{page}");
    assert!(page.contains("data-role=\"own-hook\""));
    assert!(!page.contains("Paste this webhook URL"));
    assert!(!page.contains("Signing secret"), "nothing to copy by hand");
    assert!(!page.contains("name=\"greeting\""));
    // The inbox exists; once Telegram accepts, the test button says so.
    fake.json("/setWebhook", 200, json!({"ok": true, "result": true}));
    let inboxes = body(app.get("/api/v1/inboxes", &app.admin_token).await).await;
    let id = inboxes["inboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "Bot")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .post(&app, &format!("/settings/inboxes/{id}/test"), &[], true)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("@shop_bot"));
    assert_eq!(fake.requests("/setWebhook").len(), 2);
}
