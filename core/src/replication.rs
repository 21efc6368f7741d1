//! The [`Replication`] trait: what a store offers so that a primary can
//! stream its changes to a replica of the same or another backend
//! (`mailroom-sync` drives it).
//!
//! The model is per mailbox, keyed by owner and UIDVALIDITY (which is
//! unique per account and survives a rename):
//!
//! - the **primary** side reads an account's namespace
//!   ([`Replication::account_state`]: every mailbox's name, UIDVALIDITY,
//!   UIDNEXT, HIGHESTMODSEQ, message count and state CRC, special use and
//!   ACL; the subscriptions; the quota limits) and, per mailbox, the records
//!   changed after a modseq ([`Replication::records_since`]), with the
//!   expunges after it;
//! - the **replica** side applies namespace operations ([`NamespaceOp`])
//!   and batches of records ([`Replication::apply_messages`]) that keep the
//!   primary's UIDVALIDITY, UIDs and modseqs, so a client that moves from one
//!   to the other keeps its caches (CONDSTORE, QRESYNC);
//! - both keep a per-mailbox **state CRC** ([`StateCrc`]): the XOR of every
//!   live message's [`ReplicaRecord::state_crc`], updated on every change
//!   (XOR the old record out, the new one in), never by a rescan. Equal
//!   CRCs, UIDNEXT and HIGHESTMODSEQ mean equal mailboxes; on a mismatch
//!   [`Replication::record_digests`] finds the records that differ.
//!
//! The replica's own HIGHESTMODSEQ of a mailbox is where replication resumes
//! after either end restarts: no separate position has to be stored.
//!
//! With the `conformance` feature, `replication::conformance` is the suite every
//! implementation must pass (`replication_conformance_tests!` makes one test
//! per check); the memory store runs it.
//!
//! A backend with an index of fixed records (such as the CRC store) can
//! offer all of this from its index alone: records since a modseq are a
//! scan of the modseq column, expunged records carry the modseq of their
//! expunge until a repack (after which `expunged_complete` is false and the
//! primary falls back to comparing digests), and the state CRC is one
//! more header field kept like the others.

use std::fmt::Debug;

use async_trait::async_trait;

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod feed;
use bytes::Bytes;
pub use feed::ChangeFeed;

use crate::acl::Acl;
use crate::error::Result;
use crate::flags::Flags;
use crate::guid::MessageGuid;
use crate::mailbox::{MailboxName, MailboxRef, SpecialUse};
use crate::message::InternalDate;
use crate::quota::QuotaLimits;
use crate::storage::Storage;
use crate::types::{ModSeq, Uid, UidValidity};

/// Everything a client can see of one message, except its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRecord {
    /// UID (kept on the replica).
    pub uid: Uid,
    /// MODSEQ of the last change (kept on the replica).
    pub modseq: ModSeq,
    /// The owner's flags and keywords (the owner's `\Seen`).
    pub flags: Flags,
    /// INTERNALDATE.
    pub internal_date: InternalDate,
    /// RFC822.SIZE.
    pub size: u64,
    /// SHA-1 of the bytes.
    pub guid: MessageGuid,
    /// Other users who have `\Seen` on this message (shared mailboxes),
    /// sorted. Not part of the state CRC: a change to it also changes the
    /// message's modseq, which is.
    pub seen_by: Vec<String>,
    /// SAVEDATE (RFC 8514), seconds since the epoch: the replica keeps the
    /// primary's. `None` if unknown (an older peer); the replica then uses
    /// the time it applies the record. Not part of the state CRC (it never
    /// changes once the message is saved).
    pub save_date: Option<i64>,
}

impl ReplicaRecord {
    /// The record's contribution to its mailbox's [`StateCrc`]: CRC-32
    /// (IEEE) over, in this order, all integers big-endian:
    ///
    /// | bytes | field |
    /// |---|---|
    /// | 4 | uid |
    /// | 8 | modseq |
    /// | 8 | internal date, seconds since the epoch (signed) |
    /// | 2 | internal date zone, minutes east of UTC (signed) |
    /// | 8 | size |
    /// | 20 | guid |
    /// | 1 | system flags: `\Seen` 1, `\Answered` 2, `\Flagged` 4, `\Deleted` 8, `\Draft` 16 |
    /// | 2 | number of keywords |
    /// | 1 + n each | each keyword in ascending byte order: its length, its bytes |
    ///
    /// ```
    /// use mailroom_core::replication::ReplicaRecord;
    /// use mailroom_core::{Flags, InternalDate, MessageGuid, ModSeq, Uid};
    /// let r = ReplicaRecord {
    ///     uid: Uid(1),
    ///     modseq: ModSeq(2),
    ///     flags: Flags::default(),
    ///     internal_date: InternalDate { timestamp: 0, offset_minutes: 0 },
    ///     size: 0,
    ///     guid: MessageGuid::of(b""),
    ///     seen_by: vec![],
    ///     save_date: None,
    /// };
    /// let mut bytes = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2];
    /// bytes.extend_from_slice(&[0; 18]);
    /// bytes.extend_from_slice(&MessageGuid::of(b"").0);
    /// bytes.extend_from_slice(&[0, 0, 0]);
    /// assert_eq!(r.state_crc(), crc32fast::hash(&bytes));
    /// ```
    pub fn state_crc(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        h.update(&self.uid.0.to_be_bytes());
        h.update(&self.modseq.0.to_be_bytes());
        h.update(&self.internal_date.timestamp.to_be_bytes());
        h.update(&self.internal_date.offset_minutes.to_be_bytes());
        h.update(&self.size.to_be_bytes());
        h.update(&self.guid.0);
        h.update(&[self.flags.system_bits()]);
        let mut keywords: Vec<&str> = self.flags.keywords().collect();
        keywords.sort_unstable();
        let count = u16::try_from(keywords.len()).unwrap_or(u16::MAX);
        h.update(&count.to_be_bytes());
        for k in keywords.iter().take(usize::from(count)) {
            // Keywords are at most 128 bytes (core's MAX_KEYWORD_LEN).
            let k = &k.as_bytes()[..k.len().min(255)];
            h.update(&[k.len() as u8]);
            h.update(k);
        }
        h.finalize()
    }
}

/// A mailbox's state CRC: the XOR of the [`ReplicaRecord::state_crc`] of
/// its live messages (0 for an empty mailbox). XOR makes it incremental and
/// independent of order: adding and removing a record are the same
/// operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct StateCrc(pub u32);

impl StateCrc {
    /// Adds or removes one record's contribution.
    pub fn toggle(&mut self, record_crc: u32) {
        self.0 ^= record_crc;
    }

    /// The state CRC of a whole set of records (for tests and rebuilds).
    pub fn of<'a>(records: impl IntoIterator<Item = &'a ReplicaRecord>) -> StateCrc {
        let mut crc = StateCrc::default();
        for r in records {
            crc.toggle(r.state_crc());
        }
        crc
    }
}

/// The figures two ends compare to decide whether a mailbox is in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxHead {
    /// UIDVALIDITY.
    pub uid_validity: UidValidity,
    /// UIDNEXT.
    pub uid_next: Uid,
    /// HIGHESTMODSEQ.
    pub highest_modseq: ModSeq,
    /// Number of messages.
    pub messages: u32,
    /// The state CRC.
    pub state_crc: StateCrc,
}

/// One mailbox of an [`AccountState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxState {
    /// Its name.
    pub name: MailboxName,
    /// Its head figures.
    pub head: MailboxHead,
    /// Its special use.
    pub special_use: Option<SpecialUse>,
    /// Its ACL, entries sorted by identifier.
    pub acl: Acl,
    /// Its OBJECTID MAILBOXID (RFC 8474), carried so that a replica's copy
    /// keeps the primary's (`None` from a peer that does not send it).
    pub mailbox_id: Option<crate::MailboxId>,
    /// Its last [`SyncPoint`], if replication recorded one: a replica
    /// mailbox without one (or changed since) was created or written on the
    /// replica itself, and a merge keeps it.
    pub sync_point: Option<SyncPoint>,
}

/// An account's namespace as replication sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    /// The user.
    pub user: String,
    /// Every mailbox, sorted by name.
    pub mailboxes: Vec<MailboxState>,
    /// The subscriptions, sorted.
    pub subscriptions: Vec<MailboxName>,
    /// The quota limits of the user's root.
    pub quota: QuotaLimits,
}

/// A page of the records changed after a modseq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsSince {
    /// The mailbox's head as of this read.
    pub head: MailboxHead,
    /// Records with a modseq above `since` and a UID above `after`,
    /// ascending UID, at most `limit`.
    pub records: Vec<ReplicaRecord>,
    /// Whether records beyond this page remain (ask again with `after` set
    /// to the last UID of this page).
    pub more: bool,
    /// UIDs expunged after `since` with the modseq of their expunge,
    /// ascending UID; only on the last page (`more` false).
    pub expunged: Vec<(Uid, ModSeq)>,
    /// False if expunges that old are no longer remembered: the caller must
    /// then compare digests to find what the other end still holds.
    pub expunged_complete: bool,
}

/// A record with, when the replica needs them, its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaMessage {
    /// The record.
    pub record: ReplicaRecord,
    /// The message bytes. `None` for a change to a message the replica
    /// already holds (same UID and GUID).
    pub content: Option<Bytes>,
}

/// A batch of changes to one mailbox, applied as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyBatch {
    /// New and changed messages, inserted or replaced by UID.
    pub messages: Vec<ReplicaMessage>,
    /// UIDs to expunge, with the modseq of their expunge.
    pub expunged: Vec<(Uid, ModSeq)>,
    /// Once the batch is applied, set UIDNEXT (never below a present UID
    /// plus one) and HIGHESTMODSEQ to these (the primary's figures), if
    /// given. The replica's HIGHESTMODSEQ is where the next round resumes.
    pub uid_next: Option<Uid>,
    /// See `uid_next`.
    pub highest_modseq: Option<ModSeq>,
}

impl ApplyBatch {
    /// What every store checks before it applies anything of a batch:
    /// each message's bytes, when sent, match its GUID and its size, and
    /// each UID is a usable one (not 0, not `u32::MAX`, which would leave
    /// no UIDNEXT). A batch that fails changes nothing.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use mailroom_core::replication::{ApplyBatch, ReplicaMessage, ReplicaRecord};
    /// use mailroom_core::{Flags, InternalDate, MessageGuid, ModSeq, Uid};
    /// let content = Bytes::from_static(b"Subject: x\r\n\r\n");
    /// let mut m = ReplicaMessage {
    ///     record: ReplicaRecord {
    ///         uid: Uid(1),
    ///         modseq: ModSeq(1),
    ///         flags: Flags::default(),
    ///         internal_date: InternalDate { timestamp: 0, offset_minutes: 0 },
    ///         size: content.len() as u64,
    ///         guid: MessageGuid::of(&content),
    ///         seen_by: vec![],
    ///         save_date: None,
    ///     },
    ///     content: Some(content),
    /// };
    /// let batch = |m: &ReplicaMessage| ApplyBatch { messages: vec![m.clone()], ..ApplyBatch::default() };
    /// assert!(batch(&m).check().is_ok());
    /// m.content = Some(Bytes::from_static(b"tampered"));
    /// assert!(batch(&m).check().is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] naming what failed.
    pub fn check(&self) -> Result<()> {
        for m in &self.messages {
            if let Some(content) = &m.content {
                if MessageGuid::of(content) != m.record.guid {
                    return Err(crate::Error::InvalidInput(
                        "message bytes do not match their GUID",
                    ));
                }
                if content.len() as u64 != m.record.size {
                    return Err(crate::Error::InvalidInput(
                        "message size does not match its bytes",
                    ));
                }
            }
            if m.record.uid.0 == 0 || m.record.uid.0 == u32::MAX {
                return Err(crate::Error::InvalidInput("UID out of range"));
            }
        }
        Ok(())
    }
}

/// What [`Replication::apply_messages`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The mailbox's head after the batch.
    pub head: MailboxHead,
    /// Records sent without content for a message the replica does not
    /// hold (or holds with another GUID): not applied; send them again with
    /// their bytes.
    pub missing: Vec<Uid>,
}

/// A change to an account's namespace, applied on a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NamespaceOp {
    /// Create an empty mailbox with the primary's UIDVALIDITY (the
    /// account is created if it does not exist, without default mailboxes).
    Create {
        /// Its name.
        name: MailboxName,
        /// Its UIDVALIDITY.
        uid_validity: UidValidity,
        /// Its special use.
        special_use: Option<SpecialUse>,
        /// Its MAILBOXID (RFC 8474: it must not change for the life of
        /// the mailbox, and a failover is not a new mailbox); `None` lets
        /// the store make one (a peer that does not send it).
        mailbox_id: Option<crate::MailboxId>,
    },
    /// Delete a mailbox and its messages (INBOX included: the primary
    /// replaces it by one with another UIDVALIDITY).
    Delete {
        /// Its name.
        name: MailboxName,
    },
    /// Rename a mailbox, keeping its UIDVALIDITY, UIDs and messages (INBOX
    /// included: no RFC 3501 INBOX special case on this path).
    Rename {
        /// The current name.
        from: MailboxName,
        /// The new name (must not exist).
        to: MailboxName,
    },
    /// Set a mailbox's special use and whole ACL.
    SetAttributes {
        /// Its name.
        name: MailboxName,
        /// The special use.
        special_use: Option<SpecialUse>,
        /// The ACL (replaces the old one).
        acl: Acl,
        /// If given, the mailbox takes this MAILBOXID: the primary's, for a
        /// replica's mailbox made before replication carried it. `None`
        /// keeps the mailbox's own.
        mailbox_id: Option<crate::MailboxId>,
    },
    /// Replace the account's subscriptions.
    SetSubscriptions(Vec<MailboxName>),
    /// Set the quota limits of the account's root.
    SetQuota(QuotaLimits),
}

/// The last state of a mailbox both ends of a replication pair were
/// verified to share (equal heads after a batch). Changes after it on both
/// ends are what a split-brain merge reconciles: a UID at or above
/// `uid_next` was taken after the split, a modseq above `highest_modseq`
/// is a change made after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncPoint {
    /// UIDNEXT at the sync point.
    pub uid_next: Uid,
    /// HIGHESTMODSEQ at the sync point.
    pub highest_modseq: ModSeq,
    /// The primary's [`namespace_digest`] of the mailbox at the sync point
    /// (name, special use, ACL, subscribed), if it recorded one: a mailbox
    /// whose digest still equals it was not renamed, re-attributed or
    /// (un)subscribed on the primary since, so what differs on the replica
    /// was changed there (a merge keeps it).
    pub namespace: Option<u32>,
}

/// A sync point a primary is about to propose: the head it sends as a
/// batch's expected head, recorded durably before the first frame of the
/// batch goes out ([`Replication::set_pending_sync_point`]) and cleared by
/// the next [`Replication::set_sync_point`]. The replica records its sync
/// point as soon as it has applied the batch, so a primary killed between
/// that and its own [`Replication::set_sync_point`] finds the replica's
/// head above its last sync point; if the replica's head is exactly this
/// one (every field, state CRC included), the replica holds the batch and
/// nothing of its own, and the pending point becomes the sync point (no
/// split brain). A replica with another head while a pending point is
/// recorded holds part of the batch (the primary stopped between two
/// frames) or changes of its own: the primary compares its records to
/// tell (mailroom-sync PROTOCOL.md, "A batch cut between two frames").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingSyncPoint {
    /// The primary's head as sent.
    pub head: MailboxHead,
    /// The primary's [`namespace_digest`] of the mailbox then.
    pub namespace: Option<u32>,
}

impl PendingSyncPoint {
    /// The sync point it becomes once the replica is known to hold it.
    pub fn point(&self) -> SyncPoint {
        SyncPoint {
            uid_next: self.head.uid_next,
            highest_modseq: self.head.highest_modseq,
            namespace: self.namespace,
        }
    }
}

/// A digest of what a mailbox looks like in its account's namespace, for
/// [`SyncPoint::namespace`]: CRC-32 (IEEE) over the name's bytes, a zero
/// byte, the special use's attribute (`\Sent`; nothing for none), a zero
/// byte, then for each ACL entry in ascending identifier order the
/// identifier, a zero byte, the rights letters in RFC 4314 order, a zero
/// byte; last one byte, 1 if the name is subscribed, else 0.
///
/// ```
/// use mailroom_core::replication::namespace_digest;
/// use mailroom_core::{Acl, MailboxName};
/// let d = namespace_digest(&MailboxName::inbox(), None, &Acl::default(), true);
/// assert_eq!(d, crc32fast::hash(b"INBOX\0\0\x01"));
/// ```
pub fn namespace_digest(
    name: &MailboxName,
    special_use: Option<SpecialUse>,
    acl: &Acl,
    subscribed: bool,
) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(name.as_str().as_bytes());
    h.update(&[0]);
    if let Some(u) = special_use {
        h.update(u.as_str().as_bytes());
    }
    h.update(&[0]);
    let mut entries: Vec<&(String, crate::acl::Rights)> = acl.entries.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, rights) in entries {
        h.update(id.as_bytes());
        h.update(&[0]);
        h.update(rights.to_string().as_bytes());
        h.update(&[0]);
    }
    h.update(&[u8::from(subscribed)]);
    h.finalize()
}

/// A position in a store's change feed (see [`Replication::changed_accounts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct ChangePosition(pub u64);

/// Accounts changed after a [`ChangePosition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedAccounts {
    /// The position to ask from next time.
    pub position: ChangePosition,
    /// Users whose namespace or mailboxes changed, sorted.
    pub users: Vec<String>,
}

/// Wakes the replication client when anything in the store changes.
#[derive(Debug, Clone)]
pub struct ChangeWatch {
    rx: tokio::sync::watch::Receiver<ChangePosition>,
}

/// The sending side of a [`ChangeWatch`], kept by the store.
#[derive(Debug)]
pub struct ChangeNotifier {
    tx: tokio::sync::watch::Sender<ChangePosition>,
}

impl ChangeWatch {
    /// A notifier and a first watch.
    pub fn channel(initial: ChangePosition) -> (ChangeNotifier, ChangeWatch) {
        let (tx, rx) = tokio::sync::watch::channel(initial);
        (ChangeNotifier { tx }, ChangeWatch { rx })
    }

    /// Waits for the next change; `None` if the store is gone.
    pub async fn changed(&mut self) -> Option<ChangePosition> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }

    /// The latest position published.
    pub fn current(&self) -> ChangePosition {
        *self.rx.borrow()
    }
}

impl ChangeNotifier {
    /// Publishes a new position.
    pub fn notify(&self, position: ChangePosition) {
        self.tx.send_replace(position);
    }

    /// Another watch.
    pub fn subscribe(&self) -> ChangeWatch {
        ChangeWatch {
            rx: self.tx.subscribe(),
        }
    }
}

/// A store that can be replicated, as the primary (reading) and as the
/// replica (applying). Mailboxes are named by owner and name and checked
/// against the UIDVALIDITY the caller expects: a mismatch (the mailbox was
/// renamed or replaced meanwhile) is [`crate::Error::NoSuchMailbox`], and
/// the caller compares the account again.
#[async_trait]
pub trait Replication: Storage + Debug {
    /// Every user with data in the store, sorted.
    async fn accounts(&self) -> Result<Vec<String>>;

    /// A watch that wakes after every change, whoever made it.
    fn watch_changes(&self) -> ChangeWatch;

    /// Whether the distance between two [`ChangePosition`]s counts changes
    /// (a feed that numbers every change, as the memory and CRC stores'
    /// do) rather than only ordering them (PostgreSQL's positions are
    /// transaction ids, which work that changes no account takes too). A
    /// replication status reports pending changes from the distance only
    /// when it does; else from the pending accounts. The default is true.
    fn positions_count_changes(&self) -> bool {
        true
    }

    /// The users whose data changed after `since` (all users for
    /// `ChangePosition(0)` or a position from before a restart of the
    /// store), and the position to ask from next time.
    async fn changed_accounts(&self, since: ChangePosition) -> Result<ChangedAccounts>;

    /// The account's namespace, or `None` if the store has no such user.
    async fn account_state(&self, user: &str) -> Result<Option<AccountState>>;

    /// Records of the mailbox changed after `since` with a UID above
    /// `after`, at most `limit` of them (see [`RecordsSince`]).
    async fn records_since(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        since: ModSeq,
        after: Uid,
        limit: usize,
    ) -> Result<RecordsSince>;

    /// The given UIDs' records (absent UIDs left out), ascending.
    async fn records(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uids: &[Uid],
    ) -> Result<Vec<ReplicaRecord>>;

    /// Every live message's UID and [`ReplicaRecord::state_crc`],
    /// ascending UID, with the head as of the same instant.
    async fn record_digests(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<(MailboxHead, Vec<(Uid, u32)>)>;

    /// A message's bytes, checked against its GUID.
    async fn message_content(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uid: Uid,
    ) -> Result<Bytes>;

    /// The bytes of several messages of one mailbox, each checked against
    /// its GUID, in the order of `uids`; a UID the mailbox no longer holds
    /// (expunged meanwhile) is left out. One call per page of records
    /// instead of one per message, so a store can find the mailbox once.
    /// The default asks [`Replication::message_content`] for each.
    async fn message_contents(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uids: &[Uid],
    ) -> Result<Vec<(Uid, Bytes)>> {
        let mut out = Vec::with_capacity(uids.len());
        for uid in uids {
            match self.message_content(mailbox, uid_validity, *uid).await {
                Ok(content) => out.push((*uid, content)),
                Err(crate::Error::NoSuchMessage(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Applies a namespace change of `user` (replica side).
    async fn apply_namespace(&self, user: &str, op: NamespaceOp) -> Result<()>;

    /// The mailbox's last [`SyncPoint`], if replication recorded one for
    /// this incarnation. The default knows none (a merge then treats every
    /// message as changed since the split and loses nothing).
    async fn sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<Option<SyncPoint>> {
        let _ = (mailbox, uid_validity);
        Ok(None)
    }

    /// Records a [`SyncPoint`] (both ends do, after a verified batch),
    /// clearing a [`PendingSyncPoint`]. The default keeps nothing. It need
    /// not be durable: a sync point lost in a crash leaves the one before
    /// (or none), which makes the next comparison resend or merge more and
    /// never loses anything; on a primary the pending point, durable and
    /// written before the batch, stands in for it. A store may skip the
    /// write when the point is already recorded.
    async fn set_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        point: SyncPoint,
    ) -> Result<()> {
        let _ = (mailbox, uid_validity, point);
        Ok(())
    }

    /// Primary side: the [`PendingSyncPoint`] recorded and not yet
    /// cleared by [`Replication::set_sync_point`], if any. The default
    /// knows none (a primary killed after its replica recorded a batch's
    /// sync point then merges, which loses nothing).
    async fn pending_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<Option<PendingSyncPoint>> {
        let _ = (mailbox, uid_validity);
        Ok(None)
    }

    /// Primary side: records `pending` durably (keeping the sync point,
    /// which this makes durable too) before a batch with that expected
    /// head is sent. The default keeps nothing.
    async fn set_pending_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        pending: PendingSyncPoint,
    ) -> Result<()> {
        let _ = (mailbox, uid_validity, pending);
        Ok(())
    }

    /// Replica side, when reading the mailbox's records failed with
    /// [`crate::Error::Corruption`]: drops the records that fail the
    /// store's own checks (a damaged index record) so that the rest can be
    /// read and compared, keeping UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ;
    /// the primary's digest resync then resends the dropped messages, bytes
    /// included. Returns how many records were dropped. A store whose
    /// records cannot be damaged (the default) drops none.
    async fn salvage(&self, mailbox: &MailboxRef, uid_validity: UidValidity) -> Result<u32> {
        let _ = (mailbox, uid_validity);
        Ok(0)
    }

    /// Applies a batch to a mailbox (replica side), keeping the given UIDs
    /// and modseqs. Message bytes must match their GUID (the caller checks,
    /// the store may check again). A message sent with its bytes replaces
    /// what the store holds under that UID, even with the same GUID: this
    /// is how a message damaged on the replica's disk is repaired.
    async fn apply_messages(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        batch: ApplyBatch,
    ) -> Result<Applied>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::flags::Flag;

    /// The worked example of `protocols/sync/PROTOCOL.md`, "State CRC".
    #[test]
    fn protocol_md_worked_example() {
        let empty = ReplicaRecord {
            uid: Uid(1),
            modseq: ModSeq(2),
            flags: Flags::default(),
            internal_date: InternalDate {
                timestamp: 0,
                offset_minutes: 0,
            },
            size: 0,
            guid: MessageGuid::of(b""),
            seen_by: vec![],
            save_date: None,
        };
        assert_eq!(empty.state_crc(), 0x672b_d985);
        let body = b"Subject: hi\r\n\r\nbody\r\n";
        let flagged = ReplicaRecord {
            uid: Uid(7),
            modseq: ModSeq(40),
            flags: [
                Flag::Keyword("Junk".into()),
                Flag::Seen,
                Flag::Flagged,
                Flag::Keyword("$Forwarded".into()),
            ]
            .into_iter()
            .collect(),
            internal_date: InternalDate {
                timestamp: 1_700_000_123,
                offset_minutes: 60,
            },
            size: body.len() as u64,
            guid: MessageGuid::of(body),
            seen_by: vec!["not covered".into()],
            save_date: Some(1_700_000_999), // not covered either
        };
        assert_eq!(flagged.state_crc(), 0x39cc_9209);
        assert_eq!(StateCrc::of([&empty, &flagged]), StateCrc(0x5ee7_4b8c));
        let mut crc = StateCrc::of([&empty, &flagged]);
        crc.toggle(flagged.state_crc());
        assert_eq!(crc, StateCrc(empty.state_crc()), "XOR removes a record");
    }
}
