//! Telegram bots: updates POSTed with the secret token natter generated
//! (checked in constant time), setWebhook called when the inbox is
//! created, sendMessage/sendPhoto/sendDocument out, files via getFile.

use serde_json::{json, Value};

use super::settings::{get, Setting};
use super::{
    status_error, BoxFuture, Channel, HookError, HookRequest, Inbound, Media, Outgoing, Parsed,
    SendError, Sent,
};
use crate::store::{DeliveryStatus, InboxRecord, MediaRef};

/// The Telegram adapter.
pub struct Telegram;

const SETTINGS: &[Setting] = &[
    Setting::secret("bot_token", "Bot token"),
    Setting::api_base("https://api.telegram.org"),
];

fn bot(inbox: &InboxRecord, method: &str) -> String {
    format!(
        "{}/bot{}/{method}",
        get(&inbox.settings, "api_base"),
        get(&inbox.settings, "bot_token")
    )
}

async fn call(
    http: &super::http::Http,
    inbox: &InboxRecord,
    method: &str,
    body: Value,
) -> Result<Value, SendError> {
    let resp = http
        .client
        .post(bot(inbox, method))
        .json(&body)
        .send()
        .await
        // The URL holds the bot token: never let it reach a log line.
        .map_err(|e| {
            SendError::Temporary(format!("could not reach Telegram: {}", e.without_url()))
        })?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or_default();
    if !status.is_success() || v["ok"].as_bool() != Some(true) {
        return Err(status_error(
            status,
            v["description"].as_str().unwrap_or("no details"),
        ));
    }
    Ok(v["result"].clone())
}

impl Channel for Telegram {
    fn kind(&self) -> super::ChannelKind {
        super::ChannelKind::Telegram
    }

    fn sets_its_webhook_on_connect(&self) -> bool {
        true
    }

    fn hook(&self) -> Option<&'static str> {
        Some("telegram")
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn parse_hook(&self, inbox: &InboxRecord, req: &HookRequest<'_>) -> Result<Parsed, HookError> {
        let given = super::header(req.headers, "x-telegram-bot-api-secret-token").unwrap_or("");
        let expected = inbox.webhook_secret.as_deref().unwrap_or("");
        if req.method != "POST" || expected.is_empty() || !super::secret_eq(given, expected) {
            return Err(HookError::Unauthorized(
                "X-Telegram-Bot-Api-Secret-Token does not match".into(),
            ));
        }
        let v: Value = serde_json::from_slice(req.body)
            .map_err(|_| HookError::BadRequest("the body is not JSON".into()))?;
        let mut out = Parsed::reply(super::HookReply::Ok);
        let m = if v["message"].is_object() {
            &v["message"]
        } else {
            &v["edited_message"]
        };
        if !m.is_object() || m["from"]["is_bot"].as_bool() == Some(true) {
            return Ok(out);
        }
        let (Some(chat), Some(mid)) = (m["chat"]["id"].as_i64(), m["message_id"].as_i64()) else {
            return Ok(out);
        };
        let from = &m["from"];
        let name = [from["first_name"].as_str(), from["last_name"].as_str()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let mut media = Vec::new();
        if let Some(p) = m["photo"].as_array().and_then(|p| p.last()) {
            if let Some(id) = p["file_id"].as_str() {
                media.push(MediaRef {
                    url: format!("file:{id}"),
                    name: None,
                });
            }
        }
        for kind in ["document", "video", "audio", "voice"] {
            if let Some(id) = m[kind]["file_id"].as_str() {
                media.push(MediaRef {
                    url: format!("file:{id}"),
                    name: m[kind]["file_name"].as_str().map(str::to_owned),
                });
            }
        }
        let body = m["text"]
            .as_str()
            .or(m["caption"].as_str())
            .unwrap_or("")
            .to_owned();
        let edited = v["edited_message"].is_object();
        out.messages.push(Inbound {
            identity: chat.to_string(),
            name: (!name.is_empty()).then_some(name),
            body,
            // An edit arrives as a new update of the same message id.
            provider_id: Some(format!("{chat}:{mid}{}", if edited { ":edit" } else { "" })),
            media,
            sent_at: m["date"].as_i64().map(|t| t * 1_000_000),
            ..Inbound::default()
        });
        Ok(out)
    }

    fn send<'a>(
        &'a self,
        http: &'a super::http::Http,
        inbox: &'a InboxRecord,
        out: Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let mut first = None;
            if !out.body.trim().is_empty() {
                let r = call(
                    http,
                    inbox,
                    "sendMessage",
                    json!({"chat_id": out.to, "text": out.body}),
                )
                .await?;
                first = r["message_id"].as_i64();
            }
            for (u, ct) in &out.media {
                let (method, field) = if ct.starts_with("image/") {
                    ("sendPhoto", "photo")
                } else {
                    ("sendDocument", "document")
                };
                let r = call(http, inbox, method, json!({"chat_id": out.to, field: u})).await?;
                first = first.or(r["message_id"].as_i64());
            }
            Ok(Sent {
                provider_id: first.map(|id| format!("{}:{id}", out.to)),
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
            let id = media.url.strip_prefix("file:").unwrap_or(&media.url);
            let f = call(http, inbox, "getFile", json!({"file_id": id})).await?;
            let Some(path) = f["file_path"].as_str() else {
                return Err(SendError::Permanent("Telegram gave no file path".into()));
            };
            let url = format!(
                "{}/file/bot{}/{path}",
                get(&inbox.settings, "api_base"),
                get(&inbox.settings, "bot_token")
            );
            let name = media
                .name
                .clone()
                .or_else(|| path.rsplit('/').next().map(str::to_owned));
            super::plain_download(http, &url, None, name)
                .await
                .map_err(|e| match e {
                    SendError::Temporary(_) => {
                        SendError::Temporary("could not download the file from Telegram".into())
                    }
                    SendError::Permanent(_) => {
                        SendError::Permanent("Telegram refused the file download".into())
                    }
                })
        })
    }

    fn connect<'a>(
        &'a self,
        http: &'a super::http::Http,
        inbox: &'a InboxRecord,
        base_url: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        Box::pin(async move {
            let me = call(http, inbox, "getMe", json!({})).await?;
            call(
                http,
                inbox,
                "setWebhook",
                json!({
                    "url": format!("{base_url}/hooks/telegram/{}", inbox.id),
                    "secret_token": inbox.webhook_secret,
                    "allowed_updates": ["message", "edited_message"],
                }),
            )
            .await?;
            Ok(format!(
                "Telegram knows the bot @{} and will send its messages here",
                me["username"].as_str().unwrap_or("?")
            ))
        })
    }
}
