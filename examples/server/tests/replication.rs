//! Two `mailroomd` processes on loopback as a replication pair
//! (`[replication]`), over real sockets:
//!
//! - a replica refuses client work until promoted (IMAP `NO [UNAVAILABLE]`,
//!   POP3 `-ERR [SYS/TEMP]`, LMTP `451 4.3.0`); `replication promote`
//!   makes it serve, and a restart keeps the role;
//! - LMTP load over 8 connections plus IMAP flag changes, expunges,
//!   appends and renames on the primary; afterwards the replica catches up
//!   (`pending_changes 0`), `replication verify` says `ok` for every user,
//!   and what Python's imaplib FETCHes (UID, FLAGS, MODSEQ, SHA-1 of
//!   BODY[]) is identical on both ends;
//! - kill -9 of the primary during LMTP load, restarted each time: in sync
//!   mode every acknowledged message is on the replica at once, in async
//!   mode once the primary is back;
//! - kill -9 of the replica: it resumes without a full resync (bytes sent
//!   counted on the primary);
//! - sync mode falls back to async when the replica is away (log, metric)
//!   and returns to sync when it is back;
//! - the users file travels with replication (no test copies it): a user
//!   added with `mailroomd user add` on the running primary logs in on the
//!   replica once it is promoted.
//!
//! Sizes (CI defaults; the issue's figures in parentheses):
//! `MAILROOM_REPL_LOAD_SECS` (60, default 4), `MAILROOM_REPL_KILL_ROUNDS`
//! (20, default 3). The replica's contents are read over IMAP by a plain
//! mailroomd started on its data directory after it is stopped (a replica
//! serves no client), with EXAMINE only, so nothing changes there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::replication::*;
use common::{plain, run, stdout};

#[test]
fn replica_refuses_clients_until_promoted_and_the_role_survives_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let (primary, replica) = pair(root.path(), "");
    let names = users(1);
    add_users(&primary, &names);
    let user = &names[0];
    let mut r = replica.start();
    assert!(
        r.seen
            .iter()
            .any(|l| l == "mailroomd: replication role replica")
    );
    // The primary carries its users file over, then goes away.
    let mut running = primary.start();
    wait_users_replicated(&primary, &replica);
    stop(&mut running);
    replica.wait_status("primary gone", Duration::from_secs(30), |s| {
        s["connected"] == "no"
    });

    // IMAP: NO [UNAVAILABLE] to LOGIN, and the connection goes on.
    let mut c = plain(r.imap.unwrap());
    c.line();
    let (_, answer) = c.command(&format!("LOGIN {user} {PASSWORD}"));
    assert!(answer.starts_with("NO [UNAVAILABLE]"), "{answer}");
    let (_, answer) = c.command("NOOP");
    assert!(answer.starts_with("OK"), "{answer}");
    // POP3: -ERR [SYS/TEMP].
    let mut p = plain(r.pop3.unwrap());
    assert!(p.line().starts_with("+OK"));
    assert!(p.raw(&format!("USER {user}")).starts_with("+OK"));
    let answer = p.raw(&format!("PASS {PASSWORD}"));
    assert!(answer.starts_with("-ERR [SYS/TEMP]"), "{answer}");
    // LMTP: 451 4.3.0 at RCPT; nothing is stored.
    let mut l = Lmtp::connect(r.lmtp.unwrap()).unwrap();
    let answer = l.deliver(user, &load_message("refused@x", 100)).unwrap();
    assert!(answer.starts_with("451 4.3.0"), "{answer}");

    let s = replica.status();
    assert_eq!(s["role"], "replica");
    assert_eq!(s["promoted"], "no");
    assert_eq!(s["connected"], "no");
    // verify is the primary's
    let (_, ok) = replica.replication(&["verify", user]);
    assert!(!ok);

    // Promote: logins work at once, on a connection opened before too.
    let (lines, ok) = replica.replication(&["promote"]);
    assert!(ok, "{lines:?}");
    assert!(lines[0].starts_with("promoted"), "{lines:?}");
    let (_, answer) = c.command(&format!("LOGIN {user} {PASSWORD}"));
    assert!(answer.starts_with("OK"), "{answer}");
    let answer = l.deliver(user, &load_message("accepted@x", 100)).unwrap();
    assert!(answer.starts_with("250"), "{answer}");
    assert_eq!(replica.status()["role"], "primary");
    let (lines, ok) = replica.replication(&["promote"]);
    assert!(ok && lines[0].starts_with("already"), "{lines:?}");

    // A restart keeps the role (recorded in the data directory).
    stop(&mut r);
    assert!(replica.dir.join("data/replication.state").exists());
    let (lines, ok) = replica.replication(&["status"]);
    assert!(
        ok && lines.contains(&"role primary".to_owned()),
        "offline: {lines:?}"
    );
    let r = replica.start();
    assert!(
        r.seen
            .iter()
            .any(|l| l == "mailroomd: replication role primary")
    );
    let mut c = login(r.imap.unwrap(), user);
    let (untagged, ok) = c.command("SELECT INBOX");
    assert!(ok.starts_with("OK"));
    assert!(
        untagged.iter().any(|l| l.trim_end() == "* 1 EXISTS"),
        "{untagged:?}"
    );
    assert_eq!(replica.status()["role"], "primary");
    // A primary cannot be promoted.
    let (_, ok) = primary.replication(&["promote"]);
    assert!(!ok);
}

#[test]
fn load_then_the_replica_is_identical() {
    let secs = env_number("MAILROOM_REPL_LOAD_SECS", 4);
    let root = tempfile::tempdir().unwrap();
    let (primary, replica) = pair(root.path(), "");
    let names = users(10);
    add_users(&primary, &names);
    let mut r = replica.start();
    let p = primary.start();
    primary.wait_status("connect", Duration::from_secs(30), |s| {
        s["connected"] == "yes"
    });

    let stop_flag = Arc::new(AtomicBool::new(false));
    let load = lmtp_load(p.lmtp.unwrap(), &names, "load", Arc::clone(&stop_flag));
    let churn = {
        let (addr, names, stop) = (p.imap.unwrap(), names.clone(), Arc::clone(&stop_flag));
        std::thread::spawn(move || imap_churn(addr, names, stop))
    };
    let started = Instant::now();
    let mut max_pending = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500));
        let s = primary.status();
        max_pending = max_pending.max(s["pending_changes"].parse().unwrap_or(0));
    }
    stop_flag.store(true, Ordering::Relaxed);
    let acked = join_acked(load);
    let rounds = churn.join().unwrap();
    let stopped = Instant::now();
    // A liveness bound, not a timing claim: the time is printed.
    let limit = Duration::from_secs(120.max(secs * 10));
    let (s, _) = primary.wait_status("catch up", limit, |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    let caught_up = stopped.elapsed();
    println!(
        "load {secs} s: {} messages acknowledged over 8 LMTP connections, {rounds} IMAP rounds; \
         most pending_changes seen {max_pending}; pending_changes 0 {:.3} s after the load stopped; \
         bytes_sent {} mismatches {} repaired {}",
        acked.len(),
        caught_up.as_secs_f64(),
        s["bytes_sent"],
        s["mismatches"],
        s["repaired"]
    );
    assert!(!acked.is_empty());

    // verify says ok for every mailbox of every user.
    for user in &names {
        let (lines, ok) = primary.replication(&["verify", user]);
        assert!(ok, "verify {user}: {lines:?}");
        assert!(lines.len() >= 2, "INBOX and the folder: {lines:?}");
        for line in &lines {
            assert!(line.ends_with(" ok"), "verify {user}: {lines:?}");
        }
    }
    let metrics = scrape(p.metrics.unwrap());
    for series in [
        "mailroom_replication_pending_changes 0\n",
        "mailroom_replication_lag_seconds 0\n",
        "mailroom_replication_connected 1\n",
        "mailroom_replication_mode_fallbacks_total 0\n",
        "# TYPE mailroom_replication_bytes_sent_total counter\n",
        "# TYPE mailroom_replication_repaired_total counter\n",
    ] {
        assert!(metrics.contains(series), "{series:?} in\n{metrics}");
    }

    // What a client FETCHes is the same on both ends.
    let ours = dump(p.imap.unwrap(), &names);
    stop(&mut r);
    let theirs = replica.inspect(&names);
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours, theirs);
    println!("{} messages identical on both ends", ours.len());
}

/// kill -9 of the primary during LMTP load, `rounds` times.
fn kill_primary_rounds(mode: &str) {
    let rounds = env_number("MAILROOM_REPL_KILL_ROUNDS", 3);
    let root = tempfile::tempdir().unwrap();
    let (primary, replica) = pair(
        root.path(),
        &format!("mode = \"{mode}\"\nsync_timeout_ms = 60000\n"),
    );
    let names = users(10);
    add_users(&primary, &names);
    let mut r = replica.start();
    // Every account exists on both ends before the rounds (creating one is
    // a few fsyncs per mailbox on each end).
    let mut acked: Vec<(String, String)> = Vec::new();
    {
        let mut p = primary.start();
        let mut lmtp = Lmtp::connect(p.lmtp.unwrap()).unwrap();
        for (i, user) in names.iter().enumerate() {
            let id = format!("first-{i}@load");
            let reply = lmtp.deliver(user, &load_message(&id, 500)).unwrap();
            assert!(reply.starts_with("250"), "{reply}");
            acked.push((user.clone(), id));
        }
        primary.wait_status("first sync", Duration::from_secs(120), |s| {
            s["pending_changes"] == "0" && s["connected"] == "yes"
        });
        stop(&mut p);
    }
    for round in 0..rounds {
        let mut p = primary.start();
        if mode == "sync" {
            // Appends wait for the replica: count only while connected.
            primary.wait_status("connect", Duration::from_secs(30), |s| {
                s["connected"] == "yes"
            });
        }
        let stop_flag = Arc::new(AtomicBool::new(false));
        let load = lmtp_load(p.lmtp.unwrap(), &names, &format!("r{round}"), stop_flag);
        std::thread::sleep(Duration::from_millis(1000 + (round * 317) % 1500));
        if mode == "sync" {
            let s = primary.status();
            assert_eq!(s["mode"], "sync", "no fallback: {s:?}");
        }
        kill9(&mut p);
        let this_round = join_acked(load);
        println!("{mode} round {round}: {} acknowledged", this_round.len());
        assert!(!this_round.is_empty(), "round {round}: nothing delivered");
        acked.extend(this_round);
        if mode == "sync" {
            // At once: the primary is dead; the replica must have them all.
            stop(&mut r);
            let ids = message_ids(&replica.inspect(&names));
            let missing: Vec<_> = acked.iter().filter(|a| !ids.contains(a)).collect();
            assert!(
                missing.is_empty(),
                "round {round}: {} of {} acknowledged messages not on the replica: {:?}",
                missing.len(),
                acked.len(),
                &missing[..missing.len().min(5)]
            );
            r = replica.start();
        }
    }
    // The primary back: the replica catches up, then holds every message.
    let p = primary.start();
    let (s, took) = primary.wait_status("catch up", Duration::from_secs(120), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    println!(
        "{mode}: {rounds} kill -9 rounds, {} messages acknowledged; caught up {:.3} s after the last restart; {s:?}",
        acked.len(),
        took.as_secs_f64()
    );
    // Nobody wrote on the replica: no round of any of the primary's runs
    // may take it for a split brain (issue 8: the replica recorded a sync
    // point the killed primary had not, and the next run merged).
    assert_eq!(s["split_brain_merges"], "0", "{s:?}");
    let merged_in = split_brain_logs(&primary.dir);
    assert!(
        merged_in.is_empty(),
        "{mode}: a primary run logged a split brain: {merged_in:?}"
    );
    let ours = dump(p.imap.unwrap(), &names);
    let ids = message_ids(&ours);
    for a in &acked {
        assert!(
            ids.contains(a),
            "acknowledged but lost on the primary: {a:?}"
        );
    }
    stop(&mut r);
    let theirs = replica.inspect(&names);
    assert_eq!(ours, theirs, "both ends identical");
}

/// The lines mentioning a split brain in every log of the node's runs
/// (`stderr-*.log` in its directory).
fn split_brain_logs(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("stderr-") && name.ends_with(".log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.extend(
                text.lines()
                    .filter(|l| l.contains("split brain"))
                    .map(|l| format!("{name}: {l}")),
            );
        }
    }
    out
}

#[test]
fn kill_primary_during_load_sync_mode() {
    kill_primary_rounds("sync");
}

#[test]
fn kill_primary_during_load_async_mode() {
    kill_primary_rounds("async");
}

#[test]
fn killed_replica_resumes_without_a_full_resync() {
    let root = tempfile::tempdir().unwrap();
    let (primary, replica) = pair(root.path(), "");
    let names = users(2);
    add_users(&primary, &names);
    let mut r = replica.start();
    let p = primary.start();
    let mut lmtp = Lmtp::connect(p.lmtp.unwrap()).unwrap();
    for n in 0..100 {
        let reply = lmtp
            .deliver(&names[n % 2], &load_message(&format!("m{n}@x"), 4000))
            .unwrap();
        assert!(reply.starts_with("250"), "{reply}");
    }
    let (s, _) = primary.wait_status("initial sync", Duration::from_secs(60), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    let initial: u64 = s["bytes_sent"].parse().unwrap();
    assert!(initial > 100 * 4000, "{s:?}");

    kill9(&mut r);
    primary.wait_status("notices", Duration::from_secs(30), |s| {
        s["connected"] == "no"
    });
    let reply = lmtp
        .deliver(&names[0], &load_message("after@x", 4000))
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    let _r = replica.start();
    let (s, _) = primary.wait_status("resume", Duration::from_secs(60), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    let after: u64 = s["bytes_sent"].parse().unwrap();
    let resent = after - initial;
    println!(
        "replica kill -9: initial sync {initial} bytes sent for 100 messages of ~4 KB; \
         after the restart {resent} bytes for 1 new message"
    );
    assert!(
        resent < 20_000,
        "a resumed replica gets the new message, not everything: {resent} bytes"
    );
    for user in &names {
        let (lines, ok) = primary.replication(&["verify", user]);
        assert!(ok && lines.iter().all(|l| l.ends_with(" ok")), "{lines:?}");
    }
}

/// A replica's `replication status` says what it knows it lacks: its
/// `pending_changes` is a number (the primary's, as last announced), 0
/// before any announcement and 0 again once the primary caught it up.
#[test]
fn a_replicas_status_counts_what_it_lacks() {
    let root = tempfile::tempdir().unwrap();
    let (primary, replica) = pair(root.path(), "");
    let names = users(2);
    add_users(&primary, &names);
    let _r = replica.start();
    let s = replica.status();
    assert_eq!(
        (
            s["pending_changes"].as_str(),
            s["pending_announced"].as_str()
        ),
        ("0", "never"),
        "{s:?}"
    );
    let p = primary.start();
    let mut lmtp = Lmtp::connect(p.lmtp.unwrap()).unwrap();
    let mut readings = Vec::new();
    for n in 0..60 {
        let reply = lmtp
            .deliver(&names[n % 2], &load_message(&format!("p{n}@x"), 2000))
            .unwrap();
        assert!(reply.starts_with("250"), "{reply}");
        if n % 10 == 9 {
            let s = replica.status();
            let pending: u64 = s["pending_changes"]
                .parse()
                .unwrap_or_else(|_| panic!("pending_changes is a number: {s:?}"));
            readings.push(pending);
        }
    }
    primary.wait_status("caught up", Duration::from_secs(60), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    let (s, took) = replica.wait_status("the replica knows", Duration::from_secs(30), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    let announced: u64 = s["pending_announced"].parse().unwrap();
    assert!(announced > 0, "{s:?}");
    println!(
        "replica pending_changes during 60 deliveries: {readings:?}; 0 on the replica {:.3} s \
         after the primary said 0",
        took.as_secs_f64()
    );
    drop(p);
    // The primary gone: still a number (the last announcement).
    let s = replica.status();
    assert!(s["pending_changes"].parse::<u64>().is_ok(), "{s:?}");
}

#[test]
fn sync_mode_falls_back_to_async_and_returns() {
    let root = tempfile::tempdir().unwrap();
    let (primary, replica) = pair(root.path(), "mode = \"sync\"\nsync_timeout_ms = 300\n");
    let names = users(1);
    add_users(&primary, &names);
    let p = primary.start();
    let s = primary.status();
    assert_eq!(
        (s["mode"].as_str(), s["connected"].as_str()),
        ("sync", "no")
    );

    // No replica: the first delivery waits sync_timeout_ms, then is
    // acknowledged and replication falls back to async.
    let mut lmtp = Lmtp::connect(p.lmtp.unwrap()).unwrap();
    let reply = lmtp.deliver(&names[0], &load_message("a@x", 500)).unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    let s = primary.status();
    assert_eq!(s["mode"], "async", "{s:?}");
    assert_eq!(s["mode_configured"], "sync");
    assert_eq!(s["mode_fallbacks"], "1");
    let metrics = scrape(p.metrics.unwrap());
    assert!(
        metrics.contains("mailroom_replication_mode_fallbacks_total 1\n")
            && metrics.contains("mailroom_replication_sync_mode 0\n"),
        "{metrics}"
    );
    assert!(
        p.stderr()
            .contains("falling back to asynchronous replication"),
        "{}",
        p.stderr()
    );
    // Further deliveries do not wait while fallen back.
    let reply = lmtp.deliver(&names[0], &load_message("b@x", 500)).unwrap();
    assert!(reply.starts_with("250"), "{reply}");

    // The replica comes: once it is caught up, sync mode resumes.
    let _r = replica.start();
    primary.wait_status("sync again", Duration::from_secs(60), |s| {
        s["mode"] == "sync" && s["pending_changes"] == "0"
    });
    let reply = lmtp.deliver(&names[0], &load_message("c@x", 500)).unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    let s = primary.status();
    assert_eq!(
        (s["mode"].as_str(), s["mode_fallbacks"].as_str()),
        ("sync", "1")
    );
    let (lines, ok) = primary.replication(&["verify", &names[0]]);
    assert!(ok && lines.contains(&"INBOX ok".to_owned()), "{lines:?}");
    assert!(lines.iter().all(|l| l.ends_with(" ok")), "{lines:?}");
}

#[test]
fn replication_over_tls_with_a_pinned_certificate() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let replica = Node::new(
        root.path(),
        "replica",
        &format!("role = \"replica\"\nlisten = \"127.0.0.1:{port}\"\ntls = true\n"),
    );
    let names = users(1);
    // The replica generates its certificate on its first start.
    let _r = replica.start();
    let cert = replica.dir.join("data/tls/cert.pem");
    let primary = Node::new(
        root.path(),
        "primary",
        &format!(
            "role = \"primary\"\npeer = \"127.0.0.1:{port}\"\ntls = true\ntls_pinned_cert = \"{}\"\n",
            cert.display()
        ),
    );
    common::add_user(&primary.dir, &primary.cfg, &names[0], PASSWORD);
    let p = primary.start();
    let mut lmtp = Lmtp::connect(p.lmtp.unwrap()).unwrap();
    let reply = lmtp
        .deliver(&names[0], &load_message("tls@x", 900))
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    primary.wait_status("over TLS", Duration::from_secs(60), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    let (lines, ok) = primary.replication(&["verify", &names[0]]);
    assert!(ok && lines.iter().all(|l| l.ends_with(" ok")), "{lines:?}");
    drop(p);

    // A primary pinning another certificate (its own) never connects.
    let other = primary.dir.join("other.toml");
    let own = primary.dir.join("data/tls/cert.pem");
    let text = std::fs::read_to_string(&primary.cfg)
        .unwrap()
        .replace(&cert.display().to_string(), &own.display().to_string());
    std::fs::write(&other, text).unwrap();
    let stranger = Node {
        dir: primary.dir.clone(),
        cfg: other.to_str().unwrap().to_owned(),
    };
    let _p = stranger.start();
    let (s, _) = stranger.wait_status("refused", Duration::from_secs(60), |s| {
        s["last_error"] != "-"
    });
    assert_eq!(s["connected"], "no", "{s:?}");
    assert!(s["last_error"].contains("certificate"), "{s:?}");
}

#[test]
fn a_user_added_on_the_running_primary_logs_in_on_the_promoted_replica() {
    let root = tempfile::tempdir().unwrap();
    let (primary, replica) = pair(root.path(), "");
    let names = users(2);
    add_users(&primary, &names[..1]);
    let r = replica.start();
    let mut p = primary.start();
    wait_users_replicated(&primary, &replica);
    // Added while both run: the changed file follows within a check.
    add_users(&primary, &names[1..]);
    wait_users_replicated(&primary, &replica);
    assert!(p.stderr().contains("replicated file sent"));
    kill9(&mut p);
    let (lines, ok) = replica.replication(&["promote"]);
    assert!(ok, "{lines:?}");
    for user in &names {
        let mut c = plain(r.imap.unwrap());
        c.line();
        let (_, answer) = c.command(&format!("LOGIN {user} {PASSWORD}"));
        assert!(answer.starts_with("OK"), "{user}: {answer}");
        let (_, answer) = c.command(&format!("LOGIN {user} wrong-{PASSWORD}"));
        assert!(!answer.starts_with("OK"), "{user}: {answer}");
    }
    let mode = std::fs::metadata(replica.dir.join("data/users.toml"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077,
        0,
        "the replicated users file stays private"
    );
}

#[test]
fn an_old_primary_that_returns_is_merged_not_written_over() {
    let root = tempfile::tempdir().unwrap();
    let (primary, replica) = pair(root.path(), "");
    let names = users(1);
    let user = &names[0];
    add_users(&primary, &names);
    let r = replica.start();
    let mut p = primary.start();
    let mut lmtp = Lmtp::connect(p.lmtp.unwrap()).unwrap();
    for n in 0..5 {
        let reply = lmtp.deliver(user, &load_message(&format!("before-{n}@x"), 800));
        assert!(reply.unwrap().starts_with("250"));
    }
    primary.wait_status("caught up", Duration::from_secs(60), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });

    // The primary goes away; the replica is promoted and takes mail.
    drop(lmtp);
    kill9(&mut p);
    let (lines, ok) = replica.replication(&["promote"]);
    assert!(ok, "{lines:?}");
    let mut lmtp = Lmtp::connect(r.lmtp.unwrap()).unwrap();
    for n in 0..2 {
        let reply = lmtp.deliver(user, &load_message(&format!("after-{n}@x"), 800));
        assert!(reply.unwrap().starts_with("250"));
    }

    // The old primary comes back and replicates to the promoted node as
    // before: what the promoted node took is kept (and copied back).
    let p = primary.start();
    let (s, _) = primary.wait_status("merged", Duration::from_secs(60), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    let merges: u64 = s["split_brain_merges"].parse().unwrap();
    assert!(merges >= 1, "the merge is counted: {s:?}");
    let ids = |addr| -> BTreeSet<String> {
        message_ids(&dump(addr, &names))
            .into_iter()
            .map(|(_, id)| id)
            .collect()
    };
    let want: BTreeSet<String> = (0..5)
        .map(|n| format!("before-{n}@x"))
        .chain((0..2).map(|n| format!("after-{n}@x")))
        .collect();
    assert_eq!(
        ids(r.imap.unwrap()),
        want,
        "nothing the promoted node took is lost"
    );
    assert_eq!(ids(p.imap.unwrap()), want, "and the old primary has it too");
    assert!(
        p.stderr().contains("split brain") || r.stderr().contains("split brain"),
        "the merge is logged"
    );
}

/// The one file named `msg/<uid>` under `dir` (a one-mailbox store).
fn message_file(dir: &Path, uid: u32) -> PathBuf {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.ends_with(format!("msg/{uid}")) {
                found.push(path);
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// Issue 8: a replica does not reconstruct a damaged mailbox itself (that
/// would give its messages new modseqs, seen as a split brain and merged
/// back into the primary); `replication verify` repairs it from the
/// primary, flags and modseqs intact, and stays repaired.
#[test]
fn a_damaged_replica_is_repaired_by_verify_not_reconstructed() {
    let root = tempfile::tempdir().unwrap();
    let (primary, replica) = pair(root.path(), "");
    let names = users(1);
    add_users(&primary, &names);
    let user = &names[0];
    let mut r = replica.start();
    let mut p = primary.start();
    let mut lmtp = Lmtp::connect(p.lmtp.unwrap()).unwrap();
    for n in 0..3 {
        let reply = lmtp
            .deliver(user, &load_message(&format!("d{n}@x"), 2000))
            .unwrap();
        assert!(reply.starts_with("250"), "{reply}");
    }
    let mut c = login(p.imap.unwrap(), user);
    let (_, ok) = c.command("SELECT INBOX");
    assert!(ok.starts_with("OK"), "{ok}");
    let (_, ok) = c.command("STORE 2 +FLAGS (\\Flagged $Kept)");
    assert!(ok.starts_with("OK"), "{ok}");
    primary.wait_status("sync", Duration::from_secs(60), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });

    let file = message_file(&replica.dir.join("data"), 2);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    // The replica's own store verify (over its admin socket) finds it and
    // queues the mailbox; an automatic reconstruct (polled every second)
    // would have quarantined the message under a new modseq by now.
    let out = run(&replica.dir, &["-c", &replica.cfg, "verify", user], "");
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("CORRUPT"), "{}", stdout(&out));
    std::thread::sleep(Duration::from_secs(3));
    let (lines, ok) = primary.replication(&["verify", user]);
    assert!(
        ok && lines.iter().any(|l| l.ends_with(" repaired")),
        "{lines:?}"
    );
    let (lines, ok) = primary.replication(&["verify", user]);
    assert!(ok && lines.iter().all(|l| l.ends_with(" ok")), "{lines:?}");
    let s = primary.status();
    assert_eq!(s["split_brain_merges"], "0", "{s:?}");
    drop(c);
    stop(&mut p);
    stop(&mut r);
    let ours = primary.inspect(&names);
    let theirs = replica.inspect(&names);
    assert_eq!(
        ours, theirs,
        "UID, FLAGS, MODSEQ and SHA-1 of every message"
    );
    assert!(
        theirs
            .iter()
            .any(|l| l.contains("\\Flagged") && l.contains("$Kept")),
        "{theirs:?}"
    );
}

/// `protocols/sync/tests/clients/qresync.py PHASE` (imapclient, QRESYNC)
/// for `user` against an IMAP listener; its output, asserted to end well.
fn qresync(phase: &str, addr: SocketAddr, user: &str, state: &Path) -> String {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protocols/sync/tests/clients/qresync.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(phase)
        .arg(addr.port().to_string())
        .arg(state)
        .env("QRESYNC_USER", user)
        .env("QRESYNC_PASSWORD", PASSWORD)
        .output()
        .expect("python3 with imapclient is needed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("ALL OK"),
        "qresync.py {phase}: {text}"
    );
    text
}

/// Issue 8, "What it must show", split brain between two mailroomd
/// processes: the replica goes away and the primary takes deliveries, an
/// APPEND, flag changes, an expunge and a new mailbox; then the primary
/// stops, the replica is promoted and takes the same kinds of writes
/// (deliveries and an APPEND taking the same UIDs, flag changes on the same
/// messages, an expunge of a message the primary changed, the same mailbox
/// created, a rename). The old primary comes back: both ends are identical
/// over imaplib, nothing acknowledged is lost (but what was expunged of an
/// untouched message), the merge is counted in `split_brain_merges`, and an
/// imapclient session that synced INBOX with QRESYNC before resyncs to the
/// merged mailbox on either end.
/// `UID STORE uid +FLAGS (\Deleted)` and `EXPUNGE` in `c`'s selected mailbox.
fn expunge_selected(c: &mut common::Imap<TcpStream>, uid: u32) {
    let (_, ok) = c.command(&format!("UID STORE {uid} +FLAGS (\\Deleted)"));
    assert!(ok.starts_with("OK"), "{ok}");
    let (_, ok) = c.command("EXPUNGE");
    assert!(ok.starts_with("OK"), "{ok}");
}

/// Logs `user` in over IMAP and expunges `uid` from INBOX.
fn expunge_in_inbox(addr: SocketAddr, user: &str, uid: u32) {
    let mut c = login(addr, user);
    c.command("SELECT INBOX");
    expunge_selected(&mut c, uid);
    c.command("LOGOUT");
}

#[test]
fn split_brain_between_two_processes_is_merged_on_both_ends() {
    let root = tempfile::tempdir().unwrap();
    let (primary, replica) = pair(root.path(), "");
    let names = users(1);
    let user = &names[0];
    add_users(&primary, &names);
    let mut r = replica.start();
    let mut p = primary.start();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut lmtp = Lmtp::connect(p.lmtp.unwrap()).unwrap();
    for n in 0..6 {
        let id = format!("shared-{n}@x");
        let reply = lmtp.deliver(user, &load_message(&id, 700)).unwrap();
        assert!(reply.starts_with("250"), "{reply}");
        acked.insert(id);
    }
    drop(lmtp);
    let mut c = login(p.imap.unwrap(), user);
    let (_, ok) = c.command("CREATE Old");
    assert!(ok.starts_with("OK"), "{ok}");
    assert!(
        c.append("Old", load_message("old-0@x", 600).as_bytes())
            .starts_with("OK")
    );
    acked.insert("old-0@x".into());
    c.command("LOGOUT");
    primary.wait_status("in step", Duration::from_secs(60), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    let state = root.path().join("qresync.json");
    qresync("sync", p.imap.unwrap(), user, &state);

    // Apart, on the primary (the replica is down).
    stop(&mut r);
    primary.wait_status("replica gone", Duration::from_secs(30), |s| {
        s["connected"] == "no"
    });
    let writes = |addr_lmtp: SocketAddr, addr_imap: SocketAddr, side: &str, expunge: u32| {
        let mut ids = Vec::new();
        let mut lmtp = Lmtp::connect(addr_lmtp).unwrap();
        for n in 0..2 {
            let id = format!("{side}-{n}@x");
            let reply = lmtp.deliver(user, &load_message(&id, 800)).unwrap();
            assert!(reply.starts_with("250"), "{reply}");
            ids.push(id);
        }
        let mut c = login(addr_imap, user);
        let id = format!("{side}-append@x");
        assert!(
            c.append("INBOX", load_message(&id, 650).as_bytes())
                .starts_with("OK")
        );
        ids.push(id);
        let (_, ok) = c.command("CREATE Both");
        assert!(ok.starts_with("OK"), "{ok}");
        let id = format!("{side}-both@x");
        assert!(
            c.append("Both", load_message(&id, 620).as_bytes())
                .starts_with("OK")
        );
        ids.push(id);
        let (_, ok) = c.command("SELECT INBOX");
        assert!(ok.starts_with("OK"), "{ok}");
        let flag = if side == "p" { "\\Flagged" } else { "\\Seen" };
        for uid in [1, 2] {
            let (_, ok) = c.command(&format!("UID STORE {uid} +FLAGS ({flag} $From-{side})"));
            assert!(ok.starts_with("OK"), "{ok}");
        }
        // the message the other end expunges: changed here after the split
        let changed = if side == "p" { 5 } else { 6 };
        let (_, ok) = c.command(&format!("UID STORE {changed} +FLAGS (\\Answered)"));
        assert!(ok.starts_with("OK"), "{ok}");
        expunge_selected(&mut c, expunge);
        if side == "r" {
            let (_, ok) = c.command("RENAME Old Renamed");
            assert!(ok.starts_with("OK"), "{ok}");
        }
        c.command("LOGOUT");
        ids
    };
    // the primary expunges UID 3 (untouched on the replica: gone on both)
    // and UID 6 (which the replica changes: kept on both)
    acked.extend(writes(p.lmtp.unwrap(), p.imap.unwrap(), "p", 3));
    expunge_in_inbox(p.imap.unwrap(), user, 6);
    stop(&mut p);

    // Apart, on the promoted replica: the same UIDs taken by other messages.
    let r = replica.start();
    let (lines, ok) = replica.replication(&["promote"]);
    assert!(ok, "{lines:?}");
    // the replica expunges UID 4 (untouched on the primary: gone on both)
    // and UID 5 (which the primary changed: kept on both)
    acked.extend(writes(r.lmtp.unwrap(), r.imap.unwrap(), "r", 4));
    expunge_in_inbox(r.imap.unwrap(), user, 5);

    // Reconnected: the old primary merges with the promoted node.
    let p = primary.start();
    let (s, _) = primary.wait_status("merged", Duration::from_secs(120), |s| {
        s["pending_changes"] == "0" && s["connected"] == "yes"
    });
    let merges: u64 = s["split_brain_merges"].parse().unwrap();
    assert!(merges >= 1, "the merge is counted: {s:?}");
    let ours = dump(p.imap.unwrap(), &names);
    let theirs = dump(r.imap.unwrap(), &names);
    assert_eq!(
        ours, theirs,
        "both ends identical (UID, FLAGS, MODSEQ, SHA-1)"
    );
    let ids: BTreeSet<String> = message_ids(&ours).into_iter().map(|(_, id)| id).collect();
    let gone: BTreeSet<String> = ["shared-2@x", "shared-3@x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let want: BTreeSet<String> = acked.difference(&gone).cloned().collect();
    assert_eq!(
        ids, want,
        "every acknowledged message but the two expunged untouched ones"
    );
    let mailboxes: BTreeSet<&str> = ours.iter().map(|l| l.split('\t').nth(1).unwrap()).collect();
    assert!(
        mailboxes.contains("Renamed") && !mailboxes.contains("Old"),
        "{mailboxes:?}"
    );
    let both: Vec<&String> = ours
        .iter()
        .filter(|l| l.split('\t').nth(1) == Some("Both"))
        .collect();
    assert_eq!(
        both.len(),
        2,
        "Both made on both ends holds both messages: {both:?}"
    );
    // the QRESYNC session resyncs to the merged INBOX on either end
    let on_primary = qresync("resync", p.imap.unwrap(), user, &state);
    let on_replica = qresync("resync", r.imap.unwrap(), user, &state);
    let merged = |text: &str| {
        text.lines()
            .skip_while(|l| *l != "RESYNCED")
            .nth(1)
            .map(str::to_owned)
    };
    assert_eq!(
        merged(&on_primary),
        merged(&on_replica),
        "{on_primary}\n{on_replica}"
    );
    println!("split brain merged: {s:?}\n{on_primary}");
}
