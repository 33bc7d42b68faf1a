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

/// An inbox's own page: the web inbox has the look of its messenger (a
/// colour picker whose presets, hex and preview follow each other, saved
/// with the form) and warns that a loopback base URL reaches nobody; an
/// SMS inbox shows only what applies to it, with the provider's base URL
/// folded under "Advanced".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_inbox_has_a_page_with_only_its_channels_fields() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/settings/inboxes", app.base)).await;
    b.snap("inbox-list").await;
    b.find(&format!("[data-inbox-id='{}'] a", app.inbox_id))
        .await
        .click()
        .await
        .unwrap();
    b.find_text("h1", "Website").await;
    b.find("[data-role=local-base-url]").await;
    let purple = "#7c3aed";
    b.find(&format!("[data-swatch='{purple}']"))
        .await
        .click()
        .await
        .unwrap();
    b.find_text("[data-role=accent-hex]", purple).await;
    let pressed = b
        .find(&format!("[data-swatch='{purple}']"))
        .await
        .attr("aria-pressed")
        .await
        .unwrap();
    assert_eq!(pressed.as_deref(), Some("true"));
    let preview = b
        .find("[data-role=accent-preview]")
        .await
        .attr("style")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        preview.contains("124, 58, 237") || preview.contains(purple),
        "{preview}"
    );
    b.snap("inbox-web").await;
    b.find("[data-role=inbox-general] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.find_text("[role=status]", "Saved.").await;
    // The messenger wears it.
    let theme = app
        .client
        .get(app.url(&format!("/m/{}/theme.css", app.widget_key)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(theme.contains(purple), "{theme}");
    // The picker shows the saved colour after the reload.
    let v = b
        .find("[data-role=accent]")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some(purple));
    assert!(b.overflowing().await.is_empty());

    // An SMS inbox, added from the list page.
    b.goto(&format!("{}/settings/inboxes", app.base)).await;
    b.find("details[data-channel=sms] summary")
        .await
        .click()
        .await
        .unwrap();
    let form = b.find("details[data-channel=sms] form").await;
    for (name, value) in [
        ("s.account_sid", "AC9"),
        ("s.auth_token", "secret-9"),
        ("s.from", "+15550100"),
    ] {
        form.find(fantoccini::Locator::Css(&format!("input[name='{name}']")))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    // The base URL field is folded away until asked for.
    let api_base = form
        .find(fantoccini::Locator::Css("input[name='s.api_base']"))
        .await
        .unwrap();
    assert!(!api_base.is_displayed().await.unwrap());
    form.find(fantoccini::Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find_text("[role=status]", "Inbox created.").await;
    b.find_text("h1", "SMS").await;
    b.find("[data-role=webhook-url]").await;
    for absent in [
        "input[name=greeting]",
        "input[name=accent_color]",
        "[data-role=snippet]",
    ] {
        let found = b
            .client
            .find_all(fantoccini::Locator::Css(absent))
            .await
            .unwrap();
        assert!(found.is_empty(), "{absent} on an SMS inbox");
    }
    b.find("[data-role=advanced] summary")
        .await
        .click()
        .await
        .unwrap();
    let shown = b
        .find("[data-role=advanced] input[name='s.api_base']")
        .await
        .is_displayed()
        .await
        .unwrap();
    assert!(shown);
    b.snap("inbox-sms").await;
    b.close().await;
}
