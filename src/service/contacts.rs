//! Contacts as agents reach them: one person with channel addresses, seen
//! only as far as the agent's inboxes go ([`InboxScope`]), merged into
//! another, or erased by an admin.

use super::access::InboxScope;
use super::Services;
use crate::contract;
use crate::domain::ids::ContactId;
use crate::domain::{time, Invalid, Role};
use crate::error::{ApiError, ApiResult};
use crate::store::{AgentRecord, ContactRecord};

impl Services {
    /// The contact if it is known in an inbox the agent reaches (404
    /// otherwise, like a contact that does not exist).
    #[tracing::instrument(skip_all, fields(agent = %agent.id, contact = %id))]
    pub fn visible_contact(&self, agent: &AgentRecord, id: ContactId) -> ApiResult<ContactRecord> {
        let c = self.store.contact(id)?.ok_or(ApiError::NotFound)?;
        let scope = InboxScope::of(&self.store, agent)?;
        if scope.sees_contact(&self.store, &c)? {
            Ok(c)
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// The contract's contact for this agent: addresses only in inboxes it
    /// reaches (a person known in several inboxes shows nothing of the
    /// others: their conversations hold notes).
    #[tracing::instrument(skip_all, fields(agent = %agent.id, contact = %c.id))]
    pub fn contact_as_seen_by(
        &self,
        agent: &AgentRecord,
        c: &ContactRecord,
    ) -> ApiResult<contract::Contact> {
        let scope = InboxScope::of(&self.store, agent)?;
        Ok(contract::Contact::within(c, |i| scope.sees(i)))
    }

    /// One contact with its addresses and conversations, as far as they
    /// are in inboxes the agent reaches.
    #[tracing::instrument(skip_all, fields(agent = %agent.id, contact = %id))]
    pub fn contact_card(
        &self,
        agent: &AgentRecord,
        id: ContactId,
    ) -> ApiResult<contract::ContactCard> {
        let c = self.visible_contact(agent, id)?;
        let scope = InboxScope::of(&self.store, agent)?;
        let mut conversations = Vec::new();
        for conv in self.store.contact_conversations(c.id)? {
            if scope.sees(conv.inbox_id) {
                conversations.push(contract::Conversation::for_team(&conv, Some(&c)));
            }
        }
        Ok(contract::ContactCard {
            contact: contract::Contact::within(&c, |i| scope.sees(i)),
            conversations,
        })
    }

    /// Merges contact `from` into `into`: one person, all conversations
    /// and channel addresses. The agent must see both: a `from` it does
    /// not see is a 404, an `into` it does not see (or `None`: not an id)
    /// is "no such contact".
    #[tracing::instrument(skip_all, fields(agent = %agent.id, from = %from, into = ?into))]
    pub async fn merge_contacts(
        &self,
        agent: &AgentRecord,
        from: ContactId,
        into: Option<ContactId>,
    ) -> ApiResult<ContactRecord> {
        let from = self.visible_contact(agent, from)?;
        let no_such = || ApiError::from(Invalid::new("into", "no such contact"));
        let into = into.ok_or_else(no_such)?;
        let into = self.visible_contact(agent, into).map_err(|_| no_such())?;
        let merged = self
            .store
            .merge_contacts(from.id, into.id, time::now())
            .await?;
        tracing::info!(
            from = %from.id,
            into = %into.id,
            by = %agent.id,
            "contacts merged"
        );
        Ok(merged)
    }

    /// Erases a contact and all its conversations, messages, files and
    /// search entries (admins only).
    #[tracing::instrument(skip_all, fields(agent = %agent.id, contact = %id))]
    pub async fn delete_contact(&self, agent: &AgentRecord, id: ContactId) -> ApiResult<()> {
        if agent.role != Role::Admin {
            return Err(ApiError::Forbidden("only admins may do this"));
        }
        let files = self.store.delete_contact(id, time::now()).await?;
        let dir = self.store.files_dir();
        // The records are gone: a file that cannot be removed now is an
        // orphan, which the sweep removes later.
        let _ = tokio::task::spawn_blocking(move || {
            for f in files {
                if super::files::valid_id(&f) {
                    let _ = std::fs::remove_file(dir.join(f));
                }
            }
        })
        .await;
        tracing::info!(contact = %id, by = %agent.id, "contact deleted");
        Ok(())
    }
}
