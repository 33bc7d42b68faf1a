//! Email as a channel: settings, SMTP sends with threading headers (one
//! thread in the customer's mail client), and the connection test. Inbound
//! mail is not a webhook: [`crate::service::mailbox`] follows IMAP.

use super::smtp::{self, OutgoingMail};
use super::EmailSettings;
use crate::channels::settings::{Setting, SettingKind};
use crate::channels::{
    BoxFuture, Channel, HookError, HookRequest, Outgoing, Parsed, SendError, Sent,
};
use crate::store::{DeliveryStatus, InboxRecord};

/// The email adapter.
pub struct Email;

const SETTINGS: &[Setting] = &[
    Setting::text("imap_host", "IMAP server").of(SettingKind::Host),
    Setting::text("imap_port", "IMAP port")
        .of(SettingKind::Number)
        .with_default("993"),
    Setting::text("imap_tls", "IMAP over TLS")
        .of(SettingKind::Bool)
        .with_default("true"),
    Setting::text("smtp_host", "SMTP server").of(SettingKind::Host),
    Setting::text("smtp_port", "SMTP port")
        .of(SettingKind::Number)
        .with_default("587"),
    Setting::text("smtp_tls", "SMTP over TLS")
        .of(SettingKind::Bool)
        .with_default("true"),
    Setting::text("username", "User name"),
    Setting::secret("password", "Password"),
    Setting::text("from_address", "Support address"),
];

/// The typed settings of an email inbox.
pub fn settings_of(inbox: &InboxRecord) -> Result<EmailSettings, String> {
    serde_json::from_value(serde_json::Value::Object(inbox.settings.clone()))
        .map_err(|e| format!("the email settings are incomplete: {e}"))
}

/// The domain of an address (after the last `@`).
pub fn domain_of(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map_or("natter.invalid", |(_, d)| d)
}

/// Our Message-ID for a reply: stable per message, so a resend after a
/// crash carries the same id and mail clients drop the duplicate. It
/// carries the conversation's routing token (see
/// [`super::route_token`]), so an answer by In-Reply-To threads back.
pub fn message_id_for(message_id: u64, route_token: &str, from_address: &str) -> String {
    format!(
        "natter.{message_id}.{route_token}@{}",
        domain_of(from_address)
    )
}

/// "Re: subject", once.
pub fn reply_subject(subject: Option<&str>) -> String {
    match subject.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.to_ascii_lowercase().starts_with("re:") => s.to_owned(),
        Some(s) => format!("Re: {s}"),
        None => "Re: your message".to_owned(),
    }
}

impl Channel for Email {
    fn kind(&self) -> crate::channels::ChannelKind {
        crate::channels::ChannelKind::Email
    }

    fn follows_a_mailbox(&self) -> bool {
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
            "email arrives over IMAP, not webhooks".into(),
        ))
    }

    fn send<'a>(
        &'a self,
        http: &'a crate::channels::http::Http,
        inbox: &'a InboxRecord,
        out: Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let mut s = settings_of(inbox).map_err(SendError::Permanent)?;
            s.allow_private = http.allow_private;
            let id = message_id_for(out.message_id, &out.route_token, &s.from_address);
            let text = out.body.to_owned();
            // The reply's files travel as real attachments.
            let mut attachments = Vec::new();
            for (name, content_type, path) in &out.files {
                let p = path.clone();
                let bytes = tokio::task::spawn_blocking(move || std::fs::read(p))
                    .await
                    .map_err(|e| {
                        SendError::Temporary(format!("cannot read the attachment {name}: {e}"))
                    })?
                    .map_err(|e| {
                        SendError::Permanent(format!("cannot read the attachment {name}: {e}"))
                    })?;
                attachments.push((name.clone(), content_type.clone(), bytes));
            }
            let references: Vec<String> = out.thread.iter().rev().take(20).rev().cloned().collect();
            let mail = OutgoingMail {
                to: out.to.to_owned(),
                to_name: out.contact_name.clone(),
                subject: reply_subject(out.subject.as_deref()),
                text,
                message_id: id.clone(),
                in_reply_to: out.reply_to_id.clone(),
                references,
                reply_to: Some(super::plus_address(&s.from_address, &out.route_token)),
                list_unsubscribe: None,
                attachments,
            };
            smtp::send(&s, &mail).await.map_err(|e| {
                if e.permanent {
                    SendError::Permanent(e.message)
                } else {
                    SendError::Temporary(e.message)
                }
            })?;
            Ok(Sent {
                provider_id: Some(id),
                status: DeliveryStatus::Sent,
            })
        })
    }

    fn connect<'a>(
        &'a self,
        http: &'a crate::channels::http::Http,
        inbox: &'a InboxRecord,
        _base_url: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        Box::pin(async move {
            let mut s = settings_of(inbox).map_err(SendError::Permanent)?;
            s.allow_private = http.allow_private;
            super::imap::test_connection(&s).await.map_err(|e| {
                tracing::warn!(inbox = %inbox.id, error = %e, "email connection test failed");
                SendError::Permanent(e.for_admin())
            })?;
            Ok("IMAP and SMTP accepted the settings".into())
        })
    }
}
