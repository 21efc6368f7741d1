//! `[replication]` with the PostgreSQL store, over real sockets, with
//! mailroomd processes and a private PostgreSQL cluster
//! (`mailroom_testkit::postgres`):
//!
//! - **PostgreSQL primary -> off-site CRC replica.** Two frontends of one
//!   database are both configured as the primary: one streams (it holds
//!   the database's primary lock), the other stands by. LMTP deliveries
//!   through both and IMAP changes through the standby; the streaming one
//!   is killed with SIGKILL mid-load and the standby takes the stream
//!   over; the database then ends its lock session, and it stops
//!   streaming, takes the lock again and goes on. The users live in the database (`[auth] backend = "postgres"`)
//!   and reach the CRC replica's users file by replication. The replica,
//!   promoted, serves the same users; what imaplib FETCHes there (UID,
//!   FLAGS, MODSEQ, SHA-1 of BODY[], MAILBOXID, UIDVALIDITY) is what it
//!   FETCHed from the primary.
//! - **CRC primary -> PostgreSQL replica served by two frontends.** The
//!   users file reaches the replica's `users` table; both frontends refuse
//!   clients until one of them is promoted, then both serve (the other
//!   without being told), each showing exactly what the CRC primary had;
//!   the promotion survives with no server running (`replication status`
//!   read from the database).
//! - **The primary lock** (`mailroomd::replication::pg::PrimaryLock`): one
//!   holder at a time; when the database ends the holder's session, the
//!   holder notices and the lock passes to the process standing by.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::replication::*;
use common::{Server, plain, run, stdout};
use mailroom_testkit::postgres::PgCluster;

/// The `[store]` table of a frontend of the database at `url`.
fn pg_store(url: &str) -> String {
    format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\npool_size = 4\n")
}

/// Users in the store's database.
const PG_USERS: &str = "backend = \"postgres\"\n";

/// LMTP and IMAP load through `lmtp` (each address: 8 connections) and
/// `imap` (the churn) for `secs`; `during` runs half-way. Returns every
/// acknowledged delivery.
fn load(
    lmtp: &[SocketAddr],
    imap: SocketAddr,
    names: &[String],
    secs: u64,
    during: impl FnOnce(),
) -> Vec<(String, String)> {
    let stop_flag = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = lmtp
        .iter()
        .enumerate()
        .map(|(i, addr)| lmtp_load(*addr, names, &format!("f{i}"), Arc::clone(&stop_flag)))
        .collect();
    let churn = {
        let (names, stop) = (names.to_vec(), Arc::clone(&stop_flag));
        std::thread::spawn(move || imap_churn(imap, names, stop))
    };
    std::thread::sleep(Duration::from_millis(secs * 500));
    during();
    std::thread::sleep(Duration::from_millis(secs * 500));
    stop_flag.store(true, Ordering::Relaxed);
    let acked: Vec<_> = loads.into_iter().flat_map(join_acked).collect();
    let rounds = churn.join().unwrap();
    println!(
        "{} deliveries acknowledged, {rounds} IMAP rounds",
        acked.len()
    );
    assert!(!acked.is_empty() && rounds > 0);
    acked
}

/// Waits until the users file in `dir` names every one of `names`.
fn wait_users_in_file(dir: &Path, names: &[String]) {
    let path = dir.join("data/users.toml");
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if names.iter().all(|n| text.contains(&format!("\"{n}\""))) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the users did not reach {}: {text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `mailroomd user list` on `node` names every one of `names`.
fn wait_users_listed(node: &Node, names: &[String]) {
    let start = Instant::now();
    loop {
        let out = run(&node.dir, &["-c", &node.cfg, "user", "list"], "");
        let listed = stdout(&out);
        if out.status.success()
            && names
                .iter()
                .all(|n| listed.lines().any(|l| l.split('\t').next() == Some(n)))
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the users did not reach the users table: {listed}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `LOGIN` on a replica that is not promoted: `NO [UNAVAILABLE]`.
fn login_refused(addr: SocketAddr, user: &str) {
    let mut c = plain(addr);
    c.line();
    let (_, answer) = c.command(&format!("LOGIN {user} {PASSWORD}"));
    assert!(answer.starts_with("NO [UNAVAILABLE]"), "{answer}");
}

fn deliver_one(server: &Server, user: &str, id: &str) {
    let mut l = Lmtp::connect(server.lmtp.unwrap()).unwrap();
    let answer = l.deliver(user, &load_message(id, 300)).unwrap();
    assert!(answer.starts_with("250"), "{answer}");
}

#[test]
fn postgres_primary_streams_to_a_crc_replica_which_takes_over() {
    let url = PgCluster::shared().create_database("repl_primary");
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let replica = Node::new(
        root.path(),
        "replica",
        &format!("role = \"replica\"\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let primary_table =
        format!("role = \"primary\"\npeer = \"127.0.0.1:{port}\"\nverify_interval_secs = 600\n");
    let first = Node::on(
        root.path(),
        "first",
        &pg_store(&url),
        PG_USERS,
        &primary_table,
    );
    let second = Node::on(
        root.path(),
        "second",
        &pg_store(&url),
        PG_USERS,
        &primary_table,
    );
    let names = users(4);
    // Into the users table (no server runs: the command writes it).
    add_users(&first, &names);

    let mut r = replica.start();
    let mut one = first.start();
    first.wait_status("the first frontend streams", Duration::from_secs(30), |s| {
        s["primary_lock"] == "held" && s["connected"] == "yes"
    });
    let two = second.start();
    let (s, _) = second.wait_status("the second stands by", Duration::from_secs(30), |s| {
        s.contains_key("primary_lock")
    });
    assert_eq!(s["primary_lock"], "standby", "{s:?}");
    assert_eq!(s["connected"], "no", "{s:?}");
    assert_eq!(s["pending_changes"], "-", "{s:?}");
    assert_eq!(s["role"], "primary", "a standby serves clients: {s:?}");
    assert!(
        scrape(two.metrics.unwrap()).contains("mailroom_replication_streaming 0\n"),
        "the standby's metrics"
    );
    assert!(scrape(one.metrics.unwrap()).contains("mailroom_replication_streaming 1\n"));
    // The users table became the replica's users file.
    wait_users_in_file(&replica.dir, &names);

    // Deliveries through both frontends, IMAP changes through the
    // standby; the streaming frontend dies half-way.
    let acked = load(
        &[one.lmtp.unwrap(), two.lmtp.unwrap()],
        two.imap.unwrap(),
        &names,
        4,
        || kill9(&mut one),
    );
    let (s, took) = second.wait_status("the standby took over", Duration::from_secs(60), |s| {
        s["primary_lock"] == "held" && s["connected"] == "yes" && s["pending_changes"] == "0"
    });
    println!(
        "the standby streams and the replica caught up {:.3} s after the load: {s:?}",
        took.as_secs_f64()
    );
    assert_eq!(s["split_brain_merges"], "0", "{s:?}");
    for user in &names {
        let (lines, ok) = second.replication(&["verify", user]);
        assert!(ok, "verify {user}: {lines:?}");
        assert!(lines.iter().all(|l| l.ends_with(" ok")), "{lines:?}");
    }

    // The database ends the streaming frontend's lock session (a restart,
    // an operator's pg_terminate_backend): it stops streaming, takes the
    // lock again, and the stream goes on.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let holders = lock_holders(&client).await;
        assert_eq!(holders.len(), 1, "{holders:?}");
        client
            .execute("SELECT pg_terminate_backend($1)", &[&holders[0]])
            .await
            .unwrap();
    });
    let start = Instant::now();
    while !two.stderr().contains("stopped streaming") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            two.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    deliver_one(&two, &names[0], "after-lock-loss@x");
    second.wait_status("streams again", Duration::from_secs(60), |s| {
        s["primary_lock"] == "held" && s["connected"] == "yes" && s["pending_changes"] == "0"
    });

    // The primary's site is lost; the replica is promoted and serves the
    // same mail to the same users.
    let ours = dump(two.imap.unwrap(), &names);
    // (The churn expunges some deliveries: most are there.)
    let ids = message_ids(&ours);
    assert!(acked.iter().filter(|a| ids.contains(a)).count() > acked.len() / 2);
    drop(two);
    login_refused(r.imap.unwrap(), &names[0]);
    let (lines, ok) = replica.replication(&["promote"]);
    assert!(ok && lines[0].starts_with("promoted"), "{lines:?}");
    let theirs = dump(r.imap.unwrap(), &names);
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours, theirs);
    println!("{} messages identical on both ends", ours.len());
    deliver_one(&r, &names[0], "after-failover@x");
    let mut c = login(r.imap.unwrap(), &names[0]);
    let (untagged, ok) = c.command("SELECT INBOX");
    assert!(ok.starts_with("OK"), "{ok}");
    let validity = ours
        .iter()
        .find(|l| l.starts_with(&format!("{}\tINBOX\t", names[0])))
        .and_then(|l| l.split('\t').nth(8))
        .unwrap()
        .to_owned();
    assert!(
        untagged
            .iter()
            .any(|l| l.contains(&format!("[UIDVALIDITY {validity}]"))),
        "{untagged:?}"
    );
    stop(&mut r);
}

#[test]
fn crc_primary_streams_to_a_postgres_replica_served_by_two_frontends() {
    let url = PgCluster::shared().create_database("repl_replica");
    let root = tempfile::tempdir().unwrap();
    let (port, other_port) = (free_port(), free_port());
    let first = Node::on(
        root.path(),
        "first",
        &pg_store(&url),
        PG_USERS,
        &format!("role = \"replica\"\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let second = Node::on(
        root.path(),
        "second",
        &pg_store(&url),
        PG_USERS,
        &format!("role = \"replica\"\nlisten = \"127.0.0.1:{other_port}\"\n"),
    );
    let primary = Node::new(
        root.path(),
        "primary",
        &format!("role = \"primary\"\npeer = \"127.0.0.1:{port}\"\nverify_interval_secs = 600\n"),
    );
    let names = users(4);
    add_users(&primary, &names);

    let one = first.start();
    let mut two = second.start();
    let mut p = primary.start();
    primary.wait_status("connect", Duration::from_secs(30), |s| {
        s["connected"] == "yes"
    });
    load(&[p.lmtp.unwrap()], p.imap.unwrap(), &names, 4, || {});
    let (s, took) = primary.wait_status("catch up", Duration::from_secs(60), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    println!(
        "the PostgreSQL replica caught up {:.3} s after the load: {s:?}",
        took.as_secs_f64()
    );
    // The users file became the replica's users table.
    wait_users_listed(&first, &names);

    // Neither frontend serves before the promotion.
    for server in [&one, &two] {
        login_refused(server.imap.unwrap(), &names[0]);
    }
    let s = second.status();
    assert_eq!(
        (s["role"].as_str(), s["promoted"].as_str()),
        ("replica", "no")
    );

    // The primary is lost; one frontend is promoted, both serve.
    let ours = dump(p.imap.unwrap(), &names);
    stop(&mut p);
    let (lines, ok) = first.replication(&["promote"]);
    assert!(ok && lines[0].starts_with("promoted"), "{lines:?}");
    let by_first = dump(one.imap.unwrap(), &names);
    let by_second = dump(two.imap.unwrap(), &names);
    assert_eq!(ours.len(), by_first.len());
    assert_eq!(ours, by_first);
    assert_eq!(ours, by_second);
    println!(
        "{} messages identical on the primary and both frontends",
        ours.len()
    );
    let s = second.status();
    assert_eq!(
        (s["role"].as_str(), s["promoted"].as_str()),
        ("primary", "yes")
    );
    let (lines, ok) = second.replication(&["promote"]);
    assert!(ok && lines[0].starts_with("already"), "{lines:?}");

    // One database: a delivery through the second shows on the first.
    deliver_one(&two, &names[1], "after-promotion@x");
    let after = dump(one.imap.unwrap(), &names[1..2]);
    assert!(
        message_ids(&after).contains(&(names[1].clone(), "after-promotion@x".to_owned())),
        "{after:?}"
    );
    // The promotion is the database's: with no server running, status
    // reads it there.
    stop(&mut two);
    let (lines, ok) = second.replication(&["status"]);
    assert!(
        ok && lines.contains(&"role primary".to_owned()),
        "{lines:?}"
    );
}

/// The frontend holding the primary lock, by the backend holding it.
async fn lock_holders(client: &tokio_postgres::Client) -> Vec<i32> {
    use mailroomd::replication::pg::{LOCK_CLASS, PRIMARY_LOCK};
    // A two-key lock shows its keys as classid and objid, objsubid 2.
    let keys = (LOCK_CLASS as u32, PRIMARY_LOCK as u32);
    client
        .query(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 \
             AND objid = $2 AND objsubid = 2 AND granted",
            &[&keys.0, &keys.1],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn the_primary_lock_is_held_once_and_passes_on_when_lost() {
    use mailroomd::replication::pg::{PrimaryLock, STANDBY_POLL};
    let url = PgCluster::shared().create_database("repl_lock");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let lock = PrimaryLock::new(&url).unwrap();
        let first = lock.acquire().await;
        let second = tokio::spawn({
            let lock = lock.clone();
            async move { lock.acquire().await }
        });
        // The second tries every STANDBY_POLL and never gets it meanwhile.
        tokio::time::sleep(STANDBY_POLL * 3).await;
        assert!(!second.is_finished(), "two holders");
        let holders = lock_holders(&client).await;
        assert_eq!(holders.len(), 1, "{holders:?}");
        // The session is ended under the holder (a database restart, an
        // operator's pg_terminate_backend): it notices, and the lock
        // passes to the one standing by.
        client
            .execute("SELECT pg_terminate_backend($1)", &[&holders[0]])
            .await
            .unwrap();
        let why = first.lost().await;
        println!("the holder noticed: {why}");
        drop(first);
        let _second = second.await.unwrap();
        let now = lock_holders(&client).await;
        assert_eq!(now.len(), 1, "{now:?}");
        assert_ne!(now, holders);
    });
}
