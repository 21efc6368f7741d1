//! [`LmtpServer`]: the session factory, the accept loops (TCP and Unix
//! socket) and the connection driver.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use mailroom_core::{Authenticator, Delivery};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::layer::util::Identity;
use tower::{Layer, Service, ServiceExt};

use crate::codec::{Command, LmtpCodec};
use crate::config::LmtpConfig;
use crate::error::LmtpError;
use crate::session::{Action, Peer, Response, Session, Shared};

/// A listening socket LMTP can serve: TCP or a Unix-domain socket.
#[derive(Debug)]
#[non_exhaustive]
pub enum LmtpListener {
    /// TCP (loopback, normally: LMTP is for the local MTA).
    Tcp(TcpListener),
    /// A Unix-domain socket, as Postfix's `lmtp:unix:` transport expects.
    Unix(UnixListener),
}

impl From<TcpListener> for LmtpListener {
    fn from(l: TcpListener) -> LmtpListener {
        LmtpListener::Tcp(l)
    }
}

impl From<UnixListener> for LmtpListener {
    fn from(l: UnixListener) -> LmtpListener {
        LmtpListener::Unix(l)
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl LmtpListener {
    async fn accept(&self) -> std::io::Result<(Box<dyn Io>, Peer)> {
        match self {
            LmtpListener::Tcp(l) => {
                let (s, a) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok((Box::new(s), Peer::Tcp(a)))
            }
            LmtpListener::Unix(l) => {
                let (s, _) = l.accept().await?;
                Ok((Box::new(s), Peer::Unix))
            }
        }
    }
}

/// An LMTP server in front of a delivery pipeline: a `MakeService`-style
/// factory of [`Session`]s (a `tower::Service<Peer>`) and the accept loops
/// that drive them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LmtpServer {
    shared: Arc<Shared>,
}

impl LmtpServer {
    /// A server that resolves recipients with `auth.lookup` and hands
    /// messages to `delivery` (normally `mailroom_core::delivery::Pipeline::standard`).
    pub fn new(
        delivery: Arc<dyn Delivery>,
        auth: Arc<dyn Authenticator>,
        config: LmtpConfig,
    ) -> LmtpServer {
        LmtpServer {
            shared: Arc::new(Shared {
                delivery,
                auth,
                config,
            }),
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
        let layer = Arc::new(layer);
        let limit = Arc::new(Semaphore::new(self.shared.config.max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (mut io, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "lmtp accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        tracing::warn!(?peer, "lmtp connection limit reached");
                        tasks.spawn(async move {
                            let _ = io.write_all(b"421 4.3.2 too many connections; try again later\r\n").await;
                            let _ = io.shutdown().await;
                        });
                        continue;
                    };
                    let server = self.clone();
                    let layer = layer.clone();
                    let stop = stop_rx.clone();
                    tasks.spawn(async move {
                        if let Err(e) = server.drive(io, peer, &*layer, stop).await {
                            tracing::debug!(error = %e, "lmtp connection ended with an error");
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
            tracing::warn!("lmtp shutdown grace period over; aborting open connections");
            tasks.shutdown().await;
        }
        Ok(())
    }

    /// Serves one already-accepted connection over any byte stream.
    pub async fn serve_connection<IO>(&self, io: IO, peer: Peer) -> Result<(), LmtpError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (_tx, rx) = watch::channel(false);
        self.drive(io, peer, &Identity::new(), rx).await
    }

    async fn drive<IO, L>(
        &self,
        mut io: IO,
        peer: Peer,
        layer: &L,
        mut stop: watch::Receiver<bool>,
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
            if *stop.borrow() && !codec.in_data() {
                let _ = io.write_all(b"421 4.3.2 server shutting down\r\n").await;
                let _ = io.shutdown().await;
                return Ok(());
            }
            input.reserve(16 * 1024);
            tokio::select! {
                read = tokio::time::timeout(config.idle_timeout, io.read_buf(&mut input)) => match read {
                    Err(_) => {
                        let _ = io.write_all(b"421 4.4.2 idle for too long; closing connection\r\n").await;
                        let _ = io.shutdown().await;
                        return Ok(());
                    }
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e.into()),
                },
                // A message being received is finished first (nothing acknowledged is lost,
                // and the MTA is not left guessing); the grace period bounds the wait.
                _ = stop.changed(), if !codec.in_data() => {}
            }
        }
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
