//! Version skew: a "newer" sender that adds unknown fields (at the top of
//! every frame and inside every record) and unknown frame kinds (one the
//! receiver may skip, one it must answer UNSUPPORTED) still replicates; a
//! sender whose version range does not overlap is refused with an error
//! naming both ranges, on both ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use mailroom_core::{Replication, Storage};
use mailroom_store_memory::MemoryStore;
use mailroom_sync::msgs::kind;
use mailroom_sync::wire::{FLAG_IGNORABLE, Field, Frame, Value};
use mailroom_sync::{Primary, ReplicaConfig, SyncError};
use tokio::net::TcpStream;

const USER: &str = "carol@example.org";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_sender_with_unknown_fields_and_frames_still_replicates() {
    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(MemoryStore::new());
    let mut listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let mut config = primary_config();
    config.outgoing_hook = Some(Arc::new(|frame: &mut Frame| {
        frame
            .fields
            .push(Field::str(900, "a field from protocol version 2"));
        for f in &mut frame.fields {
            if let Value::Group(inner) = &mut f.value {
                inner.push(Field::uint(901, 7));
                inner.push(Field {
                    tag: 902,
                    value: Value::Unknown {
                        wire_type: 9,
                        bytes: bytes::Bytes::from_static(b"a type from the future"),
                    },
                });
            }
        }
        if frame.kind != kind::RECORDS {
            return Vec::new();
        }
        let mut skippable = Frame::new(0x7f01, vec![Field::str(1, "progress hint")]);
        skippable.flags = FLAG_IGNORABLE;
        let must_answer = Frame::new(0x7f02, vec![Field::str(1, "compressed batch")]);
        vec![skippable, must_answer]
    }));
    let running = start_primary(Arc::clone(&p), listener.addr, config);

    p.ensure_account(USER).await.unwrap();
    append_n(&*p, &inbox(USER), 0, 5, 400).await;
    p.create(&mailbox(USER, "Lists"), None).await.unwrap();
    append_n(&*p, &mailbox(USER, "Lists"), 10, 3, 400).await;
    wait_identical(&*p, &*r, USER).await;
    let stats = running.primary.stats();
    assert!(
        stats.unsupported_answers >= 2,
        "the replica answered UNSUPPORTED and the sender fell back: {stats:?}"
    );
    assert_eq!(stats.repaired, 0);
    running.stop().await;
    listener.task.abort();
    // No connection was refused.
    while let Ok(result) = listener.results.try_recv() {
        result.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_version_is_refused_naming_both_ranges() {
    let r = Arc::new(MemoryStore::new());
    let mut listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let p = Arc::new(MemoryStore::new());
    p.ensure_account(USER).await.unwrap();
    let mut config = primary_config();
    config.versions = 2..=3;
    let primary = Primary::new(p, config);
    let socket = TcpStream::connect(listener.addr).await.unwrap();
    let err = primary.connect(socket).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            SyncError::VersionUnsupported {
                peer_min: 1,
                peer_max: 1,
                ours_min: 2,
                ours_max: 3
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        text,
        "unsupported replication protocol version: peer speaks 1..=1, this node speaks 2..=3"
    );
    let replica_side = listener.results.recv().await.unwrap().unwrap_err();
    assert_eq!(
        replica_side.to_string(),
        "unsupported replication protocol version: peer speaks 2..=3, this node speaks 1..=1"
    );
    assert!(!err.is_retryable());
    assert!(r.account_state(USER).await.unwrap().is_none());
    listener.task.abort();
}

/// Application files kept in memory: the primary's current set and what a
/// replica installed, in order.
#[derive(Debug, Default)]
struct MemFiles {
    current: std::sync::Mutex<Vec<(String, bytes::Bytes)>>,
    installed: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
}

impl mailroom_sync::AppFiles for MemFiles {
    fn read(&self) -> std::io::Result<Vec<(String, bytes::Bytes)>> {
        Ok(self.current.lock().unwrap().clone())
    }

    fn install(&self, name: &str, content: &[u8]) -> std::io::Result<()> {
        self.installed
            .lock()
            .unwrap()
            .push((name.to_owned(), content.to_vec()));
        Ok(())
    }
}

async fn wait_installed(files: &MemFiles, n: usize) -> Vec<(String, Vec<u8>)> {
    for _ in 0..1000 {
        let got = files.installed.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "{n} files not installed: {:?}",
        files.installed.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_files_are_sent_at_connect_and_when_they_change() {
    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(MemoryStore::new());
    let ours = Arc::new(MemFiles::default());
    let theirs = Arc::new(MemFiles::default());
    ours.current
        .lock()
        .unwrap()
        .push(("users.toml".into(), bytes::Bytes::from_static(b"one\n")));
    let mut rconfig = ReplicaConfig::new(secret());
    rconfig.files = Some(theirs.clone());
    let mut listener = listen(Arc::clone(&r), rconfig).await;
    let mut config = primary_config();
    config.files = Some(ours.clone());
    config.file_check_interval = std::time::Duration::from_millis(50);
    let running = start_primary(Arc::clone(&p), listener.addr, config);

    let got = wait_installed(&theirs, 1).await;
    assert_eq!(got[0], ("users.toml".to_owned(), b"one\n".to_vec()));
    // A change with no store change is sent at the next check, once.
    ours.current.lock().unwrap()[0].1 = bytes::Bytes::from_static(b"two\n");
    let got = wait_installed(&theirs, 2).await;
    assert_eq!(got[1], ("users.toml".to_owned(), b"two\n".to_vec()));
    // The store goes on replicating; an unchanged file is not sent again.
    p.ensure_account(USER).await.unwrap();
    append_n(&*p, &inbox(USER), 0, 3, 400).await;
    wait_identical(&*p, &*r, USER).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(theirs.installed.lock().unwrap().len(), 2);
    assert_eq!(running.primary.stats().unsupported_answers, 0);
    running.stop().await;
    listener.task.abort();
    while let Ok(result) = listener.results.try_recv() {
        result.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_takes_no_files_answers_unsupported_and_replication_goes_on() {
    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(MemoryStore::new());
    let ours = Arc::new(MemFiles::default());
    ours.current
        .lock()
        .unwrap()
        .push(("users.toml".into(), bytes::Bytes::from_static(b"one\n")));
    // As an older replica that does not know FILE: it answers UNSUPPORTED.
    let mut listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let mut config = primary_config();
    config.files = Some(ours.clone());
    config.file_check_interval = std::time::Duration::from_millis(50);
    let running = start_primary(Arc::clone(&p), listener.addr, config);

    p.ensure_account(USER).await.unwrap();
    append_n(&*p, &inbox(USER), 0, 5, 400).await;
    wait_identical(&*p, &*r, USER).await;
    ours.current.lock().unwrap()[0].1 = bytes::Bytes::from_static(b"two\n");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    append_n(&*p, &inbox(USER), 5, 2, 400).await;
    wait_identical(&*p, &*r, USER).await;
    let stats = running.primary.stats();
    assert_eq!(
        stats.unsupported_answers, 1,
        "one UNSUPPORTED, then no more files on that connection: {stats:?}"
    );
    assert_eq!(stats.connects, 1, "the connection was kept: {stats:?}");
    running.stop().await;
    listener.task.abort();
    while let Ok(result) = listener.results.try_recv() {
        result.unwrap();
    }
}
