//! Email confirmation in a real browser: the link opens a page that
//! changes nothing, and the browser's own post of its button (with the
//! Origin Chromium sends) confirms the address.

use std::time::Duration;

use crate::driver::Browser;
use crate::helpers::{spawn_app_with, TestApp};
use crate::mail_servers::SmtpSink;

async fn leave_email(app: &TestApp, token: &str, email: &str) {
    let r = app
        .client
        .post(app.url(&format!("/m/{}/email", app.widget_key)))
        .bearer_auth(token)
        .header("HX-Request", "true")
        .form(&[("email", email)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
}

fn text_of(raw: &[u8]) -> String {
    natter::channels::email::parse::parse(raw).unwrap().text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_page_confirms_only_when_its_button_is_pressed() {
    let sink = SmtpSink::start(false).await;
    let s = sink.outgoing("support@natter.test");
    let app = spawn_app_with(move |c| c.smtp = Some(s)).await;
    let (_, token) = app.contact().await;
    app.start_conversation(&token, "hello").await;
    leave_email(&app, &token, "dora@example.com").await;
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    let text = text_of(&mails[0].data);
    let start = text.find("http").unwrap();
    let link = text[start..].split_whitespace().next().unwrap().to_owned();

    let b = Browser::start().await;
    b.goto(&link).await;
    b.find("[data-role=email-confirm] form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.find("[data-role=email-confirmed]").await;
    b.close().await;

    // Confirmed: another device asking for the address now reaches the
    // person with the warning that confirming hands over their history.
    let (_, other) = app.contact().await;
    leave_email(&app, &other, "dora@example.com").await;
    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    assert!(
        text_of(&mails[1].data).contains("already confirmed"),
        "the browser's post confirmed the address"
    );
}
