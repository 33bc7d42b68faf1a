//! The load benchmark of issues 7 and 13: natter measured side by side
//! with this machine's own ceilings, in one run, so the ratios hold on a
//! noisy box, and each goal of issue 13 judged against them.
//!
//! `cargo bench --bench load` builds the release binary, starts it on a
//! fresh data folder and drives it with the Rust load generator in
//! `load/`: ceilings (bare actix, bare sled group commit), durable ingest,
//! pages and growth at three history sizes, live delivery to 10,000
//! streams (and the same streams on the bare server), catch-up, memory,
//! the search index's share of the CPU, start time, binary and data
//! folder size. It prints
//! markdown tables (pasted into BENCHMARKS.md) and writes every figure as
//! JSON. `NATTER_BENCH_QUICK=1` (or `-- --quick`) runs smaller numbers in
//! a couple of minutes. See BENCHMARKS.md for the method.

// Test and benchmark code may unwrap: a failure here is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The parts of the suite, one file each under `benches/load/`.
mod load {
    pub mod ceilings;
    pub mod http;
    pub mod live;
    pub mod measure;
    pub mod natter_api;
    pub mod report;
    pub mod server;
    pub mod sse;
}

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use load::ceilings::{BareActixWorker, BareSledWorker, GroupCommit, SledTransactionWorker};
use load::live::{self as live_test, LivePlan};
use load::measure::{closed_loop, Run};
use load::natter_api::{self as api, Auth, Expect, PageReader, Poster, Side, Thread};
use load::report::{Fill, Ingest, Measured, Page, Report, Stage, StartTimes};
use load::server::{cpu_time, Server, ThreadCpu, ADMIN_EMAIL, ADMIN_PASSWORD};

/// jemalloc, as natter's binary has (src/main.rs), so that the bare actix
/// server this binary becomes (and the in-process sled ceilings) allocate
/// as natter does: a memory ceiling under another allocator would measure
/// the allocator.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The allocator of this binary, for the report.
pub const ALLOCATOR: &str = if cfg!(target_env = "msvc") {
    "the system allocator"
} else {
    "jemalloc (tikv-jemallocator, as natter)"
};

/// The environment variable that turns this binary into a helper server.
pub const ROLE_VAR: &str = "NATTER_BENCH_ROLE";
/// Its value for the bare actix ceiling.
pub const ROLE_BARE_ACTIX: &str = "bare-actix";

/// Connections of every closed-loop load (the 64).
const CONCURRENCY: usize = 64;
/// Conversations the "spread" workloads and the fill post into.
const SPREAD: usize = 1_000;
/// Messages in the conversation whose page is measured.
const PAGE_MESSAGES: usize = 500;
/// Conversations on the inbox-list page (the API's default page).
const LIST_PAGE: usize = 100;

/// The sizes of one run: full (the numbers) or quick.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    /// `full` or `quick`.
    pub mode: &'static str,
    /// Stored-message counts at which ingest and pages are measured.
    pub stages: Vec<u64>,
    /// Measured requests per ingest workload (after `ingest_warmup`).
    pub ingest: u64,
    /// Unmeasured warm-up requests per ingest workload.
    pub ingest_warmup: u64,
    /// Measured requests against the bare actix ceiling.
    pub actix: u64,
    /// Measured inserts against the bare sled ceiling.
    pub sled: u64,
    /// Measured writes of the natter-shaped sled transaction reference.
    pub sled_shaped: u64,
    /// Measured reads per page.
    pub pages: u64,
    /// Starts timed on an empty and on the largest data folder.
    pub start_repeats: usize,
    /// The live-delivery test.
    pub live: LivePlan,
}

impl Plan {
    /// The numbers, or smaller ones for a run of a few minutes.
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                mode: "quick",
                stages: vec![5_000, 20_000, 60_000],
                ingest: 2_000,
                ingest_warmup: 200,
                actix: 60_000,
                sled: 40_000,
                sled_shaped: 5_000,
                pages: 200,
                start_repeats: 3,
                live: LivePlan {
                    contact_streams: 10_000,
                    agent_streams: 20,
                    rate: 200,
                    secs: 10,
                    catch_up: 10_000,
                },
            }
        } else {
            Self {
                mode: "full",
                stages: vec![10_000, 100_000, 1_000_000],
                ingest: 10_000,
                ingest_warmup: 1_000,
                actix: 300_000,
                sled: 200_000,
                sled_shaped: 20_000,
                pages: 1_000,
                start_repeats: 5,
                live: LivePlan {
                    contact_streams: 10_000,
                    agent_streams: 20,
                    rate: 200,
                    secs: 30,
                    catch_up: 10_000,
                },
            }
        }
    }
}

fn main() {
    if std::env::var(ROLE_VAR).as_deref() == Ok(ROLE_BARE_ACTIX) {
        load::ceilings::serve_bare_actix();
        return;
    }
    let quick = std::env::var("NATTER_BENCH_QUICK").is_ok_and(|v| v == "1")
        || std::env::args().any(|a| a == "--quick");
    let plan = Plan::new(quick);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot start the load generator's runtime");
    let mut report = Report::new(plan.clone(), quick);
    eprintln!(
        "natter load benchmark ({} run); progress on stderr, tables on stdout",
        plan.mode
    );
    let started = Instant::now();
    if let Err(e) = rt.block_on(run(&plan, &mut report)) {
        eprintln!("benchmark failed: {e}");
        report.error = Some(e);
    }
    report.total_secs = started.elapsed().as_secs_f64();
    report.evaluate_goals();
    let markdown = report.markdown();
    println!("{markdown}");
    match report.write_json() {
        Ok(path) => eprintln!("results written to {}", path.display()),
        Err(e) => eprintln!("could not write the JSON results: {e}"),
    }
    if std::env::var("NATTER_BENCH_RECORD").is_ok_and(|v| v == "1") {
        match report.append_to_benchmarks_md(&markdown) {
            Ok(path) => eprintln!("run appended to {}", path.display()),
            Err(e) => eprintln!("could not append to BENCHMARKS.md: {e}"),
        }
    }
    if report.error.is_some() || report.total_errors() > 0 {
        std::process::exit(1);
    }
}

/// Prints a progress line with the time since the start of the run.
fn progress(t0: Instant, what: &str) {
    eprintln!("[{:>7.1}s] {what}", t0.elapsed().as_secs_f64());
}

/// What the stages share: the running natter and its fixtures.
struct Ctx<'a> {
    /// The sizes of this run.
    plan: &'a Plan,
    /// When the run started, for progress lines.
    t0: Instant,
    /// The natter under test.
    natter: Server,
    /// The bare actix ceiling.
    actix: Server,
    /// Scratch folder for the bare sled databases.
    scratch: &'a Path,
    /// The admin's API token.
    admin_token: String,
    /// The admin's browser session, if this build has pages.
    session_cookie: Option<String>,
    /// The 1,000 conversations the spread workloads and the fill use.
    spread: Arc<Vec<Thread>>,
    /// The one conversation of the single-conversation workloads.
    single: Arc<Vec<Thread>>,
    /// The conversation with 500 messages whose page is read.
    page_thread: Thread,
    /// Messages stored so far (every 201 counts).
    stored: Arc<AtomicU64>,
    /// Open conversations in the inbox.
    open_conversations: u64,
}

/// The whole run in order: start times, setup, the stages (with the live
/// test before the last), memory after the history, restarts. Figures land
/// in `report` as they are measured, so a failure keeps what came before.
async fn run(plan: &Plan, report: &mut Report) -> Result<(), String> {
    let t0 = Instant::now();
    let scratch = tempfile::Builder::new()
        .prefix("natter-bench-")
        .tempdir()
        .map_err(|e| format!("scratch folder: {e}"))?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_natter"));
    report.memory.binary_bytes = std::fs::metadata(&bin).map(|m| m.len()).ok();
    report.memory.binary_stripped_bytes = stripped_size(&bin, scratch.path());

    // Start time and idle memory on empty folders, without the bootstrap
    // admin (no password hashing at start).
    progress(t0, "timing starts on empty data folders");
    let mut empty = Vec::new();
    for k in 0..plan.start_repeats {
        let s = Server::natter(&scratch.path().join(format!("empty-{k}")), false).await?;
        empty.push(s.start_time);
        if k == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            report.memory.rss_idle_empty = s.rss();
        }
        s.stop().await.map_err(|e| format!("stop natter: {e}"))?;
    }
    report.memory.start_empty = Some(StartTimes::from(&empty));

    progress(t0, "starting the bare actix ceiling and natter");
    let actix = Server::bare_actix(2).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    report.memory.rss_bare_actix_idle = actix.rss();
    let data = scratch.path().join("data");
    let natter = Server::natter(&data, true).await?;
    report.memory.start_with_admin_bootstrap_ms = Some(ms(natter.start_time));
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.memory.rss_idle_after_start = natter.rss();
    report.memory.rss_idle_after_start_anon = natter.rss_anon();

    // Idle after setup (the admin exists) and the admin's first sign-in
    // (one argon2 verification): issue 13's idle figure.
    let mut c = api::connect(natter.addr).await?;
    let admin_token = api::login(&mut c, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.memory.rss_idle_after_sign_in = natter.rss();
    report.memory.rss_idle_after_sign_in_anon = natter.rss_anon();

    progress(t0, "setting up contacts and conversations");
    let widget_key = api::widget_key(&mut c, &admin_token).await?;
    let stored = Arc::new(AtomicU64::new(0));
    let (spread, _) = api::create_threads(natter.addr, &widget_key, SPREAD, CONCURRENCY).await?;
    let (mut fixtures, _) = api::create_threads(natter.addr, &widget_key, 2, 2).await?;
    stored.fetch_add(SPREAD as u64 + 2, Ordering::Relaxed);
    let page_thread = fixtures.pop().ok_or("no page conversation")?;
    let single = fixtures.pop().ok_or("no single conversation")?;
    let posters = Poster::many(
        natter.addr,
        8,
        Arc::new(vec![page_thread.clone()]),
        &admin_token,
        Side::Agent,
        stored.clone(),
    )
    .await?;
    let r = closed_loop(
        posters,
        0,
        PAGE_MESSAGES as u64 - 1,
        Duration::from_secs(300),
    )
    .await;
    check("filling the page conversation", &r)?;
    // The agent pages need a browser session; a build without them
    // answers the sign-in form with 404 and only the API is measured.
    let session_cookie = match api::page_session(&mut c, ADMIN_EMAIL, ADMIN_PASSWORD).await {
        Ok(cookie) => Some(cookie),
        Err(e) if e.contains("got 404") => None,
        Err(e) => return Err(e),
    };
    report.memory.rss_after_setup = natter.rss();

    let mut ctx = Ctx {
        plan,
        t0,
        natter,
        actix,
        scratch: scratch.path(),
        admin_token,
        session_cookie,
        spread: Arc::new(spread),
        single: Arc::new(vec![single]),
        page_thread,
        stored,
        open_conversations: SPREAD as u64 + 2,
    };

    let last = plan.stages.len().saturating_sub(1);
    for (k, &target) in plan.stages.iter().enumerate() {
        if k == last {
            live(&mut ctx, &widget_key, report).await?;
        }
        let stage = stage(&mut ctx, target).await?;
        report.stages.push(stage);
    }

    progress(t0, "memory after the largest history");
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.memory.stored_messages_at_end = ctx.stored.load(Ordering::Relaxed);
    report.memory.rss_after_history = ctx.natter.rss();
    report.memory.rss_after_history_anon = ctx.natter.rss_anon();
    report.memory.peak_rss = ctx.natter.peak_rss();
    let Ctx { natter, actix, .. } = ctx;
    let stop = natter
        .stop()
        .await
        .map_err(|e| format!("stop natter: {e}"))?;
    report.memory.stop_ms = Some(ms(stop));
    report.memory.data_folder_bytes = Some(folder_size(&data));

    progress(t0, "timing restarts on the large data folder");
    let mut large = Vec::new();
    for k in 0..plan.start_repeats {
        let s = Server::natter(&data, false).await?;
        large.push(s.start_time);
        if k == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            report.memory.rss_idle_after_restart = s.rss();
            report.memory.rss_idle_after_restart_anon = s.rss_anon();
        }
        s.stop().await.map_err(|e| format!("stop natter: {e}"))?;
    }
    report.memory.start_large = Some(StartTimes::from(&large));
    report.memory.start_large_messages = report.memory.stored_messages_at_end;
    drop(actix);
    progress(t0, "done");
    Ok(())
}

/// One growth stage: fill the history up to `target` messages, then
/// measure the ceilings, the four ingest workloads and the pages.
async fn stage(ctx: &mut Ctx<'_>, target: u64) -> Result<Stage, String> {
    let addr = ctx.natter.addr;
    let have = ctx.stored.load(Ordering::Relaxed);
    let mut fill = None;
    if target > have {
        progress(
            ctx.t0,
            &format!("filling the history from {have} to {target} messages"),
        );
        let posters = Poster::many(
            addr,
            CONCURRENCY,
            ctx.spread.clone(),
            &ctx.admin_token,
            Side::Agent,
            ctx.stored.clone(),
        )
        .await?;
        let r = closed_loop(posters, 0, target - have, Duration::from_secs(3 * 3600)).await;
        check("filling the history", &r)?;
        fill = Some(Fill {
            from: have,
            to: target,
            secs: r.secs,
            per_sec: r.per_sec,
        });
    }
    let stored_at_start = ctx.stored.load(Ordering::Relaxed);
    let pages = pages(ctx).await?;
    progress(
        ctx.t0,
        &format!("stage at {stored_at_start} stored messages: ceilings"),
    );
    let plan = ctx.plan;
    let warm = plan.ingest_warmup;

    let mut actix_workers = Vec::new();
    for _ in 0..CONCURRENCY {
        actix_workers.push(BareActixWorker::connect(ctx.actix.addr).await?);
    }
    let cost = Cost::start(Some(&ctx.actix));
    let run = closed_loop(
        actix_workers,
        plan.actix / 10,
        plan.actix,
        Duration::from_secs(300),
    )
    .await;
    check("bare actix", &run)?;
    let bare_actix = cost.finish(run, plan.actix / 10, None);

    let sled_dir = ctx.scratch.join(format!("bare-sled-{target}"));
    let (gc, flusher) = GroupCommit::open(&sled_dir)?;
    let sled_workers = (0..CONCURRENCY)
        .map(|_| BareSledWorker::new(gc.clone()))
        .collect();
    // In-process: the bench's own CPU is the "server" CPU here.
    let cpu0 = cpu_time(std::process::id());
    let run = closed_loop(
        sled_workers,
        plan.sled / 10,
        plan.sled,
        Duration::from_secs(300),
    )
    .await;
    let cpu1 = cpu_time(std::process::id());
    gc.stop();
    let _ = flusher.await;
    let ops = (plan.sled / 10 + run.count) as f64;
    let flushes = gc.flushes.load(Ordering::Relaxed) as f64;
    drop(gc);
    let _ = std::fs::remove_dir_all(&sled_dir);
    check("bare sled", &run)?;
    let bare_sled = Measured {
        server_cpu_us_per_op: cpu0
            .zip(cpu1)
            .map(|(a, b)| (b - a).as_secs_f64() * 1e6 / ops),
        bench_cpu_us_per_op: None,
        ops_per_flush: Some(ops / flushes.max(1.0)),
        run,
    };

    // The reference shaped like natter's own write, in a fresh database.
    let shaped_dir = ctx.scratch.join(format!("sled-shaped-{target}"));
    let (gc, flusher) = GroupCommit::open(&shaped_dir)?;
    let lock = Arc::new(std::sync::Mutex::new(0u64));
    let shaped_workers = (0..CONCURRENCY)
        .map(|_| SledTransactionWorker::new(gc.clone(), lock.clone()))
        .collect();
    let cpu0 = cpu_time(std::process::id());
    let run = closed_loop(
        shaped_workers,
        plan.sled_shaped / 10,
        plan.sled_shaped,
        Duration::from_secs(300),
    )
    .await;
    let cpu1 = cpu_time(std::process::id());
    gc.stop();
    let _ = flusher.await;
    let ops = (plan.sled_shaped / 10 + run.count) as f64;
    let flushes = gc.flushes.load(Ordering::Relaxed) as f64;
    drop(gc);
    let _ = std::fs::remove_dir_all(&shaped_dir);
    check("sled transaction reference", &run)?;
    let sled_shaped = Measured {
        server_cpu_us_per_op: cpu0
            .zip(cpu1)
            .map(|(a, b)| (b - a).as_secs_f64() * 1e6 / ops),
        bench_cpu_us_per_op: None,
        ops_per_flush: Some(ops / flushes.max(1.0)),
        run,
    };

    let mut ingest = Vec::new();
    for (side, conversations) in [
        (Side::Agent, 1usize),
        (Side::Agent, SPREAD),
        (Side::Contact, 1),
        (Side::Contact, SPREAD),
    ] {
        progress(
            ctx.t0,
            &format!("ingest: {side:?} into {conversations} conversation(s)"),
        );
        let threads = if conversations == 1 {
            ctx.single.clone()
        } else {
            ctx.spread.clone()
        };
        let posters = Poster::many(
            addr,
            CONCURRENCY,
            threads,
            &ctx.admin_token,
            side,
            ctx.stored.clone(),
        )
        .await?;
        let stored_before = ctx.stored.load(Ordering::Relaxed);
        let flushes0 = api::metric(addr, "natter_flush_seconds_count").await?;
        let threads_cpu = ThreadCpu::start(ctx.natter.pid());
        let cost = Cost::start(Some(&ctx.natter));
        let run = closed_loop(posters, warm, plan.ingest, Duration::from_secs(600)).await;
        let index_cpu = threads_cpu.finish();
        let flushes1 = api::metric(addr, "natter_flush_seconds_count").await?;
        let m = cost.finish(run, warm, Some(flushes1 - flushes0));
        ingest.push(Ingest {
            index_cpu,
            side,
            conversations,
            stored_before,
            per_actix: m.run.per_sec / bare_actix.run.per_sec.max(1e-9),
            per_sled: m.run.per_sec / bare_sled.run.per_sec.max(1e-9),
            m,
        });
    }

    Ok(Stage {
        target,
        stored_at_start,
        stored_at_end: ctx.stored.load(Ordering::Relaxed),
        fill,
        bare_actix,
        bare_sled,
        sled_shaped,
        ingest,
        pages,
        rss_after: ctx.natter.rss(),
    })
}

/// Reads each page again and again on one connection: the agent pages
/// (if this build has them) and their JSON API counterparts.
async fn pages(ctx: &Ctx<'_>) -> Result<Vec<Page>, String> {
    progress(ctx.t0, "pages");
    let plan = ctx.plan;
    let conv = &ctx.page_thread.conversation_id;
    let bearer = Auth::Bearer(ctx.admin_token.clone());
    let mut list: Vec<(&str, String, Auth, Expect)> = Vec::new();
    if let Some(cookie) = &ctx.session_cookie {
        let cookie = Auth::Cookie(cookie.clone());
        list.push((
            "agent inbox page",
            "/inbox".into(),
            cookie.clone(),
            Expect::Marker("data-conversation-id="),
        ));
        list.push((
            "conversation page (500 messages)",
            format!("/conversations/{conv}"),
            cookie,
            Expect::Marker("data-message-id="),
        ));
    }
    list.push((
        "API: conversation list",
        format!("/api/v1/conversations?limit={LIST_PAGE}"),
        bearer.clone(),
        Expect::JsonArray("conversations", LIST_PAGE),
    ));
    list.push((
        "API: 500 messages",
        format!("/api/v1/conversations/{conv}/messages?limit={PAGE_MESSAGES}"),
        bearer,
        Expect::JsonArray("messages", PAGE_MESSAGES),
    ));
    let mut pages = Vec::new();
    for (name, path, auth, expect) in list {
        let reader = PageReader::new(ctx.natter.addr, path.clone(), auth, expect).await?;
        let bytes = reader.bytes.clone();
        let items = reader.items.clone();
        let run = closed_loop(
            vec![reader],
            plan.pages / 10,
            plan.pages,
            Duration::from_secs(300),
        )
        .await;
        check(name, &run)?;
        pages.push(Page {
            name: name.to_owned(),
            path,
            open_conversations: ctx.open_conversations,
            bytes: bytes.load(Ordering::Relaxed),
            items: items.load(Ordering::Relaxed),
            run,
        });
    }
    Ok(pages)
}

/// The live-delivery and catch-up test, on its own contacts.
async fn live(ctx: &mut Ctx<'_>, widget_key: &str, report: &mut Report) -> Result<(), String> {
    let plan = ctx.plan.live;
    let addr = ctx.natter.addr;
    progress(
        ctx.t0,
        &format!(
            "live: creating {} contacts with a conversation each",
            plan.contact_streams
        ),
    );
    let (threads, _) =
        api::create_threads(addr, widget_key, plan.contact_streams, CONCURRENCY).await?;
    ctx.stored
        .fetch_add(plan.contact_streams as u64, Ordering::Relaxed);
    ctx.open_conversations += plan.contact_streams as u64;
    let mut c = api::connect(addr).await?;
    let mut agents = Vec::new();
    for n in 0..plan.agent_streams {
        agents.push(api::new_admin(&mut c, &ctx.admin_token, n).await?);
    }
    progress(
        ctx.t0,
        &format!(
            "live: {} + {} streams, {} messages/s for {} s",
            plan.contact_streams, plan.agent_streams, plan.rate, plan.secs
        ),
    );
    let r = live_test::run(
        &ctx.natter,
        plan,
        Arc::new(threads),
        &agents,
        ctx.stored.clone(),
    )
    .await?;
    live_test::wait_for_streams_to_close(addr).await;
    report.live = Some(r);
    // The memory ceiling: the same streams on the bare actix server, now
    // that natter's are closed (so the bench holds one set of sockets).
    let streams = plan.contact_streams + plan.agent_streams;
    progress(
        ctx.t0,
        &format!("live: {streams} streams on the bare actix server"),
    );
    let bare = live_test::bare_streams(&ctx.actix, streams)
        .await
        .map_err(|e| format!("bare actix streams: {e}"))?;
    if let Some(l) = report.live.as_mut() {
        l.bare = Some(bare);
    }
    Ok(())
}

/// CPU used by a server and by the bench across one run.
struct Cost<'a> {
    /// The server measured, if it is a separate process.
    server: Option<&'a Server>,
    /// Its CPU clock at the start.
    server0: Option<Duration>,
    /// The bench's CPU clock at the start.
    bench0: Option<Duration>,
}

impl<'a> Cost<'a> {
    /// Reads both CPU clocks before the run.
    fn start(server: Option<&'a Server>) -> Self {
        Self {
            server,
            server0: server.and_then(Server::cpu_time),
            bench0: cpu_time(std::process::id()),
        }
    }

    /// Reads them again and divides by the operations (warm-up included,
    /// as the clocks ran through it); `flushes` gives ops per flush.
    fn finish(self, run: Run, warmup: u64, flushes: Option<f64>) -> Measured {
        let ops = (warmup + run.count) as f64;
        let per_op = |a: Option<Duration>, b: Option<Duration>| {
            a.zip(b)
                .map(|(a, b)| (b.saturating_sub(a)).as_secs_f64() * 1e6 / ops.max(1.0))
        };
        Measured {
            server_cpu_us_per_op: per_op(self.server0, self.server.and_then(Server::cpu_time)),
            bench_cpu_us_per_op: per_op(self.bench0, cpu_time(std::process::id())),
            ops_per_flush: flushes.map(|f| ops / f.max(1.0)),
            run,
        }
    }
}

/// Fails the run if a setup or ceiling load had any failure.
fn check(what: &str, r: &Run) -> Result<(), String> {
    if r.errors > 0 || r.truncated {
        Err(format!(
            "{what}: {} failed requests, truncated: {}; first: {}",
            r.errors,
            r.truncated,
            r.first_error.as_deref().unwrap_or("-")
        ))
    } else {
        Ok(())
    }
}

/// Milliseconds as a float.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Size of the binary after `strip`, if `strip` is installed (the release
/// profile does not strip; a packaged binary would be).
fn stripped_size(bin: &Path, scratch: &Path) -> Option<u64> {
    let out = scratch.join("natter-stripped");
    let ok = std::process::Command::new("strip")
        .arg("-o")
        .arg(&out)
        .arg(bin)
        .status()
        .ok()?
        .success();
    let size = if ok {
        std::fs::metadata(&out).ok().map(|m| m.len())
    } else {
        None
    };
    let _ = std::fs::remove_file(&out);
    size
}

/// Bytes of every file under `dir` (the data folder's size on disk).
fn folder_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => folder_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}
