//! The agent workspace in a real browser.

use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::Value;

use crate::driver::Browser;
use crate::helpers::{body, spawn_app, ADMIN_EMAIL, ADMIN_PASSWORD};

/// Polls the API (bounded) until `check` holds for the JSON it returns.
async fn eventually(
    app: &crate::helpers::TestApp,
    path: &str,
    token: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = body(app.get(path, token).await).await;
        if check(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never satisfied the check: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_works_a_conversation_end_to_end_in_the_browser() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // The header's actions look like buttons, not bare underlined links,
    // and a hidden one stays hidden.
    let header = b
        .client
        .execute(
            "return Array.from(document.querySelectorAll('.topnav a, .topnav button')).map(function (e) { var s = getComputedStyle(e); return [e.textContent.trim(), s.textDecorationLine, s.borderTopStyle, e.hidden ? s.display : 'shown']; });",
            vec![],
        )
        .await
        .unwrap();
    let header = header.as_array().cloned().unwrap_or_default();
    assert!(header.len() >= 2, "{header:?}");
    for item in &header {
        if item[3] == "shown" {
            assert_eq!(item[1], "none", "underlined: {item}");
            assert_eq!(item[2], "solid", "no button outline: {item}");
        } else {
            assert_eq!(item[3], "none", "a hidden action shows: {item}");
        }
    }

    // A contact starts a conversation over the API: it appears live.
    let (_, contact) = app.contact().await;
    let (conv, _) = app
        .start_conversation(&contact, "<script>alert(1)</script> Where is my order?")
        .await;
    let row = b.find(&format!("[data-conversation-id='{conv}']")).await;
    row.find(Locator::Css("a"))
        .await
        .expect("row link")
        .click()
        .await
        .expect("open");

    // The contact's text is shown as text, never run.
    let first = b
        .find_text(
            "[data-role=thread] [data-author-type=contact]",
            "Where is my order?",
        )
        .await;
    assert!(first
        .text()
        .await
        .unwrap()
        .contains("<script>alert(1)</script>"));
    assert!(b.client.get_alert_text().await.is_err(), "no alert dialog");

    // Reply with Enter: the contact receives it over the API.
    let reply = b.find("[data-role=composer] textarea[name=body]").await;
    reply.send_keys("Hello from the browser").await.unwrap();
    reply.send_keys(&Key::Enter.to_string()).await.unwrap();
    b.find_text(
        "[data-role=thread] [data-author-type=agent]",
        "Hello from the browser",
    )
    .await;
    eventually(
        &app,
        &format!("/api/v1/customer/conversations/{conv}/messages"),
        &contact,
        |v| {
            v["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["body"] == "Hello from the browser"))
        },
    )
    .await;

    // A private note: shown as internal to the agent, never to the contact.
    // Note mode is unmistakable: the box and its button say so.
    let send_label = || async {
        b.find("[data-role=composer] button[type=submit]")
            .await
            .text()
            .await
            .unwrap()
    };
    let noting = || async {
        b.find("[data-role=private-toggle]")
            .await
            .is_selected()
            .await
            .unwrap()
    };
    assert_eq!(send_label().await, "Send");
    b.find("[data-role=private-toggle]")
        .await
        .click()
        .await
        .unwrap();
    assert_eq!(send_label().await, "Add note");
    let reply = b.find("[data-role=composer] textarea[name=body]").await;
    assert!(reply
        .attr("placeholder")
        .await
        .unwrap()
        .unwrap_or_default()
        .starts_with("Private note"));
    assert!(b
        .find("[data-role=composer]")
        .await
        .attr("class")
        .await
        .unwrap()
        .unwrap_or_default()
        .contains("note-mode"));
    reply.send_keys("internal: refund approved").await.unwrap();
    reply.send_keys(&Key::Enter.to_string()).await.unwrap();
    let note = b
        .find_text("[data-role=thread] .msg.note", "internal: refund approved")
        .await;
    assert!(note
        .text()
        .await
        .unwrap()
        .to_lowercase()
        .contains("private note"));
    // After the note the composer is back to reply by itself, so the next
    // message reaches the contact without anyone unticking the box.
    // (The note's own answer, which resets it, may come a moment after
    // the note arrived on the page's stream.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while noting().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "note mode stayed on after the note"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(send_label().await, "Send");
    // Alt+N switches to a note and back.
    let reply = b.find("[data-role=composer] textarea[name=body]").await;
    reply.send_keys(&format!("{}n", Key::Alt)).await.unwrap();
    assert!(noting().await, "Alt+N starts a note");
    assert_eq!(send_label().await, "Add note");
    reply.send_keys(&format!("{}n", Key::Alt)).await.unwrap();
    assert!(!noting().await, "Alt+N goes back to reply");
    assert_eq!(reply.prop("value").await.unwrap().unwrap_or_default(), "");
    reply.send_keys("Anything else?").await.unwrap();
    reply.send_keys(&Key::Enter.to_string()).await.unwrap();
    let msgs = eventually(
        &app,
        &format!("/api/v1/customer/conversations/{conv}/messages"),
        &contact,
        |v| {
            v["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["body"] == "Anything else?"))
        },
    )
    .await;
    assert!(
        !msgs.to_string().contains("refund approved"),
        "the note never reaches the contact"
    );

    // Live from the contact's side too.
    app.contact_says(&contact, &conv, "No, thanks!").await;
    b.find_text(
        "[data-role=thread] [data-author-type=contact]",
        "No, thanks!",
    )
    .await;

    // Resolve with `e` (focus off the composer first).
    b.find("h1").await.click().await.unwrap();
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("e")
        .await
        .unwrap();
    eventually(
        &app,
        &format!("/api/v1/conversations/{conv}"),
        &app.admin_token,
        |v| v["status"] == "resolved",
    )
    .await;
    b.find_text(&format!("#status-{conv}"), "resolved").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_agents_are_sent_to_login_and_back() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let b = Browser::start().await;
    b.goto(&format!("{}/conversations/{conv}", app.base)).await;
    b.find("input[name=email]")
        .await
        .send_keys(ADMIN_EMAIL)
        .await
        .unwrap();
    b.find("input[name=password]")
        .await
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    b.find("form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.find("[data-role=thread]").await;
    let url = b.client.current_url().await.unwrap();
    assert!(
        url.path().ends_with(&format!("/conversations/{conv}")),
        "{url}"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reply_is_marked_failed_with_a_retry() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app.start_conversation(&contact, "hi").await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/conversations/{conv}", app.base)).await;
    let reply = b.find("[data-role=composer] textarea[name=body]").await;
    // Longer than the 10,000 characters a message may have.
    b.client
        .execute(
            "document.querySelector('[data-role=reply]').value = 'x'.repeat(10001);",
            vec![],
        )
        .await
        .unwrap();
    reply.send_keys(&Key::Enter.to_string()).await.unwrap();
    let failed = b.find("[data-role=thread] .msg.failed").await;
    assert!(failed.text().await.unwrap().contains("Not sent"));
    let retry = failed.find(Locator::Css("button")).await.unwrap();
    assert_eq!(retry.text().await.unwrap(), "Retry");
    assert_eq!(
        app.agent_messages(&app.admin_token, &conv, "").await.len(),
        1,
        "nothing was stored"
    );
    b.close().await;
}

/// A reply in an SMS conversation: the ticks follow the provider live, and
/// a failed delivery offers Retry, which sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_replies_show_ticks_live_and_retry_after_a_failure() {
    let app = spawn_app().await;
    let fake = crate::fakes::Fake::start().await;
    fake.json("/Messages.json", 201, serde_json::json!({"sid": "SMb1"}));
    let r = app
        .post(
            "/api/v1/inboxes",
            &app.admin_token,
            serde_json::json!({"name": "Texts", "channel": "sms", "settings": {"account_sid": "AC1", "auth_token": "tok", "from": "+15550000", "api_base": fake.url}}),
        )
        .await;
    let inbox = body(r).await["id"].as_str().unwrap().to_owned();
    let params: Vec<(String, String)> = [
        ("MessageSid", "SMin"),
        ("From", "+15551112222"),
        ("Body", "texting"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let path = format!("/hooks/twilio/{inbox}");
    let sig = natter::channels::twilio::signature("tok", &app.url(&path), &params);
    app.client
        .post(app.url(&path))
        .header("x-twilio-signature", sig)
        .form(&params)
        .send()
        .await
        .unwrap();
    let convs = eventually(
        &app,
        &format!("/api/v1/conversations?inbox={inbox}"),
        &app.admin_token,
        |v| !v["conversations"].as_array().unwrap().is_empty(),
    )
    .await;
    let conv = convs["conversations"][0]["id"].as_str().unwrap().to_owned();

    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/conversations/{conv}", app.base)).await;
    b.find("[data-role=thread] [data-channel=sms]").await;
    fake.fail_next("/Messages.json", &[400]);
    let reply = b.find("[data-role=composer] textarea[name=body]").await;
    reply.send_keys("On its way").await.unwrap();
    reply.send_keys(&Key::Enter.to_string()).await.unwrap();
    // The provider refuses it: the page shows why and offers Retry.
    let retry = b
        .find("[data-delivery=failed] ~ [data-role=retry-delivery]")
        .await;
    retry.click().await.unwrap();
    b.find("[data-role=thread] [data-delivery=sent]").await;
    let sent: Vec<_> = fake
        .requests("/Messages.json")
        .into_iter()
        .filter(|r| r.status == 201)
        .collect();
    assert_eq!(sent.len(), 1, "delivered once after the retry");
    b.close().await;
}
