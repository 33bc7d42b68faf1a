//! Settings pages: the agent's own profile and password; for admins,
//! agents, inboxes (snippet, identity secret, members) and canned
//! responses. Plain forms with the CSRF token as a field, checked (with
//! the admin requirement) by the [`AdminForm`] and [`AgentForm`]
//! extractors; the rules are the services' (the same the API follows).
//! Every change redirects back with a notice.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{html, render};
use crate::domain::{format_id, parse_id, Invalid};
use crate::error::ApiError;
use crate::service::agents::{AgentChange, NewAgent, ProfileChange};
use crate::service::inboxes::{InboxChange, NewInbox};
use crate::service::password_links::NewInvite;
use crate::service::settings::CannedInput;
use crate::store::CannedRecord;
use crate::web::session::{session_cookie, AdminForm, AgentForm, CsrfField, PageAgent, PageError};
use crate::web::AppState;

/// Registers the settings routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/settings",
        web::get().to(|| async { redirect("/settings/profile") }),
    )
    .route("/settings/{section}", web::get().to(show))
    .route("/settings/inboxes/{id}", web::get().to(show_inbox))
    .route("/settings/profile", web::post().to(save_profile))
    .route("/settings/password", web::post().to(change_password))
    .route("/settings/agents", web::post().to(create_agent))
    .route("/settings/agents/{id}", web::post().to(update_agent))
    .route("/settings/agents/{id}/link", web::post().to(agent_link))
    .route("/settings/inboxes", web::post().to(create_inbox))
    .route("/settings/inboxes/{id}", web::post().to(update_inbox))
    .route(
        "/settings/inboxes/{id}/rotate-secret",
        web::post().to(rotate_secret),
    )
    .route("/settings/inboxes/{id}/members", web::post().to(add_member))
    .route(
        "/settings/inboxes/{id}/assignment",
        web::post().to(save_assignment),
    )
    .route("/settings/inboxes/{id}/hours", web::post().to(save_hours))
    .route("/settings/inboxes/{id}/sla", web::post().to(save_sla))
    .route(
        "/settings/inboxes/{id}/channel",
        web::post().to(save_channel),
    )
    .route("/settings/inboxes/{id}/test", web::post().to(test_channel))
    .route(
        "/settings/inboxes/{id}/members/{agent}/remove",
        web::post().to(remove_member),
    )
    .route("/settings/teams", web::post().to(create_team))
    .route("/settings/teams/{id}", web::post().to(update_team))
    .route("/settings/teams/{id}/delete", web::post().to(delete_team))
    .route("/settings/backups", web::post().to(create_backup))
    .route(
        "/settings/backups/{name}/download",
        web::get().to(download_backup),
    )
    .route(
        "/settings/backups/{name}/delete",
        web::post().to(delete_backup),
    )
    .route("/settings/webhooks/{id}", web::get().to(show_webhook))
    .route("/settings/webhooks", web::post().to(create_webhook))
    .route(
        "/settings/webhooks/{id}/delete",
        web::post().to(delete_webhook),
    )
    .route(
        "/settings/webhooks/{id}/retry",
        web::post().to(retry_webhook),
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
    /// `online`, `busy` or `offline` now.
    availability: &'static str,
    /// Invited, no password chosen yet.
    invited: bool,
    /// Open conversations auto-assignment may give them.
    capacity: u32,
}

/// A password link just made, shown once on the agents page.
pub struct LinkShown {
    name: String,
    email: String,
    url: String,
    /// An invitation (else a reset link).
    invite: bool,
    /// Why it was not mailed; `None` once it was.
    not_mailed: Option<String>,
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
    advanced_fields: Vec<SettingField>,
}

/// The fields of a channel, filled from stored settings (secrets never).
fn setting_fields<'a>(
    spec: impl Iterator<Item = &'a crate::channels::Setting>,
    stored: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Vec<SettingField> {
    spec.map(|s| {
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

/// An inbox: a row of the inbox list, or the whole of its own page.
pub struct InboxCard {
    id: String,
    name: String,
    channel: String,
    channel_label: &'static str,
    channel_icon: &'static str,
    /// The built-in messenger: it alone has a greeting, a look, a snippet
    /// and an identity secret.
    is_web: bool,
    webhook_url: String,
    /// Natter registers the webhook with the provider itself (Telegram):
    /// nothing to paste anywhere.
    own_hook: bool,
    /// Generated values the admin copies (tokens, URLs).
    shown: Vec<(&'static str, String)>,
    fields: Vec<SettingField>,
    /// Developer settings with right defaults, folded under "Advanced".
    advanced_fields: Vec<SettingField>,
    greeting: String,
    reply_time: String,
    accent_color: String,
    prechat: &'static str,
    snippet: String,
    hmac_secret: String,
    /// Members: (id, name, availability now).
    members: Vec<(String, String, &'static str)>,
    non_members: Vec<(String, String, &'static str)>,
    /// Auto-assignment: the mode's contract name, the team's id (empty:
    /// any member) and how many conversations wait for someone with room.
    assignment_mode: &'static str,
    assignment_team: String,
    queued: usize,
    /// Business hours: whether set, the zone, each day (key, name, its
    /// openings as `09:00-17:30, ...`), holidays, the out-of-office text
    /// and whether resolutions ask for a rating.
    hours_on: bool,
    hours_zone: String,
    hours_days: Vec<(&'static str, &'static str, String)>,
    holidays: String,
    out_of_office: String,
    csat: bool,
    /// SLA targets in minutes (empty: none), and whether they count
    /// business hours only.
    sla_first: String,
    sla_next: String,
    sla_resolution: String,
    sla_business_hours: bool,
}

/// The days of the hours form, Monday first.
const DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A day's openings as the form shows them: `09:00-12:00, 13:00-17:30`.
fn spans_text(v: &serde_json::Value) -> String {
    v.as_array()
        .map(|spans| {
            spans
                .iter()
                .filter_map(|s| Some(format!("{}-{}", s.get(0)?.as_str()?, s.get(1)?.as_str()?)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// A team on the teams page: its agents as a checklist of every active
/// agent (id, name, availability now, whether in the team).
pub struct TeamRow {
    id: String,
    name: String,
    agents: Vec<(String, String, &'static str, bool)>,
}

/// An outbound webhook subscription, as the webhooks page lists it.
pub struct WebhookRow {
    id: String,
    url: String,
    events: String,
    /// Its receiver answered 410 Gone: nothing is delivered any more.
    disabled: bool,
    created_iso: String,
    created_text: String,
}

/// A backup on the backups page.
pub struct BackupRow {
    name: String,
    size: String,
    scheduled: bool,
    created_iso: String,
    created_text: String,
}

/// A size for people: `812 KB`, `3.4 MB`, `1.2 GB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

/// One delivery attempt on a webhook's page.
pub struct DeliveryRow {
    event: String,
    event_id: String,
    attempt: u32,
    /// The receiver's status code, or "-" when there was no answer.
    status: String,
    ok: bool,
    error: String,
    at_iso: String,
    at_text: String,
    /// The newest attempt of its event, and a failed one: "Retry" is
    /// offered here (once per event).
    retry: bool,
}

/// Preset accent colours offered next to the colour picker.
const SWATCHES: [&str; 8] = [
    "#2563eb", "#7c3aed", "#db2777", "#dc2626", "#ea580c", "#16a34a", "#0d9488", "#111827",
];

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    csrf: String,
    agent_id: String,
    agent_name: String,
    admin: bool,
    sound: bool,
    /// What the agent set in the header's availability control.
    availability: &'static str,
    timezone: String,
    /// Every zone name, for the profile's picker, and whether it is the
    /// agent's.
    zones: Vec<(&'static str, bool)>,
    push_new: bool,
    push_replies: bool,
    search_q: String,
    section: String,
    notice: Option<String>,
    error: Option<String>,
    /// Admins are told when natter cannot send mail at all.
    mail_warning: bool,
    /// An agent (id, name) whose deactivation waits for a confirmation.
    confirm_deactivate: Option<(String, String)>,
    /// A link just made for an agent (an invitation or a reset).
    link_shown: Option<LinkShown>,
    agents: Vec<AgentRow>,
    /// Every inbox on the list page; on an inbox's own page, that one.
    inboxes: Vec<InboxCard>,
    /// One inbox's own page (`/settings/inboxes/{id}`).
    inbox_page: bool,
    /// The public base URL, and whether it reaches only this machine (the
    /// inbox pages then warn that providers and visitors cannot reach it).
    base_url: String,
    base_url_local: bool,
    swatches: [&'static str; 8],
    /// Teams, and every active agent for a new team's checklist.
    teams: Vec<TeamRow>,
    team_candidates: Vec<(String, String, &'static str)>,
    /// The teams an inbox's assignment may be limited to: (id, name).
    team_options: Vec<(String, String)>,
    /// Outbound webhooks (the list page), or the one whose page this is.
    webhooks: Vec<WebhookRow>,
    /// Its delivery log, newest first (on a webhook's own page).
    deliveries: Vec<DeliveryRow>,
    webhook_page: bool,
    /// The events a webhook can ask for.
    webhook_events: &'static [&'static str],
    /// A subscription just made, with its secret, shown this once.
    webhook_secret: Option<(String, String)>,
    channel_forms: Vec<ChannelForm>,
    canned: Vec<CannedRecord>,
    /// The backups page: its files, newest first, and the schedule in words.
    backups: Vec<BackupRow>,
    backup_schedule: String,
    backup_dir: String,
}

/// `?saved=` / `?created=` notice.
#[derive(Deserialize)]
pub struct NoticeQuery {
    saved: Option<String>,
    created: Option<String>,
    retried: Option<String>,
}

impl NoticeQuery {
    fn notice(&self) -> Option<String> {
        if self.created.is_some() {
            Some("Inbox created.".to_owned())
        } else if self.retried.is_some() {
            Some("Delivering it again now; its new attempt shows below.".to_owned())
        } else {
            self.saved.as_ref().map(|_| "Saved.".to_owned())
        }
    }
}

fn page(
    state: &AppState,
    p: &PageAgent,
    section: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Result<SettingsPage, PageError> {
    let admin = p.is_admin();
    // `inboxes/{id}` is one inbox's page, under the Inboxes tab.
    // `webhooks/{id}` is one webhook's delivery log.
    let (section, one_inbox, one_webhook) = match section.split_once('/') {
        Some(("inboxes", id)) => (
            "inboxes",
            Some(parse_id::<crate::domain::ids::InboxId>(id).ok_or(ApiError::NotFound)?),
            None,
        ),
        Some(("webhooks", id)) => (
            "webhooks",
            None,
            Some(parse_id::<crate::domain::ids::WebhookId>(id).ok_or(ApiError::NotFound)?),
        ),
        Some(_) => return Err(ApiError::NotFound.into()),
        None => (section, None, None),
    };
    let allowed = matches!(section, "profile" | "canned")
        || (admin
            && matches!(
                section,
                "agents" | "teams" | "inboxes" | "webhooks" | "backups"
            ));
    if !allowed {
        return Err(ApiError::NotFound.into());
    }
    let agents_all = state.svc.agents()?;
    let agents = if section == "agents" {
        agents_all
            .iter()
            .map(|a| AgentRow {
                id: format_id(a.id),
                name: a.name.clone(),
                email: a.email.clone(),
                role: a.role.as_str(),
                capacity: a.capacity,
                active: a.active,
                availability: state.svc.availability_of(a).as_str(),
                invited: a.invited(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut inboxes = Vec::new();
    if section == "inboxes" {
        let all = state.svc.visible_inboxes(&p.agent)?;
        if let Some(id) = one_inbox {
            if !all.iter().any(|i| i.id == id) {
                return Err(ApiError::NotFound.into());
            }
        }
        for i in all
            .into_iter()
            .filter(|i| one_inbox.is_none_or(|id| i.id == id))
        {
            let member_ids = state.svc.member_ids(i.id)?;
            let pick = |want: bool| {
                agents_all
                    .iter()
                    .filter(|a| member_ids.contains(&a.id) == want && a.active)
                    .map(|a| {
                        (
                            format_id(a.id),
                            a.name.clone(),
                            state.svc.availability_of(a).as_str(),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            let adapter = crate::channels::by_name(&i.channel);
            let (channel_label, channel_icon) = crate::channels::label(&i.channel);
            let v = crate::contract::Inbox::at(&i, true, &state.config.base_url);
            let mut shown = Vec::new();
            // A channel that sets its own webhook on connect needs no
            // signing secret pasted anywhere.
            let own_hook =
                crate::channels::ChannelKind::of(&i.channel).sets_its_webhook_on_connect();
            let (advanced_fields, fields): (Vec<_>, Vec<_>) = adapter
                .map_or(&[][..], |a| a.settings())
                .iter()
                .partition(|s| s.advanced);
            let stored = Some(&i.settings);
            for (t, label) in [
                (&v.api_url, "API URL"),
                (&v.api_token, "API token"),
                (
                    if own_hook { &None } else { &v.webhook_secret },
                    "Signing secret",
                ),
            ] {
                if let Some(t) = t {
                    shown.push((label, t.clone()));
                }
            }
            inboxes.push(InboxCard {
                channel_label,
                channel_icon,
                is_web: adapter.is_none(),
                webhook_url: v.webhook_url.clone().unwrap_or_default(),
                own_hook,
                shown,
                fields: setting_fields(fields.into_iter(), stored),
                advanced_fields: setting_fields(advanced_fields.into_iter(), stored),
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
                prechat: i.prechat.as_str(),
                hours_on: i.business_hours.is_some(),
                hours_zone: i
                    .business_hours
                    .as_ref()
                    .map(|h| h.timezone.clone())
                    .unwrap_or_else(|| {
                        p.agent.timezone.clone().unwrap_or_else(|| "UTC".to_owned())
                    }),
                hours_days: {
                    let json = i.business_hours.as_ref().map(|h| h.to_json());
                    crate::domain::hours::DAYS
                        .iter()
                        .zip(DAY_NAMES)
                        .map(|(key, name)| {
                            let text = match &json {
                                Some(j) => spans_text(&j["week"][*key]),
                                // A first suggestion: weekdays 9 to 5.
                                None if *key != "sat" && *key != "sun" => "09:00-17:00".to_owned(),
                                None => String::new(),
                            };
                            (*key, name, text)
                        })
                        .collect()
                },
                holidays: i
                    .business_hours
                    .as_ref()
                    .map(|h| {
                        h.holidays
                            .iter()
                            .map(|d| d.format("%Y-%m-%d").to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
                out_of_office: i.out_of_office.clone().unwrap_or_default(),
                csat: i.csat,
                sla_first: i
                    .sla
                    .and_then(|s| s.first_response_minutes)
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                sla_next: i
                    .sla
                    .and_then(|s| s.next_response_minutes)
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                sla_resolution: i
                    .sla
                    .and_then(|s| s.resolution_minutes)
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                sla_business_hours: i.sla.is_some_and(|s| s.business_hours),
                assignment_mode: i.assignment.mode.as_str(),
                assignment_team: i.assignment.team_id.map(format_id).unwrap_or_default(),
                queued: if one_inbox.is_some() {
                    state.svc.waiting_for_assignment(i.id)?
                } else {
                    0
                },
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
                    fields: setting_fields(c.settings().iter().filter(|s| !s.advanced), None),
                    advanced_fields: setting_fields(
                        c.settings().iter().filter(|s| s.advanced),
                        None,
                    ),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut webhooks = Vec::new();
    let mut deliveries = Vec::new();
    if section == "webhooks" {
        for w in state.svc.webhooks(&p.agent)? {
            if one_webhook.is_some_and(|id| id != w.id) {
                continue;
            }
            webhooks.push(WebhookRow {
                id: format_id(w.id),
                url: w.url,
                events: w.events.join(", "),
                disabled: w.disabled,
                created_iso: crate::domain::time::rfc3339(w.created_at),
                created_text: super::view::human_utc(w.created_at),
            });
        }
        if let Some(id) = one_webhook {
            if webhooks.is_empty() {
                return Err(ApiError::NotFound.into());
            }
            let mut seen = std::collections::HashSet::new();
            for a in state.svc.webhook_deliveries(&p.agent, id)? {
                let ok = a.status_code.is_some_and(|c| (200..300).contains(&c));
                // Newest first: the first row of an event is its latest try.
                let newest = seen.insert(a.event_id);
                deliveries.push(DeliveryRow {
                    event: a.event,
                    event_id: a.event_id.to_string(),
                    attempt: a.attempt,
                    status: a
                        .status_code
                        .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    ok,
                    error: a.error.unwrap_or_default(),
                    at_iso: crate::domain::time::rfc3339(a.at),
                    at_text: super::view::human_utc(a.at),
                    retry: newest && !ok,
                });
            }
        }
    }
    let mut teams = Vec::new();
    let mut team_candidates = Vec::new();
    // An inbox's page offers its assignment's teams.
    let team_options: Vec<(String, String)> = if one_inbox.is_some() {
        state
            .svc
            .teams()?
            .into_iter()
            .map(|t| (format_id(t.id), t.name))
            .collect()
    } else {
        Vec::new()
    };
    if section == "teams" {
        let active: Vec<_> = agents_all.iter().filter(|a| a.active).collect();
        team_candidates = active
            .iter()
            .map(|a| {
                (
                    format_id(a.id),
                    a.name.clone(),
                    state.svc.availability_of(a).as_str(),
                )
            })
            .collect();
        for t in state.svc.teams()? {
            teams.push(TeamRow {
                id: format_id(t.id),
                name: t.name,
                agents: active
                    .iter()
                    .map(|a| {
                        (
                            format_id(a.id),
                            a.name.clone(),
                            state.svc.availability_of(a).as_str(),
                            t.agent_ids.contains(&a.id),
                        )
                    })
                    .collect(),
            });
        }
    }
    let backups = if section == "backups" {
        state
            .svc
            .backups(&p.agent)?
            .into_iter()
            .map(|b| BackupRow {
                size: human_bytes(b.bytes),
                scheduled: b.scheduled,
                created_iso: crate::domain::time::rfc3339(b.created_at),
                created_text: super::view::human_utc(b.created_at),
                name: b.name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let backup_schedule = match state.config.backup_every {
        None => "off".to_owned(),
        Some(every) => {
            let s = every.as_secs();
            let period = if s % 86_400 == 0 {
                format!("{} d", s / 86_400)
            } else if s % 3600 == 0 {
                format!("{} h", s / 3600)
            } else {
                format!("{} min", s / 60)
            };
            format!(
                "every {period}, keeping the newest {}",
                state.config.backup_keep
            )
        }
    };
    Ok(SettingsPage {
        backups,
        backup_schedule,
        backup_dir: state.config.backup_dir.display().to_string(),
        teams,
        team_candidates,
        team_options,
        webhooks,
        deliveries,
        webhook_page: one_webhook.is_some(),
        webhook_events: crate::service::webhooks::EVENTS,
        webhook_secret: None,
        channel_forms,
        csrf: p.csrf(),
        agent_id: format_id(p.agent.id),
        agent_name: p.agent.name.clone(),
        admin,
        sound: p.agent.notify_sound,
        availability: p.agent.availability.as_str(),
        timezone: p.agent.timezone.clone().unwrap_or_default(),
        zones: if section == "profile" || one_inbox.is_some() {
            crate::domain::time::Zone::names()
                .map(|z| (z, p.agent.timezone.as_deref() == Some(z)))
                .collect()
        } else {
            Vec::new()
        },
        push_new: p.agent.push_new_conversations,
        push_replies: p.agent.push_replies,
        search_q: String::new(),
        section: section.to_owned(),
        notice,
        error,
        mail_warning: admin && !state.svc.can_send_mail(),
        confirm_deactivate: None,
        link_shown: None,
        agents,
        inboxes,
        inbox_page: one_inbox.is_some(),
        base_url: state.config.base_url.clone(),
        base_url_local: state.config.base_url_is_local(),
        swatches: SWATCHES,
        canned: if section == "canned" {
            state.svc.canned_responses()?
        } else {
            Vec::new()
        },
    })
}

#[tracing::instrument(skip_all, fields(agent = %p.agent.id, section = %path))]
async fn show(
    state: web::Data<AppState>,
    p: PageAgent,
    path: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    shown(&state, &p, &path, &q)
}

/// A settings page as a GET shows it, with the notice its query asks for.
fn shown(
    state: &AppState,
    p: &PageAgent,
    section: &str,
    q: &NoticeQuery,
) -> Result<HttpResponse, PageError> {
    Ok(html(render(&page(state, p, section, q.notice(), None)?)?))
}

/// One inbox's settings page.
#[tracing::instrument(skip_all, fields(agent = %p.agent.id, inbox = %path))]
async fn show_inbox(
    state: web::Data<AppState>,
    p: PageAgent,
    path: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    shown(&state, &p, &format!("inboxes/{path}"), &q)
}

/// Runs a change; a refused value re-renders the section with the reason.
async fn outcome<T, E: Into<PageError>>(
    state: &AppState,
    p: &PageAgent,
    section: &str,
    r: Result<T, E>,
) -> Result<HttpResponse, PageError> {
    match r.map_err(Into::into) {
        Ok(_) => Ok(redirect(&format!("/settings/{section}?saved=1"))),
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

/// Implements [`CsrfField`] for forms with a `csrf: Option<String>` field.
macro_rules! csrf_field {
    ($($form:ty),* $(,)?) => {
        $(impl CsrfField for $form {
            fn csrf_field(&self) -> Option<&str> {
                self.csrf.as_deref()
            }
        })*
    };
}

csrf_field!(
    ProfileForm,
    PasswordForm,
    NewAgentForm,
    AgentChangeForm,
    InboxForm,
    CsrfOnly,
    MemberForm,
    CannedForm,
    RetryForm,
    AssignmentForm,
    HoursForm,
    SlaForm,
);

/// Profile form.
#[derive(Deserialize)]
pub struct ProfileForm {
    csrf: Option<String>,
    name: String,
    notify_sound: Option<String>,
    timezone: Option<String>,
    push_new_conversations: Option<String>,
    push_replies: Option<String>,
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id))]
async fn save_profile(
    state: web::Data<AppState>,
    f: AgentForm<ProfileForm>,
) -> Result<HttpResponse, PageError> {
    let AgentForm { page: p, form: f } = f;
    let change = ProfileChange {
        name: f.name,
        notify_sound: f.notify_sound.is_some(),
        timezone: f.timezone.filter(|z| !z.trim().is_empty()),
        push_new_conversations: f.push_new_conversations.is_some(),
        push_replies: f.push_replies.is_some(),
    };
    let r = state.svc.update_profile(&p.agent, change).await;
    outcome(&state, &p, "profile", r).await
}

/// Password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: Option<String>,
    current_password: String,
    new_password: String,
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id))]
async fn change_password(
    state: web::Data<AppState>,
    f: AgentForm<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let AgentForm { page: p, form: f } = f;
    // Every session and token ends, this one included; the new session
    // keeps this browser signed in.
    let issued = match state
        .svc
        .change_password(
            &p.agent,
            f.current_password,
            f.new_password,
            crate::service::sessions::CredentialKind::Session,
        )
        .await
    {
        Ok(issued) => issued,
        Err(e) => return outcome(&state, &p, "profile", Err::<(), _>(e)).await,
    };
    let ttl = state.config.token_ttl_secs;
    Ok(HttpResponse::SeeOther()
        .cookie(session_cookie(
            &issued.token,
            state.config.base_url.starts_with("https://"),
            ttl,
        ))
        .insert_header((header::LOCATION, "/settings/profile?saved=1"))
        .finish())
}

/// New agent form: without a password the agent is invited.
#[derive(Deserialize)]
pub struct NewAgentForm {
    csrf: Option<String>,
    name: String,
    email: String,
    role: String,
    password: Option<String>,
}

/// The agents page with a link just made for an agent, shown once (the
/// admin copies it when it could not be mailed).
fn with_link(
    state: &AppState,
    p: &PageAgent,
    link: crate::service::password_links::IssuedLink,
) -> Result<HttpResponse, PageError> {
    let mut pg = page(state, p, "agents", None, None)?;
    pg.link_shown = Some(LinkShown {
        invite: link.agent.invited(),
        name: link.agent.name,
        email: link.agent.email,
        url: link.url,
        not_mailed: link.mailed.err(),
    });
    Ok(html(render(&pg)?))
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id))]
async fn create_agent(
    state: web::Data<AppState>,
    f: AdminForm<NewAgentForm>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let password = f.password.filter(|pw| !pw.is_empty());
    let Some(password) = password else {
        let new = NewInvite {
            name: f.name,
            email: f.email,
            role: Some(f.role),
        };
        return match state.svc.invite_agent(&p.agent, new).await {
            Ok(link) => with_link(&state, &p, link),
            Err(e) => outcome(&state, &p, "agents", Err::<(), _>(e)).await,
        };
    };
    let new = NewAgent {
        name: f.name,
        email: f.email,
        role: Some(f.role),
        password,
    };
    let r = state.svc.create_agent(&p.agent, new).await;
    outcome(&state, &p, "agents", r).await
}

/// "Send the invitation again" / "Reset link": a fresh single-use link.
#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, id = %path))]
async fn agent_link(
    state: web::Data<AppState>,
    f: AdminForm<CsrfOnly>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let p = f.page;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    match state.svc.agent_link(&p.agent, id).await {
        Ok(link) => with_link(&state, &p, link),
        Err(e) => outcome(&state, &p, "agents", Err::<(), _>(e)).await,
    }
}

/// Role / activation form.
#[derive(Deserialize)]
pub struct AgentChangeForm {
    csrf: Option<String>,
    role: Option<String>,
    active: Option<String>,
    /// Open conversations auto-assignment may give (0 to 1000).
    capacity: Option<String>,
    /// `yes` once the admin confirmed a deactivation.
    confirm: Option<String>,
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, id = %path))]
async fn update_agent(
    state: web::Data<AppState>,
    f: AdminForm<AgentChangeForm>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    // Deactivating signs the agent out everywhere at once: ask first, on
    // a page of its own (so it also works without a script).
    if f.active.as_deref() == Some("false") && f.confirm.as_deref() != Some("yes") {
        let agent = state.svc.agent(id)?;
        let mut pg = page(&state, &p, "agents", None, None)?;
        pg.confirm_deactivate = Some((format_id(agent.id), agent.name));
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(render(&pg)?));
    }
    let capacity = match f.capacity.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(c.parse::<u32>().map_err(|_| {
            ApiError::from(crate::domain::Invalid::new(
                "capacity",
                "capacity must be a whole number from 0 to 1000",
            ))
        })?),
    };
    let change = AgentChange {
        name: None,
        role: f.role,
        active: f.active.as_deref().map(|a| a == "true"),
        capacity,
    };
    let r = state.svc.update_agent(&p.agent, id, change).await;
    outcome(&state, &p, "agents", r).await
}

/// Inbox form (name, greeting and the messenger's look).
#[derive(Deserialize)]
pub struct InboxForm {
    csrf: Option<String>,
    name: String,
    greeting: Option<String>,
    reply_time: Option<String>,
    accent_color: Option<String>,
    prechat: Option<String>,
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id))]
async fn create_inbox(
    state: web::Data<AppState>,
    f: AdminForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let new = NewInbox {
        name: form_value(&f, "name").unwrap_or("").to_owned(),
        channel: Some(
            form_value(&f, "channel")
                .unwrap_or(crate::channels::ChannelKind::Web.as_str())
                .to_owned(),
        ),
        greeting: None,
        settings: Some(settings_from_form(&f)),
    };
    match state.svc.create_inbox(&p.agent, new).await {
        // The provider refused what natter registered with it (Telegram's
        // setWebhook): the inbox exists, but say so instead of "Saved.".
        Ok((inbox, Some(check))) if !check.ok => {
            let (label, _) = crate::channels::label(&inbox.channel);
            let error = format!(
                "The inbox was created, but {label} did not accept Natter's webhook: {}. \
                 Fix the settings below and press \"Test connection\" to register it again.",
                check.message
            );
            let section = format!("inboxes/{}", format_id(inbox.id));
            Ok(html(render(&page(
                &state,
                &p,
                &section,
                None,
                Some(error),
            )?)?))
        }
        Ok((inbox, _)) => Ok(redirect(&format!(
            "/settings/inboxes/{}?created=1",
            format_id(inbox.id)
        ))),
        Err(e) => outcome(&state, &p, "inboxes", Err::<(), _>(e)).await,
    }
}

/// Saves a channel's settings (blank secrets keep their value).
#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, inbox = %path))]
async fn save_channel(
    state: web::Data<AppState>,
    f: AdminForm<Vec<(String, String)>>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let change = InboxChange {
        settings: Some(settings_from_form(&f)),
        ..InboxChange::default()
    };
    save_inbox(&state, &p, id, change).await
}

/// "Test connection": the provider's answer, shown on the page.
#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, inbox = %path))]
async fn test_channel(
    state: web::Data<AppState>,
    f: AdminForm<CsrfOnly>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let p = f.page;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let (inbox, check) = state.svc.test_connection(&p.agent, id).await?;
    let text = format!("{}: {}", inbox.name, check.message);
    let (notice, error) = if check.ok {
        (Some(text), None)
    } else {
        (None, Some(text))
    };
    let section = format!("inboxes/{}", format_id(id));
    Ok(html(render(&page(&state, &p, &section, notice, error)?)?))
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, inbox = %path))]
async fn update_inbox(
    state: web::Data<AppState>,
    f: AdminForm<InboxForm>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    // A web inbox's form holds every field, so a blank one clears its
    // value; other channels' forms have only the name (the rest keeps).
    let change = InboxChange {
        name: Some(f.name),
        greeting: f.greeting,
        accent_color: f.accent_color,
        reply_time: f.reply_time,
        prechat: f.prechat,
        ..InboxChange::default()
    };
    save_inbox(&state, &p, id, change).await
}

/// An inbox's auto-assignment form.
#[derive(Deserialize)]
pub struct AssignmentForm {
    csrf: Option<String>,
    mode: String,
    team_id: Option<String>,
}

/// Saves who gets an inbox's conversations.
#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, inbox = %path))]
async fn save_assignment(
    state: web::Data<AppState>,
    f: AdminForm<AssignmentForm>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let change = InboxChange {
        assignment: Some(crate::service::inboxes::AssignmentChange {
            mode: f.mode,
            team_id: f.team_id,
        }),
        ..InboxChange::default()
    };
    save_inbox(&state, &p, id, change).await
}

/// The business hours form: `hours_on`, `timezone`, one field per day
/// (`mon` ... `sun`, openings as `09:00-17:30, 19:00-21:00`), `holidays`
/// (dates separated by commas or spaces), `out_of_office`, `csat`.
#[derive(Deserialize)]
pub struct HoursForm {
    csrf: Option<String>,
    hours_on: Option<String>,
    timezone: Option<String>,
    mon: Option<String>,
    tue: Option<String>,
    wed: Option<String>,
    thu: Option<String>,
    fri: Option<String>,
    sat: Option<String>,
    sun: Option<String>,
    holidays: Option<String>,
    out_of_office: Option<String>,
    csat: Option<String>,
}

impl HoursForm {
    /// The contract's `business_hours` this form describes, for the
    /// service to check like an API client's.
    fn business_hours(&self) -> Option<serde_json::Value> {
        self.hours_on.as_ref()?;
        let mut week = serde_json::Map::new();
        let days = [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ];
        for (key, text) in crate::domain::hours::DAYS.iter().zip(days) {
            let spans: Vec<serde_json::Value> = text
                .as_deref()
                .unwrap_or("")
                .split([',', ';'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let (a, b) = s.split_once(['-', '–']).unwrap_or((s, ""));
                    serde_json::json!([a.trim(), b.trim()])
                })
                .collect();
            week.insert((*key).to_owned(), serde_json::Value::Array(spans));
        }
        let holidays: Vec<&str> = self
            .holidays
            .as_deref()
            .unwrap_or("")
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        Some(serde_json::json!({
            "timezone": self.timezone.as_deref().unwrap_or("UTC"),
            "week": week,
            "holidays": holidays,
        }))
    }
}

/// Saves an inbox's business hours, out-of-office message and ratings.
#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, inbox = %path))]
async fn save_hours(
    state: web::Data<AppState>,
    f: AdminForm<HoursForm>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let change = InboxChange {
        business_hours: Some(f.business_hours()),
        out_of_office: Some(f.out_of_office.clone().unwrap_or_default()),
        csat: Some(f.csat.is_some()),
        ..InboxChange::default()
    };
    save_inbox(&state, &p, id, change).await
}

/// The SLA form: minutes per target (empty: no target) and whether
/// they count business hours only. All empty removes the policy.
#[derive(Deserialize)]
pub struct SlaForm {
    csrf: Option<String>,
    first_response_minutes: Option<String>,
    next_response_minutes: Option<String>,
    resolution_minutes: Option<String>,
    business_hours: Option<String>,
}

/// Saves an inbox's SLA targets.
#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, inbox = %path))]
async fn save_sla(
    state: web::Data<AppState>,
    f: AdminForm<SlaForm>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    // Numbers as typed: the service refuses what is not one, by name.
    let minutes = |v: &Option<String>| match v.as_deref().map(str::trim) {
        None | Some("") => serde_json::Value::Null,
        Some(t) => t
            .parse::<u64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| serde_json::Value::from(t)),
    };
    let targets = [
        ("first_response_minutes", minutes(&f.first_response_minutes)),
        ("next_response_minutes", minutes(&f.next_response_minutes)),
        ("resolution_minutes", minutes(&f.resolution_minutes)),
    ];
    let sla = if targets.iter().all(|(_, v)| v.is_null()) {
        None
    } else {
        let mut m: serde_json::Map<String, serde_json::Value> = targets
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        m.insert("business_hours".into(), f.business_hours.is_some().into());
        Some(serde_json::Value::Object(m))
    };
    let change = InboxChange {
        sla: Some(sla),
        ..InboxChange::default()
    };
    save_inbox(&state, &p, id, change).await
}

/// Applies one inbox form's change and answers with the inbox's page
/// (saved, or the error beside the form): every inbox form ends here.
async fn save_inbox(
    state: &AppState,
    p: &PageAgent,
    id: crate::domain::ids::InboxId,
    change: InboxChange,
) -> Result<HttpResponse, PageError> {
    let r = state.svc.update_inbox(&p.agent, id, change).await;
    outcome(state, p, &format!("inboxes/{}", format_id(id)), r).await
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, inbox = %path))]
async fn rotate_secret(
    state: web::Data<AppState>,
    f: AdminForm<CsrfOnly>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    state.svc.rotate_identity_secret(&f.page.agent, id).await?;
    Ok(redirect(&format!(
        "/settings/inboxes/{}?saved=1",
        format_id(id)
    )))
}

/// Add-member form.
#[derive(Deserialize)]
pub struct MemberForm {
    csrf: Option<String>,
    agent_id: String,
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, inbox = %path))]
async fn add_member(
    state: web::Data<AppState>,
    f: AdminForm<MemberForm>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let inbox = parse_id(&path).ok_or(ApiError::NotFound)?;
    let r = match parse_id(&f.agent_id) {
        Some(agent) => state.svc.add_member(&p.agent, inbox, agent).await,
        None => Err(Invalid::new("agent_id", "no such agent").into()),
    };
    outcome(&state, &p, &format!("inboxes/{}", format_id(inbox)), r).await
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, inbox = %path.0, member = %path.1))]
async fn remove_member(
    state: web::Data<AppState>,
    f: AdminForm<CsrfOnly>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let inbox = parse_id(&path.0).ok_or(ApiError::NotFound)?;
    let agent = parse_id(&path.1).ok_or(ApiError::NotFound)?;
    state.svc.remove_member(&f.page.agent, inbox, agent).await?;
    Ok(redirect(&format!(
        "/settings/inboxes/{}?saved=1",
        format_id(inbox)
    )))
}

/// Canned response form.
#[derive(Deserialize)]
pub struct CannedForm {
    csrf: Option<String>,
    shortcut: String,
    text: String,
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id))]
async fn create_canned(
    state: web::Data<AppState>,
    f: AdminForm<CannedForm>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let input = CannedInput {
        shortcut: f.shortcut,
        text: f.text,
    };
    let r = state
        .svc
        .save_canned(&p.agent, crate::domain::ids::CannedId::new(0), input)
        .await;
    outcome(&state, &p, "canned", r).await
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, canned = %path))]
async fn update_canned(
    state: web::Data<AppState>,
    f: AdminForm<CannedForm>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let input = CannedInput {
        shortcut: f.shortcut,
        text: f.text,
    };
    let r = state.svc.save_canned(&p.agent, id, input).await;
    outcome(&state, &p, "canned", r).await
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, canned = %path))]
async fn delete_canned(
    state: web::Data<AppState>,
    f: AdminForm<CsrfOnly>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    state.svc.delete_canned(&f.page.agent, id).await?;
    Ok(redirect("/settings/canned?saved=1"))
}

/// One webhook's page: its delivery log.
#[tracing::instrument(skip_all, fields(agent = %p.agent.id, webhook = %path))]
async fn show_webhook(
    state: web::Data<AppState>,
    p: PageAgent,
    path: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    shown(&state, &p, &format!("webhooks/{path}"), &q)
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id))]
async fn create_webhook(
    state: web::Data<AppState>,
    f: AdminForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let url = form_value(&f, "url").unwrap_or("").trim().to_owned();
    let events: Vec<String> = f
        .iter()
        .filter(|(k, _)| k == "events")
        .map(|(_, v)| v.clone())
        .collect();
    match state.svc.create_webhook(&p.agent, &url, &events).await {
        // The secret is shown this once, on the page the form answers
        // with (no redirect: it is never stored anywhere it can be read).
        Ok((w, secret)) => {
            let mut pg = page(&state, &p, "webhooks", None, None)?;
            pg.webhook_secret = Some((w.url, secret));
            Ok(html(render(&pg)?))
        }
        Err(e) => outcome(&state, &p, "webhooks", Err::<(), _>(e)).await,
    }
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, webhook = %path))]
async fn delete_webhook(
    state: web::Data<AppState>,
    f: AdminForm<CsrfOnly>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    state.svc.delete_webhook(&f.page.agent, id).await?;
    Ok(redirect("/settings/webhooks?saved=1"))
}

/// "Retry" form: the event to deliver again.
#[derive(Deserialize)]
pub struct RetryForm {
    csrf: Option<String>,
    event_id: String,
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, webhook = %path))]
async fn retry_webhook(
    state: web::Data<AppState>,
    f: AdminForm<RetryForm>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let event = parse_id(&f.event_id).ok_or(ApiError::NotFound)?;
    match state.svc.retry_webhook_delivery(&p.agent, id, event).await {
        Ok(()) => Ok(redirect(&format!(
            "/settings/webhooks/{}?retried=1",
            format_id(id)
        ))),
        Err(e) => {
            outcome(
                &state,
                &p,
                &format!("webhooks/{}", format_id(id)),
                Err::<(), _>(e),
            )
            .await
        }
    }
}

/// The team form's agent checkboxes and name.
fn team_input(f: &[(String, String)], with_agents: bool) -> crate::service::teams::TeamInput {
    crate::service::teams::TeamInput {
        name: form_value(f, "name").map(str::to_owned),
        agent_ids: with_agents.then(|| {
            f.iter()
                .filter(|(k, _)| k == "agent_ids")
                .map(|(_, v)| v.clone())
                .collect()
        }),
    }
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id))]
async fn create_team(
    state: web::Data<AppState>,
    f: AdminForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let r = state.svc.create_team(&p.agent, team_input(&f, true)).await;
    outcome(&state, &p, "teams", r).await
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, team = %path))]
async fn update_team(
    state: web::Data<AppState>,
    f: AdminForm<Vec<(String, String)>>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let AdminForm { page: p, form: f } = f;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    // The form always lists the checkboxes: none ticked empties the team.
    let r = state
        .svc
        .update_team(&p.agent, id, team_input(&f, true))
        .await;
    outcome(&state, &p, "teams", r).await
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, team = %path))]
async fn delete_team(
    state: web::Data<AppState>,
    f: AdminForm<CsrfOnly>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    state.svc.delete_team(&f.page.agent, id).await?;
    Ok(redirect("/settings/teams?saved=1"))
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id))]
async fn create_backup(
    state: web::Data<AppState>,
    f: AdminForm<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    let r = state.svc.create_backup(&f.page.agent).await;
    outcome(&state, &f.page, "backups", r).await
}

#[tracing::instrument(skip_all, fields(agent = %p.agent.id, backup = %path))]
async fn download_backup(
    state: web::Data<AppState>,
    p: PageAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let (b, file) = state.svc.backup_file(&p.agent, &path)?;
    Ok(crate::web::api::backups::download_response(&b, &file).await?)
}

#[tracing::instrument(skip_all, fields(agent = %f.page.agent.id, backup = %path))]
async fn delete_backup(
    state: web::Data<AppState>,
    f: AdminForm<CsrfOnly>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    state.svc.delete_backup(&f.page.agent, &path)?;
    Ok(redirect("/settings/backups?saved=1"))
}
