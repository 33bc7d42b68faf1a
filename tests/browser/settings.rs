//! The team and settings pages in a real browser.

use crate::driver::Browser;
use crate::helpers::{spawn_app, ADMIN_EMAIL, ADMIN_PASSWORD};

/// An admin invites a colleague on a server that cannot send mail: the
/// page shows a link to copy; the colleague opens it in their own
/// browser, chooses a password and is in the workspace; the link is then
/// spent. The sign-in page offers "Forgot your password?", which says to
/// ask an admin when no mail can be sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_agent_sets_a_password_from_the_copied_link() {
    let app = spawn_app().await;
    let admin = Browser::start().await;
    admin.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    admin.goto(&format!("{}/settings/agents", app.base)).await;
    let form = admin.find("form.invite-form").await;
    form.find(fantoccini::Locator::Css("input[name=name]"))
        .await
        .unwrap()
        .send_keys("Lena Ortiz")
        .await
        .unwrap();
    form.find(fantoccini::Locator::Css("input[name=email]"))
        .await
        .unwrap()
        .send_keys("lena@example.com")
        .await
        .unwrap();
    admin
        .find("[data-role=invite]")
        .await
        .click()
        .await
        .unwrap();
    admin
        .find_text("[data-role=link-shown]", "could not be emailed")
        .await;
    admin
        .find_text("tr[data-agent-id] [data-role=invited]", "invited")
        .await;
    let link = admin
        .find("[data-role=link-url]")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(link.contains("/password/set?t="), "{link}");
    admin.snap("invite-link").await;

    let lena = Browser::start().await;
    lena.goto(&link).await;
    lena.find_text("h1", "Welcome to Natter, Lena Ortiz").await;
    lena.snap("invite-accept").await;
    lena.find("input[name=password]")
        .await
        .send_keys("lenas-own-password")
        .await
        .unwrap();
    lena.find("button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    lena.find("[data-role=no-inbox]").await;
    // Spent: the link now says so.
    lena.goto(&link).await;
    lena.find_text("[data-role=link-gone]", "used already")
        .await;
    // She signs in with it from then on; "Forgot your password?" is there.
    let fresh = Browser::start().await;
    fresh.goto(&format!("{}/login", app.base)).await;
    fresh
        .find("[data-role=forgot]")
        .await
        .click()
        .await
        .unwrap();
    fresh
        .find_text("[data-role=forgot-no-mail]", "Ask an admin")
        .await;
    fresh.snap("forgot-no-mail").await;
    fresh
        .sign_in(&app.base, "lena@example.com", "lenas-own-password")
        .await;
    fresh.find("[data-role=no-inbox]").await;
    // The admin's list no longer marks her invited.
    admin.goto(&format!("{}/settings/agents", app.base)).await;
    admin.find("tr[data-agent-id]").await;
    let invited = admin
        .client
        .find_all(fantoccini::Locator::Css("[data-role=invited]"))
        .await
        .unwrap();
    assert!(invited.is_empty());
    for b in [admin, lena, fresh] {
        b.close().await;
    }
}
