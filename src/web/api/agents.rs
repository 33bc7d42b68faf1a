//! Managing the team (admins only, except reading the list, which every
//! agent needs to assign conversations).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::contract as views;
use crate::domain::{time, Email, Invalid, Name, Password, Role};
use crate::error::{ApiError, ApiResult};
use crate::service::auth::hash_password;
use crate::store::AgentUpdate;
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
pub async fn list(state: web::Data<AppState>, _auth: AgentAuth) -> ApiResult<HttpResponse> {
    let agents: Vec<_> = state.store.agents()?.iter().map(views::agent).collect();
    Ok(HttpResponse::Ok().json(json!({ "agents": agents })))
}

/// One agent.
pub async fn get(
    state: web::Data<AppState>,
    _auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let a = state
        .store
        .agent(path_id(&path)?)?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(views::agent(&a)))
}

/// Adds an agent (admins). The new agent is a member of no inbox.
pub async fn create(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<CreateBody>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let ApiJson(b) = body;
    let email = Email::parse(&b.email)?.into_inner();
    let name = Name::parse(&b.name, "name")?.into_inner();
    let role = Role::parse(b.role.as_deref().unwrap_or("agent"))?;
    let password = Password::parse(b.password)?;
    let hash = web::block(move || hash_password(password.expose()))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|_| ApiError::Internal)?;
    let agent = state
        .store
        .create_agent(name, email, role, hash, time::now())
        .await?;
    tracing::info!(agent = agent.id, by = auth.agent.id, "agent created");
    Ok(HttpResponse::Created().json(views::agent(&agent)))
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
pub async fn update(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<UpdateBody>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let id = path_id(&path)?;
    let ApiJson(b) = body;
    let update = AgentUpdate {
        name: b
            .name
            .as_deref()
            .map(|n| Name::parse(n, "name"))
            .transpose()?
            .map(Name::into_inner),
        role: b.role.as_deref().map(Role::parse).transpose()?,
        active: b.active,
        ..AgentUpdate::default()
    };
    if id == auth.agent.id && (update.active == Some(false) || update.role == Some(Role::Agent)) {
        return Err(Invalid::new("active", "you cannot deactivate or demote yourself").into());
    }
    let agent = state.store.update_agent(id, update, time::now()).await?;
    Ok(HttpResponse::Ok().json(views::agent(&agent)))
}
