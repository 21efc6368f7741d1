//! `mailroomd serve`: assemble the store, the authenticator and TLS, bind
//! the listeners (IMAP, IMAPS, POP3, POP3S, LMTP over TCP and a Unix
//! socket) and the admin socket, repair corrupt mailboxes in the
//! background, serve until SIGTERM/SIGINT, shut down gracefully.
//!
//! Adding a TCP listener is an arm in [`serve_listener`]; everything else
//! (binding, the startup line, port 0, shutdown) is shared.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mailroom_core::archive::{ArchiveJournal, JournaledStorage};
use mailroom_core::delivery::Pipeline;
use mailroom_core::metrics::Metrics;
use mailroom_core::throttle::{LoginFailures, ThrottleConfig};
use mailroom_core::{Authenticator, Quota, Storage};
use mailroom_imap::layer::metrics::MetricsLayer as ImapMetrics;
use mailroom_imap::{ImapConfig, ImapServer, TlsMode};
use mailroom_lmtp::layer::metrics::MetricsLayer as LmtpMetrics;
use mailroom_lmtp::{LmtpConfig, LmtpListener, LmtpServer};
use mailroom_pop3::layer::metrics::MetricsLayer as Pop3Metrics;
use mailroom_pop3::{PlaintextAuth, Pop3Config, Pop3Server};
use mailroom_server::proxy::ProxyProtocol;
use mailroomd::archive::{self, BillingEvents, JournalAddresses};
use mailroomd::auth::UsersAuthenticator;
use mailroomd::billing_outbox::FLUSH_INTERVAL;
use mailroomd::config::{Config, LimitsTable, ListenerKind, UnixSocket};
use mailroomd::control::{AdminSocket, ArchiveSettings};
use mailroomd::replication::{Gate, Mode, Node, Role, Site, SyncStorage};
use mailroomd::store::Store;
use mailroomd::token::JwtValidator;
use mailroomd::users::{self, UserDb};
use mailroomd::{fsutil, metrics, plugins, repair, store, tls};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceBuilder;
use tower::limit::RateLimitLayer;
use tower::timeout::TimeoutLayer;

/// The demo user created on first start without a config file.
pub(crate) const DEMO_USER: &str = "demo@localhost";

/// The protocol servers, built once and shared by their listeners (so
/// `[limits] max_connections` and `max_connections_per_ip` bound each
/// protocol, all its listeners together: the servers' clones share their
/// `mailroom_server` connection limits).
#[derive(Debug, Clone)]
struct Services {
    imap: ImapServer,
    pop3: Pop3Server,
    lmtp: LmtpServer,
    /// `[limits] command_timeout_secs`, when set, also bounds each POP3
    /// and LMTP command (IMAP has its own, with a default).
    command_timeout: Option<Duration>,
    /// `[limits] commands_per_second` for POP3 and LMTP sessions.
    command_rate: Option<u32>,
    /// The registry every protocol's metrics layer records into, if
    /// `[metrics]` is configured.
    metrics: Option<Arc<Metrics>>,
}

impl Services {
    fn new(
        config: &Config,
        storage: Arc<dyn Storage>,
        quota: Arc<dyn Quota>,
        auth: Arc<dyn Authenticator>,
        tls: Arc<rustls::ServerConfig>,
        metrics: Option<Arc<Metrics>>,
        journal: Arc<ArchiveJournal>,
    ) -> Services {
        // Every protocol reaches the store through MailAccess, which picks
        // the journal up from the wrapper (APPEND hook, archive rights);
        // deliveries go through the archive step.
        let raw_storage = storage;
        let storage: Arc<dyn Storage> =
            Arc::new(JournaledStorage::new(raw_storage.clone(), journal.clone()));
        let auth: Arc<dyn Authenticator> = Arc::new(JournalAddresses::new(auth));
        let imap_config = imap_config(config);
        // One failed-login table for IMAP and POP3: a password guesser
        // slowed down on one protocol is slowed down on the other.
        let login_failures = Arc::new(LoginFailures::new(ThrottleConfig {
            base_delay: imap_config.login_failure_delay,
            max_delay: imap_config.login_failure_max_delay,
            ..ThrottleConfig::default()
        }));
        let imap = ImapServer::new(
            storage.clone(),
            Some(quota.clone()),
            auth.clone(),
            imap_config,
        )
        .with_tls(tls.clone())
        .with_login_failures(login_failures.clone());
        // Outermost, so it sees every command and connection as the client does.
        let imap = match &metrics {
            Some(m) => imap.layer(ImapMetrics::new(m.clone())),
            None => imap,
        };
        let pop3_config = pop3_config(config);
        let pop3 = Pop3Server::new(storage.clone(), auth.clone(), pop3_config)
            .with_tls(tls)
            .with_login_failures(login_failures);
        let lmtp_config = lmtp_config(config);
        let delivery = Arc::new(Pipeline::with_archive(raw_storage, quota, journal));
        let lmtp = LmtpServer::new(delivery, auth, lmtp_config);
        Services {
            imap,
            pop3,
            lmtp,
            command_timeout: config.limits.command_timeout_secs.map(Duration::from_secs),
            command_rate: command_rate(&config.limits),
            metrics,
        }
    }
}

/// Runs the server until a signal; returns once every listener has stopped
/// (or the grace period is over).
pub(crate) async fn run(config: Config) -> anyhow::Result<()> {
    // Install the handlers first: a SIGTERM that arrives right after the
    // startup line is printed must shut down gracefully, not kill.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    if config.listeners.is_empty() && config.lmtp_socket.is_none() {
        anyhow::bail!(
            "{}: no listener is configured; add an [imap], [imaps], [pop3], [pop3s] or [lmtp] table",
            config
                .source
                .as_deref()
                .map_or_else(|| "<defaults>".into(), |p| p.display().to_string())
        );
    }
    fsutil::create_dir_private(&config.data_dir, 0o700)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    // One server per data directory, whatever the store: the admin socket
    // and the users file live there.
    let _serve_lock = match fsutil::PidLock::try_acquire(&config.serve_lock)
        .with_context(|| format!("opening the lock file {}", config.serve_lock.display()))?
    {
        Ok(lock) => lock,
        Err(pid) => anyhow::bail!(
            "another mailroomd{} is already serving the data directory {} (lock file {})",
            if pid.is_empty() {
                String::new()
            } else {
                format!(" (pid {pid})")
            },
            config.data_dir.display(),
            config.serve_lock.display()
        ),
    };
    if config.is_demo() {
        demo_user(&config)?;
    }

    let tls = tls::load(&config.tls)?;
    let store = store::open_store_async(&config).await?;
    let admin = AdminSocket::bind(&config.admin_socket).with_context(|| {
        format!(
            "cannot listen on the admin socket {}",
            config.admin_socket.display()
        )
    })?;
    let mut plugins = plugins::load(&config.plugins).await?;
    let billing_outbox = plugins.with_billing_outbox(&config.data_dir);
    let directory = users::Directory::open(&config.auth, Some(&store))
        .await
        .context("[auth]")?;
    let replication = match &config.replication {
        Some(settings) => Some(
            Node::new(
                settings.clone(),
                store.replication(),
                Site::of(&config, directory.clone()),
            )
            .await?,
        ),
        None => None,
    };
    let auth: Arc<dyn Authenticator> = match &plugins.auth {
        Some(auth) => Arc::clone(auth),
        None => {
            let mut auth = UsersAuthenticator::over(directory.clone(), config.auth.cache_ttl)
                .map_err(|e| anyhow::anyhow!("authenticator: {e}"))?;
            if let Some(tokens) = &config.auth.tokens {
                let key = std::fs::read(&tokens.key_file).with_context(|| {
                    format!("cannot read the token key {}", tokens.key_file.display())
                })?;
                let validator = JwtValidator::new(&key, &tokens.audience, tokens.issuer.as_deref())
                    .context("[auth] token_key_file")?;
                auth = auth.with_tokens(validator);
            }
            if auth.user_count().await == 0 {
                tracing::warn!(
                    users = %directory.describe(),
                    "no users yet: add one with `mailroomd user add USER@DOMAIN --password-stdin`"
                );
            }
            Arc::new(auth)
        }
    };
    match &store {
        Store::Crc(crc) => tracing::info!(
            store = "crc",
            path = %crc.root().display(),
            durability = config.store.durability,
            data_dir = %config.data_dir.display(),
            "starting"
        ),
        Store::Postgres(_) => tracing::info!(
            store = "postgres",
            pool_size = config.store.pool_size,
            data_dir = %config.data_dir.display(),
            "starting"
        ),
        _ => {
            tracing::info!(store = %store.kind(), data_dir = %config.data_dir.display(), "starting");
            tracing::warn!("the memory store keeps mail only until the process exits");
        }
    }

    let mut bound = Vec::new();
    for &(kind, addr) in &config.listeners {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("[{kind}] cannot listen on {addr}"))?;
        let local = listener.local_addr().context("reading the bound address")?;
        bound.push((kind, listener, local));
    }
    let lmtp_unix = match &config.lmtp_socket {
        Some(socket) => Some(bind_unix(socket).with_context(|| {
            format!(
                "[lmtp] cannot listen on the socket {}",
                socket.path.display()
            )
        })?),
        None => None,
    };
    let replication_listener = match replication.as_ref().and_then(|n| n.settings().listen) {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("[replication] cannot listen on {addr}"))?;
            let local = listener.local_addr().context("reading the bound address")?;
            Some((listener, local))
        }
        None => None,
    };
    let metrics_endpoint = match config.metrics {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("[metrics] cannot listen on {addr}"))?;
            let local = listener.local_addr().context("reading the bound address")?;
            Some((listener, local))
        }
        None => None,
    };

    print_startup(
        &config,
        &tls,
        &bound,
        lmtp_unix.as_ref(),
        &admin,
        metrics_endpoint.as_ref().map(|(_, local)| *local),
        replication
            .as_ref()
            .map(|n| (n, replication_listener.as_ref().map(|(_, l)| *l))),
    );

    // One registry for every listener, only if `[metrics]` asks for it.
    let registry = metrics_endpoint.as_ref().map(|_| Arc::new(Metrics::new()));
    let journal = ArchiveJournal::new(store.storage());
    let journal = Arc::new(match &plugins.billing {
        Some(sink) => journal.with_events(Arc::new(BillingEvents::new(sink.clone()))),
        None => journal,
    });
    let admin = admin
        .with_archive(ArchiveSettings {
            billing: plugins.billing.clone(),
            price_note: archive::price_note(&config.plugins),
        })
        .with_replication(replication.clone());
    // On a synchronous primary, appends (APPEND, deliveries) wait for the
    // replica; on a replica, logins and recipients are refused until it is
    // promoted.
    let (storage, auth): (Arc<dyn Storage>, Arc<dyn Authenticator>) = match &replication {
        Some(node) => {
            let storage: Arc<dyn Storage> = if node.settings().mode == Mode::Sync {
                Arc::new(SyncStorage::new(store.storage(), node.clone()))
            } else {
                store.storage()
            };
            (storage, Arc::new(Gate::new(auth, node.clone())))
        }
        None => (store.storage(), auth),
    };
    let services = Services::new(
        &config,
        storage,
        store.quota(),
        auth,
        tls.config.clone(),
        registry.clone(),
        journal,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = JoinSet::new();
    background.spawn(admin.serve(store.clone(), directory.clone(), stopped(stop_rx.clone())));
    if let Some(outbox) = billing_outbox {
        let stop = stopped(stop_rx.clone());
        background.spawn(async move {
            outbox.run(FLUSH_INTERVAL, stop).await;
            Ok(())
        });
    }
    if let Some(crc) = store.crc() {
        let (crc, retry, stop) = (
            crc.clone(),
            config.store.reconstruct_interval,
            stopped(stop_rx.clone()),
        );
        // An unpromoted replica leaves damage to the primary's verify.
        let node = replication.clone();
        let hold = move || node.as_ref().is_some_and(|n| n.role() == Role::Replica);
        background.spawn(async move {
            repair::auto_reconstruct(crc, retry, hold, stop).await;
            Ok(())
        });
    }
    let mut listeners = JoinSet::new();
    for (kind, listener, local) in bound {
        let services = services.clone();
        let stop = stopped(stop_rx.clone());
        let proxy = config.proxy_for(kind).cloned();
        listeners.spawn(async move {
            let result = serve_listener(kind, listener, proxy, services, stop).await;
            (kind.to_string(), local.to_string(), result)
        });
    }
    if let Some(node) = &replication {
        let node = node.clone();
        let stop = stopped(stop_rx.clone());
        background.spawn(async move {
            node.run_primary(stop).await;
            Ok(())
        });
    }
    if let (Some((listener, local)), Some(node)) = (replication_listener, &replication) {
        let node = node.clone();
        let stop = stopped(stop_rx.clone());
        let server_tls = tls.config.clone();
        listeners.spawn(async move {
            let result = node
                .serve_replica(listener, Some(server_tls), stop)
                .await
                .map_err(Into::into);
            ("replication".to_owned(), local.to_string(), result)
        });
    }
    if let (Some((listener, local)), Some(registry)) = (metrics_endpoint, registry) {
        let stop = stopped(stop_rx.clone());
        let extra: Option<metrics::ExtraSeries> = replication.clone().map(|node| {
            let render: metrics::ExtraSeries = Arc::new(move || {
                let node = node.clone();
                Box::pin(async move { node.render_prometheus().await })
            });
            render
        });
        listeners.spawn(async move {
            let result = metrics::serve(listener, registry, extra, stop).await;
            (
                "metrics".to_owned(),
                local.to_string(),
                result.map_err(Into::into),
            )
        });
    }
    let mut unix_socket = None;
    if let Some(bound) = lmtp_unix {
        let path = bound.path.clone();
        unix_socket = Some((bound.path, bound.identity));
        let services = services.clone();
        let stop = stopped(stop_rx.clone());
        listeners.spawn(async move {
            let result =
                serve_lmtp(LmtpListener::Unix(bound.listener), None, &services, stop).await;
            ("lmtp-unix".to_owned(), path.display().to_string(), result)
        });
    }

    let mut failed = None;
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT received; shutting down"),
        Some(joined) = listeners.join_next() => {
            let what = match joined {
                Ok((kind, local, Ok(()))) => format!("{kind} listener on {local} stopped unexpectedly"),
                Ok((kind, local, Err(e))) => format!("{kind} listener on {local} failed: {e}"),
                Err(e) => format!("a listener task died: {e}"),
            };
            tracing::error!("{what}; shutting down");
            failed = Some(what);
        }
    }
    let _ = stop_tx.send(true);

    // The protocol servers say BYE and wait for their sessions for the grace
    // period; allow a little more before giving up on them.
    let grace = config.shutdown_grace + Duration::from_secs(1);
    let drained = async {
        while let Some(joined) = listeners.join_next().await {
            if let Ok((kind, local, Err(e))) = joined {
                tracing::warn!("{kind} listener on {local} ended with an error: {e}");
            }
        }
    };
    tokio::select! {
        () = drained => tracing::info!("all listeners stopped"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!("shutdown grace period over; exiting with sessions still open");
        }
        _ = sigterm.recv() => tracing::warn!("second SIGTERM; exiting now"),
        _ = sigint.recv() => tracing::warn!("second SIGINT; exiting now"),
    }
    listeners.abort_all();
    if let Some((path, identity)) = unix_socket {
        remove_own_socket(&path, identity);
    }
    // The admin socket and the repair task saw the same stop signal; the
    // socket file goes with them.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while background.join_next().await.is_some() {}
    })
    .await;
    background.abort_all();
    match failed {
        Some(what) => Err(anyhow::anyhow!(what)),
        None => Ok(()),
    }
}

/// A future that completes when shutdown is requested.
async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means: stop.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Serves one listener until `stop` completes, on the `mailroom_server`
/// runtime each protocol crate configures from its settings, with the
/// PROXY protocol if the listener's table turns it on.
async fn serve_listener(
    kind: ListenerKind,
    listener: TcpListener,
    proxy: Option<ProxyProtocol>,
    services: Services,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match kind {
        ListenerKind::Imap | ListenerKind::Imaps => {
            let mode = if kind == ListenerKind::Imaps {
                TlsMode::Implicit
            } else {
                TlsMode::Plain
            };
            let mut server = services.imap.runtime(mode)?;
            if let Some(proxy) = proxy {
                server = server.proxy_protocol(proxy);
            }
            server.serve(listener, stop).await?;
            Ok(())
        }
        ListenerKind::Pop3 | ListenerKind::Pop3s => {
            let mode = if kind == ListenerKind::Pop3s {
                mailroom_pop3::TlsMode::Implicit
            } else {
                mailroom_pop3::TlsMode::Plain
            };
            let layers = ServiceBuilder::new()
                .option_layer(services.metrics.clone().map(Pop3Metrics::new))
                .option_layer(services.command_rate.map(rate_layer))
                .option_layer(services.command_timeout.map(TimeoutLayer::new))
                .map_err(tower::BoxError::from);
            let mut server = services.pop3.runtime(mode, layers)?;
            if let Some(proxy) = proxy {
                server = server.proxy_protocol(proxy);
            }
            server.serve(listener, stop).await?;
            Ok(())
        }
        ListenerKind::Lmtp => serve_lmtp(LmtpListener::Tcp(listener), proxy, &services, stop).await,
    }
}

/// Serves LMTP on a TCP or Unix listener, sessions wrapped in the metrics,
/// rate and command-timeout layers configured.
async fn serve_lmtp(
    listener: LmtpListener,
    proxy: Option<ProxyProtocol>,
    services: &Services,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let layers = ServiceBuilder::new()
        .option_layer(services.metrics.clone().map(LmtpMetrics::new))
        .option_layer(services.command_rate.map(rate_layer))
        .option_layer(services.command_timeout.map(TimeoutLayer::new))
        .map_err(tower::BoxError::from);
    let mut server = services.lmtp.runtime(layers);
    if let Some(proxy) = proxy {
        server = server.proxy_protocol(proxy);
    }
    server.serve(listener, stop).await?;
    Ok(())
}

/// The LMTP Unix socket, bound, with the identity of the file we created
/// (so shutdown removes our socket and nothing else).
struct BoundUnix {
    listener: UnixListener,
    path: PathBuf,
    identity: (u64, u64),
}

/// Binds the LMTP Unix socket. A socket file left by a server that is gone
/// (nothing accepts on it) is replaced; a live one, or a file that is not a
/// socket, is an error.
fn bind_unix(socket: &UnixSocket) -> anyhow::Result<BoundUnix> {
    let path = &socket.path;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!("another process is accepting connections on it");
            }
            std::fs::remove_file(path).context("removing the stale socket")?;
            tracing::info!(path = %path.display(), "removed a stale LMTP socket");
        }
        Ok(_) => anyhow::bail!("the path exists and is not a socket; not replacing it"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let listener = UnixListener::bind(path)?;
    // Set the mode explicitly: the umask must not decide who may deliver.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(socket.mode))?;
    let meta = std::fs::symlink_metadata(path)?;
    Ok(BoundUnix {
        listener,
        path: path.clone(),
        identity: (meta.dev(), meta.ino()),
    })
}

/// Removes the socket file at shutdown if it is still the one we bound.
fn remove_own_socket(path: &Path, identity: (u64, u64)) {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && (meta.dev(), meta.ino()) == identity
        && let Err(e) = std::fs::remove_file(path)
    {
        tracing::warn!(path = %path.display(), "cannot remove the LMTP socket: {e}");
    }
}

/// The name POP3 and LMTP give in greetings and `Received:` headers.
fn server_name() -> String {
    tls::system_hostname().unwrap_or_else(|| "localhost".to_owned())
}

/// The POP3 settings from `[auth]`, `[limits]` and `[shutdown]`.
///
/// Plaintext passwords follow IMAP's rule exactly: with
/// `allow_plaintext = false` USER/PASS and AUTH PLAIN work only on TLS
/// (after STLS, or on the POP3S port), from loopback too.
fn pop3_config(config: &Config) -> Pop3Config {
    let mut pop3 = Pop3Config::default();
    pop3.hostname = server_name();
    pop3.plaintext_auth = if config.auth.allow_plaintext {
        PlaintextAuth::Always
    } else {
        PlaintextAuth::TlsOnly
    };
    pop3.shutdown_grace = config.shutdown_grace;
    let limits = &config.limits;
    if let Some(n) = limits.max_connections {
        pop3.max_connections = n;
    }
    if let Some(n) = limits.max_connections_per_ip {
        pop3.max_connections_per_ip = n;
    }
    if let Some(secs) = limits.idle_timeout_secs {
        pop3.idle_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = limits.read_timeout_secs {
        pop3.read_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = limits.write_timeout_secs {
        pop3.write_timeout = Duration::from_secs(secs);
    }
    if let Some(n) = limits.max_line_length {
        pop3.max_line_length = n;
    }
    pop3
}

/// The LMTP settings from `[limits]` and `[shutdown]`. The largest message
/// is `max_literal_size`: what could not be APPENDed is not delivered either.
fn lmtp_config(config: &Config) -> LmtpConfig {
    let mut lmtp = LmtpConfig::default();
    lmtp.hostname = server_name();
    lmtp.shutdown_grace = config.shutdown_grace;
    let limits = &config.limits;
    if let Some(n) = limits.max_connections {
        lmtp.max_connections = n;
    }
    if let Some(n) = limits.max_connections_per_ip {
        lmtp.max_connections_per_ip = n;
    }
    if let Some(secs) = limits.idle_timeout_secs {
        lmtp.idle_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = limits.read_timeout_secs {
        lmtp.read_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = limits.write_timeout_secs {
        lmtp.write_timeout = Duration::from_secs(secs);
    }
    if let Some(n) = limits.max_line_length {
        lmtp.max_line_length = n;
    }
    if let Some(n) = limits.max_literal_size {
        lmtp.max_message_size = usize::try_from(n).unwrap_or(usize::MAX);
    }
    lmtp
}

/// `[limits] commands_per_second` for POP3 and LMTP (IMAP's default stack
/// takes it from [`ImapConfig::commands_per_second`]): `None` = no limit.
fn command_rate(limits: &LimitsTable) -> Option<u32> {
    match limits
        .commands_per_second
        .unwrap_or(mailroom_imap::server::DEFAULT_COMMANDS_PER_SECOND)
    {
        0 => None,
        n => Some(n),
    }
}

/// A per-connection command rate limit (tower's fixed-window limiter: the
/// drivers await `ready()`, so excess commands wait instead of failing).
fn rate_layer(per_second: u32) -> RateLimitLayer {
    RateLimitLayer::new(u64::from(per_second), Duration::from_secs(1))
}

/// The IMAP settings from `[auth]`, `[limits]`, `[shutdown]` and `[imap]`.
fn imap_config(config: &Config) -> ImapConfig {
    let mut imap = ImapConfig {
        allow_plaintext_auth: config.auth.allow_plaintext,
        shutdown_grace: config.shutdown_grace,
        ..ImapConfig::default()
    };
    let limits = &config.limits;
    if let Some(n) = limits.max_connections {
        imap.max_connections = n;
    }
    if let Some(n) = limits.max_connections_per_ip {
        imap.max_connections_per_ip = n;
    }
    if let Some(secs) = limits.idle_timeout_secs {
        imap.idle_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = limits.read_timeout_secs {
        imap.read_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = limits.write_timeout_secs {
        imap.write_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = limits.command_timeout_secs {
        imap.command_timeout = Duration::from_secs(secs);
    }
    if let Some(n) = limits.max_line_length {
        imap.limits.max_line = n;
    }
    if let Some(n) = limits.max_literal_size {
        imap.limits.max_literal = n;
    }
    if let Some(n) = limits.commands_per_second {
        imap.commands_per_second = n;
    }
    if let Some(d) = config.imap_idle_keepalive {
        imap.idle_keepalive = d;
    }
    imap.limits.literal_minus = config.imap_literal_minus;
    imap
}

/// Creates the demo user on the first start without a config file and
/// prints its password once. The password is stored only as a hash.
fn demo_user(config: &Config) -> anyhow::Result<()> {
    let path = &config.auth.users_file;
    if path.exists() {
        return Ok(());
    }
    let password = users::random_password(20)?;
    let hash = users::hash_password(&password)?;
    UserDb::modify(path, |db| {
        if db.is_empty() {
            db.add(DEMO_USER, hash, Vec::new()).map(Some)
        } else {
            Ok(None)
        }
    })?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "mailroomd: demo user {DEMO_USER} password {password}\n\
         mailroomd: (shown only this once; change it with `mailroomd user passwd {DEMO_USER} --password-stdin`)"
    );
    let _ = out.flush();
    Ok(())
}

/// The lines scripts and tests read: one per listener with the real port,
/// then `ready`.
fn print_startup(
    config: &Config,
    tls: &tls::Tls,
    bound: &[(ListenerKind, TcpListener, SocketAddr)],
    lmtp_unix: Option<&BoundUnix>,
    admin: &AdminSocket,
    metrics: Option<SocketAddr>,
    replication: Option<(&Node, Option<SocketAddr>)>,
) {
    let mut out = std::io::stdout().lock();
    for (kind, _, local) in bound {
        let _ = writeln!(out, "mailroomd: {kind} listening on {local}");
        tracing::info!("{kind} listening on {local}");
    }
    if let Some(unix) = lmtp_unix {
        let path = unix.path.display();
        let _ = writeln!(out, "mailroomd: lmtp-unix listening on {path}");
        tracing::info!("lmtp-unix listening on {path}");
    }
    if let Some(local) = metrics {
        let _ = writeln!(out, "mailroomd: metrics endpoint http://{local}/metrics");
        tracing::info!("metrics endpoint on http://{local}/metrics");
    }
    if let Some((node, listen)) = replication {
        let _ = writeln!(out, "mailroomd: replication role {}", node.role());
        if let Some(local) = listen {
            let _ = writeln!(out, "mailroomd: replication listening on {local}");
            tracing::info!("replication listening on {local}");
        }
        if let Some(peer) = &node.settings().peer {
            tracing::info!(peer, mode = %node.settings().mode, "replicating to the peer");
        }
    }
    let _ = writeln!(out, "mailroomd: admin socket {}", admin.path().display());
    if config.is_demo() {
        let _ = writeln!(
            out,
            "mailroomd: demo mode (no config file): data in {}; plaintext passwords are refused, \
             so connect with IMAPS/POP3S or STARTTLS/STLS; the certificate is self-signed ({})",
            config.data_dir.display(),
            tls.cert_path.display()
        );
    }
    let _ = writeln!(out, "mailroomd: ready");
    let _ = out.flush();
}
