//! Live delivery: thousands of open customer streams plus agent streams,
//! a steady rate of messages into random conversations, and for each
//! message the time until every stream that should have it has it. Then
//! catch-up: how long a reconnecting stream takes to replay 10,000 missed
//! events through `Last-Event-ID`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::{mpsc, watch, Semaphore};

use super::ceilings::message_body;
use super::http::Conn;
use super::measure::{closed_loop, Latency};
use super::natter_api::{connect, metric, Poster, Side, Thread};
use super::server::{cpu_time, own_rss, Server};
use super::sse::{MessageData, SseStream};

/// What the live test is asked to do.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LivePlan {
    /// Customer streams, each its own contact and conversation.
    pub contact_streams: usize,
    /// Agent streams watching every inbox.
    pub agent_streams: usize,
    /// Messages per second posted into random conversations.
    pub rate: u64,
    /// Seconds of posting.
    pub secs: u64,
    /// Events a reconnecting stream must replay in the catch-up test.
    pub catch_up: u64,
}

/// What the live test found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveResult {
    /// The plan, echoed.
    pub contact_streams: usize,
    /// Agent streams.
    pub agent_streams: usize,
    /// Seconds to open every stream.
    pub open_secs: f64,
    /// natter's open-stream gauge once all were open.
    pub server_gauge: f64,
    /// Messages posted.
    pub posted: u64,
    /// The rate actually achieved.
    pub rate: f64,
    /// Posts that failed (non-201 or a broken connection).
    pub post_errors: u64,
    /// The first post failure.
    pub first_post_error: Option<String>,
    /// From the post's scheduled start until the contact's stream and
    /// every agent stream have the event.
    pub delivery: Latency,
    /// The POST round trip alone (the 201 arrives after the flush).
    pub post_latency: Latency,
    /// Expected (message, stream) deliveries that never arrived.
    pub lost: u64,
    /// `message.created` events a contact stream got for a conversation
    /// that is not its own.
    pub wrong_stream: u64,
    /// Events a stream got twice or out of id order.
    pub duplicates_or_reordered: u64,
    /// Streams that ended or failed while they should have stayed open.
    pub stream_failures: u64,
    /// The first stream failure.
    pub first_stream_failure: Option<String>,
    /// natter's resident memory before the streams were opened (contacts
    /// and agents created).
    pub rss_before_streams: Option<u64>,
    /// With every stream open, before posting.
    pub rss_streams_idle: Option<u64>,
    /// Its anonymous part (`RssAnon`).
    pub rss_streams_idle_anon: Option<u64>,
    /// natter's resident memory with every stream open (after posting).
    pub rss_streams_open: Option<u64>,
    /// Its anonymous part (`RssAnon`).
    pub rss_streams_open_anon: Option<u64>,
    /// Cores natter kept busy while posting (CPU time ÷ wall time).
    pub natter_cores_posting: Option<f64>,
    /// Cores the bench kept busy meanwhile (10,000 stream readers).
    pub bench_cores_posting: Option<f64>,
    /// natter's peak resident memory so far.
    pub peak_rss: Option<u64>,
    /// The bench process's own memory with every stream open (the client
    /// side, for comparison).
    pub bench_rss_streams_open: Option<u64>,
    /// natter's "fell behind, caught up from the log" counter during the run.
    pub server_catchups: f64,
    /// An agent stream replaying `catch_up` missed events.
    pub catch_up_agent: Option<CatchUp>,
    /// A contact stream replaying `catch_up` missed events of its own, while
    /// as many events of others are interleaved in the log.
    pub catch_up_contact: Option<CatchUp>,
    /// The memory ceiling: as many streams held by the bare actix server,
    /// opened after natter's were closed.
    pub bare: Option<BareStreams>,
}

/// The same number of event streams held by the bare actix server (its
/// `GET /events`), in the same run: what the streams cost without natter.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BareStreams {
    /// Streams opened.
    pub streams: usize,
    /// Seconds to open them.
    pub open_secs: f64,
    /// The bare server's resident memory before they were opened.
    pub rss_before: Option<u64>,
    /// With every stream open, idle 1 s.
    pub rss_open: Option<u64>,
    /// Its anonymous part (`RssAnon`).
    pub rss_open_anon: Option<u64>,
    /// The allocator the bare server runs with.
    pub allocator: &'static str,
}

/// Opens `n` streams to the bare actix server with the suite's SSE client
/// (256 at a time, like natter's), reads its memory once they have been
/// open and idle for 1 s, and closes them. Called after natter's streams
/// are closed, so the bench never holds both sets of sockets at once.
pub async fn bare_streams(server: &Server, n: usize) -> Result<BareStreams, String> {
    let addr = server.addr;
    let mut out = BareStreams {
        streams: n,
        rss_before: server.rss(),
        allocator: crate::ALLOCATOR,
        ..BareStreams::default()
    };
    let opened = Instant::now();
    let gate = Arc::new(Semaphore::new(256));
    let mut opening = Vec::with_capacity(n);
    for _ in 0..n {
        let gate = gate.clone();
        opening.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate closed");
            SseStream::open(addr, "/events", "bare", None).await
        }));
    }
    let mut streams = Vec::with_capacity(n);
    for o in opening {
        let s = tokio::time::timeout(Duration::from_secs(120), o)
            .await
            .map_err(|_| "opening the bare streams stalled for 120 s".to_owned())?
            .expect("a bare stream task panicked")?;
        streams.push(s);
    }
    out.open_secs = opened.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    out.rss_open = server.rss();
    out.rss_open_anon = server.rss_anon();
    drop(streams);
    Ok(out)
}

/// One catch-up measurement.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CatchUp {
    /// Events the stream had to replay.
    pub events: u64,
    /// Log entries between `Last-Event-ID` and the last replayed one.
    pub log_span: u64,
    /// From opening the stream until the last missed event arrived.
    pub secs: f64,
    /// Whether every event came exactly once, in order, for the right
    /// conversation.
    pub complete_and_in_order: bool,
}

/// Which stream a receipt came from.
#[derive(Debug, Clone, Copy)]
enum StreamKind {
    /// A contact's stream; its conversation is `threads[i]`.
    Contact(usize),
    /// Agent stream `j`.
    Agent(usize),
}

/// What one stream saw.
#[derive(Default)]
struct StreamLog {
    /// Message id and arrival time of every `message.created`.
    receipts: Vec<(String, Instant)>,
    /// Events for a conversation that is not the stream's own.
    wrong: u64,
    /// Events whose id was not above the last one seen.
    dup_or_reorder: u64,
    /// The newest event id seen.
    last_event_id: u64,
    /// Why the stream ended early, if it did.
    failure: Option<String>,
}

/// Reads a stream until told to stop, timing every `message.created`.
async fn follow(
    mut stream: SseStream,
    own_conversation: Option<String>,
    mut stop: watch::Receiver<bool>,
    received: Arc<AtomicU64>,
) -> StreamLog {
    let mut log = StreamLog::default();
    loop {
        let frame = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            f = stream.next_frame() => f,
        };
        let at = Instant::now();
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => {
                log.failure = Some("the server ended the stream".into());
                break;
            }
            Err(e) => {
                log.failure = Some(format!("stream read failed: {e}"));
                break;
            }
        };
        if let Some(id) = frame.id {
            if id <= log.last_event_id {
                log.dup_or_reorder += 1;
            }
            log.last_event_id = log.last_event_id.max(id);
        }
        if frame.event != "message.created" {
            continue;
        }
        match serde_json::from_str::<MessageData>(&frame.data) {
            Ok(m) => {
                if own_conversation
                    .as_deref()
                    .is_some_and(|own| own != m.conversation_id)
                {
                    log.wrong += 1;
                }
                log.receipts.push((m.id, at));
                received.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                log.failure = Some(format!("bad message.created data ({e}): {}", frame.data));
            }
        }
    }
    log
}

/// One posted message.
struct Post {
    /// The id natter gave the message.
    message_id: String,
    /// Index of the conversation in `threads` (so of its contact stream).
    thread: usize,
    /// When the post was due to start: the latency's origin.
    scheduled: Instant,
}

/// Runs the live-delivery test and the catch-up test on a running natter.
/// `threads` are the conversations to stream (one contact each);
/// `agent_tokens` one token per agent stream. Every message posted here
/// adds to `stored`.
pub async fn run(
    server: &Server,
    plan: LivePlan,
    threads: Arc<Vec<Thread>>,
    agent_tokens: &[String],
    stored: Arc<AtomicU64>,
) -> Result<LiveResult, String> {
    let addr = server.addr;
    let mut out = LiveResult {
        contact_streams: threads.len(),
        agent_streams: agent_tokens.len(),
        ..LiveResult::default()
    };
    let catchups_before = metric(addr, "natter_sse_catchups_total").await?;
    out.rss_before_streams = server.rss();
    let (stop_tx, stop_rx) = watch::channel(false);
    let received = Arc::new(AtomicU64::new(0));

    // Open every stream, a few hundred connections at a time.
    let opened = Instant::now();
    let gate = Arc::new(Semaphore::new(256));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let mut followers = Vec::with_capacity(threads.len() + agent_tokens.len());
    let kinds: Vec<StreamKind> = (0..threads.len())
        .map(StreamKind::Contact)
        .chain((0..agent_tokens.len()).map(StreamKind::Agent))
        .collect();
    for kind in &kinds {
        let (path, token, own) = match *kind {
            StreamKind::Contact(i) => (
                "/api/v1/customer/events",
                threads[i].contact_token.clone(),
                Some(threads[i].conversation_id.clone()),
            ),
            StreamKind::Agent(j) => ("/api/v1/events", agent_tokens[j].clone(), None),
        };
        let gate = gate.clone();
        let ready = ready_tx.clone();
        let stop = stop_rx.clone();
        let received = received.clone();
        followers.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("gate closed");
            let stream = match SseStream::open(addr, path, &token, None).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready.send(Err(e.clone()));
                    return StreamLog {
                        failure: Some(e),
                        ..StreamLog::default()
                    };
                }
            };
            drop(permit);
            let _ = ready.send(Ok(()));
            follow(stream, own, stop, received).await
        }));
    }
    drop(ready_tx);
    let mut open_failures = 0u64;
    let mut first_open_failure = None;
    for _ in 0..kinds.len() {
        match tokio::time::timeout(Duration::from_secs(120), ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => {
                open_failures += 1;
                first_open_failure.get_or_insert(e);
            }
            _ => return Err("opening the streams stalled for 120 s".into()),
        }
    }
    out.open_secs = opened.elapsed().as_secs_f64();
    if open_failures > 0 {
        let _ = stop_tx.send(true);
        return Err(format!(
            "{open_failures} streams could not be opened: {}",
            first_open_failure.unwrap_or_default()
        ));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    out.server_gauge = metric(addr, "natter_sse_connections").await?;
    out.rss_streams_idle = server.rss();
    out.rss_streams_idle_anon = server.rss_anon();

    // Post at a steady rate into random conversations, alternating sides;
    // a pool of connections so a slow answer never delays the next post.
    let agent_token: Arc<str> = agent_tokens
        .first()
        .ok_or("the live test needs at least one agent")?
        .as_str()
        .into();
    let pool_size = 32;
    let (pool_tx, pool_rx) = async_channel(pool_size);
    for _ in 0..pool_size {
        pool_tx
            .send(connect(addr).await?)
            .await
            .map_err(|_| "connection pool closed")?;
    }
    let total_posts = plan.rate * plan.secs;
    let period = Duration::from_nanos(1_000_000_000 / plan.rate.max(1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let targets: Vec<usize> = (0..total_posts)
        .map(|_| rng.gen_range(0..threads.len()))
        .collect();
    let natter_cpu0 = server.cpu_time();
    let bench_cpu0 = cpu_time(std::process::id());
    let started = Instant::now();
    let mut posts = Vec::with_capacity(total_posts as usize);
    for (k, &thread) in targets.iter().enumerate() {
        let scheduled = started + period * k as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let pool_rx = pool_rx.clone();
        let pool_tx = pool_tx.clone();
        let threads = threads.clone();
        let agent_token = agent_token.clone();
        let stored = stored.clone();
        posts.push(tokio::spawn(async move {
            let mut conn: Conn = pool_rx.lock().await.recv().await.ok_or("pool closed")?;
            let t = &threads[thread];
            let side = if k % 2 == 0 {
                Side::Contact
            } else {
                Side::Agent
            };
            let (path, token) = match side {
                Side::Contact => (&t.customer_path, t.contact_token.as_str()),
                Side::Agent => (&t.agent_path, &*agent_token),
            };
            let r = conn
                .post_json(path, Some(token), &message_body(k as u64))
                .await;
            let acked = Instant::now();
            let _ = pool_tx.send(conn).await;
            let r = r
                .map_err(|e| format!("live post: {e}"))?
                .expect_status(201, "live post")?;
            stored.fetch_add(1, Ordering::Relaxed);
            let id = r.json("live post")?["id"]
                .as_str()
                .ok_or("live post: no message id")?
                .to_owned();
            Ok::<_, String>((
                Post {
                    message_id: id,
                    thread,
                    scheduled,
                },
                acked - scheduled,
            ))
        }));
    }
    let mut done = Vec::with_capacity(posts.len());
    let mut post_nanos = Vec::with_capacity(posts.len());
    for p in posts {
        match p.await.expect("a post task panicked") {
            Ok((post, rtt)) => {
                post_nanos.push(rtt.as_nanos() as u64);
                done.push(post);
            }
            Err(e) => {
                out.post_errors += 1;
                out.first_post_error.get_or_insert(e);
            }
        }
    }
    out.posted = done.len() as u64;
    let wall = started.elapsed().as_secs_f64();
    out.rate = done.len() as f64 / wall;
    out.natter_cores_posting = natter_cpu0
        .zip(server.cpu_time())
        .map(|(a, b)| (b.saturating_sub(a)).as_secs_f64() / wall);
    out.bench_cores_posting = bench_cpu0
        .zip(cpu_time(std::process::id()))
        .map(|(a, b)| (b.saturating_sub(a)).as_secs_f64() / wall);
    out.post_latency = Latency::from_nanos(post_nanos);

    // Wait (bounded) for every expected delivery, then stop the streams.
    let expected = out.posted * (1 + agent_tokens.len() as u64);
    let grace = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out.rss_streams_open = server.rss();
    out.rss_streams_open_anon = server.rss_anon();
    out.peak_rss = server.peak_rss();
    out.bench_rss_streams_open = own_rss();
    let _ = stop_tx.send(true);
    let mut logs = Vec::with_capacity(followers.len());
    for f in followers {
        logs.push(f.await.expect("a stream task panicked"));
    }

    // Score every post against the streams that should have it.
    let maps: Vec<HashMap<&str, Instant>> = logs
        .iter()
        .map(|l| {
            l.receipts
                .iter()
                .map(|(id, at)| (id.as_str(), *at))
                .collect()
        })
        .collect();
    let agent_base = threads.len();
    let mut delivery = Vec::with_capacity(done.len());
    for p in &done {
        let mut last: Option<Instant> = None;
        let mut complete = true;
        for idx in std::iter::once(p.thread).chain(agent_base..agent_base + agent_tokens.len()) {
            match maps[idx].get(p.message_id.as_str()) {
                Some(at) => last = Some(last.map_or(*at, |l| l.max(*at))),
                None => {
                    complete = false;
                    out.lost += 1;
                }
            }
        }
        if let (true, Some(l)) = (complete, last) {
            delivery.push(l.saturating_duration_since(p.scheduled).as_nanos() as u64);
        }
    }
    out.delivery = Latency::from_nanos(delivery);
    for l in &logs {
        out.wrong_stream += l.wrong;
        out.duplicates_or_reordered += l.dup_or_reorder;
        if let Some(f) = &l.failure {
            out.stream_failures += 1;
            out.first_stream_failure.get_or_insert(f.clone());
        }
    }
    out.server_catchups = metric(addr, "natter_sse_catchups_total").await? - catchups_before;

    // Catch-up. Every stream is closed; the log is at `resume` (the
    // newest id any agent saw, which is every event so far if none was
    // lost). Post `catch_up` messages into random conversations, then as
    // many into conversation 0, then replay as a reconnecting agent and as
    // conversation 0's contact.
    let resume = logs[agent_base..]
        .iter()
        .map(|l| l.last_event_id)
        .max()
        .unwrap_or(0);
    drop(logs);
    wait_for_streams_to_close(addr).await;
    let spread = Poster::many(
        addr,
        64,
        threads.clone(),
        &agent_token,
        Side::Agent,
        stored.clone(),
    )
    .await?;
    let r = closed_loop(spread, 0, plan.catch_up, Duration::from_secs(600)).await;
    if r.errors > 0 || r.truncated {
        return Err(format!("catch-up posts failed: {:?}", r.first_error));
    }
    let first = Arc::new(vec![threads[0].clone()]);
    let one = Poster::many(addr, 64, first, &agent_token, Side::Agent, stored.clone()).await?;
    let r = closed_loop(one, 0, plan.catch_up, Duration::from_secs(600)).await;
    if r.errors > 0 || r.truncated {
        return Err(format!("catch-up posts failed: {:?}", r.first_error));
    }
    out.catch_up_agent = Some(
        replay(
            addr,
            "/api/v1/events",
            &agent_token,
            resume,
            plan.catch_up,
            None,
        )
        .await?,
    );
    out.catch_up_contact = Some(
        replay(
            addr,
            "/api/v1/customer/events",
            &threads[0].contact_token,
            resume,
            plan.catch_up,
            Some(&threads[0].conversation_id),
        )
        .await?,
    );
    Ok(out)
}

/// Waits (at most 30 s) until natter has noticed every closed stream, so
/// the next measurement does not pay for streams that are gone.
pub async fn wait_for_streams_to_close(addr: SocketAddr) {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if metric(addr, "natter_sse_connections").await.ok() == Some(0.0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens a stream with `Last-Event-ID: resume` and times it until `want`
/// `message.created` events (of `conversation`, if given) have arrived.
async fn replay(
    addr: SocketAddr,
    path: &str,
    token: &str,
    resume: u64,
    want: u64,
    conversation: Option<&str>,
) -> Result<CatchUp, String> {
    let started = Instant::now();
    let mut s = SseStream::open(addr, path, token, Some(resume)).await?;
    let mut got = 0u64;
    let mut last_id = resume;
    let mut in_order = true;
    let mut seen = HashSet::new();
    while got < want {
        let frame = tokio::time::timeout(Duration::from_secs(60), s.next_frame())
            .await
            .map_err(|_| format!("catch-up on {path}: stalled after {got} events"))?
            .map_err(|e| format!("catch-up on {path}: {e}"))?
            .ok_or_else(|| format!("catch-up on {path}: stream ended after {got} events"))?;
        if let Some(id) = frame.id {
            in_order &= id > last_id;
            last_id = id;
        }
        if frame.event != "message.created" {
            continue;
        }
        let m: MessageData = serde_json::from_str(&frame.data)
            .map_err(|e| format!("catch-up on {path}: bad data ({e})"))?;
        if conversation.is_some_and(|c| c != m.conversation_id) {
            in_order = false;
        }
        in_order &= seen.insert(m.id);
        got += 1;
    }
    Ok(CatchUp {
        events: got,
        log_span: last_id - resume,
        secs: started.elapsed().as_secs_f64(),
        complete_and_in_order: in_order,
    })
}

/// A tiny multi-consumer channel (tokio's mpsc receiver behind a mutex):
/// the pool of posting connections.
fn async_channel<T>(size: usize) -> (mpsc::Sender<T>, Arc<tokio::sync::Mutex<mpsc::Receiver<T>>>) {
    let (tx, rx) = mpsc::channel(size);
    (tx, Arc::new(tokio::sync::Mutex::new(rx)))
}
