//! Attacks on mail: routing into someone else's conversation (guessed
//! conversation ids, spoofed senders, stolen tokens), taking over a
//! verified person through the email-confirmation link, linking people
//! across websites that do not share an identity secret, and mail bombing
//! through the "email me" form.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::customers::identity_hash;
use crate::email::{email_inbox, header, mail, wait_inbox, SUPPORT, WAIT};
use crate::helpers::{body, spawn_app_with, TestApp};
use crate::identity::{confirm_link, share_identity_secret};
use crate::mail_servers::{Dovecot, SmtpSink};

/// An app whose outgoing mail goes to `sink`.
async fn app_mailing_to(sink: &SmtpSink) -> TestApp {
    let s = sink.outgoing(SUPPORT);
    spawn_app_with(move |c| c.smtp = Some(s)).await
}

/// A contact of the app's website leaves `email` in the messenger.
async fn leave_email(app: &TestApp, token: &str, email: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/m/{}/email", app.widget_key)))
        .bearer_auth(token)
        .header("HX-Request", "true")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        )
        .form(&[("email", email)])
        .send()
        .await
        .unwrap()
}

/// The first link in a mail.
fn link_in(raw: &[u8]) -> String {
    let text = natter::channels::email::parse::parse(raw).unwrap().text;
    let start = text.find("http").unwrap();
    text[start..].split_whitespace().next().unwrap().to_owned()
}

/// The bodies of a conversation's messages, oldest first.
async fn bodies(app: &TestApp, conversation: &str) -> Vec<String> {
    app.agent_messages(&app.admin_token, conversation, "")
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every conversation (all inboxes, all states).
async fn all_conversations(app: &TestApp) -> Vec<Value> {
    body(
        app.get("/api/v1/conversations?status=all", &app.admin_token)
            .await,
    )
    .await["conversations"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_post_into_anothers_email_conversation() {
    let imap = Dovecot::start();
    let smtp = SmtpSink::start(false).await;
    let app = crate::helpers::spawn_app().await;
    let inbox = email_inbox(&app, &imap, &smtp).await;
    imap.append(&mail(
        "carla@example.com",
        SUPPORT,
        "My order",
        "c1@example.com",
        "",
        "Where is my order?",
    ))
    .await;
    let convs = wait_inbox(&app, &inbox, |c| !c.is_empty()).await;
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    // The agent answers Carla: her mail carries the real routing token.
    app.agent_says(&app.admin_token, &conv, "It ships today", false)
        .await;
    let sent = smtp.wait_for(1, WAIT).await;
    let raw = String::from_utf8_lossy(&sent[0].data).to_string();
    let reply_to = header(&raw, "Reply-To").unwrap().to_owned();
    let our_id = header(&raw, "Message-ID")
        .unwrap()
        .trim_matches(|c| c == '<' || c == '>')
        .to_owned();

    // Mallory tries every way of naming Carla's conversation: the bare
    // id in a plus-address, a forged MAC, an old-style Message-ID, Carla's
    // own Message-ID, and Carla's real token (a forwarded mail).
    let forged = format!("support+c{conv}-000000000000000000000000@natter.test");
    let bare = format!("support+c{conv}@natter.test");
    let attempts = [
        (bare.as_str(), String::new(), "by bare id"),
        (forged.as_str(), String::new(), "by forged mac"),
        (
            SUPPORT,
            format!("In-Reply-To: <natter.c{conv}.n1@natter.test>\r\n"),
            "by old message id",
        ),
        (
            SUPPORT,
            "In-Reply-To: <c1@example.com>\r\nReferences: <c1@example.com>\r\n".to_owned(),
            "by carla's message id",
        ),
        (reply_to.as_str(), String::new(), "by stolen plus-address"),
        (
            SUPPORT,
            format!("In-Reply-To: <{our_id}>\r\n"),
            "by stolen message id",
        ),
    ];
    for (i, (to, headers, text)) in attempts.iter().enumerate() {
        imap.append(&mail(
            "mallory@example.com",
            to,
            "Re: My order",
            &format!("m{i}@example.com"),
            headers,
            text,
        ))
        .await;
    }
    let last = attempts[attempts.len() - 1].2;
    let convs = wait_inbox(&app, &inbox, |c| {
        c.iter().any(|c| c["last_message"]["body"] == last)
    })
    .await;
    assert_eq!(
        bodies(&app, &conv).await,
        vec!["Where is my order?", "It ships today"],
        "nothing of Mallory's in Carla's conversation"
    );
    let mallorys: Vec<&Value> = convs
        .iter()
        .filter(|c| c["contact"]["email"] == "mallory@example.com")
        .collect();
    assert_eq!(mallorys.len(), 1, "Mallory writes in her own: {convs:?}");
    assert_ne!(mallorys[0]["id"], conv.as_str());
    let hers = bodies(&app, mallorys[0]["id"].as_str().unwrap()).await;
    assert_eq!(hers.len(), attempts.len(), "{hers:?}");

    // Carla herself, answering with the token she was sent, threads back.
    imap.append(&mail(
        "carla@example.com",
        &reply_to,
        "Re: My order",
        "c2@example.com",
        "",
        "Thanks",
    ))
    .await;
    wait_inbox(&app, &inbox, |c| {
        c.iter().any(|c| c["last_message"]["body"] == "Thanks")
    })
    .await;
    assert_eq!(bodies(&app, &conv).await.last().unwrap(), "Thanks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_sender_is_never_posted_as_a_web_contact_who_only_typed_the_address() {
    let imap = Dovecot::start();
    let smtp = SmtpSink::start(false).await;
    let app = crate::helpers::spawn_app().await;
    let inbox = email_inbox(&app, &imap, &smtp).await;
    let (web_contact, token) = app
        .contact_in(
            &app.widget_key.clone(),
            json!({"name": "Vera", "email": "vera@example.com"}),
        )
        .await;
    let (web_conv, _) = app.start_conversation(&token, "my private question").await;
    // Mallory forges Vera's From and names the web conversation every
    // way the old routing accepted.
    imap.append(&mail(
        "vera@example.com",
        &format!("support+c{web_conv}@natter.test"),
        "Re: New reply",
        "spoof1@example.com",
        &format!("In-Reply-To: <natter.c{web_conv}.n1@natter.test>\r\nReferences: <natter.c{web_conv}.n1@natter.test>\r\n"),
        "send the invoice to mallory@example.com",
    ))
    .await;
    let convs = wait_inbox(&app, &inbox, |c| !c.is_empty()).await;
    assert_eq!(
        bodies(&app, &web_conv).await,
        vec!["my private question"],
        "nothing posted into the web conversation"
    );
    assert_eq!(convs.len(), 1, "a new conversation in the email inbox");
    assert_ne!(
        convs[0]["contact"]["id"],
        web_contact.as_str(),
        "not as the web contact"
    );
    let customer = body(app.get("/api/v1/customer/conversations", &token).await).await;
    assert_eq!(customer["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(all_conversations(&app).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_confirmation_link_hands_nobody_a_verified_persons_history() {
    let sink = SmtpSink::start(false).await;
    let app = app_mailing_to(&sink).await;
    // The victim confirmed her address long ago.
    let (victim, victim_token) = app.contact().await;
    app.start_conversation(&victim_token, "my account number is 1234")
        .await;
    assert_eq!(
        leave_email(&app, &victim_token, "vic@example.com")
            .await
            .status(),
        StatusCode::OK
    );
    let mails = sink.wait_for(1, WAIT).await;
    let scanner = crate::helpers::new_client();
    assert_eq!(
        confirm_link(&scanner, &link_in(&mails[0].data))
            .await
            .status(),
        StatusCode::OK
    );
    // The attacker's device submits her address; the mail goes to her and
    // her mail scanner fetches the link.
    let (attacker, attacker_token) = app.contact().await;
    app.start_conversation(&attacker_token, "hello").await;
    assert_eq!(
        leave_email(&app, &attacker_token, "Vic@Example.com")
            .await
            .status(),
        StatusCode::OK
    );
    let mails = sink.wait_for(2, WAIT).await;
    assert_eq!(mails[1].rcpt_to, vec!["vic@example.com".to_owned()]);
    let text = natter::channels::email::parse::parse(&mails[1].data)
        .unwrap()
        .text;
    assert!(
        text.contains("Firefox on Linux") && text.contains("already confirmed"),
        "the mail names the asking device: {text}"
    );
    let link = link_in(&mails[1].data);
    let page = scanner.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("method=\"post\"") && page.contains("your whole history"),
        "{page}"
    );
    // A cross-site post of the link (CSRF) is refused too.
    let (url, query) = link.split_once('?').unwrap();
    let r = scanner
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("Origin", "https://evil.example")
        .body(query.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The attacker sees nothing of the victim's; both people still exist.
    let list = body(
        app.get("/api/v1/customer/conversations", &attacker_token)
            .await,
    )
    .await;
    assert_eq!(list["conversations"].as_array().unwrap().len(), 1, "{list}");
    let page = app
        .client
        .get(app.url(&format!("/m/{}", app.widget_key)))
        .bearer_auth(&attacker_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("1234"), "{page}");
    for id in [&victim, &attacker] {
        assert_eq!(
            app.get(&format!("/api/v1/contacts/{id}"), &app.admin_token)
                .await
                .status(),
            StatusCode::OK
        );
    }
    // An old-style link (no time, no device) proves nothing.
    let old = format!(
        "{url}?c={attacker}&e=vic%40example.com&t={}",
        link.rsplit("t=").next().unwrap()
    );
    assert_eq!(
        scanner.get(&old).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
}

/// `n` posts to the email form; how many were refused with 429 and a
/// `Retry-After`.
async fn refused(results: Vec<reqwest::Response>) -> usize {
    let mut n = 0;
    for r in results {
        match r.status() {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(r.headers().get("retry-after").is_some());
                n += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_form_cannot_bomb_anyone() {
    let limit = natter::service::ratelimit::VISITOR_MAILS_PER_HOUR as usize;
    let per_address = natter::service::ratelimit::VISITOR_MAILS_PER_ADDRESS_PER_HOUR as usize;

    // One contact, 25 addresses: per contact.
    let sink = SmtpSink::start(false).await;
    let app = app_mailing_to(&sink).await;
    let (_, token) = app.contact().await;
    let mut results = Vec::new();
    for i in 0..25 {
        results.push(leave_email(&app, &token, &format!("target{i}@example.com")).await);
    }
    assert_eq!(refused(results).await, 25 - limit);
    assert_eq!(sink.received().len(), limit);

    // 25 contacts, one victim: per recipient.
    let sink = SmtpSink::start(false).await;
    let app = app_mailing_to(&sink).await;
    let mut results = Vec::new();
    for i in 0..25 {
        let (_, token) = app.contact().await;
        let victim = if i % 2 == 0 {
            "victim@example.com"
        } else {
            "VICTIM@example.com"
        };
        results.push(leave_email(&app, &token, victim).await);
    }
    assert_eq!(refused(results).await, 25 - limit);
    assert_eq!(sink.received().len(), limit);

    // 25 contacts from one address, 25 recipients: per client address.
    let sink = SmtpSink::start(false).await;
    let app = app_mailing_to(&sink).await;
    let mut results = Vec::new();
    for i in 0..25 {
        let (_, token) = app.contact().await;
        results.push(leave_email(&app, &token, &format!("t{i}@example.com")).await);
    }
    assert_eq!(refused(results).await, 25 - per_address);
    let got = sink.received();
    assert_eq!(got.len(), per_address);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_user_id_never_links_inboxes_with_different_identity_secrets() {
    let app = crate::helpers::spawn_app().await;
    let first = body(
        app.get(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
        )
        .await,
    )
    .await;
    let (user, token) = app
        .contact_in(
            &app.widget_key.clone(),
            json!({"external_id": "42", "identifier_hash": identity_hash(first["hmac_secret"].as_str().unwrap(), "42")}),
        )
        .await;
    app.start_conversation(&token, "my medical question").await;
    // Another website with its own secret identifies its own user "42".
    let other = app.create_inbox("Other business").await;
    let hash = identity_hash(other["hmac_secret"].as_str().unwrap(), "42");
    let (stranger, stranger_token) = app
        .contact_in(
            other["widget_key"].as_str().unwrap(),
            json!({"external_id": "42", "identifier_hash": hash}),
        )
        .await;
    assert_ne!(stranger, user, "a different secret is a different person");
    let list = body(
        app.get("/api/v1/customer/conversations", &stranger_token)
            .await,
    )
    .await;
    assert_eq!(
        list["conversations"],
        json!([]),
        "none of the other's history"
    );
    // A website the admin gave the same secret is the same login.
    let shop = app.create_inbox("Shop").await;
    let shop = share_identity_secret(&app, &first, &shop).await;
    let hash = identity_hash(shop["hmac_secret"].as_str().unwrap(), "42");
    let (same, _) = app
        .contact_in(
            shop["widget_key"].as_str().unwrap(),
            json!({"external_id": "42", "identifier_hash": hash}),
        )
        .await;
    assert_eq!(same, user);
    // A secret too short to be one is refused.
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{}", other["id"].as_str().unwrap()),
            &app.admin_token,
            json!({"hmac_secret": "short"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
