//! # mailroom-imap
//!
//! An IMAP4rev1 server (RFC 3501), also IMAP4rev2 (RFC 9051) per session
//! after `ENABLE IMAP4rev2`, with the extensions modern clients rely
//! on (LITERAL+ or LITERAL-, SASL-IR, ID, ENABLE, IDLE, NAMESPACE, UIDPLUS, MOVE,
//! UNSELECT, CHILDREN, SPECIAL-USE, LIST-EXTENDED, LIST-STATUS, CONDSTORE,
//! QRESYNC, ESEARCH, ACL, QUOTA, STATUS=SIZE, UTF8=ACCEPT, APPENDLIMIT, WITHIN,
//! SORT, SORT=DISPLAY, ESORT, CONTEXT=SEARCH, CONTEXT=SORT, I18NLEVEL=1, THREAD=ORDEREDSUBJECT, THREAD=REFERENCES,
//! MULTIAPPEND, CATENATE, BINARY, REPLACE, COMPRESS=DEFLATE, NOTIFY, UIDONLY), as a tower service over any
//! [`mailroom_core::Storage`]. It runs inside your tokio runtime.
//!
//! ## Embedding
//!
//! Give [`ImapServer::new`] a store, an optional quota policy and an
//! [`Authenticator`](mailroom_core::Authenticator), then serve a listener
//! until a shutdown future resolves (sessions get `* BYE`):
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_core::{Authenticator, Credentials, Error, Principal, Result};
//! use mailroom_imap::{ImapConfig, ImapServer, TlsMode};
//! use mailroom_store_memory::MemoryStore;
//! use tokio::io::AsyncBufReadExt;
//!
//! #[derive(Debug)]
//! struct OneUser;
//!
//! #[async_trait::async_trait]
//! impl Authenticator for OneUser {
//!     async fn authenticate(&self, c: &Credentials) -> Result<Principal> {
//!         if c.authcid == "demo@example.com" && c.password == "demo" {
//!             Ok(Principal::user("demo@example.com"))
//!         } else {
//!             Err(Error::AuthFailed)
//!         }
//!     }
//!     async fn lookup(&self, user: &str) -> Result<Option<Principal>> {
//!         Ok(None)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let store = Arc::new(MemoryStore::new());
//! let config = ImapConfig { allow_plaintext_auth: true, ..ImapConfig::default() };
//! let server = ImapServer::new(store.clone(), Some(store), Arc::new(OneUser), config);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let serving = tokio::spawn(server.serve(listener, TlsMode::Plain, async {
//!     let _ = stopped.await;
//! }));
//!
//! let mut client = tokio::io::BufReader::new(tokio::net::TcpStream::connect(addr).await?);
//! let mut greeting = String::new();
//! client.read_line(&mut greeting).await?;
//! assert!(greeting.starts_with("* OK [CAPABILITY IMAP4rev1"));
//!
//! stop.send(()).ok();
//! serving.await.expect("server task")?;
//! # Ok(())
//! # }
//! ```
//!
//! Add TLS with [`ImapServer::with_tls`] (STARTTLS on [`TlsMode::Plain`]
//! listeners, or [`TlsMode::Implicit`] for port 993). `examples/embed.rs`
//! is the same program as a binary.
//!
//! ## Architecture
//!
//! As `DESIGN.md` lays out, the protocol has three parts:
//!
//! 1. the codec: [`parser`] turns bytes into [`command::Request`]s,
//!    incrementally and within [`parser::Limits`]; [`response`] encodes
//!    [`response::Response`]s, message bodies as shared `Bytes`;
//! 2. the [`session`]: a [`tower::Service`] per connection holding the IMAP
//!    state (one file per command under [`session::op`]); it reaches the store
//!    only through [`mailroom_core::access::MailAccess`], where ACLs and
//!    quotas are enforced;
//! 3. the driver in [`server`]: runs the codec, calls the session through
//!    a stack of tower layers and writes replies, including unsolicited
//!    updates during IDLE. Accepting connections, limits, implicit TLS,
//!    the PROXY protocol, the idle/read/write timeouts and graceful
//!    shutdown are the [`mailroom_server`] runtime's, shared with every
//!    other protocol: [`ImapServer`] implements its `Protocol`.
//!
//! The cross-cutting behaviour is in [`layer`]: command tracing, the
//! autologout and command timeouts, a throttle on failed logins, and
//! metrics ([`layer::metrics::MetricsLayer`], into a registry shared with
//! the other protocols and rendered for Prometheus). The default stack
//! applies all but the metrics, plus tower's `RateLimitLayer` per
//! connection ([`ImapConfig::commands_per_second`]: a flood of commands is
//! slowed, never refused). [`ImapServer::layer`] adds a layer around it
//! (the metrics, for one); [`ImapServer::with_login_failures`] makes its
//! login throttle count in a table shared with POP3;
//! [`ImapServer::with_stack`] builds your own stack per connection (see
//! [`layer`] for an example).
//!
//! ## Dependencies and why
//!
//! - `mailroom-core`: the traits and vocabulary every Mailroom crate shares.
//! - `mailroom-server`: the runtime that accepts and bounds connections.
//! - `tokio`: the runtime the server runs in (sockets, timers, sync).
//! - `tower`: the `Service`/`Layer` traits the session and its middleware
//!   implement, `ServiceBuilder`/`BoxService` for stacks, and its
//!   `RateLimitLayer` (the driver awaits `ready()`, so a limited session
//!   simply reads its next command later).
//! - `rustls` and `tokio-rustls`: TLS for STARTTLS and implicit TLS, in
//!   memory-safe Rust.
//! - `bytes`: message bodies go from the store to the socket without copies.
//! - `futures`: boxed futures and the stream that feeds FETCH responses.
//! - `mail-parser`: decoding headers (RFC 2047) and bodies (base64,
//!   quoted-printable, charsets) for SEARCH; the same parser core uses for
//!   the MIME structure.
//! - `flate2`: raw DEFLATE for COMPRESS=DEFLATE (RFC 4978), the
//!   ecosystem's maintained zlib binding, here on its pure-Rust backend.
//! - `async-trait`: the core traits are object-safe async traits.
//! - `tracing`: structured logs, never with passwords or message content.
//! - `thiserror`: the crate's error types.

pub mod command;
pub mod extension;
pub mod layer;
pub mod parser;
pub mod response;
pub mod server;
pub mod session;
pub use mailroom_core::utf7;

pub use server::{BoxSession, ImapConfig, ImapServer, TlsMode};
pub use session::{Action, ConnectionInfo, IdleHandle, LoginAttempt, Reply, Session, SessionState};
