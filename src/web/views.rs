//! The JSON shapes of the contract, built from store records. The same
//! functions render API responses and SSE event data, so a replayed event
//! looks exactly like a live one.

use serde_json::{json, Value};

use crate::domain::format_id;
use crate::domain::time::rfc3339;
use crate::service::access::InboxScope;
use crate::service::realtime::{TypingEvent, Viewer};
use crate::store::{
    AgentRecord, AttachmentRecord, Author, ContactRecord, ConversationRecord, EventPayload,
    EventRecord, InboxRecord, MessageRecord, Reader, Store,
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
        if i.channel == "api" {
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
pub fn contact_within(c: &ContactRecord, scope: &InboxScope) -> Value {
    let mut v = contact(c);
    v["identities"] = json!(c
        .identities
        .iter()
        .filter(|i| scope.sees(i.inbox_id))
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
        crate::web::session::url_escape(&a.name)
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

/// Who is looking at a conversation: the team sees notes and its own
/// unread count; the contact sees neither notes nor team details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// An agent.
    Team,
    /// The conversation's contact.
    Contact,
}

impl From<Viewer> for Audience {
    fn from(v: Viewer) -> Self {
        match v {
            Viewer::Agent { .. } => Self::Team,
            Viewer::Contact { .. } => Self::Contact,
        }
    }
}

/// The conversation shape of the contract.
pub fn conversation(
    c: &ConversationRecord,
    contact_rec: Option<&ContactRecord>,
    audience: Audience,
) -> Value {
    let (last, unread) = match audience {
        Audience::Team => (c.last_message.as_ref(), c.agent_unread),
        Audience::Contact => (c.last_public_message.as_ref(), c.contact_unread),
    };
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
        "last_message": last.map(message),
        "last_seq": c.last_seq,
        "unread_count": unread,
        "agent_last_read_seq": c.agent_read_seq,
        "contact_last_read_seq": c.contact_read_seq,
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}

/// A conversation with its contact looked up.
pub fn conversation_with_contact(
    store: &Store,
    c: &ConversationRecord,
    audience: Audience,
) -> crate::store::Result<Value> {
    let k = store.contact(c.contact_id)?;
    Ok(conversation(c, k.as_ref(), audience))
}

fn reader(r: &Reader) -> Value {
    json!({"type": r.kind.as_str(), "id": format_id(r.id)})
}

/// The `data:` of a logged event for one audience.
pub fn event_data(
    store: &Store,
    ev: &EventRecord,
    audience: Audience,
) -> crate::store::Result<Value> {
    Ok(match &ev.payload {
        EventPayload::MessageCreated { message: m }
        | EventPayload::MessageUpdated { message: m } => message(m),
        EventPayload::ConversationCreated { conversation: c }
        | EventPayload::ConversationUpdated { conversation: c } => {
            conversation_with_contact(store, c, audience)?
        }
        EventPayload::ContactDeleted { contact_id } => {
            json!({"contact_id": format_id(*contact_id)})
        }
        EventPayload::ConversationRead {
            conversation_id,
            reader: r,
            seq,
        } => json!({
            "conversation_id": format_id(*conversation_id),
            "reader": reader(r),
            "seq": seq,
        }),
    })
}

/// The `data:` of a typing signal.
pub fn typing(t: &TypingEvent) -> Value {
    json!({
        "conversation_id": format_id(t.conversation_id),
        "author": author(&t.author),
        "typing": t.typing,
    })
}
