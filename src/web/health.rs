//! Operability: a health check that proves the store answers, and metrics.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::error::ApiError;
use crate::metrics;

/// 200 `{"status":"ok"}` when the database answers a read, 503 otherwise.
#[tracing::instrument(skip_all)]
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.svc.ping()?;
    Ok(HttpResponse::Ok().json(json!({"status": "ok"})))
}

/// Prometheus text on the main address: only with the metrics token.
///
/// Why a token: the figures (requests per route, open streams, message
/// counts) tell an outsider how busy a business is and when a burst works
/// against it; exporters keep them off the public port. Without a token set
/// the route answers 404 and says how to turn it on.
pub async fn metrics(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = &state.config.metrics_token else {
        return Err(ApiError::NotServed(
            "metrics are off on this address: set NATTER_METRICS_TOKEN (then send it as a \
             Bearer token) or NATTER_METRICS_BIND (a separate address)",
        ));
    };
    let given = super::extract::bearer(&req).unwrap_or("");
    let same = given.len() == token.expose().len()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            token.expose().as_bytes(),
        ));
    if !same {
        return Err(ApiError::Unauthorized(
            "send the metrics token: Authorization: Bearer <NATTER_METRICS_TOKEN>",
        ));
    }
    Ok(exposition())
}

/// Prometheus text on the metrics address (`NATTER_METRICS_BIND`), where
/// reaching the port is the permission.
pub async fn metrics_open() -> HttpResponse {
    exposition()
}

fn exposition() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics::global().render())
}
