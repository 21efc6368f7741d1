//! Bad input on the replication port: garbage, a wrong secret, a truncated
//! frame, a CRC mismatch, a huge length, data before authentication, a
//! message whose bytes do not match its GUID. Each is refused with a logged
//! reason, nothing is applied, and the same listener then serves the real
//! primary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::*;
use mailroom_core::replication::{ReplicaMessage, ReplicaRecord};
use mailroom_core::{
    Flags, InternalDate, MailboxName, MessageGuid, ModSeq, Replication, Storage, Uid, UidValidity,
};
use mailroom_store_memory::MemoryStore;
use mailroom_sync::handshake::nonce;
use mailroom_sync::msgs::{Hello, MailboxKey, Records, Role, error_code};
use mailroom_sync::{Primary, PrimaryConfig, ReplicaConfig, Secret, SyncError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Captures every log line of this test binary.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

const USER: &str = "dave@example.net";

async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s.shutdown().await.unwrap();
    // Read until the replica closes (it may send an ERROR frame first).
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut sink)).await;
}

fn hello_bytes() -> Vec<u8> {
    Hello {
        min_version: 1,
        max_version: 1,
        role: Role::Primary,
        nonce: nonce(),
        chosen: None,
    }
    .to_frame()
    .to_bytes(1 << 20)
    .unwrap()
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_the_port_keeps_serving() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let r = Arc::new(MemoryStore::new());
    let mut listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    let addr = listener.addr;
    let expect = |what: &str, check: fn(&SyncError) -> bool, err: SyncError| {
        assert!(check(&err), "{what}: {err:?}");
        assert!(err.is_peer_fault(), "{what}: {err:?}");
        let reason = err.to_string();
        assert!(
            logs.text().contains(&reason),
            "{what}: reason {reason:?} not logged:\n{}",
            logs.text()
        );
    };

    // Garbage: an HTTP request. "GET " read as a length is about 1.2 GB.
    raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let e = listener.results.recv().await.unwrap().unwrap_err();
    expect(
        "garbage",
        |e| matches!(e, SyncError::FrameTooLarge { .. }),
        e,
    );

    // A huge length with nothing behind it.
    raw(addr, &[0x7f, 0xff, 0xff, 0xff]).await;
    let e = listener.results.recv().await.unwrap().unwrap_err();
    expect(
        "huge length",
        |e| matches!(e, SyncError::FrameTooLarge { .. }),
        e,
    );

    // A frame cut short.
    let hello = hello_bytes();
    raw(addr, &hello[..hello.len() - 5]).await;
    let e = listener.results.recv().await.unwrap().unwrap_err();
    expect("truncated", |e| matches!(e, SyncError::Truncated { .. }), e);

    // A frame whose CRC does not match.
    let mut damaged = hello_bytes();
    damaged[12] ^= 0x01;
    raw(addr, &damaged).await;
    let e = listener.results.recv().await.unwrap().unwrap_err();
    expect("crc", |e| matches!(e, SyncError::CrcMismatch { .. }), e);

    // Random bytes that happen to form a small length.
    raw(addr, &[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).await;
    let e = listener.results.recv().await.unwrap().unwrap_err();
    expect("noise", |e| matches!(e, SyncError::CrcMismatch { .. }), e);

    // Data before authentication: a well-formed RECORDS frame first.
    let content = Bytes::from_static(b"Subject: sneaky\r\n\r\nx\r\n");
    let records = Records {
        key: MailboxKey {
            user: USER.into(),
            name: MailboxName::inbox(),
            uid_validity: UidValidity(1),
        },
        messages: vec![ReplicaMessage {
            record: ReplicaRecord {
                uid: Uid(1),
                modseq: ModSeq(2),
                flags: Flags::default(),
                internal_date: InternalDate {
                    timestamp: 0,
                    offset_minutes: 0,
                },
                size: content.len() as u64,
                guid: MessageGuid::of(&content),
                seen_by: vec![],
                save_date: None,
            },
            content: Some(content.clone()),
        }],
        expunged: vec![],
        uid_next: None,
        highest_modseq: None,
        expected: None,
    };
    raw(addr, &records.to_frame().to_bytes(1 << 20).unwrap()).await;
    let e = listener.results.recv().await.unwrap().unwrap_err();
    expect(
        "unauthenticated",
        |e| matches!(e, SyncError::Unexpected(_)),
        e,
    );

    // A wrong secret: refused on both ends.
    let p = Arc::new(MemoryStore::new());
    p.ensure_account(USER).await.unwrap();
    let intruder = Primary::new(
        Arc::clone(&p) as _,
        PrimaryConfig::new(Secret::new(*b"not the right secret at all!").unwrap()),
    );
    let err = intruder
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SyncError::Remote {
                code: error_code::AUTH,
                ..
            }
        ),
        "{err:?}"
    );
    let e = listener.results.recv().await.unwrap().unwrap_err();
    expect("wrong secret", |e| matches!(e, SyncError::AuthFailed), e);

    // Nothing was applied.
    assert!(r.accounts().await.unwrap().is_empty());
    assert_eq!(listener.replica.stats().batches, 0);

    // An authenticated primary sending bytes that do not match their GUID:
    // the batch is refused, the connection survives.
    let honest = Primary::new(Arc::clone(&p) as _, primary_config());
    let mut conn = honest
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    conn.sync_all().await.unwrap();
    let uv = r.status(&inbox(USER), USER).await.unwrap().uid_validity;
    let mut forged = records.clone();
    forged.key.uid_validity = uv;
    forged.messages[0].content = Some(Bytes::from_static(b"Subject: other\r\n\r\nx\r\n"));
    let err = conn.request(forged.to_frame()).await.unwrap_err();
    assert!(
        matches!(
            err,
            SyncError::Remote {
                code: error_code::GUID,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(logs.text().contains("does not match its GUID"));
    assert_eq!(r.status(&inbox(USER), USER).await.unwrap().messages, 0);
    drop(conn);

    // The same port serves the real primary.
    append_n(&*p, &inbox(USER), 0, 3, 500).await;
    let running = start_primary(Arc::clone(&p), addr, primary_config());
    wait_identical(&*p, &*r, USER).await;
    running.stop().await;
    assert!(
        listener.replica.stats().refused >= 7,
        "{:?}",
        listener.replica.stats()
    );
    listener.task.abort();
}
