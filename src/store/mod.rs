//! The embedded database: sled trees, one per record family, and the only
//! code in Natter that touches raw bytes.
//!
//! Every tree is named after its key and value. Key layouts (see `keys.rs`;
//! `+` is concatenation, ids and times are 8-byte big-endian, `SEP` is 0xff):
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `meta` | name | setting (schema version, setup token hash) |
//! | `agentid_agent` | AgentId | [`AgentRecord`] |
//! | `email_agentid` | email | AgentId |
//! | `tokenhash_agenttoken` | SHA-256(token) | [`TokenRecord`] |
//! | `agentid_tokenhash` | AgentId + SHA-256(token) | () |
//! | `inboxid_inbox` | InboxId | [`InboxRecord`] |
//! | `widgetkey_inboxid` | widget key | InboxId |
//! | `inboxid_agentid` | InboxId + AgentId | () (membership) |
//! | `contactid_contact` | ContactId | [`ContactRecord`] |
//! | `inboxexternalid_contactid` | InboxId + SEP + external id | ContactId |
//! | `tokenhash_contacttoken` | SHA-256(token) | [`TokenRecord`] |
//! | `contactid_tokenhash` | ContactId + SHA-256(token) | () |
//! | `conversationid_conversation` | ConversationId | [`ConversationRecord`] |
//! | `conversationseq_message` | ConversationId + Seq | [`MessageRecord`] |
//! | `conversationordinal_seq` | ConversationId + Ordinal (public messages, from 1) | Seq |
//! | `inboxstatusactivity_conversationid` | InboxId + StatusByte + (MAX - activity) + ConversationId | () |
//! | `contactid_conversationid` | ContactId + ConversationId | () |
//! | `snoozeuntil_conversationid` | Time + ConversationId | () |
//! | `eventid_event` | EventId | [`EventRecord`] |
//! | `resumehash_resume` | SHA-256(resume token) | [`ResumeRecord`] |
//! | `cannedid_canned` | CannedId | [`CannedRecord`] |
//! | `fileid_message` | attachment id | (ConversationId, Seq, private) |
//! | `inboxidentity_contactid` | InboxId + SEP + channel address | ContactId |
//! | `inboxproviderid_message` | InboxId + SEP + provider message id | (ConversationId, Seq) |
//! | `jobdue_job` | Time + JobId | [`JobRecord`] (the durable outbox) |
//! | `webhookid_webhook` | WebhookId | [`WebhookRecord`] |
//! | `webhookidattempt_attempt` | WebhookId + AttemptId | [`WebhookAttemptRecord`] |
//! | `email_contactid` | lower-case email + SEP + ContactId | () (possible duplicates) |
//! | `agentid_push` | AgentId + SHA-256(endpoint) | [`PushSubscriptionRecord`] |
//! | `notifydue_conversationid` | Time + ConversationId | () (unread-reply emails due) |
//! | `verified_contactid` | `phone:+digits`, `email:address` or `ext:<hash of identity secret>:<user id>` | ContactId (one person) |
//!
//! Writes go through [`Store::write`]: one sled transaction over all trees
//! (so a message, its conversation, its indexes and its event land together
//! or not at all), serialised by a lock that also hands out gapless event
//! ids, then a wait for the group commit of [`durability`].

mod agents;
mod canned;
mod channels;
mod contacts;
mod conversations;
pub mod durability;
mod events;
mod inboxes;
mod jobs;
pub mod keys;
mod notify;
mod push;
mod records;
mod webhooks;

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

pub use agents::{AgentUpdate, TokenOwner};
pub use channels::{Inbound, Received};
pub use contacts::NewContact;
pub use conversations::{ConversationFilter, ConversationPage, MessagePage, NewMessage, Patch};
pub use durability::Durability;
pub use records::*;

use crate::domain::time::Micros;
use crate::domain::Invalid;

/// The schema this build writes. Bump it with a migration in [`migrate`].
pub const SCHEMA_VERSION: u32 = 4;

/// What can go wrong in the store. Decode failures are `Corrupt` (logged,
/// shown to clients as a plain 500), never panics.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (disk full, I/O error).
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value could not be decoded.
    #[error("corrupt database: {0}")]
    Corrupt(String),
    /// The flush that would make a write durable failed.
    #[error("could not flush the database: {0}")]
    Flush(String),
    /// A referenced record does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule would be broken (an email already taken).
    #[error("{0}")]
    Conflict(String),
    /// A value broke a rule that can only be checked against stored data.
    #[error("{}", .0.message)]
    Invalid(Invalid),
    /// The data folder is held by another process.
    #[error("the data folder {0} is in use by another natter process")]
    Locked(PathBuf),
    /// The data folder cannot be used.
    #[error("cannot use the data folder {path}: {reason}")]
    DataFolder {
        /// The folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Free space on the data folder's disk is below the reserve: writes
    /// are refused (507) until space returns, reads go on.
    #[error("the disk holding the data folder is full; free some space")]
    DiskFull,
    /// The data was written by a newer Natter.
    #[error("the data folder holds schema version {found}, but this natter knows only up to {SCHEMA_VERSION}; run a newer natter")]
    TooNew {
        /// The version found.
        found: u32,
    },
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The result inside a transaction closure.
pub(crate) type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

/// Turns a store error into a transaction abort.
pub(crate) fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// The trees, in the order of [`TREE_NAMES`].
#[derive(Clone, Copy)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum T {
    Meta,
    AgentidAgent,
    EmailAgentid,
    TokenhashAgenttoken,
    AgentidTokenhash,
    InboxidInbox,
    WidgetkeyInboxid,
    InboxidAgentid,
    ContactidContact,
    InboxexternalidContactid,
    TokenhashContacttoken,
    ContactidTokenhash,
    ConversationidConversation,
    ConversationseqMessage,
    InboxstatusactivityConversationid,
    ContactidConversationid,
    SnoozeuntilConversationid,
    EventidEvent,
    ResumehashResume,
    CannedidCanned,
    FileidMessage,
    InboxidentityContactid,
    InboxprovideridMessage,
    JobdueJob,
    WebhookidWebhook,
    WebhookidattemptAttempt,
    EmailContactid,
    AgentidPush,
    NotifydueConversationid,
    VerifiedContactid,
    ConversationordinalSeq,
}

const TREE_NAMES: [&str; 31] = [
    "meta",
    "agentid_agent",
    "email_agentid",
    "tokenhash_agenttoken",
    "agentid_tokenhash",
    "inboxid_inbox",
    "widgetkey_inboxid",
    "inboxid_agentid",
    "contactid_contact",
    "inboxexternalid_contactid",
    "tokenhash_contacttoken",
    "contactid_tokenhash",
    "conversationid_conversation",
    "conversationseq_message",
    "inboxstatusactivity_conversationid",
    "contactid_conversationid",
    "snoozeuntil_conversationid",
    "eventid_event",
    "resumehash_resume",
    "cannedid_canned",
    "fileid_message",
    "inboxidentity_contactid",
    "inboxproviderid_message",
    "jobdue_job",
    "webhookid_webhook",
    "webhookidattempt_attempt",
    "email_contactid",
    "agentid_push",
    "notifydue_conversationid",
    "verified_contactid",
    "conversationordinal_seq",
];

/// How the store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The data folder.
    pub path: PathBuf,
    /// sled's page cache in bytes; its default (1 GiB) would dominate memory.
    pub cache_bytes: u64,
    /// Also fsync the data file after each group flush (survives power loss
    /// on disks that honour it, at a cost in throughput).
    pub fsync: bool,
    /// How many durable events a slow subscriber may fall behind before it
    /// has to catch up from the log.
    pub event_buffer: usize,
    /// Free bytes to keep on the data folder's disk: below this, writes are
    /// refused before sled hits ENOSPC (after which sled 0.34 refuses all
    /// writes until restart).
    pub min_free_bytes: u64,
}

/// The active webhook subscriptions as writes need them: (id, event names).
type ActiveWebhooks = Vec<(u64, Vec<String>)>;

/// Handle to the database; cheap to share behind an `Arc`.
pub struct Store {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    write_lock: Mutex<WriteState>,
    durability: Arc<Durability>,
    path: PathBuf,
    min_free_bytes: u64,
    /// Free bytes seen at the last check.
    free_bytes: std::sync::atomic::AtomicU64,
    /// When the free space was last checked (micros since the epoch).
    free_checked_at: std::sync::atomic::AtomicI64,
    /// The webhook subscriptions, read by every write that emits events
    /// (a transaction cannot scan a tree).
    webhooks: std::sync::RwLock<Arc<ActiveWebhooks>>,
    /// Woken when a write queued a job.
    jobs_ready: tokio::sync::Notify,
    /// Counts changes of who may see what (a token revoked, an agent's
    /// role or active flag changed, a membership removed, a contact
    /// deleted): open event streams watch it and check their viewer again
    /// at once, instead of every event re-reading the token.
    access: tokio::sync::watch::Sender<u64>,
    /// How long an agent's reply may stay unread before the contact is
    /// emailed (0: never).
    notify_delay: std::sync::atomic::AtomicI64,
    _lock_file: File,
}

struct WriteState {
    next_event_id: u64,
}

impl Store {
    /// Opens (or creates) the data folder, takes its lock, checks the
    /// schema and starts nothing: call [`Durability::run_flusher`] on a
    /// runtime before writing.
    pub fn open(opts: &StoreOptions) -> Result<Arc<Self>> {
        let path = &opts.path;
        let folder_err = |reason: String| StoreError::DataFolder {
            path: path.clone(),
            reason,
        };
        std::fs::create_dir_all(path).map_err(|e| folder_err(e.to_string()))?;
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join("natter.lock"))
            .map_err(|e| folder_err(e.to_string()))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(path.clone())),
            Err(std::fs::TryLockError::Error(e)) => return Err(folder_err(e.to_string())),
        }
        let db = sled::Config::new()
            .path(path.join("db"))
            .cache_capacity(opts.cache_bytes)
            .open()
            .map_err(|e| folder_err(e.to_string()))?;
        let trees = TREE_NAMES
            .iter()
            .map(|n| db.open_tree(n))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let fsync_file = if opts.fsync {
            Some(
                File::open(path.join("db").join("db"))
                    .map_err(|e| folder_err(format!("cannot open the data file for fsync: {e}")))?,
            )
        } else {
            None
        };
        let next_event_id = match trees[T::EventidEvent as usize].last()? {
            Some((k, _)) => keys::read_u64(&k, 0)? + 1,
            None => 1,
        };
        let durability = Arc::new(Durability::new(
            db.clone(),
            fsync_file,
            next_event_id - 1,
            opts.event_buffer,
        ));
        let store = Self {
            db,
            trees,
            write_lock: Mutex::new(WriteState { next_event_id }),
            durability,
            path: path.clone(),
            min_free_bytes: opts.min_free_bytes,
            free_bytes: std::sync::atomic::AtomicU64::new(u64::MAX),
            free_checked_at: std::sync::atomic::AtomicI64::new(0),
            webhooks: std::sync::RwLock::new(Arc::default()),
            jobs_ready: tokio::sync::Notify::new(),
            access: tokio::sync::watch::Sender::new(0),
            notify_delay: std::sync::atomic::AtomicI64::new(0),
            _lock_file: lock_file,
        };
        store.reload_webhooks()?;
        std::fs::create_dir_all(store.files_dir()).map_err(|e| folder_err(e.to_string()))?;
        store.migrate()?;
        Ok(Arc::new(store))
    }

    /// Checks the schema version and upgrades older data in place.
    fn migrate(&self) -> Result<()> {
        let meta = self.tree(T::Meta);
        let found = match meta.get("schema_version")? {
            Some(v) => u32::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("schema_version".into()))?,
            ),
            None => 0,
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found });
        }
        // Version 0 is an empty folder; later migrations go here, each
        // moving data from version n to n+1.
        if found == 1 {
            // 1 -> 2: contacts found by email (possible duplicates), and
            // verified user ids that link a person across websites.
            let index = self.tree(T::EmailContactid);
            let verified = self.tree(T::VerifiedContactid);
            for v in self.tree(T::ContactidContact).iter().values() {
                let c: ContactRecord = decode(&v?)?;
                if let Some(ext) = &c.external_id {
                    let key = format!("ext:{ext}");
                    if !verified.contains_key(key.as_bytes())? {
                        verified.insert(key.as_bytes(), &keys::u64_be(c.id))?;
                    }
                }
                if let Some(e) = c.email.as_deref().map(|e| e.trim().to_lowercase()) {
                    if !e.is_empty() {
                        index.insert(keys::text_id(&e, c.id), &[])?;
                    }
                }
            }
        }
        if (1..3).contains(&found) {
            // 2 -> 3: a verified user id is keyed by the identity secret
            // that verified it (`ext:<hash of secret>:<id>`, was
            // `ext:<id>`), so inboxes with different secrets never share a
            // person. Links already made (a contact known in several
            // inboxes) stay: they may be an admin's merge.
            let verified = self.tree(T::VerifiedContactid);
            let records = self.tree(T::ContactidContact);
            for kv in records.iter() {
                let (k, v) = kv?;
                let mut c: ContactRecord = decode(&v)?;
                let old: Vec<String> = c
                    .verified
                    .iter()
                    .filter(|v| v.starts_with("ext:"))
                    .cloned()
                    .chain(c.external_id.iter().map(|e| format!("ext:{e}")))
                    .collect();
                if old.is_empty() {
                    continue;
                }
                for o in &old {
                    if verified.get(o.as_bytes())?.as_deref() == Some(&keys::u64_be(c.id)[..]) {
                        verified.remove(o.as_bytes())?;
                    }
                }
                c.verified.retain(|v| !v.starts_with("ext:"));
                let inbox: Option<InboxRecord> =
                    self.get(T::InboxidInbox, &keys::u64_be(c.inbox_id))?;
                if let (Some(ext), Some(inbox)) = (&c.external_id, inbox) {
                    let key = contacts::verified_external(&inbox.hmac_secret, ext);
                    if !verified.contains_key(key.as_bytes())? {
                        verified.insert(key.as_bytes(), &keys::u64_be(c.id))?;
                    }
                    c.verified.push(key);
                }
                records.insert(k, encode(&c)?)?;
            }
            // Old keys whose contact is gone (merged away) go too.
            let stale: Vec<sled::IVec> = verified
                .scan_prefix(b"ext:")
                .keys()
                .filter(|k| {
                    k.as_ref()
                        .map_or(true, |k| !contacts::is_verified_external(k))
                })
                .collect::<std::result::Result<_, _>>()?;
            for k in stale {
                verified.remove(k)?;
            }
        }
        if (1..4).contains(&found) {
            // 3 -> 4: public messages get their ordinal (the contact's
            // numbering), with the index from ordinal to seq.
            self.assign_ordinals()?;
        }
        if found < SCHEMA_VERSION {
            meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            self.db.flush()?;
        }
        Ok(())
    }

    /// The group-commit flusher and the feed of durable events.
    pub fn durability(&self) -> &Arc<Durability> {
        &self.durability
    }

    /// Where attachment bytes live (created on open).
    pub fn files_dir(&self) -> PathBuf {
        self.path.join("files")
    }

    /// A receiver that sees each change of access (see the `access`
    /// field): a stream subscribes before it first checks its viewer, so
    /// a revocation in between is not missed.
    pub fn access_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.access.subscribe()
    }

    /// Tells open streams that access changed (after the change is
    /// durable, so what they read again is the new state).
    pub(crate) fn access_changed(&self) {
        self.access.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A small store in `path` for unit tests (no fsync, no disk reserve).
    #[cfg(test)]
    pub(crate) fn open_for_test(path: &std::path::Path) -> Arc<Store> {
        let opts = StoreOptions {
            path: path.to_path_buf(),
            cache_bytes: 1 << 20,
            fsync: false,
            event_buffer: 16,
            min_free_bytes: 0,
        };
        match Store::open(&opts) {
            Ok(s) => s,
            Err(e) => panic!("open: {e}"),
        }
    }

    /// Proves the database answers (for `/healthz`).
    pub fn ping(&self) -> Result<()> {
        self.tree(T::Meta).get("schema_version")?;
        Ok(())
    }

    /// Flushes everything synchronously (at shutdown and in the CLI).
    pub fn flush_now(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    pub(crate) fn tree(&self, t: T) -> &sled::Tree {
        &self.trees[t as usize]
    }

    /// Reads and decodes one record.
    pub(crate) fn get<V: DeserializeOwned>(&self, t: T, key: &[u8]) -> Result<Option<V>> {
        match self.tree(t).get(key)? {
            Some(v) => decode(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Reads an id stored as a value.
    pub(crate) fn get_id(&self, t: T, key: &[u8]) -> Result<Option<u64>> {
        match self.tree(t).get(key)? {
            Some(v) => keys::read_u64(&v, 0).map(Some),
            None => Ok(None),
        }
    }

    /// Reads a small setting from `meta`.
    pub fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(T::Meta).get(name)?.map(|v| v.to_vec()))
    }

    /// A setting created once (a generated key or secret): the stored value,
    /// or `fresh()` stored durably; two racing callers get the same one.
    pub async fn meta_get_or_init(
        &self,
        name: &str,
        fresh: impl Fn() -> Vec<u8>,
    ) -> Result<Vec<u8>> {
        if let Some(k) = self.meta_get(name)? {
            return Ok(k);
        }
        let fresh = fresh();
        self.write(0, |tx| match tx.get_raw(T::Meta, name.as_bytes())? {
            Some(existing) => Ok(existing),
            None => {
                tx.put_raw(T::Meta, name.as_bytes(), &fresh)?;
                Ok(fresh.clone())
            }
        })
        .await
    }

    /// Writes (or with `None`, removes) a small setting durably.
    pub async fn meta_set(&self, name: &str, value: Option<Vec<u8>>) -> Result<()> {
        let name = name.to_owned();
        self.write(0, move |tx| {
            match &value {
                Some(v) => tx.put_raw(T::Meta, name.as_bytes(), v)?,
                None => {
                    tx.del(T::Meta, name.as_bytes())?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Refuses writes while the disk's free space is under the reserve. The
    /// free space is read at most every 100 ms, so the check costs nothing
    /// on the hot path.
    fn check_disk(&self, now: Micros) -> Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        if now - self.free_checked_at.load(Relaxed) > 100_000 {
            if let Ok(free) = fs4::available_space(&self.path) {
                self.free_bytes.store(free, Relaxed);
            }
            self.free_checked_at.store(now, Relaxed);
        }
        if self.free_bytes.load(Relaxed) < self.min_free_bytes {
            return Err(StoreError::DiskFull);
        }
        Ok(())
    }

    /// Refuses (`DiskFull`) `bytes` more of attachment data that would take
    /// the disk under the free-space reserve, so uploads count toward the
    /// reserve like records do. Reads the free space afresh: an upload
    /// calls this before each chunk it writes.
    pub fn check_room(&self, bytes: u64) -> Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        if let Ok(free) = fs4::available_space(&self.path) {
            self.free_bytes.store(free, Relaxed);
            self.free_checked_at
                .store(crate::domain::time::now(), Relaxed);
        }
        if self.free_bytes.load(Relaxed).saturating_sub(bytes) < self.min_free_bytes {
            return Err(StoreError::DiskFull);
        }
        Ok(())
    }

    /// Runs `f` as one atomic transaction over every tree, then waits until
    /// a flush that began after it has finished. Events emitted by `f` get
    /// consecutive ids and are published, in order, once durable.
    pub(crate) async fn write<R>(
        &self,
        now: Micros,
        f: impl Fn(&mut Tx<'_>) -> TxResult<R>,
    ) -> Result<R> {
        self.check_disk(crate::domain::time::now())?;
        let ticket;
        let out;
        let queued_jobs;
        {
            let mut state = self
                .write_lock
                .lock()
                .map_err(|_| StoreError::Corrupt("write lock poisoned".into()))?;
            let first_event = state.next_event_id;
            // Built when the subscriptions change, not on every write.
            let hooks = self
                .webhooks
                .read()
                .map_err(|_| StoreError::Corrupt("webhook list poisoned".into()))?
                .clone();
            let res = self.trees.as_slice().transaction(|views| {
                let mut tx = Tx {
                    views,
                    next_event_id: first_event,
                    events: Vec::new(),
                    now,
                    webhooks: &hooks,
                    jobs: 0,
                    notify_delay: self.notify_delay.load(std::sync::atomic::Ordering::Relaxed),
                };
                let r = f(&mut tx)?;
                Ok((r, tx.events, tx.jobs))
            });
            let (r, events, jobs) = match res {
                Ok(v) => v,
                Err(TransactionError::Abort(e)) => return Err(e),
                Err(TransactionError::Storage(e)) => return Err(e.into()),
            };
            state.next_event_id += events.len() as u64;
            ticket = self.durability.record(events);
            out = r;
            queued_jobs = jobs;
        }
        self.durability.wait(ticket).await?;
        if queued_jobs > 0 {
            self.jobs_ready.notify_one();
        }
        Ok(out)
    }
}

/// Decodes a stored JSON record; failure means corruption, not bad input.
pub(crate) fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<V: Serialize>(v: &V) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A write in progress: typed access to every tree inside one transaction.
pub(crate) struct Tx<'a> {
    views: &'a [TransactionalTree],
    next_event_id: u64,
    events: Vec<Arc<EventRecord>>,
    /// The time of this write, for records and events.
    pub now: Micros,
    /// Active webhooks: (id, event names).
    webhooks: &'a [(u64, Vec<String>)],
    /// Jobs queued by this write.
    jobs: usize,
    /// Unread-reply notification delay (0: off).
    pub notify_delay: Micros,
}

fn unabortable(e: UnabortableTransactionError) -> ConflictableTransactionError<StoreError> {
    e.into()
}

impl Tx<'_> {
    fn view(&self, t: T) -> &TransactionalTree {
        &self.views[t as usize]
    }

    /// Reads and decodes a record.
    pub fn get<V: DeserializeOwned>(&self, t: T, key: &[u8]) -> TxResult<Option<V>> {
        match self.view(t).get(key).map_err(unabortable)? {
            Some(v) => match decode(&v) {
                Ok(r) => Ok(Some(r)),
                Err(e) => abort(e),
            },
            None => Ok(None),
        }
    }

    /// Reads an id stored as a value.
    pub fn get_id(&self, t: T, key: &[u8]) -> TxResult<Option<u64>> {
        match self.view(t).get(key).map_err(unabortable)? {
            Some(v) => keys::read_u64(&v, 0).map(Some).or_else(abort),
            None => Ok(None),
        }
    }

    /// Reads raw bytes.
    pub fn get_raw(&self, t: T, key: &[u8]) -> TxResult<Option<Vec<u8>>> {
        Ok(self
            .view(t)
            .get(key)
            .map_err(unabortable)?
            .map(|v| v.to_vec()))
    }

    /// Whether a key exists.
    pub fn contains(&self, t: T, key: &[u8]) -> TxResult<bool> {
        Ok(self.view(t).get(key).map_err(unabortable)?.is_some())
    }

    /// Encodes and stores a record.
    pub fn put<V: Serialize>(&self, t: T, key: &[u8], v: &V) -> TxResult<()> {
        let bytes = encode(v).or_else(abort)?;
        self.put_raw(t, key, &bytes)
    }

    /// Stores raw bytes.
    pub fn put_raw(&self, t: T, key: &[u8], v: &[u8]) -> TxResult<()> {
        self.view(t).insert(key, v).map_err(unabortable)?;
        Ok(())
    }

    /// Removes a key, returning whether it was there.
    pub fn del(&self, t: T, key: &[u8]) -> TxResult<bool> {
        Ok(self.view(t).remove(key).map_err(unabortable)?.is_some())
    }

    /// A new unique id (never 0).
    pub fn new_id(&self) -> TxResult<u64> {
        Ok(self
            .view(T::Meta)
            .generate_id()
            .map_err(ConflictableTransactionError::Storage)?
            + 1)
    }

    /// Appends an event to the log; it is published once this write is
    /// durable.
    pub fn emit(&mut self, inbox_id: u64, contact_id: u64, payload: EventPayload) -> TxResult<u64> {
        self.log_event(inbox_id, contact_id, payload, false)
    }

    /// [`Tx::emit`] for a change the contact must not hear of (see
    /// [`EventRecord::team_only`]).
    pub fn emit_for_team(
        &mut self,
        inbox_id: u64,
        contact_id: u64,
        payload: EventPayload,
    ) -> TxResult<u64> {
        self.log_event(inbox_id, contact_id, payload, true)
    }

    fn log_event(
        &mut self,
        inbox_id: u64,
        contact_id: u64,
        payload: EventPayload,
        team_only: bool,
    ) -> TxResult<u64> {
        let id = self.next_event_id;
        let ev = EventRecord {
            id,
            inbox_id,
            contact_id,
            at: self.now,
            payload,
            team_only,
        };
        self.put(T::EventidEvent, &keys::u64_be(id), &ev)?;
        let name = ev.name();
        let hooks: &[(u64, Vec<String>)] = self.webhooks;
        for (hook, events) in hooks {
            if events.iter().any(|e| e == name) {
                self.enqueue(
                    JobKind::Webhook {
                        webhook_id: *hook,
                        event_id: id,
                    },
                    self.now,
                )?;
            }
        }
        self.next_event_id += 1;
        self.events.push(Arc::new(ev));
        Ok(id)
    }
}
