//! Replication to and from the PostgreSQL store (`mailroom-store-postgres`)
//! over loopback sockets, with the scenarios the memory and CRC pairs run
//! (`common/`): PostgreSQL as the primary of a CRC replica, caught up and
//! then followed through the PostgreSQL change watch; a CRC primary into a
//! PostgreSQL replica, which is then used as a store of its own
//! (promoted); split-brain merges with PostgreSQL at either end; two
//! PostgreSQL frontends on one database, the primary on one and the
//! changes made through the other; and a primary cut between two frames of
//! a batch into a PostgreSQL replica whose process dies and starts again.
//!
//! Every store is a fresh database on one private PostgreSQL cluster for
//! this test binary (`mailroom_testkit::postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use mailroom_core::replication::ChangePosition;
use mailroom_core::{Flag, Replication, Storage, StoreOp};
use mailroom_store_memory::MemoryStore;
use mailroom_sync::ReplicaConfig;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";
const DAVE: &str = "dave@example.com";

/// PostgreSQL primary, CRC replica: an account made with every kind of
/// change before the primary starts is caught up with; then every kind of
/// change again while the primary follows, woken by PostgreSQL's change
/// watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_primary_to_crc_replica_catches_up_and_follows() {
    let (_url, p) = pg_store().await;
    let dir = tempfile::tempdir().unwrap();
    let r = crc_store(dir.path());
    kinds::make_every_kind_of_change(&*p, CAROL, DAVE).await;

    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let running = start_primary(Arc::clone(&p), listener.addr, primary_config());
    kinds::check_every_kind_of_change(&*p, &*r, CAROL, DAVE).await;
    let caught_up = running.primary.stats();
    assert!(caught_up.messages_sent > 0, "{caught_up:?}");

    kinds::every_kind_of_change(&*p, &*r, ALICE, BOB).await;
    kinds::check_every_kind_of_change(&*p, &*r, CAROL, DAVE).await;
    let stats = running.primary.stats();
    assert_eq!(stats.repaired, 0, "no repair was needed: {stats:?}");
    assert_eq!(stats.split_brain_merges, 0, "{stats:?}");
    running.stop().await;
    listener.task.abort();
}

/// CRC primary, PostgreSQL replica: both phases as above; then the
/// replica is used on its own (promoted): a new message takes a UID and a
/// modseq above the replicated ones, and MAILBOXID stays the primary's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc_primary_to_postgres_replica_then_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let p = crc_store(dir.path());
    let (_url, r) = pg_store().await;
    kinds::make_every_kind_of_change(&*p, CAROL, DAVE).await;

    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let running = start_primary(Arc::clone(&p), listener.addr, primary_config());
    kinds::check_every_kind_of_change(&*p, &*r, CAROL, DAVE).await;
    kinds::every_kind_of_change(&*p, &*r, ALICE, BOB).await;
    kinds::check_every_kind_of_change(&*p, &*r, CAROL, DAVE).await;
    let stats = running.primary.stats();
    assert_eq!(stats.repaired, 0, "no repair was needed: {stats:?}");
    running.stop().await;
    listener.task.abort();
    let _ = listener.task.await;

    // Promoted: the PostgreSQL store as a plain Storage.
    for (user, name) in [(ALICE, "Saved"), (ALICE, "Projects"), (CAROL, "INBOX")] {
        let m = mailbox(user, name);
        let replicated = p.status(&m, user).await.unwrap();
        let appended = r.append(&m, message(900, 400)).await.unwrap();
        assert_eq!(appended.uid_validity, replicated.uid_validity, "{name}");
        assert!(
            appended.uid >= replicated.uid_next,
            "{name}: UID {} below the replicated UIDNEXT {}",
            appended.uid,
            replicated.uid_next
        );
        assert!(
            appended.modseq > replicated.highest_modseq,
            "{name}: modseq {:?} not above the replicated {:?}",
            appended.modseq,
            replicated.highest_modseq
        );
        let now = r.status(&m, user).await.unwrap();
        assert_eq!(now.mailbox_id, replicated.mailbox_id, "{name}: MAILBOXID");
        assert_eq!(now.messages, replicated.messages + 1, "{name}");
        // A flag change too: above the new message's modseq.
        let opened = r.open(&m, user).await.unwrap();
        let changed = opened
            .store(
                &[appended.uid],
                &StoreOp::Add([Flag::Flagged].into_iter().collect()),
                None,
            )
            .await
            .unwrap();
        assert!(!changed.changed.is_empty(), "{changed:?}");
        let after = r.status(&m, user).await.unwrap();
        assert!(after.highest_modseq > appended.modseq, "{after:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_brain_with_a_postgres_primary_is_merged_without_loss() {
    let (_url, p) = pg_store().await;
    let dir = tempfile::tempdir().unwrap();
    split::both_ends_written_apart_are_merged_without_loss(p, crc_store(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_brain_with_a_postgres_replica_is_merged_without_loss() {
    let (_url, r) = pg_store().await;
    split::both_ends_written_apart_are_merged_without_loss(Arc::new(MemoryStore::new()), r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_brain_mailboxes_and_namespace_with_postgres_at_either_end() {
    let (_url, p) = pg_store().await;
    split::mailboxes_made_or_changed_apart_are_kept(Arc::clone(&p), Arc::new(MemoryStore::new()))
        .await;
    let (_url, r) = pg_store().await;
    split::namespace_changes_made_apart_are_merged(Arc::new(MemoryStore::new()), r).await;
}

/// Two frontends on one database: the primary runs on the first, every
/// change is made through the second, and each reaches the replica: the
/// first's change watch is woken by the second's NOTIFY, and its
/// `changed_accounts` names the accounts the second changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_another_frontend_reaches_the_replica() {
    let (url, first) = pg_store().await;
    let second = pg_frontend(&url).await;

    // The watch and the positions, across frontends.
    let mut watch = first.watch_changes();
    let start = first.changed_accounts(ChangePosition(0)).await.unwrap();
    second.ensure_account(CAROL).await.unwrap();
    let woken = tokio::time::timeout(Duration::from_secs(10), watch.changed())
        .await
        .expect("the first frontend's change watch woke");
    assert!(woken.is_some());
    let changed = first.changed_accounts(start.position).await.unwrap();
    assert_eq!(changed.users, [CAROL], "{changed:?}");
    let quiet = first.changed_accounts(changed.position).await.unwrap();
    assert!(quiet.users.is_empty(), "{quiet:?}");

    let r = Arc::new(MemoryStore::new());
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let running = start_primary(Arc::clone(&first), listener.addr, primary_config());
    wait_identical(&*second, &*r, CAROL).await;
    kinds::every_kind_of_change(&*second, &*r, ALICE, BOB).await;
    // The replica's copy also equals what the primary's own frontend sees.
    wait_identical(&*first, &*r, ALICE).await;
    // A delivery through the second frontend alone, waited for by modseq.
    let appended = second.append(&inbox(CAROL), message(7, 500)).await.unwrap();
    let held = running
        .primary
        .wait_replicated(
            CAROL,
            appended.uid_validity,
            appended.modseq,
            Duration::from_secs(10),
        )
        .await;
    assert!(held, "the delivery through the other frontend replicated");
    let on_replica = r
        .records(&inbox(CAROL), appended.uid_validity, &[appended.uid])
        .await
        .unwrap();
    assert_eq!(on_replica.len(), 1);
    running.stop().await;
    listener.task.abort();
}

/// A PostgreSQL replica: a batch cut between two frames, with the replica
/// left running and with its process killed at the cut and started again
/// over the same database; and a merge cut between its halves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_replica_cut_mid_batch_resumes_without_loss_or_duplicates() {
    let (_url, r) = pg_store().await;
    cut::batch_cut_between_two_frames(Arc::new(MemoryStore::new()), r, None).await;

    let (url, r) = pg_store().await;
    let reopen: cut::Reopen<mailroom_store_postgres::PgStore> = Box::new(move |old| {
        Box::pin(async move {
            assert_eq!(Arc::strong_count(&old), 1, "the old store is gone");
            drop(old);
            pg_frontend(&url).await
        })
    });
    cut::batch_cut_between_two_frames(Arc::new(MemoryStore::new()), r, Some(reopen)).await;

    for before in [1, 2] {
        let (_url, r) = pg_store().await;
        cut::merge_cut_between_its_halves(Arc::new(MemoryStore::new()), r, before).await;
    }
}

/// A PostgreSQL primary cut between two frames of a batch, restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_primary_cut_mid_batch_resumes_without_loss_or_duplicates() {
    let (_url, p) = pg_store().await;
    let dir = tempfile::tempdir().unwrap();
    cut::batch_cut_between_two_frames(p, crc_store(dir.path()), None).await;
    let (_url, p) = pg_store().await;
    cut::merge_cut_between_its_halves(p, Arc::new(MemoryStore::new()), 2).await;
}
