//! Replies that reach people who have left: when an agent's reply in a web
//! conversation stays unread for the configured time and the contact left
//! an email, one mail carries every unread reply, a single-use link that
//! signs the contact back into the messenger on that conversation, and an
//! unsubscribe link. The mail's Reply-To is a plus-address naming the
//! conversation, so answering it threads back (when an email inbox follows
//! that mailbox). Notes are never mailed; a reply is mailed at most once.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use tokio::sync::{watch, Notify};

use crate::channels::email::smtp::{self, OutgoingMail};
use crate::channels::email::{plus_address, route_token, EmailSettings};
use crate::domain::ids::{ContactId, ConversationId};
use crate::domain::time::{self, Micros};
use crate::domain::AuthorType;
use crate::service::auth::{hash_token, random_string};
use crate::store::{MessagePage, ResumeRecord, Store};

/// How long the sign-in link of a notification stays valid.
pub const LINK_TTL: Micros = 7 * 24 * 3600 * 1_000_000;
/// Replies older than this are not mailed any more (the server was down).
pub const GIVE_UP_AFTER: Micros = 24 * 3600 * 1_000_000;

#[derive(Debug, Default)]
struct Manual {
    offset: AtomicI64,
    seen: AtomicI64,
    changed: Notify,
    passed: Notify,
}

/// The notifier's clock: the system's, or one a test moves by hand.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<Manual>>);

impl Clock {
    /// A clock that starts at the real time and moves only when told.
    pub fn manual() -> Self {
        Self(Some(Arc::default()))
    }

    /// Now, by this clock.
    pub fn now(&self) -> Micros {
        time::now()
            + self
                .0
                .as_ref()
                .map_or(0, |m| m.offset.load(Ordering::SeqCst))
    }

    /// Moves a manual clock forward and waits (bounded) until the notifier
    /// has done a full pass at the new time.
    pub async fn advance(&self, by: Duration) {
        let Some(m) = &self.0 else { return };
        m.offset.fetch_add(by.as_micros() as i64, Ordering::SeqCst);
        let target = self.now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let passed = m.passed.notified();
            m.changed.notify_waiters();
            if m.seen.load(Ordering::SeqCst) >= target {
                return;
            }
            if tokio::time::timeout_at(deadline, passed).await.is_err() {
                return;
            }
        }
    }

    async fn changed(&self) {
        match &self.0 {
            Some(m) => m.changed.notified().await,
            None => std::future::pending().await,
        }
    }

    fn passed(&self, at: Micros) {
        if let Some(m) = &self.0 {
            m.seen.fetch_max(at, Ordering::SeqCst);
            m.passed.notify_waiters();
        }
    }
}

/// What the notifier needs.
pub struct Notifier {
    /// The database.
    pub store: Arc<Store>,
    /// Links in mails.
    pub base_url: String,
    /// The global SMTP settings, if configured (else the first email
    /// inbox's).
    pub smtp: Option<EmailSettings>,
    /// Its clock.
    pub clock: Clock,
    /// Calls out (SMS notifications go through the SMS inbox's provider).
    pub http: crate::channels::http::Http,
}

/// The unsubscribe token of a contact: HMAC of its id under the server's
/// secret, so links need no stored state and cannot be forged.
pub fn unsubscribe_token(secret: &[u8], contact: ContactId) -> String {
    link_token(secret, &format!("unsubscribe:{contact}"))
}

/// HMAC-SHA256 of what a link stands for under the server's secret, in
/// hex: the token of links that need no stored state.
pub(crate) fn link_token(secret: &[u8], what: &str) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(what.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The outgoing mail server: the global settings, else the first email
/// inbox's (one SMTP configuration shared by notifications and the email
/// channel).
/// `allow_private` is `NATTER_WEBHOOKS_ALLOW_PRIVATE`, which an inbox's
/// servers follow (the global settings are the operator's, trusted).
pub fn outgoing_mail(
    store: &Store,
    global: Option<&EmailSettings>,
    allow_private: bool,
) -> Option<EmailSettings> {
    if let Some(s) = global {
        return Some(s.clone());
    }
    store
        .inboxes()
        .ok()?
        .into_iter()
        .filter(|i| crate::channels::ChannelKind::of(&i.channel).follows_a_mailbox())
        .find_map(|i| crate::channels::email::channel::settings_of(&i).ok())
        .map(|s| EmailSettings { allow_private, ..s })
}

/// How long an email confirmation link stays valid.
pub const CONFIRM_TTL_SECS: i64 = 24 * 3600;

/// What an email confirmation link stands for: the contact that asked,
/// the address, when it asked (links expire) and the device that asked
/// (named to the person who opens the link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The contact that asked.
    pub contact: ContactId,
    /// The address to prove.
    pub email: String,
    /// When it asked, in seconds since the epoch.
    pub asked_at: i64,
    /// The asking device in a few words ("Firefox on Linux").
    pub device: String,
}

impl Confirmation {
    /// The link's token: HMAC of everything it stands for under the
    /// server's secret, so no part can be changed.
    pub fn token(&self, secret: &[u8]) -> String {
        link_token(
            secret,
            &format!(
                "confirm:{}:{}:{}:{}",
                self.contact,
                self.email.trim().to_lowercase(),
                self.asked_at,
                self.device
            ),
        )
    }

    /// The query of the link (`c`, `e`, `at`, `d`, `t`).
    pub fn query(&self, secret: &[u8]) -> String {
        format!(
            "c={}&e={}&at={}&d={}&t={}",
            self.contact,
            crate::domain::text::url_escape(&self.email),
            self.asked_at,
            crate::domain::text::url_escape(&self.device),
            self.token(secret)
        )
    }

    /// Whether `token` is this confirmation's and it has not expired.
    pub fn holds(&self, secret: &[u8], token: &str, now_secs: i64) -> bool {
        let fresh = (0..=CONFIRM_TTL_SECS).contains(&(now_secs - self.asked_at));
        fresh && crate::channels::secret_eq(token.trim(), &self.token(secret))
    }
}

/// The asking device in a few words, from its User-Agent: a fixed
/// vocabulary (never the raw header), so it is safe in a link, a mail and
/// a page. It only helps the person recognise their own device: a
/// User-Agent can lie, which is why the page says what confirming does.
pub fn device_of(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map_or("A browser", |(_, v)| v);
    let system = [
        ("iPhone", "an iPhone"),
        ("iPad", "an iPad"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Macintosh", "a Mac"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map_or("an unknown system", |(_, v)| v);
    format!("{browser} on {system}")
}

/// A mail of natter's own (not part of a conversation: no threading, no
/// Reply-To): a fresh Message-ID `natter.<kind>.<random>@<from domain>`.
pub(crate) fn plain_mail(
    from: &EmailSettings,
    to: String,
    to_name: Option<String>,
    subject: &str,
    text: String,
    kind: &str,
) -> OutgoingMail {
    let domain = crate::channels::email::channel::domain_of(&from.from_address);
    OutgoingMail {
        to,
        to_name,
        subject: subject.to_owned(),
        text,
        message_id: format!("natter.{kind}.{}@{domain}", random_string(12)),
        in_reply_to: None,
        references: Vec::new(),
        reply_to: None,
        list_unsubscribe: None,
        attachments: Vec::new(),
    }
}

/// Mails the link that proves `c.email` for the contact that asked.
/// When the address already belongs to another verified person, the mail
/// goes to that person and says plainly that confirming gives the asking
/// device their conversations.
pub async fn send_confirmation(
    store: &Store,
    smtp_settings: &EmailSettings,
    base_url: &str,
    inbox_name: &str,
    widget_key: &str,
    c: &Confirmation,
) -> Result<(), String> {
    let secret = store.server_secret().await.map_err(|e| e.to_string())?;
    let link = format!(
        "{base_url}/m/{widget_key}/confirm-email?{}",
        c.query(&secret)
    );
    let someone_else = store
        .email_owner(&c.email)
        .map_err(|e| e.to_string())?
        .is_some_and(|owner| owner != c.contact);
    let when = time::rfc3339(c.asked_at * 1_000_000);
    let text = if someone_else {
        format!(
            "{device} asked at {when} to use this address for its conversations with {inbox_name}.\n\nThis address is already confirmed for your conversations with us. If that was you on another device and you want that device to see and continue all your conversations, open this link and confirm there:\n\n{link}\n\nIf it was not you, ignore this mail: nothing changes.\n",
            device = c.device
        )
    } else {
        format!(
            "Please confirm this is your address, so replies from {inbox_name} reach you and your conversations follow you (asked by {device} at {when}):\n\n{link}\n\nIf you did not ask for this, ignore this mail.\n",
            device = c.device
        )
    };
    let mail = plain_mail(
        smtp_settings,
        c.email.clone(),
        None,
        "Confirm your email address",
        text,
        "confirm",
    );
    smtp::send(smtp_settings, &mail)
        .await
        .map_err(|e| e.message)
}

impl Notifier {
    /// Sends the notification as an SMS through the contact's SMS inbox.
    async fn by_sms(
        &self,
        id: ConversationId,
        seq: u64,
        inbox: &crate::store::InboxRecord,
        phone: &str,
        text: &str,
        now: Micros,
    ) -> Result<(), String> {
        let Some(adapter) = crate::channels::by_name(&inbox.channel) else {
            return Ok(());
        };
        let out = crate::channels::Outgoing {
            to: phone,
            body: text,
            media: Vec::new(),
            files: Vec::new(),
            message_id: id.get().wrapping_mul(1_000_003).wrapping_add(seq),
            last_inbound_at: None,
            now: time::now(),
            base_url: &self.base_url,
            inbox_id: inbox.id.get(),
            message_json: None,
            conversation_id: id.get(),
            subject: None,
            contact_name: None,
            thread: Vec::new(),
            reply_to_id: None,
            route_token: String::new(),
        };
        let store = &self.store;
        match adapter.send(&self.http, inbox, out).await {
            Ok(_) => {
                tracing::info!(conversation = %id, "unread replies sent by SMS");
                store.finish_notification(id, Some(seq), None, now).await
            }
            Err(crate::channels::SendError::Temporary(e)) => {
                tracing::info!(conversation = %id, error = %e, "SMS notification will be retried");
                store
                    .finish_notification(id, None, Some(now + 60 * 1_000_000), now)
                    .await
            }
            Err(crate::channels::SendError::Permanent(e)) => {
                tracing::warn!(conversation = %id, error = %e, "SMS notification refused");
                store.finish_notification(id, None, None, now).await
            }
        }
        .map_err(|e| e.to_string())
    }

    /// Runs until shutdown: a pass every second (or when a manual clock
    /// moves).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let now = self.clock.now();
            match self.store.due_notifications(now) {
                Ok(ids) => {
                    for id in ids {
                        if let Err(e) = self.process(id, now).await {
                            tracing::warn!(conversation = %id, error = %e, "reply notification failed");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read due notifications"),
            }
            if let Err(e) = super::sla::sweep(&self.store, now).await {
                tracing::error!(error = %e, "cannot check SLA deadlines");
            }
            self.clock.passed(now);
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.clock.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    fn smtp(&self) -> Option<EmailSettings> {
        outgoing_mail(&self.store, self.smtp.as_ref(), self.http.allow_private)
    }

    async fn process(&self, id: ConversationId, now: Micros) -> Result<(), String> {
        let store = &self.store;
        let drop_it = || store.finish_notification(id, None, None, now);
        let Some(conv) = store.conversation(id).map_err(|e| e.to_string())? else {
            return drop_it().await.map_err(|e| e.to_string());
        };
        let contact = store.contact(conv.contact_id).map_err(|e| e.to_string())?;
        let inbox = store.inbox(conv.inbox_id).map_err(|e| e.to_string())?;
        let after = conv.contact_read_seq.max(conv.notified_seq);
        let replies: Vec<_> = store
            .messages(
                id,
                MessagePage {
                    after: Some(after),
                    before: None,
                    limit: 50,
                    include_private: false,
                },
            )
            .map_err(|e| e.to_string())?
            .into_iter()
            // Replies sent through another channel reached the person there.
            .filter(|m| m.author.kind != AuthorType::Contact && !m.private && m.via.is_none())
            .collect();
        let (Some(contact), Some(inbox), Some(last)) = (contact, inbox, replies.last()) else {
            return drop_it().await.map_err(|e| e.to_string());
        };
        if now - last.created_at > GIVE_UP_AFTER || contact.email_notifications_off {
            return drop_it().await.map_err(|e| e.to_string());
        }
        let smtp_settings = self.smtp();
        let email = contact.email.clone().filter(|_| smtp_settings.is_some());
        // Without an email: a number that wrote to an SMS inbox.
        let sms = contact.identities.iter().find_map(|i| {
            let inbox = store.inbox(i.inbox_id).ok().flatten()?;
            crate::channels::ChannelKind::of(&inbox.channel)
                .carries_reply_notifications()
                .then(|| (inbox, i.value.clone()))
        });
        if email.is_none() && sms.is_none() {
            tracing::debug!(
                conversation = %id,
                "no way to reach the contact: reply notification skipped"
            );
            return drop_it().await.map_err(|e| e.to_string());
        }
        // The single-use sign-in link, stored by its hash like resume links.
        let token = format!("nrs_{}", random_string(24));
        store
            .insert_resume(
                hash_token(&token),
                ResumeRecord {
                    contact_id: contact.id,
                    expires_at: time::now() + LINK_TTL,
                },
                time::now(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let base = &self.base_url;
        let link = format!("{base}/m/{}?resume={token}&c={id}", inbox.widget_key);
        let (Some(email), Some(smtp_settings)) = (email, smtp_settings) else {
            let Some((sms_inbox, phone)) = sms else {
                return drop_it().await.map_err(|e| e.to_string());
            };
            let mut text = format!("{}:", inbox.name);
            for m in &replies {
                text.push_str(&format!("\n{}", m.body));
            }
            text.push_str(&format!("\nContinue: {link}"));
            return self
                .by_sms(id, last.seq, &sms_inbox, &phone, &text, now)
                .await;
        };
        let secret = store.server_secret().await.map_err(|e| e.to_string())?;
        let unsubscribe = format!(
            "{base}/m/{}/unsubscribe?c={}&t={}",
            inbox.widget_key,
            contact.id,
            unsubscribe_token(&secret, contact.id)
        );
        let mut text = format!(
            "Hi{},\n\n{} replied to your message:\n",
            contact
                .name
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default(),
            inbox.name
        );
        for m in &replies {
            text.push_str(&format!(
                "\n{}:\n{}\n",
                m.author.name.as_deref().unwrap_or("The team"),
                m.body
            ));
        }
        text.push_str(&format!(
            "\nContinue the conversation: {link}\n\nOr simply reply to this email.\n\nNo more of these emails? {unsubscribe}\n"
        ));
        let domain =
            crate::channels::email::channel::domain_of(&smtp_settings.from_address).to_owned();
        // Answering this mail from this address threads back (and only
        // from this address: the token is a MAC over both).
        let route = route_token(&secret, id.get(), &email);
        let mail = OutgoingMail {
            to: email,
            to_name: contact.name.clone(),
            subject: if replies.len() == 1 {
                format!("New reply from {}", inbox.name)
            } else {
                format!("{} new replies from {}", replies.len(), inbox.name)
            },
            text,
            message_id: format!("natter.{route}.n{}@{domain}", last.seq),
            in_reply_to: None,
            references: Vec::new(),
            reply_to: Some(plus_address(&smtp_settings.from_address, &route)),
            list_unsubscribe: Some(unsubscribe.clone()),
            attachments: Vec::new(),
        };
        match smtp::send(&smtp_settings, &mail).await {
            Ok(()) => {
                tracing::info!(
                    conversation = %id,
                    replies = replies.len(),
                    "unread replies emailed"
                );
                store
                    .finish_notification(id, Some(last.seq), None, now)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) if e.permanent => {
                tracing::warn!(conversation = %id, error = %e.message, "reply notification refused");
                drop_it().await.map_err(|e| e.to_string())
            }
            Err(e) => {
                tracing::info!(conversation = %id, error = %e.message, "reply notification will be retried");
                store
                    .finish_notification(id, None, Some(now + 60 * 1_000_000), now)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}
