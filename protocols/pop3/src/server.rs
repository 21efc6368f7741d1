//! [`Pop3Server`]: the session factory and the accept loop.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use mailroom_core::throttle::LoginFailures;
use mailroom_core::{Authenticator, Storage};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::layer::util::Identity;
use tower::{Layer, Service};

use crate::codec::{Command, Pop3Codec, Reply};
use crate::config::{Pop3Config, TlsMode};
use crate::driver::{self, Ended, Limits};
use crate::error::Pop3Error;
use crate::layer::throttle::{LoginThrottle, LoginThrottleLayer};
use crate::session::{ConnectionInfo, Session, Shared, SizeCache};

/// A POP3 server over a store and an authenticator: a `MakeService`-style
/// factory of [`Session`]s (it is a `tower::Service<ConnectionInfo>`) and the
/// accept loop that drives them. Cheap to clone; clones share the octet-count
/// cache, and all servers over one store share the maildrop locks.
///
/// Every connection it serves goes through a [`LoginThrottle`] (see
/// [`Pop3Config::login_throttle`] and [`Pop3Server::with_login_failures`]).
#[derive(Debug, Clone)]
pub struct Pop3Server {
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
    throttle: LoginThrottleLayer,
}

impl Pop3Server {
    /// A server over `storage` (the maildrop is each user's INBOX) that
    /// checks passwords with `auth`.
    pub fn new(
        storage: Arc<dyn Storage>,
        auth: Arc<dyn Authenticator>,
        config: Pop3Config,
    ) -> Pop3Server {
        let throttle = match config.login_throttle {
            Some(throttle) => LoginThrottleLayer::new(throttle),
            None => LoginThrottleLayer::disabled(),
        };
        Pop3Server {
            shared: Arc::new(Shared {
                storage,
                auth,
                config,
                sizes: SizeCache::default(),
            }),
            tls: None,
            throttle,
        }
    }

    /// Counts failed logins in `failures`, a table other servers may share:
    /// give IMAP's throttle the same table and a guesser slowed down on one
    /// protocol is slowed down on the other. The table's own
    /// [`ThrottleConfig`](mailroom_core::throttle::ThrottleConfig) applies
    /// (and the throttle is on even if [`Pop3Config::login_throttle`] is
    /// `None`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mailroom_core::throttle::LoginFailures;
    /// use mailroom_imap::layer::throttle::LoginThrottleLayer;
    ///
    /// # fn demo(pop3: mailroom_pop3::Pop3Server, imap: mailroom_imap::ImapServer) {
    /// let failures = Arc::new(LoginFailures::default());
    /// let pop3 = pop3.with_login_failures(failures.clone());
    /// let throttle = LoginThrottleLayer::with_failures(failures);
    /// let imap = imap.with_stack(move |conn, session| {
    ///     tower::ServiceBuilder::new()
    ///         .layer(throttle.for_peer(conn.peer.map(|p| p.ip())))
    ///         .service(session)
    /// });
    /// # }
    /// ```
    pub fn with_login_failures(mut self, failures: Arc<LoginFailures>) -> Pop3Server {
        self.throttle = LoginThrottleLayer::with_failures(failures);
        self
    }

    /// The failed-login table, unless the throttle is off.
    pub fn login_failures(&self) -> Option<&Arc<LoginFailures>> {
        self.throttle.failures()
    }

    /// Enables TLS: `STLS` on plain listeners and [`TlsMode::Implicit`].
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Pop3Server {
        self.tls = Some(tls);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Pop3Config {
        &self.shared.config
    }

    /// A new session for one connection (what the `Service` impl returns).
    pub fn session(&self, info: ConnectionInfo) -> Session {
        Session::new(self.shared.clone(), info)
    }

    /// Accepts connections on `listener` until `shutdown` completes, then
    /// tells open connections to finish (each ends after its current
    /// command) and waits for them up to [`Pop3Config::shutdown_grace`].
    pub async fn serve(
        self,
        listener: TcpListener,
        mode: TlsMode,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Pop3Error> {
        self.serve_with(listener, mode, Identity::new(), shutdown)
            .await
    }

    /// Like [`Pop3Server::serve`], with every session wrapped in `layer`
    /// (tracing, timeouts, concurrency limits: any `tower::Layer`). The
    /// layer wraps the session already inside its [`LoginThrottle`], so a
    /// command timeout in `layer` also bounds the throttle's delays.
    pub async fn serve_with<L>(
        self,
        listener: TcpListener,
        mode: TlsMode,
        layer: L,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Pop3Error>
    where
        L: Layer<LoginThrottle<Session>> + Send + Sync + 'static,
        L::Service: Service<Command, Response = Reply> + Send + 'static,
        <L::Service as Service<Command>>::Future: Send,
        <L::Service as Service<Command>>::Error:
            Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        if mode == TlsMode::Implicit && self.tls.is_none() {
            return Err(Pop3Error::TlsNotConfigured);
        }
        let layer = Arc::new(layer);
        let limit = Arc::new(Semaphore::new(self.shared.config.max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "pop3 accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "pop3 connection limit reached");
                        tasks.spawn(refuse(stream, mode));
                        continue;
                    };
                    let server = self.clone();
                    let layer = layer.clone();
                    let stop = stop_rx.clone();
                    tasks.spawn(async move {
                        if let Err(e) = server.connection(stream, peer, mode, &*layer, stop).await {
                            tracing::debug!(%peer, error = %e, "pop3 connection ended with an error");
                        }
                        drop(permit);
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let grace = self.shared.config.shutdown_grace;
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!("pop3 shutdown grace period over; aborting open connections");
            tasks.shutdown().await;
        }
        Ok(())
    }

    async fn connection<L>(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        mode: TlsMode,
        layer: &L,
        stop: watch::Receiver<bool>,
    ) -> Result<(), Pop3Error>
    where
        L: Layer<LoginThrottle<Session>>,
        L::Service: Service<Command, Response = Reply>,
        <L::Service as Service<Command>>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let _ = stream.set_nodelay(true);
        self.serve_connection_with(stream, Some(peer), mode, layer, stop)
            .await
    }

    /// Serves one already-accepted connection over any byte stream (a
    /// socket pair in a test, a stream from another acceptor). `peer` is used
    /// for the loopback rule of [`crate::PlaintextAuth::TlsOrLoopback`] and
    /// as the login throttle's IP key.
    pub async fn serve_connection<IO>(
        &self,
        io: IO,
        peer: Option<SocketAddr>,
        mode: TlsMode,
    ) -> Result<(), Pop3Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (_tx, rx) = watch::channel(false);
        self.serve_connection_with(io, peer, mode, &Identity::new(), rx)
            .await
    }

    async fn serve_connection_with<IO, L>(
        &self,
        io: IO,
        peer: Option<SocketAddr>,
        mode: TlsMode,
        layer: &L,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), Pop3Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
        L: Layer<LoginThrottle<Session>>,
        L::Service: Service<Command, Response = Reply>,
        <L::Service as Service<Command>>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let config = &self.shared.config;
        let info = ConnectionInfo {
            peer,
            tls: mode == TlsMode::Implicit,
            stls_available: self.tls.is_some() && mode == TlsMode::Plain,
        };
        let session = self.session(info);
        let greeting = session.greeting(config);
        let throttled = self.throttle.for_peer(peer.map(|p| p.ip())).layer(session);
        let mut svc = layer.layer(throttled);
        let mut codec = Pop3Codec::new(config.max_line_length);
        let limits = Limits {
            idle_timeout: config.idle_timeout,
        };
        match mode {
            TlsMode::Implicit => {
                let tls = self.handshake(io).await?;
                driver::run(
                    tls,
                    &mut svc,
                    &mut codec,
                    Some(greeting),
                    &mut stop,
                    &limits,
                )
                .await?;
            }
            _ => {
                let ended =
                    driver::run(io, &mut svc, &mut codec, Some(greeting), &mut stop, &limits)
                        .await?;
                if let Ended::StartTls(io) = ended {
                    let tls = self.handshake(io).await?;
                    let mut codec = Pop3Codec::new(config.max_line_length);
                    driver::run(tls, &mut svc, &mut codec, None, &mut stop, &limits).await?;
                }
            }
        }
        Ok(())
    }

    async fn handshake<IO>(&self, io: IO) -> Result<tokio_rustls::server::TlsStream<IO>, Pop3Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let tls = self.tls.clone().ok_or(Pop3Error::TlsNotConfigured)?;
        let accept = TlsAcceptor::from(tls).accept(io);
        match tokio::time::timeout(self.shared.config.tls_handshake_timeout, accept).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(Pop3Error::Handshake(e)),
            Err(_) => Err(Pop3Error::Handshake(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            ))),
        }
    }
}

async fn refuse(mut stream: TcpStream, mode: TlsMode) {
    if mode == TlsMode::Plain {
        let _ = stream
            .write_all(b"-ERR [SYS/TEMP] too many connections; try again later\r\n")
            .await;
    }
    let _ = stream.shutdown().await;
}

impl Service<ConnectionInfo> for Pop3Server {
    type Response = Session;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Session, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, info: ConnectionInfo) -> Self::Future {
        std::future::ready(Ok(self.session(info)))
    }
}
