//! What a customer may expect (the contract's "Business hours,
//! expectations and ratings"): whether the inbox is open, when it opens
//! next, how long the team usually takes to reply (read from the first
//! replies of the last 30 days, in business hours when the inbox has
//! them), and the out-of-office message to a contact who writes outside
//! hours.

use crate::channels::ChannelKind;
use crate::domain::time::{self, Micros};
use crate::domain::AuthorType;
use crate::error::ApiResult;
use crate::store::{Author, ConversationRecord, Effects, InboxRecord, NewMessage, Store};

use super::Services;

/// How far back the usual reply time looks.
const REPLY_WINDOW: Micros = 30 * 24 * 3600 * 1_000_000;

/// The out-of-office message goes at most this often per conversation.
const AWAY_EVERY: Micros = 24 * 3600 * 1_000_000;

/// No out-of-office message while an agent replied this recently: they
/// are obviously there.
const AGENT_JUST_REPLIED: Micros = 5 * 60 * 1_000_000;

/// What the messenger and the widget's info tell a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// Within business hours now (always, without hours).
    pub open_now: bool,
    /// When it opens next, while closed.
    pub next_open_at: Option<Micros>,
    /// The median wait for a first reply over the last 30 days.
    pub reply_secs: Option<u64>,
    /// That median in words, else the inbox's own text, if any.
    pub reply_time: Option<String>,
}

/// A reply time in the words a customer reads.
pub fn in_words(secs: u64) -> &'static str {
    match secs {
        0..=300 => "The team usually replies in a few minutes.",
        301..=3600 => "The team usually replies within an hour.",
        3601..=14_400 => "The team usually replies in a few hours.",
        14_401..=86_400 => "The team usually replies within a day.",
        _ => "The team usually replies within a few days.",
    }
}

/// The customer's expectations of `inbox` at `now`.
pub fn expectations(
    store: &Store,
    inbox: &InboxRecord,
    now: Micros,
) -> crate::store::Result<Expectations> {
    let (open_now, next_open_at) = match &inbox.business_hours {
        Some(h) if !h.is_open(now) => (false, h.next_open(now)),
        _ => (true, None),
    };
    let mut waits = store.first_reply_waits(inbox.id, now - REPLY_WINDOW)?;
    let reply_secs = if waits.is_empty() {
        None
    } else {
        waits.sort_unstable();
        Some(waits[waits.len() / 2])
    };
    Ok(Expectations {
        open_now,
        next_open_at,
        reply_secs,
        reply_time: reply_secs
            .map(|s| in_words(s).to_owned())
            .or_else(|| inbox.reply_time.clone()),
    })
}

/// After a contact's message in `c`: the inbox's out-of-office message,
/// as a `system` message through the conversation's channel, when the
/// inbox is closed at `now` (the server's clock), it has not gone in this
/// conversation for a day, and no agent replied in the last five
/// minutes. The store checks the last two again inside its write, so two
/// messages at once send it once. Returns whether it was sent.
pub async fn out_of_office(
    store: &Store,
    c: &ConversationRecord,
    now: Micros,
) -> crate::store::Result<bool> {
    let Some(inbox) = store.inbox(c.inbox_id)? else {
        return Ok(false);
    };
    let (Some(hours), Some(text)) = (&inbox.business_hours, &inbox.out_of_office) else {
        return Ok(false);
    };
    if hours.is_open(now) {
        return Ok(false);
    }
    let new = NewMessage {
        author: Author {
            kind: AuthorType::System,
            id: None,
            name: Some(inbox.name.clone()),
        },
        body: text.clone(),
        private: false,
        attachments: Vec::new(),
        via: None,
    };
    let effects = Effects {
        send: ChannelKind::of(&inbox.channel)
            .replies_leave_natter()
            .then_some(None),
        notify_at: None,
    };
    let real_now = time::now();
    store
        .post_away_message(
            c.id,
            new,
            effects,
            real_now,
            |conv| {
                conv.away_sent_at.is_none_or(|t| now - t >= AWAY_EVERY)
                    && conv
                        .agent_replied_at
                        .is_none_or(|t| real_now - t >= AGENT_JUST_REPLIED)
            },
            now,
        )
        .await
}

impl Services {
    /// The customer's expectations of `inbox` now ([`expectations`]).
    #[tracing::instrument(skip_all, fields(inbox = %inbox.id))]
    pub fn expectations(&self, inbox: &InboxRecord) -> ApiResult<Expectations> {
        Ok(expectations(&self.store, inbox, self.config.clock.now())?)
    }

    /// [`out_of_office`] after a contact's message, logged on failure
    /// (the contact's message is stored either way).
    pub(super) async fn out_of_office(&self, c: &ConversationRecord) {
        if let Err(e) = out_of_office(&self.store, c, self.config.clock.now()).await {
            tracing::error!(conversation = %c.id, error = %e, "could not send the out-of-office message");
        }
    }
}
