//! # mailroom-server: one runtime for every listener
//!
//! Every Mailroom listener (IMAP, POP3, LMTP, the metrics endpoint,
//! mailroomd's admin socket) runs on this crate's [`Server`]: one accept
//! loop for TCP and Unix sockets that brings everything about sockets,
//! while a [`Protocol`] brings its codec and session. What the runtime
//! does for each connection, in order:
//!
//! 1. **accept** (TCP with `TCP_NODELAY` and [`QuickAck`], or a Unix socket
//!    with the peer's uid); accept errors are logged and retried;
//! 2. **PROXY protocol** ([`proxy`]), if the listener enables it: the
//!    connection must come from a trusted address and start with a v1 or
//!    v2 header, read within the read timeout; its source address then
//!    stands for the client. Anything else is refused and logged. At most
//!    [`MAX_AWAITING_HEADER`] connections may be sending their header at
//!    once;
//! 3. **limits** ([`limit`]): a total and a per-address count (the real
//!    address, after PROXY). A connection over a limit gets the
//!    protocol's own refusal ([`Protocol::refusal`]: IMAP `* BYE`, POP3
//!    `-ERR [SYS/TEMP]`, LMTP `421 4.3.2`) and is closed; on an
//!    implicit-TLS listener the refusal is sent *inside* TLS, after the
//!    handshake, because a TLS client cannot read plaintext. At most
//!    [`MAX_REFUSING`] refusals run at once;
//! 4. **TLS** on implicit-TLS listeners, bounded by the handshake timeout;
//! 5. **timeouts** ([`timeout`]): idle (waiting for a command), read (in
//!    the middle of one) and write (the peer stopped reading) on the
//!    socket under TLS, the same for every protocol; a write timeout
//!    drops the connection and with it whatever its session held;
//! 6. **serve**: [`Protocol::serve`] gets a [`Connection`] (the stream,
//!    [`ConnectionInfo`], a [`Shutdown`] signal, the [`TimeoutControl`]);
//! 7. **graceful shutdown**: when [`Server::serve`]'s shutdown future
//!    completes the listener is closed, every connection's [`Shutdown`]
//!    fires (a protocol finishes the command in flight and says goodbye in
//!    its words), and after the grace period what is left is closed.
//!
//! Beside the accept loop, [`throttle`] is the failed-login throttle as a
//! tower layer, written once for every protocol with logins (IMAP, POP3):
//! a protocol only says which of its commands are login attempts.
//!
//! STARTTLS/STLS stay in the protocols: they wrap the [`Stream`] in TLS
//! like any byte stream, and the timeouts stay underneath.
//!
//! # Example
//!
//! An echo protocol on a loopback port, with a per-address limit of one:
//!
//! ```
//! use bytes::Bytes;
//! use futures::future::BoxFuture;
//! use mailroom_server::limit::{ConnectionLimits, Refusal};
//! use mailroom_server::{Connection, Protocol, Server};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! struct Echo;
//!
//! impl Protocol for Echo {
//!     fn name(&self) -> &'static str {
//!         "echo"
//!     }
//!     fn refusal(&self, why: Refusal) -> Bytes {
//!         Bytes::from(format!("-BUSY {why}\r\n"))
//!     }
//!     fn serve(&self, conn: Connection) -> BoxFuture<'static, ()> {
//!         let Connection { stream, mut shutdown, .. } = conn;
//!         Box::pin(async move {
//!             let mut lines = BufReader::new(stream);
//!             let mut line = String::new();
//!             loop {
//!                 line.clear();
//!                 tokio::select! {
//!                     n = lines.read_line(&mut line) => match n {
//!                         Ok(0) | Err(_) => return,
//!                         Ok(_) => { let _ = lines.get_mut().write_all(line.as_bytes()).await; }
//!                     },
//!                     () = shutdown.requested() => {
//!                         let _ = lines.get_mut().write_all(b"-BYE\r\n").await;
//!                         return;
//!                     }
//!                 }
//!             }
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = Server::new(Echo).limits(ConnectionLimits::new(100, 1));
//! let task = tokio::spawn(server.serve(listener, async { let _ = stopped.await; }));
//!
//! let first = tokio::net::TcpStream::connect(addr).await.unwrap();
//! let mut first = BufReader::new(first);
//! first.get_mut().write_all(b"hello\r\n").await.unwrap();
//! let mut line = String::new();
//! first.read_line(&mut line).await.unwrap();
//! assert_eq!(line, "hello\r\n");
//!
//! // a second connection from the same address is refused in Echo's words
//! let second = tokio::net::TcpStream::connect(addr).await.unwrap();
//! let mut second = BufReader::new(second);
//! line.clear();
//! second.read_line(&mut line).await.unwrap();
//! assert_eq!(line, "-BUSY too many connections from your address\r\n");
//!
//! // shutdown: the open connection is told, then the server returns
//! stop.send(()).unwrap();
//! line.clear();
//! first.read_line(&mut line).await.unwrap();
//! assert_eq!(line, "-BYE\r\n");
//! task.await.unwrap().unwrap();
//! # });
//! ```
//!
//! # Dependencies
//!
//! - `ipnet`: the trusted proxy networks (`10.0.0.0/8`) are parsed and
//!   matched with it, a small, widely used crate, rather than by hand.
//! - `mailroom-core`: the [`LoginFailures`](mailroom_core::throttle::LoginFailures)
//!   table the throttle counts in; `tower`: the `Service`/`Layer` traits.
//! - tokio, tokio-rustls, bytes, futures, tracing, thiserror: as in every
//!   Mailroom crate.
//!
//! # Architecture notes
//!
//! A protocol crate depends on `mailroom-core` and this crate only. It
//! implements [`Protocol`] (usually on its `...Server` type) and keeps its
//! own convenience `serve` that builds a [`Server`] from its config, so
//! an embedder can run it in a few lines. mailroomd builds the
//! [`Server`]s itself, one per configured listener, sharing one
//! [`ConnectionLimits`](limit::ConnectionLimits) per protocol and setting
//! PROXY and timeouts per listener.

mod server;
mod stream;

pub mod limit;
pub mod proxy;
pub mod throttle;
pub mod timeout;

pub use server::{
    Connection, ConnectionInfo, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP, Listener,
    MAX_AWAITING_HEADER, MAX_REFUSING, Protocol, Server, Shutdown, ShutdownTrigger,
};
pub use stream::{Io, QuickAck, Stream, tls_exporter};
pub use timeout::{TimeoutControl, Timeouts};
