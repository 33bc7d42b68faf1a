//! The JSON shapes of the contract, built from store records. Each shape is
//! one `#[derive(Serialize)]` struct, so its keys are written down once and
//! the same value renders API responses, SSE event data and webhook
//! payloads: a replayed event looks exactly like a live one. Pure: whatever
//! a shape needs from the store is looked up by its caller
//! ([`crate::service::present`]), so the web layer and the services share
//! this module without depending on each other.
//!
//! Conventions: ids are strings ([`format_id`]), times RFC 3339 in UTC,
//! and an unknown value is `null` (the key is present) unless a field says
//! it is left out.

use serde::Serialize;

use crate::domain::format_id;
use crate::domain::ids::{ContactId, ConversationId, InboxId};
use crate::domain::time::rfc3339;
use crate::store::{
    AgentRecord, AttachmentRecord, Author as AuthorRecord, ChannelIdentity, ContactRecord,
    ConversationRecord, InboxRecord, MessageRecord, Reader as ReaderRecord, WebhookRecord,
};

fn opt_id(id: Option<impl Into<u64>>) -> Option<String> {
    id.map(format_id)
}

/// `{"id","name","email","role"}` plus status fields.
#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    /// The agent's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Sign-in address.
    pub email: String,
    /// `admin` or `agent`.
    pub role: &'static str,
    /// False once deactivated (it can no longer sign in).
    pub active: bool,
    /// When it was created.
    pub created_at: String,
    /// Its time zone (IANA name), `null` until its browser or profile
    /// names one.
    pub timezone: Option<String>,
    /// True while an invited agent has not chosen a password yet.
    pub invited: bool,
    /// `online`, `busy` or `offline` now (offline too after
    /// `NATTER_AWAY_AFTER_MINUTES` without an open workspace or stream).
    pub availability: &'static str,
    /// Open conversations auto-assignment may give the agent.
    pub capacity: u32,
}

impl Agent {
    /// The contract's agent, with its availability now (which needs the
    /// open streams: see `Services::availability_of`).
    pub fn of(a: &AgentRecord, availability: crate::domain::Availability) -> Self {
        Self {
            id: format_id(a.id),
            name: a.name.clone(),
            email: a.email.clone(),
            role: a.role.as_str(),
            active: a.active,
            created_at: rfc3339(a.created_at),
            timezone: a.timezone.clone(),
            invited: a.invited(),
            availability: availability.as_str(),
            capacity: a.capacity,
        }
    }
}

/// `POST /agents` without a password: the invited agent and the link
/// that lets them choose one (`invite_mailed`: whether it went out by
/// mail; when not, the admin hands it over).
#[derive(Debug, Clone, Serialize)]
pub struct InvitedAgent {
    /// The agent.
    #[serde(flatten)]
    pub agent: Agent,
    /// The single-use link.
    pub invite_url: String,
    /// Whether it was mailed.
    pub invite_mailed: bool,
}

/// `{"id","name","channel","widget_key"}`; admins also see `hmac_secret`,
/// the channel settings without their secrets, `api_token`,
/// `webhook_secret` and the webhook URL to paste into the provider. The
/// admin-only keys are absent (not `null`) for everyone else, and the
/// ones a channel does not have are absent for admins too.
#[derive(Debug, Clone, Serialize)]
pub struct Inbox {
    /// The inbox's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The channel's name (`email`, `sms`, ...).
    pub channel: String,
    /// The public key the messenger widget is embedded with.
    pub widget_key: String,
    /// The messenger's greeting, if any.
    pub greeting: Option<String>,
    /// Whether the messenger asks a first-time visitor for a name and
    /// email before the first message: `off`, `ask` or `require`.
    pub prechat: &'static str,
    /// Who gets its new conversations.
    pub assignment: InboxAssignment,
    /// Weekly hours, zone and holidays (`null`: always open).
    pub business_hours: Option<serde_json::Value>,
    /// What a contact who writes outside business hours is told.
    pub out_of_office: Option<String>,
    /// Whether each resolution asks the contact for a rating.
    pub csat: bool,
    /// First-response, next-response and resolution targets (`null`: none).
    pub sla: Option<crate::domain::sla::SlaPolicy>,
    /// When it was created.
    pub created_at: String,
    /// Admins: the secret that signs identity-verified contacts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<String>,
    /// Admins: the channel settings, secrets left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// Admins: where the provider posts inbound messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Admins of an API inbox: where the integration posts messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Admins: the token an API inbox is called with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_token: Option<String>,
    /// Admins: the secret outgoing channel posts are signed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// `{"mode":"off|round_robin|balanced","team_id"}` of an inbox.
#[derive(Debug, Clone, Serialize)]
pub struct InboxAssignment {
    /// `off`, `round_robin` or `balanced`.
    pub mode: &'static str,
    /// The team it is limited to, if any.
    pub team_id: Option<String>,
}

impl Inbox {
    /// The contract's inbox, with absolute webhook URLs under `base_url`
    /// (the admin-only fields only if `admin`).
    pub fn at(i: &InboxRecord, admin: bool, base_url: &str) -> Self {
        let mut v = Self {
            id: format_id(i.id),
            name: i.name.clone(),
            channel: i.channel.clone(),
            widget_key: i.widget_key.clone(),
            greeting: i.greeting.clone(),
            prechat: i.prechat.as_str(),
            assignment: InboxAssignment {
                mode: i.assignment.mode.as_str(),
                team_id: opt_id(i.assignment.team_id),
            },
            business_hours: i.business_hours.as_ref().map(|h| h.to_json()),
            out_of_office: i.out_of_office.clone(),
            csat: i.csat,
            sla: i.sla,
            created_at: rfc3339(i.created_at),
            hmac_secret: None,
            settings: None,
            webhook_url: None,
            api_url: None,
            api_token: None,
            webhook_secret: None,
        };
        if admin {
            v.hmac_secret = Some(i.hmac_secret.clone());
            if let Some(ch) = crate::channels::by_name(&i.channel) {
                v.settings = Some(crate::channels::settings::public(
                    ch.settings(),
                    &i.settings,
                ));
                if let Some(h) = ch.hook() {
                    v.webhook_url = Some(format!("{base_url}/hooks/{h}/{}", format_id(i.id)));
                }
            }
            if crate::channels::ChannelKind::of(&i.channel).has_api_token() {
                v.api_url = Some(format!(
                    "{base_url}/api/v1/channels/api/{}/messages",
                    format_id(i.id)
                ));
            }
            v.api_token.clone_from(&i.api_token);
            v.webhook_secret.clone_from(&i.webhook_secret);
        }
        v
    }
}

/// A created inbox: [`Inbox`] plus, for channels that register their
/// webhook on creation, whether that worked (`connection`, absent
/// otherwise).
#[derive(Debug, Clone, Serialize)]
pub struct CreatedInbox<C: Serialize> {
    /// The inbox as an admin sees it.
    #[serde(flatten)]
    pub inbox: Inbox,
    /// The provider's answer to the webhook registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<C>,
}

/// `{"inbox_id","channel","value"}`: one channel address of a contact.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    /// The inbox it was seen in.
    pub inbox_id: String,
    /// That inbox's channel.
    pub channel: String,
    /// The address (phone number, chat id, email address, ...).
    pub value: String,
}

impl Identity {
    /// The contract's channel address.
    pub fn of(i: &ChannelIdentity) -> Self {
        Self {
            inbox_id: format_id(i.inbox_id),
            channel: i.channel.clone(),
            value: i.value.clone(),
        }
    }
}

/// `{"id","name","email"}` of a contact (plus what agents find useful:
/// its channel addresses and the contacts merged into it).
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    /// The contact's id.
    pub id: String,
    /// Name, if known.
    pub name: Option<String>,
    /// Email address, if known.
    pub email: Option<String>,
    /// The id the customer's own system gave it, if any.
    pub external_id: Option<String>,
    /// Its channel addresses (for an agent: in inboxes it reaches).
    pub identities: Vec<Identity>,
    /// Contacts merged into this one.
    pub merged_ids: Vec<String>,
    /// When it was created.
    pub created_at: String,
}

impl Contact {
    /// The contract's contact with every channel address.
    pub fn of(c: &ContactRecord) -> Self {
        Self::within(c, |_| true)
    }

    /// [`Contact::of`] for an agent: only the channel addresses of inboxes
    /// it reaches (a number known only to another inbox is that inbox's).
    /// `sees` answers whether the agent reaches an inbox.
    pub fn within(c: &ContactRecord, sees: impl Fn(InboxId) -> bool) -> Self {
        Self {
            id: format_id(c.id),
            name: c.name.clone(),
            email: c.email.clone(),
            external_id: c.external_id.clone(),
            identities: c
                .identities
                .iter()
                .filter(|i| sees(i.inbox_id))
                .map(Identity::of)
                .collect(),
            merged_ids: c.merged_ids.iter().map(|i| format_id(*i)).collect(),
            created_at: rfc3339(c.created_at),
        }
    }
}

/// One contact with the conversations an agent may see
/// (`GET /contacts/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct ContactCard {
    /// The contact as the agent sees it.
    #[serde(flatten)]
    pub contact: Contact,
    /// Its conversations in inboxes the agent reaches.
    pub conversations: Vec<Conversation>,
}

/// The contact a merge kept, with the id of the one merged into it.
#[derive(Debug, Clone, Serialize)]
pub struct MergedContact {
    /// The contact that remains.
    #[serde(flatten)]
    pub contact: Contact,
    /// The id of the contact that is gone.
    pub merged: String,
}

/// `{"contact_id"}` of a deleted contact.
#[derive(Debug, Clone, Serialize)]
pub struct ContactDeleted {
    /// The contact that is gone.
    pub contact_id: String,
}

impl ContactDeleted {
    /// The event data of a deleted contact.
    pub fn of(contact_id: ContactId) -> Self {
        Self {
            contact_id: format_id(contact_id),
        }
    }
}

/// `{"type","id","name"}`: who wrote a message or is typing.
#[derive(Debug, Clone, Serialize)]
pub struct Author {
    /// [`crate::store::AuthorType`]'s name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The agent's or contact's id (`null` for the system).
    pub id: Option<String>,
    /// The name shown, if any.
    pub name: Option<String>,
}

impl Author {
    /// The contract's author.
    pub fn of(a: &AuthorRecord) -> Self {
        Self {
            kind: a.kind.as_str(),
            id: opt_id(a.id),
            name: a.name.clone(),
        }
    }
}

/// Where an attachment is served: a capability URL (its id is 128 random
/// bits), relative to the base URL.
pub fn attachment_url(a: &AttachmentRecord) -> String {
    format!(
        "/files/{}/{}",
        a.id,
        crate::domain::text::url_escape(&a.name)
    )
}

/// `{"id","name","content_type","size","url"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    /// The file's id (random; part of its URL).
    pub id: String,
    /// The file name as uploaded.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// [`attachment_url`].
    pub url: String,
}

impl Attachment {
    /// The contract's attachment.
    pub fn of(a: &AttachmentRecord) -> Self {
        Self {
            id: a.id.clone(),
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            url: attachment_url(a),
        }
    }
}

/// `{"status","error"}`: how far an outbound message got with its channel.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// The delivery status's name.
    pub status: &'static str,
    /// The provider's reason for a failure.
    pub error: Option<String>,
}

/// The message shape of the contract.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// The message's id.
    pub id: String,
    /// Its conversation.
    pub conversation_id: String,
    /// Its place in the conversation, in the audience's numbering.
    pub seq: u64,
    /// Who wrote it.
    pub author: Author,
    /// The text.
    pub body: String,
    /// A note only the team sees.
    pub private: bool,
    /// Files sent with it.
    pub attachments: Vec<Attachment>,
    /// When it was written.
    pub created_at: String,
    /// Its delivery by a channel (`null` if it went through none).
    pub delivery: Option<Delivery>,
    /// The inbox a reply went out through, if not the conversation's.
    pub via: Option<String>,
}

impl Message {
    /// The message as the team sees it (real seqs).
    pub fn of(m: &MessageRecord) -> Self {
        Self {
            id: format_id(m.id),
            conversation_id: format_id(m.conversation_id),
            seq: m.seq,
            author: Author::of(&m.author),
            body: m.body.clone(),
            private: m.private,
            attachments: m.attachments.iter().map(Attachment::of).collect(),
            created_at: rfc3339(m.created_at),
            delivery: m.delivery.as_ref().map(|d| Delivery {
                status: d.status.as_str(),
                error: d.error.clone(),
            }),
            via: opt_id(m.via),
        }
    }

    /// A message as its contact sees it: [`Message::of`] numbered by its
    /// ordinal among the public messages (the contact's `seq`: 1, 2, 3 ...
    /// however many notes lie between). Only ever given public messages.
    pub fn for_contact(m: &MessageRecord) -> Self {
        Self {
            seq: m.ordinal,
            ..Self::of(m)
        }
    }
}

/// A message an integration posted to an API inbox, with the contact it
/// was filed under.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedMessage {
    /// The stored message.
    #[serde(flatten)]
    pub message: Message,
    /// The contact of its conversation.
    pub contact_id: String,
}

/// Who is looking at a conversation: the team sees notes and its own
/// unread count; the contact sees neither notes nor team details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// An agent.
    Team,
    /// The conversation's contact.
    Contact,
}

/// `{"id","name","email"}`: the contact a conversation is with (`null`
/// name and email once the contact is gone).
#[derive(Debug, Clone, Serialize)]
pub struct ConversationContact {
    /// The contact's id.
    pub id: String,
    /// Name, if known.
    pub name: Option<String>,
    /// Email address, if known.
    pub email: Option<String>,
}

/// The conversation shape of the contract, for the team
/// ([`Conversation::for_team`]) or its contact
/// ([`Conversation::for_contact`]): the same keys, different numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    /// The conversation's id.
    pub id: String,
    /// Its inbox.
    pub inbox_id: String,
    /// Who it is with.
    pub contact: ConversationContact,
    /// The status's name.
    pub status: &'static str,
    /// The agent it is assigned to (always `null` for the contact).
    pub assignee_id: Option<String>,
    /// Its labels (always empty for the contact).
    pub labels: Vec<String>,
    /// Its subject, if any.
    pub subject: Option<String>,
    /// When a snooze ends.
    pub snoozed_until: Option<String>,
    /// The newest message the audience sees.
    pub last_message: Option<Message>,
    /// The newest seq, in the audience's numbering.
    pub last_seq: u64,
    /// Messages the audience has not read.
    pub unread_count: u64,
    /// How far the team has read, in the audience's numbering.
    pub agent_last_read_seq: u64,
    /// How far the contact has read, in the audience's numbering.
    pub contact_last_read_seq: u64,
    /// When it was started.
    pub created_at: String,
    /// Its last activity the audience sees.
    pub updated_at: String,
    /// Team only (left out for the contact): since when the customer waits
    /// for a human reply, `null` when nobody waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<Option<String>>,
    /// Team only: `none`, `low`, `medium`, `high` or `urgent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<&'static str>,
    /// Team only: the team its inbox's auto-assignment routes it to,
    /// `null` when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<Option<String>>,
    /// The contact's latest rating, `null` when none.
    pub rating: Option<Rating>,
    /// Team only: the SLA deadline it runs against now, `null` when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla: Option<Option<SlaView>>,
    /// Team only: the SLA deadlines it missed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_breaches: Option<Vec<SlaView>>,
}

/// `{"target","due_at","breached"}`: an SLA deadline.
#[derive(Debug, Clone, Serialize)]
pub struct SlaView {
    /// `first_response`, `next_response` or `resolution`.
    pub target: &'static str,
    /// The deadline.
    pub due_at: String,
    /// Missed (recorded as a breach).
    pub breached: bool,
}

impl Conversation {
    /// Adds the SLA clock the conversation runs against now (team view).
    pub fn with_sla(
        mut self,
        c: &ConversationRecord,
        clock: Option<crate::domain::sla::SlaClock>,
    ) -> Self {
        self.sla = Some(clock.map(|k| {
            SlaView {
                target: k.target.as_str(),
                due_at: rfc3339(k.due_at),
                breached: c
                    .sla_breaches
                    .iter()
                    .any(|b| b.target == k.target && b.due_at == k.due_at),
            }
        }));
        self
    }
}

/// `{"score","comment","at"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Rating {
    /// 1 to 5.
    pub score: u8,
    /// The contact's words, if any.
    pub comment: Option<String>,
    /// When it was given.
    pub at: String,
}

impl Rating {
    fn of(r: &crate::store::RatingRecord) -> Self {
        Self {
            score: r.score,
            comment: r.comment.clone(),
            at: rfc3339(r.at),
        }
    }
}

impl Conversation {
    /// The conversation as the team sees it: its metadata (labels,
    /// assignee) and counters over every message, notes included, in real
    /// seqs.
    pub fn for_team(c: &ConversationRecord, contact_rec: Option<&ContactRecord>) -> Self {
        Self {
            id: format_id(c.id),
            inbox_id: format_id(c.inbox_id),
            contact: conversation_contact(c, contact_rec),
            status: c.status.as_str(),
            assignee_id: opt_id(c.assignee_id),
            labels: c.labels.clone(),
            subject: c.subject.clone(),
            snoozed_until: c.snoozed_until.map(rfc3339),
            last_message: c.last_message.as_ref().map(Message::of),
            last_seq: c.last_seq,
            unread_count: c.agent_unread,
            agent_last_read_seq: c.agent_read_seq,
            contact_last_read_seq: c.contact_read_seq,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            waiting_since: Some(c.waiting_since().map(rfc3339)),
            priority: Some(c.priority.as_str()),
            team_id: Some(opt_id(c.team_id)),
            rating: c.rating.as_ref().map(Rating::of),
            sla: Some(None),
            sla_breaches: Some(
                c.sla_breaches
                    .iter()
                    .map(|b| SlaView {
                        target: b.target.as_str(),
                        due_at: rfc3339(b.due_at),
                        breached: true,
                    })
                    .collect(),
            ),
        }
    }

    /// The conversation as its contact sees it: only what the contact may
    /// know, so nothing shows that notes exist: no labels, no assignee,
    /// the last public message, `updated_at` of that message, and every
    /// number in the contact's numbering (ordinals among the public
    /// messages): `last_seq` is how many it can see, read positions that
    /// point at a note are the public message before it (`agent_read` and
    /// `contact_read`, looked up by the caller), `unread_count` counts the
    /// team's public replies.
    pub fn for_contact(
        c: &ConversationRecord,
        contact_rec: Option<&ContactRecord>,
        agent_read: u64,
        contact_read: u64,
    ) -> Self {
        Self {
            id: format_id(c.id),
            inbox_id: format_id(c.inbox_id),
            contact: conversation_contact(c, contact_rec),
            status: c.status.as_str(),
            assignee_id: None,
            labels: Vec::new(),
            subject: c.subject.clone(),
            snoozed_until: c.snoozed_until.map(rfc3339),
            last_message: c.last_public().map(Message::for_contact),
            last_seq: c.public_count(),
            unread_count: c.contact_unread,
            agent_last_read_seq: agent_read,
            contact_last_read_seq: contact_read,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.contact_activity()),
            waiting_since: None,
            priority: None,
            team_id: None,
            rating: c.rating.as_ref().map(Rating::of),
            sla: None,
            sla_breaches: None,
        }
    }
}

fn conversation_contact(
    c: &ConversationRecord,
    contact_rec: Option<&ContactRecord>,
) -> ConversationContact {
    match contact_rec {
        Some(k) => ConversationContact {
            id: format_id(k.id),
            name: k.name.clone(),
            email: k.email.clone(),
        },
        None => ConversationContact {
            id: format_id(c.contact_id),
            name: None,
            email: None,
        },
    }
}

/// `{"type","id"}`: who read a conversation.
#[derive(Debug, Clone, Serialize)]
pub struct Reader {
    /// [`crate::store::AuthorType`]'s name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The agent's or contact's id.
    pub id: String,
}

/// `{"conversation_id","reader","seq"}` of a read receipt.
#[derive(Debug, Clone, Serialize)]
pub struct ReadReceipt {
    /// The conversation read.
    pub conversation_id: String,
    /// Who read it.
    pub reader: Reader,
    /// How far, in the audience's numbering.
    pub seq: u64,
}

impl ReadReceipt {
    /// A read receipt with `seq` already in the audience's numbering.
    pub fn of(conversation_id: ConversationId, r: &ReaderRecord, seq: u64) -> Self {
        Self {
            conversation_id: format_id(conversation_id),
            reader: Reader {
                kind: r.kind.as_str(),
                id: format_id(r.id),
            },
            seq,
        }
    }
}

/// The `data:` of a typing signal.
#[derive(Debug, Clone, Serialize)]
pub struct Typing {
    /// The conversation.
    pub conversation_id: String,
    /// Who is typing.
    pub author: Author,
    /// Whether they started (or stopped).
    pub typing: bool,
}

impl Typing {
    /// A typing signal's data.
    pub fn of(conversation_id: ConversationId, a: &AuthorRecord, typing: bool) -> Self {
        Self {
            conversation_id: format_id(conversation_id),
            author: Author::of(a),
            typing,
        }
    }
}

/// The `data:` of a logged event, whichever its kind (the event's name
/// says which; the JSON has no tag of its own).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EventData {
    /// `message.created`, `message.updated`.
    Message(Message),
    /// `conversation.created`, `conversation.updated` (boxed: the largest
    /// shape by far).
    Conversation(Box<Conversation>),
    /// `contact.deleted`.
    ContactDeleted(ContactDeleted),
    /// `conversation.read`.
    ReadReceipt(ReadReceipt),
}

/// An outbound webhook subscription as admins see it. The keys are in
/// the order the API has always written them (sorted, as `serde_json`'s
/// map wrote them before this shape was typed), so the bytes are the same.
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    /// When it was created.
    pub created_at: String,
    /// Turned off after a 410 answer.
    pub disabled: bool,
    /// The event names it wants.
    pub events: Vec<String>,
    /// Its id.
    pub id: String,
    /// The signing secret: only in the answer that created it, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Where deliveries go.
    pub url: String,
}

impl Webhook {
    /// A subscription without its secret (every view but its creation's).
    pub fn of(w: &WebhookRecord) -> Self {
        Self {
            created_at: rfc3339(w.created_at),
            disabled: w.disabled,
            events: w.events.clone(),
            id: format_id(w.id),
            secret: None,
            url: w.url.clone(),
        }
    }
}

/// One search hit: where the message is, its snippet and the matches'
/// character ranges. Keys in the order the API has always written them
/// (sorted, see [`Webhook`]).
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    /// `contact`, `agent` or `system`.
    pub author_type: &'static str,
    /// The message's conversation.
    pub conversation_id: String,
    /// When the message was written.
    pub created_at: String,
    /// `[start, end)` character ranges of the matches in `snippet`.
    pub highlights: Vec<[usize; 2]>,
    /// The message.
    pub message_id: String,
    /// A team-only note.
    pub private: bool,
    /// The message's number in the audience's numbering (a contact's
    /// hits use its ordinal).
    pub seq: u64,
    /// Plain text around the match.
    pub snippet: String,
}

impl SearchResult {
    /// A hit on `m` as `audience` numbers it.
    pub fn of(
        m: &MessageRecord,
        snippet: &str,
        highlights: &[(usize, usize)],
        audience: Audience,
    ) -> Self {
        Self {
            author_type: m.author.kind.as_str(),
            conversation_id: format_id(m.conversation_id),
            created_at: rfc3339(m.created_at),
            highlights: highlights.iter().map(|&(a, b)| [a, b]).collect(),
            message_id: format_id(m.id),
            private: m.private,
            seq: match audience {
                Audience::Team => m.seq,
                Audience::Contact => m.ordinal,
            },
            snippet: snippet.to_owned(),
        }
    }
}

/// A team: `{"id","name","agent_ids"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Team {
    /// The team's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its agents' ids.
    pub agent_ids: Vec<String>,
}

impl Team {
    /// The contract's team.
    pub fn of(t: &crate::store::TeamRecord) -> Self {
        Self {
            id: format_id(t.id),
            name: t.name.clone(),
            agent_ids: t.agent_ids.iter().map(|a| format_id(*a)).collect(),
        }
    }
}

/// A backup: `{"name","bytes","created_at","scheduled","download_url"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// Its file name, the id in `/api/v1/admin/backups/{name}`.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was written.
    pub created_at: String,
    /// Written by the schedule (`NATTER_BACKUP_EVERY`), so deleted by
    /// its retention in time.
    pub scheduled: bool,
    /// Where to download it (admin token or session).
    pub download_url: String,
}

impl Backup {
    /// The contract's backup.
    pub fn of(b: &crate::store::backup::BackupInfo) -> Self {
        Self {
            download_url: format!("/api/v1/admin/backups/{}", b.name),
            name: b.name.clone(),
            bytes: b.bytes,
            created_at: rfc3339(b.created_at),
            scheduled: b.scheduled,
        }
    }
}

/// A page of search hits and the cursor of the next one (`null` on the
/// last page).
#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    /// Where the next page starts.
    pub next_cursor: Option<String>,
    /// Best first.
    pub results: Vec<SearchResult>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AuthorType;

    fn keys(v: &impl Serialize) -> Vec<String> {
        match serde_json::to_value(v) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn inbox() -> InboxRecord {
        InboxRecord {
            id: InboxId::new(7),
            name: "Support".into(),
            channel: "web".into(),
            widget_key: "wk".into(),
            hmac_secret: "hs".into(),
            greeting: None,
            reply_time: None,
            accent_color: None,
            prechat: Default::default(),
            assignment: Default::default(),
            business_hours: None,
            out_of_office: None,
            csat: false,
            sla: None,
            created_at: 0,
            settings: serde_json::Map::new(),
            api_token: None,
            webhook_secret: None,
        }
    }

    fn message() -> MessageRecord {
        MessageRecord {
            id: crate::domain::ids::MessageId::new(3),
            conversation_id: ConversationId::new(2),
            seq: 5,
            ordinal: 2,
            author: AuthorRecord {
                kind: AuthorType::Contact,
                id: None,
                name: None,
            },
            body: "hi".into(),
            private: false,
            attachments: Vec::new(),
            created_at: 0,
            delivery: None,
            provider_id: None,
            via: None,
        }
    }

    #[test]
    fn admin_only_inbox_keys_are_absent_for_agents() {
        let mut k = keys(&Inbox::at(&inbox(), false, ""));
        k.sort();
        assert_eq!(
            k,
            [
                "assignment",
                "business_hours",
                "channel",
                "created_at",
                "csat",
                "greeting",
                "id",
                "name",
                "out_of_office",
                "prechat",
                "sla",
                "widget_key"
            ]
        );
        let v = serde_json::to_value(Inbox::at(&inbox(), true, "")).unwrap_or_default();
        assert_eq!(v["hmac_secret"], "hs");
        assert_eq!(v["id"], format_id(7u64));
    }

    #[test]
    fn a_message_has_every_key_with_null_for_the_unknown() {
        let v = serde_json::to_value(Message::of(&message())).unwrap_or_default();
        for k in ["delivery", "via"] {
            assert_eq!(v.get(k), Some(&serde_json::Value::Null), "{k}");
        }
        assert_eq!(v["author"]["type"], "contact");
        assert_eq!(v["author"]["id"], serde_json::Value::Null);
        assert_eq!(v["seq"], 5);
        assert_eq!(keys(&Message::of(&message())).len(), 10);
    }

    #[test]
    fn the_contact_numbers_a_message_by_its_ordinal() {
        let v = serde_json::to_value(Message::for_contact(&message())).unwrap_or_default();
        assert_eq!(v["seq"], 2);
    }

    #[test]
    fn a_wrapper_adds_its_key_beside_the_shape() {
        let v = serde_json::to_value(ReceivedMessage {
            message: Message::of(&message()),
            contact_id: format_id(9u64),
        })
        .unwrap_or_default();
        assert_eq!(v["contact_id"], format_id(9u64));
        assert_eq!(v["body"], "hi");
    }
    /// The bytes `serde_json` writes for `v`, to compare with the
    /// `json!` value a handler built before its shape was typed.
    fn bytes(v: &impl Serialize) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }

    #[test]
    fn a_webhook_is_written_byte_for_byte_as_before_and_its_secret_only_once() {
        let w = WebhookRecord {
            id: crate::domain::ids::WebhookId::new(4),
            url: "https://example.com/h".into(),
            events: vec!["message.created".into()],
            secret: "whsec_x".into(),
            disabled: false,
            created_at: 0,
        };
        let before = serde_json::json!({
            "id": "4",
            "url": "https://example.com/h",
            "events": ["message.created"],
            "disabled": false,
            "created_at": rfc3339(0),
        });
        assert_eq!(bytes(&Webhook::of(&w)), before.to_string());
        let mut created_before = before;
        created_before["secret"] = serde_json::json!("whsec_x");
        let created = Webhook {
            secret: Some("whsec_x".into()),
            ..Webhook::of(&w)
        };
        assert_eq!(bytes(&created), created_before.to_string());
    }

    #[test]
    fn search_results_are_written_byte_for_byte_as_before() {
        let page = SearchResults {
            next_cursor: Some("30".into()),
            results: vec![SearchResult::of(
                &message(),
                "hi",
                &[(0, 2)],
                Audience::Team,
            )],
        };
        let before = serde_json::json!({
            "results": [{
                "conversation_id": "2",
                "message_id": "3",
                "seq": 5,
                "snippet": "hi",
                "highlights": [[0, 2]],
                "author_type": "contact",
                "private": false,
                "created_at": rfc3339(0),
            }],
            "next_cursor": "30",
        });
        assert_eq!(bytes(&page), before.to_string());
        let c = SearchResult::of(&message(), "hi", &[], Audience::Contact);
        assert_eq!(c.seq, 2, "the contact's numbering");
    }
}
