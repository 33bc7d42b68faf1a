//! Managing the team (admins only, except reading the list, which every
//! agent needs to assign conversations). The rules are in
//! [`crate::service::agents`]; these handlers parse, call and render.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::contract as views;
use crate::error::ApiResult;
use crate::service::agents::{AgentChange, NewAgent};
use crate::web::extract::{path_id, AgentAuth, ApiJson};
use crate::web::AppState;

/// `POST /agents` body.
#[derive(Deserialize)]
pub struct CreateBody {
    email: String,
    name: String,
    role: Option<String>,
    password: String,
}

/// Every agent.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let agents: Vec<_> = state.svc.agents()?.iter().map(views::Agent::of).collect();
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
    Ok(HttpResponse::Ok().json(views::Agent::of(&a)))
}

/// Adds an agent (admins). The new agent is a member of no inbox.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn create(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<CreateBody>,
) -> ApiResult<HttpResponse> {
    let ApiJson(b) = body;
    let new = NewAgent {
        name: b.name,
        email: b.email,
        role: b.role,
        password: b.password,
    };
    let agent = state.svc.create_agent(&auth.agent, new).await?;
    Ok(HttpResponse::Created().json(views::Agent::of(&agent)))
}

/// `PATCH /agents/{id}` body.
#[derive(Deserialize)]
pub struct UpdateBody {
    name: Option<String>,
    role: Option<String>,
    active: Option<bool>,
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
    };
    let agent = state.svc.update_agent(&auth.agent, id, change).await?;
    Ok(HttpResponse::Ok().json(views::Agent::of(&agent)))
}
