//! Reading the event log back for SSE replay.

use super::keys::{self, u64_be};
use super::{EventRecord, Result, Store, Tree};

impl Store {
    /// Events with ids in `(after, upto]`, at most `limit`, in order.
    pub fn events_between(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<EventRecord>> {
        if upto <= after {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for kv in self
            .tree(Tree::EventidEvent)
            .range(u64_be(after.saturating_add(1))..=u64_be(upto))
        {
            let (k, v) = kv?;
            let ev: EventRecord = super::decode(&v)?;
            if ev.id.get() != keys::read_u64(&k, 0)? {
                return Err(super::StoreError::Corrupt(format!(
                    "event {} stored under another key",
                    ev.id
                )));
            }
            out.push(ev);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}
