//! Replies that reach people who have left: unread replies emailed after
//! the delay (a clock the test moves), once, batched, never after reading,
//! never for notes; the link signs the contact in once; unsubscribe works;
//! answering the mail threads back into the web conversation.

use std::time::Duration;

use natter::channels::email::parse::parse;
use natter::channels::email::EmailSettings;
use natter::service::notify::Clock;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{body, spawn_app_with, TestApp};
use crate::mail_servers::{Dovecot, SmtpSink};

const MIN: Duration = Duration::from_secs(60);

fn smtp_to(sink: &SmtpSink) -> EmailSettings {
    sink.outgoing("support@natter.test")
}

fn text_of(raw: &[u8]) -> String {
    parse(raw).expect("a readable mail").text
}

fn link_in(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {text}"));
    let start = text[..start].rfind("http").unwrap();
    text[start..].split_whitespace().next().unwrap().to_owned()
}

async fn customer(app: &TestApp, email: &str) -> (String, String, String) {
    let (contact, token) = app
        .contact_in(
            &app.widget_key.clone(),
            json!({"name": "Carla", "email": email}),
        )
        .await;
    let (conv, _) = app.start_conversation(&token, "Hello, anyone?").await;
    (contact, token, conv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_replies_are_emailed_once_batched_with_a_single_use_link_and_an_unsubscribe() {
    let sink = SmtpSink::start(false).await;
    let clock = Clock::manual();
    let (c2, s2) = (clock.clone(), smtp_to(&sink));
    let app = spawn_app_with(move |c| {
        c.clock = c2;
        c.smtp = Some(s2);
        c.notify_after_secs = 300;
    })
    .await;
    let (_, ctoken, conv) = customer(&app, "carla@example.com").await;
    app.agent_says(&app.admin_token, &conv, "First answer", false)
        .await;
    app.agent_says(&app.admin_token, &conv, "internal: check the order", true)
        .await;
    app.agent_says(&app.admin_token, &conv, "Second answer", false)
        .await;

    clock.advance(4 * MIN).await;
    assert!(sink.received().is_empty(), "not before the delay");
    clock.advance(2 * MIN).await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, vec!["carla@example.com".to_owned()]);
    let raw = String::from_utf8_lossy(&got[0].data).to_string();
    let text = text_of(&got[0].data);
    assert!(
        text.contains("First answer") && text.contains("Second answer"),
        "batched: {text}"
    );
    assert!(!text.contains("internal"), "notes are never mailed");
    assert!(
        raw.contains(&format!("support+c{conv}-")),
        "Reply-To names the conversation"
    );
    assert!(raw.contains("2 new replies"));
    assert!(raw.contains("List-Unsubscribe: <http"), "{raw}");
    assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));

    clock.advance(10 * MIN).await;
    assert_eq!(sink.received().len(), 1, "exactly once");

    // A later reply is mailed on its own.
    app.agent_says(&app.admin_token, &conv, "Third answer", false)
        .await;
    clock.advance(6 * MIN).await;
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    let third = text_of(&got[1].data);
    assert!(
        third.contains("Third answer") && !third.contains("First answer"),
        "{third}"
    );

    // Read in time: no mail.
    let r = app
        .agent_says(&app.admin_token, &conv, "Fourth answer", false)
        .await;
    let seq = r["seq"].as_u64().unwrap();
    let read = app
        .post(
            &format!("/api/v1/customer/conversations/{conv}/read"),
            &ctoken,
            json!({"seq": seq}),
        )
        .await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    clock.advance(6 * MIN).await;
    assert_eq!(sink.received().len(), 2, "not after the contact read it");

    // The link signs the contact in once, on that conversation.
    let link = link_in(&third, "resume=");
    assert!(link.contains(&format!("c={conv}")), "{link}");
    let fresh = crate::helpers::new_client();
    let page = fresh.get(&link).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains(&format!("name=\"c\" value=\"{conv}\"")),
        "the sign-in form keeps the conversation"
    );
    let token = link
        .split("resume=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let resume_url = format!("{}/resume", link.split('?').next().unwrap());
    // Posted from the messenger's own page, as a browser says.
    let r = fresh
        .post(&resume_url)
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", token.as_str()), ("c", conv.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("set-cookie").is_some(), "signed in");
    let html = r.text().await.unwrap();
    assert!(html.contains("Third answer"), "opens on the conversation");
    let again = fresh
        .post(&resume_url)
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::GONE, "single use");

    // Unsubscribe: a forged token is refused; the real one stops mail.
    let unsub = link_in(&third, "/unsubscribe?");
    let forged = format!(
        "{}0",
        unsub.trim_end_matches(|c: char| c.is_ascii_hexdigit())
    );
    assert_eq!(
        fresh.get(&forged).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let r = fresh.get(&unsub).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("data-role=\"unsubscribed\""));
    app.agent_says(&app.admin_token, &conv, "Fifth answer", false)
        .await;
    clock.advance(6 * MIN).await;
    assert_eq!(sink.received().len(), 2, "unsubscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_the_notification_threads_back_into_the_web_conversation() {
    let imap = Dovecot::start();
    let sink = SmtpSink::start(false).await;
    let clock = Clock::manual();
    let c2 = clock.clone();
    let app = spawn_app_with(move |c| {
        c.clock = c2;
        c.notify_after_secs = 300;
    })
    .await;
    // The email inbox's SMTP is the global outgoing mail server.
    let r = app
        .post("/api/v1/inboxes", &app.admin_token, json!({"name": "Mail", "channel": "email", "settings": {
            "imap_host": "127.0.0.1", "imap_port": imap.port, "imap_tls": false,
            "smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_tls": false,
            "username": imap.user, "password": imap.password, "from_address": "support@natter.test",
        }}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, _, conv) = customer(&app, "carla@example.com").await;
    app.agent_says(&app.admin_token, &conv, "Your parcel left today", false)
        .await;
    clock.advance(6 * MIN).await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let mail = parse(&got[0].data).unwrap();
    let id = mail.message_id.clone().unwrap();
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            &app.admin_token,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Carla answers the mail from her client.
    let answer = format!(
        "From: Carla <carla@example.com>\r\nTo: support+c{conv}@natter.test\r\nSubject: Re: New reply\r\nMessage-ID: <answer1@example.com>\r\nIn-Reply-To: <{id}>\r\nReferences: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGreat, thank you!\r\n\r\nOn Fri, 27 Nov 2026, Natter <support@natter.test> wrote:\r\n> Your parcel left today\r\n"
    );
    imap.append(answer.as_bytes()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut events = app
        .events("/api/v1/events", &app.admin_token, Some("0"))
        .await;
    loop {
        let msgs = app.agent_messages(&app.admin_token, &conv, "").await;
        if let Some(m) = msgs.iter().find(|m| m["body"] == "Great, thank you!") {
            assert_eq!(m["author"]["type"], "contact");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the answer never threaded back: {msgs:?}"
        );
        let _ = events.next_frame(Duration::from_secs(2)).await;
    }
    let c = body(
        app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(c["status"], "open", "the answer reopens it");
    let all = body(
        app.get("/api/v1/conversations?status=all", &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(
        all["conversations"].as_array().unwrap().len(),
        1,
        "no new conversation in the email inbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_email_a_number_that_texted_us_gets_the_reply_by_sms() {
    let fake = crate::fakes::Fake::start().await;
    fake.json("/Messages.json", 201, json!({"sid": "SMn"}));
    let clock = Clock::manual();
    let c2 = clock.clone();
    let app = spawn_app_with(move |c| {
        c.clock = c2;
        c.notify_after_secs = 300;
    })
    .await;
    let sms = crate::channels::channel_inbox(&app, "sms", json!({"account_sid": "AC1", "auth_token": "tok", "from": "+15550000", "api_base": fake.url})).await;
    let sms_id = sms["id"].as_str().unwrap();
    let params = crate::channels::twilio_params(&[
        ("MessageSid", "SMa"),
        ("From", "+15553334444"),
        ("Body", "hi"),
    ]);
    crate::channels::twilio_post(&app, &format!("/hooks/twilio/{sms_id}"), "tok", &params).await;
    let sms_contact = body(
        app.get(
            &format!("/api/v1/conversations?inbox={sms_id}"),
            &app.admin_token,
        )
        .await,
    )
    .await["conversations"][0]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (web_contact, token) = app.contact().await;
    let (conv, _) = app.start_conversation(&token, "question on the site").await;
    let r = app
        .post(
            &format!("/api/v1/contacts/{sms_contact}/merge"),
            &app.admin_token,
            json!({"into": web_contact}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.agent_says(&app.admin_token, &conv, "Here is the answer", false)
        .await;
    clock.advance(6 * MIN).await;
    let got = fake
        .wait_for("/Messages.json", 1, Duration::from_secs(10))
        .await;
    assert_eq!(got[0].form_field("To").as_deref(), Some("+15553334444"));
    let text = got[0].form_field("Body").unwrap();
    assert!(
        text.contains("Here is the answer") && text.contains("resume="),
        "{text}"
    );
    clock.advance(10 * MIN).await;
    assert_eq!(fake.requests("/Messages.json").len(), 1, "once");
    // A reply sent by SMS itself reached the person: no notification.
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.admin_token,
            json!({"body": "Sent by text", "via": sms_id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    fake.wait_for("/Messages.json", 2, Duration::from_secs(10))
        .await;
    clock.advance(10 * MIN).await;
    assert_eq!(
        fake.requests("/Messages.json").len(),
        2,
        "the reply itself, no notification of it"
    );
}
