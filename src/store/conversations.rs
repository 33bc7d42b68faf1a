//! Conversations and their messages: the write paths that keep a
//! conversation, its messages, its indexes and its events in step.

use std::collections::BTreeSet;

use super::keys::{self, pair, time_id, u64_be};
use sled::transaction::TransactionError;
use sled::Transactional;

use super::{
    abort, Author, ConversationRecord, EventPayload, MessageRecord, Reader, Result, Store,
    StoreError, Tree, Tx, TxResult,
};
use crate::domain::ids::{AgentId, ContactId, ConversationId, InboxId, MessageId};
use crate::domain::time::Micros;
use crate::domain::{AuthorType, ConversationStatus};

/// A message about to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Who writes it.
    pub author: Author,
    /// Its checked text.
    pub body: String,
    /// Team-only note.
    pub private: bool,
    /// Files already saved under `files/`.
    pub attachments: Vec<crate::store::AttachmentRecord>,
    /// The inbox the author asked to reply through instead of the
    /// conversation's (the caller checked the contact has an address
    /// there); the service turns it into [`Effects::send`].
    pub via: Option<InboxId>,
}

/// What a message write must also do, decided by the service that posts
/// it (the store decides nothing about channels or notifications): the
/// store persists it in the same transaction as the message, so a send is
/// queued with its cause or not at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    /// Queue the message in the outbox (its delivery starts `queued`):
    /// `Some(None)` through the conversation's inbox, `Some(Some(id))`
    /// through inbox `id` (the `via` the author chose). `None`: the
    /// message stays in natter.
    pub send: Option<Option<InboxId>>,
    /// Schedule the contact's unread-reply notification at this time,
    /// unless one is already pending for the conversation.
    pub notify_at: Option<Micros>,
}

/// A change to a conversation; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    /// New status.
    pub status: Option<ConversationStatus>,
    /// New assignee (`Some(None)` unassigns).
    pub assignee_id: Option<Option<AgentId>>,
    /// New labels (already normalised).
    pub labels: Option<Vec<String>>,
    /// New wake-up time (`Some(None)` clears it).
    pub snoozed_until: Option<Option<Micros>>,
    /// New priority.
    pub priority: Option<crate::domain::Priority>,
}

/// Which conversations to list.
#[derive(Debug, Clone)]
pub struct ConversationFilter {
    /// Inboxes to look in (already limited to what the viewer may see).
    pub inboxes: Vec<InboxId>,
    /// Statuses to include.
    pub statuses: Vec<ConversationStatus>,
    /// `Some(None)`: unassigned only; `Some(Some(a))`: assigned to `a`.
    pub assignee: Option<Option<AgentId>>,
    /// Only conversations with this label.
    pub label: Option<String>,
    /// Only conversations whose customer waits for a reply.
    pub waiting: bool,
    /// Resume after this (activity, id) position.
    pub after: Option<(Micros, ConversationId)>,
    /// Page size.
    pub limit: usize,
}

/// One page of conversations.
#[derive(Debug)]
pub struct ConversationPage {
    /// Newest activity first.
    pub conversations: Vec<ConversationRecord>,
    /// Where the next page starts, if there is one.
    pub next: Option<(Micros, ConversationId)>,
}

/// Which messages of a conversation to read.
#[derive(Debug, Clone, Copy)]
pub struct MessagePage {
    /// Only seqs greater than this.
    pub after: Option<u64>,
    /// Only seqs less than this.
    pub before: Option<u64>,
    /// At most this many.
    pub limit: usize,
    /// Include team-only notes.
    pub include_private: bool,
}

impl Tx<'_> {
    pub(crate) fn conversation(&self, id: ConversationId) -> TxResult<ConversationRecord> {
        match self.get(Tree::ConversationidConversation, &u64_be(id))? {
            Some(c) => Ok(c),
            None => abort(StoreError::NotFound),
        }
    }

    /// Stores a conversation and moves its index entries from where `old`
    /// had them.
    pub(crate) fn put_conversation(
        &mut self,
        new: &ConversationRecord,
        old: Option<&ConversationRecord>,
    ) -> TxResult<()> {
        if let Some(old) = old {
            self.unlist_conversation(old)?;
            if super::routing::waits_for_an_agent(old) && !super::routing::waits_for_an_agent(new) {
                self.del(Tree::InboxconversationQueued, &pair(old.inbox_id, old.id))?;
            }
            if counted_as(old) != counted_as(new) {
                self.count_conversation(old, -1)?;
                self.count_conversation(new, 1)?;
            }
        } else {
            self.put_raw(
                Tree::ContactidConversationid,
                &pair(new.contact_id, new.id),
                &[],
            )?;
            self.count_conversation(new, 1)?;
        }
        self.put_raw(
            Tree::InboxstatusactivityConversationid,
            &keys::inbox_status_activity(
                new.inbox_id,
                new.status.key_byte(),
                new.updated_at,
                new.id,
            ),
            &[],
        )?;
        if let (ConversationStatus::Snoozed, Some(t)) = (new.status, new.snoozed_until) {
            self.put_raw(Tree::SnoozeuntilConversationid, &time_id(t, new.id), &[])?;
        }
        self.put(Tree::ConversationidConversation, &u64_be(new.id), new)
    }

    /// Takes a conversation off its inbox list and the snooze schedule
    /// (before it moves, or when it is deleted).
    fn unlist_conversation(&mut self, old: &ConversationRecord) -> TxResult<()> {
        self.del(
            Tree::InboxstatusactivityConversationid,
            &keys::inbox_status_activity(
                old.inbox_id,
                old.status.key_byte(),
                old.updated_at,
                old.id,
            ),
        )?;
        if let Some(t) = old.snoozed_until {
            self.del(Tree::SnoozeuntilConversationid, &time_id(t, old.id))?;
        }
        Ok(())
    }

    /// Removes every index entry and the count of a conversation that is
    /// being deleted; the caller deletes the record.
    pub(crate) fn unindex_conversation(&mut self, old: &ConversationRecord) -> TxResult<()> {
        self.unlist_conversation(old)?;
        self.count_conversation(old, -1)?;
        self.del(Tree::InboxconversationQueued, &pair(old.inbox_id, old.id))?;
        self.del(Tree::ContactidConversationid, &pair(old.contact_id, old.id))?;
        Ok(())
    }

    /// Moves the tab counter of `c`'s inbox, status and assignee by
    /// `delta`; a counter that reaches 0 is removed.
    fn count_conversation(&mut self, c: &ConversationRecord, delta: i64) -> TxResult<()> {
        let (inbox, status, assignee) = counted_as(c);
        let key = keys::inbox_status_assignee(inbox, status, assignee);
        let n = self
            .get_id(Tree::InboxstatusassigneeCount, &key)?
            .unwrap_or(0);
        match n.checked_add_signed(delta) {
            Some(0) | None => {
                self.del(Tree::InboxstatusassigneeCount, &key)?;
            }
            Some(n) => self.put_raw(Tree::InboxstatusassigneeCount, &key, &u64_be(n))?,
        }
        Ok(())
    }

    /// Records the first public reply of the team in `conv`: how long
    /// the customer waited for it (within business hours when its inbox
    /// has them), the fact the widget's expected reply time is read from.
    fn first_reply(&mut self, conv: &mut ConversationRecord, at: Micros) -> TxResult<()> {
        conv.first_reply_at = Some(at);
        let hours = self
            .get::<super::InboxRecord>(Tree::InboxidInbox, &u64_be(conv.inbox_id))?
            .and_then(|i| i.business_hours);
        let from = conv.created_at;
        let waited = match hours {
            Some(h) => h.open_between(from, at),
            None => at - from,
        };
        self.put_raw(
            Tree::InboxtimeFirstreply,
            &keys::concat(&[&u64_be(conv.inbox_id), &time_id(at, conv.id)]),
            &u64_be((waited.max(0) / 1_000_000) as u64),
        )
    }

    /// Appends a message to a conversation record (seq, counters, activity)
    /// and stores the message with its [`Effects`] (the send queued, the
    /// notification scheduled); the caller stores the conversation.
    pub(crate) fn append_message(
        &mut self,
        conv: &mut ConversationRecord,
        new: &NewMessage,
        effects: &Effects,
        provider_id: Option<&str>,
    ) -> TxResult<MessageRecord> {
        let outbound = effects.send.is_some();
        if let (Some(due), None) = (effects.notify_at, conv.notify_due) {
            conv.notify_due = Some(due);
            self.put_raw(Tree::NotifydueConversationid, &time_id(due, conv.id), &[])?;
        }
        let msg = MessageRecord {
            id: MessageId::new(self.new_id()?),
            conversation_id: conv.id,
            seq: conv.last_seq + 1,
            ordinal: if new.private {
                0
            } else {
                conv.public_count() + 1
            },
            author: new.author.clone(),
            body: new.body.clone(),
            private: new.private,
            attachments: new.attachments.clone(),
            created_at: self.now,
            delivery: outbound.then_some(super::Delivery {
                status: super::DeliveryStatus::Queued,
                error: None,
            }),
            provider_id: provider_id.map(str::to_owned),
            via: effects.send.flatten(),
        };
        if outbound {
            self.enqueue(
                super::JobKind::Send {
                    conversation_id: conv.id,
                    seq: msg.seq,
                },
                self.now,
            )?;
        }
        if let Some(pid) = provider_id {
            self.put(
                Tree::InboxprovideridMessage,
                &keys::id_text(conv.inbox_id, pid),
                &(conv.id, msg.seq),
            )?;
        }
        conv.last_seq = msg.seq;
        conv.updated_at = self.now.max(conv.updated_at);
        // The wait starts at the customer's first unanswered message and
        // ends with a human's public reply (read before the record moves on).
        if !msg.private {
            match new.author.kind {
                // Into a resolved conversation (it reopens next): a new wait.
                AuthorType::Contact if conv.status == ConversationStatus::Resolved => {
                    conv.waiting_from = Some(msg.created_at);
                }
                AuthorType::Contact if conv.waiting_from.is_none() => {
                    conv.waiting_from = Some(conv.waiting_since().unwrap_or(msg.created_at));
                }
                AuthorType::Agent => {
                    if conv.first_reply_at.is_none() {
                        self.first_reply(conv, msg.created_at)?;
                    }
                    conv.agent_replied_at = Some(msg.created_at);
                    conv.waiting_from = None;
                }
                AuthorType::Contact | AuthorType::System => {}
            }
        }
        let previous = conv.last_message.replace(msg.clone());
        if !msg.private {
            conv.last_public_message = None;
        } else if conv.last_public_message.is_none() {
            // The public message this note follows is kept by itself now.
            conv.last_public_message = previous.filter(|m| !m.private);
        }
        match new.author.kind {
            AuthorType::Contact => {
                conv.agent_unread += 1;
                conv.contact_read_seq = msg.seq;
                conv.contact_unread = 0;
            }
            AuthorType::Agent | AuthorType::System => {
                if new.author.kind == AuthorType::Agent {
                    conv.agent_read_seq = msg.seq;
                    conv.agent_unread = 0;
                }
                if !msg.private {
                    conv.contact_unread += 1;
                }
            }
        }
        if !msg.private {
            self.put_raw(
                Tree::ConversationordinalSeq,
                &keys::conversation_ordinal(conv.id, msg.ordinal),
                &u64_be(msg.seq),
            )?;
        }
        self.put(
            Tree::ConversationseqMessage,
            &keys::conversation_seq(conv.id, msg.seq),
            &msg,
        )?;
        for a in &msg.attachments {
            self.put(
                Tree::FileidMessage,
                a.id.as_bytes(),
                &(conv.id, msg.seq, msg.private),
            )?;
        }
        Ok(msg)
    }
}

impl Tx<'_> {
    /// Starts a conversation with its first message and remembers it as
    /// the contact's newest.
    pub(crate) fn start_conversation(
        &mut self,
        inbox_id: InboxId,
        contact_id: ContactId,
        first: &NewMessage,
        effects: &Effects,
        provider_id: Option<&str>,
        subject: Option<String>,
    ) -> TxResult<(ConversationRecord, MessageRecord)> {
        let mut conv = ConversationRecord {
            id: ConversationId::new(self.new_id()?),
            inbox_id,
            contact_id,
            status: ConversationStatus::Open,
            assignee_id: None,
            labels: Vec::new(),
            snoozed_until: None,
            priority: crate::domain::Priority::None,
            last_seq: 0,
            last_message: None,
            last_public_message: None,
            agent_read_seq: 0,
            contact_read_seq: 0,
            agent_unread: 0,
            contact_unread: 0,
            created_at: self.now,
            updated_at: self.now,
            subject,
            notify_due: None,
            notified_seq: 0,
            waiting_from: None,
            team_id: None,
            first_reply_at: None,
            agent_replied_at: None,
            away_sent_at: None,
            resolutions: 0,
            rating: None,
            sla_warned: None,
            sla_breaches: Vec::new(),
        };
        let msg = self.append_message(&mut conv, first, effects, provider_id)?;
        self.queue_if_routed(&mut conv)?;
        self.put_conversation(&conv, None)?;
        if let Some(mut c) =
            self.get::<super::ContactRecord>(Tree::ContactidContact, &u64_be(contact_id))?
        {
            c.set_latest(inbox_id, conv.id);
            self.put_contact(&c)?;
        }
        self.emit(
            inbox_id,
            contact_id,
            EventPayload::ConversationCreated {
                conversation: conv.clone(),
            },
        )?;
        self.emit(
            inbox_id,
            contact_id,
            EventPayload::MessageCreated {
                message: msg.clone(),
            },
        )?;
        Ok((conv, msg))
    }

    /// Appends a message to an existing conversation, reopening it when
    /// the contact writes, and emits the events.
    pub(crate) fn continue_conversation(
        &mut self,
        conversation_id: ConversationId,
        new: &NewMessage,
        effects: &Effects,
        provider_id: Option<&str>,
    ) -> TxResult<(MessageRecord, ConversationRecord)> {
        let old = self.conversation(conversation_id)?;
        let mut conv = old.clone();
        let msg = self.append_message(&mut conv, new, effects, provider_id)?;
        let mut changed = false;
        if new.author.kind == AuthorType::Contact {
            let reopened = conv.status.after_contact_message();
            if reopened != conv.status {
                conv.status = reopened;
                conv.snoozed_until = None;
                changed = true;
                self.queue_if_routed(&mut conv)?;
            }
        }
        self.put_conversation(&conv, Some(&old))?;
        self.emit(
            conv.inbox_id,
            conv.contact_id,
            EventPayload::MessageCreated {
                message: msg.clone(),
            },
        )?;
        if changed {
            self.emit(
                conv.inbox_id,
                conv.contact_id,
                EventPayload::ConversationUpdated {
                    conversation: conv.clone(),
                },
            )?;
        }
        Ok((msg, conv))
    }
}

impl Store {
    /// Starts a conversation with its first message (from the contact, so
    /// it has no [`Effects`]: nothing to send, nobody to notify).
    pub async fn create_conversation(
        &self,
        inbox_id: InboxId,
        contact_id: ContactId,
        first: NewMessage,
        now: Micros,
    ) -> Result<(ConversationRecord, MessageRecord)> {
        self.write(now, |tx| {
            tx.start_conversation(
                inbox_id,
                contact_id,
                &first,
                &Effects::default(),
                None,
                None,
            )
        })
        .await
    }

    /// Adds a message with what it must also do (see [`Effects`]). A
    /// contact's message reopens a pending, snoozed or resolved
    /// conversation (the contract's rule), in the same write.
    pub async fn post_message(
        &self,
        conversation_id: ConversationId,
        new: NewMessage,
        effects: Effects,
        now: Micros,
    ) -> Result<(MessageRecord, ConversationRecord)> {
        self.write(now, |tx| {
            tx.continue_conversation(conversation_id, &new, &effects, None)
        })
        .await
    }

    /// Posts the out-of-office message (a system message with its
    /// [`Effects`]) into `conversation_id` if `due` still holds for the
    /// conversation as this write sees it, and records `sent_at` (the
    /// server's clock) as when it last went. Returns whether it was posted.
    pub async fn post_away_message(
        &self,
        conversation_id: ConversationId,
        new: NewMessage,
        effects: Effects,
        now: Micros,
        due: impl Fn(&ConversationRecord) -> bool,
        sent_at: Micros,
    ) -> Result<bool> {
        self.write(now, |tx| {
            let c = tx.conversation(conversation_id)?;
            if !due(&c) {
                return Ok(false);
            }
            let mut marked = c.clone();
            marked.away_sent_at = Some(sent_at);
            tx.put_conversation(&marked, Some(&c))?;
            tx.continue_conversation(conversation_id, &new, &effects, None)?;
            Ok(true)
        })
        .await
    }

    /// Records the contact's rating of resolution `resolution` (the
    /// latest one; `None`: whichever is latest now): 409 when that
    /// resolution is rated already or is not the latest any more, 422
    /// when there is nothing to rate (never resolved, or no agent ever
    /// replied). The conversation's event carries it.
    pub async fn rate(
        &self,
        conversation_id: ConversationId,
        resolution: Option<u32>,
        score: u8,
        comment: Option<String>,
        now: Micros,
    ) -> Result<ConversationRecord> {
        self.write(now, |tx| {
            let old = tx.conversation(conversation_id)?;
            if old.resolutions == 0 || old.agent_replied_at.is_none() {
                return abort(StoreError::Invalid(crate::domain::Invalid::new(
                    "score",
                    "this conversation has no resolution to rate",
                )));
            }
            let asked = resolution.unwrap_or(old.resolutions);
            if asked != old.resolutions {
                return abort(StoreError::Conflict(
                    "this conversation was reopened since; its newer resolution is the one to rate"
                        .into(),
                ));
            }
            if old.rating.as_ref().is_some_and(|r| r.resolution == asked) {
                return abort(StoreError::Conflict(
                    "this resolution is rated already".into(),
                ));
            }
            let mut conv = old.clone();
            conv.rating = Some(super::RatingRecord {
                score,
                comment: comment.clone(),
                at: tx.now,
                resolution: asked,
            });
            tx.put_conversation(&conv, Some(&old))?;
            tx.emit(
                conv.inbox_id,
                conv.contact_id,
                EventPayload::ConversationUpdated {
                    conversation: conv.clone(),
                },
            )?;
            Ok(conv)
        })
        .await
    }

    /// Records an SLA warning (`breached` false) or breach for `clock` in
    /// a conversation, once each, if `still` holds for it as this write
    /// sees it (a reply meanwhile stopped that clock), and tells the team.
    /// The conversation's activity does not move. True when recorded.
    pub async fn sla_alert(
        &self,
        id: ConversationId,
        clock: crate::domain::sla::SlaClock,
        breached: bool,
        now: Micros,
        still: impl Fn(&ConversationRecord) -> bool,
    ) -> Result<bool> {
        self.write(crate::domain::time::now(), |tx| {
            let old = tx.conversation(id)?;
            if !still(&old) {
                return Ok(false);
            }
            let mut conv = old.clone();
            if breached {
                if conv
                    .sla_breaches
                    .iter()
                    .any(|b| b.target == clock.target && b.due_at == clock.due_at)
                {
                    return Ok(false);
                }
                conv.sla_breaches.push(super::SlaBreach {
                    target: clock.target,
                    due_at: clock.due_at,
                    at: now,
                });
            } else if conv.sla_warned == Some(clock.due_at) {
                return Ok(false);
            }
            conv.sla_warned = Some(clock.due_at);
            tx.put_conversation(&conv, Some(&old))?;
            tx.emit_for_team(
                conv.inbox_id,
                conv.contact_id,
                EventPayload::SlaAlert {
                    conversation: conv.clone(),
                    breached,
                },
            )?;
            Ok(true)
        })
        .await
    }

    /// The seconds customers waited for each first reply in `inbox` since
    /// `since`.
    pub fn first_reply_waits(&self, inbox: InboxId, since: Micros) -> Result<Vec<u64>> {
        let from = keys::concat(&[&u64_be(inbox), &u64_be(since.max(0) as u64)]);
        let to = keys::concat(&[&u64_be(inbox), &u64_be(u64::MAX)]);
        self.tree(Tree::InboxtimeFirstreply)
            .range(from..to)
            .values()
            .map(|v| keys::read_u64(&v?, 0))
            .collect()
    }

    /// Changes status, assignee, labels or snooze time. `validate` sees the
    /// stored conversation and may refuse the change (an assignee who is no
    /// member of the inbox).
    pub async fn patch_conversation(
        &self,
        id: ConversationId,
        patch: Patch,
        now: Micros,
        validate: impl Fn(&ConversationRecord) -> Result<()>,
    ) -> Result<ConversationRecord> {
        self.write(now, |tx| {
            let old = tx.conversation(id)?;
            validate(&old).or_else(abort)?;
            let mut conv = old.clone();
            if let Some(s) = patch.status {
                conv.status = s;
            }
            if let Some(a) = patch.assignee_id {
                conv.assignee_id = a;
            }
            if let Some(l) = &patch.labels {
                conv.labels = l.clone();
            }
            if let Some(t) = patch.snoozed_until {
                conv.snoozed_until = t;
            }
            if let Some(p) = patch.priority {
                conv.priority = p;
            }
            if conv.status != ConversationStatus::Snoozed {
                conv.snoozed_until = None;
            }
            let same = conv.status == old.status
                && conv.assignee_id == old.assignee_id
                && conv.labels == old.labels
                && conv.snoozed_until == old.snoozed_until
                && conv.priority == old.priority;
            if same {
                return Ok(conv);
            }
            conv.updated_at = tx.now.max(conv.updated_at);
            if conv.status == ConversationStatus::Resolved && old.status != conv.status {
                conv.resolutions += 1;
            }
            if old.status != ConversationStatus::Open {
                // Reopened (by an agent, or a snooze that ended).
                tx.queue_if_routed(&mut conv)?;
            }
            tx.put_conversation(&conv, Some(&old))?;
            if let (Some(a), true) = (conv.assignee_id, conv.assignee_id != old.assignee_id) {
                tx.assigned(a)?;
            }
            let payload = EventPayload::ConversationUpdated {
                conversation: conv.clone(),
            };
            // Labels and assignment are the team's: the contact hears only
            // of what it sees (status, snooze).
            if conv.status == old.status && conv.snoozed_until == old.snoozed_until {
                tx.emit_for_team(conv.inbox_id, conv.contact_id, payload)?;
            } else {
                tx.emit(conv.inbox_id, conv.contact_id, payload)?;
            }
            Ok(conv)
        })
        .await
    }

    /// Records that an agent (for the team) or the contact read up to
    /// `seq` (clamped to the newest message), and tells the other side.
    pub async fn mark_read(
        &self,
        id: ConversationId,
        reader: Reader,
        seq: u64,
        now: Micros,
    ) -> Result<ConversationRecord> {
        self.write(now, |tx| {
            let old = tx.conversation(id)?;
            let mut conv = old.clone();
            let seq = seq.min(conv.last_seq);
            let (read, unread, counted) = match reader.kind {
                AuthorType::Contact => (
                    conv.contact_read_seq,
                    conv.contact_unread,
                    AuthorType::Agent,
                ),
                _ => (conv.agent_read_seq, conv.agent_unread, AuthorType::Contact),
            };
            if seq <= read {
                return Ok(conv);
            }
            // Count what stays unread after `seq` (usually nothing).
            let mut left = 0;
            if unread > 0 {
                for s in seq + 1..=conv.last_seq {
                    if let Some(m) = tx.get::<MessageRecord>(
                        Tree::ConversationseqMessage,
                        &keys::conversation_seq(id, s),
                    )? {
                        if m.author.kind == counted
                            || (counted == AuthorType::Agent && m.author.kind == AuthorType::System)
                        {
                            left += u64::from(!m.private);
                        }
                    }
                }
            }
            match reader.kind {
                AuthorType::Contact => {
                    conv.contact_read_seq = seq;
                    conv.contact_unread = left;
                }
                _ => {
                    conv.agent_read_seq = seq;
                    conv.agent_unread = left;
                }
            }
            tx.put_conversation(&conv, Some(&old))?;
            tx.emit(
                conv.inbox_id,
                conv.contact_id,
                EventPayload::ConversationRead {
                    conversation_id: id,
                    reader: reader.clone(),
                    seq,
                },
            )?;
            Ok(conv)
        })
        .await
    }

    /// Reopens snoozed conversations whose time has come; returns them.
    pub async fn wake_snoozed(&self, now: Micros) -> Result<Vec<ConversationRecord>> {
        let due: Vec<ConversationId> = self
            .tree(Tree::SnoozeuntilConversationid)
            .range(..time_id(now, u64::MAX))
            .keys()
            .map(|k| {
                k.map_err(StoreError::from)
                    .and_then(|k| keys::read_u64(&k, 8).map(ConversationId::new))
            })
            .collect::<Result<_>>()?;
        let mut woken = Vec::new();
        for id in due {
            let patch = Patch {
                status: Some(ConversationStatus::Open),
                snoozed_until: Some(None),
                ..Patch::default()
            };
            match self
                .patch_conversation(id, patch, now, |c| {
                    if c.status == ConversationStatus::Snoozed
                        && c.snoozed_until.is_some_and(|t| t <= now)
                    {
                        Ok(())
                    } else {
                        Err(StoreError::Conflict("no longer due".into()))
                    }
                })
                .await
            {
                Ok(c) => woken.push(c),
                Err(StoreError::Conflict(_)) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(woken)
    }

    /// The message an attachment belongs to: (conversation, seq, private).
    pub fn attachment_owner(&self, file_id: &str) -> Result<Option<(ConversationId, u64, bool)>> {
        self.get(Tree::FileidMessage, file_id.as_bytes())
    }

    /// How many messages are stored (for progress reports).
    pub fn message_count(&self) -> u64 {
        self.tree(Tree::ConversationseqMessage).len() as u64
    }

    /// One message by conversation and seq.
    pub fn message(&self, conversation: ConversationId, seq: u64) -> Result<Option<MessageRecord>> {
        self.get(
            Tree::ConversationseqMessage,
            &keys::conversation_seq(conversation, seq),
        )
    }

    /// A real seq in the contact's numbering: the ordinal of the newest
    /// public message at or before `seq` (0: none), so a read position
    /// that points at a note shows as the public message before it. Walks
    /// back over notes only.
    pub fn ordinal_upto(&self, c: &ConversationRecord, seq: u64) -> Result<u64> {
        match c.last_public() {
            None => return Ok(0),
            Some(m) if seq >= m.seq => return Ok(m.ordinal),
            Some(_) => {}
        }
        let range = keys::conversation_seq(c.id, 1)..=keys::conversation_seq(c.id, seq);
        for kv in self.tree(Tree::ConversationseqMessage).range(range).rev() {
            let (_, v) = kv?;
            let m: MessageRecord = super::decode(&v)?;
            if !m.private {
                return Ok(m.ordinal);
            }
        }
        Ok(0)
    }

    /// A number a contact sent, as a real seq: the seq of its
    /// `ordinal`-th public message, clamped to the newest (0 stays 0). A
    /// conversation erased meanwhile is `NotFound`.
    pub fn seq_of_ordinal(&self, c: &ConversationRecord, ordinal: u64) -> Result<u64> {
        let ordinal = ordinal.min(c.public_count());
        if ordinal == 0 {
            return Ok(0);
        }
        self.seq_at_ordinal(c.id, ordinal)?
            .ok_or(StoreError::NotFound)
    }

    /// The real seq of a conversation's `ordinal`-th public message, from
    /// the `conversationordinal_seq` index.
    fn seq_at_ordinal(&self, conversation: ConversationId, ordinal: u64) -> Result<Option<u64>> {
        self.get_id(
            Tree::ConversationordinalSeq,
            &keys::conversation_ordinal(conversation, ordinal),
        )
    }

    /// The conversation's `ordinal`-th public message, if there is one.
    pub fn public_message(
        &self,
        conversation: ConversationId,
        ordinal: u64,
    ) -> Result<Option<MessageRecord>> {
        if ordinal == 0 {
            return Ok(None);
        }
        match self.seq_at_ordinal(conversation, ordinal)? {
            Some(seq) => self.message(conversation, seq),
            None => Ok(None),
        }
    }

    /// One conversation.
    pub fn conversation(&self, id: ConversationId) -> Result<Option<ConversationRecord>> {
        self.get(Tree::ConversationidConversation, &u64_be(id))
    }

    /// Lists conversations newest activity first, walking the per-inbox,
    /// per-status indexes (no full scan) and merging them.
    pub fn list_conversations(&self, f: &ConversationFilter) -> Result<ConversationPage> {
        let idx = self.tree(Tree::InboxstatusactivityConversationid);
        // (newest-first activity, id) of every candidate, in global order.
        let mut candidates: BTreeSet<(u64, ConversationId)> = BTreeSet::new();
        let want = f.limit.saturating_add(1);
        for &inbox in &f.inboxes {
            for &status in &f.statuses {
                let prefix = keys::inbox_status_prefix(inbox, status.key_byte());
                let start = match f.after {
                    Some((t, id)) => keys::inbox_status_activity(inbox, status.key_byte(), t, id),
                    None => prefix.clone(),
                };
                let mut taken = 0;
                for k in idx.range(start..) {
                    let (k, _) = k?;
                    if !k.starts_with(&prefix) {
                        break;
                    }
                    let (activity, id) = keys::decode_inbox_status_activity(&k)?;
                    let id = ConversationId::new(id);
                    if f.after == Some((activity, id)) {
                        continue;
                    }
                    if f.assignee.is_some() || f.label.is_some() || f.waiting {
                        let Some(c) = self.conversation(id)? else {
                            continue;
                        };
                        if !matches_filter(&c, f) {
                            continue;
                        }
                    }
                    candidates.insert((keys::newest_first(activity), id));
                    taken += 1;
                    if taken >= want {
                        break;
                    }
                }
            }
        }
        let mut conversations = Vec::new();
        let mut next = None;
        for (i, (inv, id)) in candidates.into_iter().enumerate() {
            if i == f.limit {
                break;
            }
            if let Some(c) = self.conversation(id)? {
                conversations.push(c);
            }
            next = Some((keys::from_newest_first(inv), id));
        }
        if conversations.len() < f.limit {
            next = None;
        }
        Ok(ConversationPage {
            conversations,
            next,
        })
    }

    /// How many conversations of `inboxes` have `status` and, with
    /// `assignee` given, that assignee (`Some(None)`: unassigned): read
    /// from the counters, so it costs a few key reads however many
    /// conversations there are.
    pub fn count_conversations(
        &self,
        inboxes: &[InboxId],
        status: ConversationStatus,
        assignee: Option<Option<AgentId>>,
    ) -> Result<u64> {
        let counts = self.tree(Tree::InboxstatusassigneeCount);
        let mut n = 0u64;
        for &inbox in inboxes {
            match assignee {
                Some(a) => {
                    let key = keys::inbox_status_assignee(inbox, status.key_byte(), a);
                    if let Some(v) = counts.get(key)? {
                        n += keys::read_u64(&v, 0)?;
                    }
                }
                None => {
                    let prefix = keys::inbox_status_prefix(inbox, status.key_byte());
                    for v in counts.scan_prefix(prefix).values() {
                        n += keys::read_u64(&v?, 0)?;
                    }
                }
            }
        }
        Ok(n)
    }

    /// Builds the tab counters from the conversation records (migration
    /// to schema 5; the counters are derived, so this is also a repair).
    pub(crate) fn count_all_conversations(&self) -> Result<()> {
        let mut counts: std::collections::BTreeMap<Vec<u8>, u64> = Default::default();
        for v in self.tree(Tree::ConversationidConversation).iter().values() {
            let c: ConversationRecord = super::decode(&v?)?;
            let (inbox, status, assignee) = counted_as(&c);
            *counts
                .entry(keys::inbox_status_assignee(inbox, status, assignee))
                .or_default() += 1;
        }
        let tree = self.tree(Tree::InboxstatusassigneeCount);
        tree.clear()?;
        let mut batch = sled::Batch::default();
        for (k, n) in counts {
            batch.insert(k, &u64_be(n));
        }
        tree.apply_batch(batch)?;
        Ok(())
    }

    /// A contact's conversations, newest activity first.
    pub fn contact_conversations(&self, contact_id: ContactId) -> Result<Vec<ConversationRecord>> {
        let mut out = Vec::new();
        for k in self
            .tree(Tree::ContactidConversationid)
            .scan_prefix(u64_be(contact_id))
            .keys()
        {
            let id = ConversationId::new(keys::read_u64(&k?, 8)?);
            if let Some(c) = self.conversation(id)? {
                out.push(c);
            }
        }
        out.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// A contact's conversations as the contact sees them: newest visible
    /// message first (a note moves nothing in its list).
    pub fn contact_conversations_for_contact(
        &self,
        contact_id: ContactId,
    ) -> Result<Vec<ConversationRecord>> {
        let mut out = self.contact_conversations(contact_id)?;
        out.sort_by(|a, b| {
            b.contact_activity()
                .cmp(&a.contact_activity())
                .then(b.id.cmp(&a.id))
        });
        Ok(out)
    }

    /// Messages of a conversation, oldest first. Without `after` or
    /// `before` it returns the newest `limit`.
    pub fn messages(
        &self,
        conversation_id: ConversationId,
        p: MessagePage,
    ) -> Result<Vec<MessageRecord>> {
        let tree = self.tree(Tree::ConversationseqMessage);
        let lo =
            keys::conversation_seq(conversation_id, p.after.map_or(0, |a| a.saturating_add(1)));
        let hi = keys::conversation_seq(conversation_id, p.before.unwrap_or(u64::MAX));
        let iter = tree.range(lo..hi).values();
        let mut out = Vec::new();
        let keep = |m: &MessageRecord| p.include_private || !m.private;
        if p.after.is_some() && p.before.is_none() {
            for v in iter {
                let m: MessageRecord = super::decode(&v?)?;
                if keep(&m) {
                    out.push(m);
                    if out.len() >= p.limit {
                        break;
                    }
                }
            }
        } else {
            for v in iter.rev() {
                let m: MessageRecord = super::decode(&v?)?;
                if keep(&m) {
                    out.push(m);
                    if out.len() >= p.limit {
                        break;
                    }
                }
            }
            out.reverse();
        }
        Ok(out)
    }

    /// The public messages of a conversation as its contact pages them:
    /// [`Store::messages`] with `after` and `before` in the contact's
    /// numbering (ordinals), translated to real seqs, so paging sees no
    /// gaps where notes are.
    pub fn public_messages(
        &self,
        c: &ConversationRecord,
        p: MessagePage,
    ) -> Result<Vec<MessageRecord>> {
        let after = p.after.map(|o| self.seq_of_ordinal(c, o)).transpose()?;
        let before = match p.before {
            // Past the newest: every public message is before it.
            Some(o) if o > c.public_count() => Some(u64::MAX),
            Some(o) => Some(self.seq_of_ordinal(c, o)?),
            None => None,
        };
        self.messages(
            c.id,
            MessagePage {
                after,
                before,
                include_private: false,
                ..p
            },
        )
    }

    /// Every message in store order, from just after `from` (a conversation
    /// and seq); used by the simple search until the full-text index.
    pub fn scan_messages(
        &self,
        from: Option<(ConversationId, u64)>,
    ) -> impl Iterator<Item = Result<MessageRecord>> + '_ {
        let start = match from {
            Some((c, s)) => keys::conversation_seq(c, s.saturating_add(1)),
            None => Vec::new(),
        };
        self.tree(Tree::ConversationseqMessage)
            .range(start..)
            .values()
            .map(|v| super::decode(&v?))
    }
}

impl Store {
    /// Schema 3 -> 4: gives every public message its ordinal (see
    /// `MessageRecord::ordinal`) and the index from ordinal to seq, one
    /// conversation per transaction (its messages, its index and its
    /// record with the copies of its last messages), then fixes the copies
    /// of messages and conversations inside logged events, which customer
    /// streams replay. Every step sets values computed from the messages
    /// alone, so a migration interrupted by a crash simply runs again.
    pub(super) fn assign_ordinals(&self) -> Result<()> {
        let messages = self.tree(Tree::ConversationseqMessage);
        let ordinals = self.tree(Tree::ConversationordinalSeq);
        let conversations = self.tree(Tree::ConversationidConversation);
        for kv in conversations.iter() {
            let (conv_key, v) = kv?;
            let mut c: ConversationRecord = super::decode(&v)?;
            let mut rewritten = Vec::new();
            let mut index = Vec::new();
            let mut count = 0;
            for kv in messages.scan_prefix(u64_be(c.id)) {
                let (k, v) = kv?;
                let mut m: MessageRecord = super::decode(&v)?;
                m.ordinal = if m.private {
                    0
                } else {
                    count += 1;
                    index.push((keys::conversation_ordinal(c.id, count), u64_be(m.seq)));
                    count
                };
                for copy in [&mut c.last_message, &mut c.last_public_message]
                    .into_iter()
                    .flatten()
                {
                    if copy.seq == m.seq {
                        copy.ordinal = m.ordinal;
                    }
                }
                rewritten.push((k, super::encode(&m)?));
            }
            let conv_bytes = super::encode(&c)?;
            let res: std::result::Result<(), TransactionError<StoreError>> =
                (messages, ordinals, conversations).transaction(|(m, o, cv)| {
                    for (k, v) in &rewritten {
                        m.insert(k, v.as_slice())?;
                    }
                    for (k, v) in &index {
                        o.insert(k.as_slice(), &v[..])?;
                    }
                    cv.insert(&conv_key, conv_bytes.as_slice())?;
                    Ok(())
                });
            res.map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => e.into(),
            })?;
        }
        // Logged events hold copies taken when they happened; each copy
        // of a message gets the ordinal of the stored message (a message
        // erased with its contact has no events left either).
        let ordinal_of = |m: &mut MessageRecord| -> Result<()> {
            if let Some(stored) = self.message(m.conversation_id, m.seq)? {
                m.ordinal = stored.ordinal;
            }
            Ok(())
        };
        let events = self.tree(Tree::EventidEvent);
        for kv in events.iter() {
            let (k, v) = kv?;
            // A message kept by reference has no copy to number.
            let mut ev: super::events::StoredEvent = super::decode(&v)?;
            let Some(payload) = ev.payload.as_mut() else {
                continue;
            };
            match payload {
                EventPayload::MessageCreated { message }
                | EventPayload::MessageUpdated { message } => ordinal_of(message)?,
                EventPayload::ConversationCreated { conversation }
                | EventPayload::ConversationUpdated { conversation }
                | EventPayload::SlaAlert { conversation, .. } => {
                    for copy in [
                        &mut conversation.last_message,
                        &mut conversation.last_public_message,
                    ]
                    .into_iter()
                    .flatten()
                    {
                        ordinal_of(copy)?;
                    }
                }
                EventPayload::ConversationRead { .. } | EventPayload::ContactDeleted { .. } => {
                    continue
                }
            }
            events.insert(k, super::encode(&ev)?)?;
        }
        Ok(())
    }
}

/// What a conversation counts toward: its inbox, status and assignee.
pub(super) fn counted_as(c: &ConversationRecord) -> (InboxId, u8, Option<AgentId>) {
    (c.inbox_id, c.status.key_byte(), c.assignee_id)
}

fn matches_filter(c: &ConversationRecord, f: &ConversationFilter) -> bool {
    if let Some(a) = f.assignee {
        if c.assignee_id != a {
            return false;
        }
    }
    if let Some(l) = &f.label {
        if !c.labels.iter().any(|x| x == l) {
            return false;
        }
    }
    !f.waiting || c.waiting_since().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir) -> std::sync::Arc<Store> {
        Store::open_for_test(dir.path())
    }

    fn says(kind: AuthorType, body: &str, private: bool) -> NewMessage {
        NewMessage {
            author: Author {
                kind,
                id: Some(1),
                name: None,
            },
            body: body.into(),
            private,
            attachments: Vec::new(),
            via: None,
        }
    }

    /// Strips what schema 4 added, as a schema-3 folder has it: no
    /// ordinal in any stored message, in the copies inside conversations
    /// and events (which then held a whole copy of their message), and no
    /// ordinal index.
    fn as_schema_3(store: &Store) {
        let strip = |tree: Tree| {
            for kv in store.tree(tree).iter() {
                let (k, v) = kv.unwrap_or_else(|e| panic!("{e}"));
                let mut json: serde_json::Value =
                    serde_json::from_slice(&v).unwrap_or_else(|e| panic!("{e}"));
                strip_ordinals(&mut json);
                let bytes = serde_json::to_vec(&json).unwrap_or_else(|e| panic!("{e}"));
                store
                    .tree(tree)
                    .insert(k, bytes)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        };
        // Events of then held a copy of their message.
        for ev in store
            .events_between(0, u64::MAX, usize::MAX)
            .unwrap_or_else(|e| panic!("{e}"))
        {
            let bytes = serde_json::to_vec(&ev).unwrap_or_else(|e| panic!("{e}"));
            store
                .tree(Tree::EventidEvent)
                .insert(u64_be(ev.id), bytes)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        strip(Tree::EventidEvent);
        strip(Tree::ConversationseqMessage);
        strip(Tree::ConversationidConversation);
        store
            .tree(Tree::ConversationordinalSeq)
            .clear()
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .tree(Tree::Meta)
            .insert("schema_version", &3u32.to_be_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        store.flush_now().unwrap_or_else(|e| panic!("{e}"));
    }

    fn strip_ordinals(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("ordinal");
                map.values_mut().for_each(strip_ordinals);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip_ordinals),
            _ => {}
        }
    }

    /// Every tab count the counters give, checked against listing the
    /// conversations.
    fn assert_counts_match_lists(store: &Store, inboxes: &[InboxId]) {
        for s in ConversationStatus::ALL {
            for assignee in [
                None,
                Some(None),
                Some(Some(AgentId::new(7))),
                Some(Some(AgentId::new(8))),
            ] {
                for scope in [inboxes.to_vec(), vec![inboxes[0]]] {
                    let listed = store
                        .list_conversations(&ConversationFilter {
                            inboxes: scope.clone(),
                            statuses: vec![s],
                            assignee,
                            label: None,
                            waiting: false,
                            after: None,
                            limit: 1000,
                        })
                        .unwrap_or_else(|e| panic!("{e}"))
                        .conversations
                        .len() as u64;
                    let counted = store
                        .count_conversations(&scope, s, assignee)
                        .unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(counted, listed, "{s:?} {assignee:?} in {scope:?}");
                }
            }
        }
    }

    /// The counters follow every move of a conversation (new, status,
    /// assignee, a new message, the contact erased) and a schema-4 folder
    /// gets them built at start.
    #[tokio::test]
    async fn tab_counters_follow_every_change_and_are_built_for_old_folders() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let inboxes = [InboxId::new(1), InboxId::new(2)];
        {
            let store = open(&dir);
            let flusher = tokio::spawn(store.durability().clone().run_flusher());
            let mut convs = Vec::new();
            for i in 0..12u64 {
                let contact = store
                    .upsert_contact(
                        inboxes[(i % 2) as usize],
                        crate::store::NewContact::default(),
                        1,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .id;
                let (c, _) = store
                    .create_conversation(
                        inboxes[(i % 2) as usize],
                        contact,
                        says(AuthorType::Contact, "hello", false),
                        1,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                convs.push((c.id, contact));
            }
            assert_counts_match_lists(&store, &inboxes);
            for (i, (id, _)) in convs.iter().enumerate() {
                let patch = Patch {
                    status: [
                        None,
                        Some(ConversationStatus::Resolved),
                        Some(ConversationStatus::Pending),
                    ][i % 3],
                    assignee_id: [
                        None,
                        Some(Some(AgentId::new(7))),
                        Some(Some(AgentId::new(8))),
                        Some(None),
                    ][i % 4],
                    labels: None,
                    snoozed_until: None,
                    priority: None,
                };
                store
                    .patch_conversation(*id, patch, 2, |_| Ok(()))
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            assert_counts_match_lists(&store, &inboxes);
            // A customer's message reopens a resolved conversation.
            store
                .post_message(
                    convs[1].0,
                    says(AuthorType::Contact, "again", false),
                    Effects::default(),
                    3,
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            store
                .delete_contact(convs[2].1, 4)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_counts_match_lists(&store, &inboxes);
            store.durability().stop().await;
            flusher.await.unwrap_or_else(|e| panic!("{e}"));
            // As a schema-4 folder has it: no counters.
            store
                .tree(Tree::InboxstatusassigneeCount)
                .clear()
                .unwrap_or_else(|e| panic!("{e}"));
            store
                .tree(Tree::Meta)
                .insert("schema_version", &4u32.to_be_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
            store.flush_now().unwrap_or_else(|e| panic!("{e}"));
        }
        let store = open(&dir);
        assert_eq!(
            store.meta_get("schema_version").ok().flatten(),
            Some(5u32.to_be_bytes().to_vec())
        );
        assert_counts_match_lists(&store, &inboxes);
        let all = store
            .count_conversations(&inboxes, ConversationStatus::Open, None)
            .unwrap_or_else(|e| panic!("{e}"))
            + store
                .count_conversations(&inboxes, ConversationStatus::Pending, None)
                .unwrap_or_else(|e| panic!("{e}"))
            + store
                .count_conversations(&inboxes, ConversationStatus::Resolved, None)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all, 11, "twelve conversations, one erased with its contact");
    }

    /// The newest public message is stored once while it is the newest
    /// message, and kept by itself once notes follow it.
    #[tokio::test]
    async fn the_newest_public_message_is_kept_once_and_survives_notes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = open(&dir);
        let _flusher = tokio::spawn(store.durability().clone().run_flusher());
        let (conv, _) = store
            .create_conversation(
                InboxId::new(1),
                ContactId::new(2),
                says(AuthorType::Contact, "hello", false),
                1,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let state = |store: &Store| {
            let c = store
                .conversation(conv.id)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("conversation"));
            (
                c.last_message.as_ref().map(|m| m.body.clone()),
                c.last_public().map(|m| m.body.clone()),
                c.last_public_message.is_some(),
            )
        };
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(state(&store), (some("hello"), some("hello"), false));
        let steps = [
            ("note 1", true, "note 1", "hello", true),
            ("note 2", true, "note 2", "hello", true),
            ("reply", false, "reply", "reply", false),
            ("note 3", true, "note 3", "reply", true),
        ];
        for (body, private, last, public, kept_apart) in steps {
            store
                .post_message(
                    conv.id,
                    says(AuthorType::Agent, body, private),
                    Effects::default(),
                    2,
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                state(&store),
                (some(last), some(public), kept_apart),
                "after {body}"
            );
        }
    }

    #[tokio::test]
    async fn erasing_a_contact_removes_its_ordinal_index() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = open(&dir);
        let _flusher = tokio::spawn(store.durability().clone().run_flusher());
        let contact = store
            .upsert_contact(InboxId::new(1), crate::store::NewContact::default(), 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .id;
        let (conv, _) = store
            .create_conversation(
                InboxId::new(1),
                contact,
                says(AuthorType::Contact, "hello", false),
                1,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .post_message(
                conv.id,
                says(AuthorType::Agent, "reply", false),
                Effects::default(),
                2,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let index = store.tree(Tree::ConversationordinalSeq);
        assert_eq!(index.len(), 2, "one entry per public message");
        store
            .delete_contact(contact, 3)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(index.is_empty(), "nothing of the conversation is left");
    }

    #[tokio::test]
    async fn schema_3_messages_get_their_public_ordinals() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conv_id;
        {
            let store = open(&dir);
            let flusher = tokio::spawn(store.durability().clone().run_flusher());
            let (conv, _) = store
                .create_conversation(
                    InboxId::new(1),
                    ContactId::new(2),
                    says(AuthorType::Contact, "hello", false),
                    1,
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            conv_id = conv.id;
            for (kind, body, private) in [
                (AuthorType::Agent, "note", true),
                (AuthorType::Agent, "reply", false),
                (AuthorType::Agent, "note", true),
                (AuthorType::Contact, "thanks", false),
                (AuthorType::Agent, "last note", true),
            ] {
                store
                    .post_message(conv_id, says(kind, body, private), Effects::default(), 2)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            store.durability().stop().await;
            flusher.await.unwrap_or_else(|e| panic!("{e}"));
            as_schema_3(&store);
            let m = store.message(conv_id, 3).ok().flatten();
            assert_eq!(m.map(|m| m.ordinal), Some(0), "the folder has no ordinals");
        }

        let store = open(&dir);
        let _flusher = tokio::spawn(store.durability().clone().run_flusher());
        assert_eq!(
            store.meta_get("schema_version").ok().flatten(),
            Some(crate::store::SCHEMA_VERSION.to_be_bytes().to_vec())
        );
        let ordinals: Vec<(u64, u64)> = (1..=6)
            .map(|s| {
                let m = store.message(conv_id, s).ok().flatten();
                (s, m.map_or(u64::MAX, |m| m.ordinal))
            })
            .collect();
        assert_eq!(ordinals, [(1, 1), (2, 0), (3, 2), (4, 0), (5, 3), (6, 0)]);
        let c = store
            .conversation(conv_id)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("conversation"));
        assert_eq!(c.public_count(), 3);
        assert_eq!(
            c.last_message.as_ref().map(|m| (m.seq, m.ordinal)),
            Some((6, 0))
        );
        let seqs: Vec<u64> = (0..=4)
            .map(|o| store.seq_of_ordinal(&c, o).unwrap_or(u64::MAX))
            .collect();
        assert_eq!(seqs, [0, 1, 3, 5, 5], "the index finds each real seq");
        assert_eq!(store.ordinal_upto(&c, 4).ok(), Some(2));
        // The logged copies, which customer streams replay, are numbered too.
        let mut logged = Vec::new();
        for ev in store
            .events_between(0, u64::MAX, usize::MAX)
            .unwrap_or_else(|e| panic!("{e}"))
        {
            match ev.payload {
                EventPayload::MessageCreated { message } => {
                    logged.push((message.seq, message.ordinal))
                }
                EventPayload::ConversationCreated { conversation } => {
                    assert_eq!(conversation.public_count(), 1)
                }
                _ => {}
            }
        }
        assert_eq!(logged, [(1, 1), (2, 0), (3, 2), (4, 0), (5, 3), (6, 0)]);
        // The next public message continues the numbering.
        let (m, _) = store
            .post_message(
                conv_id,
                says(AuthorType::Agent, "after", false),
                Effects::default(),
                3,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((m.seq, m.ordinal), (7, 4));
    }
}
