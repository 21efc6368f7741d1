//! # mailroom-lmtp
//!
//! The delivery front end of Mailroom: an LMTP server (RFC 2033, with SIZE
//! RFC 1870, 8BITMIME RFC 6152, ENHANCEDSTATUSCODES RFC 2034/3463 and
//! PIPELINING RFC 2920) that an MTA such as Postfix hands mail to over TCP or
//! a Unix socket. It is built the way every Mailroom protocol is:
//!
//! 1. [`codec`]: command lines framed with a bound and parsed by `smtp-proto`,
//!    message data dot-unstuffed incrementally, bounded by `SIZE`;
//! 2. [`Session`]: the per-connection state machine as a
//!    `tower::Service<Command>`; [`LmtpServer`] is the factory;
//! 3. the driver: runs the codec over one connection. Accepting (TCP and
//!    Unix sockets), connection limits, the PROXY protocol, the idle, read
//!    and write timeouts and graceful shutdown are the [`mailroom_server`]
//!    runtime's, shared with every other protocol
//!    ([`LmtpServer::serve_tcp`], [`LmtpServer::serve_unix`],
//!    [`LmtpServer::runtime`] for an integrator who wants the
//!    [`mailroom_server::Server`] itself).
//!
//! `RCPT` resolves the user with [`mailroom_core::Authenticator::lookup`]
//! (`user+detail@domain` keeps the detail in [`mailroom_core::Recipient::detail`]
//! so the pipeline can file into that folder; unknown users get `550 5.1.1`).
//! After `DATA` the message, with `Return-Path:` and `Received:` added, goes
//! to [`mailroom_core::Delivery::deliver`] and each accepted recipient gets its
//! own reply once its copy is durable: `250 2.0.0` delivered, `452 4.2.2` over
//! quota (temporary, so the MTA keeps the message and retries), `451 4.3.0`
//! storage busy, `550`/`554` permanent failures, `552 5.3.4` too big.
//!
//! ## Running it
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_core::{Authenticator, Quota, Storage, delivery::Pipeline};
//! use mailroom_lmtp::{LmtpConfig, LmtpServer};
//!
//! async fn run(storage: Arc<dyn Storage>, quota: Arc<dyn Quota>, auth: Arc<dyn Authenticator>)
//!     -> Result<(), mailroom_lmtp::LmtpError>
//! {
//!     let delivery = Arc::new(Pipeline::standard(storage, quota));
//!     let lmtp = LmtpServer::new(delivery, auth, LmtpConfig::default());
//!     let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     // Stops when the shutdown future completes (here: at once).
//!     lmtp.serve_tcp(tcp, async {}).await
//! }
//! # let store = Arc::new(mailroom_store_memory::MemoryStore::new());
//! # #[derive(Debug)] struct NoAuth;
//! # #[async_trait::async_trait] impl Authenticator for NoAuth {
//! #   async fn authenticate(&self, _: &mailroom_core::Credentials) -> mailroom_core::Result<mailroom_core::Principal> { Err(mailroom_core::Error::AuthFailed) }
//! #   async fn lookup(&self, _: &str) -> mailroom_core::Result<Option<mailroom_core::Principal>> { Ok(None) }
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
//! #     .block_on(run(store.clone(), store, Arc::new(NoAuth))).unwrap();
//! ```
//!
//! Cross-cutting behaviour (tracing, timeouts, limits, [`layer::metrics`])
//! is added with [`LmtpServer::serve_with`] and any `tower::Layer` over
//! [`Session`]. Metrics, for instance, are one layer recording into a
//! registry the integrator shares between servers and renders for Prometheus:
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_lmtp::layer::metrics::{Metrics, MetricsLayer};
//! # use mailroom_lmtp::{LmtpListener, LmtpServer};
//!
//! # async fn run(lmtp: LmtpServer, listener: LmtpListener) -> Result<(), mailroom_lmtp::LmtpError> {
//! let metrics = Arc::new(Metrics::new());
//! lmtp.serve_with(listener, MetricsLayer::new(metrics.clone()), async {}).await?;
//! print!("{}", metrics.render_prometheus());
//! # Ok(())
//! # }
//! ```
//!
//! LMTP has no TLS here: RFC 2033 §5 keeps it on the local host or a
//! trusted network (loopback TCP or a Unix socket).
//!
//! ## Dependencies and why
//!
//! - `smtp-proto` (Stalwart): the SMTP/LMTP command grammar (LHLO, MAIL and
//!   RCPT with their parameters); we add line framing, LMTP's rules and the
//!   session. Its DATA receiver was used at first and replaced by a small
//!   reader of our own: our fuzz target found that it also ends the data at
//!   CRLF `.` CR CR LF, which RFC 5321 does not (the codec's `data` module
//!   says more).
//! - `mailroom-core`: the `Delivery` and `Authenticator` traits.
//! - `mailroom-server`: the runtime that accepts and bounds connections;
//!   `futures`: the boxed future its `Protocol` trait returns.
//! - `tokio`: sockets (TCP and Unix), timers; `bytes`: buffers without copies.
//! - `tower`: the `Service`/`Layer` shape that lets integrators wrap sessions.
//! - `thiserror`: the typed [`LmtpError`]; `tracing`: logs (never message bodies).

pub mod codec;
mod config;
mod error;
pub mod layer;
mod received;
mod server;
mod session;

pub use config::LmtpConfig;
pub use error::LmtpError;
pub use server::{LmtpListener, LmtpProtocol, LmtpServer};
pub use session::{Action, Peer, Response, Session};
