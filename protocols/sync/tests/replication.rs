//! Memory store to memory store over real loopback sockets: every kind of
//! change replicates; a restarted replica or primary resumes without
//! re-sending what the replica has; a damaged replica record is found by the
//! state CRC and repaired by sending only what differs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use mailroom_core::replication::{ApplyBatch, ReplicaMessage};
use mailroom_core::{Flags, MessageGuid, Replication, Storage, Uid};
use mailroom_store_memory::MemoryStore;
use mailroom_sync::{Primary, ReplicaConfig, Verdict};
use tokio::net::TcpStream;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_change_replicates() {
    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(MemoryStore::new());
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let running = start_primary(Arc::clone(&p), listener.addr, primary_config());
    kinds::every_kind_of_change(&*p, &*r, ALICE, BOB).await;
    assert_eq!(running.primary.stats().repaired, 0, "no repair was needed");
    running.stop().await;
    listener.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_replica_and_primary_resume_without_resending() {
    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(MemoryStore::new());
    p.ensure_account(ALICE).await.unwrap();
    append_n(&*p, &inbox(ALICE), 0, 40, 2048).await;
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let running = start_primary(Arc::clone(&p), listener.addr, primary_config());
    wait_identical(&*p, &*r, ALICE).await;
    let initial = running.primary.stats();
    assert_eq!(initial.messages_sent, 40);
    assert!(initial.bytes_sent > 40 * 2048, "{initial:?}");

    let status = wait_status(&running.primary, |s| s.pending_accounts == 0).await;
    assert!(status.connected && status.lag.is_zero(), "{status:?}");
    assert!(status.last_full_compare.is_some(), "{status:?}");
    let text = status.render_prometheus();
    assert!(
        text.contains("mailroom_replication_connected 1\n"),
        "{text}"
    );
    assert!(
        text.contains("mailroom_replication_pending_accounts 0\n"),
        "{text}"
    );
    assert_eq!(status.pending_changes, 0, "{status:?}");
    assert!(
        text.contains("mailroom_replication_pending_changes 0\n"),
        "{text}"
    );
    assert!(
        text.contains("mailroom_replication_lag_seconds 0\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE mailroom_replication_bytes_sent_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "mailroom_replication_messages_sent_total {}\n",
            status.stats.messages_sent
        )),
        "{text}"
    );

    // The replica process goes away (listener and connections) and comes
    // back on another port over the same data.
    listener.task.abort();
    let _ = listener.task.await;
    let status = wait_status(&running.primary, |s| !s.connected).await;
    assert_eq!(status.pending_accounts, 0);
    p.append(&inbox(ALICE), message(1000, 2048)).await.unwrap();
    let status = running.primary.status().await.unwrap();
    assert_eq!(status.pending_accounts, 1, "{status:?}");
    assert_eq!(status.pending_changes, 1, "one append: {status:?}");
    assert!(!status.lag.is_zero(), "{status:?}");
    let second = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    *running.target.lock().unwrap() = second.addr;
    wait_identical(&*p, &*r, ALICE).await;
    let status = wait_status(&running.primary, |s| s.pending_accounts == 0).await;
    assert!(status.connected, "{status:?}");
    let after = running.primary.stats();
    let resent = after.bytes_sent - initial.bytes_sent;
    println!(
        "replica restart: initial sync {} bytes sent; after the restart {} bytes sent for 1 new message of 2048 bytes",
        initial.bytes_sent, resent
    );
    assert_eq!(after.messages_sent - initial.messages_sent, 1);
    assert!(after.connects >= 2, "{after:?}");
    assert!(
        resent < 2048 + 2048,
        "only the new message travelled: {resent} bytes"
    );
    assert_eq!(second.replica.stats().messages, 1);
    running.stop().await;

    // The primary restarts (a new client over the same store): it compares
    // heads and sends nothing else.
    let restarted = Primary::new(Arc::clone(&p) as _, primary_config());
    let socket = TcpStream::connect(second.addr).await.unwrap();
    let mut conn = restarted.connect(socket).await.unwrap();
    let verdicts = conn.sync_all().await.unwrap();
    assert!(
        verdicts[ALICE].iter().all(|(_, v)| *v == Verdict::InStep),
        "{verdicts:?}"
    );
    let stats = restarted.stats();
    println!(
        "primary restart: {} bytes sent to compare",
        stats.bytes_sent
    );
    assert_eq!(stats.messages_sent, 0);
    assert_eq!(stats.records_sent, 0);
    assert!(stats.bytes_sent < 1024, "{stats:?}");
    second.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_replica_records_are_found_and_repaired() {
    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(MemoryStore::new());
    p.ensure_account(ALICE).await.unwrap();
    append_n(&*p, &inbox(ALICE), 0, 20, 1024).await;
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let running = start_primary(Arc::clone(&p), listener.addr, primary_config());
    wait_identical(&*p, &*r, ALICE).await;
    let before = running.primary.stats();

    // Damage two records on the replica without touching its HIGHESTMODSEQ:
    // UID 2's flags, and UID 3's bytes (with a GUID that matches them, as a
    // store that lost the original would have).
    let uv = r.status(&inbox(ALICE), ALICE).await.unwrap().uid_validity;
    let originals = r
        .records(&inbox(ALICE), uv, &[Uid(2), Uid(3)])
        .await
        .unwrap();
    let mut flags_damaged = originals[0].clone();
    flags_damaged.flags = Flags::from_parts(Flags::FLAGGED | Flags::DELETED, []);
    let other = Bytes::from_static(b"Subject: not the original\r\n\r\nx\r\n");
    let mut body_damaged = originals[1].clone();
    body_damaged.guid = MessageGuid::of(&other);
    body_damaged.size = other.len() as u64;
    r.apply_messages(
        &inbox(ALICE),
        uv,
        ApplyBatch {
            messages: vec![
                ReplicaMessage {
                    record: flags_damaged,
                    content: None,
                },
                ReplicaMessage {
                    record: body_damaged,
                    content: Some(other),
                },
            ],
            ..ApplyBatch::default()
        },
    )
    .await
    .unwrap();
    assert_ne!(picture(&*p, ALICE).await, picture(&*r, ALICE).await);

    // The next batch for that mailbox finds the state CRC mismatch.
    p.append(&inbox(ALICE), message(500, 1024)).await.unwrap();
    wait_identical(&*p, &*r, ALICE).await;
    let after = running.primary.stats();
    assert!(after.mismatches > before.mismatches, "{after:?}");
    assert_eq!(after.repaired - before.repaired, 1, "{after:?}");
    // The new message, and the one whose bytes were wrong: nothing else.
    assert_eq!(after.messages_sent - before.messages_sent, 2, "{after:?}");
    let repaired_bytes = after.bytes_sent - before.bytes_sent;
    println!("repair: {repaired_bytes} bytes sent (mailbox holds 21 messages of about 1 KiB)");
    assert!(repaired_bytes < 8 * 1024, "{repaired_bytes}");
    running.stop().await;
    listener.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_the_shared_server_runtime_with_its_limits_and_shutdown() {
    use mailroom_server::Server;
    use mailroom_server::limit::ConnectionLimits;
    use mailroom_sync::SyncError;
    use mailroom_sync::msgs::error_code;

    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(MemoryStore::new());
    p.ensure_account(ALICE).await.unwrap();
    append_n(&*p, &inbox(ALICE), 0, 4, 300).await;
    let replica = mailroom_sync::Replica::new(Arc::clone(&r) as _, ReplicaConfig::new(secret()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Server::new(replica.clone()).limits(ConnectionLimits::new(1, 1));
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));

    let primary = Primary::new(Arc::clone(&p) as _, primary_config());
    let mut conn = primary
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    conn.sync_all().await.unwrap();
    wait_identical(&*p, &*r, ALICE).await;

    // Over the limit: refused in the protocol's own words, an ERROR frame.
    let second = Primary::new(Arc::clone(&p) as _, primary_config());
    let err = second
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap_err();
    match &err {
        SyncError::Remote { code, message } => {
            assert_eq!(*code, error_code::TEMPORARY);
            assert!(message.contains("too many connections"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());

    // Shutdown: the replica closes the connection between requests.
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(conn.sync_all().await.is_err(), "connection closed");
    assert_eq!(replica.stats().connections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_replicated_returns_once_the_replica_holds_the_message() {
    use std::time::Duration;

    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(MemoryStore::new());
    p.ensure_account(ALICE).await.unwrap();
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let running = start_primary(Arc::clone(&p), listener.addr, primary_config());
    for i in 0..20 {
        let appended = p.append(&inbox(ALICE), message(i, 700)).await.unwrap();
        let held = running
            .primary
            .wait_replicated(
                ALICE,
                appended.uid_validity,
                appended.modseq,
                Duration::from_secs(5),
            )
            .await;
        assert!(held, "message {i} not replicated in 5 s");
        // At that moment the replica holds it.
        let uv = appended.uid_validity;
        let on_replica = r.records(&inbox(ALICE), uv, &[appended.uid]).await.unwrap();
        assert_eq!(on_replica.len(), 1, "message {i}");
    }
    // The replica is gone: the wait times out (a sync-mode caller then
    // falls back to async).
    listener.task.abort();
    let _ = listener.task.await;
    let appended = p.append(&inbox(ALICE), message(99, 700)).await.unwrap();
    let held = running
        .primary
        .wait_replicated(
            ALICE,
            appended.uid_validity,
            appended.modseq,
            Duration::from_millis(300),
        )
        .await;
    assert!(!held);
    let status = running.primary.status().await.unwrap();
    assert_eq!(status.stats.sync_timeouts, 1);
    assert!(
        status
            .render_prometheus()
            .contains("mailroom_replication_sync_timeouts_total 1\n")
    );
    running.stop().await;
}

/// A primary whose `run` ends, by its shutdown or by being dropped
/// mid-connection, no longer reports itself connected (mailroomd's
/// PostgreSQL frontends hand the stream from one to another that way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_or_dropped_primary_is_not_connected() {
    for dropped in [false, true] {
        let p = Arc::new(MemoryStore::new());
        let r = Arc::new(MemoryStore::new());
        p.ensure_account(ALICE).await.unwrap();
        let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
        let running = start_primary(Arc::clone(&p), listener.addr, primary_config());
        let primary = running.primary.clone();
        wait_status(&primary, |s| s.connected && s.pending_accounts == 0).await;
        if dropped {
            running.abort().await;
        } else {
            running.stop().await;
        }
        let status = primary.status().await.unwrap();
        assert!(!status.connected, "dropped {dropped}: {status:?}");
        listener.task.abort();
    }
}
