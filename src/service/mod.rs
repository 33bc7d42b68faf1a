//! What the product does beyond storing: credentials, rate limits, the live
//! event broker and search. Nothing here knows about HTTP.

pub mod access;
pub mod auth;
pub mod files;
pub mod index;
pub mod mailbox;
pub mod notify;
pub mod outbox;
pub mod push;
pub mod ratelimit;
pub mod realtime;
pub mod webhooks;
pub mod webpush;
