//! Unread-reply notifications: which conversations are due, and recording
//! that one was sent (so each reply is mailed at most once).

use super::keys::{self, time_id, u64_be};
use super::{ContactRecord, ConversationRecord, Result, Store, StoreError, Tree};
use crate::domain::ids::{ContactId, ConversationId};
use crate::domain::time::Micros;

impl Store {
    /// Conversations whose notification is due at `now`, oldest first.
    pub fn due_notifications(&self, now: Micros) -> Result<Vec<ConversationId>> {
        self.tree(Tree::NotifydueConversationid)
            .range(..time_id(now, u64::MAX))
            .keys()
            .map(|k| {
                k.map_err(StoreError::from)
                    .and_then(|k| keys::read_u64(&k, 8).map(ConversationId::new))
            })
            .collect()
    }

    /// Ends a pending notification: `notified_upto` records the replies it
    /// carried; `retry_at` keeps it pending (the mail server was down).
    pub async fn finish_notification(
        &self,
        conversation: ConversationId,
        notified_upto: Option<u64>,
        retry_at: Option<Micros>,
        now: Micros,
    ) -> Result<()> {
        self.write(now, |tx| {
            let Some(mut c) = tx.get::<ConversationRecord>(
                Tree::ConversationidConversation,
                &u64_be(conversation),
            )?
            else {
                return Ok(());
            };
            if let Some(due) = c.notify_due {
                tx.del(Tree::NotifydueConversationid, &time_id(due, c.id))?;
            }
            c.notify_due = retry_at;
            if let Some(t) = retry_at {
                tx.put_raw(Tree::NotifydueConversationid, &time_id(t, c.id), &[])?;
            }
            if let Some(s) = notified_upto {
                c.notified_seq = c.notified_seq.max(s);
            }
            // Not put_conversation: the list position does not change.
            tx.put(Tree::ConversationidConversation, &u64_be(c.id), &c)
        })
        .await
    }

    /// The contact's choice about reply notifications (unsubscribe link).
    pub async fn set_email_notifications(
        &self,
        contact: ContactId,
        on: bool,
        now: Micros,
    ) -> Result<()> {
        self.write(now, |tx| {
            if let Some(mut c) =
                tx.get::<ContactRecord>(Tree::ContactidContact, &u64_be(contact))?
            {
                c.email_notifications_off = !on;
                tx.put_contact(&c)?;
            }
            Ok(())
        })
        .await
    }

    /// A stable random secret of this server (signs unsubscribe links).
    pub async fn server_secret(&self) -> Result<Vec<u8>> {
        self.meta_get_or_init("server_secret", || {
            let mut fresh = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
            fresh
        })
        .await
    }
}
