//! Contacts as agents see them: one person with channel addresses, and
//! merging two contacts into one.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::contract as views;
use crate::domain::{format_id, parse_id, time, Invalid};
use crate::error::{ApiError, ApiResult};
use crate::service::access::InboxScope;
use crate::store::ContactRecord;
use crate::web::extract::{path_id, AgentAuth, ApiJson};
use crate::web::AppState;

/// The contact if it is known in an inbox the agent reaches (404
/// otherwise, like a contact that does not exist).
pub fn visible_contact(state: &AppState, auth: &AgentAuth, id: u64) -> ApiResult<ContactRecord> {
    let c = state.store.contact(id)?.ok_or(ApiError::NotFound)?;
    let scope = InboxScope::of(&state.store, &auth.agent)?;
    if scope.sees_contact(&state.store, &c)? {
        Ok(c)
    } else {
        Err(ApiError::NotFound)
    }
}

/// One contact with its addresses and conversations, as far as they are
/// in inboxes the agent reaches: a person known in several inboxes shows
/// nothing of the others (their conversations hold notes).
pub async fn get(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let c = visible_contact(&state, &auth, path_id(&path)?)?;
    let scope = InboxScope::of(&state.store, &auth.agent)?;
    let mut v = views::contact_within(&c, |i| scope.sees(i));
    let mut convs = Vec::new();
    for conv in state.store.contact_conversations(c.id)? {
        if scope.sees(conv.inbox_id) {
            convs.push(views::conversation(&conv, Some(&c)));
        }
    }
    v["conversations"] = json!(convs);
    Ok(HttpResponse::Ok().json(v))
}

/// `POST /contacts/{id}/merge` body.
#[derive(Deserialize)]
pub struct MergeBody {
    into: String,
}

/// Merges the contact into `into`: one person, all conversations and
/// channel addresses. The agent must see both.
pub async fn merge(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<MergeBody>,
) -> ApiResult<HttpResponse> {
    let from = visible_contact(&state, &auth, path_id(&path)?)?;
    let into_id = parse_id(&body.0.into).ok_or_else(|| Invalid::new("into", "no such contact"))?;
    let into = visible_contact(&state, &auth, into_id)
        .map_err(|_| ApiError::from(Invalid::new("into", "no such contact")))?;
    let merged = state
        .store
        .merge_contacts(from.id, into.id, time::now())
        .await?;
    tracing::info!(
        from = from.id,
        into = into.id,
        by = auth.agent.id,
        "contacts merged"
    );
    let mut v = {
        let scope = InboxScope::of(&state.store, &auth.agent)?;
        views::contact_within(&merged, |i| scope.sees(i))
    };
    v["merged"] = json!(format_id(from.id));
    Ok(HttpResponse::Ok().json(v))
}
