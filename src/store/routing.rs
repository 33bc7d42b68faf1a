//! Auto-assignment: the queue of conversations waiting for an agent and
//! the write that hands them out. Which agents may take an inbox's
//! conversations (online, of the team, with their capacity) is the
//! service's decision, given as a [`RoutingPlan`]; the store applies it
//! inside one write, reading every agent's load there, so conversations
//! arriving at the same instant can never push anyone above capacity.

use std::collections::{HashMap, HashSet};

use super::keys::{self, pair, u64_be};
use super::{ConversationRecord, EventPayload, Result, Store, Tree, Tx, TxResult};
use crate::domain::ids::{AgentId, ConversationId, InboxId, TeamId};
use crate::domain::time::Micros;
use crate::domain::{AssignmentMode, ConversationStatus};

/// An agent who may be given conversations now, and how many open ones
/// they may hold at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The agent.
    pub agent: AgentId,
    /// Open conversations auto-assignment may give them in all.
    pub capacity: u32,
}

/// How one inbox's conversations are handed out now.
#[derive(Debug, Clone)]
pub struct RoutingPlan {
    /// The inbox.
    pub inbox: InboxId,
    /// Round robin or balanced (a plan is never `off`).
    pub mode: AssignmentMode,
    /// The team its conversations are routed to, if any.
    pub team: Option<TeamId>,
    /// Who may take them, ordered by id (round robin's turn order).
    pub candidates: Vec<Candidate>,
}

/// Whether a conversation is one nobody on the team has taken: open and
/// unassigned. Leaving that state takes it off the queue.
pub(crate) fn waits_for_an_agent(c: &ConversationRecord) -> bool {
    c.status == ConversationStatus::Open && c.assignee_id.is_none()
}

impl Tx<'_> {
    /// Queues a conversation that starts or reopens unassigned in an inbox
    /// with auto-assignment on (and names the inbox's team on it), in the
    /// write that opens it: a crash right after the write leaves it queued,
    /// and conversations opened at the same instant queue in id order.
    /// Call before the conversation is stored.
    pub(crate) fn queue_if_routed(&mut self, c: &mut ConversationRecord) -> TxResult<()> {
        if !waits_for_an_agent(c) {
            return Ok(());
        }
        let Some(inbox) =
            self.get::<super::InboxRecord>(Tree::InboxidInbox, &u64_be(c.inbox_id))?
        else {
            return Ok(());
        };
        if inbox.assignment.mode == AssignmentMode::Off {
            return Ok(());
        }
        if inbox.assignment.team_id.is_some() {
            c.team_id = inbox.assignment.team_id;
        }
        self.put_raw(Tree::InboxconversationQueued, &pair(c.inbox_id, c.id), &[])
    }

    /// Records that `agent` was just given a conversation (by anyone):
    /// balanced assignment prefers, among equals, whoever waited longest.
    pub(crate) fn assigned(&mut self, agent: AgentId) -> TxResult<()> {
        let now = self.now;
        self.put_raw(
            Tree::AgentidAssignedat,
            &u64_be(agent),
            &u64_be(now.max(0) as u64),
        )
    }

    /// The conversations an agent holds that count toward capacity (open
    /// and pending, assigned by anyone), across `inboxes`.
    fn load(&self, agent: AgentId, inboxes: &[InboxId]) -> TxResult<u64> {
        let mut n = 0;
        for &inbox in inboxes {
            for status in [ConversationStatus::Open, ConversationStatus::Pending] {
                n += self
                    .get_id(
                        Tree::InboxstatusassigneeCount,
                        &keys::inbox_status_assignee(inbox, status.key_byte(), Some(agent)),
                    )?
                    .unwrap_or(0);
            }
        }
        Ok(n)
    }

    /// Empties the queue of `inbox` (its auto-assignment was switched off).
    pub(crate) fn clear_queue(&mut self, inbox: InboxId) -> TxResult<()> {
        for id in self.queued_in(inbox)? {
            self.del(Tree::InboxconversationQueued, &pair(inbox, id))?;
        }
        Ok(())
    }

    /// The queued conversations of `inbox`, oldest first.
    fn queued_in(&self, inbox: InboxId) -> TxResult<Vec<ConversationId>> {
        self.keys_under(Tree::InboxconversationQueued, &u64_be(inbox))?
            .iter()
            .map(|k| keys::read_u64(k, 8).map(ConversationId::new))
            .collect()
    }
}

/// Picks the agent for the next conversation of `plan`, or none when
/// everyone is at capacity.
fn choose(
    tx: &Tx<'_>,
    plan: &RoutingPlan,
    loads: &HashMap<AgentId, u64>,
) -> TxResult<Option<AgentId>> {
    let free: Vec<&Candidate> = plan
        .candidates
        .iter()
        .filter(|c| loads.get(&c.agent).copied().unwrap_or(0) < u64::from(c.capacity))
        .collect();
    if free.is_empty() {
        return Ok(None);
    }
    Ok(Some(match plan.mode {
        AssignmentMode::Off => return Ok(None),
        AssignmentMode::RoundRobin => {
            let last = tx
                .get_id(Tree::InboxidLastassignee, &u64_be(plan.inbox))?
                .unwrap_or(0);
            free.iter()
                .find(|c| c.agent.get() > last)
                .unwrap_or(&free[0])
                .agent
        }
        AssignmentMode::Balanced => {
            let mut best: Option<(u64, u64, AgentId)> = None;
            for c in &free {
                let at = tx
                    .get_id(Tree::AgentidAssignedat, &u64_be(c.agent))?
                    .unwrap_or(0);
                let key = (loads.get(&c.agent).copied().unwrap_or(0), at, c.agent);
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
            match best {
                Some((_, _, a)) => a,
                None => return Ok(None),
            }
        }
    }))
}

impl Store {
    /// Hands out every queued conversation of the planned inboxes, oldest
    /// first, while someone has room: one write, so the loads read here
    /// are the truth for every write before it. `inboxes` is every inbox
    /// (loads count an agent's conversations everywhere). Returns the
    /// conversations assigned.
    pub async fn route(
        &self,
        plans: &[RoutingPlan],
        inboxes: &[InboxId],
        now: Micros,
    ) -> Result<Vec<ConversationRecord>> {
        if plans.is_empty() {
            return Ok(Vec::new());
        }
        // Nothing waits: no write. The look includes writes not yet in
        // sled, so a conversation queued a moment ago is never overlooked.
        if self.peek(|tx| {
            for p in plans {
                if !tx
                    .keys_under(Tree::InboxconversationQueued, &u64_be(p.inbox))?
                    .is_empty()
                {
                    return Ok(false);
                }
            }
            Ok(true)
        })? {
            return Ok(Vec::new());
        }
        self.write(now, |tx| {
            let mut queued: Vec<(ConversationId, &RoutingPlan)> = Vec::new();
            for p in plans {
                for id in tx.queued_in(p.inbox)? {
                    queued.push((id, p));
                }
            }
            queued.sort_by_key(|(id, _)| *id);
            let mut loads: HashMap<AgentId, u64> = HashMap::new();
            for p in plans {
                for c in &p.candidates {
                    if let std::collections::hash_map::Entry::Vacant(e) = loads.entry(c.agent) {
                        e.insert(tx.load(c.agent, inboxes)?);
                    }
                }
            }
            let mut full: HashSet<InboxId> = HashSet::new();
            let mut assigned = Vec::new();
            for (id, p) in queued {
                if full.contains(&p.inbox) {
                    continue;
                }
                let Some(c) =
                    tx.get::<ConversationRecord>(Tree::ConversationidConversation, &u64_be(id))?
                else {
                    tx.del(Tree::InboxconversationQueued, &pair(p.inbox, id))?;
                    continue;
                };
                if !waits_for_an_agent(&c) {
                    tx.del(Tree::InboxconversationQueued, &pair(p.inbox, id))?;
                    continue;
                }
                let Some(agent) = choose(tx, p, &loads)? else {
                    full.insert(p.inbox);
                    continue;
                };
                let mut n = c.clone();
                n.assignee_id = Some(agent);
                n.updated_at = tx.now.max(n.updated_at);
                // Assigned: put_conversation takes it off the queue.
                tx.put_conversation(&n, Some(&c))?;
                tx.assigned(agent)?;
                if p.mode == AssignmentMode::RoundRobin {
                    tx.put_raw(Tree::InboxidLastassignee, &u64_be(p.inbox), &u64_be(agent))?;
                }
                *loads.entry(agent).or_insert(0) += 1;
                tx.emit_for_team(
                    n.inbox_id,
                    n.contact_id,
                    EventPayload::ConversationUpdated {
                        conversation: n.clone(),
                    },
                )?;
                assigned.push(n);
            }
            Ok(assigned)
        })
        .await
    }

    /// The conversations of `inbox` waiting for auto-assignment, oldest
    /// first (the queue as it stands in sled).
    pub fn queued(&self, inbox: InboxId) -> Result<Vec<ConversationId>> {
        self.tree(Tree::InboxconversationQueued)
            .scan_prefix(u64_be(inbox))
            .keys()
            .map(|k| keys::read_u64(&k?, 8).map(ConversationId::new))
            .collect()
    }
}
