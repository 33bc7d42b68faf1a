//! The full-text index: tantivy, under `<data>/index`, rebuilt from sled
//! whenever in doubt.
//!
//! The index follows the store's event log: every durable
//! `message.created` becomes a document. Each commit records in its payload
//! the id of the last event it covers, so after a crash (or with a copy of
//! an older index) the indexer catches up from the log at start, and a
//! message acknowledged before a crash is always searchable after restart.
//! Searches wait (briefly) until the index has caught up with everything
//! already published, so a message is findable as soon as its 201 is.
//!
//! Conversation properties that change (status, assignee, labels) are not
//! in the index; they are checked against the store for each hit.

pub mod tokenizer;

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader,
    TantivyDocument, Term,
};
use tokio::sync::watch;

use crate::domain::ids::{AgentId, ContactId, ConversationId, InboxId};
use crate::domain::time::{self, Micros};
use crate::domain::{AuthorType, ConversationStatus};
use crate::service::realtime::Viewer;
use crate::store::{EventPayload, EventRecord, MessageRecord, Store, StoreError};

/// Bump when the schema or the tokenizer changes: an index of another
/// version is rebuilt from the store at start.
const INDEX_VERSION: u32 = 2;
/// Memory for tantivy's indexing buffer (its minimum).
const WRITER_BYTES: usize = 15_000_000;

/// What goes wrong in the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// tantivy failed.
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The store failed while indexing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something else (a poisoned lock, I/O).
    #[error("search index: {0}")]
    Other(String),
}

impl From<IndexError> for StoreError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Store(s) => s,
            other => StoreError::Corrupt(other.to_string()),
        }
    }
}

type Result<T, E = IndexError> = std::result::Result<T, E>;

#[derive(Serialize, Deserialize)]
struct Payload {
    version: u32,
    event_id: u64,
    /// After a rebuild from the messages while writes went on, events up to
    /// here may bring a message the scan already indexed: only those are
    /// deleted before they are added again (a delete costs a term look-up
    /// in every segment at the next commit, so the live path avoids it).
    #[serde(default)]
    overlap_until: u64,
}

#[derive(Clone, Copy)]
struct Fields {
    message_id: Field,
    conversation_id: Field,
    inbox_id: Field,
    contact_id: Field,
    seq: Field,
    author: Field,
    private: Field,
    created_at: Field,
    body: Field,
    contact: Field,
}

/// Each field is stored only the way it is read: terms for filters and
/// deletes, fast (columnar) for what a hit reads back and for the recency
/// boost, and nothing in tantivy's compressed document store, whose
/// compressor was a good part of the index's CPU (BENCHMARKS.md).
fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let term = || NumericOptions::default().set_indexed();
    let fast = || NumericOptions::default().set_fast();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer::NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let f = Fields {
        message_id: b.add_u64_field("message_id", term()),
        conversation_id: b.add_u64_field("conversation_id", fast()),
        inbox_id: b.add_u64_field("inbox_id", term()),
        contact_id: b.add_u64_field("contact_id", term()),
        seq: b.add_u64_field("seq", fast()),
        author: b.add_u64_field("author", term()),
        private: b.add_u64_field("private", term()),
        created_at: b.add_i64_field("created_at", term().set_fast()),
        body: b.add_text_field("body", text.clone()),
        contact: b.add_text_field("contact", text),
    };
    (b.build(), f)
}

fn author_code(a: AuthorType) -> u64 {
    match a {
        AuthorType::Contact => 0,
        AuthorType::Agent => 1,
        AuthorType::System => 2,
    }
}

/// The search index and its writer.
pub struct SearchIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    f: Fields,
    path: PathBuf,
    indexed_upto: AtomicU64,
    /// See [`Payload::overlap_until`].
    overlap_until: AtomicU64,
    /// Contacts' indexed text (name and email) until the next commit: the
    /// messages of one busy contact read its record once per commit
    /// instead of once each.
    contacts: Mutex<HashMap<ContactId, Option<String>>>,
    progress: watch::Sender<u64>,
}

/// Filters of a search, on top of what the viewer may see.
#[derive(Debug, Default, Clone)]
pub struct SearchFilter {
    /// Only this inbox.
    pub inbox: Option<InboxId>,
    /// Only conversations with this status (checked against the store).
    pub status: Option<ConversationStatus>,
    /// `Some(None)` unassigned, `Some(Some(a))` assigned to `a`.
    pub assignee: Option<Option<AgentId>>,
    /// Only conversations with this label.
    pub label: Option<String>,
    /// Only this contact.
    pub contact: Option<ContactId>,
    /// Only messages by this kind of author.
    pub author: Option<AuthorType>,
    /// Only messages at or after this time.
    pub from: Option<Micros>,
    /// Only messages before this time.
    pub to: Option<Micros>,
}

/// One hit.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The message that matched.
    pub message: MessageRecord,
    /// Text around the match.
    pub snippet: String,
    /// Character ranges of the matches within `snippet`.
    pub highlights: Vec<(usize, usize)>,
}

/// A page of hits.
#[derive(Debug, Default)]
pub struct Hits {
    /// Best first.
    pub hits: Vec<Hit>,
    /// Opaque cursor of the next page, if any.
    pub next_cursor: Option<String>,
}

impl SearchIndex {
    /// Opens the index under `dir`, creating it, or rebuilding it when it
    /// is of another version or unreadable.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::Other(e.to_string()))?;
        let (schema, f) = schema();
        let index = match Index::open_in_dir(dir) {
            Ok(i) if Self::version_of(&i) == Some(INDEX_VERSION) && i.schema() == schema => i,
            _ => {
                // Another version, or no index yet: start empty; the
                // indexer fills it from the store.
                let _ = std::fs::remove_dir_all(dir);
                std::fs::create_dir_all(dir).map_err(|e| IndexError::Other(e.to_string()))?;
                Index::create_in_dir(dir, schema.clone())?
            }
        };
        index
            .tokenizers()
            .register(tokenizer::NAME, tokenizer::analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer_with_num_threads(1, WRITER_BYTES)?;
        let payload = Self::payload_of(&index);
        let upto = payload.as_ref().map_or(0, |p| p.event_id);
        let overlap = payload.as_ref().map_or(0, |p| p.overlap_until);
        Ok(Self {
            reader,
            writer: Mutex::new(writer),
            f,
            path: dir.to_path_buf(),
            indexed_upto: AtomicU64::new(upto),
            overlap_until: AtomicU64::new(overlap),
            contacts: Mutex::new(HashMap::new()),
            progress: watch::channel(upto).0,
        })
    }

    fn payload_of(index: &Index) -> Option<Payload> {
        let metas = index.load_metas().ok()?;
        serde_json::from_str(metas.payload.as_deref()?).ok()
    }

    fn version_of(index: &Index) -> Option<u32> {
        match Self::payload_of(index) {
            Some(p) => Some(p.version),
            // A fresh index that never committed is of our version.
            None => index
                .load_metas()
                .ok()
                .filter(|m| m.segments.is_empty())
                .map(|_| INDEX_VERSION),
        }
    }

    /// Where the index lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last event id the index covers.
    pub fn indexed_upto(&self) -> u64 {
        self.indexed_upto.load(Ordering::Acquire)
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>> {
        self.writer
            .lock()
            .map_err(|_| IndexError::Other("writer lock poisoned".into()))
    }

    fn document(
        &self,
        store: &Store,
        m: &MessageRecord,
        inbox_id: InboxId,
        contact_id: ContactId,
    ) -> Result<TantivyDocument> {
        let f = self.f;
        let mut d = TantivyDocument::default();
        d.add_u64(f.message_id, m.id.get());
        d.add_u64(f.conversation_id, m.conversation_id.get());
        d.add_u64(f.inbox_id, inbox_id.get());
        d.add_u64(f.contact_id, contact_id.get());
        d.add_u64(f.seq, m.seq);
        d.add_u64(f.author, author_code(m.author.kind));
        d.add_u64(f.private, u64::from(m.private));
        d.add_i64(f.created_at, m.created_at);
        d.add_text(f.body, &m.body);
        for a in &m.attachments {
            d.add_text(f.body, &a.name);
        }
        if let Some(text) = self.contact_text(store, contact_id)? {
            d.add_text(f.contact, text);
        }
        Ok(d)
    }

    /// A contact's name and email as indexed, from the cache or the store.
    fn contact_text(&self, store: &Store, id: ContactId) -> Result<Option<String>> {
        let mut cache = self
            .contacts
            .lock()
            .map_err(|_| IndexError::Other("contact cache lock poisoned".into()))?;
        if let Some(t) = cache.get(&id) {
            return Ok(t.clone());
        }
        let text = store.contact(id)?.map(|c| {
            format!(
                "{} {}",
                c.name.unwrap_or_default(),
                c.email.unwrap_or_default()
            )
        });
        cache.insert(id, text.clone());
        Ok(text)
    }

    /// Adds what one event changes (not yet committed).
    pub fn apply(&self, store: &Store, ev: &EventRecord) -> Result<()> {
        if let EventPayload::ContactDeleted { contact_id } = &ev.payload {
            self.writer()?
                .delete_term(Term::from_field_u64(self.f.contact_id, contact_id.get()));
        }
        // A message of a contact deleted later is added here and removed
        // by that later `contact.deleted` (applied in log order), so a
        // replay of the log needs no look-up of whether it still exists;
        // a hit is read from the store anyway, and skipped if gone.
        if let EventPayload::MessageCreated { message } = &ev.payload {
            let doc = self.document(store, message, ev.inbox_id, ev.contact_id)?;
            let w = self.writer()?;
            if ev.id.get() <= self.overlap_until.load(Ordering::Acquire) {
                w.delete_term(Term::from_field_u64(self.f.message_id, message.id.get()));
            }
            w.add_document(doc)?;
        }
        Ok(())
    }

    /// Commits everything added so far as covering events up to `upto`,
    /// and makes it visible to searches.
    pub fn commit(&self, upto: u64) -> Result<()> {
        {
            let mut w = self.writer()?;
            let mut prepared = w.prepare_commit()?;
            let payload = serde_json::to_string(&Payload {
                version: INDEX_VERSION,
                event_id: upto,
                overlap_until: self.overlap_until.load(Ordering::Acquire),
            })
            .map_err(|e| IndexError::Other(e.to_string()))?;
            prepared.set_payload(&payload);
            prepared.commit()?;
        }
        self.reader.reload()?;
        self.indexed_upto.store(upto, Ordering::Release);
        // A contact renamed since shows under its new name from the next
        // commit on.
        if let Ok(mut c) = self.contacts.lock() {
            c.clear();
        }
        self.progress.send_replace(upto);
        Ok(())
    }

    /// Indexes every durable event after what the index covers.
    pub fn catch_up(&self, store: &Store) -> Result<u64> {
        let target = store.durability().published_upto();
        let mut at = self.indexed_upto();
        if at > target {
            // An index newer than the store (a restored backup): rebuild.
            self.rebuild(store, |_, _| {})?;
            return Ok(self.indexed_upto());
        }
        while at < target {
            let batch = store.events_between(at, target, 2000)?;
            let Some(last) = batch.last().map(|e| e.id.get()) else {
                break;
            };
            for ev in &batch {
                self.apply(store, ev)?;
            }
            at = last;
        }
        if at != self.indexed_upto() || target == 0 {
            self.commit(at.max(self.indexed_upto()))?;
        }
        Ok(at)
    }

    /// Rebuilds the whole index from the messages in the store (the source
    /// of truth), reporting (done, total) as it goes.
    pub fn rebuild(&self, store: &Store, mut progress: impl FnMut(u64, u64)) -> Result<()> {
        let upto = store.durability().published_upto();
        let total = store.message_count();
        {
            let w = self.writer()?;
            w.delete_all_documents()?;
        }
        let mut done = 0u64;
        let mut convs: HashMap<ConversationId, (InboxId, ContactId)> = HashMap::new();
        for m in store.scan_messages(None) {
            let m = m?;
            let (inbox, contact) = match convs.get(&m.conversation_id) {
                Some(x) => *x,
                None => {
                    let c = store
                        .conversation(m.conversation_id)?
                        .ok_or(StoreError::NotFound)?;
                    convs.insert(c.id, (c.inbox_id, c.contact_id));
                    (c.inbox_id, c.contact_id)
                }
            };
            let doc = self.document(store, &m, inbox, contact)?;
            self.writer()?.add_document(doc)?;
            done += 1;
            if done.is_multiple_of(10_000) {
                progress(done, total);
            }
        }
        progress(done, total);
        // What was published while the scan ran may be in it already.
        self.overlap_until
            .store(store.durability().published_upto(), Ordering::Release);
        self.commit(upto)
    }

    /// Waits (at most `max`) until the index covers `event_id`.
    pub async fn wait_for(&self, event_id: u64, max: Duration) {
        let mut rx = self.progress.subscribe();
        let _ = tokio::time::timeout(max, rx.wait_for(|v| *v >= event_id)).await;
    }

    /// Searches what `viewer` may see. `cursor` is the rank to resume from.
    pub fn search(
        &self,
        store: &Store,
        viewer: Viewer,
        text: &str,
        filter: &SearchFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Hits> {
        let f = self.f;
        let Some(text_query) = self.text_query(text, matches!(viewer, Viewer::Agent { .. })) else {
            return Ok(Hits::default());
        };
        let mut must: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query)];
        let term = |field: Field, v: u64| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_u64(field, v),
                IndexRecordOption::Basic,
            ))
        };
        let mut visible_inboxes: Option<Vec<InboxId>> = None;
        match viewer {
            Viewer::Contact { id } => {
                must.push((Occur::Must, term(f.contact_id, id.get())));
                must.push((Occur::Must, term(f.private, 0)));
            }
            Viewer::Agent { id, admin } => {
                if !admin {
                    let mine: Vec<InboxId> = store
                        .inboxes()?
                        .into_iter()
                        .map(|i| i.id)
                        .filter(|i| store.is_member(*i, id).unwrap_or(false))
                        .collect();
                    visible_inboxes = Some(mine);
                }
            }
        }
        let allowed: Vec<InboxId> = match (&visible_inboxes, filter.inbox) {
            (Some(v), Some(i)) => v.iter().copied().filter(|x| *x == i).collect(),
            (Some(v), None) => v.clone(),
            (None, Some(i)) => vec![i],
            (None, None) => Vec::new(),
        };
        if visible_inboxes.is_some() || filter.inbox.is_some() {
            if allowed.is_empty() {
                return Ok(Hits::default());
            }
            let any: Vec<(Occur, Box<dyn Query>)> = allowed
                .iter()
                .map(|i| (Occur::Should, term(f.inbox_id, i.get())))
                .collect();
            must.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if let Some(c) = filter.contact {
            must.push((Occur::Must, term(f.contact_id, c.get())));
        }
        if let Some(a) = filter.author {
            must.push((Occur::Must, term(f.author, author_code(a))));
        }
        if filter.from.is_some() || filter.to.is_some() {
            let lo = filter.from.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_i64(f.created_at, t))
            });
            let hi = filter.to.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_i64(f.created_at, t))
            });
            must.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        let query = BooleanQuery::new(must);
        let searcher = self.reader.searcher();
        let now = time::now();
        let mut rank: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut hits = Vec::new();
        let mut more = false;
        let mut next_rank = rank;
        let mut snippets = SnippetGenerator::create(&searcher, &query, f.body)?;
        snippets.set_max_num_chars(160);
        let batch = (limit * 2).max(50);
        'outer: loop {
            let collector = TopDocs::with_limit(batch).and_offset(rank).tweak_score(
                move |seg: &SegmentReader| {
                    let created = seg
                        .fast_fields()
                        .i64("created_at")
                        .ok()
                        .map(|c| c.first_or_default_col(0));
                    move |doc, score: Score| {
                        let t = created.as_ref().map_or(now, |c| c.get_val(doc));
                        let age_days = ((now - t).max(0) / 86_400_000_000) as f32;
                        // Recent messages rank higher, at most doubling a score.
                        score * (1.0 + 1.0 / (1.0 + age_days / 30.0))
                    }
                },
            );
            let page: Vec<(Score, DocAddress)> = searcher.search(&query, &collector)?;
            if page.is_empty() {
                break;
            }
            for (i, (_, addr)) in page.iter().enumerate() {
                let fast = searcher.segment_reader(addr.segment_ord).fast_fields();
                let get = |name: &str| -> Result<u64> {
                    Ok(fast.u64(name)?.first(addr.doc_id).unwrap_or(0))
                };
                let (conv_id, seq) = (ConversationId::new(get("conversation_id")?), get("seq")?);
                let Some(message) = store.message(conv_id, seq)? else {
                    continue;
                };
                if !self.conversation_matches(store, conv_id, filter)? {
                    continue;
                }
                if hits.len() == limit {
                    more = true;
                    next_rank = rank + i;
                    break 'outer;
                }
                let (snippet, highlights) = snippet_for(&snippets, &message.body, text);
                hits.push(Hit {
                    message,
                    snippet,
                    highlights,
                });
            }
            if page.len() < batch {
                break;
            }
            rank += page.len();
        }
        Ok(Hits {
            hits,
            next_cursor: more.then(|| next_rank.to_string()),
        })
    }

    fn conversation_matches(
        &self,
        store: &Store,
        conv: ConversationId,
        filter: &SearchFilter,
    ) -> Result<bool> {
        if filter.status.is_none() && filter.assignee.is_none() && filter.label.is_none() {
            return Ok(true);
        }
        let Some(c) = store.conversation(conv)? else {
            return Ok(false);
        };
        Ok(filter.status.is_none_or(|s| s == c.status)
            && filter.assignee.is_none_or(|a| a == c.assignee_id)
            && filter.label.as_ref().is_none_or(|l| c.labels.contains(l)))
    }

    /// Builds the text part: every word (or quoted phrase) must match;
    /// `word*` and the last unquoted word match as prefixes. Agents also
    /// match contact names and emails.
    fn text_query(&self, text: &str, with_contact: bool) -> Option<Box<dyn Query>> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let parts = split_query(text);
        let last_plain = parts.iter().rposition(|(_, quoted)| !quoted);
        for (i, (part, quoted)) in parts.iter().enumerate() {
            let prefix = !quoted && (part.ends_with('*') || Some(i) == last_plain);
            let toks = tokenizer::tokens(part);
            if toks.is_empty() {
                continue;
            }
            let mut fields = vec![self.f.body];
            if with_contact {
                fields.push(self.f.contact);
            }
            let alternatives: Vec<(Occur, Box<dyn Query>)> = fields
                .iter()
                .map(|field| (Occur::Should, phrase(*field, &toks, prefix)))
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(alternatives))));
        }
        (!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>)
    }
}

fn phrase(field: Field, toks: &[String], prefix: bool) -> Box<dyn Query> {
    let terms: Vec<Term> = toks
        .iter()
        .map(|t| Term::from_field_text(field, t))
        .collect();
    let exact: Box<dyn Query> = if terms.len() == 1 {
        Box::new(TermQuery::new(
            terms[0].clone(),
            IndexRecordOption::WithFreqs,
        ))
    } else {
        Box::new(PhraseQuery::new(terms.clone()))
    };
    if !prefix {
        return exact;
    }
    // Prefix expansions score flat; keep the exact match as a scored
    // alternative so relevance still ranks whole words.
    Box::new(BooleanQuery::new(vec![
        (Occur::Should, exact),
        (Occur::Should, Box::new(PhrasePrefixQuery::new(terms))),
    ]))
}

/// Splits a query into words and "quoted phrases" (public for the fuzzers).
pub fn split_query(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            out.push((r[..end].to_owned(), true));
            rest = r.get(end + 1..).unwrap_or("").trim_start();
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            out.push((rest[..end].to_owned(), false));
            rest = rest[end..].trim_start();
        }
    }
    out
}

/// A snippet of the body around the matches, with the matches' character
/// ranges; falls back to the start of the body.
fn snippet_for(gen: &SnippetGenerator, body: &str, query: &str) -> (String, Vec<(usize, usize)>) {
    let s = gen.snippet(body);
    let fragment = s.fragment();
    if !s.highlighted().is_empty() {
        let to_chars = |byte: usize| fragment[..byte.min(fragment.len())].chars().count();
        let ranges = s
            .highlighted()
            .iter()
            .map(|r| (to_chars(r.start), to_chars(r.end)))
            .collect();
        return (fragment.to_owned(), ranges);
    }
    // Prefix matches are not highlighted by tantivy: find the words here.
    let text: String = body.chars().take(160).collect();
    let lower: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let mut ranges = Vec::new();
    if lower.len() == text.chars().count() {
        for (word, _) in split_query(query) {
            let w: Vec<char> = word.trim_end_matches('*').to_lowercase().chars().collect();
            if w.is_empty() {
                continue;
            }
            if let Some(p) = lower.windows(w.len()).position(|x| x == w.as_slice()) {
                ranges.push((p, p + w.len()));
            }
        }
    }
    ranges.sort_unstable();
    (text, ranges)
}

/// The name of the indexer's thread (what `/proc/<pid>/task/*/comm`
/// shows), so the load suite can tell the indexer's CPU from the rest of
/// the server's.
pub const INDEXER_THREAD: &str = "natter-index";
/// How long an indexed event may wait for its commit: while events are
/// pending, the index commits (and becomes searchable) this often, however
/// steadily events keep coming.
const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// Events queued for the indexer's thread. When the queue is full the
/// feed counts as lagged and the thread reads what it missed from the log,
/// so a slow index costs log reads, never unbounded memory.
const QUEUE: usize = 1024;
/// How soon a feed that fell behind asks the thread again to catch up,
/// when no new event comes to carry the request.
const RETRY_BEHIND: Duration = Duration::from_millis(10);

/// What the async side hands the indexer's thread.
enum Work {
    /// The next durable event of the feed.
    Event(Arc<EventRecord>),
    /// Events were skipped (the feed lagged or the queue was full): index
    /// the log up to what is published.
    Lagged,
}

/// Runs the indexer: catches up from the log, then follows the feed of
/// durable events, committing every 200 ms while events are pending; at
/// shutdown it commits what it has and returns only then.
///
/// The work (reading the store for each document, tantivy's `add` and
/// `commit`) runs on one dedicated thread named [`INDEXER_THREAD`], fed
/// through a bounded queue by this task, which only forwards the feed:
/// the indexer never holds a runtime worker, and its cost shows apart
/// from the rest of the server's (tantivy's own indexing threads aside).
pub async fn run_indexer(
    index: Arc<SearchIndex>,
    store: Arc<Store>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Subscribe before the thread catches up from the log, so every event
    // published after its catch-up arrives here.
    let mut events = store.durability().subscribe();
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<Work>(QUEUE);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name(INDEXER_THREAD.into())
        .spawn(move || {
            index_on_this_thread(&index, &store, &work_rx);
            let _ = done_tx.send(());
        });
    if let Err(e) = spawned {
        // The index stays where it is; it catches up at the next start.
        tracing::error!(error = %e, "could not start the search indexer's thread");
        return;
    }
    // Whether events were dropped since the thread last got a `Lagged`.
    let mut behind = false;
    loop {
        let work = tokio::select! {
            _ = shutdown.changed() => break,
            r = events.recv() => match r {
                // An event after a drop is covered by the catch-up.
                Ok(_) if behind => Work::Lagged,
                Ok(ev) => Work::Event(ev),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Work::Lagged,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = tokio::time::sleep(RETRY_BEHIND), if behind => Work::Lagged,
        };
        match work_tx.try_send(work) {
            Ok(()) => behind = false,
            Err(std::sync::mpsc::TrySendError::Full(_)) => behind = true,
            // The thread has ended (it logged why).
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => break,
        }
    }
    // Closing the queue tells the thread to index what is queued, commit
    // and end; wait for that, so a stop leaves a committed index.
    drop(work_tx);
    let _ = done_rx.await;
}

/// The indexer's thread: catch up from the log, then index what the
/// queue brings, committing [`COMMIT_EVERY`] after the first uncommitted
/// event, until the queue closes; then commit what is pending.
fn index_on_this_thread(
    index: &SearchIndex,
    store: &Store,
    work: &std::sync::mpsc::Receiver<Work>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Instant;

    if let Err(e) = index.catch_up(store) {
        tracing::error!(error = %e, "search index catch-up failed");
    }
    // The newest event applied but not yet committed (0: none).
    let mut pending: u64 = 0;
    // When the pending events are to be committed.
    let mut due: Option<Instant> = None;
    loop {
        if let Some(at) = due {
            // Checked before receiving: a queue that is never empty must
            // not postpone the commit.
            if Instant::now() >= at {
                match index.commit(pending) {
                    Ok(()) => {
                        pending = 0;
                        due = None;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "search index commit failed");
                        due = Some(Instant::now() + COMMIT_EVERY);
                    }
                }
                continue;
            }
        }
        let next = match due {
            Some(at) => work.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => work.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let applied = match next {
            Ok(Work::Event(ev)) => apply_next(index, store, pending, &ev),
            Ok(Work::Lagged) => {
                let upto = store.durability().published_upto();
                let from = pending.max(index.indexed_upto());
                match store.events_between(from, upto, usize::MAX) {
                    Ok(evs) => {
                        for e in &evs {
                            let _ = index.apply(store, e);
                        }
                        (upto > from).then_some(upto)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "search index could not read the log");
                        None
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Some(upto) = applied {
            pending = upto;
            due.get_or_insert_with(|| Instant::now() + COMMIT_EVERY);
        }
    }
    if pending > 0 {
        if let Err(e) = index.commit(pending) {
            tracing::error!(error = %e, "search index commit at stop failed");
        }
    }
}

/// Applies one event of the feed after `pending` (the newest applied):
/// skips what the index already has, takes a gap from the log. Returns the
/// new newest applied event, if it moved.
fn apply_next(index: &SearchIndex, store: &Store, pending: u64, ev: &EventRecord) -> Option<u64> {
    let upto = pending.max(index.indexed_upto());
    let id = ev.id.get();
    if id <= upto {
        return None;
    }
    if id > upto + 1 {
        // Missed some (a restart race or a lag): take them from the log.
        match store.events_between(upto, id - 1, usize::MAX) {
            Ok(evs) => {
                for e in &evs {
                    let _ = index.apply(store, e);
                }
            }
            Err(e) => tracing::error!(error = %e, "search index could not read the log"),
        }
    }
    if let Err(e) = index.apply(store, ev) {
        tracing::error!(error = %e, "search index could not add a message");
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_split_into_words_and_phrases() {
        assert_eq!(
            split_query(r#"refund "order 12" late*"#),
            vec![
                ("refund".into(), false),
                ("order 12".into(), true),
                ("late*".into(), false)
            ]
        );
        assert_eq!(
            split_query(r#""unterminated"#),
            vec![("unterminated".into(), true)]
        );
        assert!(split_query("   ").is_empty());
    }
}
