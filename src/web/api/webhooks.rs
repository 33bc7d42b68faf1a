//! Outbound webhook subscriptions (admins): create (the secret is shown
//! once), list, delete, and the delivery log.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{format_id, time, Invalid};
use crate::error::{ApiError, ApiResult};
use crate::service::webhooks::{new_secret, EVENTS};
use crate::store::WebhookRecord;
use crate::web::extract::{path_id, AgentAuth, ApiJson};
use crate::web::AppState;

fn view(w: &WebhookRecord) -> serde_json::Value {
    json!({
        "id": format_id(w.id),
        "url": w.url,
        "events": w.events,
        "disabled": w.disabled,
        "created_at": time::rfc3339(w.created_at),
    })
}

/// `POST /webhooks` body.
#[derive(Deserialize)]
pub struct CreateBody {
    url: String,
    events: Vec<String>,
}

/// Subscribes a URL to events; 422 for internal addresses (SSRF) unless
/// allowed by `NATTER_WEBHOOKS_ALLOW_PRIVATE`.
pub async fn create(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<CreateBody>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let b = body.0;
    if b.url.len() > 2000 {
        return Err(Invalid::new("url", "url must be at most 2000 characters").into());
    }
    let url = crate::channels::http::check_url_resolving(&b.url, state.http.allow_private)
        .await
        .map_err(|e| Invalid::new("url", e.to_string()))?;
    if b.events.is_empty() {
        return Err(
            Invalid::new("events", format!("name at least one event of {EVENTS:?}")).into(),
        );
    }
    let mut events = Vec::new();
    for e in &b.events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(
                Invalid::new("events", format!("unknown event {e:?}; use {EVENTS:?}")).into(),
            );
        }
        if !events.contains(e) {
            events.push(e.clone());
        }
    }
    let secret = new_secret();
    let w = state
        .store
        .create_webhook(
            WebhookRecord {
                id: 0,
                url: url.to_string(),
                events,
                secret: secret.clone(),
                disabled: false,
                created_at: 0,
            },
            time::now(),
        )
        .await?;
    let mut v = view(&w);
    v["secret"] = json!(secret);
    Ok(HttpResponse::Created().json(v))
}

/// Every subscription (secrets are not shown again).
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let all: Vec<_> = state.store.webhooks()?.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "webhooks": all })))
}

/// Removes a subscription.
pub async fn delete(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    state
        .store
        .delete_webhook(path_id(&path)?, time::now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One row per attempt, newest first.
pub async fn deliveries(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let id = path_id(&path)?;
    if state.store.webhook(id)?.is_none() {
        return Err(ApiError::NotFound);
    }
    let rows: Vec<_> = state
        .store
        .webhook_attempts(id, 200)?
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
