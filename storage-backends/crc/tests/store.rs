//! Behaviour specific to the on-disk store: persistence across reopen, lazy
//! opening, the data-directory lock, name safety, repack, dirty headers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{inbox, new_message, open};
use mailroom_core::{
    Error, Flag, Flags, MailboxName, MailboxRef, ModSeq, Quota, SeqSet, Storage, StoreOp, Uid,
};

fn flags(list: &[Flag]) -> Flags {
    list.iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ib = inbox("alice");
    let uv;
    {
        let s = open(dir.path(), true);
        s.ensure_account("alice").await.unwrap();
        for n in 0..5 {
            s.append(&ib, new_message(n, Flags::default()))
                .await
                .unwrap();
        }
        let m = s.open(&ib, "alice").await.unwrap();
        let kw = Flag::parse("$Important").unwrap();
        m.store(
            &[Uid(2), Uid(3)],
            &StoreOp::Add(flags(&[Flag::Flagged, kw])),
            None,
        )
        .await
        .unwrap();
        m.store(&[Uid(4)], &StoreOp::Add(flags(&[Flag::Deleted])), None)
            .await
            .unwrap();
        assert_eq!(m.expunge(None).await.unwrap(), vec![Uid(4)]);
        // bob's \Seen lives in his own file
        s.set_acl(&ib, "bob", mailroom_core::Rights::parse("lrs"))
            .await
            .unwrap();
        let mb = s.open(&ib, "bob").await.unwrap();
        mb.store(&[Uid(1)], &StoreOp::Add(flags(&[Flag::Seen])), None)
            .await
            .unwrap();
        uv = m.snapshot().await.unwrap().uid_validity;
    }
    let s = open(dir.path(), true);
    let m = s.open(&ib, "alice").await.unwrap();
    let snap = m.snapshot().await.unwrap();
    assert_eq!(snap.uid_validity, uv);
    let uids: Vec<u32> = snap.messages.iter().map(|m| m.uid.0).collect();
    assert_eq!(uids, vec![1, 2, 3, 5]);
    assert!(
        snap.messages[1]
            .flags
            .contains(&Flag::Keyword("$Important".into()))
    );
    assert!(snap.messages[1].flags.contains(&Flag::Flagged));
    assert!(
        !snap.messages[0].flags.contains(&Flag::Seen),
        "bob's \\Seen leaked to alice"
    );
    let bob = s.open(&ib, "bob").await.unwrap().snapshot().await.unwrap();
    assert!(bob.messages[0].flags.contains(&Flag::Seen));
    assert_eq!(s.status(&ib, "bob").await.unwrap().unseen, 3);
    assert_eq!(s.status(&ib, "alice").await.unwrap().unseen, 4);
    let ch = m.changes_since(ModSeq(1)).await.unwrap();
    assert_eq!(ch.expunged.len(), 1);
    assert!(ch.expunged_complete);
    assert_eq!(s.verify(&ib).await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_only_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let ib = inbox("alice");
    {
        let s = open(dir.path(), false);
        s.ensure_account("alice").await.unwrap();
        for n in 0..20 {
            s.append(&ib, new_message(n, Flags::default()))
                .await
                .unwrap();
        }
    }
    let s = open(dir.path(), false);
    let before = s.io_counters();
    let st = s.status(&ib, "alice").await.unwrap();
    assert_eq!(st.messages, 20);
    let after = s.io_counters();
    assert_eq!(after.header_reads, before.header_reads + 1);
    assert_eq!(
        after.index_loads, before.index_loads,
        "STATUS mapped the index"
    );
    assert_eq!(after.cache_opens, 0, "STATUS opened the cache");
    assert_eq!(after.message_reads, 0);
    // SELECT + FETCH FLAGS maps the index but opens neither cache nor messages
    let m = s.open(&ib, "alice").await.unwrap();
    m.snapshot().await.unwrap();
    let c = s.io_counters();
    assert_eq!(c.index_loads, 1);
    assert_eq!((c.cache_opens, c.message_reads), (0, 0));
    // FETCH ENVELOPE BODYSTRUCTURE of everything: the cache only
    let all: Vec<Uid> = (1..=20).map(Uid).collect();
    let sums = m.summaries(&all).await.unwrap();
    assert_eq!(sums.len(), 20);
    assert!(sums[3].1.header.starts_with(b"From: Sender 3"));
    let c = s.io_counters();
    assert_eq!(c.cache_opens, 1);
    assert_eq!(
        c.message_reads, 0,
        "FETCH of summaries opened a message file"
    );
    // and quota usage, too, is header-only
    let q = s.usage("alice").await.unwrap();
    assert_eq!(q.messages, 20);
    assert_eq!(s.io_counters().message_reads, 0);
}

#[tokio::test]
async fn second_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _s = open(dir.path(), false);
    match mailroom_store_crc::CrcStore::open(dir.path(), Default::default()) {
        Err(Error::Busy(msg)) => assert!(msg.contains("in use by another process"), "{msg}"),
        other => panic!("expected Busy, got {other:?}"),
    }
}

#[tokio::test]
async fn hostile_names_stay_inside_the_data_dir() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    let s = open(&data, false);
    for user in ["../../evil", "..", ".", "a/b", "ü/..", "%2e%2e"] {
        s.ensure_account(user).await.unwrap();
        let m = MailboxRef::new(
            user,
            MailboxName::new("../x/Ördner")
                .unwrap_or_else(|_| MailboxName::new("x/Ördner").unwrap()),
        );
        s.create(&m, None).await.unwrap();
        s.append(&m, new_message(1, Flags::default()))
            .await
            .unwrap();
        let d = s.mailbox_dir(&m).await.unwrap();
        assert!(d.starts_with(data.join("users")), "{}", d.display());
    }
    // nothing was written next to the data directory
    let outside: Vec<_> = std::fs::read_dir(base.path()).unwrap().collect();
    assert_eq!(outside.len(), 1);
    // user names are distinct directories
    assert_eq!(std::fs::read_dir(data.join("users")).unwrap().count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repack_drops_expunged_and_marks_vanished_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), false);
    s.ensure_account("alice").await.unwrap();
    let ib = inbox("alice");
    for n in 0..10 {
        s.append(&ib, new_message(n, Flags::default()))
            .await
            .unwrap();
    }
    let m = s.open(&ib, "alice").await.unwrap();
    let doomed: Vec<Uid> = (1..=6).map(Uid).collect();
    m.store(&doomed, &StoreOp::Add(flags(&[Flag::Deleted])), None)
        .await
        .unwrap();
    m.expunge(None).await.unwrap();
    let before = m.snapshot().await.unwrap();
    let hm = before.highest_modseq;
    s.repack(&ib).await.unwrap();
    let after = m.snapshot().await.unwrap();
    assert_eq!(before, after, "repack changed the visible state");
    let ch = m.changes_since(ModSeq(1)).await.unwrap();
    assert!(ch.expunged.is_empty());
    assert!(!ch.expunged_complete);
    let ch = m.changes_since(hm).await.unwrap();
    assert!(ch.expunged_complete);
    // the index shrank to the live records
    let len = std::fs::metadata(s.mailbox_dir(&ib).await.unwrap().join("index"))
        .unwrap()
        .len();
    assert_eq!(len, 128 + 4 * 128);
    for (u, _) in m.summaries(&[Uid(7), Uid(10)]).await.unwrap() {
        assert!(u == Uid(7) || u == Uid(10));
    }
    assert_eq!(s.verify(&ib).await.unwrap(), 4);
    // appends continue after a repack
    let a = s
        .append(&ib, new_message(99, Flags::default()))
        .await
        .unwrap();
    assert_eq!(a.uid, Uid(11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_store_is_recounted_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let ib = inbox("alice");
    let path;
    {
        let s = open(dir.path(), false);
        s.ensure_account("alice").await.unwrap();
        for n in 0..4 {
            s.append(&ib, new_message(n, Flags::default()))
                .await
                .unwrap();
        }
        path = s.mailbox_dir(&ib).await.unwrap().join("index");
    }
    // simulate a crash between the records and the clean header of a STORE:
    // set the dirty flag and \Seen on record 2, leave the counts stale
    let mut b = std::fs::read(&path).unwrap();
    b[20] |= 1;
    let crc = crc32fast::hash(&b[..124]);
    b[124..128].copy_from_slice(&crc.to_le_bytes());
    let r = 128 + 128;
    b[r + 5] |= 1;
    let crc = crc32fast::hash(&b[r..r + 124]);
    b[r + 124..r + 128].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    let s = open(dir.path(), false);
    // the header alone cannot answer: STATUS loads and recounts
    let st = s.status(&ib, "alice").await.unwrap();
    assert_eq!((st.messages, st.unseen), (4, 3));
    assert_eq!(s.verify(&ib).await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_links_and_move_expunges() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(dir.path(), true));
    s.ensure_account("alice").await.unwrap();
    let ib = inbox("alice");
    let arch = MailboxRef::new("alice", MailboxName::new("Archive").unwrap());
    s.create(&arch, None).await.unwrap();
    for n in 0..6 {
        s.append(&ib, new_message(n, flags(&[Flag::Seen])))
            .await
            .unwrap();
    }
    let m = s.open(&ib, "alice").await.unwrap();
    let set: SeqSet = "2:4".parse().unwrap();
    let uids: Vec<Uid> = (1..=6).map(Uid).filter(|u| set.contains(u.0, 6)).collect();
    let c = m.copy_to(&uids, &arch).await.unwrap();
    assert_eq!(
        c.mapping,
        vec![(Uid(2), Uid(1)), (Uid(3), Uid(2)), (Uid(4), Uid(3))]
    );
    let mv = m.move_to(&[Uid(5), Uid(6)], &arch).await.unwrap();
    assert_eq!(mv.mapping.len(), 2);
    assert_eq!(m.snapshot().await.unwrap().messages.len(), 4);
    let a = s.open(&arch, "alice").await.unwrap();
    let snap = a.snapshot().await.unwrap();
    assert_eq!(snap.messages.len(), 5);
    assert!(snap.messages.iter().all(|m| m.flags.contains(&Flag::Seen)));
    let body = a.content(Uid(1)).await.unwrap();
    assert_eq!(&body[..], &common::message(1)[..]);
    assert_eq!(s.usage("alice").await.unwrap().messages, 9);
    assert_eq!(s.verify(&arch).await.unwrap(), 5);
    assert_eq!(s.verify(&ib).await.unwrap(), 4);
}

/// The verified in-memory view of the records is kept in step by every
/// write: what one process serves after appends, stores (with keywords and
/// another user's \Seen), expunges, a copy and a repack equals what a fresh
/// load of the files serves; `fetch_meta` answers sorted, unsorted, sparse
/// and missing UIDs like the snapshot does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_view_matches_a_fresh_load() {
    let dir = tempfile::tempdir().unwrap();
    let ib = inbox("alice");
    let arch = MailboxRef::new("alice", MailboxName::new("Archive").unwrap());
    let (snap, bob_snap, changes, bob_status) = {
        let s = open(dir.path(), false);
        s.ensure_account("alice").await.unwrap();
        s.create(&arch, None).await.unwrap();
        s.set_acl(&ib, "bob", mailroom_core::Rights::parse("lrsw"))
            .await
            .unwrap();
        let m = s.open(&ib, "alice").await.unwrap();
        let mb = s.open(&ib, "bob").await.unwrap();
        // the view is built before the writes, so they must update it
        assert!(m.snapshot().await.unwrap().messages.is_empty());
        for n in 0..40 {
            s.append(&ib, new_message(n, Flags::default()))
                .await
                .unwrap();
            if n % 7 == 0 {
                let snap = m.snapshot().await.unwrap();
                assert_eq!(snap.messages.len() as u64, n + 1);
            }
        }
        let kw = Flag::parse("$Work").unwrap();
        let odd: Vec<Uid> = (1..=40).filter(|u| u % 2 == 1).map(Uid).collect();
        m.store(&odd, &StoreOp::Add(flags(&[Flag::Flagged, kw])), None)
            .await
            .unwrap();
        mb.store(&[Uid(3), Uid(4)], &StoreOp::Add(flags(&[Flag::Seen])), None)
            .await
            .unwrap();
        let doomed: Vec<Uid> = (1..=40).filter(|u| u % 3 == 0).map(Uid).collect();
        m.store(&doomed, &StoreOp::Add(flags(&[Flag::Deleted])), None)
            .await
            .unwrap();
        assert_eq!(m.expunge(None).await.unwrap(), doomed);
        m.copy_to(&[Uid(1), Uid(2)], &arch).await.unwrap();
        let a = s.open(&arch, "alice").await.unwrap();
        assert_eq!(a.snapshot().await.unwrap().messages.len(), 2);
        s.append(&arch, new_message(99, Flags::default()))
            .await
            .unwrap();
        assert_eq!(a.snapshot().await.unwrap().messages.len(), 3);

        let snap = m.snapshot().await.unwrap();
        let all: Vec<Uid> = snap.messages.iter().map(|m| m.uid).collect();
        assert_eq!(m.fetch_meta(&all).await.unwrap(), snap.messages);
        let mut rev = all.clone();
        rev.reverse();
        let mut want = snap.messages.clone();
        want.reverse();
        assert_eq!(m.fetch_meta(&rev).await.unwrap(), want, "unsorted");
        // sparse, with expunged, missing and repeated UIDs
        let asked = [Uid(40), Uid(3), Uid(5), Uid(5), Uid(1000), Uid(6), Uid(1)];
        let got: Vec<u32> = m
            .fetch_meta(&asked)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid.0)
            .collect();
        assert_eq!(got, vec![40, 5, 5, 1]);
        let bob_snap = mb.snapshot().await.unwrap();
        assert_eq!(
            mb.fetch_meta(&[Uid(4), Uid(5)]).await.unwrap(),
            bob_snap.messages[2..4].to_vec()
        );
        let changes = m.changes_since(ModSeq(2)).await.unwrap();
        let bob_status = s.status(&ib, "bob").await.unwrap();
        (snap, bob_snap, changes, bob_status)
    };
    let s = open(dir.path(), false);
    let m = s.open(&ib, "alice").await.unwrap();
    assert_eq!(m.snapshot().await.unwrap(), snap);
    let mb = s.open(&ib, "bob").await.unwrap();
    assert_eq!(mb.snapshot().await.unwrap(), bob_snap);
    assert_eq!(m.changes_since(ModSeq(2)).await.unwrap(), changes);
    assert_eq!(s.status(&ib, "bob").await.unwrap(), bob_status);
    // a repack drops the expunged records; the view it installs agrees
    s.repack(&ib).await.unwrap();
    assert_eq!(m.snapshot().await.unwrap(), snap);
    assert!(
        m.changes_since(ModSeq(2))
            .await
            .unwrap()
            .expunged
            .is_empty()
    );
    drop((m, mb));
    drop(s);
    let s = open(dir.path(), false);
    let m = s.open(&ib, "alice").await.unwrap();
    assert_eq!(m.snapshot().await.unwrap(), snap);
    assert_eq!(s.verify(&ib).await.unwrap(), snap.messages.len() as u32);
}
