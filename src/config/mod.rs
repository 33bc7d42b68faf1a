//! Every setting, declared once: its flag, its environment variable, its
//! default and what it is for. Flags win over the environment (clap's rule).
//! [`ServeConfig::validate`] checks them at start so a mistake ends the
//! process with one clear line instead of a surprise later.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod file;

/// The command line of the `natter` binary.
/// A setting that must never be printed: its `Debug` shows `<redacted>`,
/// so a config dumped into a log (or a panic message) leaks no password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// The command line: one subcommand and its flags.
#[derive(Debug, Parser)]
#[command(
    name = "natter",
    version,
    about = "Self-hosted customer messaging in one binary"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once at start; boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage a stopped server's data.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Rebuild the search index of a stopped server's data from its messages.
    Reindex(ReindexArgs),
    /// The settings `serve` would run with.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Exit 0 when the server's /healthz answers 200, 1 otherwise (for
    /// Docker's HEALTHCHECK and monitoring scripts).
    Healthcheck(HealthcheckArgs),
    /// Write one archive of a data folder (store, attachments, settings),
    /// stopped or with a server running on it.
    Backup(BackupArgs),
    /// Restore a backup into the data folder of a stopped server.
    Restore(RestoreArgs),
    /// Write every record as JSON lines, with the attachments, to move
    /// them to another machine.
    Export(ExportArgs),
    /// Load an export into a new data folder.
    Import(ImportArgs),
    /// Check a stopped server's data folder: derived indexes and counters
    /// against their records, the search index against the log, and every
    /// attachment on disk (exit 0 healthy, 1 problems found).
    Doctor(DoctorArgs),
}

/// `natter export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The archive to write (a .tar.gz).
    #[arg(long)]
    pub out: PathBuf,
    /// The data folder of a stopped server.
    #[arg(long, env = "NATTER_DATA", default_value = "./natter-data")]
    pub data: PathBuf,
}

/// `natter import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The archive `natter export` wrote.
    pub archive: PathBuf,
    /// The new data folder (missing or empty).
    #[arg(long, env = "NATTER_DATA")]
    pub data: PathBuf,
}

/// `natter doctor`
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The data folder.
    #[arg(long, env = "NATTER_DATA", default_value = "./natter-data")]
    pub data: PathBuf,
    /// Rebuild what is derived (indexes, counters, the search index) from
    /// the records; records are never changed.
    #[arg(long)]
    pub repair: bool,
}

/// `natter backup`
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The archive to write (a .tar.gz).
    #[arg(long)]
    pub out: PathBuf,
    /// The data folder.
    #[arg(long, env = "NATTER_DATA", default_value = "./natter-data")]
    pub data: PathBuf,
}

/// `natter restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive `natter backup` wrote.
    pub archive: PathBuf,
    /// The data folder to restore into (missing or empty, unless --force).
    #[arg(long, env = "NATTER_DATA")]
    pub data: PathBuf,
    /// Replace a data folder that holds data.
    #[arg(long)]
    pub force: bool,
}

/// `natter healthcheck`
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The health URL [default: /healthz on NATTER_BIND, with an
    /// unspecified address (0.0.0.0, [::]) asked on loopback].
    #[arg(long)]
    pub url: Option<String>,
    /// The address the server listens on (read to find it).
    #[arg(
        long,
        env = "NATTER_BIND",
        default_value = "127.0.0.1:8080",
        hide = true
    )]
    pub bind: String,
    /// How long to wait for the answer, in seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
    /// The server's certificate file, read only to know it speaks HTTPS.
    #[arg(long, env = "NATTER_TLS_CERT", hide = true)]
    pub tls_cert: Option<PathBuf>,
    /// The server's ACME domain, read only to know it speaks HTTPS.
    #[arg(long, env = "NATTER_ACME_DOMAIN", hide = true)]
    pub acme_domain: Option<String>,
}

/// `natter config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every setting with its value and where it came from (flag,
    /// environment, file or default), secrets masked. Takes the flags of
    /// `serve`.
    Show(ServeArgs),
}

/// `natter reindex`
#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// The data folder.
    #[arg(long, env = "NATTER_DATA", default_value = "./natter-data")]
    pub data: PathBuf,
}

/// `natter admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Add an agent to a stopped server's data.
    Create(AdminCreateArgs),
}

/// `natter admin create`
#[derive(Debug, Args)]
pub struct AdminCreateArgs {
    /// The agent's sign-in email.
    #[arg(long)]
    pub email: String,
    /// The agent's display name.
    #[arg(long)]
    pub name: String,
    /// admin or agent.
    #[arg(long, default_value = "admin")]
    pub role: String,
    /// Read the password from standard input (one line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// The data folder.
    #[arg(long, env = "NATTER_DATA", default_value = "./natter-data")]
    pub data: PathBuf,
}

/// `natter serve`: every server setting.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML file of settings, one key per flag name (`bind = "0.0.0.0:8080"`,
    /// `cache-mb = 32`); a flag or the environment overrides it.
    #[arg(long, env = "NATTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "NATTER_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Data folder (created if missing).
    #[arg(long, env = "NATTER_DATA", default_value = "./natter-data")]
    pub data: PathBuf,
    /// Public URL of this server, used in links it hands out [default: http://<bind>].
    #[arg(long, env = "NATTER_BASE_URL")]
    pub base_url: Option<String>,
    /// Email of an admin to create at start when no agent exists yet.
    #[arg(long, env = "NATTER_ADMIN_EMAIL", hide = true)]
    pub admin_email: Option<String>,
    /// Password of that admin (environment only; never logged).
    #[arg(
        long,
        env = "NATTER_ADMIN_PASSWORD",
        hide = true,
        hide_env_values = true
    )]
    pub admin_password: Option<Secret>,
    /// fsync the data file after each group flush, so acknowledged messages
    /// survive power loss too (slower; default protects against crashes of
    /// the process only).
    #[arg(long, env = "NATTER_FSYNC", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new())]
    pub fsync: bool,
    /// Bearer token that opens `/metrics` on the main address (for
    /// Prometheus' `authorization` setting). Without it and without
    /// --metrics-bind, metrics are not served: they are off the public port
    /// by default, as exporters usually are.
    #[arg(long, env = "NATTER_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// A second address that serves `/metrics` alone, without a token
    /// (e.g. 127.0.0.1:9464, reachable only from the machine or a private
    /// network).
    #[arg(long, env = "NATTER_METRICS_BIND")]
    pub metrics_bind: Option<String>,
    /// Database page cache in MiB.
    #[arg(long, env = "NATTER_CACHE_MB", default_value_t = 16)]
    pub cache_mb: u64,
    /// Days an agent token or session stays valid.
    #[arg(long, env = "NATTER_TOKEN_TTL_DAYS", default_value_t = 30)]
    pub token_ttl_days: u32,
    /// Days a contact token stays valid.
    #[arg(long, env = "NATTER_CONTACT_TOKEN_TTL_DAYS", default_value_t = 365)]
    pub contact_token_ttl_days: u32,
    /// Reverse proxies whose X-Forwarded-For is believed (comma-separated IPs).
    #[arg(long, env = "NATTER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Failed sign-ins allowed per account and per address before a lockout.
    #[arg(long, env = "NATTER_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,
    /// Minutes a sign-in lockout lasts; failures are forgotten at the same pace.
    #[arg(long, env = "NATTER_LOGIN_LOCKOUT_MINUTES", default_value_t = 15)]
    pub login_lockout_minutes: u32,
    /// New contacts per minute from one address (0 turns the limit off).
    #[arg(long, env = "NATTER_CONTACTS_PER_MINUTE", default_value_t = 30)]
    pub contacts_per_minute: u32,
    /// Messages per minute from one contact (0 turns the limit off).
    #[arg(long, env = "NATTER_CONTACT_MESSAGES_PER_MINUTE", default_value_t = 60)]
    pub contact_messages_per_minute: u32,
    /// Open connections one client address may hold (0 turns the limit off).
    #[arg(long, env = "NATTER_CONNECTIONS_PER_ADDRESS", default_value_t = 256)]
    pub connections_per_address: usize,
    /// Searches per minute per agent or contact (0 turns the limit off).
    #[arg(long, env = "NATTER_SEARCHES_PER_MINUTE", default_value_t = 60)]
    pub searches_per_minute: u32,
    /// Event streams one agent or contact may hold open at once.
    #[arg(long, env = "NATTER_STREAMS_PER_USER", default_value_t = 20)]
    pub streams_per_user: usize,
    /// Seconds a request body may take, plus one second for every 16 KiB
    /// that has arrived: a client trickling a body (1 byte a second) is
    /// answered 408 and disconnected instead of holding a worker forever.
    #[arg(long, env = "NATTER_BODY_TIMEOUT_SECS", default_value_t = 10)]
    pub body_timeout_secs: u64,
    /// Number of HTTP worker threads [default: one per core].
    #[arg(long, env = "NATTER_WORKERS")]
    pub workers: Option<usize>,
    /// Free space (MiB) to keep on the data folder's disk; writes get 507
    /// below it, until space returns.
    #[arg(long, env = "NATTER_MIN_FREE_MB", default_value_t = 64)]
    pub min_free_mb: u64,
    /// Largest attachment in MiB.
    #[arg(long, env = "NATTER_MAX_UPLOAD_MB", default_value_t = 10)]
    pub max_upload_mb: u64,
    /// Attachment MiB one contact may upload per hour; past it, 429 with
    /// Retry-After and nothing stored (0 turns the quota off).
    #[arg(long, env = "NATTER_UPLOAD_MB_PER_HOUR_CONTACT", default_value_t = 100)]
    pub upload_mb_per_hour_contact: u64,
    /// Attachment MiB one client address may upload per hour, over all its
    /// contacts and first messages (0 turns the quota off).
    #[arg(long, env = "NATTER_UPLOAD_MB_PER_HOUR_ADDRESS", default_value_t = 250)]
    pub upload_mb_per_hour_address: u64,
    /// Durable events kept in memory for live streams: how far each
    /// stream (and the dispatcher that routes events to streams) may fall
    /// behind before it catches up from the log.
    #[arg(long, env = "NATTER_EVENT_BUFFER", default_value_t = 4096)]
    pub event_buffer: usize,
    /// Seconds between keep-alive comments on event streams (at most 15).
    #[arg(long, env = "NATTER_SSE_KEEPALIVE_SECS", default_value_t = 10)]
    pub sse_keepalive_secs: u64,
    /// Minutes an agent's reply may stay unread before the contact (who
    /// left an email) gets it by email (0 turns notifications off).
    #[arg(long, env = "NATTER_NOTIFY_AFTER_MINUTES", default_value_t = 5)]
    pub notify_after_minutes: u32,
    /// Minutes without an open workspace tab or event stream after which an
    /// agent counts as offline (shown, and for routing).
    #[arg(long, env = "NATTER_AWAY_AFTER_MINUTES", default_value_t = 10)]
    pub away_after_minutes: u32,
    /// Outgoing mail server for notifications [default: the first email
    /// inbox's SMTP settings].
    #[arg(long, env = "NATTER_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// Its port.
    #[arg(long, env = "NATTER_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    /// TLS (on 465) or STARTTLS (elsewhere).
    #[arg(long, env = "NATTER_SMTP_TLS", default_value_t = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub smtp_tls: bool,
    /// Its user name (login only when the server offers AUTH).
    #[arg(long, env = "NATTER_SMTP_USERNAME", default_value = "")]
    pub smtp_username: String,
    /// Its password (environment only; never logged).
    #[arg(
        long,
        env = "NATTER_SMTP_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub smtp_password: Secret,
    /// The From address of notifications (replies to it can thread back
    /// when an email inbox follows that mailbox).
    #[arg(long, env = "NATTER_SMTP_FROM", default_value = "")]
    pub smtp_from: String,
    /// Let outbound webhooks, channel `api_base` and `callback_url` reach
    /// loopback and private addresses (refused by default: SSRF).
    #[arg(long, env = "NATTER_WEBHOOKS_ALLOW_PRIVATE", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new())]
    pub webhooks_allow_private: bool,
    /// Write a backup this often while serving (`24h`, `6h`, `30m`, `7d`;
    /// `off`). The first is written one period after start.
    #[arg(long, env = "NATTER_BACKUP_EVERY", default_value = "off")]
    pub backup_every: String,
    /// Scheduled backups to keep; older ones are deleted (backups made by
    /// hand are never deleted by this).
    #[arg(long, env = "NATTER_BACKUP_KEEP", default_value_t = 7)]
    pub backup_keep: usize,
    /// Where backups go [default: <data>/backups].
    #[arg(long, env = "NATTER_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Serve HTTPS (and HTTP/2) on --bind with this PEM certificate chain
    /// (with --tls-key).
    #[arg(long, env = "NATTER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "NATTER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Also answer plain HTTP on this address, with a redirect to the HTTPS
    /// base URL (e.g. 0.0.0.0:80; needs HTTPS).
    #[arg(long, env = "NATTER_REDIRECT_BIND")]
    pub redirect_bind: Option<String>,
    /// Obtain and renew a certificate for this domain by ACME (Let's
    /// Encrypt by default) and serve HTTPS with it; the domain must point
    /// at this server and --bind be reachable on its port 443.
    #[arg(long, env = "NATTER_ACME_DOMAIN")]
    pub acme_domain: Option<String>,
    /// The email the ACME server may write to about the certificate.
    #[arg(long, env = "NATTER_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// The ACME directory.
    #[arg(
        long,
        env = "NATTER_ACME_DIRECTORY",
        default_value = "https://acme-v02.api.letsencrypt.org/directory"
    )]
    pub acme_directory: String,
    /// A PEM root certificate the ACME server's own HTTPS is trusted with,
    /// besides the system's (a private ACME server).
    #[arg(long, env = "NATTER_ACME_CA_FILE")]
    pub acme_ca_file: Option<PathBuf>,
}

/// Settings of `--acme-domain`.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The domain the certificate is for.
    pub domain: String,
    /// Contact email.
    pub email: Option<String>,
    /// The ACME directory URL.
    pub directory: String,
    /// An extra root for the ACME server's HTTPS.
    pub ca_file: Option<PathBuf>,
}

/// A period written as a number and a unit (`30m`, `24h`, `7d`), or `off`.
pub fn parse_period(flag: &str, text: &str) -> Result<Option<std::time::Duration>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") || t == "0" {
        return Ok(None);
    }
    let bad = || format!("invalid {flag} {text:?}: use a number and s, m, h or d (`24h`), or off");
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        "d" => n.checked_mul(86_400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs < 60 {
        return Err(format!("invalid {flag} {text:?}: at least one minute"));
    }
    if secs > 366 * 86_400 {
        return Err(format!("invalid {flag} {text:?}: at most a year"));
    }
    Ok(Some(std::time::Duration::from_secs(secs)))
}

/// The longest token lifetime accepted, in days (a century).
const MAX_TOKEN_TTL_DAYS: u32 = 36_500;
/// The most sign-in failures a lockout may allow (beyond this the
/// failures would be forgotten faster than the limiter can count).
const MAX_LOGIN_FAILURES: u32 = 1000;

/// A size in MiB as bytes; a value too large to count in bytes is refused
/// (never wrapped or clamped).
fn mib(flag: &str, value: u64) -> Result<u64, String> {
    value
        .checked_mul(1 << 20)
        .ok_or_else(|| format!("invalid {flag} {value}: too large"))
}

/// Settings after validation.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The data folder.
    pub data: PathBuf,
    /// Public URL, without a trailing slash.
    pub base_url: String,
    /// Whether the base URL was set; if not, it follows the bound address
    /// (so `--bind 127.0.0.1:0` hands out links with the real port).
    pub base_url_explicit: bool,
    /// Bootstrap admin (email, password).
    pub bootstrap_admin: Option<(String, Secret)>,
    /// fsync after each flush.
    pub fsync: bool,
    /// Bearer token for `/metrics` on the main address.
    pub metrics_token: Option<Secret>,
    /// Where `/metrics` is served alone, without a token.
    pub metrics_bind: Option<SocketAddr>,
    /// sled cache in bytes.
    pub cache_bytes: u64,
    /// Agent token lifetime in seconds.
    pub token_ttl_secs: i64,
    /// Contact token lifetime in seconds.
    pub contact_token_ttl_secs: i64,
    /// Peers whose X-Forwarded-For counts.
    pub trusted_proxies: Vec<IpAddr>,
    /// Sign-in failures before lockout.
    pub login_max_failures: u32,
    /// Lockout period in seconds.
    pub login_lockout_secs: u64,
    /// Contacts per minute per address (0: off).
    pub contacts_per_minute: u32,
    /// Messages per minute per contact (0: off).
    pub contact_messages_per_minute: u32,
    /// Open connections per client address (0: off).
    pub connections_per_address: usize,
    /// Searches per minute per caller (0: off).
    pub searches_per_minute: u32,
    /// Grace seconds for a request body (see the flag).
    pub body_timeout_secs: u64,
    /// Open event streams per agent or contact.
    pub streams_per_user: usize,
    /// HTTP workers.
    pub workers: usize,
    /// Seconds between SSE keep-alive comments.
    pub sse_keepalive_secs: u64,
    /// Live event buffer size.
    pub event_buffer: usize,
    /// Largest attachment in bytes.
    pub max_upload_bytes: usize,
    /// Free bytes to keep on the data disk.
    pub min_free_bytes: u64,
    /// Attachment bytes per contact per hour (0: off).
    pub upload_bytes_per_hour_contact: u64,
    /// Attachment bytes per client address per hour (0: off).
    pub upload_bytes_per_hour_address: u64,
    /// Outbound calls may reach internal addresses.
    pub webhooks_allow_private: bool,
    /// Unread-reply notification delay in seconds (0: off).
    pub notify_after_secs: i64,
    /// Seconds without a stream after which an agent counts as offline.
    pub away_after_secs: i64,
    /// The global outgoing mail server, if configured.
    pub smtp: Option<crate::channels::email::EmailSettings>,
    /// The clock of notifications (tests move it by hand).
    pub clock: crate::service::notify::Clock,
    /// How often a scheduled backup is written (`None`: never).
    pub backup_every: Option<std::time::Duration>,
    /// Scheduled backups kept.
    pub backup_keep: usize,
    /// Where backups go.
    pub backup_dir: PathBuf,
    /// The PEM certificate chain and key HTTPS is served with.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Where plain HTTP is answered with a redirect to HTTPS.
    pub redirect_bind: Option<SocketAddr>,
    /// A certificate obtained and renewed by ACME.
    pub acme: Option<AcmeSettings>,
}

impl ServeArgs {
    /// Checks every setting; the error is the one line shown to the user.
    pub fn validate(self) -> Result<ServeConfig, String> {
        let bind = self
            .bind
            .to_socket_addrs()
            .map_err(|e| format!("invalid --bind {:?}: {e}", self.bind))?
            .next()
            .ok_or_else(|| format!("invalid --bind {:?}: no address", self.bind))?;
        let metrics_bind = match &self.metrics_bind {
            None => None,
            Some(b) => Some(
                b.to_socket_addrs()
                    .map_err(|e| format!("invalid --metrics-bind {b:?}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("invalid --metrics-bind {b:?}: no address"))?,
            ),
        };
        if metrics_bind.is_some_and(|m| m == bind && bind.port() != 0) {
            return Err(format!(
                "invalid --metrics-bind {}: it must differ from --bind",
                bind
            ));
        }
        if let Some(t) = &self.metrics_token {
            if t.expose().len() < 16 {
                return Err("invalid NATTER_METRICS_TOKEN: use at least 16 characters".into());
            }
        }
        let base_url_explicit = self.base_url.is_some();
        let base_url = match self.base_url {
            Some(u) => {
                let u = u.trim().trim_end_matches('/').to_owned();
                if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 10 {
                    return Err(format!(
                        "invalid --base-url {u:?}: it must start with http:// or https://"
                    ));
                }
                u
            }
            None => format!(
                "{}://{}",
                if self.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                },
                self.bind
            ),
        };
        let bootstrap_admin = match (self.admin_email, self.admin_password) {
            (Some(e), Some(p)) => Some((e, p)),
            (None, None) => None,
            _ => {
                return Err(
                    "set both NATTER_ADMIN_EMAIL and NATTER_ADMIN_PASSWORD, or neither".into(),
                )
            }
        };
        if self.cache_mb == 0 || self.cache_mb > 1 << 20 {
            return Err(format!(
                "invalid --cache-mb {}: use 1 to 1048576",
                self.cache_mb
            ));
        }
        if self.token_ttl_days == 0 || self.contact_token_ttl_days == 0 {
            return Err("token lifetimes must be at least one day".into());
        }
        // Expiry times are microseconds in an i64: a century is plenty and
        // cannot overflow.
        if self.token_ttl_days > MAX_TOKEN_TTL_DAYS
            || self.contact_token_ttl_days > MAX_TOKEN_TTL_DAYS
        {
            return Err(format!(
                "token lifetimes must be at most {MAX_TOKEN_TTL_DAYS} days"
            ));
        }
        if !(1..=MAX_LOGIN_FAILURES).contains(&self.login_max_failures) {
            return Err(format!(
                "--login-max-failures must be 1 to {MAX_LOGIN_FAILURES}"
            ));
        }
        // Out-of-range values are refused, never silently clamped: the
        // admin learns at start that the setting does not do what it says.
        if self.streams_per_user == 0 {
            return Err("--streams-per-user must be at least 1".into());
        }
        if self.event_buffer == 0 || self.event_buffer > 1 << 20 {
            return Err(format!(
                "invalid --event-buffer {}: use 1 to 1048576",
                self.event_buffer
            ));
        }
        if self.max_upload_mb == 0 || self.max_upload_mb > 1024 {
            return Err(format!(
                "invalid --max-upload-mb {}: use 1 to 1024",
                self.max_upload_mb
            ));
        }
        if self.body_timeout_secs == 0 {
            return Err("--body-timeout-secs must be at least 1".into());
        }
        if self.login_lockout_minutes == 0 {
            return Err("--login-lockout-minutes must be at least 1".into());
        }
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| format!("invalid trusted proxy {s:?}: expected an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let workers = match self.workers {
            Some(0) => return Err("--workers must be at least 1".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        if !(1..=15).contains(&self.sse_keepalive_secs) {
            return Err("--sse-keepalive-secs must be 1 to 15".into());
        }
        let tls = match (self.tls_cert.clone(), self.tls_key.clone()) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(
                "set both --tls-cert and --tls-key (NATTER_TLS_CERT, NATTER_TLS_KEY), or neither"
                    .into(),
            ),
        };
        let acme = match self.acme_domain.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(_) if tls.is_some() => {
                return Err("use either --acme-domain or --tls-cert and --tls-key, not both".into())
            }
            Some(d) => {
                let ok = d.len() <= 253
                    && d.contains('.')
                    && d.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if !ok && d != "localhost" {
                    return Err(format!(
                        "invalid --acme-domain {d:?}: a domain name such as chat.example.com"
                    ));
                }
                if !self.acme_directory.starts_with("https://")
                    && !self.acme_directory.starts_with("http://")
                {
                    return Err(format!(
                        "invalid --acme-directory {:?}: a URL",
                        self.acme_directory
                    ));
                }
                Some(AcmeSettings {
                    domain: d.to_ascii_lowercase(),
                    email: self.acme_email.clone().filter(|e| !e.trim().is_empty()),
                    directory: self.acme_directory.clone(),
                    ca_file: self.acme_ca_file.clone(),
                })
            }
        };
        let redirect_bind = match &self.redirect_bind {
            None => None,
            Some(_) if tls.is_none() && acme.is_none() => {
                return Err("--redirect-bind sends plain HTTP to HTTPS: it needs --tls-cert and --tls-key, or --acme-domain".into())
            }
            Some(b) => {
                let addr = b
                    .to_socket_addrs()
                    .map_err(|e| format!("invalid --redirect-bind {b:?}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("invalid --redirect-bind {b:?}: no address"))?;
                if addr == bind && addr.port() != 0 {
                    return Err(format!(
                        "invalid --redirect-bind {addr}: it must differ from --bind"
                    ));
                }
                Some(addr)
            }
        };
        // With ACME, links name the certificate's domain on natter's port.
        let base_url = match (&acme, base_url_explicit) {
            (Some(a), false) => match bind.port() {
                443 => format!("https://{}", a.domain),
                p => format!("https://{}:{p}", a.domain),
            },
            _ => base_url,
        };
        let backup_every = parse_period("--backup-every", &self.backup_every)?;
        if self.backup_keep == 0 || self.backup_keep > 10_000 {
            return Err(format!(
                "invalid --backup-keep {}: use 1 to 10000",
                self.backup_keep
            ));
        }
        let backup_dir = self
            .backup_dir
            .clone()
            .unwrap_or_else(|| self.data.join("backups"));
        Ok(ServeConfig {
            tls,
            redirect_bind,
            acme,
            backup_every,
            backup_keep: self.backup_keep,
            backup_dir,
            bind,
            data: self.data,
            base_url,
            base_url_explicit,
            bootstrap_admin,
            fsync: self.fsync,
            metrics_token: self.metrics_token,
            metrics_bind,
            cache_bytes: self.cache_mb * 1024 * 1024,
            token_ttl_secs: i64::from(self.token_ttl_days) * 86_400,
            contact_token_ttl_secs: i64::from(self.contact_token_ttl_days) * 86_400,
            trusted_proxies,
            login_max_failures: self.login_max_failures,
            login_lockout_secs: u64::from(self.login_lockout_minutes) * 60,
            contacts_per_minute: self.contacts_per_minute,
            contact_messages_per_minute: self.contact_messages_per_minute,
            connections_per_address: self.connections_per_address,
            searches_per_minute: self.searches_per_minute,
            streams_per_user: self.streams_per_user,
            body_timeout_secs: self.body_timeout_secs,
            workers,
            sse_keepalive_secs: self.sse_keepalive_secs,
            event_buffer: self.event_buffer,
            max_upload_bytes: (self.max_upload_mb * 1024 * 1024) as usize,
            min_free_bytes: mib("--min-free-mb", self.min_free_mb)?,
            upload_bytes_per_hour_contact: mib(
                "--upload-mb-per-hour-contact",
                self.upload_mb_per_hour_contact,
            )?,
            upload_bytes_per_hour_address: mib(
                "--upload-mb-per-hour-address",
                self.upload_mb_per_hour_address,
            )?,
            webhooks_allow_private: self.webhooks_allow_private,
            notify_after_secs: i64::from(self.notify_after_minutes) * 60,
            away_after_secs: i64::from(self.away_after_minutes) * 60,
            smtp: match self.smtp_host.filter(|h| !h.trim().is_empty()) {
                None => None,
                Some(host) => {
                    if !self.smtp_from.contains('@') {
                        return Err(
                            "NATTER_SMTP_HOST needs NATTER_SMTP_FROM, an email address".into()
                        );
                    }
                    Some(crate::channels::email::EmailSettings {
                        imap_host: String::new(),
                        imap_port: 993,
                        imap_tls: true,
                        smtp_host: host.trim().to_owned(),
                        smtp_port: self.smtp_port,
                        smtp_tls: self.smtp_tls,
                        username: self.smtp_username,
                        password: self.smtp_password.expose().to_owned(),
                        from_address: self.smtp_from.trim().to_owned(),
                        allow_private: true,
                    })
                }
            },
            clock: crate::service::notify::Clock::default(),
        })
    }
}

impl ServeConfig {
    /// Defaults for a data folder, as `natter serve --data <path>` would
    /// have them, except that it listens on a free port of 127.0.0.1 and
    /// runs two workers (tests and benchmarks start from here). The
    /// defaults are the flags' own (read through clap with the environment
    /// ignored), so each is declared once, in [`ServeArgs`].
    pub fn for_data(data: PathBuf) -> Self {
        match Self::from_flags_only(data, &["--bind", "127.0.0.1:0", "--workers", "2"]) {
            Ok(c) => c,
            // The defaults are valid by construction; see the tests.
            Err(e) => unreachable!("default settings invalid: {e}"),
        }
    }

    /// `natter serve --data <data> <extra>` with no environment variable
    /// consulted.
    fn from_flags_only(data: PathBuf, extra: &[&str]) -> Result<Self, String> {
        use clap::{CommandFactory, FromArgMatches};
        let command = Cli::command()
            .find_subcommand("serve")
            .cloned()
            .ok_or("no serve command")?
            .mut_args(|a| a.env(None));
        let mut argv: Vec<std::ffi::OsString> = vec!["serve".into(), "--data".into(), data.into()];
        argv.extend(extra.iter().map(Into::into));
        let matches = command
            .try_get_matches_from(argv)
            .map_err(|e| e.to_string())?;
        ServeArgs::from_arg_matches(&matches)
            .map_err(|e| e.to_string())?
            .validate()
    }

    /// Whether the base URL names this machine only (a loopback address,
    /// `localhost` or an unspecified address): links and webhook URLs
    /// made from it reach nobody else, so the settings pages warn.
    pub fn base_url_is_local(&self) -> bool {
        let Ok(u) = url::Url::parse(&self.base_url) else {
            return false;
        };
        match u.host() {
            Some(url::Host::Domain(d)) => {
                d.eq_ignore_ascii_case("localhost")
                    || d.to_ascii_lowercase().ends_with(".localhost")
            }
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<ServeConfig, String> {
        let mut argv = vec!["natter", "serve"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match cli.command {
            Command::Serve(a) => a.validate(),
            _ => Err("wrong command".into()),
        }
    }

    #[test]
    fn a_loopback_base_url_is_local() {
        for (url, local) in [
            ("http://127.0.0.1:9999", true),
            ("http://localhost:3000", true),
            ("http://[::1]:80", true),
            ("http://0.0.0.0:3000", true),
            ("https://chat.example.com", false),
            ("http://192.168.1.5:3000", false),
        ] {
            let c = args(&["--base-url", url]).expect(url);
            assert_eq!(c.base_url_is_local(), local, "{url}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        let c = ServeConfig::for_data("x".into());
        assert_eq!(c.bind.ip().to_string(), "127.0.0.1");
    }

    #[test]
    fn base_url_defaults_to_the_bind_address() {
        let c = args(&["--bind", "127.0.0.1:9999"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.base_url, "http://127.0.0.1:9999");
        let c =
            args(&["--base-url", "https://chat.example.com/"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.base_url, "https://chat.example.com");
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        assert!(args(&["--bind", "nonsense"]).is_err());
        assert!(args(&["--base-url", "ftp://x"]).is_err());
        assert!(args(&["--cache-mb", "0"]).is_err());
        assert!(args(&["--trusted-proxies", "10.0.0.1,not-an-ip"]).is_err());
        // Refused, not clamped.
        for bad in [
            ["--streams-per-user", "0"],
            ["--event-buffer", "0"],
            ["--event-buffer", "2000000"],
            ["--max-upload-mb", "0"],
            ["--max-upload-mb", "5000"],
            ["--body-timeout-secs", "0"],
            // A guessable metrics token, or metrics on the main address.
            ["--metrics-token", "short"],
            ["--metrics-bind", "nonsense"],
        ] {
            assert!(args(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metrics_are_off_unless_a_token_or_an_address_is_set() {
        let c = ServeConfig::for_data("x".into());
        assert!(c.metrics_token.is_none() && c.metrics_bind.is_none());
        assert!(args(&[
            "--bind",
            "127.0.0.1:9000",
            "--metrics-bind",
            "127.0.0.1:9000"
        ])
        .is_err());
        let c = args(&["--metrics-bind", "127.0.0.1:9464"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.metrics_bind.map(|a| a.port()), Some(9464));
    }

    #[test]
    fn defaults_are_the_same_through_flags_and_for_data() {
        let through_flags = args(&["--data", "x", "--bind", "127.0.0.1:0", "--workers", "2"])
            .unwrap_or_else(|e| panic!("{e}"));
        let for_data = ServeConfig::for_data("x".into());
        assert_eq!(format!("{through_flags:?}"), format!("{for_data:?}"));
        assert_eq!(for_data.notify_after_secs, 300);
        assert_eq!(for_data.connections_per_address, 256);
    }

    #[test]
    fn values_that_would_overflow_are_refused_not_clamped() {
        for bad in [
            ["--min-free-mb", "18446744073709551615"],
            ["--upload-mb-per-hour-contact", "18446744073709551615"],
            ["--upload-mb-per-hour-address", "18446744073709551615"],
            ["--token-ttl-days", "4000000000"],
            ["--contact-token-ttl-days", "36501"],
            ["--login-max-failures", "0"],
            ["--login-max-failures", "4000000000"],
            ["--sse-keepalive-secs", "16"],
            ["--workers", "0"],
        ] {
            assert!(args(&bad).is_err(), "{bad:?}");
        }
        assert!(args(&["--token-ttl-days", "36500"]).is_ok());
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let c = args(&[
            "--admin-email",
            "a@example.com",
            "--admin-password",
            "hunter2-admin",
            "--smtp-host",
            "mail.example.com",
            "--smtp-from",
            "support@example.com",
            "--smtp-password",
            "hunter2-smtp",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
