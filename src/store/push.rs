//! Web Push subscriptions of agents (one per browser) and the server's
//! VAPID key.

use sha2::{Digest, Sha256};

use super::keys::{concat, u64_be};
use super::{decode, PushSubscriptionRecord, Result, Store, StoreError, Tree};
use crate::domain::ids::AgentId;
use crate::domain::time::Micros;

fn key(agent: AgentId, endpoint: &str) -> Vec<u8> {
    let h: [u8; 32] = Sha256::digest(endpoint.as_bytes()).into();
    concat(&[&u64_be(agent), &h])
}

impl Store {
    /// Adds (or refreshes) a browser's subscription.
    pub async fn add_push_subscription(
        &self,
        sub: PushSubscriptionRecord,
        now: Micros,
    ) -> Result<()> {
        self.write(now, |tx| {
            tx.put(Tree::AgentidPush, &key(sub.agent_id, &sub.endpoint), &sub)
        })
        .await
    }

    /// Removes a subscription (the browser unsubscribed, or the push
    /// service said it is gone); returns whether it existed.
    pub async fn remove_push_subscription(
        &self,
        agent: AgentId,
        endpoint: &str,
        now: Micros,
    ) -> Result<bool> {
        let k = key(agent, endpoint);
        self.write(now, |tx| tx.del(Tree::AgentidPush, &k)).await
    }

    /// An agent's subscriptions.
    pub fn push_subscriptions(&self, agent: AgentId) -> Result<Vec<PushSubscriptionRecord>> {
        self.tree(Tree::AgentidPush)
            .scan_prefix(u64_be(agent))
            .values()
            .map(|v| decode(&v.map_err(StoreError::from)?))
            .collect()
    }

    /// The agents with at least one subscription.
    pub fn agents_with_push(&self) -> Result<Vec<AgentId>> {
        let mut out: Vec<AgentId> = Vec::new();
        for k in self.tree(Tree::AgentidPush).iter().keys() {
            let id = AgentId::new(super::keys::read_u64(&k?, 0)?);
            if out.last() != Some(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The server's VAPID private key, created on first use.
    pub async fn vapid_private_key(&self, generate: impl Fn() -> Vec<u8>) -> Result<Vec<u8>> {
        self.meta_get_or_init("vapid_private_key", generate).await
    }
}
