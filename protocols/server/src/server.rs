//! [`Server`]: the accept loop every listener runs.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;

use crate::limit::{Admission, ConnectionLimits, Refusal};
use crate::proxy::{self, Decoded, MAX_HEADER, ProxyError, ProxyProtocol};
use crate::stream::{Io, QuickAck, Socket, Stream, Transport};
use crate::timeout::{TimedIo, TimeoutControl, Timeouts};

/// Connections being refused at once (a TLS handshake and one line each);
/// past this a connection over the limit is closed without a word, so a
/// flood cannot make the server spend its CPU on handshakes it will not
/// serve.
pub const MAX_REFUSING: usize = 64;

/// Connections on a PROXY listener that may be sending their header at
/// once (each has the read timeout to do so); past this a new connection is
/// closed at once, so a proxy that opens connections and sends nothing
/// cannot pile them up before the connection limits see them.
pub const MAX_AWAITING_HEADER: usize = 1024;

/// A protocol the runtime serves: IMAP, POP3, LMTP, the metrics endpoint,
/// the admin socket. It brings its codec and session; the runtime brings
/// everything about sockets.
pub trait Protocol: Send + Sync + 'static {
    /// A short name for logs (`"imap"`).
    fn name(&self) -> &'static str;

    /// What a connection the runtime refuses is sent before it is closed,
    /// in the protocol's own words (IMAP `* BYE ...`, POP3
    /// `-ERR [SYS/TEMP] ...`, LMTP `421 4.3.2 ...`). On implicit-TLS
    /// listeners it is sent inside TLS.
    fn refusal(&self, refusal: Refusal) -> Bytes;

    /// Serves one admitted connection until it ends. The connection's slot
    /// is held until the future completes.
    fn serve(&self, connection: Connection) -> BoxFuture<'static, ()>;
}

/// Where a connection comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// A number unique within the process, for logs.
    pub id: u64,
    /// The client's address: from the PROXY header on a proxied
    /// listener, else the socket's peer; `None` on a Unix socket or when
    /// nobody knows it.
    pub peer: Option<SocketAddr>,
    /// The proxy's own address when the connection came through one.
    pub proxy: Option<SocketAddr>,
    /// The address the client connected to (on the proxy, if proxied).
    pub local: Option<SocketAddr>,
    /// The runtime did TLS (an implicit-TLS listener).
    pub tls: bool,
    /// On a Unix socket: the connecting process's user id (`SO_PEERCRED`).
    pub unix_uid: Option<u32>,
}

impl ConnectionInfo {
    /// What is known of a connection: an id is assigned.
    pub fn new(peer: Option<SocketAddr>) -> ConnectionInfo {
        ConnectionInfo {
            id: next_id(),
            peer,
            proxy: None,
            local: None,
            tls: false,
            unix_uid: None,
        }
    }
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The server is shutting down: a protocol ends a connection at its next
/// chance (between commands, with its goodbye). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and its trigger (for integrators with their own loop).
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// A signal that never fires.
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        // Keep the channel open for ever: a dropped sender would read as "stop".
        std::mem::forget(tx);
        Shutdown(rx)
    }

    /// Whether shutdown has been requested.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when shutdown is requested (at once if it was). Cancel
    /// safe: use it in `select!`.
    pub async fn requested(&mut self) {
        // A closed channel means the server is gone: stop as well.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

impl From<watch::Receiver<bool>> for Shutdown {
    /// Shutdown is requested when the channel turns `true` (or its sender
    /// is dropped).
    fn from(rx: watch::Receiver<bool>) -> Shutdown {
        Shutdown(rx)
    }
}

/// Requests shutdown of the connections holding its [`Shutdown`]s.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// Requests the shutdown.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

/// One admitted connection, handed to [`Protocol::serve`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Connection {
    /// Its bytes (inside TLS on implicit-TLS listeners).
    pub stream: Stream,
    /// Where it comes from.
    pub info: ConnectionInfo,
    /// Fires when the server shuts down.
    pub shutdown: Shutdown,
    /// Says whether the idle or the read timeout applies.
    pub timeouts: TimeoutControl,
}

/// A listening socket: TCP or Unix.
#[derive(Debug)]
#[non_exhaustive]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix-domain socket.
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Listener {
        Listener::Tcp(l)
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Listener {
        Listener::Unix(l)
    }
}

impl Listener {
    async fn accept(
        &self,
    ) -> io::Result<(
        Transport,
        Option<SocketAddr>,
        Option<SocketAddr>,
        Option<u32>,
    )> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                let _ = s.set_nodelay(true);
                let local = s.local_addr().ok();
                Ok((Transport::Tcp(QuickAck::new(s)), Some(peer), local, None))
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept().await?;
                let uid = s.peer_cred().ok().map(|c| c.uid());
                Ok((Transport::Unix(s), None, None, uid))
            }
        }
    }
}

#[derive(Clone)]
struct Config {
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    proxy: Option<ProxyProtocol>,
    timeouts: Timeouts,
    shutdown_grace: Duration,
}

/// The accept loop of one protocol's listeners, with its limits,
/// timeouts, TLS and PROXY settings. Build one per listener (they may
/// share [`ConnectionLimits`]); cheap to clone.
///
/// ```
/// # use std::sync::Arc;
/// use mailroom_server::{Connection, Protocol, Server, limit::{ConnectionLimits, Refusal}};
/// use bytes::Bytes;
/// use futures::future::BoxFuture;
/// use tokio::io::AsyncWriteExt;
///
/// struct Hello;
/// impl Protocol for Hello {
///     fn name(&self) -> &'static str { "hello" }
///     fn refusal(&self, why: Refusal) -> Bytes { format!("busy: {why}\r\n").into() }
///     fn serve(&self, mut c: Connection) -> BoxFuture<'static, ()> {
///         Box::pin(async move { let _ = c.stream.write_all(b"hello\r\n").await; })
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = Server::new(Hello).limits(ConnectionLimits::new(100, 10));
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let task = tokio::spawn(server.serve(listener, async { let _ = stopped.await; }));
/// let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
/// let mut answer = String::new();
/// tokio::io::AsyncReadExt::read_to_string(&mut client, &mut answer).await.unwrap();
/// assert_eq!(answer, "hello\r\n");
/// stop.send(()).unwrap();
/// task.await.unwrap().unwrap();
/// # });
/// ```
pub struct Server<P> {
    protocol: Arc<P>,
    config: Arc<Config>,
    limits: ConnectionLimits,
    refusing: Arc<Semaphore>,
    /// Connections still sending their PROXY header.
    awaiting_header: Arc<Semaphore>,
}

impl<P> Clone for Server<P> {
    fn clone(&self) -> Server<P> {
        Server {
            protocol: self.protocol.clone(),
            config: self.config.clone(),
            limits: self.limits.clone(),
            refusing: self.refusing.clone(),
            awaiting_header: self.awaiting_header.clone(),
        }
    }
}

impl<P: Protocol> fmt::Debug for Server<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("protocol", &self.protocol.name())
            .field("tls", &self.config.tls.is_some())
            .field("proxy", &self.config.proxy)
            .field("timeouts", &self.config.timeouts)
            .field("limits", &self.limits)
            .finish()
    }
}

/// [`Server::limits`] by default: 1024 connections in total.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// No per-address limit by default (`usize::MAX`): one host may be a
/// whole office behind NAT, a load balancer without the PROXY protocol,
/// or a benchmark. Set one where clients are known to be spread out.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = usize::MAX;

impl<P: Protocol> Server<P> {
    /// A plaintext listener for `protocol` with the default limits,
    /// [`Timeouts::default`], a 30 s TLS handshake timeout and a 5 s
    /// shutdown grace period.
    pub fn new(protocol: P) -> Server<P> {
        Server::from_arc(Arc::new(protocol))
    }

    /// Like [`Server::new`], for a protocol shared with other listeners.
    pub fn from_arc(protocol: Arc<P>) -> Server<P> {
        Server {
            protocol,
            config: Arc::new(Config {
                tls: None,
                handshake_timeout: Duration::from_secs(30),
                proxy: None,
                timeouts: Timeouts::default(),
                shutdown_grace: Duration::from_secs(5),
            }),
            limits: ConnectionLimits::new(DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            awaiting_header: Arc::new(Semaphore::new(MAX_AWAITING_HEADER)),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The connection limits (share one value between listeners to bound
    /// them together).
    pub fn limits(mut self, limits: ConnectionLimits) -> Server<P> {
        self.limits = limits;
        self
    }

    /// TLS from the first byte (IMAPS 993, POP3S 995).
    pub fn implicit_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Server<P> {
        self.config_mut().tls = Some(TlsAcceptor::from(tls));
        self
    }

    /// How long a TLS handshake may take.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Server<P> {
        self.config_mut().handshake_timeout = timeout;
        self
    }

    /// Expects a PROXY header (v1 or v2) on every connection, from the
    /// trusted addresses only.
    pub fn proxy_protocol(mut self, proxy: ProxyProtocol) -> Server<P> {
        self.config_mut().proxy = Some(proxy);
        self
    }

    /// The idle, read and write timeouts.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Server<P> {
        self.config_mut().timeouts = timeouts;
        self
    }

    /// How long a shutdown waits for open connections before closing them.
    pub fn shutdown_grace(mut self, grace: Duration) -> Server<P> {
        self.config_mut().shutdown_grace = grace;
        self
    }

    /// The protocol.
    pub fn protocol(&self) -> &Arc<P> {
        &self.protocol
    }

    /// The connection limits in use.
    pub fn connection_limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Accepts connections until `shutdown` completes; then stops
    /// accepting, tells every connection to finish (its [`Shutdown`]
    /// fires), waits up to the grace period and closes what is left.
    ///
    /// # Errors
    ///
    /// Only if the listener is unusable from the start (implicit TLS and
    /// PROXY are configured before, so nothing else can fail here); accept
    /// errors (out of file descriptors) are logged and retried.
    pub async fn serve(
        self,
        listener: impl Into<Listener>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let listener = listener.into();
        let (trigger, stop) = Shutdown::new();
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let name = self.protocol.name();
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (transport, peer, local, uid) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(protocol = name, error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let server = self.clone();
                    let stop = stop.clone();
                    tasks.spawn(async move {
                        let mut info = ConnectionInfo::new(peer);
                        info.local = local;
                        info.unix_uid = uid;
                        server.connection(Socket::new(transport), info, stop).await;
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(listener);
        trigger.trigger();
        let grace = self.config.shutdown_grace;
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::info!(
                protocol = name,
                remaining = tasks.len(),
                "shutdown grace period over; closing connections"
            );
            tasks.shutdown().await;
        }
        Ok(())
    }

    /// Serves one connection accepted elsewhere (a socket pair in a test,
    /// an integrator's own accept loop) exactly as [`Server::serve`] would
    /// serve it: PROXY header, limits, TLS, timeouts. `peer` is the
    /// socket's peer address, if any.
    pub async fn serve_io(&self, io: impl Io, peer: Option<SocketAddr>, shutdown: Shutdown) {
        let info = ConnectionInfo::new(peer);
        self.connection(Socket::new(Transport::Other(Box::new(io))), info, shutdown)
            .await;
    }

    async fn connection(&self, mut socket: Socket, mut info: ConnectionInfo, shutdown: Shutdown) {
        let name = self.protocol.name();
        // `peer` is the socket's; `client` the address from a PROXY header.
        let span = tracing::info_span!(
            "connection",
            protocol = name,
            conn = info.id,
            peer = ?info.peer,
            client = tracing::field::Empty,
        );
        let recorder = span.clone();
        async move {
            if let Some(proxy) = &self.config.proxy {
                // Unix sockets are trusted: the file's mode says who may connect.
                let trusted = info.peer.is_none_or(|p| proxy.trusts(p.ip()));
                if !trusted {
                    tracing::warn!(
                        "connection from an untrusted address on a PROXY listener refused"
                    );
                    return;
                }
                let Ok(_waiting) = self.awaiting_header.clone().try_acquire_owned() else {
                    tracing::warn!("too many connections still sending a PROXY header; closed");
                    return;
                };
                match tokio::time::timeout(
                    self.config.timeouts.read,
                    read_proxy_header(&mut socket),
                )
                .await
                {
                    Ok(Ok(header)) => {
                        info.proxy = info.peer;
                        if let Some(source) = header.source() {
                            info.peer = Some(source);
                            info.local = header.destination();
                            recorder.record("client", tracing::field::display(source));
                        }
                        tracing::debug!(version = header.version(), "PROXY header");
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "bad PROXY header; connection refused");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!("no PROXY header in time; connection refused");
                        return;
                    }
                }
            }
            let admission = self.limits.try_admit(info.peer.map(|p| p.ip()));
            let control = TimeoutControl::default();
            let io = TimedIo::new(socket, self.config.timeouts, control.clone());
            match admission {
                Ok(admission) => self.admitted(io, info, shutdown, control, admission).await,
                Err(refusal) => self.refuse(io, &info, refusal).await,
            }
        }
        .instrument(span)
        .await;
    }

    async fn handshake(&self, io: TimedIo<Socket>) -> Option<Stream> {
        let Some(acceptor) = &self.config.tls else {
            return Some(Stream::plain(io));
        };
        match tokio::time::timeout(self.config.handshake_timeout, acceptor.accept(io)).await {
            Ok(Ok(tls)) => Some(Stream::tls(tls)),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                None
            }
        }
    }

    async fn admitted(
        &self,
        io: TimedIo<Socket>,
        mut info: ConnectionInfo,
        shutdown: Shutdown,
        timeouts: TimeoutControl,
        admission: Admission,
    ) {
        let Some(stream) = self.handshake(io).await else {
            return;
        };
        info.tls = stream.is_tls();
        tracing::debug!("connection opened");
        let connection = Connection {
            stream,
            info,
            shutdown,
            timeouts,
        };
        self.protocol.serve(connection).await;
        drop(admission);
        tracing::debug!("connection closed");
    }

    async fn refuse(&self, io: TimedIo<Socket>, info: &ConnectionInfo, refusal: Refusal) {
        tracing::warn!(client = ?info.peer, "{refusal}; connection refused");
        let Ok(_permit) = self.refusing.clone().try_acquire_owned() else {
            return;
        };
        let Some(mut stream) = self.handshake(io).await else {
            return;
        };
        let words = self.protocol.refusal(refusal);
        let _ = stream.write_all(&words).await;
        let _ = stream.shutdown().await;
    }
}

/// Reads exactly one PROXY header; the bytes read past it are put back.
async fn read_proxy_header(socket: &mut Socket) -> Result<proxy::ProxyHeader, ProxyError> {
    let mut buf = BytesMut::with_capacity(256);
    loop {
        match proxy::decode(&buf)? {
            Decoded::Complete { header, length } => {
                let rest = buf.split_off(length).freeze();
                socket.unread(rest);
                return Ok(header);
            }
            Decoded::Incomplete => {
                let room = MAX_HEADER.saturating_sub(buf.len()).max(1);
                buf.reserve(room.min(1024));
                let mut limited = (&mut *socket).take(u64::try_from(room).unwrap_or(u64::MAX));
                match limited.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return Err(ProxyError::Missing),
                    Ok(_) => {}
                }
            }
        }
    }
}
