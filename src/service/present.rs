//! The contract's shapes filled in from the store for one audience: what a
//! pure [`crate::contract`] shape needs to look up (a conversation's
//! contact, a read position in the contact's numbering) is looked up here,
//! once, for the API, the event streams and the webhooks alike.

use serde_json::Value;

use crate::contract::{self, Audience};
use crate::service::realtime::Viewer;
use crate::store::{ContactRecord, ConversationRecord, EventPayload, EventRecord, Result, Store};

impl From<Viewer> for Audience {
    fn from(v: Viewer) -> Self {
        match v {
            Viewer::Agent { .. } => Self::Team,
            Viewer::Contact { .. } => Self::Contact,
        }
    }
}

/// The conversation as its contact sees it ([`contract::customer_conversation`]),
/// with its read positions turned into the contact's numbering.
pub fn customer_conversation(
    store: &Store,
    c: &ConversationRecord,
    contact_rec: Option<&ContactRecord>,
) -> Result<Value> {
    Ok(contract::customer_conversation(
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
) -> Result<Value> {
    let k = store.contact(c.contact_id)?;
    match audience {
        Audience::Team => Ok(contract::conversation(c, k.as_ref())),
        Audience::Contact => customer_conversation(store, c, k.as_ref()),
    }
}

/// The `data:` of a logged event for one audience.
pub fn event_data(store: &Store, ev: &EventRecord, audience: Audience) -> Result<Value> {
    Ok(match &ev.payload {
        EventPayload::MessageCreated { message: m }
        | EventPayload::MessageUpdated { message: m } => match audience {
            Audience::Team => contract::message(m),
            Audience::Contact => contract::customer_message(m),
        },
        EventPayload::ConversationCreated { conversation: c }
        | EventPayload::ConversationUpdated { conversation: c } => {
            conversation_with_contact(store, c, audience)?
        }
        EventPayload::ContactDeleted { contact_id } => contract::contact_deleted(*contact_id),
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
            contract::read_receipt(*conversation_id, reader, seq)
        }
    })
}
