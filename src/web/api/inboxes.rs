//! Inboxes and their members. The rules (channel settings, tokens,
//! greetings, identity secrets, who may manage) are in
//! [`crate::service::inboxes`]; these handlers parse, call and render.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::contract as views;
use crate::domain::{format_id, Invalid};
use crate::error::{ApiError, ApiResult};
use crate::service::inboxes::{AssignmentChange, InboxChange, NewInbox, Settings};
use crate::web::extract::{path_id, AgentAuth, ApiJson};
use crate::web::AppState;

/// `POST /inboxes` body.
#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    channel: Option<String>,
    greeting: Option<String>,
    #[serde(default)]
    settings: Option<Settings>,
}

/// Admins: every inbox; agents: those they are members of.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let out: Vec<_> = state
        .svc
        .visible_inboxes(&auth.agent)?
        .iter()
        .map(|i| views::Inbox::at(i, auth.is_admin(), &state.config.base_url))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "inboxes": out })))
}

/// Creates an inbox (admins); a Telegram inbox's answer also says whether
/// its webhook could be registered.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn create(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<CreateBody>,
) -> ApiResult<HttpResponse> {
    let ApiJson(b) = body;
    let new = NewInbox {
        name: b.name,
        channel: b.channel,
        greeting: b.greeting,
        settings: b.settings,
    };
    let (inbox, connection) = state.svc.create_inbox(&auth.agent, new).await?;
    Ok(HttpResponse::Created().json(views::CreatedInbox {
        inbox: views::Inbox::at(&inbox, true, &state.config.base_url),
        connection,
    }))
}

/// `PATCH /inboxes/{id}` body.
#[derive(Deserialize)]
pub struct UpdateBody {
    name: Option<String>,
    greeting: Option<String>,
    #[serde(default)]
    settings: Option<Settings>,
    /// A new identity secret (see [`InboxChange::hmac_secret`]).
    hmac_secret: Option<String>,
    /// The messenger's pre-chat form: `off`, `ask` or `require`.
    prechat: Option<String>,
    /// `{"mode":"off|round_robin|balanced","team_id"?}`.
    assignment: Option<AssignmentBody>,
    /// `{"timezone","week":{...},"holidays":[...]}`, or `null` to remove.
    #[serde(default, deserialize_with = "super::double_option")]
    business_hours: Option<Option<serde_json::Value>>,
    /// Sent to a contact who writes outside business hours.
    out_of_office: Option<String>,
    /// Ask for a rating after each resolution.
    csat: Option<bool>,
    /// `{"first_response_minutes"?,"next_response_minutes"?,"resolution_minutes"?,"business_hours"?}`, or `null`.
    #[serde(default, deserialize_with = "super::double_option")]
    sla: Option<Option<serde_json::Value>>,
}

/// `PATCH /inboxes/{id}`'s `assignment`.
#[derive(Deserialize)]
pub struct AssignmentBody {
    mode: String,
    team_id: Option<String>,
}

/// Changes an inbox's name, greeting, channel settings or identity secret
/// (admins).
/// Settings not given keep their value, so secrets need not be retyped.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, inbox = %path))]
pub async fn update(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<UpdateBody>,
) -> ApiResult<HttpResponse> {
    // Admins first: a non-admin learns nothing, not even which ids parse.
    auth.require_admin()?;
    let id = path_id(&path)?;
    let b = body.0;
    let change = InboxChange {
        name: b.name,
        greeting: b.greeting,
        settings: b.settings,
        hmac_secret: b.hmac_secret,
        prechat: b.prechat,
        assignment: b.assignment.map(|a| AssignmentChange {
            mode: a.mode,
            team_id: a.team_id,
        }),
        business_hours: b.business_hours,
        out_of_office: b.out_of_office,
        csat: b.csat,
        sla: b.sla,
        ..InboxChange::default()
    };
    let inbox = state.svc.update_inbox(&auth.agent, id, change).await?;
    Ok(HttpResponse::Ok().json(views::Inbox::at(&inbox, true, &state.config.base_url)))
}

/// "Test connection": asks the provider whether the credentials work
/// (and for Telegram registers the webhook again).
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, inbox = %path))]
pub async fn test_connection(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let (_, check) = state
        .svc
        .test_connection(&auth.agent, path_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(check))
}

/// One inbox, if visible.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, inbox = %path))]
pub async fn get(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let inbox = state.svc.visible_inbox(&auth.agent, path_id(&path)?)?;
    Ok(HttpResponse::Ok().json(views::Inbox::at(
        &inbox,
        auth.is_admin(),
        &state.config.base_url,
    )))
}

/// The members of a visible inbox.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, inbox = %path))]
pub async fn members(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let out: Vec<_> = state
        .svc
        .inbox_members(&auth.agent, path_id(&path)?)?
        .iter()
        .map(|a| views::Agent::of(a, state.svc.availability_of(a)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "members": out })))
}

/// `POST /inboxes/{id}/members` body.
#[derive(Deserialize)]
pub struct MemberBody {
    agent_id: String,
}

/// Adds an agent to an inbox (admins): 201 when added, 200 when it
/// already was a member.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, inbox = %path))]
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
    let fresh = state.svc.add_member(&auth.agent, inbox, agent).await?;
    let body = json!({"inbox_id": format_id(inbox), "agent_id": format_id(agent)});
    Ok(if fresh {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// Removes an agent from an inbox (admins).
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, inbox = %path.0, member = %path.1))]
pub async fn remove_member(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let (inbox, agent) = (path_id(&path.0)?, path_id(&path.1)?);
    if state.svc.remove_member(&auth.agent, inbox, agent).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
