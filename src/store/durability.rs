//! Group commit: one flusher task makes every write durable, and each writer
//! waits for the first flush that began after its write finished.
//!
//! One task, because concurrent `flush_async()` calls can deadlock in sled
//! 0.34.7 (sled issue 1308); grouped, because one flush then covers every
//! write made while the previous one ran, so durability costs one flush per
//! batch rather than one per request. Events are published only after the
//! flush that made them durable, in log order: a client never sees an event
//! that a crash could take back.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch, Notify};

use super::{EventRecord, StoreError};
use crate::metrics;

#[derive(Debug, Clone, Default)]
struct FlushState {
    /// Every write with a ticket up to this is durable.
    flushed: u64,
    /// The last failed flush: writes up to this ticket were told it failed.
    failed: Option<(u64, String)>,
}

/// The shared state between writers, the flusher and event subscribers.
pub struct Durability {
    db: sled::Db,
    fsync_file: Option<File>,
    written: AtomicU64,
    pending: Mutex<VecDeque<(u64, Vec<Arc<EventRecord>>)>>,
    wake: Notify,
    state: watch::Sender<FlushState>,
    events: broadcast::Sender<Arc<EventRecord>>,
    published_upto: AtomicU64,
    stopping: AtomicBool,
    stopped: Notify,
}

impl Durability {
    pub(super) fn new(
        db: sled::Db,
        fsync_file: Option<File>,
        last_event_id: u64,
        buffer: usize,
    ) -> Self {
        Self {
            db,
            fsync_file,
            written: AtomicU64::new(0),
            pending: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            state: watch::channel(FlushState::default()).0,
            events: broadcast::channel(buffer.max(1)).0,
            published_upto: AtomicU64::new(last_event_id),
            stopping: AtomicBool::new(false),
            stopped: Notify::new(),
        }
    }

    /// Registers a finished write (called under the write lock, so tickets
    /// and events stay in log order) and returns the ticket to wait for.
    pub(super) fn record(&self, events: Vec<Arc<EventRecord>>) -> u64 {
        let ticket = {
            let mut pending = match self.pending.lock() {
                Ok(p) => p,
                Err(poisoned) => poisoned.into_inner(),
            };
            let ticket = self.written.load(Ordering::Acquire) + 1;
            if !events.is_empty() {
                pending.push_back((ticket, events));
            }
            self.written.store(ticket, Ordering::Release);
            ticket
        };
        self.wake.notify_one();
        ticket
    }

    /// Waits until the write with `ticket` is durable.
    pub(super) async fn wait(&self, ticket: u64) -> Result<(), StoreError> {
        let mut rx = self.state.subscribe();
        loop {
            {
                let s = rx.borrow_and_update();
                if s.flushed >= ticket {
                    return Ok(());
                }
                if let Some((upto, msg)) = &s.failed {
                    if *upto >= ticket {
                        return Err(StoreError::Flush(msg.clone()));
                    }
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

    /// The flusher loop; run it once per store on the runtime. It returns
    /// after [`Self::stop`] once everything written before is flushed.
    pub async fn run_flusher(self: Arc<Self>) {
        let mut flushed = 0u64;
        loop {
            let target = self.written.load(Ordering::Acquire);
            if target <= flushed {
                if self.stopping.load(Ordering::Acquire) {
                    break;
                }
                self.wake.notified().await;
                continue;
            }
            let started = Instant::now();
            let me = self.clone();
            let res = tokio::task::spawn_blocking(move || me.flush_blocking()).await;
            metrics::global()
                .flush_seconds
                .observe(started.elapsed().as_secs_f64());
            let res = match res {
                Ok(r) => r,
                Err(e) => Err(format!("flush task failed: {e}")),
            };
            match res {
                Ok(()) => {
                    flushed = target;
                    self.state.send_modify(|s| s.flushed = target);
                    self.publish_upto(target);
                }
                Err(msg) => {
                    tracing::error!(error = %msg, "database flush failed");
                    self.state
                        .send_modify(|s| s.failed = Some((target, msg.clone())));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        self.stopped.notify_waiters();
    }

    fn flush_blocking(&self) -> Result<(), String> {
        self.db.flush().map_err(|e| e.to_string())?;
        if let Some(f) = &self.fsync_file {
            f.sync_data().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn publish_upto(&self, target: u64) {
        let mut pending = match self.pending.lock() {
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

    /// Asks the flusher to finish: it flushes what is pending and returns.
    pub async fn stop(&self) {
        let stopped = self.stopped.notified();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(10), stopped).await;
    }
}
