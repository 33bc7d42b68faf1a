//! Following a mailbox over IMAP and handing each new message to natter
//! exactly once, in order.
//!
//! Progress is an [`ImapCursor`]: the mailbox's UIDVALIDITY and the last UID
//! natter has stored. UIDs only grow within one UIDVALIDITY, so "everything
//! above `last_uid`" is exactly the unseen mail, whatever happened while
//! natter or the server was down. The cursor only moves after the sink has
//! stored a message, so a crash or a failing sink re-delivers instead of
//! losing mail; the sink de-duplicates by Message-ID if it needs to.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use async_imap::{Client, Session};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

use super::{EmailError, EmailSettings};

/// Where natter is in a mailbox; persisted by the caller after each stored
/// message so a restart resumes exactly there.
#[derive(Clone, Copy, Serialize, Deserialize, Debug, PartialEq)]
pub struct ImapCursor {
    /// The mailbox's UIDVALIDITY; if the server reports another value the
    /// UIDs were renumbered and `last_uid` means nothing any more.
    pub uid_validity: u32,
    /// The highest UID already handed to the sink successfully.
    pub last_uid: u32,
}

/// Stores one raw message and the cursor that includes it. Returning `Err`
/// keeps the cursor before this message, so it is offered again later.
/// A boxed async callback so that the IMAP loop does not depend on natter's
/// storage types.
pub type Sink = Arc<
    dyn Fn(Vec<u8>, ImapCursor) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// Connecting, logging in and selecting may take this long before the
/// attempt counts as failed.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// One command (a FETCH of one message, a NOOP) may take this long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// IDLE is re-issued this often: RFC 2177 lets servers drop an IDLE after
/// 30 minutes, and NAT boxes forget quiet connections.
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);
/// First pause after a failure; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The transport under the IMAP client: plain TCP or TLS over TCP. An enum
/// rather than a trait object because async-imap needs a concrete `Debug`
/// stream type, and STARTTLS changes the kind in the middle of a session.
#[derive(Debug)]
pub enum ImapStream {
    /// Unencrypted, for `imap_tls = false` (and before STARTTLS).
    Plain(TcpStream),
    /// Encrypted with rustls.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A logged-in IMAP session over either transport.
type ImapSession = Session<ImapStream>;

/// The shared TLS client configuration: ring as the crypto provider (one
/// provider for the whole binary) and the operating system's trusted roots.
/// Built once because loading the system roots reads many files.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, EmailError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "could not load a system root certificate");
        }
        let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
        if added == 0 {
            return Err("no trusted root certificates found on this system".to_string());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string())
    });
    config.clone().map_err(|message| EmailError::Tls {
        host: String::new(),
        message,
    })
}

/// Wraps a TCP stream in TLS, checking the certificate against `host`.
async fn tls_wrap(tcp: TcpStream, host: &str) -> Result<ImapStream, EmailError> {
    let config = tls_config()?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| EmailError::Settings(format!("{host:?} is not a valid TLS name: {e}")))?;
    let stream = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| EmailError::Tls {
            host: host.to_string(),
            message: e.to_string(),
        })?;
    Ok(ImapStream::Tls(Box::new(stream)))
}

/// Turns an async-imap error into ours with the step it happened in.
fn imap_err(step: &str, err: async_imap::error::Error) -> EmailError {
    EmailError::Imap(format!("{step}: {err}"))
}

/// Runs `fut` with a deadline, so a silent server cannot stall the loop.
async fn within<T>(
    limit: Duration,
    what: &'static str,
    fut: impl Future<Output = Result<T, EmailError>>,
) -> Result<T, EmailError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| EmailError::Timeout(what))?
}

/// Connects, negotiates TLS per the settings contract (implicit TLS, or
/// STARTTLS on port 143), and logs in. Returns the session and whether the
/// server supports IDLE.
async fn login(settings: &EmailSettings) -> Result<(ImapSession, bool), EmailError> {
    let host = settings.imap_host.trim().to_string();
    let port = settings.imap_port;
    let addrs = crate::channels::http::resolve_guarded(&host, port, settings.allow_private)
        .await
        .map_err(|source| EmailError::Connect {
            host: host.clone(),
            port,
            source,
        })?;
    let tcp = TcpStream::connect(&addrs[..])
        .await
        .map_err(|source| EmailError::Connect {
            host: host.clone(),
            port,
            source,
        })?;
    let starttls = settings.imap_tls && port == 143;
    let stream = if settings.imap_tls && !starttls {
        tls_wrap(tcp, &host).await?
    } else {
        ImapStream::Plain(tcp)
    };
    let mut client = Client::new(stream);
    match client.read_response().await {
        Ok(Some(_greeting)) => {}
        Ok(None) => {
            return Err(EmailError::Imap(
                "the server closed the connection before greeting".into(),
            ))
        }
        Err(e) => return Err(EmailError::Imap(format!("reading the greeting: {e}"))),
    }
    if starttls {
        client
            .run_command_and_check_ok("STARTTLS", None)
            .await
            .map_err(|e| imap_err("STARTTLS", e))?;
        let tcp = match client.into_inner() {
            ImapStream::Plain(tcp) => tcp,
            ImapStream::Tls(_) => {
                return Err(EmailError::Imap("STARTTLS on an encrypted stream".into()))
            }
        };
        client = Client::new(tls_wrap(tcp, &host).await?);
    }
    let mut session = client
        .login(&settings.username, &settings.password)
        .await
        .map_err(|(e, _client)| EmailError::Login(e.to_string()))?;
    let capabilities = session
        .capabilities()
        .await
        .map_err(|e| imap_err("CAPABILITY", e))?;
    let idle = capabilities.has_str("IDLE");
    Ok((session, idle))
}

/// Selects INBOX and returns its current state as a cursor: UIDVALIDITY and
/// the highest UID that exists now (UIDNEXT - 1).
async fn select_inbox(session: &mut ImapSession) -> Result<ImapCursor, EmailError> {
    let mailbox = session
        .select("INBOX")
        .await
        .map_err(|e| imap_err("SELECT INBOX", e))?;
    let uid_validity = mailbox
        .uid_validity
        .ok_or_else(|| EmailError::Imap("the server did not report UIDVALIDITY".into()))?;
    let last_uid = match mailbox.uid_next {
        Some(next) => next.saturating_sub(1),
        // Servers may omit UIDNEXT; then the highest UID present is asked.
        None if mailbox.exists == 0 => 0,
        None => {
            let uids = list_uids(session, "*").await?;
            uids.into_iter().max().unwrap_or(0)
        }
    };
    Ok(ImapCursor {
        uid_validity,
        last_uid,
    })
}

/// The UIDs in `set` (an IMAP UID set such as `5:*`), sorted.
async fn list_uids(session: &mut ImapSession, set: &str) -> Result<Vec<u32>, EmailError> {
    let mut uids = Vec::new();
    {
        let mut fetches = session
            .uid_fetch(set, "(UID)")
            .await
            .map_err(|e| imap_err("UID FETCH (UID)", e))?;
        while let Some(fetch) = fetches.next().await {
            let fetch = fetch.map_err(|e| imap_err("UID FETCH (UID)", e))?;
            if let Some(uid) = fetch.uid {
                uids.push(uid);
            }
        }
    }
    uids.sort_unstable();
    uids.dedup();
    Ok(uids)
}

/// The raw bytes of the message with `uid`, or `None` if it vanished
/// (expunged) between listing and fetching.
async fn fetch_body(session: &mut ImapSession, uid: u32) -> Result<Option<Vec<u8>>, EmailError> {
    let mut body = None;
    let mut fetches = session
        .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
        .await
        .map_err(|e| imap_err("UID FETCH BODY.PEEK[]", e))?;
    while let Some(fetch) = fetches.next().await {
        let fetch = fetch.map_err(|e| imap_err("UID FETCH BODY.PEEK[]", e))?;
        if fetch.uid == Some(uid) {
            if let Some(bytes) = fetch.body() {
                body = Some(bytes.to_vec());
            }
        }
    }
    Ok(body)
}

/// Connects, logs in and reads INBOX's current state, so that a new inbox
/// starts from "now" instead of importing years of old mail.
pub async fn current_cursor(settings: &EmailSettings) -> Result<ImapCursor, EmailError> {
    within(SETUP_TIMEOUT, "reading the mailbox state", async {
        let (mut session, _) = login(settings).await?;
        let cursor = select_inbox(&mut session).await?;
        let _ = session.logout().await;
        Ok(cursor)
    })
    .await
}

/// Checks the settings end to end for the admin's "test connection" button:
/// IMAP login and SELECT INBOX, then SMTP connect, EHLO and login if the
/// server offers it. The first failure is returned with its step.
pub async fn test_connection(settings: &EmailSettings) -> Result<(), EmailError> {
    current_cursor(settings).await?;
    super::smtp::check(settings)
        .await
        .map_err(|e| EmailError::Smtp(e.message))
}

/// Follows INBOX until `shutdown` becomes true, calling `sink` once for
/// every message above the cursor, in UID order.
///
/// With `cursor = None` (or after the server renumbered the mailbox) it
/// starts from the mailbox's current state. It waits with IDLE when the
/// server supports it and otherwise polls every `poll_every`. Any failure is
/// logged (never with the password), followed by a pause of 1 s doubling to
/// 60 s, a reconnect and a backfill from the cursor, so mail that arrived
/// during an outage is delivered when the server is back.
pub async fn run(
    settings: EmailSettings,
    cursor: Option<ImapCursor>,
    sink: Sink,
    mut shutdown: watch::Receiver<bool>,
    poll_every: Duration,
) {
    let mut cursor = cursor;
    let mut backoff = MIN_BACKOFF;
    let poll_every = poll_every.max(Duration::from_secs(1));
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut inner_shutdown = shutdown.clone();
        let outcome = tokio::select! {
            outcome = session_round(&settings, &mut cursor, &sink, &mut inner_shutdown, poll_every, &mut backoff) => outcome,
            _ = shutdown_requested(&mut shutdown) => return,
        };
        match outcome {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(
                    host = %settings.imap_host,
                    user = %settings.username,
                    error = %err,
                    retry_in_secs = backoff.as_secs(),
                    "IMAP connection failed; will reconnect"
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown_requested(&mut shutdown) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Resolves when shutdown is requested or the sender is gone (which also
/// means nobody can ask us to stop any more, so stopping is right).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// One connection's life: login, select, then backfill and wait in turns.
/// Returns `Ok(())` only on shutdown; any error ends the connection.
async fn session_round(
    settings: &EmailSettings,
    cursor: &mut Option<ImapCursor>,
    sink: &Sink,
    shutdown: &mut watch::Receiver<bool>,
    poll_every: Duration,
    backoff: &mut Duration,
) -> Result<(), EmailError> {
    let (mut session, has_idle) = within(SETUP_TIMEOUT, "connecting", async {
        let (mut session, has_idle) = login(settings).await?;
        let current = select_inbox(&mut session).await?;
        match cursor {
            None => {
                tracing::info!(
                    uid_validity = current.uid_validity,
                    last_uid = current.last_uid,
                    "following the mailbox from its current state"
                );
                *cursor = Some(current);
            }
            Some(c) if c.uid_validity != current.uid_validity => {
                tracing::warn!(
                    old = c.uid_validity,
                    new = current.uid_validity,
                    "the mailbox's UIDVALIDITY changed; restarting from its current state"
                );
                *cursor = Some(current);
            }
            Some(_) => {}
        }
        Ok((session, has_idle))
    })
    .await?;
    tracing::debug!(idle = has_idle, "IMAP session ready");

    loop {
        backfill(&mut session, cursor, sink).await?;
        // Connected and caught up: the next failure starts a fresh backoff.
        *backoff = MIN_BACKOFF;

        // New mail reported during the backfill (untagged EXISTS) means the
        // backfill may have missed it: go again before waiting.
        let mut more = false;
        while let Ok(response) = session.unsolicited_responses.try_recv() {
            if matches!(response, UnsolicitedResponse::Exists(_)) {
                more = true;
            }
        }
        if more {
            continue;
        }

        if has_idle {
            let mut idle = session.idle();
            within(COMMAND_TIMEOUT, "starting IDLE", async {
                idle.init().await.map_err(|e| imap_err("IDLE", e))
            })
            .await?;
            let outcome = {
                let (wait, _stop) = idle.wait_with_timeout(IDLE_RENEW);
                tokio::select! {
                    outcome = wait => Some(outcome),
                    _ = tokio::time::sleep(IDLE_RENEW) => None,
                    _ = shutdown_requested(shutdown) => return Ok(()),
                }
            };
            match outcome {
                Some(Ok(IdleResponse::NewData(_))) => tracing::debug!("IDLE reported a change"),
                Some(Ok(IdleResponse::Timeout)) | None => tracing::debug!("renewing IDLE"),
                Some(Ok(IdleResponse::ManualInterrupt)) => {
                    tracing::debug!("IDLE ended by the server")
                }
                Some(Err(e)) => return Err(imap_err("IDLE", e)),
            }
            session = within(COMMAND_TIMEOUT, "ending IDLE", async {
                idle.done().await.map_err(|e| imap_err("DONE", e))
            })
            .await?;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(poll_every) => {}
                _ = shutdown_requested(shutdown) => return Ok(()),
            }
            // NOOP lets the server report new messages before the FETCH.
            within(COMMAND_TIMEOUT, "NOOP", async {
                session.noop().await.map_err(|e| imap_err("NOOP", e))
            })
            .await?;
        }
    }
}

/// Hands every message above the cursor to the sink, in UID order, moving
/// the cursor after each success. A sink failure ends the round with an
/// error so the message is offered again after the backoff.
async fn backfill(
    session: &mut ImapSession,
    cursor: &mut Option<ImapCursor>,
    sink: &Sink,
) -> Result<(), EmailError> {
    let Some(start) = *cursor else {
        return Err(EmailError::Imap("no cursor after SELECT".into()));
    };
    let from = start.last_uid.saturating_add(1);
    // `n:*` also returns the last message when its UID is below n, hence
    // the filter. Bodies are fetched one at a time to bound memory after a
    // long outage.
    let uids = within(COMMAND_TIMEOUT, "listing new messages", async {
        list_uids(session, &format!("{from}:*")).await
    })
    .await?;
    for uid in uids.into_iter().filter(|uid| *uid > start.last_uid) {
        let body = within(COMMAND_TIMEOUT, "fetching a message", async {
            fetch_body(session, uid).await
        })
        .await?;
        let Some(raw) = body else {
            tracing::debug!(uid, "message vanished before it could be fetched");
            continue;
        };
        let next = ImapCursor {
            uid_validity: start.uid_validity,
            last_uid: uid,
        };
        // Spawned so that a shutdown, which drops this future, cannot cut
        // a store in half: the sink always runs to completion.
        let stored = tokio::spawn(sink(raw, next)).await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(EmailError::Sink { uid, message }),
            Err(join) => {
                return Err(EmailError::Sink {
                    uid,
                    message: format!("the sink task failed: {join}"),
                })
            }
        }
        *cursor = Some(next);
    }
    Ok(())
}
