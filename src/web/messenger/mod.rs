//! The customer's messenger: `/m/{widget_key}`, a full page that also runs
//! inside the widget's iframe. Server-rendered and usable without
//! JavaScript (plain forms, a first-party cookie); with JavaScript the
//! contact token lives in the messenger origin's localStorage and htmx
//! sends it as a bearer token, and live updates arrive over SSE.
//!
//! A contact is created on its first message, never on page view.

pub mod live;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::extract::ClientIp;
use super::session::{url_escape, MESSENGER_FORM};
use super::upload::{prepare, MessageUpload, Uploader};
use super::workspace::view::{self, MessageView};
use super::AppState;
use crate::domain::ids::ConversationId;
use crate::domain::time::{self, rfc3339};
use crate::domain::{format_id, parse_id, AuthorType, ContactName, ConversationStatus, Email};
use crate::error::ApiError;
use crate::service::customer::{optional_email, ContactDetails};
use crate::service::notify::Confirmation;
use crate::store::{ContactRecord, ConversationRecord, InboxRecord, MessagePage, MessageRecord};

/// The no-JavaScript identity cookie (first-party pages only).
pub const CONTACT_COOKIE: &str = "natter_contact";
/// Response header that hands a new contact token to the page's script.
pub const TOKEN_HEADER: &str = "X-Natter-Token";
/// Messages shown per page of history.
const PAGE: usize = 30;

/// Registers the messenger routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/m/{key}", web::get().to(page))
        .route("/m/{key}/view", web::get().to(view_partial))
        .route("/m/{key}/theme.css", web::get().to(theme))
        .route("/m/{key}/start", web::post().to(start))
        .route("/m/{key}/c/{id}/messages", web::post().to(send))
        .route("/m/{key}/c/{id}/older", web::get().to(older))
        .route("/m/{key}/c/{id}/rate", web::post().to(rate))
        .route("/rate/{token}", web::get().to(rate_page))
        .route("/rate/{token}", web::post().to(rate_by_link))
        .route("/m/{key}/resume", web::post().to(resume))
        .route("/m/{key}/resume-link", web::post().to(resume_link))
        .route("/m/{key}/email", web::post().to(email))
        .route("/m/{key}/unsubscribe", web::get().to(unsubscribe))
        .route("/m/{key}/confirm-email", web::get().to(confirm_email_page))
        .route("/m/{key}/confirm-email", web::post().to(confirm_email))
        .route("/m/{key}/unsubscribe", web::post().to(unsubscribe))
        .route("/m/{key}/events", web::get().to(live::events))
        .route("/widget.js", web::get().to(widget_js));
}

/// Who is looking: the contact behind a bearer token or the first-party
/// cookie, if it belongs to this inbox.
pub fn contact_of(
    state: &AppState,
    req: &HttpRequest,
    inbox: &InboxRecord,
) -> Result<Option<(ContactRecord, String)>, ApiError> {
    contact_from(state, req, inbox, false)
}

/// The same for the event stream, which also takes an `access_token` query
/// parameter: EventSource cannot send headers, and an iframe gets no
/// cookie. Nowhere else: a token in a URL ends up in logs and Referers.
pub fn stream_contact_of(
    state: &AppState,
    req: &HttpRequest,
    inbox: &InboxRecord,
) -> Result<Option<(ContactRecord, String)>, ApiError> {
    contact_from(state, req, inbox, true)
}

fn contact_from(
    state: &AppState,
    req: &HttpRequest,
    inbox: &InboxRecord,
    query_token: bool,
) -> Result<Option<(ContactRecord, String)>, ApiError> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned());
    let query = query_token
        .then(|| {
            web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.get("access_token").cloned())
        })
        .flatten();
    let cookie = req.cookie(CONTACT_COOKIE).map(|c| c.value().to_owned());
    for token in [bearer, query, cookie].into_iter().flatten() {
        if let Some(c) = state.svc.contact_by_token_in(inbox, &token)? {
            return Ok(Some((c, token)));
        }
    }
    Ok(None)
}

/// The inbox of the page's widget key, recorded on the handler's span
/// (the key itself is not logged).
fn inbox_of(state: &AppState, key: &str) -> Result<InboxRecord, ApiError> {
    let inbox = state.svc.widget_inbox(key)?;
    tracing::Span::current().record("inbox", inbox.id.get());
    Ok(inbox)
}

fn contact_cookie(token: &str, secure: bool, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(CONTACT_COOKIE, token.to_owned())
        .path("/m/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// Refuses a state-changing messenger post made by another site (the
/// rule of [`super::session::same_origin`]: a browser's `Sec-Fetch-Site`
/// other than `same-origin`, or an `Origin` that is neither the base URL's
/// host nor the host the request was sent to). Answers whether the headers already prove the post is the messenger's
/// own (a browser's `Sec-Fetch-Site: same-origin`, htmx's `HX-Request`
/// or a bearer token, none of which a cross-site form can send); if not,
/// the form's `csrf` field must match the form cookie ([`form_token_ok`]).
fn check_post(state: &AppState, req: &HttpRequest) -> Result<bool, ApiError> {
    if !super::session::same_origin(req, &state.config.base_url) {
        return Err(ApiError::Forbidden("posts from other sites are refused"));
    }
    let h = req.headers();
    let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    Ok(site == Some("same-origin")
        || h.contains_key("hx-request")
        || h.contains_key(header::AUTHORIZATION))
}

/// Whether a form's `csrf` field belongs to this browser's form cookie.
fn form_token_ok(req: &HttpRequest, given: Option<&str>) -> bool {
    MESSENGER_FORM.ok(req, given)
}

/// [`check_post`], and for a post the headers do not vouch for, the
/// form's token.
fn check_form_post(
    state: &AppState,
    req: &HttpRequest,
    given: Option<&str>,
) -> Result<(), ApiError> {
    if check_post(state, req)? || form_token_ok(req, given) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "missing or wrong form token; reload the page",
        ))
    }
}

/// The token this page's forms carry (empty without a form cookie: a
/// frame's posts are htmx's).
fn form_token(req: &HttpRequest) -> String {
    MESSENGER_FORM.token(req).unwrap_or_default()
}

/// A conversation in the contact's list.
pub struct ConvItem {
    id: String,
    preview: String,
    time_rel: String,
    unread: u64,
    status: &'static str,
}

/// The messenger's main area.
#[derive(Template)]
#[template(path = "partials/m_main.html")]
pub struct Main {
    key: String,
    contact_id: String,
    has_contact: bool,
    /// The inbox's pre-chat form (`off`, `ask`, `require`).
    prechat: &'static str,
    conversations: Vec<ConvItem>,
    open: Option<String>,
    messages: Vec<MessageView>,
    older_before: Option<u64>,
    events_url: String,
    seen: bool,
    waiting_note: Option<String>,
    greeting: String,
    email: String,
    /// "Notify me by email" is offered: the contact left no address yet
    /// and natter can send mail (a mail server or an email inbox).
    offer_email: bool,
    search_q: String,
    results: Vec<(String, String, String)>,
    /// The contact chose to start another conversation: the composer for
    /// it, and nothing else to type into.
    composing_new: bool,
    /// The form token (empty in a frame that has no form cookie: its posts
    /// are htmx's).
    csrf: String,
    /// The open conversation's rating: the five choices while it is due,
    /// else the score given for this resolution.
    rate: Option<&'static [(u8, &'static str, &'static str); 5]>,
    rated: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "messenger.html")]
struct Page {
    key: String,
    /// The form token of the resume form.
    csrf: String,
    inbox_name: String,
    embed: bool,
    resume: Option<String>,
    /// The conversation a resume link opens (notification mails).
    resume_c: String,
    token_for_script: Option<String>,
    main_html: String,
    /// Who answers here (first names, initials) and whether any of them is
    /// connected now.
    team: Vec<(String, String)>,
    team_names: String,
    online: bool,
    /// Outside business hours: "We're away. Back ..." in the inbox's zone.
    away_until: Option<String>,
    /// How long the team usually takes, in words.
    reply_time: Option<String>,
}

/// `?c=&resume=&embed=&q=&list=&new=` of the messenger.
#[derive(Deserialize, Default)]
pub struct PageQuery {
    c: Option<String>,
    resume: Option<String>,
    embed: Option<String>,
    q: Option<String>,
    /// Show the list even when a conversation is open (its back link).
    list: Option<String>,
    /// The contact asked for a new conversation.
    new: Option<String>,
}

/// The whole messenger page of `inbox` for `who`: its frame (form token,
/// the `embed`, `resume` and `c` of `q`, the token handed to the script
/// after a resume) around the main view. Every handler that answers with
/// the full page builds it here.
async fn full_page(
    state: &AppState,
    inbox: &InboxRecord,
    who: Option<&(ContactRecord, String)>,
    q: &PageQuery,
    csrf: String,
    token_for_script: Option<String>,
) -> Result<String, ApiError> {
    // A whole page outside the widget's frame is read as it is shown: the
    // messenger without JavaScript marks what it shows read this way (the
    // script does it for the frame, when the widget is open and visible).
    let main = main_view(state, inbox, who, q, &csrf, q.embed.is_none()).await?;
    let faces = state.svc.team_faces(inbox, 3)?;
    let expect = state.svc.expectations(inbox)?;
    let away_until =
        (!expect.open_now).then(|| match (expect.next_open_at, &inbox.business_hours) {
            (Some(t), Some(h)) => format!("We're away right now. Back {}.", back_at(h, t)),
            _ => "We're away right now.".to_owned(),
        });
    let online = faces.iter().any(|f| f.online);
    let names: Vec<&str> = faces.iter().map(|f| f.first_name.as_str()).collect();
    let team_names = match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    render(&Page {
        team: faces
            .iter()
            .map(|f| {
                let initial: String = f.first_name.chars().take(1).collect();
                (f.first_name.clone(), initial.to_uppercase())
            })
            .collect(),
        team_names,
        online: online && expect.open_now,
        away_until,
        // Measured reply times show in the header; the inbox's own text
        // only with the away line (it shows later, to a contact waiting).
        reply_time: if expect.open_now {
            expect
                .reply_secs
                .map(|s| crate::service::expectations::in_words(s).to_owned())
        } else {
            expect.reply_time
        },
        key: inbox.widget_key.clone(),
        csrf,
        inbox_name: inbox.name.clone(),
        embed: q.embed.is_some(),
        resume: q.resume.clone().filter(|r| !r.is_empty()),
        resume_c: q.c.clone().unwrap_or_default(),
        token_for_script,
        main_html: render(&main)?,
    })
}

fn render<T: Template>(t: &T) -> Result<String, ApiError> {
    t.render().map_err(|e| {
        tracing::error!(error = %e, "messenger template failed");
        ApiError::Internal
    })
}

async fn main_view(
    state: &AppState,
    inbox: &InboxRecord,
    who: Option<&(ContactRecord, String)>,
    q: &PageQuery,
    csrf: &str,
    mark_read: bool,
) -> Result<Main, ApiError> {
    let greeting = inbox.greeting.clone().unwrap_or_else(|| {
        "Hi! Ask us anything — we reply here, even if you close this page.".to_owned()
    });
    let mut m = Main {
        key: inbox.widget_key.clone(),
        contact_id: String::new(),
        has_contact: false,
        prechat: inbox.prechat.as_str(),
        conversations: Vec::new(),
        open: None,
        messages: Vec::new(),
        older_before: None,
        events_url: String::new(),
        seen: false,
        waiting_note: None,
        greeting,
        email: String::new(),
        offer_email: false,
        search_q: String::new(),
        results: Vec::new(),
        composing_new: false,
        csrf: csrf.to_owned(),
        rate: None,
        rated: None,
    };
    let Some((contact, token)) = who else {
        return Ok(m);
    };
    m.has_contact = true;
    m.contact_id = format_id(contact.id);
    m.email = contact.email.clone().unwrap_or_default();
    m.offer_email = m.email.is_empty() && state.svc.can_send_mail();
    let from_event = state.svc.published_upto();
    let convs = state.svc.own_conversations(contact)?;
    m.conversations = convs
        .iter()
        .map(|c| ConvItem {
            id: format_id(c.id),
            preview: c
                .last_public()
                .map(|x| view::truncate(&x.body, 60))
                .unwrap_or_default(),
            // Not `updated_at`: a note moves it.
            time_rel: view::relative(c.contact_activity(), time::now()),
            unread: c.contact_unread,
            status: c.status.as_str(),
        })
        .collect();
    let searching = q.q.as_deref().is_some_and(|t| !t.trim().is_empty());
    let open: Option<&ConversationRecord> = match q.c.as_deref().and_then(parse_id) {
        Some(id) => convs.iter().find(|c| c.id == id),
        // A returning contact lands in its unresolved conversation, with
        // its composer (the newest, if several): typing into a "new
        // conversation" box by mistake split the thread. Starting another
        // one is a choice (`new`), and the list is a link away (`list`).
        None if q.list.is_none() && q.new.is_none() && !searching => convs
            .iter()
            .filter(|c| c.status != ConversationStatus::Resolved)
            .max_by_key(|c| c.contact_activity()),
        None => None,
    };
    m.composing_new = q.new.is_some() && open.is_none() && !searching;
    let mut events_url = format!(
        "/m/{}/events?access_token={}&last_event_id={from_event}",
        inbox.widget_key,
        url_escape(token)
    );
    if let Some(c) = open {
        m.open = Some(format_id(c.id));
        if state.svc.rating_due(c)? {
            m.rate = Some(&crate::service::ratings::CHOICES);
        } else if let Some(r) = c.rating.as_ref().filter(|r| r.resolution == c.resolutions) {
            m.rated = emoji_of(r.score);
        }
        events_url.push_str(&format!("&c={}", c.id));
        let recs = state.svc.own_messages(
            c,
            MessagePage {
                after: None,
                before: None,
                limit: PAGE,
                include_private: false,
            },
        )?;
        m.older_before = older_before(&recs);
        let mut prev = None;
        for r in &recs {
            m.messages.push(view::customer_message(r, prev));
            prev = Some(r);
        }
        m.seen = matches!(c.last_public(), Some(l) if l.author.kind == AuthorType::Contact && c.agent_read_seq >= l.seq);
        m.waiting_note = waiting_note(inbox, c);
        if mark_read && c.contact_unread > 0 {
            state.svc.contact_read(contact, c, c.public_count()).await?;
        }
    }
    m.events_url = events_url;
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        m.search_q = text.chars().take(200).collect();
        let hits = state
            .svc
            .search_own_messages(contact, m.search_q.clone(), 20, None)
            .await?;
        m.results = hits
            .hits
            .iter()
            .map(|h| {
                (
                    format!(
                        "/m/{}?c={}#msg-{}",
                        inbox.widget_key, h.message.conversation_id, h.message.id
                    ),
                    h.snippet.clone(),
                    view::relative(h.message.created_at, time::now()),
                )
            })
            .collect();
    }
    Ok(m)
}

/// When an inbox opens again, on its own wall clock: "at 09:00" today,
/// "tomorrow at 09:00", else "Monday at 09:00" within a week, else the
/// date; with the zone's name, since the visitor may live elsewhere.
fn back_at(h: &crate::domain::hours::BusinessHours, t: time::Micros) -> String {
    let zone = h.zone();
    let (Some(at), Some(today)) = (zone.local_of(t), zone.date_of(time::now())) else {
        return String::new();
    };
    let clock = at.format("%H:%M");
    let days = (at.date() - today).num_days();
    let day = match days {
        0 => format!("at {clock}"),
        1 => format!("tomorrow at {clock}"),
        2..=6 => format!("{} at {clock}", at.format("%A")),
        _ => format!("on {} at {clock}", at.format("%-d %B")),
    };
    format!("{day} ({})", zone.name())
}

/// "We usually reply within ..." once the contact has waited a while.
fn waiting_note(inbox: &InboxRecord, c: &ConversationRecord) -> Option<String> {
    let last = c.last_public()?;
    let waited = time::now() - last.created_at;
    (last.author.kind == AuthorType::Contact && waited > 2 * 60 * 1_000_000).then(|| {
        inbox.reply_time.clone().unwrap_or_else(|| "The team usually replies within a few hours. You can close this page: the answer will be here when you come back.".to_owned())
    })
}

#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty))]
async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path)?;
    let who = contact_of(&state, &req, &inbox)?;
    // A page load gives the browser its form cookie if it has none.
    let (csrf, new_cookie) = match MESSENGER_FORM.token(&req) {
        Some(t) => (t, None),
        None => {
            let (t, c) = MESSENGER_FORM.issue(state.config.base_url.starts_with("https://"));
            (t, Some(c))
        }
    };
    let page = full_page(&state, &inbox, who.as_ref(), &q, csrf, None).await?;
    let mut res = HttpResponse::Ok();
    res.content_type("text/html; charset=utf-8");
    if let Some(c) = new_cookie {
        res.cookie(c);
    }
    Ok(res.body(page))
}

#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty))]
async fn view_partial(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path)?;
    let who = contact_of(&state, &req, &inbox)?;
    let main = main_view(&state, &inbox, who.as_ref(), &q, &form_token(&req), false).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(render(&main)?))
}

/// The inbox's accent colour as CSS (no inline styles under our CSP).
#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty))]
async fn theme(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path)?;
    let accent = inbox
        .accent_color
        .filter(|c| {
            c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|x| x.is_ascii_hexdigit())
        })
        .unwrap_or_else(|| "#2563eb".to_owned());
    Ok(HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(format!(":root {{ --accent: {accent}; }}\n")))
}

/// Answers a messenger form: the new main area for htmx, a redirect for a
/// plain form.
async fn answer(
    state: &AppState,
    req: &HttpRequest,
    inbox: &InboxRecord,
    who: &(ContactRecord, String),
    conversation: ConversationId,
    fresh_token: bool,
) -> Result<HttpResponse, ApiError> {
    let secure = state.config.base_url.starts_with("https://");
    let mut res = if req.headers().contains_key("hx-request") {
        let q = PageQuery {
            c: Some(format_id(conversation)),
            ..PageQuery::default()
        };
        let main = main_view(state, inbox, Some(who), &q, &form_token(req), false).await?;
        let mut r = HttpResponse::Ok();
        r.content_type("text/html; charset=utf-8");
        let body = render(&main)?;
        let mut r = r.body(body);
        if fresh_token {
            if let Ok(v) = header::HeaderValue::from_str(&who.1) {
                r.headers_mut()
                    .insert(header::HeaderName::from_static("x-natter-token"), v);
            }
        }
        r
    } else {
        HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!("/m/{}?c={conversation}", inbox.widget_key),
            ))
            .finish()
    };
    if fresh_token {
        let _ = res.add_cookie(&contact_cookie(
            &who.1,
            secure,
            state.config.contact_token_ttl_secs,
        ));
    }
    Ok(res)
}

/// Starts a conversation (and, on the first message, the contact).
#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty))]
async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    ip: ClientIp,
    path: web::Path<String>,
    upload: MessageUpload,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path)?;
    let vouched = check_post(&state, &req)?;
    let existing = contact_of(&state, &req, &inbox)?;
    // Every limit before a byte of the body is read.
    match &existing {
        Some(w) => state.svc.allow_contact_message(&w.0),
        None => state.svc.allow_new_contact(ip.0),
    }?;
    let input = upload
        .read(
            &state,
            Uploader {
                contact: existing.as_ref().map(|w| w.0.id),
                address: Some(ip.0),
            },
        )
        .await?;
    if !vouched && !form_token_ok(&req, input.csrf.as_deref()) {
        return Err(ApiError::Forbidden(
            "missing or wrong form token; reload the page",
        ));
    }
    // Name and email may come with the first message (a plain form).
    let details = ContactDetails {
        name: ContactName::parse(input.name.as_deref())?,
        email: optional_email(input.email.as_deref())?,
        identity: None,
    };
    if existing.is_none() {
        state.svc.check_prechat(&inbox, &details)?;
    }
    let prepared = prepare(input.body, input.files).await?;
    let fresh = existing.is_none();
    let who = match existing {
        Some(w) => w,
        None => state.svc.create_contact(&inbox, details).await?,
    };
    let first = prepared;
    let (conv, _) = state
        .svc
        .start_conversation(inbox.id, &who.0, first)
        .await?;
    answer(&state, &req, &inbox, &who, conv.id, fresh).await
}

/// A message in one of the contact's conversations.
#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty, conversation = %path.1))]
async fn send(
    state: web::Data<AppState>,
    req: HttpRequest,
    ip: ClientIp,
    path: web::Path<(String, String)>,
    upload: MessageUpload,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path.0)?;
    let vouched = check_post(&state, &req)?;
    let who = contact_of(&state, &req, &inbox)?
        .ok_or(ApiError::Unauthorized("start a conversation first"))?;
    let conv = state
        .svc
        .own_conversation(&who.0, parse_id(&path.1).ok_or(ApiError::NotFound)?)?;
    state.svc.allow_contact_message(&who.0)?;
    let input = upload
        .read(
            &state,
            Uploader {
                contact: Some(who.0.id),
                address: Some(ip.0),
            },
        )
        .await?;
    if !vouched && !form_token_ok(&req, input.csrf.as_deref()) {
        return Err(ApiError::Forbidden(
            "missing or wrong form token; reload the page",
        ));
    }
    let prepared = prepare(input.body, input.files).await?;
    let m = prepared;
    let msg = state.svc.post_own_message(&who.0, &conv, m).await?;
    if req.headers().contains_key("hx-request") {
        let prev = state
            .svc
            .own_message_at(conv.id, msg.ordinal.saturating_sub(1))?;
        let html = live::message_fragment(
            &inbox.widget_key,
            conv.id,
            &view::customer_message(&msg, prev.as_ref()),
        )?;
        // A patch (live.js applies it): the stream may have shown it first.
        return Ok(HttpResponse::Created()
            .content_type("text/html; charset=utf-8")
            .insert_header(("X-Natter-Patch", "1"))
            .body(html));
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/m/{}?c={}#msg-{}", inbox.widget_key, conv.id, msg.id),
        ))
        .finish())
}

/// A rating form: the score pressed, an optional comment.
#[derive(Deserialize)]
pub struct RateForm {
    csrf: Option<String>,
    score: i64,
    comment: Option<String>,
}

/// The contact rates the open conversation from the messenger; the
/// conversation again (htmx swaps the main view; without a script, a
/// redirect to it).
#[tracing::instrument(skip_all, fields(conversation = %path.1))]
async fn rate(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<RateForm>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path.0)?;
    check_form_post(&state, &req, form.csrf.as_deref())?;
    let who = contact_of(&state, &req, &inbox)?
        .ok_or(ApiError::Unauthorized("start a conversation first"))?;
    let conv = state
        .svc
        .own_conversation(&who.0, parse_id(&path.1).ok_or(ApiError::NotFound)?)?;
    let f = form.into_inner();
    state
        .svc
        .rate_own(
            &who.0,
            &conv,
            crate::service::ratings::RatingInput {
                score: f.score,
                comment: f.comment,
            },
        )
        .await?;
    if req.headers().contains_key("hx-request") {
        let q = PageQuery {
            c: Some(format_id(conv.id)),
            ..PageQuery::default()
        };
        let main = main_view(&state, &inbox, Some(&who), &q, &form_token(&req), false).await?;
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(render(&main)?));
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/m/{}?c={}", inbox.widget_key, conv.id),
        ))
        .finish())
}

/// The page a rating link opens (SMS, WhatsApp, email): five choices and
/// a comment; after a rating, thanks; a second one says it was rated.
#[derive(Template)]
#[template(path = "rate.html")]
struct RatePage {
    inbox_name: String,
    token: String,
    choices: &'static [(u8, &'static str, &'static str); 5],
    /// `Some(score)` once rated (now or before).
    done: Option<&'static str>,
    error: Option<String>,
}

fn rate_html(
    status: actix_web::http::StatusCode,
    page: &RatePage,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(render(page)?))
}

fn emoji_of(score: u8) -> Option<&'static str> {
    crate::service::ratings::CHOICES
        .iter()
        .find(|(s, _, _)| *s == score)
        .map(|(_, e, _)| *e)
}

#[tracing::instrument(skip_all)]
async fn rate_page(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (c, resolution) = state.svc.rating_link(&path).await?;
    let inbox = state.svc.inbox_of_conversation(&c)?;
    let done = c
        .rating
        .as_ref()
        .filter(|r| r.resolution == resolution)
        .and_then(|r| emoji_of(r.score));
    rate_html(
        actix_web::http::StatusCode::OK,
        &RatePage {
            inbox_name: inbox.name,
            token: path.into_inner(),
            choices: &crate::service::ratings::CHOICES,
            done,
            error: None,
        },
    )
}

#[tracing::instrument(skip_all)]
async fn rate_by_link(
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RateForm>,
) -> Result<HttpResponse, ApiError> {
    let f = form.into_inner();
    let input = crate::service::ratings::RatingInput {
        score: f.score,
        comment: f.comment,
    };
    let (c, _) = state.svc.rating_link(&path).await?;
    let inbox = state.svc.inbox_of_conversation(&c)?;
    let mut page = RatePage {
        inbox_name: inbox.name,
        token: path.into_inner(),
        choices: &crate::service::ratings::CHOICES,
        done: None,
        error: None,
    };
    match state.svc.rate_by_link(&page.token, input).await {
        Ok(rated) => {
            page.done = rated.rating.as_ref().and_then(|r| emoji_of(r.score));
            rate_html(actix_web::http::StatusCode::CREATED, &page)
        }
        Err(ApiError::Conflict(why)) => {
            page.error = Some(why);
            rate_html(actix_web::http::StatusCode::CONFLICT, &page)
        }
        Err(e) => Err(e),
    }
}

/// `?before=` of the history loader, in the contact's numbering (an
/// ordinal among public messages, as in `data-seq`).
#[derive(Deserialize)]
pub struct OlderQuery {
    before: Option<u64>,
}

/// Where the "older messages" loader continues: before the first message
/// shown, unless that is the conversation's first (in the contact's
/// numbering).
fn older_before(recs: &[MessageRecord]) -> Option<u64> {
    recs.first().filter(|f| f.ordinal > 1).map(|f| f.ordinal)
}

#[derive(Template)]
#[template(path = "partials/m_older.html")]
struct Older {
    key: String,
    conversation: String,
    messages: Vec<MessageView>,
    older_before: Option<u64>,
}

/// Older messages, loaded as the contact scrolls up.
#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty, conversation = %path.1))]
async fn older(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<OlderQuery>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path.0)?;
    let who = contact_of(&state, &req, &inbox)?.ok_or(ApiError::NotFound)?;
    let conv = state
        .svc
        .own_conversation(&who.0, parse_id(&path.1).ok_or(ApiError::NotFound)?)?;
    let recs = state.svc.own_messages(
        &conv,
        MessagePage {
            after: None,
            before: q.before,
            limit: PAGE,
            include_private: false,
        },
    )?;
    let mut messages = Vec::new();
    let mut prev = None;
    for r in &recs {
        messages.push(view::customer_message(r, prev));
        prev = Some(r);
    }
    let o = Older {
        key: inbox.widget_key.clone(),
        conversation: format_id(conv.id),
        older_before: older_before(&recs),
        messages,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(render(&o)?))
}

/// The resume form's field.
#[derive(Deserialize)]
pub struct ResumeForm {
    token: String,
    /// The conversation to open once signed in.
    c: Option<String>,
    /// The page's form token.
    csrf: Option<String>,
}

/// Uses a resume link: this browser continues as the same contact. Only
/// from the messenger's own page: a form another site posts here would
/// swap the visitor's identity for the attacker's and read what they type.
#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty))]
async fn resume(
    state: web::Data<AppState>,
    req: HttpRequest,
    ip: ClientIp,
    path: web::Path<String>,
    form: web::Form<ResumeForm>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path)?;
    check_form_post(&state, &req, form.csrf.as_deref())?;
    let redeemed = state
        .svc
        .redeem_resume_link(&inbox, ip.0, &form.token)
        .await?;
    let csrf = form_token(&req);
    let Some(who) = redeemed else {
        let page = full_page(&state, &inbox, None, &PageQuery::default(), csrf, None).await?;
        let body = page.replace("<!--resume-error-->", "<p class=\"error\" role=\"alert\">This link has expired or was already used. Ask for a new one on your other device.</p>");
        return Ok(HttpResponse::Gone()
            .content_type("text/html; charset=utf-8")
            .body(body));
    };
    let token = who.1.clone();
    let ttl = state.config.contact_token_ttl_secs;
    // Opens the conversation the link named; no `resume` in the query, so
    // the page shows no resume form (its `c` is unused then).
    let q = PageQuery {
        c: form.c.clone().filter(|c| !c.is_empty()),
        ..PageQuery::default()
    };
    let page = full_page(&state, &inbox, Some(&who), &q, csrf, Some(token.clone())).await?;
    let secure = state.config.base_url.starts_with("https://");
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .cookie(contact_cookie(&token, secure, ttl))
        .body(page))
}

/// `c`, `e`, `at`, `d`, `t` of an email confirmation link (its query, and
/// the same fields in the form its page posts).
#[derive(Deserialize)]
pub struct ConfirmFields {
    c: String,
    e: String,
    at: i64,
    d: String,
    t: String,
}

/// The confirmation a link's fields stand for; 404 for fields that do
/// not parse (the service checks the rest: forged, altered, expired).
fn confirmation_in(f: &ConfirmFields) -> Result<Confirmation, ApiError> {
    Ok(Confirmation {
        contact: parse_id(&f.c).ok_or(ApiError::NotFound)?,
        email: Email::parse(&f.e)
            .map_err(|_| ApiError::NotFound)?
            .into_inner(),
        asked_at: f.at,
        device: f.d.clone(),
    })
}

/// The page of a confirmation link: it changes nothing (mail scanners
/// fetch links), it says what confirming does, and its button posts the
/// signed link back. When the address is already another verified
/// person's, it says plainly that confirming gives the asking device that
/// person's conversations: only the person at the address can agree.
#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty))]
async fn confirm_email_page(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<ConfirmFields>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path)?;
    let c = confirmation_in(&q)?;
    let (_, takeover) = state.svc.confirmation(&inbox, &c, &q.t).await?;
    let esc = crate::web::workspace::linkify::escape;
    let hidden: String = [
        ("c", q.c.as_str()),
        ("e", q.e.as_str()),
        ("at", &q.at.to_string()),
        ("d", q.d.as_str()),
        ("t", q.t.as_str()),
    ]
    .iter()
    .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v)))
    .collect();
    let (email, device, when, inbox_name) = (
        esc(&c.email),
        esc(&c.device),
        rfc3339(c.asked_at * 1_000_000),
        esc(&inbox.name),
    );
    let (heading, text, button) = if takeover {
        (
            format!("Give {device} your conversations?"),
            format!("<p>{email} is already confirmed for your conversations with {inbox_name}. {device} asked at {when} to use it.</p><p><strong>Confirming gives that browser your whole history with us, and lets it write as you.</strong> Only confirm if that was you on another device. If not, close this page: nothing changes.</p>"),
            "Yes, that was me: give it my conversations",
        )
    } else {
        (
            "Confirm your email address".to_owned(),
            format!("<p>Confirm that {email} is yours, so replies from {inbox_name} reach you there (asked by {device} at {when}).</p><p>If you did not ask for this, close this page: nothing changes.</p>"),
            "Confirm",
        )
    };
    Ok(small_page(
        "Confirm your email address",
        "email-confirm",
        &format!(
            "<h1>{heading}</h1>{text}<form method=\"post\" action=\"/m/{}/confirm-email\">{hidden}<button type=\"submit\">{button}</button></form>",
            inbox.widget_key
        ),
    ))
}

/// The confirmation page's button: the address is proven for the contact
/// that asked, and only for it. If another verified person holds the
/// address, the person at the address has just agreed (on a page that said
/// so) that the asking device is theirs: the asker joins that person.
#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty))]
async fn confirm_email(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<ConfirmFields>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path)?;
    if !super::session::same_origin(&req, &state.config.base_url) {
        return Err(ApiError::Forbidden(
            "a confirmation is posted from its own page",
        ));
    }
    let c = confirmation_in(&form)?;
    state.svc.confirm_email(&inbox, &c, &form.t).await?;
    let shown = crate::web::workspace::linkify::escape(&c.email);
    Ok(small_page(
        "Email confirmed",
        "email-confirmed",
        &format!(
            "<h1>Thank you</h1><p>{shown} is confirmed. <a href=\"/m/{}\">Back to your conversations</a></p>",
            inbox.widget_key
        ),
    ))
}

/// A one-message page of the messenger (link outcomes).
fn small_page(title: &str, role: &str, main_html: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title><link rel=\"stylesheet\" href=\"/static/messenger.css\"></head><body><main data-role=\"{role}\">{main_html}</main></body></html>"
        ))
}

/// `?c=&t=` of an unsubscribe link.
#[derive(Deserialize)]
pub struct UnsubscribeQuery {
    c: String,
    t: String,
}

/// The unsubscribe link of notification mails (GET, and POST for mail
/// clients' one-click unsubscribe): no sign-in needed, the token is an
/// HMAC of the contact's id under the server's secret.
#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty))]
async fn unsubscribe(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<UnsubscribeQuery>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path)?;
    state.svc.unsubscribe(&q.c, &q.t).await?;
    let name = crate::web::workspace::linkify::escape(&inbox.name);
    Ok(small_page(
        "Unsubscribed",
        "unsubscribed",
        &format!(
            "<h1>You are unsubscribed</h1><p>{name} will not email you about new replies any more. Your conversations are still here: <a href=\"/m/{}\">open the messenger</a>.</p>",
            inbox.widget_key
        ),
    ))
}

/// A form whose only field is the page's form token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/m_resume.html")]
struct ResumeLink {
    url: String,
    qr_svg: String,
    expires_at: String,
    expires_text: String,
}

/// A single-use link (and QR code) that continues this contact elsewhere.
#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty))]
async fn resume_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    ip: ClientIp,
    path: web::Path<String>,
    form: Option<web::Form<CsrfForm>>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path)?;
    check_form_post(&state, &req, form.as_ref().and_then(|f| f.csrf.as_deref()))?;
    let who = contact_of(&state, &req, &inbox)?
        .ok_or(ApiError::Unauthorized("start a conversation first"))?;
    let link = state.svc.create_resume_link(&who.0, inbox.id, ip.0).await?;
    let (url, expires_at) = (link.url, link.expires_at);
    let qr = qrcode::QrCode::new(url.as_bytes()).map_err(|_| ApiError::Internal)?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(180, 180)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    let qr_svg = qr_svg
        .split_once("?>")
        .map_or(qr_svg.as_str(), |(_, rest)| rest)
        .trim()
        .to_owned();
    let body = render(&ResumeLink {
        url,
        qr_svg,
        expires_at: rfc3339(expires_at),
        expires_text: crate::web::workspace::view::human_utc(expires_at),
    })?;
    Ok(HttpResponse::Created()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// The "get notified by email" form.
#[derive(Deserialize)]
pub struct EmailForm {
    email: String,
    /// The page's form token.
    csrf: Option<String>,
}

/// Stores the email a contact leaves to hear back, and mails it a link
/// that proves the address. Every such mail is limited per contact, per
/// client address and per recipient (429 with `Retry-After`): a visitor
/// must not be able to make natter mail anyone at will.
#[tracing::instrument(skip_all, fields(inbox = tracing::field::Empty))]
async fn email(
    state: web::Data<AppState>,
    req: HttpRequest,
    ip: ClientIp,
    path: web::Path<String>,
    form: web::Form<EmailForm>,
) -> Result<HttpResponse, ApiError> {
    let inbox = inbox_of(&state, &path)?;
    check_form_post(&state, &req, form.csrf.as_deref())?;
    let who = contact_of(&state, &req, &inbox)?
        .ok_or(ApiError::Unauthorized("start a conversation first"))?;
    let email = Email::parse(&form.email)?;
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let sent = state
        .svc
        .leave_email(&inbox, &who.0, email.clone(), ip.0, user_agent)
        .await?;
    let note = format!(
        "<p class=\"notice\" role=\"status\">Thanks — we'll email {} when we reply.{}</p>",
        super::workspace::linkify::escape(&email.into_inner()),
        if sent {
            " Check your inbox to confirm the address."
        } else {
            ""
        }
    );
    if req.headers().contains_key("hx-request") {
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(note));
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/m/{}", inbox.widget_key)))
        .finish())
}

/// `GET /widget.js`: the embeddable launcher.
async fn widget_js() -> Result<HttpResponse, ApiError> {
    let file = super::assets::get("widget.js").ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(file))
}
