//! Delivering to and reading back from a [`MemoryStore`], and a check of
//! any replicated store's namespace watch.

use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::delivery::Pipeline;
use mailroom_core::{
    Delivery, DeliveryOutcome, DeliveryRequest, MailboxName, MailboxRef, Quota, Recipient,
    Replication, Storage, Uid,
};
use mailroom_store_memory::MemoryStore;

/// The standard core delivery pipeline (quota check, then filing into INBOX)
/// over `store`, which is also the quota.
pub fn standard_pipeline(store: &Arc<MemoryStore>) -> Pipeline {
    let quota: Arc<dyn Quota> = store.clone();
    Pipeline::standard(store.clone(), quota)
}

/// Delivers `message` to `user` through [`standard_pipeline`], asserting
/// that it was delivered.
pub async fn deliver(store: &Arc<MemoryStore>, user: &str, message: &[u8]) {
    let out = standard_pipeline(store)
        .deliver(&DeliveryRequest {
            return_path: Some("sender@example.org".into()),
            recipients: vec![Recipient {
                user: user.into(),
                detail: None,
            }],
            message: Bytes::copy_from_slice(message),
        })
        .await;
    assert!(
        matches!(out.as_slice(), [DeliveryOutcome::Delivered { .. }]),
        "{out:?}"
    );
}

/// The UIDs and contents of the messages in `user`'s `mailbox`, in UID order.
pub async fn messages(store: &MemoryStore, user: &str, mailbox: MailboxName) -> Vec<(Uid, Bytes)> {
    let mb = store
        .open(&MailboxRef::new(user, mailbox), user)
        .await
        .unwrap();
    let mut out = Vec::new();
    for m in mb.snapshot().await.unwrap().messages {
        out.push((m.uid, mb.content(m.uid).await.unwrap()));
    }
    out
}

async fn woken(w: &mut mailroom_core::NamespaceWatch, what: &str) {
    tokio::time::timeout(std::time::Duration::from_secs(10), w.changed())
        .await
        .unwrap_or_else(|_| panic!("{what}: the namespace watch did not wake"));
}

/// Checks that a store's namespace watch ([`Storage::watch_namespace`]) wakes
/// for changes a replica applies ([`Replication::apply_namespace`]: CREATE,
/// RENAME, subscriptions, DELETE), not only for its own CREATE, RENAME,
/// DELETE and SUBSCRIBE (which the conformance suite checks). Run by each
/// store that implements both traits; panics on a missing wake-up (10 s).
pub async fn replicated_namespace_changes_wake_the_watch<S: Storage + Replication>(s: &S) {
    const USER: &str = "dave@example.com";
    let mut w = s.watch_namespace(USER);
    let name = |n: &str| MailboxName::new(n).unwrap();
    let create = |n: &str, uv: u32| mailroom_core::replication::NamespaceOp::Create {
        name: name(n),
        uid_validity: mailroom_core::UidValidity(uv),
        special_use: None,
        mailbox_id: None,
    };
    s.apply_namespace(USER, create("INBOX", 10)).await.unwrap();
    woken(&mut w, "a replicated CREATE of the account's INBOX").await;
    s.apply_namespace(USER, create("Work", 11)).await.unwrap();
    woken(&mut w, "a replicated CREATE").await;
    s.apply_namespace(
        USER,
        mailroom_core::replication::NamespaceOp::Rename {
            from: name("Work"),
            to: name("Play"),
        },
    )
    .await
    .unwrap();
    woken(&mut w, "a replicated RENAME").await;
    s.apply_namespace(
        USER,
        mailroom_core::replication::NamespaceOp::SetSubscriptions(vec![name("Play")]),
    )
    .await
    .unwrap();
    woken(&mut w, "replicated subscriptions").await;
    s.apply_namespace(
        USER,
        mailroom_core::replication::NamespaceOp::Delete { name: name("Play") },
    )
    .await
    .unwrap();
    woken(&mut w, "a replicated DELETE").await;
    assert!(!w.has_changed());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivered_messages_read_back_in_order() {
        let store = Arc::new(MemoryStore::new());
        deliver(&store, "alice@example.com", b"Subject: 1\r\n\r\none\r\n").await;
        deliver(&store, "alice@example.com", b"Subject: 2\r\n\r\ntwo\r\n").await;
        let got = messages(&store, "alice@example.com", MailboxName::inbox()).await;
        let bodies: Vec<&[u8]> = got.iter().map(|(_, b)| &b[..]).collect();
        assert_eq!(
            bodies,
            [
                &b"Subject: 1\r\n\r\none\r\n"[..],
                b"Subject: 2\r\n\r\ntwo\r\n"
            ]
        );
        assert!(got[0].0 < got[1].0);
    }
}
