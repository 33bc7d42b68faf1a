//! Sending an agent's reply over SMTP.
//!
//! One connection per message: replies are rare compared with the cost of
//! keeping a session open, and a fresh connection makes every failure
//! independent. Authentication happens only when the server offers it,
//! because some relays accept by IP address and reject AUTH outright.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;

use super::EmailSettings;

/// How long one whole send may take before it counts as a temporary failure,
/// so a stalled server cannot hold a send task forever.
const SEND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The mechanisms natter can log in with, in order of preference. Both carry
/// the plain password, which is why TLS is the admin's default.
const MECHANISMS: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

/// One reply to send. The caller generates the Message-ID (and stores it)
/// so that the customer's answer can be threaded back by In-Reply-To.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// The customer's address.
    pub to: String,
    /// The customer's display name, if known.
    pub to_name: Option<String>,
    /// The subject, usually "Re: " plus the conversation's subject.
    pub subject: String,
    /// The reply text; sent as text/plain in UTF-8.
    pub text: String,
    /// The Message-ID without angle brackets.
    pub message_id: String,
    /// The id (without brackets) of the customer message this answers.
    pub in_reply_to: Option<String>,
    /// The thread's ids (without brackets), oldest first.
    pub references: Vec<String>,
    /// Where the customer's answer should go, usually the conversation's
    /// plus-address (see [`super::plus_address`]).
    pub reply_to: Option<String>,
    /// An unsubscribe URL (notifications): sent as `List-Unsubscribe` with
    /// RFC 8058 one-click, so mail clients offer an unsubscribe button.
    pub list_unsubscribe: Option<String>,
    /// Files sent with the reply: (name, content type, bytes).
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

/// `List-Unsubscribe: <url>`.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Clone)]
struct ListUnsubscribePost;

impl lettre::message::header::Header for ListUnsubscribePost {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(
            Self::name(),
            "List-Unsubscribe=One-Click".to_owned(),
        )
    }
}

/// Why a send failed, and whether trying again can help: the caller retries
/// temporary failures later and marks permanent ones as failed for the agent
/// to see.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", if *permanent { "permanent SMTP failure" } else { "temporary SMTP failure" })]
pub struct SendError {
    /// `true` for a 5xx reply or an input the server can never accept (such
    /// as an invalid address); `false` for connection problems, timeouts and
    /// 4xx replies.
    pub permanent: bool,
    /// What went wrong, for the log and the agent. Never contains the
    /// password.
    pub message: String,
}

impl SendError {
    /// A failure that will not go away by retrying.
    fn permanent(message: impl Into<String>) -> Self {
        SendError {
            permanent: true,
            message: message.into(),
        }
    }

    /// A failure that a later retry may not see.
    fn temporary(message: impl Into<String>) -> Self {
        SendError {
            permanent: false,
            message: message.into(),
        }
    }
}

/// Sorts lettre's errors into permanent and temporary by SMTP semantics:
/// 5xx is permanent, everything else (4xx, network, TLS, timeouts) may heal.
fn classify(context: &str, err: lettre::transport::smtp::Error) -> SendError {
    let message = format!("{context}: {err}");
    if err.is_permanent() {
        SendError::permanent(message)
    } else {
        SendError::temporary(message)
    }
}

/// Removes what must never reach a header from an id: brackets (added
/// back by us), whitespace and control characters.
fn clean_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && *c != '<' && *c != '>')
        .collect()
}

/// Builds the RFC 5322 message. Separate from [`send`] so the exact headers
/// can be checked without a server.
pub fn build_message(settings: &EmailSettings, mail: &OutgoingMail) -> Result<Message, SendError> {
    let from: Mailbox = settings
        .from_address
        .trim()
        .parse()
        .map_err(|e| SendError::permanent(format!("invalid from address: {e}")))?;
    let to_address = mail
        .to
        .trim()
        .parse()
        .map_err(|e| SendError::permanent(format!("invalid recipient address: {e}")))?;
    let to = Mailbox::new(
        mail.to_name
            .as_ref()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        to_address,
    );
    let message_id = clean_id(&mail.message_id);
    if message_id.is_empty() {
        return Err(SendError::permanent("empty Message-ID"));
    }
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.as_str())
        .date_now()
        .message_id(Some(format!("<{message_id}>")));
    if let Some(id) = mail.in_reply_to.as_deref().map(clean_id) {
        if !id.is_empty() {
            builder = builder.in_reply_to(format!("<{id}>"));
        }
    }
    let references: Vec<String> = mail
        .references
        .iter()
        .map(|r| clean_id(r))
        .filter(|r| !r.is_empty())
        .map(|r| format!("<{r}>"))
        .collect();
    if !references.is_empty() {
        builder = builder.references(references.join(" "));
    }
    if let Some(url) =
        mail.list_unsubscribe.as_deref().map(str::trim).filter(|u| {
            !u.is_empty() && u.starts_with("http") && !u.contains(['<', '>', '\r', '\n'])
        })
    {
        builder = builder
            .header(ListUnsubscribe(format!("<{url}>")))
            .header(ListUnsubscribePost);
    }
    if let Some(reply_to) = &mail.reply_to {
        let reply_to: Mailbox = reply_to
            .trim()
            .parse()
            .map_err(|e| SendError::permanent(format!("invalid Reply-To address: {e}")))?;
        builder = builder.reply_to(reply_to);
    }
    let built = if mail.attachments.is_empty() {
        builder
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())
    } else {
        let mut parts = lettre::message::MultiPart::mixed()
            .singlepart(lettre::message::SinglePart::plain(mail.text.clone()));
        for (name, content_type, bytes) in &mail.attachments {
            let ct = ContentType::parse(content_type).unwrap_or_else(|_| {
                ContentType::parse("application/octet-stream").unwrap_or(ContentType::TEXT_PLAIN)
            });
            parts = parts
                .singlepart(lettre::message::Attachment::new(name.clone()).body(bytes.clone(), ct));
        }
        builder.multipart(parts)
    };
    built.map_err(|e| SendError::permanent(format!("cannot build message: {e}")))
}

/// Opens an SMTP connection per the settings' TLS contract (implicit TLS on
/// port 465, STARTTLS on other ports when `smtp_tls`, plain otherwise), says
/// EHLO and logs in when the server offers a mechanism natter supports.
/// STARTTLS is required when asked for: silently falling back to plain text
/// would leak the password.
pub(crate) async fn connect(settings: &EmailSettings) -> Result<AsyncSmtpConnection, SendError> {
    let host = settings.smtp_host.trim();
    let hello = ClientId::default();
    let tls_parameters = || {
        TlsParameters::builder(host.to_string())
            .build_rustls()
            .map_err(|e| SendError::temporary(format!("TLS setup failed: {e}")))
    };
    let implicit = settings.smtp_tls && settings.smtp_port == 465;
    let addrs =
        crate::channels::http::resolve_guarded(host, settings.smtp_port, settings.allow_private)
            .await
            .map_err(|e| {
                SendError::permanent(format!(
                    "cannot connect to {host}:{}: {e}",
                    settings.smtp_port
                ))
            })?;
    let mut conn = AsyncSmtpConnection::connect_tokio1(
        &addrs[..],
        Some(CONNECT_TIMEOUT),
        &hello,
        if implicit {
            Some(tls_parameters()?)
        } else {
            None
        },
        None,
    )
    .await
    .map_err(|e| {
        classify(
            &format!("cannot connect to {host}:{}", settings.smtp_port),
            e,
        )
    })?;

    if settings.smtp_tls && !implicit {
        if !conn.can_starttls() {
            conn.abort().await;
            return Err(SendError::temporary(
                "the server does not offer STARTTLS but TLS is required",
            ));
        }
        if let Err(e) = conn.starttls(tls_parameters()?, &hello).await {
            conn.abort().await;
            return Err(classify("STARTTLS failed", e));
        }
    }

    if conn.server_info().get_auth_mechanism(&MECHANISMS).is_some() {
        let credentials = Credentials::new(settings.username.clone(), settings.password.clone());
        if let Err(e) = conn.auth(&MECHANISMS, &credentials).await {
            conn.abort().await;
            return Err(classify("login refused", e));
        }
    }
    Ok(conn)
}

/// Sends one reply. Errors say whether a retry can help (see
/// [`SendError::permanent`]); the caller owns the retry policy.
pub async fn send(settings: &EmailSettings, mail: &OutgoingMail) -> Result<(), SendError> {
    let message = build_message(settings, mail)?;
    let attempt = async {
        let mut conn = connect(settings).await?;
        let result = conn
            .send(message.envelope(), &message.formatted())
            .await
            .map_err(|e| classify("the server refused the message", e));
        match result {
            Ok(_) => {
                // The message is accepted; a failing QUIT changes nothing.
                let _ = conn.quit().await;
                Ok(())
            }
            Err(e) => {
                conn.abort().await;
                Err(e)
            }
        }
    };
    match tokio::time::timeout(SEND_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(SendError::temporary("timed out talking to the SMTP server")),
    }
}

/// Connects, says EHLO and logs in if offered, then quits: the SMTP half of
/// the settings page's "test connection".
pub(crate) async fn check(settings: &EmailSettings) -> Result<(), SendError> {
    let attempt = async {
        let mut conn = connect(settings).await?;
        let _ = conn.quit().await;
        Ok(())
    };
    match tokio::time::timeout(SEND_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(SendError::temporary("timed out talking to the SMTP server")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EmailSettings {
        EmailSettings {
            imap_host: "localhost".into(),
            imap_port: 143,
            imap_tls: false,
            smtp_host: "localhost".into(),
            smtp_port: 25,
            smtp_tls: false,
            username: "u".into(),
            password: "p".into(),
            from_address: "support@natter.test".into(),
            allow_private: true,
        }
    }

    fn mail() -> OutgoingMail {
        OutgoingMail {
            to: "jane@example.com".into(),
            to_name: Some("Jane Doe".into()),
            subject: "Re: Grüße".into(),
            text: "Hello Jane,\n\nfixed.\n".into(),
            message_id: "natter-9@natter.test".into(),
            in_reply_to: Some("<abc@example.com>".into()),
            references: vec!["r1@x".into(), "abc@example.com".into()],
            reply_to: Some("support+c42@natter.test".into()),
            list_unsubscribe: None,
            attachments: Vec::new(),
        }
    }

    #[test]
    fn headers_are_complete() {
        let message = build_message(&settings(), &mail()).expect("builds");
        let raw = String::from_utf8(message.formatted()).expect("ascii");
        assert!(
            raw.contains("Message-ID: <natter-9@natter.test>\r\n"),
            "{raw}"
        );
        assert!(raw.contains("In-Reply-To: <abc@example.com>\r\n"), "{raw}");
        assert!(
            raw.contains("References: <r1@x> <abc@example.com>\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("Reply-To: support+c42@natter.test\r\n"),
            "{raw}"
        );
        assert!(raw.contains("Date: "), "{raw}");
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
        assert!(
            !raw.to_ascii_lowercase().contains("auto-submitted"),
            "{raw}"
        );
    }

    #[test]
    fn bad_addresses_are_permanent() {
        let mut m = mail();
        m.to = "not an address".into();
        let err = build_message(&settings(), &m).expect_err("invalid");
        assert!(err.permanent);
        let mut m = mail();
        m.message_id = "<>".into();
        assert!(
            build_message(&settings(), &m)
                .expect_err("empty id")
                .permanent
        );
    }
}
