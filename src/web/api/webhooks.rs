//! Outbound webhook subscriptions (admins): create (the secret is shown
//! once), list, delete, and the delivery log. The rules are in
//! [`crate::service::subscriptions`]; these handlers parse, call and render.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::contract;
use crate::domain::{format_id, time};
use crate::error::ApiResult;
use crate::web::extract::{path_id, AgentAuth, ApiJson};
use crate::web::AppState;

/// `POST /webhooks` body.
#[derive(Deserialize)]
pub struct CreateBody {
    url: String,
    events: Vec<String>,
}

/// Subscribes a URL to events; 422 for internal addresses (SSRF) unless
/// allowed by `NATTER_WEBHOOKS_ALLOW_PRIVATE`.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn create(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<CreateBody>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let (w, secret) = state
        .svc
        .create_webhook(&auth.agent, &b.url, &b.events)
        .await?;
    Ok(HttpResponse::Created().json(contract::Webhook {
        secret: Some(secret),
        ..contract::Webhook::of(&w)
    }))
}

/// Every subscription (secrets are not shown again).
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let all: Vec<_> = state
        .svc
        .webhooks(&auth.agent)?
        .iter()
        .map(contract::Webhook::of)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "webhooks": all })))
}

/// Removes a subscription.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, webhook = %path))]
pub async fn delete(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    // Admins first: a non-admin learns nothing, not even which ids parse.
    auth.require_admin()?;
    state
        .svc
        .delete_webhook(&auth.agent, path_id(&path)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One row per attempt, newest first.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, webhook = %path))]
pub async fn deliveries(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let rows: Vec<_> = state
        .svc
        .webhook_deliveries(&auth.agent, path_id(&path)?)?
        .iter()
        .map(|a| {
            json!({
                "id": format_id(a.id),
                "event": a.event,
                "event_id": a.event_id.to_string(),
                "attempt": a.attempt,
                "status_code": a.status_code,
                "error": a.error,
                "at": time::rfc3339(a.at),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "deliveries": rows })))
}

/// Delivers one event again now (after the receiver was fixed): 202; 404
/// for a webhook that never tried that event; 409 for a disabled one.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, webhook = %path.0))]
pub async fn retry(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    state
        .svc
        .retry_webhook_delivery(&auth.agent, path_id(&path.0)?, path_id(&path.1)?)
        .await?;
    Ok(HttpResponse::Accepted().json(json!({ "queued": true })))
}
