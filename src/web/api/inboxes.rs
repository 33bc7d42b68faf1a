//! Inboxes and their members.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{format_id, time, Invalid, Name};
use crate::error::{ApiError, ApiResult};
use crate::service::auth::random_string;
use crate::store::InboxRecord;
use crate::web::extract::{path_id, AgentAuth, ApiJson};
use crate::web::{views, AppState};

/// Channels this build can create. The others of the contract arrive with
/// the channel layer.
const CHANNELS: &[&str] = &["web"];

/// `POST /inboxes` body.
#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    channel: Option<String>,
    greeting: Option<String>,
}

/// A fresh web inbox record (also used for the first-run "Website").
pub fn new_web_inbox(name: String, greeting: Option<String>) -> InboxRecord {
    InboxRecord {
        id: 0,
        name,
        channel: "web".into(),
        widget_key: random_string(16),
        hmac_secret: random_string(32),
        greeting,
        accent_color: None,
        reply_time: None,
        created_at: 0,
    }
}

/// The inbox if the agent may see it, else 404.
pub fn visible_inbox(state: &AppState, auth: &AgentAuth, id: u64) -> ApiResult<InboxRecord> {
    let inbox = state.store.inbox(id)?.ok_or(ApiError::NotFound)?;
    if auth.is_admin() || state.store.is_member(id, auth.agent.id)? {
        Ok(inbox)
    } else {
        Err(ApiError::NotFound)
    }
}

/// The inbox ids an agent may see.
pub fn visible_inbox_ids(state: &AppState, auth: &AgentAuth) -> ApiResult<Vec<u64>> {
    let mut ids = Vec::new();
    for i in state.store.inboxes()? {
        if auth.is_admin() || state.store.is_member(i.id, auth.agent.id)? {
            ids.push(i.id);
        }
    }
    Ok(ids)
}

/// Admins: every inbox; agents: those they are members of.
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let mut out = Vec::new();
    for i in state.store.inboxes()? {
        if auth.is_admin() || state.store.is_member(i.id, auth.agent.id)? {
            out.push(views::inbox(&i, auth.is_admin()));
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "inboxes": out })))
}

/// Creates an inbox (admins).
pub async fn create(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<CreateBody>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let ApiJson(b) = body;
    let name = Name::parse(&b.name, "name")?.into_inner();
    let channel = b.channel.unwrap_or_else(|| "web".into());
    if !CHANNELS.contains(&channel.as_str()) {
        return Err(Invalid::new(
            "channel",
            format!("channel {channel:?} is not available; use one of {CHANNELS:?}"),
        )
        .into());
    }
    let greeting = match b.greeting.as_deref().map(str::trim) {
        Some(g) if g.chars().count() > 500 => {
            return Err(Invalid::new("greeting", "greeting must be at most 500 characters").into())
        }
        Some("") | None => None,
        Some(g) => Some(g.to_owned()),
    };
    let inbox = state
        .store
        .create_inbox(new_web_inbox(name, greeting), time::now())
        .await?;
    Ok(HttpResponse::Created().json(views::inbox(&inbox, true)))
}

/// One inbox, if visible.
pub async fn get(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let inbox = visible_inbox(&state, &auth, path_id(&path)?)?;
    Ok(HttpResponse::Ok().json(views::inbox(&inbox, auth.is_admin())))
}

/// The members of a visible inbox.
pub async fn members(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let inbox = visible_inbox(&state, &auth, path_id(&path)?)?;
    let mut out = Vec::new();
    for id in state.store.members(inbox.id)? {
        if let Some(a) = state.store.agent(id)? {
            out.push(views::agent(&a));
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "members": out })))
}

/// `POST /inboxes/{id}/members` body.
#[derive(Deserialize)]
pub struct MemberBody {
    agent_id: String,
}

/// Adds an agent to an inbox (admins): 201 when added, 200 when it
/// already was a member.
pub async fn add_member(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<MemberBody>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let inbox = path_id(&path)?;
    let agent = crate::domain::parse_id(&body.0.agent_id)
        .ok_or_else(|| Invalid::new("agent_id", "no such agent"))?;
    let fresh = state.store.add_member(inbox, agent, time::now()).await?;
    let body = json!({"inbox_id": format_id(inbox), "agent_id": format_id(agent)});
    Ok(if fresh {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// Removes an agent from an inbox (admins).
pub async fn remove_member(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let (inbox, agent) = (path_id(&path.0)?, path_id(&path.1)?);
    if state.store.remove_member(inbox, agent, time::now()).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
