//! Builds the application: opens the store, does the first-run work, binds
//! the listener (so a caller can ask for port 0 and read the real port) and
//! runs the server until a signal or a stop request.

use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use tokio::sync::watch;

use crate::config::ServeConfig;
use crate::domain::{time, Email, Password, Role};
use crate::error::ApiError;
use crate::service::auth::{hash_password, new_token};
use crate::service::inboxes::new_web_inbox;
use crate::service::ratelimit::Limits;
use crate::service::realtime::TypingHub;
use crate::service::setup::SETUP_TOKEN_KEY;
use crate::store::{Store, StoreError, StoreOptions};
use crate::web::{self as webmod, AppState};

/// How long an idle keep-alive connection stays open.
///
/// actix's default is 5 s, and actix checks a connection's timers before
/// it reads a request that has arrived: on a busy worker (10,000 streams
/// being set up on a loaded machine) a request that had waited since
/// just before the deadline was dropped unread, and a client reusing a
/// connection just as it expired saw it closed or reset. That is how
/// `durability::ten_thousand_idle_streams_do_not_stop_the_api` once
/// failed: its first `/metrics` poll reused the sign-in's connection
/// about 5 s later. 75 s is longer than any such delay, and longer than
/// reverse proxies keep idle upstream connections (nginx: 60 s), so the
/// client side is the one that gives an idle connection up; clients of
/// our own (the tests) keep theirs for half of it.
pub const KEEP_ALIVE: Duration = Duration::from_secs(75);

/// Why the server could not start; each is one clear line for the user.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The settings do not make sense.
    #[error("{0}")]
    Settings(String),
    /// The data folder is locked, unreadable or corrupt.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS's reason.
        reason: String,
    },
}

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    /// The metrics address's server and its bound port, when one is set.
    metrics: Option<(actix_web::dev::Server, u16)>,
    /// The `--redirect-bind` server and its bound port.
    redirect: Option<(actix_web::dev::Server, u16)>,
    server: actix_web::dev::Server,
    store: Arc<Store>,
    shutdown: watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
    mailboxes: Arc<crate::service::mailbox::Mailboxes>,
    signals: Signals,
}

impl Application {
    /// Opens the store, starts its flusher, creates the first-run inbox and
    /// admin (or logs the setup link) and binds the listener. Must run on a
    /// Tokio runtime, which then hosts the flusher.
    pub async fn build(mut config: ServeConfig) -> Result<Self, StartError> {
        let signals = Signals::listen();
        let listener = std::net::TcpListener::bind(config.bind).map_err(|e| StartError::Bind {
            addr: config.bind.to_string(),
            reason: e.to_string(),
        })?;
        let addr = listener.local_addr().map_err(|e| StartError::Bind {
            addr: config.bind.to_string(),
            reason: e.to_string(),
        })?;
        if !config.base_url_explicit {
            config.base_url = match &config.acme {
                // The certificate's name, on the port bound.
                Some(a) if addr.port() == 443 => format!("https://{}", a.domain),
                Some(a) => format!("https://{}:{}", a.domain, addr.port()),
                None if config.tls.is_some() => format!("https://{addr}"),
                None => format!("http://{addr}"),
            };
        }
        let mut acme_task = None;
        let tls = match (&config.tls, &config.acme) {
            (Some((cert, key)), _) => {
                Some(webmod::tls::server_config(cert, key).map_err(StartError::Settings)?)
            }
            (None, Some(a)) => {
                let (tls, run) =
                    webmod::tls::acme(a, &config.data).map_err(StartError::Settings)?;
                acme_task = Some(run);
                Some(tls)
            }
            (None, None) => None,
        };
        let redirect = match config.redirect_bind {
            Some(b) => {
                let bind_err = |e: std::io::Error| StartError::Bind {
                    addr: b.to_string(),
                    reason: e.to_string(),
                };
                let l = std::net::TcpListener::bind(b).map_err(bind_err)?;
                let port = l.local_addr().map_err(bind_err)?.port();
                let server =
                    webmod::tls::redirect_server(l, config.base_url.clone()).map_err(bind_err)?;
                tracing::info!("redirecting http://{b} to {}", config.base_url);
                Some((server, port))
            }
            None => None,
        };
        let metrics = match config.metrics_bind {
            Some(m) => Some(metrics_server(m)?),
            None => None,
        };
        let store = Store::open(&StoreOptions {
            path: config.data.clone(),
            cache_bytes: config.cache_bytes,
            fsync: config.fsync,
            event_buffer: config.event_buffer,
            min_free_bytes: config.min_free_bytes,
            backup_before_migration: true,
        })?;
        let flusher = tokio::spawn(store.durability().clone().run_flusher());
        bootstrap(&store, &config).await?;
        let index = Arc::new(
            crate::service::index::SearchIndex::open(&config.data.join("index"))
                .map_err(|e| StartError::Store(e.into()))?,
        );

        let (shutdown, shutdown_rx) = watch::channel(false);
        let limits = Arc::new(Limits::from_config(&config));
        let http = crate::channels::http::Http::new(config.webhooks_allow_private)
            .map_err(|e| StartError::Settings(format!("cannot set up the HTTP client: {e}")))?;
        let fanout = Arc::new(crate::service::fanout::Fanout::new(
            store.clone(),
            config.event_buffer,
        ));
        let router = crate::service::routing::Router::new(
            store.clone(),
            fanout.clone(),
            config.away_after_secs,
        );
        let mailboxes = crate::service::mailbox::Mailboxes::new(
            store.clone(),
            router.clone(),
            config.clock.clone(),
            shutdown_rx.clone(),
            config.webhooks_allow_private,
        );
        let vapid_bytes = store
            .vapid_private_key(|| crate::service::webpush::VapidKeys::generate().private_bytes())
            .await?;
        let vapid = Arc::new(
            crate::service::webpush::VapidKeys::from_private_bytes(&vapid_bytes).map_err(|e| {
                StartError::Settings(format!("the stored VAPID key is unusable: {e}"))
            })?,
        );
        let shared_config = Arc::new(config.clone());
        let typing = Arc::new(TypingHub::default());
        let svc = Arc::new(crate::service::Services::new(crate::service::Parts {
            store: store.clone(),
            config: shared_config.clone(),
            limits: limits.clone(),
            index: index.clone(),
            typing: typing.clone(),
            fanout,
            http: http.clone(),
            vapid: vapid.clone(),
            mailboxes: mailboxes.clone(),
            router: router.clone(),
        }));
        let fanout = tokio::spawn(svc.run_fanout(shutdown_rx.clone()));
        let state = web::Data::new(AppState {
            svc,
            keepalive_secs: config.sse_keepalive_secs,
            config: shared_config,
            shutdown: shutdown_rx.clone(),
            streams: Default::default(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|e, _| ApiError::Malformed(e.to_string()).into()),
                )
                .app_data(
                    web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()),
                )
                .app_data(
                    web::FormConfig::default()
                        .limit(64 * 1024)
                        .error_handler(|e, _| ApiError::Malformed(e.to_string()).into()),
                )
                .wrap(from_fn(webmod::middleware::headers_and_metrics))
                .configure(webmod::routes)
        })
        .on_connect(webmod::connections::on_connect(
            Arc::new(webmod::connections::ConnectionTable::default()),
            config.connections_per_address,
            config.trusted_proxies.clone(),
        ))
        .workers(config.workers)
        .keep_alive(KEEP_ALIVE)
        .disable_signals()
        .shutdown_timeout(5);
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls),
            None => server.listen(listener),
        }
        .map_err(|e| StartError::Bind {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?
        .run();

        // Order matters: the flusher first, the indexer second (both are
        // awaited at stop), then the rest (aborted).
        let mut background = vec![flusher];
        background.push(tokio::spawn(crate::service::index::run_indexer(
            index,
            store.clone(),
            shutdown_rx.clone(),
        )));
        background.push(fanout);
        background.push(tokio::spawn(
            Arc::new(crate::service::outbox::Outbox {
                store: store.clone(),
                http: http.clone(),
                base_url: config.base_url.clone(),
            })
            .run(shutdown_rx.clone()),
        ));
        background.push(tokio::spawn(
            Arc::new(crate::service::push::Pusher {
                store: store.clone(),
                http: http.clone(),
                keys: vapid,
                subject: crate::service::push::subject_for(&config.base_url),
            })
            .run(shutdown_rx.clone()),
        ));
        background.push(tokio::spawn(
            Arc::new(crate::service::notify::Notifier {
                store: store.clone(),
                base_url: config.base_url.clone(),
                smtp: config.smtp.clone(),
                clock: config.clock.clone(),
                http: http.clone(),
            })
            .run(shutdown_rx.clone()),
        ));

        background.push(tokio::spawn(crate::service::files::run_sweeper(
            store.clone(),
            config.clock.clone(),
            shutdown_rx.clone(),
        )));
        let s = store.clone();
        background.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                match s.wake_snoozed(time::now()).await {
                    Ok(woken) => {
                        if !woken.is_empty() {
                            router.route().await;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "could not reopen snoozed conversations"),
                }
                limits.prune();
            }
        }));
        if let Some(run) = acme_task {
            background.push(tokio::spawn(run));
        }
        background.push(tokio::spawn(crate::control::serve(
            store.clone(),
            shutdown_rx.clone(),
        )));
        if let Some(every) = config.backup_every {
            background.push(tokio::spawn(crate::service::backups::run_scheduler(
                store.clone(),
                config.backup_dir.clone(),
                every,
                config.backup_keep,
                config.clock.clone(),
                shutdown_rx.clone(),
            )));
        }
        mailboxes.start_all();
        tracing::info!(
            "listening on {}://{addr}",
            if config.tls.is_some() || config.acme.is_some() {
                "https"
            } else {
                "http"
            }
        );
        Ok(Self {
            port: addr.port(),
            metrics,
            redirect,
            server,
            store,
            shutdown,
            background,
            mailboxes,
            signals,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics address's bound port, when `metrics_bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, p)| *p)
    }

    /// The `--redirect-bind` address's bound port, when one is set.
    pub fn redirect_port(&self) -> Option<u16> {
        self.redirect.as_ref().map(|(_, p)| *p)
    }

    /// A handle that stops the server as SIGTERM would.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.shutdown.clone())
    }

    /// Serves until SIGINT, SIGTERM or [`Stopper::stop`]; then ends the
    /// event streams, finishes requests in flight, flushes the database and
    /// returns.
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let mut signals = std::mem::replace(&mut self.signals, Signals::none());
        let handle = self.server.handle();
        let metrics = self.metrics.map(|(m, _)| {
            let h = m.handle();
            (tokio::spawn(m), h)
        });
        let redirect = self.redirect.map(|(m, _)| {
            let h = m.handle();
            (tokio::spawn(m), h)
        });
        let mut server = tokio::spawn(self.server);
        let mut stop_rx = self.shutdown.subscribe();
        // Under systemd (Type=notify): ready now that the listener is bound
        // and the store open; the watchdog hears from the runtime itself,
        // so a wedged runtime is restarted.
        crate::systemd::notify(&format!("READY=1\nSTATUS=listening on port {}", self.port));
        let watchdog = crate::systemd::watchdog_interval().map(|every| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    crate::systemd::notify("WATCHDOG=1");
                }
            })
        });
        tokio::select! {
            r = &mut server => {
                crate::systemd::notify("STOPPING=1");
                if let Some(w) = &watchdog {
                    w.abort();
                }
                self.store.durability().stop().await;
                self.store.flush_now().map_err(std::io::Error::other)?;
                r.map_err(std::io::Error::other)??;
                return close(self.store);
            }
            _ = signals.recv() => tracing::info!("signal received, stopping"),
            _ = async { let _ = stop_rx.wait_for(|v| *v).await; } => tracing::info!("stop requested"),
        }
        crate::systemd::notify("STOPPING=1");
        if let Some(w) = watchdog {
            w.abort();
        }
        let _ = self.shutdown.send(true);
        handle.stop(true).await;
        let _ = server.await;
        for (m, h) in metrics.into_iter().chain(redirect) {
            h.stop(true).await;
            let _ = m.await;
        }
        let mut background = self.background.into_iter();
        let flusher = background.next();
        // The indexer saw the stop signal and commits what it has.
        if let Some(indexer) = background.next() {
            let _ = tokio::time::timeout(Duration::from_secs(5), indexer).await;
        }
        for b in background {
            b.abort();
            let _ = b.await;
        }
        self.mailboxes.stop_all().await;
        // It holds the store: let go of it, or the wait below never ends.
        drop(self.mailboxes);
        self.store.durability().stop().await;
        if let Some(f) = flusher {
            let _ = f.await;
        }
        // Worker threads drop their copies of the state a moment after the
        // server reports it has stopped; wait (bounded) so that the data
        // folder's lock is free when this returns.
        for _ in 0..200 {
            if Arc::strong_count(&self.store) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        close(self.store)
    }
}

/// Closes the store at the end of a stop: flushed and, when this holds
/// its last handle, checkpointed so that the next start is quick
/// ([`Store::close`]).
fn close(store: Arc<Store>) -> std::io::Result<()> {
    match Arc::try_unwrap(store) {
        Ok(store) => match store.close().map_err(std::io::Error::other)? {
            Some(took) => tracing::info!(
                checkpoint_ms = took.as_millis() as u64,
                "stopped; database flushed and checkpointed"
            ),
            None => tracing::info!("stopped; database flushed (still shared, not checkpointed)"),
        },
        Err(store) => {
            store.flush_now().map_err(std::io::Error::other)?;
            tracing::info!("stopped; database flushed (still shared, not checkpointed)");
        }
    }
    Ok(())
}

/// The server of `NATTER_METRICS_BIND`: `/metrics` alone, one worker, no
/// token (reaching the address is the permission), bound now so that a
/// taken port ends the start with one clear line.
fn metrics_server(bind: std::net::SocketAddr) -> Result<(actix_web::dev::Server, u16), StartError> {
    let bind_err = |e: std::io::Error| StartError::Bind {
        addr: bind.to_string(),
        reason: e.to_string(),
    };
    let listener = std::net::TcpListener::bind(bind).map_err(bind_err)?;
    let port = listener.local_addr().map_err(bind_err)?.port();
    let server = HttpServer::new(|| {
        App::new()
            .route("/metrics", web::get().to(webmod::health::metrics_open))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::NotFound)
            }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(bind_err)?
    .run();
    tracing::info!("metrics on http://{bind}/metrics");
    Ok((server, port))
}

/// Stops a running [`Application`] gracefully.
#[derive(Clone)]
pub struct Stopper(watch::Sender<bool>);

impl Stopper {
    /// Asks the server to stop.
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

/// SIGTERM and SIGINT, listened for from the start of [`Application::build`]:
/// a signal that arrives while the store opens, or just after the
/// "listening" line, stops the server cleanly instead of killing it (the
/// default action) before its handler exists.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    fn none() -> Self {
        Self {
            #[cfg(unix)]
            term: None,
            #[cfg(unix)]
            int: None,
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = one(&mut self.term) => {}
                _ = one(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// First-run work: the "Website" inbox, the bootstrap admin from the
/// environment, or else a one-time setup link in the log.
async fn bootstrap(store: &Store, config: &ServeConfig) -> Result<(), StartError> {
    if !store.has_inboxes()? {
        let inbox = store
            .create_inbox(new_web_inbox("Website".into(), None), time::now())
            .await?;
        tracing::info!(inbox = %inbox.id, widget_key = %inbox.widget_key, "created the web inbox \"Website\"");
    }
    if store.has_agents()? {
        return Ok(());
    }
    if let Some((email, password)) = &config.bootstrap_admin {
        let email = Email::parse(email)
            .map_err(|e| StartError::Settings(format!("NATTER_ADMIN_EMAIL: {}", e.message)))?;
        let password = Password::parse(password.expose().to_owned())
            .map_err(|e| StartError::Settings(format!("NATTER_ADMIN_PASSWORD: {}", e.message)))?;
        let hash = hash_password(password.expose()).map_err(StartError::Settings)?;
        let email = email.into_inner();
        store
            .create_agent(
                "Admin".into(),
                email.clone(),
                Role::Admin,
                hash,
                time::now(),
            )
            .await?;
        tracing::info!(%email, "created the admin from NATTER_ADMIN_EMAIL");
        return Ok(());
    }
    let (token, hash) = new_token("");
    store.meta_set(SETUP_TOKEN_KEY, Some(hash.to_vec())).await?;
    tracing::info!(
        "no agent exists yet: open {}/setup?token={} to create the first admin",
        config.base_url,
        token
    );
    Ok(())
}
