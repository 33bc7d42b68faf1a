//! Outbound webhook subscriptions and their delivery log.

use super::keys::{pair, u64_be};
use super::{abort, decode, Result, Store, StoreError, Tree, WebhookAttemptRecord, WebhookRecord};
use crate::domain::ids::{WebhookAttemptId, WebhookId};
use crate::domain::time::Micros;

impl Store {
    /// Every subscription, oldest first.
    pub fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        self.tree(Tree::WebhookidWebhook)
            .iter()
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    /// One subscription.
    pub fn webhook(&self, id: WebhookId) -> Result<Option<WebhookRecord>> {
        self.get(Tree::WebhookidWebhook, &u64_be(id))
    }

    /// Adds a subscription; the webhook service delivers it the events
    /// of writes from now on.
    pub async fn create_webhook(&self, hook: WebhookRecord, now: Micros) -> Result<WebhookRecord> {
        let rec = self
            .write(now, |tx| {
                let mut rec = hook.clone();
                rec.id = WebhookId::new(tx.new_id()?);
                rec.created_at = tx.now;
                tx.put(Tree::WebhookidWebhook, &u64_be(rec.id), &rec)?;
                Ok(rec)
            })
            .await?;
        Ok(rec)
    }

    /// Removes a subscription and its log; queued deliveries find it gone
    /// and are dropped.
    pub async fn delete_webhook(&self, id: WebhookId, now: Micros) -> Result<()> {
        let attempts: Vec<Vec<u8>> = self
            .tree(Tree::WebhookidattemptAttempt)
            .scan_prefix(u64_be(id))
            .keys()
            .map(|k| k.map(|k| k.to_vec()).map_err(StoreError::from))
            .collect::<Result<_>>()?;
        self.write(now, |tx| {
            if !tx.del(Tree::WebhookidWebhook, &u64_be(id))? {
                return abort(StoreError::NotFound);
            }
            for k in &attempts {
                tx.del(Tree::WebhookidattemptAttempt, k)?;
            }
            Ok(())
        })
        .await
    }

    /// Turns a subscription off (the receiver answered 410 Gone).
    pub async fn disable_webhook(&self, id: WebhookId, now: Micros) -> Result<()> {
        self.write(now, |tx| {
            if let Some(mut w) = tx.get::<WebhookRecord>(Tree::WebhookidWebhook, &u64_be(id))? {
                w.disabled = true;
                tx.put(Tree::WebhookidWebhook, &u64_be(id), &w)?;
            }
            Ok(())
        })
        .await
    }

    /// Logs one attempt and, in the same write, finishes or reschedules
    /// its job.
    pub async fn log_webhook_attempt(
        &self,
        webhook_id: WebhookId,
        attempt: WebhookAttemptRecord,
        job: &super::JobRecord,
        retry_at: Option<Micros>,
        now: Micros,
    ) -> Result<()> {
        self.write(now, |tx| {
            let mut attempt = attempt.clone();
            attempt.id = WebhookAttemptId::new(tx.new_id()?);
            attempt.at = tx.now;
            if tx.contains(Tree::WebhookidWebhook, &u64_be(webhook_id))? {
                tx.put(
                    Tree::WebhookidattemptAttempt,
                    &pair(webhook_id, attempt.id),
                    &attempt,
                )?;
            }
            match retry_at {
                Some(t) => tx.reschedule_job(job, t)?,
                None => {
                    tx.finish_job(job)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Delivers an event to a subscription again, now (an admin's retry):
    /// a delivery still queued for its next try is moved to now, keeping
    /// its attempt count and `webhook-id`; one given up is queued afresh.
    /// Either way there is one delivery, never two.
    pub async fn retry_webhook_delivery(
        &self,
        webhook_id: WebhookId,
        event_id: crate::domain::ids::EventId,
        now: Micros,
    ) -> Result<()> {
        let queued: Option<(Vec<u8>, super::JobRecord)> = self
            .tree(Tree::JobdueJob)
            .iter()
            .filter_map(|kv| {
                let (k, v) = kv.ok()?;
                let job: super::JobRecord = decode(&v).ok()?;
                matches!(job.kind, super::JobKind::Webhook { webhook_id: w, event_id: e }
                    if w == webhook_id && e == event_id)
                .then(|| (k.to_vec(), job))
            })
            .next();
        self.write(now, |tx| {
            if !tx.contains(Tree::WebhookidWebhook, &u64_be(webhook_id))? {
                return abort(StoreError::NotFound);
            }
            match &queued {
                Some((key, job)) if tx.contains(Tree::JobdueJob, key)? => {
                    tx.del(Tree::JobdueJob, key)?;
                    let mut moved = job.clone();
                    moved.due = tx.now;
                    tx.put(
                        Tree::JobdueJob,
                        &super::keys::time_id(tx.now, job.id),
                        &moved,
                    )?;
                    tx.jobs += 1;
                }
                _ => {
                    tx.enqueue(
                        super::JobKind::Webhook {
                            webhook_id,
                            event_id,
                        },
                        tx.now,
                    )?;
                }
            }
            Ok(())
        })
        .await
    }

    /// A subscription's attempts, newest first.
    pub fn webhook_attempts(
        &self,
        id: WebhookId,
        limit: usize,
    ) -> Result<Vec<WebhookAttemptRecord>> {
        self.tree(Tree::WebhookidattemptAttempt)
            .scan_prefix(u64_be(id))
            .values()
            .rev()
            .take(limit)
            .map(|v| decode(&v?))
            .collect()
    }
}

impl Store {
    /// Finishes `job` and queues `next` in the same write, so work handed
    /// on is queued exactly once; a job already finished queues nothing.
    pub async fn hand_on_job(
        &self,
        job: &super::JobRecord,
        next: Vec<super::JobKind>,
        now: Micros,
    ) -> Result<()> {
        self.write(now, |tx| {
            if !tx.finish_job(job)? {
                return Ok(());
            }
            for kind in &next {
                tx.enqueue(kind.clone(), tx.now)?;
            }
            Ok(())
        })
        .await
    }
}
