//! `/api/v1`: the JSON API of the contract, one module per audience or
//! resource.

pub mod agents;
pub mod auth;
pub mod backups;
pub mod contacts;
pub mod conversations;
pub mod customer;
pub mod inboxes;
pub mod push;
pub mod teams;
pub mod webhooks;

use crate::domain::ids::AgentId;
use actix_web::web;
use serde::{Deserialize, Deserializer};

use super::events;

/// Registers the API routes under `/api/v1`.
///
/// Routes with a `{param}` are grouped in a scope per first segment:
/// actix-router tries a dynamic route with a regex, one route after
/// another, so a flat table made every message post run some 30 regexes
/// before its own (about 8% of the server's CPU under ingest, `perf`),
/// where a scope is a plain prefix test. Static paths are plain string
/// tests and stay flat, before the scope of the same prefix.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(auth::login))
        .route("/auth/logout", web::post().to(auth::logout))
        .route("/auth/forgot", web::post().to(agents::forgot))
        .route("/me", web::get().to(auth::me))
        .route("/me/password", web::post().to(auth::change_password))
        .route("/me/availability", web::put().to(auth::set_availability))
        .route("/search", web::get().to(conversations::search))
        .route("/events", web::get().to(events::agent_events))
        .route("/push/key", web::get().to(push::key))
        .route("/push/subscriptions", web::get().to(push::list))
        .route("/push/subscriptions", web::post().to(push::subscribe))
        .route("/push/subscriptions", web::delete().to(push::unsubscribe))
        .route("/conversations", web::get().to(conversations::list))
        .service(
            web::scope("/conversations")
                .route("/{id}", web::get().to(conversations::get))
                .route("/{id}", web::patch().to(conversations::patch))
                .route("/{id}/messages", web::get().to(conversations::messages))
                .route(
                    "/{id}/messages",
                    web::post().to(conversations::post_message),
                )
                .route("/{id}/typing", web::post().to(conversations::typing))
                .route("/{id}/read", web::post().to(conversations::read))
                .route(
                    "/{id}/messages/{seq}/retry",
                    web::post().to(conversations::retry_delivery),
                ),
        )
        .route("/customer/me", web::get().to(customer::me))
        .route("/customer/conversations", web::get().to(customer::list))
        .route("/customer/conversations", web::post().to(customer::create))
        .route(
            "/customer/resume-links",
            web::post().to(customer::create_resume_link),
        )
        .route("/customer/search", web::get().to(customer::search))
        .route("/customer/events", web::get().to(events::customer_events))
        .service(
            web::scope("/customer/conversations")
                .route("/{id}", web::get().to(customer::get))
                .route("/{id}/messages", web::get().to(customer::messages))
                .route("/{id}/messages", web::post().to(customer::post_message))
                .route("/{id}/typing", web::post().to(customer::typing))
                .route("/{id}/read", web::post().to(customer::read))
                .route("/{id}/rating", web::post().to(customer::rate)),
        )
        .service(
            web::scope("/widget")
                .route("/{widget_key}", web::get().to(customer::widget_info))
                .route(
                    "/{widget_key}/contacts",
                    web::post().to(customer::create_contact),
                )
                .route(
                    "/{widget_key}/resume",
                    web::post().to(customer::redeem_resume_link),
                ),
        )
        .route("/agents", web::get().to(agents::list))
        .route("/agents", web::post().to(agents::create))
        .service(
            web::scope("/agents")
                .route("/{id}", web::get().to(agents::get))
                .route("/{id}", web::patch().to(agents::update))
                .route("/{id}/password-link", web::post().to(agents::password_link)),
        )
        .route("/inboxes", web::get().to(inboxes::list))
        .route("/inboxes", web::post().to(inboxes::create))
        .service(
            web::scope("/inboxes")
                .route("/{id}", web::get().to(inboxes::get))
                .route("/{id}", web::patch().to(inboxes::update))
                .route("/{id}/test", web::post().to(inboxes::test_connection))
                .route("/{id}/members", web::get().to(inboxes::members))
                .route("/{id}/members", web::post().to(inboxes::add_member))
                .route(
                    "/{id}/members/{agent_id}",
                    web::delete().to(inboxes::remove_member),
                ),
        )
        .route("/teams", web::get().to(teams::list))
        .route("/teams", web::post().to(teams::create))
        .service(
            web::scope("/teams")
                .route("/{id}", web::get().to(teams::get))
                .route("/{id}", web::patch().to(teams::update))
                .route("/{id}", web::delete().to(teams::delete)),
        )
        .route("/admin/backups", web::get().to(backups::list))
        .route("/admin/backups", web::post().to(backups::create))
        .service(
            web::scope("/admin/backups")
                .route("/{name}", web::get().to(backups::download))
                .route("/{name}", web::delete().to(backups::delete)),
        )
        .route("/webhooks", web::get().to(webhooks::list))
        .route("/webhooks", web::post().to(webhooks::create))
        .service(
            web::scope("/webhooks")
                .route("/{id}", web::delete().to(webhooks::delete))
                .route("/{id}/deliveries", web::get().to(webhooks::deliveries))
                .route(
                    "/{id}/deliveries/{event_id}/retry",
                    web::post().to(webhooks::retry),
                ),
        )
        .service(
            web::scope("/contacts")
                .route("/{id}", web::get().to(contacts::get))
                .route("/{id}", web::delete().to(customer::delete_contact))
                .route("/{id}/merge", web::post().to(contacts::merge)),
        )
        .route(
            "/channels/api/{inbox_id}/messages",
            web::post().to(crate::web::hooks::api_channel_message),
        );
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

/// `?q=&limit=&cursor=` and the agents' filters of the search routes.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    /// The text to find.
    pub q: Option<String>,
    /// Page size (default 20, at most 100).
    pub limit: Option<String>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Only this inbox.
    pub inbox: Option<String>,
    /// Only this conversation status.
    pub status: Option<String>,
    /// `me`, `unassigned` or an agent id.
    pub assignee: Option<String>,
    /// Only this label.
    pub label: Option<String>,
    /// Only this contact.
    pub contact: Option<String>,
    /// `contact`, `agent` or `system`.
    pub author: Option<String>,
    /// Messages at or after this time (RFC 3339 or YYYY-MM-DD).
    pub from: Option<String>,
    /// Messages before this time (RFC 3339 or YYYY-MM-DD).
    pub to: Option<String>,
}

fn parse_day_or_time(s: &str, field: &'static str) -> Result<i64, crate::domain::Invalid> {
    crate::domain::time::parse_rfc3339(s)
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_micros())
        })
        .ok_or_else(|| {
            crate::domain::Invalid::new(
                field,
                format!("{field} must be a date (YYYY-MM-DD) or an RFC 3339 time"),
            )
        })
}

impl SearchQuery {
    /// Checks the query and page size.
    pub fn checked(&self) -> Result<(String, usize), crate::domain::Invalid> {
        use crate::domain::Invalid;
        let q = crate::service::search::required_search_text(self.q.as_deref())?;
        let limit = match self.limit.as_deref() {
            None => 20,
            Some(s) => match s.parse::<usize>() {
                Ok(0) | Err(_) => {
                    return Err(Invalid::new("limit", "limit must be a positive integer"))
                }
                Ok(n) => n.min(100),
            },
        };
        if let Some(c) = self.cursor.as_deref() {
            if c.parse::<usize>().is_err() {
                return Err(Invalid::new("cursor", "cursor is not one we handed out"));
            }
        }
        Ok((q, limit))
    }

    /// The agents' filters.
    pub fn filter(
        &self,
        me: AgentId,
    ) -> Result<crate::service::index::SearchFilter, crate::domain::Invalid> {
        use crate::domain::{parse_id, AuthorType, ConversationStatus, Invalid, Label};
        fn id<I: crate::domain::ids::Id>(
            v: &Option<String>,
            field: &'static str,
        ) -> Result<Option<I>, Invalid> {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    parse_id(s).ok_or_else(|| Invalid::new(field, format!("{field} must be an id")))
                })
                .transpose()
        }
        Ok(crate::service::index::SearchFilter {
            inbox: id(&self.inbox, "inbox")?,
            status: self
                .status
                .as_deref()
                .filter(|s| !s.is_empty() && *s != "all")
                .map(ConversationStatus::parse)
                .transpose()?,
            assignee: match self.assignee.as_deref() {
                None | Some("") => None,
                Some("me") => Some(Some(me)),
                Some("unassigned") => Some(None),
                Some(s) => Some(Some(parse_id(s).ok_or_else(|| {
                    Invalid::new("assignee", "assignee must be me, unassigned or an agent id")
                })?)),
            },
            label: self
                .label
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(Label::parse)
                .transpose()?
                .map(Label::into_inner),
            contact: id(&self.contact, "contact")?,
            author: match self.author.as_deref() {
                None | Some("") => None,
                Some("contact") => Some(AuthorType::Contact),
                Some("agent") => Some(AuthorType::Agent),
                Some("system") => Some(AuthorType::System),
                Some(_) => {
                    return Err(Invalid::new(
                        "author",
                        "author must be contact, agent or system",
                    ))
                }
            },
            from: self
                .from
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| parse_day_or_time(s, "from"))
                .transpose()?,
            to: self
                .to
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| parse_day_or_time(s, "to"))
                .transpose()?,
        })
    }
}
/// JSON of a search page: snippets as plain text with the matches'
/// character ranges.
pub fn search_results(
    hits: crate::service::index::Hits,
    audience: crate::contract::Audience,
) -> crate::contract::SearchResults {
    use crate::contract::{SearchResult, SearchResults};
    SearchResults {
        results: hits
            .hits
            .iter()
            .map(|h| SearchResult::of(&h.message, &h.snippet, &h.highlights, audience))
            .collect(),
        next_cursor: hits.next_cursor,
    }
}
