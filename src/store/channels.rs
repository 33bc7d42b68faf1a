//! What channels need from the store: inbound messages keyed by the
//! sender's channel address and the provider's message id (so a retried
//! webhook stores nothing new), delivery states of outbound messages,
//! media fetched after the fact, and merging two contacts into one person.

use super::keys::{self, id_text, pair, u64_be};
use super::{
    abort, AttachmentRecord, Author, ChannelIdentity, ContactRecord, Delivery, DeliveryStatus,
    EventPayload, InboxRecord, JobKind, MediaRef, MessageRecord, NewMessage, Result, Store,
    StoreError, TokenRecord, Tx, TxResult, T,
};
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
    pub conversation_id: Option<u64>,
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
    },
    /// The provider id was seen before: nothing stored.
    Duplicate {
        /// The message stored the first time, if it still exists.
        message: Option<MessageRecord>,
    },
}

/// The verified-identifier key of a phone that wrote on an SMS or
/// WhatsApp channel (`phone:+15551234`), if the address is a number.
pub fn verified_phone(channel: &str, identity: &str) -> Option<String> {
    if channel != "sms" && channel != "whatsapp" {
        return None;
    }
    let raw = identity.trim().trim_start_matches("whatsapp:");
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let plausible = (6..=15).contains(&digits.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_digit() || "+-() .".contains(c));
    plausible.then(|| format!("phone:+{digits}"))
}

impl Tx<'_> {
    fn message_at(&self, conversation: u64, seq: u64) -> TxResult<MessageRecord> {
        match self.get(
            T::ConversationseqMessage,
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

impl Store {
    /// Stores an inbound channel message: finds or creates the sender's
    /// contact, continues its last unresolved conversation (or the one the
    /// message names) or starts one, and queues media downloads, all in one
    /// write. A provider id seen before stores nothing.
    pub async fn receive(&self, inbox: &InboxRecord, m: Inbound, now: Micros) -> Result<Received> {
        self.write(now, |tx| {
            if let Some(pid) = &m.provider_id {
                if let Some((c, s)) =
                    tx.get::<(u64, u64)>(T::InboxprovideridMessage, &id_text(inbox.id, pid))?
                {
                    let message =
                        tx.get(T::ConversationseqMessage, &keys::conversation_seq(c, s))?;
                    return Ok(Received::Duplicate { message });
                }
            }
            // A sender that proved it answers what we mailed to it (an
            // answer to a reply notification, from another inbox too)
            // continues that conversation as its contact. A typed email
            // proves nothing: only the routing token does.
            if let (Some(cid), true) = (m.conversation_id, m.proven) {
                if let Some(c) = tx
                    .get::<super::ConversationRecord>(T::ConversationidConversation, &u64_be(cid))?
                {
                    let owner =
                        tx.get::<ContactRecord>(T::ContactidContact, &u64_be(c.contact_id))?;
                    if let Some(owner) = owner {
                        let new = NewMessage {
                            author: Author {
                                kind: AuthorType::Contact,
                                id: Some(owner.id),
                                name: owner.name.clone(),
                            },
                            body: m.body.clone(),
                            private: false,
                            attachments: m.attachments.clone(),
                            via: None,
                        };
                        let (message, conversation) =
                            tx.continue_conversation(cid, &new, m.provider_id.as_deref())?;
                        if let Some(pid) = &m.provider_id {
                            tx.put(
                                T::InboxprovideridMessage,
                                &id_text(inbox.id, pid),
                                &(cid, message.seq),
                            )?;
                        }
                        return Ok(Received::Stored {
                            message,
                            conversation: Box::new(conversation),
                        });
                    }
                }
            }
            let ik = id_text(inbox.id, &m.identity);
            // A phone number that writes to us is verified: the same
            // number on SMS and WhatsApp is one person.
            let verified_key = verified_phone(&inbox.channel, &m.identity);
            let mut linked = None;
            if tx.get_id(T::InboxidentityContactid, &ik)?.is_none() {
                if let Some(v) = &verified_key {
                    if let Some(id) = tx.get_id(T::VerifiedContactid, v.as_bytes())? {
                        if let Some(mut c) =
                            tx.get::<ContactRecord>(T::ContactidContact, &u64_be(id))?
                        {
                            c.identities.push(ChannelIdentity {
                                inbox_id: inbox.id,
                                channel: inbox.channel.clone(),
                                value: m.identity.clone(),
                            });
                            tx.put_raw(T::InboxidentityContactid, &ik, &u64_be(c.id))?;
                            linked = Some(c);
                        }
                    }
                }
            }
            let mut contact = match linked {
                Some(c) => c,
                None => match tx.get_id(T::InboxidentityContactid, &ik)? {
                    Some(id) => match tx.get::<ContactRecord>(T::ContactidContact, &u64_be(id))? {
                        Some(c) => c,
                        None => {
                            return abort(StoreError::Corrupt(format!(
                                "channel identity points to missing contact {id}"
                            )))
                        }
                    },
                    None => {
                        let c = ContactRecord {
                            id: tx.new_id()?,
                            inbox_id: inbox.id,
                            name: None,
                            email: None,
                            external_id: None,
                            created_at: tx.now,
                            identities: vec![ChannelIdentity {
                                inbox_id: inbox.id,
                                channel: inbox.channel.clone(),
                                value: m.identity.clone(),
                            }],
                            latest_conversations: Vec::new(),
                            last_inbound_at: None,
                            merged_ids: Vec::new(),
                            email_notifications_off: false,
                            verified: Vec::new(),
                            also_in: Vec::new(),
                        };
                        tx.put_raw(T::InboxidentityContactid, &ik, &u64_be(c.id))?;
                        let mut c = c;
                        if let Some(v) = &verified_key {
                            tx.put_raw(T::VerifiedContactid, v.as_bytes(), &u64_be(c.id))?;
                            c.verified.push(v.clone());
                        }
                        c
                    }
                },
            };
            if contact.name.is_none() {
                contact.name = m.name.clone();
            }
            if contact.email.is_none() {
                contact.email = m.email.clone();
            }
            let sent = m.sent_at.unwrap_or(tx.now).min(tx.now);
            contact.last_inbound_at = Some(contact.last_inbound_at.map_or(sent, |t| t.max(sent)));
            tx.put_contact(&contact)?;
            let new = NewMessage {
                author: Author {
                    kind: AuthorType::Contact,
                    id: Some(contact.id),
                    name: contact.name.clone(),
                },
                body: m.body.clone(),
                private: false,
                attachments: m.attachments.clone(),
                via: None,
            };
            // Which conversation: the one the message names (if it is in
            // this inbox), else the contact's newest unless resolved.
            let mut target = None;
            for id in [m.conversation_id, contact.latest_in(inbox.id)]
                .into_iter()
                .flatten()
            {
                if let Some(c) =
                    tx.get::<super::ConversationRecord>(T::ConversationidConversation, &u64_be(id))?
                {
                    // A named conversation is followed only if it is this
                    // sender's own: naming someone else's (a guessed id, a
                    // Message-ID the sender saw) starts the sender's own.
                    let named = Some(id) == m.conversation_id && c.contact_id == contact.id;
                    let own_latest = Some(id) == contact.latest_in(inbox.id);
                    if c.inbox_id == inbox.id
                        && (named || (own_latest && c.status != ConversationStatus::Resolved))
                    {
                        target = Some(id);
                        break;
                    }
                }
            }
            let (message, conversation) = match target {
                Some(id) => tx.continue_conversation(id, &new, m.provider_id.as_deref())?,
                None => {
                    let (c, msg) = tx.start_conversation(
                        inbox.id,
                        contact.id,
                        &new,
                        m.provider_id.as_deref(),
                        m.subject.clone(),
                    )?;
                    (msg, c)
                }
            };
            if !m.media.is_empty() {
                tx.enqueue(
                    JobKind::FetchMedia {
                        conversation_id: conversation.id,
                        seq: message.seq,
                        media: m.media.clone(),
                    },
                    tx.now,
                )?;
            }
            Ok(Received::Stored {
                message,
                conversation: Box::new(conversation),
            })
        })
        .await
    }

    /// The message a provider id names in an inbox.
    pub fn message_by_provider_id(
        &self,
        inbox_id: u64,
        provider_id: &str,
    ) -> Result<Option<MessageRecord>> {
        match self.get::<(u64, u64)>(T::InboxprovideridMessage, &id_text(inbox_id, provider_id))? {
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
        conversation_id: u64,
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
                    T::InboxprovideridMessage,
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
                T::ConversationseqMessage,
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
        conversation_id: u64,
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
                T::ConversationseqMessage,
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
        conversation_id: u64,
        seq: u64,
        files: Vec<AttachmentRecord>,
        job: &super::JobRecord,
        now: Micros,
    ) -> Result<()> {
        self.write(now, |tx| {
            tx.finish_job(job)?;
            let Some(mut m) = tx.get::<MessageRecord>(
                T::ConversationseqMessage,
                &keys::conversation_seq(conversation_id, seq),
            )?
            else {
                return Ok(());
            };
            for a in &files {
                tx.put(
                    T::FileidMessage,
                    a.id.as_bytes(),
                    &(conversation_id, seq, m.private),
                )?;
            }
            m.attachments.extend(files.iter().cloned());
            tx.put(
                T::ConversationseqMessage,
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
    pub async fn merge_contacts(&self, from: u64, into: u64, now: Micros) -> Result<ContactRecord> {
        let m = self.merge_scan(from, into)?;
        self.write(now, |tx| merge_in(tx, &m)).await
    }

    /// What merging `from` into `into` must move that a transaction cannot
    /// find itself (transactions cannot scan): `from`'s conversations and
    /// sessions.
    pub(crate) fn merge_scan(&self, from: u64, into: u64) -> Result<MergeScan> {
        if from == into {
            return Err(StoreError::Invalid(crate::domain::Invalid::new(
                "into",
                "a contact cannot be merged into itself",
            )));
        }
        let convs: Vec<u64> = self
            .contact_conversations(from)?
            .iter()
            .map(|c| c.id)
            .collect();
        let tokens: Vec<Vec<u8>> = self
            .tree(T::ContactidTokenhash)
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
    from: u64,
    /// The contact that stays.
    pub(super) into: u64,
    /// `from`'s conversations.
    convs: Vec<u64>,
    /// `from`'s session keys (`ContactidTokenhash`).
    tokens: Vec<Vec<u8>>,
}

/// The writes of a merge, inside a caller's transaction (so a merge can be
/// one step of a larger write, as when a confirmed email joins two people).
pub(crate) fn merge_in(tx: &mut Tx<'_>, m: &MergeScan) -> TxResult<ContactRecord> {
    let (from, into) = (m.from, m.into);
    let Some(src) = tx.get::<ContactRecord>(T::ContactidContact, &u64_be(from))? else {
        return abort(StoreError::NotFound);
    };
    let Some(mut dst) = tx.get::<ContactRecord>(T::ContactidContact, &u64_be(into))? else {
        return abort(StoreError::Invalid(crate::domain::Invalid::new(
            "into",
            "no such contact",
        )));
    };
    // The newest conversation per inbox, over both contacts.
    let mut newest: Vec<(u64, Micros, u64)> = Vec::new();
    for (inbox, cid) in &dst.latest_conversations {
        if let Some(c) =
            tx.get::<super::ConversationRecord>(T::ConversationidConversation, &u64_be(*cid))?
        {
            newest.push((*inbox, c.updated_at, c.id));
        }
    }
    for id in &m.convs {
        let Some(old) =
            tx.get::<super::ConversationRecord>(T::ConversationidConversation, &u64_be(*id))?
        else {
            continue;
        };
        let mut c = old.clone();
        c.contact_id = into;
        tx.del(T::ContactidConversationid, &pair(from, c.id))?;
        tx.put_raw(T::ContactidConversationid, &pair(into, c.id), &[])?;
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
        tx.put_raw(T::VerifiedContactid, v.as_bytes(), &u64_be(into))?;
        if !dst.verified.contains(v) {
            dst.verified.push(v.clone());
        }
    }
    for ident in &src.identities {
        tx.put_raw(
            T::InboxidentityContactid,
            &id_text(ident.inbox_id, &ident.value),
            &u64_be(into),
        )?;
        if !dst.identities.contains(ident) {
            dst.identities.push(ident.clone());
        }
    }
    if let Some(ext) = &src.external_id {
        for i in std::iter::once(src.inbox_id).chain(src.also_in.iter().copied()) {
            tx.put_raw(T::InboxexternalidContactid, &id_text(i, ext), &u64_be(into))?;
        }
        if dst.external_id.is_none() {
            dst.external_id = Some(ext.clone());
        }
    }
    for k in &m.tokens {
        if let Some(hash) = k.get(8..) {
            if let Some(mut t) = tx.get::<TokenRecord>(T::TokenhashContacttoken, hash)? {
                t.owner = into;
                tx.put(T::TokenhashContacttoken, hash, &t)?;
                tx.put_raw(
                    T::ContactidTokenhash,
                    &keys::concat(&[&u64_be(into), hash]),
                    &[],
                )?;
            }
        }
        tx.del(T::ContactidTokenhash, k)?;
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
    pub fn email_owner(&self, email: &str) -> Result<Option<u64>> {
        let key = format!("email:{}", email.trim().to_lowercase());
        match self.get_id(T::VerifiedContactid, key.as_bytes())? {
            Some(id) if self.tree(T::ContactidContact).contains_key(u64_be(id))? => Ok(Some(id)),
            _ => Ok(None),
        }
    }
}
