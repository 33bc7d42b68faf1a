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

/// `natter_sse_connections` as `/metrics` shows it now.
async fn open_streams(app: &crate::helpers::TestApp) -> u64 {
    app.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("natter_sse_connections "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// Polls (bounded) until the server holds exactly `n` event streams.
async fn streams_become(app: &crate::helpers::TestApp, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let open = open_streams(app).await;
        if open == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} event streams open, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pages left in the back/forward cache used to keep their event streams
/// open, and after a few clicks the browser's six connections per host
/// were gone and the next page never loaded. A page now closes its stream
/// when it is hidden and reopens it, resuming after the last event it saw,
/// when it is shown again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_through_twenty_conversations_in_one_tab_never_stalls() {
    // Keep-alive comments each second: how the server finds the streams of
    // pages that are gone.
    let app = crate::helpers::spawn_app_with(|c| c.sse_keepalive_secs = 1).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (_, contact) = app.contact().await;
        let (id, _) = app
            .start_conversation(&contact, &format!("question number {i}"))
            .await;
        ids.push((id, contact));
    }
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for (n, (id, _)) in ids.iter().enumerate() {
        b.find(&format!("#row-{id} a")).await.click().await.unwrap();
        b.find(&format!(
            "section.conversation-pane[data-conversation-id='{id}']"
        ))
        .await;
        // Wait for this page's stream (its first comment) before leaving it.
        b.find(".workspace[data-live]").await;
        if n == 18 {
            // So the test knows this page comes back from the cache.
            b.client
                .execute(
                    "window.addEventListener('pageshow', function (e) { if (e.persisted) document.body.dataset.fromCache = '1'; });",
                    vec![],
                )
                .await
                .unwrap();
        }
    }
    // One tab, one stream: the pages behind it hold none.
    streams_become(&app, 1).await;

    // Back into the cache's pages: each one shown again is live again, and
    // what arrived while it was hidden is on it.
    let (last_id, _) = &ids[19];
    let (before_id, before_contact) = &ids[18];
    b.client.back().await.unwrap();
    b.find(&format!(
        "section.conversation-pane[data-conversation-id='{before_id}']"
    ))
    .await;
    b.find(".workspace[data-live]").await;
    let from_cache = b
        .client
        .execute("return document.body.dataset.fromCache || '';", vec![])
        .await
        .unwrap();
    assert_eq!(from_cache, "1", "the page was not restored from the cache");
    streams_become(&app, 1).await;
    app.contact_says(before_contact, before_id, "said while you looked away")
        .await;
    b.find_text("[data-role=thread]", "said while you looked away")
        .await;
    b.client.forward().await.unwrap();
    b.find(&format!(
        "section.conversation-pane[data-conversation-id='{last_id}']"
    ))
    .await;
    streams_become(&app, 1).await;
    // The row of the conversation written to while this page was hidden
    // moved up with its new text: the page caught up on resume.
    b.find_text(&format!("#row-{before_id}"), "said while you looked away")
        .await;
    b.close().await;
}

/// Records every console error and htmx error event of the page from now
/// on (read back with [`page_errors`]).
async fn watch_errors(b: &Browser) {
    b.client
        .execute(
            "window.__errors = []; var e = console.error; console.error = function () { window.__errors.push(Array.prototype.slice.call(arguments).map(String).join(' ')); return e.apply(console, arguments); }; document.body.addEventListener('htmx:oobErrorNoTarget', function (ev) { window.__errors.push('oobErrorNoTarget ' + ((ev.detail && ev.detail.content && ev.detail.content.outerHTML) || '')); });",
            vec![],
        )
        .await
        .unwrap();
}

async fn page_errors(b: &Browser) -> Vec<String> {
    let v = b
        .client
        .execute("return window.__errors || ['no watcher'];", vec![])
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// The ids of the list's rows, top first.
async fn row_order(b: &Browser) -> Vec<String> {
    let v = b
        .client
        .execute(
            "return Array.from(document.querySelectorAll('#conversation-list > li.row')).map(function (r) { return r.dataset.conversationId; });",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// Waits (bounded) until the status tab `label` shows `count`.
async fn tab_count_becomes(b: &Browser, label: &str, count: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = b
            .client
            .execute(
                "return Array.from(document.querySelectorAll('#status-tabs a')).map(function (a) { return a.textContent.replace(/\\s+/g, ' ').trim(); });",
                vec![],
            )
            .await
            .unwrap();
        let tabs: Vec<String> = serde_json::from_value(v).unwrap();
        if tabs.iter().any(|t| t == &format!("{label} {count}")) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tab {label} never showed {count}: {tabs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The list keeps up by itself: tab counts change live, opening an unread
/// row leaves it where it is, each row says who wrote last and whether the
/// customer waits, and no live event names an element the page lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_counts_and_rows_change_live_without_errors() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.find(".workspace[data-live]").await;
    watch_errors(&b).await;
    tab_count_becomes(&b, "Open", "0").await;

    // The first conversation arrives: "Open 1" at once.
    let (_, first_contact) = app.contact().await;
    let (first, _) = app
        .start_conversation(&first_contact, "first question")
        .await;
    b.find(&format!("#row-{first}")).await;
    tab_count_becomes(&b, "Open", "1").await;
    let (_, second_contact) = app.contact().await;
    let (second, _) = app
        .start_conversation(&second_contact, "second question")
        .await;
    let (_, third_contact) = app.contact().await;
    let (third, _) = app
        .start_conversation(&third_contact, "third question")
        .await;
    b.find(&format!("#row-{third}")).await;
    tab_count_becomes(&b, "Open", "3").await;
    assert_eq!(
        row_order(&b).await,
        vec![third.clone(), second.clone(), first.clone()]
    );

    // Who wrote last, and who waits: an agent's reply says "You:" and ends
    // the wait; the customer's rows say they wait.
    let admin = app.admin_token.clone();
    app.agent_says(&admin, &second, "an answer", false).await;
    b.find_text(&format!("#row-{second} .preview"), "You: an answer")
        .await;
    let waiting = b
        .client
        .execute(
            "return Array.from(document.querySelectorAll('#conversation-list > li.row')).map(function (r) { return [r.dataset.conversationId, !!r.querySelector('[data-role=waiting]')]; });",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        waiting,
        serde_json::json!([[second, false], [third, true], [first, true]])
    );
    b.snap("inbox-rows-live").await;

    // Snoozing moves the counts live.
    let r = app
        .patch(
            &format!("/api/v1/conversations/{third}"),
            &admin,
            serde_json::json!({"status": "snoozed", "snoozed_until": "2099-01-01T09:00:00Z"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    tab_count_becomes(&b, "Snoozed", "1").await;
    tab_count_becomes(&b, "Open", "2").await;
    b.client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&format!(
            "#conversation-list:not(:has(#row-{third}))"
        )))
        .await
        .unwrap();

    // Opening the unread row at the bottom leaves it at the bottom, also
    // once the read reaches the list.
    assert_eq!(row_order(&b).await, vec![second.clone(), first.clone()]);
    b.find(&format!("#row-{first} a"))
        .await
        .click()
        .await
        .unwrap();
    b.find(&format!(
        "section.conversation-pane[data-conversation-id='{first}']"
    ))
    .await;
    b.find(".workspace[data-live]").await;
    watch_errors(&b).await;
    b.client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&format!("#row-{first}:not(.unread)")))
        .await
        .unwrap();
    assert_eq!(row_order(&b).await, vec![second.clone(), first.clone()]);

    // Live events on the open conversation and on others: no errors.
    app.contact_says(&first_contact, &first, "more from the first")
        .await;
    b.find_text("[data-role=thread]", "more from the first")
        .await;
    app.contact_says(&second_contact, &second, "more from the second")
        .await;
    b.find_text(&format!("#row-{second} .preview"), "more from the second")
        .await;
    app.agent_says(&admin, &first, "reply in the open one", false)
        .await;
    b.find_text("[data-role=thread]", "reply in the open one")
        .await;
    b.snap("inbox-open-after-live").await;
    let errors = page_errors(&b).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    b.close().await;
}

/// An agent abroad reads every time in their own zone: message times,
/// "Snoozed until", and the tooltips; none is raw RFC 3339.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_show_in_the_viewers_zone() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, first) = app.start_conversation(&contact, "what time is it?").await;
    let admin = app.admin_token.clone();
    let r = app
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            &admin,
            serde_json::json!({"status": "snoozed", "snoozed_until": "2099-01-01T09:00:00Z"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    // India: UTC+05:30 all year, so a UTC clock can never pass for it.
    let b = Browser::in_zone("Asia/Kolkata").await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/conversations/{conv}", app.base)).await;
    b.find(&format!(
        "section.conversation-pane[data-conversation-id='{conv}']"
    ))
    .await;
    b.assert_times_local().await;
    let created = chrono::DateTime::parse_from_rfc3339(first["created_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap());
    let want = created.format("%-I:%M %p").to_string();
    let shown = |s: String| s.replace(['\u{202f}', '\u{a0}'], " ");
    let msg_time = shown(
        b.find("[data-role=thread] .msg time")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(msg_time, want, "the message's time in Kolkata");
    let until = shown(
        b.find_text(".controls .hint", "Snoozed until")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(
        until.contains("2099") && until.contains("2:30 PM"),
        "{until}"
    );
    b.snap("conversation-in-kolkata").await;

    // The agent had no zone: the browser's became theirs (Chromium's ICU
    // still says Calcutta, an alias the tz database keeps).
    eventually(&app, "/api/v1/me", &admin, |me| {
        me["timezone"] == "Asia/Kolkata" || me["timezone"] == "Asia/Calcutta"
    })
    .await;
    // "Tomorrow" is 09:00 tomorrow on the agent's clock.
    b.goto(&format!("{}/conversations/{conv}", app.base)).await;
    b.find(".snooze select[name=snooze]")
        .await
        .select_by_value("tomorrow")
        .await
        .unwrap();
    b.find(".snooze button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let kolkata = chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
    let tomorrow = (chrono::Utc::now().with_timezone(&kolkata) + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_local_timezone(kolkata)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let want_until = tomorrow.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    eventually(
        &app,
        &format!("/api/v1/conversations/{conv}"),
        &admin,
        |c| c["snoozed_until"] == want_until.as_str(),
    )
    .await;

    // A zone chosen on the profile wins over the browser's: Auckland.
    b.goto(&format!("{}/settings/profile", app.base)).await;
    b.find("select[name=timezone]")
        .await
        .select_by_value("Pacific/Auckland")
        .await
        .unwrap();
    b.find("form[action='/settings/profile'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    eventually(&app, "/api/v1/me", &admin, |me| {
        me["timezone"] == "Pacific/Auckland"
    })
    .await;
    b.goto(&format!("{}/conversations/{conv}", app.base)).await;
    b.assert_times_local().await;
    let auckland: chrono_tz::Tz = "Pacific/Auckland".parse().unwrap();
    let want = created
        .with_timezone(&auckland)
        .format("%-I:%M %p")
        .to_string();
    let msg_time = shown(
        b.find("[data-role=thread] .msg time")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(msg_time, want, "the message's time in the agent's Auckland");
    b.close().await;
}

/// The workspace on a 390 px phone: nothing passes the screen's edge, on
/// the list and in a conversation, and every control of the conversation
/// can be reached (in view, or by scrolling the pane that holds it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_fits_a_phone() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    let (conv, _) = app
        .start_conversation(
            &contact,
            "Hello from a phone-sized screen, with a long line of text",
        )
        .await;
    app.agent_says(&app.admin_token, &conv, "A reply", false)
        .await;
    let b = Browser::start().await;
    b.resize(390, 844).await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.find(&format!("#row-{conv}")).await;
    b.snap("phone-list").await;
    let out = b.overflowing().await;
    assert!(out.is_empty(), "sticks out on the list: {out:?}");
    b.find(&format!("#row-{conv} a"))
        .await
        .click()
        .await
        .unwrap();
    b.find(&format!(
        "section.conversation-pane[data-conversation-id='{conv}']"
    ))
    .await;
    b.snap("phone-conversation").await;
    let out = b.overflowing().await;
    assert!(out.is_empty(), "sticks out in a conversation: {out:?}");
    // The controls an agent needs are all on the page ...
    for css in [
        ".conv-header .back",
        "[data-role=composer] button[type=submit]",
        "[data-role=private-toggle]",
        ".attach .attach-button",
        "[data-action=resolve]",
        "[data-action=assign-me]",
        ".snooze select",
        ".labels input",
    ] {
        let shown = b
            .client
            .execute(
                "var e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';",
                vec![serde_json::json!(css)],
            )
            .await
            .unwrap();
        assert_eq!(
            shown,
            serde_json::json!(true),
            "{css} is not shown on a phone"
        );
    }
    // ... and each, scrolled into view, is inside the screen and is the
    // element found at its centre (nothing covers it).
    let v = b
        .client
        .execute(
            r#"
var W = document.documentElement.clientWidth, H = document.documentElement.clientHeight, bad = [];
document.querySelectorAll('button, select, textarea, input:not([type=hidden]), a[href]').forEach(function (el) {
  if (el.closest('[hidden], template, .sr-only') || getComputedStyle(el).display === 'none' || getComputedStyle(el).visibility === 'hidden') return;
  if (el.getClientRects().length === 0) return;
  el.scrollIntoView({ block: 'center', inline: 'center' });
  var r = el.getBoundingClientRect();
  var x = Math.min(Math.max(r.left + r.width / 2, 0), W - 1), y = Math.min(Math.max(r.top + r.height / 2, 0), H - 1);
  var at = document.elementFromPoint(x, y);
  var name = el.tagName.toLowerCase() + (el.name ? '[name=' + el.name + ']' : '') + ' "' + (el.textContent || el.value || el.placeholder || '').trim().slice(0, 30) + '"';
  if (r.left < -1 || r.right > W + 1 || r.top < -1 || r.bottom > H + 1) bad.push(name + ' outside the screen');
  else if (!at || (at !== el && !el.contains(at) && !(el.labels && Array.prototype.some.call(el.labels, function (l) { return l.contains(at); })))) bad.push(name + ' covered by ' + (at ? at.tagName.toLowerCase() + '.' + at.className : 'nothing'));
});
return bad;
"#,
            vec![],
        )
        .await
        .unwrap();
    let bad: Vec<String> = serde_json::from_value(v).unwrap();
    assert!(bad.is_empty(), "controls out of reach on a phone: {bad:?}");
    b.close().await;
}

/// Thirty at once: at least 12 rows fit a 768 px high laptop screen, and
/// "Resolve & next" (a button, and Shift+E) resolves the open conversation
/// and opens the one below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dense_list_and_resolve_and_next() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..14 {
        let (_, contact) = app.contact().await;
        let (id, _) = app
            .start_conversation(
                &contact,
                &format!("Customer question number {i}, with some detail"),
            )
            .await;
        ids.push(id);
    }
    ids.reverse(); // the list shows the newest first
    let b = Browser::start().await;
    // A 768 px screen leaves a browser about 660 px for the page.
    b.resize(1366, 768).await;
    let inner = b
        .client
        .execute("return window.innerHeight;", vec![])
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    b.resize(1366, u32::try_from(768 + 660 - inner).unwrap())
        .await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.find(&format!("#row-{}", ids[13])).await;
    let fit = b
        .client
        .execute(
            "var pane = document.querySelector('.list-pane').getBoundingClientRect(); var bottom = Math.min(pane.bottom, window.innerHeight); return [window.innerHeight, Array.from(document.querySelectorAll('#conversation-list > li.row')).filter(function (r) { return r.getBoundingClientRect().bottom <= bottom + 1; }).length];",
            vec![],
        )
        .await
        .unwrap();
    b.snap("dense-list").await;
    assert_eq!(fit[0], 660, "{fit}");
    assert!(fit[1].as_u64().unwrap() >= 12, "rows in view: {fit}");

    // Shift+E on the top conversation: resolved, and the next one is open.
    b.find(&format!("#row-{} a", ids[0]))
        .await
        .click()
        .await
        .unwrap();
    b.find(&format!(
        "section.conversation-pane[data-conversation-id='{}']",
        ids[0]
    ))
    .await;
    b.find(".workspace[data-live]").await;
    b.client
        .execute(
            "document.activeElement && document.activeElement.blur();",
            vec![],
        )
        .await
        .unwrap();
    b.find("body")
        .await
        .send_keys(&format!("{}e", Key::Shift))
        .await
        .unwrap();

    b.find(&format!(
        "section.conversation-pane[data-conversation-id='{}']",
        ids[1]
    ))
    .await;
    let admin = app.admin_token.clone();
    eventually(
        &app,
        &format!("/api/v1/conversations/{}", ids[0]),
        &admin,
        |c| c["status"] == "resolved",
    )
    .await;
    // The button does the same.
    b.find("[data-action=resolve-next]")
        .await
        .click()
        .await
        .unwrap();
    b.find(&format!(
        "section.conversation-pane[data-conversation-id='{}']",
        ids[2]
    ))
    .await;
    eventually(
        &app,
        &format!("/api/v1/conversations/{}", ids[1]),
        &admin,
        |c| c["status"] == "resolved",
    )
    .await;
    b.close().await;
}

/// Bulk actions: tick rows, then resolve, assign or label them all at once;
/// the rows follow live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_resolve_assign_and_label_from_the_list() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let (_, contact) = app.contact().await;
        let (id, _) = app
            .start_conversation(&contact, &format!("bulk question {i}"))
            .await;
        ids.push(id);
    }
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.find(".workspace[data-live]").await;
    // The bar shows only once a row is ticked.
    let bar_shown = |b: &Browser| {
        let c = b.client.clone();
        async move {
            c.execute(
                "return getComputedStyle(document.querySelector('[data-role=bulk]')).display !== 'none';",
                vec![],
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(bar_shown(&b).await, serde_json::json!(false));
    for id in &ids[..2] {
        b.find(&format!("#row-{id} .pick"))
            .await
            .click()
            .await
            .unwrap();
    }
    assert_eq!(bar_shown(&b).await, serde_json::json!(true));
    b.find_text("[data-role=bulk-count]", "2 selected").await;
    b.snap("bulk-bar").await;
    b.find("[data-role=bulk-resolve]")
        .await
        .click()
        .await
        .unwrap();
    let admin = app.admin_token.clone();
    for id in &ids[..2] {
        eventually(&app, &format!("/api/v1/conversations/{id}"), &admin, |c| {
            c["status"] == "resolved"
        })
        .await;
        b.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(&format!(
                "#conversation-list:not(:has(#row-{id}))"
            )))
            .await
            .unwrap();
    }
    tab_count_becomes(&b, "Open", "2").await;
    // Assign and label the other two. A row drawn again live (a note
    // arrives) keeps its tick.
    for id in &ids[2..] {
        b.find(&format!("#row-{id} .pick"))
            .await
            .click()
            .await
            .unwrap();
    }
    app.agent_says(&admin, &ids[2], "a note while ticked", true)
        .await;
    b.find_text(&format!("#row-{} .preview", ids[2]), "a note while ticked")
        .await;
    b.find(&format!("#row-{} .pick:checked", ids[2])).await;
    b.find_text("[data-role=bulk-count]", "2 selected").await;
    b.find("[data-role=bulk-assign]")
        .await
        .click()
        .await
        .unwrap();
    let me = body(app.get("/api/v1/me", &admin).await).await;
    for id in &ids[2..] {
        eventually(&app, &format!("/api/v1/conversations/{id}"), &admin, |c| {
            c["assignee_id"] == me["id"]
        })
        .await;
    }
    // An action clears the ticks; tick them again to label them.
    b.client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#conversation-list:not(:has(.pick:checked))"))
        .await
        .unwrap();
    for id in &ids[2..] {
        b.find(&format!("#row-{id} .pick"))
            .await
            .click()
            .await
            .unwrap();
    }
    b.find("[data-role=bulk] input[name=label]")
        .await
        .send_keys("vip")
        .await
        .unwrap();
    b.find("[data-role=bulk-label]")
        .await
        .click()
        .await
        .unwrap();
    for id in &ids[2..] {
        eventually(&app, &format!("/api/v1/conversations/{id}"), &admin, |c| {
            c["labels"] == serde_json::json!(["vip"])
        })
        .await;
    }
    b.close().await;
}

/// A new agent in no inbox sees who can add them (a real browser, so the
/// empty state is looked at as a page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_agent_in_no_inbox_sees_an_empty_state() {
    let app = spawn_app().await;
    app.create_agent("newbie@example.com", "agent").await;
    let b = Browser::start().await;
    b.sign_in(&app.base, "newbie@example.com", "agent-password")
        .await;
    b.find_text("[data-role=no-inbox]", "Ask Admin to add you")
        .await;
    b.snap("no-inbox").await;
    b.close().await;
}

/// Priority from the conversation's controls: the row gets its badge live,
/// and the "Priority" order puts it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_is_set_from_the_controls_and_sorts_the_list() {
    let app = spawn_app().await;
    let (_, a) = app.contact().await;
    let (urgent, _) = app.start_conversation(&a, "My order never came").await;
    let (_, b_token) = app.contact().await;
    let (later, _) = app.start_conversation(&b_token, "Just a question").await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/conversations/{urgent}", app.base))
        .await;
    b.find("[data-role=priority]")
        .await
        .select_by_value("urgent")
        .await
        .unwrap();
    b.find(&format!("#row-{urgent} [data-priority=urgent]"))
        .await;
    b.snap("priority").await;
    let c = crate::helpers::body(
        app.get(&format!("/api/v1/conversations/{urgent}"), &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(c["priority"], "urgent");
    b.goto(&format!("{}/inbox?sort=priority", app.base)).await;
    let first = b
        .find("li.row")
        .await
        .attr("data-conversation-id")
        .await
        .unwrap();
    assert_eq!(
        first.as_deref(),
        Some(urgent.as_str()),
        "urgent first, not {later}"
    );
    b.close().await;
}

/// An inbox with an SLA: the row and the thread show the countdown of a
/// conversation waiting for its first reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sla_countdown_shows_in_the_row_and_the_thread() {
    let app = spawn_app().await;
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
            serde_json::json!({"sla": {"first_response_minutes": 30}}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/inbox", app.base)).await;
    b.find("[data-role=availability]").await;
    let (_, contact) = app.contact().await;
    let (id, _) = app
        .start_conversation(&contact, "Can I change my order?")
        .await;
    // Live: the new row carries its countdown.
    b.find_text(&format!("#row-{id} [data-role=sla][data-sla=ok]"), "left")
        .await;
    b.find(&format!("#row-{id} a")).await.click().await.unwrap();
    b.find_text(".sla-line", "First response due").await;
    b.snap("sla-countdown").await;
    // Between updates the page counts down by itself: moved two minutes
    // past its deadline, the row's badge says it was missed.
    b.client
        .execute(
            &format!(
                "var e = document.querySelector('#row-{id} [data-role=sla]');\
                 e.dataset.due = String(Date.now() - 125000);\
                 e.dataset.warn = String(Date.now() - 300000);\
                 document.dispatchEvent(new Event('natter:tick'));"
            ),
            vec![],
        )
        .await
        .unwrap();
    b.find_text(
        &format!("#row-{id} [data-role=sla][data-sla=breached].sla-breached"),
        "missed 2m ago",
    )
    .await;
    b.close().await;
}

/// The workspace warns its agent when an SLA deadline nears and again
/// when it is missed (the live region, and a desktop notification where
/// allowed), with the server's clock moved by the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_warns_before_an_sla_deadline_and_when_it_is_missed() {
    let clock = natter::service::notify::Clock::manual();
    let c = clock.clone();
    let app = crate::helpers::spawn_app_with(move |cfg| cfg.clock = c).await;
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
            serde_json::json!({"sla": {"first_response_minutes": 10}}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/inbox", app.base)).await;
    b.find("[data-role=availability]").await;
    let (_, contact) = app.contact().await;
    let (id, _) = app.start_conversation(&contact, "Is my order late?").await;
    b.find(&format!("#row-{id} [data-role=sla]")).await;
    clock.advance(Duration::from_secs(8 * 60 + 30)).await;
    b.find_text("#live", "SLA deadline near: First response is due soon")
        .await;
    clock.advance(Duration::from_secs(2 * 60)).await;
    b.find_text("#live", "SLA missed: First response is overdue")
        .await;
    b.close().await;
}
