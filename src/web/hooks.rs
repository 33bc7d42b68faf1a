//! Provider webhooks (`/hooks/{provider}/{inbox_id}`) and the API
//! channel's inbound route: verify first (401, nothing stored), store
//! durably, then answer; media is fetched afterwards by the outbox.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::channels::{self, HookError, HookReply, HookRequest, Inbound};
use crate::contract as views;
use crate::domain::time;
use crate::domain::MessageBody;
use crate::error::{ApiError, ApiResult};
use crate::store::{Delivery, InboxRecord, Received};
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

pub use crate::channels::clean_text;

/// Stores each parsed message and status; returns what was stored.
pub async fn store_inbound(
    state: &AppState,
    inbox: &InboxRecord,
    messages: Vec<Inbound>,
    statuses: Vec<channels::StatusUpdate>,
) -> ApiResult<Vec<Received>> {
    let mut out = Vec::new();
    for mut m in messages {
        m.body = clean_text(&m.body);
        if m.body.is_empty() && m.media.is_empty() && m.attachments.is_empty() {
            m.body = "[empty message]".into();
        }
        let r = state.store.receive(inbox, m, time::now()).await?;
        if matches!(r, Received::Stored { .. }) {
            crate::metrics::global().message_created(crate::domain::AuthorType::Contact);
        }
        out.push(r);
    }
    for s in statuses {
        let Some(msg) = state
            .store
            .message_by_provider_id(inbox.id, &s.provider_id)?
        else {
            continue;
        };
        state
            .store
            .set_delivery(
                msg.conversation_id,
                msg.seq,
                Delivery {
                    status: s.status,
                    error: s.error,
                },
                None,
                None,
                time::now(),
            )
            .await?;
    }
    Ok(out)
}

async fn hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    handle(&state, &req, &path.0, &path.1, "", &body).await
}

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
    let inbox = state
        .store
        .inbox(path_id(inbox_id)?)?
        .ok_or(ApiError::NotFound)?;
    let adapter = channels::by_name(&inbox.channel)
        .filter(|a| a.hook() == Some(provider))
        .ok_or(ApiError::NotFound)?;
    if sub == "status" && provider != "twilio" {
        return Err(ApiError::NotFound);
    }
    let query = req.query_string();
    let mut url = format!("{}{}", state.config.base_url, req.path());
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    let parsed = adapter
        .parse_hook(
            &inbox,
            &HookRequest {
                method: req.method().as_str(),
                url,
                query,
                headers: req.headers(),
                body,
                sub,
            },
        )
        .map_err(|e| match e {
            HookError::Unauthorized(why) => {
                tracing::warn!(inbox = inbox.id, provider, "webhook refused: {why}");
                ApiError::Unauthorized("the webhook's signature or secret does not verify")
            }
            HookError::BadRequest(why) => ApiError::Malformed(why),
        })?;
    store_inbound(state, &inbox, parsed.messages, parsed.statuses).await?;
    Ok(match parsed.reply {
        HookReply::Ok => HttpResponse::Ok().json(json!({})),
        HookReply::Body(ct, b) => HttpResponse::Ok().content_type(ct).body(b),
    })
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
pub async fn api_channel_message(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: ApiJson<ApiMessage>,
) -> ApiResult<HttpResponse> {
    // The token is checked before anything else is said about the inbox.
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let inbox = crate::domain::parse_id(&path)
        .and_then(|id| state.store.inbox(id).ok().flatten())
        .filter(|i| i.channel == "api");
    let ok = match (&inbox, given) {
        (Some(i), g) if !g.is_empty() => {
            channels::secret_eq(g, i.api_token.as_deref().unwrap_or(""))
        }
        _ => false,
    };
    let Some(inbox) = inbox.filter(|_| ok) else {
        return Err(ApiError::Unauthorized("this inbox's api_token is required"));
    };
    let b = body.0;
    let source = b.source_id.trim();
    if source.is_empty() || source.len() > 256 {
        return Err(crate::domain::Invalid::new(
            "source_id",
            "source_id must be 1 to 256 characters",
        )
        .into());
    }
    let text = MessageBody::parse(b.body)?.into_inner();
    let name = crate::domain::ContactName::parse(b.name.as_deref())?.map(|n| n.into_inner());
    let email = match b.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(e) => Some(crate::domain::Email::parse(e)?.into_inner()),
    };
    let provider_id = match b.message_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(m) if m.len() > 256 => {
            return Err(crate::domain::Invalid::new(
                "message_id",
                "message_id must be at most 256 characters",
            )
            .into())
        }
        Some(m) => Some(m.to_owned()),
    };
    let r = state
        .store
        .receive(
            &inbox,
            Inbound {
                identity: source.to_owned(),
                name,
                email,
                body: text,
                provider_id,
                ..Inbound::default()
            },
            time::now(),
        )
        .await?;
    Ok(match r {
        Received::Stored {
            message,
            conversation,
        } => {
            crate::metrics::global().message_created(crate::domain::AuthorType::Contact);
            let mut v = views::message(&message);
            v["contact_id"] = json!(crate::domain::format_id(conversation.contact_id));
            HttpResponse::Created().json(v)
        }
        // A retry of a message already stored: the message as it is.
        Received::Duplicate { message } => match message {
            Some(m) => HttpResponse::Ok().json(views::message(&m)),
            None => HttpResponse::Ok().json(json!({})),
        },
    })
}
