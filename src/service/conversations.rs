//! The agent side of conversations: which ones an agent reaches, and the
//! rules for reading, changing and answering them (used by the API and the
//! workspace alike).

use crate::domain::{time, ConversationStatus, Invalid, Role};
use crate::error::{ApiError, ApiResult};
use crate::store::{AgentRecord, ConversationRecord, InboxRecord, Patch, Store};

use super::access::InboxScope;
use super::Services;

/// What an agent asks to change in a conversation, parsed at the edge;
/// `None` leaves a field as it is. Both the API's `PATCH` and the
/// workspace's control forms come down to this one shape, so one set of
/// rules judges them.
#[derive(Debug, Clone, Default)]
pub struct ConversationChange {
    /// A new status.
    pub status: Option<ConversationStatus>,
    /// A new assignee; `Some(None)` unassigns.
    pub assignee_id: Option<Option<u64>>,
    /// New labels, already normalised (`Label::parse_list`).
    pub labels: Option<Vec<String>>,
    /// A wake-up time; `Some(None)` clears it. A time implies status
    /// `snoozed` and refuses any other.
    pub snoozed_until: Option<Option<i64>>,
}

/// Reads an assignee id as both surfaces send it: an id that does not
/// parse names no agent.
pub fn parse_assignee(s: &str) -> Result<u64, Invalid> {
    crate::domain::parse_id(s).ok_or_else(|| Invalid::new("assignee_id", "no such agent"))
}

/// The other channels a reply in this conversation can go out on: inboxes
/// the agent reaches where the contact has an address (a number that wrote
/// by SMS or WhatsApp, an email address for an email inbox). A reply
/// through an inbox is that inbox's business, so an agent outside it may
/// not send through it. (inbox, address).
pub fn reply_options(
    store: &Store,
    c: &ConversationRecord,
    scope: &InboxScope,
) -> crate::store::Result<Vec<(InboxRecord, String)>> {
    let Some(contact) = store.contact(c.contact_id)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for i in store.inboxes()? {
        if i.id == c.inbox_id || i.channel == "web" || !scope.sees(i.id) {
            continue;
        }
        let address = contact
            .identities
            .iter()
            .find(|x| x.inbox_id == i.id)
            .map(|x| x.value.clone())
            .or_else(|| {
                (i.channel == "email")
                    .then(|| contact.email.clone())
                    .flatten()
            });
        if let Some(a) = address {
            out.push((i, a));
        }
    }
    Ok(out)
}

impl Services {
    /// The conversation if the agent may see its inbox; 404 otherwise, so
    /// nobody learns that it exists.
    pub fn visible_conversation(
        &self,
        agent: &AgentRecord,
        id: u64,
    ) -> ApiResult<ConversationRecord> {
        let c = self.store.conversation(id)?.ok_or(ApiError::NotFound)?;
        if agent.role == Role::Admin || self.store.is_member(c.inbox_id, agent.id)? {
            Ok(c)
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// Changes status, assignee, labels or snooze of a conversation the
    /// agent reaches: the assignee must be an active agent who reaches the
    /// conversation's inbox, a snooze must end in the future and goes
    /// with status `snoozed`. Returns the conversation as stored.
    #[tracing::instrument(skip_all, fields(agent = agent.id, conversation = id))]
    pub async fn change_conversation(
        &self,
        agent: &AgentRecord,
        id: u64,
        change: ConversationChange,
    ) -> ApiResult<ConversationRecord> {
        let c = self.visible_conversation(agent, id)?;
        let now = time::now();
        let mut patch = Patch {
            status: change.status,
            labels: change.labels,
            ..Patch::default()
        };
        if let Some(a) = change.assignee_id {
            patch.assignee_id = Some(match a {
                None => None,
                Some(id) => Some(self.check_assignee(&c, id)?),
            });
        }
        if let Some(until) = change.snoozed_until {
            if until.is_some_and(|t| t <= now) {
                return Err(
                    Invalid::new("snoozed_until", "snoozed_until must be in the future").into(),
                );
            }
            patch.snoozed_until = Some(until);
            if until.is_some() && patch.status.is_none() {
                patch.status = Some(ConversationStatus::Snoozed);
            }
            if until.is_some() && patch.status != Some(ConversationStatus::Snoozed) {
                return Err(Invalid::new(
                    "snoozed_until",
                    "snoozed_until goes with status snoozed",
                )
                .into());
            }
        }
        Ok(self
            .store
            .patch_conversation(c.id, patch, now, |_| Ok(()))
            .await?)
    }

    /// The agent `id` if a conversation can be assigned to it: active, and
    /// an admin or a member of the conversation's inbox.
    fn check_assignee(&self, c: &ConversationRecord, id: u64) -> ApiResult<u64> {
        let agent = self
            .store
            .agent(id)?
            .filter(|a| a.active)
            .ok_or_else(|| Invalid::new("assignee_id", "no such agent"))?;
        if agent.role != Role::Admin && !self.store.is_member(c.inbox_id, id)? {
            return Err(Invalid::new(
                "assignee_id",
                "the assignee must be a member of the conversation's inbox",
            )
            .into());
        }
        Ok(id)
    }
}
