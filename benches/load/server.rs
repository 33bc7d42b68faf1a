//! Child servers: starting natter (or the bare actix ceiling) as its own
//! process, timing its start, reading its memory and CPU from `/proc`, and
//! stopping it the way an operator would (SIGTERM).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::Conn;

/// Log lines kept per child, to explain a failure.
const LOG_TAIL: usize = 50;

/// How long a start may take before the bench gives up (a 1M-message data
/// folder included).
const START_LIMIT: Duration = Duration::from_secs(120);

/// The admin the bench creates through `NATTER_ADMIN_EMAIL`.
pub const ADMIN_EMAIL: &str = "bench-admin@example.com";
/// Its password.
pub const ADMIN_PASSWORD: &str = "bench-admin-password";
/// The metrics token natter is started with (`/metrics` needs it).
pub const METRICS_TOKEN: &str = "bench-metrics-token-0123456789";

/// A running child server.
pub struct Server {
    /// The process.
    child: Child,
    /// Where it listens (from its `listening on http://ADDR` line).
    pub addr: SocketAddr,
    /// From `spawn` to the first 200 on `/healthz`.
    pub start_time: Duration,
    /// Its last log lines (stdout and stderr).
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    /// Starts natter on `data`, on a free port, with rate limits off (the
    /// bench is one address sending thousands of requests). With `admin`,
    /// the bench's admin is created at start, as `NATTER_ADMIN_*` does.
    pub async fn natter(data: &Path, admin: bool) -> Result<Self, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
        cmd.arg("serve")
            .env("NATTER_BIND", "127.0.0.1:0")
            .env("NATTER_DATA", data)
            .env("NATTER_CONTACTS_PER_MINUTE", "0")
            .env("NATTER_CONTACT_MESSAGES_PER_MINUTE", "0")
            // 10,000 streams from one address: the per-address cap of open
            // connections (256) would refuse them.
            .env("NATTER_CONNECTIONS_PER_ADDRESS", "0")
            .env("NATTER_METRICS_TOKEN", METRICS_TOKEN)
            .env("RUST_LOG", "info");
        for (k, v) in natter_env() {
            cmd.env(k, v);
        }
        if admin {
            cmd.env("NATTER_ADMIN_EMAIL", ADMIN_EMAIL)
                .env("NATTER_ADMIN_PASSWORD", ADMIN_PASSWORD);
        } else {
            cmd.env_remove("NATTER_ADMIN_EMAIL")
                .env_remove("NATTER_ADMIN_PASSWORD");
        }
        Self::spawn(cmd, "natter").await
    }

    /// Starts this bench binary again in its bare-actix role (see
    /// `ceilings::serve_bare_actix`), with natter's worker count.
    pub async fn bare_actix(workers: usize) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.env(crate::ROLE_VAR, crate::ROLE_BARE_ACTIX)
            .env("NATTER_WORKERS", workers.to_string());
        Self::spawn(cmd, "bare actix").await
    }

    /// Spawns `cmd`, waits for its `listening on http://ADDR` line and then
    /// for the first 200 on `/healthz`.
    async fn spawn(mut cmd: Command, what: &str) -> Result<Self, String> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let log: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let (addr_tx, mut addr_rx) = tokio::sync::mpsc::unbounded_channel::<SocketAddr>();
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        // Drain both pipes for the child's whole life so it never blocks on
        // a full pipe; spot the listening line on the way.
        let pipes: Vec<Box<dyn std::io::Read + Send>> = vec![
            Box::new(child.stdout.take().expect("stdout was piped")),
            Box::new(child.stderr.take().expect("stderr was piped")),
        ];
        for pipe in pipes {
            let log = log.clone();
            let addr_tx = addr_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or("");
                        if let Ok(a) = addr.trim_end_matches('/').parse() {
                            let _ = addr_tx.send(a);
                        }
                    }
                    let mut l = log.lock().expect("log poisoned");
                    if l.len() == LOG_TAIL {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
            });
        }
        drop(addr_tx);
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            start_time: Duration::ZERO,
            log,
        };
        let addr = match tokio::time::timeout(START_LIMIT, addr_rx.recv()).await {
            Ok(Some(a)) => a,
            _ => {
                return Err(format!(
                    "{what} did not log its address: {}",
                    server.log_tail()
                ))
            }
        };
        server.addr = addr;
        loop {
            if let Ok(mut c) = Conn::connect(addr).await {
                if let Ok(r) = c.get("/healthz", None).await {
                    if r.status == 200 {
                        break;
                    }
                }
            }
            if started.elapsed() > START_LIMIT {
                return Err(format!(
                    "{what} never answered 200 on /healthz: {}",
                    server.log_tail()
                ));
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{what} exited ({status}): {}", server.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.start_time = started.elapsed();
        Ok(server)
    }

    /// The last log lines, for error messages.
    pub fn log_tail(&self) -> String {
        let l = self.log.lock().expect("log poisoned");
        l.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in bytes (`VmRSS`).
    pub fn rss(&self) -> Option<u64> {
        proc_status_kb(self.pid(), "VmRSS:").map(|kb| kb * 1024)
    }

    /// The anonymous part of the resident memory (heap, stacks), in bytes
    /// (`RssAnon`): what the process itself holds, as opposed to file pages
    /// it maps (`RssFile`: the binary, mmapped index files), which the
    /// kernel can drop and reread.
    pub fn rss_anon(&self) -> Option<u64> {
        proc_status_kb(self.pid(), "RssAnon:").map(|kb| kb * 1024)
    }

    /// Peak resident memory so far, in bytes (`VmHWM`).
    pub fn peak_rss(&self) -> Option<u64> {
        proc_status_kb(self.pid(), "VmHWM:").map(|kb| kb * 1024)
    }

    /// CPU time (user + system) the child has used so far.
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_time(self.pid())
    }

    /// Stops the child with SIGTERM (natter drains and flushes) and waits
    /// for it, at most 30 s before SIGKILL. Returns how long it took.
    pub async fn stop(mut self) -> Result<Duration, String> {
        let started = Instant::now();
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        if rc != 0 {
            return Err(format!(
                "SIGTERM failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        while started.elapsed() < Duration::from_secs(30) {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(started.elapsed()),
                Ok(Some(status)) => {
                    return Err(format!(
                        "exited with {status} after SIGTERM: {}",
                        self.log_tail()
                    ))
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(e) => return Err(format!("wait: {e}")),
            }
        }
        Err("did not stop within 30 s of SIGTERM".into())
    }
}

impl Drop for Server {
    /// Never leave a server behind, whatever happened to the bench.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Extra environment for every natter the bench starts, from
/// `NATTER_BENCH_NATTER_ENV="K=V K2=V2"`: to try a setting (say
/// `NATTER_CACHE_MB=8` or `MALLOC_ARENA_MAX=2`) under the same load.
pub fn natter_env() -> Vec<(String, String)> {
    std::env::var("NATTER_BENCH_NATTER_ENV")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A `kB` field of `/proc/<pid>/status`.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time (user + system) a process has used so far, from
/// `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; here
    // (starting at field 3) they are at index 11 and 12.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / clock_ticks()))
}

/// Resident memory of this bench process, in bytes (the client side of
/// 10,000 streams, for comparison).
pub fn own_rss() -> Option<u64> {
    proc_status_kb(std::process::id(), "VmRSS:").map(|kb| kb * 1024)
}

/// Whether a thread of natter (by its `comm`, at most 15 characters) does
/// search-index work: natter's indexer thread and tantivy's threads (its
/// indexing workers `thrd-tantivy-index<N>`, started anew at every commit,
/// the doc-store compressor, the segment updater and merge threads, the
/// reader's warm-up GC and file watcher).
pub fn is_index_thread(comm: &str) -> bool {
    comm == "natter-index"
        || comm.starts_with("thrd-tantivy")
        || comm.starts_with("thread-tantivy")
        || comm.starts_with("tantivy")
        || comm.starts_with("docstore-compre")
        || comm == "segment_updater"
        || comm.starts_with("merge_thread")
        || comm == "watch-callbacks"
}

/// How often [`ThreadCpu`] reads the threads: often enough to see most of
/// tantivy's short-lived indexing workers, rarely enough to cost nothing.
const THREAD_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The search index's share of a process's CPU over one workload, from
/// `/proc/<pid>/task/*`.
///
/// tantivy ends its indexing workers at every commit and starts new ones,
/// and a thread's CPU can no longer be read once it has ended (it counts
/// in the process total only). So the threads are read every 100 ms, and
/// the index's share is taken as the process total minus every other
/// thread's CPU (`index_share`: an upper bound, since a non-index thread
/// that ended during the workload also counts as index), next to what the
/// index threads were seen to use (`index_seen_share`: a lower bound).
pub struct ThreadCpu {
    /// Tells the sampler to take its last reading.
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// The sampler.
    sampler: std::thread::JoinHandle<Option<ThreadTally>>,
}

/// What [`ThreadCpu`] found over one workload.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ThreadTally {
    /// CPU of the whole process (user + system), seconds.
    pub process_secs: f64,
    /// CPU seen on the index threads, seconds.
    pub index_seen_secs: f64,
    /// CPU seen on every other thread, seconds.
    pub other_secs: f64,
    /// Index threads seen (tantivy's workers come and go).
    pub index_threads_seen: u64,
    /// Other threads that ended during the workload (their last moments
    /// count as index CPU in `index_share`).
    pub other_threads_ended: u64,
}

impl ThreadTally {
    /// The index threads' share of the process's CPU: total minus every
    /// other thread, over total (an upper bound).
    pub fn index_share(&self) -> f64 {
        ((self.process_secs - self.other_secs) / self.process_secs.max(1e-9)).clamp(0.0, 1.0)
    }

    /// The CPU seen on the index threads over the total (a lower bound).
    pub fn index_seen_share(&self) -> f64 {
        (self.index_seen_secs / self.process_secs.max(1e-9)).clamp(0.0, 1.0)
    }
}

/// One thread as last read: its name and CPU so far, and its CPU when the
/// workload began (0 for a thread started since).
struct ThreadSeen {
    comm: String,
    first: Duration,
    last: Duration,
    /// Whether the last reading still found it.
    alive: bool,
}

impl ThreadCpu {
    /// Starts reading `pid`'s threads now (the baseline) and every 100 ms.
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let process0 = cpu_time(pid)?;
            // Keyed by thread id and start time, so a reused id is another thread.
            let mut seen: std::collections::HashMap<(u32, u64), ThreadSeen> =
                std::collections::HashMap::new();
            read_threads(pid, &mut seen, true);
            loop {
                let last = flag.load(std::sync::atomic::Ordering::Acquire);
                if !last {
                    std::thread::sleep(THREAD_SAMPLE_EVERY);
                }
                for t in seen.values_mut() {
                    t.alive = false;
                }
                read_threads(pid, &mut seen, false);
                if last {
                    break;
                }
            }
            let process1 = cpu_time(pid)?;
            let mut tally = ThreadTally {
                process_secs: process1.saturating_sub(process0).as_secs_f64(),
                ..ThreadTally::default()
            };
            for t in seen.values() {
                let used = t.last.saturating_sub(t.first).as_secs_f64();
                if is_index_thread(&t.comm) {
                    tally.index_seen_secs += used;
                    tally.index_threads_seen += 1;
                } else {
                    tally.other_secs += used;
                    tally.other_threads_ended += u64::from(!t.alive);
                }
            }
            Some(tally)
        });
        Self { stop, sampler }
    }

    /// Takes the last reading and returns the tally (`None` if the process
    /// could not be read).
    pub fn finish(self) -> Option<ThreadTally> {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.sampler.join().ok().flatten()
    }
}

/// Reads every thread of `pid` into `seen`; on the `baseline` reading a
/// thread's CPU so far is its starting point, later a new thread starts
/// from zero.
fn read_threads(
    pid: u32,
    seen: &mut std::collections::HashMap<(u32, u64), ThreadSeen>,
    baseline: bool,
) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        let Some((comm, start, cpu)) = thread_cpu(pid, tid) else {
            continue;
        };
        let t = seen.entry((tid, start)).or_insert_with(|| ThreadSeen {
            comm,
            first: if baseline { cpu } else { Duration::ZERO },
            last: cpu,
            alive: true,
        });
        t.last = t.last.max(cpu);
        t.alive = true;
    }
}

/// A thread's name, start time (in clock ticks since boot) and CPU so far:
/// the nanosecond run time of `schedstat` where the kernel has it, else
/// user + system time from `stat` (10 ms ticks).
fn thread_cpu(pid: u32, tid: u32) -> Option<(String, u64, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // starttime is field 22 of the line, index 19 here (see `cpu_time`).
    let start: u64 = fields.get(19)?.parse().ok()?;
    let schedstat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
    let cpu = match schedstat {
        Some(ns) => Duration::from_nanos(ns),
        None => {
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Duration::from_nanos(ticks * 1_000_000_000 / clock_ticks())
        }
    };
    Some((comm, start, cpu))
}

/// Clock ticks per second (`_SC_CLK_TCK`), 100 if unknown.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}
