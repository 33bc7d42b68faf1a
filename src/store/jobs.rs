//! The durable outbox: work queued in the same write as what caused it
//! (a reply to send, media to fetch, a webhook to deliver), so a crash
//! between accepting and doing loses nothing.

use super::keys::time_id;
use super::{decode, JobKind, JobRecord, Result, Store, StoreError, Tree, Tx, TxResult};
use crate::domain::ids::JobId;
use crate::domain::time::Micros;

impl Tx<'_> {
    /// Queues a job, due at `due`; it is visible once this write commits.
    pub fn enqueue(&mut self, kind: JobKind, due: Micros) -> TxResult<JobId> {
        let id = JobId::new(self.new_id()?);
        let job = JobRecord {
            id,
            kind,
            attempts: 0,
            due,
            created_at: self.now,
        };
        self.put(Tree::JobdueJob, &time_id(due, id), &job)?;
        self.jobs += 1;
        Ok(id)
    }

    /// Removes a job (done, or given up).
    pub fn finish_job(&mut self, job: &JobRecord) -> TxResult<bool> {
        self.del(Tree::JobdueJob, &time_id(job.due, job.id))
    }

    /// Moves a job to a later time after a failed attempt.
    pub fn reschedule_job(&mut self, job: &JobRecord, due: Micros) -> TxResult<()> {
        self.del(Tree::JobdueJob, &time_id(job.due, job.id))?;
        let mut next = job.clone();
        next.attempts += 1;
        next.due = due;
        self.put(Tree::JobdueJob, &time_id(due, job.id), &next)?;
        self.jobs += 1;
        Ok(())
    }
}

impl Store {
    /// Jobs due at `now`, oldest due first.
    pub fn due_jobs(&self, now: Micros, limit: usize) -> Result<Vec<JobRecord>> {
        self.tree(Tree::JobdueJob)
            .range(..time_id(now, u64::MAX))
            .values()
            .take(limit)
            .map(|v| decode(&v.map_err(StoreError::from)?))
            .collect()
    }

    /// When the first job due after `now` falls due, if any is queued
    /// (jobs due already are either running or picked up on this pass).
    pub fn next_job_due_after(&self, now: Micros) -> Result<Option<Micros>> {
        match self
            .tree(Tree::JobdueJob)
            .range(time_id(now, u64::MAX)..)
            .next()
            .transpose()?
        {
            Some((k, _)) => Ok(Some(super::keys::read_u64(&k, 0)? as i64)),
            None => Ok(None),
        }
    }

    /// How many jobs are queued (for metrics and tests).
    pub fn queued_jobs(&self) -> usize {
        self.tree(Tree::JobdueJob).len()
    }

    /// Waits until a write queues a job (or the caller's timeout).
    pub async fn jobs_queued(&self) {
        self.jobs_ready.notified().await
    }

    /// Removes a finished job on its own.
    pub async fn job_done(&self, job: &JobRecord, now: Micros) -> Result<()> {
        self.write(now, |tx| tx.finish_job(job).map(|_| ())).await
    }

    /// Reschedules a job on its own (after a temporary failure).
    pub async fn job_retry(&self, job: &JobRecord, due: Micros, now: Micros) -> Result<()> {
        self.write(now, |tx| {
            if !tx.contains(Tree::JobdueJob, &time_id(job.due, job.id))? {
                return Ok(());
            }
            tx.reschedule_job(job, due)
        })
        .await
    }
}
