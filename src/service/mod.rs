//! What the product does: every use case once (post a message, start or
//! change a conversation, sign in, create or merge a contact, confirm an
//! email, change a setting), plus the workers behind them (outbox, push,
//! notifications, mail following, search). The API, the agent workspace,
//! the messenger and the provider hooks hold one [`Services`] and only
//! parse, call and render. Nothing here knows about HTTP.

pub mod access;
pub mod auth;
pub mod contacts;
pub mod conversations;
pub mod customer;
pub mod files;
pub mod index;
pub mod mailbox;
pub mod notify;
pub mod outbox;
pub mod present;
pub mod push;
pub mod ratelimit;
pub mod realtime;
pub mod webhooks;
pub mod webpush;

use std::sync::Arc;

use crate::channels::http::Http;
use crate::config::ServeConfig;
use crate::store::Store;

/// The product's use cases, one method each (in the module of its
/// concept: `impl Services` blocks live beside their rules), over the
/// store and the other services. Built once at start; cheap to share.
// Fields are read as use cases move here from the web layer.
#[allow(dead_code)]
pub struct Services {
    pub(crate) store: Arc<Store>,
    pub(crate) config: Arc<ServeConfig>,
    pub(crate) limits: Arc<ratelimit::Limits>,
    pub(crate) index: Arc<index::SearchIndex>,
    pub(crate) typing: Arc<realtime::TypingHub>,
    pub(crate) http: Http,
    pub(crate) vapid: Arc<webpush::VapidKeys>,
    pub(crate) mailboxes: Arc<mailbox::Mailboxes>,
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
