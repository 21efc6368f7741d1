//! What the PostgreSQL store does beyond the conformance suite: bodies
//! checked against their GUID, large bodies in chunks, the change feed
//! across two stores (two frontends) on one database, and the listener's
//! recheck after it loses its connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mailroom_core::{Error, Flags, MailboxName, MailboxRef, NewMessage, Storage, Uid};
use mailroom_store_postgres::{CHUNK, PgOptions, PgStore};
use mailroom_testkit::postgres::PgCluster;

const ALICE: &str = "alice@example.com";

async fn database() -> String {
    tokio::task::spawn_blocking(|| PgCluster::shared().create_database("pgstore"))
        .await
        .unwrap()
}

async fn store(url: &str) -> PgStore {
    store_of(url, 4).await
}

/// A store with a pool of `pool_size` connections (1: every command runs
/// on one connection, warm after the first).
async fn store_of(url: &str, pool_size: usize) -> PgStore {
    PgStore::connect(&PgOptions {
        url: url.to_owned(),
        pool_size,
        migrate: true,
        view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
    })
    .await
    .unwrap()
}

async fn sql(url: &str, statement: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    client.batch_execute(statement).await.unwrap();
    drop(client);
    let _ = driver.await;
}

/// The maintenance database of `url`'s cluster, and `url`'s database name.
fn admin_and_name(url: &str) -> (String, String) {
    let (base, name) = url.rsplit_once('/').unwrap();
    (format!("{base}/postgres"), name.to_owned())
}

/// Cuts every store's listener off the database of `url`: new connections
/// are refused and the listening ones are ended, so a notification sent
/// now reaches no frontend; connections the stores' pools already hold
/// keep working. Until [`let_listeners_back`]. Waits until the listening
/// backends have ended (`pg_terminate_backend` without a timeout only
/// signals them).
async fn cut_listener(url: &str) {
    let (admin, dbname) = admin_and_name(url);
    sql(
        &admin,
        &format!("ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS false"),
    )
    .await;
    sql(
        &admin,
        &format!(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity \
             WHERE datname = '{dbname}' AND query LIKE 'LISTEN%'"
        ),
    )
    .await;
}

/// Lets the listeners cut by [`cut_listener`] connect again.
async fn let_listeners_back(url: &str) {
    let (admin, dbname) = admin_and_name(url);
    sql(
        &admin,
        &format!("ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS true"),
    )
    .await;
}

fn message(content: Vec<u8>) -> NewMessage {
    NewMessage {
        flags: Flags::default(),
        internal_date: None,
        content: Bytes::from(content),
    }
}

fn inbox() -> MailboxRef {
    MailboxRef::new(ALICE, MailboxName::inbox())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_no_longer_matches_its_guid_is_never_served() {
    let url = database().await;
    let s = store(&url).await;
    s.ensure_account(ALICE).await.unwrap();
    let a = s
        .append(
            &inbox(),
            message(b"Subject: x\r\n\r\nthe original\r\n".to_vec()),
        )
        .await
        .unwrap();
    let mb = s.open(&inbox(), ALICE).await.unwrap();
    assert!(mb.content(a.uid).await.is_ok());
    // one byte changed behind the store's back (same length)
    sql(
        &url,
        "UPDATE bodies SET content = overlay(content placing 'X' from 20 for 1)",
    )
    .await;
    match mb.content(a.uid).await {
        Err(Error::Corruption(_)) => {}
        other => panic!("a damaged body must fail with Corruption, got {other:?}"),
    }
    // the summary (ENVELOPE, BODYSTRUCTURE) does not need the body
    assert_eq!(mb.summaries(&[a.uid]).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_chunked_and_read_back_whole() {
    let url = database().await;
    let s = store(&url).await;
    s.ensure_account(ALICE).await.unwrap();
    let mut content = b"Subject: big\r\n\r\n".to_vec();
    while content.len() < 2 * CHUNK + 1000 {
        content.extend_from_slice(
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n",
        );
    }
    let a = s.append(&inbox(), message(content.clone())).await.unwrap();
    let mb = s.open(&inbox(), ALICE).await.unwrap();
    assert_eq!(&mb.content(a.uid).await.unwrap()[..], &content[..]);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let chunks: i64 = client
        .query_one("SELECT count(*) FROM body_chunks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(chunks, 3, "a body of 2 chunks and a bit takes 3 rows");
    // stored once per account: a copy adds no body
    let sent = MailboxRef::new(ALICE, MailboxName::new("Sent").unwrap());
    mb.copy_to(&[a.uid], &sent).await.unwrap();
    let bodies: i64 = client
        .query_one("SELECT count(*) FROM bodies", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(bodies, 1);
    // and freed with its last message
    mb.store(
        &[a.uid],
        &mailroom_core::StoreOp::Add([mailroom_core::Flag::Deleted].into_iter().collect()),
        None,
    )
    .await
    .unwrap();
    mb.expunge(None).await.unwrap();
    s.delete(&sent).await.unwrap();
    let left: (i64, i64) = {
        let r = client
            .query_one(
                "SELECT (SELECT count(*) FROM bodies), (SELECT count(*) FROM body_chunks)",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(left, (0, 0), "no body left once no message uses it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_frontend_wakes_watches_on_another() {
    let url = database().await;
    let one = store(&url).await;
    let two = store(&url).await;
    one.ensure_account(ALICE).await.unwrap();
    let mb = one.open(&inbox(), ALICE).await.unwrap();
    let mut w = mb.watch();
    let before = w.current();
    let appended = two
        .append(&inbox(), message(b"Subject: via two\r\n\r\nx\r\n".to_vec()))
        .await
        .unwrap();
    let start = Instant::now();
    let v = tokio::time::timeout(Duration::from_secs(10), w.changed())
        .await
        .expect("frontend one woken");
    let took = start.elapsed();
    assert_eq!(v, Some(appended.modseq));
    assert!(v > Some(before));
    // well within the 1 s promise even on a loaded machine
    assert!(took < Duration::from_secs(5), "woken after {took:?}");
    let changes = mb.changes_since(before).await.unwrap();
    assert_eq!(changes.changed.len(), 1);
    assert_eq!(changes.changed[0].uid, Uid(1));
    // a delete on one frontend ends the other's watches
    let tmp = MailboxRef::new(ALICE, MailboxName::new("Tmp").unwrap());
    two.create(&tmp, None).await.unwrap();
    let t = one.open(&tmp, ALICE).await.unwrap();
    let mut tw = t.watch();
    two.delete(&tmp).await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), tw.changed())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_rechecks_after_reconnecting() {
    let url = database().await;
    let one = store(&url).await;
    let two = store(&url).await;
    one.ensure_account(ALICE).await.unwrap();
    let mb = one.open(&inbox(), ALICE).await.unwrap();
    let mut w = mb.watch();
    let before = w.current();
    // New connections to the database are refused, every listener is cut,
    // and a message is appended through a connection frontend two already
    // has: its notification reaches nobody. Only the recheck after the
    // listener gets back in can wake frontend one.
    cut_listener(&url).await;
    let appended = two
        .append(&inbox(), message(b"Subject: lost\r\n\r\nx\r\n".to_vec()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.current(), before, "no wake-up while the listener is out");
    let_listeners_back(&url).await;
    let v = tokio::time::timeout(Duration::from_secs(10), w.changed())
        .await
        .expect("woken by the recheck");
    assert_eq!(v, Some(appended.modseq));
}

/// A client's poll (NOOP, CHECK) must report a change another frontend
/// acknowledged before it, even while that frontend's NOTIFY has not
/// arrived (the stress checker saw a NOOP miss an APPEND acknowledged
/// through another frontend). With the listener cut, only
/// `Mailbox::poll_changes` can move the watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_sees_another_frontends_change_before_its_notification() {
    let url = database().await;
    let one = store(&url).await;
    let two = store(&url).await;
    one.ensure_account(ALICE).await.unwrap();
    let mb = one.open(&inbox(), ALICE).await.unwrap();
    let w = mb.watch();
    let before = w.current();
    cut_listener(&url).await;
    let appended = two
        .append(&inbox(), message(b"Subject: polled\r\n\r\nx\r\n".to_vec()))
        .await
        .unwrap();
    assert_eq!(w.current(), before, "no notification can have come");
    mb.poll_changes().await.unwrap();
    assert_eq!(w.current(), appended.modseq, "the poll read the database");
    let changes = mb.changes_since(before).await.unwrap();
    assert_eq!(changes.changed.len(), 1);
    let_listeners_back(&url).await;
}

async fn woken(w: &mut mailroom_core::NamespaceWatch) {
    tokio::time::timeout(Duration::from_secs(10), w.changed())
        .await
        .expect("frontend one woken");
}

/// A CREATE, RENAME, SUBSCRIBE or DELETE through one frontend wakes the
/// user's namespace watches on another (NOTIFY's MailboxName and
/// SubscriptionChange), and a listener that was cut wakes them all when it
/// is back (what changed meanwhile is not known).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_change_on_one_frontend_wakes_namespace_watches_on_another() {
    let url = database().await;
    let one = store(&url).await;
    let two = store(&url).await;
    let mut w = one.watch_namespace(ALICE);
    let mut bob = one.watch_namespace("bob@example.com");
    // The account is made through frontend two, so one hears of it once,
    // by notification. (Made through one, its watch was woken at once and
    // again when one's own notification came back, maybe after the next
    // wait below had returned: each wait was then one change behind, and
    // the last change could wake the watch while the listener was cut.)
    two.ensure_account(ALICE).await.unwrap();
    woken(&mut w).await;
    let tmp = MailboxRef::new(ALICE, MailboxName::new("Tmp").unwrap());
    two.create(&tmp, None).await.unwrap();
    woken(&mut w).await;
    two.rename(&tmp, &MailboxName::new("Tmp2").unwrap())
        .await
        .unwrap();
    woken(&mut w).await;
    two.set_subscribed(ALICE, &MailboxName::new("Tmp2").unwrap(), true)
        .await
        .unwrap();
    woken(&mut w).await;
    two.delete(&MailboxRef::new(ALICE, MailboxName::new("Tmp2").unwrap()))
        .await
        .unwrap();
    woken(&mut w).await;
    assert!(!bob.has_changed(), "another user's watch stays quiet");

    cut_listener(&url).await;
    two.create(&tmp, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!w.has_changed(), "no wake-up while the listener is out");
    let_listeners_back(&url).await;
    woken(&mut w).await;
    tokio::time::timeout(Duration::from_secs(10), bob.changed())
        .await
        .expect("every namespace watch woken after a reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maildrop_lock_holds_across_frontends() {
    let url = database().await;
    let one = store(&url).await;
    let two = store(&url).await;
    let held = one.lock_maildrop(ALICE).await.unwrap();
    assert!(matches!(
        two.lock_maildrop(ALICE).await,
        Err(Error::Busy(_))
    ));
    drop(held);
    // the unlock runs on the lock connection right after the drop
    let start = Instant::now();
    loop {
        match two.lock_maildrop(ALICE).await {
            Ok(_) => break,
            Err(Error::Busy(_)) if start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("lock after release: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_migrated_by_a_newer_build_is_refused() {
    let url = database().await;
    drop(store(&url).await);
    sql(&url, "UPDATE mailroom_schema SET version = version + 1").await;
    let r = PgStore::connect(&PgOptions {
        url: url.clone(),
        pool_size: 1,
        migrate: true,
        view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
    })
    .await;
    assert!(r.is_err(), "a newer schema must be refused");
    let r = PgStore::connect(&PgOptions {
        url,
        pool_size: 1,
        migrate: false,
        view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
    })
    .await;
    assert!(r.is_err(), "and without migrate too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_is_unavailable_and_the_store_recovers_by_itself() {
    let cluster = Arc::new(tokio::task::spawn_blocking(PgCluster::start).await.unwrap());
    let c = cluster.clone();
    let url = tokio::task::spawn_blocking(move || c.create_database("down"))
        .await
        .unwrap();
    let s = store(&url).await;
    s.ensure_account(ALICE).await.unwrap();
    let a = s
        .append(&inbox(), message(b"Subject: before\r\n\r\nx\r\n".to_vec()))
        .await
        .unwrap();
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop()).await.unwrap();
    match s
        .append(&inbox(), message(b"Subject: during\r\n\r\nx\r\n".to_vec()))
        .await
    {
        Err(Error::Unavailable(_)) => {}
        other => panic!("an append while the database is down: {other:?}"),
    }
    match s.status(&inbox(), ALICE).await {
        Err(Error::Unavailable(_)) => {}
        other => panic!("a STATUS while the database is down: {other:?}"),
    }
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.restart())
        .await
        .unwrap();
    // the pool replaces its dead connections on its own
    let start = Instant::now();
    let st = loop {
        match s.status(&inbox(), ALICE).await {
            Ok(st) => break st,
            Err(Error::Unavailable(_)) if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("after the restart: {e}"),
        }
    };
    assert_eq!(
        st.messages, 1,
        "what was acknowledged is there, nothing else"
    );
    let b = s
        .append(&inbox(), message(b"Subject: after\r\n\r\nx\r\n".to_vec()))
        .await
        .unwrap();
    assert_eq!(b.uid.0, a.uid.0 + 1, "no UID lost or taken twice");
    drop(s);
    let c = Arc::try_unwrap(cluster).unwrap();
    tokio::task::spawn_blocking(move || drop(c)).await.unwrap();
}

/// The users table: rows added through one pool are seen by another at
/// once (two frontends), names found with the domain in any case, roles
/// checked, password changes and removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_table_is_shared_by_every_frontend() {
    use mailroom_store_postgres::{PgUsers, UserRow};
    let url = database().await;
    let one = store(&url).await.users();
    let two = PgUsers::connect(&PgOptions {
        url: url.clone(),
        pool_size: 2,
        migrate: false,
        view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
    })
    .await
    .unwrap();
    assert_eq!(two.count().await.unwrap(), 0);
    let stored = mailroom_core::password::hash_password("pw one").unwrap();
    let row = UserRow {
        name: "Alice@example.com".into(),
        password: stored.phc.clone(),
        scram: stored.scram.clone(),
        roles: vec!["server-admin".into(), "domain-admin".into()],
    };
    assert!(one.add(&row).await.unwrap());
    assert!(
        !two.add(&row).await.unwrap(),
        "a second add changes nothing"
    );
    let got = two.get("Alice@EXAMPLE.com").await.unwrap().unwrap();
    assert_eq!(got.name, "Alice@example.com");
    assert_eq!(got.password, stored.phc);
    assert_eq!(got.roles, vec!["domain-admin", "server-admin"]);
    assert!(
        two.get("alice@example.com").await.unwrap().is_none(),
        "the local part keeps its case"
    );
    assert!(two.get("nobody").await.unwrap().is_none());

    let bad_role = UserRow {
        name: "bob@example.com".into(),
        roles: vec!["god".into()],
        ..row.clone()
    };
    assert!(one.add(&bad_role).await.is_err());
    let upper_domain = UserRow {
        name: "bob@EXAMPLE.com".into(),
        roles: vec![],
        ..row.clone()
    };
    assert!(one.add(&upper_domain).await.is_err());
    let bob = UserRow {
        name: "bob@example.com".into(),
        roles: vec![],
        ..row.clone()
    };
    assert!(one.add(&bob).await.unwrap());
    let names: Vec<String> = two
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, vec!["Alice@example.com", "bob@example.com"]);

    let new = mailroom_core::password::hash_password("pw two").unwrap();
    assert!(
        one.set_password("bob@example.com", &new.phc, new.scram.as_deref())
            .await
            .unwrap()
    );
    assert_eq!(
        two.get("bob@example.com").await.unwrap().unwrap().password,
        new.phc
    );
    assert!(
        !one.set_password("carol@example.com", &new.phc, None)
            .await
            .unwrap()
    );
    assert!(two.remove("bob@example.com").await.unwrap());
    assert!(!two.remove("bob@example.com").await.unwrap());
    assert!(one.get("bob@example.com").await.unwrap().is_none());
    assert_eq!(one.count().await.unwrap(), 1);
}

/// A message row from before SAVEDATE was kept (schema version 1) has none;
/// rows written since have the database's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_date_is_null_for_rows_from_before() {
    let url = database().await;
    let s = store(&url).await;
    s.ensure_account(ALICE).await.unwrap();
    s.append(&inbox(), message(b"Subject: a\r\n\r\nold\r\n".to_vec()))
        .await
        .unwrap();
    sql(&url, "UPDATE messages SET save_date = NULL").await;
    s.append(&inbox(), message(b"Subject: b\r\n\r\nnew\r\n".to_vec()))
        .await
        .unwrap();
    let m = s.open(&inbox(), ALICE).await.unwrap();
    let snap = m.snapshot().await.unwrap();
    assert_eq!(snap.messages[0].save_date, None);
    let now = mailroom_core::InternalDate::now().timestamp;
    let saved = snap.messages[1].save_date.unwrap();
    assert!((now - 300..=now + 300).contains(&saved), "{saved} vs {now}");
}

/// What a store with no view of the mailbox reads for `viewer`: the
/// snapshot's head and records, and `fetch_meta` of every UID.
async fn fresh_reading(
    url: &str,
    mailbox: &MailboxRef,
    viewer: &str,
) -> (
    mailroom_core::MailboxSnapshot,
    Vec<mailroom_core::MessageMeta>,
) {
    let s = store(url).await;
    let m = s.open(mailbox, viewer).await.unwrap();
    let snap = m.snapshot().await.unwrap();
    let uids: Vec<Uid> = snap.messages.iter().map(|m| m.uid).collect();
    let metas = m.fetch_meta(&uids).await.unwrap();
    (snap, metas)
}

/// A frontend keeps the records of the mailboxes it served and reads only
/// what changed since (view.rs): after every kind of change made through
/// another frontend (APPEND, STORE of flags and keywords, another user's
/// `\Seen`, EXPUNGE, MOVE out, RENAME of INBOX, DELETE), its snapshot and
/// `fetch_meta`, for the owner and for another user, are exactly what a
/// frontend reading the database afresh sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_follow_every_change_made_through_another_frontend() {
    use mailroom_core::{Flag, Rights, StoreOp};
    const BOB: &str = "bob@example.com";
    let url = database().await;
    let a = store(&url).await;
    let b = store(&url).await;
    b.ensure_account(ALICE).await.unwrap();
    b.ensure_account(BOB).await.unwrap();
    let ib = inbox();
    b.set_acl(&ib, BOB, Rights::parse("lrswited"))
        .await
        .unwrap();
    for i in 0..6 {
        b.append(
            &ib,
            message(format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes()),
        )
        .await
        .unwrap();
    }
    let seen = |who: &str| {
        let (a, who) = (a.clone(), who.to_owned());
        async move { a.open(&inbox(), &who).await.unwrap() }
    };
    let a_alice = seen(ALICE).await;
    let a_bob = seen(BOB).await;
    // both views loaded
    assert_eq!(a_alice.snapshot().await.unwrap().messages.len(), 6);
    assert_eq!(a_bob.snapshot().await.unwrap().messages.len(), 6);

    let check = |step: &'static str| {
        let (url, a_alice, a_bob) = (url.clone(), a_alice.clone(), a_bob.clone());
        async move {
            for (who, m) in [(ALICE, &a_alice), (BOB, &a_bob)] {
                let (want, want_metas) = fresh_reading(&url, &inbox(), who).await;
                let got = m.snapshot().await.unwrap();
                assert_eq!(
                    (got.uid_validity, got.uid_next, got.highest_modseq),
                    (want.uid_validity, want.uid_next, want.highest_modseq),
                    "{step}: head for {who}"
                );
                assert_eq!(got.messages, want.messages, "{step}: records for {who}");
                let uids: Vec<Uid> = want.messages.iter().map(|m| m.uid).collect();
                // in the order asked, UIDs not there left out
                let mut asked = uids.clone();
                asked.reverse();
                asked.push(Uid(9_999));
                let mut got_metas = m.fetch_meta(&asked).await.unwrap();
                got_metas.reverse();
                assert_eq!(got_metas, want_metas, "{step}: fetch_meta for {who}");
            }
        }
    };
    check("loaded").await;

    let b_alice = b.open(&ib, ALICE).await.unwrap();
    let b_bob = b.open(&ib, BOB).await.unwrap();
    let flags = |f: Vec<Flag>| -> Flags { f.into_iter().collect() };
    b_alice
        .store(
            &[Uid(2)],
            &StoreOp::Add(flags(vec![Flag::Flagged, Flag::Keyword("Work".into())])),
            None,
        )
        .await
        .unwrap();
    check("flags and a keyword").await;
    b_bob
        .store(&[Uid(3)], &StoreOp::Add(flags(vec![Flag::Seen])), None)
        .await
        .unwrap();
    b_alice
        .store(&[Uid(5)], &StoreOp::Add(flags(vec![Flag::Seen])), None)
        .await
        .unwrap();
    check("\\Seen of each user").await;
    b_alice
        .store(&[Uid(4)], &StoreOp::Add(flags(vec![Flag::Deleted])), None)
        .await
        .unwrap();
    b_alice.expunge(None).await.unwrap();
    check("expunge").await;
    b.append(&ib, message(b"Subject: 7\r\n\r\nseven\r\n".to_vec()))
        .await
        .unwrap();
    let other = MailboxRef::new(ALICE, MailboxName::new("Other").unwrap());
    b.create(&other, None).await.unwrap();
    b_alice.move_to(&[Uid(1)], &other).await.unwrap();
    check("append and move out").await;
    b.rename(&ib, &MailboxName::new("Old").unwrap())
        .await
        .unwrap();
    check("INBOX renamed away").await;
    assert!(a_alice.snapshot().await.unwrap().messages.is_empty());
    b.append(&ib, message(b"Subject: 8\r\n\r\neight\r\n".to_vec()))
        .await
        .unwrap();
    check("INBOX after the rename").await;
    // a mailbox deleted through b is gone on a, view and all
    let a_other = a.open(&other, ALICE).await.unwrap();
    assert_eq!(a_other.snapshot().await.unwrap().messages.len(), 1);
    b.delete(&other).await.unwrap();
    assert!(matches!(
        a_other.snapshot().await,
        Err(Error::NoSuchMailbox(_))
    ));
    assert!(a_other.fetch_meta(&[Uid(1)]).await.unwrap().is_empty());
}

/// SELECT of a mailbox with no new mail writes nothing: `claim_recent`
/// with nothing to claim leaves the mailbox row as it was (same `xmin`,
/// no new row version, so no commit to flush), and still claims a new
/// message exactly once when one comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claiming_recent_with_nothing_new_writes_nothing() {
    let url = database().await;
    let s = store(&url).await;
    s.ensure_account(ALICE).await.unwrap();
    s.append(&inbox(), message(b"Subject: 1\r\n\r\none\r\n".to_vec()))
        .await
        .unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let version = || async {
        client
            .query_one(
                "SELECT m.xmin::text FROM mailboxes m JOIN accounts a ON a.id = m.account_id \
                 WHERE a.name = $1 AND m.name = 'INBOX'",
                &[&ALICE],
            )
            .await
            .unwrap()
            .get::<_, String>(0)
    };
    let m = s.open(&inbox(), ALICE).await.unwrap();
    assert_eq!(m.claim_recent().await.unwrap(), Uid(1), "the first claim");
    let before = version().await;
    assert_eq!(m.claim_recent().await.unwrap(), Uid(2), "nothing new");
    assert_eq!(m.claim_recent().await.unwrap(), Uid(2), "nothing new");
    assert_eq!(version().await, before, "no write without news");
    s.append(&inbox(), message(b"Subject: 2\r\n\r\ntwo\r\n".to_vec()))
        .await
        .unwrap();
    assert_eq!(m.claim_recent().await.unwrap(), Uid(2), "the new one");
    assert_eq!(m.claim_recent().await.unwrap(), Uid(3), "claimed once");
    drop(client);
    let _ = driver.await;
}

/// A TCP proxy in front of `url`'s server that counts the statements its
/// clients run: the frontend protocol's Execute (`E`) and simple Query
/// (`Q`) messages, read from the client's side of each connection (after
/// the startup packet; NoTls sends no SSLRequest); and apart, the Parse
/// (`P`) messages, one per statement text prepared. Returns the URL
/// through the proxy and the two counts. Lives as long as the test's
/// runtime.
async fn counting_proxy(
    url: &str,
) -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (head, rest) = url.rsplit_once(':').unwrap();
    let (port, path) = rest.split_once('/').unwrap();
    let upstream = format!("127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxied = format!("{head}:{}/{path}", listener.local_addr().unwrap().port());
    let count = Arc::new(AtomicUsize::new(0));
    let parses = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let parsed = parses.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                continue;
            };
            let (mut from_client, mut to_server) = (client.into_split(), server.into_split());
            let (mut from_server, mut to_client) = (to_server.0, from_client.1);
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
            });
            let counted = counted.clone();
            let parsed = parsed.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 5];
                // the startup packet: a length (itself included), no type
                if from_client.0.read_exact(&mut buf[..4]).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                let mut body = vec![0u8; len.saturating_sub(4)];
                if from_client.0.read_exact(&mut body).await.is_err() {
                    return;
                }
                let _ = to_server.1.write_all(&buf[..4]).await;
                let _ = to_server.1.write_all(&body).await;
                loop {
                    if from_client.0.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    match buf[0] {
                        b'E' | b'Q' => counted.fetch_add(1, Ordering::SeqCst),
                        b'P' => parsed.fetch_add(1, Ordering::SeqCst),
                        _ => 0,
                    };
                    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                    let mut body = vec![0u8; len.saturating_sub(4)];
                    if from_client.0.read_exact(&mut body).await.is_err()
                        || to_server.1.write_all(&buf).await.is_err()
                        || to_server.1.write_all(&body).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (proxied, count, parses)
}

/// NOTIFY's poll (NOOP, CHECK) of the many mailboxes a session watches is
/// one statement on this store, `Storage::poll_changes`, where polling each
/// with `Mailbox::poll_changes` is one statement per mailbox (counted on
/// the wire); and it sees what another frontend changed before its
/// notification could arrive (the listener is cut), in mailboxes of any
/// owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_many_mailboxes_is_one_statement() {
    use std::sync::atomic::Ordering;
    const N: usize = 20;
    const BOB: &str = "bob@example.com";
    let url = database().await;
    let (proxied, statements, _) = counting_proxy(&url).await;
    let one = store(&proxied).await;
    let two = store(&url).await;
    one.ensure_account(ALICE).await.unwrap();
    one.ensure_account(BOB).await.unwrap();
    let mut refs = vec![MailboxRef::new(BOB, MailboxName::inbox())];
    for i in 0..N - 1 {
        let r = MailboxRef::new(ALICE, MailboxName::new(&format!("Box{i}")).unwrap());
        one.create(&r, None).await.unwrap();
        refs.push(r);
    }
    let mut handles = Vec::new();
    for r in &refs {
        handles.push(one.open(r, ALICE).await.unwrap());
    }
    let opened: Vec<_> = handles.iter().map(|h| h.watch().current()).collect();
    cut_listener(&url).await;
    let mut appended = Vec::new();
    for r in &refs {
        let a = two
            .append(r, message(b"Subject: polled\r\n\r\nx\r\n".to_vec()))
            .await
            .unwrap();
        appended.push(a.modseq);
    }
    let now: Vec<_> = handles.iter().map(|h| h.watch().current()).collect();
    assert_eq!(now, opened, "no notification can have come");
    let half = N / 2;
    let before = statements.load(Ordering::SeqCst);
    for h in &handles[..half] {
        h.poll_changes().await.unwrap();
    }
    assert_eq!(
        statements.load(Ordering::SeqCst) - before,
        half,
        "one statement per mailbox, polled one by one"
    );
    let before = statements.load(Ordering::SeqCst);
    one.poll_changes(&handles).await.unwrap();
    assert_eq!(
        statements.load(Ordering::SeqCst) - before,
        1,
        "one statement for all {N} mailboxes"
    );
    for ((h, r), modseq) in handles.iter().zip(&refs).zip(&appended) {
        assert_eq!(h.watch().current(), *modseq, "{r} polled");
    }
    let before = statements.load(Ordering::SeqCst);
    one.poll_changes(&[]).await.unwrap();
    assert_eq!(
        statements.load(Ordering::SeqCst),
        before,
        "nothing to poll: no statement"
    );
    let_listeners_back(&url).await;
}

/// A statement runs in one round trip once its connection has run it
/// before: the store prepares each statement text once per pooled
/// connection (deadpool's statement cache) instead of parsing it again at
/// every run (Parse and Describe, a wait, then Bind and Execute). Counted
/// on the wire: on a warm connection an APPEND, a STORE and then every
/// command of a session send no Parse, and still run their statements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_are_parsed_once_per_connection() {
    use mailroom_core::{Flag, StoreOp};
    use std::sync::atomic::Ordering;
    let url = database().await;
    let (proxied, statements, parses) = counting_proxy(&url).await;
    // one pooled connection: every command below runs on it
    let s = store_of(&proxied, 1).await;
    s.ensure_account(ALICE).await.unwrap();
    // (Parse messages, statements) sent since `before`
    let sent = || {
        (
            parses.load(Ordering::SeqCst),
            statements.load(Ordering::SeqCst),
        )
    };
    let since = |before: (usize, usize)| {
        let now = sent();
        (now.0 - before.0, now.1 - before.1)
    };

    let before = sent();
    session_round(&s, 1).await;
    let (p, _) = since(before);
    assert!(p > 0, "the first commands on the connection parse");

    let before = sent();
    let a = s
        .append(&inbox(), message(b"Subject: 2\r\n\r\ntwo\r\n".to_vec()))
        .await
        .unwrap();
    let (p, e) = since(before);
    assert_eq!(p, 0, "a second APPEND sends no Parse");
    assert!(e >= 5, "and still runs its statements ({e})");

    let m = s.open(&inbox(), ALICE).await.unwrap();
    let before = sent();
    let seen = StoreOp::Add([Flag::Seen].into_iter().collect());
    let r = m.store(&[a.uid], &seen, None).await.unwrap();
    assert!(r.changed[0].flags.contains(&Flag::Seen));
    let (p, e) = since(before);
    assert_eq!(p, 0, "a second STORE sends no Parse");
    assert!(e >= 5, "and still runs its statements ({e})");

    let before = sent();
    session_round(&s, 3).await;
    let (p, _) = since(before);
    assert_eq!(p, 0, "no command of a second round parses");
}

/// One of each command a session runs on INBOX, checked: APPEND of
/// message `n` (UID `n`), STORE, SELECT (snapshot and claim), FETCH of
/// flags, summaries and body, STATUS, LIST, EXPUNGE of `n` once flagged
/// `\Deleted`.
async fn session_round(s: &PgStore, n: u32) {
    use mailroom_core::{Flag, StoreOp};
    let content = format!("Subject: {n}\r\n\r\nbody {n}\r\n").into_bytes();
    let a = s.append(&inbox(), message(content.clone())).await.unwrap();
    assert_eq!(a.uid, Uid(n));
    let m = s.open(&inbox(), ALICE).await.unwrap();
    let add = |f: Flag| StoreOp::Add([f].into_iter().collect());
    let r = m.store(&[a.uid], &add(Flag::Flagged), None).await.unwrap();
    assert_eq!(r.changed.len(), 1);
    let snap = m.snapshot().await.unwrap();
    assert_eq!(snap.uid_next, Uid(n + 1));
    m.claim_recent().await.unwrap();
    let metas = m.fetch_meta(&[a.uid]).await.unwrap();
    assert!(metas[0].flags.contains(&Flag::Flagged));
    assert_eq!(m.summaries(&[a.uid]).await.unwrap().len(), 1);
    assert_eq!(&m.content(a.uid).await.unwrap()[..], &content[..]);
    assert_eq!(
        s.status(&inbox(), ALICE).await.unwrap().uid_next,
        Uid(n + 1)
    );
    assert!(!s.list(ALICE).await.unwrap().is_empty());
    m.store(&[a.uid], &add(Flag::Deleted), None).await.unwrap();
    assert_eq!(m.expunge(Some(&[a.uid])).await.unwrap(), vec![a.uid]);
}

/// The statements a store's connections hold prepared keep working when
/// another build's migration adds columns while the store serves (the
/// shape of every migration so far: columns, tables, indexes and triggers
/// added). PostgreSQL plans them again by itself; what it refuses, "cached
/// plan must not change result type", needs a statement whose result
/// columns changed, and every statement names the columns it reads (none
/// is `SELECT *` or `RETURNING *`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_survive_a_migration_that_adds_columns() {
    let url = database().await;
    let s = store_of(&url, 1).await;
    s.ensure_account(ALICE).await.unwrap();
    session_round(&s, 1).await;
    let mut ddl = String::new();
    for table in [
        "accounts",
        "mailboxes",
        "messages",
        "bodies",
        "expunged",
        "seen",
        "subscriptions",
    ] {
        ddl.push_str(&format!(
            "ALTER TABLE {table} ADD COLUMN added_later text DEFAULT 'x';"
        ));
    }
    sql(&url, &ddl).await;
    session_round(&s, 2).await;
}

/// A message expunged (and its body collected) while other sessions read
/// it is gone for them (`NoSuchMessage`), never a missing or damaged body:
/// the message row and its body are read in one snapshot. Read in two
/// statements, a reader between them saw "body ... is missing" and
/// replication counted a mismatch (found as a flaky sync test). Readers
/// keep reading each message while a writer expunges it, inline and
/// chunked bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_expunged_while_read_is_gone_not_corrupt() {
    let url = database().await;
    let writer = store_of(&url, 2).await;
    let reader = store_of(&url, 8).await;
    writer.ensure_account(ALICE).await.unwrap();
    let rounds = 60;
    let mut outcomes = (0usize, 0usize);
    for round in 0..rounds {
        let size = if round % 10 == 9 { CHUNK + 1 } else { 2000 };
        let mut content = format!("Subject: round {round}\r\n\r\n").into_bytes();
        content.resize(size, b'x');
        let appended = writer.append(&inbox(), message(content)).await.unwrap();
        let uid = appended.uid;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..4 {
            let mb = reader.open(&inbox(), ALICE).await.unwrap();
            let stop = Arc::clone(&stop);
            readers.push(tokio::spawn(async move {
                let mut read = 0usize;
                loop {
                    // the expunge had returned before this read began
                    let after = stop.load(std::sync::atomic::Ordering::SeqCst);
                    match mb.content(uid).await {
                        Ok(bytes) => {
                            assert!(!after, "round {round}: served after its expunge");
                            assert_eq!(bytes.len(), size);
                            read += 1;
                        }
                        Err(Error::NoSuchMessage(_)) => return read,
                        Err(e) => panic!("round {round}: {e}"),
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let mb = writer.open(&inbox(), ALICE).await.unwrap();
        mb.store(
            &[uid],
            &mailroom_core::StoreOp::Add([mailroom_core::Flag::Deleted].into_iter().collect()),
            None,
        )
        .await
        .unwrap();
        assert_eq!(mb.expunge(Some(&[uid])).await.unwrap(), vec![uid]);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in readers {
            let read = r.await.unwrap();
            outcomes.0 += 1;
            outcomes.1 += read;
        }
    }
    assert_eq!(outcomes.0, rounds * 4);
}
