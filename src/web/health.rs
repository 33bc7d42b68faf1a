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

/// Prometheus text exposition.
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics::global().render())
}
