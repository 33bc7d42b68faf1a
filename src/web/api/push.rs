//! Web Push subscriptions of the signed-in agent (the workspace's service
//! worker registers one per browser). The checks are in
//! [`crate::service::subscriptions`].

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::time;
use crate::error::ApiResult;
use crate::service::subscriptions::BrowserSubscription;
use crate::web::extract::{AgentAuth, ApiJson};
use crate::web::AppState;

/// The VAPID public key for `pushManager.subscribe`.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn key(state: web::Data<AppState>, auth: AgentAuth) -> HttpResponse {
    HttpResponse::Ok().json(json!({"public_key": state.svc.push_public_key()}))
}

/// `PushSubscription.toJSON()`.
#[derive(Deserialize)]
pub struct SubscriptionBody {
    endpoint: String,
    keys: Keys,
}

/// Its keys.
#[derive(Deserialize)]
pub struct Keys {
    p256dh: String,
    auth: String,
}

/// Adds this browser's subscription.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn subscribe(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<SubscriptionBody>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let given = BrowserSubscription {
        endpoint: b.endpoint,
        p256dh: b.keys.p256dh,
        auth: b.keys.auth,
    };
    state.svc.subscribe_push(&auth.agent, given).await?;
    Ok(HttpResponse::Created().json(json!({"subscribed": true})))
}

/// `?endpoint=` of the subscription to drop.
#[derive(Deserialize)]
pub struct EndpointQuery {
    endpoint: String,
}

/// Removes this browser's subscription.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    auth: AgentAuth,
    q: web::Query<EndpointQuery>,
) -> ApiResult<HttpResponse> {
    state.svc.unsubscribe_push(&auth.agent, &q.endpoint).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in agent's subscribed endpoints.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let subs: Vec<_> = state
        .svc
        .push_subscriptions(&auth.agent)?
        .into_iter()
        .map(|s| json!({"endpoint": s.endpoint, "created_at": time::rfc3339(s.created_at)}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "subscriptions": subs })))
}
