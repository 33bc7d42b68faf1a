//! Who is told about what happens: outbound webhook subscriptions
//! (admins: subscribe a URL to events, list, delete, read the delivery
//! log) and the Web Push subscriptions of an agent's browsers.

use crate::domain::ids::{EventId, WebhookId};
use crate::domain::{time, Invalid};
use crate::error::{ApiError, ApiResult};
use crate::service::agents::require_admin;
use crate::service::webhooks::{new_secret, EVENTS};
use crate::service::webpush::Subscription;
use crate::store::{AgentRecord, PushSubscriptionRecord, WebhookAttemptRecord, WebhookRecord};

use super::Services;

/// The most delivery attempts the log shows.
const DELIVERY_LOG_ROWS: usize = 200;

/// A browser's `PushSubscription.toJSON()`, as the service worker sent it.
pub struct BrowserSubscription {
    /// The push service URL.
    pub endpoint: String,
    /// The browser's P-256 key (base64url).
    pub p256dh: String,
    /// The browser's auth secret (base64url).
    pub auth: String,
}

impl Services {
    /// Subscribes a URL to events (admins). Returns the subscription and
    /// its signing secret, shown this once. 422 for internal addresses
    /// (SSRF) unless allowed by `NATTER_WEBHOOKS_ALLOW_PRIVATE`.
    #[tracing::instrument(skip_all, fields(by = %actor.id))]
    pub async fn create_webhook(
        &self,
        actor: &AgentRecord,
        url: &str,
        wanted: &[String],
    ) -> ApiResult<(WebhookRecord, String)> {
        require_admin(actor)?;
        if url.len() > 2000 {
            return Err(Invalid::new("url", "url must be at most 2000 characters").into());
        }
        let url = crate::channels::http::check_url_resolving(url, self.http.allow_private)
            .await
            .map_err(|e| Invalid::new("url", e.to_string()))?;
        if wanted.is_empty() {
            return Err(
                Invalid::new("events", format!("name at least one event of {EVENTS:?}")).into(),
            );
        }
        let mut events = Vec::new();
        for e in wanted {
            if !EVENTS.contains(&e.as_str()) {
                return Err(
                    Invalid::new("events", format!("unknown event {e:?}; use {EVENTS:?}")).into(),
                );
            }
            if !events.contains(e) {
                events.push(e.clone());
            }
        }
        let secret = new_secret();
        let w = self
            .store
            .create_webhook(
                WebhookRecord {
                    id: WebhookId::new(0),
                    url: url.to_string(),
                    events,
                    secret: secret.clone(),
                    disabled: false,
                    created_at: 0,
                },
                time::now(),
            )
            .await?;
        tracing::info!(webhook = %w.id, by = %actor.id, "webhook subscribed");
        Ok((w, secret))
    }

    /// Every webhook subscription (admins).
    #[tracing::instrument(skip_all, fields(by = %actor.id))]
    pub fn webhooks(&self, actor: &AgentRecord) -> ApiResult<Vec<WebhookRecord>> {
        require_admin(actor)?;
        Ok(self.store.webhooks()?)
    }

    /// Removes a webhook subscription (admins).
    #[tracing::instrument(skip_all, fields(webhook = %id, by = %actor.id))]
    pub async fn delete_webhook(&self, actor: &AgentRecord, id: WebhookId) -> ApiResult<()> {
        require_admin(actor)?;
        Ok(self.store.delete_webhook(id, time::now()).await?)
    }

    /// A subscription's delivery attempts, newest first (admins); 404 for
    /// an unknown subscription.
    #[tracing::instrument(skip_all, fields(webhook = %id, by = %actor.id))]
    pub fn webhook_deliveries(
        &self,
        actor: &AgentRecord,
        id: WebhookId,
    ) -> ApiResult<Vec<WebhookAttemptRecord>> {
        require_admin(actor)?;
        if self.store.webhook(id)?.is_none() {
            return Err(ApiError::NotFound);
        }
        Ok(self.store.webhook_attempts(id, DELIVERY_LOG_ROWS)?)
    }

    /// Delivers one event to a subscription again, now (admins), as the
    /// deliveries page's "Retry" does: 404 unless the subscription exists
    /// and has tried that event; 409 once it is disabled (its receiver
    /// answered 410 Gone).
    #[tracing::instrument(skip_all, fields(webhook = %id, event = %event_id, by = %actor.id))]
    pub async fn retry_webhook_delivery(
        &self,
        actor: &AgentRecord,
        id: WebhookId,
        event_id: EventId,
    ) -> ApiResult<()> {
        require_admin(actor)?;
        let hook = self.store.webhook(id)?.ok_or(ApiError::NotFound)?;
        if hook.disabled {
            return Err(ApiError::Conflict(
                "this webhook is disabled: its receiver answered 410 Gone; subscribe it again"
                    .into(),
            ));
        }
        let tried = self
            .store
            .webhook_attempts(id, usize::MAX)?
            .iter()
            .any(|a| a.event_id == event_id);
        if !tried {
            return Err(ApiError::NotFound);
        }
        self.store
            .retry_webhook_delivery(id, event_id, time::now())
            .await?;
        tracing::info!(webhook = %id, event = %event_id, by = %actor.id, "webhook delivery retried");
        Ok(())
    }

    /// The VAPID public key browsers subscribe with.
    pub fn push_public_key(&self) -> String {
        self.vapid.public_key_b64url()
    }

    /// Adds a browser's push subscription for the agent, once its
    /// endpoint passes the outbound-address guard and its keys are usable.
    #[tracing::instrument(skip_all, fields(agent = %agent.id))]
    pub async fn subscribe_push(
        &self,
        agent: &AgentRecord,
        given: BrowserSubscription,
    ) -> ApiResult<()> {
        self.http
            .check(&given.endpoint)
            .map_err(|e| Invalid::new("endpoint", e.to_string()))?;
        let raw = serde_json::json!({
            "endpoint": given.endpoint,
            "keys": {"p256dh": given.p256dh, "auth": given.auth},
        })
        .to_string();
        let sub = Subscription::from_browser_json(&raw)
            .map_err(|e| Invalid::new("keys", format!("not a usable push subscription: {e}")))?;
        self.store
            .add_push_subscription(
                PushSubscriptionRecord {
                    agent_id: agent.id,
                    endpoint: sub.endpoint,
                    p256dh: sub.p256dh,
                    auth: sub.auth,
                    created_at: time::now(),
                },
                time::now(),
            )
            .await?;
        Ok(())
    }

    /// Drops one of the agent's push subscriptions by its endpoint.
    #[tracing::instrument(skip_all, fields(agent = %agent.id))]
    pub async fn unsubscribe_push(&self, agent: &AgentRecord, endpoint: &str) -> ApiResult<()> {
        self.store
            .remove_push_subscription(agent.id, endpoint, time::now())
            .await?;
        Ok(())
    }

    /// The agent's push subscriptions.
    #[tracing::instrument(skip_all, fields(agent = %agent.id))]
    pub fn push_subscriptions(
        &self,
        agent: &AgentRecord,
    ) -> ApiResult<Vec<PushSubscriptionRecord>> {
        Ok(self.store.push_subscriptions(agent.id)?)
    }
}
