//! The control socket, `<data>/natter.sock`: how `natter backup` reaches
//! the server that holds a data folder, so a backup of a running server is
//! one command and needs no token. Only the server's own user and root are
//! answered (the socket is `0600` and each peer's uid is checked): they may
//! read the data folder anyway.
//!
//! The protocol is one request line (`backup`), answered with frames of
//! one tag byte and a big-endian u32 length: `P` progress (two u64:
//! records done and expected), `D` archive bytes, then `K` (done) or `E`
//! (an error message). The client writes the bytes to a partial file,
//! checks every checksum and only then gives it its name.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::backup::{self, Manifest};
use crate::store::Store;

/// The socket's file name in the data folder.
pub const SOCKET: &str = "natter.sock";

/// Where a data folder's control socket is.
pub fn socket_path(data: &Path) -> PathBuf {
    data.join(SOCKET)
}

/// Serves the control socket until shutdown, then removes it. A socket
/// that cannot be made (a path too long for one) is logged and skipped:
/// only `natter backup` of the running server needs it.
pub async fn serve(store: Arc<Store>, mut shutdown: watch::Receiver<bool>) {
    let path = socket_path(store.data_dir());
    // Left by a server that was killed: this process holds the folder's
    // lock, so no other server is listening on it (nor backing it up).
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(store.data_dir().join(".control-backup.tree"));
    // Bound under a temporary name, restricted, then renamed: a client can
    // only ever reach the socket once it is 0600.
    let staging = store.data_dir().join(".natter.sock.new");
    let _ = std::fs::remove_file(&staging);
    let listener = match tokio::net::UnixListener::bind(&staging).and_then(|l| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staging, &path)?;
        Ok(l)
    }) {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            tracing::warn!(socket = %path.display(), error = %e, "no control socket: `natter backup` cannot reach this server");
            return;
        }
    };
    // Who owns the socket (this server's user) and root may use it.
    let owner = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&path).map(|m| m.uid()).ok()
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let uid = stream.peer_cred().map(|c| c.uid()).ok();
                    if uid.is_none() || (uid != owner && uid != Some(0)) {
                        tracing::warn!(?uid, "control socket: a connection from another user refused");
                        continue;
                    }
                    let store = store.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(store, stream).await {
                            tracing::warn!(error = %e, "control request failed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

async fn handle(store: Arc<Store>, stream: tokio::net::UnixStream) -> std::io::Result<()> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    tokio::task::spawn_blocking(move || answer(&store, stream))
        .await
        .map_err(std::io::Error::other)?
}

/// Frames written to the socket; shared by the archive and its progress.
#[derive(Clone)]
struct Frames(Arc<Mutex<UnixStream>>);

impl Frames {
    fn send(&self, tag: u8, payload: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(payload.len()).map_err(std::io::Error::other)?;
        let mut s = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        s.write_all(&[tag])?;
        s.write_all(&len.to_be_bytes())?;
        s.write_all(payload)
    }
}

impl Write for Frames {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.send(b'D', buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn answer(store: &Store, stream: UnixStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // A client that stops reading (suspended, on a full disk) must not
    // hold the snapshot, and its growing memory, for ever.
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(64)).read_line(&mut line)?;
    let frames = Frames(Arc::new(Mutex::new(stream)));
    if line.trim() != "backup" {
        return frames.send(
            b'E',
            format!("unknown request {:?}", line.trim()).as_bytes(),
        );
    }
    let scratch = store.data_dir().join(".control-backup.tree");
    let progress_frames = frames.clone();
    let mut progress = |done: u64, total: u64| {
        let mut p = [0u8; 16];
        p[..8].copy_from_slice(&done.to_be_bytes());
        p[8..].copy_from_slice(&total.to_be_bytes());
        let _ = progress_frames.send(b'P', &p);
    };
    let out = BufWriter::with_capacity(256 << 10, frames.clone());
    match store.backup_into(out, &scratch, &mut progress) {
        Ok((m, mut w)) => {
            w.flush()?;
            tracing::info!(
                messages = m.counts.messages,
                "backup streamed to natter backup"
            );
            frames.send(b'K', &[])
        }
        Err(e) => {
            tracing::error!(error = %e, "backup for natter backup failed");
            frames.send(b'E', e.to_string().as_bytes())
        }
    }
}

/// Asks the server running on `data` for a backup and writes it to `out`,
/// checked before it gets its name. `progress` hears the server's count.
pub fn backup_via_server(
    data: &Path,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Manifest, String> {
    let path = socket_path(data);
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        format!(
            "the data folder {} is in use by a running natter server, but its control socket {} does not answer ({e})",
            data.display(),
            path.display()
        )
    })?;
    stream
        .write_all(b"backup\n")
        .map_err(|e| format!("cannot ask the server for a backup: {e}"))?;
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = receive(&mut stream, &partial, progress).and_then(|()| {
        backup::verify(&partial, &mut |_, _| {})
            .map_err(|e| format!("the backup received is not whole: {e}"))
    });
    match result {
        Ok(m) => {
            std::fs::rename(&partial, out)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            Ok(m)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn receive(
    stream: &mut UnixStream,
    partial: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), String> {
    let file = std::fs::File::create(partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let mut file = BufWriter::new(file);
    let mut r = BufReader::with_capacity(256 << 10, stream);
    let cut = |e: std::io::Error| {
        format!("the server stopped answering before the backup was complete ({e})")
    };
    loop {
        let mut head = [0u8; 5];
        r.read_exact(&mut head).map_err(cut)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).map_err(cut)?;
        match head[0] {
            b'D' => file
                .write_all(&payload)
                .map_err(|e| format!("cannot write {}: {e}", partial.display()))?,
            b'P' if len == 16 => {
                let mut a = [0u8; 8];
                let mut b = [0u8; 8];
                a.copy_from_slice(&payload[..8]);
                b.copy_from_slice(&payload[8..]);
                progress(u64::from_be_bytes(a), u64::from_be_bytes(b));
            }
            b'K' => break,
            b'E' => {
                return Err(format!(
                    "the server could not write the backup: {}",
                    String::from_utf8_lossy(&payload)
                ))
            }
            _ => {
                return Err("the server answered something this natter does not understand".into())
            }
        }
    }
    let file = file
        .into_inner()
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    file.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))
}
