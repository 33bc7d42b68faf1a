//! Signing agents in and out: the email and password checked in
//! constant-ish time behind the lockouts, the credentials (API tokens and
//! browser sessions, stored only by their hash), sign-out and a password
//! change. The API and the workspace's sign-in form both come here; they
//! differ only in the credential they ask for and how they show a refusal.

use std::net::IpAddr;

use crate::domain::{time, Password};
use crate::error::{ApiError, ApiResult};
use crate::store::{AgentRecord, TokenOwner};

use super::auth::{dummy_hash, verify_password};
use super::Services;

/// Which agent credential to issue: they differ only in their prefix, so a
/// leaked secret tells where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A bearer token for the API (`nat_`).
    ApiToken,
    /// A browser session of the workspace (`nas_`), sent as a cookie.
    Session,
}

impl CredentialKind {
    /// How the log names it: `api` or `browser`.
    pub fn log_name(self) -> &'static str {
        match self {
            CredentialKind::ApiToken => "api",
            CredentialKind::Session => "browser",
        }
    }

    /// The token's prefix, which tells the two apart at a glance.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::ApiToken => "nat_",
            Self::Session => "nas_",
        }
    }
}

/// A credential just issued: the secret is shown once and never stored.
pub struct Issued {
    /// The secret itself.
    pub token: String,
    /// When it stops working (microseconds).
    pub expires_at: i64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("token", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A successful sign-in: who, and the credential that proves it (no
/// `Debug`: it holds a secret and a password hash).
pub struct SignedIn {
    /// The agent as stored.
    pub agent: AgentRecord,
    /// Its new credential.
    pub credential: Issued,
}

/// Runs CPU-heavy password work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::Internal)
}

impl Services {
    /// Checks an email and password (unknown emails are verified against a
    /// dummy hash, so they take as long), with lockouts per account and
    /// address; a new credential of `kind` on success (a fresh one each
    /// time: no session fixation). Refusals: `TooManyRequests` while
    /// locked out, `Unauthorized` for a wrong email or password.
    #[tracing::instrument(skip_all, fields(%ip, kind = ?kind))]
    pub async fn sign_in(
        &self,
        email: &str,
        password: String,
        ip: IpAddr,
        kind: CredentialKind,
    ) -> ApiResult<SignedIn> {
        let email = email.trim().to_lowercase();
        self.limits
            .login_check(&email, ip)
            .map_err(ApiError::TooManyRequests)?;
        let agent = self.store.agent_by_email(&email)?.filter(|a| a.active);
        let hash = agent
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |a| a.password_hash.clone());
        let verified = blocking(move || verify_password(&hash, &password)).await?;
        let agent = match agent {
            Some(a) if verified => a,
            _ => {
                if let Err(secs) = self.limits.login_failed(&email, ip) {
                    tracing::warn!(%email, %ip, "sign-in locked out after repeated failures");
                    return Err(ApiError::TooManyRequests(secs));
                }
                tracing::info!(%email, %ip, via = kind.log_name(), "sign-in refused");
                return Err(ApiError::Unauthorized("wrong email or password"));
            }
        };
        let credential = self.issue_agent_credential(agent.id, kind).await?;
        // One line, whichever door: the API's token or the sign-in form's
        // session (and the setup page's, which signs in the same way).
        tracing::info!(agent = %agent.id, %ip, via = kind.log_name(), "agent signed in");
        Ok(SignedIn { agent, credential })
    }

    /// Revokes one agent credential, given by its hash (sign-out).
    #[tracing::instrument(skip_all)]
    pub async fn sign_out(&self, token_hash: [u8; 32]) -> ApiResult<()> {
        Ok(self
            .store
            .revoke_token(TokenOwner::Agent, token_hash, time::now())
            .await?)
    }

    /// Changes the agent's password once the current one is proven; ends
    /// every session and token it had and hands back a fresh credential of
    /// `kind`, so the client that asked stays signed in.
    #[tracing::instrument(skip_all, fields(agent = %agent.id, kind = ?kind))]
    pub async fn change_password(
        &self,
        agent: &AgentRecord,
        current: String,
        new: String,
        kind: CredentialKind,
    ) -> ApiResult<Issued> {
        let new = Password::parse(new).map_err(|mut i| {
            i.field = "new_password";
            i
        })?;
        let hash = agent.password_hash.clone();
        if !blocking(move || verify_password(&hash, &current)).await? {
            return Err(ApiError::Forbidden("the current password is wrong"));
        }
        let new_hash = super::agents::hash_blocking(new).await?;
        self.store
            .set_agent_password(agent.id, new_hash, time::now())
            .await?;
        self.issue_agent_credential(agent.id, kind).await
    }
}
