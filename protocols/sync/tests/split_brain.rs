//! Split brain, on the memory store and on the CRC store: both ends accept
//! writes while apart
//! (the replica promoted, the old primary still running); reconnected, the
//! merge leaves both ends identical and loses nothing either acknowledged,
//! by the rules of `Primary`'s merge (PROTOCOL.md, "Split brain"). The
//! scenarios are in `common/split.rs` (`postgres.rs` runs them with the
//! PostgreSQL store at either end).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::crc_store;
use common::split::*;
use mailroom_store_memory::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_both_ends_written_apart_are_merged_without_loss() {
    both_ends_written_apart_are_merged_without_loss(
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryStore::new()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc_both_ends_written_apart_are_merged_without_loss() {
    let (pd, rd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    both_ends_written_apart_are_merged_without_loss(crc_store(pd.path()), crc_store(rd.path()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_mailboxes_made_or_changed_apart_are_kept() {
    mailboxes_made_or_changed_apart_are_kept(
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryStore::new()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc_mailboxes_made_or_changed_apart_are_kept() {
    let (pd, rd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    mailboxes_made_or_changed_apart_are_kept(crc_store(pd.path()), crc_store(rd.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_namespace_changes_made_apart_are_merged() {
    namespace_changes_made_apart_are_merged(
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryStore::new()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc_namespace_changes_made_apart_are_merged() {
    let (pd, rd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    namespace_changes_made_apart_are_merged(crc_store(pd.path()), crc_store(rd.path())).await;
}
