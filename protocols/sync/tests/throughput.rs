//! What keeps replication fast, checked by what it does rather than by
//! timing it:
//!
//! - the primary streams a mailbox's RECORDS frames without waiting for
//!   each APPLIED (a replica that answers the first frame only once the
//!   second has arrived still gets everything; a lockstep primary waited
//!   for the first answer until its request timeout);
//! - between two CRC stores, a mailbox is loaded (index mapped, every
//!   record verified) a few times per pass, not once per message: the
//!   primary read each message's bytes through a fresh load before, which
//!   made a message cost O(mailbox size).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{append_n, inbox, picture, primary_config, secret};
use futures::{SinkExt, StreamExt};
use mailroom_core::{Replication, Storage};
use mailroom_store_crc::{CrcOptions, CrcStore};
use mailroom_store_memory::MemoryStore;
use mailroom_sync::msgs::{Records, kind};
use mailroom_sync::wire::{Frame, FrameCodec, Limits};
use mailroom_sync::{Primary, Replica, ReplicaConfig};
use tokio_util::codec::Framed;
use tower::Service;

const USER: &str = "pia@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_frames_are_sent_ahead_of_their_answers() {
    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(MemoryStore::new());
    p.ensure_account(USER).await.unwrap();
    append_n(&*p, &inbox(USER), 0, 50, 300).await;

    // A replica that holds a RECORDS frame back until a second one has
    // arrived (or the frame is the mailbox's last, with the expected head),
    // then applies and answers both in order.
    let replica = Replica::new(r.clone(), ReplicaConfig::new(secret()));
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let server = tokio::spawn(async move {
        let mut framed = Framed::new(theirs, FrameCodec::new(Limits::default()));
        let mut session = replica.session();
        let mut held: Vec<Frame> = Vec::new();
        let mut most_held = 0usize;
        while let Some(frame) = framed.next().await {
            let frame = frame.unwrap();
            let ready: Vec<Frame> = if frame.kind == kind::RECORDS {
                let last = Records::from_frame(&frame).unwrap().expected.is_some();
                held.push(frame);
                most_held = most_held.max(held.len());
                if held.len() < 2 && !last {
                    continue;
                }
                std::mem::take(&mut held)
            } else {
                vec![frame]
            };
            for f in ready {
                if let Some(answer) = session.call(f).await.unwrap() {
                    framed.send(answer).await.unwrap();
                }
            }
        }
        most_held
    });

    let mut config = primary_config();
    config.batch_records = 10;
    config.request_timeout = Duration::from_secs(30);
    let primary = Primary::new(p.clone(), config);
    let mut conn = primary.connect(ours).await.unwrap();
    conn.sync_all()
        .await
        .expect("the primary sends the next frame before the first is answered");
    drop(conn);
    let most_held = server.await.unwrap();
    assert!(most_held >= 2, "frames in flight at once: {most_held}");
    assert_eq!(picture(&*p, USER).await, picture(&*r, USER).await);
    assert_eq!(primary.stats().messages_sent, 50);
}

/// A CRC store as mailroomd runs it (released mailboxes kept loaded for
/// the grace period), fsync off.
fn crc_store(dir: &std::path::Path) -> Arc<CrcStore> {
    Arc::new(
        CrcStore::open(
            dir,
            CrcOptions {
                durability: false,
                ..CrcOptions::default()
            },
        )
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_loads_each_mailbox_a_few_times_not_once_per_message() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let p = crc_store(dirs.0.path());
    let r = crc_store(dirs.1.path());
    p.ensure_account(USER).await.unwrap();
    let messages = 400;
    append_n(&*p, &inbox(USER), 0, messages, 300).await;
    let listener = common::listen(r.clone(), ReplicaConfig::new(secret())).await;

    let mut config = primary_config();
    config.batch_records = 100;
    let primary = Primary::new(p.clone() as Arc<dyn Replication>, config);
    let (p0, r0) = (p.io_counters(), r.io_counters());
    let mut conn = primary
        .connect(tokio::net::TcpStream::connect(listener.addr).await.unwrap())
        .await
        .unwrap();
    conn.sync_all().await.unwrap();
    drop(conn);
    let (p1, r1) = (p.io_counters(), r.io_counters());
    assert_eq!(
        p1.message_reads - p0.message_reads,
        messages as u64,
        "each message read once"
    );
    // Five mailboxes on each end, each loaded about once (twice if the
    // grace period passed on a slow machine); once per message was 400+.
    let (p_loads, r_loads) = (
        p1.index_loads - p0.index_loads,
        r1.index_loads - r0.index_loads,
    );
    assert!(
        p_loads <= 20 && r_loads <= 20,
        "index loads: primary {p_loads}, replica {r_loads}"
    );
    assert_eq!(picture(&*p, USER).await, picture(&*r, USER).await);
    listener.task.abort();
}
