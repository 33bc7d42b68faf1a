//! One person across channels: verified identifiers (a phone that wrote
//! to us, an email confirmed by a link) link automatically; unverified
//! ones never do; a reply can go out on another channel of the person.

use std::time::Duration;

use natter::channels::email::parse::parse;
use reqwest::StatusCode;
use serde_json::json;

use crate::channels::{channel_inbox, hub_signature, twilio_params, twilio_post};
use crate::customers::identity_hash;
use crate::fakes::Fake;
use crate::helpers::{body, spawn_app, spawn_app_with, TestApp};
use crate::mail_servers::SmtpSink;

async fn twilio_in(app: &TestApp, inbox: &str, sid: &str, from: &str, text: &str) {
    let params = twilio_params(&[("MessageSid", sid), ("From", from), ("Body", text)]);
    let r = twilio_post(app, &format!("/hooks/twilio/{inbox}"), "tok", &params).await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn first_conversation(app: &TestApp, inbox: &str) -> serde_json::Value {
    body(
        app.get(
            &format!("/api/v1/conversations?inbox={inbox}&status=all"),
            &app.admin_token,
        )
        .await,
    )
    .await["conversations"][0]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_links_sms_and_whatsapp_but_an_unverified_email_is_only_suggested() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    let sms = channel_inbox(&app, "sms", json!({"account_sid": "AC1", "auth_token": "tok", "from": "+15550000", "api_base": fake.url})).await;
    let wa = channel_inbox(&app, "whatsapp", json!({"phone_number_id": "PN1", "access_token": "t", "app_secret": "s", "verify_token": "v", "api_base": fake.url})).await;
    let (sms_id, wa_id) = (sms["id"].as_str().unwrap(), wa["id"].as_str().unwrap());
    twilio_in(&app, sms_id, "SM1", "+49 151 1234567", "by sms").await;
    let payload = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "PN1"},
        "contacts": [{"profile": {"name": "Uwe"}, "wa_id": "491511234567"}],
        "messages": [{"from": "491511234567", "id": "wamid.1", "timestamp": "1790000000", "type": "text", "text": {"body": "by whatsapp"}}],
    }}]}]});
    let raw = payload.to_string();
    let r = app
        .client
        .post(app.url(&format!("/hooks/whatsapp/{wa_id}")))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", hub_signature("s", raw.as_bytes()))
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let a = first_conversation(&app, sms_id).await;
    let b = first_conversation(&app, wa_id).await;
    assert_eq!(a["contact"]["id"], b["contact"]["id"], "one person");
    assert_ne!(a["id"], b["id"], "a conversation per channel");
    let person = body(
        app.get(
            &format!("/api/v1/contacts/{}", a["contact"]["id"].as_str().unwrap()),
            &app.admin_token,
        )
        .await,
    )
    .await;
    let channels: Vec<&str> = person["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, vec!["sms", "whatsapp"]);

    // A web visitor who typed an email, and an API message claiming the
    // same email: never merged silently.
    let (web_contact, web_token) = app
        .contact_in(
            &app.widget_key.clone(),
            json!({"email": "dana@example.com"}),
        )
        .await;
    app.start_conversation(&web_token, "from the site").await;
    let api = channel_inbox(&app, "api", json!({})).await;
    let r = app
        .post(
            &format!(
                "/api/v1/channels/api/{}/messages",
                api["id"].as_str().unwrap()
            ),
            api["api_token"].as_str().unwrap(),
            json!({"source_id": "d", "email": "dana@example.com", "body": "from the app"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let api_contact = body(r).await["contact_id"].as_str().unwrap().to_owned();
    assert_ne!(api_contact, web_contact);
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{web_contact}"), &app.admin_token)
            .await
            .status(),
        StatusCode::OK
    );
}

/// Presses the button of a confirmation link's page: posts the link's
/// signed fields (the page's form holds exactly these).
pub(crate) async fn confirm_link(client: &reqwest::Client, link: &str) -> reqwest::Response {
    let (url, query) = link.split_once('?').unwrap();
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_confirmed_on_two_devices_makes_one_person() {
    let sink = SmtpSink::start(false).await;
    let s = sink.outgoing("support@natter.test");
    let app = spawn_app_with(move |c| c.smtp = Some(s)).await;
    let key = app.widget_key.clone();
    let (a, a_token) = app.contact().await;
    app.start_conversation(&a_token, "from the laptop").await;
    let (b, b_token) = app.contact().await;
    let (b_conv, _) = app.start_conversation(&b_token, "from the phone").await;
    let leave_email = |token: String| {
        let app = &app;
        let key = key.clone();
        async move {
            let r = app
                .client
                .post(app.url(&format!("/m/{key}/email")))
                .bearer_auth(token)
                .header("HX-Request", "true")
                .form(&[("email", "Eve@Example.com")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert!(r.text().await.unwrap().contains("confirm"));
        }
    };
    leave_email(a_token.clone()).await;
    leave_email(b_token.clone()).await;
    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    let link = |i: usize| {
        let text = parse(&mails[i].data).unwrap().text;
        let start = text.find("http").unwrap();
        text[start..].split_whitespace().next().unwrap().to_owned()
    };
    // Typed, not confirmed: still two people.
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{b}"), &app.admin_token)
            .await
            .status(),
        StatusCode::OK
    );
    let fresh = crate::helpers::new_client();
    let forged = link(0).replace("&t=", "&t=00");
    assert_eq!(
        fresh.get(&forged).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // Opening the link shows a page; its button confirms.
    let r = fresh.get(link(0)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("data-role=\"email-confirm\""));
    let r = confirm_link(&fresh, &link(0)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("data-role=\"email-confirmed\""));
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{b}"), &app.admin_token)
            .await
            .status(),
        StatusCode::OK,
        "one confirmation links nothing"
    );
    // The second device asks for the same address: the person at the
    // address is told what confirming gives that device, and agrees.
    let page = fresh
        .get(link(1))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("your whole history"), "{page}");
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{b}"), &app.admin_token)
            .await
            .status(),
        StatusCode::OK,
        "opening the link links nothing"
    );
    assert_eq!(
        confirm_link(&fresh, &link(1)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{b}"), &app.admin_token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let person = body(
        app.get(&format!("/api/v1/contacts/{a}"), &app.admin_token)
            .await,
    )
    .await;
    assert_eq!(
        person["conversations"].as_array().unwrap().len(),
        2,
        "{person}"
    );
    // The phone's session now sees both conversations.
    let list = body(app.get("/api/v1/customer/conversations", &b_token).await).await;
    assert!(list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == b_conv.as_str()));
    assert_eq!(list["conversations"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_conversation_can_be_answered_by_sms() {
    let app = spawn_app().await;
    let fake = Fake::start().await;
    fake.json("/Messages.json", 201, json!({"sid": "SMvia"}));
    let sms = channel_inbox(&app, "sms", json!({"account_sid": "AC1", "auth_token": "tok", "from": "+15550000", "api_base": fake.url})).await;
    let sms_id = sms["id"].as_str().unwrap().to_owned();
    twilio_in(&app, &sms_id, "SMx", "+15557654321", "texting you").await;
    let sms_contact = first_conversation(&app, &sms_id).await["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (web_contact, web_token) = app.contact().await;
    let (conv, _) = app
        .start_conversation(&web_token, "on the site, then I left")
        .await;
    // Not the same person yet: SMS is not offered.
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.admin_token,
            json!({"body": "by sms?", "via": sms_id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            &format!("/api/v1/contacts/{sms_contact}/merge"),
            &app.admin_token,
            json!({"into": web_contact}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.admin_token,
            json!({"body": "We have an answer for you", "via": sms_id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let m = body(r).await;
    assert_eq!(m["delivery"]["status"], "queued");
    let sent = fake
        .wait_for("/Messages.json", 1, Duration::from_secs(15))
        .await;
    assert_eq!(sent[0].form_field("To").as_deref(), Some("+15557654321"));
    assert_eq!(
        sent[0].form_field("Body").as_deref(),
        Some("We have an answer for you")
    );
    assert_eq!(m["via"], sms_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_merged_across_two_websites_stays_signed_in_on_both() {
    let app = spawn_app().await;
    let second = app.create_inbox("Second site").await;
    let key2 = second["widget_key"].as_str().unwrap().to_owned();
    let (a, a_token) = app.contact().await;
    app.start_conversation(&a_token, "on the first site").await;
    let (b, b_token) = app.contact_in(&key2, json!({"name": "Casey"})).await;
    app.start_conversation(&b_token, "on the second site").await;
    let r = app
        .post(
            &format!("/api/v1/contacts/{b}/merge"),
            &app.admin_token,
            json!({"into": a}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The second site's browser still knows the person, with both threads.
    let page = app
        .client
        .get(app.url(&format!("/m/{key2}?list=1")))
        .bearer_auth(&b_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("on the first site") && page.contains("on the second site"),
        "{page}"
    );
    let list = body(app.get("/api/v1/customer/conversations", &b_token).await).await;
    assert_eq!(list["conversations"].as_array().unwrap().len(), 2);
}

/// The admin says two websites share one login: the second inbox gets the
/// first's identity secret. Returns the second inbox as it is now.
pub(crate) async fn share_identity_secret(
    app: &TestApp,
    first: &serde_json::Value,
    second: &serde_json::Value,
) -> serde_json::Value {
    let r = app
        .patch(
            &format!("/api/v1/inboxes/{}", second["id"].as_str().unwrap()),
            &app.admin_token,
            json!({"hmac_secret": first["hmac_secret"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let b = body(r).await;
    assert_eq!(b["hmac_secret"], first["hmac_secret"]);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_user_id_is_one_person_on_every_website_of_the_business() {
    let app = spawn_app().await;
    let first = body(
        app.get(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
        )
        .await,
    )
    .await;
    let second = app.create_inbox("Shop").await;
    let (key1, key2) = (
        app.widget_key.clone(),
        second["widget_key"].as_str().unwrap().to_owned(),
    );
    let second = share_identity_secret(&app, &first, &second).await;
    let h1 = identity_hash(first["hmac_secret"].as_str().unwrap(), "user-7");
    let h2 = identity_hash(second["hmac_secret"].as_str().unwrap(), "user-7");
    let (c1, t1) = app
        .contact_in(
            &key1,
            json!({"external_id": "user-7", "identifier_hash": h1, "name": "Sam"}),
        )
        .await;
    app.start_conversation(&t1, "on the blog").await;
    let (c2, t2) = app
        .contact_in(
            &key2,
            json!({"external_id": "user-7", "identifier_hash": h2}),
        )
        .await;
    assert_eq!(
        c1, c2,
        "the same verified user on the second website is the same person"
    );
    // A conversation started on the shop belongs to the shop's inbox.
    let (conv2, _) = app.start_conversation(&t2, "in the shop").await;
    let c = app.conversation(&app.admin_token, &conv2).await;
    assert_eq!(c["inbox_id"], second["id"]);
    let list = body(app.get("/api/v1/customer/conversations", &t2).await).await;
    assert_eq!(
        list["conversations"].as_array().unwrap().len(),
        2,
        "the whole history"
    );
    // Without verification nothing links.
    let (c3, _) = app.contact_in(&key2, json!({"name": "Sam"})).await;
    assert_ne!(c3, c1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_verified_user_is_still_found_on_the_other_website() {
    let app = spawn_app().await;
    let first = body(
        app.get(
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &app.admin_token,
        )
        .await,
    )
    .await;
    let second = app.create_inbox("Shop").await;
    let second = share_identity_secret(&app, &first, &second).await;
    let h1 = identity_hash(first["hmac_secret"].as_str().unwrap(), "user-9");
    let h2 = identity_hash(second["hmac_secret"].as_str().unwrap(), "user-9");
    let (verified, _) = app
        .contact_in(
            &app.widget_key.clone(),
            json!({"external_id": "user-9", "identifier_hash": h1}),
        )
        .await;
    let (other, _) = app.contact().await;
    let r = app
        .post(
            &format!("/api/v1/contacts/{verified}/merge"),
            &app.admin_token,
            json!({"into": other}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (on_shop, _) = app
        .contact_in(
            second["widget_key"].as_str().unwrap(),
            json!({"external_id": "user-9", "identifier_hash": h2}),
        )
        .await;
    assert_eq!(on_shop, other, "the link followed the merge");
}
