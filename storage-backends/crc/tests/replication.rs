//! The CRC store's side of replication beyond the conformance suite: what
//! a replica applied survives a reopen (and `verify`), a UID between
//! existing records (a split-brain merge) rewrites the index, a damaged
//! message is replaced when sent again with its bytes, expunges keep the
//! primary's modseq, and sync points survive a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use bytes::Bytes;
use mailroom_core::replication::{
    ApplyBatch, NamespaceOp, ReplicaMessage, ReplicaRecord, StateCrc, SyncPoint,
};
use mailroom_core::{
    Flag, Flags, InternalDate, MailboxName, MailboxRef, MessageGuid, ModSeq, Replication, Storage,
    Uid, UidValidity,
};
use mailroom_store_crc::CrcStore;

const USER: &str = "carol@example.com";

fn inbox() -> MailboxRef {
    MailboxRef::new(USER, MailboxName::inbox())
}

fn message(uid: u32, modseq: u64, keyword: &str) -> ReplicaMessage {
    let body = Bytes::from(format!("Subject: {uid}\r\n\r\nbody of {uid}\r\n"));
    ReplicaMessage {
        record: ReplicaRecord {
            uid: Uid(uid),
            modseq: ModSeq(modseq),
            flags: [Flag::Seen, Flag::Keyword(keyword.into())]
                .into_iter()
                .collect(),
            internal_date: InternalDate {
                timestamp: 1_700_000_000 + i64::from(uid),
                offset_minutes: 60,
            },
            size: body.len() as u64,
            guid: MessageGuid::of(&body),
            seen_by: vec![],
            // the primary's SAVEDATE, kept by the replica (RFC 8514)
            save_date: Some(1_700_100_000 + i64::from(uid)),
        },
        content: Some(body),
    }
}

async fn replica(dir: &Path) -> CrcStore {
    let s = common::open(dir, true);
    if s.account_state(USER).await.unwrap().is_none() {
        s.apply_namespace(
            USER,
            NamespaceOp::Create {
                name: MailboxName::inbox(),
                uid_validity: UidValidity(77),
                special_use: None,
                mailbox_id: None,
            },
        )
        .await
        .unwrap();
    }
    s
}

async fn all(s: &CrcStore) -> Vec<ReplicaRecord> {
    s.records_since(&inbox(), UidValidity(77), ModSeq(0), Uid(0), usize::MAX)
        .await
        .unwrap()
        .records
}

#[tokio::test]
async fn applied_batches_survive_a_reopen_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let uv = UidValidity(77);
    {
        let s = replica(dir.path()).await;
        let applied = s
            .apply_messages(
                &inbox(),
                uv,
                ApplyBatch {
                    messages: vec![message(3, 10, "a"), message(8, 12, "b")],
                    expunged: vec![],
                    uid_next: Some(Uid(20)),
                    highest_modseq: Some(ModSeq(15)),
                },
            )
            .await
            .unwrap();
        assert_eq!(applied.head.uid_next, Uid(20));
        assert_eq!(applied.head.highest_modseq, ModSeq(15));
        // a UID between the two: the index is rewritten in UID order
        let applied = s
            .apply_messages(
                &inbox(),
                uv,
                ApplyBatch {
                    messages: vec![message(5, 16, "c"), message(25, 17, "a")],
                    expunged: vec![(Uid(3), ModSeq(18))],
                    uid_next: None,
                    highest_modseq: Some(ModSeq(18)),
                },
            )
            .await
            .unwrap();
        assert_eq!(applied.head.uid_next, Uid(26), "above the highest UID");
        assert_eq!(applied.head.messages, 3);
        let page = s
            .records_since(&inbox(), uv, ModSeq(15), Uid(0), 10)
            .await
            .unwrap();
        assert_eq!(
            page.records.iter().map(|r| r.uid).collect::<Vec<_>>(),
            vec![Uid(5), Uid(25)]
        );
        assert_eq!(page.expunged, vec![(Uid(3), ModSeq(18))]);
        assert!(page.expunged_complete);
        s.set_sync_point(
            &inbox(),
            uv,
            SyncPoint {
                uid_next: Uid(26),
                highest_modseq: ModSeq(18),
                namespace: None,
            },
        )
        .await
        .unwrap();
    }
    let s = replica(dir.path()).await;
    assert_eq!(
        s.verify(&inbox()).await.unwrap(),
        3,
        "header agrees with records"
    );
    let records = all(&s).await;
    assert_eq!(
        records
            .iter()
            .map(|r| (r.uid, r.modseq))
            .collect::<Vec<_>>(),
        vec![
            (Uid(5), ModSeq(16)),
            (Uid(8), ModSeq(12)),
            (Uid(25), ModSeq(17))
        ]
    );
    let (head, digests) = s.record_digests(&inbox(), uv).await.unwrap();
    assert_eq!(head.state_crc, StateCrc::of(&records));
    assert_eq!(digests.len(), 3);
    assert_eq!(
        s.sync_point(&inbox(), uv).await.unwrap(),
        Some(SyncPoint {
            uid_next: Uid(26),
            highest_modseq: ModSeq(18),
            namespace: None,
        })
    );
    // the IMAP view agrees
    let status = s.status(&inbox(), USER).await.unwrap();
    assert_eq!((status.messages, status.uid_next), (3, Uid(26)));
    let mailbox = s.open(&inbox(), USER).await.unwrap();
    let meta = mailbox.fetch_meta(&[Uid(8)]).await.unwrap();
    assert!(meta[0].flags.contains(&Flag::Keyword("b".into())));
}

#[tokio::test]
async fn a_damaged_message_is_replaced_and_flags_change_without_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let uv = UidValidity(77);
    let s = replica(dir.path()).await;
    let original = message(4, 5, "a");
    s.apply_messages(
        &inbox(),
        uv,
        ApplyBatch {
            messages: vec![original.clone()],
            ..ApplyBatch::default()
        },
    )
    .await
    .unwrap();
    let mdir = s.mailbox_dir(&inbox()).await.unwrap();
    let file = mdir.join("msg").join("4");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[3] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    assert!(
        s.message_content(&inbox(), uv, Uid(4)).await.is_err(),
        "damaged bytes are never served"
    );
    s.apply_messages(
        &inbox(),
        uv,
        ApplyBatch {
            messages: vec![original.clone()],
            ..ApplyBatch::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.message_content(&inbox(), uv, Uid(4)).await.unwrap(),
        original.content.clone().unwrap()
    );
    // a flag change: the record only
    let mut changed = original.record.clone();
    changed.flags = Flags::default();
    changed.flags.insert(Flag::Flagged);
    changed.modseq = ModSeq(9);
    changed.seen_by = vec!["dave@example.com".into()];
    let applied = s
        .apply_messages(
            &inbox(),
            uv,
            ApplyBatch {
                messages: vec![ReplicaMessage {
                    record: changed.clone(),
                    content: None,
                }],
                ..ApplyBatch::default()
            },
        )
        .await
        .unwrap();
    assert!(applied.missing.is_empty());
    assert_eq!(all(&s).await, vec![changed]);
    assert_eq!(s.verify(&inbox()).await.unwrap(), 1);
}
