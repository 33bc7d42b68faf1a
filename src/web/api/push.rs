//! Web Push subscriptions of the signed-in agent (the workspace's service
//! worker registers one per browser).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{time, Invalid};
use crate::error::ApiResult;
use crate::service::webpush::Subscription;
use crate::store::PushSubscriptionRecord;
use crate::web::extract::{AgentAuth, ApiJson};
use crate::web::AppState;

/// The VAPID public key for `pushManager.subscribe`.
pub async fn key(state: web::Data<AppState>, _auth: AgentAuth) -> HttpResponse {
    HttpResponse::Ok().json(json!({"public_key": state.vapid.public_key_b64url()}))
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
pub async fn subscribe(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<SubscriptionBody>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    state
        .http
        .check(&b.endpoint)
        .map_err(|e| Invalid::new("endpoint", e.to_string()))?;
    let raw =
        json!({"endpoint": b.endpoint, "keys": {"p256dh": b.keys.p256dh, "auth": b.keys.auth}})
            .to_string();
    let sub = Subscription::from_browser_json(&raw)
        .map_err(|e| Invalid::new("keys", format!("not a usable push subscription: {e}")))?;
    state
        .store
        .add_push_subscription(
            PushSubscriptionRecord {
                agent_id: auth.agent.id,
                endpoint: sub.endpoint,
                p256dh: sub.p256dh,
                auth: sub.auth,
                created_at: time::now(),
            },
            time::now(),
        )
        .await?;
    Ok(HttpResponse::Created().json(json!({"subscribed": true})))
}

/// `?endpoint=` of the subscription to drop.
#[derive(Deserialize)]
pub struct EndpointQuery {
    endpoint: String,
}

/// Removes this browser's subscription.
pub async fn unsubscribe(
    state: web::Data<AppState>,
    auth: AgentAuth,
    q: web::Query<EndpointQuery>,
) -> ApiResult<HttpResponse> {
    state
        .store
        .remove_push_subscription(auth.agent.id, &q.endpoint, time::now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in agent's subscribed endpoints.
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let subs: Vec<_> = state
        .store
        .push_subscriptions(auth.agent.id)?
        .into_iter()
        .map(|s| json!({"endpoint": s.endpoint, "created_at": time::rfc3339(s.created_at)}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "subscriptions": subs })))
}
