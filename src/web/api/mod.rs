//! `/api/v1`: the JSON API of the contract, one module per audience or
//! resource.

pub mod agents;
pub mod auth;
pub mod conversations;
pub mod customer;
pub mod inboxes;

use actix_web::web;
use serde::{Deserialize, Deserializer};

use super::events;

/// Registers the API routes under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(auth::login))
        .route("/auth/logout", web::post().to(auth::logout))
        .route("/me", web::get().to(auth::me))
        .route("/me/password", web::post().to(auth::change_password))
        .route("/agents", web::get().to(agents::list))
        .route("/agents", web::post().to(agents::create))
        .route("/agents/{id}", web::get().to(agents::get))
        .route("/agents/{id}", web::patch().to(agents::update))
        .route("/inboxes", web::get().to(inboxes::list))
        .route("/inboxes", web::post().to(inboxes::create))
        .route("/inboxes/{id}", web::get().to(inboxes::get))
        .route("/inboxes/{id}/members", web::get().to(inboxes::members))
        .route("/inboxes/{id}/members", web::post().to(inboxes::add_member))
        .route(
            "/inboxes/{id}/members/{agent_id}",
            web::delete().to(inboxes::remove_member),
        )
        .route("/conversations", web::get().to(conversations::list))
        .route("/conversations/{id}", web::get().to(conversations::get))
        .route("/conversations/{id}", web::patch().to(conversations::patch))
        .route(
            "/conversations/{id}/messages",
            web::get().to(conversations::messages),
        )
        .route(
            "/conversations/{id}/messages",
            web::post().to(conversations::post_message),
        )
        .route(
            "/conversations/{id}/typing",
            web::post().to(conversations::typing),
        )
        .route(
            "/conversations/{id}/read",
            web::post().to(conversations::read),
        )
        .route("/search", web::get().to(conversations::search))
        .route("/events", web::get().to(events::agent_events))
        .route("/widget/{widget_key}", web::get().to(customer::widget_info))
        .route(
            "/widget/{widget_key}/contacts",
            web::post().to(customer::create_contact),
        )
        .route(
            "/widget/{widget_key}/resume",
            web::post().to(customer::redeem_resume_link),
        )
        .route("/customer/me", web::get().to(customer::me))
        .route("/customer/conversations", web::get().to(customer::list))
        .route("/customer/conversations", web::post().to(customer::create))
        .route("/customer/conversations/{id}", web::get().to(customer::get))
        .route(
            "/customer/conversations/{id}/messages",
            web::get().to(customer::messages),
        )
        .route(
            "/customer/conversations/{id}/messages",
            web::post().to(customer::post_message),
        )
        .route(
            "/customer/conversations/{id}/typing",
            web::post().to(customer::typing),
        )
        .route(
            "/customer/conversations/{id}/read",
            web::post().to(customer::read),
        )
        .route(
            "/customer/resume-links",
            web::post().to(customer::create_resume_link),
        )
        .route("/customer/search", web::get().to(customer::search))
        .route("/customer/events", web::get().to(events::customer_events));
}

/// Distinguishes a missing field (`None`) from an explicit `null`
/// (`Some(None)`), which PATCH needs to tell "leave" from "clear".
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Paging parameters shared by the message routes, as strings so that a
/// bad number gets our 422 rather than a generic error.
#[derive(Debug, Deserialize, Default)]
pub struct MessageQuery {
    /// Only seqs after this.
    pub after: Option<String>,
    /// Only seqs before this.
    pub before: Option<String>,
    /// Page size (default 50, capped at 500).
    pub limit: Option<String>,
}

impl MessageQuery {
    /// Checks the numbers.
    pub fn page(
        &self,
        include_private: bool,
    ) -> Result<crate::store::MessagePage, crate::domain::Invalid> {
        use crate::domain::Invalid;
        let num = |v: &Option<String>, field: &'static str| -> Result<Option<u64>, Invalid> {
            v.as_deref()
                .map(|s| {
                    s.parse::<u64>().map_err(|_| {
                        Invalid::new(field, format!("{field} must be a non-negative integer"))
                    })
                })
                .transpose()
        };
        let limit = match num(&self.limit, "limit")? {
            None => 50,
            Some(0) => return Err(Invalid::new("limit", "limit must be at least 1")),
            Some(n) => n.min(500) as usize,
        };
        Ok(crate::store::MessagePage {
            after: num(&self.after, "after")?,
            before: num(&self.before, "before")?,
            limit,
            include_private,
        })
    }
}

/// `?q=&limit=&cursor=` of the search routes.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    /// The text to find.
    pub q: Option<String>,
    /// Page size (default 20, at most 100).
    pub limit: Option<String>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

impl SearchQuery {
    /// Checks the query and page size.
    pub fn checked(&self) -> Result<(String, usize), crate::domain::Invalid> {
        use crate::domain::Invalid;
        let q = self.q.as_deref().map(str::trim).unwrap_or_default();
        if q.is_empty() {
            return Err(Invalid::new("q", "q must not be empty"));
        }
        if q.chars().count() > 200 {
            return Err(Invalid::new("q", "q must be at most 200 characters"));
        }
        let limit = match self.limit.as_deref() {
            None => 20,
            Some(s) => match s.parse::<usize>() {
                Ok(0) | Err(_) => {
                    return Err(Invalid::new("limit", "limit must be a positive integer"))
                }
                Ok(n) => n.min(100),
            },
        };
        Ok((q.to_owned(), limit))
    }
}

/// JSON of a search page.
pub fn search_results(hits: crate::service::search::Hits) -> serde_json::Value {
    use crate::domain::format_id;
    serde_json::json!({
        "results": hits.hits.iter().map(|h| serde_json::json!({
            "conversation_id": format_id(h.message.conversation_id),
            "message_id": format_id(h.message.id),
            "seq": h.message.seq,
            "snippet": h.snippet,
            "created_at": crate::domain::time::rfc3339(h.message.created_at),
        })).collect::<Vec<_>>(),
        "next_cursor": hits.next_cursor,
    })
}
