//! Attachment bytes: typed by their content (magic bytes), never by the
//! name or type the client claimed; stored under the data folder by random
//! id, written to a temporary name, fsynced and renamed so a crash never
//! leaves half a file under a real id.
//!
//! Uploads are [`Staged`]: received under temporary names, named by their
//! id just before their message is stored, and removed unless the message
//! was stored, so a refused, failed or abandoned request leaves nothing.
//! What a crash leaves between the two is swept by [`sweep_orphans`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::time::Micros;
use crate::service::auth::random_string;
use crate::store::{AttachmentRecord, Store};

/// Most files one message may carry.
pub const MAX_FILES: usize = 5;

/// The content type the bytes really have. Anything not recognised
/// (SVG and HTML included) is `application/octet-stream`, which is only
/// ever served as a download.
pub fn sniff(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        "image/png"
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "image/gif"
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else if bytes.starts_with(b"%PDF-") {
        "application/pdf"
    } else {
        "application/octet-stream"
    }
}

/// Whether a type may be shown inline (images only).
pub fn is_inline_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// Characters that change how text around them is shown without being
/// visible: bidirectional embeddings, overrides and isolates, the marks, and
/// zero-width joiners. U+202E makes `invoice\u{202e}fdp.exe` read as
/// `invoiceexe.pdf`, so none of them may stay in a file name.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// A display name without paths, control characters, bidirectional
/// controls or quotes, at most 200 characters.
pub fn clean_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !is_invisible_format(*c) && *c != '"')
        .take(200)
        .collect();
    let cleaned = cleaned.trim().to_owned();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "file".to_owned()
    } else {
        cleaned
    }
}

/// Writes `bytes` durably under `dir` and returns the record for it.
pub fn save(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<AttachmentRecord> {
    let id = random_string(16);
    let tmp = dir.join(format!(".{id}.part"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(&id))?;
    Ok(AttachmentRecord {
        id,
        name: clean_name(name),
        content_type: sniff(bytes).to_owned(),
        size: bytes.len() as u64,
    })
}

/// How old an unreferenced file must be before the sweep removes it: far
/// longer than any upload or message write takes, so a file whose message
/// is being written (or a temporary file still receiving bytes) is never
/// taken.
pub const ORPHAN_MIN_AGE: Duration = Duration::from_secs(60 * 60);
/// How often the sweep runs (besides once at start).
pub const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);

/// The temporary name of an upload still being received.
fn part_name(id: &str) -> String {
    format!(".{id}.part")
}

/// One file of a [`Staged`] upload.
struct StagedFile {
    id: String,
    name: String,
    content_type: &'static str,
    size: u64,
}

/// The files of one message while it is received and stored. Each is
/// written under a temporary name; [`Staged::commit`] gives them their ids
/// right before the message is written and [`Staged::keep`] once it is
/// stored. Dropped without `keep` (a refusal, a failure, a client that went
/// away), it removes every file it wrote.
pub struct Staged {
    dir: PathBuf,
    files: Vec<StagedFile>,
    committed: bool,
    kept: bool,
}

/// An open temporary file of a [`Staged`] upload, moved into blocking
/// writes and back.
pub struct StagedWriter {
    file: std::fs::File,
    head: Vec<u8>,
    size: u64,
}

impl StagedWriter {
    /// Appends bytes (a blocking call).
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.head.len() < 16 {
            let take = (16 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes the bytes to disk (a blocking call).
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

impl Staged {
    /// Nothing received yet, into `dir` (the store's files folder).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            files: Vec::new(),
            committed: false,
            kept: false,
        }
    }

    /// How many files were received.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file came with the message.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Opens the temporary file of the next attachment (a blocking call).
    /// It is registered before a byte is written, so it is removed however
    /// the request ends.
    pub fn begin(&mut self, name: &str) -> std::io::Result<StagedWriter> {
        let id = random_string(16);
        let file = std::fs::File::create(self.dir.join(part_name(&id)))?;
        self.files.push(StagedFile {
            id,
            name: clean_name(name),
            content_type: "application/octet-stream",
            size: 0,
        });
        Ok(StagedWriter {
            file,
            head: Vec::new(),
            size: 0,
        })
    }

    /// Finishes the file `begin` opened last, after [`StagedWriter::sync`]:
    /// typed by its first bytes. An empty file (an empty file input) is
    /// dropped.
    pub fn finish(&mut self, w: StagedWriter) {
        let Some(last) = self.files.last_mut() else {
            return;
        };
        if w.size == 0 {
            drop(w);
            let _ = std::fs::remove_file(self.dir.join(part_name(&last.id)));
            self.files.pop();
            return;
        }
        last.size = w.size;
        last.content_type = sniff(&w.head);
    }

    /// Gives every file its id (a blocking call) and returns the records
    /// the message carries. Until [`Staged::keep`], they are still removed
    /// on drop.
    pub fn commit(&mut self) -> std::io::Result<Vec<AttachmentRecord>> {
        for f in &self.files {
            std::fs::rename(self.dir.join(part_name(&f.id)), self.dir.join(&f.id))?;
        }
        self.committed = true;
        Ok(self
            .files
            .iter()
            .map(|f| AttachmentRecord {
                id: f.id.clone(),
                name: f.name.clone(),
                content_type: f.content_type.to_owned(),
                size: f.size,
            })
            .collect())
    }

    /// The message that names these files is stored: they stay.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Default for Staged {
    /// No files (a JSON or form message).
    fn default() -> Self {
        Self::new(PathBuf::new())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for f in &self.files {
            let _ = std::fs::remove_file(self.dir.join(part_name(&f.id)));
            if self.committed {
                let _ = std::fs::remove_file(self.dir.join(&f.id));
            }
        }
    }
}

/// Removes files under the store's files folder that no message names
/// (uploads a crash interrupted, a mail stored twice, a failed write) and
/// temporary files nobody finished, once they are older than `min_age` by
/// `now`. Returns how many were removed.
pub fn sweep_orphans(store: &Store, now: Micros, min_age: Duration) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(store.files_dir())? {
        let entry = entry?;
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(now, |d| d.as_micros() as Micros);
        if now - modified < min_age.as_micros() as Micros {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let temporary = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".part"))
            .is_some_and(valid_id);
        let orphan = temporary
            || (valid_id(name)
                && store
                    .attachment_owner(name)
                    .map_err(|e| std::io::Error::other(e.to_string()))?
                    .is_none());
        if orphan && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Sweeps orphaned files at start and then every [`SWEEP_EVERY`] by
/// `clock` (a test's manual clock moves it), until shutdown.
pub async fn run_sweeper(
    store: Arc<Store>,
    clock: crate::service::notify::Clock,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut next = clock.now();
    loop {
        let now = clock.now();
        if now >= next {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || sweep_orphans(&s, now, ORPHAN_MIN_AGE)).await
            {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(files = n, "orphaned attachment files removed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not sweep attachment files"),
                Err(e) => tracing::warn!(error = %e, "the attachment sweep stopped"),
            }
            next = now + SWEEP_EVERY.as_micros() as Micros;
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

impl super::Services {
    /// An attachment and its bytes, by its id. The id is the capability:
    /// whoever holds the link (the message's viewers, who were given it)
    /// may fetch the file, so the lookup only proves that a stored message
    /// still names it; anything else is a 404.
    #[tracing::instrument(skip_all)]
    pub async fn attachment(
        &self,
        id: &str,
    ) -> crate::error::ApiResult<(AttachmentRecord, Vec<u8>)> {
        use crate::error::ApiError;
        if !valid_id(id) {
            return Err(ApiError::NotFound);
        }
        let (conv, seq, _) = self.store.attachment_owner(id)?.ok_or(ApiError::NotFound)?;
        let msg = self.store.message(conv, seq)?.ok_or(ApiError::NotFound)?;
        let att = msg
            .attachments
            .into_iter()
            .find(|a| a.id == id)
            .ok_or(ApiError::NotFound)?;
        let file = self.store.files_dir().join(&att.id);
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(file))
            .await
            .map_err(|_| ApiError::Internal)?
            .map_err(|e| {
                tracing::error!(error = %e, "attachment file missing");
                ApiError::NotFound
            })?;
        Ok((att, bytes))
    }
}

/// Whether `id` has the shape of our ids (so it can name a file safely).
pub fn valid_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), "image/jpeg");
        assert_eq!(sniff(b"GIF89a..."), "image/gif");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff(b"%PDF-1.7"), "application/pdf");
        assert_eq!(
            sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            "application/octet-stream"
        );
        assert_eq!(sniff(b"<html><script>"), "application/octet-stream");
        assert!(is_inline_image("image/gif") && !is_inline_image("application/pdf"));
    }

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\x\\photo.png"), "photo.png");
        assert_eq!(clean_name("a\"b\n.png"), "ab.png");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(
            clean_name("\u{2066}a\u{2069}\u{200e}b\u{200f}\u{061c}c\u{202a}\u{feff}.png"),
            "abc.png"
        );
        assert_eq!(clean_name(""), "file");
    }

    fn store(dir: &tempfile::TempDir) -> Arc<Store> {
        let opts = crate::store::StoreOptions {
            path: dir.path().to_path_buf(),
            cache_bytes: 1 << 20,
            fsync: false,
            event_buffer: 16,
            min_free_bytes: 0,
            backup_before_migration: false,
        };
        Store::open(&opts).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn staged_files_go_unless_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let files = || {
            let mut n: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap_or_else(|e| panic!("{e}"))
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect();
            n.sort();
            n
        };
        let receive = |name: &str| {
            let mut s = Staged::new(dir.path().to_path_buf());
            let mut w = s.begin(name).unwrap_or_else(|e| panic!("{e}"));
            w.write(b"GIF89a-data").unwrap_or_else(|e| panic!("{e}"));
            w.sync().unwrap_or_else(|e| panic!("{e}"));
            s.finish(w);
            s
        };
        drop(receive("refused.gif"));
        assert!(files().is_empty(), "a refused upload leaves nothing");
        let mut s = receive("failed.gif");
        s.commit().unwrap_or_else(|e| panic!("{e}"));
        drop(s);
        assert!(files().is_empty(), "nor does a failed message write");
        let mut s = receive("x.svg");
        let recs = s.commit().unwrap_or_else(|e| panic!("{e}"));
        s.keep();
        assert_eq!(recs[0].content_type, "image/gif");
        assert_eq!(recs[0].name, "x.svg");
        assert_eq!(files(), vec![std::ffi::OsString::from(&recs[0].id)]);
    }

    #[test]
    fn the_sweep_leaves_young_files_alone() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = store(&dir);
        let orphan = store.files_dir().join("AAAAAAAAAAAAAAAAAAAAAA");
        std::fs::write(&orphan, b"x").unwrap_or_else(|e| panic!("{e}"));
        let now = crate::domain::time::now();
        let sweep = |at| sweep_orphans(&store, at, ORPHAN_MIN_AGE).ok();
        assert_eq!(sweep(now), Some(0), "a write may still be on its way");
        assert!(orphan.exists());
        let later = now + 2 * ORPHAN_MIN_AGE.as_micros() as Micros;
        assert_eq!(sweep(later), Some(1));
        assert!(!orphan.exists());
    }

    #[test]
    fn saved_files_are_whole_and_typed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let rec = save(dir.path(), "x.svg", b"GIF89a-data").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rec.content_type, "image/gif");
        assert_eq!(rec.name, "x.svg");
        assert!(valid_id(&rec.id));
        assert_eq!(
            std::fs::read(dir.path().join(&rec.id)).ok(),
            Some(b"GIF89a-data".to_vec())
        );
    }
}
