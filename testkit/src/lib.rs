//! Test support shared by the Mailroom protocol crates.
//!
//! `mailroom-testkit` is a dev-only crate (`publish = false`): the IMAP, POP3
//! and LMTP crates list it under `[dev-dependencies]` and build their
//! protocol-specific test harnesses (`tests/common/mod.rs`) on its pieces.
//! Nothing here is part of Mailroom's API. The pieces are:
//!
//! - [`StaticAuthenticator`]: a fixed user directory implementing
//!   [`mailroom_core::Authenticator`], configured in a `const`, and
//!   [`apop_digest`], the POP3 APOP digest a client sends;
//! - [`spawn_on_loopback`] and [`Spawned`]: a server task on an ephemeral
//!   `127.0.0.1` port with a shutdown trigger that fires on drop;
//! - [`LineClient`]: a socket client that sends bytes and reads CRLF lines,
//!   every read bounded by a timeout so a silent server fails the test
//!   instead of hanging it;
//! - [`tls_pair`] and [`tls_connect`]: a self-signed `localhost` certificate
//!   as a rustls server config plus a client config that trusts it;
//! - [`Rng`] and [`random_input`]: a deterministic generator of fuzz inputs
//!   mixing protocol words with random bytes;
//! - [`store`]: delivering to and reading back from a
//!   [`MemoryStore`](mailroom_store_memory::MemoryStore);
//! - [`store_bench`]: the workloads the store benchmarks share (messages,
//!   fill, SELECT + FETCH FLAGS, ENVELOPE, the table);
//! - [`postgres`]: a private PostgreSQL cluster (initdb in a temporary
//!   folder, a free loopback port, stopped at the end);
//! - [`cdylib`]: building a workspace `cdylib` (a plugin) from a test and
//!   finding the shared library cargo produced.
//!
//! Everything panics on failure (with a message saying what was expected):
//! a broken expectation in test support is a test failure.
//!
//! # Example
//!
//! A one-line echo server on loopback, a client talking to it, and the test
//! directory answering a login:
//!
//! ```
//! use mailroom_core::{Authenticator, Credentials};
//! use mailroom_testkit::{LineClient, StaticAuthenticator, spawn_on_loopback};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! const AUTH: StaticAuthenticator =
//!     StaticAuthenticator::new(&["alice@example.com"]).password("secret");
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut server = spawn_on_loopback(|listener, _shutdown| async move {
//!     let (socket, _) = listener.accept().await?;
//!     let mut socket = BufReader::new(socket);
//!     let mut line = String::new();
//!     socket.read_line(&mut line).await?;
//!     socket.get_mut().write_all(format!("echo {line}").as_bytes()).await
//! })
//! .await;
//! let mut client = LineClient::new(tokio::net::TcpStream::connect(server.addr()).await?);
//! client.send_line("hello").await;
//! assert_eq!(client.line().await, "echo hello");
//! client.expect_closed().await;
//! assert!(server.stop_and_join().await.is_some_and(|served| served.is_ok()));
//!
//! let login = Credentials {
//!     authzid: None,
//!     authcid: "alice@example.com".into(),
//!     password: "secret".into(),
//! };
//! assert_eq!(AUTH.authenticate(&login).await.unwrap().user, "alice@example.com");
//! # std::io::Result::Ok(())
//! # }).unwrap();
//! ```
//!
//! # Dependencies
//!
//! - `mailroom-core`, `mailroom-store-memory`: the traits the harnesses
//!   implement and the store they run on (the protocol crates already
//!   dev-depend on both).
//! - `tokio`: the runtime, sockets and timeouts the protocol servers use.
//! - `async-trait`: `mailroom_core::Authenticator` is an `async_trait`.
//! - `bytes`: the message type of `mailroom_core::DeliveryRequest`.
//! - `rustls`, `tokio-rustls`, `rustls-pki-types`, `rcgen`: the TLS stack
//!   the servers use, and rcgen to mint a throwaway certificate at test time
//!   instead of checking key material into the repository.
//! - `md-5` (RustCrypto): the APOP digest (RFC 1939 §7) that
//!   [`StaticAuthenticator::apop`] checks. The same RustCrypto hash family
//!   as the `sha1` crate behind message GUIDs, so the two share the
//!   `digest` traits and nothing new is audited; MD5 is what APOP fixes,
//!   not a choice.
//! - `serde_json`: reads cargo's `--message-format=json` build messages,
//!   the documented way to learn where cargo put an artifact.

// Test support: a failed expectation must fail the test, so unwrapping is
// the point here, not a shortcut.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
pub mod cdylib;
mod client;
pub mod corpus;
mod faulty;
mod fuzz;
pub mod postgres;
mod server;
pub mod store;
pub mod store_bench;
mod tls;

pub use auth::{StaticAuthenticator, apop_digest};
pub use client::LineClient;
pub use faulty::FaultyStore;
pub use fuzz::{Rng, random_input};
pub use server::{Shutdown, Spawned, spawn_on_loopback};
pub use tls::{tls_connect, tls_pair};
