//! The commit order's crash window (FORMAT.md, "Commit order"): a commit
//! renames its message files into `msg/` and then fsyncs them at the same
//! time as `msg/` and the cache, so a power loss before the header write
//! can leave a short (or empty) file in `msg/` at UIDNEXT or above, never
//! referenced by the index. A SIGKILL cannot make one (the page cache
//! survives it), so these tests lay down what a power loss can leave and
//! check that it is never served: the first load removes it, a reconstruct
//! sets it aside instead of taking it for a message, and the next append of
//! that UID stores the right bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{inbox, message, new_message, open};
use mailroom_core::{Flags, MailboxName, Storage, Uid};

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
