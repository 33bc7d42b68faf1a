//! [`ChannelKind`]: the contract's channel names as a type, and what each
//! channel can do. Code outside `src/channels/` asks a kind for a
//! capability instead of comparing names, so adding a channel never means
//! hunting for string comparisons in the core.

use serde::{Deserialize, Serialize};

use super::{Channel, REGISTRY};

/// A channel an inbox can have: `web` (the built-in messenger) or one with
/// an adapter in [`REGISTRY`]. Serialises as the contract's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// The website messenger and widget (no provider: replies stay in natter).
    Web,
    /// SMS through Twilio.
    Sms,
    /// WhatsApp Cloud API.
    Whatsapp,
    /// Facebook Messenger.
    Messenger,
    /// Instagram direct messages.
    Instagram,
    /// A Telegram bot.
    Telegram,
    /// A business's own app or bot.
    Api,
    /// A mailbox followed over IMAP, answered over SMTP.
    Email,
}

impl ChannelKind {
    /// Every kind, `web` first (the order inbox pickers show).
    pub const ALL: [ChannelKind; 8] = [
        ChannelKind::Web,
        ChannelKind::Sms,
        ChannelKind::Whatsapp,
        ChannelKind::Messenger,
        ChannelKind::Instagram,
        ChannelKind::Telegram,
        ChannelKind::Api,
        ChannelKind::Email,
    ];

    /// The contract's name (`web`, `sms`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Web => "web",
            ChannelKind::Sms => "sms",
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Messenger => "messenger",
            ChannelKind::Instagram => "instagram",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Api => "api",
            ChannelKind::Email => "email",
        }
    }

    /// The kind a contract name names, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The kind of a stored inbox's channel. Inboxes are created only
    /// with names [`ChannelKind::parse`] accepts; anything else reads as
    /// `web`, which sends nothing out.
    pub fn of(channel: &str) -> Self {
        Self::parse(channel).unwrap_or(ChannelKind::Web)
    }

    /// The provider adapter (none for `web`).
    pub fn adapter(self) -> Option<&'static dyn Channel> {
        REGISTRY.iter().copied().find(|c| c.kind() == self)
    }

    /// Whether an agent's public reply is carried out of natter by a
    /// provider (queued in the outbox with its message), rather than read
    /// in the messenger.
    pub fn replies_leave_natter(self) -> bool {
        self.adapter().is_some()
    }

    /// Whether a sender's address is a phone number (a number that writes
    /// to us is verified: the same number on two channels is one person).
    pub fn addresses_are_phone_numbers(self) -> bool {
        self.adapter()
            .is_some_and(|a| a.addresses_are_phone_numbers())
    }

    /// Whether a contact's email address is an address on this channel.
    pub fn follows_a_mailbox(self) -> bool {
        self.adapter().is_some_and(|a| a.follows_a_mailbox())
    }

    /// Whether the inbox has an API token (and a signing secret for its
    /// callbacks): the business's own app posts messages with it.
    pub fn has_api_token(self) -> bool {
        self.adapter().is_some_and(|a| a.has_api_token())
    }

    /// Whether connecting the inbox registers natter's webhook URL and
    /// secret with the provider itself (so nobody needs to copy them).
    pub fn sets_its_webhook_on_connect(self) -> bool {
        self.adapter()
            .is_some_and(|a| a.sets_its_webhook_on_connect())
    }

    /// Whether the provider reports delivery steps at the inbox's
    /// `/status` webhook.
    pub fn status_callbacks(self) -> bool {
        self.adapter().is_some_and(|a| a.status_callbacks())
    }

    /// Whether an unread-reply notification may be texted to a sender's
    /// address on it at any time (no customer-care window), when the
    /// contact has no email.
    pub fn carries_reply_notifications(self) -> bool {
        self.adapter()
            .is_some_and(|a| a.carries_reply_notifications())
    }

    /// How the channel is named in pages, and its icon.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            ChannelKind::Sms => ("SMS", "💬"),
            ChannelKind::Whatsapp => ("WhatsApp", "🟢"),
            ChannelKind::Messenger => ("Messenger", "🔵"),
            ChannelKind::Instagram => ("Instagram", "📸"),
            ChannelKind::Telegram => ("Telegram", "✈️"),
            ChannelKind::Email => ("Email", "✉️"),
            ChannelKind::Api => ("API", "⚙️"),
            ChannelKind::Web => ("Website", "🌐"),
        }
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse_and_serde() {
        for k in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(k.as_str()), Some(k));
            let json = serde_json::to_string(&k).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(ChannelKind::parse("fax"), None);
    }

    #[test]
    fn every_kind_but_web_has_exactly_one_adapter() {
        for k in ChannelKind::ALL {
            let n = REGISTRY.iter().filter(|c| c.kind() == k).count();
            assert_eq!(n, usize::from(k != ChannelKind::Web), "{k}");
        }
        assert_eq!(REGISTRY.len(), ChannelKind::ALL.len() - 1);
    }

    #[test]
    fn capabilities_match_the_channels() {
        use ChannelKind::*;
        let has = |f: fn(ChannelKind) -> bool| -> Vec<ChannelKind> {
            ChannelKind::ALL.into_iter().filter(|k| f(*k)).collect()
        };
        assert_eq!(has(ChannelKind::replies_leave_natter).len(), 7);
        assert_eq!(
            has(ChannelKind::addresses_are_phone_numbers),
            [Sms, Whatsapp]
        );
        assert_eq!(has(ChannelKind::follows_a_mailbox), [Email]);
        assert_eq!(has(ChannelKind::has_api_token), [Api]);
        assert_eq!(has(ChannelKind::sets_its_webhook_on_connect), [Telegram]);
        assert_eq!(has(ChannelKind::status_callbacks), [Sms]);
        assert_eq!(has(ChannelKind::carries_reply_notifications), [Sms]);
    }
}
