//! Server-Sent Events for agents and contacts.
//!
//! Each stream is the response body itself (no task, no channel: see
//! [`Stream`]); it registers in the fan-out (see
//! `service::fanout`), first replays the log after `Last-Event-ID` and then
//! takes the durable events its viewer may see as the dispatcher hands
//! them over, skipping ids it has already sent (so the switch from replay
//! to live has no gap and no duplicate). A stream that falls behind (its
//! mailbox overflowed) catches up from the log instead of skipping. Access
//! is checked for every event at sending time (role and memberships as
//! stored then), and the stream's credential is checked again whenever the
//! store reports a change of access, so a logout, a deactivation or a
//! password change ends it at once, and so does the token's expiry.
//!
//! How events look is not this module's business: a stream takes a
//! [`Renderer`] (the contract's JSON here, HTML fragments in the workspace
//! and the messenger, each beside its pages) and only frames, orders and
//! guards what it renders.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::{AgentAuth, ContactAuth};
use super::AppState;
use crate::contract::{self as views, Audience};
use crate::error::ApiResult;
use crate::metrics;
use crate::service::fanout::Live;
use crate::service::realtime::{Credential, TypingEvent, Viewer};
use crate::service::Services;
use crate::store::EventRecord;

/// Events read from the log per batch while catching up.
const REPLAY_BATCH: usize = 500;

/// How a stream shows what happens to one viewer: whole SSE frames (see
/// [`json_frame`] and [`html_frame`]). Called only for what the viewer may
/// see; access is the stream's job.
pub trait Renderer: Send + Sync + 'static {
    /// The frame of a logged event. A renderer with nothing to show still
    /// sends the event's `id:`, so a reconnecting browser resumes after it.
    fn event(&self, svc: &Services, viewer: Viewer, ev: &EventRecord) -> ApiResult<String>;

    /// The frame of a typing signal, or none when this page does not show
    /// it.
    fn typing(&self, t: &TypingEvent) -> Option<String>;
}

/// The contract's event stream: `id`, `event: <name>`, `data: <JSON>`.
pub struct Json;

impl Renderer for Json {
    fn event(&self, svc: &Services, viewer: Viewer, ev: &EventRecord) -> ApiResult<String> {
        let data = svc.event_data(ev, Audience::from(viewer))?;
        json_frame(Some(ev.id.get()), ev.name(), &data).map_err(|e| {
            tracing::error!(error = %e, event = %ev.id, "event data did not serialize");
            crate::error::ApiError::Internal
        })
    }

    fn typing(&self, t: &TypingEvent) -> Option<String> {
        let data = views::Typing::of(t.conversation_id, &t.author, t.typing);
        json_frame(None, "typing", &data).ok()
    }
}

/// An SSE frame of JSON (`serde_json` never writes a raw line break, so
/// one `data:` line holds it). An error would mean a contract shape that
/// is not JSON (a map with non-string keys): a bug.
pub fn json_frame(
    id: Option<u64>,
    name: &str,
    data: &impl serde::Serialize,
) -> serde_json::Result<String> {
    let data = serde_json::to_string(data)?;
    Ok(match id {
        Some(id) => format!("id: {id}\nevent: {name}\ndata: {data}\n\n"),
        None => format!("event: {name}\ndata: {data}\n\n"),
    })
}

/// `GET /api/v1/events`: everything in the inboxes the agent may see.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn agent_events(
    state: web::Data<AppState>,
    auth: AgentAuth,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let viewer = Viewer::Agent {
        id: auth.agent.id,
        admin: auth.is_admin(),
    };
    let credential = Credential {
        token_hash: auth.token_hash,
    };
    stream(
        state,
        viewer,
        credential,
        last_event_id(&req),
        Arc::new(Json),
    )
}

/// `GET /api/v1/customer/events`: the contact's own conversations.
#[tracing::instrument(skip_all, fields(contact = %auth.contact.id))]
pub async fn customer_events(
    state: web::Data<AppState>,
    auth: ContactAuth,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    stream(
        state,
        Viewer::Contact {
            id: auth.contact.id,
        },
        Credential {
            token_hash: auth.token_hash,
        },
        last_event_id(&req),
        Arc::new(Json),
    )
}

/// `Last-Event-ID` (what EventSource sends on reconnect), or the
/// `last_event_id` query parameter for a first connection that resumes.
pub fn last_event_id(req: &HttpRequest) -> Option<u64> {
    if let Some(v) = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
    {
        return v.trim().parse().ok();
    }
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("last_event_id").and_then(|v| v.parse().ok()))
}

/// Returns the `text/event-stream` response, whose body is the stream
/// itself (see [`Stream`]). `credential` is what the request was
/// authenticated with: the stream ends when it no longer holds.
pub fn stream(
    state: web::Data<AppState>,
    viewer: Viewer,
    credential: Credential,
    last: Option<u64>,
    renderer: Arc<dyn Renderer>,
) -> ApiResult<HttpResponse> {
    let slot = Slot::take(&state, viewer)?;
    // Subscribe now, before the first poll, so nothing published from now
    // on is missed.
    let feeds = state.svc.subscribe(viewer, last);
    let keepalive = Duration::from_secs(state.keepalive_secs.max(1));
    let shutdown = state.shutdown.clone();
    let st = Stream {
        state: state.into_inner(),
        viewer,
        credential,
        renderer,
        live: feeds.live,
        access: feeds.access,
        shutdown,
        last: feeds.start,
        replay_upto: 0,
        expiry: None,
        keepalive: tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive),
        _slot: slot,
        _gauge: Gauge::open(),
    };
    let body = futures_util::stream::unfold(st, |mut st| async move {
        st.next_chunk().await.map(|b| (Ok::<_, Infallible>(b), st))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// One of a viewer's limited stream slots, given back when the stream ends.
struct Slot {
    state: web::Data<AppState>,
    viewer: Viewer,
}

impl Slot {
    fn take(state: &web::Data<AppState>, viewer: Viewer) -> ApiResult<Self> {
        let mut open = state
            .streams
            .lock()
            .map_err(|_| crate::error::ApiError::Internal)?;
        let n = open.entry(viewer).or_default();
        if *n >= state.config.streams_per_user {
            return Err(crate::error::ApiError::TooManyRequests(5));
        }
        *n += 1;
        Ok(Self {
            state: state.clone(),
            viewer,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.state.streams.lock() {
            if let Some(n) = open.get_mut(&self.viewer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.viewer);
                }
            }
        }
    }
}

/// Decrements the open-stream gauge however the stream ends.
struct Gauge;

impl Gauge {
    fn open() -> Self {
        metrics::global().sse_connections.inc();
        Self
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        metrics::global().sse_connections.dec();
    }
}

/// An SSE frame of HTML: every line of it behind its own `data:`. SSE
/// ends a line at CR, LF or CRLF, so each of them starts a new `data:`
/// line here: a bare CR in a message body must not end the field and let
/// the text after it read as `id:` or `event:` (`str::lines` splits only
/// at LF). An empty `html` gives an id-only frame, which still moves the
/// browser's Last-Event-ID on.
pub fn html_frame(id: Option<u64>, html: &str) -> String {
    let mut f = String::with_capacity(html.len() + 32);
    if let Some(id) = id {
        f.push_str(&format!("id: {id}\n"));
    }
    if !html.trim().is_empty() {
        f.push_str("event: ui\n");
        for line in html.split('\n') {
            for part in line.strip_suffix('\r').unwrap_or(line).split('\r') {
                f.push_str("data: ");
                f.push_str(part);
                f.push('\n');
            }
        }
    }
    f.push('\n');
    f
}

/// Why a stream ended early.
enum End {
    StoreFailed,
}

/// When a credential expiring at `expires_at` runs out, on tokio's clock.
fn expiry_instant(expires_at: i64) -> tokio::time::Instant {
    let left = expires_at.saturating_sub(crate::domain::time::now()).max(0);
    let left = Duration::from_micros(u64::try_from(left).unwrap_or(0));
    tokio::time::Instant::now() + left
}

/// What woke a waiting stream.
enum Wake {
    /// Stop: shutdown, expiry, a lost credential or a closed feed.
    End,
    /// Access may have changed: check the credential again.
    Access,
    /// The fan-out handed something over.
    Live(Live),
    /// Time for a keep-alive comment.
    KeepAlive,
}

/// One open event stream: the response body itself, polled by the HTTP
/// connection that carries it. There is no task and no channel per
/// stream: a frame is made when the connection can take it (its
/// backpressure is the socket's), and when the client goes away the
/// connection drops the body, and with it the stream's slot, its place in
/// the fan-out and its timers. An idle stream is this struct and its
/// mailbox.
///
/// It first sends `retry` and `: connected`, then replays the log after
/// `Last-Event-ID` (one chunk per batch of the log), then takes the
/// durable events its viewer may see as the fan-out hands them over,
/// skipping ids already sent, so the switch from replay to live has no gap
/// and no duplicate.
struct Stream {
    state: Arc<AppState>,
    viewer: Viewer,
    credential: Credential,
    renderer: Arc<dyn Renderer>,
    live: crate::service::fanout::Subscription,
    access: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// The newest event id sent (or passed over as not for this viewer).
    last: u64,
    /// Replay the log up to here before waiting again.
    replay_upto: u64,
    /// When the credential runs out; `None` until the first poll checks it.
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
    keepalive: tokio::time::Interval,
    _slot: Slot,
    _gauge: Gauge,
}

impl Stream {
    /// The next bytes to send, or `None` when the stream ends.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.expiry.is_none() {
            return self.open();
        }
        loop {
            if self.last < self.replay_upto {
                let mut out = String::new();
                if let Err(End::StoreFailed) = self.replay_batch(&mut out) {
                    return self.failed();
                }
                if !out.is_empty() {
                    return Some(Bytes::from(out));
                }
                continue;
            }
            let wake = {
                let expiry = self.expiry.as_mut()?;
                tokio::select! {
                    _ = self.shutdown.changed() => Wake::End,
                    // The credential ran out: the client must sign in again.
                    _ = expiry => Wake::End,
                    r = self.access.changed() => if r.is_ok() { Wake::Access } else { Wake::End },
                    item = self.live.recv() => Wake::Live(item),
                    _ = self.keepalive.tick() => Wake::KeepAlive,
                }
            };
            let svc: &Services = &self.state.svc;
            match wake {
                Wake::End => return None,
                Wake::Access => match svc.still_holds(self.viewer, self.credential) {
                    Ok(Some(_)) => {}
                    Ok(None) => return None,
                    Err(_) => return self.failed(),
                },
                Wake::KeepAlive => return Some(Bytes::from_static(b": keep-alive\n\n")),
                // The ids between `last` and this one were not for this
                // stream (the fan-out hands over every event it may see,
                // or says it lagged): no replay here, which would read the
                // log for every event another stream got.
                Wake::Live(Live::Event(ev)) => {
                    if ev.id.get() <= self.last {
                        continue;
                    }
                    self.last = ev.id.get();
                    let mut out = String::new();
                    if let Err(End::StoreFailed) = self.frame_if_visible(&ev, &mut out) {
                        return self.failed();
                    }
                    if !out.is_empty() {
                        return Some(Bytes::from(out));
                    }
                }
                Wake::Live(Live::Lagged) => {
                    metrics::global().sse_catchups.inc();
                    self.replay_upto = self.live.upto();
                }
                Wake::Live(Live::Typing(t)) => match svc.may_see_typing(self.viewer, &t) {
                    Ok(true) => {
                        if let Some(f) = self.renderer.typing(&t) {
                            return Some(Bytes::from(f));
                        }
                    }
                    Ok(false) => {}
                    Err(_) => return self.failed(),
                },
            }
        }
    }

    /// The first poll: checks the credential (after subscribing to access
    /// changes, so a revocation since the request was authenticated is
    /// seen here or wakes the stream later) and sends the preamble.
    fn open(&mut self) -> Option<Bytes> {
        if *self.shutdown.borrow() {
            return None;
        }
        let Ok(Some(expires_at)) = self.state.svc.still_holds(self.viewer, self.credential) else {
            return None;
        };
        self.expiry = Some(Box::pin(tokio::time::sleep_until(expiry_instant(
            expires_at,
        ))));
        self.replay_upto = self.live.upto();
        Some(Bytes::from_static(b"retry: 2000\n: connected\n\n"))
    }

    /// Appends the frames of the next batch of the log in
    /// `(last, replay_upto]`, advancing `last`.
    fn replay_batch(&mut self, out: &mut String) -> Result<(), End> {
        let batch = self
            .state
            .svc
            .events_between(self.last, self.replay_upto, REPLAY_BATCH)
            .map_err(|_| End::StoreFailed)?;
        if batch.is_empty() {
            // The log has a hole below `replay_upto` (should not happen):
            // move on rather than spin.
            self.last = self.replay_upto;
            return Ok(());
        }
        for ev in &batch {
            self.frame_if_visible(ev, out)?;
            self.last = ev.id.get();
        }
        Ok(())
    }

    /// Appends the frame of `ev` when the viewer may see it.
    fn frame_if_visible(&self, ev: &EventRecord, out: &mut String) -> Result<(), End> {
        let svc: &Services = &self.state.svc;
        if svc.may_see(self.viewer, ev).map_err(|_| End::StoreFailed)? {
            let f = self
                .renderer
                .event(svc, self.viewer, ev)
                .map_err(|_| End::StoreFailed)?;
            // Counted before the frame is written, so a client that read
            // it also sees it counted.
            metrics::global().events_delivered.inc();
            out.push_str(&f);
        }
        Ok(())
    }

    fn failed(&self) -> Option<Bytes> {
        tracing::error!("event stream ended: the store could not be read");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a stream the way the SSE specification does: CR, LF and
    /// CRLF all end a line.
    fn fields(frame: &str) -> Vec<String> {
        frame
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_carriage_return_in_html_cannot_inject_fields() {
        let f = html_frame(Some(7), "<p>hi\rid: 999\revent: x\r\ndata: y</p>\nnext");
        let lines = fields(&f);
        assert_eq!(lines[0], "id: 7");
        assert_eq!(lines[1], "event: ui");
        for l in &lines[2..] {
            assert!(l.is_empty() || l.starts_with("data: "), "{l:?} in {f:?}");
        }
        assert!(f.ends_with("\n\n"));
    }
}
