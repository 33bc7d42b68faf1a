//! Teams: agents who answer together. An agent may be in several; an
//! inbox's auto-assignment may be limited to one (issue 14). Admins shape
//! them; every agent can read them (to assign to a team, to filter).

use crate::domain::ids::{AgentId, TeamId};
use crate::domain::{parse_id, time, Invalid, Name};
use crate::error::{ApiError, ApiResult};
use crate::service::agents::require_admin;
use crate::store::{AgentRecord, TeamRecord};

use super::Services;

/// A team as an admin asks for it: on an update, what is `None` keeps.
#[derive(Debug, Default)]
pub struct TeamInput {
    /// Its name (1 to 100 characters).
    pub name: Option<String>,
    /// Its agents' ids; each must name an agent.
    pub agent_ids: Option<Vec<String>>,
}

impl Services {
    /// Every team, by name.
    #[tracing::instrument(skip_all)]
    pub fn teams(&self) -> ApiResult<Vec<TeamRecord>> {
        Ok(self.store.teams()?)
    }

    /// One team (404 if there is none).
    #[tracing::instrument(skip_all, fields(team = %id))]
    pub fn team(&self, id: TeamId) -> ApiResult<TeamRecord> {
        self.store.team(id)?.ok_or(ApiError::NotFound)
    }

    /// Creates a team (admins); 409 when another has the name.
    #[tracing::instrument(skip_all, fields(by = %actor.id))]
    pub async fn create_team(
        &self,
        actor: &AgentRecord,
        input: TeamInput,
    ) -> ApiResult<TeamRecord> {
        require_admin(actor)?;
        let name = Name::parse(input.name.as_deref().unwrap_or(""), "name")?.into_inner();
        let agent_ids = self.team_agents(input.agent_ids.as_deref().unwrap_or(&[]))?;
        let team = self
            .store
            .put_team(
                TeamRecord {
                    id: TeamId::new(0),
                    name,
                    agent_ids,
                    created_at: 0,
                },
                time::now(),
            )
            .await?;
        tracing::info!(team = %team.id, by = %actor.id, "team created");
        Ok(team)
    }

    /// Renames a team or sets its agents (admins).
    #[tracing::instrument(skip_all, fields(team = %id, by = %actor.id))]
    pub async fn update_team(
        &self,
        actor: &AgentRecord,
        id: TeamId,
        input: TeamInput,
    ) -> ApiResult<TeamRecord> {
        require_admin(actor)?;
        let mut team = self.team(id)?;
        if let Some(n) = input.name.as_deref() {
            team.name = Name::parse(n, "name")?.into_inner();
        }
        let members_changed = input.agent_ids.is_some();
        if let Some(ids) = input.agent_ids.as_deref() {
            team.agent_ids = self.team_agents(ids)?;
        }
        let team = self.store.put_team(team, time::now()).await?;
        if members_changed {
            self.router.route().await;
        }
        Ok(team)
    }

    /// Deletes a team (admins).
    #[tracing::instrument(skip_all, fields(team = %id, by = %actor.id))]
    pub async fn delete_team(&self, actor: &AgentRecord, id: TeamId) -> ApiResult<()> {
        require_admin(actor)?;
        // An inbox routing to the team would silently route to nobody.
        if let Some(i) = self
            .store
            .inboxes()?
            .into_iter()
            .find(|i| i.assignment.team_id == Some(id))
        {
            return Err(ApiError::Conflict(format!(
                "the inbox {:?} assigns its conversations to this team; change its assignment first",
                i.name
            )));
        }
        self.store.delete_team(id, time::now()).await?;
        tracing::info!(team = %id, by = %actor.id, "team deleted");
        Ok(())
    }

    /// Parses agent ids for a team: each names an agent (422 naming the
    /// one that does not); repeats count once, in the order given.
    fn team_agents(&self, raw: &[String]) -> ApiResult<Vec<AgentId>> {
        let mut out = Vec::new();
        for r in raw {
            let agent = parse_id::<AgentId>(r)
                .and_then(|id| self.store.agent(id).ok().flatten())
                .ok_or_else(|| Invalid::new("agent_ids", format!("no agent has the id {r:?}")))?;
            if !out.contains(&agent.id) {
                out.push(agent.id);
            }
        }
        Ok(out)
    }
}
