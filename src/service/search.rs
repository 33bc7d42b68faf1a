//! Full-text search as a use case: the per-viewer rate limit, the wait
//! until the index covers what was acknowledged, and the query itself (its
//! rules of who sees what live in [`super::index`]). The API's two search
//! routes and the workspace's search page all come here.

use std::time::Duration;

use crate::error::{ApiError, ApiResult};
use crate::store::{ContactRecord, StoreError};

use super::index::{Hits, SearchFilter};
use super::realtime::Viewer;
use super::Services;

/// How long a search waits for the index to catch up with what was
/// already published, so a message is findable as soon as it was
/// acknowledged.
const CATCH_UP: Duration = Duration::from_secs(2);

impl Services {
    /// Runs a search over what `viewer` may see, once the index covers
    /// everything already published; refused past the viewer's search
    /// rate.
    #[tracing::instrument(skip_all, fields(viewer = ?viewer, limit))]
    pub async fn search(
        &self,
        viewer: Viewer,
        text: String,
        filter: SearchFilter,
        limit: usize,
        cursor: Option<String>,
    ) -> ApiResult<Hits> {
        let who = match viewer {
            Viewer::Agent { id, .. } => (0, id.get()),
            Viewer::Contact { id } => (1, id.get()),
        };
        self.limits
            .searches
            .check(&who)
            .map_err(ApiError::TooManyRequests)?;
        let target = self.store.durability().published_upto();
        self.index.wait_for(target, CATCH_UP).await;
        let (index, store) = (self.index.clone(), self.store.clone());
        tokio::task::spawn_blocking(move || {
            index.search(&store, viewer, &text, &filter, limit, cursor.as_deref())
        })
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| ApiError::from(StoreError::from(e)))
    }

    /// The contact of each hit's conversation, in order (none when gone):
    /// what the search page names a result by.
    pub fn contacts_of_hits(&self, hits: &Hits) -> ApiResult<Vec<Option<ContactRecord>>> {
        let mut out = Vec::with_capacity(hits.hits.len());
        for h in &hits.hits {
            let contact = match self.store.conversation(h.message.conversation_id)? {
                Some(c) => self.store.contact(c.contact_id)?,
                None => None,
            };
            out.push(contact);
        }
        Ok(out)
    }
}
