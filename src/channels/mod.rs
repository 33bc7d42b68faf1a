//! The channel layer: one adapter per provider, all with the same shape.
//! An adapter verifies and parses an inbound webhook into core terms
//! ([`Inbound`] messages and [`StatusUpdate`]s), sends an outbound message
//! and reports what the provider said, and fetches inbound media with the
//! provider's credentials. The core (store, workspace, outbox) knows
//! nothing about providers: adding a channel is one module here and one
//! line in [`REGISTRY`].

pub mod api;
pub mod email;
pub mod http;
pub mod kind;
pub mod meta;
pub mod settings;
pub mod signing;
pub mod telegram;
pub mod twilio;
pub mod whatsapp;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::HeaderMap;

use crate::domain::time::Micros;
pub use crate::store::Inbound;
use crate::store::{DeliveryStatus, InboxRecord};
pub use kind::ChannelKind;
pub use settings::{Setting, SettingKind};

/// A boxed future, so adapters can sit in one registry.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An inbound webhook as received (raw body: signatures cover the bytes).
pub struct HookRequest<'a> {
    /// `GET` (handshakes) or `POST`.
    pub method: &'a str,
    /// The public URL the provider called: base URL + path + query.
    pub url: String,
    /// The query string.
    pub query: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
    /// `status` for Twilio's status callbacks, else empty.
    pub sub: &'a str,
}

/// A provider's report on a message we sent.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    /// The provider's id of our message.
    pub provider_id: String,
    /// The step reached.
    pub status: DeliveryStatus,
    /// The provider's error, when failed.
    pub error: Option<String>,
}

/// What the webhook endpoint answers the provider.
#[derive(Debug, Clone)]
pub enum HookReply {
    /// `200` with an empty JSON object.
    Ok,
    /// `200` with this body and content type (Meta's hub.challenge,
    /// Twilio's empty TwiML).
    Body(&'static str, String),
}

/// A verified, parsed webhook.
#[derive(Debug)]
pub struct Parsed {
    /// Messages from people.
    pub messages: Vec<Inbound>,
    /// Reports on what we sent.
    pub statuses: Vec<StatusUpdate>,
    /// The answer.
    pub reply: HookReply,
}

impl Parsed {
    /// Nothing to store, the given answer.
    pub fn reply(reply: HookReply) -> Self {
        Self {
            messages: Vec::new(),
            statuses: Vec::new(),
            reply,
        }
    }
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The signature or secret did not verify (401, nothing stored).
    #[error("{0}")]
    Unauthorized(String),
    /// The body is not what the provider sends (400).
    #[error("{0}")]
    BadRequest(String),
}

/// An outbound message, in terms an adapter needs.
pub struct Outgoing<'a> {
    /// The person's channel address.
    pub to: &'a str,
    /// The text.
    pub body: &'a str,
    /// Absolute URLs of attached files (providers fetch them from us).
    pub media: Vec<(String, String)>,
    /// The same files on disk, (name, content type, path), for channels
    /// that carry the bytes themselves (email).
    pub files: Vec<(String, String, std::path::PathBuf)>,
    /// Our message id: the idempotency key of the send.
    pub message_id: u64,
    /// When the person last wrote (the 24-hour windows).
    pub last_inbound_at: Option<Micros>,
    /// Now.
    pub now: Micros,
    /// The natter base URL (status callback URLs).
    pub base_url: &'a str,
    /// The inbox's id (callback paths).
    pub inbox_id: u64,
    /// The message as the contract shows it (the API channel posts it;
    /// `None` for notifications, which are no message of a conversation).
    pub message_json: Option<crate::contract::Message>,
    /// The conversation (email's plus-address).
    pub conversation_id: u64,
    /// The conversation's subject (email).
    pub subject: Option<String>,
    /// The person's name, if known.
    pub contact_name: Option<String>,
    /// Provider ids of the conversation's messages, oldest first (email's
    /// References).
    pub thread: Vec<String>,
    /// The provider id of the person's latest message (email's
    /// In-Reply-To).
    pub reply_to_id: Option<String>,
    /// The conversation's routing token for `to`, a MAC only natter can
    /// make (see [`email::route_token`]): email puts it in Reply-To and
    /// Message-ID, so the person's answer threads back and nobody else's.
    pub route_token: String,
}

/// What a provider said to a send.
#[derive(Debug)]
pub struct Sent {
    /// The provider's id for it (status callbacks name it).
    pub provider_id: Option<String>,
    /// Usually `sent`.
    pub status: DeliveryStatus,
}

/// A failed send.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying (network, 429, 5xx).
    #[error("{0}")]
    Temporary(String),
    /// Retrying won't help (bad number, blocked, outside the window).
    #[error("{0}")]
    Permanent(String),
}

/// Downloaded media.
pub struct Media {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// A name to show.
    pub name: String,
}

/// One provider.
pub trait Channel: Send + Sync {
    /// Which channel this adapter is.
    fn kind(&self) -> ChannelKind;

    /// The contract's channel name (`sms`, `whatsapp`, ...).
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Senders are phone numbers (see
    /// [`ChannelKind::addresses_are_phone_numbers`]).
    fn addresses_are_phone_numbers(&self) -> bool {
        false
    }

    /// A contact's email is its address here (see
    /// [`ChannelKind::follows_a_mailbox`]).
    fn follows_a_mailbox(&self) -> bool {
        false
    }

    /// The inbox gets an API token (see [`ChannelKind::has_api_token`]).
    fn has_api_token(&self) -> bool {
        false
    }

    /// Connecting registers the webhook with the provider (see
    /// [`ChannelKind::sets_its_webhook_on_connect`]).
    fn sets_its_webhook_on_connect(&self) -> bool {
        false
    }

    /// Delivery reports come to the `/status` webhook (see
    /// [`ChannelKind::status_callbacks`]).
    fn status_callbacks(&self) -> bool {
        false
    }

    /// An unread-reply notification may be texted through it (see
    /// [`ChannelKind::carries_reply_notifications`]).
    fn carries_reply_notifications(&self) -> bool {
        false
    }

    /// Checks settings beyond what [`Channel::settings`] declares (a
    /// rule between two of them); the message names what is missing.
    fn check_settings(
        &self,
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), crate::domain::Invalid> {
        let _ = settings;
        Ok(())
    }

    /// The provider path segment of its webhook (`/hooks/{provider}/...`),
    /// or none when it has no webhook.
    fn hook(&self) -> Option<&'static str>;

    /// Its settings (names, secrecy, defaults).
    fn settings(&self) -> &'static [Setting];

    /// Verifies a webhook (in constant time) and parses it.
    fn parse_hook(&self, inbox: &InboxRecord, req: &HookRequest<'_>) -> Result<Parsed, HookError>;

    /// Sends one message.
    fn send<'a>(
        &'a self,
        http: &'a http::Http,
        inbox: &'a InboxRecord,
        out: Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Sent, SendError>>;

    /// Downloads inbound media with the provider's credentials.
    fn fetch_media<'a>(
        &'a self,
        http: &'a http::Http,
        inbox: &'a InboxRecord,
        media: &'a crate::store::MediaRef,
    ) -> BoxFuture<'a, Result<Media, SendError>> {
        Box::pin(async move {
            let _ = inbox;
            plain_download(http, &media.url, None, media.name.clone()).await
        })
    }

    /// Runs once when an inbox is created (Telegram's setWebhook) and for
    /// "test connection": proves the credentials work.
    fn connect<'a>(
        &'a self,
        http: &'a http::Http,
        inbox: &'a InboxRecord,
        base_url: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        let _ = (http, inbox, base_url);
        Box::pin(async { Ok("nothing to check for this channel".to_owned()) })
    }
}

/// Every channel adapter: one line each.
pub static REGISTRY: &[&dyn Channel] = &[
    &twilio::Twilio,
    &whatsapp::WhatsApp,
    &meta::Meta::MESSENGER,
    &meta::Meta::INSTAGRAM,
    &telegram::Telegram,
    &api::Api,
    &email::channel::Email,
];

/// The adapter of a channel name.
pub fn by_name(name: &str) -> Option<&'static dyn Channel> {
    ChannelKind::parse(name).and_then(ChannelKind::adapter)
}

/// Every channel an inbox can have (`web` and `email` are built in).
pub fn names() -> Vec<&'static str> {
    ChannelKind::ALL.iter().map(|k| k.as_str()).collect()
}

/// How a channel is named in pages, and its icon.
pub fn label(channel: &str) -> (&'static str, &'static str) {
    ChannelKind::of(channel).label()
}

/// Size limit of downloaded media (matches uploads).
pub const MAX_MEDIA_BYTES: usize = 25 * 1024 * 1024;

/// GETs a file, with an optional bearer or basic credential.
pub async fn plain_download(
    http: &http::Http,
    url: &str,
    auth: Option<Auth<'_>>,
    name: Option<String>,
) -> Result<Media, SendError> {
    let url = http
        .check(url)
        .map_err(|e| SendError::Permanent(format!("media URL refused: {e}")))?;
    let fallback = url
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "file".to_owned());
    let mut req = http.media_client.get(url);
    req = match auth {
        Some(Auth::Bearer(t)) => req.bearer_auth(t),
        Some(Auth::Basic(u, p)) => req.basic_auth(u, Some(p)),
        None => req,
    };
    let resp = req
        .send()
        .await
        // Without the URL: Telegram's file URLs carry the bot token.
        .map_err(|e| SendError::Temporary(format!("media download failed: {}", e.without_url())))?;
    let status = resp.status();
    if !status.is_success() {
        let msg = format!("media download answered {status}");
        return Err(if status.is_server_error() || status.as_u16() == 429 {
            SendError::Temporary(msg)
        } else {
            SendError::Permanent(msg)
        });
    }
    if resp
        .content_length()
        .is_some_and(|n| n as usize > MAX_MEDIA_BYTES)
    {
        return Err(SendError::Permanent("media larger than 25 MB".into()));
    }
    let bytes = read_limited(resp, MAX_MEDIA_BYTES).await?;
    Ok(Media {
        bytes,
        name: name.unwrap_or(fallback),
    })
}

/// Reads a body up to a size.
pub async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, SendError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| SendError::Temporary(format!("download interrupted: {}", e.without_url())))?
    {
        if out.len() + chunk.len() > limit {
            return Err(SendError::Permanent("response too large".into()));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Credentials for a provider call.
pub enum Auth<'a> {
    /// `Authorization: Bearer`.
    Bearer(&'a str),
    /// `Authorization: Basic`.
    Basic(&'a str, &'a str),
}

/// Maps an HTTP answer of a provider to a send error: 429 and 5xx are
/// temporary, other 4xx permanent, with the provider's message.
pub fn status_error(status: reqwest::StatusCode, detail: &str) -> SendError {
    let detail: String = detail.chars().take(300).collect();
    let msg = format!("the provider answered {status}: {detail}");
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        SendError::Temporary(msg)
    } else {
        SendError::Permanent(msg)
    }
}

/// "Test connection" for providers with a REST API: one authenticated GET
/// that succeeds only with good credentials.
pub async fn probe(
    req: reqwest::RequestBuilder,
    ok: &str,
    hint: &str,
) -> Result<String, SendError> {
    let resp = req.send().await.map_err(transport_error)?;
    if resp.status().is_success() {
        Ok(ok.to_owned())
    } else {
        Err(status_error(resp.status(), hint))
    }
}

/// Turns a transport error into a temporary failure (without the URL,
/// which may hold a credential).
pub fn transport_error(e: reqwest::Error) -> SendError {
    SendError::Temporary(format!("could not reach the provider: {}", e.without_url()))
}

/// HMAC-SHA256 of `body` under `key`, compared with `expected` (hex) in
/// constant time.
pub fn hmac_sha256_hex_matches(key: &[u8], body: &[u8], expected_hex: &str) -> bool {
    use hmac::{Hmac, Mac};
    let Ok(expected) = hex::decode(expected_hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Constant-time equality of two secrets.
pub fn secret_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A header as text.
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The 24-hour customer-care window of WhatsApp and Meta.
pub fn within_24h(last_inbound_at: Option<Micros>, now: Micros) -> bool {
    last_inbound_at.is_some_and(|t| now - t < 24 * 3600 * 1_000_000)
}

/// Text from a provider, made storable: NUL removed, at most the
/// contract's 10,000 characters (email keeps the whole original as an
/// attachment).
pub fn clean_text(raw: &str) -> String {
    let t: String = raw.replace('\0', "");
    let t = t.trim();
    let max = crate::domain::MessageBody::MAX_CHARS;
    if t.chars().count() > max {
        let mut cut: String = t.chars().take(max - 1).collect();
        cut.push('…');
        cut
    } else {
        t.to_owned()
    }
}
