//! Canned responses, shared by the whole team.

use super::keys::u64_be;
use super::{abort, CannedRecord, Result, Store, StoreError, Tree};
use crate::domain::ids::CannedId;

impl Store {
    /// Every canned response, ordered by shortcut.
    pub fn canned(&self) -> Result<Vec<CannedRecord>> {
        let mut all: Vec<CannedRecord> = self
            .tree(Tree::CannedidCanned)
            .iter()
            .values()
            .map(|v| super::decode(&v?))
            .collect::<Result<_>>()?;
        all.sort_by(|a, b| a.shortcut.cmp(&b.shortcut));
        Ok(all)
    }

    /// Creates (`id` 0) or replaces a canned response; shortcuts are unique.
    pub async fn put_canned(
        &self,
        id: CannedId,
        shortcut: String,
        text: String,
        now: i64,
    ) -> Result<CannedRecord> {
        let existing = self.canned()?;
        if existing
            .iter()
            .any(|c| c.shortcut == shortcut && c.id != id)
        {
            return Err(StoreError::Conflict(format!(
                "the shortcut /{shortcut} is taken"
            )));
        }
        self.write(now, |tx| {
            let rec = if id.get() == 0 {
                CannedRecord {
                    id: CannedId::new(tx.new_id()?),
                    shortcut: shortcut.clone(),
                    text: text.clone(),
                    created_at: tx.now,
                }
            } else {
                let Some(mut c) = tx.get::<CannedRecord>(Tree::CannedidCanned, &u64_be(id))? else {
                    return abort(StoreError::NotFound);
                };
                c.shortcut = shortcut.clone();
                c.text = text.clone();
                c
            };
            tx.put(Tree::CannedidCanned, &u64_be(rec.id), &rec)?;
            Ok(rec)
        })
        .await
    }

    /// Deletes a canned response; false if it did not exist.
    pub async fn delete_canned(&self, id: CannedId, now: i64) -> Result<bool> {
        self.write(now, |tx| tx.del(Tree::CannedidCanned, &u64_be(id)))
            .await
    }
}
