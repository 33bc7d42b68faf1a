//! The installable workspace: the web app manifest and the service worker
//! (offline shell, Web Push notifications). The worker is served from the
//! root so its scope covers every page.

use actix_web::http::header;
use actix_web::HttpResponse;

use crate::error::ApiError;

/// `GET /sw.js`: the service worker, never cached long (a new version must
/// reach browsers on their next visit).
pub async fn service_worker() -> Result<HttpResponse, ApiError> {
    let file = super::assets::get("sw.js").ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("Service-Worker-Allowed", "/"))
        .body(file))
}

/// `GET /manifest.webmanifest`: name, icons and start URL for "Install".
pub async fn manifest() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/manifest+json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(
            serde_json::json!({
                "name": "Natter",
                "short_name": "Natter",
                "description": "Your team's inbox for every customer conversation",
                "start_url": "/inbox",
                "scope": "/",
                "display": "standalone",
                "background_color": "#ffffff",
                "theme_color": "#2563eb",
                "icons": [
                    {"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml", "purpose": "any maskable"}
                ],
            })
            .to_string(),
        )
}
