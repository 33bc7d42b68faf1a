//! Contacts, their verified external ids, and resume links.

use super::keys::{id_text, u64_be};
use super::{abort, ContactRecord, Result, ResumeRecord, Store, StoreError, T};

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

impl Store {
    /// Creates a contact in an inbox, or with a verified `external_id`
    /// returns the one that id already names (updating the name and email
    /// it gave), in one atomic step so two devices racing get one contact.
    pub async fn upsert_contact(
        &self,
        inbox_id: u64,
        new: NewContact,
        now: i64,
    ) -> Result<ContactRecord> {
        self.write(now, |tx| {
            if let Some(ext) = &new.external_id {
                let k = id_text(inbox_id, ext);
                if let Some(id) = tx.get_id(T::InboxexternalidContactid, &k)? {
                    let Some(mut c) = tx.get::<ContactRecord>(T::ContactidContact, &u64_be(id))?
                    else {
                        return abort(StoreError::Corrupt(format!(
                            "external id points to missing contact {id}"
                        )));
                    };
                    if new.name.is_some() {
                        c.name = new.name.clone();
                    }
                    if new.email.is_some() {
                        c.email = new.email.clone();
                    }
                    tx.put(T::ContactidContact, &u64_be(id), &c)?;
                    return Ok(c);
                }
            }
            let id = tx.new_id()?;
            let c = ContactRecord {
                id,
                inbox_id,
                name: new.name.clone(),
                email: new.email.clone(),
                external_id: new.external_id.clone(),
                created_at: tx.now,
            };
            tx.put(T::ContactidContact, &u64_be(id), &c)?;
            if let Some(ext) = &new.external_id {
                tx.put_raw(
                    T::InboxexternalidContactid,
                    &id_text(inbox_id, ext),
                    &u64_be(id),
                )?;
            }
            Ok(c)
        })
        .await
    }

    /// One contact.
    pub fn contact(&self, id: u64) -> Result<Option<ContactRecord>> {
        self.get(T::ContactidContact, &u64_be(id))
    }

    /// Stores a resume link by the hash of its token.
    pub async fn insert_resume(&self, hash: [u8; 32], rec: ResumeRecord, now: i64) -> Result<()> {
        self.write(now, |tx| tx.put(T::ResumehashResume, &hash, &rec))
            .await
    }

    /// Uses up a resume link: it answers once, and only before it expires.
    pub async fn take_resume(&self, hash: [u8; 32], now: i64) -> Result<Option<u64>> {
        self.write(now, |tx| {
            let rec: Option<ResumeRecord> = tx.get(T::ResumehashResume, &hash)?;
            tx.del(T::ResumehashResume, &hash)?;
            Ok(rec.filter(|r| r.expires_at > tx.now).map(|r| r.contact_id))
        })
        .await
    }
}
