//! Who may see which live event, and the ephemeral typing signals.
//!
//! Durable events come from the store's log (see `store::durability`);
//! typing signals are never stored and never replayed, so they travel on
//! their own broadcast channel here. Both reach a stream through the
//! fan-out (`service::fanout`), which wakes only the streams that may see
//! them; the checks here still decide at each send.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::domain::ids::{AgentId, ContactId, ConversationId, InboxId};
use crate::domain::time::Micros;
use crate::domain::{AuthorType, Role};
use crate::store::{Author, EventRecord, Result, Store, TokenOwner};

/// Whoever holds an event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// An agent; admins see every inbox.
    Agent {
        /// The agent.
        id: AgentId,
        /// Whether the agent was an admin when the viewer was made: good
        /// for one request (search). Streams outlive a demotion, so their
        /// checks read the role as stored at each event instead.
        admin: bool,
    },
    /// A contact: only its own conversations, never notes.
    Contact {
        /// The contact.
        id: ContactId,
    },
}

/// "Someone is typing in this conversation."
#[derive(Debug, Clone)]
pub struct TypingEvent {
    /// Inbox of the conversation.
    pub inbox_id: InboxId,
    /// Contact of the conversation.
    pub contact_id: ContactId,
    /// The conversation.
    pub conversation_id: ConversationId,
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

/// The credential a stream was opened with: the SHA-256 of an agent's
/// token or session, or of a contact's token. A stream lives only as long
/// as it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential {
    /// Hash of the token, as stored.
    pub token_hash: [u8; 32],
}

/// Whether `viewer` still holds `credential`: the token exists, is not
/// expired and is the viewer's, and an agent is still active. Returns the
/// token's expiry, after which the stream must end. Checked when a stream
/// opens and whenever the store says access changed (logout, deactivation,
/// a password change, a deleted contact), so those end open streams at
/// once; role and membership are read at every event (see [`may_see`]).
pub fn still_holds(
    store: &Store,
    viewer: Viewer,
    credential: Credential,
) -> Result<Option<Micros>> {
    let (owner, id) = match viewer {
        Viewer::Agent { id, .. } => (TokenOwner::Agent, id.get()),
        Viewer::Contact { id } => (TokenOwner::Contact, id.get()),
    };
    let Some(token) = store.token(owner, &credential.token_hash)? else {
        return Ok(None);
    };
    if token.owner != id || token.expires_at <= crate::domain::time::now() {
        return Ok(None);
    }
    let alive = match viewer {
        Viewer::Agent { id, .. } => store.agent(id)?.is_some_and(|a| a.active),
        Viewer::Contact { id } => store.contact(id)?.is_some(),
    };
    Ok(alive.then_some(token.expires_at))
}

/// Whether `viewer` may receive a logged event, checked against the store
/// at the moment of sending (role and membership can change while a
/// stream is open).
pub fn may_see(store: &Store, viewer: Viewer, ev: &EventRecord) -> Result<bool> {
    match viewer {
        Viewer::Contact { id } => Ok(ev.contact_id == id && !ev.is_private()),
        Viewer::Agent { id, .. } => agent_may_see_inbox(store, id, ev.inbox_id),
    }
}

/// Whether `viewer` should see a typing signal (never its own).
pub fn may_see_typing(store: &Store, viewer: Viewer, ev: &TypingEvent) -> Result<bool> {
    match viewer {
        Viewer::Contact { id } => {
            Ok(ev.contact_id == id && !ev.private && ev.author.kind != AuthorType::Contact)
        }
        Viewer::Agent { id, .. } => {
            if ev.author.agent_id() == Some(id) {
                return Ok(false);
            }
            agent_may_see_inbox(store, id, ev.inbox_id)
        }
    }
}

/// The agent's rights as stored now (two point reads): a demoted admin
/// sees only its inboxes from the next event on.
fn agent_may_see_inbox(store: &Store, agent: AgentId, inbox: InboxId) -> Result<bool> {
    let Some(a) = store.agent(agent)? else {
        return Ok(false);
    };
    if !a.active {
        return Ok(false);
    }
    Ok(a.role == Role::Admin || store.is_member(inbox, agent)?)
}

/// What an event stream follows, subscribed before its replay starts so
/// nothing published in between is missed.
pub struct Feeds {
    /// The stream's place in the fan-out: the durable events (in log
    /// order) and typing signals its viewer may see are handed to it
    /// there (see `service::fanout`).
    pub live: super::fanout::Subscription,
    /// Bumped whenever access may have changed (logout, deactivation,
    /// password change, deleted contact).
    pub access: tokio::sync::watch::Receiver<u64>,
    /// Where the replay starts: the requested `Last-Event-ID`, but never
    /// above the newest durable event (a forged or foreign id resumes from
    /// the newest instead of staying silent until the log catches up).
    pub start: u64,
}

impl super::Services {
    /// Registers a new stream of `viewer` in the fan-out and subscribes it
    /// to access changes, then fixes its start.
    pub fn subscribe(&self, viewer: Viewer, last_event_id: Option<u64>) -> Feeds {
        // An agent who counted as away is online again with this stream:
        // what waits in the queue may be theirs now.
        let back = match viewer {
            Viewer::Agent { id, .. } => self.router.comes_back(id),
            Viewer::Contact { .. } => false,
        };
        let live = self.fanout.register(viewer);
        if back {
            let router = self.router.clone();
            tokio::spawn(async move { router.route().await });
        }
        let access = self.store.access_changes();
        // Both are durable; the routed one can be a moment ahead of the
        // published one.
        let newest = self
            .store
            .durability()
            .published_upto()
            .max(live.routed_before());
        Feeds {
            live,
            access,
            start: last_event_id.map_or(newest, |l| l.min(newest)),
        }
    }

    /// The fan-out's dispatcher (see `service::fanout`): spawn it once at
    /// start, before the server takes streams.
    pub fn run_fanout(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.fanout.clone().run(self.typing.subscribe(), shutdown)
    }

    /// The newest event that is durable and published: where a stream's
    /// replay ends, and what a page reads before it renders, so its live
    /// stream resumes after it and nothing between render and connect is
    /// lost.
    pub fn published_upto(&self) -> u64 {
        self.store.durability().published_upto()
    }

    /// Logged events in `(after, upto]`, at most `limit`, oldest first
    /// (a stream's replay and catch-up).
    pub fn events_between(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<EventRecord>> {
        self.store.events_between(after, upto, limit)
    }

    /// [`still_holds`] against this store.
    pub fn still_holds(&self, viewer: Viewer, credential: Credential) -> Result<Option<Micros>> {
        still_holds(&self.store, viewer, credential)
    }

    /// [`may_see`] against this store.
    pub fn may_see(&self, viewer: Viewer, ev: &EventRecord) -> Result<bool> {
        may_see(&self.store, viewer, ev)
    }

    /// [`may_see_typing`] against this store.
    pub fn may_see_typing(&self, viewer: Viewer, ev: &TypingEvent) -> Result<bool> {
        may_see_typing(&self.store, viewer, ev)
    }

    /// The `data:` of a logged event for one audience (the contract's
    /// JSON, as the API and the webhooks show it).
    pub fn event_data(
        &self,
        ev: &EventRecord,
        audience: crate::contract::Audience,
    ) -> Result<crate::contract::EventData> {
        super::present::event_data(&self.store, ev, audience)
    }
}
