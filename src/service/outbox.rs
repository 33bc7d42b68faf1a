//! The worker that empties the durable outbox (`jobdue_job`): sends agent
//! replies through their channel, fetches inbound media, delivers outbound
//! webhooks. Jobs are written in the same transaction as what caused them,
//! so a crash between accepting and doing loses nothing; a job leaves the
//! outbox in the same write that records its outcome, so a reply whose
//! success was recorded is never sent again. Replies of one conversation
//! go out one at a time, in order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{watch, Notify, Semaphore};

use crate::channels::{self, http::Http, ChannelKind, Outgoing, SendError};
use crate::domain::ids::{ConversationId, JobId};
use crate::domain::time::{self, Micros};
use crate::domain::AuthorType;
use crate::error::ApiResult;
use crate::store::{
    ConversationRecord, Delivery, DeliveryStatus, Effects, JobKind, JobRecord, NewMessage, Store,
};

use super::Services;

/// Attempts of a reply before it is marked failed (about 2 hours of
/// backoff in all).
pub const MAX_SEND_ATTEMPTS: u32 = 12;
/// Attempts of a media download before it is given up.
pub const MAX_MEDIA_ATTEMPTS: u32 = 6;

/// What the worker needs.
pub struct Outbox {
    /// The database.
    pub store: Arc<Store>,
    /// Calls out.
    pub http: Http,
    /// Links we hand out (status callbacks, attachment URLs).
    pub base_url: String,
}

/// What posting `new` in a conversation of channel `kind` must also do,
/// the rule the store used to decide itself: an agent's public reply goes
/// out through the outbox when the conversation's channel carries replies
/// out of natter, or when the agent chose another inbox (`via`); a reply
/// that stays in natter (the messenger) schedules the contact's
/// unread-reply notification `notify_delay` from now (0: never). Notes
/// and the contact's own messages do neither.
pub fn message_effects(
    kind: ChannelKind,
    new: &NewMessage,
    now: Micros,
    notify_delay: Micros,
) -> Effects {
    if new.author.kind != AuthorType::Agent || new.private {
        return Effects::default();
    }
    if kind.replies_leave_natter() || new.via.is_some() {
        return Effects {
            send: Some(new.via),
            notify_at: None,
        };
    }
    Effects {
        send: None,
        notify_at: (notify_delay > 0).then_some(now + notify_delay),
    }
}

impl Services {
    /// The [`Effects`] of posting `new` in a conversation (see
    /// [`message_effects`]) in `c`, as its poster read it: reads the
    /// conversation's inbox only for an agent's public reply.
    #[tracing::instrument(skip_all, fields(conversation = %c.id))]
    pub fn message_effects(
        &self,
        c: &ConversationRecord,
        new: &NewMessage,
        now: Micros,
    ) -> ApiResult<Effects> {
        if new.author.kind != AuthorType::Agent || new.private {
            return Ok(Effects::default());
        }
        // An inbox deleted meanwhile sends nothing (the write then finds
        // its conversation gone too).
        let Some(inbox) = self.store.inbox(c.inbox_id)? else {
            return Ok(Effects::default());
        };
        let delay = self.config.notify_after_secs.max(0) * 1_000_000;
        Ok(message_effects(
            ChannelKind::of(&inbox.channel),
            new,
            now,
            delay,
        ))
    }
}

/// Exponential backoff with jitter: 1 s, 2 s, 4 s ... capped at 30 min.
pub fn backoff(attempts: u32, now: Micros) -> Micros {
    let secs = 1i64 << attempts.min(11);
    let secs = secs.min(1800);
    let jitter = rand::thread_rng().gen_range(0..=secs * 250); // up to +25%, in ms
    now + secs * 1_000_000 + jitter * 1_000
}

impl Outbox {
    /// Runs until shutdown: takes due jobs, at most 16 at a time.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let busy: Arc<Mutex<HashSet<JobId>>> = Arc::default();
        let busy_conversations: Arc<Mutex<HashSet<ConversationId>>> = Arc::default();
        let finished = Arc::new(Notify::new());
        let slots = Arc::new(Semaphore::new(16));
        loop {
            let now = time::now();
            let due = match self.store.due_jobs(now, 256) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "outbox could not read its jobs");
                    Vec::new()
                }
            };
            for job in due {
                let conv = match &job.kind {
                    JobKind::Send {
                        conversation_id, ..
                    } => Some(*conversation_id),
                    _ => None,
                };
                {
                    let Ok(mut b) = busy.lock() else { return };
                    let Ok(mut bc) = busy_conversations.lock() else {
                        return;
                    };
                    if b.contains(&job.id) || conv.is_some_and(|c| bc.contains(&c)) {
                        continue;
                    }
                    b.insert(job.id);
                    if let Some(c) = conv {
                        bc.insert(c);
                    }
                }
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (me, busy, bc, finished) = (
                    self.clone(),
                    busy.clone(),
                    busy_conversations.clone(),
                    finished.clone(),
                );
                tokio::spawn(async move {
                    if let Err(e) = me.run_job(&job).await {
                        tracing::error!(error = %e, job = %job.id, "outbox job failed; it stays queued");
                    }
                    if let Ok(mut b) = busy.lock() {
                        b.remove(&job.id);
                    }
                    if let (Some(c), Ok(mut bc)) = (conv, bc.lock()) {
                        bc.remove(&c);
                    }
                    drop(permit);
                    finished.notify_one();
                });
            }
            // Jobs due now are running (or wait for their conversation's
            // previous reply): their end wakes this loop through `finished`.
            let wait = match self.store.next_job_due_after(time::now()) {
                Ok(Some(t)) => {
                    Duration::from_micros((t - time::now()).clamp(5_000, 30_000_000) as u64)
                }
                _ => Duration::from_secs(30),
            };
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.store.jobs_queued() => {}
                _ = finished.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn run_job(&self, job: &JobRecord) -> crate::store::Result<()> {
        match &job.kind {
            JobKind::Send {
                conversation_id,
                seq,
            } => self.send(job, *conversation_id, *seq).await,
            JobKind::FetchMedia {
                conversation_id,
                seq,
                media,
            } => self.fetch_media(job, *conversation_id, *seq, media).await,
            JobKind::WebhookEvents {
                first_event,
                last_event,
            } => super::webhooks::route_events(&self.store, job, *first_event, *last_event).await,
            JobKind::Webhook {
                webhook_id,
                event_id,
            } => {
                super::webhooks::deliver(&self.store, &self.http, job, *webhook_id, *event_id).await
            }
        }
    }

    async fn fail(
        &self,
        job: &JobRecord,
        c: ConversationId,
        seq: u64,
        error: String,
    ) -> crate::store::Result<()> {
        tracing::warn!(conversation = %c, seq, error = %error, "reply not delivered");
        self.store
            .set_delivery(
                c,
                seq,
                Delivery {
                    status: DeliveryStatus::Failed,
                    error: Some(error),
                },
                None,
                Some(job),
                time::now(),
            )
            .await
            .map(|_| ())
    }

    async fn send(&self, job: &JobRecord, c: ConversationId, seq: u64) -> crate::store::Result<()> {
        let store = &self.store;
        let now = time::now();
        let (Some(msg), Some(conv)) = (store.message(c, seq)?, store.conversation(c)?) else {
            return store.job_done(job, now).await;
        };
        // Sent already (a retry of a job whose outcome was recorded).
        if msg
            .delivery
            .as_ref()
            .is_some_and(|d| d.status != DeliveryStatus::Queued)
        {
            return store.job_done(job, now).await;
        }
        // The conversation's channel, or the one the agent chose.
        let Some(inbox) = store.inbox(msg.via.unwrap_or(conv.inbox_id))? else {
            return self
                .fail(job, c, seq, "the inbox to send through is gone".into())
                .await;
        };
        let Some(adapter) = channels::by_name(&inbox.channel) else {
            return self
                .fail(
                    job,
                    c,
                    seq,
                    format!("the {} channel cannot send", inbox.channel),
                )
                .await;
        };
        let contact = store.contact(conv.contact_id)?;
        let to = contact.as_ref().and_then(|k| {
            k.identities
                .iter()
                .find(|i| i.inbox_id == inbox.id)
                .map(|i| i.value.clone())
                .or_else(|| {
                    crate::channels::ChannelKind::of(&inbox.channel)
                        .follows_a_mailbox()
                        .then(|| k.email.clone())
                        .flatten()
                })
        });
        let Some(to) = to else {
            return self
                .fail(
                    job,
                    c,
                    seq,
                    "the contact has no address on this channel".into(),
                )
                .await;
        };
        let media = msg
            .attachments
            .iter()
            .map(|a| {
                (
                    format!("{}{}", self.base_url, crate::contract::attachment_url(a)),
                    a.content_type.clone(),
                )
            })
            .collect();
        // The thread so far, for channels that quote it (email headers).
        let mut thread = Vec::new();
        let mut reply_to_id = None;
        for m in store.messages(
            c,
            crate::store::MessagePage {
                after: None,
                before: Some(seq),
                limit: 200,
                include_private: false,
            },
        )? {
            if let Some(p) = &m.provider_id {
                thread.push(p.clone());
                if m.author.kind == crate::domain::AuthorType::Contact {
                    reply_to_id = Some(p.clone());
                }
            }
        }
        let files = msg
            .attachments
            .iter()
            .filter(|a| super::files::valid_id(&a.id))
            .map(|a| {
                (
                    a.name.clone(),
                    a.content_type.clone(),
                    store.files_dir().join(&a.id),
                )
            })
            .collect();
        let route_token = channels::email::route_token(&store.server_secret().await?, c.get(), &to);
        let out = Outgoing {
            to: &to,
            body: &msg.body,
            media,
            files,
            message_id: msg.id.get(),
            last_inbound_at: contact.as_ref().and_then(|k| k.last_inbound_at),
            now,
            base_url: &self.base_url,
            inbox_id: inbox.id.get(),
            message_json: Some(crate::contract::Message::of(&msg)),
            conversation_id: c.get(),
            subject: conv.subject.clone(),
            contact_name: contact.as_ref().and_then(|k| k.name.clone()),
            thread,
            reply_to_id,
            route_token,
        };
        match adapter.send(&self.http, &inbox, out).await {
            Ok(sent) => {
                crate::metrics::global().channel_sends.inc();
                store
                    .set_delivery(
                        c,
                        seq,
                        Delivery {
                            status: sent.status,
                            error: None,
                        },
                        sent.provider_id,
                        Some(job),
                        time::now(),
                    )
                    .await
                    .map(|_| ())
            }
            Err(SendError::Permanent(e)) => self.fail(job, c, seq, e).await,
            Err(SendError::Temporary(e)) => {
                if job.attempts + 1 >= MAX_SEND_ATTEMPTS {
                    return self
                        .fail(
                            job,
                            c,
                            seq,
                            format!("{e} (gave up after {} attempts)", job.attempts + 1),
                        )
                        .await;
                }
                tracing::info!(conversation = %c, seq, attempt = job.attempts + 1, error = %e, "send failed; will retry");
                store
                    .job_retry(job, backoff(job.attempts, time::now()), time::now())
                    .await
            }
        }
    }

    async fn fetch_media(
        &self,
        job: &JobRecord,
        c: ConversationId,
        seq: u64,
        media: &[crate::store::MediaRef],
    ) -> crate::store::Result<()> {
        let store = &self.store;
        let Some(conv) = store.conversation(c)? else {
            return store.job_done(job, time::now()).await;
        };
        let Some(inbox) = store.inbox(conv.inbox_id)? else {
            return store.job_done(job, time::now()).await;
        };
        let Some(adapter) = channels::by_name(&inbox.channel) else {
            return store.job_done(job, time::now()).await;
        };
        let mut files = Vec::new();
        for m in media {
            match adapter.fetch_media(&self.http, &inbox, m).await {
                Ok(got) => {
                    // Media counts toward the free-space reserve (the job
                    // is retried once space returns).
                    store.check_room(got.bytes.len() as u64)?;
                    let dir = store.files_dir();
                    let name = got.name.clone();
                    let bytes = got.bytes;
                    match tokio::task::spawn_blocking(move || {
                        super::files::save(&dir, &name, &bytes)
                    })
                    .await
                    {
                        Ok(Ok(rec)) => files.push(rec),
                        Ok(Err(e)) => {
                            return Err(crate::store::StoreError::Flush(format!(
                                "could not save media: {e}"
                            )))
                        }
                        Err(e) => {
                            return Err(crate::store::StoreError::Flush(format!(
                                "media save panicked: {e}"
                            )))
                        }
                    }
                }
                Err(SendError::Temporary(e)) if job.attempts + 1 < MAX_MEDIA_ATTEMPTS => {
                    tracing::info!(conversation = %c, seq, error = %e, "media download failed; will retry");
                    return store
                        .job_retry(job, backoff(job.attempts, time::now()), time::now())
                        .await;
                }
                Err(e) => {
                    tracing::warn!(conversation = %c, seq, error = %e, "media not downloaded; giving up");
                }
            }
        }
        store.add_attachments(c, seq, files, job, time::now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::InboxId;
    use crate::store::Author;

    fn says(kind: AuthorType, private: bool, via: Option<InboxId>) -> NewMessage {
        NewMessage {
            author: Author {
                kind,
                id: Some(1),
                name: None,
            },
            body: "hi".into(),
            private,
            attachments: Vec::new(),
            via,
        }
    }

    #[test]
    fn agent_replies_leave_through_channels_and_notify_in_the_messenger() {
        let reply = says(AuthorType::Agent, false, None);
        let sent = message_effects(ChannelKind::Sms, &reply, 10, 5);
        assert_eq!(sent.send, Some(None));
        assert_eq!(
            sent.notify_at, None,
            "a reply that went out reached the person"
        );
        let web = message_effects(ChannelKind::Web, &reply, 10, 5);
        assert_eq!((web.send, web.notify_at), (None, Some(15)));
        assert_eq!(
            message_effects(ChannelKind::Web, &reply, 10, 0),
            Effects::default()
        );
        let via = says(AuthorType::Agent, false, Some(InboxId::new(7)));
        let out = message_effects(ChannelKind::Web, &via, 10, 5);
        assert_eq!(
            (out.send, out.notify_at),
            (Some(Some(InboxId::new(7))), None)
        );
    }

    #[test]
    fn notes_and_contact_messages_do_nothing() {
        for m in [
            says(AuthorType::Agent, true, Some(InboxId::new(7))),
            says(AuthorType::Contact, false, None),
            says(AuthorType::System, false, None),
        ] {
            assert_eq!(
                message_effects(ChannelKind::Sms, &m, 10, 5),
                Effects::default()
            );
        }
    }
}
