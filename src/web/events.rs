//! Server-Sent Events for agents and contacts.
//!
//! Each stream is a task that registers in the fan-out (see
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
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use tokio::sync::mpsc;

use super::extract::{AgentAuth, ContactAuth};
use super::AppState;
use crate::contract::{self as views, Audience};
use crate::error::ApiResult;
use crate::metrics;
use crate::service::fanout::Live;
use crate::service::realtime::{Credential, Feeds, TypingEvent, Viewer};
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

/// Starts a stream task and returns the `text/event-stream` response.
/// `credential` is what the request was authenticated with: the stream
/// ends when it no longer holds.
pub fn stream(
    state: web::Data<AppState>,
    viewer: Viewer,
    credential: Credential,
    last: Option<u64>,
    renderer: Arc<dyn Renderer>,
) -> ApiResult<HttpResponse> {
    let slot = Slot::take(&state, viewer)?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    // Subscribe before the task starts so nothing published from now on is
    // missed, whatever the task's scheduling.
    let feeds = state.svc.subscribe(viewer, last);
    tokio::spawn(async move {
        run(
            state.into_inner(),
            Holder { viewer, credential },
            renderer,
            feeds,
            tx,
        )
        .await;
        drop(slot);
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
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

/// Decrements the open-stream gauge however the task ends.
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
    ClientGone,
    StoreFailed,
}

async fn send_if_visible(
    svc: &Services,
    viewer: Viewer,
    renderer: &dyn Renderer,
    ev: &EventRecord,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), End> {
    let visible = svc.may_see(viewer, ev).map_err(|_| End::StoreFailed)?;
    if visible {
        let f = renderer
            .event(svc, viewer, ev)
            .map_err(|_| End::StoreFailed)?;
        // Counted before the send completes, so a client that read the
        // frame also sees it counted.
        metrics::global().events_delivered.inc();
        tx.send(Bytes::from(f)).await.map_err(|_| End::ClientGone)?;
    }
    Ok(())
}

/// Sends every logged event in `(*last, upto]`, advancing `*last`.
async fn catch_up(
    svc: &Services,
    viewer: Viewer,
    renderer: &dyn Renderer,
    last: &mut u64,
    upto: u64,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), End> {
    while *last < upto {
        let batch = svc
            .events_between(*last, upto, REPLAY_BATCH)
            .map_err(|_| End::StoreFailed)?;
        if batch.is_empty() {
            // The log has a hole below `upto` (should not happen): move on
            // rather than spin.
            *last = upto;
            break;
        }
        for ev in &batch {
            send_if_visible(svc, viewer, renderer, ev, tx).await?;
            *last = ev.id.get();
        }
    }
    Ok(())
}

/// Who holds a stream, and with what.
struct Holder {
    viewer: Viewer,
    credential: Credential,
}

/// When a credential expiring at `expires_at` runs out, on tokio's clock.
fn expiry_instant(expires_at: i64) -> tokio::time::Instant {
    let left = expires_at.saturating_sub(crate::domain::time::now()).max(0);
    let left = Duration::from_micros(u64::try_from(left).unwrap_or(0));
    tokio::time::Instant::now() + left
}

async fn run(
    state: Arc<AppState>,
    holder: Holder,
    renderer: Arc<dyn Renderer>,
    feeds: Feeds,
    tx: mpsc::Sender<Bytes>,
) {
    let _gauge = Gauge::open();
    let Holder { viewer, credential } = holder;
    let Feeds {
        live,
        mut access,
        start: mut last,
    } = feeds;
    let svc: &Services = &state.svc;
    let renderer: &dyn Renderer = &*renderer;
    let mut shutdown = state.shutdown.clone();
    if *shutdown.borrow() {
        return;
    }
    // Checked after subscribing to changes: a revocation since the request
    // was authenticated is seen here or wakes the loop below.
    let Ok(Some(expires_at)) = svc.still_holds(viewer, credential) else {
        return;
    };
    let expiry = tokio::time::sleep_until(expiry_instant(expires_at));
    tokio::pin!(expiry);
    if tx
        .send(Bytes::from_static(b"retry: 2000\n: connected\n\n"))
        .await
        .is_err()
    {
        return;
    }
    let upto = live.upto();
    if catch_up(svc, viewer, renderer, &mut last, upto, &tx)
        .await
        .is_err()
    {
        return;
    }
    let mut keepalive = tokio::time::interval(Duration::from_secs(state.keepalive_secs.max(1)));
    keepalive.tick().await;
    loop {
        let step = tokio::select! {
            _ = shutdown.changed() => break,
            _ = tx.closed() => break,
            // The credential ran out: the client must sign in again.
            _ = &mut expiry => break,
            r = access.changed() => match r {
                Ok(()) => match svc.still_holds(viewer, credential) {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => break,
                    Err(_) => Err(End::StoreFailed),
                },
                Err(_) => break,
            },
            item = live.recv() => match item {
                // The ids between `last` and this one were not for this
                // stream (the fan-out hands over every event it may see,
                // or says it lagged): no catch-up here, which would read
                // the log for every event another stream got.
                Live::Event(ev) => {
                    if ev.id.get() <= last {
                        Ok(())
                    } else {
                        last = ev.id.get();
                        send_if_visible(svc, viewer, renderer, &ev, &tx).await
                    }
                }
                Live::Lagged => {
                    metrics::global().sse_catchups.inc();
                    let upto = live.upto();
                    catch_up(svc, viewer, renderer, &mut last, upto, &tx).await
                }
                Live::Typing(t) => match svc.may_see_typing(viewer, &t) {
                    Ok(true) => {
                        match renderer.typing(&t) {
                            Some(f) => tx.send(Bytes::from(f)).await.map_err(|_| End::ClientGone),
                            None => Ok(()),
                        }
                    }
                    Ok(false) => Ok(()),
                    Err(_) => Err(End::StoreFailed),
                },
            },
            _ = keepalive.tick() => tx.send(Bytes::from_static(b": keep-alive\n\n")).await.map_err(|_| End::ClientGone),
        };
        match step {
            Ok(()) => {}
            Err(End::ClientGone) => break,
            Err(End::StoreFailed) => {
                tracing::error!("event stream ended: the store could not be read");
                break;
            }
        }
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
