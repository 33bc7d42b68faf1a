//! Live updates of the workspace: each durable event becomes HTML
//! fragments that htmx swaps out of band (rows move to the top, messages
//! append to the open thread, controls and "Seen" refresh). The fragments
//! are rendered from the same partials as the full page.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::view::{self, ConvView, Filter, MessageView, Names, RowView};
use super::PageError;
use crate::domain::ids::{AgentId, ConversationId, InboxId};
use crate::domain::{parse_id, AuthorType};
use crate::error::ApiResult;
use crate::service::realtime::{TypingEvent, Viewer};
use crate::service::Services;
use crate::store::{AgentRecord, EventPayload, EventRecord, Result};
use crate::web::events::{html_frame, Renderer};
use crate::web::patch::{self, Place};
use crate::web::session::PageAgent;
use crate::web::AppState;

/// What one open page shows, so only what it displays is sent.
#[derive(Debug, Clone)]
pub struct PageContext {
    /// The list's filter.
    pub filter: Filter,
    /// The open conversation, if any.
    pub conversation: Option<ConversationId>,
    /// The viewing agent.
    pub agent_id: AgentId,
}

#[derive(Template)]
#[template(path = "partials/row.html")]
struct RowPartial<'a> {
    row: &'a RowView,
}

#[derive(Template)]
#[template(path = "partials/tabs.html")]
struct TabsPartial<'a> {
    tabs: &'a [view::Link],
}

#[derive(Template)]
#[template(path = "partials/message.html")]
struct MessagePartial<'a> {
    msg: &'a MessageView,
}

#[derive(Template)]
#[template(path = "partials/message_inner.html")]
struct MessageInnerPartial<'a> {
    msg: &'a MessageView,
}

#[derive(Template)]
#[template(path = "partials/controls.html")]
struct ControlsPartial<'a> {
    c: &'a ConvView,
}

fn render<T: Template>(t: &T) -> Result<String> {
    t.render()
        .map_err(|e| crate::store::StoreError::Corrupt(format!("template: {e}")))
}

/// `GET /ui/events`: the page's live stream of HTML fragments.
#[tracing::instrument(skip_all, fields(agent = %page.agent.id))]
pub async fn events(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let ctx = PageContext {
        filter: Filter::from_query(&q),
        conversation: q.get("conversation").and_then(|c| parse_id(c)),
        agent_id: page.agent.id,
    };
    let viewer = Viewer::Agent {
        id: page.agent.id,
        admin: page.is_admin(),
    };
    let credential = crate::service::realtime::Credential {
        token_hash: crate::service::auth::hash_token(&page.session),
    };
    let last = crate::web::events::last_event_id(&req);
    let frames = Arc::new(PageFrames { ctx });
    Ok(crate::web::events::stream(
        state, viewer, credential, last, frames,
    )?)
}

/// The channel tag of a message: the inbox it went through, else its
/// conversation's (icons on live messages).
pub fn channel_tag(
    svc: &Services,
    conversation: ConversationId,
    via: Option<InboxId>,
) -> ApiResult<view::ChannelTag> {
    let ch = svc.message_channel(conversation, via)?;
    Ok(view::ChannelTag::of(
        ch.as_deref()
            .unwrap_or(crate::channels::ChannelKind::Web.as_str()),
    ))
}

/// A message appended to its thread unless it is shown already (the reply
/// form's own answer: the live stream may have shown it, and a newer
/// delivery state, first; `app.js` skips a message already present).
pub fn message_append_fragment(conversation: ConversationId, m: &MessageView) -> Result<String> {
    Ok(format!(
        "<div hx-swap-oob=\"beforeend:#thread-{conversation}\">{}</div>",
        render(&MessagePartial { msg: m })?
    ))
}

/// A message appended to its thread, replacing a copy already shown (and
/// its day line).
pub fn message_fragment(conversation: ConversationId, m: &MessageView) -> Result<String> {
    Ok(patch::thread_message(
        conversation,
        &m.id,
        &render(&MessagePartial { msg: m })?,
    ))
}

/// The conversation's row as the list shows it now: moved to the top for
/// new activity (`Place::Start`), changed where it is otherwise
/// (`Place::Keep`: opening an unread row must not move it), removed when
/// the list's filter no longer takes it.
fn row_fragment(
    svc: &Services,
    ctx: &PageContext,
    conversation: ConversationId,
    place: Place,
) -> ApiResult<String> {
    let id = format!("row-{conversation}");
    // The longest waiting first: activity moves nobody; a new waiter is last.
    let place = if ctx.filter.sort == "waiting" {
        Place::KeepElseEnd
    } else {
        place
    };
    if let Some(c) = svc.conversation(conversation)? {
        if ctx.filter.matches(&c, ctx.agent_id) {
            let names = Names::from(svc.names_for(&c)?);
            let contact = svc.contacts_of(std::slice::from_ref(&c))?.pop().flatten();
            let row = view::row(
                &names,
                &c,
                contact.as_ref(),
                &ctx.filter,
                ctx.conversation,
                ctx.agent_id,
            );
            let mut out = patch::remove("list-empty");
            out.push_str(&patch::upsert(
                &id,
                "conversation-list",
                place,
                &[],
                &render(&RowPartial { row: &row })?,
            ));
            return Ok(out);
        }
    }
    Ok(patch::remove(&id))
}

/// The status tabs with their counts now (every list page has them).
fn tabs_fragment(svc: &Services, ctx: &PageContext) -> ApiResult<String> {
    let Ok(me) = svc.agent(ctx.agent_id) else {
        return Ok(String::new());
    };
    let tabs = super::status_tabs(svc, &me, &ctx.filter)?;
    Ok(format!(
        "<div hx-swap-oob=\"outerHTML:#status-tabs\">{}</div>",
        render(&TabsPartial { tabs: &tabs })?
    ))
}

fn controls_fragment(
    svc: &Services,
    me: &AgentRecord,
    conversation: ConversationId,
) -> ApiResult<String> {
    let Some(c) = svc.conversation(conversation)? else {
        return Ok(String::new());
    };
    let names = Names::from(svc.names_for(&c)?);
    let thread = svc.thread(me, &c, false)?;
    let v = view::conversation(&thread, &names, &c, me);
    Ok(format!(
        "<div hx-swap-oob=\"outerHTML:#controls-{id}\">{}</div><div hx-swap-oob=\"outerHTML:#status-{id}\"><span class=\"status status-{s}\" id=\"status-{id}\">{s}</span></div><div hx-swap-oob=\"innerHTML:#seen-{id}\">{seen}</div>",
        render(&ControlsPartial { c: &v })?,
        id = conversation,
        s = v.status,
        seen = v.seen,
    ))
}

/// A workspace page's renderer.
struct PageFrames {
    ctx: PageContext,
}

impl Renderer for PageFrames {
    fn event(&self, svc: &Services, _viewer: Viewer, ev: &EventRecord) -> ApiResult<String> {
        Ok(html_frame(
            Some(ev.id.get()),
            &render_event(svc, &self.ctx, ev)?,
        ))
    }

    fn typing(&self, t: &TypingEvent) -> Option<String> {
        render_typing(&self.ctx, t).map(|h| html_frame(None, &h))
    }
}

/// The fragments for one event on one page (empty when it shows nothing).
fn render_event(svc: &Services, ctx: &PageContext, ev: &EventRecord) -> ApiResult<String> {
    let mut out = String::new();
    match &ev.payload {
        EventPayload::MessageCreated { message } => {
            let cid = message.conversation_id;
            if ctx.conversation == Some(cid) {
                let prev = match message.seq {
                    1 => None,
                    seq => svc.message(cid, seq - 1)?,
                };
                let mut v = view::message(message, prev.as_ref());
                v.channel = channel_tag(svc, cid, message.via)?;
                out.push_str(&message_fragment(cid, &v)?);
                out.push_str(&format!(
                    "<div hx-swap-oob=\"innerHTML:#typing-{cid}\"></div>"
                ));
            }
            out.push_str(&row_fragment(svc, ctx, cid, Place::Start)?);
            // A message can reopen its conversation.
            out.push_str(&tabs_fragment(svc, ctx)?);
            if message.author.kind == AuthorType::Contact {
                if let Some(c) = svc.conversation(cid)? {
                    if c.assignee_id.is_none() || c.assignee_id == Some(ctx.agent_id) {
                        let who = super::linkify::escape(
                            message.author.name.as_deref().unwrap_or("A visitor"),
                        );
                        let body = super::linkify::escape(&view::truncate(&message.body, 120));
                        out.push_str(&format!(
                            "<div hx-swap-oob=\"beforeend:#notifications\"><span data-notify=\"1\" data-conversation=\"{cid}\" data-title=\"{who}\" data-body=\"{body}\" data-href=\"/conversations/{cid}\"></span></div>"
                        ));
                    }
                }
            }
        }
        EventPayload::ConversationCreated { conversation } => {
            out.push_str(&row_fragment(svc, ctx, conversation.id, Place::Start)?);
            out.push_str(&tabs_fragment(svc, ctx)?);
        }
        EventPayload::ConversationUpdated { conversation }
        | EventPayload::SlaAlert { conversation, .. } => {
            out.push_str(&row_fragment(svc, ctx, conversation.id, Place::Keep)?);
            out.push_str(&tabs_fragment(svc, ctx)?);
            if ctx.conversation == Some(conversation.id) {
                // The viewer as stored now (gone: nothing to show).
                if let Ok(me) = svc.agent(ctx.agent_id) {
                    out.push_str(&controls_fragment(svc, &me, conversation.id)?);
                }
            }
            // A deadline near or missed is the assignee's to hear about
            // (everyone's who sees the inbox while nobody has it), as a
            // desktop notification and in the live region.
            if let EventPayload::SlaAlert { breached, .. } = &ev.payload {
                let cid = conversation.id;
                let current = svc.conversation(cid)?;
                if let Some(c) = current
                    .filter(|c| c.assignee_id.is_none() || c.assignee_id == Some(ctx.agent_id))
                {
                    let names = Names::from(svc.all_names()?);
                    // The target only: how long is left is the badge's to
                    // say (it counts down by itself).
                    let target = view::SlaBadge::of(&names, &c, ev.at).target;
                    let target = if target.is_empty() {
                        "A deadline"
                    } else {
                        target
                    };
                    let (title, body) = if *breached {
                        ("SLA missed", format!("{target} is overdue"))
                    } else {
                        ("SLA deadline near", format!("{target} is due soon"))
                    };
                    out.push_str(&format!(
                        "<div hx-swap-oob=\"beforeend:#notifications\"><span data-notify=\"1\" data-conversation=\"{cid}\" data-title=\"{title}\" data-body=\"{body}\" data-live=\"{title}: {body}\" data-href=\"/conversations/{cid}\"></span></div>"
                    ));
                }
            }
        }
        EventPayload::MessageUpdated { message } => {
            if ctx.conversation == Some(message.conversation_id) {
                let mut v = view::message(message, None);
                v.day = None;
                v.channel = channel_tag(svc, message.conversation_id, message.via)?;
                // The message's insides change in place (its <li> stays),
                // if the thread shows it.
                out.push_str(&patch::inner(
                    &format!("msg-{}", v.id),
                    &render(&MessageInnerPartial { msg: &v })?,
                ));
            }
        }
        EventPayload::ContactDeleted { .. } => {}
        EventPayload::ConversationRead {
            conversation_id,
            reader,
            ..
        } => {
            if reader.kind == AuthorType::Contact {
                if ctx.conversation == Some(*conversation_id) {
                    if let Some(c) = svc.conversation(*conversation_id)? {
                        out.push_str(&format!(
                            "<div hx-swap-oob=\"innerHTML:#seen-{conversation_id}\">{}</div>",
                            view::seen_line(&c)
                        ));
                    }
                }
            } else {
                out.push_str(&row_fragment(svc, ctx, *conversation_id, Place::Keep)?);
            }
        }
    }
    Ok(out)
}

/// The typing line of the open conversation.
fn render_typing(ctx: &PageContext, t: &TypingEvent) -> Option<String> {
    if ctx.conversation != Some(t.conversation_id) {
        return None;
    }
    let text = if t.typing {
        let who = super::linkify::escape(t.author.name.as_deref().unwrap_or("The visitor"));
        format!("{who} is typing…")
    } else {
        String::new()
    };
    Some(format!(
        "<div hx-swap-oob=\"innerHTML:#typing-{}\">{text}</div>",
        t.conversation_id
    ))
}
