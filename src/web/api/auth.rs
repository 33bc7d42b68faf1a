//! Sign-in, sign-out and the signed-in agent.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::contract as views;
use crate::domain::time::{self, rfc3339};
use crate::domain::Password;
use crate::error::{ApiError, ApiResult};
use crate::service::auth::{dummy_hash, hash_password, verify_password};
use crate::store::TokenOwner;
use crate::web::extract::{AgentAuth, ApiJson, ClientIp};
use crate::web::AppState;

/// `POST /auth/login` body.
#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
}

/// Checks an email and password in constant-ish time (unknown emails are
/// verified against a dummy hash), with lockouts per account and address.
#[tracing::instrument(skip_all, fields(ip = %ip.0))]
pub async fn login(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<LoginBody>,
) -> ApiResult<HttpResponse> {
    let ClientIp(ip) = ip;
    let ApiJson(b) = body;
    let email = b.email.trim().to_lowercase();
    state
        .limits
        .login_check(&email, ip)
        .map_err(ApiError::TooManyRequests)?;
    let agent = state.store.agent_by_email(&email)?.filter(|a| a.active);
    let hash = agent
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |a| a.password_hash.clone());
    let password = b.password;
    let verified = web::block(move || verify_password(&hash, &password))
        .await
        .map_err(|_| ApiError::Internal)?;
    let agent = match agent {
        Some(a) if verified => a,
        _ => {
            if let Err(secs) = state.limits.login_failed(&email, ip) {
                tracing::warn!(%email, "sign-in locked out after repeated failures");
                return Err(ApiError::TooManyRequests(secs));
            }
            return Err(ApiError::Unauthorized("wrong email or password"));
        }
    };
    let (token, expires_at) =
        crate::web::session::issue_agent_token(&state, agent.id, "nat_").await?;
    tracing::info!(agent = agent.id, "agent signed in");
    Ok(HttpResponse::Ok().json(json!({
        "token": token,
        "expires_at": rfc3339(expires_at),
        "agent": views::agent(&agent),
    })))
}

/// Revokes the presented token.
pub async fn logout(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    state
        .store
        .revoke_token(TokenOwner::Agent, auth.token_hash, time::now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in agent.
pub async fn me(auth: AgentAuth) -> HttpResponse {
    HttpResponse::Ok().json(views::agent(&auth.agent))
}

/// `POST /me/password` body.
#[derive(Deserialize)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// Changes the agent's password, ends every session and token it had, and
/// hands back a fresh token so this client stays signed in.
pub async fn change_password(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<PasswordBody>,
) -> ApiResult<HttpResponse> {
    let ApiJson(b) = body;
    let new = Password::parse(b.new_password).map_err(|mut i| {
        i.field = "new_password";
        i
    })?;
    let hash = auth.agent.password_hash.clone();
    let current = b.current_password;
    let ok = web::block(move || verify_password(&hash, &current))
        .await
        .map_err(|_| ApiError::Internal)?;
    if !ok {
        return Err(ApiError::Forbidden("the current password is wrong"));
    }
    let new_hash = web::block(move || hash_password(new.expose()))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|_| ApiError::Internal)?;
    state
        .store
        .set_agent_password(auth.agent.id, new_hash, time::now())
        .await?;
    let (token, expires_at) =
        crate::web::session::issue_agent_token(&state, auth.agent.id, "nat_").await?;
    Ok(HttpResponse::Ok().json(json!({"token": token, "expires_at": rfc3339(expires_at)})))
}
