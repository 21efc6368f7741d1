//! The namespace watch ([`Storage::watch_namespace`]) wakes for changes a
//! replica applies too (every change of the account file does), not only
//! for the store's own CREATE, RENAME, DELETE and SUBSCRIBE (which the
//! conformance suite checks).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mailroom_testkit::store::replicated_namespace_changes_wake_the_watch;

#[tokio::test]
async fn replication_wakes_the_namespace_watch() {
    let dir = tempfile::tempdir().unwrap();
    let s = mailroom_store_crc::CrcStore::open(
        dir.path(),
        mailroom_store_crc::CrcOptions {
            durability: false,
            ..Default::default()
        },
    )
    .unwrap();
    replicated_namespace_changes_wake_the_watch(&s).await;
}
