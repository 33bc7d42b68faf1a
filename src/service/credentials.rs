//! Credentials at the edge: issuing agent tokens, browser sessions and
//! contact tokens (stored only by their hash, with the configured
//! lifetime), and resolving a presented one to whoever holds it. The
//! bearer and cookie extractors of the web layer ask these, so "which
//! credential still holds" is decided in one place.

use crate::domain::ids::{AgentId, ContactId, InboxId};
use crate::error::ApiResult;
use crate::store::{AgentRecord, ContactRecord, TokenOwner, TokenRecord};

use super::sessions::{CredentialKind, Issued};
use super::Services;

impl Services {
    /// Stores a fresh token of `owner` by its hash, valid for `ttl_secs`;
    /// gives the secret and its expiry.
    async fn issue_token(
        &self,
        owner: TokenOwner,
        rec_owner: u64,
        inbox_id: Option<InboxId>,
        prefix: &str,
        ttl_secs: i64,
    ) -> ApiResult<(String, i64)> {
        let (token, hash) = super::auth::new_token(prefix);
        let now = crate::domain::time::now();
        let expires_at = now + ttl_secs * 1_000_000;
        let rec = TokenRecord {
            owner: rec_owner,
            created_at: now,
            expires_at,
            inbox_id,
        };
        self.store.insert_token(owner, hash, rec).await?;
        Ok((token, expires_at))
    }

    /// Issues a new agent credential, stored only by its hash with the
    /// configured lifetime: an API token (`nat_`) or a browser session
    /// (`nas_`). Returns the secret and its expiry.
    #[tracing::instrument(skip_all, fields(agent = %agent_id, kind = ?kind))]
    pub async fn issue_agent_credential(
        &self,
        agent_id: AgentId,
        kind: CredentialKind,
    ) -> ApiResult<Issued> {
        let ttl = self.config.token_ttl_secs;
        let (token, expires_at) = self
            .issue_token(TokenOwner::Agent, agent_id.get(), None, kind.prefix(), ttl)
            .await?;
        Ok(Issued { token, expires_at })
    }

    /// Issues a new contact token (`nct_`) for the inbox the contact came
    /// through, stored only by its hash.
    #[tracing::instrument(skip_all, fields(contact = %contact_id, inbox = %inbox_id))]
    pub async fn issue_contact_token(
        &self,
        contact_id: ContactId,
        inbox_id: InboxId,
    ) -> ApiResult<String> {
        let ttl = self.config.contact_token_ttl_secs;
        let (token, _) = self
            .issue_token(
                TokenOwner::Contact,
                contact_id.get(),
                Some(inbox_id),
                "nct_",
                ttl,
            )
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
        Ok(self
            .store
            .agent(AgentId::new(rec.owner))?
            .filter(|a| a.active))
    }

    /// The contact holding an unexpired contact token with this hash, and
    /// the inbox the token speaks for (the one it was issued in, if the
    /// contact still belongs to it; else the contact's own).
    #[tracing::instrument(skip_all)]
    pub fn contact_by_token(&self, hash: &[u8; 32]) -> ApiResult<Option<(ContactRecord, InboxId)>> {
        let Some(rec) = self.store.token(TokenOwner::Contact, hash)? else {
            return Ok(None);
        };
        if rec.expires_at <= crate::domain::time::now() {
            return Ok(None);
        }
        let Some(contact) = self.store.contact(ContactId::new(rec.owner))? else {
            return Ok(None);
        };
        let inbox_id = rec
            .inbox_id
            .filter(|i| contact.belongs_to(*i))
            .unwrap_or(contact.inbox_id);
        Ok(Some((contact, inbox_id)))
    }
}
