//! Settings pages: the agent's own profile and password; for admins,
//! agents, inboxes (snippet, identity secret, members) and canned
//! responses. Plain forms with the CSRF token as a field; every change
//! redirects back with a notice.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{html, render};
use crate::domain::{format_id, parse_id, time, Email, Invalid, Label, Name, Password, Role};
use crate::error::ApiError;
use crate::service::auth::{hash_password, random_string, verify_password};
use crate::store::{AgentUpdate, CannedRecord, StoreError};
use crate::web::session::{session_cookie, PageAgent, PageError};
use crate::web::AppState;

/// Registers the settings routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/settings",
        web::get().to(|| async { redirect("/settings/profile") }),
    )
    .route("/settings/{section}", web::get().to(show))
    .route("/settings/profile", web::post().to(save_profile))
    .route("/settings/password", web::post().to(change_password))
    .route("/settings/agents", web::post().to(create_agent))
    .route("/settings/agents/{id}", web::post().to(update_agent))
    .route("/settings/inboxes", web::post().to(create_inbox))
    .route("/settings/inboxes/{id}", web::post().to(update_inbox))
    .route(
        "/settings/inboxes/{id}/rotate-secret",
        web::post().to(rotate_secret),
    )
    .route("/settings/inboxes/{id}/members", web::post().to(add_member))
    .route(
        "/settings/inboxes/{id}/channel",
        web::post().to(save_channel),
    )
    .route("/settings/inboxes/{id}/test", web::post().to(test_channel))
    .route(
        "/settings/inboxes/{id}/members/{agent}/remove",
        web::post().to(remove_member),
    )
    .route("/settings/canned", web::post().to(create_canned))
    .route("/settings/canned/{id}", web::post().to(update_canned))
    .route(
        "/settings/canned/{id}/delete",
        web::post().to(delete_canned),
    );
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

/// An agent row.
pub struct AgentRow {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    active: bool,
}

/// One setting field of a channel form.
pub struct SettingField {
    name: &'static str,
    label: &'static str,
    value: String,
    input_type: &'static str,
    placeholder: String,
    /// A yes/no setting, shown as a choice.
    is_bool: bool,
}

/// A channel that can be added, with its empty form.
pub struct ChannelForm {
    name: &'static str,
    label: &'static str,
    icon: &'static str,
    fields: Vec<SettingField>,
}

/// The fields of a channel, filled from stored settings (secrets never).
fn fields(
    spec: &[crate::channels::Setting],
    stored: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Vec<SettingField> {
    spec.iter()
        .map(|s| {
            let stored_v = stored.and_then(|m| m.get(s.name));
            let value = if s.secret {
                String::new()
            } else {
                match stored_v {
                    Some(serde_json::Value::String(t)) => t.clone(),
                    Some(v) => v.to_string(),
                    None => s.default.unwrap_or("").to_owned(),
                }
            };
            SettingField {
                name: s.name,
                label: s.label,
                value,
                input_type: match (s.secret, s.kind) {
                    (true, _) => "password",
                    (_, crate::channels::SettingKind::Number) => "number",
                    (_, crate::channels::SettingKind::Url) => "url",
                    _ => "text",
                },
                placeholder: match (s.secret, stored_v.is_some()) {
                    (true, true) => "unchanged (write-only)".to_owned(),
                    (true, false) => "secret".to_owned(),
                    _ if !s.required => "optional".to_owned(),
                    _ => String::new(),
                },
                is_bool: s.kind == crate::channels::SettingKind::Bool,
            }
        })
        .collect()
}

/// The `s.<name>` fields of a channel form as settings (blank = keep).
fn settings_from_form(form: &[(String, String)]) -> serde_json::Map<String, serde_json::Value> {
    form.iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("s.")?;
            let v = v.trim();
            (!v.is_empty()).then(|| (name.to_owned(), serde_json::Value::String(v.to_owned())))
        })
        .collect()
}

fn form_value<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An inbox card.
pub struct InboxCard {
    id: String,
    name: String,
    channel: String,
    channel_label: &'static str,
    channel_icon: &'static str,
    webhook_url: String,
    /// Generated values the admin copies (tokens, URLs).
    shown: Vec<(&'static str, String)>,
    fields: Vec<SettingField>,
    greeting: String,
    reply_time: String,
    accent_color: String,
    snippet: String,
    hmac_secret: String,
    members: Vec<(String, String)>,
    non_members: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    csrf: String,
    agent_id: String,
    agent_name: String,
    admin: bool,
    sound: bool,
    push_new: bool,
    push_replies: bool,
    search_q: String,
    section: String,
    notice: Option<String>,
    error: Option<String>,
    agents: Vec<AgentRow>,
    inboxes: Vec<InboxCard>,
    channel_forms: Vec<ChannelForm>,
    canned: Vec<CannedRecord>,
}

/// `?saved=` notice.
#[derive(Deserialize)]
pub struct NoticeQuery {
    saved: Option<String>,
}

fn page(
    state: &AppState,
    p: &PageAgent,
    section: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Result<SettingsPage, PageError> {
    let admin = p.is_admin();
    let allowed = matches!(section, "profile" | "canned")
        || (admin && matches!(section, "agents" | "inboxes"));
    if !allowed {
        return Err(ApiError::NotFound.into());
    }
    let store = &state.store;
    let agents_all = store.agents()?;
    let agents = if section == "agents" {
        agents_all
            .iter()
            .map(|a| AgentRow {
                id: format_id(a.id),
                name: a.name.clone(),
                email: a.email.clone(),
                role: a.role.as_str(),
                active: a.active,
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut inboxes = Vec::new();
    if section == "inboxes" {
        for i in store.inboxes()? {
            let member_ids = store.members(i.id)?;
            let pick = |want: bool| {
                agents_all
                    .iter()
                    .filter(|a| member_ids.contains(&a.id) == want && a.active)
                    .map(|a| (format_id(a.id), a.name.clone()))
                    .collect::<Vec<_>>()
            };
            let adapter = crate::channels::by_name(&i.channel);
            let (channel_label, channel_icon) = crate::channels::label(&i.channel);
            let v = crate::contract::inbox_at(&i, true, &state.config.base_url);
            let mut shown = Vec::new();
            for (k, label) in [
                ("api_url", "API URL"),
                ("api_token", "API token"),
                ("webhook_secret", "Signing secret"),
            ] {
                if let Some(t) = v[k].as_str() {
                    if !crate::channels::ChannelKind::of(&i.channel).sets_its_webhook_on_connect()
                        || k != "webhook_secret"
                    {
                        shown.push((label, t.to_owned()));
                    }
                }
            }
            inboxes.push(InboxCard {
                channel_label,
                channel_icon,
                webhook_url: v["webhook_url"].as_str().unwrap_or("").to_owned(),
                shown,
                fields: adapter.map_or_else(Vec::new, |a| fields(a.settings(), Some(&i.settings))),
                id: format_id(i.id),
                snippet: format!(
                    "<script src=\"{}/widget.js\" data-key=\"{}\" defer></script>",
                    state.config.base_url, i.widget_key
                ),
                name: i.name,
                channel: i.channel,
                greeting: i.greeting.unwrap_or_default(),
                reply_time: i.reply_time.unwrap_or_default(),
                accent_color: i.accent_color.unwrap_or_else(|| "#2563eb".to_owned()),
                hmac_secret: i.hmac_secret,
                members: pick(true),
                non_members: pick(false),
            });
        }
    }
    let channel_forms = if section == "inboxes" {
        crate::channels::REGISTRY
            .iter()
            .map(|c| {
                let (label, icon) = crate::channels::label(c.name());
                ChannelForm {
                    name: c.name(),
                    label,
                    icon,
                    fields: fields(c.settings(), None),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(SettingsPage {
        channel_forms,
        csrf: p.csrf(),
        agent_id: format_id(p.agent.id),
        agent_name: p.agent.name.clone(),
        admin,
        sound: p.agent.notify_sound,
        push_new: p.agent.push_new_conversations,
        push_replies: p.agent.push_replies,
        search_q: String::new(),
        section: section.to_owned(),
        notice,
        error,
        agents,
        inboxes,
        canned: if section == "canned" {
            store.canned()?
        } else {
            Vec::new()
        },
    })
}

async fn show(
    state: web::Data<AppState>,
    p: PageAgent,
    path: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = q.saved.as_ref().map(|_| "Saved.".to_owned());
    Ok(html(render(&page(&state, &p, &path, notice, None)?)?))
}

/// Runs a change; a refused value re-renders the section with the reason.
async fn outcome(
    state: &AppState,
    p: &PageAgent,
    section: &str,
    r: Result<(), PageError>,
) -> Result<HttpResponse, PageError> {
    match r {
        Ok(()) => Ok(redirect(&format!("/settings/{section}?saved=1"))),
        Err(PageError::Api(
            e @ (ApiError::Invalid(_) | ApiError::Conflict(_) | ApiError::Forbidden(_)),
        )) => {
            let status = actix_web::ResponseError::status_code(&e);
            let body = render(&page(state, p, section, None, Some(e.to_string()))?)?;
            Ok(HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(body))
        }
        Err(e) => Err(e),
    }
}

fn require_admin(p: &PageAgent) -> Result<(), PageError> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only admins may do this").into())
    }
}

async fn hash(password: Password) -> Result<String, PageError> {
    Ok(web::block(move || hash_password(password.expose()))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|_| ApiError::Internal)?)
}

/// Profile form.
#[derive(Deserialize)]
pub struct ProfileForm {
    csrf: Option<String>,
    name: String,
    notify_sound: Option<String>,
    push_new_conversations: Option<String>,
    push_replies: Option<String>,
}

async fn save_profile(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    f: web::Form<ProfileForm>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    let r = async {
        let name = Name::parse(&f.name, "name")?.into_inner();
        let update = AgentUpdate {
            name: Some(name),
            notify_sound: Some(f.notify_sound.is_some()),
            push_new_conversations: Some(f.push_new_conversations.is_some()),
            push_replies: Some(f.push_replies.is_some()),
            ..AgentUpdate::default()
        };
        state
            .store
            .update_agent(p.agent.id, update, time::now())
            .await?;
        Ok(())
    }
    .await;
    outcome(&state, &p, "profile", r).await
}

/// Password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: Option<String>,
    current_password: String,
    new_password: String,
}

async fn change_password(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    f: web::Form<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    let f = f.into_inner();
    let new = match Password::parse(f.new_password) {
        Ok(n) => n,
        Err(e) => return outcome(&state, &p, "profile", Err(e.into())).await,
    };
    let stored = p.agent.password_hash.clone();
    let current = f.current_password;
    let ok = web::block(move || verify_password(&stored, &current))
        .await
        .map_err(|_| ApiError::Internal)?;
    if !ok {
        return outcome(
            &state,
            &p,
            "profile",
            Err(ApiError::Forbidden("the current password is wrong").into()),
        )
        .await;
    }
    let h = hash(new).await?;
    // Ends every session and token, this one included; then a new session
    // keeps this browser signed in.
    state
        .store
        .set_agent_password(p.agent.id, h, time::now())
        .await?;
    let (token, _) = crate::web::session::issue_agent_token(&state, p.agent.id, "nas_").await?;
    let ttl = state.config.token_ttl_secs;
    Ok(HttpResponse::SeeOther()
        .cookie(session_cookie(
            &token,
            state.config.base_url.starts_with("https://"),
            ttl,
        ))
        .insert_header((header::LOCATION, "/settings/profile?saved=1"))
        .finish())
}

/// New agent form.
#[derive(Deserialize)]
pub struct AgentForm {
    csrf: Option<String>,
    name: String,
    email: String,
    role: String,
    password: String,
}

async fn create_agent(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    f: web::Form<AgentForm>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    require_admin(&p)?;
    let f = f.into_inner();
    let r = async {
        let name = Name::parse(&f.name, "name")?.into_inner();
        let email = Email::parse(&f.email)?.into_inner();
        let role = Role::parse(&f.role)?;
        let h = hash(Password::parse(f.password)?).await?;
        state
            .store
            .create_agent(name, email, role, h, time::now())
            .await?;
        Ok(())
    }
    .await;
    outcome(&state, &p, "agents", r).await
}

/// Role / activation form.
#[derive(Deserialize)]
pub struct AgentChangeForm {
    csrf: Option<String>,
    role: Option<String>,
    active: Option<String>,
}

async fn update_agent(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    f: web::Form<AgentChangeForm>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    require_admin(&p)?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let r = async {
        let role = f.role.as_deref().map(Role::parse).transpose()?;
        let active = f.active.as_deref().map(|a| a == "true");
        if id == p.agent.id && (active == Some(false) || role == Some(Role::Agent)) {
            return Err(Invalid::new("active", "you cannot deactivate or demote yourself").into());
        }
        state
            .store
            .update_agent(
                id,
                AgentUpdate {
                    role,
                    active,
                    ..AgentUpdate::default()
                },
                time::now(),
            )
            .await?;
        Ok(())
    }
    .await;
    outcome(&state, &p, "agents", r).await
}

/// New inbox form.
#[derive(Deserialize)]
pub struct InboxForm {
    csrf: Option<String>,
    name: String,
    greeting: Option<String>,
    reply_time: Option<String>,
    accent_color: Option<String>,
}

async fn create_inbox(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    f: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, form_value(&f, "csrf"))?;
    require_admin(&p)?;
    let r = async {
        let name = Name::parse(form_value(&f, "name").unwrap_or(""), "name")?.into_inner();
        let channel =
            form_value(&f, "channel").unwrap_or(crate::channels::ChannelKind::Web.as_str());
        let settings = settings_from_form(&f);
        crate::web::api::inboxes::create_inbox(&state, name, channel, None, Some(&settings))
            .await?;
        Ok(())
    }
    .await;
    outcome(&state, &p, "inboxes", r).await
}

/// Saves a channel's settings (blank secrets keep their value).
async fn save_channel(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    f: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, form_value(&f, "csrf"))?;
    require_admin(&p)?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let r = async {
        crate::web::api::inboxes::update_settings(&state, id, &settings_from_form(&f)).await?;
        Ok(())
    }
    .await;
    outcome(&state, &p, "inboxes", r).await
}

/// "Test connection": the provider's answer, shown on the page.
async fn test_channel(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    f: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    require_admin(&p)?;
    let inbox = state
        .store
        .inbox(parse_id(&path).ok_or(ApiError::NotFound)?)?
        .ok_or(ApiError::NotFound)?;
    let v = crate::web::api::inboxes::check_connection(&state, &inbox).await;
    let text = format!("{}: {}", inbox.name, v["message"].as_str().unwrap_or(""));
    let (notice, error) = if v["ok"] == true {
        (Some(text), None)
    } else {
        (None, Some(text))
    };
    Ok(html(render(&page(&state, &p, "inboxes", notice, error)?)?))
}

fn color(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(c)
            if c.len() == 7
                && c.starts_with('#')
                && c[1..].chars().all(|x| x.is_ascii_hexdigit()) =>
        {
            Ok(Some(c.to_lowercase()))
        }
        Some(_) => Err(Invalid::new(
            "accent_color",
            "accent colour must look like #2563eb",
        )),
    }
}

async fn update_inbox(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    f: web::Form<InboxForm>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    require_admin(&p)?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let r = async {
        let name = Name::parse(&f.name, "name")?.into_inner();
        let greeting = f
            .greeting
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned);
        if greeting.as_ref().is_some_and(|g| g.chars().count() > 500) {
            return Err(Invalid::new("greeting", "greeting must be at most 500 characters").into());
        }
        let accent = color(f.accent_color.as_deref())?;
        let reply_time = f
            .reply_time
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(|g| g.chars().take(200).collect::<String>());
        state
            .store
            .update_inbox(id, time::now(), |i| {
                i.name = name.clone();
                i.greeting = greeting.clone();
                i.accent_color = accent.clone();
                i.reply_time = reply_time.clone();
            })
            .await?;
        Ok(())
    }
    .await;
    outcome(&state, &p, "inboxes", r).await
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

async fn rotate_secret(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    f: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    require_admin(&p)?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let secret = random_string(32);
    state
        .store
        .update_inbox(id, time::now(), |i| i.hmac_secret = secret.clone())
        .await?;
    Ok(redirect("/settings/inboxes?saved=1"))
}

/// Add-member form.
#[derive(Deserialize)]
pub struct MemberForm {
    csrf: Option<String>,
    agent_id: String,
}

async fn add_member(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    f: web::Form<MemberForm>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    require_admin(&p)?;
    let inbox = parse_id(&path).ok_or(ApiError::NotFound)?;
    let r = async {
        let agent =
            parse_id(&f.agent_id).ok_or_else(|| Invalid::new("agent_id", "no such agent"))?;
        state.store.add_member(inbox, agent, time::now()).await?;
        Ok(())
    }
    .await;
    outcome(&state, &p, "inboxes", r).await
}

async fn remove_member(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    f: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    require_admin(&p)?;
    let inbox = parse_id(&path.0).ok_or(ApiError::NotFound)?;
    let agent = parse_id(&path.1).ok_or(ApiError::NotFound)?;
    state.store.remove_member(inbox, agent, time::now()).await?;
    Ok(redirect("/settings/inboxes?saved=1"))
}

/// Canned response form.
#[derive(Deserialize)]
pub struct CannedForm {
    csrf: Option<String>,
    shortcut: String,
    text: String,
}

fn canned_fields(f: &CannedForm) -> Result<(String, String), Invalid> {
    // Shortcuts follow the label rules: one lower-case word.
    let shortcut = Label::parse(f.shortcut.trim().trim_start_matches('/'))
        .map_err(|_| {
            Invalid::new(
                "shortcut",
                "a shortcut is one word: letters, digits, '-' or '_'",
            )
        })?
        .into_inner();
    let text = f.text.trim().to_owned();
    if text.is_empty() || text.chars().count() > 5000 {
        return Err(Invalid::new(
            "text",
            "the text must be 1 to 5,000 characters",
        ));
    }
    Ok((shortcut, text))
}

async fn create_canned(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    f: web::Form<CannedForm>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    require_admin(&p)?;
    let r = async {
        let (s, t) = canned_fields(&f)?;
        state
            .store
            .put_canned(0, s, t, time::now())
            .await
            .map_err(conflict)?;
        Ok(())
    }
    .await;
    outcome(&state, &p, "canned", r).await
}

fn conflict(e: StoreError) -> PageError {
    PageError::Api(e.into())
}

async fn update_canned(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    f: web::Form<CannedForm>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    require_admin(&p)?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let r = async {
        let (s, t) = canned_fields(&f)?;
        state
            .store
            .put_canned(id, s, t, time::now())
            .await
            .map_err(conflict)?;
        Ok(())
    }
    .await;
    outcome(&state, &p, "canned", r).await
}

async fn delete_canned(
    state: web::Data<AppState>,
    p: PageAgent,
    req: HttpRequest,
    path: web::Path<String>,
    f: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    p.check_csrf(&req, f.csrf.as_deref())?;
    require_admin(&p)?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    state.store.delete_canned(id, time::now()).await?;
    Ok(redirect("/settings/canned?saved=1"))
}
