//! The admin control channel: how admin commands reach a running server.
//!
//! The CRC store locks its data directory for one process, so while
//! `mailroomd serve` runs, `mailroomd reconstruct`, `verify` and `quota`
//! cannot open the store themselves. The server therefore listens on a Unix
//! socket, `<data_dir>/admin.sock` (mode 0600, in the 0700 data directory),
//! and accepts connections only from root or its own user (checked with
//! `SO_PEERCRED`). An admin command connects to it when it exists and
//! answers; otherwise (no socket, or a stale one from a killed server) it
//! opens the store directly. Both paths run the same code,
//! [`execute`], so their output is the same.
//!
//! # Protocol, version 1
//!
//! Lines of UTF-8 text ending in LF (a CR before the LF is ignored). No
//! JSON, no framing beyond the line.
//!
//! ```text
//! S: mailroomd-admin 1                     greeting: the protocol version
//! C: 1 reconstruct alice@example.com INBOX
//! S: * reconstructed alice@example.com/INBOX: 2 messages, 812 bytes (kept 2, ...)
//! S: * quota_root alice@example.com
//! S: ...
//! S: OK                                    or: NO <reason>
//! C: 1 quota-show alice@example.com        (more requests may follow)
//! ...
//! ```
//!
//! - The server greets with `mailroomd-admin VERSION`. A client that speaks
//!   another version says so and stops.
//! - A request is `VERSION SP VERB *(SP ARG)`. Every request carries the
//!   version, so a server can refuse one it does not speak
//!   (`NO unsupported protocol version ...`) instead of misreading it.
//!   Arguments are percent-encoded: every byte outside `!`..`~`, and `%`
//!   itself, is written `%XX` (so a mailbox name may contain spaces or any
//!   UTF-8). The verbs are:
//!   - `reconstruct USER [MAILBOX]`
//!   - `verify USER [MAILBOX]`
//!   - `quota-show USER`
//!   - `quota-set USER STORAGE_KIB MESSAGES`, each a decimal number or `-`
//!     for unlimited.
//!   - `domain-list`; `archive-set ACTOR USER on|off`; `archive-status USER`;
//!     `archive-override-grant ACTOR archive@DOMAIN/MAILBOX REASON`;
//!     `archive-override-revoke ACTOR archive@DOMAIN/MAILBOX`;
//!     `billing-set DOMAIN on|off`; `billing-report [YYYY-MM]`. ACTOR is a
//!     user of the users file whose roles count, or `-` for the operator
//!     (a server admin).
//!   - `as ACTOR VERB ARGS...`: a quota, reconstruct or verify request
//!     done with ACTOR's roles (a domain admin: its own domain's users only).
//! - The reply is any number of data lines `* TEXT`, then exactly one of
//!   `OK` or `NO REASON`. Data lines are for people and scripts reading the
//!   command's output; control characters in them are replaced by `?`.
//! - Bounds: a request line is at most [`MAX_REQUEST_LINE`] bytes (a longer
//!   one is answered `NO` and the connection closed); the server waits at
//!   most [`REQUEST_TIMEOUT`] for a request; at most
//!   [`MAX_CONNECTIONS`] admin connections are served at once (more get
//!   `NO` and are closed). A reply line is at most [`MAX_REPLY_LINE`] bytes
//!   and a reply at most [`MAX_REPLY_BYTES`]; the client enforces both.
//!   Executing a request has no time limit (a reconstruct of a large
//!   mailbox takes as long as it takes).

mod client;
mod exec;
mod server;
pub mod wire;

use std::time::Duration;

pub use client::{Client, ControlError};
pub use exec::{ArchiveSettings, Reply, execute, execute_with, quota_lines};
pub use server::AdminSocket;
pub use wire::{Request, Target};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The longest request line, in bytes, LF included.
pub const MAX_REQUEST_LINE: usize = 4096;
/// The longest reply line, in bytes, LF included.
pub const MAX_REPLY_LINE: usize = 64 * 1024;
/// The largest reply, in bytes.
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;
/// How long the server waits for the next request on a connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How many admin connections the server serves at once.
pub const MAX_CONNECTIONS: usize = 8;
/// The greeting line (without LF).
pub fn greeting() -> String {
    format!("mailroomd-admin {PROTOCOL_VERSION}")
}
