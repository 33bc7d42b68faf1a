//! The contract's shapes filled in from the store for one audience: what a
//! pure [`crate::contract`] shape needs to look up (a conversation's
//! contact, a read position in the contact's numbering) is looked up here,
//! once, for the API, the event streams and the webhooks alike.

use crate::contract::{self, Audience, Conversation, EventData, Message};
use crate::domain::ids::ConversationId;
use crate::service::realtime::Viewer;
use crate::store::{
    ContactRecord, ConversationRecord, EventPayload, EventRecord, MessageRecord, Result, Store,
};

impl From<Viewer> for Audience {
    fn from(v: Viewer) -> Self {
        match v {
            Viewer::Agent { .. } => Self::Team,
            Viewer::Contact { .. } => Self::Contact,
        }
    }
}

/// The conversation as its contact sees it ([`Conversation::for_contact`]),
/// with its read positions turned into the contact's numbering.
pub fn customer_conversation(
    store: &Store,
    c: &ConversationRecord,
    contact_rec: Option<&ContactRecord>,
) -> Result<Conversation> {
    Ok(Conversation::for_contact(
        c,
        contact_rec,
        store.ordinal_upto(c, c.agent_read_seq)?,
        store.ordinal_upto(c, c.contact_read_seq)?,
    ))
}

/// A conversation with its contact looked up.
pub fn conversation_with_contact(
    store: &Store,
    c: &ConversationRecord,
    audience: Audience,
) -> Result<Conversation> {
    let k = store.contact(c.contact_id)?;
    match audience {
        Audience::Team => {
            let clock = store
                .inbox(c.inbox_id)?
                .and_then(|i| super::sla::clock_of(&i, c));
            Ok(Conversation::for_team(c, k.as_ref()).with_sla(c, clock))
        }
        Audience::Contact => customer_conversation(store, c, k.as_ref()),
    }
}

/// The `data:` of a logged event for one audience.
pub fn event_data(store: &Store, ev: &EventRecord, audience: Audience) -> Result<EventData> {
    Ok(match &ev.payload {
        EventPayload::MessageCreated { message: m }
        | EventPayload::MessageUpdated { message: m } => EventData::Message(match audience {
            Audience::Team => Message::of(m),
            Audience::Contact => Message::for_contact(m),
        }),
        EventPayload::ConversationCreated { conversation: c }
        | EventPayload::ConversationUpdated { conversation: c }
        | EventPayload::SlaAlert {
            conversation: c, ..
        } => EventData::Conversation(Box::new(conversation_with_contact(store, c, audience)?)),
        EventPayload::ContactDeleted { contact_id } => {
            EventData::ContactDeleted(contract::ContactDeleted::of(*contact_id))
        }
        EventPayload::ConversationRead {
            conversation_id,
            reader,
            seq,
        } => {
            // The contact gets the ordinal of the newest public message at
            // or before it (a read position may point at a note).
            let seq = match (audience, store.conversation(*conversation_id)?) {
                (Audience::Contact, Some(c)) => store.ordinal_upto(&c, *seq)?,
                (Audience::Contact, None) => 0,
                (Audience::Team, _) => *seq,
            };
            EventData::ReadReceipt(contract::ReadReceipt::of(*conversation_id, reader, seq))
        }
    })
}

/// What the live page renderers read while they turn an event into HTML
/// (the record an event names, the message before it for the day line).
/// Reads only; the viewer's access to
/// the event was checked by the stream before rendering.
impl super::Services {
    /// A conversation as stored now.
    pub fn conversation(&self, id: ConversationId) -> Result<Option<ConversationRecord>> {
        self.store.conversation(id)
    }

    /// A message of a conversation by its seq.
    pub fn message(&self, conversation: ConversationId, seq: u64) -> Result<Option<MessageRecord>> {
        self.store.message(conversation, seq)
    }

    /// A public message by its ordinal (the contact's numbering).
    pub fn public_message(
        &self,
        conversation: ConversationId,
        ordinal: u64,
    ) -> Result<Option<MessageRecord>> {
        self.store.public_message(conversation, ordinal)
    }
}
