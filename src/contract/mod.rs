//! The JSON shapes of the contract, built from store records. The same
//! functions render API responses, SSE event data and webhook payloads, so
//! a replayed event looks exactly like a live one. Pure: whatever a shape
//! needs from the store is looked up by its caller
//! ([`crate::service::present`]), so the web layer and the services share
//! this module without depending on each other.

use serde_json::{json, Value};

use crate::domain::format_id;
use crate::domain::time::rfc3339;
use crate::store::{
    AgentRecord, AttachmentRecord, Author, ContactRecord, ConversationRecord, InboxRecord,
    MessageRecord, Reader,
};

fn opt_id(id: Option<u64>) -> Value {
    id.map_or(Value::Null, |i| Value::String(format_id(i)))
}

/// `{"id","name","email","role"}` plus status fields.
pub fn agent(a: &AgentRecord) -> Value {
    json!({
        "id": format_id(a.id),
        "name": a.name,
        "email": a.email,
        "role": a.role.as_str(),
        "active": a.active,
        "created_at": rfc3339(a.created_at),
    })
}

/// `{"id","name","channel","widget_key"}`; admins also see `hmac_secret`,
/// the channel settings without their secrets, `api_token`,
/// `webhook_secret` and the webhook URL to paste into the provider.
pub fn inbox(i: &InboxRecord, admin: bool) -> Value {
    inbox_at(i, admin, "")
}

/// [`inbox`] with absolute webhook URLs under `base_url`.
pub fn inbox_at(i: &InboxRecord, admin: bool, base_url: &str) -> Value {
    let mut v = json!({
        "id": format_id(i.id),
        "name": i.name,
        "channel": i.channel,
        "widget_key": i.widget_key,
        "greeting": i.greeting,
        "created_at": rfc3339(i.created_at),
    });
    if admin {
        v["hmac_secret"] = json!(i.hmac_secret);
        if let Some(ch) = crate::channels::by_name(&i.channel) {
            v["settings"] = Value::Object(crate::channels::settings::public(
                ch.settings(),
                &i.settings,
            ));
            if let Some(h) = ch.hook() {
                v["webhook_url"] = json!(format!("{base_url}/hooks/{h}/{}", format_id(i.id)));
            }
        }
        if crate::channels::ChannelKind::of(&i.channel).has_api_token() {
            v["api_url"] = json!(format!(
                "{base_url}/api/v1/channels/api/{}/messages",
                format_id(i.id)
            ));
        }
        if let Some(t) = &i.api_token {
            v["api_token"] = json!(t);
        }
        if let Some(t) = &i.webhook_secret {
            v["webhook_secret"] = json!(t);
        }
    }
    v
}

/// `{"id","name","email"}` of a contact (plus what agents find useful:
/// its channel addresses and the contacts merged into it).
pub fn contact(c: &ContactRecord) -> Value {
    json!({
        "id": format_id(c.id),
        "name": c.name,
        "email": c.email,
        "external_id": c.external_id,
        "identities": c.identities.iter().map(|i| json!({
            "inbox_id": format_id(i.inbox_id),
            "channel": i.channel,
            "value": i.value,
        })).collect::<Vec<_>>(),
        "merged_ids": c.merged_ids.iter().map(|i| format_id(*i)).collect::<Vec<_>>(),
        "created_at": rfc3339(c.created_at),
    })
}

/// [`contact`] for an agent: only the channel addresses of inboxes it
/// reaches (a number known only to another inbox is that inbox's).
/// `sees` answers whether the agent reaches an inbox.
pub fn contact_within(c: &ContactRecord, sees: impl Fn(u64) -> bool) -> Value {
    let mut v = contact(c);
    v["identities"] = json!(c
        .identities
        .iter()
        .filter(|i| sees(i.inbox_id))
        .map(|i| json!({
            "inbox_id": format_id(i.inbox_id),
            "channel": i.channel,
            "value": i.value,
        }))
        .collect::<Vec<_>>());
    v
}

fn author(a: &Author) -> Value {
    json!({"type": a.kind.as_str(), "id": opt_id(a.id), "name": a.name})
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
pub fn attachment(a: &AttachmentRecord) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "content_type": a.content_type,
        "size": a.size,
        "url": attachment_url(a),
    })
}

/// The message shape of the contract.
pub fn message(m: &MessageRecord) -> Value {
    json!({
        "id": format_id(m.id),
        "conversation_id": format_id(m.conversation_id),
        "seq": m.seq,
        "author": author(&m.author),
        "body": m.body,
        "private": m.private,
        "attachments": m.attachments.iter().map(attachment).collect::<Vec<_>>(),
        "created_at": rfc3339(m.created_at),
        "delivery": m.delivery.as_ref().map(|d| json!({"status": d.status.as_str(), "error": d.error})),
        "via": opt_id(m.via),
    })
}

/// A message as its contact sees it: [`message`] numbered by its ordinal
/// among the public messages (the contact's `seq`: 1, 2, 3 ... however
/// many notes lie between). Only ever given public messages.
pub fn customer_message(m: &MessageRecord) -> Value {
    let mut v = message(m);
    v["seq"] = json!(m.ordinal);
    v
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

/// The conversation shape of the contract as the team sees it: its
/// metadata (labels, assignee) and counters over every message, notes
/// included, in real seqs (see [`customer_conversation`] for the
/// contact's).
pub fn conversation(c: &ConversationRecord, contact_rec: Option<&ContactRecord>) -> Value {
    let contact_v = match contact_rec {
        Some(k) => json!({"id": format_id(k.id), "name": k.name, "email": k.email}),
        None => json!({"id": format_id(c.contact_id), "name": null, "email": null}),
    };
    json!({
        "id": format_id(c.id),
        "inbox_id": format_id(c.inbox_id),
        "contact": contact_v,
        "status": c.status.as_str(),
        "assignee_id": opt_id(c.assignee_id),
        "labels": c.labels,
        "subject": c.subject,
        "snoozed_until": c.snoozed_until.map(rfc3339),
        "last_message": c.last_message.as_ref().map(message),
        "last_seq": c.last_seq,
        "unread_count": c.agent_unread,
        "agent_last_read_seq": c.agent_read_seq,
        "contact_last_read_seq": c.contact_read_seq,
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}

/// The conversation as its contact sees it: the same fields as
/// [`conversation`] but only what the contact may know, so nothing shows
/// that notes exist: no labels, no assignee, the last public message,
/// `updated_at` of that message, and every number in the contact's
/// numbering (ordinals among the public messages): `last_seq` is how many
/// it can see, read positions that point at a note are the public
/// message before it (`agent_read` and `contact_read`, looked up by the
/// caller), `unread_count` counts the team's public replies.
pub fn customer_conversation(
    c: &ConversationRecord,
    contact_rec: Option<&ContactRecord>,
    agent_read: u64,
    contact_read: u64,
) -> Value {
    let mut v = conversation(c, contact_rec);
    v["assignee_id"] = Value::Null;
    v["labels"] = json!([]);
    v["last_message"] = json!(c.last_public_message.as_ref().map(customer_message));
    v["last_seq"] = json!(c.public_count());
    v["unread_count"] = json!(c.contact_unread);
    v["agent_last_read_seq"] = json!(agent_read);
    v["contact_last_read_seq"] = json!(contact_read);
    v["updated_at"] = json!(rfc3339(c.contact_activity()));
    v
}

/// `{"conversation_id","reader","seq"}` of a read receipt, `seq` in the
/// audience's numbering.
pub fn read_receipt(conversation_id: u64, r: &Reader, seq: u64) -> Value {
    json!({
        "conversation_id": format_id(conversation_id),
        "reader": reader(r),
        "seq": seq,
    })
}

/// `{"contact_id"}` of a deleted contact.
pub fn contact_deleted(contact_id: u64) -> Value {
    json!({"contact_id": format_id(contact_id)})
}

fn reader(r: &Reader) -> Value {
    json!({"type": r.kind.as_str(), "id": format_id(r.id)})
}

/// The `data:` of a typing signal.
pub fn typing(conversation_id: u64, a: &Author, typing: bool) -> Value {
    json!({
        "conversation_id": format_id(conversation_id),
        "author": author(a),
        "typing": typing,
    })
}
