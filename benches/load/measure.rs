//! The closed-loop load runner and latency statistics shared by every
//! measurement, so natter and the ceilings are driven exactly alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// What one operation of a worker returns: `Err` counts as a failed
/// request (a wrong status, a broken connection) and is reported.
pub type OpFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One simulated client: it owns its connection (or whatever it needs) and
/// performs operation `i` when asked. Workers run concurrently, each one
/// request at a time (a closed loop), like 64 busy browser tabs.
pub trait Worker: Send + 'static {
    /// Performs operation number `i` (global across workers, from 0).
    fn op(&mut self, i: u64) -> OpFuture<'_>;
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Samples behind the figures.
    pub samples: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    /// Percentiles by nearest rank over every sample (no histogram
    /// buckets: the runs are small enough to keep and sort every sample).
    pub fn from_nanos(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            samples[rank - 1] as f64 / 1e6
        };
        Self {
            samples: n as u64,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: samples[n - 1] as f64 / 1e6,
            mean_ms: samples.iter().map(|&s| s as f64).sum::<f64>() / n as f64 / 1e6,
        }
    }
}

/// The outcome of one closed-loop run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Run {
    /// Operations measured (after the warm-up).
    pub count: u64,
    /// Seconds from the first measured start to the last measured end.
    pub secs: f64,
    /// Measured operations per second.
    pub per_sec: f64,
    /// Latency of each measured operation.
    pub latency: Latency,
    /// Failed operations (warm-up included): every one is a finding.
    pub errors: u64,
    /// The first failure, to say what went wrong.
    pub first_error: Option<String>,
    /// The time limit ended the run before its count was reached.
    pub truncated: bool,
}

/// A run stops early after this many failures: something is broken and
/// more requests would only flood the log.
const MAX_ERRORS: u64 = 100;

/// Drives `workers` (one task each, one operation at a time) until
/// `warmup + total` operations have started, or `limit` has passed.
/// Warm-up operations are performed but not measured.
pub async fn closed_loop<W: Worker>(
    workers: Vec<W>,
    warmup: u64,
    total: u64,
    limit: Duration,
) -> Run {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let deadline = Instant::now() + limit;
    let end = warmup + total;
    let mut tasks = Vec::with_capacity(workers.len());
    for mut w in workers {
        let next = next.clone();
        let errors = errors.clone();
        let first_error = first_error.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut first: Option<Instant> = None;
            let mut last: Option<Instant> = None;
            let mut truncated = false;
            loop {
                if errors.load(Ordering::Relaxed) >= MAX_ERRORS {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                if Instant::now() > deadline {
                    truncated = true;
                    break;
                }
                let t0 = Instant::now();
                let r = w.op(i).await;
                let t1 = Instant::now();
                if i >= warmup {
                    samples.push((t1 - t0).as_nanos() as u64);
                    first = Some(first.map_or(t0, |f| f.min(t0)));
                    last = Some(last.map_or(t1, |l| l.max(t1)));
                }
                if let Err(e) = r {
                    errors.fetch_add(1, Ordering::Relaxed);
                    let mut slot = first_error.lock().expect("error slot poisoned");
                    slot.get_or_insert(e);
                }
            }
            (samples, first, last, truncated)
        }));
    }
    let mut samples = Vec::new();
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    let mut truncated = false;
    for t in tasks {
        let (s, f, l, tr) = t.await.expect("a load worker panicked");
        samples.extend(s);
        first = match (first, f) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        last = match (last, l) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        truncated |= tr;
    }
    let secs = match (first, last) {
        (Some(f), Some(l)) => (l - f).as_secs_f64(),
        _ => 0.0,
    };
    let count = samples.len() as u64;
    let first_error = first_error.lock().expect("error slot poisoned").take();
    Run {
        count,
        secs,
        per_sec: if secs > 0.0 { count as f64 / secs } else { 0.0 },
        latency: Latency::from_nanos(samples),
        errors: errors.load(Ordering::Relaxed),
        first_error,
        truncated,
    }
}
