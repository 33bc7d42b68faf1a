//! The email channel end to end: a real IMAP server (Dovecot) and an SMTP
//! sink on loopback. Mail in becomes conversations threaded by
//! In-Reply-To, References and plus-address; replies go out with the
//! headers that keep one thread in the customer's client; nothing is lost
//! across an IMAP outage or a natter restart; loops are prevented.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, start, test_config, TestApp};
use crate::mail_servers::{Dovecot, SmtpSink};

pub(crate) const WAIT: Duration = Duration::from_secs(30);
pub(crate) const SUPPORT: &str = "support@natter.test";

pub(crate) fn mail(
    from: &str,
    to: &str,
    subject: &str,
    id: &str,
    headers: &str,
    text: &str,
) -> Vec<u8> {
    format!(
        "From: Carla Customer <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n{headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    )
    .into_bytes()
}

pub(crate) async fn email_inbox(app: &TestApp, imap: &Dovecot, smtp: &SmtpSink) -> String {
    let r = app
        .post(
            "/api/v1/inboxes",
            &app.admin_token,
            json!({"name": "Support mail", "channel": "email", "settings": {
                "imap_host": "127.0.0.1", "imap_port": imap.port, "imap_tls": false,
                "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_tls": false,
                "username": imap.user, "password": imap.password, "from_address": SUPPORT,
            }}),
        )
        .await;
    let status = r.status();
    let b = body(r).await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert!(b["settings"].get("password").is_none(), "write-only: {b}");
    b["id"].as_str().unwrap().to_owned()
}

/// Messages of every conversation in the inbox, waiting (bounded, paced
/// by the event stream) until `ok` holds.
pub(crate) async fn wait_inbox(
    app: &TestApp,
    inbox: &str,
    ok: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut events = app
        .events("/api/v1/events", &app.admin_token, Some("0"))
        .await;
    loop {
        let convs = body(
            app.get(
                &format!("/api/v1/conversations?inbox={inbox}&status=all"),
                &app.admin_token,
            )
            .await,
        )
        .await["conversations"]
            .as_array()
            .unwrap()
            .clone();
        if ok(&convs) {
            return convs;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "inbox never got there: {convs:?}");
        let _ = events.next_frame(left.min(Duration::from_secs(2))).await;
    }
}

pub(crate) fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.split("\r\n\r\n").next()?.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_threads_both_ways_and_loops_are_prevented() {
    let imap = Dovecot::start();
    let smtp = SmtpSink::start(false).await;
    // Mail from before the inbox existed is not imported.
    imap.append(&mail(
        "old@example.com",
        SUPPORT,
        "Ancient",
        "old@example.com",
        "",
        "from last year",
    ))
    .await;
    let app = spawn_app().await;
    let inbox = email_inbox(&app, &imap, &smtp).await;

    imap.append(&mail(
        "carla@example.com",
        SUPPORT,
        "Order 1234 is late",
        "c1@example.com",
        "",
        "Where is my order?\r\n\r\nOn Thu, 26 Nov 2026 at 09:00, Shop <shop@example.com> wrote:\r\n> Your order has shipped.\r\n",
    ))
    .await;
    let convs = wait_inbox(&app, &inbox, |c| !c.is_empty()).await;
    assert_eq!(convs.len(), 1, "only the new mail: {convs:?}");
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(convs[0]["subject"], "Order 1234 is late");
    assert_eq!(convs[0]["contact"]["email"], "carla@example.com");
    assert_eq!(convs[0]["contact"]["name"], "Carla Customer");
    let msgs = app.agent_messages(&app.admin_token, &conv, "").await;
    assert_eq!(
        msgs[0]["body"], "Where is my order?",
        "quoted history trimmed"
    );
    let names: Vec<&str> = msgs[0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"original.eml"), "{names:?}");

    // The agent's reply: threading headers and a plus-address Reply-To.
    let reply = app
        .agent_says(&app.admin_token, &conv, "It leaves today.", false)
        .await;
    let sent = smtp.wait_for(1, WAIT).await;
    let raw = String::from_utf8_lossy(&sent[0].data).to_string();
    assert_eq!(sent[0].rcpt_to, vec!["carla@example.com".to_owned()]);
    assert_eq!(header(&raw, "In-Reply-To"), Some("<c1@example.com>"));
    assert!(header(&raw, "References")
        .unwrap()
        .contains("<c1@example.com>"));
    assert_eq!(header(&raw, "Subject"), Some("Re: Order 1234 is late"));
    // The plus-address carries the conversation's routing token (a MAC).
    let plus = header(&raw, "Reply-To").unwrap().to_owned();
    assert!(plus.starts_with(&format!("support+c{conv}-")), "{raw}");
    let our_id = header(&raw, "Message-ID")
        .unwrap()
        .trim_matches(|c| c == '<' || c == '>')
        .to_owned();
    assert!(header(&raw, "Date").is_some());
    assert!(raw.contains("It leaves today."));
    let seq = reply["seq"].as_u64().unwrap();
    loop {
        let m = app.agent_messages(&app.admin_token, &conv, "").await;
        if m.iter()
            .any(|m| m["seq"] == seq && m["delivery"]["status"] == "sent")
        {
            break;
        }
        smtp.wait_for(1, Duration::from_millis(200)).await;
    }

    // Resolved; the customer answers our mail (In-Reply-To only): same
    // conversation, reopened.
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            &app.admin_token,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let headers = format!("In-Reply-To: <{our_id}>\r\nReferences: <c1@example.com> <{our_id}>\r\n");
    imap.append(&mail(
        "carla@example.com",
        SUPPORT,
        "Re: Order 1234 is late",
        "c2@example.com",
        &headers,
        "Thanks!\r\n\r\n> It leaves today.\r\n",
    ))
    .await;
    wait_inbox(&app, &inbox, |c| c[0]["last_message"]["body"] == "Thanks!").await;
    let c = app.conversation(&app.admin_token, &conv).await;
    assert_eq!(c["status"], "open");

    // A mail to the plus-address without threading headers (another
    // client, a new subject) also lands there.
    imap.append(&mail(
        "carla@example.com",
        &plus,
        "something else",
        "c3@example.com",
        "",
        "One more thing",
    ))
    .await;
    // Our own address and auto-replies create nothing; a sentinel after
    // them proves they were read.
    imap.append(&mail(
        SUPPORT,
        SUPPORT,
        "loop",
        "loop@natter.test",
        "",
        "our own mail",
    ))
    .await;
    imap.append(&mail(
        "carla@example.com",
        SUPPORT,
        "Out of office",
        "ooo@example.com",
        "Auto-Submitted: auto-replied\r\n",
        "I am away",
    ))
    .await;
    imap.append(&mail(
        "dan@example.com",
        SUPPORT,
        "Sentinel",
        "s@example.com",
        "",
        "sentinel",
    ))
    .await;
    let convs = wait_inbox(&app, &inbox, |c| {
        c.iter().any(|c| c["last_message"]["body"] == "sentinel")
    })
    .await;
    assert_eq!(convs.len(), 2, "Carla's thread and the sentinel: {convs:?}");
    let bodies: Vec<String> = app
        .agent_messages(&app.admin_token, &conv, "")
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        bodies,
        vec![
            "Where is my order?",
            "It leaves today.",
            "Thanks!",
            "One more thing"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_across_an_imap_outage_or_a_natter_restart() {
    let mut imap = Dovecot::start();
    let smtp = SmtpSink::start(false).await;
    let data = tempfile::tempdir().unwrap();
    let config = test_config(&data);
    let app = start(data, config.clone()).await;
    let inbox = email_inbox(&app, &imap, &smtp).await;
    imap.append(&mail(
        "a@example.com",
        SUPPORT,
        "first",
        "m1@example.com",
        "",
        "first",
    ))
    .await;
    wait_inbox(&app, &inbox, |c| c.len() == 1).await;

    // The IMAP server goes away; mail keeps arriving in the maildir.
    imap.stop();
    imap.drop_into_maildir(&mail(
        "b@example.com",
        SUPPORT,
        "during outage 1",
        "m2@example.com",
        "",
        "outage one",
    ));
    imap.drop_into_maildir(&mail(
        "c@example.com",
        SUPPORT,
        "during outage 2",
        "m3@example.com",
        "",
        "outage two",
    ));
    imap.restart();
    wait_inbox(&app, &inbox, |c| c.len() == 3).await;

    // natter stops; mail arrives meanwhile; natter starts again.
    let data = app.stop().await;
    imap.append(&mail(
        "d@example.com",
        SUPPORT,
        "while natter was down",
        "m4@example.com",
        "",
        "while down",
    ))
    .await;
    let app = start(data, config).await;
    let convs = wait_inbox(&app, &inbox, |c| c.len() == 4).await;
    let mut bodies: Vec<String> = convs
        .iter()
        .map(|c| c["last_message"]["body"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        vec!["first", "outage one", "outage two", "while down"]
    );
    // Each exactly once.
    for c in &convs {
        assert_eq!(
            app.agent_messages(&app.admin_token, c["id"].as_str().unwrap(), "")
                .await
                .len(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_a_file_carries_it_as_a_real_attachment() {
    let imap = Dovecot::start();
    let smtp = SmtpSink::start(false).await;
    let app = spawn_app().await;
    let inbox = email_inbox(&app, &imap, &smtp).await;
    imap.append(&mail(
        "fay@example.com",
        SUPPORT,
        "Invoice",
        "f1@example.com",
        "",
        "Please send the invoice",
    ))
    .await;
    let convs = wait_inbox(&app, &inbox, |c| !c.is_empty()).await;
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    let form = reqwest::multipart::Form::new()
        .text("body", "Here it is")
        .part(
            "file",
            reqwest::multipart::Part::bytes(crate::fakes::PNG.to_vec()).file_name("invoice.png"),
        );
    let r = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conv}/messages")))
        .bearer_auth(&app.admin_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let sent = smtp.wait_for(1, WAIT).await;
    let parsed = natter::channels::email::parse::parse(&sent[0].data).expect("readable");
    assert_eq!(parsed.text, "Here it is");
    assert_eq!(parsed.attachments.len(), 1, "one MIME attachment");
    assert_eq!(parsed.attachments[0].name, "invoice.png");
    assert_eq!(parsed.attachments[0].bytes, crate::fakes::PNG);
}
