//! Archive journaling (`mailroom_core::archive`) over the memory store:
//! roles, the delivery and APPEND hooks, dedup, visibility, delete-proofing,
//! overrides, the quota and fault ordering rules, billing events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use mailroom_core::access::MailAccess;
use mailroom_core::archive::{
    ArchiveEvent, ArchiveEventKind, ArchiveEventSink, ArchiveJournal, Direction, JournaledStorage,
    archive_account, month_folder,
};
use mailroom_core::delivery::{Delivery, Pipeline};
use mailroom_core::{
    DeliveryOutcome, DeliveryRequest, Error, Flag, InternalDate, MailboxName, MailboxRef,
    NewMessage, Principal, Quota, QuotaLimits, Recipient, Result, Rights, Roles, Storage, StoreOp,
};
use mailroom_store_memory::MemoryStore;
use mailroom_testkit::FaultyStore;

const ALICE: &str = "alice@x.org";

#[derive(Debug, Default)]
struct Events(Mutex<Vec<ArchiveEvent>>);

#[async_trait]
impl ArchiveEventSink for Events {
    async fn record(&self, event: &ArchiveEvent) -> Result<()> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

struct Setup {
    store: Arc<MemoryStore>,
    faulty: Arc<FaultyStore>,
    journal: Arc<ArchiveJournal>,
    storage: Arc<dyn Storage>,
    pipeline: Pipeline,
    events: Arc<Events>,
}

fn setup() -> Setup {
    let store = Arc::new(MemoryStore::new());
    let faulty = Arc::new(FaultyStore::new(store.clone(), "archive@"));
    let events = Arc::new(Events::default());
    let journal = Arc::new(ArchiveJournal::new(faulty.clone()).with_events(events.clone()));
    let storage: Arc<dyn Storage> =
        Arc::new(JournaledStorage::new(faulty.clone(), journal.clone()));
    let pipeline = Pipeline::with_archive(
        faulty.clone(),
        store.clone() as Arc<dyn Quota>,
        journal.clone(),
    );
    Setup {
        store,
        faulty,
        journal,
        storage,
        pipeline,
        events,
    }
}

fn admin_of(user: &str, server: bool) -> Principal {
    let mut p = Principal::user(user);
    p.roles = Roles {
        domain_admin: !server,
        server_admin: server,
    };
    p
}

fn message(id: &str) -> Bytes {
    Bytes::from(format!(
        "From: a@b.example\r\nTo: alice@x.org\r\nMessage-ID: <{id}@test>\r\nSubject: {id}\r\n\r\nbody {id}\r\n"
    ))
}

async fn deliver(s: &Setup, user: &str, detail: Option<&str>, content: Bytes) -> DeliveryOutcome {
    let mut out = s
        .pipeline
        .deliver(&DeliveryRequest {
            return_path: Some("a@b.example".into()),
            recipients: vec![Recipient {
                user: user.into(),
                detail: detail.map(str::to_owned),
            }],
            message: content,
        })
        .await;
    out.remove(0)
}

async fn count(s: &Setup, mailbox: &MailboxRef) -> usize {
    match s.store.status(mailbox, &mailbox.owner).await {
        Ok(st) => st.messages as usize,
        Err(Error::NoSuchMailbox(_)) => 0,
        Err(e) => panic!("{e}"),
    }
}

fn folder(user: &str, dir: Direction) -> MailboxRef {
    MailboxRef::new(
        archive_account("x.org"),
        month_folder(user, InternalDate::now().timestamp, dir).unwrap(),
    )
}

#[tokio::test]
async fn roles_decide_who_may_switch_archiving() {
    let s = setup();
    let err = s
        .journal
        .set_enabled(&Principal::user(ALICE), ALICE, true)
        .await;
    assert!(matches!(err, Err(Error::PermissionDenied(_))), "{err:?}");
    let err = s
        .journal
        .set_enabled(&admin_of("boss@y.org", false), ALICE, true)
        .await;
    assert!(matches!(err, Err(Error::PermissionDenied(_))), "{err:?}");
    assert!(!s.journal.is_enabled(ALICE).await.unwrap());
    let boss = admin_of("boss@x.org", false);
    assert!(s.journal.set_enabled(&boss, ALICE, true).await.unwrap());
    assert!(!s.journal.set_enabled(&boss, ALICE, true).await.unwrap());
    assert!(s.journal.is_enabled(ALICE).await.unwrap());
    assert_eq!(s.journal.enabled_users("x.org").await.unwrap(), [ALICE]);
    assert!(
        s.journal
            .set_enabled(&admin_of("root@ops", true), ALICE, false)
            .await
            .unwrap()
    );
    assert!(!s.journal.is_enabled(ALICE).await.unwrap());
    let kinds: Vec<_> = s
        .events
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        [ArchiveEventKind::Enabled, ArchiveEventKind::Disabled]
    );
    // billing is a server admin's switch
    assert!(s.journal.set_billing(&boss, "x.org", true).await.is_err());
}

#[tokio::test]
async fn twenty_seven_archived_visible_to_the_domain_admin_only_and_delete_proof() {
    let s = setup();
    let boss = admin_of("boss@x.org", false);
    let root = admin_of("root@ops", true);
    s.journal.set_enabled(&boss, ALICE, true).await.unwrap();
    for i in 0..20 {
        let o = deliver(&s, ALICE, None, message(&format!("in{i}"))).await;
        assert!(matches!(o, DeliveryOutcome::Delivered { .. }), "{o:?}");
    }
    let alice = MailAccess::new(s.storage.clone(), None, Principal::user(ALICE));
    alice.storage().ensure_account(ALICE).await.unwrap();
    for i in 0..5 {
        alice
            .append(
                "Sent",
                NewMessage {
                    flags: Default::default(),
                    internal_date: None,
                    content: message(&format!("out{i}")),
                },
            )
            .await
            .unwrap();
    }
    // three journaled by the MTA; out0 was also saved to Sent (the MTA's
    // copy has a Received line more: same Message-ID, another GUID)
    for id in ["out0", "mta1", "mta2"] {
        let mut with_received =
            b"Received: by mta.x.org; Sat, 5 Dec 2026 10:00:00 +0000\r\n".to_vec();
        with_received.extend_from_slice(&message(id));
        let o = deliver(&s, "journal@x.org", Some("alice"), with_received.into()).await;
        assert!(matches!(o, DeliveryOutcome::Delivered { .. }), "{o:?}");
    }
    // an APPEND by the user into a mailbox that is not \Sent is not archived
    alice
        .append(
            "Drafts",
            NewMessage {
                flags: Default::default(),
                internal_date: None,
                content: message("draft"),
            },
        )
        .await
        .unwrap();
    let inbox = MailboxRef::new(ALICE, MailboxName::inbox());
    assert_eq!(count(&s, &inbox).await, 20);
    assert_eq!(count(&s, &folder(ALICE, Direction::In)).await, 20);
    assert_eq!(count(&s, &folder(ALICE, Direction::Out)).await, 7);

    // the domain admin sees it; alice and another domain's admin do not
    let boss_access = MailAccess::new(s.storage.clone(), None, boss.clone());
    let in_name = format!(
        "Other Users/archive@x.org/{}",
        folder(ALICE, Direction::In).name
    );
    let listed: Vec<String> = boss_access
        .list("", "*")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(listed.contains(&in_name), "{listed:?}");
    let total: u32 = {
        let mut n = 0;
        for e in &listed {
            if e.starts_with("Other Users/archive@x.org/alice/") && e.ends_with("/in")
                || e.ends_with("/out")
            {
                n += boss_access.status(e).await.unwrap().messages;
            }
        }
        n
    };
    assert_eq!(total, 27);
    for who in [
        Principal::user(ALICE),
        admin_of("boss@y.org", false),
        Principal::user("archive@x.org"),
    ] {
        let access = MailAccess::new(s.storage.clone(), None, who.clone());
        let listed = access.list("", "*").await.unwrap();
        assert!(
            !listed.iter().any(|e| e.name.contains("archive@")),
            "{who:?}: {listed:?}"
        );
        assert!(matches!(
            access.select(&in_name, false).await,
            Err(Error::NoSuchMailbox(_))
        ));
    }

    // refused to everyone, domain and server admins included
    for who in [boss.clone(), root.clone()] {
        let access = MailAccess::new(s.storage.clone(), None, who);
        let sel = access.select(&in_name, false).await.unwrap();
        assert!(sel.read_only());
        let uids = [mailroom_core::Uid(1)];
        assert!(
            sel.store(
                &uids,
                &StoreOp::Add([Flag::Deleted].into_iter().collect()),
                None
            )
            .await
            .is_err()
        );
        assert!(sel.expunge(None).await.is_err());
        assert!(matches!(
            access.delete(&in_name).await,
            Err(Error::PermissionDenied(_))
        ));
        assert!(matches!(
            access.rename(&in_name, &format!("{in_name}-x")).await,
            Err(Error::PermissionDenied(_))
        ));
        assert!(
            access
                .set_acl(&in_name, "boss@x.org", Rights::parse("lrte"))
                .await
                .is_err()
        );
    }
    // only a server admin grants an override, with a reason
    let target = folder(ALICE, Direction::In);
    assert!(
        s.journal
            .set_override(&boss, &target, Some("retention"))
            .await
            .is_err()
    );
    s.journal
        .set_override(&root, &target, Some("retention 7y"))
        .await
        .unwrap();
    let sel = boss_access.select(&in_name, false).await.unwrap();
    sel.store(
        &[mailroom_core::Uid(1), mailroom_core::Uid(2)],
        &StoreOp::Add([Flag::Deleted].into_iter().collect()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(sel.expunge(None).await.unwrap().len(), 2);
    assert_eq!(count(&s, &target).await, 18);
    let used = s
        .events
        .0
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match &e.kind {
            ArchiveEventKind::OverrideUsed {
                reason,
                removed_bytes,
                ..
            } => Some((reason.clone(), *removed_bytes)),
            _ => None,
        });
    let (reason, bytes) = used.expect("override event");
    assert_eq!(reason, "retention 7y");
    assert!(bytes > 0);
    // revoked: refused again; the other folder never had one
    s.journal.set_override(&root, &target, None).await.unwrap();
    let sel = boss_access.select(&in_name, false).await.unwrap();
    assert!(sel.read_only());
    // the duplicate out0 was reported again under the same id: 27 distinct
    let archived: std::collections::HashSet<String> = s
        .events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e.kind, ArchiveEventKind::MessageArchived { .. }))
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(archived.len(), 27);
}

#[tokio::test]
async fn others_appends_into_an_archived_users_mailbox_are_archived() {
    let s = setup();
    s.journal
        .set_enabled(&admin_of("boss@x.org", false), ALICE, true)
        .await
        .unwrap();
    s.storage.ensure_account(ALICE).await.unwrap();
    let inbox = MailboxRef::new(ALICE, MailboxName::inbox());
    s.storage
        .set_acl(&inbox, "bob@x.org", Rights::parse("lri"))
        .await
        .unwrap();
    let bob = MailAccess::new(s.storage.clone(), None, Principal::user("bob@x.org"));
    bob.append(
        "Other Users/alice@x.org/INBOX",
        NewMessage {
            flags: Default::default(),
            internal_date: None,
            content: message("from-bob"),
        },
    )
    .await
    .unwrap();
    assert_eq!(count(&s, &folder(ALICE, Direction::In)).await, 1);
    // COPY by bob into alice's INBOX is archived too; alice's own COPY
    // from INBOX to Sent is archived as sent
    s.storage.ensure_account("bob@x.org").await.unwrap();
    bob.append(
        "INBOX",
        NewMessage {
            flags: Default::default(),
            internal_date: None,
            content: message("bobs-own"),
        },
    )
    .await
    .unwrap();
    let bob_inbox = bob.select("INBOX", false).await.unwrap();
    let uid = bob_inbox.mailbox().snapshot().await.unwrap().messages[0].uid;
    bob_inbox
        .copy_to(&[uid], "Other Users/alice@x.org/INBOX")
        .await
        .unwrap();
    assert_eq!(count(&s, &folder(ALICE, Direction::In)).await, 2);
    let alice = MailAccess::new(s.storage.clone(), None, Principal::user(ALICE));
    let inbox = alice.select("INBOX", false).await.unwrap();
    let first = inbox.mailbox().snapshot().await.unwrap().messages[0].uid;
    inbox.copy_to(&[first], "Sent").await.unwrap();
    assert_eq!(count(&s, &folder(ALICE, Direction::Out)).await, 1);
    // a COPY within alice's own mailboxes (not to Sent) is not archived
    inbox.copy_to(&[first], "Drafts").await.unwrap();
    assert_eq!(count(&s, &folder(ALICE, Direction::In)).await, 2);
    assert_eq!(count(&s, &folder(ALICE, Direction::Out)).await, 1);
}

#[tokio::test]
async fn over_quota_archives_nothing_and_a_raised_quota_archives_once() {
    let s = setup();
    s.journal
        .set_enabled(&admin_of("boss@x.org", false), ALICE, true)
        .await
        .unwrap();
    s.store
        .set_limits(
            ALICE,
            QuotaLimits {
                storage_bytes: Some(10),
                messages: None,
            },
        )
        .await
        .unwrap();
    let o = deliver(&s, ALICE, None, message("big")).await;
    assert!(
        matches!(o, DeliveryOutcome::TemporaryFailure(Error::OverQuota)),
        "{o:?}"
    );
    assert_eq!(count(&s, &folder(ALICE, Direction::In)).await, 0);
    // APPEND to Sent over quota: refused, nothing archived either
    let alice = MailAccess::new(
        s.storage.clone(),
        Some(s.store.clone()),
        Principal::user(ALICE),
    );
    let r = alice
        .append(
            "Sent",
            NewMessage {
                flags: Default::default(),
                internal_date: None,
                content: message("sent-big"),
            },
        )
        .await;
    assert!(matches!(r, Err(Error::OverQuota)), "{r:?}");
    assert_eq!(count(&s, &folder(ALICE, Direction::Out)).await, 0);
    s.store
        .set_limits(ALICE, QuotaLimits::default())
        .await
        .unwrap();
    let o = deliver(&s, ALICE, None, message("big")).await;
    assert!(matches!(o, DeliveryOutcome::Delivered { .. }), "{o:?}");
    assert_eq!(count(&s, &folder(ALICE, Direction::In)).await, 1);
    assert_eq!(
        count(&s, &MailboxRef::new(ALICE, MailboxName::inbox())).await,
        1
    );
}

#[tokio::test]
async fn archive_write_failure_is_temporary_and_the_retry_loses_nothing() {
    let s = setup();
    s.journal
        .set_enabled(&admin_of("boss@x.org", false), ALICE, true)
        .await
        .unwrap();
    s.faulty.set_failing(true);
    let o = deliver(&s, ALICE, None, message("m1")).await;
    assert!(matches!(o, DeliveryOutcome::TemporaryFailure(_)), "{o:?}");
    let inbox = MailboxRef::new(ALICE, MailboxName::inbox());
    assert_eq!(count(&s, &inbox).await, 0);
    s.faulty.set_failing(false);
    let o = deliver(&s, ALICE, None, message("m1")).await;
    assert!(matches!(o, DeliveryOutcome::Delivered { .. }), "{o:?}");
    assert_eq!(count(&s, &inbox).await, 1);
    assert_eq!(count(&s, &folder(ALICE, Direction::In)).await, 1);
}

#[tokio::test]
async fn the_archive_account_takes_no_mail_and_journal_without_archiving_is_dropped() {
    let s = setup();
    let o = deliver(&s, "archive@x.org", None, message("x")).await;
    assert!(matches!(o, DeliveryOutcome::PermanentFailure(_)), "{o:?}");
    let o = deliver(&s, "journal@x.org", Some("carol"), message("y")).await;
    assert!(matches!(o, DeliveryOutcome::Delivered { .. }), "{o:?}");
    assert_eq!(count(&s, &folder("carol@x.org", Direction::Out)).await, 0);
}

#[derive(Debug)]
struct Refusing;

#[async_trait]
impl ArchiveEventSink for Refusing {
    async fn record(&self, _: &ArchiveEvent) -> Result<()> {
        Err(Error::Busy("ledger unavailable".into()))
    }
}

#[tokio::test]
async fn an_unrecorded_enable_changes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let journal = ArchiveJournal::new(store.clone()).with_events(Arc::new(Refusing));
    let r = journal
        .set_enabled(&admin_of("boss@x.org", false), ALICE, true)
        .await;
    assert!(matches!(r, Err(Error::Busy(_))), "{r:?}");
    assert!(!journal.is_enabled(ALICE).await.unwrap());
}
