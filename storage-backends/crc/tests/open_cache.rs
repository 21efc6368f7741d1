//! The tables of open mailboxes and accounts: shared while used, kept a
//! grace period after the last session leaves (at most `open_mailboxes` of
//! them), never kept by a delivery, and empty once everybody has gone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{inbox, new_message};
use mailroom_core::{Flags, Storage};
use mailroom_store_crc::{CrcOptions, CrcStore, OpenCounts};

fn store(dir: &std::path::Path, open_mailboxes: usize, grace: Duration) -> CrcStore {
    CrcStore::open(
        dir,
        CrcOptions {
            durability: false,
            open_mailboxes,
            open_mailbox_grace: grace,
            ..CrcOptions::default()
        },
    )
    .unwrap()
}

/// Waits until the store holds nothing (the evictor runs every grace/4).
async fn until_empty(s: &CrcStore, within: Duration) -> OpenCounts {
    let deadline = Instant::now() + within;
    loop {
        let c = s.open_counts();
        if c == OpenCounts::default() || Instant::now() > deadline {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_accounts_in_and_out_leave_nothing_open_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 64, Duration::from_secs(2));
    for i in 0..200 {
        let user = format!("user{i}");
        s.ensure_account(&user).await.unwrap();
        s.append(&inbox(&user), new_message(i, Flags::default()))
            .await
            .unwrap();
        let m = s.open(&inbox(&user), &user).await.unwrap();
        assert_eq!(m.snapshot().await.unwrap().messages.len(), 1);
        drop(m);
    }
    // (on a loaded machine the first ones may already have expired)
    let c = s.open_counts();
    assert!(
        (1..=64).contains(&c.idle_mailboxes),
        "bounded by open_mailboxes: {c:?}"
    );
    assert_eq!(c.mailboxes, c.idle_mailboxes, "no session holds one: {c:?}");
    assert!(c.accounts <= c.idle_mailboxes, "{c:?}");
    let c = until_empty(&s, Duration::from_secs(10)).await;
    assert_eq!(c, OpenCounts::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_reuse_one_bounded_idle_state_and_leave_nothing_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 4, Duration::from_secs(2));
    s.ensure_account("bob").await.unwrap();
    assert_eq!(s.open_counts(), OpenCounts::default());
    let before = s.io_counters().index_loads;
    for n in 0..5 {
        s.append(&inbox("bob"), new_message(n, Flags::default()))
            .await
            .unwrap();
        let c = s.open_counts();
        assert_eq!(
            (c.mailboxes, c.idle_mailboxes, c.accounts),
            (1, 1, 1),
            "one idle entry, no session: {c:?}"
        );
    }
    // consecutive deliveries found the index loaded (a slow machine may
    // let the grace period pass once between two of them)
    assert!(
        s.io_counters().index_loads - before <= 2,
        "{:?}",
        s.io_counters()
    );
    // deliveries to many accounts: never more than `open_mailboxes` kept
    for i in 0..20 {
        let user = format!("many{i}");
        s.ensure_account(&user).await.unwrap();
        s.append(&inbox(&user), new_message(i, Flags::default()))
            .await
            .unwrap();
        let c = s.open_counts();
        assert!(c.idle_mailboxes <= 4 && c.mailboxes <= 4, "bounded: {c:?}");
    }
    let c = until_empty(&s, Duration::from_secs(10)).await;
    assert_eq!(c, OpenCounts::default(), "nothing after the grace period");
    let st = s.status(&inbox("bob"), "bob").await.unwrap();
    assert_eq!(st.messages, 5);
    assert_eq!(s.open_counts(), OpenCounts::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_share_one_state_and_see_each_others_changes_across_reloads() {
    let dir = tempfile::tempdir().unwrap();
    // no idle list: the state goes as soon as the last session leaves
    let s = store(dir.path(), 0, Duration::ZERO);
    s.ensure_account("carol").await.unwrap();
    let a = s.open(&inbox("carol"), "carol").await.unwrap();
    let b = s.open(&inbox("carol"), "carol").await.unwrap();
    assert_eq!(s.open_counts().mailboxes, 1, "one state for both sessions");
    let mut watch = b.watch();
    let before = s.io_counters().index_loads;
    s.append(&inbox("carol"), new_message(1, Flags::default()))
        .await
        .unwrap();
    // the delivery used the sessions' state (no second load) and woke the watcher
    assert_eq!(s.io_counters().index_loads, before);
    let seen = tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .unwrap();
    assert!(seen.is_some(), "the watch saw the delivery");
    assert_eq!(a.snapshot().await.unwrap().messages.len(), 1);
    drop((a, b, watch));
    assert_eq!(s.open_counts(), OpenCounts::default(), "dropped at once");
    // reloaded from disk with everything in it
    let c = s.open(&inbox("carol"), "carol").await.unwrap();
    assert_eq!(c.snapshot().await.unwrap().messages.len(), 1);
    assert_eq!(s.io_counters().index_loads, before + 1);
}

/// Deliveries racing with sessions that come and go (and with eviction at
/// every release): every acknowledged message is there, with distinct UIDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_and_sessions_racing_with_eviction_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1, Duration::from_millis(5));
    s.ensure_account("dave").await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut uids = Vec::new();
            for n in 0..25 {
                let a = s
                    .append(&inbox("dave"), new_message(t * 100 + n, Flags::default()))
                    .await
                    .unwrap();
                uids.push(a.uid.0);
            }
            uids
        }));
    }
    for _ in 0..2 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..40 {
                let m = s.open(&inbox("dave"), "dave").await.unwrap();
                let _ = m.snapshot().await.unwrap();
                drop(m);
            }
            Vec::new()
        }));
    }
    let mut uids = Vec::new();
    for t in tasks {
        uids.extend(t.await.unwrap());
    }
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), 100);
    let m = s.open(&inbox("dave"), "dave").await.unwrap();
    assert_eq!(m.snapshot().await.unwrap().messages.len(), 100);
    assert_eq!(s.verify(&inbox("dave")).await.unwrap(), 100);
}

/// The index files of this process's open descriptors.
fn open_index_files(dir: &std::path::Path) -> usize {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|t| t.starts_with(&dir) && t.file_name().is_some_and(|n| n == "index"))
        .count()
}

/// A selected mailbox that sessions only read holds no file descriptor
/// (its index is mapped; a change opens the file and closes it), so
/// 10,000 sessions on 10,000 accounts need 10,000 sockets, not 20,000 fds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_only_read_holds_no_file_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 0, Duration::ZERO);
    let mut held = Vec::new();
    for i in 0..20 {
        let user = format!("reader{i}");
        s.ensure_account(&user).await.unwrap();
        s.append(&inbox(&user), new_message(i, Flags::default()))
            .await
            .unwrap();
        let m = s.open(&inbox(&user), &user).await.unwrap();
        assert_eq!(m.snapshot().await.unwrap().messages.len(), 1);
        held.push(m);
    }
    assert_eq!(s.open_counts().mailboxes, 20);
    assert_eq!(open_index_files(dir.path()), 0);
    // a write opens it and closes it when done
    s.append(&inbox("reader0"), new_message(99, Flags::default()))
        .await
        .unwrap();
    assert_eq!(open_index_files(dir.path()), 0);
    assert_eq!(held[0].snapshot().await.unwrap().messages.len(), 2);
    drop(held);
    assert_eq!(open_index_files(dir.path()), 0);
}

/// The store-wide files (what stays open whatever the accounts): the lock
/// file, and with the delivery journal its segments; nothing of any
/// account.
#[tokio::test]
async fn store_wide_files_are_the_lock_and_the_journal_segments() {
    let dir = tempfile::tempdir().unwrap();
    let plain = store(dir.path(), 4, Duration::from_secs(1));
    plain.ensure_account("alice@example.com").await.unwrap();
    assert_eq!(
        plain.open_store_files().unwrap(),
        vec![dir.path().join(mailroom_store_crc::LOCK_FILE)]
    );
    drop(plain);

    let journaled = CrcStore::open(
        dir.path(),
        CrcOptions {
            durability: true,
            journal: true,
            ..CrcOptions::default()
        },
    )
    .unwrap();
    journaled
        .append(
            &inbox("alice@example.com"),
            new_message(1, Flags::default()),
        )
        .await
        .unwrap();
    let files = CrcStore::store_wide_files(dir.path()).unwrap();
    assert_eq!(files[0], dir.path().join(mailroom_store_crc::LOCK_FILE));
    assert!(files.len() >= 2, "a journal segment: {files:?}");
    assert!(
        files[1..]
            .iter()
            .all(|f| f.parent() == Some(&dir.path().join("journal"))
                && f.extension().is_some_and(|e| e == "jnl")),
        "{files:?}"
    );
}
