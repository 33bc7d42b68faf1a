//! Outbound webhooks per Standard Webhooks v1 (the signature is
//! [`crate::channels::signing`], shared with the API channel): the retry
//! schedule of the contract and one delivery attempt (no redirects, the
//! SSRF guard of [`crate::channels::http`], 410 disables).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::Rng;
use serde_json::json;

use crate::channels::http::Http;
use crate::channels::signing::signed_post;
use crate::contract::Audience;
use crate::domain::ids::{EventId, WebhookAttemptId, WebhookId};
use crate::domain::time::{self, Micros};
use crate::store::{EventRecord, JobKind, JobRecord, Store, WebhookAttemptRecord, WebhookRecord};

/// Events a webhook may ask for.
pub const EVENTS: &[&str] = &[
    "message.created",
    "message.updated",
    "conversation.created",
    "conversation.updated",
    "conversation.read",
    "contact.deleted",
];

/// Waits before each retry, in seconds (the contract's schedule).
pub const RETRY_SECS: [i64; 9] = [5, 30, 120, 600, 1800, 7200, 21600, 43200, 86400];

/// A new signing secret: `whsec_` + base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill(&mut b);
    format!("whsec_{}", STANDARD.encode(b))
}

/// A secret a provider echoes back in a header (Telegram's secret_token:
/// 1-256 of A-Z a-z 0-9 _ -).
pub fn new_secret_token() -> String {
    crate::service::auth::random_string(32)
}

/// When attempt `attempts + 1` failed: the next try, with ±10% jitter, or
/// none when the schedule is used up.
pub fn next_retry(attempts: u32, now: Micros) -> Option<Micros> {
    let secs = *RETRY_SECS.get(attempts as usize)?;
    let jitter = rand::thread_rng().gen_range(-(secs * 100)..=(secs * 100)); // ±10% in ms
    Some(now + secs * 1_000_000 + jitter * 1_000)
}

/// Whether a subscription wants an event: it is active, asked for the
/// event's name, and existed when the event happened (a subscription gets
/// the events of writes after its creation, none from before).
pub fn wants(hook: &WebhookRecord, ev: &EventRecord) -> bool {
    !hook.disabled && ev.at >= hook.created_at && hook.events.iter().any(|e| e == ev.name())
}

/// The deliveries a write's events make: one [`JobKind::Webhook`] per
/// event and subscription that [`wants`] it, in event order.
pub fn deliveries(hooks: &[WebhookRecord], events: &[EventRecord]) -> Vec<JobKind> {
    events
        .iter()
        .flat_map(|ev| {
            hooks
                .iter()
                .filter(|h| wants(h, ev))
                .map(|h| JobKind::Webhook {
                    webhook_id: h.id,
                    event_id: ev.id,
                })
        })
        .collect()
}

/// Runs a [`JobKind::WebhookEvents`] job: queues the deliveries of the
/// write's events in the same write that finishes it, so each is queued
/// once (an event erased meanwhile, with its contact, is not delivered).
pub async fn route_events(
    store: &Store,
    job: &JobRecord,
    first_event: EventId,
    last_event: EventId,
) -> crate::store::Result<()> {
    let hooks = store.webhooks()?;
    let (first, last) = (first_event.get(), last_event.get());
    let count = usize::try_from(last.saturating_sub(first) + 1).unwrap_or(usize::MAX);
    let events = store.events_between(first.saturating_sub(1), last, count)?;
    let next = deliveries(&hooks, &events);
    store.hand_on_job(job, next, time::now()).await
}

/// Delivers one event to one webhook, logs the attempt and finishes or
/// reschedules the job in the same write.
pub async fn deliver(
    store: &Store,
    http: &Http,
    job: &JobRecord,
    webhook_id: WebhookId,
    event_id: EventId,
) -> crate::store::Result<()> {
    let now = time::now();
    let Some(hook) = store.webhook(webhook_id)?.filter(|w| !w.disabled) else {
        return store.job_done(job, now).await;
    };
    let Some(ev) = store
        .events_between(event_id.get() - 1, event_id.get(), 1)?
        .into_iter()
        .next()
    else {
        // The event is gone (its contact was deleted): nothing to send.
        return store.job_done(job, now).await;
    };
    let body = json!({
        "type": ev.name(),
        "timestamp": time::rfc3339(ev.at),
        "data": crate::service::present::event_data(store, &ev, Audience::Team)?,
    })
    .to_string();
    let id = format!("msg_{}_{}", ev.id, hook.id);
    let ts = now / 1_000_000;
    let mut attempt = WebhookAttemptRecord {
        id: WebhookAttemptId::new(0),
        event: ev.name().to_owned(),
        event_id: ev.id,
        attempt: job.attempts + 1,
        status_code: None,
        error: None,
        at: now,
    };
    let request = http
        .check(&hook.url)
        .map_err(|e| e.to_string())
        .and_then(|url| signed_post(&http.client, url, &hook.secret, &id, ts, body));
    let result = match request {
        Err(e) => Err(e),
        Ok(r) => r
            .send()
            .await
            .map_err(|e| format!("could not deliver: {}", e.without_url())),
    };
    let mut gone = false;
    let ok = match result {
        Ok(resp) => {
            let code = resp.status().as_u16();
            attempt.status_code = Some(code);
            gone = code == 410;
            if !resp.status().is_success() {
                attempt.error = Some(if resp.status().is_redirection() {
                    format!("answered {code}; redirects are not followed")
                } else {
                    format!("answered {code}")
                });
            }
            resp.status().is_success()
        }
        Err(e) => {
            attempt.error = Some(e);
            false
        }
    };
    let retry = if ok || gone {
        None
    } else {
        next_retry(job.attempts, now)
    };
    if !ok && !gone && retry.is_none() {
        attempt.error = attempt
            .error
            .map(|e| format!("{e}; given up after {} attempts", job.attempts + 1));
    }
    store
        .log_webhook_attempt(hook.id, attempt, job, retry, now)
        .await?;
    if gone {
        tracing::info!(webhook = %hook.id, "webhook answered 410 Gone: disabled");
        store.disable_webhook(hook.id, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_goes_to_the_active_subscriptions_that_asked_for_it_since_they_exist() {
        let hook = |id, events: &[&str], disabled, created_at| WebhookRecord {
            id: WebhookId::new(id),
            url: "https://example.com/hook".into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            secret: new_secret(),
            disabled,
            created_at,
        };
        let hooks = [
            hook(1, &["conversation.read"], false, 0),
            hook(2, &["conversation.read", "contact.deleted"], true, 0),
            hook(3, &["conversation.read"], false, 50),
            hook(4, &["contact.deleted"], false, 0),
        ];
        let ev = EventRecord {
            id: EventId::new(9),
            inbox_id: crate::domain::ids::InboxId::new(1),
            contact_id: crate::domain::ids::ContactId::new(2),
            at: 40,
            payload: crate::store::EventPayload::ConversationRead {
                conversation_id: crate::domain::ids::ConversationId::new(3),
                reader: crate::store::Reader {
                    kind: crate::domain::AuthorType::Contact,
                    id: 2,
                },
                seq: 1,
            },
            team_only: false,
        };
        let to: Vec<WebhookId> = deliveries(&hooks, &[ev])
            .into_iter()
            .filter_map(|j| match j {
                JobKind::Webhook { webhook_id, .. } => Some(webhook_id),
                _ => None,
            })
            .collect();
        assert_eq!(
            to,
            [WebhookId::new(1)],
            "not disabled, not created later, not another event"
        );
    }

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        for (i, s) in RETRY_SECS.iter().enumerate() {
            let t = next_retry(i as u32, 0).unwrap_or(0);
            assert!((t - s * 1_000_000).abs() <= s * 100_000, "{i}");
        }
        assert_eq!(next_retry(RETRY_SECS.len() as u32, 0), None);
    }
}
