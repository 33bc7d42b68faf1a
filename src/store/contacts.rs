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

    /// Sets the email a contact left for notifications.
    pub async fn set_contact_email(
        &self,
        id: u64,
        email: String,
        now: i64,
    ) -> Result<ContactRecord> {
        self.write(now, |tx| {
            let Some(mut c) = tx.get::<ContactRecord>(T::ContactidContact, &u64_be(id))? else {
                return abort(StoreError::NotFound);
            };
            c.email = Some(email.clone());
            tx.put(T::ContactidContact, &u64_be(id), &c)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions};

    fn open(dir: &tempfile::TempDir) -> std::sync::Arc<Store> {
        let opts = StoreOptions {
            path: dir.path().to_path_buf(),
            cache_bytes: 1 << 20,
            fsync: false,
            event_buffer: 16,
        };
        match Store::open(&opts) {
            Ok(s) => s,
            Err(e) => panic!("open: {e}"),
        }
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
        store
            .insert_resume([1; 32], rec(7), now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .insert_resume([2; 32], rec(8), now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let take = |h, t| store.take_resume(h, t);
        assert_eq!(take([1; 32], now + 14 * minute).await.ok(), Some(Some(7)));
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
}
