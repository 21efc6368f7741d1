//! # mailroom-store-postgres
//!
//! A [`Storage`](mailroom_core::Storage) and [`Quota`](mailroom_core::Quota)
//! in PostgreSQL, so that many stateless `mailroomd` frontends serve one set
//! of mailboxes that the database keeps durable (and that operators back
//! up, replicate and fail over with PostgreSQL's own tools). The schema is
//! versioned and migrated by the crate ([`schema::migrate`]); SCHEMA.md
//! describes every table and column.
//!
//! What it guarantees (all of it checked by the `mailroom-conformance`
//! suite, run whole on this store):
//!
//! - UIDs, UIDNEXT, MODSEQ and HIGHESTMODSEQ are assigned inside the
//!   transaction that makes the change, under the mailbox row's lock, so
//!   concurrent frontends never hand out one UID twice and a reader never
//!   sees a later UID without the earlier ones (each change commits before
//!   the next one on that mailbox can take its numbers).
//! - Every write that changes usage locks the account row first, and
//!   charged writes check the limits there, in the same transaction as the
//!   write: no interleaving of frontends overshoots a quota.
//! - Bodies are stored once per GUID per account (`bodies`), inline up to
//!   [`INLINE_MAX`] bytes and in [`CHUNK`]-byte rows of `body_chunks`
//!   above; the SHA-1 GUID is checked on every read, and a body that does
//!   not match is never served ([`Error::Corruption`](mailroom_core::Error)).
//! - The MIME summary (ENVELOPE, BODYSTRUCTURE, the header block) is kept
//!   in its own column, so FETCH of them never reads a body.
//! - Expunged UIDs are kept with their modseq (`expunged`) for QRESYNC;
//!   `\Seen` of viewers other than the owner is theirs (`seen`).
//! - Changes reach every frontend: each change's transaction sends a
//!   `NOTIFY mailroom` naming the account, the mailbox and the new
//!   HIGHESTMODSEQ; a listener connection per store wakes the local
//!   watches, and after it reconnects it rechecks every watched mailbox so
//!   a notification lost with the connection costs nothing.
//! - Each process keeps the message records of the mailboxes it served
//!   lately (a bounded, least-recently-used set of views) and brings one up
//!   to date with a single statement reading only the rows whose modseq is
//!   above the view's and the expunges since: SELECT and `FETCH 1:*
//!   (FLAGS)` of a large mailbox read a few rows, not all of them, and stay
//!   exact across frontends because modseqs are taken under the mailbox
//!   row's lock (SCHEMA.md, "mailbox views").
//! - Users live in the same database ([`users::PgUsers`], table `users`:
//!   argon2 hashes, SCRAM verifiers, domains, roles), read at every login,
//!   so a user added through one frontend logs in on every other at once.
//! - SAVEDATE (RFC 8514) is set by every insert of a message row, in the
//!   database's clock (one clock for every frontend).
//! - It is a replication primary or replica
//!   ([`Replication`](mailroom_core::Replication), for `mailroom-sync`):
//!   statement triggers keep each mailbox's state CRC and message count in
//!   the transaction of every change, every write moves its account's change
//!   position (a transaction id) and announces it, and sync points live in
//!   their own table; it passes the replication conformance suite
//!   (SCHEMA.md, "Replication").
//! - The POP3 maildrop lock is a PostgreSQL advisory lock (one per user,
//!   across all frontends) held on the store's lock connection, plus an
//!   in-process table.
//!
//! ## Dependencies
//!
//! - `tokio-postgres`: the asynchronous PostgreSQL client of the tokio
//!   ecosystem (pipelining, binary parameters, LISTEN/NOTIFY through
//!   `poll_message`).
//! - `deadpool-postgres`: its pool. Chosen over `bb8` because it is made for
//!   `tokio-postgres` (no adapter crate), caches prepared statements per
//!   connection (every statement of the store runs through that cache: one
//!   round trip each on a warm connection; SCHEMA.md, "Prepared statements
//!   and migrations"), recycles a connection with a cheap check and has a
//!   simple, fixed-size pool that maps to `pool_size`.
//!
//! ## Example
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mailroom_core::{MailboxName, MailboxRef, Storage};
//! use mailroom_store_postgres::{PgOptions, PgStore};
//!
//! let store = PgStore::connect(&PgOptions {
//!     url: "postgresql://mail@127.0.0.1/mail".into(),
//!     pool_size: 16,
//!     migrate: true,
//!     view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
//! })
//! .await?;
//! store.ensure_account("alice@example.com").await?;
//! let inbox = MailboxRef::new("alice@example.com", MailboxName::inbox());
//! assert_eq!(store.status(&inbox, "alice@example.com").await?.messages, 0);
//! # Ok(()) }
//! ```

mod body;
mod db;
mod feed;
mod mailbox;
mod replication;
pub mod schema;
mod store;
pub mod users;
mod view;

pub use store::PgStore;
pub use users::{PgUsers, UserRow};

/// Bodies up to this many bytes are stored in one `bytea` column.
pub const INLINE_MAX: usize = 1024 * 1024;
/// Larger bodies are stored in rows of this many bytes.
pub const CHUNK: usize = 1024 * 1024;

/// [`PgOptions::view_records`] by default: about 100 MB of message records
/// (some 100 bytes each) per process.
pub const DEFAULT_VIEW_RECORDS: usize = 1_000_000;

/// The most [`PgOptions::view_records`] a store takes (about 10 GB); a
/// larger value counts as this.
pub const MAX_VIEW_RECORDS: usize = 100_000_000;

/// How to reach the database.
#[derive(Clone)]
pub struct PgOptions {
    /// A `postgresql://` URL (or a key=value connection string).
    pub url: String,
    /// Connections in the pool (the listener and the lock connection come
    /// on top).
    pub pool_size: usize,
    /// Migrate the schema at connect; when false, a database at another
    /// version is refused ([`PgStoreError::WrongVersion`]).
    pub migrate: bool,
    /// Message records this process keeps in its mailbox views, at most,
    /// in all of them ([`DEFAULT_VIEW_RECORDS`]; at most
    /// [`MAX_VIEW_RECORDS`]). Each view also counts 64 for itself. 0 keeps
    /// no view: every SELECT and full FETCH reads the mailbox's records
    /// from the database (SCHEMA.md, "What a frontend keeps in memory"). Not used by
    /// [`PgUsers`].
    pub view_records: usize,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only its host part is shown.
        let host = self.url.rsplit('@').next().unwrap_or("");
        f.debug_struct("PgOptions")
            .field("host", &host)
            .field("pool_size", &self.pool_size)
            .field("migrate", &self.migrate)
            .field("view_records", &self.view_records)
            .finish()
    }
}

/// Errors of connecting and migrating (the trait methods return
/// [`mailroom_core::Error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// The URL could not be parsed.
    #[error("bad PostgreSQL URL: {0}")]
    Url(tokio_postgres::Error),
    /// The pool could not be built.
    #[error("PostgreSQL pool: {0}")]
    Pool(String),
    /// A statement or the connection failed.
    #[error("PostgreSQL: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// The database was migrated by a newer build.
    #[error("the database schema is at version {found}, newer than this build's {known}")]
    TooNew {
        /// The version found.
        found: i32,
        /// The version this build knows.
        known: i32,
    },
    /// The database is not at this build's version and migration was not asked.
    #[error(
        "the database schema is at version {found}, this build needs {known}: run `mailroomd migrate`"
    )]
    WrongVersion {
        /// The version found.
        found: i32,
        /// The version this build needs.
        known: i32,
    },
}
