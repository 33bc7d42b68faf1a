//! The agent side of conversations: which ones an agent reaches, and the
//! rules for reading, changing and answering them (used by the API and the
//! workspace alike).

use crate::error::{ApiError, ApiResult};
use crate::store::{AgentRecord, ConversationRecord};

use super::Services;

impl Services {
    /// The conversation if the agent may see its inbox; 404 otherwise, so
    /// nobody learns that it exists.
    pub fn visible_conversation(
        &self,
        agent: &AgentRecord,
        id: u64,
    ) -> ApiResult<ConversationRecord> {
        let c = self.store.conversation(id)?.ok_or(ApiError::NotFound)?;
        if agent.role == crate::domain::Role::Admin || self.store.is_member(c.inbox_id, agent.id)? {
            Ok(c)
        } else {
            Err(ApiError::NotFound)
        }
    }
}
