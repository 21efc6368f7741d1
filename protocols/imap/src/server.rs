//! The driver: runs the codec over one connection, calls the session
//! service stack and writes its replies; and the IMAP side of the
//! [`mailroom_server`] runtime, which accepts the connections.
//!
//! One task per connection. The task reads into a buffer, lets the
//! [`Decoder`] take commands out of it, calls the service stack built for
//! the connection (by default tracing, the login throttle and the command
//! timeout around a [`Session`]) and writes each reply as the encoder's
//! chunks (message bodies are `Bytes` shared with the store, written as
//! they are). It also carries out what a reply asks for: STARTTLS (the
//! buffered plaintext after the command is dropped before the handshake),
//! IDLE (updates pushed as the mailbox changes, until `DONE`), the
//! AUTHENTICATE continuation.
//!
//! Everything about sockets is the runtime's: [`ImapServer`] is a
//! [`Protocol`]; [`ImapServer::serve`] runs it on a listener with the
//! limits, timeouts and grace period of [`ImapConfig`], and
//! [`ImapServer::runtime`] hands the configured [`Server`] to an integrator
//! who wants more (the PROXY protocol, limits shared with another
//! listener). A connection over a limit gets `* BYE` (inside TLS on port
//! 993); a client silent for [`ImapConfig::idle_timeout`] gets
//! `* BYE autologout`; one that stops reading its responses for
//! [`ImapConfig::write_timeout`] is dropped. On shutdown every session
//! waiting for a command gets `* BYE` and the server waits up to
//! [`ImapConfig::shutdown_grace`] for them to finish.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::future::BoxFuture;
use mailroom_core::sasl::ExporterSlot;
use mailroom_core::{Authenticator, Quota, Storage};
use mailroom_server::limit::{ConnectionLimits, Refusal};
use mailroom_server::timeout::{TimeoutKind, timed_out};
use mailroom_server::{
    Connection, Io, Listener, Protocol, Server, Shutdown, TimeoutControl, Timeouts,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tower::util::BoxService;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::command::{Command, Request};
use crate::extension::compress::DeflateStream;
use crate::layer::throttle::LoginThrottleLayer;
use crate::layer::timeout::{CommandTimeoutLayer, Elapsed};
use crate::layer::trace::TraceLayer;
use crate::parser::{Decoded, Decoder, Limits};
use crate::response::{self, EncodeOptions, Response, StatusKind, StatusResponse};
use crate::session::{Action, ConnectionInfo, Context, IdleHandle, Reply, Session};
use mailroom_core::throttle::{LoginFailures, ThrottleConfig};

/// [`ImapConfig::commands_per_second`] by default.
pub const DEFAULT_COMMANDS_PER_SECOND: u32 = 500;

/// How an [`ImapServer`] behaves. Build it with struct update syntax over
/// [`ImapConfig::default`].
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// Allow LOGIN and AUTHENTICATE PLAIN without TLS. Off by default:
    /// before STARTTLS the server advertises LOGINDISABLED and answers
    /// `NO [PRIVACYREQUIRED]`.
    pub allow_plaintext_auth: bool,
    /// Bounds on what a client may send (line length, literal size, nesting).
    pub limits: Limits,
    /// The autologout timer: a connection that sends nothing for this long
    /// gets `* BYE` (RFC 3501 §5.4 says at least 30 minutes). Default 30 min.
    pub idle_timeout: Duration,
    /// The longest a single command may run before the connection is
    /// closed with `* BYE`. Default 10 minutes.
    pub command_timeout: Duration,
    /// How long a read may wait in the middle of a command (a literal
    /// trickling in). Default 5 minutes.
    pub read_timeout: Duration,
    /// How long a write may make no progress (a client that stops reading
    /// a large FETCH) before the connection is dropped. Default 60 s.
    pub write_timeout: Duration,
    /// The most connections served at once, all listeners of this server
    /// together; more get `* BYE` at once. Default 1024.
    pub max_connections: usize,
    /// The most connections from one client address (IPv6: one /64).
    /// Default: none ([`mailroom_server::DEFAULT_MAX_CONNECTIONS_PER_IP`]).
    pub max_connections_per_ip: usize,
    /// The delay after a failed login, doubling per further failure from
    /// the same IP or for the same user. Default 1 s.
    pub login_failure_delay: Duration,
    /// The cap on that delay. Default 30 s.
    pub login_failure_max_delay: Duration,
    /// The text of the greeting.
    pub greeting: String,
    /// How long a graceful shutdown waits for sessions to end. Default 5 s.
    pub shutdown_grace: Duration,
    /// How long a TLS handshake may take. Default 30 s.
    pub tls_handshake_timeout: Duration,
    /// The most commands one connection may issue per second; past it the
    /// next command is read only when the second is over (a tarpit, never an
    /// error, so a pipelining client is slowed, not broken). 0 = no limit.
    /// Default 500.
    pub commands_per_second: u32,
    /// During IDLE, an untagged `* OK Still here` this often, so that NAT
    /// boxes and mobile networks do not drop a silent connection (Dovecot
    /// sends one every 2 minutes too). It is the server's output, so it does
    /// not reset the autologout timer: a client that says nothing for
    /// [`ImapConfig::idle_timeout`] is still logged out, as RFC 2177 allows
    /// (it should re-issue IDLE every 29 minutes). Zero turns it off.
    /// Default 2 minutes.
    pub idle_keepalive: Duration,
}

impl Default for ImapConfig {
    fn default() -> ImapConfig {
        ImapConfig {
            allow_plaintext_auth: false,
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(30 * 60),
            command_timeout: Duration::from_secs(10 * 60),
            read_timeout: Duration::from_secs(5 * 60),
            write_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_ip: mailroom_server::DEFAULT_MAX_CONNECTIONS_PER_IP,
            login_failure_delay: Duration::from_secs(1),
            login_failure_max_delay: Duration::from_secs(30),
            greeting: "Mailroom IMAP4rev1 server ready".to_owned(),
            shutdown_grace: Duration::from_secs(5),
            tls_handshake_timeout: Duration::from_secs(30),
            commands_per_second: DEFAULT_COMMANDS_PER_SECOND,
            idle_keepalive: Duration::from_secs(2 * 60),
        }
    }
}

/// How connections accepted by [`ImapServer::serve`] start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plaintext; STARTTLS is offered if the server has a TLS config (port 143).
    Plain,
    /// TLS from the first byte (port 993). Needs [`ImapServer::with_tls`].
    Implicit,
}

/// The service stack one connection talks to.
pub type BoxSession = BoxService<Request, Reply, BoxError>;

type MakeStack = dyn Fn(&ConnectionInfo, Session) -> BoxSession + Send + Sync;
type OuterLayer = dyn Fn(BoxSession) -> BoxSession + Send + Sync;

/// An IMAP server over a [`Storage`]: cheap to clone, one per listener or
/// shared by several.
#[derive(Clone)]
pub struct ImapServer {
    ctx: Arc<Context>,
    tls: Option<TlsAcceptor>,
    tls_config: Option<Arc<rustls::ServerConfig>>,
    make_stack: Arc<MakeStack>,
    /// Whether `make_stack` is the default stack (rebuilt by
    /// [`ImapServer::with_login_failures`]) rather than one from `with_stack`.
    default_stack: bool,
    /// Layers added with [`ImapServer::layer`], innermost first, applied
    /// around whatever `make_stack` builds.
    outer: Vec<Arc<OuterLayer>>,
    /// Shared by every listener this server (and its clones) serves.
    limits: ConnectionLimits,
}

impl fmt::Debug for ImapServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapServer")
            .field("context", &self.ctx)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl ImapServer {
    /// A server with the default layer stack: [`TraceLayer`], a
    /// [`LoginThrottleLayer`], a [`CommandTimeoutLayer`] and tower's
    /// [`RateLimitLayer`](tower::limit::RateLimitLayer) (per connection,
    /// [`ImapConfig::commands_per_second`]) configured from `config`.
    /// [`ImapServer::with_login_failures`] shares the throttle's table with
    /// other servers; [`ImapServer::layer`] adds a layer (metrics, say)
    /// around the stack; [`ImapServer::with_stack`] replaces it.
    pub fn new(
        storage: Arc<dyn Storage>,
        quota: Option<Arc<dyn Quota>>,
        auth: Arc<dyn Authenticator>,
        config: ImapConfig,
    ) -> ImapServer {
        let failures = Arc::new(LoginFailures::new(ThrottleConfig {
            base_delay: config.login_failure_delay,
            max_delay: config.login_failure_max_delay,
            ..ThrottleConfig::default()
        }));
        let limits = ConnectionLimits::new(config.max_connections, config.max_connections_per_ip);
        let server = ImapServer {
            ctx: Arc::new(Context {
                storage,
                quota,
                auth,
                config,
                tls_available: false,
            }),
            tls: None,
            tls_config: None,
            make_stack: Arc::new(|_, s| BoxService::new(s.map_err(BoxError::from))),
            default_stack: true,
            outer: Vec::new(),
            limits,
        };
        server.with_login_failures(failures)
    }

    /// The default stack (see [`ImapServer::new`]) with its login throttle
    /// counting failures in `failures`, a table other servers (POP3, a
    /// second IMAP listener) may share, so that an attacker is slowed down
    /// across protocols. Only the default stack uses it: after
    /// [`ImapServer::with_stack`] this does nothing (the given stack has
    /// its own throttle, if any).
    pub fn with_login_failures(mut self, failures: Arc<LoginFailures>) -> ImapServer {
        if !self.default_stack {
            return self;
        }
        let throttle = LoginThrottleLayer::with_failures(failures);
        let command_timeout = CommandTimeoutLayer::new(self.ctx.config.command_timeout);
        let rate = self.ctx.config.commands_per_second;
        self.make_stack = Arc::new(move |conn, session| {
            BoxService::new(
                tower::ServiceBuilder::new()
                    // outermost: it holds per-connection state and is not Clone
                    .option_layer((rate > 0).then(|| {
                        tower::limit::RateLimitLayer::new(u64::from(rate), Duration::from_secs(1))
                    }))
                    .layer(TraceLayer::new())
                    .layer(throttle.for_peer(conn.peer.map(|p| p.ip())))
                    .layer(command_timeout)
                    .service(session)
                    .map_err(BoxError::from),
            )
        });
        self
    }

    /// Adds `layer` around the connection's stack (the default one or that
    /// of [`ImapServer::with_stack`]), outside the layers added before it.
    /// This is how an integrator keeps the defaults and adds, for example,
    /// the [metrics layer](crate::layer::metrics::MetricsLayer):
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mailroom_core::metrics::Metrics;
    /// use mailroom_imap::layer::metrics::MetricsLayer;
    /// use mailroom_imap::{ImapConfig, ImapServer};
    /// use mailroom_store_memory::MemoryStore;
    /// use mailroom_testkit::StaticAuthenticator;
    ///
    /// let store = Arc::new(MemoryStore::new());
    /// let auth = Arc::new(StaticAuthenticator::new(&["alice@example.com"]).password("secret"));
    /// let metrics = Arc::new(Metrics::new());
    /// let server = ImapServer::new(store.clone(), Some(store), auth, ImapConfig::default())
    ///     .layer(MetricsLayer::new(metrics.clone()));
    /// # let _ = server;
    /// ```
    pub fn layer<L>(mut self, layer: L) -> ImapServer
    where
        L: Layer<BoxSession> + Send + Sync + 'static,
        L::Service: Service<Request, Response = Reply> + Send + 'static,
        <L::Service as Service<Request>>::Error: Into<BoxError>,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.outer.push(Arc::new(move |inner| {
            BoxService::new(layer.layer(inner).map_err(Into::into))
        }));
        self
    }

    /// Adds TLS: STARTTLS on plain listeners, and [`TlsMode::Implicit`].
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> ImapServer {
        self.tls = Some(TlsAcceptor::from(tls.clone()));
        self.tls_config = Some(tls);
        let ctx = Context {
            storage: self.ctx.storage.clone(),
            quota: self.ctx.quota.clone(),
            auth: self.ctx.auth.clone(),
            config: self.ctx.config.clone(),
            tls_available: true,
        };
        self.ctx = Arc::new(ctx);
        self
    }

    /// Replaces the layer stack: `make` is called for every accepted
    /// connection with what is known about it and the bare [`Session`], and
    /// returns the service the driver will call (a `tower::ServiceBuilder`
    /// stack, or the session itself for no layers at all).
    pub fn with_stack<F, S>(mut self, make: F) -> ImapServer
    where
        F: Fn(&ConnectionInfo, Session) -> S + Send + Sync + 'static,
        S: Service<Request, Response = Reply> + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        self.make_stack =
            Arc::new(move |conn, session| BoxService::new(make(conn, session).map_err(Into::into)));
        self.default_stack = false;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ImapConfig {
        &self.ctx.config
    }

    /// The connection limits every listener of this server shares.
    pub fn connection_limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// The runtime for one listener, configured from [`ImapConfig`]: the
    /// shared connection limits, the idle, read and write timeouts, the
    /// TLS handshake timeout and the shutdown grace period; TLS from the
    /// first byte for [`TlsMode::Implicit`]. Add what the config does not
    /// say (the PROXY protocol) and call [`Server::serve`].
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for [`TlsMode::Implicit`] without
    /// [`ImapServer::with_tls`].
    pub fn runtime(&self, mode: TlsMode) -> io::Result<Server<ImapServer>> {
        let config = &self.ctx.config;
        let mut server = Server::new(self.clone())
            .limits(self.limits.clone())
            .timeouts(Timeouts {
                idle: config.idle_timeout,
                read: config.read_timeout,
                write: config.write_timeout,
            })
            .handshake_timeout(config.tls_handshake_timeout)
            .shutdown_grace(config.shutdown_grace);
        if mode == TlsMode::Implicit {
            let Some(tls) = &self.tls_config else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "implicit TLS needs a TLS configuration (ImapServer::with_tls)",
                ));
            };
            server = server.implicit_tls(tls.clone());
        }
        Ok(server)
    }

    /// Accepts connections until `shutdown` resolves, then says `BYE` to
    /// every session waiting for a command and waits up to
    /// [`ImapConfig::shutdown_grace`] for them to end (see
    /// [`ImapServer::runtime`]).
    pub async fn serve(
        self,
        listener: impl Into<Listener>,
        mode: TlsMode,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        self.runtime(mode)?.serve(listener, shutdown).await
    }

    /// Serves one already accepted connection (for integrators with their
    /// own accept loop) as [`ImapServer::serve`] would: limits, TLS for
    /// [`TlsMode::Implicit`], timeouts. `shutdown` firing makes the session
    /// say `BYE` at its next chance.
    pub async fn serve_connection<IO: Io>(
        &self,
        io: IO,
        peer: Option<SocketAddr>,
        mode: TlsMode,
        shutdown: impl Into<Shutdown>,
    ) -> io::Result<()> {
        self.runtime(mode)?
            .serve_io(io, peer, shutdown.into())
            .await;
        Ok(())
    }

    async fn drive(self, connection: Connection) -> io::Result<()> {
        let Connection {
            stream,
            info,
            shutdown,
            timeouts,
            ..
        } = connection;
        let config = &self.ctx.config;
        let info = ConnectionInfo::new(info.peer, info.tls, info.id);
        if let Some(exporter) = stream.tls_exporter() {
            info.exporter.set(exporter);
        }
        let session = Session::new(self.ctx.clone(), info.clone());
        let greeting = session.greeting().await;
        let service = self.stack(&info, session);
        let mut driver = Driver {
            stream: BufWriter::with_capacity(16 * 1024, Conn::Plain(stream)),
            buf: BytesMut::with_capacity(8 * 1024),
            chunks: Vec::new(),
            decoder: Decoder::new(config.limits),
            opts: EncodeOptions::default(),
            service,
            tls: self.tls.clone(),
            stop: shutdown,
            timeouts,
            handshake_timeout: config.tls_handshake_timeout,
            idle_keepalive: config.idle_keepalive,
            exporter: info.exporter.clone(),
        };
        driver.run(greeting).await
    }
}

impl Protocol for ImapServer {
    fn name(&self) -> &'static str {
        "imap"
    }

    fn refusal(&self, refusal: Refusal) -> Bytes {
        let mut chunks = Vec::new();
        response::encode(
            &StatusResponse::untagged(StatusKind::Bye, None, format!("{refusal}, try later")),
            EncodeOptions::default(),
            &mut chunks,
        );
        chunks.concat().into()
    }

    fn serve(&self, connection: Connection) -> BoxFuture<'static, ()> {
        let server = self.clone();
        Box::pin(async move {
            if let Err(e) = server.drive(connection).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        })
    }
}

/// Plain or TLS, switchable by STARTTLS; either wrapped by COMPRESS.
enum Conn<IO> {
    Plain(IO),
    Tls(Box<tokio_rustls::server::TlsStream<IO>>),
    /// After COMPRESS DEFLATE (RFC 4978), over plain or TLS.
    Deflate(Box<DeflateStream<Conn<IO>>>),
    /// Only during the STARTTLS handshake.
    Upgrading,
}

impl<IO> Conn<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    async fn upgrade(self, acceptor: &TlsAcceptor, timeout: Duration) -> io::Result<Conn<IO>> {
        match self {
            Conn::Plain(io) => {
                let tls = tokio::time::timeout(timeout, acceptor.accept(io))
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                    })??;
                Ok(Conn::Tls(Box::new(tls)))
            }
            _ => Err(io::Error::other("TLS is already active")),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Conn::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
            Conn::Deflate(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
            Conn::Upgrading => Poll::Ready(Err(io::Error::other("connection is upgrading"))),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Conn::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
            Conn::Deflate(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
            Conn::Upgrading => Poll::Ready(Err(io::Error::other("connection is upgrading"))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_flush(cx),
            Conn::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
            Conn::Deflate(io) => Pin::new(io.as_mut()).poll_flush(cx),
            Conn::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Conn::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
            Conn::Deflate(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
            Conn::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// Why a connection loop stopped reading.
enum Input {
    /// New bytes are in the buffer.
    Data,
    /// The client closed the connection.
    Eof,
    /// The server is shutting down.
    Stop,
}

struct Driver {
    stream: BufWriter<Conn<mailroom_server::Stream>>,
    buf: BytesMut,
    /// Reused for the chunks of each response written.
    chunks: Vec<Bytes>,
    decoder: Decoder,
    opts: EncodeOptions,
    service: BoxSession,
    tls: Option<TlsAcceptor>,
    stop: Shutdown,
    /// Idle timeout between commands, read timeout inside one.
    timeouts: TimeoutControl,
    handshake_timeout: Duration,
    /// [`ImapConfig::idle_keepalive`].
    idle_keepalive: Duration,
    /// Where the `tls-exporter` value goes after STARTTLS.
    exporter: ExporterSlot,
}

impl Driver {
    async fn run(&mut self, greeting: Response) -> io::Result<()> {
        self.write(&greeting).await?;
        self.stream.flush().await?;
        let result = self.serve_commands().await;
        let farewell = match result.as_ref().err().and_then(timed_out) {
            // Autologout (RFC 3501 §5.4).
            Some(TimeoutKind::Idle) => Some("autologout: idle for too long"),
            Some(TimeoutKind::Read) => Some("timed out waiting for the rest of the command"),
            // It does not read: nothing more to say (and the stream fails at once).
            Some(_) => None,
            None => None,
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if let Some(text) = farewell {
                    let _ = self
                        .write(&StatusResponse::untagged(StatusKind::Bye, None, text))
                        .await;
                    let _ = self.stream.flush().await;
                    let _ = self.stream.shutdown().await;
                }
                tracing::debug!(error = %e, "connection timed out");
                Ok(())
            }
            other => {
                let _ = self.stream.shutdown().await;
                other
            }
        }
    }

    /// Reads more input, unless the server is stopping.
    async fn fill(&mut self) -> io::Result<Input> {
        if self.stop.is_requested() {
            return Ok(Input::Stop);
        }
        // Part of a command is buffered: the read timeout applies, else idle.
        self.timeouts
            .set_in_command(!self.buf.is_empty() || self.decoder.in_command());
        tokio::select! {
            n = self.stream.read_buf(&mut self.buf) => {
                Ok(if n? == 0 { Input::Eof } else { Input::Data })
            }
            () = self.stop.requested() => Ok(Input::Stop),
        }
    }

    async fn bye(&mut self, text: &str) -> io::Result<()> {
        self.write(&StatusResponse::untagged(StatusKind::Bye, None, text))
            .await?;
        self.stream.flush().await
    }

    async fn serve_commands(&mut self) -> io::Result<()> {
        loop {
            let request = match self.decoder.decode(&mut self.buf) {
                Decoded::Incomplete => {
                    self.stream.flush().await?;
                    match self.fill().await? {
                        Input::Data => continue,
                        Input::Eof => return Ok(()),
                        Input::Stop => return self.bye("server shutting down").await,
                    }
                }
                Decoded::NeedContinuation => {
                    self.write(&Response::Continue("Ready".to_owned())).await?;
                    self.stream.flush().await?;
                    continue;
                }
                Decoded::Error { tag, reason, code } => {
                    self.write(&StatusResponse::bad(tag.as_deref(), code, reason))
                        .await?;
                    continue;
                }
                Decoded::Refused { tag, reason, code } => {
                    self.write(&StatusResponse::no(&tag, code, reason)).await?;
                    continue;
                }
                Decoded::Fatal { tag, reason } => {
                    self.write(&StatusResponse::bad(tag.as_deref(), None, reason))
                        .await?;
                    return self.bye("cannot continue after that").await;
                }
                Decoded::Request(r) => r,
            };
            if !self.handle(request).await? {
                return Ok(());
            }
        }
    }

    /// Runs one command; `false` when the connection must close.
    async fn handle(&mut self, mut request: Request) -> io::Result<bool> {
        loop {
            // Only AUTHENTICATE may need to be called again with the client's
            // continuation line.
            let sasl = match &request.command {
                Command::Authenticate { mechanism, .. } => {
                    Some((request.tag.clone(), mechanism.clone()))
                }
                _ => None,
            };
            let reply = match self.call(request).await {
                Ok(r) => r,
                Err(e) => {
                    if e.downcast_ref::<Elapsed>().is_some() {
                        self.bye("command timed out").await?;
                    } else {
                        tracing::error!(error = %e, "session failed");
                        self.bye("internal server error").await?;
                    }
                    return Ok(false);
                }
            };
            let action = self.write_reply(reply).await?;
            match action {
                Action::Continue => return Ok(true),
                Action::Close => {
                    self.stream.flush().await?;
                    return Ok(false);
                }
                Action::StartTls => {
                    self.start_tls().await?;
                    return Ok(true);
                }
                Action::Idle(handle) => return self.idle(handle).await,
                Action::Compress => {
                    self.start_compression().await?;
                    return Ok(true);
                }
                Action::EnableUtf8 => {
                    // RFC 6855 §3: from the next command on, both ways.
                    self.decoder.set_utf8(true);
                    self.opts.utf8 = true;
                    return Ok(true);
                }
                Action::SaslContinuation => {
                    let Some((tag, mechanism)) = sasl else {
                        return Ok(true);
                    };
                    self.stream.flush().await?;
                    let Some(line) = self.read_line().await? else {
                        return Ok(false);
                    };
                    let Ok(line) = line else {
                        // Ends the session's exchange as a client's `*` would.
                        let cancel = Request {
                            tag: tag.clone(),
                            command: Command::Authenticate {
                                mechanism,
                                initial_response: Some("*".to_owned()),
                            },
                        };
                        if self.call(cancel).await.is_err() {
                            return Ok(false);
                        }
                        self.write(&StatusResponse::bad(
                            Some(&tag),
                            None,
                            "SASL response too long",
                        ))
                        .await?;
                        return Ok(true);
                    };
                    request = Request {
                        tag,
                        command: Command::Authenticate {
                            mechanism,
                            initial_response: Some(String::from_utf8_lossy(&line).into_owned()),
                        },
                    };
                }
            }
        }
    }

    async fn call(&mut self, request: Request) -> Result<Reply, BoxError> {
        self.service.ready().await?.call(request).await
    }

    /// One line for AUTHENTICATE: `None` at EOF or shutdown, `Err` if too long.
    async fn read_line(&mut self) -> io::Result<Option<Result<Bytes, ()>>> {
        loop {
            match self.decoder.decode_line(&mut self.buf) {
                Some(Ok(line)) => return Ok(Some(Ok(line))),
                Some(Err(_)) => return Ok(Some(Err(()))),
                None => match self.fill().await? {
                    Input::Data => {}
                    Input::Eof => return Ok(None),
                    Input::Stop => {
                        self.bye("server shutting down").await?;
                        return Ok(None);
                    }
                },
            }
        }
    }

    async fn start_tls(&mut self) -> io::Result<()> {
        self.stream.flush().await?;
        // Anything the client pipelined after STARTTLS came in plaintext and
        // must not be taken as coming over TLS (command injection, RFC 7817 §3.1).
        self.buf.clear();
        self.decoder = Decoder::new(self.decoder.limits());
        let acceptor = self
            .tls
            .clone()
            .ok_or_else(|| io::Error::other("STARTTLS without a TLS configuration"))?;
        let conn = std::mem::replace(self.stream.get_mut(), Conn::Upgrading);
        let upgraded = conn.upgrade(&acceptor, self.handshake_timeout).await?;
        if let Conn::Tls(tls) = &upgraded
            && let Some(exporter) = mailroom_server::tls_exporter(tls.get_ref().1)
        {
            self.exporter.set(exporter);
        }
        self.stream = BufWriter::with_capacity(16 * 1024, upgraded);
        Ok(())
    }

    /// COMPRESS DEFLATE was answered: the `OK` goes out uncompressed, then
    /// the connection is wrapped; what the client sent after the command
    /// is already compressed and is inflated first.
    async fn start_compression(&mut self) -> io::Result<()> {
        self.stream.flush().await?;
        let already_read = self.buf.split();
        let conn = std::mem::replace(self.stream.get_mut(), Conn::Upgrading);
        *self.stream.get_mut() = Conn::Deflate(Box::new(DeflateStream::new(conn, already_read)));
        Ok(())
    }

    async fn idle(&mut self, mut handle: IdleHandle) -> io::Result<bool> {
        self.stream.flush().await?;
        self.timeouts.set_in_command(false);
        let mut keepalive = (!self.idle_keepalive.is_zero()).then(|| {
            let mut t = tokio::time::interval_at(
                tokio::time::Instant::now() + self.idle_keepalive,
                self.idle_keepalive,
            );
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        loop {
            match self.decoder.decode_line(&mut self.buf) {
                Some(line) => {
                    let ok = matches!(&line, Ok(l) if l.eq_ignore_ascii_case(b"DONE"));
                    for r in handle.done(ok).await {
                        self.write(&r).await?;
                    }
                    return Ok(true);
                }
                None => {
                    if self.stop.is_requested() {
                        self.bye("server shutting down").await?;
                        return Ok(false);
                    }
                    tokio::select! {
                        n = self.stream.read_buf(&mut self.buf) => {
                            if n? == 0 {
                                return Ok(false);
                            }
                        }
                        () = handle.changed() => {
                            for r in handle.updates().await {
                                self.write(&r).await?;
                            }
                            self.stream.flush().await?;
                        }
                        () = self.stop.requested() => {
                            self.bye("server shutting down").await?;
                            return Ok(false);
                        }
                        _ = async {
                            match keepalive.as_mut() {
                                Some(t) => t.tick().await,
                                None => std::future::pending().await,
                            }
                        } => {
                            self.write(&StatusResponse::untagged(StatusKind::Ok, None, "Still here"))
                                .await?;
                            self.stream.flush().await?;
                        }
                    }
                }
            }
        }
    }

    async fn write_reply(&mut self, reply: Reply) -> io::Result<Action> {
        for r in &reply.responses {
            self.write(r).await?;
        }
        if let Some(mut tail) = reply.tail {
            while let Some(r) = tail.next().await {
                self.write(&r).await?;
            }
        }
        Ok(reply.action)
    }

    async fn write(&mut self, response: &Response) -> io::Result<()> {
        let mut chunks = std::mem::take(&mut self.chunks);
        response::encode(response, self.opts, &mut chunks);
        let mut result = Ok(());
        for chunk in chunks.drain(..) {
            if result.is_ok() {
                result = self.stream.write_all(&chunk).await;
            }
        }
        self.chunks = chunks;
        result
    }
}

/// Makes [`Session`]s for a server without running its driver (for tests
/// and integrators with their own transport).
impl ImapServer {
    /// A bare session (no layers) for a connection.
    pub fn session(&self, info: ConnectionInfo) -> Session {
        Session::new(self.ctx.clone(), info)
    }

    /// The layered service the driver would use for a connection.
    pub fn service_for(&self, info: &ConnectionInfo) -> BoxSession {
        self.stack(info, Session::new(self.ctx.clone(), info.clone()))
    }

    fn stack(&self, info: &ConnectionInfo, session: Session) -> BoxSession {
        let mut service = (self.make_stack)(info, session);
        for layer in &self.outer {
            service = layer(service);
        }
        service
    }
}
