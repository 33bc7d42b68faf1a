//! The agent side of conversations: which ones an agent reaches, and the
//! rules for reading, changing and answering them (used by the API and the
//! workspace alike).

use crate::contract::Audience;
use crate::domain::ids::{AgentId, ConversationId, InboxId};
use crate::domain::{time, ConversationStatus, Invalid, Role};
use crate::error::{ApiError, ApiResult};
use crate::store::{
    AgentRecord, CannedRecord, ContactRecord, ConversationFilter, ConversationPage,
    ConversationRecord, InboxRecord, MessagePage, MessageRecord, Patch, Result, Store,
};

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
    pub assignee_id: Option<Option<AgentId>>,
    /// New labels, already normalised (`Label::parse_list`).
    pub labels: Option<Vec<String>>,
    /// A wake-up time; `Some(None)` clears it. A time implies status
    /// `snoozed` and refuses any other.
    pub snoozed_until: Option<Option<i64>>,
    /// A new priority.
    pub priority: Option<crate::domain::Priority>,
}

/// One change for many conversations at once (the list's bulk actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    /// Resolve them.
    Resolve,
    /// Assign them (`None`: unassign).
    Assign(Option<AgentId>),
    /// Add a label (already normalised) to each.
    AddLabel(String),
}

/// At most this many conversations in one bulk action.
pub const BULK_MAX: usize = 200;

/// Reads an assignee id as both surfaces send it: an id that does not
/// parse names no agent.
pub fn parse_assignee(s: &str) -> Result<AgentId, Invalid> {
    AgentId::parse(s).ok_or_else(|| Invalid::new("assignee_id", "no such agent"))
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
        let kind = crate::channels::ChannelKind::of(&i.channel);
        if i.id == c.inbox_id || !kind.replies_leave_natter() || !scope.sees(i.id) {
            continue;
        }
        let address = contact
            .identities
            .iter()
            .find(|x| x.inbox_id == i.id)
            .map(|x| x.value.clone())
            .or_else(|| {
                kind.follows_a_mailbox()
                    .then(|| contact.email.clone())
                    .flatten()
            });
        if let Some(a) = address {
            out.push((i, a));
        }
    }
    Ok(out)
}

/// Which conversations an agent lists, parsed at the edge: the API's
/// `GET /conversations` query and the workspace's list filter both come
/// down to this. Visibility is applied by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    /// One inbox only (none listed if the agent does not reach it).
    pub inbox: Option<InboxId>,
    /// Statuses to include.
    pub statuses: Vec<ConversationStatus>,
    /// `Some(None)`: unassigned only; `Some(Some(a))`: assigned to `a`.
    pub assignee: Option<Option<AgentId>>,
    /// Only conversations with this (normalised) label.
    pub label: Option<String>,
    /// Only conversations whose customer waits for a reply.
    pub waiting: bool,
    /// Resume after this (activity, id) position.
    pub after: Option<(i64, ConversationId)>,
    /// Page size.
    pub limit: usize,
}

/// Most conversations a status tab counts; more shows as "999+".
pub const COUNT_CAP: usize = 1000;

/// Inbox and agent records a page names (rows, the open conversation):
/// the workspace turns them into its name lookups.
#[derive(Debug, Default)]
pub struct NameBook {
    /// Inboxes (their names and channels).
    pub inboxes: Vec<InboxRecord>,
    /// Agents (their names).
    pub agents: Vec<AgentRecord>,
}

/// Only the names one conversation shows (its inbox and assignee), so a
/// live update reads two records instead of every inbox and agent.
pub fn names_for(store: &Store, c: &ConversationRecord) -> Result<NameBook> {
    Ok(NameBook {
        inboxes: store.inbox(c.inbox_id)?.into_iter().collect(),
        agents: c
            .assignee_id
            .map(|a| store.agent(a))
            .transpose()?
            .flatten()
            .into_iter()
            .collect(),
    })
}

/// Everything the workspace's conversation pane shows beside the
/// conversation itself, read as the viewing agent may see it.
#[derive(Debug, Default)]
pub struct Thread {
    /// The contact, if it still exists.
    pub contact: Option<ContactRecord>,
    /// The newest 200 messages, notes included (empty when not asked
    /// for), each with the channel of the inbox it went through when that
    /// is not the conversation's own.
    pub messages: Vec<(MessageRecord, Option<String>)>,
    /// Agents it can be assigned to, with their availability now.
    pub assignable: Vec<(AgentRecord, crate::domain::Availability)>,
    /// The contact's addresses in inboxes the agent reaches: (channel,
    /// address).
    pub contact_channels: Vec<(String, String)>,
    /// Other channels the reply can go out on ([`reply_options`]).
    pub reply_options: Vec<(InboxRecord, String)>,
    /// The contact's other conversations in inboxes the agent reaches.
    pub other_conversations: Vec<ConversationRecord>,
    /// At most five other contacts with the same email the agent may see.
    pub duplicates: Vec<ContactRecord>,
}

/// Reads the [`Thread`] of a conversation for `me` (the caller has checked
/// that `me` reaches it); `with_messages` false for the controls alone.
pub fn thread(
    store: &Store,
    c: &ConversationRecord,
    me: &AgentRecord,
    with_messages: bool,
    availability: impl Fn(&AgentRecord) -> crate::domain::Availability,
) -> Result<Thread> {
    let contact = store.contact(c.contact_id)?;
    let mut messages = Vec::new();
    if with_messages {
        let recs = store.messages(
            c.id,
            MessagePage {
                after: None,
                before: None,
                limit: 200,
                include_private: true,
            },
        )?;
        for m in recs {
            // A reply sent through another channel shows that channel.
            let via = m.via.map(|i| store.inbox(i)).transpose()?.flatten();
            messages.push((m, via.map(|i| i.channel)));
        }
    }
    let mut assignable = Vec::new();
    for a in store.agents()? {
        if a.active && (a.role == Role::Admin || store.is_member(c.inbox_id, a.id)?) {
            let now = availability(&a);
            assignable.push((a, now));
        }
    }
    // The contact panel shows only what lies in inboxes this agent
    // reaches: another inbox's conversations hold its notes.
    let scope = InboxScope::of(store, me)?;
    let other_conversations = store
        .contact_conversations(c.contact_id)?
        .into_iter()
        .filter(|o| o.id != c.id && scope.sees(o.inbox_id))
        .collect();
    let mut duplicates = Vec::new();
    if let Some(e) = contact.as_ref().and_then(|k| k.email.as_deref()) {
        for id in store
            .contacts_with_email(e)?
            .into_iter()
            .filter(|id| *id != c.contact_id)
            .take(50)
        {
            if duplicates.len() == 5 {
                break;
            }
            let Some(d) = store.contact(id)? else {
                continue;
            };
            if scope.sees_contact(store, &d)? {
                duplicates.push(d);
            }
        }
    }
    let contact_channels = contact
        .as_ref()
        .map(|k| {
            k.identities
                .iter()
                .filter(|i| scope.sees(i.inbox_id))
                .map(|i| (i.channel.clone(), i.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Thread {
        reply_options: reply_options(store, c, &scope)?,
        contact,
        messages,
        assignable,
        contact_channels,
        other_conversations,
        duplicates,
    })
}

impl Services {
    /// The conversation if the agent may see its inbox; 404 otherwise, so
    /// nobody learns that it exists.
    pub fn visible_conversation(
        &self,
        agent: &AgentRecord,
        id: ConversationId,
    ) -> ApiResult<ConversationRecord> {
        let c = self.store.conversation(id)?.ok_or(ApiError::NotFound)?;
        if agent.role == Role::Admin || self.store.is_member(c.inbox_id, agent.id)? {
            Ok(c)
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// One action over many conversations (the list's bulk bar): every
    /// one must be visible to the agent before any changes (404 otherwise,
    /// nothing changed); each then changes as `change_conversation` would
    /// change it alone, with its own event; a refusal (say an assignee who
    /// does not reach one of the inboxes) stops it there, the ones before
    /// staying changed. Answers how many.
    #[tracing::instrument(skip_all, fields(agent = %agent.id, n = ids.len()))]
    pub async fn bulk_change(
        &self,
        agent: &AgentRecord,
        ids: &[ConversationId],
        action: &BulkAction,
    ) -> ApiResult<usize> {
        if ids.is_empty() {
            return Err(Invalid::new("ids", "pick at least one conversation").into());
        }
        if ids.len() > BULK_MAX {
            return Err(
                Invalid::new("ids", format!("at most {BULK_MAX} conversations at once")).into(),
            );
        }
        // Every one must be the agent's to see before any changes.
        let mut found = Vec::with_capacity(ids.len());
        for &id in ids {
            found.push(self.visible_conversation(agent, id)?);
        }
        for c in &found {
            let change = match action {
                BulkAction::Resolve => ConversationChange {
                    status: Some(ConversationStatus::Resolved),
                    ..ConversationChange::default()
                },
                BulkAction::Assign(a) => ConversationChange {
                    assignee_id: Some(*a),
                    ..ConversationChange::default()
                },
                BulkAction::AddLabel(l) => {
                    if c.labels.contains(l) {
                        continue;
                    }
                    let mut labels = c.labels.clone();
                    labels.push(l.clone());
                    ConversationChange {
                        labels: Some(labels),
                        ..ConversationChange::default()
                    }
                }
            };
            self.change_conversation(agent, c.id, change).await?;
        }
        Ok(found.len())
    }

    /// Changes status, assignee, labels or snooze of a conversation the
    /// agent reaches: the assignee must be an active agent who reaches the
    /// conversation's inbox, a snooze must end in the future and goes
    /// with status `snoozed`. Returns the conversation as stored.
    #[tracing::instrument(skip_all, fields(agent = %agent.id, conversation = %id))]
    pub async fn change_conversation(
        &self,
        agent: &AgentRecord,
        id: ConversationId,
        change: ConversationChange,
    ) -> ApiResult<ConversationRecord> {
        let c = self.visible_conversation(agent, id)?;
        let now = time::now();
        let mut patch = Patch {
            status: change.status,
            labels: change.labels,
            priority: change.priority,
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
        let changed = self
            .store
            .patch_conversation(c.id, patch, now, |_| Ok(()))
            .await?;
        if changed.status != c.status || changed.assignee_id != c.assignee_id {
            // Reopened unassigned: the write queued it. Resolved, snoozed,
            // parked or handed to someone else: its agent has room again.
            self.router.route().await;
        }
        if changed.status == ConversationStatus::Resolved && c.status != changed.status {
            self.ask_for_rating(&changed).await;
        }
        Ok(changed)
    }

    /// The agent `id` if a conversation can be assigned to it: active, and
    /// an admin or a member of the conversation's inbox.
    fn check_assignee(&self, c: &ConversationRecord, id: AgentId) -> ApiResult<AgentId> {
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

    /// The inboxes a list or a count looks in: those the agent may see,
    /// narrowed to the filter's one inbox (none when it is not theirs).
    fn filtered_inboxes(
        &self,
        agent: &AgentRecord,
        filter: &ListFilter,
    ) -> ApiResult<Vec<InboxId>> {
        let visible = self.visible_inbox_ids(agent)?;
        Ok(match filter.inbox {
            Some(i) => visible.into_iter().filter(|x| *x == i).collect(),
            None => visible,
        })
    }

    /// Conversations the agent may see, newest activity first, one page.
    #[tracing::instrument(skip_all, fields(agent = %agent.id))]
    pub fn list_conversations(
        &self,
        agent: &AgentRecord,
        filter: &ListFilter,
    ) -> ApiResult<ConversationPage> {
        let inboxes = self.filtered_inboxes(agent, filter)?;
        Ok(self.store.list_conversations(&ConversationFilter {
            inboxes,
            statuses: filter.statuses.clone(),
            assignee: filter.assignee,
            label: filter.label.clone(),
            waiting: filter.waiting,
            after: filter.after,
            limit: filter.limit,
        })?)
    }

    /// The customers who wait for a reply, the longest waiting first (at
    /// most [`COUNT_CAP`] are looked at, newest activity first, so past
    /// that many the oldest may be missed; then `filter.limit` are kept).
    #[tracing::instrument(skip_all, fields(agent = %agent.id))]
    pub fn longest_waiting(
        &self,
        agent: &AgentRecord,
        filter: &ListFilter,
    ) -> ApiResult<Vec<ConversationRecord>> {
        let mut all = self
            .list_conversations(
                agent,
                &ListFilter {
                    waiting: true,
                    after: None,
                    limit: COUNT_CAP,
                    ..filter.clone()
                },
            )?
            .conversations;
        all.sort_by_key(|c| (c.waiting_since(), c.id));
        all.truncate(filter.limit);
        Ok(all)
    }

    /// The conversations of `filter`, the most urgent first, then the
    /// longest waiting, then the newest (at most [`COUNT_CAP`] are looked
    /// at, newest activity first; then `filter.limit` are kept).
    #[tracing::instrument(skip_all, fields(agent = %agent.id))]
    pub fn by_priority(
        &self,
        agent: &AgentRecord,
        filter: &ListFilter,
    ) -> ApiResult<Vec<ConversationRecord>> {
        let mut all = self
            .list_conversations(
                agent,
                &ListFilter {
                    after: None,
                    limit: COUNT_CAP,
                    ..filter.clone()
                },
            )?
            .conversations;
        all.sort_by_key(|c| {
            (
                std::cmp::Reverse(c.priority),
                c.waiting_since().unwrap_or(i64::MAX),
                std::cmp::Reverse(c.updated_at),
                c.id,
            )
        });
        all.truncate(filter.limit);
        Ok(all)
    }

    /// The inbox's tab counts: how many conversations of `filter` the agent
    /// sees in each status (at most [`COUNT_CAP`] each), in
    /// [`ConversationStatus::ALL`] order. `filter`'s statuses and paging
    /// are ignored.
    #[tracing::instrument(skip_all, fields(agent = %agent.id))]
    pub fn status_counts(
        &self,
        agent: &AgentRecord,
        filter: &ListFilter,
    ) -> ApiResult<Vec<(ConversationStatus, usize)>> {
        let mut out = Vec::new();
        if filter.label.is_none() && !filter.waiting {
            // The common case reads the counters the writes keep.
            let inboxes = self.filtered_inboxes(agent, filter)?;
            for s in ConversationStatus::ALL {
                let n = self
                    .store
                    .count_conversations(&inboxes, s, filter.assignee)?;
                out.push((s, usize::try_from(n).unwrap_or(usize::MAX).min(COUNT_CAP)));
            }
            return Ok(out);
        }
        // A label is not counted ahead: list (at most COUNT_CAP each).
        for s in ConversationStatus::ALL {
            let f = ListFilter {
                statuses: vec![s],
                after: None,
                limit: COUNT_CAP,
                ..filter.clone()
            };
            out.push((s, self.list_conversations(agent, &f)?.conversations.len()));
        }
        Ok(out)
    }

    /// A conversation as the team sees it in the contract (with its
    /// contact looked up).
    pub fn team_conversation(
        &self,
        c: &ConversationRecord,
    ) -> ApiResult<crate::contract::Conversation> {
        Ok(super::present::conversation_with_contact(
            &self.store,
            c,
            Audience::Team,
        )?)
    }

    /// The contacts of conversations, in their order (none for a contact
    /// that is gone): what list rows show.
    pub fn contacts_of(
        &self,
        conversations: &[ConversationRecord],
    ) -> ApiResult<Vec<Option<ContactRecord>>> {
        let mut out = Vec::with_capacity(conversations.len());
        for c in conversations {
            out.push(self.store.contact(c.contact_id)?);
        }
        Ok(out)
    }

    /// Every inbox and agent, for pages that name many of them.
    pub fn all_names(&self) -> ApiResult<NameBook> {
        Ok(NameBook {
            inboxes: self.store.inboxes()?,
            agents: self.store.agents()?,
        })
    }

    /// The names one conversation shows ([`names_for`]).
    pub fn names_for(&self, c: &ConversationRecord) -> ApiResult<NameBook> {
        Ok(names_for(&self.store, c)?)
    }

    /// The conversation pane of a conversation the agent reaches
    /// ([`thread`]).
    #[tracing::instrument(skip_all, fields(agent = %agent.id, conversation = %c.id))]
    pub fn thread(
        &self,
        agent: &AgentRecord,
        c: &ConversationRecord,
        with_messages: bool,
    ) -> ApiResult<Thread> {
        self.visible_conversation(agent, c.id)?;
        Ok(thread(&self.store, c, agent, with_messages, |a| {
            self.router.availability_of(a)
        })?)
    }

    /// The canned responses the reply box offers.
    pub fn canned_for_composer(&self) -> ApiResult<Vec<CannedRecord>> {
        Ok(self.store.canned()?)
    }
}
