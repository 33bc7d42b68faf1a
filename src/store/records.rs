//! What the store keeps: one record type per tree value, serialized as JSON
//! so fields can be added with `#[serde(default)]` and no migration.

use serde::{Deserialize, Serialize};

use crate::domain::time::Micros;
use crate::domain::{AuthorType, ConversationStatus, Role};

/// Someone on the team.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Primary key.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// Lower-cased sign-in address (unique).
    pub email: String,
    /// What the agent may do.
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Deactivated agents cannot sign in and their tokens stop working.
    pub active: bool,
    /// When the agent was added.
    pub created_at: Micros,
    /// Play a sound for new messages in the workspace.
    #[serde(default)]
    pub notify_sound: bool,
}

/// Who a bearer token or session belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The agent or contact the token stands for.
    pub owner: u64,
    /// When it was issued.
    pub created_at: Micros,
    /// After this it is refused.
    pub expires_at: Micros,
}

/// A place customers write to (one per channel).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxRecord {
    /// Primary key.
    pub id: u64,
    /// Shown to agents.
    pub name: String,
    /// `web`, and later the other channels.
    pub channel: String,
    /// Public key that names the inbox in widget and messenger URLs.
    pub widget_key: String,
    /// Key of the identity HMAC (its UTF-8 bytes).
    pub hmac_secret: String,
    /// Greeting shown in the messenger.
    #[serde(default)]
    pub greeting: Option<String>,
    /// "We usually reply within ..." shown in the messenger.
    #[serde(default)]
    pub reply_time: Option<String>,
    /// Colour of the launcher and messenger header (`#rrggbb`).
    #[serde(default)]
    pub accent_color: Option<String>,
    /// When it was created.
    pub created_at: Micros,
}

/// A customer, as known to one inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactRecord {
    /// Primary key.
    pub id: u64,
    /// The inbox the contact first wrote to.
    pub inbox_id: u64,
    /// Optional name.
    pub name: Option<String>,
    /// Optional email.
    pub email: Option<String>,
    /// The host site's verified user id.
    pub external_id: Option<String>,
    /// When the contact was created.
    pub created_at: Micros,
}

/// A thread between one contact and the team.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationRecord {
    /// Primary key.
    pub id: u64,
    /// The inbox it arrived in.
    pub inbox_id: u64,
    /// The customer.
    pub contact_id: u64,
    /// Where it stands.
    pub status: ConversationStatus,
    /// Who on the team owns it.
    pub assignee_id: Option<u64>,
    /// Lower-case labels.
    pub labels: Vec<String>,
    /// When a snoozed conversation reopens by itself.
    pub snoozed_until: Option<Micros>,
    /// Seq of the newest message (0 before the first).
    pub last_seq: u64,
    /// Newest message, notes included (what agents see in the list).
    pub last_message: Option<MessageRecord>,
    /// Newest message the contact can see.
    pub last_public_message: Option<MessageRecord>,
    /// The team has read up to this seq.
    pub agent_read_seq: u64,
    /// The contact has read up to this seq.
    pub contact_read_seq: u64,
    /// Contact messages after `agent_read_seq`.
    pub agent_unread: u64,
    /// Public agent messages after `contact_read_seq`.
    pub contact_unread: u64,
    /// When it was created.
    pub created_at: Micros,
    /// Latest activity (new message or change); the inbox sorts on it.
    pub updated_at: Micros,
}

/// Who wrote a message, as it was when written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Author {
    /// Contact, agent or system.
    #[serde(rename = "type")]
    pub kind: AuthorType,
    /// The contact's or agent's id; none for system messages.
    pub id: Option<u64>,
    /// Display name at the time of writing.
    pub name: Option<String>,
}

/// A file attached to a message. The bytes live under the data folder's
/// `files/` (named by `id`, never by the client's name); this is the record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttachmentRecord {
    /// Random, unguessable id (also the file's name on disk).
    pub id: String,
    /// The name the uploader gave, for display and downloads.
    pub name: String,
    /// The type found in the content (magic bytes), not the one claimed.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
}

/// One message of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Globally unique id.
    pub id: u64,
    /// The conversation it belongs to.
    pub conversation_id: u64,
    /// Position in the conversation, from 1, gapless.
    pub seq: u64,
    /// Who wrote it.
    pub author: Author,
    /// Text as sent.
    pub body: String,
    /// A note for the team only.
    pub private: bool,
    /// Files sent with it.
    #[serde(default)]
    pub attachments: Vec<AttachmentRecord>,
    /// When it was stored.
    pub created_at: Micros,
}

impl Author {
    /// An agent as the author of what it writes now.
    pub fn agent(a: &AgentRecord) -> Self {
        Self {
            kind: AuthorType::Agent,
            id: Some(a.id),
            name: Some(a.name.clone()),
        }
    }
}

/// Someone who read a conversation up to a seq.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reader {
    /// Contact or agent.
    #[serde(rename = "type")]
    pub kind: AuthorType,
    /// Their id.
    pub id: u64,
}

/// What an event carries: the records as they were when it happened, so a
/// replay shows exactly what a live client saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventPayload {
    /// A new message (or note).
    MessageCreated {
        /// The message.
        message: MessageRecord,
    },
    /// A new conversation.
    ConversationCreated {
        /// The conversation.
        conversation: ConversationRecord,
    },
    /// A change of status, assignee, labels, snooze.
    ConversationUpdated {
        /// The conversation after the change.
        conversation: ConversationRecord,
    },
    /// Someone read up to a seq.
    ConversationRead {
        /// The conversation.
        conversation_id: u64,
        /// Who read.
        reader: Reader,
        /// Up to where.
        seq: u64,
    },
    /// A contact and all its data were deleted.
    ContactDeleted {
        /// The contact that is gone.
        contact_id: u64,
    },
}

/// One entry of the append-only event log that feeds SSE replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    /// Increasing, gapless log position.
    pub id: u64,
    /// Inbox of the conversation, for agent access checks.
    pub inbox_id: u64,
    /// Contact of the conversation, for contact access checks.
    pub contact_id: u64,
    /// When it happened.
    pub at: Micros,
    /// What happened.
    pub payload: EventPayload,
}

impl EventRecord {
    /// The contract's event name.
    pub fn name(&self) -> &'static str {
        match self.payload {
            EventPayload::MessageCreated { .. } => "message.created",
            EventPayload::ConversationCreated { .. } => "conversation.created",
            EventPayload::ConversationUpdated { .. } => "conversation.updated",
            EventPayload::ConversationRead { .. } => "conversation.read",
            EventPayload::ContactDeleted { .. } => "contact.deleted",
        }
    }

    /// Private notes are for the team only.
    pub fn is_private(&self) -> bool {
        matches!(&self.payload, EventPayload::MessageCreated { message } if message.private)
    }
}

/// A canned response: typed as `/shortcut` in the composer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CannedRecord {
    /// Primary key.
    pub id: u64,
    /// What the agent types after `/` (lower-case, no spaces).
    pub shortcut: String,
    /// The text inserted.
    pub text: String,
    /// When it was created.
    pub created_at: Micros,
}

/// A pending "continue on another device" link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// The contact to continue as.
    pub contact_id: u64,
    /// After this the link is dead.
    pub expires_at: Micros,
}
