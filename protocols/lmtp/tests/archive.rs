//! Archive journaling behind LMTP (`mailroom_core::archive::ArchiveStep`
//! in the pipeline), over a real socket: an archive write failure injected
//! through the store traits (a wrapping store; tests run as root, so file
//! permissions would stop nothing) is answered `451` with nothing filed,
//! and the MTA's retry, once the fault is gone, stores both copies once.
//! Over quota, `452` and nothing archived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use common::*;
use mailroom_core::archive::{ArchiveJournal, Direction, archive_account, month_folder};
use mailroom_core::delivery::Pipeline;
use mailroom_core::mailbox::{MailboxInfo, MailboxStatus, SpecialUse};
use mailroom_core::maildrop::MaildropLock;
use mailroom_core::{
    Acl, Appended, Error, InternalDate, MailboxName, MailboxRef, NewMessage, Principal, Quota,
    QuotaLimits, Result, Rights, Roles, Storage,
};
use mailroom_store_memory::MemoryStore;

const MSG: &[u8] = b"From: chris@bar.com\r\nTo: alice@example.com\r\nMessage-ID: <m1@bar.com>\r\nSubject: hello\r\n\r\nbody line\r\n";

/// The memory store with archive appends failing while `fail` is set (the
/// fault injected through the store traits).
#[derive(Debug)]
struct Faulty {
    inner: Arc<MemoryStore>,
    fail: AtomicBool,
}

#[async_trait]
impl Storage for Faulty {
    async fn ensure_account(&self, user: &str) -> Result<()> {
        self.inner.ensure_account(user).await
    }
    async fn list(&self, owner: &str) -> Result<Vec<MailboxInfo>> {
        self.inner.list(owner).await
    }
    async fn create(&self, mailbox: &MailboxRef, special_use: Option<SpecialUse>) -> Result<()> {
        self.inner.create(mailbox, special_use).await
    }
    async fn delete(&self, mailbox: &MailboxRef) -> Result<()> {
        self.inner.delete(mailbox).await
    }
    async fn rename(&self, from: &MailboxRef, to: &MailboxName) -> Result<()> {
        self.inner.rename(from, to).await
    }
    async fn set_special_use(&self, m: &MailboxRef, s: Option<SpecialUse>) -> Result<()> {
        self.inner.set_special_use(m, s).await
    }
    async fn subscriptions(&self, user: &str) -> Result<Vec<MailboxName>> {
        self.inner.subscriptions(user).await
    }
    async fn set_subscribed(&self, user: &str, name: &MailboxName, on: bool) -> Result<()> {
        self.inner.set_subscribed(user, name, on).await
    }
    async fn acl(&self, mailbox: &MailboxRef) -> Result<Acl> {
        self.inner.acl(mailbox).await
    }
    async fn set_acl(&self, m: &MailboxRef, id: &str, rights: Option<Rights>) -> Result<()> {
        self.inner.set_acl(m, id, rights).await
    }
    async fn status(&self, mailbox: &MailboxRef, viewer: &str) -> Result<MailboxStatus> {
        self.inner.status(mailbox, viewer).await
    }
    async fn open(
        &self,
        mailbox: &MailboxRef,
        viewer: &str,
    ) -> Result<Arc<dyn mailroom_core::Mailbox>> {
        self.inner.open(mailbox, viewer).await
    }
    async fn append(&self, mailbox: &MailboxRef, message: NewMessage) -> Result<Appended> {
        if self.fail.load(Ordering::SeqCst) && mailbox.owner.starts_with("archive@") {
            return Err(Error::Busy("injected archive write failure".into()));
        }
        self.inner.append(mailbox, message).await
    }
    async fn lock_maildrop(&self, user: &str) -> Result<MaildropLock> {
        self.inner.lock_maildrop(user).await
    }
    async fn append_within_quota(
        &self,
        mailbox: &MailboxRef,
        message: NewMessage,
        limits: QuotaLimits,
    ) -> Result<Appended> {
        self.inner
            .append_within_quota(mailbox, message, limits)
            .await
    }
}

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
    let faulty = Arc::new(Faulty {
        inner: store.clone(),
        fail: AtomicBool::new(false),
    });
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

    faulty.fail.store(true, Ordering::SeqCst);
    let reply = transaction(&h, MSG).await;
    assert!(reply.starts_with("451 "), "{reply}");
    assert_eq!(count(&store, &inbox).await, 0);
    assert_eq!(count(&store, &archived).await, 0);

    faulty.fail.store(false, Ordering::SeqCst);
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
