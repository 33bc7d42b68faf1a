//! Invitations and password resets: an admin invites by email (or hands
//! over a copyable link when no mail can be sent), an agent who forgot
//! their password asks for a mailed link, and every such link works once,
//! expires, and is refused when posted from anywhere but its own page.

use std::time::Duration;

use natter::channels::email::parse::parse;
use natter::service::notify::Clock;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    body, form_csrf, no_redirects, set_cookie, spawn_app, spawn_app_with, TestApp,
};
use crate::mail_servers::SmtpSink;

/// The path and query of an absolute link of this app.
fn local(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("{url} is under {}", app.base))
        .to_owned()
}

/// Opens a link as a browser would and posts its form with `password`:
/// the status of the page, then of the post (and the session cookie on
/// success).
async fn use_link(
    app: &TestApp,
    link: &str,
    password: &str,
) -> (StatusCode, String, StatusCode, Option<String>) {
    let c = no_redirects();
    let r = c.get(app.url(&local(app, link))).send().await.unwrap();
    let status = r.status();
    assert_eq!(
        r.headers()
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("same-origin"),
        "the link's token must not leak through Referer"
    );
    let cookie = set_cookie(&r, "natter_password").expect("the form cookie");
    let html = r.text().await.unwrap();
    if status != StatusCode::OK {
        return (status, html, status, None);
    }
    let token = link.split("t=").nth(1).unwrap().to_owned();
    let r = c
        .post(app.url("/password/set"))
        .header(reqwest::header::COOKIE, &cookie)
        .form(&[
            ("csrf", form_csrf(&html).as_str()),
            ("t", &token),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let posted = r.status();
    let session = set_cookie(&r, "natter_session");
    (status, html, posted, session)
}

/// Invites an agent (no mail server: the link comes back) and returns
/// the invitation link.
async fn invite(app: &TestApp, email: &str, name: &str) -> String {
    let a = body(
        app.post(
            "/api/v1/agents",
            &app.admin_token,
            json!({"email": email, "name": name}),
        )
        .await,
    )
    .await;
    a["invite_url"].as_str().unwrap().to_owned()
}

/// The password link in a mail natter sent.
fn link_in_mail(raw: &[u8]) -> String {
    let text = parse(raw).expect("a mail").text;
    text.split_whitespace()
        .find(|w| w.contains("/password/set?t="))
        .unwrap_or_else(|| panic!("a link in {text}"))
        .to_owned()
}

async fn api_login(app: &TestApp, email: &str, password: &str) -> StatusCode {
    app.login(email, password).await.status()
}

#[tokio::test]
async fn an_invited_agent_chooses_a_password_from_a_copyable_link_that_works_once() {
    let app = spawn_app().await;
    // No mail server: the admin gets the link to hand over.
    let r = app
        .post(
            "/api/v1/agents",
            &app.admin_token,
            json!({"email": "Ines@Example.com", "name": "Ines", "role": "agent"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = body(r).await;
    assert_eq!(a["invited"], true);
    assert_eq!(a["invite_mailed"], false);
    let link = a["invite_url"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{}/password/set?t=", app.base)),
        "{link}"
    );
    // Nobody signs in as an invited agent before they chose a password,
    // whatever they guess (the stored placeholder included).
    for guess in ["", "invite:", "agent-password", "password123"] {
        assert_eq!(
            api_login(&app, "ines@example.com", guess).await,
            StatusCode::UNAUTHORIZED
        );
    }

    let (page, html, posted, session) = use_link(&app, &link, "ines-own-password").await;
    assert_eq!(page, StatusCode::OK);
    assert!(html.contains("Welcome to Natter, Ines"), "{html}");
    assert!(html.contains("ines@example.com"));
    assert_eq!(posted, StatusCode::SEE_OTHER);
    // Signed in at once: the session opens the inbox.
    let session = session.expect("a session cookie");
    let inbox = no_redirects()
        .get(app.url("/inbox"))
        .header(reqwest::header::COOKIE, session)
        .send()
        .await
        .unwrap();
    assert_eq!(inbox.status(), StatusCode::OK);
    assert_eq!(
        api_login(&app, "ines@example.com", "ines-own-password").await,
        StatusCode::OK
    );
    let id = a["id"].as_str().unwrap();
    let a = body(
        app.get(&format!("/api/v1/agents/{id}"), &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(a["invited"], false);

    // Once only: the same link is gone, and cannot set another password.
    let (page, html, _, _) = use_link(&app, &link, "someone-elses").await;
    assert_eq!(page, StatusCode::GONE);
    assert!(html.contains("has expired"), "{html}");
    assert_eq!(
        api_login(&app, "ines@example.com", "someone-elses").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_link_is_refused_when_forged_changed_or_posted_from_elsewhere() {
    let app = spawn_app().await;
    let link = invite(&app, "jo@example.com", "Jo").await;
    let token = link.split("t=").nth(1).unwrap().to_owned();
    // Another agent's id, a changed time or a changed MAC: all gone.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let forged = [
        format!("i1.{}.{}", parts[1], parts[2]),
        format!("r{}.{}.{}", &parts[0][1..], parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1].parse::<i64>().unwrap() + 1,
            parts[2]
        ),
        {
            let flip = if parts[2].starts_with('0') { "1" } else { "0" };
            parts[2].replace_range(0..1, flip);
            parts.join(".")
        },
        "garbage".to_owned(),
    ];
    for t in forged {
        let r = no_redirects()
            .get(app.url(&format!("/password/set?t={t}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::GONE, "{t}");
    }
    // The genuine link, posted without the page's form token (a hostile
    // page signing the visitor in): refused, and the link still works.
    let r = no_redirects()
        .post(app.url("/password/set"))
        .form(&[("t", token.as_str()), ("password", "attacker-chose-it")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&r, "natter_session").is_none());
    // A too short password is refused on the page and keeps the link.
    let (_, _, posted, _) = use_link(&app, &link, "short").await;
    assert_eq!(posted, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, _, posted, _) = use_link(&app, &link, "long-enough-now").await;
    assert_eq!(posted, StatusCode::SEE_OTHER);
    assert_eq!(
        api_login(&app, "jo@example.com", "long-enough-now").await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_racing_uses_of_one_link_set_one_password() {
    let app = spawn_app().await;
    let link = invite(&app, "race@example.com", "Race").await;
    let (x, y) = tokio::join!(
        use_link(&app, &link, "first-password"),
        use_link(&app, &link, "second-password")
    );
    let wins = [x.2, y.2]
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    let first = api_login(&app, "race@example.com", "first-password").await;
    let second = api_login(&app, "race@example.com", "second-password").await;
    assert_eq!(
        wins,
        [first, second]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count()
    );
    assert_eq!(wins, 1, "exactly one use wins: {:?} {:?}", x.2, y.2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_mails_a_reset_link_that_ends_every_session_and_expires() {
    let sink = SmtpSink::start(false).await;
    let clock = Clock::manual();
    let (c2, smtp) = (clock.clone(), sink.outgoing("support@natter.test"));
    let app = spawn_app_with(move |c| {
        c.clock = c2;
        c.smtp = Some(smtp);
    })
    .await;
    let (member_id, member_token) = app.create_agent("forgetful@example.com", "agent").await;

    // The sign-in page links to it; the page asks for an address.
    let login = no_redirects()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("href=\"/password/forgot\""), "{login}");
    let forgot = |email: &'static str| {
        let app_url = app.url("/password/forgot");
        async move {
            let c = no_redirects();
            let r = c.get(&app_url).send().await.unwrap();
            let cookie = set_cookie(&r, "natter_password").unwrap();
            let html = r.text().await.unwrap();
            assert!(html.contains("Email me a link"), "{html}");
            let r = c
                .post(&app_url)
                .header(reqwest::header::COOKIE, cookie)
                .form(&[("csrf", form_csrf(&html).as_str()), ("email", email)])
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    // An unknown address gets the same answer and no mail.
    let (s, unknown) = forgot("nobody@example.com").await;
    assert_eq!(s, StatusCode::OK);
    let (s, known) = forgot("Forgetful@Example.com").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        unknown.replace("nobody@example.com", "X"),
        known.replace("Forgetful@Example.com", "X"),
        "the answer must not tell whether the address is an agent's"
    );
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "one mail, to the agent only");
    assert_eq!(mails[0].rcpt_to, vec!["forgetful@example.com".to_owned()]);
    let link = link_in_mail(&mails[0].data);

    // An hour later it has expired.
    clock.advance(Duration::from_secs(3601)).await;
    let (page, _, _, _) = use_link(&app, &link, "too-late-password").await;
    assert_eq!(page, StatusCode::GONE);

    // A fresh one (asked again) works once and ends the old token.
    let (s, _) = forgot("forgetful@example.com").await;
    assert_eq!(s, StatusCode::OK);
    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    let link = link_in_mail(&mails[1].data);
    let (page, html, posted, _) = use_link(&app, &link, "remembered-now").await;
    assert_eq!(page, StatusCode::OK);
    assert!(html.contains("Choose a new password"), "{html}");
    assert_eq!(posted, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/api/v1/me", &member_token).await.status(),
        StatusCode::UNAUTHORIZED,
        "a reset ends every session and token"
    );
    assert_eq!(
        api_login(&app, "forgetful@example.com", "agent-password").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api_login(&app, "forgetful@example.com", "remembered-now").await,
        StatusCode::OK
    );
    let (page, _, _, _) = use_link(&app, &link, "again-password").await;
    assert_eq!(page, StatusCode::GONE);
    let _ = member_id;

    // Asking over and over for one address is limited (no mail flood).
    let mut last = StatusCode::OK;
    for _ in 0..4 {
        let r = app
            .client
            .post(app.url("/api/v1/auth/forgot"))
            .json(&json!({"email": "forgetful@example.com"}))
            .send()
            .await
            .unwrap();
        last = r.status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_mailed_when_mail_can_be_sent_and_again_on_request() {
    let sink = SmtpSink::start(false).await;
    let smtp = sink.outgoing("support@natter.test");
    let app = spawn_app_with(move |c| c.smtp = Some(smtp)).await;
    let a = body(
        app.post(
            "/api/v1/agents",
            &app.admin_token,
            json!({"email": "kim@example.com", "name": "Kim", "role": "admin"}),
        )
        .await,
    )
    .await;
    assert_eq!(a["invite_mailed"], true);
    assert_eq!(a["role"], "admin");
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    let text = parse(&mails[0].data).expect("a mail").text;
    assert!(text.contains(a["invite_url"].as_str().unwrap()), "{text}");
    // "Invite again" gives a new link; both work until one is used.
    let id = a["id"].as_str().unwrap();
    let again = body(
        app.post(
            &format!("/api/v1/agents/{id}/password-link"),
            &app.admin_token,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(again["mailed"], true);
    assert_eq!(sink.wait_for(2, Duration::from_secs(10)).await.len(), 2);
    let (_, _, posted, _) = use_link(&app, again["url"].as_str().unwrap(), "kims-password").await;
    assert_eq!(posted, StatusCode::SEE_OTHER);
    let (page, _, _, _) = use_link(&app, a["invite_url"].as_str().unwrap(), "other-password").await;
    assert_eq!(
        page,
        StatusCode::GONE,
        "setting the password retires every earlier link"
    );
    // Without mail, the forgot page says to ask an admin instead.
    let plain = spawn_app().await;
    let html = no_redirects()
        .get(plain.url("/password/forgot"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("cannot send email"), "{html}");
    assert!(!html.contains("Email me a link"));
}
