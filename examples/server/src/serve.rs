//! `mailroomd serve`: assemble the store, the authenticator and TLS, bind
//! the listeners and the admin socket, repair corrupt mailboxes in the
//! background, serve until SIGTERM/SIGINT, shut down gracefully.
//!
//! Adding a protocol listener (`[pop3]`, `[pop3s]`, `[lmtp]`) is an arm in
//! [`serve_listener`]; everything else (binding, the startup line, port 0,
//! shutdown) is shared.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mailroom_core::{Authenticator, Quota, Storage};
use mailroom_imap::{ImapConfig, ImapServer, TlsMode};
use mailroomd::auth::FileAuthenticator;
use mailroomd::config::{Config, ListenerKind};
use mailroomd::control::AdminSocket;
use mailroomd::store::Store;
use mailroomd::users::{self, UserDb};
use mailroomd::{fsutil, repair, store, tls};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The demo user created on first start without a config file.
pub(crate) const DEMO_USER: &str = "demo@localhost";

/// The protocol servers, built once and shared by their listeners (so
/// `[limits] max_connections` bounds each protocol, all its listeners together).
#[derive(Debug, Clone)]
struct Services {
    imap: ImapServer,
}

impl Services {
    fn new(
        config: &Config,
        storage: Arc<dyn Storage>,
        quota: Arc<dyn Quota>,
        auth: Arc<dyn Authenticator>,
        tls: Arc<rustls::ServerConfig>,
    ) -> Services {
        let imap = ImapServer::new(storage, Some(quota), auth, imap_config(config)).with_tls(tls);
        Services { imap }
    }
}

/// Runs the server until a signal; returns once every listener has stopped
/// (or the grace period is over).
pub(crate) async fn run(config: Config) -> anyhow::Result<()> {
    // Install the handlers first: a SIGTERM that arrives right after the
    // startup line is printed must shut down gracefully, not kill.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    if config.listeners.is_empty() {
        anyhow::bail!(
            "{}: no listener is configured; add an [imap] or [imaps] table",
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
    let store = store::open_store(&config)?;
    let admin = AdminSocket::bind(&config.admin_socket).with_context(|| {
        format!(
            "cannot listen on the admin socket {}",
            config.admin_socket.display()
        )
    })?;
    let auth = FileAuthenticator::new(&config.auth.users_file, config.auth.cache_ttl)
        .map_err(|e| anyhow::anyhow!("authenticator: {e}"))?;
    if auth.user_count().await == 0 {
        tracing::warn!(
            users_file = %config.auth.users_file.display(),
            "no users yet: add one with `mailroomd user add USER@DOMAIN --password-stdin`"
        );
    }
    match &store {
        Store::Crc(crc) => tracing::info!(
            store = "crc",
            path = %crc.root().display(),
            durability = config.store.durability,
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

    print_startup(&config, &tls, &bound, &admin);

    let services = Services::new(
        &config,
        store.storage(),
        store.quota(),
        Arc::new(auth),
        tls.config,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = JoinSet::new();
    background.spawn(admin.serve(
        store.clone(),
        config.auth.users_file.clone(),
        stopped(stop_rx.clone()),
    ));
    if let Some(crc) = store.crc() {
        let (crc, retry, stop) = (
            crc.clone(),
            config.store.reconstruct_interval,
            stopped(stop_rx.clone()),
        );
        background.spawn(async move {
            repair::auto_reconstruct(crc, retry, stop).await;
            Ok(())
        });
    }
    let mut listeners = JoinSet::new();
    for (kind, listener, local) in bound {
        let services = services.clone();
        let stop = stopped(stop_rx.clone());
        listeners.spawn(async move {
            let result = serve_listener(kind, listener, services, stop).await;
            (kind, local, result)
        });
    }

    let mut failed = None;
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT received; shutting down"),
        Some(joined) = listeners.join_next() => {
            let what = match joined {
                Ok((kind, local, Ok(()))) => format!("[{kind}] listener on {local} stopped unexpectedly"),
                Ok((kind, local, Err(e))) => format!("[{kind}] listener on {local} failed: {e}"),
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
                tracing::warn!("[{kind}] listener on {local} ended with an error: {e}");
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

/// Serves one listener until `stop` completes.
async fn serve_listener(
    kind: ListenerKind,
    listener: TcpListener,
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
            services.imap.serve(listener, mode, stop).await?;
            Ok(())
        }
    }
}

/// The IMAP settings from `[auth]`, `[limits]` and `[shutdown]`.
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
    if let Some(secs) = limits.idle_timeout_secs {
        imap.idle_timeout = Duration::from_secs(secs);
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
    admin: &AdminSocket,
) {
    let mut out = std::io::stdout().lock();
    for (kind, _, local) in bound {
        let _ = writeln!(out, "mailroomd: {kind} listening on {local}");
        tracing::info!("{kind} listening on {local}");
    }
    let _ = writeln!(out, "mailroomd: admin socket {}", admin.path().display());
    if config.is_demo() {
        let _ = writeln!(
            out,
            "mailroomd: demo mode (no config file): data in {}; plaintext LOGIN is refused, \
             so connect with IMAPS or STARTTLS; the certificate is self-signed ({})",
            config.data_dir.display(),
            tls.cert_path.display()
        );
    }
    let _ = writeln!(out, "mailroomd: ready");
    let _ = out.flush();
}
