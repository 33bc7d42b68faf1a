//! The contact's own use cases, once for the customer API and the
//! messenger pages alike: the widget's inbox, becoming a contact (with an
//! external id verified by the inbox's identity secret), resume links,
//! the contact's conversations and messages, typing, read receipts,
//! search over its own history, and its email address (leave it, confirm
//! it, unsubscribe). A contact only ever reaches its own conversations and
//! never a note; anything else answers 404.

use std::net::IpAddr;

use super::notify::Confirmation;
use super::Services;
use crate::domain::time;
use crate::domain::Email;
use crate::error::{ApiError, ApiResult};
use crate::store::{ContactRecord, InboxRecord};
impl Services {
    /// Stores the email a contact leaves to hear back, and mails it a link
    /// that proves the address (unless it is proven already). Every such
    /// mail is limited per contact, per client address and per recipient:
    /// a visitor must not be able to make natter mail anyone at will.
    /// Answers whether the confirmation mail went out.
    #[tracing::instrument(skip_all, fields(contact = contact.id, inbox = inbox.id))]
    pub async fn leave_email(
        &self,
        inbox: &InboxRecord,
        contact: &ContactRecord,
        email: Email,
        address: IpAddr,
        user_agent: &str,
    ) -> ApiResult<bool> {
        let email = email.into_inner();
        let already = contact
            .verified
            .contains(&format!("email:{}", email.trim().to_lowercase()));
        let mailer = super::notify::outgoing_mail(
            &self.store,
            self.config.smtp.as_ref(),
            self.http.allow_private,
        )
        .filter(|_| !already);
        if mailer.is_some() {
            self.limits
                .visitor_mail(contact.id, address, &email)
                .map_err(ApiError::TooManyRequests)?;
        }
        self.store
            .set_contact_email(contact.id, email.clone(), time::now())
            .await?;
        // A confirmation link proves the address (and, with the agreement
        // of the person at the address, links their other conversations).
        let Some(smtp) = &mailer else {
            return Ok(false);
        };
        let c = Confirmation {
            contact: contact.id,
            email,
            asked_at: time::now() / 1_000_000,
            device: super::notify::device_of(user_agent),
        };
        match super::notify::send_confirmation(
            &self.store,
            smtp,
            &self.config.base_url,
            &inbox.name,
            &inbox.widget_key,
            &c,
        )
        .await
        {
            Ok(()) => Ok(true),
            Err(e) => {
                tracing::warn!(contact = contact.id, error = %e, "confirmation mail not sent");
                Ok(false)
            }
        }
    }

    /// The contact a genuine, unexpired confirmation link stands for, and
    /// whether the address is already another verified person's (then
    /// confirming gives the asking device that person's conversations);
    /// 404 for anything forged, altered, expired or gone.
    #[tracing::instrument(skip_all, fields(inbox = inbox.id, contact = c.contact))]
    pub async fn confirmation(
        &self,
        inbox: &InboxRecord,
        c: &Confirmation,
        token: &str,
    ) -> ApiResult<(ContactRecord, bool)> {
        let secret = self.store.server_secret().await?;
        if !c.holds(&secret, token, time::now() / 1_000_000) {
            return Err(ApiError::NotFound);
        }
        let contact = self
            .store
            .contact(c.contact)?
            .filter(|k| k.belongs_to(inbox.id))
            .ok_or(ApiError::NotFound)?;
        let takeover = self
            .store
            .email_owner(&c.email)?
            .is_some_and(|owner| owner != contact.id);
        Ok((contact, takeover))
    }

    /// Confirms a link's address for the contact that asked, and only for
    /// it. If another verified person holds the address, the person at the
    /// address has just agreed (on a page that said so) that the asking
    /// device is theirs: the asker joins that person. One write, so a
    /// crash leaves either nothing or all of it.
    #[tracing::instrument(skip_all, fields(inbox = inbox.id, contact = c.contact))]
    pub async fn confirm_email(
        &self,
        inbox: &InboxRecord,
        c: &Confirmation,
        token: &str,
    ) -> ApiResult<()> {
        let (contact, _) = self.confirmation(inbox, c, token).await?;
        if let Some(other) = self
            .store
            .confirm_email(contact.id, &c.email, time::now())
            .await?
        {
            tracing::info!(
                from = contact.id,
                into = other,
                "contacts linked by a confirmed email"
            );
        }
        Ok(())
    }

    /// The unsubscribe link of notification mails: no sign-in, the token
    /// is an HMAC of the contact's id under the server's secret; a forged
    /// or altered link is a 404 and says nothing more.
    #[tracing::instrument(skip_all)]
    pub async fn unsubscribe(&self, contact: &str, token: &str) -> ApiResult<()> {
        let contact = crate::domain::parse_id(contact)
            .and_then(|id| self.store.contact(id).ok().flatten())
            .ok_or(ApiError::NotFound)?;
        let secret = self.store.server_secret().await?;
        let expected = super::notify::unsubscribe_token(&secret, contact.id);
        if !crate::channels::secret_eq(token.trim(), &expected) {
            return Err(ApiError::NotFound);
        }
        self.store
            .set_email_notifications(contact.id, false, time::now())
            .await?;
        Ok(())
    }
}
