//! Messages that reach natter through a channel: a provider's webhook, the
//! API channel's inbound route and (through [`receive`]) a followed
//! mailbox. This module holds the rules of receiving: the adapter
//! verifies first (401, nothing stored), a phone number that writes is a
//! verified identifier, which conversation a message continues, and what
//! an empty message is stored as. The store only persists what these
//! rules decide, in one write per message.

use crate::channels::{
    self, ChannelKind, HookError, HookReply, HookRequest, Inbound, StatusUpdate,
};
use crate::domain::ids::InboxId;
use crate::domain::time::{self, Micros};
use crate::domain::{AuthorType, ConversationStatus, Invalid, MessageBody};
use crate::error::{ApiError, ApiResult};
use crate::store::{
    ContactRecord, ConversationRecord, Delivery, InboundRules, InboxRecord, Received, Store,
};

use super::Services;

/// The verified-identifier key of a phone that wrote on a channel whose
/// addresses are phone numbers (`phone:+15551234`), if the address is a
/// plausible number.
pub fn verified_phone(kind: ChannelKind, identity: &str) -> Option<String> {
    if !kind.addresses_are_phone_numbers() {
        return None;
    }
    let raw = identity.trim().trim_start_matches("whatsapp:");
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let plausible = (6..=15).contains(&digits.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_digit() || "+-() .".contains(c));
    plausible.then(|| format!("phone:+{digits}"))
}

/// The product's receiving rules, as the store asks them inside its write.
pub struct Rules;

impl InboundRules for Rules {
    /// A phone number that writes to us is verified: the same number on
    /// SMS and WhatsApp is one person.
    fn verified_key(&self, inbox: &InboxRecord, identity: &str) -> Option<String> {
        verified_phone(ChannelKind::of(&inbox.channel), identity)
    }

    /// A named conversation (email threading) is followed only if it is in
    /// this inbox and the sender's own: naming someone else's (a guessed
    /// id, a Message-ID the sender saw) starts the sender's own. Otherwise
    /// the sender's newest conversation here continues unless resolved.
    fn continues(
        &self,
        inbox: &InboxRecord,
        sender: &ContactRecord,
        candidate: &ConversationRecord,
        named: bool,
        latest: bool,
    ) -> bool {
        candidate.inbox_id == inbox.id
            && ((named && candidate.contact_id == sender.id)
                || (latest && candidate.status != ConversationStatus::Resolved))
    }
}

/// Stores one inbound message under the receiving [`Rules`]; a provider
/// id seen before stores nothing.
pub async fn receive(
    store: &Store,
    inbox: &InboxRecord,
    m: Inbound,
    now: Micros,
) -> crate::store::Result<Received> {
    store.receive(inbox, m, &Rules, now).await
}

/// [`receive`], counting a stored message in the metrics (the webhook
/// and API routes count; the mailbox follower never has).
async fn receive_counted(
    store: &Store,
    inbox: &InboxRecord,
    m: Inbound,
) -> crate::store::Result<Received> {
    let r = receive(store, inbox, m, time::now()).await?;
    if matches!(r, Received::Stored { .. }) {
        crate::metrics::global().message_created(AuthorType::Contact);
    }
    Ok(r)
}

/// A customer message posted by the business's own app or bot (the API
/// channel), as the web layer parsed it.
#[derive(Debug)]
pub struct ApiChannelMessage {
    /// The sender's id in the business's system.
    pub source_id: String,
    /// The sender's name, if given.
    pub name: Option<String>,
    /// The sender's email, if given.
    pub email: Option<String>,
    /// The text.
    pub body: String,
    /// The business's id of the message (retries with it store nothing).
    pub message_id: Option<String>,
}

impl Services {
    /// A provider's webhook for inbox `inbox_id` at `/hooks/{provider}`:
    /// 404 unless that inbox's adapter takes webhooks there (and status
    /// reports when `sub` is `status`), 401 when the adapter's
    /// verification fails (nothing stored), else every message and status
    /// stored durably and the answer the provider expects.
    #[tracing::instrument(skip_all, fields(inbox = %inbox_id, provider))]
    pub async fn provider_hook(
        &self,
        provider: &str,
        inbox_id: InboxId,
        req: &HookRequest<'_>,
    ) -> ApiResult<HookReply> {
        let inbox = self.store.inbox(inbox_id)?.ok_or(ApiError::NotFound)?;
        let kind = ChannelKind::of(&inbox.channel);
        let adapter = kind
            .adapter()
            .filter(|a| a.hook() == Some(provider))
            .ok_or(ApiError::NotFound)?;
        if req.sub == "status" && !kind.status_callbacks() {
            return Err(ApiError::NotFound);
        }
        let parsed = adapter.parse_hook(&inbox, req).map_err(|e| match e {
            HookError::Unauthorized(why) => {
                tracing::warn!(inbox = %inbox.id, provider, "webhook refused: {why}");
                ApiError::Unauthorized("the webhook's signature or secret does not verify")
            }
            HookError::BadRequest(why) => ApiError::Malformed(why),
        })?;
        for mut m in parsed.messages {
            m.body = channels::clean_text(&m.body);
            if m.body.is_empty() && m.media.is_empty() && m.attachments.is_empty() {
                m.body = "[empty message]".into();
            }
            let r = receive_counted(&self.store, &inbox, m).await?;
            self.after_inbound(&r).await;
        }
        for s in parsed.statuses {
            self.record_status(&inbox, s).await?;
        }
        Ok(parsed.reply)
    }

    /// What follows a stored inbound message: auto-assignment when it
    /// opened its conversation, the out-of-office message.
    async fn after_inbound(&self, r: &Received) {
        if r.opened().is_some() {
            self.router.route().await;
        }
        if let Received::Stored { conversation, .. } = r {
            self.out_of_office(conversation).await;
        }
    }

    /// A provider's report on a message we sent from `inbox`; reports on
    /// messages natter does not know are ignored.
    async fn record_status(&self, inbox: &InboxRecord, s: StatusUpdate) -> ApiResult<()> {
        let Some(msg) = self
            .store
            .message_by_provider_id(inbox.id, &s.provider_id)?
        else {
            return Ok(());
        };
        let delivery = Delivery {
            status: s.status,
            error: s.error,
        };
        self.store
            .set_delivery(
                msg.conversation_id,
                msg.seq,
                delivery,
                None,
                None,
                time::now(),
            )
            .await?;
        Ok(())
    }

    /// A customer message through the API channel: 401 unless `token` is
    /// the inbox's API token (checked before anything is said about the
    /// inbox), then the checked message stored; a `message_id` seen before
    /// gives the message stored the first time.
    #[tracing::instrument(skip_all, fields(inbox = %inbox_id))]
    pub async fn api_channel_message(
        &self,
        inbox_id: &str,
        token: &str,
        m: ApiChannelMessage,
    ) -> ApiResult<Received> {
        let inbox = InboxId::parse(inbox_id)
            .and_then(|id| self.store.inbox(id).ok().flatten())
            .filter(|i| ChannelKind::of(&i.channel).has_api_token());
        let ok = match (&inbox, token) {
            (Some(i), t) if !t.is_empty() => {
                channels::secret_eq(t, i.api_token.as_deref().unwrap_or(""))
            }
            _ => false,
        };
        let Some(inbox) = inbox.filter(|_| ok) else {
            return Err(ApiError::Unauthorized("this inbox's api_token is required"));
        };
        let source = m.source_id.trim();
        if source.is_empty() || source.len() > 256 {
            return Err(Invalid::new("source_id", "source_id must be 1 to 256 characters").into());
        }
        let body = MessageBody::parse(m.body)?.into_inner();
        let name = crate::domain::ContactName::parse(m.name.as_deref())?.map(|n| n.into_inner());
        let email = match m.email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => Some(crate::domain::Email::parse(e)?.into_inner()),
        };
        let provider_id = match m.message_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(id) if id.len() > 256 => {
                return Err(
                    Invalid::new("message_id", "message_id must be at most 256 characters").into(),
                )
            }
            Some(id) => Some(id.to_owned()),
        };
        let inbound = Inbound {
            identity: source.to_owned(),
            name,
            email,
            body,
            provider_id,
            ..Inbound::default()
        };
        let r = receive_counted(&self.store, &inbox, inbound).await?;
        self.after_inbound(&r).await;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbers_on_phone_channels_are_verified() {
        assert_eq!(
            verified_phone(ChannelKind::Sms, "+1 (555) 123-4567").as_deref(),
            Some("phone:+15551234567")
        );
        assert_eq!(
            verified_phone(ChannelKind::Whatsapp, "whatsapp:+15551234567").as_deref(),
            Some("phone:+15551234567")
        );
        assert_eq!(verified_phone(ChannelKind::Telegram, "15551234567"), None);
        assert_eq!(verified_phone(ChannelKind::Sms, "not a number"), None);
        assert_eq!(verified_phone(ChannelKind::Sms, "123"), None);
    }
}
