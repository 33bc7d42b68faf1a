//! Inboxes and their members.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::contract as views;
use crate::domain::{format_id, time, Invalid, Name};
use crate::error::{ApiError, ApiResult};
use crate::service::auth::random_string;
use crate::store::InboxRecord;
use crate::web::extract::{path_id, AgentAuth, ApiJson};
use crate::web::AppState;

/// `POST /inboxes` body.
#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    channel: Option<String>,
    greeting: Option<String>,
    #[serde(default)]
    settings: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A channel's adapter (none for `web`) and its checked settings.
type ChannelSetup = (
    Option<&'static dyn crate::channels::Channel>,
    serde_json::Map<String, serde_json::Value>,
);

/// Checks a channel name and its settings; gives the adapter (none for
/// `web`) and the settings to store.
fn channel_settings(
    state: &AppState,
    channel: &str,
    given: Option<&serde_json::Map<String, serde_json::Value>>,
    previous: Option<&serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<ChannelSetup> {
    let empty = serde_json::Map::new();
    let given = given.unwrap_or(&empty);
    if crate::channels::ChannelKind::parse(channel) == Some(crate::channels::ChannelKind::Web) {
        if !given.is_empty() {
            return Err(Invalid::new("settings", "the web channel takes no settings").into());
        }
        return Ok((None, serde_json::Map::new()));
    }
    let Some(adapter) = crate::channels::by_name(channel) else {
        return Err(Invalid::new(
            "channel",
            format!(
                "channel {channel:?} is not available; use one of {:?}",
                crate::channels::names()
            ),
        )
        .into());
    };
    let settings = crate::channels::settings::validate(
        adapter.settings(),
        given,
        previous,
        state.http.allow_private,
    )?;
    adapter.check_settings(&settings)?;
    Ok((Some(adapter), settings))
}

/// A fresh web inbox record (also used for the first-run "Website").
pub fn new_web_inbox(name: String, greeting: Option<String>) -> InboxRecord {
    InboxRecord {
        id: 0,
        name,
        channel: crate::channels::ChannelKind::Web.as_str().into(),
        widget_key: random_string(16),
        hmac_secret: random_string(32),
        greeting,
        accent_color: None,
        reply_time: None,
        created_at: 0,
        settings: Default::default(),
        api_token: None,
        webhook_secret: None,
    }
}

/// The inbox if the agent may see it, else 404.
pub fn visible_inbox(state: &AppState, auth: &AgentAuth, id: u64) -> ApiResult<InboxRecord> {
    let inbox = state.store.inbox(id)?.ok_or(ApiError::NotFound)?;
    if auth.is_admin() || state.store.is_member(id, auth.agent.id)? {
        Ok(inbox)
    } else {
        Err(ApiError::NotFound)
    }
}

/// The inbox ids an agent may see.
pub fn visible_inbox_ids(state: &AppState, auth: &AgentAuth) -> ApiResult<Vec<u64>> {
    Ok(
        crate::service::access::visible_inboxes(&state.store, &auth.agent)?
            .iter()
            .map(|i| i.id)
            .collect(),
    )
}

/// Admins: every inbox; agents: those they are members of.
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let out: Vec<_> = crate::service::access::visible_inboxes(&state.store, &auth.agent)?
        .iter()
        .map(|i| views::inbox_at(i, auth.is_admin(), &state.config.base_url))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "inboxes": out })))
}

/// Creates an inbox (admins).
pub async fn create(
    state: web::Data<AppState>,
    auth: AgentAuth,
    body: ApiJson<CreateBody>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let ApiJson(b) = body;
    let name = Name::parse(&b.name, "name")?.into_inner();
    let channel = b
        .channel
        .unwrap_or_else(|| crate::channels::ChannelKind::Web.as_str().into());
    let greeting = match b.greeting.as_deref().map(str::trim) {
        Some(g) if g.chars().count() > 500 => {
            return Err(Invalid::new("greeting", "greeting must be at most 500 characters").into())
        }
        Some("") | None => None,
        Some(g) => Some(g.to_owned()),
    };
    let (inbox, connection) =
        create_inbox(&state, name, &channel, greeting, b.settings.as_ref()).await?;
    let mut v = views::inbox_at(&inbox, true, &state.config.base_url);
    if let Some(c) = connection {
        v["connection"] = c;
    }
    Ok(HttpResponse::Created().json(v))
}

/// Creates an inbox of any channel (the API and the settings page): checks
/// the settings, generates the channel's tokens, starts following an email
/// mailbox, and registers Telegram's webhook (whose outcome it returns).
pub async fn create_inbox(
    state: &AppState,
    name: String,
    channel: &str,
    greeting: Option<String>,
    settings: Option<&serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<(InboxRecord, Option<serde_json::Value>)> {
    let (adapter, settings) = channel_settings(state, channel, settings, None)?;
    let mut rec = new_web_inbox(name, greeting);
    rec.channel = channel.to_owned();
    rec.settings = settings;
    if adapter.is_some() {
        rec.webhook_secret = Some(crate::service::webhooks::new_secret_token());
    }
    if crate::channels::ChannelKind::of(channel).has_api_token() {
        rec.api_token = Some(format!("nai_{}", random_string(24)));
        rec.webhook_secret = Some(crate::service::webhooks::new_secret());
    }
    let inbox = state.store.create_inbox(rec, time::now()).await?;
    let mut connection = None;
    if crate::channels::ChannelKind::of(&inbox.channel).follows_a_mailbox() {
        // Start from the mailbox as it is now, then follow it.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            state.mailboxes.remember_current_state(&inbox),
        )
        .await;
        state.mailboxes.restart(&inbox);
    }
    // Telegram learns its webhook URL and secret now.
    if let Some(a) = adapter.filter(|a| a.sets_its_webhook_on_connect()) {
        connection = Some(
            match a.connect(&state.http, &inbox, &state.config.base_url).await {
                Ok(m) => json!({"ok": true, "message": m}),
                Err(e) => json!({"ok": false, "message": e.to_string()}),
            },
        );
    }
    Ok((inbox, connection))
}

/// Replaces an inbox's channel settings; values not given keep theirs.
pub async fn update_settings(
    state: &AppState,
    id: u64,
    given: &serde_json::Map<String, serde_json::Value>,
) -> ApiResult<InboxRecord> {
    let old = state.store.inbox(id)?.ok_or(ApiError::NotFound)?;
    let (_, settings) = channel_settings(state, &old.channel, Some(given), Some(&old.settings))?;
    let inbox = state
        .store
        .update_inbox(id, time::now(), |i| i.settings = settings.clone())
        .await?;
    if crate::channels::ChannelKind::of(&inbox.channel).follows_a_mailbox() {
        state.mailboxes.restart(&inbox);
    }
    Ok(inbox)
}

/// "Test connection": what the provider says of the credentials.
pub async fn check_connection(state: &AppState, inbox: &InboxRecord) -> serde_json::Value {
    match crate::channels::by_name(&inbox.channel) {
        None => json!({"ok": true, "message": "a web inbox needs no connection"}),
        Some(a) => match a.connect(&state.http, inbox, &state.config.base_url).await {
            Ok(m) => json!({"ok": true, "message": m}),
            Err(e) => json!({"ok": false, "message": e.to_string()}),
        },
    }
}

/// `PATCH /inboxes/{id}` body.
#[derive(Deserialize)]
pub struct UpdateBody {
    name: Option<String>,
    greeting: Option<String>,
    #[serde(default)]
    settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// A new identity secret. Giving two inboxes the same one is how an
    /// admin says their websites share one login: a user id verified on
    /// one is then the same person on the other (never otherwise).
    hmac_secret: Option<String>,
}

/// Changes an inbox's name, greeting, channel settings or identity secret
/// (admins).
/// Settings not given keep their value, so secrets need not be retyped.
pub async fn update(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<UpdateBody>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let id = path_id(&path)?;
    let old = state.store.inbox(id)?.ok_or(ApiError::NotFound)?;
    let b = body.0;
    let name = b
        .name
        .as_deref()
        .map(|n| Name::parse(n, "name"))
        .transpose()?
        .map(Name::into_inner);
    let settings = match &b.settings {
        Some(s) => Some(channel_settings(&state, &old.channel, Some(s), Some(&old.settings))?.1),
        None => None,
    };
    let hmac_secret = b.hmac_secret.map(|h| h.trim().to_owned());
    if hmac_secret.as_ref().is_some_and(|h| {
        !(16..=256).contains(&h.chars().count()) || h.chars().any(char::is_control)
    }) {
        return Err(Invalid::new("hmac_secret", "hmac_secret must be 16 to 256 characters").into());
    }
    let greeting = b.greeting.map(|g| g.trim().to_owned());
    if greeting.as_ref().is_some_and(|g| g.chars().count() > 500) {
        return Err(Invalid::new("greeting", "greeting must be at most 500 characters").into());
    }
    let inbox = state
        .store
        .update_inbox(id, time::now(), |i| {
            if let Some(n) = &name {
                i.name = n.clone();
            }
            if let Some(s) = &settings {
                i.settings = s.clone();
            }
            if let Some(g) = &greeting {
                i.greeting = (!g.is_empty()).then(|| g.clone());
            }
            if let Some(h) = &hmac_secret {
                i.hmac_secret = h.clone();
            }
        })
        .await?;
    if crate::channels::ChannelKind::of(&inbox.channel).follows_a_mailbox() && settings.is_some() {
        state.mailboxes.restart(&inbox);
    }
    Ok(HttpResponse::Ok().json(views::inbox_at(&inbox, true, &state.config.base_url)))
}

/// "Test connection": asks the provider whether the credentials work
/// (and for Telegram registers the webhook again).
pub async fn test_connection(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let inbox = state
        .store
        .inbox(path_id(&path)?)?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(check_connection(&state, &inbox).await))
}

/// One inbox, if visible.
pub async fn get(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let inbox = visible_inbox(&state, &auth, path_id(&path)?)?;
    Ok(HttpResponse::Ok().json(views::inbox_at(
        &inbox,
        auth.is_admin(),
        &state.config.base_url,
    )))
}

/// The members of a visible inbox.
pub async fn members(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let inbox = visible_inbox(&state, &auth, path_id(&path)?)?;
    let mut out = Vec::new();
    for id in state.store.members(inbox.id)? {
        if let Some(a) = state.store.agent(id)? {
            out.push(views::agent(&a));
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "members": out })))
}

/// `POST /inboxes/{id}/members` body.
#[derive(Deserialize)]
pub struct MemberBody {
    agent_id: String,
}

/// Adds an agent to an inbox (admins): 201 when added, 200 when it
/// already was a member.
pub async fn add_member(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
    body: ApiJson<MemberBody>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let inbox = path_id(&path)?;
    let agent = crate::domain::parse_id(&body.0.agent_id)
        .ok_or_else(|| Invalid::new("agent_id", "no such agent"))?;
    let fresh = state.store.add_member(inbox, agent, time::now()).await?;
    let body = json!({"inbox_id": format_id(inbox), "agent_id": format_id(agent)});
    Ok(if fresh {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// Removes an agent from an inbox (admins).
pub async fn remove_member(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    auth.require_admin()?;
    let (inbox, agent) = (path_id(&path.0)?, path_id(&path.1)?);
    if state.store.remove_member(inbox, agent, time::now()).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
