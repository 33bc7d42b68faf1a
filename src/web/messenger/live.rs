//! The messenger's live stream: the contact's own events rendered as HTML
//! fragments (new messages in the open thread, "typing…", "Seen", list
//! previews). Access is the same as the JSON stream: only this contact's
//! conversations, never notes.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::domain::ids::ConversationId;
use crate::domain::{parse_id, AuthorType};
use crate::error::{ApiError, ApiResult};
use crate::service::realtime::{TypingEvent, Viewer};
use crate::service::Services;
use crate::store::{EventPayload, EventRecord, Result};
use crate::web::events::{html_frame, Renderer};
use crate::web::workspace::view::{self, MessageView};
use crate::web::AppState;

/// What one messenger page shows.
#[derive(Debug, Clone)]
pub struct MessengerContext {
    /// The inbox's widget key (for links).
    pub key: String,
    /// The open conversation.
    pub conversation: Option<ConversationId>,
}

#[derive(Template)]
#[template(path = "partials/m_message.html")]
struct MessagePartial<'a> {
    msg: &'a MessageView,
}

/// `GET /m/{key}/events?access_token=&c=`.
#[tracing::instrument(skip_all)]
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> std::result::Result<HttpResponse, ApiError> {
    let inbox = state.svc.widget_inbox(&path)?;
    let (contact, token) = super::stream_contact_of(&state, &req, &inbox)?
        .ok_or(ApiError::Unauthorized("no contact"))?;
    let ctx = MessengerContext {
        key: inbox.widget_key.clone(),
        conversation: q.get("c").and_then(|c| parse_id(c)),
    };
    let last = crate::web::events::last_event_id(&req);
    crate::web::events::stream(
        state,
        Viewer::Contact { id: contact.id },
        crate::service::realtime::Credential {
            token_hash: crate::service::auth::hash_token(&token),
        },
        last,
        Arc::new(ctx),
    )
}

/// A message appended to the open thread (replacing a copy shown already).
pub fn message_fragment(
    _key: &str,
    conversation: ConversationId,
    m: &MessageView,
) -> Result<String> {
    let html = MessagePartial { msg: m }
        .render()
        .map_err(|e| crate::store::StoreError::Corrupt(format!("template: {e}")))?;
    Ok(crate::web::patch::thread_message(
        conversation,
        &m.id,
        &html,
    ))
}

impl Renderer for MessengerContext {
    fn event(&self, svc: &Services, _viewer: Viewer, ev: &EventRecord) -> ApiResult<String> {
        Ok(html_frame(Some(ev.id.get()), &render_event(svc, self, ev)?))
    }

    fn typing(&self, t: &TypingEvent) -> Option<String> {
        render_typing(self, t).map(|h| html_frame(None, &h))
    }
}

/// Fragments for one event on one messenger page.
fn render_event(svc: &Services, ctx: &MessengerContext, ev: &EventRecord) -> Result<String> {
    let mut out = String::new();
    match &ev.payload {
        EventPayload::MessageCreated { message } => {
            let cid = message.conversation_id;
            if ctx.conversation == Some(cid) {
                let prev = svc.public_message(cid, message.ordinal.saturating_sub(1))?;
                out.push_str(&message_fragment(
                    &ctx.key,
                    cid,
                    &view::customer_message(message, prev.as_ref()),
                )?);
                out.push_str(&format!("<div hx-swap-oob=\"innerHTML:#typing-{cid}\"></div><div hx-swap-oob=\"innerHTML:#seen-{cid}\"></div>"));
            }
            if message.author.kind != AuthorType::Contact {
                out.push_str(&format!(
                    "<div hx-swap-oob=\"beforeend:#m-notify\"><span data-unread=\"1\" data-conversation=\"{cid}\"></span></div>"
                ));
            }
            let preview =
                crate::web::workspace::linkify::escape(&view::truncate(&message.body, 60));
            // The list's preview, when the page shows the list.
            out.push_str(&crate::web::patch::inner(
                &format!("m-preview-{cid}"),
                &preview,
            ));
        }
        EventPayload::ConversationRead {
            conversation_id,
            reader,
            ..
        } => {
            if reader.kind == AuthorType::Agent && ctx.conversation == Some(*conversation_id) {
                if let Some(c) = svc.conversation(*conversation_id)? {
                    let seen = matches!(c.last_public(), Some(l) if l.author.kind == AuthorType::Contact && c.agent_read_seq >= l.seq);
                    out.push_str(&format!(
                        "<div hx-swap-oob=\"innerHTML:#seen-{conversation_id}\">{}</div>",
                        if seen { "Seen" } else { "" }
                    ));
                }
            }
        }
        EventPayload::ConversationCreated { .. }
        | EventPayload::ConversationUpdated { .. }
        | EventPayload::MessageUpdated { .. }
        | EventPayload::ContactDeleted { .. }
        | EventPayload::SlaAlert { .. } => {}
    }
    Ok(out)
}

/// "The team is typing…" in the open conversation.
fn render_typing(ctx: &MessengerContext, t: &TypingEvent) -> Option<String> {
    if ctx.conversation != Some(t.conversation_id) {
        return None;
    }
    let text = if t.typing {
        format!(
            "{} is typing…",
            crate::web::workspace::linkify::escape(t.author.name.as_deref().unwrap_or("The team"))
        )
    } else {
        String::new()
    };
    Some(format!(
        "<div hx-swap-oob=\"innerHTML:#typing-{}\">{text}</div>",
        t.conversation_id
    ))
}
