//! The HTTP surface: thin handlers by audience over the store and services.
//! No handler touches sled; each parses its input into domain types, calls
//! one store or service function and renders a view.

pub mod api;
pub mod assets;
pub mod connections;
pub mod events;
pub mod extract;
pub mod files;
pub mod health;
pub mod hooks;
pub mod messenger;
pub mod middleware;
pub mod patch;
pub mod pwa;
pub mod session;
pub mod setup;
pub mod tls;
pub mod upload;
pub mod workspace;

use std::sync::Arc;

use actix_web::web;
use tokio::sync::watch;

use crate::config::ServeConfig;
use crate::error::ApiError;

/// What every handler can reach.
pub struct AppState {
    /// The use cases: handlers parse, call one of these and render.
    pub svc: Arc<crate::service::Services>,
    /// Validated settings.
    pub config: Arc<ServeConfig>,
    /// Turns true when the server is stopping, so streams can end.
    pub shutdown: watch::Receiver<bool>,
    /// Seconds between SSE keep-alive comments.
    pub keepalive_secs: u64,
    /// Open event streams per viewer, to cap them.
    pub streams:
        std::sync::Mutex<std::collections::HashMap<crate::service::realtime::Viewer, usize>>,
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/setup", web::get().to(setup::page))
        .route("/setup", web::post().to(setup::submit))
        .route("/static/{file:.*}", web::get().to(assets::serve))
        .route("/files/{id}/{name}", web::get().to(files::serve))
        .configure(hooks::routes)
        .route("/sw.js", web::get().to(pwa::service_worker))
        .route("/manifest.webmanifest", web::get().to(pwa::manifest))
        .service(web::scope("/api/v1").configure(api::routes))
        .configure(workspace::routes)
        .configure(messenger::routes)
        .default_service(web::to(not_found));
}

async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    // A known path with the wrong method is a 405, anything else a 404.
    Err(if req.match_pattern().is_some() {
        ApiError::MethodNotAllowed
    } else {
        ApiError::NotFound
    })
}
