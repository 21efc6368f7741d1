//! [`LmtpServer`]: the session factory and the connection driver the
//! [`mailroom_server`] runtime runs for each connection (TCP or Unix
//! socket).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use mailroom_core::{Authenticator, Delivery};
use mailroom_server::limit::{ConnectionLimits, Refusal};
use mailroom_server::timeout::{TimeoutKind, timed_out};
use mailroom_server::{Connection, Io, Protocol, Server, Shutdown, TimeoutControl, Timeouts};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tower::layer::util::Identity;
use tower::{Layer, Service, ServiceExt};

use crate::codec::{Command, LmtpCodec};
use crate::config::LmtpConfig;
use crate::error::LmtpError;
use crate::session::{Action, Peer, Response, Session, Shared};

/// A listening socket LMTP can serve: TCP or a Unix-domain socket (as
/// Postfix's `lmtp:unix:` transport expects); the runtime's listener.
pub use mailroom_server::Listener as LmtpListener;

/// An LMTP server in front of a delivery pipeline: a `MakeService`-style
/// factory of [`Session`]s (a `tower::Service<Peer>`) and the driver the
/// runtime runs for each connection. Cheap to clone; clones share the
/// connection limits.
#[derive(Debug, Clone)]
pub struct LmtpServer {
    shared: Arc<Shared>,
    limits: ConnectionLimits,
}

impl LmtpServer {
    /// A server that resolves recipients with `auth.lookup` and hands
    /// messages to `delivery` (normally `mailroom_core::delivery::Pipeline::standard`).
    pub fn new(
        delivery: Arc<dyn Delivery>,
        auth: Arc<dyn Authenticator>,
        config: LmtpConfig,
    ) -> LmtpServer {
        let limits = ConnectionLimits::new(config.max_connections, config.max_connections_per_ip);
        LmtpServer {
            shared: Arc::new(Shared {
                delivery,
                auth,
                config,
            }),
            limits,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LmtpConfig {
        &self.shared.config
    }

    /// A new session for one connection (what the `Service` impl returns).
    pub fn session(&self, peer: Peer) -> Session {
        Session::new(self.shared.clone(), peer)
    }

    /// The connection limits every listener of this server shares
    /// ([`LmtpConfig::max_connections`], [`LmtpConfig::max_connections_per_ip`]).
    pub fn connection_limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Serves TCP connections until `shutdown` completes.
    pub async fn serve_tcp(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), LmtpError> {
        self.serve_with(listener.into(), Identity::new(), shutdown)
            .await
    }

    /// Serves Unix-socket connections until `shutdown` completes.
    pub async fn serve_unix(
        &self,
        listener: UnixListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), LmtpError> {
        self.serve_with(listener.into(), Identity::new(), shutdown)
            .await
    }

    /// The runtime for one listener, configured from [`LmtpConfig`] (the
    /// shared limits, the idle, read and write timeouts, the shutdown grace
    /// period), with every session wrapped in `layer`. Add what the config
    /// does not say (the PROXY protocol) and call [`Server::serve`].
    pub fn runtime<L>(&self, layer: L) -> Server<LmtpProtocol<L>>
    where
        L: Layer<Session> + Send + Sync + 'static,
        L::Service: Service<Command, Response = Response> + Send + 'static,
        <L::Service as Service<Command>>::Future: Send,
        <L::Service as Service<Command>>::Error:
            Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let config = &self.shared.config;
        Server::new(LmtpProtocol {
            server: self.clone(),
            layer: Arc::new(layer),
        })
        .limits(self.limits.clone())
        .timeouts(Timeouts {
            idle: config.idle_timeout,
            read: config.read_timeout,
            write: config.write_timeout,
        })
        .shutdown_grace(config.shutdown_grace)
    }

    /// Serves `listener` with every session wrapped in `layer`, until
    /// `shutdown` completes; then open connections finish their current
    /// transaction's command and get `421`, for up to
    /// [`LmtpConfig::shutdown_grace`].
    pub async fn serve_with<L>(
        &self,
        listener: LmtpListener,
        layer: L,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), LmtpError>
    where
        L: Layer<Session> + Send + Sync + 'static,
        L::Service: Service<Command, Response = Response> + Send + 'static,
        <L::Service as Service<Command>>::Future: Send,
        <L::Service as Service<Command>>::Error:
            Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        self.runtime(layer).serve(listener, shutdown).await?;
        Ok(())
    }

    /// Serves one already-accepted connection over any byte stream, as
    /// [`LmtpServer::serve_tcp`] would (limits, timeouts).
    pub async fn serve_connection<IO: Io>(&self, io: IO, peer: Peer) -> Result<(), LmtpError> {
        let addr = match peer {
            Peer::Tcp(a) => Some(a),
            _ => None,
        };
        self.runtime(Identity::new())
            .serve_io(io, addr, Shutdown::never())
            .await;
        Ok(())
    }

    async fn drive<IO, L>(
        &self,
        mut io: IO,
        peer: Peer,
        layer: &L,
        mut stop: Shutdown,
        timeouts: TimeoutControl,
    ) -> Result<(), LmtpError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
        L: Layer<Session>,
        L::Service: Service<Command, Response = Response>,
        <L::Service as Service<Command>>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let config = &self.shared.config;
        let mut svc = layer.layer(self.session(peer));
        let mut codec = LmtpCodec::new(config.max_line_length, config.max_message_size);
        let mut input = BytesMut::with_capacity(8192);
        let mut out = BytesMut::with_capacity(1024);
        Session::greeting(config).encode(&mut out);
        loop {
            while let Some(command) = codec.decode(&mut input) {
                let ends_message = matches!(command, Command::Message(_));
                let response = match svc.ready().await {
                    Ok(ready) => ready.call(command).await,
                    Err(e) => Err(e),
                };
                let response = match response {
                    Ok(r) => r,
                    Err(e) => {
                        let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                        tracing::warn!(error = %e, "lmtp session failed");
                        out.extend_from_slice(b"421 4.3.0 internal server error\r\n");
                        let _ = io.write_all(&out).await;
                        let _ = io.shutdown().await;
                        return Err(LmtpError::Service(e));
                    }
                };
                response.encode(&mut out);
                // A message's replies go out as soon as it is delivered,
                // before the commands pipelined behind it are answered (the
                // client may be waiting for them alone).
                if ends_message && response.action == Action::None {
                    io.write_all(&out).await?;
                    io.flush().await?;
                    out.clear();
                }
                match response.action {
                    Action::ReceiveData => codec.start_data(),
                    Action::Close => {
                        io.write_all(&out).await?;
                        let _ = io.shutdown().await;
                        return Ok(());
                    }
                    _ => {}
                }
            }
            // Pipelined commands were answered together; flush before waiting.
            if !out.is_empty() {
                io.write_all(&out).await?;
                io.flush().await?;
                out.clear();
            }
            if stop.is_requested() && !codec.in_data() {
                let _ = io.write_all(b"421 4.3.2 server shutting down\r\n").await;
                let _ = io.shutdown().await;
                return Ok(());
            }
            input.reserve(16 * 1024);
            // In a message or half a command: the read timeout, else idle.
            timeouts.set_in_command(codec.in_data() || !input.is_empty());
            let in_data = codec.in_data();
            tokio::select! {
                read = io.read_buf(&mut input) => match read {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => match timed_out(&e) {
                        Some(TimeoutKind::Idle | TimeoutKind::Read) => {
                            let _ = io.write_all(b"421 4.4.2 idle for too long; closing connection\r\n").await;
                            let _ = io.shutdown().await;
                            return Ok(());
                        }
                        _ => return Err(e.into()),
                    },
                },
                // A message being received is finished first (nothing acknowledged is lost,
                // and the MTA is not left guessing); the grace period bounds the wait.
                () = stop.requested(), if !in_data => {}
            }
        }
    }
}

/// An [`LmtpServer`] with the layer around its sessions: the [`Protocol`]
/// the runtime serves (built by [`LmtpServer::runtime`]).
pub struct LmtpProtocol<L> {
    server: LmtpServer,
    layer: Arc<L>,
}

impl<L> std::fmt::Debug for LmtpProtocol<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmtpProtocol")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl<L> Protocol for LmtpProtocol<L>
where
    L: Layer<Session> + Send + Sync + 'static,
    L::Service: Service<Command, Response = Response> + Send + 'static,
    <L::Service as Service<Command>>::Future: Send,
    <L::Service as Service<Command>>::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    fn name(&self) -> &'static str {
        "lmtp"
    }

    fn refusal(&self, refusal: Refusal) -> Bytes {
        Bytes::from(format!("421 4.3.2 {refusal}; try again later\r\n"))
    }

    fn serve(&self, connection: Connection) -> BoxFuture<'static, ()> {
        let server = self.server.clone();
        let layer = self.layer.clone();
        Box::pin(async move {
            let Connection {
                stream,
                info,
                shutdown,
                timeouts,
                ..
            } = connection;
            let peer = match info.peer {
                Some(a) => Peer::Tcp(a),
                None if info.unix_uid.is_some() => Peer::Unix,
                None => Peer::Unknown,
            };
            if let Err(e) = server
                .drive(stream, peer, &*layer, shutdown, timeouts)
                .await
            {
                tracing::debug!(error = %e, "lmtp connection ended with an error");
            }
        })
    }
}

impl Service<Peer> for LmtpServer {
    type Response = Session;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Session, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, peer: Peer) -> Self::Future {
        std::future::ready(Ok(self.session(peer)))
    }
}
