//! The replication conformance suite: what every [`Replication`]
//! implementation must do so that `mailroom-sync` can replicate it, to or
//! from any other backend. Enabled by the `conformance` feature (the storage
//! suite is the `mailroom-conformance` crate); in a backend's `tests/replication_conformance.rs`:
//!
//! ```ignore
//! use std::sync::Arc;
//! mailroom_core::replication_conformance_tests!(Arc::new(my_backend::Store::new()));
//! ```
//!
//! The expression is evaluated afresh for every check (some checks use two
//! stores, a primary and a replica) and must give an `Arc<S>` where
//! `S: Replication + Quota + 'static`. Every check panics with what was
//! expected and what the backend did. What the suite fixes:
//!
//! - the head's state CRC is the XOR of the record CRCs of exactly the live
//!   messages, after appends, flag changes (the owner's and another
//!   viewer's), expunges, copies and moves; digests agree with records;
//! - `records_since` returns exactly the records with a higher modseq, in
//!   UID order, pages without loss, and the expunges after the modseq;
//! - a replica built only through `apply_namespace` and `apply_messages`
//!   from a primary's records equals the primary: UIDVALIDITY, UIDs,
//!   modseqs, flags, dates, bytes, head; a batch with bytes that do not
//!   match their GUID changes nothing; a record without bytes for a
//!   message the replica lacks is reported missing;
//! - a batch without the primary's figures (a page before the last) leaves
//!   HIGHESTMODSEQ at or above every modseq it applied, a record's or an
//!   expunge's, so that the replica's next change of its own gets a modseq
//!   above them all;
//! - an applied record keeps the SAVEDATE it carries (RFC 8514);
//! - a mailbox created through `apply_namespace` with a MAILBOXID keeps it
//!   (STATUS, `account_state`, after a rename), so that a promoted replica
//!   shows clients the primary's (RFC 8474), and `SetAttributes` with one
//!   gives an existing mailbox that id;
//! - namespace operations show through the `Storage` API;
//! - the change feed names the changed account and wakes its watch;
//! - sync points (with the primary's namespace digest) are kept per
//!   incarnation;
//! - a UIDVALIDITY that is not the mailbox's is `NoSuchMailbox`;
//! - the writes of a split-brain merge (`mailroom-sync`'s `Primary`, and
//!   PROTOCOL.md "Split brain") apply to a mailbox that changed on its own
//!   since its sync point: messages renumbered above both ends' UIDNEXT
//!   with their bytes, the UIDs they leave expunged, flags of a message
//!   changed on both ends replaced, an expunge from the other end; one new
//!   modseq above both HIGHESTMODSEQs. UIDVALIDITY stays, and a CONDSTORE/
//!   QRESYNC client that had synced at the split or just before the merge
//!   learns every change and vanished UID through `changes_since`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{
    ApplyBatch, ChangePosition, MailboxHead, NamespaceOp, PendingSyncPoint, ReplicaMessage,
    ReplicaRecord, Replication, StateCrc, SyncPoint,
};
use crate::MailboxId;
use crate::acl::Rights;
use crate::error::Error;
use crate::flags::{Flag, StoreOp};
use crate::mailbox::{MailboxName, MailboxRef, SpecialUse};
use crate::message::{InternalDate, NewMessage};
use crate::quota::{Quota, QuotaLimits};
use crate::storage::Mailbox;
use crate::types::{ModSeq, Uid, UidValidity};

/// The MAILBOXID `namespace_ops` creates a mailbox with.
const OLD_ID: MailboxId = MailboxId([9; 16]);
/// The MAILBOXID `namespace_ops` gives INBOX after its creation.
const INBOX_ID: MailboxId = MailboxId([5; 16]);

/// The owner of the mailboxes in the checks.
pub const ALICE: &str = "alice@example.com";
/// Another viewer (per-user `\Seen`).
pub const BOB: &str = "bob@example.com";

/// One `#[tokio::test]` per check (see the module docs).
#[macro_export]
macro_rules! replication_conformance_tests {
    ($make:expr) => {
        $crate::__replication_conformance_tests!($make;
            state_crc_follows_every_change, records_since_pages, replica_from_records,
            partial_batch_highest_modseq, namespace_ops, change_feed, sync_points,
            wrong_uid_validity, split_brain_apply);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __replication_conformance_tests {
    ($make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::replication::conformance::$check(|| $make).await;
            }
        )*
    };
}

fn message(i: u32) -> NewMessage {
    NewMessage {
        flags: [Flag::Keyword(format!("$Tag{}", i % 3))]
            .into_iter()
            .collect(),
        internal_date: Some(InternalDate {
            timestamp: 1_700_000_000 + i64::from(i),
            offset_minutes: -120,
        }),
        content: Bytes::from(format!(
            "Subject: {i}\r\nMessage-ID: <{i}@c>\r\n\r\nbody {i}\r\n"
        )),
    }
}

fn inbox() -> MailboxRef {
    MailboxRef::new(ALICE, MailboxName::inbox())
}

async fn uid_validity<S: Replication + ?Sized>(store: &S, mailbox: &MailboxRef) -> UidValidity {
    store
        .status(mailbox, &mailbox.owner)
        .await
        .unwrap_or_else(|e| panic!("status of {mailbox}: {e}"))
        .uid_validity
}

/// The mailbox's sync point (the check fails on an error).
async fn sync_point_of<S: Replication + ?Sized>(
    store: &S,
    mailbox: &MailboxRef,
    uv: UidValidity,
) -> Option<SyncPoint> {
    store
        .sync_point(mailbox, uv)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The mailbox's pending sync point (the check fails on an error).
async fn pending_of<S: Replication + ?Sized>(
    store: &S,
    mailbox: &MailboxRef,
    uv: UidValidity,
) -> Option<PendingSyncPoint> {
    store
        .pending_sync_point(mailbox, uv)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn all_records<S: Replication + ?Sized>(
    store: &S,
    mailbox: &MailboxRef,
    uv: UidValidity,
) -> Vec<ReplicaRecord> {
    let page = store
        .records_since(mailbox, uv, ModSeq(0), Uid(0), usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("records_since of {mailbox}: {e}"));
    assert!(!page.more, "an unlimited page says there is more");
    page.records
}

/// Gives ALICE an account with `message(i)` for `i` in `0..n` in INBOX;
/// INBOX's UIDVALIDITY.
async fn filled_inbox<S: Replication + ?Sized>(store: &S, n: u32) -> UidValidity {
    store
        .ensure_account(ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..n {
        store
            .append(&inbox(), message(i))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    uid_validity(store, &inbox()).await
}

/// Creates ALICE's INBOX on `replica` through `apply_namespace`, with the
/// primary's UIDVALIDITY and MAILBOXID.
async fn replica_inbox<S: Replication + ?Sized>(
    replica: &S,
    uv: UidValidity,
    mailbox_id: Option<MailboxId>,
) {
    replica
        .apply_namespace(
            ALICE,
            NamespaceOp::Create {
                name: MailboxName::inbox(),
                uid_validity: uv,
                special_use: None,
                mailbox_id,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("replica CREATE with the primary's UIDVALIDITY: {e}"));
}

/// Adds `flag` to `uids` through `mailbox` (the check fails on an error).
async fn add_flag(mailbox: &dyn Mailbox, uids: &[Uid], flag: Flag) {
    mailbox
        .store(uids, &StoreOp::Add([flag].into_iter().collect()), None)
        .await
        .unwrap_or_else(|e| panic!("STORE: {e}"));
}

/// Checks the head of `mailbox` against its records and digests.
async fn assert_consistent<S: Replication + ?Sized>(store: &S, mailbox: &MailboxRef, step: &str) {
    let uv = uid_validity(store, mailbox).await;
    let records = all_records(store, mailbox, uv).await;
    let (head, digests) = store
        .record_digests(mailbox, uv)
        .await
        .unwrap_or_else(|e| panic!("{step}: record_digests: {e}"));
    assert_eq!(
        head.state_crc,
        StateCrc::of(&records),
        "{step}: the state CRC is not the XOR of the record CRCs"
    );
    assert_eq!(
        head.messages as usize,
        records.len(),
        "{step}: message count"
    );
    let expected: Vec<(Uid, u32)> = records.iter().map(|r| (r.uid, r.state_crc())).collect();
    assert_eq!(digests, expected, "{step}: digests disagree with records");
    let status = store
        .status(mailbox, &mailbox.owner)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (head.uid_next, head.highest_modseq),
        (status.uid_next, status.highest_modseq),
        "{step}: head and STATUS disagree"
    );
}

/// The state CRC follows appends, flag changes, expunges, copies and moves.
pub async fn state_crc_follows_every_change<S, F>(make: F)
where
    S: Replication + Quota + 'static,
    F: Fn() -> Arc<S>,
{
    let store = make();
    store
        .ensure_account(ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let archive = MailboxRef::new(
        ALICE,
        MailboxName::new("Archive").unwrap_or_else(|e| panic!("{e}")),
    );
    store
        .create(&archive, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_consistent(&*store, &inbox(), "empty").await;
    for i in 0..6 {
        store
            .append(&inbox(), message(i))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_consistent(&*store, &inbox(), "after appends").await;
    let owner = store
        .open(&inbox(), ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    owner
        .store(
            &[Uid(1), Uid(2)],
            &StoreOp::Add([Flag::Flagged, Flag::Deleted].into_iter().collect()),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_consistent(&*store, &inbox(), "after the owner's STORE").await;
    let bob = store
        .open(&inbox(), BOB)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    add_flag(&*bob, &[Uid(3)], Flag::Seen).await;
    assert_consistent(&*store, &inbox(), "after another viewer's STORE").await;
    owner.expunge(None).await.unwrap_or_else(|e| panic!("{e}"));
    assert_consistent(&*store, &inbox(), "after EXPUNGE").await;
    owner
        .copy_to(&[Uid(3)], &archive)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    owner
        .move_to(&[Uid(4)], &archive)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_consistent(&*store, &inbox(), "after COPY and MOVE out").await;
    assert_consistent(&*store, &archive, "after COPY and MOVE in").await;
}

/// `records_since` is exact, pages without loss, and reports expunges.
pub async fn records_since_pages<S, F>(make: F)
where
    S: Replication + Quota + 'static,
    F: Fn() -> Arc<S>,
{
    let store = make();
    let uv = filled_inbox(&*store, 8).await;
    let middle = all_records(&*store, &inbox(), uv).await[3].modseq;
    let owner = store
        .open(&inbox(), ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    add_flag(&*owner, &[Uid(2), Uid(7)], Flag::Deleted).await;
    owner
        .expunge(Some(&[Uid(2)]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all = all_records(&*store, &inbox(), uv).await;
    let expected: Vec<Uid> = all
        .iter()
        .filter(|r| r.modseq > middle)
        .map(|r| r.uid)
        .collect();
    let mut got = Vec::new();
    let mut after = Uid(0);
    let expunged = loop {
        let page = store
            .records_since(&inbox(), uv, middle, after, 2)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(page.records.len() <= 2, "a page holds more than its limit");
        assert!(
            page.records.windows(2).all(|w| w[0].uid < w[1].uid),
            "pages are in UID order"
        );
        if let Some(last) = page.records.last() {
            after = last.uid;
        }
        got.extend(page.records.iter().map(|r| r.uid));
        if !page.more {
            assert!(
                page.expunged_complete,
                "expunges of a fresh mailbox are complete"
            );
            break page.expunged;
        }
    };
    assert_eq!(got, expected, "records changed after modseq {middle}");
    assert_eq!(
        expunged.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        vec![Uid(2)],
        "expunges after modseq {middle}"
    );
    assert!(
        expunged[0].1 > middle,
        "an expunge's modseq is above the one asked from"
    );
}

/// A replica built from a primary's records through the apply methods
/// equals the primary; bad bytes change nothing; missing bytes are reported.
pub async fn replica_from_records<S, F>(make: F)
where
    S: Replication + Quota + 'static,
    F: Fn() -> Arc<S>,
{
    let primary = make();
    let replica = make();
    let uv = filled_inbox(&*primary, 5).await;
    let owner = primary
        .open(&inbox(), ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    owner
        .store(
            &[Uid(2)],
            &StoreOp::Replace(
                [Flag::Answered, Flag::Keyword("Work".into())]
                    .into_iter()
                    .collect(),
            ),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bob = primary
        .open(&inbox(), BOB)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    add_flag(&*bob, &[Uid(5)], Flag::Seen).await;
    let page = primary
        .records_since(&inbox(), uv, ModSeq(0), Uid(0), usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        page.records[4].seen_by,
        vec![BOB.to_owned()],
        "seen_by carries another viewer's \\Seen"
    );

    let primary_id = primary
        .status(&inbox(), ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .mailbox_id;
    let listed_id = primary
        .account_state(ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .and_then(|a| a.mailboxes.into_iter().find(|m| m.name.is_inbox()))
        .and_then(|m| m.mailbox_id);
    assert_eq!(
        listed_id,
        Some(primary_id),
        "account_state gives the MAILBOXID that STATUS shows"
    );
    replica_inbox(&*replica, uv, Some(primary_id)).await;
    assert_eq!(
        uid_validity(&*replica, &inbox()).await,
        uv,
        "the replica keeps the primary's UIDVALIDITY"
    );
    assert_eq!(
        replica
            .status(&inbox(), ALICE)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .mailbox_id,
        primary_id,
        "the replica keeps the primary's MAILBOXID"
    );

    assert!(
        page.records.iter().all(|r| r.save_date.is_some()),
        "records give their SAVEDATE"
    );
    // SAVEDATEs long past, so that one made on applying cannot match
    let mut expected = page.records.clone();
    for r in &mut expected {
        r.save_date = Some(1_500_000_000 + i64::from(r.uid.0));
    }
    let mut messages = Vec::new();
    for record in &expected {
        let content = primary
            .message_content(&inbox(), uv, record.uid)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        messages.push(ReplicaMessage {
            record: record.clone(),
            content: Some(content),
        });
    }
    let mut forged = messages.clone();
    forged[1].content = Some(Bytes::from_static(b"Subject: not this\r\n\r\n"));
    let refused = replica
        .apply_messages(
            &inbox(),
            uv,
            ApplyBatch {
                messages: forged,
                ..ApplyBatch::default()
            },
        )
        .await;
    assert!(
        refused.is_err(),
        "bytes that do not match their GUID were applied"
    );
    assert_eq!(
        replica
            .status(&inbox(), ALICE)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .messages,
        0,
        "a refused batch applied something"
    );

    let applied = replica
        .apply_messages(
            &inbox(),
            uv,
            ApplyBatch {
                messages,
                expunged: page.expunged.clone(),
                uid_next: Some(page.head.uid_next),
                highest_modseq: Some(page.head.highest_modseq),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("apply_messages: {e}"));
    assert!(applied.missing.is_empty());
    assert_eq!(
        applied.head, page.head,
        "the replica's head equals the primary's"
    );
    assert_eq!(
        all_records(&*replica, &inbox(), uv).await,
        expected,
        "records equal, SAVEDATE included"
    );
    for r in &page.records {
        let a = primary
            .message_content(&inbox(), uv, r.uid)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let b = replica
            .message_content(&inbox(), uv, r.uid)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a, b, "bytes of UID {}", r.uid);
    }

    let mut unknown = page.records[0].clone();
    unknown.uid = Uid(40);
    let applied = replica
        .apply_messages(
            &inbox(),
            uv,
            ApplyBatch {
                messages: vec![ReplicaMessage {
                    record: unknown,
                    content: None,
                }],
                ..ApplyBatch::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        applied.missing,
        vec![Uid(40)],
        "a record without bytes for a message the replica lacks"
    );
}

/// A batch without the primary's figures still raises HIGHESTMODSEQ to
/// the modseqs it applies (see the module docs).
pub async fn partial_batch_highest_modseq<S, F>(make: F)
where
    S: Replication + Quota + 'static,
    F: Fn() -> Arc<S>,
{
    let primary = make();
    let replica = make();
    let uv = filled_inbox(&*primary, 3).await;
    replica_inbox(&*replica, uv, None).await;
    // modseqs far above the replica's own, as on a primary with a history
    let mut messages = Vec::new();
    for mut record in all_records(&*primary, &inbox(), uv).await {
        record.modseq = ModSeq(40 + u64::from(record.uid.0));
        let content = primary
            .message_content(&inbox(), uv, record.uid)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        messages.push(ReplicaMessage {
            record,
            content: Some(content),
        });
    }
    let top = messages
        .iter()
        .map(|m| m.record.modseq)
        .max()
        .unwrap_or_else(|| panic!("no records"));
    let expunge = ModSeq(top.0 + 20);
    let batches = [
        (
            ApplyBatch {
                messages,
                ..ApplyBatch::default()
            },
            top,
            "a record's",
        ),
        (
            ApplyBatch {
                expunged: vec![(Uid(2), expunge)],
                ..ApplyBatch::default()
            },
            expunge,
            "an expunge's",
        ),
    ];
    for (batch, floor, what) in batches {
        let applied = replica
            .apply_messages(&inbox(), uv, batch)
            .await
            .unwrap_or_else(|e| panic!("apply_messages: {e}"));
        assert!(
            applied.head.highest_modseq >= floor,
            "HIGHESTMODSEQ {} below {what} modseq {floor}",
            applied.head.highest_modseq
        );
        let step = format!("after a batch with {what} modseq");
        assert_consistent(&*replica, &inbox(), &step).await;
    }

    // The replica's own next change is seen by a client that synced at the
    // applied modseqs.
    let owner = replica
        .open(&inbox(), ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    add_flag(&*owner, &[Uid(1)], Flag::Flagged).await;
    let changed: Vec<Uid> = owner
        .changes_since(expunge)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .changed
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(
        changed,
        vec![Uid(1)],
        "a local change after the batches is above their modseqs"
    );
}

/// Namespace operations show through the `Storage` and `Quota` APIs.
pub async fn namespace_ops<S, F>(make: F)
where
    S: Replication + Quota + 'static,
    F: Fn() -> Arc<S>,
{
    let store = make();
    let name = |s: &str| MailboxName::new(s).unwrap_or_else(|e| panic!("{e}"));
    let ops = [
        NamespaceOp::Create {
            name: MailboxName::inbox(),
            uid_validity: UidValidity(7),
            special_use: None,
            mailbox_id: None,
        },
        NamespaceOp::Create {
            name: name("Sent"),
            uid_validity: UidValidity(8),
            special_use: Some(SpecialUse::Sent),
            mailbox_id: None,
        },
        NamespaceOp::Create {
            name: name("Old"),
            uid_validity: UidValidity(9),
            special_use: None,
            mailbox_id: Some(OLD_ID),
        },
        NamespaceOp::Rename {
            from: name("Old"),
            to: name("New"),
        },
        NamespaceOp::SetAttributes {
            name: name("New"),
            special_use: Some(SpecialUse::Archive),
            acl: {
                let mut acl = crate::acl::Acl::default();
                acl.set(BOB, Rights::parse("lr"));
                acl
            },
            mailbox_id: None,
        },
        // a replica's mailbox made before replication carried MAILBOXID
        // takes the primary's
        NamespaceOp::SetAttributes {
            name: MailboxName::inbox(),
            special_use: None,
            acl: crate::acl::Acl::default(),
            mailbox_id: Some(INBOX_ID),
        },
        NamespaceOp::SetSubscriptions(vec![MailboxName::inbox(), name("New")]),
        NamespaceOp::SetQuota(QuotaLimits {
            storage_bytes: Some(1 << 20),
            messages: Some(10),
        }),
        NamespaceOp::Delete { name: name("Sent") },
    ];
    for op in ops {
        let text = format!("{op:?}");
        store
            .apply_namespace(ALICE, op)
            .await
            .unwrap_or_else(|e| panic!("{text}: {e}"));
    }
    let mut names: Vec<String> = store
        .list(ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|m| m.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["INBOX", "New"],
        "no default mailboxes added, rename and delete applied"
    );
    let new = MailboxRef::new(ALICE, name("New"));
    assert_eq!(
        uid_validity(&*store, &new).await,
        UidValidity(9),
        "rename keeps UIDVALIDITY"
    );
    assert_eq!(
        store
            .status(&new, ALICE)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .mailbox_id,
        OLD_ID,
        "CREATE with a MAILBOXID keeps it, and rename keeps it"
    );
    assert_eq!(
        store
            .status(&MailboxRef::new(ALICE, MailboxName::inbox()), ALICE)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .mailbox_id,
        INBOX_ID,
        "SetAttributes with a MAILBOXID gives the mailbox that id"
    );
    assert_eq!(
        store
            .acl(&new)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .rights_of(BOB),
        Rights::parse("lr").unwrap_or_default()
    );
    let state = store
        .account_state(ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no account"));
    assert_eq!(
        state
            .mailboxes
            .iter()
            .find(|m| m.name == name("New"))
            .map(|m| m.special_use),
        Some(Some(SpecialUse::Archive))
    );
    assert_eq!(
        state
            .mailboxes
            .iter()
            .find(|m| m.name == name("New"))
            .map(|m| m.mailbox_id),
        Some(Some(OLD_ID)),
        "account_state gives the MAILBOXID a CREATE set"
    );
    let mut subs = store
        .subscriptions(ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    subs.sort();
    assert_eq!(subs, vec![MailboxName::inbox(), name("New")]);
    assert_eq!(
        store
            .usage(ALICE)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .limits
            .messages,
        Some(10)
    );
    store
        .apply_namespace(
            ALICE,
            NamespaceOp::Delete {
                name: MailboxName::inbox(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("replication may delete INBOX (to replace it): {e}"));
}

/// The change feed names the changed account and wakes its watch.
pub async fn change_feed<S, F>(make: F)
where
    S: Replication + Quota + 'static,
    F: Fn() -> Arc<S>,
{
    let store = make();
    store
        .ensure_account(ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .ensure_account(BOB)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all = store
        .changed_accounts(ChangePosition(0))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        all.users.contains(&ALICE.to_owned()) && all.users.contains(&BOB.to_owned()),
        "position 0 names every account: {:?}",
        all.users
    );
    let quiet = store
        .changed_accounts(all.position)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        quiet.users.is_empty(),
        "nothing changed, yet {:?}",
        quiet.users
    );
    let mut watch = store.watch_changes();
    store
        .append(&inbox(), message(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::timeout(Duration::from_secs(10), watch.changed())
        .await
        .unwrap_or_else(|_| panic!("the change watch did not wake after an append"));
    let changed = store
        .changed_accounts(all.position)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        changed.users,
        vec![ALICE.to_owned()],
        "only the changed account"
    );
    assert!(changed.position > all.position);
}

/// Sync points are kept per mailbox incarnation.
pub async fn sync_points<S, F>(make: F)
where
    S: Replication + Quota + 'static,
    F: Fn() -> Arc<S>,
{
    let store = make();
    store
        .ensure_account(ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let boxed = MailboxRef::new(
        ALICE,
        MailboxName::new("Box").unwrap_or_else(|e| panic!("{e}")),
    );
    store
        .create(&boxed, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let uv = uid_validity(&*store, &boxed).await;
    assert_eq!(sync_point_of(&*store, &boxed, uv).await, None);
    // with the primary's namespace digest, which must be kept too
    let point = SyncPoint {
        uid_next: Uid(1),
        highest_modseq: ModSeq(1),
        namespace: Some(0x5eed_f00d),
    };
    store
        .set_sync_point(&boxed, uv, point)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sync_point_of(&*store, &boxed, uv).await, Some(point));
    // A pending point is kept beside the sync point, which it does not
    // change, until the next sync point clears it.
    let head = store
        .record_digests(&boxed, uv)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0;
    let pending = PendingSyncPoint {
        head: MailboxHead {
            uid_next: Uid(7),
            highest_modseq: ModSeq(9),
            messages: 3,
            state_crc: StateCrc(0xdead_beef),
            ..head
        },
        namespace: Some(0x0bad_cafe),
    };
    store
        .set_pending_sync_point(&boxed, uv, pending)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pending_of(&*store, &boxed, uv).await, Some(pending));
    assert_eq!(
        sync_point_of(&*store, &boxed, uv).await,
        Some(point),
        "a pending point leaves the sync point alone"
    );
    store
        .set_sync_point(&boxed, uv, pending.point())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sync_point_of(&*store, &boxed, uv).await,
        Some(pending.point())
    );
    assert_eq!(
        pending_of(&*store, &boxed, uv).await,
        None,
        "a sync point clears the pending one"
    );
    // also the sync point it already holds (a store that skips writing an
    // unchanged point must still clear the pending one)
    store
        .set_pending_sync_point(&boxed, uv, pending)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .set_sync_point(&boxed, uv, pending.point())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            sync_point_of(&*store, &boxed, uv).await,
            pending_of(&*store, &boxed, uv).await
        ),
        (Some(pending.point()), None),
        "the same sync point again clears the pending one"
    );
    store.delete(&boxed).await.unwrap_or_else(|e| panic!("{e}"));
    store
        .create(&boxed, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let again = uid_validity(&*store, &boxed).await;
    assert_eq!(
        sync_point_of(&*store, &boxed, again).await,
        None,
        "a new incarnation has no sync point"
    );
}

/// A UIDVALIDITY that is not the mailbox's is `NoSuchMailbox`.
pub async fn wrong_uid_validity<S, F>(make: F)
where
    S: Replication + Quota + 'static,
    F: Fn() -> Arc<S>,
{
    let store = make();
    store
        .ensure_account(ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let uv = uid_validity(&*store, &inbox()).await;
    let wrong = UidValidity(uv.0.wrapping_add(1).max(1));
    let r = store
        .records_since(&inbox(), wrong, ModSeq(0), Uid(0), 10)
        .await;
    assert!(
        matches!(r, Err(Error::NoSuchMailbox(_))),
        "records_since: {r:?}"
    );
    let r = store
        .apply_messages(&inbox(), wrong, ApplyBatch::default())
        .await;
    assert!(
        matches!(r, Err(Error::NoSuchMailbox(_))),
        "apply_messages: {r:?}"
    );
}

/// The writes of a split-brain merge, on the end that changed on its own
/// since the sync point (see the module docs).
pub async fn split_brain_apply<S, F>(make: F)
where
    S: Replication + Quota + 'static,
    F: Fn() -> Arc<S>,
{
    let store = make();
    let uv = filled_inbox(&*store, 5).await;
    let split = store
        .status(&inbox(), ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let point = SyncPoint {
        uid_next: split.uid_next,
        highest_modseq: split.highest_modseq,
        namespace: None,
    };
    store
        .set_sync_point(&inbox(), uv, point)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Apart: two deliveries (UIDs 6 and 7), a flag on 1, UID 2 expunged.
    for i in 10..12 {
        store
            .append(&inbox(), message(i))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let owner = store
        .open(&inbox(), ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    add_flag(&*owner, &[Uid(1)], Flag::Flagged).await;
    add_flag(&*owner, &[Uid(2)], Flag::Deleted).await;
    owner
        .expunge(Some(&[Uid(2)]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let before = store
        .status(&inbox(), ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store
            .sync_point(&inbox(), uv)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(point),
        "local changes keep the sync point"
    );
    let records = all_records(&*store, &inbox(), uv).await;
    let record = |uid: u32| {
        records
            .iter()
            .find(|r| r.uid == Uid(uid))
            .cloned()
            .unwrap_or_else(|| panic!("no UID {uid}"))
    };
    // The merge: the other end's HIGHESTMODSEQ was higher still.
    let modseq = ModSeq(before.highest_modseq.0 + 40);
    let other = |i: u32, uid: u32| {
        let m = message(i);
        ReplicaMessage {
            record: ReplicaRecord {
                uid: Uid(uid),
                modseq,
                flags: [Flag::Seen].into_iter().collect(),
                internal_date: m.internal_date.unwrap_or(InternalDate {
                    timestamp: 0,
                    offset_minutes: 0,
                }),
                size: m.content.len() as u64,
                guid: crate::guid::MessageGuid::of(&m.content),
                seen_by: vec![],
                save_date: None,
            },
            content: Some(m.content),
        }
    };
    let mut own = Vec::new();
    for (uid, to) in [(6, 10), (7, 11)] {
        let content = store
            .message_content(&inbox(), uv, Uid(uid))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        own.push(ReplicaMessage {
            record: ReplicaRecord {
                uid: Uid(to),
                modseq,
                ..record(uid)
            },
            content: Some(content),
        });
    }
    let mut batch = ApplyBatch {
        messages: vec![
            // UID 1 changed on both ends, the other end's change won.
            ReplicaMessage {
                record: ReplicaRecord {
                    modseq,
                    flags: [Flag::Answered, Flag::Keyword("$Merged".into())]
                        .into_iter()
                        .collect(),
                    ..record(1)
                },
                content: None,
            },
            // The other end's two deliveries that took UIDs 6 and 7.
            other(20, 8),
            other(21, 9),
        ],
        // UID 3: expunged on the other end, untouched here.
        expunged: vec![(Uid(3), modseq), (Uid(6), modseq), (Uid(7), modseq)],
        uid_next: Some(Uid(13)),
        highest_modseq: Some(modseq),
    };
    // Our own 6 and 7 renumbered too; UID 2 came back (changed there).
    batch.messages.extend(own);
    batch.messages.push(other(1, 12));
    let applied = store
        .apply_messages(&inbox(), uv, batch)
        .await
        .unwrap_or_else(|e| panic!("applying a merge: {e}"));
    assert!(applied.missing.is_empty(), "{:?}", applied.missing);
    assert_consistent(&*store, &inbox(), "after a merge").await;
    let after = store
        .status(&inbox(), ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.uid_validity, split.uid_validity, "UIDVALIDITY stays");
    assert_eq!(after.uid_next, Uid(13), "UIDNEXT above every new UID");
    assert_eq!(
        after.highest_modseq, modseq,
        "HIGHESTMODSEQ raised to the merge's"
    );
    let uids: Vec<u32> = all_records(&*store, &inbox(), uv)
        .await
        .iter()
        .map(|r| r.uid.0)
        .collect();
    assert_eq!(
        uids,
        [1, 4, 5, 8, 9, 10, 11, 12],
        "live UIDs after the merge"
    );
    let one = all_records(&*store, &inbox(), uv)
        .await
        .into_iter()
        .find(|r| r.uid == Uid(1))
        .unwrap_or_else(|| panic!("UID 1 gone"));
    assert!(
        one.flags.contains(&Flag::Keyword("$Merged".into())) && !one.flags.contains(&Flag::Flagged),
        "the winning flags replace the others: {:?}",
        one.flags
    );
    for (uid, bytes) in [(10, record(6)), (11, record(7))] {
        let content = store
            .message_content(&inbox(), uv, Uid(uid))
            .await
            .unwrap_or_else(|e| panic!("UID {uid}: {e}"));
        assert_eq!(
            crate::guid::MessageGuid::of(&content),
            bytes.guid,
            "a renumbered message keeps its bytes"
        );
    }
    // What QRESYNC clients learn: one synced at the split, one just
    // before the merge.
    let mbox = store
        .open(&inbox(), ALICE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for (since, vanished) in [
        (split.highest_modseq, vec![2, 3, 6, 7]),
        (before.highest_modseq, vec![3, 6, 7]),
    ] {
        let changes = mbox
            .changes_since(since)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(changes.highest_modseq, modseq);
        let gone: Vec<u32> = changes.expunged.iter().map(|(u, _)| u.0).collect();
        assert_eq!(gone, vanished, "VANISHED since {since}");
        let changed: Vec<u32> = changes.changed.iter().map(|m| m.uid.0).collect();
        assert_eq!(changed, [1, 8, 9, 10, 11, 12], "changed since {since}");
    }
}
