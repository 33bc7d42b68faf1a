//! The customer side in a real browser: the widget on another site, the
//! messenger, resume links, attachments and the no-JavaScript flow.

use fantoccini::key::Key;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::driver::Browser;
use crate::helpers::{spawn_app, ADMIN_EMAIL, ADMIN_PASSWORD};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

/// A host site on another origin (`localhost` rather than `127.0.0.1`, so
/// another site too) with its own strict CSP that allows only natter's
/// script and frame.
async fn host_site(natter_base: &str, widget_key: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = format!(
        "<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1><p>Buy things.</p><script src=\"{natter_base}/widget.js\" data-key=\"{widget_key}\" defer></script></body></html>"
    );
    let csp =
        format!("default-src 'self'; script-src 'self' {natter_base}; frame-src {natter_base}");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                break;
            };
            let (page, csp) = (page.clone(), csp.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Security-Policy: {csp}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://localhost:{port}/")
}

async fn panel_visible(b: &Browser) -> bool {
    let v = b
        .client
        .execute("var p = document.querySelector('[data-natter-panel]'); return !!p && p.style.display !== 'none';", vec![])
        .await
        .unwrap();
    v.as_bool().unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_writes_from_the_widget_on_another_site_and_continues_on_a_second_device() {
    let app = spawn_app().await;
    let host = host_site(&app.base, &app.widget_key).await;
    let b = Browser::start().await;
    b.goto(&host).await;
    b.find("[data-natter-launcher]")
        .await
        .click()
        .await
        .unwrap();
    assert!(panel_visible(&b).await);
    let frame = b.find("iframe[data-natter-frame]").await;
    frame.enter_frame().await.unwrap();

    let text = b.find("[data-role=composer] textarea[name=body]").await;
    text.send_keys("Hi, is my parcel on its way?")
        .await
        .unwrap();
    text.send_keys(&Key::Enter.to_string()).await.unwrap();
    b.find_text(
        "[data-role=thread] [data-author-type=contact]",
        "is my parcel on its way",
    )
    .await;
    let conv = b
        .find(".m-conversation[data-conversation-id]")
        .await
        .attr("data-conversation-id")
        .await
        .unwrap()
        .unwrap();

    // An agent replies over the API: it appears live in the widget.
    app.agent_says(&app.admin_token, &conv, "Yes, it arrives tomorrow.", false)
        .await;
    b.find_text(
        "[data-role=thread] [data-author-type=agent]",
        "arrives tomorrow",
    )
    .await;
    // A private note never shows.
    app.agent_says(&app.admin_token, &conv, "internal: VIP", true)
        .await;
    app.agent_says(&app.admin_token, &conv, "Anything else?", false)
        .await;
    b.find_text(
        "[data-role=thread] [data-author-type=agent]",
        "Anything else?",
    )
    .await;
    let thread = b.find("[data-role=thread]").await.text().await.unwrap();
    assert!(!thread.contains("internal: VIP"));

    // Continue on another device: a link and a QR code.
    b.find("[data-role=back]").await.click().await.unwrap();
    b.find("[data-role=resume-link]")
        .await
        .click()
        .await
        .unwrap();
    b.find("[data-role=resume-qr] svg").await;
    let url = b
        .find("[data-role=resume-url]")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();

    // It survives a navigation of the host site: still open after a reload.
    b.client.enter_parent_frame().await.unwrap();
    b.client.refresh().await.unwrap();
    b.find("[data-natter-launcher]").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !panel_visible(&b).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the widget did not reopen after navigation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The JavaScript API closes and opens the widget.
    b.client.execute("Natter.close()", vec![]).await.unwrap();
    assert!(!panel_visible(&b).await);
    b.client.execute("Natter.open()", vec![]).await.unwrap();
    assert!(panel_visible(&b).await);

    // Closed, a reply raises the unread badge and the `unread` event.
    b.client
        .execute("window.__unread = []; Natter.on('unread', function (n) { window.__unread.push(n); }); Natter.close();", vec![])
        .await
        .unwrap();
    app.agent_says(
        &app.admin_token,
        &conv,
        "One more thing: tracking link sent.",
        false,
    )
    .await;
    b.find_text("[data-natter-unread]", "1").await;
    let events = b
        .client
        .execute("return window.__unread;", vec![])
        .await
        .unwrap();
    assert!(
        events.as_array().is_some_and(|e| e.iter().any(|n| n == 1)),
        "{events}"
    );
    b.find("[data-natter-launcher]")
        .await
        .click()
        .await
        .unwrap();
    assert!(panel_visible(&b).await);

    // The "phone": a separate browser profile opens the link once.
    let phone = Browser::start().await;
    phone.goto(&url).await;
    phone
        .find("[data-role=resume-continue]")
        .await
        .click()
        .await
        .unwrap();
    // It lands in the open conversation, with its composer.
    phone
        .find(&format!(".m-conversation[data-conversation-id='{conv}']"))
        .await;
    phone.find("[data-role=composer] textarea[name=body]").await;
    phone
        .find_text(
            "[data-role=thread] [data-author-type=contact]",
            "is my parcel on its way",
        )
        .await;
    phone
        .find_text(
            "[data-role=thread] [data-author-type=agent]",
            "Anything else?",
        )
        .await;
    // It works once.
    phone.goto(&url).await;
    phone
        .find("[data-role=resume-continue]")
        .await
        .click()
        .await
        .unwrap();
    phone
        .find_text("[role=alert]", "expired or was already used")
        .await;
    phone.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_image_shows_inline_in_the_messenger_and_the_workspace() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("photo.png");
    std::fs::write(&png, PNG).unwrap();
    let b = Browser::start().await;
    b.goto(&format!("{}/m/{}", app.base, app.widget_key)).await;
    let text = b.find("[data-role=composer] textarea[name=body]").await;
    text.send_keys("Here is a photo").await.unwrap();
    b.find("[data-role=composer] [data-role=file-input]")
        .await
        .send_keys(png.to_str().unwrap())
        .await
        .unwrap();
    b.find("[data-role=composer] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let img = b
        .find("[data-role=thread] img[data-role=attachment-image]")
        .await;
    let loaded = b
        .client
        .execute(
            "return arguments[0].complete && arguments[0].naturalWidth > 0;",
            vec![serde_json::to_value(&img).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(
        loaded,
        serde_json::Value::Bool(true),
        "the image loads in the messenger"
    );
    let conv = b
        .find(".m-conversation[data-conversation-id]")
        .await
        .attr("data-conversation-id")
        .await
        .unwrap()
        .unwrap();

    let agent = Browser::start().await;
    agent.sign_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    agent
        .goto(&format!("{}/conversations/{conv}", app.base))
        .await;
    let img = agent
        .find("[data-role=thread] img[data-role=attachment-image]")
        .await;
    let loaded = agent
        .client
        .execute(
            "return arguments[0].complete && arguments[0].naturalWidth > 0;",
            vec![serde_json::to_value(&img).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(
        loaded,
        serde_json::Value::Bool(true),
        "the image loads in the workspace"
    );
    agent.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messenger_works_without_javascript() {
    let app = spawn_app().await;
    let b = Browser::without_javascript().await;
    b.goto(&format!("{}/m/{}", app.base, app.widget_key)).await;
    b.find("textarea[name=body]")
        .await
        .send_keys("Sent without JavaScript")
        .await
        .unwrap();
    b.find("[data-role=composer] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.find_text(
        "[data-role=thread] [data-author-type=contact]",
        "Sent without JavaScript",
    )
    .await;
    let conv = b
        .find(".m-conversation[data-conversation-id]")
        .await
        .attr("data-conversation-id")
        .await
        .unwrap()
        .unwrap();
    // The agent answers; a reload shows it (no live updates without JS).
    app.agent_says(&app.admin_token, &conv, "Got it!", false)
        .await;
    b.client.refresh().await.unwrap();
    b.find_text("[data-role=thread] [data-author-type=agent]", "Got it!")
        .await;
    // Reading it without JavaScript marks it read: the team sees "Seen".
    let c = app.conversation(&app.admin_token, &conv).await;
    assert_eq!(c["contact_last_read_seq"], 2, "{c}");
    // And a follow-up through the plain form.
    b.find("textarea[name=body]")
        .await
        .send_keys("Thanks")
        .await
        .unwrap();
    b.find("[data-role=composer] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.find_text("[data-role=thread] [data-author-type=contact]", "Thanks")
        .await;
    let msgs = app.agent_messages(&app.admin_token, &conv, "").await;
    assert_eq!(msgs.len(), 3);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_makes_a_logged_in_user_the_same_contact_and_reset_forgets_it() {
    use hmac::{Hmac, Mac};
    let app = spawn_app().await;
    let inbox = crate::helpers::body(
        app.get(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
        )
        .await,
    )
    .await;
    let secret = inbox["hmac_secret"].as_str().unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(b"user-77");
    let hash = hex::encode(mac.finalize().into_bytes());
    // The user already wrote from another device.
    let (contact_id, other_device) = app
        .contact_in(
            &app.widget_key.clone(),
            serde_json::json!({"external_id": "user-77", "identifier_hash": hash, "name": "Robin"}),
        )
        .await;
    let (conv, _) = app
        .start_conversation(&other_device, "from my laptop")
        .await;

    let host = host_site(&app.base, &app.widget_key).await;
    let b = Browser::start().await;
    b.goto(&host).await;
    b.find("[data-natter-launcher]").await;
    b.client
        .execute(&format!("Natter.identify({{external_id: 'user-77', identifier_hash: '{hash}', name: 'Robin'}}); Natter.open();"), vec![])
        .await
        .unwrap();
    b.find("iframe[data-natter-frame]")
        .await
        .enter_frame()
        .await
        .unwrap();
    // The known user lands in the conversation they started elsewhere.
    b.find(&format!(".m-conversation[data-conversation-id='{conv}']"))
        .await;
    assert!(
        b.find(".m-main")
            .await
            .attr("data-contact-id")
            .await
            .unwrap()
            .as_deref()
            == Some(contact_id.as_str())
    );
    b.find_text(
        "[data-role=thread] [data-author-type=contact]",
        "from my laptop",
    )
    .await;

    // Reset on logout: a fresh anonymous visitor with no history.
    b.client.enter_parent_frame().await.unwrap();
    b.client.execute("Natter.reset();", vec![]).await.unwrap();
    b.find("iframe[data-natter-frame]")
        .await
        .enter_frame()
        .await
        .unwrap();
    b.find(".m-main[data-has-contact=false]").await;
    b.close().await;
}

/// The admin's list of every conversation, newest first: (id, messages).
async fn conversations_of_everyone(app: &crate::helpers::TestApp) -> Vec<(String, u64)> {
    let v = crate::helpers::body(
        app.get("/api/v1/conversations?limit=100", &app.admin_token)
            .await,
    )
    .await;
    v["conversations"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["id"].as_str().unwrap_or_default().to_owned(),
                        c["last_seq"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A returning customer lands in their open conversation and its composer
/// (typing into a "new conversation" box split the thread); a new
/// conversation is a deliberate choice, and with nothing open the list is
/// where they land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_customer_lands_in_their_open_conversation() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    let home = format!("{}/m/{}", app.base, app.widget_key);
    b.goto(&home).await;
    let text = b.find("[data-role=composer] textarea[name=body]").await;
    text.send_keys("Where is my parcel?").await.unwrap();
    text.send_keys(&Key::Enter.to_string()).await.unwrap();
    let conv = b
        .find(".m-conversation[data-conversation-id]")
        .await
        .attr("data-conversation-id")
        .await
        .unwrap()
        .unwrap();

    // Coming back later: the same conversation, ready for the follow-up.
    b.goto(&home).await;
    b.find(&format!(".m-conversation[data-conversation-id='{conv}']"))
        .await;
    let text = b.find("[data-role=composer] textarea[name=body]").await;
    text.send_keys("It was due yesterday.").await.unwrap();
    text.send_keys(&Key::Enter.to_string()).await.unwrap();
    b.find_text(
        "[data-role=thread] [data-author-type=contact]",
        "due yesterday",
    )
    .await;
    assert_eq!(
        conversations_of_everyone(&app).await,
        [(conv.clone(), 2)],
        "the follow-up went into the same conversation"
    );

    // The list has no text box; a new conversation takes a click.
    b.find("[data-role=back]").await.click().await.unwrap();
    b.find(&format!(".m-list a[data-conversation-id='{conv}']"))
        .await;
    let listed = b
        .client
        .execute(
            "return document.querySelectorAll('.m-home textarea').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(listed, 0, "no text box on the list");
    b.find("[data-role=new-conversation]")
        .await
        .click()
        .await
        .unwrap();
    let text = b
        .find(".m-new [data-role=composer] textarea[name=body]")
        .await;
    text.send_keys("A different question").await.unwrap();
    text.send_keys(&Key::Enter.to_string()).await.unwrap();
    b.find_text(
        "[data-role=thread] [data-author-type=contact]",
        "A different question",
    )
    .await;
    let all = conversations_of_everyone(&app).await;
    assert_eq!(all.len(), 2, "{all:?}");

    // With everything resolved, the list is where they land.
    for (id, _) in &all {
        let r = app
            .patch(
                &format!("/api/v1/conversations/{id}"),
                &app.admin_token,
                serde_json::json!({"status": "resolved"}),
            )
            .await;
        assert_eq!(r.status(), reqwest::StatusCode::OK);
    }
    b.goto(&home).await;
    b.find(&format!(".m-list a[data-conversation-id='{conv}']"))
        .await;
    b.find("[data-role=new-conversation]").await;
    b.close().await;
}

/// A real photo's shape: a valid PNG `w` x `h` pixels, grey, written with
/// stored (uncompressed) deflate blocks so the test needs no encoder.
fn wide_png(w: u32, h: u32) -> Vec<u8> {
    fn crc(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for _ in 0..h {
        raw.push(0u8);
        raw.extend(std::iter::repeat_n(0x90u8, w as usize));
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Nothing of the widget passes its frame: not with a wide photo and a
/// "Seen" line in the thread (the composer's Send button stays whole), not
/// with the continue-on-another-device QR code open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_fits_its_frame_with_photos_seen_and_the_qr_code() {
    let app = spawn_app().await;
    let host = host_site(&app.base, &app.widget_key).await;
    let b = Browser::start().await;
    b.goto(&host).await;
    b.find("[data-natter-launcher]")
        .await
        .click()
        .await
        .unwrap();
    let frame = b.find("iframe[data-natter-frame]").await;
    frame.enter_frame().await.unwrap();
    let text = b.find("[data-role=composer] textarea[name=body]").await;
    text.send_keys("Here is the damaged box").await.unwrap();
    text.send_keys(&Key::Enter.to_string()).await.unwrap();
    b.find_text(
        "[data-role=thread] [data-author-type=contact]",
        "damaged box",
    )
    .await;
    let conv = b
        .find(".m-conversation[data-conversation-id]")
        .await
        .attr("data-conversation-id")
        .await
        .unwrap()
        .unwrap();
    // The agent answers with a wide photo, then reads the thread: "Seen".
    let photo = reqwest::multipart::Part::bytes(wide_png(1600, 300))
        .file_name("box.png")
        .mime_str("image/png")
        .unwrap();
    let r = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conv}/messages")))
        .bearer_auth(&app.admin_token)
        .multipart(
            reqwest::multipart::Form::new()
                .text("body", "Like this one? Here is a very long line without spaces: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
                .part("file", photo),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    b.find("[data-role=thread] img[data-role=attachment-image]")
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let loaded = b
            .client
            .execute(
                "var i = document.querySelector('[data-role=thread] img[data-role=attachment-image]'); return !!i && i.complete && i.naturalWidth === 1600;",
                vec![],
            )
            .await
            .unwrap();
        if loaded == serde_json::json!(true) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the photo never loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let text = b.find("[data-role=composer] textarea[name=body]").await;
    text.send_keys("and another").await.unwrap();
    text.send_keys(&Key::Enter.to_string()).await.unwrap();
    b.find_text(
        "[data-role=thread] [data-author-type=contact]",
        "and another",
    )
    .await;
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/read"),
            &app.admin_token,
            serde_json::json!({"seq": 3}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    b.find_text(&format!("#seen-{conv}"), "Seen").await;
    b.snap("widget-photo-seen").await;
    let out = b.overflowing().await;
    assert!(out.is_empty(), "sticks out of the widget: {out:?}");
    // The frame never scrolls as a whole, and the composer is all in view.
    let fits = b
        .client
        .execute(
            "var h = document.documentElement.clientHeight; var s = document.querySelector('[data-role=composer] button[type=submit]').getBoundingClientRect(); return [document.documentElement.scrollHeight <= h + 1, s.bottom <= h + 1 && s.top >= 0, s.right <= document.documentElement.clientWidth + 1];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        fits,
        serde_json::json!([true, true, true]),
        "page scrolls / Send below the fold / Send cut off"
    );

    // The QR code for another device: in view, nothing sideways.
    b.find("[data-role=back]").await.click().await.unwrap();
    b.find("[data-role=resume-link]")
        .await
        .click()
        .await
        .unwrap();
    b.find("[data-role=resume-qr] svg").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen = b
            .client
            .execute(
                "var r = document.querySelector('[data-role=resume-qr] svg').getBoundingClientRect(); return r.top >= 0 && r.bottom <= document.documentElement.clientHeight + 1;",
                vec![],
            )
            .await
            .unwrap();
        if seen == serde_json::json!(true) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the QR code stays below the fold"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    b.snap("widget-qr").await;
    let out = b.overflowing().await;
    assert!(out.is_empty(), "sticks out of the widget: {out:?}");
    b.close().await;
}

/// An inbox that requires the pre-chat form: a first-time visitor sees
/// name and email fields above the first message, required (and the
/// server refuses a start without them, losing nothing); what they type
/// is the contact's. The header shows who answers, by first name, and
/// "Online now" only while one of them has the workspace open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prechat_form_asks_first_and_the_header_shows_who_is_online() {
    let app = spawn_app().await;
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
            serde_json::json!({"prechat": "require"}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(crate::helpers::body(r).await["prechat"], "require");
    let r = app
        .post(
            "/api/v1/agents",
            &app.admin_token,
            serde_json::json!({"email": "maya@example.com", "name": "Maya Lopez", "password": "maya-password"}),
        )
        .await;
    let maya = crate::helpers::body(r).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.add_member(&app.inbox_id, &maya).await;

    // The server's rule, without a browser's help: no name, no start.
    let form = reqwest::multipart::Form::new()
        .text("body", "hello?")
        .text("email", "kim@example.com");
    let r = app
        .client
        .post(app.url(&format!("/m/{}/start", app.widget_key)))
        .header("HX-Request", "true")
        .header("Origin", app.base.clone())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("please tell us your name"));

    let b = Browser::start().await;
    b.goto(&format!("{}/m/{}", app.base, app.widget_key)).await;
    b.find_text("[data-role=team]", "Maya").await;
    b.find("[data-role=away]").await;
    let prechat = b.find("[data-role=prechat]").await;
    for name in ["name", "email"] {
        let required = prechat
            .find(fantoccini::Locator::Css(&format!("input[name={name}]")))
            .await
            .unwrap()
            .attr("required")
            .await
            .unwrap();
        assert!(required.is_some(), "{name} is required");
    }
    b.snap("prechat").await;
    assert!(b.overflowing().await.is_empty());
    prechat
        .find(fantoccini::Locator::Css("input[name=name]"))
        .await
        .unwrap()
        .send_keys("Kim Park")
        .await
        .unwrap();
    prechat
        .find(fantoccini::Locator::Css("input[name=email]"))
        .await
        .unwrap()
        .send_keys("kim@example.com")
        .await
        .unwrap();
    b.find("[data-role=reply]")
        .await
        .send_keys("Do you ship to Norway?")
        .await
        .unwrap();
    b.find("[data-role=composer] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.find_text("[data-role=thread]", "Do you ship to Norway?")
        .await;
    let list = crate::helpers::body(app.get("/api/v1/conversations", &app.admin_token).await).await;
    let contact = list["conversations"][0]["contact"].clone();
    assert_eq!(contact["name"], "Kim Park", "{list}");
    assert_eq!(contact["email"], "kim@example.com", "{list}");

    // Maya opens her workspace: the messenger says someone is there.
    let maya_token = app.login_ok("maya@example.com", "maya-password").await;
    let _stream = app.events("/api/v1/events", &maya_token, None).await;
    b.client.refresh().await.unwrap();
    b.find_text("[data-role=online]", "Online now").await;
    b.snap("team-online").await;
    b.close().await;
}

/// A resolved conversation asks for a rating in the messenger, with and
/// without JavaScript: five choices, one press, thanks, and the rating
/// is on the conversation for the team.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_conversation_is_rated_in_the_messenger_with_and_without_javascript() {
    let app = spawn_app().await;
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
            serde_json::json!({"csat": true}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    for (script, pick) in [(true, "4"), (false, "2")] {
        let b = if script {
            Browser::start().await
        } else {
            Browser::without_javascript().await
        };
        b.goto(&format!("{}/m/{}", app.base, app.widget_key)).await;
        b.find("textarea[name=body]")
            .await
            .send_keys("Where is my parcel?")
            .await
            .unwrap();
        b.find("[data-role=composer] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        let conv = b
            .find(".m-conversation[data-conversation-id]")
            .await
            .attr("data-conversation-id")
            .await
            .unwrap()
            .unwrap();
        app.agent_says(&app.admin_token, &conv, "It arrives tomorrow.", false)
            .await;
        let r = app
            .patch(
                &format!("/api/v1/conversations/{conv}"),
                &app.admin_token,
                serde_json::json!({"status": "resolved"}),
            )
            .await;
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        b.goto(&format!("{}/m/{}?c={conv}", app.base, app.widget_key))
            .await;
        b.find("[data-role=rate]").await;
        b.snap(if script {
            "rate-messenger"
        } else {
            "rate-messenger-nojs"
        })
        .await;
        b.find(&format!("[data-role=rate] button[data-score='{pick}']"))
            .await
            .click()
            .await
            .unwrap();
        b.find_text("[data-role=rated]", "Thanks for your rating")
            .await;
        let c = app.conversation(&app.admin_token, &conv).await;
        assert_eq!(c["rating"]["score"].to_string(), pick, "{c}");
        b.close().await;
    }
}
