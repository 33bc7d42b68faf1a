//! The contact's own use cases, once for the customer API and the
//! messenger pages alike: the widget's inbox, becoming a contact (with an
//! external id verified by the inbox's identity secret), resume links,
//! the contact's conversations and messages, typing, read receipts,
//! search over its own history, and its email address (leave it, confirm
//! it, unsubscribe). A contact only ever reaches its own conversations and
//! never a note; anything else answers 404.

use super::messages::Prepared;
use std::net::IpAddr;

use super::index::{Hits, SearchFilter};
use super::notify::Confirmation;
use super::realtime::{TypingEvent, Viewer};
use super::Services;
use crate::domain::ids::{ContactId, ConversationId, InboxId};
use crate::domain::time::{self, Micros};
use crate::domain::{AuthorType, ContactName, Email, Invalid};
use crate::error::{ApiError, ApiResult};
use crate::store::{
    Author, ContactRecord, ConversationRecord, InboxRecord, MessagePage, MessageRecord, NewContact,
    NewMessage, Reader, ResumeRecord, StoreError, TokenOwner, TokenRecord,
};

/// How long a resume link lives.
const RESUME_TTL_MICROS: i64 = 15 * 60 * 1_000_000;

/// How long the search waits for the index to catch up with what is
/// already acknowledged, so a message is findable as soon as it was sent.
const INDEX_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a visitor tells about itself when it becomes a contact, parsed at
/// the edge (the widget's JSON, the messenger's first form).
#[derive(Debug, Default)]
pub struct ContactDetails {
    /// Its name, if it gave one.
    pub name: Option<ContactName>,
    /// Its email, if it gave one (not proven: see [`Services::leave_email`]).
    pub email: Option<Email>,
    /// The host site's user id, signed with the inbox's identity secret.
    pub identity: Option<ClaimedIdentity>,
}

/// Someone of the team behind an inbox, as its messenger shows them: a
/// first name and whether they are connected now.
#[derive(Debug, Clone)]
pub struct TeamFace {
    /// The first word of the agent's name.
    pub first_name: String,
    /// An open workspace (or API) event stream.
    pub online: bool,
}

/// A user id a host site vouches for: `identifier_hash` is the HMAC of
/// `external_id` under the inbox's identity secret, so a visitor cannot
/// claim someone else's id (and with it their conversations).
#[derive(Debug)]
pub struct ClaimedIdentity {
    /// The host site's user id.
    pub external_id: String,
    /// The HMAC the host site computed (hex).
    pub identifier_hash: String,
}

/// A single-use link that continues a contact on another device.
#[derive(Debug)]
pub struct ResumeLink {
    /// The link (the messenger with `?resume=`).
    pub url: String,
    /// When it stops working.
    pub expires_at: Micros,
}

/// An optional email field: blank is the same as none, anything else must
/// be an address.
pub fn optional_email(raw: Option<&str>) -> Result<Option<Email>, Invalid> {
    match raw.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => Email::parse(e).map(Some),
        None => Ok(None),
    }
}

/// The contact as the author of its messages.
fn contact_author(c: &ContactRecord) -> Author {
    Author {
        kind: AuthorType::Contact,
        id: Some(c.id.get()),
        name: c.name.clone(),
    }
}

/// Issues a new contact token (`nct_`) for `inbox_id`, stored only by its
/// hash.
async fn contact_token(svc: &Services, contact: ContactId, inbox_id: InboxId) -> ApiResult<String> {
    let (token, hash) = super::auth::new_token("nct_");
    let now = time::now();
    let rec = TokenRecord {
        owner: contact.get(),
        created_at: now,
        expires_at: now + svc.config.contact_token_ttl_secs * 1_000_000,
        inbox_id: Some(inbox_id),
    };
    svc.store
        .insert_token(TokenOwner::Contact, hash, rec)
        .await?;
    Ok(token)
}

impl Services {
    /// The inbox behind a widget key (public: it is in every host page),
    /// or 404.
    #[tracing::instrument(skip_all)]
    pub fn widget_inbox(&self, key: &str) -> ApiResult<InboxRecord> {
        self.store
            .inbox_by_widget_key(key)?
            .ok_or(ApiError::NotFound)
    }

    /// The limit on new contacts (and resume links) per client address,
    /// checked before any of the request's body is read.
    #[tracing::instrument(skip_all, fields(ip = %address))]
    pub fn allow_new_contact(&self, address: IpAddr) -> ApiResult<()> {
        self.limits
            .contacts
            .check(&address)
            .map_err(ApiError::TooManyRequests)
    }

    /// The limit on a contact's messages, checked before the body is read.
    #[tracing::instrument(skip_all, fields(contact = %contact.id))]
    pub fn allow_contact_message(&self, contact: &ContactRecord) -> ApiResult<()> {
        self.limits
            .contact_messages
            .check(&contact.id)
            .map_err(ApiError::TooManyRequests)
    }

    /// Makes a visitor a contact of the inbox and gives it a token. With a
    /// verified external id it is the contact that id always maps to (one
    /// person, every device); an id whose HMAC does not match is refused.
    #[tracing::instrument(skip_all, fields(inbox = %inbox.id))]
    pub async fn create_contact(
        &self,
        inbox: &InboxRecord,
        details: ContactDetails,
    ) -> ApiResult<(ContactRecord, String)> {
        let external_id = match details.identity {
            None => None,
            Some(i)
                if i.external_id.is_empty()
                    || i.external_id.chars().count() > 255
                    || i.external_id.contains('\0') =>
            {
                return Err(
                    Invalid::new("external_id", "external_id must be 1 to 255 characters").into(),
                )
            }
            Some(i) => {
                if !super::auth::identity_hash_ok(
                    &inbox.hmac_secret,
                    &i.external_id,
                    &i.identifier_hash,
                ) {
                    return Err(ApiError::Unauthorized(
                        "identifier_hash does not match external_id",
                    ));
                }
                Some(i.external_id)
            }
        };
        let contact = self
            .store
            .upsert_contact(
                inbox.id,
                NewContact {
                    name: details.name.map(ContactName::into_inner),
                    email: details.email.map(Email::into_inner),
                    external_id,
                },
                time::now(),
            )
            .await?;
        let token = contact_token(self, contact.id, inbox.id).await?;
        Ok((contact, token))
    }

    /// Who answers in an inbox, as its messenger shows them: its active
    /// members (the active admins when it has none), online ones first,
    /// at most `max`. Only first names leave natter.
    pub fn team_faces(&self, inbox: &InboxRecord, max: usize) -> ApiResult<Vec<TeamFace>> {
        let members = self.store.members(inbox.id)?;
        let agents = self.store.agents()?;
        let mut team: Vec<&crate::store::AgentRecord> = agents
            .iter()
            .filter(|a| a.active && !a.invited() && members.contains(&a.id))
            .collect();
        if team.is_empty() {
            team = agents
                .iter()
                .filter(|a| a.active && !a.invited() && a.role == crate::domain::Role::Admin)
                .collect();
        }
        let mut faces: Vec<TeamFace> = team
            .into_iter()
            .map(|a| TeamFace {
                first_name: a.name.split_whitespace().next().unwrap_or("").to_owned(),
                online: self.availability_of(a) == crate::domain::Availability::Online,
            })
            .filter(|f| !f.first_name.is_empty())
            .collect();
        faces.sort_by_key(|f| !f.online);
        faces.truncate(max);
        Ok(faces)
    }

    /// The inbox's pre-chat rule for a first-time visitor starting from
    /// the messenger: with `require`, a name and an email come with the
    /// first message (422 naming what is missing, nothing stored).
    pub fn check_prechat(&self, inbox: &InboxRecord, details: &ContactDetails) -> ApiResult<()> {
        if inbox.prechat != crate::domain::Prechat::Require {
            return Ok(());
        }
        if details.name.is_none() {
            return Err(Invalid::new("name", "please tell us your name").into());
        }
        if details.email.is_none() {
            return Err(Invalid::new("email", "please give your email so we can reply").into());
        }
        Ok(())
    }

    /// The contact a token stands for, if it is unexpired and the contact
    /// belongs to this inbox (the messenger's bearer token or cookie).
    #[tracing::instrument(skip_all, fields(inbox = %inbox.id))]
    pub fn contact_by_token_in(
        &self,
        inbox: &InboxRecord,
        token: &str,
    ) -> ApiResult<Option<ContactRecord>> {
        let hash = super::auth::hash_token(token);
        Ok(self
            .contact_by_token(&hash)?
            .map(|(c, _)| c)
            .filter(|c| c.belongs_to(inbox.id)))
    }

    /// A single-use link, valid for 15 minutes, that continues this
    /// contact on another device (limited like new contacts).
    #[tracing::instrument(skip_all, fields(contact = %contact.id, inbox = %inbox_id))]
    pub async fn create_resume_link(
        &self,
        contact: &ContactRecord,
        inbox_id: InboxId,
        address: IpAddr,
    ) -> ApiResult<ResumeLink> {
        self.allow_new_contact(address)?;
        let inbox = self.store.inbox(inbox_id)?.ok_or(ApiError::NotFound)?;
        let (token, hash) = super::auth::new_token("nrs_");
        let now = time::now();
        let expires_at = now + RESUME_TTL_MICROS;
        self.store
            .insert_resume(
                hash,
                ResumeRecord {
                    contact_id: contact.id,
                    expires_at,
                },
                now,
            )
            .await?;
        let url = format!(
            "{}/m/{}?resume={}",
            self.config.base_url, inbox.widget_key, token
        );
        Ok(ResumeLink { url, expires_at })
    }

    /// Uses a resume link at its inbox: a new token for the same contact,
    /// once. `None` when the link has expired, was used, or is another
    /// inbox's.
    #[tracing::instrument(skip_all, fields(inbox = %inbox.id))]
    pub async fn redeem_resume_link(
        &self,
        inbox: &InboxRecord,
        address: IpAddr,
        token: &str,
    ) -> ApiResult<Option<(ContactRecord, String)>> {
        self.allow_new_contact(address)?;
        let Some(id) = self
            .store
            .take_resume(super::auth::hash_token(token.trim()), inbox.id, time::now())
            .await?
        else {
            return Ok(None);
        };
        let Some(contact) = self.store.contact(id)?.filter(|c| c.belongs_to(inbox.id)) else {
            return Ok(None);
        };
        let token = contact_token(self, contact.id, inbox.id).await?;
        Ok(Some((contact, token)))
    }

    /// The contact's conversations, newest activity first.
    #[tracing::instrument(skip_all, fields(contact = %contact.id))]
    pub fn own_conversations(&self, contact: &ContactRecord) -> ApiResult<Vec<ConversationRecord>> {
        Ok(self.store.contact_conversations_for_contact(contact.id)?)
    }

    /// One of the contact's conversations; 404 for anyone else's, exactly
    /// like one that does not exist.
    #[tracing::instrument(skip_all, fields(contact = %contact.id, conversation = %id))]
    pub fn own_conversation(
        &self,
        contact: &ContactRecord,
        id: ConversationId,
    ) -> ApiResult<ConversationRecord> {
        self.store
            .conversation(id)?
            .filter(|c| c.contact_id == contact.id)
            .ok_or(ApiError::NotFound)
    }

    /// A conversation in the contract's shape for its contact (read
    /// positions in the contact's numbering).
    #[tracing::instrument(skip_all, fields(contact = %contact.id, conversation = %c.id))]
    pub fn as_its_contact_sees(
        &self,
        c: &ConversationRecord,
        contact: &ContactRecord,
    ) -> ApiResult<crate::contract::Conversation> {
        Ok(super::present::customer_conversation(
            &self.store,
            c,
            Some(contact),
        )?)
    }

    /// Starts a conversation in `inbox_id` with the contact's first message.
    #[tracing::instrument(skip_all, fields(contact = %contact.id, inbox = %inbox_id))]
    pub async fn start_conversation(
        &self,
        inbox_id: InboxId,
        contact: &ContactRecord,
        first: Prepared,
    ) -> ApiResult<(ConversationRecord, MessageRecord)> {
        let (conv, msg) = self
            .store
            .create_conversation(
                inbox_id,
                contact.id,
                NewMessage {
                    author: contact_author(contact),
                    body: first.body,
                    private: false,
                    attachments: first.attachments,
                    via: None,
                },
                time::now(),
            )
            .await?;
        first.files.keep();
        crate::metrics::global().message_created(AuthorType::Contact);
        self.router.route().await;
        self.out_of_office(&conv).await;
        Ok((conv, msg))
    }

    /// A new message from the contact in its conversation (which reopens
    /// it if needed).
    #[tracing::instrument(skip_all, fields(contact = %contact.id, conversation = %c.id))]
    pub async fn post_own_message(
        &self,
        contact: &ContactRecord,
        c: &ConversationRecord,
        m: Prepared,
    ) -> ApiResult<MessageRecord> {
        self.persist_message(c, contact_author(contact), false, None, m)
            .await
    }

    /// A page of the messages the contact may see (never notes), in its
    /// numbering.
    #[tracing::instrument(skip_all, fields(conversation = %c.id))]
    pub fn own_messages(
        &self,
        c: &ConversationRecord,
        page: MessagePage,
    ) -> ApiResult<Vec<MessageRecord>> {
        Ok(self.store.public_messages(c, page)?)
    }

    /// The public message numbered `ordinal` for the contact (the one a
    /// new message is drawn after), if any.
    #[tracing::instrument(skip_all, fields(conversation = %conversation))]
    pub fn own_message_at(
        &self,
        conversation: ConversationId,
        ordinal: u64,
    ) -> ApiResult<Option<MessageRecord>> {
        Ok(self.store.public_message(conversation, ordinal)?)
    }

    /// Tells the team the contact is (or stopped) typing.
    #[tracing::instrument(skip_all, fields(contact = %contact.id, conversation = %c.id))]
    pub fn contact_typing(&self, contact: &ContactRecord, c: &ConversationRecord, typing: bool) {
        self.typing.publish(TypingEvent::in_conversation(
            c,
            contact_author(contact),
            typing,
            false,
        ));
    }

    /// The contact has read up to `ordinal`, its own numbering: natter
    /// records the real seq of that public message (agents show "Seen").
    #[tracing::instrument(skip_all, fields(contact = %contact.id, conversation = %c.id))]
    pub async fn contact_read(
        &self,
        contact: &ContactRecord,
        c: &ConversationRecord,
        ordinal: u64,
    ) -> ApiResult<()> {
        let reader = Reader {
            kind: AuthorType::Contact,
            id: contact.id.get(),
        };
        let seq = self.store.seq_of_ordinal(c, ordinal)?;
        self.store.mark_read(c.id, reader, seq, time::now()).await?;
        Ok(())
    }

    /// Search over the contact's own messages (never notes), within the
    /// per-caller search limit, once the index has caught up with what is
    /// already acknowledged.
    #[tracing::instrument(skip_all, fields(contact = %contact.id))]
    pub async fn search_own_messages(
        &self,
        contact: &ContactRecord,
        text: String,
        limit: usize,
        cursor: Option<String>,
    ) -> ApiResult<Hits> {
        self.limits
            .searches
            .check(&(1, contact.id.get()))
            .map_err(ApiError::TooManyRequests)?;
        let target = self.store.durability().published_upto();
        self.index.wait_for(target, INDEX_WAIT).await;
        let (index, store) = (self.index.clone(), self.store.clone());
        let viewer = Viewer::Contact { id: contact.id };
        tokio::task::spawn_blocking(move || {
            index.search(
                &store,
                viewer,
                &text,
                &SearchFilter::default(),
                limit,
                cursor.as_deref(),
            )
        })
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| ApiError::from(StoreError::from(e)))
    }

    /// Whether natter can send mail now: a mail server is set, or an email
    /// inbox lends its own. Pages offer mail (and warn admins) by it.
    pub fn can_send_mail(&self) -> bool {
        super::notify::outgoing_mail(
            &self.store,
            self.config.smtp.as_ref(),
            self.http.allow_private,
        )
        .is_some()
    }

    /// Stores the email a contact leaves to hear back, and mails it a link
    /// that proves the address (unless it is proven already). Every such
    /// mail is limited per contact, per client address and per recipient:
    /// a visitor must not be able to make natter mail anyone at will.
    /// Answers whether the confirmation mail went out.
    #[tracing::instrument(skip_all, fields(contact = %contact.id, inbox = %inbox.id))]
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
                tracing::warn!(contact = %contact.id, error = %e, "confirmation mail not sent");
                Ok(false)
            }
        }
    }

    /// The contact a genuine, unexpired confirmation link stands for, and
    /// whether the address is already another verified person's (then
    /// confirming gives the asking device that person's conversations);
    /// 404 for anything forged, altered, expired or gone.
    #[tracing::instrument(skip_all, fields(inbox = %inbox.id, contact = %c.contact))]
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
    #[tracing::instrument(skip_all, fields(inbox = %inbox.id, contact = %c.contact))]
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
                from = %contact.id,
                into = %other,
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
        let contact = ContactId::parse(contact)
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
