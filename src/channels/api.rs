//! The API channel: a business's own app or bot posts customer messages
//! with the inbox's token, and agent replies are POSTed to its
//! `callback_url`, signed like outbound webhooks (Standard Webhooks v1)
//! with the inbox's `webhook_secret`.

use serde_json::json;

use super::settings::{get, Setting, SettingKind};
use super::{
    status_error, transport_error, BoxFuture, Channel, HookError, HookRequest, Outgoing, Parsed,
    SendError, Sent,
};
use crate::store::{DeliveryStatus, InboxRecord};

/// The API adapter.
pub struct Api;

const SETTINGS: &[Setting] = &[Setting::text("callback_url", "Callback URL")
    .of(SettingKind::Url)
    .optional()];

impl Channel for Api {
    fn kind(&self) -> super::ChannelKind {
        super::ChannelKind::Api
    }

    fn has_api_token(&self) -> bool {
        true
    }

    fn hook(&self) -> Option<&'static str> {
        None
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn parse_hook(
        &self,
        _inbox: &InboxRecord,
        _req: &HookRequest<'_>,
    ) -> Result<Parsed, HookError> {
        Err(HookError::BadRequest(
            "the API channel takes messages at /api/v1/channels/api/{inbox_id}/messages".into(),
        ))
    }

    fn send<'a>(
        &'a self,
        http: &'a super::http::Http,
        inbox: &'a InboxRecord,
        out: Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let url = get(&inbox.settings, "callback_url");
            if url.is_empty() {
                return Err(SendError::Permanent(
                    "this API inbox has no callback_url".into(),
                ));
            }
            let url = http
                .check(url)
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            let body = json!({
                "type": "message.created",
                "timestamp": crate::domain::time::rfc3339(out.now),
                "data": {"source_id": out.to, "message": out.message_json},
            })
            .to_string();
            let id = format!("msg_natter_{}", out.message_id);
            let ts = out.now / 1_000_000;
            let secret = inbox.webhook_secret.as_deref().unwrap_or("");
            let resp = super::signing::signed_post(&http.client, url, secret, &id, ts, body)
                .map_err(SendError::Permanent)?
                .send()
                .await
                .map_err(transport_error)?;
            let status = resp.status();
            if !status.is_success() {
                return Err(status_error(
                    status,
                    "the callback did not accept the message",
                ));
            }
            Ok(Sent {
                provider_id: None,
                status: DeliveryStatus::Sent,
            })
        })
    }
}
