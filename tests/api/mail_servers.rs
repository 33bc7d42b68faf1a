//! Loopback mail servers for the email channel's integration tests: a real
//! Dovecot (IMAP) per test in a temporary directory, and a tiny in-process
//! SMTP server that records what it receives.
//!
//! Dovecot is the real thing rather than a fake because IMAP's corner cases
//! (UIDNEXT, `n:*`, IDLE, reconnects) are exactly what the client must get
//! right. It needs `/usr/sbin/dovecot` (Debian: `apt-get install -y
//! dovecot-imapd`). Every instance has its own port, base_dir, state and
//! maildir, so tests can run in parallel in one process, also as root.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The Dovecot binary the tests run.
const DOVECOT: &str = "/usr/sbin/dovecot";
/// The uid/gid that owns the maildirs when the tests run as root: Dovecot
/// refuses to access mail as root, and Debian's `nobody`/`nogroup` always
/// exist.
const MAIL_UID: u32 = 65534;
/// How long a Dovecot may take to start answering.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Dovecot serving one user's INBOX over plain IMAP on
/// 127.0.0.1:`port`. Stopped (and its directory removed) on drop.
pub struct Dovecot {
    /// The IMAP port on 127.0.0.1.
    pub port: u16,
    /// The only user.
    pub user: String,
    /// That user's password.
    pub password: String,
    /// The implicit-TLS IMAP port, for instances from [`Dovecot::start_tls`].
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
    certs: Option<tempfile::TempDir>,
    conf: PathBuf,
    child: Option<Child>,
    dropped: AtomicU64,
}

impl Dovecot {
    /// Starts a Dovecot with the default capabilities (IDLE included).
    pub fn start() -> Dovecot {
        Self::start_with("")
    }

    /// Starts a Dovecot with extra configuration lines, e.g.
    /// `imap_capability = IMAP4rev1 LITERAL+` to hide IDLE.
    pub fn start_with(extra_config: &str) -> Dovecot {
        let dir = tempfile::Builder::new()
            .prefix("natter-dovecot-")
            .tempdir()
            .expect("create a temporary directory");
        let root = dir.path().to_path_buf();
        let as_root = std::fs::metadata(&root)
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .expect("stat the temporary directory");
        let user = "natter".to_string();
        let password = "imap-secret".to_string();

        // The mail processes run as `nobody` when we are root, so they must be
        // able to reach the maildir inside the (0700) temporary directory.
        if as_root {
            set_mode(&root, 0o755);
        }
        let mail_root = root.join("mail");
        let maildir = mail_root.join(&user);
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("create the maildir");
        }
        let (mail_uid, internal_user, login_user) = if as_root {
            chown_tree(&mail_root, MAIL_UID);
            (MAIL_UID, "root".to_string(), "dovenull".to_string())
        } else {
            let me = std::env::var("USER").unwrap_or_else(|_| "nobody".to_string());
            let uid = std::fs::metadata(&root)
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
                .unwrap_or(0);
            (uid, me.clone(), me)
        };

        std::fs::write(
            root.join("passwd"),
            format!("{user}:{{PLAIN}}{password}::::::\n"),
        )
        .expect("write the passwd file");

        let port = free_port();
        let r = root.display();
        let conf = root.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "protocols = imap
listen = 127.0.0.1
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
info_log_path = {r}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {internal_user}
default_login_user = {login_user}
first_valid_uid = {mail_uid}
last_valid_uid = 0
mail_location = maildir:{r}/mail/%u
mail_uid = {mail_uid}
mail_gid = {mail_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {r}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_uid} home={r}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{extra_config}
"
            ),
        )
        .expect("write dovecot.conf");

        let mut dovecot = Dovecot {
            port,
            user,
            password,
            tls_port: None,
            dir,
            certs: None,
            conf,
            child: None,
            dropped: AtomicU64::new(0),
        };
        dovecot.launch();
        dovecot
    }

    /// Starts a Dovecot that also serves implicit TLS on `tls_port` with a
    /// fresh self-signed certificate for `localhost` (made with the openssl
    /// CLI, which dovecot-core depends on). No system trusts it, which is
    /// what a test of certificate checking needs.
    pub fn start_tls() -> Dovecot {
        let certs = tempfile::tempdir().expect("create a certificate directory");
        let c = certs.path().display();
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(certs.path().join("key.pem"))
            .arg("-out")
            .arg(certs.path().join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl req failed");
        let tls_port = free_port();
        let mut dovecot = Self::start_with(&format!(
            "ssl = yes
ssl_cert = <{c}/cert.pem
ssl_key = <{c}/key.pem
service imap-login {{
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
"
        ));
        dovecot.tls_port = Some(tls_port);
        dovecot.certs = Some(certs);
        dovecot
    }

    /// The temporary directory holding config, log and maildir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Dovecot's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Runs `dovecot -F` and waits until the port greets.
    fn launch(&mut self) {
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {DOVECOT} (apt-get install dovecot-imapd): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if greets(self.port) {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("dovecot exited with {status}:\n{}", self.log());
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "dovecot did not start within {READY_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL if it lingers) and waits
    /// until the port refuses connections: an outage as the client sees it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while StdTcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port with the same maildir.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Delivers a message into INBOX over IMAP APPEND (the server must be
    /// running); it gets the next UID at once.
    pub async fn append(&self, raw: &[u8]) {
        let tcp = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to dovecot");
        let mut client = async_imap::Client::new(tcp);
        client
            .read_response()
            .await
            .expect("read the greeting")
            .expect("a greeting");
        let mut session = client
            .login(&self.user, &self.password)
            .await
            .map_err(|(e, _)| e)
            .expect("log in to dovecot");
        session
            .append("INBOX", None, None, raw)
            .await
            .expect("APPEND");
        let _ = session.logout().await;
    }

    /// Drops a message straight into the maildir's `new/`, which works while
    /// the server is stopped. Dovecot numbers such files in file-name order
    /// on its next look at the mailbox, and the names here sort in call
    /// order, so UIDs follow the order of calls.
    pub fn drop_into_maildir(&self, raw: &[u8]) {
        let n = self.dropped.fetch_add(1, Ordering::SeqCst);
        let new_dir = self.dir.path().join("mail").join(&self.user).join("new");
        let tmp_dir = self.dir.path().join("mail").join(&self.user).join("tmp");
        let name = format!(
            "{}.M{:06}P{}Q{n}.natter-test",
            1_700_000_000 + n,
            n % 1_000_000,
            std::process::id()
        );
        let tmp = tmp_dir.join(&name);
        std::fs::write(&tmp, raw).expect("write the message");
        if std::fs::metadata(self.dir.path())
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false)
        {
            let _ = std::os::unix::fs::chown(&tmp, Some(MAIL_UID), Some(MAIL_UID));
        }
        std::fs::rename(&tmp, new_dir.join(&name)).expect("move the message to new/");
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

/// Whether an IMAP server on `port` sends its `* OK` greeting.
fn greets(port: u16) -> bool {
    let Ok(mut stream) = StdTcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 256];
    let ok = matches!(stream.read(&mut buf), Ok(n) if n > 0 && buf[..n].starts_with(b"* OK"));
    let _ = stream.write_all(b"x LOGOUT\r\n");
    ok
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .expect("chmod the temporary directory");
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown the maildir");
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("list the maildir").flatten() {
            chown_tree(&entry.path(), uid);
        }
    }
}

/// One message the SMTP sink accepted.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The MAIL FROM address.
    pub mail_from: String,
    /// The RCPT TO addresses.
    pub rcpt_to: Vec<String>,
    /// The user that logged in, if any.
    pub authenticated_as: Option<String>,
    /// The message as sent after DATA, dot-unstuffed, CRLF line ends.
    pub data: Vec<u8>,
}

#[derive(Default)]
struct SinkState {
    received: Vec<ReceivedMail>,
    /// (how many more transactions to refuse, with which code)
    fail_next: (usize, u16),
}

/// A minimal SMTP server on 127.0.0.1 that accepts every message and keeps
/// it in memory. With `offer_auth` it advertises AUTH PLAIN LOGIN and
/// requires a login (user `natter`, password `smtp-secret`) before MAIL.
pub struct SmtpSink {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The user name it accepts.
    pub user: String,
    /// The password it accepts.
    pub password: String,
    state: Arc<Mutex<SinkState>>,
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Outgoing-mail settings that send through this sink, from `from`
    /// (natter's own `NATTER_SMTP_*`, so loopback is allowed).
    pub fn outgoing(&self, from: &str) -> natter::channels::email::EmailSettings {
        natter::channels::email::EmailSettings {
            imap_host: String::new(),
            imap_port: 993,
            imap_tls: false,
            smtp_host: "127.0.0.1".into(),
            smtp_port: self.port,
            smtp_tls: false,
            username: String::new(),
            password: String::new(),
            from_address: from.to_owned(),
            allow_private: true,
        }
    }

    /// Starts the server; it runs until dropped.
    pub async fn start(offer_auth: bool) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP sink");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(SinkState::default()));
        let (count_tx, count) = watch::channel(0usize);
        let count_tx = Arc::new(count_tx);
        let user = "natter".to_string();
        let password = "smtp-secret".to_string();
        let task = {
            let state = state.clone();
            let credentials = (user.clone(), password.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let state = state.clone();
                    let count_tx = count_tx.clone();
                    let credentials = credentials.clone();
                    tokio::spawn(async move {
                        let _ = serve(stream, offer_auth, credentials, state, count_tx).await;
                    });
                }
            })
        };
        SmtpSink {
            port,
            user,
            password,
            state,
            count,
            task,
        }
    }

    /// Makes the next `n` transactions fail at MAIL FROM with `code`
    /// (e.g. 451 for a temporary, 550 for a permanent failure).
    pub fn set_fail_next(&self, n: usize, code: u16) {
        if let Ok(mut state) = self.state.lock() {
            state.fail_next = (n, code);
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }

    /// Waits until at least `n` messages arrived, at most `timeout`, and
    /// returns all received messages (fewer than `n` on timeout).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let mut count = self.count.clone();
        let _ = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        self.received()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One SMTP session.
async fn serve(
    stream: TcpStream,
    offer_auth: bool,
    (user, password): (String, String),
    state: Arc<Mutex<SinkState>>,
    count_tx: Arc<watch::Sender<usize>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write
        .write_all(b"220 sink.test ESMTP natter test sink\r\n")
        .await?;
    let mut authenticated: Option<String> = None;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = text.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or("").to_string();
        let reply: String = match verb.as_str() {
            "EHLO" => {
                if offer_auth {
                    "250-sink.test\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10000000\r\n".into()
                } else {
                    "250-sink.test\r\n250 SIZE 10000000\r\n".into()
                }
            }
            "HELO" => "250 sink.test\r\n".into(),
            "AUTH" if !offer_auth => "502 5.5.1 AUTH not offered\r\n".into(),
            "AUTH" => {
                let args: Vec<&str> = text.split_whitespace().skip(1).collect();
                let mechanism = args.first().map(|m| m.to_ascii_uppercase());
                let decode = |s: &str| {
                    b64.decode(s.trim())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                };
                let got = match mechanism.as_deref() {
                    Some("PLAIN") => {
                        let initial = match args.get(1) {
                            Some(initial) => initial.to_string(),
                            None => {
                                write.write_all(b"334 \r\n").await?;
                                read_line(&mut read).await?
                            }
                        };
                        decode(&initial).and_then(|s| {
                            let mut parts = s.split('\0');
                            let _authzid = parts.next()?;
                            Some((parts.next()?.to_string(), parts.next()?.to_string()))
                        })
                    }
                    Some("LOGIN") => {
                        write.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                        let u = decode(&read_line(&mut read).await?);
                        write.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
                        let p = decode(&read_line(&mut read).await?);
                        u.zip(p)
                    }
                    _ => None,
                };
                match got {
                    Some((u, p)) if u == user && p == password => {
                        authenticated = Some(u);
                        "235 2.7.0 Authentication successful\r\n".into()
                    }
                    _ => "535 5.7.8 Authentication credentials invalid\r\n".into(),
                }
            }
            "MAIL" => {
                let failure = state.lock().ok().and_then(|mut s| {
                    if s.fail_next.0 > 0 {
                        s.fail_next.0 -= 1;
                        Some(s.fail_next.1)
                    } else {
                        None
                    }
                });
                if let Some(code) = failure {
                    format!("{code} {}.0.0 refused by test\r\n", code / 100)
                } else if offer_auth && authenticated.is_none() {
                    "530 5.7.0 Authentication required\r\n".into()
                } else {
                    mail_from = Some(angle_address(&text));
                    rcpt_to.clear();
                    "250 2.1.0 OK\r\n".into()
                }
            }
            "RCPT" if mail_from.is_some() => {
                rcpt_to.push(angle_address(&text));
                "250 2.1.5 OK\r\n".into()
            }
            "DATA" if mail_from.is_some() && !rcpt_to.is_empty() => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = Vec::new();
                loop {
                    let mut l = Vec::new();
                    if read.read_until(b'\n', &mut l).await? == 0 {
                        return Ok(());
                    }
                    if l == b".\r\n" || l == b".\n" {
                        break;
                    }
                    let l = if l.starts_with(b"..") {
                        &l[1..]
                    } else {
                        &l[..]
                    };
                    data.extend_from_slice(l);
                }
                let mail = ReceivedMail {
                    mail_from: mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    authenticated_as: authenticated.clone(),
                    data,
                };
                let n = match state.lock() {
                    Ok(mut s) => {
                        s.received.push(mail);
                        s.received.len()
                    }
                    Err(_) => 0,
                };
                count_tx.send_replace(n);
                "250 2.0.0 OK queued\r\n".into()
            }
            "RCPT" | "DATA" => "503 5.5.1 Bad sequence of commands\r\n".into(),
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                "250 2.0.0 OK\r\n".into()
            }
            "NOOP" => "250 2.0.0 OK\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "500 5.5.2 Command not recognized\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// Reads one line without its line end.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R) -> std::io::Result<String> {
    let mut line = String::new();
    read.read_line(&mut line).await?;
    Ok(line.trim_end().to_string())
}

/// The address between `<` and `>` in a MAIL FROM / RCPT TO line.
fn angle_address(line: &str) -> String {
    match (line.find('<'), line.find('>')) {
        (Some(start), Some(end)) if end > start => line[start + 1..end].to_string(),
        _ => String::new(),
    }
}
