//! A user without an account costs one look-up on disk, not one per ask:
//! every LMTP delivery asks after `archive@<domain>` (the archive settings
//! of the recipient's domain), which most domains never create. The store
//! remembers the miss until the account is created, by a session, by
//! replication or by anything else going through the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mailroom_core::replication::NamespaceOp;
use mailroom_core::{Error, MailboxName, MailboxRef, Replication, Storage, UidValidity};
use mailroom_store_crc::{CrcOptions, CrcStore};

fn store(dir: &std::path::Path) -> CrcStore {
    CrcStore::open(
        dir,
        CrcOptions {
            durability: false,
            ..CrcOptions::default()
        },
    )
    .unwrap()
}

fn lookups(s: &CrcStore) -> u64 {
    s.io_counters().account_lookups
}

fn inbox(user: &str) -> MailboxRef {
    MailboxRef::new(user, MailboxName::inbox())
}

#[tokio::test]
async fn a_missing_account_is_looked_up_on_disk_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let archive = inbox("archive@x.org");
    let before = lookups(&s);
    // what an archive-journaled delivery asks, twice per message
    for _ in 0..2 {
        assert!(matches!(
            s.acl(&archive).await,
            Err(Error::NoSuchMailbox(_))
        ));
    }
    assert_eq!(lookups(&s) - before, 1, "the first miss reads the disk");
    let before = lookups(&s);
    for _ in 0..10 {
        assert!(matches!(
            s.acl(&archive).await,
            Err(Error::NoSuchMailbox(_))
        ));
        assert!(s.list("archive@x.org").await.unwrap().is_empty());
        assert!(s.subscriptions("archive@x.org").await.unwrap().is_empty());
    }
    assert_eq!(lookups(&s), before, "later misses cost no look-up");
}

#[tokio::test]
async fn creating_the_account_ends_the_miss() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let archive = inbox("archive@x.org");
    assert!(s.acl(&archive).await.is_err());
    s.ensure_account("archive@x.org").await.unwrap();
    assert!(s.acl(&archive).await.is_ok());
    // and after the store let go of the account, it is read again
    s.close_idle();
    assert!(s.acl(&archive).await.is_ok());

    // a mailbox created in a missing account (CREATE of another user's
    // mailbox by an admin) creates the account
    let other = MailboxRef::new("bob@x.org", MailboxName::new("Lists").unwrap());
    assert!(s.list("bob@x.org").await.unwrap().is_empty());
    s.create(&other, None).await.unwrap();
    assert_eq!(s.list("bob@x.org").await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_account_created_by_replication_ends_the_miss() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let user = "carol@x.org";
    assert!(s.account_state(user).await.unwrap().is_none());
    assert!(s.list(user).await.unwrap().is_empty());
    s.apply_namespace(
        user,
        NamespaceOp::Create {
            name: MailboxName::inbox(),
            uid_validity: UidValidity(77),
            special_use: None,
            mailbox_id: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(s.list(user).await.unwrap().len(), 1);
    assert!(s.account_state(user).await.unwrap().is_some());
}

#[tokio::test]
async fn the_set_of_missing_accounts_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let n = mailroom_store_crc::MAX_MISSING_ACCOUNTS + 10;
    for i in 0..n {
        assert!(
            s.list(&format!("nobody{i}@x.org"))
                .await
                .unwrap()
                .is_empty()
        );
    }
    // the set was emptied once when full: the first names cost a look-up
    // again, the last ones are still remembered
    let before = lookups(&s);
    assert!(s.list("nobody0@x.org").await.unwrap().is_empty());
    assert_eq!(lookups(&s) - before, 1);
    let before = lookups(&s);
    assert!(
        s.list(&format!("nobody{}@x.org", n - 1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(lookups(&s), before);
}
