//! [`Pop3Server`]: the session factory and the accept loop.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use mailroom_core::sasl::ExporterSlot;
use mailroom_core::throttle::LoginFailures;
use mailroom_core::{Authenticator, Storage};
use mailroom_server::limit::{ConnectionLimits, Refusal};
use mailroom_server::{Connection, Io, Listener, Protocol, Server, Shutdown, Timeouts};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tower::layer::util::Identity;
use tower::{Layer, Service};

use crate::codec::{Command, Pop3Codec, Reply};
use crate::config::{Pop3Config, TlsMode};
use crate::driver::{self, Ended};
use crate::error::Pop3Error;
use crate::layer::throttle::{LoginThrottle, LoginThrottleLayer};
use crate::session::{ConnectionInfo, Session, Shared, SizeCache};

/// A POP3 server over a store and an authenticator: a `MakeService`-style
/// factory of [`Session`]s (it is a `tower::Service<ConnectionInfo>`) and
/// the driver the [`mailroom_server`] runtime runs for each connection. Cheap to clone; clones share the octet-count
/// cache, and all servers over one store share the maildrop locks.
///
/// Every connection it serves goes through a [`LoginThrottle`] (see
/// [`Pop3Config::login_throttle`] and [`Pop3Server::with_login_failures`]).
#[derive(Debug, Clone)]
pub struct Pop3Server {
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
    throttle: LoginThrottleLayer,
    limits: ConnectionLimits,
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
        let limits = ConnectionLimits::new(config.max_connections, config.max_connections_per_ip);
        Pop3Server {
            shared: Arc::new(Shared {
                storage,
                auth,
                config,
                sizes: SizeCache::default(),
            }),
            tls: None,
            throttle,
            limits,
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
        Session::new(self.shared.clone(), info, ExporterSlot::new())
    }

    /// The connection limits every listener of this server shares
    /// ([`Pop3Config::max_connections`], [`Pop3Config::max_connections_per_ip`]).
    pub fn connection_limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// The runtime for one listener, configured from [`Pop3Config`] (the
    /// shared limits, the idle, read and write timeouts, the handshake
    /// timeout, the shutdown grace period; TLS from the first byte for
    /// [`TlsMode::Implicit`]), with every session wrapped in `layer` (see
    /// [`Pop3Server::serve_with`]). Add what the config does not say (the
    /// PROXY protocol) and call [`Server::serve`].
    ///
    /// # Errors
    ///
    /// [`Pop3Error::TlsNotConfigured`] for [`TlsMode::Implicit`] without
    /// [`Pop3Server::with_tls`].
    pub fn runtime<L>(&self, mode: TlsMode, layer: L) -> Result<Server<Pop3Protocol<L>>, Pop3Error>
    where
        L: Layer<LoginThrottle<Session>> + Send + Sync + 'static,
        L::Service: Service<Command, Response = Reply> + Send + 'static,
        <L::Service as Service<Command>>::Future: Send,
        <L::Service as Service<Command>>::Error:
            Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let config = &self.shared.config;
        let mut server = Server::new(Pop3Protocol {
            server: self.clone(),
            layer: Arc::new(layer),
        })
        .limits(self.limits.clone())
        .timeouts(Timeouts {
            idle: config.idle_timeout,
            read: config.read_timeout,
            write: config.write_timeout,
        })
        .handshake_timeout(config.tls_handshake_timeout)
        .shutdown_grace(config.shutdown_grace);
        if mode == TlsMode::Implicit {
            let tls = self.tls.clone().ok_or(Pop3Error::TlsNotConfigured)?;
            server = server.implicit_tls(tls);
        }
        Ok(server)
    }

    /// Accepts connections on `listener` until `shutdown` completes, then
    /// tells open connections to finish (each ends after its current
    /// command) and waits for them up to [`Pop3Config::shutdown_grace`].
    pub async fn serve(
        self,
        listener: impl Into<Listener>,
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
        listener: impl Into<Listener>,
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
        self.runtime(mode, layer)?.serve(listener, shutdown).await?;
        Ok(())
    }

    /// Serves one already-accepted connection over any byte stream (a
    /// socket pair in a test, a stream from another acceptor) as
    /// [`Pop3Server::serve`] would: limits, TLS for [`TlsMode::Implicit`],
    /// timeouts. `peer` is used for the loopback rule of
    /// [`crate::PlaintextAuth::TlsOrLoopback`] and as the login throttle's
    /// IP key.
    pub async fn serve_connection<IO: Io>(
        &self,
        io: IO,
        peer: Option<SocketAddr>,
        mode: TlsMode,
    ) -> Result<(), Pop3Error> {
        self.runtime(mode, Identity::new())?
            .serve_io(io, peer, Shutdown::never())
            .await;
        Ok(())
    }

    async fn drive<L>(&self, connection: Connection, layer: &L) -> Result<(), Pop3Error>
    where
        L: Layer<LoginThrottle<Session>>,
        L::Service: Service<Command, Response = Reply>,
        <L::Service as Service<Command>>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Connection {
            stream,
            info,
            mut shutdown,
            timeouts,
            ..
        } = connection;
        let config = &self.shared.config;
        let peer = info.peer;
        let exporter = ExporterSlot::new();
        if let Some(e) = stream.tls_exporter() {
            exporter.set(e);
        }
        let session = Session::new(
            self.shared.clone(),
            ConnectionInfo {
                peer,
                tls: info.tls,
                stls_available: self.tls.is_some() && !info.tls,
            },
            exporter.clone(),
        );
        let greeting = session.greeting(config);
        let throttled = self.throttle.for_peer(peer.map(|p| p.ip())).layer(session);
        let mut svc = layer.layer(throttled);
        let mut codec = Pop3Codec::new(config.max_line_length);
        let ended = driver::run(
            stream,
            &mut svc,
            &mut codec,
            Some(greeting),
            &mut shutdown,
            &timeouts,
        )
        .await?;
        if let Ended::StartTls(io) = ended {
            let tls = self.handshake(io).await?;
            if let Some(e) = mailroom_server::tls_exporter(tls.get_ref().1) {
                exporter.set(e);
            }
            let mut codec = Pop3Codec::new(config.max_line_length);
            driver::run(tls, &mut svc, &mut codec, None, &mut shutdown, &timeouts).await?;
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

/// A [`Pop3Server`] with the layer around its sessions: the
/// [`Protocol`] the runtime serves (built by [`Pop3Server::runtime`]).
pub struct Pop3Protocol<L> {
    server: Pop3Server,
    layer: Arc<L>,
}

impl<L> std::fmt::Debug for Pop3Protocol<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Protocol")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl<L> Protocol for Pop3Protocol<L>
where
    L: Layer<LoginThrottle<Session>> + Send + Sync + 'static,
    L::Service: Service<Command, Response = Reply> + Send + 'static,
    <L::Service as Service<Command>>::Future: Send,
    <L::Service as Service<Command>>::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    fn name(&self) -> &'static str {
        "pop3"
    }

    fn refusal(&self, refusal: Refusal) -> Bytes {
        Bytes::from(format!("-ERR [SYS/TEMP] {refusal}; try again later\r\n"))
    }

    fn serve(&self, connection: Connection) -> BoxFuture<'static, ()> {
        let server = self.server.clone();
        let layer = self.layer.clone();
        Box::pin(async move {
            if let Err(e) = server.drive(connection, &*layer).await {
                tracing::debug!(error = %e, "pop3 connection ended with an error");
            }
        })
    }
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
