//! The team's shared settings that are neither agents nor inboxes: canned
//! responses (shortcuts agents insert into replies), managed by admins on
//! the settings page and read by every agent in the workspace.

use crate::domain::ids::CannedId;
use crate::domain::{time, Invalid, Label};
use crate::error::ApiResult;
use crate::service::agents::require_admin;
use crate::store::{AgentRecord, CannedRecord};

use super::Services;

/// A shortcut and its text as an admin typed them.
pub struct CannedInput {
    /// One word, with or without the leading `/`.
    pub shortcut: String,
    /// What it inserts.
    pub text: String,
}

/// Checks a canned response: the shortcut follows the label rules (one
/// lower-case word), the text is 1 to 5,000 characters.
fn canned_fields(c: &CannedInput) -> Result<(String, String), Invalid> {
    let shortcut = Label::parse(c.shortcut.trim().trim_start_matches('/'))
        .map_err(|_| {
            Invalid::new(
                "shortcut",
                "a shortcut is one word: letters, digits, '-' or '_'",
            )
        })?
        .into_inner();
    let text = c.text.trim().to_owned();
    if text.is_empty() || text.chars().count() > 5000 {
        return Err(Invalid::new(
            "text",
            "the text must be 1 to 5,000 characters",
        ));
    }
    Ok((shortcut, text))
}

impl Services {
    /// Every canned response, for the workspace and the settings page.
    #[tracing::instrument(skip_all)]
    pub fn canned_responses(&self) -> ApiResult<Vec<CannedRecord>> {
        Ok(self.store.canned()?)
    }

    /// Adds a canned response (`id` 0) or replaces one (admins); 409 when
    /// another already has the shortcut.
    #[tracing::instrument(skip_all, fields(canned = %id, by = %actor.id))]
    pub async fn save_canned(
        &self,
        actor: &AgentRecord,
        id: CannedId,
        input: CannedInput,
    ) -> ApiResult<CannedRecord> {
        require_admin(actor)?;
        let (shortcut, text) = canned_fields(&input)?;
        Ok(self
            .store
            .put_canned(id, shortcut, text, time::now())
            .await?)
    }

    /// Removes a canned response (admins).
    #[tracing::instrument(skip_all, fields(canned = %id, by = %actor.id))]
    pub async fn delete_canned(&self, actor: &AgentRecord, id: CannedId) -> ApiResult<()> {
        require_admin(actor)?;
        self.store.delete_canned(id, time::now()).await?;
        Ok(())
    }
}
