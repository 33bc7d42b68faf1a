//! Follows the IMAP mailbox of every email inbox: one task per inbox that
//! backfills from the last message stored (so nothing is lost across an
//! outage or a restart), then waits with IDLE or polls. Each mail becomes
//! an inbound message threaded by plus-address, `In-Reply-To` and
//! `References`; loops are prevented (our own address, auto-replies).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::channels::email::channel::settings_of;
use crate::channels::email::imap::{self, ImapCursor, Sink};
use crate::channels::email::{parse, EmailSettings};
use crate::domain::ids::{ConversationId, InboxId};
use crate::domain::time;
use crate::store::{Inbound, InboxRecord, Store};

/// How often to poll a server without IDLE.
pub const POLL_EVERY: Duration = Duration::from_secs(30);

/// The running mailbox followers.
pub struct Mailboxes {
    store: Arc<Store>,
    /// Hands a new or reopened email conversation to an agent.
    router: Arc<super::routing::Router>,
    /// The server's clock (business hours, out of office).
    clock: super::notify::Clock,
    shutdown: watch::Receiver<bool>,
    running: Mutex<HashMap<InboxId, Follower>>,
    /// `NATTER_WEBHOOKS_ALLOW_PRIVATE`: whether an inbox's mail servers
    /// may be internal addresses.
    allow_private: bool,
}

/// A running follower: its stop switch and its task.
type Follower = (watch::Sender<bool>, tokio::task::JoinHandle<()>);

fn cursor_key(inbox: InboxId) -> String {
    format!("imap_cursor/{inbox}")
}

impl Mailboxes {
    /// Nothing runs until [`Mailboxes::start_all`] or [`Mailboxes::restart`].
    pub fn new(
        store: Arc<Store>,
        router: Arc<super::routing::Router>,
        clock: super::notify::Clock,
        shutdown: watch::Receiver<bool>,
        allow_private: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            router,
            clock,
            shutdown,
            running: Mutex::new(HashMap::new()),
            allow_private,
        })
    }

    /// Follows every email inbox (at start).
    pub fn start_all(self: &Arc<Self>) {
        match self.store.inboxes() {
            Ok(all) => {
                for i in all
                    .into_iter()
                    .filter(|i| crate::channels::ChannelKind::of(&i.channel).follows_a_mailbox())
                {
                    self.restart(&i);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list inboxes to follow their mailboxes"),
        }
    }

    /// (Re)starts the follower of one inbox with its current settings.
    pub fn restart(self: &Arc<Self>, inbox: &InboxRecord) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let me = self.clone();
        let id = inbox.id;
        let inbox = inbox.clone();
        let task = tokio::spawn(async move { me.follow(inbox, stop_rx).await });
        if let Ok(mut r) = self.running.lock() {
            if let Some((old, _)) = r.insert(id, (stop_tx, task)) {
                let _ = old.send(true);
            }
        }
    }

    /// Stops every follower and waits (bounded) for them to end, so the
    /// store they hold is released at shutdown.
    pub async fn stop_all(&self) {
        let all: Vec<_> = match self.running.lock() {
            Ok(mut r) => r.drain().map(|(_, v)| v).collect(),
            Err(_) => return,
        };
        for (stop, task) in all {
            let _ = stop.send(true);
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(2), task)
                .await
                .is_err()
            {
                tracing::warn!("a mailbox follower did not stop in time; aborted");
                abort.abort();
            }
        }
    }

    /// Records where a new inbox starts: the mailbox as it is now (old
    /// mail is not imported). Best effort: if the server cannot be reached
    /// now, the follower takes the state at its first connection.
    pub async fn remember_current_state(&self, inbox: &InboxRecord) {
        let Ok(mut s) = settings_of(inbox) else {
            return;
        };
        s.allow_private = self.allow_private;
        if let Ok(c) = imap::current_cursor(&s).await {
            if let Ok(v) = serde_json::to_vec(&c) {
                let _ = self.store.meta_set(&cursor_key(inbox.id), Some(v)).await;
            }
        }
    }

    async fn follow(self: Arc<Self>, inbox: InboxRecord, stop: watch::Receiver<bool>) {
        let settings = match settings_of(&inbox) {
            Ok(s) => EmailSettings {
                allow_private: self.allow_private,
                ..s
            },
            Err(e) => {
                tracing::error!(inbox = %inbox.id, error = %e, "cannot follow the mailbox");
                return;
            }
        };
        // One receiver that turns true on server shutdown or on restart.
        let (both_tx, both_rx) = watch::channel(false);
        let (mut a, mut b) = (self.shutdown.clone(), stop);
        tokio::spawn(async move {
            tokio::select! {
                _ = a.wait_for(|s| *s) => {}
                _ = b.wait_for(|s| *s) => {}
            }
            let _ = both_tx.send(true);
        });
        let stored = self
            .store
            .meta_get(&cursor_key(inbox.id))
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice::<ImapCursor>(&v).ok());
        // Without a stored position, take the mailbox's state now and keep
        // it, so mail that arrives while natter is down is still fetched.
        let cursor = match stored {
            Some(c) => c,
            None => {
                let mut wait = Duration::from_secs(1);
                loop {
                    match imap::current_cursor(&settings).await {
                        Ok(c) => {
                            if let Ok(v) = serde_json::to_vec(&c) {
                                let _ = self.store.meta_set(&cursor_key(inbox.id), Some(v)).await;
                            }
                            break c;
                        }
                        Err(e) => {
                            tracing::warn!(inbox = %inbox.id, error = %e, "cannot read the mailbox yet; will retry");
                            let mut s = both_rx.clone();
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = s.wait_for(|s| *s) => return,
                            }
                            wait = (wait * 2).min(Duration::from_secs(60));
                        }
                    }
                }
            }
        };
        let store = self.store.clone();
        let router = self.router.clone();
        let clock = self.clock.clone();
        let inbox_id = inbox.id;
        let sink: Sink = Arc::new(move |raw: Vec<u8>, next: ImapCursor| {
            let store = store.clone();
            let router = router.clone();
            let clock = clock.clone();
            Box::pin(async move {
                let inbox = store
                    .inbox(inbox_id)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| "the inbox is gone".to_owned())?;
                if let Ingested::Stored {
                    opened,
                    conversation,
                } = ingest(&store, &inbox, &raw).await?
                {
                    if opened {
                        router.route().await;
                    }
                    if let Some(c) = conversation {
                        if let Err(e) =
                            super::expectations::out_of_office(&store, &c, clock.now()).await
                        {
                            tracing::error!(error = %e, "could not send the out-of-office message");
                        }
                    }
                }
                let v = serde_json::to_vec(&next).map_err(|e| e.to_string())?;
                store
                    .meta_set(&cursor_key(inbox_id), Some(v))
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        imap::run(settings, Some(cursor), sink, both_rx, POLL_EVERY).await;
    }
}

/// What became of one mail.
#[derive(Debug)]
pub enum Ingested {
    /// Stored (or already stored: the Message-ID is known).
    Stored {
        /// The mail started or reopened its conversation (it may wait
        /// for auto-assignment).
        opened: bool,
        /// The conversation it was stored in (none for a known Message-ID).
        conversation: Option<Box<crate::store::ConversationRecord>>,
    },
    /// Ours, an auto-reply, or unreadable: nothing stored.
    Skipped(&'static str),
}

/// Which conversation a mail continues, and whether its sender proved it
/// may write there as that conversation's contact.
///
/// Conversation ids are sequential, so nothing that merely names one
/// proves anything. Proof is a routing token we mailed to this very sender
/// (see [`crate::channels::email::route_token`]), found in the
/// plus-address or in one of our Message-IDs the mail answers. Without
/// one, a mail answering one of the sender's own earlier mails (its
/// Message-ID) names that conversation, and the store continues it only if
/// the sender's contact owns it. Our own Message-IDs route only by their
/// token, so old bare ids (`natter.c42...`, `natter.17@...`) route nothing.
async fn thread_of(
    store: &Store,
    inbox: &InboxRecord,
    our_address: &str,
    mail: &parse::Mail,
) -> Result<(Option<ConversationId>, bool), String> {
    use crate::channels::email::{plus_token, route_token_in_message_id, routed_conversation};
    let secret = store.server_secret().await.map_err(|e| e.to_string())?;
    let answered = || mail.in_reply_to.iter().chain(mail.references.iter().rev());
    let proven = mail
        .recipients
        .iter()
        .filter_map(|r| plus_token(r, our_address))
        .chain(answered().filter_map(|id| route_token_in_message_id(id).map(str::to_owned)))
        .find_map(|t| routed_conversation(&secret, &t, &mail.from_address))
        .map(ConversationId::new);
    if proven.is_some() {
        return Ok((proven, true));
    }
    for id in answered() {
        if id.trim().trim_start_matches('<').starts_with("natter.") {
            continue;
        }
        if let Some(m) = store
            .message_by_provider_id(inbox.id, id)
            .map_err(|e| e.to_string())?
        {
            return Ok((Some(m.conversation_id), false));
        }
    }
    Ok((None, false))
}

/// Turns one raw mail into an inbound message of `inbox`.
pub async fn ingest(store: &Store, inbox: &InboxRecord, raw: &[u8]) -> Result<Ingested, String> {
    let s = settings_of(inbox)?;
    let Some(mail) = parse::parse(raw) else {
        tracing::warn!(inbox = %inbox.id, "a mail could not be read; skipped");
        return Ok(Ingested::Skipped("unreadable"));
    };
    if mail.from_address.eq_ignore_ascii_case(&s.from_address) || mail.from_address.is_empty() {
        return Ok(Ingested::Skipped("from our own address"));
    }
    if mail.auto_submitted {
        return Ok(Ingested::Skipped("an automatic reply"));
    }
    let (conversation_id, proven) = thread_of(store, inbox, &s.from_address, &mail).await?;
    // Attachments and the original count toward the free-space reserve.
    let total = raw.len()
        + mail
            .attachments
            .iter()
            .map(|a| a.bytes.len())
            .sum::<usize>();
    store.check_room(total as u64).map_err(|e| e.to_string())?;
    let dir = store.files_dir();
    let mut files = Vec::new();
    for a in &mail.attachments {
        let (dir, name, bytes) = (dir.clone(), a.name.clone(), a.bytes.clone());
        let rec =
            tokio::task::spawn_blocking(move || crate::service::files::save(&dir, &name, &bytes))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        files.push(rec);
    }
    // The original, whole, next to the clean text.
    let (d, bytes) = (dir.clone(), raw.to_vec());
    let original = tokio::task::spawn_blocking(move || {
        crate::service::files::save(&d, "original.eml", &bytes)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    files.push(original);
    let provider_id = match &mail.message_id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => {
            use sha2::Digest;
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(raw)))
        }
    };
    let mut body = crate::channels::clean_text(&mail.text);
    if body.is_empty() {
        body = "(no text)".into();
    }
    let received = crate::service::inbound::receive(
        store,
        inbox,
        Inbound {
            identity: mail.from_address.clone(),
            name: mail.from_name.clone(),
            email: Some(mail.from_address.clone()),
            body,
            provider_id: Some(provider_id),
            attachments: files,
            conversation_id,
            proven,
            subject: mail.subject.clone(),
            ..Inbound::default()
        },
        time::now(),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(Ingested::Stored {
        opened: received.opened().is_some(),
        conversation: match received {
            crate::store::Received::Stored { conversation, .. } => Some(conversation),
            crate::store::Received::Duplicate { .. } => None,
        },
    })
}
