//! Customer satisfaction: each resolution of a conversation in an inbox
//! with `csat` on may be rated once (1 to 5, and a comment), never one no
//! agent ever replied in. The messenger shows the five choices itself;
//! other channels get a signed link to `/rate/{token}` through the same
//! durable outbox as a reply. The token is an HMAC of the conversation
//! and the resolution under the server's secret: nothing is stored for
//! it, and it rates only that resolution.

use crate::channels::ChannelKind;
use crate::domain::ids::ConversationId;
use crate::domain::{time, AuthorType, ConversationStatus, Invalid};
use crate::error::{ApiError, ApiResult};
use crate::store::{Author, ContactRecord, ConversationRecord, Effects, NewMessage};

use super::notify::link_token;
use super::Services;

/// A rating as given: the score (1 to 5) and an optional comment.
#[derive(Debug, Clone)]
pub struct RatingInput {
    /// As sent (`"4"` from a form, 4 from JSON).
    pub score: i64,
    /// Up to 1000 characters.
    pub comment: Option<String>,
}

impl RatingInput {
    fn checked(self) -> Result<(u8, Option<String>), Invalid> {
        let score = u8::try_from(self.score)
            .ok()
            .filter(|s| (1..=5).contains(s))
            .ok_or_else(|| Invalid::new("score", "score must be 1, 2, 3, 4 or 5"))?;
        let comment = match self.comment.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) if c.chars().count() > 1000 => {
                return Err(Invalid::new(
                    "comment",
                    "comment must be at most 1000 characters",
                ))
            }
            Some(c) => Some(crate::channels::clean_text(c)),
        };
        Ok((score, comment))
    }
}

/// The five choices, worst first: (score, emoji, words).
pub const CHOICES: [(u8, &str, &str); 5] = [
    (1, "😠", "Bad"),
    (2, "🙁", "Poor"),
    (3, "😐", "Okay"),
    (4, "🙂", "Good"),
    (5, "😍", "Great"),
];

fn rating_token(secret: &[u8], c: ConversationId, resolution: u32) -> String {
    format!(
        "{c}.{resolution}.{}",
        link_token(secret, &format!("rate:{c}:{resolution}"))
    )
}

impl Services {
    /// The inbox a conversation is in (a rating page names it).
    pub fn inbox_of_conversation(
        &self,
        c: &ConversationRecord,
    ) -> ApiResult<crate::store::InboxRecord> {
        self.store.inbox(c.inbox_id)?.ok_or(ApiError::NotFound)
    }

    /// Whether the contact should be asked to rate `c` now: its inbox asks,
    /// it is resolved, an agent replied in it, and this resolution is not
    /// rated yet.
    pub fn rating_due(&self, c: &ConversationRecord) -> ApiResult<bool> {
        if c.status != ConversationStatus::Resolved
            || c.agent_replied_at.is_none()
            || c.resolutions == 0
            || c.rating
                .as_ref()
                .is_some_and(|r| r.resolution == c.resolutions)
        {
            return Ok(false);
        }
        Ok(self.store.inbox(c.inbox_id)?.is_some_and(|i| i.csat))
    }

    /// The contact rates its conversation's latest resolution (the API,
    /// the messenger): 422 when its inbox does not ask or there is nothing
    /// to rate, 409 for a second rating of the same resolution.
    #[tracing::instrument(skip_all, fields(contact = %contact.id, conversation = %c.id))]
    pub async fn rate_own(
        &self,
        contact: &ContactRecord,
        c: &ConversationRecord,
        input: RatingInput,
    ) -> ApiResult<ConversationRecord> {
        let (score, comment) = input.checked()?;
        if !self.store.inbox(c.inbox_id)?.is_some_and(|i| i.csat) {
            return Err(Invalid::new("score", "this inbox does not ask for ratings").into());
        }
        tracing::info!(contact = %contact.id, score, "rated");
        Ok(self
            .store
            .rate(c.id, None, score, comment, time::now())
            .await?)
    }

    /// The conversation a rating link names, if its signature holds.
    pub async fn rating_link(&self, token: &str) -> ApiResult<(ConversationRecord, u32)> {
        let mut parts = token.splitn(3, '.');
        let (Some(c), Some(r), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ApiError::NotFound);
        };
        let (Some(cid), Ok(resolution)) = (ConversationId::parse(c), r.parse::<u32>()) else {
            return Err(ApiError::NotFound);
        };
        let secret = self.store.server_secret().await?;
        if !crate::channels::secret_eq(token, &rating_token(&secret, cid, resolution)) {
            return Err(ApiError::NotFound);
        }
        let conv = self.store.conversation(cid)?.ok_or(ApiError::NotFound)?;
        Ok((conv, resolution))
    }

    /// A rating through a signed link (other channels than the
    /// messenger): the resolution the link was sent for, once.
    #[tracing::instrument(skip_all)]
    pub async fn rate_by_link(
        &self,
        token: &str,
        input: RatingInput,
    ) -> ApiResult<ConversationRecord> {
        let (score, comment) = input.checked()?;
        let (c, resolution) = self.rating_link(token).await?;
        Ok(self
            .store
            .rate(c.id, Some(resolution), score, comment, time::now())
            .await?)
    }

    /// After a resolve: on a channel whose replies leave natter (SMS,
    /// WhatsApp, email, ...), the signed rating link as a `system`
    /// message through the outbox, when the contact should be asked. The
    /// messenger asks by itself. Failures are logged: the resolve stands.
    pub(super) async fn ask_for_rating(&self, c: &ConversationRecord) {
        if let Err(e) = self.try_ask_for_rating(c).await {
            tracing::error!(conversation = %c.id, error = %e, "could not ask for a rating");
        }
    }

    async fn try_ask_for_rating(&self, c: &ConversationRecord) -> ApiResult<()> {
        if !self.rating_due(c)? {
            return Ok(());
        }
        let Some(inbox) = self.store.inbox(c.inbox_id)? else {
            return Ok(());
        };
        if !ChannelKind::of(&inbox.channel).replies_leave_natter() {
            return Ok(());
        }
        let secret = self.store.server_secret().await?;
        let link = format!(
            "{}/rate/{}",
            self.config.base_url,
            rating_token(&secret, c.id, c.resolutions)
        );
        let new = NewMessage {
            author: Author {
                kind: AuthorType::System,
                id: None,
                name: Some(inbox.name.clone()),
            },
            body: format!("How did we do? Tap to rate this conversation: {link}"),
            private: false,
            attachments: Vec::new(),
            via: None,
        };
        let effects = Effects {
            send: Some(None),
            notify_at: None,
        };
        self.store
            .post_message(c.id, new, effects, time::now())
            .await?;
        Ok(())
    }
}
