//! Prometheus metrics on `/metrics`, kept with `prometheus-client` (the
//! Prometheus project's own Rust client): atomics for counters, gauges and
//! the flush histogram, and one read-locked family for request counts, so
//! a request costs a shared lock and no allocation of ours (the hand-written
//! version took a mutex and allocated two strings per request).

use std::sync::OnceLock;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::domain::AuthorType;

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    messages: Family<AuthorLabel, Counter>,
    /// Open SSE streams.
    pub sse_connections: Gauge,
    /// Times a stream fell behind the live feed and caught up from the log.
    pub sse_catchups: Counter,
    /// Durable events the fan-out handed to a stream task: with
    /// [`Self::events_delivered`], shows how many wake-ups were wasted.
    pub stream_wakeups: Counter,
    /// Frames of durable events sent to a client (live or replayed).
    pub events_delivered: Counter,
    /// How long each group flush took, in seconds.
    pub flush_seconds: Histogram,
    /// How many writes each batch of the group commit held: the higher
    /// under load, the less each write pays for its transaction and flush.
    pub write_batch_size: Histogram,
    /// Channel replies the provider accepted.
    pub channel_sends: Counter,
}

/// The labels of one answered request. The route is actix's pattern
/// (`/api/v1/conversations/{id}`), never the raw path, so the family stays
/// as small as the route table.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Who wrote a stored message.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthorLabel {
    author: Author,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Author {
    contact,
    agent,
    system,
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "natter_http_requests",
            "HTTP requests answered",
            requests.clone(),
        );
        let messages = Family::<AuthorLabel, Counter>::default();
        registry.register(
            "natter_messages_created",
            "Messages stored",
            messages.clone(),
        );
        // Every author shows from the start, at zero.
        for author in [Author::contact, Author::agent, Author::system] {
            let _ = messages.get_or_create(&AuthorLabel { author });
        }
        let sse_connections = Gauge::default();
        registry.register(
            "natter_sse_connections",
            "Open event streams",
            sse_connections.clone(),
        );
        let sse_catchups = Counter::default();
        registry.register(
            "natter_sse_catchups",
            "Streams that fell behind and caught up from the log",
            sse_catchups.clone(),
        );
        let stream_wakeups = Counter::default();
        registry.register(
            "natter_stream_wakeups",
            "Durable events handed to an event stream's task",
            stream_wakeups.clone(),
        );
        let events_delivered = Counter::default();
        registry.register(
            "natter_events_delivered",
            "Frames of durable events sent to an event stream's client",
            events_delivered.clone(),
        );
        let channel_sends = Counter::default();
        registry.register(
            "natter_channel_sends",
            "Channel replies the provider accepted",
            channel_sends.clone(),
        );
        let flush_seconds = Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]);
        registry.register(
            "natter_flush_seconds",
            "Duration of group flushes of the database",
            flush_seconds.clone(),
        );
        let write_batch_size = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]);
        registry.register(
            "natter_write_batch_size",
            "Writes applied together in one batch of the group commit",
            write_batch_size.clone(),
        );
        Self {
            registry,
            requests,
            messages,
            sse_connections,
            sse_catchups,
            stream_wakeups,
            events_delivered,
            flush_seconds,
            write_batch_size,
            channel_sends,
        }
    }

    /// Counts one stored message by who wrote it.
    pub fn message_created(&self, author: AuthorType) {
        let author = match author {
            AuthorType::Contact => Author::contact,
            AuthorType::Agent => Author::agent,
            AuthorType::System => Author::system,
        };
        self.messages.get_or_create(&AuthorLabel { author }).inc();
    }

    /// Counts one answered request by method, route pattern and status.
    pub fn request(&self, method: String, route: String, status: u16) {
        let labels = RequestLabels {
            method,
            route,
            status,
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// The text exposition (OpenMetrics, which Prometheus reads as text).
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut s, &self.registry) {
            // Writing into a String cannot fail; say so rather than panic.
            tracing::error!(error = %e, "could not render the metrics");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_their_labels_and_the_counters_total_suffix() {
        let m = Metrics::new();
        m.request("POST".into(), "/api/v1/customer/conversations".into(), 201);
        m.request("POST".into(), "/api/v1/customer/conversations".into(), 201);
        m.message_created(AuthorType::Agent);
        m.sse_connections.inc();
        m.flush_seconds.observe(0.002);
        let text = m.render();
        for line in [
            "natter_http_requests_total{method=\"POST\",route=\"/api/v1/customer/conversations\",status=\"201\"} 2",
            "natter_messages_created_total{author=\"agent\"} 1",
            "natter_messages_created_total{author=\"contact\"} 0",
            "natter_sse_connections 1",
            "natter_sse_catchups_total 0",
            "natter_channel_sends_total 0",
            "natter_flush_seconds_bucket{le=\"0.0025\"} 1",
            "natter_flush_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
