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

/// An admin subscribes a URL from the settings page: the secret is shown
/// once, and the deliveries it signs verify with it; a failed delivery
/// shows its answer and a Retry button that delivers it; Delete removes
/// the subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_made_in_settings_delivers_and_is_retried_from_its_log() {
    let app = spawn_app().await;
    let fake = crate::fakes::Fake::start().await;
    fake.json("/shop-hook", 200, serde_json::json!({}));
    fake.fail_next("/shop-hook", &[503]);
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/settings/webhooks", app.base)).await;
    b.find("[data-role=no-webhooks]").await;
    let form = b.find("form[data-role=new-webhook]").await;
    form.find(fantoccini::Locator::Css("input[name=url]"))
        .await
        .unwrap()
        .send_keys(&format!("{}/shop-hook", fake.url))
        .await
        .unwrap();
    // message.created is ticked already; add conversation.created.
    form.find(fantoccini::Locator::Css(
        "input[name=events][value='conversation.created']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    form.find(fantoccini::Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find_text("[data-role=webhook-secret]", "not shown again")
        .await;
    let secret = b
        .find("[data-role=secret-value]")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    b.snap("webhook-created").await;

    // A customer writes: both events arrive, signed with that secret (the
    // first try of one of them is refused with a 503).
    let (_, token) = app.contact().await;
    app.start_conversation(&token, "Hello shop").await;
    let got = fake
        .wait_for("/shop-hook", 2, std::time::Duration::from_secs(15))
        .await;
    for r in &got {
        assert!(crate::fakes::verify_standard_webhook(&secret, r), "{r:?}");
    }
    // The log shows the refused try with its answer, and Retry.
    b.goto(&format!("{}/settings/webhooks", app.base)).await;
    assert!(
        !b.client.source().await.unwrap().contains(&secret),
        "shown once"
    );
    b.find("tr[data-webhook-id] a").await.click().await.unwrap();
    let failed = b.find_text("tr.failed", "503").await;
    assert!(failed.text().await.unwrap().contains("answered 503"));
    b.find_text("tr.ok", "200").await;
    b.snap("webhook-deliveries").await;
    b.find("[data-role=retry-webhook]")
        .await
        .click()
        .await
        .unwrap();
    b.find_text("[role=status]", "Delivering it again").await;
    fake.wait_for("/shop-hook", 3, std::time::Duration::from_secs(15))
        .await;
    // Once logged, the event's newest row is a 200 and Retry is gone.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        b.client.refresh().await.unwrap();
        let retry = b
            .client
            .find_all(fantoccini::Locator::Css("[data-role=retry-webhook]"))
            .await
            .unwrap();
        let ok = b
            .client
            .find_all(fantoccini::Locator::Css("tr.ok"))
            .await
            .unwrap();
        if retry.is_empty() && ok.len() == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "retry never logged");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(b.overflowing().await.is_empty());

    // Delete.
    b.goto(&format!("{}/settings/webhooks", app.base)).await;
    b.find("[data-role=delete-webhook]")
        .await
        .click()
        .await
        .unwrap();
    b.find_text("[role=status]", "Saved.").await;
    b.find("[data-role=no-webhooks]").await;
    let listed = crate::helpers::body(app.get("/api/v1/webhooks", &app.admin_token).await).await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 0);
    b.close().await;
}

/// The header's availability control saves at once and holds across a
/// reload; the agents list shows each agent's dot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_is_set_in_the_header_and_kept_across_reloads() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let sel = b.find("[data-role=availability]").await;
    assert_eq!(sel.prop("value").await.unwrap().as_deref(), Some("online"));
    sel.select_by_value("busy").await.unwrap();
    // Saved once the control's state follows (after the server's 204).
    b.find("[data-role=availability][data-state=busy]").await;
    let me = crate::helpers::body(app.get("/api/v1/me", &app.admin_token).await).await;
    assert_eq!(me["availability"], "busy", "{me}");
    b.client.refresh().await.unwrap();
    let sel = b.find("[data-role=availability]").await;
    assert_eq!(sel.prop("value").await.unwrap().as_deref(), Some("busy"));
    b.goto(&format!("{}/settings/agents", app.base)).await;
    b.find("[data-availability=busy]").await;
    b.snap("availability").await;
    b.close().await;
}

/// Teams in settings: one is made with ticked agents, changed (an agent
/// taken out, renamed) and deleted, and the API agrees each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_are_made_and_changed_in_settings() {
    let app = spawn_app().await;
    let (ana, _) = app.create_agent("ana@example.com", "agent").await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/settings/teams", app.base)).await;
    b.find("[data-role=no-teams]").await;
    let form = b.find("form[data-role=new-team]").await;
    form.find(fantoccini::Locator::Css("input[name=name]"))
        .await
        .unwrap()
        .send_keys("Billing")
        .await
        .unwrap();
    form.find(fantoccini::Locator::Css(&format!(
        "input[name=agent_ids][value='{ana}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    form.find(fantoccini::Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find_text("[role=status]", "Saved.").await;
    let teams = crate::helpers::body(app.get("/api/v1/teams", &app.admin_token).await).await;
    assert_eq!(teams["teams"][0]["name"], "Billing");
    assert_eq!(teams["teams"][0]["agent_ids"], serde_json::json!([ana]));
    b.snap("teams").await;
    // Ana out, renamed.
    let team = b.find("form[data-role=team-form]").await;
    team.find(fantoccini::Locator::Css(&format!(
        "input[name=agent_ids][value='{ana}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let name = team
        .find(fantoccini::Locator::Css("input[name=name]"))
        .await
        .unwrap();
    name.clear().await.unwrap();
    name.send_keys("Payments").await.unwrap();
    team.find(fantoccini::Locator::Css("button.secondary[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find_text("[role=status]", "Saved.").await;
    let teams = crate::helpers::body(app.get("/api/v1/teams", &app.admin_token).await).await;
    assert_eq!(teams["teams"][0]["name"], "Payments");
    assert_eq!(teams["teams"][0]["agent_ids"], serde_json::json!([]));
    b.find("[data-role=delete-team]")
        .await
        .click()
        .await
        .unwrap();
    b.find("[data-role=no-teams]").await;
    let teams = crate::helpers::body(app.get("/api/v1/teams", &app.admin_token).await).await;
    assert!(teams["teams"].as_array().unwrap().is_empty());
    b.close().await;
}

/// Auto-assignment set on the inbox's page: "Balanced" saved there, and a
/// conversation a customer starts then arrives in the open workspace
/// already assigned to the online admin (live, without a reload); the
/// assignee picker says who is online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_set_on_the_inbox_page_hands_new_conversations_out_live() {
    let app = spawn_app().await;
    let me = crate::helpers::body(app.get("/api/v1/me", &app.admin_token).await).await;
    let admin = me["id"].as_str().unwrap().to_owned();
    app.add_member(&app.inbox_id, &admin).await;
    let (ana, _) = app.member_agent("ana@example.com").await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/settings/inboxes/{}", app.base, app.inbox_id))
        .await;
    let panel = b.find("[data-role=assignment]").await;
    panel
        .find(fantoccini::Locator::Css("[data-role=assignment-mode]"))
        .await
        .unwrap()
        .select_by_value("balanced")
        .await
        .unwrap();
    panel
        .find(fantoccini::Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find_text("[role=status]", "Saved.").await;
    b.find_text("[data-role=queued]", "Nothing waiting").await;
    b.client
        .execute(
            "document.querySelector('[data-role=members]') ?.scrollIntoView(); \
             document.querySelector('[data-role=assignment]').scrollIntoView({block: 'end'});",
            vec![],
        )
        .await
        .unwrap();
    b.snap("inbox-assignment").await;
    let inbox = crate::helpers::body(
        app.get(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
        )
        .await,
    )
    .await;
    assert_eq!(inbox["assignment"]["mode"], "balanced", "{inbox}");

    // The workspace is open (the admin's stream: online); ana has none.
    b.goto(&format!("{}/inbox", app.base)).await;
    b.find("[data-role=availability]").await;
    let (_, contact) = app.contact().await;
    let (id, _) = app.start_conversation(&contact, "Where is my order?").await;
    b.find(&format!("#row-{id}[data-assignee='{admin}']")).await;
    b.find(&format!("#row-{id} a")).await.click().await.unwrap();
    b.snap("assigned-live").await;
    let picker = b.find(&format!("#assignee-{id}")).await;
    assert_eq!(
        picker.prop("value").await.unwrap().as_deref(),
        Some(admin.as_str())
    );
    b.find_text(&format!("#assignee-{id} option[value='{ana}']"), "offline")
        .await;
    b.find_text(&format!("#assignee-{id} option[value='{admin}']"), "online")
        .await;
    b.close().await;
}

/// Business hours set on the inbox's page: today a holiday, so the
/// messenger says the team is away and when it is back; the first
/// message gets the out-of-office answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_hours_set_in_settings_show_in_the_messenger() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/settings/inboxes/{}", app.base, app.inbox_id))
        .await;
    let panel = b.find("[data-role=hours]").await;
    let find = |css: &'static str| {
        let panel = panel.clone();
        async move { panel.find(fantoccini::Locator::Css(css)).await.unwrap() }
    };
    find("[data-role=hours-on]").await.click().await.unwrap();
    find("[data-role=hours-zone]")
        .await
        .select_by_value("UTC")
        .await
        .unwrap();
    for day in ["sat", "sun"] {
        let field = b.find(&format!("[data-day={day}]")).await;
        field.clear().await.unwrap();
        field.send_keys("10:00-14:00").await.unwrap();
    }
    let today = chrono::Utc::now().date_naive();
    find("[data-role=holidays]")
        .await
        .send_keys(&today.format("%Y-%m-%d").to_string())
        .await
        .unwrap();
    find("[data-role=out-of-office]")
        .await
        .send_keys("We're closed today; we answer tomorrow.")
        .await
        .unwrap();
    find("button[type=submit]").await.click().await.unwrap();
    b.find_text("[role=status]", "Saved.").await;
    let inbox = crate::helpers::body(
        app.get(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
        )
        .await,
    )
    .await;
    assert_eq!(
        inbox["business_hours"]["week"]["mon"],
        serde_json::json!([["09:00", "17:00"]])
    );
    assert_eq!(
        inbox["business_hours"]["week"]["sat"],
        serde_json::json!([["10:00", "14:00"]])
    );
    b.client
        .execute(
            "document.querySelector('[data-role=hours]').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    b.snap("inbox-hours").await;

    let m = Browser::start().await;
    m.goto(&format!("{}/m/{}", app.base, app.widget_key)).await;
    m.find_text("[data-role=away-until]", "We're away right now. Back")
        .await;
    m.find_text("[data-role=away-until]", "(UTC)").await;
    m.find("textarea[name=body]")
        .await
        .send_keys("Is my order shipped?")
        .await
        .unwrap();
    m.find("[data-role=composer] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    m.find_text("li.msg[data-author-type=system]", "we answer tomorrow")
        .await;
    m.snap("messenger-away").await;
    m.close().await;
    b.close().await;
}

/// An admin backs up from the settings page: the backup is listed with
/// its size and time, downloads with the session (the archive's gzip
/// bytes), and is deleted from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_made_downloaded_and_deleted_in_settings() {
    let app = spawn_app().await;
    let (_, contact) = app.contact().await;
    app.start_conversation(&contact, "Hello, is my order on its way?")
        .await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/settings/backups", app.base)).await;
    b.find("[data-role=no-backups]").await;
    b.find_text("[data-role=backup-schedule]", "NATTER_BACKUP_EVERY")
        .await;
    b.find("form[data-role=new-backup] button")
        .await
        .click()
        .await
        .unwrap();
    b.find_text("[role=status]", "Saved.").await;
    let list = crate::helpers::body(app.get("/api/v1/admin/backups", &app.admin_token).await).await;
    let name = list["backups"][0]["name"].as_str().unwrap().to_owned();
    let row = b.find(&format!("tr[data-backup='{name}']")).await;
    let text = row.text().await.unwrap();
    assert!(text.contains("by hand") && text.contains("KB"), "{text}");
    b.snap("backups").await;
    // The link downloads with the page's session: gzip's magic bytes.
    let magic = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const a = document.querySelector('[data-role=download-backup]');
             fetch(a.href).then(r => r.arrayBuffer().then(buf => {
               const v = new Uint8Array(buf);
               done([r.status, v[0], v[1], buf.byteLength]);
             }));",
            vec![],
        )
        .await
        .unwrap();
    let bytes = list["backups"][0]["bytes"].as_u64().unwrap();
    assert_eq!(magic, serde_json::json!([200, 0x1f, 0x8b, bytes]));
    b.find("[data-role=delete-backup]")
        .await
        .click()
        .await
        .unwrap();
    b.find("[data-role=no-backups]").await;
    let list = crate::helpers::body(app.get("/api/v1/admin/backups", &app.admin_token).await).await;
    assert_eq!(list["backups"], serde_json::json!([]));
    b.close().await;
}
