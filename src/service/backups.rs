//! Backups while serving: made by an admin (API and settings page), on a
//! schedule with retention (`NATTER_BACKUP_EVERY`, `NATTER_BACKUP_KEEP`),
//! and streamed to `natter backup` over the control socket. The archive
//! itself, and why it is consistent while writes go on, is
//! [`crate::store::backup`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::domain::time::{self, Micros};
use crate::error::{ApiError, ApiResult};
use crate::service::agents::require_admin;
use crate::service::notify::Clock;
use crate::store::backup::{self as archive, list, BackupError, BackupInfo, Manifest, SCHEDULED};
use crate::store::{AgentRecord, Store};

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Busy => ApiError::Conflict(e.to_string()),
            BackupError::Store(e) => e.into(),
            e => {
                tracing::error!(error = %e, "backup failed");
                ApiError::Internal
            }
        }
    }
}

/// Writes a backup of the running `store` into `dir`, named after the
/// time (`natter-2026-12-04T200000.123Z.tar.gz`).
pub async fn write(
    store: &Arc<Store>,
    dir: &Path,
    scheduled: bool,
    now: Micros,
) -> Result<(BackupInfo, Manifest), BackupError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| BackupError::Io(format!("cannot create {}: {e}", dir.display())))?;
    // Microseconds: two backups never share a name, and names sort as
    // the times they were written.
    let stamp = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(now)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H%M%S%.6fZ")
        .to_string();
    let suffix = if scheduled { SCHEDULED } else { ".tar.gz" };
    let mut name = format!("natter-{stamp}{suffix}");
    let mut n = 1;
    while dir.join(&name).exists() {
        n += 1;
        name = format!("natter-{stamp}-{n}{suffix}");
    }
    let out = dir.join(&name);
    let s = store.clone();
    let path = out.clone();
    let started = std::time::Instant::now();
    let manifest = tokio::task::spawn_blocking(move || s.backup(&path, &mut |_, _| {}))
        .await
        .map_err(|e| BackupError::Io(format!("the backup task failed: {e}")))??;
    let bytes = std::fs::metadata(&out).map_or(0, |m| m.len());
    tracing::info!(
        backup = %name,
        bytes,
        messages = manifest.counts.messages,
        took_ms = started.elapsed().as_millis() as u64,
        "backup written"
    );
    Ok((
        BackupInfo {
            name,
            bytes,
            created_at: now,
            scheduled,
        },
        manifest,
    ))
}

/// Deletes the oldest scheduled backups beyond `keep`; returns how many.
pub fn prune(dir: &Path, keep: usize) -> Result<usize, BackupError> {
    let scheduled: Vec<BackupInfo> = list(dir)?.into_iter().filter(|b| b.scheduled).collect();
    let mut removed = 0;
    for old in scheduled.iter().skip(keep) {
        match std::fs::remove_file(dir.join(&old.name)) {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(backup = %old.name, error = %e, "could not delete an old backup")
            }
        }
    }
    Ok(removed)
}

/// Writes a scheduled backup every `every` by `clock` (a test's manual
/// clock moves it), keeping the newest `keep`, until shutdown.
pub async fn run_scheduler(
    store: Arc<Store>,
    dir: PathBuf,
    every: Duration,
    keep: usize,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) {
    let period = every.as_micros() as Micros;
    // Whatever a killed server left half-written is not a backup.
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".partial") || n.ends_with(".partial.tree") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    // The schedule goes on from the newest scheduled backup, so a server
    // restarted more often than the period still makes them.
    let newest = list(&dir)
        .ok()
        .and_then(|l| l.into_iter().find(|b| b.scheduled))
        .map(|b| b.created_at);
    let mut next = match newest {
        Some(t) => t + period,
        None => clock.now() + period,
    };
    loop {
        let now = clock.now();
        if now >= next {
            match write(&store, &dir, true, now).await {
                Ok(_) => match prune(&dir, keep) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, keep, "old scheduled backups deleted"),
                    Err(e) => tracing::warn!(error = %e, "could not prune old backups"),
                },
                Err(e) => tracing::error!(error = %e, "the scheduled backup failed"),
            }
            next = now + period;
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

impl super::Services {
    fn backup_dir(&self) -> &Path {
        &self.config.backup_dir
    }

    /// The backups in the backup folder, newest first (admins).
    pub fn backups(&self, actor: &AgentRecord) -> ApiResult<Vec<BackupInfo>> {
        require_admin(actor)?;
        Ok(list(self.backup_dir())?)
    }

    /// Writes a backup now (admins); 409 while another one runs.
    pub async fn create_backup(&self, actor: &AgentRecord) -> ApiResult<BackupInfo> {
        require_admin(actor)?;
        let (b, _) = write(&self.store, self.backup_dir(), false, time::now()).await?;
        tracing::info!(backup = %b.name, by = %actor.id, "backup created");
        Ok(b)
    }

    /// The file of one backup, for download (admins).
    pub fn backup_file(&self, actor: &AgentRecord, name: &str) -> ApiResult<(BackupInfo, PathBuf)> {
        require_admin(actor)?;
        if !archive::is_backup_name(name) {
            return Err(ApiError::NotFound);
        }
        let path = self.backup_dir().join(name);
        let meta = std::fs::metadata(&path).map_err(|_| ApiError::NotFound)?;
        if !meta.is_file() {
            return Err(ApiError::NotFound);
        }
        let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        Ok((BackupInfo::of(name.to_owned(), meta.len(), modified), path))
    }

    /// Deletes one backup (admins).
    pub fn delete_backup(&self, actor: &AgentRecord, name: &str) -> ApiResult<()> {
        let (_, path) = self.backup_file(actor, name)?;
        std::fs::remove_file(&path).map_err(|e| {
            tracing::error!(backup = %name, error = %e, "could not delete a backup");
            ApiError::Internal
        })?;
        tracing::info!(backup = %name, by = %actor.id, "backup deleted");
        Ok(())
    }
}
