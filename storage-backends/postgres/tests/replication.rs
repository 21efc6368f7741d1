//! What `Replication` on the PostgreSQL store does beyond the replication
//! conformance suite: a database upgraded from schema version 4 with mail
//! in it gets its state CRCs and counts; change positions are exact when
//! other databases of the cluster have transactions open, and never skip a
//! transaction of this database that commits late; every write moves the
//! account's position and wakes the change watch; a replica's write below
//! a view's HIGHESTMODSEQ reaches that view on another frontend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use mailroom_core::replication::{
    ApplyBatch, ChangePosition, NamespaceOp, ReplicaMessage, ReplicaRecord, StateCrc,
};
use mailroom_core::{
    Flag, Flags, InternalDate, MailboxName, MailboxRef, MessageGuid, ModSeq, NewMessage, Quota,
    QuotaLimits, Replication, Rights, SpecialUse, Storage, StoreOp, Uid, UidValidity,
};
use mailroom_store_postgres::{PgOptions, PgStore, schema};
use mailroom_testkit::postgres::PgCluster;
use tokio_postgres::NoTls;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

async fn database(prefix: &'static str) -> String {
    tokio::task::spawn_blocking(move || PgCluster::shared().create_database(prefix))
        .await
        .unwrap()
}

async fn store(url: &str) -> PgStore {
    PgStore::connect(&PgOptions {
        url: url.to_owned(),
        pool_size: 4,
        migrate: true,
        view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
    })
    .await
    .unwrap()
}

/// A plain connection (and its driver) to `url`.
async fn connect(url: &str) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    (client, driver)
}

fn inbox() -> MailboxRef {
    MailboxRef::new(ALICE, MailboxName::inbox())
}

fn message(i: u32) -> NewMessage {
    NewMessage {
        flags: Flags::default(),
        internal_date: None,
        content: Bytes::from(format!("Subject: {i}\r\n\r\nbody {i}\r\n")),
    }
}

async fn uid_validity(s: &PgStore, mailbox: &MailboxRef) -> UidValidity {
    s.status(mailbox, &mailbox.owner)
        .await
        .unwrap()
        .uid_validity
}

/// A database as a schema-4 build left it, with three messages (flags,
/// keywords, another user's `\Seen`), upgraded by connecting: each row's
/// CRC and the mailbox's CRC and count are computed, equal to what the
/// records give, and kept from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_4_database_with_mail_gets_its_state_crcs() {
    let url = database("upgrade").await;
    let (mut client, driver) = connect(&url).await;
    schema::migrate_to(&mut client, 4).await.unwrap();
    assert_eq!(schema::version(&client).await.unwrap(), 4);
    client
        .batch_execute(
            "INSERT INTO accounts (id, name, initialised) VALUES (1, 'alice@example.com', true);
             INSERT INTO mailboxes (id, account_id, name, uid_validity, uid_next, highest_modseq)
                 VALUES (1, 1, 'INBOX', 77, 4, 9);
             INSERT INTO seen (mailbox_id, viewer, uid) VALUES (1, 'bob@example.com', 2);",
        )
        .await
        .unwrap();
    for (uid, modseq, bits, keywords) in [
        (1i64, 3i64, 0i16, vec![]),
        (2, 7, 1 | 4, vec!["$Junk"]),
        (3, 9, 8, vec!["a", "b"]),
    ] {
        let content = format!("Subject: {uid}\r\n\r\nold {uid}\r\n");
        let guid = MessageGuid::of(content.as_bytes()).0.to_vec();
        let size = content.len() as i64;
        client
            .execute(
                "INSERT INTO bodies (account_id, guid, size, summary, content) \
                 VALUES (1, $1, $2, '\\x00', $3)",
                &[&guid, &size, &content.as_bytes()],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, \
                 date_offset, size, account_id, guid) VALUES (1, $1, $2, $3, $4, $5, 60, $6, 1, $7)",
                &[
                    &uid,
                    &modseq,
                    &bits,
                    &keywords,
                    &(1_700_000_000 + uid),
                    &size,
                    &guid,
                ],
            )
            .await
            .unwrap();
    }
    drop(client);
    let _ = driver.await;

    let s = store(&url).await;
    let (client, driver) = connect(&url).await;
    assert_eq!(
        schema::version(&client).await.unwrap(),
        schema::SCHEMA_VERSION
    );
    let row = client
        .query_one(
            "SELECT state_crc IS NULL, messages FROM mailboxes WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "unknown until first needed");
    assert_eq!(row.get::<_, i64>(1), 3, "the migration counted the rows");

    let uv = UidValidity(77);
    let records = s
        .records(&inbox(), uv, &[Uid(1), Uid(2), Uid(3)])
        .await
        .unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[1].seen_by, vec![BOB.to_owned()]);
    let state = s.account_state(ALICE).await.unwrap().unwrap();
    let head = state.mailboxes[0].head;
    assert_eq!(head.state_crc, StateCrc::of(&records));
    assert_eq!(head.messages, 3);
    assert_eq!(head.highest_modseq, ModSeq(9));
    let (_, digests) = s.record_digests(&inbox(), uv).await.unwrap();
    let from_digests = digests.iter().fold(StateCrc::default(), |mut c, (_, d)| {
        c.toggle(*d);
        c
    });
    assert_eq!(from_digests, head.state_crc);
    assert_eq!(
        client
            .query_one("SELECT count(*) FROM messages WHERE state_crc IS NULL", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        0
    );

    // kept incrementally from then on
    let m = s.open(&inbox(), ALICE).await.unwrap();
    m.store(
        &[Uid(1)],
        &StoreOp::Add([Flag::Flagged].into_iter().collect()),
        None,
    )
    .await
    .unwrap();
    s.append(&inbox(), message(4)).await.unwrap();
    let records = s
        .records(&inbox(), uv, &[Uid(1), Uid(2), Uid(3), Uid(4)])
        .await
        .unwrap();
    let head = s.account_state(ALICE).await.unwrap().unwrap().mailboxes[0].head;
    assert_eq!(head.state_crc, StateCrc::of(&records));
    assert_eq!(head.messages, 4);
    drop(client);
    let _ = driver.await;
}

/// A transaction left open in another database of the cluster does not
/// hold the position back (an account is not reported twice), and one of
/// this database that commits after a later one is not skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_positions_are_exact_and_skip_no_late_commit() {
    let url = database("positions").await;
    let other = database("elsewhere").await;
    let (elsewhere, elsewhere_driver) = connect(&other).await;
    elsewhere
        .batch_execute("BEGIN; CREATE TABLE t (x int); INSERT INTO t VALUES (1);")
        .await
        .unwrap();

    let s = store(&url).await;
    s.ensure_account(ALICE).await.unwrap();
    s.ensure_account(BOB).await.unwrap();
    let all = s.changed_accounts(ChangePosition(0)).await.unwrap();
    assert_eq!(all.users, vec![ALICE.to_owned(), BOB.to_owned()]);
    let quiet = s.changed_accounts(all.position).await.unwrap();
    assert!(
        quiet.users.is_empty(),
        "another database's open transaction held the position back: {:?}",
        quiet.users
    );

    // A frontend's write to bob, begun now and committed last.
    let (late, late_driver) = connect(&url).await;
    late.batch_execute(
        "BEGIN; UPDATE accounts SET changed_xid = pg_current_xact_id()::text::bigint \
         WHERE name = 'bob@example.com';",
    )
    .await
    .unwrap();
    s.append(&inbox(), message(1)).await.unwrap();
    let first = s.changed_accounts(all.position).await.unwrap();
    assert_eq!(first.users, vec![ALICE.to_owned()]);
    late.batch_execute("COMMIT").await.unwrap();
    let second = s.changed_accounts(first.position).await.unwrap();
    assert!(
        second.users.contains(&BOB.to_owned()),
        "the late commit was skipped: {:?}",
        second.users
    );
    let third = s.changed_accounts(second.position).await.unwrap();
    assert!(third.users.is_empty(), "{:?}", third.users);

    elsewhere.batch_execute("ROLLBACK").await.unwrap();
    drop((elsewhere, late));
    let _ = (elsewhere_driver.await, late_driver.await);
}

/// Every kind of write names its account, and only it, in
/// `changed_accounts`, and wakes the change watch of another frontend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_moves_its_accounts_position() {
    let url = database("writes").await;
    let s = store(&url).await;
    let other = store(&url).await;
    s.ensure_account(ALICE).await.unwrap();
    s.ensure_account(BOB).await.unwrap();
    let mut position = s
        .changed_accounts(ChangePosition(0))
        .await
        .unwrap()
        .position;
    let mut watch = other.watch_changes();
    let name = |n: &str| MailboxName::new(n).unwrap();
    let a = MailboxRef::new(ALICE, name("A"));
    let b = MailboxRef::new(ALICE, name("B"));
    s.append(&inbox(), message(1)).await.unwrap();
    s.append(&inbox(), message(2)).await.unwrap();
    let mut steps = 0;
    for step in [
        "create",
        "rename",
        "special use",
        "subscribe",
        "acl",
        "quota",
        "append",
        "store",
        "copy",
        "move",
        "expunge",
        "delete",
    ] {
        let m = s.open(&inbox(), ALICE).await.unwrap();
        match step {
            "create" => s.create(&a, None).await.unwrap(),
            "rename" => s.rename(&a, &b.name).await.unwrap(),
            "special use" => s
                .set_special_use(&b, Some(SpecialUse::Archive))
                .await
                .unwrap(),
            "subscribe" => s.set_subscribed(ALICE, &b.name, true).await.unwrap(),
            "acl" => s.set_acl(&b, BOB, Rights::parse("lr")).await.unwrap(),
            "quota" => s
                .set_limits(
                    ALICE,
                    QuotaLimits {
                        storage_bytes: Some(1 << 30),
                        messages: None,
                    },
                )
                .await
                .unwrap(),
            "append" => {
                s.append(&inbox(), message(3)).await.unwrap();
            }
            "store" => {
                m.store(
                    &[Uid(1)],
                    &StoreOp::Add([Flag::Deleted].into_iter().collect()),
                    None,
                )
                .await
                .unwrap();
            }
            "copy" => {
                m.copy_to(&[Uid(2)], &b).await.unwrap();
            }
            "move" => {
                m.move_to(&[Uid(3)], &b).await.unwrap();
            }
            "expunge" => {
                assert_eq!(m.expunge(None).await.unwrap(), vec![Uid(1)]);
            }
            "delete" => s.delete(&b).await.unwrap(),
            _ => unreachable!(),
        }
        let changed = s.changed_accounts(position).await.unwrap();
        assert_eq!(changed.users, vec![ALICE.to_owned()], "after {step}");
        assert!(changed.position > position, "after {step}");
        // The watch moves past the write's transaction, so past the
        // position asked from before it (the next position may be further
        // on: transactions that change no account also take ids).
        let before = position;
        position = changed.position;
        tokio::time::timeout(Duration::from_secs(10), async {
            while watch.current() <= before {
                watch.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the other frontend's change watch did not move after {step}"));
        steps += 1;
    }
    assert_eq!(steps, 12);
}

fn record(uid: u32, modseq: u64, flags: Flags, content: &[u8]) -> ReplicaRecord {
    ReplicaRecord {
        uid: Uid(uid),
        modseq: ModSeq(modseq),
        flags,
        internal_date: InternalDate {
            timestamp: 1_700_000_000,
            offset_minutes: 0,
        },
        size: content.len() as u64,
        guid: MessageGuid::of(content),
        seen_by: vec![],
        save_date: Some(1_700_000_100),
    }
}

/// Frontends on a replica's database keep views that read only what is
/// above their HIGHESTMODSEQ; a batch that writes below it (a page after
/// one that raised it, a merge) must still reach them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_write_below_a_views_highest_modseq_reaches_the_view() {
    let url = database("replicaview").await;
    let writer = store(&url).await;
    let reader = store(&url).await;
    writer
        .apply_namespace(
            ALICE,
            NamespaceOp::Create {
                name: MailboxName::inbox(),
                uid_validity: UidValidity(5),
                special_use: None,
                mailbox_id: None,
            },
        )
        .await
        .unwrap();
    let uv = uid_validity(&writer, &inbox()).await;
    assert_eq!(uv, UidValidity(5));
    let bodies: Vec<Bytes> = (1..=3)
        .map(|i| Bytes::from(format!("Subject: {i}\r\n\r\nx\r\n")))
        .collect();
    let first = ApplyBatch {
        messages: bodies
            .iter()
            .enumerate()
            .map(|(i, c)| ReplicaMessage {
                record: record(i as u32 + 1, 10 * (i as u64 + 1), Flags::default(), c),
                content: Some(c.clone()),
            })
            .collect(),
        expunged: vec![],
        uid_next: Some(Uid(4)),
        highest_modseq: Some(ModSeq(30)),
    };
    writer.apply_messages(&inbox(), uv, first).await.unwrap();
    let view = reader.open(&inbox(), ALICE).await.unwrap();
    assert_eq!(view.snapshot().await.unwrap().messages.len(), 3);

    // UID 1 flagged at modseq 15 and UID 2 expunged at 12, both below the
    // view's 30, with no HIGHESTMODSEQ from the primary (a page before
    // the last)
    let flagged: Flags = [Flag::Flagged].into_iter().collect();
    let applied = writer
        .apply_messages(
            &inbox(),
            uv,
            ApplyBatch {
                messages: vec![ReplicaMessage {
                    record: record(1, 15, flagged.clone(), &bodies[0]),
                    content: None,
                }],
                expunged: vec![(Uid(2), ModSeq(12))],
                uid_next: None,
                highest_modseq: None,
            },
        )
        .await
        .unwrap();
    assert!(applied.missing.is_empty());
    assert_eq!(applied.head.highest_modseq, ModSeq(30));
    let snap = view.snapshot().await.unwrap();
    let got: Vec<(u32, bool)> = snap
        .messages
        .iter()
        .map(|m| (m.uid.0, m.flags.contains(&Flag::Flagged)))
        .collect();
    assert_eq!(
        got,
        vec![(1, true), (3, false)],
        "the view missed the write"
    );
}
