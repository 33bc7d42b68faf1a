//! The event log as it is kept: every event by id, a new message by where
//! it is (the message itself lives once, in `conversationseq_message`),
//! and the reading back for SSE replay, which puts the message in again.

use serde::{Deserialize, Serialize};

use super::keys::{self, u64_be};
use super::{
    AttachmentRecord, Delivery, EventPayload, EventRecord, MessageRecord, Result, Store,
    StoreError, Tree,
};
use crate::domain::ids::{ContactId, ConversationId, EventId, InboxId};
use crate::domain::time::Micros;

/// One entry of `eventid_event`. The layout is [`EventRecord`]'s, so every
/// event logged before messages were kept by reference still decodes
/// (`payload` set); a `message.created` logged since keeps `message`
/// instead: about 100 bytes, where the copy was 300 to 400 and the log
/// held more of them than the messages tree did.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredEvent {
    /// Increasing, gapless log position.
    pub id: EventId,
    /// Inbox of the conversation, for agent access checks.
    pub inbox_id: InboxId,
    /// Contact of the conversation, for contact access checks (and to
    /// find a contact's events when it is erased).
    pub contact_id: ContactId,
    /// When it happened.
    pub at: Micros,
    /// What happened, for every event but a new message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<EventPayload>,
    /// A new message, by reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageAt>,
    /// A change only the team sees.
    #[serde(default)]
    pub team_only: bool,
}

/// Where a new message is, with the fields of it that can change after it
/// was stored (delivery, the provider's id, fetched media) as they were
/// then: a replay shows the message exactly as the live event did, and its
/// later `message.updated` events tell the rest in order.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MessageAt {
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Its seq there.
    pub seq: u64,
    /// Its delivery when it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Its provider id when it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// Its files when it was stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRecord>,
}

impl StoredEvent {
    /// How `ev` is kept.
    pub(crate) fn of(ev: &EventRecord) -> Self {
        let (payload, message) = match &ev.payload {
            EventPayload::MessageCreated { message: m } => (
                None,
                Some(MessageAt {
                    conversation_id: m.conversation_id,
                    seq: m.seq,
                    delivery: m.delivery.clone(),
                    provider_id: m.provider_id.clone(),
                    attachments: m.attachments.clone(),
                }),
            ),
            other => (Some(other.clone()), None),
        };
        Self {
            id: ev.id,
            inbox_id: ev.inbox_id,
            contact_id: ev.contact_id,
            at: ev.at,
            payload,
            message,
            team_only: ev.team_only,
        }
    }

    /// The event as it happened, its message read from `message` (the
    /// store's reader of one message) when it is kept by reference.
    /// `None` when that message is gone (it cannot be: a contact's erasure
    /// takes its events with its messages; such an entry is skipped and
    /// logged rather than failing every replay after it).
    fn resolve(
        self,
        message: impl FnOnce(ConversationId, u64) -> Result<Option<MessageRecord>>,
    ) -> Result<Option<EventRecord>> {
        let payload = match (self.payload, self.message) {
            (Some(p), _) => p,
            (None, Some(at)) => match message(at.conversation_id, at.seq)? {
                Some(mut m) => {
                    m.delivery = at.delivery;
                    m.provider_id = at.provider_id;
                    m.attachments = at.attachments;
                    EventPayload::MessageCreated { message: m }
                }
                None => {
                    tracing::error!(
                        event = %self.id,
                        conversation = %at.conversation_id,
                        seq = at.seq,
                        "an event's message is missing; it is left out of the replay"
                    );
                    return Ok(None);
                }
            },
            (None, None) => {
                return Err(StoreError::Corrupt(format!(
                    "event {} has neither a payload nor a message",
                    self.id
                )))
            }
        };
        Ok(Some(EventRecord {
            id: self.id,
            inbox_id: self.inbox_id,
            contact_id: self.contact_id,
            at: self.at,
            payload,
            team_only: self.team_only,
        }))
    }
}

impl Store {
    /// Events with ids in `(after, upto]`, at most `limit`, in order.
    pub fn events_between(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<EventRecord>> {
        if upto <= after {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for kv in self
            .tree(Tree::EventidEvent)
            .range(u64_be(after.saturating_add(1))..=u64_be(upto))
        {
            let (k, v) = kv?;
            let stored: StoredEvent = super::decode(&v)?;
            if stored.id.get() != keys::read_u64(&k, 0)? {
                return Err(StoreError::Corrupt(format!(
                    "event {} stored under another key",
                    stored.id
                )));
            }
            if let Some(ev) = stored.resolve(|c, s| self.message(c, s))? {
                out.push(ev);
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AuthorType;
    use crate::store::{Author, DeliveryStatus, Effects, NewMessage};

    fn says(body: &str) -> NewMessage {
        NewMessage {
            author: Author {
                kind: AuthorType::Agent,
                id: Some(1),
                name: None,
            },
            body: body.into(),
            private: false,
            attachments: Vec::new(),
            via: None,
        }
    }

    /// A new message is logged once, by reference, and a replay shows it
    /// exactly as the live event did, even after its delivery moved on.
    #[tokio::test]
    async fn a_new_message_is_logged_by_reference_and_replays_as_it_was() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open_for_test(dir.path());
        let _flusher = tokio::spawn(store.durability().clone().run_flusher());
        let (conv, _) = store
            .create_conversation(InboxId::new(1), ContactId::new(2), says("hello"), 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let body = "the parcel left the warehouse this morning ".repeat(4);
        let mut live = store.durability().subscribe();
        let (m, _) = store
            .post_message(
                conv.id,
                says(&body),
                Effects {
                    send: Some(None),
                    notify_at: None,
                },
                2,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.delivery.as_ref().map(|d| d.status),
            Some(DeliveryStatus::Queued)
        );
        let live_created = live.recv().await.unwrap_or_else(|e| panic!("{e}"));
        store
            .set_delivery(
                conv.id,
                m.seq,
                Delivery {
                    status: DeliveryStatus::Sent,
                    error: None,
                },
                Some("provider-1".into()),
                None,
                3,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        // Stored: where the message is, not the message.
        let raw = store
            .tree(Tree::EventidEvent)
            .get(u64_be(live_created.id))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("event not logged"));
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("warehouse"), "the body is copied: {text}");
        assert!(raw.len() < 200, "{} bytes: {text}", raw.len());

        // Replayed: the message as it was, then its update.
        let replay = store
            .events_between(0, u64::MAX, usize::MAX)
            .unwrap_or_else(|e| panic!("{e}"));
        let json = |ev: &EventRecord| serde_json::to_value(ev).unwrap_or_else(|e| panic!("{e}"));
        let created = replay
            .iter()
            .find(|e| e.id == live_created.id)
            .unwrap_or_else(|| panic!("not replayed"));
        assert_eq!(json(created), json(&live_created));
        let kinds: Vec<(&str, Option<DeliveryStatus>)> = replay
            .iter()
            .map(|e| match &e.payload {
                EventPayload::MessageCreated { message }
                | EventPayload::MessageUpdated { message } => {
                    (e.name(), message.delivery.as_ref().map(|d| d.status))
                }
                _ => (e.name(), None),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("conversation.created", None),
                ("message.created", None),
                ("message.created", Some(DeliveryStatus::Queued)),
                ("message.updated", Some(DeliveryStatus::Sent)),
            ]
        );
    }

    /// Events logged before messages were kept by reference (a whole copy
    /// inside) still replay.
    #[test]
    fn an_event_with_a_whole_copy_still_decodes() {
        let old = r#"{"id":7,"inbox_id":1,"contact_id":2,"at":5,"payload":{"kind":"message_created","message":{"id":9,"conversation_id":3,"seq":2,"ordinal":2,"author":{"type":"contact","id":2,"name":null},"body":"hi","private":false,"attachments":[],"created_at":5}},"team_only":false}"#;
        let stored: StoredEvent =
            crate::store::decode(old.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let ev = stored
            .resolve(|_, _| panic!("a whole copy needs no lookup"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("dropped"));
        match ev.payload {
            EventPayload::MessageCreated { message } => assert_eq!(message.body, "hi"),
            other => panic!("{other:?}"),
        }
    }
}
