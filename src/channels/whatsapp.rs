//! WhatsApp Cloud API: the hub.* handshake, webhooks signed with
//! `X-Hub-Signature-256`, messages and statuses from the same webhook,
//! media resolved through the Graph API, the 24-hour window and templates.

use serde_json::{json, Value};

use super::settings::{get, Setting};
use super::{
    status_error, transport_error, within_24h, BoxFuture, Channel, HookError, HookRequest, Inbound,
    Media, Outgoing, Parsed, SendError, Sent, StatusUpdate,
};
use crate::store::{DeliveryStatus, InboxRecord, MediaRef};

/// The WhatsApp adapter.
pub struct WhatsApp;

const SETTINGS: &[Setting] = &[
    Setting::text("phone_number_id", "Phone number ID"),
    Setting::secret("access_token", "Access token"),
    Setting::secret("app_secret", "App secret"),
    Setting::text("verify_token", "Verify token"),
    Setting::api_base("https://graph.facebook.com"),
    Setting::text("api_version", "Graph API version")
        .with_default("v21.0")
        .advanced(),
    Setting::text("template_name", "Template for replies after 24 hours").optional(),
    Setting::text("template_language", "Template language").with_default("en_US"),
];

/// Meta's GET handshake: echo `hub.challenge` when the verify token matches.
pub fn handshake(inbox: &InboxRecord, query: &str) -> Result<Parsed, HookError> {
    let q: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let get_q = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let token = get(&inbox.settings, "verify_token");
    match (
        get_q("hub.mode"),
        get_q("hub.verify_token"),
        get_q("hub.challenge"),
    ) {
        (Some("subscribe"), Some(t), Some(c))
            if !token.is_empty() && super::secret_eq(t, token) =>
        {
            Ok(Parsed::reply(super::HookReply::Body(
                "text/plain",
                c.to_owned(),
            )))
        }
        _ => Err(HookError::Unauthorized(
            "hub.verify_token does not match".into(),
        )),
    }
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, body)>`
/// and parses the JSON.
pub fn verified_json(inbox: &InboxRecord, req: &HookRequest<'_>) -> Result<Value, HookError> {
    let sig = super::header(req.headers, "x-hub-signature-256").unwrap_or("");
    let secret = get(&inbox.settings, "app_secret");
    let ok = sig.strip_prefix("sha256=").is_some_and(|hex| {
        !secret.is_empty() && super::hmac_sha256_hex_matches(secret.as_bytes(), req.body, hex)
    });
    if !ok {
        return Err(HookError::Unauthorized(
            "X-Hub-Signature-256 does not verify".into(),
        ));
    }
    serde_json::from_slice(req.body)
        .map_err(|_| HookError::BadRequest("the body is not JSON".into()))
}

fn map_status(s: &str) -> Option<DeliveryStatus> {
    Some(match s {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => return None,
    })
}

/// One Graph API call (WhatsApp, Messenger, Instagram): the JSON answer,
/// or the error Meta explains in `error.message`.
pub async fn graph_call(req: reqwest::RequestBuilder, token: &str) -> Result<Value, SendError> {
    let resp = req
        .bearer_auth(token)
        .send()
        .await
        .map_err(transport_error)?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        let detail = body["error"]["message"].as_str().unwrap_or("no details");
        return Err(status_error(status, detail));
    }
    Ok(body)
}

fn graph(inbox: &InboxRecord) -> String {
    format!(
        "{}/{}",
        get(&inbox.settings, "api_base"),
        get(&inbox.settings, "api_version")
    )
}

impl Channel for WhatsApp {
    fn kind(&self) -> super::ChannelKind {
        super::ChannelKind::Whatsapp
    }

    fn addresses_are_phone_numbers(&self) -> bool {
        true
    }

    fn hook(&self) -> Option<&'static str> {
        Some("whatsapp")
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn parse_hook(&self, inbox: &InboxRecord, req: &HookRequest<'_>) -> Result<Parsed, HookError> {
        if req.method == "GET" {
            return handshake(inbox, req.query);
        }
        let v = verified_json(inbox, req)?;
        let mut out = Parsed::reply(super::HookReply::Ok);
        for entry in v["entry"].as_array().into_iter().flatten() {
            for change in entry["changes"].as_array().into_iter().flatten() {
                let value = &change["value"];
                let names: Vec<(&str, &str)> = value["contacts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| Some((c["wa_id"].as_str()?, c["profile"]["name"].as_str()?)))
                    .collect();
                for m in value["messages"].as_array().into_iter().flatten() {
                    let (Some(from), Some(id)) = (m["from"].as_str(), m["id"].as_str()) else {
                        continue;
                    };
                    let kind = m["type"].as_str().unwrap_or("");
                    let mut media = Vec::new();
                    let body = match kind {
                        "text" => m["text"]["body"].as_str().unwrap_or("").to_owned(),
                        "image" | "document" | "audio" | "video" | "sticker" => {
                            let part = &m[kind];
                            if let Some(mid) = part["id"].as_str() {
                                media.push(MediaRef {
                                    url: format!("media:{mid}"),
                                    name: part["filename"].as_str().map(str::to_owned),
                                });
                            }
                            part["caption"].as_str().unwrap_or("").to_owned()
                        }
                        "button" => m["button"]["text"].as_str().unwrap_or("").to_owned(),
                        "interactive" => {
                            let i = &m["interactive"];
                            i["button_reply"]["title"]
                                .as_str()
                                .or(i["list_reply"]["title"].as_str())
                                .unwrap_or("")
                                .to_owned()
                        }
                        "location" => {
                            let l = &m["location"];
                            format!(
                                "Location: {}, {}",
                                l["latitude"].as_f64().unwrap_or(0.0),
                                l["longitude"].as_f64().unwrap_or(0.0)
                            )
                        }
                        other => format!("[{other} message: not shown here]"),
                    };
                    out.messages.push(Inbound {
                        identity: from.to_owned(),
                        name: names
                            .iter()
                            .find(|(w, _)| *w == from)
                            .map(|(_, n)| (*n).to_owned()),
                        body,
                        provider_id: Some(id.to_owned()),
                        media,
                        sent_at: m["timestamp"]
                            .as_str()
                            .and_then(|t| t.parse::<i64>().ok())
                            .map(|t| t * 1_000_000),
                        ..Inbound::default()
                    });
                }
                for s in value["statuses"].as_array().into_iter().flatten() {
                    let (Some(id), Some(status)) =
                        (s["id"].as_str(), s["status"].as_str().and_then(map_status))
                    else {
                        continue;
                    };
                    let error = s["errors"].as_array().and_then(|e| e.first()).map(|e| {
                        format!(
                            "WhatsApp error {}: {}",
                            e["code"],
                            e["title"]
                                .as_str()
                                .or(e["message"].as_str())
                                .unwrap_or("failed")
                        )
                    });
                    out.statuses.push(StatusUpdate {
                        provider_id: id.to_owned(),
                        status,
                        error,
                    });
                }
            }
        }
        Ok(out)
    }

    fn send<'a>(
        &'a self,
        http: &'a super::http::Http,
        inbox: &'a InboxRecord,
        out: Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let s = &inbox.settings;
            let mut payloads = Vec::new();
            if within_24h(out.last_inbound_at, out.now) {
                if !out.body.trim().is_empty() {
                    payloads.push(
                        json!({"type": "text", "text": {"body": out.body, "preview_url": true}}),
                    );
                }
                for (url, ct) in &out.media {
                    let kind = if ct.starts_with("image/") {
                        "image"
                    } else {
                        "document"
                    };
                    payloads.push(json!({"type": kind, kind: {"link": url}}));
                }
            } else if !get(s, "template_name").is_empty() {
                payloads.push(json!({"type": "template", "template": {
                    "name": get(s, "template_name"),
                    "language": {"code": get(s, "template_language")},
                    "components": [{"type": "body", "parameters": [{"type": "text", "text": out.body}]}],
                }}));
            } else {
                return Err(SendError::Permanent(
                    "outside WhatsApp's 24-hour window: the customer has not written in the last 24 hours, and no template is configured for this inbox".into(),
                ));
            }
            let url = format!("{}/{}/messages", graph(inbox), get(s, "phone_number_id"));
            let mut first_id = None;
            for mut p in payloads {
                p["messaging_product"] = json!("whatsapp");
                p["recipient_type"] = json!("individual");
                p["to"] = json!(out.to);
                let req = http
                    .client
                    .post(&url)
                    .header("Idempotency-Key", format!("natter-{}", out.message_id))
                    .json(&p);
                let body = graph_call(req, get(s, "access_token")).await?;
                if first_id.is_none() {
                    first_id = body["messages"][0]["id"].as_str().map(str::to_owned);
                }
            }
            Ok(Sent {
                provider_id: first_id,
                status: DeliveryStatus::Sent,
            })
        })
    }

    fn fetch_media<'a>(
        &'a self,
        http: &'a super::http::Http,
        inbox: &'a InboxRecord,
        media: &'a MediaRef,
    ) -> BoxFuture<'a, Result<Media, SendError>> {
        Box::pin(async move {
            let token = get(&inbox.settings, "access_token");
            let id = media.url.strip_prefix("media:").unwrap_or(&media.url);
            let req = http.client.get(format!("{}/{id}", graph(inbox)));
            let body = graph_call(req, token).await?;
            let Some(url) = body["url"].as_str() else {
                return Err(SendError::Permanent("the media answer has no url".into()));
            };
            super::plain_download(
                http,
                url,
                Some(super::Auth::Bearer(token)),
                media.name.clone(),
            )
            .await
        })
    }

    fn connect<'a>(
        &'a self,
        http: &'a super::http::Http,
        inbox: &'a InboxRecord,
        _base_url: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        Box::pin(async move {
            let s = &inbox.settings;
            let req = http
                .client
                .get(format!("{}/{}", graph(inbox), get(s, "phone_number_id")))
                .bearer_auth(get(s, "access_token"));
            super::probe(
                req,
                "WhatsApp accepted the phone number ID and access token",
                "check the phone number ID and access token",
            )
            .await
        })
    }
}
