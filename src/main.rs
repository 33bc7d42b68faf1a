//! The `natter` command line: `serve` and `admin create`.
//!
//! Exit codes: 0 success; 1 the server or command failed (port in use,
//! data folder locked or unreadable, I/O error); 2 bad usage or settings.

use std::io::BufRead;
use std::process::ExitCode;

use natter::config::file::CliError;
use natter::config::{
    AdminCommand, AdminCreateArgs, BackupArgs, Cli, Command, ConfigCommand, DoctorArgs, ExportArgs,
    HealthcheckArgs, ImportArgs, ReindexArgs, RestoreArgs, ServeArgs,
};
use natter::domain::{time, Email, Name, Password, Role};
use natter::service::auth::hash_password;
use natter::startup::{Application, StartError};
use natter::store::{Store, StoreError, StoreOptions};

/// jemalloc instead of glibc's malloc: under load glibc keeps freed memory
/// in its arenas (RSS grew to 1.5 GB after a million messages, and each
/// password hash left its 19 MiB block behind), jemalloc gives it back.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read once when it starts (`_RJEM_MALLOC_CONF` in
/// the environment is applied after them, so each can still be changed
/// without a rebuild). `narenas:1`: one arena instead of four per core.
/// Each of natter's threads (actix workers, tokio, sled's and tantivy's)
/// kept half-used slabs and dirty pages in an arena of its own; with one
/// they share them and the thread caches keep most allocations off its
/// lock. In the quick load suite (BENCHMARKS.md, "jemalloc's arenas") the
/// RSS after 69,600 messages fell from 141 to 113 MB and before the
/// streams from 123 to 94 MB. A background purging thread with a 1 s decay
/// took it to 93 MB but cost about a quarter of the ingest rate, so it is
/// not on.
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 10] = b"narenas:1\0";

fn main() -> ExitCode {
    let parsed =
        match natter::config::file::parse(std::env::args_os(), std::env::var_os("NATTER_CONFIG")) {
            Ok(p) => p,
            Err(CliError::Clap(e)) => e.exit(),
            Err(CliError::File(msg)) => {
                eprintln!("error: {msg}");
                return ExitCode::from(2);
            }
        };
    if let Some(text) = parsed.show() {
        print!("{text}");
        if let Command::Config(ConfigCommand::Show(args)) = parsed.cli.command {
            if let Err(e) = args.validate() {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
        return ExitCode::SUCCESS;
    }
    let cli = parsed.cli;
    init_tracing();
    match try_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(code)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, never in files or pipes.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
}

type Failure = (u8, String);

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| (1, format!("cannot start the runtime: {e}")))
}

fn try_main(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Admin(AdminCommand::Create(args)) => admin_create(args),
        Command::Reindex(args) => reindex(args),
        Command::Healthcheck(args) => healthcheck(args),
        Command::Backup(args) => backup(args),
        Command::Restore(args) => restore(args),
        Command::Doctor(args) => doctor(args),
        Command::Export(args) => export(args),
        Command::Import(args) => import(args),
        // Answered in main, before logging starts.
        Command::Config(ConfigCommand::Show(_)) => Ok(()),
    }
}

/// A command on a folder that a running server holds: one line, exit 1.
fn in_use(data: &std::path::Path, hint: &str) -> Failure {
    (
        1,
        format!(
            "the data folder {} is in use by a running natter server; stop it first{hint}",
            data.display()
        ),
    )
}

/// `--out` must name an archive file, not a folder.
fn archive_file(out: &std::path::Path) -> Result<(), Failure> {
    if out.is_dir() {
        return Err((
            2,
            format!("--out {} is a folder; name the archive file", out.display()),
        ));
    }
    Ok(())
}

fn open_stopped(data: &std::path::Path) -> Result<std::sync::Arc<Store>, Failure> {
    Store::open(&StoreOptions {
        path: data.to_path_buf(),
        cache_bytes: 64 << 20,
        fsync: false,
        event_buffer: 16,
        min_free_bytes: 0,
        backup_before_migration: true,
    })
    .map_err(|e| match e {
        StoreError::Locked(p) => in_use(&p, ""),
        e @ StoreError::TooNew { .. } => (2, e.to_string()),
        e => (1, e.to_string()),
    })
}

/// Writes a backup: of a stopped folder directly, of a running server's
/// through its control socket.
fn backup(args: BackupArgs) -> Result<(), Failure> {
    use natter::store::backup::{self, BackupError};
    archive_file(&args.out)?;
    let started = std::time::Instant::now();
    let mut progress = natter::progress::Progress::new("records");
    let manifest =
        match backup::backup_stopped(&args.data, &args.out, &mut |d, t| progress.set(d, t)) {
            Ok(m) => m,
            Err(BackupError::Store(StoreError::Locked(_))) => {
                natter::control::backup_via_server(&args.data, &args.out, &mut |d, t| {
                    progress.set(d, t)
                })
                .map_err(|e| (1, e))?
            }
            Err(e) => return Err((1, e.to_string())),
        };
    let records: u64 = manifest.entries.iter().filter_map(|e| e.records).sum();
    progress.finish(records);
    let bytes = std::fs::metadata(&args.out).map_or(0, |m| m.len());
    println!(
        "backup written to {} ({} bytes, {} conversations, {} messages, {} attachments) in {:.1}s",
        args.out.display(),
        bytes,
        manifest.counts.conversations,
        manifest.counts.messages,
        manifest.counts.attachments,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Restores a backup into a stopped data folder, every checksum checked
/// first.
fn restore(args: RestoreArgs) -> Result<(), Failure> {
    use natter::store::backup::{self, BackupError};
    let started = std::time::Instant::now();
    let mut progress = natter::progress::Progress::new("bytes");
    let manifest = backup::restore(&args.archive, &args.data, args.force, &mut |d, t| {
        progress.set(d, t)
    })
    .map_err(|e| match e {
        e @ BackupError::NotEmpty(_) => (2, format!("{e}, or replace it with --force")),
        e @ (BackupError::TooNew { .. } | BackupError::Store(StoreError::TooNew { .. })) => {
            (2, e.to_string())
        }
        BackupError::Store(StoreError::Locked(p)) => in_use(&p, ""),
        e => (1, e.to_string()),
    })?;
    progress.finish(std::fs::metadata(&args.archive).map_or(0, |m| m.len()));
    println!(
        "restored {} conversations, {} messages and {} attachments into {} in {:.1}s (backup of {}; the search index is rebuilt at the first start)",
        manifest.counts.conversations,
        manifest.counts.messages,
        manifest.counts.attachments,
        args.data.display(),
        started.elapsed().as_secs_f64(),
        manifest.created_at
    );
    Ok(())
}

/// Exports a stopped folder as JSON lines and attachments.
fn export(args: ExportArgs) -> Result<(), Failure> {
    use natter::store::backup::BackupError;
    archive_file(&args.out)?;
    let started = std::time::Instant::now();
    let mut progress = natter::progress::Progress::new("records");
    let m = natter::store::export::export_stopped(&args.data, &args.out, &mut |d, t| {
        progress.set(d, t)
    })
    .map_err(|e| match e {
        BackupError::Store(StoreError::Locked(p)) => {
            in_use(&p, " (or use natter backup, which works while it runs)")
        }
        e => (1, e.to_string()),
    })?;
    let lines: u64 = m.entries.iter().filter_map(|e| e.records).sum();
    progress.finish(lines);
    println!(
        "exported {lines} records ({} conversations, {} messages) and {} attachments to {} in {:.1}s",
        m.counts.conversations,
        m.counts.messages,
        m.counts.attachments,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Imports an export into a new data folder.
fn import(args: ImportArgs) -> Result<(), Failure> {
    use natter::store::backup::BackupError;
    let started = std::time::Instant::now();
    let mut progress = natter::progress::Progress::new("bytes");
    let m =
        natter::store::export::import(&args.archive, &args.data, &mut |d, t| progress.set(d, t))
            .map_err(|e| match e {
                e @ (BackupError::TooNew { .. } | BackupError::NotEmpty(_)) => (2, e.to_string()),
                e => (1, e.to_string()),
            })?;
    progress.finish(std::fs::metadata(&args.archive).map_or(0, |m| m.len()));
    println!(
        "imported {} conversations, {} messages and {} attachments into {} in {:.1}s (the search index is built at the first start)",
        m.counts.conversations,
        m.counts.messages,
        m.counts.attachments,
        args.data.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What doctor finds in the search index: `None` when it covers the log.
fn index_finding(data: &std::path::Path, last: u64) -> Option<String> {
    match natter::service::index::SearchIndex::open(&data.join("index")) {
        Err(e) => Some(format!("the search index cannot be opened: {e}")),
        Ok(ix) if ix.indexed_upto() < last => Some(format!(
            "the search index covers the event log up to event {} of {last} (it catches up at the next start)",
            ix.indexed_upto()
        )),
        Ok(ix) if ix.indexed_upto() > last => Some(format!(
            "the search index is ahead of the event log (event {} of {last}): it belongs to other data",
            ix.indexed_upto()
        )),
        Ok(_) => None,
    }
}

/// Checks a stopped data folder; `--repair` rebuilds what is derived.
fn doctor(args: DoctorArgs) -> Result<(), Failure> {
    // Doctor looks; it does not upgrade. An older folder is migrated by
    // the first start of this natter (after a backup of it).
    if args.data.join("db").exists() {
        match natter::store::backup::peek_schema(&args.data) {
            Ok(found) if found > 0 && found < natter::store::SCHEMA_VERSION => {
                return Err((
                    1,
                    format!(
                        "the data folder holds schema {found}, older than this natter's {}: start natter serve on it once to migrate it (it writes a backup first), then run doctor",
                        natter::store::SCHEMA_VERSION
                    ),
                ))
            }
            Err(natter::store::backup::BackupError::Store(StoreError::Locked(_))) => {}
            Err(e) => return Err((1, e.to_string())),
            Ok(_) => {}
        }
    }
    let store = open_stopped(&args.data)?;
    let fail = |e: StoreError| (1, e.to_string());
    let report = store.doctor().map_err(fail)?;
    let last = store.last_event_id().map_err(fail)?;
    let mut findings: Vec<(String, bool)> = report
        .findings
        .iter()
        .map(|f| (f.what.clone(), f.repairable))
        .collect();
    if let Some(f) = index_finding(&args.data, last) {
        findings.push((f, true));
    }
    println!(
        "checked {} conversations, {} messages, {} attachments and {} events in {}",
        report.conversations,
        report.messages,
        report.attachments,
        last,
        args.data.display()
    );
    for (what, repairable) in &findings {
        let how = if *repairable {
            if args.repair {
                ""
            } else {
                " (--repair rebuilds it)"
            }
        } else {
            " (not repairable: restore it from a backup)"
        };
        println!("problem: {what}{how}");
    }
    if !args.repair || findings.iter().all(|(_, r)| !r) {
        return match findings.len() {
            0 => {
                println!("healthy");
                Ok(())
            }
            n => Err((
                1,
                format!("{n} problem{} found", if n == 1 { "" } else { "s" }),
            )),
        };
    }
    for tree in store.repair_derived().map_err(fail)? {
        println!("repaired: rebuilt {tree} from the records");
    }
    if index_finding(&args.data, last).is_some() {
        let dir = args.data.join("index");
        let _ = std::fs::remove_dir_all(&dir);
        let index =
            natter::service::index::SearchIndex::open(&dir).map_err(|e| (1, e.to_string()))?;
        let mut progress = natter::progress::Progress::new("messages");
        index
            .rebuild(&store, |done, total| progress.set(done, total))
            .map_err(|e| (1, e.to_string()))?;
        progress.finish(store.message_count());
        println!("repaired: rebuilt the search index from the messages");
    }
    let after = store.doctor().map_err(fail)?;
    let mut left: Vec<String> = after.findings.into_iter().map(|f| f.what).collect();
    left.extend(index_finding(&args.data, last));
    for what in &left {
        println!("still a problem: {what}");
    }
    match left.len() {
        0 => {
            println!("healthy");
            Ok(())
        }
        n => Err((
            1,
            format!(
                "{n} problem{} left after the repair",
                if n == 1 { "" } else { "s" }
            ),
        )),
    }
}

/// Rebuilds the search index from the stored messages, with progress.
fn reindex(args: ReindexArgs) -> Result<(), Failure> {
    let store = open_stopped(&args.data)?;
    let dir = args.data.join("index");
    let _ = std::fs::remove_dir_all(&dir);
    let index = natter::service::index::SearchIndex::open(&dir).map_err(|e| (1, e.to_string()))?;
    let started = std::time::Instant::now();
    let mut progress = natter::progress::Progress::new("messages");
    index
        .rebuild(&store, |done, total| progress.set(done, total))
        .map_err(|e| (1, e.to_string()))?;
    progress.finish(store.message_count());
    println!(
        "reindexed {} messages in {:.1}s",
        store.message_count(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    let config = args.validate().map_err(|e| (2, e))?;
    runtime()?.block_on(async move {
        let app = Application::build(config).await.map_err(|e| match e {
            StartError::Settings(m) => (2, m),
            // Not a failure of this machine: the wrong natter for the data.
            StartError::Store(e @ StoreError::TooNew { .. }) => (2, e.to_string()),
            e => (1, e.to_string()),
        })?;
        app.run_until_stopped()
            .await
            .map_err(|e| (1, e.to_string()))
    })
}

/// `natter healthcheck`: one plain HTTP/1.1 GET (the container has no
/// curl), exit 0 on a 200 and 1 on anything else, with the reason.
fn healthcheck(args: HealthcheckArgs) -> Result<(), Failure> {
    let url = match args.url {
        Some(u) => u,
        None => {
            // An unspecified address listens everywhere: ask on loopback.
            let bind = match args.bind.parse::<std::net::SocketAddr>() {
                Ok(a) if a.ip().is_unspecified() && a.is_ipv4() => {
                    std::net::SocketAddr::from(([127, 0, 0, 1], a.port())).to_string()
                }
                Ok(a) if a.ip().is_unspecified() => {
                    std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
                        .to_string()
                }
                _ => args.bind.clone(),
            };
            // The server's own settings say whether it speaks HTTPS.
            let https = args.tls_cert.is_some()
                || args
                    .acme_domain
                    .as_deref()
                    .is_some_and(|d| !d.trim().is_empty());
            let scheme = if https { "https" } else { "http" };
            format!("{scheme}://{bind}/healthz")
        }
    };
    let timeout = std::time::Duration::from_secs(args.timeout_secs.max(1));
    let line = natter::healthcheck::check(&url, timeout)?;
    println!("{line}");
    Ok(())
}

fn admin_create(args: AdminCreateArgs) -> Result<(), Failure> {
    let email = Email::parse(&args.email)
        .map_err(|e| (2, e.message))?
        .into_inner();
    let name = Name::parse(&args.name, "name")
        .map_err(|e| (2, e.message))?
        .into_inner();
    let role = Role::parse(&args.role).map_err(|e| (2, e.message))?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        (
            1,
            format!("cannot read the password from standard input: {e}"),
        )
    })?;
    let password = Password::parse(line.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|e| (2, e.message))?;
    let store = open_stopped(&args.data)?;
    let hash = hash_password(password.expose()).map_err(|e| (1, e))?;
    runtime()?.block_on(async move {
        let flusher = tokio::spawn(store.durability().clone().run_flusher());
        let res = store
            .create_agent(name, email.clone(), role, hash, time::now())
            .await;
        store.durability().stop().await;
        let _ = flusher.await;
        store.flush_now().map_err(|e| (1, e.to_string()))?;
        match res {
            Ok(a) => {
                println!("created {} {} ({})", role.as_str(), email, a.id);
                Ok(())
            }
            Err(StoreError::Conflict(m)) => Err((1, m)),
            Err(e) => Err((1, e.to_string())),
        }
    })
}
