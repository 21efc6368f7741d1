//! The delivery journal (FORMAT.md, "Delivery journal"): what a crash of
//! the machine can leave (the journal durable, the mailboxes' own writes
//! lost in part or whole) is simulated by copying the data directory while
//! the store runs (what a kill -9 leaves) and putting back older mailbox
//! files or damaging them; reopening must replay every acknowledged
//! message, bring back no expunged one, discard a torn journal tail and be
//! idempotent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{inbox, new_message};
use mailroom_core::{
    Error, Flag, Flags, MailboxName, MailboxRef, MessageGuid, NewMessage, Quota, QuotaLimits,
    Storage, StoreOp, Uid,
};
use mailroom_store_crc::{CrcOptions, CrcStore};

const USER: &str = "journal@example.com";

fn journaled(dir: &Path) -> CrcStore {
    CrcStore::open(
        dir,
        CrcOptions {
            durability: true,
            journal: true,
            // no checkpoint while a test runs (only at drop)
            journal_checkpoint_interval: Duration::from_secs(3600),
            ..CrcOptions::default()
        },
    )
    .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Copies a directory tree (the lock file included: it is only a flock).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// Every file under `dir` (relative path -> bytes), the journal left out.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                if !rel.starts_with("journal") && !rel.ends_with("lock") {
                    out.insert(rel, std::fs::read(e.path()).unwrap());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The mailbox directory of a mailbox.
fn mailbox_dir(store: &CrcStore, m: &MailboxRef) -> PathBuf {
    rt().block_on(store.mailbox_dir(m)).unwrap()
}

/// Checks that exactly `want` (UID -> SHA-1) are live in `m`, with their bytes.
fn check(store: &CrcStore, m: &MailboxRef, want: &BTreeMap<u32, String>) {
    rt().block_on(async {
        let live = store.verify(m).await.unwrap();
        let h = store.open(m, USER).await.unwrap();
        let snap = h.snapshot().await.unwrap();
        let uids: Vec<u32> = snap.messages.iter().map(|mm| mm.uid.0).collect();
        assert_eq!(
            uids,
            want.keys().copied().collect::<Vec<_>>(),
            "{m}: live UIDs"
        );
        assert_eq!(live as usize, want.len());
        for (uid, sha) in want {
            let body = h.content(Uid(*uid)).await.unwrap();
            assert_eq!(&MessageGuid::of(&body).to_string(), sha, "{m} UID {uid}");
        }
        assert!(store.reconstruct_queue().is_empty());
    });
}

/// Delivers `n` messages to `m` (numbered from `from`); returns UID -> SHA-1.
fn deliver(store: &CrcStore, m: &MailboxRef, from: u64, n: u64) -> BTreeMap<u32, String> {
    rt().block_on(async {
        let mut out = BTreeMap::new();
        for i in from..from + n {
            let msg = new_message(i, Flags::default());
            let sha = MessageGuid::of(&msg.content).to_string();
            let a = store.append(m, msg).await.unwrap();
            out.insert(a.uid.0, sha);
        }
        out
    })
}

/// Nothing but the journal reached the disk: the mailboxes' files are put
/// back as they were before the journaled deliveries (their records,
/// cache entries, message files and headers all lost); reopening brings
/// every acknowledged message back, and a second mailbox too.
#[test]
fn replay_redoes_deliveries_whose_mailbox_writes_were_lost() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let before = dir.path().join("before");
    let crashed = dir.path().join("crashed");
    let ib = inbox(USER);
    let other = MailboxRef::new(USER, MailboxName::new("Other").unwrap());
    let (want_ib, want_other);
    {
        let store = journaled(&live);
        rt().block_on(async {
            store.ensure_account(USER).await.unwrap();
            store.create(&other, None).await.unwrap();
        });
        let mut w = deliver(&store, &ib, 0, 5);
        // checkpointed: the state a crash falls back to
        drop(store);
        copy_tree(&live, &before);
        let store = journaled(&live);
        w.extend(deliver(&store, &ib, 100, 20));
        want_other = deliver(&store, &other, 200, 7);
        want_ib = w;
        // a crash now: the journal holds the 27 deliveries
        copy_tree(&live, &crashed);
        assert!(
            std::fs::read_dir(crashed.join("journal")).unwrap().count() > 0,
            "the journal was not kept"
        );
        drop(store);
    }
    // the mailboxes lose every write since the checkpoint
    std::fs::remove_dir_all(crashed.join("users")).unwrap();
    copy_tree(&before.join("users"), &crashed.join("users"));
    let store = journaled(&crashed);
    check(&store, &ib, &want_ib);
    check(&store, &other, &want_other);
    // and deliveries go on with the next UIDs
    let more = deliver(&store, &ib, 300, 2);
    assert!(more.keys().all(|u| *u > *want_ib.keys().last().unwrap()));
}

/// The header reached the disk but the records, cache entries and message
/// files of the last deliveries did not (zeroed, truncated, deleted).
#[test]
fn replay_rewrites_torn_records_cache_entries_and_message_files() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let crashed = dir.path().join("crashed");
    let ib = inbox(USER);
    let want;
    let mdir;
    {
        let store = journaled(&live);
        rt().block_on(store.ensure_account(USER)).unwrap();
        want = deliver(&store, &ib, 0, 12);
        mdir = mailbox_dir(&store, &ib)
            .strip_prefix(&live)
            .unwrap()
            .to_path_buf();
        copy_tree(&live, &crashed);
        drop(store);
    }
    let m = crashed.join(&mdir);
    // the last 4 records zeroed (header kept: it says 12)
    let mut index = std::fs::read(m.join("index")).unwrap();
    let (hs, rs) = (128usize, 128usize);
    for b in &mut index[hs + 8 * rs..hs + 12 * rs] {
        *b = 0;
    }
    std::fs::write(m.join("index"), &index).unwrap();
    // the cache loses its last entries
    let cache = std::fs::read(m.join("cache")).unwrap();
    std::fs::write(m.join("cache"), &cache[..cache.len() * 2 / 3]).unwrap();
    // two message files lost, one short
    std::fs::remove_file(m.join("msg/11")).unwrap();
    std::fs::remove_file(m.join("msg/3")).unwrap();
    let f = std::fs::read(m.join("msg/12")).unwrap();
    std::fs::write(m.join("msg/12"), &f[..f.len() / 2]).unwrap();
    let store = journaled(&crashed);
    check(&store, &ib, &want);
}

/// Expunged messages never come back: an expunge after journaled
/// deliveries (durable on its own) is not undone by their replay, even
/// when the message files and cache entries of the others are lost.
#[test]
fn replay_brings_back_no_expunged_message() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let crashed = dir.path().join("crashed");
    let ib = inbox(USER);
    let mut want;
    let mdir;
    {
        let store = journaled(&live);
        rt().block_on(store.ensure_account(USER)).unwrap();
        want = deliver(&store, &ib, 0, 10);
        rt().block_on(async {
            let h = store.open(&ib, USER).await.unwrap();
            let del: Flags = [Flag::Deleted].into_iter().collect();
            h.store(&[Uid(2), Uid(5), Uid(10)], &StoreOp::Add(del), None)
                .await
                .unwrap();
            let gone = h.expunge(None).await.unwrap();
            assert_eq!(gone, vec![Uid(2), Uid(5), Uid(10)]);
        });
        for u in [2, 5, 10] {
            want.remove(&u);
        }
        want.extend(deliver(&store, &ib, 50, 3));
        mdir = mailbox_dir(&store, &ib)
            .strip_prefix(&live)
            .unwrap()
            .to_path_buf();
        copy_tree(&live, &crashed);
        drop(store);
    }
    // every message file lost: the journal has them all
    let m = crashed.join(&mdir);
    for e in std::fs::read_dir(m.join("msg")).unwrap().flatten() {
        std::fs::remove_file(e.path()).unwrap();
    }
    let store = journaled(&crashed);
    check(&store, &ib, &want);
    for u in [2, 5, 10] {
        assert!(
            !m.join(format!("msg/{u}")).exists(),
            "UID {u}'s file is back"
        );
    }
}

/// Where the records of a segment end: the segment may go on with zeros
/// written ahead of them (FORMAT.md, "Delivery journal").
fn records_end(seg: &[u8]) -> usize {
    let mut at = 24;
    while at + 8 <= seg.len() {
        let len = u32::from_le_bytes(seg[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        at += 8 + len;
    }
    at
}

/// The newest segment in `jdir` that holds records (the filler makes the
/// next segment ahead: header and zeros, no record).
fn last_segment_with_records(jdir: &Path) -> PathBuf {
    std::fs::read_dir(jdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jnl"))
        .filter(|p| records_end(&std::fs::read(p).unwrap()) > 24)
        .max()
        .expect("a segment with records")
}

/// A crash after `n` journaled deliveries to INBOX (numbered from 0) where
/// nothing but the journal reached the disk: the mailboxes' files are put
/// back as they were before the deliveries. Returns the temporary
/// directory (it holds the rest), the crashed data directory and the
/// deliveries (UID -> SHA-1).
fn crashed_with_only_the_journal(n: u64) -> (tempfile::TempDir, PathBuf, BTreeMap<u32, String>) {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let before = dir.path().join("before");
    let crashed = dir.path().join("crashed");
    let store = journaled(&live);
    rt().block_on(store.ensure_account(USER)).unwrap();
    drop(store);
    copy_tree(&live, &before);
    let store = journaled(&live);
    let want = deliver(&store, &inbox(USER), 0, n);
    copy_tree(&live, &crashed);
    drop(store);
    std::fs::remove_dir_all(crashed.join("users")).unwrap();
    copy_tree(&before.join("users"), &crashed.join("users"));
    (dir, crashed, want)
}

/// A torn last record (the crash came while it was written: it was never
/// acknowledged) is discarded, and everything before it replayed.
#[test]
fn a_torn_journal_tail_is_discarded() {
    let (_dir, crashed, mut want) = crashed_with_only_the_journal(6);
    let ib = inbox(USER);
    // cut the last record short, and add garbage after it
    let seg = last_segment_with_records(&crashed.join("journal"));
    let mut b = std::fs::read(&seg).unwrap();
    let end = records_end(&b);
    assert!(end <= b.len(), "records past the file");
    b.truncate(end - 40);
    b.extend_from_slice(&[0xA5; 17]);
    std::fs::write(&seg, &b).unwrap();
    want.remove(&6);
    let store = journaled(&crashed);
    check(&store, &ib, &want);
    assert!(
        std::fs::read_dir(crashed.join("journal"))
            .unwrap()
            .flatten()
            .all(|e| e.path() != seg),
        "the replayed segment was not deleted"
    );
    // UID 6 was never acknowledged: it may be taken again
    let more = deliver(&store, &ib, 10, 1);
    assert_eq!(more.keys().copied().collect::<Vec<_>>(), vec![6]);
}

/// Segments are zero-filled ahead of their records: a zero frame ends a
/// segment's records and the replay goes on with the next segment (the
/// older one was made durable before the next took any record). The six
/// deliveries' records are split over two such segments, the mailbox's
/// writes lost: all six come back.
#[test]
fn replay_goes_past_a_segments_zero_filled_tail_to_the_next_segment() {
    let (_dir, crashed, want) = crashed_with_only_the_journal(6);
    let ib = inbox(USER);
    let jdir = crashed.join("journal");
    let seg = last_segment_with_records(&jdir);
    let b = std::fs::read(&seg).unwrap();
    let n = u64::from_le_bytes(b[16..24].try_into().unwrap());
    // the record boundaries
    let mut starts = vec![24];
    while let Some(&at) = starts.last() {
        let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        starts.push(at + 8 + len);
    }
    assert_eq!(starts.len(), 7, "six records");
    let header = |n: u64| {
        let mut h = b"MRJRNL01".to_vec();
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&[0; 4]);
        h.extend_from_slice(&n.to_le_bytes());
        h
    };
    let mut first = header(n);
    first.extend_from_slice(&b[24..starts[3]]);
    first.extend_from_slice(&[0; 4096]);
    let mut second = header(n + 1);
    second.extend_from_slice(&b[starts[3]..starts[6]]);
    second.extend_from_slice(&[0; 4096]);
    std::fs::write(&seg, &first).unwrap();
    std::fs::write(jdir.join(format!("{:016x}.jnl", n + 1)), &second).unwrap();
    let store = journaled(&crashed);
    check(&store, &ib, &want);
}

/// Replaying the same journal twice leaves the same mailbox, byte for byte.
#[test]
fn replay_is_idempotent() {
    let (dir, crashed, want) = crashed_with_only_the_journal(9);
    let ib = inbox(USER);
    let journal = dir.path().join("journal-copy");
    copy_tree(&crashed.join("journal"), &journal);
    // first replay (opening replays; nothing is loaded before the drop)
    drop(journaled(&crashed));
    let once = files(&crashed);
    // the same journal again
    std::fs::remove_dir_all(crashed.join("journal")).unwrap();
    copy_tree(&journal, &crashed.join("journal"));
    drop(journaled(&crashed));
    let twice = files(&crashed);
    assert_eq!(
        once.keys().collect::<Vec<_>>(),
        twice.keys().collect::<Vec<_>>()
    );
    for (p, b) in &once {
        assert!(
            twice[p] == *b,
            "{} differs after a second replay",
            p.display()
        );
    }
    let store = journaled(&crashed);
    check(&store, &ib, &want);
}

/// A clean shutdown checkpoints: no journal is left to replay, and the
/// mailboxes hold everything on their own.
#[test]
fn a_clean_shutdown_leaves_no_journal() {
    let dir = tempfile::tempdir().unwrap();
    let ib = inbox(USER);
    let want;
    {
        let store = journaled(dir.path());
        rt().block_on(store.ensure_account(USER)).unwrap();
        want = deliver(&store, &ib, 0, 4);
    }
    let left: Vec<_> = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "journal left after a clean shutdown: {left:?}"
    );
    // opened without the journal, the mailbox is whole
    let store = common::open(dir.path(), true);
    check(&store, &ib, &want);
}

/// Quota stays atomic with the journaled append: 24 deliveries at once to
/// two mailboxes of one user near the limit never take usage past it, and
/// exactly the accepted ones are stored (and survive a replay).
#[test]
fn concurrent_journaled_deliveries_never_overshoot_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let crashed = dir.path().join("crashed");
    let ib = inbox(USER);
    let other = MailboxRef::new(USER, MailboxName::new("Other").unwrap());
    let store = std::sync::Arc::new(journaled(&live));
    let body = [b"Subject: q\r\n\r\n".as_slice(), &[b'q'; 1000], b"\r\n"].concat();
    let limit = 8 * body.len() as u64 + 100;
    let limits = QuotaLimits {
        storage_bytes: Some(limit),
        messages: None,
    };
    let (accepted, refused) = rt().block_on(async {
        store.ensure_account(USER).await.unwrap();
        store.create(&other, None).await.unwrap();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(24));
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let (store, barrier, body) = (store.clone(), barrier.clone(), body.clone());
                let m = if i % 2 == 0 {
                    ib.clone()
                } else {
                    other.clone()
                };
                tokio::spawn(async move {
                    barrier.wait().await;
                    let msg = NewMessage {
                        flags: Flags::default(),
                        internal_date: None,
                        content: body.into(),
                    };
                    store.append_within_quota(&m, msg, limits).await
                })
            })
            .collect();
        let (mut ok, mut full) = (0u64, 0u64);
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(Error::OverQuota) => full += 1,
                Err(e) => panic!("{e}"),
            }
        }
        (ok, full)
    });
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
    let usage = rt().block_on(store.usage(USER)).unwrap();
    assert!(usage.storage_bytes <= limit, "quota overshot: {usage:?}");
    assert_eq!(usage.messages, accepted);
    copy_tree(&live, &crashed);
    drop(store);
    let store = journaled(&crashed);
    let usage = rt().block_on(store.usage(USER)).unwrap();
    assert_eq!(usage.messages, accepted, "after a replay");
    assert!(usage.storage_bytes <= limit);
}
