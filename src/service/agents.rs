//! Managing the team: who the agents are, adding one, changing a role or
//! an activation, and an agent's own profile and password. The API
//! (`/agents`, `/auth/password`) and the settings pages call these, so each
//! rule (who may do it, what a field may hold, that nobody demotes
//! themselves) is written once.

use crate::domain::ids::AgentId;
use crate::domain::{time, Email, Invalid, Name, Password, Role};
use crate::error::{ApiError, ApiResult};
use crate::service::auth::hash_password;
use crate::store::{AgentRecord, AgentUpdate};

use super::Services;

/// Refuses anyone but an admin with the contract's 403. The one
/// definition of "admins only": the API's `AgentAuth`, the settings
/// pages' `AdminForm` and the services below all ask it.
pub fn require_admin(agent: &AgentRecord) -> ApiResult<()> {
    if agent.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only admins may do this"))
    }
}

/// Hashes a password off the async workers (argon2id takes tens of
/// milliseconds of CPU by design).
pub(crate) async fn hash_blocking(password: Password) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_password(password.expose()))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|_| ApiError::Internal)
}

/// A new agent as an admin typed it (the API's body or the settings form).
pub struct NewAgent {
    /// Display name.
    pub name: String,
    /// Sign-in email.
    pub email: String,
    /// `admin` or `agent`; none means `agent`.
    pub role: Option<String>,
    /// The first password.
    pub password: String,
}

/// What an admin changes about an agent; `None` keeps the value.
#[derive(Default)]
pub struct AgentChange {
    /// A new display name.
    pub name: Option<String>,
    /// A new role (`admin` or `agent`).
    pub role: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// Open conversations auto-assignment may give (0 to 1000).
    pub capacity: Option<u32>,
}

/// What an agent changes about itself on the profile page.
pub struct ProfileChange {
    /// Display name.
    pub name: String,
    /// Play a sound for new messages.
    pub notify_sound: bool,
    /// Push a notification for new conversations.
    pub push_new_conversations: bool,
    /// Push a notification for replies.
    pub push_replies: bool,
    /// A time zone by IANA name; None keeps the one set.
    pub timezone: Option<String>,
}

impl Services {
    /// Every agent (any agent may read the team, to assign conversations).
    #[tracing::instrument(skip_all)]
    pub fn agents(&self) -> ApiResult<Vec<AgentRecord>> {
        Ok(self.store.agents()?)
    }

    /// One agent, or 404.
    #[tracing::instrument(skip_all, fields(agent = %id))]
    pub fn agent(&self, id: AgentId) -> ApiResult<AgentRecord> {
        self.store.agent(id)?.ok_or(ApiError::NotFound)
    }

    /// Adds an agent (admins). The new agent is a member of no inbox.
    #[tracing::instrument(skip_all, fields(by = %actor.id))]
    pub async fn create_agent(&self, actor: &AgentRecord, new: NewAgent) -> ApiResult<AgentRecord> {
        require_admin(actor)?;
        let email = Email::parse(&new.email)?.into_inner();
        let name = Name::parse(&new.name, "name")?.into_inner();
        let role = Role::parse(new.role.as_deref().unwrap_or("agent"))?;
        let password = Password::parse(new.password)?;
        let hash = hash_blocking(password).await?;
        let agent = self
            .store
            .create_agent(name, email, role, hash, time::now())
            .await?;
        tracing::info!(agent = %agent.id, by = %actor.id, "agent created");
        Ok(agent)
    }

    /// Renames, changes the role of, or (de)activates an agent (admins).
    /// Nobody deactivates or demotes themselves (the team would be left
    /// without the admin who asked). Deactivation ends the agent's
    /// sessions and tokens at once.
    #[tracing::instrument(skip_all, fields(agent = %id, by = %actor.id))]
    pub async fn update_agent(
        &self,
        actor: &AgentRecord,
        id: AgentId,
        change: AgentChange,
    ) -> ApiResult<AgentRecord> {
        require_admin(actor)?;
        let update = AgentUpdate {
            name: change
                .name
                .as_deref()
                .map(|n| Name::parse(n, "name"))
                .transpose()?
                .map(Name::into_inner),
            role: change.role.as_deref().map(Role::parse).transpose()?,
            active: change.active,
            capacity: match change.capacity {
                Some(c) if c > 1000 => {
                    return Err(Invalid::new("capacity", "capacity must be 0 to 1000").into())
                }
                c => c,
            },
            ..AgentUpdate::default()
        };
        if id == actor.id && (update.active == Some(false) || update.role == Some(Role::Agent)) {
            return Err(Invalid::new("active", "you cannot deactivate or demote yourself").into());
        }
        // A promotion widens what the agent's open streams may see: the
        // fan-out routes conservatively until it knows the new role.
        let _role_change = update.role.map(|_| self.fanout.role_change());
        let routing_changed = update.capacity.is_some() || update.active.is_some();
        let agent = self.store.update_agent(id, update, time::now()).await?;
        self.fanout.role_changed(agent.id, agent.role);
        if routing_changed {
            // More room, or one candidate more or less.
            self.router.route().await;
        }
        Ok(agent)
    }

    /// An agent's availability now: what they set, except that an agent
    /// with no workspace tab or event stream open for
    /// `NATTER_AWAY_AFTER_MINUTES` counts as offline (shown so, and for
    /// routing).
    pub fn availability_of(&self, agent: &AgentRecord) -> crate::domain::Availability {
        self.router.availability_of(agent)
    }

    /// The agent sets their own availability (the workspace header's
    /// control, `PUT /me/availability`); it is kept across reloads.
    #[tracing::instrument(skip_all, fields(agent = %agent.id))]
    pub async fn set_availability(&self, agent: &AgentRecord, raw: &str) -> ApiResult<AgentRecord> {
        let availability = crate::domain::Availability::parse(raw)?;
        let update = AgentUpdate {
            availability: Some(availability),
            ..AgentUpdate::default()
        };
        let agent = self
            .store
            .update_agent(agent.id, update, time::now())
            .await?;
        tracing::info!(agent = %agent.id, availability = availability.as_str(), "availability set");
        if availability == crate::domain::Availability::Online {
            self.router.route().await;
        }
        Ok(agent)
    }

    /// The zone an agent's browser names, taken only while the agent has
    /// none (a zone chosen on the profile stays).
    #[tracing::instrument(skip_all, fields(agent = %agent.id))]
    pub async fn adopt_timezone(&self, agent: &AgentRecord, name: &str) -> ApiResult<()> {
        let zone = crate::domain::time::Zone::parse(name)?;
        if agent.timezone.is_some() {
            return Ok(());
        }
        let update = AgentUpdate {
            timezone: Some(zone.name().to_owned()),
            ..AgentUpdate::default()
        };
        self.store
            .update_agent(agent.id, update, time::now())
            .await?;
        Ok(())
    }

    /// An agent's own name and notification choices.
    #[tracing::instrument(skip_all, fields(agent = %agent.id))]
    pub async fn update_profile(
        &self,
        agent: &AgentRecord,
        change: ProfileChange,
    ) -> ApiResult<AgentRecord> {
        let update = AgentUpdate {
            name: Some(Name::parse(&change.name, "name")?.into_inner()),
            notify_sound: Some(change.notify_sound),
            push_new_conversations: Some(change.push_new_conversations),
            push_replies: Some(change.push_replies),
            timezone: change
                .timezone
                .as_deref()
                .map(crate::domain::time::Zone::parse)
                .transpose()?
                .map(|z| z.name().to_owned()),
            ..AgentUpdate::default()
        };
        Ok(self
            .store
            .update_agent(agent.id, update, time::now())
            .await?)
    }
}
