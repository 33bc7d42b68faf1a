//! Inboxes and their members: creating one of any channel (checking its
//! settings, generating its tokens, following its mailbox, registering
//! its webhook), changing it, testing its connection, and who works in it.
//! The API (`/inboxes`) and the settings page both call these, so every
//! rule about an inbox's fields is written once.

use crate::channels::ChannelKind;
use crate::domain::ids::{AgentId, InboxId};
use serde::Serialize;

use crate::domain::{time, Invalid, Name};
use crate::error::{ApiError, ApiResult};
use crate::service::agents::require_admin;
use crate::service::auth::random_string;
use crate::store::{AgentRecord, InboxRecord};

use super::Services;

/// Channel settings as given or stored (a JSON object).
pub type Settings = serde_json::Map<String, serde_json::Value>;

/// A channel's adapter (none for `web`) and its checked settings.
type ChannelSetup = (Option<&'static dyn crate::channels::Channel>, Settings);

/// A fresh web inbox record (also the first-run "Website" that start-up
/// creates), with its widget key and identity secret.
pub fn new_web_inbox(name: String, greeting: Option<String>) -> InboxRecord {
    InboxRecord {
        id: InboxId::new(0),
        name,
        channel: ChannelKind::Web.as_str().into(),
        widget_key: random_string(16),
        hmac_secret: random_string(32),
        greeting,
        accent_color: None,
        prechat: Default::default(),
        assignment: Default::default(),
        business_hours: None,
        out_of_office: None,
        csat: false,
        sla: None,
        reply_time: None,
        created_at: 0,
        settings: Default::default(),
        api_token: None,
        webhook_secret: None,
    }
}

/// What the provider said of an inbox's credentials ("Test connection",
/// and Telegram's webhook registration when its inbox is created).
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionCheck {
    /// Whether the provider accepted them.
    pub ok: bool,
    /// Its answer, for a person.
    pub message: String,
}

impl ConnectionCheck {
    fn of(r: Result<String, impl std::fmt::Display>) -> Self {
        match r {
            Ok(message) => Self { ok: true, message },
            Err(e) => Self {
                ok: false,
                message: e.to_string(),
            },
        }
    }
}

/// A new inbox as an admin asked for it.
pub struct NewInbox {
    /// Its name.
    pub name: String,
    /// The channel's name; none means `web`.
    pub channel: Option<String>,
    /// The greeting the messenger shows.
    pub greeting: Option<String>,
    /// The channel's settings.
    pub settings: Option<Settings>,
}

/// What an admin changes about an inbox; `None` keeps the value, an empty
/// text clears an optional one.
#[derive(Default)]
pub struct InboxChange {
    /// A new name.
    pub name: Option<String>,
    /// A new greeting (empty: none).
    pub greeting: Option<String>,
    /// Channel settings; values not given keep theirs, so secrets need
    /// not be retyped.
    pub settings: Option<Settings>,
    /// A new identity secret. Giving two inboxes the same one is how an
    /// admin says their websites share one login: a user id verified on
    /// one is then the same person on the other (never otherwise).
    pub hmac_secret: Option<String>,
    /// The messenger's accent colour, `#rrggbb` (empty: the default).
    pub accent_color: Option<String>,
    /// "We usually reply within ..." (empty: none).
    pub reply_time: Option<String>,
    /// The pre-chat form: `off`, `ask` or `require`.
    pub prechat: Option<String>,
    /// Auto-assignment: the mode and the team (`None`: no team).
    pub assignment: Option<AssignmentChange>,
    /// Business hours in the contract's shape; `Some(None)` removes them.
    pub business_hours: Option<Option<serde_json::Value>>,
    /// The out-of-office message (empty: none).
    pub out_of_office: Option<String>,
    /// Ask for a rating after each resolution.
    pub csat: Option<bool>,
    /// SLA targets in the contract's shape; `Some(None)` removes them.
    pub sla: Option<Option<serde_json::Value>>,
}

/// An inbox's auto-assignment as submitted.
#[derive(Debug, Clone, Default)]
pub struct AssignmentChange {
    /// `off`, `round_robin` or `balanced`.
    pub mode: String,
    /// The team's id, if limited to one.
    pub team_id: Option<String>,
}

/// A greeting: trimmed, at most 500 characters, empty meaning none.
fn greeting(raw: &str) -> Result<Option<String>, Invalid> {
    let g = raw.trim();
    if g.chars().count() > 500 {
        return Err(Invalid::new(
            "greeting",
            "greeting must be at most 500 characters",
        ));
    }
    Ok((!g.is_empty()).then(|| g.to_owned()))
}

/// An accent colour: `#rrggbb`, stored in lower case; empty meaning none.
fn color(raw: &str) -> Result<Option<String>, Invalid> {
    match raw.trim() {
        "" => Ok(None),
        c if c.len() == 7
            && c.starts_with('#')
            && c[1..].chars().all(|x| x.is_ascii_hexdigit()) =>
        {
            Ok(Some(c.to_lowercase()))
        }
        _ => Err(Invalid::new(
            "accent_color",
            "accent colour must look like #2563eb",
        )),
    }
}

/// Checks a channel name and its settings; gives the adapter (none for
/// `web`) and the settings to store.
fn channel_settings(
    allow_private: bool,
    channel: &str,
    given: Option<&Settings>,
    previous: Option<&Settings>,
) -> ApiResult<ChannelSetup> {
    let empty = Settings::new();
    let given = given.unwrap_or(&empty);
    if ChannelKind::parse(channel) == Some(ChannelKind::Web) {
        if !given.is_empty() {
            return Err(Invalid::new("settings", "the web channel takes no settings").into());
        }
        return Ok((None, Settings::new()));
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
    let settings =
        crate::channels::settings::validate(adapter.settings(), given, previous, allow_private)?;
    adapter.check_settings(&settings)?;
    Ok((Some(adapter), settings))
}

impl Services {
    /// An inbox for an admin to manage; 403 for others, 404 if missing.
    #[tracing::instrument(skip_all, fields(agent = %agent.id, inbox = %id))]
    pub fn managed_inbox(&self, agent: &AgentRecord, id: InboxId) -> ApiResult<InboxRecord> {
        require_admin(agent)?;
        self.store.inbox(id)?.ok_or(ApiError::NotFound)
    }

    /// Creates an inbox of any channel (admins): checks the settings,
    /// generates the channel's tokens, starts following an email mailbox,
    /// and registers Telegram's webhook (whose outcome it returns).
    #[tracing::instrument(skip_all, fields(by = %actor.id))]
    pub async fn create_inbox(
        &self,
        actor: &AgentRecord,
        new: NewInbox,
    ) -> ApiResult<(InboxRecord, Option<ConnectionCheck>)> {
        require_admin(actor)?;
        let name = Name::parse(&new.name, "name")?.into_inner();
        let channel = new
            .channel
            .unwrap_or_else(|| ChannelKind::Web.as_str().into());
        let greeting = greeting(new.greeting.as_deref().unwrap_or(""))?;
        let (adapter, settings) = channel_settings(
            self.http.allow_private,
            &channel,
            new.settings.as_ref(),
            None,
        )?;
        let mut rec = new_web_inbox(name, greeting);
        rec.channel = channel.clone();
        rec.settings = settings;
        if adapter.is_some() {
            rec.webhook_secret = Some(crate::service::webhooks::new_secret_token());
        }
        if ChannelKind::of(&channel).has_api_token() {
            rec.api_token = Some(format!("nai_{}", random_string(24)));
            rec.webhook_secret = Some(crate::service::webhooks::new_secret());
        }
        let inbox = self.store.create_inbox(rec, time::now()).await?;
        tracing::info!(inbox = %inbox.id, by = %actor.id, "inbox created");
        let mut connection = None;
        if ChannelKind::of(&inbox.channel).follows_a_mailbox() {
            // Start from the mailbox as it is now, then follow it.
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                self.mailboxes.remember_current_state(&inbox),
            )
            .await;
            self.mailboxes.restart(&inbox);
        }
        // Telegram learns its webhook URL and secret now.
        if let Some(a) = adapter.filter(|a| a.sets_its_webhook_on_connect()) {
            connection = Some(ConnectionCheck::of(
                a.connect(&self.http, &inbox, &self.config.base_url).await,
            ));
        }
        Ok((inbox, connection))
    }

    /// Changes an inbox's name, greeting, look, channel settings or
    /// identity secret (admins); an email inbox whose settings changed
    /// follows its mailbox again.
    #[tracing::instrument(skip_all, fields(inbox = %id, by = %actor.id))]
    pub async fn update_inbox(
        &self,
        actor: &AgentRecord,
        id: InboxId,
        change: InboxChange,
    ) -> ApiResult<InboxRecord> {
        let old = self.managed_inbox(actor, id)?;
        let name = change
            .name
            .as_deref()
            .map(|n| Name::parse(n, "name"))
            .transpose()?
            .map(Name::into_inner);
        let settings = match &change.settings {
            Some(s) => Some(
                channel_settings(
                    self.http.allow_private,
                    &old.channel,
                    Some(s),
                    Some(&old.settings),
                )?
                .1,
            ),
            None => None,
        };
        let hmac_secret = change.hmac_secret.map(|h| h.trim().to_owned());
        if hmac_secret.as_ref().is_some_and(|h| {
            !(16..=256).contains(&h.chars().count()) || h.chars().any(char::is_control)
        }) {
            return Err(
                Invalid::new("hmac_secret", "hmac_secret must be 16 to 256 characters").into(),
            );
        }
        let greeting = change.greeting.as_deref().map(greeting).transpose()?;
        let accent = change.accent_color.as_deref().map(color).transpose()?;
        let prechat = change
            .prechat
            .as_deref()
            .map(crate::domain::Prechat::parse)
            .transpose()?;
        let assignment = match &change.assignment {
            Some(a) => Some(crate::store::Assignment {
                mode: crate::domain::AssignmentMode::parse(&a.mode)?,
                team_id: match a.team_id.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(raw) => Some(
                        crate::domain::parse_id::<crate::domain::ids::TeamId>(raw)
                            .and_then(|t| self.store.team(t).ok().flatten())
                            .ok_or_else(|| {
                                Invalid::new(
                                    "assignment.team_id",
                                    format!("no team has the id {raw:?}"),
                                )
                            })?
                            .id,
                    ),
                },
            }),
            None => None,
        };
        let sla = match &change.sla {
            Some(Some(v)) => Some(Some(crate::domain::sla::SlaPolicy::parse(v)?)),
            Some(None) => Some(None),
            None => None,
        };
        let business_hours = match &change.business_hours {
            Some(Some(v)) => Some(Some(crate::domain::hours::BusinessHours::parse(v)?)),
            Some(None) => Some(None),
            None => None,
        };
        let out_of_office = match change.out_of_office.as_deref().map(str::trim) {
            Some(t) if t.chars().count() > 1000 => {
                return Err(Invalid::new(
                    "out_of_office",
                    "out_of_office must be at most 1000 characters",
                )
                .into())
            }
            Some(t) => Some((!t.is_empty()).then(|| t.to_owned())),
            None => None,
        };
        let reply_time = change.reply_time.as_deref().map(|r| {
            let r = r.trim();
            (!r.is_empty()).then(|| r.chars().take(200).collect::<String>())
        });
        let inbox = self
            .store
            .update_inbox(id, time::now(), |i| {
                if let Some(n) = &name {
                    i.name = n.clone();
                }
                if let Some(s) = &settings {
                    i.settings = s.clone();
                }
                if let Some(g) = &greeting {
                    i.greeting = g.clone();
                }
                if let Some(h) = &hmac_secret {
                    i.hmac_secret = h.clone();
                }
                if let Some(a) = &accent {
                    i.accent_color = a.clone();
                }
                if let Some(r) = &reply_time {
                    i.reply_time = r.clone();
                }
                if let Some(p) = prechat {
                    i.prechat = p;
                }
                if let Some(a) = assignment {
                    i.assignment = a;
                }
                if let Some(h) = &business_hours {
                    i.business_hours = h.clone();
                }
                if let Some(o) = &out_of_office {
                    i.out_of_office = o.clone();
                }
                if let Some(c) = change.csat {
                    i.csat = c;
                }
                if let Some(s) = sla {
                    i.sla = s;
                }
            })
            .await?;
        if assignment.is_some_and(|a| a != old.assignment) {
            self.router.route().await;
        }
        if ChannelKind::of(&inbox.channel).follows_a_mailbox() && settings.is_some() {
            self.mailboxes.restart(&inbox);
        }
        Ok(inbox)
    }

    /// Gives an inbox a new random identity secret (admins): identities
    /// signed with the old one stop verifying.
    #[tracing::instrument(skip_all, fields(inbox = %id, by = %actor.id))]
    pub async fn rotate_identity_secret(
        &self,
        actor: &AgentRecord,
        id: InboxId,
    ) -> ApiResult<InboxRecord> {
        require_admin(actor)?;
        let secret = random_string(32);
        Ok(self
            .store
            .update_inbox(id, time::now(), |i| i.hmac_secret = secret.clone())
            .await?)
    }

    /// "Test connection" (admins): asks the provider whether the
    /// credentials work (and for Telegram registers the webhook again).
    #[tracing::instrument(skip_all, fields(inbox = %id, by = %actor.id))]
    pub async fn test_connection(
        &self,
        actor: &AgentRecord,
        id: InboxId,
    ) -> ApiResult<(InboxRecord, ConnectionCheck)> {
        let inbox = self.managed_inbox(actor, id)?;
        let check = match crate::channels::by_name(&inbox.channel) {
            None => ConnectionCheck {
                ok: true,
                message: "a web inbox needs no connection".into(),
            },
            Some(a) => {
                ConnectionCheck::of(a.connect(&self.http, &inbox, &self.config.base_url).await)
            }
        };
        Ok((inbox, check))
    }

    /// How many conversations of an inbox wait for auto-assignment
    /// (nobody with room was online when they came).
    #[tracing::instrument(skip_all, fields(inbox = %inbox))]
    pub fn waiting_for_assignment(&self, inbox: InboxId) -> ApiResult<usize> {
        Ok(self.store.queued(inbox)?.len())
    }

    /// The ids of an inbox's members (any inbox; for pages that already
    /// hold the inbox).
    #[tracing::instrument(skip_all, fields(inbox = %inbox))]
    pub fn member_ids(&self, inbox: InboxId) -> ApiResult<Vec<AgentId>> {
        Ok(self.store.members(inbox)?)
    }

    /// The members of an inbox the agent may see.
    #[tracing::instrument(skip_all, fields(agent = %agent.id, inbox = %inbox))]
    pub fn inbox_members(
        &self,
        agent: &AgentRecord,
        inbox: InboxId,
    ) -> ApiResult<Vec<AgentRecord>> {
        let inbox = self.visible_inbox(agent, inbox)?;
        let mut out = Vec::new();
        for id in self.store.members(inbox.id)? {
            if let Some(a) = self.store.agent(id)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Adds an agent to an inbox (admins); true when it was not a member
    /// before.
    #[tracing::instrument(skip_all, fields(inbox = %inbox, agent = %agent, by = %actor.id))]
    pub async fn add_member(
        &self,
        actor: &AgentRecord,
        inbox: InboxId,
        agent: AgentId,
    ) -> ApiResult<bool> {
        require_admin(actor)?;
        let added = self.store.add_member(inbox, agent, time::now()).await?;
        if added {
            self.router.route().await;
        }
        Ok(added)
    }

    /// Removes an agent from an inbox (admins); false when it was not a
    /// member.
    #[tracing::instrument(skip_all, fields(inbox = %inbox, agent = %agent, by = %actor.id))]
    pub async fn remove_member(
        &self,
        actor: &AgentRecord,
        inbox: InboxId,
        agent: AgentId,
    ) -> ApiResult<bool> {
        require_admin(actor)?;
        Ok(self.store.remove_member(inbox, agent, time::now()).await?)
    }
}
