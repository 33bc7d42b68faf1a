//! Web Push to agents away from the desk: follows the durable event feed
//! and, for a new conversation or a customer's reply in a conversation
//! assigned to an agent, sends an encrypted notification (RFC 8291, VAPID)
//! to each of that agent's subscribed browsers. Notifications are best
//! effort: a push service that says a subscription is gone (404/410) has
//! it removed; other failures are logged.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;

use super::webpush::{self, Subscription, VapidKeys};
use crate::channels::http::Http;
use crate::domain::ids::ConversationId;
use crate::domain::time;
use crate::domain::AuthorType;
use crate::domain::Role;
use crate::store::{AgentRecord, EventPayload, EventRecord, Store};

/// What the push worker needs.
pub struct Pusher {
    /// The database.
    pub store: Arc<Store>,
    /// Calls out (push services are ordinary HTTPS endpoints).
    pub http: Http,
    /// The server's VAPID key.
    pub keys: Arc<VapidKeys>,
    /// `mailto:` or `https:` contact for push services.
    pub subject: String,
}

/// The VAPID contact: the base URL when it is https, else a mailto.
pub fn subject_for(base_url: &str) -> String {
    if base_url.starts_with("https://") {
        base_url.to_owned()
    } else {
        let host = base_url
            .split("://")
            .nth(1)
            .and_then(|h| h.split([':', '/']).next())
            .filter(|h| !h.is_empty())
            .unwrap_or("localhost");
        format!("mailto:natter@{host}")
    }
}

impl Pusher {
    /// Runs until shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut events = self.store.durability().subscribe();
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                r = events.recv() => match r {
                    Ok(ev) => {
                        if let Err(e) = self.on_event(&ev).await {
                            tracing::warn!(error = %e, "push notification failed");
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "push worker fell behind; some notifications skipped");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    }

    /// Who gets what for one event.
    async fn on_event(&self, ev: &EventRecord) -> crate::store::Result<()> {
        let (conversation_id, title, body, want): (
            ConversationId,
            String,
            String,
            fn(&AgentRecord) -> bool,
        ) = match &ev.payload {
            EventPayload::ConversationCreated { conversation } => (
                conversation.id,
                "New conversation".to_owned(),
                conversation
                    .last_message
                    .as_ref()
                    .map(|m| m.body.chars().take(140).collect())
                    .unwrap_or_default(),
                |a| a.push_new_conversations,
            ),
            EventPayload::MessageCreated { message }
                if message.author.kind == AuthorType::Contact && message.seq > 1 =>
            {
                (
                    message.conversation_id,
                    format!(
                        "{} replied",
                        message.author.name.as_deref().unwrap_or("The customer")
                    ),
                    message.body.chars().take(140).collect(),
                    |a| a.push_replies,
                )
            }
            EventPayload::SlaAlert {
                conversation,
                breached,
            } => (
                conversation.id,
                if *breached {
                    "SLA missed".to_owned()
                } else {
                    "SLA deadline near".to_owned()
                },
                conversation
                    .last_public()
                    .map(|m| m.body.chars().take(140).collect())
                    .unwrap_or_default(),
                |_| true,
            ),
            _ => return Ok(()),
        };
        let agents = self.store.agents_with_push()?;
        if agents.is_empty() {
            return Ok(());
        }
        let Some(conv) = self.store.conversation(conversation_id)? else {
            return Ok(());
        };
        // A new conversation and an SLA alert concern everyone who may
        // see the inbox; a reply, its assignee.
        let new_conversation = matches!(
            ev.payload,
            EventPayload::ConversationCreated { .. } | EventPayload::SlaAlert { .. }
        );
        for id in agents {
            let Some(a) = self.store.agent(id)? else {
                continue;
            };
            if !a.active || !want(&a) {
                continue;
            }
            let may_see = a.role == Role::Admin || self.store.is_member(conv.inbox_id, a.id)?;
            let concerned = if new_conversation {
                may_see
            } else {
                may_see && conv.assignee_id == Some(a.id)
            };
            if !concerned {
                continue;
            }
            let payload = json!({
                "title": title,
                "body": body,
                "url": format!("/conversations/{}", conv.id),
                "tag": format!("conversation-{}", conv.id),
            })
            .to_string();
            for sub in self.store.push_subscriptions(a.id)? {
                self.send(&sub, payload.as_bytes()).await?;
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        rec: &crate::store::PushSubscriptionRecord,
        payload: &[u8],
    ) -> crate::store::Result<()> {
        let sub = Subscription {
            endpoint: rec.endpoint.clone(),
            p256dh: rec.p256dh.clone(),
            auth: rec.auth.clone(),
        };
        let Ok(url) = self.http.check(&rec.endpoint) else {
            return Ok(());
        };
        let now = (time::now() / 1_000_000).max(0) as u64;
        let (body, headers) = match (
            webpush::encrypt(&sub, payload),
            webpush::vapid_headers(&self.keys, &rec.endpoint, &self.subject, 86_400, now),
        ) {
            (Ok(b), Ok(h)) => (b, h),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(agent = %rec.agent_id, error = %e, "cannot build a push message");
                return Ok(());
            }
        };
        let mut req = self.http.client.post(url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(r) if r.status().as_u16() == 404 || r.status().as_u16() == 410 => {
                tracing::info!(agent = %rec.agent_id, "push subscription gone; removed");
                self.store
                    .remove_push_subscription(rec.agent_id, &rec.endpoint, time::now())
                    .await?;
            }
            Ok(r) if !r.status().is_success() => {
                tracing::warn!(agent = %rec.agent_id, status = %r.status(), "push service refused a message");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(agent = %rec.agent_id, error = %e.without_url(), "push service unreachable");
            }
        }
        Ok(())
    }
}
