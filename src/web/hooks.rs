//! Provider webhooks (`/hooks/{provider}/{inbox_id}`) and the API
//! channel's inbound route: parse the request, hand it to
//! [`crate::service::inbound`] (which verifies first, 401 and nothing
//! stored, then stores durably) and render its answer; media is fetched
//! afterwards by the outbox.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::channels::{HookReply, HookRequest};
use crate::contract as views;
use crate::error::{ApiError, ApiResult};
use crate::service::inbound::ApiChannelMessage;
use crate::store::Received;
use crate::web::extract::{path_id, ApiJson};
use crate::web::AppState;

/// Registers the provider webhook routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/hooks/{provider}/{inbox_id}", web::get().to(hook))
        .route("/hooks/{provider}/{inbox_id}", web::post().to(hook))
        .route(
            "/hooks/{provider}/{inbox_id}/{sub}",
            web::post().to(hook_sub),
        );
}

#[tracing::instrument(skip_all, fields(provider = %path.0, inbox = %path.1))]
async fn hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    handle(&state, &req, &path.0, &path.1, "", &body).await
}

#[tracing::instrument(skip_all, fields(provider = %path.0, inbox = %path.1))]
async fn hook_sub(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    if path.2 != "status" {
        return Err(ApiError::NotFound);
    }
    handle(&state, &req, &path.0, &path.1, "status", &body).await
}

async fn handle(
    state: &AppState,
    req: &HttpRequest,
    provider: &str,
    inbox_id: &str,
    sub: &str,
    body: &[u8],
) -> ApiResult<HttpResponse> {
    let inbox_id = path_id(inbox_id)?;
    let query = req.query_string();
    let mut url = format!("{}{}", state.config.base_url, req.path());
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    let hook = HookRequest {
        method: req.method().as_str(),
        url,
        query,
        headers: req.headers(),
        body,
        sub,
    };
    Ok(
        match state.svc.provider_hook(provider, inbox_id, &hook).await? {
            HookReply::Ok => HttpResponse::Ok().json(json!({})),
            HookReply::Body(ct, b) => HttpResponse::Ok().content_type(ct).body(b),
        },
    )
}

/// `POST /api/v1/channels/api/{inbox_id}/messages` body.
#[derive(Deserialize)]
pub struct ApiMessage {
    source_id: String,
    name: Option<String>,
    email: Option<String>,
    body: String,
    message_id: Option<String>,
}

/// A customer message from the business's own app or bot: 201 with the
/// message, 200 with the existing one when `message_id` was seen before.
#[tracing::instrument(skip_all, fields(inbox = %path.as_str()))]
pub async fn api_channel_message(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: ApiJson<ApiMessage>,
) -> ApiResult<HttpResponse> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let b = body.0;
    let message = ApiChannelMessage {
        source_id: b.source_id,
        name: b.name,
        email: b.email,
        body: b.body,
        message_id: b.message_id,
    };
    Ok(
        match state.svc.api_channel_message(&path, token, message).await? {
            Received::Stored {
                message,
                conversation,
                ..
            } => HttpResponse::Created().json(views::ReceivedMessage {
                message: views::Message::of(&message),
                contact_id: crate::domain::format_id(conversation.contact_id),
            }),
            // A retry of a message already stored: the message as it is.
            Received::Duplicate { message } => match message {
                Some(m) => HttpResponse::Ok().json(views::Message::of(&m)),
                None => HttpResponse::Ok().json(json!({})),
            },
        },
    )
}
