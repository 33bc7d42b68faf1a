//! The results of a run: every figure as JSON, the markdown tables for
//! BENCHMARKS.md, and the verdict on each goal of issue 13.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::live::LiveResult;
use super::measure::Run;
use super::natter_api::Side;
use super::server::ThreadTally;
use crate::Plan;

/// Bytes in a MB (decimal, as the goals are written).
const MB: f64 = 1e6;
/// Bytes in a GiB (the disk goal is written in GiB).
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// When the run started (UTC).
    pub date: String,
    /// `full` or `quick`.
    pub mode: &'static str,
    /// The command that reproduces the run.
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// The commit measured, with `-dirty` for local edits.
    pub commit: Option<String>,
    /// Extra environment given to natter (`NATTER_BENCH_NATTER_ENV`).
    pub natter_env: Vec<String>,
    /// The sizes used.
    pub plan: Plan,
    /// Ceilings, ingest and pages at each history size.
    pub stages: Vec<Stage>,
    /// Live delivery and catch-up.
    pub live: Option<LiveResult>,
    /// Memory, start and stop times, sizes.
    pub memory: MemoryAndStart,
    /// The goals, judged.
    pub goals: Vec<Goal>,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
    /// Wall time of the whole run.
    pub total_secs: f64,
}

/// The machine, as BENCHMARKS.md records it.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// Cores available to this process.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// MemTotal.
    pub memory_bytes: u64,
    /// Kernel release.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
}

/// One history size.
#[derive(Debug, Serialize)]
pub struct Stage {
    /// The size asked for.
    pub target: u64,
    /// Messages stored when the stage's measurements began.
    pub stored_at_start: u64,
    /// And when they ended (the ingest workloads add to the history).
    pub stored_at_end: u64,
    /// How the history was filled up to `target`.
    pub fill: Option<Fill>,
    /// The bare actix ceiling, measured in this stage.
    pub bare_actix: Measured,
    /// The bare sled group-commit ceiling, measured in this stage (in the
    /// bench process: its "server" CPU is the whole bench process).
    pub bare_sled: Measured,
    /// Not a goal ceiling: bare sled doing natter's write (one transaction
    /// over five trees: one read, an id, five writes) with the same group
    /// commit, to split natter's cost into sled's and its own.
    pub sled_shaped: Measured,
    /// The four durable-ingest workloads.
    pub ingest: Vec<Ingest>,
    /// The page stand-ins.
    pub pages: Vec<Page>,
    /// natter's memory after the stage.
    pub rss_after: Option<u64>,
}

/// Filling the history through the HTTP API.
#[derive(Debug, Serialize)]
pub struct Fill {
    /// Stored messages before.
    pub from: u64,
    /// After.
    pub to: u64,
    /// Seconds it took.
    pub secs: f64,
    /// Messages per second.
    pub per_sec: f64,
}

/// A load run with what it cost each side, so a throughput figure can be
/// read against the CPU it took (two cores are shared by everything).
#[derive(Debug, Default, Serialize)]
pub struct Measured {
    /// Throughput and latency.
    pub run: Run,
    /// CPU time (user + system) of the server per operation, warm-up
    /// included.
    pub server_cpu_us_per_op: Option<f64>,
    /// CPU time of the bench process (the load generator) per operation.
    pub bench_cpu_us_per_op: Option<f64>,
    /// Operations made durable per group flush (durable workloads only).
    pub ops_per_flush: Option<f64>,
}

/// One durable-ingest workload.
#[derive(Debug, Serialize)]
pub struct Ingest {
    /// Who posts.
    pub side: Side,
    /// Into how many conversations.
    pub conversations: usize,
    /// Messages stored when this workload began.
    pub stored_before: u64,
    /// Throughput, latency and cost.
    pub m: Measured,
    /// Throughput as a fraction of the bare actix ceiling.
    pub per_actix: f64,
    /// Throughput as a fraction of the bare sled ceiling.
    pub per_sled: f64,
    /// natter's CPU by thread over the workload: the search index's share.
    pub index_cpu: Option<ThreadTally>,
}

/// One page read again and again.
#[derive(Debug, Serialize)]
pub struct Page {
    /// What it stands for.
    pub name: String,
    /// The route read.
    pub path: String,
    /// Open conversations in the inbox at the time.
    pub open_conversations: u64,
    /// Size of the answer.
    pub bytes: u64,
    /// Conversations or messages on it.
    pub items: u64,
    /// Latency on one connection.
    pub run: Run,
}

/// Starts of one kind, timed from exec to the first 200 on /healthz.
#[derive(Debug, Clone, Serialize)]
pub struct StartTimes {
    /// Every start.
    pub runs_ms: Vec<f64>,
    /// The median.
    pub median_ms: f64,
    /// The slowest.
    pub max_ms: f64,
}

impl From<&Vec<Duration>> for StartTimes {
    fn from(d: &Vec<Duration>) -> Self {
        let mut runs_ms: Vec<f64> = d.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let mut sorted = runs_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let median_ms = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        let max_ms = sorted.last().copied().unwrap_or(0.0);
        runs_ms.shrink_to_fit();
        Self {
            runs_ms,
            median_ms,
            max_ms,
        }
    }
}

/// Memory, start and sizes.
#[derive(Debug, Default, Serialize)]
pub struct MemoryAndStart {
    /// The bench-built natter binary (bench profile = release settings,
    /// not stripped).
    pub binary_bytes: Option<u64>,
    /// The same after `strip`.
    pub binary_stripped_bytes: Option<u64>,
    /// Starts on empty folders (no bootstrap admin).
    pub start_empty: Option<StartTimes>,
    /// RSS 1 s after a start on an empty folder (no bootstrap admin).
    pub rss_idle_empty: Option<u64>,
    /// The main start, which also hashes the bootstrap admin's password.
    pub start_with_admin_bootstrap_ms: Option<f64>,
    /// RSS 1 s after that start.
    pub rss_idle_after_start: Option<u64>,
    /// Its anonymous part (`RssAnon`).
    pub rss_idle_after_start_anon: Option<u64>,
    /// RSS 1 s after the admin's first sign-in, right after that start:
    /// setup done (the admin exists) and signed in, nothing else yet.
    pub rss_idle_after_sign_in: Option<u64>,
    /// Its anonymous part (`RssAnon`).
    pub rss_idle_after_sign_in_anon: Option<u64>,
    /// RSS after sign-in and the first 1,002 conversations (the page
    /// conversation filled, the browser session signed in).
    pub rss_after_setup: Option<u64>,
    /// The bare actix server's RSS, idle, for comparison.
    pub rss_bare_actix_idle: Option<u64>,
    /// Messages stored at the end.
    pub stored_messages_at_end: u64,
    /// RSS after the whole history is stored (idle 2 s).
    pub rss_after_history: Option<u64>,
    /// Its anonymous part (`RssAnon`).
    pub rss_after_history_anon: Option<u64>,
    /// natter's peak RSS over the run.
    pub peak_rss: Option<u64>,
    /// SIGTERM to exit with the whole history.
    pub stop_ms: Option<f64>,
    /// Size of the data folder with the whole history.
    pub data_folder_bytes: Option<u64>,
    /// Restarts on that folder.
    pub start_large: Option<StartTimes>,
    /// Messages in it.
    pub start_large_messages: u64,
    /// RSS 1 s after the first restart.
    pub rss_idle_after_restart: Option<u64>,
    /// Its anonymous part (`RssAnon`).
    pub rss_idle_after_restart_anon: Option<u64>,
}

/// One goal of the issue and whether this run meets it.
#[derive(Debug, Serialize)]
pub struct Goal {
    /// The goal, in the words.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// The ceiling measured in the same run that the goal is read against,
    /// or a reference figure of the same run; `-` when none applies.
    pub ceiling: String,
    /// Met, unmet, or not measured in this run.
    pub met: Option<bool>,
}

impl Goal {
    /// A goal this run has no figures for.
    fn not_measured(goal: &str) -> Self {
        Self {
            goal: goal.into(),
            measured: "not measured".into(),
            ceiling: "-".into(),
            met: None,
        }
    }
}

impl Report {
    /// An empty report with the run's context filled in.
    pub fn new(plan: Plan, quick: bool) -> Self {
        Self {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            mode: plan.mode,
            command: if quick {
                "NATTER_BENCH_QUICK=1 cargo bench --bench load".into()
            } else {
                "cargo bench --bench load".into()
            },
            machine: Machine::here(),
            commit: commit(),
            natter_env: super::server::natter_env()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            plan,
            stages: Vec::new(),
            live: None,
            memory: MemoryAndStart::default(),
            goals: Vec::new(),
            error: None,
            total_secs: 0.0,
        }
    }

    /// Failed requests in every measured workload.
    pub fn total_errors(&self) -> u64 {
        let stages: u64 = self
            .stages
            .iter()
            .map(|s| {
                s.bare_actix.run.errors
                    + s.bare_sled.run.errors
                    + s.sled_shaped.run.errors
                    + s.ingest.iter().map(|i| i.m.run.errors).sum::<u64>()
                    + s.pages.iter().map(|p| p.run.errors).sum::<u64>()
            })
            .sum();
        stages + self.live.as_ref().map_or(0, |l| l.post_errors)
    }

    /// Judges each goal of issue 13 against this run, in the issue's
    /// order, then the guarantee that no event is lost or misrouted.
    pub fn evaluate_goals(&mut self) {
        let goals = vec![
            self.goal_ingest(),
            self.goal_live_latency(),
            self.goal_streams_memory(),
            self.goal_idle_memory(),
            self.goal_disk(),
            self.goal_restart(),
            self.goal_inbox(),
            self.goal_search_share(),
            self.guarantee_delivery(),
        ];
        self.goals = goals;
    }

    /// Durable ingest ≥ 30% of the bare actix handler, for every workload
    /// at every stage, each against the ceiling of its own stage.
    fn goal_ingest(&self) -> Goal {
        const GOAL: &str = "durable ingest ≥ 30% of a bare actix handler";
        let ingest: Vec<&Ingest> = self.stages.iter().flat_map(|s| &s.ingest).collect();
        if ingest.is_empty() {
            return Goal::not_measured(GOAL);
        }
        let (lo, hi) = min_max(ingest.iter().map(|i| i.per_actix));
        let (rate_lo, rate_hi) = min_max(ingest.iter().map(|i| i.m.run.per_sec));
        let (actix_lo, actix_hi) = min_max(self.stages.iter().map(|s| s.bare_actix.run.per_sec));
        Goal {
            goal: GOAL.into(),
            measured: format!(
                "{:.0}% to {:.0}% of the same stage's ceiling (every workload, every stage): {rate_lo:.0} to {rate_hi:.0} messages/s",
                lo * 100.0,
                hi * 100.0
            ),
            ceiling: format!("bare actix handler: {actix_lo:.0} to {actix_hi:.0} requests/s"),
            met: Some(lo >= 0.30),
        }
    }

    /// Post-to-last-interested-stream p99 < 20 ms, only counted with the
    /// issue's streams and rate.
    fn goal_live_latency(&self) -> Goal {
        const GOAL: &str = "post-to-last-interested-stream p99 < 20 ms with 10,000 contact streams + 20 agent streams at 200 msg/s";
        let Some(l) = &self.live else {
            return Goal::not_measured(GOAL);
        };
        let as_asked = l.contact_streams >= 10_000
            && l.agent_streams >= 20
            && self.plan.live.rate >= 200
            && l.posted > 0;
        Goal {
            goal: GOAL.into(),
            measured: format!(
                "p99 {:.1} ms (p50 {:.1} ms, p99.9 {:.1} ms) with {} + {} streams, {} posted at {:.0}/s",
                l.delivery.p99_ms,
                l.delivery.p50_ms,
                l.delivery.p999_ms,
                l.contact_streams,
                l.agent_streams,
                l.posted,
                l.rate
            ),
            ceiling: "-".into(),
            met: Some(as_asked && l.delivery.p99_ms < 20.0),
        }
    }

    /// 10,000 open streams < 150 MB RSS; or, when the bare actix server
    /// holding the same streams needs more than 150 MB / 1.2, within 20%
    /// of it (the rule for a goal the machine itself cannot meet).
    fn goal_streams_memory(&self) -> Goal {
        const GOAL: &str = "10,000 open event streams < 150 MB RSS";
        let Some(l) = &self.live else {
            return Goal::not_measured(GOAL);
        };
        let streams = l.contact_streams + l.agent_streams;
        let natter = l.rss_streams_open.map(|b| b as f64);
        let bare = l.bare.as_ref().and_then(|b| b.rss_open).map(|b| b as f64);
        let limit = 150.0 * MB;
        let (rule, met) = match (natter, bare) {
            (Some(n), Some(b)) if b > limit / 1.2 => (
                format!(
                    "within 20% of the bare server, which itself needs more than {:.0} MB: natter is {:.2}× it",
                    limit / 1.2 / MB,
                    n / b
                ),
                Some(n <= b * 1.2),
            ),
            (Some(n), _) => ("natter < 150 MB".to_owned(), Some(n < limit)),
            (None, _) => ("-".to_owned(), None),
        };
        Goal {
            goal: GOAL.into(),
            measured: format!(
                "{} with {streams} streams open, after posting ({} before posting); decided by: {rule}",
                both(l.rss_streams_open, l.rss_streams_open_anon),
                mb(l.rss_streams_idle)
            ),
            ceiling: match &l.bare {
                Some(b) => format!(
                    "bare actix holding the same {} streams: {}, {} before; allocator: {}",
                    b.streams,
                    both(b.rss_open, b.rss_open_anon),
                    mb(b.rss_before),
                    b.allocator
                ),
                None => "not measured".into(),
            },
            met: met.map(|m| m && l.contact_streams >= 10_000),
        }
    }

    /// Idle < 30 MB after setup and an admin sign-in.
    fn goal_idle_memory(&self) -> Goal {
        const GOAL: &str = "idle server < 30 MB RSS (after setup and an admin sign-in)";
        let m = &self.memory;
        let Some(idle) = m.rss_idle_after_sign_in else {
            return Goal::not_measured(GOAL);
        };
        Goal {
            goal: GOAL.into(),
            measured: format!(
                "{} 1 s after the admin's sign-in (before it: {} with the admin created at start, {} on an empty folder without one)",
                both(m.rss_idle_after_sign_in, m.rss_idle_after_sign_in_anon),
                mb(m.rss_idle_after_start),
                mb(m.rss_idle_empty)
            ),
            ceiling: format!("reference: bare actix idle {}", mb(m.rss_bare_actix_idle)),
            met: Some((idle as f64) < 30.0 * MB),
        }
    }

    /// 1M messages < 1 GiB on disk: the data folder at the end of the run
    /// scaled to 1,000,000 messages.
    fn goal_disk(&self) -> Goal {
        const GOAL: &str = "1M messages (about 100-byte bodies) < 1 GiB on disk";
        let m = &self.memory;
        let (Some(bytes), n) = (m.data_folder_bytes, m.stored_messages_at_end) else {
            return Goal::not_measured(GOAL);
        };
        if n == 0 {
            return Goal::not_measured(GOAL);
        }
        let per_message = bytes as f64 / n as f64;
        let scaled = per_message * 1e6;
        let measured = if n >= 1_000_000 {
            format!(
                "{:.2} GiB for {n} messages; scaled to 1,000,000: {:.2} GiB ({per_message:.0} bytes per message)",
                bytes as f64 / GIB,
                scaled / GIB
            )
        } else {
            format!(
                "per message, scaled: {per_message:.0} bytes per message × 1,000,000 = {:.2} GiB (raw: {:.2} GiB for {n} messages)",
                scaled / GIB,
                bytes as f64 / GIB
            )
        };
        Goal {
            goal: GOAL.into(),
            measured,
            ceiling: "-".into(),
            met: Some(scaled < GIB),
        }
    }

    /// First 200 < 300 ms after a restart on the large folder: the first
    /// restart after the stop and the median of the later ones.
    fn goal_restart(&self) -> Goal {
        const GOAL: &str = "first 200 < 300 ms after a restart on a 1M-message folder";
        let m = &self.memory;
        let Some(large) = &m.start_large else {
            return Goal::not_measured(GOAL);
        };
        let Some((&first, later)) = large.runs_ms.split_first() else {
            return Goal::not_measured(GOAL);
        };
        let later_median = median(later);
        let size = if m.start_large_messages >= 1_000_000 {
            format!("{} messages", m.start_large_messages)
        } else {
            format!(
                "{} messages (fewer than the goal's 1,000,000)",
                m.start_large_messages
            )
        };
        Goal {
            goal: GOAL.into(),
            measured: format!(
                "{size}: the first restart after the stop {first:.1} ms, the later ones median {} (each: {})",
                opt_ms(later_median),
                starts(&m.start_large)
            ),
            ceiling: format!(
                "reference: empty folder, median {}",
                opt_ms(m.start_empty.as_ref().map(|s| s.median_ms))
            ),
            met: Some(first < 300.0 && later_median.is_none_or(|l| l < 300.0)),
        }
    }

    /// `/inbox` p99 < 5 ms at every stage, and flat: the last stage's p99
    /// at most 1.25 times the first's.
    fn goal_inbox(&self) -> Goal {
        const GOAL: &str =
            "`/inbox` p99 < 5 ms with 1,000 open conversations, flat from 10k to 1M messages";
        // The real page if this build has it, else its API stand-in.
        let inbox = |st: &Stage| -> Option<(f64, String, u64)> {
            st.pages
                .iter()
                .find(|p| p.path == "/inbox")
                .or_else(|| {
                    st.pages
                        .iter()
                        .find(|p| p.path.starts_with("/api/v1/conversations?"))
                })
                .map(|p| (p.run.latency.p99_ms, p.path.clone(), p.open_conversations))
        };
        let per_stage: Vec<(u64, (f64, String, u64))> = self
            .stages
            .iter()
            .filter_map(|st| inbox(st).map(|i| (st.stored_at_start, i)))
            .collect();
        let (Some(first), Some(last)) = (per_stage.first(), per_stage.last()) else {
            return Goal::not_measured(GOAL);
        };
        let worst = per_stage
            .iter()
            .map(|(_, (p99, _, _))| *p99)
            .fold(0.0, f64::max);
        let flat = last.1 .0 / first.1 .0.max(1e-9);
        let stages: Vec<String> = per_stage
            .iter()
            .map(|(stored, (p99, _, open))| format!("{p99:.2} ms ({stored} stored, {open} open)"))
            .collect();
        Goal {
            goal: GOAL.into(),
            measured: format!(
                "`{}` p99 by stage: {}; worst {worst:.2} ms; last/first {flat:.2} (flat: ≤ 1.25)",
                first.1 .1,
                stages.join(", ")
            ),
            ceiling: "-".into(),
            met: (per_stage.len() > 1).then_some(worst < 5.0 && flat <= 1.25),
        }
    }

    /// The search index's share of natter's CPU < 10% in every ingest
    /// workload.
    fn goal_search_share(&self) -> Goal {
        const GOAL: &str = "live search indexing costs < 10% of ingest";
        let tallies: Vec<ThreadTally> = self
            .stages
            .iter()
            .flat_map(|s| &s.ingest)
            .filter_map(|i| i.index_cpu)
            .collect();
        if tallies.is_empty() {
            return Goal::not_measured(GOAL);
        }
        let (lo, hi) = min_max(tallies.iter().map(ThreadTally::index_share));
        let (seen_lo, seen_hi) = min_max(tallies.iter().map(ThreadTally::index_seen_share));
        let process: f64 = tallies.iter().map(|t| t.process_secs).sum();
        let other: f64 = tallies.iter().map(|t| t.other_secs).sum();
        let ended: u64 = tallies.iter().map(|t| t.other_threads_ended).sum();
        Goal {
            goal: GOAL.into(),
            measured: format!(
                "index threads {:.1}% to {:.1}% of natter's CPU per ingest workload ({:.1}% over all of them); seen directly on them {:.1}% to {:.1}%; other threads that ended meanwhile: {ended}",
                lo * 100.0,
                hi * 100.0,
                (process - other) / process.max(1e-9) * 100.0,
                seen_lo * 100.0,
                seen_hi * 100.0
            ),
            ceiling: "-".into(),
            met: Some(hi < 0.10),
        }
    }

    /// Not a goal of the table but a guarantee: no event lost, sent to
    /// the wrong stream, duplicated or reordered, and both catch-ups whole.
    fn guarantee_delivery(&self) -> Goal {
        const GOAL: &str = "no event lost or sent to the wrong stream (a guarantee)";
        let Some(l) = &self.live else {
            return Goal::not_measured(GOAL);
        };
        let catch_ok = [&l.catch_up_agent, &l.catch_up_contact]
            .iter()
            .all(|c| c.as_ref().is_some_and(|c| c.complete_and_in_order));
        Goal {
            goal: GOAL.into(),
            measured: format!(
                "{} lost, {} to a wrong stream, {} duplicated/reordered, {} stream failures of {} deliveries; catch-up complete and in order: {}",
                l.lost,
                l.wrong_stream,
                l.duplicates_or_reordered,
                l.stream_failures,
                l.posted * (1 + l.agent_streams as u64),
                catch_ok
            ),
            ceiling: "-".into(),
            met: Some(
                l.lost == 0
                    && l.wrong_stream == 0
                    && l.duplicates_or_reordered == 0
                    && l.stream_failures == 0
                    && l.posted > 0
                    && catch_ok,
            ),
        }
    }

    /// The run as markdown: a heading, the context and every table.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let _ = writeln!(s, "### {} ({} run)\n", self.date, self.mode);
        let _ = writeln!(
            s,
            "- Machine: {} cores, {}, {:.1} GiB RAM, Linux {}; {}",
            m.cores,
            m.cpu,
            m.memory_bytes as f64 / (1024.0 * 1024.0 * 1024.0),
            m.kernel,
            m.rustc
        );
        let _ = writeln!(
            s,
            "- Commit: {}; command: `{}`; wall time {:.0} s",
            self.commit.as_deref().unwrap_or("unknown"),
            self.command,
            self.total_secs
        );
        if !self.natter_env.is_empty() {
            let _ = writeln!(
                s,
                "- natter started with extra environment: `{}`",
                self.natter_env.join(" ")
            );
        }
        if let Some(e) = &self.error {
            let _ = writeln!(s, "- **The run stopped early:** {e}");
        }
        let _ = writeln!(s);

        let _ = writeln!(
            s,
            "**Ceilings and durable ingest** ({CONC} connections, closed loop, every response checked for 201; % = natter ÷ the ceiling measured in the same stage)\n",
            CONC = 64
        );
        let _ = writeln!(s, "| stored before | workload | msgs/s | p50 ms | p99 ms | p99.9 ms | % of actix | % of sled | server CPU µs/msg | bench CPU µs/msg | msgs/flush | search index % of server CPU (seen directly) | errors |");
        let _ = writeln!(
            s,
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
        for st in &self.stages {
            let mut rows: Vec<(u64, String, &Measured, String, String, String)> = vec![
                (
                    st.stored_at_start,
                    "ceiling: bare actix handler".into(),
                    &st.bare_actix,
                    String::new(),
                    String::new(),
                    String::new(),
                ),
                (
                    st.stored_at_start,
                    "ceiling: bare sled insert + group commit (in the bench process)".into(),
                    &st.bare_sled,
                    String::new(),
                    String::new(),
                    String::new(),
                ),
                (
                    st.stored_at_start,
                    "reference: bare sled, natter-shaped transaction + group commit (in the bench process)".into(),
                    &st.sled_shaped,
                    String::new(),
                    String::new(),
                    String::new(),
                ),
            ];
            for i in &st.ingest {
                let who = match i.side {
                    Side::Agent => "agents",
                    Side::Contact => "contacts",
                };
                rows.push((
                    i.stored_before,
                    format!(
                        "natter: {who} → {} conversation{}",
                        i.conversations,
                        if i.conversations == 1 { "" } else { "s" }
                    ),
                    &i.m,
                    format!("{:.0}%", i.per_actix * 100.0),
                    format!("{:.0}%", i.per_sled * 100.0),
                    i.index_cpu.map_or("-".into(), |t| {
                        format!(
                            "{:.1}% ({:.1}%)",
                            t.index_share() * 100.0,
                            t.index_seen_share() * 100.0
                        )
                    }),
                ));
            }
            for (stored, name, m, pa, ps, index) in rows {
                let _ = writeln!(
                    s,
                    "| {stored} | {name} | {:.0} | {:.2} | {:.2} | {:.2} | {pa} | {ps} | {} | {} | {} | {index} | {} |",
                    m.run.per_sec,
                    m.run.latency.p50_ms,
                    m.run.latency.p99_ms,
                    m.run.latency.p999_ms,
                    opt(m.server_cpu_us_per_op, 0),
                    opt(m.bench_cpu_us_per_op, 0),
                    opt(m.ops_per_flush, 1),
                    m.run.errors
                );
            }
        }
        let _ = writeln!(s);

        let _ = writeln!(s, "**Pages** (one connection, so latency ≈ server time + one loopback round trip; read before the stage's ingest)\n");
        let _ = writeln!(
            s,
            "| stored | open conversations | page | items | bytes | p50 ms | p99 ms | p99.9 ms |"
        );
        let _ = writeln!(s, "|---:|---:|---|---:|---:|---:|---:|---:|");
        for st in &self.stages {
            for p in &st.pages {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} `{}` | {} | {} | {:.2} | {:.2} | {:.2} |",
                    st.stored_at_start,
                    p.open_conversations,
                    p.name,
                    p.path,
                    p.items,
                    p.bytes,
                    p.run.latency.p50_ms,
                    p.run.latency.p99_ms,
                    p.run.latency.p999_ms,
                );
            }
        }
        let _ = writeln!(s);

        if let Some(l) = &self.live {
            let _ = writeln!(s, "**Live delivery** (each contact stream its own contact and conversation; agent streams are admins watching everything; latency from the POST's scheduled start until the contact's stream and every agent stream have the event)\n");
            let _ = writeln!(s, "| streams | posted (rate) | delivery p50 | p99 | p99.9 | max | POST p50 / p99 | lost | wrong stream | dup/reordered | server catch-ups | streams opened in |");
            let _ = writeln!(
                s,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            let _ = writeln!(
                s,
                "| {} + {} | {} ({:.0}/s) | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} / {:.1} ms | {} | {} | {} | {} | {:.1} s |",
                l.contact_streams,
                l.agent_streams,
                l.posted,
                l.rate,
                l.delivery.p50_ms,
                l.delivery.p99_ms,
                l.delivery.p999_ms,
                l.delivery.max_ms,
                l.post_latency.p50_ms,
                l.post_latency.p99_ms,
                l.lost,
                l.wrong_stream,
                l.duplicates_or_reordered,
                l.server_catchups,
                l.open_secs,
            );
            let _ = writeln!(s);
            let cores = |c: Option<f64>| c.map_or("-".into(), |c| format!("{c:.2}"));
            let _ = writeln!(s, "| natter RSS before streams | all streams open, idle | after posting | natter cores busy while posting | bench cores busy | bench RSS (client side) |");
            let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|");
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                mb(l.rss_before_streams),
                both(l.rss_streams_idle, l.rss_streams_idle_anon),
                both(l.rss_streams_open, l.rss_streams_open_anon),
                cores(l.natter_cores_posting),
                cores(l.bench_cores_posting),
                mb(l.bench_rss_streams_open)
            );
            let _ = writeln!(s);
            if let Some(b) = &l.bare {
                let _ = writeln!(s, "| ceiling: bare actix, the same streams | RSS before | all {} streams open, idle | opened in | allocator |", b.streams);
                let _ = writeln!(s, "|---|---:|---:|---:|---|");
                let _ = writeln!(
                    s,
                    "| `GET /events`: preamble, keep-alive comment, nothing else | {} | {} | {:.1} s | {} |",
                    mb(b.rss_before),
                    both(b.rss_open, b.rss_open_anon),
                    b.open_secs,
                    b.allocator
                );
                let _ = writeln!(s);
            }
            let _ = writeln!(s, "| catch-up through Last-Event-ID | events replayed | log entries scanned | time | complete, in order |");
            let _ = writeln!(s, "|---|---:|---:|---:|---|");
            for (name, c) in [
                ("agent stream (sees everything)", &l.catch_up_agent),
                (
                    "contact stream (its own events, others' interleaved)",
                    &l.catch_up_contact,
                ),
            ] {
                if let Some(c) = c {
                    let _ = writeln!(
                        s,
                        "| {name} | {} | {} | {:.3} s | {} |",
                        c.events, c.log_span, c.secs, c.complete_and_in_order
                    );
                }
            }
            let _ = writeln!(s);
        }

        let mm = &self.memory;
        let _ = writeln!(s, "**Memory, start, size**\n");
        let _ = writeln!(s, "| measure | value |");
        let _ = writeln!(s, "|---|---:|");
        let rows: Vec<(String, String)> = vec![
            (
                "RSS idle 1 s after start, empty folder".into(),
                mb(mm.rss_idle_empty),
            ),
            (
                "RSS idle 1 s after start, empty folder + bootstrap admin (argon2 hash at start)"
                    .into(),
                both(mm.rss_idle_after_start, mm.rss_idle_after_start_anon),
            ),
            (
                "RSS idle 1 s after the admin's first sign-in (setup done at start)".into(),
                both(mm.rss_idle_after_sign_in, mm.rss_idle_after_sign_in_anon),
            ),
            (
                "RSS after sign-in and 1,002 conversations".into(),
                mb(mm.rss_after_setup),
            ),
            (
                format!(
                    "RSS idle after {} stored messages",
                    mm.stored_messages_at_end
                ),
                both(mm.rss_after_history, mm.rss_after_history_anon),
            ),
            ("peak RSS over the run (VmHWM)".into(), mb(mm.peak_rss)),
            (
                format!(
                    "RSS idle 1 s after restart on {} messages",
                    mm.start_large_messages
                ),
                both(mm.rss_idle_after_restart, mm.rss_idle_after_restart_anon),
            ),
            (
                "bare actix server RSS idle (reference)".into(),
                mb(mm.rss_bare_actix_idle),
            ),
            (
                "exec → first 200, empty folder (each start, in order)".into(),
                starts(&mm.start_empty),
            ),
            (
                "exec → first 200, empty folder + bootstrap admin".into(),
                opt_ms(mm.start_with_admin_bootstrap_ms),
            ),
            (
                format!(
                    "exec → first 200, {} messages (each restart after the stop, in order)",
                    mm.start_large_messages
                ),
                starts(&mm.start_large),
            ),
            (
                "SIGTERM → exit with that history".into(),
                opt_ms(mm.stop_ms),
            ),
            (
                "data folder with that history".into(),
                mb(mm.data_folder_bytes),
            ),
            (
                "data folder scaled to 1,000,000 messages (bytes ÷ stored messages × 10^6)".into(),
                match (mm.data_folder_bytes, mm.stored_messages_at_end) {
                    (Some(b), n) if n > 0 => {
                        format!("{:.2} GiB", b as f64 / n as f64 * 1e6 / GIB)
                    }
                    _ => "-".into(),
                },
            ),
            (
                "binary (bench profile = release settings, not stripped)".into(),
                mb(mm.binary_bytes),
            ),
            ("binary after `strip`".into(), mb(mm.binary_stripped_bytes)),
        ];
        for (k, v) in rows {
            let _ = writeln!(s, "| {k} | {v} |");
        }
        let _ = writeln!(s);

        let _ = writeln!(s, "**Generating the history** (agents posting through the HTTP API, 64 connections, 1,000 conversations)\n");
        let _ = writeln!(s, "| from | to | time | msgs/s |");
        let _ = writeln!(s, "|---:|---:|---:|---:|");
        for st in &self.stages {
            if let Some(f) = &st.fill {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.1} s | {:.0} |",
                    f.from, f.to, f.secs, f.per_sec
                );
            }
        }
        let _ = writeln!(s);

        let _ = writeln!(
            s,
            "**Goals** (issue 13; ratios and ceilings from this run)\n"
        );
        let _ = writeln!(
            s,
            "| goal | measured | ceiling or reference (same run) | met |"
        );
        let _ = writeln!(s, "|---|---|---|---|");
        for g in &self.goals {
            let met = match g.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            let _ = writeln!(s, "| {} | {} | {} | {met} |", g.goal, g.measured, g.ceiling);
        }
        s
    }

    /// Writes the JSON results to `NATTER_BENCH_OUT`, or else to
    /// `benches/results/<date>-<mode>.json`.
    pub fn write_json(&self) -> Result<PathBuf, String> {
        let path = match std::env::var_os("NATTER_BENCH_OUT") {
            Some(p) => PathBuf::from(p),
            None => {
                let stamp = chrono::Utc::now().format("%Y-%m-%dT%H-%M-%SZ");
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("benches/results")
                    .join(format!("{stamp}-{}.json", self.mode))
            }
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// Appends this run's markdown to the history at the end of
    /// BENCHMARKS.md (`NATTER_BENCH_RECORD=1`).
    pub fn append_to_benchmarks_md(&self, markdown: &str) -> Result<PathBuf, String> {
        use std::io::Write;
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        write!(f, "\n{markdown}").map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

impl Machine {
    /// Reads the machine's description from /proc.
    fn here() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown CPU".into(), |(_, v)| v.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        Self {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            memory_bytes,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            rustc: command_output("rustc", &["--version"]).unwrap_or_default(),
        }
    }
}

/// The commit measured, with `-dirty` when tracked files differ from it.
/// Read-only git commands (`--no-optional-locks`): another process may be
/// committing in this checkout.
fn commit() -> Option<String> {
    let head = command_output("git", &["rev-parse", "--short", "HEAD"])?;
    let status = command_output(
        "git",
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )
    .unwrap_or_default();
    Some(if status.is_empty() {
        head
    } else {
        format!("{head}-dirty")
    })
}

/// The trimmed stdout of a command, if it ran and succeeded.
fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Bytes as MB (10^6) for the tables (`-` when unknown).
fn mb(b: Option<u64>) -> String {
    b.map_or("-".into(), |b| format!("{:.1} MB", b as f64 / MB))
}

/// Total resident memory with its anonymous part, e.g. `88.4 MB (anon 70.1 MB)`.
fn both(total: Option<u64>, anon: Option<u64>) -> String {
    match anon {
        Some(_) => format!("{} (anon {})", mb(total), mb(anon)),
        None => mb(total),
    }
}

/// Every start of a kind, e.g. `1626.4, 97.0, 96.1, 95.2, 94.0 ms`.
fn starts(t: &Option<StartTimes>) -> String {
    t.as_ref().map_or("-".into(), |t| {
        let runs: Vec<String> = t.runs_ms.iter().map(|r| format!("{r:.1}")).collect();
        format!("{} ms", runs.join(", "))
    })
}

/// The smallest and the largest of some figures (0 and 0 for none).
fn min_max(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 0.0)
    }
}

/// The median (the upper one of an even count), `None` for no figures.
fn median(v: &[f64]) -> Option<f64> {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// Milliseconds for the tables (`-` when unknown).
fn opt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1} ms"))
}
