//! What the store keeps: one record type per tree value, serialized as JSON
//! so fields can be added with `#[serde(default)]` and no migration.

use serde::{Deserialize, Serialize};

use crate::domain::ids::{
    AgentId, CannedId, ContactId, ConversationId, EventId, InboxId, JobId, MessageId,
    WebhookAttemptId, WebhookId,
};
use crate::domain::time::Micros;
use crate::domain::{AuthorType, ConversationStatus, Role};

/// Someone on the team.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Primary key.
    pub id: AgentId,
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
    /// Web Push for new conversations in the agent's inboxes.
    #[serde(default = "yes")]
    pub push_new_conversations: bool,
    /// Web Push for customer replies in conversations assigned to the agent.
    #[serde(default = "yes")]
    pub push_replies: bool,
    /// The agent's time zone (an IANA name, e.g. `Europe/Paris`): shown
    /// times and snooze presets ("Tomorrow" is 09:00 there). None until the
    /// agent's browser or profile names one; UTC meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// What the agent set in the workspace header (kept across reloads);
    /// without a stream open for a while it counts as offline anyway.
    #[serde(default)]
    pub availability: crate::domain::Availability,
    /// How many open conversations auto-assignment may give the agent.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
}

/// The capacity of an agent nobody set one for.
pub const DEFAULT_CAPACITY: u32 = 25;

fn default_capacity() -> u32 {
    DEFAULT_CAPACITY
}

/// How the stored hash of an agent who has not chosen a password yet
/// begins (then random text): no password verifies against it.
pub const INVITED_HASH_PREFIX: &str = "invite:";

impl AgentRecord {
    /// Whether the agent was invited and has not chosen a password yet.
    pub fn invited(&self) -> bool {
        self.password_hash.starts_with(INVITED_HASH_PREFIX)
    }
}

/// Keeps records without a priority as small as before it existed.
pub(crate) fn is_no_priority(p: &crate::domain::Priority) -> bool {
    *p == crate::domain::Priority::None
}

fn yes() -> bool {
    true
}

/// A browser's Web Push subscription for an agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushSubscriptionRecord {
    /// The agent it notifies.
    pub agent_id: AgentId,
    /// The push service URL.
    pub endpoint: String,
    /// The browser's P-256 key (base64url).
    pub p256dh: String,
    /// The browser's auth secret (base64url).
    pub auth: String,
    /// When it was added.
    pub created_at: Micros,
}

/// Who a bearer token or session belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The agent or contact the token stands for: an `AgentId` or a
    /// `ContactId` by the tree the record is in (`TokenOwner`), so it stays
    /// the number both share.
    pub owner: u64,
    /// When it was issued.
    pub created_at: Micros,
    /// After this it is refused.
    pub expires_at: Micros,
    /// Contact tokens: the inbox (widget) it was issued for, where new
    /// conversations of the API start (a person linked across websites
    /// has one contact but writes from each site).
    #[serde(default)]
    pub inbox_id: Option<InboxId>,
}

/// A place customers write to (one per channel).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxRecord {
    /// Primary key.
    pub id: InboxId,
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
    /// The messenger's pre-chat form (absent in older records: off).
    #[serde(default)]
    pub prechat: crate::domain::Prechat,
    /// Who gets its new conversations (absent in older records: nobody).
    #[serde(default, skip_serializing_if = "Assignment::is_off")]
    pub assignment: Assignment,
    /// Weekly hours and holidays (none: always open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<crate::domain::hours::BusinessHours>,
    /// Sent to a contact who writes outside business hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_office: Option<String>,
    /// Ask the contact to rate each resolution.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub csat: bool,
    /// First-response, next-response and resolution targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<crate::domain::sla::SlaPolicy>,
    /// When it was created.
    pub created_at: Micros,
    /// The channel's settings as the admin gave them, secrets included
    /// (views leave the secrets out: they are write-only).
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Bearer token of the API channel's inbound route.
    #[serde(default)]
    pub api_token: Option<String>,
    /// Key that signs callbacks (API channel) or that providers echo back
    /// (Telegram's secret token).
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

/// An inbox's auto-assignment: the mode, and the team it is limited to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Off, round robin or balanced.
    pub mode: crate::domain::AssignmentMode,
    /// Only this team's agents (who reach the inbox) are given its
    /// conversations; without one, the inbox's members are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<crate::domain::ids::TeamId>,
}

impl Assignment {
    /// Whether nothing is assigned automatically (and so not stored).
    pub fn is_off(&self) -> bool {
        self.mode == crate::domain::AssignmentMode::Off && self.team_id.is_none()
    }
}

/// A channel address of a contact: how a provider names the person.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelIdentity {
    /// The inbox (and so the channel) it was seen in.
    pub inbox_id: InboxId,
    /// `sms`, `whatsapp`, `email`, ...
    pub channel: String,
    /// Phone number, wa_id, PSID, chat id, email address or source_id.
    pub value: String,
}

/// A customer, as known to one inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactRecord {
    /// Primary key.
    pub id: ContactId,
    /// The inbox the contact first wrote to.
    pub inbox_id: InboxId,
    /// Optional name.
    pub name: Option<String>,
    /// Optional email.
    pub email: Option<String>,
    /// The host site's verified user id.
    pub external_id: Option<String>,
    /// When the contact was created.
    pub created_at: Micros,
    /// Channel addresses that map to this contact.
    #[serde(default)]
    pub identities: Vec<ChannelIdentity>,
    /// The newest conversation per inbox, (inbox, conversation): a
    /// channel message continues it unless it is resolved.
    #[serde(default)]
    pub latest_conversations: Vec<(InboxId, ConversationId)>,
    /// When the contact last wrote (the 24-hour windows count from it).
    #[serde(default)]
    pub last_inbound_at: Option<Micros>,
    /// Contacts merged into this one (their ids keep resolving here).
    #[serde(default)]
    pub merged_ids: Vec<ContactId>,
    /// The contact unsubscribed from reply notifications.
    #[serde(default)]
    pub email_notifications_off: bool,
    /// Identifiers this contact proved (`phone:+…`, `email:…`): they link
    /// channel identities to this one person automatically.
    #[serde(default)]
    pub verified: Vec<String>,
    /// Other inboxes this person is known in (contacts merged from there),
    /// so their widgets still recognise it.
    #[serde(default)]
    pub also_in: Vec<InboxId>,
}

/// A thread between one contact and the team.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationRecord {
    /// Primary key.
    pub id: ConversationId,
    /// The inbox it arrived in.
    pub inbox_id: InboxId,
    /// The customer.
    pub contact_id: ContactId,
    /// Where it stands.
    pub status: ConversationStatus,
    /// Who on the team owns it.
    pub assignee_id: Option<AgentId>,
    /// Lower-case labels.
    pub labels: Vec<String>,
    /// When a snoozed conversation reopens by itself.
    pub snoozed_until: Option<Micros>,
    /// How urgent the team finds it (older records: none).
    #[serde(default, skip_serializing_if = "crate::store::records::is_no_priority")]
    pub priority: crate::domain::Priority,
    /// Seq of the newest message (0 before the first).
    pub last_seq: u64,
    /// Newest message, notes included (what agents see in the list).
    pub last_message: Option<MessageRecord>,
    /// Newest message the contact can see, only while it is not
    /// `last_message` (a note came after it): a public newest message is
    /// kept once, not twice, since the record is rewritten and decoded on
    /// every message. Read it through [`ConversationRecord::last_public`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// Email subject (email conversations).
    #[serde(default)]
    pub subject: Option<String>,
    /// When the contact is emailed about unread replies, if pending.
    #[serde(default)]
    pub notify_due: Option<Micros>,
    /// Replies up to this seq were already in a notification.
    #[serde(default)]
    pub notified_seq: u64,
    /// When the customer's first message still without a human reply was
    /// written; cleared by an agent's public reply. Records older than
    /// this field have none: [`ConversationRecord::waiting_since`] then
    /// reads the newest message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_from: Option<Micros>,
    /// The team its inbox routes it to (set when auto-assignment queues
    /// it for a team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<crate::domain::ids::TeamId>,
    /// When an agent first replied in public (none yet, or a record older
    /// than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_reply_at: Option<Micros>,
    /// When an agent last replied in public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_replied_at: Option<Micros>,
    /// When the out-of-office message was last sent (by the server's
    /// clock), so it goes at most once a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away_sent_at: Option<Micros>,
    /// How many times it was resolved (each resolution may be rated once).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub resolutions: u32,
    /// The contact's latest rating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<RatingRecord>,
    /// The deadline the team was last warned about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_warned: Option<Micros>,
    /// Every SLA deadline it missed (for reports), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sla_breaches: Vec<SlaBreach>,
}

/// A missed SLA deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaBreach {
    /// Which target.
    pub target: crate::domain::sla::SlaTarget,
    /// The deadline.
    pub due_at: Micros,
    /// When the breach was recorded.
    pub at: Micros,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// A contact's rating of one resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingRecord {
    /// 1 (bad) to 5 (great).
    pub score: u8,
    /// What the contact added, if anything.
    pub comment: Option<String>,
    /// When it was given.
    pub at: Micros,
    /// Which resolution it rates (the conversation's `resolutions` then).
    pub resolution: u32,
}

impl ConversationRecord {
    /// The newest message the contact can see, if any.
    pub fn last_public(&self) -> Option<&MessageRecord> {
        self.last_public_message
            .as_ref()
            .or(self.last_message.as_ref().filter(|m| !m.private))
    }

    /// Since when the customer waits for a human reply: from their first
    /// message after the team's last public reply, while the conversation
    /// is not resolved. Notes and automatic messages do not end a wait; an
    /// agent's reply does.
    pub fn waiting_since(&self) -> Option<Micros> {
        if self.status == ConversationStatus::Resolved {
            return None;
        }
        match self.last_public() {
            Some(m) if m.author.kind == AuthorType::Contact => {
                Some(self.waiting_from.unwrap_or(m.created_at))
            }
            Some(m) if m.author.kind == AuthorType::System => self.waiting_from,
            _ => None,
        }
    }

    /// How many messages the contact can see: the ordinal of the newest
    /// public one (it is its conversation's `last_seq` for the contact).
    pub fn public_count(&self) -> u64 {
        self.last_public().map_or(0, |m| m.ordinal)
    }

    /// When the contact last saw something happen: its newest visible
    /// message, else the start. A contact's lists sort on it and its view
    /// shows it as `updated_at`, because `updated_at` also moves for notes
    /// and team-only changes (labels, assignment).
    pub fn contact_activity(&self) -> Micros {
        self.last_public()
            .map_or(self.created_at, |m| m.created_at.max(self.created_at))
    }
}

/// Who wrote a message, as it was when written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Author {
    /// Contact, agent or system.
    #[serde(rename = "type")]
    pub kind: AuthorType,
    /// The contact's or agent's id by `kind` (so the number both share;
    /// [`Author::agent_id`] and [`Author::contact_id`] give it typed); none
    /// for system messages.
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
    pub id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Position in the conversation, from 1, gapless.
    pub seq: u64,
    /// Position among the conversation's public messages, from 1, gapless;
    /// 0 for a note. It is the `seq` the contact sees (and sends back), so
    /// the customer's numbering has no gaps that would show where notes
    /// are. Assigned in the write that stores the message (schema 4).
    #[serde(default)]
    pub ordinal: u64,
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
    /// Where an outbound channel message stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// The provider's id for it (inbound: theirs; outbound: what the send
    /// returned; email: the Message-ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// The inbox whose channel carried this reply, when not the
    /// conversation's own (an answer by SMS or email to a web chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<InboxId>,
}

/// The steps of an outbound message, in order (a status never moves back,
/// except to `failed` and, on retry, to `queued`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// In the outbox.
    Queued,
    /// The provider accepted it.
    Sent,
    /// The provider reports it reached the device.
    Delivered,
    /// The person opened it.
    Read,
    /// It will not arrive (see the error).
    Failed,
}

impl DeliveryStatus {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }
}

/// Delivery state of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Where it stands.
    pub status: DeliveryStatus,
    /// The provider's (or our) reason, when failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// Media a provider holds for an inbound message, fetched after the
/// message is durable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MediaRef {
    /// Where to fetch it (or the provider's media id to resolve first).
    pub url: String,
    /// The name to show, if the provider gave one.
    pub name: Option<String>,
}

/// Work that must happen after a write, durably: it survives restarts and
/// is retried with backoff until done or given up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// Send an agent's reply through its conversation's channel.
    Send {
        /// The conversation.
        conversation_id: ConversationId,
        /// The message.
        seq: u64,
    },
    /// Download an inbound message's media into the attachment store.
    FetchMedia {
        /// The conversation.
        conversation_id: ConversationId,
        /// The message.
        seq: u64,
        /// What to fetch.
        media: Vec<MediaRef>,
    },
    /// Hand the events `first_event..=last_event` of one write to the
    /// webhook service, which queues a [`JobKind::Webhook`] for each
    /// subscription that wants one (in the write that finishes this job).
    WebhookEvents {
        /// The write's first event.
        first_event: EventId,
        /// Its last event.
        last_event: EventId,
    },
    /// POST one event to one outbound webhook.
    Webhook {
        /// The subscription.
        webhook_id: WebhookId,
        /// The event (read from the log at delivery time).
        event_id: EventId,
    },
}

/// A queued job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Stable id (the idempotency key of what it does).
    pub id: JobId,
    /// What to do.
    pub kind: JobKind,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this time.
    pub due: Micros,
    /// When it was queued.
    pub created_at: Micros,
}

/// An outbound webhook subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookRecord {
    /// Primary key.
    pub id: WebhookId,
    /// Where deliveries go.
    pub url: String,
    /// Event names it wants.
    pub events: Vec<String>,
    /// `whsec_` + base64 key of the signatures.
    pub secret: String,
    /// Turned off (a 410 answer): no more deliveries.
    pub disabled: bool,
    /// When it was created.
    pub created_at: Micros,
}

/// One delivery attempt of an outbound webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookAttemptRecord {
    /// Primary key.
    pub id: WebhookAttemptId,
    /// The event's name.
    pub event: String,
    /// The event's log id (`webhook-id` is built from it).
    pub event_id: EventId,
    /// 1 for the first try.
    pub attempt: u32,
    /// The answer's status, if there was one.
    pub status_code: Option<u16>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// When it was tried.
    pub at: Micros,
}

impl ContactRecord {
    /// Whether the person is known in an inbox (first seen there, or merged
    /// with a contact of it).
    pub fn belongs_to(&self, inbox: InboxId) -> bool {
        self.inbox_id == inbox || self.also_in.contains(&inbox)
    }

    /// The newest conversation of this contact in an inbox.
    pub fn latest_in(&self, inbox: InboxId) -> Option<ConversationId> {
        self.latest_conversations
            .iter()
            .find(|(i, _)| *i == inbox)
            .map(|(_, c)| *c)
    }

    /// Remembers the newest conversation of an inbox.
    pub fn set_latest(&mut self, inbox: InboxId, conversation: ConversationId) {
        self.latest_conversations.retain(|(i, _)| *i != inbox);
        self.latest_conversations.push((inbox, conversation));
    }
}

impl Author {
    /// An agent as the author of what it writes now.
    pub fn agent(a: &AgentRecord) -> Self {
        Self {
            kind: AuthorType::Agent,
            id: Some(a.id.get()),
            name: Some(a.name.clone()),
        }
    }

    /// The agent who wrote it, if an agent did.
    pub fn agent_id(&self) -> Option<AgentId> {
        self.id
            .filter(|_| self.kind == AuthorType::Agent)
            .map(AgentId::new)
    }

    /// The contact who wrote it, if the contact did.
    pub fn contact_id(&self) -> Option<ContactId> {
        self.id
            .filter(|_| self.kind == AuthorType::Contact)
            .map(ContactId::new)
    }
}

/// Someone who read a conversation up to a seq.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reader {
    /// Contact or agent.
    #[serde(rename = "type")]
    pub kind: AuthorType,
    /// Their id: an agent's or a contact's by `kind`.
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
        conversation_id: ConversationId,
        /// Who read.
        reader: Reader,
        /// Up to where.
        seq: u64,
    },
    /// A message changed after it was created (delivery status, fetched
    /// media).
    MessageUpdated {
        /// The message after the change.
        message: MessageRecord,
    },
    /// A contact and all its data were deleted.
    ContactDeleted {
        /// The contact that is gone.
        contact_id: ContactId,
    },
    /// An SLA deadline is near (`breached` false) or passed (true): the
    /// team is warned.
    SlaAlert {
        /// The conversation, with the warning or breach recorded.
        conversation: ConversationRecord,
        /// Passed, not only near.
        breached: bool,
    },
}

/// One entry of the append-only event log that feeds SSE replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    /// Increasing, gapless log position.
    pub id: EventId,
    /// Inbox of the conversation, for agent access checks.
    pub inbox_id: InboxId,
    /// Contact of the conversation, for contact access checks.
    pub contact_id: ContactId,
    /// When it happened.
    pub at: Micros,
    /// What happened.
    pub payload: EventPayload,
    /// A change only the team sees (labels, assignment): the contact's
    /// view of the conversation did not change, so it is never sent there
    /// (its mere arrival would tell that the team did something).
    #[serde(default)]
    pub team_only: bool,
}

impl EventRecord {
    /// The contract's event name.
    pub fn name(&self) -> &'static str {
        match self.payload {
            EventPayload::MessageCreated { .. } => "message.created",
            EventPayload::ConversationCreated { .. } => "conversation.created",
            EventPayload::ConversationUpdated { .. } => "conversation.updated",
            EventPayload::ConversationRead { .. } => "conversation.read",
            EventPayload::MessageUpdated { .. } => "message.updated",
            EventPayload::ContactDeleted { .. } => "contact.deleted",
            EventPayload::SlaAlert {
                breached: false, ..
            } => "conversation.sla_warning",
            EventPayload::SlaAlert { breached: true, .. } => "conversation.sla_breached",
        }
    }

    /// Private notes and team-only changes are for the team only.
    pub fn is_private(&self) -> bool {
        self.team_only
            || matches!(&self.payload, EventPayload::MessageCreated { message } | EventPayload::MessageUpdated { message } if message.private)
    }
}

/// A team: agents who answer together (an agent may be in several).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamRecord {
    /// Primary key.
    pub id: crate::domain::ids::TeamId,
    /// Its name, unique among teams (ignoring case).
    pub name: String,
    /// Its agents, in the order they were added.
    pub agent_ids: Vec<crate::domain::ids::AgentId>,
    /// When it was created.
    pub created_at: Micros,
}

/// A canned response: typed as `/shortcut` in the composer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CannedRecord {
    /// Primary key.
    pub id: CannedId,
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
    pub contact_id: ContactId,
    /// After this the link is dead.
    pub expires_at: Micros,
}
