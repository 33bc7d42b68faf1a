//! Managing the team (admins only, except reading the list, which every
//! agent needs to assign conversations). The rules are in
//! [`crate::service::agents`]; these handlers parse, call and render.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::contract as views;
use crate::error::ApiResult;
use crate::service::agents::{AgentChange, NewAgent};
use crate::service::password_links::NewInvite;
use crate::web::extract::{path_id, AgentAuth, ApiJson, ClientIp};
use crate::web::AppState;

/// `POST /agents` body.
#[derive(Deserialize)]
pub struct CreateBody {
    email: String,
    name: String,
    role: Option<String>,
    /// Without one, the agent is invited: they choose their own.
    password: Option<String>,
}

/// Every agent.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let agents: Vec<_> = state
        .svc
        .agents()?
        .iter()
        .map(|a| views::Agent::of(a, state.svc.availability_of(a)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "agents": agents })))
}

/// One agent.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, id = %path))]
pub async fn get(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let a = state.svc.agent(path_id(&path)?)?;
    Ok(HttpResponse::Ok().json(views::Agent::of(&a, state.svc.availability_of(&a))))
}

/// Adds an agent (admins). The new agent is a member of no inbox.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn create(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<CreateBody>,
) -> ApiResult<HttpResponse> {
    let ApiJson(b) = body;
    let Some(password) = b.password else {
        let new = NewInvite {
            name: b.name,
            email: b.email,
            role: b.role,
        };
        let link = state.svc.invite_agent(&auth.agent, new).await?;
        return Ok(HttpResponse::Created().json(views::InvitedAgent {
            agent: views::Agent::of(&link.agent, state.svc.availability_of(&link.agent)),
            invite_url: link.url,
            invite_mailed: link.mailed.is_ok(),
        }));
    };
    let new = NewAgent {
        name: b.name,
        email: b.email,
        role: b.role,
        password,
    };
    let agent = state.svc.create_agent(&auth.agent, new).await?;
    Ok(HttpResponse::Created().json(views::Agent::of(&agent, state.svc.availability_of(&agent))))
}

/// A fresh single-use link for an agent to choose a password (admins): an
/// invitation while they have none yet, else a reset link; mailed to them
/// when natter can send mail.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, id = %path))]
pub async fn password_link(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let link = state.svc.agent_link(&auth.agent, path_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(json!({
        "url": link.url,
        "mailed": link.mailed.is_ok(),
    })))
}

/// `POST /auth/forgot` body.
#[derive(Deserialize)]
pub struct ForgotBody {
    email: String,
}

/// "Forgot password": 202 whether or not the address is an agent's (a
/// link is mailed when it is and mail can be sent).
#[tracing::instrument(skip_all, fields(ip = %ip.0))]
pub async fn forgot(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<ForgotBody>,
) -> ApiResult<HttpResponse> {
    state.svc.forgot_password(&body.0.email, ip.0).await?;
    Ok(HttpResponse::Accepted().json(json!({ "accepted": true })))
}

/// `PATCH /agents/{id}` body.
#[derive(Deserialize)]
pub struct UpdateBody {
    name: Option<String>,
    role: Option<String>,
    active: Option<bool>,
    capacity: Option<u32>,
}

/// Renames, changes the role of, or (de)activates an agent (admins).
/// Deactivation ends the agent's sessions and tokens at once.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, id = %path))]
pub async fn update(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<UpdateBody>,
) -> ApiResult<HttpResponse> {
    // Admins first: a non-admin learns nothing, not even which ids parse.
    auth.require_admin()?;
    let id = path_id(&path)?;
    let ApiJson(b) = body;
    let change = AgentChange {
        name: b.name,
        role: b.role,
        active: b.active,
        capacity: b.capacity,
    };
    let agent = state.svc.update_agent(&auth.agent, id, change).await?;
    Ok(HttpResponse::Ok().json(views::Agent::of(&agent, state.svc.availability_of(&agent))))
}
