//! The agent side of conversations: list, read, change, reply, note,
//! typing, read receipts, search.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{double_option, search_results, MessageQuery, SearchQuery};
use crate::contract::{self as views, Audience};
use crate::domain::ids::ConversationId;
use crate::domain::time::parse_rfc3339;
use crate::domain::{ConversationStatus, Invalid, Label};
use crate::error::{ApiError, ApiResult};
use crate::service::conversations::{parse_assignee, ConversationChange, ListFilter};
use crate::service::realtime::Viewer;
use crate::store::ConversationRecord;
use crate::web::extract::{path_id, AgentAuth, ApiJson};
use crate::web::upload::{MessageUpload, Uploader};
use crate::web::AppState;

/// The conversation if the agent may see its inbox; 404 otherwise, so
/// nobody learns that it exists.
pub fn visible_conversation(
    state: &AppState,
    auth: &AgentAuth,
    id: ConversationId,
) -> ApiResult<ConversationRecord> {
    state.svc.visible_conversation(&auth.agent, id)
}

/// `GET /conversations` query.
#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    assignee: Option<String>,
    inbox: Option<String>,
    label: Option<String>,
    /// `true`: only conversations whose customer waits for a reply.
    waiting: Option<String>,
    /// `recent` (default), `waiting` (longest waiting first) or `priority`
    /// (most urgent first, then longest waiting).
    sort: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The orders `GET /conversations` can list in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    Recent,
    Waiting,
    Priority,
}

/// Conversations the agent may see: newest activity first, or (`sort`)
/// the longest waiting or the most urgent first.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn list(
    state: web::Data<AppState>,
    auth: AgentAuth,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let statuses = match q.status.as_deref().unwrap_or("open") {
        "all" => ConversationStatus::ALL.to_vec(),
        s => vec![ConversationStatus::parse(s)?],
    };
    let assignee = match q.assignee.as_deref() {
        None | Some("") | Some("all") => None,
        Some("me") => Some(Some(auth.agent.id)),
        Some("unassigned") => Some(None),
        Some(s) => Some(Some(crate::domain::parse_id(s).ok_or_else(|| {
            Invalid::new("assignee", "assignee must be me, unassigned or an agent id")
        })?)),
    };
    let inbox = match q.inbox.as_deref() {
        None | Some("") => None,
        // An inbox the agent does not reach is a 404, not an empty list.
        Some(s) => Some(state.svc.visible_inbox(&auth.agent, path_id(s)?)?.id),
    };
    let label = q
        .label
        .as_deref()
        .map(Label::parse)
        .transpose()?
        .map(Label::into_inner);
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => n.min(500),
            _ => return Err(Invalid::new("limit", "limit must be a positive integer").into()),
        },
    };
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            parse_cursor(c)
                .ok_or_else(|| Invalid::new("cursor", "cursor is not one we handed out"))?,
        ),
    };
    let sort = match q.sort.as_deref() {
        None | Some("" | "recent") => Sort::Recent,
        Some("waiting") => Sort::Waiting,
        Some("priority") => Sort::Priority,
        Some(_) => {
            return Err(Invalid::new("sort", "sort is recent, waiting or priority").into());
        }
    };
    // The urgent orders are one page of the most urgent (see
    // `by_priority`): there is no cursor to go on from.
    if sort != Sort::Recent && after.is_some() {
        return Err(Invalid::new("cursor", "a cursor only pages sort=recent").into());
    }
    let filter = ListFilter {
        inbox,
        statuses,
        assignee,
        label,
        waiting: match q.waiting.as_deref() {
            None | Some("" | "false") => false,
            Some("true") => true,
            Some(_) => return Err(Invalid::new("waiting", "waiting is true or false").into()),
        },
        after,
        limit,
    };
    let (listed, next) = match sort {
        Sort::Recent => {
            let page = state.svc.list_conversations(&auth.agent, &filter)?;
            (page.conversations, page.next)
        }
        Sort::Waiting => (state.svc.longest_waiting(&auth.agent, &filter)?, None),
        Sort::Priority => (state.svc.by_priority(&auth.agent, &filter)?, None),
    };
    let mut out = Vec::with_capacity(listed.len());
    for c in &listed {
        out.push(state.svc.team_conversation(c)?);
    }
    Ok(HttpResponse::Ok().json(json!({
        "conversations": out,
        "next_cursor": next.map(|(t, id)| format!("{t}.{id}")),
    })))
}

fn parse_cursor(c: &str) -> Option<(i64, ConversationId)> {
    let (t, id) = c.split_once('.')?;
    Some((t.parse().ok()?, ConversationId::new(id.parse().ok()?)))
}

/// One conversation.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, conversation = %path))]
pub async fn get(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let c = visible_conversation(&state, &auth, path_id(&path)?)?;
    Ok(HttpResponse::Ok().json(state.svc.team_conversation(&c)?))
}

/// `PATCH /conversations/{id}` body.
#[derive(Deserialize)]
pub struct PatchBody {
    status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    assignee_id: Option<Option<String>>,
    labels: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    snoozed_until: Option<Option<String>>,
    priority: Option<String>,
}

/// Changes status, assignee, labels, snooze or priority.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, conversation = %path))]
pub async fn patch(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<PatchBody>,
) -> ApiResult<HttpResponse> {
    // Someone else's conversation is a 404 whatever the body says.
    let c = visible_conversation(&state, &auth, path_id(&path)?)?;
    let ApiJson(b) = body;
    let change = ConversationChange {
        priority: b
            .priority
            .as_deref()
            .map(crate::domain::Priority::parse)
            .transpose()?,
        status: b
            .status
            .as_deref()
            .map(ConversationStatus::parse)
            .transpose()?,
        labels: b.labels.as_deref().map(Label::parse_list).transpose()?,
        assignee_id: b
            .assignee_id
            .map(|a| a.as_deref().map(parse_assignee).transpose())
            .transpose()?,
        snoozed_until: b
            .snoozed_until
            .map(|t| {
                t.as_deref()
                    .map(|s| {
                        parse_rfc3339(s).ok_or_else(|| {
                            Invalid::new("snoozed_until", "snoozed_until must be an RFC 3339 time")
                        })
                    })
                    .transpose()
            })
            .transpose()?,
    };
    let conv = state
        .svc
        .change_conversation(&auth.agent, c.id, change)
        .await?;
    Ok(HttpResponse::Ok().json(state.svc.team_conversation(&conv)?))
}

/// Messages of a conversation, notes included.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, conversation = %path))]
pub async fn messages(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    q: web::Query<MessageQuery>,
) -> ApiResult<HttpResponse> {
    let c = visible_conversation(&state, &auth, path_id(&path)?)?;
    let msgs = state.svc.agent_messages(&auth.agent, c.id, q.page(true)?)?;
    Ok(HttpResponse::Ok()
        .json(json!({"messages": msgs.iter().map(views::Message::of).collect::<Vec<_>>()})))
}
/// A reply or private note; 201 once durable.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, conversation = %path))]
pub async fn post_message(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    upload: MessageUpload,
) -> ApiResult<HttpResponse> {
    // Someone else's conversation is refused before a byte is read.
    let c = visible_conversation(&state, &auth, path_id(&path)?)?;
    let input = upload.read(&state, Uploader::agent()).await?;
    let msg = state
        .svc
        .agent_post(&auth.agent, c.id, input.into())
        .await?;
    Ok(HttpResponse::Created().json(views::Message::of(&msg)))
}

/// Puts a failed channel reply back in the outbox.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, conversation = %path.0, seq = %path.1))]
pub async fn retry_delivery(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let id = path_id(&path.0)?;
    let seq: u64 = path.1.parse().map_err(|_| ApiError::NotFound)?;
    let m = state.svc.retry_delivery(&auth.agent, id, seq).await?;
    Ok(HttpResponse::Ok().json(views::Message::of(&m)))
}

/// `POST .../typing` body.
#[derive(Deserialize)]
pub struct TypingBody {
    typing: bool,
    #[serde(default)]
    private: bool,
}

/// Tells the contact (unless it is a note) and colleagues.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, conversation = %path))]
pub async fn typing(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<TypingBody>,
) -> ApiResult<HttpResponse> {
    let id = path_id(&path)?;
    state
        .svc
        .agent_typing(&auth.agent, id, body.0.typing, body.0.private)?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST .../read` body.
#[derive(Deserialize)]
pub struct ReadBody {
    seq: u64,
}

/// The team has read up to `seq`.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, conversation = %path))]
pub async fn read(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<ReadBody>,
) -> ApiResult<HttpResponse> {
    let id = path_id(&path)?;
    state
        .svc
        .agent_read(&auth.agent, id, Some(body.0.seq))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Search over everything the agent may see, notes included.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn search(
    state: web::Data<AppState>,
    auth: AgentAuth,
    q: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let (text, limit) = q.checked()?;
    let viewer = Viewer::Agent {
        id: auth.agent.id,
        admin: auth.is_admin(),
    };
    let filter = q.filter(auth.agent.id)?;
    let hits = state
        .svc
        .search(viewer, text, filter, limit, q.cursor.clone())
        .await?;
    Ok(HttpResponse::Ok().json(search_results(hits, Audience::Team)))
}
