//! Prometheus metrics, kept in atomics and rendered as text on `/metrics`.
//!
//! Hand-written rather than a metrics crate: four families, no labels beyond
//! route and status, and nothing to register or allocate on the hot path.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Every metric of the process.
pub struct Metrics {
    /// Messages stored, by author type.
    pub messages_created: [AtomicU64; 3],
    /// Open SSE streams.
    pub sse_connections: AtomicU64,
    /// Times a stream fell behind the live feed and caught up from the log.
    pub sse_catchups: AtomicU64,
    /// How long each group flush took.
    pub flush_seconds: Histogram,
    /// Channel replies the provider accepted.
    pub channel_sends: AtomicU64,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| Metrics {
        messages_created: Default::default(),
        sse_connections: AtomicU64::new(0),
        sse_catchups: AtomicU64::new(0),
        channel_sends: AtomicU64::new(0),
        flush_seconds: Histogram::new(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]),
        requests: Mutex::new(BTreeMap::new()),
    })
}

impl Metrics {
    /// Counts one stored message by who wrote it.
    pub fn message_created(&self, author: crate::domain::AuthorType) {
        let i = match author {
            crate::domain::AuthorType::Contact => 0,
            crate::domain::AuthorType::Agent => 1,
            crate::domain::AuthorType::System => 2,
        };
        self.messages_created[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one answered request by method, route pattern and status.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("# HELP natter_http_requests_total HTTP requests answered.\n# TYPE natter_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(
                    s,
                    "natter_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    route.replace('\\', "\\\\").replace('"', "\\\"")
                );
            }
        }
        s.push_str("# HELP natter_messages_created_total Messages stored.\n# TYPE natter_messages_created_total counter\n");
        for (i, author) in ["contact", "agent", "system"].iter().enumerate() {
            let _ = writeln!(
                s,
                "natter_messages_created_total{{author=\"{author}\"}} {}",
                self.messages_created[i].load(Ordering::Relaxed)
            );
        }
        s.push_str("# HELP natter_sse_connections Open event streams.\n# TYPE natter_sse_connections gauge\n");
        let _ = writeln!(
            s,
            "natter_sse_connections {}",
            self.sse_connections.load(Ordering::Relaxed)
        );
        s.push_str("# HELP natter_sse_catchups_total Streams that fell behind and caught up from the log.\n# TYPE natter_sse_catchups_total counter\n");
        let _ = writeln!(
            s,
            "natter_sse_catchups_total {}",
            self.sse_catchups.load(Ordering::Relaxed)
        );
        s.push_str("# HELP natter_channel_sends_total Channel replies the provider accepted.\n# TYPE natter_channel_sends_total counter\n");
        let _ = writeln!(
            s,
            "natter_channel_sends_total {}",
            self.channel_sends.load(Ordering::Relaxed)
        );
        s.push_str("# HELP natter_flush_seconds Duration of group flushes of the database.\n# TYPE natter_flush_seconds histogram\n");
        self.flush_seconds.render("natter_flush_seconds", &mut s);
        s
    }
}

/// A fixed-bucket histogram.
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Self {
            bounds: bounds.to_vec(),
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation in seconds.
    pub fn observe(&self, secs: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if secs <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, name: &str, s: &mut String) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                s,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "{name}_count {count}");
    }
}
