//! Replication between two CRC stores (the on-disk backend mailroomd runs
//! on) over a loopback socket: a full first pass, an incremental one, a
//! replica restarted from its directory that resumes without resending
//! messages, and a message file damaged on the replica's disk repaired by
//! `verify_account`; a flipped byte in a replica's message file and in one
//! of its index records, served to no client as anything but an error,
//! found by `verify_account` and repaired from the primary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::{
    Flag, MailboxName, MailboxRef, ModSeq, NewMessage, Replication, Storage, StoreOp, Uid,
};
use mailroom_store_crc::{CrcOptions, CrcStore};
use mailroom_sync::{Primary, PrimaryConfig, Replica, ReplicaConfig, Secret, Verdict};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const ALICE: &str = "alice@example.com";

fn secret() -> Secret {
    Secret::new(*b"32 random bytes, shared by both!").unwrap()
}

fn open(dir: &Path) -> Arc<CrcStore> {
    Arc::new(
        CrcStore::open(
            dir,
            CrcOptions {
                durability: false,
                open_mailbox_grace: std::time::Duration::ZERO,
                ..CrcOptions::default()
            },
        )
        .unwrap(),
    )
}

/// Opens the store again once the old one is gone: the replica's
/// connection task holds the old store (and so the directory's lock) until
/// it has seen the primary hang up, which happens on another thread.
async fn reopen(dir: &Path) -> Arc<CrcStore> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match CrcStore::open(
            dir,
            CrcOptions {
                durability: false,
                open_mailbox_grace: std::time::Duration::ZERO,
                ..CrcOptions::default()
            },
        ) {
            Ok(s) => return Arc::new(s),
            Err(mailroom_core::Error::Busy(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopening the replica's directory: {e}"),
        }
    }
}

async fn listen(store: Arc<CrcStore>) -> (SocketAddr, JoinHandle<()>) {
    let replica = Replica::new(store, ReplicaConfig::new(secret()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let replica = replica.clone();
            tokio::spawn(async move {
                let _ = replica.serve_connection(socket).await;
            });
        }
    });
    (addr, task)
}

fn message(i: u32) -> NewMessage {
    NewMessage {
        flags: [Flag::Keyword(format!("$Tag{}", i % 4))]
            .into_iter()
            .collect(),
        internal_date: None,
        content: Bytes::from(format!(
            "Subject: {i}\r\nMessage-ID: <{i}@crc>\r\n\r\nbody {i} {}\r\n",
            "x".repeat(i as usize * 7)
        )),
    }
}

fn name(s: &str) -> MailboxName {
    MailboxName::new(s).unwrap()
}

/// The primary's and the replica's directories, and the primary's store
/// holding messages 0..n in ALICE's INBOX.
async fn primary_with(n: u32) -> (TempDir, TempDir, Arc<CrcStore>, MailboxRef) {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let primary_store = open(pdir.path());
    let inbox = MailboxRef::new(ALICE, MailboxName::inbox());
    primary_store.ensure_account(ALICE).await.unwrap();
    for i in 0..n {
        primary_store.append(&inbox, message(i)).await.unwrap();
    }
    (pdir, rdir, primary_store, inbox)
}

/// Both stores hold the same account: namespace, heads, records, bytes.
async fn assert_same(primary: &CrcStore, replica: &CrcStore) {
    let a = primary.account_state(ALICE).await.unwrap().unwrap();
    let b = replica.account_state(ALICE).await.unwrap().unwrap();
    let strip = |s: &mailroom_core::replication::AccountState| {
        s.mailboxes
            .iter()
            .map(|m| (m.name.clone(), m.head, m.special_use, m.acl.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b), "mailboxes and heads");
    assert_eq!(a.subscriptions, b.subscriptions);
    for m in &a.mailboxes {
        let mref = MailboxRef::new(ALICE, m.name.clone());
        let uv = m.head.uid_validity;
        let ra = primary
            .records_since(&mref, uv, ModSeq(0), Uid(0), usize::MAX)
            .await
            .unwrap()
            .records;
        let rb = replica
            .records_since(&mref, uv, ModSeq(0), Uid(0), usize::MAX)
            .await
            .unwrap()
            .records;
        assert_eq!(ra, rb, "records of {}", m.name);
        for r in &ra {
            assert_eq!(
                primary.message_content(&mref, uv, r.uid).await.unwrap(),
                replica.message_content(&mref, uv, r.uid).await.unwrap(),
                "bytes of {} UID {}",
                m.name,
                r.uid
            );
        }
        // what an IMAP client sees agrees too
        let sa = primary.status(&mref, ALICE).await.unwrap();
        // MAILBOXID included: replication carries it (RFC 8474)
        let sb = replica.status(&mref, ALICE).await.unwrap();
        assert_eq!(sa, sb, "STATUS of {}", m.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_crc_stores_replicate_resume_and_repair() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let primary_store = open(pdir.path());
    let inbox = MailboxRef::new(ALICE, MailboxName::inbox());
    primary_store.ensure_account(ALICE).await.unwrap();
    for i in 0..30 {
        primary_store.append(&inbox, message(i)).await.unwrap();
    }
    let work = MailboxRef::new(ALICE, name("Work"));
    primary_store.create(&work, None).await.unwrap();
    let mailbox = primary_store.open(&inbox, ALICE).await.unwrap();
    mailbox
        .copy_to(&[Uid(1), Uid(2), Uid(3)], &work)
        .await
        .unwrap();
    mailbox
        .store(
            &[Uid(4), Uid(5), Uid(6)],
            &StoreOp::Add(
                [Flag::Seen, Flag::Deleted, Flag::Keyword("Later".into())]
                    .into_iter()
                    .collect(),
            ),
            None,
        )
        .await
        .unwrap();
    mailbox.expunge(Some(&[Uid(5)])).await.unwrap();
    let bob = primary_store.open(&inbox, "bob@example.com").await.unwrap();
    bob.store(
        &[Uid(7)],
        &StoreOp::Add([Flag::Seen].into_iter().collect()),
        None,
    )
    .await
    .unwrap();
    primary_store
        .rename(&work, &name("Projects"))
        .await
        .unwrap();

    let primary = Primary::new(primary_store.clone(), PrimaryConfig::new(secret()));
    let replica_store = open(rdir.path());
    let (addr, task) = listen(replica_store.clone()).await;
    let mut conn = primary
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    let first = conn.sync_all().await.unwrap();
    assert!(
        first[ALICE].iter().all(|(_, v)| *v == Verdict::Updated),
        "{first:?}"
    );
    assert_same(&primary_store, &replica_store).await;
    let full = primary.stats();
    assert_eq!(full.messages_sent, 29 + 3, "every message once");

    // incremental: a delivery, a flag change, an expunge
    primary_store.append(&inbox, message(99)).await.unwrap();
    mailbox
        .store(
            &[Uid(8)],
            &StoreOp::Add([Flag::Flagged].into_iter().collect()),
            None,
        )
        .await
        .unwrap();
    mailbox.expunge(None).await.unwrap();
    conn.sync_all().await.unwrap();
    assert_same(&primary_store, &replica_store).await;
    let incremental = primary.stats();
    assert_eq!(
        incremental.messages_sent - full.messages_sent,
        1,
        "only the new message's bytes"
    );
    drop(conn);

    // the replica restarts from its directory: nothing to resend
    task.abort();
    let _ = task.await;
    drop(replica_store);
    let replica_store = reopen(rdir.path()).await;
    let (addr, task) = listen(replica_store.clone()).await;
    let before = primary.stats();
    let mut conn = primary
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    let resumed = conn.sync_all().await.unwrap();
    assert!(
        resumed[ALICE].iter().all(|(_, v)| *v == Verdict::InStep),
        "{resumed:?}"
    );
    let after = primary.stats();
    assert_eq!(after.messages_sent, before.messages_sent, "no full resync");
    assert_eq!(after.records_sent, before.records_sent);
    println!(
        "resume after a replica restart: {} bytes sent, {} received",
        after.bytes_sent - before.bytes_sent,
        after.bytes_received - before.bytes_received
    );

    // a flipped byte in one of the replica's message files
    let rinbox = replica_store.mailbox_dir(&inbox).await.unwrap();
    let file = rinbox.join("msg").join("10");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[2] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let verdicts = conn.verify_account(ALICE).await.unwrap();
    assert!(
        verdicts
            .iter()
            .any(|(n, v)| n.is_inbox() && *v == Verdict::Repaired),
        "{verdicts:?}"
    );
    assert_same(&primary_store, &replica_store).await;
    task.abort();
}

/// Index layout (FORMAT.md "index file"): a 128-byte header, then 128-byte
/// records in UID order.
const INDEX_HEADER: usize = 128;
const INDEX_RECORD: usize = 128;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_message_file_and_index_record_repaired_by_verify() {
    let (_pdir, rdir, primary_store, inbox) = primary_with(20).await;
    let mailbox = primary_store.open(&inbox, ALICE).await.unwrap();
    mailbox
        .store(
            &[Uid(9), Uid(12)],
            &StoreOp::Add(
                [Flag::Flagged, Flag::Keyword("Kept".into())]
                    .into_iter()
                    .collect(),
            ),
            None,
        )
        .await
        .unwrap();
    let primary = Primary::new(primary_store.clone(), PrimaryConfig::new(secret()));
    let replica_store = open(rdir.path());
    let (addr, task) = listen(replica_store.clone()).await;
    let mut conn = primary
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    conn.sync_all().await.unwrap();
    assert_same(&primary_store, &replica_store).await;
    let uv = primary_store
        .status(&inbox, ALICE)
        .await
        .unwrap()
        .uid_validity;

    // A flipped byte in message file 5 and in the index record of UID 9
    // (the ninth record: its keyword bits).
    let dir = replica_store.mailbox_dir(&inbox).await.unwrap();
    let file = dir.join("msg").join("5");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[7] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let index = dir.join("index");
    let mut bytes = std::fs::read(&index).unwrap();
    let at = INDEX_HEADER + 8 * INDEX_RECORD;
    assert_eq!(&bytes[at..at + 4], &9u32.to_le_bytes(), "record 8 is UID 9");
    bytes[at + 48] ^= 0x04;
    std::fs::write(&index, &bytes).unwrap();

    // Nothing wrong is served meanwhile: whoever reads gets an error.
    let m = replica_store.open(&inbox, ALICE).await;
    let snapshot = match m {
        Ok(m) => m.snapshot().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(
        matches!(snapshot, Err(mailroom_core::Error::Corruption(_))),
        "a damaged index record is an error, never other flags: {snapshot:?}"
    );
    let content = replica_store.message_content(&inbox, uv, Uid(5)).await;
    assert!(
        matches!(content, Err(mailroom_core::Error::Corruption(_))),
        "a damaged message file is an error, never other bytes: {content:?}"
    );

    let before = primary.stats();
    let verdicts = conn.verify_account(ALICE).await.unwrap();
    assert!(
        verdicts
            .iter()
            .any(|(n, v)| n.is_inbox() && *v == Verdict::Repaired),
        "{verdicts:?}"
    );
    let after = primary.stats();
    assert_eq!(
        after.messages_sent - before.messages_sent,
        2,
        "only the two damaged messages are resent"
    );
    assert_same(&primary_store, &replica_store).await;
    let m = replica_store.open(&inbox, ALICE).await.unwrap();
    let meta = m.fetch_meta(&[Uid(9)]).await.unwrap();
    assert!(
        meta[0].flags.contains(&Flag::Keyword("Kept".into())),
        "UID 9's flags are the primary's again: {:?}",
        meta[0].flags
    );
    assert_eq!(
        m.content(Uid(5)).await.unwrap(),
        primary_store
            .message_content(&inbox, uv, Uid(5))
            .await
            .unwrap()
    );
    // The reads above queued the mailbox for reconstruct; the primary's
    // repair took it off the queue (it checks out whole), so a promoted
    // replica has nothing left to reconstruct (issue 8).
    assert!(
        !replica_store.reconstruct_queue().contains(&inbox),
        "a repaired mailbox leaves the reconstruct queue: {:?}",
        replica_store.reconstruct_queue()
    );
    // A reconstruct of the repaired mailbox would change nothing anyway.
    replica_store
        .reconstruct(ALICE, Some(&MailboxName::inbox()))
        .await
        .unwrap();
    assert_same(&primary_store, &replica_store).await;
    // A second verify finds everything in step.
    let again = conn.verify_account(ALICE).await.unwrap();
    assert!(
        again.iter().all(|(_, v)| *v == Verdict::InStep),
        "{again:?}"
    );
    task.abort();
}

/// A replica mailbox made before replication carried the MAILBOXID (same
/// UIDVALIDITY, its own id) takes the primary's on the next pass, kept on
/// disk: after a failover clients see the id they saw before (RFC 8474).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_replica_mailbox_takes_the_primarys_mailboxid() {
    let (_pdir, rdir, primary_store, inbox) = primary_with(3).await;
    let want = primary_store.status(&inbox, ALICE).await.unwrap();
    let replica_store = open(rdir.path());
    replica_store
        .apply_namespace(
            ALICE,
            mailroom_core::replication::NamespaceOp::Create {
                name: MailboxName::inbox(),
                uid_validity: want.uid_validity,
                special_use: None,
                mailbox_id: None,
            },
        )
        .await
        .unwrap();
    let before = replica_store.status(&inbox, ALICE).await.unwrap();
    assert_ne!(before.mailbox_id, want.mailbox_id, "the replica's own id");

    let primary = Primary::new(primary_store.clone(), PrimaryConfig::new(secret()));
    let (addr, task) = listen(replica_store.clone()).await;
    let mut conn = primary
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    conn.sync_all().await.unwrap();
    assert_same(&primary_store, &replica_store).await;
    drop(conn);
    task.abort();
    drop(replica_store);
    let reopened = reopen(rdir.path()).await;
    assert_eq!(
        reopened.status(&inbox, ALICE).await.unwrap().mailbox_id,
        want.mailbox_id,
        "the primary's MAILBOXID, kept on disk"
    );
}

/// Rounds of one delivered message each between two CRC stores with fsync
/// on, as the rolling primary runs them (`MAILROOM_SYNC_ROUNDS`, default
/// 20). Run under `strace -f -y -e trace=fsync,fdatasync` to count the
/// fsyncs one batch costs on each end (the paths tell the ends apart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_rounds_of_one_message_each() {
    let rounds: u32 = std::env::var("MAILROOM_SYNC_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let durable = |dir: &Path| {
        Arc::new(
            CrcStore::open(
                dir,
                CrcOptions {
                    durability: true,
                    ..CrcOptions::default()
                },
            )
            .unwrap(),
        )
    };
    // P and R: the ends' directories, as strace's paths show them
    let root = tempfile::tempdir().unwrap();
    let (pdir, rdir) = (root.path().join("P"), root.path().join("R"));
    std::fs::create_dir(&pdir).unwrap();
    std::fs::create_dir(&rdir).unwrap();
    let (primary_store, replica_store) = (durable(&pdir), durable(&rdir));
    let inbox = MailboxRef::new(ALICE, MailboxName::inbox());
    primary_store.ensure_account(ALICE).await.unwrap();
    let primary = Primary::new(primary_store.clone(), PrimaryConfig::new(secret()));
    let (addr, task) = listen(replica_store.clone()).await;
    let mut conn = primary
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    conn.sync_all().await.unwrap();
    for i in 0..rounds {
        primary_store.append(&inbox, message(i)).await.unwrap();
        let verdicts = conn.sync_account(ALICE).await.unwrap();
        assert!(
            verdicts
                .iter()
                .any(|(n, v)| n.is_inbox() && *v == Verdict::Updated),
            "{verdicts:?}"
        );
    }
    assert_same(&primary_store, &replica_store).await;
    task.abort();
}
