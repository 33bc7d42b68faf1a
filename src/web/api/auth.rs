//! Sign-in, sign-out and the signed-in agent.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::contract as views;
use crate::domain::time::rfc3339;
use crate::error::ApiResult;
use crate::service::sessions::CredentialKind;
use crate::web::extract::{AgentAuth, ApiJson, ClientIp};
use crate::web::AppState;

/// `POST /auth/login` body.
#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
}

/// Signs an agent in for the API (the rules and lockouts are the
/// service's: [`crate::service::Services::sign_in`]).
#[tracing::instrument(skip_all, fields(ip = %ip.0))]
pub async fn login(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<LoginBody>,
) -> ApiResult<HttpResponse> {
    let ClientIp(ip) = ip;
    let ApiJson(b) = body;
    let signed_in = state
        .svc
        .sign_in(&b.email, b.password, ip, CredentialKind::ApiToken)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "token": signed_in.credential.token,
        "expires_at": rfc3339(signed_in.credential.expires_at),
        "agent": views::Agent::of(&signed_in.agent, state.svc.availability_of(&signed_in.agent)),
    })))
}

/// Revokes the presented token.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn logout(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    state.svc.sign_out(auth.token_hash).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in agent.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn me(state: web::Data<AppState>, auth: AgentAuth) -> HttpResponse {
    HttpResponse::Ok().json(views::Agent::of(
        &auth.agent,
        state.svc.availability_of(&auth.agent),
    ))
}

/// `PUT /me/availability` body.
#[derive(Deserialize)]
pub struct AvailabilityBody {
    availability: String,
}

/// The agent sets their availability: 200 with the agent.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn set_availability(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<AvailabilityBody>,
) -> ApiResult<HttpResponse> {
    let agent = state
        .svc
        .set_availability(&auth.agent, &body.0.availability)
        .await?;
    Ok(HttpResponse::Ok().json(views::Agent::of(&agent, state.svc.availability_of(&agent))))
}

/// `POST /me/password` body.
#[derive(Deserialize)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// Changes the agent's password, ends every session and token it had, and
/// hands back a fresh token so this client stays signed in.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn change_password(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<PasswordBody>,
) -> ApiResult<HttpResponse> {
    let ApiJson(b) = body;
    let issued = state
        .svc
        .change_password(
            &auth.agent,
            b.current_password,
            b.new_password,
            CredentialKind::ApiToken,
        )
        .await?;
    Ok(HttpResponse::Ok()
        .json(json!({"token": issued.token, "expires_at": rfc3339(issued.expires_at)})))
}
