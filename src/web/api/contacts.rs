//! Contacts as agents see them: one person with channel addresses, and
//! merging two contacts into one.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::contract::MergedContact;
use crate::domain::{format_id, parse_id};
use crate::error::ApiResult;
use crate::web::extract::{path_id, AgentAuth, ApiJson};
use crate::web::AppState;
/// One contact with its addresses and conversations, as far as they are
/// in inboxes the agent reaches: a person known in several inboxes shows
/// nothing of the others (their conversations hold notes).
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, contact = %path))]
pub async fn get(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let card = state.svc.contact_card(&auth.agent, path_id(&path)?)?;
    Ok(HttpResponse::Ok().json(card))
}

/// `POST /contacts/{id}/merge` body.
#[derive(Deserialize)]
pub struct MergeBody {
    into: String,
}

/// Merges the contact into `into`: one person, all conversations and
/// channel addresses. The agent must see both.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, contact = %path))]
pub async fn merge(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<MergeBody>,
) -> ApiResult<HttpResponse> {
    let from = path_id(&path)?;
    let into = parse_id(&body.0.into);
    let merged = state.svc.merge_contacts(&auth.agent, from, into).await?;
    Ok(HttpResponse::Ok().json(MergedContact {
        contact: state.svc.contact_as_seen_by(&auth.agent, &merged)?,
        merged: format_id(from),
    }))
}
