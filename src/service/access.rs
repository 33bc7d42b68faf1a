//! Which inboxes an agent reaches: an admin every inbox, an agent the
//! inboxes it is a member of. Every view that gathers records across
//! inboxes (a contact's conversations, its channel addresses, possible
//! duplicates, the channels a reply may go out on) filters by this one
//! answer, so nothing of an inbox leaks through a record that spans several.

use crate::domain::ids::{AgentId, InboxId};
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::store::{AgentRecord, ContactRecord, InboxRecord, Result, Store};

/// The inboxes an agent reaches, as records: an admin every inbox, an
/// agent those it is a member of now, an inactive agent none.
pub fn visible_inboxes(store: &Store, agent: &AgentRecord) -> Result<Vec<InboxRecord>> {
    if !agent.active {
        return Ok(Vec::new());
    }
    let admin = agent.role == Role::Admin;
    let mut out = Vec::new();
    for i in store.inboxes()? {
        if admin || store.is_member(i.id, agent.id)? {
            out.push(i);
        }
    }
    Ok(out)
}

/// The inboxes one agent reaches, read once per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxScope {
    /// An admin: every inbox.
    All,
    /// An agent: the inboxes it is a member of now.
    Members(Vec<InboxId>),
}

impl InboxScope {
    /// The agent's scope as stored now (an inactive agent reaches nothing).
    pub fn of(store: &Store, agent: &AgentRecord) -> Result<Self> {
        if !agent.active {
            return Ok(Self::Members(Vec::new()));
        }
        if agent.role == Role::Admin {
            return Ok(Self::All);
        }
        Ok(Self::Members(
            visible_inboxes(store, agent)?
                .iter()
                .map(|i| i.id)
                .collect(),
        ))
    }

    /// The scope of the agent with this id (nothing if it is gone).
    pub fn of_agent(store: &Store, agent: AgentId) -> Result<Self> {
        match store.agent(agent)? {
            Some(a) => Self::of(store, &a),
            None => Ok(Self::Members(Vec::new())),
        }
    }

    /// Whether the inbox is reached.
    pub fn sees(&self, inbox: InboxId) -> bool {
        match self {
            Self::All => true,
            Self::Members(ids) => ids.contains(&inbox),
        }
    }

    /// Whether the contact is known in a reached inbox: first seen or
    /// merged there, an address of that channel, or a conversation there.
    pub fn sees_contact(&self, store: &Store, c: &ContactRecord) -> Result<bool> {
        if matches!(self, Self::All)
            || self.sees(c.inbox_id)
            || c.also_in.iter().any(|i| self.sees(*i))
            || c.identities.iter().any(|i| self.sees(i.inbox_id))
        {
            return Ok(true);
        }
        Ok(store
            .contact_conversations(c.id)?
            .iter()
            .any(|conv| self.sees(conv.inbox_id)))
    }
}

impl super::Services {
    /// The inbox if the agent may see it (an admin, or a member); 404
    /// otherwise, exactly like an inbox that does not exist.
    pub fn visible_inbox(&self, agent: &AgentRecord, id: InboxId) -> ApiResult<InboxRecord> {
        let inbox = self.store.inbox(id)?.ok_or(ApiError::NotFound)?;
        if agent.role == Role::Admin || self.store.is_member(id, agent.id)? {
            Ok(inbox)
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// The inboxes an agent reaches, as records ([`visible_inboxes`]).
    pub fn visible_inboxes(&self, agent: &AgentRecord) -> ApiResult<Vec<InboxRecord>> {
        Ok(visible_inboxes(&self.store, agent)?)
    }

    /// The ids of the inboxes an agent reaches.
    pub fn visible_inbox_ids(&self, agent: &AgentRecord) -> ApiResult<Vec<InboxId>> {
        Ok(visible_inboxes(&self.store, agent)?
            .iter()
            .map(|i| i.id)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_reach_every_inbox_and_members_only_theirs() {
        let i = InboxId::new;
        assert!(InboxScope::All.sees(i(7)));
        let s = InboxScope::Members(vec![i(1), i(3)]);
        assert!(s.sees(i(3)));
        assert!(!s.sees(i(2)));
        assert!(!InboxScope::Members(Vec::new()).sees(i(1)));
    }
}
