//! The namespace watch ([`Storage::watch_namespace`]) wakes for changes a
//! replica applies too, not only for the store's own CREATE, RENAME,
//! DELETE and SUBSCRIBE (which the conformance suite checks).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mailroom_core::replication::NamespaceOp;
use mailroom_core::{MailboxName, NamespaceWatch, Replication, Storage, UidValidity};

const USER: &str = "dave@example.com";

async fn woken(w: &mut NamespaceWatch, what: &str) {
    tokio::time::timeout(Duration::from_secs(10), w.changed())
        .await
        .unwrap_or_else(|_| panic!("{what}: the namespace watch did not wake"));
}

async fn replicated_namespace_changes_wake_the_watch<S: Storage + Replication>(s: &S) {
    let mut w = s.watch_namespace(USER);
    let name = |n: &str| MailboxName::new(n).unwrap();
    let create = |n: &str, uv: u32| NamespaceOp::Create {
        name: name(n),
        uid_validity: UidValidity(uv),
        special_use: None,
        mailbox_id: None,
    };
    s.apply_namespace(USER, create("INBOX", 10)).await.unwrap();
    woken(&mut w, "a replicated CREATE of the account's INBOX").await;
    s.apply_namespace(USER, create("Work", 11)).await.unwrap();
    woken(&mut w, "a replicated CREATE").await;
    s.apply_namespace(
        USER,
        NamespaceOp::Rename {
            from: name("Work"),
            to: name("Play"),
        },
    )
    .await
    .unwrap();
    woken(&mut w, "a replicated RENAME").await;
    s.apply_namespace(USER, NamespaceOp::SetSubscriptions(vec![name("Play")]))
        .await
        .unwrap();
    woken(&mut w, "replicated subscriptions").await;
    s.apply_namespace(USER, NamespaceOp::Delete { name: name("Play") })
        .await
        .unwrap();
    woken(&mut w, "a replicated DELETE").await;
    assert!(!w.has_changed());
}

#[tokio::test]
async fn replication_wakes_the_namespace_watch() {
    let s = mailroom_store_memory::MemoryStore::new();
    replicated_namespace_changes_wake_the_watch(&s).await;
}
