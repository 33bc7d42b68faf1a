//! Inboxes, their widget keys and their members.

use super::keys::{pair, u64_be};
use super::{abort, InboxRecord, Result, Store, StoreError, Tree};
use crate::domain::ids::{AgentId, InboxId};
use crate::domain::AssignmentMode;

impl Store {
    /// Creates an inbox with its public widget key and identity secret.
    pub async fn create_inbox(&self, inbox: InboxRecord, now: i64) -> Result<InboxRecord> {
        self.write(now, |tx| {
            if tx.contains(Tree::WidgetkeyInboxid, inbox.widget_key.as_bytes())? {
                return abort(StoreError::Conflict("widget key already in use".into()));
            }
            let mut rec = inbox.clone();
            rec.id = InboxId::new(tx.new_id()?);
            rec.created_at = tx.now;
            tx.put(Tree::InboxidInbox, &u64_be(rec.id), &rec)?;
            tx.put_raw(
                Tree::WidgetkeyInboxid,
                rec.widget_key.as_bytes(),
                &u64_be(rec.id),
            )?;
            Ok(rec)
        })
        .await
    }

    /// Changes an inbox's settings with `f` (name, greeting, colour, secret).
    pub async fn update_inbox(
        &self,
        id: InboxId,
        now: i64,
        f: impl Fn(&mut InboxRecord),
    ) -> Result<InboxRecord> {
        self.write(now, |tx| {
            let Some(mut inbox) = tx.get::<InboxRecord>(Tree::InboxidInbox, &u64_be(id))? else {
                return abort(StoreError::NotFound);
            };
            let routed = inbox.assignment.mode != AssignmentMode::Off;
            f(&mut inbox);
            inbox.id = id;
            // Auto-assignment switched off: nothing waits for it any more
            // (switched on again later, it starts with the conversations
            // that open from then on, not with a stale queue).
            if routed && inbox.assignment.mode == AssignmentMode::Off {
                tx.clear_queue(id)?;
            }
            tx.put(Tree::InboxidInbox, &u64_be(id), &inbox)?;
            Ok(inbox)
        })
        .await
    }

    /// One inbox.
    pub fn inbox(&self, id: InboxId) -> Result<Option<InboxRecord>> {
        self.get(Tree::InboxidInbox, &u64_be(id))
    }

    /// The inbox a widget key names.
    pub fn inbox_by_widget_key(&self, key: &str) -> Result<Option<InboxRecord>> {
        match self.get_id(Tree::WidgetkeyInboxid, key.as_bytes())? {
            Some(id) => self.inbox(InboxId::new(id)),
            None => Ok(None),
        }
    }

    /// Every inbox, oldest first.
    pub fn inboxes(&self) -> Result<Vec<InboxRecord>> {
        self.tree(Tree::InboxidInbox)
            .iter()
            .values()
            .map(|v| super::decode(&v?))
            .collect()
    }

    /// Whether there is any inbox yet (decides the first-run "Website").
    pub fn has_inboxes(&self) -> Result<bool> {
        Ok(!self.tree(Tree::InboxidInbox).is_empty())
    }

    /// Adds an agent to an inbox; returns false if it was already a member.
    pub async fn add_member(&self, inbox: InboxId, agent: AgentId, now: i64) -> Result<bool> {
        self.write(now, |tx| {
            if !tx.contains(Tree::InboxidInbox, &u64_be(inbox))? {
                return abort(StoreError::NotFound);
            }
            if !tx.contains(Tree::AgentidAgent, &u64_be(agent))? {
                return abort(StoreError::Invalid(crate::domain::Invalid::new(
                    "agent_id",
                    "no such agent",
                )));
            }
            let k = pair(inbox, agent);
            let fresh = !tx.contains(Tree::InboxidAgentid, &k)?;
            tx.put_raw(Tree::InboxidAgentid, &k, &[])?;
            Ok(fresh)
        })
        .await
    }

    /// Removes an agent from an inbox; returns false if it was not a member.
    pub async fn remove_member(&self, inbox: InboxId, agent: AgentId, now: i64) -> Result<bool> {
        let removed = self
            .write(now, |tx| tx.del(Tree::InboxidAgentid, &pair(inbox, agent)))
            .await?;
        self.access_changed();
        Ok(removed)
    }

    /// Whether the agent is a member of the inbox.
    pub fn is_member(&self, inbox: InboxId, agent: AgentId) -> Result<bool> {
        Ok(self
            .tree(Tree::InboxidAgentid)
            .contains_key(pair(inbox, agent))?)
    }

    /// The agent ids that are members of an inbox.
    pub fn members(&self, inbox: InboxId) -> Result<Vec<AgentId>> {
        self.tree(Tree::InboxidAgentid)
            .scan_prefix(u64_be(inbox))
            .keys()
            .map(|k| super::keys::read_u64(&k?, 8).map(AgentId::new))
            .collect()
    }
}
