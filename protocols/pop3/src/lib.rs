//! # mailroom-pop3
//!
//! A POP3 server (RFC 1939, with CAPA and response codes from RFC 2449 and
//! RFC 3206, STLS from RFC 2595 and SASL AUTH from RFC 5034) built the way
//! every Mailroom protocol is:
//!
//! 1. [`codec`]: bytes to [`codec::Command`]s and [`codec::Reply`]s to bytes.
//!    Incremental, line length bounded, and bad syntax is an `-ERR` with a
//!    reason — never a panic or a dropped connection.
//! 2. [`Session`]: the per-connection state machine (AUTHORIZATION,
//!    TRANSACTION, UPDATE) as a `tower::Service<Command>`. [`Pop3Server`] is
//!    the `MakeService`-style factory that builds one per connection.
//! 3. The driver: runs the codec over one connection, `STLS` included.
//!    Accepting, connection limits (total and per address), implicit TLS,
//!    the PROXY protocol, the idle/read/write timeouts and graceful
//!    shutdown are the [`mailroom_server`] runtime's, shared with every
//!    other protocol: [`Pop3Server::serve`] runs it, and
//!    [`Pop3Server::runtime`] hands an integrator the configured
//!    [`mailroom_server::Server`] (a [`Pop3Protocol`]).
//!
//! Around every session the server puts a [`layer::throttle::LoginThrottle`]:
//! failed logins are counted per IP and per user in a
//! [`mailroom_core::throttle::LoginFailures`] table that outlives the
//! connection (and that IMAP can share, see
//! [`Pop3Server::with_login_failures`]), and further attempts wait
//! exponentially longer. APOP is offered when the authenticator can check it
//! ([`mailroom_core::Authenticator::supports_apop`]).
//!
//! The maildrop is the user's INBOX, reached through
//! [`mailroom_core::access::MailAccess`] so ACLs are those of every other
//! protocol. Deletions are committed only by `QUIT` (the UPDATE state), as
//! `\Deleted` plus an expunge of exactly those UIDs; a second POP3 session on
//! the same maildrop gets `-ERR [IN-USE]` (the lock is the store's,
//! [`mailroom_core::Storage::lock_maildrop`], released when the session ends), while IMAP sessions coexist and see
//! the deletions after QUIT. Message sizes are those of the CRLF-normalised
//! message, exactly what `RETR` sends (see [`codec::octets`]). UIDLs are
//! `UIDVALIDITY.UID`: stable across sessions and never reused.
//!
//! ## Running it
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_core::{Authenticator, Storage};
//! use mailroom_pop3::{Pop3Config, Pop3Server, TlsMode};
//!
//! async fn run(storage: Arc<dyn Storage>, auth: Arc<dyn Authenticator>) -> Result<(), Box<dyn std::error::Error>> {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let server = Pop3Server::new(storage, auth, Pop3Config::default());
//!     // Stop when the returned future completes (here: at once).
//!     server.serve(listener, TlsMode::Plain, async {}).await?;
//!     Ok(())
//! }
//! # let storage: Arc<dyn Storage> = Arc::new(mailroom_store_memory::MemoryStore::new());
//! # #[derive(Debug)] struct NoAuth;
//! # #[async_trait::async_trait] impl Authenticator for NoAuth {
//! #   async fn authenticate(&self, _: &mailroom_core::Credentials) -> mailroom_core::Result<mailroom_core::Principal> { Err(mailroom_core::Error::AuthFailed) }
//! #   async fn lookup(&self, _: &str) -> mailroom_core::Result<Option<mailroom_core::Principal>> { Ok(None) }
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
//! #     .block_on(run(storage, Arc::new(NoAuth))).unwrap();
//! ```
//!
//! With TLS, call [`Pop3Server::with_tls`] with an `Arc<rustls::ServerConfig>`:
//! plain listeners then offer `STLS`, and [`TlsMode::Implicit`] serves port-995
//! style connections. Cross-cutting behaviour (tracing, timeouts, limits,
//! metrics with [`layer::metrics::MetricsLayer`]) is added with
//! [`Pop3Server::serve_with`] and any `tower::Layer` over the throttled
//! [`Session`]; [`layer`] has an example.
//!
//! ## Dependencies and why
//!
//! - `mailroom-core`: the traits and the ACL layer every protocol shares.
//! - `mailroom-server`: the runtime that accepts and bounds connections;
//!   `futures`: the boxed future its `Protocol` trait returns.
//! - `tokio`: sockets, timers, the accept loop; `bytes`: buffers without copies.
//! - `tower`: the `Service`/`Layer` shape that lets integrators wrap sessions.
//! - `rustls` + `tokio-rustls`: TLS without OpenSSL, as in the rest of Mailroom.
//! - `thiserror`: the typed [`Pop3Error`]; `tracing`: logs (never passwords or bodies).

pub mod codec;
mod config;
mod driver;
mod error;
pub mod layer;
mod server;
mod session;

pub use config::{PlaintextAuth, Pop3Config, TlsMode};
pub use error::Pop3Error;
pub use server::{Pop3Protocol, Pop3Server};
pub use session::{ConnectionInfo, Session};
