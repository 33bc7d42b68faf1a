//! Group commit: writes are gathered into batches, and one committer task
//! applies each batch in a single sled transaction and makes it durable with
//! a single flush.
//!
//! Why batches: a sled transaction costs 100 to 300 µs of CPU however little
//! it writes, and sled serialises them behind one process-wide lock, so one
//! transaction per message capped ingest at a few thousand messages a second.
//! A write now runs its closure against an in-memory [`Layer`] (reads see
//! the writes still waiting in earlier batches, then sled), and only the
//! committer touches sled: one transaction, over only the trees the batch
//! changed, per batch. A write that fails its own checks leaves nothing in
//! the batch, so it never takes its neighbours with it.
//!
//! Why one task: concurrent `flush_async()` calls can deadlock in sled
//! 0.34.7 (sled issue 1308), and one committer keeps batches, their event
//! ids and their flushes in one order. Events are published only after the
//! flush that made them durable, in log order: a client never sees an event
//! that a crash could take back, and the log has no gaps (a batch that fails
//! to apply gives its event ids back).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sled::transaction::TransactionError;
use sled::Transactional;
use tokio::sync::{broadcast, watch, Notify};

use super::{EventRecord, StoreError, Tree};
use crate::metrics;

/// Pending changes to the trees: per tree, key to `Some(value)` (stored) or
/// `None` (removed). Indexed by `Tree as usize`.
#[derive(Debug)]
pub(super) struct Layer {
    trees: Vec<HashMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self {
            trees: (0..Tree::ALL.len()).map(|_| HashMap::new()).collect(),
        }
    }
}

impl Layer {
    /// What this layer says about a key: `None` when it does not touch it,
    /// `Some(None)` when it removes it.
    pub(super) fn lookup(&self, t: Tree, key: &[u8]) -> Option<Option<&[u8]>> {
        self.trees
            .get(t as usize)
            .and_then(|m| m.get(key))
            .map(|v| v.as_deref())
    }

    /// The keys under `prefix` this layer stores (`true`) or removes
    /// (`false`).
    pub(super) fn under<'a>(
        &'a self,
        t: Tree,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], bool)> + 'a {
        self.trees
            .get(t as usize)
            .into_iter()
            .flatten()
            .filter(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_slice(), v.is_some()))
    }

    /// Records a change.
    pub(super) fn set(&mut self, t: Tree, key: &[u8], value: Option<Vec<u8>>) {
        if let Some(m) = self.trees.get_mut(t as usize) {
            m.insert(key.to_vec(), value);
        }
    }

    /// Whether the layer stores anything in tree `t`.
    pub(super) fn stores_in(&self, t: Tree) -> bool {
        self.trees
            .get(t as usize)
            .is_some_and(|m| m.values().any(Option::is_some))
    }

    /// Moves every change of `other` on top of this layer.
    fn absorb(&mut self, other: Layer) {
        for (mine, theirs) in self.trees.iter_mut().zip(other.trees) {
            if mine.is_empty() {
                *mine = theirs;
            } else {
                mine.extend(theirs);
            }
        }
    }
}

/// The writes accepted since the committer last took a batch.
#[derive(Debug, Default)]
struct Batch {
    /// The ticket every write in this batch waits for.
    ticket: u64,
    changes: Layer,
    events: Vec<Arc<EventRecord>>,
    /// The first event id of this batch (for giving ids back on failure).
    first_event_id: u64,
    writes: usize,
}

/// What writers share, behind the write lock.
pub(super) struct WriteState {
    /// The id the next event gets: the log is gapless and in commit order.
    pub(super) next_event_id: u64,
    building: Batch,
    /// The batch the committer is applying, until it is in sled.
    applying: Option<Arc<Layer>>,
}

impl WriteState {
    /// The pending layers a write must read through before sled, newest
    /// first.
    pub(super) fn layers(&self) -> [Option<&Layer>; 2] {
        [Some(&self.building.changes), self.applying.as_deref()]
    }

    /// Adds a finished write to the batch being gathered and returns the
    /// ticket to wait for.
    pub(super) fn accept(&mut self, changes: Layer, events: Vec<Arc<EventRecord>>) -> u64 {
        self.next_event_id += events.len() as u64;
        let b = &mut self.building;
        b.changes.absorb(changes);
        b.events.extend(events);
        b.writes += 1;
        b.ticket
    }
}

#[derive(Debug, Clone, Default)]
struct FlushState {
    /// Every write with a ticket up to this is durable.
    flushed: u64,
    /// The last failure: writes up to this ticket were told it failed.
    failed: Option<(u64, String)>,
}

/// The shared state between writers, the committer and event subscribers.
pub struct Durability {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    fsync_file: Option<File>,
    write: Mutex<WriteState>,
    /// Applied batches whose events wait for their flush, by ticket.
    unpublished: Mutex<VecDeque<(u64, Vec<Arc<EventRecord>>)>>,
    wake: Notify,
    state: watch::Sender<FlushState>,
    events: broadcast::Sender<Arc<EventRecord>>,
    published_upto: AtomicU64,
    stopping: AtomicBool,
    stopped: Notify,
    /// The backup in progress, if any. The committer holds this lock while
    /// it applies a batch, so a backup begins between two batches and sees
    /// each one whole or not at all.
    snapshot: Mutex<Option<Arc<Snapshot>>>,
}

/// What a backup in progress needs to see the store as it was when it
/// began: for every key a batch changed since, the value it had then
/// (`None`: it did not exist). The committer records a key's value before
/// the first batch that changes it is applied, so a reader that finds a
/// key here uses this value, and one that does not finds it unchanged.
///
/// The dump reads each tree in key order and moves a cursor with it, so a
/// pre-image recorded for a key the dump had already passed (it was read
/// unchanged) is marked and never written a second time, and nothing is
/// recorded for a tree the dump has finished: the map holds only what the
/// dump still needs.
#[derive(Debug)]
pub(super) struct Snapshot {
    trees: Vec<Mutex<TreeSnapshot>>,
}

#[derive(Debug, Default)]
struct TreeSnapshot {
    /// Key to (value at the start, already read by the dump).
    before: HashMap<Vec<u8>, (Option<sled::IVec>, bool)>,
    /// The last key the dump read.
    cursor: Option<Vec<u8>>,
    /// The dump is past this tree.
    done: bool,
}

impl Snapshot {
    fn new() -> Self {
        Self {
            trees: (0..Tree::ALL.len())
                .map(|_| Mutex::new(TreeSnapshot::default()))
                .collect(),
        }
    }

    /// Tree `t`'s state (`None` outside the `trees!` table).
    fn tree(&self, t: usize) -> Option<MutexGuard<'_, TreeSnapshot>> {
        self.trees.get(t).map(|m| match m.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        })
    }

    /// The dump reads `key` of tree `t`: moves the cursor there and
    /// returns the value the key had when the backup began, if a batch
    /// changed it since (that value is then the one to write).
    pub(super) fn read(&self, t: usize, key: &[u8]) -> Option<Option<sled::IVec>> {
        let mut s = self.tree(t)?;
        s.cursor = Some(key.to_vec());
        let entry = s.before.get_mut(key)?;
        entry.1 = true;
        Some(entry.0.clone())
    }

    /// Ends the dump of tree `t`: returns the keys that existed when the
    /// backup began but that the dump did not read (removed since), with
    /// their values then, and stops recording for the tree.
    pub(super) fn finish(&self, t: usize) -> Vec<(Vec<u8>, sled::IVec)> {
        let Some(mut s) = self.tree(t) else {
            return Vec::new();
        };
        s.done = true;
        let before = std::mem::take(&mut s.before);
        let mut out: Vec<(Vec<u8>, sled::IVec)> = before
            .into_iter()
            .filter_map(|(k, (v, read))| v.filter(|_| !read).map(|v| (k, v)))
            .collect();
        out.sort();
        out
    }

    /// Records the current value of every key `changes` is about to write.
    fn record(&self, changes: &Layer, trees: &[sled::Tree]) -> Result<(), String> {
        for (t, keys) in changes.trees.iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            let (Some(tree), Some(mut s)) = (trees.get(t), self.tree(t)) else {
                continue;
            };
            if s.done {
                continue;
            }
            for k in keys.keys() {
                if !s.before.contains_key(k) {
                    // Passed already: the dump read it as it was.
                    let read = s.cursor.as_deref().is_some_and(|c| k.as_slice() <= c);
                    let v = tree.get(k).map_err(|e| e.to_string())?;
                    s.before.insert(k.clone(), (v, read));
                }
            }
        }
        Ok(())
    }
}

/// A backup in progress; ends it when dropped.
pub(super) struct SnapshotGuard<'a> {
    durability: &'a Durability,
    pub(super) snapshot: Arc<Snapshot>,
}

impl Drop for SnapshotGuard<'_> {
    fn drop(&mut self) {
        *self.durability.snapshot_slot() = None;
    }
}

impl Durability {
    pub(super) fn new(
        db: sled::Db,
        trees: Vec<sled::Tree>,
        fsync_file: Option<File>,
        last_event_id: u64,
        buffer: usize,
    ) -> Self {
        Self {
            db,
            trees,
            fsync_file,
            write: Mutex::new(WriteState {
                next_event_id: last_event_id + 1,
                building: Batch {
                    ticket: 1,
                    first_event_id: last_event_id + 1,
                    ..Batch::default()
                },
                applying: None,
            }),
            unpublished: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            state: watch::channel(FlushState::default()).0,
            events: broadcast::channel(buffer.max(1)).0,
            published_upto: AtomicU64::new(last_event_id),
            stopping: AtomicBool::new(false),
            stopped: Notify::new(),
            snapshot: Mutex::new(None),
        }
    }

    fn snapshot_slot(&self) -> MutexGuard<'_, Option<Arc<Snapshot>>> {
        match self.snapshot.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Begins a backup: from now until the guard drops, every batch
    /// records what it overwrites. `None` when a backup is already running.
    pub(super) fn begin_snapshot(&self) -> Option<SnapshotGuard<'_>> {
        let mut slot = self.snapshot_slot();
        if slot.is_some() {
            return None;
        }
        let snapshot = Arc::new(Snapshot::new());
        *slot = Some(snapshot.clone());
        Some(SnapshotGuard {
            durability: self,
            snapshot,
        })
    }

    /// The write lock: held while a write's closure runs, so writes see
    /// each other in order and event ids stay gapless.
    pub(super) fn lock(&self) -> MutexGuard<'_, WriteState> {
        match self.write.lock() {
            Ok(s) => s,
            // A write panicked under the lock; its changes were never
            // accepted, so the state is whole.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Wakes the committer after a write was accepted.
    pub(super) fn written(&self) {
        self.wake.notify_one();
    }

    /// Waits until the write with `ticket` is durable.
    pub(super) async fn wait(&self, ticket: u64) -> Result<(), StoreError> {
        let mut rx = self.state.subscribe();
        loop {
            {
                let s = rx.borrow_and_update();
                if let Some((upto, msg)) = &s.failed {
                    if *upto >= ticket && s.flushed < ticket {
                        return Err(StoreError::Flush(msg.clone()));
                    }
                }
                if s.flushed >= ticket {
                    return Ok(());
                }
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::Flush("the flusher has stopped".into()));
            }
        }
    }

    /// Subscribes to durable events. Call [`Self::published_upto`] after
    /// subscribing: everything up to it is in the log, everything after it
    /// will arrive here (unless the receiver lags, which it reports).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.events.subscribe()
    }

    /// The newest event id that is durable and has been published.
    pub fn published_upto(&self) -> u64 {
        self.published_upto.load(Ordering::Acquire)
    }

    /// Takes the gathered batch for the committer, leaving a fresh one.
    fn take_batch(&self) -> Option<(Batch, Arc<Layer>)> {
        let mut s = self.lock();
        if s.building.writes == 0 {
            return None;
        }
        let next = Batch {
            ticket: s.building.ticket + 1,
            first_event_id: s.next_event_id,
            ..Batch::default()
        };
        let mut batch = std::mem::replace(&mut s.building, next);
        let changes = Arc::new(std::mem::take(&mut batch.changes));
        s.applying = Some(changes.clone());
        Some((batch, changes))
    }

    /// The committer loop; run it once per store on the runtime. It returns
    /// after [`Self::stop`] once everything written before is durable.
    pub async fn run_flusher(self: Arc<Self>) {
        // The newest ticket applied but not yet durable (a flush failed).
        let mut unflushed: Option<u64> = None;
        loop {
            let Some((batch, changes)) = self.take_batch() else {
                if let Some(ticket) = unflushed {
                    // Retry the flush that failed, so the writes already
                    // in sled become durable and their events go out.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if self.flush(ticket).await {
                        unflushed = None;
                    }
                    continue;
                }
                if self.stopping.load(Ordering::Acquire) {
                    break;
                }
                // A write accepted between the check and this wait leaves
                // a permit, so the wake-up is not lost.
                self.wake.notified().await;
                continue;
            };
            let ticket = batch.ticket;
            metrics::global()
                .write_batch_size
                .observe(batch.writes as f64);
            let me = self.clone();
            let applied = tokio::task::spawn_blocking(move || me.apply(&changes))
                .await
                .unwrap_or_else(|e| Err(format!("the commit task failed: {e}")));
            match applied {
                Ok(()) => {
                    self.lock().applying = None;
                    if !batch.events.is_empty() {
                        let mut q = match self.unpublished.lock() {
                            Ok(q) => q,
                            Err(poisoned) => poisoned.into_inner(),
                        };
                        q.push_back((ticket, batch.events));
                    }
                    unflushed = (!self.flush(ticket).await).then_some(ticket);
                }
                Err(msg) => self.discard(&batch, &msg),
            }
        }
        self.stopped.notify_waiters();
    }

    /// Flushes everything applied up to `ticket`; on success marks it
    /// durable and publishes its events. Returns whether it succeeded.
    async fn flush(self: &Arc<Self>, ticket: u64) -> bool {
        let started = Instant::now();
        let me = self.clone();
        let res = tokio::task::spawn_blocking(move || me.flush_blocking())
            .await
            .unwrap_or_else(|e| Err(format!("flush task failed: {e}")));
        metrics::global()
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        match res {
            Ok(()) => {
                self.state.send_modify(|s| s.flushed = ticket);
                self.publish_upto(ticket);
                true
            }
            Err(msg) => {
                tracing::error!(error = %msg, "database flush failed");
                self.state
                    .send_modify(|s| s.failed = Some((ticket, msg.clone())));
                false
            }
        }
    }

    /// A batch could not be applied: its writes fail, and so does every
    /// write gathered since (they may have read what the failed batch
    /// would have stored). Their event ids are given back.
    fn discard(&self, failed: &Batch, msg: &str) {
        tracing::error!(error = %msg, writes = failed.writes, "a write batch could not be applied");
        let upto = {
            let mut s = self.lock();
            s.applying = None;
            let next = Batch {
                ticket: s.building.ticket + 1,
                first_event_id: failed.first_event_id,
                ..Batch::default()
            };
            let dropped = std::mem::replace(&mut s.building, next);
            s.next_event_id = failed.first_event_id;
            dropped.ticket
        };
        self.state
            .send_modify(|s| s.failed = Some((upto, msg.to_owned())));
    }

    /// Applies one batch to sled atomically: one tree by itself, several in
    /// one transaction over just those trees.
    fn apply(&self, changes: &Layer) -> Result<(), String> {
        // Held until the batch is in sled: a backup begins before or after
        // it, never half-way.
        let snapshot = self.snapshot_slot();
        if let Some(s) = snapshot.as_ref() {
            s.record(changes, &self.trees)?;
        }
        let touched: Vec<usize> = changes
            .trees
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.is_empty())
            .map(|(i, _)| i)
            .collect();
        let trees: Vec<&sled::Tree> = touched.iter().filter_map(|&i| self.trees.get(i)).collect();
        match (trees.as_slice(), touched.as_slice()) {
            ([], _) => return Ok(()),
            ([tree], [i]) => {
                let mut b = sled::Batch::default();
                for (k, v) in changes.trees.get(*i).into_iter().flatten() {
                    match v {
                        Some(v) => b.insert(k.as_slice(), v.as_slice()),
                        None => b.remove(k.as_slice()),
                    }
                }
                return tree.apply_batch(b).map_err(|e| e.to_string());
            }
            _ => {}
        }
        let res: Result<(), TransactionError<StoreError>> = trees.as_slice().transaction(|views| {
            for (view, &i) in views.iter().zip(&touched) {
                for (k, v) in changes.trees.get(i).into_iter().flatten() {
                    match v {
                        Some(v) => {
                            view.insert(k.as_slice(), v.as_slice())?;
                        }
                        None => {
                            view.remove(k.as_slice())?;
                        }
                    }
                }
            }
            Ok(())
        });
        res.map_err(|e| match e {
            TransactionError::Abort(e) => e.to_string(),
            TransactionError::Storage(e) => e.to_string(),
        })
    }

    fn flush_blocking(&self) -> Result<(), String> {
        self.db.flush().map_err(|e| e.to_string())?;
        if let Some(f) = &self.fsync_file {
            f.sync_data().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn publish_upto(&self, target: u64) {
        let mut pending = match self.unpublished.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        while pending.front().is_some_and(|(t, _)| *t <= target) {
            let Some((_, events)) = pending.pop_front() else {
                break;
            };
            for ev in events {
                let id = ev.id;
                // No receivers is fine: the log keeps it for later replay.
                let _ = self.events.send(ev);
                self.published_upto.store(id.get(), Ordering::Release);
            }
        }
    }

    /// Asks the committer to finish: it applies and flushes what is
    /// pending and returns.
    pub async fn stop(&self) {
        let stopped = self.stopped.notified();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(10), stopped).await;
    }
}
