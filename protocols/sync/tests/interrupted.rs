//! A primary stopped in the middle of its work, on the memory store and on
//! the CRC store: its connection is cut before a chosen RECORDS frame (the
//! frames before it reach the replica, nothing of it or after it does, as
//! when the primary is killed between two frames), then a new primary over
//! the same store (a restart) compares again.
//!
//! - A batch of several frames cut in the middle leaves the replica between
//!   two heads: that is not a split brain (no merge counted), and both ends
//!   end identical.
//! - A split-brain merge cut between its two halves (the primary applied
//!   its own and the replica none or part of its own) is merged again
//!   without moving a message twice: both ends identical, every message
//!   once.
//!
//! The scenarios are in `common/cut.rs` (`postgres.rs` runs them with the
//! PostgreSQL store at either end).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::crc_store;
use common::cut::*;
use mailroom_store_memory::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_batch_cut_between_two_frames_is_no_split_brain() {
    batch_cut_between_two_frames(
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryStore::new()),
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc_a_batch_cut_between_two_frames_is_no_split_brain() {
    let (pd, rd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    batch_cut_between_two_frames(crc_store(pd.path()), crc_store(rd.path()), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_merge_cut_between_its_halves_moves_each_message_once() {
    for before in [1, 2] {
        merge_cut_between_its_halves(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryStore::new()),
            before,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc_a_merge_cut_between_its_halves_moves_each_message_once() {
    for before in [1, 2] {
        let (pd, rd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        merge_cut_between_its_halves(crc_store(pd.path()), crc_store(rd.path()), before).await;
    }
}
