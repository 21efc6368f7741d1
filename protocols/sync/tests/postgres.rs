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

/// What clients of `store` see of `owner`'s INBOX as each viewer: the
/// snapshot a SELECT shows (every message's UID, flags for that viewer,
/// modseq, ...).
async fn served<S: Storage + ?Sized>(
    store: &S,
    owner: &str,
    viewers: &[&str],
) -> Vec<mailroom_core::MailboxSnapshot> {
    let mut out = Vec::new();
    for viewer in viewers {
        let m = store.open(&inbox(owner), viewer).await.unwrap();
        out.push(m.snapshot().await.unwrap());
    }
    out
}

/// One pass of a primary of two records a frame (so a batch of a few
/// messages takes several frames, and all but the first write modseqs
/// below the HIGHESTMODSEQ the first one set).
async fn sync_pass(p: &Arc<dyn Replication>, addr: std::net::SocketAddr) -> mailroom_sync::Primary {
    let mut config = primary_config();
    config.batch_records = 2;
    let primary = mailroom_sync::Primary::new(Arc::clone(p), config);
    let mut conn = primary
        .connect(tokio::net::TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    conn.sync_all().await.unwrap();
    primary
}

async fn flag_as<S: Storage + ?Sized>(store: &S, owner: &str, viewer: &str, uid: u32, flag: Flag) {
    let m = store.open(&inbox(owner), viewer).await.unwrap();
    m.store(
        &[mailroom_core::Uid(uid)],
        &StoreOp::Add([flag].into_iter().collect()),
        None,
    )
    .await
    .unwrap();
}

/// A PostgreSQL end with a second frontend whose clients had INBOX open
/// all along (its views kept): what replication writes through the first
/// frontend, also below the HIGHESTMODSEQ (the later frames of a batch, a
/// split-brain merge's renumbering), the second serves at once, for the
/// owner and for another user with their own `\Seen`. With PostgreSQL as
/// the replica (`pg_is_primary` false) and as the primary.
async fn other_frontend_serves_what_replication_wrote(pg_is_primary: bool) {
    let (url, first) = pg_store().await;
    let second = pg_frontend(&url).await;
    let memory = Arc::new(MemoryStore::new());
    let (p, r): (Arc<dyn Replication>, Arc<dyn Replication>) = if pg_is_primary {
        (first.clone(), memory.clone())
    } else {
        (memory.clone(), first.clone())
    };
    let viewers = [ALICE, BOB];
    let agree = async |what: &str| {
        let want = served(&*memory, ALICE, &viewers).await;
        assert_eq!(
            served(&*second, ALICE, &viewers).await,
            want,
            "{what}: the other frontend"
        );
        assert_eq!(
            served(&*first, ALICE, &viewers).await,
            want,
            "{what}: the first frontend"
        );
    };
    let listener = if pg_is_primary {
        listen(Arc::clone(&memory), ReplicaConfig::new(secret())).await
    } else {
        listen(Arc::clone(&first), ReplicaConfig::new(secret())).await
    };
    p.ensure_account(ALICE).await.unwrap();
    append_n(&*p, &inbox(ALICE), 0, 6, 300).await;
    p.set_acl(&inbox(ALICE), BOB, mailroom_core::Rights::parse("lrs"))
        .await
        .unwrap();
    sync_pass(&p, listener.addr).await;
    agree("first pass").await;

    // Ten deliveries, then changes to older messages: the first frame
    // carries UID 1 with the highest modseq.
    append_n(&*p, &inbox(ALICE), 100, 10, 300).await;
    flag_as(&*p, ALICE, ALICE, 1, Flag::Flagged).await;
    flag_as(&*p, ALICE, BOB, 2, Flag::Seen).await;
    flag_as(&*p, ALICE, ALICE, 3, Flag::Deleted).await;
    let m = p.open(&inbox(ALICE), ALICE).await.unwrap();
    m.expunge(None).await.unwrap();
    sync_pass(&p, listener.addr).await;
    agree("a batch of six frames").await;

    // Apart: both ends deliver (taking the same UIDs) and change flags.
    append_n(&*p, &inbox(ALICE), 200, 2, 300).await;
    flag_as(&*p, ALICE, ALICE, 4, Flag::Answered).await;
    append_n(&*r, &inbox(ALICE), 300, 2, 300).await;
    flag_as(&*r, ALICE, BOB, 5, Flag::Seen).await;
    flag_as(&*r, ALICE, ALICE, 6, Flag::Draft).await;
    let primary = sync_pass(&p, listener.addr).await;
    assert_eq!(
        primary.stats().split_brain_merges,
        1,
        "{:?}",
        primary.stats()
    );
    wait_identical(&*p, &*r, ALICE).await;
    agree("after the merge").await;
    listener.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_frontend_of_a_postgres_replica_serves_what_was_applied() {
    other_frontend_serves_what_replication_wrote(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_frontend_of_a_postgres_primary_serves_what_a_merge_applied() {
    other_frontend_serves_what_replication_wrote(true).await;
}

/// Flips a byte of the stored body of `guid` on the database at `url`:
/// inline or in its first chunk. Returns the rows changed.
async fn damage_body(url: &str, guid: &mailroom_core::MessageGuid) -> u64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let g: &[u8] = &guid.0;
    let inline = client
        .execute(
            "UPDATE bodies SET content = set_byte(content, 40, get_byte(content, 40) # 1) \
             WHERE guid = $1 AND content IS NOT NULL",
            &[&g],
        )
        .await
        .unwrap();
    let chunked = client
        .execute(
            "UPDATE body_chunks SET data = set_byte(data, 40, get_byte(data, 40) # 1) \
             WHERE guid = $1 AND seq = 0",
            &[&g],
        )
        .await
        .unwrap();
    drop(client);
    let _ = driver.await;
    inline + chunked
}

/// Damaged bodies on a PostgreSQL replica, one inline and one in chunks
/// (above `INLINE_MAX`), the first also held by a second mailbox (one body
/// row per GUID per account): never served, found by `verify_account`,
/// each sent again once and repaired for both mailboxes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_repairs_damaged_bodies_on_a_postgres_replica() {
    let p = Arc::new(MemoryStore::new());
    let (url, r) = pg_store().await;
    p.ensure_account(ALICE).await.unwrap();
    append_n(&*p, &inbox(ALICE), 0, 8, 700).await;
    let big = p
        .append(
            &inbox(ALICE),
            message(99, mailroom_store_postgres::INLINE_MAX + 300_000),
        )
        .await
        .unwrap();
    let lists = mailbox(ALICE, "Lists");
    p.create(&lists, None).await.unwrap();
    let m = p.open(&inbox(ALICE), ALICE).await.unwrap();
    m.copy_to(&[mailroom_core::Uid(3)], &lists).await.unwrap();
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let primary = mailroom_sync::Primary::new(Arc::clone(&p) as _, primary_config());
    let mut conn = primary
        .connect(tokio::net::TcpStream::connect(listener.addr).await.unwrap())
        .await
        .unwrap();
    conn.sync_all().await.unwrap();
    wait_identical(&*p, &*r, ALICE).await;

    let uv = big.uid_validity;
    let small = r
        .records(&inbox(ALICE), uv, &[mailroom_core::Uid(3)])
        .await
        .unwrap();
    assert_eq!(damage_body(&url, &small[0].guid).await, 1);
    let large = r.records(&inbox(ALICE), uv, &[big.uid]).await.unwrap();
    assert_eq!(damage_body(&url, &large[0].guid).await, 1);
    for uid in [mailroom_core::Uid(3), big.uid] {
        let served = r.message_content(&inbox(ALICE), uv, uid).await;
        assert!(
            matches!(served, Err(mailroom_core::Error::Corruption(_))),
            "a damaged body is an error, never other bytes: UID {uid}"
        );
    }
    // Heads agree (only bytes are damaged): an ordinary pass sees nothing.
    let quick = conn.sync_account(ALICE).await.unwrap();
    assert!(
        quick
            .iter()
            .all(|(_, v)| *v == mailroom_sync::Verdict::InStep),
        "{quick:?}"
    );

    let before = primary.stats();
    let verdicts = conn.verify_account(ALICE).await.unwrap();
    let of = |name: &str| verdicts.iter().find(|(n, _)| n.as_str() == name).unwrap().1;
    assert_eq!(
        of("INBOX"),
        mailroom_sync::Verdict::Repaired,
        "{verdicts:?}"
    );
    assert_eq!(
        of("Lists"),
        mailroom_sync::Verdict::InStep,
        "the body INBOX's repair rewrote is Lists' too: {verdicts:?}"
    );
    let after = primary.stats();
    assert_eq!(
        after.messages_sent - before.messages_sent,
        2,
        "only the two damaged bodies: {after:?}"
    );
    for (mailbox, uid) in [
        (inbox(ALICE), mailroom_core::Uid(3)),
        (inbox(ALICE), big.uid),
    ] {
        assert_eq!(
            r.message_content(&mailbox, uv, uid).await.unwrap(),
            p.message_content(&mailbox, uv, uid).await.unwrap()
        );
    }
    let luv = r.status(&lists, ALICE).await.unwrap().uid_validity;
    assert_eq!(
        r.message_content(&lists, luv, mailroom_core::Uid(1))
            .await
            .unwrap(),
        p.message_content(&lists, luv, mailroom_core::Uid(1))
            .await
            .unwrap()
    );
    wait_identical(&*p, &*r, ALICE).await;
    let again = conn.verify_account(ALICE).await.unwrap();
    assert!(
        again
            .iter()
            .all(|(_, v)| *v == mailroom_sync::Verdict::InStep),
        "{again:?}"
    );
    listener.task.abort();
}

/// A write through another frontend that took its transaction id before a
/// replication round read the changed accounts, and commits after it: the
/// round's position is at or below that transaction, so the next round
/// finds the account (rather than the change waiting for the next full
/// comparison, a minute away). The write is held between the two by a
/// lock on its mailbox's row, taken by a plain client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_running_across_a_round_is_found_by_the_next() {
    let (url, first) = pg_store().await;
    let second = pg_frontend(&url).await;
    first.ensure_account(ALICE).await.unwrap();
    first.ensure_account(DAVE).await.unwrap();
    let r = Arc::new(MemoryStore::new());
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let running = start_primary(Arc::clone(&first), listener.addr, primary_config());
    wait_identical(&*first, &*r, ALICE).await;
    wait_identical(&*first, &*r, DAVE).await;

    let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let tx = client.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM mailboxes m JOIN accounts a ON a.id = m.account_id \
         WHERE a.name = $1 AND m.name = 'INBOX' FOR UPDATE OF m",
        &[&ALICE],
    )
    .await
    .unwrap();
    // Alice's delivery through the second frontend: it charges her account
    // (its transaction id is her change position) and then waits for her
    // INBOX's row.
    let held = tokio::spawn({
        let second = Arc::clone(&second);
        async move { second.append(&inbox(ALICE), message(1, 400)).await }
    });
    loop {
        let waiting: i64 = tx
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A round meanwhile, for Dave's delivery.
    first.append(&inbox(DAVE), message(2, 400)).await.unwrap();
    wait_identical(&*first, &*r, DAVE).await;
    assert!(!held.is_finished());
    tx.commit().await.unwrap();
    let appended = held.await.unwrap().unwrap();
    let replicated = running
        .primary
        .wait_replicated(
            ALICE,
            appended.uid_validity,
            appended.modseq,
            Duration::from_secs(10),
        )
        .await;
    assert!(
        replicated,
        "the held delivery replicated without a full compare"
    );
    wait_identical(&*first, &*r, ALICE).await;
    drop(client);
    let _ = driver.await;
    running.stop().await;
    listener.task.abort();
}

/// A PostgreSQL primary's status: 0 pending when caught up; one account
/// pending after a delivery while the replica is away, and 0 again after
/// it is back, the one message sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_primary_reports_pending_accounts_and_lag() {
    let (_url, p) = pg_store().await;
    let r = Arc::new(MemoryStore::new());
    p.ensure_account(ALICE).await.unwrap();
    append_n(&*p, &inbox(ALICE), 0, 5, 500).await;
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let running = start_primary(Arc::clone(&p), listener.addr, primary_config());
    wait_identical(&*p, &*r, ALICE).await;
    let status = wait_status(&running.primary, |s| s.pending_accounts == 0).await;
    assert!(status.connected && status.lag.is_zero(), "{status:?}");
    assert_eq!(status.pending_changes, 0, "{status:?}");
    let initial = running.primary.stats();

    listener.task.abort();
    let _ = listener.task.await;
    wait_status(&running.primary, |s| !s.connected).await;
    p.append(&inbox(ALICE), message(1000, 500)).await.unwrap();
    let status = wait_status(&running.primary, |s| s.pending_accounts == 1).await;
    // the transaction ids between two positions are not all changes (the
    // sync points' writes, other databases' work): one account, one change
    assert_eq!(status.pending_changes, 1, "{status:?}");
    assert!(!status.lag.is_zero(), "{status:?}");

    let second = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    *running.target.lock().unwrap() = second.addr;
    wait_identical(&*p, &*r, ALICE).await;
    let status = wait_status(&running.primary, |s| s.pending_accounts == 0).await;
    assert!(status.connected && status.lag.is_zero(), "{status:?}");
    assert_eq!(status.pending_changes, 0, "{status:?}");
    let after = running.primary.stats();
    assert_eq!(after.messages_sent - initial.messages_sent, 1, "{after:?}");
    running.stop().await;
    second.task.abort();
}

/// Namespace changes that depend on order, between two passes: a mailbox
/// with children renamed (each child by its own call, as the IMAP layer
/// does: `Storage::rename`), one deleted and made
/// again under its old name (a new UIDVALIDITY), another renamed onto a
/// name just freed. PostgreSQL at either end.
async fn hierarchy_changes_between_passes<P, R>(p: Arc<P>, r: Arc<R>)
where
    P: Replication + mailroom_core::Quota + 'static,
    R: Replication + mailroom_core::Quota + 'static,
{
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    p.ensure_account(ALICE).await.unwrap();
    for (i, name) in [
        "Parent",
        "Parent/Child",
        "Parent/Child/Leaf",
        "Again",
        "Moved",
    ]
    .into_iter()
    .enumerate()
    {
        p.create(&mailbox(ALICE, name), None).await.unwrap();
        append_n(&*p, &mailbox(ALICE, name), i * 10, 2, 300).await;
    }
    let p_dyn: Arc<dyn Replication> = p.clone();
    sync_pass(&p_dyn, listener.addr).await;
    wait_identical(&*p, &*r, ALICE).await;

    let rename = |from: &str, to: &str| {
        let (from, to) = (
            mailbox(ALICE, from),
            mailroom_core::MailboxName::new(to).unwrap(),
        );
        let p = Arc::clone(&p);
        async move { p.rename(&from, &to).await.unwrap() }
    };
    rename("Parent", "Renamed").await;
    rename("Parent/Child", "Renamed/Child").await;
    rename("Parent/Child/Leaf", "Renamed/Child/Leaf").await;
    let before = p.status(&mailbox(ALICE, "Again"), ALICE).await.unwrap();
    p.delete(&mailbox(ALICE, "Again")).await.unwrap();
    p.create(&mailbox(ALICE, "Again"), None).await.unwrap();
    append_n(&*p, &mailbox(ALICE, "Again"), 500, 1, 300).await;
    let again = p.status(&mailbox(ALICE, "Again"), ALICE).await.unwrap();
    assert_ne!(again.uid_validity, before.uid_validity, "a new incarnation");
    p.delete(&mailbox(ALICE, "Moved")).await.unwrap();
    rename("Renamed/Child/Leaf", "Moved").await;
    sync_pass(&p_dyn, listener.addr).await;
    wait_identical(&*p, &*r, ALICE).await;
    let names: Vec<String> = r
        .account_state(ALICE)
        .await
        .unwrap()
        .unwrap()
        .mailboxes
        .iter()
        .map(|m| m.name.to_string())
        .collect();
    for name in ["Renamed", "Renamed/Child", "Again", "Moved"] {
        assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    for name in ["Parent", "Parent/Child", "Renamed/Child/Leaf"] {
        assert!(!names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    assert_eq!(
        r.status(&mailbox(ALICE, "Again"), ALICE)
            .await
            .unwrap()
            .messages,
        1
    );
    assert_same_usage(&*p, &*r, ALICE).await;
    listener.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hierarchy_changes_replicate_from_and_to_postgres() {
    let (_url, p) = pg_store().await;
    let dir = tempfile::tempdir().unwrap();
    hierarchy_changes_between_passes(p, crc_store(dir.path())).await;
    let (_url, r) = pg_store().await;
    let dir = tempfile::tempdir().unwrap();
    hierarchy_changes_between_passes(crc_store(dir.path()), r).await;
}

/// Writes through both frontends of a PostgreSQL primary while it follows:
/// deliveries, flag changes and expunges racing the rounds that read them.
/// Once the writers stop, the replica is identical (no repair needed: the
/// heads a round reads and the records it sends are of one snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_racing_the_rounds_of_a_postgres_primary_converge() {
    let (url, first) = pg_store().await;
    let second = pg_frontend(&url).await;
    first.ensure_account(ALICE).await.unwrap();
    first.ensure_account(CAROL).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = crc_store(dir.path());
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let running = start_primary(Arc::clone(&first), listener.addr, primary_config());

    let writer = |store: Arc<mailroom_store_postgres::PgStore>, user: &'static str, seed: usize| {
        tokio::spawn(async move {
            for i in 0..25 {
                let appended = store
                    .append(&inbox(user), message(seed + i, 300))
                    .await
                    .unwrap();
                let m = store.open(&inbox(user), user).await.unwrap();
                let flag = if i % 3 == 0 {
                    Flag::Deleted
                } else {
                    Flag::Flagged
                };
                m.store(
                    &[appended.uid],
                    &StoreOp::Add([flag].into_iter().collect()),
                    None,
                )
                .await
                .unwrap();
                if i % 5 == 4 {
                    m.expunge(None).await.unwrap();
                }
            }
        })
    };
    let writers = [
        writer(Arc::clone(&first), ALICE, 0),
        writer(Arc::clone(&second), ALICE, 1000),
        writer(Arc::clone(&second), CAROL, 2000),
    ];
    for w in writers {
        w.await.unwrap();
    }
    for user in [ALICE, CAROL] {
        wait_identical(&*first, &*r, user).await;
        assert_same_usage(&*first, &*r, user).await;
    }
    let stats = running.primary.stats();
    println!("racing writes: {stats:?}");
    assert_eq!(stats.repaired, 0, "{stats:?}");
    running.stop().await;
    listener.task.abort();
}

/// Keywords that are atoms to IMAP but special to a PostgreSQL array
/// literal (a comma, a closing brace, the word NULL, a quote), set at
/// delivery and by STORE, replicate unchanged.
async fn special_keywords_replicate<P, R>(p: Arc<P>, r: Arc<R>)
where
    P: Replication + 'static,
    R: Replication + 'static,
{
    let keywords = ["a,b", "x}y", "NULL", "$Label1", "it's"];
    let all = || -> mailroom_core::Flags {
        keywords
            .iter()
            .map(|k| Flag::Keyword((*k).into()))
            .collect()
    };
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    p.ensure_account(ALICE).await.unwrap();
    let mut first = message(1, 300);
    first.flags = all();
    p.append(&inbox(ALICE), first).await.unwrap();
    append_n(&*p, &inbox(ALICE), 2, 1, 300).await;
    let m = p.open(&inbox(ALICE), ALICE).await.unwrap();
    m.store(&[mailroom_core::Uid(2)], &StoreOp::Add(all()), None)
        .await
        .unwrap();
    sync_pass(&(p.clone() as Arc<dyn Replication>), listener.addr).await;
    wait_identical(&*p, &*r, ALICE).await;
    let uv = r.status(&inbox(ALICE), ALICE).await.unwrap().uid_validity;
    let uids = [mailroom_core::Uid(1), mailroom_core::Uid(2)];
    for record in r.records(&inbox(ALICE), uv, &uids).await.unwrap() {
        let mut got: Vec<&str> = record.flags.keywords().collect();
        got.sort_unstable();
        let mut want = keywords.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "UID {}", record.uid);
    }
    listener.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keywords_special_to_postgres_arrays_replicate_both_ways() {
    let (_url, p) = pg_store().await;
    let dir = tempfile::tempdir().unwrap();
    special_keywords_replicate(p, crc_store(dir.path())).await;
    let (_url, r) = pg_store().await;
    let dir = tempfile::tempdir().unwrap();
    special_keywords_replicate(crc_store(dir.path()), r).await;
}
