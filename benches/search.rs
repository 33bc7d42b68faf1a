//! Search benchmark (issue: full-text search): generates messages over
//! conversations straight into the store, builds the index, and measures
//! build time, index size, query latency (single words, prefixes, phrases,
//! filtered) and how much live indexing slows message posting.
//!
//! Run: `cargo bench --bench search` (1,000,000 messages over 50,000
//! conversations); `NATTER_SEARCH_BENCH_MESSAGES=200000` for a quicker run.
//! Prints a table and writes `target/search-bench.json`.

// Test and benchmark code may unwrap: a failure here is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use natter::domain::ids::{AgentId, ContactId, ConversationId, InboxId};
use natter::domain::{time, AuthorType};
use natter::service::index::{run_indexer, SearchFilter, SearchIndex};
use natter::service::realtime::Viewer;
use natter::store::{Author, InboxRecord, NewContact, NewMessage, Store, StoreOptions};

/// Words for generated text: common support vocabulary, so queries hit.
const WORDS: &[&str] = &[
    "order",
    "refund",
    "delivery",
    "parcel",
    "late",
    "tracking",
    "invoice",
    "payment",
    "card",
    "account",
    "password",
    "reset",
    "shipping",
    "address",
    "return",
    "exchange",
    "size",
    "colour",
    "discount",
    "code",
    "subscription",
    "cancel",
    "upgrade",
    "plan",
    "help",
    "thanks",
    "hello",
    "question",
    "problem",
    "error",
    "broken",
    "damaged",
    "missing",
    "item",
    "warehouse",
    "courier",
    "weekend",
    "monday",
    "tomorrow",
    "today",
    "urgent",
    "please",
    "update",
    "status",
    "email",
    "phone",
    "contact",
    "support",
    "team",
    "manager",
];

/// A small deterministic generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        // Skewed towards the first words, like real text.
        let a = (self.next() % xs.len() as u64) as usize;
        let b = (self.next() % xs.len() as u64) as usize;
        xs[a.min(b)]
    }
}

fn sentence(rng: &mut Rng, n: u64) -> String {
    let words = 6 + rng.next() % 14;
    let mut s: Vec<String> = (0..words).map(|_| rng.pick(WORDS).to_owned()).collect();
    match n % 10 {
        0 => s.push(format!("#ORD-{:06}", n % 1_000_000)),
        1 => s.push(format!("user{}@example.com", n % 5000)),
        2 => s.push("配送が遅れています".to_owned()),
        _ => {}
    }
    s.join(" ")
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            total += if path.is_dir() {
                dir_size(&path)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    total
}

/// Posts `count` messages into existing conversations from `writers` tasks.
async fn post(
    store: &Arc<Store>,
    convs: &[(ConversationId, ContactId)],
    count: u64,
    seed: u64,
) -> f64 {
    let started = Instant::now();
    let writers = 64u64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let convs = convs.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ ((w + 1) * 0x9E37_79B9));
            for i in 0..count / writers {
                let (conv, contact) = convs[(rng.next() % convs.len() as u64) as usize];
                let author = Author {
                    kind: AuthorType::Contact,
                    id: Some(contact.get()),
                    name: None,
                };
                let body = sentence(&mut rng, i * writers + w);
                store
                    .post_message(
                        conv,
                        NewMessage {
                            author,
                            body,
                            private: false,
                            attachments: Vec::new(),
                            via: None,
                        },
                        // The contact's messages: nothing to send.
                        natter::store::Effects::default(),
                        time::now(),
                    )
                    .await
                    .expect("post");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let messages: u64 = std::env::var("NATTER_SEARCH_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let conversations: u64 = (messages / 20).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&StoreOptions { path: dir.path().join("data"), cache_bytes: 64 << 20, fsync: false, event_buffer: 4096, min_free_bytes: 0, backup_before_migration: false })
            .expect("store");
        tokio::spawn(store.durability().clone().run_flusher());
        let inbox = store
            .create_inbox(
                InboxRecord { id: InboxId::new(0), name: "Bench".into(), channel: "web".into(), widget_key: "bench".into(), hmac_secret: "s".into(), greeting: None, reply_time: None, accent_color: None, prechat: Default::default(), assignment: Default::default(), business_hours: None, out_of_office: None, csat: false, sla: None, created_at: 0, settings: Default::default(), api_token: None, webhook_secret: None },
                time::now(),
            )
            .await
            .expect("inbox");
        // Conversations (each with its first message), then the rest.
        let started = Instant::now();
        let mut convs = Vec::with_capacity(conversations as usize);
        let mut rng = Rng(42);
        let chunk = 64;
        let mut made = 0u64;
        while made < conversations {
            let mut batch = Vec::new();
            for _ in 0..chunk.min(conversations - made) {
                let store = store.clone();
                let body = sentence(&mut rng, made);
                made += 1;
                batch.push(tokio::spawn(async move {
                    let c = store.upsert_contact(inbox.id, NewContact { name: Some(format!("Customer {made}")), email: None, external_id: None }, time::now()).await.expect("contact");
                    let author = Author { kind: AuthorType::Contact, id: Some(c.id.get()), name: c.name.clone() };
                    let (conv, _) = store.create_conversation(inbox.id, c.id, NewMessage { author, body, private: false, attachments: Vec::new(), via: None }, time::now()).await.expect("conversation");
                    (conv.id, c.id)
                }));
            }
            for b in batch {
                convs.push(b.await.expect("task"));
            }
        }
        let rest = messages.saturating_sub(conversations);
        post(&store, &convs, rest, 7).await;
        let generate_secs = started.elapsed().as_secs_f64();
        println!("generated {messages} messages over {conversations} conversations in {generate_secs:.1}s");

        // Index build from the store.
        let index_dir = dir.path().join("data/index");
        let index = Arc::new(SearchIndex::open(&index_dir).expect("index"));
        let started = Instant::now();
        index.rebuild(&store, |_, _| {}).expect("rebuild");
        let build_secs = started.elapsed().as_secs_f64();
        let index_bytes = dir_size(&index_dir);
        let store_bytes = dir_size(&dir.path().join("data/db"));

        // Queries.
        let admin = Viewer::Agent { id: AgentId::new(0), admin: true };
        let kinds: [(&str, Vec<String>, SearchFilter); 4] = [
            ("single word", WORDS.iter().take(40).map(|w| w.to_string()).collect(), SearchFilter::default()),
            ("prefix", WORDS.iter().take(40).map(|w| w[..3.min(w.len())].to_string()).collect(), SearchFilter::default()),
            ("phrase", (0..40).map(|i| format!("\"{} {}\"", WORDS[i % 10], WORDS[(i + 1) % 10])).collect(), SearchFilter::default()),
            (
                "filtered (author, dates)",
                WORDS.iter().take(40).map(|w| w.to_string()).collect(),
                SearchFilter { author: Some(AuthorType::Contact), from: Some(0), to: Some(time::now() + 1), ..SearchFilter::default() },
            ),
        ];
        let mut rows = Vec::new();
        for (name, queries, filter) in kinds.iter() {
            let mut lat = Vec::new();
            for round in 0..5 {
                for q in queries {
                    let t = Instant::now();
                    let hits = index.search(&store, admin, q, filter, 20, None).expect("search");
                    lat.push(t.elapsed());
                    if round == 0 && hits.hits.is_empty() && *name != "phrase" {
                        eprintln!("warning: no hit for {q}");
                    }
                }
            }
            lat.sort();
            rows.push((name.to_string(), percentile(&lat, 0.5), percentile(&lat, 0.95), lat.len()));
        }

        // Posting with and without live indexing.
        let sample = 20_000u64.min(messages);
        let without = post(&store, &convs, sample, 11).await;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let indexer = tokio::spawn(run_indexer(index.clone(), store.clone(), stop_rx));
        let with = post(&store, &convs, sample, 13).await;
        let _ = stop_tx.send(true);
        let _ = indexer.await;
        let slowdown = (1.0 - with / without) * 100.0;

        println!();
        println!("| measure | value |");
        println!("| --- | --- |");
        println!("| messages / conversations | {messages} / {conversations} |");
        println!("| generate (store writes, durable) | {generate_secs:.1} s |");
        println!("| index build from the store | {build_secs:.1} s ({:.0} messages/s) |", messages as f64 / build_secs);
        println!("| index size on disk | {:.1} MiB (store: {:.1} MiB) |", index_bytes as f64 / 1048576.0, store_bytes as f64 / 1048576.0);
        for (name, p50, p95, n) in &rows {
            println!("| query: {name} (n={n}) | p50 {p50:.2} ms, p95 {p95:.2} ms |");
        }
        println!("| posting without / with live indexing | {without:.0} / {with:.0} messages/s ({slowdown:+.1}% slower) |");
        let json = serde_json::json!({
            "messages": messages, "conversations": conversations,
            "generate_secs": generate_secs, "index_build_secs": build_secs,
            "index_bytes": index_bytes, "store_bytes": store_bytes,
            "queries": rows.iter().map(|(n, a, b, c)| serde_json::json!({"kind": n, "p50_ms": a, "p95_ms": b, "n": c})).collect::<Vec<_>>(),
            "post_without_index_per_s": without, "post_with_index_per_s": with, "slowdown_percent": slowdown,
        });
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/search-bench.json");
        let _ = std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap_or_default());
        println!("\nwritten to {}", out.display());
    });
}
