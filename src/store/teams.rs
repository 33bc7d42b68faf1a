//! Teams of agents.

use super::keys::u64_be;
use super::{abort, decode, Result, Store, StoreError, TeamRecord, Tree};
use crate::domain::ids::TeamId;
use crate::domain::time::Micros;

impl Store {
    /// Every team, ordered by name.
    pub fn teams(&self) -> Result<Vec<TeamRecord>> {
        let mut all: Vec<TeamRecord> = self
            .tree(Tree::TeamidTeam)
            .iter()
            .values()
            .map(|v| decode(&v?))
            .collect::<Result<_>>()?;
        all.sort_by_key(|t| t.name.to_lowercase());
        Ok(all)
    }

    /// One team.
    pub fn team(&self, id: TeamId) -> Result<Option<TeamRecord>> {
        self.get(Tree::TeamidTeam, &u64_be(id))
    }

    /// Creates (`id` 0) or replaces a team; names are unique ignoring
    /// case (409), checked against the name index inside the write, so
    /// two teams created at once cannot both take a name.
    pub async fn put_team(&self, team: TeamRecord, now: Micros) -> Result<TeamRecord> {
        self.write(now, |tx| {
            let mut rec = team.clone();
            let name_key = rec.name.to_lowercase().into_bytes();
            if let Some(holder) = tx.get::<TeamId>(Tree::TeamnameTeamid, &name_key)? {
                if holder != rec.id {
                    return abort(StoreError::Conflict(format!(
                        "a team is already called {:?}",
                        rec.name
                    )));
                }
            }
            if rec.id.get() == 0 {
                rec.id = TeamId::new(tx.new_id()?);
                rec.created_at = tx.now;
            } else {
                let Some(old) = tx.get::<TeamRecord>(Tree::TeamidTeam, &u64_be(rec.id))? else {
                    return abort(StoreError::NotFound);
                };
                rec.created_at = old.created_at;
                tx.del(Tree::TeamnameTeamid, old.name.to_lowercase().as_bytes())?;
            }
            tx.put(Tree::TeamnameTeamid, &name_key, &rec.id)?;
            tx.put(Tree::TeamidTeam, &u64_be(rec.id), &rec)?;
            Ok(rec)
        })
        .await
    }

    /// Deletes a team (404 if there is none).
    pub async fn delete_team(&self, id: TeamId, now: Micros) -> Result<()> {
        self.write(now, |tx| {
            let Some(old) = tx.get::<TeamRecord>(Tree::TeamidTeam, &u64_be(id))? else {
                return abort(StoreError::NotFound);
            };
            tx.del(Tree::TeamidTeam, &u64_be(id))?;
            tx.del(Tree::TeamnameTeamid, old.name.to_lowercase().as_bytes())?;
            Ok(())
        })
        .await
    }
}
