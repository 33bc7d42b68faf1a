//! Teams (`/api/v1/teams`): admins create, change and delete them; every
//! agent reads them. The rules are in [`crate::service::teams`].

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::contract;
use crate::error::ApiResult;
use crate::service::teams::TeamInput;
use crate::web::extract::{path_id, AgentAuth, ApiJson};
use crate::web::AppState;

/// `POST /teams` and `PATCH /teams/{id}` body.
#[derive(Deserialize)]
pub struct TeamBody {
    name: Option<String>,
    agent_ids: Option<Vec<String>>,
}

impl From<TeamBody> for TeamInput {
    fn from(b: TeamBody) -> Self {
        TeamInput {
            name: b.name,
            agent_ids: b.agent_ids,
        }
    }
}

/// Every team, by name.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let teams: Vec<_> = state.svc.teams()?.iter().map(contract::Team::of).collect();
    Ok(HttpResponse::Ok().json(json!({ "teams": teams })))
}

/// Creates a team (admins): 201.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn create(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<TeamBody>,
) -> ApiResult<HttpResponse> {
    let t = state.svc.create_team(&auth.agent, body.0.into()).await?;
    Ok(HttpResponse::Created().json(contract::Team::of(&t)))
}

/// One team.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, team = %path))]
pub async fn get(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let t = state.svc.team(path_id(&path)?)?;
    Ok(HttpResponse::Ok().json(contract::Team::of(&t)))
}

/// Renames a team or sets its agents (admins).
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, team = %path))]
pub async fn update(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<TeamBody>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let t = state
        .svc
        .update_team(&auth.agent, path_id(&path)?, body.0.into())
        .await?;
    Ok(HttpResponse::Ok().json(contract::Team::of(&t)))
}

/// Deletes a team (admins): 204.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, team = %path))]
pub async fn delete(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    state.svc.delete_team(&auth.agent, path_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
