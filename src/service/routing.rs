//! Auto-assignment (the contract's "Teams, availability and routing"):
//! who may take an inbox's conversations now, and the moments the queue
//! is looked at again.
//!
//! A conversation started or reopened unassigned in an inbox with a mode
//! on joins the queue in the write that opens it (the store does that).
//! Every write that can change who gets what calls [`Router::route`] once
//! it is durable: such an opening, a resolve, snooze or reassignment (capacity frees), an
//! agent coming online or getting more capacity, an inbox's or a team's
//! routing changed. The call decides the candidates (online, active, of
//! the team, reaching the inbox) and the store hands out the queue in one
//! write that reads every load itself (`Store::route`), so concurrent
//! arrivals never exceed a capacity. The caller's request returns after
//! routing, so its answer already reflects it. A routing failure is
//! logged and never fails the write that caused it: the conversation
//! stays queued and the next trigger hands it out.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::ids::InboxId;
use crate::domain::{time, AssignmentMode, Availability, Role};
use crate::store::{AgentRecord, Candidate, RoutingPlan, Store};

use super::fanout::Fanout;

/// Decides candidates and asks the store to hand out the queue. Shared by
/// the use cases and the mailbox followers.
pub struct Router {
    store: Arc<Store>,
    fanout: Arc<Fanout>,
    /// `NATTER_AWAY_AFTER_MINUTES`: how long an agent with no open stream
    /// still counts as present.
    away_after: Duration,
}

impl Router {
    /// A router over the store and the registry of open streams.
    pub fn new(store: Arc<Store>, fanout: Arc<Fanout>, away_after_secs: i64) -> Arc<Self> {
        Arc::new(Self {
            store,
            fanout,
            away_after: Duration::from_secs(away_after_secs.max(0) as u64),
        })
    }

    /// An agent's availability now: what they set, except that an agent
    /// with no workspace tab or event stream open for
    /// `NATTER_AWAY_AFTER_MINUTES` counts as offline (shown so, and for
    /// routing).
    pub fn availability_of(&self, agent: &AgentRecord) -> Availability {
        if !agent.active || !self.fanout.agent_seen_within(agent.id, self.away_after) {
            return Availability::Offline;
        }
        agent.availability
    }

    /// Whether a stream the agent opens now brings them back (they
    /// counted as away): routing should look at the queue again.
    pub fn comes_back(&self, agent: crate::domain::ids::AgentId) -> bool {
        !self.fanout.agent_seen_within(agent, self.away_after)
    }

    /// The plan of every inbox with auto-assignment on, and every inbox
    /// id (an agent's load counts everywhere).
    fn plans(&self) -> crate::store::Result<(Vec<RoutingPlan>, Vec<InboxId>)> {
        let inboxes = self.store.inboxes()?;
        let ids = inboxes.iter().map(|i| i.id).collect();
        let routed: Vec<_> = inboxes
            .into_iter()
            .filter(|i| i.assignment.mode != AssignmentMode::Off)
            .collect();
        if routed.is_empty() {
            return Ok((Vec::new(), ids));
        }
        let agents = self.store.agents()?;
        let mut plans = Vec::with_capacity(routed.len());
        for inbox in routed {
            let members = self.store.members(inbox.id)?;
            let team = match inbox.assignment.team_id {
                Some(t) => match self.store.team(t)? {
                    Some(team) => Some(team),
                    // A team deleted under the setting routes to nobody
                    // rather than to everyone.
                    None => continue,
                },
                None => None,
            };
            let mut candidates: Vec<Candidate> = agents
                .iter()
                .filter(|a| match &team {
                    // A team's agents who reach the inbox.
                    Some(t) => {
                        t.agent_ids.contains(&a.id)
                            && (a.role == Role::Admin || members.contains(&a.id))
                    }
                    // Without a team: the inbox's members.
                    None => members.contains(&a.id),
                })
                .filter(|a| self.availability_of(a) == Availability::Online)
                .map(|a| Candidate {
                    agent: a.id,
                    capacity: a.capacity,
                })
                .collect();
            candidates.sort_by_key(|c| c.agent);
            plans.push(RoutingPlan {
                inbox: inbox.id,
                mode: inbox.assignment.mode,
                team: inbox.assignment.team_id,
                candidates,
            });
        }
        Ok((plans, ids))
    }

    /// Hands out whatever waits in the queue (the write that started or
    /// reopened a conversation queued it). Errors are logged, never
    /// returned.
    pub async fn route(&self) {
        if let Err(e) = self.try_route().await {
            tracing::error!(error = %e, "auto-assignment failed; the queue waits for the next change");
        }
    }

    async fn try_route(&self) -> crate::store::Result<()> {
        let (plans, inboxes) = self.plans()?;
        if plans.is_empty() {
            return Ok(());
        }
        let assigned = self.store.route(&plans, &inboxes, time::now()).await?;
        for c in &assigned {
            tracing::info!(conversation = %c.id, agent = ?c.assignee_id, "assigned automatically");
        }
        Ok(())
    }
}
