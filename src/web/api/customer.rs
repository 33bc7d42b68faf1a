//! The customer side: contacts created by the widget, their own
//! conversations (never notes), typing, read receipts, resume links and
//! search over their own history. The rules are the contact's use cases
//! in [`crate::service::customer`]; these handlers parse, call and render.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{search_results, MessageQuery, SearchQuery};
use crate::contract as views;
use crate::domain::time::rfc3339;
use crate::domain::{format_id, ContactName};
use crate::error::{ApiError, ApiResult};
use crate::service::customer::{optional_email, ClaimedIdentity, ContactDetails};
use crate::store::ContactRecord;
use crate::web::extract::{path_id, ApiJson, ClientIp, ContactAuth};
use crate::web::upload::{prepare, MessageUpload, Uploader};
use crate::web::AppState;

/// `POST /widget/{key}/contacts` body.
#[derive(Deserialize)]
pub struct ContactBody {
    name: Option<String>,
    email: Option<String>,
    external_id: Option<String>,
    identifier_hash: Option<String>,
}

/// The answer to a new contact token: the contact and its token.
fn contact_created(contact: &ContactRecord, token: &str) -> HttpResponse {
    HttpResponse::Created().json(json!({"contact_id": format_id(contact.id), "token": token}))
}

/// Creates a contact, or with a verified `external_id` returns the
/// contact that id always maps to (one person, every device).
#[tracing::instrument(skip_all, fields(ip = %ip.0))]
pub async fn create_contact(
    state: web::Data<AppState>,
    ip: ClientIp,
    path: web::Path<String>,
    body: ApiJson<ContactBody>,
) -> ApiResult<HttpResponse> {
    let inbox = state.svc.widget_inbox(&path)?;
    state.svc.allow_new_contact(ip.0)?;
    let ApiJson(b) = body;
    let details = ContactDetails {
        name: ContactName::parse(b.name.as_deref())?,
        email: optional_email(b.email.as_deref())?,
        identity: b.external_id.map(|external_id| ClaimedIdentity {
            external_id,
            identifier_hash: b.identifier_hash.unwrap_or_default(),
        }),
    };
    let (contact, token) = state.svc.create_contact(&inbox, details).await?;
    Ok(contact_created(&contact, &token))
}

/// What the widget needs before anyone writes: name, greeting, colour.
/// Public (the widget key is public) and readable from any site.
#[tracing::instrument(skip_all)]
pub async fn widget_info(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let inbox = state.svc.widget_inbox(&path)?;
    let expect = state.svc.expectations(&inbox)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(json!({
            "name": inbox.name,
            "greeting": inbox.greeting,
            "reply_time": expect.reply_time,
            "reply_time_seconds": expect.reply_secs,
            "open_now": expect.open_now,
            "next_open_at": expect.next_open_at.map(crate::domain::time::rfc3339),
            "accent_color": inbox.accent_color,
        })))
}

/// The contact behind the token.
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id))]
pub async fn me(auth: ContactAuth) -> HttpResponse {
    HttpResponse::Ok().json(views::Contact::of(&auth.contact))
}

/// A contact's uploads count against its quota and its address's.
fn uploader(auth: &ContactAuth, ip: &ClientIp) -> Uploader {
    Uploader {
        contact: Some(auth.contact.id),
        address: Some(ip.0),
    }
}

/// The contact's conversations, newest activity first.
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id))]
pub async fn list(state: web::Data<AppState>, auth: ContactAuth) -> ApiResult<HttpResponse> {
    let out = state
        .svc
        .own_conversations(&auth.contact)?
        .iter()
        .map(|c| state.svc.as_its_contact_sees(c, &auth.contact))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(json!({ "conversations": out })))
}

/// Starts a conversation with its first message.
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id))]
pub async fn create(
    state: web::Data<AppState>,
    auth: ContactAuth,
    ip: ClientIp,
    upload: MessageUpload,
) -> ApiResult<HttpResponse> {
    state.svc.allow_contact_message(&auth.contact)?;
    let input = upload.read(&state, uploader(&auth, &ip)).await?;
    let prepared = prepare(input.body, input.files).await?;
    let first = prepared;
    let (conv, msg) = state
        .svc
        .start_conversation(auth.inbox_id, &auth.contact, first)
        .await?;
    Ok(HttpResponse::Created().json(json!({
        "conversation": state.svc.as_its_contact_sees(&conv, &auth.contact)?,
        "message": views::Message::for_contact(&msg),
    })))
}

/// One of the contact's conversations.
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id, conversation = %path))]
pub async fn get(
    state: web::Data<AppState>,
    auth: ContactAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let c = state.svc.own_conversation(&auth.contact, path_id(&path)?)?;
    Ok(HttpResponse::Ok().json(state.svc.as_its_contact_sees(&c, &auth.contact)?))
}

/// Messages the contact may see (no notes).
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id, conversation = %path))]
pub async fn messages(
    state: web::Data<AppState>,
    auth: ContactAuth,
    path: web::Path<String>,
    q: web::Query<MessageQuery>,
) -> ApiResult<HttpResponse> {
    let c = state.svc.own_conversation(&auth.contact, path_id(&path)?)?;
    let msgs = state.svc.own_messages(&c, q.page(false)?)?;
    Ok(HttpResponse::Ok().json(
        json!({"messages": msgs.iter().map(views::Message::for_contact).collect::<Vec<_>>()}),
    ))
}

/// A new message from the contact; reopens the conversation if needed.
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id, conversation = %path))]
pub async fn post_message(
    state: web::Data<AppState>,
    auth: ContactAuth,
    ip: ClientIp,
    path: web::Path<String>,
    upload: MessageUpload,
) -> ApiResult<HttpResponse> {
    let c = state.svc.own_conversation(&auth.contact, path_id(&path)?)?;
    state.svc.allow_contact_message(&auth.contact)?;
    let input = upload.read(&state, uploader(&auth, &ip)).await?;
    let prepared = prepare(input.body, input.files).await?;
    let m = prepared;
    let msg = state.svc.post_own_message(&auth.contact, &c, m).await?;
    Ok(HttpResponse::Created().json(views::Message::for_contact(&msg)))
}

/// `POST .../typing` body.
#[derive(Deserialize)]
pub struct TypingBody {
    typing: bool,
}

/// Tells the team the contact is typing.
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id, conversation = %path))]
pub async fn typing(
    state: web::Data<AppState>,
    auth: ContactAuth,
    path: web::Path<String>,
    body: ApiJson<TypingBody>,
) -> ApiResult<HttpResponse> {
    let c = state.svc.own_conversation(&auth.contact, path_id(&path)?)?;
    state.svc.contact_typing(&auth.contact, &c, body.0.typing);
    Ok(HttpResponse::NoContent().finish())
}

/// `POST .../read` body.
#[derive(Deserialize)]
pub struct ReadBody {
    /// In the contact's numbering (an ordinal among public messages).
    seq: u64,
}

/// The contact has read up to `seq`, its own numbering: natter records the
/// real seq of that public message (agents then show "Seen").
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id, conversation = %path))]
pub async fn read(
    state: web::Data<AppState>,
    auth: ContactAuth,
    path: web::Path<String>,
    body: ApiJson<ReadBody>,
) -> ApiResult<HttpResponse> {
    let c = state.svc.own_conversation(&auth.contact, path_id(&path)?)?;
    state
        .svc
        .contact_read(&auth.contact, &c, body.0.seq)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A single-use link, valid for 15 minutes, that continues this contact on
/// another device.
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id, ip = %ip.0))]
pub async fn create_resume_link(
    state: web::Data<AppState>,
    auth: ContactAuth,
    ip: ClientIp,
) -> ApiResult<HttpResponse> {
    let link = state
        .svc
        .create_resume_link(&auth.contact, auth.inbox_id, ip.0)
        .await?;
    Ok(HttpResponse::Created()
        .json(json!({"url": link.url, "expires_at": rfc3339(link.expires_at)})))
}

/// `POST /widget/{key}/resume` body.
#[derive(Deserialize)]
pub struct RedeemBody {
    token: String,
}

/// Uses a resume link: a new token for the same contact, once.
#[tracing::instrument(skip_all, fields(ip = %ip.0))]
pub async fn redeem_resume_link(
    state: web::Data<AppState>,
    ip: ClientIp,
    path: web::Path<String>,
    body: ApiJson<RedeemBody>,
) -> ApiResult<HttpResponse> {
    let inbox = state.svc.widget_inbox(&path)?;
    let (contact, token) = state
        .svc
        .redeem_resume_link(&inbox, ip.0, &body.0.token)
        .await?
        .ok_or(ApiError::Unauthorized(
            "this link has expired or was already used",
        ))?;
    Ok(contact_created(&contact, &token))
}

/// Search over the contact's own messages (never notes).
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id))]
pub async fn search(
    state: web::Data<AppState>,
    auth: ContactAuth,
    q: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let (text, limit) = q.checked()?;
    let hits = state
        .svc
        .search_own_messages(&auth.contact, text, limit, q.cursor.clone())
        .await?;
    Ok(HttpResponse::Ok().json(search_results(hits, views::Audience::Contact)))
}

/// `DELETE /api/v1/contacts/{id}` (admins): erases a contact and all its
/// conversations, messages, files and search entries.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, contact = %path))]
pub async fn delete_contact(
    state: web::Data<AppState>,
    auth: crate::web::extract::AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    // Before the id is read: a non-admin learns nothing about ids.
    auth.require_admin()?;
    state
        .svc
        .delete_contact(&auth.agent, path_id(&path)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /customer/conversations/{id}/rating` body.
#[derive(Deserialize)]
pub struct RatingBody {
    score: i64,
    comment: Option<String>,
}

/// The contact rates the latest resolution of its conversation: 201 with
/// the rating, 409 for a second rating of the same resolution.
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id, conversation = %path))]
pub async fn rate(
    state: web::Data<AppState>,
    auth: ContactAuth,
    path: web::Path<String>,
    body: ApiJson<RatingBody>,
) -> ApiResult<HttpResponse> {
    let c = state.svc.own_conversation(&auth.contact, path_id(&path)?)?;
    let b = body.0;
    let rated = state
        .svc
        .rate_own(
            &auth.contact,
            &c,
            crate::service::ratings::RatingInput {
                score: b.score,
                comment: b.comment,
            },
        )
        .await?;
    let conversation = state.svc.as_its_contact_sees(&rated, &auth.contact)?;
    Ok(HttpResponse::Created().json(json!({
        "rating": conversation.rating,
        "conversation": conversation,
    })))
}
