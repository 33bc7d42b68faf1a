//! Backups and restores: one archive of a data folder that a restore can
//! check before it touches anything.
//!
//! The archive is a gzip-compressed tar (so `tar tzf` lists it) of:
//! - `format`: `natter-backup <n>`, first, so a restore refuses a newer
//!   format before reading the rest;
//! - `store/<tree>.kv`: every sled tree (the records, derived indexes and
//!   `meta`, which holds the settings and secrets), as key and value pairs
//!   each preceded by its length (u32, big-endian);
//! - `files/<id>`: the attachments;
//! - `data/<path>`: any other file of the data folder (certificates);
//! - `manifest.json`, last: format and natter version, schema version,
//!   record counts, and every entry's size and SHA-256.
//!
//! The search index is not in it: it is derived from the event log and a
//! restored folder rebuilds it at its first start.
//!
//! On a running server the backup is consistent without stopping writes:
//! it begins between two batches of the group commit, and from then on the
//! committer records the value of every key before a batch overwrites it
//! ([`super::durability::Snapshot`]), so the dump reads each key as it was
//! at the start. A write is in the backup whole (its batch was applied
//! before) or not at all.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::durability::Snapshot;
use super::{open_released, Store, StoreError, Tree, SCHEMA_VERSION};
use crate::domain::time;

/// The archive format this natter writes and the newest it restores.
pub const FORMAT: u32 = 1;

/// The archive's first entry.
const FORMAT_ENTRY: &str = "format";
/// The archive's last entry.
const MANIFEST_ENTRY: &str = "manifest.json";

/// The other folders of a data folder that are copied as `data/...` (the
/// certificates natter obtains). Only these: anything else a person put
/// there (a backup folder under another name, an archive being written)
/// is never swept into a backup.
const COPIED: &[&str] = &["acme"];

/// What went wrong with a backup or a restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive is damaged or not a natter backup; nothing was touched.
    #[error("the archive {path} cannot be restored: {reason}")]
    Invalid {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The archive was written by a newer natter.
    #[error("the archive is {what} format {found}, but this natter reads only up to {known}; use a newer natter")]
    TooNew {
        /// `backup` or `export`.
        what: &'static str,
        /// The format found.
        found: u32,
        /// The newest this natter reads.
        known: u32,
    },
    /// The target folder holds data and `--force` was not given.
    #[error("the data folder {0} is not empty; use a new or empty folder")]
    NotEmpty(PathBuf),
    /// Another backup of this server is running.
    #[error("a backup is already running; try again when it is done")]
    Busy,
}

pub(super) fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = format!("cannot {what} {}", path.display());
    move |e| BackupError::Io(format!("{what}: {e}"))
}

/// An archive's table of contents (its last entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// The archive format.
    pub format: u32,
    /// The natter that wrote it.
    pub natter_version: String,
    /// When the backup began (RFC 3339).
    pub created_at: String,
    /// The store's schema version (a newer natter migrates it at start).
    pub schema_version: u32,
    /// What happens to the search index: it is rebuilt from the log.
    pub search_index: String,
    /// Records in the archive.
    pub counts: Counts,
    /// Every other entry, in archive order.
    pub entries: Vec<Entry>,
}

/// How many records of each kind an archive holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    /// Agents.
    pub agents: u64,
    /// Inboxes.
    pub inboxes: u64,
    /// Contacts.
    pub contacts: u64,
    /// Conversations.
    pub conversations: u64,
    /// Messages (notes included).
    pub messages: u64,
    /// Events in the log.
    pub events: u64,
    /// Attachment files.
    pub attachments: u64,
}

/// One entry of the archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Its path in the archive.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of its bytes, in hex.
    pub sha256: String,
    /// Key and value pairs, for a tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
}

/// Called with each key and value of a tree.
pub(super) type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> std::io::Result<()>;

/// Reports progress: records (or bytes) done and the total expected.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

impl Store {
    /// Writes a backup of this (running) store to `out`, without stopping
    /// writes. Blocking: call it off the async runtime.
    pub fn backup(&self, out: &Path, progress: Progress<'_>) -> Result<Manifest, BackupError> {
        let durability = self.durability().clone();
        let guard = durability.begin_snapshot().ok_or(BackupError::Busy)?;
        let files = HeldFiles::link(&self.path);
        let source = Source {
            db: &self.db,
            known: Some((&self.trees, &guard.snapshot)),
            data: &self.path,
            files: files.dir(),
        };
        source.write(out, progress)
    }

    /// Streams a backup of this (running) store into `w` (the control
    /// socket), with `scratch` for one tree's dump at a time. Blocking.
    pub fn backup_into<W: Write>(
        &self,
        w: W,
        scratch: &Path,
        progress: Progress<'_>,
    ) -> Result<(Manifest, W), BackupError> {
        let durability = self.durability().clone();
        let guard = durability.begin_snapshot().ok_or(BackupError::Busy)?;
        let files = HeldFiles::link(&self.path);
        Source {
            db: &self.db,
            known: Some((&self.trees, &guard.snapshot)),
            data: &self.path,
            files: files.dir(),
        }
        .write_stream(w, scratch, time::rfc3339(time::now()), progress)
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.path
    }
}

impl Store {
    /// The backup before a migration: nothing else runs on the store yet.
    pub(super) fn backup_unmigrated(&self, out: &Path) -> Result<Manifest, BackupError> {
        let mut progress = crate::progress::Progress::new("records");
        let m = Source {
            db: &self.db,
            known: None,
            data: &self.path,
            files: self.path.join("files"),
        }
        .write(out, &mut |d, t| progress.set(d, t))?;
        progress.finish(m.entries.iter().filter_map(|e| e.records).sum());
        Ok(m)
    }
}

/// Writes a backup of the stopped data folder `data` to `out`. Refuses a
/// folder a server is running on (`StoreError::Locked`): that one is
/// backed up by the server itself ([`Store::backup`]).
pub fn backup_stopped(
    data: &Path,
    out: &Path,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    let (_lock, db) = open_stopped_db(data, 64 << 20)?;
    Source {
        db: &db,
        known: None,
        data,
        files: data.join("files"),
    }
    .write(out, progress)
}

/// A stopped folder's sled database, raw (no migration, no schema check),
/// with the folder's lock held for as long as the returned file lives.
pub(super) fn open_stopped_db(data: &Path, cache: u64) -> Result<(File, sled::Db), BackupError> {
    if !data.join("db").exists() {
        return Err(BackupError::Io(format!(
            "{} holds no natter data",
            data.display()
        )));
    }
    let lock = lock_folder(data)?;
    let db = open_released(
        &sled::Config::new()
            .path(data.join("db"))
            .cache_capacity(cache),
        std::time::Duration::from_secs(5),
    )
    .map_err(StoreError::from)?;
    Ok((lock, db))
}

/// Takes the data folder's lock, as [`Store::open`] does.
pub(super) fn lock_folder(data: &Path) -> Result<File, BackupError> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data.join("natter.lock"))
        .map_err(io("open the lock of", data))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StoreError::Locked(data.to_path_buf()).into())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io("lock", data)(e)),
    }
}

/// A store being backed up.
pub(super) struct Source<'a> {
    pub(super) db: &'a sled::Db,
    /// The running store's trees and its snapshot (`None`: a stopped
    /// folder, which nothing else writes).
    pub(super) known: Option<(&'a [sled::Tree], &'a Snapshot)>,
    pub(super) data: &'a Path,
    /// Where the attachments are read from: the folder's own, or (while
    /// a server runs) links to them made when the backup began.
    pub(super) files: PathBuf,
}

/// Hard links to every attachment, made when an online backup begins, so
/// that a file removed while the backup runs (its contact deleted, an
/// orphan swept) is still in it when the snapshot's messages name it.
/// Removed when dropped.
struct HeldFiles {
    dir: Option<PathBuf>,
    original: PathBuf,
}

impl HeldFiles {
    fn link(data: &Path) -> Self {
        let original = data.join("files");
        let dir = data.join(".backup-files");
        let _ = std::fs::remove_dir_all(&dir);
        let linked = std::fs::create_dir(&dir).and_then(|()| {
            for e in std::fs::read_dir(&original)?.flatten() {
                let name = e.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                match std::fs::hard_link(e.path(), dir.join(&name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        });
        match linked {
            Ok(()) => Self {
                dir: Some(dir),
                original,
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot link the attachments for the backup; it reads them in place");
                let _ = std::fs::remove_dir_all(&dir);
                Self {
                    dir: None,
                    original,
                }
            }
        }
    }

    fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| self.original.clone())
    }
}

impl Drop for HeldFiles {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

pub(super) fn header(bytes: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes);
    h.set_mode(0o600);
    h.set_mtime(u64::try_from(time::now() / 1_000_000).unwrap_or(0));
    h.set_entry_type(tar::EntryType::Regular);
    h
}

impl Source<'_> {
    fn write(&self, out: &Path, progress: Progress<'_>) -> Result<Manifest, BackupError> {
        let created_at = time::rfc3339(time::now());
        let partial = partial_path(out);
        let result = self.write_to(&partial, created_at, progress);
        match result {
            Ok(m) => {
                std::fs::rename(&partial, out).map_err(io("write", out))?;
                if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                    if let Ok(d) = File::open(dir) {
                        let _ = d.sync_all();
                    }
                }
                Ok(m)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    fn write_to(
        &self,
        partial: &Path,
        created_at: String,
        progress: Progress<'_>,
    ) -> Result<Manifest, BackupError> {
        let file = File::create(partial).map_err(io("create", partial))?;
        let (manifest, file) = self.write_stream(
            BufWriter::new(file),
            &scratch_path(partial),
            created_at,
            progress,
        )?;
        let file = file
            .into_inner()
            .map_err(|e| io("write", partial)(e.into_error()))?;
        file.sync_all().map_err(io("sync", partial))?;
        Ok(manifest)
    }

    /// Writes the archive to `w`, using `scratch` for one tree's dump at a
    /// time (a tar entry's size comes before its bytes). Returns `w`.
    fn write_stream<W: Write>(
        &self,
        w: W,
        scratch: &Path,
        created_at: String,
        progress: Progress<'_>,
    ) -> Result<(Manifest, W), BackupError> {
        let result = self.write_stream_inner(w, scratch, created_at, progress);
        let _ = std::fs::remove_file(scratch);
        result
    }

    fn write_stream_inner<W: Write>(
        &self,
        w: W,
        scratch: &Path,
        created_at: String,
        progress: Progress<'_>,
    ) -> Result<(Manifest, W), BackupError> {
        let gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let fail = |e: std::io::Error| BackupError::Io(format!("cannot write the backup: {e}"));
        let format = format!("natter-backup {FORMAT}\n");
        tar.append_data(
            &mut header(format.len() as u64),
            FORMAT_ENTRY,
            format.as_bytes(),
        )
        .map_err(fail)?;

        let mut names: Vec<Vec<u8>> = self.db.tree_names().iter().map(|n| n.to_vec()).collect();
        names.sort();
        let total: u64 = names
            .iter()
            .filter_map(|n| self.db.open_tree(n).ok())
            .map(|t| t.len() as u64)
            .sum();
        let mut done = 0u64;
        let mut entries = Vec::new();
        let mut counts = Counts::default();
        let mut schema_version = 0;
        for name in &names {
            let Ok(name_str) = std::str::from_utf8(name) else {
                continue;
            };
            let (records, bytes, sha) =
                self.dump_tree(name, scratch, &mut |n| progress(done + n, total))?;
            done += records;
            // After each tree too: the unit tests write from here, between
            // the trees of one backup.
            progress(done, total);
            let path = format!("store/{name_str}.kv");
            let f = File::open(scratch).map_err(io("read", scratch))?;
            tar.append_data(&mut header(bytes), &path, BufReader::new(f))
                .map_err(fail)?;
            match name_str {
                n if n == Tree::AgentidAgent.name() => counts.agents = records,
                n if n == Tree::InboxidInbox.name() => counts.inboxes = records,
                n if n == Tree::ContactidContact.name() => counts.contacts = records,
                n if n == Tree::ConversationidConversation.name() => counts.conversations = records,
                n if n == Tree::ConversationseqMessage.name() => counts.messages = records,
                n if n == Tree::EventidEvent.name() => counts.events = records,
                _ => {}
            }
            if name_str == Tree::Meta.name() {
                schema_version = self.schema_version()?;
            }
            entries.push(Entry {
                path,
                bytes,
                sha256: sha,
                records: Some(records),
            });
        }

        self.append_files(&mut tar, &mut counts, &mut entries)?;

        let manifest = Manifest {
            format: FORMAT,
            natter_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at,
            schema_version,
            search_index: "rebuilt from the event log at the first start".to_owned(),
            counts,
            entries,
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| BackupError::Io(format!("cannot encode the manifest: {e}")))?;
        tar.append_data(
            &mut header(json.len() as u64),
            MANIFEST_ENTRY,
            json.as_slice(),
        )
        .map_err(fail)?;
        let gz = tar.into_inner().map_err(fail)?;
        let mut w = gz.finish().map_err(fail)?;
        w.flush().map_err(fail)?;
        progress(total, total);
        Ok((manifest, w))
    }

    fn schema_version(&self) -> Result<u32, BackupError> {
        let meta = self
            .db
            .open_tree(Tree::Meta.name())
            .map_err(StoreError::from)?;
        let now = meta.get("schema_version").map_err(StoreError::from)?;
        // A running store's meta may have been changed since the backup
        // began (never its schema version: that changes only at start).
        Ok(now
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map_or(0, u32::from_be_bytes))
    }

    /// Dumps one tree, as it was when the backup began, to `scratch`.
    /// Returns its records, bytes and SHA-256.
    fn dump_tree(
        &self,
        name: &[u8],
        scratch: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(u64, u64, String), BackupError> {
        let file = File::create(scratch).map_err(io("create", scratch))?;
        let mut w = Hashing {
            inner: BufWriter::new(file),
            hash: Sha256::new(),
            bytes: 0,
        };
        let mut records = 0u64;
        self.each(name, &mut |k, v| {
            for part in [k, v] {
                let len = u32::try_from(part.len()).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "a value over 4 GiB")
                })?;
                w.write_all(&len.to_be_bytes())?;
                w.write_all(part)?;
            }
            records += 1;
            if records.is_multiple_of(4096) {
                progress(records);
            }
            Ok(())
        })
        .map_err(|e| match e {
            BackupError::Io(m) => BackupError::Io(format!("{}: {m}", scratch.display())),
            e => e,
        })?;
        w.flush().map_err(io("write", scratch))?;
        let sha = hex::encode(w.hash.finalize());
        Ok((records, w.bytes, sha))
    }

    /// Appends the attachments (`files/<id>`) and the other data files
    /// (`data/<path>`) to an archive, counting the attachments.
    pub(super) fn append_files<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        counts: &mut Counts,
        entries: &mut Vec<Entry>,
    ) -> Result<(), BackupError> {
        // Attachments are written once under a fresh id and renamed into
        // place whole, so a file is either there complete or not yet.
        let mut files: Vec<String> = match std::fs::read_dir(&self.files) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("list", &self.files)(e)),
        };
        files.sort();
        for name in files {
            let path = self.files.join(&name);
            if let Some(e) = append_file(tar, &path, format!("files/{name}"))? {
                counts.attachments += 1;
                entries.push(e);
            }
        }
        for (rel, path) in other_files(self.data)? {
            if let Some(e) = append_file(tar, &path, format!("data/{rel}"))? {
                entries.push(e);
            }
        }
        Ok(())
    }

    /// Calls `f` with every key and value of tree `name` as they were when
    /// the backup began (in key order, then the keys removed since).
    pub(super) fn each(&self, name: &[u8], f: Visit<'_>) -> Result<(), BackupError> {
        let known = self.known.and_then(|(trees, snap)| {
            let t = Tree::ALL.iter().position(|t| t.name().as_bytes() == name)?;
            Some((trees.get(t)?.clone(), snap, t))
        });
        let tree = match &known {
            Some((tree, _, _)) => tree.clone(),
            None => self.db.open_tree(name).map_err(StoreError::from)?,
        };
        let fail = |e: std::io::Error| BackupError::Io(e.to_string());
        for kv in tree.iter() {
            let (k, v) = kv.map_err(StoreError::from)?;
            match known.as_ref().and_then(|(_, snap, t)| snap.read(*t, &k)) {
                // Changed since the start: its value then, or nothing if it
                // did not exist yet.
                Some(before) => {
                    if let Some(b) = before {
                        f(&k, &b).map_err(fail)?;
                    }
                }
                None => f(&k, &v).map_err(fail)?,
            }
        }
        // Keys that existed at the start but were removed since.
        if let Some((_, snap, t)) = &known {
            for (k, b) in snap.finish(*t) {
                f(&k, &b).map_err(fail)?;
            }
        }
        Ok(())
    }
}

/// Appends one file; `None` when it disappeared before it could be read
/// (an attachment swept as an orphan).
pub(super) fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    entry: String,
) -> Result<Option<Entry>, BackupError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", path)(e)),
    };
    let bytes = f.metadata().map_err(io("read", path))?.len();
    let mut r = HashingReader {
        inner: BufReader::new(f).take(bytes),
        hash: Sha256::new(),
        bytes: 0,
    };
    tar.append_data(&mut header(bytes), &entry, &mut r)
        .map_err(|e| BackupError::Io(format!("cannot write the backup: {e}")))?;
    Ok(Some(Entry {
        path: entry,
        bytes,
        sha256: hex::encode(r.hash.finalize()),
        records: None,
    }))
}

/// Every other regular file of the data folder, by its path relative to
/// it (`/`-separated), sorted.
fn other_files(data: &Path) -> Result<Vec<(String, PathBuf)>, BackupError> {
    let mut out = Vec::new();
    let mut stack: Vec<(String, PathBuf)> = vec![(String::new(), data.to_path_buf())];
    while let Some((rel, dir)) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("list", &dir)(e)),
        };
        for e in rd.filter_map(|e| e.ok()) {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') || (rel.is_empty() && !COPIED.contains(&name.as_str())) {
                continue;
            }
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push((child, e.path())),
                Ok(t) if t.is_file() => out.push((child, e.path())),
                _ => {}
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(super) fn partial_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

fn scratch_path(partial: &Path) -> PathBuf {
    let mut s = partial.as_os_str().to_owned();
    s.push(".tree");
    PathBuf::from(s)
}

/// A reader that counts the bytes read from the archive file, for
/// progress.
struct Counting<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// One pass over an archive: calls `each` with every entry but the format
/// and the manifest, then returns the manifest after checking that every
/// entry it lists was there with its size and SHA-256, and nothing else.
pub(super) fn read_archive(
    archive: &Path,
    (what, known): (&'static str, u32),
    progress: Progress<'_>,
    mut each: impl FnMut(&str, &mut dyn Read) -> Result<(), BackupError>,
) -> Result<Manifest, BackupError> {
    let invalid = |reason: String| BackupError::Invalid {
        path: archive.to_path_buf(),
        reason,
    };
    let file = File::open(archive).map_err(io("open", archive))?;
    let total = file.metadata().map_err(io("read", archive))?.len();
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = Counting {
        inner: BufReader::new(file),
        read: read.clone(),
    };
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(counting));
    let entries = tar
        .entries()
        .map_err(|e| invalid(format!("not a natter backup ({e})")))?;
    let mut found: HashMap<String, (u64, String)> = HashMap::new();
    let mut manifest: Option<Manifest> = None;
    let mut first = true;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("damaged ({e})")))?;
        let path = entry
            .path()
            .map_err(|e| invalid(format!("an entry has a bad name ({e})")))?
            .to_string_lossy()
            .into_owned();
        if manifest.is_some() {
            return Err(invalid(format!("{path} follows the manifest")));
        }
        if first {
            first = false;
            let mut text = String::new();
            entry
                .by_ref()
                .take(64)
                .read_to_string(&mut text)
                .map_err(|e| invalid(format!("damaged ({e})")))?;
            let found = text
                .strip_prefix(&format!("natter-{what} "))
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|_| path == FORMAT_ENTRY)
                .ok_or_else(|| invalid(format!("not a natter {what}")))?;
            if found > known {
                return Err(BackupError::TooNew { what, found, known });
            }
            continue;
        }
        if path == MANIFEST_ENTRY {
            let mut json = Vec::new();
            entry
                .read_to_end(&mut json)
                .map_err(|e| invalid(format!("damaged ({e})")))?;
            manifest = Some(
                serde_json::from_slice(&json)
                    .map_err(|e| invalid(format!("its manifest cannot be read ({e})")))?,
            );
            continue;
        }
        let mut r = HashingReader {
            inner: &mut entry,
            hash: Sha256::new(),
            bytes: 0,
        };
        each(&path, &mut r)?;
        // Whatever `each` left unread still counts.
        std::io::copy(&mut r, &mut std::io::sink())
            .map_err(|e| invalid(format!("damaged ({e})")))?;
        let sha = hex::encode(r.hash.finalize());
        if found.insert(path.clone(), (r.bytes, sha)).is_some() {
            return Err(invalid(format!("{path} is in it twice")));
        }
        progress(read.load(std::sync::atomic::Ordering::Relaxed), total);
    }
    if first {
        return Err(invalid("it is empty".to_owned()));
    }
    let manifest = manifest.ok_or_else(|| invalid("it has no manifest (cut short?)".to_owned()))?;
    if manifest.format > known {
        return Err(BackupError::TooNew {
            what,
            found: manifest.format,
            known,
        });
    }
    let listed = &manifest.entries;
    for e in listed {
        match found.remove(&e.path) {
            None => return Err(invalid(format!("{} is missing", e.path))),
            Some((bytes, sha)) if bytes != e.bytes || sha != e.sha256 => {
                return Err(invalid(format!(
                    "{} does not match its checksum (damaged or changed)",
                    e.path
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = found.keys().next() {
        return Err(invalid(format!("{extra} is not in its manifest")));
    }
    progress(total, total);
    Ok(manifest)
}

/// Reads a whole archive and checks every entry against its manifest.
pub fn verify(archive: &Path, progress: Progress<'_>) -> Result<Manifest, BackupError> {
    read_archive(archive, ("backup", FORMAT), progress, |_, _| Ok(()))
}

/// Restores `archive` into the data folder `data` of a stopped server:
/// checks every checksum first (nothing is touched if one fails), then
/// fills a new folder beside `data` and moves it into place. `data` must
/// be missing or empty unless `force` replaces it.
pub fn restore(
    archive: &Path,
    data: &Path,
    force: bool,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    let occupied = match std::fs::read_dir(data) {
        Ok(mut rd) => rd.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io("read", data)(e)),
    };
    if occupied && !force {
        return Err(BackupError::NotEmpty(data.to_path_buf()));
    }
    // --force replaces a natter data folder, never any other folder.
    if occupied && !data.join("db").exists() && !data.join("natter.lock").exists() {
        return Err(BackupError::Io(format!(
            "{} does not look like a natter data folder (no db); refusing to replace it",
            data.display()
        )));
    }
    // A server running on the folder keeps it; held until the swap ends.
    let _lock = if occupied && data.join("natter.lock").exists() {
        Some(lock_folder(data)?)
    } else {
        None
    };
    // Checked whole before anything is written: half the progress.
    let manifest = verify(archive, &mut |d, t| progress(d, t.saturating_mul(2)))?;
    if manifest.schema_version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: manifest.schema_version,
        }
        .into());
    }
    install(data, ".natter-restoring", |staging| {
        fill(archive, staging, &mut |d, t| {
            progress(t + d, t.saturating_mul(2))
        })
    })?;
    Ok(manifest)
}

/// Fills a staging folder inside `data` with `fill`, then swaps it in:
/// what `data` held moves into `data/.natter-replaced` and the staged
/// entries move up. Everything stays inside `data`, so a mount point (a
/// Docker volume, a disk of its own) can be the target. A failure before
/// the swap leaves `data` as it was; one during it moves the old entries
/// back.
pub(super) fn install(
    data: &Path,
    staging_name: &str,
    fill: impl FnOnce(&Path) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    std::fs::create_dir_all(data).map_err(io("create", data))?;
    let staging = data.join(staging_name);
    let replaced = data.join(".natter-replaced");
    if replaced.exists() {
        return Err(BackupError::Io(format!(
            "an earlier restore was interrupted: {} holds the data it was replacing; move it out of the way first",
            replaced.display()
        )));
    }
    // Left by a failed run of our own: nothing in it was ever in place.
    let _ = std::fs::remove_dir_all(&staging);
    if let Err(e) = fill(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let names = |dir: &Path, skip: &[&Path]| -> Result<Vec<std::ffi::OsString>, BackupError> {
        Ok(std::fs::read_dir(dir)
            .map_err(io("read", dir))?
            .filter_map(|e| e.ok())
            .filter(|e| !skip.contains(&e.path().as_path()))
            .map(|e| e.file_name())
            .collect())
    };
    let old = names(data, &[&staging])?;
    if !old.is_empty() {
        std::fs::create_dir(&replaced).map_err(io("create", &replaced))?;
        let mut moved = Vec::new();
        for n in &old {
            if let Err(e) = std::fs::rename(data.join(n), replaced.join(n)) {
                for m in &moved {
                    let _ = std::fs::rename(replaced.join(m), data.join(m));
                }
                let _ = std::fs::remove_dir(&replaced);
                let _ = std::fs::remove_dir_all(&staging);
                return Err(io("move aside", &data.join(n))(e));
            }
            moved.push(n.clone());
        }
    }
    for n in names(&staging, &[])? {
        std::fs::rename(staging.join(&n), data.join(&n)).map_err(|e| {
            BackupError::Io(format!(
                "the restore stopped half-way ({e}): the data it replaces is in {}, the restored data in {} and {}",
                replaced.display(),
                staging.display(),
                data.display()
            ))
        })?;
    }
    let _ = std::fs::remove_dir(&staging);
    if !old.is_empty() {
        std::fs::remove_dir_all(&replaced).map_err(io("remove", &replaced))?;
    }
    if let Ok(d) = File::open(data) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes the archive's entries into a new folder `dir`.
fn fill(archive: &Path, dir: &Path, progress: Progress<'_>) -> Result<(), BackupError> {
    std::fs::create_dir_all(dir.join("files")).map_err(io("create", dir))?;
    let db = sled::Config::new()
        .path(dir.join("db"))
        .cache_capacity(64 << 20)
        .open()
        .map_err(StoreError::from)?;
    let invalid = |reason: String| BackupError::Invalid {
        path: archive.to_path_buf(),
        reason,
    };
    read_archive(archive, ("backup", FORMAT), progress, |path, r| {
        if let Some(tree) = path
            .strip_prefix("store/")
            .and_then(|p| p.strip_suffix(".kv"))
        {
            let tree = db.open_tree(tree).map_err(StoreError::from)?;
            load_tree(&tree, r).map_err(|e| invalid(format!("{path}: {e}")))?;
        } else {
            extract_file(archive, dir, path, r)?;
        }
        Ok(())
    })?;
    db.flush().map_err(StoreError::from)?;
    Ok(())
}

/// Writes an archive's `files/<id>` or `data/<path>` entry into the
/// folder `dir`; anything else, or a path that would leave the folder, is
/// refused.
pub(super) fn extract_file(
    archive: &Path,
    dir: &Path,
    path: &str,
    r: &mut dyn Read,
) -> Result<(), BackupError> {
    let invalid = |reason: String| BackupError::Invalid {
        path: archive.to_path_buf(),
        reason,
    };
    let (base, rel) = if let Some(rel) = path.strip_prefix("files/") {
        (dir.join("files"), rel)
    } else if let Some(rel) = path.strip_prefix("data/") {
        (dir.to_path_buf(), rel)
    } else {
        return Err(invalid(format!("{path} is not an entry natter writes")));
    };
    let safe = !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !safe {
        return Err(invalid(format!("{path} points outside the folder")));
    }
    let target = base.join(rel);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    let mut f = File::create(&target).map_err(io("create", &target))?;
    std::io::copy(r, &mut f).map_err(io("write", &target))?;
    f.sync_all().map_err(io("sync", &target))
}

/// The largest key or value a tree dump may hold.
const MAX_VALUE: usize = 64 << 20;

/// The schema version of a stopped folder's store, read without opening
/// (or migrating) it as a store.
pub fn peek_schema(data: &Path) -> Result<u32, BackupError> {
    let (_lock, db) = open_stopped_db(data, 1 << 20)?;
    let meta = db.open_tree(Tree::Meta.name()).map_err(StoreError::from)?;
    Ok(stored_schema(&meta)?)
}

/// Loads a tree dump (length-prefixed keys and values).
fn load_tree(tree: &sled::Tree, r: &mut dyn Read) -> Result<(), String> {
    let mut r = BufReader::new(r);
    let mut batch = sled::Batch::default();
    let mut pending = 0usize;
    let read_part = |r: &mut BufReader<&mut dyn Read>| -> Result<Option<Vec<u8>>, String> {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.to_string()),
        }
        let n = u32::from_be_bytes(len) as usize;
        // No stored key or value comes near this (attachments are files):
        // a larger length is a damaged or crafted archive, refused before
        // it is allocated.
        if n > MAX_VALUE {
            return Err(format!("a value of {n} bytes"));
        }
        let mut buf = vec![0u8; n];
        r.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(Some(buf))
    };
    while let Some(k) = read_part(&mut r)? {
        let v = read_part(&mut r)?.ok_or("a key without its value")?;
        batch.insert(k, v);
        pending += 1;
        if pending == 10_000 {
            tree.apply_batch(std::mem::take(&mut batch))
                .map_err(|e| e.to_string())?;
            pending = 0;
        }
    }
    tree.apply_batch(batch).map_err(|e| e.to_string())?;
    Ok(())
}

/// The schema version of a stopped folder's store, without migrating it
/// (0: empty or new).
pub(super) fn stored_schema(meta: &sled::Tree) -> Result<u32, StoreError> {
    match meta.get("schema_version")? {
        Some(v) => {
            Ok(u32::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                StoreError::Corrupt("schema_version".into())
            })?))
        }
        None => Ok(0),
    }
}

/// Where the backup written before a migration goes: beside the data
/// folder, named after it, the schema it holds and the time.
pub fn before_migration_path(data: &Path, from: u32) -> PathBuf {
    let name = data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "natter-data".to_owned());
    let stamp = time::rfc3339(time::now()).replace(':', "");
    data.with_file_name(format!(
        "{name}.schema-{from}-before-{SCHEMA_VERSION}.{stamp}.tar.gz"
    ))
}

/// A backup in a backup folder.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupInfo {
    /// Its file name (the id in the API).
    pub name: String,
    /// Its size.
    pub bytes: u64,
    /// When it was written.
    pub created_at: time::Micros,
    /// Written by the schedule (and so pruned by its retention).
    pub scheduled: bool,
}

/// The end of scheduled backups' names: retention deletes only those.
pub const SCHEDULED: &str = "-scheduled.tar.gz";

impl BackupInfo {
    /// A backup file's entry.
    pub fn of(name: String, bytes: u64, modified: std::time::SystemTime) -> Self {
        let created_at = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as time::Micros);
        Self {
            scheduled: name.ends_with(SCHEDULED),
            name,
            bytes,
            created_at,
        }
    }
}

/// The backups in a folder, newest first.
pub fn list(dir: &Path) -> Result<Vec<BackupInfo>, BackupError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("list", dir)(e)),
    };
    let mut out: Vec<BackupInfo> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !is_backup_name(&name) {
                return None;
            }
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| {
                BackupInfo::of(
                    name,
                    meta.len(),
                    meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                )
            })
        })
        .collect();
    // Names start with the time they were written.
    out.sort_by(|a, b| b.name.cmp(&a.name));
    Ok(out)
}

/// Whether `name` is a finished backup's file name (no path, no partial).
pub fn is_backup_name(name: &str) -> bool {
    name.ends_with(".tar.gz")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_tree(dir: &Path, t: Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .open()
            .unwrap_or_else(|e| panic!("{e}"));
        let tree = db.open_tree(t.name()).unwrap_or_else(|e| panic!("{e}"));
        tree.iter()
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<std::result::Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A batch applied while a backup runs, between its trees, is not in
    /// it at all: not its new keys, not its changes, not its removals, in
    /// trees dumped before or after it. Deterministic: the write happens
    /// from the progress callback, after the first tree.
    #[test]
    fn a_write_during_a_backup_is_not_in_it_at_all() {
        let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("data");
        let store = Store::open_for_test(&data);
        let _flusher = rt.spawn(store.durability().clone().run_flusher());
        // Early and late in the archive's (sorted) tree order.
        let (early, late) = (Tree::AgentidAgent, Tree::WidgetkeyInboxid);
        rt.block_on(store.write(0, |tx| {
            tx.put_raw(early, b"k1", b"v1")?;
            tx.put_raw(late, b"k1", b"v1")?;
            tx.put_raw(late, b"k2", b"v2")?;
            // Enough keys that the dump reports progress inside the tree.
            for i in 0..5000 {
                tx.put_raw(late, format!("n{i:04}").as_bytes(), b"start")?;
            }
            Ok(())
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let late_len = 5002;
        // An attachment removed while the backup runs is still in it.
        let file = store.files_dir().join("AAAAAAAAAAAAAAAAAAAAAA");
        std::fs::write(&file, b"bytes").unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join("b.tar.gz");
        let mut wrote = false;
        let mut wrote_inside = false;
        let m = store
            .backup(&out, &mut |done, total| {
                // Half-way through the late tree: keys behind the dump and
                // ahead of it change.
                if wrote && !wrote_inside && done + late_len - 4096 == total {
                    wrote_inside = true;
                    rt.block_on(store.write(0, |tx| {
                        tx.put_raw(late, b"n0001", b"changed")?;
                        tx.del(late, b"n0002")?;
                        tx.put_raw(late, b"n4999", b"changed")?;
                        tx.del(late, b"n4998")?;
                        // A tree the dump is done with records nothing.
                        tx.put_raw(early, b"k1", b"changed again")?;
                        Ok(())
                    }))
                    .unwrap_or_else(|e| panic!("{e}"));
                }
                if !wrote {
                    wrote = true;
                    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
                    rt.block_on(store.write(0, |tx| {
                        tx.put_raw(early, b"k1", b"changed")?;
                        tx.put_raw(early, b"k3", b"new")?;
                        tx.del(late, b"k1")?;
                        tx.put_raw(late, b"k2", b"changed")?;
                        tx.put_raw(late, b"k4", b"new")?;
                        Ok(())
                    }))
                    .unwrap_or_else(|e| panic!("{e}"));
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(wrote && wrote_inside);
        assert_eq!(m.format, FORMAT);
        // Each key once: the counts are the store's at the start.
        let records = |name: &str| {
            m.entries
                .iter()
                .find(|e| e.path == format!("store/{name}.kv"))
                .and_then(|e| e.records)
        };
        assert_eq!(records(early.name()), Some(1));
        assert!(m
            .entries
            .iter()
            .any(|e| e.path == "files/AAAAAAAAAAAAAAAAAAAAAA" && e.bytes == 5));
        assert!(!data.join(".backup-files").exists(), "its links are gone");
        assert_eq!(records(late.name()), Some(late_len));
        // The store itself has the write.
        assert_eq!(
            store
                .tree(late)
                .get(b"k4")
                .unwrap_or_else(|e| panic!("{e}"))
                .as_deref(),
            Some(&b"new"[..])
        );
        let target = dir.path().join("restored");
        restore(&out, &target, false, &mut |_, _| {}).unwrap_or_else(|e| panic!("{e}"));
        let kv = |k: &[u8], v: &[u8]| (k.to_vec(), v.to_vec());
        assert_eq!(read_tree(&target, early), vec![kv(b"k1", b"v1")]);
        let mut want = vec![kv(b"k1", b"v1"), kv(b"k2", b"v2")];
        want.extend((0..5000).map(|i| kv(format!("n{i:04}").as_bytes(), b"start")));
        want.sort();
        assert_eq!(read_tree(&target, late), want);
        // Only one backup at a time.
        let durability = store.durability().clone();
        let guard = durability.begin_snapshot();
        assert!(guard.is_some());
        assert!(matches!(
            store.backup(&dir.path().join("c.tar.gz"), &mut |_, _| {}),
            Err(BackupError::Busy)
        ));
        drop(guard);
        // Once it ended, writes record nothing more.
        rt.block_on(store.write(0, |tx| tx.put_raw(early, b"k5", b"x")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(durability.begin_snapshot().is_some());
    }
}
