//! The commit order's crash windows (FORMAT.md, "Commit order"). A commit
//! renames its message files into `msg/` and then fsyncs them at the same
//! time as `msg/` and the cache, so a power loss before the header write
//! can leave a short (or empty) file in `msg/` at UIDNEXT or above, never
//! referenced by the index; and it makes its index records and the header
//! durable with one fsync, so a power loss during it can leave the new
//! header over records that never reached the disk. A SIGKILL cannot make
//! either (the page cache survives it; the kill -9 tests in `crash.rs`
//! cover what it can), so these tests lay down what a power loss can leave
//! and check that nothing of it is served: a torn file is removed at load or
//! set aside by a reconstruct, and a torn commit is caught (STATUS from the
//! header alone included) and reconstructed with every message whole.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{inbox, message, new_message, open};
use mailroom_core::{Flag, Flags, MailboxName, Storage, StoreOp, Uid};
use mailroom_store_crc::layout::{HDR_FLAG_TAIL, HEADER_SIZE, RECORD_SIZE, hdr};

const USER: &str = "order@example.com";

/// Three committed messages; returns the mailbox directory.
async fn three_messages(root: &Path, durable: bool) -> PathBuf {
    let s = open(root, durable);
    s.ensure_account(USER).await.unwrap();
    for n in 0..3 {
        let a = s
            .append(&inbox(USER), new_message(n, Flags::default()))
            .await
            .unwrap();
        assert_eq!(a.uid, Uid(n as u32 + 1));
    }
    s.mailbox_dir(&inbox(USER)).await.unwrap()
}

/// What a power loss in the window can leave: UID 4 renamed with only part
/// of its bytes, UID 5 renamed with none.
fn leave_torn_files(mdir: &Path) {
    let full = message(99);
    std::fs::write(mdir.join("msg").join("4"), &full[..full.len() / 3]).unwrap();
    std::fs::write(mdir.join("msg").join("5"), b"").unwrap();
}

#[tokio::test]
async fn torn_files_past_uidnext_are_removed_at_load_and_the_uids_reused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mdir = three_messages(dir.path(), true).await;
    leave_torn_files(&mdir);

    let s = open(dir.path(), true);
    let st = s.status(&inbox(USER), USER).await.unwrap();
    assert_eq!(st.messages, 3);
    assert_eq!(st.uid_next, Uid(4));
    let m = s.open(&inbox(USER), USER).await.unwrap();
    assert_eq!(m.snapshot().await.unwrap().messages.len(), 3);
    assert!(!mdir.join("msg").join("4").exists(), "torn file 4 removed");
    assert!(!mdir.join("msg").join("5").exists(), "torn file 5 removed");

    // the next append takes UID 4 with its own bytes
    let a = s
        .append(&inbox(USER), new_message(7, Flags::default()))
        .await
        .unwrap();
    assert_eq!(a.uid, Uid(4));
    let c = m.content(Uid(4)).await.unwrap();
    assert_eq!(c.to_vec(), message(7));
    // and verify finds every file matching its record
    assert_eq!(s.verify(&inbox(USER)).await.unwrap(), 4);
}

#[tokio::test]
async fn reconstruct_sets_a_file_past_uidnext_aside_instead_of_serving_it() {
    let dir = tempfile::tempdir().unwrap();
    let mdir = three_messages(dir.path(), false).await;
    leave_torn_files(&mdir);

    // no load first (it would remove them): straight to a reconstruct
    let s = open(dir.path(), false);
    let reports = s
        .reconstruct(USER, Some(&MailboxName::inbox()))
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    let r = &reports[0].1;
    assert_eq!((r.kept, r.recovered), (3, 0), "{r:?}");
    assert!(r.skipped >= 2, "{r:?}");
    let m = s.open(&inbox(USER), USER).await.unwrap();
    let snap = m.snapshot().await.unwrap();
    let uids: Vec<u32> = snap.messages.iter().map(|x| x.uid.0).collect();
    assert_eq!(uids, [1, 2, 3], "no torn message served");
    assert_eq!(snap.uid_next, Uid(4));
    let aside = std::fs::read_dir(mdir.join("quarantine")).unwrap().count();
    assert_eq!(aside, 2, "both set aside, not deleted");
}

/// Durability on, one appender at a time (each the group commit's leader,
/// its file fsynced together with `msg/` and the cache) and many at once
/// (followers fsync their own file before joining): every byte stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_and_follower_appends_store_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), true);
    s.ensure_account(USER).await.unwrap();
    for n in 0..5 {
        s.append(&inbox(USER), new_message(n, Flags::default()))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for n in 5..45 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let a = s
                .append(&inbox(USER), new_message(n, Flags::default()))
                .await
                .unwrap();
            (a.uid, n)
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    let m = s.open(&inbox(USER), USER).await.unwrap();
    assert_eq!(m.snapshot().await.unwrap().messages.len(), 45);
    for (uid, n) in got {
        let c = m.content(uid).await.unwrap();
        assert_eq!(c.to_vec(), message(n), "UID {uid:?}");
    }
    assert_eq!(s.verify(&inbox(USER)).await.unwrap(), 45);
    let mdir = s.mailbox_dir(&inbox(USER)).await.unwrap();
    let left = std::fs::read_dir(mdir.join("tmp")).unwrap().count();
    assert_eq!(left, 0, "every file written under tmp/ was renamed");
}

fn header_flags(mdir: &Path) -> u32 {
    let index = std::fs::read(mdir.join("index")).unwrap();
    hdr::FLAGS.read_uint(&index) as u32
}

/// Three messages, then a fourth whose commit is torn by `tear` (applied
/// to the index file): the mailbox is corrupt to every reader (STATUS from
/// the header alone included) until a reconstruct, which brings every
/// message back whole from the message files (durable before the records
/// were written), the fourth included: acknowledged or not, none is lost
/// and none is half there.
async fn torn_commit_is_caught(tear: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let mdir = three_messages(dir.path(), true).await;
    {
        let s = open(dir.path(), true);
        s.append(&inbox(USER), new_message(50, Flags::default()))
            .await
            .unwrap();
    }
    assert_ne!(
        header_flags(&mdir) & HDR_FLAG_TAIL,
        0,
        "the commit wrote a tail"
    );
    tear(&mdir.join("index"));

    let s = open(dir.path(), true);
    let st = s.status(&inbox(USER), USER).await;
    assert!(
        matches!(st, Err(mailroom_core::Error::Corruption(_))),
        "{st:?}"
    );
    assert!(s.open(&inbox(USER), USER).await.is_err());
    assert_eq!(s.reconstruct_queue(), vec![inbox(USER)]);
    s.reconstruct_queued().await.unwrap();
    let m = s.open(&inbox(USER), USER).await.unwrap();
    let snap = m.snapshot().await.unwrap();
    let uids: Vec<u32> = snap.messages.iter().map(|x| x.uid.0).collect();
    assert_eq!(uids, [1, 2, 3, 4]);
    for (uid, n) in [(1, 0), (2, 1), (3, 2), (4, 50)] {
        assert_eq!(
            m.content(Uid(uid)).await.unwrap().to_vec(),
            message(n),
            "UID {uid}"
        );
    }
    assert_eq!(s.verify(&inbox(USER)).await.unwrap(), 4);
    let a = s
        .append(&inbox(USER), new_message(60, Flags::default()))
        .await
        .unwrap();
    assert_eq!(a.uid, Uid(5));
    drop((m, s));
    let s = open(dir.path(), true);
    assert_eq!(s.status(&inbox(USER), USER).await.unwrap().messages, 5);
}

#[tokio::test]
async fn a_commit_whose_records_missed_the_disk_is_caught_and_reconstructed_whole() {
    // the header's page reached the disk, the record's did not (zeros)
    torn_commit_is_caught(|index| {
        let mut b = std::fs::read(index).unwrap();
        let at = HEADER_SIZE + 3 * RECORD_SIZE;
        b[at..at + RECORD_SIZE].fill(0);
        std::fs::write(index, &b).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_commit_whose_record_is_an_older_valid_one_is_caught() {
    // the slot holds a record with a valid CRC, but not the one committed
    // (an earlier commit of that slot that was itself never acknowledged)
    torn_commit_is_caught(|index| {
        let mut b = std::fs::read(index).unwrap();
        let (from, to) = (HEADER_SIZE + 2 * RECORD_SIZE, HEADER_SIZE + 3 * RECORD_SIZE);
        let old = b[from..from + RECORD_SIZE].to_vec();
        b[to..to + RECORD_SIZE].copy_from_slice(&old);
        std::fs::write(index, &b).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_commit_whose_file_growth_missed_the_disk_is_caught() {
    // the header reached the disk, the index file's new length did not
    torn_commit_is_caught(|index| {
        let f = std::fs::OpenOptions::new().write(true).open(index).unwrap();
        f.set_len((HEADER_SIZE + 3 * RECORD_SIZE) as u64).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_change_in_place_after_a_commit_clears_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mdir = three_messages(dir.path(), true).await;
    assert_ne!(header_flags(&mdir) & HDR_FLAG_TAIL, 0);
    {
        let s = open(dir.path(), true);
        let m = s.open(&inbox(USER), USER).await.unwrap();
        let seen: Flags = [Flag::Seen].into_iter().collect();
        m.store(&[Uid(3)], &StoreOp::Add(seen), None).await.unwrap();
    }
    // the record changed in place: a stale tail would no longer hold
    assert_eq!(header_flags(&mdir) & HDR_FLAG_TAIL, 0);
    let s = open(dir.path(), true);
    let m = s.open(&inbox(USER), USER).await.unwrap();
    let snap = m.snapshot().await.unwrap();
    assert_eq!(snap.messages.len(), 3, "nothing rolled back");
    assert!(snap.messages[2].flags.contains(&Flag::Seen));
    assert_eq!(s.verify(&inbox(USER)).await.unwrap(), 3);
}
