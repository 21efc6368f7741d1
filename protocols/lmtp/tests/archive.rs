//! Archive journaling behind LMTP (`mailroom_core::archive::ArchiveStep`
//! in the pipeline), over a real socket: an archive write failure injected
//! through the store traits (a wrapping store; tests run as root, so file
//! permissions would stop nothing) is answered `451` with nothing filed,
//! and the MTA's retry, once the fault is gone, stores both copies once.
//! Over quota, `452` and nothing archived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use mailroom_core::archive::{ArchiveJournal, Direction, archive_account, month_folder};
use mailroom_core::delivery::Pipeline;
use mailroom_core::{
    Error, InternalDate, MailboxName, MailboxRef, Principal, Quota, Roles, Storage,
};
use mailroom_store_memory::MemoryStore;
use mailroom_testkit::FaultyStore;

const MSG: &[u8] = b"From: chris@bar.com\r\nTo: alice@example.com\r\nMessage-ID: <m1@bar.com>\r\nSubject: hello\r\n\r\nbody line\r\n";

async fn count(store: &MemoryStore, mailbox: &MailboxRef) -> u32 {
    match store.status(mailbox, &mailbox.owner).await {
        Ok(s) => s.messages,
        Err(Error::NoSuchMailbox(_)) => 0,
        Err(e) => panic!("{e}"),
    }
}

const MSG2: &[u8] = b"From: chris@bar.com\r\nTo: alice@example.com\r\nMessage-ID: <m2@bar.com>\r\nSubject: second\r\n\r\nanother body\r\n";

async fn transaction(h: &Harness, message: &[u8]) -> String {
    let mut c = h.session().await;
    c.cmd1("MAIL FROM:<chris@bar.com>").await;
    assert!(
        c.cmd1(&format!("RCPT TO:<{ALICE}>"))
            .await
            .starts_with("250")
    );
    assert!(c.cmd1("DATA").await.starts_with("354"));
    c.data(message, 1).await.remove(0)
}

#[tokio::test]
async fn archive_write_failure_is_451_and_the_retry_stores_both_once() {
    let store = Arc::new(MemoryStore::new());
    let faulty = Arc::new(FaultyStore::new(store.clone(), "archive@"));
    let journal = Arc::new(ArchiveJournal::new(faulty.clone()));
    let mut admin = Principal::user("boss@example.com");
    admin.roles = Roles {
        domain_admin: true,
        server_admin: false,
    };
    journal.set_enabled(&admin, ALICE, true).await.unwrap();
    let pipeline = Pipeline::with_archive(
        faulty.clone(),
        store.clone() as Arc<dyn Quota>,
        journal.clone(),
    );
    let h = Harness::start_delivery(store.clone(), Arc::new(pipeline), test_config()).await;
    let inbox = MailboxRef::new(ALICE, MailboxName::inbox());
    let archived = MailboxRef::new(
        archive_account("example.com"),
        month_folder(ALICE, InternalDate::now().timestamp, Direction::In).unwrap(),
    );

    faulty.set_failing(true);
    let reply = transaction(&h, MSG).await;
    assert!(reply.starts_with("451 "), "{reply}");
    assert_eq!(count(&store, &inbox).await, 0);
    assert_eq!(count(&store, &archived).await, 0);

    faulty.set_failing(false);
    let reply = transaction(&h, MSG).await;
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(count(&store, &inbox).await, 1);
    assert_eq!(count(&store, &archived).await, 1);

    // over quota: 452, and the archive copy made first is undone
    h.set_quota(ALICE, Some(1)).await;
    let reply = transaction(&h, MSG2).await;
    assert!(reply.starts_with("452 "), "{reply}");
    assert_eq!(count(&store, &inbox).await, 1);
    assert_eq!(count(&store, &archived).await, 1);
    h.set_quota(ALICE, None).await;
    let reply = transaction(&h, MSG2).await;
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(count(&store, &inbox).await, 2);
    assert_eq!(count(&store, &archived).await, 2);
    // the first message once more (same Message-ID): filed for the user,
    // not archived twice
    let reply = transaction(&h, MSG).await;
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(count(&store, &inbox).await, 3);
    assert_eq!(count(&store, &archived).await, 2);
}
