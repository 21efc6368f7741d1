//! The namespace watch ([`Storage::watch_namespace`]) wakes for changes a
//! replica applies too, not only for the store's own CREATE, RENAME,
//! DELETE and SUBSCRIBE (which the conformance suite checks).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mailroom_testkit::store::replicated_namespace_changes_wake_the_watch;

#[tokio::test]
async fn replication_wakes_the_namespace_watch() {
    let s = mailroom_store_memory::MemoryStore::new();
    replicated_namespace_changes_wake_the_watch(&s).await;
}
