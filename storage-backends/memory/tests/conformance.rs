//! The backend conformance suite (mailroom-conformance), every check, run on
//! [`MemoryStore`].

use std::sync::Arc;

use mailroom_store_memory::MemoryStore;

mailroom_conformance::conformance_tests!(Arc::new(MemoryStore::new()));

/// The whole suite in one go, as `run_all` callers use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all() {
    mailroom_conformance::run_all(|| Arc::new(MemoryStore::new())).await;
}

/// The checks that do not need `Quota` also run through `Arc<dyn Storage>`.
#[tokio::test]
async fn through_dyn_storage() {
    let store: Arc<dyn mailroom_core::Storage> = Arc::new(MemoryStore::new());
    mailroom_conformance::per_user_seen(store).await;
}
