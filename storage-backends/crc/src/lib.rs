//! # mailroom-store-crc
//!
//! The CRC mailbox format: Mailroom's default on-disk store. Each mailbox is
//! a directory with a memory-mapped index of fixed-size records, a cache of
//! MIME summaries (so FETCH ENVELOPE/BODYSTRUCTURE never opens a message),
//! and one file per message. Every header, record and cache entry carries a
//! CRC32 checked on read, and every message file is checked against its
//! SHA-1 GUID when read whole: a corruption is reported
//! ([`mailroom_core::Error::Corruption`]), never served, and the mailbox is
//! queued for [`CrcStore::reconstruct`]. `FORMAT.md` in this crate documents
//! every byte, the commit order and the lock order.
//!
//! A user's mailbox list lives in their `account` file, with a copy of each
//! mailbox's name, special use and ACL in its own directory: a damaged
//! account file is moved aside and rebuilt from those on the next access.
//! Which identifiers appear in which mailboxes' ACLs is indexed once for the
//! whole data directory ([`SHARED_FILE`]), so that LIST can show a user the
//! mailboxes others shared with them without reading every account.
//!
//! [`CrcStore`] implements [`mailroom_core::Storage`] (and so hands out
//! [`mailroom_core::Mailbox`]es), [`mailroom_core::Quota`] and
//! [`mailroom_core::Replication`] (records since a modseq, digests and the
//! state CRC straight from the index; a replica's batches applied with the
//! primary's UIDs and modseqs in the store's commit order; FORMAT.md,
//! "Replication"). Charged
//! writes ([`mailroom_core::Storage::append_within_quota`], and the copy
//! and move counterparts) are checked and charged against the owner's
//! limits in one atomic step with the group commit that makes them visible,
//! through an in-memory per-account ledger of usage and charges in flight
//! (FORMAT.md, "Quota"), so concurrent deliveries never overshoot.
//!
//! With [`CrcOptions::journal`], APPENDs and deliveries are made durable by a
//! store-wide write-ahead journal with group commit instead of the
//! per-mailbox fsyncs: one `fdatasync` of one file serves every delivery to
//! any mailbox that commits meanwhile, and the message is visible and
//! acknowledged only after it. Checkpoints (`syncfs`) bound the journal;
//! opening the store replays what a crash left (FORMAT.md, "Delivery
//! journal").
//!
//! ```
//! use mailroom_core::{MailboxName, MailboxRef, NewMessage, Storage, Flags};
//! use mailroom_store_crc::{CrcOptions, CrcStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mailroom_core::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let store = CrcStore::open(dir.path(), CrcOptions::default())?;
//! store.ensure_account("alice").await?;
//! let inbox = MailboxRef::new("alice", MailboxName::inbox());
//! let msg = NewMessage {
//!     flags: Flags::default(),
//!     internal_date: None,
//!     content: "Subject: hi\r\n\r\nhello\r\n".into(),
//! };
//! let appended = store.append(&inbox, msg).await?;
//! let status = store.status(&inbox, "alice").await?;
//! assert_eq!(status.messages, 1);
//! let mailbox = store.open(&inbox, "alice").await?;
//! let body = mailbox.content(appended.uid).await?;
//! assert!(body.ends_with(b"hello\r\n"));
//! // a second process on the same directory is refused
//! assert!(CrcStore::open(dir.path(), CrcOptions::default()).is_err());
//! # Ok(()) }
//! ```
//!
//! ## Dependencies and why
//!
//! - `crc32fast`: the CRC32 of every header, record and cache entry; SIMD
//!   accelerated, so checking every record on every scan costs little.
//! - `sha1`: the message GUID, as the design fixes it.
//! - `rustix` (fs): `syncfs(2)` for the delivery journal's checkpoint, one
//!   safe call instead of an fsync per touched file (the crate forbids
//!   `unsafe`, so no raw libc call).
//! - `memmap2`: the index is read through a shared read-only map (the one
//!   `unsafe` use, in `map.rs`, with its justification).
//! - `tokio` (rt): the file work runs on the blocking pool, off the
//!   protocol tasks.
//! - `bytes`: message contents are handed out as `Bytes`, as core wants.
//! - `async-trait`, `tracing`: as everywhere in Mailroom.

mod account;
mod ctx;
mod fsutil;
mod index;
mod journal;
pub mod layout;
mod mailbox;
mod maildir;
mod maildrop;
mod map;
mod open;
mod quota;
mod rebuild;
mod shared;
mod store;

pub use ctx::IoCounters;
pub use open::OpenCounts;
pub use rebuild::ReconstructReport;
pub use shared::SHARED_FILE;
pub use store::{
    ACCOUNT_FILE, CrcOptions, CrcStore, LOCK_FILE, MAILBOX_FILE, MAX_MISSING_ACCOUNTS, QUOTA_FILE,
    RECOVERED_PARENT,
};
