//! # mailroom-core
//!
//! The shared vocabulary and the four core traits of Mailroom, a framework
//! for composing mail servers:
//!
//! - [`Storage`] and [`Mailbox`]: the mailbox store, with the change feed
//!   (snapshot, [`Mailbox::changes_since`], [`MailboxWatch`]) that IDLE,
//!   CONDSTORE and QRESYNC are built on;
//! - [`Authenticator`]: credentials to [`Principal`];
//! - [`Quota`]: STORAGE and MESSAGE limits and exact usage;
//! - [`Delivery`]: one message to many recipients, with a result per
//!   recipient, built as a [`delivery::Pipeline`] of steps;
//! - [`Replication`]: what a store offers so `mailroom-sync` can replicate
//!   it (records since a modseq, namespace state, applying with the
//!   primary's UIDs and modseqs, the per-mailbox state CRC).
//!
//! Archive journaling ([`archive`]) is built on these traits: a delivery
//! step, a hook in [`access::MailAccess`]'s APPEND, and the archive's rights
//! applied there, so it works with any store and through every protocol;
//! roles are interpreted in one place, [`Principal::administers_domain`].
//!
//! Protocol crates depend on this crate only, and reach a store through
//! [`access::MailAccess`], which enforces RFC 4314 ACLs and quotas once for
//! every protocol. Backends implement the traits and depend on this crate only.
//!
//! ```
//! use mailroom_core::{Flag, Flags, MailboxName, SeqSet, MessageGuid};
//!
//! let set: SeqSet = "1:3,7:*".parse().unwrap();
//! assert_eq!(set.select_from(&[1u32, 2, 5, 7, 9], |x| x), vec![1, 2, 7, 9]);
//! let name = MailboxName::new("Archive/2026").unwrap();
//! assert_eq!(name.parent().unwrap().as_str(), "Archive");
//! let flags: Flags = [Flag::Seen, Flag::Flagged].into_iter().collect();
//! assert_eq!(flags.to_string(), "\\Seen \\Flagged");
//! assert_eq!(MessageGuid::of(b"").to_string(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
//! ```
//!
//! ## Dependencies and why
//!
//! - `mail-parser` (Stalwart): a well-kept, fuzzed MIME parser. We use it
//!   for what it does well and what is easy to get wrong: Content-Type and
//!   Content-Disposition parameters (RFC 2231 continuations and charsets,
//!   RFC 2047 words) and dates. The part splitting and byte offsets behind
//!   BODYSTRUCTURE and `BODY[n]` are ours ([`mime`]), because IMAP clients
//!   cache those answers forever and they must match what Dovecot reports
//!   byte for byte (a test compares them), which no general MIME parser
//!   promises. 0.11 is the line that builds on rustc 1.95.
//! - `sha1`: the message GUID, as the design fixes it.
//! - `tokio` (sync only): the watch channel behind [`MailboxWatch`].
//! - `async-trait`: object-safe async traits, so plugins can hand out `Arc<dyn Trait>`.
//! - `crc32fast`: the replication state CRC ([`replication::StateCrc`]), the
//!   same CRC-32 the CRC store and the replication frames use.
//! - `futures` (`join_all`): a delivery runs its recipients at once, so the
//!   copies of one message reach their mailboxes' disks together; the
//!   runtime-independent join of the ecosystem, rather than one of our own.
//! - `hmac`, `sha2`, `pbkdf2` (RustCrypto): SCRAM-SHA-256's HMAC, hash and
//!   key derivation ([`sasl::scram`]); the audited, constant-time-minded
//!   primitives every Rust SCRAM uses. The SCRAM message handling itself is
//!   ours: the existing crates are client-only or lack `tls-exporter`.
//! - `icu_casemap` (ICU4X) and `unicode-normalization` (unicode-rs): the
//!   `i;unicode-casemap` collation (RFC 5051: simple titlecase, then NFKD)
//!   of [`mime::collate`], here so that stores can keep SORT keys
//!   precomputed ([`mime::SortKeys`]); why these two, see there.
//! - `rand`: SCRAM server nonces and salts from the OS-seeded CSPRNG.
//! - `argon2` (RustCrypto): the password hash of [`password`], the one every
//!   users store of ours keeps (mailroomd's users file, the PostgreSQL
//!   users table, the `auth-sqlite` plugin), so hashes move between them;
//!   argon2id is the OWASP-recommended choice and this crate the maintained
//!   pure-Rust one.
//! - `stringprep` (Steven Fackler, the author of rust-postgres, which uses
//!   it for the same purpose): SASLprep (RFC 4013) of user names and
//!   passwords for SCRAM and PLAIN ([`sasl::saslprep`]). Its tables are
//!   generated from RFC 3454's, which is what the RFC asks for; writing
//!   them again would only add a place for mistakes. Already in the
//!   dependency tree through `postgres-protocol`.

pub mod access;
pub mod acl;
pub mod archive;
pub mod auth;
pub mod base64;
pub mod delivery;
pub mod error;
pub mod events;
pub mod flags;
pub mod guid;
pub mod mailbox;
pub mod maildrop;
pub mod message;
pub mod metrics;
pub mod mime;
pub mod password;
pub mod quota;
pub mod replication;
pub mod sasl;
pub mod storage;
pub mod throttle;
pub mod types;
pub mod utf7;

pub use acl::{ANYONE, Acl, Principal, Right, Rights, Roles};
pub use auth::{Authenticator, Credentials, Mechanism};
pub use delivery::{Delivery, DeliveryOutcome, DeliveryRequest, Recipient};
pub use error::{Error, ParseError, Result};
pub use flags::{Flag, Flags, StoreOp};
pub use guid::{MailboxId, MessageGuid};
pub use mailbox::{MailboxInfo, MailboxName, MailboxRef, MailboxStatus, SpecialUse};
pub use message::{
    Appended, Changes, CopyResult, InternalDate, MailboxSnapshot, MessageContent, MessageMeta,
    NewMessage, StoreResult,
};
pub use mime::MessageSummary;
pub use quota::{Quota, QuotaLimits, QuotaUsage};
pub use replication::Replication;
pub use storage::{
    Mailbox, MailboxNotifier, MailboxWatch, NamespaceWatch, NamespaceWatches, Storage,
};
pub use throttle::{LoginFailures, ThrottleConfig};
pub use types::{ModSeq, SeqBound, SeqNum, SeqRange, SeqSet, Uid, UidValidity};
