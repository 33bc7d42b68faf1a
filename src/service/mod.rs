//! What the product does: every use case once (post a message, start or
//! change a conversation, sign in, create or merge a contact, confirm an
//! email, change a setting), plus the workers behind them (outbox, push,
//! notifications, mail following, search). The API, the agent workspace,
//! the messenger and the provider hooks hold one [`Services`] and only
//! parse, call and render. Nothing here knows about HTTP.

pub mod access;
pub mod agents;
pub mod auth;
pub mod contacts;
pub mod conversations;
pub mod credentials;
pub mod customer;
pub mod fanout;
pub mod files;
pub mod inbound;
pub mod inboxes;
pub mod index;
pub mod mailbox;
pub mod messages;
pub mod notify;
pub mod outbox;
pub mod present;
pub mod push;
pub mod ratelimit;
pub mod realtime;
pub mod search;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod subscriptions;
pub mod webhooks;
pub mod webpush;

use std::sync::Arc;

use crate::channels::http::Http;
use crate::config::ServeConfig;
use crate::store::Store;

/// The product's use cases, one method each (in the module of its
/// concept: `impl Services` blocks live beside their rules), over the
/// store and the other services. Built once at start; cheap to share.
pub struct Services {
    store: Arc<Store>,
    config: Arc<ServeConfig>,
    limits: Arc<ratelimit::Limits>,
    index: Arc<index::SearchIndex>,
    typing: Arc<realtime::TypingHub>,
    fanout: Arc<fanout::Fanout>,
    http: Http,
    vapid: Arc<webpush::VapidKeys>,
    mailboxes: Arc<mailbox::Mailboxes>,
}

impl Services {
    /// Gathers what the use cases need.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<Store>,
        config: Arc<ServeConfig>,
        limits: Arc<ratelimit::Limits>,
        index: Arc<index::SearchIndex>,
        typing: Arc<realtime::TypingHub>,
        http: Http,
        vapid: Arc<webpush::VapidKeys>,
        mailboxes: Arc<mailbox::Mailboxes>,
    ) -> Self {
        Self {
            fanout: Arc::new(fanout::Fanout::new(store.clone(), config.event_buffer)),
            store,
            config,
            limits,
            index,
            typing,
            http,
            vapid,
            mailboxes,
        }
    }
}
