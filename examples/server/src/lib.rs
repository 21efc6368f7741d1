//! # mailroomd
//!
//! The example Mailroom server: it wires the IMAP, POP3 and LMTP services
//! ([`mailroom_imap`], [`mailroom_pop3`], [`mailroom_lmtp`]) to a mailbox store, a users file with argon2
//! password hashes and TLS through rustls, and adds the admin commands
//! operators and scripts use. The binary is `mailroomd`; this library holds
//! the parts worth testing on their own:
//!
//! - [`config`]: the TOML config file, resolved into [`config::Config`];
//! - [`users`]: the users file (argon2 PHC hashes, roles, atomic 0600 writes);
//! - [`auth`]: [`auth::FileAuthenticator`], the users file as a
//!   [`mailroom_core::Authenticator`] with a cache of verified credentials;
//! - [`tls`]: PEM loading and the self-signed certificate generated on first start;
//! - [`store`]: [`store::open_store`], the one place that picks the backend
//!   (the CRC on-disk store by default, or the memory store);
//! - [`control`]: the admin control channel, a Unix socket through which
//!   `mailroomd reconstruct`, `verify` and `quota` reach a running server
//!   (its protocol is documented there), and [`control::execute`], the code
//!   behind those commands whether a server runs or not;
//! - [`repair`]: the background task that reconstructs mailboxes the CRC
//!   store found corrupt;
//! - [`fsutil`]: atomic durable writes and lock files;
//! - [`metrics`]: the `[metrics]` endpoint, a minimal HTTP server answering
//!   `GET /metrics` with the registry every protocol's metrics layer records into.
//! - [`rlimit`]: the open-file limit, raised as far as it goes at start.
//! - [`replication`]: `[replication]`, the primary or replica of a pair
//!   ([`mailroom_sync`]): the gate that refuses clients on a replica until
//!   it is promoted, synchronous appends, `replication status|promote|verify`.
//! - [`plugins`]: `[[plugin]]` tables, dynamic auth and billing plugins
//!   loaded through [`mailroom_plugin`] (an auth plugin replaces the users
//!   file).
//!
//! See `examples/server/README.md` for the command-line and config reference.
//!
//! ```
//! use mailroomd::config::{Config, ListenerKind};
//! use mailroomd::users::{UserDb, hash_password};
//!
//! // The embedded defaults: IMAP on 127.0.0.1:1143, IMAPS on 127.0.0.1:1993.
//! let config = Config::embedded_defaults().unwrap();
//! assert_eq!(config.listener(ListenerKind::Imap).unwrap().port(), 1143);
//!
//! // A users file with one user.
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("users.toml");
//! UserDb::modify(&path, |db| db.add("alice@example.com", hash_password("pw")?, vec![]))
//!     .unwrap();
//! assert!(UserDb::load(&path).unwrap().get("alice@EXAMPLE.com").is_some());
//!
//! // The default store is the CRC store, in <data_dir>/store; the store
//! // commands run `control::execute` on it (in the server for a request on
//! // the admin socket, or in the admin command itself when no server runs).
//! use mailroomd::config::ConfigFile;
//! use mailroomd::control::{Request, execute};
//! let file: ConfigFile = toml::from_str("[imap]\n").unwrap();
//! let config = file.resolve(Some(&dir.path().join("m.toml")), dir.path()).unwrap();
//! let store = mailroomd::store::open_store(&config).unwrap();
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let request = Request::QuotaShow { user: "alice@example.com".into() };
//! let users = mailroomd::users::Directory::from(path.as_path());
//! let reply = runtime.block_on(execute(&store, &users, &request));
//! assert_eq!(reply.outcome, Ok(()));
//! assert!(reply.lines.contains(&"storage_used_bytes 0".to_owned()));
//! ```
//!
//! ## Dependencies and why
//!
//! - `mailroom-core`, `mailroom-imap`, `mailroom-pop3`, `mailroom-lmtp`,
//!   `mailroom-store-crc` (the default store), `mailroom-store-memory`: the
//!   parts this server assembles.
//! - `mailroom-server`: the one runtime every listener runs on (IMAP, POP3,
//!   LMTP, the metrics endpoint, the admin socket): connection limits,
//!   timeouts, TLS, the PROXY protocol, graceful shutdown; `ipnet`: the
//!   `proxy_trusted` networks of the config; `bytes`: the refusals the
//!   metrics endpoint and the admin socket give it.
//! - `tower`: the `Layer`s wrapped around POP3 and LMTP sessions (metrics,
//!   the command rate and timeout); `futures`: boxed futures.
//! - `tokio`: the runtime, listeners (TCP and the admin Unix socket, whose
//!   peer credentials it reads) and signal handling.
//! - `argon2`: password hashing (memory-hard; the PHC string carries its parameters).
//! - `aws-lc-rs`: HMAC-SHA256 for the credential cache key and the random
//!   demo password; already linked as the rustls crypto provider, so it adds
//!   no second crypto library.
//! - `rustls`, `rustls-pki-types`: TLS, and PEM decoding through `PemObject`
//!   (`rustls-pemfile` is unmaintained).
//! - `rcgen` (aws-lc-rs backend): the self-signed certificate.
//! - `serde`, `toml`: the config and users files; `clap`: the command line.
//! - `tracing`, `tracing-subscriber`: logs to stderr with an env filter.
//! - `thiserror` for this library's errors, `anyhow` in the binary only.
//! - The admin protocol is a few lines of text with percent-encoded
//!   arguments, written here: no serialization crate is needed for it.
//! - Tests: `tempfile`, `rustls` (a TLS client), `proptest` (the admin
//!   protocol's encoding).
//! - `async-trait`: the core traits are object-safe async traits.
//! - `rustix` (`process`): `getrlimit`/`setrlimit` without `unsafe` code.
//! - `tikv-jemallocator` (the default `jemalloc` feature): the global
//!   allocator, chosen by measurement (below); `mimalloc` (feature
//!   `mimalloc`, with `--no-default-features`) is kept for comparing.
//!
//! ## The allocator, chosen with figures
//!
//! Password verification (argon2 at its default parameters) allocates and
//! frees 19 MiB per login; see [`auth`] for why that runs on a few
//! dedicated threads. Measured on `mailroomd serve` (debug build, CRC store,
//! 200 users sharing one default-parameter argon2 hash, each LOGIN + SELECT
//! INBOX + LOGOUT once over Python's imaplib, two hashing threads), USS =
//! Private_Clean + Private_Dirty from `/proc/PID/smaps_rollup`, 12 s after
//! the last logout:
//!
//! | allocator | USS at start | USS after | growth |
//! |---|---|---|---|
//! | glibc malloc (system) | 12.7 MiB | 185.4 MiB | +172.7 MiB: 3 arenas of 57 MiB each keep the freed argon2 blocks |
//! | mimalloc 0.1.52 | 23.9 MiB | 34.7 MiB | +10.8 MiB (53.9 MiB at the peak, mostly its segment cache) |
//! | jemalloc 5.3 (tikv-jemallocator 0.7) | 14.5 MiB | 16.0 MiB | +1.6 MiB: blocks over 8 MiB are returned at once |
//!
//! (Before the hashing threads, with glibc and argon2 on tokio's blocking
//! pool: +533 MiB for the same work; 40 users already filled 7 arenas.) jemalloc is the
//! default.

pub mod archive;
pub mod auth;
pub mod billing_outbox;
pub mod config;
pub mod control;
pub mod fsutil;
pub mod metrics;
pub mod plugins;
pub mod repair;
pub mod replication;
pub mod rlimit;
pub mod store;
pub mod tls;
pub mod token;
pub mod users;
