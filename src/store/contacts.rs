//! Contacts, their verified external ids, and resume links.

use super::keys::{id_text, u64_be};
use super::{abort, ContactRecord, Result, ResumeRecord, Store, StoreError, Tree};
use crate::domain::ids::{ContactId, InboxId};

/// What a widget knows about a new contact.
#[derive(Debug, Clone, Default)]
pub struct NewContact {
    /// Optional name.
    pub name: Option<String>,
    /// Optional email.
    pub email: Option<String>,
    /// Verified external id (the caller has checked the HMAC).
    pub external_id: Option<String>,
}

/// The verified-identifier key of a user id verified with an inbox's
/// identity secret: `ext:` + a hash of the secret + `:` + the id. A user
/// id is only as global as the secret that signed it: inboxes with
/// different secrets never share a person, inboxes the admin gave one
/// secret do. (A hash, so the key never holds the secret.)
pub fn verified_external(hmac_secret: &str, external_id: &str) -> String {
    use sha2::Digest;
    let secret = sha2::Sha256::digest(format!("natter identity secret:{hmac_secret}"));
    format!("ext:{}:{external_id}", hex::encode(&secret[..12]))
}

/// Whether a verified-identifier key has the form of
/// [`verified_external`] (the migration to schema 3 drops older ones).
pub fn is_verified_external(key: &[u8]) -> bool {
    key.strip_prefix(b"ext:")
        .and_then(|rest| rest.get(..25))
        .is_some_and(|h| h[24] == b':' && h[..24].iter().all(u8::is_ascii_hexdigit))
}

impl super::Tx<'_> {
    /// Stores a contact and keeps the email index in step.
    pub(crate) fn put_contact(&mut self, c: &ContactRecord) -> super::TxResult<()> {
        let old: Option<ContactRecord> = self.get(Tree::ContactidContact, &u64_be(c.id))?;
        let norm = |e: &Option<String>| {
            e.as_deref()
                .map(|e| e.trim().to_lowercase())
                .filter(|e| !e.is_empty())
        };
        let (was, now) = (old.as_ref().and_then(|o| norm(&o.email)), norm(&c.email));
        if was != now {
            if let Some(w) = &was {
                self.del(Tree::EmailContactid, &super::keys::text_id(w, c.id))?;
            }
            if let Some(n) = &now {
                self.put_raw(Tree::EmailContactid, &super::keys::text_id(n, c.id), &[])?;
            }
        }
        self.put(Tree::ContactidContact, &u64_be(c.id), c)
    }

    /// Removes a contact record and its email index entry.
    pub(crate) fn del_contact(&mut self, id: ContactId) -> super::TxResult<()> {
        if let Some(old) = self.get::<ContactRecord>(Tree::ContactidContact, &u64_be(id))? {
            if let Some(e) = old.email.as_deref().map(|e| e.trim().to_lowercase()) {
                self.del(Tree::EmailContactid, &super::keys::text_id(&e, id))?;
            }
        }
        self.del(Tree::ContactidContact, &u64_be(id))?;
        Ok(())
    }
}

impl Store {
    /// Other contacts with the same email (case-insensitive): possible
    /// duplicates of one person, suggested to agents, never merged
    /// silently.
    pub fn contacts_with_email(&self, email: &str) -> Result<Vec<ContactId>> {
        let e = email.trim().to_lowercase();
        if e.is_empty() {
            return Ok(Vec::new());
        }
        self.tree(Tree::EmailContactid)
            .scan_prefix(super::keys::text_prefix(&e))
            .keys()
            .map(|k| {
                let k = k?;
                super::keys::read_u64(&k, k.len().saturating_sub(8)).map(ContactId::new)
            })
            .collect()
    }

    /// Creates a contact in an inbox, or with a verified `external_id`
    /// returns the one that id already names (updating the name and email
    /// it gave), in one atomic step so two devices racing get one contact.
    pub async fn upsert_contact(
        &self,
        inbox_id: InboxId,
        new: NewContact,
        now: i64,
    ) -> Result<ContactRecord> {
        self.write(now, |tx| {
            // Only a verified user id needs the inbox (its identity secret
            // scopes the id).
            let verified_key = match new.external_id.as_deref() {
                Some(ext) => {
                    let Some(inbox) =
                        tx.get::<super::InboxRecord>(Tree::InboxidInbox, &u64_be(inbox_id))?
                    else {
                        return abort(StoreError::NotFound);
                    };
                    Some(verified_external(&inbox.hmac_secret, ext))
                }
                None => None,
            };
            if let (Some(ext), Some(v)) = (&new.external_id, &verified_key) {
                let k = id_text(inbox_id, ext);
                // (A mapping to a contact that is gone is replaced below.)
                let known = match tx.get_id(Tree::InboxexternalidContactid, &k)? {
                    Some(id) => tx.get::<ContactRecord>(Tree::ContactidContact, &u64_be(id))?,
                    None => None,
                };
                if let Some(mut c) = known {
                    if new.name.is_some() {
                        c.name = new.name.clone();
                    }
                    if new.email.is_some() {
                        c.email = new.email.clone();
                    }
                    tx.put_contact(&c)?;
                    return Ok(c);
                }
                // The same user id verified with the same secret on
                // another of the business's websites is the same person:
                // link it here too.
                if let Some(id) = tx.get_id(Tree::VerifiedContactid, v.as_bytes())? {
                    if let Some(mut c) =
                        tx.get::<ContactRecord>(Tree::ContactidContact, &u64_be(id))?
                    {
                        if !c.belongs_to(inbox_id) {
                            c.also_in.push(inbox_id);
                        }
                        if c.name.is_none() {
                            c.name = new.name.clone();
                        }
                        if c.email.is_none() {
                            c.email = new.email.clone();
                        }
                        tx.put_raw(Tree::InboxexternalidContactid, &k, &u64_be(c.id))?;
                        tx.put_contact(&c)?;
                        return Ok(c);
                    }
                }
            }
            let id = ContactId::new(tx.new_id()?);
            let c = ContactRecord {
                id,
                inbox_id,
                name: new.name.clone(),
                email: new.email.clone(),
                external_id: new.external_id.clone(),
                created_at: tx.now,
                identities: Vec::new(),
                latest_conversations: Vec::new(),
                last_inbound_at: None,
                merged_ids: Vec::new(),
                email_notifications_off: false,
                verified: verified_key.iter().cloned().collect(),
                also_in: Vec::new(),
            };
            tx.put_contact(&c)?;
            if let (Some(ext), Some(v)) = (&new.external_id, &verified_key) {
                tx.put_raw(
                    Tree::InboxexternalidContactid,
                    &id_text(inbox_id, ext),
                    &u64_be(id),
                )?;
                tx.put_raw(Tree::VerifiedContactid, v.as_bytes(), &u64_be(id))?;
            }
            Ok(c)
        })
        .await
    }

    /// Sets the email a contact left for notifications.
    pub async fn set_contact_email(
        &self,
        id: ContactId,
        email: String,
        now: i64,
    ) -> Result<ContactRecord> {
        self.write(now, |tx| {
            let Some(mut c) = tx.get::<ContactRecord>(Tree::ContactidContact, &u64_be(id))? else {
                return abort(StoreError::NotFound);
            };
            c.email = Some(email.clone());
            tx.put_contact(&c)?;
            Ok(c)
        })
        .await
    }

    /// Deletes a contact and everything of it: conversations, messages,
    /// tokens, its external id and its past events (pending resume links
    /// stay harmless: they name a contact that no longer exists). Emits `contact.deleted` so
    /// live pages and the search index drop it too. Returns the attachment
    /// ids whose files the caller may remove.
    pub async fn delete_contact(&self, id: ContactId, now: i64) -> Result<Vec<String>> {
        use super::keys::{self, pair};
        let Some(contact) = self.contact(id)? else {
            return Err(StoreError::NotFound);
        };
        // Collected before the write: sled transactions cannot scan.
        let convs = self.contact_conversations(id)?;
        let mut message_keys = Vec::new();
        let mut ordinal_keys = Vec::new();
        let mut files = Vec::new();
        for c in &convs {
            for kv in self
                .tree(Tree::ConversationseqMessage)
                .scan_prefix(keys::u64_be(c.id))
            {
                let (k, v) = kv?;
                let m: super::MessageRecord = super::decode(&v)?;
                files.extend(m.attachments.iter().map(|a| a.id.clone()));
                message_keys.push(k.to_vec());
            }
            for k in self
                .tree(Tree::ConversationordinalSeq)
                .scan_prefix(keys::u64_be(c.id))
                .keys()
            {
                ordinal_keys.push(k?.to_vec());
            }
        }
        let token_keys: Vec<Vec<u8>> = self
            .tree(Tree::ContactidTokenhash)
            .scan_prefix(keys::u64_be(id))
            .keys()
            .map(|k| k.map(|k| k.to_vec()).map_err(StoreError::from))
            .collect::<Result<_>>()?;
        // Its past events go too, so no replay can show the messages again.
        let mut event_keys = Vec::new();
        for kv in self.tree(Tree::EventidEvent).iter() {
            let (k, v) = kv?;
            let ev: super::events::StoredEvent = super::decode(&v)?;
            if ev.contact_id == id {
                event_keys.push(k.to_vec());
            }
        }
        let inbox = contact.inbox_id;
        self.write(now, |tx| {
            for k in &event_keys {
                tx.del(Tree::EventidEvent, k)?;
            }
            for c in &convs {
                if let Some(cur) = tx.get::<super::ConversationRecord>(
                    Tree::ConversationidConversation,
                    &u64_be(c.id),
                )? {
                    tx.unindex_conversation(&cur)?;
                }
                tx.del(Tree::ConversationidConversation, &u64_be(c.id))?;
                tx.del(Tree::ContactidConversationid, &pair(id, c.id))?;
            }
            for k in &message_keys {
                tx.del(Tree::ConversationseqMessage, k)?;
            }
            for k in &ordinal_keys {
                tx.del(Tree::ConversationordinalSeq, k)?;
            }
            for f in &files {
                tx.del(Tree::FileidMessage, f.as_bytes())?;
            }
            for k in &token_keys {
                if let Some(hash) = k.get(8..) {
                    tx.del(Tree::TokenhashContacttoken, hash)?;
                }
                tx.del(Tree::ContactidTokenhash, k)?;
            }
            if let Some(ext) = &contact.external_id {
                for i in std::iter::once(inbox).chain(contact.also_in.iter().copied()) {
                    tx.del(Tree::InboxexternalidContactid, &id_text(i, ext))?;
                }
            }
            for i in &contact.identities {
                tx.del(Tree::InboxidentityContactid, &id_text(i.inbox_id, &i.value))?;
            }
            for v in &contact.verified {
                if tx.get_id(Tree::VerifiedContactid, v.as_bytes())? == Some(id.get()) {
                    tx.del(Tree::VerifiedContactid, v.as_bytes())?;
                }
            }
            tx.del_contact(id)?;
            tx.emit(
                inbox,
                id,
                super::EventPayload::ContactDeleted { contact_id: id },
            )?;
            Ok(())
        })
        .await?;
        // Its tokens are gone: its open streams end.
        self.access_changed();
        Ok(files)
    }

    /// Records that a contact proved an email address (a confirmation
    /// link), in one write. If another contact already proved it, that is
    /// the same person: the asker is merged into it (conversations,
    /// sessions, addresses), which keeps the confirmed address. Returns
    /// that other contact's id when the two were joined. One write, so a
    /// crash never leaves a merge without its confirmation or the reverse.
    pub async fn confirm_email(
        &self,
        contact: ContactId,
        email: &str,
        now: i64,
    ) -> Result<Option<ContactId>> {
        let key = format!("email:{}", email.trim().to_lowercase());
        // Read before the write: transactions cannot scan.
        let scan = match self.email_owner(email)? {
            Some(other) if other != contact => Some(self.merge_scan(contact, other)?),
            _ => None,
        };
        self.write(now, |tx| {
            let mut holder = contact;
            if let Some(other) = tx
                .get_id(Tree::VerifiedContactid, key.as_bytes())?
                .map(ContactId::new)
            {
                if other != contact && tx.contains(Tree::ContactidContact, &u64_be(other))? {
                    holder = other;
                }
            }
            if holder != contact {
                match &scan {
                    Some(m) if m.into == holder => {
                        super::channels::merge_in(tx, m)?;
                    }
                    // Someone else confirmed the address since the read.
                    _ => {
                        return abort(StoreError::Conflict(
                            "the address was just confirmed elsewhere; try again".into(),
                        ))
                    }
                }
            }
            let Some(mut c) = tx.get::<ContactRecord>(Tree::ContactidContact, &u64_be(holder))?
            else {
                return abort(StoreError::NotFound);
            };
            tx.put_raw(Tree::VerifiedContactid, key.as_bytes(), &u64_be(holder))?;
            if !c.verified.contains(&key) {
                c.verified.push(key.clone());
            }
            c.email = Some(email.trim().to_owned());
            tx.put_contact(&c)?;
            Ok((holder != contact).then_some(holder))
        })
        .await
    }

    /// One contact.
    pub fn contact(&self, id: ContactId) -> Result<Option<ContactRecord>> {
        self.get(Tree::ContactidContact, &u64_be(id))
    }

    /// Stores a resume link by the hash of its token.
    pub async fn insert_resume(&self, hash: [u8; 32], rec: ResumeRecord, now: i64) -> Result<()> {
        self.write(now, |tx| tx.put(Tree::ResumehashResume, &hash, &rec))
            .await
    }

    /// Uses up a resume link at the inbox it was made for: it answers once,
    /// and only before it expires. Presented at another inbox's widget it
    /// answers nothing and stays usable where it belongs (a wrong key must
    /// not burn someone's link).
    pub async fn take_resume(
        &self,
        hash: [u8; 32],
        inbox_id: InboxId,
        now: i64,
    ) -> Result<Option<ContactId>> {
        self.write(now, |tx| {
            let Some(rec) = tx.get::<ResumeRecord>(Tree::ResumehashResume, &hash)? else {
                return Ok(None);
            };
            if rec.expires_at <= tx.now {
                tx.del(Tree::ResumehashResume, &hash)?;
                return Ok(None);
            }
            let contact: Option<ContactRecord> =
                tx.get(Tree::ContactidContact, &u64_be(rec.contact_id))?;
            match contact {
                Some(c) if c.belongs_to(inbox_id) => {
                    tx.del(Tree::ResumehashResume, &hash)?;
                    Ok(Some(c.id))
                }
                Some(_) => Ok(None),
                None => {
                    tx.del(Tree::ResumehashResume, &hash)?;
                    Ok(None)
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn open(dir: &tempfile::TempDir) -> std::sync::Arc<Store> {
        Store::open_for_test(dir.path())
    }

    /// A schema-2 data folder: inboxes 1 and 3 share an identity secret,
    /// inbox 2 has its own; contact 10 of inbox 1 was verified as user
    /// "42" under the old global key.
    fn schema_2_folder(dir: &tempfile::TempDir) {
        let store = open(dir);
        for (id, secret) in [
            (1u64, "shared-secret-0123"),
            (2, "other-secret-4567"),
            (3, "shared-secret-0123"),
        ] {
            let inbox: crate::store::InboxRecord = serde_json::from_value(serde_json::json!({
                "id": id, "name": format!("site {id}"), "channel": "web",
                "widget_key": format!("key{id}"), "hmac_secret": secret, "created_at": 0,
            }))
            .unwrap_or_else(|e| panic!("{e}"));
            let v = super::super::encode(&inbox).unwrap_or_else(|e| panic!("{e}"));
            store
                .tree(Tree::InboxidInbox)
                .insert(u64_be(id), v)
                .unwrap_or_else(|e| panic!("{e}"));
            store
                .tree(Tree::WidgetkeyInboxid)
                .insert(format!("key{id}").as_bytes(), &u64_be(id))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let c = ContactRecord {
            id: ContactId::new(10),
            inbox_id: InboxId::new(1),
            name: None,
            email: None,
            external_id: Some("42".into()),
            created_at: 0,
            identities: Vec::new(),
            latest_conversations: Vec::new(),
            last_inbound_at: None,
            merged_ids: Vec::new(),
            email_notifications_off: false,
            verified: vec!["ext:42".into()],
            also_in: Vec::new(),
        };
        let v = super::super::encode(&c).unwrap_or_else(|e| panic!("{e}"));
        let put = |t: Tree, k: &[u8], v: &[u8]| {
            store.tree(t).insert(k, v).unwrap_or_else(|e| panic!("{e}"));
        };
        put(Tree::ContactidContact, &u64_be(10u64), &v);
        put(Tree::VerifiedContactid, b"ext:42", &u64_be(10u64));
        put(Tree::VerifiedContactid, b"ext:gone", &u64_be(99u64));
        put(
            Tree::InboxexternalidContactid,
            &id_text(1u64, "42"),
            &u64_be(10u64),
        );
        put(Tree::Meta, b"schema_version", &2u32.to_be_bytes());
        store.flush_now().unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn schema_2_verified_user_ids_are_rekeyed_by_their_identity_secret() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        schema_2_folder(&dir);
        let store = open(&dir);
        tokio::spawn(store.durability().clone().run_flusher());
        let keys: Vec<String> = store
            .tree(Tree::VerifiedContactid)
            .iter()
            .keys()
            .map(|k| String::from_utf8_lossy(&k.unwrap_or_else(|e| panic!("{e}"))).into_owned())
            .collect();
        let expected = verified_external("shared-secret-0123", "42");
        assert_eq!(keys, vec![expected.clone()], "old global keys are gone");
        let c = store
            .contact(ContactId::new(10))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("contact"));
        assert_eq!(c.verified, vec![expected]);
        let user_42 = |inbox| {
            store.upsert_contact(
                InboxId::new(inbox),
                NewContact {
                    external_id: Some("42".into()),
                    ..NewContact::default()
                },
                1,
            )
        };
        let id = |r: Result<ContactRecord>| r.map(|c| c.id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            id(user_42(1).await),
            ContactId::new(10),
            "the same site still knows the person"
        );
        assert_eq!(
            id(user_42(3).await),
            ContactId::new(10),
            "a site sharing the secret links"
        );
        assert_ne!(
            id(user_42(2).await),
            ContactId::new(10),
            "a site with another secret does not"
        );
    }

    #[tokio::test]
    async fn resume_links_work_once_and_only_before_they_expire() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = open(&dir);
        tokio::spawn(store.durability().clone().run_flusher());
        let now = 1_000_000_000;
        let minute = 60_000_000;
        let rec = |c| ResumeRecord {
            contact_id: c,
            expires_at: now + 15 * minute,
        };
        let contact = store
            .upsert_contact(InboxId::new(1), NewContact::default(), now)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .id;
        store
            .insert_resume([1; 32], rec(contact), now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .insert_resume([2; 32], rec(contact), now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let take = |h, t| store.take_resume(h, InboxId::new(1), t);
        assert_eq!(
            store.take_resume([1; 32], InboxId::new(2), now).await.ok(),
            Some(None),
            "another inbox gets nothing"
        );
        assert_eq!(
            take([1; 32], now + 14 * minute).await.ok(),
            Some(Some(contact)),
            "and the link still works where it belongs"
        );
        assert_eq!(
            take([1; 32], now + 14 * minute).await.ok(),
            Some(None),
            "single use"
        );
        assert_eq!(
            take([2; 32], now + 16 * minute).await.ok(),
            Some(None),
            "expired"
        );
        assert_eq!(take([3; 32], now).await.ok(), Some(None), "unknown");
    }

    /// Confirming an address another contact already proved joins the
    /// asker to that person: every effect of the one write is there
    /// (conversation, session, address), and nothing of the asker is left.
    #[tokio::test]
    async fn confirming_an_address_someone_else_holds_joins_the_asker_to_them() {
        use crate::store::{Author, NewMessage, TokenOwner, TokenRecord};
        let ok = |e: StoreError| -> ! { panic!("{e}") };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = open(&dir);
        tokio::spawn(store.durability().clone().run_flusher());
        let now = 1_000_000_000;
        let new = || store.upsert_contact(InboxId::new(1), NewContact::default(), now);
        let holder = new().await.unwrap_or_else(|e| ok(e)).id;
        let asker = new().await.unwrap_or_else(|e| ok(e)).id;
        assert_eq!(
            store
                .confirm_email(holder, "Eve@Example.com", now)
                .await
                .ok(),
            Some(None),
            "the first to confirm holds the address"
        );
        let first = NewMessage {
            author: Author {
                kind: crate::domain::AuthorType::Contact,
                id: Some(asker.get()),
                name: None,
            },
            body: "from the phone".into(),
            private: false,
            attachments: Vec::new(),
            via: None,
        };
        let (conv, _) = store
            .create_conversation(InboxId::new(1), asker, first, now)
            .await
            .unwrap_or_else(|e| ok(e));
        let session = TokenRecord {
            owner: asker.get(),
            created_at: now,
            expires_at: now + 3_600_000_000,
            inbox_id: Some(InboxId::new(1)),
        };
        store
            .insert_token(TokenOwner::Contact, [7; 32], session)
            .await
            .unwrap_or_else(|e| ok(e));

        let joined = store
            .confirm_email(asker, " eve@example.com", now)
            .await
            .unwrap_or_else(|e| ok(e));

        assert_eq!(joined, Some(holder));
        assert!(store.contact(asker).ok().flatten().is_none(), "asker gone");
        let h = store
            .contact(holder)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("holder"));
        assert_eq!(h.email.as_deref(), Some("eve@example.com"));
        assert!(h.verified.contains(&"email:eve@example.com".to_owned()));
        assert!(h.merged_ids.contains(&asker));
        assert_eq!(
            store.email_owner("EVE@example.com").ok(),
            Some(Some(holder))
        );
        let moved = store
            .conversation(conv.id)
            .ok()
            .flatten()
            .map(|c| c.contact_id);
        assert_eq!(moved, Some(holder), "the conversation moved");
        let owner = store
            .token(TokenOwner::Contact, &[7; 32])
            .ok()
            .flatten()
            .map(|t| t.owner);
        assert_eq!(owner, Some(holder.get()), "the session moved");
    }
}
