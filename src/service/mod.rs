//! What the product does: every use case once (post a message, start or
//! change a conversation, sign in, create or merge a contact, confirm an
//! email, change a setting), plus the workers behind them (outbox, push,
//! notifications, mail following, search). The API, the agent workspace,
//! the messenger and the provider hooks hold one [`Services`] and only
//! parse, call and render. Nothing here knows about HTTP.

pub mod access;
pub mod agents;
pub mod auth;
pub mod backups;
pub mod contacts;
pub mod conversations;
pub mod credentials;
pub mod customer;
pub mod expectations;
pub mod fanout;
pub mod files;
pub mod inbound;
pub mod inboxes;
pub mod index;
pub mod mailbox;
pub mod messages;
pub mod notify;
pub mod outbox;
pub mod password_links;
pub mod present;
pub mod push;
pub mod ratelimit;
pub mod ratings;
pub mod realtime;
pub mod routing;
pub mod search;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod sla;
pub mod subscriptions;
pub mod teams;
pub mod webhooks;
pub mod webpush;

use std::sync::Arc;

use crate::channels::http::Http;
use crate::config::ServeConfig;
use crate::store::Store;

/// Declares [`Services`] and [`Parts`] from one field list, so what the
/// use cases hold is written once: `Services` keeps the fields private
/// (the web layer reaches the store only through use cases), `Parts` is
/// the public struct literal start-up fills in and hands to
/// [`Services::new`].
macro_rules! services {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        /// The product's use cases, one method each (in the module of its
        /// concept: `impl Services` blocks live beside their rules), over
        /// the store and the other services. Built once at start; cheap to
        /// share.
        pub struct Services {
            $($(#[$doc])* $field: $ty,)*
        }

        /// What [`Services`] is built from, one field each.
        pub struct Parts {
            $($(#[$doc])* pub $field: $ty,)*
        }

        impl Services {
            /// Takes over what the use cases need.
            pub fn new(parts: Parts) -> Self {
                Self {
                    $($field: parts.$field,)*
                }
            }
        }
    };
}

services! {
    /// The database.
    store: Arc<Store>,
    /// The settings it was started with.
    config: Arc<ServeConfig>,
    /// Request rates, sign-in lockouts, upload quotas.
    limits: Arc<ratelimit::Limits>,
    /// The full-text index.
    index: Arc<index::SearchIndex>,
    /// Typing signals (not stored).
    typing: Arc<realtime::TypingHub>,
    /// The registry of open streams each event is routed to.
    fanout: Arc<fanout::Fanout>,
    /// The one outbound HTTP client.
    http: Http,
    /// The Web Push signing keys.
    vapid: Arc<webpush::VapidKeys>,
    /// The IMAP followers of email inboxes.
    mailboxes: Arc<mailbox::Mailboxes>,
    /// Auto-assignment: candidates and the queue.
    router: Arc<routing::Router>,
}
