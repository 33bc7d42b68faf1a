//! The ceilings natter is measured against, on the same machine in the
//! same run: a bare actix-web handler (what HTTP alone costs here), the same
//! bare server holding event streams (what an open stream alone costs) and
//! a bare sled insert loop with group commit (what durability alone costs).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::web;
use tokio::sync::{watch, Notify};

use super::http::Conn;
use super::measure::{OpFuture, Worker};

/// The body every ingest request carries, bare or not, so the ceilings move
/// the same bytes as natter.
pub fn message_body(i: u64) -> Vec<u8> {
    format!(
        "{{\"body\":\"Hello! I ordered the blue one last week (order #{i}) and it has not arrived yet. Could you check where it is?\"}}"
    )
    .into_bytes()
}

/// Runs this process as the bare actix-web server: one POST route that
/// reads the body and answers 201 "ok", and `GET /events`, an event stream
/// that only holds its connection (see [`bare_events`]); with natter's
/// worker count. It logs `listening on http://ADDR` like natter so the
/// bench starts both alike.
pub fn serve_bare_actix() {
    use actix_web::{http::header, App, HttpResponse, HttpServer};

    let workers: usize = std::env::var("NATTER_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    // natter's setting and default: a keep-alive comment every 10 s.
    let keepalive = std::time::Duration::from_secs(
        std::env::var("NATTER_SSE_KEEPALIVE_SECS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(10)
            .max(1),
    );
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .route(
                    "/ok",
                    web::post()
                        .to(|_body: web::Bytes| async { HttpResponse::Created().body("ok") }),
                )
                .route(
                    "/healthz",
                    web::get().to(|| async { HttpResponse::Ok().body("ok") }),
                )
                .route(
                    "/events",
                    web::get().to(move || async move {
                        // natter's stream headers, so the answer is the same bytes.
                        HttpResponse::Ok()
                            .content_type("text/event-stream")
                            .insert_header((header::CACHE_CONTROL, "no-store"))
                            .insert_header(("X-Accel-Buffering", "no"))
                            .streaming(bare_events(keepalive))
                    }),
                )
        })
        .workers(workers)
        .bind("127.0.0.1:0")
        .expect("bare actix: bind 127.0.0.1:0");
        let addr = server.addrs()[0];
        println!("listening on http://{addr}");
        server.run().await.expect("bare actix: server failed");
    });
}

/// The least an open event stream can be in actix: natter's preamble
/// (`retry:` and a `connected` comment), then a keep-alive comment every
/// `every`, until the client goes. No task, channel or feed per stream:
/// the body is a timer polled by the connection itself, so its memory is
/// what actix and the socket need for an open streaming response.
fn bare_events(
    every: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<web::Bytes, std::convert::Infallible>> {
    use futures_util::StreamExt;
    let hello = futures_util::stream::once(async {
        Ok(web::Bytes::from_static(b"retry: 2000\n: connected\n\n"))
    });
    let start = tokio::time::Instant::now() + every;
    let ticks = futures_util::stream::unfold(
        tokio::time::interval_at(start, every),
        |mut interval| async move {
            interval.tick().await;
            Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), interval))
        },
    );
    hello.chain(ticks)
}

/// A load worker against the bare actix server.
pub struct BareActixWorker {
    /// Its keep-alive connection.
    conn: Conn,
}

impl BareActixWorker {
    /// Connects one worker.
    pub async fn connect(addr: SocketAddr) -> Result<Self, String> {
        Ok(Self {
            conn: Conn::connect(addr)
                .await
                .map_err(|e| format!("connect to bare actix: {e}"))?,
        })
    }
}

impl Worker for BareActixWorker {
    fn op(&mut self, i: u64) -> OpFuture<'_> {
        Box::pin(async move {
            let r = self
                .conn
                .post_json("/ok", None, &message_body(i))
                .await
                .map_err(|e| format!("bare actix: {e}"))?;
            r.expect_status(201, "bare actix").map(|_| ())
        })
    }
}

/// A bare sled database with natter's group commit, reimplemented here
/// without anything else natter does: one flusher task (concurrent sled
/// flushes can deadlock, sled issue 1308), and each writer waits for the
/// first flush that began after its insert.
pub struct GroupCommit {
    /// The database.
    db: sled::Db,
    /// The tree the bare inserts go to.
    tree: sled::Tree,
    /// The trees natter's message write touches, for the transaction-shaped
    /// reference (meta, conversations, messages, activity index, events).
    shaped: Vec<sled::Tree>,
    /// Writes registered so far (each writer's ticket).
    written: AtomicU64,
    /// Wakes the flusher when a write is registered.
    wake: Notify,
    /// Every write with a ticket up to this is durable.
    flushed: watch::Sender<u64>,
    /// Set by [`GroupCommit::stop`].
    stopping: AtomicBool,
    /// Flushes done, to report how many inserts each one covered.
    pub flushes: AtomicU64,
}

impl GroupCommit {
    /// Opens a fresh database in `dir` with natter's default cache (16 MiB)
    /// and starts its flusher on the current runtime.
    pub fn open(dir: &Path) -> Result<(Arc<Self>, tokio::task::JoinHandle<()>), String> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            .open()
            .map_err(|e| format!("open bare sled: {e}"))?;
        let tree = db
            .open_tree("conversationseq_message")
            .map_err(|e| format!("open bare sled tree: {e}"))?;
        let shaped = [
            "meta",
            "conversationid_conversation",
            "conversationseq_message",
            "inboxstatusactivity_conversationid",
            "eventid_event",
        ]
        .iter()
        .map(|n| db.open_tree(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("open bare sled trees: {e}"))?;
        let gc = Arc::new(Self {
            db,
            tree,
            shaped,
            written: AtomicU64::new(0),
            wake: Notify::new(),
            flushed: watch::channel(0).0,
            stopping: AtomicBool::new(false),
            flushes: AtomicU64::new(0),
        });
        let flusher = tokio::spawn(gc.clone().run_flusher());
        Ok((gc, flusher))
    }

    /// The one flusher: flushes whenever writes are pending, then tells
    /// the writers up to where everything is durable.
    async fn run_flusher(self: Arc<Self>) {
        let mut flushed = 0;
        loop {
            let target = self.written.load(Ordering::Acquire);
            if target <= flushed {
                if self.stopping.load(Ordering::Acquire) {
                    return;
                }
                self.wake.notified().await;
                continue;
            }
            let db = self.db.clone();
            let res = tokio::task::spawn_blocking(move || db.flush())
                .await
                .expect("bare sled: flush task panicked");
            if let Err(e) = res {
                // A failed flush would make every later figure meaningless.
                panic!("bare sled: flush failed: {e}");
            }
            flushed = target;
            self.flushes.fetch_add(1, Ordering::Relaxed);
            self.flushed.send_replace(target);
        }
    }

    /// Inserts one record and returns once a flush that began after the
    /// insert has finished.
    pub async fn insert_durably(&self, key: u64, value: &[u8]) -> Result<(), String> {
        self.tree
            .insert(key.to_be_bytes(), value)
            .map_err(|e| format!("bare sled insert: {e}"))?;
        let ticket = self.written.fetch_add(1, Ordering::AcqRel) + 1;
        self.wake.notify_one();
        let mut rx = self.flushed.subscribe();
        rx.wait_for(|f| *f >= ticket)
            .await
            .map_err(|_| "bare sled: the flusher stopped".to_owned())?;
        Ok(())
    }

    /// A write shaped like natter's "post a message" (not a goal ceiling, a
    /// reference that splits natter's cost into sled's and its own): one
    /// sled transaction that reads the conversation, takes an id, stores
    /// the message, rewrites the conversation, moves its activity-index key
    /// and appends the event, with values of natter's sizes, serialised by
    /// one lock like natter's writes; then the same group commit.
    pub async fn transaction_durably(&self, lock: &Mutex<u64>, i: u64) -> Result<(), String> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        use sled::Transactional;
        let conversation = (i % 1_000).to_be_bytes();
        {
            let mut event_id = lock.lock().map_err(|_| "bare sled: lock poisoned")?;
            *event_id += 1;
            let event_key = event_id.to_be_bytes();
            let res: Result<(), TransactionError<()>> = self.shaped.as_slice().transaction(|t| {
                let _old = t[1].get(conversation)?;
                let id = t[0]
                    .generate_id()
                    .map_err(ConflictableTransactionError::Storage)?;
                let key = [conversation, id.to_be_bytes()].concat();
                t[2].insert(key.as_slice(), &MESSAGE_RECORD[..])?;
                t[1].insert(&conversation, &CONVERSATION_RECORD[..])?;
                t[3].remove([conversation, id.saturating_sub(1).to_be_bytes()].concat())?;
                t[3].insert(key.as_slice(), &[][..])?;
                t[4].insert(&event_key, &EVENT_RECORD[..])?;
                Ok(())
            });
            res.map_err(|e| format!("bare sled transaction: {e:?}"))?;
        }
        let ticket = self.written.fetch_add(1, Ordering::AcqRel) + 1;
        self.wake.notify_one();
        let mut rx = self.flushed.subscribe();
        rx.wait_for(|f| *f >= ticket)
            .await
            .map_err(|_| "bare sled: the flusher stopped".to_owned())?;
        Ok(())
    }

    /// Lets the flusher finish once everything is flushed.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Sizes of natter's stored JSON records for the bench's message (about
/// 110 characters): the message, the conversation (which embeds its last
/// message twice) and the event (which embeds the message).
const MESSAGE_RECORD: [u8; 264] = [b'm'; 264];
/// See [`MESSAGE_RECORD`].
const CONVERSATION_RECORD: [u8; 834] = [b'c'; 834];
/// See [`MESSAGE_RECORD`].
const EVENT_RECORD: [u8; 379] = [b'e'; 379];

/// A load worker for the transaction-shaped reference.
pub struct SledTransactionWorker {
    /// The shared database.
    gc: Arc<GroupCommit>,
    /// The write lock (and event counter) all workers share, as in natter.
    lock: Arc<Mutex<u64>>,
}

impl SledTransactionWorker {
    /// One worker sharing the database and natter-like write lock.
    pub fn new(gc: Arc<GroupCommit>, lock: Arc<Mutex<u64>>) -> Self {
        Self { gc, lock }
    }
}

impl Worker for SledTransactionWorker {
    fn op(&mut self, i: u64) -> OpFuture<'_> {
        Box::pin(async move { self.gc.transaction_durably(&self.lock, i).await })
    }
}

/// A load worker against the bare sled group commit.
pub struct BareSledWorker {
    /// The shared database.
    gc: Arc<GroupCommit>,
}

impl BareSledWorker {
    /// One worker sharing the database.
    pub fn new(gc: Arc<GroupCommit>) -> Self {
        Self { gc }
    }
}

impl Worker for BareSledWorker {
    fn op(&mut self, i: u64) -> OpFuture<'_> {
        Box::pin(async move { self.gc.insert_durably(i, &message_body(i)).await })
    }
}
