//! What channels need from the store: inbound messages keyed by the
//! sender's channel address and the provider's message id (so a retried
//! webhook stores nothing new), delivery states of outbound messages,
//! media fetched after the fact, and merging two contacts into one person.

use super::keys::{self, id_text, pair, u64_be};
use super::{
    abort, AttachmentRecord, Author, ChannelIdentity, ContactRecord, ConversationRecord, Delivery,
    DeliveryStatus, Effects, EventPayload, InboxRecord, JobKind, MediaRef, MessageRecord,
    NewMessage, Result, Store, StoreError, TokenRecord, Tree, Tx, TxResult,
};
use crate::domain::ids::{ContactId, ConversationId, InboxId};
use crate::domain::time::Micros;
use crate::domain::{AuthorType, ConversationStatus};

/// One message a channel received, in the core's terms.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    /// The sender's channel address (phone, wa_id, PSID, chat id, email,
    /// source_id): one contact per address per inbox.
    pub identity: String,
    /// The sender's name, if the provider gave one.
    pub name: Option<String>,
    /// The sender's email, if known.
    pub email: Option<String>,
    /// Text (may be empty when media or attachments come with it).
    pub body: String,
    /// The provider's id: unique per inbox, so retries are no-ops.
    pub provider_id: Option<String>,
    /// Media to download once the message is durable.
    pub media: Vec<MediaRef>,
    /// Files already saved (an email's original, its attachments).
    pub attachments: Vec<AttachmentRecord>,
    /// A conversation the message names (email threading), if any. It is
    /// continued only if the sender's contact owns it, unless `proven`.
    pub conversation_id: Option<ConversationId>,
    /// The sender proved it may write in `conversation_id` as that
    /// conversation's contact (an email answering with a routing token we
    /// mailed to this very address, a MAC only natter can make), even from
    /// another inbox: an answer to a reply notification.
    pub proven: bool,
    /// Email subject, kept on a new conversation.
    pub subject: Option<String>,
    /// When the person sent it, by the provider's clock (the 24-hour
    /// windows count from it; a late webhook retry must not extend them).
    pub sent_at: Option<Micros>,
}

/// What became of an inbound message.
#[derive(Debug, Clone)]
pub enum Received {
    /// Stored now.
    Stored {
        /// The new message.
        message: MessageRecord,
        /// Its conversation.
        conversation: Box<super::ConversationRecord>,
        /// Whether this message started the conversation or reopened it
        /// (auto-assignment queues it then).
        opened: bool,
    },
    /// The provider id was seen before: nothing stored.
    Duplicate {
        /// The message stored the first time, if it still exists.
        message: Option<MessageRecord>,
    },
}

impl Received {
    /// The conversation, if this message started or reopened it.
    pub fn opened(&self) -> Option<&super::ConversationRecord> {
        match self {
            Received::Stored {
                conversation,
                opened: true,
                ..
            } => Some(conversation),
            _ => None,
        }
    }
}

/// The product's rules for an inbound message, applied by the store
/// inside the write that stores it (so they see the state they change).
/// The store only asks; `service::inbound` answers.
pub trait InboundRules: Sync {
    /// The verified identifier (`phone:+…`) a sender's address proves on
    /// this inbox, if any: one person across channels.
    fn verified_key(&self, inbox: &InboxRecord, identity: &str) -> Option<String>;

    /// Whether a message from `sender` continues `candidate`, a
    /// conversation the message names (`named`) or the sender's newest in
    /// this inbox (`latest`); when none continues, a new one starts.
    fn continues(
        &self,
        inbox: &InboxRecord,
        sender: &ContactRecord,
        candidate: &ConversationRecord,
        named: bool,
        latest: bool,
    ) -> bool;
}

impl Tx<'_> {
    fn message_at(&self, conversation: ConversationId, seq: u64) -> TxResult<MessageRecord> {
        match self.get(
            Tree::ConversationseqMessage,
            &keys::conversation_seq(conversation, seq),
        )? {
            Some(m) => Ok(m),
            None => abort(StoreError::NotFound),
        }
    }

    fn emit_message_updated(&mut self, m: &MessageRecord) -> TxResult<()> {
        let conv = self.conversation(m.conversation_id)?;
        self.emit(
            conv.inbox_id,
            conv.contact_id,
            EventPayload::MessageUpdated { message: m.clone() },
        )?;
        Ok(())
    }
}

impl Tx<'_> {
    /// [`Store::receive`] inside its write, step by step.
    fn receive(
        &mut self,
        inbox: &InboxRecord,
        m: &Inbound,
        rules: &dyn InboundRules,
    ) -> TxResult<Received> {
        if let Some(seen) = self.seen_before(inbox.id, m.provider_id.as_deref())? {
            return Ok(seen);
        }
        if let Some(stored) = self.receive_proven(inbox, m)? {
            return Ok(stored);
        }
        let mut contact = self.sender(inbox, m, rules)?;
        if contact.name.is_none() {
            contact.name = m.name.clone();
        }
        if contact.email.is_none() {
            contact.email = m.email.clone();
        }
        // The provider's clock, never ahead of ours: a late webhook retry
        // must not extend the 24-hour windows.
        let sent = m.sent_at.unwrap_or(self.now).min(self.now);
        contact.last_inbound_at = Some(contact.last_inbound_at.map_or(sent, |t| t.max(sent)));
        self.put_contact(&contact)?;
        let new = inbound_message(&contact, m);
        let none = Effects::default();
        let pid = m.provider_id.as_deref();
        let mut before = None;
        let (message, conversation) = match self.inbound_target(inbox, m, &contact, rules)? {
            Some(id) => {
                before = Some(self.conversation(id)?.status);
                self.continue_conversation(id, &new, &none, pid)?
            }
            None => {
                let (c, msg) = self.start_conversation(
                    inbox.id,
                    contact.id,
                    &new,
                    &none,
                    pid,
                    m.subject.clone(),
                )?;
                (msg, c)
            }
        };
        if !m.media.is_empty() {
            self.enqueue(
                JobKind::FetchMedia {
                    conversation_id: conversation.id,
                    seq: message.seq,
                    media: m.media.clone(),
                },
                self.now,
            )?;
        }
        Ok(Received::Stored {
            message,
            opened: before != Some(ConversationStatus::Open)
                && conversation.status == ConversationStatus::Open,
            conversation: Box::new(conversation),
        })
    }

    /// The message stored the first time a provider id was seen, if it was.
    fn seen_before(
        &mut self,
        inbox_id: InboxId,
        provider_id: Option<&str>,
    ) -> TxResult<Option<Received>> {
        let Some(pid) = provider_id else {
            return Ok(None);
        };
        let key = id_text(inbox_id, pid);
        let Some((c, s)) = self.get::<(ConversationId, u64)>(Tree::InboxprovideridMessage, &key)?
        else {
            return Ok(None);
        };
        let message = self.get(Tree::ConversationseqMessage, &keys::conversation_seq(c, s))?;
        Ok(Some(Received::Duplicate { message }))
    }

    /// A sender that proved it answers what we mailed to it (an answer to
    /// a reply notification, from another inbox too) continues that
    /// conversation as its contact. A typed email proves nothing: only
    /// the routing token does (see [`Inbound::proven`]).
    fn receive_proven(&mut self, inbox: &InboxRecord, m: &Inbound) -> TxResult<Option<Received>> {
        let (Some(cid), true) = (m.conversation_id, m.proven) else {
            return Ok(None);
        };
        let conversation: Option<ConversationRecord> =
            self.get(Tree::ConversationidConversation, &u64_be(cid))?;
        let Some(c) = conversation else {
            return Ok(None);
        };
        let owner: Option<ContactRecord> =
            self.get(Tree::ContactidContact, &u64_be(c.contact_id))?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        let new = inbound_message(&owner, m);
        let none = Effects::default();
        let pid = m.provider_id.as_deref();
        let (message, conversation) = self.continue_conversation(cid, &new, &none, pid)?;
        if let Some(pid) = pid {
            // Retries arrive at this inbox: they must find the message.
            let key = id_text(inbox.id, pid);
            self.put(Tree::InboxprovideridMessage, &key, &(cid, message.seq))?;
        }
        Ok(Some(Received::Stored {
            message,
            opened: c.status != ConversationStatus::Open
                && conversation.status == ConversationStatus::Open,
            conversation: Box::new(conversation),
        }))
    }

    /// The sender's contact: the one its address names in this inbox, else
    /// the person its verified identifier names (now also known here),
    /// else a new contact.
    fn sender(
        &mut self,
        inbox: &InboxRecord,
        m: &Inbound,
        rules: &dyn InboundRules,
    ) -> TxResult<ContactRecord> {
        let ik = id_text(inbox.id, &m.identity);
        if let Some(id) = self.get_id(Tree::InboxidentityContactid, &ik)? {
            return match self.get::<ContactRecord>(Tree::ContactidContact, &u64_be(id))? {
                Some(c) => Ok(c),
                None => abort(StoreError::Corrupt(format!(
                    "channel identity points to missing contact {id}"
                ))),
            };
        }
        let identity = ChannelIdentity {
            inbox_id: inbox.id,
            channel: inbox.channel.clone(),
            value: m.identity.clone(),
        };
        let verified = rules.verified_key(inbox, &m.identity);
        if let Some(v) = &verified {
            if let Some(mut c) = self.verified_contact(v)? {
                c.identities.push(identity);
                self.put_raw(Tree::InboxidentityContactid, &ik, &u64_be(c.id))?;
                return Ok(c);
            }
        }
        let mut c = ContactRecord {
            id: ContactId::new(self.new_id()?),
            inbox_id: inbox.id,
            name: None,
            email: None,
            external_id: None,
            created_at: self.now,
            identities: vec![identity],
            latest_conversations: Vec::new(),
            last_inbound_at: None,
            merged_ids: Vec::new(),
            email_notifications_off: false,
            verified: Vec::new(),
            also_in: Vec::new(),
        };
        self.put_raw(Tree::InboxidentityContactid, &ik, &u64_be(c.id))?;
        if let Some(v) = verified {
            self.put_raw(Tree::VerifiedContactid, v.as_bytes(), &u64_be(c.id))?;
            c.verified.push(v);
        }
        Ok(c)
    }

    /// The contact a verified identifier names, if it still exists.
    fn verified_contact(&mut self, key: &str) -> TxResult<Option<ContactRecord>> {
        match self.get_id(Tree::VerifiedContactid, key.as_bytes())? {
            Some(id) => self.get(Tree::ContactidContact, &u64_be(id)),
            None => Ok(None),
        }
    }

    /// The conversation an inbound message continues, as `rules` decide
    /// among the one it names and the sender's newest here.
    fn inbound_target(
        &mut self,
        inbox: &InboxRecord,
        m: &Inbound,
        contact: &ContactRecord,
        rules: &dyn InboundRules,
    ) -> TxResult<Option<ConversationId>> {
        let latest = contact.latest_in(inbox.id);
        for id in [m.conversation_id, latest].into_iter().flatten() {
            let candidate: Option<ConversationRecord> =
                self.get(Tree::ConversationidConversation, &u64_be(id))?;
            let Some(c) = candidate else {
                continue;
            };
            let named = Some(id) == m.conversation_id;
            if rules.continues(inbox, contact, &c, named, Some(id) == latest) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

/// An inbound message as `author` writes it.
fn inbound_message(author: &ContactRecord, m: &Inbound) -> NewMessage {
    NewMessage {
        author: Author {
            kind: AuthorType::Contact,
            id: Some(author.id.get()),
            name: author.name.clone(),
        },
        body: m.body.clone(),
        private: false,
        attachments: m.attachments.clone(),
        via: None,
    }
}

impl Store {
    /// Stores an inbound channel message: finds or creates the sender's
    /// contact, continues the conversation `rules` pick or starts one, and
    /// queues media downloads, all in one write. A provider id seen before
    /// stores nothing.
    pub async fn receive(
        &self,
        inbox: &InboxRecord,
        m: Inbound,
        rules: &dyn InboundRules,
        now: Micros,
    ) -> Result<Received> {
        self.write(now, |tx| tx.receive(inbox, &m, rules)).await
    }

    /// The message a provider id names in an inbox.
    pub fn message_by_provider_id(
        &self,
        inbox_id: InboxId,
        provider_id: &str,
    ) -> Result<Option<MessageRecord>> {
        match self.get::<(ConversationId, u64)>(
            Tree::InboxprovideridMessage,
            &id_text(inbox_id, provider_id),
        )? {
            Some((c, s)) => self.message(c, s),
            None => Ok(None),
        }
    }

    /// Records a delivery step of an outbound message (and the provider's
    /// id for it, so status callbacks find it), finishing `job` in the same
    /// write. A step never moves a message back (a late "sent" after
    /// "delivered" is ignored); `failed` and a retry's `queued` always apply.
    pub async fn set_delivery(
        &self,
        conversation_id: ConversationId,
        seq: u64,
        delivery: Delivery,
        provider_id: Option<String>,
        job: Option<&super::JobRecord>,
        now: Micros,
    ) -> Result<MessageRecord> {
        self.write(now, |tx| {
            if let Some(j) = job {
                tx.finish_job(j)?;
            }
            let mut m = tx.message_at(conversation_id, seq)?;
            let current = m.delivery.as_ref().map(|d| d.status);
            let applies = match (current, delivery.status) {
                (_, DeliveryStatus::Failed | DeliveryStatus::Queued) => true,
                (Some(DeliveryStatus::Failed), _) => true,
                (Some(c), n) => n > c,
                (None, _) => true,
            };
            if let Some(pid) = &provider_id {
                // Status reports arrive at the inbox that sent it.
                let inbox = match m.via {
                    Some(v) => v,
                    None => tx.conversation(conversation_id)?.inbox_id,
                };
                tx.put(
                    Tree::InboxprovideridMessage,
                    &id_text(inbox, pid),
                    &(conversation_id, seq),
                )?;
                m.provider_id = Some(pid.clone());
            }
            if !applies && provider_id.is_none() {
                return Ok(m);
            }
            if applies {
                m.delivery = Some(delivery.clone());
            }
            tx.put(
                Tree::ConversationseqMessage,
                &keys::conversation_seq(conversation_id, seq),
                &m,
            )?;
            tx.emit_message_updated(&m)?;
            Ok(m)
        })
        .await
    }

    /// Puts a failed message back in the outbox (the agent's "Retry").
    pub async fn retry_delivery(
        &self,
        conversation_id: ConversationId,
        seq: u64,
        now: Micros,
    ) -> Result<MessageRecord> {
        self.write(now, |tx| {
            let mut m = tx.message_at(conversation_id, seq)?;
            match &m.delivery {
                Some(d) if d.status == DeliveryStatus::Failed => {}
                _ => {
                    return abort(StoreError::Conflict(
                        "only a failed message can be retried".into(),
                    ))
                }
            }
            m.delivery = Some(Delivery {
                status: DeliveryStatus::Queued,
                error: None,
            });
            tx.put(
                Tree::ConversationseqMessage,
                &keys::conversation_seq(conversation_id, seq),
                &m,
            )?;
            tx.enqueue(
                JobKind::Send {
                    conversation_id,
                    seq,
                },
                tx.now,
            )?;
            tx.emit_message_updated(&m)?;
            Ok(m)
        })
        .await
    }

    /// Adds fetched media to an inbound message and finishes its job.
    pub async fn add_attachments(
        &self,
        conversation_id: ConversationId,
        seq: u64,
        files: Vec<AttachmentRecord>,
        job: &super::JobRecord,
        now: Micros,
    ) -> Result<()> {
        self.write(now, |tx| {
            tx.finish_job(job)?;
            let Some(mut m) = tx.get::<MessageRecord>(
                Tree::ConversationseqMessage,
                &keys::conversation_seq(conversation_id, seq),
            )?
            else {
                return Ok(());
            };
            for a in &files {
                tx.put(
                    Tree::FileidMessage,
                    a.id.as_bytes(),
                    &(conversation_id, seq, m.private),
                )?;
            }
            m.attachments.extend(files.iter().cloned());
            tx.put(
                Tree::ConversationseqMessage,
                &keys::conversation_seq(conversation_id, seq),
                &m,
            )?;
            tx.emit_message_updated(&m)?;
            Ok(())
        })
        .await
    }

    /// Merges contact `from` into `into`: conversations, channel
    /// identities, the verified external id, sessions and missing name or
    /// email move over; `from` is gone afterwards.
    pub async fn merge_contacts(
        &self,
        from: ContactId,
        into: ContactId,
        now: Micros,
    ) -> Result<ContactRecord> {
        let m = self.merge_scan(from, into)?;
        self.write(now, |tx| merge_in(tx, &m)).await
    }

    /// What merging `from` into `into` must move that a transaction cannot
    /// find itself (transactions cannot scan): `from`'s conversations and
    /// sessions.
    pub(crate) fn merge_scan(&self, from: ContactId, into: ContactId) -> Result<MergeScan> {
        if from == into {
            return Err(StoreError::Invalid(crate::domain::Invalid::new(
                "into",
                "a contact cannot be merged into itself",
            )));
        }
        let convs: Vec<ConversationId> = self
            .contact_conversations(from)?
            .iter()
            .map(|c| c.id)
            .collect();
        let tokens: Vec<Vec<u8>> = self
            .tree(Tree::ContactidTokenhash)
            .scan_prefix(u64_be(from))
            .keys()
            .map(|k| k.map(|k| k.to_vec()).map_err(StoreError::from))
            .collect::<Result<_>>()?;
        Ok(MergeScan {
            from,
            into,
            convs,
            tokens,
        })
    }
}

/// A merge's scan ([`Store::merge_scan`]), read before its write.
pub(crate) struct MergeScan {
    /// The contact that goes away.
    from: ContactId,
    /// The contact that stays.
    pub(super) into: ContactId,
    /// `from`'s conversations.
    convs: Vec<ConversationId>,
    /// `from`'s session keys (`ContactidTokenhash`).
    tokens: Vec<Vec<u8>>,
}

/// The writes of a merge, inside a caller's transaction (so a merge can be
/// one step of a larger write, as when a confirmed email joins two people).
pub(crate) fn merge_in(tx: &mut Tx<'_>, m: &MergeScan) -> TxResult<ContactRecord> {
    let (from, into) = (m.from, m.into);
    let Some(src) = tx.get::<ContactRecord>(Tree::ContactidContact, &u64_be(from))? else {
        return abort(StoreError::NotFound);
    };
    let Some(mut dst) = tx.get::<ContactRecord>(Tree::ContactidContact, &u64_be(into))? else {
        return abort(StoreError::Invalid(crate::domain::Invalid::new(
            "into",
            "no such contact",
        )));
    };
    // The newest conversation per inbox, over both contacts.
    let mut newest: Vec<(InboxId, Micros, ConversationId)> = Vec::new();
    for (inbox, cid) in &dst.latest_conversations {
        if let Some(c) =
            tx.get::<super::ConversationRecord>(Tree::ConversationidConversation, &u64_be(*cid))?
        {
            newest.push((*inbox, c.updated_at, c.id));
        }
    }
    for id in &m.convs {
        let Some(old) =
            tx.get::<super::ConversationRecord>(Tree::ConversationidConversation, &u64_be(*id))?
        else {
            continue;
        };
        let mut c = old.clone();
        c.contact_id = into;
        tx.del(Tree::ContactidConversationid, &pair(from, c.id))?;
        tx.put_raw(Tree::ContactidConversationid, &pair(into, c.id), &[])?;
        tx.put_conversation(&c, Some(&old))?;
        match newest.iter_mut().find(|(i, _, _)| *i == c.inbox_id) {
            Some(n) if n.1 >= c.updated_at => {}
            Some(n) => *n = (c.inbox_id, c.updated_at, c.id),
            None => newest.push((c.inbox_id, c.updated_at, c.id)),
        }
        tx.emit(
            c.inbox_id,
            into,
            EventPayload::ConversationUpdated { conversation: c },
        )?;
    }
    dst.latest_conversations = newest.iter().map(|(i, _, c)| (*i, *c)).collect();
    for v in &src.verified {
        tx.put_raw(Tree::VerifiedContactid, v.as_bytes(), &u64_be(into))?;
        if !dst.verified.contains(v) {
            dst.verified.push(v.clone());
        }
    }
    for ident in &src.identities {
        tx.put_raw(
            Tree::InboxidentityContactid,
            &id_text(ident.inbox_id, &ident.value),
            &u64_be(into),
        )?;
        if !dst.identities.contains(ident) {
            dst.identities.push(ident.clone());
        }
    }
    if let Some(ext) = &src.external_id {
        for i in std::iter::once(src.inbox_id).chain(src.also_in.iter().copied()) {
            tx.put_raw(
                Tree::InboxexternalidContactid,
                &id_text(i, ext),
                &u64_be(into),
            )?;
        }
        if dst.external_id.is_none() {
            dst.external_id = Some(ext.clone());
        }
    }
    for k in &m.tokens {
        if let Some(hash) = k.get(8..) {
            if let Some(mut t) = tx.get::<TokenRecord>(Tree::TokenhashContacttoken, hash)? {
                t.owner = into.get();
                tx.put(Tree::TokenhashContacttoken, hash, &t)?;
                tx.put_raw(
                    Tree::ContactidTokenhash,
                    &keys::concat(&[&u64_be(into), hash]),
                    &[],
                )?;
            }
        }
        tx.del(Tree::ContactidTokenhash, k)?;
    }
    if dst.name.is_none() {
        dst.name = src.name.clone();
    }
    if dst.email.is_none() {
        dst.email = src.email.clone();
    }
    dst.last_inbound_at = dst.last_inbound_at.max(src.last_inbound_at);
    for i in std::iter::once(src.inbox_id).chain(src.also_in.iter().copied()) {
        if i != dst.inbox_id && !dst.also_in.contains(&i) {
            dst.also_in.push(i);
        }
    }
    dst.merged_ids.push(from);
    dst.merged_ids.extend(src.merged_ids.iter().copied());
    tx.put_contact(&dst)?;
    tx.del_contact(from)?;
    Ok(dst)
}

impl Store {
    /// The contact that confirmed `email` (a verified person), if it still
    /// exists.
    pub fn email_owner(&self, email: &str) -> Result<Option<ContactId>> {
        let key = format!("email:{}", email.trim().to_lowercase());
        match self.get_id(Tree::VerifiedContactid, key.as_bytes())? {
            Some(id) if self.tree(Tree::ContactidContact).contains_key(u64_be(id))? => {
                Ok(Some(ContactId::new(id)))
            }
            _ => Ok(None),
        }
    }
}
