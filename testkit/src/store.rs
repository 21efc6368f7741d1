//! Delivering to and reading back from a [`MemoryStore`].

use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::delivery::Pipeline;
use mailroom_core::{
    Delivery, DeliveryOutcome, DeliveryRequest, MailboxName, MailboxRef, Quota, Recipient, Storage,
    Uid,
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
