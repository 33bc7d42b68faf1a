//! Facebook Messenger and Instagram through Meta's Send API: the same
//! handshake and signature as WhatsApp, `messaging` entries with echoes
//! ignored, delivery receipts, and the 24-hour window.

use serde_json::{json, Value};

use super::settings::{get, Setting};
use super::whatsapp::{handshake, verified_json};
use super::{
    within_24h, BoxFuture, Channel, HookError, HookRequest, Inbound, Outgoing, Parsed, SendError,
    Sent, StatusUpdate,
};
use crate::store::{DeliveryStatus, InboxRecord, MediaRef};

/// Messenger or Instagram (same API, different id setting).
pub struct Meta {
    kind: super::ChannelKind,
    settings: &'static [Setting],
    id_setting: &'static str,
}

const MESSENGER: &[Setting] = &[
    Setting::text("page_id", "Page ID"),
    Setting::secret("access_token", "Page access token"),
    Setting::secret("app_secret", "App secret"),
    Setting::text("verify_token", "Verify token"),
    Setting::api_base("https://graph.facebook.com"),
    Setting::text("api_version", "Graph API version")
        .with_default("v21.0")
        .advanced(),
];

const INSTAGRAM: &[Setting] = &[
    Setting::text("ig_id", "Instagram account ID"),
    Setting::secret("access_token", "Access token"),
    Setting::secret("app_secret", "App secret"),
    Setting::text("verify_token", "Verify token"),
    Setting::api_base("https://graph.facebook.com"),
    Setting::text("api_version", "Graph API version")
        .with_default("v21.0")
        .advanced(),
];

impl Meta {
    /// Facebook Messenger.
    pub const MESSENGER: Meta = Meta {
        kind: super::ChannelKind::Messenger,
        settings: MESSENGER,
        id_setting: "page_id",
    };
    /// Instagram direct messages.
    pub const INSTAGRAM: Meta = Meta {
        kind: super::ChannelKind::Instagram,
        settings: INSTAGRAM,
        id_setting: "ig_id",
    };
}

impl Channel for Meta {
    fn kind(&self) -> super::ChannelKind {
        self.kind
    }

    fn hook(&self) -> Option<&'static str> {
        Some("meta")
    }

    fn settings(&self) -> &'static [Setting] {
        self.settings
    }

    fn parse_hook(&self, inbox: &InboxRecord, req: &HookRequest<'_>) -> Result<Parsed, HookError> {
        if req.method == "GET" {
            return handshake(inbox, req.query);
        }
        let v = verified_json(inbox, req)?;
        let own = get(&inbox.settings, self.id_setting);
        let mut out = Parsed::reply(super::HookReply::Ok);
        for entry in v["entry"].as_array().into_iter().flatten() {
            for ev in entry["messaging"].as_array().into_iter().flatten() {
                let sender = ev["sender"]["id"].as_str().unwrap_or("");
                if let Some(mids) = ev["delivery"]["mids"].as_array() {
                    for mid in mids.iter().filter_map(Value::as_str) {
                        out.statuses.push(StatusUpdate {
                            provider_id: mid.to_owned(),
                            status: DeliveryStatus::Delivered,
                            error: None,
                        });
                    }
                    continue;
                }
                if let Some(mid) = ev["read"]["mid"].as_str() {
                    out.statuses.push(StatusUpdate {
                        provider_id: mid.to_owned(),
                        status: DeliveryStatus::Read,
                        error: None,
                    });
                    continue;
                }
                let m = &ev["message"];
                // Echoes are our own sends coming back; the page itself
                // never is a customer.
                if m.is_null()
                    || m["is_echo"].as_bool() == Some(true)
                    || sender == own
                    || sender.is_empty()
                {
                    continue;
                }
                let Some(mid) = m["mid"].as_str() else {
                    continue;
                };
                let media = m["attachments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a["payload"]["url"].as_str())
                    .map(|u| MediaRef {
                        url: u.to_owned(),
                        name: None,
                    })
                    .collect();
                out.messages.push(Inbound {
                    identity: sender.to_owned(),
                    body: m["text"].as_str().unwrap_or("").to_owned(),
                    provider_id: Some(mid.to_owned()),
                    media,
                    sent_at: ev["timestamp"].as_i64().map(|t| t * 1_000),
                    ..Inbound::default()
                });
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
            if !within_24h(out.last_inbound_at, out.now) {
                return Err(SendError::Permanent(format!(
                    "outside {}'s 24-hour window: the customer has not written in the last 24 hours",
                    self.kind.label().0
                )));
            }
            let s = &inbox.settings;
            let url = format!(
                "{}/{}/{}/messages",
                get(s, "api_base"),
                get(s, "api_version"),
                get(s, self.id_setting)
            );
            let mut messages = Vec::new();
            if !out.body.trim().is_empty() {
                messages.push(json!({"text": out.body}));
            }
            for (u, ct) in &out.media {
                let kind = if ct.starts_with("image/") {
                    "image"
                } else {
                    "file"
                };
                messages.push(json!({"attachment": {"type": kind, "payload": {"url": u, "is_reusable": false}}}));
            }
            let mut first = None;
            for message in messages {
                let req = http
                    .client
                    .post(&url)
                    .header("Idempotency-Key", format!("natter-{}", out.message_id))
                    .json(&json!({
                        "recipient": {"id": out.to},
                        "messaging_type": "RESPONSE",
                        "message": message,
                    }));
                let body = super::whatsapp::graph_call(req, get(s, "access_token")).await?;
                if first.is_none() {
                    first = body["message_id"].as_str().map(str::to_owned);
                }
            }
            Ok(Sent {
                provider_id: first,
                status: DeliveryStatus::Sent,
            })
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
                .get(format!(
                    "{}/{}/{}",
                    get(s, "api_base"),
                    get(s, "api_version"),
                    get(s, self.id_setting)
                ))
                .bearer_auth(get(s, "access_token"));
            super::probe(
                req,
                "Meta accepted the account id and access token",
                "check the account id and access token",
            )
            .await
        })
    }
}
