//! Credentials at the edge: issuing agent tokens, browser sessions and
//! contact tokens (stored only by their hash, with the configured
//! lifetime), and resolving a presented one to whoever holds it. The
//! bearer and cookie extractors of the web layer ask these, so "which
//! credential still holds" is decided in one place.

use crate::error::ApiResult;
use crate::store::{AgentRecord, ContactRecord, TokenOwner, TokenRecord};

use super::Services;

impl Services {
    /// Issues a new agent credential, stored only by its hash with the
    /// configured lifetime: an API token (`nat_`) or a browser session
    /// (`nas_`). Returns the secret and its expiry.
    #[tracing::instrument(skip_all, fields(agent = agent_id))]
    pub async fn issue_agent_token(&self, agent_id: u64, prefix: &str) -> ApiResult<(String, i64)> {
        let (token, hash) = super::auth::new_token(prefix);
        let now = crate::domain::time::now();
        let expires_at = now + self.config.token_ttl_secs * 1_000_000;
        let rec = TokenRecord {
            owner: agent_id,
            created_at: now,
            expires_at,
            inbox_id: None,
        };
        self.store
            .insert_token(TokenOwner::Agent, hash, rec)
            .await?;
        Ok((token, expires_at))
    }

    /// Issues a new contact token (`nct_`) for the inbox the contact came
    /// through, stored only by its hash.
    #[tracing::instrument(skip_all, fields(contact = contact_id, inbox = inbox_id))]
    pub async fn issue_contact_token(&self, contact_id: u64, inbox_id: u64) -> ApiResult<String> {
        let (token, hash) = super::auth::new_token("nct_");
        let now = crate::domain::time::now();
        let expires_at = now + self.config.contact_token_ttl_secs * 1_000_000;
        let rec = TokenRecord {
            owner: contact_id,
            created_at: now,
            expires_at,
            inbox_id: Some(inbox_id),
        };
        self.store
            .insert_token(TokenOwner::Contact, hash, rec)
            .await?;
        Ok(token)
    }

    /// The active agent holding an unexpired token or session with this
    /// hash, if any (API tokens and browser sessions are the same kind of
    /// credential).
    #[tracing::instrument(skip_all)]
    pub fn agent_by_token(&self, hash: &[u8; 32]) -> ApiResult<Option<AgentRecord>> {
        let Some(rec) = self.store.token(TokenOwner::Agent, hash)? else {
            return Ok(None);
        };
        if rec.expires_at <= crate::domain::time::now() {
            return Ok(None);
        }
        Ok(self.store.agent(rec.owner)?.filter(|a| a.active))
    }

    /// The contact holding an unexpired contact token with this hash, and
    /// the inbox the token speaks for (the one it was issued in, if the
    /// contact still belongs to it; else the contact's own).
    #[tracing::instrument(skip_all)]
    pub fn contact_by_token(&self, hash: &[u8; 32]) -> ApiResult<Option<(ContactRecord, u64)>> {
        let Some(rec) = self.store.token(TokenOwner::Contact, hash)? else {
            return Ok(None);
        };
        if rec.expires_at <= crate::domain::time::now() {
            return Ok(None);
        }
        let Some(contact) = self.store.contact(rec.owner)? else {
            return Ok(None);
        };
        let inbox_id = rec
            .inbox_id
            .filter(|i| contact.belongs_to(*i))
            .unwrap_or(contact.inbox_id);
        Ok(Some((contact, inbox_id)))
    }
}
