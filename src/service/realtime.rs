//! Who may see which live event, and the ephemeral typing signals.
//!
//! Durable events come from the store's log (see `store::durability`);
//! typing signals are never stored and never replayed, so they travel on
//! their own broadcast channel here.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::domain::AuthorType;
use crate::store::{Author, EventRecord, Result, Store};

/// Whoever holds an event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// An agent; admins see every inbox.
    Agent {
        /// The agent.
        id: u64,
        /// Whether the agent was an admin when the stream opened.
        admin: bool,
    },
    /// A contact: only its own conversations, never notes.
    Contact {
        /// The contact.
        id: u64,
    },
}

/// "Someone is typing in this conversation."
#[derive(Debug, Clone)]
pub struct TypingEvent {
    /// Inbox of the conversation.
    pub inbox_id: u64,
    /// Contact of the conversation.
    pub contact_id: u64,
    /// The conversation.
    pub conversation_id: u64,
    /// Who types.
    pub author: Author,
    /// Started (true) or stopped (false).
    pub typing: bool,
    /// An agent typing a private note: the contact must not see it.
    pub private: bool,
}

impl TypingEvent {
    /// A signal in a conversation.
    pub fn in_conversation(
        c: &crate::store::ConversationRecord,
        author: Author,
        typing: bool,
        private: bool,
    ) -> Self {
        Self {
            inbox_id: c.inbox_id,
            contact_id: c.contact_id,
            conversation_id: c.id,
            author,
            typing,
            private,
        }
    }
}

/// The live side channel for typing signals.
pub struct TypingHub {
    tx: broadcast::Sender<Arc<TypingEvent>>,
}

impl Default for TypingHub {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl TypingHub {
    /// Tells every interested stream; nobody listening is fine.
    pub fn publish(&self, ev: TypingEvent) {
        let _ = self.tx.send(Arc::new(ev));
    }

    /// A receiver for a new stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<TypingEvent>> {
        self.tx.subscribe()
    }
}

/// Whether `viewer` may receive a logged event, checked against the store
/// at the moment of sending (membership can change while a stream is open).
pub fn may_see(store: &Store, viewer: Viewer, ev: &EventRecord) -> Result<bool> {
    match viewer {
        Viewer::Contact { id } => Ok(ev.contact_id == id && !ev.is_private()),
        Viewer::Agent { id, admin } => agent_may_see_inbox(store, id, admin, ev.inbox_id),
    }
}

/// Whether `viewer` should see a typing signal (never its own).
pub fn may_see_typing(store: &Store, viewer: Viewer, ev: &TypingEvent) -> Result<bool> {
    match viewer {
        Viewer::Contact { id } => {
            Ok(ev.contact_id == id && !ev.private && ev.author.kind != AuthorType::Contact)
        }
        Viewer::Agent { id, admin } => {
            if ev.author.kind == AuthorType::Agent && ev.author.id == Some(id) {
                return Ok(false);
            }
            agent_may_see_inbox(store, id, admin, ev.inbox_id)
        }
    }
}

fn agent_may_see_inbox(store: &Store, agent: u64, admin: bool, inbox: u64) -> Result<bool> {
    let Some(a) = store.agent(agent)? else {
        return Ok(false);
    };
    if !a.active {
        return Ok(false);
    }
    Ok(admin || store.is_member(inbox, agent)?)
}
