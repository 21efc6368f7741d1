//! # mailroom-store-memory
//!
//! An in-memory [`Storage`](mailroom_core::Storage) and
//! [`Quota`](mailroom_core::Quota) for Mailroom: every user's mailboxes,
//! messages, flags, subscriptions, special uses and ACLs live in this
//! process and vanish with it. Integrators embed it to run a server without
//! a disk (tests, demos, ephemeral relays), and every protocol test in the
//! workspace runs on it, so its semantics are exact and checked by the
//! backend conformance suite (the `mailroom-conformance` crate):
//!
//! - UIDVALIDITY is new for every mailbox incarnation (a deleted and
//!   re-created mailbox gets a fresh one); UIDs are never reused within one.
//! - Every change takes a new modseq: an append, a STORE that really changes
//!   flags (one modseq per command), an expunge (one per command, remembered
//!   per UID for [`changes_since`](mailroom_core::Mailbox::changes_since),
//!   forever: `expunged_complete` is always true).
//! - `\Seen` is per user: the owner's lives on the message, every other
//!   viewer has their own set. Their STORE changes only their own `\Seen`
//!   (other flags are shared) and still gives the message a new modseq.
//! - `STORE ... UNCHANGEDSINCE` follows RFC 7162; COPY and MOVE give new UIDs
//!   in source UID order and keep flags and INTERNALDATE; MOVE is atomic.
//! - RENAME of INBOX moves its messages into a new mailbox (with its own
//!   UIDVALIDITY) and leaves INBOX empty; other renames keep UIDVALIDITY,
//!   UIDs and messages.
//! - Message bytes are kept as [`bytes::Bytes`] and handed out without
//!   copying; the MIME summary is parsed once at append and shared.
//! - Watches ([`MailboxWatch`](mailroom_core::MailboxWatch)) wake after
//!   every change, whichever handle or store call made it.
//! - Quota: one root per user, named after the user; usage is summed from the
//!   messages themselves, so it is always exact; unlimited by default.
//!   Charged writes (`append_within_quota`, `copy_to_within_quota`,
//!   `move_to_within_quota`) count the usage and store the message under
//!   one store-wide charge lock, so concurrent charged writes never
//!   overshoot a limit.
//! - Replication ([`Replication`](mailroom_core::Replication)): every
//!   mutating call records which account changed in a store-wide change
//!   feed and wakes its watch; each mailbox keeps its replication state CRC
//!   up to date on every insert, flag change and expunge (XOR, no rescan);
//!   as a replica it applies batches with the primary's UIDVALIDITY, UIDs
//!   and modseqs, refusing a batch whose bytes do not match their GUID;
//!   HIGHESTMODSEQ never ends below a modseq the mailbox holds, also after
//!   a batch that comes without the primary's figures.
//!
//! The store checks nothing about who asks: put it behind
//! [`MailAccess`](mailroom_core::access::MailAccess) for ACLs and quotas.
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use mailroom_core::{Flag, MailboxName, MailboxRef, NewMessage, Storage, Uid};
//! use mailroom_store_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mailroom_core::Result<()> {
//! let store = Arc::new(MemoryStore::new());
//! store.ensure_account("alice@example.com").await?;
//!
//! let inbox = MailboxRef::new("alice@example.com", MailboxName::inbox());
//! let appended = store
//!     .append(
//!         &inbox,
//!         NewMessage {
//!             flags: [Flag::Seen].into_iter().collect(),
//!             internal_date: None,
//!             content: Bytes::from_static(b"Subject: hello\r\n\r\nHi Alice!\r\n"),
//!         },
//!     )
//!     .await?;
//! assert_eq!(appended.uid, Uid(1));
//!
//! let mailbox = store.open(&inbox, "alice@example.com").await?;
//! let snapshot = mailbox.snapshot().await?;
//! assert_eq!(snapshot.messages.len(), 1);
//! assert_eq!(snapshot.uid_next, Uid(2));
//! assert!(snapshot.messages[0].flags.contains(&Flag::Seen));
//! assert_eq!(&mailbox.content(Uid(1)).await?[..9], b"Subject: ");
//! # Ok(())
//! # }
//! ```
//!
//! ## Concurrency
//!
//! The namespace is behind one `RwLock`, each mailbox behind its own `Mutex`;
//! both are `std::sync` locks held only for the few microseconds of an
//! in-memory update and never across an `.await`. COPY and MOVE lock both
//! mailboxes in a fixed order. A poisoned lock (a bug, never something a
//! client can cause) becomes [`Error::Backend`](mailroom_core::Error::Backend),
//! not a panic.
//!
//! ## Dependencies and why
//!
//! - `mailroom-core`: the traits implemented and the vocabulary.
//! - `async-trait`: the core traits are object-safe async traits.
//! - `bytes`: message contents are shared, not copied, between the store,
//!   copies of a message and FETCH.
//! - `tracing`: debug events for namespace changes (never message bodies).
//! - `tokio` (dev): the runtime the tests and the example run in.
//! - `proptest` (dev): random operation sequences checked against a model.

mod mailbox;
mod state;
mod store;

pub use mailbox::MemoryMailbox;
pub use store::MemoryStore;
