//! Running the server: the first-run setup (a one-time token, logged at
//! start and stored only as a hash, lets the first visitor create the
//! first admin) and the health check that proves the store answers.

use subtle::ConstantTimeEq;

use crate::domain::{time, Email, Invalid, Name, Password};
use crate::error::{ApiError, ApiResult};
use crate::service::agents::hash_blocking;
use crate::service::auth::hash_token;
use crate::store::AgentRecord;

use super::Services;

/// Where the setup token's hash lives in `meta` (start-up writes it, the
/// first admin's creation retires it).
pub const SETUP_TOKEN_KEY: &str = "setup_token_hash";

/// The first admin as the setup form gave it.
pub struct FirstAdmin {
    /// The one-time setup token.
    pub token: String,
    /// Display name.
    pub name: String,
    /// Sign-in email.
    pub email: String,
    /// Password.
    pub password: String,
}

impl Services {
    /// Whether `token` is the current setup token (none is once an agent
    /// exists).
    #[tracing::instrument(skip_all)]
    pub fn setup_token_valid(&self, token: &str) -> ApiResult<bool> {
        if self.store.has_agents()? {
            return Ok(false);
        }
        let Some(stored) = self.store.meta_get(SETUP_TOKEN_KEY)? else {
            return Ok(false);
        };
        Ok(stored.as_slice().ct_eq(&hash_token(token)).into())
    }

    /// Creates the first admin and retires the setup token. `Ok(None)`
    /// when the token no longer holds (another submission won the race);
    /// a field that breaks a rule is `ApiError::Invalid`.
    #[tracing::instrument(skip_all)]
    pub async fn create_first_admin(&self, given: FirstAdmin) -> ApiResult<Option<AgentRecord>> {
        if !self.setup_token_valid(&given.token)? {
            return Ok(None);
        }
        let (name, email, password) = (|| {
            Ok::<_, Invalid>((
                Name::parse(&given.name, "name")?,
                Email::parse(&given.email)?,
                Password::parse(given.password.clone())?,
            ))
        })()?;
        let hash = hash_blocking(password).await?;
        // The token is checked again and retired in the same write as the
        // admin is created, so racing submissions create exactly one admin.
        let created = self
            .store
            .create_first_admin(
                SETUP_TOKEN_KEY,
                &hash_token(&given.token),
                name.into_inner(),
                email.into_inner(),
                hash,
                time::now(),
            )
            .await?;
        if let Some(a) = &created {
            tracing::info!(agent = %a.id, "first admin created through /setup");
        }
        Ok(created)
    }

    /// Proves the database answers a read (the health check); 503 when it
    /// does not, with the cause in the log.
    #[tracing::instrument(skip_all)]
    pub fn ping(&self) -> ApiResult<()> {
        self.store.ping().map_err(|e| {
            tracing::error!(error = %e, "health check failed");
            ApiError::Unavailable
        })
    }
}
