//! Ids of every kind of record, one type per kind.
//!
//! Why types and not bare numbers: a contact id passed where a
//! conversation id is expected is a bug that compiles silently with `u64`
//! everywhere; with [`ContactId`] and [`ConversationId`] it does not
//! compile. Inside, each id is a `u64`, so it sorts and encodes as 8
//! big-endian bytes in the store's keys (`store/keys.rs`), and it is
//! `#[serde(transparent)]`, so stored records hold the same plain numbers
//! as before the types existed (no schema change). Outside, ids are opaque
//! strings, as the contract promises: [`Display`](std::fmt::Display)
//! (and [`format_id`]) writes the form used in JSON and URLs, and `parse`
//! (or [`parse_id`], generic over the [`Id`] kinds) reads it back.
//!
//! Positions (`seq`, `ordinal`, read positions, counts) are not ids and
//! stay `u64`.

use serde::{Deserialize, Serialize};

/// The form an id takes in JSON and URLs.
pub fn format_id(id: impl Into<u64>) -> String {
    id.into().to_string()
}

/// Reads an id of kind `I` from a URL or JSON string. Anything that is not
/// one of our ids is `None`, which the handlers answer with 404 rather than
/// 400 so a caller learns nothing from probing.
pub fn parse_id<I: Id>(s: &str) -> Option<I> {
    digits(s).map(I::wrap)
}

/// Every id kind: what [`parse_id`] can produce. Implemented only by the
/// types of this module (its method is hidden), so no number becomes an
/// id by accident elsewhere.
pub trait Id: Copy + Into<u64> + sealed::Sealed {
    #[doc(hidden)]
    fn wrap(n: u64) -> Self;
}

mod sealed {
    /// Keeps [`super::Id`] to this module's types.
    pub trait Sealed {}
}

/// The decimal form of an id: digits only, no leading zero, fits a `u64`.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// Declares one id type per kind of record (see the module doc).
macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a number the store handed out (or decoded from a key).
            pub const fn new(n: u64) -> Self {
                Self(n)
            }

            /// The number inside, for key encoding and counters.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// Reads the id from its string form (URLs, JSON); `None` for
            /// anything [`parse_id`] refuses.
            pub fn parse(s: &str) -> Option<Self> {
                digits(s).map(Self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl sealed::Sealed for $name {}

        impl Id for $name {
            fn wrap(n: u64) -> Self {
                Self(n)
            }
        }

        impl From<$name> for u64 {
            fn from(id: $name) -> u64 {
                id.0
            }
        }
    )*};
}

ids! {
    /// A member of the team.
    AgentId;
    /// A place customers write to.
    InboxId;
    /// A customer.
    ContactId;
    /// A thread between a contact and the team.
    ConversationId;
    /// One message of a conversation (unique across conversations).
    MessageId;
    /// An entry of the event log; its position too (gapless, increasing),
    /// which is what SSE's `Last-Event-ID` resumes from.
    EventId;
    /// An outbound webhook subscription.
    WebhookId;
    /// One delivery attempt of an outbound webhook.
    WebhookAttemptId;
    /// A durable job of the outbox.
    JobId;
    /// A canned response.
    CannedId;
    /// A team of agents (routing, reports).
    TeamId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for id in [1u64, 42, u64::MAX] {
            assert_eq!(parse_id(&format_id(id)), Some(InboxId::new(id)));
            let typed = ConversationId::new(id);
            assert_eq!(ConversationId::parse(&typed.to_string()), Some(typed));
            assert_eq!(format_id(typed), id.to_string());
        }
    }

    #[test]
    fn foreign_strings_are_not_ids() {
        for s in ["", "-1", "01", "1a", "99999999999999999999999", " 1"] {
            assert_eq!(parse_id::<AgentId>(s), None, "{s:?}");
            assert_eq!(ContactId::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn ids_are_stored_as_plain_numbers() {
        let json = serde_json::to_string(&InboxId::new(7)).unwrap_or_default();
        assert_eq!(json, "7");
        let back: Option<InboxId> = serde_json::from_str("7").ok();
        assert_eq!(back, Some(InboxId::new(7)));
    }

    #[test]
    fn ids_order_like_their_numbers() {
        assert!(EventId::new(2) < EventId::new(10));
    }
}
