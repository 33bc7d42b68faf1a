//! The agent workspace: server-rendered pages (askama) updated live with
//! htmx and its SSE extension. Handlers here are thin: they read the
//! session, build view models (`view.rs`) and render templates; live
//! updates are rendered by `live.rs` from the same partials.

pub mod linkify;
pub mod live;
pub mod password;
pub mod settings;
pub mod view;

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use self::view::{Filter, Link, Names, RowView};
use super::session::{
    cleared_cookie, safe_next, session_agent, session_cookie, PageAgent, PageError,
};
use super::AppState;
use crate::domain::ids::ContactId;
use crate::domain::time::{self, parse_rfc3339};
use crate::domain::{format_id, parse_id, ConversationStatus, Label};
use crate::error::ApiError;
use crate::service::conversations::{parse_assignee, ConversationChange};
use crate::service::sessions::CredentialKind;
use crate::store::{CannedRecord, ConversationRecord};

/// Registers the page routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login_submit))
        .route("/logout", web::post().to(logout))
        .route("/inbox", web::get().to(inbox))
        .route("/conversations/{id}", web::get().to(conversation))
        .route("/search", web::get().to(search))
        .route("/ui/events", web::get().to(live::events))
        .route("/ui/conversations/{id}/messages", web::post().to(send))
        .route("/ui/conversations/{id}/update", web::post().to(update))
        .route("/ui/conversations/{id}/read", web::post().to(read))
        .route("/ui/conversations/{id}/typing", web::post().to(typing))
        .route(
            "/ui/conversations/{id}/messages/{seq}/retry",
            web::post().to(retry_delivery),
        )
        .route("/ui/contacts/{id}/merge", web::post().to(merge_contact))
        .route("/ui/profile/timezone", web::post().to(browser_timezone))
        .route("/ui/profile/availability", web::post().to(set_availability))
        .route("/ui/bulk", web::post().to(bulk))
        .configure(settings::routes)
        .configure(password::routes);
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn render<T: Template>(t: &T) -> Result<String, PageError> {
    t.render().map_err(|e| {
        tracing::error!(error = %e, "template failed");
        PageError::Api(ApiError::Internal)
    })
}

async fn home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/inbox"))
        .finish()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    email: String,
    error: Option<String>,
    /// The form token, also in the `natter_login` cookie (login CSRF).
    csrf: String,
}

/// `?next=` of the sign-in page.
#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn login_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<NextQuery>,
) -> Result<HttpResponse, PageError> {
    let next = safe_next(q.next.as_deref());
    if session_agent(&state, &req)?.is_some() {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, next))
            .finish());
    }
    let secure = state.config.base_url.starts_with("https://");
    let (csrf, cookie) = super::session::LOGIN_FORM.issue(secure);
    let mut res = html(render(&LoginPage {
        next,
        email: String::new(),
        error: None,
        csrf,
    })?);
    res.add_cookie(&cookie).map_err(|_| ApiError::Internal)?;
    Ok(res)
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
    csrf: Option<String>,
}

#[tracing::instrument(skip_all, fields(ip = %ip.0))]
async fn login_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    ip: super::extract::ClientIp,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.into_inner();
    let next = safe_next(f.next.as_deref());
    let email = f.email.trim().to_lowercase();
    let secure = state.config.base_url.starts_with("https://");
    // Login CSRF: only the form this browser loaded from us may sign it
    // in, never a hostile page posting an attacker's credentials.
    let genuine = super::session::same_origin(&req, &state.config.base_url)
        && super::session::LOGIN_FORM.ok(&req, f.csrf.as_deref());
    let (csrf, fresh_cookie) = match (genuine, super::session::LOGIN_FORM.token(&req)) {
        (true, Some(t)) => (t, None),
        _ => {
            let (t, c) = super::session::LOGIN_FORM.issue(secure);
            (t, Some(c))
        }
    };
    let again =
        |status: actix_web::http::StatusCode, msg: &str| -> Result<HttpResponse, PageError> {
            let page = LoginPage {
                next: next.clone(),
                email: email.clone(),
                error: Some(msg.to_owned()),
                csrf: csrf.clone(),
            };
            let mut res = HttpResponse::build(status);
            res.content_type("text/html; charset=utf-8");
            if let Some(c) = &fresh_cookie {
                res.cookie(c.clone());
            }
            Ok(res.body(render(&page)?))
        };
    if !genuine {
        return again(
            actix_web::http::StatusCode::FORBIDDEN,
            "This sign-in form has expired or did not come from this site. Please sign in again.",
        );
    }
    let locked = "Too many failed attempts. Wait a few minutes, then try again.";
    let signed_in = match state
        .svc
        .sign_in(&email, f.password, ip.0, CredentialKind::Session)
        .await
    {
        Ok(s) => s,
        Err(ApiError::TooManyRequests(_)) => {
            return again(actix_web::http::StatusCode::TOO_MANY_REQUESTS, locked)
        }
        Err(ApiError::Unauthorized(_)) => {
            return again(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "Wrong email or password.",
            )
        }
        Err(e) => return Err(e.into()),
    };
    let ttl = state.config.token_ttl_secs;
    Ok(HttpResponse::SeeOther()
        .cookie(session_cookie(&signed_in.credential.token, secure, ttl))
        .insert_header((header::LOCATION, next))
        .finish())
}

/// The sign-out form.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

#[tracing::instrument(skip_all, fields(agent = %page.agent.id))]
async fn logout(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    page.check_csrf(&req, form.csrf.as_deref())?;
    state
        .svc
        .sign_out(crate::service::auth::hash_token(&page.session))
        .await?;
    let secure = state.config.base_url.starts_with("https://");
    Ok(HttpResponse::SeeOther()
        .cookie(cleared_cookie(secure))
        .insert_header((header::LOCATION, "/login"))
        .finish())
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    csrf: String,
    agent_id: String,
    agent_name: String,
    admin: bool,
    sound: bool,
    /// What the agent set in the header's availability control.
    availability: &'static str,
    /// The agent's time zone, empty until known (live.js then names the
    /// browser's).
    timezone: String,
    search_q: String,
    views: Vec<Link>,
    /// The list's orders: newest activity, or the longest waiting first.
    sorts: Vec<Link>,
    inbox_links: Vec<Link>,
    label_links: Vec<Link>,
    tabs: Vec<Link>,
    rows: Vec<RowView>,
    open: Option<view::ConvView>,
    events_url: String,
    back_href: String,
    /// Active agents (id, name), for the bulk bar's "Assign".
    team: Vec<(String, String)>,
    /// The agent is in no inbox yet: who can add them (admins' names).
    no_inbox: Option<String>,
    canned: Vec<CannedRecord>,
}

/// Most conversations one list shows.
const LIST_LIMIT: usize = 200;

/// The status tabs of a list, with their counts (Services::status_counts,
/// kept as counters, so rendering them again for a live event is cheap).
pub(super) fn status_tabs(
    svc: &crate::service::Services,
    agent: &crate::store::AgentRecord,
    filter: &Filter,
) -> Result<Vec<Link>, ApiError> {
    let mut tabs = Vec::new();
    for (s, count) in svc.status_counts(agent, &filter.to_list(agent.id, LIST_LIMIT))? {
        let f = filter.with_status(s.as_str());
        let mut label = s.as_str().to_owned();
        label[..1].make_ascii_uppercase();
        tabs.push(Link {
            href: format!("/inbox?{}", f.query()),
            label,
            current: filter.status == s.as_str(),
            count: count_label(count),
        });
    }
    Ok(tabs)
}

fn count_label(n: usize) -> String {
    if n > 999 {
        "999+".to_owned()
    } else {
        n.to_string()
    }
}

fn inbox_page(
    state: &AppState,
    page: &PageAgent,
    q: &HashMap<String, String>,
    open: Option<ConversationRecord>,
) -> Result<InboxPage, PageError> {
    let filter = Filter::from_query(q);
    let svc = &state.svc;
    let visible = svc.visible_inboxes(&page.agent)?;
    let names = Names::from(svc.all_names()?);
    // Read the event position before the list, so the live stream replays
    // anything that happens between this render and its connection.
    let from_event = svc.published_upto();
    let wanted = filter.to_list(page.agent.id, LIST_LIMIT);
    let listed = if filter.sort == "waiting" {
        svc.longest_waiting(&page.agent, &wanted)?
    } else if filter.sort == "priority" {
        svc.by_priority(&page.agent, &wanted)?
    } else {
        svc.list_conversations(&page.agent, &wanted)?.conversations
    };
    let contacts = svc.contacts_of(&listed)?;
    let open_id = open.as_ref().map(|c| c.id);
    let mut rows = Vec::with_capacity(listed.len());
    let mut labels: Vec<String> = Vec::new();
    for (c, contact) in listed.iter().zip(&contacts) {
        rows.push(view::row(
            &names,
            c,
            contact.as_ref(),
            &filter,
            open_id,
            page.agent.id,
        ));
        for l in &c.labels {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
    }
    if let Some(l) = &filter.label {
        if !labels.contains(l) {
            labels.push(l.clone());
        }
    }
    labels.sort();
    let base_view = filter.inbox.is_none() && filter.label.is_none();
    let views = [
        ("mine", "Mine"),
        ("needs-reply", "Needs reply"),
        ("unassigned", "Unassigned"),
        ("all", "All"),
    ]
    .iter()
    .map(|(v, label)| Link {
        href: if *v == "all" {
            "/inbox".to_owned()
        } else {
            format!("/inbox?view={v}")
        },
        label: (*label).to_owned(),
        current: base_view && filter.view == *v,
        count: String::new(),
    })
    .collect();
    let sorts = [
        ("recent", "Newest first"),
        ("waiting", "Waiting longest"),
        ("priority", "Priority"),
    ]
    .iter()
    .map(|(s, label)| {
        let q = Filter {
            sort: (*s).to_owned(),
            ..filter.clone()
        }
        .query();
        Link {
            href: if q.is_empty() {
                "/inbox".to_owned()
            } else {
                format!("/inbox?{q}")
            },
            label: (*label).to_owned(),
            current: filter.sort == *s,
            count: String::new(),
        }
    })
    .collect();
    let inbox_links = visible
        .iter()
        .map(|i| Link {
            href: format!("/inbox?inbox={}", i.id),
            label: i.name.clone(),
            current: filter.inbox == Some(i.id),
            count: String::new(),
        })
        .collect();
    let label_links = labels
        .iter()
        .map(|l| Link {
            href: format!("/inbox?label={}", super::session::url_escape(l)),
            label: l.clone(),
            current: filter.label.as_deref() == Some(l),
            count: String::new(),
        })
        .collect();
    let tabs = status_tabs(svc, &page.agent, &filter)?;
    let mut events_url = format!("/ui/events?last_event_id={from_event}");
    let fq = filter.query();
    if !fq.is_empty() {
        events_url.push('&');
        events_url.push_str(&fq);
    }
    if let Some(id) = open_id {
        events_url.push_str(&format!("&conversation={id}"));
    }
    let open_view = match &open {
        Some(c) => Some(view::conversation(
            &svc.thread(&page.agent, c, true)?,
            &names,
            c,
            &page.agent,
        )),
        None => None,
    };
    // The team, read once: the bulk bar's assignees and, for an agent in no
    // inbox, the admins who can add them.
    let active: Vec<_> = svc.agents()?.into_iter().filter(|a| a.active).collect();
    Ok(InboxPage {
        csrf: page.csrf(),
        agent_id: format_id(page.agent.id),
        agent_name: page.agent.name.clone(),
        availability: page.agent.availability.as_str(),
        admin: page.is_admin(),
        sound: page.agent.notify_sound,
        timezone: page.agent.timezone.clone().unwrap_or_default(),
        search_q: String::new(),
        views,
        sorts,
        inbox_links,
        label_links,
        tabs,
        rows,
        open: open_view,
        events_url,
        team: active
            .iter()
            .map(|a| {
                (
                    format_id(a.id),
                    view::name_and_availability(&a.name, svc.availability_of(a)),
                )
            })
            .collect(),
        no_inbox: if visible.is_empty() {
            let admins: Vec<String> = active
                .iter()
                .filter(|a| a.role == crate::domain::Role::Admin)
                .map(|a| a.name.clone())
                .collect();
            Some(if admins.is_empty() {
                "an admin".to_owned()
            } else {
                admins.join(", ")
            })
        } else {
            None
        },
        back_href: if fq.is_empty() {
            "/inbox".to_owned()
        } else {
            format!("/inbox?{fq}")
        },
        canned: if open.is_some() {
            svc.canned_for_composer()?
        } else {
            Vec::new()
        },
    })
}

#[tracing::instrument(skip_all, fields(agent = %page.agent.id))]
async fn inbox(
    state: web::Data<AppState>,
    page: PageAgent,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let p = inbox_page(&state, &page, &q, None)?;
    Ok(html(render(&p)?))
}

/// The conversation if the agent may see it; 404 otherwise.
pub fn visible_conversation(
    state: &AppState,
    page: &PageAgent,
    id: &str,
) -> Result<ConversationRecord, PageError> {
    let id = parse_id(id).ok_or(ApiError::NotFound)?;
    Ok(state.svc.visible_conversation(&page.agent, id)?)
}

#[tracing::instrument(skip_all, fields(agent = %page.agent.id, conversation = %path))]
async fn conversation(
    state: web::Data<AppState>,
    page: PageAgent,
    path: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let c = visible_conversation(&state, &page, &path)?;
    let p = inbox_page(&state, &page, &q, Some(c))?;
    Ok(html(render(&p)?))
}

#[tracing::instrument(skip_all, fields(agent = %page.agent.id, conversation = %path))]
async fn send(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    upload: crate::web::upload::MessageUpload,
) -> Result<HttpResponse, PageError> {
    // The workspace sends the token as a header: checked before the body is
    // read. A plain form carries it in the body (its files are removed if
    // it is wrong).
    if req.headers().contains_key(crate::web::session::CSRF_HEADER) {
        page.check_csrf(&req, None)?;
    }
    let c = visible_conversation(&state, &page, &path)?;
    let input = upload
        .read(&state, crate::web::upload::Uploader::agent())
        .await?;
    page.check_csrf(&req, input.csrf.as_deref())?;
    let msg = state
        .svc
        .agent_post(&page.agent, c.id, input.into())
        .await?;
    // The same fragment the live stream sends: whichever arrives first
    // wins, the other replaces it in place.
    let prev = state.svc.message_before(c.id, msg.seq)?;
    let mut v = view::message(&msg, prev.as_ref());
    let channel = state.svc.message_channel(c.id, msg.via)?;
    v.channel = view::ChannelTag::of(
        channel
            .as_deref()
            .unwrap_or(crate::channels::ChannelKind::Web.as_str()),
    );
    let fragment = live::message_append_fragment(c.id, &v)?;
    Ok(HttpResponse::Created()
        .content_type("text/html; charset=utf-8")
        .body(fragment))
}

/// The control forms' fields (each form sends some of them).
#[derive(Deserialize)]
pub struct UpdateForm {
    status: Option<String>,
    assignee_id: Option<String>,
    snooze: Option<String>,
    snooze_at: Option<String>,
    labels: Option<String>,
    labels_present: Option<String>,
    priority: Option<String>,
}

#[tracing::instrument(skip_all, fields(agent = %page.agent.id, conversation = %path))]
async fn update(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<UpdateForm>,
) -> Result<HttpResponse, PageError> {
    page.check_csrf(&req, None)?;
    let c = visible_conversation(&state, &page, &path)?;
    let f = form.into_inner();
    let now = time::now();
    let mut change = ConversationChange {
        status: f
            .status
            .as_deref()
            .map(ConversationStatus::parse)
            .transpose()?,
        assignee_id: f
            .assignee_id
            .as_deref()
            .map(|a| (!a.is_empty()).then(|| parse_assignee(a)).transpose())
            .transpose()?,
        priority: f
            .priority
            .as_deref()
            .map(crate::domain::Priority::parse)
            .transpose()?,
        ..ConversationChange::default()
    };
    // The agent's clock: "Tomorrow" and a typed date and time are theirs.
    let zone = time::Zone::of(page.agent.timezone.as_deref());
    let until =
        match (
            f.snooze.as_deref().filter(|s| !s.is_empty()),
            f.snooze_at.as_deref().filter(|s| !s.is_empty()),
        ) {
            (_, Some(at)) => Some(parse_local(at, zone).ok_or_else(|| {
                crate::domain::Invalid::new("snoozed_until", "pick a date and time")
            })?),
            (Some(s), None) => Some(snooze_preset(s, now, zone).ok_or_else(|| {
                crate::domain::Invalid::new("snoozed_until", "unknown snooze option")
            })?),
            (None, None) => None,
        };
    if let Some(t) = until {
        // The snooze form is the status: it snoozes whatever else was sent.
        change.status = Some(ConversationStatus::Snoozed);
        change.snoozed_until = Some(Some(t));
    }
    if f.labels_present.is_some() {
        let raw: Vec<String> = f
            .labels
            .unwrap_or_default()
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        change.labels = Some(Label::parse_list(&raw)?);
    }
    state
        .svc
        .change_conversation(&page.agent, c.id, change)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Snooze presets in the agent's zone: an hour, tomorrow 09:00, next
/// Monday 09:00 (daylight saving included).
fn snooze_preset(name: &str, now: i64, zone: time::Zone) -> Option<i64> {
    use chrono::{Datelike, Duration};
    let today = zone.date_of(now)?;
    let at_nine = |d: chrono::NaiveDate| zone.instant(d.and_hms_opt(9, 0, 0)?);
    match name {
        "1h" => Some(now + 3_600_000_000),
        "tomorrow" => at_nine(today + Duration::days(1)),
        "nextweek" => {
            let days = 7 - i64::from(today.weekday().num_days_from_monday());
            at_nine(today + Duration::days(days))
        }
        _ => None,
    }
}

/// A `datetime-local` value (a wall clock in the agent's zone) or an RFC
/// 3339 time.
fn parse_local(s: &str, zone: time::Zone) -> Option<i64> {
    parse_rfc3339(s).or_else(|| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
            .ok()
            .and_then(|n| zone.instant(n))
    })
}

/// The read trigger's field.
#[derive(Deserialize)]
pub struct ReadForm {
    seq: Option<String>,
}

/// The merge form of the contact panel.
#[derive(Deserialize)]
pub struct MergeForm {
    csrf: Option<String>,
    into: String,
}

/// Merges a possible duplicate into the open conversation's contact;
/// htmx reloads the page, a plain form goes back to the inbox.
async fn merge_contact(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<MergeForm>,
) -> Result<HttpResponse, PageError> {
    page.check_csrf(&req, form.csrf.as_deref())?;
    let from = parse_id(&path).ok_or(ApiError::NotFound)?;
    // The page answers a target it cannot merge into with 404, like
    // anything that is not there; the API names the field (422).
    state
        .svc
        .merge_contacts(&page.agent, from, parse_id(&form.into))
        .await
        .map_err(|e| match e {
            ApiError::Invalid(i) if i.field == "into" => ApiError::NotFound,
            e => e,
        })?;
    if req.headers().contains_key("hx-request") {
        Ok(HttpResponse::NoContent()
            .insert_header(("HX-Refresh", "true"))
            .finish())
    } else {
        Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/inbox"))
            .finish())
    }
}

/// The Retry button of a reply a channel did not deliver.
#[tracing::instrument(skip_all, fields(agent = %page.agent.id, conversation = %path.0, seq = %path.1))]
async fn retry_delivery(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    page.check_csrf(&req, None)?;
    let id = parse_id(&path.0).ok_or(ApiError::NotFound)?;
    let seq: u64 = path.1.parse().map_err(|_| ApiError::NotFound)?;
    state.svc.retry_delivery(&page.agent, id, seq).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[tracing::instrument(skip_all, fields(agent = %page.agent.id, conversation = %path))]
async fn read(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<ReadForm>,
) -> Result<HttpResponse, PageError> {
    page.check_csrf(&req, None)?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let seq = form.seq.as_deref().and_then(|s| s.parse().ok());
    state.svc.agent_read(&page.agent, id, seq).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The typing trigger's fields.
#[derive(Deserialize)]
pub struct TypingForm {
    typing: Option<String>,
    private: Option<String>,
}

#[tracing::instrument(skip_all, fields(agent = %page.agent.id, conversation = %path))]
async fn typing(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<TypingForm>,
) -> Result<HttpResponse, PageError> {
    page.check_csrf(&req, None)?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    state.svc.agent_typing(
        &page.agent,
        id,
        form.typing.as_deref() != Some("false"),
        form.private
            .as_deref()
            .is_some_and(|v| v == "true" || v == "on"),
    )?;
    Ok(HttpResponse::NoContent().finish())
}

/// The list's bulk bar: `ids` (repeated, one per ticked row), `action`
/// (`resolve`, `assign` with `assignee_id`, `label` with `label`) and, for
/// a plain form, `csrf` and `back` (the list to return to).
#[tracing::instrument(skip_all, fields(agent = %page.agent.id))]
async fn bulk(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    use crate::service::conversations::BulkAction;
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    page.check_csrf(&req, field("csrf"))?;
    let ids = form
        .iter()
        .filter(|(k, _)| k == "ids")
        .map(|(_, v)| parse_id(v).ok_or(ApiError::NotFound))
        .collect::<Result<Vec<_>, _>>()?;
    let action = match field("action").unwrap_or_default() {
        "resolve" => BulkAction::Resolve,
        "assign" => BulkAction::Assign(
            field("assignee_id")
                .filter(|a| !a.is_empty())
                .map(parse_assignee)
                .transpose()?,
        ),
        "label" => {
            BulkAction::AddLabel(Label::parse(field("label").unwrap_or_default())?.into_inner())
        }
        _ => {
            return Err(ApiError::from(crate::domain::Invalid::new(
                "action",
                "choose resolve, assign or label",
            ))
            .into())
        }
    };
    state.svc.bulk_change(&page.agent, &ids, &action).await?;
    if req.headers().contains_key("hx-request") {
        return Ok(HttpResponse::NoContent().finish());
    }
    // A plain form goes back to its list (only ever a path of ours).
    let back = field("back")
        .filter(|b| b.starts_with("/inbox") && !b.starts_with("//"))
        .unwrap_or("/inbox");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, back.to_owned()))
        .finish())
}

/// The browser's zone field.
#[derive(Deserialize)]
pub struct TimezoneForm {
    timezone: String,
}

/// The browser names its zone when the agent has none yet (app.js, once):
/// the default the profile's picker then shows.
#[tracing::instrument(skip_all, fields(agent = %page.agent.id))]
async fn browser_timezone(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    form: web::Form<TimezoneForm>,
) -> Result<HttpResponse, PageError> {
    page.check_csrf(&req, None)?;
    state
        .svc
        .adopt_timezone(&page.agent, &form.timezone)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The header's availability control.
#[derive(Deserialize)]
pub struct AvailabilityForm {
    csrf: Option<String>,
    availability: String,
}

/// The header's availability control: kept on the agent, so it holds
/// across reloads and devices. A script's request gets 204; a plain form
/// goes back to the page it came from.
#[tracing::instrument(skip_all, fields(agent = %page.agent.id))]
async fn set_availability(
    state: web::Data<AppState>,
    page: PageAgent,
    req: HttpRequest,
    form: web::Form<AvailabilityForm>,
) -> Result<HttpResponse, PageError> {
    page.check_csrf(&req, form.csrf.as_deref())?;
    state
        .svc
        .set_availability(&page.agent, &form.availability)
        .await?;
    if req.headers().contains_key("x-csrf-token") {
        return Ok(HttpResponse::NoContent().finish());
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/inbox"))
        .finish())
}

/// One search result on the page.
pub struct ResultView {
    href: String,
    contact_name: String,
    before: String,
    hit: String,
    after: String,
    time_iso: String,
    time_rel: String,
    private: bool,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    csrf: String,
    agent_id: String,
    agent_name: String,
    admin: bool,
    sound: bool,
    /// What the agent set in the header's availability control.
    availability: &'static str,
    /// The agent's time zone, empty until known (live.js then names the
    /// browser's).
    timezone: String,
    search_q: String,
    results: Vec<ResultView>,
    next_href: Option<String>,
    inbox_options: Vec<(String, String, bool)>,
    f_status: String,
    f_assignee: String,
    f_label: String,
    f_author: String,
    f_from: String,
    f_to: String,
}

#[tracing::instrument(skip_all, fields(agent = %page.agent.id))]
async fn search(
    state: web::Data<AppState>,
    page: PageAgent,
    q: web::Query<crate::web::api::SearchQuery>,
    raw: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let filter = q.filter(page.agent.id)?;
    let keep = |k: &str| raw.get(k).cloned().unwrap_or_default();
    let inbox_options: Vec<(String, String, bool)> = state
        .svc
        .visible_inboxes(&page.agent)?
        .into_iter()
        .map(|i| {
            let id = format_id(i.id);
            let selected = keep("inbox") == id;
            (id, i.name, selected)
        })
        .collect();
    // The API's rule: an over-long query is refused with the API's reason;
    // an empty box is the page's "type something" state.
    let text = crate::service::search::search_text(q.q.as_deref())?.unwrap_or_default();
    let mut results = Vec::new();
    let mut next_href = None;
    if !text.is_empty() {
        let viewer = crate::service::realtime::Viewer::Agent {
            id: page.agent.id,
            admin: page.is_admin(),
        };
        let cursor = q.cursor.clone().filter(|c| c.parse::<usize>().is_ok());
        let hits = state
            .svc
            .search(viewer, text.clone(), filter, 30, cursor)
            .await?;
        let contacts = state.svc.contacts_of_hits(&hits)?;
        for (h, contact) in hits.hits.iter().zip(&contacts) {
            let (before, hit, after) = split_match(&h.snippet, h.highlights.first().copied());
            results.push(ResultView {
                href: format!(
                    "/conversations/{}#msg-{}",
                    h.message.conversation_id, h.message.id
                ),
                contact_name: view::contact_display(
                    contact.as_ref().and_then(|k| k.name.as_deref()),
                    contact.as_ref().and_then(|k| k.email.as_deref()),
                    contact.as_ref().map_or(ContactId::new(0), |k| k.id),
                ),
                before,
                hit,
                after,
                time_iso: time::rfc3339(h.message.created_at),
                time_rel: view::relative(h.message.created_at, time::now()),
                private: h.message.private,
            });
        }
        next_href = hits.next_cursor.map(|c| {
            let mut href = format!(
                "/search?q={}&cursor={}",
                super::session::url_escape(&text),
                super::session::url_escape(&c)
            );
            for k in [
                "inbox", "status", "assignee", "label", "author", "from", "to",
            ] {
                let v = keep(k);
                if !v.is_empty() {
                    href.push_str(&format!("&{k}={}", super::session::url_escape(&v)));
                }
            }
            href
        });
    }
    let p = SearchPage {
        csrf: page.csrf(),
        agent_id: format_id(page.agent.id),
        agent_name: page.agent.name.clone(),
        availability: page.agent.availability.as_str(),
        admin: page.is_admin(),
        sound: page.agent.notify_sound,
        timezone: page.agent.timezone.clone().unwrap_or_default(),
        search_q: text,
        results,
        next_href,
        inbox_options,
        f_status: keep("status"),
        f_assignee: keep("assignee"),
        f_label: keep("label"),
        f_author: keep("author"),
        f_from: keep("from"),
        f_to: keep("to"),
    };
    Ok(html(render(&p)?))
}

/// Splits a snippet around its first highlighted range, so the template
/// can wrap it in `<mark>` while escaping every part.
fn split_match(snippet: &str, range: Option<(usize, usize)>) -> (String, String, String) {
    let chars: Vec<char> = snippet.chars().collect();
    match range {
        Some((a, b)) if a <= b && b <= chars.len() => (
            chars[..a].iter().collect(),
            chars[a..b].iter().collect(),
            chars[b..].iter().collect(),
        ),
        _ => (snippet.to_owned(), String::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_split_for_highlighting() {
        assert_eq!(
            split_match("my Refund please", Some((3, 9))),
            ("my ".into(), "Refund".into(), " please".into())
        );
        assert_eq!(
            split_match("nothing", None),
            ("nothing".into(), String::new(), String::new())
        );
        assert_eq!(
            split_match("short", Some((3, 99))),
            ("short".into(), String::new(), String::new())
        );
    }

    #[test]
    fn snooze_presets_are_in_the_future() {
        let now = 1_700_000_000_000_000;
        for p in ["1h", "tomorrow", "nextweek"] {
            assert!(
                snooze_preset(p, now, time::Zone::UTC).is_some_and(|t| t > now),
                "{p}"
            );
        }
        assert_eq!(snooze_preset("never", now, time::Zone::UTC), None);
        assert_eq!(
            parse_local("2030-01-02T03:04", time::Zone::UTC),
            parse_rfc3339("2030-01-02T03:04:00Z")
        );
    }

    #[test]
    fn snooze_presets_keep_the_agents_clock() {
        let tokyo = time::Zone::parse("Asia/Tokyo").unwrap();
        let ny = time::Zone::parse("America/New_York").unwrap();
        // Saturday 7 March 2026, 20:00 in New York (01:00 UTC on Sunday).
        let now = parse_rfc3339("2026-03-08T01:00:00Z").unwrap();
        // Tomorrow in New York is Sunday the 8th, after the clocks went
        // forward: 09:00 EDT is 13:00 UTC.
        assert_eq!(
            snooze_preset("tomorrow", now, ny)
                .map(time::rfc3339)
                .as_deref(),
            Some("2026-03-08T13:00:00.000Z")
        );
        // In Tokyo it is already Sunday 10:00: tomorrow is Monday 09:00 JST.
        assert_eq!(
            snooze_preset("tomorrow", now, tokyo)
                .map(time::rfc3339)
                .as_deref(),
            Some("2026-03-09T00:00:00.000Z")
        );
        // Next week from Saturday in New York: Monday the 9th, 09:00 EDT.
        assert_eq!(
            snooze_preset("nextweek", now, ny)
                .map(time::rfc3339)
                .as_deref(),
            Some("2026-03-09T13:00:00.000Z")
        );
        assert_eq!(
            parse_local("2026-07-01T09:30", ny)
                .map(time::rfc3339)
                .as_deref(),
            Some("2026-07-01T13:30:00.000Z")
        );
    }
}
