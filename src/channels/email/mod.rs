//! The email channel: customers write to a support address, natter reads the
//! mailbox over IMAP, and agents' replies go out over SMTP.
//!
//! The pieces are deliberately independent of the rest of natter so they can
//! be tested against loopback servers: [`parse`] turns raw RFC 5322 bytes into
//! a [`parse::Mail`], [`imap`] follows the inbox and hands every new message
//! to a sink exactly once, and [`smtp`] sends one human reply.

pub mod channel;
pub mod imap;
pub mod parse;
pub mod smtp;

use serde::Deserialize;

/// How natter reaches one mailbox. Stored per inbox and given by an admin in
/// the settings page, so it is deserialised from the stored JSON.
///
/// The TLS flags follow the product contract rather than exposing every TLS
/// mode, because admins know "TLS on/off" and a port, not the difference
/// between implicit TLS and STARTTLS:
/// * `imap_tls`: `true` means implicit TLS (port 993 style), except on port
///   143 where it means STARTTLS; `false` means plain text.
/// * `smtp_tls`: `true` means implicit TLS on port 465 and STARTTLS on any
///   other port; `false` means plain text.
///
/// The same `username`/`password` are used for IMAP and SMTP; SMTP only logs
/// in when the server offers AUTH (some relays accept by IP address).
#[derive(Deserialize, Clone)]
pub struct EmailSettings {
    /// IMAP server host name; also the name its TLS certificate must match.
    pub imap_host: String,
    /// IMAP server port (usually 993, or 143 for plain/STARTTLS).
    pub imap_port: u16,
    /// Whether to encrypt IMAP; see the type's documentation for the modes.
    pub imap_tls: bool,
    /// SMTP server host name; also the name its TLS certificate must match.
    pub smtp_host: String,
    /// SMTP server port (usually 465 or 587).
    pub smtp_port: u16,
    /// Whether to encrypt SMTP; see the type's documentation for the modes.
    pub smtp_tls: bool,
    /// Login name for both IMAP and SMTP.
    pub username: String,
    /// Password for both IMAP and SMTP. Never logged.
    pub password: String,
    /// The support address customers write to; the From of every reply and
    /// the base of the plus-addresses that route replies to a conversation.
    pub from_address: String,
    /// Whether the servers may be internal addresses (loopback, private,
    /// metadata). Not stored: an inbox's settings follow
    /// `NATTER_WEBHOOKS_ALLOW_PRIVATE` (an admin must not reach internal
    /// services through them); the operator's own `NATTER_SMTP_*` are
    /// trusted.
    #[serde(skip)]
    pub allow_private: bool,
}

/// A hand-written Debug so that the password can never reach a log line
/// through `{:?}`.
impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("imap_host", &self.imap_host)
            .field("imap_port", &self.imap_port)
            .field("imap_tls", &self.imap_tls)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_tls", &self.smtp_tls)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("from_address", &self.from_address)
            .finish()
    }
}

/// Why talking to the mail server failed. Callers mostly log it and retry, and
/// the settings page shows it to the admin, so every variant says which step
/// failed in words an admin can act on. Messages never include the password.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// The TCP connection could not be made or broke (DNS, refused, reset).
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        /// The host that was dialled.
        host: String,
        /// The port that was dialled.
        port: u16,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The TLS handshake failed or the certificate was not trusted.
    #[error("TLS with {host} failed: {message}")]
    Tls {
        /// The host whose certificate was checked.
        host: String,
        /// What went wrong.
        message: String,
    },
    /// The server refused the user name or password.
    #[error("login refused: {0}")]
    Login(String),
    /// The IMAP server answered something other than what the protocol
    /// step needed (NO/BAD, missing data, connection closed mid-command).
    #[error("IMAP error: {0}")]
    Imap(String),
    /// The SMTP server refused or failed during the connection test.
    #[error("SMTP error: {0}")]
    Smtp(String),
    /// The server did not answer in time.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// The settings cannot work (e.g. a host name that is not a valid TLS
    /// server name).
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The sink refused a message; the cursor stays before it.
    #[error("sink refused the message with UID {uid}: {message}")]
    Sink {
        /// The UID of the message that was not stored.
        uid: u32,
        /// What the sink said.
        message: String,
    },
}

impl EmailError {
    /// What the admin's "test connection" shows: the step that failed and
    /// what natter or the operating system knows, never the text the
    /// server answered. Whatever sits at a host:port would otherwise be
    /// echoed to the browser (an internal service's banner, an error page);
    /// the full error goes to natter's log instead.
    pub fn for_admin(&self) -> String {
        // Our messages are "step: what the server or library said".
        let step_only = |s: &str| s.split_once(": ").map(|(step, _)| step.to_owned());
        match self {
            Self::Login(_) => {
                "login refused: the server did not accept the user name or password".to_owned()
            }
            Self::Imap(s) => match step_only(s) {
                Some(step) => {
                    format!("IMAP error while {step} (the server's answer is in natter's log)")
                }
                None => self.to_string(),
            },
            Self::Smtp(s) => match step_only(s) {
                Some(step) => {
                    format!("SMTP error: {step} (the server's answer is in natter's log)")
                }
                None => self.to_string(),
            },
            Self::Sink { uid, .. } => format!("the message with UID {uid} could not be stored"),
            Self::Connect { .. } | Self::Tls { .. } | Self::Timeout(_) | Self::Settings(_) => {
                self.to_string()
            }
        }
    }
}

/// How many bytes of the MAC a routing token keeps: 96 bits cannot be
/// guessed, and the token still fits a local part (64 characters).
const ROUTE_MAC_BYTES: usize = 12;

/// The token that routes an answer back into conversation `conversation`:
/// `c<id>-<hex MAC>`, the MAC under the server's secret over the
/// conversation and the address the token is mailed to. Conversation ids
/// are sequential, so the id alone proves nothing; the MAC proves that we
/// mailed this token to `recipient`, and [`routed_conversation`] accepts it
/// only on mail from that same address. A stranger's mail carrying it, a
/// bare `c<id>` (the old format) or a wrong MAC routes nothing.
pub fn route_token(secret: &[u8], conversation: u64, recipient: &str) -> String {
    format!(
        "c{conversation}-{}",
        route_mac(secret, conversation, recipient)
    )
}

fn route_mac(secret: &[u8], conversation: u64, recipient: &str) -> String {
    use hmac::Mac;
    // HMAC takes a key of any length; the error case cannot happen.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(format!("route:{conversation}:{}", recipient.trim().to_lowercase()).as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..ROUTE_MAC_BYTES])
}

/// The conversation a routing token names, if the token is genuine for
/// mail from `sender` (compared in constant time). Mail systems may change
/// the case of a local part, so the token's case does not matter.
pub fn routed_conversation(secret: &[u8], token: &str, sender: &str) -> Option<u64> {
    let token = token.trim().to_ascii_lowercase();
    let (id, mac) = token.strip_prefix('c')?.split_once('-')?;
    let id: u64 = id.parse().ok()?;
    let expected = route_mac(secret, id, sender);
    (!expected.is_empty() && crate::channels::secret_eq(mac, &expected)).then_some(id)
}

/// The routing token inside one of our Message-IDs
/// (`natter.c42-<mac>.n7@x` for a notification, `natter.17.c42-<mac>@x`
/// for a reply), if the id is ours and carries one.
pub fn route_token_in_message_id(id: &str) -> Option<&str> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = id.rsplit_once('@')?;
    local
        .strip_prefix("natter.")?
        .split('.')
        .find(|part| part.starts_with('c') && part.contains('-'))
}

/// The address a reply should go to so that it lands in conversation
/// `token`: `support@x.com` + `c42` gives `support+c42@x.com`. Plus-addressing
/// lets natter thread replies even when a mail client drops In-Reply-To.
/// An address without `@` gets the tag appended, which is the best that can
/// be done with it.
pub fn plus_address(from_address: &str, token: &str) -> String {
    let from_address = from_address.trim();
    match from_address.rsplit_once('@') {
        Some((local, domain)) => {
            // An address that is already tagged keeps only its base, so
            // tokens never stack up (`a+x+y@`).
            let base = local.split_once('+').map_or(local, |(base, _)| base);
            format!("{base}+{token}@{domain}")
        }
        None => format!("{from_address}+{token}"),
    }
}

/// The conversation token in `address` if it is a plus-address of
/// `from_address` (inverse of [`plus_address`]). Domains and the base local
/// part compare case-insensitively because mail systems treat them so; the
/// token keeps its case. `None` when the address is someone else's or carries
/// no tag, so the caller falls back to header-based threading.
pub fn plus_token(address: &str, from_address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = address.rsplit_once('@')?;
    let (our_local, our_domain) = from_address.trim().rsplit_once('@')?;
    let our_base = our_local.split_once('+').map_or(our_local, |(b, _)| b);
    if !domain.eq_ignore_ascii_case(our_domain) {
        return None;
    }
    let (base, token) = local.split_once('+')?;
    if !base.eq_ignore_ascii_case(our_base) || token.is_empty() {
        return None;
    }
    Some(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_address_inserts_the_token() {
        assert_eq!(plus_address("support@x.com", "c42"), "support+c42@x.com");
        assert_eq!(
            plus_address("support+old@x.com", "c42"),
            "support+c42@x.com"
        );
    }

    #[test]
    fn plus_token_inverts_plus_address() {
        let addr = plus_address("support@x.com", "c42");
        assert_eq!(plus_token(&addr, "support@x.com").as_deref(), Some("c42"));
        assert_eq!(
            plus_token("Support+c42@X.COM", "support@x.com").as_deref(),
            Some("c42")
        );
        assert_eq!(
            plus_token("<support+c42@x.com>", "support@x.com").as_deref(),
            Some("c42")
        );
    }

    #[test]
    fn plus_token_rejects_foreign_or_untagged() {
        assert_eq!(plus_token("support@x.com", "support@x.com"), None);
        assert_eq!(plus_token("support+@x.com", "support@x.com"), None);
        assert_eq!(plus_token("sales+c42@x.com", "support@x.com"), None);
        assert_eq!(plus_token("support+c42@y.com", "support@x.com"), None);
        assert_eq!(plus_token("garbage", "support@x.com"), None);
        assert_eq!(plus_token("support+c42@x.com", "garbage"), None);
    }

    #[test]
    fn a_route_token_holds_only_for_the_address_it_was_mailed_to() {
        let secret = b"server secret";
        let t = route_token(secret, 42, "Carla@Example.com");
        assert!(
            t.starts_with("c42-") && t.len() == 4 + 2 * ROUTE_MAC_BYTES,
            "{t}"
        );
        assert_eq!(
            routed_conversation(secret, &t, "carla@example.com"),
            Some(42)
        );
        assert_eq!(
            routed_conversation(secret, &t.to_uppercase(), " carla@example.com"),
            Some(42)
        );
        assert_eq!(routed_conversation(secret, &t, "mallory@example.com"), None);
        assert_eq!(
            routed_conversation(b"other secret", &t, "carla@example.com"),
            None
        );
        assert_eq!(
            routed_conversation(secret, "c42", "carla@example.com"),
            None
        );
        let other = t.replacen("c42-", "c43-", 1);
        assert_eq!(
            routed_conversation(secret, &other, "carla@example.com"),
            None
        );
        assert_eq!(
            routed_conversation(secret, "c42-", "carla@example.com"),
            None
        );
    }

    #[test]
    fn route_tokens_are_found_in_our_message_ids_only() {
        assert_eq!(
            route_token_in_message_id("<natter.c42-abc.n7@x.com>"),
            Some("c42-abc")
        );
        assert_eq!(
            route_token_in_message_id("natter.17.c42-abc@x.com"),
            Some("c42-abc")
        );
        assert_eq!(route_token_in_message_id("natter.c42.n7@x.com"), None);
        assert_eq!(route_token_in_message_id("someone.c42-abc@x.com"), None);
        assert_eq!(route_token_in_message_id("garbage"), None);
    }

    #[test]
    fn debug_hides_the_password() {
        let s = EmailSettings {
            imap_host: "h".into(),
            imap_port: 993,
            imap_tls: true,
            smtp_host: "h".into(),
            smtp_port: 465,
            smtp_tls: true,
            username: "u".into(),
            password: "hunter2".into(),
            from_address: "a@b.c".into(),
            allow_private: false,
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
