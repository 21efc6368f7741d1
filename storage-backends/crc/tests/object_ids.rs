//! MAILBOXID (RFC 8474) and SAVEDATE (RFC 8514) on disk (FORMAT.md,
//! "MAILBOXID and SAVEDATE"): kept across reopen and RENAME, new for a
//! mailbox made again; SAVEDATE set by APPEND and COPY and kept; an index
//! from before the fields (zeros there) gets a MAILBOXID once, on load,
//! and its records have no SAVEDATE.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{inbox, new_message, open};
use mailroom_core::{Flags, MailboxName, MailboxRef, Storage, Uid};

fn mailbox(user: &str, name: &str) -> MailboxRef {
    MailboxRef::new(user, MailboxName::new(name).unwrap())
}

/// Every `index` file under `dir`.
fn indexes(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "index") {
                out.push(p);
            }
        }
    }
    out
}

/// Zeroes `len` bytes at `at` of the 128-byte block at `block` and fixes
/// the block's CRC (its last four bytes), as an older build wrote them.
fn zero_field(path: &Path, block: usize, at: usize, len: usize) {
    let mut b = std::fs::read(path).unwrap();
    let blk = &mut b[block..block + 128];
    blk[at..at + len].fill(0);
    let crc = crc32fast::hash(&blk[..124]);
    blk[124..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, b).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_ids_and_save_dates_persist() {
    let dir = tempfile::tempdir().unwrap();
    let ib = inbox("alice");
    let work = mailbox("alice", "Work");
    let (inbox_id, work_id, saved);
    {
        let s = open(dir.path(), true);
        s.ensure_account("alice").await.unwrap();
        s.create(&work, None).await.unwrap();
        for n in 0..2 {
            s.append(&ib, new_message(n, Flags::default()))
                .await
                .unwrap();
        }
        inbox_id = s.status(&ib, "alice").await.unwrap().mailbox_id;
        work_id = s.status(&work, "alice").await.unwrap().mailbox_id;
        assert!(!inbox_id.is_unassigned() && !work_id.is_unassigned());
        assert_ne!(inbox_id, work_id);
        let m = s.open(&ib, "alice").await.unwrap();
        let snap = m.snapshot().await.unwrap();
        assert_eq!(snap.mailbox_id, inbox_id);
        saved = snap.messages[0].save_date.expect("APPEND sets SAVEDATE");
        let now = mailroom_core::InternalDate::now().timestamp;
        assert!((now - 60..=now).contains(&saved), "{saved} vs {now}");
        m.copy_to(&[Uid(1)], &work).await.unwrap();
        let w = s.open(&work, "alice").await.unwrap();
        assert!(w.snapshot().await.unwrap().messages[0].save_date.is_some());
    }
    // Reopened: the same ids and dates.
    let s = open(dir.path(), true);
    assert_eq!(s.status(&ib, "alice").await.unwrap().mailbox_id, inbox_id);
    assert_eq!(s.status(&work, "alice").await.unwrap().mailbox_id, work_id);
    let m = s.open(&ib, "alice").await.unwrap();
    assert_eq!(
        m.snapshot().await.unwrap().messages[0].save_date,
        Some(saved)
    );
    // RENAME keeps the id; a mailbox made again under the name gets a new one.
    let play = mailbox("alice", "Play");
    s.rename(&work, &play.name).await.unwrap();
    assert_eq!(s.status(&play, "alice").await.unwrap().mailbox_id, work_id);
    s.create(&work, None).await.unwrap();
    let again = s.status(&work, "alice").await.unwrap().mailbox_id;
    assert!(again != work_id && again != inbox_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_from_before_gets_a_mailbox_id_once() {
    let dir = tempfile::tempdir().unwrap();
    let ib = inbox("alice");
    {
        let s = open(dir.path(), true);
        s.ensure_account("alice").await.unwrap();
        s.append(&ib, new_message(1, Flags::default()))
            .await
            .unwrap();
    }
    // As an older build wrote it: no mailbox_id (header bytes 104..120),
    // no commit tail (flag bit 2, bytes 96..104) and no save_date (record
    // bytes 100..108) in any index.
    let all = indexes(dir.path());
    assert!(!all.is_empty());
    for p in &all {
        zero_field(p, 0, 96, 24);
        let mut b = std::fs::read(p).unwrap();
        b[20] &= !4;
        let crc = crc32fast::hash(&b[..124]);
        b[124..128].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(p, b).unwrap();
        if std::fs::metadata(p).unwrap().len() >= 256 {
            zero_field(p, 128, 100, 8);
        }
    }
    let first = {
        let s = open(dir.path(), true);
        let st = s.status(&ib, "alice").await.unwrap();
        assert!(!st.mailbox_id.is_unassigned(), "assigned on load");
        let m = s.open(&ib, "alice").await.unwrap();
        let snap = m.snapshot().await.unwrap();
        assert_eq!(snap.messages.len(), 1);
        assert_eq!(
            snap.messages[0].save_date, None,
            "not known for an old record"
        );
        st.mailbox_id
    };
    // Written back: the next load finds the same id.
    let s = open(dir.path(), true);
    assert_eq!(s.status(&ib, "alice").await.unwrap().mailbox_id, first);
}
