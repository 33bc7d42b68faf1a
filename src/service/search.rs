//! Full-text search as a use case: the per-viewer rate limit, the wait
//! until the index covers what was acknowledged, and the query itself (its
//! rules of who sees what live in [`super::index`]). The API's two search
//! routes and the workspace's search page all come here.

use std::time::Duration;

use crate::domain::Invalid;
use crate::error::{ApiError, ApiResult};
use crate::store::{ContactRecord, StoreError};

use super::index::{Hits, SearchFilter};
use super::realtime::Viewer;
use super::Services;

/// How long a search waits for the index to catch up with what was
/// already published, so a message is findable as soon as it was
/// acknowledged.
const CATCH_UP: Duration = Duration::from_secs(2);

/// The longest search text, in characters, on every surface.
pub const MAX_QUERY_CHARS: usize = 200;

/// Reads a search box the one way every surface does: trimmed; `None`
/// when nothing was typed (the API refuses that, see
/// [`required_search_text`]; the workspace page shows its "type
/// something" state); longer than [`MAX_QUERY_CHARS`] refused with the
/// same reason everywhere, never cut short.
pub fn search_text(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    let q = raw.map(str::trim).unwrap_or_default();
    if q.is_empty() {
        return Ok(None);
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(Invalid::new(
            "q",
            format!("q must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    Ok(Some(q.to_owned()))
}

/// [`search_text`] where a query is required (the API's search routes):
/// an empty box is refused too.
pub fn required_search_text(raw: Option<&str>) -> Result<String, Invalid> {
    search_text(raw)?.ok_or_else(|| Invalid::new("q", "q must not be empty"))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_box_is_trimmed_and_an_empty_one_is_no_query() {
        assert_eq!(
            search_text(Some("  refund ")),
            Ok(Some("refund".to_owned()))
        );
        assert_eq!(search_text(Some("   ")), Ok(None));
        assert_eq!(search_text(None), Ok(None));
        assert!(required_search_text(Some(" ")).is_err());
    }

    #[test]
    fn an_over_long_query_is_refused_not_cut() {
        let at_limit = "é".repeat(MAX_QUERY_CHARS);
        assert_eq!(search_text(Some(&at_limit)), Ok(Some(at_limit.clone())));
        let over = format!("{at_limit}a");
        let refused = search_text(Some(&over)).err();
        assert_eq!(refused.as_ref().map(|i| i.field), Some("q"));
        assert_eq!(required_search_text(Some(&over)).err(), refused);
    }
}
